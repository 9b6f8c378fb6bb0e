/* test_noise_symmetric.c - the raw Noise machinery: HKDF, CipherState (nonce layout, exhaustion,
 * in-place), SymmetricState, and the XX pattern against the cacophony vector (prologue
 * "John Galt", payloads in every message, three transport messages). No libp2p keys involved. */
#include <sodium.h>

#include "json.h"
#include "noise/noise_int.h"
#include "test.h"

static uint8_t *hexdup(const char *hex, size_t *len) {
  uint8_t *p = hex_to_bytes(hex, len);
  if (!p) abort();
  return p;
}

/* RFC 5869 test case 1 is SHA-256 with a salt; Noise's HKDF is HKDF with salt = ck, empty info.
 * Checked here against libsodium's HMAC-SHA256 computing the Noise definition directly. */
TEST(hkdf_matches_noise_definition) {
  uint8_t ck[32], ikm[77];
  for (int i = 0; i < 32; i++) ck[i] = (uint8_t)(i * 7 + 1);
  for (int i = 0; i < 77; i++) ikm[i] = (uint8_t)(255 - i);
  size_t lens[] = {0, 1, 32, 77};
  for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
    uint8_t o1[32], o2[32], temp[32], e1[32], e2[32], in2[33];
    CHECK_OK(lp2p__noise_hkdf2(ck, lens[t] ? ikm : NULL, lens[t], o1, o2));
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, ck, 32);
    crypto_auth_hmacsha256_update(&st, ikm, lens[t]);
    crypto_auth_hmacsha256_final(&st, temp);
    uint8_t one = 1;
    crypto_auth_hmacsha256_init(&st, temp, 32);
    crypto_auth_hmacsha256_update(&st, &one, 1);
    crypto_auth_hmacsha256_final(&st, e1);
    memcpy(in2, e1, 32);
    in2[32] = 2;
    crypto_auth_hmacsha256_init(&st, temp, 32);
    crypto_auth_hmacsha256_update(&st, in2, 33);
    crypto_auth_hmacsha256_final(&st, e2);
    CHECK_MEM(o1, e1, 32);
    CHECK_MEM(o2, e2, 32);
  }
}

TEST(cipher_nonce_is_little_endian_in_last_8_bytes) {
  uint8_t k[32], pt[5] = "hello", ct[21], ref[21], nonce[12] = {0};
  for (int i = 0; i < 32; i++) k[i] = (uint8_t)i;
  lp2p__noise_cipher c;
  lp2p__noise_cipher_init(&c, k);
  c.n = 0x0102030405060708ull;
  CHECK_OK(lp2p__noise_cipher_encrypt(&c, (const uint8_t *)"ad", 2, pt, 5, ct));
  CHECK(c.n == 0x0102030405060709ull);
  for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(8 - i);
  unsigned long long rl;
  crypto_aead_chacha20poly1305_ietf_encrypt(ref, &rl, pt, 5, (const uint8_t *)"ad", 2, NULL, nonce, k);
  CHECK_EQ(rl, 21);
  CHECK_MEM(ct, ref, 21);
  /* decrypt in place */
  lp2p__noise_cipher d;
  lp2p__noise_cipher_init(&d, k);
  d.n = 0x0102030405060708ull;
  CHECK_OK(lp2p__noise_cipher_decrypt(&d, (const uint8_t *)"ad", 2, ct, 21, ct));
  CHECK_MEM(ct, "hello", 5);
  CHECK(d.n == 0x0102030405060709ull);
}

TEST(cipher_rejects_tamper_and_short_input_without_advancing) {
  uint8_t k[32] = {9}, buf[32], out[32];
  lp2p__noise_cipher a, b;
  lp2p__noise_cipher_init(&a, k);
  lp2p__noise_cipher_init(&b, k);
  memcpy(buf, "0123456789abcdef", 16);
  CHECK_OK(lp2p__noise_cipher_encrypt(&a, NULL, 0, buf, 16, buf));
  for (size_t i = 0; i < 32; i++) {
    uint8_t t[32];
    memcpy(t, buf, 32);
    t[i] ^= 0x80;
    CHECK_EQ(lp2p__noise_cipher_decrypt(&b, NULL, 0, t, 32, out), LP2P_ERR_DECRYPT);
    CHECK(b.n == 0);
  }
  CHECK_EQ(lp2p__noise_cipher_decrypt(&b, NULL, 0, buf, 15, out), LP2P_ERR_DECRYPT);
  CHECK_EQ(lp2p__noise_cipher_decrypt(&b, (const uint8_t *)"x", 1, buf, 32, out), LP2P_ERR_DECRYPT);
  CHECK_OK(lp2p__noise_cipher_decrypt(&b, NULL, 0, buf, 32, out));
  CHECK_MEM(out, "0123456789abcdef", 16);
  CHECK(b.n == 1);
}

TEST(cipher_nonce_2_64_minus_1_is_reserved) {
  uint8_t k[32] = {1}, buf[64] = {0};
  lp2p__noise_cipher a, b;
  lp2p__noise_cipher_init(&a, k);
  lp2p__noise_cipher_init(&b, k);
  a.n = b.n = UINT64_MAX - 1;
  CHECK_OK(lp2p__noise_cipher_encrypt(&a, NULL, 0, buf, 8, buf));
  CHECK(a.n == UINT64_MAX);
  CHECK_EQ(lp2p__noise_cipher_encrypt(&a, NULL, 0, buf, 8, buf + 32), LP2P_ERR_NONCE_EXHAUSTED);
  CHECK_OK(lp2p__noise_cipher_decrypt(&b, NULL, 0, buf, 24, buf));
  CHECK_EQ(lp2p__noise_cipher_decrypt(&b, NULL, 0, buf, 24, buf), LP2P_ERR_NONCE_EXHAUSTED);
}

TEST(cipher_without_key_is_identity) {
  lp2p__noise_cipher c;
  memset(&c, 0, sizeof c);
  uint8_t in[4] = {1, 2, 3, 4}, out[4];
  CHECK_OK(lp2p__noise_cipher_encrypt(&c, NULL, 0, in, 4, out));
  CHECK_MEM(in, out, 4);
  CHECK_OK(lp2p__noise_cipher_decrypt(&c, NULL, 0, in, 4, out));
  CHECK_MEM(in, out, 4);
  CHECK(c.n == 0);
}

TEST(symmetric_init_uses_name_as_h) {
  lp2p__noise_sym s;
  lp2p__noise_sym_init(&s, LP2P__NOISE_PROTOCOL_NAME);
  CHECK_MEM(s.h, "Noise_XX_25519_ChaChaPoly_SHA256", 32);
  CHECK_MEM(s.ck, s.h, 32);
  CHECK(!s.cs.has_key);
  /* MixHash("") still hashes: h = SHA256(h) (libp2p vector trace value) */
  lp2p__noise_sym_mix_hash(&s, NULL, 0);
  size_t n;
  uint8_t *want = hexdup("f3d15e6108ed9556171207baa58f97d29a13c6be40595166066e2e0958dc002d", &n);
  CHECK_MEM(s.h, want, 32);
  free(want);
  /* A longer name is hashed. */
  lp2p__noise_sym_init(&s, "Noise_XXpsk3_25519_ChaChaPoly_SHA256");
  uint8_t h[32];
  crypto_hash_sha256(h, (const uint8_t *)"Noise_XXpsk3_25519_ChaChaPoly_SHA256", 36);
  CHECK_MEM(s.h, h, 32);
}

/* ---- cacophony Noise_XX_25519_ChaChaPoly_SHA256 ---- */

typedef struct caco {
  json *doc;
  const json *v;
  uint8_t *prologue, *is, *ie, *rs, *re, *hh;
  size_t prologue_len;
} caco;

static int caco_load(caco *c) {
  memset(c, 0, sizeof *c);
  c->doc = json_load_vector("noise-xx-cacophony.json");
  if (!c->doc) return -1;
  c->v = json_get(c->doc, "vector");
  if (!c->v || strcmp(json_str(c->v, "protocol_name"), LP2P__NOISE_PROTOCOL_NAME)) return -1;
  size_t n;
  c->prologue = json_hex(c->v, "init_prologue", &c->prologue_len);
  c->is = json_hex(c->v, "init_static", &n);
  c->ie = json_hex(c->v, "init_ephemeral", &n);
  c->rs = json_hex(c->v, "resp_static", &n);
  c->re = json_hex(c->v, "resp_ephemeral", &n);
  c->hh = json_hex(c->v, "handshake_hash", &n);
  return c->prologue && c->is && c->ie && c->rs && c->re && c->hh ? 0 : -1;
}

static void caco_free(caco *c) {
  free(c->prologue);
  free(c->is);
  free(c->ie);
  free(c->rs);
  free(c->re);
  free(c->hh);
  json_free(c->doc);
}

TEST(cacophony_xx_vector_both_roles) {
  caco c;
  REQUIRE(caco_load(&c) == 0);
  const json *msgs = json_get(c.v, "messages");
  REQUIRE(msgs && msgs->n == 6);
  lp2p__noise_hs ini, res;
  CHECK_OK(lp2p__noise_hs_init(&ini, 1, c.prologue, c.prologue_len, c.is, c.ie));
  CHECK_OK(lp2p__noise_hs_init(&res, 0, c.prologue, c.prologue_len, c.rs, c.re));
  lp2p__noise_cipher ic1, ic2, rc1, rc2;
  for (size_t i = 0; i < 6; i++) {
    size_t plen, clen;
    uint8_t *payload = hexdup(json_str(json_at(msgs, i), "payload"), &plen);
    uint8_t *ct = hexdup(json_str(json_at(msgs, i), "ciphertext"), &clen);
    uint8_t out[512], back[512];
    size_t olen = 0, blen = 0;
    if (i < 3) {
      lp2p__noise_hs *w = i % 2 == 0 ? &ini : &res, *r = i % 2 == 0 ? &res : &ini;
      CHECK_EQ(lp2p__noise_hs_write(r, payload, plen, out, sizeof out, &olen), LP2P_ERR_STATE);
      CHECK_OK(lp2p__noise_hs_write(w, payload, plen, out, sizeof out, &olen));
      CHECK_EQ(olen, clen);
      CHECK_EQ(olen, plen + lp2p__noise_hs_overhead((int)i));
      CHECK_MEM(out, ct, clen);
      CHECK_OK(lp2p__noise_hs_read(r, ct, clen, back, sizeof back, &blen));
      CHECK_EQ(blen, plen);
      CHECK_MEM(back, payload, plen);
      if (i == 2) {
        CHECK_MEM(ini.sym.h, c.hh, 32);
        CHECK_MEM(res.sym.h, c.hh, 32);
        CHECK_OK(lp2p__noise_hs_split(&ini, &ic1, &ic2));
        CHECK_OK(lp2p__noise_hs_split(&res, &rc1, &rc2));
        CHECK_MEM(ic1.k, rc1.k, 32);
        CHECK_MEM(ic2.k, rc2.k, 32);
      }
    } else {
      /* transport: 3 and 5 responder -> initiator (c2), 4 initiator -> responder (c1) */
      lp2p__noise_cipher *enc = i % 2 ? &rc2 : &ic1, *dec = i % 2 ? &ic2 : &rc1;
      CHECK_OK(lp2p__noise_cipher_encrypt(enc, NULL, 0, payload, plen, out));
      CHECK_EQ(plen + 16, clen);
      CHECK_MEM(out, ct, clen);
      CHECK_OK(lp2p__noise_cipher_decrypt(dec, NULL, 0, ct, clen, back));
      CHECK_MEM(back, payload, plen);
    }
    free(payload);
    free(ct);
  }
  uint8_t x[96] = {0};
  size_t xl;
  CHECK_EQ(lp2p__noise_hs_write(&ini, NULL, 0, x, sizeof x, &xl), LP2P_ERR_STATE);
  CHECK_EQ(lp2p__noise_hs_read(&res, x, sizeof x, x, sizeof x, &xl), LP2P_ERR_STATE);
  lp2p__noise_hs_wipe(&ini);
  lp2p__noise_hs_wipe(&res);
  caco_free(&c);
}

/* Any single flipped bit in message 2 or 3 of the cacophony run, or a different prologue,
 * fails authentication on the reading side. */
TEST(cacophony_tamper_and_prologue_mismatch) {
  caco c;
  REQUIRE(caco_load(&c) == 0);
  const json *msgs = json_get(c.v, "messages");
  REQUIRE(msgs && msgs->n == 6);
  for (int which = 1; which <= 2; which++) {
    for (size_t bit = 0; bit < 8 * (which == 1 ? 104 : 72); bit += 7) {
      lp2p__noise_hs ini, res;
      CHECK_OK(lp2p__noise_hs_init(&ini, 1, c.prologue, c.prologue_len, c.is, c.ie));
      CHECK_OK(lp2p__noise_hs_init(&res, 0, c.prologue, c.prologue_len, c.rs, c.re));
      uint8_t m[512], p[512];
      size_t ml, pl;
      CHECK_OK(lp2p__noise_hs_write(&ini, NULL, 0, m, sizeof m, &ml));
      CHECK_OK(lp2p__noise_hs_read(&res, m, ml, p, sizeof p, &pl));
      if (which == 2) {
        CHECK_OK(lp2p__noise_hs_write(&res, (const uint8_t *)"x", 1, m, sizeof m, &ml));
        CHECK_OK(lp2p__noise_hs_read(&ini, m, ml, p, sizeof p, &pl));
      }
      lp2p__noise_hs *w = which == 1 ? &res : &ini, *r = which == 1 ? &ini : &res;
      CHECK_OK(lp2p__noise_hs_write(w, (const uint8_t *)"payload!", 8, m, sizeof m, &ml));
      m[bit / 8 % ml] ^= (uint8_t)(1u << (bit % 8));
      int rv = lp2p__noise_hs_read(r, m, ml, p, sizeof p, &pl);
      /* flipping e in msg 2 changes ee and breaks the tag; flipping anything else breaks a tag */
      CHECK(rv == LP2P_ERR_DECRYPT || rv == LP2P_ERR_HANDSHAKE);
      lp2p__noise_hs_wipe(&ini);
      lp2p__noise_hs_wipe(&res);
    }
  }
  lp2p__noise_hs ini, res;
  CHECK_OK(lp2p__noise_hs_init(&ini, 1, c.prologue, c.prologue_len, c.is, c.ie));
  CHECK_OK(lp2p__noise_hs_init(&res, 0, NULL, 0, c.rs, c.re));
  uint8_t m[256], p[256];
  size_t ml, pl;
  CHECK_OK(lp2p__noise_hs_write(&ini, NULL, 0, m, sizeof m, &ml));
  CHECK_OK(lp2p__noise_hs_read(&res, m, ml, p, sizeof p, &pl));
  CHECK_OK(lp2p__noise_hs_write(&res, NULL, 0, m, sizeof m, &ml));
  CHECK_EQ(lp2p__noise_hs_read(&ini, m, ml, p, sizeof p, &pl), LP2P_ERR_DECRYPT);
  caco_free(&c);
}

TEST(handshake_rejects_short_messages_and_low_order_points) {
  lp2p__noise_hs ini, res;
  uint8_t m[256] = {0}, p[256];
  size_t ml, pl;
  CHECK_OK(lp2p__noise_hs_init(&res, 0, NULL, 0, NULL, NULL));
  CHECK_EQ(lp2p__noise_hs_read(&res, m, 31, p, sizeof p, &pl), LP2P_ERR_HANDSHAKE);
  CHECK_OK(lp2p__noise_hs_init(&ini, 1, NULL, 0, NULL, NULL));
  CHECK_OK(lp2p__noise_hs_write(&ini, NULL, 0, m, sizeof m, &ml));
  CHECK_EQ(ml, 32);
  CHECK_EQ(lp2p__noise_hs_write(&ini, NULL, 0, m, sizeof m, &ml), LP2P_ERR_STATE); /* not our turn */
  lp2p__noise_hs_wipe(&ini);
  /* initiator reading a msg2 that is too short / whose e is the zero point */
  CHECK_OK(lp2p__noise_hs_init(&ini, 1, NULL, 0, NULL, NULL));
  CHECK_OK(lp2p__noise_hs_write(&ini, NULL, 0, m, sizeof m, &ml));
  CHECK_EQ(lp2p__noise_hs_read(&ini, m, 95, p, sizeof p, &pl), LP2P_ERR_HANDSHAKE);
  memset(m, 0, sizeof m);
  CHECK_EQ(lp2p__noise_hs_read(&ini, m, 96, p, sizeof p, &pl), LP2P_ERR_HANDSHAKE);
  CHECK_EQ(lp2p__noise_hs_write(&ini, NULL, 0, m, 10, &ml), LP2P_ERR_STATE);
  lp2p__noise_hs_wipe(&ini);
  lp2p__noise_hs_wipe(&res);
  /* output buffer too small */
  CHECK_OK(lp2p__noise_hs_init(&ini, 1, NULL, 0, NULL, NULL));
  CHECK_EQ(lp2p__noise_hs_write(&ini, NULL, 0, m, 31, &ml), LP2P_ERR_BUFSIZE);
  lp2p__noise_hs_wipe(&ini);
}

TEST(random_keys_make_distinct_sessions_that_agree) {
  lp2p__noise_hs ini, res;
  CHECK_OK(lp2p__noise_hs_init(&ini, 1, NULL, 0, NULL, NULL));
  CHECK_OK(lp2p__noise_hs_init(&res, 0, NULL, 0, NULL, NULL));
  CHECK(memcmp(ini.e_pub, res.e_pub, 32) != 0);
  CHECK(memcmp(ini.s_pub, ini.e_pub, 32) != 0);
  uint8_t m[256], p[256];
  size_t ml, pl;
  CHECK_OK(lp2p__noise_hs_write(&ini, NULL, 0, m, sizeof m, &ml));
  CHECK_OK(lp2p__noise_hs_read(&res, m, ml, p, sizeof p, &pl));
  CHECK_OK(lp2p__noise_hs_write(&res, (const uint8_t *)"r", 1, m, sizeof m, &ml));
  CHECK_OK(lp2p__noise_hs_read(&ini, m, ml, p, sizeof p, &pl));
  CHECK_MEM(ini.rs, res.s_pub, 32);
  CHECK_OK(lp2p__noise_hs_write(&ini, (const uint8_t *)"i", 1, m, sizeof m, &ml));
  CHECK_OK(lp2p__noise_hs_read(&res, m, ml, p, sizeof p, &pl));
  CHECK_MEM(res.rs, ini.s_pub, 32);
  CHECK_MEM(ini.sym.h, res.sym.h, 32);
  lp2p__noise_cipher a1, a2, b1, b2;
  CHECK_OK(lp2p__noise_hs_split(&ini, &a1, &a2));
  CHECK_OK(lp2p__noise_hs_split(&res, &b1, &b2));
  CHECK_MEM(a1.k, b1.k, 32);
  CHECK_MEM(a2.k, b2.k, 32);
  CHECK(memcmp(a1.k, a2.k, 32) != 0);
  lp2p__noise_hs_wipe_keys(&ini);
  uint8_t zero[32] = {0};
  CHECK_MEM(ini.e_priv, zero, 32);
  CHECK_MEM(ini.s_priv, zero, 32);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  RUN(hkdf_matches_noise_definition);
  RUN(cipher_nonce_is_little_endian_in_last_8_bytes);
  RUN(cipher_rejects_tamper_and_short_input_without_advancing);
  RUN(cipher_nonce_2_64_minus_1_is_reserved);
  RUN(cipher_without_key_is_identity);
  RUN(symmetric_init_uses_name_as_h);
  RUN(cacophony_xx_vector_both_roles);
  RUN(cacophony_tamper_and_prologue_mismatch);
  RUN(handshake_rejects_short_messages_and_low_order_points);
  RUN(random_keys_make_distinct_sessions_that_agree);
  return test_done();
}
