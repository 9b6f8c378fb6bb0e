/* test_peerid.c - peer ids: derivation from keys, text forms, parsing,
 * comparison and inline key extraction (peer-ids.json, key-signatures.json). */
#include <stdlib.h>

#include "json.h"
#include "lp2p/encoding.h"
#include "lp2p/peerid.h"
#include "test.h"

static lp2p_pubkey *pub_from_hex(const json *o, const char *field) {
  size_t n;
  uint8_t *pb = json_hex(o, field, &n);
  lp2p_pubkey *k = NULL;
  if (pb && lp2p_pubkey_from_protobuf(&k, pb, n)) k = NULL;
  free(pb);
  return k;
}

/* Derives the id of a public key and checks both text forms and parsing. */
static void check_id(const lp2p_pubkey *k, const char *b58, const char *cid, const uint8_t *mh,
                     size_t mhlen) {
  lp2p_peer_id id, p1, p2;
  CHECK_OK(lp2p_peer_id_from_pubkey(k, &id));
  if (mh) {
    CHECK_EQ(id.len, mhlen);
    CHECK_MEM(id.bytes, mh, mhlen);
  }
  char buf[LP2P_PEER_ID_MAX_TEXT];
  int n = lp2p_peer_id_to_string(&id, buf, sizeof buf);
  CHECK_EQ(n, (int)strlen(b58));
  CHECK_STR(buf, b58);
  n = lp2p_peer_id_to_cid_string(&id, buf, sizeof buf);
  CHECK_EQ(n, (int)strlen(cid));
  CHECK_STR(buf, cid);
  CHECK_OK(lp2p_peer_id_parse(b58, &p1));
  CHECK_OK(lp2p_peer_id_parse(cid, &p2));
  CHECK(lp2p_peer_id_equal(&id, &p1));
  CHECK(lp2p_peer_id_equal(&id, &p2));
  CHECK_EQ(lp2p_peer_id_cmp(&id, &p2), 0);
  CHECK_EQ(lp2p_peer_id_hash(&id), lp2p_peer_id_hash(&p1));
  CHECK(lp2p_peer_id_matches(&p1, k));
  /* inline keys come back out of the id */
  lp2p_pubkey *ex = NULL;
  int rv = lp2p_peer_id_extract_pubkey(&p2, &ex);
  if (id.bytes[0] == 0x00) {
    CHECK_EQ(rv, 0);
    CHECK(ex && lp2p_pubkey_equal(ex, k));
  } else {
    CHECK_EQ(rv, LP2P_ERR_NOT_FOUND);
    CHECK(ex == NULL);
  }
  lp2p_pubkey_free(ex);
}

TEST(spec_vectors) {
  json *v = json_load_vector("peer-ids.json");
  REQUIRE(v);
  json *arr = json_get(v, "vectors");
  REQUIRE(arr && arr->n == 4);
  for (size_t i = 0; i < arr->n; i++) {
    json *o = json_at(arr, i);
    lp2p_pubkey *k = pub_from_hex(o, "public_key_pb");
    CHECK(k != NULL);
    if (!k) continue;
    size_t mhlen;
    uint8_t *mh = json_hex(o, "peer_id_multihash", &mhlen);
    check_id(k, json_str(o, "peer_id_base58"), json_str(o, "peer_id_cidv1_base32"), mh, mhlen);
    /* from the multihash bytes directly */
    lp2p_peer_id id;
    CHECK_OK(lp2p_peer_id_from_bytes(mh, mhlen, &id));
    CHECK(lp2p_peer_id_matches(&id, k));
    free(mh);
    lp2p_pubkey_free(k);
  }
  json_free(v);
}

TEST(signature_vector_ids) {
  json *v = json_load_vector("key-signatures.json");
  REQUIRE(v);
  json *keys = json_get(v, "keys");
  REQUIRE(keys && keys->n == 5);
  for (size_t i = 0; i < keys->n; i++) {
    json *o = keys->items[i];
    lp2p_pubkey *k = pub_from_hex(o, "public_key_pb");
    CHECK(k != NULL);
    if (!k) continue;
    check_id(k, json_str(o, "peer_id_b58"), json_str(o, "peer_id_cidv1"), NULL, 0);
    lp2p_pubkey_free(k);
  }
  json_free(v);
}

TEST(spec_text_examples) {
  json *v = json_load_vector("peer-ids.json");
  REQUIRE(v);
  json *ex = json_get(v, "extra_examples");
  REQUIRE(ex && ex->n == 3);
  for (size_t i = 0; i < ex->n; i++) {
    json *o = json_at(ex, i);
    lp2p_peer_id a, b;
    const char *b58 = json_str(o, "base58"), *cid = json_str(o, "cidv1");
    CHECK_OK(lp2p_peer_id_parse(b58, &a));
    char buf[LP2P_PEER_ID_MAX_TEXT];
    CHECK_EQ(lp2p_peer_id_to_string(&a, buf, sizeof buf), (int)strlen(b58));
    CHECK_STR(buf, b58);
    if (cid) {
      CHECK_OK(lp2p_peer_id_parse(cid, &b));
      CHECK(lp2p_peer_id_equal(&a, &b));
      CHECK_EQ(lp2p_peer_id_to_cid_string(&a, buf, sizeof buf), (int)strlen(cid));
      CHECK_STR(buf, cid);
    }
    size_t mhlen;
    uint8_t *mh = json_hex(o, "multihash", &mhlen);
    if (mh) {
      CHECK_EQ(a.len, mhlen);
      CHECK_MEM(a.bytes, mh, mhlen);
      free(mh);
    }
  }
  json_free(v);
}

TEST(parse_rejects) {
  lp2p_peer_id id;
  const char *bad[] = {
      "",
      "1",
      "Qm",
      "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3p",        /* truncated */
      "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pqq",      /* extra char */
      "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3p0",       /* '0' not base58 */
      "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5",              /* sha256 digest too short */
      "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5NN",            /* too long */
      "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqx", /* truncated CID */
      /* the same multihash with codec dag-pb (0x70) instead of libp2p-key */
      "bafybeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe",
      "xafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe", /* unknown multibase */
      "hello world",
      "/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
      " QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
      "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N ",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rv = lp2p_peer_id_parse(bad[i], &id);
    if (rv != LP2P_ERR_PEER_ID) fprintf(stderr, "  accepted or wrong error (%d): \"%s\"\n", rv, bad[i]);
    CHECK_EQ(rv, LP2P_ERR_PEER_ID);
  }
  /* very long input is refused before decoding */
  static char longtext[5000];
  memset(longtext, '1', sizeof longtext - 1);
  CHECK_EQ(lp2p_peer_id_parse(longtext, &id), LP2P_ERR_PEER_ID);
  memset(longtext, 'b', sizeof longtext - 1);
  CHECK_EQ(lp2p_peer_id_parse(longtext, &id), LP2P_ERR_PEER_ID);
  CHECK_EQ(lp2p_peer_id_parse(NULL, &id), LP2P_ERR_INVAL);
  /* parse_n: explicit length, embedded NUL */
  const char *s = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5Nxyz";
  CHECK_OK(lp2p_peer_id_parse_n(s, 46, &id));
  CHECK_EQ(lp2p_peer_id_parse_n(s, 47, &id), LP2P_ERR_PEER_ID);
  CHECK_EQ(lp2p_peer_id_parse_n("Qm\0x", 4, &id), LP2P_ERR_PEER_ID);
  /* a base58btc-multibase CID ('z' prefix) is a valid multibase CID */
  uint8_t cid[64];
  char z[LP2P_PEER_ID_MAX_TEXT];
  size_t zn;
  lp2p_peer_id ref;
  CHECK_OK(lp2p_peer_id_parse("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", &ref));
  int cn = lp2p_cid_encode(LP2P_CODEC_LIBP2P_KEY, ref.bytes, ref.len, cid, sizeof cid);
  REQUIRE(cn > 0);
  CHECK_OK(lp2p_multibase_encode('z', cid, (size_t)cn, z, sizeof z, &zn));
  CHECK_OK(lp2p_peer_id_parse(z, &id));
  CHECK(lp2p_peer_id_equal(&id, &ref));
}

TEST(from_bytes_validation) {
  lp2p_peer_id id;
  uint8_t mh[64] = {0};
  /* identity: 1..42 bytes of payload */
  mh[0] = 0x00;
  mh[1] = 42;
  CHECK_OK(lp2p_peer_id_from_bytes(mh, 44, &id));
  CHECK_EQ(id.len, 44);
  mh[1] = 43;
  CHECK_EQ(lp2p_peer_id_from_bytes(mh, 45, &id), LP2P_ERR_PEER_ID);
  mh[1] = 0;
  CHECK_EQ(lp2p_peer_id_from_bytes(mh, 2, &id), LP2P_ERR_PEER_ID);
  /* length byte disagrees with the buffer */
  mh[1] = 10;
  CHECK_EQ(lp2p_peer_id_from_bytes(mh, 11, &id), LP2P_ERR_PEER_ID);
  CHECK_EQ(lp2p_peer_id_from_bytes(mh, 13, &id), LP2P_ERR_PEER_ID);
  /* sha2-256 needs 32 bytes */
  mh[0] = 0x12;
  mh[1] = 32;
  CHECK_OK(lp2p_peer_id_from_bytes(mh, 34, &id));
  mh[1] = 20;
  CHECK_EQ(lp2p_peer_id_from_bytes(mh, 22, &id), LP2P_ERR_PEER_ID);
  /* other hash functions (sha2-512 = 0x13) */
  mh[0] = 0x13;
  mh[1] = 32;
  CHECK_EQ(lp2p_peer_id_from_bytes(mh, 34, &id), LP2P_ERR_PEER_ID);
  CHECK_EQ(lp2p_peer_id_from_bytes(mh, 0, &id), LP2P_ERR_PEER_ID);
  /* an identity id whose payload is not a key: valid id, no extractable key */
  mh[0] = 0x00;
  mh[1] = 4;
  memcpy(mh + 2, "\x08\x01\x12\x00", 4);
  CHECK_OK(lp2p_peer_id_from_bytes(mh, 6, &id));
  lp2p_pubkey *k = NULL;
  CHECK_EQ(lp2p_peer_id_extract_pubkey(&id, &k), LP2P_ERR_KEY);
  CHECK(k == NULL);
  lp2p_peer_id unset = {0};
  CHECK_EQ(lp2p_peer_id_extract_pubkey(&unset, &k), LP2P_ERR_INVAL);
  char buf[8];
  CHECK_EQ(lp2p_peer_id_to_string(&unset, buf, sizeof buf), LP2P_ERR_INVAL);
}

TEST(compare_and_hash) {
  const char *ids[] = {"QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
                       "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
                       "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY",
                       "QmaeANgBs1DTSxWSrPPtobgQuxW8XTfsS4ydbK4rCHzqxG",
                       "QmVMT29id3TUASyfZZ6k9hmNyc2nYabCo4uMSpDw4zrgDk"};
  lp2p_peer_id p[5];
  for (int i = 0; i < 5; i++) CHECK_OK(lp2p_peer_id_parse(ids[i], &p[i]));
  for (int i = 0; i < 5; i++) {
    CHECK(lp2p_peer_id_equal(&p[i], &p[i]));
    CHECK_EQ(lp2p_peer_id_cmp(&p[i], &p[i]), 0);
    for (int j = 0; j < 5; j++) {
      if (i == j) continue;
      CHECK(!lp2p_peer_id_equal(&p[i], &p[j]));
      int c = lp2p_peer_id_cmp(&p[i], &p[j]);
      CHECK(c != 0);
      CHECK_EQ(c, -lp2p_peer_id_cmp(&p[j], &p[i]));
      CHECK(lp2p_peer_id_hash(&p[i]) != lp2p_peer_id_hash(&p[j]));
      for (int l = 0; l < 5; l++) /* transitivity */
        if (c < 0 && lp2p_peer_id_cmp(&p[j], &p[l]) < 0) CHECK(lp2p_peer_id_cmp(&p[i], &p[l]) < 0);
    }
  }
  /* a prefix orders before the longer id */
  lp2p_peer_id a = p[0], b = p[0];
  b.len = (uint8_t)(b.len - 1);
  CHECK(lp2p_peer_id_cmp(&b, &a) < 0);
  CHECK(!lp2p_peer_id_equal(&a, &b));
  /* bytes past len do not matter */
  lp2p_peer_id c = p[1];
  c.bytes[c.len] ^= 0xff;
  CHECK(lp2p_peer_id_equal(&c, &p[1]));
  CHECK_EQ(lp2p_peer_id_hash(&c), lp2p_peer_id_hash(&p[1]));
  CHECK(lp2p_peer_id_equal(NULL, NULL));
  CHECK(!lp2p_peer_id_equal(&a, NULL));
}

TEST(text_buffers) {
  lp2p_peer_id id;
  CHECK_OK(lp2p_peer_id_parse("12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq", &id));
  char buf[LP2P_PEER_ID_MAX_TEXT];
  CHECK_EQ(lp2p_peer_id_to_string(&id, buf, 52), LP2P_ERR_BUFSIZE); /* 52 chars need 53 bytes */
  CHECK_EQ(lp2p_peer_id_to_string(&id, buf, 53), 52);
  CHECK_EQ(lp2p_peer_id_to_cid_string(&id, buf, 20), LP2P_ERR_BUFSIZE);
  /* the longest id (identity of a 42-byte payload) fits LP2P_PEER_ID_MAX_TEXT in both forms */
  uint8_t mh[44] = {0x00, 42};
  memset(mh + 2, 0xff, 42);
  CHECK_OK(lp2p_peer_id_from_bytes(mh, sizeof mh, &id));
  int n = lp2p_peer_id_to_string(&id, buf, sizeof buf);
  CHECK(n > 0);
  n = lp2p_peer_id_to_cid_string(&id, buf, sizeof buf);
  CHECK(n > 0 && n < LP2P_PEER_ID_MAX_TEXT);
  lp2p_peer_id back;
  CHECK_OK(lp2p_peer_id_parse(buf, &back));
  CHECK(lp2p_peer_id_equal(&id, &back));
}

TEST(generated_keys_ids) {
  lp2p_key_type types[] = {LP2P_KEY_ED25519, LP2P_KEY_SECP256K1, LP2P_KEY_RSA};
  const char *prefix[] = {"12D3KooW", "16Uiu2HA", "Qm"};
  for (int i = 0; i < 3; i++) {
    lp2p_privkey *k = NULL;
    CHECK_OK(lp2p_privkey_generate(&k, types[i], 0));
    REQUIRE(k);
    lp2p_peer_id id;
    CHECK_OK(lp2p_peer_id_from_pubkey(lp2p_privkey_public(k), &id));
    char buf[LP2P_PEER_ID_MAX_TEXT];
    CHECK(lp2p_peer_id_to_string(&id, buf, sizeof buf) > 0);
    CHECK(!strncmp(buf, prefix[i], strlen(prefix[i])));
    CHECK(lp2p_peer_id_to_cid_string(&id, buf, sizeof buf) > 0);
    CHECK(!strncmp(buf, "bafz", 4));
    CHECK(lp2p_peer_id_matches(&id, lp2p_privkey_public(k)));
    lp2p_privkey *other = NULL;
    CHECK_OK(lp2p_privkey_generate(&other, LP2P_KEY_ED25519, 0));
    CHECK(!lp2p_peer_id_matches(&id, lp2p_privkey_public(other)));
    lp2p_privkey_free(other);
    lp2p_privkey_free(k);
  }
}

int main(void) {
  RUN(spec_vectors);
  RUN(signature_vector_ids);
  RUN(spec_text_examples);
  RUN(parse_rejects);
  RUN(from_bytes_validation);
  RUN(compare_and_hash);
  RUN(text_buffers);
  RUN(generated_keys_ids);
  return test_done();
}
