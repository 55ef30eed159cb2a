/*
 * ratelimit.h — a token bucket, driven by the caller's clock.
 *
 * Bounds how fast one participant may send data-channel messages or Janus
 * API requests, and how many wrong keys or invites anyone may try, so a
 * misbehaving or hostile peer cannot make the plugin spend its time (or the
 * store its disk) on them, nor guess credentials. `rate` tokens per second refill up to `burst`;
 * each message takes one. Pure: the time is passed in (microseconds).
 */
#ifndef ALLIANCE_RATELIMIT_H
#define ALLIANCE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ratelimit {
	double tokens;
	double rate;        /* tokens per second */
	double burst;       /* bucket size */
	int64_t last_us;    /* time of the last refill */
} ratelimit;

void ratelimit_init(ratelimit *rl, double rate, double burst, int64_t now_us);

/* Take one token if there is one; false means "over the limit". */
bool ratelimit_take(ratelimit *rl, int64_t now_us);

/* Is there a token (without taking it)? */
bool ratelimit_peek(ratelimit *rl, int64_t now_us);

#endif
