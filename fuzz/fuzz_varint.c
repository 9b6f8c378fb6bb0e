/* fuzz/fuzz_varint.c - strict uvarint decoding: whatever decodes must
 * re-encode to exactly the consumed bytes (minimality), and the error kinds
 * must match the input shape. */
#include <stdlib.h>
#include <string.h>

#include "lp2p/encoding.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint64_t v = 0;
  int rv = lp2p_uvarint_decode(data, size, &v);
  size_t cont = 0; /* leading bytes with the continuation bit */
  while (cont < size && (data[cont] & 0x80)) cont++;
  if (rv > 0) {
    uint8_t enc[LP2P_UVARINT_MAX_LEN];
    if ((size_t)rv != cont + 1 || rv > LP2P_UVARINT_MAX_LEN) abort();
    if (v >> 63) abort();
    if (lp2p_uvarint_encode(v, enc, sizeof enc) != rv || memcmp(enc, data, (size_t)rv)) abort();
    if (lp2p_uvarint_size(v) != (size_t)rv) abort();
  } else if (rv == LP2P_ERR_AGAIN) {
    if (cont != size || size >= LP2P_UVARINT_MAX_LEN) abort();
  } else if (rv == LP2P_ERR_VARINT) {
    /* too long, or a terminating zero byte after at least one other byte */
    int too_long = cont >= LP2P_UVARINT_MAX_LEN;
    int overlong = cont < size && cont > 0 && data[cont] == 0;
    if (!too_long && !overlong) abort();
  } else {
    abort();
  }
  /* encoding direction: the first 8 bytes as a value */
  if (size >= 8) {
    uint64_t x;
    memcpy(&x, data, 8);
    uint8_t enc[LP2P_UVARINT_MAX_LEN];
    int n = lp2p_uvarint_encode(x, enc, sizeof enc);
    if (x >> 63) {
      if (n != LP2P_ERR_INVAL) abort();
    } else {
      uint64_t y;
      if (n <= 0 || lp2p_uvarint_decode(enc, (size_t)n, &y) != n || y != x) abort();
      if (n > 1 && lp2p_uvarint_encode(x, enc, (size_t)n - 1) != LP2P_ERR_BUFSIZE) abort();
    }
  }
  return 0;
}
