/* swarm/stream.c - streams: multistream negotiation through the registry,
 * data delivery, flow control and the public stream API. */
#include <string.h>

#include "swarm/swarm_int.h"

static void stream_log(const lp2p_stream *s, const char *what, const char *proto, int err) {
  if (LP2P_LOG_DEBUG > lp2p_log_get_level()) return;
  char pb[LP2P_PEER_ID_MAX_TEXT];
  lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "conn #%llu stream %u (%s) peer %s: %s %s%s%s",
           (unsigned long long)(s->conn ? s->conn->id : 0), s->id, s->dir == LP2P_DIR_OUTBOUND ? "out" : "in",
           lp2p__peer_str(&s->peer, pb, sizeof pb), what, proto ? proto : "", err ? " " : "",
           err ? lp2p_err_name(err) : "");
}

/* The per-connection cache of accepted outbound protocols (lazy negotiation). */
static uint64_t proto_hash(const char *p) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
  for (; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
  return h ? h : 1;
}

int lp2p__conn_knows(const lp2p__conn *c, const char *proto) {
  uint64_t h = proto_hash(proto);
  for (unsigned i = 0; i < LP2P__SW_KNOWN_PROTOS; i++)
    if (c->known[i] == h) return 1;
  return 0;
}

void lp2p__conn_learn(lp2p__conn *c, const char *proto, int ok) {
  uint64_t h = proto_hash(proto);
  for (unsigned i = 0; i < LP2P__SW_KNOWN_PROTOS; i++) {
    if (c->known[i] != h) continue;
    if (!ok) c->known[i] = 0;
    return;
  }
  if (!ok) return;
  c->known[c->known_next] = h; /* round robin: the oldest entry goes */
  c->known_next = (c->known_next + 1) % LP2P__SW_KNOWN_PROTOS;
}

void lp2p__copy_handler(lp2p_stream_handler *dst, const lp2p_stream_handler *src) {
  memset(dst, 0, sizeof *dst);
  if (!src) return;
  size_t n = src->struct_size && src->struct_size < sizeof *dst ? src->struct_size : sizeof *dst;
  memcpy(dst, src, n);
  dst->struct_size = sizeof *dst;
}

lp2p_stream *lp2p__stream_alloc(lp2p_swarm *sw, lp2p_direction dir, const lp2p_stream_handler *h, void *ud) {
  lp2p_stream *s = lp2p__calloc(&sw->mem, 1, sizeof *s);
  if (!s) return NULL;
  s->sw = sw;
  s->dir = dir;
  lp2p__copy_handler(&s->h, h);
  s->ud = ud;
  return s;
}

static void stream_free(lp2p_stream *s) {
  lp2p_swarm *sw = s->sw;
  lp2p__sendq_free(s);
  lp2p__rcs_stream_detach(s);
  lp2p_mss_free(s->mss);
  for (size_t i = 0; i < s->n_protos; i++) lp2p__free(&sw->mem, s->protos[i]);
  lp2p__free(&sw->mem, s->protos);
  lp2p__free(&sw->mem, s->protocol);
  lp2p__free(&sw->mem, s);
}

/* Unlinks s from its connection; rst: also send RST. */
/* rst: 0 = leave the yamux stream alone, 1 = reset it, 2 = reset it after its buffered bytes. */
static void detach(lp2p_stream *s, int rst) {
  lp2p__conn *c = s->conn;
  lp2p__rcs_stream_detach(s);
  if (c) {
    if (s->has_id && c->mx) {
      lp2p_yamux_stream_set_user(c->mx, s->id, NULL);
      if (rst == 2)
        lp2p_yamux_reset_after_data(c->mx, s->id);
      else if (rst)
        lp2p_yamux_reset(c->mx, s->id);
    }
    if (s->state == LP2P__ST_NEGOTIATING && !s->lazy && c->n_negotiating) c->n_negotiating--;
    lp2p__list_del(&s->conn_link);
    c->n_streams--;
    lp2p__conn_mark_dirty(c);
    s->conn = NULL;
  }
  s->has_id = 0;
  lp2p__list_del(&s->wait_link);
  lp2p__list_del(&s->open_link);
}

static void queue_close(lp2p_stream *s, int err) {
  if (s->state == LP2P__ST_CLOSED) return;
  s->state = LP2P__ST_CLOSED;
  s->close_err = err;
  lp2p__list_add_tail(&s->sw->closeq, &s->close_link);
  lp2p__swarm_kick(s->sw);
}

void lp2p__stream_fail(lp2p_stream *s, int err) {
  detach(s, 0);
  queue_close(s, err);
}

void lp2p__stream_deliver_close(lp2p_stream *s) {
  int err = s->close_err;
  if (s->h.on_close) {
    s->in_cb++;
    s->h.on_close(s, err, s->ud);
    s->in_cb--;
  }
  stream_free(s);
}

static void emit_inbound_failure(lp2p_stream *s, int err) {
  lp2p_swarm_event ev;
  memset(&ev, 0, sizeof ev);
  ev.struct_size = sizeof ev;
  ev.type = LP2P_SWARM_EV_INBOUND_STREAM_FAILED;
  ev.peer = &s->peer;
  ev.addr = s->conn ? s->conn->remote_addr : NULL;
  ev.dir = LP2P_DIR_INBOUND;
  ev.conn_id = s->conn ? s->conn->id : 0;
  ev.err = err;
  lp2p__swarm_emit(s->sw, &ev);
}

/* Negotiation failed: reset, report, close. */
static void nego_failed(lp2p_stream *s, int err, int rst) {
  if (s->dir == LP2P_DIR_INBOUND && s->mss && lp2p_mss_rejections(s->mss) > 0 &&
      (err == LP2P_ERR_RESET || err == LP2P_ERR_EOF || err == 0))
    err = LP2P_ERR_UNSUPPORTED;
  if (!err) err = LP2P_ERR_EOF;
  err = lp2p__gate_stream_err(s, err); /* UNSUPPORTED -> DENIED when a behaviour refused it */
  if (s->lazy && err == LP2P_ERR_UNSUPPORTED && s->conn) lp2p__conn_learn(s->conn, s->protos[0], 0);
  stream_log(s, s->lazy ? "optimistic negotiation failed" : "negotiation failed", NULL, err);
  if (s->dir == LP2P_DIR_INBOUND) emit_inbound_failure(s, err);
  if (rst && s->dir == LP2P_DIR_INBOUND && s->mss && s->has_id && s->conn && lp2p_mss_rejections(s->mss) > 0) {
    /* our "na" must reach the peer before the RST: after a refused proposal a lazy dialer's data reads
     * as a malformed line here, and that dialer needs the "na" to report "protocol not supported".
     * Queued only: the muxer sends the RST after the stream's buffered bytes. */
    const uint8_t *p;
    size_t n;
    while ((n = lp2p_mss_output(s->mss, &p)) > 0) {
      int64_t k = lp2p_yamux_write(s->conn->mx, s->id, p, n);
      if (k <= 0) break;
      lp2p_mss_output_consumed(s->mss, (size_t)k);
    }
    rst = 2;
  }
  detach(s, rst);
  queue_close(s, err);
}

static int mss_pending(lp2p_stream *s) {
  const uint8_t *p;
  return s->mss && lp2p_mss_output(s->mss, &p) > 0;
}

void lp2p__stream_flush_mss(lp2p_stream *s) {
  const uint8_t *p;
  size_t n;
  if (!s->mss || !s->has_id || !s->conn) return;
  lp2p__conn *c = s->conn;
  while ((n = lp2p_mss_output(s->mss, &p)) > 0) {
    int64_t k = lp2p_yamux_write(c->mx, s->id, p, n);
    if (k < 0) {
      nego_failed(s, (int)k, 1);
      return;
    }
    if (k == 0) break; /* resumes on on_stream_writable */
    lp2p_mss_output_consumed(s->mss, (size_t)k);
  }
  if (s->fin_pending && !mss_pending(s)) { /* a lazy stream's close_write waited for the proposal */
    s->fin_pending = 0;
    lp2p_yamux_close_write(c->mx, s->id);
  }
  lp2p__conn_mark_dirty(c);
}

static void deliver_data(lp2p_stream *s, const uint8_t *p, size_t n) {
  if (!n) return;
  if (s->h.on_data) {
    s->in_cb++;
    s->h.on_data(s, p, n, s->ud);
    s->in_cb--;
  }
  if (s->has_id && s->conn && (!s->manual_consume || !s->h.on_data)) {
    lp2p__conn *c = s->conn; /* consume may close the stream (detaching it) */
    lp2p_yamux_consume(c->mx, s->id, n);
    lp2p__conn_mark_dirty(c);
  }
}

/* Negotiation finished: becomes OPEN and calls on_open. Returns 0 if the
 * stream is still usable afterwards. */
static int nego_done(lp2p_stream *s) {
  lp2p_swarm *sw = s->sw;
  const char *proto = lp2p_mss_protocol(s->mss);
  if (s->dir == LP2P_DIR_INBOUND) {
    const lp2p__proto *reg = lp2p__registry_find(sw, proto, strlen(proto));
    if (!reg) {
      nego_failed(s, LP2P_ERR_UNSUPPORTED, 1);
      return -1;
    }
    s->h = reg->h;
    s->ud = reg->ud;
  }
  s->protocol = lp2p__strndup(&sw->mem, proto, strlen(proto));
  int rv = s->protocol ? lp2p__rcs_stream_protocol(s, proto) : LP2P_ERR_NOMEM;
  if (rv < 0) {
    nego_failed(s, rv, 1);
    return -1;
  }
  if (s->dir == LP2P_DIR_OUTBOUND && s->conn) lp2p__conn_learn(s->conn, proto, 1);
  lp2p_mss_free(s->mss);
  s->mss = NULL;
  if (s->conn && s->conn->n_negotiating) s->conn->n_negotiating--;
  s->nego_deadline = 0;
  s->state = LP2P__ST_OPEN;
  stream_log(s, "negotiated", s->protocol, 0);
  if (s->h.on_open) {
    s->in_cb++;
    s->h.on_open(s, s->protocol, s->ud);
    s->in_cb--;
  }
  if (s->state != LP2P__ST_OPEN) return -1;
  if (s->eof && s->h.on_eof) { /* FIN arrived together with the negotiation */
    s->in_cb++;
    s->h.on_eof(s, s->ud);
    s->in_cb--;
  }
  return s->state == LP2P__ST_OPEN ? 0 : -1;
}

/* ------------------------------------------------------------------------- */
/* yamux events */

int lp2p__stream_on_inbound(lp2p__conn *c, uint32_t id) {
  lp2p_swarm *sw = c->sw;
  if (sw->freeing || c->tearing) return 1;
  const char *limit = sw->cfg.max_streams_per_conn && c->n_streams >= sw->cfg.max_streams_per_conn ? "max streams" : NULL;
  lp2p_stream *s = limit ? NULL : lp2p__stream_alloc(sw, LP2P_DIR_INBOUND, NULL, NULL);
  if (s && lp2p__rcs_stream_attach(s, c) < 0) { /* resource limits (rcmgr.c) */
    stream_free(s);
    s = NULL;
    limit = "resource limit";
  }
  if (limit) {
    lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "conn #%llu: inbound stream %u refused (%s)", (unsigned long long)c->id,
             id, limit);
    lp2p_swarm_event ev;
    memset(&ev, 0, sizeof ev);
    ev.struct_size = sizeof ev;
    ev.type = LP2P_SWARM_EV_INBOUND_STREAM_FAILED;
    ev.peer = &c->remote;
    ev.addr = c->remote_addr;
    ev.conn_id = c->id;
    ev.err = LP2P_ERR_LIMIT;
    lp2p__swarm_emit(sw, &ev);
    return 1;
  }
  if (!s) return 1;
  if (lp2p_mss_new_listener(&s->mss, &lp2p__gate_registry_mss, s, NULL, &sw->mem) < 0) {
    stream_free(s);
    return 1;
  }
  s->peer = c->remote;
  s->conn = c;
  s->id = id;
  s->has_id = 1;
  lp2p_yamux_stream_set_user(c->mx, id, s);
  lp2p__list_add_tail(&c->streams, &s->conn_link);
  c->n_streams++;
  s->state = LP2P__ST_NEGOTIATING;
  c->n_negotiating++;
  if (sw->cfg.stream_negotiation_timeout_ms)
    s->nego_deadline = lp2p__swarm_now(sw) + sw->cfg.stream_negotiation_timeout_ms;
  lp2p__conn_mark_dirty(c);
  return 0;
}

int lp2p__stream_start_outbound(lp2p_stream *s, lp2p__conn *c) {
  lp2p_swarm *sw = s->sw;
  if (sw->cfg.max_streams_per_conn && c->n_streams >= sw->cfg.max_streams_per_conn) return LP2P_ERR_LIMIT;
  uint32_t id;
  int rv = lp2p__rcs_stream_attach(s, c); /* resource limits (rcmgr.c) */
  if (rv < 0) return rv;
  rv = lp2p_yamux_open_stream(c->mx, &id);
  if (rv < 0) lp2p__rcs_stream_detach(s);
  if (rv == LP2P_ERR_LIMIT) return LP2P__SW_BLOCKED; /* un-ACKed SYNs: wait for the peer */
  if (rv < 0) return rv;
  rv = lp2p_mss_new_dialer(&s->mss, (const char *const *)s->protos, s->n_protos, NULL, &sw->mem);
  if (rv < 0) {
    lp2p__rcs_stream_detach(s);
    lp2p_yamux_reset(c->mx, id);
    return rv;
  }
  s->conn = c;
  s->id = id;
  s->has_id = 1;
  s->peer = c->remote;
  lp2p_yamux_stream_set_user(c->mx, id, s);
  lp2p__list_add_tail(&c->streams, &s->conn_link);
  c->n_streams++;
  s->state = LP2P__ST_NEGOTIATING;
  s->lazy = s->n_protos == 1 && lp2p__conn_knows(c, s->protos[0]);
  if (s->lazy) {
    /* on_open right after the proposal is queued (before the flush: the first writes join it) */
    lp2p__list_add_tail(&sw->openq, &s->open_link);
    lp2p__swarm_kick(sw);
  } else {
    c->n_negotiating++;
    if (sw->cfg.stream_negotiation_timeout_ms)
      s->nego_deadline = lp2p__swarm_now(sw) + sw->cfg.stream_negotiation_timeout_ms;
  }
  stream_log(s, s->lazy ? "proposing (optimistic)" : "proposing", s->protos[0], 0);
  lp2p__stream_flush_mss(s);
  return 0;
}

void lp2p__stream_restart_negotiating(lp2p__conn *c, lp2p__peer *pe) {
  /* from the last to the first, each put in front: the waiting queue keeps their order */
  for (lp2p__link *it = c->streams.prev; it != &c->streams;) {
    lp2p_stream *s = LP2P__CONTAINER(it, lp2p_stream, conn_link);
    it = it->prev;
    if (s->dir != LP2P_DIR_OUTBOUND || s->state != LP2P__ST_NEGOTIATING || s->lazy) continue;
    stream_log(s, "restarting on the kept connection", s->protos[0], 0);
    detach(s, 1);
    lp2p_mss_free(s->mss);
    s->mss = NULL;
    s->state = LP2P__ST_PENDING;
    s->nego_deadline = 0;
    s->id = 0;
    lp2p__list_add_tail(pe->waiting.next, &s->wait_link);
  }
}

void lp2p__stream_deliver_open(lp2p_stream *s) {
  if (s->state != LP2P__ST_NEGOTIATING || !s->lazy) return;
  s->protocol = lp2p__strndup(&s->sw->mem, s->protos[0], strlen(s->protos[0]));
  int rv = s->protocol ? lp2p__rcs_stream_protocol(s, s->protocol) : LP2P_ERR_NOMEM;
  if (rv < 0) {
    nego_failed(s, rv, 1);
    return;
  }
  s->state = LP2P__ST_OPEN;
  stream_log(s, "open (optimistic)", s->protocol, 0);
  if (s->h.on_open) {
    s->in_cb++;
    s->h.on_open(s, s->protocol, s->ud);
    s->in_cb--;
  }
}

/* The peer confirmed a lazily negotiated protocol. */
static void lazy_confirmed(lp2p_stream *s) {
  lp2p_mss_free(s->mss);
  s->mss = NULL;
  s->lazy = 0;
  stream_log(s, "confirmed", s->protocol, 0);
}

void lp2p__stream_mx_data(lp2p_stream *s, const uint8_t *p, size_t n) {
  if (s->lazy && s->state == LP2P__ST_NEGOTIATING) { /* its on_open is still queued: first things first */
    lp2p__list_del(&s->open_link);
    lp2p__stream_deliver_open(s);
    if (s->state != LP2P__ST_OPEN) return;
  }
  if (s->state == LP2P__ST_NEGOTIATING || (s->state == LP2P__ST_OPEN && s->mss)) {
    lp2p__stream_state st = s->state;
    int64_t k = lp2p_mss_feed(s->mss, p, n);
    if (k < 0) {
      nego_failed(s, (int)k, 1);
      return;
    }
    /* negotiation bytes are ours: give the window back (from inside feed: no callback) */
    if (k > 0 && s->conn) lp2p_yamux_consume(s->conn->mx, s->id, (size_t)k);
    lp2p__stream_flush_mss(s);
    if (s->state != st || !lp2p_mss_done(s->mss)) return;
    if (st == LP2P__ST_NEGOTIATING) {
      if (nego_done(s) < 0) return;
    } else {
      lazy_confirmed(s);
    }
    deliver_data(s, p + k, n - (size_t)k);
    return;
  }
  if (s->state == LP2P__ST_OPEN) deliver_data(s, p, n);
}

void lp2p__stream_mx_eof(lp2p_stream *s) {
  s->eof = 1;
  if (s->state == LP2P__ST_NEGOTIATING || (s->state == LP2P__ST_OPEN && s->mss)) { /* never confirmed */
    nego_failed(s, LP2P_ERR_EOF, 1);
    return;
  }
  if (s->state == LP2P__ST_OPEN && s->h.on_eof) {
    s->in_cb++;
    s->h.on_eof(s, s->ud);
    s->in_cb--;
  }
}

void lp2p__stream_mx_writable(lp2p_stream *s) {
  if (s->state == LP2P__ST_NEGOTIATING) {
    lp2p__stream_flush_mss(s);
    return;
  }
  if (s->state == LP2P__ST_OPEN && mss_pending(s)) { /* a lazy proposal goes first */
    lp2p__stream_flush_mss(s);
    if (s->state != LP2P__ST_OPEN || mss_pending(s)) return;
  }
  if (s->state == LP2P__ST_OPEN && s->sendq && !lp2p__sendq_drain(s)) return; /* send_all bytes go first */
  if (s->state != LP2P__ST_OPEN || !s->want_writable) return;
  if (s->conn && s->conn->write_blocked) return;
  s->want_writable = 0;
  if (s->h.on_writable) {
    s->in_cb++;
    s->h.on_writable(s, s->ud);
    s->in_cb--;
  }
}

void lp2p__stream_mx_close(lp2p_stream *s, int err) {
  s->has_id = 0; /* the id dies with this callback */
  if (s->conn && s->conn->mx) lp2p_yamux_stream_set_user(s->conn->mx, s->id, NULL);
  if (s->state == LP2P__ST_NEGOTIATING) {
    nego_failed(s, err, 0);
    return;
  }
  lp2p__stream_fail(s, err);
}

void lp2p__stream_check_deadline(lp2p_stream *s, lp2p_tstamp now) {
  if (s->state == LP2P__ST_NEGOTIATING && s->nego_deadline && now >= s->nego_deadline)
    nego_failed(s, LP2P_ERR_TIMEOUT, 1);
}

/* ------------------------------------------------------------------------- */
/* public API */

int lp2p_swarm_open_stream(lp2p_swarm *sw, const lp2p_peer_id *peer, const char *const *protocols, size_t n,
                           const lp2p_stream_handler *h, void *ud, lp2p_stream **out) {
  if (out) *out = NULL;
  if (!sw || !peer || !peer->len || !protocols || !n || n > 64) return LP2P_ERR_INVAL;
  if (sw->freeing) return LP2P_ERR_STATE;
  if (lp2p_peer_id_equal(peer, &sw->local)) return LP2P_ERR_INVAL;
  for (size_t i = 0; i < n; i++) {
    if (!protocols[i] || protocols[i][0] != '/') return LP2P_ERR_INVAL;
    size_t len = strlen(protocols[i]);
    if (len > LP2P_PROTOCOL_ID_MAX || memchr(protocols[i], '\n', len)) return LP2P_ERR_INVAL;
  }
  lp2p_stream *s = lp2p__stream_alloc(sw, LP2P_DIR_OUTBOUND, h, ud);
  if (!s) return LP2P_ERR_NOMEM;
  s->protos = lp2p__calloc(&sw->mem, n, sizeof *s->protos);
  if (!s->protos) {
    stream_free(s);
    return LP2P_ERR_NOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    s->protos[i] = lp2p__strndup(&sw->mem, protocols[i], strlen(protocols[i]));
    if (!s->protos[i]) {
      s->n_protos = i;
      stream_free(s);
      return LP2P_ERR_NOMEM;
    }
  }
  s->n_protos = n;
  s->peer = *peer;
  s->state = LP2P__ST_PENDING;
  if (out) *out = s;

  lp2p__peer *pe = lp2p__peer_find(sw, peer);
  if (pe && pe->primary && !lp2p__conn_can_open(pe->primary)) {
    /* until the peer's muxer has spoken, or (mx_blocked) has ACKed some of our streams */
    lp2p__list_add_tail(&pe->waiting, &s->wait_link);
    if (pe->primary->mx_blocked && sw->cfg.stream_negotiation_timeout_ms)
      s->nego_deadline = lp2p__swarm_now(sw) + sw->cfg.stream_negotiation_timeout_ms;
  } else if (pe && pe->primary) {
    lp2p__list_add_tail(&pe->waiting, &s->wait_link);
    lp2p__peer_open_waiting(sw, pe); /* opens it now unless yamux is at its un-ACKed SYN limit */
  } else if (pe && pe->dial) {
    lp2p__list_add_tail(&pe->waiting, &s->wait_link);
  } else if (lp2p__swarm_ps_dialable(sw, peer) && (pe || (pe = lp2p__peer_get(sw, peer)))) {
    lp2p__list_add_tail(&pe->waiting, &s->wait_link);
    int rv = lp2p__dial_start(sw, peer, NULL, 0, NULL, NULL);
    if (rv < 0) lp2p__stream_fail(s, rv);
  } else if (sw->router && (pe || (pe = lp2p__peer_get(sw, peer)))) {
    /* no address: ask the peer router (lp2p_swarm_set_peer_router); lp2p_swarm_peer_routed goes on */
    lp2p__list_add_tail(&pe->waiting, &s->wait_link);
    int rv = lp2p__peer_route(sw, pe);
    if (rv < 0) {
      lp2p__list_del(&s->wait_link);
      lp2p__stream_fail(s, rv);
    }
  } else {
    char pb[LP2P_PEER_ID_MAX_TEXT];
    lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "open stream to %s: not connected and no known address",
             lp2p__peer_str(peer, pb, sizeof pb));
    lp2p__stream_fail(s, LP2P_ERR_NOT_CONNECTED);
  }
  lp2p__swarm_kick(sw);
  return 0;
}

int64_t lp2p_stream_write(lp2p_stream *s, const uint8_t *p, size_t n) {
  if (s && (p || !n) && s->sendq) return lp2p__sendq_gate(s, n); /* send_all bytes go first */
  return lp2p__stream_write_now(s, p, n);
}

int64_t lp2p__stream_write_now(lp2p_stream *s, const uint8_t *p, size_t n) {
  if (!s || (!p && n)) return LP2P_ERR_INVAL;
  if (s->state == LP2P__ST_PENDING || s->state == LP2P__ST_NEGOTIATING) return LP2P_ERR_STATE;
  if (s->state == LP2P__ST_CLOSED || !s->has_id || !s->conn || s->write_closed) return LP2P_ERR_CLOSED;
  if (!n) return 0;
  if (s->conn->write_blocked) {
    s->want_writable = 1;
    return 0;
  }
  if (mss_pending(s)) { /* lazy: the proposal must reach the muxer before any data */
    lp2p__stream_flush_mss(s);
    if (s->state != LP2P__ST_OPEN || !s->conn) return LP2P_ERR_CLOSED;
    if (mss_pending(s)) {
      s->want_writable = 1;
      return 0;
    }
  }
  size_t m = lp2p__rcs_write_room(s, n); /* resource limits (rcmgr.c): the rest waits in the app */
  int64_t k = m ? lp2p_yamux_write(s->conn->mx, s->id, p, m) : 0;
  if (k < 0) return k == LP2P_ERR_NOT_FOUND ? LP2P_ERR_CLOSED : k;
  if ((size_t)k < n) s->want_writable = 1;
  if (k > 0 && s->conn) {
    lp2p__rcs_conn_sync(s->conn);
    lp2p__conn_mark_dirty(s->conn);
  }
  return k;
}

int lp2p_stream_close_write(lp2p_stream *s) {
  if (!s) return LP2P_ERR_INVAL;
  if (s->write_closed) return 0;
  if (s->state == LP2P__ST_PENDING || s->state == LP2P__ST_NEGOTIATING) return LP2P_ERR_STATE;
  if (s->sendq) return lp2p__sendq_fin(s); /* the FIN follows the send_all bytes */
  s->write_closed = 1;
  if (s->has_id && s->conn && mss_pending(s)) {
    s->fin_pending = 1; /* sent by lp2p__stream_flush_mss once the proposal is out */
    return 0;
  }
  if (s->has_id && s->conn) {
    lp2p__conn *c = s->conn;
    int rv = lp2p_yamux_close_write(c->mx, s->id); /* may close the stream (on_stream_close) */
    lp2p__conn_mark_dirty(c);
    if (rv < 0 && rv != LP2P_ERR_CLOSED) return rv;
  }
  return 0;
}

int lp2p_stream_reset(lp2p_stream *s) {
  if (!s) return LP2P_ERR_INVAL;
  if (s->state == LP2P__ST_CLOSED) return 0;
  stream_log(s, "reset locally", s->protocol, 0);
  detach(s, 1);
  queue_close(s, LP2P_ERR_CANCELED);
  return 0;
}

void lp2p_stream_set_manual_consume(lp2p_stream *s, int on) {
  if (s) s->manual_consume = on ? 1 : 0;
}

int lp2p_stream_consume(lp2p_stream *s, size_t n) {
  if (!s) return LP2P_ERR_INVAL;
  if (!s->has_id || !s->conn) return 0;
  lp2p__conn *c = s->conn; /* consume may close the stream (detaching it) */
  int rv = lp2p_yamux_consume(c->mx, s->id, n);
  lp2p__conn_mark_dirty(c);
  return rv;
}

lp2p_swarm *lp2p_stream_swarm(const lp2p_stream *s) { return s->sw; }
const lp2p_peer_id *lp2p_stream_peer(const lp2p_stream *s) { return s->peer.len ? &s->peer : NULL; }
const char *lp2p_stream_protocol(const lp2p_stream *s) { return s->protocol; }
lp2p_direction lp2p_stream_direction(const lp2p_stream *s) { return s->dir; }
uint32_t lp2p_stream_id(const lp2p_stream *s) { return s->id; }
const lp2p_multiaddr *lp2p_stream_remote_addr(const lp2p_stream *s) {
  return s->conn ? s->conn->remote_addr : NULL;
}
const lp2p_multiaddr *lp2p_stream_local_addr(const lp2p_stream *s) {
  return s->conn ? s->conn->local_addr : NULL;
}
void lp2p_stream_set_user(lp2p_stream *s, void *user) { s->user = user; }
void *lp2p_stream_user(const lp2p_stream *s) { return s->user; }
void lp2p_stream_set_handler(lp2p_stream *s, const lp2p_stream_handler *h, void *ud) {
  lp2p__copy_handler(&s->h, h);
  s->ud = ud;
}
