// Alliance Pulse — landing page (the starting point of the web client).
//
// Connects to Janus with the official janus.js (Debian's libjs-janus-gateway,
// loaded as a classic script before this module), WebSocket first and HTTP
// long-poll as the fallback, attaches to the Alliance Pulse plugin and says
// plainly whether that worked, and links to the therapist, client, kiosk and
// supervisor pages (js/*.mjs).

import { loadConfig, serverList, iceConfig } from "./js/config.mjs";

const PLUGIN = "janus.plugin.alliance";
const CONNECT_TIMEOUT_MS = 20000;

const $ = (id) => document.getElementById(id);

let janus = null;     // the current Janus session, if any
let attempt = 0;      // so late callbacks of an abandoned attempt are ignored

/* ---------- configuration ---------- */

// Where Janus is: js/config.mjs (config.json, ?janus= when allowed, defaults).
export { serverList };

// janus.js reads only adapter.browserDetails; if Debian's adapter.js was not
// served, give it a small stand-in rather than failing.
function webrtcAdapter() {
  if (window.adapter && window.adapter.browserDetails) return window.adapter;
  const ua = navigator.userAgent;
  let m;
  if ((m = ua.match(/Firefox\/(\d+)/))) return { browserDetails: { browser: "firefox", version: +m[1] } };
  if ((m = ua.match(/(?:Chrome|Chromium|CriOS)\/(\d+)/))) return { browserDetails: { browser: "chrome", version: +m[1] } };
  if ((m = ua.match(/Version\/(\d+).*Safari/))) return { browserDetails: { browser: "safari", version: 605 } };
  return { browserDetails: { browser: "Not a supported browser.", version: null } };
}

/* ---------- display ---------- */

function show(kind, headline, detail = "") {
  const box = $("status");
  box.className = `status status-${kind}`;
  // An error should interrupt a screen reader; progress and success should not.
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  box.replaceChildren();
  const p = document.createElement("p");
  p.textContent = headline;
  box.append(p);
  if (detail) {
    const d = document.createElement("p");
    d.textContent = detail;
    box.append(d);
  }
  $("retry").hidden = kind === "pending";
}

// The STUN/TURN servers the pages will use (URLs only, never credentials).
function iceText(ice) {
  const urls = ice.iceServers.flatMap((s) => s.urls);
  if (!urls.length) return "none (direct connections to Janus only)";
  return urls.join(", ") + (ice.iceTransportPolicy === "relay" ? " — relay only" : "");
}

function showDetails(server, info, ice) {
  $("d-transport").textContent = server.startsWith("ws") ? "WebSocket" : "HTTP long-poll (WebSocket did not answer)";
  $("d-server").textContent = server;
  $("d-janus").textContent = info?.version_string ? `${info.version_string} (${info.name || "Janus"})` : "unknown";
  const p = info?.plugins?.[PLUGIN];
  $("d-plugin").textContent = p ? `${p.name || PLUGIN} ${p.version_string || ""}`.trim() : PLUGIN;
  $("d-ice").textContent = iceText(ice);
  $("details").hidden = false;
}

function browserChecks() {
  const items = [
    [typeof RTCPeerConnection === "function", "WebRTC is available.", "WebRTC is not available in this browser."],
    [typeof WebSocket === "function", "WebSocket is available.", "WebSocket is not available (HTTP will be used)."],
    [window.isSecureContext && !!navigator.mediaDevices,
      "Camera and microphone can be requested on this page.",
      "Camera and microphone need a secure page (https:// or http://localhost). " +
      "This check still works, but video calls will not from this address."],
  ];
  const ul = $("browser");
  ul.replaceChildren();
  for (const [ok, yes, no] of items) {
    const li = document.createElement("li");
    li.className = ok ? "yes" : "no";
    li.textContent = ok ? yes : no;
    ul.append(li);
  }
}

/* ---------- Janus steps, as promises ---------- */

function initJanus() {
  return new Promise((resolve, reject) => {
    if (typeof window.Janus !== "function") {
      reject(new Error("janus.js did not load (expected at /janus.js, from Debian's libjs-janus-gateway)."));
      return;
    }
    window.Janus.init({
      debug: ["warn", "error"],
      dependencies: window.Janus.useDefaultDependencies({ adapter: webrtcAdapter() }),
      callback: resolve,
    });
  });
}

function withTimeout(promise, ms, message) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

function connect(servers, ice, myAttempt) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const session = new window.Janus({
      server: servers,
      iceServers: ice.iceServers,
      iceTransportPolicy: ice.iceTransportPolicy,
      success: () => { settled = true; resolve(session); },
      error: (msg) => {
        if (!settled) { settled = true; reject(new Error(String(msg))); return; }
        if (myAttempt === attempt) {
          show("error", `Lost the connection to Janus at ${session.getServer?.() || servers.join(", ")}.`,
            String(msg));
        }
      },
      destroyed: () => {},
    });
  });
}

function attach(session) {
  return new Promise((resolve, reject) => {
    session.attach({
      plugin: PLUGIN,
      opaqueId: `alliance-landing-${window.Janus.randomString(8)}`,
      success: resolve,
      error: (msg) => reject(new Error(String(msg))),
    });
  });
}

function getInfo(session) {
  return new Promise((resolve) => {
    session.getInfo({ success: resolve, error: () => resolve(null) });
  });
}

/* ---------- the check ---------- */

async function run() {
  const myAttempt = ++attempt;
  if (janus) {
    try { janus.destroy({ notifyDestroyed: false }); } catch (_) { /* already gone */ }
    janus = null;
  }
  $("details").hidden = true;

  const cfg = await loadConfig();
  const servers = serverList(cfg);
  $("servers").textContent = servers.join(", ");
  // the pages refuse a bad iceServers entry (config.mjs); say so here first
  let ice;
  try {
    ice = iceConfig(cfg);
  } catch (e) {
    show("error", "config.json is not valid: the visit pages will not start.", e.message);
    return;
  }
  show("pending", "Connecting to Janus…", `Trying ${servers.join(", then ")}.`);

  try {
    await initJanus();
  } catch (e) {
    show("error", "The Janus JavaScript library is missing.", e.message);
    return;
  }

  let session;
  try {
    session = await withTimeout(connect(servers, ice, myAttempt), CONNECT_TIMEOUT_MS,
      `no answer within ${CONNECT_TIMEOUT_MS / 1000} s`);
  } catch (e) {
    if (myAttempt !== attempt) return;
    if (/Unauthorized request|wrong or missing secret\/token/i.test(e.message)) {
      // Janus answered, and runs with token_auth: this page has no token
      show("warn", "Janus answers, and lets in only requests with a signed token (token_auth).",
        "The therapist and supervisor pages take the token in place of the key; a client's link carries one. This page cannot check the plugin without a token.");
      return;
    }
    show("error", `Janus unreachable at ${servers.join(" and ")}`,
      `Is the server running, and are these ports open from this device? (${e.message})`);
    return;
  }
  if (myAttempt !== attempt) { session.destroy({ notifyDestroyed: false }); return; }
  janus = session;

  const server = session.getServer();
  try {
    await withTimeout(attach(session), CONNECT_TIMEOUT_MS, "no answer to attach");
  } catch (e) {
    if (myAttempt !== attempt) return;
    show("error", `Connected to Janus at ${server}, but the Alliance Pulse plugin is not loaded there.`,
      `Janus said: ${e.message}. Check the Janus log for "${PLUGIN}".`);
    return;
  }
  const info = await getInfo(session);
  if (myAttempt !== attempt) return;
  show("ok", "Connected, plugin loaded.",
    "This browser can reach the Alliance Pulse server.");
  showDetails(server, info, ice);
}

browserChecks();
$("retry").addEventListener("click", () => { run(); });
run();
