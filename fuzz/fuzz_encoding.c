/* fuzz_encoding.c - the text and binary decoders of lp2p/encoding.h: multibase, base58btc,
 * base32, hex, multihash and binary CIDv1.
 *
 * Input: byte 0 = options, the rest = the encoded value (at most 1024 bytes: base58 is
 * quadratic by design, its callers bound the input).
 *   (byte 0) % 6: 0 multibase, 1 base58btc, 2 base32, 3 hex, 4 multihash, 5 CIDv1
 *   (byte 0) / 6: output capacity of the first decode, 1 + 12 * n bytes
 * Invariants (abort on violation):
 *  - errors are the documented ones; output never exceeds the capacity;
 *  - a decode that fails with LP2P_ERR_BUFSIZE at a small capacity succeeds with a large one
 *    and needs more room; one that succeeds gives the same bytes with the large capacity;
 *  - whatever decodes re-encodes to the input (text decoders: up to letter case), i.e. the
 *    decoders accept only canonical encodings. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/encoding.h"

#define ASSERT(c)                                                                                           \
  do {                                                                                                      \
    if (!(c)) {                                                                                             \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);                            \
      abort();                                                                                              \
    }                                                                                                       \
  } while (0)

#define BIG 2048

static int same_nocase(const char *a, const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (tolower((unsigned char)a[i]) != tolower(b[i])) return 0;
  return 1;
}

typedef int (*text_dec)(const char *, size_t, uint8_t *, size_t, size_t *);

static int dec_multibase(const char *t, size_t n, uint8_t *o, size_t c, size_t *ol) {
  return lp2p_multibase_decode(t, n, o, c, ol);
}

/* Decodes at cap and at BIG, checks they agree; returns the BIG result (bytes in big/blen). */
static int dec_both(text_dec f, const uint8_t *in, size_t n, size_t cap, uint8_t *big, size_t *blen) {
  uint8_t small[BIG];
  size_t slen = 0;
  int rs = f((const char *)in, n, small, cap, &slen);
  int rb = f((const char *)in, n, big, BIG, blen);
  if (rs == 0) {
    ASSERT(slen <= cap);
    ASSERT(rb == 0 && *blen == slen && !memcmp(big, small, slen));
  } else if (rs == LP2P_ERR_BUFSIZE) {
    ASSERT(rb != 0 || *blen > cap);
  } else {
    ASSERT(rb == rs);
  }
  if (rb == 0) ASSERT(*blen <= BIG);
  return rb;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!size || size > 1025) return 0;
  unsigned kind = data[0] % 6;
  size_t cap = 1 + 12u * (data[0] / 6);
  const uint8_t *in = data + 1;
  size_t n = size - 1;
  uint8_t out[BIG];
  size_t olen = 0;
  char text[4 * BIG];
  size_t tlen = 0;
  int rv;
  switch (kind) {
    case 0: /* multibase */
      rv = dec_both(dec_multibase, in, n, cap, out, &olen);
      ASSERT(rv == 0 || rv == LP2P_ERR_MULTIBASE || rv == LP2P_ERR_BUFSIZE);
      if (rv == 0) {
        char prefix = (char)in[0] == 'F' ? 'f' : (char)in[0];
        ASSERT(lp2p_multibase_encode(prefix, out, olen, text, sizeof text, &tlen) == 0);
        ASSERT(tlen == n && text[tlen] == 0);
        if (prefix == 'z' || prefix == 'u')
          ASSERT(!memcmp(text, in, n));
        else
          ASSERT(same_nocase(text, in, n));
      }
      break;
    case 1: /* base58btc */
      rv = dec_both(lp2p_base58_decode, in, n, cap, out, &olen);
      ASSERT(rv == 0 || rv == LP2P_ERR_PARSE || rv == LP2P_ERR_BUFSIZE);
      if (rv == 0) {
        ASSERT(lp2p_base58_encode(out, olen, text, sizeof text, &tlen) == 0);
        ASSERT(tlen == n && !memcmp(text, in, n));
      }
      break;
    case 2: /* base32 */
      rv = dec_both(lp2p_base32_decode, in, n, cap, out, &olen);
      ASSERT(rv == 0 || rv == LP2P_ERR_PARSE || rv == LP2P_ERR_BUFSIZE);
      if (rv == 0) {
        ASSERT(lp2p_base32_encode(out, olen, text, sizeof text, &tlen) == 0);
        ASSERT(tlen == n && same_nocase(text, in, n));
      }
      break;
    case 3: /* hex */
      rv = dec_both(lp2p_hex_decode, in, n, cap, out, &olen);
      ASSERT(rv == 0 || rv == LP2P_ERR_PARSE || rv == LP2P_ERR_BUFSIZE);
      if (rv == 0) {
        ASSERT(olen * 2 == n);
        ASSERT(lp2p_hex_encode(out, olen, text, sizeof text) == (int)n);
        ASSERT(same_nocase(text, in, n));
      }
      break;
    case 4: { /* multihash */
      lp2p_multihash_view v;
      rv = lp2p_multihash_parse(in, n, &v);
      ASSERT(rv == 0 || rv == LP2P_ERR_MULTIHASH || rv == LP2P_ERR_VARINT);
      ASSERT(lp2p_multihash_parse(in, n, NULL) == rv);
      if (rv == 0) {
        ASSERT(v.code == LP2P_MH_IDENTITY || v.code == LP2P_MH_SHA2_256);
        ASSERT(v.digest >= in && v.digest + v.digest_len == in + n);
        ASSERT(v.code != LP2P_MH_SHA2_256 || v.digest_len == 32);
        ASSERT(v.digest_len <= LP2P_MH_MAX_DIGEST);
        int k = lp2p_multihash_encode(v.code, v.digest, v.digest_len, out, sizeof out);
        ASSERT(k == (int)n && !memcmp(out, in, n));
      }
      break;
    }
    case 5: { /* CIDv1 */
      uint64_t codec = 0;
      const uint8_t *mh = NULL;
      size_t mhlen = 0;
      rv = lp2p_cid_decode(in, n, &codec, &mh, &mhlen);
      ASSERT(rv == 0 || rv == LP2P_ERR_CID || rv == LP2P_ERR_MULTIHASH);
      ASSERT(lp2p_cid_decode(in, n, NULL, NULL, NULL) == rv);
      if (rv == 0) {
        ASSERT(mh >= in && mh + mhlen == in + n);
        ASSERT(lp2p_multihash_parse(mh, mhlen, NULL) == 0);
        int k = lp2p_cid_encode(codec, mh, mhlen, out, sizeof out);
        ASSERT(k == (int)n && !memcmp(out, in, n));
      }
      break;
    }
  }
  return 0;
}
