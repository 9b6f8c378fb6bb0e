/* tests/unit/test_record.c - lp2p/record.h: signed envelopes (RFC 0002) and
 * peer records (RFC 0003) against tests/vectors/identify.json (a js-libp2p
 * record, byte for byte), tampering, other domains and payload types, and
 * the unsigned record codec. */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "lp2p/record.h"
#include "test.h"

typedef struct vec {
  json *root;
  lp2p_privkey *key;
  lp2p_peer_id id;
  lp2p_multiaddr *addrs[2];
} vec;

static int vec_load(vec *v) {
  memset(v, 0, sizeof *v);
  if (!(v->root = json_load_vector("identify.json"))) return -1;
  json *idn = json_get(v->root, "identity"), *full = json_get(v->root, "identify_full");
  size_t n;
  uint8_t *seed = json_hex(idn, "ed25519_seed", &n);
  int rv = seed && n == 32 ? lp2p_privkey_from_ed25519_seed(&v->key, seed) : -1;
  free(seed);
  if (rv < 0) return -1;
  lp2p_peer_id_from_pubkey(lp2p_privkey_public(v->key), &v->id);
  json *la = json_get(full, "listen_addrs");
  for (size_t i = 0; i < 2; i++)
    if (lp2p_multiaddr_parse(&v->addrs[i], json_at(la, i)->str, NULL, 0) < 0) return -1;
  return 0;
}

static void vec_free(vec *v) {
  for (int i = 0; i < 2; i++) lp2p_multiaddr_free(v->addrs[i]);
  lp2p_privkey_free(v->key);
  json_free(v->root);
}

TEST(peer_record_vector) {
  vec v;
  REQUIRE(vec_load(&v) == 0);
  json *pr = json_get(v.root, "peer_record");
  char text[LP2P_PEER_ID_MAX_TEXT];
  lp2p_peer_id_to_string(&v.id, text, sizeof text);
  CHECK_STR(text, json_str(json_get(v.root, "identity"), "peer_id"));
  size_t elen;
  uint8_t *want = json_hex(pr, "envelope_pb", &elen);
  uint64_t seq = (uint64_t)json_get(pr, "seq")->num;
  CHECK_EQ(seq, 1700000000000ull);
  uint8_t *env = NULL;
  size_t len = 0;
  CHECK_OK(lp2p_peer_record_seal(v.key, seq, (const lp2p_multiaddr *const *)v.addrs, 2, &env, &len));
  CHECK_EQ(len, elen);
  if (env && len == elen) CHECK_MEM(env, want, elen);

  /* open: right peer, any peer, wrong peer */
  uint64_t got_seq = 0;
  lp2p_multiaddr **addrs = NULL;
  size_t n = 0;
  lp2p_peer_id signer;
  CHECK_OK(lp2p_peer_record_open(want, elen, &v.id, &signer, &got_seq, &addrs, &n, 64));
  CHECK_EQ(got_seq, seq);
  CHECK(lp2p_peer_id_equal(&signer, &v.id));
  CHECK_EQ(n, 2);
  for (size_t i = 0; i < n; i++) {
    CHECK(lp2p_multiaddr_equal(addrs[i], v.addrs[i]));
    lp2p_multiaddr_free(addrs[i]);
  }
  free(addrs);
  CHECK_OK(lp2p_peer_record_open(want, elen, NULL, NULL, NULL, NULL, NULL, 0));
  lp2p_peer_id other = v.id;
  other.bytes[other.len - 1] ^= 1;
  CHECK_EQ(lp2p_peer_record_open(want, elen, &other, NULL, NULL, NULL, NULL, 0), LP2P_ERR_PEER_ID_MISMATCH);
  /* tampering: signature, payload, payload type */
  uint8_t *bad = malloc(elen);
  memcpy(bad, want, elen);
  bad[elen - 1] ^= 0x40;
  CHECK_EQ(lp2p_peer_record_open(bad, elen, &v.id, NULL, NULL, NULL, NULL, 0), LP2P_ERR_SIGNATURE);
  memcpy(bad, want, elen);
  bad[elen - 70] ^= 0x01; /* inside the payload's address bytes */
  CHECK_EQ(lp2p_peer_record_open(bad, elen, &v.id, NULL, NULL, NULL, NULL, 0), LP2P_ERR_SIGNATURE);
  memcpy(bad, want, elen);
  bad[0x26 + 2] = 0x02; /* payload type 0x0301 -> 0x0302 (field 2 starts at 0x26) */
  CHECK_EQ(bad[0x26], 0x12);
  CHECK_EQ(lp2p_peer_record_open(bad, elen, &v.id, NULL, NULL, NULL, NULL, 0), LP2P_ERR_PROTO);
  CHECK_EQ(lp2p_peer_record_open(want, elen / 2, &v.id, NULL, NULL, NULL, NULL, 0), LP2P_ERR_PROTO);
  free(bad);
  free(env);
  free(want);
  vec_free(&v);
}

/* The generic envelope: another domain and payload type; a signature for one domain does not open
 * for another; a peer record envelope does not open as another type. */
TEST(envelope_domains_and_types) {
  vec v;
  REQUIRE(vec_load(&v) == 0);
  static const uint8_t type[] = {0x03, 0x02};
  uint8_t *env = NULL, *pay = NULL;
  size_t len = 0, plen = 0;
  CHECK_OK(lp2p_envelope_seal(v.key, "lp2p-test", type, 2, (const uint8_t *)"payload", 7, &env, &len));
  lp2p_peer_id signer;
  CHECK_OK(lp2p_envelope_open(env, len, "lp2p-test", type, 2, &signer, &pay, &plen));
  CHECK(lp2p_peer_id_equal(&signer, &v.id));
  CHECK_EQ(plen, 7);
  if (pay) CHECK_MEM(pay, "payload", 7);
  free(pay);
  CHECK_EQ(lp2p_envelope_open(env, len, "lp2p-tesT", type, 2, NULL, NULL, NULL), LP2P_ERR_SIGNATURE);
  CHECK_EQ(lp2p_envelope_open(env, len, "lp2p-test", LP2P_PEER_RECORD_TYPE, 2, NULL, NULL, NULL), LP2P_ERR_PROTO);
  CHECK_EQ(lp2p_peer_record_open(env, len, NULL, NULL, NULL, NULL, NULL, 0), LP2P_ERR_PROTO);
  free(env);
  /* an empty payload */
  CHECK_OK(lp2p_envelope_seal(v.key, "d", type, 2, NULL, 0, &env, &len));
  pay = NULL;
  CHECK_OK(lp2p_envelope_open(env, len, "d", type, 2, NULL, &pay, &plen));
  CHECK(pay != NULL);
  CHECK_EQ(plen, 0);
  free(pay);
  free(env);
  /* a peer record opened as a plain envelope: its payload decodes */
  CHECK_OK(lp2p_peer_record_seal(v.key, 7, (const lp2p_multiaddr *const *)v.addrs, 2, &env, &len));
  CHECK_OK(lp2p_envelope_open(env, len, LP2P_PEER_RECORD_DOMAIN, LP2P_PEER_RECORD_TYPE, LP2P_PEER_RECORD_TYPE_LEN,
                              NULL, &pay, &plen));
  lp2p_peer_id rid;
  uint64_t seq = 0;
  lp2p_multiaddr **addrs = NULL;
  size_t n = 0;
  CHECK_OK(lp2p_peer_record_decode(pay, plen, &rid, &seq, &addrs, &n, 1));
  CHECK(lp2p_peer_id_equal(&rid, &v.id));
  CHECK_EQ(seq, 7);
  CHECK_EQ(n, 1); /* max 1 */
  if (n) CHECK(lp2p_multiaddr_equal(addrs[0], v.addrs[0]));
  lp2p_peer_record_addrs_free(addrs, n);
  free(pay);
  /* too large, bad arguments */
  static uint8_t big[LP2P_ENVELOPE_MAX + 1];
  CHECK_EQ(lp2p_peer_record_open(big, sizeof big, NULL, NULL, NULL, NULL, NULL, 0), LP2P_ERR_TOO_LARGE);
  CHECK_EQ(lp2p_envelope_seal(v.key, "", type, 2, NULL, 0, &pay, &plen), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_envelope_seal(v.key, "d", type, 0, NULL, 0, &pay, &plen), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_envelope_open(env, len, NULL, type, 2, NULL, NULL, NULL), LP2P_ERR_INVAL);
  free(env);
  vec_free(&v);
}

/* The unsigned record: encode/decode round trip, a record naming another peer does not open signed. */
TEST(peer_record_codec) {
  vec v;
  REQUIRE(vec_load(&v) == 0);
  uint8_t *p = NULL;
  size_t len = 0;
  CHECK_OK(lp2p_peer_record_encode(&v.id, 42, (const lp2p_multiaddr *const *)v.addrs, 2, &p, &len));
  lp2p_peer_id id;
  uint64_t seq;
  lp2p_multiaddr **addrs;
  size_t n;
  CHECK_OK(lp2p_peer_record_decode(p, len, &id, &seq, &addrs, &n, 8));
  CHECK(lp2p_peer_id_equal(&id, &v.id));
  CHECK_EQ(seq, 42);
  CHECK_EQ(n, 2);
  for (size_t i = 0; i < n && i < 2; i++) CHECK(lp2p_multiaddr_equal(addrs[i], v.addrs[i]));
  lp2p_peer_record_addrs_free(addrs, n);
  CHECK_EQ(lp2p_peer_record_decode(p, len / 2, NULL, NULL, NULL, NULL, 0), LP2P_ERR_PROTO);
  free(p);
  /* signed by v.key but naming another peer */
  lp2p_privkey *k2;
  uint8_t seed[32] = {9};
  REQUIRE(lp2p_privkey_from_ed25519_seed(&k2, seed) == 0);
  lp2p_peer_id id2;
  lp2p_peer_id_from_pubkey(lp2p_privkey_public(k2), &id2);
  CHECK_OK(lp2p_peer_record_encode(&id2, 1, NULL, 0, &p, &len));
  uint8_t *env;
  size_t elen;
  CHECK_OK(lp2p_envelope_seal(v.key, LP2P_PEER_RECORD_DOMAIN, LP2P_PEER_RECORD_TYPE, 2, p, len, &env, &elen));
  CHECK_EQ(lp2p_peer_record_open(env, elen, NULL, NULL, NULL, NULL, NULL, 0), LP2P_ERR_PEER_ID_MISMATCH);
  free(env);
  free(p);
  lp2p_privkey_free(k2);
  CHECK_EQ(lp2p_peer_record_encode(NULL, 1, NULL, 0, &p, &len), LP2P_ERR_INVAL);
  lp2p_peer_record_addrs_free(NULL, 0);
  vec_free(&v);
}

int main(void) {
  RUN(peer_record_vector);
  RUN(envelope_domains_and_types);
  RUN(peer_record_codec);
  return test_done();
}
