/*
 * Messages on the SOCK_SEQPACKET pair between the runtime (parent) and the cloned executor. One fixed-size
 * struct per packet, so a short or long read is itself a protocol error.
 */
#ifndef TSRT_SYNC_H
#define TSRT_SYNC_H

#include <stdint.h>

/* The message types (MSG_*), the step ids a MSG_ERROR names (S_*, with the runtime's text for each) and
 * TSRT_DETAIL_MAX are written once in src/native-abi/table.ts; npm run build generates this header from it. */
#include "../generated/tsrt-exec-abi.h"

struct tsrt_msg {
	uint32_t type;
	int32_t step;
	int32_t err;
	int32_t pid;
	char detail[TSRT_DETAIL_MAX];
};

#endif
