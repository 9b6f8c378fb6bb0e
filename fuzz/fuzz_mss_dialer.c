/* fuzz_mss_dialer.c - the multistream-select dialer's (and lister's) input path.
 *
 * Input: [opt][cut][bytes from the listener...]
 *   opt bit 0: lister (sends "ls" first); bits 1-2: number of proposals (dialer: 1 + k, lister: k);
 *   bit 3: small max_line (19 + 8 * ((opt >> 4) & 7)).
 *   cut: where the second run splits the input (cut % (len + 1)).
 * The same bytes are fed whole, split in two, and byte by byte; the outcomes must be identical, the dialer's
 * output must be exactly header [+ ls] + the proposals made so far, and an agreed protocol must be one of
 * ours. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/mss.h"

static const char *const PROTOS[] = {"/noise", "/yamux/1.0.0", "/tls/1.0.0", "/mplex/6.7.0"};

typedef struct outcome {
  int64_t rv;
  int done, list_received;
  size_t rejections, list_n;
  char proto[64];
  uint8_t out[512];
  size_t out_len;
  uint32_t list_hash;
} outcome;

static void take_output(lp2p_mss *m, outcome *o) {
  const uint8_t *p;
  size_t n = lp2p_mss_output(m, &p);
  if (!n) return;
  if (o->out_len + n > sizeof o->out) __builtin_trap(); /* at most header + ls + 4 proposals */
  memcpy(o->out + o->out_len, p, n);
  o->out_len += n;
  lp2p_mss_output_consumed(m, n);
}

static void put_line(uint8_t *b, size_t *len, const char *s) {
  size_t n = strlen(s);
  b[(*len)++] = (uint8_t)(n + 1); /* all our lines are < 128 bytes */
  memcpy(b + *len, s, n);
  *len += n;
  b[(*len)++] = '\n';
}

static void run(const uint8_t *in, size_t len, uint8_t opt, size_t split, int bytewise, outcome *o) {
  memset(o, 0, sizeof *o);
  int lister = opt & 1;
  size_t n = (size_t)((opt >> 1) & 3) + (lister ? 0 : 1);
  lp2p_mss_limits lim = {opt & 8 ? 19 + 8 * (size_t)((opt >> 4) & 7) : 0, 0};
  lp2p_mss *m;
  int rv = lister ? lp2p_mss_new_lister(&m, PROTOS, n, &lim, NULL) : lp2p_mss_new_dialer(&m, PROTOS, n, &lim, NULL);
  if (rv == LP2P_ERR_TOO_LARGE) return; /* a proposal longer than the small max_line */
  if (rv) abort();
  take_output(m, o);
  size_t pos = 0;
  while (pos < len) {
    size_t end = bytewise ? pos + 1 : (split && pos < split ? split : len);
    int64_t c = lp2p_mss_feed(m, in + pos, end - pos);
    take_output(m, o);
    if (c < 0) {
      if (c != LP2P_ERR_PROTO && c != LP2P_ERR_UNSUPPORTED && c != LP2P_ERR_TOO_LARGE) __builtin_trap();
      if (lp2p_mss_feed(m, in, len) != c) __builtin_trap();
      o->rv = c;
      break;
    }
    if ((size_t)c > end - pos) __builtin_trap();
    o->rv += c;
    if ((size_t)c < end - pos) {
      if (!lp2p_mss_done(m) && !(lister && n == 0 && lp2p_mss_list_received(m))) __builtin_trap();
      if (lp2p_mss_feed(m, in + pos + c, end - pos - (size_t)c) != 0) __builtin_trap();
      break;
    }
    pos = end;
  }
  o->done = lp2p_mss_done(m);
  o->rejections = lp2p_mss_rejections(m);
  o->list_received = lp2p_mss_list_received(m);
  o->list_n = lp2p_mss_list_count(m);
  if (!lister && (o->list_received || o->list_n)) __builtin_trap();
  o->list_hash = 2166136261u;
  for (size_t i = 0; i < o->list_n; i++) {
    const char *s = lp2p_mss_list_at(m, i);
    size_t l = strlen(s);
    if (!l || memchr(s, '\n', l)) __builtin_trap();
    for (size_t k = 0; k <= l; k++) o->list_hash = (o->list_hash ^ (uint8_t)s[k]) * 16777619u;
  }
  if (lp2p_mss_list_at(m, o->list_n)) __builtin_trap();
  if (o->done) {
    const char *p = lp2p_mss_protocol(m);
    int ours = 0;
    for (size_t i = 0; i < n; i++) ours |= !strcmp(p, PROTOS[i]);
    if (!ours) __builtin_trap();
    strcpy(o->proto, p);
  } else if (lp2p_mss_protocol(m)) {
    __builtin_trap();
  }
  if (!lister) {
    /* output = header + proposals 0..k, one more after each "na" */
    size_t sent = o->rejections + 1 > n ? n : o->rejections + 1;
    uint8_t want[512];
    size_t wl = 0;
    put_line(want, &wl, LP2P_MSS_PROTOCOL_ID);
    for (size_t i = 0; i < sent; i++) put_line(want, &wl, PROTOS[i]);
    if (wl != o->out_len || memcmp(want, o->out, wl)) __builtin_trap();
    /* UNSUPPORTED: every proposal refused, or (before any answer) another multistream version */
    if (o->rv == LP2P_ERR_UNSUPPORTED && o->rejections != n && o->rejections != 0) __builtin_trap();
  }
  lp2p_mss_free(m);
}

static void same(const outcome *a, const outcome *b) {
  if (a->rv != b->rv || a->done != b->done || strcmp(a->proto, b->proto) || a->out_len != b->out_len ||
      memcmp(a->out, b->out, a->out_len) || a->rejections != b->rejections ||
      a->list_received != b->list_received || a->list_n != b->list_n || a->list_hash != b->list_hash)
    __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint8_t opt = data[0];
  size_t cut = data[1];
  data += 2;
  size -= 2;
  static outcome a, b, c;
  run(data, size, opt, 0, 0, &a);
  run(data, size, opt, size ? cut % (size + 1) : 0, 0, &b);
  same(&a, &b);
  if (size <= 4096) {
    run(data, size, opt, 0, 1, &c);
    same(&a, &c);
  }
  return 0;
}
