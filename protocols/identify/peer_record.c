/* protocols/identify/peer_record.c - signed envelopes (RFC 0002) holding peer
 * records (RFC 0003), domain "libp2p-peer-record", payload type 0x0301, as
 * js-libp2p and go-libp2p use them. See identify_int.h. */
#include <stdlib.h>
#include <string.h>

#include "lp2p/encoding.h"
#include "lp2p/keys.h"
#include "lp2p/multiaddr.h"
#include "lp2p/peerid.h"
#include "peer_record.pb-c.h"
#include "protocols/identify/identify_int.h"

static const uint8_t k_payload_type[] = {0x03, 0x01};

/* uvarint(len(domain)) || domain || uvarint(len(type)) || type || uvarint(len(payload)) || payload */
static uint8_t *signed_buffer(const uint8_t *payload, size_t plen, size_t *out_len) {
  const size_t dlen = sizeof LP2P__PEER_RECORD_DOMAIN - 1;
  size_t n = lp2p_uvarint_size(dlen) + dlen + lp2p_uvarint_size(sizeof k_payload_type) + sizeof k_payload_type +
             lp2p_uvarint_size(plen) + plen;
  uint8_t *b = malloc(n), *p = b;
  if (!b) return NULL;
  p += lp2p_uvarint_encode(dlen, p, 9);
  memcpy(p, LP2P__PEER_RECORD_DOMAIN, dlen);
  p += dlen;
  p += lp2p_uvarint_encode(sizeof k_payload_type, p, 9);
  memcpy(p, k_payload_type, sizeof k_payload_type);
  p += sizeof k_payload_type;
  p += lp2p_uvarint_encode(plen, p, 9);
  if (plen) memcpy(p, payload, plen); /* an empty payload may come as NULL */
  *out_len = n;
  return b;
}

int lp2p__peer_record_seal(const lp2p_privkey *k, uint64_t seq, const lp2p_multiaddr *const *addrs, size_t n,
                           uint8_t **out, size_t *out_len) {
  *out = NULL;
  *out_len = 0;
  lp2p_peer_id id;
  int rv = lp2p_peer_id_from_pubkey(lp2p_privkey_public(k), &id);
  if (rv < 0) return rv;
  uint8_t pk[LP2P_PUBKEY_PB_MAX];
  int pklen = lp2p_pubkey_to_protobuf(lp2p_privkey_public(k), pk, sizeof pk);
  if (pklen < 0) return pklen;

  Lp2pRecord__PeerRecord rec;
  lp2p_record__peer_record__init(&rec);
  rec.has_peer_id = 1;
  rec.peer_id.data = id.bytes;
  rec.peer_id.len = id.len;
  rec.has_seq = 1;
  rec.seq = seq;
  Lp2pRecord__PeerRecord__AddressInfo *infos = calloc(n ? n : 1, sizeof *infos);
  Lp2pRecord__PeerRecord__AddressInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
  uint8_t *payload = NULL, *tosign = NULL, *env = NULL;
  rv = LP2P_ERR_NOMEM;
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
  if (!(payload = malloc(plen ? plen : 1))) goto out;
  lp2p_record__peer_record__pack(&rec, payload);

  size_t slen = 0;
  if (!(tosign = signed_buffer(payload, plen, &slen))) goto out;
  uint8_t sig[LP2P_SIGNATURE_MAX];
  int siglen = lp2p_privkey_sign(k, tosign, slen, sig, sizeof sig);
  if (siglen < 0) {
    rv = siglen;
    goto out;
  }
  Lp2pRecord__Envelope e;
  lp2p_record__envelope__init(&e);
  e.has_public_key = 1;
  e.public_key.data = pk;
  e.public_key.len = (size_t)pklen;
  e.has_payload_type = 1;
  e.payload_type.data = (uint8_t *)k_payload_type;
  e.payload_type.len = sizeof k_payload_type;
  e.has_payload = 1;
  e.payload.data = payload;
  e.payload.len = plen;
  e.has_signature = 1;
  e.signature.data = sig;
  e.signature.len = (size_t)siglen;
  size_t elen = lp2p_record__envelope__get_packed_size(&e);
  if (!(env = malloc(elen))) goto out;
  lp2p_record__envelope__pack(&e, env);
  *out = env;
  *out_len = elen;
  env = NULL;
  rv = 0;
out:
  free(env);
  free(tosign);
  free(payload);
  free(ptrs);
  free(infos);
  return rv;
}

int lp2p__peer_record_open(const uint8_t *env, size_t len, const lp2p_peer_id *peer, lp2p_peer_id *signer,
                           uint64_t *seq, lp2p_multiaddr ***addrs, size_t *n_addrs, size_t max) {
  if (addrs) *addrs = NULL;
  if (n_addrs) *n_addrs = 0;
  if (len > LP2P_IDENTIFY_MAX_MESSAGE) return LP2P_ERR_TOO_LARGE;
  Lp2pRecord__Envelope *e = lp2p_record__envelope__unpack(NULL, len, env);
  if (!e) return LP2P_ERR_PROTO;
  Lp2pRecord__PeerRecord *rec = NULL;
  lp2p_pubkey *key = NULL;
  uint8_t *tosign = NULL;
  lp2p_multiaddr **list = NULL;
  size_t n = 0;
  int rv = LP2P_ERR_PROTO;
  if (!e->has_public_key || !e->has_payload_type || !e->has_payload || !e->has_signature) goto out;
  if (e->payload_type.len != sizeof k_payload_type || memcmp(e->payload_type.data, k_payload_type, 2)) goto out;
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
  if (!(tosign = signed_buffer(e->payload.data, e->payload.len, &slen))) goto out;
  if ((rv = lp2p_pubkey_verify(key, tosign, slen, e->signature.data, e->signature.len)) < 0) {
    rv = LP2P_ERR_SIGNATURE;
    goto out;
  }
  rv = LP2P_ERR_PROTO;
  if (!(rec = lp2p_record__peer_record__unpack(NULL, e->payload.len, e->payload.data))) goto out;
  if (!rec->has_peer_id) goto out;
  rv = LP2P_ERR_PEER_ID_MISMATCH;
  if (rec->peer_id.len != id.len || memcmp(rec->peer_id.data, id.bytes, id.len)) goto out;
  if (seq) *seq = rec->has_seq ? rec->seq : 0;
  if (addrs) {
    rv = LP2P_ERR_NOMEM;
    if (!(list = calloc(rec->n_addresses ? rec->n_addresses : 1, sizeof *list))) goto out;
    for (size_t i = 0; i < rec->n_addresses && n < max; i++) {
      const Lp2pRecord__PeerRecord__AddressInfo *ai = rec->addresses[i];
      lp2p_multiaddr *ma = NULL;
      if (!ai->has_multiaddr || !ai->multiaddr.len ||
          lp2p_multiaddr_from_bytes(&ma, ai->multiaddr.data, ai->multiaddr.len, NULL, 0) < 0)
        continue;
      list[n++] = ma;
    }
    *addrs = list;
    *n_addrs = n;
    list = NULL;
  }
  rv = 0;
out:
  free(list);
  free(tosign);
  lp2p_pubkey_free(key);
  if (rec) lp2p_record__peer_record__free_unpacked(rec, NULL);
  lp2p_record__envelope__free_unpacked(e, NULL);
  return rv;
}
