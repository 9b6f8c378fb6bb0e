/* handshake.c - the Noise XX pattern over the SymmetricState:
 *   -> e
 *   <- e, ee, s, es
 *   -> s, se
 * Payloads are opaque here (the libp2p layer puts its protobuf in them). */
#include <sodium.h>

#include "noise/noise_int.h"

size_t lp2p__noise_hs_overhead(int msg_index) {
  switch (msg_index) {
  case 0: return 32;              /* e, payload in clear */
  case 1: return 32 + 48 + 16;    /* e, enc(s), tag of payload */
  case 2: return 48 + 16;         /* enc(s), tag of payload */
  default: return 0;
  }
}

size_t lp2p__noise_hs_payload_offset(int msg_index) {
  switch (msg_index) {
  case 0: return 32;      /* after e */
  case 1: return 32 + 48; /* after e, enc(s) */
  case 2: return 48;      /* after enc(s) */
  default: return 0;
  }
}

static int keypair(uint8_t priv[32], uint8_t pub[32], const uint8_t *fixed) {
  if (fixed)
    memcpy(priv, fixed, 32);
  else
    randombytes_buf(priv, 32);
  return crypto_scalarmult_base(pub, priv) == 0 ? 0 : LP2P_ERR_INTERNAL;
}

static void start(lp2p__noise_hs *hs, int initiator, const uint8_t *prologue, size_t prologue_len) {
  memset(hs, 0, sizeof *hs);
  hs->initiator = initiator ? 1 : 0;
  lp2p__noise_sym_init(&hs->sym, LP2P__NOISE_PROTOCOL_NAME);
  lp2p__noise_sym_mix_hash(&hs->sym, prologue, prologue_len);
}

int lp2p__noise_hs_init(lp2p__noise_hs *hs, int initiator, const uint8_t *prologue, size_t prologue_len,
                        const uint8_t *s_priv, const uint8_t *e_priv) {
  start(hs, initiator, prologue, prologue_len);
  int rv = keypair(hs->s_priv, hs->s_pub, s_priv);
  if (rv == 0) rv = keypair(hs->e_priv, hs->e_pub, e_priv);
  if (rv) lp2p__noise_hs_wipe(hs);
  return rv;
}

int lp2p__noise_hs_init_keys(lp2p__noise_hs *hs, int initiator, const uint8_t *prologue, size_t prologue_len,
                             const uint8_t *s_priv, const uint8_t *s_pub, const uint8_t *e_priv) {
  start(hs, initiator, prologue, prologue_len);
  if (s_priv && s_pub) lp2p__noise_hs_set_static(hs, s_priv, s_pub);
  int rv = keypair(hs->e_priv, hs->e_pub, e_priv);
  if (rv) lp2p__noise_hs_wipe(hs);
  return rv;
}

void lp2p__noise_hs_set_static(lp2p__noise_hs *hs, const uint8_t s_priv[32], const uint8_t s_pub[32]) {
  memcpy(hs->s_priv, s_priv, 32);
  memcpy(hs->s_pub, s_pub, 32);
}

/* MixKey(DH(priv, pub)); an all-zero result (low-order point) aborts the handshake. */
static int mix_dh(lp2p__noise_hs *hs, const uint8_t priv[32], const uint8_t pub[32]) {
  uint8_t shared[32];
  if (crypto_scalarmult(shared, priv, pub) != 0) {
    sodium_memzero(shared, sizeof shared);
    return LP2P_ERR_HANDSHAKE;
  }
  int rv = lp2p__noise_sym_mix_key(&hs->sym, shared, sizeof shared);
  sodium_memzero(shared, sizeof shared);
  return rv;
}

static int our_turn(const lp2p__noise_hs *hs) {
  if (hs->step > 2) return 0;
  return (hs->step % 2 == 0) == (hs->initiator == 1);
}

int lp2p__noise_hs_write(lp2p__noise_hs *hs, const uint8_t *payload, size_t payload_len, uint8_t *out, size_t cap,
                         size_t *out_len) {
  if (!our_turn(hs)) return LP2P_ERR_STATE;
  size_t overhead = lp2p__noise_hs_overhead(hs->step);
  if (payload_len > cap || cap - payload_len < overhead) return LP2P_ERR_BUFSIZE;
  size_t off = 0, n = 0;
  int rv = 0;
  switch (hs->step) {
  case 0:
    memcpy(out, hs->e_pub, 32);
    lp2p__noise_sym_mix_hash(&hs->sym, hs->e_pub, 32);
    off = 32;
    break;
  case 1:
    memcpy(out, hs->e_pub, 32);
    lp2p__noise_sym_mix_hash(&hs->sym, hs->e_pub, 32);
    off = 32;
    if ((rv = mix_dh(hs, hs->e_priv, hs->re))) return rv;                                        /* ee */
    if ((rv = lp2p__noise_sym_encrypt_and_hash(&hs->sym, hs->s_pub, 32, out + off, &n))) return rv; /* s */
    off += n;
    if ((rv = mix_dh(hs, hs->s_priv, hs->re))) return rv;                                        /* es */
    break;
  case 2:
    if ((rv = lp2p__noise_sym_encrypt_and_hash(&hs->sym, hs->s_pub, 32, out, &n))) return rv;     /* s */
    off = n;
    if ((rv = mix_dh(hs, hs->s_priv, hs->re))) return rv;                                        /* se */
    break;
  }
  if ((rv = lp2p__noise_sym_encrypt_and_hash(&hs->sym, payload, payload_len, out + off, &n))) return rv;
  *out_len = off + n;
  hs->step++;
  return 0;
}

int lp2p__noise_hs_read(lp2p__noise_hs *hs, const uint8_t *msg, size_t len, uint8_t *payload_out, size_t cap,
                        size_t *payload_len) {
  if (hs->step > 2 || our_turn(hs)) return LP2P_ERR_STATE;
  size_t overhead = lp2p__noise_hs_overhead(hs->step);
  if (len < overhead) return LP2P_ERR_HANDSHAKE;
  if (cap < len - overhead) return LP2P_ERR_BUFSIZE;
  size_t off = 0, n = 0;
  int rv = 0;
  switch (hs->step) {
  case 0:
    memcpy(hs->re, msg, 32);
    lp2p__noise_sym_mix_hash(&hs->sym, hs->re, 32);
    off = 32;
    break;
  case 1:
    memcpy(hs->re, msg, 32);
    lp2p__noise_sym_mix_hash(&hs->sym, hs->re, 32);
    off = 32;
    if ((rv = mix_dh(hs, hs->e_priv, hs->re))) return rv;                                       /* ee */
    if ((rv = lp2p__noise_sym_decrypt_and_hash(&hs->sym, msg + off, 48, hs->rs, &n))) return rv; /* s */
    off += 48;
    if ((rv = mix_dh(hs, hs->e_priv, hs->rs))) return rv;                                       /* es */
    break;
  case 2:
    if ((rv = lp2p__noise_sym_decrypt_and_hash(&hs->sym, msg, 48, hs->rs, &n))) return rv;       /* s */
    off = 48;
    if ((rv = mix_dh(hs, hs->e_priv, hs->rs))) return rv;                                       /* se */
    break;
  }
  if ((rv = lp2p__noise_sym_decrypt_and_hash(&hs->sym, msg + off, len - off, payload_out, payload_len))) return rv;
  hs->step++;
  return 0;
}

int lp2p__noise_hs_split(const lp2p__noise_hs *hs, lp2p__noise_cipher *c1, lp2p__noise_cipher *c2) {
  if (hs->step != 3) return LP2P_ERR_STATE;
  return lp2p__noise_sym_split(&hs->sym, c1, c2);
}

void lp2p__noise_hs_wipe_keys(lp2p__noise_hs *hs) {
  sodium_memzero(hs->s_priv, sizeof hs->s_priv);
  sodium_memzero(hs->e_priv, sizeof hs->e_priv);
  sodium_memzero(hs->sym.ck, sizeof hs->sym.ck);
  lp2p__noise_cipher_wipe(&hs->sym.cs);
}

void lp2p__noise_hs_wipe(lp2p__noise_hs *hs) { sodium_memzero(hs, sizeof *hs); }
