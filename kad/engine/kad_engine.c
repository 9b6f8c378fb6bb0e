/* kad/engine/kad_engine.c - routing table, requests, query state machines, server side. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "kad/engine/kad_int.h"

#define QP_CAP 256                    /* peers a query keeps (closest first) */
#define CHECK_RECENT_MS 60000         /* a table member seen this recently is not pinged */
#define ANSWERED_VALID_MS 600000      /* an answer counts for admission this long */
#define GC_EVERY_MS 3600000
#define LOW_BOOTSTRAP_MS 60000
#define REFRESH_MAX_CPL 15            /* deeper buckets: covered by the self lookup */

enum { R_QUERY = 1, R_CHECK, R_PING, R_PHASE2, R_FIRE };
enum { QP_HEARD = 0, QP_WAITING, QP_ANSWERED, QP_FAILED };

struct kad_req {
  uint64_t id;
  int purpose;
  lp2p_peer_id peer;
  kad_id kid;
  lp2p_multiaddr **addrs;
  size_t naddrs;
  uint8_t *msg;
  size_t msg_len;
  int expect_response;
  lp2p_tstamp deadline;
  kad_query *q;
  int bucket;
  uint8_t path;
  uint8_t in_flight, queued, is_cur;
  uint8_t admit;            /* the peer was identified while this request ran: its answer is the check */
  lp2p_multiaddr **admit_addrs; /* the identified addresses (admit) */
  size_t admit_naddrs;
};

typedef struct qpeer {
  lp2p_peer_id id;
  kad_id kid;
  lp2p_multiaddr **addrs;
  uint8_t naddrs;
  uint8_t state;
  uint8_t hop;
  uint8_t retried;
  uint8_t path;                       /* disjoint path that heard of it first */
  int16_t vidx;                       /* GET_VALUE: index of the value it returned, -1 none */
} qpeer;

struct kad_query {
  uint64_t id;
  int kind, internal, phase, finished, status;
  uint8_t *key;
  size_t klen;
  kad_id target;
  lp2p_peer_id target_peer;           /* FIND_NODE */
  int target_is_peer;
  uint8_t *value;
  size_t vlen;
  unsigned quorum, max_prov, beta;
  uint8_t *lookup_msg;
  size_t lookup_len;
  qpeer *p;
  size_t n;
  unsigned inflight, pending2, stored;
  unsigned npaths, path_alpha;
  unsigned path_inflight[KAD_ALPHA_MAX];
  lp2p_tstamp start, deadline;
  kad_query_stats st;
  /* GET_VALUE */
  uint8_t **vals;
  size_t *vlens;
  size_t nvals;
  unsigned nrecs;          /* GET_VALUE: valid records received (ours and each answer's), for the quorum */
  int best;
  /* GET_PROVIDERS / FIND_NODE found */
  kad_peer *provs;
  size_t nprovs;
  /* result view */
  kad_peer *res;
  size_t nres;
  kad_query *next;
};

/* ============================================================================================ */
/* helpers                                                                                      */
static int addrs_dup(kad_engine *e, const lp2p_multiaddr *const *in, size_t n, size_t cap, lp2p_multiaddr ***out,
                     size_t *nout) {
  *out = NULL;
  *nout = 0;
  if (n > cap) n = cap;
  if (!n) return 0;
  lp2p_multiaddr **a = lp2p__calloc(e->mem, n, sizeof *a);
  if (!a) return LP2P_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) {
    if (!(a[i] = lp2p_multiaddr_dup(in[i]))) {
      for (size_t j = 0; j < i; j++) lp2p_multiaddr_free(a[j]);
      lp2p__free(e->mem, a);
      return LP2P_ERR_NOMEM;
    }
  }
  *out = a;
  *nout = n;
  return 0;
}

static void addrs_free(kad_engine *e, lp2p_multiaddr **a, size_t n) {
  for (size_t i = 0; i < n; i++) lp2p_multiaddr_free(a[i]);
  lp2p__free(e->mem, a);
}

static int is_public_v4(const uint8_t *a) {
  if (a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224) return 0;
  if (a[0] == 169 && a[1] == 254) return 0;
  if (a[0] == 172 && (a[1] & 0xf0) == 16) return 0;
  if (a[0] == 192 && a[1] == 168) return 0;
  if (a[0] == 100 && (a[1] & 0xc0) == 64) return 0;
  return 1;
}

static int is_public_v6(const uint8_t *a) {
  static const uint8_t lo[16] = {[15] = 1}, zero[16] = {0};
  if (!memcmp(a, lo, 16) || !memcmp(a, zero, 16)) return 0;
  if ((a[0] & 0xfe) == 0xfc) return 0;              /* fc00::/7 */
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return 0; /* fe80::/10 */
  return 1;
}

/* The IP group of the first ip4/ip6 address: /24 or /48. 0 = none or exempt. */
static uint64_t ip_group(const kad_engine *e, lp2p_multiaddr *const *a, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint32_t code;
    const uint8_t *v;
    size_t vl;
    if (lp2p_multiaddr_component(a[i], 0, &code, &v, &vl) != 0) continue;
    if (code == LP2P_MA_IP4 && vl == 4) {
      if (!e->cfg.ip_diversity_all && !is_public_v4(v)) return 0;
      return (4ull << 56) | ((uint64_t)v[0] << 16) | ((uint64_t)v[1] << 8) | v[2];
    }
    if (code == LP2P_MA_IP6 && vl == 16) {
      if (!e->cfg.ip_diversity_all && !is_public_v6(v)) return 0;
      uint64_t g = 6ull << 56;
      for (int j = 0; j < 6; j++) g |= (uint64_t)v[j] << (8 * (5 - j));
      return g;
    }
  }
  return 0;
}

/* ============================================================================================ */
/* routing table                                                                                */
static void entry_free(kad_engine *e, kad_entry *x) {
  if (!x) return;
  addrs_free(e, x->addrs, x->naddrs);
  lp2p__free(e->mem, x);
}

static kad_entry *table_find(const kad_engine *e, const lp2p_peer_id *id, const kad_id *kid, int *bi, int *pos) {
  int c = kad_cpl(&e->self_kid, kid);
  if (c >= KAD_BUCKETS) return NULL;
  kad_bucket *b = e->buckets[c];
  if (!b) return NULL;
  for (size_t i = 0; i < b->n; i++)
    if (lp2p_peer_id_equal(&b->e[i]->id, id)) {
      if (bi) *bi = c;
      if (pos) *pos = (int)i;
      return b->e[i];
    }
  return NULL;
}

static void set_entry_addrs(kad_engine *e, kad_entry *x, lp2p_multiaddr *const *a, size_t n) {
  if (!n) return;
  lp2p_multiaddr **na;
  size_t nn;
  if (addrs_dup(e, (const lp2p_multiaddr *const *)a, n, KAD_ANSWER_ADDRS, &na, &nn) != 0) return;
  addrs_free(e, x->addrs, x->naddrs);
  x->addrs = na;
  x->naddrs = (uint8_t)nn;
  x->group = ip_group(e, x->addrs, x->naddrs);
}

static void bucket_move_tail(kad_bucket *b, size_t pos) {
  kad_entry *x = b->e[pos];
  memmove(&b->e[pos], &b->e[pos + 1], (b->n - pos - 1) * sizeof b->e[0]);
  b->e[b->n - 1] = x;
}

static int send_check(kad_engine *e, const lp2p_peer_id *peer, lp2p_multiaddr *const *addrs, size_t naddrs,
                      int purpose, int bucket, lp2p_tstamp now);

/* Removes b->e[pos]; promotes the newest replacement. */
static void bucket_evict(kad_engine *e, int bi, size_t pos) {
  kad_bucket *b = e->buckets[bi];
  entry_free(e, b->e[pos]);
  memmove(&b->e[pos], &b->e[pos + 1], (b->n - pos - 1) * sizeof b->e[0]);
  b->n--;
  e->table_size--;
  if (b->nrepl) {
    b->e[b->n++] = b->repl[--b->nrepl];
    e->table_size++;
  }
}

static int diversity_ok(const kad_engine *e, int bi, uint64_t g) {
  if (!g) return 1;
  unsigned in_bucket = 0, in_table = 0;
  for (int i = 0; i < KAD_BUCKETS; i++) {
    const kad_bucket *b = e->buckets[i];
    if (!b) continue;
    for (size_t j = 0; j < b->n; j++)
      if (b->e[j]->group == g) {
        in_table++;
        if (i == bi) in_bucket++;
      }
  }
  return in_bucket < e->cfg.max_per_ip_group_bucket && in_table < e->cfg.max_per_ip_group_table;
}

/* A checked peer (identified as kad server AND answered): into the table or the replacement cache. */
static void table_admit(kad_engine *e, const lp2p_peer_id *id, lp2p_multiaddr *const *addrs, size_t naddrs,
                        lp2p_tstamp now) {
  kad_id kid;
  kad_id_from_peer(id, &kid);
  int bi = kad_cpl(&e->self_kid, &kid);
  if (bi >= KAD_BUCKETS) return;
  kad_bucket *b = e->buckets[bi];
  if (!b) {
    if (!(b = lp2p__calloc(e->mem, 1, sizeof *b))) return;
    b->last_refresh = now;
    e->buckets[bi] = b;
  }
  for (size_t i = 0; i < b->n; i++)
    if (lp2p_peer_id_equal(&b->e[i]->id, id)) {
      b->e[i]->last_seen = now;
      b->e[i]->fails = 0;
      set_entry_addrs(e, b->e[i], addrs, naddrs);
      bucket_move_tail(b, i);
      return;
    }
  kad_entry *x = lp2p__calloc(e->mem, 1, sizeof *x);
  if (!x) return;
  x->id = *id;
  x->kid = kid;
  x->last_seen = now;
  set_entry_addrs(e, x, addrs, naddrs);
  if (!diversity_ok(e, bi, x->group)) {
    entry_free(e, x);
    return;
  }
  if (b->n < KAD_K) {
    b->e[b->n++] = x;
    e->table_size++;
    return;
  }
  /* full bucket: replacement cache (newest last), and check the least recently seen member */
  for (size_t i = 0; i < b->nrepl; i++)
    if (lp2p_peer_id_equal(&b->repl[i]->id, id)) {
      entry_free(e, b->repl[i]);
      memmove(&b->repl[i], &b->repl[i + 1], (b->nrepl - i - 1) * sizeof b->repl[0]);
      b->nrepl--;
      break;
    }
  if (b->nrepl == KAD_REPLACEMENTS) {
    entry_free(e, b->repl[0]);
    memmove(&b->repl[0], &b->repl[1], (KAD_REPLACEMENTS - 1) * sizeof b->repl[0]);
    b->nrepl--;
  }
  b->repl[b->nrepl++] = x;
  if (!b->ping_req && now >= b->e[0]->last_seen + CHECK_RECENT_MS)
    send_check(e, &b->e[0]->id, b->e[0]->addrs, b->e[0]->naddrs, R_PING, bi, now);
}

static void table_remove(kad_engine *e, const lp2p_peer_id *id) {
  kad_id kid;
  kad_id_from_peer(id, &kid);
  int bi, pos;
  if (table_find(e, id, &kid, &bi, &pos)) bucket_evict(e, bi, (size_t)pos);
}

/* A request to a table member failed. */
static void table_failed(kad_engine *e, const lp2p_peer_id *id, const kad_id *kid) {
  int bi, pos;
  kad_entry *x = table_find(e, id, kid, &bi, &pos);
  if (!x) return;
  x->fails++;
  if (e->buckets[bi]->nrepl || x->fails >= 3) bucket_evict(e, bi, (size_t)pos);
}

static void table_touch(kad_engine *e, const lp2p_peer_id *id, const kad_id *kid, lp2p_tstamp now) {
  int bi, pos;
  kad_entry *x = table_find(e, id, kid, &bi, &pos);
  if (!x) return;
  x->last_seen = now;
  x->fails = 0;
  bucket_move_tail(e->buckets[bi], (size_t)pos);
}

/* The up-to-k table members closest to t, closest first (excluding `skip`, and, when need_addrs,
 * those without addresses). Returns how many. */
static void closest_add_bucket(const kad_bucket *b, const kad_id *t, const lp2p_peer_id *skip, int need_addrs,
                               kad_entry **out, size_t k, size_t *n) {
  if (!b) return;
  for (size_t j = 0; j < b->n; j++) {
    kad_entry *x = b->e[j];
    if (need_addrs && !x->naddrs) continue;
    if (skip && lp2p_peer_id_equal(&x->id, skip)) continue;
    if (*n == k && kad_cmp_distance(&x->kid, &out[k - 1]->kid, t) >= 0) continue;
    size_t p = *n < k ? *n : k - 1;
    while (p > 0 && kad_cmp_distance(&x->kid, &out[p - 1]->kid, t) < 0) {
      out[p] = out[p - 1];
      p--;
    }
    out[p] = x;
    if (*n < k) (*n)++;
  }
}

/* The up-to-k table members closest to t, closest first (excluding `skip`, and, when need_addrs,
 * those without addresses). Returns how many. Buckets are visited in distance order: with
 * c = cpl(self, t), bucket c holds the closest peers; buckets above c all come next (their
 * distance to t has bit c set and nothing above); then c-1, c-2, ..., each strictly farther
 * than the one before: once k are collected after a group, no later group can do better. */
static size_t table_closest(const kad_engine *e, const kad_id *t, const lp2p_peer_id *skip, int need_addrs,
                            kad_entry **out, size_t k) {
  size_t n = 0;
  int c = kad_cpl(&e->self_kid, t);
  if (c < KAD_BUCKETS) {
    closest_add_bucket(e->buckets[c], t, skip, need_addrs, out, k, &n);
    if (n == k) return n;
    for (int i = c + 1; i < KAD_BUCKETS; i++) closest_add_bucket(e->buckets[i], t, skip, need_addrs, out, k, &n);
  }
  for (int i = (c < KAD_BUCKETS ? c : KAD_BUCKETS) - 1; i >= 0 && n < k; i--)
    closest_add_bucket(e->buckets[i], t, skip, need_addrs, out, k, &n);
  return n;
}

static void answered_note(kad_engine *e, const lp2p_peer_id *id, lp2p_tstamp now) {
  for (size_t i = 0; i < KAD_ANSWERED_RING; i++)
    if (lp2p_peer_id_equal(&e->answered[i].id, id)) {
      e->answered[i].at = now;
      return;
    }
  e->answered[e->answered_pos].id = *id;
  e->answered[e->answered_pos].at = now;
  e->answered_pos = (e->answered_pos + 1) % KAD_ANSWERED_RING;
}

static int answered_recently(const kad_engine *e, const lp2p_peer_id *id, lp2p_tstamp now) {
  for (size_t i = 0; i < KAD_ANSWERED_RING; i++)
    if (e->answered[i].id.len && lp2p_peer_id_equal(&e->answered[i].id, id))
      return now < e->answered[i].at + ANSWERED_VALID_MS;
  return 0;
}

/* ============================================================================================ */
/* requests and the action queue                                                                */
static void req_maybe_free(kad_engine *e, kad_req *r) {
  if (r->in_flight || r->queued || r->is_cur) return;
  addrs_free(e, r->addrs, r->naddrs);
  addrs_free(e, r->admit_addrs, r->admit_naddrs);
  lp2p__free(e->mem, r->msg);
  lp2p__free(e->mem, r);
}

/* Takes ownership of msg. addrs are copied. */
static kad_req *req_new(kad_engine *e, int purpose, const lp2p_peer_id *peer, lp2p_multiaddr *const *addrs,
                        size_t naddrs, uint8_t *msg, size_t msg_len, int expect, lp2p_tstamp now) {
  kad_req *r = lp2p__calloc(e->mem, 1, sizeof *r);
  if (!r) goto nomem;
  if (addrs_dup(e, (const lp2p_multiaddr *const *)addrs, naddrs, KAD_MAX_ADDRS_PER_PEER, &r->addrs, &r->naddrs))
    goto nomem;
  if (e->nreqs == e->capreqs) {
    size_t nc = e->capreqs ? e->capreqs * 2 : 16;
    kad_req **n = lp2p__realloc(e->mem, e->reqs, nc * sizeof *n);
    if (!n) goto nomem;
    e->reqs = n;
    e->capreqs = nc;
  }
  if (e->nact == e->capact) {
    size_t nc = e->capact ? e->capact * 2 : 16;
    kad_req **n = lp2p__calloc(e->mem, nc, sizeof *n);
    if (!n) goto nomem;
    for (size_t i = 0; i < e->nact; i++) n[i] = e->actq[(e->acthead + i) % e->capact];
    lp2p__free(e->mem, e->actq);
    e->actq = n;
    e->capact = nc;
    e->acthead = 0;
  }
  r->id = ++e->next_id;
  r->purpose = purpose;
  r->peer = *peer;
  kad_id_from_peer(peer, &r->kid);
  r->msg = msg;
  r->msg_len = msg_len;
  r->expect_response = expect;
  r->deadline = now + e->cfg.request_timeout_ms;
  r->bucket = -1;
  r->in_flight = r->queued = 1;
  e->reqs[e->nreqs++] = r;
  e->actq[(e->acthead + e->nact) % e->capact] = r;
  e->nact++;
  return r;
nomem:
  if (r) addrs_free(e, r->addrs, r->naddrs);
  lp2p__free(e->mem, r);
  lp2p__free(e->mem, msg);
  return NULL;
}

static kad_req *req_take(kad_engine *e, uint64_t id) {
  for (size_t i = 0; i < e->nreqs; i++)
    if (e->reqs[i]->id == id) {
      kad_req *r = e->reqs[i];
      e->reqs[i] = e->reqs[--e->nreqs];
      r->in_flight = 0;
      return r;
    }
  return NULL;
}

static int encode_simple(kad_engine *e, int type, const uint8_t *key, size_t klen, uint8_t **out, size_t *len) {
  kad_msg m;
  memset(&m, 0, sizeof m);
  m.type = type;
  m.key = key;
  m.key_len = klen;
  return kad_msg_encode(e->mem, &m, out, len);
}

static int send_check(kad_engine *e, const lp2p_peer_id *peer, lp2p_multiaddr *const *addrs, size_t naddrs,
                      int purpose, int bucket, lp2p_tstamp now) {
  uint8_t *msg;
  size_t len;
  int rv = encode_simple(e, KAD_FIND_NODE, e->self.bytes, e->self.len, &msg, &len);
  if (rv) return rv;
  kad_req *r = req_new(e, purpose, peer, addrs, naddrs, msg, len, 1, now);
  if (!r) return LP2P_ERR_NOMEM;
  r->bucket = bucket;
  if (purpose == R_CHECK) e->nchecks++;
  if (purpose == R_PING) e->buckets[bucket]->ping_req = r->id;
  return 0;
}

/* ============================================================================================ */
/* queries                                                                                      */
static void query_free(kad_engine *e, kad_query *q) {
  if (!q) return;
  for (size_t i = 0; i < q->n; i++) addrs_free(e, q->p[i].addrs, q->p[i].naddrs);
  lp2p__free(e->mem, q->p);
  for (size_t i = 0; i < q->nvals; i++) lp2p__free(e->mem, q->vals[i]);
  lp2p__free(e->mem, q->vals);
  lp2p__free(e->mem, q->vlens);
  for (size_t i = 0; i < q->nprovs; i++) addrs_free(e, q->provs[i].addrs, q->provs[i].naddrs);
  lp2p__free(e->mem, q->provs);
  lp2p__free(e->mem, q->res);
  lp2p__free(e->mem, q->key);
  lp2p__free(e->mem, q->value);
  lp2p__free(e->mem, q->lookup_msg);
  lp2p__free(e->mem, q);
}

/* Adds a peer heard of (sorted by distance, deduplicated, capped). Returns its index or -1. */
static int qpeer_add(kad_engine *e, kad_query *q, const lp2p_peer_id *id, const kad_id *kid,
                     lp2p_multiaddr *const *addrs, size_t naddrs, unsigned hop, unsigned path) {
  size_t lo = 0, hi = q->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = kad_cmp_distance(&q->p[mid].kid, kid, &q->target);
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < q->n && !memcmp(q->p[lo].kid.b, kid->b, 32)) { /* known: learn addresses if it had none */
    qpeer *x = &q->p[lo];
    if (!x->naddrs && naddrs) {
      size_t nn;
      if (addrs_dup(e, (const lp2p_multiaddr *const *)addrs, naddrs, KAD_ANSWER_ADDRS, &x->addrs, &nn) == 0)
        x->naddrs = (uint8_t)nn;
    }
    return (int)lo;
  }
  if (lo >= QP_CAP) return -1;
  if (q->n == QP_CAP) { /* drop the farthest (only if it is merely heard of) */
    if (q->p[QP_CAP - 1].state == QP_WAITING) return -1;
    addrs_free(e, q->p[QP_CAP - 1].addrs, q->p[QP_CAP - 1].naddrs);
    q->n--;
  }
  memmove(&q->p[lo + 1], &q->p[lo], (q->n - lo) * sizeof q->p[0]);
  qpeer *x = &q->p[lo];
  memset(x, 0, sizeof *x);
  x->id = *id;
  x->kid = *kid;
  x->hop = (uint8_t)(hop > 255 ? 255 : hop);
  x->path = (uint8_t)path;
  x->vidx = -1;
  size_t nn = 0;
  if (addrs_dup(e, (const lp2p_multiaddr *const *)addrs, naddrs, KAD_ANSWER_ADDRS, &x->addrs, &nn) != 0) nn = 0;
  x->naddrs = (uint8_t)nn;
  q->n++;
  return (int)lo;
}

static int qpeer_find(const kad_query *q, const kad_id *kid) {
  size_t lo = 0, hi = q->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = kad_cmp_distance(&q->p[mid].kid, kid, &q->target);
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return (lo < q->n && !memcmp(q->p[lo].kid.b, kid->b, 32)) ? (int)lo : -1;
}

static void query_finish(kad_engine *e, kad_query *q, int status, lp2p_tstamp now);
static void query_step(kad_engine *e, kad_query *q, lp2p_tstamp now);

static int lookup_type(int kind) {
  if (kind == KAD_Q_GET_VALUE) return KAD_GET_VALUE;
  if (kind == KAD_Q_GET_PROVIDERS) return KAD_GET_PROVIDERS;
  return KAD_FIND_NODE;
}

static void query_send(kad_engine *e, kad_query *q, qpeer *x, int purpose, uint8_t *msg, size_t len, int expect,
                       lp2p_tstamp now) {
  kad_req *r = req_new(e, purpose, &x->id, x->addrs, x->naddrs, msg, len, expect, now);
  q->st.requests++;
  if (!r) {
    x->state = QP_FAILED;
    q->st.failures++;
    return;
  }
  r->q = q;
  r->path = x->path;
  if (purpose == R_QUERY) {
    x->state = QP_WAITING;
    q->inflight++;
    q->path_inflight[x->path]++;
    q->st.peers_contacted++;
  } else {
    q->pending2++;
  }
}

/* Phase 2 of PUT_VALUE / ADD_PROVIDER: send to the k closest peers that answered. */
static void query_phase2(kad_engine *e, kad_query *q, lp2p_tstamp now) {
  q->phase = 1;
  kad_msg m;
  memset(&m, 0, sizeof m);
  kad_peer self;
  memset(&self, 0, sizeof self);
  if (q->kind == KAD_Q_PUT_VALUE) {
    m.type = KAD_PUT_VALUE;
    m.key = q->key;
    m.key_len = q->klen;
    m.has_record = 1;
    m.rec_key = q->key;
    m.rec_key_len = q->klen;
    m.rec_value = q->value;
    m.rec_value_len = q->vlen;
  } else {
    m.type = KAD_ADD_PROVIDER;
    m.key = q->key;
    m.key_len = q->klen;
    self.id = e->self;
    self.addrs = e->local_addrs;
    self.naddrs = e->nlocal;
    m.providers = &self;
    m.nproviders = 1;
  }
  uint8_t *msg;
  size_t len;
  if (kad_msg_encode(e->mem, &m, &msg, &len) != 0) {
    query_finish(e, q, LP2P_ERR_NOMEM, now);
    return;
  }
  unsigned sent = 0;
  for (size_t i = 0; i < q->n && sent < KAD_K; i++) {
    if (q->p[i].state != QP_ANSWERED) continue;
    uint8_t *copy = lp2p__malloc(e->mem, len);
    if (!copy) break;
    memcpy(copy, msg, len);
    query_send(e, q, &q->p[i], R_PHASE2, copy, len, q->kind == KAD_Q_PUT_VALUE, now);
    sent++;
  }
  lp2p__free(e->mem, msg);
  if (!q->pending2) query_finish(e, q, q->stored ? 0 : LP2P_ERR_NOT_FOUND, now);
}

/* Early stops that end every path at once. */
static int lookup_satisfied(const kad_query *q) {
  if (q->kind == KAD_Q_GET_VALUE && q->quorum && q->nrecs >= q->quorum) return 1;
  if (q->kind == KAD_Q_GET_PROVIDERS && q->nprovs >= q->max_prov) return 1;
  if (q->kind == KAD_Q_FIND_NODE && q->nprovs) return 1;
  return 0;
}

/* A path is done when its beta closest peers not known to have failed have all answered (go's
 * rule), or when it has no peer left at all. */
static int path_done(const kad_query *q, unsigned path) {
  unsigned seen = 0, any = 0;
  for (size_t i = 0; i < q->n && seen < q->beta; i++) {
    if (q->p[i].path != path) continue;
    any = 1;
    if (q->p[i].state == QP_FAILED) continue;
    if (q->p[i].state != QP_ANSWERED) return 0;
    seen++;
  }
  return seen > 0 || !any;
}

static int lookup_done(const kad_query *q) {
  if (lookup_satisfied(q)) return 1;
  for (unsigned p = 0; p < q->npaths; p++)
    if (!path_done(q, p)) return 0;
  return 1;
}

static void query_step(kad_engine *e, kad_query *q, lp2p_tstamp now) {
  if (q->finished || q->phase) return;
  if (lookup_done(q)) {
    unsigned answered = 0;
    for (size_t i = 0; i < q->n; i++) answered += q->p[i].state == QP_ANSWERED;
    if (q->kind == KAD_Q_PUT_VALUE || q->kind == KAD_Q_ADD_PROVIDER) {
      if (!answered) {
        query_finish(e, q, LP2P_ERR_NOT_FOUND, now);
        return;
      }
      query_phase2(e, q, now);
      return;
    }
    query_finish(e, q, answered ? 0 : LP2P_ERR_NOT_FOUND, now);
    return;
  }
  /* per path: keep its share of alpha in flight among its k closest peers not known to have
     failed; a peer belongs to one path only (S/Kademlia disjoint paths when npaths > 1) */
  for (unsigned path = 0; path < q->npaths; path++) {
    if (q->npaths > 1 && path_done(q, path)) continue;
    unsigned considered = 0;
    for (size_t i = 0; i < q->n && q->path_inflight[path] < q->path_alpha && considered < KAD_K; i++) {
      qpeer *x = &q->p[i];
      if (x->path != path || x->state == QP_FAILED) continue;
      considered++;
      if (x->state != QP_HEARD) continue;
      uint8_t *copy = lp2p__malloc(e->mem, q->lookup_len);
      if (!copy) break;
      memcpy(copy, q->lookup_msg, q->lookup_len);
      query_send(e, q, x, R_QUERY, copy, q->lookup_len, 1, now);
    }
  }
  if (!q->inflight) { /* exhausted */
    unsigned answered = 0;
    for (size_t i = 0; i < q->n; i++) answered += q->p[i].state == QP_ANSWERED;
    if ((q->kind == KAD_Q_PUT_VALUE || q->kind == KAD_Q_ADD_PROVIDER) && answered) {
      query_phase2(e, q, now);
      return;
    }
    query_finish(e, q, answered ? 0 : LP2P_ERR_NOT_FOUND, now);
  }
}

/* Index of the best value (selector), or -1. */
static int select_best(kad_engine *e, kad_query *q) {
  if (!q->nvals) return -1;
  const kad_validator *vi = NULL;
  if (kad__validate(e, q->key, q->klen, q->vals[0], q->vlens[0], &vi) != 0 || !vi || !vi->select) return 0;
  int b = vi->select(vi->user, q->key, q->klen, (const uint8_t *const *)q->vals, q->vlens, q->nvals);
  return (b >= 0 && (size_t)b < q->nvals) ? b : 0;
}

static void query_finish(kad_engine *e, kad_query *q, int status, lp2p_tstamp now) {
  if (q->finished) return;
  q->finished = 1;
  q->status = status;
  q->st.duration_ms = now - q->start;
  /* detach in-flight requests */
  for (size_t i = 0; i < e->nreqs; i++)
    if (e->reqs[i]->q == q) e->reqs[i]->q = NULL;
  /* unlink from running */
  for (kad_query **pp = &e->queries; *pp; pp = &(*pp)->next)
    if (*pp == q) {
      *pp = q->next;
      break;
    }
  q->next = NULL;
  /* hops: longest referral chain among the closest answered peers */
  unsigned taken = 0;
  for (size_t i = 0; i < q->n && taken < KAD_K; i++)
    if (q->p[i].state == QP_ANSWERED) {
      if (q->p[i].hop > q->st.hops) q->st.hops = q->p[i].hop;
      taken++;
    }
  int settled = q->status == 0 || q->status == LP2P_ERR_NOT_FOUND;
  if (q->kind == KAD_Q_GET_VALUE && settled) {
    q->best = select_best(e, q);
    q->status = q->best < 0 ? LP2P_ERR_NOT_FOUND : 0;
    if (q->best >= 0) {
      /* correct the closest holders that answered without the best record */
      kad_msg m;
      memset(&m, 0, sizeof m);
      m.type = KAD_PUT_VALUE;
      m.key = m.rec_key = q->key;
      m.key_len = m.rec_key_len = q->klen;
      m.has_record = 1;
      m.rec_value = q->vals[q->best];
      m.rec_value_len = q->vlens[q->best];
      uint8_t *msg;
      size_t len;
      if (kad_msg_encode(e->mem, &m, &msg, &len) == 0) {
        taken = 0;
        for (size_t i = 0; i < q->n && taken < KAD_K; i++) {
          qpeer *x = &q->p[i];
          if (x->state != QP_ANSWERED) continue;
          taken++;
          if (x->vidx >= 0 && (size_t)x->vidx < q->nvals && q->vlens[x->vidx] == q->vlens[q->best] &&
              !memcmp(q->vals[x->vidx], q->vals[q->best], q->vlens[q->best]))
            continue;
          uint8_t *copy = lp2p__malloc(e->mem, len);
          if (!copy) break;
          memcpy(copy, msg, len);
          kad_req *r = req_new(e, R_FIRE, &x->id, x->addrs, x->naddrs, copy, len, 1, now);
          if (r) q->st.requests++;
        }
        lp2p__free(e->mem, msg);
      }
    }
  }
  /* result view */
  if (q->kind == KAD_Q_GET_PROVIDERS || q->kind == KAD_Q_FIND_NODE) {
    q->res = NULL;
    q->nres = q->nprovs;
    if (settled) q->status = q->nprovs ? 0 : LP2P_ERR_NOT_FOUND;
  } else {
    q->res = lp2p__calloc(e->mem, KAD_K, sizeof *q->res);
    q->nres = 0;
    if (q->res)
      for (size_t i = 0; i < q->n && q->nres < KAD_K; i++)
        if (q->p[i].state == QP_ANSWERED) {
          q->res[q->nres].id = q->p[i].id;
          q->res[q->nres].addrs = q->p[i].addrs;
          q->res[q->nres].naddrs = q->p[i].naddrs;
          q->nres++;
        }
  }
  if (q->internal) {
    query_free(e, q);
    return;
  }
  if (e->done_tail)
    e->done_tail->next = q;
  else
    e->done_head = q;
  e->done_tail = q;
}

static int query_new(kad_engine *e, int kind, const uint8_t *key, size_t klen, const kad_query_opts *o, int internal,
                     lp2p_tstamp now, kad_query **out) {
  kad_query *q = lp2p__calloc(e->mem, 1, sizeof *q);
  if (!q) return LP2P_ERR_NOMEM;
  q->p = lp2p__calloc(e->mem, QP_CAP, sizeof *q->p);
  q->key = lp2p__malloc(e->mem, klen);
  if (!q->p || !q->key) goto nomem;
  memcpy(q->key, key, klen);
  q->klen = klen;
  q->id = ++e->next_id;
  q->kind = kind;
  q->internal = internal;
  q->best = -1;
  q->start = now;
  uint64_t to = (o && o->timeout_ms) ? o->timeout_ms : e->cfg.query_timeout_ms;
  q->deadline = now + to;
  q->quorum = o ? o->quorum : 0;
  q->max_prov = (o && o->max_providers) ? o->max_providers : KAD_K;
  /* announcing ourselves or storing something: every one of the k closest must have answered */
  q->beta = (kind == KAD_Q_BOOTSTRAP || kind == KAD_Q_PUT_VALUE || kind == KAD_Q_ADD_PROVIDER ||
             kind == KAD_Q_GET_CLOSEST_PEERS || internal)
                ? KAD_K
                : e->cfg.beta;
  if (o && o->struct_size >= offsetof(kad_query_opts, beta) + sizeof o->beta && o->beta)
    q->beta = o->beta < KAD_K ? o->beta : KAD_K;
  kad_id_from_key(key, klen, &q->target);
  if (kind == KAD_Q_FIND_NODE) q->target_is_peer = lp2p_peer_id_from_bytes(key, klen, &q->target_peer) == 0;
  if (kind == KAD_Q_PUT_VALUE) {
    q->value = lp2p__malloc(e->mem, o->value_len);
    if (!q->value) goto nomem;
    if (o->value_len) memcpy(q->value, o->value, o->value_len);
    q->vlen = o->value_len;
  }
  if (encode_simple(e, lookup_type(kind), key, klen, &q->lookup_msg, &q->lookup_len)) goto nomem;
  /* seeds: the k closest table members */
  kad_entry *seeds[KAD_K];
  size_t ns = table_closest(e, &q->target, NULL, 0, seeds, KAD_K);
  q->npaths = e->cfg.disjoint_paths > 1 ? e->cfg.disjoint_paths : 1;
  if (q->npaths > KAD_ALPHA_MAX) q->npaths = KAD_ALPHA_MAX;
  q->path_alpha = e->cfg.alpha / q->npaths ? e->cfg.alpha / q->npaths : 1;
  for (size_t i = 0; i < ns; i++)
    qpeer_add(e, q, &seeds[i]->id, &seeds[i]->kid, seeds[i]->addrs, seeds[i]->naddrs, 1, (unsigned)(i % q->npaths));
  q->next = e->queries;
  e->queries = q;
  *out = q;
  return 0;
nomem:
  query_free(e, q);
  return LP2P_ERR_NOMEM;
}

static int add_value(kad_engine *e, kad_query *q, const uint8_t *v, size_t vl) {
  for (size_t i = 0; i < q->nvals; i++)
    if (q->vlens[i] == vl && !memcmp(q->vals[i], v, vl)) return (int)i;
  if (q->nvals >= 64) return -1;
  uint8_t **nv = lp2p__realloc(e->mem, q->vals, (q->nvals + 1) * sizeof *nv);
  if (!nv) return -1;
  q->vals = nv;
  size_t *nl = lp2p__realloc(e->mem, q->vlens, (q->nvals + 1) * sizeof *nl);
  if (!nl) return -1;
  q->vlens = nl;
  uint8_t *c = lp2p__malloc(e->mem, vl);
  if (!c) return -1;
  if (vl) memcpy(c, v, vl);
  q->vals[q->nvals] = c;
  q->vlens[q->nvals] = vl;
  return (int)q->nvals++;
}

static void add_prov(kad_engine *e, kad_query *q, const lp2p_peer_id *id, lp2p_multiaddr *const *a, size_t na) {
  for (size_t i = 0; i < q->nprovs; i++)
    if (lp2p_peer_id_equal(&q->provs[i].id, id)) {
      if (!q->provs[i].naddrs && na)
        addrs_dup(e, (const lp2p_multiaddr *const *)a, na, KAD_ANSWER_ADDRS, &q->provs[i].addrs, &q->provs[i].naddrs);
      return;
    }
  if (q->nprovs >= KAD_MAX_PEERS_PER_MSG) return;
  kad_peer *np = lp2p__realloc(e->mem, q->provs, (q->nprovs + 1) * sizeof *np);
  if (!np) return;
  q->provs = np;
  kad_peer *p = &q->provs[q->nprovs];
  memset(p, 0, sizeof *p);
  p->id = *id;
  if (addrs_dup(e, (const lp2p_multiaddr *const *)a, na, KAD_ANSWER_ADDRS, &p->addrs, &p->naddrs) != 0) p->naddrs = 0;
  q->nprovs++;
}

/* A lookup-phase answer (m decoded) or failure (m NULL) from peer r->peer. */
static void query_on_answer(kad_engine *e, kad_query *q, kad_req *r, const kad_msg *m, lp2p_tstamp now) {
  int idx = qpeer_find(q, &r->kid);
  if (r->purpose == R_PHASE2) {
    q->pending2--;
    if (m) q->stored++;
    else q->st.failures++;
    if (!q->pending2) query_finish(e, q, q->stored ? 0 : LP2P_ERR_NOT_FOUND, now);
    return;
  }
  q->inflight--;
  q->path_inflight[r->path]--;
  if (idx < 0) { /* dropped from the list meanwhile */
    query_step(e, q, now);
    return;
  }
  qpeer *x = &q->p[idx];
  if (!m) {
    q->st.failures++;
    /* one retry for a peer among the closest that decide termination (a lost message, a
       transient dial failure); a second failure is final */
    unsigned before = 0;
    for (int i = 0; i < idx; i++) before += q->p[i].state != QP_FAILED;
    if (!x->retried && before < q->beta) {
      x->retried = 1;
      x->state = QP_HEARD;
    } else {
      x->state = QP_FAILED;
    }
    query_step(e, q, now);
    return;
  }
  x->state = QP_ANSWERED;
  unsigned hop = x->hop, path = x->path;
  lp2p_peer_id who = x->id;
  if (q->kind == KAD_Q_GET_VALUE && m->has_record && m->rec_key_len == q->klen &&
      !memcmp(m->rec_key, q->key, q->klen)) {
    const kad_validator *vi;
    if (kad__validate(e, q->key, q->klen, m->rec_value, m->rec_value_len, &vi) == 0) {
      int vi_idx = add_value(e, q, m->rec_value, m->rec_value_len);
      if (vi_idx >= 0) x->vidx = (int16_t)vi_idx;
      q->nrecs++;
    }
  }
  if (q->kind == KAD_Q_GET_PROVIDERS)
    for (size_t i = 0; i < m->nproviders; i++)
      add_prov(e, q, &m->providers[i].id, m->providers[i].addrs, m->providers[i].naddrs);
  if (q->kind == KAD_Q_FIND_NODE && q->target_is_peer && lp2p_peer_id_equal(&who, &q->target_peer))
    add_prov(e, q, &who, x->addrs, x->naddrs);
  for (size_t i = 0; i < m->ncloser; i++) {
    const kad_peer *c = &m->closer[i];
    if (lp2p_peer_id_equal(&c->id, &e->self)) continue;
    if (q->kind == KAD_Q_FIND_NODE && q->target_is_peer && c->naddrs && lp2p_peer_id_equal(&c->id, &q->target_peer))
      add_prov(e, q, &c->id, c->addrs, c->naddrs);
    kad_id kid;
    kad_id_from_peer(&c->id, &kid);
    qpeer_add(e, q, &c->id, &kid, c->addrs, c->naddrs, hop + 1, path);
  }
  query_step(e, q, now);
}

/* ============================================================================================ */
/* public: lifecycle                                                                            */
int kad_engine_new(kad_engine **out, const kad_config *cfg, const lp2p_peer_id *local, kad_rng_fn rng, void *rng_user,
                   const lp2p_mem *mem) {
  if (!out || !local || !local->len || !rng) return LP2P_ERR_INVAL;
  *out = NULL;
  mem = lp2p__mem_or_default(mem);
  kad_engine *e = lp2p__calloc(mem, 1, sizeof *e);
  if (!e) return LP2P_ERR_NOMEM;
  e->mem_copy = *mem;
  e->mem = &e->mem_copy;
  if (cfg) {
    size_t n = cfg->struct_size && cfg->struct_size < sizeof e->cfg ? cfg->struct_size : sizeof e->cfg;
    memcpy(&e->cfg, cfg, n);
  }
  kad_config *c = &e->cfg;
  c->struct_size = sizeof *c;
  if (!c->alpha) c->alpha = KAD_ALPHA;
  if (c->alpha > KAD_ALPHA_MAX) c->alpha = KAD_ALPHA_MAX;
  if (!c->beta) c->beta = KAD_BETA;
  if (c->beta > KAD_K) c->beta = KAD_K;
  if (!c->request_timeout_ms) c->request_timeout_ms = KAD_REQUEST_TIMEOUT_MS;
  if (!c->query_timeout_ms) c->query_timeout_ms = KAD_QUERY_TIMEOUT_MS;
  if (!c->refresh_ms) c->refresh_ms = KAD_REFRESH_MS;
  if (!c->max_per_ip_group_bucket) c->max_per_ip_group_bucket = 2;
  if (!c->max_per_ip_group_table) c->max_per_ip_group_table = 3;
  if (!c->max_records) c->max_records = 1024;
  if (!c->max_record_bytes) c->max_record_bytes = 16u << 20;
  if (!c->max_value_size) c->max_value_size = 64u << 10;
  if (!c->max_provider_keys) c->max_provider_keys = 1024;
  if (!c->max_providers_per_key) c->max_providers_per_key = 20;
  c->validators = NULL;
  c->nvalidators = 0;
  e->record_ttl = KAD_RECORD_TTL_MS;
  e->provider_ttl = KAD_PROVIDER_TTL_MS;
  e->self = *local;
  kad_id_from_peer(local, &e->self_kid);
  e->rng = rng;
  e->rng_user = rng_user;
  rng(rng_user, e->hash_key, sizeof e->hash_key);
  e->next_gc = GC_EVERY_MS;
  if (cfg && cfg->nvalidators) {
    kad_validator *v = lp2p__calloc(e->mem, cfg->nvalidators, sizeof *v);
    if (!v) goto nomem;
    c->validators = v;
    c->nvalidators = cfg->nvalidators;
    for (size_t i = 0; i < cfg->nvalidators; i++) {
      v[i] = cfg->validators[i];
      v[i].ns = cfg->validators[i].ns ? lp2p__strndup(e->mem, cfg->validators[i].ns, strlen(cfg->validators[i].ns))
                                      : NULL;
      if (cfg->validators[i].ns && !v[i].ns) goto nomem;
      if (!v[i].validate) goto inval;
    }
  }
  if (kad__store_init(e)) goto nomem;
  *out = e;
  return 0;
inval:
  kad_engine_free(e);
  return LP2P_ERR_INVAL;
nomem:
  kad_engine_free(e);
  return LP2P_ERR_NOMEM;
}

void kad_engine_free(kad_engine *e) {
  if (!e) return;
  for (int i = 0; i < KAD_BUCKETS; i++) {
    kad_bucket *b = e->buckets[i];
    if (!b) continue;
    for (size_t j = 0; j < b->n; j++) entry_free(e, b->e[j]);
    for (size_t j = 0; j < b->nrepl; j++) entry_free(e, b->repl[j]);
    lp2p__free(e->mem, b);
  }
  /* each request is in reqs (in flight), in the action queue, current, or several: free once */
  for (size_t i = 0; i < e->nact; i++) {
    kad_req *r = e->actq[(e->acthead + i) % e->capact];
    if (!r->in_flight) {
      r->queued = 0;
      req_maybe_free(e, r);
    }
  }
  if (e->act_cur && !e->act_cur->in_flight) {
    e->act_cur->is_cur = 0;
    req_maybe_free(e, e->act_cur);
  }
  for (size_t i = 0; i < e->nreqs; i++) {
    kad_req *r = e->reqs[i];
    r->in_flight = r->queued = r->is_cur = 0;
    req_maybe_free(e, r);
  }
  lp2p__free(e->mem, e->reqs);
  lp2p__free(e->mem, e->actq);
  while (e->queries) {
    kad_query *q = e->queries;
    e->queries = q->next;
    query_free(e, q);
  }
  while (e->done_head) {
    kad_query *q = e->done_head;
    e->done_head = q->next;
    query_free(e, q);
  }
  query_free(e, e->result_cur);
  addrs_free(e, e->local_addrs, e->nlocal);
  for (size_t i = 0; i < e->nprovided; i++) lp2p__free(e->mem, e->provided[i].key);
  lp2p__free(e->mem, e->provided);
  kad__store_free(e);
  if (e->cfg.validators) {
    for (size_t i = 0; i < e->cfg.nvalidators; i++) lp2p__free(e->mem, (void *)e->cfg.validators[i].ns);
    lp2p__free(e->mem, (void *)e->cfg.validators);
  }
  lp2p_mem m = e->mem_copy;
  lp2p__free(&m, e);
}

void kad_bytes_free(kad_engine *e, void *p) { lp2p__free(e ? e->mem : lp2p_mem_default(), p); }

int kad_set_local_addrs(kad_engine *e, const lp2p_multiaddr *const *addrs, size_t n) {
  lp2p_multiaddr **a;
  size_t na;
  int rv = addrs_dup(e, addrs, n, KAD_ANSWER_ADDRS, &a, &na);
  if (rv) return rv;
  addrs_free(e, e->local_addrs, e->nlocal);
  e->local_addrs = a;
  e->nlocal = na;
  return 0;
}

void kad_set_client_mode(kad_engine *e, int client) { e->cfg.client_mode = client; }

/* ============================================================================================ */
/* public: peer inputs                                                                          */
int kad_on_peer_identified(kad_engine *e, const lp2p_peer_id *peer, const lp2p_multiaddr *const *addrs,
                           size_t naddrs, int serves_kad, lp2p_tstamp now) {
  if (!peer || !peer->len || (naddrs && !addrs)) return LP2P_ERR_INVAL;
  if (lp2p_peer_id_equal(peer, &e->self)) return 0;
  if (!serves_kad) {
    table_remove(e, peer);
    return 0;
  }
  kad_id kid;
  kad_id_from_peer(peer, &kid);
  kad_entry *x = table_find(e, peer, &kid, NULL, NULL);
  if (x) {
    set_entry_addrs(e, x, (lp2p_multiaddr *const *)addrs, naddrs);
    table_touch(e, peer, &kid, now);
    return 0;
  }
  if (answered_recently(e, peer, now)) {
    table_admit(e, peer, (lp2p_multiaddr *const *)addrs, naddrs, now);
    return 0;
  }
  for (size_t i = 0; i < e->nreqs; i++)
    if (e->reqs[i]->purpose == R_CHECK && lp2p_peer_id_equal(&e->reqs[i]->peer, peer)) return 0;
  /* a query's request to it is under way (identify often finishes on the connection that request
   * opened before the answer comes): that answer is the check, no extra request */
  for (size_t i = 0; i < e->nreqs; i++) {
    kad_req *r = e->reqs[i];
    if ((r->purpose == R_QUERY || r->purpose == R_PHASE2) && r->expect_response &&
        lp2p_peer_id_equal(&r->peer, peer)) {
      addrs_free(e, r->admit_addrs, r->admit_naddrs);
      r->admit_addrs = NULL;
      r->admit_naddrs = 0;
      if (addrs_dup(e, addrs, naddrs, KAD_MAX_ADDRS_PER_PEER, &r->admit_addrs, &r->admit_naddrs)) break;
      r->admit = 1;
      return 0;
    }
  }
  if (e->nchecks >= KAD_MAX_CHECKS) return LP2P_ERR_LIMIT;
  return send_check(e, peer, (lp2p_multiaddr *const *)addrs, naddrs, R_CHECK, -1, now);
}

void kad_on_peer_connected(kad_engine *e, const lp2p_peer_id *peer, lp2p_tstamp now) {
  (void)now;
  kad_id kid;
  kad_id_from_peer(peer, &kid);
  kad_entry *x = table_find(e, peer, &kid, NULL, NULL);
  if (x) x->connected = 1;
}

void kad_on_peer_disconnected(kad_engine *e, const lp2p_peer_id *peer, lp2p_tstamp now) {
  (void)now;
  kad_id kid;
  kad_id_from_peer(peer, &kid);
  kad_entry *x = table_find(e, peer, &kid, NULL, NULL);
  if (x) x->connected = 0;
}

/* ============================================================================================ */
/* public: responses and timers                                                                 */
static void req_complete(kad_engine *e, kad_req *r, const uint8_t *bytes, size_t len, int err, lp2p_tstamp now) {
  kad_msg m;
  int have = 0;
  if (!err) {
    if (!r->expect_response) {
      have = 1;
      memset(&m, 0, sizeof m);
    } else if (kad_msg_decode(e->mem, bytes, len, &m) == 0) {
      have = 1;
    }
  }
  if (have) {
    answered_note(e, &r->peer, now);
    table_touch(e, &r->peer, &r->kid, now);
  } else if (r->purpose != R_CHECK) {
    table_failed(e, &r->peer, &r->kid);
  }
  switch (r->purpose) {
    case R_CHECK:
      e->nchecks--;
      if (have) table_admit(e, &r->peer, r->addrs, r->naddrs, now);
      break;
    case R_PING:
      if (r->bucket >= 0 && e->buckets[r->bucket] && e->buckets[r->bucket]->ping_req == r->id)
        e->buckets[r->bucket]->ping_req = 0;
      break; /* success: touched above; failure: evicted by table_failed (replacement waiting) */
    case R_QUERY:
    case R_PHASE2:
      if (have && r->admit) table_admit(e, &r->peer, r->admit_addrs, r->admit_naddrs, now);
      if (r->q) query_on_answer(e, r->q, r, have ? &m : NULL, now);
      break;
    default:
      break;
  }
  if (have) kad_msg_clear(e->mem, &m);
  req_maybe_free(e, r);
}

int kad_on_response(kad_engine *e, uint64_t id, const uint8_t *bytes, size_t len, int err, lp2p_tstamp now) {
  kad_req *r = req_take(e, id);
  if (!r) return LP2P_ERR_NOT_FOUND;
  if (!err && r->expect_response && len && !bytes) err = LP2P_ERR_INVAL;
  req_complete(e, r, bytes, len, err, now);
  return 0;
}

static void start_internal(kad_engine *e, int kind, const uint8_t *key, size_t klen, lp2p_tstamp now) {
  kad_query *q;
  if (query_new(e, kind, key, klen, NULL, 1, now, &q) == 0) query_step(e, q, now);
}

/* A random key whose kad id has exactly `cpl` leading bits in common with ours. */
static int random_key_for_cpl(kad_engine *e, int cpl, uint8_t key[32]) {
  for (int tries = 0; tries < (1 << 17); tries++) {
    e->rng(e->rng_user, key, 32);
    kad_id k;
    kad_id_from_key(key, 32, &k);
    if (kad_cpl(&e->self_kid, &k) == cpl) return 0;
  }
  return -1;
}

void kad_tick(kad_engine *e, lp2p_tstamp now) {
  /* request timeouts (complete them as failures; a late response is then NOT_FOUND) */
  for (size_t i = 0; i < e->nreqs;) {
    if (now >= e->reqs[i]->deadline) {
      kad_req *r = e->reqs[i];
      e->reqs[i] = e->reqs[--e->nreqs];
      r->in_flight = 0;
      req_complete(e, r, NULL, 0, LP2P_ERR_TIMEOUT, now);
      i = 0; /* completion may have changed the array */
    } else {
      i++;
    }
  }
  for (kad_query *q = e->queries, *n; q; q = n) {
    n = q->next;
    if (now >= q->deadline) query_finish(e, q, LP2P_ERR_TIMEOUT, now);
  }
  if (now >= e->next_gc) {
    kad__store_gc(e, now);
    e->next_gc = now + GC_EVERY_MS;
  }
  for (size_t i = 0; i < e->nprovided; i++)
    if (now >= e->provided[i].next_at) {
      e->provided[i].next_at = now + KAD_REPUBLISH_MS;
      kad_peer self = {.id = e->self, .addrs = e->local_addrs, .naddrs = e->nlocal};
      kad__prov_add(e, e->provided[i].key, e->provided[i].klen, &self, now);
      start_internal(e, KAD_Q_ADD_PROVIDER, e->provided[i].key, e->provided[i].klen, now);
    }
  if (e->cfg.refresh_ms != UINT64_MAX && e->table_size) {
    int maxb = -1;
    for (int i = 0; i < KAD_BUCKETS; i++)
      if (e->buckets[i] && e->buckets[i]->n) maxb = i;
    for (int i = 0; i <= maxb && i <= REFRESH_MAX_CPL; i++) {
      kad_bucket *b = e->buckets[i];
      if (b && now < b->last_refresh + e->cfg.refresh_ms) continue;
      if (!b) {
        if (!(b = lp2p__calloc(e->mem, 1, sizeof *b))) break;
        e->buckets[i] = b;
      }
      b->last_refresh = now;
      uint8_t key[32];
      if (random_key_for_cpl(e, i, key) == 0) start_internal(e, KAD_Q_GET_CLOSEST_PEERS, key, 32, now);
    }
  }
  if (e->table_size && e->table_size < KAD_K / 2 && now >= e->last_bootstrap + LOW_BOOTSTRAP_MS &&
      e->cfg.refresh_ms != UINT64_MAX) {
    e->last_bootstrap = now;
    start_internal(e, KAD_Q_GET_CLOSEST_PEERS, e->self.bytes, e->self.len, now);
  }
}

lp2p_tstamp kad_next_deadline(const kad_engine *e) {
  lp2p_tstamp d = LP2P_TSTAMP_NEVER;
  for (size_t i = 0; i < e->nreqs; i++)
    if (e->reqs[i]->deadline < d) d = e->reqs[i]->deadline;
  for (const kad_query *q = e->queries; q; q = q->next)
    if (q->deadline < d) d = q->deadline;
  if (e->rec_count || e->prov_keys)
    if (e->next_gc < d) d = e->next_gc;
  for (size_t i = 0; i < e->nprovided; i++)
    if (e->provided[i].next_at < d) d = e->provided[i].next_at;
  if (e->cfg.refresh_ms != UINT64_MAX && e->table_size) {
    int maxb = -1;
    for (int i = 0; i < KAD_BUCKETS; i++)
      if (e->buckets[i] && e->buckets[i]->n) maxb = i;
    for (int i = 0; i <= maxb && i <= REFRESH_MAX_CPL; i++) {
      lp2p_tstamp t = e->buckets[i] ? e->buckets[i]->last_refresh + e->cfg.refresh_ms : 0;
      if (t < d) d = t;
    }
    if (e->table_size < KAD_K / 2 && e->last_bootstrap + LOW_BOOTSTRAP_MS < d) d = e->last_bootstrap + LOW_BOOTSTRAP_MS;
  }
  return d;
}

/* ============================================================================================ */
/* public: queries                                                                              */
int kad_query_start(kad_engine *e, kad_query_kind kind, const uint8_t *key, size_t key_len, const kad_query_opts *o,
                    lp2p_tstamp now, uint64_t *id) {
  if (!e || (!key && key_len) || key_len > KAD_MAX_KEY || kind < KAD_Q_FIND_NODE || kind > KAD_Q_BOOTSTRAP)
    return LP2P_ERR_INVAL;
  if (kind == KAD_Q_BOOTSTRAP) {
    key = e->self.bytes;
    key_len = e->self.len;
    e->last_bootstrap = now;
  } else if (!key_len) {
    return LP2P_ERR_INVAL;
  }
  if (kind == KAD_Q_GET_VALUE && !kad__has_validator(e, key, key_len)) return LP2P_ERR_UNSUPPORTED;
  if (kind == KAD_Q_PUT_VALUE) {
    if (!o || (o->value_len && !o->value)) return LP2P_ERR_INVAL;
    const kad_validator *vi;
    int rv = kad__validate(e, key, key_len, o->value, o->value_len, &vi);
    if (rv) return rv;
    if ((rv = kad__rec_store(e, key, key_len, o->value, o->value_len, now))) return rv;
  }
  if (kind == KAD_Q_ADD_PROVIDER) {
    if (key_len > KAD_MAX_PROVIDER_KEY) return LP2P_ERR_INVAL;
    if (!e->nlocal) return LP2P_ERR_STATE;
    kad_peer self = {.id = e->self, .addrs = e->local_addrs, .naddrs = e->nlocal};
    int rv = kad__prov_add(e, key, key_len, &self, now);
    if (rv) return rv;
  }
  kad_query *q;
  int rv = query_new(e, kind, key, key_len, o, 0, now, &q);
  if (rv) return rv;
  if (kind == KAD_Q_GET_VALUE) { /* our own copy counts */
    kad_rec *r = kad__rec_find(e, key, key_len, now);
    const kad_validator *vi;
    if (r && kad__validate(e, key, key_len, r->val, r->vlen, &vi) == 0 && add_value(e, q, r->val, r->vlen) >= 0) q->nrecs++;
  }
  if (kind == KAD_Q_GET_PROVIDERS) {
    kad_pkey *pk = kad__pkey_find(e, key, key_len, now);
    for (size_t i = 0; pk && i < pk->n; i++) add_prov(e, q, &pk->p[i].id, pk->p[i].addrs, pk->p[i].naddrs);
  }
  if (id) *id = q->id;
  query_step(e, q, now);
  return 0;
}

int kad_query_cancel(kad_engine *e, uint64_t id, lp2p_tstamp now) {
  for (kad_query *q = e->queries; q; q = q->next)
    if (q->id == id) {
      query_finish(e, q, LP2P_ERR_CANCELED, now);
      return 0;
    }
  return LP2P_ERR_NOT_FOUND;
}

int kad_provide(kad_engine *e, const uint8_t *key, size_t key_len, lp2p_tstamp now, uint64_t *id) {
  int rv = kad_query_start(e, KAD_Q_ADD_PROVIDER, key, key_len, NULL, now, id);
  if (rv) return rv;
  for (size_t i = 0; i < e->nprovided; i++)
    if (e->provided[i].klen == key_len && !memcmp(e->provided[i].key, key, key_len)) {
      e->provided[i].next_at = now + KAD_REPUBLISH_MS;
      return 0;
    }
  kad_provided *np = lp2p__realloc(e->mem, e->provided, (e->nprovided + 1) * sizeof *np);
  if (!np) return 0; /* the query runs; only the republish is lost */
  e->provided = np;
  uint8_t *k = lp2p__malloc(e->mem, key_len);
  if (!k) return 0;
  memcpy(k, key, key_len);
  e->provided[e->nprovided].key = k;
  e->provided[e->nprovided].klen = key_len;
  e->provided[e->nprovided].next_at = now + KAD_REPUBLISH_MS;
  e->nprovided++;
  return 0;
}

int kad_bootstrap(kad_engine *e, lp2p_tstamp now, uint64_t *id) {
  return kad_query_start(e, KAD_Q_BOOTSTRAP, NULL, 0, NULL, now, id);
}

int kad_next_action(kad_engine *e, kad_action *out) {
  if (e->act_cur) {
    kad_req *c = e->act_cur;
    e->act_cur = NULL;
    c->is_cur = 0;
    req_maybe_free(e, c);
  }
  while (e->nact) {
    kad_req *r = e->actq[e->acthead];
    e->acthead = (e->acthead + 1) % e->capact;
    e->nact--;
    r->queued = 0;
    if (!r->in_flight) { /* timed out before anyone sent it */
      req_maybe_free(e, r);
      continue;
    }
    r->is_cur = 1;
    e->act_cur = r;
    memset(out, 0, sizeof *out);
    out->id = r->id;
    out->peer = r->peer;
    out->addrs = (const lp2p_multiaddr *const *)r->addrs;
    out->naddrs = r->naddrs;
    out->msg = r->msg;
    out->msg_len = r->msg_len;
    out->expect_response = r->expect_response;
    return 1;
  }
  return 0;
}

int kad_next_result(kad_engine *e, kad_result *out) {
  query_free(e, e->result_cur);
  e->result_cur = NULL;
  kad_query *q = e->done_head;
  if (!q) return 0;
  e->done_head = q->next;
  if (!e->done_head) e->done_tail = NULL;
  e->result_cur = q;
  memset(out, 0, sizeof *out);
  out->query_id = q->id;
  out->kind = q->kind;
  out->status = q->status;
  out->stats = q->st;
  if (q->kind == KAD_Q_GET_PROVIDERS || q->kind == KAD_Q_FIND_NODE) {
    out->peers = q->provs;
    out->npeers = q->nprovs;
  } else {
    out->peers = q->res;
    out->npeers = q->nres;
  }
  if (q->kind == KAD_Q_GET_VALUE && q->best >= 0) {
    out->value = q->vals[q->best];
    out->value_len = q->vlens[q->best];
    out->stored = q->nrecs;
  } else {
    out->stored = q->stored;
  }
  return 1;
}

/* ============================================================================================ */
/* public: server side                                                                          */
static void fill_closer(kad_engine *e, const kad_id *t, const lp2p_peer_id *from, kad_peer *out, size_t *n) {
  kad_entry *cl[KAD_K];
  size_t k = table_closest(e, t, from, 1, cl, KAD_K);
  for (size_t i = 0; i < k; i++) {
    out[*n].id = cl[i]->id;
    out[*n].addrs = cl[i]->addrs;
    out[*n].naddrs = cl[i]->naddrs;
    out[*n].connection = cl[i]->connected ? KAD_CONNECTED : KAD_NOT_CONNECTED;
    (*n)++;
  }
}

int kad_on_inbound_request(kad_engine *e, const lp2p_peer_id *from, int from_scope, const uint8_t *req,
                           size_t req_len, lp2p_tstamp now, uint8_t **resp, size_t *resp_len) {
  (void)from_scope;
  *resp = NULL;
  *resp_len = 0;
  if (e->cfg.client_mode) return LP2P_ERR_UNSUPPORTED;
  kad_msg m;
  int rv = kad_msg_decode(e->mem, req, req_len, &m);
  if (rv) return rv;
  kad_msg a;
  memset(&a, 0, sizeof a);
  a.type = m.type;
  a.cluster_level = m.cluster_level;
  kad_peer closer[KAD_K + 1];
  kad_peer provs[64];
  kad_id t;
  kad_id_from_key(m.key, m.key_len, &t);
  switch (m.type) {
    case KAD_FIND_NODE:
      if (m.key_len == e->self.len && !memcmp(m.key, e->self.bytes, m.key_len) && e->nlocal) {
        closer[a.ncloser].id = e->self;
        closer[a.ncloser].addrs = e->local_addrs;
        closer[a.ncloser].naddrs = e->nlocal;
        closer[a.ncloser].connection = KAD_CONNECTED;
        a.ncloser++;
      }
      fill_closer(e, &t, from, closer, &a.ncloser); /* appends at closer[a.ncloser] */
      if (a.ncloser > KAD_K) a.ncloser = KAD_K;
      a.closer = closer;
      break;
    case KAD_GET_VALUE: {
      if (!m.key_len) {
        rv = LP2P_ERR_PROTO;
        goto out;
      }
      a.key = m.key;
      a.key_len = m.key_len;
      kad_rec *r = kad__has_validator(e, m.key, m.key_len) ? kad__rec_find(e, m.key, m.key_len, now) : NULL;
      if (r) {
        a.has_record = 1;
        a.rec_key = r->key;
        a.rec_key_len = r->klen;
        a.rec_value = r->val;
        a.rec_value_len = r->vlen;
      }
      fill_closer(e, &t, from, closer, &a.ncloser);
      a.closer = closer;
      break;
    }
    case KAD_PUT_VALUE: {
      if (!m.has_record || m.rec_key_len != m.key_len || (m.key_len && memcmp(m.rec_key, m.key, m.key_len))) {
        rv = LP2P_ERR_PROTO;
        goto out;
      }
      const kad_validator *vi;
      if ((rv = kad__validate(e, m.key, m.key_len, m.rec_value, m.rec_value_len, &vi))) {
        rv = LP2P_ERR_PROTO;
        goto out;
      }
      kad_rec *old = kad__rec_find(e, m.key, m.key_len, now);
      int keep_old = 0;
      if (old && vi && vi->select && !(old->vlen == m.rec_value_len && !memcmp(old->val, m.rec_value, old->vlen))) {
        const uint8_t *vals[2] = {old->val, m.rec_value};
        size_t lens[2] = {old->vlen, m.rec_value_len};
        keep_old = vi->select(vi->user, m.key, m.key_len, vals, lens, 2) == 0;
      }
      if (!keep_old && (rv = kad__rec_store(e, m.key, m.key_len, m.rec_value, m.rec_value_len, now))) {
        if (rv != LP2P_ERR_NOMEM) rv = LP2P_ERR_PROTO;
        goto out;
      }
      /* echo the request (without peers) */
      a.key = m.key;
      a.key_len = m.key_len;
      a.has_record = 1;
      a.rec_key = m.rec_key;
      a.rec_key_len = m.rec_key_len;
      a.rec_value = m.rec_value;
      a.rec_value_len = m.rec_value_len;
      a.rec_time = m.rec_time;
      break;
    }
    case KAD_ADD_PROVIDER: {
      if (!m.key_len || m.key_len > KAD_MAX_PROVIDER_KEY) {
        rv = LP2P_ERR_PROTO;
        goto out;
      }
      for (size_t i = 0; i < m.nproviders; i++) {
        const kad_peer *p = &m.providers[i];
        if (!from || !lp2p_peer_id_equal(&p->id, from) || !p->naddrs) continue; /* only the sender itself */
        if ((rv = kad__prov_add(e, m.key, m.key_len, p, now))) goto out;
      }
      rv = 0;
      goto out; /* no response */
    }
    case KAD_GET_PROVIDERS: {
      if (!m.key_len) {
        rv = LP2P_ERR_PROTO;
        goto out;
      }
      a.key = m.key;
      a.key_len = m.key_len;
      kad_pkey *pk = kad__pkey_find(e, m.key, m.key_len, now);
      for (size_t i = 0; pk && i < pk->n && a.nproviders < 64; i++) {
        provs[a.nproviders].id = pk->p[i].id;
        provs[a.nproviders].addrs = pk->p[i].addrs;
        provs[a.nproviders].naddrs = pk->p[i].naddrs;
        provs[a.nproviders].connection = 0;
        a.nproviders++;
      }
      a.providers = provs;
      fill_closer(e, &t, from, closer, &a.ncloser);
      a.closer = closer;
      break;
    }
    case KAD_PING:
      break;
    default:
      rv = LP2P_ERR_PROTO;
      goto out;
  }
  rv = kad_msg_encode(e->mem, &a, resp, resp_len);
out:
  kad_msg_clear(e->mem, &m);
  return rv;
}

/* ============================================================================================ */
/* public: introspection and local store access                                                 */
size_t kad_table_size(const kad_engine *e) { return e->table_size; }

int kad_table_contains(const kad_engine *e, const lp2p_peer_id *p) {
  kad_id kid;
  kad_id_from_peer(p, &kid);
  return table_find(e, p, &kid, NULL, NULL) != NULL;
}

size_t kad_table_bucket(const kad_engine *e, int i, lp2p_peer_id *out, size_t cap) {
  if (i < 0 || i >= KAD_BUCKETS || !e->buckets[i]) return 0;
  size_t n = 0;
  for (; n < e->buckets[i]->n && n < cap; n++) out[n] = e->buckets[i]->e[n]->id;
  return n;
}

size_t kad_replacements(const kad_engine *e, int i) {
  return (i >= 0 && i < KAD_BUCKETS && e->buckets[i]) ? e->buckets[i]->nrepl : 0;
}

size_t kad_record_count(const kad_engine *e) { return e->rec_count; }

size_t kad_pending_checks(const kad_engine *e) { return e->nchecks; }

size_t kad_provider_count(const kad_engine *e, const uint8_t *key, size_t klen) {
  kad_pkey *pk = kad__pkey_find((kad_engine *)e, key, klen, 0);
  return pk ? pk->n : 0;
}

int kad_record_get(kad_engine *e, const uint8_t *key, size_t klen, const uint8_t **val, size_t *vlen,
                   lp2p_tstamp now) {
  kad_rec *r = kad__rec_find(e, key, klen, now);
  if (!r) return LP2P_ERR_NOT_FOUND;
  *val = r->val;
  *vlen = r->vlen;
  return 0;
}

int kad_record_put(kad_engine *e, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                   lp2p_tstamp now) {
  const kad_validator *vi;
  int rv = kad__validate(e, key, klen, val, vlen, &vi);
  if (rv) return rv;
  return kad__rec_store(e, key, klen, val, vlen, now);
}

int kad_provider_add(kad_engine *e, const uint8_t *key, size_t klen, const kad_peer *prov, lp2p_tstamp now) {
  return kad__prov_add(e, key, klen, prov, now);
}
