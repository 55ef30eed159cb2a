// Alliance Pulse web client — staying in the call without asking anybody.
//
// CallKeeper watches the page's connection (an AllianceClient) and brings
// the visit back by itself:
//   * ICE `disconnected` for ICE_GRACE_MS, or `failed`, while the Janus
//     session is up: first an ICE restart — a new offer with new ICE
//     credentials through `configure` (docs/api.md: the relay link stays up
//     throughout). Chromium says `disconnected` some seconds (5-7 here)
//     after the last STUN answer, so the grace on top is short: a restart
//     costs one offer/answer, a frozen call costs the visit.
//   * the PeerConnection asks for a new offer (someone called
//     pc.restartIce()): renegotiate at once.
//   * an ICE restart (or a re-join's new call) not connected within
//     ICE_RESTART_WAIT_MS, a hangup from Janus, or the Janus session lost
//     (WebSocket closed and the claim refused): re-join from scratch — the
//     page's rejoin(): a new session and handle, `join` with the same
//     credentials (which takes the seat over at once, "Lifecycle" in
//     docs/api.md), media again — retried with backoff (BACKOFF_MS, with
//     jitter) until it works or the page calls stop().
// It tells the page its state: "reconnecting" while any of this is under
// way, "back" once the call is up again; the page shows that and lets
// "back" go after a few seconds.
//
// RemoteWatch decides whether the *other* participant's media has
// stopped, so a page can mark the frozen picture instead of leaving it
// silently on screen: they left (participant_left), the server says their
// media stopped (media_stopped), or no video frame was decoded for
// STALL_MS although frames came before. Cleared by media_resumed,
// participant_joined (then "back, video starting" until frames come) and
// new frames.

import { $, screensShown, unmuteStream } from "./ui.mjs";
import { startStatsReporter } from "./stats.mjs";

export const ICE_GRACE_MS = 1500;
export const ICE_RESTART_WAIT_MS = 8000;
export const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const RENEGOTIATE_MIN_GAP_MS = 2000;

// Thrown by a page's rejoin() when trying again cannot help (the server
// refused the credentials, the visit is closed): the keeper stops.
export class StopRetrying extends Error {}

const iceUp = (ac) => {
  const pc = ac && ac.pc;
  return !!pc && (pc.iceConnectionState === "connected" || pc.iceConnectionState === "completed");
};

export class CallKeeper {
  // rejoin(attempt): the page's fresh start (see above); it calls watch()
  // with the new connection itself. onState(state, reason).
  constructor({ rejoin, onState = () => {} }) {
    this.rejoinFn = rejoin;
    this.onState = onState;
    this.ac = null;
    this.media = false;
    this.state = "ok";
    this.stopped = false;
    this.rejoining = false;
    this.restarting = false;
    this.lastRenegotiation = 0;
    this.unsub = [];
    this.timers = { ice: null, expect: null, retry: null };
    this.attempts = 0;
    this.restarts = 0;           // ICE restarts and renegotiations done (for tests)
    this.rejoins = 0;            // successful re-joins
  }

  // Watch this connection; media: a call (ICE) is expected on it.
  watch(ac, { media = this.media } = {}) {
    for (const u of this.unsub) u();
    this.ac = ac;
    this.media = media;
    this.unsub = [
      ac.on("connection", ({ state }) => this.onConnection(state)),
      ac.on("ice", (s) => this.onIce(s)),
      ac.on("webrtc", (up) => { if (!up) this.onHangup(); }),
      ac.on("negotiationneeded", () => this.onNegotiationNeeded()),
    ];
  }

  // The page started (true) or ended (false) the call on this connection.
  expectMedia(on) {
    this.media = on;
    this.clear("ice");
    if (!on) {
      this.clear("expect");
      if (this.state === "reconnecting" && !this.rejoining) this.setState("back");
      return;
    }
    if (this.state === "reconnecting" && !this.rejoining) this.expectIce("new call");
  }

  // The visit is over here, or another window has it: no more retries.
  stop() {
    this.stopped = true;
    this.media = false;
    for (const k of Object.keys(this.timers)) this.clear(k);
    for (const u of this.unsub) u();
    this.unsub = [];
    if (this.state !== "ok") this.setState("ok");
  }

  // The page found the connection broken (a request failed for transport
  // reasons, say), or starts the visit again after a reload: re-join.
  // quiet: say "reconnecting" only if the first attempt fails.
  trouble(reason, { quiet = false } = {}) {
    this.stopped = false;
    this.rejoinLoop(reason, { quiet });
  }

  /* ---------- internals ---------- */
  setState(s, reason = "") {
    if (s === "back" && this.state === "ok") return;
    this.state = s === "back" ? "ok" : s;
    this.onState(s, reason);
  }

  clear(k) {
    clearTimeout(this.timers[k]);
    this.timers[k] = null;
  }

  onConnection(s) {
    if (this.stopped || this.rejoining) return;
    if (s === "lost") {
      this.setState("reconnecting", "session");
    } else if (s === "restored") {
      // the same session again; the call may need an ICE restart
      if (this.media && !iceUp(this.ac)) this.iceRestart("session restored");
      else this.setState("back");
    } else if (s === "gone") {
      this.rejoinLoop("session gone");
    }
  }

  onIce(s) {
    if (this.stopped || !this.media) return;
    if (s === "connected" || s === "completed") {
      this.clear("ice");
      this.clear("expect");
      if (this.state === "reconnecting" && !this.rejoining && !this.restarting) this.setState("back");
    } else if (s === "disconnected") {
      if (!this.timers.ice) {
        this.timers.ice = setTimeout(() => {
          this.timers.ice = null;
          if (!iceUp(this.ac)) this.iceRestart("ice disconnected");
        }, ICE_GRACE_MS);
      }
    } else if (s === "failed") {
      this.clear("ice");
      this.iceRestart("ice failed");
    }
  }

  onHangup() {
    if (this.stopped || !this.media || this.rejoining) return;
    this.rejoinLoop("hangup");
  }

  onNegotiationNeeded() {
    if (this.stopped || !this.media || this.rejoining || this.restarting) return;
    const now = Date.now();
    if (now - this.lastRenegotiation < RENEGOTIATE_MIN_GAP_MS) return;
    this.lastRenegotiation = now;
    this.renegotiate(false, "negotiation needed");
  }

  iceRestart(reason) {
    if (this.stopped || this.rejoining || this.restarting) return;
    if (!this.ac || !this.ac.sessionUp) return;    // the session handler acts
    this.renegotiate(true, reason);
  }

  async renegotiate(iceRestart, reason) {
    this.restarting = true;
    if (iceRestart) this.setState("reconnecting", reason);
    const ac = this.ac;
    try {
      await ac.renegotiate({ iceRestart });
      this.restarts++;
    } catch (e) {
      this.restarting = false;
      if (!this.stopped && this.ac === ac) this.rejoinLoop(`${reason}: ${e && e.message}`);
      return;
    }
    this.restarting = false;
    if (this.stopped || this.ac !== ac) return;
    if (iceUp(ac)) {
      if (this.state === "reconnecting") this.setState("back");
    } else {
      this.expectIce(reason);
    }
  }

  // ICE must be up within ICE_RESTART_WAIT_MS, else start from scratch.
  expectIce(reason) {
    this.clear("expect");
    this.timers.expect = setTimeout(() => {
      this.timers.expect = null;
      if (!this.stopped && this.media && !iceUp(this.ac)) this.rejoinLoop(`${reason}: no connection`);
    }, ICE_RESTART_WAIT_MS);
  }

  async rejoinLoop(reason, { quiet = false } = {}) {
    if (this.stopped || this.rejoining) return;
    this.rejoining = true;
    this.clear("ice");
    this.clear("expect");
    if (!quiet) this.setState("reconnecting", reason);
    for (let i = 0; !this.stopped; i++) {
      if (i > 0) {
        if (this.state !== "reconnecting") this.setState("reconnecting", reason);
        const base = BACKOFF_MS[Math.min(i - 1, BACKOFF_MS.length - 1)];
        await new Promise((r) => { this.timers.retry = setTimeout(r, base * (0.8 + Math.random() * 0.4)); });
        this.timers.retry = null;
        if (this.stopped) break;
      }
      this.attempts++;
      try {
        await this.rejoinFn(i);
      } catch (e) {
        if (e instanceof StopRetrying) {
          this.rejoining = false;
          this.stop();
          return;
        }
        continue;
      }
      this.rejoining = false;
      this.rejoins++;
      if (this.stopped) return;
      if (!this.media || iceUp(this.ac)) this.setState("back");
      else this.expectIce("re-join");
      return;
    }
    this.rejoining = false;
  }
}

// Is it this page's own connection that is in trouble (then a frozen
// picture is not the other person's doing, and the page says so)?
export function ownTrouble(state) {
  if (state.keeper && state.keeper.state === "reconnecting") return true;
  const pc = state.ac && state.ac.pc;
  return !!pc && (pc.iceConnectionState === "disconnected" || pc.iceConnectionState === "failed");
}

// A re-join's handover on a page whose state.ac is the old connection:
// the old one hears nothing any more (its `replaced` is ours), send(ac)
// joins on the new one, and only then the old one goes, so the seat is
// taken over rather than left. Resolves what send resolves; on failure the
// new connection is retired and the error thrown.
export async function handOver(state, ac, send) {
  const old = state.ac;
  if (old) old.mute();
  if (state.ac === old) state.ac = null;
  try {
    return await send(ac);
  } catch (e) {
    ac.retire();
    throw e;
  } finally {
    if (old) old.retire();
  }
}

/* ---------- the call's media on a page ---------- */
// Both call pages keep, in their state: ac (the connection), stream (the
// camera), stopStats, keeper, remote (a RemoteWatch), phase. These start
// and stop what a call needs on the current connection — again after a
// re-join — and resolve false when the page moved on meanwhile.
export async function startCallMedia(state, ac) {
  if (state.stopStats) state.stopStats();
  state.stopStats = null;
  await ac.startMedia({ stream: state.stream });
  if (ac !== state.ac || state.phase !== "live") return false;
  state.stopStats = startStatsReporter(ac);
  state.keeper.expectMedia(true);
  state.remote.start();
  return true;
}

export function stopCallMedia(state) {
  if (state.stopStats) state.stopStats();
  state.stopStats = null;
  if (state.remote) state.remote.stop();
  $("remote-video").srcObject = null;
  $("self-video").srcObject = null;
}

// "Start sound" (#sound-btn) over the other person's video.
export function wireSoundButton(state) {
  $("sound-btn").addEventListener("click", async () => {
    const ok = await unmuteStream($("remote-video"), state.ac.remoteStream);
    $("sound-btn").hidden = ok === true;
  });
}

/* ---------- for tests and debugging ---------- */
// The state a call page shows to tests (window.alliancePage), without
// secrets: `page` gets these getters besides its own. `state` is the
// page's state object (ac, keeper, remote, phase, joins).
export function exposeCallState(page, state) {
  const views = {
    phase: () => state.phase,
    dcOpen: () => !!(state.ac && state.ac.dc.open),
    joins: () => state.joins,
    reconnecting: () => !!(state.keeper && state.keeper.state === "reconnecting"),
    keeper: () => {
      const k = state.keeper;
      return k ? { state: k.state, stopped: k.stopped, restarts: k.restarts, rejoins: k.rejoins, attempts: k.attempts } : null;
    },
    sessionOpen: () => !!(state.ac && state.ac.janus),
    remoteMark: () => (state.remote ? { ...state.remote.view } : null),
    pc: () => (state.ac ? state.ac.pc : null),
    screens: () => [...screensShown],
  };
  for (const [k, get] of Object.entries(views)) Object.defineProperty(page, k, { get, enumerable: true });
  return page;
}

/* ---------- the other participant's media ---------- */
export const STALL_MS = 4000;
const POLL_MS = 1000;

async function framesDecoded(pc) {
  let n = 0;
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video" && typeof s.framesDecoded === "number") n += s.framesDecoded;
  });
  return n;
}

export class RemoteWatch {
  // getPc(): the current PeerConnection (or null); onChange(view) with view
  // {stopped, reason: "left" | "media" | "frames" | null, back}.
  constructor({ getPc, onChange, stallMs = STALL_MS }) {
    this.getPc = getPc;
    this.onChange = onChange;
    this.stallMs = stallMs;
    this.present = true;
    this.serverStopped = false;
    this.frames = "none";      // none (none yet on this call) | flowing | stalled
    this.back = false;         // came back (joined) after being away
    this.active = false;
    this.timer = null;
    this.pc = null;
    this.count = 0;
    this.lastFrameAt = 0;
    this.hadFrames = false;
    this.view = { stopped: false, reason: null, back: false };
  }

  start() {
    if (this.active) return;
    this.active = true;
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.update();
  }

  stop() {
    this.active = false;
    clearInterval(this.timer);
    this.timer = null;
    this.frames = "none";
    this.hadFrames = false;
    this.pc = null;
    this.update();
  }

  setPresent(present) {
    if (present && !this.present) {
      // back after being away: the picture on screen is still their old
      // one until a frame of the new call comes
      this.back = true;
      if (this.hadFrames) this.frames = "stalled";
    }
    this.present = present;
    if (present) this.serverStopped = false;
    this.update();
  }

  setServerStopped(stopped) {
    this.serverStopped = stopped;
    this.update();
  }

  async poll() {
    const pc = this.getPc();
    if (!this.active) return;
    if (!pc || pc.connectionState === "closed") {
      this.pc = null;
      this.checkStall();
      return;
    }
    let n;
    try {
      n = await framesDecoded(pc);
    } catch (_) {
      return;
    }
    if (pc !== this.pc) {
      // a new call of ours (a re-join): its counters start at 0
      this.pc = pc;
      this.count = n;
      if (n > 0) this.frameSeen();
      else this.checkStall();
      return;
    }
    if (n > this.count) {
      this.count = n;
      this.frameSeen();
    } else {
      this.count = n;
      this.checkStall();
    }
  }

  frameSeen() {
    this.lastFrameAt = Date.now();
    this.hadFrames = true;
    if (this.frames !== "flowing" || this.serverStopped || this.back) {
      this.frames = "flowing";
      // new pictures: the media is evidently back
      this.serverStopped = false;
      this.back = false;
      this.update();
    }
  }

  checkStall() {
    if (!this.hadFrames || this.frames === "stalled") return;
    if (Date.now() - this.lastFrameAt >= this.stallMs) {
      this.frames = "stalled";
      this.update();
    }
  }

  update() {
    const stopped = this.active && (!this.present || this.serverStopped || this.frames === "stalled");
    const reason = !stopped ? null : !this.present ? "left" : this.serverStopped ? "media" : "frames";
    if (!stopped) this.back = false;
    const view = { stopped, reason, back: stopped && this.present && this.back };
    if (view.stopped === this.view.stopped && view.reason === this.view.reason && view.back === this.view.back) return;
    this.view = view;
    this.onChange(view);
  }
}
