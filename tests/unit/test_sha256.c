/* tests/unit/test_sha256.c - lp2p_sha256 (lp2p/encoding.h) against FIPS 180-4
 * examples, and agreement with the sha2-256 multihash. */
#include "lp2p/encoding.h"
#include "test.h"

static void hex_of(const uint8_t *d, char *out) { lp2p_hex_encode(d, LP2P_SHA256_LEN, out, 65); }

TEST(vectors) {
  uint8_t d[LP2P_SHA256_LEN];
  char h[65];
  lp2p_sha256(NULL, 0, d);
  hex_of(d, h);
  CHECK_STR(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  lp2p_sha256((const uint8_t *)"abc", 3, d);
  hex_of(d, h);
  CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  lp2p_sha256((const uint8_t *)m, strlen(m), d);
  hex_of(d, h);
  CHECK_STR(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  /* one million 'a' */
  static uint8_t a[1000000];
  memset(a, 'a', sizeof a);
  lp2p_sha256(a, sizeof a, d);
  hex_of(d, h);
  CHECK_STR(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  /* the multihash carries the same digest */
  uint8_t mh[34];
  CHECK_EQ(lp2p_multihash_sha256(a, sizeof a, mh, sizeof mh), 34);
  CHECK_MEM(mh + 2, d, 32);
}

int main(void) {
  RUN(vectors);
  return test_done();
}
