/* ratelimit.c — see ratelimit.h. A clock going backwards refills nothing. */
#include "ratelimit.h"

void ratelimit_init(ratelimit *rl, double rate, double burst, int64_t now_us) {
	rl->rate = rate;
	rl->burst = burst;
	rl->tokens = burst;
	rl->last_us = now_us;
}

static void refill(ratelimit *rl, int64_t now_us) {
	if(now_us > rl->last_us) {
		rl->tokens += (double)(now_us - rl->last_us) * rl->rate / 1e6;
		if(rl->tokens > rl->burst)
			rl->tokens = rl->burst;
		rl->last_us = now_us;
	}
}

bool ratelimit_peek(ratelimit *rl, int64_t now_us) {
	refill(rl, now_us);
	return rl->tokens >= 1.0;
}

bool ratelimit_take(ratelimit *rl, int64_t now_us) {
	refill(rl, now_us);
	if(rl->tokens < 1.0)
		return false;
	rl->tokens -= 1.0;
	return true;
}
