/* protocols/pairing/engine/code.c - pairing codes "<nameplate>-word-word-word" (see pair_int.h
 * for the format, the check and the entropy it leaves). */
#include <sodium.h>
#include <string.h>

#include "protocols/pairing/engine/pair_int.h"

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

/* Compare the first min(4, len) letters of tok with the first four of w; the list is sorted
 * and unique in its first four letters, so the comparison on 4-letter prefixes is a total order
 * consistent with the list (a 3-letter word sorts before longer words sharing its 3 letters). */
static int prefix_cmp(const char *tok, size_t tlen, const char *w) {
  size_t wlen = strlen(w);
  size_t tl = tlen < 4 ? tlen : 4, wl = wlen < 4 ? wlen : 4;
  for (size_t i = 0; i < tl && i < wl; i++) {
    char a = lower(tok[i]);
    if (a != w[i]) return (unsigned char)a < (unsigned char)w[i] ? -1 : 1;
  }
  return tl < wl ? -1 : tl > wl ? 1 : 0;
}

int lp2p__pair_word_find(const char *tok, size_t len) {
  if (!tok || len < 3 || len > 32) return -1;
  int lo = 0, hi = LP2P__PAIR_NWORDS - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int c = prefix_cmp(tok, len, lp2p__pair_words[mid]);
    if (c == 0) {
      /* a 3-letter token must be a whole 3-letter word, not the prefix of a longer one */
      if (len < 4 && strlen(lp2p__pair_words[mid]) != len) return -1;
      for (size_t i = 0; i < len; i++) { /* letters only */
        char a = lower(tok[i]);
        if (a < 'a' || a > 'z') return -1;
      }
      return mid;
    }
    if (c < 0)
      hi = mid - 1;
    else
      lo = mid + 1;
  }
  return -1;
}

static int nameplate_ok(const char *np) {
  size_t n = strnlen(np, LP2P__PAIR_NP_MAX + 1);
  if (n < LP2P__PAIR_NP_MIN || n > LP2P__PAIR_NP_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (np[i] < '0' || np[i] > '9') return 0;
  return 1;
}

static void check_hash(const lp2p__pair_code *c, uint8_t h[64]) {
  static const char dom[] = "lp2p-pair-check";
  uint8_t buf[64];
  uint8_t idx[6];
  for (int i = 0; i < 3; i++) {
    idx[2 * i] = (uint8_t)(c->words[i] >> 8);
    idx[2 * i + 1] = (uint8_t)c->words[i];
  }
  const uint8_t *parts[3] = {(const uint8_t *)dom, (const uint8_t *)c->nameplate, idx};
  size_t lens[3] = {sizeof dom - 1, strlen(c->nameplate), sizeof idx};
  int n = lp2p__cpace_lv_cat(buf, sizeof buf, 3, parts, lens);
  crypto_hash_sha512(h, buf, n > 0 ? (unsigned long long)n : 0);
  sodium_memzero(buf, sizeof buf);
  sodium_memzero(idx, sizeof idx);
}

int lp2p__pair_code_check(const lp2p__pair_code *c) {
  if (!c || !nameplate_ok(c->nameplate)) return 0;
  for (int i = 0; i < 3; i++)
    if (c->words[i] >= LP2P__PAIR_NWORDS) return 0;
  uint8_t h[64];
  check_hash(c, h);
  int ok = (h[0] >> (8 - LP2P__PAIR_CHECK_BITS)) == 0;
  sodium_memzero(h, sizeof h);
  return ok;
}

static void rand_bytes(lp2p__pair_rng_fn rng, void *ctx, uint8_t *b, size_t n) {
  if (rng)
    rng(ctx, b, n);
  else
    randombytes_buf(b, n);
}

int lp2p__pair_code_generate(lp2p__pair_code *c, unsigned np_digits, lp2p__pair_rng_fn rng,
                             void *rng_ctx) {
  if (!c || np_digits < LP2P__PAIR_NP_MIN || np_digits > LP2P__PAIR_NP_MAX) return LP2P_ERR_INVAL;
  memset(c, 0, sizeof *c);
  for (unsigned i = 0; i < np_digits; i++) {
    uint8_t b;
    do rand_bytes(rng, rng_ctx, &b, 1);
    while (b >= 250); /* uniform digit */
    c->nameplate[i] = (char)('0' + b % 10);
  }
  /* rejection sampling: uniform over the codes that pass the check */
  for (;;) {
    uint8_t r[6];
    rand_bytes(rng, rng_ctx, r, sizeof r);
    for (int i = 0; i < 3; i++)
      c->words[i] = (uint16_t)(((r[2 * i] << 8) | r[2 * i + 1]) & (LP2P__PAIR_NWORDS - 1));
    sodium_memzero(r, sizeof r);
    if (lp2p__pair_code_check(c)) return 0;
  }
}

int lp2p__pair_code_parse(lp2p__pair_code *c, const char *text) {
  if (!c || !text) return LP2P_ERR_INVAL;
  memset(c, 0, sizeof *c);
  const char *p = text;
  int part = 0, words = 0;
  while (*p) {
    while (*p == ' ' || *p == '-' || *p == '\t') p++;
    if (!*p) break;
    const char *start = p;
    while (*p && *p != ' ' && *p != '-' && *p != '\t') p++;
    size_t len = (size_t)(p - start);
    if (part == 0) {
      if (len < LP2P__PAIR_NP_MIN || len > LP2P__PAIR_NP_MAX) goto bad;
      for (size_t i = 0; i < len; i++)
        if (start[i] < '0' || start[i] > '9') goto bad;
      memcpy(c->nameplate, start, len);
    } else {
      if (words >= 3) goto bad;
      int w = lp2p__pair_word_find(start, len);
      if (w < 0) goto bad;
      c->words[words++] = (uint16_t)w;
    }
    part++;
  }
  if (part != 4 || words != 3) goto bad;
  if (!lp2p__pair_code_check(c)) {
    sodium_memzero(c, sizeof *c);
    return LP2P_ERR_SIGNATURE;
  }
  return 0;
bad:
  sodium_memzero(c, sizeof *c);
  return LP2P_ERR_PARSE;
}

int lp2p__pair_code_format(const lp2p__pair_code *c, char *buf, size_t cap) {
  if (!c || !buf || !nameplate_ok(c->nameplate)) return LP2P_ERR_INVAL;
  size_t off = 0, n = strlen(c->nameplate);
  if (n + 1 > cap) return LP2P_ERR_BUFSIZE;
  memcpy(buf, c->nameplate, n);
  off = n;
  for (int i = 0; i < 3; i++) {
    if (c->words[i] >= LP2P__PAIR_NWORDS) return LP2P_ERR_INVAL;
    const char *w = lp2p__pair_words[c->words[i]];
    size_t wl = strlen(w);
    if (off + 1 + wl + 1 > cap) return LP2P_ERR_BUFSIZE;
    buf[off++] = '-';
    memcpy(buf + off, w, wl);
    off += wl;
  }
  buf[off] = 0;
  return (int)off;
}

void lp2p__pair_code_prs(const lp2p__pair_code *c, uint8_t prs[LP2P__PAIR_PRS_LEN]) {
  static const char dom[] = "lp2p-pair-prs"; /* 13 bytes */
  memcpy(prs, dom, 13);
  for (int i = 0; i < 3; i++) {
    prs[13 + 2 * i] = (uint8_t)(c->words[i] >> 8);
    prs[13 + 2 * i + 1] = (uint8_t)c->words[i];
  }
}

void lp2p__pair_mdns_tag(const char *nameplate, uint8_t tag[32]) {
  static const char dom[] = "lp2p-pair-mdns";
  uint8_t buf[64];
  const uint8_t *parts[2] = {(const uint8_t *)dom, (const uint8_t *)nameplate};
  size_t lens[2] = {sizeof dom - 1, strnlen(nameplate, LP2P__PAIR_NP_MAX)};
  int n = lp2p__cpace_lv_cat(buf, sizeof buf, 2, parts, lens);
  crypto_hash_sha256(tag, buf, n > 0 ? (unsigned long long)n : 0);
}

void lp2p__pair_dht_key(const char *nameplate, uint64_t epoch, uint8_t key[32]) {
  static const char dom[] = "lp2p-pair-dht";
  uint8_t buf[64], e[8];
  for (int i = 0; i < 8; i++) e[i] = (uint8_t)(epoch >> (56 - 8 * i));
  const uint8_t *parts[3] = {(const uint8_t *)dom, (const uint8_t *)nameplate, e};
  size_t lens[3] = {sizeof dom - 1, strnlen(nameplate, LP2P__PAIR_NP_MAX), 8};
  int n = lp2p__cpace_lv_cat(buf, sizeof buf, 3, parts, lens);
  crypto_hash_sha256(key, buf, n > 0 ? (unsigned long long)n : 0);
}
