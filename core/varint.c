/* core/varint.c - multiformats unsigned varint (strict: minimal, <= 9 bytes). */
#include "lp2p/encoding.h"

size_t lp2p_uvarint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

int lp2p_uvarint_encode(uint64_t v, uint8_t *out, size_t cap) {
  if (v >> 63) return LP2P_ERR_INVAL;
  size_t n = lp2p_uvarint_size(v);
  if (!out || cap < n) return LP2P_ERR_BUFSIZE;
  for (size_t i = 0; i + 1 < n; i++) {
    out[i] = (uint8_t)(v & 0x7f) | 0x80;
    v >>= 7;
  }
  out[n - 1] = (uint8_t)v;
  return (int)n;
}

int lp2p_uvarint_decode(const uint8_t *in, size_t len, uint64_t *v) {
  uint64_t acc = 0;
  size_t max = len < LP2P_UVARINT_MAX_LEN ? len : LP2P_UVARINT_MAX_LEN;
  for (size_t i = 0; i < max; i++) {
    uint8_t b = in[i];
    acc |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      if (i > 0 && b == 0) return LP2P_ERR_VARINT; /* non-minimal: trailing zero group */
      if (v) *v = acc;
      return (int)(i + 1);
    }
  }
  return max == LP2P_UVARINT_MAX_LEN ? LP2P_ERR_VARINT : LP2P_ERR_AGAIN;
}
