// Alliance Pulse — hand-written SVG charts and value formatting, shared by
// the supervisor's page (reports) and the therapist's page (the client's
// history). No dependency: a few SVG elements per chart, each with a
// <title>/<desc> and a data-table alternative.

import { el } from "./ui.mjs";

export function fmt(v) {
  if (v === null || v === undefined) return "—";
  if (Array.isArray(v) && v.length === 0) return "none";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) < 10 ? 2 : 1);
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number")) return `[${fmt(v[0])}, ${fmt(v[1])}]`;
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

// a value under its field name: times (…_at, microseconds since the epoch) as dates
export function fmtField(k, v) {
  if (typeof v === "number" && /(_at|_us)$/.test(String(k)) && v > 1e14) {
    return new Date(v / 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }
  return fmt(v);
}

/* ---------------- charts: hand-written SVG ---------------- */
// Small pieces: a linear scale with "nice" ticks, a frame with a <title>
// and <desc> (role=img, focusable), axes, lines, points, error bars. Every
// chart scales with its viewBox and comes with a data table alternative.
export const NS = "http://www.w3.org/2000/svg";
let chartSeq = 0;

export function sv(tag, attrs = {}, ...kids) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v;
    else e.setAttribute(k, String(v));
  }
  for (const c of kids.flat()) if (c) e.append(c);
  return e;
}

export function niceStep(span, n) {
  const raw = span / Math.max(1, n);
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
}

export function scale([d0, d1], [r0, r1], n = 5) {
  if (!(d1 > d0)) { d0 -= 1; d1 += 1; }
  const f = (v) => r0 + ((v - d0) / (d1 - d0)) * (r1 - r0);
  f.domain = [d0, d1];
  f.ticks = (k = n) => {
    const st = niceStep(d1 - d0, k);
    const out = [];
    for (let v = Math.ceil(d0 / st - 1e-9) * st; v <= d1 + st * 1e-9; v += st) out.push(Math.round(v / st) * st);
    return out;
  };
  return f;
}

// a domain covering the values (and `include`), widened to nice ticks
export function niceDomain(vals, include = [], pad = 0.05) {
  const v = vals.concat(include).filter((x) => typeof x === "number" && isFinite(x));
  if (!v.length) return [0, 1];
  let lo = Math.min(...v), hi = Math.max(...v);
  if (hi === lo) { lo -= 1; hi += 1; }
  const span = hi - lo;
  lo -= span * pad; hi += span * pad;
  const st = niceStep(hi - lo, 5);
  return [Math.floor(lo / st) * st, Math.ceil(hi / st) * st];
}

export const num = (x) => typeof x === "number" && isFinite(x);
export const f2 = (v) => (num(v) ? v.toFixed(2) : "—");
export const sgn = (v) => (num(v) ? v.toFixed(2).replace(/^-/, "\u2212") : "—");
export const MOD = { video: "online (video)", in_person: "in person" };

export const narrow = () => window.matchMedia("(max-width: 37.5rem)").matches;

export function frame({ W = narrow() ? 360 : 640, H = narrow() ? 300 : 320, m = { t: 34, r: 16, b: 48, l: 56 }, title, desc, cls }) {
  const id = `chart-${++chartSeq}`;
  const svg = sv("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", tabindex: "0", class: `chart ${cls || ""}`,
    "aria-labelledby": `${id}-t ${id}-d`, focusable: "true" },
  sv("title", { id: `${id}-t`, text: title }), sv("desc", { id: `${id}-d`, text: desc }),
  // marks beyond the axes (a wide interval) are cut at the plot's edge
  sv("defs", {}, sv("clipPath", { id: `${id}-clip` }, sv("rect", { x: m.l, y: m.t, width: W - m.l - m.r, height: H - m.t - m.b }))));
  return { svg, W, H, m, x0: m.l, x1: W - m.r, y0: H - m.b, y1: m.t, clip: `url(#${id}-clip)` };
}

export const tickFmt = (v) => String(+v.toFixed(4)).replace("-", "\u2212");

export function axes(fr, x, y, { xLabel, yLabel, xTicks, yTicks, xFmt = tickFmt, yFmt = tickFmt }) {
  const g = sv("g", { class: "axes", "aria-hidden": "true" });
  for (const v of yTicks || y.ticks()) {
    g.append(sv("line", { x1: fr.x0, x2: fr.x1, y1: y(v), y2: y(v), class: "grid" }),
      sv("text", { x: fr.x0 - 6, y: y(v) + 4, "text-anchor": "end", class: "tick", text: yFmt(v) }));
  }
  for (const v of xTicks || x.ticks()) {
    g.append(sv("line", { x1: x(v), x2: x(v), y1: fr.y0, y2: fr.y0 + 5, class: "axis" }),
      sv("text", { x: x(v), y: fr.y0 + 18, "text-anchor": "middle", class: "tick", text: xFmt(v) }));
  }
  g.append(sv("line", { x1: fr.x0, x2: fr.x1, y1: fr.y0, y2: fr.y0, class: "axis" }),
    sv("line", { x1: fr.x0, x2: fr.x0, y1: fr.y0, y2: fr.y1, class: "axis" }),
    sv("text", { x: (fr.x0 + fr.x1) / 2, y: fr.H - 8, "text-anchor": "middle", class: "axis-label", text: xLabel }),
    sv("text", { x: 14, y: (fr.y0 + fr.y1) / 2, "text-anchor": "middle", class: "axis-label",
      transform: `rotate(-90 14 ${(fr.y0 + fr.y1) / 2})`, text: yLabel }));
  fr.svg.append(g);
}

export const polyline = (pts, cls) => sv("polyline", { points: pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" "), class: cls, fill: "none" });

// a marker: circle for video, square for in person (shape as well as colour)
export function marker(cx, cy, modality, cls, label, r = 5) {
  const t = label ? sv("title", { text: label }) : null;
  if (modality === "in_person") return sv("rect", { x: cx - r, y: cy - r, width: 2 * r, height: 2 * r, class: `${cls} m-in_person` }, t);
  return sv("circle", { cx, cy, r, class: `${cls} m-video` }, t);
}

export function legend(fr, items) {
  const g = sv("g", { class: "legend", "aria-hidden": "true" });
  let x = 8;
  for (const [modality, text, lineCls] of items) {
    if (lineCls) g.append(sv("line", { x1: x, x2: x + 22, y1: 13, y2: 13, class: lineCls }));
    if (modality) g.append(marker(x + 11, 13, modality, "pt", null, 4));
    g.append(sv("text", { x: x + 28, y: 17, class: "tick", text }));
    x += 40 + text.length * 7.5;
  }
  fr.svg.append(g);
}

export function dataTable(caption, head, rows) {
  return el("details", { class: "chart-data" }, el("summary", { text: "Show the data as a table" }),
    el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
      el("table", {}, el("caption", { text: caption }),
        el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => el(i ? "td" : "th", i ? { text: c } : { scope: "row", text: c }))))))));
}

export function figure(cls, svg, caption, table, extra = {}) {
  return el("figure", { class: `chart-figure ${cls}`, ...extra }, svg, el("figcaption", { text: caption }), table);
}

// the client's end totals (and the therapist's) by visit number
export function trendChart(client, rows, scaleMinMax) {
  const pts = rows.filter((r) => num(r.visit_number) && (num(r.client_total) || num(r.therapist_total)))
    .sort((a, b) => a.visit_number - b.visit_number);
  const cl = pts.filter((r) => num(r.client_total));
  const th = pts.filter((r) => num(r.therapist_total));
  const fr = frame({ title: `Alliance trend of client ${client}`, cls: "trend-chart",
    desc: cl.length
      ? `Client end totals by visit number: ${cl.map((r) => `visit ${r.visit_number} ${fmt(r.client_total)} (${MOD[r.modality] || r.modality})`).join("; ")}.`
      : "No scored visits." });
  const vn = pts.map((r) => r.visit_number);
  const x = scale([Math.min(1, ...vn) - 0.5, Math.max(2, ...vn) + 0.5], [fr.x0, fr.x1]);
  const y = scale(scaleMinMax || niceDomain(pts.flatMap((r) => [r.client_total, r.therapist_total])), [fr.y0, fr.y1]);
  const xt = [];
  const step = Math.max(1, Math.ceil((x.domain[1] - x.domain[0]) / 12));
  for (let v = Math.ceil(x.domain[0]); v <= x.domain[1]; v += step) xt.push(v);
  axes(fr, x, y, { xLabel: "Visit number", yLabel: "End total", xTicks: xt });
  if (th.length) fr.svg.append(polyline(th.map((r) => [x(r.visit_number), y(r.therapist_total)]), "line-therapist"));
  fr.svg.append(polyline(cl.map((r) => [x(r.visit_number), y(r.client_total)]), "line-client"));
  for (const r of cl) {
    fr.svg.append(marker(x(r.visit_number), y(r.client_total), r.modality, "pt pt-client",
      `Visit ${r.visit_number}, ${MOD[r.modality] || r.modality}: client ${fmt(r.client_total)}`));
  }
  legend(fr, [["video", "online", null], ["in_person", "in person", null], [null, "therapist", "line-therapist"]]);
  return figure("trend", fr.svg,
    `Client ${client}: end total per visit (solid line; circles online, squares in person) and the therapist's own end rating (dashed).`,
    dataTable(`End totals of client ${client}`, ["Visit", "Date", "Modality", "Client total", "Therapist total"],
      pts.map((r) => [String(r.visit_number), fmtField("created_at", r.created_at), MOD[r.modality] || r.modality, fmt(r.client_total), fmt(r.therapist_total)])),
    { "data-client": client });
}

// Several named series over visit numbers (the subscales of an end
// instrument): one line and one labelled point per visit each, a legend
// naming them, and the data as a table. series: [{name, points:[[visit, value]]}].
export function seriesChart({ title, caption, series, yLabel = "Score", domain = null, cls = "series-chart" }) {
  const all = series.flatMap((s) => s.points);
  const fr = frame({ title, cls, desc: series.map((s) => `${s.name}: ${s.points.map(([v, y]) => `visit ${v} ${fmt(y)}`).join(", ")}`).join("; ") || "No scores." });
  const vn = all.map(([v]) => v);
  const x = scale([Math.min(1, ...vn) - 0.5, Math.max(2, ...vn) + 0.5], [fr.x0, fr.x1]);
  const y = scale(domain || niceDomain(all.map(([, v]) => v)), [fr.y0, fr.y1]);
  const xt = [];
  const step = Math.max(1, Math.ceil((x.domain[1] - x.domain[0]) / 12));
  for (let v = Math.ceil(x.domain[0]); v <= x.domain[1]; v += step) xt.push(v);
  axes(fr, x, y, { xLabel: "Visit number", yLabel, xTicks: xt });
  series.forEach((s, i) => {
    const cl = `line-series line-series-${i % 6}`;
    fr.svg.append(polyline(s.points.map(([v, val]) => [x(v), y(val)]), cl));
    for (const [v, val] of s.points) {
      fr.svg.append(sv("circle", { cx: x(v), cy: y(val), r: 3.5, class: `pt pt-series pt-series-${i % 6}` },
        sv("title", { text: `Visit ${v}: ${s.name} ${fmt(val)}` })));
    }
  });
  const g = sv("g", { class: "legend", "aria-hidden": "true" });
  let lx = 8;
  series.forEach((s, i) => {
    g.append(sv("line", { x1: lx, x2: lx + 22, y1: 13, y2: 13, class: `line-series line-series-${i % 6}` }),
      sv("text", { x: lx + 28, y: 17, class: "tick", text: s.name }));
    lx += 40 + s.name.length * 7.5;
  });
  fr.svg.append(g);
  const visits = [...new Set(vn)].sort((a, b) => a - b);
  return figure("series", fr.svg, caption,
    dataTable(title, ["Visit", ...series.map((s) => s.name)],
      visits.map((v) => [String(v), ...series.map((s) => fmt((s.points.find(([pv]) => pv === v) || [])[1]))])));
}

