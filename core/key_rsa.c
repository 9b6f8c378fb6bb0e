/* core/key_rsa.c - RSA keys (mbedTLS). PublicKey.Data is a DER
 * SubjectPublicKeyInfo, PrivateKey.Data a DER PKCS#1 RSAPrivateKey.
 * Signatures are RSASSA-PKCS1-v1_5 with SHA-256. Moduli of 2048..8192 bits
 * only (go-libp2p's limits). mbedTLS is built with MBEDTLS_THREADING_C, so
 * its per-context mutex makes shared use of one key from several threads safe. */
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <sodium.h>
#include <string.h>

#include "core/keys_int.h"

#define MIN_BITS 2048
#define MAX_BITS 8192

static mbedtls_pk_context *pk_new(void) {
  mbedtls_pk_context *pk = lp2p__key_alloc(sizeof *pk);
  if (pk) mbedtls_pk_init(pk);
  return pk;
}

static void pk_free(void *impl) {
  if (!impl) return;
  mbedtls_pk_free(impl); /* zeroizes */
  lp2p__key_free(impl);
}

static int check_rsa(mbedtls_pk_context *pk) {
  if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_RSA) return LP2P_ERR_KEY;
  size_t bits = mbedtls_pk_get_bitlen(pk);
  return bits >= MIN_BITS && bits <= MAX_BITS ? 0 : LP2P_ERR_KEY;
}

static int pub_parse(lp2p_pubkey *k) {
  /* SPKI only: mbedtls_pk_parse_public_key would also take PEM and PKCS#1. */
  if (k->len < 2 || k->data[0] != 0x30) return LP2P_ERR_KEY;
  mbedtls_pk_context *pk = pk_new();
  if (!pk) return LP2P_ERR_NOMEM;
  unsigned char *p = k->data;
  int ret = mbedtls_pk_parse_subpubkey(&p, k->data + k->len, pk);
  int rv = ret ? lp2p__keys_mbedtls_err(ret, LP2P_ERR_KEY) : check_rsa(pk);
  if (!rv && p != k->data + k->len) rv = LP2P_ERR_KEY;
  if (rv) {
    pk_free(pk);
    return rv;
  }
  k->impl = pk;
  return 0;
}

static int verify(const lp2p_pubkey *k, const uint8_t *msg, size_t msglen, const uint8_t *sig,
                  size_t siglen) {
  mbedtls_rsa_context *rsa = mbedtls_pk_rsa(*(mbedtls_pk_context *)k->impl);
  if (siglen != mbedtls_rsa_get_len(rsa)) return LP2P_ERR_SIGNATURE;
  uint8_t hash[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(hash, msg, msglen);
  int ret = mbedtls_rsa_pkcs1_verify(rsa, NULL, NULL, MBEDTLS_RSA_PUBLIC, MBEDTLS_MD_SHA256, sizeof hash,
                                     hash, sig);
  return ret ? LP2P_ERR_SIGNATURE : 0;
}

/* Fills out->pub (SPKI) from pk, out->impl = pk. */
static int finish(mbedtls_pk_context *pk, lp2p__privkey_parts *out) {
  uint8_t buf[LP2P_PUBKEY_PB_MAX];
  int n = mbedtls_pk_write_pubkey_der(pk, buf, sizeof buf);
  if (n <= 0) return lp2p__keys_mbedtls_err(n, LP2P_ERR_INTERNAL);
  if (!(out->pub = lp2p__key_memdup(buf + sizeof buf - n, (size_t)n))) return LP2P_ERR_NOMEM;
  out->publen = (size_t)n;
  out->impl = pk;
  return 0;
}

static void parts_undo(lp2p__privkey_parts *out) {
  lp2p__key_free_secret(out->data, out->len);
  lp2p__key_free(out->pub);
  memset(out, 0, sizeof *out);
}

static int priv_parse(const uint8_t *data, size_t len, lp2p__privkey_parts *out) {
  if (lp2p__der_key_form(data, len) != 0x02) return LP2P_ERR_KEY; /* PKCS#1 only */
  mbedtls_pk_context *pk = pk_new();
  if (!pk) return LP2P_ERR_NOMEM;
  int ret = mbedtls_pk_parse_key(pk, data, len, NULL, 0);
  int rv = ret ? lp2p__keys_mbedtls_err(ret, LP2P_ERR_KEY) : check_rsa(pk);
  if (!rv && mbedtls_rsa_check_privkey(mbedtls_pk_rsa(*pk))) rv = LP2P_ERR_KEY;
  if (!rv && !(out->data = lp2p__key_memdup(data, len))) rv = LP2P_ERR_NOMEM;
  out->len = len;
  if (!rv) rv = finish(pk, out);
  if (rv) {
    parts_undo(out);
    pk_free(pk);
  }
  return rv;
}

static int generate(unsigned bits, lp2p__privkey_parts *out) {
  if (bits == 0) bits = MIN_BITS;
  if (bits < MIN_BITS || bits > MAX_BITS || bits % 2) return LP2P_ERR_INVAL;
  mbedtls_pk_context *pk = pk_new();
  if (!pk) return LP2P_ERR_NOMEM;
  int ret = mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA));
  if (!ret) ret = mbedtls_rsa_gen_key(mbedtls_pk_rsa(*pk), lp2p__keys_rng, NULL, bits, 65537);
  int rv = ret ? lp2p__keys_mbedtls_err(ret, LP2P_ERR_INTERNAL) : 0;
  uint8_t *der = NULL;
  if (!rv && !(der = lp2p__key_alloc(LP2P_PRIVKEY_PB_MAX))) rv = LP2P_ERR_NOMEM;
  if (!rv) {
    int n = mbedtls_pk_write_key_der(pk, der, LP2P_PRIVKEY_PB_MAX); /* PKCS#1, at the end of der */
    if (n <= 0)
      rv = lp2p__keys_mbedtls_err(n, LP2P_ERR_INTERNAL);
    else if (!(out->data = lp2p__key_memdup(der + LP2P_PRIVKEY_PB_MAX - n, (size_t)n)))
      rv = LP2P_ERR_NOMEM;
    else
      out->len = (size_t)n;
  }
  lp2p__key_free_secret(der, der ? LP2P_PRIVKEY_PB_MAX : 0);
  if (!rv) rv = finish(pk, out);
  if (rv) {
    parts_undo(out);
    pk_free(pk);
  }
  return rv;
}

static int sign(const lp2p_privkey *k, const uint8_t *msg, size_t msglen, uint8_t *sig, size_t cap) {
  mbedtls_rsa_context *rsa = mbedtls_pk_rsa(*(mbedtls_pk_context *)k->impl);
  size_t n = mbedtls_rsa_get_len(rsa);
  if (cap < n) return LP2P_ERR_BUFSIZE;
  uint8_t hash[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(hash, msg, msglen);
  int ret = mbedtls_rsa_pkcs1_sign(rsa, lp2p__keys_rng, NULL, MBEDTLS_RSA_PRIVATE, MBEDTLS_MD_SHA256,
                                   sizeof hash, hash, sig);
  return ret ? lp2p__keys_mbedtls_err(ret, LP2P_ERR_INTERNAL) : (int)n;
}

const lp2p__key_ops lp2p__key_rsa_ops = {
    .pub_parse = pub_parse,
    .pub_free = pk_free,
    .verify = verify,
    .priv_parse = priv_parse,
    .generate = generate,
    .sign = sign,
    .priv_free = pk_free,
};
