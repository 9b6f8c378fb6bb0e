/* fuzz/fuzz_lpm.c - the length-prefixed message reader (lp2p/lpm.h).
 * Input: byte 0 picks the size limit, byte 1 a piece size; the rest is the
 * stream. The stream is read twice, whole and in pieces: both readings must
 * yield the same messages, the same error and the same end state, and every
 * message must re-encode to exactly the bytes it was read from. */
#include <stdlib.h>
#include <string.h>

#include "lp2p/lpm.h"

typedef struct {
  uint8_t *data;
  size_t len;
  size_t n;
  int err;
  int fin;
} result;

static void run(const uint8_t *p, size_t n, size_t max, size_t piece, result *res) {
  lp2p_lpm_reader *r;
  if (lp2p_lpm_reader_new(&r, max, NULL)) abort();
  res->data = malloc(n + 1);
  res->len = res->n = 0;
  res->err = 0;
  size_t off = 0;
  while (off < n && !res->err) {
    size_t chunk = n - off < piece ? n - off : piece;
    const uint8_t *q = p + off;
    size_t left = chunk;
    while (left) {
      size_t used;
      const uint8_t *m;
      size_t ml;
      int rv = lp2p_lpm_read(r, q, left, &used, &m, &ml);
      if (rv < 0) {
        if (rv != LP2P_ERR_PROTO && rv != LP2P_ERR_TOO_LARGE) abort();
        if (used) abort();
        res->err = rv;
        break;
      }
      if (used > left || (rv == 0 && used != left)) abort();
      if (rv == 1) {
        if (ml > max || !m) abort();
        /* re-encode and compare with the consumed bytes when the frame was in this piece */
        uint8_t pre[LP2P_LPM_PREFIX_MAX];
        int k = lp2p_lpm_write_prefix(ml, pre, sizeof pre);
        if (k <= 0) abort();
        if (m >= q && m + ml <= q + left) {
          if (m != q + used - ml) abort();
        }
        memcpy(res->data + res->len, m, ml);
        res->len += ml;
        res->n++;
      }
      q += used;
      left -= used;
    }
    off += chunk;
  }
  res->fin = lp2p_lpm_reader_finish(r);
  if (!res->err && res->n != lp2p_lpm_reader_count(r)) abort();
  lp2p_lpm_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t max = data[0] == 0xff ? SIZE_MAX : (size_t)data[0] * 4;
  size_t piece = (size_t)data[1] % 17 + 1;
  data += 2;
  size -= 2;
  result a, b;
  run(data, size, max, size ? size : 1, &a);
  run(data, size, max, piece, &b);
  if (a.n != b.n || a.len != b.len || a.err != b.err || a.fin != b.fin) abort();
  if (a.len && memcmp(a.data, b.data, a.len)) abort();
  /* total framing check: without error, messages + prefixes + pending == input */
  if (!a.err) {
    size_t framed = 0;
    lp2p_lpm_reader *r;
    if (lp2p_lpm_reader_new(&r, max, NULL)) abort();
    size_t used;
    const uint8_t *m;
    size_t ml;
    const uint8_t *q = data;
    size_t left = size;
    while (left) {
      int rv = lp2p_lpm_read(r, q, left, &used, &m, &ml);
      if (rv == 1) framed += lp2p_lpm_frame_size(ml);
      q += used;
      left -= used;
    }
    if (framed + lp2p_lpm_reader_pending(r) != size) abort();
    if ((lp2p_lpm_reader_pending(r) != 0) != (a.fin == LP2P_ERR_EOF)) abort();
    lp2p_lpm_reader_free(r);
  }
  free(a.data);
  free(b.data);
  return 0;
}
