/* core/record.c - signed envelopes (RFC 0002) and peer records (RFC 0003),
 * domain "libp2p-peer-record", payload type 0x0301, as js-libp2p and
 * go-libp2p use them. See lp2p/record.h. */
#include "lp2p/record.h"

#include <stdlib.h>
#include <string.h>

#include "lp2p/encoding.h"
#include "peer_record.pb-c.h"

/* uvarint(len(domain)) || domain || uvarint(len(type)) || type || uvarint(len(payload)) || payload */
static uint8_t *signed_buffer(const char *domain, const uint8_t *type, size_t tlen, const uint8_t *payload,
                              size_t plen, size_t *out_len) {
  const size_t dlen = strlen(domain);
  size_t n = lp2p_uvarint_size(dlen) + dlen + lp2p_uvarint_size(tlen) + tlen + lp2p_uvarint_size(plen) + plen;
  uint8_t *b = malloc(n), *p = b;
  if (!b) return NULL;
  p += lp2p_uvarint_encode(dlen, p, 9);
  memcpy(p, domain, dlen);
  p += dlen;
  p += lp2p_uvarint_encode(tlen, p, 9);
  memcpy(p, type, tlen);
  p += tlen;
  p += lp2p_uvarint_encode(plen, p, 9);
  if (plen) memcpy(p, payload, plen); /* an empty payload may come as NULL */
  *out_len = n;
  return b;
}

int lp2p_envelope_seal(const lp2p_privkey *k, const char *domain, const uint8_t *type, size_t type_len,
                       const uint8_t *payload, size_t plen, uint8_t **out, size_t *out_len) {
  if (out) *out = NULL;
  if (out_len) *out_len = 0;
  if (!k || !domain || !*domain || !type || !type_len || (!payload && plen) || !out || !out_len)
    return LP2P_ERR_INVAL;
  uint8_t pk[LP2P_PUBKEY_PB_MAX];
  int pklen = lp2p_pubkey_to_protobuf(lp2p_privkey_public(k), pk, sizeof pk);
  if (pklen < 0) return pklen;
  size_t slen = 0;
  uint8_t *tosign = signed_buffer(domain, type, type_len, payload, plen, &slen);
  if (!tosign) return LP2P_ERR_NOMEM;
  uint8_t sig[LP2P_SIGNATURE_MAX];
  int siglen = lp2p_privkey_sign(k, tosign, slen, sig, sizeof sig);
  free(tosign);
  if (siglen < 0) return siglen;
  Lp2pRecord__Envelope e;
  lp2p_record__envelope__init(&e);
  e.has_public_key = 1;
  e.public_key.data = pk;
  e.public_key.len = (size_t)pklen;
  e.has_payload_type = 1;
  e.payload_type.data = (uint8_t *)type;
  e.payload_type.len = type_len;
  e.has_payload = 1;
  e.payload.data = (uint8_t *)payload;
  e.payload.len = plen;
  e.has_signature = 1;
  e.signature.data = sig;
  e.signature.len = (size_t)siglen;
  size_t elen = lp2p_record__envelope__get_packed_size(&e);
  uint8_t *env = malloc(elen);
  if (!env) return LP2P_ERR_NOMEM;
  lp2p_record__envelope__pack(&e, env);
  *out = env;
  *out_len = elen;
  return 0;
}

/* Opens env; on success *key is the signer's key (caller frees) and *e the unpacked envelope. */
static int open_env(const uint8_t *env, size_t len, const char *domain, const uint8_t *type, size_t type_len,
                    const lp2p_peer_id *peer, lp2p_peer_id *signer, Lp2pRecord__Envelope **eout) {
  *eout = NULL;
  if ((!env && len) || !domain || !*domain || !type || !type_len) return LP2P_ERR_INVAL;
  if (len > LP2P_ENVELOPE_MAX) return LP2P_ERR_TOO_LARGE;
  Lp2pRecord__Envelope *e = lp2p_record__envelope__unpack(NULL, len, env);
  if (!e) return LP2P_ERR_PROTO;
  lp2p_pubkey *key = NULL;
  uint8_t *tosign = NULL;
  int rv = LP2P_ERR_PROTO;
  if (!e->has_public_key || !e->has_payload_type || !e->has_payload || !e->has_signature) goto out;
  if (e->payload_type.len != type_len || memcmp(e->payload_type.data, type, type_len)) goto out;
  if ((rv = lp2p_pubkey_from_protobuf(&key, e->public_key.data, e->public_key.len)) < 0) {
    if (rv != LP2P_ERR_NOMEM) rv = LP2P_ERR_KEY;
    goto out;
  }
  lp2p_peer_id id;
  if ((rv = lp2p_peer_id_from_pubkey(key, &id)) < 0) goto out;
  if (signer) *signer = id;
  rv = LP2P_ERR_PEER_ID_MISMATCH;
  if (peer && !lp2p_peer_id_equal(peer, &id)) goto out;
  size_t slen = 0;
  rv = LP2P_ERR_NOMEM;
  if (!(tosign = signed_buffer(domain, type, type_len, e->payload.data, e->payload.len, &slen))) goto out;
  if (lp2p_pubkey_verify(key, tosign, slen, e->signature.data, e->signature.len) < 0) {
    rv = LP2P_ERR_SIGNATURE;
    goto out;
  }
  rv = 0;
out:
  free(tosign);
  lp2p_pubkey_free(key);
  if (rv)
    lp2p_record__envelope__free_unpacked(e, NULL);
  else
    *eout = e;
  return rv;
}

int lp2p_envelope_open(const uint8_t *env, size_t len, const char *domain, const uint8_t *type, size_t type_len,
                       lp2p_peer_id *signer, uint8_t **payload, size_t *payload_len) {
  if (payload) *payload = NULL;
  if (payload_len) *payload_len = 0;
  Lp2pRecord__Envelope *e;
  int rv = open_env(env, len, domain, type, type_len, NULL, signer, &e);
  if (rv < 0) return rv;
  if (payload) {
    uint8_t *p = malloc(e->payload.len ? e->payload.len : 1);
    if (!p) {
      rv = LP2P_ERR_NOMEM;
    } else {
      if (e->payload.len) memcpy(p, e->payload.data, e->payload.len);
      *payload = p;
      if (payload_len) *payload_len = e->payload.len;
    }
  } else if (payload_len) {
    *payload_len = e->payload.len;
  }
  lp2p_record__envelope__free_unpacked(e, NULL);
  return rv;
}

/* ------------------------------------------------------------------------- */
/* peer records */

int lp2p_peer_record_encode(const lp2p_peer_id *peer, uint64_t seq, const lp2p_multiaddr *const *addrs, size_t n,
                            uint8_t **out, size_t *out_len) {
  if (out) *out = NULL;
  if (out_len) *out_len = 0;
  if (!peer || !peer->len || (!addrs && n) || !out || !out_len) return LP2P_ERR_INVAL;
  Lp2pRecord__PeerRecord rec;
  lp2p_record__peer_record__init(&rec);
  rec.has_peer_id = 1;
  rec.peer_id.data = (uint8_t *)peer->bytes;
  rec.peer_id.len = peer->len;
  rec.has_seq = 1;
  rec.seq = seq;
  Lp2pRecord__PeerRecord__AddressInfo *infos = calloc(n ? n : 1, sizeof *infos);
  Lp2pRecord__PeerRecord__AddressInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
  int rv = LP2P_ERR_NOMEM;
  if (!infos || !ptrs) goto out;
  for (size_t i = 0; i < n; i++) {
    lp2p_record__peer_record__address_info__init(&infos[i]);
    infos[i].has_multiaddr = 1;
    infos[i].multiaddr.data = (uint8_t *)lp2p_multiaddr_bytes(addrs[i], &infos[i].multiaddr.len);
    ptrs[i] = &infos[i];
  }
  rec.n_addresses = n;
  rec.addresses = ptrs;
  size_t plen = lp2p_record__peer_record__get_packed_size(&rec);
  uint8_t *payload = malloc(plen ? plen : 1);
  if (!payload) goto out;
  lp2p_record__peer_record__pack(&rec, payload);
  *out = payload;
  *out_len = plen;
  rv = 0;
out:
  free(ptrs);
  free(infos);
  return rv;
}

void lp2p_peer_record_addrs_free(lp2p_multiaddr **addrs, size_t n) {
  if (!addrs) return;
  for (size_t i = 0; i < n; i++) lp2p_multiaddr_free(addrs[i]);
  free(addrs);
}

/* Decodes an unpacked record; raw_id receives the record's peer id bytes. */
static int decode_rec(const Lp2pRecord__PeerRecord *rec, uint64_t *seq, lp2p_multiaddr ***addrs, size_t *n_addrs,
                      size_t max) {
  if (seq) *seq = rec->has_seq ? rec->seq : 0;
  if (!addrs) return 0;
  lp2p_multiaddr **list = calloc(rec->n_addresses ? rec->n_addresses : 1, sizeof *list);
  if (!list) return LP2P_ERR_NOMEM;
  size_t n = 0;
  for (size_t i = 0; i < rec->n_addresses && n < max; i++) {
    const Lp2pRecord__PeerRecord__AddressInfo *ai = rec->addresses[i];
    lp2p_multiaddr *ma = NULL;
    if (!ai->has_multiaddr || !ai->multiaddr.len ||
        lp2p_multiaddr_from_bytes(&ma, ai->multiaddr.data, ai->multiaddr.len, NULL, 0) < 0)
      continue;
    list[n++] = ma;
  }
  *addrs = list;
  if (n_addrs) *n_addrs = n;
  return 0;
}

int lp2p_peer_record_decode(const uint8_t *p, size_t len, lp2p_peer_id *peer, uint64_t *seq,
                            lp2p_multiaddr ***addrs, size_t *n_addrs, size_t max) {
  if (addrs) *addrs = NULL;
  if (n_addrs) *n_addrs = 0;
  if (!p && len) return LP2P_ERR_INVAL;
  Lp2pRecord__PeerRecord *rec = lp2p_record__peer_record__unpack(NULL, len, p);
  if (!rec) return LP2P_ERR_PROTO;
  int rv = LP2P_ERR_PROTO;
  lp2p_peer_id id;
  if (!rec->has_peer_id || lp2p_peer_id_from_bytes(rec->peer_id.data, rec->peer_id.len, &id) < 0) goto out;
  if (peer) *peer = id;
  rv = decode_rec(rec, seq, addrs, n_addrs, max);
out:
  lp2p_record__peer_record__free_unpacked(rec, NULL);
  return rv;
}

int lp2p_peer_record_seal(const lp2p_privkey *k, uint64_t seq, const lp2p_multiaddr *const *addrs, size_t n,
                          uint8_t **out, size_t *out_len) {
  if (out) *out = NULL;
  if (out_len) *out_len = 0;
  if (!k) return LP2P_ERR_INVAL;
  lp2p_peer_id id;
  int rv = lp2p_peer_id_from_pubkey(lp2p_privkey_public(k), &id);
  if (rv < 0) return rv;
  uint8_t *payload;
  size_t plen;
  if ((rv = lp2p_peer_record_encode(&id, seq, addrs, n, &payload, &plen)) < 0) return rv;
  rv = lp2p_envelope_seal(k, LP2P_PEER_RECORD_DOMAIN, LP2P_PEER_RECORD_TYPE, LP2P_PEER_RECORD_TYPE_LEN, payload,
                          plen, out, out_len);
  free(payload);
  return rv;
}

int lp2p_peer_record_open(const uint8_t *env, size_t len, const lp2p_peer_id *peer, lp2p_peer_id *signer,
                          uint64_t *seq, lp2p_multiaddr ***addrs, size_t *n_addrs, size_t max) {
  if (addrs) *addrs = NULL;
  if (n_addrs) *n_addrs = 0;
  Lp2pRecord__Envelope *e;
  lp2p_peer_id id;
  int rv = open_env(env, len, LP2P_PEER_RECORD_DOMAIN, LP2P_PEER_RECORD_TYPE, LP2P_PEER_RECORD_TYPE_LEN, peer, &id,
                    &e);
  if (rv < 0) return rv;
  if (signer) *signer = id;
  Lp2pRecord__PeerRecord *rec = lp2p_record__peer_record__unpack(NULL, e->payload.len, e->payload.data);
  rv = LP2P_ERR_PROTO;
  if (!rec || !rec->has_peer_id) goto out;
  rv = LP2P_ERR_PEER_ID_MISMATCH; /* the record must name its signer */
  if (rec->peer_id.len != id.len || memcmp(rec->peer_id.data, id.bytes, id.len)) goto out;
  rv = decode_rec(rec, seq, addrs, n_addrs, max);
out:
  if (rec) lp2p_record__peer_record__free_unpacked(rec, NULL);
  lp2p_record__envelope__free_unpacked(e, NULL);
  return rv;
}
