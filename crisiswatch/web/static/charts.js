// crisiswatch charts: one brand's timeline as three stacked panels (uPlot, vendored under static/vendor/uplot):
//   mentions per minute against the expected band, negative share against the usual band, risk with its
//   warning/critical thresholds; alert changes and pauses are marked on every panel, paused time is shaded.
// Data: GET api/timelines or api/brands/{brand}/timeline (crisiswatch/web/charts.py). No network access of its own.
"use strict";

(() => {
  const COLORS = {
    volume: "#1f4e79",
    expected: "#2e75b6",
    band: "rgba(157, 195, 230, 0.55)",
    share: "#7f4f00",
    usual: "#bf9000",
    usualBand: "rgba(255, 230, 153, 0.75)",
    risk: "#303438",
    warning: "#d97706",
    critical: "#b3261e",
    resolved: "#6b7280",
    pause: "#b3261e",
    resume: "#1e7a3c",
    paused: "rgba(179, 38, 30, 0.10)",
  };
  const AXIS_SIZE = 46;
  let syncId = 0;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function pct(v) {
    return v == null ? "" : `${Math.round(v * 100)}%`;
  }

  // Intervals [from, to] during which the brand (or everything) was paused, from its pause/resume marks.
  function pausedIntervals(marks, end) {
    const paused = new Set();
    const out = [];
    let from = null;
    for (const mark of marks) {
      if (mark.kind !== "pause" && mark.kind !== "resume") continue;
      const before = paused.size;
      if (mark.kind === "pause") paused.add(mark.scope);
      else paused.delete(mark.scope);
      if (before === 0 && paused.size > 0) from = mark.at;
      if (before > 0 && paused.size === 0 && from !== null) {
        out.push([from, mark.at]);
        from = null;
      }
    }
    if (from !== null) out.push([from, Math.max(end, from)]);
    return out;
  }

  // uPlot plugin: paused time shaded, then a vertical line per mark (labels on the top panel only).
  function marksPlugin(state, labels) {
    return {
      hooks: {
        draw: [
          (u) => {
            const { ctx } = u;
            const { left, top, width, height } = u.bbox;
            const px = window.devicePixelRatio || 1;
            const xs = u.scales.x;
            ctx.save();
            ctx.beginPath();
            ctx.rect(left, top, width, height);
            ctx.clip();
            for (const [a, b] of pausedIntervals(state.marks, xs.max)) {
              const x0 = u.valToPos(Math.max(a, xs.min), "x", true);
              const x1 = u.valToPos(Math.min(b, xs.max), "x", true);
              if (x1 > x0) {
                ctx.fillStyle = COLORS.paused;
                ctx.fillRect(x0, top, x1 - x0, height);
              }
            }
            const labelled = [];
            for (const mark of state.marks) {
              if (mark.at < xs.min || mark.at > xs.max) continue;
              const x = Math.round(u.valToPos(mark.at, "x", true));
              let color = COLORS.resolved;
              let dash = [4 * px, 3 * px];
              let lineWidth = 1.5 * px;
              if (mark.kind === "pause") [color, dash, lineWidth] = [COLORS.pause, [], 2.5 * px];
              else if (mark.kind === "resume") [color, dash, lineWidth] = [COLORS.resume, [], 2.5 * px];
              else if (mark.status === "firing") color = mark.severity === "critical" ? COLORS.critical : COLORS.warning;
              ctx.strokeStyle = color;
              ctx.lineWidth = lineWidth;
              ctx.setLineDash(dash);
              ctx.beginPath();
              ctx.moveTo(x, top);
              ctx.lineTo(x, top + height);
              ctx.stroke();
              if (labels && (mark.kind !== "alert" || mark.status === "firing")) {
                const text = mark.kind === "pause" ? "PAUSED" : mark.kind === "resume" ? "resumed" : mark.severity;
                const rank = mark.kind === "alert" ? (mark.severity === "critical" ? 1 : 2) : 0;
                labelled.push({ x, text, color, rank });
              }
            }
            // labels: pauses first, then critical, then warning; each in the first of three rows it fits in
            ctx.font = `700 ${11 * px}px system-ui, sans-serif`;
            ctx.textAlign = "left";
            ctx.textBaseline = "alphabetic";
            ctx.setLineDash([]);
            const rows = [[], [], []];
            labelled.sort((a, b) => a.rank - b.rank);
            for (const label of labelled) {
              const w = ctx.measureText(label.text).width;
              let tx = label.x + 3 * px;
              if (tx + w > left + width) tx = label.x - 3 * px - w;
              const row = rows.findIndex((taken) => taken.every(([a, b]) => tx + w + 3 * px < a || tx > b + 3 * px));
              if (row < 0) continue;
              rows[row].push([tx, tx + w]);
              ctx.fillStyle = "rgba(255, 255, 255, 0.65)";
              ctx.fillRect(tx - px, top + row * 13 * px + 1 * px, w + 2 * px, 12 * px);
              ctx.fillStyle = label.color;
              ctx.fillText(label.text, tx, top + (row + 1) * 13 * px);
            }
            ctx.restore();
          },
        ],
      },
    };
  }

  function thresholdsPlugin(state) {
    return {
      hooks: {
        draw: [
          (u) => {
            const { ctx } = u;
            const { left, width } = u.bbox;
            const px = window.devicePixelRatio || 1;
            ctx.save();
            for (const [value, color] of [[state.thresholds.warning, COLORS.warning], [state.thresholds.critical, COLORS.critical]]) {
              const y = Math.round(u.valToPos(value, "y", true));
              ctx.strokeStyle = color;
              ctx.lineWidth = px;
              ctx.setLineDash([6 * px, 4 * px]);
              ctx.beginPath();
              ctx.moveTo(left, y);
              ctx.lineTo(left + width, y);
              ctx.stroke();
            }
            ctx.restore();
          },
        ],
      },
    };
  }

  function legend(items) {
    const box = el("div", "chart-legend");
    for (const [color, text, kind] of items) {
      const item = el("span", "legend-item");
      const swatch = el("span", `swatch ${kind || "line"}`);
      swatch.style.setProperty("--c", color);
      item.append(swatch, document.createTextNode(text));
      box.append(item);
    }
    return box;
  }

  function columnsOf(timeline, from) {
    const c = timeline.columns;
    let first = 0;
    if (from != null) while (first < c.start.length - 1 && c.start[first] < from) first++;
    const cut = (xs) => xs.slice(first);
    return {
      x: cut(c.start),
      perMinute: cut(c.per_minute),
      expected: cut(c.expected_per_minute),
      band: cut(c.band_per_minute),
      share: cut(c.negative_share),
      usual: cut(c.usual_share),
      usualBand: cut(c.usual_band),
      risk: cut(c.risk),
    };
  }

  // One brand's chart in `container`; returns {update(timeline), destroy()}.
  function create(container, timeline, options = {}) {
    const compact = Boolean(options.compact);
    const heights = compact ? [110, 70, 100] : [140, 84, 114]; // the last panel also holds the time axis
    const state = { marks: timeline.marks || [], thresholds: timeline.thresholds, from: options.from ?? null };
    const key = `cw-sync-${++syncId}`;
    const root = el("div", "chart");
    const panels = [
      {
        title: "Mentions per minute",
        legend: [[COLORS.volume, "mentions / min"], [COLORS.expected, "expected", "dash"], [COLORS.band, "usual range", "area"]],
        series: [
          { label: "usual range", stroke: "transparent", width: 0, fill: COLORS.band, points: { show: false } },
          { label: "expected", stroke: COLORS.expected, width: 1.2, dash: [5, 4], points: { show: false } },
          { label: "mentions/min", stroke: COLORS.volume, width: 2, points: { show: false } },
        ],
        data: (d) => [d.x, d.band, d.expected, d.perMinute],
        y: { range: (u, min, max) => [0, Math.max(1, max * 1.08)] },
        format: (v) => (v >= 10 || v === 0 ? String(Math.round(v)) : v.toFixed(1)),
      },
      {
        title: "Negative share (last 5 windows)",
        legend: [[COLORS.share, "negative share"], [COLORS.usual, "usual", "dash"], [COLORS.usualBand, "usual range", "area"]],
        series: [
          { label: "usual range", stroke: "transparent", width: 0, fill: COLORS.usualBand, points: { show: false } },
          { label: "usual", stroke: COLORS.usual, width: 1.2, dash: [5, 4], points: { show: false } },
          { label: "negative", stroke: COLORS.share, width: 1.6, points: { show: false } },
        ],
        data: (d) => [d.x, d.usualBand, d.usual, d.share],
        y: { range: [0, 1] },
        format: (v) => pct(v),
      },
      {
        title: "Risk",
        legend: [[COLORS.risk, "risk"], [COLORS.warning, `warning ${timeline.thresholds.warning}`, "dash"], [COLORS.critical, `critical ${timeline.thresholds.critical}`, "dash"]],
        series: [{ label: "risk", stroke: COLORS.risk, width: 1.8, points: { show: false } }],
        data: (d) => [d.x, d.risk],
        y: { range: [0, 100] },
        format: (v) => String(Math.round(v)),
        plugins: [thresholdsPlugin(state)],
      },
    ];
    const plots = [];
    const width = () => Math.max(200, Math.floor(root.clientWidth || container.clientWidth || 300));
    container.replaceChildren(root);
    const marksLegend = legend([[COLORS.critical, "alert"], [COLORS.pause, "paused", "area-red"], [COLORS.resume, "resumed"]]);
    panels.forEach((panel, i) => {
      const wrap = el("div", "chart-panel");
      const head = el("div", "chart-head");
      head.append(el("span", "chart-title", panel.title), legend(panel.legend));
      wrap.append(head);
      root.append(wrap);
      const last = i === panels.length - 1;
      const opts = {
        width: width(),
        height: heights[i],
        legend: { show: false },
        cursor: { sync: { key }, drag: { x: false, y: false }, points: { show: false } },
        scales: {
          x: { time: true, range: (u, min, max) => [state.from != null ? Math.min(state.from, max) : min, max] },
          y: panel.y,
        },
        axes: [
          { show: last, size: last ? 30 : 0, gap: 2, space: 78, font: "11px system-ui, sans-serif", grid: { stroke: "#eceff3" }, ticks: { show: false } },
          {
            size: AXIS_SIZE, gap: 3, font: "11px system-ui, sans-serif", grid: { stroke: "#eceff3" }, ticks: { show: false },
            values: (u, vals) => vals.map(panel.format),
          },
        ],
        series: [{}, ...panel.series],
        plugins: [marksPlugin(state, i === 0), ...(panel.plugins || [])],
      };
      const plot = new uPlot(opts, panel.data(columnsOf(timeline, state.from)), wrap);
      plots.push({ plot, panel });
    });
    root.append(marksLegend);
    let lastWidth = width();
    const observer = new ResizeObserver(() => {
      const w = width();
      if (w === lastWidth) return;
      lastWidth = w;
      for (const { plot } of plots) plot.setSize({ width: w, height: plot.height });
    });
    observer.observe(root);
    return {
      root,
      update(next, from) {
        state.marks = next.marks || [];
        state.thresholds = next.thresholds;
        if (from !== undefined) state.from = from;
        const d = columnsOf(next, state.from);
        for (const { plot, panel } of plots) plot.setData(panel.data(d));
      },
      destroy() {
        observer.disconnect();
        for (const { plot } of plots) plot.destroy();
        root.remove();
      },
    };
  }

  window.CrisisCharts = { create, pausedIntervals };
})();
