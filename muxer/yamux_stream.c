/* muxer/yamux_stream.c - per-stream state: send ring (kept while the stream
 * lives, released lazily), blocked writers and the session send budget, flow
 * control (receive window updates with auto-tuning, send window), half-close,
 * reset, and the stream-level public API. */
#include "muxer/yamux_int.h"

/* ---- send ring ---- */

void lp2p__yamux_ring_copy(const lp2p__yamux_ring *r, size_t off, uint8_t *dst, size_t n) {
  if (!n) return;
  size_t start = r->head + off;
  if (start >= r->cap) start -= r->cap;
  size_t first = r->cap - start;
  if (first > n) first = n;
  memcpy(dst, r->data + start, first);
  if (n > first) memcpy(dst + first, r->data, n - first);
}

const uint8_t *lp2p__yamux_ring_at(const lp2p__yamux_ring *r, size_t off, size_t *contig) {
  size_t start = r->head + off;
  if (start >= r->cap) start -= r->cap;
  *contig = r->cap - start;
  return r->data + start;
}

/* Spare ring buffers: a big ring released by a stream is kept in the session's pool (or the node-wide
 * one the swarm shares between sessions), up to the pool's max bytes, for the next stream that needs a big
 * ring, instead of going back to malloc: freeing and allocating 64-320 KiB blocks in turn makes glibc trim
 * and regrow its heap (a page fault per 4 KiB each time). */
typedef struct spare {
  struct spare *next;
  size_t cap;
} spare;

static uint8_t *buf_get(lp2p_yamux *mx, size_t need, size_t *cap) {
  lp2p__yamux_pool *pl = mx->pool;
  if (*cap > LP2P__YAMUX_SPARE_MIN) {
    for (spare **pp = (spare **)&pl->list; *pp; pp = &(*pp)->next) {
      spare *sp = *pp;
      if (sp->cap < need) continue;
      *pp = sp->next;
      pl->total -= sp->cap;
      pl->hits++;
      *cap = sp->cap;
      return (uint8_t *)sp;
    }
    pl->misses++;
  }
  return lp2p__malloc(&mx->mem, *cap);
}

static void pool_put(const lp2p_mem *mem, lp2p__yamux_pool *pl, uint8_t *p, size_t cap) {
  if (cap <= LP2P__YAMUX_SPARE_MIN || pl->total + cap > pl->max) {
    lp2p__free(mem, p);
    return;
  }
  spare *sp = (spare *)(void *)p;
  sp->cap = cap;
  sp->next = pl->list;
  pl->list = sp;
  pl->total += cap;
}

static void buf_put(lp2p_yamux *mx, uint8_t *p, size_t cap) { pool_put(&mx->mem, mx->pool, p, cap); }

void lp2p__yamux_pool_drain(const lp2p_mem *mem, lp2p__yamux_pool *pl) {
  while (pl->list) {
    spare *sp = pl->list;
    pl->list = sp->next;
    lp2p__free(mem, sp);
  }
  pl->total = 0;
}

void lp2p__yamux_spares_free(lp2p_yamux *mx) {
  if (mx->pool == &mx->own_pool) lp2p__yamux_pool_drain(&mx->mem, &mx->own_pool);
}

void lp2p__yamux_set_pool(lp2p_yamux *mx, lp2p__yamux_pool *pool) {
  if (!pool) pool = &mx->own_pool;
  if (pool == mx->pool) return;
  lp2p__yamux_pool *old = mx->pool;
  mx->pool = pool;
  while (old->list) {
    spare *sp = old->list;
    old->list = sp->next;
    old->total -= sp->cap;
    pool_put(&mx->mem, pool, (uint8_t *)sp, sp->cap);
  }
}

static void ring_free(lp2p_yamux *mx, lp2p__yamux_ring *r) {
  mx->ring_cap -= r->cap;
  if (mx->tight)
    lp2p__free(&mx->mem, r->data);
  else
    buf_put(mx, r->data, r->cap);
  r->data = NULL;
  r->cap = r->head = r->len = 0; /* seq stays: the stream offset goes on */
}

void lp2p__yamux_ring_release(lp2p_yamux *mx, lp2p__yamux_stream *s) {
  if (!s->sbuf.len && s->sbuf.data) ring_free(mx, &s->sbuf);
}

/* While the session's rings add up to more than the send budget, a stalled stream (no send window)
 * keeps only what it holds: its ring shrinks to at most twice that (power-of-two steps, not below
 * LP2P__YAMUX_RING_MIN); a single busy stream is left alone (no churn between window updates). Pending output refers to ring bytes by stream
 * offset, so moving them is safe between output calls. */
static void ring_shrink(lp2p_yamux *mx, lp2p__yamux_ring *r) {
  size_t ncap = r->cap;
  while (ncap / 2 >= LP2P__YAMUX_RING_MIN && ncap / 2 >= r->len * 2) ncap /= 2;
  if (ncap == r->cap) return;
  uint8_t *nd = lp2p__malloc(&mx->mem, ncap);
  if (!nd) return; /* keep the bigger ring */
  lp2p__yamux_ring_copy(r, 0, nd, r->len);
  buf_put(mx, r->data, r->cap);
  mx->ring_cap -= r->cap - ncap;
  r->data = nd;
  r->cap = ncap;
  r->head = 0;
}

void lp2p__yamux_ring_sent(lp2p_yamux *mx, lp2p__yamux_stream *s, size_t n) {
  lp2p__yamux_ring *r = &s->sbuf;
  r->head += n;
  if (r->head >= r->cap) r->head -= r->cap;
  r->len -= n;
  r->seq += n;
  if (r->len) {
    if (!s->send_window && (mx->ring_cap > mx->cfg.send_budget || mx->tight) && r->len * 4 <= r->cap &&
        r->cap > LP2P__YAMUX_SPARE_MIN)
      ring_shrink(mx, r);
    return;
  }
  r->head = 0;
  /* Drained: keep the ring for the stream's next writes unless no more can come (closed, or FIN queued),
   * the peer's window is used up (a stalled stream can write nothing until it opens again: it must not
   * keep its high-water mark), or the session's rings add up to more than the send budget (lazy
   * shrink), or the owner's memory is tight (lp2p__yamux_set_tight). */
  if ((s->flags & (YX_CLOSED | YX_FIN_QUEUED)) || mx->ring_cap > mx->cfg.send_budget || mx->tight) ring_free(mx, r);
}

static void want_set(lp2p_yamux *mx, lp2p__yamux_stream *s);

/* Shrinks r to the smallest halving of its capacity that still holds its bytes (not below RING_MIN). */
static size_t ring_fit(lp2p_yamux *mx, lp2p__yamux_ring *r) {
  size_t ncap = r->cap;
  while (ncap / 2 >= LP2P__YAMUX_RING_MIN && ncap / 2 >= r->len) ncap /= 2;
  if (ncap == r->cap) return 0;
  uint8_t *nd = lp2p__malloc(&mx->mem, ncap);
  if (!nd) return 0; /* keep the bigger ring */
  size_t freed = r->cap - ncap;
  lp2p__yamux_ring_copy(r, 0, nd, r->len);
  lp2p__free(&mx->mem, r->data); /* pressure: not into the pool */
  mx->ring_cap -= freed;
  r->data = nd;
  r->cap = ncap;
  r->head = 0;
  return freed;
}

size_t lp2p__yamux_squeeze(lp2p_yamux *mx) {
  size_t before = mx->ring_cap;
  for (size_t i = 0; i < mx->map.cap; i++) {
    lp2p__yamux_stream *s = mx->map.slots[i];
    if (!s || !s->sbuf.data) continue;
    if (!s->sbuf.len) {
      mx->ring_cap -= s->sbuf.cap;
      lp2p__free(&mx->mem, s->sbuf.data);
      s->sbuf.data = NULL;
      s->sbuf.cap = s->sbuf.head = 0;
    } else if (!s->send_window || (s->flags & YX_CLOSED)) {
      ring_fit(mx, &s->sbuf);
    }
  }
  lp2p__yamux_spares_free(mx);
  return before - mx->ring_cap;
}

void lp2p__yamux_set_tight(lp2p_yamux *mx, int tight) { mx->tight = tight; }

void lp2p__yamux_want_writable(lp2p_yamux *mx, uint32_t id) {
  lp2p__yamux_stream *s = lp2p__yamux_live(mx, id);
  if (s && !(s->flags & YX_FIN_QUEUED)) want_set(mx, s);
}

size_t lp2p__yamux_window_room(const lp2p_yamux *mx, uint32_t id) {
  const lp2p__yamux_stream *s = lp2p__yamux_live(mx, id);
  if (!s) return 0;
  uint64_t cap = s->send_window < LP2P_YAMUX_SEND_BUFFER_MAX ? s->send_window : LP2P_YAMUX_SEND_BUFFER_MAX;
  size_t un = lp2p__yamux_unframed(s);
  return un >= cap ? 0 : (size_t)(cap - un);
}

/* Appends up to n bytes; the ring may grow to lim bytes (more only if n alone needs it) and by at most
 * grow bytes (then fewer bytes are taken, *hit set). Returns the bytes taken or LP2P_ERR_NOMEM. */
static int64_t ring_push(lp2p_yamux *mx, lp2p__yamux_ring *r, const uint8_t *p, size_t n, size_t lim, size_t grow,
                         int *hit) {
  if (n > r->cap - r->len) {
    size_t need = r->len + n, ncap = r->cap ? r->cap * 2 : LP2P__YAMUX_RING_MIN;
    if (ncap < need) ncap = need;
    if (ncap > lim && need <= lim) ncap = lim;
    if (ncap - r->cap > grow) { /* a resource limit: grow by what it allows, take what fits */
      *hit = 1;
      ncap = r->cap + (grow & ~(size_t)1023);
      if (ncap < need) n = ncap > r->len ? ncap - r->len : 0;
      if (!n) return 0;
    }
    if (ncap > r->cap) {
      uint8_t *nd = buf_get(mx, need < ncap ? need : ncap, &ncap);
      if (!nd) return LP2P_ERR_NOMEM;
      lp2p__yamux_ring_copy(r, 0, nd, r->len);
      if (r->data) buf_put(mx, r->data, r->cap);
      mx->ring_cap += ncap - r->cap;
      r->data = nd;
      r->cap = ncap;
      r->head = 0;
    }
  }
  size_t tail = r->head + r->len;
  if (tail >= r->cap) tail -= r->cap;
  size_t first = r->cap - tail;
  if (first > n) first = n;
  memcpy(r->data + tail, p, first);
  if (n > first) memcpy(r->data, p + first, n - first);
  r->len += n;
  return (int64_t)n;
}

/* ---- blocked writers (FIFO of YX_WANT_WRITABLE streams) ---- */

static void want_set(lp2p_yamux *mx, lp2p__yamux_stream *s) {
  if (s->flags & YX_WANT_WRITABLE) return;
  s->flags |= YX_WANT_WRITABLE;
  s->pass = mx->notify_pass; /* a pass in progress does not look at it again */
  s->bnext = NULL;
  s->bprev = mx->blocked_tail;
  if (mx->blocked_tail)
    mx->blocked_tail->bnext = s;
  else
    mx->blocked = s;
  mx->blocked_tail = s;
}

static void want_clear(lp2p_yamux *mx, lp2p__yamux_stream *s) {
  if (!(s->flags & YX_WANT_WRITABLE)) return;
  s->flags &= ~(uint32_t)YX_WANT_WRITABLE;
  if (s->bprev)
    s->bprev->bnext = s->bnext;
  else
    mx->blocked = s->bnext;
  if (s->bnext)
    s->bnext->bprev = s->bprev;
  else
    mx->blocked_tail = s->bprev;
  s->bnext = s->bprev = NULL;
}

static void fire_writable(lp2p_yamux *mx, lp2p__yamux_stream *s) {
  want_clear(mx, s);
  if ((s->flags & YX_ANNOUNCED) && mx->cb.on_stream_writable) {
    mx->depth++;
    mx->cb.on_stream_writable(mx, s->id, mx->ud);
    mx->depth--;
  }
}

void lp2p__yamux_notify_writers(lp2p_yamux *mx) {
  if (!mx->budget_freed || !mx->blocked) return;
  mx->budget_freed = 0;
  uint32_t pass = ++mx->notify_pass;
  /* Oldest first. A callback may write (and block again: back to the tail, marked with this pass), close
   * or reset streams, so the walk restarts from the head after each one; streams already looked at in this
   * pass are skipped. Stream memory stays valid: frees are deferred until the outermost call returns. */
  for (lp2p__yamux_stream *s = mx->blocked; s;) {
    if (s->pass == pass) {
      s = s->bnext;
      continue;
    }
    s->pass = pass;
    if (!lp2p__yamux_writable(mx, s)) {
      s = s->bnext;
      continue;
    }
    fire_writable(mx, s);
    s = mx->blocked;
  }
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
  if (s->sbuf.data) ring_free(mx, &s->sbuf);
  lp2p__free(&mx->mem, s);
}

void lp2p__yamux_stream_close(lp2p_yamux *mx, lp2p__yamux_stream *s, int err) {
  if (s->flags & YX_CLOSED) return;
  lp2p__yamux_ready_del(mx, s);
  want_clear(mx, s);
  s->flags |= YX_CLOSED;
  s->close_err = err;
  /* Unframed bytes are dropped; bytes in flight stay until the output passes them. */
  s->sbuf.len = s->inflight;
  lp2p__yamux_recount(mx, s);
  lp2p__yamux_ring_release(mx, s);
  mx->n_streams--;
  if (!(s->flags & YX_OUTBOUND)) {
    mx->n_inbound--;
    lp2p__yamux_recent_add(mx, s->id);
  }
  if (s->flags & YX_AWAIT_ACK) {
    s->flags &= ~(uint32_t)YX_AWAIT_ACK;
    lp2p__yamux_unacked_dec(mx);
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

void lp2p__yamux_recount(lp2p_yamux *mx, lp2p__yamux_stream *s) {
  size_t c = lp2p__yamux_unframed(s); /* every buffered byte counts */
  if (c < s->counted) mx->budget_freed = 1;
  mx->buffered = mx->buffered - s->counted + c;
  s->counted = c;
}

size_t lp2p__yamux_writable(const lp2p_yamux *mx, const lp2p__yamux_stream *s) {
  /* What the peer's window allows (at most LP2P_YAMUX_SEND_BUFFER_MAX) plus LP2P_YAMUX_SEND_SLACK beyond
   * it (ready for the next window update: bulk throughput needs it); every buffered byte, slack
   * included, counts against the session budget. */
  uint64_t cap = s->send_window < LP2P_YAMUX_SEND_BUFFER_MAX ? s->send_window : LP2P_YAMUX_SEND_BUFFER_MAX;
  cap += LP2P_YAMUX_SEND_SLACK;
  size_t un = lp2p__yamux_unframed(s);
  if (un >= cap) return 0;
  size_t per = (size_t)(cap - un);
  if (mx->buffered >= mx->cfg.send_budget) return 0;
  size_t room = mx->cfg.send_budget - mx->buffered;
  return per <= room ? per : room;
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
  if (lp2p__yamux_sendable(s)) lp2p__yamux_ready_add(mx, s);
  if ((s->flags & YX_WANT_WRITABLE) && lp2p__yamux_writable(mx, s) > 0) fire_writable(mx, s);
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

int64_t lp2p__yamux_write_within(lp2p_yamux *mx, uint32_t id, const uint8_t *p, size_t n, size_t grow, int *hit) {
  int dummy = 0;
  if (!hit) hit = &dummy;
  *hit = 0;
  if (!mx || (!p && n)) return LP2P_ERR_INVAL;
  if (mx->err) return mx->err;
  lp2p__yamux_stream *s = lp2p__yamux_map_get(&mx->map, id);
  if (!s) return LP2P_ERR_NOT_FOUND;
  if (s->flags & (YX_CLOSED | YX_FIN_QUEUED)) return LP2P_ERR_CLOSED;
  if (!n) return 0;
  size_t k = lp2p__yamux_writable(mx, s);
  if (k > n) k = n;
  if (k) {
    /* The ring holds the bytes in flight too. */
    size_t lim = (size_t)LP2P_YAMUX_SEND_BUFFER_MAX + LP2P_YAMUX_SEND_SLACK + s->inflight;
    int64_t rv = ring_push(mx, &s->sbuf, p, k, lim, grow, hit);
    if (rv < 0) return rv;
    k = (size_t)rv;
    if (k) {
      lp2p__yamux_recount(mx, s);
      if (s->send_window) lp2p__yamux_ready_add(mx, s);
    }
  }
  if (k < n && !*hit) want_set(mx, s);
  return (int64_t)k;
}

int64_t lp2p_yamux_write(lp2p_yamux *mx, uint32_t id, const uint8_t *p, size_t n) {
  return lp2p__yamux_write_within(mx, id, p, n, SIZE_MAX, NULL);
}

size_t lp2p_yamux_write_capacity(const lp2p_yamux *mx, uint32_t id) {
  if (!mx || mx->err) return 0;
  lp2p__yamux_stream *s = lp2p__yamux_live(mx, id);
  if (!s || (s->flags & YX_FIN_QUEUED)) return 0;
  return lp2p__yamux_writable(mx, s);
}

int lp2p_yamux_close_write(lp2p_yamux *mx, uint32_t id) {
  if (!mx) return LP2P_ERR_INVAL;
  if (mx->err) return mx->err;
  lp2p__yamux_stream *s = lp2p__yamux_map_get(&mx->map, id);
  if (!s) return LP2P_ERR_NOT_FOUND;
  if (s->flags & YX_CLOSED) return LP2P_ERR_CLOSED;
  if (s->flags & YX_FIN_QUEUED) return 0;
  size_t unframed = lp2p__yamux_unframed(s);
  if (!unframed && !lp2p__yamux_out_reserve(mx, LP2P__YAMUX_HDR_LEN)) return LP2P_ERR_NOMEM;
  lp2p__yamux_enter(mx);
  s->flags |= YX_FIN_QUEUED;
  want_clear(mx, s);
  lp2p__yamux_ring_release(mx, s); /* no more writes: an empty ring is not needed any more */
  int rv = 0;
  if (!unframed) { /* nothing buffered: FIN now, else it rides on the last Data frame */
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

int lp2p_yamux_reset_after_data(lp2p_yamux *mx, uint32_t id) {
  if (!mx) return LP2P_ERR_INVAL;
  lp2p__yamux_stream *s = lp2p__yamux_map_get(&mx->map, id);
  if (!s) return mx->err ? mx->err : LP2P_ERR_NOT_FOUND;
  if (s->flags & YX_CLOSED) return 0;
  if ((s->flags & YX_FIN_SENT) || !lp2p__yamux_unframed(s)) return lp2p_yamux_reset(mx, id); /* nothing waits */
  lp2p__yamux_enter(mx);
  s->flags |= YX_FIN_QUEUED | YX_RST_AFTER; /* emit_data ends the last frame with RST instead of FIN */
  want_clear(mx, s);
  lp2p__yamux_leave(mx);
  return 0;
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
  if (buffered) *buffered = lp2p__yamux_unframed(s);
  return 0;
}
