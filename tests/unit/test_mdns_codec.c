/* tests/unit/test_mdns_codec.c - the mDNS DNS message codec: vectors, compression, malformed input. */
#include <stdlib.h>

#include "json.h"
#include "mdns/engine/mdns_codec.h"
#include "test.h"

static uint8_t *vec_hex(const char *key, size_t *len) {
  json *j = json_load_vector("mdns-packets.json");
  if (!j) return NULL;
  uint8_t *b = json_hex(json_get(j, key), "hex", len);
  json_free(j);
  return b;
}

static lp2p_mdns_msg msg; /* large: keep off the stack */

static int count_type(const lp2p_mdns_msg *m, uint16_t type, int section) {
  int n = 0;
  for (size_t i = 0; i < m->nrr; i++)
    if (m->rr[i].type == type && (section < 0 || m->rr[i].section == section)) n++;
  return n;
}

static int txt_strings(const lp2p_mdns_record *r) {
  size_t off = 0, sl;
  const uint8_t *s;
  int n = 0;
  while (lp2p_mdns_txt_next(r->rdata, r->rdlen, &off, &s, &sl) == 1) n++;
  return n;
}

TEST(vector_query) {
  size_t n;
  uint8_t *b = vec_hex("query", &n);
  REQUIRE(b);
  CHECK_OK(lp2p_mdns_parse(b, n, &msg));
  CHECK_EQ(msg.nq, 1);
  CHECK_EQ(msg.nrr, 0);
  lp2p_mdns_name svc;
  CHECK_OK(lp2p_mdns_name_from_text(&svc, "_p2p._udp.local"));
  CHECK(lp2p_mdns_name_equal(&msg.q[0].name, &svc));
  CHECK_EQ(msg.q[0].type, LP2P_MDNS_TYPE_PTR);
  CHECK_EQ(msg.q[0].unicast, 0);
  /* Build the same query byte for byte. */
  uint8_t out[512];
  lp2p_mdns_builder bl;
  lp2p_mdns_build_init(&bl, out, sizeof out, 0, 0, 1);
  lp2p_mdns_build_question(&bl, &svc, LP2P_MDNS_TYPE_PTR, LP2P_MDNS_CLASS_IN);
  int len = lp2p_mdns_build_finish(&bl);
  CHECK_EQ(len, (int)n);
  CHECK_MEM(out, b, n);
  free(b);
}

TEST(vector_responses) {
  size_t n;
  uint8_t *b = vec_hex("response_js_style", &n);
  REQUIRE(b);
  CHECK_OK(lp2p_mdns_parse(b, n, &msg));
  CHECK_EQ(msg.flags, 0x8400);
  CHECK_EQ(msg.nq, 0);
  CHECK_EQ(count_type(&msg, LP2P_MDNS_TYPE_PTR, LP2P_MDNS_SEC_ANSWER), 1);
  CHECK_EQ(count_type(&msg, LP2P_MDNS_TYPE_TXT, LP2P_MDNS_SEC_ANSWER), 2);
  CHECK_EQ(msg.dropped, 0);
  char text[256];
  CHECK_EQ(lp2p_mdns_name_to_text(&msg.rr[0].target, text, sizeof text), 63 + 16);
  CHECK(!strncmp(text, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb._p2p._udp.local", 80));
  CHECK_EQ(msg.rr[0].ttl, 120);
  free(b);

  b = vec_hex("response_recommended", &n);
  REQUIRE(b);
  CHECK_OK(lp2p_mdns_parse(b, n, &msg));
  CHECK_EQ(msg.nrr, 4);
  CHECK_EQ(count_type(&msg, LP2P_MDNS_TYPE_PTR, LP2P_MDNS_SEC_ANSWER), 1);
  CHECK_EQ(count_type(&msg, LP2P_MDNS_TYPE_TXT, LP2P_MDNS_SEC_ADDITIONAL), 1);
  CHECK_EQ(count_type(&msg, LP2P_MDNS_TYPE_SRV, LP2P_MDNS_SEC_ADDITIONAL), 1);
  CHECK_EQ(count_type(&msg, LP2P_MDNS_TYPE_A, LP2P_MDNS_SEC_ADDITIONAL), 1);
  CHECK_EQ(txt_strings(&msg.rr[1]), 2);
  CHECK_EQ(msg.rr[2].srv_port, 4001);
  CHECK_EQ(lp2p_mdns_name_to_text(&msg.rr[2].target, text, sizeof text), 63 + 6);
  static const uint8_t ip[4] = {192, 168, 1, 10};
  CHECK_MEM(msg.rr[3].addr, ip, 4);
  free(b);
}

/* Every strict prefix of a valid packet breaks the framing and is rejected whole; nothing reads
 * past the end (ASan). */
TEST(truncated_everywhere) {
  const char *keys[] = {"query", "response_js_style", "response_recommended"};
  for (size_t k = 0; k < 3; k++) {
    size_t n;
    uint8_t *b = vec_hex(keys[k], &n);
    REQUIRE(b);
    for (size_t cut = 0; cut < n; cut++) {
      uint8_t *t = malloc(cut ? cut : 1);
      memcpy(t, b, cut);
      if (lp2p_mdns_parse(t, cut, &msg) != LP2P_ERR_PARSE) TEST_FAIL_("%s cut at %zu parsed", keys[k], cut);
      free(t);
    }
    CHECK_OK(lp2p_mdns_parse(b, n, &msg));
    free(b);
  }
}

/* A hand-made packet: header + given body. */
static size_t mk(uint8_t *out, uint16_t qd, uint16_t an, uint16_t ar, const uint8_t *body, size_t bl) {
  memset(out, 0, 12);
  out[2] = 0x84;
  out[5] = (uint8_t)qd;
  out[7] = (uint8_t)an;
  out[11] = (uint8_t)ar;
  memcpy(out + 12, body, bl);
  return 12 + bl;
}

TEST(pointer_rules) {
  uint8_t p[600];
  lp2p_mdns_name nm;
  size_t end;
  /* Self pointer at offset 12. */
  static const uint8_t self_ptr[] = {0xC0, 12, 0, 12, 0, 1};
  size_t n = mk(p, 1, 0, 0, self_ptr, sizeof self_ptr);
  CHECK_EQ(lp2p_mdns_parse(p, n, &msg), LP2P_ERR_PARSE);
  /* Two names pointing at each other: "a" + ptr->14 at 12, and at 14 a pointer back to 12. */
  static const uint8_t mutual[] = {1, 'a', 0xC0, 16, 0xC0, 12, 0, 12, 0, 1};
  n = mk(p, 1, 0, 0, mutual, sizeof mutual);
  CHECK_EQ(lp2p_mdns_name_decode(p, n, 12, &nm, &end), LP2P_ERR_PARSE);
  CHECK_EQ(lp2p_mdns_parse(p, n, &msg), LP2P_ERR_PARSE);
  /* A pointer into its own labels ("a" at 12, pointer to 12 at 14). */
  static const uint8_t inner[] = {1, 'a', 0xC0, 12, 0, 12, 0, 1};
  n = mk(p, 1, 0, 0, inner, sizeof inner);
  CHECK_EQ(lp2p_mdns_parse(p, n, &msg), LP2P_ERR_PARSE);
  /* Forward pointer: question name points to a later valid name. */
  static const uint8_t fwd[] = {0xC0, 18, 0, 12, 0, 1, 1, 'b', 0};
  n = mk(p, 1, 0, 0, fwd, sizeof fwd);
  CHECK_EQ(lp2p_mdns_name_decode(p, n, 12, &nm, &end), LP2P_ERR_PARSE);
  /* Backward pointer works: 2nd question "x" + ptr to first name. */
  static const uint8_t back[] = {1, 'b', 5, 'l', 'o', 'c', 'a', 'l', 0, 0, 12, 0, 1, 1, 'x', 0xC0, 12, 0, 12, 0, 1};
  n = mk(p, 2, 0, 0, back, sizeof back);
  CHECK_OK(lp2p_mdns_parse(p, n, &msg));
  CHECK_EQ(msg.nq, 2);
  char text[64];
  CHECK_EQ(lp2p_mdns_name_to_text(&msg.q[1].name, text, sizeof text), 9);
  CHECK_STR(text, "x.b.local");
  /* Chains: 16 hops accepted, 17 rejected. Layout: root at 12, then pointers each to the previous. */
  for (int hops = 16; hops <= 17; hops++) {
    uint8_t body[64];
    size_t o = 0;
    body[o++] = 0; /* root name at 12 */
    for (int h = 0; h < hops; h++) {
      size_t target = h == 0 ? 12 : 12 + 1 + 2 * (size_t)(h - 1);
      body[o++] = 0xC0;
      body[o++] = (uint8_t)target;
    }
    n = mk(p, 0, 0, 0, body, o);
    size_t last = 12 + 1 + 2 * (size_t)(hops - 1);
    int rv = lp2p_mdns_name_decode(p, n, last, &nm, &end);
    if (hops == 16) {
      CHECK_OK(rv);
      CHECK_EQ(end, last + 2);
    } else {
      CHECK_EQ(rv, LP2P_ERR_PARSE);
    }
  }
  /* Label types 0x40 and 0x80 are rejected. */
  static const uint8_t ext[] = {0x41, 0, 12, 0, 1};
  n = mk(p, 1, 0, 0, ext, sizeof ext);
  CHECK_EQ(lp2p_mdns_parse(p, n, &msg), LP2P_ERR_PARSE);
}

TEST(name_limits) {
  uint8_t p[700], body[600];
  /* Name of 4 labels x 63 + root = 257 bytes > 255: rejected. */
  size_t o = 0;
  for (int l = 0; l < 4; l++) {
    body[o++] = 63;
    memset(body + o, 'a', 63);
    o += 63;
  }
  body[o++] = 0;
  body[o++] = 0, body[o++] = 12, body[o++] = 0, body[o++] = 1;
  size_t n = mk(p, 1, 0, 0, body, o);
  CHECK_EQ(lp2p_mdns_parse(p, n, &msg), LP2P_ERR_PARSE);
  /* 3 x 63 + 1 x 61 + root = 255: accepted. */
  body[3 * 64] = 61;
  memmove(body + 3 * 64 + 62, body + 4 * 64, 5);
  n = mk(p, 1, 0, 0, body, 3 * 64 + 62 + 5);
  CHECK_OK(lp2p_mdns_parse(p, n, &msg));
  CHECK_EQ(msg.q[0].name.len, 255);
  lp2p_mdns_name nm;
  char longl[70];
  memset(longl, 'x', 64);
  longl[64] = 0;
  CHECK_EQ(lp2p_mdns_name_from_text(&nm, longl), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_mdns_name_from_text(&nm, "a..b"), LP2P_ERR_INVAL);
}

/* One answer TXT with a string overrunning RDLENGTH, one with the wrong class, one A of 5 bytes,
 * one unknown type and one good TXT: only the bad ones are dropped. */
TEST(bad_record_drops_only_itself) {
  uint8_t body[200], p[256];
  size_t o = 0;
#define NAME1() (body[o++] = 1, body[o++] = 'x', body[o++] = 0)
#define HDR(type, cls, rdlen) \
  (body[o++] = 0, body[o++] = (type), body[o++] = (uint8_t)((cls) >> 8), body[o++] = (uint8_t)(cls), body[o++] = 0, \
   body[o++] = 0, body[o++] = 0, body[o++] = 120, body[o++] = 0, body[o++] = (rdlen))
  NAME1(); HDR(16, 1, 4); body[o++] = 200; body[o++] = 'a'; body[o++] = 'b'; body[o++] = 'c'; /* overrun: dropped */
  NAME1(); HDR(16, 3, 2); body[o++] = 1; body[o++] = 'z';                                   /* CHAOS: dropped */
  NAME1(); HDR(1, 1, 5); memset(body + o, 1, 5); o += 5;                                    /* A len 5: dropped */
  NAME1(); HDR(99, 1, 1); body[o++] = 7;                                                    /* unknown: skipped */
  NAME1(); HDR(16, 0x8001, 3); body[o++] = 2; body[o++] = 'o'; body[o++] = 'k';             /* kept, cache-flush */
  size_t n = mk(p, 0, 5, 0, body, o);
  CHECK_OK(lp2p_mdns_parse(p, n, &msg));
  CHECK_EQ(msg.nrr, 1);
  CHECK_EQ(msg.dropped, 3);
  CHECK_EQ(msg.skipped, 1);
  CHECK_EQ(msg.rr[0].type, 16);
  CHECK_EQ(msg.rr[0].cache_flush, 1);
  CHECK_EQ(txt_strings(&msg.rr[0]), 1);
  /* RDLENGTH past the end breaks the framing: packet rejected. */
  p[n - 4] = 4;
  CHECK_EQ(lp2p_mdns_parse(p, n, &msg), LP2P_ERR_PARSE);
#undef NAME1
#undef HDR
}

TEST(huge_counts) {
  uint8_t p[12] = {0, 0, 0x84, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  CHECK_EQ(lp2p_mdns_parse(p, sizeof p, &msg), LP2P_ERR_PARSE);
  /* 2000 empty-name records are framed, the first 64 kept, the rest skipped. */
  size_t n = 12 + 2000 * 11;
  uint8_t *big = calloc(1, n);
  big[6] = 2000 >> 8;
  big[7] = 2000 & 0xFF;
  for (size_t i = 0; i < 2000; i++) {
    uint8_t *r = big + 12 + i * 11;
    r[2] = 1;  /* type A */
    r[4] = 1;  /* class IN */
    r[10] = 0; /* rdlen 0: dropped (A needs 4) */
  }
  CHECK_EQ(lp2p_mdns_parse(big, n, &msg), LP2P_ERR_PARSE); /* > 9000 bytes */
  n = 12 + 800 * 11;
  big[6] = 800 >> 8;
  big[7] = 800 & 0xFF;
  CHECK_OK(lp2p_mdns_parse(big, n, &msg));
  CHECK_EQ(msg.nrr, 0);
  CHECK_EQ(msg.dropped + msg.skipped, 800);
  free(big);
}

TEST(compression_roundtrip) {
  uint8_t a[1500], c[1500];
  lp2p_mdns_name svc, inst, host;
  lp2p_mdns_name_from_text(&svc, "_p2p._udp.local");
  lp2p_mdns_name_from_text(&inst, "abcdefghijabcdefghijabcdefghij12._p2p._udp.local");
  lp2p_mdns_name_from_text(&host, "ABCDEFGHIJabcdefghijabcdefghij12.local");
  int lens[2];
  for (int compress = 0; compress < 2; compress++) {
    uint8_t *buf = compress ? c : a;
    lp2p_mdns_builder b;
    lp2p_mdns_build_init(&b, buf, 1500, 7, 0x8400, compress);
    lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ANSWER, &svc, LP2P_MDNS_TYPE_PTR, 1, 120);
    lp2p_mdns_build_name(&b, &inst);
    lp2p_mdns_build_rr_end(&b);
    lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ADDITIONAL, &inst, LP2P_MDNS_TYPE_SRV, 1, 120);
    lp2p_mdns_build_u16(&b, 0);
    lp2p_mdns_build_u16(&b, 0);
    lp2p_mdns_build_u16(&b, 9);
    lp2p_mdns_build_name(&b, &host);
    lp2p_mdns_build_rr_end(&b);
    lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ADDITIONAL, &host, LP2P_MDNS_TYPE_A, 1, 120);
    lp2p_mdns_build_bytes(&b, "\x0a\x00\x00\x01", 4);
    lp2p_mdns_build_rr_end(&b);
    lens[compress] = lp2p_mdns_build_finish(&b);
    CHECK(lens[compress] > 0);
    CHECK_OK(lp2p_mdns_parse(buf, (size_t)lens[compress], &msg));
    CHECK_EQ(msg.nrr, 3);
    CHECK(lp2p_mdns_name_equal(&msg.rr[0].target, &inst));
    CHECK(lp2p_mdns_name_equal(&msg.rr[1].name, &inst));
    CHECK(lp2p_mdns_name_equal(&msg.rr[1].target, &host));
    CHECK(lp2p_mdns_name_equal(&msg.rr[2].name, &host));
    CHECK_EQ(msg.rr[1].srv_port, 9);
  }
  /* instance: 33 + ptr; srv owner: ptr; host: 33 + ptr ("local"); A owner: ptr. */
  CHECK(lens[1] < lens[0] - 60);
  /* Builder limits: full buffer is a sticky BUFSIZE; strings > 255 are INVAL. */
  lp2p_mdns_builder b;
  lp2p_mdns_build_init(&b, a, 40, 0, 0, 1);
  CHECK_EQ(lp2p_mdns_build_question(&b, &inst, 12, 1), LP2P_ERR_BUFSIZE);
  CHECK_EQ(lp2p_mdns_build_finish(&b), LP2P_ERR_BUFSIZE);
  lp2p_mdns_build_init(&b, a, 1500, 0, 0, 1);
  lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ANSWER, &inst, LP2P_MDNS_TYPE_TXT, 1, 120);
  char big[256];
  memset(big, 'q', sizeof big);
  CHECK_EQ(lp2p_mdns_build_string(&b, big, 256), LP2P_ERR_INVAL);
  /* Sections out of order. */
  lp2p_mdns_build_init(&b, a, 1500, 0, 0, 1);
  lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ADDITIONAL, &svc, LP2P_MDNS_TYPE_PTR, 1, 1);
  lp2p_mdns_build_name(&b, &inst);
  lp2p_mdns_build_rr_end(&b);
  CHECK_EQ(lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ANSWER, &svc, LP2P_MDNS_TYPE_PTR, 1, 1), LP2P_ERR_INVAL);
}

/* Random mutations of the vectors: never a crash or an out-of-bounds read (ASan), and any packet
 * that parses re-parses identically. */
TEST(mutations) {
  const char *keys[] = {"query", "response_js_style", "response_recommended"};
  uint32_t x = 12345;
  for (size_t k = 0; k < 3; k++) {
    size_t n;
    uint8_t *b = vec_hex(keys[k], &n);
    REQUIRE(b);
    uint8_t *t = malloc(n);
    for (int round = 0; round < 20000; round++) {
      memcpy(t, b, n);
      int flips = 1 + round % 4;
      for (int f = 0; f < flips; f++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        t[x % n] = (uint8_t)(x >> 8);
      }
      if (lp2p_mdns_parse(t, n, &msg) == 0) {
        size_t nrr = msg.nrr;
        CHECK_OK(lp2p_mdns_parse(t, n, &msg));
        CHECK_EQ(msg.nrr, nrr);
      }
    }
    free(t);
    free(b);
  }
}

int main(void) {
  RUN(vector_query);
  RUN(vector_responses);
  RUN(truncated_everywhere);
  RUN(pointer_rules);
  RUN(name_limits);
  RUN(bad_record_drops_only_itself);
  RUN(huge_counts);
  RUN(compression_roundtrip);
  RUN(mutations);
  return test_done();
}
