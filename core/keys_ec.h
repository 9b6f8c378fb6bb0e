/* core/keys_ec.h - ECDSA over SHA-256 shared by secp256k1 and P-256 keys
 * (mbedTLS 2.28). Signatures are strict DER: SEQUENCE { INTEGER r, INTEGER s }
 * with minimal lengths and minimal, positive integers.
 *
 * The structs are owned by the key objects (freed with the _free functions
 * below, which wipe secrets). The curve group is loaded per operation so that
 * concurrent use of one key never mutates shared state. */
#ifndef LP2P_CORE_KEYS_EC_H
#define LP2P_CORE_KEYS_EC_H
#include <mbedtls/ecp.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lp2p__ec_pub {
  mbedtls_ecp_group_id gid;
  mbedtls_ecp_point q;
} lp2p__ec_pub;

typedef struct lp2p__ec_priv {
  mbedtls_ecp_group_id gid;
  mbedtls_mpi d;
} lp2p__ec_priv;

/* Largest DER signature for a 256-bit curve: 30 44 (02 21 00|r) (02 21 00|s). */
#define LP2P__EC_SIG_MAX 72

lp2p__ec_pub *lp2p__ec_pub_new(mbedtls_ecp_group_id gid); /* NULL on OOM; q zero */
void lp2p__ec_pub_free(void *pub);
lp2p__ec_priv *lp2p__ec_priv_new(mbedtls_ecp_group_id gid); /* NULL on OOM; d zero */
void lp2p__ec_priv_free(void *priv);

/* Checks 1 <= d < n and computes q = d*G into *q (initialized by the caller). */
int lp2p__ec_public_point(const lp2p__ec_priv *priv, mbedtls_ecp_point *q);

/* ECDSA over SHA-256(msg). low_s_only rejects S > n/2. Returns 0 or
 * LP2P_ERR_SIGNATURE. */
int lp2p__ec_verify(const lp2p__ec_pub *pub, const uint8_t *msg, size_t msglen, const uint8_t *sig,
                    size_t siglen, int low_s_only);
/* Deterministic (RFC 6979) ECDSA over SHA-256(msg), S normalized to n - S
 * when above n/2, strict DER. Returns the signature length, LP2P_ERR_BUFSIZE
 * or another error. */
int lp2p__ec_sign(const lp2p__ec_priv *priv, const uint8_t *msg, size_t msglen, uint8_t *sig, size_t cap);

/* Strict DER ECDSA-Sig-Value parse: r and s point into sig, without the sign
 * byte; each at most max_int bytes. 0 or LP2P_ERR_SIGNATURE. */
int lp2p__ec_der_parse(const uint8_t *sig, size_t len, size_t max_int, const uint8_t **r, size_t *rlen,
                       const uint8_t **s, size_t *slen);

#endif
