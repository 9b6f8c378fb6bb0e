/* tests/unit/test_lpm.c - lp2p/lpm.h: length-prefixed framing, fed split at
 * every byte offset, zero copy, limits, malformed prefixes, EOF detection. */
#include "lp2p/lpm.h"
#include "test.h"
#include "failmem.h"

/* Collects messages read from a stream fed in pieces. */
typedef struct {
  uint8_t data[8192];
  size_t len;
  size_t n_msgs;
  size_t lens[64];
  int zero_copy; /* messages returned in place */
} sink;

static int feed(lp2p_lpm_reader *r, const uint8_t *p, size_t n, sink *k) {
  while (n > 0) {
    size_t used = 99;
    const uint8_t *m = NULL;
    size_t mlen = 0;
    int rv = lp2p_lpm_read(r, p, n, &used, &m, &mlen);
    if (rv < 0) {
      if (used != 0) return -1000;
      return rv;
    }
    if (used > n) return -1001;
    if (rv == 0 && used != n) return -1002;
    if (rv == 1) {
      if (!m) return -1003;
      if (m >= p && m + mlen <= p + n) k->zero_copy++;
      memcpy(k->data + k->len, m, mlen);
      k->len += mlen;
      if (k->n_msgs < 64) k->lens[k->n_msgs] = mlen;
      k->n_msgs++;
    }
    if (rv == 0 && used == 0) return -1004;
    p += used;
    n -= used;
  }
  return 0;
}

/* Builds a stream of frames of the given payload lengths (payload byte i of frame f = f * 31 + i). */
static size_t build(const size_t *lens, size_t n, uint8_t *out, size_t cap, uint8_t *payloads, size_t *plen) {
  size_t off = 0, po = 0;
  for (size_t f = 0; f < n; f++) {
    uint8_t tmp[1024];
    for (size_t i = 0; i < lens[f]; i++) tmp[i] = (uint8_t)(f * 31 + i);
    int64_t w = lp2p_lpm_write(tmp, lens[f], out + off, cap - off);
    if (w < 0) return 0;
    off += (size_t)w;
    memcpy(payloads + po, tmp, lens[f]);
    po += lens[f];
  }
  *plen = po;
  return off;
}

TEST(writer_basics) {
  uint8_t out[16];
  CHECK_EQ(lp2p_lpm_write((const uint8_t *)"abc", 3, out, sizeof out), 4);
  CHECK_EQ(out[0], 3);
  CHECK_MEM(out + 1, "abc", 3);
  CHECK_EQ(lp2p_lpm_write(NULL, 0, out, sizeof out), 1);
  CHECK_EQ(out[0], 0);
  CHECK_EQ(lp2p_lpm_write((const uint8_t *)"abc", 3, out, 3), LP2P_ERR_BUFSIZE);
  CHECK_EQ(lp2p_lpm_write((const uint8_t *)"abc", 3, out, 0), LP2P_ERR_BUFSIZE);
  CHECK_EQ(lp2p_lpm_frame_size(0), 1);
  CHECK_EQ(lp2p_lpm_frame_size(127), 128);
  CHECK_EQ(lp2p_lpm_frame_size(128), 130);
  CHECK_EQ(lp2p_lpm_write_prefix(300, out, sizeof out), 2);
  CHECK_EQ(out[0], 0xac);
  CHECK_EQ(out[1], 0x02);
  CHECK_EQ(lp2p_lpm_write_prefix(300, out, 1), LP2P_ERR_BUFSIZE);
  uint8_t pre[LP2P_LPM_PREFIX_MAX];
  lp2p_lpm_iov iov[2];
  static uint8_t big[200];
  CHECK_EQ(lp2p_lpm_write_iov(big, sizeof big, pre, iov), 202);
  CHECK(iov[0].base == pre);
  CHECK_EQ(iov[0].len, 2);
  CHECK(iov[1].base == big);
  CHECK_EQ(iov[1].len, 200);
  CHECK_EQ(pre[0], 0xc8);
  CHECK_EQ(pre[1], 0x01);
}

/* Every stream, split into two pieces at every offset and also fed byte by byte. */
TEST(split_at_every_offset) {
  static const size_t lens[] = {0, 1, 127, 128, 300, 0, 5, 1000};
  const size_t nf = sizeof lens / sizeof lens[0];
  uint8_t stream[4096], payloads[4096];
  size_t plen;
  size_t slen = build(lens, nf, stream, sizeof stream, payloads, &plen);
  REQUIRE(slen > 0);
  for (size_t cut = 0; cut <= slen; cut++) {
    lp2p_lpm_reader *r;
    REQUIRE(lp2p_lpm_reader_new(&r, 1000, NULL) == 0);
    static sink k;
    memset(&k, 0, sizeof k);
    CHECK_EQ(feed(r, stream, cut, &k), 0);
    if (cut > 0 && cut < slen) {
      /* at a boundary exactly when the cut falls between frames */
      size_t b = 0, at_boundary = 0;
      for (size_t f = 0; f < nf && b <= cut; f++) {
        if (b == cut) at_boundary = 1;
        b += lp2p_lpm_frame_size(lens[f]);
      }
      if (b == cut) at_boundary = 1;
      CHECK_EQ(lp2p_lpm_reader_finish(r), at_boundary ? 0 : LP2P_ERR_EOF);
      CHECK_EQ(lp2p_lpm_reader_pending(r) == 0, at_boundary);
    }
    CHECK_EQ(feed(r, stream + cut, slen - cut, &k), 0);
    CHECK_EQ(k.n_msgs, nf);
    CHECK_EQ(k.len, plen);
    CHECK_MEM(k.data, payloads, plen);
    for (size_t f = 0; f < nf; f++) CHECK_EQ(k.lens[f], lens[f]);
    CHECK_EQ(lp2p_lpm_reader_finish(r), 0);
    CHECK_EQ(lp2p_lpm_reader_count(r), nf);
    lp2p_lpm_reader_free(r);
    if (test__cur_failed) {
      fprintf(stderr, "  (cut at %zu)\n", cut);
      return;
    }
  }
  /* byte by byte */
  lp2p_lpm_reader *r;
  REQUIRE(lp2p_lpm_reader_new(&r, 1000, NULL) == 0);
  static sink k;
  memset(&k, 0, sizeof k);
  for (size_t i = 0; i < slen; i++) CHECK_EQ(feed(r, stream + i, 1, &k), 0);
  CHECK_EQ(k.n_msgs, nf);
  CHECK_MEM(k.data, payloads, plen);
  CHECK_EQ(k.zero_copy, 3); /* the empty messages, and the 1-byte one (its payload is one whole input) */
  lp2p_lpm_reader_free(r);
}

/* Three pieces: every pair of cut points over a smaller stream. */
TEST(split_at_every_pair_of_offsets) {
  static const size_t lens[] = {3, 0, 130, 2};
  uint8_t stream[512], payloads[512];
  size_t plen;
  size_t slen = build(lens, 4, stream, sizeof stream, payloads, &plen);
  for (size_t a = 0; a <= slen; a++) {
    for (size_t b = a; b <= slen; b++) {
      lp2p_lpm_reader *r;
      REQUIRE(lp2p_lpm_reader_new(&r, 200, NULL) == 0);
      static sink k;
      memset(&k, 0, sizeof k);
      CHECK_EQ(feed(r, stream, a, &k), 0);
      CHECK_EQ(feed(r, stream + a, b - a, &k), 0);
      CHECK_EQ(feed(r, stream + b, slen - b, &k), 0);
      CHECK_EQ(k.n_msgs, 4);
      CHECK_MEM(k.data, payloads, plen);
      CHECK_EQ(lp2p_lpm_reader_finish(r), 0);
      lp2p_lpm_reader_free(r);
      if (test__cur_failed) return;
    }
  }
}

TEST(zero_copy_whole_input) {
  static const size_t lens[] = {10, 200, 0};
  uint8_t stream[512], payloads[512];
  size_t plen;
  size_t slen = build(lens, 3, stream, sizeof stream, payloads, &plen);
  lp2p_lpm_reader *r;
  REQUIRE(lp2p_lpm_reader_new(&r, 1024, NULL) == 0);
  static sink k;
  memset(&k, 0, sizeof k);
  CHECK_EQ(feed(r, stream, slen, &k), 0);
  CHECK_EQ(k.n_msgs, 3);
  CHECK_EQ(k.zero_copy, 3);
  /* the prefix split off, the payload in one piece: still in place */
  memset(&k, 0, sizeof k);
  CHECK_EQ(feed(r, stream + 11, 1, &k), 0); /* first byte of the 2-byte prefix of the 200-byte frame */
  CHECK_EQ(feed(r, stream + 12, 201, &k), 0);
  CHECK_EQ(k.n_msgs, 1);
  CHECK_EQ(k.zero_copy, 1);
  lp2p_lpm_reader_free(r);
}

TEST(limits) {
  uint8_t frame[400];
  static uint8_t pay[300];
  int64_t w = lp2p_lpm_write(pay, 300, frame, sizeof frame);
  REQUIRE(w == 302);
  lp2p_lpm_reader *r;
  REQUIRE(lp2p_lpm_reader_new(&r, 299, NULL) == 0);
  size_t used;
  const uint8_t *m;
  size_t ml;
  /* reported as soon as the prefix is complete, even split */
  CHECK_EQ(lp2p_lpm_read(r, frame, 1, &used, &m, &ml), 0);
  CHECK_EQ(used, 1);
  CHECK_EQ(lp2p_lpm_read(r, frame + 1, 1, &used, &m, &ml), LP2P_ERR_TOO_LARGE);
  CHECK_EQ(used, 0);
  CHECK_EQ(lp2p_lpm_read(r, frame + 2, 10, &used, &m, &ml), LP2P_ERR_TOO_LARGE); /* sticky */
  CHECK_EQ(lp2p_lpm_reader_finish(r), LP2P_ERR_TOO_LARGE);
  lp2p_lpm_reader_reset(r);
  CHECK_EQ(lp2p_lpm_reader_finish(r), 0);
  CHECK_EQ(lp2p_lpm_read(r, frame, sizeof frame, &used, &m, &ml), LP2P_ERR_TOO_LARGE);
  lp2p_lpm_reader_free(r);
  /* exactly the limit passes; limit 0 accepts empty messages only */
  REQUIRE(lp2p_lpm_reader_new(&r, 300, NULL) == 0);
  CHECK_EQ(lp2p_lpm_read(r, frame, 302, &used, &m, &ml), 1);
  CHECK_EQ(ml, 300);
  lp2p_lpm_reader_free(r);
  REQUIRE(lp2p_lpm_reader_new(&r, 0, NULL) == 0);
  uint8_t z[2] = {0, 1};
  CHECK_EQ(lp2p_lpm_read(r, z, 2, &used, &m, &ml), 1);
  CHECK_EQ(used, 1);
  CHECK_EQ(ml, 0);
  CHECK_EQ(lp2p_lpm_read(r, z + 1, 1, &used, &m, &ml), LP2P_ERR_TOO_LARGE);
  lp2p_lpm_reader_free(r);
  /* a huge announced length (2^62) */
  REQUIRE(lp2p_lpm_reader_new(&r, SIZE_MAX / 2, NULL) == 0);
  uint8_t huge[9] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40};
  CHECK_EQ(lp2p_lpm_read(r, huge, 9, &used, &m, &ml), 0); /* accepted: waits for payload */
  CHECK_EQ(lp2p_lpm_reader_finish(r), LP2P_ERR_EOF);
  lp2p_lpm_reader_free(r);
}

TEST(malformed_prefix) {
  size_t used;
  const uint8_t *m;
  size_t ml;
  lp2p_lpm_reader *r;
  /* overlong (non-minimal) encodings of small values, whole and split */
  static const uint8_t over[][3] = {{0x80, 0x00}, {0x81, 0x00}, {0xff, 0x80, 0x00}};
  static const size_t over_len[] = {2, 2, 3};
  for (size_t i = 0; i < 3; i++) {
    for (size_t cut = 0; cut <= over_len[i]; cut++) {
      REQUIRE(lp2p_lpm_reader_new(&r, 1 << 20, NULL) == 0);
      int rv = 0;
      if (cut) rv = lp2p_lpm_read(r, over[i], cut, &used, &m, &ml);
      if (rv == 0 && cut < over_len[i]) rv = lp2p_lpm_read(r, over[i] + cut, over_len[i] - cut, &used, &m, &ml);
      CHECK_EQ(rv, LP2P_ERR_PROTO);
      lp2p_lpm_reader_free(r);
    }
  }
  /* ten continuation bytes: longer than 9 */
  uint8_t ten[10];
  memset(ten, 0xff, sizeof ten);
  REQUIRE(lp2p_lpm_reader_new(&r, SIZE_MAX, NULL) == 0);
  CHECK_EQ(lp2p_lpm_read(r, ten, 8, &used, &m, &ml), 0);
  CHECK_EQ(lp2p_lpm_reader_pending(r), 8);
  CHECK_EQ(lp2p_lpm_read(r, ten + 8, 2, &used, &m, &ml), LP2P_ERR_PROTO);
  lp2p_lpm_reader_free(r);
  REQUIRE(lp2p_lpm_reader_new(&r, SIZE_MAX, NULL) == 0);
  CHECK_EQ(lp2p_lpm_read(r, ten, 10, &used, &m, &ml), LP2P_ERR_PROTO);
  lp2p_lpm_reader_free(r);
  /* bad arguments */
  CHECK_EQ(lp2p_lpm_reader_new(NULL, 1, NULL), LP2P_ERR_INVAL);
  REQUIRE(lp2p_lpm_reader_new(&r, 10, NULL) == 0);
  CHECK_EQ(lp2p_lpm_read(r, NULL, 3, &used, &m, &ml), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_lpm_read(r, NULL, 0, &used, &m, &ml), 0);
  lp2p_lpm_reader_free(r);
  lp2p_lpm_reader_free(NULL);
}

TEST(eof_inside_message) {
  uint8_t frame[8];
  CHECK_EQ(lp2p_lpm_write((const uint8_t *)"hello", 5, frame, sizeof frame), 6);
  for (size_t cut = 1; cut < 6; cut++) {
    lp2p_lpm_reader *r;
    REQUIRE(lp2p_lpm_reader_new(&r, 10, NULL) == 0);
    size_t used;
    const uint8_t *m;
    size_t ml;
    CHECK_EQ(lp2p_lpm_read(r, frame, cut, &used, &m, &ml), 0);
    CHECK_EQ(lp2p_lpm_reader_pending(r), cut);
    CHECK_EQ(lp2p_lpm_reader_finish(r), LP2P_ERR_EOF);
    lp2p_lpm_reader_free(r);
  }
}

/* A large message assembled across many pieces, then a reader that drops the large buffer. */
TEST(large_buffered) {
  static uint8_t pay[200000], frame[200010];
  for (size_t i = 0; i < sizeof pay; i++) pay[i] = (uint8_t)(i * 7);
  int64_t w = lp2p_lpm_write(pay, sizeof pay, frame, sizeof frame);
  REQUIRE(w > 0);
  lp2p_lpm_reader *r;
  REQUIRE(lp2p_lpm_reader_new(&r, sizeof pay, NULL) == 0);
  size_t off = 0, got = 0;
  while (off < (size_t)w) {
    size_t n = (size_t)w - off < 4093 ? (size_t)w - off : 4093;
    size_t used;
    const uint8_t *m;
    size_t ml;
    int rv = lp2p_lpm_read(r, frame + off, n, &used, &m, &ml);
    REQUIRE(rv >= 0);
    if (rv == 1) {
      CHECK_EQ(ml, sizeof pay);
      CHECK_MEM(m, pay, sizeof pay);
      got++;
    }
    off += used;
  }
  CHECK_EQ(got, 1);
  uint8_t small[3] = {2, 'o', 'k'};
  size_t used;
  const uint8_t *m;
  size_t ml;
  CHECK_EQ(lp2p_lpm_read(r, small, 3, &used, &m, &ml), 1);
  CHECK_MEM(m, "ok", 2);
  lp2p_lpm_reader_free(r);
}

/* Allocation failures: NOMEM is reported and sticky, never a crash or leak. */
TEST(out_of_memory) {
  uint8_t frame[600];
  static uint8_t pay[500];
  int64_t w = lp2p_lpm_write(pay, sizeof pay, frame, sizeof frame);
  REQUIRE(w > 0);
  for (int fail_at = 1; fail_at <= 4; fail_at++) {
    failmem fm;
    failmem_init(&fm, fail_at);
    lp2p_lpm_reader *r;
    int rv = lp2p_lpm_reader_new(&r, 1000, &fm.mem);
    if (rv == LP2P_ERR_NOMEM) continue;
    REQUIRE(rv == 0);
    size_t used, off = 0;
    const uint8_t *m;
    size_t ml;
    int saw_nomem = 0, got = 0;
    while (off < (size_t)w) {
      rv = lp2p_lpm_read(r, frame + off, 100 < (size_t)w - off ? 100 : (size_t)w - off, &used, &m, &ml);
      if (rv == LP2P_ERR_NOMEM) {
        saw_nomem = 1;
        CHECK_EQ(lp2p_lpm_read(r, frame + off, 1, &used, &m, &ml), LP2P_ERR_NOMEM);
        break;
      }
      REQUIRE(rv >= 0);
      got += rv;
      off += used;
    }
    CHECK(saw_nomem || got == 1);
    lp2p_lpm_reader_free(r);
    CHECK_EQ(fm.live, 0);
  }
}

int main(void) {
  RUN(writer_basics);
  RUN(split_at_every_offset);
  RUN(split_at_every_pair_of_offsets);
  RUN(zero_copy_whole_input);
  RUN(limits);
  RUN(malformed_prefix);
  RUN(eof_inside_message);
  RUN(large_buffered);
  RUN(out_of_memory);
  return test_done();
}
