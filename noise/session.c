/* session.c - lp2p_noise: the libp2p Noise session (framing, handshake driving, buffers). */
#include <sodium.h>
#include <stddef.h>

#include "noise/noise_int.h"

/* ---- buffers with a read offset (no memmove per partial consume) ---- */

uint8_t *lp2p__noise_buf_reserve(const lp2p_mem *m, lp2p__noise_buf *buf, size_t n) {
  if (buf->off == buf->b.len) buf->off = buf->b.len = 0;
  if (buf->off && buf->b.cap - buf->b.len < n) {
    memmove(buf->b.data, buf->b.data + buf->off, buf->b.len - buf->off);
    buf->b.len -= buf->off;
    buf->off = 0;
  }
  if (lp2p__bytes_reserve(m, &buf->b, n ? n : 1)) return NULL;
  return buf->b.data + buf->b.len;
}

void lp2p__noise_buf_consume(lp2p__noise_buf *buf, size_t n) {
  size_t pending = buf->b.len - buf->off;
  buf->off += n < pending ? n : pending;
  if (buf->off == buf->b.len) buf->off = buf->b.len = 0;
}

void lp2p__noise_buf_free(const lp2p_mem *m, lp2p__noise_buf *buf) {
  if (buf->b.data) sodium_memzero(buf->b.data, buf->b.cap);
  lp2p__bytes_free(m, &buf->b);
  buf->off = 0;
}

/* ---- releasing what the handshake needed ---- */

static void release_handshake(lp2p_noise *n) {
  lp2p__noise_handshake *h = n->hs;
  if (!h) return;
  for (size_t i = 0; i < h->n_muxers; i++) lp2p__free(&n->mem, h->muxers[i]);
  lp2p_noise_identity_free(h->own_id);
  sodium_memzero(h, sizeof *h);
  lp2p__free(&n->mem, h);
  n->hs = NULL;
}

static void release_partial(lp2p_noise *n) {
  if (n->partial.data) sodium_memzero(n->partial.data, n->partial.cap);
  lp2p__bytes_free(&n->mem, &n->partial);
}

static void release_out(lp2p_noise *n) {
  lp2p__noise_buf_free(&n->mem, &n->out);
  n->release_out = 0;
}

int lp2p__noise_fail(lp2p_noise *n, int err) {
  if (!n->err) n->err = err;
  release_handshake(n);
  release_partial(n); /* a dead session reads nothing more */
  lp2p__noise_cipher_wipe(&n->tx);
  lp2p__noise_cipher_wipe(&n->rx);
  return n->err;
}

/* Our static key and signed payload fields: the node's, or made now for this session alone. */
static int ensure_identity(lp2p__noise_handshake *h, const lp2p_mem *mem) {
  if (h->id) return 0;
  int rv = lp2p__noise_identity_new_ex(&h->own_id, h->identity, h->has_fixed_s ? h->fixed_s : NULL, mem);
  if (rv) return rv;
  h->id = h->own_id;
  lp2p__noise_hs_set_static(&h->hs, h->id->s_priv, h->id->s_pub);
  return 0;
}

/* Queues u16be(len) || our next handshake message. Its payload (with_payload: our
 * NoiseHandshakePayload = the identity's key and signature fields || the muxer extension; else
 * empty) is assembled right where the message carries it in the output buffer and encrypted in
 * place: no payload buffer, and no signature with a shared identity. */
static int queue_handshake_msg(lp2p_noise *n, int with_payload) {
  lp2p__noise_handshake *h = n->hs;
  int rv;
  if (with_payload && (rv = ensure_identity(h, &n->mem))) return rv;
  const char *const *mux = (const char *const *)h->muxers;
  size_t ext = with_payload ? lp2p__noise_payload_ext_size(mux, h->n_muxers) : 0;
  size_t plen = with_payload ? h->id->fields_len + ext : 0;
  size_t body = plen + lp2p__noise_hs_overhead(h->hs.step);
  if (body > LP2P_NOISE_MAX_FRAME) return LP2P_ERR_INTERNAL; /* bounded by the config limits */
  uint8_t *dst = lp2p__noise_buf_reserve(&n->mem, &n->out, 2 + body);
  if (!dst) return LP2P_ERR_NOMEM;
  uint8_t *payload = NULL;
  if (with_payload) {
    payload = dst + 2 + lp2p__noise_hs_payload_offset(h->hs.step);
    memcpy(payload, h->id->fields, h->id->fields_len);
    lp2p__noise_payload_ext_pack(mux, h->n_muxers, payload + h->id->fields_len);
  }
  size_t written = 0;
  rv = lp2p__noise_hs_write(&h->hs, payload, plen, dst + 2, body, &written);
  if (rv) return rv;
  dst[0] = (uint8_t)(written >> 8);
  dst[1] = (uint8_t)written;
  n->out.b.len += 2 + written;
  return 0;
}

/* Reads msg2 (initiator) or msg3 (responder): decrypt, verify the remote payload. */
static int read_payload_msg(lp2p_noise *n, const uint8_t *msg, size_t len) {
  lp2p__noise_handshake *h = n->hs;
  size_t overhead = lp2p__noise_hs_overhead(h->hs.step);
  if (len < overhead) return LP2P_ERR_HANDSHAKE;
  uint8_t *payload = lp2p__malloc(&n->mem, len - overhead);
  if (!payload) return LP2P_ERR_NOMEM;
  size_t plen = 0;
  int rv = lp2p__noise_hs_read(&h->hs, msg, len, payload, len - overhead, &plen);
  lp2p__noise_remote remote;
  if (rv == 0)
    rv = lp2p__noise_payload_check(&n->mem, payload, plen, h->hs.rs, n->initiator,
                                   h->has_expected ? &h->expected : NULL, &h->self_id,
                                   (const char *const *)h->muxers, h->n_muxers, &remote);
  sodium_memzero(payload, len - overhead);
  lp2p__free(&n->mem, payload);
  if (rv) return rv;
  n->remote_key = remote.key;
  n->remote_id = remote.id;
  h->muxer_index = remote.muxer_index;
  return 0;
}

/* Split, keep what the API still returns, drop the rest of the handshake state. */
static int finish(lp2p_noise *n) {
  lp2p__noise_handshake *h = n->hs;
  lp2p__noise_cipher c1, c2;
  int rv = lp2p__noise_hs_split(&h->hs, &c1, &c2);
  if (rv) return rv;
  n->tx = n->initiator ? c1 : c2;
  n->rx = n->initiator ? c2 : c1;
  lp2p__noise_cipher_wipe(&c1);
  lp2p__noise_cipher_wipe(&c2);
  memcpy(n->h, h->hs.sym.h, sizeof n->h);
  if (h->muxer_index >= 0) { /* the agreed name moves to the session; the list goes */
    n->muxer = h->muxers[h->muxer_index];
    h->muxers[h->muxer_index] = NULL;
  }
  n->state = LP2P__NOISE_DONE;
  release_handshake(n);
  if (n->release_out && !lp2p__noise_buf_pending(&n->out)) release_out(n);
  return 0;
}

static int handshake_step(lp2p_noise *n, const uint8_t *msg, size_t len) {
  int rv;
  switch (n->state) {
  case LP2P__NOISE_WAIT_MSG1: {
    uint8_t none[1];
    size_t plen = 0;
    if ((rv = lp2p__noise_hs_read(&n->hs->hs, msg, len, none, 0, &plen))) return rv;
    if ((rv = queue_handshake_msg(n, 1))) return rv;
    n->state = LP2P__NOISE_WAIT_MSG3;
    return 0;
  }
  case LP2P__NOISE_WAIT_MSG2:
    if ((rv = read_payload_msg(n, msg, len))) return rv;
    if ((rv = queue_handshake_msg(n, 1))) return rv;
    return finish(n);
  case LP2P__NOISE_WAIT_MSG3:
    if ((rv = read_payload_msg(n, msg, len))) return rv;
    return finish(n);
  default:
    return LP2P_ERR_INTERNAL;
  }
}

/* Validates an announced frame length before any byte of the body is buffered. */
static int check_length(const lp2p_noise *n, size_t len) {
  switch (n->state) {
  case LP2P__NOISE_WAIT_MSG1: return len == 32 ? 0 : LP2P_ERR_HANDSHAKE; /* e, empty payload */
  case LP2P__NOISE_WAIT_MSG2:
  case LP2P__NOISE_WAIT_MSG3:
    return len >= lp2p__noise_hs_overhead(n->hs->hs.step) ? 0 : LP2P_ERR_HANDSHAKE;
  default: return len >= LP2P_NOISE_TAG_LEN ? 0 : LP2P_ERR_DECRYPT;
  }
}

static int process_frame(lp2p_noise *n, const uint8_t *body, size_t len) {
  if (n->state == LP2P__NOISE_DONE) return lp2p__noise_transport_recv(n, body, len);
  return handshake_step(n, body, len);
}

int64_t lp2p_noise_feed(lp2p_noise *n, const uint8_t *in, size_t len) {
  if (!n || (!in && len)) return LP2P_ERR_INVAL;
  if (n->err) return n->err;
  size_t used = 0;
  while (used < len) {
    int was_done = n->state == LP2P__NOISE_DONE;
    if (was_done && lp2p__noise_buf_pending(&n->pt) >= LP2P_NOISE_MAX_PENDING_PLAINTEXT) break;
    if (n->hdr_len < 2) {
      n->hdr[n->hdr_len++] = in[used++];
      if (n->hdr_len < 2) continue;
      n->body_len = (size_t)n->hdr[0] << 8 | n->hdr[1];
      int rv = check_length(n, n->body_len);
      if (rv) return lp2p__noise_fail(n, rv);
      n->partial.len = 0;
      if (used == len) break;
    }
    const uint8_t *body;
    size_t avail = len - used;
    if (n->partial.len == 0 && avail >= n->body_len) { /* whole frame in the input: no copy */
      body = in + used;
      used += n->body_len;
    } else {
      size_t take = n->body_len - n->partial.len;
      if (take > avail) take = avail;
      if (lp2p__bytes_reserve(&n->mem, &n->partial, n->body_len - n->partial.len))
        return lp2p__noise_fail(n, LP2P_ERR_NOMEM);
      memcpy(n->partial.data + n->partial.len, in + used, take);
      n->partial.len += take;
      used += take;
      if (n->partial.len < n->body_len) break;
      body = n->partial.data;
    }
    n->hdr_len = 0;
    int rv = process_frame(n, body, n->body_len);
    n->partial.len = 0;
    if (rv) return lp2p__noise_fail(n, rv);
    if (!was_done && n->state == LP2P__NOISE_DONE) { /* the rest is transport data */
      release_partial(n);
      break;
    }
  }
  return (int64_t)used;
}

size_t lp2p_noise_output(lp2p_noise *n, const uint8_t **out) {
  size_t pending = lp2p__noise_buf_pending(&n->out);
  *out = pending ? n->out.b.data + n->out.off : NULL;
  return pending;
}

void lp2p_noise_output_consumed(lp2p_noise *n, size_t k) {
  lp2p__noise_buf_consume(&n->out, k);
  /* the buffer that carried the last handshake message goes once it is sent (transport output
   * written later gets a buffer again, kept from then on) */
  if (n->release_out && n->state == LP2P__NOISE_DONE && !lp2p__noise_buf_pending(&n->out)) release_out(n);
}

int lp2p_noise_handshake_done(const lp2p_noise *n) { return n && n->state == LP2P__NOISE_DONE; }
int lp2p_noise_error(const lp2p_noise *n) { return n ? n->err : LP2P_ERR_INVAL; }
int lp2p_noise_is_initiator(const lp2p_noise *n) { return n ? n->initiator : 0; }

const lp2p_peer_id *lp2p_noise_remote_peer(const lp2p_noise *n) {
  return lp2p_noise_handshake_done(n) ? &n->remote_id : NULL;
}

const lp2p_pubkey *lp2p_noise_remote_key(const lp2p_noise *n) {
  return lp2p_noise_handshake_done(n) ? n->remote_key : NULL;
}

const char *lp2p_noise_muxer(const lp2p_noise *n) { return lp2p_noise_handshake_done(n) ? n->muxer : NULL; }

/* The noise_identity field exists for callers whose struct_size covers it. */
#define CFG_V1_SIZE offsetof(lp2p_noise_config, noise_identity)
#define CFG_V2_SIZE (CFG_V1_SIZE + sizeof(const lp2p_noise_identity *))

static int check_config(const lp2p_noise_config *cfg, const lp2p_noise_identity **nid) {
  if (!cfg || cfg->struct_size < CFG_V1_SIZE) return LP2P_ERR_INVAL;
  *nid = cfg->struct_size >= CFG_V2_SIZE ? cfg->noise_identity : NULL;
  if (!cfg->identity && !*nid) return LP2P_ERR_INVAL;
  if (cfg->n_muxers > LP2P_NOISE_MAX_MUXERS || (cfg->n_muxers && !cfg->muxers)) return LP2P_ERR_INVAL;
  for (size_t i = 0; i < cfg->n_muxers; i++) {
    if (!cfg->muxers[i]) return LP2P_ERR_INVAL;
    size_t l = strlen(cfg->muxers[i]);
    if (l == 0 || l > LP2P_NOISE_MAX_MUXER_LEN) return LP2P_ERR_INVAL;
  }
  return 0;
}

/* identity given alongside noise_identity: it must be the key the identity object was made from. */
static int same_key(const lp2p_privkey *identity, const lp2p_noise_identity *nid) {
  lp2p_peer_id id;
  int rv = lp2p_peer_id_from_pubkey(lp2p_privkey_public(identity), &id);
  if (rv) return rv;
  return lp2p_peer_id_equal(&id, &nid->self_id) ? 0 : LP2P_ERR_INVAL;
}

int lp2p__noise_new_ex(lp2p_noise **out, const lp2p_noise_config *cfg, const lp2p_mem *mem,
                       const lp2p__noise_test_params *tp) {
  if (!out) return LP2P_ERR_INVAL;
  *out = NULL;
  const lp2p_noise_identity *nid = NULL;
  int rv = check_config(cfg, &nid);
  if (rv) return rv;
  if (nid && tp && tp->static_priv) return LP2P_ERR_INVAL;
  if (nid && cfg->identity && (rv = same_key(cfg->identity, nid))) return rv;
  if (sodium_init() < 0) return LP2P_ERR_INTERNAL;
  mem = lp2p__mem_or_default(mem);
  lp2p_noise *n = lp2p__calloc(mem, 1, sizeof *n);
  if (!n) return LP2P_ERR_NOMEM;
  n->mem = *mem;
  n->initiator = cfg->initiator ? 1 : 0;
  n->release_out = 1;
  rv = LP2P_ERR_NOMEM;
  lp2p__noise_handshake *h = n->hs = lp2p__calloc(&n->mem, 1, sizeof *n->hs);
  if (!h) goto fail;
  h->muxer_index = -1;
  if (cfg->expected_remote) {
    h->expected = *cfg->expected_remote;
    h->has_expected = 1;
  }
  for (; h->n_muxers < cfg->n_muxers; h->n_muxers++) {
    const char *s = cfg->muxers[h->n_muxers];
    if (!(h->muxers[h->n_muxers] = lp2p__strndup(&n->mem, s, strlen(s)))) goto fail;
  }
  if (nid) {
    h->id = nid;
    h->self_id = nid->self_id;
  } else {
    h->identity = cfg->identity;
    if (tp && tp->static_priv) {
      memcpy(h->fixed_s, tp->static_priv, 32);
      h->has_fixed_s = 1;
    }
    if ((rv = lp2p_peer_id_from_pubkey(lp2p_privkey_public(cfg->identity), &h->self_id))) goto fail;
  }
  rv = lp2p__noise_hs_init_keys(&h->hs, n->initiator, tp ? tp->prologue : NULL, tp ? tp->prologue_len : 0,
                                nid ? nid->s_priv : NULL, nid ? nid->s_pub : NULL, tp ? tp->ephemeral_priv : NULL);
  if (rv) goto fail;
  if (n->initiator) {
    if ((rv = queue_handshake_msg(n, 0))) goto fail; /* msg1: e, empty payload */
    n->state = LP2P__NOISE_WAIT_MSG2;
  } else {
    n->state = LP2P__NOISE_WAIT_MSG1;
  }
  *out = n;
  return 0;
fail:
  lp2p_noise_free(n);
  return rv;
}

int lp2p_noise_new(lp2p_noise **out, const lp2p_noise_config *cfg, const lp2p_mem *mem) {
  return lp2p__noise_new_ex(out, cfg, mem, NULL);
}

void lp2p_noise_free(lp2p_noise *n) {
  if (!n) return;
  lp2p_mem mem = n->mem;
  release_handshake(n);
  lp2p__free(&mem, n->muxer);
  lp2p_pubkey_free(n->remote_key);
  release_partial(n);
  lp2p__noise_buf_free(&mem, &n->out);
  lp2p__noise_buf_free(&mem, &n->pt);
  sodium_memzero(n, sizeof *n);
  lp2p__free(&mem, n);
}

/* ---- test hooks ---- */

const uint8_t *lp2p__noise_handshake_hash(const lp2p_noise *n) { return n->hs ? n->hs->hs.sym.h : n->h; }

void lp2p__noise_set_nonces(lp2p_noise *n, uint64_t tx_nonce, uint64_t rx_nonce) {
  n->tx.n = tx_nonce;
  n->rx.n = rx_nonce;
}

void lp2p__noise_transport_keys(const lp2p_noise *n, uint8_t tx[32], uint8_t rx[32]) {
  memcpy(tx, n->tx.k, 32);
  memcpy(rx, n->rx.k, 32);
}
