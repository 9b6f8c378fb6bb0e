/* core/key_ed25519.c - Ed25519 keys (libsodium). PublicKey.Data is the raw
 * 32-byte key; PrivateKey.Data is seed || pub (64 bytes), the legacy 96-byte
 * seed || pub || pub form is accepted when both copies agree. Signatures are
 * plain RFC 8032 Ed25519 over the message. */
#include <sodium.h>
#include <string.h>

#include "core/keys_int.h"

#define SEED 32
#define PUB crypto_sign_PUBLICKEYBYTES /* 32 */
#define SK crypto_sign_SECRETKEYBYTES  /* 64: seed || pub, as libp2p stores it */

static int pub_parse(lp2p_pubkey *k) { return k->len == PUB ? 0 : LP2P_ERR_KEY; }

static void pub_free(void *impl) { (void)impl; }

static int verify(const lp2p_pubkey *k, const uint8_t *msg, size_t msglen, const uint8_t *sig,
                  size_t siglen) {
  if (siglen != crypto_sign_BYTES) return LP2P_ERR_SIGNATURE;
  return crypto_sign_verify_detached(sig, msg, msglen, k->data) ? LP2P_ERR_SIGNATURE : 0;
}

static int priv_parse(const uint8_t *data, size_t len, lp2p__privkey_parts *out) {
  if (len != SK && len != SK + PUB) return LP2P_ERR_KEY;
  if (len == SK + PUB && sodium_memcmp(data + SEED, data + SK, PUB)) return LP2P_ERR_KEY;
  uint8_t pk[PUB], sk[SK];
  crypto_sign_seed_keypair(pk, sk, data);
  int rv = LP2P_ERR_KEY;
  if (sodium_memcmp(pk, data + SEED, PUB)) goto out; /* stored pub must match the seed */
  rv = LP2P_ERR_NOMEM;
  if (!(out->data = lp2p__key_memdup(sk, SK)) || !(out->pub = lp2p__key_memdup(pk, PUB))) {
    lp2p__key_free_secret(out->data, SK);
    lp2p__key_free(out->pub);
    out->data = out->pub = NULL;
    goto out;
  }
  out->len = SK;
  out->publen = PUB;
  rv = 0;
out:
  sodium_memzero(sk, sizeof sk);
  return rv;
}

static int generate(unsigned bits, lp2p__privkey_parts *out) {
  (void)bits;
  uint8_t pk[PUB], sk[SK];
  crypto_sign_keypair(pk, sk);
  int rv = priv_parse(sk, SK, out);
  sodium_memzero(sk, sizeof sk);
  return rv;
}

static int sign(const lp2p_privkey *k, const uint8_t *msg, size_t msglen, uint8_t *sig, size_t cap) {
  if (cap < crypto_sign_BYTES) return LP2P_ERR_BUFSIZE;
  crypto_sign_detached(sig, NULL, msg, msglen, k->data);
  return crypto_sign_BYTES;
}

static void priv_free(void *impl) { (void)impl; }

const lp2p__key_ops lp2p__key_ed25519_ops = {
    .pub_parse = pub_parse,
    .pub_free = pub_free,
    .verify = verify,
    .priv_parse = priv_parse,
    .generate = generate,
    .sign = sign,
    .priv_free = priv_free,
};
