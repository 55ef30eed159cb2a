// Alliance Pulse web client — a pulse (one instrument) as a form, and the
// ways its answer reaches the server.
//
// PulseForm renders PROTOCOL.md's `pulse` message: VAS items as a slider
// that starts with NO value (a preset biases answers: the thumb appears only
// where the person puts it), Likert items as big radio buttons, "Send"
// (refused with a hint until every item has an answer) and "Not now".
// Mouse, touch and keyboard work alike:
//   VAS   click/tap/drag on the line; keys: ←/→ (or ↓/↑) one step,
//         Page Up/Down a tenth of the scale, Home/End the ends, 0–9 jump
//         to that tenth of the scale; the first arrow key starts mid-scale
//   Likert  Tab into the group, arrow keys choose, Space selects
//   Escape anywhere in the form = "Not now"
//
// Answers go on the data channel (`answer`, acknowledged by `ack` only after
// the store committed) when it is open; when it is not, or no ack comes
// within DC_ACK_MS, or the store failed, the same answer goes by the
// `answer` request (the kiosk's only path). A final answer is never
// duplicated: a second one is refused (`already_answered`), which counts as
// success here since the first one was stored.

import { el } from "./ui.mjs";
import { t, errorText } from "./i18n.mjs";
import { AllianceError } from "./alliance-client.mjs";

const DC_ACK_MS = 5000;
let formSeq = 0;

function decimalsOf(step) {
  const s = String(step);
  if (s.includes("e-")) return parseInt(s.split("e-")[1], 10);
  return s.includes(".") ? s.split(".")[1].length : 0;
}

function snap(v, scale) {
  const { min, max, step } = scale;
  const k = Math.round((Math.min(max, Math.max(min, v)) - min) / step);
  return Number((min + k * step).toFixed(decimalsOf(step)));
}

function fmtTime(s) {
  s = Math.max(0, Math.round(s));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/* ---------------- VAS ---------------- */
class Vas {
  constructor(item, ids, onChange) {
    this.scale = item.scale;
    this.value = null;
    this.onChange = onChange;
    const s = this.scale;
    this.minLabelId = `${ids.base}-min`;
    this.maxLabelId = `${ids.base}-max`;
    this.thumb = el("span", { class: "vas-thumb", hidden: true });
    this.fill = el("span", { class: "vas-fill" });
    this.line = el("span", { class: "vas-line" }, this.fill, this.thumb);
    this.slider = el("div", {
      class: "vas-slider", role: "slider", tabindex: "0",
      "aria-labelledby": ids.label,
      "aria-describedby": `${this.minLabelId} ${this.maxLabelId} ${ids.keys}`,
      "aria-valuemin": String(s.min), "aria-valuemax": String(s.max),
      "aria-valuetext": t("pulse.unset"),
      "data-item": item.id,
    }, this.line);
    this.readout = el("span", { class: "vas-readout", "aria-hidden": "true", text: "—" });
    this.root = el("div", { class: "vas" },
      this.slider,
      el("div", { class: "vas-labels" },
        el("span", { id: this.minLabelId, class: "vas-min" }, el("b", { text: String(s.min) }), " ", s.min_label || ""),
        this.readout,
        el("span", { id: this.maxLabelId, class: "vas-max" }, s.max_label || "", " ", el("b", { text: String(s.max) }))));
    this.wire();
  }

  set(v) {
    const s = this.scale;
    this.value = snap(v, s);
    const frac = (this.value - s.min) / (s.max - s.min);
    const pct = `${(frac * 100).toFixed(2)}%`;
    this.thumb.hidden = false;
    this.thumb.style.left = pct;
    this.fill.style.width = pct;
    const txt = this.value.toFixed(decimalsOf(s.step));
    this.readout.textContent = txt;
    this.slider.setAttribute("aria-valuenow", String(this.value));
    this.slider.setAttribute("aria-valuetext", t("pulse.value", {
      value: txt, min: s.min, max: s.max, min_label: s.min_label || "", max_label: s.max_label || "",
    }));
    this.slider.classList.add("is-set");
    this.onChange();
  }

  fromPointer(clientX) {
    const r = this.line.getBoundingClientRect();
    const frac = r.width > 0 ? (clientX - r.left) / r.width : 0.5;
    const s = this.scale;
    this.set(s.min + Math.min(1, Math.max(0, frac)) * (s.max - s.min));
  }

  wire() {
    const s = this.scale;
    let dragging = false;
    this.slider.addEventListener("pointerdown", (e) => {
      if (e.button !== undefined && e.button !== 0) return;
      dragging = true;
      try { this.slider.setPointerCapture(e.pointerId); } catch (_) { /* synthetic */ }
      this.slider.focus();
      this.fromPointer(e.clientX);
      e.preventDefault();
    });
    this.slider.addEventListener("pointermove", (e) => { if (dragging) this.fromPointer(e.clientX); });
    const stop = () => { dragging = false; };
    this.slider.addEventListener("pointerup", stop);
    this.slider.addEventListener("pointercancel", stop);
    this.slider.addEventListener("keydown", (e) => {
      const range = s.max - s.min;
      const mid = s.min + range / 2;
      const big = Math.max(s.step, range / 10);
      const cur = this.value;
      let v = null;
      switch (e.key) {
        case "ArrowRight": case "ArrowUp": v = cur === null ? mid : cur + s.step; break;
        case "ArrowLeft": case "ArrowDown": v = cur === null ? mid : cur - s.step; break;
        case "PageUp": v = cur === null ? mid : cur + big; break;
        case "PageDown": v = cur === null ? mid : cur - big; break;
        case "Home": v = s.min; break;
        case "End": v = s.max; break;
        default:
          if (/^[0-9]$/.test(e.key) && !e.ctrlKey && !e.metaKey && !e.altKey) v = s.min + (Number(e.key) / 10) * range;
      }
      if (v !== null) {
        this.set(v);
        e.preventDefault();
      }
    });
  }
}

/* ---------------- Likert ---------------- */
class Likert {
  constructor(item, ids, onChange) {
    const s = item.scale;
    const min = Number.isInteger(s.min) ? s.min : 1;
    const points = s.points;
    this.value = null;
    this.inputs = [];
    const opts = [];
    for (let i = 0; i < points; i++) {
      const v = min + i;
      const label = Array.isArray(s.labels) ? s.labels[i] : "";
      const input = el("input", { type: "radio", name: ids.base, value: String(v), "data-item": item.id });
      input.addEventListener("change", () => {
        if (input.checked) {
          this.value = v;
          onChange();
        }
      });
      this.inputs.push(input);
      opts.push(el("label", { class: "likert-opt" }, input,
        el("span", { class: "likert-num", text: String(v) }),
        label ? el("span", { class: "likert-label", text: label }) : null));
    }
    this.root = el("div", { class: `likert${points <= 7 ? " likert-row" : ""}`, role: "radiogroup", "aria-labelledby": ids.label }, opts);
    this.root.style.setProperty("--points", String(points));
  }

  get slider() {
    return this.inputs[0];
  }
}

/* ---------------- the form ---------------- */
export class PulseForm {
  // variant: "overlay" (over the call), "page" (after the call), "kiosk"
  constructor(pulse, { variant = "overlay", onSubmit, onDismiss, dismissible = true } = {}) {
    this.pulse = pulse;
    this.variant = variant;
    this.onSubmit = onSubmit;
    this.onDismiss = onDismiss;
    this.busy = false;
    this.closed = false;
    const base = `pf${++formSeq}`;
    const ins = pulse.instrument || {};
    const titleId = `${base}-title`;
    const keysId = `${base}-keys`;
    const hintId = `${base}-hint`;
    this.items = [];
    const itemEls = (ins.items || []).map((item, i) => {
      const ids = { base: `${base}-i${i}`, label: `${base}-i${i}-text`, keys: keysId };
      const ctl = item.scale && item.scale.type === "likert"
        ? new Likert(item, ids, () => this.update())
        : new Vas(item, ids, () => this.update());
      this.items.push({ item, ctl });
      return el("div", { class: "pulse-item", role: "group", "aria-labelledby": ids.label },
        el("p", { id: ids.label, class: "pulse-q", text: item.text }),
        ctl.root);
    });
    this.countdown = el("span", { class: "pulse-countdown", "aria-hidden": "true" });
    this.message = el("p", { class: "pulse-msg", role: "status", "aria-live": "polite" });
    this.hint = el("p", { id: hintId, class: "pulse-hint", text: t("pulse.need_all") });
    this.sendBtn = el("button", { type: "submit", class: "primary", "aria-disabled": "true", "aria-describedby": hintId, text: t("pulse.send") });
    this.notNowBtn = dismissible
      ? el("button", { type: "button", class: "secondary", text: t("pulse.notnow"), on: { click: () => this.dismiss() } })
      : null;
    const hasVas = this.items.some((x) => x.ctl instanceof Vas);
    this.form = el("form", { class: "pulse-form", novalidate: true },
      itemEls,
      hasVas ? el("p", { id: keysId, class: "pulse-keys sr-only", text: t("pulse.keys") }) : el("span", { id: keysId, hidden: true }),
      this.hint,
      el("div", { class: "pulse-actions" }, this.sendBtn, this.notNowBtn),
      this.message);
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.submit(); });
    this.root = el("section", {
      class: `pulse pulse-${variant}`,
      role: variant === "overlay" ? "dialog" : "region",
      "aria-modal": variant === "overlay" ? "false" : null,
      "aria-labelledby": titleId,
      "data-pulse-id": pulse.pulse_id,
      "data-kind": pulse.kind,
    },
    el("header", { class: "pulse-head" },
      el("h2", { id: titleId, class: "pulse-title", tabindex: "-1", text: ins.title || "" }),
      this.countdown),
    this.form);
    this.root.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.notNowBtn && !this.busy) {
        e.preventDefault();
        this.dismiss();
      }
    });
    this.expiresAt = typeof pulse.expires_in_s === "number" ? Date.now() + pulse.expires_in_s * 1000 : null;
    this.tick();
    this.timer = setInterval(() => this.tick(), 1000);
  }

  tick() {
    if (!this.expiresAt) return;
    const left = (this.expiresAt - Date.now()) / 1000;
    // a countdown only when it matters (the last two minutes), so an end
    // pulse with minutes of grace does not rush anybody
    this.countdown.textContent = left <= 120 ? t("pulse.closes", { time: fmtTime(left) }) : "";
    if (left <= 0 && !this.closed) {
      this.setMessage("warn", t("pulse.expired"));
      this.close("expired");
    }
  }

  complete() {
    return this.items.every((x) => x.ctl.value !== null);
  }

  update() {
    const ok = this.complete();
    this.sendBtn.setAttribute("aria-disabled", ok || this.busy ? String(this.busy) : "true");
    this.hint.hidden = ok;
    if (ok && this.message.dataset.kind === "hint") this.setMessage(null, "");
  }

  responses() {
    const r = {};
    for (const { item, ctl } of this.items) r[item.id] = ctl.value;
    return r;
  }

  setMessage(kind, text) {
    this.message.textContent = text;
    this.message.dataset.kind = kind || "";
    this.message.className = `pulse-msg${kind ? ` pulse-msg-${kind}` : ""}`;
  }

  setBusy(b) {
    this.busy = b;
    this.root.classList.toggle("is-busy", b);
    if (this.notNowBtn) this.notNowBtn.disabled = b;
    this.update();
  }

  focusFirst() {
    const first = this.items[0];
    const target = first ? (first.ctl instanceof Vas ? first.ctl.slider : first.ctl.inputs[0]) : this.sendBtn;
    target.focus();
  }

  async submit() {
    if (this.busy || this.closed) return;
    if (!this.complete()) {
      this.setMessage("hint", t("pulse.need_all"));
      const missing = this.items.find((x) => x.ctl.value === null);
      if (missing) (missing.ctl instanceof Vas ? missing.ctl.slider : missing.ctl.inputs[0]).focus();
      return;
    }
    this.setBusy(true);
    this.setMessage(null, t("pulse.sending"));
    try {
      await this.onSubmit(this.responses(), this);
      this.setMessage("ok", t("pulse.saved"));
      this.close("answered");
    } catch (e) {
      this.setBusy(false);
      const code = e && (e.code ?? e.error_code);
      if (code === 490 || code === "expired") {
        this.setMessage("warn", t("pulse.expired"));
        this.close("expired");
      } else {
        this.setMessage("error", t("pulse.error", { error: errorText(e) }));
      }
    }
  }

  async dismiss() {
    if (this.busy || this.closed) return;
    this.setBusy(true);
    try {
      if (this.onDismiss) await this.onDismiss(this);
    } catch (_) { /* declining must always work for the person */ }
    this.setBusy(false);
    this.close("dismissed");
  }

  // Ends the form; the page listens with onClose(reason).
  close(reason) {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.root.classList.add("is-closed");
    if (this.onClose) this.onClose(reason);
  }
}

/* ---------------- delivery ---------------- */
// Waits for `ack` / `error` replies on the data channel for one client.
export class AnswerChannel {
  constructor(ac) {
    this.ac = ac;
    this.waiting = new Map();      // pulse_id -> {resolve, reject, ref}
    ac.on("dc", (msg) => this.onDc(msg));
  }

  onDc(msg) {
    if (msg.type === "ack" && this.waiting.has(msg.pulse_id)) {
      const w = this.waiting.get(msg.pulse_id);
      this.waiting.delete(msg.pulse_id);
      w.resolve(msg);
    } else if (msg.type === "error") {
      for (const [pid, w] of this.waiting) {
        if (msg.ref === w.ref || msg.ref === pid) {
          this.waiting.delete(pid);
          w.reject(new AllianceError(msg.code, msg.reason || msg.code, msg));
          return;
        }
      }
    }
  }

  viaDc(type, pulseId, extra = {}) {
    const ref = `${type}-${pulseId}-${Math.random().toString(36).slice(2, 8)}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(pulseId);
        reject(new AllianceError("no_ack", "no acknowledgement on the data channel"));
      }, DC_ACK_MS);
      this.waiting.set(pulseId, {
        ref,
        resolve: (m) => { clearTimeout(timer); resolve(m); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      if (!this.ac.sendDc({ type, pulse_id: pulseId, ref, ...extra })) {
        clearTimeout(timer);
        this.waiting.delete(pulseId);
        reject(new AllianceError("no_dc", "the data channel is not open"));
      }
    });
  }

  async viaRequest(pulseId, responses) {
    const r = await this.ac.request({ request: "answer", pulse_id: pulseId, responses, final: true }, { timeout: 15000 });
    if (r.data.alliance === "error") {
      if (r.data.error_code === 489) return r.data;      // stored before
      throw new AllianceError(r.data.error_code, r.data.error, r.data);
    }
    return r.data;
  }

  // The answer by the data channel if possible, else (or on a lost ack or a
  // store failure) by the `answer` request.
  async answer(pulseId, responses, { onFallback = () => {} } = {}) {
    if (this.ac.dc.open) {
      try {
        return await this.viaDc("answer", pulseId, { responses, final: true });
      } catch (e) {
        if (e.code === "already_answered") return { pulse_id: pulseId, stored: true };
        if (!["no_ack", "no_dc", "store_failed", "rate_limited"].includes(e.code)) throw e;
        onFallback(e);
      }
    }
    return this.viaRequest(pulseId, responses);
  }

  // "Not now": stored as declined, by the data channel when it is up, else
  // by the `dismiss` request (kiosks, after the call).
  async dismiss(pulseId) {
    if (this.ac.dc && this.ac.dc.open) {
      try {
        return await this.viaDc("dismiss", pulseId);
      } catch (_) {
        /* fall through to the request */
      }
    }
    try {
      const r = await this.ac.request({ request: "dismiss", pulse_id: pulseId }, { timeout: 15000 });
      return r.data.alliance === "error" ? null : r.data;
    } catch (_) {
      return null;
    }
  }
}
