/* core/keys_ec.c - ECDSA (SHA-256, strict DER, low-S signing) over mbedTLS. */
#include "core/keys_ec.h"

#include <mbedtls/ecdsa.h>
#include <sodium.h>
#include <string.h>

#include "core/keys_int.h"

lp2p__ec_pub *lp2p__ec_pub_new(mbedtls_ecp_group_id gid) {
  lp2p__ec_pub *p = lp2p__key_alloc(sizeof *p);
  if (!p) return NULL;
  p->gid = gid;
  mbedtls_ecp_point_init(&p->q);
  return p;
}

void lp2p__ec_pub_free(void *pub) {
  lp2p__ec_pub *p = pub;
  if (!p) return;
  mbedtls_ecp_point_free(&p->q);
  lp2p__key_free(p);
}

lp2p__ec_priv *lp2p__ec_priv_new(mbedtls_ecp_group_id gid) {
  lp2p__ec_priv *p = lp2p__key_alloc(sizeof *p);
  if (!p) return NULL;
  p->gid = gid;
  mbedtls_mpi_init(&p->d);
  return p;
}

void lp2p__ec_priv_free(void *priv) {
  lp2p__ec_priv *p = priv;
  if (!p) return;
  mbedtls_mpi_free(&p->d); /* zeroizes the limbs */
  lp2p__key_free_secret(p, sizeof *p);
}

int lp2p__ec_public_point(const lp2p__ec_priv *priv, mbedtls_ecp_point *q) {
  mbedtls_ecp_group grp;
  mbedtls_ecp_group_init(&grp);
  int rv = LP2P_ERR_KEY;
  int ret = mbedtls_ecp_group_load(&grp, priv->gid);
  if (ret == 0 && mbedtls_ecp_check_privkey(&grp, &priv->d) != 0) goto out;
  if (ret == 0) ret = mbedtls_ecp_mul(&grp, q, &priv->d, &grp.G, lp2p__keys_rng, NULL);
  rv = ret ? lp2p__keys_mbedtls_err(ret, LP2P_ERR_KEY) : 0;
out:
  mbedtls_ecp_group_free(&grp);
  return rv;
}

/* One DER INTEGER: minimal, positive, at most max_int value bytes. */
static int der_int(const uint8_t **p, const uint8_t *end, size_t max_int, const uint8_t **v, size_t *vlen) {
  const uint8_t *c = *p;
  if (end - c < 3 || c[0] != 0x02 || c[1] == 0 || c[1] >= 0x80) return -1;
  size_t l = c[1];
  if ((size_t)(end - c - 2) < l) return -1;
  const uint8_t *x = c + 2;
  if (x[0] & 0x80) return -1;                          /* negative */
  if (l > 1 && x[0] == 0 && !(x[1] & 0x80)) return -1; /* non-minimal */
  if (l > 1 && x[0] == 0) x++, l--;
  if (l > max_int) return -1;
  *v = x;
  *vlen = l;
  *p = c + 2 + c[1];
  return 0;
}

int lp2p__ec_der_parse(const uint8_t *sig, size_t len, size_t max_int, const uint8_t **r, size_t *rlen,
                       const uint8_t **s, size_t *slen) {
  /* Short-form lengths only: enough for curves up to 2*(2+1+60) bytes. */
  if (!sig || len < 8 || len > 127 + 2 || sig[0] != 0x30 || sig[1] >= 0x80 || (size_t)sig[1] != len - 2)
    return LP2P_ERR_SIGNATURE;
  const uint8_t *p = sig + 2, *end = sig + len;
  if (der_int(&p, end, max_int, r, rlen) || der_int(&p, end, max_int, s, slen) || p != end)
    return LP2P_ERR_SIGNATURE;
  return 0;
}

/* Writes a minimal positive DER INTEGER for x. */
static int der_put_int(const mbedtls_mpi *x, uint8_t *out, size_t cap, size_t *off) {
  size_t n = mbedtls_mpi_size(x);
  if (n == 0) n = 1;
  int pad = mbedtls_mpi_get_bit(x, n * 8 - 1);
  if (*off + 2 + pad + n > cap) return LP2P_ERR_BUFSIZE;
  out[(*off)++] = 0x02;
  out[(*off)++] = (uint8_t)(n + pad);
  if (pad) out[(*off)++] = 0;
  if (mbedtls_mpi_write_binary(x, out + *off, n)) return LP2P_ERR_INTERNAL;
  *off += n;
  return 0;
}

int lp2p__ec_verify(const lp2p__ec_pub *pub, const uint8_t *msg, size_t msglen, const uint8_t *sig,
                    size_t siglen, int low_s_only) {
  const uint8_t *rb, *sb;
  size_t rl, sl;
  if (lp2p__ec_der_parse(sig, siglen, 32, &rb, &rl, &sb, &sl)) return LP2P_ERR_SIGNATURE;
  uint8_t hash[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(hash, msg, msglen);

  mbedtls_ecp_group grp;
  mbedtls_mpi r, s, half;
  mbedtls_ecp_group_init(&grp);
  mbedtls_mpi_init(&r);
  mbedtls_mpi_init(&s);
  mbedtls_mpi_init(&half);
  int rv = LP2P_ERR_SIGNATURE;
  if (mbedtls_ecp_group_load(&grp, pub->gid) || mbedtls_mpi_read_binary(&r, rb, rl) ||
      mbedtls_mpi_read_binary(&s, sb, sl))
    goto out;
  if (low_s_only) {
    if (mbedtls_mpi_copy(&half, &grp.N) || mbedtls_mpi_shift_r(&half, 1)) goto out;
    if (mbedtls_mpi_cmp_mpi(&s, &half) > 0) goto out;
  }
  /* mbedtls_ecdsa_verify checks 1 <= r, s < n. */
  if (mbedtls_ecdsa_verify(&grp, hash, sizeof hash, &pub->q, &r, &s) == 0) rv = 0;
out:
  mbedtls_mpi_free(&half);
  mbedtls_mpi_free(&s);
  mbedtls_mpi_free(&r);
  mbedtls_ecp_group_free(&grp);
  return rv;
}

int lp2p__ec_sign(const lp2p__ec_priv *priv, const uint8_t *msg, size_t msglen, uint8_t *sig, size_t cap) {
  uint8_t hash[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(hash, msg, msglen);

  mbedtls_ecp_group grp;
  mbedtls_mpi r, s, half;
  mbedtls_ecp_group_init(&grp);
  mbedtls_mpi_init(&r);
  mbedtls_mpi_init(&s);
  mbedtls_mpi_init(&half);
  int rv = LP2P_ERR_INTERNAL, ret;
  uint8_t der[LP2P__EC_SIG_MAX];
  size_t off = 2;
  if ((ret = mbedtls_ecp_group_load(&grp, priv->gid)) ||
      (ret = mbedtls_ecdsa_sign_det_ext(&grp, &r, &s, &priv->d, hash, sizeof hash, MBEDTLS_MD_SHA256,
                                        lp2p__keys_rng, NULL)) ||
      (ret = mbedtls_mpi_copy(&half, &grp.N)) || (ret = mbedtls_mpi_shift_r(&half, 1))) {
    rv = lp2p__keys_mbedtls_err(ret, LP2P_ERR_INTERNAL);
    goto out;
  }
  if (mbedtls_mpi_cmp_mpi(&s, &half) > 0 && (ret = mbedtls_mpi_sub_mpi(&s, &grp.N, &s))) {
    rv = lp2p__keys_mbedtls_err(ret, LP2P_ERR_INTERNAL);
    goto out;
  }
  if ((rv = der_put_int(&r, der, sizeof der, &off)) || (rv = der_put_int(&s, der, sizeof der, &off)))
    goto out;
  der[0] = 0x30;
  der[1] = (uint8_t)(off - 2);
  if (off > cap) {
    rv = LP2P_ERR_BUFSIZE;
    goto out;
  }
  memcpy(sig, der, off);
  rv = (int)off;
out:
  mbedtls_mpi_free(&half);
  mbedtls_mpi_free(&s);
  mbedtls_mpi_free(&r);
  mbedtls_ecp_group_free(&grp);
  return rv;
}
