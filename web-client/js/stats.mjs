// Alliance Pulse web client — the browser's own view of the call.
//
// Every STATS_PERIOD_MS the page sends a `stats` message on the `alliance`
// data channel: a digest of RTCPeerConnection.getStats() with the fields of
// PROTOCOL.md ("stats"). The plugin stores it as the client-side view of
// this participant's *_down leg and accepts about one every 2 s; it refuses
// the whole message when a field is out of range (negative, but for
// packetsLost) or not finite, so every value is checked here first and left
// out when unknown.

export const STATS_PERIOD_MS = 5000;

// Non-negative, except packetsLost: signed in webrtc-stats (duplicates make
// it negative), and the plugin keeps its sign.
const SIGNED = new Set(["packetsLost"]);

function num(v, name) {
  if (typeof v !== "number" || !Number.isFinite(v)) return undefined;
  return SIGNED.has(name) ? v : Math.max(0, v);
}

function pick(src, names) {
  const out = {};
  for (const n of names) {
    const v = num(src[n], n);
    if (v !== undefined) out[n] = v;
  }
  return out;
}

const LIMITATION = new Set(["none", "cpu", "bandwidth", "other"]);

// The digest of one getStats() report (an RTCStatsReport or a Map), or null
// when it has nothing of use yet.
export function statsDigest(report) {
  let inVideo = null, inAudio = null, outVideo = null, pair = null, selectedPairId = null;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video" && (!inVideo || (s.framesDecoded || 0) > (inVideo.framesDecoded || 0))) inVideo = s;
    else if (s.type === "inbound-rtp" && s.kind === "audio" && !inAudio) inAudio = s;
    else if (s.type === "outbound-rtp" && s.kind === "video" && !outVideo) outVideo = s;
    else if (s.type === "transport" && s.selectedCandidatePairId) selectedPairId = s.selectedCandidatePairId;
  });
  report.forEach((s) => {
    if (s.type !== "candidate-pair") return;
    if (selectedPairId ? s.id === selectedPairId : (s.nominated && s.state === "succeeded")) pair = s;
  });
  const d = {};
  if (inVideo) {
    d.inbound_video = pick(inVideo, ["freezeCount", "totalFreezesDuration", "framesDecoded",
      "framesDropped", "packetsLost", "jitter", "jitterBufferDelay"]);
  }
  if (inAudio) d.inbound_audio = pick(inAudio, ["concealedSamples", "totalSamplesReceived"]);
  if (outVideo) {
    const o = {};
    if (LIMITATION.has(outVideo.qualityLimitationReason)) o.qualityLimitationReason = outVideo.qualityLimitationReason;
    if (outVideo.qualityLimitationDurations && typeof outVideo.qualityLimitationDurations === "object") {
      o.qualityLimitationDurations = pick(outVideo.qualityLimitationDurations, ["cpu", "bandwidth", "other", "none"]);
    }
    d.outbound_video = o;
  }
  if (pair) d.candidate_pair = pick(pair, ["currentRoundTripTime", "availableOutgoingBitrate"]);
  return Object.keys(d).length ? d : null;
}

// Start sending the digest of ac.pc every STATS_PERIOD_MS; returns stop().
export function startStatsReporter(ac, { period = STATS_PERIOD_MS, onSent = () => {} } = {}) {
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    const pc = ac.pc;
    if (pc && ac.dc.open && pc.connectionState !== "closed") {
      try {
        const digest = statsDigest(await pc.getStats());
        if (digest && ac.sendDc({ type: "stats", ...digest })) onSent(digest);
      } catch (_) { /* the PeerConnection went away meanwhile */ }
    }
  };
  const timer = setInterval(tick, period);
  return () => { stopped = true; clearInterval(timer); };
}
