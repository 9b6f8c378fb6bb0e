/* core/hex.c - lower-case hex encoding, case-insensitive decoding. */
#include "lp2p/encoding.h"

int lp2p_hex_encode(const uint8_t *in, size_t len, char *out, size_t cap) {
  static const char digits[] = "0123456789abcdef";
  if (len > (SIZE_MAX - 1) / 2 || len > (size_t)INT32_MAX / 2) return LP2P_ERR_INVAL;
  if (!out || cap < 2 * len + 1) return LP2P_ERR_BUFSIZE;
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * len] = '\0';
  return (int)(2 * len);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int lp2p_hex_decode(const char *hex, size_t len, uint8_t *out, size_t cap, size_t *outlen) {
  if (len % 2) return LP2P_ERR_PARSE;
  for (size_t i = 0; i < len; i++)
    if (hexval(hex[i]) < 0) return LP2P_ERR_PARSE;
  if (cap < len / 2 || (!out && len)) return LP2P_ERR_BUFSIZE;
  for (size_t i = 0; i < len / 2; i++) out[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
  if (outlen) *outlen = len / 2;
  return LP2P_OK;
}
