/*
 * callclass.h — "good" or "poor" for one leg's stream (one leg, one
 * medium, over some stretch of time), by the published thresholds of the
 * Microsoft Teams Call Quality Dashboard (CQD) stream classification
 * (docs/metrics.md, "Good and poor streams", cites the page):
 *
 *   audio poor when any of: packet loss rate > 10 %, jitter > 30 ms,
 *         round trip > 500 ms, ratio of concealed samples > 0.07;
 *   video, the first metric available decides: frame rate < 7 fps poor
 *         (else good); without a frame rate, loss after repair > 15 % poor.
 *
 * A criterion whose metric is unknown (negative, NaN) is not applied; a
 * stream with nothing known is "good" (no threshold crossed). CQD's own
 * "Audio Degradation Avg" and "Video Local Frame Loss Percentage" need the
 * receiving endpoint's decoder and are not measured here.
 *
 * This is a different thing from quality_badge() (quality.h), which grades
 * a whole audio path by its E-model MOS as good / fair / poor.
 *
 * Pure: numbers in, a set of reasons out; callclass_annotate() adds the
 * result to a summary object with jansson. No Janus, no I/O.
 */
#ifndef ALLIANCE_CALLCLASS_H
#define ALLIANCE_CALLCLASS_H

#include <stdbool.h>
#include <jansson.h>

/* thresholds (CQD): poor when the metric is above (below, for fps) */
#define CALLCLASS_AUDIO_LOSS_PCT 10.0     /* Packet Loss Rate > 0.1 */
#define CALLCLASS_AUDIO_JITTER_MS 30.0    /* Jitter > 30 */
#define CALLCLASS_AUDIO_RTT_MS 500.0      /* Round Trip > 500 */
#define CALLCLASS_AUDIO_CONCEALED 0.07    /* Ratio Concealed Samples Avg > 0.07 */
#define CALLCLASS_VIDEO_FPS 7.0           /* Video Frame Rate Avg < 7 */
#define CALLCLASS_VIDEO_LOSS_PCT 15.0     /* Video Post FECPLR > 0.15 */

/* the thresholds crossed, as bits */
#define CALLCLASS_LOSS 0x01u
#define CALLCLASS_JITTER 0x02u
#define CALLCLASS_RTT 0x04u
#define CALLCLASS_CONCEALED 0x08u
#define CALLCLASS_FPS 0x10u
#define CALLCLASS_VIDEO_LOSS 0x20u
#define CALLCLASS_ALL 0x3fu

/* One stream's figures; a negative value (or NaN) is unknown. */
typedef struct callclass_in {
	bool video;
	double loss_pct;           /* audio: packet loss; video: loss after repair */
	double jitter_ms;          /* audio */
	double rtt_ms;             /* audio */
	double concealed_ratio;    /* audio, 0..1 */
	double fps;                /* video */
} callclass_in;

/* Every field unknown, for the medium given. */
void callclass_in_init(callclass_in *in, bool video);

/* The thresholds crossed (0: good). */
unsigned callclass_poor(const callclass_in *in);

/* "good" when reasons is 0, else "poor". */
const char *callclass_name(unsigned reasons);

/* The slug of one bit ("loss", "jitter", "rtt", "concealed", "fps",
 * "video_loss"), NULL for anything else. */
const char *callclass_reason_name(unsigned bit);

/* Read loss_pct, jitter_ms, rtt_ms, concealed_ratio and fps (numbers;
 * null or absent = unknown) from a leg summary object and set its "class"
 * and "poor_reasons" (an array of slugs, in the order of the bits above).
 * A summary whose "packets" is 0 received nothing: its fps is unknown.
 * Returns the reasons; does nothing (returns 0) if summary is not an
 * object. */
unsigned callclass_annotate(json_t *summary, bool video);

/* Every leg summary of a legs object ({leg: {audio: {…}, video: {…}}}, the
 * shape of a quality context's "legs" and of the visit report's "legs")
 * gets callclass_annotate(). Returns the rule for poor video over them:
 * "poor" if any video leg that measured something (packets > 0 on an up
 * leg; a known loss_pct on a down leg, which has no packet count) is
 * poor, "good" if none is, NULL if no video leg measured anything. */
const char *callclass_legs(json_t *legs);

/* A quality context (quality.h): callclass_legs() on its "legs", and its
 * "video_class" set to the result (null when NULL). */
void callclass_context(json_t *ctx);

#endif
