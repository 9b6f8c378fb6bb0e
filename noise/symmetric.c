/* symmetric.c - Noise CipherState, SymmetricState and HKDF for
 * Noise_XX_25519_ChaChaPoly_SHA256 (libsodium: ChaCha20-Poly1305 IETF, SHA-256;
 * libtomcrypt: HKDF over HMAC-SHA256). */
#include <sodium.h>
#include <tomcrypt.h>

#include "noise/noise_int.h"

static int sha256_index(void) {
  int idx = find_hash("sha256");
  if (idx < 0) idx = register_hash(&sha256_desc);
  return idx;
}

static int map_ltc(int err) { return err == CRYPT_MEM ? LP2P_ERR_NOMEM : LP2P_ERR_INTERNAL; }

/* Noise HKDF(ck, ikm) with two outputs is RFC 5869 HKDF with salt = ck, empty info and 64 bytes
 * of output: temp = HMAC(ck, ikm), o1 = HMAC(temp, 0x01), o2 = HMAC(temp, o1 || 0x02). */
int lp2p__noise_hkdf2(const uint8_t ck[32], const uint8_t *ikm, size_t ikm_len, uint8_t out1[32],
                      uint8_t out2[32]) {
  static const unsigned char empty[1] = {0};
  unsigned char prk[32], okm[64];
  unsigned long prk_len = sizeof prk;
  int idx = sha256_index();
  if (idx < 0) return LP2P_ERR_INTERNAL;
  int err = hkdf_extract(idx, ck, 32, ikm_len ? ikm : empty, (unsigned long)ikm_len, prk, &prk_len);
  if (err == CRYPT_OK && prk_len != sizeof prk) err = CRYPT_ERROR;
  if (err == CRYPT_OK) err = hkdf_expand(idx, empty, 0, prk, sizeof prk, okm, sizeof okm);
  if (err == CRYPT_OK) {
    memcpy(out1, okm, 32);
    memcpy(out2, okm + 32, 32);
  }
  sodium_memzero(prk, sizeof prk);
  sodium_memzero(okm, sizeof okm);
  return err == CRYPT_OK ? 0 : map_ltc(err);
}

/* ---- CipherState ---- */

void lp2p__noise_cipher_init(lp2p__noise_cipher *c, const uint8_t k[32]) {
  memcpy(c->k, k, 32);
  c->n = 0;
  c->has_key = 1;
}

static void make_nonce(uint8_t nonce[12], uint64_t n) {
  memset(nonce, 0, 4);
  for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

int lp2p__noise_cipher_encrypt(lp2p__noise_cipher *c, const uint8_t *ad, size_t ad_len, const uint8_t *pt,
                               size_t pt_len, uint8_t *out) {
  if (!c->has_key) {
    if (out != pt && pt_len) memmove(out, pt, pt_len);
    return 0;
  }
  if (c->n == UINT64_MAX) return LP2P_ERR_NONCE_EXHAUSTED;
  uint8_t nonce[12];
  make_nonce(nonce, c->n);
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(out, out + pt_len, NULL, pt, pt_len, ad, ad_len, NULL, nonce,
                                                     c->k);
  c->n++;
  return 0;
}

int lp2p__noise_cipher_decrypt(lp2p__noise_cipher *c, const uint8_t *ad, size_t ad_len, const uint8_t *ct,
                               size_t ct_len, uint8_t *out) {
  if (!c->has_key) {
    if (out != ct && ct_len) memmove(out, ct, ct_len);
    return 0;
  }
  if (c->n == UINT64_MAX) return LP2P_ERR_NONCE_EXHAUSTED;
  if (ct_len < LP2P_NOISE_TAG_LEN) return LP2P_ERR_DECRYPT;
  uint8_t nonce[12];
  make_nonce(nonce, c->n);
  size_t len = ct_len - LP2P_NOISE_TAG_LEN;
  if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, NULL, ct, len, ct + len, ad, ad_len, nonce, c->k))
    return LP2P_ERR_DECRYPT;
  c->n++;
  return 0;
}

void lp2p__noise_cipher_wipe(lp2p__noise_cipher *c) { sodium_memzero(c, sizeof *c); }

/* ---- SymmetricState ---- */

void lp2p__noise_sym_init(lp2p__noise_sym *s, const char *protocol_name) {
  memset(s, 0, sizeof *s);
  size_t len = strlen(protocol_name);
  if (len <= LP2P__NOISE_HASHLEN)
    memcpy(s->h, protocol_name, len);
  else
    crypto_hash_sha256(s->h, (const uint8_t *)protocol_name, len);
  memcpy(s->ck, s->h, LP2P__NOISE_HASHLEN);
}

static void hash2(uint8_t out[32], const uint8_t h[32], const uint8_t *data, size_t len) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, h, 32);
  if (len) crypto_hash_sha256_update(&st, data, len);
  crypto_hash_sha256_final(&st, out);
}

void lp2p__noise_sym_mix_hash(lp2p__noise_sym *s, const uint8_t *data, size_t len) { hash2(s->h, s->h, data, len); }

int lp2p__noise_sym_mix_key(lp2p__noise_sym *s, const uint8_t *ikm, size_t len) {
  uint8_t ck[32], k[32];
  int rv = lp2p__noise_hkdf2(s->ck, ikm, len, ck, k);
  if (rv == 0) {
    memcpy(s->ck, ck, 32);
    lp2p__noise_cipher_init(&s->cs, k);
  }
  sodium_memzero(ck, sizeof ck);
  sodium_memzero(k, sizeof k);
  return rv;
}

int lp2p__noise_sym_encrypt_and_hash(lp2p__noise_sym *s, const uint8_t *pt, size_t len, uint8_t *out,
                                     size_t *out_len) {
  int rv = lp2p__noise_cipher_encrypt(&s->cs, s->h, sizeof s->h, pt, len, out);
  if (rv) return rv;
  *out_len = len + (s->cs.has_key ? LP2P_NOISE_TAG_LEN : 0);
  lp2p__noise_sym_mix_hash(s, out, *out_len);
  return 0;
}

int lp2p__noise_sym_decrypt_and_hash(lp2p__noise_sym *s, const uint8_t *ct, size_t len, uint8_t *out,
                                     size_t *out_len) {
  /* h must absorb the ciphertext, which an in-place decryption overwrites: hash first. */
  uint8_t h_next[32];
  hash2(h_next, s->h, ct, len);
  int rv = lp2p__noise_cipher_decrypt(&s->cs, s->h, sizeof s->h, ct, len, out);
  if (rv) return rv;
  *out_len = len - (s->cs.has_key ? LP2P_NOISE_TAG_LEN : 0);
  memcpy(s->h, h_next, 32);
  return 0;
}

int lp2p__noise_sym_split(const lp2p__noise_sym *s, lp2p__noise_cipher *c1, lp2p__noise_cipher *c2) {
  uint8_t k1[32], k2[32];
  int rv = lp2p__noise_hkdf2(s->ck, NULL, 0, k1, k2);
  if (rv == 0) {
    lp2p__noise_cipher_init(c1, k1);
    lp2p__noise_cipher_init(c2, k2);
  }
  sodium_memzero(k1, sizeof k1);
  sodium_memzero(k2, sizeof k2);
  return rv;
}

void lp2p__noise_sym_wipe(lp2p__noise_sym *s) { sodium_memzero(s, sizeof *s); }
