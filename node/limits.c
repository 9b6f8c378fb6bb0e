/* node/limits.c - resource-limit flags of `lp2p-node listen` and its `limits` control command. */
#include "limits.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "netcmd.h"

static const char *const nl_opt_names[NL_N] = {"max-memory", "max-memory-per-peer", "max-memory-per-conn",
                                               "max-streams-per-peer"};

int nl_parse(nl_args *a, int idx, const char *val) {
  uint64_t v;
  int rv = idx == NL_MAX_STREAMS_PEER ? nc_parse_uint(val, UINT32_MAX, &v) : nc_parse_size(val, &v);
  if (rv) return cli_usage_error("listen: bad --%s '%s'", nl_opt_names[idx], val);
  a->v[idx] = v;
  a->have[idx] = 1;
  return 0;
}

void nl_apply(const nl_args *a, lp2p_swarm_config *cfg) {
  if (a->have[NL_MAX_MEMORY]) cfg->max_memory = a->v[NL_MAX_MEMORY];
  if (a->have[NL_MAX_MEMORY_PEER]) cfg->max_memory_per_peer = a->v[NL_MAX_MEMORY_PEER];
  if (a->have[NL_MAX_MEMORY_CONN]) cfg->max_memory_per_conn = a->v[NL_MAX_MEMORY_CONN];
  if (a->have[NL_MAX_STREAMS_PEER]) cfg->max_streams_per_peer = (uint32_t)a->v[NL_MAX_STREAMS_PEER];
}

static const char *kind_name(lp2p_scope_kind k) {
  switch (k) {
    case LP2P_SCOPE_NODE: return "node";
    case LP2P_SCOPE_PEER: return "peer";
    case LP2P_SCOPE_CONN: return "conn";
    case LP2P_SCOPE_PROTOCOL: return "protocol";
  }
  return "?";
}

static void scope_json(cli_json *j, const lp2p_scope_usage *u) {
  char pb[LP2P_PEER_ID_MAX_TEXT];
  cli_json_str(j, "scope", kind_name(u->kind));
  if (u->kind == LP2P_SCOPE_PEER || (u->kind == LP2P_SCOPE_CONN && u->peer.len))
    cli_json_str(j, "peer", nc_peer_str(&u->peer, pb, sizeof pb));
  if (u->kind == LP2P_SCOPE_CONN) cli_json_int(j, "conn_id", (long long)u->conn_id);
  if (u->kind == LP2P_SCOPE_PROTOCOL) cli_json_str(j, "protocol", u->protocol);
  cli_json_int(j, "memory", (long long)u->memory);
  cli_json_int(j, "memory_limit", (long long)u->memory_limit);
  cli_json_int(j, "memory_peak", (long long)u->memory_peak);
  cli_json_int(j, "streams_in", u->streams_in);
  cli_json_int(j, "streams_out", u->streams_out);
  cli_json_int(j, "streams_limit", u->streams_limit);
  cli_json_int(j, "conns_in", u->conns_in);
  cli_json_int(j, "conns_out", u->conns_out);
}

/* The scopes as a JSON array of objects, built by hand (cli_json has no nested objects; its buffer is
 * "{" followed by the fields, NUL-terminated). */
void nl_print(lp2p_swarm *sw, int json, void (*json_out)(const char *line, size_t len, void *ud), void *ud) {
  size_t n = lp2p_swarm_resource_usage(sw, NULL, 0, sizeof(lp2p_scope_usage));
  lp2p_scope_usage *u = calloc(n ? n : 1, sizeof *u);
  if (!u) return;
  n = lp2p_swarm_resource_usage(sw, u, n, sizeof *u);
  if (!json) {
    char pb[LP2P_PEER_ID_MAX_TEXT];
    for (size_t i = 0; i < n; i++) {
      const char *who = u[i].kind == LP2P_SCOPE_PROTOCOL ? u[i].protocol
                        : u[i].kind == LP2P_SCOPE_NODE   ? ""
                                                         : nc_peer_str(&u[i].peer, pb, sizeof pb);
      printf("limits: %s %s%s%.0llu memory=%" PRIu64 "/%" PRIu64 " streams=%u+%u/%u conns=%u+%u\n",
             kind_name(u[i].kind), who, u[i].kind == LP2P_SCOPE_CONN ? " #" : "",
             u[i].kind == LP2P_SCOPE_CONN ? (unsigned long long)u[i].conn_id : 0ull, u[i].memory,
             u[i].memory_limit, u[i].streams_in, u[i].streams_out, u[i].streams_limit, u[i].conns_in,
             u[i].conns_out);
    }
    fflush(stdout);
    free(u);
    return;
  }
  /* {"event":"limits","node":{...},"scopes":[{...},...]} */
  cli_json j;
  cli_json_begin(&j);
  scope_json(&j, &u[0]);
  char *node = j.buf;
  size_t cap = 64 + (node ? strlen(node) : 0), len = 0;
  char *out = malloc(cap);
  if (!out || !node) {
    free(out);
    free(node);
    free(u);
    return;
  }
  len = (size_t)snprintf(out, cap, "{\"event\":\"limits\",\"node\":{%s},\"scopes\":[", node + 1);
  free(node);
  for (size_t i = 1; i < n; i++) {
    cli_json_begin(&j);
    scope_json(&j, &u[i]);
    size_t l = j.buf ? strlen(j.buf) : 0;
    char *o = realloc(out, len + l + 8);
    if (!o || !j.buf) {
      free(j.buf);
      break;
    }
    out = o;
    len += (size_t)sprintf(out + len, "%s{%s}", i > 1 ? "," : "", j.buf + 1);
    free(j.buf);
  }
  char *o = realloc(out, len + 4);
  if (o) {
    out = o;
    len += (size_t)sprintf(out + len, "]}\n");
    json_out(out, len, ud);
  }
  free(out);
  free(u);
}
