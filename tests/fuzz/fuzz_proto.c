/* libFuzzer target: any JSON body must be accepted or refused by
 * proto_parse with a known error code and a bounded reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	json_error_t jerr;
	json_t *body = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
	if(body == NULL)
		return 0;   /* the Janus core refuses non-JSON before the plugin */
	proto_request req;
	proto_error err;
	if(proto_parse(body, &req, &err) < 0) {
		if(err.code < 470 || err.code > 499 || strlen(err.reason) >= PROTO_REASON_MAX)
			abort();
		json_t *j = proto_error_json(&err);
		if(j == NULL)
			abort();
		json_decref(j);
	} else if(req.kind == PROTO_CREATE && (req.client_code == NULL
			|| (req.therapist_key == NULL) == (req.therapist_token == NULL))) {
		abort();
	}
	json_decref(body);
	return 0;
}
