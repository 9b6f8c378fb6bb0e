/* node/cmd_listen.c - `lp2p-node listen`: a long-running node that serves
 * ping, identify (+push) and perf, prints its listen addresses and reports
 * connection events, until SIGINT/SIGTERM. Commands (one per line: dial,
 * listen, ping, disconnect, peers, quit) come from stdin (--control) and from
 * the clients of a unix socket (--api), all run by run_command; events go to
 * stdout and, as JSON lines, to the API clients (node/control.c). Testing
 * extras: an echo protocol (--echo) and outbound dials (--dial). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "control.h"
#include "lp2p/identify.h"
#include "lp2p/perf.h"
#include "lp2p/ping.h"
#include "limits.h"
#include "module.h"
#include "peerfile.h"
#include "netcmd.h"

#define ECHO_PROTOCOL "/lp2p-test/echo/1.0.0"
#define ECHO_MAX_PENDING (1024 * 1024)
#define MAX_LISTEN 16
#define MAX_DIAL 16
#define DEFAULT_LISTEN "/ip4/127.0.0.1/tcp/0"

enum {
  OPT_LISTEN, OPT_IDENTITY, OPT_KEY_TYPE, OPT_AGENT, OPT_DIAL, OPT_IDLE, OPT_KA_INTERVAL, OPT_KA_TIMEOUT,
  OPT_MAX_INBOUND, OPT_MAX_PENDING, OPT_HS_TIMEOUT, OPT_STREAM_TIMEOUT, OPT_MAX_STREAMS,
  OPT_ECHO, OPT_CONTROL, OPT_API, OPT_DATA_DIR, OPT_JSON, OPT_HELP,
  OPT_LIMITS /* NL_N resource-limit flags (limits.c) follow */
};
static const cli_opt listen_opts[] = {
    [OPT_LISTEN] = {"listen", "MADDR", "listen address, repeatable (default " DEFAULT_LISTEN ")"},
    [OPT_IDENTITY] = {"identity", "FILE", "identity key file (default DIR/identity.key of --data-dir: the one `lp2p-node id` uses; created)"},
    [OPT_KEY_TYPE] = {"key-type", "TYPE", "ed25519 (default), secp256k1 or rsa: type of a new key"},
    [OPT_AGENT] = {"agent", "STRING", "identify agent version (default lp2p/<version>)"},
    [OPT_DIAL] = {"dial", "MADDR", "also dial this peer at start, repeatable"},
    [OPT_IDLE] = {"idle-timeout", "MS", "close connections idle this long (default 30000, 0 = never)"},
    [OPT_KA_INTERVAL] = {"keepalive-interval", "MS", "yamux keep-alive ping period (default 15000)"},
    [OPT_KA_TIMEOUT] = {"keepalive-timeout", "MS", "close a connection whose ping is unanswered (default 10000)"},
    [OPT_MAX_INBOUND] = {"max-inbound", "N", "inbound connections, established + pending (default 256, 0 = no limit)"},
    [OPT_MAX_PENDING] = {"max-pending", "N", "inbound connections still in their handshake (default 64, 0 = no limit)"},
    [OPT_HS_TIMEOUT] = {"handshake-timeout", "MS", "inbound accept -> yamux ready, else closed (default 10000, 0 = never)"},
    [OPT_STREAM_TIMEOUT] = {"stream-timeout", "MS", "multistream negotiation of a new stream (default 10000, 0 = never)"},
    [OPT_MAX_STREAMS] = {"max-streams", "N", "streams per connection, beyond: reset (default 512, 0 = no limit)"},
    [OPT_ECHO] = {"echo", NULL, "testing: also serve " ECHO_PROTOCOL " (echo every byte, then FIN)"},
    [OPT_CONTROL] = {"control", NULL, "read commands from stdin (see below)"},
    [OPT_API] = {"api", "PATH", "serve the same commands and JSON events on a unix socket (mode 0600, see below)"},
    [OPT_DATA_DIR] = {"data-dir", "DIR", "where the node keeps its state (default $XDG_DATA_HOME/lp2p, created 0700)"},
    [OPT_JSON] = CLI_OPT_JSON,
    [OPT_HELP] = CLI_OPT_HELP,
    [OPT_LIMITS + NL_MAX_MEMORY] = {"max-memory", "SIZE", "bytes held for all peers together (default 256M, 0 = no limit)"},
    [OPT_LIMITS + NL_MAX_MEMORY_PEER] = {"max-memory-per-peer", "SIZE", "bytes held for one peer (default 32M, 0 = no limit)"},
    [OPT_LIMITS + NL_MAX_MEMORY_CONN] = {"max-memory-per-conn", "SIZE", "bytes held for one connection (default 16M, 0 = no limit)"},
    [OPT_LIMITS + NL_MAX_STREAMS_PEER] = {"max-streams-per-peer", "N", "streams of one peer, both directions (default 1024, 0 = no limit)"},
};
#define N_OPTS (sizeof listen_opts / sizeof *listen_opts)

typedef struct listen_args {
  const char *listen[MAX_LISTEN];
  size_t n_listen;
  const char *dial[MAX_DIAL];
  size_t n_dial;
  const char *identity, *agent, *api, *data_dir;
  lp2p_key_type type;
  int have_type;
  uint64_t idle, ka_interval, ka_timeout;
  int have_idle, have_ka_interval, have_ka_timeout;
  /* limits and timeouts copied into lp2p_swarm_config when given (have[OPT_*]) */
  uint64_t limit[N_OPTS];
  int have[N_OPTS];
  int echo, control, json;
  nl_args lim;
} listen_args;

static void listen_usage(FILE *f, const cli_opt *opts, size_t n_opts) {
  fprintf(f, "Usage: " CLI_PROG " listen [--listen MADDR]... [--identity FILE] [--json] [options]\n"
             "\n"
             "Runs a node that serves /ipfs/ping/1.0.0, /ipfs/id/1.0.0, /ipfs/id/push/1.0.0 and\n"
             "/perf/1.0.0 until SIGINT or SIGTERM, then shuts down cleanly (exit 0).\n"
             "Each listen address is printed with its /p2p/<peer-id> suffix on its own stdout\n"
             "line as soon as it is bound; events follow as text lines. The default listen\n"
             "address is loopback only (" DEFAULT_LISTEN ", a free port); use e.g.\n"
             "--listen /ip4/0.0.0.0/tcp/4001 to be reachable from other hosts.\n"
             "\n"
             "Options:\n");
  cli_print_opts(f, opts, n_opts);
  fprintf(f, "\n"
             "With --json, stdout carries one JSON object per line, each with an \"event\":\n"
             "  listening {addr, peer_id}           listen-closed {addr}\n"
             "  connection-opened {peer, addr, direction, conn_id, peers}\n"
             "  connection-closed {peer, addr, direction, conn_id, reason, message, peers}\n"
             "  dial-failed {peer, error, message}  inbound-connection-failed {addr, error, message}\n"
             "  inbound-stream-failed {peer, error, message}\n"
             "  peer-identified / identify-push {peer, agent_version, protocol_version, protocols,\n"
             "                                   listen_addrs, observed_addr, signed_record}\n"
             "  identify-failed {peer, error, message}\n"
             "  perf-served {peer, upload, download, error}   stopping {signal}   stopped {}\n"
             "(\"peers\" is the number of connected peers after the event.)\n"
             "\n"
             "--control reads one command per line from stdin: \"dial MADDR\",\n"
             "\"listen MADDR\", \"ping PEER-ID|MADDR\", \"disconnect PEER-ID\", \"peers\", " NL_CONTROL_HELP ",\n"
             "\"quit\".\n"
             "A new listen address is announced to connected peers by identify push. Results are\n"
             "events: dialed {peer, addr, error}, ping {peer, rtt_us, error}, peers {count, peers},\n"
             "disconnected {peer, error}, control-error {line, message}. End of input is ignored.\n"
             "\n"
             "--api PATH serves the same commands on a unix socket (mode 0600) to several\n"
             "clients at once; each client receives every event above as JSON lines (whatever\n"
             "--json says about stdout), except that the result of a command (dialed, ping,\n"
             "peers, disconnected, control-error) goes only to the client that sent it (stdin's\n"
             "results go to every client). A line longer than 64 KiB gets a control-error and\n"
             "the client is dropped; a client that stops reading (4 MiB of events pending) is\n"
             "dropped. The node refuses to start when PATH belongs to a running node, replaces a\n"
             "socket file left by a crash, and removes PATH when it stops.\n"
             "\n"
             "--data-dir DIR holds what the node keeps: the identity key (DIR/identity.key, unless\n"
             "--identity says otherwise) and the peers it knows (DIR/peers: addresses reloaded at\n"
             "start, so a known peer can be reached by its id alone). Default: $XDG_DATA_HOME/lp2p, or\n"
             "~/.local/share/lp2p when XDG_DATA_HOME is unset: the directory `lp2p-node id` uses.\n");
  for (size_t i = 0; node_modules[i]; i++)
    if (node_modules[i]->usage) fprintf(f, "\n%s", node_modules[i]->usage);
}

struct node {
  listen_args a;
  lp2p_swarm *sw;
  lp2p_privkey *key;
  char peer_id[LP2P_PEER_ID_MAX_TEXT];
  int api;                 /* API clients may exist: build JSON events even without --json */
  char data_dir[PATH_MAX]; /* "" when none (no home directory and --identity given) */
  peerfile *peers;         /* DATA_DIR/peers: the peer store across restarts (NULL without a data dir) */
  void *mod_state[32];     /* per module of node_modules (node/module.h) */
  size_t n_mod;
};

static int on_opt(void *ud, size_t idx, const char *val) {
  node *n = ud;
  listen_args *a = &n->a;
  if (idx >= N_OPTS) { /* a module's option: the modules' lists follow ours, in table order */
    idx -= N_OPTS;
    for (size_t m = 0; m < n->n_mod; m++) {
      const node_module *mod = node_modules[m];
      if (idx < mod->n_opts) return mod->opt ? mod->opt(n, n->mod_state[m], idx, val) : 0;
      idx -= mod->n_opts;
    }
    return 0;
  }
  switch (idx) {
    case OPT_LISTEN:
      if (a->n_listen == MAX_LISTEN) return cli_usage_error("listen: at most %d --listen addresses", MAX_LISTEN);
      a->listen[a->n_listen++] = val;
      break;
    case OPT_DIAL:
      if (a->n_dial == MAX_DIAL) return cli_usage_error("listen: at most %d --dial addresses", MAX_DIAL);
      a->dial[a->n_dial++] = val;
      break;
    case OPT_IDENTITY: a->identity = val; break;
    case OPT_AGENT: a->agent = val; break;
    case OPT_KEY_TYPE:
      if (lp2p_key_type_parse(val, &a->type) || a->type == LP2P_KEY_ECDSA)
        return cli_usage_error("listen: unsupported key type '%s' (ed25519, secp256k1 or rsa)", val);
      a->have_type = 1;
      break;
    case OPT_IDLE:
      if (nc_parse_uint(val, UINT32_MAX, &a->idle)) return cli_usage_error("listen: bad --idle-timeout '%s'", val);
      a->have_idle = 1;
      break;
    case OPT_KA_INTERVAL:
      if (nc_parse_uint(val, UINT32_MAX, &a->ka_interval))
        return cli_usage_error("listen: bad --keepalive-interval '%s'", val);
      a->have_ka_interval = 1;
      break;
    case OPT_KA_TIMEOUT:
      if (nc_parse_uint(val, UINT32_MAX, &a->ka_timeout))
        return cli_usage_error("listen: bad --keepalive-timeout '%s'", val);
      a->have_ka_timeout = 1;
      break;
    case OPT_MAX_INBOUND:
    case OPT_MAX_PENDING:
    case OPT_HS_TIMEOUT:
    case OPT_STREAM_TIMEOUT:
    case OPT_MAX_STREAMS:
      if (nc_parse_uint(val, UINT32_MAX, &a->limit[idx]))
        return cli_usage_error("listen: bad --%s '%s'", listen_opts[idx].name, val);
      a->have[idx] = 1;
      break;
    case OPT_ECHO: a->echo = 1; break;
    case OPT_CONTROL: a->control = 1; break;
    case OPT_API: a->api = val; break;
    case OPT_DATA_DIR: a->data_dir = val; break;
    case OPT_JSON: a->json = 1; break;
    default:
      if (idx >= OPT_LIMITS && idx < OPT_LIMITS + NL_N) return nl_parse(&a->lim, (int)(idx - OPT_LIMITS), val);
  }
  return 0;
}


/* ------------------------------------------------------------------------- */
/* output */

static void text_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void text_line(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

/* One JSON event: on stdout with --json, and to the API clients (to: that
 * client only; 0: every client). Frees j's buffer. */
static void emit(node *n, cli_json *j, uint64_t to) {
  if (cli_json_end(j) == 0) {
    if (n->a.json && fwrite(j->buf, 1, j->len, stdout) == j->len) fflush(stdout);
    if (n->api) ctl_send(to, j->buf, j->len);
  }
  free(j->buf);
  memset(j, 0, sizeof *j);
}

/* ------------------------------------------------------------------------- */
/* what modules see of the node (node/module.h) */

lp2p_swarm *node_swarm(node *n) { return n->sw; }
const lp2p_privkey *node_identity(const node *n) { return n->key; }
const char *node_peer_id(const node *n) { return n->peer_id; }
const char *node_data_dir(const node *n) { return n->data_dir; }
int node_is_json(const node *n) { return n->a.json; }
int node_json_wanted(const node *n) { return n->a.json || n->api; }
void node_emit(node *n, cli_json *j, uint64_t to) { emit(n, j, to); }

void node_text(node *n, const char *fmt, ...) {
  if (n->a.json) return;
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

static void own_swarm_event(node *n, lp2p_swarm *sw, const lp2p_swarm_event *ev);

static void on_swarm_event(lp2p_swarm *sw, const lp2p_swarm_event *ev, void *ud) {
  node *n = ud;
  own_swarm_event(n, sw, ev);
  for (size_t m = 0; m < n->n_mod; m++)
    if (node_modules[m]->swarm_event) node_modules[m]->swarm_event(n, n->mod_state[m], ev);
}

static void own_swarm_event(node *n, lp2p_swarm *sw, const lp2p_swarm_event *ev) {
  char pb[LP2P_PEER_ID_MAX_TEXT], ab[LP2P_MULTIADDR_MAX_TEXT];
  const char *peer = ev->peer ? nc_peer_str(ev->peer, pb, sizeof pb) : NULL;
  const char *addr = nc_ma_str(ev->addr, ab, sizeof ab);
  size_t npeers = lp2p_swarm_connected_peers(sw, NULL, 0);
  cli_json j;
  cli_json_begin(&j);
  switch (ev->type) {
    case LP2P_SWARM_EV_LISTEN_ADDR_ADDED:
    case LP2P_SWARM_EV_LISTEN_ADDR_REMOVED: {
      char full[LP2P_MULTIADDR_MAX_TEXT + LP2P_PEER_ID_MAX_TEXT + 8];
      snprintf(full, sizeof full, "%s/p2p/%s", addr ? addr : "?", n->peer_id);
      int added = ev->type == LP2P_SWARM_EV_LISTEN_ADDR_ADDED;
      if (!n->a.json) {
        if (added)
          text_line("%s", full);
        else
          text_line("listen address closed: %s", full);
        if (!n->api) break;
      }
      cli_json_str(&j, "event", added ? "listening" : "listen-closed");
      cli_json_str(&j, "addr", full);
      cli_json_str(&j, "peer_id", n->peer_id);
      if (!added && ev->err) nc_json_error(&j, ev->err);
      emit(n, &j, 0);
      return;
    }
    case LP2P_SWARM_EV_CONN_ESTABLISHED:
    case LP2P_SWARM_EV_CONN_CLOSED: {
      int open = ev->type == LP2P_SWARM_EV_CONN_ESTABLISHED;
      if (!n->a.json) {
        if (open)
          text_line("connection opened: %s %s %s", peer ? peer : "?", addr ? addr : "?", nc_dir_str(ev->dir));
        else
          text_line("connection closed: %s %s %s (%s)", peer ? peer : "?", addr ? addr : "?", nc_dir_str(ev->dir),
                    lp2p_strerror(ev->err));
        if (!n->api) break;
      }
      cli_json_str(&j, "event", open ? "connection-opened" : "connection-closed");
      cli_json_str(&j, "peer", peer);
      cli_json_str(&j, "addr", addr);
      cli_json_str(&j, "direction", nc_dir_str(ev->dir));
      cli_json_int(&j, "conn_id", (long long)ev->conn_id);
      if (!open) {
        cli_json_str(&j, "reason", lp2p_err_name(ev->err));
        cli_json_str(&j, "message", lp2p_strerror(ev->err));
      }
      cli_json_int(&j, "peers", (long long)npeers);
      emit(n, &j, 0);
      return;
    }
    case LP2P_SWARM_EV_DIAL_FAILED:
    case LP2P_SWARM_EV_INBOUND_CONN_FAILED:
    case LP2P_SWARM_EV_INBOUND_STREAM_FAILED: {
      const char *name = ev->type == LP2P_SWARM_EV_DIAL_FAILED            ? "dial-failed"
                         : ev->type == LP2P_SWARM_EV_INBOUND_CONN_FAILED ? "inbound-connection-failed"
                                                                          : "inbound-stream-failed";
      if (!n->a.json) {
        text_line("%s: %s %s (%s)", name, peer ? peer : "", addr ? addr : "", lp2p_strerror(ev->err));
        if (!n->api) break;
      }
      cli_json_str(&j, "event", name);
      if (peer) cli_json_str(&j, "peer", peer);
      if (addr) cli_json_str(&j, "addr", addr);
      nc_json_error(&j, ev->err);
      emit(n, &j, 0);
      return;
    }
    default: /* peer store, external address and interface events: not printed (identify has its own lines) */
      break;
  }
  free(j.buf);
}

static void on_identify_event(lp2p_identify *id, const lp2p_identify_event *ev, void *ud) {
  node *n = ud;
  (void)id;
  char pb[LP2P_PEER_ID_MAX_TEXT];
  const char *peer = nc_peer_str(ev->peer, pb, sizeof pb);
  if (ev->type == LP2P_IDENTIFY_EV_PUSHED) return;
  if (!n->a.json) {
    if (ev->type == LP2P_IDENTIFY_EV_FAILED)
      text_line("identify failed: %s (%s)", peer, lp2p_strerror(ev->err));
    else
      text_line("%s: %s agent=\"%s\" protocols=%zu listen_addrs=%zu",
                ev->type == LP2P_IDENTIFY_EV_IDENTIFIED ? "peer identified" : "identify push", peer,
                ev->info->agent_version ? ev->info->agent_version : "", ev->info->n_protocols,
                ev->info->n_listen_addrs);
    if (!n->api) return;
  }
  cli_json j;
  cli_json_begin(&j);
  cli_json_str(&j, "event", ev->type == LP2P_IDENTIFY_EV_IDENTIFIED    ? "peer-identified"
                            : ev->type == LP2P_IDENTIFY_EV_PUSH_RECEIVED ? "identify-push"
                                                                         : "identify-failed");
  cli_json_str(&j, "peer", peer);
  if (ev->type == LP2P_IDENTIFY_EV_FAILED)
    nc_json_error(&j, ev->err);
  else
    nc_json_identify(&j, ev->info);
  emit(n, &j, 0);
}

static void on_perf_served(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_perf_result *r, void *ud) {
  node *n = ud;
  (void)sw;
  char pb[LP2P_PEER_ID_MAX_TEXT];
  if (!n->a.json) {
    text_line("perf served: %s received %llu bytes, sent %llu bytes%s%s", nc_peer_str(peer, pb, sizeof pb),
              (unsigned long long)r->uploaded, (unsigned long long)r->downloaded, err ? ": " : "",
              err ? lp2p_strerror(err) : "");
    if (!n->api) return;
  }
  cli_json j;
  cli_json_begin(&j);
  cli_json_str(&j, "event", "perf-served");
  cli_json_str(&j, "peer", nc_peer_str(peer, pb, sizeof pb));
  cli_json_int(&j, "upload", (long long)r->uploaded);
  cli_json_int(&j, "download", (long long)r->downloaded);
  if (err) nc_json_error(&j, err);
  emit(n, &j, 0);
}

/* ------------------------------------------------------------------------- */
/* echo (testing): flow-controlled, bounded */

typedef struct echo_st {
  uint8_t *buf;
  size_t len, cap; /* cap: allocated and reserved (lp2p_stream_reserve_memory) */
  int eof, closed_write;
} echo_st;

/* The buffer's capacity is what is charged: it grows by doubling (power-of-two sizes: the allocator
 * reuses what other streams freed instead of leaving holes between exact-size reallocs) and is freed
 * as soon as it drains. */
#define ECHO_MIN_CAP 4096
static int echo_room(lp2p_stream *s, echo_st *e, size_t need) {
  if (need <= e->cap) return 0;
  size_t cap = e->cap ? e->cap : ECHO_MIN_CAP;
  while (cap < need) cap *= 2;
  if (cap > ECHO_MAX_PENDING) return LP2P_ERR_LIMIT;
  if (lp2p_stream_reserve_memory(s, cap - e->cap) < 0) return LP2P_ERR_LIMIT;
  uint8_t *b = malloc(cap);
  if (!b) {
    lp2p_stream_release_memory(s, cap - e->cap);
    return LP2P_ERR_NOMEM;
  }
  if (e->len) memcpy(b, e->buf, e->len);
  free(e->buf);
  e->buf = b;
  e->cap = cap;
  return 0;
}

static void echo_drop(lp2p_stream *s, echo_st *e) {
  free(e->buf);
  e->buf = NULL;
  lp2p_stream_release_memory(s, e->cap);
  e->cap = e->len = 0;
}

static void echo_flush(lp2p_stream *s, echo_st *e) {
  if (e->len) {
    int64_t k = lp2p_stream_write(s, e->buf, e->len);
    if (k < 0) {
      lp2p_stream_reset(s);
      return;
    }
    memmove(e->buf, e->buf + k, e->len - (size_t)k);
    e->len -= (size_t)k;
    lp2p_stream_consume(s, (size_t)k);
    if (!e->len) echo_drop(s, e);
  }
  if (!e->len && e->eof && !e->closed_write) {
    e->closed_write = 1;
    lp2p_stream_close_write(s);
  }
}

static void echo_open(lp2p_stream *s, const char *protocol, void *ud) {
  (void)protocol;
  (void)ud;
  echo_st *e = calloc(1, sizeof *e);
  if (!e) {
    lp2p_stream_reset(s);
    return;
  }
  lp2p_stream_set_user(s, e);
  lp2p_stream_set_manual_consume(s, 1);
}

static void echo_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  echo_st *e = lp2p_stream_user(s);
  (void)ud;
  if (!e) return;
  if (!e->len) {
    int64_t k = lp2p_stream_write(s, p, n);
    if (k < 0) {
      lp2p_stream_reset(s);
      return;
    }
    lp2p_stream_consume(s, (size_t)k);
    p += k;
    n -= (size_t)k;
  }
  if (!n) return;
  /* unconsumed bytes hold the peer's window closed: this stays bounded, and is charged to the node's
   * resource limits (refused: the stream is reset) */
  if (echo_room(s, e, e->len + n) < 0) {
    lp2p_stream_reset(s);
    return;
  }
  memcpy(e->buf + e->len, p, n);
  e->len += n;
}

static void echo_eof(lp2p_stream *s, void *ud) {
  echo_st *e = lp2p_stream_user(s);
  (void)ud;
  if (!e) return;
  e->eof = 1;
  echo_flush(s, e);
}

static void echo_writable(lp2p_stream *s, void *ud) {
  echo_st *e = lp2p_stream_user(s);
  (void)ud;
  if (e) echo_flush(s, e);
}

static void echo_close(lp2p_stream *s, int err, void *ud) {
  echo_st *e = lp2p_stream_user(s);
  (void)err;
  (void)ud;
  if (!e) return;
  lp2p_stream_set_user(s, NULL);
  free(e->buf); /* what was reserved is released with the stream */
  free(e);
}

static const lp2p_stream_handler echo_handler = {
    sizeof(lp2p_stream_handler), echo_open, echo_data, echo_eof, echo_writable, echo_close,
};

/* ------------------------------------------------------------------------- */
/* dials and the commands (--control, --api) */

/* Where a command's result goes: origin 0 (stdin, --dial) = every API client,
 * else only the API client that sent it (if it is still connected). */
typedef struct cmd_ctx {
  node *n;
  uint64_t origin;
  char *addr; /* dials */
} cmd_ctx;

static cmd_ctx *ctx_new(node *n, uint64_t origin) {
  cmd_ctx *c = calloc(1, sizeof *c);
  if (c) {
    c->n = n;
    c->origin = origin;
  }
  return c;
}

static void on_dialed(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_dial_error *errs, size_t ne,
                      void *ud) {
  cmd_ctx *d = ud;
  node *n = d->n;
  (void)sw;
  if (err == LP2P_ERR_DIAL && ne) err = errs[0].err;
  char pb[LP2P_PEER_ID_MAX_TEXT];
  if (!n->a.json) {
    if (err)
      text_line("dial %s failed: %s", d->addr, lp2p_strerror(err));
    else
      text_line("dialed %s: %s", d->addr, nc_peer_str(peer, pb, sizeof pb));
  }
  if (n->a.json || n->api) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "dialed");
    cli_json_str(&j, "addr", d->addr);
    cli_json_str(&j, "peer", err ? NULL : nc_peer_str(peer, pb, sizeof pb));
    if (err) nc_json_error(&j, err);
    emit(n, &j, d->origin);
  }
  free(d->addr);
  free(d);
}

static void start_dial(node *n, const char *addr, uint64_t origin) {
  cmd_ctx *d = ctx_new(n, origin);
  if (!d || !(d->addr = strdup(addr))) {
    free(d);
    return;
  }
  const char *addrs[] = {addr};
  int rv = lp2p_swarm_dial(n->sw, NULL, addrs, 1, on_dialed, d);
  if (rv < 0) on_dialed(n->sw, NULL, rv, NULL, 0, d);
}

/* the `limits` command's JSON line: stdout (--json) and the asking API client */
typedef struct limits_out {
  node *n;
  uint64_t origin;
} limits_out;
static void limits_json_out(const char *line, size_t len, void *ud) {
  limits_out *lo = ud;
  if (lo->n->a.json && fwrite(line, 1, len, stdout) == len) fflush(stdout);
  if (lo->n->api) ctl_send(lo->origin, line, len);
}

void node_command_error(node *n, uint64_t origin, const char *line, const char *msg) {
  if (!n->a.json) {
    text_line("control: %s: %s", line, msg);
    if (!n->api) return;
  }
  cli_json j;
  cli_json_begin(&j);
  cli_json_str(&j, "event", "control-error");
  cli_json_str(&j, "line", line);
  cli_json_str(&j, "message", msg);
  emit(n, &j, origin);
}

static void on_control_pong(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, uint64_t rtt_us, void *ud) {
  cmd_ctx *c = ud;
  node *n = c->n;
  uint64_t origin = c->origin;
  free(c);
  (void)sw;
  char pb[LP2P_PEER_ID_MAX_TEXT];
  if (!n->a.json) {
    if (err)
      text_line("ping %s failed: %s", nc_peer_str(peer, pb, sizeof pb), lp2p_strerror(err));
    else
      text_line("pong from %s: time=%.3f ms", nc_peer_str(peer, pb, sizeof pb), (double)rtt_us / 1000.0);
    if (!n->api) return;
  }
  cli_json j;
  cli_json_begin(&j);
  cli_json_str(&j, "event", "ping");
  cli_json_str(&j, "peer", nc_peer_str(peer, pb, sizeof pb));
  if (err)
    nc_json_error(&j, err);
  else
    cli_json_int(&j, "rtt_us", (long long)rtt_us);
  emit(n, &j, origin);
}

/* Peer id from "12D3..." or from the /p2p suffix of a multiaddr (which is then
 * added to the address book). */
int node_parse_peer(node *n, const char *arg, lp2p_peer_id *peer) {
  if (arg[0] != '/') return lp2p_peer_id_parse(arg, peer);
  lp2p_multiaddr *ma = NULL;
  int rv = lp2p_multiaddr_parse(&ma, arg, NULL, 0);
  if (rv < 0) return rv;
  int idx = lp2p_multiaddr_find_last(ma, LP2P_MA_P2P);
  const uint8_t *v;
  size_t vlen;
  if (idx < 0 || lp2p_multiaddr_component(ma, (size_t)idx, NULL, &v, &vlen) < 0) {
    lp2p_multiaddr_free(ma);
    return LP2P_ERR_PEER_ID;
  }
  rv = lp2p_peer_id_from_bytes(v, vlen, peer);
  lp2p_multiaddr_free(ma);
  if (rv == 0) rv = lp2p_swarm_add_address(n->sw, NULL, arg);
  return rv;
}

/* The one command dispatcher, for stdin and every API client (loop thread). */
static void run_command(void *ud, uint64_t origin, char *line, const char *error) {
  node *n = ud;
  if (error) {
    node_command_error(n, origin, line, error);
    return;
  }
  char *save = NULL, *verb = strtok_r(line, " \t", &save);
  if (!verb) return;
  char *rest = save ? save : (char *)"";
  rest += strspn(rest, " \t");
  for (size_t m = 0; m < n->n_mod; m++) /* a module's verb: it gets the rest of the line */
    if (node_modules[m]->command && node_modules[m]->command(n, n->mod_state[m], origin, verb, rest)) return;
  char *arg = strtok_r(NULL, " \t", &save);
  char orig[512];
  snprintf(orig, sizeof orig, "%s%s%s", verb, arg ? " " : "", arg ? arg : "");
  if (!strcmp(verb, "quit")) {
    lp2p_swarm_stop(n->sw);
  } else if (!strcmp(verb, "dial") && arg) {
    start_dial(n, arg, origin);
  } else if (!strcmp(verb, "listen") && arg) {
    int rv = lp2p_swarm_listen(n->sw, arg); /* success: a "listening" event */
    if (rv < 0) node_command_error(n, origin, orig, lp2p_strerror(rv));
  } else if (!strcmp(verb, "ping") && arg) {
    lp2p_peer_id peer;
    int rv = node_parse_peer(n, arg, &peer);
    cmd_ctx *c = NULL;
    if (rv == 0 && !(c = ctx_new(n, origin))) rv = LP2P_ERR_NOMEM;
    if (rv == 0 && (rv = lp2p_ping(n->sw, &peer, on_control_pong, c)) < 0) free(c);
    if (rv < 0) node_command_error(n, origin, orig, lp2p_strerror(rv));
  } else if (!strcmp(verb, "disconnect") && arg) {
    lp2p_peer_id peer;
    int rv = node_parse_peer(n, arg, &peer);
    if (rv == 0) rv = lp2p_swarm_disconnect(n->sw, &peer);
    char pb[LP2P_PEER_ID_MAX_TEXT];
    if (!n->a.json) text_line("disconnect %s: %s", arg, rv ? lp2p_strerror(rv) : "ok");
    if (n->a.json || n->api) {
      cli_json j;
      cli_json_begin(&j);
      cli_json_str(&j, "event", "disconnected");
      cli_json_str(&j, "peer", rv == LP2P_ERR_PEER_ID ? NULL : nc_peer_str(&peer, pb, sizeof pb));
      if (rv) nc_json_error(&j, rv);
      emit(n, &j, origin);
    }
  } else if (!strcmp(verb, "limits")) {
    if (!n->a.json) nl_print(n->sw, 0, NULL, NULL);
    if (n->a.json || n->api) {
      limits_out lo = {n, origin};
      nl_print(n->sw, 1, limits_json_out, &lo);
    }
    if (arg && !strcmp(arg, "reset-peak")) lp2p_swarm_resource_reset_peaks(n->sw);
  } else if (!strcmp(verb, "peers")) {
    size_t cnt = lp2p_swarm_connected_peers(n->sw, NULL, 0);
    lp2p_peer_id *ids = calloc(cnt ? cnt : 1, sizeof *ids);
    char **txt = calloc(cnt ? cnt : 1, sizeof *txt);
    if (!ids || !txt) cnt = 0;
    cnt = ids && txt ? lp2p_swarm_connected_peers(n->sw, ids, cnt) : 0;
    for (size_t i = 0; i < cnt; i++) {
      char pb[LP2P_PEER_ID_MAX_TEXT];
      txt[i] = strdup(nc_peer_str(&ids[i], pb, sizeof pb));
    }
    if (!n->a.json) {
      text_line("peers: %zu", cnt);
      for (size_t i = 0; i < cnt; i++) text_line("  %s", txt[i] ? txt[i] : "?");
    }
    if (n->a.json || n->api) {
      cli_json j;
      cli_json_begin(&j);
      cli_json_str(&j, "event", "peers");
      cli_json_int(&j, "count", (long long)cnt);
      cli_json_str_array(&j, "peers", (const char *const *)txt, cnt);
      emit(n, &j, origin);
    }
    for (size_t i = 0; i < cnt; i++) free(txt[i]);
    free(txt);
    free(ids);
  } else {
    char msg[2048];
    size_t len = (size_t)snprintf(msg, sizeof msg,
                                  "unknown command (dial MADDR, listen MADDR, ping PEER|MADDR, disconnect PEER, peers, "
                                  "limits, quit");
    for (size_t m = 0; m < n->n_mod && len < sizeof msg; m++)
      if (node_modules[m]->commands) len += (size_t)snprintf(msg + len, sizeof msg - len, ", %s", node_modules[m]->commands);
    if (len < sizeof msg) snprintf(msg + len, sizeof msg - len, ")");
    node_command_error(n, origin, orig, msg);
  }
}

/* ------------------------------------------------------------------------- */

static void post_dials(lp2p_swarm *sw, void *arg) {
  node *n = arg;
  (void)sw;
  for (size_t i = 0; i < n->a.n_dial; i++) start_dial(n, n->a.dial[i], 0);
}

/* mkdir -p; directories created here get mode 0700. 0 or -1 (errno). */
static int make_dirs(const char *path) {
  char d[PATH_MAX];
  size_t len = strlen(path);
  if (!len || len >= sizeof d) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(d, path, len + 1);
  while (len > 1 && d[len - 1] == '/') d[--len] = 0;
  for (char *p = d + 1;; p++) {
    if (*p && *p != '/') continue;
    char c = *p;
    *p = 0;
    if (mkdir(d, 0700) < 0 && errno != EEXIST) return -1;
    *p = c;
    if (!c) break;
  }
  struct stat st;
  if (stat(d, &st) < 0) return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

/* --data-dir, or the XDG default; created. Returns 0 or an exit status. */
static int prepare_data_dir(node *n) {
  if (n->a.data_dir) {
    if ((size_t)snprintf(n->data_dir, sizeof n->data_dir, "%s", n->a.data_dir) >= sizeof n->data_dir)
      return cli_usage_error("listen: --data-dir path too long");
  } else if (cli_data_path("", n->data_dir, sizeof n->data_dir) == 0) {
    size_t l = strlen(n->data_dir);
    while (l > 1 && n->data_dir[l - 1] == '/') n->data_dir[--l] = 0;
  } else {
    n->data_dir[0] = 0;
    if (n->a.identity) return 0; /* nothing needs it today */
    return cli_error("listen: no home directory for the default identity (set XDG_DATA_HOME, or use "
                     "--data-dir or --identity)");
  }
  if (make_dirs(n->data_dir) < 0)
    return cli_error("listen: cannot create the data directory %s: %s", n->data_dir, strerror(errno));
  return 0;
}

static int setup(node *n) {
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = n->key;
  if (n->a.agent) cfg.agent_version = n->a.agent;
  if (n->a.have_idle) cfg.idle_timeout_ms = (uint32_t)n->a.idle;
  if (n->a.have_ka_interval) cfg.keepalive_interval_ms = (uint32_t)n->a.ka_interval;
  if (n->a.have_ka_timeout) cfg.keepalive_timeout_ms = (uint32_t)n->a.ka_timeout;
  if (n->a.have[OPT_MAX_INBOUND]) cfg.max_inbound_conns = (uint32_t)n->a.limit[OPT_MAX_INBOUND];
  if (n->a.have[OPT_MAX_PENDING]) cfg.max_pending_inbound = (uint32_t)n->a.limit[OPT_MAX_PENDING];
  if (n->a.have[OPT_HS_TIMEOUT]) cfg.handshake_timeout_ms = (uint32_t)n->a.limit[OPT_HS_TIMEOUT];
  if (n->a.have[OPT_STREAM_TIMEOUT]) cfg.stream_negotiation_timeout_ms = (uint32_t)n->a.limit[OPT_STREAM_TIMEOUT];
  if (n->a.have[OPT_MAX_STREAMS]) cfg.max_streams_per_conn = (uint32_t)n->a.limit[OPT_MAX_STREAMS];
  nl_apply(&n->a.lim, &cfg);
  int rv = lp2p_swarm_new(&n->sw, &cfg, NULL);
  if (rv < 0) return cli_error("listen: cannot create the swarm: %s", lp2p_strerror(rv));
  lp2p_swarm_set_event_handler(n->sw, on_swarm_event, n);
  lp2p_identify_config icfg;
  lp2p_identify_config_default(&icfg);
  icfg.on_event = on_identify_event;
  icfg.ud = n;
  lp2p_perf_config pcfg;
  lp2p_perf_config_default(&pcfg);
  pcfg.on_served = on_perf_served;
  pcfg.ud = n;
  if ((rv = lp2p_identify_add(n->sw, &icfg, NULL)) < 0 || (rv = lp2p_ping_add(n->sw, NULL, NULL)) < 0 ||
      (rv = lp2p_perf_add(n->sw, &pcfg, NULL)) < 0 ||
      (n->a.echo && (rv = lp2p_swarm_set_protocol(n->sw, ECHO_PROTOCOL, &echo_handler, n)) < 0))
    return cli_error("listen: cannot set up the node: %s", lp2p_strerror(rv));
  if (n->data_dir[0] && (rv = peerfile_open(&n->peers, n->sw, n->data_dir)) < 0)
    return cli_error("listen: cannot load %s/peers: %s", n->data_dir, lp2p_strerror(rv));
  for (size_t m = 0; m < n->n_mod; m++)
    if (node_modules[m]->setup && (rv = node_modules[m]->setup(n, n->mod_state[m])) != 0) return rv;
  if (!n->a.n_listen) n->a.listen[n->a.n_listen++] = DEFAULT_LISTEN;
  for (size_t i = 0; i < n->a.n_listen; i++) {
    if ((rv = lp2p_swarm_listen(n->sw, n->a.listen[i])) < 0) {
      if (rv == LP2P_ERR_MULTIADDR) return cli_usage_error("listen: bad listen address '%s'", n->a.listen[i]);
      return cli_error("listen: cannot listen on %s: %s", n->a.listen[i], lp2p_strerror(rv));
    }
  }
  if (n->a.n_dial && (rv = lp2p_swarm_post(n->sw, post_dials, n)) < 0)
    return cli_error("listen: cannot schedule dials: %s", lp2p_strerror(rv));
  return 0;
}

static int listen_main(node *n);

int cmd_listen(const cli_command *cmd, int argc, char **argv) {
  (void)cmd;
  node n;
  memset(&n, 0, sizeof n);
  /* our options, then each module's */
  size_t n_opts = N_OPTS;
  for (; node_modules[n.n_mod]; n.n_mod++) n_opts += node_modules[n.n_mod]->n_opts;
  if (n.n_mod > sizeof n.mod_state / sizeof *n.mod_state) return cli_error("listen: too many modules");
  cli_opt *opts = calloc(n_opts, sizeof *opts);
  if (!opts) return cli_error("listen: out of memory");
  memcpy(opts, listen_opts, sizeof listen_opts);
  for (size_t m = 0, at = N_OPTS; m < n.n_mod; m++) {
    const node_module *mod = node_modules[m];
    if (mod->n_opts) memcpy(opts + at, mod->opts, mod->n_opts * sizeof *opts);
    at += mod->n_opts;
    if (!(n.mod_state[m] = calloc(1, mod->state_size ? mod->state_size : 1))) {
      while (m--) free(n.mod_state[m]);
      free(opts);
      return cli_error("listen: out of memory");
    }
  }
  int rv = cli_parse(argc, argv, opts, n_opts, on_opt, &n);
  if (rv == CLI_HELP_SHOWN) listen_usage(stdout, opts, n_opts);
  free(opts);
  if (rv) {
    for (size_t m = 0; m < n.n_mod; m++) free(n.mod_state[m]);
    return rv == CLI_HELP_SHOWN ? CLI_EXIT_OK : rv;
  }
  rv = listen_main(&n);
  for (size_t m = 0; m < n.n_mod; m++) {
    if (node_modules[m]->teardown) node_modules[m]->teardown(&n, n.mod_state[m]);
    free(n.mod_state[m]);
  }
  return rv;
}

static int listen_main(node *n) {
  int rv;
  if ((rv = prepare_data_dir(n))) return rv;
  char path[PATH_MAX];
  if (n->a.identity) {
    snprintf(path, sizeof path, "%s", n->a.identity);
  } else if ((size_t)snprintf(path, sizeof path, "%s/identity.key", n->data_dir) >= sizeof path) {
    return cli_error("listen: --data-dir path too long");
  }
  /* the default (no --data-dir, no --identity) is the file `lp2p-node id` uses */
  if ((rv = nc_identity("listen", path, 1, n->a.have_type ? n->a.type : LP2P_KEY_ED25519, &n->key))) return rv;
  if (n->a.have_type && lp2p_privkey_type(n->key) != n->a.type) {
    lp2p_key_type have = lp2p_privkey_type(n->key);
    lp2p_privkey_free(n->key);
    return cli_error("listen: identity %s holds a %s key, not %s (use another --identity or drop --key-type)",
                     path, lp2p_key_type_name(have), lp2p_key_type_name(n->a.type));
  }
  if (n->a.api) {
    char why[PATH_MAX + 128];
    if (ctl_api_open(n->a.api, why, sizeof why) < 0) {
      lp2p_privkey_free(n->key);
      return cli_error("listen: %s", why);
    }
    n->api = 1;
  }
  lp2p_peer_id me;
  lp2p_peer_id_from_pubkey(lp2p_privkey_public(n->key), &me);
  nc_peer_str(&me, n->peer_id, sizeof n->peer_id);

  /* signals are blocked before any thread exists, so every thread inherits the mask */
  int st = 0;
  if (nc_signals_block() < 0) {
    lp2p_privkey_free(n->key);
    return cli_error("listen: cannot set up signal handling");
  }
  if ((st = setup(n)) == 0) {
    if (nc_signals_start(n->sw) < 0) st = cli_error("listen: cannot set up signal handling");
    if (!st && (n->a.control || n->api) && ctl_start(n->sw, n->a.control, run_command, n) < 0)
      st = cli_error("listen: cannot start the control channel");
  }
  if (!st) lp2p_swarm_run(n->sw);
  for (size_t m = 0; m < n->n_mod; m++)
    if (node_modules[m]->stop && n->sw) node_modules[m]->stop(n, n->mod_state[m]);
  int sig = nc_signals_stop();
  if (!st && (n->a.json || n->api)) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "stopping");
    cli_json_int(&j, "signal", sig);
    emit(n, &j, 0);
  }
  ctl_stop(); /* API clients get "stopping" if they can take it now; the socket file goes */
  lp2p_swarm_free(n->sw);
  peerfile_close(n->peers);
  lp2p_privkey_free(n->key);
  n->api = 0; /* clients are gone */
  if (!st && n->a.json) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "stopped");
    emit(n, &j, 0);
  } else if (!st) {
    text_line("stopped");
  }
  return st;
}
