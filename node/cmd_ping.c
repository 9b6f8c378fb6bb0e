/* node/cmd_ping.c - `lp2p-node ping MADDR`: dial a peer and ping it
 * (/ipfs/ping/1.0.0, one stream per ping). */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "lp2p/ping.h"
#include "netcmd.h"

enum { OPT_COUNT, OPT_INTERVAL, OPT_TIMEOUT, OPT_IDENTITY, OPT_JSON, OPT_HELP };
static const cli_opt ping_opts[] = {
    [OPT_COUNT] = {"count", "N", "number of pings (default 1)"},
    [OPT_INTERVAL] = {"interval", "MS", "pause between pings in milliseconds (default 1000)"},
    [OPT_TIMEOUT] = {"timeout", "SEC", "give up after SEC seconds in total (default 10 + 11 per ping)"},
    [OPT_IDENTITY] = {"identity", "FILE", "identity key file to use (default: a fresh Ed25519 key)"},
    [OPT_JSON] = CLI_OPT_JSON,
    [OPT_HELP] = CLI_OPT_HELP,
};
#define N_OPTS (sizeof ping_opts / sizeof *ping_opts)

typedef struct ping_args {
  uint64_t count, interval, timeout;
  int have_timeout;
  const char *identity;
  int json;
} ping_args;

static void ping_usage(FILE *f) {
  fprintf(f, "Usage: " CLI_PROG " ping MADDR [--count N] [--interval MS] [--timeout SEC] [--json]\n"
             "\n"
             "Connects to MADDR (TCP + Noise + Yamux; a /p2p/<peer-id> suffix is checked against\n"
             "the remote's identity) and sends N pings (/ipfs/ping/1.0.0, a new stream per ping).\n"
             "Prints one line per ping with its round-trip time. Exits 0 when every ping\n"
             "succeeded, else prints one error line on stderr and exits 1.\n"
             "\n"
             "Options:\n");
  cli_print_opts(f, ping_opts, N_OPTS);
  fprintf(f, "\nWith --json: {\"event\":\"connected\",\"peer\",\"addr\"}, then per ping\n"
             "{\"event\":\"ping\",\"seq\",\"peer\",\"rtt_us\",\"rtt_ms\"}, then {\"event\":\"done\",\"pings\"}.\n");
}

static int on_opt(void *ud, size_t idx, const char *val) {
  ping_args *a = ud;
  switch (idx) {
    case OPT_COUNT:
      if (nc_parse_uint(val, 1000000, &a->count) || !a->count)
        return cli_usage_error("ping: --count needs a positive integer, got '%s'", val);
      break;
    case OPT_INTERVAL:
      if (nc_parse_uint(val, 3600000, &a->interval))
        return cli_usage_error("ping: --interval needs milliseconds, got '%s'", val);
      break;
    case OPT_TIMEOUT:
      if (nc_parse_uint(val, 86400, &a->timeout) || !a->timeout)
        return cli_usage_error("ping: --timeout needs a positive number of seconds, got '%s'", val);
      a->have_timeout = 1;
      break;
    case OPT_IDENTITY: a->identity = val; break;
    case OPT_JSON: a->json = 1; break;
  }
  return 0;
}

typedef struct ping_state {
  nc_client c;
  ping_args a;
  uint64_t seq;
  lp2p_timer *gap;
} ping_state;

static void send_one(ping_state *p);

static void on_pong(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, uint64_t rtt_us, void *ud) {
  ping_state *p = ud;
  (void)sw;
  if (p->c.finished) return;
  if (err) {
    nc_client_finish(&p->c, err, "ping failed");
    return;
  }
  p->seq++;
  char pb[LP2P_PEER_ID_MAX_TEXT];
  if (p->a.json) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "ping");
    cli_json_int(&j, "seq", (long long)p->seq);
    cli_json_str(&j, "peer", nc_peer_str(peer, pb, sizeof pb));
    cli_json_int(&j, "rtt_us", (long long)rtt_us);
    char ms[32];
    snprintf(ms, sizeof ms, "%.3f", (double)rtt_us / 1000.0);
    cli_json_str(&j, "rtt_ms", ms);
    nc_json_out(&j);
  } else {
    printf("pong from %s: seq=%llu time=%.3f ms\n", nc_peer_str(peer, pb, sizeof pb), (unsigned long long)p->seq,
           (double)rtt_us / 1000.0);
    fflush(stdout);
  }
  if (p->seq >= p->a.count) {
    if (p->a.json) {
      cli_json j;
      cli_json_begin(&j);
      cli_json_str(&j, "event", "done");
      cli_json_int(&j, "pings", (long long)p->seq);
      nc_json_out(&j);
    }
    nc_client_finish(&p->c, 0, NULL);
    return;
  }
  if (p->a.interval && p->gap)
    lp2p_timer_start(p->gap, p->a.interval, 0);
  else
    send_one(p);
}

static void send_one(ping_state *p) {
  int rv = lp2p_ping(p->c.sw, &p->c.peer, on_pong, p);
  if (rv < 0) nc_client_finish(&p->c, rv, "ping failed");
}

static void on_gap(lp2p_timer *t, void *ud) {
  (void)t;
  send_one(ud);
}

static void on_connected(nc_client *c) {
  ping_state *p = c->ud;
  if (lp2p_timer_new(&p->gap, c->sw, on_gap, p) < 0) p->gap = NULL;
  send_one(p);
}

int cmd_ping(const cli_command *cmd, int argc, char **argv) {
  (void)cmd;
  const char *target = NULL;
  int rv = nc_take_positional("ping", &argc, argv, ping_opts, N_OPTS, &target);
  if (rv) return rv;
  ping_state p;
  memset(&p, 0, sizeof p);
  p.a.count = 1;
  p.a.interval = 1000;
  rv = cli_parse(argc, argv, ping_opts, N_OPTS, on_opt, &p.a);
  if (rv == CLI_HELP_SHOWN) {
    ping_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (rv) return rv;
  if (!target) return cli_usage_error("ping: missing MADDR (see --help)");
  if (!p.a.json) {
    printf("PING %s\n", target);
    fflush(stdout);
  }
  p.c.cmd = "ping";
  p.c.target = target;
  p.c.json = p.a.json;
  uint64_t t = p.a.have_timeout ? p.a.timeout * 1000
                                : 10000 + p.a.count * (11000 + p.a.interval);
  p.c.timeout_ms = t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
  p.c.on_connected = on_connected;
  p.c.ud = &p;
  return nc_client_run(&p.c, p.a.identity);
}
