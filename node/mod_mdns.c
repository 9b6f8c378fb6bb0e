/* node/mod_mdns.c - `lp2p-node listen --mdns [--mdns-dial]`: LAN discovery (lp2p/mdns.h).
 * Events: peer-discovered {peer, addrs, source:"mdns"} and peer-expired {peer}. Command: `mdns`
 * (the service's counters, for tests and benchmarks), `mdns-query` (query at once). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/mdns.h"
#include "module.h"
#include "netcmd.h"

enum { O_MDNS, O_DIAL, O_TTL, O_FAMILY, O_QUERY_MAX, O_PORT };

static const cli_opt mdns_opts[] = {
    [O_MDNS] = {"mdns", NULL, "discover peers on the LAN with mDNS (_p2p._udp.local) and be discovered"},
    [O_DIAL] = {"mdns-dial", NULL, "dial every peer mDNS discovers (implies --mdns)"},
    [O_TTL] = {"mdns-ttl", "SEC", "TTL of the mDNS records we send (default 4500; short ones for tests)"},
    [O_FAMILY] = {"mdns-family", "4|6|both", "IP families mDNS uses (default both)"},
    [O_QUERY_MAX] = {"mdns-query-max", "MS", "longest interval between mDNS queries (default 300000)"},
    [O_PORT] = {"mdns-port", "PORT", "testing: mDNS UDP port (default 5353)"},
};

typedef struct mdns_state {
  int on, dial, v4_off, v6_off;
  long ttl, query_max, port;
  lp2p_mdns_service *svc;
} mdns_state;

static int parse_num(const char *val, long lo, long hi, long *out) {
  char *end;
  long v = strtol(val, &end, 10);
  if (!*val || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int mdns_opt(node *n, void *st, size_t idx, const char *val) {
  (void)n;
  mdns_state *s = st;
  switch (idx) {
    case O_MDNS: s->on = 1; break;
    case O_DIAL: s->on = s->dial = 1; break;
    case O_TTL:
      if (parse_num(val, 1, 4500, &s->ttl)) return cli_usage_error("listen: --mdns-ttl wants 1..4500 seconds");
      break;
    case O_QUERY_MAX:
      if (parse_num(val, 1000, 3600000, &s->query_max))
        return cli_usage_error("listen: --mdns-query-max wants 1000..3600000 ms");
      break;
    case O_PORT:
      if (parse_num(val, 1, 65535, &s->port)) return cli_usage_error("listen: --mdns-port wants 1..65535");
      break;
    case O_FAMILY:
      if (!strcmp(val, "4")) s->v6_off = 1, s->v4_off = 0;
      else if (!strcmp(val, "6")) s->v4_off = 1, s->v6_off = 0;
      else if (!strcmp(val, "both")) s->v4_off = s->v6_off = 0;
      else return cli_usage_error("listen: --mdns-family wants 4, 6 or both");
      break;
    default: break;
  }
  return 0;
}

static int mdns_setup(node *n, void *st) {
  mdns_state *s = st;
  if (!s->on) return 0;
  lp2p_mdns_service_config c;
  lp2p_mdns_service_config_default(&c);
  c.auto_dial = s->dial;
  c.no_ipv4 = s->v4_off;
  c.no_ipv6 = s->v6_off;
  if (s->ttl) c.ttl_s = (uint32_t)s->ttl;
  if (s->query_max) {
    c.query_interval_max_ms = (uint32_t)s->query_max;
    if (c.query_interval_min_ms > c.query_interval_max_ms) c.query_interval_min_ms = c.query_interval_max_ms;
  }
  if (s->port) c.port = (uint16_t)s->port;
  int rv = lp2p_mdns_add(node_swarm(n), &c, &s->svc);
  if (rv < 0) return cli_error("listen: cannot start mDNS: %s", lp2p_strerror(rv));
  return 0;
}

static void mdns_event(node *n, void *st, const lp2p_swarm_event *ev) {
  mdns_state *s = st;
  if (!s->svc || ev->source != LP2P_ADDR_SRC_MDNS ||
      (ev->type != LP2P_SWARM_EV_PEER_DISCOVERED && ev->type != LP2P_SWARM_EV_PEER_EXPIRED))
    return;
  char pb[LP2P_PEER_ID_MAX_TEXT];
  const char *peer = nc_peer_str(ev->peer, pb, sizeof pb);
  if (ev->type == LP2P_SWARM_EV_PEER_EXPIRED) {
    node_text(n, "peer expired (mdns): %s", peer);
    if (!node_json_wanted(n)) return;
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "peer-expired");
    cli_json_str(&j, "peer", peer);
    node_emit(n, &j, 0);
    return;
  }
  size_t na = ev->n_addrs > 32 ? 32 : ev->n_addrs;
  char (*txt)[LP2P_MULTIADDR_MAX_TEXT] = calloc(na ? na : 1, sizeof *txt);
  const char *ptr[32];
  if (!txt) return;
  size_t k = 0;
  for (size_t i = 0; i < na; i++)
    if (lp2p_multiaddr_to_string(ev->addrs[i], txt[k], sizeof txt[k]) > 0) ptr[k] = txt[k], k++;
  node_text(n, "peer discovered (mdns): %s %s", peer, k ? ptr[0] : "");
  if (node_json_wanted(n)) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "peer-discovered");
    cli_json_str(&j, "peer", peer);
    cli_json_str_array(&j, "addrs", ptr, k);
    cli_json_str(&j, "source", "mdns");
    node_emit(n, &j, 0);
  }
  free(txt);
}

static int mdns_command(node *n, void *st, uint64_t origin, const char *verb, char *args) {
  (void)args;
  mdns_state *s = st;
  if (strcmp(verb, "mdns") && strcmp(verb, "mdns-query")) return 0;
  if (!s->svc) {
    node_command_error(n, origin, verb, "mDNS is off (listen --mdns)");
    return 1;
  }
  if (!strcmp(verb, "mdns-query")) lp2p_mdns_service_query(s->svc);
  lp2p_mdns_service_stats t = {.struct_size = sizeof t};
  lp2p_mdns_service_get_stats(s->svc, &t);
  node_text(n, "mdns: name %s, %zu peers, %u sockets, sent %llu packets / %llu bytes, received %llu / %llu",
            lp2p_mdns_service_peer_name(s->svc), lp2p_mdns_service_peer_count(s->svc), t.sockets,
            (unsigned long long)t.packets_sent, (unsigned long long)t.bytes_sent,
            (unsigned long long)t.packets_received, (unsigned long long)t.bytes_received);
  if (!node_json_wanted(n)) return 1;
  cli_json j;
  cli_json_begin(&j);
  cli_json_str(&j, "event", verb);
  cli_json_bool(&j, "ok", 1);
  cli_json_str(&j, "name", lp2p_mdns_service_peer_name(s->svc));
  cli_json_int(&j, "peers", (long long)lp2p_mdns_service_peer_count(s->svc));
  cli_json_int(&j, "sockets", t.sockets);
  cli_json_int(&j, "packets_sent", (long long)t.packets_sent);
  cli_json_int(&j, "bytes_sent", (long long)t.bytes_sent);
  cli_json_int(&j, "packets_received", (long long)t.packets_received);
  cli_json_int(&j, "bytes_received", (long long)t.bytes_received);
  cli_json_int(&j, "queries_sent", (long long)t.queries_sent);
  cli_json_int(&j, "responses_sent", (long long)t.responses_sent);
  cli_json_int(&j, "malformed", (long long)t.packets_malformed);
  cli_json_int(&j, "records_dropped", (long long)t.records_dropped);
  cli_json_int(&j, "flood_dropped", (long long)t.packets_flood_dropped);
  node_emit(n, &j, origin);
  return 1;
}

const node_module node_mod_mdns = {
    .name = "mdns",
    .opts = mdns_opts,
    .n_opts = sizeof mdns_opts / sizeof *mdns_opts,
    .opt = mdns_opt,
    .usage = "mDNS (--mdns): events peer-discovered {peer, addrs, source:\"mdns\"}, peer-expired {peer};\n"
             "  commands: mdns (counters), mdns-query (query at once)\n",
    .state_size = sizeof(mdns_state),
    .setup = mdns_setup,
    .command = mdns_command,
    .swarm_event = mdns_event,
    .commands = "mdns, mdns-query",
};
