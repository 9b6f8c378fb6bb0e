/* fuzz_mss_listener.c - the multistream-select listener's input path.
 *
 * Input: [opt][cut][bytes from the dialer...]
 *   opt bit 0: small max_line (19 + 8 * ((opt >> 4) & 7)); bit 1: small max_attempts (1 + ((opt >> 2) & 3));
 *   bit 7: registry without a list callback.
 *   cut: where the second run splits the input (cut % (len + 1)).
 * The same bytes are fed whole, split in two, and byte by byte; the outcomes (error or bytes consumed,
 * agreed protocol, output) must be identical, and a few invariants must hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/mss.h"

static const char *const SUP[] = {"/noise", "/yamux/1.0.0", "/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/a"};
#define NSUP (sizeof SUP / sizeof *SUP)
static const char *const LIST[] = {"/noise", "", "/bad\nid", "/yamux/1.0.0", "/ipfs/id/1.0.0", "/ipfs/ping/1.0.0",
                                   "/a-rather-long-protocol-identifier/1.0.0", "/a"};

static int supports(void *ud, const char *p, size_t len) {
  (void)ud;
  if (!len || memchr(p, '\n', len) || memchr(p, 0, len)) __builtin_trap(); /* engine must validate first */
  for (size_t i = 0; i < NSUP; i++)
    if (strlen(SUP[i]) == len && !memcmp(SUP[i], p, len)) return 1;
  return 0;
}
static size_t list(void *ud, const char **out, size_t max) {
  (void)ud;
  size_t n = sizeof LIST / sizeof *LIST;
  for (size_t i = 0; i < n && i < max; i++) out[i] = LIST[i];
  return n;
}

typedef struct outcome {
  int64_t rv;
  int done;
  char proto[64];
  uint8_t *out;
  size_t out_len, out_cap;
} outcome;

static void take_output(lp2p_mss *m, outcome *o) {
  const uint8_t *p;
  size_t n = lp2p_mss_output(m, &p);
  if (!n) return;
  if (o->out_len + n > o->out_cap) {
    size_t cap = (o->out_len + n) * 2;
    uint8_t *q = realloc(o->out, cap);
    if (!q) abort();
    o->out = q;
    o->out_cap = cap;
  }
  memcpy(o->out + o->out_len, p, n);
  o->out_len += n;
  lp2p_mss_output_consumed(m, n);
}

/* step: 0 = whole, 1 = byte by byte; split: first chunk length when step == 0 (0 = none). */
static void run(const uint8_t *in, size_t len, uint8_t opt, size_t split, int bytewise, outcome *o) {
  memset(o, 0, sizeof *o);
  lp2p_mss_limits lim = {opt & 1 ? 19 + 8 * (size_t)((opt >> 4) & 7) : 0, opt & 2 ? 1 + (size_t)((opt >> 2) & 3) : 0};
  lp2p_mss_registry reg = {supports, opt & 0x80 ? NULL : list};
  lp2p_mss *m;
  if (lp2p_mss_new_listener(&m, &reg, NULL, &lim, NULL)) abort();
  size_t pos = 0;
  while (pos < len) {
    size_t end = bytewise ? pos + 1 : (split && pos < split ? split : len);
    int64_t c = lp2p_mss_feed(m, in + pos, end - pos);
    take_output(m, o);
    if (c < 0) {
      if (c != LP2P_ERR_PROTO && c != LP2P_ERR_UNSUPPORTED && c != LP2P_ERR_TOO_LARGE && c != LP2P_ERR_LIMIT)
        __builtin_trap();
      if (lp2p_mss_feed(m, in, len) != c) __builtin_trap(); /* sticky */
      o->rv = c;
      break;
    }
    if ((size_t)c > end - pos) __builtin_trap();
    o->rv += c;
    if ((size_t)c < end - pos) {
      if (!lp2p_mss_done(m)) __builtin_trap(); /* the listener only stops when done */
      if (lp2p_mss_feed(m, in + pos + c, end - pos - (size_t)c) != 0) __builtin_trap();
      break;
    }
    pos = end;
  }
  o->done = lp2p_mss_done(m);
  if (o->done) {
    const char *p = lp2p_mss_protocol(m);
    size_t n = strlen(p);
    if (!supports(NULL, p, n) || n >= sizeof o->proto) __builtin_trap();
    memcpy(o->proto, p, n + 1);
    /* the output ends with the echo */
    if (o->out_len < n + 2 || memcmp(o->out + o->out_len - n - 1, p, n) || o->out[o->out_len - 1] != '\n')
      __builtin_trap();
  } else if (lp2p_mss_protocol(m)) {
    __builtin_trap();
  }
  lp2p_mss_free(m);
}

static void same(const outcome *a, const outcome *b) {
  if (a->rv != b->rv || a->done != b->done || strcmp(a->proto, b->proto) || a->out_len != b->out_len ||
      (a->out_len && memcmp(a->out, b->out, a->out_len)))
    __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint8_t opt = data[0];
  size_t cut = data[1];
  data += 2;
  size -= 2;
  outcome a, b, c;
  run(data, size, opt, 0, 0, &a);
  run(data, size, opt, size ? cut % (size + 1) : 0, 0, &b);
  same(&a, &b);
  if (size <= 4096) {
    run(data, size, opt, 0, 1, &c);
    same(&a, &c);
    free(c.out);
  }
  free(a.out);
  free(b.out);
  return 0;
}
