/* payload.c - the libp2p NoiseHandshakePayload: identity key, signature over the static
 * X25519 key, stream_muxers extension (early muxer negotiation). */
#include <protobuf-c/protobuf-c.h>
#include <sodium.h>

#include "noise/noise_int.h"
#include "noise_payload.pb-c.h"

/* "noise-libp2p-static-key:" || static key: the 56 bytes both sides sign / verify. */
static void signed_data(uint8_t out[LP2P__NOISE_SIG_PREFIX_LEN + 32], const uint8_t static_pub[32]) {
  memcpy(out, LP2P__NOISE_SIG_PREFIX, LP2P__NOISE_SIG_PREFIX_LEN);
  memcpy(out + LP2P__NOISE_SIG_PREFIX_LEN, static_pub, 32);
}

int lp2p__noise_payload_id_fields(const lp2p_privkey *identity, const uint8_t static_pub[32], uint8_t *out,
                                  size_t cap, size_t *len) {
  uint8_t pk[LP2P_PUBKEY_PB_MAX], sig[LP2P_SIGNATURE_MAX], msg[LP2P__NOISE_SIG_PREFIX_LEN + 32];
  int pk_len = lp2p_pubkey_to_protobuf(lp2p_privkey_public(identity), pk, sizeof pk);
  if (pk_len < 0) return pk_len == LP2P_ERR_NOMEM ? pk_len : LP2P_ERR_INTERNAL;
  signed_data(msg, static_pub);
  int sig_len = lp2p_privkey_sign(identity, msg, sizeof msg, sig, sizeof sig);
  if (sig_len < 0) return sig_len == LP2P_ERR_NOMEM ? sig_len : LP2P_ERR_INTERNAL;

  Lp2pNoise__NoiseHandshakePayload p = LP2P_NOISE__NOISE_HANDSHAKE_PAYLOAD__INIT;
  p.has_identity_key = 1;
  p.identity_key.data = pk;
  p.identity_key.len = (size_t)pk_len;
  p.has_identity_sig = 1;
  p.identity_sig.data = sig;
  p.identity_sig.len = (size_t)sig_len;
  *len = lp2p_noise__noise_handshake_payload__get_packed_size(&p);
  if (!out || cap < *len) return LP2P_ERR_BUFSIZE;
  return lp2p_noise__noise_handshake_payload__pack(&p, out) == *len ? 0 : LP2P_ERR_INTERNAL;
}

/* A payload message holding only the extensions (field 4) with the muxer list. */
static void ext_only(Lp2pNoise__NoiseHandshakePayload *p, Lp2pNoise__NoiseExtensions *ext, const char *const *muxers,
                     size_t n_muxers) {
  lp2p_noise__noise_handshake_payload__init(p);
  lp2p_noise__noise_extensions__init(ext);
  ext->n_stream_muxers = n_muxers;
  ext->stream_muxers = (char **)muxers;
  p->extensions = ext;
}

size_t lp2p__noise_payload_ext_size(const char *const *muxers, size_t n_muxers) {
  if (!n_muxers) return 0;
  Lp2pNoise__NoiseHandshakePayload p;
  Lp2pNoise__NoiseExtensions ext;
  ext_only(&p, &ext, muxers, n_muxers);
  return lp2p_noise__noise_handshake_payload__get_packed_size(&p);
}

void lp2p__noise_payload_ext_pack(const char *const *muxers, size_t n_muxers, uint8_t *out) {
  if (!n_muxers) return;
  Lp2pNoise__NoiseHandshakePayload p;
  Lp2pNoise__NoiseExtensions ext;
  ext_only(&p, &ext, muxers, n_muxers);
  lp2p_noise__noise_handshake_payload__pack(&p, out);
}

int lp2p__noise_payload_build(const lp2p_mem *m, const lp2p_privkey *identity, const uint8_t static_pub[32],
                              const char *const *muxers, size_t n_muxers, uint8_t **out, size_t *out_len) {
  uint8_t fields[LP2P__NOISE_ID_FIELDS_MAX];
  size_t flen = 0;
  int rv = lp2p__noise_payload_id_fields(identity, static_pub, fields, sizeof fields, &flen);
  if (rv) return rv == LP2P_ERR_BUFSIZE ? LP2P_ERR_INTERNAL : rv;
  size_t elen = lp2p__noise_payload_ext_size(muxers, n_muxers);
  uint8_t *buf = lp2p__malloc(m, flen + elen);
  if (!buf) return LP2P_ERR_NOMEM;
  memcpy(buf, fields, flen);
  lp2p__noise_payload_ext_pack(muxers, n_muxers, buf + flen);
  *out = buf;
  *out_len = flen + elen;
  return 0;
}

/* protobuf-c reports allocation failure and malformed input alike (NULL): remember which. */
typedef struct pb_alloc_ctx {
  ProtobufCAllocator inner;
  int failed;
} pb_alloc_ctx;

static void *pb_alloc(void *ud, size_t n) {
  pb_alloc_ctx *c = ud;
  void *p = c->inner.alloc(c->inner.allocator_data, n);
  if (!p) c->failed = 1;
  return p;
}

static void pb_free(void *ud, void *p) {
  pb_alloc_ctx *c = ud;
  c->inner.free(c->inner.allocator_data, p);
}

static int contains(char *const *list, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (list[i] && !strcmp(list[i], s)) return 1;
  return 0;
}

/* Early muxer negotiation (inlined-muxer-negotiation.md): the first entry of the initiator's
 * list that the responder supports. Only when both lists are non-empty; no overlap then fails. */
static int select_muxer(int we_initiate, char *const *local, size_t n_local, char *const *remote, size_t n_remote,
                        int *index) {
  *index = -1;
  if (!n_local || !n_remote) return 0;
  if (we_initiate) {
    for (size_t i = 0; i < n_local; i++)
      if (contains(remote, n_remote, local[i])) {
        *index = (int)i;
        return 0;
      }
  } else {
    for (size_t j = 0; j < n_remote; j++)
      for (size_t i = 0; i < n_local; i++)
        if (remote[j] && !strcmp(remote[j], local[i])) {
          *index = (int)i;
          return 0;
        }
  }
  return LP2P_ERR_HANDSHAKE;
}

int lp2p__noise_payload_check(const lp2p_mem *m, const uint8_t *payload, size_t len, const uint8_t rs[32],
                              int we_initiate, const lp2p_peer_id *expected, const lp2p_peer_id *self,
                              const char *const *muxers, size_t n_muxers, lp2p__noise_remote *out) {
  pb_alloc_ctx ctx = {.failed = 0};
  lp2p__protobuf_allocator(m, &ctx.inner);
  ProtobufCAllocator alloc = {pb_alloc, pb_free, &ctx};
  Lp2pNoise__NoiseHandshakePayload *p = lp2p_noise__noise_handshake_payload__unpack(&alloc, len, payload);
  if (!p) return ctx.failed ? LP2P_ERR_NOMEM : LP2P_ERR_HANDSHAKE;

  lp2p_pubkey *key = NULL;
  lp2p_peer_id id;
  uint8_t msg[LP2P__NOISE_SIG_PREFIX_LEN + 32];
  size_t n_remote = 0;
  int idx = -1, rv = 0;
  if (!p->has_identity_key || !p->has_identity_sig || !p->identity_key.len || !p->identity_sig.len) {
    rv = LP2P_ERR_HANDSHAKE;
    goto done;
  }
  rv = lp2p_pubkey_from_protobuf(&key, p->identity_key.data, p->identity_key.len);
  if (rv) {
    key = NULL;
    if (rv != LP2P_ERR_NOMEM) rv = LP2P_ERR_HANDSHAKE;
    goto done;
  }
  signed_data(msg, rs);
  if (lp2p_pubkey_verify(key, msg, sizeof msg, p->identity_sig.data, p->identity_sig.len) != 0) {
    rv = LP2P_ERR_SIGNATURE;
    goto done;
  }
  rv = lp2p_peer_id_from_pubkey(key, &id);
  if (rv) {
    if (rv != LP2P_ERR_NOMEM) rv = LP2P_ERR_HANDSHAKE;
    goto done;
  }
  if (expected && !lp2p_peer_id_equal(expected, &id)) {
    rv = LP2P_ERR_PEER_ID_MISMATCH;
    goto done;
  }
  if (self && lp2p_peer_id_equal(self, &id)) { /* a connection to ourselves */
    rv = LP2P_ERR_HANDSHAKE;
    goto done;
  }
  n_remote = p->extensions ? p->extensions->n_stream_muxers : 0;
  if (n_remote > LP2P_NOISE_MAX_REMOTE_MUXERS) {
    rv = LP2P_ERR_HANDSHAKE;
    goto done;
  }
  rv = select_muxer(we_initiate, (char *const *)muxers, n_muxers, n_remote ? p->extensions->stream_muxers : NULL,
                    n_remote, &idx);
done:
  lp2p_noise__noise_handshake_payload__free_unpacked(p, &alloc);
  if (rv) {
    lp2p_pubkey_free(key);
    return rv;
  }
  out->key = key;
  out->id = id;
  out->muxer_index = idx;
  return 0;
}
