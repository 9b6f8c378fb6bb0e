/* noise_fuzz_common.h - what the two Noise fuzz targets share: feeding an engine in chunks,
 * the invariants of a finished (or failed) handshake, and the transport phase checked against a
 * raw cipher pair. Header-only; each target includes it once. */
#ifndef LP2P_FUZZ_NOISE_COMMON_H
#define LP2P_FUZZ_NOISE_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/noise.h"
#include "lp2p/peerid.h"
#include "noise/noise_int.h"

#define CHECK(x) \
  do {           \
    if (!(x)) __builtin_trap(); \
  } while (0)

static inline void nf_drain(lp2p_noise *n, uint8_t **acc, size_t *acc_len) {
  const uint8_t *p;
  size_t k = lp2p_noise_plaintext(n, &p);
  if (k && acc) {
    uint8_t *q = realloc(*acc, *acc_len + k);
    CHECK(q);
    memcpy(q + *acc_len, p, k);
    *acc = q;
    *acc_len += k;
  }
  lp2p_noise_plaintext_consumed(n, k);
}

/* Feeds everything (in chunks of `chunk` bytes, 0 = at once); returns 0 or the engine's error. */
static inline int nf_feed_all(lp2p_noise *n, const uint8_t *in, size_t len, size_t chunk, uint8_t **acc, size_t *acc_len) {
  size_t off = 0;
  while (off < len) {
    size_t c = chunk && chunk < len - off ? chunk : len - off;
    int64_t k = lp2p_noise_feed(n, in + off, c);
    if (k < 0) {
      CHECK(lp2p_noise_error(n) == (int)k);
      CHECK(lp2p_noise_feed(n, in, len) == k); /* terminal */
      return (int)k;
    }
    CHECK((size_t)k <= c);
    CHECK(k > 0); /* nothing can stall here: plaintext is drained after each call */
    off += (size_t)k;
    nf_drain(n, acc, acc_len);
  }
  return 0;
}

/* The handshake state lives exactly as long as the handshake; a finished one names a remote peer
 * that matches its key, is never `self`, and a muxer we offered. `initiator`: a failed handshake
 * never queued msg3. */
static inline void nf_check_done_state(lp2p_noise *n, const char *const *mux, size_t nmux, const lp2p_peer_id *self,
                                int initiator) {
  CHECK((n->hs == NULL) == (lp2p_noise_handshake_done(n) || lp2p_noise_error(n) != 0));
  const uint8_t *o;
  if (!lp2p_noise_handshake_done(n)) {
    CHECK(lp2p_noise_remote_peer(n) == NULL && lp2p_noise_muxer(n) == NULL);
    if (initiator && lp2p_noise_error(n)) CHECK(lp2p_noise_output(n, &o) == 0);
    return;
  }
  const lp2p_peer_id *pid = lp2p_noise_remote_peer(n);
  CHECK(pid && lp2p_noise_remote_key(n));
  CHECK(lp2p_peer_id_matches(pid, lp2p_noise_remote_key(n)));
  CHECK(!lp2p_peer_id_equal(pid, self));
  const char *m = lp2p_noise_muxer(n);
  if (m) {
    int found = 0;
    for (size_t i = 0; i < nmux; i++) found |= !strcmp(m, mux[i]);
    CHECK(found);
  }
}

static inline size_t nf_frame(uint8_t *out, const uint8_t *body, size_t len) {
  out[0] = (uint8_t)(len >> 8);
  out[1] = (uint8_t)len;
  memcpy(out + 2, body, len);
  return len + 2;
}

/* Transport phase after a completed handshake: t is [n][flags][plaintext...]* sealed with `to_us`
 * (the remote's sending cipher) and fed to n (flags bit 0 flips a ciphertext bit, which must kill the
 * session; bit 1 opens the frame through open_frame / open_next instead of feed); every plaintext byte
 * must come out in order. Then, if the session lives, one frame of ours must open with `from_us`.
 * msg: scratch of at least 4096 + 18 bytes. */
static inline void nf_transport(lp2p_noise *n, lp2p__noise_cipher *to_us, lp2p__noise_cipher *from_us, const uint8_t *t,
                         size_t tl, size_t chunk, uint8_t *msg) {
  uint8_t *got = NULL, *sent = NULL;
  size_t got_len = 0, sent_len = 0;
  int dead = 0;
  while (tl >= 2 && !dead) {
    size_t k = (size_t)t[0] * 37 % 4096, flags = t[1];
    t += 2;
    tl -= 2;
    if (k > tl) k = tl;
    CHECK(lp2p__noise_cipher_encrypt(to_us, NULL, 0, t, k, msg + 2) == 0);
    size_t fl = k + 16;
    msg[0] = (uint8_t)(fl >> 8);
    msg[1] = (uint8_t)fl;
    if (flags & 1) msg[2 + (flags >> 2) % fl] ^= (uint8_t)(1u << (flags & 7));
    if (flags & 2) {
      size_t ptl = 0;
      int r;
      if (k & 1) { /* odd lengths through open_next: the engine's own framing, partial frames first */
        uint8_t *pt = NULL;
        CHECK(lp2p_noise_open_next(n, msg, fl + 1, &pt, &ptl) == 0); /* one byte short: nothing */
        int64_t w = lp2p_noise_open_next(n, msg, fl + 2, &pt, &ptl);
        CHECK(w < 0 || (w == (int64_t)fl + 2 && pt == msg + 2));
        r = w < 0 ? (int)w : 0;
      } else {
        r = lp2p_noise_open_frame(n, msg + 2, fl, &ptl);
      }
      if (flags & 1) {
        CHECK(r == LP2P_ERR_DECRYPT);
        dead = 1;
      } else {
        CHECK(r == 0 && ptl == k && !memcmp(msg + 2, t, k));
      }
    } else {
      int r = nf_feed_all(n, msg, fl + 2, chunk, &got, &got_len);
      if (flags & 1) {
        CHECK(r == LP2P_ERR_DECRYPT);
        dead = 1;
      } else {
        CHECK(r == 0);
        uint8_t *q = realloc(sent, sent_len + k + 1);
        CHECK(q);
        sent = q;
        memcpy(sent + sent_len, t, k);
        sent_len += k;
      }
    }
    t += k;
    tl -= k;
  }
  CHECK(got_len == sent_len && (!got_len || !memcmp(got, sent, got_len)));
  if (!dead) {
    CHECK(lp2p_noise_write(n, (const uint8_t *)"ours", 4) == 0);
    const uint8_t *o;
    size_t ol = lp2p_noise_output(n, &o);
    CHECK(ol == 4 + 18 && o[1] == 20);
    memcpy(msg, o + 2, 20);
    CHECK(lp2p__noise_cipher_decrypt(from_us, NULL, 0, msg, 20, msg) == 0 && !memcmp(msg, "ours", 4));
    lp2p_noise_output_consumed(n, ol);
  }
  free(got);
  free(sent);
}

#endif
