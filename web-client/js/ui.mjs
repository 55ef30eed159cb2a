// Alliance Pulse web client — small DOM helpers shared by the pages.

export const $ = (id) => document.getElementById(id);

// el("p", {class: "x", text: "hi", "aria-live": "polite"}, child, ...)
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k in e && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// The note that a supervisor is watching (therapist and client pages):
// shown while `observers` (from observer_joined / observer_left, or a join
// answer's participants.observers) is above 0. docs/api.md "Observers".
export function showObserved(observers, text) {
  const box = $("observer-note");
  if (!box) return;
  const on = Number.isInteger(observers) && observers > 0;
  box.textContent = on ? text : "";
  box.hidden = !on;
}

// Show exactly one of the page's screens (sections with class "screen"),
// move focus to its heading so keyboard and screen-reader users land there.
// The first screen a page shows keeps the browser's own start position.
let firstScreen = true;
export const screensShown = [];     // in order, for tests and debugging
export function showScreen(id, { focus = !firstScreen } = {}) {
  firstScreen = false;
  if (screensShown[screensShown.length - 1] !== id) screensShown.push(id);
  for (const s of document.querySelectorAll(".screen")) s.hidden = s.id !== id;
  const screen = $(id);
  if (focus && screen) {
    const h = screen.querySelector("h1, h2, [data-focus]");
    if (h) {
      if (!h.hasAttribute("tabindex")) h.setAttribute("tabindex", "-1");
      h.focus({ preventScroll: false });
    }
  }
  document.body.dataset.screen = id;
}

// A status box: kind is "pending" | "ok" | "error" | "warn". Errors interrupt
// a screen reader (role=alert); everything else is polite.
// A status must not outlive what it reports: pass { ms } for a notice that
// is true only for a moment ("Your therapist is back."), and it clears
// itself after ms unless something newer was put in the box meanwhile.
// Every setStatus/clearStatus supersedes what the box said before.
export function setStatus(box, kind, headline, detail = "", { ms = 0 } = {}) {
  if (typeof box === "string") box = $(box);
  if (!box) return;
  const token = String(Number(box.dataset.token || 0) + 1);
  box.dataset.token = token;
  box.hidden = false;
  box.className = `status status-${kind}`;
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  box.replaceChildren(el("p", { text: headline }));
  if (detail) box.append(el("p", { class: "detail", text: detail }));
  if (ms > 0) {
    setTimeout(() => {
      if (box.dataset.token === token) clearStatus(box);
    }, ms);
  }
}

export function clearStatus(box) {
  if (typeof box === "string") box = $(box);
  if (!box) return;
  box.dataset.token = String(Number(box.dataset.token || 0) + 1);
  box.hidden = true;
  box.replaceChildren();
}

// Clear the box only if it still shows a status whose first line is
// `headline` (so a newer message is left alone).
export function clearStatusIf(box, headline) {
  if (typeof box === "string") box = $(box);
  if (!box || box.hidden) return;
  const p = box.querySelector("p");
  if (p && p.textContent === headline) clearStatus(box);
}

// A polite announcement for screen readers (and a visible toast).
let toastTimer = null;
export function toast(text, { kind = "ok", ms = 4000 } = {}) {
  let t = $("toast");
  if (!t) {
    t = el("div", { id: "toast", class: "toast", role: "status", "aria-live": "polite", "aria-atomic": "true" });
    document.body.append(t);
  }
  t.className = `toast toast-${kind}`;
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, ms);
}

// A "really?" group: `trigger` shows `panel` and moves focus to its `yes`
// button; `no` hides it and gives focus back to `trigger`.
export function wireConfirm(trigger, panel, yes, no) {
  $(trigger).addEventListener("click", () => {
    $(panel).hidden = false;
    $(yes).focus();
  });
  $(no).addEventListener("click", () => {
    $(panel).hidden = true;
    $(trigger).focus();
  });
}

// Copy text to the clipboard; falls back to selecting an input's text.
export async function copyText(text, input = null) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (_) { /* fall through */ }
  if (input) {
    input.focus();
    input.select();
    try {
      return document.execCommand("copy");
    } catch (_) {
      return false;
    }
  }
  return false;
}

// Attach a MediaStream to a <video> and start it. Resolves true when it
// plays with sound, "muted" when the browser allowed it only without sound
// (no user gesture yet, e.g. right after a reload: the picture must come
// back without a click, so it plays muted and the caller offers a
// "Start sound" button that calls unmuteStream), false when it does not play.
export async function playStream(video, stream) {
  if (video.srcObject !== stream) video.srcObject = stream;
  try {
    await video.play();
    return video.muted && !video.defaultMuted ? "muted" : true;
  } catch (e) {
    if (e && e.name === "AbortError") return true;   // replaced by a newer play()
    if (e && e.name === "NotAllowedError" && !video.muted) {
      video.muted = true;
      try {
        await video.play();
        return "muted";
      } catch (_) {
        return false;
      }
    }
    return false;
  }
}

// The "Start sound" button's action: sound on (a user gesture) and play.
export async function unmuteStream(video, stream) {
  if (!video.defaultMuted) video.muted = false;
  return playStream(video, stream);
}

export function fmtMs(ms) {
  return ms == null ? "—" : `${Math.round(ms)} ms`;
}

export function fmtNum(v, digits = 1) {
  return typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "—";
}

// sessionStorage (this tab) and localStorage (this browser) that survive
// being unavailable (privacy modes).
function storage(kind) {
  const area = () => (kind === "local" ? window.localStorage : window.sessionStorage);
  return {
    get(k) {
      try { return area().getItem(k); } catch (_) { return null; }
    },
    set(k, v) {
      try { area().setItem(k, v); return true; } catch (_) { return false; }
    },
    del(k) {
      try { area().removeItem(k); } catch (_) { /* nothing */ }
    },
    keys(prefix = "") {
      try {
        const a = area();
        const out = [];
        for (let i = 0; i < a.length; i++) {
          const k = a.key(i);
          if (k && k.startsWith(prefix)) out.push(k);
        }
        return out;
      } catch (_) {
        return [];
      }
    },
  };
}
export const store = storage("session");
export const local = storage("local");

// Fragment parameters (#invite=...): kept out of server logs and Referer.
export function hashParams() {
  return new URLSearchParams((window.location.hash || "").replace(/^#/, ""));
}

// The connection banner (#conn-banner), the page's own connection to the
// visit: "lost" / "reconnecting" shows a warning until something else is
// shown; "restored" says so for 3 s and then goes; anything else empties it.
// texts: { lost, restored }.
// The banner stays in the accessibility tree (a live region that is
// display:none when its text changes is not announced everywhere): empty
// is its "hidden".
let bannerTimer = null;
export function showConnection(s, texts) {
  const b = $("conn-banner");
  if (!b) return;
  clearTimeout(bannerTimer);
  b.hidden = false;
  if (s === "lost" || s === "reconnecting") {
    b.className = "conn-banner warn";
    b.textContent = texts.lost;
    b.dataset.state = "reconnecting";
  } else if (s === "restored") {
    b.className = "conn-banner ok";
    b.textContent = texts.restored;
    b.dataset.state = "restored";
    bannerTimer = setTimeout(() => showConnection(null, texts), 3000);
  } else {
    b.className = "conn-banner";
    b.textContent = "";
    b.dataset.state = "";
  }
}
