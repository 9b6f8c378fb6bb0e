/* swarm/conn.c - one connection: TCP -> multistream(/noise) -> Noise XX ->
 * (early muxer | multistream(/yamux/1.0.0)) -> yamux, its I/O, timers and
 * teardown. */
#include <string.h>

#include "swarm/swarm_int.h"

static const char *const k_noise_ids[] = {LP2P_NOISE_PROTOCOL_ID};
static const char *const k_mux_ids[] = {LP2P_YAMUX_PROTOCOL_ID};

static int only_noise(void *ud, const char *p, size_t n) {
  (void)ud;
  return n == strlen(LP2P_NOISE_PROTOCOL_ID) && !memcmp(p, LP2P_NOISE_PROTOCOL_ID, n);
}
static int only_yamux(void *ud, const char *p, size_t n) {
  (void)ud;
  return n == strlen(LP2P_YAMUX_PROTOCOL_ID) && !memcmp(p, LP2P_YAMUX_PROTOCOL_ID, n);
}
static size_t list_noise(void *ud, const char **out, size_t max) {
  (void)ud;
  if (max) out[0] = LP2P_NOISE_PROTOCOL_ID;
  return 1;
}
static size_t list_yamux(void *ud, const char **out, size_t max) {
  (void)ud;
  if (max) out[0] = LP2P_YAMUX_PROTOCOL_ID;
  return 1;
}
static const lp2p_mss_registry k_sec_registry = {only_noise, list_noise};
static const lp2p_mss_registry k_mux_registry = {only_yamux, list_yamux};

static void conn_log(const lp2p__conn *c, lp2p_log_level lvl, const char *what, int err) {
  if ((int)lvl > (int)lp2p_log_get_level()) return;
  char pb[LP2P_PEER_ID_MAX_TEXT], ab[256];
  lp2p_log(lvl, LP2P__SW_LOG, "conn #%llu %s %s peer %s: %s%s%s", (unsigned long long)c->id,
           c->dir == LP2P_DIR_OUTBOUND ? "->" : "<-", lp2p__ma_str(c->remote_addr, ab, sizeof ab),
           lp2p__peer_str(c->remote.len ? &c->remote : &c->expected, pb, sizeof pb), what, err ? " " : "",
           err ? lp2p_err_name(err) : "");
}

/* ------------------------------------------------------------------------- */
/* memory / handles */

static void conn_maybe_free(lp2p__conn *c) {
  if (c->io_open || c->timer_open) return;
  lp2p_swarm *sw = c->sw;
  if (sw->rb_owner == c) sw->rb_owner = NULL;
  lp2p__rcs_conn_close(c); /* no-op after teardown */
  lp2p__bytes_free(&sw->mem, &c->rbuf);
  lp2p_multiaddr_free(c->remote_addr);
  lp2p_multiaddr_free(c->local_addr);
  lp2p__free(&sw->mem, c);
}

static void io_close_cb(uv_handle_t *h) {
  lp2p__conn *c = h->data;
  lp2p_swarm *sw = c->sw;
  lp2p__free(&sw->mem, h);
  c->io = NULL;
  c->io_open = 0;
  conn_maybe_free(c);
  lp2p__swarm_handle_closed(sw);
}

static void timer_close_cb(uv_handle_t *h) {
  lp2p__conn *c = h->data;
  lp2p_swarm *sw = c->sw;
  c->timer_open = 0;
  conn_maybe_free(c);
  lp2p__swarm_handle_closed(sw);
}

static void close_io(lp2p__conn *c) {
  if (c->io && !uv_is_closing((uv_handle_t *)c->io)) uv_close((uv_handle_t *)c->io, io_close_cb);
}
static void close_timer(lp2p__conn *c) {
  if (c->timer_open && !uv_is_closing((uv_handle_t *)&c->timer))
    uv_close((uv_handle_t *)&c->timer, timer_close_cb);
}

static lp2p__conn *conn_alloc(lp2p_swarm *sw, lp2p_direction dir) {
  lp2p__conn *c = lp2p__calloc(&sw->mem, 1, sizeof *c);
  if (!c) return NULL;
  c->sw = sw;
  c->id = sw->next_conn_id++;
  c->dir = dir;
  lp2p__list_init(&c->streams);
  uv_timer_init(sw->loop, &c->timer);
  c->timer.data = c;
  c->timer_open = 1;
  sw->handles++;
  lp2p__list_add_tail(&sw->conns, &c->sw_link);
  lp2p__rcs_conn_open(c);
  return c;
}

void lp2p__conn_mark_dirty(lp2p__conn *c) {
  if (c->tearing || c->state == LP2P__C_CLOSING || lp2p__list_linked(&c->pending_link)) return;
  lp2p__list_add_tail(&c->sw->dirty, &c->pending_link);
  lp2p__swarm_kick(c->sw);
}

void lp2p__conn_close(lp2p__conn *c, int reason) {
  if (c->tearing || c->close_queued || c->state == LP2P__C_CLOSING) return;
  c->close_queued = 1;
  c->close_reason = reason;
  lp2p__list_add_tail(&c->sw->conn_closeq, &c->close_link);
  lp2p__swarm_kick(c->sw);
}

/* ------------------------------------------------------------------------- */
/* output */

/* Seal buffers come from the swarm's free list; exact-size buffers (cap != LP2P__SW_WBUF_CAP) hold
 * copied tails and plaintext handshake bytes. */
static lp2p__wbuf *wbuf_get(lp2p_swarm *sw, size_t cap) {
  lp2p__wbuf *b;
  if (cap == LP2P__SW_WBUF_CAP && sw->wpool) {
    b = sw->wpool;
    sw->wpool = b->next;
    sw->n_wpool--;
    return b;
  }
  b = lp2p__malloc(&sw->mem, sizeof *b + cap);
  if (b) b->cap = cap;
  return b;
}

static void wbuf_put(lp2p_swarm *sw, lp2p__wbuf *b) {
  if (b->cap == LP2P__SW_WBUF_CAP && sw->n_wpool < LP2P__SW_WBUF_POOL && !sw->freeing) {
    b->next = sw->wpool;
    sw->wpool = b;
    sw->n_wpool++;
    return;
  }
  lp2p__free(&sw->mem, b);
}

void lp2p__wbuf_pool_free(lp2p_swarm *sw) {
  while (sw->wpool) {
    lp2p__wbuf *b = sw->wpool;
    sw->wpool = b->next;
    lp2p__free(&sw->mem, b);
  }
  sw->n_wpool = 0;
}

static void write_cb(uv_write_t *req, int status) {
  lp2p__wbuf *w = (lp2p__wbuf *)req;
  lp2p__conn *c = w->c;
  lp2p_swarm *sw = c->sw;
  wbuf_put(sw, w);
  if (status == UV_ECANCELED || c->state == LP2P__C_CLOSING) return;
  lp2p__swarm_enter(sw);
  if (status < 0) {
    lp2p__conn_close(c, lp2p__uv_err(status));
  } else if (c->write_blocked && uv_stream_get_write_queue_size(c->io) < LP2P__SW_WRITE_HIGH / 2) {
    c->write_blocked = 0;
    lp2p__conn_mark_dirty(c);
    for (lp2p__link *it = c->streams.next; it != &c->streams;) {
      lp2p_stream *s = LP2P__CONTAINER(it, lp2p_stream, conn_link);
      it = it->next;
      if (s->want_writable) lp2p__stream_mx_writable(s);
    }
  }
  lp2p__swarm_leave(sw);
}

/* Writes as much of p[0..n) as the socket takes now (nothing while libuv still has queued writes,
 * which keeps the order). Returns the bytes written or an error. */
static int64_t try_write(lp2p__conn *c, const uint8_t *p, size_t n) {
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
  int rv = uv_try_write(c->io, &b, 1);
  if (rv >= 0) return rv;
  if (rv == UV_EAGAIN || rv == UV_ENOSYS) return 0;
  return lp2p__uv_err(rv);
}

/* Queues p[0..n) (already refused by the socket) in libuv; b (may be NULL) holds p and is given
 * away: either queued itself or released after copying a small tail out of it. */
static int queue_tail(lp2p__conn *c, lp2p__wbuf *b, const uint8_t *p, size_t n) {
  lp2p_swarm *sw = c->sw;
  if (!b || (b->cap == LP2P__SW_WBUF_CAP && n < LP2P__SW_WBUF_SMALL_TAIL)) {
    lp2p__wbuf *t = wbuf_get(sw, n);
    if (!t) {
      if (b) wbuf_put(sw, b);
      return LP2P_ERR_NOMEM;
    }
    memcpy(t->data, p, n);
    if (b) wbuf_put(sw, b);
    b = t;
    p = t->data;
  }
  b->c = c;
  uv_buf_t ub = uv_buf_init((char *)p, (unsigned)n);
  int rv = uv_write(&b->req, c->io, &ub, 1, write_cb);
  if (rv) {
    wbuf_put(sw, b);
    return lp2p__uv_err(rv);
  }
  return 0;
}

/* Sends plaintext bytes (multistream, Noise handshake: up to two pieces, in one write) straight from
 * the engines' buffers. */
static int send_plain(lp2p__conn *c, const uint8_t *p, size_t n, const uint8_t *q, size_t m) {
  uv_buf_t b[2] = {uv_buf_init((char *)p, (unsigned)n), uv_buf_init((char *)q, (unsigned)m)};
  int k = uv_try_write(c->io, b, m ? 2 : 1);
  if (k < 0 && k != UV_EAGAIN && k != UV_ENOSYS) return lp2p__uv_err(k);
  size_t done = k < 0 ? 0 : (size_t)k;
  if (done == n + m) return 0;
  lp2p__wbuf *t = wbuf_get(c->sw, n + m - done);
  if (!t) return LP2P_ERR_NOMEM;
  size_t len = 0;
  if (done < n) {
    memcpy(t->data, p + done, n - done);
    len = n - done;
    done = n;
  }
  if (m) {
    memcpy(t->data + len, q + (done - n), m - (done - n));
    len += m - (done - n);
  }
  return queue_tail(c, t, t->data, len);
}

/* Sends b->data[0..n) and gives b away. */
static int send_buf(lp2p__conn *c, lp2p__wbuf *b, size_t n) {
  int64_t k = n ? try_write(c, b->data, n) : 0;
  if (k < 0 || (size_t)k == n) {
    wbuf_put(c->sw, b);
    return k < 0 ? (int)k : 0;
  }
  return queue_tail(c, b, b->data + k, n - (size_t)k);
}

/* Seals p[0..n) as Noise frames into b at *out. */
static int seal_into(lp2p__conn *c, lp2p__wbuf *b, size_t *out, const uint8_t *p, size_t n) {
  size_t off = 0;
  while (off < n) {
    size_t k = n - off > LP2P_NOISE_MAX_PLAINTEXT ? LP2P_NOISE_MAX_PLAINTEXT : n - off;
    int rv = lp2p_noise_seal_frame(c->noise, p + off, k, b->data + *out);
    if (rv < 0) return rv;
    *out += (size_t)rv;
    off += k;
  }
  return 0;
}

/* Encrypts p[0..n) (n <= LP2P__SW_SEAL_FRAMES full frames) and sends it. */
static int write_sealed(lp2p__conn *c, const uint8_t *p, size_t n) {
  lp2p__wbuf *b = wbuf_get(c->sw, LP2P__SW_WBUF_CAP);
  if (!b) return LP2P_ERR_NOMEM;
  size_t out = 0;
  int rv = seal_into(c, b, &out, p, n);
  if (rv < 0) {
    wbuf_put(c->sw, b);
    return rv;
  }
  return send_buf(c, b, out);
}

/* Pulls yamux output into one seal buffer, straight from the muxer's memory (lp2p_yamux_output_iov).
 * Noise is a byte stream, so frame boundaries may follow the pieces: a payload piece of at least
 * LP2P__SW_DIRECT_MIN bytes (it sits in a stream's send ring) is encrypted from there into b, no copy;
 * frame headers, control frames and small payloads are gathered (copied) into b where their frame's
 * ciphertext goes and encrypted in place. A yamux Data frame carries at most LP2P_NOISE_MAX_PLAINTEXT
 * bytes (start_yamux), so a payload is one Noise frame, its header one short frame (28 bytes on the
 * wire) or part of the gathered frame before it. Returns the bytes sealed into b (0 = nothing to send)
 * or an error. */
static int64_t seal_yamux(lp2p__conn *c, lp2p__wbuf *b) {
  lp2p_iovec iov[LP2P__SW_IOV];
  const size_t reserve = LP2P_NOISE_FRAME_OVERHEAD * (LP2P__SW_IOV + LP2P__SW_PULL / LP2P_NOISE_MAX_PLAINTEXT + 2);
  size_t out = 0, glen = 0; /* glen: plaintext gathered at b->data + out + 2 for the next frame */
  int rv;
  for (;;) {
    size_t used = out + (glen ? glen + LP2P_NOISE_FRAME_OVERHEAD : 0);
    if (used + reserve + LP2P__SW_MIN_PULL > b->cap) break;
    size_t want = b->cap - used - reserve;
    if (want > LP2P__SW_PULL) want = LP2P__SW_PULL;
    size_t k = lp2p_yamux_output_iov(c->mx, iov, LP2P__SW_IOV, want), total = 0;
    if (!k) break;
    for (size_t j = 0; j < k; j++) {
      const uint8_t *p = iov[j].base;
      size_t n = iov[j].len;
      total += n;
      if (n >= LP2P__SW_DIRECT_MIN) {
        if (glen) { /* what was gathered goes first */
          if ((rv = lp2p_noise_seal_frame(c->noise, b->data + out + 2, glen, b->data + out)) < 0) return rv;
          out += (size_t)rv;
          glen = 0;
        }
        while (n) {
          size_t fl = n < LP2P_NOISE_MAX_PLAINTEXT ? n : LP2P_NOISE_MAX_PLAINTEXT;
          if ((rv = lp2p_noise_seal_frame(c->noise, p, fl, b->data + out)) < 0) return rv;
          out += (size_t)rv;
          p += fl;
          n -= fl;
        }
        continue;
      }
      while (n) {
        size_t take = LP2P_NOISE_MAX_PLAINTEXT - glen < n ? LP2P_NOISE_MAX_PLAINTEXT - glen : n;
        memcpy(b->data + out + 2 + glen, p, take);
        glen += take;
        p += take;
        n -= take;
        if (glen == LP2P_NOISE_MAX_PLAINTEXT) {
          if ((rv = lp2p_noise_seal_frame(c->noise, b->data + out + 2, glen, b->data + out)) < 0) return rv;
          out += (size_t)rv;
          glen = 0;
        }
      }
    }
    lp2p_yamux_output_consumed(c->mx, total);
    if (total < want && k < LP2P__SW_IOV) break; /* the muxer has no more right now */
  }
  if (glen) {
    if ((rv = lp2p_noise_seal_frame(c->noise, b->data + out + 2, glen, b->data + out)) < 0) return rv;
    out += (size_t)rv;
  }
  return (int64_t)out;
}

/* Pushes pending engine output to the socket (in layer order). */
static int flush_out(lp2p__conn *c) {
  const uint8_t *p;
  size_t n;
  int rv;
  if (!c->io || c->state == LP2P__C_CONNECTING) return 0;
  /* multistream for /noise, then Noise handshake bytes (a dialer's msg1 follows its proposal) */
  const uint8_t *q = NULL;
  size_t m = 0;
  n = c->state == LP2P__C_MSS_SEC && c->mss ? lp2p_mss_output(c->mss, &p) : 0;
  if (c->noise) m = lp2p_noise_output(c->noise, &q);
  if (n || m) {
    if ((rv = n ? send_plain(c, p, n, q, m) : send_plain(c, q, m, NULL, 0)) < 0) return rv;
    if (n) lp2p_mss_output_consumed(c->mss, n);
    if (m) lp2p_noise_output_consumed(c->noise, m);
  }
  if (c->state == LP2P__C_MSS_MUX && c->mss && (n = lp2p_mss_output(c->mss, &p)) > 0) {
    if ((rv = write_sealed(c, p, n)) < 0) return rv;
    lp2p_mss_output_consumed(c->mss, n);
  }
  if (c->mx) {
    while (uv_stream_get_write_queue_size(c->io) < LP2P__SW_WRITE_HIGH && lp2p_yamux_want_output(c->mx)) {
      lp2p__wbuf *b = wbuf_get(c->sw, LP2P__SW_WBUF_CAP);
      if (!b) return LP2P_ERR_NOMEM;
      int64_t k = seal_yamux(c, b);
      if (k <= 0) {
        wbuf_put(c->sw, b);
        if (k < 0) return (int)k;
        /* the muxer has output but built none: out of memory, it retries on the next call (soon) */
        if (lp2p_yamux_want_output(c->mx)) c->flush_retry = 1;
        break;
      }
      if ((rv = send_buf(c, b, (size_t)k)) < 0) return rv;
    }
    if (uv_stream_get_write_queue_size(c->io) >= LP2P__SW_WRITE_HIGH) c->write_blocked = 1;
  }
  return 0;
}

void lp2p__conn_flush(lp2p__conn *c) {
  if (c->state == LP2P__C_CLOSING || c->close_queued) return;
  int rv = flush_out(c);
  lp2p__rcs_conn_sync(c);
  if (rv < 0) {
    conn_log(c, LP2P_LOG_DEBUG, "write failed:", rv);
    lp2p__conn_close(c, rv);
  }
}

/* ------------------------------------------------------------------------- */
/* yamux callbacks */

static lp2p_stream *stream_of(lp2p_yamux *mx, uint32_t id) { return lp2p_yamux_stream_user(mx, id); }

static int ycb_open(lp2p_yamux *mx, uint32_t id, void *ud) {
  (void)mx;
  return lp2p__stream_on_inbound(ud, id);
}
static void ycb_data(lp2p_yamux *mx, uint32_t id, const uint8_t *p, size_t n, void *ud) {
  (void)ud;
  lp2p_stream *s = stream_of(mx, id);
  if (s) lp2p__stream_mx_data(s, p, n);
}
static void ycb_eof(lp2p_yamux *mx, uint32_t id, void *ud) {
  (void)ud;
  lp2p_stream *s = stream_of(mx, id);
  if (s) lp2p__stream_mx_eof(s);
}
static void ycb_writable(lp2p_yamux *mx, uint32_t id, void *ud) {
  (void)ud;
  lp2p_stream *s = stream_of(mx, id);
  if (s) lp2p__stream_mx_writable(s);
}
static void ycb_close(lp2p_yamux *mx, uint32_t id, int err, void *ud) {
  (void)ud;
  lp2p_stream *s = stream_of(mx, id);
  if (s) lp2p__stream_mx_close(s, err);
  lp2p__conn_mark_dirty(ud); /* idleness may have changed */
}
static void ycb_pong(lp2p_yamux *mx, uint32_t rtt, void *ud) {
  (void)mx;
  lp2p__conn *c = ud;
  lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "conn #%llu keep-alive pong, rtt %u ms", (unsigned long long)c->id,
           rtt);
}
static void ycb_goaway(lp2p_yamux *mx, uint32_t code, void *ud) {
  (void)mx;
  lp2p__conn *c = ud;
  c->goaway_recv = 1;
  lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "conn #%llu: remote GoAway (code %u)", (unsigned long long)c->id,
           code);
  lp2p__conn_mark_dirty(c);
}

static void ycb_outbound(lp2p_yamux *mx, void *ud) {
  (void)mx;
  lp2p__conn_unblock(ud); /* below the un-ACKed SYN limit again: open the waiting streams */
}

static const lp2p_yamux_callbacks k_ycb = {
    .struct_size = sizeof(lp2p_yamux_callbacks),
    .on_stream_open = ycb_open,
    .on_stream_data = ycb_data,
    .on_stream_eof = ycb_eof,
    .on_stream_writable = ycb_writable,
    .on_stream_close = ycb_close,
    .on_pong = ycb_pong,
    .on_goaway = ycb_goaway,
};

/* ------------------------------------------------------------------------- */
/* upgrade pipeline */

static int new_noise(lp2p__conn *c) {
  lp2p_swarm *sw = c->sw;
  lp2p_noise_config nc;
  memset(&nc, 0, sizeof nc);
  nc.struct_size = sizeof nc;
  nc.initiator = c->dir == LP2P_DIR_OUTBOUND;
  nc.identity = sw->cfg.identity;
  nc.expected_remote = c->expected.len ? &c->expected : NULL;
  nc.muxers = k_mux_ids;
  nc.n_muxers = 1;
  nc.noise_identity = sw->noise_id;
  return lp2p_noise_new(&c->noise, &nc, &sw->mem);
}

static int start_yamux(lp2p__conn *c) {
  lp2p_swarm *sw = c->sw;
  lp2p_yamux_config yc;
  lp2p_yamux_config_default(&yc, c->dir == LP2P_DIR_OUTBOUND);
  yc.initial_window = sw->cfg.yamux_initial_window;
  yc.max_window = sw->cfg.yamux_max_window;
  /* the swarm enforces max_streams_per_conn itself (counting both directions,
   * with an event); yamux's own cap is a backstop just above it */
  if (sw->cfg.max_streams_per_conn) yc.max_inbound_streams = sw->cfg.max_streams_per_conn + 1;
  yc.keepalive_interval = sw->cfg.keepalive_interval_ms;
  yc.keepalive_timeout = sw->cfg.keepalive_timeout_ms;
  yc.max_frame_payload = LP2P_NOISE_MAX_PLAINTEXT; /* a payload is one Noise frame (seal_yamux) */
  int rv = lp2p_yamux_new(&c->mx, &yc, &k_ycb, c, &sw->mem);
  if (rv < 0) return rv;
  lp2p_yamux_set_on_outbound_available(c->mx, ycb_outbound);
  lp2p_mss_free(c->mss);
  c->mss = NULL;
  c->state = LP2P__C_READY;
  c->was_ready = 1;
  c->deadline = 0;
  if (c->counted_pending_in) {
    c->counted_pending_in = 0;
    sw->pending_inbound--;
  }
  conn_log(c, LP2P_LOG_DEBUG, "upgraded (noise, " LP2P_YAMUX_PROTOCOL_ID ")", 0);
  lp2p__rcs_conn_peer(c);
  lp2p__peer_conn_ready(sw, c);
  if (c->dial && !c->close_queued) {
    lp2p__dial *d = c->dial;
    c->dial = NULL;
    lp2p__dial_conn_ready(d, c);
  }
  return 0;
}

static int handshake_done(lp2p__conn *c) {
  lp2p_swarm *sw = c->sw;
  const lp2p_peer_id *rp = lp2p_noise_remote_peer(c->noise);
  if (!rp) return LP2P_ERR_HANDSHAKE;
  c->remote = *rp;
  if (c->expected.len && !lp2p_peer_id_equal(&c->expected, rp)) return LP2P_ERR_PEER_ID_MISMATCH;
  if (lp2p_peer_id_equal(rp, &sw->local)) return LP2P_ERR_HANDSHAKE;
  const char *mux = lp2p_noise_muxer(c->noise);
  conn_log(c, LP2P_LOG_DEBUG, mux ? "noise done, muxer from extension" : "noise done, muxer via multistream",
           0);
  if (mux) {
    if (strcmp(mux, LP2P_YAMUX_PROTOCOL_ID)) return LP2P_ERR_UNSUPPORTED;
    return start_yamux(c);
  }
  int rv = c->dir == LP2P_DIR_OUTBOUND
               ? lp2p_mss_new_dialer(&c->mss, k_mux_ids, 1, NULL, &sw->mem)
               : lp2p_mss_new_listener(&c->mss, &k_mux_registry, NULL, NULL, &sw->mem);
  if (rv < 0) return rv;
  c->state = LP2P__C_MSS_MUX;
  return 0;
}

/* Hands one decrypted frame to the current encrypted layer. */
static int deliver_plaintext(lp2p__conn *c, const uint8_t *p, size_t m) {
  if (c->state == LP2P__C_MSS_MUX) {
    int64_t k = lp2p_mss_feed(c->mss, p, m);
    if (k < 0) return (int)k;
    if (!lp2p_mss_done(c->mss)) return (size_t)k < m ? LP2P_ERR_PROTO : 0;
    /* the echo/answer must leave before any yamux frame */
    int rv = flush_out(c);
    if (rv < 0) return rv;
    if ((rv = start_yamux(c)) < 0) return rv;
    p += k;
    m -= (size_t)k;
    if (!m || c->close_queued) return 0;
  }
  if (c->state != LP2P__C_READY || !m) return 0;
  c->in_feed = 1;
  int64_t k = lp2p_yamux_feed(c->mx, p, m, lp2p__swarm_now(c->sw));
  c->in_feed = 0;
  if (k < 0) return (int)k;
  if (!c->remote_seen) {
    c->remote_seen = 1;
    if (c->peer && c->peer->primary) lp2p__peer_open_waiting(c->sw, c->peer);
  }
  return 0;
}

/* Transport frames after the handshake: every complete frame is decrypted in place and handed on;
 * a trailing partial frame is left unconsumed. Returns the bytes used or an error. */
static int64_t drive_frames(lp2p__conn *c, uint8_t *in, size_t len) {
  size_t off = 0;
  while (len - off >= 2 && !c->close_queued) {
    size_t body = ((size_t)in[off] << 8) | in[off + 1];
    if (len - off - 2 < body) break;
    size_t m;
    int rv = lp2p_noise_open_frame(c->noise, in + off + 2, body, &m);
    if (rv < 0) return rv;
    if ((rv = deliver_plaintext(c, in + off + 2, m)) < 0) return rv;
    off += 2 + body;
  }
  return c->close_queued ? (int64_t)len : (int64_t)off;
}

/* Runs received bytes through the layers. Returns bytes used, or an error. */
static int64_t drive(lp2p__conn *c, uint8_t *in, size_t len) {
  size_t off = 0;
  int rv;
  for (;;) {
    if (c->close_queued) return (int64_t)len;
    switch (c->state) {
      case LP2P__C_MSS_SEC: {
        if (off == len) return (int64_t)off;
        int64_t k = lp2p_mss_feed(c->mss, in + off, len - off);
        if (k < 0) return k;
        off += (size_t)k;
        if (!lp2p_mss_done(c->mss)) {
          if (off < len) return LP2P_ERR_PROTO;
          return (int64_t)off;
        }
        conn_log(c, LP2P_LOG_DEBUG, "security negotiated: " LP2P_NOISE_PROTOCOL_ID, 0);
        if ((rv = flush_out(c)) < 0) return rv; /* our mss answer precedes noise bytes */
        lp2p_mss_free(c->mss);
        c->mss = NULL;
        if (!c->noise && (rv = new_noise(c)) < 0) return rv; /* (a dialer's session exists already) */
        c->state = LP2P__C_NOISE;
        continue;
      }
      case LP2P__C_NOISE: {
        int64_t k = 0;
        if (off < len) {
          k = lp2p_noise_feed(c->noise, in + off, len - off);
          if (k < 0) return k;
          off += (size_t)k;
        }
        if (lp2p_noise_handshake_done(c->noise)) {
          if ((rv = handshake_done(c)) < 0) return rv;
          continue; /* the rest are transport frames (the engine stops after the last message) */
        }
        if (off == len || k == 0) return (int64_t)off;
        continue;
      }
      case LP2P__C_MSS_MUX:
      case LP2P__C_READY: {
        int64_t k = drive_frames(c, in + off, len - off);
        if (k < 0) return k;
        return (int64_t)(off + (size_t)k);
      }
      default:
        return (int64_t)len;
    }
  }
}

/* The swarm's read buffer holds p[0..n) = this connection's earlier partial frame + new bytes. */
static void conn_input(lp2p__conn *c, uint8_t *p, size_t n) {
  lp2p_swarm *sw = c->sw;
  int64_t used = drive(c, p, n);
  if (used < 0) {
    conn_log(c, LP2P_LOG_DEBUG, "malformed input from peer, closing:", (int)used);
    lp2p__conn_close(c, (int)used);
    return;
  }
  size_t left = n - (size_t)used;
  if (left > LP2P__SW_MAX_LEFTOVER) { /* cannot happen with the layers' own buffering: be safe */
    lp2p__conn_close(c, LP2P_ERR_TOO_LARGE);
    return;
  }
  if (left && !c->close_queued) {
    sw->rb_owner = c; /* stays in the read buffer until another connection reads */
    sw->rb_off = (size_t)used;
    sw->rb_len = left;
  }
  if (c->goaway_recv && c->live) lp2p__peer_conn_gone(sw, c, LP2P_ERR_GOAWAY);
  lp2p__conn_mark_dirty(c);
}

/* The read buffer is needed by another connection: the owner's partial frame moves to its rbuf. */
static int rb_evict(lp2p_swarm *sw) {
  lp2p__conn *o = sw->rb_owner;
  sw->rb_owner = NULL;
  sw->rb_evictions++;
  o->rbuf.len = 0;
  if (lp2p__bytes_append(&sw->mem, &o->rbuf, sw->readbuf + sw->rb_off, sw->rb_len) < 0) {
    lp2p__conn_close(o, LP2P_ERR_NOMEM);
    return LP2P_ERR_NOMEM;
  }
  return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  lp2p__conn *c = h->data;
  lp2p_swarm *sw = c->sw;
  size_t keep = 0;
  (void)suggested;
  if (sw->rb_owner && sw->rb_owner != c) rb_evict(sw);
  if (sw->rb_owner == c) {
    memmove(sw->readbuf, sw->readbuf + sw->rb_off, sw->rb_len);
    keep = sw->rb_len;
  } else if (c->rbuf.len) {
    memcpy(sw->readbuf, c->rbuf.data, c->rbuf.len);
    keep = c->rbuf.len;
    lp2p__bytes_free(&sw->mem, &c->rbuf); /* idle connections keep no buffer */
  }
  sw->rb_owner = keep ? c : NULL;
  sw->rb_off = 0;
  sw->rb_len = keep;
  buf->base = (char *)sw->readbuf + keep;
  buf->len = LP2P__SW_READ_BUF - keep;
}

static void read_cb(uv_stream_t *io, ssize_t nread, const uv_buf_t *buf) {
  lp2p__conn *c = io->data;
  lp2p_swarm *sw = c->sw;
  (void)buf;
  if (c->state == LP2P__C_CLOSING) {
    /* lingering after our shutdown: discard until the peer closes too */
    if (nread < 0) {
      c->eof_seen = 1;
      close_io(c);
      close_timer(c);
    }
    return;
  }
  if (nread == 0) return;
  lp2p__swarm_enter(sw);
  if (nread < 0) {
    c->eof_seen = 1; /* libuv stops reading after EOF/errors */
    int reason = nread == UV_EOF ? LP2P_ERR_EOF : lp2p__uv_err((int)nread);
    if (c->mx && lp2p_yamux_remote_goaway(c->mx, NULL) && reason == LP2P_ERR_EOF) reason = LP2P_ERR_GOAWAY;
    lp2p__conn_close(c, reason);
  } else {
    /* alloc_cb put this connection's partial frame (if any) in front of the new bytes */
    size_t keep = sw->rb_owner == c ? sw->rb_len : 0;
    sw->rb_owner = NULL;
    conn_input(c, sw->readbuf, keep + (size_t)nread);
  }
  lp2p__swarm_leave(sw);
}

static int start_reading(lp2p__conn *c) {
  int rv = uv_read_start(c->io, alloc_cb, read_cb);
  if (rv) return lp2p__uv_err(rv);
  c->reading = 1;
  return 0;
}

static void on_connect(uv_connect_t *req, int status) {
  lp2p__conn *c = req->data;
  lp2p_swarm *sw = c->sw;
  if (status == UV_ECANCELED || c->state == LP2P__C_CLOSING) return;
  lp2p__swarm_enter(sw);
  int rv = status < 0 ? lp2p__uv_err(status) : 0;
  if (!rv) {
    c->tr->addrs(c->io, &c->local_addr, NULL);
    rv = lp2p_mss_new_dialer(&c->mss, k_noise_ids, 1, NULL, &sw->mem);
  }
  /* lazy (multistream V1Lazy, as rust-libp2p dials): Noise msg1 follows the /noise proposal in the
   * same write instead of waiting a round trip for the echo; js-libp2p and go-libp2p listeners keep
   * the bytes after the proposal for the negotiated protocol. A listener without /noise answers "na":
   * the dial fails as it would anyway. */
  if (!rv) rv = new_noise(c);
  if (!rv) {
    c->state = LP2P__C_MSS_SEC;
    rv = start_reading(c);
  }
  if (!rv) {
    conn_log(c, LP2P_LOG_DEBUG, "tcp connected", 0);
    lp2p__conn_mark_dirty(c);
  } else {
    conn_log(c, LP2P_LOG_DEBUG, "connect failed:", rv);
    lp2p__conn_close(c, rv);
  }
  lp2p__swarm_leave(sw);
}

/* ------------------------------------------------------------------------- */
/* creation */

int lp2p__conn_new_outbound(lp2p_swarm *sw, lp2p__dial *d, const lp2p_multiaddr *ma,
                            const lp2p_peer_id *expect, lp2p__conn **out) {
  const lp2p__transport *tr = lp2p__transport_for(ma, 0);
  if (!tr) return LP2P_ERR_UNSUPPORTED;
  if (sw->cfg.max_outbound_conns && sw->n_outbound >= sw->cfg.max_outbound_conns) return LP2P_ERR_LIMIT;
  lp2p__conn *c = conn_alloc(sw, LP2P_DIR_OUTBOUND);
  if (!c) return LP2P_ERR_NOMEM;
  c->tr = tr;
  c->state = LP2P__C_CONNECTING;
  c->remote_addr = lp2p_multiaddr_dup(ma);
  if (expect && expect->len) c->expected = *expect;
  c->connect_req.data = c;
  int rv = c->remote_addr ? 0 : LP2P_ERR_NOMEM;
  if (!rv) rv = tr->dial(sw->loop, &sw->mem, ma, &c->io, &c->connect_req, on_connect);
  if (c->io) {
    c->io->data = c;
    c->io_open = 1;
    sw->handles++;
  }
  if (rv < 0) {
    /* not a live attempt yet: tear down quietly, the caller records the error */
    c->state = LP2P__C_CLOSING;
    lp2p__list_del(&c->sw_link);
    close_io(c);
    close_timer(c);
    return rv;
  }
  sw->dial_count++;
  sw->n_outbound++;
  c->counted_out = 1;
  c->dial = d;
  if (sw->cfg.dial_timeout_ms) c->deadline = lp2p__swarm_now(sw) + sw->cfg.dial_timeout_ms;
  conn_log(c, LP2P_LOG_DEBUG, "dialing", 0);
  lp2p__conn_arm(c);
  *out = c;
  return 0;
}

static void raw_close_cb(uv_handle_t *h) {
  lp2p_swarm *sw = h->data;
  lp2p__free(&sw->mem, h);
  lp2p__swarm_handle_closed(sw);
}

static void emit_inbound_failed(lp2p_swarm *sw, const lp2p_multiaddr *addr, int err) {
  lp2p_swarm_event ev;
  memset(&ev, 0, sizeof ev);
  ev.struct_size = sizeof ev;
  ev.type = LP2P_SWARM_EV_INBOUND_CONN_FAILED;
  ev.addr = addr;
  ev.dir = LP2P_DIR_INBOUND;
  ev.err = err;
  lp2p__swarm_emit(sw, &ev);
}

void lp2p__conn_accept(lp2p_swarm *sw, lp2p__listener *l) {
  uv_stream_t *io = NULL;
  int rv = l->tr->accept(l->srv, &sw->mem, &io);
  if (rv < 0 || sw->freeing ||
      (sw->cfg.max_pending_inbound && sw->pending_inbound >= sw->cfg.max_pending_inbound) ||
      (sw->cfg.max_inbound_conns && sw->n_inbound >= sw->cfg.max_inbound_conns)) {
    int err = rv < 0 ? rv : LP2P_ERR_LIMIT;
    lp2p_multiaddr *remote = NULL;
    if (io && rv == 0) l->tr->addrs(io, NULL, &remote);
    char ab[256];
    lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "inbound connection from %s refused: %s",
             lp2p__ma_str(remote, ab, sizeof ab), lp2p_err_name(err));
    if (io) {
      io->data = sw;
      sw->handles++;
      uv_close((uv_handle_t *)io, raw_close_cb);
    }
    emit_inbound_failed(sw, remote, err);
    lp2p_multiaddr_free(remote);
    return;
  }
  lp2p__conn *c = conn_alloc(sw, LP2P_DIR_INBOUND);
  if (!c) {
    io->data = sw;
    sw->handles++;
    uv_close((uv_handle_t *)io, raw_close_cb);
    return;
  }
  c->tr = l->tr;
  c->io = io;
  io->data = c;
  c->io_open = 1;
  sw->handles++;
  c->state = LP2P__C_MSS_SEC;
  sw->n_inbound++;
  c->counted_in = 1;
  sw->pending_inbound++;
  c->counted_pending_in = 1;
  if (sw->cfg.handshake_timeout_ms) c->deadline = lp2p__swarm_now(sw) + sw->cfg.handshake_timeout_ms;
  rv = l->tr->addrs(io, &c->local_addr, &c->remote_addr);
  if (!rv) rv = lp2p_mss_new_listener(&c->mss, &k_sec_registry, NULL, NULL, &sw->mem);
  if (!rv) rv = start_reading(c);
  conn_log(c, LP2P_LOG_DEBUG, rv ? "accept failed:" : "accepted", rv);
  if (rv < 0)
    lp2p__conn_close(c, rv);
  else
    lp2p__conn_arm(c);
}

/* ------------------------------------------------------------------------- */
/* timers, idleness */

static int conn_is_idle(lp2p__conn *c) {
  if (c->n_streams || lp2p_yamux_stream_count(c->mx)) return 0;
  lp2p__peer *pe = c->peer;
  if (!c->live) return 1; /* demoted: close as soon as its streams are done */
  if (pe && (pe->holds > 0 || !lp2p__list_empty(&pe->waiting))) return 0;
  if (pe && lp2p__behaviours_keep_alive(c->sw, &pe->id)) return 0;
  return 1;
}

static void timer_cb(uv_timer_t *t);

void lp2p__conn_arm(lp2p__conn *c) {
  lp2p_swarm *sw = c->sw;
  if (c->state == LP2P__C_CLOSING || c->close_queued) return;
  lp2p_tstamp now = lp2p__swarm_now(sw), due = LP2P_TSTAMP_NEVER;
  if (c->state != LP2P__C_READY) {
    if (c->deadline) due = c->deadline;
  } else {
    if (c->goaway_recv && c->live) lp2p__peer_conn_gone(sw, c, LP2P_ERR_GOAWAY);
    if (lp2p_yamux_error(c->mx)) {
      lp2p__conn_close(c, lp2p_yamux_error(c->mx));
      return;
    }
    lp2p_tstamp y = lp2p_yamux_next_expiry(c->mx);
    if (y < due) due = y;
    if (c->flush_retry) {
      c->flush_retry = 0;
      if (now + LP2P__SW_RETRY_MS < due) due = now + LP2P__SW_RETRY_MS; /* timer_cb marks c dirty */
    }
    if (c->n_negotiating) {
      for (lp2p__link *it = c->streams.next; it != &c->streams; it = it->next) {
        lp2p_stream *s = LP2P__CONTAINER(it, lp2p_stream, conn_link);
        if (s->state == LP2P__ST_NEGOTIATING && s->nego_deadline && s->nego_deadline < due)
          due = s->nego_deadline;
      }
    }
    if (c->mx_blocked && c->peer && c->peer->primary == c) {
      lp2p_tstamp w = lp2p__peer_waiting_due(c->peer);
      if (w < due) due = w;
    }
    int demoted = !c->live;
    if (demoted || sw->cfg.idle_timeout_ms) {
      if (conn_is_idle(c)) {
        if (demoted) {
          lp2p__conn_close(c, c->goaway_recv ? LP2P_ERR_GOAWAY : LP2P_ERR_CLOSED);
          return;
        }
        if (!c->idle_since) c->idle_since = now;
        lp2p_tstamp at = c->idle_since + sw->cfg.idle_timeout_ms;
        if (at < due) due = at;
      } else {
        c->idle_since = 0;
        if (!demoted) {
          /* re-check later: keep-alive holds/hooks can change without traffic */
          lp2p_tstamp at = now + sw->cfg.idle_timeout_ms;
          if (at < due) due = at;
        }
      }
    }
  }
  /* re-arm only for an earlier deadline: firing early is harmless (timer_cb re-checks everything and
   * re-arms), and most flushes leave the deadline where it was */
  if (due == LP2P_TSTAMP_NEVER) {
    if (c->armed) uv_timer_stop(&c->timer);
    c->armed = 0;
  } else if (!c->armed || due < c->armed) {
    uv_timer_start(&c->timer, timer_cb, due > now ? due - now : 0, 0);
    c->armed = due ? due : 1;
  }
}

static void timer_cb(uv_timer_t *t) {
  lp2p__conn *c = t->data;
  lp2p_swarm *sw = c->sw;
  c->armed = 0;
  if (c->state == LP2P__C_CLOSING || c->close_queued) return;
  lp2p__swarm_enter(sw);
  lp2p_tstamp now = lp2p__swarm_now(sw);
  if (c->state != LP2P__C_READY) {
    if (c->deadline && now >= c->deadline) {
      conn_log(c, LP2P_LOG_DEBUG, c->dir == LP2P_DIR_OUTBOUND ? "dial timed out" : "handshake timed out", 0);
      lp2p__conn_close(c, LP2P_ERR_TIMEOUT);
    }
  } else {
    int rv = lp2p_yamux_handle_expiry(c->mx, now);
    if (rv < 0) {
      conn_log(c, LP2P_LOG_DEBUG, "keep-alive failed:", rv);
      lp2p__conn_close(c, rv);
    } else {
      for (lp2p__link *it = c->streams.next; c->n_negotiating && it != &c->streams;) {
        lp2p_stream *s = LP2P__CONTAINER(it, lp2p_stream, conn_link);
        it = it->next;
        lp2p__stream_check_deadline(s, now);
      }
      if (c->mx_blocked && c->peer && c->peer->primary == c) lp2p__peer_expire_waiting(sw, c->peer, now);
      if (c->live && sw->cfg.idle_timeout_ms && c->idle_since &&
          now >= c->idle_since + sw->cfg.idle_timeout_ms && conn_is_idle(c)) {
        conn_log(c, LP2P_LOG_DEBUG, "idle, closing", 0);
        lp2p__conn_close(c, LP2P_ERR_CLOSED);
      }
    }
  }
  lp2p__conn_mark_dirty(c);
  lp2p__swarm_leave(sw);
}

/* ------------------------------------------------------------------------- */
/* GoAway / teardown */

int lp2p__conn_can_open(const lp2p__conn *c) {
  return (c->remote_seen || c->n_streams < LP2P__SW_EARLY_STREAMS) && !c->mx_blocked;
}

void lp2p__conn_unblock(lp2p__conn *c) {
  if (!c->mx_blocked) return;
  c->mx_blocked = 0;
  if (c->peer && c->peer->primary == c) lp2p__peer_open_waiting(c->sw, c->peer); /* may block again */
}

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

void lp2p__conn_goaway(lp2p__conn *c) {
  if (!c->goaway_sent && c->mx) {
    lp2p_yamux_go_away(c->mx, LP2P_YAMUX_GOAWAY_NORMAL);
    c->goaway_sent = 1;
  }
  if (c->live) lp2p__peer_conn_gone(c->sw, c, LP2P_ERR_GOAWAY);
  lp2p__conn_mark_dirty(c);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  lp2p__conn *c = req->data;
  /* on success keep reading until the peer's EOF (or the grace timer), so
   * that unread bytes do not turn our close into a reset */
  if (status < 0 || !c->reading || c->eof_seen) {
    close_io(c);
    close_timer(c);
  }
}

static void grace_cb(uv_timer_t *t) {
  lp2p__conn *c = t->data;
  close_io(c);
  close_timer(c);
}

void lp2p__conn_teardown(lp2p__conn *c) {
  lp2p_swarm *sw = c->sw;
  int reason = c->close_reason;
  lp2p__conn_state prev = c->state;
  c->state = LP2P__C_CLOSING;
  c->tearing = 1;
  if (sw->rb_owner == c) sw->rb_owner = NULL; /* its partial frame is of no use now */
  lp2p__list_del(&c->pending_link);
  lp2p__list_del(&c->sw_link);
  conn_log(c, LP2P_LOG_DEBUG, "closed:", reason);

  if (c->dial) {
    lp2p__dial *d = c->dial;
    c->dial = NULL;
    lp2p__dial_conn_failed(d, c, reason);
  }
  if (c->counted_pending_in) {
    c->counted_pending_in = 0;
    sw->pending_inbound--;
  }
  if (c->counted_in) sw->n_inbound--;
  if (c->counted_out) sw->n_outbound--;
  c->counted_in = c->counted_out = 0;
  if (c->dir == LP2P_DIR_INBOUND && !c->was_ready && reason != LP2P_ERR_CANCELED)
    emit_inbound_failed(sw, c->remote_addr, reason);

  /* streams first, then the per-peer transition */
  while (!lp2p__list_empty(&c->streams)) {
    lp2p_stream *s = LP2P__CONTAINER(c->streams.next, lp2p_stream, conn_link);
    lp2p__stream_fail(s, reason);
  }
  if (c->peer) {
    lp2p__peer *pe = c->peer;
    lp2p__list_del(&c->peer_link);
    lp2p__peer_conn_gone(sw, c, reason);
    c->peer = NULL;
    /* streams waiting for this peer: another connection, a dial in progress, or failure */
    if (pe->primary)
      lp2p__peer_open_waiting(sw, pe);
    else if (!pe->dial)
      lp2p__peer_fail_waiting(sw, pe, reason);
  }

  /* say goodbye when the close is ours and the transport still works */
  int graceful = c->io && c->reading && !c->eof_seen &&
                 (reason == LP2P_ERR_CANCELED || reason == LP2P_ERR_CLOSED || reason == LP2P_ERR_PROTO ||
                  reason == LP2P_ERR_WINDOW || reason == LP2P_ERR_LIMIT || reason == LP2P_ERR_GOAWAY ||
                  reason == LP2P_ERR_TOO_LARGE || reason == LP2P_ERR_UNSUPPORTED ||
                  (reason == LP2P_ERR_TIMEOUT && prev != LP2P__C_READY));
  if (graceful) {
    if (c->mx && !c->goaway_sent && !lp2p_yamux_error(c->mx)) {
      lp2p_yamux_go_away(c->mx, LP2P_YAMUX_GOAWAY_NORMAL);
      c->goaway_sent = 1;
    }
    c->state = prev; /* flush_out checks the layer state */
    if (flush_out(c) < 0) graceful = 0;
    c->state = LP2P__C_CLOSING;
  }
  lp2p_yamux_free(c->mx);
  c->mx = NULL;
  lp2p__rcs_conn_close(c);
  lp2p_noise_free(c->noise);
  c->noise = NULL;
  lp2p_mss_free(c->mss);
  c->mss = NULL;

  if (!graceful && c->io && c->reading) {
    uv_read_stop(c->io);
    c->reading = 0;
  }
  if (graceful && c->io) {
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, c->io, shutdown_cb) == 0) {
      c->shutting_down = 1;
      uv_timer_start(&c->timer, grace_cb, LP2P__SW_CLOSE_GRACE_MS, 0);
      return;
    }
  }
  if (c->io && c->reading) uv_read_stop(c->io);
  close_io(c);
  close_timer(c);
}
