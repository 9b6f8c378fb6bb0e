/* node/mod_pair.c - pairing and the device registry in `lp2p-node listen`
 * (lp2p/pairing.h, lp2p/devices.h): options, control/API commands
 * pair-start, pair-join CODE [PEER|MADDR], devices, unpair PEER, and the events
 * pair-code {code}, paired {peer, name, sas, role}, pair-failed {error, role,
 * burned}, device-state {peer, name, state}. The one-shot subcommands
 * `lp2p-node pair [CODE]` and `unpair PEER` (node/cmd_pair.c) run `listen` with
 * the hidden --pair-once option, which starts/joins/unpairs at setup and stops
 * the node when that is over. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp2p/devices.h"
#include "lp2p/kad.h"
#include "lp2p/mdns.h"
#include "lp2p/pairing.h"
#include "lp2p/reqresp.h"
#include "module.h"

#define MAX_PAIRED_ONLY 8

enum { O_NAME, O_PAIRED_ONLY, O_CODE_TTL, O_DIGITS, O_ONCE, O_ONCE_PEER };

static const cli_opt pair_opts[] = {
    [O_NAME] = {"device-name", "NAME", "this device's name for pairing (default: the host name)"},
    [O_PAIRED_ONLY] = {"paired-only", "PROTOCOL", "serve PROTOCOL to paired devices only (repeatable)"},
    [O_CODE_TTL] = {"pair-code-ttl", "SEC", "pairing codes expire after SEC seconds (default 300)"},
    [O_DIGITS] = {"pair-nameplate-digits", "N", "digits of a pairing code's nameplate (default 3)"},
    [O_ONCE] = {"pair-once", "start|CODE|unpair:PEER", "(used by `lp2p-node pair` / `unpair`)"},
    [O_ONCE_PEER] = {"pair-peer", "MADDR", "(with --pair-once CODE: the initiator's address)"},
};

typedef struct pair_st {
  node *n;
  const char *name;
  const char *paired_only[MAX_PAIRED_ONLY];
  size_t n_po;
  unsigned long ttl, digits;
  const char *once, *once_peer;
  int once_failed;
  lp2p_timer *once_timer;
  int once_ticks;
  lp2p_devices *dev;
  lp2p_pairing *pair;
  int dht_added, mdns_added;
  char host[65];
} pair_st;

static int pair_opt(node *n, void *st_, size_t idx, const char *val) {
  pair_st *st = st_;
  (void)n;
  char *end = NULL;
  switch (idx) {
    case O_NAME:
      if (strlen(val) > LP2P_DEVICE_NAME_MAX) return cli_usage_error("listen: --device-name longer than 64 bytes");
      st->name = val;
      break;
    case O_PAIRED_ONLY:
      if (st->n_po == MAX_PAIRED_ONLY) return cli_usage_error("listen: at most %d --paired-only", MAX_PAIRED_ONLY);
      if (val[0] != '/') return cli_usage_error("listen: --paired-only wants a protocol id starting with '/'");
      st->paired_only[st->n_po++] = val;
      break;
    case O_CODE_TTL:
      st->ttl = strtoul(val, &end, 10);
      if (!*val || *end || !st->ttl || st->ttl > 86400) return cli_usage_error("listen: bad --pair-code-ttl '%s'", val);
      break;
    case O_DIGITS:
      st->digits = strtoul(val, &end, 10);
      if (!*val || *end || st->digits < 1 || st->digits > 12)
        return cli_usage_error("listen: bad --pair-nameplate-digits '%s' (1..12)", val);
      break;
    case O_ONCE: st->once = val; break;
    case O_ONCE_PEER: st->once_peer = val; break;
  }
  return 0;
}

static const char *peer_text(const lp2p_peer_id *p, char *buf, size_t cap) {
  if (!p || lp2p_peer_id_to_string(p, buf, cap) < 0) snprintf(buf, cap, "?");
  return buf;
}

static void once_done(pair_st *st, int failed) {
  if (!st->once) return;
  st->once_failed = failed;
  lp2p_swarm_stop(node_swarm(st->n));
}

static void on_pairing(lp2p_pairing *p, const lp2p_pairing_event *ev, void *ud) {
  pair_st *st = ud;
  node *n = st->n;
  (void)p;
  char pb[LP2P_PEER_ID_MAX_TEXT];
  const char *role = ev->role == LP2P_PAIRING_INITIATOR ? "initiator" : "joiner";
  cli_json j;
  if (ev->type == LP2P_PAIRING_EV_PAIRED) {
    node_text(n, "paired with %s (%s), SAS %s", ev->name && ev->name[0] ? ev->name : "(no name)",
              peer_text(ev->peer, pb, sizeof pb), ev->sas ? ev->sas : "");
    if (node_json_wanted(n)) {
      cli_json_begin(&j);
      cli_json_str(&j, "event", "paired");
      cli_json_str(&j, "peer", peer_text(ev->peer, pb, sizeof pb));
      cli_json_str(&j, "name", ev->name ? ev->name : "");
      cli_json_str(&j, "sas", ev->sas);
      cli_json_str(&j, "role", role);
      cli_json_str_array(&j, "addrs", ev->addrs, ev->n_addrs);
      node_emit(n, &j, 0);
    }
    once_done(st, 0);
    return;
  }
  const char *err = lp2p_pairing_fail_name(ev->fail);
  node_text(n, "pairing failed: %s%s%s%s", err, ev->fail == LP2P_PAIRING_FAIL_ABORTED ? " (peer: " : "",
            ev->fail == LP2P_PAIRING_FAIL_ABORTED ? lp2p_pairing_fail_name((lp2p_pairing_fail)ev->peer_reason) : "",
            ev->fail == LP2P_PAIRING_FAIL_ABORTED ? ")" : "");
  if (node_json_wanted(n)) {
    cli_json_begin(&j);
    cli_json_str(&j, "event", "pair-failed");
    cli_json_str(&j, "error", err);
    if (ev->fail == LP2P_PAIRING_FAIL_ABORTED)
      cli_json_str(&j, "peer_error", lp2p_pairing_fail_name((lp2p_pairing_fail)ev->peer_reason));
    cli_json_str(&j, "role", role);
    cli_json_bool(&j, "burned", ev->code_burned);
    if (ev->peer) cli_json_str(&j, "peer", peer_text(ev->peer, pb, sizeof pb));
    node_emit(n, &j, 0);
  }
  /* the initiator's code is over only when it was burned or expired */
  if (ev->role == LP2P_PAIRING_JOINER || ev->code_burned) once_done(st, 1);
}

static void on_device(lp2p_devices *d, const lp2p_device_event *ev, void *ud) {
  pair_st *st = ud;
  (void)d;
  char pb[LP2P_PEER_ID_MAX_TEXT];
  const char *state = lp2p_device_state_name(ev->device->state);
  node_text(st->n, "device %s (%s): %s", peer_text(&ev->device->peer, pb, sizeof pb), ev->device->name, state);
  if (!node_json_wanted(st->n)) return;
  cli_json j;
  cli_json_begin(&j);
  cli_json_str(&j, "event", "device-state");
  cli_json_str(&j, "peer", pb);
  cli_json_str(&j, "name", ev->device->name);
  cli_json_str(&j, "state", state);
  cli_json_str(&j, "prev", ev->prev ? lp2p_device_state_name(ev->prev) : NULL);
  node_emit(st->n, &j, 0);
}

static void fail_now(pair_st *st, uint64_t origin, const char *error, int err) {
  node *n = st->n;
  node_text(n, "pairing failed: %s (%s)", error, lp2p_strerror(err));
  if (node_json_wanted(n)) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "pair-failed");
    cli_json_str(&j, "error", error);
    cli_json_str(&j, "message", lp2p_strerror(err));
    node_emit(n, &j, origin);
  }
}

/* A Kademlia behaviour in the node (a kad module) makes the DHT a rendezvous too; mDNS
 * (--mdns) the LAN one (the nameplate's tag in our mDNS record). */
static void ensure_dht(pair_st *st) {
  lp2p_kad *kad = st->dht_added ? NULL : lp2p_kad_get(node_swarm(st->n));
  if (kad && lp2p_pairing_add_dht_rendezvous(st->pair, kad) == 0) st->dht_added = 1;
  lp2p_mdns_service *m = st->mdns_added ? NULL : lp2p_swarm_behaviour(node_swarm(st->n), LP2P_MDNS_BEHAVIOUR);
  if (m && lp2p_pairing_add_mdns_rendezvous(st->pair, m) == 0) st->mdns_added = 1;
}

static int do_start(pair_st *st, uint64_t origin) {
  ensure_dht(st);
  char code[LP2P_PAIRING_CODE_MAX];
  int rv = lp2p_pairing_start(st->pair, code, sizeof code);
  if (rv < 0) {
    fail_now(st, origin, rv == LP2P_ERR_LIMIT ? "rate-limited" : "busy", rv);
    return rv;
  }
  node_text(st->n, "pairing code: %s", code);
  if (node_json_wanted(st->n)) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "pair-code");
    cli_json_str(&j, "code", code);
    cli_json_str(&j, "peer", node_peer_id(st->n));
    node_emit(st->n, &j, 0);
  }
  return 0;
}

/* "CODE" or "CODE PEER|MADDR" (CODE may contain spaces between its parts: the peer is the
 * last token when it starts with '/' or "12D3"/"Qm") */
static int do_join(pair_st *st, uint64_t origin, char *args) {
  char *code = args, *peer_arg = NULL;
  size_t len = strlen(args);
  while (len && (args[len - 1] == ' ' || args[len - 1] == '\t')) args[--len] = 0;
  char *sp = strrchr(args, ' ');
  if (sp && (sp[1] == '/' || !strncmp(sp + 1, "12D3", 4) || !strncmp(sp + 1, "Qm", 2))) {
    *sp = 0;
    peer_arg = sp + 1;
  }
  lp2p_peer_id peer;
  int rv = 0;
  ensure_dht(st);
  if (peer_arg && (rv = node_parse_peer(st->n, peer_arg, &peer)) < 0) {
    fail_now(st, origin, "bad-peer", rv);
    return rv;
  }
  rv = lp2p_pairing_join(st->pair, code, peer_arg ? &peer : NULL);
  if (rv < 0) {
    fail_now(st, origin,
             rv == LP2P_ERR_SIGNATURE ? "typo"
             : rv == LP2P_ERR_PARSE   ? "bad-code"
             : rv == LP2P_ERR_STATE   ? "burned-or-busy"
                                      : "error",
             rv);
  }
  return rv;
}

static void emit_unpaired(pair_st *st, uint64_t origin, const char *arg, const lp2p_peer_id *peer, int rv) {
  char pb[LP2P_PEER_ID_MAX_TEXT];
  node_text(st->n, "unpair %s: %s", arg, rv ? lp2p_strerror(rv) : "ok");
  if (!node_json_wanted(st->n)) return;
  cli_json j;
  cli_json_begin(&j);
  cli_json_str(&j, "event", "unpaired");
  cli_json_str(&j, "peer", peer ? peer_text(peer, pb, sizeof pb) : arg);
  cli_json_bool(&j, "ok", rv == 0);
  if (rv) cli_json_str(&j, "error", lp2p_err_name(rv));
  node_emit(st->n, &j, origin);
}

static int do_unpair(pair_st *st, uint64_t origin, const char *arg) {
  lp2p_peer_id peer;
  int rv = node_parse_peer(st->n, arg, &peer);
  if (rv == 0) rv = lp2p_devices_unpair(st->dev, &peer);
  emit_unpaired(st, origin, arg, rv == 0 ? &peer : NULL, rv);
  return rv;
}

static void do_devices(pair_st *st, uint64_t origin) {
  size_t cnt = lp2p_devices_list(st->dev, NULL, 0);
  lp2p_device *devs = calloc(cnt ? cnt : 1, sizeof *devs);
  const char **peers = calloc(cnt ? cnt : 1, sizeof *peers), **names = calloc(cnt ? cnt : 1, sizeof *names),
             **states = calloc(cnt ? cnt : 1, sizeof *states);
  char (*pb)[LP2P_PEER_ID_MAX_TEXT] = calloc(cnt ? cnt : 1, sizeof *pb);
  if (!devs || !peers || !names || !states || !pb) cnt = 0;
  cnt = cnt ? lp2p_devices_list(st->dev, devs, cnt) : 0;
  node_text(st->n, "devices: %zu", cnt);
  for (size_t i = 0; i < cnt; i++) {
    peers[i] = peer_text(&devs[i].peer, pb[i], sizeof pb[i]);
    names[i] = devs[i].name;
    states[i] = lp2p_device_state_name(devs[i].state);
    node_text(st->n, "  %s  %-20s %s", peers[i], names[i], states[i]);
  }
  if (node_json_wanted(st->n)) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "devices");
    cli_json_int(&j, "count", (long long)cnt);
    cli_json_str_array(&j, "peers", peers, cnt);
    cli_json_str_array(&j, "names", names, cnt);
    cli_json_str_array(&j, "states", states, cnt);
    node_emit(st->n, &j, origin);
  }
  free(devs);
  free(peers);
  free(names);
  free(states);
  free(pb);
}

static int pair_command(node *n, void *st_, uint64_t origin, const char *verb, char *args) {
  pair_st *st = st_;
  (void)n;
  if (!strcmp(verb, "pair-start")) {
    do_start(st, origin);
  } else if (!strcmp(verb, "pair-join")) {
    if (!*args)
      node_command_error(n, origin, verb, "pair-join needs a code");
    else
      do_join(st, origin, args);
  } else if (!strcmp(verb, "pair-cancel")) {
    lp2p_pairing_cancel(st->pair);
  } else if (!strcmp(verb, "devices")) {
    do_devices(st, origin);
  } else if (!strcmp(verb, "unpair")) {
    if (!*args)
      node_command_error(n, origin, verb, "unpair needs a peer id");
    else
      do_unpair(st, origin, args);
  } else {
    return 0;
  }
  return 1;
}

/* --pair-once unpair:PEER: stop once the other side was told (or could not be) */
static void once_tick(lp2p_timer *t, void *ud) {
  pair_st *st = ud;
  lp2p_reqresp *rr = lp2p_swarm_behaviour(node_swarm(st->n), LP2P_REQRESP_BEHAVIOUR);
  if (!rr || !lp2p_reqresp_pending_outbound(rr) || ++st->once_ticks > 200) {
    lp2p_timer_stop(t);
    lp2p_swarm_stop(node_swarm(st->n));
  }
}

static void once_post(lp2p_swarm *sw, void *arg) {
  pair_st *st = arg;
  (void)sw;
  if (!strcmp(st->once, "start")) {
    if (do_start(st, 0) < 0) once_done(st, 1);
  } else if (!strncmp(st->once, "unpair:", 7)) {
    int rv = do_unpair(st, 0, st->once + 7);
    st->once_failed = rv < 0;
    if (rv < 0 || lp2p_timer_new(&st->once_timer, node_swarm(st->n), once_tick, st) < 0 ||
        lp2p_timer_start(st->once_timer, 25, 25) < 0)
      lp2p_swarm_stop(node_swarm(st->n));
  } else {
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s%s", st->once, st->once_peer ? " " : "", st->once_peer ? st->once_peer : "");
    if (do_join(st, 0, buf) < 0) once_done(st, 1);
  }
}

static int pair_setup(node *n, void *st_) {
  pair_st *st = st_;
  st->n = n;
  lp2p_swarm *sw = node_swarm(n);
  const char *dir = node_data_dir(n);
  lp2p_devices_config dc = {sizeof dc, dir[0] ? dir : NULL, on_device, st};
  int rv = lp2p_devices_add(sw, &dc, &st->dev);
  if (rv < 0) return cli_error("listen: cannot load the device registry in %s: %s", dir, lp2p_strerror(rv));
  for (size_t i = 0; i < st->n_po; i++)
    if ((rv = lp2p_devices_set_paired_only(st->dev, st->paired_only[i])) < 0)
      return cli_error("listen: --paired-only %s: %s", st->paired_only[i], lp2p_strerror(rv));
  lp2p_pairing_config pc;
  lp2p_pairing_config_default(&pc);
  if (!st->name && gethostname(st->host, sizeof st->host - 1) == 0) st->name = st->host;
  if (st->name) pc.device_name = st->name;
  if (st->ttl) pc.code_lifetime_ms = (uint32_t)(st->ttl * 1000);
  if (st->digits) pc.nameplate_digits = (unsigned)st->digits;
  pc.on_event = on_pairing;
  pc.ud = st;
  if ((rv = lp2p_pairing_add(sw, &pc, &st->pair)) < 0)
    return cli_error("listen: cannot set up pairing: %s", lp2p_strerror(rv));
  if (st->once && lp2p_swarm_post(sw, once_post, st) < 0) return cli_error("listen: cannot schedule pairing");
  return 0;
}

static void pair_teardown(node *n, void *st_) {
  pair_st *st = st_;
  (void)n;
  if (st->once && st->once_failed) { /* one-shot: the exit status says how it went */
    fflush(stdout);
    exit(CLI_EXIT_FAIL);
  }
}

const node_module node_mod_pair = {
    .name = "pair",
    .opts = pair_opts,
    .n_opts = sizeof pair_opts / sizeof *pair_opts,
    .opt = pair_opt,
    .usage = "Pairing (lp2p/pairing.h) and devices (lp2p/devices.h):\n"
             "  commands: pair-start, pair-join CODE [PEER|MADDR], pair-cancel, devices, unpair PEER\n"
             "  events: pair-code {code, peer}, paired {peer, name, sas, role, addrs},\n"
             "          pair-failed {error, role, burned, peer?}, device-state {peer, name, state, prev},\n"
             "          devices {count, peers, names, states}, unpaired {peer, ok, error?}\n",
    .state_size = sizeof(pair_st),
    .setup = pair_setup,
    .command = pair_command,
    .teardown = pair_teardown,
    .commands = "pair-start, pair-join CODE [PEER], pair-cancel, devices, unpair PEER",
};
