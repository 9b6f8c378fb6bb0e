/* node/netcmd.c - see netcmd.h. */
#include "netcmd.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/perf.h"
#include "lp2p/ping.h"

/* ---- arguments ---- */

static const cli_opt *find_long(const cli_opt *opts, size_t n, const char *a) {
  const char *name = a + 2, *eq = strchr(name, '=');
  size_t len = eq ? (size_t)(eq - name) : strlen(name);
  for (size_t i = 0; i < n; i++)
    if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len)) return eq ? NULL : &opts[i];
  return NULL;
}

int nc_take_positional(const char *cmd, int *argc, char **argv, const cli_opt *opts, size_t n_opts,
                       const char **pos) {
  *pos = NULL;
  int w = 1;
  for (int i = 1; i < *argc; i++) {
    const char *a = argv[i];
    if (!strncmp(a, "--", 2) && a[2]) {
      argv[w++] = argv[i];
      const cli_opt *o = find_long(opts, n_opts, a);
      if (o && o->arg_name && i + 1 < *argc) argv[w++] = argv[++i]; /* its value */
      continue;
    }
    if (a[0] == '-' && a[1]) { /* -h or an unknown short option: cli_parse reports it */
      argv[w++] = argv[i];
      continue;
    }
    if (*pos) return cli_usage_error("%s: unexpected argument '%s' (see --help)", cmd, a);
    *pos = a;
  }
  argv[w] = NULL;
  *argc = w;
  return 0;
}

int nc_parse_uint(const char *text, uint64_t max, uint64_t *out) {
  if (!text || !*text || *text < '0' || *text > '9') return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno || *end || v > max) return -1;
  *out = v;
  return 0;
}

int nc_parse_size(const char *text, uint64_t *out) {
  if (!text || !*text || *text < '0' || *text > '9') return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno) return -1;
  unsigned shift = 0;
  if (*end) {
    switch (*end) {
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      default: return -1;
    }
    if (end[1]) return -1;
  }
  if (v > (UINT64_MAX >> 1) >> shift) return -1;
  *out = (uint64_t)v << shift;
  return 0;
}

/* ---- identity ---- */

int nc_default_identity(char *buf, size_t cap) { return cli_data_path("identity.key", buf, cap); }

int nc_identity(const char *cmd, const char *path, int create, lp2p_key_type type, lp2p_privkey **out) {
  *out = NULL;
  int rv;
  if (!path) {
    if ((rv = lp2p_privkey_generate(out, LP2P_KEY_ED25519, 0)) < 0)
      return cli_error("%s: cannot generate a key: %s", cmd, lp2p_strerror(rv));
    return 0;
  }
  rv = lp2p_privkey_load_file(out, path);
  if (rv == 0) return 0;
  if (rv != LP2P_ERR_NOT_FOUND || !create)
    return cli_error("%s: cannot load identity %s: %s", cmd, path, lp2p_strerror(rv));
  if ((rv = lp2p_privkey_generate(out, type, 0)) < 0)
    return cli_error("%s: cannot generate a %s key: %s", cmd, lp2p_key_type_name(type), lp2p_strerror(rv));
  if ((rv = lp2p_privkey_save_file(*out, path)) < 0) {
    lp2p_privkey_free(*out);
    *out = NULL;
    return cli_error("%s: cannot write identity %s: %s", cmd, path, lp2p_strerror(rv));
  }
  return 0;
}

/* ---- text ---- */

const char *nc_peer_str(const lp2p_peer_id *peer, char *buf, size_t cap) {
  if (!peer || lp2p_peer_id_to_string(peer, buf, cap) < 0) snprintf(buf, cap, "?");
  return buf;
}

const char *nc_ma_str(const lp2p_multiaddr *ma, char *buf, size_t cap) {
  if (!ma || lp2p_multiaddr_to_string(ma, buf, cap) < 0) return NULL;
  return buf;
}

const char *nc_dir_str(lp2p_direction d) { return d == LP2P_DIR_OUTBOUND ? "outbound" : "inbound"; }

/* ---- JSON ---- */

void nc_json_identify(cli_json *j, const lp2p_identify_info *in) {
  cli_json_str(j, "agent_version", in->agent_version);
  cli_json_str(j, "protocol_version", in->protocol_version);
  cli_json_str_array(j, "protocols", in->protocols, in->n_protocols);
  size_t n = in->n_listen_addrs;
  char **addrs = calloc(n ? n : 1, sizeof *addrs);
  for (size_t i = 0; addrs && i < n; i++) {
    char buf[LP2P_MULTIADDR_MAX_TEXT];
    addrs[i] = strdup(nc_ma_str(in->listen_addrs[i], buf, sizeof buf) ? buf : "?");
  }
  cli_json_str_array(j, "listen_addrs", (const char *const *)addrs, addrs ? n : 0);
  for (size_t i = 0; addrs && i < n; i++) free(addrs[i]);
  free(addrs);
  char buf[LP2P_MULTIADDR_MAX_TEXT];
  cli_json_str(j, "observed_addr", nc_ma_str(in->observed_addr, buf, sizeof buf));
  cli_json_bool(j, "signed_record", in->signed_record);
}

void nc_json_error(cli_json *j, int err) {
  cli_json_str(j, "error", lp2p_err_name(err));
  cli_json_str(j, "message", lp2p_strerror(err));
}

void nc_json_out(cli_json *j) { (void)cli_json_emit(j, stdout); }

/* ---- signals ---- */

static pthread_t sig_thread;
static int sig_running, sig_got;

static void post_stop(lp2p_swarm *sw, void *arg) {
  (void)arg;
  lp2p_swarm_stop(sw);
}

static void *sig_main(void *arg) {
  lp2p_swarm *sw = arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2); /* our own "quit" from nc_signals_stop */
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig)) continue;
    if (sig == SIGUSR2) return NULL;
    if (!sig_got) sig_got = sig;
    lp2p_swarm_post(sw, post_stop, NULL);
  }
}

int nc_signals_block(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2);
  return pthread_sigmask(SIG_BLOCK, &set, NULL) ? -1 : 0;
}

int nc_signals_start(lp2p_swarm *sw) {
  if (pthread_create(&sig_thread, NULL, sig_main, sw)) return -1;
  sig_running = 1;
  return 0;
}

int nc_signals_stop(void) {
  if (sig_running) {
    pthread_kill(sig_thread, SIGUSR2);
    pthread_join(sig_thread, NULL);
    sig_running = 0;
  }
  return sig_got;
}

/* ---- client skeleton ---- */

void nc_client_finish(nc_client *c, int err, const char *what) {
  if (c->finished) return;
  c->finished = 1;
  if (err) {
    cli_error("%s: %s: %s%s%s", c->cmd, c->target, what ? what : "", what ? ": " : "", lp2p_strerror(err));
    c->status = CLI_EXIT_FAIL;
  } else {
    c->status = CLI_EXIT_OK;
  }
  lp2p_swarm_stop(c->sw);
}

static void on_timeout(lp2p_timer *t, void *ud) {
  nc_client *c = ud;
  (void)t;
  nc_client_finish(c, LP2P_ERR_TIMEOUT, NULL);
}

static void on_dialed(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_dial_error *errs, size_t n,
                      void *ud) {
  nc_client *c = ud;
  (void)sw;
  if (err) {
    /* one address: err is its error; several: name the first address's */
    if (err == LP2P_ERR_DIAL && n) err = errs[0].err;
    nc_client_finish(c, err, "dial failed");
    return;
  }
  c->peer = *peer;
  if (c->json) {
    char pb[LP2P_PEER_ID_MAX_TEXT], ab[LP2P_MULTIADDR_MAX_TEXT];
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "connected");
    cli_json_str(&j, "peer", nc_peer_str(peer, pb, sizeof pb));
    cli_json_str(&j, "addr", nc_ma_str(lp2p_swarm_peer_remote_addr(c->sw, peer), ab, sizeof ab));
    nc_json_out(&j);
  }
  c->on_connected(c);
}

int nc_client_run(nc_client *c, const char *identity) {
  int st = nc_identity(c->cmd, identity, 0, LP2P_KEY_ED25519, &c->key);
  if (st) return st;
  lp2p_multiaddr *ma = NULL;
  char why[LP2P_MULTIADDR_ERRLEN];
  if (lp2p_multiaddr_parse(&ma, c->target, why, sizeof why) < 0) {
    lp2p_privkey_free(c->key);
    return cli_usage_error("%s: bad address '%s': %s", c->cmd, c->target, why);
  }
  lp2p_multiaddr_free(ma);

  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = c->key;
  int rv = lp2p_swarm_new(&c->sw, &cfg, NULL);
  if (rv < 0) {
    lp2p_privkey_free(c->key);
    return cli_error("%s: cannot create the swarm: %s", c->cmd, lp2p_strerror(rv));
  }
  if ((rv = lp2p_identify_add(c->sw, NULL, &c->identify)) < 0 || (rv = lp2p_ping_add(c->sw, NULL, NULL)) < 0 ||
      (rv = lp2p_perf_add(c->sw, NULL, NULL)) < 0 || (rv = lp2p_timer_new(&c->timer, c->sw, on_timeout, c)) < 0) {
    st = cli_error("%s: cannot set up the node: %s", c->cmd, lp2p_strerror(rv));
    goto out;
  }
  if (c->timeout_ms) lp2p_timer_start(c->timer, c->timeout_ms, 0);
  if (c->on_setup) c->on_setup(c);
  const char *addrs[] = {c->target};
  if ((rv = lp2p_swarm_dial(c->sw, NULL, addrs, 1, on_dialed, c)) < 0) {
    st = cli_error("%s: %s: cannot dial: %s", c->cmd, c->target, lp2p_strerror(rv));
    goto out;
  }
  lp2p_swarm_run(c->sw);
  st = c->finished ? c->status : CLI_EXIT_FAIL;
out:
  lp2p_swarm_free(c->sw);
  c->sw = NULL;
  lp2p_privkey_free(c->key);
  c->key = NULL;
  return st;
}
