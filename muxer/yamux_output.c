/* muxer/yamux_output.c - the output queue: control frames and Data frame headers in one byte buffer
 * (mx->out), Data payload either copied in (lp2p_yamux_output, contiguous) or referenced in the stream
 * rings (gaps, lp2p_yamux_output_iov, gather); the round-robin Data frame builder; consumption, which
 * releases ring bytes, zombie streams and, once drained, the buffers themselves. */
#include "muxer/yamux_int.h"

/* ---- buffer and gap table ---- */

static lp2p__yamux_gap *gap_at(const lp2p_yamux *mx, size_t i) {
  return &mx->gaps[(mx->gap_head + i) & (mx->gap_cap - 1)];
}

uint8_t *lp2p__yamux_out_reserve(lp2p_yamux *mx, size_t n) {
  if (n > mx->out_cap - mx->out_len && mx->out_off) { /* compact: drop what was sent */
    memmove(mx->out, mx->out + mx->out_off, mx->out_len - mx->out_off);
    for (size_t i = 0; i < mx->gap_n; i++) gap_at(mx, i)->pos -= mx->out_off;
    mx->out_len -= mx->out_off;
    mx->out_off = 0;
  }
  if (n > mx->out_cap - mx->out_len) {
    if (n > SIZE_MAX / 4 - mx->out_len) return NULL;
    size_t ncap = mx->out_cap ? mx->out_cap * 2 : 256;
    if (ncap < mx->out_len + n) ncap = mx->out_len + n;
    uint8_t *p = lp2p__realloc(&mx->mem, mx->out, ncap);
    if (!p) return NULL;
    mx->out = p;
    mx->out_cap = ncap;
  }
  return mx->out + mx->out_len;
}

static int gap_reserve(lp2p_yamux *mx) {
  if (mx->gap_n < mx->gap_cap) return 0;
  size_t ncap = mx->gap_cap ? mx->gap_cap * 2 : 8;
  lp2p__yamux_gap *g = lp2p__malloc(&mx->mem, ncap * sizeof *g);
  if (!g) return LP2P_ERR_NOMEM;
  for (size_t i = 0; i < mx->gap_n; i++) g[i] = *gap_at(mx, i);
  lp2p__free(&mx->mem, mx->gaps);
  mx->gaps = g;
  mx->gap_cap = ncap;
  mx->gap_head = 0;
  return 0;
}

int lp2p__yamux_put_frame(lp2p_yamux *mx, uint8_t type, uint16_t flags, uint32_t id, uint32_t length) {
  uint8_t *p = lp2p__yamux_out_reserve(mx, LP2P__YAMUX_HDR_LEN);
  if (!p) return LP2P_ERR_NOMEM;
  lp2p__yamux_hdr_encode(p, type, flags, id, length);
  mx->out_len += LP2P__YAMUX_HDR_LEN;
  mx->pending += LP2P__YAMUX_HDR_LEN;
  return 0;
}

int lp2p__yamux_emit(lp2p_yamux *mx, uint8_t type, uint16_t flags, uint32_t id, uint32_t length) {
  if (mx->err) return mx->err;
  if (mx->pending > LP2P__YAMUX_MAX_PENDING_OUT)
    return lp2p__yamux_fail(mx, LP2P_ERR_LIMIT, LP2P_YAMUX_GOAWAY_INTERNAL_ERROR);
  if (lp2p__yamux_put_frame(mx, type, flags, id, length)) return lp2p__yamux_fail(mx, LP2P_ERR_NOMEM, -1);
  return 0;
}

/* ---- Data frames ---- */

int lp2p__yamux_emit_data(lp2p_yamux *mx, lp2p__yamux_stream *s, int by_ref) {
  size_t unframed = lp2p__yamux_unframed(s);
  size_t chunk = unframed;
  if (chunk > s->send_window) chunk = (size_t)s->send_window;
  if (chunk > mx->max_frame) chunk = mx->max_frame;
  /* The FIN after the last bytes goes in its own WindowUpdate frame: js-libp2p-yamux 8.x applies a
   * Data frame's flags before its payload and would drop the payload of a Data+FIN frame. */
  int fin = (s->flags & YX_FIN_QUEUED) && chunk == unframed;
  size_t hdrs = LP2P__YAMUX_HDR_LEN + (fin ? LP2P__YAMUX_HDR_LEN : 0);
  /* A small payload is cheaper to copy than to reference (gap bookkeeping, extra iovecs), but only at the
   * ring head: copying pops it, so nothing of s may be in flight. */
  if (by_ref && chunk <= LP2P__YAMUX_COPY_MAX && !s->inflight) by_ref = 0;
  if (by_ref && gap_reserve(mx)) return LP2P_ERR_NOMEM;
  uint8_t *p = lp2p__yamux_out_reserve(mx, by_ref ? hdrs : hdrs + chunk);
  if (!p) return LP2P_ERR_NOMEM;
  lp2p__yamux_hdr_encode(p, LP2P__YAMUX_DATA, 0, s->id, (uint32_t)chunk);
  p += LP2P__YAMUX_HDR_LEN;
  mx->out_len += LP2P__YAMUX_HDR_LEN;
  if (by_ref) {
    lp2p__yamux_gap *g = gap_at(mx, mx->gap_n++);
    g->pos = mx->out_len;
    g->s = s;
    g->seq = s->sbuf.seq + s->inflight;
    g->len = chunk;
    s->inflight += chunk;
  } else {
    lp2p__yamux_ring_copy(&s->sbuf, s->inflight, p, chunk);
    p += chunk;
    mx->out_len += chunk;
  }
  if (fin) {
    uint16_t flag = (s->flags & YX_RST_AFTER) ? LP2P__YAMUX_RST : LP2P__YAMUX_FIN;
    lp2p__yamux_hdr_encode(p, LP2P__YAMUX_WINDOW_UPDATE, flag, s->id, 0);
    mx->out_len += LP2P__YAMUX_HDR_LEN;
    s->flags |= YX_FIN_SENT;
  }
  mx->pending += hdrs + chunk;
  s->send_window -= chunk;
  if (!by_ref) lp2p__yamux_ring_sent(mx, s, chunk); /* nothing of s in flight (see above / flatten) */
  lp2p__yamux_recount(mx, s);
  return 0;
}

void lp2p__yamux_build(lp2p_yamux *mx, size_t target, int by_ref) {
  while (!mx->err && mx->ready && mx->pending < target) {
    lp2p__yamux_stream *s = mx->ready;
    if (lp2p__yamux_emit_data(mx, s, by_ref)) break; /* out of memory: try again on the next call */
    if (lp2p__yamux_sendable(s))
      mx->ready = s->rnext; /* round-robin: s moves to the tail */
    else
      lp2p__yamux_ready_del(mx, s);
    if ((s->flags & YX_FIN_SENT) && (s->flags & YX_RST_AFTER))
      lp2p__yamux_stream_close(mx, s, LP2P_ERR_CANCELED);
    else if ((s->flags & YX_FIN_SENT) && (s->flags & YX_REMOTE_FIN))
      lp2p__yamux_stream_close(mx, s, 0);
  }
  if (mx->budget_freed && mx->blocked) lp2p__yamux_notify_writers(mx);
}

/* ---- reading the queue ---- */

/* Fills iov with the first pending bytes (at most max_bytes); returns the entries used. */
static size_t fill_iov(const lp2p_yamux *mx, lp2p_iovec *iov, size_t max_iov, size_t max_bytes) {
  size_t k = 0, total = 0, pos = mx->out_off;
  for (size_t g = 0; k < max_iov && total < max_bytes;) {
    const lp2p__yamux_gap *gp = g < mx->gap_n ? gap_at(mx, g) : NULL;
    size_t end = gp ? gp->pos : mx->out_len;
    if (pos < end) {
      size_t take = end - pos < max_bytes - total ? end - pos : max_bytes - total;
      iov[k].base = mx->out + pos;
      iov[k++].len = take;
      total += take;
      pos += take;
      continue;
    }
    if (!gp) break;
    /* The ring head is the first unsent byte of its stream: that of the first gap (partly sent), or the
     * start of a later gap when it is its stream's oldest. */
    size_t off = g ? (size_t)(gp->seq - gp->s->sbuf.seq) : 0, left = gp->len - (g ? 0 : mx->gap_done);
    while (left && k < max_iov && total < max_bytes) {
      size_t contig;
      const uint8_t *p = lp2p__yamux_ring_at(&gp->s->sbuf, off, &contig);
      size_t take = left < contig ? left : contig;
      if (take > max_bytes - total) take = max_bytes - total;
      iov[k].base = p;
      iov[k++].len = take;
      total += take;
      off += take;
      left -= take;
    }
    if (left) break;
    g++;
  }
  return k;
}

static void zombie_free(lp2p_yamux *mx, lp2p__yamux_stream *s) {
  for (lp2p__yamux_stream **pp = &mx->zombies; *pp; pp = &(*pp)->cnext)
    if (*pp == s) {
      *pp = s->cnext;
      break;
    }
  lp2p__yamux_stream_destroy(mx, s);
}

/* Removes n sent bytes from the front of the queue (no buffer is released). */
static void consume(lp2p_yamux *mx, size_t n) {
  if (n > mx->pending) n = mx->pending;
  mx->pending -= n;
  while (n) {
    lp2p__yamux_gap *gp = mx->gap_n ? gap_at(mx, 0) : NULL;
    size_t end = gp ? gp->pos : mx->out_len;
    if (mx->out_off < end) {
      size_t k = end - mx->out_off < n ? end - mx->out_off : n;
      mx->out_off += k;
      n -= k;
      continue;
    }
    if (!gp) break; /* not reached: n <= pending */
    lp2p__yamux_stream *s = gp->s;
    size_t k = gp->len - mx->gap_done < n ? gp->len - mx->gap_done : n;
    s->inflight -= k;
    lp2p__yamux_ring_sent(mx, s, k);
    mx->gap_done += k;
    n -= k;
    if (mx->gap_done == gp->len) {
      mx->gap_head = (mx->gap_head + 1) & (mx->gap_cap - 1);
      mx->gap_n--;
      mx->gap_done = 0;
    }
    if (!s->inflight && (s->flags & YX_ZOMBIE)) zombie_free(mx, s);
  }
  if (!mx->pending) mx->out_off = mx->out_len = 0;
}

/* Turns the queue into plain bytes in a new buffer (payload copied out of the rings), for the contiguous
 * lp2p_yamux_output() after lp2p_yamux_output_iov() left gaps. LP2P_ERR_NOMEM: queue unchanged. */
static int flatten(lp2p_yamux *mx) {
  size_t n = mx->pending, cap = n > 256 ? n : 256;
  uint8_t *buf = lp2p__malloc(&mx->mem, cap), *w = buf;
  if (!buf) return LP2P_ERR_NOMEM;
  while (mx->pending) {
    lp2p_iovec iov[16];
    size_t k = fill_iov(mx, iov, 16, SIZE_MAX), got = 0;
    for (size_t i = 0; i < k; i++) {
      memcpy(w, iov[i].base, iov[i].len);
      w += iov[i].len;
      got += iov[i].len;
    }
    consume(mx, got);
  }
  lp2p__free(&mx->mem, mx->out);
  mx->out = buf;
  mx->out_cap = cap;
  mx->out_off = 0;
  mx->out_len = mx->pending = n;
  return 0;
}

static void release_drained(lp2p_yamux *mx) {
  if (mx->pending) return;
  lp2p__free(&mx->mem, mx->out);
  mx->out = NULL;
  mx->out_cap = 0;
  lp2p__free(&mx->mem, mx->gaps);
  mx->gaps = NULL;
  mx->gap_cap = mx->gap_head = 0;
}

void lp2p__yamux_release_idle(lp2p_yamux *mx) {
  if (mx->pending || mx->n_streams || mx->map.n) return;
  release_drained(mx);
  lp2p__yamux_spares_free(mx);
}

void lp2p__yamux_trim(lp2p_yamux *mx) {
  release_drained(mx);
  lp2p__yamux_squeeze(mx); /* drained rings released, stalled ones shrunk to fit, own spares freed */
}

void lp2p__yamux_output_free(lp2p_yamux *mx) {
  lp2p__yamux_stream *z;
  while ((z = mx->zombies)) {
    mx->zombies = z->cnext;
    lp2p__yamux_stream_destroy(mx, z);
  }
  lp2p__free(&mx->mem, mx->out);
  lp2p__free(&mx->mem, mx->gaps);
  lp2p__yamux_spares_free(mx);
}

/* ---- public ---- */

size_t lp2p_yamux_output(lp2p_yamux *mx, const uint8_t **out) {
  static const uint8_t none[1];
  if (!mx) return 0;
  lp2p__yamux_enter(mx);
  if (mx->gap_n) flatten(mx);
  if (!mx->gap_n) lp2p__yamux_build(mx, mx->out_batch, 0);
  lp2p__yamux_leave(mx);
  if (mx->outbound_avail) lp2p__yamux_report_outbound(mx);
  /* After a failed flatten only the bytes before the first gap are contiguous. */
  size_t end = mx->gap_n ? gap_at(mx, 0)->pos : mx->out_len;
  if (out) *out = mx->out ? mx->out + mx->out_off : none;
  return end - mx->out_off;
}

size_t lp2p_yamux_output_iov(lp2p_yamux *mx, lp2p_iovec *iov, size_t max_iov, size_t max_bytes) {
  if (!mx || !iov || !max_iov || !max_bytes) return 0;
  lp2p__yamux_enter(mx);
  lp2p__yamux_build(mx, max_bytes < mx->out_batch ? max_bytes : mx->out_batch, 1);
  lp2p__yamux_leave(mx);
  if (mx->outbound_avail) lp2p__yamux_report_outbound(mx);
  return fill_iov(mx, iov, max_iov, max_bytes);
}

void lp2p_yamux_output_consumed(lp2p_yamux *mx, size_t n) {
  if (!mx) return;
  consume(mx, n);
  lp2p__yamux_release_idle(mx);
}

int lp2p_yamux_want_output(const lp2p_yamux *mx) { return mx && (mx->pending || (!mx->err && mx->ready)); }

size_t lp2p_yamux_pending(const lp2p_yamux *mx) { return mx ? mx->pending : 0; }

void lp2p__yamux_send_stats(const lp2p_yamux *mx, size_t *buffered, size_t *ring_cap, size_t *out_cap,
                            size_t *zombies) {
  if (buffered) *buffered = mx->buffered;
  if (ring_cap) *ring_cap = mx->ring_cap;
  if (out_cap) *out_cap = mx->out_cap;
  if (zombies) {
    size_t n = 0;
    for (const lp2p__yamux_stream *z = mx->zombies; z; z = z->cnext) n++;
    *zombies = n;
  }
}
