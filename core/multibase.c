/* core/multibase.c - base32 (RFC 4648, no padding), base64url (RFC 4648 §5, no
 * padding) and the multibase prefixes lp2p understands. */
#include "lp2p/encoding.h"

#include "core/multibase_int.h"

/* ---- generic 2^k radix (k = 5 or 6), MSB first, no padding ---- */

static int radix_encode(const char *alphabet, unsigned bits, const uint8_t *in, size_t len, char *out, size_t cap,
                        size_t *outlen) {
  if (len > (SIZE_MAX - 8) / 8) return LP2P_ERR_INVAL;
  size_t n = (len * 8 + bits - 1) / bits;
  if (!out || cap < n + 1) return LP2P_ERR_BUFSIZE;
  uint32_t acc = 0;
  unsigned have = 0;
  size_t o = 0;
  unsigned mask = (1u << bits) - 1;
  for (size_t i = 0; i < len; i++) {
    acc = (acc << 8 | in[i]) & 0xffff; /* at most bits-1+8 < 16 live bits */
    have += 8;
    while (have >= bits) {
      have -= bits;
      out[o++] = alphabet[(acc >> have) & mask];
    }
  }
  if (have) out[o++] = alphabet[(acc << (bits - have)) & mask];
  out[o] = '\0';
  if (outlen) *outlen = o;
  return LP2P_OK;
}

/* value(c) returns 0..2^bits-1 or -1. */
static int radix_decode(int (*value)(unsigned char), unsigned bits, const char *text, size_t len, uint8_t *out,
                        size_t cap, size_t *outlen) {
  size_t n = len * bits / 8;
  size_t rem = len * bits % 8; /* leftover bits: must be < bits and all zero */
  if (rem >= bits) return LP2P_ERR_PARSE;
  for (size_t i = 0; i < len; i++)
    if (value((unsigned char)text[i]) < 0) return LP2P_ERR_PARSE;
  if (len && (value((unsigned char)text[len - 1]) & ((1u << rem) - 1))) return LP2P_ERR_PARSE;
  if (cap < n || (!out && n)) return LP2P_ERR_BUFSIZE;
  uint32_t acc = 0;
  unsigned have = 0;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    acc = (acc << bits | (uint32_t)value((unsigned char)text[i])) & 0xffff;
    have += bits;
    if (have >= 8) {
      have -= 8;
      out[o++] = (uint8_t)(acc >> have);
    }
  }
  if (outlen) *outlen = o;
  return LP2P_OK;
}

/* ---- base32 ---- */

static const char b32_lower[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char b32_upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static int b32_value(unsigned char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

int lp2p_base32_encode(const uint8_t *in, size_t len, char *out, size_t cap, size_t *outlen) {
  return radix_encode(b32_lower, 5, in, len, out, cap, outlen);
}

int lp2p_base32_decode(const char *text, size_t len, uint8_t *out, size_t cap, size_t *outlen) {
  return radix_decode(b32_value, 5, text, len, out, cap, outlen);
}

/* ---- base64url ---- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

int lp2p__base64url_encode(const uint8_t *in, size_t len, char *out, size_t cap, size_t *outlen) {
  return radix_encode(b64url, 6, in, len, out, cap, outlen);
}

int lp2p__base64url_decode(const char *text, size_t len, uint8_t *out, size_t cap, size_t *outlen) {
  return radix_decode(b64url_value, 6, text, len, out, cap, outlen);
}

/* ---- multibase ---- */

int lp2p_multibase_encode(char prefix, const uint8_t *in, size_t len, char *out, size_t cap, size_t *outlen) {
  if (!out || cap < 2) return LP2P_ERR_BUFSIZE;
  int rv;
  size_t n = 0;
  switch (prefix) {
  case 'z': rv = lp2p_base58_encode(in, len, out + 1, cap - 1, &n); break;
  case 'b': rv = radix_encode(b32_lower, 5, in, len, out + 1, cap - 1, &n); break;
  case 'B': rv = radix_encode(b32_upper, 5, in, len, out + 1, cap - 1, &n); break;
  case 'u': rv = radix_encode(b64url, 6, in, len, out + 1, cap - 1, &n); break;
  case 'f': {
    rv = lp2p_hex_encode(in, len, out + 1, cap - 1);
    if (rv >= 0) n = (size_t)rv;
    break;
  }
  default: return LP2P_ERR_INVAL;
  }
  if (rv < 0) return rv;
  out[0] = prefix;
  if (outlen) *outlen = n + 1;
  return LP2P_OK;
}

int lp2p_multibase_decode(const char *text, size_t len, uint8_t *out, size_t cap, size_t *outlen) {
  if (len < 1) return LP2P_ERR_MULTIBASE;
  int rv;
  switch (text[0]) {
  case 'z': rv = lp2p_base58_decode(text + 1, len - 1, out, cap, outlen); break;
  case 'b':
  case 'B': rv = lp2p_base32_decode(text + 1, len - 1, out, cap, outlen); break;
  case 'u': rv = lp2p__base64url_decode(text + 1, len - 1, out, cap, outlen); break;
  case 'f':
  case 'F': rv = lp2p_hex_decode(text + 1, len - 1, out, cap, outlen); break;
  default: return LP2P_ERR_MULTIBASE;
  }
  return rv == LP2P_ERR_PARSE ? LP2P_ERR_MULTIBASE : rv;
}
