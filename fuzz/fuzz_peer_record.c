/* fuzz_peer_record.c - signed envelopes (RFC 0002) holding peer records (RFC 0003), as they
 * arrive in Identify.signedPeerRecord: envelope decoding, key parsing, signature check, record
 * decoding and address extraction (lp2p_peer_record_open).
 *
 * Input: byte 0 = options, the rest = data.
 *   bit 0 clear: the data is a whole envelope from the wire.
 *   bit 0 set:   the data is a PeerRecord payload; the target wraps it in an envelope signed by
 *                the identify.json identity, so that the decoding behind the signature check is
 *                reached with arbitrary records.
 *   bits 2-7:    the address limit passed to open.
 * Invariants (abort on violation):
 *  - every error is one of the documented codes; a record signed here never fails its signature;
 *  - an envelope that opens for "any peer" opens for its signer with the same sequence number,
 *    and for another peer fails with LP2P_ERR_PEER_ID_MISMATCH;
 *  - at most `max` addresses come back, all valid; resealing them (seal) and opening again gives
 *    the same sequence number and addresses. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/encoding.h"
#include "lp2p/keys.h"
#include "lp2p/multiaddr.h"
#include "lp2p/peerid.h"
#include "peer_record.pb-c.h"
#include "lp2p/record.h"

#define ASSERT(c)                                                                                           \
  do {                                                                                                      \
    if (!(c)) {                                                                                             \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);                            \
      abort();                                                                                              \
    }                                                                                                       \
  } while (0)

/* tests/vectors/identify.json: identity.ed25519_seed */
static const uint8_t k_seed[32] = {0x7e, 0x08, 0x30, 0x61, 0x7c, 0x4a, 0x7d, 0xe8, 0x39, 0x25, 0xdf,
                                   0xb2, 0x69, 0x45, 0x56, 0xb1, 0x29, 0x36, 0xc4, 0x77, 0xa0, 0xe1,
                                   0xfe, 0xb2, 0xe1, 0x48, 0xec, 0x9d, 0xa6, 0x0f, 0xee, 0x7d};
static lp2p_privkey *g_key;
static lp2p_peer_id g_id;

static void free_addrs(lp2p_multiaddr **a, size_t n) {
  for (size_t i = 0; i < n; i++) lp2p_multiaddr_free(a[i]);
  free(a);
}

/* Envelope{our key, 0x0301, payload, sign(domain-separated payload)}; malloc'ed. */
static uint8_t *seal_payload(const uint8_t *payload, size_t plen, size_t *out_len) {
  static const char domain[] = LP2P_PEER_RECORD_DOMAIN;
  static const uint8_t type[] = {0x03, 0x01};
  uint8_t pk[LP2P_PUBKEY_PB_MAX], sig[LP2P_SIGNATURE_MAX];
  int pklen = lp2p_pubkey_to_protobuf(lp2p_privkey_public(g_key), pk, sizeof pk);
  ASSERT(pklen > 0);
  size_t dlen = sizeof domain - 1;
  size_t n = lp2p_uvarint_size(dlen) + dlen + lp2p_uvarint_size(2) + 2 + lp2p_uvarint_size(plen) + plen;
  uint8_t *tosign = malloc(n), *p = tosign;
  if (!tosign) return NULL;
  p += lp2p_uvarint_encode(dlen, p, 9);
  memcpy(p, domain, dlen);
  p += dlen;
  p += lp2p_uvarint_encode(2, p, 9);
  memcpy(p, type, 2);
  p += 2;
  p += lp2p_uvarint_encode(plen, p, 9);
  if (plen) memcpy(p, payload, plen);
  int siglen = lp2p_privkey_sign(g_key, tosign, n, sig, sizeof sig);
  free(tosign);
  ASSERT(siglen > 0);
  Lp2pRecord__Envelope e;
  lp2p_record__envelope__init(&e);
  e.has_public_key = e.has_payload_type = e.has_payload = e.has_signature = 1;
  e.public_key.data = pk;
  e.public_key.len = (size_t)pklen;
  e.payload_type.data = (uint8_t *)type;
  e.payload_type.len = 2;
  e.payload.data = (uint8_t *)payload;
  e.payload.len = plen;
  e.signature.data = sig;
  e.signature.len = (size_t)siglen;
  size_t elen = lp2p_record__envelope__get_packed_size(&e);
  uint8_t *env = malloc(elen ? elen : 1);
  if (!env) return NULL;
  ASSERT(lp2p_record__envelope__pack(&e, env) == elen);
  *out_len = elen;
  return env;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_key) {
    ASSERT(lp2p_privkey_from_ed25519_seed(&g_key, k_seed) == 0);
    ASSERT(lp2p_peer_id_from_pubkey(lp2p_privkey_public(g_key), &g_id) == 0);
  }
  if (!size) return 0;
  uint8_t opt = data[0];
  int sealed = opt & 1;
  size_t max = opt >> 2;
  const uint8_t *env = data + 1;
  size_t len = size - 1;
  uint8_t *owned = NULL;
  if (sealed) {
    if (len > LP2P_ENVELOPE_MAX) return 0;
    if (!(owned = seal_payload(env, len, &len))) return 0;
    env = owned;
  }

  lp2p_peer_id signer;
  memset(&signer, 0, sizeof signer);
  uint64_t seq = 0;
  lp2p_multiaddr **addrs = NULL;
  size_t n = 0;
  int rv = lp2p_peer_record_open(env, len, NULL, &signer, &seq, &addrs, &n, max);
  ASSERT(rv == 0 || rv == LP2P_ERR_TOO_LARGE || rv == LP2P_ERR_PROTO || rv == LP2P_ERR_KEY ||
         rv == LP2P_ERR_SIGNATURE || rv == LP2P_ERR_PEER_ID_MISMATCH || rv == LP2P_ERR_NOMEM);
  if (sealed && len <= LP2P_ENVELOPE_MAX)
    ASSERT(rv == 0 || rv == LP2P_ERR_PROTO || rv == LP2P_ERR_PEER_ID_MISMATCH || rv == LP2P_ERR_NOMEM);
  if (rv != 0) ASSERT(!addrs && !n);
  if (rv == 0) {
    ASSERT(n <= max && (addrs || !n));
    for (size_t i = 0; i < n; i++) ASSERT(addrs[i]);
    if (sealed) ASSERT(lp2p_peer_id_equal(&signer, &g_id));
    /* the signer itself opens it, with the same sequence number; another peer does not */
    uint64_t seq2 = 0;
    int r2 = lp2p_peer_record_open(env, len, &signer, NULL, &seq2, NULL, NULL, 0);
    ASSERT(r2 == 0 || r2 == LP2P_ERR_NOMEM);
    if (r2 == 0) ASSERT(seq2 == seq);
    int r3 = lp2p_peer_record_open(env, len, &g_id, NULL, NULL, NULL, NULL, 0);
    if (lp2p_peer_id_equal(&signer, &g_id))
      ASSERT(r3 == 0 || r3 == LP2P_ERR_NOMEM);
    else
      ASSERT(r3 == LP2P_ERR_PEER_ID_MISMATCH);
    /* reseal what came out (our key) and open it again */
    uint8_t *env2 = NULL;
    size_t len2 = 0;
    if (lp2p_peer_record_seal(g_key, seq, (const lp2p_multiaddr *const *)addrs, n, &env2, &len2) == 0) {
      lp2p_multiaddr **back = NULL;
      size_t nb = 0;
      uint64_t seq3 = 0;
      int r4 = lp2p_peer_record_open(env2, len2, &g_id, NULL, &seq3, &back, &nb, n);
      ASSERT(r4 == 0 || r4 == LP2P_ERR_NOMEM || (r4 == LP2P_ERR_TOO_LARGE && len2 > LP2P_ENVELOPE_MAX));
      if (r4 == 0) {
        ASSERT(seq3 == seq && nb == n);
        for (size_t i = 0; i < n; i++) ASSERT(lp2p_multiaddr_equal(addrs[i], back[i]));
      }
      free_addrs(back, nb);
      free(env2);
    }
  }
  free_addrs(addrs, n);
  free(owned);
  return 0;
}
