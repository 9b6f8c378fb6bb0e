/* tests/tools/hostile_streams.c - resource-exhaustion attacker for tests/interop/test_limits.sh.
 *
 * Unlike hostile_peer.c (hand-built frames), this one is an ordinary lp2p client built on the public
 * API (one swarm per connection, all on one libuv loop), misbehaving only in what it asks for and in
 * never granting flow-control window: every stream uses manual consume and never consumes, so the
 * node's yamux send window to it closes after the first 256 KiB per stream. Bytes that arrive are
 * discarded.
 *
 * Usage: hostile_streams MODE --addr MADDR [--conns C] [--streams S] [--hold-ms T] [--bytes N]
 * Modes:
 *   perf     each stream: /perf/1.0.0 asking for N bytes (default 1 GiB), uploading nothing
 *   echo     each stream: /lp2p-test/echo/1.0.0, writes N bytes (default 1 MiB) it never reads back
 *   all      streams cycle over every protocol the node serves (ping, identify, push, perf, echo),
 *            each written to as the protocol expects (perf asks for N), none ever read
 *   nego     each stream proposes 32 unknown protocols of 900 bytes then the real one (echo), and
 *            then sends nothing (for streams that never finish negotiating, see hostile_peer
 *            yamux-nego-timeout)
 * Output (stdout, line-buffered): "connected C", "opened K" once K streams had on_open (or failed),
 * "stalled RX" once the streams received what the node will send without a window update (RX =
 * bytes received in all), "done RX" when it disconnects after --hold-ms (default 3000). Exit 0, or 1
 * when the node could not be reached (2 for usage errors). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lp2p/keys.h"
#include "lp2p/multiaddr.h"
#include "lp2p/peerid.h"
#include "lp2p/swarm.h"
#include "lp2p/uv.h"

#define ECHO_ID "/lp2p-test/echo/1.0.0"
#define PERF_ID "/perf/1.0.0"
#define MAX_CONNS 64

typedef struct att att;
typedef struct conn_st {
  att *a;
  lp2p_swarm *sw;
  lp2p_privkey *key;
  lp2p_peer_id peer;
  int up;
} conn_st;

struct att {
  const char *mode, *addr;
  int conns, streams, hold_ms;
  uint64_t bytes;
  uv_loop_t loop;
  uv_timer_t tick;
  conn_st c[MAX_CONNS];
  int n_up, n_failed_dial;
  int opened, closed;
  uint64_t rx, last_rx;
  int quiet_ticks, reported_stalled, holding;
  uint64_t hold_until;
  int failed;
};

static uint8_t g_zero[64 * 1024];

typedef struct st_ud {
  att *a;
  int kind; /* 0 perf, 1 echo, 2 other */
  uint64_t left;
} st_ud;

static void pump(lp2p_stream *s, st_ud *u) {
  while (u->left) {
    size_t n = u->left < sizeof g_zero ? (size_t)u->left : sizeof g_zero;
    int64_t k = lp2p_stream_write(s, g_zero, n);
    if (k <= 0) return;
    u->left -= (uint64_t)k;
  }
  lp2p_stream_close_write(s);
}

static void h_open(lp2p_stream *s, const char *protocol, void *ud) {
  st_ud *u = ud;
  u->a->opened++;
  lp2p_stream_set_manual_consume(s, 1); /* never grant window */
  if (!strcmp(protocol, PERF_ID)) {
    uint8_t head[8];
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)(u->a->bytes >> (56 - 8 * i));
    lp2p_stream_write(s, head, 8);
    lp2p_stream_close_write(s);
  } else if (!strcmp(protocol, ECHO_ID) && strcmp(u->a->mode, "nego")) {
    u->left = u->a->bytes;
    pump(s, u);
  } else if (!strcmp(protocol, "/ipfs/ping/1.0.0")) {
    lp2p_stream_write(s, g_zero, 32); /* one ping, answer never read */
  }
}

static void h_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  st_ud *u = ud;
  (void)s;
  (void)p;
  u->a->rx += n; /* discarded, never consumed */
}

static void h_writable(lp2p_stream *s, void *ud) { pump(s, ud); }

static void h_close(lp2p_stream *s, int err, void *ud) {
  st_ud *u = ud;
  (void)s;
  (void)err;
  u->a->closed++;
  free(u);
}

static const lp2p_stream_handler k_handler = {sizeof(lp2p_stream_handler), h_open, h_data, NULL, h_writable,
                                              h_close};

static const char *k_all[] = {PERF_ID, ECHO_ID, "/ipfs/ping/1.0.0", "/ipfs/id/1.0.0", "/ipfs/id/push/1.0.0"};

static char *nego[33];

static void open_streams(conn_st *c) {
  att *a = c->a;
  if (!nego[0])
    for (int i = 0; i < 32; i++) {
      nego[i] = malloc(901);
      nego[i][0] = '/';
      memset(nego[i] + 1, 'a' + i % 26, 899);
      nego[i][900] = 0;
      snprintf(nego[i] + 1, 8, "x%02d", i);
      nego[i][4] = 'y';
    }
  nego[32] = (char *)ECHO_ID;
  for (int i = 0; i < a->streams; i++) {
    st_ud *u = calloc(1, sizeof *u);
    u->a = a;
    const char *one[1];
    const char *const *protos = one;
    size_t n = 1;
    if (!strcmp(a->mode, "perf"))
      one[0] = PERF_ID;
    else if (!strcmp(a->mode, "echo"))
      one[0] = ECHO_ID;
    else if (!strcmp(a->mode, "all"))
      one[0] = k_all[i % 5];
    else {
      protos = (const char *const *)nego;
      n = 33;
    }
    if (lp2p_swarm_open_stream(c->sw, &c->peer, protos, n, &k_handler, u, NULL) < 0) {
      free(u);
      a->closed++;
    }
  }
}

static void on_dialed(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_dial_error *errs, size_t n,
                      void *ud) {
  conn_st *c = ud;
  (void)sw;
  (void)errs;
  (void)n;
  if (err) {
    fprintf(stderr, "dial failed: %s\n", lp2p_strerror(err));
    c->a->failed = 1;
    c->a->n_failed_dial++;
    return;
  }
  c->peer = *peer;
  c->up = 1;
  if (++c->a->n_up == c->a->conns) printf("connected %d\n", c->a->n_up);
  open_streams(c);
}

static void tick(uv_timer_t *t) {
  att *a = t->data;
  if (a->failed) {
    uv_stop(&a->loop);
    return;
  }
  int total = a->conns * a->streams;
  if (!a->reported_stalled && a->opened + a->closed >= total) {
    /* stalled: nothing arrived for 300 ms */
    if (a->rx == a->last_rx) {
      if (++a->quiet_ticks >= 3) {
        printf("opened %d\nstalled %llu\n", a->opened, (unsigned long long)a->rx);
        a->reported_stalled = 1;
        a->hold_until = uv_now(&a->loop) + (uint64_t)a->hold_ms;
      }
    } else {
      a->quiet_ticks = 0;
    }
  }
  a->last_rx = a->rx;
  if (a->reported_stalled && uv_now(&a->loop) >= a->hold_until) uv_stop(&a->loop);
}

int main(int argc, char **argv) {
  att *a = calloc(1, sizeof *a);
  a->conns = 1;
  a->streams = 500;
  a->hold_ms = 3000;
  if (argc < 2) goto usage;
  a->mode = argv[1];
  a->bytes = !strcmp(a->mode, "echo") ? (1u << 20) : (1ull << 30);
  for (int i = 2; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) goto usage;
    if (!strcmp(argv[i], "--addr"))
      a->addr = v;
    else if (!strcmp(argv[i], "--conns"))
      a->conns = atoi(v);
    else if (!strcmp(argv[i], "--streams"))
      a->streams = atoi(v);
    else if (!strcmp(argv[i], "--hold-ms"))
      a->hold_ms = atoi(v);
    else if (!strcmp(argv[i], "--bytes"))
      a->bytes = strtoull(v, NULL, 10);
    else
      goto usage;
    i++;
  }
  if (!a->addr || a->conns < 1 || a->conns > MAX_CONNS || a->streams < 1 ||
      (strcmp(a->mode, "perf") && strcmp(a->mode, "echo") && strcmp(a->mode, "all") && strcmp(a->mode, "nego")))
    goto usage;
  setvbuf(stdout, NULL, _IOLBF, 0);
  uv_loop_init(&a->loop);
  for (int i = 0; i < a->conns; i++) {
    conn_st *c = &a->c[i];
    c->a = a;
    if (lp2p_privkey_generate(&c->key, LP2P_KEY_ED25519, 0) < 0) return 1;
    lp2p_swarm_config cfg;
    lp2p_swarm_config_default(&cfg);
    cfg.identity = c->key;
    cfg.max_streams_per_conn = 0;
    cfg.idle_timeout_ms = 0;
    cfg.stream_negotiation_timeout_ms = 60000;
    if (lp2p_swarm_new_uv(&c->sw, &cfg, &a->loop, NULL) < 0) return 1;
    const char *addrs[] = {a->addr};
    if (lp2p_swarm_dial(c->sw, NULL, addrs, 1, on_dialed, c) < 0) return 1;
  }
  uv_timer_init(&a->loop, &a->tick);
  a->tick.data = a;
  uv_timer_start(&a->tick, tick, 100, 100);
  uv_run(&a->loop, UV_RUN_DEFAULT);
  int failed = a->failed;
  uv_timer_stop(&a->tick);
  uv_close((uv_handle_t *)&a->tick, NULL);
  for (int i = 0; i < a->conns; i++) lp2p_swarm_free(a->c[i].sw);
  uv_run(&a->loop, UV_RUN_DEFAULT);
  uv_loop_close(&a->loop);
  for (int i = 0; i < a->conns; i++) lp2p_privkey_free(a->c[i].key);
  for (int i = 0; i < 32; i++) free(nego[i]);
  printf("done %llu\n", (unsigned long long)a->rx);
  free(a);
  return failed;
usage:
  free(a);
  fprintf(stderr, "usage: hostile_streams perf|echo|all|nego --addr MADDR [--conns C] [--streams S] "
                  "[--hold-ms T] [--bytes N]\n");
  return 2;
}
