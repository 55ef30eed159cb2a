/* meter_bench — the per-packet cost of the quality meter (meter_up_rtp),
 * measured, not asserted. Feeds N synthetic RTP packets (default 10 M: a
 * 30 fps video stream of 4 packets per frame interleaved with 50 pps
 * audio, 1 % loss, some reordering and duplicates), closes a window every
 * simulated second, and prints ns/packet; then the same for
 * meter_rtcp_parse + meter_down_report on a compound RR + NACK + REMB.
 *
 *   make bench && bench/meter_bench [N]
 *
 * Not built by `make` or `make check`. Build it -O2 (the bench target does). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "meter.h"

static double now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void put_rtp(uint8_t *b, uint16_t seq, uint32_t ts, uint32_t ssrc, int marker) {
	b[0] = 0x90;                      /* with a one-word extension */
	b[1] = (uint8_t)((marker ? 0x80 : 0) | 111);
	b[2] = (uint8_t)(seq >> 8);
	b[3] = (uint8_t)seq;
	b[4] = (uint8_t)(ts >> 24);
	b[5] = (uint8_t)(ts >> 16);
	b[6] = (uint8_t)(ts >> 8);
	b[7] = (uint8_t)ts;
	b[8] = (uint8_t)(ssrc >> 24);
	b[9] = (uint8_t)(ssrc >> 16);
	b[10] = (uint8_t)(ssrc >> 8);
	b[11] = (uint8_t)ssrc;
	b[12] = 0xBE;
	b[13] = 0xDE;
	b[14] = 0;
	b[15] = 1;
}

typedef struct sink {
	meter_down *d;
	uint64_t ntp;
} sink;

static void on_report(void *u, const meter_report_block *rb) {
	sink *s = u;
	meter_down_report(s->d, rb, s->ntp, 90000);
}

static void on_nack(void *u, uint32_t a, uint32_t b, unsigned lost) {
	meter_down_nack(((sink *)u)->d, lost);
}

static void on_remb(void *u, uint32_t a, uint64_t bps, uint32_t f, unsigned n) {
	meter_down_remb(((sink *)u)->d, bps);
}

int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 10000000L;
	static uint8_t video[1200], audio[160];
	meter_up mv, ma;
	meter_up_init(&mv, true, 90000);
	meter_up_init(&ma, false, 48000);
	/* the schedule is precomputed so the loop measures the meter only */
	enum { PLAN = 1 << 16 };
	static struct { uint16_t seq; uint8_t video, marker, frame; int32_t dt_us; } plan[PLAN];
	uint32_t rng = 12345;
	uint16_t vseq = 0, aseq = 0;
	for(int i = 0; i < PLAN; i++) {
		rng = rng * 1103515245u + 12345u;
		int v = (i % 6) != 5;          /* 5 video : 1 audio */
		plan[i].video = (uint8_t)v;
		plan[i].seq = v ? vseq++ : aseq++;
		plan[i].marker = v && (plan[i].seq % 4 == 3);
		plan[i].dt_us = 3333;            /* ~300 packets/s */
		if((rng >> 16) % 100 == 0)       /* a loss: skip a number */
			plan[i].seq = v ? vseq++ : aseq++;
		else if((rng >> 16) % 500 == 1)
			plan[i].seq -= 2;            /* a duplicate of an earlier one */
	}
	int64_t t = 0, next_window = 1000000;
	uint32_t vts = 0, ats = 0;
	meter_window w;
	double t0 = now_ns();
	for(long i = 0; i < n; i++) {
		int k = (int)(i & (PLAN - 1));
		t += plan[k].dt_us;
		if(plan[k].video) {
			if(plan[k].seq % 4 == 0)
				vts += 3000;
			put_rtp(video, plan[k].seq, vts, 0x1234, plan[k].marker);
			meter_up_rtp(&mv, video, sizeof(video), t);
		} else {
			ats += 960;
			put_rtp(audio, plan[k].seq, ats, 0x5678, 0);
			meter_up_rtp(&ma, audio, sizeof(audio), t);
		}
		if(t >= next_window) {
			meter_up_window(&mv, t, &w);
			meter_up_window(&ma, t, &w);
			next_window += 1000000;
		}
	}
	double dt = now_ns() - t0;
	printf("meter_up_rtp: %ld packets in %.3f s: %.1f ns/packet (incl. header writes and 1 s windows)\n",
		n, dt / 1e9, dt / (double)n);
	printf("  video: %lld packets, %lld lost, %lld duplicates, %lld frames; audio: %lld packets\n",
		(long long)mv.total_packets, (long long)(mv.total_expected - mv.total_packets),
		(long long)mv.total_duplicates, (long long)mv.total_frames, (long long)ma.total_packets);

	/* RTCP: RR (1 block) + NACK (2 entries) + REMB */
	const uint8_t c[] = {
		0x81, 201, 0x00, 0x07, 0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0x12, 0x34, 3, 0, 0, 40,
		0, 1, 0, 100, 0, 0, 1, 0, 0x6F, 0x80, 0x70, 0x00, 0, 0, 0x10, 0,
		0x81, 205, 0x00, 0x04, 0, 0, 0, 1, 0, 0, 0x12, 0x34, 0, 100, 0, 5, 1, 0, 0, 0,
		0x8F, 206, 0x00, 0x05, 0, 0, 0, 1, 0, 0, 0, 0, 'R', 'E', 'M', 'B', 1, 0x0D, 0xE8, 0x48,
		0, 0, 0x12, 0x34,
	};
	meter_down d;
	meter_down_init(&d, true);
	sink s = { &d, meter_ntp_from_us(1700000000000000LL) };
	meter_rtcp_visitor v = { .report = on_report, .nack = on_nack, .remb = on_remb };
	long nr = n / 10;
	t0 = now_ns();
	for(long i = 0; i < nr; i++) {
		s.ntp += 1ULL << 24;
		if(meter_rtcp_parse(c, sizeof(c), &v, &s) != 3)
			return 1;
	}
	dt = now_ns() - t0;
	printf("meter_rtcp_parse + meter_down_*: %ld compounds: %.1f ns/compound\n", nr, dt / (double)nr);
	return 0;
}
