/* node/cmd_identify.c - `lp2p-node identify MADDR`: dial a peer, run
 * /ipfs/id/1.0.0 and print what it says about itself. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "lp2p/identify.h"
#include "netcmd.h"

enum { OPT_TIMEOUT, OPT_IDENTITY, OPT_JSON, OPT_HELP };
static const cli_opt identify_opts[] = {
    [OPT_TIMEOUT] = {"timeout", "SEC", "give up after SEC seconds (default 20)"},
    [OPT_IDENTITY] = {"identity", "FILE", "identity key file to use (default: a fresh Ed25519 key)"},
    [OPT_JSON] = CLI_OPT_JSON,
    [OPT_HELP] = CLI_OPT_HELP,
};
#define N_OPTS (sizeof identify_opts / sizeof *identify_opts)

typedef struct identify_args {
  uint64_t timeout;
  const char *identity;
  int json;
} identify_args;

static void identify_usage(FILE *f) {
  fprintf(f, "Usage: " CLI_PROG " identify MADDR [--timeout SEC] [--json]\n"
             "\n"
             "Connects to MADDR, asks the peer to identify itself (/ipfs/id/1.0.0) and prints\n"
             "its peer id, agent and protocol versions, supported protocols, listen addresses\n"
             "and the address it observed for us. The answer is accepted only if its public\n"
             "key matches the peer id (and its signed peer record, if any, verifies).\n"
             "\n"
             "Options:\n");
  cli_print_opts(f, identify_opts, N_OPTS);
  fprintf(f, "\nWith --json: {\"event\":\"connected\",...} then {\"event\":\"identify\",\"peer\",\n"
             "\"agent_version\",\"protocol_version\",\"protocols\":[...],\"listen_addrs\":[...],\n"
             "\"observed_addr\",\"signed_record\"}.\n");
}

static int on_opt(void *ud, size_t idx, const char *val) {
  identify_args *a = ud;
  switch (idx) {
    case OPT_TIMEOUT:
      if (nc_parse_uint(val, 86400, &a->timeout) || !a->timeout)
        return cli_usage_error("identify: --timeout needs a positive number of seconds, got '%s'", val);
      break;
    case OPT_IDENTITY: a->identity = val; break;
    case OPT_JSON: a->json = 1; break;
  }
  return 0;
}

typedef struct id_state {
  nc_client c;
  identify_args a;
  int connected;
  lp2p_peer_id failed_peer; /* a failure seen before the dial callback */
  int failed_err;
} id_state;

static void print_info(const id_state *s, const lp2p_identify_info *in) {
  char pb[LP2P_PEER_ID_MAX_TEXT], ab[LP2P_MULTIADDR_MAX_TEXT];
  if (s->a.json) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "identify");
    cli_json_str(&j, "peer", nc_peer_str(&in->peer, pb, sizeof pb));
    nc_json_identify(&j, in);
    nc_json_out(&j);
    return;
  }
  printf("peer_id: %s\n", nc_peer_str(&in->peer, pb, sizeof pb));
  printf("key_type: %s\n", lp2p_key_type_name(lp2p_pubkey_type(in->public_key)));
  printf("agent_version: %s\n", in->agent_version ? in->agent_version : "");
  printf("protocol_version: %s\n", in->protocol_version ? in->protocol_version : "");
  printf("protocols:\n");
  for (size_t i = 0; i < in->n_protocols; i++) printf("  %s\n", in->protocols[i]);
  printf("listen_addrs:\n");
  for (size_t i = 0; i < in->n_listen_addrs; i++) {
    const char *t = nc_ma_str(in->listen_addrs[i], ab, sizeof ab);
    printf("  %s\n", t ? t : "?");
  }
  const char *obs = nc_ma_str(in->observed_addr, ab, sizeof ab);
  printf("observed_addr: %s\n", obs ? obs : "");
  printf("signed_peer_record: %s\n", in->signed_record ? "yes (verified)" : "no");
  fflush(stdout);
}

static void on_identify(lp2p_identify *id, const lp2p_identify_event *ev, void *ud) {
  id_state *s = ud;
  (void)id;
  if (s->c.finished) return;
  if (!s->connected) {
    if (ev->type == LP2P_IDENTIFY_EV_FAILED && !s->failed_err) {
      s->failed_peer = *ev->peer;
      s->failed_err = ev->err;
    }
    return;
  }
  if (!lp2p_peer_id_equal(ev->peer, &s->c.peer)) return;
  if (ev->type == LP2P_IDENTIFY_EV_IDENTIFIED) {
    print_info(s, ev->info);
    nc_client_finish(&s->c, 0, NULL);
  } else if (ev->type == LP2P_IDENTIFY_EV_FAILED) {
    nc_client_finish(&s->c, ev->err, "identify failed");
  }
}

static void on_connected(nc_client *c) {
  id_state *s = c->ud;
  s->connected = 1;
  /* the behaviour identifies every new connection by itself: the result
   * usually arrives later (on_identify), but may already be there */
  const lp2p_identify_info *in = lp2p_identify_peer_info(c->identify, &c->peer);
  if (in) {
    print_info(s, in);
    nc_client_finish(c, 0, NULL);
  } else if (s->failed_err && lp2p_peer_id_equal(&s->failed_peer, &c->peer)) {
    nc_client_finish(c, s->failed_err, "identify failed");
  }
}

static void on_setup(nc_client *c) { lp2p_identify_set_event_handler(c->identify, on_identify, c->ud); }

int cmd_identify(const cli_command *cmd, int argc, char **argv) {
  (void)cmd;
  const char *target = NULL;
  int rv = nc_take_positional("identify", &argc, argv, identify_opts, N_OPTS, &target);
  if (rv) return rv;
  id_state s;
  memset(&s, 0, sizeof s);
  s.a.timeout = 20;
  rv = cli_parse(argc, argv, identify_opts, N_OPTS, on_opt, &s.a);
  if (rv == CLI_HELP_SHOWN) {
    identify_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (rv) return rv;
  if (!target) return cli_usage_error("identify: missing MADDR (see --help)");
  s.c.cmd = "identify";
  s.c.target = target;
  s.c.json = s.a.json;
  s.c.timeout_ms = (uint32_t)(s.a.timeout * 1000);
  s.c.on_setup = on_setup;
  s.c.on_connected = on_connected;
  s.c.ud = &s;
  return nc_client_run(&s.c, s.a.identity);
}
