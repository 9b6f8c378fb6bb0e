/* muxer/yamux_stream.c - per-stream state: send ring, flow control (receive
 * window updates with auto-tuning, send window), half-close, reset, and the
 * stream-level public API. */
#include "muxer/yamux_int.h"

/* ---- send ring ---- */

static void ring_copy(const lp2p__yamux_ring *r, uint8_t *dst, size_t n) {
  size_t first = r->cap - r->head;
  if (first > n) first = n;
  memcpy(dst, r->data + r->head, first);
  memcpy(dst + first, r->data, n - first);
}

static void ring_pop(lp2p__yamux_ring *r, size_t n) {
  r->head += n;
  if (r->head >= r->cap) r->head -= r->cap;
  r->len -= n;
  if (!r->len) r->head = 0;
}

static void ring_free(const lp2p_mem *mem, lp2p__yamux_ring *r) {
  lp2p__free(mem, r->data);
  memset(r, 0, sizeof *r);
}

static int ring_push(const lp2p_mem *mem, lp2p__yamux_ring *r, const uint8_t *p, size_t n) {
  if (n > r->cap - r->len) {
    size_t need = r->len + n, ncap = r->cap ? r->cap * 2 : 16384;
    if (ncap < need) ncap = need;
    size_t lim = (size_t)LP2P_YAMUX_SEND_BUFFER_MAX + LP2P_YAMUX_SEND_SLACK; /* writes never exceed it */
    if (ncap > lim && need <= lim) ncap = lim;
    uint8_t *nd = lp2p__malloc(mem, ncap);
    if (!nd) return LP2P_ERR_NOMEM;
    if (r->len) ring_copy(r, nd, r->len);
    lp2p__free(mem, r->data);
    r->data = nd;
    r->cap = ncap;
    r->head = 0;
  }
  size_t tail = r->head + r->len;
  if (tail >= r->cap) tail -= r->cap;
  size_t first = r->cap - tail;
  if (first > n) first = n;
  memcpy(r->data + tail, p, first);
  memcpy(r->data, p + first, n - first);
  r->len += n;
  return 0;
}

/* ---- lifecycle ---- */

lp2p__yamux_stream *lp2p__yamux_stream_new(lp2p_yamux *mx, uint32_t id, uint32_t flags) {
  lp2p__yamux_stream *s = lp2p__calloc(&mx->mem, 1, sizeof *s);
  if (!s) return NULL;
  s->id = id;
  s->flags = flags;
  s->send_window = LP2P_YAMUX_DEFAULT_WINDOW;
  s->recv_win = mx->cfg.initial_window;
  s->recv_avail = LP2P_YAMUX_DEFAULT_WINDOW; /* what the peer assumes until we advertise more */
  s->epoch = mx->now;
  if (lp2p__yamux_map_put(&mx->mem, &mx->map, s)) {
    lp2p__free(&mx->mem, s);
    return NULL;
  }
  mx->n_streams++;
  if (!(flags & YX_OUTBOUND)) mx->n_inbound++;
  return s;
}

void lp2p__yamux_stream_destroy(lp2p_yamux *mx, lp2p__yamux_stream *s) {
  ring_free(&mx->mem, &s->sbuf);
  lp2p__free(&mx->mem, s);
}

void lp2p__yamux_stream_close(lp2p_yamux *mx, lp2p__yamux_stream *s, int err) {
  if (s->flags & YX_CLOSED) return;
  lp2p__yamux_ready_del(mx, s);
  s->flags |= YX_CLOSED;
  s->flags &= ~(uint32_t)YX_WANT_WRITABLE;
  s->close_err = err;
  ring_free(&mx->mem, &s->sbuf);
  mx->n_streams--;
  if (!(s->flags & YX_OUTBOUND)) {
    mx->n_inbound--;
    lp2p__yamux_recent_add(mx, s->id);
  }
  if (s->flags & YX_AWAIT_ACK) {
    s->flags &= ~(uint32_t)YX_AWAIT_ACK;
    mx->n_unacked--;
  }
  s->cnext = NULL;
  if (mx->closing_tail)
    mx->closing_tail->cnext = s;
  else
    mx->closing = s;
  mx->closing_tail = s;
}

lp2p__yamux_stream *lp2p__yamux_live(const lp2p_yamux *mx, uint32_t id) {
  lp2p__yamux_stream *s = lp2p__yamux_map_get(&mx->map, id);
  return s && !(s->flags & YX_CLOSED) ? s : NULL;
}

/* ---- send side ---- */

size_t lp2p__yamux_writable(const lp2p__yamux_stream *s) {
  uint64_t cap = s->send_window < LP2P_YAMUX_SEND_BUFFER_MAX ? s->send_window : LP2P_YAMUX_SEND_BUFFER_MAX;
  cap += LP2P_YAMUX_SEND_SLACK;
  return s->sbuf.len >= cap ? 0 : (size_t)(cap - s->sbuf.len);
}

void lp2p__yamux_ready_add(lp2p_yamux *mx, lp2p__yamux_stream *s) {
  if (s->flags & YX_READY) return;
  s->flags |= YX_READY;
  if (!mx->ready) {
    s->rnext = s->rprev = s;
    mx->ready = s;
    return;
  }
  /* Insert at the tail (just before the head). */
  s->rnext = mx->ready;
  s->rprev = mx->ready->rprev;
  mx->ready->rprev->rnext = s;
  mx->ready->rprev = s;
}

void lp2p__yamux_ready_del(lp2p_yamux *mx, lp2p__yamux_stream *s) {
  if (!(s->flags & YX_READY)) return;
  s->flags &= ~(uint32_t)YX_READY;
  if (s->rnext == s) {
    mx->ready = NULL;
  } else {
    s->rprev->rnext = s->rnext;
    s->rnext->rprev = s->rprev;
    if (mx->ready == s) mx->ready = s->rnext;
  }
  s->rnext = s->rprev = NULL;
}

void lp2p__yamux_stream_room(lp2p_yamux *mx, lp2p__yamux_stream *s) {
  if (s->flags & YX_CLOSED) return;
  if (s->sbuf.len && s->send_window) lp2p__yamux_ready_add(mx, s);
  if ((s->flags & YX_WANT_WRITABLE) && lp2p__yamux_writable(s) > 0) {
    s->flags &= ~(uint32_t)YX_WANT_WRITABLE;
    if ((s->flags & YX_ANNOUNCED) && mx->cb.on_stream_writable) {
      mx->depth++;
      mx->cb.on_stream_writable(mx, s->id, mx->ud);
      mx->depth--;
    }
  }
}

int lp2p__yamux_emit_data(lp2p_yamux *mx, lp2p__yamux_stream *s) {
  uint64_t chunk = s->sbuf.len;
  if (chunk > s->send_window) chunk = s->send_window;
  if (chunk > mx->max_frame) chunk = mx->max_frame;
  /* The FIN after the last bytes goes in its own WindowUpdate frame: js-libp2p-yamux 8.x applies a
   * Data frame's flags before its payload and would drop the payload of a Data+FIN frame. */
  int fin = (s->flags & YX_FIN_QUEUED) && chunk == s->sbuf.len;
  size_t need = LP2P__YAMUX_HDR_LEN + (size_t)chunk + (fin ? LP2P__YAMUX_HDR_LEN : 0);
  uint8_t *p = lp2p__yamux_out_reserve(mx, need);
  if (!p) return LP2P_ERR_NOMEM;
  lp2p__yamux_hdr_encode(p, LP2P__YAMUX_DATA, 0, s->id, (uint32_t)chunk);
  ring_copy(&s->sbuf, p + LP2P__YAMUX_HDR_LEN, (size_t)chunk);
  if (fin) {
    lp2p__yamux_hdr_encode(p + LP2P__YAMUX_HDR_LEN + chunk, LP2P__YAMUX_WINDOW_UPDATE, LP2P__YAMUX_FIN, s->id,
                           0);
    s->flags |= YX_FIN_SENT;
  }
  mx->out_len += need;
  ring_pop(&s->sbuf, (size_t)chunk);
  s->send_window -= chunk;
  if (!s->sbuf.len) ring_free(&mx->mem, &s->sbuf);
  return 0;
}

/* ---- receive side ---- */

uint32_t lp2p__yamux_consumable(const lp2p_yamux *mx, const lp2p__yamux_stream *s) {
  uint32_t inflight = mx->body_stream == s ? mx->body_left : 0;
  return s->recv_held - inflight;
}

int lp2p__yamux_maybe_window_update(lp2p_yamux *mx, lp2p__yamux_stream *s) {
  if ((s->flags & (YX_CLOSED | YX_REMOTE_FIN)) || mx->err) return 0;
  uint64_t used = (uint64_t)s->recv_avail + s->recv_held;
  uint64_t delta = s->recv_win > used ? s->recv_win - used : 0;
  if (delta < s->recv_win / 2) return 0;
  /* Auto-tuning: the window went by within tune_rtts RTTs of the last update => double it. */
  lp2p_tstamp age = mx->now >= s->epoch ? mx->now - s->epoch : 0;
  if (mx->rtt && s->recv_win < mx->cfg.max_window && age < (lp2p_tstamp)mx->tune_rtts * mx->rtt) {
    uint64_t nw = (uint64_t)s->recv_win * 2;
    s->recv_win = nw > mx->cfg.max_window ? mx->cfg.max_window : (uint32_t)nw;
    delta = s->recv_win - used;
  }
  int rv = lp2p__yamux_emit(mx, LP2P__YAMUX_WINDOW_UPDATE, 0, s->id, (uint32_t)delta);
  if (rv) return rv;
  s->recv_avail += (uint32_t)delta;
  s->epoch = mx->now;
  return 0;
}

void lp2p__yamux_remote_fin(lp2p_yamux *mx, lp2p__yamux_stream *s) {
  if (s->flags & (YX_CLOSED | YX_REMOTE_FIN)) return;
  s->flags |= YX_REMOTE_FIN;
  if ((s->flags & YX_ANNOUNCED) && mx->cb.on_stream_eof) {
    mx->depth++;
    mx->cb.on_stream_eof(mx, s->id, mx->ud);
    mx->depth--;
  }
  if (!(s->flags & YX_CLOSED) && (s->flags & YX_FIN_SENT)) lp2p__yamux_stream_close(mx, s, 0);
}

/* ---- public stream API ---- */

int64_t lp2p_yamux_write(lp2p_yamux *mx, uint32_t id, const uint8_t *p, size_t n) {
  if (!mx || (!p && n)) return LP2P_ERR_INVAL;
  if (mx->err) return mx->err;
  lp2p__yamux_stream *s = lp2p__yamux_map_get(&mx->map, id);
  if (!s) return LP2P_ERR_NOT_FOUND;
  if (s->flags & (YX_CLOSED | YX_FIN_QUEUED)) return LP2P_ERR_CLOSED;
  if (!n) return 0;
  size_t k = lp2p__yamux_writable(s);
  if (k > n) k = n;
  if (k) {
    int rv = ring_push(&mx->mem, &s->sbuf, p, k);
    if (rv) return rv;
    if (s->send_window) lp2p__yamux_ready_add(mx, s);
  }
  if (k < n) s->flags |= YX_WANT_WRITABLE;
  return (int64_t)k;
}

size_t lp2p_yamux_write_capacity(const lp2p_yamux *mx, uint32_t id) {
  if (!mx || mx->err) return 0;
  lp2p__yamux_stream *s = lp2p__yamux_live(mx, id);
  if (!s || (s->flags & YX_FIN_QUEUED)) return 0;
  return lp2p__yamux_writable(s);
}

int lp2p_yamux_close_write(lp2p_yamux *mx, uint32_t id) {
  if (!mx) return LP2P_ERR_INVAL;
  if (mx->err) return mx->err;
  lp2p__yamux_stream *s = lp2p__yamux_map_get(&mx->map, id);
  if (!s) return LP2P_ERR_NOT_FOUND;
  if (s->flags & YX_CLOSED) return LP2P_ERR_CLOSED;
  if (s->flags & YX_FIN_QUEUED) return 0;
  if (!s->sbuf.len && !lp2p__yamux_out_reserve(mx, LP2P__YAMUX_HDR_LEN)) return LP2P_ERR_NOMEM;
  lp2p__yamux_enter(mx);
  s->flags |= YX_FIN_QUEUED;
  s->flags &= ~(uint32_t)YX_WANT_WRITABLE;
  int rv = 0;
  if (!s->sbuf.len) { /* nothing buffered: FIN now, else it rides on the last Data frame */
    rv = lp2p__yamux_emit(mx, LP2P__YAMUX_WINDOW_UPDATE, LP2P__YAMUX_FIN, id, 0);
    if (!rv) {
      s->flags |= YX_FIN_SENT;
      if (s->flags & YX_REMOTE_FIN) lp2p__yamux_stream_close(mx, s, 0);
    }
  }
  lp2p__yamux_leave(mx);
  return rv;
}

int lp2p_yamux_reset(lp2p_yamux *mx, uint32_t id) {
  if (!mx) return LP2P_ERR_INVAL;
  lp2p__yamux_stream *s = lp2p__yamux_map_get(&mx->map, id);
  if (!s) return mx->err ? mx->err : LP2P_ERR_NOT_FOUND;
  if (s->flags & YX_CLOSED) return 0;
  if (!lp2p__yamux_out_reserve(mx, LP2P__YAMUX_HDR_LEN)) return LP2P_ERR_NOMEM;
  lp2p__yamux_enter(mx);
  int rv = lp2p__yamux_emit(mx, LP2P__YAMUX_WINDOW_UPDATE, LP2P__YAMUX_RST, id, 0);
  lp2p__yamux_stream_close(mx, s, LP2P_ERR_CANCELED); /* no-op if emit failed the session */
  lp2p__yamux_leave(mx);
  return rv;
}

int lp2p_yamux_consume(lp2p_yamux *mx, uint32_t id, size_t n) {
  if (!mx) return LP2P_ERR_INVAL;
  if (mx->err) return mx->err;
  lp2p__yamux_stream *s = lp2p__yamux_map_get(&mx->map, id);
  if (!s) return LP2P_ERR_NOT_FOUND;
  if (s->flags & YX_CLOSED) return 0;
  if (n > lp2p__yamux_consumable(mx, s)) return LP2P_ERR_INVAL;
  if (!n) return 0;
  if (!lp2p__yamux_out_reserve(mx, LP2P__YAMUX_HDR_LEN)) return LP2P_ERR_NOMEM;
  lp2p__yamux_enter(mx);
  s->recv_held -= (uint32_t)n;
  int rv = lp2p__yamux_maybe_window_update(mx, s);
  lp2p__yamux_leave(mx);
  return rv;
}

void lp2p_yamux_stream_set_user(lp2p_yamux *mx, uint32_t id, void *p) {
  lp2p__yamux_stream *s = mx ? lp2p__yamux_map_get(&mx->map, id) : NULL;
  if (s) s->user = p;
}

void *lp2p_yamux_stream_user(const lp2p_yamux *mx, uint32_t id) {
  lp2p__yamux_stream *s = mx ? lp2p__yamux_map_get(&mx->map, id) : NULL;
  return s ? s->user : NULL;
}

int lp2p__yamux_stream_windows(const lp2p_yamux *mx, uint32_t id, uint64_t *send_window, uint32_t *recv_win,
                               uint32_t *recv_avail, size_t *buffered) {
  lp2p__yamux_stream *s = lp2p__yamux_map_get(&mx->map, id);
  if (!s) return LP2P_ERR_NOT_FOUND;
  if (send_window) *send_window = s->send_window;
  if (recv_win) *recv_win = s->recv_win;
  if (recv_avail) *recv_avail = s->recv_avail;
  if (buffered) *buffered = s->sbuf.len;
  return 0;
}
