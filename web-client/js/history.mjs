// Alliance Pulse — the therapist's "Client history" panel: the client's
// earlier visits with this therapist, from the plugin's `client_history`
// request (docs/api.md "Client history"): a trend chart of the client's end
// totals with the therapist's own (mirror) ratings beside them, the
// subscales over the visits, and per visit the in-session pulses and the
// alerts with their connection-quality context.
//
// The plugin decides what may be shown (the therapist's own visits with
// this client, by key or token); this module only draws the answer. It
// runs on a connection of its own (not the call's handle), so it works
// before admission, during the call and after the visit, and a slow read
// never holds the call's requests.

import { openClient } from "./alliance-client.mjs";
import { $, el } from "./ui.mjs";
import { errorText } from "./i18n.mjs";
import { fmt, fmtField, num, MOD, trendChart, seriesChart } from "./charts.mjs";

const RULE = { below_cutoff: "Low score", drop: "Drop" };

// The rows trendChart draws: one per visit of this pair, numbered 1..n
// (the pair's own numbering), client and therapist end totals.
export function trendRows(h) {
  return (h.visits || []).map((v) => ({
    visit_number: v.number,
    created_at: v.created_at,
    modality: v.modality,
    client_total: v.client_end ? v.client_end.total : null,
    therapist_total: v.therapist_end ? v.therapist_end.total : null,
  }));
}

// The client's end subscales (every score but the total) as series.
export function subscaleSeries(h) {
  const by = new Map();
  for (const v of h.visits || []) {
    const sc = v.client_end && v.client_end.scores;
    if (!sc) continue;
    for (const [name, val] of Object.entries(sc)) {
      if (name === "total" || !num(val)) continue;
      if (!by.has(name)) by.set(name, []);
      by.get(name).push([v.number, val]);
    }
  }
  return [...by.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([name, points]) => ({ name, points }));
}

// "connection good", or "connection poor (loss, freezes)", from a quality
// context with its good/poor classes (docs/metrics.md).
export function qualityText(q) {
  if (!q || typeof q !== "object") return "connection not measured";
  const reasons = new Set();
  let poor = q.video_class === "poor", any = !!q.video_class;
  for (const leg of Object.values(q.legs || {})) {
    for (const m of Object.values(leg || {})) {
      if (!m || !m.class) continue;
      any = true;
      if (m.class === "poor") {
        poor = true;
        for (const r of m.poor_reasons || []) reasons.add(r);
      }
    }
  }
  if (!any) return "connection not measured";
  return poor ? `connection poor${reasons.size ? ` (${[...reasons].join(", ")})` : ""}` : "connection good";
}

const time = (us) => (num(us) ? new Date(us / 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "—");

function visitItem(v) {
  const head = `Visit ${v.number}${v.current ? " (this visit)" : ""} · ${fmtField("created_at", v.created_at)} · ${MOD[v.modality] || v.modality}`;
  const ce = v.client_end, te = v.therapist_end;
  const ends = `End: client ${ce && num(ce.total) ? fmt(ce.total) : ce ? ce.status : "—"}, your rating ${te && num(te.total) ? fmt(te.total) : te ? te.status : "—"}`;
  const pulses = (v.pulses || []).map((p) => el("li", { class: "hist-pulse", "data-pulse-id": p.pulse_id },
    `${time(p.created_at)} · ${p.role === "therapist" ? "you" : "client"} · ${p.instrument_id}: `,
    num(p.total) ? `total ${fmt(p.total)}${p.items ? ` (${Object.entries(p.items).map(([k, x]) => `${k} ${fmt(x)}`).join(", ")})` : ""}` : p.status));
  const alerts = (v.alerts || []).map((a) => el("li", { class: `hist-alert alert-${a.rule}`, "data-pulse-id": a.pulse_id || "" },
    el("strong", { text: RULE[a.rule] || a.rule }),
    ` · ${a.pulse_kind === "end" ? "end of visit" : "in session"} · ${a.score_name || "score"} ${fmt(a.score)} (threshold ${fmt(a.threshold)}) · ${qualityText(a.quality)}`));
  return el("li", { class: "hist-visit", "data-visit-id": v.visit_id, "data-number": String(v.number) },
    el("p", { class: "hist-head" }, el("strong", { text: head })),
    el("p", { class: "hist-ends", text: ends }),
    pulses.length ? el("div", {}, el("p", { class: "note", text: "In-session pulses" }), el("ul", { class: "hist-pulses" }, pulses)) : null,
    alerts.length ? el("div", {}, el("p", { class: "note", text: "Alerts" }), el("ul", { class: "hist-alerts" }, alerts)) : null);
}

// The panel's content for an answer.
export function renderHistory(h) {
  const box = $("history-body");
  const vs = h.visits || [];
  const earlier = vs.filter((v) => !v.current).length;
  const parts = [el("p", { class: "note", id: "history-count",
    text: `${earlier} earlier visit${earlier === 1 ? "" : "s"} with you${h.older ? ` (and ${h.older} older ones not shown)` : ""}. Only your own visits with this client are shown.` })];
  if (vs.some((v) => v.client_end && num(v.client_end.total))) {
    parts.push(trendChart(h.client_code, trendRows(h), null));
    const series = subscaleSeries(h);
    if (series.length) {
      parts.push(seriesChart({ title: `Subscales of client ${h.client_code}'s end answers`, series, cls: "subscale-chart",
        caption: "The client's end-of-visit subscales per visit with you." }));
    }
  } else {
    parts.push(el("p", { class: "note", text: "No end-of-visit answers yet." }));
  }
  parts.push(el("ol", { class: "hist-visits", reversed: true }, [...vs].reverse().map(visitItem)));
  box.replaceChildren(...parts);
  box.dataset.visits = String(vs.length);
}

// A loader bound to the page's servers and credentials: load(visitId)
// asks and draws; concurrent calls collapse into one, then one more.
export function historyLoader({ servers, credential }) {
  let ac = null, running = null, again = false;
  async function client() {
    if (ac && ac.handle && ac.sessionUp) return ac;
    if (ac) ac.retire();
    ac = await openClient(servers(), "therapist-history");
    return ac;
  }
  async function once(visitId) {
    const status = $("history-status");
    status.hidden = false;
    status.textContent = "Loading the client's history…";
    let r;
    try {
      r = await (await client()).request({ request: "client_history", visit_id: visitId, ...credential() });
    } catch (e) {
      status.textContent = `The history could not be loaded: ${errorText(e)}`;
      return;
    }
    const d = r.data;
    if (d.alliance === "error") {
      status.textContent = d.error_code === 472 ? "Client histories are not available on this server yet." : errorText(d);
      $("history-body").replaceChildren();
      return;
    }
    status.hidden = true;
    renderHistory(d);
  }
  async function load(visitId) {
    if (running) { again = true; return running; }
    running = (async () => {
      do { again = false; await once(visitId); } while (again);
    })().finally(() => { running = null; });
    return running;
  }
  return { load, close: () => { if (ac) ac.destroy(); ac = null; } };
}
