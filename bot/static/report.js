// The report's charts (Laporan), drawn by Chart.js (vendor/chart.umd.min.js, served from this
// origin) from the figures the server puts in each canvas's data-chart: labels along one axis and
// one series of values per colour. A figure stays hidden until its chart is drawn, so without
// JavaScript the page shows only the tables, which hold the same figures.
"use strict";
(function () {
  var LINE = 15; // pixels per line of a label in a horizontal chart
  var WRAP = 22; // characters per line of such a label

  function cssColor(style, key) {
    return (style.getPropertyValue("--chart-" + key) || style.getPropertyValue("--chart-count")).trim();
  }

  function formatted(value, unit) {
    var text = Number(value).toLocaleString("id-ID", { maximumFractionDigits: 1 });
    return unit === "percent" ? text + " %" : text;
  }

  // A long label in lines of at most WRAP characters, cut between words.
  function wrapped(label) {
    var lines = [];
    String(label).split(" ").forEach(function (word) {
      var last = lines.length - 1;
      if (last >= 0 && (lines[last] + " " + word).length <= WRAP) {
        lines[last] += " " + word;
      } else {
        lines.push(word);
      }
    });
    return lines.length > 1 ? lines : lines[0] || "";
  }

  function labelLines(label) {
    return Array.isArray(label) ? label.length : 1;
  }

  function scales(spec, ink, grid) {
    var value = {
      beginAtZero: true,
      stacked: spec.stacked,
      grid: { color: grid },
      ticks: { color: ink, precision: spec.unit === "count" ? 0 : undefined },
    };
    value.ticks.callback = function (tick) { return formatted(tick, spec.unit); };
    if (spec.unit === "percent") { value.max = 100; }
    var category = {
      stacked: spec.stacked,
      grid: { display: false },
      ticks: { color: ink, autoSkip: !spec.horizontal },
    };
    return spec.horizontal ? { x: value, y: category } : { x: category, y: value };
  }

  function config(spec, labels, style) {
    var valueAxis = spec.horizontal ? "x" : "y";
    var ink = cssColor(style, "ink");
    return {
      type: "bar",
      data: {
        labels: labels,
        datasets: spec.series.map(function (series) {
          return {
            label: series.label,
            data: series.values,
            backgroundColor: cssColor(style, series.key),
            maxBarThickness: 28,
          };
        }),
      },
      options: {
        indexAxis: spec.horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        locale: "id-ID",
        interaction: { mode: spec.stacked ? "index" : "nearest", intersect: !spec.stacked },
        scales: scales(spec, ink, cssColor(style, "grid")),
        plugins: {
          legend: { display: spec.series.length > 1, position: "bottom", labels: { color: ink, boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: function (item) {
                return item.dataset.label + ": " + formatted(item.parsed[valueAxis], spec.unit);
              },
            },
          },
        },
      },
    };
  }

  function draw(canvas, style) {
    var spec = JSON.parse(canvas.dataset.chart);
    var labels = spec.horizontal ? spec.labels.map(wrapped) : spec.labels;
    canvas.closest("figure").hidden = false;
    if (spec.horizontal) {
      // Rows of equal height, each tall enough for the longest label; then the axis and the legend.
      var lines = Math.max.apply(null, labels.map(labelLines).concat(1.6));
      var legend = spec.series.length > 1 ? 30 : 0;
      canvas.parentNode.style.height = Math.round(labels.length * (lines * LINE + 6) + 40 + legend) + "px";
    }
    new window.Chart(canvas, config(spec, labels, style));
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.Chart) { return; } // the library did not load: the tables remain
    var style = getComputedStyle(document.documentElement);
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) { draw(canvas, style); });
  });
})();
