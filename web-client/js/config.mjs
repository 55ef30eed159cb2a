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
