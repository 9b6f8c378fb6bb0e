/* identity.c - lp2p_noise_identity: the per-node X25519 static keypair with the identity's
 * signature over it, encoded once as the NoiseHandshakePayload key and signature fields, then
 * only read by the sessions that borrow it. */
#include <sodium.h>

#include "noise/noise_int.h"

int lp2p__noise_identity_new_ex(lp2p_noise_identity **out, const lp2p_privkey *identity, const uint8_t *static_priv,
                                const lp2p_mem *mem) {
  if (!out) return LP2P_ERR_INVAL;
  *out = NULL;
  if (!identity) return LP2P_ERR_INVAL;
  if (sodium_init() < 0) return LP2P_ERR_INTERNAL;
  mem = lp2p__mem_or_default(mem);
  uint8_t s_priv[32], s_pub[32], fields[LP2P__NOISE_ID_FIELDS_MAX];
  size_t flen = 0;
  lp2p_peer_id self;
  if (static_priv)
    memcpy(s_priv, static_priv, 32);
  else
    randombytes_buf(s_priv, 32);
  int rv = crypto_scalarmult_base(s_pub, s_priv) == 0 ? 0 : LP2P_ERR_INTERNAL;
  if (!rv) rv = lp2p_peer_id_from_pubkey(lp2p_privkey_public(identity), &self);
  if (!rv) rv = lp2p__noise_payload_id_fields(identity, s_pub, fields, sizeof fields, &flen);
  if (rv && rv != LP2P_ERR_NOMEM) rv = LP2P_ERR_INTERNAL;
  lp2p_noise_identity *id = NULL;
  if (!rv) {
    id = lp2p__malloc(mem, sizeof *id + flen);
    if (!id) rv = LP2P_ERR_NOMEM;
  }
  if (!rv) {
    memset(id, 0, sizeof *id);
    id->mem = *mem;
    memcpy(id->s_priv, s_priv, 32);
    memcpy(id->s_pub, s_pub, 32);
    id->self_id = self;
    id->fields_len = flen;
    memcpy(id->fields, fields, flen);
    *out = id;
  }
  sodium_memzero(s_priv, sizeof s_priv);
  return rv;
}

int lp2p_noise_identity_new(lp2p_noise_identity **out, const lp2p_privkey *identity, const lp2p_mem *mem) {
  return lp2p__noise_identity_new_ex(out, identity, NULL, mem);
}

void lp2p_noise_identity_free(lp2p_noise_identity *id) {
  if (!id) return;
  lp2p_mem mem = id->mem;
  sodium_memzero(id, sizeof *id + id->fields_len);
  lp2p__free(&mem, id);
}
