// Alliance Pulse — the in-person kiosk (kiosk.html#invite=…, or the code
// typed in): for `in_person` visits, on a tablet in the therapy room or the
// waiting area. No camera, no microphone, no PeerConnection: pulses arrive
// as Janus events ({"alliance":"pulse", …}) and answers go by the `answer`
// request. After the end-of-visit pulse the kiosk forgets the visit and is
// ready for the next person.
//
// "Not now" is stored as declined with the `dismiss` request.
//
// A lost connection comes back by itself: once joined, a CallKeeper
// (keeper.mjs, without media) watches it, and when the Janus session is
// gone it joins again with the stored rejoin key, with backoff, saying
// "Reconnecting…" meanwhile; open pulses are delivered again on the new
// handle (docs/api.md, "Lifecycle"). A reload joins again the same way,
// with the consent given for this visit (kept with the rejoin key in the
// tab's sessionStorage). Nobody has to touch the tablet.

import { loadConfig, serverList, iceConfig } from "./config.mjs";
import { AllianceClient, openClient, useIce, useToken } from "./alliance-client.mjs";
import { linkParts } from "./credential.mjs";
import { $, showScreen, setStatus, clearStatus, store, hashParams, showConnection } from "./ui.mjs";
import { t, applyLanguage, chooseLanguage, errorText, startError } from "./i18n.mjs";
import { PulseForm, AnswerChannel } from "./pulse.mjs";
import { CallKeeper, StopRetrying, handOver } from "./keeper.mjs";

// token: the Janus API token of a link from a server with token_auth
const K = { invite: "ap.kiosk.invite", token: "ap.kiosk.token", rejoin: "ap.kiosk.rejoin", lang: "ap.lang" };
const RESET_AFTER_MS = 20000;
const THANKS_MS = 2500;

const state = {
  servers: [],
  invite: null,
  ac: null,
  answers: null,
  phase: "setup",      // setup | consent | waiting | ready | pulse | ended | done
  current: null,
  done: new Set(),
  resetTimer: null,
  ended: false,
  research: false,
  keeper: null,
  joins: 0,            // successful joins (for tests)
};

function fatal(headline, detail = "", retry = null) {
  showScreen("s-error");
  setStatus("error-status", "error", headline, detail);
  const b = $("error-retry");
  b.hidden = !retry;
  b.onclick = retry;
}

function setLanguage(lang) {
  applyLanguage(lang);
  store.set(K.lang, lang);
  $("lang").value = lang;
}
$("lang").addEventListener("change", (e) => setLanguage(e.target.value));

/* ---------------- setup ---------------- */
function showSetup() {
  state.phase = "setup";
  showScreen("s-setup");
  $("invite-input").value = "";
}

$("setup-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const { invite: v, token } = linkParts($("invite-input").value);
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(v)) {
    $("invite-input").setAttribute("aria-invalid", "true");
    setStatus("setup-status", "error", t("err.477"));
    $("invite-input").focus();
    return;
  }
  $("invite-input").removeAttribute("aria-invalid");
  clearStatus("setup-status");
  state.invite = v;
  store.set(K.invite, v);
  setLinkToken(token);
  showConsent();
});

function showConsent() {
  state.phase = "consent";
  showScreen("s-consent");
  for (const r of document.querySelectorAll("input[name=research]")) r.checked = false;
}

$("consent-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const chosen = document.querySelector("input[name=research]:checked");
  if (!chosen) {
    $("consent-error").hidden = false;
    document.querySelector("input[name=research]").focus();
    return;
  }
  $("consent-error").hidden = true;
  join(chosen.value === "yes");
});

/* ---------------- join ---------------- */
async function join(research) {
  state.research = research;
  state.phase = "waiting";
  showScreen("s-wait");
  setStatus("wait-status", "pending", t("conn.connecting"));
  let ac = state.ac;
  try {
    if (!ac || !ac.handle) {
      ac = new AllianceClient({ servers: state.servers, name: "kiosk" });
      state.ac = ac;
      await ac.connect();
      await ac.attach();
      wire(ac);
    }
  } catch (e) {
    state.ac = null;
    if (e.code === "token_required") fatal(t("conn.token"), t("conn.token.detail"), () => join(research));
    else fatal(t("conn.unreachable"), t("conn.unreachable.detail", { servers: state.servers.join(", ") }), () => join(research));
    return;
  }
  let r;
  try {
    r = await ac.join(joinBody());
  } catch (e) {
    fatal(errorText(e), "", () => join(research));
    return;
  }
  const d = r.data;
  if (d.alliance === "error") {
    if (d.error_code === 477 || d.error_code === 478) forgetVisit();
    fatal(errorText(d), "", d.error_code === 477 || d.error_code === 478 ? null : () => join(research));
    return;
  }
  joined(ac, d);
}

function joinBody() {
  const body = { request: "join", role: "client", invite: state.invite, consent: { research: state.research },
    language: document.documentElement.lang };
  const saved = savedRejoin();
  if (saved) body.rejoin_key = saved;
  return body;
}

function forgetVisit() {
  store.del(K.invite);
  store.del(K.rejoin);
  setLinkToken(null);
}

function setLinkToken(token) {
  if (token) store.set(K.token, token);
  else store.del(K.token);
  useToken(token);
}

// In the visit (first join or re-join): the keeper watches this connection.
function joined(ac, d) {
  state.joins++;
  if (d.rejoin_key) store.set(K.rejoin, JSON.stringify({ invite: state.invite, key: d.rejoin_key, research: state.research }));
  keeper().watch(ac, { media: false });
  if (d.state === "ended") state.ended = true;
  // a re-join leaves the screen as it is (a pulse being answered stays);
  // only the waiting screen moves on
  if (state.phase !== "waiting") return;
  if (d.state === "live" || d.state === "ended") showReady();
  else setStatus("wait-status", "pending", t("kiosk.waiting"));
}

// The keeper's fresh start: a new session and handle, `join` with the
// rejoin key (the plugin's takeover seats it at once). Open pulses come
// again as events on the new handle.
async function rejoin() {
  const ac = await openClient(state.servers, "kiosk");
  wire(ac);
  const { data: d } = await handOver(state, ac, (a) => a.join(joinBody()));
  if (d.alliance === "error") {
    ac.retire();
    if (d.error_code === 477 || d.error_code === 478) {
      forgetVisit();
      state.phase = "done";
      fatal(errorText(d));
      throw new StopRetrying(d.error);
    }
    if (d.error_code === 476) {      // closed meanwhile
      finish(false);
      throw new StopRetrying(d.error);
    }
    throw new Error(d.error);
  }
  state.ac = ac;
  joined(ac, d);
}

function keeper() {
  if (!state.keeper) {
    state.keeper = new CallKeeper({
      rejoin,
      onState: (s) => showConnection(s === "back" ? "restored" : s, { lost: t("conn.reconnecting"), restored: t("conn.back") }),
    });
  }
  return state.keeper;
}

// The visit is over here: the next one gets a keeper of its own.
function stopKeeper() {
  if (state.keeper) state.keeper.stop();
  state.keeper = null;
}

// This tab's rejoin record for the current invite: {key, research}, or null.
function savedRecord() {
  try {
    const s = JSON.parse(store.get(K.rejoin) || "null");
    return s && s.invite === state.invite && s.key ? s : null;
  } catch (_) {
    return null;
  }
}

function savedRejoin() {
  const s = savedRecord();
  return s ? s.key : null;
}

function showReady(note = null) {
  if (state.phase === "done") return;
  state.phase = "ready";
  showScreen("s-ready");
  if (note) setStatus("ready-status", "ok", note, "", { ms: THANKS_MS });
  else clearStatus("ready-status");
}

/* ---------------- pulses ---------------- */
function showPulse(p) {
  if (!p || !p.instrument || state.done.has(p.pulse_id)) return;
  if (state.current && state.current.pulse.pulse_id === p.pulse_id && !state.current.closed) return;
  if (state.phase === "done" || state.phase === "setup") return;
  if (p.kind === "end") state.ended = true;
  state.phase = "pulse";
  showScreen("s-pulse", { focus: false });
  const pf = new PulseForm(p, {
    variant: "kiosk",
    onSubmit: (responses) => state.answers.viaRequest(p.pulse_id, responses),
    onDismiss: () => state.answers.dismiss(p.pulse_id),
  });
  pf.onClose = (reason) => {
    state.done.add(p.pulse_id);
    setTimeout(() => {
      if (state.current === pf) state.current = null;
      if (p.kind === "end" && reason !== "replaced") {
        finish(reason === "answered");
        return;
      }
      if (reason === "replaced") return;
      showReady(reason === "answered" ? t("kiosk.thanks") : null);
    }, reason === "answered" ? 900 : 200);
  };
  if (state.current && !state.current.closed) state.current.close("replaced");
  state.current = pf;
  $("pulse-slot").replaceChildren(pf.root);
  pf.focusFirst();
}

function expirePulse(pulseId) {
  state.done.add(pulseId);
  if (state.current && state.current.pulse.pulse_id === pulseId && !state.current.closed) {
    state.current.setMessage("warn", t("pulse.expired"));
    state.current.close("expired");
  }
}

/* ---------------- end and reset ---------------- */
function finish(answered) {
  if (state.phase === "done") return;
  state.phase = "done";
  showScreen("s-done");
  setStatus("done-status", "ok", answered ? t("kiosk.done") : t("call.thanks_noanswer"));
  stopKeeper();
  const ac = state.ac;
  state.ac = null;
  if (ac) ac.request({ request: "leave" }).catch(() => {}).finally(() => ac.destroy());
  forgetVisit();
  clearTimeout(state.resetTimer);
  state.resetTimer = setTimeout(reset, RESET_AFTER_MS);
}

function reset() {
  clearTimeout(state.resetTimer);
  stopKeeper();
  if (state.ac) state.ac.destroy();
  state.ac = null;
  state.invite = null;
  state.current = null;
  state.ended = false;
  state.done.clear();
  $("pulse-slot").replaceChildren();
  forgetVisit();
  showSetup();
}
$("next-person").addEventListener("click", reset);
$("error-reset").addEventListener("click", reset);

/* ---------------- events ---------------- */
function wire(ac) {
  state.answers = new AnswerChannel(ac);
  ac.on("moved", (servers) => { state.servers = servers; });   // 498: the visit's instance
  ac.on("event", (d) => {
    switch (d.alliance) {
      case "admitted": showReady(); break;
      case "pulse": showPulse(d); break;
      case "pulse_expired": expirePulse(d.pulse_id); break;
      case "ended":
        state.ended = true;
        if (state.phase !== "pulse") setStatus("ready-status", "pending", t("call.end_pulse_wait"));
        setTimeout(() => { if (state.phase === "ready" && state.ended) finish(false); }, 10000);
        break;
      case "closed":
        if (state.phase !== "done") finish(false);
        break;
      case "replaced":
        // the link was opened on another device: that one has the visit now
        if (state.current && !state.current.closed) state.current.close("replaced");
        state.phase = "done";
        stopKeeper();
        if (state.ac) state.ac.retire();
        state.ac = null;
        fatal(t("kiosk.replaced"), t("kiosk.replaced.detail"));
        break;
      default: break;
    }
  });
  ac.on("connection", ({ state: s }) => {
    // once joined the keeper has the connection (banner and re-join)
    if (state.keeper && !state.keeper.stopped && (state.keeper.ac === ac || state.keeper.rejoining)) return;
    showConnection(s, { lost: t("conn.lost"), restored: t("conn.restored") });
    if (s === "gone") {
      state.ac = null;
      if (state.phase !== "done") fatal(t("conn.gone"), t("conn.gone.detail"), () => join(state.research));
    }
  });
}

/* ---------------- start ---------------- */
async function main() {
  setLanguage(chooseLanguage(store.get(K.lang)));
  const cfg = await loadConfig();
  state.servers = serverList(cfg);
  useIce(iceConfig(cfg));      // a bad iceServers entry stops the page here, named
  const fromLink = hashParams().get("invite");
  if (fromLink) {
    state.invite = fromLink.trim();
    store.set(K.invite, state.invite);
    setLinkToken(linkParts(window.location.hash).token);
    history.replaceState(null, "", window.location.pathname + window.location.search);
  } else {
    state.invite = store.get(K.invite);
    useToken(store.get(K.token));
  }
  // a reload in the middle of a visit: back in with the record, the
  // consent already given, no screen to touch
  const rec = state.invite ? savedRecord() : null;
  if (rec && typeof rec.research === "boolean") join(rec.research);
  else if (state.invite) showConsent();
  else showSetup();
}

main().catch((e) => fatal(...startError(e)));

window.alliancePage = {
  get phase() { return state.phase; },
  get joins() { return state.joins; },
};
