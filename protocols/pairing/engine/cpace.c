/* protocols/pairing/engine/cpace.c - CPace building blocks, draft-irtf-cfrg-cpace (the CFRG
 * repository's draft-irtf-cfrg-cpace.md, commit 8fb4056), cipher suite G_Ristretto255 + SHA-512.
 * Group arithmetic is libsodium's (crypto_core_ristretto255_from_hash is the RFC 9496 element
 * derivation, crypto_scalarmult_ristretto255 refuses invalid encodings and the identity).
 * Test: tests/unit/test_pairing_cpace.c reproduces the draft's ristretto255 vectors. */
#include <sodium.h>
#include <string.h>

#include "protocols/pairing/engine/pair_int.h"

#define CPACE_S_IN_BYTES 128 /* SHA-512 input block */

/* prepend_len: LEB128 length. Returns bytes written (<= 10) or 0 when cap is too small. */
static size_t leb128(uint8_t *out, size_t cap, size_t v) {
  size_t n = 0;
  do {
    if (n >= cap) return 0;
    uint8_t b = (uint8_t)(v & 0x7f);
    v >>= 7;
    out[n++] = (uint8_t)(b | (v ? 0x80 : 0));
  } while (v);
  return n;
}

static size_t leb128_size(size_t v) {
  size_t n = 1;
  while (v >>= 7) n++;
  return n;
}

int lp2p__cpace_lv_cat(uint8_t *out, size_t cap, size_t n, const uint8_t *const *parts,
                       const size_t *lens) {
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    size_t w = leb128(out + off, cap - off, lens[i]);
    if (!w) return LP2P_ERR_BUFSIZE;
    off += w;
    if (lens[i] > cap - off) return LP2P_ERR_BUFSIZE;
    if (lens[i]) memcpy(out + off, parts[i], lens[i]);
    off += lens[i];
  }
  if (off > 0x7fffffff) return LP2P_ERR_BUFSIZE;
  return (int)off;
}

int lp2p__cpace_generator_string(uint8_t *out, size_t cap, const uint8_t *prs, size_t prs_len,
                                 const uint8_t *ci, size_t ci_len, const uint8_t *sid,
                                 size_t sid_len) {
  static const uint8_t zeros[CPACE_S_IN_BYTES];
  const size_t dsi_len = sizeof LP2P__CPACE_DSI - 1;
  size_t used = leb128_size(prs_len) + prs_len + leb128_size(dsi_len) + dsi_len + 1;
  size_t zpad = used < CPACE_S_IN_BYTES ? CPACE_S_IN_BYTES - used : 0;
  const uint8_t *parts[5] = {(const uint8_t *)LP2P__CPACE_DSI, prs, zeros, ci, sid};
  size_t lens[5] = {dsi_len, prs_len, zpad, ci_len, sid_len};
  return lp2p__cpace_lv_cat(out, cap, 5, parts, lens);
}

int lp2p__cpace_generator(uint8_t g[32], const uint8_t *prs, size_t prs_len, const uint8_t *ci,
                          size_t ci_len, const uint8_t *sid, size_t sid_len) {
  uint8_t buf[1024], h[64];
  int n = lp2p__cpace_generator_string(buf, sizeof buf, prs, prs_len, ci, ci_len, sid, sid_len);
  if (n < 0) {
    sodium_memzero(buf, sizeof buf);
    return n;
  }
  crypto_hash_sha512(h, buf, (unsigned long long)n);
  int rv = crypto_core_ristretto255_from_hash(g, h) == 0 ? 0 : LP2P_ERR_INTERNAL;
  sodium_memzero(buf, sizeof buf);
  sodium_memzero(h, sizeof h);
  return rv;
}

void lp2p__cpace_sample_scalar(uint8_t y[32], lp2p__pair_rng_fn rng, void *rng_ctx) {
  if (rng)
    rng(rng_ctx, y, 32);
  else
    randombytes_buf(y, 32);
  y[31] &= 0x0f; /* group_size_bits = 252: clear bits 252..255 */
}

int lp2p__cpace_share(uint8_t Y[32], const uint8_t y[32], const uint8_t g[32]) {
  return crypto_scalarmult_ristretto255(Y, y, g) == 0 ? 0 : LP2P_ERR_INTERNAL;
}

int lp2p__cpace_vfy(uint8_t K[32], const uint8_t y[32], const uint8_t X[32]) {
  /* libsodium returns -1 when X is not a canonical encoding or the product is the identity:
   * exactly the draft's "scalar_mult_vfy returned G.I: abort". */
  if (crypto_scalarmult_ristretto255(K, y, X) != 0) {
    sodium_memzero(K, 32);
    return LP2P_ERR_DECRYPT;
  }
  return 0;
}

int lp2p__cpace_isk_ir(uint8_t isk[64], const uint8_t *sid, size_t sid_len, const uint8_t K[32],
                       const uint8_t Ya[32], const uint8_t *ada, size_t ada_len,
                       const uint8_t Yb[32], const uint8_t *adb, size_t adb_len) {
  static const char dsi_isk[] = LP2P__CPACE_DSI "_ISK";
  uint8_t buf[1024];
  const uint8_t *p1[3] = {(const uint8_t *)dsi_isk, sid, K};
  size_t l1[3] = {sizeof dsi_isk - 1, sid_len, 32};
  int a = lp2p__cpace_lv_cat(buf, sizeof buf, 3, p1, l1);
  if (a < 0) return a;
  const uint8_t *p2[4] = {Ya, ada, Yb, adb};
  size_t l2[4] = {32, ada_len, 32, adb_len};
  int b = lp2p__cpace_lv_cat(buf + a, sizeof buf - (size_t)a, 4, p2, l2);
  if (b < 0) {
    sodium_memzero(buf, sizeof buf);
    return b;
  }
  crypto_hash_sha512(isk, buf, (unsigned long long)(a + b));
  sodium_memzero(buf, sizeof buf);
  return 0;
}
