/* protocols/request_response/reqresp.c - generic request-response behaviour
 * (one stream per request, bodies delimited by EOF), built only on the public
 * swarm API. See lp2p/reqresp.h.
 *
 * Outcome rule: every request object reports exactly once (o->done / in->done).
 * Failures found by our own actions (timeout, too large, send error) are
 * recorded in forced/forced_err and the stream is reset; the outcome is then
 * reported from the stream's on_close, so that nothing is reported from inside
 * an app call (lp2p_reqresp_respond / _drop / _send). */
#include "lp2p/reqresp.h"

#include "protocols/proto_mem.h"

#include <stdlib.h>
#include <string.h>

typedef struct rr_out rr_out;
typedef struct rr_in rr_in;

typedef struct rr_slot { /* per-peer counters and the outbound queue */
  struct rr_slot *next;
  lp2p_peer_id peer;
  uint32_t n_in, n_out;
  rr_out *qhead, *qtail;
} rr_slot;

struct lp2p_reqresp {
  lp2p_mem mem;
  lp2p_swarm *sw;
  lp2p_reqresp_config cfg;
  char *protos[LP2P_REQRESP_MAX_PROTOCOLS];
  size_t n_protos;
  rr_slot *slots;
  rr_out *outs; /* every outbound request without final release (doubly linked) */
  uint64_t next_out_id, next_in_id;
  size_t n_out_pending, n_in_alive;
  int detached;
};

struct rr_out {
  rr_out *prev, *next; /* rr->outs */
  rr_out *qnext;       /* slot queue */
  lp2p_reqresp *rr;
  rr_slot *slot;
  uint64_t id;
  int proto; /* index, -1 = all */
  uint8_t *req;
  size_t nreq;
  lp2p_stream *s;
  lp2p_timer *timer;
  uint8_t *buf;
  size_t len, cap;
  int queued, started, opened, done;
  int forced, forced_err; /* forced: outcome + 1 */
};

struct rr_in {
  lp2p_reqresp *rr;
  rr_slot *slot;
  uint64_t id;
  lp2p_stream *s;
  lp2p_timer *timer;
  uint8_t *buf;
  size_t len, cap;
  lp2p_reqresp_channel *ch;
  int got_req, responded, omitted, done;
  int forced, forced_err;
};

struct lp2p_reqresp_channel {
  lp2p_mem mem;
  rr_in *in; /* NULL once the request ended */
};

static const char *const k_outcome_names[] = {"response",          "dial-failure",         "timeout",
                                              "connection-closed", "unsupported-protocol", "too-large",
                                              "response-omission", "io",           "resource-limit"};

const char *lp2p_reqresp_outcome_name(lp2p_reqresp_outcome o) {
  return (unsigned)o < sizeof k_outcome_names / sizeof *k_outcome_names ? k_outcome_names[o] : "unknown";
}

void lp2p_reqresp_config_default(lp2p_reqresp_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->struct_size = sizeof *cfg;
  cfg->inbound = 1;
  cfg->max_request_size = 1u << 20;
  cfg->max_response_size = 10u << 20;
  cfg->timeout_ms = 10000;
  cfg->max_inbound_per_peer = 100;
  cfg->max_outbound_per_peer = 100;
}

/* ------------------------------------------------------------------------- */
/* slots */

static rr_slot *slot_get(lp2p_reqresp *rr, const lp2p_peer_id *peer) {
  for (rr_slot *p = rr->slots; p; p = p->next)
    if (lp2p_peer_id_equal(&p->peer, peer)) return p;
  rr_slot *p = lp2p__pm_calloc(&rr->mem, sizeof *p);
  if (!p) return NULL;
  p->peer = *peer;
  p->next = rr->slots;
  rr->slots = p;
  return p;
}

static void slot_maybe_free(lp2p_reqresp *rr, rr_slot *slot) {
  if (!slot || slot->n_in || slot->n_out || slot->qhead) return;
  for (rr_slot **pp = &rr->slots; *pp; pp = &(*pp)->next) {
    if (*pp == slot) {
      *pp = slot->next;
      lp2p__pm_free(&rr->mem, slot);
      return;
    }
  }
}

/* Body bytes from the peer: the buffer's capacity is charged to the resource manager
 * (lp2p_stream_reserve_body: protocol, connection, peer and node scopes) as it grows; LP2P_ERR_LIMIT
 * when a scope is full. */
static int buf_append(const lp2p_mem *m, lp2p_stream *s, uint8_t **buf, size_t *len, size_t *cap, size_t limit,
                      const uint8_t *p, size_t n) {
  if (*len + n > *cap) {
    size_t nc = *cap ? *cap : 1024;
    while (nc < *len + n) nc *= 2;
    if (nc > limit) nc = limit; /* (the caller checked len + n <= limit): a 10 MiB body holds 10 MiB */
    int rv = lp2p_stream_reserve_body(s, nc - *cap);
    if (rv < 0) return rv;
    uint8_t *nb = lp2p__pm_realloc(m, *buf, nc);
    if (!nb) {
      lp2p_stream_release_body(s, nc - *cap);
      return LP2P_ERR_NOMEM;
    }
    *buf = nb;
    *cap = nc;
  }
  memcpy(*buf + *len, p, n);
  *len += n;
  return 0;
}

static void emit(lp2p_reqresp *rr, lp2p_reqresp_event_type type, uint64_t id, const lp2p_peer_id *peer,
                 const char *protocol, lp2p_reqresp_outcome outcome, int err, const uint8_t *data, size_t len,
                 lp2p_reqresp_channel *ch) {
  lp2p_reqresp_event ev;
  memset(&ev, 0, sizeof ev);
  ev.struct_size = sizeof ev;
  ev.type = type;
  ev.request_id = id;
  ev.peer = peer;
  ev.protocol = protocol;
  ev.outcome = outcome;
  ev.err = outcome == LP2P_REQRESP_RESPONSE ? 0 : err;
  ev.data = data;
  ev.len = len;
  ev.channel = ch;
  rr->cfg.on_event(rr, &ev, rr->cfg.ud);
}

/* The outcome of a stream that closed with err without a decision of ours. */
static lp2p_reqresp_outcome classify(const lp2p_reqresp *rr, lp2p_stream *s, const lp2p_peer_id *peer, int opened,
                                     int err) {
  if (err == LP2P_ERR_UNSUPPORTED || err == LP2P_ERR_DENIED) return LP2P_REQRESP_UNSUPPORTED_PROTOCOL;
  if (err == LP2P_ERR_TIMEOUT && lp2p_stream_id(s)) return LP2P_REQRESP_TIMEOUT;
  if (!opened && !lp2p_stream_id(s)) { /* never reached a connection */
    if (err == LP2P_ERR_CANCELED) return LP2P_REQRESP_CONNECTION_CLOSED;
    if (err == LP2P_ERR_LIMIT || err == LP2P_ERR_NOMEM) return LP2P_REQRESP_IO;
    return LP2P_REQRESP_DIAL_FAILURE;
  }
  switch (err) {
    case LP2P_ERR_EOF:
    case LP2P_ERR_CONNRESET:
    case LP2P_ERR_GOAWAY:
    case LP2P_ERR_CLOSED:
    case LP2P_ERR_CANCELED:
    case LP2P_ERR_NOT_CONNECTED:
    case LP2P_ERR_TIMEOUT:
      return LP2P_REQRESP_CONNECTION_CLOSED;
    case LP2P_ERR_RESET:
      return LP2P_REQRESP_IO;
    default:
      return lp2p_swarm_is_connected(rr->sw, peer) ? LP2P_REQRESP_IO : LP2P_REQRESP_CONNECTION_CLOSED;
  }
}

/* ------------------------------------------------------------------------- */
/* outbound */

static int out_start(rr_out *o);

static void out_unlink_queue(rr_out *o) {
  rr_slot *sl = o->slot;
  rr_out *prev = NULL;
  for (rr_out *q = sl->qhead; q; prev = q, q = q->qnext) {
    if (q != o) continue;
    if (prev)
      prev->qnext = q->qnext;
    else
      sl->qhead = q->qnext;
    if (sl->qtail == q) sl->qtail = prev;
    break;
  }
  o->qnext = NULL;
  o->queued = 0;
}

static void out_report(rr_out *o, lp2p_reqresp_outcome oc, int err) {
  if (o->done) return;
  o->done = 1;
  lp2p_reqresp *rr = o->rr;
  rr->n_out_pending--;
  const char *proto = o->s ? lp2p_stream_protocol(o->s) : NULL;
  int ok = oc == LP2P_REQRESP_RESPONSE;
  emit(rr, LP2P_REQRESP_EV_OUTBOUND, o->id, &o->slot->peer, proto, oc, err, ok ? o->buf : NULL, ok ? o->len : 0,
       NULL);
}

/* Last step for o: no stream (any more), outcome reported. drain: start the
 * next queued requests to the peer and free its slot when unused. */
static void out_release(rr_out *o, int drain) {
  lp2p_reqresp *rr = o->rr;
  rr_slot *sl = o->slot;
  if (o->queued) out_unlink_queue(o);
  if (o->started) sl->n_out--;
  if (o->prev)
    o->prev->next = o->next;
  else
    rr->outs = o->next;
  if (o->next) o->next->prev = o->prev;
  lp2p_timer_free(o->timer);
  lp2p__pm_free(&rr->mem, o->req);
  lp2p__pm_free(&rr->mem, o->buf);
  lp2p__pm_free(&rr->mem, o);
  if (!drain) return;
  /* the next queued requests to that peer */
  while (!rr->detached && sl->qhead && (!rr->cfg.max_outbound_per_peer || sl->n_out < rr->cfg.max_outbound_per_peer)) {
    rr_out *q = sl->qhead;
    out_unlink_queue(q);
    int rv = out_start(q);
    if (rv < 0) {
      out_report(q, LP2P_REQRESP_IO, rv);
      out_release(q, 0);
    }
  }
  slot_maybe_free(rr, sl);
}

static void out_timeout(lp2p_timer *t, void *ud) {
  rr_out *o = ud;
  (void)t;
  if (o->done) return;
  if (!o->s) { /* still queued */
    out_report(o, LP2P_REQRESP_TIMEOUT, LP2P_ERR_TIMEOUT);
    out_release(o, 1);
    return;
  }
  o->forced = LP2P_REQRESP_TIMEOUT + 1;
  o->forced_err = LP2P_ERR_TIMEOUT;
  lp2p_stream_reset(o->s);
}

static void out_fail(rr_out *o, lp2p_reqresp_outcome oc, int err) {
  if (!o->forced) {
    o->forced = (int)oc + 1;
    o->forced_err = err;
  }
  lp2p_stream_reset(o->s);
}

static void out_open(lp2p_stream *s, const char *protocol, void *ud) {
  rr_out *o = ud;
  (void)protocol;
  o->opened = 1;
  int rv = lp2p_stream_send_all(s, o->req, o->nreq, 1); /* the request, then FIN */
  if (rv < 0) out_fail(o, LP2P_REQRESP_IO, rv);
  lp2p__pm_free(&o->rr->mem, o->req); /* send_all copied what it did not send */
  o->req = NULL;
}

static void out_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  rr_out *o = ud;
  (void)s;
  if (o->done || o->forced) return;
  if (n > o->rr->cfg.max_response_size - o->len) {
    out_fail(o, LP2P_REQRESP_TOO_LARGE, LP2P_ERR_TOO_LARGE);
    return;
  }
  int rv = buf_append(&o->rr->mem, s, &o->buf, &o->len, &o->cap, o->rr->cfg.max_response_size, p, n);
  if (rv < 0) out_fail(o, rv == LP2P_ERR_LIMIT ? LP2P_REQRESP_RESOURCE_LIMIT : LP2P_REQRESP_IO, rv);
}

static void out_eof(lp2p_stream *s, void *ud) {
  rr_out *o = ud;
  (void)s;
  if (o->done || o->forced) return;
  if (!o->len)
    out_report(o, LP2P_REQRESP_RESPONSE_OMISSION, LP2P_ERR_EOF);
  else
    out_report(o, LP2P_REQRESP_RESPONSE, 0);
  /* the app had the body: release it now, not when the stream closes */
  lp2p_stream_release_body(s, o->cap);
  lp2p__pm_free(&o->rr->mem, o->buf);
  o->buf = NULL;
  o->len = o->cap = 0;
}

static void out_close(lp2p_stream *s, int err, void *ud) {
  rr_out *o = ud;
  if (!o->done) {
    if (o->forced)
      out_report(o, (lp2p_reqresp_outcome)(o->forced - 1), o->forced_err);
    else if (!err)
      out_report(o, LP2P_REQRESP_IO, LP2P_ERR_EOF);
    else
      out_report(o, classify(o->rr, s, &o->slot->peer, o->opened, err), err);
  }
  o->s = NULL;
  out_release(o, 1);
}

static const lp2p_stream_handler out_handler = {
    sizeof(lp2p_stream_handler), out_open, out_data, out_eof, NULL, out_close,
};

/* Opens o's stream (counted in its slot). On a sync error o is left without stream, not counted. */
static int out_start(rr_out *o) {
  lp2p_reqresp *rr = o->rr;
  const char *one[1];
  const char *const *protos = (const char *const *)rr->protos;
  size_t n = rr->n_protos;
  if (o->proto >= 0) {
    one[0] = rr->protos[o->proto];
    protos = one;
    n = 1;
  }
  o->started = 1;
  o->slot->n_out++;
  int rv = lp2p_swarm_open_stream(rr->sw, &o->slot->peer, protos, n, &out_handler, o, &o->s);
  if (rv < 0) {
    o->s = NULL;
    o->started = 0;
    o->slot->n_out--;
  }
  return rv;
}

int lp2p_reqresp_send(lp2p_reqresp *rr, const lp2p_peer_id *peer, const char *protocol, const uint8_t *req,
                      size_t n, uint64_t *request_id) {
  if (!rr || !peer || !peer->len || !req || !n) return LP2P_ERR_INVAL;
  if (rr->detached) return LP2P_ERR_STATE;
  if (lp2p_peer_id_equal(peer, lp2p_swarm_local_peer(rr->sw))) return LP2P_ERR_INVAL;
  if (n > rr->cfg.max_request_size) return LP2P_ERR_TOO_LARGE;
  int pi = -1;
  if (protocol) {
    for (size_t i = 0; i < rr->n_protos; i++)
      if (!strcmp(rr->protos[i], protocol)) pi = (int)i;
    if (pi < 0) return LP2P_ERR_INVAL;
  }
  rr_slot *sl = slot_get(rr, peer);
  if (!sl) return LP2P_ERR_NOMEM;
  rr_out *o = lp2p__pm_calloc(&rr->mem, sizeof *o);
  uint8_t *copy = o ? lp2p__pm_malloc(&rr->mem, n) : NULL;
  int rv = copy ? lp2p_timer_new(&o->timer, rr->sw, out_timeout, o) : LP2P_ERR_NOMEM;
  if (rv < 0) {
    lp2p__pm_free(&rr->mem, copy);
    lp2p__pm_free(&rr->mem, o);
    slot_maybe_free(rr, sl);
    return rv;
  }
  memcpy(copy, req, n);
  o->rr = rr;
  o->slot = sl;
  o->id = ++rr->next_out_id;
  o->proto = pi;
  o->req = copy;
  o->nreq = n;
  if (!rr->cfg.max_outbound_per_peer || sl->n_out < rr->cfg.max_outbound_per_peer) {
    rv = out_start(o);
    if (rv < 0) {
      lp2p_timer_free(o->timer);
      lp2p__pm_free(&rr->mem, copy);
      lp2p__pm_free(&rr->mem, o);
      slot_maybe_free(rr, sl);
      return rv;
    }
  } else {
    o->queued = 1;
    if (sl->qtail)
      sl->qtail->qnext = o;
    else
      sl->qhead = o;
    sl->qtail = o;
  }
  o->next = rr->outs;
  if (rr->outs) rr->outs->prev = o;
  rr->outs = o;
  rr->n_out_pending++;
  if (rr->cfg.timeout_ms) lp2p_timer_start(o->timer, rr->cfg.timeout_ms, 0);
  if (request_id) *request_id = o->id;
  return 0;
}

/* ------------------------------------------------------------------------- */
/* inbound */

static void in_report(rr_in *in, lp2p_reqresp_outcome oc, int err) {
  if (in->done) return;
  in->done = 1;
  if (in->ch) { /* the app still holds the channel: it now only frees */
    in->ch->in = NULL;
    in->ch = NULL;
  }
  emit(in->rr, LP2P_REQRESP_EV_INBOUND, in->id, lp2p_stream_peer(in->s), lp2p_stream_protocol(in->s), oc, err,
       NULL, 0, NULL);
}

static void in_fail(rr_in *in, lp2p_reqresp_outcome oc, int err) {
  if (!in->forced) {
    in->forced = (int)oc + 1;
    in->forced_err = err;
  }
  if (in->ch) {
    in->ch->in = NULL;
    in->ch = NULL;
  }
  lp2p_stream_reset(in->s);
}

static void in_timeout(lp2p_timer *t, void *ud) {
  rr_in *in = ud;
  (void)t;
  if (!in->done) in_fail(in, LP2P_REQRESP_TIMEOUT, LP2P_ERR_TIMEOUT);
}

static void in_open(lp2p_stream *s, const char *protocol, void *ud) {
  lp2p_reqresp *rr = ud;
  (void)protocol;
  const lp2p_peer_id *peer = lp2p_stream_peer(s);
  rr_slot *sl = peer ? slot_get(rr, peer) : NULL;
  rr_in *in = NULL;
  if (!sl || (rr->cfg.max_inbound_per_peer && sl->n_in >= rr->cfg.max_inbound_per_peer) ||
      !(in = lp2p__pm_calloc(&rr->mem, sizeof *in)) || lp2p_timer_new(&in->timer, rr->sw, in_timeout, in) < 0) {
    int err = sl && in ? LP2P_ERR_NOMEM : sl ? LP2P_ERR_LIMIT : LP2P_ERR_NOMEM;
    lp2p__pm_free(&rr->mem, in);
    if (sl) slot_maybe_free(rr, sl);
    lp2p_stream_reset(s); /* on_close finds no user state */
    if (peer)
      emit(rr, LP2P_REQRESP_EV_INBOUND, ++rr->next_in_id, peer, lp2p_stream_protocol(s), LP2P_REQRESP_IO, err,
           NULL, 0, NULL);
    return;
  }
  sl->n_in++;
  in->rr = rr;
  in->slot = sl;
  in->s = s;
  in->id = ++rr->next_in_id;
  rr->n_in_alive++;
  lp2p_stream_set_user(s, in);
  if (rr->cfg.timeout_ms) lp2p_timer_start(in->timer, rr->cfg.timeout_ms, 0);
}

static void in_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  rr_in *in = lp2p_stream_user(s);
  (void)ud;
  if (!in || in->done || in->forced) return;
  if (in->got_req) { /* bytes after the FIN cannot happen; defensive */
    in_fail(in, LP2P_REQRESP_IO, LP2P_ERR_PROTO);
    return;
  }
  if (n > in->rr->cfg.max_request_size - in->len) {
    in_fail(in, LP2P_REQRESP_TOO_LARGE, LP2P_ERR_TOO_LARGE);
    return;
  }
  int rv = buf_append(&in->rr->mem, s, &in->buf, &in->len, &in->cap, in->rr->cfg.max_request_size, p, n);
  if (rv < 0) in_fail(in, rv == LP2P_ERR_LIMIT ? LP2P_REQRESP_RESOURCE_LIMIT : LP2P_REQRESP_IO, rv);
}

static void in_eof(lp2p_stream *s, void *ud) {
  rr_in *in = lp2p_stream_user(s);
  (void)ud;
  if (!in || in->done || in->forced || in->got_req) return;
  in->got_req = 1;
  lp2p_reqresp_channel *ch = lp2p__pm_calloc(&in->rr->mem, sizeof *ch);
  if (!ch) {
    in_fail(in, LP2P_REQRESP_IO, LP2P_ERR_NOMEM);
    return;
  }
  ch->mem = in->rr->mem;
  ch->in = in;
  in->ch = ch;
  uint8_t *body = in->buf;
  size_t len = in->len, cap = in->cap;
  in->buf = NULL;
  in->len = in->cap = 0;
  emit(in->rr, LP2P_REQRESP_EV_REQUEST, in->id, lp2p_stream_peer(s), lp2p_stream_protocol(s),
       LP2P_REQRESP_RESPONSE, 0, body ? body : (const uint8_t *)"", len, ch);
  lp2p__pm_free(&in->rr->mem, body);
  lp2p_stream_release_body(s, cap);
}

static void in_close(lp2p_stream *s, int err, void *ud) {
  rr_in *in = lp2p_stream_user(s);
  (void)ud;
  if (!in) return;
  if (!in->done) {
    if (in->forced)
      in_report(in, (lp2p_reqresp_outcome)(in->forced - 1), in->forced_err);
    else if (!err && in->responded)
      in_report(in, LP2P_REQRESP_RESPONSE, 0);
    else if (!err && in->omitted)
      in_report(in, LP2P_REQRESP_RESPONSE_OMISSION, LP2P_ERR_EOF);
    else
      in_report(in, classify(in->rr, s, lp2p_stream_peer(s), 1, err ? err : LP2P_ERR_EOF),
                err ? err : LP2P_ERR_EOF);
  }
  lp2p_reqresp *rr = in->rr;
  lp2p_stream_set_user(s, NULL);
  lp2p_timer_free(in->timer);
  in->slot->n_in--;
  slot_maybe_free(rr, in->slot);
  rr->n_in_alive--;
  lp2p__pm_free(&rr->mem, in->buf);
  lp2p__pm_free(&rr->mem, in);
}

static const lp2p_stream_handler in_handler = {
    sizeof(lp2p_stream_handler), in_open, in_data, in_eof, NULL, in_close,
};

int lp2p_reqresp_respond(lp2p_reqresp_channel *ch, const uint8_t *resp, size_t n) {
  if (!ch) return LP2P_ERR_INVAL;
  rr_in *in = ch->in;
  lp2p_mem m = ch->mem;
  lp2p__pm_free(&m, ch);
  if (!in) return LP2P_ERR_CLOSED;
  in->ch = NULL;
  if (in->done || in->forced) return LP2P_ERR_CLOSED;
  if (!n || !resp) {
    in->omitted = 1;
    lp2p_stream_close_write(in->s);
    return 0;
  }
  if (n > in->rr->cfg.max_response_size) {
    in_fail(in, LP2P_REQRESP_TOO_LARGE, LP2P_ERR_TOO_LARGE);
    return LP2P_ERR_TOO_LARGE;
  }
  int rv = lp2p_stream_send_all(in->s, resp, n, 1);
  if (rv < 0) {
    in_fail(in, LP2P_REQRESP_IO, rv);
    return rv;
  }
  in->responded = 1;
  return 0;
}

void lp2p_reqresp_channel_drop(lp2p_reqresp_channel *ch) {
  if (ch) (void)lp2p_reqresp_respond(ch, NULL, 0);
}

int lp2p_reqresp_channel_open(const lp2p_reqresp_channel *ch) { return ch && ch->in && !ch->in->forced; }

/* ------------------------------------------------------------------------- */
/* behaviour */

static int rr_attach(void *self, lp2p_swarm *sw) {
  lp2p_reqresp *rr = self;
  rr->sw = sw;
  if (!rr->cfg.inbound) return 0;
  for (size_t i = 0; i < rr->n_protos; i++) {
    int rv = lp2p_swarm_set_protocol(sw, rr->protos[i], &in_handler, rr);
    if (rv < 0) return rv;
  }
  return 0;
}

static void rr_detach(void *self, lp2p_swarm *sw) {
  lp2p_reqresp *rr = self;
  (void)sw;
  rr->detached = 1;
  /* queued requests never get a stream: report them now; the others end with their streams */
  for (rr_out *o = rr->outs, *nx; o; o = nx) {
    nx = o->next;
    if (o->queued) {
      out_report(o, LP2P_REQRESP_CONNECTION_CLOSED, LP2P_ERR_CANCELED);
      out_release(o, 1);
    }
  }
}

static void rr_destroy(void *self) {
  lp2p_reqresp *rr = self;
  lp2p_mem m = rr->mem;
  while (rr->outs) { /* only if the swarm failed to close a stream; defensive */
    rr_out *o = rr->outs;
    rr->outs = o->next;
    lp2p_timer_free(o->timer);
    lp2p__pm_free(&m, o->req);
    lp2p__pm_free(&m, o->buf);
    lp2p__pm_free(&m, o);
  }
  while (rr->slots) {
    rr_slot *n = rr->slots->next;
    lp2p__pm_free(&m, rr->slots);
    rr->slots = n;
  }
  for (size_t i = 0; i < rr->n_protos; i++) lp2p__pm_free(&m, rr->protos[i]);
  lp2p__pm_free(&m, rr);
}

static const lp2p_behaviour_vtable rr_vtable = {
    .struct_size = sizeof(lp2p_behaviour_vtable),
    .name = LP2P_REQRESP_BEHAVIOUR,
    .attach = rr_attach,
    .detach = rr_detach,
    .destroy = rr_destroy,
};

int lp2p_reqresp_add(lp2p_swarm *sw, const lp2p_reqresp_config *cfg, lp2p_reqresp **out) {
  if (out) *out = NULL;
  if (!sw || !cfg) return LP2P_ERR_INVAL;
  lp2p_reqresp_config c;
  lp2p_reqresp_config_default(&c);
  size_t sz = cfg->struct_size && cfg->struct_size < sizeof c ? cfg->struct_size : sizeof c;
  memcpy(&c, cfg, sz);
  c.struct_size = sizeof c;
  if (!c.on_event || !c.n_protocols || c.n_protocols > LP2P_REQRESP_MAX_PROTOCOLS) return LP2P_ERR_INVAL;
  for (size_t i = 0; i < c.n_protocols; i++)
    if (!c.protocols[i] || c.protocols[i][0] != '/' || strlen(c.protocols[i]) > LP2P_PROTOCOL_ID_MAX)
      return LP2P_ERR_INVAL;
  if (!c.max_request_size || !c.max_response_size) return LP2P_ERR_INVAL;
  const lp2p_mem *m = lp2p_swarm_mem(sw);
  lp2p_reqresp *rr = lp2p__pm_calloc(m, sizeof *rr);
  if (!rr) return LP2P_ERR_NOMEM;
  rr->mem = *m;
  rr->cfg = c;
  for (size_t i = 0; i < c.n_protocols; i++) {
    rr->protos[i] = lp2p__pm_strdup(m, c.protocols[i]);
    if (!rr->protos[i]) {
      rr_destroy(rr);
      return LP2P_ERR_NOMEM;
    }
    rr->n_protos++;
    rr->cfg.protocols[i] = rr->protos[i];
  }
  int rv = lp2p_swarm_add_behaviour(sw, &rr_vtable, rr); /* destroys rr on failure */
  if (rv < 0) return rv;
  if (out) *out = rr;
  return 0;
}

size_t lp2p_reqresp_pending_outbound(const lp2p_reqresp *rr) { return rr ? rr->n_out_pending : 0; }
size_t lp2p_reqresp_pending_inbound(const lp2p_reqresp *rr) { return rr ? rr->n_in_alive : 0; }
