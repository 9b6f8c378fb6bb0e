/* core/lpm.c - unsigned-varint length-prefixed messages (see lp2p/lpm.h). */
#include "lp2p/lpm.h"

#include <string.h>

#include "core/mem.h"

/* A buffer larger than this is released once its message has been handed out. */
#define LPM_KEEP_BUF (64 * 1024)

struct lp2p_lpm_reader {
  lp2p_mem mem;
  size_t max;
  uint8_t hdr[LP2P_LPM_PREFIX_MAX]; /* prefix bytes while the prefix spans calls */
  size_t hdr_len;
  int have_len;  /* the prefix is complete: mlen is known */
  size_t plen;   /* prefix length of the current message */
  size_t mlen;   /* its payload length */
  uint8_t *buf;  /* payload assembled across calls */
  size_t cap, got;
  int err;       /* sticky */
  uint64_t count;
};

int lp2p_lpm_reader_new(lp2p_lpm_reader **out, size_t max_msg, const lp2p_mem *mem) {
  if (!out) return LP2P_ERR_INVAL;
  *out = NULL;
  mem = lp2p__mem_or_default(mem);
  lp2p_lpm_reader *r = lp2p__calloc(mem, 1, sizeof *r);
  if (!r) return LP2P_ERR_NOMEM;
  r->mem = *mem;
  r->max = max_msg;
  *out = r;
  return 0;
}

void lp2p_lpm_reader_free(lp2p_lpm_reader *r) {
  if (!r) return;
  lp2p_mem mem = r->mem;
  lp2p__free(&mem, r->buf);
  lp2p__free(&mem, r);
}

static void boundary(lp2p_lpm_reader *r) {
  r->hdr_len = 0;
  r->have_len = 0;
  r->plen = r->mlen = r->got = 0;
  r->count++;
}

/* The prefix is known: checks the limit. */
static int set_len(lp2p_lpm_reader *r, uint64_t v, size_t plen) {
  if (v > r->max) return r->err = LP2P_ERR_TOO_LARGE;
  r->have_len = 1;
  r->mlen = (size_t)v;
  r->plen = plen;
  r->got = 0;
  return 0;
}

int lp2p_lpm_read(lp2p_lpm_reader *r, const uint8_t *in, size_t len, size_t *used, const uint8_t **msg,
                  size_t *msg_len) {
  if (used) *used = 0;
  if (!r || !used || !msg || !msg_len || (!in && len)) return LP2P_ERR_INVAL;
  if (r->err) return r->err;
  if (!r->have_len && r->cap > LPM_KEEP_BUF) { /* the last message handed out is no longer referenced */
    lp2p__free(&r->mem, r->buf);
    r->buf = NULL;
    r->cap = 0;
  }
  if (!len) return 0;
  size_t off = 0;
  if (!r->have_len) {
    uint64_t v = 0;
    if (r->hdr_len == 0) {
      int k = lp2p_uvarint_decode(in, len, &v);
      if (k == LP2P_ERR_AGAIN) { /* len < 9: keep the partial prefix */
        memcpy(r->hdr, in, len);
        r->hdr_len = len;
        *used = len;
        return 0;
      }
      if (k < 0) return r->err = LP2P_ERR_PROTO;
      if (set_len(r, v, (size_t)k) < 0) return r->err;
      off = (size_t)k;
    } else {
      while (!r->have_len) {
        if (off == len) {
          *used = len;
          return 0;
        }
        r->hdr[r->hdr_len++] = in[off++];
        int k = lp2p_uvarint_decode(r->hdr, r->hdr_len, &v);
        if (k == LP2P_ERR_AGAIN) continue; /* hdr_len < 9 here: decode rejects a 9th continuation byte */
        if (k < 0) return r->err = LP2P_ERR_PROTO;
        if (set_len(r, v, r->hdr_len) < 0) return r->err;
      }
    }
  }
  size_t avail = len - off;
  if (r->got == 0 && avail >= r->mlen) { /* zero copy: the whole payload is in this input */
    *msg = in + off;
    *msg_len = r->mlen;
    *used = off + r->mlen;
    boundary(r);
    return 1;
  }
  size_t want = r->mlen - r->got;
  size_t take = avail < want ? avail : want;
  if (r->got + take > r->cap) {
    size_t ncap = r->cap ? r->cap * 2 : 256;
    if (ncap < r->got + take) ncap = r->got + take;
    if (ncap > r->mlen) ncap = r->mlen;
    uint8_t *nb = lp2p__realloc(&r->mem, r->buf, ncap);
    if (!nb) return r->err = LP2P_ERR_NOMEM;
    r->buf = nb;
    r->cap = ncap;
  }
  if (take) memcpy(r->buf + r->got, in + off, take); /* take 0: the input ended with the prefix */
  r->got += take;
  off += take;
  *used = off;
  if (r->got < r->mlen) return 0;
  *msg = r->buf;
  *msg_len = r->mlen;
  boundary(r);
  return 1;
}

int lp2p_lpm_reader_finish(const lp2p_lpm_reader *r) {
  if (!r) return LP2P_ERR_INVAL;
  if (r->err) return r->err;
  return lp2p_lpm_reader_pending(r) ? LP2P_ERR_EOF : 0;
}

size_t lp2p_lpm_reader_pending(const lp2p_lpm_reader *r) {
  if (!r) return 0;
  return r->have_len ? r->plen + r->got : r->hdr_len;
}

uint64_t lp2p_lpm_reader_count(const lp2p_lpm_reader *r) { return r ? r->count : 0; }

void lp2p_lpm_reader_reset(lp2p_lpm_reader *r) {
  if (!r) return;
  r->hdr_len = 0;
  r->have_len = 0;
  r->plen = r->mlen = r->got = 0;
  r->err = 0;
}

/* ---- writer ---- */

size_t lp2p_lpm_frame_size(size_t n) { return lp2p_uvarint_size((uint64_t)n) + n; }

int lp2p_lpm_write_prefix(size_t n, uint8_t *out, size_t cap) {
  if (!out && cap) return LP2P_ERR_INVAL;
  return lp2p_uvarint_encode((uint64_t)n, out, cap);
}

int64_t lp2p_lpm_write(const uint8_t *p, size_t n, uint8_t *out, size_t cap) {
  if ((!p && n) || (!out && cap)) return LP2P_ERR_INVAL;
  int k = lp2p_uvarint_encode((uint64_t)n, out, cap);
  if (k < 0) return k;
  if (cap - (size_t)k < n) return LP2P_ERR_BUFSIZE;
  if (n) memcpy(out + k, p, n);
  return (int64_t)k + (int64_t)n;
}

int64_t lp2p_lpm_write_iov(const uint8_t *p, size_t n, uint8_t prefix_buf[LP2P_LPM_PREFIX_MAX],
                           lp2p_lpm_iov iov[2]) {
  if ((!p && n) || !prefix_buf || !iov) return LP2P_ERR_INVAL;
  int k = lp2p_uvarint_encode((uint64_t)n, prefix_buf, LP2P_LPM_PREFIX_MAX);
  if (k < 0) return k;
  iov[0].base = prefix_buf;
  iov[0].len = (size_t)k;
  iov[1].base = p;
  iov[1].len = n;
  return (int64_t)k + (int64_t)n;
}
