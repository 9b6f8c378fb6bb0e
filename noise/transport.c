/* transport.c - Noise transport frames after the handshake: u16be(len) || ChaCha20-Poly1305
 * ciphertext || tag, empty associated data, per-direction 64-bit nonce counters. */
#include "noise/noise_int.h"

static int transport_ready(const lp2p_noise *n) {
  if (n->err) return n->err;
  return n->state == LP2P__NOISE_DONE ? 0 : LP2P_ERR_STATE;
}

int lp2p__noise_transport_recv(lp2p_noise *n, const uint8_t *body, size_t len) {
  if (len < LP2P_NOISE_TAG_LEN) return LP2P_ERR_DECRYPT;
  size_t pt_len = len - LP2P_NOISE_TAG_LEN;
  uint8_t *dst = lp2p__noise_buf_reserve(&n->mem, &n->pt, pt_len);
  if (!dst) return LP2P_ERR_NOMEM;
  int rv = lp2p__noise_cipher_decrypt(&n->rx, NULL, 0, body, len, dst);
  if (rv) return rv;
  n->pt.b.len += pt_len;
  return 0;
}

int lp2p_noise_write(lp2p_noise *n, const uint8_t *pt, size_t len) {
  if (!n || (!pt && len)) return LP2P_ERR_INVAL;
  int rv = transport_ready(n);
  if (rv || len == 0) return rv;
  size_t frames = len / LP2P_NOISE_MAX_PLAINTEXT + (len % LP2P_NOISE_MAX_PLAINTEXT ? 1 : 0);
  if (frames > (SIZE_MAX - len) / LP2P_NOISE_FRAME_OVERHEAD) return LP2P_ERR_INVAL;
  /* All or nothing: every frame needs a nonce below 2^64-1. */
  if (UINT64_MAX - n->tx.n < (uint64_t)frames) return lp2p__noise_fail(n, LP2P_ERR_NONCE_EXHAUSTED);
  size_t total = len + frames * LP2P_NOISE_FRAME_OVERHEAD;
  uint8_t *dst = lp2p__noise_buf_reserve(&n->mem, &n->out, total);
  if (!dst) return lp2p__noise_fail(n, LP2P_ERR_NOMEM);
  while (len) {
    size_t chunk = len < LP2P_NOISE_MAX_PLAINTEXT ? len : LP2P_NOISE_MAX_PLAINTEXT;
    size_t body = chunk + LP2P_NOISE_TAG_LEN;
    dst[0] = (uint8_t)(body >> 8);
    dst[1] = (uint8_t)body;
    if ((rv = lp2p__noise_cipher_encrypt(&n->tx, NULL, 0, pt, chunk, dst + 2))) return lp2p__noise_fail(n, rv);
    n->out.b.len += 2 + body;
    dst += 2 + body;
    pt += chunk;
    len -= chunk;
  }
  return 0;
}

size_t lp2p_noise_plaintext(lp2p_noise *n, const uint8_t **out) {
  size_t pending = lp2p__noise_buf_pending(&n->pt);
  *out = pending ? n->pt.b.data + n->pt.off : NULL;
  return pending;
}

void lp2p_noise_plaintext_consumed(lp2p_noise *n, size_t k) { lp2p__noise_buf_consume(&n->pt, k); }

int lp2p_noise_seal_frame(lp2p_noise *n, const uint8_t *pt, size_t len, uint8_t *out) {
  if (!n || !out || (!pt && len)) return LP2P_ERR_INVAL;
  int rv = transport_ready(n);
  if (rv) return rv;
  if (len > LP2P_NOISE_MAX_PLAINTEXT) return LP2P_ERR_TOO_LARGE;
  size_t body = len + LP2P_NOISE_TAG_LEN;
  if ((rv = lp2p__noise_cipher_encrypt(&n->tx, NULL, 0, pt, len, out + 2))) return lp2p__noise_fail(n, rv);
  out[0] = (uint8_t)(body >> 8);
  out[1] = (uint8_t)body;
  return (int)(body + 2);
}

int lp2p_noise_open_frame(lp2p_noise *n, uint8_t *frame_body, size_t body_len, size_t *pt_len) {
  if (!n || !pt_len || (!frame_body && body_len)) return LP2P_ERR_INVAL;
  int rv = transport_ready(n);
  if (rv) return rv;
  if (body_len > LP2P_NOISE_MAX_FRAME) return lp2p__noise_fail(n, LP2P_ERR_TOO_LARGE);
  if (body_len < LP2P_NOISE_TAG_LEN) return lp2p__noise_fail(n, LP2P_ERR_DECRYPT);
  if ((rv = lp2p__noise_cipher_decrypt(&n->rx, NULL, 0, frame_body, body_len, frame_body)))
    return lp2p__noise_fail(n, rv);
  *pt_len = body_len - LP2P_NOISE_TAG_LEN;
  return 0;
}

size_t lp2p_noise_frame_len(const uint8_t *in, size_t len) {
  return in && len >= 2 ? 2 + ((size_t)in[0] << 8 | in[1]) : 0;
}

int64_t lp2p_noise_open_next(lp2p_noise *n, uint8_t *in, size_t len, uint8_t **pt, size_t *pt_len) {
  if (!n || !pt || !pt_len || (!in && len)) return LP2P_ERR_INVAL;
  size_t fl = lp2p_noise_frame_len(in, len);
  if (!fl || fl > len) return 0;
  int rv = lp2p_noise_open_frame(n, in + 2, fl - 2, pt_len);
  if (rv < 0) return rv;
  *pt = in + 2;
  return (int64_t)fl;
}
