// Alliance Pulse — the therapist's page.
//
// sign in (key or signed token, kept in sessionStorage only) → create a visit → copy the
// client's link → waiting room (Admit) → the call with live connection
// badges, "Send pulse" and alerts → End visit → the therapist's own
// end-of-visit (mirror) form.
//
// A reload signs in again from the tab's key and re-joins the visit; a lost
// connection is brought back by the CallKeeper (keeper.mjs) without a
// click. While the client's media is stopped their picture is marked and
// the badges say so; the client link stays at hand during the call, with
// "New link" (the `reinvite` request) for a client on another device.
//
// The "Client history" panel (history.mjs, the `client_history` request)
// shows the client's earlier visits with this therapist: on the visit
// screen before admission and during the call, on the mirror screen and on
// the "Visit finished" screen after it, refreshed when a pulse of the
// visit closes (the end pulses' answers included).
//
// The key is checked at sign-in with a `join` for a visit id that cannot
// exist: the plugin checks the key first (475 unauthorized) and only then
// looks the visit up (476 no_such_visit), and a refused request changes
// nothing. So 476 means "key accepted".

import { loadConfig, serverList, iceConfig } from "./config.mjs";
import { openClient, useIce } from "./alliance-client.mjs";
import { $, el, showScreen, setStatus, clearStatus, clearStatusIf, toast, copyText, playStream, store, fmtNum, showConnection, wireConfirm, showObserved } from "./ui.mjs";
import { t, errorText, startError } from "./i18n.mjs";
import { PulseForm, AnswerChannel } from "./pulse.mjs";
import { CallKeeper, RemoteWatch, StopRetrying, handOver, exposeCallState, ownTrouble, startCallMedia, stopCallMedia, wireSoundButton } from "./keeper.mjs";
import { historyLoader } from "./history.mjs";
import { credential, useSignIn, linkHash, isSignedToken } from "./credential.mjs";

const K = { key: "ap.therapist.key", visit: "ap.therapist.visit" };
const KEY_CHECK_VISIT = "key-check";
const NOTICE_MS = 5000;          // "The client is back." and the like
const ACTION_MS = 10000;         // what became of a button press (refused, made)
const OBSERVED_NOTE = "A supervisor is watching this session live (the client consented to research).";

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
  keeper: null,
  remote: null,            // RemoteWatch of the client's media
  lastQuality: null,       // the latest `quality` message, for the badges
  pulseOpen: null,         // {pulse_id, timer}: what "Pulse sent" reports
  joins: 0,
  historyVisit: null,      // the visit whose client's history the panel shows
};

/* ---------------- the client's history ---------------- */
const clientHistory = historyLoader({ servers: () => state.servers, credential: () => credential("therapist", state.key) });

// The panel goes with the screen: the visit, the mirror form, "finished".
function showHistory(screenId, visitId) {
  const panel = $("history-panel");
  $(screenId).append(panel);
  panel.hidden = false;
  if (state.historyVisit !== visitId) $("history-body").replaceChildren();
  state.historyVisit = visitId;
  clientHistory.load(visitId);
}

function refreshHistory() {
  if (state.historyVisit) clientHistory.load(state.historyVisit);
}

$("history-refresh").addEventListener("click", refreshHistory);

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
  if (state.ac && state.ac.handle && state.ac.sessionUp) return state.ac;
  if (state.ac) state.ac.retire();
  state.ac = null;
  const ac = await openClient(state.servers, "therapist");
  state.ac = ac;
  wire(ac);
  ac.on("moved", (servers) => { state.servers = servers; });   // 498: the visit's instance
  return ac;
}

function connectionError(e) {
  if (e.code === "token_required") return [t("conn.token"), t("conn.token.detail")];
  if (e.code === "unreachable") return [t("conn.unreachable"), t("conn.unreachable.detail", { servers: state.servers.join(", ") })];
  if (e.code === "no_janus_js") return [t("conn.nojanus"), ""];
  if (e.code === "janus") return [t("conn.noplugin"), e.message];
  return [errorText(e), ""];
}

/* ---------------- sign in ---------------- */
async function signIn(key) {
  setStatus("signin-status", "pending", t("conn.connecting"));
  useSignIn(key);
  if (state.ac) state.ac.retire();     // a session opened with another credential
  state.ac = null;
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
    r = await ac.join({ request: "join", role: "therapist", visit_id: KEY_CHECK_VISIT, ...credential("therapist", key) });
  } catch (e) {
    setStatus("signin-status", "error", errorText(e));
    return false;
  }
  const code = r.data.error_code;
  if (code === 475) {
    setStatus("signin-status", "error", isSignedToken(key) ? t("err.475.token", { error: r.data.error }) : t("err.475"));
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
    setStatus("signin-status", "error", "Enter your therapist key or token.");
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
  clientHistory.close();
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
  state.historyVisit = null;
  $("history-panel").hidden = true;
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
    r = await ac.request({ request: "create", ...credential("therapist", state.key), client_code: code, modality });
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
  state.visit = { visit_id: r.data.visit_id, client_code: code, modality: r.data.modality, link: linkFor(r.data.invite, r.data.modality, r.data.client_token) };
  saveVisit();
  input.value = "";
  joinVisit(false);
});

/* ---------------- the visit ---------------- */
async function joinVisit(resumed) {
  const v = state.visit;
  showVisitScreen();
  let r, ac;
  try {
    ac = await connect();
    state.joins++;
    r = await ac.join({ request: "join", role: "therapist", visit_id: v.visit_id, ...credential("therapist", state.key) });
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
  keeper().watch(ac, { media: false });
  onJoined(d);
  if (v.modality === "video" && d.state !== "ended") startCamera();
}

// What a join answer says about the visit, applied to the page.
function onJoined(d) {
  const client = d.participants && d.participants.client;
  showObserved(d.participants ? d.participants.observers : 0, OBSERVED_NOTE);
  if (client) remoteWatch().setPresent(!!client.present);
  if (d.state === "waiting" && client && client.present) onWaiting(client.code);
  if (d.state === "live") onLive();
  if (d.state === "ended") onEnded();
}

// The keeper's fresh start: a new session and handle, `join` with the
// visit id and key (the plugin's takeover seats it at once), media again.
async function rejoin() {
  const ac = await openClient(state.servers, "therapist");
  wire(ac);
  ac.on("moved", (servers) => { state.servers = servers; });   // 498: the visit's instance
  state.joins++;
  const { data: d } = await handOver(state, ac, (a) => a.join({ request: "join", role: "therapist",
    visit_id: state.visit.visit_id, ...credential("therapist", state.key) }));
  if (d.alliance === "error") {
    ac.retire();
    if (d.error_code === 475) {
      store.del(K.key);
      fatal(t("err.475"), "", () => window.location.reload());
      throw new StopRetrying(d.error);
    }
    if (d.error_code === 476) {
      done("The visit is closed.");
      throw new StopRetrying(d.error);
    }
    throw new Error(d.error);
  }
  state.ac = ac;
  const video = state.visit.modality === "video";
  state.keeper.watch(ac, { media: video && d.state === "live" });
  if (d.state === "live" && state.phase === "live") {
    const client = d.participants && d.participants.client;
    if (client) remoteWatch().setPresent(!!client.present);
    if (video) {
      await startCamera();
      await startMedia(ac);
    }
  } else {
    onJoined(d);
  }
}

function keeper() {
  if (!state.keeper) {
    state.keeper = new CallKeeper({
      rejoin,
      onState: (s) => {
        showConnection(s === "back" ? "restored" : s, { lost: "Reconnecting…", restored: "Back — the connection is restored." });
        renderRemote();
      },
    });
  }
  return state.keeper;
}

function showVisitScreen() {
  const v = state.visit;
  showScreen("s-visit");
  $("v-client").textContent = v.client_code;
  $("v-modality").textContent = v.modality === "in_person" ? "in person" : "video";
  $("invite-link").value = v.link;
  placeInvitePanel(false);
  clearStatus("invite-status");
  $("reinvite-confirm").hidden = true;
  $("waiting-panel").hidden = false;
  setStatus("waiting-status", "pending", "Waiting for the client to open the link…");
  $("admit").hidden = true;
  $("call-panel").hidden = true;
  $("inperson-panel").hidden = true;
  document.querySelector(".visit-grid").classList.remove("with-main");
  $("controls-panel").hidden = true;
  $("end-confirm").hidden = true;
  clearStatus("presence-status");
  clearStatus("controls-status");
  $("alerts").replaceChildren();
  $("no-alerts").hidden = false;
  state.alerts.clear();
  showHistory("s-visit", v.visit_id);
}

/* ---------------- the client link ---------------- */
const LINK_HELP = {
  video: "Send this link to your client. It opens the visit in one browser; from that browser they get back in with it (after a reload or a lost connection). On another device they need a new link.",
  live: "If the client's connection drops, their page reconnects by itself, and from the same browser they get back in with this link. If they cannot (another device, or their browser forgot the visit), make a new link and send it to them.",
  in_person: "Open this link on the kiosk or tablet the client will use (it works once). The client then appears in your waiting room.",
};

// Before the call the link panel is at the top; during the call it sits in
// the side column, still at hand.
function placeInvitePanel(inCall) {
  const panel = $("invite-panel");
  panel.hidden = false;
  if (inCall) document.querySelector(".side").insertBefore(panel, $("alerts-panel"));
  else $("s-visit").insertBefore(panel, $("waiting-panel"));
  const m = state.visit ? state.visit.modality : "video";
  $("invite-help").textContent = m === "in_person" ? LINK_HELP.in_person : inCall ? LINK_HELP.live : LINK_HELP.video;
}

// the client token (from a server with token_auth) travels with the invite
function linkFor(invite, modality, clientToken) {
  const page = modality === "in_person" ? "kiosk.html" : "client.html";
  const link = new URL(page, window.location.href);
  link.search = "";
  link.hash = linkHash(invite, clientToken);
  return link.href;
}

$("copy-link").addEventListener("click", async () => {
  const ok = await copyText($("invite-link").value, $("invite-link"));
  toast(ok ? "Link copied." : "Select the link and copy it (Ctrl+C).", { kind: ok ? "ok" : "info" });
});

wireConfirm("reinvite", "reinvite-confirm", "reinvite-yes", "reinvite-no");
$("reinvite-yes").addEventListener("click", async () => {
  const b = $("reinvite-yes");
  b.disabled = true;
  setStatus("invite-status", "pending", "Making a new link…");
  const r = await state.ac.request({ request: "reinvite" })
    .catch((e) => ({ data: { alliance: "error", error: e.message, error_code: e.code } }));
  b.disabled = false;
  $("reinvite-confirm").hidden = true;
  const d = r.data;
  if (d.alliance === "error") {
    if (d.error_code === 472) setStatus("invite-status", "warn", "New links are not available on this server yet.", "", { ms: ACTION_MS });
    else if (d.error_code === 483) setStatus("invite-status", "warn", "A new link is not possible any more: the visit has ended.", "", { ms: ACTION_MS });
    else setStatus("invite-status", "error", errorText(d), "", { ms: ACTION_MS });
    return;
  }
  state.visit.link = linkFor(d.invite, state.visit.modality, d.client_token);
  saveVisit();
  $("invite-link").value = state.visit.link;
  const ok = await copyText(state.visit.link, $("invite-link"));
  setStatus("invite-status", "ok", ok ? "New link made and copied. Send it to your client." : "New link made. Select it and copy it (Ctrl+C), then send it to your client.",
    "The old link no longer works.", { ms: ACTION_MS });
  $("invite-link").focus();
});

async function startCamera() {
  if (state.stream && state.stream.getTracks().every((tr) => tr.readyState === "live")) {
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

function stopCamera() {
  if (state.stream) for (const tr of state.stream.getTracks()) tr.stop();
  state.stream = null;
}

function onWaiting(clientCode) {
  remoteWatch().setPresent(true);
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
  placeInvitePanel(true);
  $("controls-panel").hidden = false;
  document.querySelector(".visit-grid").classList.add("with-main");
  if (state.visit.modality === "in_person") {
    $("inperson-panel").hidden = false;
    $("send-pulse").focus();
    return;
  }
  $("call-panel").hidden = false;
  $("send-pulse").focus();
  await startCamera();
  try {
    await startMedia(state.ac);
  } catch (e) {
    setStatus("call-status", "error", errorText(e));
  }
}

// Camera, microphone and data channel on this connection (again, after a
// re-join), the stats reporter, and the watch on the client's media.
async function startMedia(ac) {
  remoteWatch();
  if (await startCallMedia(state, ac)) clearStatus("call-status");
}

function stopMedia() {
  stopCallMedia(state);
  stopCamera();
  renderRemote();
}

wireSoundButton(state);

/* ---------------- the client's presence and media ---------------- */
function remoteWatch() {
  if (!state.remote) {
    state.remote = new RemoteWatch({ getPc: () => (state.ac ? state.ac.pc : null), onChange: renderRemote });
  }
  return state.remote;
}

const CLIENT_LEFT = "The client's connection dropped.";

function onClientPresence(present) {
  const was = remoteWatch().present;
  remoteWatch().setPresent(present);
  if (state.phase === "joined" && !present) setStatus("waiting-status", "pending", "The client left the waiting room.");
  if (state.phase !== "live") return;
  if (!present) {
    setStatus("presence-status", "warn", CLIENT_LEFT,
      "Their page reconnects by itself. If they cannot get back (another device), use New link under Client link.");
  } else if (!was) {
    setStatus("presence-status", "ok", "The client is back.", "", { ms: NOTICE_MS });
  } else {
    clearStatusIf("presence-status", CLIENT_LEFT);
  }
}

// The client's picture and the badges while their media is stopped: a
// frozen frame must not pass for a client who sits still, and "Good" must
// not stand for a connection that carries nothing.
function renderRemote() {
  const v = state.remote ? state.remote.view : { stopped: false };
  const own = ownTrouble(state);
  const show = state.phase === "live" && state.visit && state.visit.modality === "video" && (v.stopped || own);
  const mark = $("remote-mark");
  $("remote-video").classList.toggle("is-stopped", show);
  mark.dataset.reason = show ? (own ? "self" : v.reason) : "";
  mark.textContent = !show ? ""
    : own ? "Your connection was interrupted — reconnecting…"
    : v.back ? "The client is back — their video is starting…"
    : "Client's video stopped — connection lost, waiting for them to come back.";
  const stopped = show && !own;
  if (stopped) {
    for (const id of ["q-c2t", "q-t2c"]) stoppedBadge(id, v.back);
  } else if (state.badgesStopped) {
    // measured across the gap: wait for the next figures
    state.lastQuality = null;
    renderBadges();
  }
  state.badgesStopped = stopped;
}

/* ---------------- quality badges ---------------- */
function stoppedBadge(id, back) {
  const b = $(id);
  const dir = b.querySelector(".badge-dir").textContent;
  b.className = "badge badge-stopped";
  b.querySelector(".badge-val").textContent = "Client's media stopped";
  const text = back
    ? `${dir}: the client is back; their media is not flowing yet.`
    : `${dir}: the client's media stopped — their connection is lost; waiting for them to come back.`;
  b.querySelector(".badge-detail").textContent = text;
  b.title = text;
  b.dataset.badge = "stopped";
}

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
}

function onQuality(q) {
  state.lastQuality = q;
  state.qualityUpdates++;
  for (const id of ["q-c2t", "q-t2c"]) $(id).dataset.updates = String(Number($(id).dataset.updates || 0) + 1);
  if (!state.badgesStopped) renderBadges();
}

function renderBadges() {
  const q = state.lastQuality || {};
  const legs = q.legs || {};
  const paths = q.paths || {};
  const fr = (leg) => (legs[leg] && legs[leg].video) || {};
  const w = q.window_s || q.measured_s || 0;
  updateBadge("q-c2t", paths.client_to_therapist, fr("client_up").freezes || 0, fr("client_up").freeze_s || 0, w);
  updateBadge("q-t2c", paths.therapist_to_client, fr("therapist_up").freezes || 0, fr("therapist_up").freeze_s || 0, w);
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
    setStatus("controls-status", "error", `This server has no instrument "${instrument}". Ask the clinic to install it, or send the alliance check-in.`, "", { ms: ACTION_MS });
    return;
  }
  if (r.data.alliance === "error") {
    setStatus("controls-status", r.data.error_code === 487 ? "warn" : "error", errorText(r.data), "", { ms: ACTION_MS });
    return;
  }
  setStatus("controls-status", "ok", PULSE_SENT, "The client sees it over the video (they can also choose “Not now”).");
  trackPulses(r.data.pulse_ids || []);
});

// "Pulse sent" holds while the pulse is open: it goes on `pulse_closed`,
// or when the pulse's time is up (its expiry, from `status`), whichever
// comes first; a server without `pulse_closed` still gets the expiry.
const PULSE_SENT = "Pulse sent.";

async function trackPulses(ids) {
  untrackPulses();
  const open = { ids: new Set(ids), timer: null };
  state.pulseOpen = open;
  let left = null;
  try {
    const r = await state.ac.request({ request: "status" });
    const mine = (r.data.pending_pulses || []).filter((p) => open.ids.has(p.pulse_id));
    for (const id of [...open.ids]) if (!mine.some((p) => p.pulse_id === id)) open.ids.delete(id);
    if (mine.length) left = Math.max(...mine.map((p) => p.expires_in_s || 0));
  } catch (_) { /* no status: pulse_closed still clears it */ }
  if (state.pulseOpen !== open) return;
  if (!open.ids.size) {
    pulseClosed(null);
    return;
  }
  if (left !== null) open.timer = setTimeout(() => pulseClosed(null), (left + 1) * 1000);
}

function untrackPulses() {
  if (state.pulseOpen) clearTimeout(state.pulseOpen.timer);
  state.pulseOpen = null;
}

// pulseId null: all of them (their time is up).
function pulseClosed(pulseId) {
  const open = state.pulseOpen;
  if (!open) return;
  if (pulseId !== null) {
    if (!open.ids.has(pulseId)) return;
    open.ids.delete(pulseId);
    if (open.ids.size) return;
  }
  untrackPulses();
  const box = $("controls-status");
  if (!box.hidden && box.querySelector("p") && box.querySelector("p").textContent === PULSE_SENT) {
    setStatus(box, "ok", "The pulse is closed.", "", { ms: NOTICE_MS });
  }
}

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
wireConfirm("end-visit", "end-confirm", "end-yes", "end-no");
$("end-yes").addEventListener("click", async () => {
  $("end-yes").disabled = true;
  const r = await state.ac.request({ request: "end" })
    .catch((e) => ({ data: { alliance: "error", error: e.message, error_code: e.code } }));
  $("end-yes").disabled = false;
  if (r.data.alliance === "error") {
    $("end-confirm").hidden = true;
    setStatus("controls-status", "error", errorText(r.data), "", { ms: ACTION_MS });
    return;
  }
  onEnded();
});

function onEnded() {
  if (state.phase === "ended" || state.phase === "done") return;
  state.phase = "ended";
  if (state.keeper) state.keeper.expectMedia(false);
  untrackPulses();
  stopMedia();
  showScreen("s-mirror");
  if (state.visit) showHistory("s-mirror", state.visit.visit_id);
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
  if (state.keeper) state.keeper.stop();
  untrackPulses();
  stopMedia();
  showScreen("s-done");
  setStatus("done-status", "ok", text);
  if (state.visit) showHistory("s-done", state.visit.visit_id);   // with the end answers now stored
  state.visit = null;
  saveVisit();
  const ac = state.ac;
  state.ac = null;
  state.mirror = null;
  if (ac) {
    ac.mute();
    ac.request({ request: "leave" }).catch(() => {}).finally(() => {
      ac.hangup();
      ac.destroy();
    });
  }
}

$("new-visit").addEventListener("click", () => showCreate());

// Another tab or window signed in to this visit and took it: this one lets
// go and does not try to take it back by itself (two tabs would take it
// from each other for ever).
function onReplaced() {
  if (state.phase === "done" || state.phase === "replaced") return;
  state.phase = "replaced";
  if (state.keeper) state.keeper.stop();
  untrackPulses();
  stopMedia();
  if (state.ac) state.ac.retire();
  state.ac = null;
  state.mirror = null;
  clientHistory.close();                // its own session goes too; "Continue here" opens another
  showScreen("s-replaced");
}

$("continue-here").addEventListener("click", () => {
  if (state.visit) joinVisit(true);
  else showCreate();
});

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
      case "pulse_closed": pulseClosed(d.pulse_id); refreshHistory(); break;
      case "participant_left":
        if (d.role === "client") onClientPresence(false);
        break;
      case "participant_joined":
        if (d.role === "client") onClientPresence(true);
        break;
      case "observer_joined":
      case "observer_left":
        showObserved(d.observers, OBSERVED_NOTE);
        break;
      case "media_stopped":
      case "media_resumed":
        if (d.role === "client") remoteWatch().setServerStopped(d.alliance === "media_stopped");
        break;
      case "replaced": onReplaced(); break;
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
    else if (m.type === "pulse_closed") { pulseClosed(m.pulse_id); refreshHistory(); }
    else if ((m.type === "media_stopped" || m.type === "media_resumed") && m.role === "client") {
      remoteWatch().setServerStopped(m.type === "media_stopped");
    } else if (m.type === "pulse_expired" && state.mirror && state.mirror.pulse.pulse_id === m.pulse_id) state.mirror.close("expired");
  });
  ac.on("ice", () => renderRemote());
  ac.on("remotetrack", (stream) => {
    if (state.phase !== "live") return;
    playStream($("remote-video"), stream).then((ok) => { $("sound-btn").hidden = ok === true; });
  });
}

/* ---------------- start ---------------- */
async function main() {
  const cfg = await loadConfig();
  state.servers = serverList(cfg);
  useIce(iceConfig(cfg));      // a bad iceServers entry stops the page here, named
  const key = store.get(K.key);
  if (key) {
    showScreen("s-signin");
    if (await signIn(key)) afterSignIn();
    return;
  }
  showScreen("s-signin");
}

main().catch((e) => fatal(...startError(e)));

// for tests and debugging: the page's state, without secrets
window.alliancePage = exposeCallState({
  get qualityUpdates() { return state.qualityUpdates; },
  get visitId() { return state.visit ? state.visit.visit_id : null; },
  get historyVisit() { return state.historyVisit; },
}, state);
