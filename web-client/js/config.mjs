// Alliance Pulse web client — where Janus is.
//
// The pages learn the Janus server addresses from, in this order:
//   1. the query parameter ?janus=URL[,URL...] (WebSocket and/or HTTP
//      addresses, tried in order) — honoured only when config.json says
//      "allow_janus_param": true, so a crafted link cannot point a client's
//      browser (and invite) at another server;
//   2. config.json next to the pages: {"servers": [...]} or the ports
//      {"ws_port", "http_port", "http_path"} on the page's own host
//      (conf/run-local.sh writes the ports; tests/e2e writes "servers");
//   3. Janus's default ports on the page's own host: ws(s)://host:8188 (8989
//      for wss) then http(s)://host:8088/janus (8089 for https).
// janus.js tries the list in order: WebSocket first, HTTP long-poll after.

export async function loadConfig(fetchImpl = window.fetch.bind(window)) {
  try {
    const r = await fetchImpl("config.json", { cache: "no-store" });
    if (r.ok) {
      const cfg = await r.json();
      if (cfg && typeof cfg === "object") return cfg;
    }
  } catch (_) { /* no config file: defaults */ }
  return {};
}

function validServer(u) {
  try {
    const url = new URL(u);
    return ["ws:", "wss:", "http:", "https:"].includes(url.protocol);
  } catch (_) {
    return false;
  }
}

// The server list for janus.js. `loc` is window.location (or a stand-in).
export function serverList(cfg = {}, loc = window.location) {
  if (cfg.allow_janus_param) {
    const q = new URLSearchParams(loc.search || "").getAll("janus")
      .flatMap((v) => v.split(","))
      .map((v) => v.trim())
      .filter(validServer);
    if (q.length) return q;
  }
  if (Array.isArray(cfg.servers) && cfg.servers.length) {
    const s = cfg.servers.filter((v) => typeof v === "string" && validServer(v));
    if (s.length) return s;
  }
  const secure = loc.protocol === "https:";
  const host = loc.hostname || "localhost";
  // a literal IPv6 address needs brackets in a URL
  const h = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  const wsPort = cfg.ws_port ?? (secure ? 8989 : 8188);
  const httpPort = cfg.http_port ?? (secure ? 8089 : 8088);
  const path = cfg.http_path ?? "/janus";
  // Behind a reverse proxy on the same origin (conf/nginx-alliance.conf.sample)
  // set {"same_origin": true}: wss://host/janus-ws and https://host/janus.
  if (cfg.same_origin) {
    return [
      `${secure ? "wss" : "ws"}://${loc.host}${cfg.ws_path ?? "/janus-ws"}`,
      `${loc.protocol}//${loc.host}${path}`,
    ];
  }
  return [
    `${secure ? "wss" : "ws"}://${h}:${wsPort}`,
    `${secure ? "https" : "http"}://${h}:${httpPort}${path}`,
  ];
}

// ---------------------------------------------------------------------------
// ICE servers (STUN/TURN) for every PeerConnection the pages make.
//
// config.json may carry, as in RTCConfiguration:
//   "iceServers": [{"urls": "turn:turn.example.org:3478?transport=udp",
//                   "username": "...", "credential": "..."}, ...]
//   "iceTransportPolicy": "all" (default) | "relay"
// Without them the pages use none (Janus's host address only, which is
// enough when the client can reach Janus's UDP ports; docs/turn.md).
//
// iceConfig() checks them before any PeerConnection exists, so that a bad
// entry stops the page with a message that names it, instead of a
// RTCPeerConnection that throws deep inside janus.js or, worse, a call
// whose ICE silently fails. It passes on only the fields it checked.

export class ConfigError extends Error {
  constructor(message) {
    super(message);
    this.name = "ConfigError";
  }
}

const ICE_SCHEMES = ["stun:", "stuns:", "turn:", "turns:"];
const MAX_ICE_SERVERS = 8;       // a handful is plenty; each one is gathered
const MAX_URLS = 8;
const MAX_FIELD = 512;           // URL, username and credential lengths

function iceUrlProblem(u) {
  if (typeof u !== "string" || !u || u.length > MAX_FIELD) return "is not a short non-empty string";
  const scheme = ICE_SCHEMES.find((s) => u.toLowerCase().startsWith(s));
  if (!scheme) return `does not start with ${ICE_SCHEMES.join(", ")}`;
  // RFC 7064/7065: scheme:host[:port][?transport=udp|tcp] (stun: has no transport)
  const m = /^([^?]+?)(?::(\d{1,5}))?(?:\?transport=(udp|tcp))?$/i.exec(u.slice(scheme.length));
  if (!m || !m[1] || /[/@\s?#]/.test(m[1])) return "is not scheme:host[:port][?transport=udp|tcp]";
  const host = m[1];
  if (host.startsWith("[") ? !/^\[[0-9a-f:.]+\]$/i.test(host) : host.includes(":")) {
    return "has a bad host (an IPv6 address needs [brackets])";
  }
  if (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535)) return "has a port outside 1..65535";
  if (m[3] && scheme.startsWith("stun")) return "has ?transport=, which only turn: and turns: URLs take";
  return null;
}

// {iceServers, iceTransportPolicy} for RTCPeerConnection / janus.js, from
// config.json's fields; throws ConfigError naming the bad field.
export function iceConfig(cfg = {}) {
  const list = cfg.iceServers ?? [];
  if (!Array.isArray(list)) throw new ConfigError("config.json: iceServers must be a list");
  if (list.length > MAX_ICE_SERVERS) throw new ConfigError(`config.json: iceServers has ${list.length} entries (at most ${MAX_ICE_SERVERS})`);
  let turns = 0;
  const iceServers = list.map((s, i) => {
    const where = `config.json: iceServers[${i}]`;
    if (!s || typeof s !== "object" || Array.isArray(s)) throw new ConfigError(`${where} must be an object with "urls"`);
    const urls = typeof s.urls === "string" ? [s.urls] : s.urls;
    if (!Array.isArray(urls) || !urls.length || urls.length > MAX_URLS) {
      throw new ConfigError(`${where}.urls must be a URL or a list of 1 to ${MAX_URLS} URLs`);
    }
    for (const u of urls) {
      const p = iceUrlProblem(u);
      if (p) throw new ConfigError(`${where}.urls: ${JSON.stringify(String(u).slice(0, 80))} ${p}`);
    }
    const out = { urls: urls.slice() };
    const isTurn = urls.some((u) => u.toLowerCase().startsWith("turn"));
    for (const f of ["username", "credential"]) {
      if (s[f] === undefined) {
        if (isTurn) throw new ConfigError(`${where}: a turn: URL needs "${f}"`);
        continue;
      }
      if (typeof s[f] !== "string" || !s[f] || s[f].length > MAX_FIELD) {
        throw new ConfigError(`${where}.${f} must be a non-empty string of at most ${MAX_FIELD} characters`);
      }
      out[f] = s[f];
    }
    if (isTurn) turns++;
    return out;
  });
  const iceTransportPolicy = cfg.iceTransportPolicy ?? "all";
  if (!["all", "relay"].includes(iceTransportPolicy)) {
    throw new ConfigError(`config.json: iceTransportPolicy must be "all" or "relay", not ${JSON.stringify(String(iceTransportPolicy).slice(0, 40))}`);
  }
  if (iceTransportPolicy === "relay" && !turns) {
    throw new ConfigError('config.json: iceTransportPolicy "relay" needs a turn: or turns: server in iceServers');
  }
  return { iceServers, iceTransportPolicy };
}
