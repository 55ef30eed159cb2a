/* libFuzzer target: the quality meter must take any RTP and RTCP bytes,
 * in any order and at any times, without crashing, overrunning or breaking
 * its invariants (loss 0..100 % or unknown, no negative counts or rates,
 * R 0..100, MOS 1..4.5), and every window it formats must be valid JSON
 * that fits METER_WINDOW_JSON_MAX.
 *
 * Input: the whole buffer is first parsed as one RTP packet and as one
 * compound RTCP packet; then it is read as records
 *   [op:1][dt:2][len:2][len bytes]   (big-endian; len clipped to what is left)
 * op % 4: 0 RTP to the video up meter, 1 RTP to the audio up meter, 2 RTCP
 * to the down meters, 3 close every window. dt advances the clock by
 * dt × 100 µs (up to 6.5 s, so stalls happen). Every record's bytes are
 * copied to a heap block of their exact size, so reading past them trips
 * ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "meter.h"
#include "emodel.h"

typedef struct ctx {
	meter_down *audio, *video;
	uint64_t now_ntp;
} ctx;

static void on_report(void *u, const meter_report_block *rb) {
	ctx *c = u;
	meter_down *d = (rb->source_ssrc & 1) ? c->video : c->audio;
	meter_down_report(d, rb, c->now_ntp, (rb->source_ssrc & 2) ? 0 : 90000);
}

static void on_pli(void *u, uint32_t s, uint32_t m) {
	meter_down_pli(((ctx *)u)->video);
}

static void on_fir(void *u, uint32_t s, uint32_t m, uint8_t n) {
	meter_down_fir(((ctx *)u)->video);
}

static void on_remb(void *u, uint32_t s, uint64_t bps, uint32_t first, unsigned n) {
	meter_down_remb(((ctx *)u)->video, bps);
}

static void on_nack(void *u, uint32_t s, uint32_t m, unsigned lost) {
	meter_down_nack((m & 1) ? ((ctx *)u)->video : ((ctx *)u)->audio, lost);
}

static void on_si(void *u, const meter_sender_info *si) {
	(void)u;
	(void)si;
}

static const meter_rtcp_visitor visitor = { on_report, on_si, on_pli, on_fir, on_remb, on_nack };

static void check_window(const meter_window *w) {
	if(!(w->loss_pct == -1 || (w->loss_pct >= 0 && w->loss_pct <= 100)))
		abort();
	if(!(w->jitter_ms == -1 || w->jitter_ms >= 0))
		abort();
	if(w->dir == METER_UP) {
		if(w->packets < 0 || w->expected < 0 || w->bytes < 0 || w->frames < 0)
			abort();
		if(w->freezes < 0 || w->freeze_ms < 0 || w->stalls < 0 || w->stall_ms < 0)
			abort();
		if(w->max_gap_ms < 0 || w->duplicates < 0 || w->reordered < 0 || w->malformed < 0)
			abort();
		if(!(w->bitrate_kbps >= 0) || !(w->fps >= 0))
			abort();
		if(w->stalls > 0 && w->stall_ms < 2000)
			abort();
		if(w->freezes > 0 && w->freeze_ms < 150)
			abort();
	} else {
		if(!(w->rtt_ms == -1 || (w->rtt_ms >= 0 && w->rtt_ms <= 10000)))
			abort();
		if(w->reports < 0 || w->pli < 0 || w->fir < 0 || w->nack < 0)
			abort();
	}
	char buf[METER_WINDOW_JSON_MAX];
	int n = meter_window_format(w, buf, sizeof(buf));
	if(n <= 0 || (size_t)n != strlen(buf))
		abort();
	json_error_t err;
	json_t *j = json_loads(buf, 0, &err);
	if(j == NULL || !json_is_object(j))
		abort();
	json_decref(j);
}

static void check_path(const meter_window *up, const meter_window *down, double rtt) {
	emodel_result r;
	emodel_path(up, rtt, down, &r);
	if(!(r.r >= 0 && r.r <= 100) || !(r.mos >= 1 && r.mos <= 4.5))
		abort();
}

static uint8_t *copy(const uint8_t *p, size_t n) {
	uint8_t *b = malloc(n ? n : 1);
	if(b == NULL)
		abort();
	if(n)
		memcpy(b, p, n);
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	meter_up upv, upa;
	meter_down downa, downv;
	meter_up_init(&upv, true, 90000);
	meter_up_init(&upa, false, 48000);
	meter_down_init(&downa, false);
	meter_down_init(&downv, true);
	int64_t now = 1000000;
	ctx c = { &downa, &downv, meter_ntp_from_us(1700000000000000LL) };

	uint8_t *all = copy(data, size);
	meter_up_rtp(&upa, all, size, now);
	int r = meter_rtcp_parse(all, size, &visitor, &c);
	if(r < -1 || r == 0)
		abort();
	free(all);

	size_t off = 0;
	int64_t fed = 1;
	while(size - off >= 5) {
		uint8_t op = data[off] % 4;
		uint16_t dt = (uint16_t)((data[off + 1] << 8) | data[off + 2]);
		size_t len = (size_t)((data[off + 3] << 8) | data[off + 4]);
		off += 5;
		if(len > size - off)
			len = size - off;
		now += (int64_t)dt * 100;
		c.now_ntp = meter_ntp_from_us(1700000000000000LL + now);
		uint8_t *b = copy(data + off, len);
		off += len;
		meter_window w[4];
		switch(op) {
		case 0:
			meter_up_rtp(&upv, b, len, now);
			fed++;
			break;
		case 1:
			meter_up_rtp(&upa, b, len, now);
			fed++;
			break;
		case 2:
			r = meter_rtcp_parse(b, len, &visitor, &c);
			if(r < -1 || r == 0)
				abort();
			break;
		default:
			meter_up_window(&upa, now, &w[0]);
			meter_up_window(&upv, now, &w[1]);
			meter_down_window(&downa, now, &w[2]);
			meter_down_window(&downv, now, &w[3]);
			for(int i = 0; i < 4; i++)
				check_window(&w[i]);
			check_path(&w[0], &w[2], w[2].rtt_ms);
			check_path(&w[1], &w[3], 12.5);
			break;
		}
		free(b);
	}
	/* counted packets are never more than the packets fed */
	if(upa.total_packets + upa.total_duplicates + upv.total_packets + upv.total_duplicates > fed)
		abort();
	if(upa.total_packets < 0 || upv.total_expected < 0)
		abort();
	meter_window w;
	meter_up_window(&upv, now + 3000000, &w);
	check_window(&w);
	meter_down_window(&downv, now + 3000000, &w);
	check_window(&w);
	return 0;
}
