// Alliance Pulse — the client's page (client.html#invite=…).
//
// consent → device and connection check → join (waiting room) → the call
// with pulse overlays → the end-of-visit pulse → thank you.
// The invite comes in the URL fragment (never sent to a web server) and is
// kept in sessionStorage for the tab. The first join returns a rejoin_key;
// with it (the "rejoin record" below) a reload, a lost connection or the
// same link opened again in this browser goes straight back into the visit
// — no consent, no check, no click — and the plugin's takeover seats the
// new connection at once (an admitted client is live again).

import { loadConfig, serverList, iceConfig } from "./config.mjs";
import { openClient, useIce, useToken } from "./alliance-client.mjs";
import { linkParts } from "./credential.mjs";
import { $, showScreen, setStatus, clearStatus, clearStatusIf, toast, playStream, store, local, hashParams, fmtMs, showConnection, showObserved } from "./ui.mjs";
import { t, applyLanguage, chooseLanguage, errorText, startError } from "./i18n.mjs";
import { PulseForm, AnswerChannel } from "./pulse.mjs";
import { CallKeeper, RemoteWatch, StopRetrying, handOver, exposeCallState, ownTrouble, startCallMedia, stopCallMedia, wireSoundButton } from "./keeper.mjs";

// token: the Janus API token of a link from a server with token_auth
// (this tab only, like the invite)
const K = { invite: "ap.client.invite", token: "ap.client.token", research: "ap.client.research", lang: "ap.lang" };
const END_PULSE_WAIT_MS = 8000;
const NOTICE_MS = 5000;          // "Your therapist is back." and the like

const state = {
  servers: [],
  invite: null,
  research: null,
  ac: null,
  answers: null,
  stream: null,
  audioCtx: null,
  meterRaf: 0,
  phase: "start",          // start | check | waiting | live | ended | done
  current: null,           // the PulseForm on screen
  shown: new Set(),        // pulse ids already answered/dismissed/expired here
  stopStats: null,
  endTimer: null,
  camOk: false,
  netOk: false,
  recKey: null,            // where this invite's rejoin record lives
  keeper: null,
  remote: null,            // RemoteWatch of the therapist's media
  joins: 0,                // join requests sent by this page (for tests)
};

/* ---------------- errors ---------------- */
function fatal(headline, detail = "", retry = null) {
  showScreen("s-error");
  setStatus("error-status", "error", headline, detail);
  const b = $("error-retry");
  b.hidden = !retry;
  b.onclick = retry;
}

/* ---------------- the rejoin record ---------------- */
// What a reload (or the same link in a new tab of this browser) needs to
// get back in without asking anything again: the rejoin_key, the consent
// choice, the language, and that the check was passed. It lives in
// localStorage under a name derived from the invite (a SHA-256 of it, so
// the name does not give the invite away), and nowhere on a server.
//
// Privacy: the rejoin_key is a pseudonymous random token (192 bits; the
// server keeps only its hash). It names nobody — no client code, no name —
// and it is useless on its own: a join needs the invite with it, and the
// invite is kept only in this tab's sessionStorage and in the person's own
// link. It stops working when the visit closes, when the therapist makes a
// new link, and the record is deleted when the visit finishes or closes,
// when the server refuses it, and (by the sweep at page start) a day after
// it was written whatever happened. The consent choice stored with it is
// the one the person gave for this visit, which the server has anyway.
// Without crypto.subtle or localStorage the record falls back to this
// tab's sessionStorage (a reload still works; a new tab asks again).
const REC_PREFIX = "ap.client.visit.";
const REC_FALLBACK = "ap.client.rejoin";
const REC_MAX_AGE_MS = 24 * 3600 * 1000;

async function recordKey(invite) {
  try {
    const bytes = new TextEncoder().encode(`alliance-pulse rejoin\n${invite}`);
    const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return REC_PREFIX + [...h.slice(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
  } catch (_) {
    return null;
  }
}

function loadRecord() {
  try {
    if (state.recKey) {
      const r = JSON.parse(local.get(state.recKey) || "null");
      if (r && r.rejoin_key && Date.now() - (r.at || 0) < REC_MAX_AGE_MS) return r;
    }
    const f = JSON.parse(store.get(REC_FALLBACK) || "null");
    return f && f.invite === state.invite && f.rejoin_key ? f : null;
  } catch (_) {
    return null;
  }
}

function saveRecord(patch) {
  const r = { ...(loadRecord() || {}), ...patch, checked: true, at: Date.now() };
  delete r.invite;
  if (!(state.recKey && local.set(state.recKey, JSON.stringify(r)))) {
    store.set(REC_FALLBACK, JSON.stringify({ ...r, invite: state.invite }));
  }
}

function dropRecord() {
  if (state.recKey) local.del(state.recKey);
  store.del(REC_FALLBACK);
}

function sweepRecords() {
  for (const k of local.keys(REC_PREFIX)) {
    try {
      const r = JSON.parse(local.get(k) || "null");
      if (!r || Date.now() - (r.at || 0) >= REC_MAX_AGE_MS) local.del(k);
    } catch (_) {
      local.del(k);
    }
  }
}

/* ---------------- language ---------------- */
function setLanguage(lang) {
  applyLanguage(lang);
  store.set(K.lang, lang);
  $("lang").value = lang;
  if (loadRecord()) saveRecord({ lang });
}

/* ---------------- 1. consent ---------------- */
function showConsent() {
  state.phase = "consent";
  showScreen("s-consent");
  const prior = store.get(K.research);
  if (prior) {
    const r = document.querySelector(`input[name=research][value=${prior}]`);
    if (r) r.checked = true;
  }
}

$("lang").addEventListener("change", (e) => setLanguage(e.target.value));

$("consent-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const chosen = document.querySelector("input[name=research]:checked");
  if (!chosen) {
    $("consent-error").hidden = false;
    document.querySelector("input[name=research]").focus();
    return;
  }
  $("consent-error").hidden = true;
  state.research = chosen.value === "yes";
  store.set(K.research, chosen.value);
  startCheck();
});

/* ---------------- 2. checks ---------------- */
function cameraError(e) {
  const name = e && e.name;
  if (!window.isSecureContext || !navigator.mediaDevices) return [t("dev.insecure"), ""];
  if (name === "NotAllowedError" || name === "SecurityError") return [t("dev.denied"), t("dev.denied.detail")];
  if (name === "NotFoundError" || name === "OverconstrainedError") return [t("dev.missing"), t("dev.missing.detail")];
  if (name === "NotReadableError" || name === "AbortError") return [t("dev.busy"), t("dev.busy.detail")];
  return [t("dev.other", { error: name || String(e) }), ""];
}

const CAMERA = {
  audio: { echoCancellation: true, noiseSuppression: true },
  video: { width: { ideal: 640 }, height: { ideal: 480 } },
};

// The camera and microphone stream, started again if it was stopped.
async function ensureCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw Object.assign(new Error("no mediaDevices"), { name: "SecurityError" });
  }
  if (!state.stream || state.stream.getTracks().some((tr) => tr.readyState === "ended")) {
    state.stream = await navigator.mediaDevices.getUserMedia(CAMERA);
  }
  return state.stream;
}

function stopCamera() {
  if (state.stream) for (const tr of state.stream.getTracks()) tr.stop();
  state.stream = null;
}

async function checkCamera() {
  state.camOk = false;
  setStatus("cam-status", "pending", t("dev.asking"));
  try {
    await ensureCamera();
    $("preview").hidden = false;
    await playStream($("preview"), state.stream);
    startMicMeter(state.stream);
    setStatus("cam-status", "ok", t("dev.ok"));
    state.camOk = true;
  } catch (e) {
    const [h, d] = cameraError(e);
    $("preview").hidden = true;
    setStatus("cam-status", "error", h, d);
  }
}

function startMicMeter(stream) {
  cancelAnimationFrame(state.meterRaf);
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx || !stream.getAudioTracks().length) return;
    state.audioCtx = state.audioCtx || new Ctx();
    if (state.audioCtx.state === "suspended") state.audioCtx.resume().catch(() => {});
    const src = state.audioCtx.createMediaStreamSource(stream);
    const an = state.audioCtx.createAnalyser();
    an.fftSize = 512;
    src.connect(an);
    const buf = new Float32Array(an.fftSize);
    const meter = $("mic-meter");
    const step = () => {
      if (state.phase !== "check" && state.phase !== "waiting") return;
      an.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += v * v;
      const rms = Math.sqrt(sum / buf.length);
      meter.value = Math.min(1, rms * 4);
      meter.textContent = meter.value.toFixed(2);
      state.meterRaf = requestAnimationFrame(step);
    };
    step();
  } catch (_) { /* the meter is a help, not a requirement */ }
}

function playTone() {
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    state.audioCtx = state.audioCtx || new Ctx();
    const ctx = state.audioCtx;
    if (ctx.state === "suspended") ctx.resume().catch(() => {});
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 440;
    gain.gain.setValueAtTime(0.0001, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.2, ctx.currentTime + 0.05);
    gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.8);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.85);
    $("tone-status").textContent = t("dev.sound.playing");
    osc.onended = () => { $("tone-status").textContent = t("dev.sound.done"); };
  } catch (_) {
    $("tone-status").textContent = t("dev.sound.done");
  }
}
$("play-tone").addEventListener("click", playTone);

// A new connection to Janus with the plugin attached and this page's
// handlers on it.
async function openConnection() {
  const ac = await openClient(state.servers, "client");
  wireClient(ac);
  return ac;
}

async function ensureConnected() {
  if (state.ac && state.ac.handle && state.ac.sessionUp) return state.ac;
  if (state.ac) state.ac.retire();
  state.ac = null;
  state.ac = await openConnection();
  return state.ac;
}

async function checkNetwork() {
  state.netOk = false;
  setStatus("net-status", "pending", t("conn.connecting"));
  try {
    const ac = await ensureConnected();
    const ms = await ac.infoRtt(3);
    const vars = { ms: fmtMs(ms), transport: ac.transport };
    if (ms < 150) setStatus("net-status", "ok", t("conn.good", vars));
    else if (ms < 400) setStatus("net-status", "ok", t("conn.ok", vars));
    else setStatus("net-status", "warn", t("conn.slow", vars));
    state.netOk = true;
  } catch (e) {
    if (state.ac) state.ac.destroy();
    state.ac = null;
    const h = e.code === "no_janus_js" ? t("conn.nojanus") : e.code === "janus" ? t("conn.noplugin")
      : e.code === "token_required" ? t("conn.token") : t("conn.unreachable");
    const detail = e.code === "unreachable" ? t("conn.unreachable.detail", { servers: state.servers.join(", ") })
      : e.code === "token_required" ? t("conn.token.detail") : e.message;
    setStatus("net-status", "error", h, detail);
  }
}

function updateCheckButtons() {
  $("join-btn").disabled = !(state.camOk && state.netOk);
  $("check-retry").hidden = state.camOk && state.netOk;
}

async function startCheck() {
  state.phase = "check";
  showScreen("s-check");
  $("join-btn").disabled = true;
  await Promise.all([state.camOk ? null : checkCamera(), state.netOk ? null : checkNetwork()]);
  updateCheckButtons();
}

$("check-retry").addEventListener("click", async () => {
  $("check-retry").hidden = true;
  await Promise.all([state.camOk ? null : checkCamera(), state.netOk ? null : checkNetwork()]);
  updateCheckButtons();
  if (state.camOk && state.netOk) $("join-btn").focus();
});

function privacyTip() {
  const p = document.querySelector("input[name=private]:checked");
  const h = document.querySelector("input[name=headphones]:checked");
  const tip = $("privacy-tip");
  const show = (p && p.value === "no") || (h && h.value === "no" && p && p.value !== "yes");
  tip.hidden = !show;
  tip.textContent = show ? t("privacy.tip") : "";
}
for (const r of document.querySelectorAll("input[name=private], input[name=headphones]")) r.addEventListener("change", privacyTip);

$("join-btn").addEventListener("click", () => join());

/* ---------------- 3. join and wait ---------------- */
// `join` with the invite (and the rejoin key when there is a record):
// the answer's data and whether the key went with it.
async function sendJoin(ac) {
  const body = { request: "join", role: "client", invite: state.invite, consent: { research: !!state.research } };
  const lang = document.documentElement.lang;
  if (lang) body.language = lang;
  const rec = loadRecord();
  if (rec) body.rejoin_key = rec.rejoin_key;
  state.joins++;
  const r = await ac.join(body);
  return { d: r.data, withKey: !!rec };
}

// The server refused this invite (and rejoin key): a link used elsewhere,
// replaced by a new one, or of a closed visit.
function refused(d, hadRecord) {
  dropRecord();
  forgetLink();
  if (state.keeper) state.keeper.stop();
  if (hadRecord) fatal(t("err.link_gone"), t("err.link_gone.detail"));
  else fatal(errorText(d));
}

// The first join, from the "Go to the waiting room" button (or again from
// the check screen, when a resume found no camera).
async function join() {
  state.phase = "waiting";
  showScreen("s-wait");
  setStatus("wait-status", "pending", t("wait.joining"));
  playStream($("wait-preview"), state.stream);
  let ac;
  try {
    ac = await ensureConnected();
  } catch (e) {
    fatal(t("conn.unreachable"), t("conn.unreachable.detail", { servers: state.servers.join(", ") }), () => startCheck());
    return;
  }
  let d, withKey;
  try {
    ({ d, withKey } = await sendJoin(ac));
  } catch (e) {
    fatal(errorText(e), "", () => join());
    return;
  }
  if (d.alliance === "error") {
    if (d.error_code === 477 || d.error_code === 478) refused(d, withKey);
    else fatal(errorText(d), "", () => join());
    return;
  }
  keeper().watch(ac, { media: false });
  onJoined(d);
}

function onJoined(d) {
  saveRecord({ ...(d.rejoin_key ? { rejoin_key: d.rejoin_key } : {}), research: !!state.research, lang: document.documentElement.lang });
  const th = d.participants && d.participants.therapist;
  if (th) remoteWatch().setPresent(!!th.present);
  if (d.state === "live") {
    startCall();
  } else if (d.state === "ended") {
    enterEnded();
  } else {
    state.phase = "waiting";
    showScreen("s-wait");
    playStream($("wait-preview"), state.stream);
    setStatus("wait-status", "pending", t("wait.waiting"));
  }
}

// Back into the visit with the rejoin record, without asking anything: at
// page start (a reload, or the link opened again in this browser), and by
// "Continue here" after another window had taken the visit. The keeper
// retries with backoff until the server answers.
async function resume() {
  state.phase = "resuming";
  showScreen("s-wait");
  setStatus("wait-status", "pending", t("resume.joining"));
  // the camera while the connection is made; without it the person has
  // to act, so the check screen says what is wrong
  try {
    await ensureCamera();
  } catch (e) {
    state.camOk = false;
    startCheck();
    return;
  }
  state.camOk = true;
  keeper().trouble("resume", { quiet: true });
}

// The keeper's fresh start: a new session and handle, `join` with the
// rejoin key (the plugin's takeover seats it at once), media again.
async function rejoin() {
  const inCall = state.phase === "live" || state.phase === "resuming";
  const camera = inCall ? ensureCamera().catch((e) => e) : null;
  const ac = await openConnection();
  const { d, withKey } = await handOver(state, ac, sendJoin);
  if (d.alliance === "error") {
    ac.retire();
    if (d.error_code === 477 || d.error_code === 478) {
      refused(d, withKey);
      throw new StopRetrying(d.error);
    }
    if (d.error_code === 476) {
      finish(false, t("call.closed"));
      throw new StopRetrying(d.error);
    }
    throw new Error(d.error);
  }
  state.ac = ac;
  state.keeper.watch(ac, { media: d.state === "live" });
  if (d.state !== "live") {
    onJoined(d);
    return;
  }
  const cam = await camera;
  if (cam instanceof Error) {
    // no camera any more: the person has to act (the check says what);
    // "Go to the waiting room" then joins again with the rejoin key
    state.camOk = false;
    state.ac = null;
    ac.retire();
    startCheck();
    throw new StopRetrying("camera");
  }
  saveRecord({ research: !!state.research });
  const th = d.participants && d.participants.therapist;
  if (th) remoteWatch().setPresent(!!th.present);
  showObserved(d.participants ? d.participants.observers : 0, t("call.observed"));
  enterCall();
  await startMedia(ac);
}

function keeper() {
  if (!state.keeper) {
    state.keeper = new CallKeeper({
      rejoin,
      onState: (s) => {
        showConnection(s === "back" ? "restored" : s, { lost: t("conn.reconnecting"), restored: t("conn.back") });
        updateRemoteMark();
      },
    });
  }
  return state.keeper;
}

/* ---------------- events ---------------- */
function wireClient(ac) {
  state.answers = new AnswerChannel(ac);
  ac.on("moved", (servers) => { state.servers = servers; });   // 498: the visit's instance
  ac.on("event", (d) => onEvent(d));
  ac.on("dc", (m) => onDc(m));
  ac.on("ice", () => updateRemoteMark());
  ac.on("remotetrack", (stream) => {
    if (state.phase !== "live") return;
    playStream($("remote-video"), stream).then((ok) => { $("sound-btn").hidden = ok === true; });
  });
}

function onEvent(d) {
  switch (d.alliance) {
    case "admitted":
      setStatus("wait-status", "ok", t("wait.admitted"));
      startCall();
      break;
    case "pulse":
      showPulse(d);
      break;
    case "pulse_expired":
      expirePulse(d.pulse_id);
      break;
    case "ended":
      enterEnded();
      break;
    case "closed":
      if (state.phase !== "done") finish(false, t("call.closed"));
      break;
    case "replaced":
      onReplaced();
      break;
    case "participant_left":
      if (d.role === "therapist") onTherapist(false);
      break;
    case "participant_joined":
      if (d.role === "therapist") onTherapist(true);
      break;
    case "observer_joined":
    case "observer_left":
      showObserved(d.observers, t("call.observed"));
      break;
    case "media_stopped":
    case "media_resumed":
      if (d.role === "therapist") remoteWatch().setServerStopped(d.alliance === "media_stopped");
      break;
    default:
      break;
  }
}

function onDc(m) {
  if (m.type === "pulse") showPulse(m);
  else if (m.type === "pulse_expired") expirePulse(m.pulse_id);
  else if ((m.type === "media_stopped" || m.type === "media_resumed") && m.role === "therapist") {
    remoteWatch().setServerStopped(m.type === "media_stopped");
  }
}

function onTherapist(present) {
  const was = remoteWatch().present;
  remoteWatch().setPresent(present);
  if (state.phase !== "live") return;
  if (!present) setStatus("call-status", "warn", t("call.therapist_left"));
  else if (!was) setStatus("call-status", "ok", t("call.therapist_back"), "", { ms: NOTICE_MS });
  else clearStatusIf("call-status", t("call.therapist_left"));
}

// Another window (tab, device) joined with this visit's link and took it:
// this one lets go and does not try to get it back by itself — two tabs
// doing that would take it from each other for ever.
function onReplaced() {
  if (state.phase === "done") return;
  state.phase = "replaced";
  if (state.keeper) state.keeper.stop();
  stopMedia();
  if (state.current && !state.current.closed) {
    state.current.close("replaced");
    state.current.root.remove();
    state.current = null;
  }
  if (state.ac) state.ac.retire();
  state.ac = null;
  stopCamera();
  showScreen("s-replaced");
}

$("continue-here").addEventListener("click", () => resume());

/* ---------------- the therapist's media ---------------- */
function remoteWatch() {
  if (!state.remote) {
    state.remote = new RemoteWatch({ getPc: () => (state.ac ? state.ac.pc : null), onChange: updateRemoteMark });
  }
  return state.remote;
}

// Mark the therapist's picture when it is not live: a frozen frame must not
// look like a person who stopped moving.
function updateRemoteMark() {
  const v = state.remote ? state.remote.view : { stopped: false };
  const mark = $("remote-mark");
  const own = ownTrouble(state);
  const show = state.phase === "live" && (v.stopped || own);
  $("remote-video").classList.toggle("is-stopped", show);
  mark.dataset.reason = show ? (own ? "self" : v.reason) : "";
  if (show) {
    mark.textContent = own ? t("call.self_reconnecting") : v.back ? t("call.remote_starting") : t("call.remote_stopped");
  } else {
    mark.textContent = "";
  }
}

/* ---------------- 4. the call ---------------- */
function enterCall() {
  if (state.phase === "live") return false;
  state.phase = "live";
  cancelAnimationFrame(state.meterRaf);
  showScreen("s-call");
  setStatus("call-status", "pending", t("wait.admitted"));
  return true;
}

async function startCall() {
  if (!enterCall()) return;
  try {
    await ensureCamera();
    await startMedia(state.ac);
  } catch (e) {
    setStatus("call-status", "error", errorText(e));
  }
}

// Camera, microphone and data channel on this connection (again, after a
// re-join), the stats reporter, and the watch on the therapist's media.
async function startMedia(ac) {
  playStream($("self-video"), state.stream);
  remoteWatch();
  if (!(await startCallMedia(state, ac))) return;
  const st = $("call-status");
  // a confirmation that the call started, not a standing claim: the mark
  // on the picture and the banner say when the call is in trouble
  if (st.hidden || !st.className.includes("status-warn")) setStatus("call-status", "ok", t("call.live"), "", { ms: NOTICE_MS });
}

function stopMedia() {
  stopCallMedia(state);
  if (state.ac) state.ac.stopLocalMedia();
  updateRemoteMark();
}

wireSoundButton(state);

/* ---------------- pulses ---------------- */
function showPulse(p) {
  if (!p || !p.pulse_id || !p.instrument) return;
  if (state.shown.has(p.pulse_id)) return;
  if (state.current && state.current.pulse.pulse_id === p.pulse_id && !state.current.closed) return;
  if (p.kind === "end") {
    enterEnded();
    renderPulse(p, "page", $("end-slot"));
    clearTimeout(state.endTimer);
    clearStatus("end-status");
  } else if (state.phase === "live") {
    renderPulse(p, "overlay", $("overlay-slot"));
  } else {
    // an in-session pulse while not in the call (re-join after the call,
    // say): answer it on the page
    renderPulse(p, "page", state.phase === "ended" ? $("end-slot") : $("overlay-slot"));
  }
}

function renderPulse(p, variant, slot) {
  if (state.current && !state.current.closed) {
    state.current.close("replaced");
    state.current.root.remove();
  }
  const returnTo = document.activeElement && document.activeElement !== document.body ? document.activeElement : null;
  const pf = new PulseForm(p, {
    variant,
    onSubmit: (responses, form) => state.answers.answer(p.pulse_id, responses, {
      onFallback: () => form.setMessage(null, t("pulse.retrying")),
    }),
    onDismiss: () => state.answers.dismiss(p.pulse_id),
  });
  pf.onClose = (reason) => {
    state.shown.add(p.pulse_id);
    if (reason === "replaced") return;
    const wasFocused = pf.root.contains(document.activeElement);
    toast(reason === "answered" ? t("pulse.saved") : reason === "dismissed" ? t("pulse.dismissed") : t("pulse.expired"),
      { kind: reason === "answered" ? "ok" : "info" });
    setTimeout(() => {
      pf.root.remove();
      if (state.current === pf) state.current = null;
      if (p.kind === "end") {
        finish(reason === "answered");
        return;
      }
      if (wasFocused || document.activeElement === document.body) {
        if (returnTo && document.contains(returnTo) && !returnTo.closest("[hidden]")) returnTo.focus();
        else $("h-call").focus();
      }
    }, reason === "answered" ? 900 : 300);
  };
  state.current = pf;
  slot.replaceChildren(pf.root);
  pf.focusFirst();
}

function expirePulse(pulseId) {
  if (state.current && state.current.pulse.pulse_id === pulseId && !state.current.closed) {
    state.current.setMessage("warn", t("pulse.expired"));
    state.current.close("expired");
  }
  state.shown.add(pulseId);
}

/* ---------------- 5. after the call ---------------- */
function enterEnded() {
  if (state.phase === "ended" || state.phase === "done") return;
  const wasLive = state.phase === "live";
  state.phase = "ended";
  // the call is over: camera and microphone off now; the PeerConnection
  // stays until the end pulse is answered (its data channel carries it),
  // and the rejoin record too (a reload still gets to the end pulse)
  if (state.keeper) state.keeper.expectMedia(false);
  stopMedia();
  stopCamera();
  // an open in-session pulse closes with the call
  if (state.current && !state.current.closed && state.current.pulse.kind !== "end") {
    state.current.close("replaced");
    state.current.root.remove();
    state.current = null;
  }
  showScreen("s-end");
  setStatus("end-status", "pending", wasLive ? t("call.end_pulse_wait") : t("call.ended"));
  state.endTimer = setTimeout(checkForEndPulse, END_PULSE_WAIT_MS);
}

async function checkForEndPulse() {
  if (state.phase !== "ended" || state.current) return;
  // no end pulse reached us: ask the server whether one is open for us
  try {
    const r = await state.ac.request({ request: "status" });
    const pending = (r.data.pending_pulses || []).filter((p) => p.kind === "end");
    if (pending.length) {
      state.endTimer = setTimeout(checkForEndPulse, END_PULSE_WAIT_MS);
      return;
    }
  } catch (_) { /* the visit is gone */ }
  finish(false);
}

function finish(answered, text = null) {
  if (state.phase === "done") return;
  state.phase = "done";
  clearTimeout(state.endTimer);
  if (state.keeper) state.keeper.stop();
  stopMedia();
  stopCamera();
  showScreen("s-thanks");
  setStatus("thanks-status", "ok", text || (answered ? t("call.thanks") : t("call.thanks_noanswer")));
  // the visit is over for this person: nothing of it stays in the browser
  dropRecord();
  forgetLink();
  const ac = state.ac;
  state.ac = null;
  if (ac) {
    ac.mute();
    ac.request({ request: "leave" }).catch(() => {}).finally(() => {
      ac.hangup();
      ac.destroy();
    });
  }
}

/* ---------------- start ---------------- */
// With a rejoin record for this invite: straight back into the visit.
// Without one: consent first.
async function begin(invite, token = null) {
  state.invite = invite;
  store.set(K.invite, invite);
  if (token) store.set(K.token, token);     // else: this tab's, kept over a reload
  useToken(store.get(K.token));
  state.recKey = await recordKey(invite);
  const rec = loadRecord();
  if (rec) {
    if (rec.lang) setLanguage(rec.lang);
    state.research = !!rec.research;
    store.set(K.research, state.research ? "yes" : "no");
    resume();
    return;
  }
  showConsent();
}

async function main() {
  sweepRecords();
  setLanguage(chooseLanguage(store.get(K.lang)));
  const cfg = await loadConfig();
  state.servers = serverList(cfg);
  useIce(iceConfig(cfg));      // a bad iceServers entry stops the page here, named
  const fromLink = hashParams().get("invite");
  let invite = store.get(K.invite);
  let token;
  if (fromLink) {
    invite = fromLink.trim();
    token = linkParts(window.location.hash).token;
    if (!token) store.del(K.token);      // a new link without one
    // keep the code out of the address bar, history and screen shares
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  if (!invite) {
    showScreen("s-invite");
    return;
  }
  await begin(invite, token);
}

function forgetLink() {
  store.del(K.invite);
  store.del(K.token);
}

$("invite-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const { invite: v, token } = linkParts($("invite-input").value);
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(v)) {
    $("invite-input").setAttribute("aria-invalid", "true");
    toast(t("err.477"), { kind: "error", ms: 6000 });
    return;
  }
  if (!token) store.del(K.token);
  begin(v, token);
});

// A link pasted into this tab that differs only after "#" does not load the
// page again by itself: start over with it.
window.addEventListener("hashchange", () => {
  if (hashParams().get("invite")) window.location.reload();
});

main().catch((e) => fatal(...startError(e)));

// for tests and debugging: the page's state, without secrets
window.alliancePage = exposeCallState({
  get transport() { return state.ac ? state.ac.transport : null; },
  get servers() { return state.servers.slice(); },      // after a 498: the visit's instance
}, state);
