/* swarm/sendall.c - lp2p_stream_send_all: "write all, then close" (see
 * lp2p/swarm.h). The bytes a stream does not take at once wait in s->sendq;
 * stream.c hands the stream's writable events here first (lp2p__sendq_drain)
 * and routes lp2p_stream_write / lp2p_stream_close_write through the gate
 * while the queue exists, so bytes leave in call order. */
#include <string.h>

#include "swarm/swarm_int.h"

typedef struct lp2p__sendq {
  uint8_t *buf;
  size_t off, len, cap;
  int fin;       /* half-close after the last byte */
  int app_wants; /* the app's own write was refused meanwhile: on_writable is due after the drain */
} lp2p__sendq;

void lp2p__sendq_free(lp2p_stream *s) {
  lp2p__sendq *q = s->sendq;
  if (!q) return;
  lp2p__free(&s->sw->mem, q->buf);
  lp2p__free(&s->sw->mem, q);
  s->sendq = NULL;
}

static int append(lp2p_stream *s, const uint8_t *p, size_t n) {
  lp2p__sendq *q = s->sendq;
  if (q->off && q->off == q->len) q->off = q->len = 0;
  if (q->len + n > q->cap) {
    if (q->off) { /* compact first */
      memmove(q->buf, q->buf + q->off, q->len - q->off);
      q->len -= q->off;
      q->off = 0;
    }
    if (q->len + n > q->cap) {
      size_t ncap = q->cap * 2 > q->len + n ? q->cap * 2 : q->len + n;
      uint8_t *nb = lp2p__realloc(&s->sw->mem, q->buf, ncap);
      if (!nb) return LP2P_ERR_NOMEM;
      q->buf = nb;
      q->cap = ncap;
    }
  }
  memcpy(q->buf + q->len, p, n);
  q->len += n;
  return 0;
}

int lp2p_stream_send_all(lp2p_stream *s, const uint8_t *p, size_t n, int close_write) {
  if (!s || (!p && n)) return LP2P_ERR_INVAL;
  if (s->state == LP2P__ST_PENDING || s->state == LP2P__ST_NEGOTIATING) return LP2P_ERR_STATE;
  if (s->state == LP2P__ST_CLOSED || s->write_closed) return LP2P_ERR_CLOSED;
  if (s->sendq) {
    if (s->sendq->fin) return LP2P_ERR_CLOSED;
    int rv = n ? append(s, p, n) : 0;
    if (rv < 0) return rv;
    if (close_write) s->sendq->fin = 1;
    return 0;
  }
  int app_wants = s->want_writable; /* an earlier short lp2p_stream_write of the app */
  int64_t k = lp2p__stream_write_now(s, p, n);
  if (k < 0) return (int)k;
  if ((size_t)k == n) return close_write ? lp2p_stream_close_write(s) : 0;
  lp2p__sendq *q = lp2p__calloc(&s->sw->mem, 1, sizeof *q);
  if (!q) return LP2P_ERR_NOMEM; /* k bytes went out: the stream is now in an undefined place */
  s->sendq = q;
  int rv = append(s, p + k, n - (size_t)k);
  if (rv < 0) {
    lp2p__sendq_free(s);
    return rv;
  }
  q->fin = close_write ? 1 : 0;
  q->app_wants = app_wants;
  s->want_writable = 1; /* set by the short write already; the drain runs on the next writable */
  return 0;
}

int64_t lp2p__sendq_gate(lp2p_stream *s, size_t n) {
  if (s->state == LP2P__ST_CLOSED || s->sendq->fin) return LP2P_ERR_CLOSED;
  if (n) s->sendq->app_wants = 1;
  return 0;
}

int lp2p__sendq_fin(lp2p_stream *s) {
  s->sendq->fin = 1;
  return 0;
}

int lp2p__sendq_drain(lp2p_stream *s) {
  lp2p__sendq *q = s->sendq;
  while (q->off < q->len) {
    int64_t k = lp2p__stream_write_now(s, q->buf + q->off, q->len - q->off);
    if (k < 0) { /* the stream is closing: its on_close tells the app */
      lp2p__sendq_free(s);
      return 0;
    }
    if (k == 0) return 0; /* want_writable is set again: the next writable resumes */
    q->off += (size_t)k;
  }
  int fin = q->fin, app_wants = q->app_wants;
  lp2p__sendq_free(s);
  s->want_writable = app_wants;
  if (fin) lp2p_stream_close_write(s);
  return 1;
}
