/* tests/unit/test_pairing_cpace.c - CPace (draft-irtf-cfrg-cpace, ristretto255 + SHA-512)
 * against the draft's own test vectors, byte for byte (tests/vectors/cpace-ristretto255.json). */
#include <sodium.h>

#include "json.h"
#include "protocols/pairing/engine/pair_int.h"
#include "test.h"

static json *V;

static uint8_t *hx(const char *key, size_t *len) {
  uint8_t *b = json_hex(V, key, len);
  if (!b) fprintf(stderr, "missing vector %s\n", key);
  return b;
}

TEST(lv_cat_and_generator_string) {
  const json *lv = json_get(V, "lv_cat");
  REQUIRE(lv);
  const json *parts = json_get(lv, "parts");
  const uint8_t *p[4];
  size_t l[4];
  uint8_t *bufs[4];
  for (size_t i = 0; i < 4; i++) {
    bufs[i] = hex_to_bytes(json_at(parts, i)->str, &l[i]);
    p[i] = bufs[i];
  }
  uint8_t out[64];
  size_t wl;
  uint8_t *want = json_hex(lv, "result", &wl);
  int n = lp2p__cpace_lv_cat(out, sizeof out, 4, p, l);
  CHECK_EQ(n, (long long)wl);
  CHECK_MEM(out, want, wl);
  CHECK_EQ(lp2p__cpace_lv_cat(out, wl - 1, 4, p, l), LP2P_ERR_BUFSIZE);
  for (int i = 0; i < 4; i++) free(bufs[i]);
  free(want);
  /* a 128-byte part gets a two-byte LEB128 length */
  uint8_t big[128] = {0}, o2[131];
  const uint8_t *bp = big;
  size_t bl = 128;
  CHECK_EQ(lp2p__cpace_lv_cat(o2, sizeof o2, 1, &bp, &bl), 130);
  CHECK(o2[0] == 0x80 && o2[1] == 0x01);

  size_t prs_l, ci_l, sid_l, gs_l;
  uint8_t *prs = hx("PRS", &prs_l), *ci = hx("CI", &ci_l), *sid = hx("sid", &sid_l);
  uint8_t *gs = hx("generator_string", &gs_l);
  REQUIRE(prs && ci && sid && gs);
  uint8_t buf[512];
  n = lp2p__cpace_generator_string(buf, sizeof buf, prs, prs_l, ci, ci_l, sid, sid_l);
  CHECK_EQ(n, (long long)gs_l);
  CHECK_MEM(buf, gs, gs_l);
  uint8_t h[64];
  size_t hl;
  uint8_t *hr = hx("hash_result", &hl);
  crypto_hash_sha512(h, buf, (unsigned long long)n);
  CHECK_MEM(h, hr, 64);
  free(prs), free(ci), free(sid), free(gs), free(hr);
}

TEST(draft_vectors_byte_for_byte) {
  size_t l;
  uint8_t *prs, *ci, *sid, *g, *ya, *yb, *Ya, *Yb, *K, *ada, *adb, *isk, *tr, *sidout;
  size_t prs_l, ci_l, sid_l, ada_l, adb_l, tr_l;
  prs = hx("PRS", &prs_l), ci = hx("CI", &ci_l), sid = hx("sid", &sid_l);
  g = hx("g", &l), ya = hx("ya", &l), yb = hx("yb", &l), Ya = hx("Ya", &l), Yb = hx("Yb", &l);
  K = hx("K", &l), ada = hx("ADa", &ada_l), adb = hx("ADb", &adb_l), isk = hx("ISK_IR", &l);
  tr = hx("transcript_ir", &tr_l), sidout = hx("sid_output_ir", &l);
  REQUIRE(prs && ci && sid && g && ya && yb && Ya && Yb && K && ada && adb && isk && tr && sidout);

  uint8_t gg[32], YA[32], YB[32], Ka[32], Kb[32], iska[64], iskb[64];
  CHECK_OK(lp2p__cpace_generator(gg, prs, prs_l, ci, ci_l, sid, sid_l));
  CHECK_MEM(gg, g, 32);
  CHECK_OK(lp2p__cpace_share(YA, ya, gg));
  CHECK_MEM(YA, Ya, 32);
  CHECK_OK(lp2p__cpace_share(YB, yb, gg));
  CHECK_MEM(YB, Yb, 32);
  CHECK_OK(lp2p__cpace_vfy(Ka, ya, Yb));
  CHECK_OK(lp2p__cpace_vfy(Kb, yb, Ya));
  CHECK_MEM(Ka, K, 32);
  CHECK_MEM(Kb, K, 32);
  CHECK_OK(lp2p__cpace_isk_ir(iska, sid, sid_l, Ka, Ya, ada, ada_l, Yb, adb, adb_l));
  CHECK_OK(lp2p__cpace_isk_ir(iskb, sid, sid_l, Kb, Ya, ada, ada_l, Yb, adb, adb_l));
  CHECK_MEM(iska, isk, 64);
  CHECK_MEM(iskb, isk, 64);
  /* the transcript and the optional session-id output, built by hand from lv_cat */
  const uint8_t *p[4] = {Ya, ada, Yb, adb};
  size_t pl[4] = {32, ada_l, 32, adb_l};
  uint8_t t[128];
  int n = lp2p__cpace_lv_cat(t, sizeof t, 4, p, pl);
  CHECK_EQ(n, (long long)tr_l);
  CHECK_MEM(t, tr, tr_l);
  crypto_hash_sha512_state st;
  uint8_t so[64];
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, (const uint8_t *)"CPaceSidOutput", 14);
  crypto_hash_sha512_update(&st, t, (unsigned long long)n);
  crypto_hash_sha512_final(&st, so);
  CHECK_MEM(so, sidout, 64);
  /* a different PRS, CI or sid gives another generator */
  uint8_t g2[32];
  prs[0] ^= 1;
  CHECK_OK(lp2p__cpace_generator(g2, prs, prs_l, ci, ci_l, sid, sid_l));
  CHECK(memcmp(g2, g, 32) != 0);
  prs[0] ^= 1, ci[ci_l - 1] ^= 1;
  CHECK_OK(lp2p__cpace_generator(g2, prs, prs_l, ci, ci_l, sid, sid_l));
  CHECK(memcmp(g2, g, 32) != 0);
  ci[ci_l - 1] ^= 1, sid[0] ^= 1;
  CHECK_OK(lp2p__cpace_generator(g2, prs, prs_l, ci, ci_l, sid, sid_l));
  CHECK(memcmp(g2, g, 32) != 0);
  free(prs), free(ci), free(sid), free(g), free(ya), free(yb), free(Ya), free(Yb), free(K);
  free(ada), free(adb), free(isk), free(tr), free(sidout);
}

TEST(scalar_mult_vfy_valid_and_invalid) {
  const json *ok = json_get(V, "scalar_mult_valid");
  REQUIRE(ok);
  size_t l;
  uint8_t *s = json_hex(ok, "s", &l), *X = json_hex(ok, "X", &l), *r = json_hex(ok, "result", &l);
  uint8_t K[32];
  CHECK_OK(lp2p__cpace_vfy(K, s, X));
  CHECK_MEM(K, r, 32);
  const json *bad = json_get(V, "scalar_mult_vfy_invalid");
  REQUIRE(bad && bad->n == 2);
  for (size_t i = 0; i < bad->n; i++) {
    uint8_t *Y = hex_to_bytes(json_at(bad, i)->str, &l);
    memset(K, 0xaa, sizeof K);
    CHECK_EQ(lp2p__cpace_vfy(K, s, Y), LP2P_ERR_DECRYPT);
    CHECK(sodium_is_zero(K, 32)); /* G.I */
    free(Y);
  }
  free(s), free(X), free(r);
}

TEST(sample_scalar_clears_top_bits) {
  for (int i = 0; i < 200; i++) {
    uint8_t y[32];
    lp2p__cpace_sample_scalar(y, NULL, NULL);
    CHECK((y[31] & 0xf0) == 0);
  }
}

int main(void) {
  if (sodium_init() < 0) return 1;
  V = json_load_vector("cpace-ristretto255.json");
  if (!V) return 1;
  RUN(lv_cat_and_generator_string);
  RUN(draft_vectors_byte_for_byte);
  RUN(scalar_mult_vfy_valid_and_invalid);
  RUN(sample_scalar_clears_top_bits);
  json_free(V);
  return test_done();
}
