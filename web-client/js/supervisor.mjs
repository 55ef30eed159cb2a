// Alliance Pulse — the supervisor's and researcher's page.
//
// Sign in with the supervisor key (sessionStorage only), then ask the
// plugin for a report: the `report` request of PROTOCOL.md with `kind`
// visits | visit | summary | compare and `filters`. The page shows what the
// server answers — tables for lists, sections for objects, a confidence
// interval plot for effect sizes and correlations — and offers it as JSON
// and CSV. It invents nothing: a server that does not implement reports yet
// answers 472 (unknown_request), and the page says so.
//
// The key is checked at sign-in with an observer `join` for a visit id
// that cannot exist: the plugin checks the key first (475) and only then
// looks the visit up (476), and a refused request changes nothing.

import { loadConfig, serverList } from "./config.mjs";
import { AllianceClient } from "./alliance-client.mjs";
import { $, el, showScreen, setStatus, clearStatus, store } from "./ui.mjs";
import { t, errorText } from "./i18n.mjs";

const K = { key: "ap.supervisor.key" };
const NOT_YET = "Reports are not available on this server yet.";
const NOT_YET_DETAIL = "The Alliance Pulse plugin on this server does not answer the report request (it says “unknown request”). This page will show the reports as soon as the server supports them; nothing is shown in the meantime.";

const state = { servers: [], ac: null, key: null, last: null };

async function connect() {
  if (state.ac && state.ac.handle) return state.ac;
  const ac = new AllianceClient({ servers: state.servers, name: "supervisor" });
  try {
    await ac.connect();
    await ac.attach();
  } catch (e) {
    ac.destroy();
    throw e;
  }
  ac.on("connection", ({ state: s }) => {
    const b = $("conn-banner");
    b.hidden = s === "restored" || s === "gone";
    b.className = "conn-banner warn";
    b.textContent = t("conn.lost");
    if (s === "gone") state.ac = null;
  });
  state.ac = ac;
  return ac;
}

function connectionError(e) {
  if (e.code === "unreachable") return [t("conn.unreachable"), t("conn.unreachable.detail", { servers: state.servers.join(", ") })];
  if (e.code === "janus") return [t("conn.noplugin"), e.message];
  return [errorText(e), ""];
}

/* ---------------- sign in ---------------- */
async function signIn(key) {
  setStatus("signin-status", "pending", t("conn.connecting"));
  let r;
  try {
    const ac = await connect();
    r = await ac.request({ request: "join", role: "observer", visit_id: "key-check", supervisor_key: key });
  } catch (e) {
    const [h, d] = connectionError(e);
    setStatus("signin-status", "error", h, d);
    return false;
  }
  if (r.data.error_code === 475) {
    store.del(K.key);
    setStatus("signin-status", "error", "That key is not valid. Check it and try again.");
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
    setStatus("signin-status", "error", "Enter your supervisor key.");
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
  const body = { request: "report", supervisor_key: state.key, kind: k, filters: f };
  if (k === "visit") body.visit_id = f.visit_id;
  setStatus("report-status", "pending", "Asking the server…");
  $("report-out").replaceChildren();
  $("report-actions").hidden = true;
  state.last = null;
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
  renderReport(k, d);
  $("report-actions").hidden = false;
  $("report-out").querySelector("h2")?.focus();
});

/* ---------------- rendering (shape-tolerant) ---------------- */
const isObj = (v) => v && typeof v === "object" && !Array.isArray(v);
const isRows = (v) => Array.isArray(v) && v.length > 0 && v.every(isObj);

function fmt(v) {
  if (v === null || v === undefined) return "—";
  if (Array.isArray(v) && v.length === 0) return "none";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) < 10 ? 2 : 1);
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number")) return `[${fmt(v[0])}, ${fmt(v[1])}]`;
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

// a value under its field name: times (…_at, microseconds since the epoch) as dates
function fmtField(k, v) {
  if (typeof v === "number" && /(_at|_us)$/.test(String(k)) && v > 1e14) {
    return new Date(v / 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }
  return fmt(v);
}

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

// Effect sizes and correlations with a 95 % CI, wherever they are.
function effects(v, path = "", out = []) {
  if (Array.isArray(v)) {
    v.forEach((x, i) => effects(x, `${path}${path ? " " : ""}${isObj(x) && (x.name || x.score || x.label || x.modality || x.metric) ? (x.name || x.score || x.label || x.modality || x.metric) : i + 1}`, out));
  } else if (isObj(v)) {
    const est = ["hedges_g", "g", "rho", "spearman_rho", "r"].find((k) => typeof v[k] === "number");
    const pair = (a, b) => (typeof v[a] === "number" && typeof v[b] === "number" ? [v[a], v[b]] : null);
    const ci = Array.isArray(v.ci) ? v.ci : Array.isArray(v.ci95) ? v.ci95
      : pair("lo", "hi") || pair("ci_low", "ci_high") || pair("ci_lo", "ci_hi");
    if (est && ci && ci.length === 2) out.push({ label: `${path} (${label(est)})`.trim(), est: v[est], lo: ci[0], hi: ci[1] });
    for (const [k, x] of Object.entries(v)) if (typeof x === "object") effects(x, `${path}${path ? " · " : ""}${label(k)}`, out);
  }
  return out;
}

function ciPlot(items) {
  const NS = "http://www.w3.org/2000/svg";
  const mk = (tag, attrs) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  };
  const lo = Math.min(-1, ...items.map((i) => i.lo));
  const hi = Math.max(1, ...items.map((i) => i.hi));
  const W = 640, rowH = 28, left = 260, right = 20, top = 10;
  const H = top + items.length * rowH + 30;
  const x = (v) => left + ((v - lo) / (hi - lo)) * (W - left - right);
  const svg = mk("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "ci-plot" });
  const title = mk("title", {});
  title.textContent = "Estimates with 95% confidence intervals";
  svg.append(title);
  svg.append(mk("line", { x1: x(0), x2: x(0), y1: top, y2: H - 24, class: "ci-zero" }));
  items.forEach((it, i) => {
    const y = top + i * rowH + rowH / 2;
    const tx = mk("text", { x: 4, y: y + 5, class: "ci-label" });
    tx.textContent = `${it.label}: ${fmt(it.est)} [${fmt(it.lo)}, ${fmt(it.hi)}]`.slice(0, 48);
    svg.append(tx, mk("line", { x1: x(it.lo), x2: x(it.hi), y1: y, y2: y, class: "ci-bar" }),
      mk("circle", { cx: x(it.est), cy: y, r: 5, class: "ci-dot" }));
  });
  for (const v of [lo, 0, hi]) {
    const tx = mk("text", { x: x(v), y: H - 8, class: "ci-tick", "text-anchor": "middle" });
    tx.textContent = fmt(v);
    svg.append(tx);
  }
  return svg;
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

function renderReport(k, d) {
  const out = $("report-out");
  const body = { ...d };
  delete body.alliance;
  const h = el("h2", { tabindex: "-1", text: TITLES[k] || "Report" });
  const parts = [h];
  const eff = effects(body);
  if (eff.length) parts.push(el("figure", { class: "ci-figure" }, ciPlot(eff),
    el("figcaption", { text: "Estimates with 95% confidence intervals (0 = no difference or no relation)." })));
  if (!Object.keys(body).length) parts.push(el("p", { text: "The server returned an empty report." }));
  else parts.push(renderValue(body, "", 0));
  out.replaceChildren(...parts);
}

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
    r = await ac.request({ request: "forget", supervisor_key: state.key, client_code: code }, { timeout: 30000 });
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
  showFilters();
  showScreen("s-signin");
  const key = store.get(K.key);
  if (key && await signIn(key)) showScreen("s-reports");
}

main().catch((e) => {
  showScreen("s-error");
  setStatus("error-status", "error", t("err.generic", { error: e && e.message ? e.message : String(e) }));
});
