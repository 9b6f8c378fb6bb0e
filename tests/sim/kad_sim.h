/* tests/sim/kad_sim.h - a discrete-event simulator of N sans-IO Kademlia engines (header-only;
 * included by tests/unit/test_kad_sim.c and bench/bench_kad_sim.c).
 *
 * Every node is a kad_engine in server mode with a sha2-256 peer id and one address
 * /ip4/<random public ip>/tcp/4001. Messages travel through an event queue: each direction
 * takes a uniform random latency in [lat_min, lat_max] ms and is lost with probability `loss`
 * (a lost request or answer shows up as the engine's own 10 s request timeout). The real codec
 * is used on every message. Identify is modelled as: a requester learns its server serves kad
 * when the answer arrives, a server learns the same of its (server-mode) requester when the
 * request arrives; both call kad_on_peer_identified, so check-before-add runs for real.
 *
 * Scenario: nodes join one by one (each gets 3 random earlier nodes as bootstrap peers, then a
 * self lookup); after a settling time, `lookups` GET_CLOSEST_PEERS lookups of random keys start
 * at random times within 20 s from random honest nodes. A lookup succeeds if its result holds
 * the closest live node to the key (other than the node that asked). Options: a fraction of nodes leaves 5 s into the lookup
 * phase (they stop answering); a fraction is adversarial from the start and answers every
 * request with 20 junk peers (random ids and addresses: nobody there) or 20 far peers (random
 * live nodes). Everything is driven by one seeded PRNG: a run is reproducible. */
#ifndef LP2P_KAD_SIM_H
#define LP2P_KAD_SIM_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kad/engine/kad_engine.h"

typedef struct sim_cfg {
  unsigned n;
  uint64_t seed;
  double loss;
  double leave_frac;
  double adv_frac;
  int adv_far;          /* adversaries answer with far real peers instead of junk */
  unsigned lookups;
  unsigned lat_min, lat_max;
  unsigned alpha, beta, paths;
  unsigned join_gap_ms; /* 0 = 10 */
} sim_cfg;

typedef struct sim_report {
  unsigned lookups, success, finished;
  double hops_mean, req_mean, rtt_mean;
  unsigned hops_p99;
  double rtt_p99, rtt_p50;
  double table_mean;
  uint64_t messages;
  double wall_s;
  lp2p_tstamp sim_ms;
} sim_report;

enum { SEV_REQ = 1, SEV_RESP, SEV_TIMER, SEV_JOIN, SEV_BOOT, SEV_LOOKUP, SEV_KILL };

typedef struct sim_ev {
  uint64_t t, seq;
  uint32_t kind, to, from;
  uint64_t req;
  uint8_t *bytes;
  size_t len;
  int err;
  int expect;
} sim_ev;

typedef struct sim_node {
  kad_engine *e;
  lp2p_peer_id id;
  kad_id kid;
  uint32_t ip;
  lp2p_multiaddr *addr;
  uint8_t joined, dead, adv;
  lp2p_tstamp timer_at;
} sim_node;

typedef struct sim_lookup {
  uint64_t qid;
  uint32_t node;
  kad_id target;
  int done;
} sim_lookup;

typedef struct sim {
  sim_cfg c;
  uint64_t rng;
  sim_node *nodes;
  uint32_t *iptab; /* open addressing: ip -> node index + 1 */
  size_t ipcap;
  sim_ev *heap;
  size_t nheap, capheap;
  uint64_t seq, now;
  sim_lookup *lk;
  unsigned nlk;
  unsigned *hops;
  double *rtts;
  unsigned nres;
  double req_sum;
  uint64_t messages;
  int measuring;
} sim;

static uint64_t sim_rand(sim *s) { /* splitmix64 */
  uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static double sim_unit(sim *s) { return (double)(sim_rand(s) >> 11) / 9007199254740992.0; }

static void sim_rng_cb(void *user, uint8_t *buf, size_t len) {
  sim *s = user;
  while (len) {
    uint64_t v = sim_rand(s);
    size_t k = len < 8 ? len : 8;
    memcpy(buf, &v, k);
    buf += k;
    len -= k;
  }
}

static void sim_push(sim *s, sim_ev ev) {
  if (s->nheap == s->capheap) {
    s->capheap = s->capheap ? s->capheap * 2 : 1024;
    s->heap = realloc(s->heap, s->capheap * sizeof *s->heap);
  }
  ev.seq = s->seq++;
  size_t i = s->nheap++;
  while (i) {
    size_t p = (i - 1) / 2;
    if (s->heap[p].t < ev.t || (s->heap[p].t == ev.t && s->heap[p].seq < ev.seq)) break;
    s->heap[i] = s->heap[p];
    i = p;
  }
  s->heap[i] = ev;
}

static sim_ev sim_pop(sim *s) {
  sim_ev top = s->heap[0], last = s->heap[--s->nheap];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const sim_ev *best = &last;
    if (l < s->nheap && (s->heap[l].t < best->t || (s->heap[l].t == best->t && s->heap[l].seq < best->seq))) {
      m = l;
      best = &s->heap[l];
    }
    if (r < s->nheap && (s->heap[r].t < best->t || (s->heap[r].t == best->t && s->heap[r].seq < best->seq))) m = r;
    if (m == i) break;
    s->heap[i] = s->heap[m];
    i = m;
  }
  if (s->nheap) s->heap[i] = last;
  return top;
}

static uint64_t sim_lat(sim *s) {
  return s->c.lat_min + (sim_rand(s) % (s->c.lat_max - s->c.lat_min + 1));
}

static void sim_ip_add(sim *s, uint32_t ip, uint32_t idx) {
  size_t h = (ip * 2654435761u) & (s->ipcap - 1);
  while (s->iptab[h]) h = (h + 1) & (s->ipcap - 1);
  s->iptab[h] = idx + 1;
}

static int64_t sim_ip_find(sim *s, uint32_t ip) {
  size_t h = (ip * 2654435761u) & (s->ipcap - 1);
  while (s->iptab[h]) {
    if (s->nodes[s->iptab[h] - 1].ip == ip) return s->iptab[h] - 1;
    h = (h + 1) & (s->ipcap - 1);
  }
  return -1;
}

static uint32_t sim_public_ip(sim *s) {
  for (;;) {
    uint32_t ip = (uint32_t)sim_rand(s);
    uint8_t a = (uint8_t)(ip >> 24);
    if (a == 0 || a == 10 || a == 127 || a == 100 || a == 169 || a == 172 || a == 192 || a >= 224) continue;
    if (sim_ip_find(s, ip) >= 0) continue;
    return ip;
  }
}

static lp2p_multiaddr *sim_addr(uint32_t ip) {
  char t[64];
  snprintf(t, sizeof t, "/ip4/%u.%u.%u.%u/tcp/4001", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
  lp2p_multiaddr *m = NULL;
  lp2p_multiaddr_parse(&m, t, NULL, 0);
  return m;
}

static void sim_random_peer(sim *s, lp2p_peer_id *p) {
  uint8_t mh[34] = {0x12, 0x20};
  sim_rng_cb(s, mh + 2, 32);
  lp2p_peer_id_from_bytes(mh, sizeof mh, p);
}

/* Resolve an action's target: the node listening at its first address, if it is that peer. */
static int64_t sim_resolve(sim *s, const kad_action *a) {
  for (size_t i = 0; i < a->naddrs; i++) {
    uint32_t code;
    const uint8_t *v;
    size_t vl;
    if (lp2p_multiaddr_component(a->addrs[i], 0, &code, &v, &vl) || code != LP2P_MA_IP4 || vl != 4) continue;
    uint32_t ip = ((uint32_t)v[0] << 24) | ((uint32_t)v[1] << 16) | ((uint32_t)v[2] << 8) | v[3];
    int64_t j = sim_ip_find(s, ip);
    if (j >= 0 && lp2p_peer_id_equal(&s->nodes[j].id, &a->peer)) return j;
  }
  return -1;
}

static int sim_is_truth(sim *s, const kad_id *t, const lp2p_peer_id *p, uint32_t self) {
  int64_t best = -1;
  for (uint32_t i = 0; i < s->c.n; i++) {
    if (!s->nodes[i].joined || s->nodes[i].dead || i == self) continue;
    if (best < 0 || kad_cmp_distance(&s->nodes[i].kid, &s->nodes[best].kid, t) < 0) best = i;
  }
  return best >= 0 && lp2p_peer_id_equal(&s->nodes[best].id, p);
}

static void sim_pump(sim *s, uint32_t i) {
  sim_node *nd = &s->nodes[i];
  kad_action a;
  while (kad_next_action(nd->e, &a)) {
    s->messages++;
    int64_t j = sim_resolve(s, &a);
    if (j < 0 || sim_unit(s) < s->c.loss) continue; /* nobody there / lost: the engine times out */
    sim_ev ev = {.t = s->now + sim_lat(s), .kind = SEV_REQ, .to = (uint32_t)j, .from = i, .req = a.id,
                 .len = a.msg_len, .expect = a.expect_response};
    ev.bytes = malloc(a.msg_len ? a.msg_len : 1);
    memcpy(ev.bytes, a.msg, a.msg_len);
    sim_push(s, ev);
  }
  kad_result r;
  while (kad_next_result(nd->e, &r)) {
    for (unsigned k = 0; k < s->nlk; k++) {
      sim_lookup *l = &s->lk[k];
      if (l->done || l->node != i || l->qid != r.query_id) continue;
      l->done = 1;
      int ok = 0;
      for (size_t p = 0; p < r.npeers && !ok; p++) ok = sim_is_truth(s, &l->target, &r.peers[p].id, i);
      unsigned x = s->nres++;
      s->hops[x] = ok ? r.stats.hops : 0;
      s->rtts[x] = (double)r.stats.duration_ms / (double)(s->c.lat_min + s->c.lat_max);
      s->req_sum += r.stats.requests;
      if (ok) s->lk[k].done = 2;
      if (!ok && getenv("SIM_DEBUG")) {
        int64_t best = -1;
        for (uint32_t q = 0; q < s->c.n; q++) {
          if (!s->nodes[q].joined || s->nodes[q].dead || q == i) continue;
          if (best < 0 || kad_cmp_distance(&s->nodes[q].kid, &s->nodes[best].kid, &l->target) < 0) best = q;
        }
        unsigned known = 0;
        for (uint32_t q = 0; q < s->c.n; q++) known += kad_table_contains(s->nodes[q].e, &s->nodes[best].id);
        fprintf(stderr, "fail: node %u truth %lld known by %u tables (its table %zu) status %d npeers %zu req %u\n", i,
                (long long)best, known, kad_table_size(s->nodes[best].e), r.status, r.npeers, r.stats.requests);
      }
    }
  }
  lp2p_tstamp d = kad_next_deadline(nd->e);
  if (d != LP2P_TSTAMP_NEVER && (d < nd->timer_at || nd->timer_at <= s->now)) {
    nd->timer_at = d < s->now ? s->now : d;
    sim_ev ev = {.t = nd->timer_at, .kind = SEV_TIMER, .to = i};
    sim_push(s, ev);
  }
}

/* An adversary's answer: 20 junk or far peers. */
static void sim_adv_answer(sim *s, uint8_t **out, size_t *len) {
  kad_peer ps[KAD_K];
  lp2p_multiaddr *as[KAD_K];
  memset(ps, 0, sizeof ps);
  for (int k = 0; k < KAD_K; k++) {
    if (s->c.adv_far) {
      sim_node *x = &s->nodes[sim_rand(s) % s->c.n];
      ps[k].id = x->id;
      as[k] = lp2p_multiaddr_dup(x->addr);
    } else {
      sim_random_peer(s, &ps[k].id);
      as[k] = sim_addr(sim_public_ip(s));
    }
    ps[k].addrs = &as[k];
    ps[k].naddrs = 1;
  }
  kad_msg m;
  memset(&m, 0, sizeof m);
  m.type = KAD_FIND_NODE;
  m.closer = ps;
  m.ncloser = KAD_K;
  kad_msg_encode(NULL, &m, out, len);
  for (int k = 0; k < KAD_K; k++) lp2p_multiaddr_free(as[k]);
}

static void sim_identified(sim *s, uint32_t at, uint32_t who) {
  const lp2p_multiaddr *a = s->nodes[who].addr;
  kad_on_peer_identified(s->nodes[at].e, &s->nodes[who].id, &a, 1, 1, s->now);
}

static int sim_run(const sim_cfg *cfg, sim_report *rep) {
  sim S, *s = &S;
  memset(s, 0, sizeof S);
  memset(rep, 0, sizeof *rep);
  s->c = *cfg;
  if (!s->c.join_gap_ms) s->c.join_gap_ms = 10;
  if (s->c.lat_max < s->c.lat_min) s->c.lat_max = s->c.lat_min;
  s->rng = cfg->seed;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  s->nodes = calloc(s->c.n, sizeof *s->nodes);
  for (s->ipcap = 1024; s->ipcap < 4 * (size_t)s->c.n; s->ipcap *= 2) {
  }
  s->iptab = calloc(s->ipcap, sizeof *s->iptab);
  kad_config kc;
  memset(&kc, 0, sizeof kc);
  kc.struct_size = sizeof kc;
  kc.alpha = s->c.alpha;
  kc.beta = s->c.beta;
  kc.disjoint_paths = s->c.paths;
  kc.refresh_ms = UINT64_MAX;
  for (uint32_t i = 0; i < s->c.n; i++) {
    sim_node *nd = &s->nodes[i];
    sim_random_peer(s, &nd->id);
    kad_id_from_peer(&nd->id, &nd->kid);
    nd->ip = sim_public_ip(s);
    sim_ip_add(s, nd->ip, i);
    nd->addr = sim_addr(nd->ip);
    if (kad_engine_new(&nd->e, &kc, &nd->id, sim_rng_cb, s, NULL)) return -1;
    const lp2p_multiaddr *a = nd->addr;
    kad_set_local_addrs(nd->e, &a, 1);
    nd->adv = i > 0 && sim_unit(s) < s->c.adv_frac;
    sim_ev ev = {.t = (uint64_t)i * s->c.join_gap_ms, .kind = SEV_JOIN, .to = i};
    sim_push(s, ev);
  }
  uint64_t t_lookups = (uint64_t)s->c.n * s->c.join_gap_ms + 30000;
  s->lk = calloc(s->c.lookups ? s->c.lookups : 1, sizeof *s->lk);
  s->hops = calloc(s->c.lookups ? s->c.lookups : 1, sizeof *s->hops);
  s->rtts = calloc(s->c.lookups ? s->c.lookups : 1, sizeof *s->rtts);
  for (unsigned k = 0; k < s->c.lookups; k++) {
    sim_ev ev = {.t = t_lookups + sim_rand(s) % 20000, .kind = SEV_LOOKUP, .to = k};
    sim_push(s, ev);
  }
  if (s->c.leave_frac > 0) {
    sim_ev ev = {.t = t_lookups + 5000, .kind = SEV_KILL};
    sim_push(s, ev);
  }
  uint64_t t_end = t_lookups + 20000 + 120000;
  while (s->nheap) {
    sim_ev ev = sim_pop(s);
    if (ev.t > t_end) {
      free(ev.bytes);
      continue;
    }
    s->now = ev.t;
    sim_node *nd = ev.kind == SEV_LOOKUP || ev.kind == SEV_KILL ? NULL : &s->nodes[ev.to];
    switch (ev.kind) {
      case SEV_JOIN: {
        nd->joined = 1;
        for (int b = 0; b < 3 && ev.to > 0; b++) {
          uint32_t j = (uint32_t)(sim_rand(s) % ev.to);
          sim_identified(s, ev.to, j);
        }
        sim_ev bt = {.t = s->now + 1000, .kind = SEV_BOOT, .to = ev.to};
        sim_push(s, bt);
        sim_pump(s, ev.to);
        break;
      }
      case SEV_BOOT:
        kad_bootstrap(nd->e, s->now, NULL);
        sim_pump(s, ev.to);
        break;
      case SEV_TIMER:
        if (ev.t != nd->timer_at) break;
        kad_tick(nd->e, s->now);
        sim_pump(s, ev.to);
        break;
      case SEV_KILL: {
        unsigned kill = (unsigned)(s->c.leave_frac * s->c.n);
        for (unsigned k = 0; k < kill;) {
          uint32_t j = (uint32_t)(sim_rand(s) % s->c.n);
          if (s->nodes[j].dead) continue;
          s->nodes[j].dead = 1;
          k++;
        }
        break;
      }
      case SEV_LOOKUP: {
        uint32_t i;
        do i = (uint32_t)(sim_rand(s) % s->c.n);
        while (s->nodes[i].dead || s->nodes[i].adv);
        uint8_t key[32];
        sim_rng_cb(s, key, 32);
        sim_lookup *l = &s->lk[s->nlk];
        memset(l, 0, sizeof *l);
        l->node = i;
        kad_id_from_key(key, 32, &l->target);
        kad_query_opts o;
        memset(&o, 0, sizeof o);
        o.struct_size = sizeof o;
        o.beta = s->c.beta ? s->c.beta : KAD_BETA;
        if (kad_query_start(s->nodes[i].e, KAD_Q_GET_CLOSEST_PEERS, key, 32, &o, s->now, &l->qid) == 0) s->nlk++;
        sim_pump(s, i);
        break;
      }
      case SEV_REQ: {
        if (nd->dead) break; /* gone: the requester times out */
        uint8_t *resp = NULL;
        size_t rl = 0;
        int rv;
        if (nd->adv) {
          sim_adv_answer(s, &resp, &rl);
          rv = 0;
        } else {
          rv = kad_on_inbound_request(nd->e, &s->nodes[ev.from].id, 0, ev.bytes, ev.len, s->now, &resp, &rl);
          sim_identified(s, ev.to, ev.from);
        }
        s->messages++;
        if (sim_unit(s) >= s->c.loss) {
          sim_ev r = {.t = s->now + sim_lat(s), .kind = SEV_RESP, .to = ev.from, .from = ev.to, .req = ev.req,
                      .err = rv ? LP2P_ERR_RESET : 0};
          if (!rv && ev.expect) {
            r.bytes = malloc(rl ? rl : 1);
            if (rl) memcpy(r.bytes, resp, rl);
            r.len = rl;
          }
          sim_push(s, r);
        }
        kad_bytes_free(nd->adv ? NULL : nd->e, resp);
        if (!nd->adv) sim_pump(s, ev.to);
        break;
      }
      case SEV_RESP:
        if (nd->dead) break;
        kad_on_response(nd->e, ev.req, ev.bytes, ev.len, ev.err, s->now);
        if (!ev.err) sim_identified(s, ev.to, ev.from);
        sim_pump(s, ev.to);
        break;
    }
    free(ev.bytes);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  rep->lookups = s->nlk;
  rep->finished = s->nres;
  double hs = 0, rs = 0;
  unsigned ok = 0;
  for (unsigned k = 0; k < s->nlk; k++) ok += s->lk[k].done == 2;
  rep->success = ok;
  /* hops and rtts over successful lookups (hops 0 marks failures) */
  unsigned nh = 0;
  for (unsigned k = 0; k < s->nres; k++)
    if (s->hops[k]) {
      hs += s->hops[k];
      rs += s->rtts[k];
      s->hops[nh] = s->hops[k];
      s->rtts[nh] = s->rtts[k];
      nh++;
    }
  rep->hops_mean = nh ? hs / nh : 0;
  rep->rtt_mean = nh ? rs / nh : 0;
  rep->req_mean = s->nres ? s->req_sum / s->nres : 0;
  /* p99 by sorting (small arrays) */
  for (unsigned a = 1; a < nh; a++)
    for (unsigned b = a; b > 0 && s->hops[b - 1] > s->hops[b]; b--) {
      unsigned t = s->hops[b];
      s->hops[b] = s->hops[b - 1];
      s->hops[b - 1] = t;
    }
  for (unsigned a = 1; a < nh; a++)
    for (unsigned b = a; b > 0 && s->rtts[b - 1] > s->rtts[b]; b--) {
      double t = s->rtts[b];
      s->rtts[b] = s->rtts[b - 1];
      s->rtts[b - 1] = t;
    }
  if (nh) {
    rep->hops_p99 = s->hops[(nh * 99) / 100 < nh ? (nh * 99) / 100 : nh - 1];
    rep->rtt_p99 = s->rtts[(nh * 99) / 100 < nh ? (nh * 99) / 100 : nh - 1];
    rep->rtt_p50 = s->rtts[nh / 2];
  }
  double ts = 0;
  unsigned live = 0;
  for (uint32_t i = 0; i < s->c.n; i++)
    if (!s->nodes[i].dead && !s->nodes[i].adv) {
      ts += (double)kad_table_size(s->nodes[i].e);
      live++;
    }
  rep->table_mean = live ? ts / live : 0;
  rep->messages = s->messages;
  rep->sim_ms = s->now;
  rep->wall_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  for (uint32_t i = 0; i < s->c.n; i++) {
    kad_engine_free(s->nodes[i].e);
    lp2p_multiaddr_free(s->nodes[i].addr);
  }
  while (s->nheap) free(sim_pop(s).bytes);
  free(s->heap);
  free(s->nodes);
  free(s->iptab);
  free(s->lk);
  free(s->hops);
  free(s->rtts);
  return 0;
}

#endif
