/* protocols/gossipsub/engine/gossip_router.c - the sans-IO gossipsub router core.
 * See gossip_router.h. Containers are plain arrays scanned linearly: sized for the
 * tens of peers and topics of one node. */
#include "gossip_router.h"

#include <string.h>

#include "lp2p/encoding.h"

#define MAX_ID 256

typedef struct gs_str {
  uint8_t *p;
  size_t n;
} gs_str;

typedef struct gs_ts { /* per-topic score counters */
  gs_str topic;
  int in_mesh;
  lp2p_tstamp graft_time;
  double first, mesh_deliv, mesh_fail, invalid;
} gs_ts;

typedef struct gs_idw { /* an IDONTWANT id (hashed) and the heartbeat it arrived in */
  uint64_t h;
  uint64_t hb;
} gs_idw;

typedef struct gs_peer {
  lp2p_peer_id id;
  gs_idw *idw; /* IDONTWANT ids of this peer, bounded (see gossip_router.h) */
  size_t nidw, capidw;
  unsigned idw_this_hb;
  int proto, outbound;
  uint64_t addr_key;
  double behaviour;
  gs_ts *ts;
  size_t nts;
  gs_str *topics;
  size_t ntopics;
  lp2p_bytes body, ctl; /* RPC being assembled */
  lp2p_bytes urg;       /* IDONTWANT ids (field 1 each) for the urgent RPC of the RPC being handled */
  unsigned ihave_msgs, iwant_asked;
  lp2p_tstamp retain_until; /* in g->gone: score counters kept until then */
} gs_peer;

typedef struct gs_backoff {
  lp2p_peer_id id;
  lp2p_tstamp until;
} gs_backoff;

typedef struct gs_topic {
  gs_str name;
  int joined;
  gs_peer **mesh, **fanout;
  size_t nmesh, nfanout;
  lp2p_tstamp fanout_last;
  gs_backoff *bo;
  size_t nbo;
} gs_topic;

typedef struct gs_tx {
  uint64_t peer;
  unsigned count;
} gs_tx;

typedef struct gs_msg {
  uint8_t id[MAX_ID];
  size_t idlen;
  gs_str topic;
  lp2p_bytes enc; /* Message protobuf */
  gs_tx *tx;
  size_t ntx;
  gs_peer **fwd; /* held forwards (hold_forwards): peers still to be sent this message */
  size_t nfwd;
} gs_msg;

typedef struct gs_seen {
  uint8_t id[MAX_ID];
  size_t idlen;
  lp2p_tstamp expiry;
} gs_seen;

typedef struct gs_promise {
  lp2p_peer_id peer;
  uint8_t id[MAX_ID];
  size_t idlen;
  lp2p_tstamp expiry;
} gs_promise;

typedef struct gs_ev {
  lp2p_gs_event ev;
  uint8_t *buf;
} gs_ev;

struct lp2p_gs {
  lp2p_gs_config c;
  const lp2p_mem *m;
  lp2p_peer_id self;
  gs_peer **peers;
  size_t npeers;
  gs_peer **gone; /* disconnected peers whose score is retained (retain_score_ms) */
  size_t ngone;
  gs_topic **topics;
  size_t ntopics;
  gs_msg ***win; /* mcache windows */
  size_t *nwin;
  gs_seen *seen;
  size_t nseen, capseen;
  gs_ev *evq;
  size_t nev, capev, evhead;
  uint8_t *last_buf;
  gs_promise *prom;
  size_t nprom, capprom;
  gs_msg **pend; /* messages with held forwards, in arrival order */
  size_t npend, cappend;
  uint64_t seqno;
  uint64_t hb_count;
  lp2p_tstamp next_hb;
  lp2p_gs_stats st;
};

/* ---- small helpers ---- */
static int grow(const lp2p_mem *m, void **arr, size_t n, size_t *cap, size_t elt) {
  if (n < *cap) return 0;
  size_t nc = *cap ? *cap * 2 : 8;
  void *p = lp2p__realloc(m, *arr, nc * elt);
  if (!p) return LP2P_ERR_NOMEM;
  *arr = p, *cap = nc;
  return 0;
}
static int push_ptr(const lp2p_mem *m, void ***arr, size_t *n, void *v) {
  void **p = lp2p__realloc(m, *arr, (*n + 1) * sizeof **arr);
  if (!p) return LP2P_ERR_NOMEM;
  p[(*n)++] = v, *arr = p;
  return 0;
}
static int del_ptr(void **arr, size_t *n, const void *v) {
  for (size_t i = 0; i < *n; i++)
    if (arr[i] == v) {
      arr[i] = arr[--*n];
      return 1;
    }
  return 0;
}
static int has_ptr(void *const *arr, size_t n, const void *v) {
  for (size_t i = 0; i < n; i++)
    if (arr[i] == v) return 1;
  return 0;
}
static uint64_t id_hash(const uint8_t *p, size_t n) { /* FNV-1a 64 */
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}
static int idw_has(const gs_peer *p, uint64_t h) {
  for (size_t i = 0; i < p->nidw; i++)
    if (p->idw[i].h == h) return 1;
  return 0;
}
static int str_eq(const gs_str *s, const uint8_t *p, size_t n) { return s->n == n && !memcmp(s->p, p, n); }
static uint32_t rnd(lp2p_gs *g) {
  uint32_t v = 0;
  g->c.rng(g->c.rng_ud, (uint8_t *)&v, sizeof v);
  return v;
}
static void shuffle(lp2p_gs *g, gs_peer **a, size_t n) {
  for (size_t i = n; i > 1; i--) {
    size_t j = rnd(g) % i;
    gs_peer *t = a[i - 1];
    a[i - 1] = a[j], a[j] = t;
  }
}

static gs_peer *find_peer(const lp2p_gs *g, const lp2p_peer_id *id) {
  for (size_t i = 0; i < g->npeers; i++)
    if (lp2p_peer_id_equal(&g->peers[i]->id, id)) return g->peers[i];
  return NULL;
}
static gs_topic *find_topic(const lp2p_gs *g, const uint8_t *t, size_t n) {
  for (size_t i = 0; i < g->ntopics; i++)
    if (str_eq(&g->topics[i]->name, t, n)) return g->topics[i];
  return NULL;
}
static gs_topic *get_topic(lp2p_gs *g, const uint8_t *t, size_t n) {
  gs_topic *tp = find_topic(g, t, n);
  if (tp) return tp;
  tp = lp2p__calloc(g->m, 1, sizeof *tp);
  if (!tp) return NULL;
  tp->name.p = lp2p__malloc(g->m, n);
  if (!tp->name.p || push_ptr(g->m, (void ***)&g->topics, &g->ntopics, tp)) {
    lp2p__free(g->m, tp->name.p);
    lp2p__free(g->m, tp);
    return NULL;
  }
  memcpy(tp->name.p, t, n), tp->name.n = n;
  return tp;
}
static void topic_free(lp2p_gs *g, gs_topic *t) {
  lp2p__free(g->m, t->name.p);
  lp2p__free(g->m, t->mesh);
  lp2p__free(g->m, t->fanout);
  lp2p__free(g->m, t->bo);
  lp2p__free(g->m, t);
}
static int peer_subscribed(const gs_peer *p, const uint8_t *t, size_t n) {
  for (size_t i = 0; i < p->ntopics; i++)
    if (str_eq(&p->topics[i], t, n)) return 1;
  return 0;
}
static int in_backoff(const gs_topic *t, const lp2p_peer_id *id, lp2p_tstamp now) {
  for (size_t i = 0; i < t->nbo; i++)
    if (lp2p_peer_id_equal(&t->bo[i].id, id) && t->bo[i].until > now) return 1;
  return 0;
}
static int add_backoff(lp2p_gs *g, gs_topic *t, const lp2p_peer_id *id, lp2p_tstamp until) {
  for (size_t i = 0; i < t->nbo; i++)
    if (lp2p_peer_id_equal(&t->bo[i].id, id)) {
      if (t->bo[i].until < until) t->bo[i].until = until;
      return 0;
    }
  gs_backoff *nb = lp2p__realloc(g->m, t->bo, (t->nbo + 1) * sizeof *nb);
  if (!nb) return LP2P_ERR_NOMEM;
  t->bo = nb;
  t->bo[t->nbo].id = *id, t->bo[t->nbo].until = until, t->nbo++;
  return 0;
}

/* ---- scoring ---- */
static gs_ts *ts_get(lp2p_gs *g, gs_peer *p, const gs_str *t, int create) {
  for (size_t i = 0; i < p->nts; i++)
    if (str_eq(&p->ts[i].topic, t->p, t->n)) return &p->ts[i];
  if (!create || !g->c.score.enabled) return NULL;
  gs_ts *n = lp2p__realloc(g->m, p->ts, (p->nts + 1) * sizeof *n);
  if (!n) return NULL;
  p->ts = n;
  gs_ts *x = &p->ts[p->nts];
  memset(x, 0, sizeof *x);
  x->topic.p = lp2p__malloc(g->m, t->n);
  if (!x->topic.p) return NULL;
  memcpy(x->topic.p, t->p, t->n), x->topic.n = t->n;
  p->nts++;
  return x;
}

static double score(const lp2p_gs *g, const gs_peer *p, lp2p_tstamp now) {
  const struct lp2p_gs_score_params *sp = &g->c.score;
  if (!sp->enabled) return 0;
  double s = 0;
  for (size_t i = 0; i < p->nts; i++) {
    const gs_ts *x = &p->ts[i];
    double t = 0;
    if (x->in_mesh) {
      double q = sp->time_in_mesh_quantum_ms ? (double)(now - x->graft_time) / (double)sp->time_in_mesh_quantum_ms : 0;
      if (q > sp->time_in_mesh_cap) q = sp->time_in_mesh_cap;
      t += q * sp->time_in_mesh_weight;
      if (now - x->graft_time >= sp->mesh_deliveries_activation_ms && x->mesh_deliv < sp->mesh_deliveries_threshold) {
        double d = sp->mesh_deliveries_threshold - x->mesh_deliv;
        t += d * d * sp->mesh_deliveries_weight;
      }
    }
    t += x->first * sp->first_deliveries_weight;
    t += x->mesh_fail * sp->mesh_failure_weight;
    t += x->invalid * x->invalid * sp->invalid_weight;
    s += t * sp->topic_weight;
  }
  if (sp->app_score) s += sp->app_weight * sp->app_score(sp->app_score_ud, &p->id);
  if (p->addr_key) {
    double n = 0;
    for (size_t i = 0; i < g->npeers; i++) n += g->peers[i]->addr_key == p->addr_key;
    if (n > sp->ip_colocation_threshold) {
      double d = n - sp->ip_colocation_threshold;
      s += d * d * sp->ip_colocation_weight;
    }
  }
  if (p->behaviour > sp->behaviour_threshold) {
    double d = p->behaviour - sp->behaviour_threshold;
    s += d * d * sp->behaviour_weight;
  }
  return s;
}
static int below(const lp2p_gs *g, const gs_peer *p, double thr, lp2p_tstamp now) {
  return g->c.score.enabled && score(g, p, now) < thr;
}
static double decay(double v, double f, double zero) {
  v *= f;
  return (v < zero && v > -zero) ? 0 : v;
}

/* Mesh membership (keeps P1/P3/P3b state). */
static int mesh_add(lp2p_gs *g, gs_topic *t, gs_peer *p, lp2p_tstamp now) {
  int rv = push_ptr(g->m, (void ***)&t->mesh, &t->nmesh, p);
  gs_ts *x = rv ? NULL : ts_get(g, p, &t->name, 1);
  if (x) x->in_mesh = 1, x->graft_time = now, x->mesh_deliv = 0;
  return rv;
}
static void mesh_left(lp2p_gs *g, gs_topic *t, gs_peer *p, lp2p_tstamp now) {
  gs_ts *x = ts_get(g, p, &t->name, 0);
  if (!x || !x->in_mesh) return;
  const struct lp2p_gs_score_params *sp = &g->c.score;
  if (now - x->graft_time >= sp->mesh_deliveries_activation_ms && x->mesh_deliv < sp->mesh_deliveries_threshold) {
    double d = sp->mesh_deliveries_threshold - x->mesh_deliv;
    x->mesh_fail += d * d;
  }
  x->in_mesh = 0;
}
static void mesh_del(lp2p_gs *g, gs_topic *t, gs_peer *p, lp2p_tstamp now) {
  if (del_ptr((void **)t->mesh, &t->nmesh, p)) mesh_left(g, t, p, now);
}

/* ---- events ---- */
static int push_ev(lp2p_gs *g, const lp2p_gs_event *ev, uint8_t *buf) {
  if (g->evhead && g->evhead == g->nev) g->nev = g->evhead = 0;
  if (grow(g->m, (void **)&g->evq, g->nev, &g->capev, sizeof *g->evq)) {
    lp2p__free(g->m, buf);
    return LP2P_ERR_NOMEM;
  }
  g->evq[g->nev].ev = *ev, g->evq[g->nev].buf = buf, g->nev++;
  return 0;
}

int lp2p_gs_poll(lp2p_gs *g, lp2p_gs_event *ev) {
  lp2p__free(g->m, g->last_buf), g->last_buf = NULL;
  if (g->evhead == g->nev) {
    g->evhead = g->nev = 0;
    return 0;
  }
  *ev = g->evq[g->evhead].ev;
  g->last_buf = g->evq[g->evhead].buf;
  g->evhead++;
  return 1;
}

/* One RPC body for a peer as a SEND event (a length-prefixed copy). */
static int emit(lp2p_gs *g, const gs_peer *p, const uint8_t *body, size_t len, int urgent) {
  size_t pre = lp2p_uvarint_size(len);
  uint8_t *buf = lp2p__malloc(g->m, pre + len);
  if (!buf) return LP2P_ERR_NOMEM;
  lp2p_uvarint_encode(len, buf, pre);
  memcpy(buf + pre, body, len);
  lp2p_gs_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = LP2P_GS_EV_SEND, ev.peer = p->id, ev.data = buf, ev.len = pre + len, ev.urgent = urgent;
  return push_ev(g, &ev, buf);
}

/* A peer's pending RPC into a SEND event. */
static int flush_peer(lp2p_gs *g, gs_peer *p) {
  if (!p->body.len && !p->ctl.len) return 0;
  int r = 0;
  if (p->ctl.len) r = lp2p_gs_pb_ld(g->m, &p->body, 3, p->ctl.data, p->ctl.len);
  if (!r) r = emit(g, p, p->body.data, p->body.len, 0);
  p->body.len = p->ctl.len = 0;
  return r;
}
/* Flush every peer's pending RPC into a SEND event. */
static int flush(lp2p_gs *g) {
  int rv = 0;
  for (size_t i = 0; i < g->npeers; i++) {
    int r = flush_peer(g, g->peers[i]);
    if (r) rv = r;
  }
  return rv;
}

static void ev_reverse(gs_ev *a, size_t n) {
  for (size_t i = 0; i < n / 2; i++) {
    gs_ev t = a[i];
    a[i] = a[n - 1 - i], a[n - 1 - i] = t;
  }
}
/* The IDONTWANT ids gathered while handling one RPC (p->urg): one urgent RPC per peer, moved
 * ahead of every event queued since `before` events were pending (so ahead of the DELIVER
 * events of that RPC and of anything else it caused). */
static int flush_urgent(lp2p_gs *g, size_t before) {
  int rv = 0;
  size_t k = 0;
  lp2p_bytes c = {0}, b = {0};
  for (size_t i = 0; i < g->npeers; i++) {
    gs_peer *p = g->peers[i];
    if (!p->urg.len) continue;
    c.len = b.len = 0;
    int r = lp2p_gs_pb_ld(g->m, &c, 5, p->urg.data, p->urg.len);
    if (!r) r = lp2p_gs_pb_ld(g->m, &b, 3, c.data, c.len);
    if (!r) r = emit(g, p, b.data, b.len, 1);
    if (!r) k++;
    else rv = r;
    p->urg.len = 0;
  }
  lp2p__bytes_free(g->m, &c), lp2p__bytes_free(g->m, &b);
  /* evq[evhead + before, nev) holds the events of this RPC, the k urgent ones last: rotate them to the front */
  size_t at = g->evhead + before;
  if (k && at + k < g->nev) {
    gs_ev *a = g->evq + at;
    size_t n = g->nev - at;
    ev_reverse(a, n), ev_reverse(a, k), ev_reverse(a + k, n - k);
  }
  return rv;
}

/* Append to a peer's pending RPC, flushing first if it would exceed the size limit. */
static int room(lp2p_gs *g, gs_peer *p, size_t more) {
  if (p->body.len + p->ctl.len + more + 16 > g->c.limits.max_rpc_size && (p->body.len || p->ctl.len))
    return flush(g);
  return 0;
}
static int q_sub(lp2p_gs *g, gs_peer *p, const gs_str *t, int sub) {
  lp2p_bytes e = {0};
  int rv = room(g, p, t->n + 8);
  if (!rv) rv = lp2p_gs_pb_varint(g->m, &e, 1, sub ? 1 : 0);
  if (!rv) rv = lp2p_gs_pb_ld(g->m, &e, 2, t->p, t->n);
  if (!rv) rv = lp2p_gs_pb_ld(g->m, &p->body, 1, e.data, e.len);
  lp2p__bytes_free(g->m, &e);
  return rv;
}
/* Messages go out at most GS_MSG_BATCH bytes of them per RPC, whatever queues them (held forwards,
 * IWANT answers, flood publishing): rust-libp2p refuses RPCs over 64 KiB by default and drops them
 * whole, so one RPC carrying a burst would lose every message in it for that peer. */
#define GS_MSG_BATCH 32768
static int q_msg(lp2p_gs *g, gs_peer *p, const gs_msg *msg) {
  int rv = room(g, p, msg->enc.len + 8);
  if (!rv && p->body.len && p->body.len + msg->enc.len > GS_MSG_BATCH) rv = flush_peer(g, p);
  return rv ? rv : lp2p_gs_pb_ld(g->m, &p->body, 2, msg->enc.data, msg->enc.len);
}
static int q_graft(lp2p_gs *g, gs_peer *p, const gs_str *t) {
  lp2p_bytes e = {0};
  int rv = room(g, p, t->n + 8);
  if (!rv) rv = lp2p_gs_pb_ld(g->m, &e, 1, t->p, t->n);
  if (!rv) rv = lp2p_gs_pb_ld(g->m, &p->ctl, 3, e.data, e.len);
  lp2p__bytes_free(g->m, &e);
  g->st.graft_sent++;
  return rv;
}
static int q_prune(lp2p_gs *g, gs_peer *p, gs_topic *t, int px) {
  lp2p_bytes e = {0}, pi = {0};
  int rv = lp2p_gs_pb_ld(g->m, &e, 1, t->name.p, t->name.n);
  if (p->proto >= LP2P_GS_PROTO_V11) {
    if (px) { /* peer exchange: other subscribed peers (no signed records yet) */
      size_t n = 0;
      for (size_t i = 0; !rv && i < g->npeers && n < g->c.prune_peers; i++) {
        gs_peer *q = g->peers[i];
        if (q == p || !peer_subscribed(q, t->name.p, t->name.n)) continue;
        pi.len = 0;
        rv = lp2p_gs_pb_ld(g->m, &pi, 1, q->id.bytes, q->id.len);
        if (!rv) rv = lp2p_gs_pb_ld(g->m, &e, 2, pi.data, pi.len);
        n++;
      }
    }
    if (!rv) rv = lp2p_gs_pb_varint(g->m, &e, 3, g->c.prune_backoff_ms / 1000);
  }
  if (!rv) rv = room(g, p, e.len + 8);
  if (!rv) rv = lp2p_gs_pb_ld(g->m, &p->ctl, 4, e.data, e.len);
  lp2p__bytes_free(g->m, &e), lp2p__bytes_free(g->m, &pi);
  g->st.prune_sent++;
  return rv;
}
static int q_ids(lp2p_gs *g, gs_peer *p, uint32_t field, const gs_str *topic, const uint8_t *const *ids,
                 const size_t *lens, size_t n) {
  if (!n) return 0;
  lp2p_bytes e = {0};
  int rv = 0;
  if (topic) rv = lp2p_gs_pb_ld(g->m, &e, 1, topic->p, topic->n);
  for (size_t i = 0; !rv && i < n; i++) rv = lp2p_gs_pb_ld(g->m, &e, topic ? 2 : 1, ids[i], lens[i]);
  if (!rv) rv = room(g, p, e.len + 8);
  if (!rv) rv = lp2p_gs_pb_ld(g->m, &p->ctl, field, e.data, e.len);
  lp2p__bytes_free(g->m, &e);
  return rv;
}

/* ---- caches ---- */
static gs_seen *seen_find(const lp2p_gs *g, const uint8_t *id, size_t n) {
  for (size_t i = 0; i < g->nseen; i++)
    if (g->seen[i].idlen == n && !memcmp(g->seen[i].id, id, n)) return &g->seen[i];
  return NULL;
}
static int seen_has(const lp2p_gs *g, const uint8_t *id, size_t n) { return seen_find(g, id, n) != NULL; }
static int seen_add(lp2p_gs *g, const uint8_t *id, size_t n, lp2p_tstamp now) {
  if (grow(g->m, (void **)&g->seen, g->nseen, &g->capseen, sizeof *g->seen)) return LP2P_ERR_NOMEM;
  gs_seen *s = &g->seen[g->nseen++];
  memcpy(s->id, id, n), s->idlen = n, s->expiry = now + g->c.seen_ttl_ms;
  return 0;
}
static gs_msg *mcache_get(const lp2p_gs *g, const uint8_t *id, size_t n) {
  for (unsigned w = 0; w < g->c.mcache_len; w++)
    for (size_t i = 0; i < g->nwin[w]; i++)
      if (g->win[w][i]->idlen == n && !memcmp(g->win[w][i]->id, id, n)) return g->win[w][i];
  return NULL;
}
static void msg_free(lp2p_gs *g, gs_msg *m) {
  if (!m) return;
  del_ptr((void **)g->pend, &g->npend, m); /* (lp2p_gs_tick sends held forwards before the cache shifts) */
  lp2p__free(g->m, m->topic.p);
  lp2p__bytes_free(g->m, &m->enc);
  lp2p__free(g->m, m->tx);
  lp2p__free(g->m, m->fwd);
  lp2p__free(g->m, m);
}

/* ---- held forwards (hold_forwards) ---- */
static int hold_forward(lp2p_gs *g, gs_msg *m, gs_peer *p) {
  if (!has_ptr((void **)g->pend, g->npend, m)) {
    if (grow(g->m, (void **)&g->pend, g->npend, &g->cappend, sizeof *g->pend)) return LP2P_ERR_NOMEM;
    g->pend[g->npend++] = m;
  }
  int rv = push_ptr(g->m, (void ***)&m->fwd, &m->nfwd, p);
  if (!rv) g->st.fwd_held++;
  return rv;
}
/* p has message `id` (it sent us a copy, an IDONTWANT, an IHAVE or an IWANT we answered): the
 * forward held for it, if any, is not needed. */
static void cancel_forward(lp2p_gs *g, const uint8_t *id, size_t n, const gs_peer *p) {
  for (size_t i = 0; i < g->npend; i++) {
    gs_msg *m = g->pend[i];
    if (m->idlen != n || memcmp(m->id, id, n)) continue;
    if (del_ptr((void **)m->fwd, &m->nfwd, p)) g->st.fwd_cancelled++;
    return;
  }
}
/* Queues every held forward (messages in arrival order) into the peers' RPCs, and sends them (at
 * most GS_MSG_BATCH bytes of messages per RPC, see q_msg: a burst of held forwards to one peer would
 * otherwise make one large RPC). */
static int send_held(lp2p_gs *g) {
  int rv = 0;
  for (size_t i = 0; i < g->npend; i++) {
    gs_msg *m = g->pend[i];
    for (size_t k = 0; !rv && k < m->nfwd; k++) {
      gs_peer *p = m->fwd[k];
      rv = q_msg(g, p, m), g->st.forwarded++;
    }
    m->nfwd = 0;
  }
  g->npend = 0;
  int r2 = flush(g);
  return rv ? rv : r2;
}
static gs_msg *mcache_put(lp2p_gs *g, const uint8_t *id, size_t idlen, const uint8_t *t, size_t tn,
                          const uint8_t *enc, size_t encn) {
  gs_msg *m = lp2p__calloc(g->m, 1, sizeof *m);
  if (!m) return NULL;
  memcpy(m->id, id, idlen), m->idlen = idlen;
  m->topic.p = lp2p__malloc(g->m, tn), m->topic.n = tn;
  if (!m->topic.p || lp2p__bytes_append(g->m, &m->enc, enc, encn) ||
      push_ptr(g->m, (void ***)&g->win[0], &g->nwin[0], m)) {
    msg_free(g, m);
    return NULL;
  }
  memcpy(m->topic.p, t, tn);
  return m;
}

static int compute_id(lp2p_gs *g, const lp2p_gs_message *msg, uint8_t *out) {
  if (g->c.msg_id) {
    int n = g->c.msg_id(g->c.msg_id_ud, msg, out, MAX_ID);
    return (n <= 0 || n > MAX_ID) ? LP2P_ERR_CALLBACK : n;
  }
  if (msg->from_len + msg->seqno_len > MAX_ID || msg->from_len + msg->seqno_len == 0) return LP2P_ERR_PROTO;
  memcpy(out, msg->from, msg->from_len);
  memcpy(out + msg->from_len, msg->seqno, msg->seqno_len);
  return (int)(msg->from_len + msg->seqno_len);
}

/* ---- lifecycle ---- */
void lp2p_gs_config_default(lp2p_gs_config *c) {
  memset(c, 0, sizeof *c);
  c->struct_size = sizeof *c;
  c->D = 6, c->D_lo = 4, c->D_hi = 12, c->D_lazy = 6, c->D_out = 2;
  c->heartbeat_ms = 1000, c->fanout_ttl_ms = 60000, c->seen_ttl_ms = 120000, c->prune_backoff_ms = 60000;
  c->mcache_len = 5, c->mcache_gossip = 3, c->gossip_factor_pct = 25;
  c->max_ihave_len = 5000, c->max_ihave_msgs = 10, c->gossip_retransmission = 3, c->prune_peers = 16;
  c->flood_publish = 1;
  c->idontwant_threshold = 1024, c->max_idontwant = 1000, c->idontwant_ttl = 3;
  lp2p_gs_limits_default(&c->limits);
  struct lp2p_gs_score_params *s = &c->score;
  s->topic_weight = 1, s->time_in_mesh_weight = 0.01, s->time_in_mesh_cap = 3600, s->time_in_mesh_quantum_ms = 1000;
  s->first_deliveries_weight = 1, s->first_deliveries_decay = 0.5, s->first_deliveries_cap = 100;
  s->mesh_deliveries_weight = -1, s->mesh_deliveries_decay = 0.5, s->mesh_deliveries_threshold = 1;
  s->mesh_deliveries_cap = 100, s->mesh_deliveries_activation_ms = 5000, s->mesh_deliveries_window_ms = 10;
  s->mesh_failure_weight = -1, s->mesh_failure_decay = 0.5, s->invalid_weight = -10, s->invalid_decay = 0.3;
  s->app_weight = 1, s->ip_colocation_weight = -10, s->ip_colocation_threshold = 1;
  s->behaviour_weight = -10, s->behaviour_threshold = 0, s->behaviour_decay = 0.9;
  s->iwant_followup_ms = 3000, s->decay_to_zero = 0.01, s->retain_score_ms = 600000;
  s->gossip_threshold = -10, s->publish_threshold = -50, s->graylist_threshold = -80, s->accept_px_threshold = 10;
}

int lp2p_gs_new(lp2p_gs **out, const lp2p_gs_config *c, lp2p_tstamp now) {
  *out = NULL;
  if (!c || c->struct_size < sizeof *c || !c->key || !c->rng || !c->mcache_len ||
      c->mcache_gossip > c->mcache_len || c->D_lo > c->D || c->D > c->D_hi || !c->heartbeat_ms)
    return LP2P_ERR_INVAL;
  const lp2p_mem *m = lp2p__mem_or_default(c->mem);
  lp2p_gs *g = lp2p__calloc(m, 1, sizeof *g);
  if (!g) return LP2P_ERR_NOMEM;
  g->c = *c, g->m = m;
  g->win = lp2p__calloc(m, c->mcache_len, sizeof *g->win);
  g->nwin = lp2p__calloc(m, c->mcache_len, sizeof *g->nwin);
  int rv = lp2p_peer_id_from_pubkey(lp2p_privkey_public(c->key), &g->self);
  if (!g->win || !g->nwin || rv) {
    lp2p_gs_free(g);
    return rv ? rv : LP2P_ERR_NOMEM;
  }
  c->rng(c->rng_ud, (uint8_t *)&g->seqno, sizeof g->seqno);
  g->next_hb = now + c->heartbeat_ms;
  *out = g;
  return 0;
}

static void peer_free(lp2p_gs *g, gs_peer *p) {
  for (size_t i = 0; i < p->ntopics; i++) lp2p__free(g->m, p->topics[i].p);
  lp2p__free(g->m, p->topics);
  for (size_t i = 0; i < p->nts; i++) lp2p__free(g->m, p->ts[i].topic.p);
  lp2p__free(g->m, p->ts);
  lp2p__bytes_free(g->m, &p->body), lp2p__bytes_free(g->m, &p->ctl), lp2p__bytes_free(g->m, &p->urg);
  lp2p__free(g->m, p->idw);
  lp2p__free(g->m, p);
}

void lp2p_gs_free(lp2p_gs *g) {
  if (!g) return;
  for (size_t i = 0; i < g->npeers; i++) peer_free(g, g->peers[i]);
  lp2p__free(g->m, g->peers);
  for (size_t i = 0; i < g->ngone; i++) peer_free(g, g->gone[i]);
  lp2p__free(g->m, g->gone);
  for (size_t i = 0; i < g->ntopics; i++) topic_free(g, g->topics[i]);
  lp2p__free(g->m, g->topics);
  if (g->win)
    for (unsigned w = 0; w < g->c.mcache_len; w++) {
      for (size_t i = 0; g->nwin && i < g->nwin[w]; i++) msg_free(g, g->win[w][i]);
      lp2p__free(g->m, g->win[w]);
    }
  lp2p__free(g->m, g->win), lp2p__free(g->m, g->nwin);
  lp2p__free(g->m, g->pend);
  lp2p__free(g->m, g->seen);
  lp2p__free(g->m, g->prom);
  for (size_t i = g->evhead; i < g->nev; i++) lp2p__free(g->m, g->evq[i].buf);
  lp2p__free(g->m, g->evq);
  lp2p__free(g->m, g->last_buf);
  lp2p__free(g->m, g);
}

/* ---- peers and subscriptions ---- */
int lp2p_gs_add_peer(lp2p_gs *g, const lp2p_peer_id *id, int proto, int outbound, lp2p_tstamp now) {
  (void)now;
  if (find_peer(g, id)) return LP2P_ERR_EXISTS;
  gs_peer *p = NULL;
  for (size_t i = 0; i < g->ngone; i++) /* back within the retention time: its score too */
    if (lp2p_peer_id_equal(&g->gone[i]->id, id)) {
      p = g->gone[i];
      g->gone[i] = g->gone[--g->ngone];
      break;
    }
  if (!p && !(p = lp2p__calloc(g->m, 1, sizeof *p))) return LP2P_ERR_NOMEM;
  p->id = *id, p->proto = proto, p->outbound = outbound, p->retain_until = 0;
  if (push_ptr(g->m, (void ***)&g->peers, &g->npeers, p)) {
    peer_free(g, p);
    return LP2P_ERR_NOMEM;
  }
  int rv = 0;
  for (size_t i = 0; !rv && i < g->ntopics; i++)
    if (g->topics[i]->joined) rv = q_sub(g, p, &g->topics[i]->name, 1);
  int r2 = flush(g);
  return rv ? rv : r2;
}

static void drop_from_topics(lp2p_gs *g, gs_peer *p, const uint8_t *t, size_t n, lp2p_tstamp now) {
  for (size_t i = 0; i < g->ntopics; i++) {
    gs_topic *tp = g->topics[i];
    if (t && !str_eq(&tp->name, t, n)) continue;
    mesh_del(g, tp, p, now);
    del_ptr((void **)tp->fanout, &tp->nfanout, p);
  }
}

int lp2p_gs_remove_peer(lp2p_gs *g, const lp2p_peer_id *id, lp2p_tstamp now) {
  gs_peer *p = find_peer(g, id);
  if (!p) return LP2P_ERR_NOT_FOUND;
  drop_from_topics(g, p, NULL, 0, now);
  del_ptr((void **)g->peers, &g->npeers, p);
  for (size_t i = 0; i < g->npend; i++) del_ptr((void **)g->pend[i]->fwd, &g->pend[i]->nfwd, p);
  /* Score retention: a peer that leaves with counters keeps them (and they keep decaying) for
   * retain_score_ms, so that reconnecting does not wash a bad score clean. */
  int keep = g->c.score.enabled && g->c.score.retain_score_ms && (p->behaviour != 0 || p->nts);
  if (keep) {
    for (size_t i = 0; i < p->ntopics; i++) lp2p__free(g->m, p->topics[i].p);
    lp2p__free(g->m, p->topics);
    p->topics = NULL, p->ntopics = 0;
    p->body.len = p->ctl.len = p->urg.len = 0;
    p->ihave_msgs = p->iwant_asked = 0;
    p->addr_key = 0;
    p->nidw = 0, p->idw_this_hb = 0;
    for (size_t i = 0; i < p->nts; i++) p->ts[i].in_mesh = 0;
    p->retain_until = now + g->c.score.retain_score_ms;
    if (push_ptr(g->m, (void ***)&g->gone, &g->ngone, p) == 0) return 0;
  }
  peer_free(g, p);
  return 0;
}

int lp2p_gs_subscribe(lp2p_gs *g, const uint8_t *topic, size_t tlen, lp2p_tstamp now) {
  (void)now;
  if (lp2p_gs_topic_check(topic, tlen, g->c.limits.max_topic_len)) return LP2P_ERR_INVAL;
  gs_topic *t = get_topic(g, topic, tlen);
  if (!t) return LP2P_ERR_NOMEM;
  if (t->joined) return 0;
  t->joined = 1;
  int rv = 0;
  for (size_t i = 0; !rv && i < g->npeers; i++) rv = q_sub(g, g->peers[i], &t->name, 1);
  /* Join: fanout peers first, then others; GRAFT them (spec: the mesh starts from fanout). */
  for (size_t i = 0; !rv && i < t->nfanout && t->nmesh < g->c.D; i++)
    if (!in_backoff(t, &t->fanout[i]->id, now)) {
      rv = mesh_add(g, t, t->fanout[i], now);
      if (!rv) rv = q_graft(g, t->fanout[i], &t->name);
    }
  t->nfanout = 0;
  int r2 = flush(g);
  return rv ? rv : r2;
}

int lp2p_gs_unsubscribe(lp2p_gs *g, const uint8_t *topic, size_t tlen, lp2p_tstamp now) {
  gs_topic *t = find_topic(g, topic, tlen);
  if (!t || !t->joined) return 0;
  int rv = 0;
  for (size_t i = 0; !rv && i < g->npeers; i++) rv = q_sub(g, g->peers[i], &t->name, 0);
  for (size_t i = 0; !rv && i < t->nmesh; i++) {
    rv = q_prune(g, t->mesh[i], t, 0);
    if (!rv) rv = add_backoff(g, t, &t->mesh[i]->id, now + g->c.prune_backoff_ms);
    mesh_left(g, t, t->mesh[i], now);
  }
  t->nmesh = 0, t->joined = 0;
  int r2 = flush(g);
  return rv ? rv : r2;
}

/* ---- messages ---- */
/* Publish (skip1 NULL: sent now) or forward a message (held when hold_forwards; with `idontwant`
 * each v1.2 target also gets the id in its urgent IDONTWANT, see flush_urgent). */
static int send_to_topic_peers(lp2p_gs *g, gs_topic *t, gs_msg *m, const lp2p_peer_id *skip1,
                               const uint8_t *skip2, size_t skip2n, int flood, int idontwant, lp2p_tstamp now) {
  int rv = 0;
  for (size_t i = 0; !rv && i < g->npeers; i++) {
    gs_peer *p = g->peers[i];
    if (skip1 && lp2p_peer_id_equal(&p->id, skip1)) continue;
    if (skip2 && p->id.len == skip2n && !memcmp(p->id.bytes, skip2, skip2n)) continue;
    int to;
    if (flood)
      to = peer_subscribed(p, m->topic.p, m->topic.n) && !below(g, p, g->c.score.publish_threshold, now);
    else if (t && t->joined) to = has_ptr((void **)t->mesh, t->nmesh, p);
    else to = t && has_ptr((void **)t->fanout, t->nfanout, p);
    if (to && p->nidw && idw_has(p, id_hash(m->id, m->idlen))) {
      g->st.idontwant_skipped++;
      continue;
    }
    if (!to) continue;
    if (idontwant && p->proto >= LP2P_GS_PROTO_V12) {
      rv = lp2p_gs_pb_ld(g->m, &p->urg, 1, m->id, m->idlen);
      g->st.idontwant_sent++;
    }
    if (rv) break;
    if (skip1 && g->c.hold_forwards) rv = hold_forward(g, m, p);
    else rv = q_msg(g, p, m), g->st.forwarded++;
  }
  return rv;
}

int lp2p_gs_publish(lp2p_gs *g, const uint8_t *topic, size_t tlen, const uint8_t *data, size_t len,
                    lp2p_tstamp now, uint8_t *id_out, size_t cap) {
  if (lp2p_gs_topic_check(topic, tlen, g->c.limits.max_topic_len)) return LP2P_ERR_INVAL;
  uint8_t seq[8];
  uint64_t s = ++g->seqno;
  for (int i = 7; i >= 0; i--) seq[i] = (uint8_t)s, s >>= 8;
  lp2p_gs_msg_fields f = {0};
  f.data = data ? data : (const uint8_t *)"", f.data_len = len;
  f.seqno = seq, f.seqno_len = 8, f.topic = topic, f.topic_len = tlen;
  lp2p_bytes enc = {0};
  int rv = lp2p_gs_msg_sign_encode(g->m, g->c.key, &f, &enc);
  if (rv) return rv;
  if (enc.len + 16 > g->c.limits.max_rpc_size) {
    lp2p__bytes_free(g->m, &enc);
    return LP2P_ERR_TOO_LARGE;
  }
  lp2p_gs_message am = {g->self.bytes, g->self.len, f.data, len, seq, 8, topic, tlen, NULL, 0};
  uint8_t id[MAX_ID];
  int idn = compute_id(g, &am, id);
  gs_msg *m = NULL;
  if (idn > 0 && !(rv = seen_add(g, id, (size_t)idn, now))) {
    m = mcache_put(g, id, (size_t)idn, topic, tlen, enc.data, enc.len);
    if (!m) rv = LP2P_ERR_NOMEM;
  }
  lp2p__bytes_free(g->m, &enc);
  if (idn < 0) return idn;
  if (rv) return rv;
  gs_topic *t = find_topic(g, topic, tlen);
  if (!g->c.flood_publish && (!t || !t->joined)) { /* fanout */
    if (!t && !(t = get_topic(g, topic, tlen))) return LP2P_ERR_NOMEM;
    if (!t->nfanout) {
      gs_peer **c = NULL;
      size_t nc = 0;
      for (size_t i = 0; !rv && i < g->npeers; i++)
        if (peer_subscribed(g->peers[i], topic, tlen)) rv = push_ptr(g->m, (void ***)&c, &nc, g->peers[i]);
      shuffle(g, c, nc);
      for (size_t i = 0; !rv && i < nc && i < g->c.D; i++)
        rv = push_ptr(g->m, (void ***)&t->fanout, &t->nfanout, c[i]);
      lp2p__free(g->m, c);
    }
    t->fanout_last = now;
  }
  if (!rv) rv = send_to_topic_peers(g, t, m, NULL, NULL, 0, g->c.flood_publish, 0, now);
  int r2 = flush(g);
  if (rv || r2) return rv ? rv : r2;
  if (id_out) memcpy(id_out, id, (size_t)idn < cap ? (size_t)idn : cap);
  return idn;
}

static int handle_msg(lp2p_gs *g, gs_peer *src, const Lp2pGs__Message *pm, lp2p_tstamp now) {
  gs_topic *t = find_topic(g, pm->topic.data, pm->topic.len);
  if (!t || !t->joined) return 0; /* not ours: drop */
  static const uint8_t empty[1];
#define BD(x) ((x).data ? (x).data : empty)
  lp2p_gs_message am = {BD(pm->from), pm->from.len, BD(pm->data), pm->data.len, BD(pm->seqno),
                        pm->seqno.len, BD(pm->topic), pm->topic.len, NULL, 0};
  uint8_t id[MAX_ID];
  int idn = compute_id(g, &am, id);
  if (idn < 0) {
    g->st.rejected++;
    return 0;
  }
  gs_seen *sn = seen_find(g, id, (size_t)idn);
  if (sn) {
    g->st.duplicates++;
    if (g->npend) cancel_forward(g, id, (size_t)idn, src);
    /* P3: a near-first delivery from a mesh peer still counts */
    gs_ts *x = ts_get(g, src, &t->name, 0);
    if (x && x->in_mesh && now <= sn->expiry - g->c.seen_ttl_ms + g->c.score.mesh_deliveries_window_ms &&
        x->mesh_deliv < g->c.score.mesh_deliveries_cap)
      x->mesh_deliv += 1;
    return 0;
  }
  int rv = seen_add(g, id, (size_t)idn, now);
  if (rv) return rv;
  gs_ts *x = ts_get(g, src, &t->name, 1);
  if (lp2p_gs_msg_verify(g->m, pm)) {
    g->st.invalid_sig++;
    if (x) x->invalid += 1;
    return 0;
  }
  for (size_t i = 0; i < g->nprom;) /* promise kept (by whoever) */
    if (g->prom[i].idlen == (size_t)idn && !memcmp(g->prom[i].id, id, (size_t)idn)) g->prom[i] = g->prom[--g->nprom];
    else i++;
  if (pm->from.len == g->self.len && !memcmp(pm->from.data, g->self.bytes, g->self.len)) return 0; /* ours */
  am.id = id, am.id_len = (size_t)idn;
  lp2p_gs_verdict v = g->c.validate ? g->c.validate(g->c.validate_ud, &src->id, &am) : LP2P_GS_ACCEPT;
  if (v == LP2P_GS_REJECT) {
    g->st.rejected++;
    if (x) x->invalid += 1;
    return 0;
  }
  if (v != LP2P_GS_ACCEPT) {
    g->st.ignored++;
    return 0;
  }
  /* Re-encode (canonical) for the cache and forwarding. */
  lp2p_gs_msg_fields f = {0};
  f.from = am.from, f.from_len = am.from_len;
  if (pm->has_data) f.data = am.data, f.data_len = am.data_len;
  f.seqno = am.seqno, f.seqno_len = am.seqno_len, f.topic = am.topic, f.topic_len = am.topic_len;
  f.signature = BD(pm->signature), f.signature_len = pm->signature.len;
  if (pm->has_key) f.key = BD(pm->key), f.key_len = pm->key.len;
  lp2p_bytes enc = {0};
  rv = lp2p_gs_msg_encode(g->m, &f, &enc);
  gs_msg *m = rv ? NULL : mcache_put(g, id, (size_t)idn, am.topic, am.topic_len, enc.data, enc.len);
  lp2p__bytes_free(g->m, &enc);
  if (!m) return LP2P_ERR_NOMEM;
  /* Deliver: one buffer holding from, data, seqno, topic, id. */
  size_t tot = am.from_len + am.data_len + am.seqno_len + am.topic_len + (size_t)idn;
  uint8_t *buf = lp2p__malloc(g->m, tot), *w = buf;
  if (!buf) return LP2P_ERR_NOMEM;
  lp2p_gs_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = LP2P_GS_EV_DELIVER, ev.src = src->id, ev.peer = src->id;
#define CP(field, lenf)                                 \
  memcpy(w, am.field, am.lenf), ev.msg.field = w, ev.msg.lenf = am.lenf, w += am.lenf;
  CP(from, from_len) CP(data, data_len) CP(seqno, seqno_len) CP(topic, topic_len) CP(id, id_len)
#undef CP
  rv = push_ev(g, &ev, buf);
  g->st.delivered++;
  if (x) {
    if (x->first < g->c.score.first_deliveries_cap) x->first += 1;
    if (x->in_mesh && x->mesh_deliv < g->c.score.mesh_deliveries_cap) x->mesh_deliv += 1;
  }
  int idw = g->c.idontwant_threshold && am.data_len >= g->c.idontwant_threshold;
  if (!rv) rv = send_to_topic_peers(g, t, m, &src->id, am.from, am.from_len, 0, idw, now);
  return rv;
#undef BD
}

static int handle_control(lp2p_gs *g, gs_peer *p, const Lp2pGs__ControlMessage *c, lp2p_tstamp now) {
  int rv = 0;
  int gossip_ok = !below(g, p, g->c.score.gossip_threshold, now);
  /* IHAVE -> IWANT */
  const uint8_t **want = NULL;
  size_t *wantl = NULL, nwant = 0;
  for (size_t i = 0; !rv && i < c->n_ihave; i++) {
    const Lp2pGs__ControlIHave *h = c->ihave[i];
    gs_topic *t = find_topic(g, h->topicid.data, h->topicid.len);
    if (!t || !t->joined || !gossip_ok) continue;
    if (++p->ihave_msgs > g->c.max_ihave_msgs) break;
    for (size_t k = 0; !rv && k < h->n_messageids && p->iwant_asked < g->c.max_ihave_len; k++) {
      const ProtobufCBinaryData *d = &h->messageids[k];
      if (d->len == 0 || d->len > MAX_ID) continue;
      if (seen_has(g, d->data, d->len)) {
        if (g->npend) cancel_forward(g, d->data, d->len, p);
        continue;
      }
      const uint8_t **nw = lp2p__realloc(g->m, (void *)want, (nwant + 1) * sizeof *want);
      size_t *nl = nw ? lp2p__realloc(g->m, wantl, (nwant + 1) * sizeof *wantl) : NULL;
      if (nw) want = nw;
      if (nl) wantl = nl;
      if (!nw || !nl) {
        rv = LP2P_ERR_NOMEM;
        break;
      }
      want[nwant] = d->data, wantl[nwant++] = d->len;
      p->iwant_asked++;
      if (g->c.score.enabled) { /* the promise: the message within iwant_followup_ms */
        if (grow(g->m, (void **)&g->prom, g->nprom, &g->capprom, sizeof *g->prom)) {
          rv = LP2P_ERR_NOMEM;
          break;
        }
        gs_promise *pr = &g->prom[g->nprom++];
        pr->peer = p->id, memcpy(pr->id, d->data, d->len), pr->idlen = d->len;
        pr->expiry = now + g->c.score.iwant_followup_ms;
      }
    }
  }
  if (!rv && nwant) rv = q_ids(g, p, 2, NULL, want, wantl, nwant), g->st.iwant_sent += nwant;
  lp2p__free(g->m, (void *)want), lp2p__free(g->m, wantl);
  /* IWANT -> messages (retransmissions capped) */
  uint64_t ph = lp2p_peer_id_hash(&p->id);
  for (size_t i = 0; !rv && gossip_ok && i < c->n_iwant; i++)
    for (size_t k = 0; !rv && k < c->iwant[i]->n_messageids; k++) {
      const ProtobufCBinaryData *d = &c->iwant[i]->messageids[k];
      gs_msg *m = mcache_get(g, d->data, d->len);
      if (!m) continue;
      size_t j = 0;
      while (j < m->ntx && m->tx[j].peer != ph) j++;
      if (j == m->ntx) {
        gs_tx *nt = lp2p__realloc(g->m, m->tx, (m->ntx + 1) * sizeof *nt);
        if (!nt) {
          rv = LP2P_ERR_NOMEM;
          break;
        }
        m->tx = nt, m->tx[m->ntx].peer = ph, m->tx[m->ntx].count = 0, m->ntx++;
      }
      if (m->tx[j].count++ >= g->c.gossip_retransmission) continue;
      rv = q_msg(g, p, m);
      if (g->npend) cancel_forward(g, m->id, m->idlen, p);
    }
  /* IDONTWANT: remembered (hashed) for idontwant_ttl heartbeats, max_idontwant per heartbeat */
  for (size_t i = 0; !rv && i < c->n_idontwant; i++)
    for (size_t k = 0; !rv && k < c->idontwant[i]->n_messageids; k++) {
      const ProtobufCBinaryData *d = &c->idontwant[i]->messageids[k];
      if (d->len == 0 || d->len > MAX_ID || p->idw_this_hb >= g->c.max_idontwant) {
        g->st.idontwant_dropped++;
        continue;
      }
      if (g->npend) cancel_forward(g, d->data, d->len, p);
      uint64_t h = id_hash(d->data, d->len);
      if (idw_has(p, h)) continue;
      if (grow(g->m, (void **)&p->idw, p->nidw, &p->capidw, sizeof *p->idw)) {
        rv = LP2P_ERR_NOMEM;
        break;
      }
      p->idw[p->nidw].h = h, p->idw[p->nidw].hb = g->hb_count, p->nidw++;
      p->idw_this_hb++;
      g->st.idontwant_recv++;
    }
  /* GRAFT */
  for (size_t i = 0; !rv && i < c->n_graft; i++) {
    gs_topic *t = find_topic(g, c->graft[i]->topicid.data, c->graft[i]->topicid.len);
    if (!t || !t->joined) continue; /* unknown topic: ignored */
    if (has_ptr((void **)t->mesh, t->nmesh, p)) continue;
    if (in_backoff(t, &p->id, now)) {
      p->behaviour += 1; /* P7 */
      rv = q_prune(g, p, t, 0);
      if (!rv) rv = add_backoff(g, t, &p->id, now + g->c.prune_backoff_ms);
      continue;
    }
    if (t->nmesh >= g->c.D_hi && !p->outbound) {
      rv = q_prune(g, p, t, 1);
      if (!rv) rv = add_backoff(g, t, &p->id, now + g->c.prune_backoff_ms);
      continue;
    }
    if (below(g, p, 0, now)) {
      rv = q_prune(g, p, t, 0);
      if (!rv) rv = add_backoff(g, t, &p->id, now + g->c.prune_backoff_ms);
      continue;
    }
    rv = mesh_add(g, t, p, now);
  }
  /* PRUNE */
  for (size_t i = 0; !rv && i < c->n_prune; i++) {
    const Lp2pGs__ControlPrune *pr = c->prune[i];
    gs_topic *t = find_topic(g, pr->topicid.data, pr->topicid.len);
    if (!t) continue;
    mesh_del(g, t, p, now);
    uint64_t bo = pr->has_backoff ? pr->backoff : g->c.prune_backoff_ms / 1000;
    if (bo > 86400) bo = 86400;
    rv = add_backoff(g, t, &p->id, now + bo * 1000);
    int px_ok = !g->c.score.enabled || score(g, p, now) >= g->c.score.accept_px_threshold;
    for (size_t k = 0; !rv && px_ok && k < pr->n_peers; k++) {
      lp2p_gs_event ev;
      memset(&ev, 0, sizeof ev);
      if (!pr->peers[k]->has_peerid ||
          lp2p_peer_id_from_bytes(pr->peers[k]->peerid.data, pr->peers[k]->peerid.len, &ev.peer))
        continue;
      ev.type = LP2P_GS_EV_PX, ev.src = p->id;
      rv = push_ev(g, &ev, NULL);
    }
  }
  return rv;
}

int lp2p_gs_handle_rpc(lp2p_gs *g, const lp2p_peer_id *from, const uint8_t *buf, size_t len, lp2p_tstamp now) {
  gs_peer *p = find_peer(g, from);
  if (!p) return LP2P_ERR_NOT_FOUND;
  if (below(g, p, g->c.score.graylist_threshold, now)) {
    g->st.graylisted++;
    return 0;
  }
  Lp2pGs__RPC *r = NULL;
  int rv = lp2p_gs_rpc_decode(g->m, buf, len, &g->c.limits, &r);
  if (rv) return rv;
  for (size_t i = 0; !rv && i < r->n_subscriptions; i++) {
    const Lp2pGs__RPC__SubOpts *s = r->subscriptions[i];
    int have = peer_subscribed(p, s->topicid.data, s->topicid.len);
    if (s->has_subscribe && s->subscribe) {
      if (have) continue;
      if (p->ntopics >= g->c.limits.max_subs) continue;
      gs_str *nt = lp2p__realloc(g->m, p->topics, (p->ntopics + 1) * sizeof *nt);
      uint8_t *cp = nt ? lp2p__malloc(g->m, s->topicid.len) : NULL;
      if (nt) p->topics = nt;
      if (!cp) {
        rv = LP2P_ERR_NOMEM;
        break;
      }
      memcpy(cp, s->topicid.data, s->topicid.len);
      p->topics[p->ntopics].p = cp, p->topics[p->ntopics].n = s->topicid.len, p->ntopics++;
    } else if (have) {
      for (size_t k = 0; k < p->ntopics; k++)
        if (str_eq(&p->topics[k], s->topicid.data, s->topicid.len)) {
          lp2p__free(g->m, p->topics[k].p);
          p->topics[k] = p->topics[--p->ntopics];
          break;
        }
      drop_from_topics(g, p, s->topicid.data, s->topicid.len, now);
    }
  }
  size_t before = g->nev - g->evhead;
  for (size_t i = 0; !rv && i < r->n_publish; i++) rv = handle_msg(g, p, r->publish[i], now);
  int r3 = flush_urgent(g, before);
  if (!rv) rv = r3;
  if (!rv && r->control) rv = handle_control(g, p, r->control, now);
  lp2p_gs_rpc_free(g->m, r);
  int r2 = flush(g);
  return rv ? rv : r2;
}

/* ---- heartbeat ---- */
static int gossip_topic(lp2p_gs *g, gs_topic *t, lp2p_tstamp now) {
  const uint8_t **ids = NULL;
  size_t *lens = NULL, n = 0;
  int rv = 0;
  for (unsigned w = 0; !rv && w < g->c.mcache_gossip; w++)
    for (size_t i = 0; !rv && i < g->nwin[w]; i++) {
      gs_msg *m = g->win[w][i];
      if (!str_eq(&m->topic, t->name.p, t->name.n) || n >= g->c.max_ihave_len) continue;
      const uint8_t **ni = lp2p__realloc(g->m, (void *)ids, (n + 1) * sizeof *ids);
      size_t *nl = ni ? lp2p__realloc(g->m, lens, (n + 1) * sizeof *lens) : NULL;
      if (ni) ids = ni;
      if (nl) lens = nl;
      if (!ni || !nl) rv = LP2P_ERR_NOMEM;
      else ids[n] = m->id, lens[n++] = m->idlen;
    }
  if (!rv && n) {
    gs_peer **c = NULL;
    size_t nc = 0;
    for (size_t i = 0; !rv && i < g->npeers; i++) {
      gs_peer *p = g->peers[i];
      if (!peer_subscribed(p, t->name.p, t->name.n) || has_ptr((void **)t->mesh, t->nmesh, p) ||
          has_ptr((void **)t->fanout, t->nfanout, p) || below(g, p, g->c.score.gossip_threshold, now))
        continue;
      rv = push_ptr(g->m, (void ***)&c, &nc, p);
    }
    shuffle(g, c, nc);
    size_t target = nc * g->c.gossip_factor_pct / 100;
    if (target < g->c.D_lazy) target = g->c.D_lazy;
    for (size_t i = 0; !rv && i < nc && i < target; i++) {
      rv = q_ids(g, c[i], 1, &t->name, ids, lens, n);
      g->st.ihave_sent++;
    }
    lp2p__free(g->m, c);
  }
  lp2p__free(g->m, (void *)ids), lp2p__free(g->m, lens);
  return rv;
}

static int maintain_mesh(lp2p_gs *g, gs_topic *t, lp2p_tstamp now) {
  int rv = 0;
  for (size_t i = 0; !rv && i < t->nmesh;) {
    gs_peer *p = t->mesh[i];
    if (below(g, p, 0, now)) {
      rv = q_prune(g, p, t, 0);
      if (!rv) rv = add_backoff(g, t, &p->id, now + g->c.prune_backoff_ms);
      mesh_del(g, t, p, now);
    } else {
      i++;
    }
  }
  if (t->nmesh < g->c.D_lo) {
    gs_peer **c = NULL;
    size_t nc = 0;
    for (size_t i = 0; !rv && i < g->npeers; i++) {
      gs_peer *p = g->peers[i];
      if (peer_subscribed(p, t->name.p, t->name.n) && !has_ptr((void **)t->mesh, t->nmesh, p) &&
          !in_backoff(t, &p->id, now) && !below(g, p, 0, now))
        rv = push_ptr(g->m, (void ***)&c, &nc, p);
    }
    shuffle(g, c, nc);
    for (size_t i = 0; !rv && i < nc && t->nmesh < g->c.D; i++) {
      rv = mesh_add(g, t, c[i], now);
      if (!rv) rv = q_graft(g, c[i], &t->name);
    }
    lp2p__free(g->m, c);
  }
  if (!rv && t->nmesh > g->c.D_hi) {
    /* Keep D: outbound peers first up to D_out, the rest at random. */
    shuffle(g, t->mesh, t->nmesh);
    size_t nout = 0;
    for (size_t i = 0; i < t->nmesh && nout < g->c.D_out; i++)
      if (t->mesh[i]->outbound) {
        gs_peer *x = t->mesh[nout];
        t->mesh[nout++] = t->mesh[i], t->mesh[i] = x;
      }
    for (size_t i = g->c.D; !rv && i < t->nmesh; i++) {
      rv = q_prune(g, t->mesh[i], t, 1);
      if (!rv) rv = add_backoff(g, t, &t->mesh[i]->id, now + g->c.prune_backoff_ms);
      mesh_left(g, t, t->mesh[i], now);
    }
    t->nmesh = g->c.D;
  }
  if (!rv && t->nmesh >= g->c.D_lo) { /* outbound quota */
    size_t nout = 0;
    for (size_t i = 0; i < t->nmesh; i++) nout += t->mesh[i]->outbound != 0;
    for (size_t i = 0; !rv && i < g->npeers && nout < g->c.D_out; i++) {
      gs_peer *p = g->peers[i];
      if (p->outbound && peer_subscribed(p, t->name.p, t->name.n) && !has_ptr((void **)t->mesh, t->nmesh, p) &&
          !in_backoff(t, &p->id, now) && !below(g, p, 0, now)) {
        rv = mesh_add(g, t, p, now);
        if (!rv) rv = q_graft(g, p, &t->name), nout++;
      }
    }
  }
  return rv;
}

static int heartbeat(lp2p_gs *g, lp2p_tstamp now) {
  int rv = 0;
  for (size_t i = 0; !rv && i < g->ntopics; i++) {
    gs_topic *t = g->topics[i];
    size_t k = 0;
    for (size_t j = 0; j < t->nbo; j++)
      if (t->bo[j].until > now) t->bo[k++] = t->bo[j];
    t->nbo = k;
    if (t->joined) {
      rv = maintain_mesh(g, t, now);
    } else if (t->nfanout || t->fanout_last) {
      if (t->fanout_last + g->c.fanout_ttl_ms <= now) {
        t->nfanout = 0, t->fanout_last = 0;
      } else {
        for (size_t j = 0; !rv && j < g->npeers && t->nfanout < g->c.D; j++) {
          gs_peer *p = g->peers[j];
          if (peer_subscribed(p, t->name.p, t->name.n) && !has_ptr((void **)t->fanout, t->nfanout, p))
            rv = push_ptr(g->m, (void ***)&t->fanout, &t->nfanout, p);
        }
      }
    }
    if (!rv && (t->joined || t->nfanout)) rv = gossip_topic(g, t, now);
  }
  /* Drop topics that are neither joined, nor fanout, nor backing off. */
  for (size_t i = 0; i < g->ntopics;) {
    gs_topic *t = g->topics[i];
    if (!t->joined && !t->nfanout && !t->fanout_last && !t->nbo) {
      topic_free(g, t);
      g->topics[i] = g->topics[--g->ntopics];
    } else {
      i++;
    }
  }
  /* mcache shift */
  unsigned L = g->c.mcache_len;
  for (size_t i = 0; i < g->nwin[L - 1]; i++) msg_free(g, g->win[L - 1][i]);
  lp2p__free(g->m, g->win[L - 1]);
  memmove(&g->win[1], &g->win[0], (L - 1) * sizeof *g->win);
  memmove(&g->nwin[1], &g->nwin[0], (L - 1) * sizeof *g->nwin);
  g->win[0] = NULL, g->nwin[0] = 0;
  /* seen expiry */
  size_t k = 0;
  for (size_t i = 0; i < g->nseen; i++)
    if (g->seen[i].expiry > now) g->seen[k++] = g->seen[i];
  g->nseen = k;
  for (size_t i = 0; i < g->npeers; i++) g->peers[i]->ihave_msgs = g->peers[i]->iwant_asked = 0;
  /* IDONTWANT expiry: ids older than idontwant_ttl heartbeats go; the per-heartbeat budget resets */
  g->hb_count++;
  for (size_t i = 0; i < g->npeers; i++) {
    gs_peer *p = g->peers[i];
    size_t k2 = 0;
    for (size_t j = 0; j < p->nidw; j++)
      if (g->hb_count - p->idw[j].hb < g->c.idontwant_ttl) p->idw[k2++] = p->idw[j];
    p->nidw = k2, p->idw_this_hb = 0;
  }
  /* broken IWANT promises (P7), then decay */
  for (size_t i = 0; i < g->nprom;) {
    if (g->prom[i].expiry <= now) {
      gs_peer *p = find_peer(g, &g->prom[i].peer);
      if (p) p->behaviour += 1;
      g->st.broken_promises++;
      g->prom[i] = g->prom[--g->nprom];
    } else {
      i++;
    }
  }
  const struct lp2p_gs_score_params *sp = &g->c.score;
  for (size_t i = 0; i < g->ngone;) /* retention over */
    if (g->gone[i]->retain_until <= now) {
      peer_free(g, g->gone[i]);
      g->gone[i] = g->gone[--g->ngone];
    } else {
      i++;
    }
  for (size_t i = 0; sp->enabled && i < g->npeers + g->ngone; i++) {
    gs_peer *p = i < g->npeers ? g->peers[i] : g->gone[i - g->npeers];
    p->behaviour = decay(p->behaviour, sp->behaviour_decay, sp->decay_to_zero);
    for (size_t j = 0; j < p->nts; j++) {
      gs_ts *x = &p->ts[j];
      x->first = decay(x->first, sp->first_deliveries_decay, sp->decay_to_zero);
      x->mesh_deliv = decay(x->mesh_deliv, sp->mesh_deliveries_decay, sp->decay_to_zero);
      x->mesh_fail = decay(x->mesh_fail, sp->mesh_failure_decay, sp->decay_to_zero);
      x->invalid = decay(x->invalid, sp->invalid_decay, sp->decay_to_zero);
    }
  }
  return rv;
}

int lp2p_gs_flush_forwards(lp2p_gs *g, lp2p_tstamp now) {
  (void)now;
  int rv = send_held(g);
  int r2 = flush(g);
  return rv ? rv : r2;
}

size_t lp2p_gs_held_forwards(const lp2p_gs *g) {
  size_t n = 0;
  for (size_t i = 0; i < g->npend; i++) n += g->pend[i]->nfwd;
  return n;
}

int lp2p_gs_tick(lp2p_gs *g, lp2p_tstamp now) {
  int rv = send_held(g); /* a tick is a later loop turn too (and the cache shift would drop them) */
  while (!rv && now >= g->next_hb) {
    rv = heartbeat(g, now);
    g->next_hb += g->c.heartbeat_ms;
    if (g->next_hb <= now) g->next_hb = now + g->c.heartbeat_ms; /* skipped beats: one only */
  }
  int r2 = flush(g);
  return rv ? rv : r2;
}

lp2p_tstamp lp2p_gs_next_deadline(const lp2p_gs *g) { return g->next_hb; }

size_t lp2p_gs_mesh_size(const lp2p_gs *g, const uint8_t *topic, size_t tlen) {
  gs_topic *t = find_topic(g, topic, tlen);
  return t ? t->nmesh : 0;
}
int lp2p_gs_in_mesh(const lp2p_gs *g, const uint8_t *topic, size_t tlen, const lp2p_peer_id *id) {
  gs_topic *t = find_topic(g, topic, tlen);
  gs_peer *p = find_peer(g, id);
  return t && p && has_ptr((void **)t->mesh, t->nmesh, p);
}
void lp2p_gs_get_stats(const lp2p_gs *g, lp2p_gs_stats *s) { *s = g->st; }

size_t lp2p_gs_topic_peers(const lp2p_gs *g, const uint8_t *topic, size_t tlen, lp2p_peer_id *out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < g->npeers; i++)
    if (peer_subscribed(g->peers[i], topic, tlen)) {
      if (n < max) out[n] = g->peers[i]->id;
      n++;
    }
  return n;
}
size_t lp2p_gs_mesh_peers(const lp2p_gs *g, const uint8_t *topic, size_t tlen, lp2p_peer_id *out, size_t max) {
  gs_topic *t = find_topic(g, topic, tlen);
  if (!t) return 0;
  for (size_t i = 0; i < t->nmesh && i < max; i++) out[i] = t->mesh[i]->id;
  return t->nmesh;
}
size_t lp2p_gs_peers(const lp2p_gs *g, lp2p_peer_id *out, size_t max) {
  for (size_t i = 0; i < g->npeers && i < max; i++) out[i] = g->peers[i]->id;
  return g->npeers;
}
int lp2p_gs_has_peer(const lp2p_gs *g, const lp2p_peer_id *id) { return find_peer(g, id) != NULL; }

int lp2p_gs_set_peer_addr_key(lp2p_gs *g, const lp2p_peer_id *id, uint64_t key) {
  gs_peer *p = find_peer(g, id);
  if (!p) return LP2P_ERR_NOT_FOUND;
  p->addr_key = key;
  return 0;
}
int lp2p_gs_peer_score(lp2p_gs *g, const lp2p_peer_id *id, lp2p_tstamp now, double *out) {
  gs_peer *p = find_peer(g, id);
  if (!p) return LP2P_ERR_NOT_FOUND;
  *out = score(g, p, now);
  return 0;
}
