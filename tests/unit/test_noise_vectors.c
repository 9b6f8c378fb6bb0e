/* test_noise_vectors.c - the libp2p Noise handshake vectors (noise-libp2p-handshake.json):
 * with the vector's fixed X25519 keys and Ed25519 identities the engine reproduces msg1..msg3,
 * the handshake hash, the split keys and the transport frames byte for byte, in both roles,
 * without and with the stream_muxers extension; and again with the static key and signature
 * taken from a per-node lp2p_noise_identity made from the vector's static key. */
#include <sodium.h>

#include "json.h"
#include "lp2p/peerid.h"
#include "noise/noise_int.h"
#include "noise_helpers.h"
#include "test.h"

typedef struct side {
  lp2p_privkey *key;
  lp2p_peer_id id;
  uint8_t *static_priv, *ephemeral_priv;
  lp2p_noise_identity *nid; /* from static_priv, used when use_nid is set */
  int use_nid;
} side;

static int load_side(const json *j, side *s) {
  memset(s, 0, sizeof *s);
  size_t n = 0;
  uint8_t *seed = json_hex(j, "identity_ed25519_seed", &n);
  if (!seed || n != 32) return -1;
  int rv = lp2p_privkey_from_ed25519_seed(&s->key, seed);
  free(seed);
  if (rv) return -1;
  if (lp2p_peer_id_parse(json_str(j, "peer_id"), &s->id)) return -1;
  s->static_priv = json_hex(j, "static_priv", &n);
  s->ephemeral_priv = json_hex(j, "ephemeral_priv", &n);
  if (!s->static_priv || !s->ephemeral_priv) return -1;
  return lp2p__noise_identity_new_ex(&s->nid, s->key, s->static_priv, NULL) ? -1 : 0;
}

static void free_side(side *s) {
  lp2p_noise_identity_free(s->nid);
  lp2p_privkey_free(s->key);
  free(s->static_priv);
  free(s->ephemeral_priv);
}

static const char *const yamux[] = {"/yamux/1.0.0"};

static int new_engine(lp2p_noise **out, int initiator, const side *me, const lp2p_peer_id *expected,
                      int with_muxers) {
  lp2p_noise_config cfg = {sizeof cfg, initiator, me->key, expected, with_muxers ? yamux : NULL,
                           with_muxers ? 1u : 0u, NULL};
  lp2p__noise_test_params tp = {me->static_priv, me->ephemeral_priv, NULL, 0};
  if (me->use_nid) { /* the static key comes from the shared identity; the privkey stays unused */
    cfg.noise_identity = me->nid;
    cfg.identity = NULL;
    tp.static_priv = NULL;
  }
  return lp2p__noise_new_ex(out, &cfg, NULL, &tp);
}

/* Checks that the pending output equals hex and consumes it. */
static void expect_output(lp2p_noise *n, const char *hex) {
  size_t len;
  uint8_t *want = hex_to_bytes(hex, &len);
  REQUIRE(want);
  const uint8_t *p;
  size_t k = lp2p_noise_output(n, &p);
  CHECK_EQ(k, len);
  if (k == len) CHECK_MEM(p, want, len);
  lp2p_noise_output_consumed(n, k);
  free(want);
}

static void feed_hex(lp2p_noise *n, const char *hex) {
  size_t len;
  uint8_t *in = hex_to_bytes(hex, &len);
  REQUIRE(in);
  CHECK_EQ(lp2p_noise_feed(n, in, len), (long long)len);
  free(in);
}

static void check_payload_and_sizes(const json *v, const side *me, const json *mj, int with_muxers) {
  /* our payload encoder gives the vector's bytes (Ed25519 signatures are deterministic) */
  size_t n;
  uint8_t *spub = NULL, *want = json_hex(mj, "handshake_payload", &n);
  size_t sl;
  spub = json_hex(mj, "static_pub", &sl);
  REQUIRE(want && spub && sl == 32);
  uint8_t *pl = NULL;
  size_t pll = 0;
  CHECK_OK(lp2p__noise_payload_build(lp2p_mem_default(), me->key, spub, with_muxers ? yamux : NULL,
                                     with_muxers ? 1 : 0, &pl, &pll));
  CHECK_EQ(pll, n);
  if (pll == n) CHECK_MEM(pl, want, n);
  free(pl);
  free(want);
  free(spub);
  /* sizes from the digest: 200/168 without, 216/184 with the extension */
  size_t m2, m3;
  free(json_hex(v, "msg2_noise", &m2));
  free(json_hex(v, "msg3_noise", &m3));
  CHECK_EQ(m2, with_muxers ? 216 : 200);
  CHECK_EQ(m3, with_muxers ? 184 : 168);
}

static void run_vector(const json *v, int use_nid) {
  int with_muxers = !strcmp(json_str(v, "label"), "stream-muxers-yamux");
  side I, R;
  REQUIRE(load_side(json_get(v, "initiator"), &I) == 0);
  REQUIRE(load_side(json_get(v, "responder"), &R) == 0);
  I.use_nid = R.use_nid = use_nid;
  size_t n;
  uint8_t *hh = json_hex(v, "handshake_hash", &n);
  uint8_t *k_ir = json_hex(v, "k_initiator_to_responder", &n);
  uint8_t *k_ri = json_hex(v, "k_responder_to_initiator", &n);
  REQUIRE(hh && k_ir && k_ri);
  check_payload_and_sizes(v, &I, json_get(v, "initiator"), with_muxers);
  check_payload_and_sizes(v, &R, json_get(v, "responder"), with_muxers);
  const json *tr = json_get(v, "transport");
  REQUIRE(tr && tr->n == 3);

  /* ---- we are the initiator ---- */
  lp2p_noise *ini = NULL;
  CHECK_OK(new_engine(&ini, 1, &I, &R.id, with_muxers));
  REQUIRE(ini);
  expect_output(ini, json_str(v, "msg1_wire"));
  CHECK(!lp2p_noise_handshake_done(ini));
  CHECK(lp2p_noise_remote_peer(ini) == NULL);
  feed_hex(ini, json_str(v, "msg2_wire"));
  CHECK(lp2p_noise_handshake_done(ini));
  expect_output(ini, json_str(v, "msg3_wire"));
  CHECK_MEM(lp2p__noise_handshake_hash(ini), hh, 32);
  uint8_t tx[32], rx[32];
  lp2p__noise_transport_keys(ini, tx, rx);
  CHECK_MEM(tx, k_ir, 32);
  CHECK_MEM(rx, k_ri, 32);
  REQUIRE(lp2p_noise_remote_peer(ini));
  CHECK(lp2p_peer_id_equal(lp2p_noise_remote_peer(ini), &R.id));
  CHECK(lp2p_peer_id_matches(&R.id, lp2p_noise_remote_key(ini)));
  if (with_muxers)
    CHECK_STR(lp2p_noise_muxer(ini), "/yamux/1.0.0");
  else
    CHECK(lp2p_noise_muxer(ini) == NULL);

  /* ---- we are the responder ---- */
  lp2p_noise *res = NULL;
  CHECK_OK(new_engine(&res, 0, &R, NULL, with_muxers));
  REQUIRE(res);
  const uint8_t *p;
  CHECK_EQ(lp2p_noise_output(res, &p), 0);
  feed_hex(res, json_str(v, "msg1_wire"));
  CHECK(!lp2p_noise_handshake_done(res));
  expect_output(res, json_str(v, "msg2_wire"));
  feed_hex(res, json_str(v, "msg3_wire"));
  CHECK(lp2p_noise_handshake_done(res));
  CHECK_EQ(lp2p_noise_output(res, &p), 0);
  CHECK_MEM(lp2p__noise_handshake_hash(res), hh, 32);
  lp2p__noise_transport_keys(res, tx, rx);
  CHECK_MEM(tx, k_ri, 32);
  CHECK_MEM(rx, k_ir, 32);
  REQUIRE(lp2p_noise_remote_peer(res));
  CHECK(lp2p_peer_id_equal(lp2p_noise_remote_peer(res), &I.id));
  if (with_muxers)
    CHECK_STR(lp2p_noise_muxer(res), "/yamux/1.0.0");
  else
    CHECK(lp2p_noise_muxer(res) == NULL);

  /* ---- transport frames, both directions ---- */
  for (size_t i = 0; i < tr->n; i++) {
    const json *f = json_at(tr, i);
    int from_ini = !strcmp(json_str(f, "direction"), "initiator->responder");
    lp2p_noise *w = from_ini ? ini : res, *r = from_ini ? res : ini;
    size_t pl, wl;
    uint8_t *pt = json_hex(f, "plaintext", &pl);
    uint8_t *wire = json_hex(f, "wire", &wl);
    REQUIRE(pt && wire);
    CHECK_OK(lp2p_noise_write(w, pt, pl));
    expect_output(w, json_str(f, "wire"));
    CHECK_EQ(lp2p_noise_feed(r, wire, wl), (long long)wl);
    const uint8_t *got;
    CHECK_EQ(lp2p_noise_plaintext(r, &got), (long long)pl);
    CHECK_MEM(got, pt, pl);
    lp2p_noise_plaintext_consumed(r, pl);
    free(pt);
    free(wire);
  }
  lp2p_noise_free(ini);
  lp2p_noise_free(res);
  free(hh);
  free(k_ir);
  free(k_ri);
  free_side(&I);
  free_side(&R);
}

TEST(libp2p_vector_no_extensions) {
  json *doc = json_load_vector("noise-libp2p-handshake.json");
  REQUIRE(doc);
  const json *v = json_at(json_get(doc, "vectors"), 0);
  REQUIRE(v && !strcmp(json_str(v, "label"), "no-extensions"));
  run_vector(v, 0);
  json_free(doc);
}

TEST(libp2p_vector_no_extensions_shared_identity) {
  json *doc = json_load_vector("noise-libp2p-handshake.json");
  REQUIRE(doc);
  const json *v = json_at(json_get(doc, "vectors"), 0);
  REQUIRE(v && !strcmp(json_str(v, "label"), "no-extensions"));
  run_vector(v, 1);
  json_free(doc);
}

TEST(libp2p_vector_stream_muxers) {
  json *doc = json_load_vector("noise-libp2p-handshake.json");
  REQUIRE(doc);
  const json *v = json_at(json_get(doc, "vectors"), 1);
  REQUIRE(v && !strcmp(json_str(v, "label"), "stream-muxers-yamux"));
  run_vector(v, 0);
  json_free(doc);
}

TEST(libp2p_vector_stream_muxers_shared_identity) {
  json *doc = json_load_vector("noise-libp2p-handshake.json");
  REQUIRE(doc);
  const json *v = json_at(json_get(doc, "vectors"), 1);
  REQUIRE(v && !strcmp(json_str(v, "label"), "stream-muxers-yamux"));
  run_vector(v, 1);
  json_free(doc);
}

/* The vector's msg2 carries stream_muxers; an initiator configured without muxers still
 * completes (h covers the ciphertext, not our config) and falls back to multistream. */
TEST(vector_msg2_with_muxers_to_initiator_without) {
  json *doc = json_load_vector("noise-libp2p-handshake.json");
  REQUIRE(doc);
  const json *v = json_at(json_get(doc, "vectors"), 1);
  side I, R;
  REQUIRE(load_side(json_get(v, "initiator"), &I) == 0);
  REQUIRE(load_side(json_get(v, "responder"), &R) == 0);
  lp2p_noise *ini = NULL;
  CHECK_OK(new_engine(&ini, 1, &I, &R.id, 0));
  REQUIRE(ini);
  expect_output(ini, json_str(v, "msg1_wire"));
  feed_hex(ini, json_str(v, "msg2_wire"));
  CHECK(lp2p_noise_handshake_done(ini));
  CHECK(lp2p_noise_muxer(ini) == NULL);
  /* our msg3 is the no-extensions vector's msg3 except for h: same length as that one */
  const uint8_t *p;
  CHECK_EQ(lp2p_noise_output(ini, &p), 2 + 168);
  lp2p_noise_free(ini);
  free_side(&I);
  free_side(&R);
  json_free(doc);
}

/* The initiator expecting another peer id stops at msg2 with PEER_ID_MISMATCH and never sends
 * msg3; the responder expecting another peer stops at msg3. */
TEST(vector_expected_peer_mismatch_both_roles) {
  json *doc = json_load_vector("noise-libp2p-handshake.json");
  REQUIRE(doc);
  const json *v = json_at(json_get(doc, "vectors"), 0);
  side I, R;
  REQUIRE(load_side(json_get(v, "initiator"), &I) == 0);
  REQUIRE(load_side(json_get(v, "responder"), &R) == 0);
  lp2p_noise *ini = NULL, *res = NULL;
  CHECK_OK(new_engine(&ini, 1, &I, &I.id, 0)); /* expects the wrong peer */
  REQUIRE(ini);
  expect_output(ini, json_str(v, "msg1_wire"));
  size_t len;
  uint8_t *m2 = hex_to_bytes(json_str(v, "msg2_wire"), &len);
  CHECK_EQ(lp2p_noise_feed(ini, m2, len), LP2P_ERR_PEER_ID_MISMATCH);
  CHECK_EQ(lp2p_noise_feed(ini, m2, len), LP2P_ERR_PEER_ID_MISMATCH);
  CHECK_EQ(lp2p_noise_error(ini), LP2P_ERR_PEER_ID_MISMATCH);
  const uint8_t *p;
  CHECK_EQ(lp2p_noise_output(ini, &p), 0);
  CHECK(lp2p_noise_remote_peer(ini) == NULL);
  free(m2);

  CHECK_OK(new_engine(&res, 0, &R, &R.id, 0));
  REQUIRE(res);
  feed_hex(res, json_str(v, "msg1_wire"));
  expect_output(res, json_str(v, "msg2_wire"));
  uint8_t *m3 = hex_to_bytes(json_str(v, "msg3_wire"), &len);
  CHECK_EQ(lp2p_noise_feed(res, m3, len), LP2P_ERR_PEER_ID_MISMATCH);
  CHECK(!lp2p_noise_handshake_done(res));
  CHECK_EQ(lp2p_noise_write(res, (const uint8_t *)"x", 1), LP2P_ERR_PEER_ID_MISMATCH);
  free(m3);
  lp2p_noise_free(ini);
  lp2p_noise_free(res);
  free_side(&I);
  free_side(&R);
  json_free(doc);
}

/* Every single-bit flip of msg2 / msg3 (length prefix excluded) is rejected. */
TEST(vector_tampered_messages_rejected) {
  json *doc = json_load_vector("noise-libp2p-handshake.json");
  REQUIRE(doc);
  const json *v = json_at(json_get(doc, "vectors"), 0);
  side I, R;
  REQUIRE(load_side(json_get(v, "initiator"), &I) == 0);
  REQUIRE(load_side(json_get(v, "responder"), &R) == 0);
  size_t l1, l2, l3;
  uint8_t *m1 = hex_to_bytes(json_str(v, "msg1_wire"), &l1);
  uint8_t *m2 = hex_to_bytes(json_str(v, "msg2_wire"), &l2);
  uint8_t *m3 = hex_to_bytes(json_str(v, "msg3_wire"), &l3);
  REQUIRE(m1 && m2 && m3);
  int bad = 0;
  for (size_t bit = 16; bit < l2 * 8; bit += 3) {
    lp2p_noise *ini = NULL;
    if (new_engine(&ini, 1, &I, NULL, 0)) abort();
    m2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    int64_t rv = lp2p_noise_feed(ini, m2, l2);
    m2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    if (!(rv == LP2P_ERR_DECRYPT || rv == LP2P_ERR_HANDSHAKE)) bad++;
    lp2p_noise_free(ini);
  }
  CHECK_EQ(bad, 0);
  for (size_t bit = 16; bit < l3 * 8; bit += 3) {
    lp2p_noise *res = NULL;
    if (new_engine(&res, 0, &R, NULL, 0)) abort();
    CHECK_EQ(lp2p_noise_feed(res, m1, l1), (long long)l1);
    m3[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    int64_t rv = lp2p_noise_feed(res, m3, l3);
    m3[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    if (rv != LP2P_ERR_DECRYPT) bad++;
    lp2p_noise_free(res);
  }
  CHECK_EQ(bad, 0);
  free(m1);
  free(m2);
  free(m3);
  free_side(&I);
  free_side(&R);
  json_free(doc);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  RUN(libp2p_vector_no_extensions);
  RUN(libp2p_vector_stream_muxers);
  RUN(libp2p_vector_no_extensions_shared_identity);
  RUN(libp2p_vector_stream_muxers_shared_identity);
  RUN(vector_msg2_with_muxers_to_initiator_without);
  RUN(vector_expected_peer_mismatch_both_roles);
  RUN(vector_tampered_messages_rejected);
  return test_done();
}
