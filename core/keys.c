/* core/keys.c - key objects, type dispatch and the PublicKey/PrivateKey
 * protobufs (keys.proto). The per-type work lives in core/key_<type>.c. */
#include <protobuf-c/protobuf-c.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "core/keys_int.h"
#include "core/mem.h"
#include "keys.pb-c.h"

/* ---- shared helpers ---- */

int lp2p__keys_init(void) { return sodium_init() < 0 ? LP2P_ERR_INTERNAL : 0; }

/* mbedTLS f_rng: libsodium's CSPRNG. */
int lp2p__keys_rng(void *p_rng, unsigned char *out, size_t len) {
  (void)p_rng;
  randombytes_buf(out, len);
  return 0;
}

void *lp2p__key_alloc(size_t n) { return lp2p__malloc(lp2p_mem_default(), n); }
void lp2p__key_free(void *p) { lp2p__free(lp2p_mem_default(), p); }

uint8_t *lp2p__key_memdup(const uint8_t *p, size_t n) {
  uint8_t *d = lp2p__key_alloc(n);
  if (d && n) memcpy(d, p, n);
  return d;
}

void lp2p__key_free_secret(void *p, size_t n) {
  if (!p) return;
  sodium_memzero(p, n);
  lp2p__key_free(p);
}

int lp2p__keys_mbedtls_err(int ret, int other) {
  if (ret >= 0) return ret;
  int low = (-ret) & 0x7F, high = (-ret) & 0x7F80;
  /* MPI_ALLOC_FAILED, ASN1_ALLOC_FAILED, PK_ALLOC_FAILED, ECP_ALLOC_FAILED */
  if (low == 0x10 || low == 0x6A || high == 0x3F80 || high == 0x4D80) return LP2P_ERR_NOMEM;
  return other;
}

static int der_len(const uint8_t **p, const uint8_t *end, size_t *len) {
  if (*p >= end) return -1;
  uint8_t b = *(*p)++;
  if (b < 0x80) {
    *len = b;
    return 0;
  }
  int n = b & 0x7f;
  if (n == 0 || n > 3) return -1;
  size_t l = 0;
  while (n--) {
    if (*p >= end) return -1;
    l = l << 8 | *(*p)++;
  }
  *len = l;
  return 0;
}

int lp2p__der_key_form(const uint8_t *data, size_t len) {
  const uint8_t *p = data, *end = data + len;
  size_t l;
  if (!data || len < 2 || *p++ != 0x30 || der_len(&p, end, &l) || l != (size_t)(end - p)) return -1;
  if (p >= end || *p++ != 0x02 || der_len(&p, end, &l) || l > (size_t)(end - p)) return -1;
  p += l;
  return p < end ? *p : -1;
}

static const lp2p__key_ops *ops_for(int type) {
  switch (type) {
  case LP2P_KEY_RSA: return &lp2p__key_rsa_ops;
  case LP2P_KEY_ED25519: return &lp2p__key_ed25519_ops;
  case LP2P_KEY_SECP256K1: return &lp2p__key_secp256k1_ops;
  case LP2P_KEY_ECDSA: return &lp2p__key_ecdsa_ops;
  default: return NULL;
  }
}

static const char *const type_names[] = {"rsa", "ed25519", "secp256k1", "ecdsa"};

const char *lp2p_key_type_name(lp2p_key_type t) {
  return (unsigned)t < sizeof type_names / sizeof *type_names ? type_names[t] : NULL;
}

int lp2p_key_type_parse(const char *name, lp2p_key_type *out) {
  if (!name || !out) return LP2P_ERR_INVAL;
  for (unsigned i = 0; i < sizeof type_names / sizeof *type_names; i++) {
    if (!strcasecmp(name, type_names[i])) {
      *out = (lp2p_key_type)i;
      return 0;
    }
  }
  return LP2P_ERR_KEY_TYPE;
}

/* ---- protobuf: Type + Data, strict ---- */

/* Unpacks a PublicKey or PrivateKey and requires the input to be exactly the
 * canonical encoding (re-packing gives the same bytes): this rejects unknown,
 * duplicate and out-of-order fields, non-minimal varints and trailing bytes.
 * *data points into a copy the caller frees with lp2p__key_free_secret(*buf, len). */
static int pb_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *pb, size_t len, int *type,
                     uint8_t **data, size_t *dlen) {
  ProtobufCAllocator alloc;
  lp2p__protobuf_allocator(lp2p_mem_default(), &alloc);
  ProtobufCMessage *m = protobuf_c_message_unpack(desc, &alloc, len, pb);
  if (!m) return LP2P_ERR_KEY; /* also on OOM: protobuf-c cannot tell us which */
  int rv = LP2P_ERR_KEY;
  ProtobufCBinaryData bin;
  if (desc == &lp2p_keys__public_key__descriptor) {
    *type = (int)((Lp2pKeys__PublicKey *)m)->type;
    bin = ((Lp2pKeys__PublicKey *)m)->data;
  } else {
    *type = (int)((Lp2pKeys__PrivateKey *)m)->type;
    bin = ((Lp2pKeys__PrivateKey *)m)->data;
  }
  uint8_t *copy = NULL;
  if (m->n_unknown_fields || protobuf_c_message_get_packed_size(m) != len) goto out;
  rv = LP2P_ERR_NOMEM;
  if (!(copy = lp2p__key_alloc(len))) goto out;
  rv = LP2P_ERR_KEY;
  if (protobuf_c_message_pack(m, copy) != len || sodium_memcmp(copy, pb, len)) goto out;
  rv = ops_for(*type) ? 0 : LP2P_ERR_KEY_TYPE;
  if (rv == 0) {
    if (bin.len) memcpy(copy, bin.data, bin.len); /* reuse the buffer for Data */
    *data = copy;
    *dlen = bin.len;
    copy = NULL;
  }
out:
  if (copy) lp2p__key_free_secret(copy, len);
  if (bin.data && bin.len) sodium_memzero(bin.data, bin.len);
  protobuf_c_message_free_unpacked(m, &alloc);
  return rv;
}

static int pb_encode(int is_private, int type, const uint8_t *data, size_t dlen, uint8_t *out, size_t cap) {
  Lp2pKeys__PublicKey pub = LP2P_KEYS__PUBLIC_KEY__INIT;
  Lp2pKeys__PrivateKey priv = LP2P_KEYS__PRIVATE_KEY__INIT;
  ProtobufCMessage *m = is_private ? &priv.base : &pub.base;
  pub.type = priv.type = (Lp2pKeys__KeyType)type;
  pub.data.data = priv.data.data = (uint8_t *)data;
  pub.data.len = priv.data.len = dlen;
  size_t n = protobuf_c_message_get_packed_size(m);
  if (!out || n > cap) return LP2P_ERR_BUFSIZE;
  if (n > INT32_MAX || protobuf_c_message_pack(m, out) != n) return LP2P_ERR_INTERNAL;
  return (int)n;
}

/* ---- public keys ---- */

static int pubkey_new(lp2p_pubkey **out, int type, const uint8_t *data, size_t len) {
  const lp2p__key_ops *ops = ops_for(type);
  if (!ops) return LP2P_ERR_KEY_TYPE;
  lp2p_pubkey *k = lp2p__key_alloc(sizeof *k);
  if (!k) return LP2P_ERR_NOMEM;
  memset(k, 0, sizeof *k);
  k->type = (lp2p_key_type)type;
  k->len = len;
  if (!(k->data = lp2p__key_memdup(data, len))) {
    lp2p__key_free(k);
    return LP2P_ERR_NOMEM;
  }
  int rv = ops->pub_parse(k);
  if (rv) {
    lp2p_pubkey_free(k);
    return rv;
  }
  *out = k;
  return 0;
}

int lp2p_pubkey_from_protobuf(lp2p_pubkey **out, const uint8_t *pb, size_t len) {
  if (!out || (!pb && len)) return LP2P_ERR_INVAL;
  *out = NULL;
  if (len > LP2P_PUBKEY_PB_MAX) return LP2P_ERR_KEY;
  int rv = lp2p__keys_init();
  if (rv) return rv;
  int type;
  uint8_t *data;
  size_t dlen;
  if ((rv = pb_decode(&lp2p_keys__public_key__descriptor, pb, len, &type, &data, &dlen))) return rv;
  rv = pubkey_new(out, type, data, dlen);
  lp2p__key_free(data);
  return rv;
}

int lp2p_pubkey_to_protobuf(const lp2p_pubkey *k, uint8_t *out, size_t cap) {
  if (!k) return LP2P_ERR_INVAL;
  return pb_encode(0, k->type, k->data, k->len, out, cap);
}

const uint8_t *lp2p_pubkey_data(const lp2p_pubkey *k, size_t *len) {
  if (len) *len = k ? k->len : 0;
  return k ? k->data : NULL;
}

lp2p_key_type lp2p_pubkey_type(const lp2p_pubkey *k) { return k->type; }

int lp2p_pubkey_verify(const lp2p_pubkey *k, const uint8_t *msg, size_t msglen, const uint8_t *sig,
                       size_t siglen) {
  if (!k || (!msg && msglen) || !sig) return LP2P_ERR_SIGNATURE;
  return ops_for(k->type)->verify(k, msg, msglen, sig, siglen) ? LP2P_ERR_SIGNATURE : 0;
}

int lp2p_pubkey_equal(const lp2p_pubkey *a, const lp2p_pubkey *b) {
  if (!a || !b) return a == b;
  return a->type == b->type && a->len == b->len && !memcmp(a->data, b->data, a->len);
}

lp2p_pubkey *lp2p_pubkey_dup(const lp2p_pubkey *k) {
  lp2p_pubkey *d = NULL;
  if (!k) return NULL;
  return pubkey_new(&d, k->type, k->data, k->len) ? NULL : d;
}

void lp2p_pubkey_free(lp2p_pubkey *k) {
  if (!k) return;
  if (k->impl) ops_for(k->type)->pub_free(k->impl);
  lp2p__key_free(k->data);
  lp2p__key_free(k);
}

/* ---- private keys ---- */

static void parts_free(lp2p_key_type type, lp2p__privkey_parts *p) {
  if (p->impl) ops_for(type)->priv_free(p->impl);
  lp2p__key_free_secret(p->data, p->len);
  lp2p__key_free(p->pub);
  memset(p, 0, sizeof *p);
}

/* Takes ownership of parts (freed on error). */
static int privkey_new(lp2p_privkey **out, lp2p_key_type type, lp2p__privkey_parts *parts) {
  lp2p_privkey *k = lp2p__key_alloc(sizeof *k);
  if (!k) {
    parts_free(type, parts);
    return LP2P_ERR_NOMEM;
  }
  memset(k, 0, sizeof *k);
  k->type = type;
  int rv = pubkey_new(&k->pub, type, parts->pub, parts->publen);
  k->data = parts->data;
  k->len = parts->len;
  k->impl = parts->impl;
  lp2p__key_free(parts->pub);
  memset(parts, 0, sizeof *parts);
  if (rv) {
    lp2p_privkey_free(k);
    return rv == LP2P_ERR_NOMEM ? rv : LP2P_ERR_KEY;
  }
  *out = k;
  return 0;
}

int lp2p_privkey_generate(lp2p_privkey **out, lp2p_key_type type, unsigned bits) {
  if (!out) return LP2P_ERR_INVAL;
  *out = NULL;
  const lp2p__key_ops *ops = ops_for(type);
  if (!ops || !ops->generate) return LP2P_ERR_KEY_TYPE;
  int rv = lp2p__keys_init();
  if (rv) return rv;
  lp2p__privkey_parts parts = {0};
  if ((rv = ops->generate(bits, &parts))) return rv;
  return privkey_new(out, type, &parts);
}

int lp2p_privkey_from_ed25519_seed(lp2p_privkey **out, const uint8_t seed[32]) {
  if (!out || !seed) return LP2P_ERR_INVAL;
  *out = NULL;
  int rv = lp2p__keys_init();
  if (rv) return rv;
  /* The 64-byte PrivateKey form is seed || pub; derive pub and reuse the parser. */
  uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(pk, sk, seed);
  lp2p__privkey_parts parts = {0};
  rv = lp2p__key_ed25519_ops.priv_parse(sk, sizeof sk, &parts);
  sodium_memzero(sk, sizeof sk);
  return rv ? rv : privkey_new(out, LP2P_KEY_ED25519, &parts);
}

int lp2p_privkey_from_protobuf(lp2p_privkey **out, const uint8_t *pb, size_t len) {
  if (!out || (!pb && len)) return LP2P_ERR_INVAL;
  *out = NULL;
  if (len > LP2P_PRIVKEY_PB_MAX) return LP2P_ERR_KEY;
  int rv = lp2p__keys_init();
  if (rv) return rv;
  int type;
  uint8_t *data;
  size_t dlen;
  if ((rv = pb_decode(&lp2p_keys__private_key__descriptor, pb, len, &type, &data, &dlen))) return rv;
  lp2p__privkey_parts parts = {0};
  rv = ops_for(type)->priv_parse(data, dlen, &parts);
  lp2p__key_free_secret(data, dlen);
  return rv ? rv : privkey_new(out, (lp2p_key_type)type, &parts);
}

int lp2p_privkey_to_protobuf(const lp2p_privkey *k, uint8_t *out, size_t cap) {
  if (!k) return LP2P_ERR_INVAL;
  return pb_encode(1, k->type, k->data, k->len, out, cap);
}

const lp2p_pubkey *lp2p_privkey_public(const lp2p_privkey *k) { return k ? k->pub : NULL; }

lp2p_key_type lp2p_privkey_type(const lp2p_privkey *k) { return k->type; }

int lp2p_privkey_sign(const lp2p_privkey *k, const uint8_t *msg, size_t msglen, uint8_t *sig, size_t sigcap) {
  if (!k || (!msg && msglen)) return LP2P_ERR_INVAL;
  if (!sig) return LP2P_ERR_BUFSIZE;
  return ops_for(k->type)->sign(k, msg, msglen, sig, sigcap);
}

void lp2p_privkey_free(lp2p_privkey *k) {
  if (!k) return;
  if (k->impl) ops_for(k->type)->priv_free(k->impl);
  lp2p__key_free_secret(k->data, k->len);
  lp2p_pubkey_free(k->pub);
  lp2p__key_free_secret(k, sizeof *k);
}
