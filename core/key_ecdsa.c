/* core/key_ecdsa.c - ECDSA P-256 keys (mbedTLS). PublicKey.Data is a DER
 * SubjectPublicKeyInfo (uncompressed point), PrivateKey.Data a DER SEC1
 * ECPrivateKey (RFC 5915). ECDSA over SHA-256(msg), DER signatures; high S is
 * accepted on verification (go-libp2p signs with random k and does not
 * normalize), signing produces low S. js-libp2p cannot read these keys (see
 * peer-id.md): verify-only interop in practice, and no generation. */
#include <mbedtls/pk.h>
#include <string.h>

#include "core/keys_ec.h"
#include "core/keys_int.h"

#define GID MBEDTLS_ECP_DP_SECP256R1

static mbedtls_pk_context *pk_new(void) {
  mbedtls_pk_context *pk = lp2p__key_alloc(sizeof *pk);
  if (pk) mbedtls_pk_init(pk);
  return pk;
}

static void pk_free(mbedtls_pk_context *pk) {
  if (!pk) return;
  mbedtls_pk_free(pk);
  lp2p__key_free(pk);
}

static int check_ec(mbedtls_pk_context *pk) {
  if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY) return LP2P_ERR_KEY;
  return mbedtls_pk_ec(*pk)->grp.id == GID ? 0 : LP2P_ERR_KEY;
}

static int pub_parse(lp2p_pubkey *k) {
  if (k->len < 2 || k->data[0] != 0x30) return LP2P_ERR_KEY;
  mbedtls_pk_context *pk = pk_new();
  if (!pk) return LP2P_ERR_NOMEM;
  unsigned char *p = k->data;
  int ret = mbedtls_pk_parse_subpubkey(&p, k->data + k->len, pk); /* checks the point is on the curve */
  int rv = ret ? lp2p__keys_mbedtls_err(ret, LP2P_ERR_KEY) : check_ec(pk);
  if (!rv && p != k->data + k->len) rv = LP2P_ERR_KEY;
  lp2p__ec_pub *pub = NULL;
  if (!rv && !(pub = lp2p__ec_pub_new(GID))) rv = LP2P_ERR_NOMEM;
  if (!rv && (ret = mbedtls_ecp_copy(&pub->q, &mbedtls_pk_ec(*pk)->Q)))
    rv = lp2p__keys_mbedtls_err(ret, LP2P_ERR_KEY);
  pk_free(pk);
  if (rv) {
    lp2p__ec_pub_free(pub);
    return rv;
  }
  k->impl = pub;
  return 0;
}

static int verify(const lp2p_pubkey *k, const uint8_t *msg, size_t msglen, const uint8_t *sig,
                  size_t siglen) {
  return lp2p__ec_verify(k->impl, msg, msglen, sig, siglen, 0);
}

static int priv_parse(const uint8_t *data, size_t len, lp2p__privkey_parts *out) {
  if (lp2p__der_key_form(data, len) != 0x04) return LP2P_ERR_KEY; /* SEC1 only */
  mbedtls_pk_context *pk = pk_new();
  lp2p__ec_priv *priv = lp2p__ec_priv_new(GID);
  mbedtls_ecp_point q;
  mbedtls_ecp_point_init(&q);
  uint8_t buf[LP2P_PUBKEY_PB_MAX];
  int rv = 0, ret = 0, n = 0;
  if (!pk || !priv) rv = LP2P_ERR_NOMEM;
  if (!rv && (ret = mbedtls_pk_parse_key(pk, data, len, NULL, 0)))
    rv = lp2p__keys_mbedtls_err(ret, LP2P_ERR_KEY);
  if (!rv) rv = check_ec(pk);
  if (!rv && (ret = mbedtls_mpi_copy(&priv->d, &mbedtls_pk_ec(*pk)->d)))
    rv = lp2p__keys_mbedtls_err(ret, LP2P_ERR_KEY);
  /* The embedded public key (when present) must be d*G. */
  if (!rv) rv = lp2p__ec_public_point(priv, &q);
  if (!rv && mbedtls_ecp_point_cmp(&q, &mbedtls_pk_ec(*pk)->Q)) rv = LP2P_ERR_KEY;
  if (!rv && (n = mbedtls_pk_write_pubkey_der(pk, buf, sizeof buf)) <= 0)
    rv = lp2p__keys_mbedtls_err(n, LP2P_ERR_INTERNAL);
  if (!rv) {
    out->data = lp2p__key_memdup(data, len);
    out->pub = lp2p__key_memdup(buf + sizeof buf - n, (size_t)n);
    if (!out->data || !out->pub) rv = LP2P_ERR_NOMEM;
  }
  mbedtls_ecp_point_free(&q);
  pk_free(pk);
  if (rv) {
    lp2p__key_free_secret(out->data, len);
    lp2p__key_free(out->pub);
    memset(out, 0, sizeof *out);
    lp2p__ec_priv_free(priv);
    return rv;
  }
  out->len = len;
  out->publen = (size_t)n;
  out->impl = priv;
  return 0;
}

static int sign(const lp2p_privkey *k, const uint8_t *msg, size_t msglen, uint8_t *sig, size_t cap) {
  return lp2p__ec_sign(k->impl, msg, msglen, sig, cap);
}

const lp2p__key_ops lp2p__key_ecdsa_ops = {
    .pub_parse = pub_parse,
    .pub_free = lp2p__ec_pub_free,
    .verify = verify,
    .priv_parse = priv_parse,
    .generate = NULL,
    .sign = sign,
    .priv_free = lp2p__ec_priv_free,
};
