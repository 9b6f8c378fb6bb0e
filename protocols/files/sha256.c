/* protocols/files/sha256.c - streaming SHA-256 (FIPS 180-4) for file transfer: the x86 SHA extensions
 * when the CPU has them (about 5x libsodium's portable code, which matters at hundreds of MB/s), else a
 * portable compression function. Checked against lp2p_sha256 (libsodium) by test_files. */
#include <string.h>

#include "lp2p/files.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define LP2P_HAVE_SHANI_CODE 1
#endif

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void blocks_portable(uint32_t h[8], const uint8_t *p, size_t nblk) {
  while (nblk--) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
      w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
      uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
      uint32_t S1 = ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25);
      uint32_t ch = (e & f) ^ (~e & g);
      uint32_t t1 = hh + S1 + ch + K256[i] + w[i];
      uint32_t S0 = ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22);
      uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
      uint32_t t2 = S0 + mj;
      hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
    p += 64;
  }
}

#ifdef LP2P_HAVE_SHANI_CODE
/* State kept as ABEF / CDGH lanes while the rounds run (the layout sha256rnds2 works on). */
__attribute__((target("sha,sse4.1"))) static void blocks_shani(uint32_t h[8], const uint8_t *p, size_t nblk) {
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  __m128i t = _mm_loadu_si128((const __m128i *)&h[0]);
  __m128i s1 = _mm_loadu_si128((const __m128i *)&h[4]);
  t = _mm_shuffle_epi32(t, 0xB1);
  s1 = _mm_shuffle_epi32(s1, 0x1B);
  __m128i s0 = _mm_alignr_epi8(t, s1, 8);
  s1 = _mm_blend_epi16(s1, t, 0xF0);
  while (nblk--) {
    __m128i save0 = s0, save1 = s1;
    __m128i m[4];
    for (int i = 0; i < 16; i++) {
      __m128i w;
      if (i < 4) {
        m[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
        w = m[i];
      } else {
        __m128i x = _mm_alignr_epi8(m[(i - 1) & 3], m[(i - 2) & 3], 4);
        x = _mm_add_epi32(_mm_sha256msg1_epu32(m[i & 3], m[(i - 3) & 3]), x);
        m[i & 3] = _mm_sha256msg2_epu32(x, m[(i - 1) & 3]);
        w = m[i & 3];
      }
      __m128i k = _mm_add_epi32(w, _mm_loadu_si128((const __m128i *)&K256[4 * i]));
      s1 = _mm_sha256rnds2_epu32(s1, s0, k);
      k = _mm_shuffle_epi32(k, 0x0E);
      s0 = _mm_sha256rnds2_epu32(s0, s1, k);
    }
    s0 = _mm_add_epi32(s0, save0);
    s1 = _mm_add_epi32(s1, save1);
    p += 64;
  }
  t = _mm_shuffle_epi32(s0, 0x1B);
  s1 = _mm_shuffle_epi32(s1, 0xB1);
  s0 = _mm_blend_epi16(t, s1, 0xF0);
  s1 = _mm_alignr_epi8(s1, t, 8);
  _mm_storeu_si128((__m128i *)&h[0], s0);
  _mm_storeu_si128((__m128i *)&h[4], s1);
}

static int have_shani(void) {
  static int v = -1;
  if (v < 0) {
    /* CPUID directly: clang's __builtin_cpu_supports does not know "sha". Leaf 1 ECX bit 19 is
     * SSE4.1, leaf 7 EBX bit 29 is the SHA extensions. */
    unsigned a, b, c, d;
    int sse41 = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 19));
    v = sse41 && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29));
  }
  return v;
}
#endif

static void blocks(uint32_t h[8], const uint8_t *p, size_t nblk) {
#ifdef LP2P_HAVE_SHANI_CODE
  if (have_shani()) {
    blocks_shani(h, p, nblk);
    return;
  }
#endif
  blocks_portable(h, p, nblk);
}

void lp2p_sha256_init(lp2p_sha256_ctx *c) {
  static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(c->h, iv, sizeof iv);
  c->n = 0;
  c->blen = 0;
}

void lp2p_sha256_update(lp2p_sha256_ctx *c, const uint8_t *p, size_t n) {
  c->n += n;
  if (c->blen) {
    size_t take = 64 - c->blen < n ? 64 - c->blen : n;
    memcpy(c->buf + c->blen, p, take);
    c->blen += take;
    p += take;
    n -= take;
    if (c->blen < 64) return;
    blocks(c->h, c->buf, 1);
    c->blen = 0;
  }
  if (n >= 64) {
    blocks(c->h, p, n / 64);
    p += n & ~(size_t)63;
    n &= 63;
  }
  if (n) {
    memcpy(c->buf, p, n);
    c->blen = n;
  }
}

void lp2p_sha256_final(lp2p_sha256_ctx *c, uint8_t out[32]) {
  uint64_t bits = c->n * 8;
  uint8_t pad[72];
  size_t padn = (c->blen < 56 ? 56 : 120) - c->blen;
  memset(pad, 0, sizeof pad);
  pad[0] = 0x80;
  for (int i = 0; i < 8; i++) pad[padn + i] = (uint8_t)(bits >> (56 - 8 * i));
  uint64_t n = c->n;
  lp2p_sha256_update(c, pad, padn + 8);
  c->n = n;
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)(c->h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
    out[4 * i + 3] = (uint8_t)c->h[i];
  }
}

int lp2p_sha256_midstate(const lp2p_sha256_ctx *c, uint8_t out[32]) {
  if (c->blen || c->n % 64) return -1;
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)(c->h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
    out[4 * i + 3] = (uint8_t)c->h[i];
  }
  return 0;
}

int lp2p_sha256_resume(lp2p_sha256_ctx *c, const uint8_t mid[32], uint64_t absorbed) {
  if (absorbed % 64) return -1;
  for (int i = 0; i < 8; i++)
    c->h[i] = (uint32_t)mid[4 * i] << 24 | (uint32_t)mid[4 * i + 1] << 16 | (uint32_t)mid[4 * i + 2] << 8 | mid[4 * i + 3];
  c->n = absorbed;
  c->blen = 0;
  return 0;
}
