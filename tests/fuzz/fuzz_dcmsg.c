/* libFuzzer target: the data-channel codec must refuse or accept any bytes
 * without crashing, leaking or overrunning, and every reply it builds must
 * be valid JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "dcmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	dcmsg m;
	dcmsg_error e;
	char *reply;
	if(dcmsg_parse((const char *)data, size, &m, &e) == 0) {
		if(m.type == DCMSG_ANSWER && !json_is_object(m.responses))
			abort();
		reply = m.type == DCMSG_PING ? dcmsg_pong(m.ref) : dcmsg_ack(m.pulse_id, m.final);
		dcmsg_clear(&m);
	} else
		reply = dcmsg_error_text(&e);
	if(reply == NULL)
		abort();
	json_error_t jerr;
	json_t *j = json_loads(reply, 0, &jerr);
	if(j == NULL)
		abort();
	json_decref(j);
	free(reply);
	return 0;
}
