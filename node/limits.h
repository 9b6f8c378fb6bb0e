/* node/limits.h - lp2p-node's resource-limit flags and the `limits` control command (limits.c). */
#ifndef LP2P_NODE_LIMITS_H
#define LP2P_NODE_LIMITS_H
#include <stdio.h>

#include "lp2p/swarm.h"

/* Flags of `lp2p-node listen` (--max-memory, --max-memory-per-peer, --max-memory-per-conn: sizes with
 * k/M/G suffixes; --max-streams-per-peer N), in this order. */
enum { NL_MAX_MEMORY, NL_MAX_MEMORY_PEER, NL_MAX_MEMORY_CONN, NL_MAX_STREAMS_PEER, NL_N };

typedef struct nl_args {
  unsigned long long v[NL_N];
  int have[NL_N];
} nl_args;

/* Parses the value of flag idx (0 or -1 with a message on stderr). */
int nl_parse(nl_args *a, int idx, const char *val);
/* Copies the given flags into cfg. */
void nl_apply(const nl_args *a, lp2p_swarm_config *cfg);
/* The `limits` command: current usage per scope, as text lines on stdout or (json) one JSON
 * object {"event":"limits", "node":{...}, "scopes":[{...}, ...]} and '\n', given to json_out. */
void nl_print(lp2p_swarm *sw, int json, void (*json_out)(const char *line, size_t len, void *ud), void *ud);
/* Usage text for --control. */
#define NL_CONTROL_HELP "\"limits [reset-peak]\" (resource usage per scope: limits {node, scopes}; reset-peak: memory_peak starts again after this report)"

#endif
