/* core/keys_int.h - internals shared by the key implementations (keys.c
 * dispatches to one key_<type>.c per lp2p_key_type).
 *
 * Ownership: a lp2p_pubkey owns `data` (the protobuf Data bytes) and `impl`
 * (parsed form, freed by the type's pub_free). A lp2p_privkey owns `data` (the
 * PrivateKey Data bytes: secret, wiped on free), `impl` (freed and wiped by
 * priv_free) and `pub`. Everything is allocated with lp2p_mem_default().
 * Objects are never modified after creation, so they may be shared read-only
 * between threads: implementations must not cache anything inside them while
 * signing or verifying (mbedTLS groups are therefore loaded per operation). */
#ifndef LP2P_CORE_KEYS_INT_H
#define LP2P_CORE_KEYS_INT_H
#include <stddef.h>
#include <stdint.h>

#include "lp2p/keys.h"

struct lp2p_pubkey {
  lp2p_key_type type;
  uint8_t *data; /* PublicKey.Data */
  size_t len;
  void *impl; /* type specific, may be NULL */
};

struct lp2p_privkey {
  lp2p_key_type type;
  uint8_t *data; /* PrivateKey.Data (secret) */
  size_t len;
  void *impl;
  lp2p_pubkey *pub;
};

/* Result of a type's private-key constructor: the canonical PrivateKey.Data,
 * the parsed form and the PublicKey.Data it derives. data and pub are
 * allocated with lp2p__key_alloc; keys.c takes ownership of everything. */
typedef struct lp2p__privkey_parts {
  uint8_t *data;
  size_t len;
  void *impl;
  uint8_t *pub;
  size_t publen;
} lp2p__privkey_parts;

typedef struct lp2p__key_ops {
  /* Validate k->data/k->len and set k->impl. LP2P_ERR_KEY on bad data. */
  int (*pub_parse)(lp2p_pubkey *k);
  void (*pub_free)(void *impl);
  /* 0 or LP2P_ERR_SIGNATURE. */
  int (*verify)(const lp2p_pubkey *k, const uint8_t *msg, size_t msglen, const uint8_t *sig, size_t siglen);
  /* Parse PrivateKey.Data. */
  int (*priv_parse)(const uint8_t *data, size_t len, lp2p__privkey_parts *out);
  /* NULL when the type cannot be generated. */
  int (*generate)(unsigned bits, lp2p__privkey_parts *out);
  /* Signature length or LP2P_ERR_BUFSIZE. */
  int (*sign)(const lp2p_privkey *k, const uint8_t *msg, size_t msglen, uint8_t *sig, size_t cap);
  void (*priv_free)(void *impl);
} lp2p__key_ops;

extern const lp2p__key_ops lp2p__key_ed25519_ops;
extern const lp2p__key_ops lp2p__key_secp256k1_ops;
extern const lp2p__key_ops lp2p__key_rsa_ops;
extern const lp2p__key_ops lp2p__key_ecdsa_ops;

/* sodium_init() once; LP2P_ERR_INTERNAL if libsodium cannot start. */
int lp2p__keys_init(void);
/* The mbedTLS RNG callback: libsodium's randombytes_buf (p_rng unused). */
int lp2p__keys_rng(void *p_rng, unsigned char *out, size_t len);
/* malloc/free through lp2p_mem_default(); lp2p__key_free_secret wipes first. */
void *lp2p__key_alloc(size_t n);
uint8_t *lp2p__key_memdup(const uint8_t *p, size_t n);
void lp2p__key_free(void *p);
void lp2p__key_free_secret(void *p, size_t n);
/* Maps an mbedTLS error: allocation failures to LP2P_ERR_NOMEM, others to `other`. */
int lp2p__keys_mbedtls_err(int mbedtls_ret, int other);
/* For a DER SEQUENCE { INTEGER, X, ... } spanning exactly data[0..len): the
 * tag of X, else -1. Tells PKCS#1 RSAPrivateKey (X = INTEGER 0x02) and SEC1
 * ECPrivateKey (X = OCTET STRING 0x04) from PKCS#8 (X = SEQUENCE) and PEM. */
int lp2p__der_key_form(const uint8_t *data, size_t len);

#endif
