/* core/key_secp256k1.c - secp256k1 keys (mbedTLS). PublicKey.Data is the
 * 33-byte compressed SEC1 point (02|03 || X); PrivateKey.Data the 32-byte
 * big-endian scalar. ECDSA over SHA-256(msg), DER; verification requires
 * low S (as js-libp2p / @noble/curves do), signing produces it.
 *
 * mbedTLS 2.28 cannot read compressed points, so they are decompressed here:
 * y^2 = x^3 + 7 mod p, and p = 3 mod 4 gives sqrt(a) = a^((p+1)/4). */
#include <sodium.h>
#include <string.h>

#include "core/keys_ec.h"
#include "core/keys_int.h"

#define GID MBEDTLS_ECP_DP_SECP256K1
#define COORD 32
#define COMPRESSED (1 + COORD)

/* Decompresses data[0..33) into q. 0, LP2P_ERR_KEY or LP2P_ERR_NOMEM. */
static int decompress(const uint8_t *data, mbedtls_ecp_point *q) {
  if (data[0] != 0x02 && data[0] != 0x03) return LP2P_ERR_KEY;
  mbedtls_ecp_group grp;
  mbedtls_mpi rhs, e, y2;
  mbedtls_ecp_group_init(&grp);
  mbedtls_mpi_init(&rhs);
  mbedtls_mpi_init(&e);
  mbedtls_mpi_init(&y2);
  int rv = LP2P_ERR_KEY, ret;
  mbedtls_mpi *x = &q->X, *y = &q->Y;
  if ((ret = mbedtls_ecp_group_load(&grp, GID)) || (ret = mbedtls_mpi_read_binary(x, data + 1, COORD)))
    goto out;
  if (mbedtls_mpi_cmp_mpi(x, &grp.P) >= 0) goto out; /* x must be a field element */
  /* rhs = x^3 + A x + B mod p (A = 0 for secp256k1, kept for clarity) */
  if ((ret = mbedtls_mpi_mul_mpi(&rhs, x, x)) || (ret = mbedtls_mpi_mod_mpi(&rhs, &rhs, &grp.P)) ||
      (ret = mbedtls_mpi_mul_mpi(&rhs, &rhs, x)) || (ret = mbedtls_mpi_add_mpi(&rhs, &rhs, &grp.B)) ||
      (ret = mbedtls_mpi_mod_mpi(&rhs, &rhs, &grp.P)))
    goto out;
  /* y = rhs^((p+1)/4) mod p */
  if ((ret = mbedtls_mpi_add_int(&e, &grp.P, 1)) || (ret = mbedtls_mpi_shift_r(&e, 2)) ||
      (ret = mbedtls_mpi_exp_mod(y, &rhs, &e, &grp.P, NULL)))
    goto out;
  /* Not every x is on the curve: check y^2 == rhs. */
  if ((ret = mbedtls_mpi_mul_mpi(&y2, y, y)) || (ret = mbedtls_mpi_mod_mpi(&y2, &y2, &grp.P))) goto out;
  if (mbedtls_mpi_cmp_mpi(&y2, &rhs) != 0) goto out;
  if (mbedtls_mpi_get_bit(y, 0) != (data[0] & 1)) {
    if (mbedtls_mpi_cmp_int(y, 0) == 0) goto out; /* y = 0 has no odd twin */
    if ((ret = mbedtls_mpi_sub_mpi(y, &grp.P, y))) goto out;
  }
  if ((ret = mbedtls_mpi_lset(&q->Z, 1))) goto out;
  if (mbedtls_ecp_check_pubkey(&grp, q) == 0) rv = 0;
out:
  if (ret) rv = lp2p__keys_mbedtls_err(ret, LP2P_ERR_KEY);
  mbedtls_mpi_free(&y2);
  mbedtls_mpi_free(&e);
  mbedtls_mpi_free(&rhs);
  mbedtls_ecp_group_free(&grp);
  return rv;
}

static int compress(const mbedtls_ecp_point *q, uint8_t out[COMPRESSED]) {
  out[0] = (uint8_t)(0x02 | mbedtls_mpi_get_bit(&q->Y, 0));
  return mbedtls_mpi_write_binary(&q->X, out + 1, COORD) ? LP2P_ERR_INTERNAL : 0;
}

static int pub_parse(lp2p_pubkey *k) {
  if (k->len != COMPRESSED) return LP2P_ERR_KEY;
  lp2p__ec_pub *p = lp2p__ec_pub_new(GID);
  if (!p) return LP2P_ERR_NOMEM;
  int rv = decompress(k->data, &p->q);
  if (rv) {
    lp2p__ec_pub_free(p);
    return rv;
  }
  k->impl = p;
  return 0;
}

static int verify(const lp2p_pubkey *k, const uint8_t *msg, size_t msglen, const uint8_t *sig,
                  size_t siglen) {
  return lp2p__ec_verify(k->impl, msg, msglen, sig, siglen, 1);
}

/* Builds the parts from an initialized scalar (takes ownership of priv). */
static int finish(lp2p__ec_priv *priv, lp2p__privkey_parts *out) {
  mbedtls_ecp_point q;
  mbedtls_ecp_point_init(&q);
  uint8_t d[COORD], pub[COMPRESSED];
  int rv = lp2p__ec_public_point(priv, &q);
  if (!rv) rv = compress(&q, pub);
  if (!rv && mbedtls_mpi_write_binary(&priv->d, d, COORD)) rv = LP2P_ERR_KEY;
  mbedtls_ecp_point_free(&q);
  if (!rv) {
    out->data = lp2p__key_memdup(d, COORD);
    out->pub = lp2p__key_memdup(pub, COMPRESSED);
    if (!out->data || !out->pub) {
      lp2p__key_free_secret(out->data, COORD);
      lp2p__key_free(out->pub);
      out->data = out->pub = NULL;
      rv = LP2P_ERR_NOMEM;
    }
  }
  sodium_memzero(d, sizeof d);
  if (rv) {
    lp2p__ec_priv_free(priv);
    return rv;
  }
  out->len = COORD;
  out->publen = COMPRESSED;
  out->impl = priv;
  return 0;
}

static int priv_parse(const uint8_t *data, size_t len, lp2p__privkey_parts *out) {
  if (len != COORD) return LP2P_ERR_KEY;
  lp2p__ec_priv *priv = lp2p__ec_priv_new(GID);
  if (!priv) return LP2P_ERR_NOMEM;
  int ret = mbedtls_mpi_read_binary(&priv->d, data, len);
  if (ret) {
    lp2p__ec_priv_free(priv);
    return lp2p__keys_mbedtls_err(ret, LP2P_ERR_KEY);
  }
  return finish(priv, out);
}

static int generate(unsigned bits, lp2p__privkey_parts *out) {
  (void)bits;
  lp2p__ec_priv *priv = lp2p__ec_priv_new(GID);
  if (!priv) return LP2P_ERR_NOMEM;
  mbedtls_ecp_group grp;
  mbedtls_ecp_group_init(&grp);
  int ret = mbedtls_ecp_group_load(&grp, GID);
  if (!ret) ret = mbedtls_ecp_gen_privkey(&grp, &priv->d, lp2p__keys_rng, NULL);
  mbedtls_ecp_group_free(&grp);
  if (ret) {
    lp2p__ec_priv_free(priv);
    return lp2p__keys_mbedtls_err(ret, LP2P_ERR_INTERNAL);
  }
  return finish(priv, out);
}

static int sign(const lp2p_privkey *k, const uint8_t *msg, size_t msglen, uint8_t *sig, size_t cap) {
  return lp2p__ec_sign(k->impl, msg, msglen, sig, cap);
}

const lp2p__key_ops lp2p__key_secp256k1_ops = {
    .pub_parse = pub_parse,
    .pub_free = lp2p__ec_pub_free,
    .verify = verify,
    .priv_parse = priv_parse,
    .generate = generate,
    .sign = sign,
    .priv_free = lp2p__ec_priv_free,
};
