// End-to-end tests of the Alliance Pulse web client in Debian's Chromium,
// driven by playwright-core (never `npx playwright install`: the browser is
// /usr/bin/chromium). Started by launcher.py inside the client network
// namespace, with Janus + the plugin in the server namespace and the pages
// served on 127.0.0.1 (see launcher.py for the environment it passes).
//
// Every test fails on a browser console error or page error that it does
// not expect by name (only the "Janus unreachable" tests expect the
// browser's own connection-refused messages). Screenshots of every page at
// 1280 and 360 px go to tests/artifacts/e2e/. Results go to $E2E_RESULTS
// for the launcher, which prints the closing "N passed, N failed".

import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const env = process.env;
const BASE = env.E2E_BASE;
const SERVER_IP = env.E2E_SERVER_IP;
const TKEY = env.E2E_THERAPIST_KEY;
const SKEY = env.E2E_SUPERVISOR_KEY;
const DB = env.E2E_DB;
const ART = env.E2E_ARTIFACTS;
const ONLY = env.E2E_ONLY ? new RegExp(env.E2E_ONLY) : null;
const UNREACHABLE = `ws://${SERVER_IP}:9,http://${SERVER_IP}:9/janus`;
// what the browser and janus.js print when nothing listens on the port
const NETWORK_ERRORS = /WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|Error connecting to the Janus|Is the server down|Failed to load resource|Probably a network error/;

const results = { tests: [], secrets: [] };
const consoleErrors = [];      // {page, text}
const T0 = Date.now();

/* ---------------- tiny runner ---------------- */
const failedNames = new Set();
async function test(name, fn, { needs = [], allow = null } = {}) {
  if (ONLY && !ONLY.test(name)) return;
  const t0 = Date.now();
  const missing = needs.filter((n) => failedNames.has(n) || !results.tests.some((t) => t.name === n));
  let error = null;
  if (missing.length) {
    error = `not run: needs "${missing.join('", "')}"`;
  } else {
    const mark = consoleErrors.length;
    try {
      await fn();
    } catch (e) {
      error = (e && e.stack ? e.stack.split("\n").slice(0, 4).join("\n      ") : String(e));
    }
    await sleep(150);   // let late errors of this step arrive
    const bad = consoleErrors.slice(mark).filter((c) => !(allow && allow.test(c.text)));
    if (!error && bad.length) {
      error = `browser console/page errors:\n      ${bad.map((c) => `[${c.page}] ${c.text}`).join("\n      ")}`;
    }
  }
  const ok = !error;
  if (!ok) failedNames.add(name);
  results.tests.push({ name, ok, error, ms: Date.now() - t0 });
  const dt = ((Date.now() - t0) / 1000).toFixed(1);
  console.log(`${ok ? "ok  " : "FAIL"}  ${name} (${dt}s)${ok ? "" : `\n      ${error}`}`);
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function waitFor(fn, what, timeout = 10000, every = 100) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out (${timeout} ms) waiting for ${what}; last: ${last}`);
    await sleep(every);
  }
}

function sql(query, db = DB) {
  const out = execFileSync("sqlite3", ["-readonly", "-json", db, query], { encoding: "utf8" });
  return out.trim() ? JSON.parse(out) : [];
}

const q = (s) => `'${String(s).replace(/'/g, "''")}'`;

/* ---------------- browser ---------------- */
const CHROMIUM_ARGS = [
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
// (playwright-core gives every launch a fresh --user-data-dir of its own)

async function newContext(opts = {}) {
  return browser.newContext({ viewport: { width: 1280, height: 800 }, ...opts });
}

async function newPage(ctx, label) {
  return watchPage(await ctx.newPage(), label);
}

// A page's console errors and page errors are recorded (they fail a test).
function watchPage(page, label) {
  page.setDefaultTimeout(10000);
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push({ page: label, text: m.text() });
  });
  page.on("pageerror", (e) => consoleErrors.push({ page: label, text: `page error: ${e.message}` }));
  return page;
}

async function shot(page, name) {
  const vp = page.viewportSize();
  await page.screenshot({ path: path.join(ART, `${name}-1280.png`), fullPage: true });
  await page.setViewportSize({ width: 360, height: 740 });
  await sleep(150);
  await page.screenshot({ path: path.join(ART, `${name}-360.png`), fullPage: true });
  await page.setViewportSize(vp);
  await sleep(100);
}

async function visible(page, sel, timeout = 10000) {
  await page.locator(sel).first().waitFor({ state: "visible", timeout });
}

async function text(page, sel) {
  return (await page.locator(sel).first().textContent()) || "";
}

// The <video> shows moving pictures: a size, and time that advances.
async function videoPlays(page, sel) {
  await waitFor(() => page.$eval(sel, (v) => v.videoWidth > 0 && v.readyState >= 2), `${sel} to have a picture`, 10000);
  const t1 = await page.$eval(sel, (v) => v.currentTime);
  await sleep(700);
  const t2 = await page.$eval(sel, (v) => v.currentTime);
  assert(t2 > t1, `${sel}: currentTime did not advance (${t1} -> ${t2})`);
  return page.$eval(sel, (v) => ({ w: v.videoWidth, h: v.videoHeight, t: v.currentTime }));
}

// Video frames of the page's current PeerConnection: decoded (inbound) and
// sent (outbound), summed over its video streams; null while the page is
// loading (a reload) or has no call.
async function frames(page) {
  try {
    return await page.evaluate(async () => {
      const pc = window.alliancePage && window.alliancePage.pc;
      if (!pc) return null;
      let dec = 0, sent = 0;
      (await pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video") dec += s.framesDecoded || 0;
        if (s.type === "outbound-rtp" && s.kind === "video") sent += s.framesSent || 0;
      });
      return { dec, sent, phase: window.alliancePage.phase };
    });
  } catch (_) {
    return null;    // navigating
  }
}

// Frames keep coming on `page` (decoded count grows over 500 ms).
async function videoFlows(page) {
  const a = await frames(page);
  await sleep(500);
  const b = await frames(page);
  return !!(a && b && b.dec > a.dec);
}

async function bothWays(a, b, what, timeout = 10000) {
  await waitFor(async () => (await videoFlows(a)) && (await videoFlows(b)), `video both ways ${what}`, timeout, 50);
}

// Reload (or open) `moved` and time until video flows both ways again:
// `moved`'s new call decodes and sends frames, and `other` decodes at least
// 15 frames more than before (frames still in flight when the old page went
// are fewer than that).
async function timeBackInCall(moved, other, act, what) {
  const base = (await frames(other)).dec;
  const t0 = Date.now();
  await act();
  await waitFor(async () => {
    const m = await frames(moved);
    const o = await frames(other);
    return m && m.phase === "live" && m.dec > 0 && m.sent > 0 && o && o.dec >= base + 15;
  }, `${what}: video both ways again`, 10000, 50);
  const ms = Date.now() - t0;
  results.timings = results.timings || {};
  results.timings[what] = ms;
  console.log(`      ${what}: video both ways again after ${ms} ms`);
  return ms;
}

// What a page's status box says (empty when hidden).
async function statusText(page, sel) {
  return page.$eval(sel, (e) => (e.hidden ? "" : e.textContent));
}

// Remember every text a status element showed from now on.
async function recordTexts(page, sel) {
  await page.evaluate((sel) => {
    const e = document.querySelector(sel);
    window.__texts = window.__texts || {};
    const seen = (window.__texts[sel] = []);
    new MutationObserver(() => { if (!e.hidden && e.textContent) seen.push(e.textContent); })
      .observe(e, { childList: true, subtree: true, characterData: true, attributes: true });
  }, sel);
}

async function textsSeen(page, sel) {
  return page.evaluate((sel) => (window.__texts && window.__texts[sel]) || [], sel);
}

// Click (or tap) a VAS slider at a fraction of its line.
async function pointVas(page, slider, frac, { tap = false } = {}) {
  const line = slider.locator(".vas-line");
  const box = await line.boundingBox();
  const sbox = await slider.boundingBox();
  const pos = { x: box.x - sbox.x + box.width * frac, y: sbox.height / 2 };
  if (tap) await slider.tap({ position: pos });
  else await slider.click({ position: pos });
}

const ctx = {};   // what the steps share

/* ================= 1. a video visit ================= */
const tctx = await newContext({ permissions: ["clipboard-read", "clipboard-write"] });
let T = await newPage(tctx, "therapist");
const cctx = await newContext();
let C = await newPage(cctx, "client");
// every WebSocket a page of this context opens, so a test can drop the connection
async function trackSockets(x) {
  await x.addInitScript(() => {
    const WS = window.WebSocket;
    window.__sockets = [];
    window.WebSocket = class extends WS {
      constructor(...a) {
        super(...a);
        window.__sockets.push(this);
      }
    };
  });
}
await trackSockets(cctx);

await test("landing page: server check passes, links to the four pages", async () => {
  const p = await newPage(cctx, "landing");
  await p.goto(BASE);
  await waitFor(async () => (await text(p, "#status")).includes("Connected, plugin loaded"), "the server check");
  assert(await p.locator(".page-links a").count() === 4, "four page links");
  assert((await text(p, "#d-ice")).startsWith("none"), "no STUN/TURN servers in this config.json");
  await shot(p, "index");
  await p.close();
});

await test("therapist: sign in with the key, create a video visit, copy the client link", async () => {
  await T.goto(BASE + "therapist.html");
  await visible(T, "#s-signin");
  await shot(T, "therapist-signin");
  await T.fill("#key", TKEY);
  await T.click("#signin-form button[type=submit]");
  await visible(T, "#s-create");
  const stored = await T.evaluate(() => ({ s: sessionStorage.getItem("ap.therapist.key") !== null, l: localStorage.length }));
  assert(stored.s && stored.l === 0, "key kept in sessionStorage only");
  await T.fill("#client-code", "C-E2E-01");
  await T.click("#create-form button[type=submit]");
  await visible(T, "#s-visit");
  const link = await T.inputValue("#invite-link");
  assert(/\/client\.html#invite=[A-Za-z0-9_-]{22,}$/.test(link), `client link shape: ${link.replace(/invite=.*/, "invite=…")}`);
  ctx.link = link;
  ctx.invite = link.split("#invite=")[1];
  results.secrets.push(ctx.invite);
  await T.click("#copy-link");
  await waitFor(async () => (await text(T, "#toast")).includes("Link copied"), "the copy confirmation");
  const clip = await T.evaluate(() => navigator.clipboard.readText());
  assert(clip === link, "the clipboard holds the link");
  ctx.visitId = await T.evaluate(() => window.alliancePage.visitId);
});

await test("client: consent screen, device and connection check, waiting room", async () => {
  await C.goto(ctx.link);
  await visible(C, "#s-consent");
  assert(!C.url().includes("invite="), "the invite is removed from the address bar");
  await shot(C, "client-consent");
  // Continue without a choice is refused with a message
  await C.click("#consent-form button[type=submit]");
  await visible(C, "#consent-error");
  await C.check("input[name=research][value=yes]");
  await C.click("#consent-form button[type=submit]");
  await visible(C, "#s-check");
  await waitFor(() => C.$eval("#join-btn", (b) => !b.disabled), "camera and connection checks", 15000);
  const net = await text(C, "#net-status");
  assert(/Connection: (good|usable|slow) \(\d+ ms, (WebSocket|HTTP)\)/.test(net), `connection check text: ${net}`);
  assert((await text(C, "#cam-status")).includes("working"), "camera check ok");
  await videoPlays(C, "#preview");
  await C.click("#play-tone");
  await C.check("input[name=private][value=no]");
  await visible(C, "#privacy-tip");
  await C.check("input[name=private][value=yes]");
  await C.check("input[name=headphones][value=yes]");
  await waitFor(() => C.$eval("#mic-meter", (m) => m.value > 0), "the microphone level meter to move", 5000);
  await shot(C, "client-check");
  await C.click("#join-btn");
  await visible(C, "#s-wait");
  await waitFor(async () => (await text(C, "#wait-status")).includes("You are in the waiting room"), "the waiting room");
  // the rejoin record: in localStorage under a name that does not give the
  // invite away, holding no invite (a reload or the same link in a new tab
  // of this browser gets back in with it)
  const rec = await waitFor(() => C.evaluate(() => {
    const k = Object.keys(localStorage).find((x) => x.startsWith("ap.client.visit."));
    return k ? { k, v: localStorage.getItem(k) } : null;
  }), "the rejoin record");
  const r = JSON.parse(rec.v);
  assert(r.rejoin_key && r.checked === true && r.research === true && !("invite" in r), `rejoin record fields: ${Object.keys(r)}`);
  assert(!rec.k.includes(ctx.invite) && !rec.v.includes(ctx.invite), "the record does not contain the invite");
  results.secrets.push(r.rejoin_key);
  await shot(C, "client-waiting");
}, { needs: ["therapist: sign in with the key, create a video visit, copy the client link"] });

await test("failure path: the same link opened a second time says it was already used (478)", async () => {
  const x = await newContext();
  const p = await newPage(x, "client-2");
  await p.goto(ctx.link);
  await p.check("input[name=research][value=no]");
  await p.click("#consent-form button[type=submit]");
  await waitFor(() => p.$eval("#join-btn", (b) => !b.disabled), "the checks", 15000);
  await p.click("#join-btn");
  await visible(p, "#s-error");
  const msg = await text(p, "#error-status");
  assert(msg.includes("already been used"), `message: ${msg}`);
  await shot(p, "client-invite-used");
  await x.close();
}, { needs: ["client: consent screen, device and connection check, waiting room"] });

await test("client: a reload in the waiting room goes straight back to the waiting room, no click; the therapist still sees the client waiting", async () => {
  await recordTexts(T, "#waiting-status");
  await C.reload();
  await waitFor(async () => (await statusText(C, "#wait-status")).includes("You are in the waiting room"), "the waiting room after the reload");
  const screens = await C.evaluate(() => window.alliancePage.screens);
  assert(!screens.some((x) => ["s-consent", "s-check", "s-error"].includes(x)), `screens after the reload: ${screens}`);
  assert(await C.evaluate(() => window.alliancePage.joins) === 1, "one join, with the rejoin key");
  // the therapist's page saw the client go and come back
  await waitFor(async () => {
    const seen = await textsSeen(T, "#waiting-status");
    const i = seen.findIndex((x) => x.includes("left the waiting room"));
    return i >= 0 && seen.slice(i + 1).some((x) => x.includes("C-E2E-01 is in the waiting room"));
  }, "the therapist's page: left, then in the waiting room again");
  assert((await statusText(T, "#waiting-status")).includes("C-E2E-01 is in the waiting room"), "the therapist sees the client waiting");
  await visible(T, "#admit");
}, { needs: ["client: consent screen, device and connection check, waiting room"] });

await test("therapist admits the client from the waiting room; both see each other's video", async () => {
  await visible(T, "#admit");
  assert((await text(T, "#waiting-status")).includes("C-E2E-01 is in the waiting room"), "waiting-room text");
  await shot(T, "therapist-waiting");
  await T.click("#admit");
  await visible(C, "#s-call");
  await visible(T, "#call-panel");
  const cv = await videoPlays(C, "#remote-video");
  const tv = await videoPlays(T, "#remote-video");
  ctx.video = { client: cv, therapist: tv };
  await waitFor(() => C.evaluate(() => window.alliancePage.dcOpen), "the client's data channel");
  await waitFor(() => T.evaluate(() => window.alliancePage.dcOpen), "the therapist's data channel");
}, { needs: ["client: consent screen, device and connection check, waiting room"] });

await test("therapist: live quality badges per direction update from `quality` messages", async () => {
  const read = () => T.evaluate(() => [...document.querySelectorAll(".quality .badge")].map((b) => ({
    path: b.dataset.path, badge: b.dataset.badge, updates: Number(b.dataset.updates), title: b.title,
    cls: b.className, sr: b.querySelector(".badge-detail").textContent,
  })));
  const first = await waitFor(async () => {
    const b = await read();
    return b.every((x) => x.updates >= 1 && ["good", "fair", "poor"].includes(x.badge)) ? b : null;
  }, "both badges to show good/fair/poor", 15000);
  const later = await waitFor(async () => {
    const b = await read();
    return b.every((x, i) => x.updates > first[i].updates) ? b : null;
  }, "a further quality update", 8000);
  for (const b of later) {
    assert(/loss [\d.]+ %/.test(b.title) && /round trip \d+ ms/.test(b.title) && /freeze/.test(b.title), `badge title: ${b.title}`);
    assert(b.sr === b.title, "screen-reader text matches the tooltip");
    assert(b.cls.includes(`badge-${b.badge}`), "badge style follows the badge");
  }
  ctx.badges = later.map((b) => `${b.path}=${b.badge}`);
  await shot(T, "therapist-call");
}, { needs: ["therapist admits the client from the waiting room; both see each other's video"] });

await test("pulse: therapist sends one; the client answers in the overlay with the keyboard only; stored", async () => {
  await T.click("#send-pulse");
  await waitFor(async () => (await text(T, "#controls-status")).includes("Pulse sent"), "the pulse_sent answer");
  await visible(C, "#overlay-slot .pulse");
  const pid = await C.getAttribute("#overlay-slot .pulse", "data-pulse-id");
  ctx.pulse1 = pid;
  // focus moved into the overlay, onto the first slider, which has no value
  const f = await C.evaluate(() => ({
    inside: !!document.activeElement.closest(".pulse"),
    role: document.activeElement.getAttribute("role"),
    now: document.activeElement.getAttribute("aria-valuenow"),
    label: document.activeElement.getAttribute("aria-labelledby"),
    thumbs: [...document.querySelectorAll(".pulse .vas-thumb")].filter((t) => !t.hidden).length,
  }));
  assert(f.inside && f.role === "slider", `focus is on the first slider in the overlay (${JSON.stringify(f)})`);
  assert(f.now === null && f.thumbs === 0, "the sliders start with no value");
  assert(await C.$eval("#remote-video", (v) => !v.paused), "the video keeps playing under the overlay");
  // Send before answering: refused with a hint, nothing sent
  await C.keyboard.press("Tab");
  await C.keyboard.press("Tab");
  await C.keyboard.press("Enter");
  await waitFor(async () => (await text(C, "#overlay-slot .pulse-msg")).includes("Choose an answer"), "the need-all hint");
  // now answer: focus went back to the first unanswered slider
  assert(await C.evaluate(() => document.activeElement.getAttribute("role") === "slider"), "focus back on a slider");
  await C.keyboard.press("3");
  await C.keyboard.press("ArrowRight");
  await C.keyboard.press("ArrowRight");
  await C.keyboard.press("Tab");
  await C.keyboard.press("4");
  await shot(C, "client-pulse");
  await C.keyboard.press("Tab");
  assert(await C.evaluate(() => document.activeElement.textContent === "Send"), "Tab reaches Send");
  await C.keyboard.press("Enter");
  await C.locator("#overlay-slot .pulse").waitFor({ state: "detached", timeout: 10000 });
  const back = await C.evaluate(() => document.activeElement && document.activeElement.id);
  assert(back === "h-call", `focus returned to the call (got #${back})`);
  const rows = await waitFor(() => {
    const r = sql(`SELECT a.final, a.dismissed, a.time_to_answer_ms, p.delivered_via, p.kind FROM answers a JOIN pulses p USING (pulse_id) WHERE pulse_id = ${q(pid)}`);
    return r.length ? r : null;
  }, "the answer row", 5000);
  assert(rows[0].final === 1 && rows[0].dismissed === 0 && rows[0].kind === "in_session", `answer row ${JSON.stringify(rows[0])}`);
  assert(rows[0].delivered_via === "datachannel", `delivered via ${rows[0].delivered_via}`);
  const items = Object.fromEntries(sql(`SELECT item_id, value FROM answer_items WHERE pulse_id = ${q(pid)}`).map((r) => [r.item_id, r.value]));
  assert(items.understood === 3.2 && items.focus === 4, `items ${JSON.stringify(items)}`);
}, { needs: ["therapist admits the client from the waiting room; both see each other's video"] });

await test("alert: the low pulse (7.2 < 12) reaches the therapist's alerts panel with the connection note", async () => {
  await visible(T, "#alerts li");
  const msg = await text(T, "#alerts li .alert-msg");
  assert(/below 12/.test(msg) && /Connection before it/.test(msg), `alert message: ${msg}`);
  assert(await T.locator("#alerts li").count() === 1, "one alert (the data-channel copy and the event are merged)");
  const a = sql(`SELECT rule, score FROM alerts WHERE pulse_id = ${q(ctx.pulse1)}`);
  assert(a.length === 1 && a[0].rule === "below_cutoff", `alert row ${JSON.stringify(a)}`);
  await shot(T, "therapist-alert");
}, { needs: ["pulse: therapist sends one; the client answers in the overlay with the keyboard only; stored"] });

await test("pulse: a Likert question (ap-tech) answered with the keyboard: big radio buttons, none preset", async () => {
  await T.selectOption("#pulse-kind", "ap-tech");
  await T.click("#send-pulse");
  await T.selectOption("#pulse-kind", "");
  await visible(C, "#overlay-slot .pulse");
  const pid = await C.getAttribute("#overlay-slot .pulse", "data-pulse-id");
  const st = await C.evaluate(() => ({
    radios: document.querySelectorAll(".pulse input[type=radio]").length,
    checked: document.querySelectorAll(".pulse input[type=radio]:checked").length,
    focus: document.activeElement.type,
    labels: [...document.querySelectorAll(".pulse .likert-label")].map((l) => l.textContent),
  }));
  assert(st.radios === 5 && st.checked === 0 && st.focus === "radio", `likert state ${JSON.stringify(st)}`);
  assert(st.labels.length === 5, "each point has its label");
  await C.keyboard.press("Space");
  await C.keyboard.press("ArrowRight");
  await C.keyboard.press("ArrowRight");
  await shot(C, "client-pulse-likert");
  await C.keyboard.press("Tab");
  await C.keyboard.press("Enter");
  await C.locator("#overlay-slot .pulse").waitFor({ state: "detached", timeout: 10000 });
  const r = await waitFor(() => {
    const x = sql(`SELECT i.value, p.instrument_id FROM answer_items i JOIN pulses p USING (pulse_id) WHERE pulse_id = ${q(pid)}`);
    return x.length ? x : null;
  }, "the likert answer", 5000);
  assert(r[0].value === 3 && r[0].instrument_id === "ap-tech", `likert row ${JSON.stringify(r)}`);
}, { needs: ["pulse: therapist sends one; the client answers in the overlay with the keyboard only; stored"] });

await test("pulse: Escape means Not now (stored as declined), focus returns", async () => {
  await C.focus("#h-call");
  await T.click("#send-pulse");
  await visible(C, "#overlay-slot .pulse");
  const pid = await C.getAttribute("#overlay-slot .pulse", "data-pulse-id");
  assert(pid !== ctx.pulse1, "a new pulse");
  assert(await C.evaluate(() => !!document.activeElement.closest(".pulse")), "focus moved into the overlay");
  await C.keyboard.press("Escape");
  await C.locator("#overlay-slot .pulse").waitFor({ state: "detached", timeout: 5000 });
  assert(await C.evaluate(() => document.activeElement.id === "h-call"), "focus returned");
  const r = await waitFor(() => {
    const x = sql(`SELECT dismissed, final FROM answers WHERE pulse_id = ${q(pid)}`);
    return x.length ? x : null;
  }, "the declined row", 5000);
  assert(r[0].dismissed === 1 && r[0].final === 0, `row ${JSON.stringify(r[0])}`);
}, { needs: ["pulse: therapist sends one; the client answers in the overlay with the keyboard only; stored"] });

await test("pulse: left unanswered, the overlay closes by itself when the pulse expires", async () => {
  await T.click("#send-pulse");
  await visible(C, "#overlay-slot .pulse");
  const pid = await C.getAttribute("#overlay-slot .pulse", "data-pulse-id");
  const t0 = Date.now();
  await C.locator("#overlay-slot .pulse").waitFor({ state: "detached", timeout: 15000 });
  const waited = (Date.now() - t0) / 1000;
  assert(waited > 4, `closed after ${waited.toFixed(1)} s, not at once`);
  assert((await text(C, "#toast")).includes("The question closed"), "the person is told");
  assert(await C.evaluate(() => document.activeElement.id === "h-call"), "focus returned");
  const r = await waitFor(() => {
    const x = sql(`SELECT status FROM pulses WHERE pulse_id = ${q(pid)}`);
    return x.length && x[0].status === "expired" ? x : null;
  }, "the pulse to be stored as expired", 5000);
  assert(r[0].status === "expired", "expired in the store");
}, { needs: ["therapist admits the client from the waiting room; both see each other's video"] });

/* ---- staying in the call: reloads, lost connections, another window ---- */
const ADMITTED = "therapist admits the client from the waiting room; both see each other's video";
const CLIENT_GONE = "client gone: the therapist's page marks the frozen picture and the badges; the same link in a new tab of that browser brings the client back without a click";

await test("status lines: 'Pulse sent' goes when the client closes the pulse (pulse_closed), and its 'closed' notice goes too", async () => {
  await T.click("#send-pulse");
  await waitFor(async () => (await statusText(T, "#controls-status")).includes("Pulse sent"), "the pulse_sent answer");
  await visible(C, "#overlay-slot .pulse");
  await C.keyboard.press("Escape");
  await C.locator("#overlay-slot .pulse").waitFor({ state: "detached", timeout: 5000 });
  // pulse_closed comes at once; the 8 s expiry would be too late here
  await waitFor(async () => !(await statusText(T, "#controls-status")).includes("Pulse sent"), "'Pulse sent' to go on pulse_closed", 3000);
  await waitFor(async () => (await statusText(T, "#controls-status")) === "", "the 'closed' notice to go by itself", 8000);
}, { needs: [ADMITTED] });

await test("client: a reload mid-call goes straight back into the call — no consent, no check, no click — with video both ways", async () => {
  await bothWays(C, T, "before the reload");
  const joins0 = await C.evaluate(() => window.alliancePage.joins);
  assert(joins0 >= 1, "the client joined before");
  await timeBackInCall(C, T, () => C.reload({ waitUntil: "commit" }), "client reload");
  const screens = await C.evaluate(() => window.alliancePage.screens);
  assert(!screens.some((x) => ["s-consent", "s-check", "s-error", "s-invite"].includes(x)), `screens after the reload: ${screens}`);
  assert(screens[screens.length - 1] === "s-call", `in the call (${screens})`);
  await videoPlays(C, "#remote-video");
  await videoPlays(T, "#remote-video");
  await waitFor(() => C.evaluate(() => window.alliancePage.dcOpen), "the client's data channel after the reload");
  assert(!C.url().includes("invite="), "the invite stays out of the address bar");
  assert(await C.evaluate(() => document.documentElement.lang) === "en", "the language kept");
}, { needs: [ADMITTED] });

await test("therapist: a reload mid-call goes straight back (signed in from the tab's key) with video both ways; the client's 'Your therapist is back.' goes by itself", async () => {
  await recordTexts(C, "#call-status");
  await recordTexts(C, "#remote-mark");
  await timeBackInCall(T, C, () => T.reload({ waitUntil: "commit" }), "therapist reload");
  const screens = await T.evaluate(() => window.alliancePage.screens);
  assert(!screens.includes("s-error") && !screens.includes("s-create"), `therapist screens: ${screens}`);
  await visible(T, "#call-panel");
  await videoPlays(T, "#remote-video");
  await videoPlays(C, "#remote-video");
  // the client heard that the therapist left and came back; neither line stays
  await waitFor(async () => (await textsSeen(C, "#call-status")).some((x) => x.includes("Your therapist is back")), "'Your therapist is back.' on the client's page", 5000);
  await waitFor(async () => {
    const st = await statusText(C, "#call-status");
    return !st.includes("is back") && !st.includes("dropped");
  }, "the client's status to stop saying 'back' / 'dropped'", 8000);
  const marks = await textsSeen(C, "#remote-mark");
  assert(marks.some((x) => x.startsWith("Your therapist")), `the client's page marked the therapist's picture while they were away (${JSON.stringify(marks)})`);
  await waitFor(async () => !(await C.$eval("#remote-mark", (e) => e.textContent)), "the mark on the therapist's picture to clear", 5000);
}, { needs: [ADMITTED] });

await test(CLIENT_GONE, async () => {
  await bothWays(C, T, "before the client goes");
  await C.close();
  // the therapist's page: a marked picture and badges that say so
  await waitFor(async () => (await text(T, "#remote-mark")).includes("Client's video stopped"), "the mark on the client's picture", 8000);
  assert(await T.$eval("#remote-video", (v) => v.classList.contains("is-stopped")), "the frozen picture is dimmed");
  const badges = await T.evaluate(() => [...document.querySelectorAll(".quality .badge")].map((b) => ({
    badge: b.dataset.badge, val: b.querySelector(".badge-val").textContent, sr: b.querySelector(".badge-detail").textContent, cls: b.className })));
  for (const b of badges) {
    assert(b.badge === "stopped" && /media stopped/.test(b.val) && /media stopped/.test(b.sr) && b.cls.includes("badge-stopped"), `badge while the client is gone: ${JSON.stringify(b)}`);
  }
  assert((await statusText(T, "#presence-status")).includes("connection dropped"), "the therapist is told the client's connection dropped");
  // the link stays at hand, with a true note
  await visible(T, "#invite-panel");
  assert(await T.$eval("#invite-panel", (p) => !!p.closest(".side")), "the link panel is in the side column during the call");
  assert((await text(T, "#invite-help")).includes("same browser"), "the note says how the client gets back in");
  await visible(T, "#reinvite");
  await shot(T, "therapist-client-gone");
  // the same link in a new tab of the same browser: back in, no click
  C = await newPage(cctx, "client-newtab");
  await timeBackInCall(C, T, () => C.goto(ctx.link, { waitUntil: "commit" }), "client link opened again in a new tab");
  const screens = await C.evaluate(() => window.alliancePage.screens);
  assert(!screens.includes("s-consent") && !screens.includes("s-check"), `new tab screens: ${screens}`);
  await waitFor(async () => !(await text(T, "#remote-mark")) && !(await T.$eval("#remote-video", (v) => v.classList.contains("is-stopped"))), "the mark to clear", 8000);
  await waitFor(() => T.evaluate(() => [...document.querySelectorAll(".quality .badge")].every((b) => b.dataset.badge !== "stopped")), "the badges to stop saying 'stopped'", 3000);
  await waitFor(async () => (await statusText(T, "#presence-status")) === "", "the 'back' notice to go by itself", 8000);
  await videoPlays(T, "#remote-video");
  await videoPlays(C, "#remote-video");
  await shot(T, "therapist-call-link");
}, { needs: [ADMITTED] });

await test("client: pc.restartIce() keeps the call — new ICE credentials both sides, video both ways, visit live, no re-join", async () => {
  const ufrags = () => C.evaluate(() => {
    const pc = window.alliancePage.pc;
    const u = (sdp) => (/a=ice-ufrag:(\S+)/.exec(sdp || "") || [])[1];
    return { local: u(pc.localDescription && pc.localDescription.sdp), remote: u(pc.remoteDescription && pc.remoteDescription.sdp), ice: pc.iceConnectionState };
  });
  const before = await ufrags();
  const joins = await C.evaluate(() => window.alliancePage.joins);
  await C.evaluate(() => window.alliancePage.pc.restartIce());
  await waitFor(async () => {
    const u = await ufrags();
    return u.local !== before.local && u.remote !== before.remote && ["connected", "completed"].includes(u.ice);
  }, "the ICE restart (new ufrags on both sides, connected)", 8000);
  await bothWays(C, T, "after the ICE restart");
  assert(await C.evaluate(() => window.alliancePage.joins) === joins, "no re-join was needed");
  assert(await C.evaluate(() => window.alliancePage.phase) === "live", "the client is in the call");
  const v = sql(`SELECT state FROM visits WHERE visit_id = ${q(ctx.visitId)}`);
  assert(v[0].state === "live", `the visit stays live (${v[0].state})`);
  assert(!(await text(T, "#remote-mark")), "no mark on the therapist's page");
}, { needs: [CLIENT_GONE] });

await test("client: the WebSocket drops mid-call — the page re-joins by itself ('Reconnecting…', then 'Back', then nothing), video both ways", async () => {
  await recordTexts(C, "#conn-banner");
  const joins = await C.evaluate(() => window.alliancePage.joins);
  await C.evaluate(() => { for (const w of window.__sockets) w.close(); });
  await waitFor(async () => (await C.evaluate(() => window.alliancePage.joins)) > joins, "a re-join", 10000);
  await bothWays(C, T, "after the re-join");
  const seen = await textsSeen(C, "#conn-banner");
  assert(seen.some((x) => x.includes("Reconnecting")) && seen.some((x) => x.includes("Back")), `banner texts: ${JSON.stringify(seen)}`);
  await waitFor(async () => (await text(C, "#conn-banner")) === "", "the 'Back' banner to go", 6000);
  assert(await C.evaluate(() => window.alliancePage.phase) === "live", "still in the call");
}, { needs: [CLIENT_GONE], allow: /Ooops: 458|No such session/ });

// nftables in the client namespace (this process runs there, as root)
function nft(...args) {
  execFileSync("nft", args, { encoding: "utf8", env: { ...env, PATH: `${env.PATH || ""}:/usr/sbin:/sbin` } });
}

await test("network: the client's media path cut — the page restarts ICE by itself (no re-join), 'Reconnecting…' then 'Back'; the therapist's page marks the picture meanwhile and clears it", async () => {
  await recordTexts(C, "#conn-banner");
  await recordTexts(T, "#remote-mark");
  const before = await C.evaluate(() => ({ joins: window.alliancePage.joins, restarts: window.alliancePage.keeper.restarts }));
  // the UDP port of the client's selected candidate: everything to and
  // from it is dropped, the WebSocket (TCP) stays up
  const port = await C.evaluate(async () => {
    const st = await window.alliancePage.pc.getStats();
    let pairId = null;
    st.forEach((x) => { if (x.type === "transport" && x.selectedCandidatePairId) pairId = x.selectedCandidatePairId; });
    return st.get(st.get(pairId).localCandidateId).port;
  });
  assert(Number.isInteger(port) && port > 0, `the client's candidate port (${port})`);
  nft("add", "table", "inet", "e2ecut");
  try {
    nft("add", "chain", "inet", "e2ecut", "out", "{ type filter hook output priority 0 ; }");
    nft("add", "chain", "inet", "e2ecut", "in", "{ type filter hook input priority 0 ; }");
    nft("add", "rule", "inet", "e2ecut", "out", "udp", "sport", String(port), "drop");
    nft("add", "rule", "inet", "e2ecut", "in", "udp", "dport", String(port), "drop");
    // ICE says disconnected after a few seconds; the page restarts ICE, whose
    // new candidates use new ports, so the call comes back with the old one still cut
    const t0 = Date.now();
    // how soon Chromium notices is Chromium's affair (some seconds without
    // STUN answers); what the page does then is what this test is about
    await waitFor(() => C.evaluate(() => ["disconnected", "failed"].includes(window.alliancePage.pc.iceConnectionState)), "Chromium to notice (ICE disconnected)", 15000);
    assert((await text(C, "#remote-mark")).includes("Your connection was interrupted"), "the client's page says its own connection is interrupted");
    const td = Date.now() - t0;
    await shot(T, "therapist-client-media-stopped");
    await shot(C, "client-connection-interrupted");
    await waitFor(() => C.evaluate((n) => window.alliancePage.keeper.restarts > n, before.restarts), "the page's ICE restart", 8000);
    const tr = Date.now() - t0;
    await bothWays(C, T, "after the ICE restart");
    console.log(`      network cut: ICE disconnected after ${td} ms, restarted after ${tr} ms, video both ways after ${Date.now() - t0} ms`);
  } finally {
    nft("delete", "table", "inet", "e2ecut");
  }
  assert(await C.evaluate(() => window.alliancePage.joins) === before.joins, "no re-join was needed");
  const banner = await textsSeen(C, "#conn-banner");
  assert(banner.some((x) => x.includes("Reconnecting")) && banner.some((x) => x.includes("Back")), `banner texts: ${JSON.stringify(banner)}`);
  await waitFor(async () => (await text(C, "#conn-banner")) === "", "the 'Back' banner to go", 6000);
  const marks = await textsSeen(T, "#remote-mark");
  assert(marks.some((x) => x.includes("Client's video stopped")), `the therapist's page marked the picture (${JSON.stringify(marks)})`);
  await waitFor(async () => !(await text(T, "#remote-mark")), "the therapist's mark to clear", 8000);
  const v = sql(`SELECT state FROM visits WHERE visit_id = ${q(ctx.visitId)}`);
  assert(v[0].state === "live", `the visit stays live (${v[0].state})`);
}, { needs: [CLIENT_GONE] });

// `fresh` took the visit from `old`: the old page says so, has let go (no
// session, keeper stopped, camera off) and sends no join while the new
// page's call runs; then "Continue here" takes it back and the new page
// says so in turn.
async function checkReplaced(old, fresh, other, { callSel, shotName }) {
  await visible(old, "#s-replaced", 15000);
  assert((await text(old, "#h-replaced")) === "This visit continues in another window", "the heading");
  await bothWays(fresh, other, "in the new tab");
  const st = await old.evaluate(() => ({ joins: window.alliancePage.joins, session: window.alliancePage.sessionOpen, keeper: window.alliancePage.keeper }));
  assert(!st.session && st.keeper.stopped && st.keeper.state === "ok", `the old tab let go: ${JSON.stringify(st)}`);
  assert(await old.$eval("#self-video", (v) => v.srcObject === null), "the old tab's camera is off");
  assert(await fresh.evaluate(() => window.alliancePage.phase) === "live", "the new tab is in the call");
  assert(await old.evaluate(() => window.alliancePage.joins) === st.joins, "the old tab did not try to join again");
  assert(await old.evaluate(() => document.activeElement && document.activeElement.id) === "h-replaced", "focus on the message");
  await shot(old, shotName);
  await old.click("#continue-here");
  await visible(fresh, "#s-replaced");
  await visible(old, callSel);
  await bothWays(old, other, "back in the first tab");
  await fresh.close();
}

await test("replaced: the link opened in a second tab takes the visit; the first says 'continues in another window' and does not fight back; 'Continue here' takes it back", async () => {
  const C2 = await newPage(cctx, "client-tab2");
  await timeBackInCall(C2, T, () => C2.goto(ctx.link, { waitUntil: "commit" }), "client link opened in a second tab");
  await videoPlays(C2, "#remote-video");
  await checkReplaced(C, C2, T, { callSel: "#s-call", shotName: "client-replaced" });
}, { needs: [CLIENT_GONE] });

await test("replaced, therapist: the visit opened in a duplicate tab takes it; the first tab says so and does not fight back; 'Continue here' takes it back", async () => {
  // a duplicated tab (window.open of the same page) gets a copy of the tab's sessionStorage: the key and the visit
  const [T2] = await Promise.all([tctx.waitForEvent("page"), T.evaluate(() => { window.open(window.location.href); })]);
  watchPage(T2, "therapist-tab2");
  await visible(T2, "#call-panel");
  await checkReplaced(T, T2, C, { callSel: "#call-panel", shotName: "therapist-replaced" });
}, { needs: [CLIENT_GONE] });

await test("New link (reinvite): the therapist makes and copies a new link; the old one reloaded says it is no longer valid; the new one gets the client back into the call", async () => {
  const oldLink = ctx.link;
  await T.click("#reinvite");
  await visible(T, "#reinvite-confirm");
  await T.click("#reinvite-yes");
  await waitFor(async () => (await statusText(T, "#invite-status")).includes("New link made"), "the new link", 8000);
  const link = await T.inputValue("#invite-link");
  assert(link !== oldLink && /\/client\.html#invite=[A-Za-z0-9_-]{22,}$/.test(link), "a different client link");
  results.secrets.push(link.split("#invite=")[1]);
  assert(await T.evaluate(() => navigator.clipboard.readText()) === link, "the clipboard holds the new link");
  await shot(T, "therapist-new-link");
  // the client's tab (old link, old rejoin key) reloaded: refused, said clearly
  await C.reload();
  await visible(C, "#s-error");
  const msg = await text(C, "#error-status");
  assert(msg.includes("no longer valid") && msg.includes("ask your therapist for a new link"), `message: ${msg}`);
  assert(await C.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("ap.client.visit.")).length) === 0, "the refused record is deleted");
  await shot(C, "client-link-gone");
  // the new link: a first join (consent again), then straight into the call
  await C.goto(link);
  await visible(C, "#s-consent");
  await C.check("input[name=research][value=yes]");
  await C.click("#consent-form button[type=submit]");
  await waitFor(() => C.$eval("#join-btn", (b) => !b.disabled), "the checks", 15000);
  await C.click("#join-btn");
  await visible(C, "#s-call");
  await bothWays(C, T, "with the new link");
  ctx.link = link;
  const rec = await C.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("ap.client.visit.")).map((k) => JSON.parse(localStorage.getItem(k)).rejoin_key));
  assert(rec.length === 1, "one rejoin record, for the new link");
  results.secrets.push(rec[0]);
}, { needs: [CLIENT_GONE] });

await test("end visit: the client answers the end pulse after the call; the therapist answers the mirror form", async () => {
  await T.click("#end-visit");
  await visible(T, "#end-confirm");
  await T.click("#end-yes");
  await visible(T, "#s-mirror");
  // the client: the call is over (camera off), the end pulse on the page
  await visible(C, "#s-end");
  await visible(C, "#end-slot .pulse");
  const pid = await C.getAttribute("#end-slot .pulse", "data-pulse-id");
  assert(await C.evaluate(() => document.activeElement.closest(".pulse") !== null), "focus in the end form");
  const tracks = await C.evaluate(() => document.querySelector("#self-video").srcObject === null);
  assert(tracks, "self view stopped");
  await shot(C, "client-end");
  const sliders = C.locator("#end-slot .vas-slider");
  const n = await sliders.count();
  assert(n === 4, `four end items (got ${n})`);
  const fr = [0.9, 0.8, 0.85, 0.95];
  for (let i = 0; i < n; i++) await pointVas(C, sliders.nth(i), fr[i]);
  await C.click("#end-slot button[type=submit]");
  await visible(C, "#s-thanks");
  await shot(C, "client-thanks");
  const items = sql(`SELECT item_id, value FROM answer_items WHERE pulse_id = ${q(pid)}`);
  assert(items.length === 4 && items.every((r) => r.value >= 7 && r.value <= 10), `end answer items ${JSON.stringify(items)}`);
  const row = sql(`SELECT a.final, p.kind, p.role FROM answers a JOIN pulses p USING (pulse_id) WHERE pulse_id = ${q(pid)}`);
  assert(row[0].final === 1 && row[0].kind === "end" && row[0].role === "client", `row ${JSON.stringify(row)}`);
  // the therapist's mirror form
  await visible(T, "#mirror-slot .pulse");
  await shot(T, "therapist-mirror");
  const ts = T.locator("#mirror-slot .vas-slider");
  for (let i = 0; i < (await ts.count()); i++) await pointVas(T, ts.nth(i), 0.7);
  await T.click("#mirror-slot button[type=submit]");
  await visible(T, "#s-done");
  const tr = sql(`SELECT a.final, p.instrument_id FROM answers a JOIN pulses p USING (pulse_id) WHERE p.visit_id = ${q(ctx.visitId)} AND p.role = 'therapist' AND p.kind = 'end'`);
  assert(tr.length === 1 && tr[0].final === 1 && tr[0].instrument_id === "ap-therapist-end", `therapist end ${JSON.stringify(tr)}`);
}, { needs: ["therapist admits the client from the waiting room; both see each other's video"] });

await test("store: the visit's answers, and the browsers' getStats digests every 5 s", async () => {
  const v = sql(`SELECT modality, state, therapist_code, client_code FROM visits WHERE visit_id = ${q(ctx.visitId)}`);
  assert(v[0].modality === "video" && v[0].therapist_code === "T-01" && v[0].client_code === "C-E2E-01", `visit ${JSON.stringify(v)}`);
  const a = sql(`SELECT p.role, p.kind, a.final, a.dismissed FROM answers a JOIN pulses p USING (pulse_id) WHERE p.visit_id = ${q(ctx.visitId)} ORDER BY a.first_at`);
  assert(a.length === 6, `6 answers (4 in-session — 2 answered, 2 declined —, client end, therapist end): ${JSON.stringify(a)}`);
  const s = sql(`SELECT leg, metrics_json FROM quality_samples WHERE visit_id = ${q(ctx.visitId)} AND medium = 'browser'`);
  const legs = new Set(s.map((r) => r.leg));
  assert(legs.has("client_down"), `client stats stored (legs ${[...legs]})`);
  const m = JSON.parse(s.find((r) => r.leg === "client_down").metrics_json);
  assert(m.inbound_video && m.inbound_video.framesDecoded > 0 && m.candidate_pair, `digest ${JSON.stringify(m)}`);
}, { needs: ["end visit: the client answers the end pulse after the call; the therapist answers the mirror form"] });

/* ================= 2. an in-person visit on the kiosk ================= */
const kctx = await newContext({ hasTouch: true, viewport: { width: 1280, height: 800 } });
await trackSockets(kctx);
const Kp = await newPage(kctx, "kiosk");

const KIOSK = "kiosk: in-person visit, invite typed in, pulses answered by touch, the connection lost and back by itself, a reload back to the ready screen (nobody touches the tablet), end pulse, reset for the next client";
await test(KIOSK, async () => {
  await T.click("#new-visit");
  await visible(T, "#s-create");
  await T.fill("#client-code", "C-E2E-02");
  await T.check("input[name=modality][value=in_person]");
  await T.click("#create-form button[type=submit]");
  await visible(T, "#s-visit");
  const link = await T.inputValue("#invite-link");
  assert(link.includes("/kiosk.html#invite="), "in-person link goes to the kiosk");
  const invite = link.split("#invite=")[1];
  results.secrets.push(invite);
  const visitId = await T.evaluate(() => window.alliancePage.visitId);
  ctx.kioskVisit = visitId;
  await Kp.goto(BASE + "kiosk.html");
  await visible(Kp, "#s-setup");
  await shot(Kp, "kiosk-setup");
  await Kp.fill("#invite-input", invite);
  await Kp.locator("#setup-form button[type=submit]").tap();
  await visible(Kp, "#s-consent");
  await Kp.locator("input[name=research][value=yes]").tap();
  await Kp.locator("#consent-form button[type=submit]").tap();
  await visible(Kp, "#s-wait");
  await visible(T, "#admit");
  await T.click("#admit");
  await visible(Kp, "#s-ready");
  await visible(T, "#inperson-panel");
  // a pulse, as a Janus event (no data channel on a kiosk)
  await T.click("#send-pulse");
  await visible(Kp, "#pulse-slot .pulse");
  const pid = await Kp.getAttribute("#pulse-slot .pulse", "data-pulse-id");
  await shot(Kp, "kiosk-pulse");
  const s = Kp.locator("#pulse-slot .vas-slider");
  await pointVas(Kp, s.nth(0), 0.75, { tap: true });
  await pointVas(Kp, s.nth(1), 0.65, { tap: true });
  await Kp.locator("#pulse-slot button[type=submit]").tap();
  await visible(Kp, "#s-ready");
  await waitFor(async () => (await text(Kp, "#ready-status")).includes("saved"), "the kiosk's thank-you");
  const r = sql(`SELECT a.final, p.delivered_via FROM answers a JOIN pulses p USING (pulse_id) WHERE pulse_id = ${q(pid)}`);
  assert(r.length === 1 && r[0].final === 1 && r[0].delivered_via === "event", `kiosk answer ${JSON.stringify(r)}`);
  // the WebSocket drops (and with it the Janus session): the kiosk says
  // so, joins again by itself with its rejoin key, and the next pulse
  // reaches it on the new handle
  await recordTexts(Kp, "#conn-banner");
  const joins = await Kp.evaluate(() => window.alliancePage.joins);
  await Kp.evaluate(() => { for (const w of window.__sockets) w.close(); });
  await waitFor(async () => (await Kp.evaluate(() => window.alliancePage.joins)) > joins, "the kiosk's re-join", 10000);
  const seen = await textsSeen(Kp, "#conn-banner");
  assert(seen.some((x) => x.includes("Reconnecting")) && seen.some((x) => x.includes("Back")), `banner texts: ${JSON.stringify(seen)}`);
  assert(await Kp.evaluate(() => window.alliancePage.phase) === "ready", "the kiosk is ready again, no screen in between");
  await T.click("#send-pulse");
  await visible(Kp, "#pulse-slot .pulse");
  const pid2 = await Kp.getAttribute("#pulse-slot .pulse", "data-pulse-id");
  assert(pid2 && pid2 !== pid, "a new pulse after the re-join");
  const s2 = Kp.locator("#pulse-slot .vas-slider");
  await pointVas(Kp, s2.nth(0), 0.55, { tap: true });
  await pointVas(Kp, s2.nth(1), 0.45, { tap: true });
  await Kp.locator("#pulse-slot button[type=submit]").tap();
  await visible(Kp, "#s-ready");
  const r2 = await waitFor(() => {
    const x = sql(`SELECT a.final FROM answers a WHERE pulse_id = ${q(pid2)}`);
    return x.length ? x : null;
  }, "the answer after the re-join", 5000);
  assert(r2[0].final === 1, `answer after the re-join ${JSON.stringify(r2)}`);
  await waitFor(async () => (await text(Kp, "#conn-banner")) === "", "the 'Back' banner to go", 6000);
  // a reload of the tablet: straight back to the ready screen, consent not asked again
  await Kp.reload();
  await visible(Kp, "#s-ready");
  assert(await Kp.locator("#s-consent").isHidden(), "no consent screen after the reload");
  assert(await Kp.evaluate(() => window.alliancePage.joins) === 1, "one join, with the stored rejoin key");
  // end: the end pulse on the kiosk; the therapist declines the mirror form
  await T.click("#end-visit");
  await T.click("#end-yes");
  await visible(Kp, "#pulse-slot .pulse[data-kind=end]");
  const es = Kp.locator("#pulse-slot .vas-slider");
  for (let i = 0; i < (await es.count()); i++) await pointVas(Kp, es.nth(i), 0.6 + i * 0.1, { tap: true });
  await Kp.locator("#pulse-slot button[type=submit]").tap();
  await visible(Kp, "#s-done");
  await shot(Kp, "kiosk-done");
  await visible(T, "#mirror-slot .pulse");
  await T.click("#mirror-slot button.secondary");   // Not now
  await visible(T, "#s-done");
  await Kp.locator("#next-person").tap();
  await visible(Kp, "#s-setup");
  assert(await Kp.evaluate(() => sessionStorage.getItem("ap.kiosk.invite") === null), "the kiosk forgot the visit");
}, { needs: ["therapist: sign in with the key, create a video visit, copy the client link"], allow: /Ooops: 458|No such session/ });

await test("store: the kiosk's answers are stored with modality in_person", async () => {
  const rows = sql(`SELECT v.modality, p.kind, p.role, a.final, a.dismissed FROM answers a JOIN pulses p USING (pulse_id) JOIN visits v USING (visit_id) WHERE v.visit_id = ${q(ctx.kioskVisit)} ORDER BY a.first_at`);
  const client = rows.filter((r) => r.role === "client");
  assert(client.length === 3 && client.every((r) => r.modality === "in_person" && r.final === 1), `kiosk rows ${JSON.stringify(rows)}`);
  assert(client.filter((r) => r.kind === "end").length === 1 && client.filter((r) => r.kind === "in_session").length === 2,
    "two in-session answers (before and after the re-join) and the end answer");
}, { needs: [KIOSK] });

/* ================= 3. failure paths and the supervisor ================= */
await test("failure path: a wrong therapist key is refused with a clear message (475)", async () => {
  const x = await newContext();
  const p = await newPage(x, "therapist-wrong");
  await p.goto(BASE + "therapist.html");
  await p.fill("#key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  await p.click("#signin-form button[type=submit]");
  await waitFor(async () => (await text(p, "#signin-status")).includes("not valid"), "the wrong-key message");
  assert(await p.evaluate(() => sessionStorage.getItem("ap.therapist.key") === null), "a wrong key is not kept");
  assert(await p.$eval("#key", (e) => e.getAttribute("aria-invalid") === "true" && document.activeElement === e), "the field is marked and focused");
  await shot(p, "therapist-wrong-key");
  await x.close();
});

await test("failure path: an unknown invite says the link is not valid (477), here in German", async () => {
  const x = await newContext();
  const p = await newPage(x, "client-bad-invite");
  await p.goto(BASE + "client.html#invite=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  // in German, this time: the page switches its texts
  await p.selectOption("#lang", "de");
  assert((await text(p, "#h-consent")) === "Bevor es losgeht", "German consent heading");
  await p.check("input[name=research][value=yes]");
  await p.click("#consent-form button[type=submit]");
  await waitFor(() => p.$eval("#join-btn", (b) => !b.disabled), "the checks", 15000);
  assert((await text(p, "#join-btn")) === "In den Warteraum", "German join button");
  await p.click("#join-btn");
  await visible(p, "#s-error");
  const msg = await text(p, "#error-status");
  assert(msg.includes("Dieser Link ist ungültig"), `invalid-invite message (German): ${msg}`);
  await shot(p, "client-invite-invalid");
  await x.close();
});

await test("failure path: camera and microphone denied — a clear message, no way into the call", async () => {
  // --use-fake-ui-for-media-stream grants every request browser-wide (and
  // overrides permission settings), so this runs in a second browser
  // without it, where the permission prompt is denied
  const b2 = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [...CHROMIUM_ARGS.filter((a) => a !== "--use-fake-ui-for-media-stream"), "--deny-permission-prompts"],
  });
  try {
    const x = await b2.newContext({ viewport: { width: 1280, height: 800 } });
    const p = await newPage(x, "client-denied");
    await p.goto(BASE + "client.html#invite=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    await p.check("input[name=research][value=yes]");
    await p.click("#consent-form button[type=submit]");
    await waitFor(async () => (await text(p, "#cam-status")).includes("blocked"), "the camera-denied message", 10000);
    await waitFor(async () => (await text(p, "#net-status")).includes("Connection:"), "the connection check");
    assert(await p.$eval("#join-btn", (b) => b.disabled), "cannot join without camera");
    await visible(p, "#check-retry");
    await shot(p, "client-camera-denied");
  } finally {
    await b2.close();
  }
});

await test("failure path: Janus unreachable — therapist and client pages say so", async () => {
  const x = await newContext();
  const p = await newPage(x, "therapist-unreachable");
  await p.goto(`${BASE}therapist.html?janus=${encodeURIComponent(UNREACHABLE)}`);
  await p.fill("#key", TKEY);
  await p.click("#signin-form button[type=submit]");
  await waitFor(async () => (await text(p, "#signin-status")).includes("cannot reach"), "the unreachable message", 20000);
  await shot(p, "therapist-unreachable");
  const c = await newPage(x, "client-unreachable");
  await c.goto(`${BASE}client.html?janus=${encodeURIComponent(UNREACHABLE)}#invite=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`);
  await c.check("input[name=research][value=yes]");
  await c.click("#consent-form button[type=submit]");
  await waitFor(async () => (await text(c, "#net-status")).includes("cannot reach"), "the unreachable message", 20000);
  assert(await c.$eval("#join-btn", (b) => b.disabled), "cannot join");
  await shot(c, "client-unreachable");
  await x.close();
}, { allow: NETWORK_ERRORS });

await test("supervisor: wrong key refused; a report request says 'not available on this server yet' (472) or shows the report; erasure likewise", async () => {
  const x = await newContext();
  const p = await newPage(x, "supervisor");
  await p.goto(BASE + "supervisor.html");
  await visible(p, "#s-signin");
  await shot(p, "supervisor-signin");
  await p.fill("#key", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB");
  await p.click("#signin-form button[type=submit]");
  await waitFor(async () => (await text(p, "#signin-status")).includes("not valid"), "the wrong-key message");
  await p.fill("#key", SKEY);
  await p.click("#signin-form button[type=submit]");
  await visible(p, "#s-reports");
  for (const kind of ["visits", "compare"]) {
    await p.check(`input[name=kind][value=${kind}]`);
    if (kind === "compare") await p.fill("#f-instrument", "ap-end");
    await p.click("#report-form button[type=submit]");
    // the plugin of today answers 472; one with reports answers data
    const outcome = await waitFor(async () => {
      const st = await p.$eval("#report-status", (e) => (e.hidden ? "" : `${e.className}|${e.textContent}`));
      if (st.includes("not available on this server yet")) return "472";
      if (st.includes("status-error")) return `error: ${st}`;
      if (await p.locator("#report-out h2").count()) return "report";
      return null;
    }, `the ${kind} report or the 472 message`);
    assert(outcome === "472" || outcome === "report", `${kind}: ${outcome}`);
    if (outcome === "472") assert(await p.locator("#report-out > *").count() === 0, "nothing shown on 472");
    if (outcome === "report") {
      assert(await p.locator("#report-out dl, #report-out table").count() > 0, "the report is shown");
      const [dl] = await Promise.all([p.waitForEvent("download"), p.click("#dl-json")]);
      const file = await dl.path();
      const data = JSON.parse((await import("node:fs")).readFileSync(file, "utf8"));
      assert(data.alliance === "report" || data.kind === kind, `downloaded JSON is the ${kind} report`);
      await shot(p, `supervisor-report-${kind}`);
      const open = p.locator("#report-out .cell-btn", { hasText: ctx.visitId || "-" });
      if (kind === "visits" && ctx.visitId && await open.count()) {
        await open.first().click();
        await waitFor(async () => (await text(p, "#report-out h2")) === "Visit", "the one-visit report");
        assert(!(await p.$eval("#report-status", (e) => !e.hidden && e.className.includes("status-error"))), "no error");
        await shot(p, "supervisor-report-visit");
      }
    }
    ctx.reportOutcome = outcome;
  }
  await shot(p, "supervisor-reports");
  await p.click(".danger-zone summary");
  await p.fill("#forget-code", "C-NOBODY");
  await p.check("#forget-sure");
  await p.click("#forget-form button[type=submit]");
  const f = await waitFor(async () => {
    const st = await p.$eval("#forget-status", (e) => (e.hidden ? "" : `${e.className}|${e.textContent}`));
    return st && !st.includes("status-pending") ? st : null;
  }, "the erasure answer");
  assert(f.includes("not available") || /Erased \d+ stored rows/.test(f), `erasure: ${f}`);
  await x.close();
});

await test("supervisor: charts from seeded visits — trend per client, Hedges' g table and forest plot, formation curve, quality scatter", async () => {
  const seed = JSON.parse(env.E2E_SEED || "[]");
  assert(seed.length >= 6, "the launcher seeded the report visits");
  const x = await newContext({ acceptDownloads: true });
  const p = await newPage(x, "supervisor-charts");
  await p.goto(BASE + "supervisor.html");
  await visible(p, "#s-signin");
  await p.fill("#key", SKEY);
  await p.click("#signin-form button[type=submit]");
  await visible(p, "#s-reports");
  const show = async (kind, what) => {
    await p.check(`input[name=kind][value=${kind}]`);
    await p.click("#report-form button[type=submit]");
    await waitFor(async () => {
      const st = await p.$eval("#report-status", (e) => (e.hidden ? "" : `${e.className}|${e.textContent}`));
      if (st.includes("status-error") || st.includes("status-warn")) throw new Error(st);
      return (await p.locator("#report-out h2").count()) && !(await p.$eval("#report-actions", (e) => e.hidden));
    }, what, 20000);
  };
  const json = async () => {
    const [dl] = await Promise.all([p.waitForEvent("download"), p.click("#dl-json")]);
    return JSON.parse((await import("node:fs")).readFileSync(await dl.path(), "utf8"));
  };
  // visits of one client: a readable table and its trend, one point per scored visit
  const c1 = seed.filter((v) => v.client === "C-S01");
  await p.fill("#f-client", "C-S01");
  await show("visits", "the visits of C-S01");
  assert(await p.locator("#report-out .visits-table tbody tr").count() === c1.length, "one table row per visit of C-S01");
  assert(!(await text(p, "#report-out .visits-table")).includes("{"), "no raw JSON in the table");
  await waitFor(async () => (await p.locator("#report-out .trend-chart .pt-client").count()) === c1.length, `${c1.length} trend points`);
  assert(await p.locator("#report-out .trend-chart title").count() > 0 && await p.locator("#report-out .trend-chart desc").count() === 1, "trend chart has title and desc");
  assert(await p.locator("#report-out figure.trend details table").count() === 1, "trend data table alternative");
  await shot(p, "supervisor-visits");
  // open a visit from its link
  await p.locator("#report-out .visits-table .cell-btn", { hasText: c1[0].visit_id }).click();
  await waitFor(async () => (await text(p, "#report-out h2")) === "Visit", "the one-visit view");
  assert((await text(p, "#report-out dl")).includes(c1[0].visit_id), "the visit view names the visit");
  // summary: per therapist and client tables + the trend
  await p.check("input[name=kind][value=summary]");
  await p.fill("#f-client", "");
  await p.fill("#f-therapist", "T-02");
  await show("summary", "the summary of T-02");
  const sum = await json();
  assert(sum.kind === "summary" && (sum.clients || []).length === 3, "summary JSON has the three seeded clients");
  await waitFor(async () => (await p.locator("#report-out .trend-chart .pt-client").count()) === 3, "trend chart in the summary");
  await shot(p, "supervisor-summary");
  // compare: g in the table equals the report's, forest, formation, scatter
  await p.check("input[name=kind][value=compare]");
  await p.fill("#f-therapist", "");
  await p.fill("#f-instrument", "ap-end");
  await show("compare", "the compare report");
  const d = await json();
  assert(d.kind === "compare", "compare JSON");
  const total = d.scores.find((s) => s.score === "total");
  assert(total && total.hedges_g && typeof total.hedges_g.g === "number", "the report has g for the total");
  const m = (v) => v.toFixed(2).replace(/^-/, "\u2212");
  const gtext = await text(p, '#report-out .g-value[data-score="total"]');
  assert(gtext === `${m(total.hedges_g.g)} [${m(total.hedges_g.lo)}, ${m(total.hedges_g.hi)}]`, `g text "${gtext}" matches the JSON ${JSON.stringify(total.hedges_g)}`);
  const reading = await text(p, "#report-out .scores-table tbody tr:first-child .g-reading");
  assert(reading.includes(`by ${Math.abs(total.hedges_g.g).toFixed(2)} SD`) && reading.includes(total.hedges_g.g < 0 ? "online lower" : "online higher"), `plain reading: ${reading}`);
  // the model of clients and non-inferiority, read out in words beside the naive g
  assert(total.mixed && total.noninferiority, "the report has mixed and noninferiority for the total");
  const mtext = await text(p, '#report-out .mixed-value[data-score="total"]');
  const mread = await text(p, '#report-out .mixed-reading[data-score="total"]');
  // three seeded clients with both modalities: the model fits (a refusal is tested in the unit tests)
  assert(typeof total.mixed.estimate === "number", `the model of clients fitted: ${JSON.stringify(total.mixed)}`);
  assert(mtext === `${m(total.mixed.estimate)} [${m(total.mixed.ci[0])}, ${m(total.mixed.ci[1])}]`, `mixed text "${mtext}" matches ${JSON.stringify(total.mixed)}`);
  assert(mread.includes(`by ${Math.abs(total.mixed.estimate).toFixed(2)} points`) && mread.includes(`${total.mixed.n_clients} clients`), `mixed reading: ${mread}`);
  const ni = p.locator('#report-out .ni-reading[data-score="total"]');
  assert(await ni.getAttribute("data-conclusion") === total.noninferiority.conclusion, "the page's conclusion is the report's");
  const nitext = await ni.innerText();
  const word = { noninferior: "Non-inferior:", inferior: "Inferior:", inconclusive: "Inconclusive:" }[total.noninferiority.conclusion];
  assert(word && nitext.startsWith(word) && nitext.includes(`margin`), `non-inferiority in words: ${nitext}`);
  const withG = d.scores.filter((s) => s.hedges_g && typeof s.hedges_g.g === "number").length;
  assert(await p.locator("#report-out .forest-plot .g-mark").count() === withG, `${withG} g marks in the forest plot`);
  assert(await p.locator("#report-out .forest-plot .zero").count() === 1, "the forest plot has its line at 0");
  const fpts = ["video", "in_person"].reduce((n, k) => n + (d.formation[k] || []).filter((q) => q && typeof q.mean === "number").length, 0);
  assert(fpts > 0 && await p.locator("#report-out .formation-chart .f-pt").count() === fpts, `${fpts} formation points`);
  assert(await p.locator("#report-out .formation-chart .line-video, #report-out .formation-chart .line-in_person").count() >= 2, "one line per modality");
  const nq = d.quality && d.quality.mean_mos ? d.quality.mean_mos.n || 0 : 0;
  const nsc = await p.locator("#report-out .scatter-chart .sc-pt").count();
  assert(nsc === nq, `scatter points ${nsc} = measured video visits with a total ${nq}`);
  assert((await text(p, "#report-out .rho")).includes("Spearman"), "Spearman's rho printed");
  // good vs poor video visits (compare's video_class): one row per class, n as in the JSON
  assert(d.video_class && d.video_class.good && d.video_class.poor, "the report has video_class");
  const vcRows = await p.locator("#report-out .video-class-table tbody tr").count();
  assert(vcRows === 2, `good and poor video rows (${vcRows})`);
  const vcText = await text(p, "#report-out .video-class-table tbody");
  assert(vcText.includes(`good${d.video_class.good.n}`) && vcText.includes(`poor${d.video_class.poor.n}`), `video class n: ${vcText}`);
  assert((await text(p, "#report-out .video-class-reading")).includes("poor − good"), "the g of poor vs good video is read out");
  for (const c of ["trend", "forest", "formation", "scatter"]) {
    if (c === "trend") continue;
    const box = await p.locator(`#report-out figure.${c} svg`).boundingBox();
    assert(box && box.width > 200, `${c} chart is drawn`);
  }
  await shot(p, "supervisor-compare");
  // keyboard: the charts are focusable
  await p.locator("#report-out .forest-plot").focus();
  assert(await p.evaluate(() => document.activeElement.classList.contains("forest-plot")), "forest plot focusable");
  await x.close();
});

// A fresh therapist page at url: sign in with the key, create a video
// visit for clientCode, on the visit screen.
// The supervisor page at base, signed in with key, the Visits report of
// one client: the row of visitId (a locator, waited for).
async function supervisorVisitRow(page, base, key, clientCode, visitId) {
  await page.goto(base + "supervisor.html");
  await visible(page, "#s-signin");
  await page.fill("#key", key);
  await page.click("#signin-form button[type=submit]");
  await visible(page, "#s-reports");
  await page.check("input[name=kind][value=visits]");
  await page.fill("#f-client", clientCode);
  await page.click("#report-form button[type=submit]");
  const row = page.locator("#report-out .visits-table tr", { has: page.locator(".cell-btn", { hasText: visitId }) });
  await row.waitFor({ timeout: 10000 });
  return row;
}

async function therapistVisit(page, url, clientCode, key = TKEY) {
  await page.goto(url);
  await visible(page, "#s-signin");
  await page.fill("#key", key);
  await page.click("#signin-form button[type=submit]");
  await visible(page, "#s-create");
  await page.fill("#client-code", clientCode);
  await page.click("#create-form button[type=submit]");
  await visible(page, "#s-visit");
}

/* ================= the therapist's client history ================= */
// The launcher seeded three ended visits of C-H01 with T-01 (this page's
// therapist) and one with T-03. A new visit with C-H01: before admission
// the "Client history" panel shows the three earlier visits (not T-03's)
// as a trend with the therapist's own ratings and the subscales, and the
// client's page shows nothing of it.
await test("therapist: the client history panel shows the client's trend from three earlier visits (only this therapist's), before admission; the client's page shows none of it", async () => {
  const seed = JSON.parse(env.E2E_SEED_HISTORY || "[]");
  const mine = seed.filter((v) => v.therapist === "T-01" && v.client === "C-H01");
  const others = seed.filter((v) => v.therapist !== "T-01" && v.client === "C-H01");
  assert(mine.length === 3 && others.length === 1, "the launcher seeded the client's history");
  const tx = await newContext();
  const th = await newPage(tx, "therapist-history");
  await therapistVisit(th, BASE + "therapist.html", "C-H01");
  await visible(th, "#history-panel");
  // three earlier visits and this one; one trend point per scored visit
  await waitFor(async () => (await th.$eval("#history-body", (e) => e.dataset.visits || "")) === "4", "the history of C-H01 (4 visits)");
  assert(/^3 earlier visits with you\./.test(await text(th, "#history-count")), `count line: ${await text(th, "#history-count")}`);
  assert(await th.locator("#history-panel .trend-chart .pt-client").count() === 3, "three trend points");
  assert(await th.locator("#history-panel .trend-chart polyline.line-therapist").count() === 1, "the therapist's own ratings beside them");
  const rows = await th.$$eval("#history-panel figure.trend details table tbody tr", (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
  const want = mine.map((v, i) => [String(i + 1), String(v.total), String(v.ttotal)]);
  const got = rows.filter((r) => r[3] !== "—").map((r) => [r[0], String(Number(r[3])), String(Number(r[4]))]);
  assert(JSON.stringify(got) === JSON.stringify(want), `trend table ${JSON.stringify(got)} vs seeded ${JSON.stringify(want)}`);
  // the subscales (the four ap-end items) as series, with their table
  assert(await th.locator("#history-panel .subscale-chart polyline.line-series").count() === 4, "four subscale lines");
  const body = await text(th, "#history-body");
  const shown = await th.$$eval("#history-body .hist-visit", (li) => li.map((e) => e.dataset.visitId));
  assert(mine.every((v) => shown.includes(v.visit_id)) && !shown.includes(others[0].visit_id), "T-01's three visits, not T-03's");
  assert(body.includes("Visit 4 (this visit)"), "the current visit is listed");
  await shot(th, "therapist-client-history");
  // the client's page: no history, no other visit's scores
  const invite = (await th.inputValue("#invite-link")).split("#invite=")[1];
  results.secrets.push(invite);
  const cx = await newContext();
  const cl = await newPage(cx, "client-history");
  await cl.goto(`${BASE}client.html#invite=${invite}`);
  await visible(cl, "#s-consent");
  assert(await cl.locator("#history-panel, .trend-chart, .hist-visit").count() === 0, "the client's page has no history");
  const ctext = await cl.evaluate(() => document.body.innerText);
  assert(!/history/i.test(ctext) && !ctext.includes("28.5"), "nothing of the history on the client's page");
  await cx.close();
  await tx.close();
});

/* ================= TURN: a client that can reach only the TURN server ================= */
// launcher.py runs coturn beside Janus and puts the client's browser (a
// second Chromium) in a namespace of its own, where nftables drops every
// packet but TURN (UDP/TCP 3478) and Janus's signalling, with pages whose
// config.json has the TURN credential and iceTransportPolicy "relay". The
// therapist's browser stays where it is, direct to Janus.

// A page's selected candidate pair (both candidates) and the types of all
// the local candidates its PeerConnection gathered.
async function icePath(page) {
  return page.evaluate(async () => {
    const st = await window.alliancePage.pc.getStats();
    let pairId = null;
    const locals = [];
    st.forEach((x) => {
      if (x.type === "transport" && x.selectedCandidatePairId) pairId = x.selectedCandidatePairId;
      if (x.type === "local-candidate") locals.push(x.candidateType);
    });
    const pair = pairId ? st.get(pairId) : null;
    if (!pair) return { locals };
    const l = st.get(pair.localCandidateId), r = st.get(pair.remoteCandidateId);
    return {
      locals, state: pair.state, nominated: pair.nominated,
      responsesReceived: pair.responsesReceived, bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived,
      local: { type: l.candidateType, relayProtocol: l.relayProtocol, address: l.address, url: l.url },
      remote: { type: r.candidateType, address: r.address, port: r.port },
    };
  });
}

// coturn's log (verbose) about one username: its sessions, whether each
// allocation succeeded, the peers it was allowed to reach, and the bytes
// relayed to and from peers when a session closed ("peer usage").
function turnSessions(user) {
  const log = readFileSync(env.E2E_TURN_LOG, "utf8");
  const ids = new Set([...log.matchAll(/session (\d+): new, realm=<[^>]*>, username=<([^>]*)>/g)]
    .filter((m) => m[2] === user).map((m) => m[1]));
  const out = [];
  for (const id of ids) {
    const lines = log.split("\n").filter((l) => l.includes(`session ${id}:`));
    const usage = lines.map((l) => /peer usage: .*rp=(\d+), rb=(\d+), sp=(\d+), sb=(\d+)/.exec(l)).find(Boolean);
    out.push({
      id,
      allocated: lines.some((l) => l.includes("ALLOCATE processed, success")),
      // a permission ("peer A") or a channel ("peer A:port") for that peer
      peers: [...new Set(lines.map((l) => (/: peer ([\d.]+)(?::\d+)? lifetime updated/.exec(l) || [])[1]).filter(Boolean))],
      usage: usage ? { rp: +usage[1], rb: +usage[2], sp: +usage[3], sb: +usage[4] } : null,
    });
  }
  return out;
}

await test("config.json: a bad iceServers entry stops the pages with a message that names it", async () => {
  const x = await newContext();
  const real = JSON.parse(await (await fetch(BASE + "config.json")).text());
  await x.route("**/config.json", (route) => route.fulfill({
    contentType: "application/json",
    body: JSON.stringify({ ...real, iceServers: [{ urls: `turn:${SERVER_IP}:3478` }] }),   // no username/credential
  }));
  const p = await newPage(x, "client-bad-config");
  await p.goto(BASE + "client.html#invite=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  await visible(p, "#s-error");
  const msg = await text(p, "#error-status");
  assert(msg.includes("not set up correctly") && msg.includes('iceServers[0]: a turn: URL needs "username"'), `message: ${msg}`);
  await shot(p, "client-bad-config");
  const l = await newPage(x, "landing-bad-config");
  await l.goto(BASE);
  await waitFor(async () => (await text(l, "#status")).includes("config.json is not valid"), "the landing page's message");
  assert((await text(l, "#status")).includes("needs \"username\""), "it names the problem");
  await x.close();
});

const TURN_VISIT = "TURN: a client that can reach only the TURN server (nftables, relay policy) holds a full visit — relay candidate pair, video both ways, pulses over the relayed data channel, the end pulse; coturn relayed it";
await test(TURN_VISIT, async () => {
  // the path: from the relay-only namespace no packet reaches the server
  // but TURN and signalling, at either of Janus's addresses (one of them is
  // on that namespace's own link, where Janus gathers a host candidate too);
  // from here (the therapist's namespace) the same echo answers
  const probe = JSON.parse(env.E2E_PROBE);
  const tryPath = (host, ns = null) => JSON.parse(execFileSync(ns ? "ip" : "/usr/bin/python3",
    [...(ns ? ["netns", "exec", ns, "/usr/bin/python3"] : []), probe.py, "try", host, String(probe.port)], { encoding: "utf8" }));
  const direct = tryPath(probe.hosts[0]);
  assert(direct.udp && direct.tcp, `the probe's echo answers the therapist's namespace (${JSON.stringify(direct)})`);
  for (const host of probe.hosts) {
    const blocked = tryPath(host, env.E2E_RELAY_NS);
    assert(!blocked.udp && !blocked.tcp, `the relay-only namespace has no direct path to ${host} (${JSON.stringify(blocked)}): nftables must drop it`);
  }

  const tx = await newContext();
  const th = await newPage(tx, "therapist-turn");
  await therapistVisit(th, BASE + "therapist.html", "C-E2E-TURN");
  const invite = (await th.inputValue("#invite-link")).split("#invite=")[1];
  results.secrets.push(invite);
  const visitId = await th.evaluate(() => window.alliancePage.visitId);
  const rb = await chromium.launch({ executablePath: env.E2E_RELAY_CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  try {
    const cx = await rb.newContext({ viewport: { width: 1280, height: 800 } });
    // the server check there: Janus over WebSocket through the rules, and the TURN server named
    const lp = await newPage(cx, "landing-turn");
    await lp.goto(env.E2E_RELAY_BASE);
    await waitFor(async () => (await text(lp, "#status")).includes("Connected, plugin loaded"), "the server check in the relay-only namespace");
    const ice = await text(lp, "#d-ice");
    assert(ice.includes(`turn:${SERVER_IP}:3478?transport=udp`) && ice.includes("relay only"), `the landing page names the TURN server: ${ice}`);
    assert((await text(lp, "#d-transport")) === "WebSocket", "signalling over WebSocket");
    await lp.close();
    const cl = await newPage(cx, "client-turn");
    await cl.goto(`${env.E2E_RELAY_BASE}client.html#invite=${invite}`);
    await visible(cl, "#s-consent");
    await cl.check("input[name=research][value=no]");
    await cl.click("#consent-form button[type=submit]");
    await waitFor(() => cl.$eval("#join-btn", (b) => !b.disabled), "camera and connection checks", 15000);
    await cl.click("#join-btn");
    await waitFor(async () => (await text(cl, "#wait-status")).includes("You are in the waiting room"), "the waiting room");
    await visible(th, "#admit");
    await th.click("#admit");
    await visible(cl, "#s-call");
    await bothWays(cl, th, "through TURN", 15000);
    await waitFor(() => cl.evaluate(() => window.alliancePage.dcOpen), "the client's data channel");

    // the client's media goes through the TURN server: it gathered relay
    // candidates only, and its nominated pair is relay -> Janus's address
    const cp = await waitFor(async () => { const p = await icePath(cl); return p.local ? p : null; }, "the client's selected pair");
    assert(cp.locals.length > 0 && cp.locals.every((x) => x === "relay"), `the client gathered relay candidates only (${cp.locals})`);
    // Chrome reports the pair's latest check: while a consent-freshness
    // check is outstanding the selected pair reads "in-progress" although it
    // succeeded long ago -- so "checked and answered" is the test, plus the
    // bytes it carried each way
    const answered = cp.state === "succeeded" || (cp.state === "in-progress" && cp.responsesReceived > 0);
    assert(cp.local.type === "relay" && answered && cp.nominated === true && cp.bytesSent > 0 && cp.bytesReceived > 0,
      `the client's selected pair is a nominated relay one that carried the call: ${JSON.stringify(cp)}`);
    assert(cp.remote.address === SERVER_IP && cp.local.address === SERVER_IP, `relayed by ${cp.local.address} to Janus at ${cp.remote.address}`);
    const tp = await icePath(th);
    assert(tp.local && tp.local.type === "host", `the therapist's own leg stays direct (${JSON.stringify(tp.local)})`);
    const live = turnSessions(env.E2E_TURN_USER);
    assert(live.some((x) => x.allocated && x.peers.includes(SERVER_IP)), `coturn allocated for the page's username and let it reach Janus: ${JSON.stringify(live)}`);
    console.log(`      TURN: client ${cp.local.type}/${cp.local.relayProtocol} via ${cp.local.url} -> ${cp.remote.type} ${cp.remote.address}; therapist ${tp.local.type}`);
    await shot(cl, "client-turn-call");

    // a pulse over the relayed data channel, answered
    await th.click("#send-pulse");
    await visible(cl, "#overlay-slot .pulse");
    const pid = await cl.getAttribute("#overlay-slot .pulse", "data-pulse-id");
    const sl = cl.locator("#overlay-slot .vas-slider");
    for (let i = 0; i < (await sl.count()); i++) await pointVas(cl, sl.nth(i), 0.8);
    await cl.click("#overlay-slot .pulse button[type=submit]");
    await cl.locator("#overlay-slot .pulse").waitFor({ state: "detached", timeout: 10000 });
    const r = await waitFor(() => {
      const x = sql(`SELECT a.final, p.delivered_via FROM answers a JOIN pulses p USING (pulse_id) WHERE pulse_id = ${q(pid)}`);
      return x.length ? x : null;
    }, "the pulse's answer row", 5000);
    assert(r[0].final === 1 && r[0].delivered_via === "datachannel", `answer row ${JSON.stringify(r[0])}`);

    // the end pulse (its answer goes over the same data channel), then the client leaves
    await th.click("#end-visit");
    await visible(th, "#end-confirm");
    await th.click("#end-yes");
    await visible(cl, "#end-slot .pulse");
    const epid = await cl.getAttribute("#end-slot .pulse", "data-pulse-id");
    const es = cl.locator("#end-slot .vas-slider");
    for (let i = 0; i < (await es.count()); i++) await pointVas(cl, es.nth(i), 0.9);
    await cl.click("#end-slot button[type=submit]");
    await visible(cl, "#s-thanks");
    const e = sql(`SELECT a.final, p.kind, p.role FROM answers a JOIN pulses p USING (pulse_id) WHERE pulse_id = ${q(epid)}`);
    assert(e.length === 1 && e[0].final === 1 && e[0].kind === "end" && e[0].role === "client", `end answer ${JSON.stringify(e)}`);
    await visible(th, "#mirror-slot .pulse");
    await th.click("#mirror-slot button.secondary");   // Not now
    await visible(th, "#s-done");
    const v = sql(`SELECT state FROM visits WHERE visit_id = ${q(visitId)}`);
    assert(v.length === 1 && v[0].state !== "live", `the visit ended (${JSON.stringify(v)})`);

    // coturn relayed the call: when the client's allocation closed it
    // counted the bytes to and from Janus (several seconds of video each way)
    const done = await waitFor(() => {
      const x = turnSessions(env.E2E_TURN_USER).filter((s) => s.usage && s.usage.rb > 0);
      return x.length ? x : null;
    }, "coturn's usage of the client's allocation", 15000);
    const relayed = done.reduce((a, s) => ({ rb: a.rb + s.usage.rb, sb: a.sb + s.usage.sb }), { rb: 0, sb: 0 });
    assert(relayed.rb > 100000 && relayed.sb > 100000, `coturn relayed ${relayed.rb} bytes from Janus and ${relayed.sb} to it`);
    console.log(`      TURN: coturn relayed ${relayed.sb} bytes to Janus and ${relayed.rb} from it`);
  } finally {
    await rb.close();
    await tx.close();
  }
});

/* ================= two instances, one database ================= */
// Behind a load balancer a client may reach the instance that does not
// hold the visit: the plugin answers 498 other_instance with the servers
// of the one that does, and the page follows by itself (docs/api.md, Scale).
await test("two instances: a client link opened on the other instance follows the visit there (498) by itself — waiting room, admitted, video both ways", async () => {
  const A = JSON.parse(env.E2E_PAIR_A), B = JSON.parse(env.E2E_PAIR_B);
  const q = (urls) => urls.map((u) => `janus=${encodeURIComponent(u)}`).join("&");
  const tx = await newContext({ permissions: ["clipboard-read", "clipboard-write"] });
  const th = await newPage(tx, "therapist-a");
  await therapistVisit(th, `${BASE}therapist.html?${q(A)}`, "C-E2E-ROUTE");
  const invite = (await th.inputValue("#invite-link")).split("#invite=")[1];
  results.secrets.push(invite);
  // the client's page is pointed at B (as a load balancer might send it)
  const cx = await newContext();
  const cl = await newPage(cx, "client-b");
  await cl.goto(`${BASE}client.html?${q(B)}#invite=${invite}`);
  await visible(cl, "#s-consent");
  await cl.check("input[name=research][value=yes]");
  await cl.click("#consent-form button[type=submit]");
  await visible(cl, "#s-check");
  await waitFor(() => cl.$eval("#join-btn", (b) => !b.disabled), "camera and connection checks", 15000);
  assert((await cl.evaluate(() => window.alliancePage.servers)).join(",") === B.join(","), "the page starts on B");
  await cl.click("#join-btn");
  await visible(cl, "#s-wait");
  // "You are in the waiting room" is the joined state ("Joining the waiting room…" comes first, on B)
  await waitFor(async () => (await text(cl, "#wait-status")).includes("You are in the waiting room"), "the waiting room (on A)");
  const servers = await cl.evaluate(() => window.alliancePage.servers);
  assert(servers.join(",") === A.join(","), `the page moved to A's servers: ${servers}`);
  await visible(th, "#admit");
  assert((await text(th, "#waiting-status")).includes("C-E2E-ROUTE is in the waiting room"), "A's therapist sees the client waiting");
  await th.click("#admit");
  await visible(cl, "#s-call");
  await videoPlays(cl, "#remote-video");
  await videoPlays(th, "#remote-video");
  await bothWays(th, cl, "video both ways after the move");
  await shot(cl, "client-followed-498");
  await tx.close();
  await cx.close();
});

/* ================= live supervision: the supervisor watches ================= */
// A visit with research consent, live; the supervisor page's "Watch live"
// on its row of the Visits report: both videos play (the therapist's and the client's,
// told apart by Chromium's fake camera frames counting on each page — here
// it is enough that each <video> plays and is a different track), and both
// participants' pages show the note; when the supervisor stops, the note
// goes.
await test("supervisor: Watch live shows the therapist's and the client's video; both participants' pages say a supervisor is watching, and stop saying it when they leave", async () => {
  const tx = await newContext();
  const th = await newPage(tx, "therapist-observed");
  await therapistVisit(th, BASE + "therapist.html", "C-E2E-OBS");
  const invite = (await th.inputValue("#invite-link")).split("#invite=")[1];
  results.secrets.push(invite);
  const visitId = await th.evaluate(() => window.alliancePage.visitId);
  assert(visitId, "the therapist page knows its visit id");
  const cx = await newContext();
  const cl = await newPage(cx, "client-observed");
  await cl.goto(`${BASE}client.html#invite=${invite}`);
  await visible(cl, "#s-consent");
  await cl.check("input[name=research][value=yes]");
  await cl.click("#consent-form button[type=submit]");
  await visible(cl, "#s-check");
  await waitFor(() => cl.$eval("#join-btn", (b) => !b.disabled), "camera and connection checks", 15000);
  await cl.click("#join-btn");
  await visible(th, "#admit");
  await th.click("#admit");
  await visible(cl, "#s-call");
  await bothWays(th, cl, "before the supervisor watches");
  assert(await th.locator("#observer-note").isHidden() && await cl.locator("#observer-note").isHidden(), "no note before anyone watches");
  // the supervisor signs in and watches: the Visits report of this
  // client, whose live visit's row has "Watch live"
  const sx = await newContext();
  const sp = await newPage(sx, "supervisor-watch");
  const row = await supervisorVisitRow(sp, BASE, SKEY, "C-E2E-OBS", visitId);
  assert(await row.locator(".watch-btn").count() === 1, "the live, consented visit's row offers Watch live");
  await row.locator(".watch-btn").click();
  assert(await sp.inputValue("#watch-visit") === visitId, "the row's visit id is the one watched");
  await visible(sp, "#watch-view");
  const tv = await videoPlays(sp, "#watch-therapist");
  const cv = await videoPlays(sp, "#watch-client");
  const ids = await sp.evaluate(() => ["watch-therapist", "watch-client"].map((id) =>
    document.getElementById(id).srcObject.getVideoTracks().map((t) => t.id).join()));
  assert(ids[0] && ids[1] && ids[0] !== ids[1], `two different video tracks: ${ids}`);
  assert(await sp.evaluate(() => ["watch-therapist", "watch-client"].every((id) =>
    document.getElementById(id).srcObject.getAudioTracks().length === 1)), "each seat's audio is there too");
  console.log(`      watching: therapist ${tv.w}x${tv.h}, client ${cv.w}x${cv.h}`);
  // the supervisor sends nothing
  const sent = await sp.evaluate(async () => {
    let n = 0;
    const pc = window.alliancePage.watchPc;
    if (!pc) return -1;
    (await pc.getStats()).forEach((s) => { if (s.type === "outbound-rtp") n += s.packetsSent || 0; });
    return n;
  });
  assert(sent === 0, `the supervisor's page sent ${sent} RTP packets`);
  // both participants' pages say so
  for (const [p, who] of [[th, "therapist"], [cl, "client"]]) {
    await waitFor(async () => await p.locator("#observer-note").isVisible(), `the ${who} page's note`);
    assert(/supervisor is watching/i.test(await text(p, "#observer-note")), `${who} note: ${await text(p, "#observer-note")}`);
  }
  await shot(sp, "supervisor-watch-live");
  await shot(th, "therapist-observed");
  await shot(cl, "client-observed");
  // the participants' own call is unchanged
  await bothWays(th, cl, "while the supervisor watches");
  // stop watching: the notes go
  await sp.click("#watch-stop");
  await waitFor(async () => (await sp.locator("#watch-view").isHidden()), "the watch view closes");
  for (const [p, who] of [[th, "therapist"], [cl, "client"]]) {
    await waitFor(async () => await p.locator("#observer-note").isHidden(), `the ${who} page's note goes`);
  }
  await sx.close();
  await cx.close();
  await tx.close();
});

/* ================= Janus signed tokens on the pages ================= */
// The launcher's third instance runs with token_auth: every Janus API
// request needs a signed token. Tokens are made here with node's crypto
// (HMAC-SHA1, as the Janus documentation makes them). A page without one
// is told the server wants one; an expired token is refused with its
// reason; the therapist signs in with a token, the client link the page
// copies carries the client token the plugin made, and with that link
// alone the client gets through the waiting room into the call; a
// supervisor's token runs the Visits report of that instance.
function signToken(secret, descriptors, expiry = Math.floor(Date.now() / 1000) + 3600) {
  const text = [expiry, "janus", ...descriptors].join(",");
  return `${text}:${createHmac("sha1", secret).update(text).digest("base64")}`;
}

await test("signed tokens (token_auth): a key-only sign-in is told the server wants a token, an expired token is refused with its reason; the therapist signs in with a token, the client's link carries the client token — waiting room, admitted, video both ways; a supervisor's token runs a report", async () => {
  const TB = env.E2E_TOKEN_BASE;
  const SECRET = env.E2E_TOKEN_SECRET;
  const tt = signToken(SECRET, ["janus.plugin.alliance", "alliance.therapist=T-TOK"]);
  const st = signToken(SECRET, ["janus.plugin.alliance", "alliance.supervisor"]);
  const old = signToken(SECRET, ["janus.plugin.alliance", "alliance.therapist=T-TOK"], Math.floor(Date.now() / 1000) - 60);
  results.secrets.push(tt, st, old);
  const tx = await newContext();
  // a key on this server: the core refuses the session, the page says why
  const p0 = await newPage(tx, "therapist-token-needed");
  await p0.goto(TB + "therapist.html");
  await visible(p0, "#s-signin");
  await p0.fill("#key", TKEY);
  await p0.click("#signin-form button[type=submit]");
  await waitFor(async () => (await text(p0, "#signin-status")).includes("signed token"), "the token-required message");
  await shot(p0, "therapist-token-needed");
  // an expired token: the core refuses it too (its own check)
  await p0.fill("#key", old);
  await p0.click("#signin-form button[type=submit]");
  await waitFor(async () => (await text(p0, "#signin-status")).includes("signed token"), "the expired token's message");
  assert(await p0.evaluate(() => sessionStorage.getItem("ap.therapist.key") === null), "a refused token is not kept");
  await p0.close();
  // a valid token of another role: the core lets it in, the plugin refuses it (475, with the reason)
  const p1 = await newPage(tx, "therapist-token-wrong-role");
  await p1.goto(TB + "therapist.html");
  await visible(p1, "#s-signin");
  await p1.fill("#key", st);
  await p1.click("#signin-form button[type=submit]");
  await waitFor(async () => (await text(p1, "#signin-status")).includes("token was refused"), "the wrong-role token's message");
  assert((await text(p1, "#signin-status")).includes("grants no alliance.therapist"), await text(p1, "#signin-status"));
  await p1.close();

  // the therapist with a token; the link carries the client token
  const th = await newPage(tx, "therapist-token");
  await therapistVisit(th, TB + "therapist.html", "C-E2E-TOKEN", tt);
  const link = await th.inputValue("#invite-link");
  const hash = new URLSearchParams(link.split("#")[1]);
  const invite = hash.get("invite"), ctok = hash.get("token");
  results.secrets.push(invite, ctok);
  assert(invite && /^\d+,janus,janus\.plugin\.alliance:[A-Za-z0-9+/]{27}=$/.test(ctok || ""), `the link carries a client token: ${link.replace(/invite=[^&]+/, "invite=…").replace(/token=.*/, "token=…")}`);
  const visitId = await th.evaluate(() => window.alliancePage.visitId);
  const row = sql(`SELECT therapist_code FROM visits WHERE visit_id = ${q(visitId)}`, env.E2E_TOKEN_DB);
  assert(row.length === 1 && row[0].therapist_code === "T-TOK", `stored under the token's code: ${JSON.stringify(row)}`);
  // the client: that link alone
  const cx = await newContext();
  const cl = await newPage(cx, "client-token");
  await cl.goto(link);
  await visible(cl, "#s-consent");
  assert(!(await cl.evaluate(() => window.location.hash)).includes("token"), "the token left the address bar with the invite");
  await cl.check("input[name=research][value=no]");
  await cl.click("#consent-form button[type=submit]");
  await waitFor(() => cl.$eval("#join-btn", (b) => !b.disabled), "camera and connection checks", 15000);
  await cl.click("#join-btn");
  await visible(th, "#admit");
  await th.click("#admit");
  await visible(cl, "#s-call");
  await bothWays(th, cl, "on the token_auth server");
  // a reload keeps the tab's token: the client is back in the call by itself
  await cl.reload();
  await visible(cl, "#s-call");
  await bothWays(th, cl, "after the client's reload");
  await shot(cl, "client-token-call");
  // a supervisor's token: the Visits report of this instance
  const sx = await newContext();
  await supervisorVisitRow(await newPage(sx, "supervisor-token"), TB, st, "C-E2E-TOKEN", visitId);
  await sx.close();
  await cx.close();
  await tx.close();
}, { allow: /Ooops: 403 Unauthorized request/ });

/* ---------------- done ---------------- */
await browser.close();
results.secondsTotal = (Date.now() - T0) / 1000;
writeFileSync(env.E2E_RESULTS, JSON.stringify(results), { mode: 0o600 });
process.exit(0);
