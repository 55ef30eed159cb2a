// Alliance Pulse — the supervisor's and researcher's page.
//
// Sign in with the supervisor key or a signed token (sessionStorage only), then ask the
// plugin for a report: the `report` request of PROTOCOL.md with `kind`
// visits | visit | summary | compare and `filters`. The page shows it as
// tables and hand-written SVG charts (alliance trend per client, Hedges g
// forest plot, formation curve, quality scatter) — and offers it as JSON
// and CSV. It invents nothing: a server that does not implement reports yet
// answers 472 (unknown_request), and the page says so.
//
// The key is checked at sign-in with an observer `join` for a visit id
// that cannot exist: the plugin checks the key first (475) and only then
// looks the visit up (476), and a refused request changes nothing.
//
// "Watch live" (docs/api.md "Observers"): a handle of its own joins the
// visit as observer and sends a receive-only offer (alliance-client.mjs
// startObserving); the therapist's and the client's tracks are shown side
// by side. Both participants' pages say that a supervisor watches; when
// the client withdraws consent the plugin removes the observer and the
// view says so.

import { loadConfig, serverList, iceConfig } from "./config.mjs";
import { openClient, useIce } from "./alliance-client.mjs";
import { $, el, showScreen, setStatus, clearStatus, store, showConnection, playStream } from "./ui.mjs";
import { t, errorText, startError } from "./i18n.mjs";
import { credential, useSignIn, isSignedToken } from "./credential.mjs";
import { fmt, fmtField, sv, scale, niceDomain, num, sgn, MOD, narrow, frame, axes, polyline, marker,
  legend, dataTable, figure, trendChart } from "./charts.mjs";

const K = { key: "ap.supervisor.key" };
const NOT_YET = "Reports are not available on this server yet.";
const NOT_YET_DETAIL = "The Alliance Pulse plugin on this server does not answer the report request (it says “unknown request”). This page will show the reports as soon as the server supports them; nothing is shown in the meantime.";

const state = { servers: [], ac: null, key: null, last: null, view: null };

async function connect() {
  if (state.ac && state.ac.handle) return state.ac;
  const ac = await openClient(state.servers, "supervisor");
  ac.on("moved", (servers) => { state.servers = servers; });   // 498: the visit's instance
  ac.on("connection", ({ state: s }) => {
    showConnection(s, { lost: t("conn.lost"), restored: t("conn.restored") });
    if (s === "gone") state.ac = null;
  });
  state.ac = ac;
  return ac;
}

function connectionError(e) {
  if (e.code === "token_required") return [t("conn.token"), t("conn.token.detail")];
  if (e.code === "unreachable") return [t("conn.unreachable"), t("conn.unreachable.detail", { servers: state.servers.join(", ") })];
  if (e.code === "janus") return [t("conn.noplugin"), e.message];
  return [errorText(e), ""];
}

/* ---------------- sign in ---------------- */
async function signIn(key) {
  setStatus("signin-status", "pending", t("conn.connecting"));
  useSignIn(key);
  if (state.ac) state.ac.destroy();    // a session opened with another credential
  state.ac = null;
  let r;
  try {
    const ac = await connect();
    r = await ac.join({ request: "join", role: "observer", visit_id: "key-check", ...credential("supervisor", key) });
  } catch (e) {
    const [h, d] = connectionError(e);
    setStatus("signin-status", "error", h, d);
    return false;
  }
  if (r.data.error_code === 475) {
    store.del(K.key);
    setStatus("signin-status", "error", isSignedToken(key) ? t("err.475.token", { error: r.data.error }) : t("err.475"));
    $("key").setAttribute("aria-invalid", "true");
    $("key").focus();
    return false;
  }
  if (r.data.alliance === "joined") {
    // cannot happen for a made-up visit id; leave it again to be tidy
    await state.ac.request({ request: "leave" }).catch(() => {});
  } else if (r.data.error_code !== 476) {
    setStatus("signin-status", "error", errorText(r.data));
    return false;
  }
  $("key").removeAttribute("aria-invalid");
  state.key = key;
  store.set(K.key, key);
  clearStatus("signin-status");
  $("signout").hidden = false;
  return true;
}

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const key = $("key").value.trim();
  if (!key) {
    setStatus("signin-status", "error", "Enter your supervisor key or token.");
    $("key").focus();
    return;
  }
  if (await signIn(key)) {
    $("key").value = "";
    showScreen("s-reports");
  }
});

$("signout").addEventListener("click", () => {
  store.del(K.key);
  if (state.ac) state.ac.destroy();
  window.location.reload();
});

/* ---------------- watch live ---------------- */
const watch = { ac: null, streams: null };

function watchError(d) {
  switch (d.error_code) {
    case 476: return "There is no open visit with this id.";
    case 485: return "The client of this visit did not consent to research, so it cannot be watched.";
    case 486: return "As many supervisors as allowed are watching this visit already.";
    case 483: return "This visit has ended.";
    default: return errorText(d);
  }
}

function showTrack(seat, track, on) {
  const s = watch.streams && watch.streams[seat];
  if (!s) return;
  if (on) {
    for (const t of s.getTracks()) if (t.kind === track.kind && t.id !== track.id) s.removeTrack(t);
    if (!s.getTrackById(track.id)) s.addTrack(track);
  } else {
    const t = s.getTrackById(track.id);
    if (t) s.removeTrack(t);
  }
  playStream($(`watch-${seat}`), s);
}

function endWatching(kind, text) {
  const ac = watch.ac;
  watch.ac = null;
  watch.streams = null;
  if (ac) ac.destroy();
  for (const id of ["watch-therapist", "watch-client"]) $(id).srcObject = null;
  $("watch-view").hidden = true;
  $("watch-stop").hidden = true;
  $("watch-start").disabled = false;
  if (text) setStatus("watch-status", kind, text);
  else clearStatus("watch-status");
}

async function startWatching(visitId) {
  if (watch.ac) endWatching();
  $("watch-start").disabled = true;
  setStatus("watch-status", "pending", t("conn.connecting"));
  let ac;
  try {
    ac = await openClient(state.servers, "observer");
  } catch (e) {
    const [h, d] = connectionError(e);
    $("watch-start").disabled = false;
    setStatus("watch-status", "error", h, d);
    return;
  }
  watch.ac = ac;
  watch.streams = { therapist: new MediaStream(), client: new MediaStream() };
  ac.on("observed", (seat, track, on) => { if (watch.ac === ac) showTrack(seat, track, on); });
  ac.on("event", (d) => {
    if (watch.ac !== ac) return;
    if (d.alliance === "removed") endWatching("warn", "The client withdrew consent: watching has stopped.");
    else if (d.alliance === "closed") endWatching("ok", "The visit has closed.");
    else if (d.alliance === "replaced") endWatching("warn", "You are watching this visit in another tab or window now.");
  });
  let r;
  try {
    r = await ac.join({ request: "join", role: "observer", visit_id: visitId, ...credential("supervisor", state.key) });
    if (r.data.alliance === "joined") await ac.startObserving();
  } catch (e) {
    r = { data: { alliance: "error", error_code: e.code, error: e.message } };
  }
  if (watch.ac !== ac) return;
  if (r.data.alliance === "error") {
    endWatching("error", watchError(r.data));
    return;
  }
  $("watch-view").hidden = false;
  $("watch-stop").hidden = false;
  setStatus("watch-status", "ok", "Watching live. Both participants see that a supervisor is watching.");
}

// for the e2e tests: the watching PeerConnection
window.alliancePage = {
  get watchPc() { return watch.ac ? watch.ac.pc : null; },
};

$("watch-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = $("watch-visit").value.trim();
  if (!id) {
    setStatus("watch-status", "error", "Enter the visit id.");
    $("watch-visit").focus();
    return;
  }
  startWatching(id);
});

$("watch-stop").addEventListener("click", async () => {
  const ac = watch.ac;
  if (ac) await ac.request({ request: "leave" }).catch(() => {});
  endWatching("ok", "You stopped watching.");
});

/* ---------------- the report form ---------------- */
function kind() {
  return document.querySelector("input[name=kind]:checked").value;
}

function showFilters() {
  const k = kind();
  for (const f of document.querySelectorAll(".filters .field")) {
    f.hidden = !f.dataset.for.split(" ").includes(k);
  }
}
for (const r of document.querySelectorAll("input[name=kind]")) r.addEventListener("change", showFilters);

function filters(k) {
  const f = {};
  const put = (name, id) => {
    const e = $(id);
    if (e.closest(".field").hidden) return;
    const v = e.value.trim();
    if (v) f[name] = v;
  };
  put("therapist", "f-therapist");
  put("client", "f-client");
  put("modality", "f-modality");
  put("from", "f-from");
  put("to", "f-to");
  put("instrument", "f-instrument");
  if (k === "visit") put("visit_id", "f-visit");
  const research = $("f-research").value;
  if (research) f.research = research === "true";
  return f;
}

$("report-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const k = kind();
  const f = filters(k);
  if (k === "visit" && !f.visit_id) {
    setStatus("report-status", "error", "Enter the visit id.");
    $("f-visit").focus();
    return;
  }
  const body = { request: "report", ...credential("supervisor", state.key), kind: k, filters: f };
  if (k === "visit") body.visit_id = f.visit_id;
  setStatus("report-status", "pending", "Asking the server…");
  $("report-out").replaceChildren();
  $("report-actions").hidden = true;
  state.last = null;
  state.view = null;
  let r;
  try {
    const ac = await connect();
    r = await ac.request(body, { timeout: 30000 });
  } catch (err) {
    const [h, d] = connectionError(err);
    setStatus("report-status", "error", h, d);
    return;
  }
  const d = r.data;
  if (d.alliance === "error") {
    if (d.error_code === 472) setStatus("report-status", "warn", NOT_YET, NOT_YET_DETAIL);
    else if (d.error_code === 475) {
      store.del(K.key);
      showScreen("s-signin");
      setStatus("signin-status", "error", "That key is not valid any more. Sign in again.");
    } else setStatus("report-status", "error", errorText(d));
    return;
  }
  state.last = { kind: k, data: d };
  clearStatus("report-status");
  await renderReport(k, d, f);
  $("report-actions").hidden = false;
  $("report-out").querySelector("h2")?.focus();
});

/* ---------------- rendering (shape-tolerant) ---------------- */
const isObj = (v) => v && typeof v === "object" && !Array.isArray(v);
const isRows = (v) => Array.isArray(v) && v.length > 0 && v.every(isObj);

function openVisit(id) {
  document.querySelector("input[name=kind][value=visit]").checked = true;
  showFilters();
  $("f-visit").value = id;
  $("report-form").requestSubmit();
}

function label(k) {
  return String(k).replace(/_/g, " ");
}

function table(rows, caption, { visibleCaption = false } = {}) {
  const cols = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  return el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    el("table", {},
      el("caption", { class: visibleCaption ? null : "sr-only", text: caption }),
      el("thead", {}, el("tr", {}, cols.map((c) => el("th", { scope: "col", text: c === "" ? "" : label(c) })))),
      el("tbody", {}, rows.map((r) => el("tr", {}, cols.map((c) => (c === ""
        ? el("th", { scope: "row", text: fmt(r[c]) })
        : c === "visit_id" && typeof r[c] === "string"
          ? el("td", {}, el("button", { type: "button", class: "link-btn cell-btn", text: r[c], on: { click: () => openVisit(r[c]) } }))
          : el("td", { text: fmtField(c, r[c]) }))))))));
}

const flat = (x) => !x || typeof x !== "object" || (Array.isArray(x) && !x.some((y) => y && typeof y === "object"));
const isFlatObj = (x) => isObj(x) && Object.keys(x).length > 0 && Object.values(x).every(flat);
const isProse = (x) => Array.isArray(x) && x.length > 0 && x.every((y) => typeof y === "string" && y.length > 30);

// Objects become sections: their plain values a definition list, notes a
// list, sibling objects of plain values one table (a row each), lists of
// records tables, the rest sections of their own.
function renderValue(v, name, depth) {
  if (isRows(v)) return table(v, label(name), { visibleCaption: !!name });
  if (!isObj(v)) {
    if (Array.isArray(v)) return el("p", { text: `${label(name)}: ${v.length ? v.map(fmt).join(", ") : "none"}` });
    return el("p", { text: `${label(name)}: ${fmt(v)}` });
  }
  const entries = Object.entries(v);
  const prose = entries.filter(([, x]) => isProse(x));
  const scalars = entries.filter(([, x]) => flat(x) && !isProse(x));
  const flatObjs = entries.filter(([, x]) => isFlatObj(x));
  const rest = entries.filter(([, x]) => !flat(x) && !isFlatObj(x));
  const sec = el("section", { class: "report-sec" });
  if (name) sec.append(el(depth <= 1 ? "h3" : "h4", { text: label(name) }));
  if (scalars.length) {
    sec.append(el("dl", { class: "details" }, scalars.flatMap(([k, x]) => [el("dt", { text: label(k) }), el("dd", { text: fmtField(k, x) })])));
  }
  for (const [k, x] of prose) {
    sec.append(el("div", { class: "report-notes" }, el("p", { class: "note", text: `${label(k)}:` }),
      el("ul", { class: "plain-list note" }, x.map((line) => el("li", { text: line })))));
  }
  // objects with the same fields (video / in person; one per metric) side
  // by side in a table; a lone one as its own small section
  const groups = new Map();
  for (const [k, x] of flatObjs) {
    const sig = Object.keys(x).sort().join(",");
    if (!groups.has(sig)) groups.set(sig, []);
    groups.get(sig).push([k, x]);
  }
  for (const members of groups.values()) {
    if (members.length > 1) {
      sec.append(table(members.map(([k, x]) => ({ "": label(k), ...x })), name ? label(name) : "values"));
    } else {
      rest.unshift(members[0]);
    }
  }
  for (const [k, x] of rest) {
    if (isFlatObj(x)) {
      sec.append(el("section", { class: "report-sec" }, el(depth < 1 ? "h3" : "h4", { text: label(k) }),
        el("dl", { class: "details" }, Object.entries(x).flatMap(([kk, xx]) => [el("dt", { text: label(kk) }), el("dd", { text: fmtField(kk, xx) })]))));
    } else {
      sec.append(renderValue(x, k, depth + 1));
    }
  }
  return sec;
}

const TITLES = { visits: "Visits", visit: "Visit", summary: "Summary", compare: "Online vs in person" };

// Hedges' g of each score with its 95 % CI, and the line at 0
function forestPlot(scores) {
  const rows = scores.filter((s) => s.hedges_g);
  const rowH = 34;
  const fr = frame({ H: 24 + rows.length * rowH + 48, m: { t: 16, r: 20, b: 44, l: narrow() ? 72 : 110 }, cls: "forest-plot",
    title: "Online minus in person: Hedges' g with 95 % confidence intervals",
    desc: rows.map((s) => `${s.score}: ${gReading(s.hedges_g)}`).join("; ") });
  const vals = rows.flatMap((s) => [s.hedges_g.g, s.hedges_g.lo, s.hedges_g.hi]);
  const x = scale(niceDomain(vals, [-1, 1], 0), [fr.x0, fr.x1]);
  const g = sv("g", { class: "axes", "aria-hidden": "true" });
  for (const v of x.ticks(6)) {
    g.append(sv("line", { x1: x(v), x2: x(v), y1: fr.y1, y2: fr.y0, class: "grid" }),
      sv("text", { x: x(v), y: fr.y0 + 18, "text-anchor": "middle", class: "tick", text: String(+v.toFixed(2)).replace("-", "\u2212") }));
  }
  g.append(sv("line", { x1: x(0), x2: x(0), y1: fr.y1 - 6, y2: fr.y0, class: "zero" }),
    sv("line", { x1: fr.x0, x2: fr.x1, y1: fr.y0, y2: fr.y0, class: "axis" }),
    sv("text", { x: fr.x0, y: fr.H - 8, "text-anchor": "start", class: "axis-label", text: "\u2190 online lower" }),
    sv("text", { x: fr.x1, y: fr.H - 8, "text-anchor": "end", class: "axis-label", text: "online higher \u2192" }));
  fr.svg.append(g);
  rows.forEach((s, i) => {
    const yy = fr.y1 + 12 + i * rowH + rowH / 2;
    const h = s.hedges_g;
    fr.svg.append(sv("text", { x: 8, y: yy + 4, class: "tick", text: s.score }));
    if (num(h.lo) && num(h.hi)) {
      fr.svg.append(sv("line", { x1: x(h.lo), x2: x(h.hi), y1: yy, y2: yy, class: "g-ci" }),
        sv("line", { x1: x(h.lo), x2: x(h.lo), y1: yy - 6, y2: yy + 6, class: "g-ci" }),
        sv("line", { x1: x(h.hi), x2: x(h.hi), y1: yy - 6, y2: yy + 6, class: "g-ci" }));
    }
    if (num(h.g)) {
      fr.svg.append(sv("rect", { x: x(h.g) - 6, y: yy - 6, width: 12, height: 12, class: "g-mark" },
        sv("title", { text: `${s.score}: g = ${sgn(h.g)}, 95 % CI ${sgn(h.lo)} to ${sgn(h.hi)}` })));
    }
  });
  return figure("forest", fr.svg, "Hedges' g (video minus in person) per score with its 95 % CI; left of the dashed line at 0 means a weaker alliance online.",
    dataTable("Hedges' g per score", ["Score", "g", "95 % CI low", "95 % CI high"],
      rows.map((s) => [s.score, sgn(s.hedges_g.g), sgn(s.hedges_g.lo), sgn(s.hedges_g.hi)])));
}

// mean end total with its 95 % CI per visit number, one line per modality
function formationChart(formation, scaleMinMax) {
  const series = ["video", "in_person"].map((m) => [m, (formation[m] || []).filter((p) => p && num(p.mean))]);
  const all = series.flatMap(([, ps]) => ps);
  const fr = frame({ cls: "formation-chart", title: "Alliance formation curve: mean end total per visit number, online and in person",
    desc: series.map(([m, ps]) => `${MOD[m]}: ${ps.length ? ps.map((p) => `visit ${p.visit} mean ${fmt(p.mean)}${num(p.lo) ? ` (95 % CI ${fmt(p.lo)}–${fmt(p.hi)})` : ""}, n ${p.n}`).join("; ") : "no data"}`).join(". ") });
  const vs = all.map((p) => p.visit);
  const x = scale([Math.min(1, ...vs) - 0.5, Math.max(2, ...vs) + 0.5], [fr.x0, fr.x1]);
  const y = scale(scaleMinMax || niceDomain(all.flatMap((p) => [p.mean, p.lo, p.hi])), [fr.y0, fr.y1]);
  const xt = [];
  for (let v = Math.ceil(x.domain[0]); v <= x.domain[1]; v++) xt.push(v);
  axes(fr, x, y, { xLabel: "Visit number", yLabel: "Mean end total (95 % CI)", xTicks: xt });
  for (const [m, ps] of series) {
    const dx = m === "video" ? -0.08 : 0.08;
    const X = (v) => x(v + dx);
    fr.svg.append(polyline(ps.map((p) => [X(p.visit), y(p.mean)]), `line-${m}`));
    for (const p of ps) {
      if (num(p.lo) && num(p.hi)) {
        fr.svg.append(sv("g", { "clip-path": fr.clip },
          sv("line", { x1: X(p.visit), x2: X(p.visit), y1: y(p.lo), y2: y(p.hi), class: `ebar ebar-${m}` }),
          sv("line", { x1: X(p.visit) - 5, x2: X(p.visit) + 5, y1: y(p.lo), y2: y(p.lo), class: `ebar ebar-${m}` }),
          sv("line", { x1: X(p.visit) - 5, x2: X(p.visit) + 5, y1: y(p.hi), y2: y(p.hi), class: `ebar ebar-${m}` })));
      }
      fr.svg.append(marker(X(p.visit), y(p.mean), m, `pt f-pt f-${m}`,
        `${MOD[m]}, visit ${p.visit}: mean ${fmt(p.mean)}${num(p.lo) ? `, 95 % CI ${fmt(p.lo)}–${fmt(p.hi)}` : ""}, n ${p.n}`));
    }
  }
  legend(fr, [["video", "online", "line-video"], ["in_person", "in person", "line-in_person"]]);
  const rows = [];
  for (const [m, ps] of series) for (const p of ps) rows.push([String(p.visit), MOD[m], String(p.n), fmt(p.mean), fmt(p.lo), fmt(p.hi)]);
  rows.sort((a, b) => a[0] - b[0]);
  return figure("formation", fr.svg, "Mean client end total per visit number with its 95 % CI (bars, cut at the edge of the scale; a visit number with one visit has its mean only). Circles online, squares in person.",
    dataTable("Formation curve", ["Visit", "Modality", "n", "Mean", "95 % CI low", "95 % CI high"], rows));
}

const QMEASURE = { mean_mos: ["Mean MOS (1–5)", "mean MOS"], freeze_s: ["Frozen video (s)", "freeze seconds"] };

// end total against a connection measure, one point per measured video visit
function scatterChart(rows, measure, scaleMinMax) {
  const pts = rows.filter((r) => num(r.client_total) && num(r[measure]));
  const [axisName, shortName] = QMEASURE[measure];
  const fr = frame({ cls: "scatter-chart", title: `End total against ${shortName}, video visits`,
    desc: pts.length ? `${pts.length} video visits: ${pts.map((r) => `${shortName} ${fmt(r[measure])}, total ${fmt(r.client_total)}`).join("; ")}.`
      : "No video visit with a measured connection and a client end total." });
  const x = scale(measure === "mean_mos" ? niceDomain(pts.map((r) => r.mean_mos), [1, 5], 0) : niceDomain(pts.map((r) => r.freeze_s), [0]), [fr.x0, fr.x1]);
  const y = scale(scaleMinMax || niceDomain(pts.map((r) => r.client_total)), [fr.y0, fr.y1]);
  axes(fr, x, y, { xLabel: axisName, yLabel: "Client end total" });
  for (const r of pts) {
    fr.svg.append(sv("circle", { cx: x(r[measure]), cy: y(r.client_total), r: 5, class: "pt sc-pt" },
      sv("title", { text: `${r.client_code} visit ${r.visit_number ?? "?"}: ${shortName} ${fmt(r[measure])}, total ${fmt(r.client_total)}` })));
  }
  if (!pts.length) {
    fr.svg.append(sv("text", { x: (fr.x0 + fr.x1) / 2, y: (fr.y0 + fr.y1) / 2, "text-anchor": "middle", class: "axis-label",
      text: "No measured video visits yet" }));
  }
  return figure("scatter", fr.svg, `Client end total against ${shortName} per video visit whose connection was measured. An association, not a cause.`,
    dataTable(`End total and ${shortName}`, ["Visit", "Client", "Visit no.", axisName, "Client total"],
      pts.map((r) => [r.visit_id, r.client_code, fmt(r.visit_number), fmt(r[measure]), fmt(r.client_total)])));
}

// "online lower by 0.53 SD, 95 % CI 0.29–0.76"
function gReading(h) {
  if (!h || !num(h.g)) return `not enough data (n online ${h?.n_video ?? 0}, n in person ${h?.n_in_person ?? 0})`;
  const dir = h.g < 0 ? "lower" : "higher";
  const a = Math.abs(h.g).toFixed(2);
  if (!num(h.lo) || !num(h.hi)) return `online ${dir} by ${a} SD`;
  if ((h.lo < 0) === (h.hi < 0) && h.lo !== 0 && h.hi !== 0) {
    const [p, q] = [Math.abs(h.lo), Math.abs(h.hi)].sort((u, v) => u - v);
    return `online ${dir} by ${a} SD, 95 % CI ${p.toFixed(2)}–${q.toFixed(2)}`;
  }
  return `online ${dir} by ${a} SD, 95 % CI from ${Math.abs(h.lo).toFixed(2)} lower to ${Math.abs(h.hi).toFixed(2)} higher: no clear difference`;
}

/* Whom a mixed model was fitted to: therapists too when it has their term. */
function who(m) {
  return `${m.model === "therapist/client" ? `${fmt(m.n_therapists)} therapists, ` : ""}${fmt(m.n_clients)} clients, ${fmt(m.n)} visits`;
}

/* The mixed model's difference (online − in person, points) in words. */
function mixedReading(m) {
  if (!m) return "not in this report";
  if (!num(m.estimate)) return `no model of clients: ${m.refused || "not enough data"}`;
  const dir = m.estimate < 0 ? "lower" : "higher";
  const [lo, hi] = m.ci || [];
  const whom = who(m);
  if (!num(lo) || !num(hi)) return `online ${dir} by ${Math.abs(m.estimate).toFixed(2)} points (${whom})`;
  const clear = (lo > 0) === (hi > 0) && lo !== 0 && hi !== 0;
  return `online ${dir} by ${Math.abs(m.estimate).toFixed(2)} points, 95 % CI ${sgn(lo)} to ${sgn(hi)} (${whom}): ${clear ? "a clear difference" : "no clear difference"}`;
}

/* Which mixed model was fitted, in words (the total's; every score of a
 * report has the same visits, so the same model unless one was refused). */
function modelWords(m) {
  if (m?.model === "therapist/client")
    return `A mixed model with a random intercept per therapist and per client within therapist (${fmt(m.n_therapists)} therapists)`;
  const why = m?.therapist_term ? `; no therapist term: ${m.therapist_term}` : "";
  return `A mixed model with a random intercept per client${why}`;
}

/* The non-inferiority conclusion in words. */
function niReading(ni, m) {
  if (!ni) return "—";
  const M = num(ni.margin) ? ni.margin.toFixed(2) : "?";
  if (ni.conclusion === "noninferior")
    return `Non-inferior: online is not worse than in person by more than the margin of ${M} points (the lowest plausible difference, ${sgn(ni.lower_bound)}, is above −${M}).`;
  if (ni.conclusion === "inferior")
    return `Inferior: online is worse than in person by more than the margin of ${M} points (even the highest plausible difference, ${sgn(ni.upper_bound)}, is below −${M}).`;
  if (!num(ni.lower_bound)) return `Inconclusive: no model of clients could be fitted (${m?.refused || "not enough data"}), so the difference cannot be judged against the margin of ${M} points.`;
  return `Inconclusive: the 95 % CI (${sgn(ni.lower_bound)} to ${sgn(ni.upper_bound)} points) includes −${M}, the margin; more visits are needed to decide.`;
}

/* A slope from a mixed model (formation, quality) in words. */
function slopeReading(m, unit) {
  if (!m || !num(m.estimate)) return `no model (${m?.refused || "not enough data"})`;
  const [lo, hi] = m.ci || [];
  return `${sgn(m.estimate)} points ${unit}${num(lo) ? `, 95 % CI ${sgn(lo)} to ${sgn(hi)}` : ""} (${who(m)})`;
}

function mixedSection(scores) {
  const rows = scores.filter((s) => s.mixed);
  if (!rows.length) return null;
  const word = { noninferior: "non-inferior", inferior: "inferior", inconclusive: "inconclusive" };
  return sec("Model of clients and non-inferiority",
    el("p", { class: "note mixed-model", text: `${modelWords(rows[0].mixed)} (REML, 95 % CI with Satterthwaite degrees of freedom) does not count a client's repeated visits as independent evidence; it is the figure to read for online vs in person. Differences are in score points, online minus in person.` }),
    tbl("Per score: online minus in person from the model of clients, and non-inferiority", ["Score", "Difference [95 % CI]", "Margin", "Non-inferiority"],
      rows.map((s) => [s.score,
        el("span", { class: "mixed-value", "data-score": s.score, text: num(s.mixed.estimate) ? `${sgn(s.mixed.estimate)} [${sgn(s.mixed.ci?.[0])}, ${sgn(s.mixed.ci?.[1])}]` : "—" }),
        s.noninferiority && num(s.noninferiority.margin) ? `${s.noninferiority.margin.toFixed(2)} (${s.noninferiority.margin_source === "filter" ? "asked for" : "default"})` : "—",
        word[s.noninferiority?.conclusion] || "—"]), { cls: "mixed-table" }),
    el("ul", { class: "plain-list mixed-readings" }, rows.map((s) => el("li", {}, [
      el("strong", { text: `${s.score}: ` }),
      el("span", { class: "mixed-reading", "data-score": s.score, text: `${mixedReading(s.mixed)}. ` }),
      el("span", { class: "ni-reading", "data-score": s.score, "data-conclusion": s.noninferiority?.conclusion || "", text: niReading(s.noninferiority, s.mixed) })]))));
}

/* ---------------- the four reports ---------------- */
function tbl(caption, head, rows, { cls = "", visibleCaption = true } = {}) {
  return el("div", { class: `table-wrap ${cls}`, tabindex: "0", role: "region", "aria-label": caption },
    el("table", {},
      el("caption", { class: visibleCaption ? null : "sr-only", text: caption }),
      el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c instanceof Node ? c : String(c))))))));
}

const visitBtn = (id) => el("button", { type: "button", class: "link-btn cell-btn", text: id, "aria-label": `Open visit ${id}`, on: { click: () => openVisit(id) } });
const date = (us) => (num(us) ? new Date(us / 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "—");
const sec = (title, ...kids) => el("section", { class: "report-sec" }, el("h3", { text: title }), ...kids);

// a live video visit can be watched from its row. The row is as the
// report read it (a live visit's consent is summed up only when it ends,
// so it is usually null here): the server has the last word (485 without
// consent, 486, or the visit ended meanwhile), and the panel says it.
function watchCell(r) {
  if (r.state !== "live" || r.modality !== "video") return "—";
  if (r.research_consent === false) return el("span", { class: "note", text: "live, no consent to watch" });
  return el("button", { type: "button", class: "secondary cell-btn watch-btn", text: "Watch live",
    "aria-label": `Watch visit ${r.visit_id} live`,
    on: { click: () => {
      $("watch-visit").value = r.visit_id;
      $("watch-panel").scrollIntoView({ block: "start" });
      startWatching(r.visit_id);
    } } });
}

function visitsTable(rows, caption) {
  return tbl(caption, ["Date", "Visit", "Therapist", "Client", "Modality", "Visit no.", "Client total", "Therapist total", "Mean MOS", "Freeze s", "Alerts", "Now"],
    rows.map((r) => [date(r.created_at), visitBtn(r.visit_id), r.therapist_code ?? "—", r.client_code ?? "—",
      MOD[r.modality] || fmt(r.modality), fmt(r.visit_number), fmt(r.client_total), fmt(r.therapist_total),
      num(r.mean_mos) ? r.mean_mos.toFixed(2) : "—", num(r.freeze_s) ? r.freeze_s.toFixed(1) : "—", fmt(r.alerts),
      watchCell(r)]),
    { cls: "visits-table", visibleCaption: false });
}

// one client's trend, chosen from a list (the filtered client first)
function trendSection(rows, scaleMinMax, prefer) {
  const by = new Map();
  for (const r of rows) {
    if (!r.client_code) continue;
    if (!by.has(r.client_code)) by.set(r.client_code, []);
    by.get(r.client_code).push(r);
  }
  const scored = [...by.entries()].filter(([, rs]) => rs.some((r) => num(r.client_total)));
  if (!scored.length) return sec("Alliance trend per client", el("p", { class: "note", text: "No client has a scored end-of-visit answer in this selection yet." }));
  scored.sort((a, b) => a[0].localeCompare(b[0]));
  const first = (scored.find(([c]) => c === prefer) || scored.reduce((a, b) => (b[1].length > a[1].length ? b : a)))[0];
  const host = el("div", { class: "trend-host" });
  const draw = (c) => host.replaceChildren(trendChart(c, by.get(c), scaleMinMax));
  const pick = el("select", { id: "trend-client", on: { change: (e) => draw(e.target.value) } },
    scored.map(([c, rs]) => el("option", { value: c, text: `${c} (${rs.filter((r) => num(r.client_total)).length} scored)`, selected: c === first })));
  draw(first);
  return sec("Alliance trend per client", el("div", { class: "field inline-field" }, el("label", { for: "trend-client", text: "Client" }), pick), host);
}

function scatterSection(rows, scaleMinMax, quality) {
  const video = rows.filter((r) => r.modality === "video");
  const host = el("div", { class: "scatter-host" });
  const rho = el("p", { class: "rho" });
  const draw = (m) => {
    host.replaceChildren(scatterChart(video, m, scaleMinMax));
    const q = quality && quality[m];
    if (!quality) rho.textContent = "Spearman's ρ with its 95 % CI is in the “Online vs in person” report.";
    else if (!q || !num(q.rho)) rho.textContent = `Spearman's ρ (end total vs ${QMEASURE[m][1]}): not enough measured video visits (n = ${q?.n ?? 0}).`;
    else rho.textContent = `Spearman's ρ (end total vs ${QMEASURE[m][1]}) = ${sgn(q.rho)}, 95 % CI ${sgn(q.lo)} to ${sgn(q.hi)}, n = ${q.n}${num(q.p) ? `, p = ${q.p < 0.001 ? "< 0.001" : q.p.toFixed(3)}` : ""}.`;
  };
  const pick = el("select", { id: "scatter-measure", on: { change: (e) => draw(e.target.value) } },
    Object.entries(QMEASURE).map(([k, [label]]) => el("option", { value: k, text: label })));
  draw("mean_mos");
  return sec("Connection quality vs alliance (video visits)",
    el("div", { class: "field inline-field" }, el("label", { for: "scatter-measure", text: "Connection measure" }), pick), rho, host);
}

function alertsSection(rows) {
  const with_ = rows.filter((r) => num(r.alerts) && r.alerts > 0);
  if (!with_.length) return sec("Alerts", el("p", { text: "No alerts in these visits." }));
  return sec("Alerts", tbl("Visits with alerts", ["Visit", "Date", "Therapist", "Client", "Alerts", "Client total"],
    with_.map((r) => [visitBtn(r.visit_id), date(r.created_at), r.therapist_code ?? "—", r.client_code ?? "—", fmt(r.alerts), fmt(r.client_total)]),
    { visibleCaption: false, cls: "alerts-table" }));
}

const scaleOf = (d) => (d && d.scale && num(d.scale.min) && num(d.scale.max) ? [d.scale.min, d.scale.max] : null);
const ms = (x) => (x && num(x.mean) ? `${fmt(x.mean)} (SD ${fmt(x.sd)})` : "—");
const ci = (x) => (x && num(x.ci_lo) ? `${fmt(x.ci_lo)}–${fmt(x.ci_hi)}` : "—");

function renderVisits(d, f) {
  const rows = d.visits || [];
  return [
    el("p", { text: `${rows.length} visit${rows.length === 1 ? "" : "s"}. Select a visit id to see the visit in full.` }),
    rows.length ? visitsTable(rows, "Visits") : el("p", { text: "No visits match these filters." }),
    trendSection(rows, null, f.client),
    scatterSection(rows, null, null),
    alertsSection(rows),
  ];
}

function groupTable(caption, level, groups) {
  return tbl(caption, [level === "client" ? "Client" : "Therapist", "Visits", "Online", "In person", "Scored", "Mean total (SD)", "95 % CI",
    ...(level === "client" ? ["First → last"] : []), "Trend per visit", "Therapist's own (mean)", "At ceiling", "Alerts"],
  groups.map((g) => [g.client_code || g.therapist_code, fmt(g.visits), fmt(g.modalities?.video), fmt(g.modalities?.in_person), fmt(g.scored),
    ms(g.total), ci(g.total), ...(level === "client" ? [`${fmt(g.first_total)} → ${fmt(g.last_total)}`] : []),
    num(g.trend_per_visit) ? sgn(g.trend_per_visit) : "—", g.therapist_total ? fmt(g.therapist_total.mean) : "—",
    g.ceiling ? `${num(g.ceiling.share) ? `${Math.round(g.ceiling.share * 100)} %` : "—"}${g.ceiling.flag ? " ⚑ ceiling" : ""}` : "—", fmt(g.alerts)]), { visibleCaption: false });
}

function renderSummary(d, f, rows) {
  const out = [el("p", { text: `Instrument ${d.instrument ?? "—"}${scaleOf(d) ? ` (${d.scale.min}–${d.scale.max})` : ""}; ${fmt(d.visits)} ended visits. Trend per visit: points per visit number (for a therapist, within clients).` }),
    sec("Per therapist", groupTable("Per therapist", "therapist", d.therapists || [])),
    sec("Per client", groupTable("Per client", "client", d.clients || []))];
  if (rows) out.push(trendSection(rows, scaleOf(d), f.client), alertsSection(rows));
  else out.push(sec("Alerts", groupAlerts(d)));
  return out;
}

function groupAlerts(d) {
  const g = [...(d.therapists || []).map((x) => ["Therapist", x.therapist_code, x.alerts]), ...(d.clients || []).map((x) => ["Client", x.client_code, x.alerts])].filter((x) => x[2] > 0);
  return g.length ? tbl("Alerts", ["Level", "Code", "Alerts"], g.map((x) => x.map(String)), { visibleCaption: false }) : el("p", { text: "No alerts." });
}

function renderCompare(d, f, rows) {
  const mo = d.modalities || {};
  const scores = d.scores || [];
  const out = [el("p", { text: `Instrument ${d.instrument ?? "—"}${scaleOf(d) ? ` (${d.scale.min}–${d.scale.max})` : ""}; ${fmt(d.visits)} visits${d.filters?.research ? " with research consent" : ""}: online ${fmt(mo.video?.visits)} visits of ${fmt(mo.video?.clients)} clients, in person ${fmt(mo.in_person?.visits)} visits of ${fmt(mo.in_person?.clients)} clients. g < 0 means a weaker alliance online.` })];
  out.push(sec("Online vs in person, per score",
    tbl("Per score: descriptives per modality and Hedges' g (video minus in person)", ["Score", "Online n", "Online mean (SD)", "In person n", "In person mean (SD)", "Hedges' g [95 % CI]", "Reading"],
      scores.map((s) => [s.score, fmt(s.video?.n), ms(s.video), fmt(s.in_person?.n), ms(s.in_person),
        el("span", { class: "g-value", "data-score": s.score, text: s.hedges_g && num(s.hedges_g.g) ? `${sgn(s.hedges_g.g)} [${sgn(s.hedges_g.lo)}, ${sgn(s.hedges_g.hi)}]` : "—" }),
        el("span", { class: "g-reading", text: gReading(s.hedges_g) })]), { cls: "scores-table" }),
    scores.some((s) => s.hedges_g && num(s.hedges_g.g)) ? forestPlot(scores) : el("p", { class: "note", text: "Hedges' g needs at least two scored visits of each modality." })));
  const mixed = mixedSection(scores);
  if (mixed) out.push(mixed);
  if (d.formation) out.push(sec(`Alliance formation curve (${d.formation.score || "total"})`, formationChart(d.formation, scaleOf(d)),
    ...(d.formation.mixed ? [el("p", { class: "mixed-formation", text: `Model of clients, change per visit number: online ${slopeReading(d.formation.mixed.video, "per visit")}; in person ${slopeReading(d.formation.mixed.in_person, "per visit")}.` })] : [])));
  if (rows) out.push(scatterSection(rows.filter((r) => !d.instrument || !r.client_instrument || r.client_instrument === d.instrument), scaleOf(d), d.quality || {}));
  const q = d.quality || {};
  const qrows = Object.entries(q).filter(([k, v]) => k !== "mixed" && isObj(v));
  if (qrows.length) {
    out.push(tbl("Spearman's ρ between the end total and the connection (measured video visits)", ["Measure", "n", "ρ", "95 % CI", "p"],
      qrows.map(([k, v]) => [label(k), fmt(v.n), sgn(v.rho), num(v.lo) ? `${sgn(v.lo)} to ${sgn(v.hi)}` : "—", num(v.p) ? (v.p < 0.001 ? "< 0.001" : v.p.toFixed(3)) : "—"]), { cls: "quality-table" }));
  }
  if (q.mixed) out.push(el("p", { class: "mixed-quality", text: `Model of clients, end total per unit of connection quality: ${slopeReading(q.mixed.mean_mos, "per MOS point")}; ${slopeReading(q.mixed.freeze_s, "per second of frozen video")}.` }));
  if (isObj(d.video_class)) out.push(videoClassSection(d.video_class));
  const c = d.congruence;
  if (c) {
    out.push(sec("Client and therapist ratings of the same visits", tbl("Congruence of client and therapist end totals", ["Visits", "n", "Mean |client − therapist|", "Mean client − therapist", "Pearson r [95 % CI]"],
      ["all", "video", "in_person"].filter((k) => c[k]).map((k) => [k === "all" ? "all" : MOD[k], fmt(c[k].n), fmt(c[k].mean_abs_diff), fmt(c[k].mean_diff_client_minus_therapist),
        c[k].pearson && num(c[k].pearson.r) ? `${sgn(c[k].pearson.r)} [${sgn(c[k].pearson.lo)}, ${sgn(c[k].pearson.hi)}]` : "—"]), { visibleCaption: false })));
  }
  if (Array.isArray(d.notes) && d.notes.length) out.push(sec("Notes", el("ul", { class: "plain-list note" }, d.notes.map((n) => el("li", { text: String(n) })))));
  return out;
}

// compare's good-video vs poor-video visits (docs/reports.md, "video_class")
function videoClassSection(vc) {
  const g = vc.hedges_g || {};
  let reading = `not enough data (n poor ${g.n_poor ?? 0}, n good ${g.n_good ?? 0})`;
  if (num(g.g)) {
    const dir = g.g < 0 ? "lower" : "higher";
    const clear = num(g.lo) && num(g.hi) && (g.lo < 0) === (g.hi < 0) && g.lo !== 0 && g.hi !== 0;
    reading = `poor-video visits ${dir} by ${Math.abs(g.g).toFixed(2)} SD` +
      (num(g.lo) ? `, 95 % CI ${sgn(g.lo)} to ${sgn(g.hi)}${clear ? "" : ": no clear difference"}` : "");
  }
  return sec("Alliance on good vs poor video",
    el("p", { class: "note", text: `A visit's video is poor when any video leg of the whole visit crossed a published threshold (frame rate below 7 fps, or loss after repair above 15 %). ${fmt(vc.unclassified)} video visits have no class.` }),
    tbl("End total of good-video and poor-video visits", ["Video", "n", "Mean (SD)", "95 % CI"],
      ["good", "poor"].map((k) => [k, fmt(vc[k]?.n), ms(vc[k]), num(vc[k]?.ci_lo) ? `${fmt(vc[k].ci_lo)} to ${fmt(vc[k].ci_hi)}` : "—"]),
      { cls: "video-class-table" }),
    el("p", { class: "video-class-reading", text: `Hedges' g (poor − good): ${num(g.g) ? sgn(g.g) : "—"}; ${reading}.` }));
}

function renderVisit(d) {
  const v = d.visit || {};
  const out = [el("dl", { class: "details" }, [
    ["Visit", v.visit_id], ["Therapist", v.therapist_code], ["Client", v.client_code], ["Modality", MOD[v.modality] || v.modality],
    ["State", v.state], ["Created", date(v.created_at)], ["Visit number", fmt(v.visit_number)], ["Research consent", fmt(v.research_consent)],
    ["Client end total", `${fmt(v.client_total)}${v.client_instrument ? ` (${v.client_instrument})` : ""}`],
    ["Therapist end total", `${fmt(v.therapist_total)}${v.therapist_instrument ? ` (${v.therapist_instrument})` : ""}`],
    ["Mean MOS", num(v.mean_mos) ? v.mean_mos.toFixed(2) : "—"], ["Loss %", fmt(v.loss_pct)], ["Frozen video (s)", fmt(v.freeze_s)],
    ["Incidents", fmt(v.incidents)], ["Alerts", fmt(v.alerts)], ["Video (good/poor)", v.video_class ?? "—"],
  ].flatMap(([k, x]) => [el("dt", { text: k }), el("dd", { text: x ?? "—" })]))];
  const al = d.alerts || [];
  out.push(sec("Alerts", al.length
    ? tbl("Alerts of this visit", ["When", "Rule", "Score", "Value", "Threshold"], al.map((a) => [date(a.created_at), fmt(a.rule), fmt(a.score_name), fmt(a.score), fmt(a.threshold)]), { visibleCaption: false, cls: "alerts-table" })
    : el("p", { text: "No alerts in this visit." })));
  const rest = { ...d };
  for (const k of ["alliance", "kind", "visit", "alerts"]) delete rest[k];
  out.push(renderValue(rest, "", 0));
  return out;
}

async function fetchVisits(f) {
  const vf = { ...f };
  delete vf.instrument;
  delete vf.visit_id;
  try {
    const r = await state.ac.request({ request: "report", ...credential("supervisor", state.key), kind: "visits", filters: vf }, { timeout: 30000 });
    return r.data.alliance === "report" ? r.data.visits || [] : null;
  } catch {
    return null;
  }
}

async function renderReport(k, d, f) {
  let rows = null;
  if (k === "summary") rows = await fetchVisits(f);
  else if (k === "compare") rows = await fetchVisits({ ...f, research: d.filters?.research ?? true });
  state.view = { k, d, f, rows, narrow: narrow() };
  draw();
}

function draw() {
  const { k, d, f, rows } = state.view;
  const h = el("h2", { tabindex: "-1", text: TITLES[k] || "Report" });
  let parts;
  if (k === "visits") parts = renderVisits(d, f);
  else if (k === "visit") parts = renderVisit(d);
  else if (k === "summary") parts = renderSummary(d, f, rows);
  else if (k === "compare") parts = renderCompare(d, f, rows);
  else parts = [renderValue(d, "", 0)];
  $("report-out").replaceChildren(h, ...parts);
}

// the charts are laid out for a narrow or a wide screen: draw again when
// the screen crosses from one to the other (cached data, no new request)
window.matchMedia("(max-width: 37.5rem)").addEventListener("change", () => {
  if (state.view && state.view.narrow !== narrow() && $("report-out").firstChild) {
    state.view.narrow = narrow();
    draw();
  }
});

/* ---------------- exports ---------------- */
function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

function firstRows(v) {
  if (isRows(v)) return v;
  if (isObj(v)) for (const x of Object.values(v)) { const r = firstRows(x); if (r) return r; }
  return null;
}

function csv(rows) {
  const cols = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const cell = (v) => {
    const s = v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [cols.join(","), ...rows.map((r) => cols.map((c) => cell(r[c])).join(","))].join("\n") + "\n";
}

$("dl-json").addEventListener("click", () => {
  if (state.last) download(`alliance-${state.last.kind}.json`, "application/json", JSON.stringify(state.last.data, null, 2));
});
$("dl-csv").addEventListener("click", () => {
  if (!state.last) return;
  const rows = firstRows(state.last.data);
  if (!rows) {
    setStatus("report-status", "warn", "This report has no table to export as CSV; use JSON.");
    return;
  }
  download(`alliance-${state.last.kind}.csv`, "text/csv", csv(rows));
});

/* ---------------- erasure ---------------- */
$("forget-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const code = $("forget-code").value.trim();
  if (!/^[A-Za-z0-9._-]{1,32}$/.test(code)) {
    setStatus("forget-status", "error", "Enter the client's code (for example C-0042).");
    $("forget-code").focus();
    return;
  }
  if (!$("forget-sure").checked) {
    setStatus("forget-status", "error", "Tick the box to confirm.");
    $("forget-sure").focus();
    return;
  }
  setStatus("forget-status", "pending", "Erasing…");
  let r;
  try {
    const ac = await connect();
    r = await ac.request({ request: "forget", ...credential("supervisor", state.key), client_code: code }, { timeout: 30000 });
  } catch (err) {
    const [h, d] = connectionError(err);
    setStatus("forget-status", "error", h, d);
    return;
  }
  if (r.data.alliance === "forgotten") {
    setStatus("forget-status", "ok", `Erased ${r.data.rows} stored rows about ${code}.`);
    $("forget-sure").checked = false;
  } else if (r.data.error_code === 472) {
    setStatus("forget-status", "warn", "Erasure is not available on this server yet.", "The plugin does not answer the forget request yet; nothing was erased.");
  } else {
    setStatus("forget-status", "error", errorText(r.data));
  }
});

/* ---------------- start ---------------- */
async function main() {
  const cfg = await loadConfig();
  state.servers = serverList(cfg);
  useIce(iceConfig(cfg));      // a bad iceServers entry stops the page here, named
  showFilters();
  showScreen("s-signin");
  const key = store.get(K.key);
  if (key && await signIn(key)) showScreen("s-reports");
}

main().catch((e) => {
  showScreen("s-error");
  setStatus("error-status", "error", ...startError(e));
});
