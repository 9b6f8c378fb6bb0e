/* node/mod_kad.c - the Kademlia DHT in `lp2p-node listen` (node/module.h): the kad behaviour
 * (lp2p/kad.h), its flags, its control/API commands (node/kadcmd.h) and a bootstrap at start. */
#include <stdlib.h>
#include <string.h>

#include "kadcmd.h"
#include "lp2p/kad.h"
#include "module.h"
#include "netcmd.h"

#define KAD_MAX_BOOT 32
#define KAD_MAX_NS 16

enum { O_BOOTSTRAP, O_MODE, O_PROTOCOL, O_NAMESPACE, O_NO_KAD };
static const cli_opt kad_opts[] = {
    [O_BOOTSTRAP] = {"bootstrap", "MADDR", "Kademlia: a bootstrap peer (.../p2p/<id>), repeatable"},
    [O_MODE] = {"kad-mode", "MODE", "Kademlia mode: server (default), client or auto"},
    [O_PROTOCOL] = {"kad-protocol", "ID", "Kademlia protocol id (default /ipfs/kad/1.0.0)"},
    [O_NAMESPACE] = {"kad-namespace", "NS", "accept DHT records under /NS/ (any value), repeatable"},
    [O_NO_KAD] = {"no-kad", NULL, "do not run the Kademlia DHT"},
};

typedef struct kad_state {
  const char *boot[KAD_MAX_BOOT];
  size_t n_boot;
  const char *ns[KAD_MAX_NS];
  size_t n_ns;
  lp2p_kad_mode mode;
  const char *protocol;
  int off, stopped;
  lp2p_kad *kad;
} kad_state;

typedef struct kad_reply {
  node *n;
  kad_state *s;
  uint64_t origin;
} kad_reply;

static int opt(node *n, void *st, size_t idx, const char *val) {
  kad_state *s = st;
  (void)n;
  switch (idx) {
    case O_BOOTSTRAP:
      if (s->n_boot == KAD_MAX_BOOT) return cli_usage_error("listen: at most %d --bootstrap peers", KAD_MAX_BOOT);
      s->boot[s->n_boot++] = val;
      break;
    case O_MODE:
      if (!strcmp(val, "server"))
        s->mode = LP2P_KAD_MODE_SERVER;
      else if (!strcmp(val, "client"))
        s->mode = LP2P_KAD_MODE_CLIENT;
      else if (!strcmp(val, "auto"))
        s->mode = LP2P_KAD_MODE_AUTO;
      else
        return cli_usage_error("listen: --kad-mode is server, client or auto, not '%s'", val);
      break;
    case O_PROTOCOL:
      if (val[0] != '/') return cli_usage_error("listen: --kad-protocol must start with '/': '%s'", val);
      s->protocol = val;
      break;
    case O_NAMESPACE:
      if (s->n_ns == KAD_MAX_NS) return cli_usage_error("listen: at most %d --kad-namespace", KAD_MAX_NS);
      if (!val[0] || strchr(val, '/')) return cli_usage_error("listen: --kad-namespace NS has no '/': '%s'", val);
      s->ns[s->n_ns++] = val;
      break;
    case O_NO_KAD:
      s->off = 1;
      break;
  }
  return 0;
}

/* the app namespaces: any value (the engine bounds its size) */
static int accept_any(void *ud, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen) {
  (void)ud, (void)key, (void)klen, (void)val, (void)vlen;
  return 0;
}

static void reply(void *ud, cli_json *j, const char *text, int err) {
  kad_reply *r = ud;
  (void)err;
  if (r->s->stopped) { /* queries cancelled while the node shuts down: nobody to tell */
    free(j->buf);
    free(r);
    return;
  }
  node_text(r->n, "%s", text);
  if (node_json_wanted(r->n))
    node_emit(r->n, j, r->origin);
  else
    free(j->buf);
  free(r);
}

static kad_reply *reply_new(node *n, kad_state *s, uint64_t origin) {
  kad_reply *r = calloc(1, sizeof *r);
  if (r) {
    r->n = n;
    r->s = s;
    r->origin = origin;
  }
  return r;
}

static int setup(node *n, void *st) {
  kad_state *s = st;
  if (s->off) return 0;
  lp2p_kad_config c;
  lp2p_kad_config_default(&c);
  c.mode = s->mode;
  c.protocol_id = s->protocol;
  const char *dd = node_data_dir(n);
  c.data_dir = dd && dd[0] ? dd : NULL; /* records survive restarts in DATA_DIR/kad-records */
  lp2p_kad_validator v[KAD_MAX_NS];
  for (size_t i = 0; i < s->n_ns; i++) {
    v[i].ns = s->ns[i];
    v[i].validate = accept_any;
    v[i].select = NULL;
    v[i].ud = NULL;
  }
  c.validators = v;
  c.n_validators = s->n_ns;
  int rv = lp2p_kad_add(node_swarm(n), &c, &s->kad);
  if (rv < 0) return cli_error("listen: kad: %s", lp2p_strerror(rv));
  for (size_t i = 0; i < s->n_boot; i++)
    if ((rv = lp2p_kad_add_bootstrap(s->kad, s->boot[i])) < 0)
      return cli_error("listen: --bootstrap %s: %s", s->boot[i], lp2p_strerror(rv));
  if (s->n_boot) { /* joins once the bootstrap peers answered: a kad-bootstrap event */
    kad_reply *r = reply_new(n, s, 0);
    if (r && kc_bootstrap(s->kad, reply, r) < 0) free(r);
  }
  return 0;
}

static int command(node *n, void *st, uint64_t origin, const char *verb, char *args) {
  kad_state *s = st;
  if (!kc_is_command(verb)) return 0;
  if (!s->kad) {
    node_command_error(n, origin, verb, "kad is off (--no-kad)");
    return 1;
  }
  kad_reply *r = reply_new(n, s, origin);
  if (!r) {
    node_command_error(n, origin, verb, lp2p_strerror(LP2P_ERR_NOMEM));
    return 1;
  }
  kc_run(s->kad, verb, args, reply, r);
  return 1;
}

static void stop(node *n, void *st) {
  kad_state *s = st;
  (void)n;
  s->stopped = 1;
}

const node_module node_mod_kad = {
    .name = "kad",
    .opts = kad_opts,
    .n_opts = sizeof kad_opts / sizeof *kad_opts,
    .opt = opt,
    .usage = "Kademlia DHT (/ipfs/kad/1.0.0, server mode unless --kad-mode says otherwise): --bootstrap\n"
             "peers are checked and joined at start (a kad-bootstrap event). Commands, answered by an event\n"
             "of the same name (ok, error on failure, the query stats hops/peers_contacted/requests/\n"
             "duration_ms and peers/addrs/value/providers):\n"
             "  " KC_COMMANDS "\n"
             "KEY and VALUE are text, or hex bytes with a 0x prefix; CID is CIDv1 (b...), CIDv0 (Qm...) or\n"
             "a 0x-hex multihash. Records are accepted under /pk/ and the --kad-namespace namespaces and\n"
             "kept across restarts in DATA_DIR/kad-records (provider entries in DATA_DIR/kad-providers).\n",
    .state_size = sizeof(kad_state),
    .setup = setup,
    .command = command,
    .stop = stop,
    .commands = KC_COMMANDS,
};
