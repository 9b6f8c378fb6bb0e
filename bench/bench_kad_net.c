/* bench/bench_kad_net.c - the Kademlia behaviour (lp2p/kad.h) in a 50-swarm network on loopback TCP
 * in one process: lookup latency (find_peer, get_closest_peers, get_value) and requests per lookup,
 * one lookup at a time from random nodes; then the engine's memory per routing-table entry and per
 * stored record, measured with a counting allocator. Prints figures, asserts nothing about time.
 *
 *   B/bench/bench_kad_net [--quick] [--json FILE]      (--quick: 20 nodes, fewer lookups) */
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "kad/engine/kad_engine.h"
#include "lp2p/encoding.h"
#include "lp2p/identify.h"
#include "lp2p/kad.h"
#include "lp2p/uv.h"

typedef struct bnode {
  lp2p_swarm *sw;
  lp2p_privkey *key;
  lp2p_peer_id id;
  lp2p_kad *kad;
  char addr[300];
} bnode;

static uv_loop_t loop;
static int v_ok(void *ud, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
  (void)ud, (void)k, (void)kl, (void)v, (void)vl;
  return 0;
}

static int node_new(bnode *n, uint8_t seed) {
  uint8_t s[32];
  memset(s, seed, sizeof s);
  s[0] = 0xb5;
  if (lp2p_privkey_from_ed25519_seed(&n->key, s) < 0) return -1;
  lp2p_peer_id_from_pubkey(lp2p_privkey_public(n->key), &n->id);
  lp2p_swarm_config c;
  lp2p_swarm_config_default(&c);
  c.identity = n->key;
  c.idle_timeout_ms = 0;
  if (lp2p_swarm_new_uv(&n->sw, &c, &loop, NULL) < 0) return -1;
  if (lp2p_swarm_listen(n->sw, "/ip4/127.0.0.1/tcp/0") < 0) return -1;
  if (lp2p_identify_add(n->sw, NULL, NULL) < 0) return -1;
  lp2p_kad_config kc;
  lp2p_kad_config_default(&kc);
  static const lp2p_kad_validator vv = {"v", v_ok, NULL, NULL};
  kc.validators = &vv;
  kc.n_validators = 1;
  if (lp2p_kad_add(n->sw, &kc, &n->kad) < 0) return -1;
  const lp2p_multiaddr *ma;
  lp2p_swarm_listen_addrs(n->sw, &ma, 1);
  char pid[LP2P_PEER_ID_MAX_TEXT];
  lp2p_multiaddr_to_string(ma, n->addr, sizeof n->addr);
  lp2p_peer_id_to_string(&n->id, pid, sizeof pid);
  size_t l = strlen(n->addr);
  snprintf(n->addr + l, sizeof n->addr - l, "/p2p/%s", pid);
  return 0;
}

typedef struct res {
  int done, err;
  lp2p_kad_stats st;
  uint64_t t_end;
} res;
static void on_res(lp2p_kad *k, const lp2p_kad_result *r, void *ud) {
  res *x = ud;
  (void)k;
  x->done++;
  x->err = r->err;
  x->st = r->stats;
  x->t_end = bench_now_ns();
}

static int run_until(int *flag, int want, uint64_t ms) {
  uint64_t end = bench_now_ns() + ms * 1000000ull;
  while (*flag < want && bench_now_ns() < end) uv_run(&loop, UV_RUN_ONCE);
  return *flag >= want;
}

static uint64_t rnd_state = 0x1234567;
static unsigned rnd(unsigned n) {
  rnd_state ^= rnd_state << 13;
  rnd_state ^= rnd_state >> 7;
  rnd_state ^= rnd_state << 17;
  return (unsigned)(rnd_state % n);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* kind 0 find_peer, 1 get_closest_peers, 2 get_value */
static void lookups(bnode *n, int nn, int kind, int count, const char *label, uint8_t (*keys)[64], size_t *kls,
                    int nkeys) {
  uint64_t *lat = calloc((size_t)count, sizeof *lat);
  double req = 0, hops = 0, contacted = 0;
  int ok = 0;
  for (int i = 0; i < count; i++) {
    int q = (int)rnd((unsigned)nn), t = (int)rnd((unsigned)nn);
    if (t == q) t = (t + 1) % nn;
    res r = {0};
    uint64_t t0 = bench_now_ns();
    if (kind == 0) {
      lp2p_kad_find_peer(n[q].kad, &n[t].id, on_res, &r, NULL);
    } else if (kind == 1) {
      uint8_t key[16];
      for (size_t j = 0; j < sizeof key; j++) key[j] = (uint8_t)rnd(256);
      lp2p_kad_get_closest_peers(n[q].kad, key, sizeof key, on_res, &r, NULL);
    } else {
      int k = (int)rnd((unsigned)nkeys);
      lp2p_kad_get_value(n[q].kad, keys[k], kls[k], 1, on_res, &r, NULL);
    }
    run_until(&r.done, 1, 30000);
    lat[i] = r.t_end - t0;
    ok += r.err == 0;
    req += r.st.requests;
    hops += r.st.hops;
    contacted += r.st.peers_contacted;
  }
  qsort(lat, (size_t)count, sizeof *lat, cmp_u64);
  double mean = 0;
  for (int i = 0; i < count; i++) mean += (double)lat[i];
  mean /= count;
  char name[128];
  snprintf(name, sizeof name, "%s: latency mean", label);
  report(name, mean / 1e9, "s");
  snprintf(name, sizeof name, "%s: latency p50", label);
  report(name, (double)lat[count / 2] / 1e9, "s");
  snprintf(name, sizeof name, "%s: latency p99", label);
  report(name, (double)lat[(count * 99) / 100 < count ? (count * 99) / 100 : count - 1] / 1e9, "s");
  snprintf(name, sizeof name, "%s: requests per lookup", label);
  report(name, req / count, "req");
  snprintf(name, sizeof name, "%s: peers contacted per lookup", label);
  report(name, contacted / count, "peers");
  snprintf(name, sizeof name, "%s: hops mean", label);
  report(name, hops / count, "hops");
  snprintf(name, sizeof name, "%s: success", label);
  report(name, 100.0 * ok / count, "%");
  free(lat);
}

/* ---- memory: a counting allocator around libc ---- */
static size_t live_bytes;
typedef struct hdr {
  size_t n;
  size_t pad;
} hdr;
static void *c_malloc(size_t n, void *u) {
  (void)u;
  hdr *h = malloc(sizeof *h + n);
  if (!h) return NULL;
  h->n = n;
  live_bytes += n;
  return h + 1;
}
static void c_free(void *p, void *u) {
  (void)u;
  if (!p) return;
  hdr *h = (hdr *)p - 1;
  live_bytes -= h->n;
  free(h);
}
static void *c_realloc(void *p, size_t n, void *u) {
  if (!p) return c_malloc(n, u);
  hdr *h = (hdr *)p - 1;
  size_t old = h->n;
  hdr *nh = realloc(h, sizeof *nh + n);
  if (!nh) return NULL;
  live_bytes = live_bytes - old + n;
  nh->n = n;
  return nh + 1;
}
static void rng_fn(void *u, uint8_t *b, size_t n) {
  (void)u;
  for (size_t i = 0; i < n; i++) b[i] = (uint8_t)rnd(256);
}

static void memory(void) {
  lp2p_mem mem = {c_malloc, c_realloc, c_free, NULL};
  lp2p_peer_id self;
  uint8_t mh[34] = {0x12, 0x20};
  rng_fn(NULL, mh + 2, 32);
  lp2p_peer_id_from_bytes(mh, 34, &self);
  kad_validator vv = {"v", v_ok, NULL, NULL};
  kad_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.struct_size = sizeof cfg;
  cfg.validators = &vv;
  cfg.nvalidators = 1;
  cfg.refresh_ms = UINT64_MAX;
  cfg.max_records = 100000;
  cfg.max_record_bytes = 1u << 30;
  kad_engine *e = NULL;
  if (kad_engine_new(&e, &cfg, &self, rng_fn, NULL, &mem) < 0) return;
  /* routing table: candidates with one public /ip4/tcp address each, checked and admitted */
  size_t before = live_bytes;
  lp2p_tstamp now = 1000;
  uint8_t *ok_msg = NULL;
  size_t ok_len = 0;
  kad_msg m;
  memset(&m, 0, sizeof m);
  m.type = KAD_FIND_NODE;
  kad_msg_encode(NULL, &m, &ok_msg, &ok_len);
  for (int i = 0; i < 2000; i++) {
    lp2p_peer_id p;
    rng_fn(NULL, mh + 2, 32);
    lp2p_peer_id_from_bytes(mh, 34, &p);
    char t[64];
    snprintf(t, sizeof t, "/ip4/%u.%u.%u.%u/tcp/4001", 11 + rnd(200), rnd(256), rnd(256), 1 + rnd(250));
    lp2p_multiaddr *a = NULL;
    lp2p_multiaddr_parse(&a, t, NULL, 0);
    const lp2p_multiaddr *one = a;
    kad_on_peer_identified(e, &p, &one, 1, 1, now);
    lp2p_multiaddr_free(a);
    kad_action act;
    while (kad_next_action(e, &act)) kad_on_response(e, act.id, ok_msg, ok_len, 0, now);
    now++;
  }
  size_t members = kad_table_size(e), repl = 0;
  for (int i = 0; i < KAD_BUCKETS; i++) repl += kad_replacements(e, i);
  char name[96];
  report("routing table members (of 2000 candidates)", (double)members, "peers");
  report("memory per routing-table entry (members + replacements, incl. 1 address)",
         (double)(live_bytes - before) / (double)(members + repl), "B");
  /* records: 1000 records, 40-byte keys, 100-byte values */
  before = live_bytes;
  uint8_t val[100];
  memset(val, 'x', sizeof val);
  int stored = 0;
  for (int i = 0; i < 1000; i++) {
    char k[41];
    snprintf(k, sizeof k, "/v/record-%030d", i);
    stored += kad_record_put(e, (const uint8_t *)k, 40, val, sizeof val, now) == 0;
  }
  snprintf(name, sizeof name, "memory per stored record (40 B key + 100 B value, %d records)", stored);
  report(name, (double)(live_bytes - before) / stored, "B");
  report("  of which bookkeeping beyond key + value", (double)(live_bytes - before) / stored - 140, "B");
  free(ok_msg);
  kad_engine_free(e);
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "kad_net");
  int nn = bench_quick() ? 20 : 50, count = bench_quick() ? 20 : 100;
  uv_loop_init(&loop);
  bnode *n = calloc((size_t)nn, sizeof *n);
  for (int i = 0; i < nn; i++)
    if (node_new(&n[i], (uint8_t)(i + 1)) < 0) {
      fprintf(stderr, "bench_kad_net: node setup failed\n");
      return 1;
    }
  for (int i = 1; i < nn; i++) {
    lp2p_kad_add_bootstrap(n[i].kad, n[(i * 7) % i].addr);
    if (i > 2) lp2p_kad_add_bootstrap(n[i].kad, n[i - 1].addr);
  }
  int booted = 0;
  res *b = calloc((size_t)nn, sizeof *b);
  uint64_t t0 = bench_now_ns();
  for (int i = 1; i < nn; i++) lp2p_kad_bootstrap(n[i].kad, on_res, &b[i], NULL);
  for (;;) {
    booted = 0;
    for (int i = 1; i < nn; i++) booted += b[i].done;
    if (booted == nn - 1 || bench_now_ns() - t0 > 60000000000ull) break;
    uv_run(&loop, UV_RUN_ONCE);
  }
  char name[96];
  snprintf(name, sizeof name, "bootstrap of %d nodes (all at once)", nn);
  report(name, bench_seconds(bench_now_ns() - t0), "s");
  double tsum = 0;
  for (int i = 0; i < nn; i++) tsum += (double)lp2p_kad_routing_table(n[i].kad, NULL, 0);
  report("routing table size mean", tsum / nn, "peers");
  /* records to read back */
  int nk = 20;
  uint8_t(*keys)[64] = calloc((size_t)nk, 64);
  size_t *kls = calloc((size_t)nk, sizeof *kls);
  int puts = 0;
  res *pr = calloc((size_t)nk, sizeof *pr);
  for (int i = 0; i < nk; i++) {
    kls[i] = (size_t)snprintf((char *)keys[i], 64, "/v/bench-%d", i);
    lp2p_kad_put_value(n[i % nn].kad, keys[i], kls[i], (const uint8_t *)"value", 5, on_res, &pr[i], NULL);
  }
  for (;;) {
    puts = 0;
    for (int i = 0; i < nk; i++) puts += pr[i].done;
    if (puts == nk) break;
    uv_run(&loop, UV_RUN_ONCE);
  }
  lookups(n, nn, 0, count, "find_peer", keys, kls, nk);
  lookups(n, nn, 1, count, "get_closest_peers", keys, kls, nk);
  lookups(n, nn, 2, count, "get_value (quorum 1)", keys, kls, nk);
  uint64_t served = 0;
  for (int i = 0; i < nn; i++) served += lp2p_kad_served(n[i].kad);
  report("requests served (whole run, all nodes)", (double)served, "req");
  for (int i = 0; i < nn; i++) lp2p_swarm_free(n[i].sw);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  for (int i = 0; i < nn; i++) lp2p_privkey_free(n[i].key);
  free(n);
  free(b);
  free(pr);
  free(keys);
  free(kls);
  memory();
  return bench_done();
}
