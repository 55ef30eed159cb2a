/*
 * callclass.c — see callclass.h. The comparisons are strict, as CQD
 * states them: a stream exactly at a threshold is still good.
 */
#include "callclass.h"

#include <math.h>
#include <stddef.h>

void callclass_in_init(callclass_in *in, bool video) {
	in->video = video;
	in->loss_pct = in->jitter_ms = in->rtt_ms = in->concealed_ratio = in->fps = -1;
}

static bool known(double v) {
	return v >= 0 && isfinite(v);
}

unsigned callclass_poor(const callclass_in *in) {
	unsigned r = 0;
	if(in->video) {
		/* CQD's video classifier: the first metric available decides */
		if(known(in->fps))
			return in->fps < CALLCLASS_VIDEO_FPS ? CALLCLASS_FPS : 0;
		if(known(in->loss_pct) && in->loss_pct > CALLCLASS_VIDEO_LOSS_PCT)
			r |= CALLCLASS_VIDEO_LOSS;
		return r;
	}
	if(known(in->loss_pct) && in->loss_pct > CALLCLASS_AUDIO_LOSS_PCT)
		r |= CALLCLASS_LOSS;
	if(known(in->jitter_ms) && in->jitter_ms > CALLCLASS_AUDIO_JITTER_MS)
		r |= CALLCLASS_JITTER;
	if(known(in->rtt_ms) && in->rtt_ms > CALLCLASS_AUDIO_RTT_MS)
		r |= CALLCLASS_RTT;
	if(known(in->concealed_ratio) && in->concealed_ratio > CALLCLASS_AUDIO_CONCEALED)
		r |= CALLCLASS_CONCEALED;
	return r;
}

const char *callclass_name(unsigned reasons) {
	return reasons ? "poor" : "good";
}

const char *callclass_reason_name(unsigned bit) {
	switch(bit) {
		case CALLCLASS_LOSS: return "loss";
		case CALLCLASS_JITTER: return "jitter";
		case CALLCLASS_RTT: return "rtt";
		case CALLCLASS_CONCEALED: return "concealed";
		case CALLCLASS_FPS: return "fps";
		case CALLCLASS_VIDEO_LOSS: return "video_loss";
	}
	return NULL;
}

static double get(const json_t *o, const char *key) {
	const json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : -1;
}

unsigned callclass_annotate(json_t *summary, bool video) {
	if(!json_is_object(summary))
		return 0;
	callclass_in in;
	callclass_in_init(&in, video);
	in.loss_pct = get(summary, "loss_pct");
	in.jitter_ms = get(summary, "jitter_ms");
	in.rtt_ms = get(summary, "rtt_ms");
	in.concealed_ratio = get(summary, "concealed_ratio");
	in.fps = get(summary, "fps");
	/* a leg that received no packet (no camera, audio only) has no frame
	 * rate to judge: its 0 fps is not a frozen picture */
	const json_t *packets = json_object_get(summary, "packets");
	if(json_is_number(packets) && json_number_value(packets) <= 0)
		in.fps = -1;
	unsigned r = callclass_poor(&in);
	json_t *list = json_array();
	for(unsigned bit = 1; bit & CALLCLASS_ALL; bit <<= 1)
		if(r & bit)
			json_array_append_new(list, json_string(callclass_reason_name(bit)));
	json_object_set_new(summary, "class", json_string(callclass_name(r)));
	json_object_set_new(summary, "poor_reasons", list);
	return r;
}

static bool measured(const json_t *summary) {
	const json_t *packets = json_object_get(summary, "packets");
	if(packets && !json_is_null(packets))
		return json_is_number(packets) && json_number_value(packets) > 0;
	return known(get(summary, "loss_pct"));
}

const char *callclass_legs(json_t *legs) {
	if(!json_is_object(legs))
		return NULL;
	int video_legs = 0;
	bool poor = false;
	const char *name;
	json_t *leg;
	json_object_foreach(legs, name, leg) {
		callclass_annotate(json_object_get(leg, "audio"), false);
		json_t *v = json_object_get(leg, "video");
		unsigned r = callclass_annotate(v, true);
		if(json_is_object(v) && measured(v)) {
			video_legs++;
			poor |= r != 0;
		}
	}
	return video_legs ? callclass_name(poor ? 1u : 0u) : NULL;
}

void callclass_context(json_t *ctx) {
	if(!json_is_object(ctx))
		return;
	const char *vc = callclass_legs(json_object_get(ctx, "legs"));
	json_object_set_new(ctx, "video_class", vc ? json_string(vc) : json_null());
}
