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

// Show exactly one of the page's screens (sections with class "screen"),
// move focus to its heading so keyboard and screen-reader users land there.
// The first screen a page shows keeps the browser's own start position.
let firstScreen = true;
export function showScreen(id, { focus = !firstScreen } = {}) {
  firstScreen = false;
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
export function setStatus(box, kind, headline, detail = "") {
  if (typeof box === "string") box = $(box);
  if (!box) return;
  box.hidden = false;
  box.className = `status status-${kind}`;
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  box.replaceChildren(el("p", { text: headline }));
  if (detail) box.append(el("p", { class: "detail", text: detail }));
}

export function clearStatus(box) {
  if (typeof box === "string") box = $(box);
  if (!box) return;
  box.hidden = true;
  box.replaceChildren();
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

// Attach a MediaStream to a <video>, start it, and report whether it plays
// (a browser may refuse sound without a user gesture: the caller can offer
// a "Start sound" button then).
export async function playStream(video, stream) {
  if (video.srcObject !== stream) video.srcObject = stream;
  try {
    await video.play();
    return true;
  } catch (e) {
    if (e && e.name === "AbortError") return true;   // replaced by a newer play()
    return false;
  }
}

export function fmtMs(ms) {
  return ms == null ? "—" : `${Math.round(ms)} ms`;
}

export function fmtNum(v, digits = 1) {
  return typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "—";
}

// sessionStorage that survives being unavailable (privacy modes).
export const store = {
  get(k) {
    try { return sessionStorage.getItem(k); } catch (_) { return null; }
  },
  set(k, v) {
    try { sessionStorage.setItem(k, v); } catch (_) { /* not kept */ }
  },
  del(k) {
    try { sessionStorage.removeItem(k); } catch (_) { /* nothing */ }
  },
};

// Fragment parameters (#invite=...): kept out of server logs and Referer.
export function hashParams() {
  return new URLSearchParams((window.location.hash || "").replace(/^#/, ""));
}

// The connection banner (#conn-banner) for the Janus session's state:
// "lost" shows a warning, "restored" says so for 3 s, "gone" hides it (the
// page then decides what to do). texts: { lost, restored }.
export function showConnection(s, texts) {
  const b = $("conn-banner");
  if (!b) return;
  if (s === "lost") {
    b.hidden = false;
    b.className = "conn-banner warn";
    b.textContent = texts.lost;
  } else if (s === "restored") {
    b.className = "conn-banner ok";
    b.textContent = texts.restored;
    setTimeout(() => { b.hidden = true; }, 3000);
  } else if (s === "gone") {
    b.hidden = true;
  }
}
