/* core/base58.c - base58btc (Bitcoin alphabet).
 *
 * Both directions are a schoolbook base conversion done in place in the
 * caller's output buffer (no allocation, no scratch space): the digits grow
 * little-endian as input is absorbed, so running out of room is detected
 * exactly and early (which also bounds the work hostile input can cause). */
#include "lp2p/encoding.h"

static const char b58_alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

static int b58_value(unsigned char c) {
  if (c >= '1' && c <= '9') return c - '1';
  if (c >= 'A' && c <= 'H') return c - 'A' + 9;
  if (c >= 'J' && c <= 'N') return c - 'J' + 17;
  if (c >= 'P' && c <= 'Z') return c - 'P' + 22;
  if (c >= 'a' && c <= 'k') return c - 'a' + 33;
  if (c >= 'm' && c <= 'z') return c - 'm' + 44;
  return -1;
}

static void reverse(uint8_t *p, size_t n) {
  for (size_t i = 0, j = n; i + 1 < j; i++, j--) {
    uint8_t t = p[i];
    p[i] = p[j - 1];
    p[j - 1] = t;
  }
}

int lp2p_base58_encode(const uint8_t *in, size_t len, char *out, size_t cap, size_t *outlen) {
  if (!out || cap == 0) return LP2P_ERR_BUFSIZE;
  size_t zeros = 0;
  while (zeros < len && in[zeros] == 0) zeros++;
  if (zeros >= cap) return LP2P_ERR_BUFSIZE;
  uint8_t *dig = (uint8_t *)out + zeros; /* base-58 digits, least significant first */
  size_t room = cap - zeros - 1;         /* keep one byte for the NUL */
  size_t n = 0;
  for (size_t i = zeros; i < len; i++) {
    unsigned carry = in[i];
    for (size_t j = 0; j < n; j++) {
      carry += (unsigned)dig[j] << 8;
      dig[j] = (uint8_t)(carry % 58);
      carry /= 58;
    }
    while (carry) {
      if (n == room) return LP2P_ERR_BUFSIZE;
      dig[n++] = (uint8_t)(carry % 58);
      carry /= 58;
    }
  }
  reverse(dig, n);
  for (size_t j = 0; j < n; j++) dig[j] = (uint8_t)b58_alphabet[dig[j]];
  for (size_t j = 0; j < zeros; j++) out[j] = '1';
  out[zeros + n] = '\0';
  if (outlen) *outlen = zeros + n;
  return LP2P_OK;
}

int lp2p_base58_decode(const char *text, size_t len, uint8_t *out, size_t cap, size_t *outlen) {
  for (size_t i = 0; i < len; i++)
    if (b58_value((unsigned char)text[i]) < 0) return LP2P_ERR_PARSE;
  if (!out) cap = 0;
  size_t zeros = 0;
  while (zeros < len && text[zeros] == '1') zeros++;
  if (zeros > cap) return LP2P_ERR_BUFSIZE;
  uint8_t *dig = out ? out + zeros : NULL; /* base-256 digits, least significant first */
  size_t room = cap - zeros;
  size_t n = 0;
  for (size_t i = zeros; i < len; i++) {
    unsigned carry = (unsigned)b58_value((unsigned char)text[i]);
    for (size_t j = 0; j < n; j++) {
      carry += (unsigned)dig[j] * 58;
      dig[j] = (uint8_t)(carry & 0xff);
      carry >>= 8;
    }
    while (carry) {
      if (n == room) return LP2P_ERR_BUFSIZE;
      dig[n++] = (uint8_t)(carry & 0xff);
      carry >>= 8;
    }
  }
  if (n) reverse(dig, n);
  for (size_t j = 0; j < zeros; j++) out[j] = 0;
  if (outlen) *outlen = zeros + n;
  return LP2P_OK;
}
