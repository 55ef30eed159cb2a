/* emodel.c — see emodel.h and docs/metrics.md. No libm: the formula needs
 * only + − × ÷, and NaN is caught by x != x. */
#include "emodel.h"

#include <string.h>

static double known(double x) {
	return (x != x || x < 0) ? 0 : x;
}

double emodel_latency_ms(double rtt_ms, double jitter_ms) {
	return known(rtt_ms) / 2.0 + EMODEL_JITTER_FACTOR * known(jitter_ms) + EMODEL_CODEC_MS;
}

double emodel_r(double rtt_ms, double jitter_ms, double loss_pct) {
	double le = emodel_latency_ms(rtt_ms, jitter_ms);
	double id = le < EMODEL_ID_KNEE_MS ? le / 40.0 : (le - 120.0) / 10.0;
	/* no upper clamp needed on loss: 2.5 × 38 % already takes R to 0 */
	double r = EMODEL_R0 - id - EMODEL_LOSS_FACTOR * known(loss_pct);
	if(r != r || r < 0)
		return 0;
	return r > 100 ? 100 : r;
}

double emodel_mos(double r) {
	if(r != r || r <= 0)
		return 1.0;
	if(r >= 100)
		return 4.5;
	double mos = 1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r);
	/* the cubic dips just below 1 for 0 < R < 6.5 */
	return mos < 1.0 ? 1.0 : mos;
}

bool emodel_path(const meter_window *up, double up_leg_rtt_ms, const meter_window *down,
		emodel_result *out) {
	memset(out, 0, sizeof(*out));
	double in[5] = { up_leg_rtt_ms, down->rtt_ms, up->jitter_ms, down->jitter_ms, up->loss_pct };
	bool valid = down->loss_pct >= 0;
	for(int i = 0; i < 5; i++)
		if(in[i] != in[i] || in[i] < 0)
			valid = false;
	out->rtt_ms = known(up_leg_rtt_ms) + known(down->rtt_ms);
	out->jitter_ms = known(up->jitter_ms) + known(down->jitter_ms);
	double a = known(up->loss_pct) / 100.0, b = known(down->loss_pct) / 100.0;
	if(a > 1)
		a = 1;
	if(b > 1)
		b = 1;
	out->loss_pct = 100.0 * (1.0 - (1.0 - a) * (1.0 - b));
	out->latency_ms = emodel_latency_ms(out->rtt_ms, out->jitter_ms);
	out->r = emodel_r(out->rtt_ms, out->jitter_ms, out->loss_pct);
	out->mos = emodel_mos(out->r);
	out->valid = valid;
	return valid;
}
