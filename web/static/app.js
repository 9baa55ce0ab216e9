// xuptime dashboard: theme toggle, CSRF header for htmx, copy buttons, confirmations, and the
// page's one live stream (Server-Sent Events) that keeps every [data-monitor-id] element's
// data-status and status badge current. No inline script: the pages' CSP forbids it.
(function () {
  "use strict";
  var root = document.documentElement;
  var saved = localStorage.getItem("xuptime-theme");
  if (saved) root.dataset.theme = saved;

  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.getElementById("theme-toggle");
    if (toggle) toggle.addEventListener("click", function () {
      var dark = root.dataset.theme ? root.dataset.theme === "dark"
        : window.matchMedia("(prefers-color-scheme: dark)").matches;
      root.dataset.theme = dark ? "light" : "dark";
      localStorage.setItem("xuptime-theme", root.dataset.theme);
    });

    document.body.addEventListener("htmx:configRequest", function (e) {
      e.detail.headers["X-CSRF-Token"] = document.body.dataset.csrf || "";
    });

    document.addEventListener("click", function (e) {
      var button = e.target.closest("[data-copy]");
      if (!button) return;
      var source = document.querySelector(button.dataset.copy);
      if (!source) return;
      var text = source.textContent.trim();
      var done = function () { button.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { select(source); });
      } else { select(source); document.execCommand("copy"); done(); }
    });

    document.addEventListener("submit", function (e) {
      var form = e.target.closest("form[data-confirm]");
      if (form && !window.confirm(form.dataset.confirm)) e.preventDefault();
    });

    if (document.body.dataset.live && window.EventSource) live(document.body.dataset.live);
  });

  function select(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  function setStatus(id, status) {
    document.querySelectorAll('[data-monitor-id="' + id + '"]').forEach(function (el) {
      el.dataset.status = status;
      el.querySelectorAll('[data-role="status"]').forEach(function (badge) {
        badge.textContent = status;
        badge.className = "status status-" + status;
      });
    });
  }

  var refreshTimer = null;
  function refreshList() {
    // A monitor came or went (or the stream lagged): reload the list's table in place.
    var table = document.getElementById("monitor-table");
    if (!table || !window.htmx) return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      htmx.ajax("GET", location.pathname + location.search, {target: "#monitor-table", select: "#monitor-table", swap: "outerHTML"});
    }, 300);
  }

  function live(url) {
    var source = new EventSource(url);
    source.addEventListener("status", function (e) {
      var event = JSON.parse(e.data);
      setStatus(event.id, event.status);
      document.dispatchEvent(new CustomEvent("xuptime:status", {detail: event}));
    });
    source.addEventListener("created", refreshList);
    source.addEventListener("deleted", refreshList);
    source.addEventListener("resync", function () {
      if (document.getElementById("monitor-table")) refreshList(); else location.reload();
    });
    source.addEventListener("open", function () { document.body.dataset.liveState = "open"; });
    source.addEventListener("error", function () { document.body.dataset.liveState = "retrying"; });
  }
})();
