// Alliance Pulse web client — one participant's connection to the
// janus.plugin.alliance plugin, built on Debian's janus.js (window.Janus).
//
//   useIce(iceConfig(cfg));            // once per page: STUN/TURN from config.json
//   useToken(token);                    // where Janus wants signed tokens (token_auth)
//   const ac = new AllianceClient({ servers, name: "client" });
//   await ac.connect();                 // WebSocket first, HTTP long-poll after
//   await ac.attach();
//   const r = await ac.join({ request: "join", ... });      // {data, jsep}
//   (ac.request(body) sends any other request the same way)
//   ac.on("event", (data, jsep) => ...);     // events nobody asked for
//   ac.on("dc", (msg) => ...);               // JSON messages on the `alliance` channel
//   await ac.startMedia({ stream });         // offer (A/V + data) -> configure -> answer
//   ac.sendDc({ type: "answer", ... });      // adds "v": 1
//
// Requests and their answers. The plugin answers create/status/answer
// synchronously; janus.js hands those to send()'s success callback.
// join/admit/configure/pulse/end/leave/report/forget/client_history are answered later by an
// event carrying the request's transaction — but janus.js does not pass an
// event's transaction on to the application. So this wrapper sends async
// requests one at a time per handle and takes, as the answer, the first
// event whose `alliance` is the answer that request has (joined, admitted,
// …) or `error`: each async request has its own answer kind, and the plugin
// sends `error` only as an answer, so nothing else can be mistaken for it.
//
// Connection loss: janus.js reports it through the session's error
// callback; the wrapper then tries session.reconnect() once (a `claim` of
// the same Janus session, which works when Janus kept it, e.g. over HTTP)
// and emits "connection" {state: "lost" | "restored" | "gone"}. After
// "gone" the page's CallKeeper (keeper.mjs) starts again with a fresh
// session and a re-join, which takes the seat over (docs/api.md,
// "Lifecycle"). retire() silences a client for good: once a page has
// replaced it (or it was replaced), none of its late events may act.

const PLUGIN = "janus.plugin.alliance";
export const DC_LABEL = "alliance";
const ASYNC_ANSWER = {
  join: "joined", admit: "admitted", configure: "configured",
  pulse: "pulse_sent", end: "ended", leave: "left", reinvite: "reinvited",
  // answered asynchronously since the analytics left the call path (v1.1
  // "Scale"); a server that answers them at once is handled too
  report: "report", forget: "forgotten", client_history: "client_history",
};
const CONNECT_TIMEOUT_MS = 15000;
const REQUEST_TIMEOUT_MS = 15000;
const RECLAIM_WAIT_MS = 3000;
const MAX_MOVES = 2;               // a join follows 498 other_instance at most this often
// an ICE restart's `configure` gets a short answer time: when it does not
// come, the signalling is down too and a fresh session is the way back
export const RENEGOTIATE_TIMEOUT_MS = 6000;

let janusReady = null;

// The page's ICE servers and policy (config.mjs iceConfig(), from
// config.json), for every PeerConnection janus.js makes for this page.
let pageIce = { iceServers: [], iceTransportPolicy: "all" };
export function useIce(ice) {
  pageIce = { iceServers: ice.iceServers.slice(), iceTransportPolicy: ice.iceTransportPolicy };
}

// The Janus API token every request of this page carries (janus.js's
// `token`), where Janus runs with token_auth: a therapist's or supervisor's
// signed token, or the client token of an invite link (docs/api.md,
// "Signed tokens"). null: none.
let pageToken = null;
export function useToken(token) {
  pageToken = token || null;
}

// janus.js reads adapter.browserDetails; Debian's adapter.js provides it. If
// /adapter.js was not served, give janus.js a small stand-in.
function webrtcAdapter() {
  if (window.adapter && window.adapter.browserDetails) return window.adapter;
  const ua = navigator.userAgent;
  let m;
  if ((m = ua.match(/Firefox\/(\d+)/))) return { browserDetails: { browser: "firefox", version: +m[1] } };
  if ((m = ua.match(/(?:Chrome|Chromium|CriOS)\/(\d+)/))) return { browserDetails: { browser: "chrome", version: +m[1] } };
  if ((m = ua.match(/Version\/(\d+).*Safari/))) return { browserDetails: { browser: "safari", version: 605 } };
  return { browserDetails: { browser: "unknown", version: null } };
}

export class AllianceError extends Error {
  // code: the plugin's error_code (470-499), or a string for other failures:
  // "unreachable", "token_required" (Janus wants a signed token this page
  // has not got, or refused the one it has), "timeout", "no_janus_js",
  // "janus" (a Janus core error)
  constructor(code, message, data = null) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

// A connected AllianceClient with the plugin attached (or an error).
export async function openClient(servers, name) {
  const ac = new AllianceClient({ servers, name });
  try {
    await ac.connect();
    await ac.attach();
  } catch (e) {
    ac.destroy();
    throw e;
  }
  return ac;
}

export function initJanus() {
  if (janusReady) return janusReady;
  janusReady = new Promise((resolve, reject) => {
    if (typeof window.Janus !== "function") {
      reject(new AllianceError("no_janus_js", "janus.js did not load (expected at /janus.js)"));
      return;
    }
    window.Janus.init({
      debug: ["warn", "error"],
      dependencies: window.Janus.useDefaultDependencies({ adapter: webrtcAdapter() }),
      callback: resolve,
    });
  });
  janusReady.catch(() => { janusReady = null; });
  return janusReady;
}

function withTimeout(promise, ms, onTimeout) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(onTimeout()), ms); }),
  ]).finally(() => clearTimeout(timer));
}

export class AllianceClient {
  constructor({ servers, name = "page" }) {
    this.servers = servers;
    this.name = name;
    this.janus = null;
    this.handle = null;
    this.server = null;          // the address that answered
    this.listeners = new Map();
    this.asyncChain = Promise.resolve();
    this.pending = null;         // {expect, resolve, reject}
    this.dc = { open: false, hello: null };
    this.localStream = null;
    this.remoteStream = new MediaStream();
    this.webrtcUp = false;
    this.closed = false;
    this.reconnecting = false;
    this.sending = { audio: false, video: false };
    this.negotiating = null;     // the offer/answer under way, if any
    this.watchedPc = null;
  }

  /* ---------- events ---------- */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type)?.delete(fn);
  }

  emit(type, ...args) {
    for (const fn of this.listeners.get(type) || []) {
      try {
        fn(...args);
      } catch (e) {
        // a page's handler failing must not break the connection; report it
        setTimeout(() => { throw e; });
      }
    }
  }

  /* ---------- session and handle ---------- */
  async connect() {
    await initJanus();
    const servers = this.servers;
    const session = await withTimeout(new Promise((resolve, reject) => {
      let settled = false;
      const s = new window.Janus({
        server: servers,
        iceServers: pageIce.iceServers,
        iceTransportPolicy: pageIce.iceTransportPolicy,
        ...(pageToken ? { token: pageToken } : {}),
        success: () => { settled = true; resolve(s); },
        error: (msg) => {
          if (!settled) {
            settled = true;
            // Janus with token_auth refuses a session without a (valid) token: 403
            const refused = /Unauthorized request|wrong or missing secret\/token/i.test(String(msg));
            reject(new AllianceError(refused ? "token_required" : "unreachable", String(msg)));
            return;
          }
          this.onConnectionLost(String(msg));
        },
        destroyed: () => {},
      });
    }), CONNECT_TIMEOUT_MS, () => new AllianceError("unreachable", `no answer within ${CONNECT_TIMEOUT_MS / 1000} s`));
    this.janus = session;
    this.server = session.getServer();
    return this.server;
  }

  get transport() {
    return this.server && this.server.startsWith("ws") ? "WebSocket" : "HTTP";
  }

  onConnectionLost(msg) {
    if (this.closed || this.reconnecting) return;
    this.reconnecting = true;
    this.emit("connection", { state: "lost", message: msg });
    let settled = false;
    const settle = (ok) => {
      if (settled || this.closed) return;
      settled = true;
      clearTimeout(timer);
      this.reconnecting = false;
      this.emit("connection", ok ? { state: "restored" } : { state: "gone", message: msg });
    };
    const timer = setTimeout(() => settle(false), RECLAIM_WAIT_MS);
    try {
      this.janus.reconnect({ success: () => settle(true), error: () => settle(false) });
    } catch (_) {
      settle(false);
    }
  }

  get sessionUp() {
    return !!(this.janus && this.janus.isConnected() && !this.reconnecting && !this.closed);
  }

  // Round trip of a Janus `info` request, in ms (median of n).
  async infoRtt(n = 3) {
    const times = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await withTimeout(new Promise((resolve, reject) => {
        this.janus.getInfo({ success: resolve, error: (e) => reject(new AllianceError("unreachable", String(e))) });
      }), 5000, () => new AllianceError("timeout", "no answer to info"));
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  }

  attach() {
    return withTimeout(new Promise((resolve, reject) => {
      this.janus.attach({
        plugin: PLUGIN,
        opaqueId: `alliance-${this.name}-${window.Janus.randomString(8)}`,
        success: (h) => { this.handle = h; resolve(h); },
        error: (msg) => reject(new AllianceError("janus", `the Alliance Pulse plugin is not available: ${msg}`)),
        onmessage: (data, jsep) => this.onMessage(data, jsep),
        ondataopen: (label) => {
          if (label === DC_LABEL) {
            this.dc.open = true;
            this.emit("dcopen");
          }
        },
        ondata: (text, label) => this.onData(text, label),
        onlocaltrack: () => {},
        onremotetrack: (track, mid, on) => this.onRemoteTrack(track, mid, on),
        webrtcState: (up, reason) => {
          this.webrtcUp = up;
          if (!up) this.dc.open = false;
          this.emit("webrtc", up, reason);
        },
        iceState: (state) => this.emit("ice", state),
        mediaState: (medium, receiving) => this.emit("media", medium, receiving),
        slowLink: (uplink, lost) => this.emit("slowlink", uplink, lost),
        oncleanup: () => {
          this.dc.open = false;
          this.dc.hello = null;
          this.remoteStream = new MediaStream();
          this.emit("cleanup");
        },
        ondetached: () => this.emit("detached"),
      });
    }), REQUEST_TIMEOUT_MS, () => new AllianceError("timeout", "no answer to attach"));
  }

  onMessage(data, jsep) {
    if (!data || typeof data !== "object") return;
    const p = this.pending;
    if (p && (data.alliance === p.expect || data.alliance === "error")) {
      this.pending = null;
      p.resolve({ data, jsep: jsep || null });
      return;
    }
    this.emit("event", data, jsep || null);
  }

  onData(text, label) {
    if (label && label !== DC_LABEL) return;
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (_) {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "hello") {
      this.dc.hello = msg;
      this.dc.open = true;
    }
    this.emit("dc", msg);
  }

  onRemoteTrack(track, mid, on) {
    if (on) {
      for (const t of this.remoteStream.getTracks()) {
        if (t.kind === track.kind && t.id !== track.id) this.remoteStream.removeTrack(t);
      }
      if (!this.remoteStream.getTrackById(track.id)) this.remoteStream.addTrack(track);
    } else {
      const t = this.remoteStream.getTrackById(track.id);
      if (t) this.remoteStream.removeTrack(t);
    }
    this.emit("remotetrack", this.remoteStream, track, on);
    if (this.observing) this.emit("observed", this.seatOfMid(mid, track.kind), track, on);
  }

  // One plugin request. Resolves {data, jsep}; `data.alliance === "error"`
  // is a normal answer (see error_code). Rejects on transport failures.
  request(body, { jsep = null, timeout = REQUEST_TIMEOUT_MS } = {}) {
    const expect = ASYNC_ANSWER[body.request];
    if (!expect) return this.sendRaw(body, jsep, null, timeout);
    const run = () => this.sendRaw(body, jsep, expect, timeout);
    const p = this.asyncChain.then(run, run);
    this.asyncChain = p.catch(() => {});
    return p;
  }

  sendRaw(body, jsep, expect, timeout) {
    if (!this.handle) return Promise.reject(new AllianceError("janus", "not attached"));
    return withTimeout(new Promise((resolve, reject) => {
      if (expect) this.pending = { expect, resolve, reject };
      const msg = { message: body };
      if (jsep) msg.jsep = jsep;
      msg.success = (data) => {
        if (data !== undefined && data !== null) {
          // answered at once (a sync request, or a refusal before queueing)
          if (expect && this.pending && this.pending.resolve === resolve) this.pending = null;
          resolve({ data, jsep: null });
        } else if (!expect) {
          // a request we thought sync was acked: wait for its event
          this.pending = { expect: body.request, resolve, reject };
        }
      };
      msg.error = (err) => {
        if (this.pending && this.pending.resolve === resolve) this.pending = null;
        reject(new AllianceError("janus", String(err)));
      };
      this.handle.send(msg);
    }), timeout, () => {
      if (this.pending && this.pending.expect === (expect || body.request)) this.pending = null;
      return new AllianceError("timeout", `no answer to ${body.request} within ${timeout / 1000} s`);
    });
  }

  // `join`, following the visit to the Janus instance that holds it: behind
  // a load balancer the page may reach another instance sharing the
  // database, which answers 498 other_instance with the servers to use
  // (PROTOCOL.md v1.1 "Scale"). The session moves there and the join is
  // sent again, without asking the person anything; "moved" tells the page
  // (its later reconnections go there too). At most MAX_MOVES hops: then
  // the 498 is the answer.
  async join(body, opts = {}) {
    for (let hop = 0; ; hop++) {
      const r = await this.request(body, opts);
      const d = r.data;
      const servers = d && d.alliance === "error" && d.error_code === 498 && Array.isArray(d.servers)
        ? d.servers.filter((s) => typeof s === "string" && /^(wss?|https?):\/\//.test(s)) : [];
      if (!servers.length || hop >= MAX_MOVES) return r;
      await this.moveTo(servers);
      this.emit("moved", servers, d.instance_id || null);
    }
  }

  // A new Janus session and handle on other servers, for this same client
  // (its listeners stay).
  async moveTo(servers) {
    if (this.janus) {
      try { this.janus.destroy({ notifyDestroyed: false }); } catch (_) { /* gone already */ }
    }
    this.janus = null;
    this.handle = null;
    this.servers = servers;
    await this.connect();
    await this.attach();
  }

  /* ---------- media ---------- */
  // Offer with the given stream's tracks (or receive-only audio/video when
  // there is none) plus the `alliance` data channel, send it with
  // `configure`, apply the answer. Resolves the `configured` data.
  // janus.js stops the tracks it was given when the PeerConnection is hung
  // up; it gets clones, so the page's own camera stream (its self view, the
  // next offer after a reconnection) lives on.
  startMedia({ stream = null, audio = true, video = true, data = true } = {}) {
    return this.negotiate(async () => {
      this.localStream = stream;
      window.Janus.dataChanDefaultLabel = DC_LABEL;
      const tracks = [];
      const live = (tr) => (tr && tr.readyState === "live" ? tr.clone() : null);
      const at = stream ? live(stream.getAudioTracks()[0]) : null;
      const vt = stream ? live(stream.getVideoTracks()[0]) : null;
      this.clones = [at, vt].filter(Boolean);
      if (audio) tracks.push(at ? { type: "audio", capture: at, recv: true } : { type: "audio", capture: false, recv: true });
      if (video) tracks.push(vt ? { type: "video", capture: vt, recv: true } : { type: "video", capture: false, recv: true });
      if (data) tracks.push({ type: "data" });
      const offer = await new Promise((resolve, reject) => {
        this.handle.createOffer({
          tracks,
          success: resolve,
          error: (e) => reject(new AllianceError("webrtc", `could not prepare the call: ${e && e.message ? e.message : e}`)),
        });
      });
      this.sending = { audio: !!at, video: !!vt };
      const r = await this.configureWith(offer, REQUEST_TIMEOUT_MS);
      this.watchPc();
      return r;
    });
  }

  // An observer's receive-only offer (docs/api.md "Observers"): audio,
  // video, audio, video — the first pair carries the therapist, the second
  // the client. janus.js looks a track up by kind (so a second audio
  // would reuse the first transceiver) unless it names a mid no
  // transceiver has yet: the placeholder mids make it add four. Resolves
  // the `configured` data; "observed" (seat, track, on) reports each
  // remote track with the seat its m-line carries.
  startObserving() {
    return this.negotiate(async () => {
      this.localStream = null;
      this.clones = [];
      this.sending = { audio: false, video: false };
      this.observing = true;
      window.Janus.dataChanDefaultLabel = DC_LABEL;
      const tracks = ["audio", "video", "audio", "video"].map((type, i) =>
        ({ type, capture: false, recv: true, mid: `observe-${i}` }));
      tracks.push({ type: "data" });
      const offer = await new Promise((resolve, reject) => {
        this.handle.createOffer({
          tracks,
          success: resolve,
          error: (e) => reject(new AllianceError("webrtc", `could not prepare watching: ${e && e.message ? e.message : e}`)),
        });
      });
      return this.configureWith(offer, REQUEST_TIMEOUT_MS);
    });
  }

  // Which seat an observer's m-line carries: its place among the
  // PeerConnection's audio (or video) transceivers.
  seatOfMid(mid, kind) {
    const pc = this.pc;
    if (!pc) return null;
    const same = pc.getTransceivers().filter((t) => t.receiver && t.receiver.track && t.receiver.track.kind === kind);
    const i = same.findIndex((t) => t.mid === mid);
    return i === 0 ? "therapist" : i === 1 ? "client" : null;
  }

  // A new offer on the PeerConnection we have: an ICE restart (new ICE
  // credentials, same tracks and data channel), or an ordinary
  // renegotiation (which also carries a restart a pc.restartIce() asked for).
  renegotiate({ iceRestart = true } = {}) {
    return this.negotiate(async () => {
      if (!this.handle || !this.pc) throw new AllianceError("webrtc", "no call to renegotiate");
      const offer = await new Promise((resolve, reject) => {
        this.handle.createOffer({
          iceRestart,
          success: resolve,
          error: (e) => reject(new AllianceError("webrtc", `could not renegotiate: ${e && e.message ? e.message : e}`)),
        });
      });
      return this.configureWith(offer, RENEGOTIATE_TIMEOUT_MS);
    });
  }

  // One negotiation at a time (janus.js keeps one offer state per handle).
  negotiate(fn) {
    const run = async () => {
      try {
        return await fn();
      } finally {
        if (this.negotiating === p) this.negotiating = null;
      }
    };
    const p = (this.negotiating || Promise.resolve()).catch(() => {}).then(run);
    this.negotiating = p;
    return p;
  }

  async configureWith(offer, timeout) {
    const r = await this.request({ request: "configure", audio: this.sending.audio, video: this.sending.video },
      { jsep: offer, timeout });
    if (r.data.alliance === "error") {
      throw new AllianceError(r.data.error_code, r.data.error, r.data);
    }
    if (r.jsep) {
      await new Promise((resolve, reject) => {
        this.handle.handleRemoteJsep({
          jsep: r.jsep,
          success: resolve,
          error: (e) => reject(new AllianceError("webrtc", `could not start the call: ${e}`)),
        });
      });
    }
    return r.data;
  }

  // Tell the page when the PeerConnection wants a new offer (someone called
  // pc.restartIce(), say) and none is under way.
  watchPc() {
    const pc = this.pc;
    if (!pc || this.watchedPc === pc) return;
    this.watchedPc = pc;
    pc.addEventListener("negotiationneeded", () => {
      if (this.closed || this.pc !== pc) return;
      // janus.js's own offers fire this too, before they finish: wait
      queueMicrotask(() => {
        if (this.negotiating || pc.signalingState !== "stable") return;
        this.emit("negotiationneeded");
      });
    });
  }

  get pc() {
    return this.handle && this.handle.webrtcStuff ? this.handle.webrtcStuff.pc : null;
  }

  // Send one JSON message on the `alliance` channel; false if it is not open.
  sendDc(obj) {
    if (!this.handle || !this.dc.open) return false;
    const dc = this.handle.webrtcStuff && this.handle.webrtcStuff.dataChannel
      ? this.handle.webrtcStuff.dataChannel[DC_LABEL] : null;
    if (!dc || dc.readyState !== "open") return false;
    try {
      dc.send(JSON.stringify({ v: 1, ...obj }));
      return true;
    } catch (_) {
      return false;
    }
  }

  stopLocalMedia() {
    if (this.localStream) {
      for (const t of this.localStream.getTracks()) t.stop();
    }
    for (const t of this.clones || []) t.stop();
  }

  hangup() {
    if (this.handle) {
      try { this.handle.hangup(); } catch (_) { /* gone already */ }
    }
  }

  destroy() {
    this.closed = true;
    for (const t of this.clones || []) t.stop();
    if (this.janus) {
      try { this.janus.destroy({ notifyDestroyed: false }); } catch (_) { /* gone already */ }
    }
    this.janus = null;
    this.handle = null;
  }

  // This connection is done with (a newer one took its place, or another
  // window took the seat): nothing it hears any more reaches the page, and
  // its Janus session goes.
  retire() {
    this.mute();
    this.destroy();
  }

  // Nothing this connection hears reaches the page any more (it is kept a
  // moment longer, so its seat is taken over rather than left).
  mute() {
    this.listeners.clear();
    if (this.pending) {
      this.pending.reject(new AllianceError("retired", "connection replaced"));
      this.pending = null;
    }
  }
}
