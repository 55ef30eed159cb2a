/*
 * bench_sample.h — the quality sample both report benchmarks store
 * (ack_bench.c through the store API, report_bench.c straight into SQLite):
 * sample i of a video visit, on leg `leg` (0, 1: audio; 2, 3: video), as the
 * plugin's 5-second metrics JSON. Deterministic in i, so the two benchmarks
 * fill their stores with the same figures.
 */
#ifndef ALLIANCE_BENCH_SAMPLE_H
#define ALLIANCE_BENCH_SAMPLE_H

#include <glib.h>

static inline void bench_sample_json(char *m, size_t len, int i, int leg) {
	if(leg < 2)
		g_snprintf(m, len, "{\"seconds\":5,\"loss_pct\":%.2f,\"jitter_ms\":%.1f,"
			"\"packets\":%d,\"expected\":250,\"lost\":%d,\"bitrate_kbps\":41.5,\"stalls\":0,\"stall_s\":0}",
			(i % 50) / 25.0, 3 + (i % 7) * 0.5, 250 - i % 3, i % 3);
	else
		g_snprintf(m, len, "{\"seconds\":5,\"loss_pct\":%.2f,\"jitter_ms\":%.1f,"
			"\"packets\":%d,\"expected\":450,\"lost\":%d,\"bitrate_kbps\":610.2,\"stalls\":0,"
			"\"stall_s\":0,\"fps\":14.8,\"freezes\":%d,\"freeze_s\":%.1f}",
			(i % 50) / 25.0, 8 + (i % 5) * 0.7, 450 - i % 4, i % 4, i % 97 == 0, i % 97 == 0 ? 0.9 : 0.0);
}

#endif
