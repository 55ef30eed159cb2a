// Alliance Pulse web client — strings.
//
// The pages' HTML carries the English text, marked with data-i18n="key"
// (text), data-i18n-aria="key" (aria-label) or data-i18n-ph="key"
// (placeholder). applyLanguage(lang) replaces them from STRINGS[lang] where a
// translation exists. Messages built in JavaScript come from t(key, vars)
// and fall back to English. The client-facing pages (client, kiosk, the
// pulse form) are translated into German as well; the therapist and
// supervisor pages are English for now, with their strings in one place.
//
// Pulse texts themselves come from the server in the language given at
// `join` (the instrument's translations), not from here.

const en = {
  "lang.name": "English",
  // connection
  "conn.connecting": "Connecting to the visit server…",
  "conn.unreachable": "We cannot reach the visit server right now.",
  "conn.unreachable.detail": "Check your internet connection and try again. If it keeps happening, tell your therapist or the clinic. (Tried: {servers})",
  "conn.token": "This visit server lets in only people with a signed token.",
  "conn.token.detail": "Therapists and supervisors: sign in with the token your organisation gave you. Clients: use the whole link you were sent (it carries the token); if it still does not work, ask your therapist for a new link.",
  "conn.noplugin": "The visit server is running, but Alliance Pulse is not available on it.",
  "conn.nojanus": "A part of this page did not load (janus.js). Please reload the page.",
  "conn.lost": "Connection lost — reconnecting…",
  "conn.restored": "Connection restored.",
  "conn.reconnecting": "Reconnecting…",
  "conn.back": "Back — the connection is restored.",
  "conn.gone": "The connection to the visit server was lost.",
  "conn.gone.detail": "Press Try again to continue where you left off.",
  "conn.good": "Connection: good ({ms}, {transport})",
  "conn.ok": "Connection: usable, a little slow ({ms}, {transport})",
  "conn.slow": "Connection: slow ({ms}, {transport}). The video may stutter.",
  // errors by code
  "err.generic": "Something went wrong: {error}",
  "err.config": "This page is not set up correctly, so the visit cannot start. Please tell the clinic.",
  "err.475": "That key is not valid. Check it and try again.",
  "err.475.token": "That token was refused ({error}). Ask for a new one.",
  "err.477": "This link is not valid. It may be incomplete, or the visit is already over. Please ask your therapist for a new link.",
  "err.478": "This link has already been used. For your privacy each link works only once, in one browser. If you are on another device or browser now, ask your therapist for a new link.",
  "err.link_gone": "This link is no longer valid.",
  "err.link_gone.detail": "Your therapist may have made a new link for you, or the visit is over. Please ask your therapist for a new link.",
  "err.486": "The server has too many open visits right now. Please try again in a few minutes.",
  "err.476": "This visit is no longer open.",
  "err.487": "The client still has an open question. Wait until it is answered or closed.",
  "err.483": "That is not possible right now: {error}",
  "err.490": "This question has closed.",
  "err.489": "This question was already answered.",
  "err.496": "Your answer could not be saved. Please try again.",
  "err.498": "This visit runs on another server, which could not be reached. Please try again in a moment, or ask your therapist for a new link.",
  "err.timeout": "The server did not answer in time. Please try again.",
  // devices
  "dev.asking": "Asking your browser for the camera and microphone…",
  "dev.ok": "Camera and microphone are working.",
  "dev.denied": "Your browser blocked the camera and microphone.",
  "dev.denied.detail": "To join the video call, allow the camera and microphone for this page (usually the camera icon in the address bar, or your browser's site settings), then press Try again.",
  "dev.missing": "No camera or microphone was found.",
  "dev.missing.detail": "Connect a camera and microphone (or use a device that has them), then press Try again.",
  "dev.busy": "The camera or microphone is in use by another program.",
  "dev.busy.detail": "Close other video programs (or tabs), then press Try again.",
  "dev.insecure": "This page must be opened over a secure connection (https) to use the camera.",
  "dev.other": "The camera or microphone could not be started ({error}).",
  "dev.sound.playing": "Playing a short tone…",
  "dev.sound.done": "Did you hear the tone? If not, check your volume or headphones.",
  "privacy.tip": "If you can, find a place where nobody can overhear you, or use headphones. You can still continue.",
  // waiting and call
  "wait.joining": "Joining the waiting room…",
  "wait.waiting": "You are in the waiting room. Your therapist will let you in shortly.",
  "wait.admitted": "Your therapist let you in. Starting the call…",
  "call.live": "You are in the call.",
  "call.therapist_left": "Your therapist's connection dropped. Please wait — they can come back.",
  "call.therapist_back": "Your therapist is back.",
  "call.remote_stopped": "Your therapist's video stopped — connection lost, waiting for them to come back.",
  "call.remote_starting": "Your therapist is back — their video is starting…",
  "call.self_reconnecting": "Your connection was interrupted — reconnecting…",
  "resume.joining": "Taking you back to your visit…",
  "call.sound": "Start sound",
  "call.ended": "The visit has ended.",
  "call.end_pulse_wait": "One moment — a last short question is coming…",
  "call.thanks": "Thank you. Your answers are saved. You can close this page now.",
  "call.thanks_noanswer": "Thank you. You can close this page now.",
  "call.closed": "The visit is closed.",
  "call.observed": "A supervisor is watching this session (you agreed to this for research). Say so if you would rather they did not: joining again without research consent ends it at once.",
  // pulse form
  "pulse.send": "Send",
  "pulse.notnow": "Not now",
  "pulse.sending": "Sending…",
  "pulse.saved": "Thank you — your answer is saved.",
  "pulse.dismissed": "No problem — the question is closed.",
  "pulse.expired": "The question closed.",
  "pulse.need_all": "Choose an answer for each question to send.",
  "pulse.unset": "not answered yet",
  "pulse.value": "{value} on a scale from {min} ({min_label}) to {max} ({max_label})",
  "pulse.closes": "Closes in {time}",
  "pulse.keys": "Use the arrow keys or the numbers 0–9 to choose; Home and End go to the ends.",
  "pulse.private": "Your answers go to the research record, not to your therapist item by item.",
  "pulse.error": "Your answer could not be sent: {error}",
  "pulse.retrying": "Saving your answer another way…",
  // kiosk
  "kiosk.waiting": "Please wait a moment — your session will start soon.",
  "kiosk.thanks": "Thank you! Your answer is saved.",
  "kiosk.done": "All done — thank you. This device will be ready for the next person in a moment.",
  "kiosk.replaced": "This visit continues on another device.",
  "kiosk.replaced.detail": "Its link was opened on another kiosk or browser. Press Start over to set this device up again.",
};

const de = {
  "lang.name": "Deutsch",
  // client page, static texts
  "client.title": "Ihr Online-Termin",
  "consent.h": "Bevor es losgeht",
  "consent.what": "Sie nehmen gleich an einem Video-Termin mit Ihrer Therapeutin oder Ihrem Therapeuten teil. Während des Termins kann eine kurze Frage erscheinen, wie es Ihnen gerade mit dem Gespräch geht. Sie können jederzeit „Nicht jetzt“ wählen.",
  "consent.stored.h": "Was gespeichert wird",
  "consent.stored.1": "Ihre Antworten auf die kurzen Fragen, mit der Uhrzeit.",
  "consent.stored.2": "Zahlen zur Verbindungsqualität (zum Beispiel Paketverluste, Verzögerung, eingefrorenes Bild).",
  "consent.stored.3": "Nur Ihr Kürzel (zum Beispiel „C-0042“), nie Ihr Name. Bild und Ton werden nicht aufgezeichnet.",
  "consent.research.legend": "Dürfen Ihre Antworten (ohne Namen) auch für Forschung verwendet werden?",
  "consent.research.yes": "Ja, für Forschung verwenden",
  "consent.research.no": "Nein, nur für meine Behandlung",
  "consent.research.note": "Ihre Entscheidung ändert nichts an Ihrer Behandlung. Ohne Zustimmung wird nur gespeichert, was Ihre Therapeutin oder Ihr Therapeut für die Behandlung braucht.",
  "consent.lang": "Sprache",
  "consent.continue": "Weiter",
  "consent.need": "Bitte wählen Sie Ja oder Nein.",
  "check.h": "Technik-Check",
  "check.camera": "Kamera und Mikrofon",
  "check.preview": "Ihr Kamerabild",
  "check.mic": "Mikrofon-Pegel",
  "check.mic.hint": "Sprechen Sie kurz: der Balken sollte sich bewegen.",
  "check.speaker": "Lautsprecher",
  "check.speaker.play": "Testton abspielen",
  "check.connection": "Verbindung",
  "check.privacy.legend": "Ihre Umgebung",
  "check.private.q": "Sind Sie an einem Ort, an dem niemand mithören kann?",
  "check.headphones.q": "Verwenden Sie Kopfhörer?",
  "yes": "Ja",
  "no": "Nein",
  "check.retry": "Erneut versuchen",
  "check.join": "In den Warteraum",
  "wait.h": "Warteraum",
  "call.h": "Ihr Termin",
  "call.self": "Sie",
  "call.remote": "Ihre Therapeutin / Ihr Therapeut",
  "end.h": "Der Termin ist beendet",
  "thanks.h": "Vielen Dank",
  "error.h": "Das hat nicht geklappt",
  "invite.h": "Einladungscode eingeben",
  "invite.label": "Einladungscode",
  "invite.go": "Weiter",
  "skip": "Zum Inhalt springen",
  "consent.stored.4": "Ihre Therapeutin / Ihr Therapeut sieht Ihre Antworten nicht einzeln. Bei einem sehr niedrigen Wert bekommt sie oder er einen Hinweis, bei Ihnen nachzufragen.",
  // kiosk
  "kiosk.title": "Kurze Rückmeldung",
  "kiosk.setup.h": "Dieses Gerät einrichten",
  "kiosk.setup.p": "Für die Therapeutin / den Therapeuten: Öffnen Sie den Link des Termins auf diesem Gerät oder geben Sie hier den Einladungscode ein.",
  "kiosk.consent.p": "Während und nach Ihrer Sitzung erscheinen hier kurze Fragen, wie die Sitzung für Sie läuft. Mit Ihren Antworten wird nur Ihr Kürzel gespeichert, nie Ihr Name. Ihre Therapeutin / Ihr Therapeut sieht Ihre Antworten nicht einzeln.",
  "kiosk.wait.h": "Danke",
  "kiosk.pulse.h": "Frage",
  "kiosk.next": "Bereit für die nächste Person",
  "kiosk.reset": "Von vorn beginnen",
  "kiosk.welcome.h": "Willkommen",
  "kiosk.ready.h": "Schön, dass Sie da sind",
  "kiosk.ready": "Hier erscheinen kurze Fragen. Sie antworten mit einem Tippen.",
  "kiosk.waiting": "Bitte einen Moment – Ihre Sitzung beginnt gleich.",
  "kiosk.thanks": "Danke! Ihre Antwort ist gespeichert.",
  "kiosk.done": "Fertig – vielen Dank. Dieses Gerät ist gleich für die nächste Person bereit.",
  "kiosk.replaced": "Dieser Termin geht auf einem anderen Gerät weiter.",
  "kiosk.replaced.detail": "Sein Link wurde auf einem anderen Gerät oder in einem anderen Browser geöffnet. Drücken Sie „Von vorn beginnen“, um dieses Gerät neu einzurichten.",
  // dynamic
  "conn.connecting": "Verbindung zum Termin-Server wird aufgebaut…",
  "conn.unreachable": "Der Termin-Server ist gerade nicht erreichbar.",
  "conn.unreachable.detail": "Prüfen Sie Ihre Internetverbindung und versuchen Sie es erneut. Wenn es weiter nicht klappt, sagen Sie Ihrer Therapeutin oder Ihrem Therapeuten Bescheid. (Versucht: {servers})",
  "conn.token": "Dieser Termin-Server lässt nur Personen mit einem signierten Token ein.",
  "conn.token.detail": "Therapeutinnen, Therapeuten und Supervision: Melden Sie sich mit dem Token Ihrer Einrichtung an. Klientinnen und Klienten: Verwenden Sie den vollständigen Link, den Sie bekommen haben (er enthält das Token); wenn es dann nicht klappt, bitten Sie um einen neuen Link.",
  "conn.lost": "Verbindung unterbrochen – neuer Versuch…",
  "conn.restored": "Verbindung wieder da.",
  "conn.reconnecting": "Verbindung wird wiederhergestellt…",
  "conn.back": "Wieder da – die Verbindung steht.",
  "conn.gone": "Die Verbindung zum Termin-Server ist abgebrochen.",
  "conn.gone.detail": "Drücken Sie „Erneut versuchen“, um weiterzumachen.",
  "conn.good": "Verbindung: gut ({ms}, {transport})",
  "conn.ok": "Verbindung: brauchbar, etwas langsam ({ms}, {transport})",
  "conn.slow": "Verbindung: langsam ({ms}, {transport}). Das Bild kann ruckeln.",
  "err.generic": "Etwas ist schiefgegangen: {error}",
  "err.config": "Diese Seite ist nicht richtig eingerichtet, daher kann der Termin nicht beginnen. Bitte sagen Sie der Praxis Bescheid.",
  "err.477": "Dieser Link ist ungültig. Vielleicht ist er unvollständig oder der Termin ist schon vorbei. Bitte fragen Sie nach einem neuen Link.",
  "err.478": "Dieser Link wurde schon benutzt. Zu Ihrem Schutz funktioniert jeder Link nur einmal, in einem Browser. Wenn Sie jetzt an einem anderen Gerät oder in einem anderen Browser sind, fragen Sie nach einem neuen Link.",
  "err.link_gone": "Dieser Link ist nicht mehr gültig.",
  "err.link_gone.detail": "Vielleicht hat Ihre Therapeutin / Ihr Therapeut einen neuen Link für Sie erstellt, oder der Termin ist vorbei. Bitte fragen Sie nach einem neuen Link.",
  "err.490": "Diese Frage ist geschlossen.",
  "err.489": "Diese Frage wurde schon beantwortet.",
  "err.496": "Ihre Antwort konnte nicht gespeichert werden. Bitte versuchen Sie es erneut.",
  "err.498": "Dieser Termin läuft auf einem anderen Server, der nicht erreichbar war. Bitte versuchen Sie es gleich noch einmal oder bitten Sie Ihre Therapeutin oder Ihren Therapeuten um einen neuen Link.",
  "err.timeout": "Der Server hat nicht rechtzeitig geantwortet. Bitte versuchen Sie es erneut.",
  "dev.asking": "Ihr Browser wird nach Kamera und Mikrofon gefragt…",
  "dev.ok": "Kamera und Mikrofon funktionieren.",
  "dev.denied": "Ihr Browser hat Kamera und Mikrofon blockiert.",
  "dev.denied.detail": "Erlauben Sie Kamera und Mikrofon für diese Seite (meist über das Kamera-Symbol in der Adresszeile) und drücken Sie dann „Erneut versuchen“.",
  "dev.missing": "Keine Kamera oder kein Mikrofon gefunden.",
  "dev.missing.detail": "Schließen Sie eine Kamera und ein Mikrofon an und drücken Sie dann „Erneut versuchen“.",
  "dev.busy": "Kamera oder Mikrofon werden von einem anderen Programm benutzt.",
  "dev.busy.detail": "Schließen Sie andere Video-Programme und drücken Sie dann „Erneut versuchen“.",
  "dev.other": "Kamera oder Mikrofon konnten nicht gestartet werden ({error}).",
  "dev.sound.playing": "Ein kurzer Ton wird abgespielt…",
  "dev.sound.done": "Haben Sie den Ton gehört? Wenn nicht, prüfen Sie die Lautstärke oder die Kopfhörer.",
  "privacy.tip": "Wenn möglich, suchen Sie einen Ort, an dem niemand mithört, oder verwenden Sie Kopfhörer. Sie können trotzdem weitermachen.",
  "wait.joining": "Sie kommen in den Warteraum…",
  "wait.waiting": "Sie sind im Warteraum. Ihre Therapeutin oder Ihr Therapeut holt Sie gleich herein.",
  "wait.admitted": "Sie wurden hereingeholt. Der Anruf startet…",
  "call.live": "Sie sind im Gespräch.",
  "call.therapist_left": "Die Verbindung Ihrer Therapeutin / Ihres Therapeuten ist abgebrochen. Bitte warten Sie kurz.",
  "call.therapist_back": "Ihre Therapeutin / Ihr Therapeut ist wieder da.",
  "call.remote_stopped": "Das Bild Ihrer Therapeutin / Ihres Therapeuten ist stehen geblieben – Verbindung unterbrochen, wir warten, bis sie oder er zurück ist.",
  "call.remote_starting": "Ihre Therapeutin / Ihr Therapeut ist wieder da – das Bild startet…",
  "call.self_reconnecting": "Ihre Verbindung wurde unterbrochen – sie wird wiederhergestellt…",
  "resume.joining": "Sie kommen zurück in Ihren Termin…",
  "replaced.h": "Dieser Termin geht in einem anderen Fenster weiter",
  "replaced.p": "Ihr Termin wurde in einem anderen Tab oder Fenster geöffnet und ist dorthin umgezogen. Dieses hier können Sie schließen.",
  "replaced.p2": "Wenn Sie lieber hier weitermachen möchten, drücken Sie den Knopf: das andere Fenster hält dann an.",
  "replaced.continue": "Hier weitermachen",
  "call.sound": "Ton einschalten",
  "call.ended": "Der Termin ist beendet.",
  "call.end_pulse_wait": "Einen Moment – eine letzte kurze Frage kommt gleich…",
  "call.thanks": "Vielen Dank. Ihre Antworten sind gespeichert. Sie können diese Seite jetzt schließen.",
  "call.thanks_noanswer": "Vielen Dank. Sie können diese Seite jetzt schließen.",
  "call.closed": "Der Termin ist geschlossen.",
  "call.observed": "Eine Supervisorin oder ein Supervisor sieht bei diesem Termin zu (Sie haben dem für die Forschung zugestimmt). Sagen Sie es, wenn Sie das nicht möchten: ein erneutes Beitreten ohne Forschungs-Zustimmung beendet es sofort.",
  "pulse.send": "Senden",
  "pulse.notnow": "Nicht jetzt",
  "pulse.sending": "Wird gesendet…",
  "pulse.saved": "Danke – Ihre Antwort ist gespeichert.",
  "pulse.dismissed": "Kein Problem – die Frage ist geschlossen.",
  "pulse.expired": "Die Frage ist geschlossen.",
  "pulse.need_all": "Bitte wählen Sie bei jeder Frage eine Antwort.",
  "pulse.unset": "noch nicht beantwortet",
  "pulse.value": "{value} auf einer Skala von {min} ({min_label}) bis {max} ({max_label})",
  "pulse.closes": "Schließt in {time}",
  "pulse.keys": "Wählen Sie mit den Pfeiltasten oder den Zahlen 0–9; Pos1 und Ende springen an die Enden.",
  "pulse.private": "Ihre Antworten gehen in die Forschungsdaten, nicht einzeln an Ihre Therapeutin / Ihren Therapeuten.",
  "pulse.error": "Ihre Antwort konnte nicht gesendet werden: {error}",
  "pulse.retrying": "Ihre Antwort wird auf anderem Weg gespeichert…",
};

export const STRINGS = { en, de };
export const LANGUAGES = Object.keys(STRINGS);

let current = "en";

export function language() {
  return current;
}

// Pick the page language: an explicit choice, else the browser's, else en.
export function chooseLanguage(explicit = null) {
  const wanted = [explicit, ...(navigator.languages || [navigator.language])].filter(Boolean);
  for (const w of wanted) {
    const primary = String(w).toLowerCase().split(/[-_]/)[0];
    if (STRINGS[primary]) return primary;
  }
  return "en";
}

export function t(key, vars = {}) {
  const s = (STRINGS[current] && STRINGS[current][key]) ?? en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] !== undefined ? String(vars[k]) : m));
}

// Translate the static texts of `root` into `lang` (English is what the
// HTML already says, kept in data-i18n-en so a switch back works).
export function applyLanguage(lang, root = document) {
  current = STRINGS[lang] ? lang : "en";
  document.documentElement.lang = current;
  const dict = STRINGS[current];
  for (const e of root.querySelectorAll("[data-i18n]")) {
    if (!e.dataset.i18nEn) e.dataset.i18nEn = e.textContent;
    const v = current === "en" ? e.dataset.i18nEn : dict[e.dataset.i18n];
    if (v) e.textContent = v;
  }
  for (const [attr, data] of [["aria-label", "i18nAria"], ["placeholder", "i18nPh"]]) {
    const sel = attr === "aria-label" ? "[data-i18n-aria]" : "[data-i18n-ph]";
    for (const e of root.querySelectorAll(sel)) {
      const enKey = `${data}En`;
      if (!e.dataset[enKey]) e.dataset[enKey] = e.getAttribute(attr) || "";
      const v = current === "en" ? e.dataset[enKey] : dict[e.dataset[data]];
      if (v) e.setAttribute(attr, v);
    }
  }
}

// What a page says when its start failed: [headline, detail]. A bad
// config.json (config.mjs ConfigError) gets its own headline, with the
// technical reason as the detail for whoever fixes it.
export function startError(e) {
  const msg = e && e.message ? e.message : String(e);
  if (e && e.name === "ConfigError") return [t("err.config"), msg];
  return [t("err.generic", { error: msg }), ""];
}

// A plugin error answer (or an AllianceError) as a sentence for people.
export function errorText(err) {
  const code = err && (err.error_code ?? err.code);
  const raw = (err && (err.error || err.message)) || String(err);
  if (code === "timeout") return t("err.timeout");
  if (code === "unreachable") return t("conn.unreachable");
  if (code === "token_required") return t("conn.token");
  const key = `err.${code}`;
  if (en[key]) return t(key, { error: raw });
  return t("err.generic", { error: code ? `${raw} (${code})` : raw });
}
