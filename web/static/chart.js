// The monitor page's latency chart (uPlot): raw checks with their phases for 1 h; average,
// p95 and p99 per bucket for longer ranges. Data from /monitors/{id}/chart?range=...
(function () {
  "use strict";
  var plot = null;

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  function series(data) {
    var ms = function (u, v) { return v == null ? "-" : v.toFixed(1) + " ms"; };
    if (data.kind === "raw") {
      return {
        values: [data.ts, data.latency, data.dns, data.connect, data.tls, data.ttfb],
        series: [{}, {label: "total", stroke: css("--accent"), width: 2, value: ms},
          {label: "dns", stroke: "#a855f7", value: ms}, {label: "connect", stroke: "#f59e0b", value: ms},
          {label: "tls", stroke: "#14b8a6", value: ms}, {label: "first byte", stroke: "#ec4899", value: ms}]
      };
    }
    return {
      values: [data.ts, data.avg, data.p95, data.p99],
      series: [{}, {label: "average", stroke: css("--accent"), width: 2, value: ms},
        {label: "p95", stroke: "#f59e0b", value: ms}, {label: "p99", stroke: "#ef4444", value: ms}]
    };
  }

  function draw(box, range) {
    fetch(box.dataset.src + "?range=" + encodeURIComponent(range), {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (data) {
        var s = series(data);
        if (plot) { plot.destroy(); plot = null; }
        box.textContent = "";
        if (!data.ts.length) { box.textContent = "No checks in this range yet."; return; }
        var axis = {stroke: css("--muted"), grid: {stroke: css("--line")}, ticks: {stroke: css("--line")}};
        plot = new uPlot({
          width: box.clientWidth || 600, height: 260, series: s.series,
          axes: [axis, Object.assign({}, axis, {label: "ms"})], scales: {x: {time: true, range: [data.from, data.to]}},
        }, s.values, box);
        box.dataset.points = String(data.ts.length);
      })
      .catch(function () { box.textContent = "The chart could not be loaded."; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("chart");
    if (!box || !window.uPlot) return;
    var buttons = document.querySelectorAll("[data-range]");
    buttons.forEach(function (b) {
      b.addEventListener("click", function () {
        buttons.forEach(function (o) { o.setAttribute("aria-pressed", String(o === b)); });
        draw(box, b.dataset.range);
      });
    });
    var current = function () {
      var pressed = document.querySelector("[data-range][aria-pressed=true]");
      return pressed ? pressed.dataset.range : "24h";
    };
    draw(box, "24h");
    // new checks: redraw when this monitor's status changes, and once a minute
    var head = document.querySelector(".page-head[data-monitor-id]");
    document.addEventListener("xuptime:status", function (e) {
      if (head && String(e.detail.id) === head.dataset.monitorId) draw(box, current());
    });
    setInterval(function () { if (!document.hidden) draw(box, current()); }, 60000);
    window.addEventListener("resize", function () { if (plot) plot.setSize({width: box.clientWidth, height: 260}); });
  });
})();
