/*
 * meter.h — connection quality of one leg and medium, from the RTP and RTCP
 * the server sees: the quality meter (docs/metrics.md has every formula).
 *
 * Two directions per leg (a participant's PeerConnection) and medium:
 *
 * - up (meter_up): what the server RECEIVES from the participant. Fed every
 *   RTP packet with its arrival time; tracks RFC 3550 Appendix A.1 extended
 *   sequence numbers (wrap-safe, MAX_DROPOUT 3000, MAX_MISORDER 100,
 *   probation of MIN_SEQUENTIAL 2 packets for a new source), expected and
 *   lost packets (A.3), duplicates and reordering, interarrival jitter
 *   (A.8), bytes, and for video frames, frame rate and freezes (the W3C
 *   webrtc-stats rule); for both media, stalls (2 s without a packet).
 *
 * - down (meter_down): what the participant RECEIVES from the server, as
 *   the participant tells it in RTCP: report blocks (fraction and
 *   cumulative lost, jitter, LSR/DLSR for the round-trip time), PLI, FIR,
 *   REMB, NACK. meter_rtcp_parse() walks a compound RTCP packet and hands
 *   each part to a visitor; the shell routes report blocks to the
 *   meter_down of the medium whose SSRC they report on.
 *
 * Both directions yield a meter_window per call of *_window(): what
 * happened since the previous call (the shell calls them once a second),
 * and keep cumulative totals in the meter itself.
 *
 * Pure and hot-path safe: state in, state out, time passed in; O(1) per
 * packet, no allocation, no locks, no syscalls, no Janus. One meter is
 * owned by one thread at a time (the caller serialises).
 *
 * Times are microseconds on one caller's clock (monotonic for arrivals and
 * windows; real time only for meter_ntp_from_us()). A clock that goes
 * backwards is tolerated: negative intervals count as zero.
 */
#ifndef ALLIANCE_METER_H
#define ALLIANCE_METER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METER_MAX_DROPOUT 3000        /* RFC 3550 A.1 */
#define METER_MAX_MISORDER 100        /* RFC 3550 A.1 */
#define METER_MIN_SEQUENTIAL 2        /* RFC 3550 A.1: packets of probation */
#define METER_DUP_SPAN 1024           /* seqs below the highest checked for duplicates */
#define METER_FRAME_HISTORY 30        /* inter-frame intervals in the freeze mean */
#define METER_FREEZE_MIN_INTERVALS 5  /* intervals needed before judging freezes */
#define METER_FREEZE_MIN_EXTRA_US 150000   /* the W3C rule's "mean + 150 ms" */
#define METER_STALL_US 2000000        /* no packet for this long is a stall */
#define METER_RTT_MAX_US 10000000     /* RTT samples above 10 s are discarded */

typedef enum meter_dir { METER_UP = 0, METER_DOWN } meter_dir;

/* What happened in one window, [start_us, end_us). Counts are for the
 * window; "estimates" are the value at end_us. A double of -1 means
 * "unknown" (nothing to measure yet); meter_window_format() writes null. */
typedef struct meter_window {
	meter_dir dir;
	bool video;
	int64_t start_us, end_us;
	/* up: packets received (A.1; duplicates and packets of a source on
	 * probation excluded) and expected (the advance of the extended highest
	 * sequence number). down, when the window's reports allow deltas: the
	 * advance of the reporter's extended highest sequence number
	 * (expected), the increase of its cumulative lost (lost), their
	 * difference (packets); otherwise 0 */
	int64_t packets;
	int64_t expected;
	int64_t lost;            /* expected - packets; negative with late packets */
	/* up: max(lost, 0) / expected, -1 if nothing was expected. down: from
	 * the deltas above, else the mean fraction lost of the window's reports,
	 * else (no report in the window) carried from the last window with one */
	double loss_pct;
	double jitter_ms;        /* estimate at end_us (A.8), -1 if unknown */
	/* up only */
	double bitrate_kbps;     /* bytes (header + payload) × 8 / window */
	int64_t bytes;
	int64_t frames;          /* video: frames that started in the window */
	double fps;
	int64_t freezes;
	int64_t freeze_ms;       /* sum of the freezes' inter-frame intervals */
	int64_t stalls;          /* silences of ≥ 2 s detected in the window */
	/* stalled time accounted in this window: when a stall is detected
	 * (by a packet ending it or by a window at end_us), its whole silence
	 * so far; while it lasts, its continuation. Sums to the total. */
	int64_t stall_ms;
	int64_t max_gap_ms;      /* longest inter-packet gap, incl. the one open at end_us */
	int64_t duplicates;
	int64_t reordered;
	int64_t malformed;
	/* down only */
	int64_t reports;         /* report blocks received in the window */
	double rtt_ms;           /* smoothed RTT at end_us, -1 if unknown */
	int64_t pli, fir;
	int64_t nack;            /* packets the participant asked for again */
	uint64_t remb_bps;       /* latest REMB, 0 if none yet */
} meter_window;

/* --- up: RTP received from a participant ------------------------------- */

typedef struct meter_up {
	bool video;
	uint32_t clock_rate;
	/* the source being followed (RFC 3550 A.1 state) */
	bool have_ssrc;
	uint32_t ssrc;
	uint16_t max_seq;
	uint32_t cycles;             /* shifted count of sequence number cycles */
	uint32_t base_seq;
	uint32_t bad_seq;
	uint32_t probation;
	uint64_t dup_bits[METER_DUP_SPAN / 64];   /* seen ext seqs in (ext_max - SPAN, ext_max] */
	/* jitter (A.8): in timestamp units */
	bool have_jitter;            /* a source gave at least one D */
	bool have_transit;
	uint32_t last_ts;
	int64_t last_ts_arrival_us;
	double jitter;
	/* video frames */
	bool have_frame_ts;          /* frame_ts belongs to the current source */
	bool have_frame;             /* frame_us is set */
	uint32_t frame_ts;
	int64_t frame_us;            /* arrival of the current frame's first packet */
	int64_t intervals[METER_FRAME_HISTORY];   /* µs, ring */
	int n_intervals, next_interval;
	int64_t intervals_sum;
	/* arrivals and stalls */
	bool have_arrival;
	int64_t last_arrival_us;
	bool stall_open;             /* a stall already counted by a window */
	int64_t stall_accounted_us;  /* stalled time accounted up to here */
	/* the current window */
	bool have_window_start;
	int64_t window_start_us;
	int64_t win_packets, win_expected, win_bytes, win_frames, win_freezes;
	int64_t win_freeze_us, win_stalls, win_stall_us, win_max_gap_us;
	int64_t win_duplicates, win_reordered, win_malformed;
	/* cumulative, over every source of this leg and medium */
	int64_t total_packets, total_expected, total_bytes, total_frames;
	int64_t total_freezes, total_freeze_us, total_stalls, total_stall_us;
	int64_t total_duplicates, total_reordered;
	int64_t malformed;           /* packets refused by the RTP header check */
	int64_t ssrc_changes;
	int64_t resyncs;             /* A.1 restarts after a large jump */
} meter_up;

/* clock_rate: RTP timestamp rate (48000 Opus, 90000 video); 0 means 90000. */
void meter_up_init(meter_up *m, bool video, uint32_t clock_rate);

/* One RTP packet (header + payload, as received, after SRTP). Malformed
 * packets (version, lengths of CSRCs, extension, padding) are counted in
 * m->malformed and otherwise ignored. */
void meter_up_rtp(meter_up *m, const uint8_t *buf, size_t len, int64_t arrival_us);

/* Fill w with the window since the previous call and start a new one. */
void meter_up_window(meter_up *m, int64_t now_us, meter_window *w);

/* How long the picture has been frozen at now: the time since the current
 * frame began if that gap is already a freeze by the W3C rule above (or a
 * stall: no packet for METER_STALL_US), else 0. Video meters that have
 * seen frames only; 0 for audio or before any frame. */
int64_t meter_up_frozen_for(const meter_up *m, int64_t now_us);

/* --- RTCP from a participant ---------------------------------------------- */

typedef struct meter_report_block {
	uint32_t reporter_ssrc;      /* SSRC of the RR/SR sender */
	uint32_t source_ssrc;        /* the stream reported on */
	uint8_t fraction_lost;       /* 1/256 units, since the previous report */
	int32_t cumulative_lost;     /* 24-bit signed */
	uint32_t ext_highest_seq;
	uint32_t jitter;             /* timestamp units */
	uint32_t lsr, dlsr;          /* middle 32 bits of NTP; 1/65536 s */
} meter_report_block;

typedef struct meter_sender_info {
	uint32_t ssrc;
	uint64_t ntp;
	uint32_t rtp_ts;
	uint32_t packets, octets;
} meter_sender_info;

/* Callbacks of meter_rtcp_parse(); any may be NULL. */
typedef struct meter_rtcp_visitor {
	void (*report)(void *user, const meter_report_block *rb);
	void (*sender_info)(void *user, const meter_sender_info *si);
	void (*pli)(void *user, uint32_t sender_ssrc, uint32_t media_ssrc);
	/* once per FCI entry */
	void (*fir)(void *user, uint32_t sender_ssrc, uint32_t media_ssrc, uint8_t seq_nr);
	/* bitrate_bps: mantissa × 2^exp, saturated at INT64_MAX; first_ssrc:
	 * the first SSRC of the list (0 if n_ssrcs is 0) */
	void (*remb)(void *user, uint32_t sender_ssrc, uint64_t bitrate_bps,
		uint32_t first_ssrc, unsigned n_ssrcs);
	/* lost: packets this NACK asks for (each PID plus the bits of its BLP) */
	void (*nack)(void *user, uint32_t sender_ssrc, uint32_t media_ssrc, unsigned lost);
} meter_rtcp_visitor;

/* Walk a compound RTCP packet. Every header and length is checked against
 * len before use. Returns the number of RTCP packets walked, or -1 at the
 * first malformed one (those before it have been visited). An empty buffer
 * is malformed. SDES, BYE, APP, XR and unknown feedback are skipped. */
int meter_rtcp_parse(const uint8_t *buf, size_t len, const meter_rtcp_visitor *v, void *user);

/* --- down: what a participant reports about the media it receives ------- */

typedef struct meter_down {
	bool video;
	/* the latest report */
	int64_t reports;
	bool have_report;
	uint32_t source_ssrc;
	uint32_t ext_highest_seq;
	int32_t cumulative_lost;
	double fraction_lost_pct;
	double jitter_ms;            /* -1 until the first report */
	/* round-trip time */
	int64_t rtt_samples;
	double rtt_last_ms, rtt_smooth_ms, rtt_min_ms;   /* -1 until a sample */
	/* feedback */
	int64_t pli, fir, nack, remb;
	uint64_t remb_bps;
	/* the current window: the reference is the last report before it;
	 * loss deltas need the same source at both ends */
	bool have_ref;
	uint32_t ref_ssrc, ref_ext_seq;
	int32_t ref_cum_lost;
	int64_t win_reports, win_fraction_sum, win_pli, win_fir, win_nack;
	double last_loss_pct;        /* carried into windows without reports */
	bool have_window_start;
	int64_t window_start_us;
} meter_down;

void meter_down_init(meter_down *m, bool video);

/* A report block about what the server sent this participant. now_ntp:
 * the server's 64-bit NTP time of arrival (meter_ntp_from_us() of real
 * time); clock_rate: the medium's RTP clock, for jitter in ms (0: 90000
 * for video, 48000 for audio). */
void meter_down_report(meter_down *m, const meter_report_block *rb, uint64_t now_ntp,
	uint32_t clock_rate);
void meter_down_pli(meter_down *m);
void meter_down_fir(meter_down *m);
void meter_down_remb(meter_down *m, uint64_t bitrate_bps);
void meter_down_nack(meter_down *m, unsigned lost);

void meter_down_window(meter_down *m, int64_t now_us, meter_window *w);

/* --- helpers ------------------------------------------------------------------ */

/* 64-bit NTP (RFC 5905: seconds since 1900 . fraction) from microseconds of
 * Unix real time; negative times give the NTP of the Unix epoch. */
uint64_t meter_ntp_from_us(int64_t realtime_us);

/* The middle 32 bits of an NTP time: the unit of LSR/DLSR (1/65536 s). */
uint32_t meter_ntp_middle32(uint64_t ntp);

/* The RTT in ms a report block gives, arriving at now_ntp, or -1 when LSR is
 * 0 or the result is negative or above 10 s. */
double meter_rtt_ms(uint32_t lsr, uint32_t dlsr, uint64_t now_ntp);

/* A window as a compact JSON object (for storage), NUL-terminated in buf.
 * Returns its length, or -1 if it did not fit (buf then holds "").
 * METER_WINDOW_JSON_MAX bytes always suffice. */
#define METER_WINDOW_JSON_MAX 768
int meter_window_format(const meter_window *w, char *buf, size_t len);

#endif
