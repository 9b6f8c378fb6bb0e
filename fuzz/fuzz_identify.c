/* fuzz_identify.c - the identify stream decoder: varint-framed Identify protobufs (reader +
 * merge), the end-of-stream check, validation against a peer (publicKey, signed peer record)
 * and push semantics (apply).
 *
 * Input: byte 0 = options, the rest = the bytes a peer sends on an /ipfs/id/1.0.0 stream.
 *   bits 0-2: feed in chunks of 2^k bytes (0 = all at once)
 *   bit 3:    push (a missing publicKey is fine)
 *   bit 4:    validate for the peer of the received key (default: the identify.json identity)
 * Invariants (abort on violation):
 *  - every error is one of the documented codes;
 *  - the merged state respects the limits (protocols, addresses, version lengths);
 *  - a merged state re-encodes (when it fits a message) and decodes back to the same fields;
 *  - validation only accepts a key that matches the peer; apply keeps the fields it was given. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/keys.h"
#include "lp2p/peerid.h"
#include "lp2p/lpm.h"
#include "protocols/identify/identify_int.h"

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

static int same_str(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

static void check_limits(const lp2p__identify_state *st) {
  ASSERT(st->n_protocols <= LP2P_IDENTIFY_MAX_PROTOCOLS);
  ASSERT(st->n_listen <= LP2P_IDENTIFY_MAX_ADDRS);
  ASSERT(!st->protocol_version || strlen(st->protocol_version) <= LP2P_IDENTIFY_MAX_VERSION);
  ASSERT(!st->agent_version || strlen(st->agent_version) <= LP2P_IDENTIFY_MAX_VERSION);
  for (size_t i = 0; i < st->n_protocols; i++) {
    size_t n = strlen(st->protocols[i]);
    ASSERT(n > 0 && n <= LP2P_PROTOCOL_ID_MAX);
    for (size_t j = 0; j < i; j++) ASSERT(strcmp(st->protocols[i], st->protocols[j]));
  }
  for (size_t i = 0; i < st->n_listen; i++) {
    ASSERT(st->listen[i]);
    for (size_t j = 0; j < i; j++) ASSERT(!lp2p_multiaddr_equal(st->listen[i], st->listen[j]));
  }
}

/* Encodes the merged fields as one message, decodes it into a fresh state, compares. */
static void round_trip(const lp2p__identify_state *st) {
  uint8_t pk[LP2P_PUBKEY_PB_MAX];
  int pk_len = 0;
  if (st->key) ASSERT((pk_len = lp2p_pubkey_to_protobuf(st->key, pk, sizeof pk)) > 0);
  lp2p__identify_fields f;
  memset(&f, 0, sizeof f);
  f.public_key = st->key ? pk : NULL;
  f.public_key_len = (size_t)pk_len;
  f.listen_addrs = (const lp2p_multiaddr *const *)st->listen;
  f.n_listen_addrs = st->n_listen;
  f.protocols = (const char *const *)st->protocols;
  f.n_protocols = st->n_protocols;
  f.observed_addr = st->observed;
  f.protocol_version = st->protocol_version;
  f.agent_version = st->agent_version;
  f.signed_record = st->record_len ? st->record : NULL;
  f.signed_record_len = st->record_len;
  size_t size = lp2p__identify_size(&f);
  if (size > LP2P_IDENTIFY_MAX_MESSAGE) return;
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) return;
  int n = lp2p__identify_encode(&f, buf, size);
  ASSERT(n >= 0 && (size_t)n == size);
  lp2p__identify_state back;
  lp2p__identify_state_init(&back);
  int rv = lp2p__identify_merge(&back, buf, (size_t)n);
  if (rv == LP2P_ERR_NOMEM) goto out;
  ASSERT(rv == 0);
  ASSERT(!st->key == !back.key);
  if (st->key) ASSERT(lp2p_pubkey_equal(st->key, back.key));
  ASSERT(same_str(st->protocol_version, back.protocol_version));
  ASSERT(same_str(st->agent_version, back.agent_version));
  ASSERT(back.n_protocols == st->n_protocols);
  for (size_t i = 0; i < st->n_protocols; i++) ASSERT(!strcmp(st->protocols[i], back.protocols[i]));
  ASSERT(back.n_listen == st->n_listen);
  for (size_t i = 0; i < st->n_listen; i++) ASSERT(lp2p_multiaddr_equal(st->listen[i], back.listen[i]));
  ASSERT(!st->observed == !back.observed);
  if (st->observed) ASSERT(lp2p_multiaddr_equal(st->observed, back.observed));
  ASSERT(back.record_len == st->record_len);
  if (st->record_len) ASSERT(!memcmp(back.record, st->record, st->record_len));
out:
  lp2p__identify_state_clear(&back);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static lp2p_peer_id fixed;
  static int ready;
  if (!ready) {
    lp2p_privkey *k = NULL;
    ASSERT(lp2p_privkey_from_ed25519_seed(&k, k_seed) == 0);
    ASSERT(lp2p_peer_id_from_pubkey(lp2p_privkey_public(k), &fixed) == 0);
    lp2p_privkey_free(k);
    ready = 1;
  }
  if (!size) return 0;
  uint8_t opt = data[0];
  data++;
  size--;
  size_t chunk = (opt & 7) ? (size_t)1 << (opt & 7) : size;
  if (!chunk) chunk = 1;
  int push = (opt >> 3) & 1, own_peer = (opt >> 4) & 1;

  lp2p__identify_state st;
  lp2p__identify_state_init(&st);
  lp2p__identify_reader rd;
  memset(&rd, 0, sizeof rd);
  int rv = 0;
  for (size_t off = 0; off < size && rv == 0; off += chunk)
    rv = lp2p__identify_reader_feed(&rd, &st, data + off, size - off < chunk ? size - off : chunk);
  ASSERT(rv == 0 || rv == LP2P_ERR_TOO_LARGE || rv == LP2P_ERR_LIMIT || rv == LP2P_ERR_VARINT ||
         rv == LP2P_ERR_PROTO || rv == LP2P_ERR_KEY || rv == LP2P_ERR_NOMEM);
  ASSERT(rd.messages <= LP2P_IDENTIFY_MAX_MESSAGES + 1);
  check_limits(&st);
  if (rv == 0) {
    int end = lp2p__identify_reader_end(&rd);
    ASSERT(end == 0 || end == LP2P_ERR_PROTO || end == LP2P_ERR_EOF);
    ASSERT((end == LP2P_ERR_EOF) == (rd.messages == 0 && (!rd.lpm || !lp2p_lpm_reader_pending(rd.lpm))));
    if (end == 0) {
      round_trip(&st);
      lp2p_peer_id peer = fixed;
      if (own_peer && st.key) ASSERT(lp2p_peer_id_from_pubkey(st.key, &peer) == 0);
      int v = lp2p__identify_validate(&st, &peer, !push);
      ASSERT(v == 0 || v == LP2P_ERR_KEY || v == LP2P_ERR_PEER_ID_MISMATCH || v == LP2P_ERR_SIGNATURE ||
             v == LP2P_ERR_PROTO || v == LP2P_ERR_NOMEM);
      /* a missing key, or a bad key inside the signed record */
      if (v == LP2P_ERR_KEY) ASSERT((!st.key && !push) || st.has_record);
      /* with the key's own peer, a mismatch can only come from the signed record */
      if (v == LP2P_ERR_PEER_ID_MISMATCH && own_peer && st.key) ASSERT(st.has_record);
      if (v == 0) {
        ASSERT(!st.key || lp2p_peer_id_matches(&peer, st.key));
        ASSERT(st.info.n_protocols == st.n_protocols && st.info.n_listen_addrs == st.n_listen);
        ASSERT(st.info.signed_record == st.record_ok && st.record_ok == st.has_record);
        check_limits(&st);
        /* push semantics: everything present moves over */
        lp2p__identify_state dst;
        lp2p__identify_state_init(&dst);
        lp2p__identify_state_view(&dst, &peer);
        size_t np = st.n_protocols, nl = st.n_listen;
        int had_pv = st.has_pv, protos_seen = st.n_protocols_seen > 0;
        lp2p__identify_apply(&dst, &st);
        if (protos_seen) ASSERT(dst.n_protocols == np && dst.info.n_protocols == np);
        if (had_pv) ASSERT(dst.info.protocol_version == dst.protocol_version);
        ASSERT(dst.n_listen == nl || !nl);
        ASSERT(lp2p_peer_id_equal(&dst.info.peer, &peer));
        check_limits(&dst);
        lp2p__identify_state_clear(&dst);
      }
    }
  }
  lp2p__identify_reader_free(&rd);
  lp2p__identify_state_clear(&st);
  return 0;
}
