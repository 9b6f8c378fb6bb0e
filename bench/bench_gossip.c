/* bench/bench_gossip.c - gossipsub (lp2p/pubsub.h) in a 50-node network on loopback TCP, all
 * nodes in this process on one libuv loop (so every figure includes the work of all 50 nodes
 * on one core). Topology: a chain plus EXTRA random links per node (connected, sparse);
 * default parameters (D 6, heartbeat 1 s, flood publishing, scoring on).
 *
 *   latency    K messages of 1 KiB, one at a time from random publishers: time from
 *              publish to the LAST of the 49 subscribers (p50, p99, max)
 *   duplicates received copies that were already seen, per delivered message
 *   throughput M messages of 1 KiB published back to back by random publishers: messages/s
 *              until every subscriber had every message (and deliveries/s)
 *
 * Usage: bench_gossip [--quick] [--json FILE] [--nodes N] [--extra E] */
#include <uv.h>

#include "bench_util.h"
#include "lp2p/keys.h"
#include "lp2p/pubsub.h"
#include "lp2p/uv.h"

#define MAXN 200
#define MAXMSG 4000
#define SIZE 1024
#define TOPIC "bench"

typedef struct bnode {
  lp2p_swarm *sw;
  lp2p_privkey *key;
  lp2p_pubsub *ps;
  char addr[300];
  int idx;
} bnode;

static uv_loop_t loop;
static bnode nodes[MAXN];
static int N = 50, EXTRA = 2;
static uint64_t first_ns[MAXMSG], last_ns[MAXMSG];
static int got[MAXMSG];
static uint16_t *recv_count; /* [node][msg] */
static uint64_t deliveries, multi;

static void on_msg(lp2p_pubsub *ps, const lp2p_pubsub_message *m, void *ud) {
  bnode *b = ud;
  (void)ps;
  if (m->data_len < 4) return;
  uint32_t k = (uint32_t)m->data[0] | (uint32_t)m->data[1] << 8 | (uint32_t)m->data[2] << 16;
  if (k >= MAXMSG) return;
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
static int msg_done(void *arg) { return got[*(int *)arg] >= N - 1; }
typedef struct range { int from, to; } range;
static int range_done(void *arg) {
  range *r = arg;
  for (int k = r->from; k < r->to; k++)
    if (got[k] < N - 1) return 0;
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

static void publish(int k) {
  uint8_t d[SIZE];
  memset(d, 'g', sizeof d);
  d[0] = (uint8_t)k, d[1] = (uint8_t)(k >> 8), d[2] = (uint8_t)(k >> 16), d[3] = ':';
  int p = (int)(rnd() % (uint32_t)N);
  recv_count[p * MAXMSG + k] = 1; /* a copy delivered back to the publisher would count in `multi` */
  if (lp2p_pubsub_publish(nodes[p].ps, TOPIC, d, sizeof d, NULL, 0, NULL) < 0) fprintf(stderr, "publish failed\n");
}

static void stats_sum(uint64_t *delivered, uint64_t *dups) {
  *delivered = *dups = 0;
  for (int i = 0; i < N; i++) {
    lp2p_pubsub_stats st;
    lp2p_pubsub_get_stats(nodes[i].ps, &st);
    *delivered += st.delivered, *dups += st.duplicates;
  }
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--nodes") && i + 1 < argc) N = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--extra") && i + 1 < argc) EXTRA = atoi(argv[++i]);
  }
  if (N < 3 || N > MAXN) N = 50;
  bench_init(argc, argv, "gossip");
  recv_count = calloc((size_t)MAXN * MAXMSG, sizeof *recv_count);
  uv_loop_init(&loop);
  lp2p_pubsub_config pc;
  lp2p_pubsub_config_default(&pc);
  for (int i = 0; i < N; i++) {
    bnode *b = &nodes[i];
    b->idx = i;
    uint8_t seed[32] = {(uint8_t)i, (uint8_t)(i >> 8), 0x9b};
    lp2p_privkey_from_ed25519_seed(&b->key, seed);
    lp2p_swarm_config cfg;
    lp2p_swarm_config_default(&cfg);
    cfg.identity = b->key;
    if (lp2p_swarm_new_uv(&b->sw, &cfg, &loop, NULL) || lp2p_swarm_listen(b->sw, "/ip4/127.0.0.1/tcp/0") ||
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
  run_for(0.5);
  int ready = run_until(meshes_ready, NULL, 10);
  run_for(1.0);
  printf("# %d nodes, %d links, meshes %s\n", N, links, ready ? "formed" : "NOT formed within 10 s");

  /* latency, one message at a time */
  int K = bench_quick() ? 30 : 200;
  uint64_t lat[MAXMSG];
  uint64_t d0, u0, d1, u1;
  stats_sum(&d0, &u0);
  int lost = 0;
  for (int k = 0; k < K; k++) {
    uint64_t t0 = bench_now_ns();
    publish(k);
    if (!run_until(msg_done, &k, 5)) lost++;
    lat[k] = (got[k] ? last_ns[k] : bench_now_ns()) - t0;
  }
  stats_sum(&d1, &u1);
  qsort(lat, (size_t)K, sizeof *lat, cmp_u64);
  report("latency to last subscriber p50 (1 KiB)", bench_seconds(lat[K / 2]), "s");
  report("latency to last subscriber p99 (1 KiB)", bench_seconds(lat[(K * 99) / 100]), "s");
  report("latency to last subscriber max (1 KiB)", bench_seconds(lat[K - 1]), "s");
  report("duplicates per delivered message", d1 > d0 ? (double)(u1 - u0) / (double)(d1 - d0) : 0, "dup/msg");

  /* throughput, back to back */
  int M = bench_quick() ? 300 : 2000;
  range r = {K, K + M};
  stats_sum(&d0, &u0);
  uint64_t t0 = bench_now_ns();
  for (int k = K; k < K + M; k++) {
    publish(k);
    if ((k & 31) == 31) uv_run(&loop, UV_RUN_NOWAIT); /* let the first ones flow */
  }
  int all = run_until(range_done, &r, 60);
  uint64_t t1 = 0;
  for (int k = K; k < K + M; k++)
    if (last_ns[k] > t1) t1 = last_ns[k];
  stats_sum(&d1, &u1);
  report("throughput 1 KiB messages (all delivered to 49)", bench_rate(M, t1 - t0), "msg/s");
  report("deliveries/s 1 KiB", bench_rate((double)M * (N - 1), t1 - t0), "deliv/s");
  report("duplicates per delivered message (burst)", d1 > d0 ? (double)(u1 - u0) / (double)(d1 - d0) : 0, "dup/msg");
  printf("# lost (latency phase): %d of %d; burst complete: %s; app-level duplicates: %llu\n", lost, K,
         all ? "yes" : "NO", (unsigned long long)multi);

  for (int i = 0; i < N; i++) lp2p_swarm_free(nodes[i].sw);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  for (int i = 0; i < N; i++) lp2p_privkey_free(nodes[i].key);
  free(recv_count);
  return bench_done();
}
