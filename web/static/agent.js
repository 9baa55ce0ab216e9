// An agent monitor's charts (uPlot): CPU and memory, load, disks and network for one range.
// Data from /monitors/{id}/agent-chart?range=... (raw reports for 1 h, else averages).
(function () {
  "use strict";
  var plots = [];
  var palette = ["#3b82f6", "#f59e0b", "#14b8a6", "#ec4899", "#a855f7", "#ef4444", "#22c55e", "#64748b"];

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function fixed(unit, digits) {
    return function (u, v) { return v == null ? "-" : v.toFixed(digits) + unit; };
  }
  function rate(u, v) {
    if (v == null) return "-";
    var units = ["B/s", "KiB/s", "MiB/s", "GiB/s"], i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(i ? 1 : 0) + " " + units[i];
  }

  function charts(data) {
    var disks = Object.keys(data.disks).sort();
    return {
      usage: {values: [data.ts, data.cpu, data.memory, data.swap], range: [0, 100],
              series: [{}, {label: "cpu", stroke: palette[0], width: 2, value: fixed("%", 1)},
                       {label: "memory", stroke: palette[1], value: fixed("%", 1)},
                       {label: "swap", stroke: palette[3], value: fixed("%", 1)}]},
      load: {values: [data.ts, data.load],
             series: [{}, {label: "load 1 min", stroke: palette[2], width: 2, value: fixed("", 2)}]},
      disks: {values: [data.ts].concat(disks.map(function (m) { return data.disks[m]; })), range: [0, 100],
              series: [{}].concat(disks.map(function (m, i) {
                return {label: m, stroke: palette[i % palette.length], value: fixed("%", 1)};
              }))},
      network: {values: [data.ts, data.rx, data.tx],
                series: [{}, {label: "in", stroke: palette[0], width: 2, value: rate},
                         {label: "out", stroke: palette[5], value: rate}]}
    };
  }

  function draw(root, range) {
    fetch(root.dataset.src + "?range=" + encodeURIComponent(range), {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (data) {
        plots.forEach(function (p) { p.destroy(); });
        plots = [];
        var specs = charts(data);
        root.querySelectorAll("[data-chart]").forEach(function (box) {
          box.textContent = "";
          if (!data.ts.length) { box.textContent = "No reports in this range yet."; return; }
          var spec = specs[box.dataset.chart];
          var axis = {stroke: css("--muted"), grid: {stroke: css("--line")}, ticks: {stroke: css("--line")}};
          var scales = {x: {time: true, range: [data.from, data.to]}};
          if (spec.range) scales.y = {range: spec.range};
          plots.push(new uPlot({width: box.clientWidth || 600, height: 180, series: spec.series,
                                axes: [axis, axis], scales: scales}, spec.values, box));
          box.dataset.points = String(data.ts.length);
        });
      })
      .catch(function () { root.querySelectorAll("[data-chart]").forEach(function (box) {
        box.textContent = "The chart could not be loaded.";
      }); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("agent-charts");
    if (!root || !window.uPlot) return;
    var buttons = document.querySelectorAll("[data-range]");
    var current = function () {
      var pressed = document.querySelector("[data-range][aria-pressed=true]");
      return pressed ? pressed.dataset.range : "24h";
    };
    buttons.forEach(function (b) {
      b.addEventListener("click", function () {
        buttons.forEach(function (o) { o.setAttribute("aria-pressed", String(o === b)); });
        draw(root, b.dataset.range);
      });
    });
    draw(root, "1h");
    buttons.forEach(function (o) { o.setAttribute("aria-pressed", String(o.dataset.range === "1h")); });
    setInterval(function () { if (!document.hidden) draw(root, current()); }, 30000);
    window.addEventListener("resize", function () {
      plots.forEach(function (p) { p.setSize({width: p.root.parentNode.clientWidth, height: 180}); });
    });
  });
})();
