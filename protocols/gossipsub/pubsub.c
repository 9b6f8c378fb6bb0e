/* protocols/gossipsub/pubsub.c - the gossipsub behaviour: binds the sans-IO router
 * (engine/gossip_router.h) to the swarm through the public API. See lp2p/pubsub.h.
 *
 * Per peer: one outbound stream (ours, carries every RPC we send, with a bounded
 * queue of our own) and the peer's inbound stream (an lpm reader feeding the router).
 * The peer state lives while the connection or any of its streams does. */
#include "lp2p/pubsub.h"

#include <sodium.h>
#include <string.h>

#include "lp2p/log.h"
#include "lp2p/lpm.h"
#include "protocols/gossipsub/engine/gossip_router.h"
#include "protocols/proto_mem.h"

#define PS_LOG "gossipsub"
#define PS_MAX_OPEN_ATTEMPTS 3

enum { OUT_NONE = 0, OUT_OPENING, OUT_OPEN, OUT_FAILED };

typedef struct ps_buf {
  struct ps_buf *next;
  size_t len, off;
  int urgent;
  uint8_t data[];
} ps_buf;

typedef struct ps_peer {
  struct ps_peer *next;
  lp2p_pubsub *ps;
  lp2p_peer_id id;
  int connected;
  lp2p_direction dir;
  int out_state, attempts, unsupported;
  lp2p_stream *out;
  lp2p_stream *in;
  lp2p_lpm_reader *rd; /* for `in` */
  int nstreams;        /* streams whose user pointer is this peer */
  ps_buf *qh, *qt;
  size_t qbytes;
} ps_peer;

typedef struct ps_sub {
  struct ps_sub *next;
  char *topic;
  lp2p_pubsub_message_fn cb;
  void *ud;
} ps_sub;

struct lp2p_pubsub {
  lp2p_mem mem;
  lp2p_swarm *sw;
  lp2p_pubsub_config cfg;
  lp2p_gs *g;
  lp2p_timer *hb;
  ps_peer *peers;
  ps_sub *subs;
  int in_router; /* inside a router call (validate / msg_id may run): API calls refused */
  int draining;
  int fwd_posted, fwd_armed; /* held forwards: a flush is posted / the 0 ms timer armed */
  lp2p_timer *fwd;
  int detached;
  uint64_t rpc_in, rpc_out, rpc_errors, rpc_dropped, published;
};

static const lp2p_stream_handler out_handler;
static const lp2p_stream_handler in_handler;

/* ------------------------------------------------------------------------- */
/* helpers */

void lp2p_pubsub_config_default(lp2p_pubsub_config *c) {
  memset(c, 0, sizeof *c);
  c->struct_size = sizeof *c;
  c->D = 6, c->D_lo = 4, c->D_hi = 12, c->D_lazy = 6, c->D_out = 2;
  c->heartbeat_ms = 1000, c->fanout_ttl_ms = 60000, c->seen_ttl_ms = 120000, c->prune_backoff_ms = 60000;
  c->mcache_len = 5, c->mcache_gossip = 3, c->gossip_factor_pct = 25;
  c->flood_publish = 1;
  c->max_rpc_size = 1 << 20;
  c->max_queue_per_peer = 8u << 20;
  c->px_dial = 1;
  c->scoring = 1;
  c->gossip_threshold = -10, c->publish_threshold = -50, c->graylist_threshold = -80, c->accept_px_threshold = 10;
  c->invalid_weight = -10, c->behaviour_weight = -10;
}

lp2p_pubsub *lp2p_pubsub_get(const lp2p_swarm *sw) { return lp2p_swarm_behaviour(sw, LP2P_PUBSUB_BEHAVIOUR); }

static void log_peer(lp2p_log_level lvl, const lp2p_peer_id *peer, const char *what, int err) {
  if ((int)lvl > (int)lp2p_log_get_level()) return;
  char pb[LP2P_PEER_ID_MAX_TEXT] = "?";
  lp2p_peer_id_to_string(peer, pb, sizeof pb);
  lp2p_log(lvl, PS_LOG, "peer %s: %s%s%s", pb, what, err ? " " : "", err ? lp2p_err_name(err) : "");
}

static int rng(void *ud, uint8_t *buf, size_t n) {
  (void)ud;
  randombytes_buf(buf, n);
  return 0;
}

static ps_peer *peer_find(const lp2p_pubsub *ps, const lp2p_peer_id *id) {
  for (ps_peer *p = ps->peers; p; p = p->next)
    if (lp2p_peer_id_equal(&p->id, id)) return p;
  return NULL;
}

static ps_peer *peer_get(lp2p_pubsub *ps, const lp2p_peer_id *id) {
  ps_peer *p = peer_find(ps, id);
  if (p) return p;
  if (!(p = lp2p__pm_calloc(&ps->mem, sizeof *p))) return NULL;
  p->ps = ps, p->id = *id;
  p->next = ps->peers, ps->peers = p;
  return p;
}

static void queue_clear(lp2p_pubsub *ps, ps_peer *p) {
  while (p->qh) {
    ps_buf *b = p->qh;
    p->qh = b->next;
    lp2p__pm_free(&ps->mem, b);
  }
  p->qt = NULL, p->qbytes = 0;
}

/* Frees p once nothing refers to it any more. */
static void peer_maybe_free(lp2p_pubsub *ps, ps_peer *p) {
  if (p->connected || p->nstreams || p->out || p->in) return;
  for (ps_peer **pp = &ps->peers; *pp; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  queue_clear(ps, p);
  lp2p_lpm_reader_free(p->rd);
  lp2p__pm_free(&ps->mem, p);
}

static void router_drop(lp2p_pubsub *ps, ps_peer *p) {
  if (lp2p_gs_has_peer(ps->g, &p->id)) lp2p_gs_remove_peer(ps->g, &p->id, lp2p_swarm_now(ps->sw));
  queue_clear(ps, p);
}

/* ------------------------------------------------------------------------- */
/* router events */

static void pump(lp2p_pubsub *ps, ps_peer *p) {
  while (p->qh && p->out_state == OUT_OPEN && p->out) {
    ps_buf *b = p->qh;
    int64_t n = lp2p_stream_write(p->out, b->data + b->off, b->len - b->off);
    if (n < 0) {
      log_peer(LP2P_LOG_DEBUG, &p->id, "write failed", (int)n);
      lp2p_stream_reset(p->out);
      return;
    }
    b->off += (size_t)n;
    if (b->off < b->len) return; /* on_writable continues */
    p->qbytes -= b->len;
    p->qh = b->next;
    if (!p->qh) p->qt = NULL;
    lp2p__pm_free(&ps->mem, b);
  }
}

/* Queues one RPC for the peer. An urgent one (IDONTWANT) goes ahead of every queued RPC not yet
 * started (after the other urgent ones). */
static void peer_send(lp2p_pubsub *ps, ps_peer *p, const uint8_t *data, size_t len, int urgent) {
  if (p->qbytes + len > ps->cfg.max_queue_per_peer) {
    ps->rpc_dropped++;
    return;
  }
  ps_buf *b = lp2p__pm_malloc(&ps->mem, sizeof *b + len);
  if (!b) {
    ps->rpc_dropped++;
    return;
  }
  b->next = NULL, b->len = len, b->off = 0, b->urgent = urgent;
  memcpy(b->data, data, len);
  ps_buf **at = &p->qh;
  if (urgent) {
    if (*at && (*at)->off) at = &(*at)->next; /* being written */
    while (*at && (*at)->urgent) at = &(*at)->next;
  } else if (p->qt) {
    at = &p->qt->next;
  }
  b->next = *at, *at = b;
  if (!b->next) p->qt = b;
  p->qbytes += len;
  ps->rpc_out++;
  pump(ps, p);
}

static ps_sub *sub_find(const lp2p_pubsub *ps, const char *topic, size_t n) {
  for (ps_sub *s = ps->subs; s; s = s->next)
    if (strlen(s->topic) == n && !memcmp(s->topic, topic, n)) return s;
  return NULL;
}

static void deliver(lp2p_pubsub *ps, const lp2p_gs_event *ev) {
  ps_sub *s = sub_find(ps, (const char *)ev->msg.topic, ev->msg.topic_len);
  if (!s || !s->cb || ev->msg.topic_len > LP2P_PUBSUB_MAX_TOPIC) return;
  char topic[LP2P_PUBSUB_MAX_TOPIC + 1];
  memcpy(topic, ev->msg.topic, ev->msg.topic_len);
  topic[ev->msg.topic_len] = 0;
  lp2p_peer_id from;
  if (lp2p_peer_id_from_bytes(ev->msg.from, ev->msg.from_len, &from)) return;
  lp2p_pubsub_message m;
  memset(&m, 0, sizeof m);
  m.struct_size = sizeof m;
  m.topic = topic, m.from = &from, m.received_from = &ev->src;
  m.data = ev->msg.data, m.data_len = ev->msg.data_len;
  m.seqno = ev->msg.seqno, m.seqno_len = ev->msg.seqno_len;
  m.id = ev->msg.id, m.id_len = ev->msg.id_len;
  s->cb(ps, &m, s->ud);
}

static void px_dial(lp2p_pubsub *ps, const lp2p_peer_id *peer) {
  if (!ps->cfg.px_dial || lp2p_peer_id_equal(peer, lp2p_swarm_local_peer(ps->sw)) ||
      lp2p_swarm_is_connected(ps->sw, peer))
    return;
  const lp2p_multiaddr *a[1];
  if (lp2p_swarm_peer_addresses(ps->sw, peer, a, 1) == 0) return; /* no signed records: nothing to dial */
  lp2p_swarm_dial(ps->sw, peer, NULL, 0, NULL, NULL);
}

/* Hands every pending router event out. Not nested: a message callback that calls back
 * into the API leaves the new events to this loop. */
static void drain(lp2p_pubsub *ps) {
  if (ps->draining || ps->detached) return;
  ps->draining = 1;
  lp2p_gs_event ev;
  while (lp2p_gs_poll(ps->g, &ev)) {
    if (ev.type == LP2P_GS_EV_SEND) {
      ps_peer *p = peer_find(ps, &ev.peer);
      if (p) peer_send(ps, p, ev.data, ev.len, ev.urgent);
    } else if (ev.type == LP2P_GS_EV_DELIVER) {
      deliver(ps, &ev);
    } else if (ev.type == LP2P_GS_EV_PX) {
      px_dial(ps, &ev.peer);
    }
  }
  ps->draining = 0;
}

/* Held forwards (the router's hold_forwards): what an RPC makes us forward waits for the next
 * loop turn, so that copies and IDONTWANTs that arrive meanwhile (this turn) cancel the forwards
 * that became useless. Two triggers, the first one flushes: a 0 ms timer (the start of the next
 * loop iteration in real time) and a post (the loop's next wake-up; with a manual clock timers
 * wait for the clock, the post does not). */
static void flush_forwards(lp2p_pubsub *ps) {
  if (ps->detached || !lp2p_gs_held_forwards(ps->g)) return;
  ps->in_router = 1;
  lp2p_gs_flush_forwards(ps->g, lp2p_swarm_now(ps->sw));
  ps->in_router = 0;
  drain(ps);
}
static void fwd_posted(lp2p_swarm *sw, void *arg) {
  lp2p_pubsub *ps = arg;
  (void)sw;
  ps->fwd_posted = 0;
  flush_forwards(ps);
}
static void fwd_timer(lp2p_timer *t, void *ud) {
  lp2p_pubsub *ps = ud;
  (void)t;
  ps->fwd_armed = 0;
  flush_forwards(ps);
}
static void hold_check(lp2p_pubsub *ps) {
  if (ps->detached || !lp2p_gs_held_forwards(ps->g)) return;
  if (!ps->fwd_armed && lp2p_timer_start(ps->fwd, 0, 0) == 0) ps->fwd_armed = 1;
  if (!ps->fwd_posted && lp2p_swarm_post(ps->sw, fwd_posted, ps) == 0) ps->fwd_posted = 1;
  if (!ps->fwd_armed && !ps->fwd_posted) flush_forwards(ps); /* cannot wait: send them now */
}

/* ------------------------------------------------------------------------- */
/* streams */

static int proto_version(const char *proto) {
  if (proto && !strcmp(proto, LP2P_PUBSUB_PROTOCOL_V12)) return LP2P_GS_PROTO_V12;
  return proto && !strcmp(proto, LP2P_PUBSUB_PROTOCOL_V10) ? LP2P_GS_PROTO_V10 : LP2P_GS_PROTO_V11;
}

static void router_add(lp2p_pubsub *ps, ps_peer *p, const char *proto) {
  if (lp2p_gs_has_peer(ps->g, &p->id)) return;
  lp2p_tstamp now = lp2p_swarm_now(ps->sw);
  ps->in_router = 1;
  int rv = lp2p_gs_add_peer(ps->g, &p->id, proto_version(proto), p->dir == LP2P_DIR_OUTBOUND, now);
  ps->in_router = 0;
  if (rv) log_peer(LP2P_LOG_WARN, &p->id, "router add failed", rv);
  drain(ps);
}

static void open_out(lp2p_pubsub *ps, ps_peer *p) {
  if (ps->detached || p->out_state == OUT_OPENING || p->out_state == OUT_OPEN || !p->connected) return;
  if (p->unsupported || p->attempts >= PS_MAX_OPEN_ATTEMPTS) return;
  static const char *const protos[] = {LP2P_PUBSUB_PROTOCOL_V12, LP2P_PUBSUB_PROTOCOL_V11, LP2P_PUBSUB_PROTOCOL_V10};
  lp2p_stream *s = NULL;
  p->attempts++;
  int rv = lp2p_swarm_open_stream(ps->sw, &p->id, protos, 3, &out_handler, ps, &s);
  if (rv) {
    log_peer(LP2P_LOG_DEBUG, &p->id, "open stream failed", rv);
    p->out_state = OUT_FAILED;
    return;
  }
  p->out_state = OUT_OPENING, p->out = s, p->nstreams++;
  lp2p_stream_set_user(s, p);
}

static void out_open(lp2p_stream *s, const char *protocol, void *ud) {
  lp2p_pubsub *ps = ud;
  ps_peer *p = lp2p_stream_user(s);
  if (!p || p->out != s) return;
  p->out_state = OUT_OPEN, p->attempts = 0;
  if (p->qh) p->qh->off = 0; /* a frame cut short on a previous stream starts over */
  log_peer(LP2P_LOG_DEBUG, &p->id, protocol, 0);
  router_add(ps, p, protocol);
  pump(ps, p);
}

static void out_data(lp2p_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)d, (void)n, (void)ud;
  (void)s; /* nothing is expected on our outbound stream */
}

static void out_writable(lp2p_stream *s, void *ud) {
  ps_peer *p = lp2p_stream_user(s);
  if (p && p->out == s) pump(ud, p);
}

static void out_close(lp2p_stream *s, int err, void *ud) {
  lp2p_pubsub *ps = ud;
  ps_peer *p = lp2p_stream_user(s);
  if (!p) return;
  p->nstreams--;
  if (p->out == s) {
    p->out = NULL, p->out_state = OUT_FAILED;
    if (err == LP2P_ERR_UNSUPPORTED) p->unsupported = 1;
    log_peer(LP2P_LOG_DEBUG, &p->id, "outbound stream closed", err);
    if (!ps->detached) {
      /* Try again (bounded by attempts; RPCs stay queued); without a stream to the peer the
       * router cannot talk to it. */
      if (p->connected && !p->unsupported) open_out(ps, p);
      if (p->out_state != OUT_OPENING) router_drop(ps, p);
    }
  }
  peer_maybe_free(ps, p);
}

static void in_open(lp2p_stream *s, const char *protocol, void *ud) {
  lp2p_pubsub *ps = ud;
  ps_peer *p = peer_get(ps, lp2p_stream_peer(s));
  if (!p || ps->detached) {
    lp2p_stream_reset(s);
    return;
  }
  lp2p_lpm_reader *rd = NULL;
  if (lp2p_lpm_reader_new(&rd, ps->cfg.max_rpc_size, &ps->mem)) {
    lp2p_stream_reset(s);
    peer_maybe_free(ps, p);
    return;
  }
  if (p->in) {
    log_peer(LP2P_LOG_DEBUG, &p->id, "second inbound stream replaces the first", 0);
    lp2p_stream_reset(p->in); /* its on_close sees p->in != s */
  }
  lp2p_lpm_reader_free(p->rd);
  p->rd = rd, p->in = s, p->nstreams++;
  lp2p_stream_set_user(s, p);
  if (!p->connected && lp2p_swarm_is_connected(ps->sw, &p->id)) p->connected = 1;
  if (p->out_state != OUT_OPEN && p->out_state != OUT_OPENING) {
    p->attempts = 0, p->unsupported = 0;
    open_out(ps, p);
  }
  /* The peer's first RPC (its subscriptions) may arrive before our stream is up: the router
   * knows the peer from now on, what it sends the peer waits in the queue. */
  if (p->out_state == OUT_OPEN || p->out_state == OUT_OPENING) router_add(ps, p, protocol);
}

static void in_data(lp2p_stream *s, const uint8_t *d, size_t n, void *ud) {
  lp2p_pubsub *ps = ud;
  ps_peer *p = lp2p_stream_user(s);
  if (!p || p->in != s || ps->detached) return;
  while (n > 0) {
    size_t used;
    const uint8_t *msg;
    size_t mlen;
    int rv = lp2p_lpm_read(p->rd, d, n, &used, &msg, &mlen);
    if (rv < 0) {
      log_peer(LP2P_LOG_DEBUG, &p->id, "bad frame on inbound stream", rv);
      ps->rpc_errors++;
      lp2p_stream_reset(s);
      return;
    }
    d += used, n -= used;
    if (rv == 1) {
      ps->rpc_in++;
      if (!lp2p_gs_has_peer(ps->g, &p->id)) continue; /* no outbound stream (yet): nothing to answer with */
      ps->in_router = 1;
      int r = lp2p_gs_handle_rpc(ps->g, &p->id, msg, mlen, lp2p_swarm_now(ps->sw));
      ps->in_router = 0;
      if (r && r != LP2P_ERR_NOMEM) {
        ps->rpc_errors++;
        log_peer(LP2P_LOG_DEBUG, &p->id, "rpc refused", r);
      }
      drain(ps);
      hold_check(ps);
      if (p->in != s) return; /* replaced meanwhile */
    }
  }
}

static void in_eof(lp2p_stream *s, void *ud) {
  (void)ud;
  lp2p_stream_close_write(s);
}

static void in_close(lp2p_stream *s, int err, void *ud) {
  lp2p_pubsub *ps = ud;
  ps_peer *p = lp2p_stream_user(s);
  (void)err;
  if (!p) return;
  p->nstreams--;
  if (p->in == s) {
    p->in = NULL;
    lp2p_lpm_reader_free(p->rd);
    p->rd = NULL;
  }
  peer_maybe_free(ps, p);
}

static const lp2p_stream_handler out_handler = {
    .struct_size = sizeof(lp2p_stream_handler),
    .on_open = out_open,
    .on_data = out_data,
    .on_writable = out_writable,
    .on_close = out_close,
};
static const lp2p_stream_handler in_handler = {
    .struct_size = sizeof(lp2p_stream_handler),
    .on_open = in_open,
    .on_data = in_data,
    .on_eof = in_eof,
    .on_close = in_close,
};

/* ------------------------------------------------------------------------- */
/* behaviour */

static uint64_t fnv(const void *data, size_t n) {
  const uint8_t *q = data;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ q[i]) * 1099511628211ull;
  return h;
}

/* P6: peers behind the same public IP share a key; loopback/LAN addresses are never colocated. */
static void set_addr_key(lp2p_pubsub *ps, const lp2p_peer_id *peer, const lp2p_multiaddr *addr) {
  if (!addr || lp2p_multiaddr_scope(addr) != LP2P_MA_SCOPE_PUBLIC || !lp2p_gs_has_peer(ps->g, peer)) return;
  uint32_t code;
  const uint8_t *v;
  size_t vl;
  if (lp2p_multiaddr_component(addr, 0, &code, &v, &vl) || (code != 4 && code != 41)) return;
  lp2p_gs_set_peer_addr_key(ps->g, peer, fnv(v, vl) | 1);
}

static void on_event(void *self, lp2p_swarm *sw, const lp2p_swarm_event *ev) {
  lp2p_pubsub *ps = self;
  (void)sw;
  if (ps->detached || !ev->peer) return;
  if (ev->type == LP2P_SWARM_EV_CONN_ESTABLISHED) {
    ps_peer *p = peer_get(ps, ev->peer);
    if (!p) return;
    p->connected = 1, p->dir = ev->dir, p->attempts = 0, p->unsupported = 0;
    open_out(ps, p);
  } else if (ev->type == LP2P_SWARM_EV_CONN_CLOSED) {
    ps_peer *p = peer_find(ps, ev->peer);
    if (!p) return;
    p->connected = 0;
    router_drop(ps, p);
    drain(ps);
    peer_maybe_free(ps, p);
  } else if (ev->type == LP2P_SWARM_EV_PEER_IDENTIFIED) {
    ps_peer *p = peer_find(ps, ev->peer);
    if (!p || p->out_state == OUT_OPEN || p->out_state == OUT_OPENING) return;
    for (size_t i = 0; i < ev->n_protocols; i++)
      if (!strcmp(ev->protocols[i], LP2P_PUBSUB_PROTOCOL_V12) || !strcmp(ev->protocols[i], LP2P_PUBSUB_PROTOCOL_V11) ||
          !strcmp(ev->protocols[i], LP2P_PUBSUB_PROTOCOL_V10)) {
        p->attempts = 0, p->unsupported = 0;
        open_out(ps, p);
        break;
      }
  }
}

static void heartbeat(lp2p_timer *t, void *ud) {
  lp2p_pubsub *ps = ud;
  (void)t;
  if (ps->detached) return;
  lp2p_tstamp now = lp2p_swarm_now(ps->sw);
  ps->in_router = 1;
  lp2p_gs_tick(ps->g, now);
  ps->in_router = 0;
  drain(ps);
  for (ps_peer *p = ps->peers; p; p = p->next) {
    if (p->connected && p->out_state != OUT_OPEN && p->out_state != OUT_OPENING && !p->unsupported)
      open_out(ps, p);
    if (p->out_state == OUT_OPEN) set_addr_key(ps, &p->id, lp2p_swarm_peer_remote_addr(ps->sw, &p->id));
  }
}

/* Router callbacks: the app's, with the public message type. */
static void to_public(const lp2p_gs_message *gm, char *topic, lp2p_peer_id *from, lp2p_pubsub_message *m) {
  memset(m, 0, sizeof *m);
  m->struct_size = sizeof *m;
  size_t tn = gm->topic_len > LP2P_PUBSUB_MAX_TOPIC ? LP2P_PUBSUB_MAX_TOPIC : gm->topic_len;
  memcpy(topic, gm->topic, tn);
  topic[tn] = 0;
  m->topic = topic;
  if (lp2p_peer_id_from_bytes(gm->from, gm->from_len, from)) memset(from, 0, sizeof *from);
  m->from = from;
  m->data = gm->data, m->data_len = gm->data_len;
  m->seqno = gm->seqno, m->seqno_len = gm->seqno_len;
  m->id = gm->id_len ? gm->id : NULL, m->id_len = gm->id_len;
}

static int gs_msg_id(void *ud, const lp2p_gs_message *gm, uint8_t *out, size_t cap) {
  lp2p_pubsub *ps = ud;
  char topic[LP2P_PUBSUB_MAX_TOPIC + 1];
  lp2p_peer_id from;
  lp2p_pubsub_message m;
  to_public(gm, topic, &from, &m);
  return ps->cfg.msg_id(ps->cfg.ud, &m, out, cap);
}

static lp2p_gs_verdict gs_validate(void *ud, const lp2p_peer_id *src, const lp2p_gs_message *gm) {
  lp2p_pubsub *ps = ud;
  char topic[LP2P_PUBSUB_MAX_TOPIC + 1];
  lp2p_peer_id from;
  lp2p_pubsub_message m;
  to_public(gm, topic, &from, &m);
  m.received_from = src;
  switch (ps->cfg.validate(ps->cfg.ud, &m)) {
    case LP2P_PUBSUB_ACCEPT: return LP2P_GS_ACCEPT;
    case LP2P_PUBSUB_REJECT: return LP2P_GS_REJECT;
    default: return LP2P_GS_IGNORE;
  }
}

static double gs_app_score(void *ud, const lp2p_peer_id *peer) {
  lp2p_pubsub *ps = ud;
  return ps->cfg.app_score(ps->cfg.ud, peer);
}

static int attach(void *self, lp2p_swarm *sw) {
  lp2p_pubsub *ps = self;
  ps->sw = sw;
  const lp2p_pubsub_config *c = &ps->cfg;
  lp2p_gs_config gc;
  lp2p_gs_config_default(&gc);
  gc.mem = &ps->mem;
  gc.key = lp2p_swarm_identity(sw);
  gc.rng = rng;
  if (c->msg_id) gc.msg_id = gs_msg_id, gc.msg_id_ud = ps;
  if (c->validate) gc.validate = gs_validate, gc.validate_ud = ps;
  gc.D = c->D, gc.D_lo = c->D_lo, gc.D_hi = c->D_hi, gc.D_lazy = c->D_lazy, gc.D_out = c->D_out;
  gc.heartbeat_ms = c->heartbeat_ms, gc.fanout_ttl_ms = c->fanout_ttl_ms, gc.seen_ttl_ms = c->seen_ttl_ms;
  gc.prune_backoff_ms = c->prune_backoff_ms;
  gc.mcache_len = c->mcache_len, gc.mcache_gossip = c->mcache_gossip, gc.gossip_factor_pct = c->gossip_factor_pct;
  gc.flood_publish = c->flood_publish;
  gc.limits.max_rpc_size = c->max_rpc_size;
  gc.score.enabled = c->scoring;
  gc.hold_forwards = 1;
  gc.score.mesh_deliveries_weight = 0, gc.score.mesh_failure_weight = 0; /* P3/P3b: need per-topic tuning */
  gc.score.invalid_weight = c->invalid_weight, gc.score.behaviour_weight = c->behaviour_weight;
  gc.score.gossip_threshold = c->gossip_threshold, gc.score.publish_threshold = c->publish_threshold;
  gc.score.graylist_threshold = c->graylist_threshold, gc.score.accept_px_threshold = c->accept_px_threshold;
  if (c->app_score) gc.score.app_score = gs_app_score, gc.score.app_score_ud = ps;
  int rv = lp2p_gs_new(&ps->g, &gc, lp2p_swarm_now(sw));
  if (rv) return rv;
  if ((rv = lp2p_swarm_set_protocol(sw, LP2P_PUBSUB_PROTOCOL_V12, &in_handler, ps)) ||
      (rv = lp2p_swarm_set_protocol(sw, LP2P_PUBSUB_PROTOCOL_V11, &in_handler, ps)) ||
      (rv = lp2p_swarm_set_protocol(sw, LP2P_PUBSUB_PROTOCOL_V10, &in_handler, ps)))
    return rv;
  if ((rv = lp2p_timer_new(&ps->fwd, sw, fwd_timer, ps)) || (rv = lp2p_timer_new(&ps->hb, sw, heartbeat, ps)) ||
      (rv = lp2p_timer_start(ps->hb, c->heartbeat_ms, c->heartbeat_ms)))
    return rv;
  /* Peers connected before we were added. */
  lp2p_peer_id ids[64];
  size_t n = lp2p_swarm_connected_peers(sw, ids, 64);
  for (size_t i = 0; i < n && i < 64; i++) {
    ps_peer *p = peer_get(ps, &ids[i]);
    if (p) p->connected = 1, p->dir = LP2P_DIR_INBOUND, open_out(ps, p);
  }
  return 0;
}

static void detach(void *self, lp2p_swarm *sw) {
  lp2p_pubsub *ps = self;
  ps->detached = 1;
  lp2p_timer_free(ps->hb);
  lp2p_timer_free(ps->fwd);
  ps->hb = ps->fwd = NULL;
  lp2p_swarm_remove_protocol(sw, LP2P_PUBSUB_PROTOCOL_V12);
  lp2p_swarm_remove_protocol(sw, LP2P_PUBSUB_PROTOCOL_V11);
  lp2p_swarm_remove_protocol(sw, LP2P_PUBSUB_PROTOCOL_V10);
  /* Streams close after this (connections torn down): their callbacks only release state. */
}

static void destroy(void *self) {
  lp2p_pubsub *ps = self;
  while (ps->peers) {
    ps_peer *p = ps->peers;
    ps->peers = p->next;
    queue_clear(ps, p);
    lp2p_lpm_reader_free(p->rd);
    lp2p__pm_free(&ps->mem, p);
  }
  while (ps->subs) {
    ps_sub *s = ps->subs;
    ps->subs = s->next;
    lp2p__pm_free(&ps->mem, s->topic);
    lp2p__pm_free(&ps->mem, s);
  }
  lp2p_gs_free(ps->g);
  lp2p_mem mem = ps->mem;
  lp2p__pm_free(&mem, ps);
}

static const lp2p_behaviour_vtable vtable = {
    .struct_size = sizeof(lp2p_behaviour_vtable),
    .name = LP2P_PUBSUB_BEHAVIOUR,
    .attach = attach,
    .on_event = on_event,
    .detach = detach,
    .destroy = destroy,
};

int lp2p_pubsub_add(lp2p_swarm *sw, const lp2p_pubsub_config *cfg, lp2p_pubsub **out) {
  if (out) *out = NULL;
  if (!sw) return LP2P_ERR_INVAL;
  if (lp2p_pubsub_get(sw)) return LP2P_ERR_EXISTS;
  lp2p_pubsub_config c;
  lp2p_pubsub_config_default(&c);
  if (cfg) {
    size_t n = cfg->struct_size < sizeof c ? cfg->struct_size : sizeof c;
    if (n < sizeof(size_t)) return LP2P_ERR_INVAL;
    memcpy(&c, cfg, n);
    c.struct_size = sizeof c;
  }
  if (!c.heartbeat_ms || c.D_lo > c.D || c.D > c.D_hi || !c.mcache_len || c.mcache_gossip > c.mcache_len ||
      c.max_rpc_size < 1024)
    return LP2P_ERR_INVAL;
  const lp2p_mem *m = lp2p_swarm_mem(sw);
  lp2p_pubsub *ps = lp2p__pm_calloc(m, sizeof *ps);
  if (!ps) return LP2P_ERR_NOMEM;
  ps->mem = *m;
  ps->cfg = c;
  int rv = lp2p_swarm_add_behaviour(sw, &vtable, ps);
  if (rv) return rv; /* destroy already called */
  if (out) *out = ps;
  return 0;
}

/* ------------------------------------------------------------------------- */
/* API */

static int topic_ok(const char *topic) {
  size_t n = topic ? strlen(topic) : 0;
  return n > 0 && n <= LP2P_PUBSUB_MAX_TOPIC;
}

int lp2p_pubsub_subscribe(lp2p_pubsub *ps, const char *topic, lp2p_pubsub_message_fn cb, void *ud) {
  if (!ps || !topic_ok(topic)) return LP2P_ERR_INVAL;
  if (ps->in_router || ps->detached) return LP2P_ERR_STATE;
  ps_sub *s = sub_find(ps, topic, strlen(topic));
  if (!s) {
    if (!(s = lp2p__pm_calloc(&ps->mem, sizeof *s))) return LP2P_ERR_NOMEM;
    if (!(s->topic = lp2p__pm_strdup(&ps->mem, topic))) {
      lp2p__pm_free(&ps->mem, s);
      return LP2P_ERR_NOMEM;
    }
    ps->in_router = 1;
    int rv = lp2p_gs_subscribe(ps->g, (const uint8_t *)topic, strlen(topic), lp2p_swarm_now(ps->sw));
    ps->in_router = 0;
    if (rv) {
      lp2p__pm_free(&ps->mem, s->topic);
      lp2p__pm_free(&ps->mem, s);
      drain(ps);
      return rv;
    }
    s->next = ps->subs, ps->subs = s;
  }
  s->cb = cb, s->ud = ud;
  drain(ps);
  return 0;
}

int lp2p_pubsub_unsubscribe(lp2p_pubsub *ps, const char *topic) {
  if (!ps || !topic_ok(topic)) return LP2P_ERR_INVAL;
  if (ps->in_router || ps->detached) return LP2P_ERR_STATE;
  for (ps_sub **pp = &ps->subs; *pp; pp = &(*pp)->next)
    if (!strcmp((*pp)->topic, topic)) {
      ps_sub *s = *pp;
      *pp = s->next;
      lp2p__pm_free(&ps->mem, s->topic);
      lp2p__pm_free(&ps->mem, s);
      break;
    }
  ps->in_router = 1;
  int rv = lp2p_gs_unsubscribe(ps->g, (const uint8_t *)topic, strlen(topic), lp2p_swarm_now(ps->sw));
  ps->in_router = 0;
  drain(ps);
  return rv;
}

int lp2p_pubsub_subscribed(const lp2p_pubsub *ps, const char *topic) {
  return ps && topic && sub_find(ps, topic, strlen(topic)) != NULL;
}

int lp2p_pubsub_publish(lp2p_pubsub *ps, const char *topic, const uint8_t *data, size_t len, uint8_t *id_out,
                        size_t id_cap, size_t *n_peers) {
  if (n_peers) *n_peers = 0;
  if (!ps || !topic_ok(topic) || (!data && len)) return LP2P_ERR_INVAL;
  if (ps->in_router || ps->detached) return LP2P_ERR_STATE;
  lp2p_gs_stats before, after;
  lp2p_gs_get_stats(ps->g, &before);
  ps->in_router = 1;
  int rv = lp2p_gs_publish(ps->g, (const uint8_t *)topic, strlen(topic), data, len, lp2p_swarm_now(ps->sw), id_out,
                           id_cap);
  ps->in_router = 0;
  lp2p_gs_get_stats(ps->g, &after);
  if (n_peers) *n_peers = (size_t)(after.forwarded - before.forwarded);
  if (rv > 0) ps->published++;
  drain(ps);
  return rv;
}

size_t lp2p_pubsub_topic_peers(const lp2p_pubsub *ps, const char *topic, lp2p_peer_id *out, size_t max) {
  if (!ps || !topic) return 0;
  return lp2p_gs_topic_peers(ps->g, (const uint8_t *)topic, strlen(topic), out, max);
}

size_t lp2p_pubsub_mesh_peers(const lp2p_pubsub *ps, const char *topic, lp2p_peer_id *out, size_t max) {
  if (!ps || !topic) return 0;
  return lp2p_gs_mesh_peers(ps->g, (const uint8_t *)topic, strlen(topic), out, max);
}

size_t lp2p_pubsub_peers(const lp2p_pubsub *ps, lp2p_peer_id *out, size_t max) {
  return ps ? lp2p_gs_peers(ps->g, out, max) : 0;
}

int lp2p_pubsub_peer_score(const lp2p_pubsub *ps, const lp2p_peer_id *peer, double *out) {
  if (!ps || !peer || !out) return LP2P_ERR_INVAL;
  return lp2p_gs_peer_score(ps->g, peer, lp2p_swarm_now(ps->sw), out);
}

void lp2p_pubsub_get_stats(const lp2p_pubsub *ps, lp2p_pubsub_stats *out) {
  memset(out, 0, sizeof *out);
  if (!ps) return;
  lp2p_gs_stats st;
  lp2p_gs_get_stats(ps->g, &st);
  out->delivered = st.delivered, out->duplicates = st.duplicates, out->rejected = st.rejected;
  out->ignored = st.ignored, out->invalid_sig = st.invalid_sig, out->graylisted = st.graylisted;
  out->broken_promises = st.broken_promises;
  out->rpc_in = ps->rpc_in, out->rpc_out = ps->rpc_out, out->rpc_errors = ps->rpc_errors;
  out->rpc_dropped = ps->rpc_dropped, out->published = ps->published;
}
