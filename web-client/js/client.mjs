// Alliance Pulse — the client's page (client.html#invite=…).
//
// consent → device and connection check → join (waiting room) → the call
// with pulse overlays → the end-of-visit pulse → thank you.
// The invite comes in the URL fragment (never sent to a web server); it and
// the rejoin_key the first join returns are kept in sessionStorage, so a
// reloaded tab re-joins the same visit.

import { loadConfig, serverList } from "./config.mjs";
import { AllianceClient } from "./alliance-client.mjs";
import { $, showScreen, setStatus, clearStatus, toast, playStream, store, hashParams, fmtMs, showConnection } from "./ui.mjs";
import { t, applyLanguage, chooseLanguage, errorText } from "./i18n.mjs";
import { PulseForm, AnswerChannel } from "./pulse.mjs";
import { startStatsReporter } from "./stats.mjs";

const K = { invite: "ap.client.invite", rejoin: "ap.client.rejoin", research: "ap.client.research", lang: "ap.lang" };
const END_PULSE_WAIT_MS = 8000;

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
};

/* ---------------- errors ---------------- */
function fatal(headline, detail = "", retry = null) {
  showScreen("s-error");
  setStatus("error-status", "error", headline, detail);
  const b = $("error-retry");
  b.hidden = !retry;
  b.onclick = retry;
}

/* ---------------- language ---------------- */
function setLanguage(lang) {
  applyLanguage(lang);
  store.set(K.lang, lang);
  $("lang").value = lang;
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

async function checkCamera() {
  state.camOk = false;
  setStatus("cam-status", "pending", t("dev.asking"));
  try {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw Object.assign(new Error("no mediaDevices"), { name: "SecurityError" });
    }
    if (!state.stream || state.stream.getTracks().some((tr) => tr.readyState === "ended")) {
      state.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true },
        video: { width: { ideal: 640 }, height: { ideal: 480 } },
      });
    }
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

async function ensureConnected() {
  if (state.ac && state.ac.handle) return state.ac;
  if (state.ac) state.ac.destroy();
  const ac = new AllianceClient({ servers: state.servers, name: "client" });
  state.ac = ac;
  await ac.connect();
  await ac.attach();
  wireClient(ac);
  return ac;
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
    const h = e.code === "no_janus_js" ? t("conn.nojanus") : e.code === "janus" ? t("conn.noplugin") : t("conn.unreachable");
    setStatus("net-status", "error", h, e.code === "unreachable" ? t("conn.unreachable.detail", { servers: state.servers.join(", ") }) : e.message);
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
  const body = { request: "join", role: "client", invite: state.invite, consent: { research: !!state.research } };
  const lang = document.documentElement.lang;
  if (lang) body.language = lang;
  const saved = savedRejoin();
  if (saved) body.rejoin_key = saved;
  let r;
  try {
    r = await ac.request(body);
  } catch (e) {
    fatal(errorText(e), "", () => join());
    return;
  }
  const d = r.data;
  if (d.alliance === "error") {
    if (d.error_code === 477 || d.error_code === 478) {
      store.del(K.rejoin);
      fatal(errorText(d));
    } else {
      fatal(errorText(d), "", () => join());
    }
    return;
  }
  if (d.rejoin_key) store.set(K.rejoin, JSON.stringify({ invite: state.invite, key: d.rejoin_key }));
  if (d.state === "live") {
    startCall();
  } else if (d.state === "ended") {
    enterEnded();
  } else {
    setStatus("wait-status", "pending", t("wait.waiting"));
  }
}

function savedRejoin() {
  try {
    const s = JSON.parse(store.get(K.rejoin) || "null");
    return s && s.invite === state.invite ? s.key : null;
  } catch (_) {
    return null;
  }
}

/* ---------------- events ---------------- */
function wireClient(ac) {
  state.answers = new AnswerChannel(ac);
  ac.on("event", (d) => onEvent(d));
  ac.on("dc", (m) => onDc(m));
  ac.on("remotetrack", (stream) => {
    playStream($("remote-video"), stream).then((ok) => { $("sound-btn").hidden = ok; });
  });
  ac.on("connection", ({ state: s }) => {
    showConnection(s, { lost: t("conn.lost"), restored: t("conn.restored") });
    if (s === "gone") {
      state.ac = null;
      if (state.phase !== "done") {
        fatal(t("conn.gone"), t("conn.gone.detail"), () => { state.netOk = false; state.camOk = false; startCheck(); });
      }
    }
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
    case "participant_left":
      if (d.role === "therapist" && state.phase === "live") setStatus("call-status", "warn", t("call.therapist_left"));
      break;
    case "participant_joined":
      if (d.role === "therapist" && state.phase === "live") setStatus("call-status", "ok", t("call.therapist_back"));
      break;
    default:
      break;
  }
}

function onDc(m) {
  if (m.type === "pulse") showPulse(m);
  else if (m.type === "pulse_expired") expirePulse(m.pulse_id);
}

/* ---------------- 4. the call ---------------- */
async function startCall() {
  if (state.phase === "live") return;
  state.phase = "live";
  cancelAnimationFrame(state.meterRaf);
  showScreen("s-call");
  setStatus("call-status", "pending", t("wait.admitted"));
  playStream($("self-video"), state.stream);
  try {
    await state.ac.startMedia({ stream: state.stream });
    setStatus("call-status", "ok", t("call.live"));
    state.stopStats = startStatsReporter(state.ac);
  } catch (e) {
    setStatus("call-status", "error", errorText(e));
  }
}

$("sound-btn").addEventListener("click", async () => {
  const ok = await playStream($("remote-video"), state.ac.remoteStream);
  $("sound-btn").hidden = ok;
});

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
  if (state.stopStats) state.stopStats();
  // the call is over: camera and microphone off now; the PeerConnection
  // stays until the end pulse is answered (its data channel carries it)
  if (state.ac) state.ac.stopLocalMedia();
  if (state.stream) for (const tr of state.stream.getTracks()) tr.stop();
  $("remote-video").srcObject = null;
  $("self-video").srcObject = null;
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
  if (state.stopStats) state.stopStats();
  showScreen("s-thanks");
  setStatus("thanks-status", "ok", text || (answered ? t("call.thanks") : t("call.thanks_noanswer")));
  store.del(K.rejoin);
  store.del(K.invite);
  const ac = state.ac;
  state.ac = null;
  if (ac) {
    ac.stopLocalMedia();
    ac.request({ request: "leave" }).catch(() => {}).finally(() => {
      ac.hangup();
      ac.destroy();
    });
  }
}

/* ---------------- start ---------------- */
async function main() {
  setLanguage(chooseLanguage(store.get(K.lang)));
  const cfg = await loadConfig();
  state.servers = serverList(cfg);
  const fromLink = hashParams().get("invite");
  if (fromLink) {
    state.invite = fromLink.trim();
    store.set(K.invite, state.invite);
    // keep the code out of the address bar, history and screen shares
    history.replaceState(null, "", window.location.pathname + window.location.search);
  } else {
    state.invite = store.get(K.invite);
  }
  if (!state.invite) {
    showScreen("s-invite");
    return;
  }
  showConsent();
}

$("invite-form").addEventListener("submit", (e) => {
  e.preventDefault();
  let v = $("invite-input").value.trim();
  const m = v.match(/invite=([A-Za-z0-9_-]+)/);
  if (m) v = m[1];
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(v)) {
    $("invite-input").setAttribute("aria-invalid", "true");
    toast(t("err.477"), { kind: "error", ms: 6000 });
    return;
  }
  state.invite = v;
  store.set(K.invite, v);
  showConsent();
});

main().catch((e) => fatal(t("err.generic", { error: e && e.message ? e.message : String(e) })));

// for tests and debugging: the page's state, without secrets
window.alliancePage = {
  get phase() { return state.phase; },
  get dcOpen() { return !!(state.ac && state.ac.dc.open); },
  get transport() { return state.ac ? state.ac.transport : null; },
};
