/* tests/unit/test_pairing_code.c - pairing codes: the word list, parsing (full words, 4-letter
 * prefixes, any case), the check and what it catches (typo statistics), generation, and the
 * rendezvous identifiers (which depend on the nameplate only). */
#include <sodium.h>

#include "protocols/pairing/engine/pair_int.h"
#include "test.h"

/* deterministic RNG for reproducible statistics */
typedef struct { uint64_t s; } xrng;
static void xrng_fill(void *ctx, uint8_t *b, size_t n) {
  xrng *r = ctx;
  for (size_t i = 0; i < n; i++) {
    r->s ^= r->s << 13, r->s ^= r->s >> 7, r->s ^= r->s << 17;
    b[i] = (uint8_t)(r->s >> 24);
  }
}

TEST(word_list_is_bip39_english) {
  /* sha256 of the list as english.txt (one word a line) */
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  for (int i = 0; i < LP2P__PAIR_NWORDS; i++) {
    crypto_hash_sha256_update(&st, (const uint8_t *)lp2p__pair_words[i], strlen(lp2p__pair_words[i]));
    crypto_hash_sha256_update(&st, (const uint8_t *)"\n", 1);
  }
  uint8_t h[32];
  crypto_hash_sha256_final(&st, h);
  static const uint8_t want[32] = {0x2f, 0x5e, 0xed, 0x53, 0xa4, 0x72, 0x7b, 0x4b, 0xf8, 0x88, 0x0d,
                                   0x8f, 0x3f, 0x19, 0x9e, 0xfc, 0x90, 0xe5, 0x85, 0x03, 0x64, 0x6d,
                                   0x9f, 0xf8, 0xef, 0xf3, 0xa2, 0xed, 0x3b, 0x24, 0xdb, 0xda};
  CHECK_MEM(h, want, 32);
  CHECK_STR(lp2p__pair_words[0], "abandon");
  CHECK_STR(lp2p__pair_words[2047], "zoo");
}

TEST(word_find_full_prefix_case) {
  for (int i = 0; i < LP2P__PAIR_NWORDS; i++) {
    const char *w = lp2p__pair_words[i];
    size_t n = strlen(w);
    CHECK_EQ(lp2p__pair_word_find(w, n), i);
    char up[16];
    for (size_t k = 0; k <= n; k++) up[k] = (char)(w[k] >= 'a' && w[k] <= 'z' ? w[k] - 32 : w[k]);
    CHECK_EQ(lp2p__pair_word_find(up, n), i);
    if (n >= 4) CHECK_EQ(lp2p__pair_word_find(w, 4), i);
    if (n > 4) { /* letters after the fourth do not matter */
      char t[16];
      memcpy(t, w, n + 1);
      t[n - 1] = t[n - 1] == 'z' ? 'a' : 'z';
      CHECK_EQ(lp2p__pair_word_find(t, n), i);
    }
  }
  CHECK_EQ(lp2p__pair_word_find("act", 3), 19);
  CHECK_EQ(lp2p__pair_word_find("acti", 4), 20); /* action */
  CHECK_EQ(lp2p__pair_word_find("aba", 3), -1);  /* a 3-letter prefix of a longer word */
  CHECK_EQ(lp2p__pair_word_find("ab", 2), -1);
  CHECK_EQ(lp2p__pair_word_find("zzzz", 4), -1);
  CHECK_EQ(lp2p__pair_word_find("ab1ndon", 7), -1);
  CHECK_EQ(lp2p__pair_word_find("abandon1", 8), -1);
}

TEST(generate_format_parse_roundtrip) {
  xrng r = {0x1234567};
  for (unsigned digits = 1; digits <= LP2P__PAIR_NP_MAX; digits++) {
    for (int k = 0; k < 20; k++) {
      lp2p__pair_code c, d;
      CHECK_OK(lp2p__pair_code_generate(&c, digits, xrng_fill, &r));
      CHECK(lp2p__pair_code_check(&c));
      CHECK_EQ(strlen(c.nameplate), digits);
      char text[LP2P__PAIR_CODE_MAX];
      int n = lp2p__pair_code_format(&c, text, sizeof text);
      REQUIRE(n > 0);
      CHECK_OK(lp2p__pair_code_parse(&d, text));
      CHECK(!memcmp(&c, &d, sizeof c));
      /* upper case, spaces, 4-letter prefixes */
      char alt[LP2P__PAIR_CODE_MAX];
      int off = snprintf(alt, sizeof alt, " %s ", c.nameplate);
      for (int w = 0; w < 3; w++) {
        const char *word = lp2p__pair_words[c.words[w]];
        off += snprintf(alt + off, sizeof alt - (size_t)off, "%.4s%s", word, w < 2 ? " - " : "");
      }
      for (char *p = alt; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
      CHECK_OK(lp2p__pair_code_parse(&d, alt));
      CHECK(!memcmp(&c, &d, sizeof c));
      CHECK_EQ(lp2p__pair_code_format(&c, text, (size_t)n), LP2P_ERR_BUFSIZE);
    }
  }
  lp2p__pair_code c;
  CHECK_EQ(lp2p__pair_code_generate(&c, 0, NULL, NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p__pair_code_generate(&c, LP2P__PAIR_NP_MAX + 1, NULL, NULL), LP2P_ERR_INVAL);
  CHECK_OK(lp2p__pair_code_generate(&c, 3, NULL, NULL)); /* system RNG */
}

TEST(parse_rejects_malformed) {
  static const char *bad[] = {"", "123", "123-abandon-ability", "123-abandon-ability-able-about",
                              "abandon-ability-able", "12a-abandon-ability-able",
                              "1234567890123-abandon-ability-able", "123-abandon-xyzzy-able",
                              "123-ab-ability-able", "-", "123--", "123-abandon-ability-abl3"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    lp2p__pair_code c;
    memset(&c, 0x55, sizeof c);
    int rv = lp2p__pair_code_parse(&c, bad[i]);
    CHECK(rv == LP2P_ERR_PARSE);
    if (rv != LP2P_ERR_PARSE) fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
    CHECK(sodium_is_zero((const uint8_t *)&c, sizeof c));
  }
}

/* The check: 1/16 of all well-formed codes pass it. */
TEST(check_passes_one_in_sixteen) {
  xrng r = {42};
  unsigned pass = 0, total = 64000;
  for (unsigned i = 0; i < total; i++) {
    lp2p__pair_code c;
    memset(&c, 0, sizeof c);
    uint8_t b[6];
    xrng_fill(&r, b, sizeof b);
    memcpy(c.nameplate, "4711", 5);
    for (int w = 0; w < 3; w++) c.words[w] = (uint16_t)(((b[2 * w] << 8) | b[2 * w + 1]) & 2047);
    pass += (unsigned)lp2p__pair_code_check(&c);
  }
  printf("  check: %u of %u random codes pass (expected 1/16 = %u)\n", pass, total, total / 16);
  CHECK(pass > total / 16 - 400 && pass < total / 16 + 400);
}

/* Every single-letter substitution in every word of 300 random valid codes: either the word
 * stays the same (letters after the fourth), the token is no word (caught), another word that
 * the check catches, or another word that slips through (expected 1/16 of those). */
TEST(typo_statistics_single_letter) {
  xrng r = {7};
  unsigned same = 0, noword = 0, caught = 0, missed = 0;
  for (int k = 0; k < 300; k++) {
    lp2p__pair_code c;
    CHECK_OK(lp2p__pair_code_generate(&c, 4, xrng_fill, &r));
    for (int w = 0; w < 3; w++) {
      const char *word = lp2p__pair_words[c.words[w]];
      size_t n = strlen(word);
      for (size_t pos = 0; pos < n; pos++) {
        for (char ch = 'a'; ch <= 'z'; ch++) {
          if (ch == word[pos]) continue;
          char tok[16];
          memcpy(tok, word, n + 1);
          tok[pos] = ch;
          char text[LP2P__PAIR_CODE_MAX];
          snprintf(text, sizeof text, "%s-%s-%s-%s", c.nameplate,
                   w == 0 ? tok : lp2p__pair_words[c.words[0]],
                   w == 1 ? tok : lp2p__pair_words[c.words[1]],
                   w == 2 ? tok : lp2p__pair_words[c.words[2]]);
          lp2p__pair_code d;
          int rv = lp2p__pair_code_parse(&d, text);
          int found = lp2p__pair_word_find(tok, n);
          if (found == c.words[w]) {
            same++;
            CHECK_OK(rv);
            CHECK(pos >= 4);
          } else if (found < 0) {
            noword++;
            CHECK_EQ(rv, LP2P_ERR_PARSE);
          } else if (rv == LP2P_ERR_SIGNATURE) {
            caught++;
          } else {
            CHECK_OK(rv);
            missed++;
          }
        }
      }
    }
  }
  unsigned total = same + noword + caught + missed;
  printf("  single-letter typos: %u total; %u map to the right word, %u are no word, %u other words "
         "caught by the check, %u slip through (%.2f%% of all, %.2f%% of word-changing)\n",
         total, same, noword, caught, missed, 100.0 * missed / total,
         100.0 * missed / (caught + missed));
  CHECK(missed * 10 < caught + missed);  /* ~1/16 of word-changing substitutions */
  CHECK(missed * 100 < total);           /* under 1% of all single-letter typos */
}

TEST(nameplate_digit_typos) {
  xrng r = {99};
  unsigned caught = 0, missed = 0;
  for (int k = 0; k < 400; k++) {
    lp2p__pair_code c;
    CHECK_OK(lp2p__pair_code_generate(&c, 6, xrng_fill, &r));
    for (int pos = 0; pos < 6; pos++) {
      for (char d = '0'; d <= '9'; d++) {
        if (d == c.nameplate[pos]) continue;
        lp2p__pair_code t = c;
        t.nameplate[pos] = d;
        if (lp2p__pair_code_check(&t))
          missed++;
        else
          caught++;
      }
    }
  }
  printf("  nameplate digit typos: %u caught, %u slip through (%.2f%%)\n", caught, missed,
         100.0 * missed / (caught + missed));
  CHECK(missed * 10 < caught + missed);
}

TEST(rendezvous_ids_depend_on_nameplate_only) {
  lp2p__pair_code a, b;
  xrng r = {5};
  CHECK_OK(lp2p__pair_code_generate(&a, 3, xrng_fill, &r));
  do CHECK_OK(lp2p__pair_code_generate(&b, 3, xrng_fill, &r));
  while (!strcmp(a.nameplate, b.nameplate));
  lp2p__pair_code a2 = a;
  memcpy(a2.words, b.words, sizeof a2.words); /* same nameplate, other words */
  uint8_t t1[32], t2[32], t3[32];
  lp2p__pair_mdns_tag(a.nameplate, t1);
  lp2p__pair_mdns_tag(a2.nameplate, t2);
  lp2p__pair_mdns_tag(b.nameplate, t3);
  CHECK_MEM(t1, t2, 32);
  CHECK(memcmp(t1, t3, 32) != 0);
  uint8_t k1[32], k2[32], k3[32];
  uint64_t e = lp2p__pair_epoch(1700000000);
  CHECK_EQ(e, 1700000000 / 300);
  CHECK_EQ(lp2p__pair_epoch(1700000000 + 299 - (1700000000 % 300)), e);
  CHECK_EQ(lp2p__pair_epoch(1700000000 + 300 - (1700000000 % 300)), e + 1);
  lp2p__pair_dht_key(a.nameplate, e, k1);
  lp2p__pair_dht_key(a.nameplate, e - 1, k2);
  lp2p__pair_dht_key(b.nameplate, e, k3);
  CHECK(memcmp(k1, k2, 32) != 0);
  CHECK(memcmp(k1, k3, 32) != 0);
  CHECK(memcmp(k1, t1, 32) != 0);
  /* fixed values (regression; computed by this implementation, see pair_int.h for the layout) */
  lp2p__pair_mdns_tag("123", t1);
  uint8_t buf[64] = {14};
  memcpy(buf + 1, "lp2p-pair-mdns", 14);
  buf[15] = 3;
  memcpy(buf + 16, "123", 3);
  crypto_hash_sha256(t2, buf, 19);
  CHECK_MEM(t1, t2, 32);
  /* PRS never contains the nameplate */
  uint8_t p1[LP2P__PAIR_PRS_LEN], p2[LP2P__PAIR_PRS_LEN];
  lp2p__pair_code x = a;
  lp2p__pair_code_prs(&x, p1);
  memcpy(x.nameplate, "999999", 7);
  lp2p__pair_code_prs(&x, p2);
  CHECK_MEM(p1, p2, sizeof p1);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  RUN(word_list_is_bip39_english);
  RUN(word_find_full_prefix_case);
  RUN(generate_format_parse_roundtrip);
  RUN(parse_rejects_malformed);
  RUN(check_passes_one_in_sixteen);
  RUN(typo_statistics_single_letter);
  RUN(nameplate_digit_typos);
  RUN(rendezvous_ids_depend_on_nameplate_only);
  return test_done();
}
