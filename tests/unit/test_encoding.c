/* tests/unit/test_encoding.c - uvarint, base58btc, base32, multibase,
 * multihash, CIDv1 and hex against the vectors and edge cases. */
#include "lp2p/encoding.h"
#include "json.h"
#include "test.h"

/* ---- uvarint ---- */

TEST(varint_vectors_valid) {
  json *doc = json_load_vector("varint.json");
  REQUIRE(doc);
  json *valid = json_get(doc, "valid");
  REQUIRE(valid && valid->n >= 12);
  for (size_t i = 0; i < valid->n; i++) {
    json *v = json_at(valid, i);
    size_t blen;
    uint8_t *bytes = json_hex(v, "hex", &blen);
    REQUIRE(bytes);
    /* JSON numbers are doubles: 2^63-1 is not representable, parse the hex side
     * and compare with the value only where the double is exact. */
    size_t len = (size_t)json_get(v, "length")->num;
    CHECK_EQ(blen, len);
    uint64_t dec = 0;
    CHECK_EQ(lp2p_uvarint_decode(bytes, blen, &dec), (int)len);
    double num = json_get(v, "value")->num;
    if (num < 9007199254740992.0) CHECK(dec == (uint64_t)num);
    else CHECK(dec == INT64_MAX); /* the one large vector: 2^63 - 1 */
    uint8_t enc[LP2P_UVARINT_MAX_LEN];
    CHECK_EQ(lp2p_uvarint_encode(dec, enc, sizeof enc), (int)len);
    CHECK_MEM(enc, bytes, len);
    CHECK_EQ(lp2p_uvarint_size(dec), len);
    /* exact capacity works, one less does not */
    CHECK_EQ(lp2p_uvarint_encode(dec, enc, len), (int)len);
    CHECK_EQ(lp2p_uvarint_encode(dec, enc, len - 1), LP2P_ERR_BUFSIZE);
    /* every strict prefix is "need more" */
    for (size_t k = 0; k < len; k++) CHECK_EQ(lp2p_uvarint_decode(bytes, k, &dec), LP2P_ERR_AGAIN);
    /* trailing bytes are not consumed */
    uint8_t longer[16];
    memcpy(longer, bytes, len);
    memset(longer + len, 0xff, sizeof longer - len);
    CHECK_EQ(lp2p_uvarint_decode(longer, sizeof longer, NULL), (int)len);
    free(bytes);
  }
  json_free(doc);
}

TEST(varint_vectors_invalid) {
  json *doc = json_load_vector("varint.json");
  REQUIRE(doc);
  json *inv = json_get(doc, "invalid");
  REQUIRE(inv && inv->n == 3);
  for (size_t i = 0; i < inv->n; i++) {
    size_t blen;
    uint8_t *bytes = json_hex(json_at(inv, i), "hex", &blen);
    REQUIRE(bytes);
    uint64_t v = 77;
    int rv = lp2p_uvarint_decode(bytes, blen, &v);
    const char *reason = json_str(json_at(inv, i), "reason");
    if (strstr(reason, "truncated")) CHECK_EQ(rv, LP2P_ERR_AGAIN);
    else CHECK_EQ(rv, LP2P_ERR_VARINT);
    CHECK(v == 77); /* untouched on failure */
    free(bytes);
  }
  json_free(doc);
}

TEST(varint_edges) {
  uint8_t b[16];
  uint64_t v;
  CHECK_EQ(lp2p_uvarint_decode(NULL, 0, &v), LP2P_ERR_AGAIN);
  CHECK_EQ(lp2p_uvarint_encode(1ull << 63, b, sizeof b), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_uvarint_encode(UINT64_MAX, b, sizeof b), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_uvarint_encode(0, NULL, 0), LP2P_ERR_BUFSIZE);
  CHECK_EQ(lp2p_uvarint_encode(0, b, 0), LP2P_ERR_BUFSIZE);
  /* non-minimal forms of every length */
  static const uint8_t nm2[] = {0x80, 0x00}, nm3[] = {0xff, 0x80, 0x00}, nm9[] = {0x80, 0x80, 0x80, 0x80, 0x80,
                                                                                 0x80, 0x80, 0x80, 0x00};
  CHECK_EQ(lp2p_uvarint_decode(nm2, sizeof nm2, &v), LP2P_ERR_VARINT);
  CHECK_EQ(lp2p_uvarint_decode(nm3, sizeof nm3, &v), LP2P_ERR_VARINT);
  CHECK_EQ(lp2p_uvarint_decode(nm9, sizeof nm9, &v), LP2P_ERR_VARINT);
  /* 9 continuation bytes: too long even before the 10th arrives */
  memset(b, 0x80, 9);
  CHECK_EQ(lp2p_uvarint_decode(b, 9, &v), LP2P_ERR_VARINT);
  CHECK_EQ(lp2p_uvarint_decode(b, 8, &v), LP2P_ERR_AGAIN);
  memset(b, 0xff, 16);
  CHECK_EQ(lp2p_uvarint_decode(b, 16, &v), LP2P_ERR_VARINT);
  /* 2^56: the smallest 9-byte value */
  static const uint8_t p56[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
  CHECK_EQ(lp2p_uvarint_decode(p56, sizeof p56, &v), 9);
  CHECK(v == 1ull << 56);
  /* round trip around every 7-bit boundary */
  for (int s = 0; s < 63; s++) {
    uint64_t base = 1ull << s;
    uint64_t cands[3] = {base - 1, base, base + 1};
    for (int k = 0; k < 3; k++) {
      int n = lp2p_uvarint_encode(cands[k], b, sizeof b);
      CHECK(n > 0 && n <= 9);
      CHECK_EQ((size_t)n, lp2p_uvarint_size(cands[k]));
      CHECK_EQ(lp2p_uvarint_decode(b, (size_t)n, &v), n);
      CHECK(v == cands[k]);
    }
  }
  CHECK_EQ(lp2p_uvarint_size(0), 1);
  CHECK_EQ(lp2p_uvarint_size(127), 1);
  CHECK_EQ(lp2p_uvarint_size(128), 2);
  CHECK_EQ(lp2p_uvarint_size(INT64_MAX), 9);
}

/* ---- base58 ---- */

static const uint8_t yes_mani[] = "yes mani !";
#define YES_LEN 10

TEST(base58_known) {
  char t[64];
  size_t n;
  CHECK_OK(lp2p_base58_encode(yes_mani, YES_LEN, t, sizeof t, &n));
  CHECK_STR(t, "7paNL19xttacUY");
  CHECK_EQ(n, 14);
  uint8_t lz[YES_LEN + 1] = {0};
  memcpy(lz + 1, yes_mani, YES_LEN);
  CHECK_OK(lp2p_base58_encode(lz, sizeof lz, t, sizeof t, &n));
  CHECK_STR(t, "17paNL19xttacUY");
  uint8_t back[32];
  CHECK_OK(lp2p_base58_decode("17paNL19xttacUY", 15, back, sizeof back, &n));
  CHECK_EQ(n, sizeof lz);
  CHECK_MEM(back, lz, sizeof lz);
  /* empty, zeros only */
  CHECK_OK(lp2p_base58_encode(NULL, 0, t, 1, &n));
  CHECK_EQ(n, 0);
  CHECK_STR(t, "");
  CHECK_OK(lp2p_base58_decode("", 0, NULL, 0, &n));
  CHECK_EQ(n, 0);
  static const uint8_t z3[3] = {0};
  CHECK_OK(lp2p_base58_encode(z3, 3, t, sizeof t, &n));
  CHECK_STR(t, "111");
  CHECK_OK(lp2p_base58_decode("111", 3, back, sizeof back, &n));
  CHECK_EQ(n, 3);
  CHECK_MEM(back, z3, 3);
  /* single bytes: 0x39 -> "z" (57), 0x3a -> "21" */
  uint8_t one = 57;
  CHECK_OK(lp2p_base58_encode(&one, 1, t, sizeof t, &n));
  CHECK_STR(t, "z");
  one = 58;
  CHECK_OK(lp2p_base58_encode(&one, 1, t, sizeof t, &n));
  CHECK_STR(t, "21");
}

TEST(base58_invalid_and_bufsize) {
  uint8_t b[64];
  size_t n;
  const char *bad[] = {"0", "O", "I", "l", "abc+", "ab c", "\xc3\xa9", "12D3\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_EQ(lp2p_base58_decode(bad[i], strlen(bad[i]), b, sizeof b, &n), LP2P_ERR_PARSE);
  /* NUL inside the given length is a bad character too */
  CHECK_EQ(lp2p_base58_decode("1\0002", 3, b, sizeof b, &n), LP2P_ERR_PARSE);
  char t[32];
  /* "7paNL19xttacUY" needs 15 bytes with the NUL */
  CHECK_OK(lp2p_base58_encode(yes_mani, YES_LEN, t, 15, &n));
  CHECK_EQ(lp2p_base58_encode(yes_mani, YES_LEN, t, 14, &n), LP2P_ERR_BUFSIZE);
  CHECK_EQ(lp2p_base58_encode(yes_mani, YES_LEN, t, 0, &n), LP2P_ERR_BUFSIZE);
  CHECK_EQ(lp2p_base58_encode(yes_mani, YES_LEN, NULL, 0, &n), LP2P_ERR_BUFSIZE);
  static const uint8_t z3[3] = {0};
  CHECK_EQ(lp2p_base58_encode(z3, 3, t, 3, &n), LP2P_ERR_BUFSIZE);
  CHECK_OK(lp2p_base58_decode("7paNL19xttacUY", 14, b, YES_LEN, &n));
  CHECK_EQ(lp2p_base58_decode("7paNL19xttacUY", 14, b, YES_LEN - 1, &n), LP2P_ERR_BUFSIZE);
  CHECK_EQ(lp2p_base58_decode("111", 3, b, 2, &n), LP2P_ERR_BUFSIZE);
  CHECK_EQ(lp2p_base58_decode("7p", 2, NULL, 0, &n), LP2P_ERR_BUFSIZE);
  /* a long hostile input stops at cap */
  char big[2000];
  memset(big, 'z', sizeof big);
  CHECK_EQ(lp2p_base58_decode(big, sizeof big, b, sizeof b, &n), LP2P_ERR_BUFSIZE);
}

TEST(base58_roundtrip) {
  uint8_t in[80], back[80];
  char t[160];
  uint32_t x = 12345;
  for (size_t len = 0; len <= sizeof in; len++) {
    for (size_t i = 0; i < len; i++) {
      x = x * 1103515245u + 12345u;
      in[i] = (uint8_t)(x >> 16);
    }
    if (len > 2) in[0] = in[1] = 0; /* leading zeros */
    size_t n, m;
    REQUIRE(lp2p_base58_encode(in, len, t, sizeof t, &n) == LP2P_OK);
    CHECK_EQ(strlen(t), n);
    CHECK(n <= len * 138 / 100 + 1);
    REQUIRE(lp2p_base58_decode(t, n, back, sizeof back, &m) == LP2P_OK);
    CHECK_EQ(m, len);
    CHECK(m == 0 || !memcmp(back, in, len));
  }
}

/* ---- base32 ---- */

TEST(base32_rfc4648) {
  static const char *const vec[][2] = {{"", ""},          {"f", "my"},          {"fo", "mzxq"},
                                       {"foo", "mzxw6"},  {"foob", "mzxw6yq"},  {"fooba", "mzxw6ytb"},
                                       {"foobar", "mzxw6ytboi"}};
  for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
    char t[32];
    uint8_t b[32];
    size_t n;
    size_t il = strlen(vec[i][0]);
    CHECK_OK(lp2p_base32_encode((const uint8_t *)vec[i][0], il, t, sizeof t, &n));
    CHECK_STR(t, vec[i][1]);
    CHECK_EQ(n, strlen(vec[i][1]));
    CHECK_OK(lp2p_base32_decode(vec[i][1], n, b, sizeof b, &n));
    CHECK_EQ(n, il);
    CHECK(il == 0 || !memcmp(b, vec[i][0], il));
    /* upper case accepted */
    char up[32];
    for (size_t k = 0; k <= strlen(vec[i][1]); k++)
      up[k] = (char)(vec[i][1][k] >= 'a' && vec[i][1][k] <= 'z' ? vec[i][1][k] - 32 : vec[i][1][k]);
    CHECK_OK(lp2p_base32_decode(up, strlen(up), b, sizeof b, &n));
    CHECK_EQ(n, il);
  }
}

TEST(base32_invalid_and_bufsize) {
  uint8_t b[32];
  size_t n;
  /* padding, bad alphabet, impossible lengths, non-zero trailing bits */
  const char *bad[] = {"my======", "my=", "m1", "m0", "m8", "m9", "my!a", "m", "mzx", "mzxw6y", "mz",
                       "mzxr", "mzxw7", "mzxw6yr", "mzxw6ytboj", "a b"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_EQ(lp2p_base32_decode(bad[i], strlen(bad[i]), b, sizeof b, &n), LP2P_ERR_PARSE);
  char t[16];
  CHECK_OK(lp2p_base32_encode((const uint8_t *)"foobar", 6, t, 11, &n));
  CHECK_EQ(lp2p_base32_encode((const uint8_t *)"foobar", 6, t, 10, &n), LP2P_ERR_BUFSIZE);
  CHECK_EQ(lp2p_base32_encode((const uint8_t *)"foobar", 6, NULL, 0, &n), LP2P_ERR_BUFSIZE);
  CHECK_OK(lp2p_base32_decode("mzxw6ytboi", 10, b, 6, &n));
  CHECK_EQ(lp2p_base32_decode("mzxw6ytboi", 10, b, 5, &n), LP2P_ERR_BUFSIZE);
  CHECK_EQ(lp2p_base32_decode("mzxw6ytboi", 10, NULL, 0, &n), LP2P_ERR_BUFSIZE);
}

TEST(base32_roundtrip) {
  uint8_t in[41], back[41];
  char t[80];
  for (size_t len = 0; len <= sizeof in; len++) {
    for (size_t i = 0; i < len; i++) in[i] = (uint8_t)(i * 37 + len * 11 + 0x80);
    size_t n, m;
    REQUIRE(lp2p_base32_encode(in, len, t, sizeof t, &n) == LP2P_OK);
    CHECK_EQ(n, (len * 8 + 4) / 5);
    REQUIRE(lp2p_base32_decode(t, n, back, sizeof back, &m) == LP2P_OK);
    CHECK_EQ(m, len);
    CHECK(len == 0 || !memcmp(in, back, len));
  }
}

/* ---- multibase ---- */

TEST(multibase_known) {
  static const struct {
    char prefix;
    const char *text;
  } vec[] = {{'z', "z7paNL19xttacUY"},
             {'b', "bpfsxgidnmfxgsibb"},
             {'B', "BPFSXGIDNMFXGSIBB"},
             {'f', "f796573206d616e692021"},
             {'u', "ueWVzIG1hbmkgIQ"}};
  for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
    char t[64];
    uint8_t b[64];
    size_t n;
    CHECK_OK(lp2p_multibase_encode(vec[i].prefix, yes_mani, YES_LEN, t, sizeof t, &n));
    CHECK_STR(t, vec[i].text);
    CHECK_EQ(n, strlen(vec[i].text));
    CHECK_OK(lp2p_multibase_decode(vec[i].text, n, b, sizeof b, &n));
    CHECK_EQ(n, YES_LEN);
    CHECK_MEM(b, yes_mani, YES_LEN);
    /* exact capacity / one short */
    size_t need = strlen(vec[i].text) + 1;
    CHECK_OK(lp2p_multibase_encode(vec[i].prefix, yes_mani, YES_LEN, t, need, &n));
    CHECK_EQ(lp2p_multibase_encode(vec[i].prefix, yes_mani, YES_LEN, t, need - 1, &n), LP2P_ERR_BUFSIZE);
    CHECK_EQ(lp2p_multibase_decode(vec[i].text, strlen(vec[i].text), b, YES_LEN - 1, &n), LP2P_ERR_BUFSIZE);
  }
  /* leading zero byte (multibase tests/leading_zero.csv) */
  uint8_t lz[YES_LEN + 1] = {0};
  memcpy(lz + 1, yes_mani, YES_LEN);
  char t[64];
  size_t n;
  CHECK_OK(lp2p_multibase_encode('b', lz, sizeof lz, t, sizeof t, &n));
  CHECK_STR(t, "bab4wk4zanvqw42jaee");
  CHECK_OK(lp2p_multibase_encode('z', lz, sizeof lz, t, sizeof t, &n));
  CHECK_STR(t, "z17paNL19xttacUY");
  uint8_t b[64];
  CHECK_OK(lp2p_multibase_decode("F796573206D616E692021", 21, b, sizeof b, &n));
  CHECK_EQ(n, YES_LEN);
}

TEST(multibase_invalid) {
  uint8_t b[64];
  size_t n;
  char t[64];
  CHECK_EQ(lp2p_multibase_decode("", 0, b, sizeof b, &n), LP2P_ERR_MULTIBASE);
  CHECK_EQ(lp2p_multibase_decode("q123", 4, b, sizeof b, &n), LP2P_ERR_MULTIBASE);
  CHECK_EQ(lp2p_multibase_decode("m", 1, b, sizeof b, &n), LP2P_ERR_MULTIBASE); /* base64: unsupported */
  CHECK_EQ(lp2p_multibase_decode("z0", 2, b, sizeof b, &n), LP2P_ERR_MULTIBASE);
  CHECK_EQ(lp2p_multibase_decode("bmy=", 4, b, sizeof b, &n), LP2P_ERR_MULTIBASE);
  CHECK_EQ(lp2p_multibase_decode("bmz", 3, b, sizeof b, &n), LP2P_ERR_MULTIBASE);
  CHECK_EQ(lp2p_multibase_decode("ueWVzIG1hbmkgIQ==", 17, b, sizeof b, &n), LP2P_ERR_MULTIBASE);
  CHECK_EQ(lp2p_multibase_decode("ueWVzIG1hbmkgIR", 15, b, sizeof b, &n), LP2P_ERR_MULTIBASE); /* trailing bits */
  CHECK_EQ(lp2p_multibase_decode("ua", 2, b, sizeof b, &n), LP2P_ERR_MULTIBASE);               /* 1 char mod 4 */
  CHECK_EQ(lp2p_multibase_decode("ua+b", 4, b, sizeof b, &n), LP2P_ERR_MULTIBASE);             /* std alphabet */
  CHECK_EQ(lp2p_multibase_decode("f7", 2, b, sizeof b, &n), LP2P_ERR_MULTIBASE);
  CHECK_EQ(lp2p_multibase_decode("fzz", 3, b, sizeof b, &n), LP2P_ERR_MULTIBASE);
  CHECK_EQ(lp2p_multibase_encode('q', yes_mani, YES_LEN, t, sizeof t, &n), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_multibase_encode('z', yes_mani, YES_LEN, t, 1, &n), LP2P_ERR_BUFSIZE);
  /* prefix only: empty payload */
  CHECK_OK(lp2p_multibase_decode("b", 1, b, sizeof b, &n));
  CHECK_EQ(n, 0);
}

/* ---- multihash ---- */

TEST(multihash_sha256_known) {
  uint8_t mh[40];
  CHECK_EQ(lp2p_multihash_sha256((const uint8_t *)"hello world", 11, mh, sizeof mh), 34);
  size_t n;
  uint8_t want[34];
  CHECK_OK(lp2p_hex_decode("1220b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9", 68, want,
                           sizeof want, &n));
  CHECK_MEM(mh, want, 34);
  lp2p_multihash_view v;
  CHECK_OK(lp2p_multihash_parse(mh, 34, &v));
  CHECK(v.code == LP2P_MH_SHA2_256);
  CHECK_EQ(v.digest_len, 32);
  CHECK(v.digest == mh + 2);
  CHECK_EQ(lp2p_multihash_sha256((const uint8_t *)"x", 1, mh, 33), LP2P_ERR_BUFSIZE);
  /* sha256 of the empty string (well known) */
  CHECK_EQ(lp2p_multihash_sha256(NULL, 0, mh, sizeof mh), 34);
  CHECK_OK(lp2p_hex_decode("1220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 68, want,
                           sizeof want, &n));
  CHECK_MEM(mh, want, 34);
}

TEST(multihash_parse_encode) {
  uint8_t buf[300], dig[200];
  for (size_t i = 0; i < sizeof dig; i++) dig[i] = (uint8_t)i;
  lp2p_multihash_view v;
  /* identity: 0..128 bytes fine, 129 rejected */
  for (size_t d = 0; d <= LP2P_MH_MAX_DIGEST + 1; d++) {
    int n = lp2p_multihash_encode(LP2P_MH_IDENTITY, dig, d, buf, sizeof buf);
    REQUIRE(n == (int)(1 + lp2p_uvarint_size(d) + d));
    int rv = lp2p_multihash_parse(buf, (size_t)n, &v);
    if (d <= LP2P_MH_MAX_DIGEST) {
      CHECK_OK(rv);
      CHECK_EQ(v.digest_len, d);
      CHECK(v.code == 0);
      /* truncated by one byte, or one trailing byte */
      CHECK_EQ(lp2p_multihash_parse(buf, (size_t)n - 1, NULL), LP2P_ERR_MULTIHASH);
      CHECK_EQ(lp2p_multihash_parse(buf, (size_t)n + 1, NULL), LP2P_ERR_MULTIHASH);
    } else {
      CHECK_EQ(rv, LP2P_ERR_MULTIHASH);
    }
  }
  /* sha2-256 with a wrong length */
  static const uint8_t sha31[] = {0x12, 0x1f};
  uint8_t tmp[40] = {0x12, 0x1f};
  CHECK_EQ(lp2p_multihash_parse(tmp, 33, NULL), LP2P_ERR_MULTIHASH);
  CHECK_EQ(lp2p_multihash_parse(sha31, 2, NULL), LP2P_ERR_MULTIHASH);
  CHECK_EQ(lp2p_multihash_encode(LP2P_MH_SHA2_256, dig, 31, buf, sizeof buf), LP2P_ERR_INVAL);
  /* unknown code (sha2-512 = 0x13), non-minimal varints, empty, bad varint */
  tmp[0] = 0x13;
  tmp[1] = 0x20;
  CHECK_EQ(lp2p_multihash_parse(tmp, 34, NULL), LP2P_ERR_MULTIHASH);
  static const uint8_t nm_code[] = {0x80, 0x00, 0x00}, nm_len[] = {0x00, 0x80, 0x00}, trunc[] = {0x00, 0x85};
  CHECK_EQ(lp2p_multihash_parse(nm_code, 3, NULL), LP2P_ERR_MULTIHASH);
  CHECK_EQ(lp2p_multihash_parse(nm_len, 3, NULL), LP2P_ERR_MULTIHASH);
  CHECK_EQ(lp2p_multihash_parse(trunc, 2, NULL), LP2P_ERR_MULTIHASH);
  CHECK_EQ(lp2p_multihash_parse(NULL, 0, NULL), LP2P_ERR_MULTIHASH);
  CHECK_EQ(lp2p_multihash_parse(tmp, 1, NULL), LP2P_ERR_MULTIHASH);
  /* huge declared length must not overflow */
  static const uint8_t huge[] = {0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x01};
  CHECK_EQ(lp2p_multihash_parse(huge, sizeof huge, NULL), LP2P_ERR_MULTIHASH);
  /* encode buffer sizes, invalid code */
  CHECK_EQ(lp2p_multihash_encode(0, dig, 4, buf, 6), 6);
  CHECK_EQ(lp2p_multihash_encode(0, dig, 4, buf, 5), LP2P_ERR_BUFSIZE);
  CHECK_EQ(lp2p_multihash_encode(1ull << 63, dig, 4, buf, sizeof buf), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_multihash_encode(0x300, dig, 1, buf, sizeof buf), 4); /* any code encodes */
  CHECK_EQ(buf[0], 0x80);
  CHECK_EQ(buf[1], 0x06);
  /* in-place encode (digest already at the final position is fine with memmove) */
  memcpy(buf + 2, dig, 10);
  CHECK_EQ(lp2p_multihash_encode(0, buf + 2, 10, buf, sizeof buf), 12);
  CHECK_MEM(buf + 2, dig, 10);
}

/* ---- CID ---- */

TEST(cid_peer_id_spec_example) {
  /* peer-ids spec: QmYyQSo1... is the same peer as bafzbeie5745rp... */
  uint8_t mh[64], cid[80], back[80];
  size_t mhlen, n;
  const char *qm = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N";
  CHECK_OK(lp2p_base58_decode(qm, strlen(qm), mh, sizeof mh, &mhlen));
  REQUIRE(mhlen == 34);
  int cl = lp2p_cid_encode(LP2P_CODEC_LIBP2P_KEY, mh, mhlen, cid, sizeof cid);
  REQUIRE(cl == 36);
  CHECK_EQ(cid[0], 0x01);
  CHECK_EQ(cid[1], 0x72);
  char t[100];
  CHECK_OK(lp2p_multibase_encode('b', cid, (size_t)cl, t, sizeof t, &n));
  CHECK_STR(t, "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe");
  CHECK_OK(lp2p_multibase_decode(t, n, back, sizeof back, &n));
  uint64_t codec = 0;
  const uint8_t *m = NULL;
  size_t ml = 0;
  CHECK_OK(lp2p_cid_decode(back, n, &codec, &m, &ml));
  CHECK(codec == LP2P_CODEC_LIBP2P_KEY);
  CHECK_EQ(ml, mhlen);
  CHECK(m == back + 2);
  CHECK_MEM(m, mh, mhlen);
  CHECK_EQ(lp2p_cid_encode(LP2P_CODEC_LIBP2P_KEY, mh, mhlen, cid, 35), LP2P_ERR_BUFSIZE);
}

TEST(cid_peer_id_vectors) {
  json *doc = json_load_vector("peer-ids.json");
  REQUIRE(doc);
  json *vecs = json_get(doc, "vectors");
  REQUIRE(vecs && vecs->n >= 4);
  for (size_t i = 0; i < vecs->n; i++) {
    json *v = json_at(vecs, i);
    size_t mhlen;
    uint8_t *mh = json_hex(v, "peer_id_multihash", &mhlen);
    REQUIRE(mh);
    CHECK_OK(lp2p_multihash_parse(mh, mhlen, NULL));
    char t[128];
    size_t n;
    CHECK_OK(lp2p_base58_encode(mh, mhlen, t, sizeof t, &n));
    CHECK_STR(t, json_str(v, "peer_id_base58"));
    uint8_t cid[64];
    int cl = lp2p_cid_encode(LP2P_CODEC_LIBP2P_KEY, mh, mhlen, cid, sizeof cid);
    REQUIRE(cl > 0);
    CHECK_OK(lp2p_multibase_encode('b', cid, (size_t)cl, t, sizeof t, &n));
    CHECK_STR(t, json_str(v, "peer_id_cidv1_base32"));
    uint8_t back[64];
    CHECK_OK(lp2p_base58_decode(json_str(v, "peer_id_base58"), strlen(json_str(v, "peer_id_base58")), back,
                                sizeof back, &n));
    CHECK_EQ(n, mhlen);
    CHECK_MEM(back, mh, mhlen);
    free(mh);
  }
  json_free(doc);
}

TEST(cid_invalid) {
  uint8_t mh[34] = {0x12, 0x20};
  uint8_t c[64];
  CHECK_EQ(lp2p_cid_decode(mh, 34, NULL, NULL, NULL), LP2P_ERR_CID); /* bare multihash (CIDv0) */
  CHECK_EQ(lp2p_cid_decode(NULL, 0, NULL, NULL, NULL), LP2P_ERR_CID);
  c[0] = 0x02;
  c[1] = 0x72;
  memcpy(c + 2, mh, 34);
  CHECK_EQ(lp2p_cid_decode(c, 36, NULL, NULL, NULL), LP2P_ERR_CID);
  c[0] = 0x01;
  CHECK_OK(lp2p_cid_decode(c, 36, NULL, NULL, NULL));
  CHECK_EQ(lp2p_cid_decode(c, 35, NULL, NULL, NULL), LP2P_ERR_MULTIHASH);
  CHECK_EQ(lp2p_cid_decode(c, 2, NULL, NULL, NULL), LP2P_ERR_MULTIHASH);
  CHECK_EQ(lp2p_cid_decode(c, 1, NULL, NULL, NULL), LP2P_ERR_CID);
  static const uint8_t nm_version[] = {0x81, 0x00, 0x72, 0x00, 0x00};
  CHECK_EQ(lp2p_cid_decode(nm_version, sizeof nm_version, NULL, NULL, NULL), LP2P_ERR_CID);
  static const uint8_t bad_codec[] = {0x01, 0xf2, 0x80, 0x00, 0x00, 0x00};
  CHECK_EQ(lp2p_cid_decode(bad_codec, sizeof bad_codec, NULL, NULL, NULL), LP2P_ERR_CID);
  /* multi-byte codec round trip */
  static const uint8_t idmh[] = {0x00, 0x01, 0xaa};
  int n = lp2p_cid_encode(0x300, idmh, 3, c, sizeof c);
  CHECK_EQ(n, 6);
  uint64_t codec;
  CHECK_OK(lp2p_cid_decode(c, (size_t)n, &codec, NULL, NULL));
  CHECK(codec == 0x300);
  CHECK_EQ(lp2p_cid_encode(0x72, mh, 33, c, sizeof c), LP2P_ERR_MULTIHASH);
  CHECK_EQ(lp2p_cid_encode(1ull << 63, idmh, 3, c, sizeof c), LP2P_ERR_INVAL);
}

/* ---- hex ---- */

TEST(hex_all) {
  uint8_t in[256], back[256];
  for (int i = 0; i < 256; i++) in[i] = (uint8_t)i;
  char t[513];
  CHECK_EQ(lp2p_hex_encode(in, 256, t, sizeof t), 512);
  CHECK_EQ(strlen(t), 512);
  CHECK(!strncmp(t, "000102", 6));
  CHECK(!strcmp(t + 506, "fdfeff"));
  size_t n;
  CHECK_OK(lp2p_hex_decode(t, 512, back, sizeof back, &n));
  CHECK_EQ(n, 256);
  CHECK_MEM(back, in, 256);
  CHECK_OK(lp2p_hex_decode("DEADbeef", 8, back, 4, &n));
  CHECK_EQ(back[0], 0xde);
  CHECK_EQ(back[3], 0xef);
  CHECK_EQ(lp2p_hex_decode("DEADbeef", 8, back, 3, &n), LP2P_ERR_BUFSIZE);
  CHECK_EQ(lp2p_hex_decode("abc", 3, back, sizeof back, &n), LP2P_ERR_PARSE);
  CHECK_EQ(lp2p_hex_decode("zz", 2, back, sizeof back, &n), LP2P_ERR_PARSE);
  CHECK_EQ(lp2p_hex_decode("0g", 2, back, sizeof back, &n), LP2P_ERR_PARSE);
  CHECK_EQ(lp2p_hex_decode(" 0", 2, back, sizeof back, &n), LP2P_ERR_PARSE);
  CHECK_OK(lp2p_hex_decode("", 0, NULL, 0, &n));
  CHECK_EQ(n, 0);
  CHECK_EQ(lp2p_hex_encode(in, 2, t, 4), LP2P_ERR_BUFSIZE);
  CHECK_EQ(lp2p_hex_encode(in, 2, t, 5), 4);
  CHECK_EQ(lp2p_hex_encode(NULL, 0, t, 1), 0);
  CHECK_STR(t, "");
}

int main(void) {
  RUN(varint_vectors_valid);
  RUN(varint_vectors_invalid);
  RUN(varint_edges);
  RUN(base58_known);
  RUN(base58_invalid_and_bufsize);
  RUN(base58_roundtrip);
  RUN(base32_rfc4648);
  RUN(base32_invalid_and_bufsize);
  RUN(base32_roundtrip);
  RUN(multibase_known);
  RUN(multibase_invalid);
  RUN(multihash_sha256_known);
  RUN(multihash_parse_encode);
  RUN(cid_peer_id_spec_example);
  RUN(cid_peer_id_vectors);
  RUN(cid_invalid);
  RUN(hex_all);
  return test_done();
}
