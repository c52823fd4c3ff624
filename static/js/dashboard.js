/* Management dashboard charts (Chart.js, vendored in static/vendor/chartjs).
   The figures come from the page's json_script block (#dashboard-data); the tables
   beside each chart hold the same numbers. No inline script: the CSP allows only
   files served by the site. */
(function () {
  "use strict";

  var PALETTE = ["#0b6bcb", "#2e7d32", "#b26a00", "#c62828", "#6a1b9a", "#00838f",
                 "#5d4037", "#ad1457", "#455a64", "#9e9d24", "#3949ab", "#ef6c00", "#8d6e63"];

  function barOptions(extra) {
    var options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: { legend: { display: false } },
      scales: { y: { beginAtZero: true } }
    };
    return Object.assign(options, extra || {});
  }

  var builders = {
    volume: function (d) {
      return {
        type: "line",
        data: {
          labels: d.labels,
          datasets: [
            { label: d.series[0].label, data: d.series[0].data, borderColor: PALETTE[0],
              backgroundColor: "rgba(11,107,203,0.15)", fill: true, tension: 0.2, pointRadius: 2 },
            { label: d.series[1].label, data: d.series[1].data, borderColor: "#9aa5b1",
              borderDash: [5, 4], fill: false, tension: 0.2, pointRadius: 0 }
          ]
        },
        options: barOptions({ plugins: { legend: { display: true, position: "bottom" } } })
      };
    },
    channels: function (d) {
      return {
        type: "doughnut",
        data: { labels: d.labels, datasets: [{ data: d.data, backgroundColor: PALETTE }] },
        options: { responsive: true, maintainAspectRatio: false, animation: false,
                   // Many channels: the table beside the chart names them all.
                   plugins: { legend: { display: d.labels.length <= 6, position: "right" } } }
      };
    },
    pareto: function (d) {
      return {
        type: "bar",
        data: {
          labels: d.labels,
          datasets: [
            { type: "bar", label: d.countLabel, data: d.data, backgroundColor: PALETTE[0], yAxisID: "y" },
            { type: "line", label: d.cumulativeLabel, data: d.cumulative, borderColor: PALETTE[3], clip: false,
              backgroundColor: PALETTE[3], yAxisID: "pct", pointRadius: 2 }
          ]
        },
        options: barOptions({
          plugins: { legend: { display: true, position: "bottom" } },
          scales: {
            y: { beginAtZero: true },
            pct: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false },
                   ticks: { callback: function (v) { return v + "%"; } } }
          }
        })
      };
    },
    sla: function (d) {
      return {
        type: "bar",
        data: { labels: d.labels, datasets: [{ label: d.label, data: d.data, backgroundColor: PALETTE[1] }] },
        options: barOptions({ scales: { y: { min: 0, max: 100 } } })
      };
    },
    satisfaction: function (d) {
      return {
        type: "bar",
        data: { labels: d.labels, datasets: [{ label: d.label, data: d.data, backgroundColor: PALETTE[4] }] },
        options: barOptions({ scales: { y: { min: 0, max: 5 } } })
      };
    },
    departments: function (d) {
      return {
        type: "bar",
        data: { labels: d.labels, datasets: [{ label: d.label, data: d.data, backgroundColor: PALETTE[5] }] },
        options: barOptions({ indexAxis: "y", scales: { x: { beginAtZero: true } } })
      };
    },
    compensation: function (d) {
      return {
        type: "bar",
        data: { labels: d.labels, datasets: [{ label: d.label, data: d.data, backgroundColor: PALETTE[2] }] },
        options: barOptions()
      };
    }
  };

  function init() {
    var source = document.getElementById("dashboard-data");
    if (!source || typeof window.Chart === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var name = canvas.getAttribute("data-chart");
      if (builders[name] && data[name]) {
        new window.Chart(canvas, builders[name](data[name]));
        canvas.setAttribute("data-rendered", "true");
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
