/* test_keys.c - identity keys: vectors (peer-ids.json, key-signatures.json),
 * strict protobuf parsing, signing/verification per type, generation and key
 * files. */
#include <errno.h>
#include <pthread.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/keys_ec.h"
#include "core/keys_int.h"
#include "json.h"
#include "lp2p/keys.h"
#include "test.h"

static const char *type_key[] = {"RSA", "Ed25519", "Secp256k1", "ECDSA"};

/* ---- helpers ---- */

static int type_from_vector_name(const char *s) {
  for (int i = 0; i < 4; i++)
    if (!strcmp(s, type_key[i])) return i;
  return -1;
}

static lp2p_privkey *load_priv_hex(const json *o, const char *field) {
  size_t n;
  uint8_t *pb = json_hex(o, field, &n);
  lp2p_privkey *k = NULL;
  if (pb && lp2p_privkey_from_protobuf(&k, pb, n) != 0) k = NULL;
  free(pb);
  return k;
}

/* Checks that k's public protobuf equals hex field `field` of o. */
static int pub_matches(const lp2p_pubkey *k, const json *o, const char *field) {
  size_t n;
  uint8_t *want = json_hex(o, field, &n);
  uint8_t got[LP2P_PUBKEY_PB_MAX];
  int m = lp2p_pubkey_to_protobuf(k, got, sizeof got);
  int ok = want && m == (int)n && !memcmp(got, want, n);
  free(want);
  return ok;
}

static int sign_verify_roundtrip(const lp2p_privkey *k) {
  static const uint8_t msg[] = "round trip message";
  uint8_t sig[LP2P_SIGNATURE_MAX];
  int n = lp2p_privkey_sign(k, msg, sizeof msg, sig, sizeof sig);
  if (n <= 0) return 0;
  const lp2p_pubkey *pub = lp2p_privkey_public(k);
  if (lp2p_pubkey_verify(pub, msg, sizeof msg, sig, (size_t)n) != 0) return 0;
  if (lp2p_pubkey_verify(pub, msg, sizeof msg - 1, sig, (size_t)n) != LP2P_ERR_SIGNATURE) return 0;
  sig[n / 2] ^= 0x01;
  if (lp2p_pubkey_verify(pub, msg, sizeof msg, sig, (size_t)n) != LP2P_ERR_SIGNATURE) return 0;
  sig[n / 2] ^= 0x01;
  if (lp2p_pubkey_verify(pub, msg, sizeof msg, sig, (size_t)n - 1) != LP2P_ERR_SIGNATURE) return 0;
  return 1;
}

/* Round-trips k through its PrivateKey protobuf and checks the public half. */
static int privkey_pb_roundtrip(const lp2p_privkey *k) {
  static uint8_t pb[LP2P_PRIVKEY_PB_MAX], pb2[LP2P_PRIVKEY_PB_MAX];
  int n = lp2p_privkey_to_protobuf(k, pb, sizeof pb);
  if (n <= 0) return 0;
  lp2p_privkey *k2 = NULL;
  if (lp2p_privkey_from_protobuf(&k2, pb, (size_t)n) != 0) return 0;
  int n2 = lp2p_privkey_to_protobuf(k2, pb2, sizeof pb2);
  int ok = n2 == n && !memcmp(pb, pb2, (size_t)n) && lp2p_privkey_type(k2) == lp2p_privkey_type(k) &&
           lp2p_pubkey_equal(lp2p_privkey_public(k), lp2p_privkey_public(k2));
  lp2p_privkey_free(k2);
  return ok;
}

/* Parses a PublicKey protobuf from hex; returns the error code (0 = parsed). */
static int parse_pub_hex(const char *hex) {
  size_t n;
  uint8_t *pb = hex_to_bytes(hex, &n);
  if (!pb) return -9999;
  lp2p_pubkey *k = NULL;
  int rv = lp2p_pubkey_from_protobuf(&k, pb, n);
  if (rv == 0 && !k) rv = -9998;
  lp2p_pubkey_free(k);
  free(pb);
  return rv;
}

static int parse_pub(const uint8_t *pb, size_t n) {
  lp2p_pubkey *k = NULL;
  int rv = lp2p_pubkey_from_protobuf(&k, pb, n);
  lp2p_pubkey_free(k);
  return rv;
}

/* 08 <type> 12 <len> data */
static size_t make_pb(int type, const uint8_t *data, size_t len, uint8_t *out) {
  size_t o = 0;
  out[o++] = 0x08;
  out[o++] = (uint8_t)type;
  out[o++] = 0x12;
  if (len < 128) {
    out[o++] = (uint8_t)len;
  } else {
    out[o++] = (uint8_t)(len | 0x80);
    out[o++] = (uint8_t)(len >> 7);
  }
  memcpy(out + o, data, len);
  return o + len;
}

/* ---- names ---- */

TEST(type_names) {
  CHECK_STR(lp2p_key_type_name(LP2P_KEY_RSA), "rsa");
  CHECK_STR(lp2p_key_type_name(LP2P_KEY_ED25519), "ed25519");
  CHECK_STR(lp2p_key_type_name(LP2P_KEY_SECP256K1), "secp256k1");
  CHECK_STR(lp2p_key_type_name(LP2P_KEY_ECDSA), "ecdsa");
  CHECK(lp2p_key_type_name((lp2p_key_type)4) == NULL);
  lp2p_key_type t = LP2P_KEY_RSA;
  CHECK_OK(lp2p_key_type_parse("Ed25519", &t));
  CHECK_EQ(t, LP2P_KEY_ED25519);
  CHECK_OK(lp2p_key_type_parse("SECP256K1", &t));
  CHECK_EQ(t, LP2P_KEY_SECP256K1);
  CHECK_OK(lp2p_key_type_parse("rsa", &t));
  CHECK_EQ(t, LP2P_KEY_RSA);
  CHECK_EQ(lp2p_key_type_parse("dsa", &t), LP2P_ERR_KEY_TYPE);
  CHECK_EQ(lp2p_key_type_parse("", &t), LP2P_ERR_KEY_TYPE);
  CHECK_EQ(lp2p_key_type_parse(NULL, &t), LP2P_ERR_INVAL);
}

/* ---- spec vectors (peer-ids.json) ---- */

TEST(peer_id_vectors_keys) {
  json *v = json_load_vector("peer-ids.json");
  REQUIRE(v);
  json *arr = json_get(v, "vectors");
  REQUIRE(arr && arr->n == 4);
  for (size_t i = 0; i < arr->n; i++) {
    json *o = json_at(arr, i);
    int type = type_from_vector_name(json_str(o, "key_type"));
    CHECK(type >= 0);
    /* public protobuf: parse, re-marshal byte-exact, length as stated */
    size_t n;
    uint8_t *pubpb = json_hex(o, "public_key_pb", &n);
    REQUIRE(pubpb);
    CHECK_EQ(n, (size_t)json_get(o, "public_key_pb_len")->num);
    lp2p_pubkey *pub = NULL;
    CHECK_OK(lp2p_pubkey_from_protobuf(&pub, pubpb, n));
    REQUIRE(pub);
    CHECK_EQ(lp2p_pubkey_type(pub), type);
    CHECK(pub_matches(pub, o, "public_key_pb"));
    size_t dlen;
    const uint8_t *d = lp2p_pubkey_data(pub, &dlen);
    CHECK(dlen + 3 <= n && !memcmp(d, pubpb + n - dlen, dlen));
    /* private protobuf: parse, derive the same public key, re-marshal exactly */
    lp2p_privkey *priv = load_priv_hex(o, "private_key_pb");
    CHECK(priv != NULL);
    if (priv) {
      CHECK_EQ(lp2p_privkey_type(priv), type);
      CHECK(lp2p_pubkey_equal(lp2p_privkey_public(priv), pub));
      CHECK(pub_matches(lp2p_privkey_public(priv), o, "public_key_pb"));
      size_t pn;
      uint8_t *privpb = json_hex(o, "private_key_pb", &pn);
      uint8_t out[LP2P_PRIVKEY_PB_MAX];
      int m = lp2p_privkey_to_protobuf(priv, out, sizeof out);
      CHECK_EQ(m, (int)pn);
      CHECK(m == (int)pn && !memcmp(out, privpb, pn));
      free(privpb);
      CHECK(sign_verify_roundtrip(priv));
      lp2p_privkey_free(priv);
    }
    lp2p_pubkey_free(pub);
    free(pubpb);
  }
  json_free(v);
}

TEST(ed25519_from_seed_matches_vector) {
  json *v = json_load_vector("peer-ids.json");
  REQUIRE(v);
  json *o = json_at(json_get(v, "vectors"), 0);
  size_t n;
  uint8_t *privpb = json_hex(o, "private_key_pb", &n);
  REQUIRE(privpb && n == 68);
  lp2p_privkey *k = NULL;
  CHECK_OK(lp2p_privkey_from_ed25519_seed(&k, privpb + 4));
  REQUIRE(k);
  CHECK(pub_matches(lp2p_privkey_public(k), o, "public_key_pb"));
  uint8_t out[128];
  CHECK_EQ(lp2p_privkey_to_protobuf(k, out, sizeof out), 68);
  CHECK_MEM(out, privpb, 68);
  lp2p_privkey_free(k);
  free(privpb);
  json_free(v);
}

/* ---- signature vectors (key-signatures.json) ---- */

TEST(signature_vectors) {
  json *v = json_load_vector("key-signatures.json");
  REQUIRE(v);
  json *keys = json_get(v, "keys");
  REQUIRE(keys && keys->n == 5);
  size_t common_len;
  uint8_t *common_msg = json_hex(v, "message_hex", &common_len);
  REQUIRE(common_msg);
  for (size_t i = 0; i < keys->n; i++) {
    const char *name = keys->keys[i];
    json *o = keys->items[i];
    int type = !strncmp(name, "Ed25519", 7) ? LP2P_KEY_ED25519 : type_from_vector_name(name);
    CHECK(type >= 0);
    size_t mlen = common_len, slen;
    uint8_t *msg = json_get(o, "message_hex") ? json_hex(o, "message_hex", &mlen) : NULL;
    const uint8_t *m = msg ? msg : common_msg;
    uint8_t *sig = json_hex(o, "signature", &slen);
    REQUIRE(sig);
    lp2p_privkey *priv = load_priv_hex(o, "private_key_pb");
    CHECK(priv != NULL);
    if (!priv) {
      fprintf(stderr, "  cannot load %s\n", name);
      free(sig);
      free(msg);
      continue;
    }
    const lp2p_pubkey *pub = lp2p_privkey_public(priv);
    CHECK_EQ(lp2p_pubkey_type(pub), type);
    CHECK(pub_matches(pub, o, "public_key_pb"));
    CHECK_EQ(lp2p_pubkey_verify(pub, m, mlen, sig, slen), 0);
    /* the same through a parsed public key */
    size_t pn;
    uint8_t *pubpb = json_hex(o, "public_key_pb", &pn);
    lp2p_pubkey *pub2 = NULL;
    CHECK_OK(lp2p_pubkey_from_protobuf(&pub2, pubpb, pn));
    CHECK_EQ(lp2p_pubkey_verify(pub2, m, mlen, sig, slen), 0);
    CHECK_EQ(lp2p_pubkey_verify(pub2, m, mlen - 1, sig, slen), LP2P_ERR_SIGNATURE);
    lp2p_pubkey_free(pub2);
    free(pubpb);
    /* our signature */
    uint8_t mine[LP2P_SIGNATURE_MAX];
    int n = lp2p_privkey_sign(priv, m, mlen, mine, sizeof mine);
    CHECK(n > 0);
    CHECK_EQ(lp2p_pubkey_verify(pub, m, mlen, mine, (size_t)n), 0);
    if (type == LP2P_KEY_RSA || type == LP2P_KEY_ED25519 || type == LP2P_KEY_SECP256K1) {
      /* deterministic: RSA PKCS#1 v1.5, Ed25519, RFC 6979 + low-S (as go) */
      CHECK_EQ(n, (int)slen);
      CHECK(n == (int)slen && !memcmp(mine, sig, slen));
    }
    CHECK(privkey_pb_roundtrip(priv));
    lp2p_privkey_free(priv);
    free(sig);
    free(msg);
  }
  free(common_msg);
  json_free(v);
}

TEST(ed25519_legacy_96_byte_form) {
  json *v = json_load_vector("key-signatures.json");
  REQUIRE(v);
  json *o = json_get(json_get(v, "keys"), "Ed25519_legacy_96byte_private");
  REQUIRE(o);
  size_t n;
  uint8_t *pb = json_hex(o, "private_key_pb", &n);
  REQUIRE(pb && n == 100);
  lp2p_privkey *k = NULL;
  CHECK_OK(lp2p_privkey_from_protobuf(&k, pb, n));
  REQUIRE(k);
  /* re-marshalled in the 64-byte form */
  uint8_t out[128];
  CHECK_EQ(lp2p_privkey_to_protobuf(k, out, sizeof out), 68);
  CHECK_EQ(out[3], 64);
  CHECK_MEM(out + 4, pb + 4, 64);
  lp2p_privkey_free(k);
  /* the two public copies differ: rejected */
  pb[n - 1] ^= 1;
  CHECK_EQ(lp2p_privkey_from_protobuf(&k, pb, n), LP2P_ERR_KEY);
  CHECK(k == NULL);
  /* 64-byte form whose public half does not belong to the seed: rejected */
  uint8_t bad[68];
  memcpy(bad, pb, 4);
  bad[3] = 64;
  memcpy(bad + 4, pb + 4, 64);
  bad[67] ^= 1;
  CHECK_EQ(lp2p_privkey_from_protobuf(&k, bad, sizeof bad), LP2P_ERR_KEY);
  free(pb);
  json_free(v);
}

/* ---- strict PublicKey protobuf ---- */

TEST(pubkey_protobuf_strictness) {
  const char *ed = "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
  CHECK_EQ(parse_pub_hex(ed), 0);
  /* unknown key type 4, and a negative one (ten-byte varint) */
  CHECK_EQ(parse_pub_hex("080412201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"),
           LP2P_ERR_KEY_TYPE);
  CHECK_EQ(
      parse_pub_hex("08ffffffffffffffffff0112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce2"
                    "7e"),
      LP2P_ERR_KEY_TYPE);
  /* trailing byte, unknown field 3, duplicate Type, duplicate Data */
  CHECK_EQ(parse_pub_hex("080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e00"),
           LP2P_ERR_KEY);
  CHECK_EQ(parse_pub_hex("080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e1801"),
           LP2P_ERR_KEY);
  CHECK_EQ(parse_pub_hex("0801080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"),
           LP2P_ERR_KEY);
  CHECK_EQ(parse_pub_hex("080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
                         "12201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"),
           LP2P_ERR_KEY);
  /* fields out of order, missing Type, missing Data, non-minimal varints */
  CHECK_EQ(parse_pub_hex("12201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e0801"),
           LP2P_ERR_KEY);
  CHECK_EQ(parse_pub_hex("12201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"),
           LP2P_ERR_KEY);
  CHECK_EQ(parse_pub_hex("0801"), LP2P_ERR_KEY);
  CHECK_EQ(parse_pub_hex("08810012201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"),
           LP2P_ERR_KEY);
  CHECK_EQ(parse_pub_hex("0881801ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"),
           LP2P_ERR_KEY);
  CHECK_EQ(parse_pub_hex("080112a0001ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"),
           LP2P_ERR_KEY);
  /* Data of a wrong wire type (varint instead of bytes) */
  CHECK_EQ(parse_pub_hex("08011020"), LP2P_ERR_KEY);
  /* truncated */
  CHECK_EQ(parse_pub_hex("080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce2"),
           LP2P_ERR_KEY);
  CHECK_EQ(parse_pub(NULL, 0), LP2P_ERR_KEY);
  /* wrong sizes for Ed25519 and secp256k1 */
  uint8_t data[80] = {0}, pb[100];
  data[0] = 0x02;
  CHECK_EQ(parse_pub(pb, make_pb(1, data, 31, pb)), LP2P_ERR_KEY);
  CHECK_EQ(parse_pub(pb, make_pb(1, data, 33, pb)), LP2P_ERR_KEY);
  CHECK_EQ(parse_pub(pb, make_pb(1, data, 0, pb)), LP2P_ERR_KEY);
  CHECK_EQ(parse_pub(pb, make_pb(2, data, 32, pb)), LP2P_ERR_KEY);
  CHECK_EQ(parse_pub(pb, make_pb(2, data, 34, pb)), LP2P_ERR_KEY);
  CHECK_EQ(parse_pub(pb, make_pb(2, data, 65, pb)), LP2P_ERR_KEY); /* uncompressed form not accepted */
  /* garbage for RSA and ECDSA */
  CHECK_EQ(parse_pub(pb, make_pb(0, data, 40, pb)), LP2P_ERR_KEY);
  CHECK_EQ(parse_pub(pb, make_pb(3, data, 40, pb)), LP2P_ERR_KEY);
  /* larger than any key */
  static uint8_t big[LP2P_PUBKEY_PB_MAX + 10];
  memset(big, 0, sizeof big);
  CHECK_EQ(parse_pub(big, sizeof big), LP2P_ERR_KEY);
}

TEST(secp256k1_points) {
  uint8_t data[33], pb[40];
  /* x = 0 is not on secp256k1 (7 is not a square mod p) */
  memset(data, 0, sizeof data);
  data[0] = 0x02;
  CHECK_EQ(parse_pub(pb, make_pb(2, data, 33, pb)), LP2P_ERR_KEY);
  /* x >= p */
  memset(data + 1, 0xff, 32);
  CHECK_EQ(parse_pub(pb, make_pb(2, data, 33, pb)), LP2P_ERR_KEY);
  /* the generator: x = 79be..., even y */
  static const char gx[] = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
  size_t n;
  uint8_t *g = hex_to_bytes(gx, &n);
  REQUIRE(g && n == 33);
  CHECK_EQ(parse_pub(pb, make_pb(2, g, 33, pb)), 0);
  g[0] = 0x03;
  CHECK_EQ(parse_pub(pb, make_pb(2, g, 33, pb)), 0);
  g[0] = 0x04;
  CHECK_EQ(parse_pub(pb, make_pb(2, g, 33, pb)), LP2P_ERR_KEY);
  g[0] = 0x00;
  CHECK_EQ(parse_pub(pb, make_pb(2, g, 33, pb)), LP2P_ERR_KEY);
  free(g);
  /* the vector key's parity is preserved through parse + marshal (03 prefix) */
  CHECK_EQ(parse_pub_hex("08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99"), 0);
  /* flipping the parity byte gives a different (valid) key, hence a different peer */
  lp2p_pubkey *a = NULL, *b = NULL;
  uint8_t *p1 =
      hex_to_bytes("08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99", &n);
  CHECK_OK(lp2p_pubkey_from_protobuf(&a, p1, n));
  p1[4] = 0x02;
  CHECK_OK(lp2p_pubkey_from_protobuf(&b, p1, n));
  CHECK(a && b && !lp2p_pubkey_equal(a, b));
  uint8_t out[40];
  CHECK_EQ(lp2p_pubkey_to_protobuf(b, out, sizeof out), 37);
  CHECK_EQ(out[4], 0x02);
  lp2p_pubkey_free(a);
  lp2p_pubkey_free(b);
  free(p1);
}

/* Rewrites a 256-bit-curve DER signature with S replaced by n - S. */
static size_t flip_s(const uint8_t *sig, size_t len, mbedtls_ecp_group_id gid, uint8_t *out) {
  const uint8_t *r, *s;
  size_t rl, sl;
  if (lp2p__ec_der_parse(sig, len, 32, &r, &rl, &s, &sl)) return 0;
  mbedtls_ecp_group grp;
  mbedtls_mpi S;
  mbedtls_ecp_group_init(&grp);
  mbedtls_mpi_init(&S);
  mbedtls_ecp_group_load(&grp, gid);
  mbedtls_mpi_read_binary(&S, s, sl);
  mbedtls_mpi_sub_mpi(&S, &grp.N, &S);
  uint8_t sb[33] = {0};
  mbedtls_mpi_write_binary(&S, sb, 33); /* sb[0] = 0: sign byte, stripped below if not needed */
  size_t so = (sb[1] & 0x80) ? 0 : 1;
  while (so < 32 && sb[so] == 0 && !(sb[so + 1] & 0x80)) so++;
  size_t o = 2;
  out[o++] = 0x02;
  out[o++] = (uint8_t)(rl + ((r[0] & 0x80) ? 1 : 0));
  if (r[0] & 0x80) out[o++] = 0;
  memcpy(out + o, r, rl);
  o += rl;
  out[o++] = 0x02;
  out[o++] = (uint8_t)(33 - so);
  memcpy(out + o, sb + so, 33 - so);
  o += 33 - so;
  out[0] = 0x30;
  out[1] = (uint8_t)(o - 2);
  mbedtls_mpi_free(&S);
  mbedtls_ecp_group_free(&grp);
  return o;
}

static lp2p_privkey *vector_key(json *v, const char *name, uint8_t **msg, size_t *mlen, uint8_t **sig,
                                size_t *slen) {
  json *o = json_get(json_get(v, "keys"), name);
  *msg = json_hex(v, "message_hex", mlen);
  *sig = json_hex(o, "signature", slen);
  return load_priv_hex(o, "private_key_pb");
}

TEST(secp256k1_high_s_rejected) {
  json *v = json_load_vector("key-signatures.json");
  REQUIRE(v);
  uint8_t *msg, *sig;
  size_t mlen, slen;
  lp2p_privkey *k = vector_key(v, "Secp256k1", &msg, &mlen, &sig, &slen);
  REQUIRE(k && msg && sig);
  const lp2p_pubkey *pub = lp2p_privkey_public(k);
  CHECK_EQ(lp2p_pubkey_verify(pub, msg, mlen, sig, slen), 0);
  uint8_t hi[80];
  size_t hl = flip_s(sig, slen, MBEDTLS_ECP_DP_SECP256K1, hi);
  REQUIRE(hl > 0);
  CHECK_EQ(lp2p_pubkey_verify(pub, msg, mlen, hi, hl), LP2P_ERR_SIGNATURE);
  /* the flipped signature is mathematically valid: the same curve check with
   * low-S off accepts it, so the rejection above is the low-S rule */
  CHECK_EQ(lp2p__ec_verify(pub->impl, msg, mlen, hi, hl, 0), 0);
  /* many fresh signatures: all low S (an S above n/2 would fail verification) */
  for (int i = 0; i < 64; i++) {
    uint8_t m2[8] = {(uint8_t)i}, s2[LP2P__EC_SIG_MAX];
    int n = lp2p_privkey_sign(k, m2, sizeof m2, s2, sizeof s2);
    CHECK(n > 0);
    CHECK_EQ(lp2p_pubkey_verify(pub, m2, sizeof m2, s2, (size_t)n), 0);
  }
  lp2p_privkey_free(k);
  free(msg);
  free(sig);
  json_free(v);
}

TEST(ecdsa_p256_high_s_accepted_and_signing) {
  json *v = json_load_vector("key-signatures.json");
  REQUIRE(v);
  uint8_t *msg, *sig;
  size_t mlen, slen;
  lp2p_privkey *k = vector_key(v, "ECDSA", &msg, &mlen, &sig, &slen);
  REQUIRE(k && msg && sig);
  const lp2p_pubkey *pub = lp2p_privkey_public(k);
  /* the go fixture signature has S > n/2 (randomized, not normalized) */
  CHECK_EQ(lp2p_pubkey_verify(pub, msg, mlen, sig, slen), 0);
  uint8_t lo[80];
  size_t ll = flip_s(sig, slen, MBEDTLS_ECP_DP_SECP256R1, lo);
  CHECK(ll > 0 && ll < slen);
  CHECK_EQ(lp2p_pubkey_verify(pub, msg, mlen, lo, ll), 0);
  CHECK(sign_verify_roundtrip(k));
  CHECK(privkey_pb_roundtrip(k));
  lp2p_privkey_free(k);
  CHECK_EQ(lp2p_privkey_generate(&k, LP2P_KEY_ECDSA, 0), LP2P_ERR_KEY_TYPE);
  CHECK(k == NULL);
  free(msg);
  free(sig);
  json_free(v);
}

TEST(ecdsa_der_strictness) {
  json *v = json_load_vector("key-signatures.json");
  REQUIRE(v);
  uint8_t *msg, *sig;
  size_t mlen, slen;
  lp2p_privkey *k = vector_key(v, "Secp256k1", &msg, &mlen, &sig, &slen);
  REQUIRE(k && msg && sig && slen == 70 && sig[3] == 32);
  const lp2p_pubkey *pub = lp2p_privkey_public(k);
  uint8_t b[80];
  /* r with a superfluous leading zero */
  memcpy(b, sig, 4);
  b[1]++;
  b[3]++;
  b[4] = 0;
  memcpy(b + 5, sig + 4, slen - 4);
  CHECK_EQ(lp2p_pubkey_verify(pub, msg, mlen, b, slen + 1), LP2P_ERR_SIGNATURE);
  /* trailing byte inside and outside the sequence */
  memcpy(b, sig, slen);
  b[slen] = 0;
  CHECK_EQ(lp2p_pubkey_verify(pub, msg, mlen, b, slen + 1), LP2P_ERR_SIGNATURE);
  b[1]++;
  CHECK_EQ(lp2p_pubkey_verify(pub, msg, mlen, b, slen + 1), LP2P_ERR_SIGNATURE);
  /* long-form length */
  b[0] = 0x30;
  b[1] = 0x81;
  b[2] = (uint8_t)(slen - 2);
  memcpy(b + 3, sig + 2, slen - 2);
  CHECK_EQ(lp2p_pubkey_verify(pub, msg, mlen, b, slen + 1), LP2P_ERR_SIGNATURE);
  /* negative r (sign bit without the zero byte) */
  memcpy(b, sig, slen);
  b[4] |= 0x80;
  CHECK_EQ(lp2p_pubkey_verify(pub, msg, mlen, b, slen), LP2P_ERR_SIGNATURE);
  /* r = 0 and s = 0 */
  static const uint8_t zeros[] = {0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00};
  CHECK_EQ(lp2p_pubkey_verify(pub, msg, mlen, zeros, sizeof zeros), LP2P_ERR_SIGNATURE);
  CHECK_EQ(lp2p_pubkey_verify(pub, msg, mlen, sig, 0), LP2P_ERR_SIGNATURE);
  CHECK_EQ(lp2p_pubkey_verify(pub, msg, mlen, sig, slen), 0);
  lp2p_privkey_free(k);
  free(msg);
  free(sig);
  json_free(v);
}

/* ---- RSA / ECDSA key shapes we refuse ---- */

static size_t mbedtls_spki(mbedtls_pk_context *pk, uint8_t *out, size_t cap) {
  uint8_t buf[2048];
  int n = mbedtls_pk_write_pubkey_der(pk, buf, sizeof buf);
  if (n <= 0 || (size_t)n > cap) return 0;
  memcpy(out, buf + sizeof buf - n, (size_t)n);
  return (size_t)n;
}

TEST(rsa_and_ecdsa_rejects) {
  mbedtls_pk_context pk;
  mbedtls_pk_init(&pk);
  uint8_t der[2048], pb[2100];
  /* RSA-1024: too small */
  REQUIRE(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) == 0);
  REQUIRE(mbedtls_rsa_gen_key(mbedtls_pk_rsa(pk), lp2p__keys_rng, NULL, 1024, 65537) == 0);
  size_t n = mbedtls_spki(&pk, der, sizeof der);
  REQUIRE(n > 0);
  CHECK_EQ(parse_pub(pb, make_pb(0, der, n, pb)), LP2P_ERR_KEY);
  /* RSA-1024 private key file (PKCS#1) */
  uint8_t kbuf[2048];
  int kn = mbedtls_pk_write_key_der(&pk, kbuf, sizeof kbuf);
  REQUIRE(kn > 0);
  lp2p_privkey *k = NULL;
  CHECK_EQ(lp2p_privkey_from_protobuf(&k, pb, make_pb(0, kbuf + sizeof kbuf - kn, (size_t)kn, pb)),
           LP2P_ERR_KEY);
  mbedtls_pk_free(&pk);
  /* P-384 SPKI: ECDSA keys are P-256 only */
  mbedtls_pk_init(&pk);
  REQUIRE(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) == 0);
  REQUIRE(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP384R1, mbedtls_pk_ec(pk), lp2p__keys_rng, NULL) == 0);
  n = mbedtls_spki(&pk, der, sizeof der);
  REQUIRE(n > 0);
  CHECK_EQ(parse_pub(pb, make_pb(3, der, n, pb)), LP2P_ERR_KEY);
  /* ... and a P-256 SPKI is fine as ECDSA but not as RSA */
  mbedtls_pk_free(&pk);
  mbedtls_pk_init(&pk);
  REQUIRE(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) == 0);
  REQUIRE(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), lp2p__keys_rng, NULL) == 0);
  n = mbedtls_spki(&pk, der, sizeof der);
  CHECK_EQ(parse_pub(pb, make_pb(3, der, n, pb)), 0);
  CHECK_EQ(parse_pub(pb, make_pb(0, der, n, pb)), LP2P_ERR_KEY);
  /* its SEC1 private key loads and signs */
  kn = mbedtls_pk_write_key_der(&pk, kbuf, sizeof kbuf);
  REQUIRE(kn > 0);
  CHECK_OK(lp2p_privkey_from_protobuf(&k, pb, make_pb(3, kbuf + sizeof kbuf - kn, (size_t)kn, pb)));
  CHECK(k && sign_verify_roundtrip(k));
  lp2p_privkey_free(k);
  mbedtls_pk_free(&pk);

  /* the vector RSA key as PKCS#1 RSAPublicKey (not SPKI): rejected */
  json *v = json_load_vector("key-signatures.json");
  REQUIRE(v);
  size_t pn;
  uint8_t *pub = json_hex(json_get(json_get(v, "keys"), "RSA"), "public_key_pb", &pn);
  REQUIRE(pub && pn > 30);
  /* SPKI = 30 82 0122 | 30 0d <alg> | 03 82 010f 00 | RSAPublicKey ; Data starts at 5 */
  const uint8_t *spki = pub + 5;
  const uint8_t *rsapub = spki + 4 + 15 + 5;
  size_t rlen = pn - 5 - 24;
  CHECK_EQ(rsapub[0], 0x30);
  CHECK_EQ(parse_pub(pb, make_pb(0, rsapub, rlen, pb)), LP2P_ERR_KEY);
  CHECK_EQ(parse_pub(pb, make_pb(0, spki, pn - 5, pb)), 0);
  CHECK_EQ(parse_pub(pb, make_pb(0, spki, pn - 6, pb)), LP2P_ERR_KEY); /* truncated */
  CHECK_EQ(parse_pub(pb, make_pb(3, spki, pn - 5, pb)), LP2P_ERR_KEY); /* RSA key typed as ECDSA */
  free(pub);
  /* the RSA private key as PKCS#8 or with a wrong type: rejected */
  size_t kpn;
  uint8_t *kpb = json_hex(json_get(json_get(v, "keys"), "RSA"), "private_key_pb", &kpn);
  REQUIRE(kpb);
  kpb[1] = 3; /* typed ECDSA */
  CHECK_EQ(lp2p_privkey_from_protobuf(&k, kpb, kpn), LP2P_ERR_KEY);
  kpb[1] = 2;
  CHECK_EQ(lp2p_privkey_from_protobuf(&k, kpb, kpn), LP2P_ERR_KEY);
  kpb[1] = 9;
  CHECK_EQ(lp2p_privkey_from_protobuf(&k, kpb, kpn), LP2P_ERR_KEY_TYPE);
  kpb[1] = 0;
  kpb[kpn - 1] ^= 0x01; /* corrupt coefficient: RSA consistency checks fail */
  CHECK_EQ(lp2p_privkey_from_protobuf(&k, kpb, kpn), LP2P_ERR_KEY);
  free(kpb);
  json_free(v);
}

/* ---- generation ---- */

TEST(generate_each_type) {
  lp2p_key_type types[] = {LP2P_KEY_ED25519, LP2P_KEY_SECP256K1, LP2P_KEY_RSA};
  for (size_t i = 0; i < 3; i++) {
    lp2p_privkey *a = NULL, *b = NULL;
    CHECK_OK(lp2p_privkey_generate(&a, types[i], 0));
    CHECK_OK(lp2p_privkey_generate(&b, types[i], 0));
    REQUIRE(a && b);
    CHECK_EQ(lp2p_privkey_type(a), types[i]);
    CHECK(!lp2p_pubkey_equal(lp2p_privkey_public(a), lp2p_privkey_public(b)));
    CHECK(sign_verify_roundtrip(a));
    CHECK(privkey_pb_roundtrip(a));
    /* a's signature does not verify under b */
    uint8_t sig[LP2P_SIGNATURE_MAX];
    int n = lp2p_privkey_sign(a, (const uint8_t *)"x", 1, sig, sizeof sig);
    CHECK(n > 0);
    CHECK_EQ(lp2p_pubkey_verify(lp2p_privkey_public(b), (const uint8_t *)"x", 1, sig, (size_t)n),
             LP2P_ERR_SIGNATURE);
    /* public key protobuf sizes per spec: 36, 37, 299 (RSA-2048) */
    uint8_t pb[LP2P_PUBKEY_PB_MAX];
    int pn = lp2p_pubkey_to_protobuf(lp2p_privkey_public(a), pb, sizeof pb);
    CHECK_EQ(pn, types[i] == LP2P_KEY_ED25519 ? 36 : types[i] == LP2P_KEY_SECP256K1 ? 37 : 299);
    CHECK_EQ(pb[1], types[i]);
    /* BUFSIZE on short buffers */
    CHECK_EQ(lp2p_pubkey_to_protobuf(lp2p_privkey_public(a), pb, (size_t)pn - 1), LP2P_ERR_BUFSIZE);
    CHECK_EQ(lp2p_privkey_to_protobuf(a, pb, 10), LP2P_ERR_BUFSIZE);
    CHECK_EQ(lp2p_privkey_sign(a, (const uint8_t *)"x", 1, sig, 8), LP2P_ERR_BUFSIZE);
    /* dup */
    lp2p_pubkey *d = lp2p_pubkey_dup(lp2p_privkey_public(a));
    CHECK(d && lp2p_pubkey_equal(d, lp2p_privkey_public(a)));
    CHECK_EQ(lp2p_pubkey_verify(d, (const uint8_t *)"x", 1, sig, (size_t)n), 0);
    lp2p_pubkey_free(d);
    lp2p_privkey_free(a);
    lp2p_privkey_free(b);
  }
  lp2p_privkey *k = NULL;
  CHECK_EQ(lp2p_privkey_generate(&k, LP2P_KEY_RSA, 1024), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_privkey_generate(&k, LP2P_KEY_RSA, 8194), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_privkey_generate(&k, (lp2p_key_type)7, 0), LP2P_ERR_KEY_TYPE);
  CHECK(k == NULL);
}

TEST(rsa_3072_generation) {
  lp2p_privkey *k = NULL;
  CHECK_OK(lp2p_privkey_generate(&k, LP2P_KEY_RSA, 3072));
  REQUIRE(k);
  uint8_t sig[LP2P_SIGNATURE_MAX];
  CHECK_EQ(lp2p_privkey_sign(k, (const uint8_t *)"m", 1, sig, sizeof sig), 384);
  CHECK(privkey_pb_roundtrip(k));
  lp2p_privkey_free(k);
}

TEST(null_and_empty_arguments) {
  lp2p_pubkey *p = NULL;
  lp2p_privkey *k = NULL;
  CHECK_EQ(lp2p_pubkey_from_protobuf(NULL, (const uint8_t *)"", 0), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_privkey_from_protobuf(&k, NULL, 0), LP2P_ERR_KEY);
  CHECK_EQ(lp2p_privkey_from_ed25519_seed(&k, NULL), LP2P_ERR_INVAL);
  CHECK(lp2p_pubkey_dup(NULL) == NULL);
  CHECK(lp2p_pubkey_equal(NULL, NULL));
  lp2p_pubkey_free(p);
  lp2p_privkey_free(k);
  CHECK_EQ(lp2p_pubkey_verify(NULL, (const uint8_t *)"", 0, (const uint8_t *)"", 0), LP2P_ERR_SIGNATURE);
  /* signing an empty message works */
  uint8_t seed[32] = {1};
  CHECK_OK(lp2p_privkey_from_ed25519_seed(&k, seed));
  uint8_t sig[64];
  CHECK_EQ(lp2p_privkey_sign(k, NULL, 0, sig, sizeof sig), 64);
  CHECK_EQ(lp2p_pubkey_verify(lp2p_privkey_public(k), NULL, 0, sig, 64), 0);
  lp2p_privkey_free(k);
}

/* ---- shared use from several threads (objects are read-only after creation) ---- */

static lp2p_privkey *shared_keys[3];
static int thread_failures;

static void *sign_verify_worker(void *arg) {
  long seed = (long)arg;
  for (int i = 0; i < 12; i++) {
    const lp2p_privkey *k = shared_keys[(seed + i) % 3];
    uint8_t msg[16], sig[LP2P_SIGNATURE_MAX];
    memset(msg, (int)(seed * 31 + i), sizeof msg);
    int n = lp2p_privkey_sign(k, msg, sizeof msg, sig, sizeof sig);
    if (n <= 0 || lp2p_pubkey_verify(lp2p_privkey_public(k), msg, sizeof msg, sig, (size_t)n) != 0 ||
        lp2p_pubkey_verify(lp2p_privkey_public(k), msg, sizeof msg - 1, sig, (size_t)n) != LP2P_ERR_SIGNATURE)
      __atomic_add_fetch(&thread_failures, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

TEST(keys_shared_between_threads) {
  CHECK_OK(lp2p_privkey_generate(&shared_keys[0], LP2P_KEY_ED25519, 0));
  CHECK_OK(lp2p_privkey_generate(&shared_keys[1], LP2P_KEY_SECP256K1, 0));
  CHECK_OK(lp2p_privkey_generate(&shared_keys[2], LP2P_KEY_RSA, 2048));
  REQUIRE(shared_keys[0] && shared_keys[1] && shared_keys[2]);
  pthread_t t[4];
  for (long i = 0; i < 4; i++) CHECK_EQ(pthread_create(&t[i], NULL, sign_verify_worker, (void *)i), 0);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  CHECK_EQ(thread_failures, 0);
  for (int i = 0; i < 3; i++) lp2p_privkey_free(shared_keys[i]);
}

/* ---- key files ---- */

static char tmpdir[256];

static void tmp_path(char *out, size_t cap, const char *rel) { snprintf(out, cap, "%s/%s", tmpdir, rel); }

TEST(keyfile_save_load) {
  char path[512];
  tmp_path(path, sizeof path, "a/b/identity.key");
  lp2p_privkey *k = NULL, *l = NULL;
  uint8_t seed[32] = {7, 7, 7};
  CHECK_OK(lp2p_privkey_from_ed25519_seed(&k, seed));
  CHECK_EQ(lp2p_privkey_load_file(&l, path), LP2P_ERR_NOT_FOUND);
  CHECK_OK(lp2p_privkey_save_file(k, path));
  struct stat st;
  CHECK_EQ(stat(path, &st), 0);
  CHECK_EQ(st.st_mode & 0777, 0600);
  char dir[512];
  tmp_path(dir, sizeof dir, "a/b");
  CHECK_EQ(stat(dir, &st), 0);
  CHECK_EQ(st.st_mode & 0777, 0700);
  tmp_path(dir, sizeof dir, "a");
  CHECK_EQ(stat(dir, &st), 0);
  CHECK_EQ(st.st_mode & 0777, 0700);
  /* the file is exactly the PrivateKey protobuf */
  uint8_t want[128], got[256];
  int wn = lp2p_privkey_to_protobuf(k, want, sizeof want);
  FILE *f = fopen(path, "rb");
  REQUIRE(f);
  size_t gn = fread(got, 1, sizeof got, f);
  fclose(f);
  CHECK_EQ(gn, (size_t)wn);
  CHECK_MEM(got, want, (size_t)wn);
  CHECK_OK(lp2p_privkey_load_file(&l, path));
  CHECK(l && lp2p_pubkey_equal(lp2p_privkey_public(k), lp2p_privkey_public(l)));
  lp2p_privkey_free(l);
  /* overwrite with another key (atomic replace, still 0600, no temp files left) */
  lp2p_privkey *k2 = NULL;
  CHECK_OK(lp2p_privkey_generate(&k2, LP2P_KEY_SECP256K1, 0));
  CHECK_OK(lp2p_privkey_save_file(k2, path));
  CHECK_OK(lp2p_privkey_load_file(&l, path));
  CHECK(l && lp2p_pubkey_equal(lp2p_privkey_public(k2), lp2p_privkey_public(l)));
  CHECK_EQ(stat(path, &st), 0);
  CHECK_EQ(st.st_mode & 0777, 0600);
  lp2p_privkey_free(l);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "test $(ls -A %s/a/b | wc -l) -eq 1", tmpdir);
  CHECK_EQ(system(cmd), 0);
  lp2p_privkey_free(k);
  lp2p_privkey_free(k2);
}

TEST(keyfile_errors) {
  char path[512];
  lp2p_privkey *l = NULL;
  /* corrupt: garbage, truncated, empty, oversized */
  tmp_path(path, sizeof path, "corrupt.key");
  FILE *f = fopen(path, "wb");
  REQUIRE(f);
  fputs("not a key", f);
  fclose(f);
  CHECK_EQ(lp2p_privkey_load_file(&l, path), LP2P_ERR_KEY);
  f = fopen(path, "wb");
  REQUIRE(f);
  fclose(f);
  CHECK_EQ(lp2p_privkey_load_file(&l, path), LP2P_ERR_KEY);
  uint8_t seed[32] = {9};
  lp2p_privkey *k = NULL;
  CHECK_OK(lp2p_privkey_from_ed25519_seed(&k, seed));
  uint8_t pb[128];
  int n = lp2p_privkey_to_protobuf(k, pb, sizeof pb);
  f = fopen(path, "wb");
  REQUIRE(f);
  fwrite(pb, 1, (size_t)n - 1, f);
  fclose(f);
  CHECK_EQ(lp2p_privkey_load_file(&l, path), LP2P_ERR_KEY);
  f = fopen(path, "wb");
  REQUIRE(f);
  for (int i = 0; i < LP2P_PRIVKEY_PB_MAX + 100; i++) fputc(0, f);
  fclose(f);
  CHECK_EQ(lp2p_privkey_load_file(&l, path), LP2P_ERR_KEY);
  CHECK(l == NULL);
  /* a directory is not a key file; an unreadable file is an I/O error */
  CHECK_EQ(lp2p_privkey_load_file(&l, tmpdir), LP2P_ERR_IO);
  tmp_path(path, sizeof path, "unreadable.key");
  CHECK_OK(lp2p_privkey_save_file(k, path));
  chmod(path, 0);
  if (geteuid() != 0) CHECK_EQ(lp2p_privkey_load_file(&l, path), LP2P_ERR_IO);
  /* parent is a file: cannot save */
  tmp_path(path, sizeof path, "corrupt.key/sub/x.key");
  CHECK_EQ(lp2p_privkey_save_file(k, path), LP2P_ERR_IO);
  CHECK_EQ(lp2p_privkey_load_file(&l, path), LP2P_ERR_IO);
  CHECK_EQ(lp2p_privkey_load_file(&l, ""), LP2P_ERR_INVAL);
  lp2p_privkey_free(k);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/lp2p-test-keys-XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  RUN(type_names);
  RUN(peer_id_vectors_keys);
  RUN(ed25519_from_seed_matches_vector);
  RUN(signature_vectors);
  RUN(ed25519_legacy_96_byte_form);
  RUN(pubkey_protobuf_strictness);
  RUN(secp256k1_points);
  RUN(secp256k1_high_s_rejected);
  RUN(ecdsa_p256_high_s_accepted_and_signing);
  RUN(ecdsa_der_strictness);
  RUN(rsa_and_ecdsa_rejects);
  RUN(generate_each_type);
  RUN(rsa_3072_generation);
  RUN(null_and_empty_arguments);
  RUN(keys_shared_between_threads);
  RUN(keyfile_save_load);
  RUN(keyfile_errors);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
  return test_done();
}
