/*
 * emodel.h — the listening quality of an audio path as an R factor and a
 * MOS: the simplified ITU-T G.107 E-model that WebRTC monitors commonly use
 * (docs/metrics.md gives the derivation, the constants and the sources).
 *
 *   Le = RTT / 2 + 2 × jitter + 10 ms          effective one-way latency
 *   Id = Le / 40            if Le < 160 ms      delay impairment
 *      = (Le − 120) / 10    otherwise
 *   Ie = 2.5 × loss%                            loss impairment
 *   R  = 93.2 − Id − Ie, clamped to [0, 100]
 *   MOS = 1 + 0.035 R + 7·10⁻⁶ R (R − 60)(100 − R)  (G.107 Annex B),
 *         1 for R ≤ 0, 4.5 for R ≥ 100, never below 1.
 *
 * RTT is a round trip and is halved: G.107's delay impairment is a function
 * of the one-way (mouth-to-ear) delay, which for a symmetric path is half
 * the round trip. 2 × jitter stands for the receiver's jitter buffer, 10 ms
 * for the codec.
 *
 * A path is what one participant hears from the other: client → server →
 * therapist is the client's up window (loss, jitter measured at the server)
 * plus the therapist's down window (loss, jitter, RTT the therapist
 * reports), with the client leg's RTT from the client's own down meter.
 * RTTs and jitters add; losses combine as 1 − (1 − a)(1 − b). The relay
 * keeps sequence numbers, so the receiver's reports already include the
 * sender leg's loss and jitter: the path figures are an upper bound
 * (docs/metrics.md, "Path").
 *
 * Pure arithmetic: no state, no allocation, no libm.
 */
#ifndef ALLIANCE_EMODEL_H
#define ALLIANCE_EMODEL_H

#include <stdbool.h>
#include "meter.h"

#define EMODEL_R0 93.2              /* G.107 default Ro − Is (A = 0) */
#define EMODEL_CODEC_MS 10.0        /* codec / packetisation allowance */
#define EMODEL_JITTER_FACTOR 2.0    /* jitter buffer ≈ 2 × jitter */
#define EMODEL_ID_KNEE_MS 160.0     /* Id: slope 1/40 below, 1/10 above */
#define EMODEL_LOSS_FACTOR 2.5      /* Ie per percent of loss */

/* Effective one-way latency in ms; negative (unknown) inputs count as 0. */
double emodel_latency_ms(double rtt_ms, double jitter_ms);

/* R in [0, 100]. rtt_ms: round trip; loss_pct: percent. Negative or NaN
 * inputs count as 0. */
double emodel_r(double rtt_ms, double jitter_ms, double loss_pct);

/* MOS in [1, 4.5]. */
double emodel_mos(double r);

typedef struct emodel_result {
	double rtt_ms, jitter_ms, loss_pct;   /* the path's combined inputs */
	double latency_ms;                    /* Le */
	double r, mos;
	bool valid;          /* every input was known (no -1 among them) */
} emodel_result;

/* An end-to-end path: the sender's up window, the sender leg's RTT (its
 * down window's rtt_ms), the receiver's down window. Unknown inputs count
 * as 0 and make the result not valid. Returns out->valid. */
bool emodel_path(const meter_window *up, double up_leg_rtt_ms, const meter_window *down,
	emodel_result *out);

#endif
