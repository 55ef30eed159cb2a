/*
 * meter.c — see meter.h and docs/metrics.md. Invariants:
 * - every byte read from a packet is at an index checked against its length
 *   first (the RTP header, every RTCP header, block and FCI);
 * - per packet the work is bounded by a constant (the duplicate bitmap
 *   clears at most METER_DUP_SPAN bits, all the rest is straight-line);
 * - the A.1 state (max_seq, cycles, base_seq, bad_seq, probation) is
 *   exactly RFC 3550's; the counters it feeds are incremental deltas, so a
 *   new source or a resync restarts the sequence state without losing the
 *   leg's cumulative totals.
 */
#include "meter.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define RTP_SEQ_MOD (1u << 16)
#define US 1000000LL
#define NTP_UNIX_OFFSET 2208988800ULL   /* seconds from 1900 to 1970 */

static inline uint16_t rd16(const uint8_t *p) {
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t rd32(const uint8_t *p) {
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline int64_t ms_of_us(int64_t us) {
	return us / 1000;
}

/* --- up ------------------------------------------------------------------------ */

void meter_up_init(meter_up *m, bool video, uint32_t clock_rate) {
	memset(m, 0, sizeof(*m));
	m->video = video;
	m->clock_rate = clock_rate ? clock_rate : 90000;
}

/* The extended highest sequence number of the current source. */
static inline int64_t ext_max(const meter_up *m) {
	return (int64_t)m->cycles + m->max_seq;
}

static inline void dup_set(meter_up *m, int64_t ext) {
	uint32_t b = (uint32_t)(ext % METER_DUP_SPAN);
	m->dup_bits[b / 64] |= 1ULL << (b % 64);
}

static inline void dup_clear(meter_up *m, int64_t ext) {
	uint32_t b = (uint32_t)(ext % METER_DUP_SPAN);
	m->dup_bits[b / 64] &= ~(1ULL << (b % 64));
}

static inline bool dup_test(const meter_up *m, int64_t ext) {
	uint32_t b = (uint32_t)(ext % METER_DUP_SPAN);
	return (m->dup_bits[b / 64] >> (b % 64)) & 1;
}

/* RFC 3550 A.1 init_seq(), plus: the packet is counted (received and
 * expected both +1), the duplicate bitmap restarts at seq. */
static void init_seq(meter_up *m, uint16_t seq) {
	m->base_seq = seq;
	m->max_seq = seq;
	m->bad_seq = RTP_SEQ_MOD + 1;   /* so seq == bad_seq is false */
	m->cycles = 0;
	memset(m->dup_bits, 0, sizeof(m->dup_bits));
	dup_set(m, seq);
	m->win_expected++;
	m->total_expected++;
}

/* A new SSRC: the A.1 "new source" step (probation), and per-source state
 * (jitter, the frame timestamp) restarts. Cumulative totals stay. */
static void new_source(meter_up *m, uint32_t ssrc, uint16_t seq) {
	if(m->have_ssrc)
		m->ssrc_changes++;
	m->have_ssrc = true;
	m->ssrc = ssrc;
	m->max_seq = (uint16_t)(seq - 1);
	m->probation = METER_MIN_SEQUENTIAL;
	m->cycles = 0;
	m->base_seq = seq;
	m->bad_seq = RTP_SEQ_MOD + 1;
	m->have_transit = false;
	m->have_jitter = false;
	m->jitter = 0;
	m->have_frame_ts = false;
}

typedef enum seq_verdict {
	SEQ_NOT_COUNTED = 0,   /* probation, or a large jump not (yet) confirmed */
	SEQ_IN_ORDER,          /* advanced the extended highest sequence number */
	SEQ_LATE,              /* below the highest, not seen before: reordered */
	SEQ_DUPLICATE,
} seq_verdict;

/* RFC 3550 A.1 update_seq(); the return says how the packet counts. */
static seq_verdict update_seq(meter_up *m, uint16_t seq) {
	uint16_t udelta = (uint16_t)(seq - m->max_seq);
	if(m->probation) {
		/* packet is in sequence */
		if(seq == (uint16_t)(m->max_seq + 1)) {
			m->probation--;
			m->max_seq = seq;
			if(m->probation == 0) {
				init_seq(m, seq);
				return SEQ_IN_ORDER;
			}
		} else {
			m->probation = METER_MIN_SEQUENTIAL - 1;
			m->max_seq = seq;
		}
		return SEQ_NOT_COUNTED;
	}
	if(udelta == 0)
		return SEQ_DUPLICATE;    /* the highest itself again */
	if(udelta < METER_MAX_DROPOUT) {
		/* in order, with permissible gap */
		int64_t old = ext_max(m);
		if(seq < m->max_seq)
			m->cycles += RTP_SEQ_MOD;   /* sequence number wrapped */
		m->max_seq = seq;
		int64_t now = ext_max(m);
		if(udelta >= METER_DUP_SPAN)
			memset(m->dup_bits, 0, sizeof(m->dup_bits));
		else
			for(int64_t e = old + 1; e < now; e++)
				dup_clear(m, e);    /* the gap: not seen (yet) */
		dup_set(m, now);
		m->win_expected += udelta;
		m->total_expected += udelta;
		return SEQ_IN_ORDER;
	}
	if(udelta <= RTP_SEQ_MOD - METER_MAX_MISORDER) {
		/* the sequence number made a very large jump */
		if(seq == m->bad_seq) {
			/* two sequential packets: assume that the other side
			 * restarted without telling us, so just re-sync (i.e.,
			 * pretend this was the first packet) */
			m->resyncs++;
			init_seq(m, seq);
			m->have_transit = false;
			m->have_frame_ts = false;
			return SEQ_IN_ORDER;
		}
		m->bad_seq = (seq + 1) & (RTP_SEQ_MOD - 1);
		return SEQ_NOT_COUNTED;
	}
	/* duplicate or reordered packet: at most MAX_MISORDER below */
	int64_t ext = ext_max(m) - (uint16_t)(m->max_seq - seq);
	if(ext >= (int64_t)m->base_seq && ext_max(m) - ext < METER_DUP_SPAN) {
		if(dup_test(m, ext))
			return SEQ_DUPLICATE;
		dup_set(m, ext);
	}
	return SEQ_LATE;
}

/* Interarrival jitter, RFC 3550 A.8, over in-order packets whose timestamp
 * differs from the previous one considered (like libwebrtc: the packets of
 * one video frame share a timestamp but leave the sender paced, so they
 * would count pacing as jitter). D = (Rj - Ri) - (Sj - Si) in timestamp
 * units, J += (|D| - J) / 16. Wrap-safe in the 32-bit timestamp. */
static void update_jitter(meter_up *m, uint32_t ts, int64_t arrival_us) {
	if(m->have_transit) {
		if(ts == m->last_ts)
			return;
		double r = (double)(arrival_us - m->last_ts_arrival_us) * m->clock_rate / 1e6;
		double d = r - (double)(int32_t)(ts - m->last_ts);
		if(d < 0)
			d = -d;
		m->jitter += (d - m->jitter) / 16.0;
		m->have_jitter = true;
	}
	m->have_transit = true;
	m->last_ts = ts;
	m->last_ts_arrival_us = arrival_us;
}

/* A video frame starts with the first in-order packet of a newer timestamp;
 * its time is that packet's arrival. The freeze rule (W3C webrtc-stats
 * freezeCount): interval >= max(3 × mean, mean + 150 ms), the mean over the
 * previous METER_FRAME_HISTORY intervals (at least
 * METER_FREEZE_MIN_INTERVALS of them). Every interval then joins the mean,
 * freezes included, so a lasting drop of the frame rate is learned. */
static void update_frames(meter_up *m, uint32_t ts, int64_t arrival_us) {
	if(m->have_frame_ts && (int32_t)(ts - m->frame_ts) <= 0)
		return;        /* same frame (or an older timestamp) */
	m->have_frame_ts = true;
	m->frame_ts = ts;
	m->win_frames++;
	m->total_frames++;
	if(m->have_frame) {
		int64_t iv = arrival_us - m->frame_us;
		if(iv < 0)
			iv = 0;
		int64_t n = m->n_intervals;
		if(n >= METER_FREEZE_MIN_INTERVALS) {
			/* iv >= 3 sum / n and iv >= sum / n + 150 ms, without rounding */
			int64_t sum = m->intervals_sum;
			if(iv * n >= 3 * sum && iv * n >= sum + METER_FREEZE_MIN_EXTRA_US * n) {
				m->win_freezes++;
				m->total_freezes++;
				m->win_freeze_us += iv;
				m->total_freeze_us += iv;
			}
		}
		if(m->n_intervals == METER_FRAME_HISTORY)
			m->intervals_sum -= m->intervals[m->next_interval];
		else
			m->n_intervals++;
		m->intervals[m->next_interval] = iv;
		m->intervals_sum += iv;
		m->next_interval = (m->next_interval + 1) % METER_FRAME_HISTORY;
	}
	m->have_frame = true;
	m->frame_us = arrival_us;
}

/* Gaps between packets of any kind, and stalls (gaps of >= 2 s). */
static void update_arrival(meter_up *m, int64_t arrival_us) {
	if(m->have_arrival) {
		int64_t gap = arrival_us - m->last_arrival_us;
		if(gap < 0)
			gap = 0;
		if(gap > m->win_max_gap_us)
			m->win_max_gap_us = gap;
		if(gap >= METER_STALL_US) {
			int64_t add;
			if(m->stall_open) {
				/* counted by a window already: the rest of it */
				add = arrival_us - m->stall_accounted_us;
			} else {
				add = gap;
				m->win_stalls++;
				m->total_stalls++;
			}
			if(add < 0)
				add = 0;
			m->win_stall_us += add;
			m->total_stall_us += add;
		}
		if(arrival_us > m->last_arrival_us)
			m->last_arrival_us = arrival_us;
	} else {
		m->have_arrival = true;
		m->last_arrival_us = arrival_us;
	}
	m->stall_open = false;
	if(!m->have_window_start) {
		m->have_window_start = true;
		m->window_start_us = arrival_us;
	}
}

void meter_up_rtp(meter_up *m, const uint8_t *buf, size_t len, int64_t arrival_us) {
	/* the header: RFC 3550 5.1, bounds first */
	if(buf == NULL || len < 12 || (buf[0] >> 6) != 2)
		goto malformed;
	size_t hdr = 12 + 4 * (size_t)(buf[0] & 0x0f);
	if(hdr > len)
		goto malformed;
	if(buf[0] & 0x10) {
		if(hdr + 4 > len)
			goto malformed;
		hdr += 4 + 4 * (size_t)rd16(buf + hdr + 2);
		if(hdr > len)
			goto malformed;
	}
	if(buf[0] & 0x20) {
		size_t pad = buf[len - 1];
		if(pad == 0 || hdr + pad > len)
			goto malformed;
	}
	uint16_t seq = rd16(buf + 2);
	uint32_t ts = rd32(buf + 4);
	uint32_t ssrc = rd32(buf + 8);

	update_arrival(m, arrival_us);
	m->win_bytes += (int64_t)len;
	m->total_bytes += (int64_t)len;
	if(!m->have_ssrc || ssrc != m->ssrc)
		new_source(m, ssrc, seq);
	switch(update_seq(m, seq)) {
	case SEQ_IN_ORDER:
		m->win_packets++;
		m->total_packets++;
		update_jitter(m, ts, arrival_us);
		if(m->video)
			update_frames(m, ts, arrival_us);
		break;
	case SEQ_LATE:
		m->win_packets++;
		m->total_packets++;
		m->win_reordered++;
		m->total_reordered++;
		break;
	case SEQ_DUPLICATE:
		m->win_duplicates++;
		m->total_duplicates++;
		break;
	case SEQ_NOT_COUNTED:
		break;
	}
	return;
malformed:
	m->malformed++;
	m->win_malformed++;
}

int64_t meter_up_frozen_for(const meter_up *m, int64_t now_us) {
	if(!m->video || !m->have_frame || now_us <= m->frame_us)
		return 0;
	int64_t gap = now_us - m->frame_us;
	if(m->have_arrival && now_us - m->last_arrival_us >= METER_STALL_US)
		return gap;
	int64_t n = m->n_intervals, sum = m->intervals_sum;
	if(n < METER_FREEZE_MIN_INTERVALS)
		return 0;
	/* the rule of update_frames(), on the gap open at now */
	return gap * n >= 3 * sum && gap * n >= sum + METER_FREEZE_MIN_EXTRA_US * n ? gap : 0;
}

void meter_up_window(meter_up *m, int64_t now_us, meter_window *w) {
	memset(w, 0, sizeof(*w));
	w->dir = METER_UP;
	w->video = m->video;
	w->start_us = m->have_window_start ? m->window_start_us : now_us;
	w->end_us = now_us;
	/* the silence still open at now */
	if(m->have_arrival) {
		int64_t open = now_us - m->last_arrival_us;
		if(open > m->win_max_gap_us)
			m->win_max_gap_us = open;
		if(open >= METER_STALL_US) {
			int64_t add;
			if(m->stall_open) {
				/* still the stall an earlier window counted */
				add = now_us - m->stall_accounted_us;
				if(add < 0)
					add = 0;
			} else {
				add = open;
				m->stall_open = true;
				m->stall_accounted_us = now_us;
				m->win_stalls++;
				m->total_stalls++;
			}
			m->win_stall_us += add;
			m->total_stall_us += add;
			if(now_us > m->stall_accounted_us)
				m->stall_accounted_us = now_us;
		}
	}
	int64_t dur = w->end_us - w->start_us;
	w->packets = m->win_packets;
	w->expected = m->win_expected;
	w->lost = w->expected - w->packets;
	w->loss_pct = w->expected > 0 ? (w->lost > 0 ? 100.0 * (double)w->lost / (double)w->expected : 0.0) : -1;
	w->jitter_ms = m->have_jitter ? m->jitter * 1000.0 / m->clock_rate : -1;
	w->bytes = m->win_bytes;
	w->bitrate_kbps = dur > 0 ? (double)m->win_bytes * 8000.0 / (double)dur : 0;
	w->frames = m->win_frames;
	w->fps = dur > 0 ? (double)m->win_frames * 1e6 / (double)dur : 0;
	w->freezes = m->win_freezes;
	w->freeze_ms = ms_of_us(m->win_freeze_us);
	w->stalls = m->win_stalls;
	w->stall_ms = ms_of_us(m->win_stall_us);
	w->max_gap_ms = ms_of_us(m->win_max_gap_us);
	w->duplicates = m->win_duplicates;
	w->reordered = m->win_reordered;
	w->malformed = m->win_malformed;
	w->rtt_ms = -1;
	m->win_packets = m->win_expected = m->win_bytes = m->win_frames = 0;
	m->win_freezes = m->win_freeze_us = m->win_stalls = m->win_stall_us = 0;
	m->win_max_gap_us = m->win_duplicates = m->win_reordered = m->win_malformed = 0;
	m->have_window_start = true;
	m->window_start_us = now_us;
}

/* --- RTCP -------------------------------------------------------------------- */

#define RTCP_SR 200
#define RTCP_RR 201
#define RTCP_RTPFB 205
#define RTCP_PSFB 206

static void visit_blocks(const uint8_t *p, int count, uint32_t reporter,
		const meter_rtcp_visitor *v, void *user) {
	for(int i = 0; i < count; i++, p += 24) {
		if(v->report == NULL)
			continue;
		meter_report_block rb;
		rb.reporter_ssrc = reporter;
		rb.source_ssrc = rd32(p);
		rb.fraction_lost = p[4];
		uint32_t cl = ((uint32_t)p[5] << 16) | ((uint32_t)p[6] << 8) | p[7];
		rb.cumulative_lost = (cl & 0x800000) ? (int32_t)cl - 0x1000000 : (int32_t)cl;
		rb.ext_highest_seq = rd32(p + 8);
		rb.jitter = rd32(p + 12);
		rb.lsr = rd32(p + 16);
		rb.dlsr = rd32(p + 20);
		v->report(user, &rb);
	}
}

static unsigned popcount16(uint16_t x) {
	unsigned n = 0;
	for(; x; x &= (uint16_t)(x - 1))
		n++;
	return n;
}

/* mantissa × 2^exp, saturated at INT64_MAX so that it fits every signed
 * 64-bit store (SQLite INTEGER, a JSON integer) */
static uint64_t remb_bitrate(uint32_t mantissa, unsigned exp) {
	if(mantissa == 0)
		return 0;
	if(exp >= 63 || mantissa > ((uint64_t)INT64_MAX >> exp))
		return (uint64_t)INT64_MAX;
	return (uint64_t)mantissa << exp;
}

/* One RTCP packet of n bytes (padding removed), header checked. Returns 0,
 * or -1 if its contents are shorter than its type needs. */
static int visit_packet(const uint8_t *p, size_t n, const meter_rtcp_visitor *v, void *user) {
	unsigned count = p[0] & 0x1f;
	uint8_t pt = p[1];
	switch(pt) {
	case RTCP_SR: {
		if(n < 28 + 24 * (size_t)count)
			return -1;
		uint32_t ssrc = rd32(p + 4);
		if(v->sender_info) {
			meter_sender_info si;
			si.ssrc = ssrc;
			si.ntp = ((uint64_t)rd32(p + 8) << 32) | rd32(p + 12);
			si.rtp_ts = rd32(p + 16);
			si.packets = rd32(p + 20);
			si.octets = rd32(p + 24);
			v->sender_info(user, &si);
		}
		visit_blocks(p + 28, (int)count, ssrc, v, user);
		return 0;
	}
	case RTCP_RR:
		if(n < 8 + 24 * (size_t)count)
			return -1;
		visit_blocks(p + 8, (int)count, rd32(p + 4), v, user);
		return 0;
	case RTCP_RTPFB:
	case RTCP_PSFB: {
		if(n < 12)
			return -1;
		uint32_t sender = rd32(p + 4), media = rd32(p + 8);
		const uint8_t *fci = p + 12;
		size_t nfci = n - 12;
		if(pt == RTCP_RTPFB && count == 1) {             /* generic NACK */
			if(nfci % 4)
				return -1;
			unsigned lost = 0;
			for(size_t i = 0; i < nfci; i += 4)
				lost += 1 + popcount16(rd16(fci + i + 2));
			if(v->nack && nfci > 0)
				v->nack(user, sender, media, lost);
		} else if(pt == RTCP_PSFB && count == 1) {       /* PLI */
			if(v->pli)
				v->pli(user, sender, media);
		} else if(pt == RTCP_PSFB && count == 4) {       /* FIR */
			if(nfci % 8)
				return -1;
			for(size_t i = 0; i < nfci; i += 8)
				if(v->fir)
					v->fir(user, sender, rd32(fci + i), fci[i + 4]);
		} else if(pt == RTCP_PSFB && count == 15) {      /* AFB: REMB? */
			if(nfci < 8 || memcmp(fci, "REMB", 4) != 0)
				return 0;        /* another application's feedback */
			unsigned nssrc = fci[4];
			if(nfci < 8 + 4 * (size_t)nssrc)
				return -1;
			unsigned exp = fci[5] >> 2;
			uint32_t mantissa = ((uint32_t)(fci[5] & 0x03) << 16) | rd16(fci + 6);
			if(v->remb)
				v->remb(user, sender, remb_bitrate(mantissa, exp),
					nssrc ? rd32(fci + 8) : 0, nssrc);
		}
		return 0;
	}
	default:
		return 0;        /* SDES, BYE, APP, XR, ...: not needed */
	}
}

int meter_rtcp_parse(const uint8_t *buf, size_t len, const meter_rtcp_visitor *v, void *user) {
	static const meter_rtcp_visitor none;
	if(v == NULL)
		v = &none;
	if(buf == NULL || len == 0)
		return -1;
	int walked = 0;
	size_t off = 0;
	while(off < len) {
		if(len - off < 4)
			return -1;
		const uint8_t *p = buf + off;
		if((p[0] >> 6) != 2)
			return -1;
		size_t size = 4 * ((size_t)rd16(p + 2) + 1);
		if(size > len - off)
			return -1;
		size_t n = size;
		if(p[0] & 0x20) {
			size_t pad = p[size - 1];
			if(pad == 0 || pad > size - 4)
				return -1;
			n -= pad;
		}
		if(visit_packet(p, n, v, user) < 0)
			return -1;
		walked++;
		off += size;
	}
	return walked;
}

/* --- down ---------------------------------------------------------------------- */

void meter_down_init(meter_down *m, bool video) {
	memset(m, 0, sizeof(*m));
	m->video = video;
	m->jitter_ms = -1;
	m->rtt_last_ms = m->rtt_smooth_ms = m->rtt_min_ms = -1;
	m->last_loss_pct = -1;
}

uint64_t meter_ntp_from_us(int64_t realtime_us) {
	if(realtime_us < 0)
		realtime_us = 0;
	uint64_t sec = (uint64_t)(realtime_us / US) + NTP_UNIX_OFFSET;
	uint64_t frac = ((uint64_t)(realtime_us % US) << 32) / (uint64_t)US;
	return (sec << 32) | frac;
}

uint32_t meter_ntp_middle32(uint64_t ntp) {
	return (uint32_t)(ntp >> 16);
}

double meter_rtt_ms(uint32_t lsr, uint32_t dlsr, uint64_t now_ntp) {
	if(lsr == 0)
		return -1;
	/* modular: right across the NTP era and middle-32 wraps */
	uint32_t rtt = meter_ntp_middle32(now_ntp) - lsr - dlsr;
	if((int32_t)rtt < 0 || (uint64_t)rtt * US > (uint64_t)METER_RTT_MAX_US * 65536)
		return -1;
	return (double)rtt * 1000.0 / 65536.0;
}

void meter_down_report(meter_down *m, const meter_report_block *rb, uint64_t now_ntp,
		uint32_t clock_rate) {
	if(clock_rate == 0)
		clock_rate = m->video ? 90000 : 48000;
	m->have_report = true;
	m->reports++;
	m->win_reports++;
	m->source_ssrc = rb->source_ssrc;
	m->ext_highest_seq = rb->ext_highest_seq;
	m->cumulative_lost = rb->cumulative_lost;
	m->fraction_lost_pct = rb->fraction_lost * 100.0 / 256.0;
	m->win_fraction_sum += rb->fraction_lost;
	m->jitter_ms = (double)rb->jitter * 1000.0 / clock_rate;
	double rtt = meter_rtt_ms(rb->lsr, rb->dlsr, now_ntp);
	if(rtt >= 0) {
		m->rtt_samples++;
		m->rtt_last_ms = rtt;
		/* RFC 6298's SRTT gain, 1/8 */
		m->rtt_smooth_ms = m->rtt_samples == 1 ? rtt : m->rtt_smooth_ms + (rtt - m->rtt_smooth_ms) / 8.0;
		if(m->rtt_min_ms < 0 || rtt < m->rtt_min_ms)
			m->rtt_min_ms = rtt;
	}
}

void meter_down_pli(meter_down *m) {
	m->pli++;
	m->win_pli++;
}

void meter_down_fir(meter_down *m) {
	m->fir++;
	m->win_fir++;
}

void meter_down_remb(meter_down *m, uint64_t bitrate_bps) {
	m->remb++;
	m->remb_bps = bitrate_bps;
}

void meter_down_nack(meter_down *m, unsigned lost) {
	m->nack += lost;
	m->win_nack += lost;
}

void meter_down_window(meter_down *m, int64_t now_us, meter_window *w) {
	memset(w, 0, sizeof(*w));
	w->dir = METER_DOWN;
	w->video = m->video;
	w->start_us = m->have_window_start ? m->window_start_us : now_us;
	w->end_us = now_us;
	w->reports = m->win_reports;
	if(m->win_reports > 0) {
		int32_t d = (int32_t)(m->ext_highest_seq - m->ref_ext_seq);
		if(m->have_ref && m->ref_ssrc == m->source_ssrc && d > 0) {
			w->expected = d;
			w->lost = (int64_t)m->cumulative_lost - m->ref_cum_lost;
			w->packets = w->expected - w->lost;
			double pct = 100.0 * (double)w->lost / (double)w->expected;
			w->loss_pct = pct < 0 ? 0 : pct > 100 ? 100 : pct;
		} else {
			w->loss_pct = (double)m->win_fraction_sum * 100.0 / 256.0 / (double)m->win_reports;
		}
		m->last_loss_pct = w->loss_pct;
	} else {
		w->loss_pct = m->last_loss_pct;
	}
	w->jitter_ms = m->jitter_ms;
	w->rtt_ms = m->rtt_smooth_ms;
	w->pli = m->win_pli;
	w->fir = m->win_fir;
	w->nack = m->win_nack;
	w->remb_bps = m->remb_bps;
	w->bitrate_kbps = -1;
	w->fps = -1;
	if(m->have_report) {
		m->have_ref = true;
		m->ref_ssrc = m->source_ssrc;
		m->ref_ext_seq = m->ext_highest_seq;
		m->ref_cum_lost = m->cumulative_lost;
	}
	m->win_reports = m->win_fraction_sum = m->win_pli = m->win_fir = m->win_nack = 0;
	m->have_window_start = true;
	m->window_start_us = now_us;
}

/* --- the storage form -------------------------------------------------------------- */

typedef struct out {
	char *p;
	size_t left;
	bool over;
} out;

__attribute__((format(printf, 2, 3)))
static void put(out *o, const char *fmt, ...) {
	if(o->over)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->p, o->left, fmt, ap);
	va_end(ap);
	if(n < 0 || (size_t)n >= o->left) {
		o->over = true;
		return;
	}
	o->p += n;
	o->left -= (size_t)n;
}

static void put_int(out *o, const char *key, int64_t v) {
	put(o, ",\"%s\":%lld", key, (long long)v);
}

/* negative (unknown) and non-finite values are null */
static void put_num(out *o, const char *key, double v, int decimals) {
	if(v < 0 || v != v || v > 1e300)
		put(o, ",\"%s\":null", key);
	else if(v < 1e9)
		put(o, ",\"%s\":%.*f", key, decimals, v);
	else
		put(o, ",\"%s\":%.6e", key, v);    /* bounded width */
}

int meter_window_format(const meter_window *w, char *buf, size_t len) {
	if(buf == NULL || len == 0)
		return -1;
	out o = { buf, len, false };
	put(&o, "{\"dir\":\"%s\",\"media\":\"%s\"", w->dir == METER_UP ? "up" : "down",
		w->video ? "video" : "audio");
	put_int(&o, "start_us", w->start_us);
	put_int(&o, "end_us", w->end_us);
	if(w->dir == METER_DOWN)
		put_int(&o, "reports", w->reports);
	put_int(&o, "packets", w->packets);
	put_int(&o, "expected", w->expected);
	put_int(&o, "lost", w->lost);
	put_num(&o, "loss_pct", w->loss_pct, 2);
	put_num(&o, "jitter_ms", w->jitter_ms, 2);
	if(w->dir == METER_UP) {
		put_int(&o, "bytes", w->bytes);
		put_num(&o, "bitrate_kbps", w->bitrate_kbps, 1);
		if(w->video) {
			put_int(&o, "frames", w->frames);
			put_num(&o, "fps", w->fps, 2);
			put_int(&o, "freezes", w->freezes);
			put_int(&o, "freeze_ms", w->freeze_ms);
		}
		put_int(&o, "stalls", w->stalls);
		put_int(&o, "stall_ms", w->stall_ms);
		put_int(&o, "max_gap_ms", w->max_gap_ms);
		put_int(&o, "duplicates", w->duplicates);
		put_int(&o, "reordered", w->reordered);
		put_int(&o, "malformed", w->malformed);
	} else {
		put_num(&o, "rtt_ms", w->rtt_ms, 2);
		if(w->video) {
			put_int(&o, "pli", w->pli);
			put_int(&o, "fir", w->fir);
		}
		put_int(&o, "nack", w->nack);
		put(&o, ",\"remb_bps\":%llu", (unsigned long long)(w->remb_bps > (uint64_t)INT64_MAX ?
			(uint64_t)INT64_MAX : w->remb_bps));
	}
	put(&o, "}");
	if(o.over) {
		buf[0] = '\0';
		return -1;
	}
	return (int)(o.p - buf);
}
