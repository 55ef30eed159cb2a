// Alliance Pulse — the therapist's page.
//
// sign in (key kept in sessionStorage only) → create a visit → copy the
// client's link → waiting room (Admit) → the call with live connection
// badges, "Send pulse" and alerts → End visit → the therapist's own
// end-of-visit (mirror) form.
//
// The key is checked at sign-in with a `join` for a visit id that cannot
// exist: the plugin checks the key first (475 unauthorized) and only then
// looks the visit up (476 no_such_visit), and a refused request changes
// nothing. So 476 means "key accepted".

import { loadConfig, serverList } from "./config.mjs";
import { AllianceClient } from "./alliance-client.mjs";
import { $, el, showScreen, setStatus, clearStatus, toast, copyText, playStream, store, fmtNum, showConnection } from "./ui.mjs";
import { t, errorText } from "./i18n.mjs";
import { PulseForm, AnswerChannel } from "./pulse.mjs";
import { startStatsReporter } from "./stats.mjs";

const K = { key: "ap.therapist.key", visit: "ap.therapist.visit" };
const KEY_CHECK_VISIT = "key-check";

const state = {
  servers: [],
  ac: null,
  answers: null,
  key: null,
  visit: null,            // {visit_id, client_code, modality, link}
  phase: "signin",        // signin | create | joined | live | ended | done
  stream: null,
  stopStats: null,
  alerts: new Set(),
  mirror: null,
  qualityUpdates: 0,
};

/* ---------------- helpers ---------------- */
function fatal(headline, detail = "", retry = null) {
  showScreen("s-error");
  setStatus("error-status", "error", headline, detail);
  const b = $("error-retry");
  b.hidden = !retry;
  b.onclick = retry;
}

function saveVisit() {
  if (state.visit) store.set(K.visit, JSON.stringify(state.visit));
  else store.del(K.visit);
}

async function connect() {
  if (state.ac && state.ac.handle) return state.ac;
  if (state.ac) state.ac.destroy();
  const ac = new AllianceClient({ servers: state.servers, name: "therapist" });
  state.ac = ac;
  try {
    await ac.connect();
    await ac.attach();
  } catch (e) {
    ac.destroy();
    state.ac = null;
    throw e;
  }
  wire(ac);
  return ac;
}

function connectionError(e) {
  if (e.code === "unreachable") return [t("conn.unreachable"), t("conn.unreachable.detail", { servers: state.servers.join(", ") })];
  if (e.code === "no_janus_js") return [t("conn.nojanus"), ""];
  if (e.code === "janus") return [t("conn.noplugin"), e.message];
  return [errorText(e), ""];
}

/* ---------------- sign in ---------------- */
async function signIn(key) {
  setStatus("signin-status", "pending", t("conn.connecting"));
  let ac;
  try {
    ac = await connect();
  } catch (e) {
    const [h, d] = connectionError(e);
    setStatus("signin-status", "error", h, d);
    return false;
  }
  let r;
  try {
    r = await ac.request({ request: "join", role: "therapist", visit_id: KEY_CHECK_VISIT, therapist_key: key });
  } catch (e) {
    setStatus("signin-status", "error", errorText(e));
    return false;
  }
  const code = r.data.error_code;
  if (code === 475) {
    setStatus("signin-status", "error", t("err.475"));
    store.del(K.key);
    $("key").setAttribute("aria-invalid", "true");
    $("key").focus();
    return false;
  }
  if (code !== 476 && code !== undefined) {
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
    $("key").setAttribute("aria-invalid", "true");
    setStatus("signin-status", "error", "Enter your therapist key.");
    $("key").focus();
    return;
  }
  if (await signIn(key)) {
    $("key").value = "";
    afterSignIn();
  }
});

$("signout").addEventListener("click", () => {
  store.del(K.key);
  store.del(K.visit);
  if (state.ac) state.ac.destroy();
  state.ac = null;
  window.location.reload();
});

function afterSignIn() {
  const saved = (() => {
    try { return JSON.parse(store.get(K.visit) || "null"); } catch (_) { return null; }
  })();
  if (saved && saved.visit_id) {
    state.visit = saved;
    joinVisit(true);
  } else {
    showCreate();
  }
}

/* ---------------- create ---------------- */
function showCreate() {
  state.phase = "create";
  state.visit = null;
  saveVisit();
  showScreen("s-create");
  clearStatus("create-status");
}

$("create-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("client-code");
  const code = input.value.trim();
  if (!/^[A-Za-z0-9._-]{1,32}$/.test(code)) {
    input.setAttribute("aria-invalid", "true");
    setStatus("create-status", "error", "Enter a pseudonymous client code: letters, digits, dot, dash or underscore (for example C-0042).");
    input.focus();
    return;
  }
  input.removeAttribute("aria-invalid");
  const modality = document.querySelector("input[name=modality]:checked").value;
  setStatus("create-status", "pending", "Creating the visit…");
  let r;
  try {
    const ac = await connect();
    r = await ac.request({ request: "create", therapist_key: state.key, client_code: code, modality });
  } catch (err) {
    const [h, d] = connectionError(err);
    setStatus("create-status", "error", h, d);
    return;
  }
  if (r.data.alliance === "error") {
    if (r.data.error_code === 475) {
      store.del(K.key);
      showScreen("s-signin");
      setStatus("signin-status", "error", t("err.475"));
      return;
    }
    setStatus("create-status", "error", errorText(r.data));
    return;
  }
  const page = r.data.modality === "in_person" ? "kiosk.html" : "client.html";
  const link = new URL(page, window.location.href);
  link.search = "";
  link.hash = `invite=${r.data.invite}`;
  state.visit = { visit_id: r.data.visit_id, client_code: code, modality: r.data.modality, link: link.href };
  saveVisit();
  input.value = "";
  joinVisit(false);
});

/* ---------------- the visit ---------------- */
async function joinVisit(resumed) {
  const v = state.visit;
  showVisitScreen();
  let r;
  try {
    const ac = await connect();
    r = await ac.request({ request: "join", role: "therapist", visit_id: v.visit_id, therapist_key: state.key });
  } catch (e) {
    const [h, d] = connectionError(e);
    fatal(h, d, () => joinVisit(resumed));
    return;
  }
  const d = r.data;
  if (d.alliance === "error") {
    if (resumed && (d.error_code === 476 || d.error_code === 483)) {
      showCreate();
      toast("The previous visit is closed.", { kind: "info" });
      return;
    }
    fatal(errorText(d), "", () => joinVisit(resumed));
    return;
  }
  state.phase = "joined";
  const client = d.participants && d.participants.client;
  if (d.state === "waiting" && client && client.present) onWaiting(client.code);
  if (d.state === "live") onLive();
  if (d.state === "ended") onEnded();
  if (v.modality === "video" && d.state !== "ended") startCamera();
}

function showVisitScreen() {
  const v = state.visit;
  showScreen("s-visit");
  $("v-client").textContent = v.client_code;
  $("v-modality").textContent = v.modality === "in_person" ? "in person" : "video";
  $("invite-link").value = v.link;
  $("invite-panel").hidden = false;
  $("invite-help").textContent = v.modality === "in_person"
    ? "Open this link on the kiosk or tablet the client will use (it works once). The client then appears in your waiting room."
    : "Send this link to your client (it works once). They will land in your waiting room.";
  $("waiting-panel").hidden = false;
  setStatus("waiting-status", "pending", "Waiting for the client to open the link…");
  $("admit").hidden = true;
  $("call-panel").hidden = true;
  $("inperson-panel").hidden = true;
  document.querySelector(".visit-grid").classList.remove("with-main");
  $("controls-panel").hidden = true;
  $("end-confirm").hidden = true;
  $("alerts").replaceChildren();
  $("no-alerts").hidden = false;
  state.alerts.clear();
}

$("copy-link").addEventListener("click", async () => {
  const ok = await copyText($("invite-link").value, $("invite-link"));
  toast(ok ? "Link copied." : "Select the link and copy it (Ctrl+C).", { kind: ok ? "ok" : "info" });
});

async function startCamera() {
  if (state.stream) {
    playStream($("self-video"), state.stream);
    return;
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: { ideal: 640 }, height: { ideal: 480 } } });
    playStream($("self-video"), state.stream);
  } catch (e) {
    const denied = e && (e.name === "NotAllowedError" || e.name === "SecurityError");
    setStatus("call-status", "error", denied ? t("dev.denied") : t("dev.other", { error: e && e.name }),
      denied ? t("dev.denied.detail") : "");
  }
}

function onWaiting(clientCode) {
  setStatus("waiting-status", "ok", `${clientCode || "Your client"} is in the waiting room.`);
  const b = $("admit");
  b.hidden = false;
  b.disabled = false;
  b.focus();
}

$("admit").addEventListener("click", async () => {
  const b = $("admit");
  b.disabled = true;
  const r = await state.ac.request({ request: "admit" }).catch((e) => ({ data: { alliance: "error", error: e.message, error_code: e.code } }));
  if (r.data.alliance === "error") {
    b.disabled = false;
    setStatus("waiting-status", "error", errorText(r.data));
    return;
  }
  onLive();
});

async function onLive() {
  if (state.phase === "live") return;
  state.phase = "live";
  $("waiting-panel").hidden = true;
  $("invite-panel").hidden = true;
  $("controls-panel").hidden = false;
  document.querySelector(".visit-grid").classList.add("with-main");
  clearStatus("controls-status");
  if (state.visit.modality === "in_person") {
    $("inperson-panel").hidden = false;
    $("send-pulse").focus();
    return;
  }
  $("call-panel").hidden = false;
  $("send-pulse").focus();
  await startCamera();
  try {
    await state.ac.startMedia({ stream: state.stream });
    clearStatus("call-status");
    state.stopStats = startStatsReporter(state.ac);
  } catch (e) {
    setStatus("call-status", "error", errorText(e));
  }
}

$("sound-btn").addEventListener("click", async () => {
  const ok = await playStream($("remote-video"), state.ac.remoteStream);
  $("sound-btn").hidden = ok;
});

/* ---------------- quality badges ---------------- */
const BADGE = { good: "Good", fair: "Fair", poor: "Poor" };

function updateBadge(id, path, freezes, freezeS, windowS) {
  const b = $(id);
  const dir = b.querySelector(".badge-dir").textContent;
  const val = b.querySelector(".badge-val");
  const detail = b.querySelector(".badge-detail");
  if (!path) {
    b.className = "badge badge-unknown";
    val.textContent = "measuring…";
    detail.textContent = `${dir}: not measured yet.`;
    b.title = `${dir}: not measured yet`;
  } else {
    const kind = BADGE[path.badge] ? path.badge : "unknown";
    b.className = `badge badge-${kind}`;
    val.textContent = BADGE[kind] || "—";
    const parts = [
      `loss ${fmtNum(path.loss_pct, 1)} %`,
      `round trip ${path.rtt_ms == null ? "—" : Math.round(path.rtt_ms)} ms`,
      `jitter ${fmtNum(path.jitter_ms, 1)} ms`,
      `MOS ${fmtNum(path.mos, 1)}`,
      `${freezes} video freeze${freezes === 1 ? "" : "s"} (${fmtNum(freezeS, 1)} s frozen)`,
    ];
    const text = `${dir}: ${(BADGE[kind] || "unknown").toLowerCase()} — ${parts.join(", ")}, last ${windowS} s.`;
    detail.textContent = text;
    b.title = text;
  }
  b.dataset.badge = path ? path.badge : "";
  b.dataset.updates = String(Number(b.dataset.updates || 0) + 1);
}

function onQuality(q) {
  const legs = q.legs || {};
  const paths = q.paths || {};
  const fr = (leg) => (legs[leg] && legs[leg].video) || {};
  const w = q.window_s || q.measured_s || 0;
  updateBadge("q-c2t", paths.client_to_therapist, fr("client_up").freezes || 0, fr("client_up").freeze_s || 0, w);
  updateBadge("q-t2c", paths.therapist_to_client, fr("therapist_up").freezes || 0, fr("therapist_up").freeze_s || 0, w);
  state.qualityUpdates++;
}

/* ---------------- pulses and alerts ---------------- */
$("send-pulse").addEventListener("click", async () => {
  const b = $("send-pulse");
  b.disabled = true;
  const body = { request: "pulse", target: "client" };
  const instrument = $("pulse-kind").value;
  if (instrument) body.instrument = instrument;
  const r = await state.ac.request(body)
    .catch((e) => ({ data: { alliance: "error", error: e.message, error_code: e.code } }));
  b.disabled = false;
  if (r.data.alliance === "error" && r.data.error_code === 474 && instrument) {
    setStatus("controls-status", "error", `This server has no instrument "${instrument}". Ask the clinic to install it, or send the alliance check-in.`);
    return;
  }
  if (r.data.alliance === "error") {
    setStatus("controls-status", r.data.error_code === 487 ? "warn" : "error", errorText(r.data));
    return;
  }
  setStatus("controls-status", "ok", "Pulse sent. The client sees it over the video (they can also choose “Not now”).");
});

function onAlert(a) {
  const key = `${a.pulse_id}/${a.rule}`;
  if (state.alerts.has(key)) return;      // it comes on the data channel and as an event
  state.alerts.add(key);
  $("no-alerts").hidden = true;
  const when = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const li = el("li", { class: `alert alert-${a.rule}`, "data-pulse-id": a.pulse_id },
    el("p", { class: "alert-head" }, el("strong", { text: a.rule === "drop" ? "Drop" : "Low score" }), ` · ${when}`),
    el("p", { class: "alert-msg", text: a.message || `${a.score_name || "score"} ${a.score} (threshold ${a.threshold})` }));
  $("alerts").prepend(li);
  toast("New alert: a good moment to check in.", { kind: "warn", ms: 6000 });
}

/* ---------------- end ---------------- */
$("end-visit").addEventListener("click", () => {
  $("end-confirm").hidden = false;
  $("end-yes").focus();
});
$("end-no").addEventListener("click", () => {
  $("end-confirm").hidden = true;
  $("end-visit").focus();
});
$("end-yes").addEventListener("click", async () => {
  $("end-yes").disabled = true;
  const r = await state.ac.request({ request: "end" })
    .catch((e) => ({ data: { alliance: "error", error: e.message, error_code: e.code } }));
  $("end-yes").disabled = false;
  if (r.data.alliance === "error") {
    $("end-confirm").hidden = true;
    setStatus("controls-status", "error", errorText(r.data));
    return;
  }
  onEnded();
});

function onEnded() {
  if (state.phase === "ended" || state.phase === "done") return;
  state.phase = "ended";
  if (state.stopStats) state.stopStats();
  if (state.stream) for (const tr of state.stream.getTracks()) tr.stop();
  state.stream = null;
  $("remote-video").srcObject = null;
  $("self-video").srcObject = null;
  showScreen("s-mirror");
  if (!state.mirror) setStatus("mirror-status", "pending", "Your end-of-visit form is on its way…");
  // no mirror form (end pulses off, or no therapist_end instrument)?
  setTimeout(async () => {
    if (state.phase !== "ended" || state.mirror) return;
    try {
      const r = await state.ac.request({ request: "status" });
      const mine = (r.data.pending_pulses || []).filter((p) => p.target === "therapist");
      if (mine.length) return;
    } catch (_) { /* closed */ }
    if (!state.mirror) done("The visit is over. There is no form for you this time.");
  }, 8000);
}

function onPulse(p) {
  if (!p || !p.instrument) return;
  if (state.mirror && state.mirror.pulse.pulse_id === p.pulse_id) return;
  if (p.kind === "end") onEnded();
  clearStatus("mirror-status");
  const pf = new PulseForm(p, {
    variant: "page",
    onSubmit: (responses) => state.answers.answer(p.pulse_id, responses),
    onDismiss: () => state.answers.dismiss(p.pulse_id),
  });
  pf.onClose = (reason) => {
    setTimeout(() => done(reason === "answered" ? "Your end-of-visit answers are saved." : "The visit is over."), 700);
  };
  state.mirror = pf;
  if (state.phase !== "ended") showScreen("s-mirror");
  $("mirror-slot").replaceChildren(pf.root);
  pf.focusFirst();
}

function done(text) {
  if (state.phase === "done") return;
  state.phase = "done";
  showScreen("s-done");
  setStatus("done-status", "ok", text);
  state.visit = null;
  saveVisit();
  const ac = state.ac;
  state.ac = null;
  state.mirror = null;
  if (ac) {
    ac.request({ request: "leave" }).catch(() => {}).finally(() => {
      ac.hangup();
      ac.destroy();
    });
  }
}

$("new-visit").addEventListener("click", () => showCreate());

/* ---------------- wiring ---------------- */
function wire(ac) {
  state.answers = new AnswerChannel(ac);
  ac.on("event", (d) => {
    switch (d.alliance) {
      case "waiting": onWaiting(d.client_code); break;
      case "quality": onQuality(d); break;
      case "alert": onAlert(d); break;
      case "pulse": onPulse(d); break;
      case "pulse_expired":
        if (state.mirror && state.mirror.pulse.pulse_id === d.pulse_id) state.mirror.close("expired");
        break;
      case "participant_left":
        if (d.role === "client" && state.phase === "live") setStatus("controls-status", "warn", "The client's connection dropped. They can re-join with their link.");
        if (d.role === "client" && state.phase === "joined") setStatus("waiting-status", "pending", "The client left the waiting room.");
        break;
      case "participant_joined":
        if (d.role === "client" && state.phase === "live") setStatus("controls-status", "ok", "The client is back.");
        break;
      case "closed":
        if (state.phase !== "done") done("The visit is closed.");
        break;
      default: break;
    }
  });
  ac.on("dc", (m) => {
    if (m.type === "quality") onQuality(m);
    else if (m.type === "alert") onAlert(m);
    else if (m.type === "pulse") onPulse(m);
    else if (m.type === "pulse_expired" && state.mirror && state.mirror.pulse.pulse_id === m.pulse_id) state.mirror.close("expired");
  });
  ac.on("remotetrack", (stream) => {
    playStream($("remote-video"), stream).then((ok) => { $("sound-btn").hidden = ok; });
  });
  ac.on("connection", ({ state: s }) => {
    showConnection(s, { lost: t("conn.lost"), restored: t("conn.restored") });
    if (s === "gone") {
      state.ac = null;
      if (state.phase !== "done") {
        fatal(t("conn.gone"), t("conn.gone.detail"), () => {
          if (state.visit) joinVisit(true);
          else showCreate();
        });
      }
    }
  });
}

/* ---------------- start ---------------- */
async function main() {
  const cfg = await loadConfig();
  state.servers = serverList(cfg);
  const key = store.get(K.key);
  if (key) {
    showScreen("s-signin");
    if (await signIn(key)) afterSignIn();
    return;
  }
  showScreen("s-signin");
}

main().catch((e) => fatal(t("err.generic", { error: e && e.message ? e.message : String(e) })));

window.alliancePage = {
  get phase() { return state.phase; },
  get qualityUpdates() { return state.qualityUpdates; },
  get visitId() { return state.visit ? state.visit.visit_id : null; },
  get dcOpen() { return !!(state.ac && state.ac.dc.open); },
};
