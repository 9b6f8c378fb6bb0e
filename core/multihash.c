/* core/multihash.c - multihash parse/encode (identity, sha2-256). */
#include <sodium.h>
#include <string.h>

#include "lp2p/encoding.h"

int lp2p_multihash_parse(const uint8_t *in, size_t len, lp2p_multihash_view *out) {
  uint64_t code, dlen;
  if (!in && len) return LP2P_ERR_INVAL;
  int a = lp2p_uvarint_decode(in, len, &code);
  if (a < 0) return LP2P_ERR_MULTIHASH;
  int b = lp2p_uvarint_decode(in + a, len - (size_t)a, &dlen);
  if (b < 0) return LP2P_ERR_MULTIHASH;
  size_t hdr = (size_t)a + (size_t)b;
  if (dlen != len - hdr) return LP2P_ERR_MULTIHASH; /* truncated or trailing bytes */
  switch (code) {
  case LP2P_MH_IDENTITY:
    if (dlen > LP2P_MH_MAX_DIGEST) return LP2P_ERR_MULTIHASH;
    break;
  case LP2P_MH_SHA2_256:
    if (dlen != crypto_hash_sha256_BYTES) return LP2P_ERR_MULTIHASH;
    break;
  default: return LP2P_ERR_MULTIHASH;
  }
  if (out) {
    out->code = code;
    out->digest = in + hdr;
    out->digest_len = (size_t)dlen;
  }
  return LP2P_OK;
}

int lp2p_multihash_encode(uint64_t code, const uint8_t *digest, size_t dlen, uint8_t *out, size_t cap) {
  if (code >> 63 || (!digest && dlen)) return LP2P_ERR_INVAL;
  if (code == LP2P_MH_SHA2_256 && dlen != crypto_hash_sha256_BYTES) return LP2P_ERR_INVAL;
  if (dlen > (size_t)INT32_MAX - 2 * LP2P_UVARINT_MAX_LEN) return LP2P_ERR_INVAL;
  size_t need = lp2p_uvarint_size(code) + lp2p_uvarint_size(dlen) + dlen;
  if (!out || cap < need) return LP2P_ERR_BUFSIZE;
  size_t o = (size_t)lp2p_uvarint_encode(code, out, cap);
  o += (size_t)lp2p_uvarint_encode(dlen, out + o, cap - o);
  if (dlen) memmove(out + o, digest, dlen);
  return (int)need;
}

int lp2p_multihash_sha256(const uint8_t *data, size_t len, uint8_t *out, size_t cap) {
  if (!data && len) return LP2P_ERR_INVAL;
  if (!out || cap < 2 + crypto_hash_sha256_BYTES) return LP2P_ERR_BUFSIZE;
  uint8_t digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, data ? data : (const uint8_t *)"", len);
  out[0] = LP2P_MH_SHA2_256;
  out[1] = crypto_hash_sha256_BYTES;
  memcpy(out + 2, digest, sizeof digest);
  return 2 + crypto_hash_sha256_BYTES;
}

void lp2p_sha256(const uint8_t *data, size_t len, uint8_t out[LP2P_SHA256_LEN]) {
  crypto_hash_sha256(out, data ? data : (const uint8_t *)"", data ? len : 0);
}
