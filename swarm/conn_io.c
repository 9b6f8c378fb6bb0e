/* swarm/conn_io.c - a connection's byte I/O: the swarm-wide seal-buffer pool, sealing and
 * writing engine output (flush), the shared read buffer and the read callback. */
#include <string.h>

#include "swarm/swarm_int.h"

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

/* Moves the upgrade layers' pending output into c->staged, in wire order, without I/O: multistream
 * for /noise, Noise handshake bytes, then the muxer's multistream answer (sealed). The read path
 * calls it where a layer finishes and the next one takes over (the answer must precede the next
 * layer's bytes); lp2p__conn_flush_out sends the staged bytes first, once the input is processed. */
int lp2p__conn_stage_out(lp2p__conn *c) {
  lp2p_swarm *sw = c->sw;
  const uint8_t *p;
  size_t n;
  int rv;
  if (c->state == LP2P__C_MSS_SEC && c->mss && (n = lp2p_mss_output(c->mss, &p)) > 0) {
    if ((rv = lp2p__bytes_append(&sw->mem, &c->staged, p, n)) < 0) return rv;
    lp2p_mss_output_consumed(c->mss, n);
  }
  if (c->noise && (n = lp2p_noise_output(c->noise, &p)) > 0) {
    if ((rv = lp2p__bytes_append(&sw->mem, &c->staged, p, n)) < 0) return rv;
    lp2p_noise_output_consumed(c->noise, n);
  }
  if (c->state == LP2P__C_MSS_MUX && c->mss && (n = lp2p_mss_output(c->mss, &p)) > 0) {
    size_t frames = (n + LP2P_NOISE_MAX_PLAINTEXT - 1) / LP2P_NOISE_MAX_PLAINTEXT;
    if ((rv = lp2p__bytes_reserve(&sw->mem, &c->staged, n + frames * LP2P_NOISE_FRAME_OVERHEAD)) < 0) return rv;
    for (size_t off = 0; off < n;) {
      size_t k = n - off > LP2P_NOISE_MAX_PLAINTEXT ? LP2P_NOISE_MAX_PLAINTEXT : n - off;
      if ((rv = lp2p_noise_seal_frame(c->noise, p + off, k, c->staged.data + c->staged.len)) < 0) return rv;
      c->staged.len += (size_t)rv;
      off += k;
    }
    lp2p_mss_output_consumed(c->mss, n);
  }
  return 0;
}

/* Pushes pending engine output to the socket (in layer order). */
int lp2p__conn_flush_out(lp2p__conn *c) {
  const uint8_t *p;
  size_t n;
  int rv;
  if (!c->io || c->state == LP2P__C_CONNECTING) return 0;
  if (c->staged.len) { /* older than anything the engines hold now */
    if ((rv = send_plain(c, c->staged.data, c->staged.len, NULL, 0)) < 0) return rv;
    lp2p__bytes_free(&c->sw->mem, &c->staged);
  }
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
    size_t q;
    while ((q = uv_stream_get_write_queue_size(c->io)) < LP2P__SW_WRITE_HIGH && lp2p_yamux_want_output(c->mx)) {
      /* Behind a full socket a seal buffer is held until the peer reads: queued only while the
       * connection's scopes have room for it (the queued bytes are charged, lp2p__rcs_conn_sync), so
       * slow readers cannot push the node past its budget; a write_cb follows (the queue is not empty)
       * and flushes again. */
      if (q && !lp2p__rcs_conn_room(c, LP2P__SW_WBUF_CAP)) {
        c->write_blocked = 1;
        break;
      }
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
  int rv = lp2p__conn_flush_out(c);
  lp2p__rcs_conn_sync(c);
  if (rv < 0) {
    lp2p__conn_log(c, LP2P_LOG_DEBUG, "write failed:", rv);
    lp2p__conn_close(c, rv);
  }
}

/* ------------------------------------------------------------------------- */
/* input */

static void conn_input(lp2p__conn *c, uint8_t *p, size_t n) {
  lp2p_swarm *sw = c->sw;
  int64_t used = lp2p__upgrade_drive(c, p, n);
  if (used < 0) {
    lp2p__conn_log(c, LP2P_LOG_DEBUG, "malformed input from peer, closing:", (int)used);
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
  if (c->goaway_recv && c->live) lp2p__swarm_conn_demoted(sw, c, LP2P_ERR_GOAWAY);
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
      lp2p__conn_close_io(c);
      lp2p__conn_close_timer(c);
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

int lp2p__conn_start_reading(lp2p__conn *c) {
  int rv = uv_read_start(c->io, alloc_cb, read_cb);
  if (rv) return lp2p__uv_err(rv);
  c->reading = 1;
  return 0;
}
