/* node/cmd_kad.c - `lp2p-node kad COMMAND ARGS... --bootstrap MADDR...`: join the DHT through the
 * bootstrap peers, run one kad command (node/kadcmd.h), print its result, exit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "kadcmd.h"
#include "lp2p/identify.h"
#include "lp2p/kad.h"
#include "netcmd.h"

#define MAX_BOOT 32
#define MAX_NS 16

enum { OPT_BOOTSTRAP, OPT_MODE, OPT_PROTOCOL, OPT_NAMESPACE, OPT_LISTEN, OPT_TIMEOUT, OPT_IDENTITY, OPT_JSON, OPT_HELP };
static const cli_opt kad_opts[] = {
    [OPT_BOOTSTRAP] = {"bootstrap", "MADDR", "a bootstrap peer (.../p2p/<id>), repeatable (at least one)"},
    [OPT_MODE] = {"kad-mode", "MODE", "client (default), server or auto"},
    [OPT_PROTOCOL] = {"kad-protocol", "ID", "Kademlia protocol id (default /ipfs/kad/1.0.0)"},
    [OPT_NAMESPACE] = {"kad-namespace", "NS", "accept records under /NS/ (any value), repeatable"},
    [OPT_LISTEN] = {"listen", "MADDR", "listen there (kad-provide announces these addresses)"},
    [OPT_TIMEOUT] = {"timeout", "SEC", "give up after SEC seconds (default 60)"},
    [OPT_IDENTITY] = {"identity", "FILE", "identity key file to use (default: a fresh Ed25519 key)"},
    [OPT_JSON] = CLI_OPT_JSON,
    [OPT_HELP] = CLI_OPT_HELP,
};
#define N_OPTS (sizeof kad_opts / sizeof *kad_opts)

typedef struct kad_cmd {
  const char *boot[MAX_BOOT];
  size_t n_boot;
  const char *ns[MAX_NS];
  size_t n_ns;
  lp2p_kad_mode mode;
  const char *protocol, *listen, *identity;
  uint64_t timeout;
  int json;
  char verb[64];
  char args[4096];
  lp2p_swarm *sw;
  lp2p_kad *kad;
  int status, done;
} kad_cmd;

static void usage(FILE *f) {
  fprintf(f, "Usage: " CLI_PROG " kad COMMAND [ARGS...] --bootstrap MADDR... [options]\n"
             "\n"
             "Joins the Kademlia DHT through the bootstrap peers (client mode by default: it answers\n"
             "nothing and nobody adds it to their routing table), runs one command, prints its result\n"
             "and exits 0 on success, 1 on failure. COMMAND (with or without its kad- prefix):\n"
             "  " KC_COMMANDS "\n"
             "KEY and VALUE are text, or hex bytes with a 0x prefix; CID is CIDv1 (b...), CIDv0 (Qm...)\n"
             "or a 0x-hex multihash.\n"
             "\n"
             "Options:\n");
  cli_print_opts(f, kad_opts, N_OPTS);
  fprintf(f, "\nWith --json: one event named like the command (see `lp2p-node listen --help`).\n");
}

static int on_opt(void *ud, size_t idx, const char *val) {
  kad_cmd *k = ud;
  switch (idx) {
    case OPT_BOOTSTRAP:
      if (k->n_boot == MAX_BOOT) return cli_usage_error("kad: at most %d --bootstrap peers", MAX_BOOT);
      k->boot[k->n_boot++] = val;
      break;
    case OPT_MODE:
      if (!strcmp(val, "server"))
        k->mode = LP2P_KAD_MODE_SERVER;
      else if (!strcmp(val, "client"))
        k->mode = LP2P_KAD_MODE_CLIENT;
      else if (!strcmp(val, "auto"))
        k->mode = LP2P_KAD_MODE_AUTO;
      else
        return cli_usage_error("kad: --kad-mode is server, client or auto, not '%s'", val);
      break;
    case OPT_PROTOCOL:
      if (val[0] != '/') return cli_usage_error("kad: --kad-protocol must start with '/': '%s'", val);
      k->protocol = val;
      break;
    case OPT_NAMESPACE:
      if (k->n_ns == MAX_NS) return cli_usage_error("kad: at most %d --kad-namespace", MAX_NS);
      if (!val[0] || strchr(val, '/')) return cli_usage_error("kad: --kad-namespace NS has no '/': '%s'", val);
      k->ns[k->n_ns++] = val;
      break;
    case OPT_LISTEN: k->listen = val; break;
    case OPT_TIMEOUT:
      if (nc_parse_uint(val, 86400, &k->timeout) || !k->timeout)
        return cli_usage_error("kad: --timeout needs a positive number of seconds, got '%s'", val);
      break;
    case OPT_IDENTITY: k->identity = val; break;
    case OPT_JSON: k->json = 1; break;
  }
  return 0;
}

static int accept_any(void *ud, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen) {
  (void)ud, (void)key, (void)klen, (void)val, (void)vlen;
  return 0;
}

static void finish(kad_cmd *k, cli_json *j, const char *text, int err) {
  if (k->done) {
    free(j->buf);
    return;
  }
  k->done = 1;
  k->status = err ? CLI_EXIT_FAIL : CLI_EXIT_OK;
  if (k->json) {
    nc_json_out(j);
  } else {
    free(j->buf);
    printf("%s\n", text);
    fflush(stdout);
  }
  lp2p_swarm_stop(k->sw);
}

static void on_done(void *ud, cli_json *j, const char *text, int err) { finish(ud, j, text, err); }

static void on_joined(void *ud, cli_json *j, const char *text, int err) {
  kad_cmd *k = ud;
  if (err || !strcmp(k->verb, "kad-bootstrap")) {
    finish(k, j, text, err);
    return;
  }
  free(j->buf);
  kc_run(k->kad, k->verb, k->args, on_done, k);
}

static void on_timeout(lp2p_timer *t, void *ud) {
  kad_cmd *k = ud;
  (void)t;
  cli_json j;
  cli_json_begin(&j);
  cli_json_str(&j, "event", k->verb);
  cli_json_bool(&j, "ok", 0);
  nc_json_error(&j, LP2P_ERR_TIMEOUT);
  char text[128];
  snprintf(text, sizeof text, "%s failed: %s", k->verb, lp2p_strerror(LP2P_ERR_TIMEOUT));
  finish(k, &j, text, LP2P_ERR_TIMEOUT);
}

/* the option taking a value? (to tell positional arguments from option values) */
static int takes_value(const char *arg) {
  if (strncmp(arg, "--", 2) || strchr(arg, '=')) return 0;
  for (size_t i = 0; i < N_OPTS; i++)
    if (!strcmp(arg + 2, kad_opts[i].name)) return kad_opts[i].arg_name != NULL;
  return 0;
}

int cmd_kad(const cli_command *cmd, int argc, char **argv) {
  (void)cmd;
  kad_cmd k;
  memset(&k, 0, sizeof k);
  k.mode = LP2P_KAD_MODE_CLIENT;
  k.timeout = 60;
  /* positional words: COMMAND and its arguments */
  char **rest = calloc((size_t)argc + 1, sizeof *rest);
  if (!rest) return cli_error("kad: out of memory");
  int nr = 0;
  rest[nr++] = argv[0];
  size_t used = 0;
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-' && argv[i][1]) {
      rest[nr++] = argv[i];
      if (takes_value(argv[i]) && i + 1 < argc) rest[nr++] = argv[++i];
      continue;
    }
    if (npos++ == 0) {
      snprintf(k.verb, sizeof k.verb, "%s%s", strncmp(argv[i], "kad-", 4) ? "kad-" : "", argv[i]);
    } else if (used + strlen(argv[i]) + 2 < sizeof k.args) {
      used += (size_t)snprintf(k.args + used, sizeof k.args - used, "%s%s", used ? " " : "", argv[i]);
    }
  }
  int rv = cli_parse(nr, rest, kad_opts, N_OPTS, on_opt, &k);
  free(rest);
  if (rv == CLI_HELP_SHOWN) {
    usage(stdout);
    return CLI_EXIT_OK;
  }
  if (rv) return rv;
  if (!k.verb[0]) return cli_usage_error("kad: which command? (%s)", KC_COMMANDS);
  if (!kc_is_command(k.verb)) return cli_usage_error("kad: unknown command '%s' (%s)", k.verb, KC_COMMANDS);
  if (!k.n_boot) return cli_usage_error("kad: at least one --bootstrap MADDR is needed");

  lp2p_privkey *key = NULL;
  if ((rv = nc_identity("kad", k.identity, 0, LP2P_KEY_ED25519, &key)) != 0) return rv;
  lp2p_swarm_config sc;
  lp2p_swarm_config_default(&sc);
  sc.identity = key;
  if ((rv = lp2p_swarm_new(&k.sw, &sc, NULL)) < 0) {
    lp2p_privkey_free(key);
    return cli_error("kad: swarm: %s", lp2p_strerror(rv));
  }
  int status = CLI_EXIT_FAIL;
  lp2p_kad_config c;
  lp2p_kad_config_default(&c);
  c.mode = k.mode;
  c.protocol_id = k.protocol;
  lp2p_kad_validator v[MAX_NS];
  for (size_t i = 0; i < k.n_ns; i++) {
    v[i].ns = k.ns[i];
    v[i].validate = accept_any;
    v[i].select = NULL;
    v[i].ud = NULL;
  }
  c.validators = v;
  c.n_validators = k.n_ns;
  lp2p_timer *t = NULL;
  if ((rv = lp2p_identify_add(k.sw, NULL, NULL)) < 0 || (rv = lp2p_kad_add(k.sw, &c, &k.kad)) < 0) {
    cli_error("kad: %s", lp2p_strerror(rv));
    goto out;
  }
  if (k.listen && (rv = lp2p_swarm_listen(k.sw, k.listen)) < 0) {
    cli_error("kad: --listen %s: %s", k.listen, lp2p_strerror(rv));
    goto out;
  }
  for (size_t i = 0; i < k.n_boot; i++)
    if ((rv = lp2p_kad_add_bootstrap(k.kad, k.boot[i])) < 0) {
      cli_error("kad: --bootstrap %s: %s", k.boot[i], lp2p_strerror(rv));
      goto out;
    }
  if ((rv = lp2p_timer_new(&t, k.sw, on_timeout, &k)) < 0 || (rv = lp2p_timer_start(t, k.timeout * 1000, 0)) < 0 ||
      (rv = kc_bootstrap(k.kad, on_joined, &k)) < 0) {
    cli_error("kad: %s", lp2p_strerror(rv));
    goto out;
  }
  lp2p_swarm_run(k.sw);
  status = k.status;
out:
  lp2p_timer_free(t);
  k.done = 1; /* callbacks of queries cancelled by the free print nothing */
  lp2p_swarm_free(k.sw);
  lp2p_privkey_free(key);
  return status;
}
