/* core/peerid.c - peer ids: multihash of the deterministic PublicKey
 * protobuf, and their text forms (bare base58btc, CIDv1 libp2p-key). */
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "lp2p/encoding.h"
#include "lp2p/peerid.h"

#define INLINE_MAX 42 /* protobufs up to this size are inlined (identity multihash) */
/* Longest text we try to decode: a CID of the longest multihash in base32 is 74
 * characters; refusing longer strings also bounds base58's quadratic decode. */
#define TEXT_MAX (LP2P_PEER_ID_MAX_TEXT - 1)

int lp2p_peer_id_from_bytes(const uint8_t *mh, size_t len, lp2p_peer_id *out) {
  if (!mh || !out) return LP2P_ERR_INVAL;
  lp2p_multihash_view v;
  if (len > LP2P_PEER_ID_MAX_BYTES || lp2p_multihash_parse(mh, len, &v)) return LP2P_ERR_PEER_ID;
  if (v.code == LP2P_MH_IDENTITY) {
    if (v.digest_len == 0 || v.digest_len > INLINE_MAX) return LP2P_ERR_PEER_ID;
  } else if (v.code != LP2P_MH_SHA2_256 || v.digest_len != 32) {
    return LP2P_ERR_PEER_ID;
  }
  memset(out, 0, sizeof *out);
  memcpy(out->bytes, mh, len);
  out->len = (uint8_t)len;
  return 0;
}

int lp2p_peer_id_from_pubkey(const lp2p_pubkey *k, lp2p_peer_id *out) {
  if (!k || !out) return LP2P_ERR_INVAL;
  uint8_t pb[LP2P_PUBKEY_PB_MAX];
  int n = lp2p_pubkey_to_protobuf(k, pb, sizeof pb);
  if (n < 0) return n;
  uint8_t mh[LP2P_PEER_ID_MAX_BYTES];
  int m = n <= INLINE_MAX ? lp2p_multihash_encode(LP2P_MH_IDENTITY, pb, (size_t)n, mh, sizeof mh)
                          : lp2p_multihash_sha256(pb, (size_t)n, mh, sizeof mh);
  if (m < 0) return LP2P_ERR_INTERNAL;
  return lp2p_peer_id_from_bytes(mh, (size_t)m, out);
}

int lp2p_peer_id_parse_n(const char *text, size_t len, lp2p_peer_id *out) {
  if (!text || !out) return LP2P_ERR_INVAL;
  if (len == 0 || len > TEXT_MAX) return LP2P_ERR_PEER_ID;
  uint8_t buf[LP2P_PEER_ID_MAX_TEXT];
  size_t n = 0;
  if (text[0] == '1' || (len >= 2 && text[0] == 'Q' && text[1] == 'm')) {
    if (lp2p_base58_decode(text, len, buf, sizeof buf, &n)) return LP2P_ERR_PEER_ID;
    return lp2p_peer_id_from_bytes(buf, n, out);
  }
  uint64_t codec;
  const uint8_t *mh;
  size_t mhlen;
  if (lp2p_multibase_decode(text, len, buf, sizeof buf, &n) || lp2p_cid_decode(buf, n, &codec, &mh, &mhlen) ||
      codec != LP2P_CODEC_LIBP2P_KEY)
    return LP2P_ERR_PEER_ID;
  return lp2p_peer_id_from_bytes(mh, mhlen, out);
}

int lp2p_peer_id_parse(const char *text, lp2p_peer_id *out) {
  if (!text) return LP2P_ERR_INVAL;
  return lp2p_peer_id_parse_n(text, strnlen(text, TEXT_MAX + 1), out);
}

static int valid(const lp2p_peer_id *id) { return id && id->len > 0 && id->len <= LP2P_PEER_ID_MAX_BYTES; }

int lp2p_peer_id_to_string(const lp2p_peer_id *id, char *buf, size_t cap) {
  if (!valid(id) || !buf) return LP2P_ERR_INVAL;
  size_t n;
  int rv = lp2p_base58_encode(id->bytes, id->len, buf, cap, &n);
  return rv < 0 ? rv : (int)n;
}

int lp2p_peer_id_to_cid_string(const lp2p_peer_id *id, char *buf, size_t cap) {
  if (!valid(id) || !buf) return LP2P_ERR_INVAL;
  uint8_t cid[LP2P_PEER_ID_MAX_BYTES + 8];
  int m = lp2p_cid_encode(LP2P_CODEC_LIBP2P_KEY, id->bytes, id->len, cid, sizeof cid);
  if (m < 0) return LP2P_ERR_INTERNAL;
  size_t n;
  int rv = lp2p_multibase_encode('b', cid, (size_t)m, buf, cap, &n);
  return rv < 0 ? rv : (int)n;
}

int lp2p_peer_id_equal(const lp2p_peer_id *a, const lp2p_peer_id *b) {
  if (!a || !b) return a == b;
  return a->len == b->len && !memcmp(a->bytes, b->bytes, a->len);
}

int lp2p_peer_id_cmp(const lp2p_peer_id *a, const lp2p_peer_id *b) {
  size_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->bytes, b->bytes, n);
  if (c) return c < 0 ? -1 : 1;
  return a->len < b->len ? -1 : a->len > b->len;
}

/* SipHash-2-4 keyed with a per-process random key: peers choose identity ids
 * freely, so an unkeyed hash would let them flood one hash-table bucket. */
static uint8_t hash_key[crypto_shorthash_KEYBYTES];
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;
static void hash_key_init(void) {
  if (sodium_init() < 0) return; /* key stays zero: still a valid (unkeyed) hash */
  randombytes_buf(hash_key, sizeof hash_key);
}

uint64_t lp2p_peer_id_hash(const lp2p_peer_id *id) {
  pthread_once(&hash_once, hash_key_init);
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, id->bytes, id->len, hash_key);
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof h; i++) v = v << 8 | h[i];
  return v;
}

int lp2p_peer_id_extract_pubkey(const lp2p_peer_id *id, lp2p_pubkey **out) {
  if (!valid(id) || !out) return LP2P_ERR_INVAL;
  *out = NULL;
  lp2p_multihash_view v;
  if (lp2p_multihash_parse(id->bytes, id->len, &v)) return LP2P_ERR_PEER_ID;
  if (v.code != LP2P_MH_IDENTITY) return LP2P_ERR_NOT_FOUND;
  return lp2p_pubkey_from_protobuf(out, v.digest, v.digest_len);
}

int lp2p_peer_id_matches(const lp2p_peer_id *id, const lp2p_pubkey *k) {
  lp2p_peer_id mine;
  if (!id || !k || lp2p_peer_id_from_pubkey(k, &mine)) return 0;
  return lp2p_peer_id_equal(id, &mine);
}
