// The dashboard's only script: times in the browser's zone (UTC stays in the title), and the chart.
"use strict";
(function () {
  const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

  function localiseTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      const at = new Date(el.getAttribute("datetime"));
      if (!isNaN(at)) el.textContent = format.format(at);
    });
  }

  function drawChart(el) {
    if (typeof uPlot === "undefined") return;
    let plot = null;
    function draw(body) {
      const data = [body.minutes, body.sent, body.failed];
      const width = Math.max(280, el.clientWidth);
      if (plot === null) {
        plot = new uPlot({
          width: width, height: 240,
          series: [{}, { label: "sent", stroke: "#1a7f37", width: 2 }, { label: "failed", stroke: "#b42318", width: 2 }],
          axes: [{}, { label: "per minute" }],
        }, data, el);
      } else {
        plot.setData(data);
      }
      const rate = document.querySelector("[data-rate]");
      if (rate) rate.textContent = body.successRate === null ? "no outcomes yet" : (body.successRate * 100).toFixed(1) + " %";
      const sum = function (xs) { return xs.reduce(function (a, b) { return a + b; }, 0); };
      const sent = document.querySelector("[data-sent]"), failed = document.querySelector("[data-failed]");
      if (sent) sent.textContent = sum(body.sent);
      if (failed) failed.textContent = sum(body.failed);
    }
    function load() {
      fetch(el.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(draw)
        .catch(function () { /* the next refresh tries again; the numbers above stay */ });
    }
    draw(JSON.parse(el.dataset.series));  // rendered with the page: no second query to open it
    setInterval(function () { if (!document.hidden) load(); }, 30000);
    window.addEventListener("resize", function () { if (plot) plot.setSize({ width: Math.max(280, el.clientWidth), height: 240 }); });
  }

  function stampZone(root) {
    // datetime-local fields are the browser's time: the server reads them in the browser's zone
    const name = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    root.querySelectorAll("input[data-tz]").forEach(function (el) { el.value = name; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localiseTimes(document);
    stampZone(document);
    const chart = document.getElementById("chart");
    if (chart) drawChart(chart);
  });
  document.addEventListener("htmx:afterSwap", function (event) { localiseTimes(event.target); });
  // a tab nobody looks at polls nothing; the next refresh after it is shown again catches up
  document.addEventListener("htmx:beforeRequest", function (event) { if (document.hidden) event.preventDefault(); });
})();
