/*
 * quality.h — a visit's connection quality over time: 1 s windows of the
 * four legs (client_up, client_down, therapist_up, therapist_down) × two
 * media, summed into 5 s buckets (the stored samples), kept for the last
 * `context_s` seconds (a pulse's quality context) and for the whole visit
 * (the end pulse's context), and turned into incidents.
 *
 * Pure: meter windows in (meter.h), sums, JSON text and incident records
 * out; time passed in; no Janus, no I/O. The shell owns one quality_visit
 * per visit and feeds it from its timer, under the visit lock.
 *
 * Summaries (quality_sum) add windows: counts add up; loss % is lost over
 * expected where packets were counted (up legs, and down legs whose
 * reports gave deltas), else the mean of the windows' loss %; jitter and
 * RTT are means of the windows that knew them, with their maxima; bitrate
 * and frame rate are totals over the summed time. Paths (what one
 * participant hears from the other) get an E-model R and MOS (emodel.h):
 * the relay keeps the sender's sequence gaps and timing, so the loss and
 * jitter the receiver reports describe the whole path (the sender's up leg
 * stands in until the receiver has reported); the RTT is the sum of the
 * two legs' round trips.
 *
 * Incidents, per leg and medium (docs/metrics.md has the thresholds):
 *   freeze     a video freeze the meter counted: start = end - duration
 *   stall      no media for >= 2 s, from its detection until media returns
 *   loss_burst loss >= 10 % in a window, until 3 windows in a row < 3 %
 *   high_rtt   RTT >= 400 ms, until 3 windows in a row < 300 ms
 * Reconnects and slow_link come from Janus callbacks; the shell records
 * them with quality_note().
 */
#ifndef ALLIANCE_QUALITY_H
#define ALLIANCE_QUALITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "meter.h"

typedef enum quality_leg {
	Q_CLIENT_UP = 0, Q_CLIENT_DOWN, Q_THERAPIST_UP, Q_THERAPIST_DOWN, Q_LEGS
} quality_leg;
#define Q_MEDIA 2                   /* 0 audio, 1 video */
#define Q_BUCKET_US 5000000LL       /* samples and context granularity */
#define Q_RING_MAX 240              /* buckets kept: 20 minutes of context at most */
#define Q_LOSS_OPEN_PCT 10.0
#define Q_LOSS_CLOSE_PCT 3.0
#define Q_RTT_OPEN_MS 400.0
#define Q_RTT_CLOSE_MS 300.0
#define Q_CLOSE_WINDOWS 3

typedef struct quality_sum {
	int64_t windows;
	int64_t down_windows;                     /* of them, down (RTCP) windows */
	int64_t start_us, end_us, dur_us;
	int64_t packets, expected, lost;          /* lost >= 0 per window */
	int64_t counted_windows;                  /* windows with expected > 0 */
	double loss_sum; int64_t loss_n;           /* windows' loss % (fallback) */
	double jitter_sum, jitter_max; int64_t jitter_n;
	double rtt_sum, rtt_max; int64_t rtt_n;
	int64_t bytes, frames, freezes, freeze_ms, stalls, stall_ms;
	int64_t pli, fir, nack;
} quality_sum;

void quality_sum_add(quality_sum *s, const meter_window *w);
void quality_sum_merge(quality_sum *into, const quality_sum *from);
double quality_sum_loss_pct(const quality_sum *s);   /* -1 unknown */
double quality_sum_jitter_ms(const quality_sum *s);  /* -1 unknown */
double quality_sum_rtt_ms(const quality_sum *s);     /* -1 unknown */
double quality_sum_bitrate_kbps(const quality_sum *s);
double quality_sum_fps(const quality_sum *s);

typedef enum quality_incident_kind {
	QI_FREEZE = 0, QI_LOSS_BURST, QI_HIGH_RTT, QI_STALL, QI_RECONNECT, QI_SLOW_LINK
} quality_incident_kind;

typedef struct quality_incident {
	quality_leg leg;
	int medium;                  /* 0 audio, 1 video, -1 any */
	quality_incident_kind kind;
	int64_t started_us, ended_us;   /* on the caller's clock */
	double peak;                 /* worst loss %, RTT ms, or duration ms */
} quality_incident;

#define Q_INCIDENTS_MAX 64       /* completed incidents waiting for the shell */

typedef struct quality_track {   /* incident state of one leg and medium */
	bool loss_open, rtt_open, stall_open;
	int64_t loss_start, rtt_start, stall_start;
	int loss_calm, rtt_calm;
	double loss_peak, rtt_peak;
} quality_track;

typedef struct quality_visit {
	int context_s;
	quality_sum cur[Q_LEGS][Q_MEDIA];          /* the bucket being filled */
	int64_t cur_start_us;
	quality_sum *ring;                          /* [cap][Q_LEGS][Q_MEDIA] */
	int cap, head, n;                           /* completed buckets */
	quality_sum total[Q_LEGS][Q_MEDIA];
	quality_track track[Q_LEGS][Q_MEDIA];
	quality_incident done[Q_INCIDENTS_MAX];     /* completed, not yet taken */
	int n_done;
	int64_t incidents_total;
	int64_t dropped_incidents;
} quality_visit;

/* context_s: seconds of context for in-session pulses (1..1200). */
int quality_visit_init(quality_visit *q, int context_s);
void quality_visit_free(quality_visit *q);

/* Add one second's window of a leg and medium (w->video picks the medium). */
void quality_feed(quality_visit *q, quality_leg leg, const meter_window *w);

/* Close the current bucket if Q_BUCKET_US has passed since it started (or
 * `force`): it goes to the ring and *bucket (if not NULL) receives a copy
 * of it. Returns true when a bucket was closed. */
bool quality_roll(quality_visit *q, int64_t now_us, bool force,
	quality_sum bucket[Q_LEGS][Q_MEDIA]);

/* Record an incident from outside (reconnect, slow_link). */
void quality_note(quality_visit *q, quality_leg leg, int medium,
	quality_incident_kind kind, int64_t started_us, int64_t ended_us);

/* Close every open incident at now (the visit ends). */
void quality_close_all(quality_visit *q, int64_t now_us);

/* Take the completed incidents (copied to out, at most max); returns n. */
int quality_take_incidents(quality_visit *q, quality_incident *out, int max);

/* JSON (compact, NUL-terminated, malloc'ed; free()) summarising the last
 * `seconds` (0 = the whole visit): {"window_s", "legs":{leg:{audio:{…},
 * video:{…}}}, "paths":{"client_to_therapist":{"r","mos",…}, …},
 * "incidents": n}. */
char *quality_context_json(const quality_visit *q, int seconds);

/* Sum of the last `seconds` (the current bucket and enough completed ones)
 * of one leg and medium, into *out. */
void quality_recent(const quality_visit *q, int seconds, quality_leg leg, int medium,
	quality_sum *out);

/* One bucket of one leg+medium as JSON (the stored sample), in buf: the
 * shape of a down leg (rtt, nack, pli, fir) if its windows were down
 * windows, else of an up leg (packets, bitrate, stalls, fps, freezes).
 * Returns the length, or -1 if it did not fit (buf then holds ""); 512
 * bytes always suffice. */
int quality_sum_format(const quality_sum *s, bool video, char *buf, size_t len);

/* "good" / "fair" / "poor" for a path MOS (>= 4.0, >= 3.1, else). */
const char *quality_badge(double mos);

const char *quality_leg_name(quality_leg leg);
const char *quality_incident_name(quality_incident_kind k);

#endif
