/* FieldLine QA charts: small SVG charts written for this dashboard (no external library, works offline).
 *
 *   FLCharts.trend(el, {points: [{ts_ms, parts, rejects, rate}], from_ms, to_ms, bucket_ms})
 *   FLCharts.pareto(el, {items: [{label, count, cumulative}]})
 *   FLCharts.pchart(el, {points: [{ts_ms, n, p, ucl, lcl, flagged, rules}], p_bar})
 *
 * Each call clears `el` and draws one <svg> sized to the element. Elements carry classes the tests count:
 * .trend-point, .trend-bar, .pareto-bar, .pareto-cum-point, .pchart-point (.flagged), .pchart-ucl, .pchart-lcl.
 */
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, parent, text) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function title(node, text) {
    el("title", {}, node, text);
    return node;
  }

  /* Round tick values covering [min, max] (about `count` of them). */
  function niceTicks(min, max, count, integer) {
    if (!(max > min)) max = min + 1;
    const raw = Math.max((max - min) / Math.max(1, count), integer ? 1 : 0);
    const magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
    const factors = integer && magnitude === 1 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
    const step = factors.map((m) => m * magnitude).find((s) => s >= raw) || raw;
    const ticks = [];
    for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(+v.toFixed(10));
    return ticks;
  }

  function niceMax(value, fallback) {
    if (!(value > 0)) return fallback;
    const ticks = niceTicks(0, value * 1.1, 4);
    return ticks[ticks.length - 1] >= value ? ticks[ticks.length - 1] : value * 1.1;
  }

  function linear(d0, d1, r0, r1) {
    const span = d1 - d0 || 1;
    return (v) => r0 + ((v - d0) / span) * (r1 - r0);
  }

  const pct = (v, digits) => (v * 100).toFixed(digits === undefined ? 1 : digits) + "%";
  const pad = (n) => String(n).padStart(2, "0");

  function timeLabel(ts, spanMs) {
    const d = new Date(ts);
    const hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    if (spanMs <= 26 * 3600 * 1000) return hm;
    return d.toLocaleDateString(undefined, { weekday: "short", day: "numeric" }) + " " + hm;
  }

  function timeTicks(from, to, maxTicks) {
    const steps = [60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 10800e3, 21600e3, 43200e3, 86400e3];
    const step = steps.find((s) => (to - from) / s <= maxTicks) || 86400e3;
    const offset = new Date(from).getTimezoneOffset() * 60e3; // ticks on local round times
    const ticks = [];
    for (let t = Math.ceil((from - offset) / step) * step + offset; t <= to; t += step) ticks.push(t);
    return ticks;
  }

  /* An <svg> filling `container`, with a plot area inside the margins. */
  function frame(container, margin) {
    container.textContent = "";
    const width = Math.max(200, container.clientWidth);
    const height = Math.max(140, container.clientHeight);
    const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" }, container);
    const plot = { left: margin.left, top: margin.top, right: width - margin.right, bottom: height - margin.bottom };
    return { svg, width, height, plot };
  }

  function yAxis(svg, plot, ticks, scale, format, side) {
    const g = el("g", { class: "axis y-axis" + (side === "right" ? " right" : "") }, svg);
    for (const t of ticks) {
      const y = scale(t);
      if (side !== "right") el("line", { x1: plot.left, x2: plot.right, y1: y, y2: y, class: "grid" }, g);
      const x = side === "right" ? plot.right + 8 : plot.left - 8;
      el("text", { x, y: y + 4, "text-anchor": side === "right" ? "start" : "end" }, g, format(t));
    }
    return g;
  }

  function xTimeAxis(svg, plot, from, to, scale) {
    const g = el("g", { class: "axis x-axis" }, svg);
    el("line", { x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom, class: "baseline" }, g);
    const maxTicks = Math.max(2, Math.floor((plot.right - plot.left) / 90));
    for (const t of timeTicks(from, to, maxTicks)) {
      const x = scale(t);
      el("line", { x1: x, x2: x, y1: plot.bottom, y2: plot.bottom + 5, class: "tick" }, g);
      el("text", { x, y: plot.bottom + 20, "text-anchor": "middle" }, g, timeLabel(t, to - from));
    }
  }

  function empty(f, message) {
    el("text", { x: f.width / 2, y: f.height / 2, "text-anchor": "middle", class: "empty" }, f.svg, message);
  }

  /* Path through the points, broken where a value is missing. */
  function brokenPath(points) {
    let d = "";
    let pen = false;
    for (const p of points) {
      if (p === null) { pen = false; continue; }
      d += (pen ? "L" : "M") + p[0].toFixed(1) + "," + p[1].toFixed(1);
      pen = true;
    }
    return d;
  }

  /* Defect rate per bucket (line, left axis) over the parts inspected (faint bars, right axis). */
  function trend(container, data) {
    const f = frame(container, { left: 64, right: 56, top: 16, bottom: 32 });
    const { svg, plot } = f;
    const points = data.points || [];
    const x = linear(data.from_ms, data.to_ms, plot.left, plot.right);
    const maxRate = niceMax(Math.max(0, ...points.map((p) => p.rate || 0)), 0.05);
    const y = linear(0, maxRate, plot.bottom, plot.top);
    const maxParts = niceMax(Math.max(0, ...points.map((p) => p.parts)), 10);
    const yParts = linear(0, maxParts, plot.bottom, plot.top);
    yAxis(svg, plot, niceTicks(0, maxRate, 4), y, (v) => pct(v, maxRate < 0.05 ? 1 : 0));
    yAxis(svg, plot, niceTicks(0, maxParts, 4, true), yParts, (v) => String(v), "right");
    xTimeAxis(svg, plot, data.from_ms, data.to_ms, x);
    const bars = el("g", { class: "trend-bars" }, svg);
    const barWidth = Math.max(1, (x(data.from_ms + data.bucket_ms) - x(data.from_ms)) * 0.8);
    for (const p of points) {
      if (!p.parts) continue;
      const left = Math.max(plot.left, x(p.ts_ms) + barWidth * 0.125);
      const top = yParts(p.parts);
      title(el("rect", { x: left, y: top, width: barWidth, height: plot.bottom - top, class: "trend-bar" }, bars),
        `${timeLabel(p.ts_ms, 0)}: ${p.parts} parts`);
    }
    const withRate = points.filter((p) => p.rate !== null && p.rate !== undefined);
    if (!withRate.length) { empty(f, "No parts inspected in this window"); return; }
    const centre = (p) => Math.min(plot.right, Math.max(plot.left, x(p.ts_ms + data.bucket_ms / 2)));
    el("path", {
      d: brokenPath(points.map((p) => (p.rate === null ? null : [centre(p), y(p.rate)]))), class: "trend-line",
    }, svg);
    const dots = el("g", { class: "trend-points" }, svg);
    for (const p of withRate) {
      title(el("circle", { cx: centre(p), cy: y(p.rate), r: 3.5, class: "trend-point" }, dots),
        `${timeLabel(p.ts_ms, 0)}  ${pct(p.rate, 2)}  (${p.rejects} of ${p.parts})`);
    }
    el("text", { x: plot.left, y: 12, class: "axis-title" }, svg, "defect rate");
    el("text", { x: plot.right, y: 12, class: "axis-title", "text-anchor": "end" }, svg, "parts");
  }

  /* Pareto: bars by count (left axis), cumulative share line (right axis, 0-100 %), 80 % reference. */
  function pareto(container, data) {
    const items = data.items || [];
    const rotate = items.length * 90 > container.clientWidth - 110;
    const f = frame(container, { left: 56, right: 52, top: 16, bottom: rotate ? 78 : 40 });
    const { svg, plot } = f;
    if (!items.length) { empty(f, "No defects in this window"); return; }
    const band = (plot.right - plot.left) / items.length;
    const barWidth = Math.min(band * 0.7, 120);
    const maxCount = niceMax(items[0].count, 1);
    const y = linear(0, maxCount, plot.bottom, plot.top);
    const yCum = linear(0, 1, plot.bottom, plot.top);
    yAxis(svg, plot, niceTicks(0, maxCount, 4, true), y, (v) => String(v));
    yAxis(svg, plot, [0, 0.25, 0.5, 0.75, 1], yCum, (v) => pct(v, 0), "right");
    el("line", { x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom, class: "baseline" }, svg);
    el("line", { x1: plot.left, x2: plot.right, y1: yCum(0.8), y2: yCum(0.8), class: "reference" }, svg);
    const bars = el("g", { class: "pareto-bars" }, svg);
    const labels = el("g", { class: "axis x-axis" }, svg);
    const maxChars = rotate ? 13 : Math.max(4, Math.floor(band / 7.5));
    items.forEach((item, i) => {
      const cx = plot.left + (i + 0.5) * band;
      const top = y(item.count);
      title(el("rect", { x: cx - barWidth / 2, y: top, width: barWidth, height: plot.bottom - top, class: "pareto-bar" }, bars),
        `${item.label}: ${item.count} (${pct(item.share || 0)})`);
      el("text", { x: cx, y: top - 5, "text-anchor": "middle", class: "bar-value" }, bars, String(item.count));
      const short = item.label.length > maxChars ? item.label.slice(0, maxChars - 1) + "…" : item.label;
      const label = title(el("text", { x: cx, y: plot.bottom + 18, "text-anchor": rotate ? "end" : "middle" }, labels,
        short), item.label);
      if (rotate) label.setAttribute("transform", `rotate(-35 ${cx} ${plot.bottom + 14})`);
    });
    const cum = items.map((item, i) => [plot.left + (i + 0.5) * band, yCum(item.cumulative)]);
    el("path", { d: brokenPath(cum), class: "pareto-cum" }, svg);
    const dots = el("g", {}, svg);
    items.forEach((item, i) => {
      title(el("circle", { cx: cum[i][0], cy: cum[i][1], r: 4, class: "pareto-cum-point" }, dots),
        `${item.label}: cumulative ${pct(item.cumulative)}`);
    });
    el("text", { x: plot.left, y: 12, class: "axis-title" }, svg, "defects");
    el("text", { x: plot.right, y: 12, class: "axis-title", "text-anchor": "end" }, svg, "cumulative");
  }

  /* p-chart: one point per subgroup (in order), centre line, UCL/LCL as steps (they vary with n). */
  function pchart(container, data) {
    const f = frame(container, { left: 64, right: 24, top: 24, bottom: 32 });
    const { svg, plot } = f;
    const points = data.points || [];
    if (!points.length) { empty(f, "No subgroups in this window"); return; }
    const step = (plot.right - plot.left) / points.length;
    const cx = (i) => plot.left + (i + 0.5) * step;
    const maxY = niceMax(Math.max(data.p_bar, ...points.map((p) => Math.max(p.p, p.ucl))), 0.05);
    const y = linear(0, maxY, plot.bottom, plot.top);
    yAxis(svg, plot, niceTicks(0, maxY, 4), y, (v) => pct(v, maxY < 0.05 ? 1 : 0));
    const axis = el("g", { class: "axis x-axis" }, svg);
    el("line", { x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom, class: "baseline" }, axis);
    const every = Math.max(1, Math.ceil(points.length / Math.max(2, Math.floor((plot.right - plot.left) / 90))));
    const span = points[points.length - 1].ts_ms - points[0].ts_ms;
    points.forEach((p, i) => {
      if (i % every) return;
      el("text", { x: cx(i), y: plot.bottom + 20, "text-anchor": "middle" }, axis, timeLabel(p.ts_ms, span));
    });
    const stepPath = (key) => points.map((p, i) => {
      const x0 = plot.left + i * step;
      return (i ? "L" : "M") + x0.toFixed(1) + "," + y(p[key]).toFixed(1) + "L" + (x0 + step).toFixed(1) + ","
        + y(p[key]).toFixed(1);
    }).join("");
    title(el("path", { d: stepPath("ucl"), class: "pchart-ucl" }, svg), "UCL = p̄ + 3σ(n)");
    title(el("path", { d: stepPath("lcl"), class: "pchart-lcl" }, svg), "LCL = max(0, p̄ − 3σ(n))");
    el("line", { x1: plot.left, x2: plot.right, y1: y(data.p_bar), y2: y(data.p_bar), class: "pchart-centre" }, svg);
    el("text", { x: plot.right - 4, y: y(data.p_bar) - 6, "text-anchor": "end", class: "centre-label" }, svg,
      "p̄ " + pct(data.p_bar, 2));
    el("path", { d: brokenPath(points.map((p, i) => [cx(i), y(p.p)])), class: "pchart-line" }, svg);
    const dots = el("g", { class: "pchart-points" }, svg);
    points.forEach((p, i) => {
      const text = `${timeLabel(p.ts_ms, 0)}  p = ${pct(p.p, 2)}  (${p.rejects} of ${p.n})\n` +
        `UCL ${pct(p.ucl, 2)}  LCL ${pct(p.lcl, 2)}` + (p.flagged ? `\nout of control: ${p.rules.join(", ")}` : "");
      title(el("circle", {
        cx: cx(i), cy: y(p.p), r: p.flagged ? 6 : 3.5, class: "pchart-point" + (p.flagged ? " flagged" : ""),
      }, dots), text);
    });
    const legend = el("g", { class: "legend" }, svg);
    const items = [["legend-centre", "centre p̄"], ["legend-limit", "UCL / LCL (3σ)"], ["legend-flagged", "out of control"]];
    let lx = plot.left + 8;
    for (const [cls, text] of items) {
      if (cls === "legend-flagged") el("circle", { cx: lx + 8, cy: 10, r: 5, class: cls }, legend);
      else el("line", { x1: lx, x2: lx + 18, y1: 10, y2: 10, class: cls }, legend);
      el("text", { x: lx + 24, y: 14 }, legend, text);
      lx += 24 + text.length * 7.5 + 18;
    }
  }

  window.FLCharts = { trend, pareto, pchart, niceTicks };
})();
