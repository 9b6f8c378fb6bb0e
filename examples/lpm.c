/* lpm.c - length-prefixed messages (lp2p/lpm.h), the framing of most libp2p
 * stream protocols: writes three messages into one buffer, then reads them
 * back fed one byte at a time (as a network might deliver them), and shows
 * the reader refusing a message above its limit. Exits 0 when all holds. */
#include <stdio.h>
#include <string.h>

#include <lp2p/lpm.h>

int main(void) {
  const char *msgs[] = {"hello", "", "length-prefixed world"};
  uint8_t wire[128];
  size_t len = 0;
  for (int i = 0; i < 3; i++) {
    int64_t k = lp2p_lpm_write((const uint8_t *)msgs[i], strlen(msgs[i]), wire + len, sizeof wire - len);
    if (k < 0) return fprintf(stderr, "lpm: write: %s\n", lp2p_strerror((int)k)), 1;
    len += (size_t)k;
  }
  printf("lpm: 3 messages framed into %zu bytes\n", len);

  lp2p_lpm_reader *r;
  if (lp2p_lpm_reader_new(&r, 64, NULL) < 0) return 1;
  int got = 0, bad = 0;
  for (size_t i = 0; i < len; i++) { /* one byte per call */
    size_t used;
    const uint8_t *m;
    size_t mlen;
    int rv = lp2p_lpm_read(r, wire + i, 1, &used, &m, &mlen);
    if (rv < 0) return fprintf(stderr, "lpm: read: %s\n", lp2p_strerror(rv)), 1;
    if (rv == 1) {
      printf("lpm: message %d: \"%.*s\" (%zu bytes)\n", got, (int)mlen, (const char *)m, mlen);
      if (mlen != strlen(msgs[got]) || memcmp(m, msgs[got], mlen)) bad = 1;
      got++;
    }
  }
  if (lp2p_lpm_reader_finish(r) != 0) bad = 1;
  lp2p_lpm_reader_free(r);

  /* a 100-byte message against a 64-byte limit: refused as soon as its prefix is read */
  static const uint8_t big[100];
  int64_t k = lp2p_lpm_write(big, sizeof big, wire, sizeof wire);
  if (k < 0 || lp2p_lpm_reader_new(&r, 64, NULL) < 0) return 1;
  size_t used;
  const uint8_t *m;
  size_t mlen;
  int rv = lp2p_lpm_read(r, wire, (size_t)k, &used, &m, &mlen);
  printf("lpm: 100-byte message with a 64-byte limit: %s\n", lp2p_err_name(rv));
  if (rv != LP2P_ERR_TOO_LARGE) bad = 1;
  lp2p_lpm_reader_free(r);
  return got == 3 && !bad ? 0 : 1;
}
