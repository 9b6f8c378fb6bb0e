/* kad/kad.c - the Kademlia behaviour: binds the sans-IO engine (kad/engine/) to the swarm
 * through the public API only (streams, timers, events, peer store). See lp2p/kad.h. */
#include "lp2p/kad.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kad/engine/kad_engine.h"
#include "lp2p/atomicfile.h"
#include "lp2p/log.h"
#include "lp2p/peerstore.h"
#include "protocols/proto_mem.h"

#define KAD_LOG "kad"
#define KAD_DHT_ADDR_TTL_MS (60u * 60u * 1000u)
#define KAD_IN_IDLE_MS 60000u          /* an inbound stream with no complete request for this long is reset */
#define KAD_BOOTSTRAP_WAIT_MS 10000u   /* bootstrap waits at most this long for pending checks */
#define KAD_MAX_LOCAL_ADDRS 32

typedef struct kop kop;
typedef struct kreq kreq;
typedef struct kin kin;

/* per-peer stream counters */
typedef struct kslot {
  struct kslot *next;
  lp2p_peer_id peer;
  uint32_t n_in, n_out;
} kslot;

enum { OP_USER = 0, OP_ROUTE = 1 };

struct kop { /* a query started through the API (or by the peer router) */
  kop *next;
  uint64_t qid;        /* engine query id (0 while a bootstrap waits for checks) */
  uint64_t api_id;     /* the id given to the app */
  int kind;            /* lp2p_kad_query_kind */
  int purpose;         /* OP_USER / OP_ROUTE */
  lp2p_kad_fn cb;
  void *ud;
  lp2p_peer_id peer;   /* FIND_PEER / route target */
  lp2p_tstamp wait_until; /* bootstrap waiting for checks */
  int waiting;
  int canceled;
};

struct kreq { /* one outbound request */
  kreq *next, *prev;
  lp2p_kad *k;         /* NULL once the behaviour is gone (the stream's on_close frees us) */
  uint64_t id;
  lp2p_peer_id peer;
  uint8_t *msg;        /* framed */
  size_t len;
  int expect;
  int started, done;
  lp2p_tstamp deadline; /* the engine's per-request timeout */
  lp2p_stream *s;
  uint8_t *buf;
  size_t blen, bcap;
  kslot *slot;
};

struct kin { /* one inbound stream */
  kin *next, *prev;
  lp2p_kad *k;
  lp2p_stream *s;
  lp2p_timer *idle;
  kslot *slot;
  uint8_t *buf;
  size_t blen, bcap, reserved;
};

struct lp2p_kad {
  lp2p_mem mem;
  lp2p_swarm *sw;
  lp2p_kad_config cfg;
  char *proto;
  kad_engine *e;
  lp2p_timer *timer;
  lp2p_tstamp timer_due;
  kop *ops;
  uint64_t next_api_id;
  kreq reqs;           /* list head: requests in flight */
  kreq queued;         /* list head: requests waiting for a per-peer slot */
  kin ins;             /* list head: inbound streams */
  kslot *slots;
  int in_api, flush_posted, pumping, repump;
  int server;          /* protocol registered */
  int detached;
  uint64_t served, answered_bytes;
  /* persistence (cfg.data_dir): records in <data_dir>/kad-records, providers in kad-providers */
  char *store_path, *prov_path;
  lp2p_timer *save_timer;
  int dirty, loading;
};

/* ------------------------------------------------------------------------------------------ */
/* helpers */

/* The engine's clock: the swarm's, moved forward by more than the record / provider TTLs so that a
 * saved entry's age can always be subtracted from it at reload (the swarm clock may start near 0). */
#define KAD_CLOCK_BASE_MS (100ull * 3600 * 1000)
static lp2p_tstamp now_of(const lp2p_kad *k) { return lp2p_swarm_now(k->sw) + KAD_CLOCK_BASE_MS; }

static void rng_cb(void *user, uint8_t *buf, size_t len) {
  (void)user;
  randombytes_buf(buf, len);
}

static void list_init(kreq *h) { h->next = h->prev = h; }
static void list_add(kreq *h, kreq *r) {
  r->prev = h->prev;
  r->next = h;
  h->prev->next = r;
  h->prev = r;
}
static void list_del(kreq *r) {
  if (!r->next) return;
  r->prev->next = r->next;
  r->next->prev = r->prev;
  r->next = r->prev = NULL;
}
static void in_list_init(kin *h) { h->next = h->prev = h; }
static void in_list_add(kin *h, kin *r) {
  r->prev = h->prev;
  r->next = h;
  h->prev->next = r;
  h->prev = r;
}
static void in_list_del(kin *r) {
  if (!r->next) return;
  r->prev->next = r->next;
  r->next->prev = r->prev;
  r->next = r->prev = NULL;
}

static kslot *slot_get(lp2p_kad *k, const lp2p_peer_id *peer) {
  for (kslot *s = k->slots; s; s = s->next)
    if (lp2p_peer_id_equal(&s->peer, peer)) return s;
  kslot *s = lp2p__pm_calloc(&k->mem, sizeof *s);
  if (!s) return NULL;
  s->peer = *peer;
  s->next = k->slots;
  k->slots = s;
  return s;
}

static void slot_gc(lp2p_kad *k, kslot *slot) {
  if (!slot || slot->n_in || slot->n_out) return;
  for (kslot **pp = &k->slots; *pp; pp = &(*pp)->next)
    if (*pp == slot) {
      *pp = slot->next;
      lp2p__pm_free(&k->mem, slot);
      return;
    }
}

static void pump(lp2p_kad *k);

/* ------------------------------------------------------------------------------------------ */
/* outbound requests */

static void req_free(const lp2p_mem *mem, kreq *r) {
  lp2p__pm_free(mem, r->msg);
  lp2p__pm_free(mem, r->buf);
  lp2p__pm_free(mem, r);
}

/* The engine learns the outcome of r (once). */
static void req_report(kreq *r, const uint8_t *bytes, size_t len, int err) {
  if (r->done) return;
  r->done = 1;
  lp2p_kad *k = r->k;
  if (!k) return;
  if (r->slot) {
    r->slot->n_out--;
    kslot *s = r->slot;
    r->slot = NULL;
    /* the next request queued for that peer may go */
    for (kreq *q = k->queued.next; q != &k->queued; q = q->next)
      if (lp2p_peer_id_equal(&q->peer, &s->peer)) {
        list_del(q);
        list_add(&k->reqs, q);
        q->slot = s;
        s->n_out++;
        break;
      }
    slot_gc(k, s);
  }
  kad_on_response(k->e, r->id, bytes, len, err, now_of(k));
}

static void out_open(lp2p_stream *s, const char *protocol, void *ud) {
  kreq *r = ud;
  (void)protocol;
  if (!r->k || r->done) {
    lp2p_stream_reset(s);
    return;
  }
  int rv = lp2p_stream_send_all(s, r->msg, r->len, 1); /* the request, then FIN */
  if (rv < 0) {
    req_report(r, NULL, 0, rv);
    lp2p_stream_reset(s);
  } else if (!r->expect) {
    req_report(r, NULL, 0, 0); /* ADD_PROVIDER: written is done; the stream closes on its own */
  }
  if (r->k) pump(r->k);
}

static void out_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  kreq *r = ud;
  if (!r->k || r->done || !r->expect) {
    if (r->k && !r->done) { /* data where none is expected */
      req_report(r, NULL, 0, LP2P_ERR_PROTO);
      pump(r->k);
    }
    lp2p_stream_reset(s);
    return;
  }
  size_t room = 10 + LP2P_KAD_MAX_MESSAGE;
  if (n > room - r->blen) {
    req_report(r, NULL, 0, LP2P_ERR_TOO_LARGE);
    lp2p_stream_reset(s);
    pump(r->k);
    return;
  }
  if (r->blen + n > r->bcap) {
    size_t cap = r->bcap ? r->bcap : 1024;
    while (cap < r->blen + n) cap *= 2;
    if (cap > room) cap = room;
    uint8_t *nb = lp2p__pm_realloc(&r->k->mem, r->buf, cap);
    if (!nb) {
      req_report(r, NULL, 0, LP2P_ERR_NOMEM);
      lp2p_stream_reset(s);
      pump(r->k);
      return;
    }
    r->buf = nb;
    r->bcap = cap;
  }
  memcpy(r->buf + r->blen, p, n);
  r->blen += n;
  size_t mlen = 0;
  int h = kad_frame_parse(r->buf, r->blen, &mlen);
  if (h < 0) {
    req_report(r, NULL, 0, h);
    lp2p_stream_reset(s);
  } else if (h > 0 && r->blen >= (size_t)h + mlen) {
    lp2p_kad *k = r->k;
    req_report(r, r->buf + h, mlen, 0);
    lp2p_peerstore_mark_seen(lp2p_swarm_peerstore(k->sw), &r->peer);
    lp2p_stream_reset(s); /* one request per stream: done */
  } else {
    return;
  }
  if (r->k) pump(r->k);
}

static void out_close(lp2p_stream *s, int err, void *ud) {
  kreq *r = ud;
  (void)s;
  lp2p_kad *k = r->k;
  if (k) {
    if (!r->done) req_report(r, NULL, 0, err ? err : LP2P_ERR_EOF);
    list_del(r);
    req_free(&k->mem, r);
    pump(k);
  } else {
    req_free(lp2p_swarm_mem(lp2p_stream_swarm(s)), r);
  }
}

static const lp2p_stream_handler out_handler = {
    sizeof(lp2p_stream_handler), out_open, out_data, NULL, NULL, out_close,
};

/* Opens the stream of a request that holds a slot; on a synchronous failure the request is
 * reported and freed. */
static void req_start(lp2p_kad *k, kreq *r) {
  r->started = 1;
  const char *protos[] = {k->proto};
  int rv = lp2p_swarm_open_stream(k->sw, &r->peer, protos, 1, &out_handler, r, &r->s);
  if (rv < 0) {
    req_report(r, NULL, 0, rv);
    list_del(r);
    req_free(&k->mem, r);
  }
}

static void send_action(lp2p_kad *k, const kad_action *a) {
  lp2p_swarm *sw = k->sw;
  lp2p_tstamp now = now_of(k);
  if (a->naddrs) /* where the engine heard of the peer: dialable from the peer store */
    lp2p_peerstore_add_addrs(lp2p_swarm_peerstore(sw), &a->peer, a->addrs, a->naddrs, LP2P_ADDR_SRC_DHT,
                             KAD_DHT_ADDR_TTL_MS);
  if (!lp2p_swarm_is_connected(sw, &a->peer) && lp2p_swarm_peer_addresses(sw, &a->peer, NULL, 0) == 0) {
    /* nowhere to send it (and never through our own peer router) */
    kad_on_response(k->e, a->id, NULL, 0, LP2P_ERR_NOT_CONNECTED, now);
    return;
  }
  kreq *r = lp2p__pm_calloc(&k->mem, sizeof *r);
  uint8_t hdr[10];
  size_t hl = kad_frame_prefix(a->msg_len, hdr);
  if (r) r->msg = lp2p__pm_malloc(&k->mem, hl + a->msg_len);
  kslot *slot = slot_get(k, &a->peer);
  if (!r || !r->msg || !slot) {
    if (r) req_free(&k->mem, r);
    kad_on_response(k->e, a->id, NULL, 0, LP2P_ERR_NOMEM, now);
    return;
  }
  memcpy(r->msg, hdr, hl);
  memcpy(r->msg + hl, a->msg, a->msg_len);
  r->len = hl + a->msg_len;
  r->k = k;
  r->id = a->id;
  r->peer = a->peer;
  r->expect = a->expect_response;
  r->deadline = now + (k->cfg.request_timeout_ms ? k->cfg.request_timeout_ms : KAD_REQUEST_TIMEOUT_MS);
  if (slot->n_out >= k->cfg.max_outbound_per_peer) {
    list_add(&k->queued, r);
    return;
  }
  slot->n_out++;
  r->slot = slot;
  list_add(&k->reqs, r);
  req_start(k, r);
}

/* Requests moved from the queue into reqs but not yet started. */
static void start_promoted(lp2p_kad *k) {
  for (int again = 1; again;) {
    again = 0;
    for (kreq *r = k->reqs.next; r != &k->reqs; r = r->next)
      if (!r->started && !r->done) {
        req_start(k, r);
        again = 1;
        break;
      }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* inbound requests (server) */

static void in_free(lp2p_kad *k, kin *in) {
  const lp2p_mem *mem = k ? &k->mem : lp2p_swarm_mem(lp2p_stream_swarm(in->s));
  lp2p_timer_free(in->idle);
  lp2p__pm_free(mem, in->buf);
  lp2p__pm_free(mem, in);
}

static void in_idle(lp2p_timer *t, void *ud) {
  kin *in = ud;
  (void)t;
  lp2p_stream_reset(in->s);
}

static void in_open(lp2p_stream *s, const char *protocol, void *ud) {
  lp2p_kad *k = ud;
  (void)protocol;
  const lp2p_peer_id *peer = lp2p_stream_peer(s);
  kslot *slot = peer ? slot_get(k, peer) : NULL;
  if (!slot || !k->server || slot->n_in >= k->cfg.max_streams_per_peer) {
    slot_gc(k, slot);
    lp2p_stream_reset(s);
    return;
  }
  kin *in = lp2p__pm_calloc(&k->mem, sizeof *in);
  if (!in || lp2p_timer_new(&in->idle, k->sw, in_idle, in) < 0) {
    lp2p__pm_free(&k->mem, in);
    slot_gc(k, slot);
    lp2p_stream_reset(s);
    return;
  }
  slot->n_in++;
  in->k = k;
  in->s = s;
  in->slot = slot;
  in_list_add(&k->ins, in);
  lp2p_stream_set_user(s, in);
  lp2p_timer_start(in->idle, KAD_IN_IDLE_MS, 0);
}

static void in_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  kin *in = lp2p_stream_user(s);
  (void)ud;
  if (!in || !in->k) return;
  lp2p_kad *k = in->k;
  size_t room = 10 + LP2P_KAD_MAX_MESSAGE;
  if (n > room - in->blen) {
    lp2p_stream_reset(s);
    return;
  }
  if (in->blen + n > in->bcap) {
    size_t cap = in->bcap ? in->bcap : 1024;
    while (cap < in->blen + n) cap *= 2;
    if (cap > room) cap = room;
    if (cap > in->reserved && lp2p_stream_reserve_memory(s, cap - in->reserved) < 0) {
      lp2p_stream_reset(s); /* over the resource limits */
      return;
    }
    if (cap > in->reserved) in->reserved = cap;
    uint8_t *nb = lp2p__pm_realloc(&k->mem, in->buf, cap);
    if (!nb) {
      lp2p_stream_reset(s);
      return;
    }
    in->buf = nb;
    in->bcap = cap;
  }
  memcpy(in->buf + in->blen, p, n);
  in->blen += n;
  for (;;) {
    size_t mlen = 0;
    int h = kad_frame_parse(in->buf, in->blen, &mlen);
    if (h < 0) {
      lp2p_stream_reset(s);
      return;
    }
    if (h == 0 || in->blen < (size_t)h + mlen) return;
    uint8_t *resp = NULL;
    size_t rlen = 0;
    int rv = kad_on_inbound_request(k->e, lp2p_stream_peer(s), 0, in->buf + h, mlen, now_of(k), &resp, &rlen);
    memmove(in->buf, in->buf + h + mlen, in->blen - (size_t)h - mlen);
    in->blen -= (size_t)h + mlen;
    if (rv < 0) {
      lp2p_log(LP2P_LOG_DEBUG, KAD_LOG, "inbound request refused: %s", lp2p_err_name(rv));
      kad_bytes_free(k->e, resp);
      lp2p_stream_reset(s); /* only this stream (and so this peer's request) is dropped */
      pump(k);
      return;
    }
    k->served++;
    lp2p_timer_start(in->idle, KAD_IN_IDLE_MS, 0);
    if (resp) {
      uint8_t hdr[10];
      size_t hl = kad_frame_prefix(rlen, hdr);
      int w = lp2p_stream_send_all(s, hdr, hl, 0);
      if (w == 0) w = lp2p_stream_send_all(s, resp, rlen, 0);
      k->answered_bytes += rlen;
      kad_bytes_free(k->e, resp);
      if (w < 0) {
        lp2p_stream_reset(s);
        pump(k);
        return;
      }
    }
    pump(k);
    if (!in->k) return;
  }
}

static void in_eof(lp2p_stream *s, void *ud) {
  kin *in = lp2p_stream_user(s);
  (void)ud;
  if (!in) return;
  if (in->blen) {
    lp2p_stream_reset(s); /* a truncated request */
    return;
  }
  lp2p_stream_close_write(s); /* after every queued answer */
}

static void in_close(lp2p_stream *s, int err, void *ud) {
  kin *in = lp2p_stream_user(s);
  (void)err;
  (void)ud;
  if (!in) return;
  lp2p_stream_set_user(s, NULL);
  lp2p_kad *k = in->k;
  if (k) {
    in_list_del(in);
    if (in->slot) {
      in->slot->n_in--;
      slot_gc(k, in->slot);
    }
  }
  in_free(k, in);
}

static const lp2p_stream_handler in_handler = {
    sizeof(lp2p_stream_handler), in_open, in_data, in_eof, NULL, in_close,
};

/* ------------------------------------------------------------------------------------------ */
/* results */

static kop *op_find_qid(lp2p_kad *k, uint64_t qid) {
  for (kop *o = k->ops; o; o = o->next)
    if (o->qid == qid) return o;
  return NULL;
}

static void op_unlink(lp2p_kad *k, kop *o) {
  for (kop **pp = &k->ops; *pp; pp = &(*pp)->next)
    if (*pp == o) {
      *pp = o->next;
      return;
    }
}

static void store_peer_addrs(lp2p_kad *k, const kad_peer *p) {
  if (p->naddrs && !lp2p_peer_id_equal(&p->id, lp2p_swarm_local_peer(k->sw)))
    lp2p_peerstore_add_addrs(lp2p_swarm_peerstore(k->sw), &p->id, (const lp2p_multiaddr *const *)p->addrs,
                             p->naddrs, LP2P_ADDR_SRC_DHT, KAD_DHT_ADDR_TTL_MS);
}

static void deliver(lp2p_kad *k, kop *o, const kad_result *r, int err) {
  if (o->purpose == OP_ROUTE) {
    int rv = err;
    if (!rv && r && r->npeers) store_peer_addrs(k, &r->peers[0]);
    if (!rv && !lp2p_swarm_peer_addresses(k->sw, &o->peer, NULL, 0)) rv = LP2P_ERR_NOT_FOUND;
    lp2p_swarm_peer_routed(k->sw, &o->peer, rv);
    return;
  }
  lp2p_kad_result res;
  memset(&res, 0, sizeof res);
  res.struct_size = sizeof res;
  res.kind = (lp2p_kad_query_kind)o->kind;
  res.query_id = o->api_id;
  res.err = err;
  lp2p_kad_peer tmp[KAD_K * 2];
  lp2p_kad_peer *peers = tmp;
  if (r) {
    res.stats.hops = r->stats.hops;
    res.stats.peers_contacted = r->stats.peers_contacted;
    res.stats.requests = r->stats.requests;
    res.stats.failures = r->stats.failures;
    res.stats.duration_ms = r->stats.duration_ms;
    res.value = r->value;
    res.value_len = r->value_len;
    res.stored = r->stored;
    size_t n = r->npeers;
    if (o->kind == LP2P_KAD_Q_FIND_PEER) n = (!err && n) ? 1 : 0;
    if (n > KAD_K * 2) peers = lp2p__pm_malloc(&k->mem, n * sizeof *peers);
    if (!peers) {
      peers = tmp;
      n = KAD_K * 2;
    }
    for (size_t i = 0; i < n; i++) {
      peers[i].peer = r->peers[i].id;
      peers[i].addrs = (const lp2p_multiaddr *const *)r->peers[i].addrs;
      peers[i].n_addrs = r->peers[i].naddrs;
      if (o->kind == LP2P_KAD_Q_FIND_PEER || o->kind == LP2P_KAD_Q_FIND_PROVIDERS)
        store_peer_addrs(k, &r->peers[i]);
    }
    res.peers = peers;
    res.n_peers = n;
  }
  if (o->cb) o->cb(k, &res, o->ud);
  if (peers != tmp) lp2p__pm_free(&k->mem, peers);
}

static void deliver_results(lp2p_kad *k) {
  kad_result r;
  while (kad_next_result(k->e, &r)) {
    kop *o = op_find_qid(k, r.query_id);
    if (!o) continue; /* internal (refresh, republish) */
    op_unlink(k, o);
    int err = o->canceled ? LP2P_ERR_CANCELED : r.status;
    if (o->kind == LP2P_KAD_Q_FIND_PEER && !err && !r.npeers) err = LP2P_ERR_NOT_FOUND;
    deliver(k, o, &r, err);
    lp2p__pm_free(&k->mem, o);
  }
  /* cancelled bootstraps that never reached the engine */
  for (kop *o = k->ops, *n; o; o = n) {
    n = o->next;
    if (o->waiting && o->canceled) {
      op_unlink(k, o);
      deliver(k, o, NULL, LP2P_ERR_CANCELED);
      lp2p__pm_free(&k->mem, o);
    }
  }
}

static void flush_posted(lp2p_swarm *sw, void *arg) {
  (void)sw;
  lp2p_kad *k = arg;
  k->flush_posted = 0;
  pump(k);
}

/* ------------------------------------------------------------------------------------------ */
/* the engine pump */

static void start_waiting_bootstraps(lp2p_kad *k, lp2p_tstamp now) {
  for (kop *o = k->ops; o; o = o->next) {
    if (!o->waiting || o->canceled) continue;
    if (kad_pending_checks(k->e) && now < o->wait_until) continue;
    o->waiting = 0;
    uint64_t qid = 0;
    int rv = kad_bootstrap(k->e, now, &qid);
    if (rv < 0) { /* report through the cancel path with the error */
      o->waiting = 1;
      o->canceled = 1;
      continue;
    }
    o->qid = qid;
  }
}

static void arm_timer(lp2p_kad *k) {
  if (!k->timer) return;
  lp2p_tstamp due = kad_next_deadline(k->e);
  for (kop *o = k->ops; o; o = o->next)
    if (o->waiting && !o->canceled && o->wait_until < due) due = o->wait_until;
  if (due == k->timer_due) return;
  k->timer_due = due;
  if (due == LP2P_TSTAMP_NEVER) {
    lp2p_timer_stop(k->timer);
    return;
  }
  lp2p_tstamp now = now_of(k);
  lp2p_timer_start(k->timer, due > now ? due - now : 0, 0);
}

static void pump(lp2p_kad *k) {
  if (k->detached) return;
  if (k->pumping) { /* re-entered (a stream callback from inside open_stream): run again after */
    k->repump = 1;
    return;
  }
  k->pumping = 1;
  do {
    k->repump = 0;
    start_waiting_bootstraps(k, now_of(k));
    kad_action a;
    while (kad_next_action(k->e, &a)) send_action(k, &a);
    start_promoted(k);
    if (k->in_api) {
      if (!k->flush_posted && lp2p_swarm_post(k->sw, flush_posted, k) == 0) k->flush_posted = 1;
    } else {
      deliver_results(k);
    }
  } while (k->repump && !k->detached);
  k->pumping = 0;
  if (!k->detached) arm_timer(k);
}

/* The request that timed out first (in flight or still queued), or NULL. */
static kreq *next_expired(lp2p_kad *k, lp2p_tstamp now) {
  for (kreq *r = k->reqs.next; r != &k->reqs; r = r->next)
    if (!r->done && now >= r->deadline) return r;
  for (kreq *r = k->queued.next; r != &k->queued; r = r->next)
    if (now >= r->deadline) return r;
  return NULL;
}

static void on_timer(lp2p_timer *t, void *ud) {
  lp2p_kad *k = ud;
  (void)t;
  k->timer_due = LP2P_TSTAMP_NEVER;
  lp2p_tstamp now = now_of(k);
  /* our side of the engine's request timeouts: the stream goes, the engine hears TIMEOUT */
  for (kreq *r; (r = next_expired(k, now));) {
    if (!r->started) { /* still queued, or promoted and not opened yet */
      list_del(r);
      req_report(r, NULL, 0, LP2P_ERR_TIMEOUT);
      req_free(&k->mem, r);
      continue;
    }
    req_report(r, NULL, 0, LP2P_ERR_TIMEOUT);
    if (r->s) lp2p_stream_reset(r->s); /* on_close (deferred) frees r */
  }
  kad_tick(k->e, now);
  pump(k);
}

/* ------------------------------------------------------------------------------------------ */
/* mode and local addresses */

static void update_local_addrs(lp2p_kad *k) {
  const lp2p_multiaddr *la[KAD_MAX_LOCAL_ADDRS];
  size_t n = lp2p_swarm_listen_addrs(k->sw, la, KAD_MAX_LOCAL_ADDRS);
  if (n > KAD_MAX_LOCAL_ADDRS) n = KAD_MAX_LOCAL_ADDRS;
  const lp2p_multiaddr *ex[KAD_MAX_LOCAL_ADDRS];
  size_t m = lp2p_swarm_external_addrs(k->sw, ex, KAD_MAX_LOCAL_ADDRS);
  if (m > KAD_MAX_LOCAL_ADDRS) m = KAD_MAX_LOCAL_ADDRS;
  const lp2p_multiaddr *all[2 * KAD_MAX_LOCAL_ADDRS];
  size_t t = 0;
  for (size_t i = 0; i < m; i++) all[t++] = ex[i];
  for (size_t i = 0; i < n; i++) {
    int dup = 0;
    for (size_t j = 0; j < t && !dup; j++) dup = lp2p_multiaddr_equal(all[j], la[i]);
    if (!dup && lp2p_multiaddr_is_dialable(la[i])) all[t++] = la[i];
  }
  kad_set_local_addrs(k->e, all, t);
}

static void apply_mode(lp2p_kad *k) {
  int server;
  switch (k->cfg.mode) {
    case LP2P_KAD_MODE_CLIENT:
      server = 0;
      break;
    case LP2P_KAD_MODE_AUTO:
      server = lp2p_swarm_external_addrs(k->sw, NULL, 0) > 0 ||
               (k->cfg.auto_lan_server && lp2p_swarm_listen_addrs(k->sw, NULL, 0) > 0);
      break;
    default:
      server = 1;
  }
  if (server == k->server) return;
  if (server) {
    if (lp2p_swarm_set_protocol(k->sw, k->proto, &in_handler, k) < 0) return;
  } else {
    lp2p_swarm_remove_protocol(k->sw, k->proto);
  }
  k->server = server;
  kad_set_client_mode(k->e, !server);
  lp2p_log(LP2P_LOG_DEBUG, KAD_LOG, "mode: %s", server ? "server" : "client");
}

/* ------------------------------------------------------------------------------------------ */
/* persistence: one line per record, "<wall-clock ms when stored> <key hex> <value hex>" */

#define KAD_SAVE_DELAY_MS 1000u

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_persist(void *user, int event, const uint8_t *key, size_t klen, const uint8_t *value, size_t vlen) {
  lp2p_kad *k = user;
  (void)event, (void)key, (void)klen, (void)value, (void)vlen;
  if (k->loading || k->dirty) return;
  k->dirty = 1;
  if (k->save_timer) lp2p_timer_start(k->save_timer, KAD_SAVE_DELAY_MS, 0);
}

typedef struct save_ctx {
  FILE *f;
  uint64_t wall;
} save_ctx;

static void put_hex(FILE *f, const uint8_t *p, size_t n) {
  static const char hx[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    putc(hx[p[i] >> 4], f);
    putc(hx[p[i] & 15], f);
  }
}

static void save_one(void *ud, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, lp2p_tstamp age) {
  save_ctx *c = ud;
  fprintf(c->f, "%llu ", (unsigned long long)(c->wall > age ? c->wall - age : 0));
  put_hex(c->f, key, klen);
  putc(' ', c->f);
  put_hex(c->f, val, vlen);
  putc('\n', c->f);
}

static void save_file(lp2p_kad *k, const char *path, const char *header, int providers);
/* Both files, each rewritten atomically. */
static void save_now(lp2p_kad *k) {
  k->dirty = 0;
  if (!k->store_path) return;
  save_file(k, k->store_path, "# lp2p kad records v1: <stored at, unix ms> <key hex> <value hex>\n", 0);
  if (k->prov_path)
    save_file(k, k->prov_path,
              "# lp2p kad providers v1: <added at, unix ms> <key hex> <provider peer id hex> <addr hex,...|->\n", 1);
}

static void save_prov_one(void *ud, const uint8_t *key, size_t klen, const kad_peer *prov, lp2p_tstamp age) {
  save_ctx *c = ud;
  fprintf(c->f, "%llu ", (unsigned long long)(c->wall > age ? c->wall - age : 0));
  put_hex(c->f, key, klen);
  putc(' ', c->f);
  put_hex(c->f, prov->id.bytes, prov->id.len);
  putc(' ', c->f);
  if (!prov->naddrs) putc('-', c->f);
  for (size_t i = 0; i < prov->naddrs; i++) {
    size_t al = 0;
    const uint8_t *ab = lp2p_multiaddr_bytes(prov->addrs[i], &al);
    if (i) putc(',', c->f);
    put_hex(c->f, ab, al);
  }
  putc('\n', c->f);
}

/* Atomic rewrite of path (lp2p/atomicfile.h), mode 0600: the header line, then the records or providers. */
static void save_file(lp2p_kad *k, const char *path, const char *header, int providers) {
  lp2p_atomic_file *af = NULL;
  FILE *f = lp2p_atomic_file_begin(&af, path) == 0 ? lp2p_atomic_file_stream(af) : NULL;
  if (!f) {
    lp2p_atomic_file_abort(af);
    lp2p_log(LP2P_LOG_WARN, KAD_LOG, "cannot write %s: %s", path, strerror(errno));
    return;
  }
  save_ctx c = {f, wall_ms()};
  fputs(header, f);
  size_t n = providers ? kad_providers_each(k->e, save_prov_one, &c, now_of(k))
                       : kad_records_each(k->e, save_one, &c, now_of(k));
  if (lp2p_atomic_file_commit(af) < 0)
    lp2p_log(LP2P_LOG_WARN, KAD_LOG, "cannot save %s: %s", path, strerror(errno));
  else
    lp2p_log(LP2P_LOG_DEBUG, KAD_LOG, "saved %zu %s to %s", n, providers ? "provider entries" : "records", path);
}

static void on_save_timer(lp2p_timer *t, void *ud) {
  (void)t;
  save_now(ud);
}

static int hex_val(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* hex text [p, p+n) into out (n/2 bytes); 0 or -1 */
static int unhex(const char *p, size_t n, uint8_t *out) {
  if (n % 2) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    int a = hex_val(p[2 * i]), b = hex_val(p[2 * i + 1]);
    if (a < 0 || b < 0) return -1;
    out[i] = (uint8_t)(a << 4 | b);
  }
  return 0;
}

static void load_records(lp2p_kad *k) {
  FILE *f = k->store_path ? fopen(k->store_path, "r") : NULL;
  if (!f) return;
  char *line = NULL;
  size_t cap = 0, loaded = 0, skipped = 0;
  ssize_t len;
  uint64_t wall = wall_ms();
  lp2p_tstamp now = now_of(k);
  uint8_t *buf = NULL;
  k->loading = 1;
  while ((len = getline(&line, &cap, f)) > 0) {
    if (line[0] == '#') continue;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    char *end = NULL;
    unsigned long long at = strtoull(line, &end, 10);
    size_t kh = sp2 ? (size_t)(sp2 - sp1 - 1) : 0, vh = sp2 ? (size_t)(line + len - sp2 - 1) : 0;
    uint8_t *nb = (sp2 && end == sp1 && kh && kh / 2 <= KAD_MAX_KEY && vh / 2 <= KAD_MSG_MAX)
                      ? lp2p__pm_realloc(&k->mem, buf, kh / 2 + vh / 2 + 1)
                      : NULL;
    if (!nb) {
      skipped++;
      continue;
    }
    buf = nb;
    if (unhex(sp1 + 1, kh, buf) < 0 || unhex(sp2 + 1, vh, buf + kh / 2) < 0 ||
        kad_record_restore(k->e, buf, kh / 2, buf + kh / 2, vh / 2, wall > at ? wall - at : 0, now) < 0) {
      skipped++;
      continue;
    }
    loaded++;
  }
  k->loading = 0;
  free(line);
  lp2p__pm_free(&k->mem, buf);
  fclose(f);
  lp2p_log(LP2P_LOG_DEBUG, KAD_LOG, "loaded %zu records from %s (%zu skipped: malformed, expired or refused)", loaded,
           k->store_path, skipped);
}

/* "<added at> <key hex> <peer id hex> <addr hex>,...|-" lines; each entry checked again (peer id,
 * addresses, key length) and keeping its original expiry; malformed or expired lines are skipped. */
static void load_providers(lp2p_kad *k) {
  FILE *f = k->prov_path ? fopen(k->prov_path, "r") : NULL;
  if (!f) return;
  char *line = NULL;
  size_t cap = 0, loaded = 0, skipped = 0;
  ssize_t len;
  uint64_t wall = wall_ms();
  lp2p_tstamp now = now_of(k);
  k->loading = 1;
  while ((len = getline(&line, &cap, f)) > 0) {
    if (line[0] == '#') continue;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    char *f1 = strchr(line, ' '), *f2 = f1 ? strchr(f1 + 1, ' ') : NULL, *f3 = f2 ? strchr(f2 + 1, ' ') : NULL;
    char *end = NULL;
    unsigned long long at = strtoull(line, &end, 10);
    uint8_t key[KAD_MAX_PROVIDER_KEY], idb[LP2P_PEER_ID_MAX_BYTES], ab[256];
    size_t kh = f2 ? (size_t)(f2 - f1 - 1) : 0, ih = f3 ? (size_t)(f3 - f2 - 1) : 0;
    lp2p_multiaddr *addrs[KAD_ANSWER_ADDRS];
    kad_peer prov;
    memset(&prov, 0, sizeof prov);
    prov.addrs = addrs;
    int ok = f3 && end == f1 && kh && kh / 2 <= sizeof key && ih && ih / 2 <= sizeof idb &&
             unhex(f1 + 1, kh, key) == 0 && unhex(f2 + 1, ih, idb) == 0 &&
             lp2p_peer_id_from_bytes(idb, ih / 2, &prov.id) == 0;
    for (char *a = f3 ? f3 + 1 : NULL; ok && a && *a && strcmp(a, "-") != 0;) {
      char *comma = strchr(a, ',');
      size_t ah = comma ? (size_t)(comma - a) : strlen(a);
      lp2p_multiaddr *m = NULL;
      if (ah / 2 > sizeof ab || unhex(a, ah, ab) < 0 || lp2p_multiaddr_from_bytes(&m, ab, ah / 2, NULL, 0) < 0) {
        ok = 0;
        break;
      }
      if (prov.naddrs < KAD_ANSWER_ADDRS) addrs[prov.naddrs++] = m;
      else lp2p_multiaddr_free(m);
      a = comma ? comma + 1 : NULL;
    }
    if (ok && kad_provider_restore(k->e, key, kh / 2, &prov, wall > at ? wall - at : 0, now) == 0) loaded++;
    else skipped++;
    for (size_t i = 0; i < prov.naddrs; i++) lp2p_multiaddr_free(addrs[i]);
  }
  k->loading = 0;
  free(line);
  fclose(f);
  lp2p_log(LP2P_LOG_DEBUG, KAD_LOG, "loaded %zu provider entries from %s (%zu skipped: malformed or expired)", loaded,
           k->prov_path, skipped);
}

/* ------------------------------------------------------------------------------------------ */
/* behaviour */

static int route_fn(lp2p_swarm *sw, const lp2p_peer_id *peer, void *ud);

static int kad_attach(void *self, lp2p_swarm *sw) {
  lp2p_kad *k = self;
  k->sw = sw;
  int rv = lp2p_timer_new(&k->timer, sw, on_timer, k);
  if (rv < 0) return rv;
  if (k->store_path) {
    if ((rv = lp2p_timer_new(&k->save_timer, sw, on_save_timer, k)) < 0) return rv;
    load_records(k);
    load_providers(k);
  }
  update_local_addrs(k);
  apply_mode(k);
  if (k->cfg.peer_router) lp2p_swarm_set_peer_router(sw, route_fn, k);
  return 0;
}

static void kad_on_event(void *self, lp2p_swarm *sw, const lp2p_swarm_event *ev) {
  lp2p_kad *k = self;
  (void)sw;
  lp2p_tstamp now = now_of(k);
  switch (ev->type) {
    case LP2P_SWARM_EV_CONN_ESTABLISHED:
      if (ev->peer) kad_on_peer_connected(k->e, ev->peer, now);
      break;
    case LP2P_SWARM_EV_CONN_CLOSED:
      if (ev->peer) kad_on_peer_disconnected(k->e, ev->peer, now);
      break;
    case LP2P_SWARM_EV_PEER_IDENTIFIED: {
      if (!ev->peer) break;
      int serves = 0;
      for (size_t i = 0; i < ev->n_protocols && !serves; i++)
        serves = ev->protocols[i] && !strcmp(ev->protocols[i], k->proto);
      /* dialable listen addresses only */
      const lp2p_multiaddr *a[KAD_MAX_ADDRS_PER_PEER];
      size_t n = 0;
      for (size_t i = 0; i < ev->n_addrs && n < KAD_MAX_ADDRS_PER_PEER; i++)
        if (ev->addrs[i] && lp2p_multiaddr_is_dialable(ev->addrs[i])) a[n++] = ev->addrs[i];
      kad_on_peer_identified(k->e, ev->peer, a, n, serves, now);
      break;
    }
    case LP2P_SWARM_EV_LISTEN_ADDR_ADDED:
    case LP2P_SWARM_EV_LISTEN_ADDR_REMOVED:
    case LP2P_SWARM_EV_EXTERNAL_ADDR_CONFIRMED:
    case LP2P_SWARM_EV_EXTERNAL_ADDR_EXPIRED:
      update_local_addrs(k);
      apply_mode(k);
      break;
    default:
      return;
  }
  pump(k);
}

static void kad_detach(void *self, lp2p_swarm *sw) {
  lp2p_kad *k = self;
  k->detached = 1; /* no new queries from inside the callbacks below */
  /* every query still running gets its one callback */
  while (k->ops) {
    kop *o = k->ops;
    k->ops = o->next;
    if (o->purpose == OP_USER) deliver(k, o, NULL, LP2P_ERR_CANCELED);
    lp2p__pm_free(&k->mem, o);
  }
  k->detached = 1;
  if (k->cfg.peer_router) lp2p_swarm_set_peer_router(sw, NULL, NULL);
  lp2p_timer_free(k->timer);
  k->timer = NULL;
  if (k->dirty) save_now(k);
  lp2p_timer_free(k->save_timer);
  k->save_timer = NULL;
  /* streams outlive us: orphan their state (their on_close frees it) */
  while (k->reqs.next != &k->reqs) {
    kreq *r = k->reqs.next;
    list_del(r);
    r->k = NULL;
    r->slot = NULL;
    if (r->s) lp2p_stream_reset(r->s);
  }
  while (k->queued.next != &k->queued) {
    kreq *r = k->queued.next;
    list_del(r);
    req_free(&k->mem, r);
  }
  while (k->ins.next != &k->ins) {
    kin *in = k->ins.next;
    in_list_del(in);
    in->k = NULL;
    in->slot = NULL;
    lp2p_timer_free(in->idle);
    in->idle = NULL;
    lp2p_stream_reset(in->s);
  }
}

static void kad_destroy(void *self) {
  lp2p_kad *k = self;
  lp2p_mem m = k->mem;
  while (k->ops) {
    kop *o = k->ops;
    k->ops = o->next;
    lp2p__pm_free(&m, o);
  }
  while (k->slots) {
    kslot *s = k->slots;
    k->slots = s->next;
    lp2p__pm_free(&m, s);
  }
  kad_engine_free(k->e);
  lp2p__pm_free(&m, k->store_path);
  lp2p__pm_free(&m, k->prov_path);
  lp2p__pm_free(&m, k->proto);
  lp2p__pm_free(&m, k);
}

static int kad_keep_alive(void *self, lp2p_swarm *sw, const lp2p_peer_id *peer) {
  lp2p_kad *k = self;
  (void)sw;
  for (kreq *r = k->reqs.next; r != &k->reqs; r = r->next)
    if (lp2p_peer_id_equal(&r->peer, peer)) return 1;
  return 0;
}

static const lp2p_behaviour_vtable kad_vtable = {
    .struct_size = sizeof(lp2p_behaviour_vtable),
    .name = LP2P_KAD_BEHAVIOUR,
    .attach = kad_attach,
    .on_event = kad_on_event,
    .detach = kad_detach,
    .destroy = kad_destroy,
    .keep_alive = kad_keep_alive,
};

void lp2p_kad_config_default(lp2p_kad_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->struct_size = sizeof *cfg;
  cfg->mode = LP2P_KAD_MODE_SERVER;
  cfg->alpha = KAD_ALPHA;
  cfg->beta = KAD_BETA;
  cfg->request_timeout_ms = KAD_REQUEST_TIMEOUT_MS;
  cfg->query_timeout_ms = KAD_QUERY_TIMEOUT_MS;
  cfg->max_streams_per_peer = 32;
  cfg->max_outbound_per_peer = 8;
  cfg->peer_router = 1;
}

int lp2p_kad_add(lp2p_swarm *sw, const lp2p_kad_config *cfg, lp2p_kad **out) {
  if (out) *out = NULL;
  if (!sw) return LP2P_ERR_INVAL;
  if (lp2p_swarm_behaviour(sw, LP2P_KAD_BEHAVIOUR)) return LP2P_ERR_EXISTS;
  const lp2p_mem *mem = lp2p_swarm_mem(sw);
  lp2p_kad *k = lp2p__pm_calloc(mem, sizeof *k);
  if (!k) return LP2P_ERR_NOMEM;
  k->mem = *mem;
  k->sw = sw;
  k->timer_due = LP2P_TSTAMP_NEVER;
  list_init(&k->reqs);
  list_init(&k->queued);
  in_list_init(&k->ins);
  lp2p_kad_config_default(&k->cfg);
  if (cfg) {
    size_t n = cfg->struct_size && cfg->struct_size < sizeof k->cfg ? cfg->struct_size : sizeof k->cfg;
    memcpy(&k->cfg, cfg, n);
    k->cfg.struct_size = sizeof k->cfg;
  }
  lp2p_kad_config *c = &k->cfg;
  if (!c->max_streams_per_peer) c->max_streams_per_peer = 32;
  if (!c->max_outbound_per_peer) c->max_outbound_per_peer = 8;
  const char *proto = c->protocol_id ? c->protocol_id : LP2P_KAD_PROTOCOL_ID;
  if (proto[0] != '/' || strlen(proto) > LP2P_PROTOCOL_ID_MAX || c->mode > LP2P_KAD_MODE_AUTO) {
    lp2p__pm_free(mem, k);
    return LP2P_ERR_INVAL;
  }
  k->proto = lp2p__pm_strdup(mem, proto);
  c->protocol_id = k->proto;
  if (c->data_dir && c->data_dir[0]) {
    size_t dl = strlen(c->data_dir);
    k->store_path = lp2p__pm_malloc(mem, dl + sizeof "/kad-records");
    k->prov_path = lp2p__pm_malloc(mem, dl + sizeof "/kad-providers");
    if (k->store_path) {
      memcpy(k->store_path, c->data_dir, dl);
      memcpy(k->store_path + dl, "/kad-records", sizeof "/kad-records");
    }
    if (k->prov_path) {
      memcpy(k->prov_path, c->data_dir, dl);
      memcpy(k->prov_path + dl, "/kad-providers", sizeof "/kad-providers");
    }
  }
  c->data_dir = NULL;
  kad_config ec;
  memset(&ec, 0, sizeof ec);
  ec.struct_size = sizeof ec;
  ec.client_mode = 1; /* apply_mode switches */
  ec.alpha = c->alpha;
  ec.beta = c->beta;
  ec.disjoint_paths = c->disjoint_paths;
  ec.request_timeout_ms = c->request_timeout_ms;
  ec.query_timeout_ms = c->query_timeout_ms;
  ec.ip_diversity_all = c->ip_diversity_all;
  ec.max_records = c->max_records;
  ec.max_provider_keys = c->max_provider_keys;
  ec.max_providers_per_key = c->max_providers_per_key;
  if (k->store_path) {
    ec.persist = on_persist;
    ec.persist_user = k;
  }
  kad_validator *vals = NULL;
  if (c->n_validators) {
    if (!c->validators) {
      lp2p__pm_free(mem, k->store_path);
      lp2p__pm_free(mem, k->prov_path);
      lp2p__pm_free(mem, k->proto);
      lp2p__pm_free(mem, k);
      return LP2P_ERR_INVAL;
    }
    vals = lp2p__pm_calloc(mem, c->n_validators * sizeof *vals);
    if (!vals) {
      lp2p__pm_free(mem, k->store_path);
      lp2p__pm_free(mem, k->prov_path);
      lp2p__pm_free(mem, k->proto);
      lp2p__pm_free(mem, k);
      return LP2P_ERR_NOMEM;
    }
    for (size_t i = 0; i < c->n_validators; i++) {
      vals[i].ns = c->validators[i].ns;
      vals[i].validate = c->validators[i].validate;
      vals[i].select = c->validators[i].select;
      vals[i].user = c->validators[i].ud;
    }
    ec.validators = vals;
    ec.nvalidators = c->n_validators;
  }
  int rv = k->proto ? kad_engine_new(&k->e, &ec, lp2p_swarm_local_peer(sw), rng_cb, NULL, mem) : LP2P_ERR_NOMEM;
  lp2p__pm_free(mem, vals);
  c->validators = NULL;
  c->n_validators = 0;
  if (rv < 0) {
    lp2p__pm_free(mem, k->store_path);
    lp2p__pm_free(mem, k->prov_path);
    lp2p__pm_free(mem, k->proto);
    lp2p__pm_free(mem, k);
    return rv;
  }
  rv = lp2p_swarm_add_behaviour(sw, &kad_vtable, k); /* destroys k on failure */
  if (rv < 0) return rv;
  if (out) *out = k;
  return 0;
}

lp2p_kad *lp2p_kad_get(const lp2p_swarm *sw) { return sw ? lp2p_swarm_behaviour(sw, LP2P_KAD_BEHAVIOUR) : NULL; }

int lp2p_kad_set_mode(lp2p_kad *kad, lp2p_kad_mode mode) {
  if (!kad || mode > LP2P_KAD_MODE_AUTO) return LP2P_ERR_INVAL;
  kad->cfg.mode = mode;
  apply_mode(kad);
  return 0;
}

int lp2p_kad_is_server(const lp2p_kad *kad) { return kad ? kad->server : 0; }
const char *lp2p_kad_protocol(const lp2p_kad *kad) { return kad ? kad->proto : NULL; }

/* ------------------------------------------------------------------------------------------ */
/* API */

int lp2p_kad_add_address(lp2p_kad *kad, const lp2p_peer_id *peer, const lp2p_multiaddr *const *addrs, size_t n) {
  if (!kad || !peer || !peer->len || (n && !addrs)) return LP2P_ERR_INVAL;
  if (lp2p_peer_id_equal(peer, lp2p_swarm_local_peer(kad->sw))) return LP2P_ERR_INVAL;
  if (n) {
    int rv = lp2p_swarm_add_addresses(kad->sw, peer, addrs, n);
    if (rv < 0) return rv;
  }
  const lp2p_multiaddr *known[KAD_MAX_ADDRS_PER_PEER];
  size_t k = lp2p_swarm_peer_addresses(kad->sw, peer, known, KAD_MAX_ADDRS_PER_PEER);
  if (k > KAD_MAX_ADDRS_PER_PEER) k = KAD_MAX_ADDRS_PER_PEER;
  kad->in_api++;
  int rv = kad_on_peer_identified(kad->e, peer, known, k, 1, now_of(kad));
  pump(kad);
  kad->in_api--;
  return rv;
}

int lp2p_kad_add_bootstrap(lp2p_kad *kad, const char *multiaddr) {
  if (!kad || !multiaddr) return LP2P_ERR_INVAL;
  lp2p_multiaddr *ma = NULL;
  int rv = lp2p_multiaddr_parse(&ma, multiaddr, NULL, 0);
  if (rv < 0) return rv;
  int i = lp2p_multiaddr_find_last(ma, LP2P_MA_P2P);
  lp2p_peer_id id;
  lp2p_multiaddr *base = NULL;
  if (i < 0) {
    rv = LP2P_ERR_INVAL;
  } else {
    uint32_t code;
    const uint8_t *v;
    size_t vl;
    rv = lp2p_multiaddr_component(ma, (size_t)i, &code, &v, &vl);
    if (!rv) rv = lp2p_peer_id_from_bytes(v, vl, &id);
    if (!rv) rv = lp2p_multiaddr_prefix(&base, ma, (size_t)i);
  }
  if (!rv) {
    const lp2p_multiaddr *one = base;
    rv = lp2p_kad_add_address(kad, &id, &one, 1);
  }
  lp2p_multiaddr_free(base);
  lp2p_multiaddr_free(ma);
  return rv;
}

static int start_query(lp2p_kad *k, int kind, int purpose, const uint8_t *key, size_t klen,
                       const kad_query_opts *opts, lp2p_kad_fn cb, void *ud, uint64_t *qid) {
  if (qid) *qid = 0;
  if (k->detached) return LP2P_ERR_STATE;
  kop *o = lp2p__pm_calloc(&k->mem, sizeof *o);
  if (!o) return LP2P_ERR_NOMEM;
  o->kind = kind;
  o->purpose = purpose;
  o->cb = cb;
  o->ud = ud;
  o->api_id = ++k->next_api_id;
  lp2p_tstamp now = now_of(k);
  int rv = 0;
  switch (kind) {
    case LP2P_KAD_Q_BOOTSTRAP:
      o->waiting = 1;
      o->wait_until = now + KAD_BOOTSTRAP_WAIT_MS;
      break;
    case LP2P_KAD_Q_FIND_PEER:
      rv = lp2p_peer_id_from_bytes(key, klen, &o->peer);
      if (!rv) rv = kad_query_start(k->e, KAD_Q_FIND_NODE, key, klen, opts, now, &o->qid);
      break;
    case LP2P_KAD_Q_GET_CLOSEST_PEERS:
      rv = kad_query_start(k->e, KAD_Q_GET_CLOSEST_PEERS, key, klen, opts, now, &o->qid);
      break;
    case LP2P_KAD_Q_GET_VALUE:
      rv = kad_query_start(k->e, KAD_Q_GET_VALUE, key, klen, opts, now, &o->qid);
      break;
    case LP2P_KAD_Q_PUT_VALUE:
      rv = kad_query_start(k->e, KAD_Q_PUT_VALUE, key, klen, opts, now, &o->qid);
      break;
    case LP2P_KAD_Q_PROVIDE:
      update_local_addrs(k);
      rv = kad_provide(k->e, key, klen, now, &o->qid);
      break;
    case LP2P_KAD_Q_FIND_PROVIDERS:
      rv = kad_query_start(k->e, KAD_Q_GET_PROVIDERS, key, klen, opts, now, &o->qid);
      break;
    default:
      rv = LP2P_ERR_INVAL;
  }
  if (rv < 0) {
    lp2p__pm_free(&k->mem, o);
    return rv;
  }
  o->next = k->ops;
  k->ops = o;
  if (qid) *qid = o->api_id;
  k->in_api++;
  pump(k);
  k->in_api--;
  return 0;
}

int lp2p_kad_bootstrap(lp2p_kad *kad, lp2p_kad_fn cb, void *ud, uint64_t *qid) {
  if (!kad) return LP2P_ERR_INVAL;
  return start_query(kad, LP2P_KAD_Q_BOOTSTRAP, OP_USER, NULL, 0, NULL, cb, ud, qid);
}

int lp2p_kad_find_peer(lp2p_kad *kad, const lp2p_peer_id *peer, lp2p_kad_fn cb, void *ud, uint64_t *qid) {
  if (!kad || !peer || !peer->len) return LP2P_ERR_INVAL;
  return start_query(kad, LP2P_KAD_Q_FIND_PEER, OP_USER, peer->bytes, peer->len, NULL, cb, ud, qid);
}

int lp2p_kad_get_closest_peers(lp2p_kad *kad, const uint8_t *key, size_t klen, lp2p_kad_fn cb, void *ud,
                               uint64_t *qid) {
  if (!kad || !key || !klen) return LP2P_ERR_INVAL;
  return start_query(kad, LP2P_KAD_Q_GET_CLOSEST_PEERS, OP_USER, key, klen, NULL, cb, ud, qid);
}

int lp2p_kad_put_value(lp2p_kad *kad, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                       lp2p_kad_fn cb, void *ud, uint64_t *qid) {
  if (!kad || !key || !klen || (vlen && !val)) return LP2P_ERR_INVAL;
  kad_query_opts o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.value = val;
  o.value_len = vlen;
  return start_query(kad, LP2P_KAD_Q_PUT_VALUE, OP_USER, key, klen, &o, cb, ud, qid);
}

int lp2p_kad_get_value(lp2p_kad *kad, const uint8_t *key, size_t klen, unsigned quorum, lp2p_kad_fn cb, void *ud,
                       uint64_t *qid) {
  if (!kad || !key || !klen) return LP2P_ERR_INVAL;
  kad_query_opts o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.quorum = quorum;
  return start_query(kad, LP2P_KAD_Q_GET_VALUE, OP_USER, key, klen, &o, cb, ud, qid);
}

int lp2p_kad_provide(lp2p_kad *kad, const uint8_t *key, size_t klen, lp2p_kad_fn cb, void *ud, uint64_t *qid) {
  if (!kad || !key || !klen) return LP2P_ERR_INVAL;
  return start_query(kad, LP2P_KAD_Q_PROVIDE, OP_USER, key, klen, NULL, cb, ud, qid);
}

int lp2p_kad_find_providers(lp2p_kad *kad, const uint8_t *key, size_t klen, unsigned max, lp2p_kad_fn cb, void *ud,
                            uint64_t *qid) {
  if (!kad || !key || !klen) return LP2P_ERR_INVAL;
  kad_query_opts o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.max_providers = max;
  return start_query(kad, LP2P_KAD_Q_FIND_PROVIDERS, OP_USER, key, klen, &o, cb, ud, qid);
}

int lp2p_kad_cancel(lp2p_kad *kad, uint64_t qid) {
  if (!kad || !qid) return LP2P_ERR_INVAL;
  for (kop *o = kad->ops; o; o = o->next) {
    if (o->api_id != qid || o->purpose != OP_USER) continue;
    if (o->canceled) return LP2P_ERR_NOT_FOUND;
    /* the engine may have finished it already (result not yet delivered): it is reported as
       cancelled all the same */
    if (!o->waiting) kad_query_cancel(kad->e, o->qid, now_of(kad));
    o->canceled = 1;
    kad->in_api++;
    pump(kad);
    kad->in_api--;
    return 0;
  }
  return LP2P_ERR_NOT_FOUND;
}

static int route_fn(lp2p_swarm *sw, const lp2p_peer_id *peer, void *ud) {
  lp2p_kad *k = ud;
  (void)sw;
  if (!kad_table_size(k->e)) return LP2P_ERR_NOT_FOUND;
  return start_query(k, LP2P_KAD_Q_FIND_PEER, OP_ROUTE, peer->bytes, peer->len, NULL, NULL, NULL, NULL);
}

size_t lp2p_kad_routing_table(const lp2p_kad *kad, lp2p_peer_id *out, size_t max) {
  if (!kad) return 0;
  size_t total = 0;
  for (int i = 0; i < KAD_BUCKETS; i++) {
    lp2p_peer_id b[KAD_K];
    size_t n = kad_table_bucket(kad->e, i, b, KAD_K);
    for (size_t j = 0; j < n; j++, total++)
      if (out && total < max) out[total] = b[j];
  }
  return total;
}

size_t lp2p_kad_record_count(const lp2p_kad *kad) { return kad ? kad_record_count(kad->e) : 0; }
size_t lp2p_kad_provider_count(const lp2p_kad *kad, const uint8_t *key, size_t klen) {
  return kad && key ? kad_provider_count(kad->e, key, klen) : 0;
}
uint64_t lp2p_kad_served(const lp2p_kad *kad) { return kad ? kad->served : 0; }

int64_t lp2p_kad_local_value(lp2p_kad *kad, const uint8_t *key, size_t klen, uint8_t *buf, size_t cap) {
  if (!kad || !key || !klen) return LP2P_ERR_INVAL;
  const uint8_t *v;
  size_t vl;
  int rv = kad_record_get(kad->e, key, klen, &v, &vl, now_of(kad));
  if (rv < 0) return rv;
  if (buf && cap) memcpy(buf, v, vl < cap ? vl : cap);
  return (int64_t)vl;
}

int lp2p_kad_pk_record(const lp2p_pubkey *pk, uint8_t *key, size_t kcap, size_t *klen, uint8_t *val, size_t vcap,
                       size_t *vlen) {
  if (!pk || !key || !klen || !val || !vlen) return LP2P_ERR_INVAL;
  lp2p_peer_id id;
  int rv = lp2p_peer_id_from_pubkey(pk, &id);
  if (rv < 0) return rv;
  if (kcap < 4u + id.len) return LP2P_ERR_BUFSIZE;
  memcpy(key, "/pk/", 4);
  memcpy(key + 4, id.bytes, id.len);
  *klen = 4u + id.len;
  rv = lp2p_pubkey_to_protobuf(pk, val, vcap);
  if (rv < 0) return rv;
  *vlen = (size_t)rv;
  return 0;
}
