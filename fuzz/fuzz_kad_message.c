/* fuzz_kad_message.c - the Kademlia Message codec (kad/engine/kad_codec.c): strict decoding of
 * arbitrary bytes, then re-encoding.
 *
 * Invariants (abort on violation):
 *  - every error is one of LP2P_ERR_PROTO / _LIMIT / _TOO_LARGE / _NOMEM;
 *  - a decoded message respects the caps: <= KAD_MAX_PEERS_PER_MSG peer entries, <=
 *    KAD_MAX_ADDRS_PER_PEER addresses per peer, keys <= KAD_MAX_KEY, type 0..5, valid peer ids;
 *  - encode(decode(x)) decodes again to the same type, key, record and peers, and encoding that
 *    gives the same bytes (the encoding is canonical after one round). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kad/engine/kad_engine.h"

#define ASSERT(c)                                                                \
  do {                                                                           \
    if (!(c)) {                                                                  \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c); \
      abort();                                                                   \
    }                                                                            \
  } while (0)

static void check_peers(const kad_peer *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    ASSERT(p[i].id.len > 0);
    lp2p_peer_id again;
    ASSERT(lp2p_peer_id_from_bytes(p[i].id.bytes, p[i].id.len, &again) == 0);
    ASSERT(p[i].naddrs <= KAD_MAX_ADDRS_PER_PEER);
    for (size_t j = 0; j < p[i].naddrs; j++) ASSERT(p[i].addrs[j]);
    ASSERT(p[i].connection >= 0 && p[i].connection <= 3);
  }
}

static void same_peers(const kad_peer *a, size_t na, const kad_peer *b, size_t nb) {
  ASSERT(na == nb);
  for (size_t i = 0; i < na; i++) {
    ASSERT(lp2p_peer_id_equal(&a[i].id, &b[i].id));
    ASSERT(a[i].naddrs == b[i].naddrs);
    for (size_t j = 0; j < a[i].naddrs; j++) ASSERT(lp2p_multiaddr_equal(a[i].addrs[j], b[i].addrs[j]));
    ASSERT(a[i].connection == b[i].connection);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kad_msg m;
  int rv = kad_msg_decode(NULL, data, size, &m);
  ASSERT(rv == 0 || rv == LP2P_ERR_PROTO || rv == LP2P_ERR_LIMIT || rv == LP2P_ERR_TOO_LARGE ||
         rv == LP2P_ERR_NOMEM);
  if (rv) {
    ASSERT(!m.closer && !m.providers && !m.priv_);
    return 0;
  }
  ASSERT(m.type >= 0 && m.type <= 5);
  ASSERT(m.key_len <= KAD_MAX_KEY && m.rec_key_len <= KAD_MAX_KEY);
  ASSERT(m.ncloser + m.nproviders <= KAD_MAX_PEERS_PER_MSG);
  check_peers(m.closer, m.ncloser);
  check_peers(m.providers, m.nproviders);
  uint8_t *e1 = NULL, *e2 = NULL;
  size_t l1 = 0, l2 = 0;
  ASSERT(kad_msg_encode(NULL, &m, &e1, &l1) == 0);
  kad_msg d;
  ASSERT(kad_msg_decode(NULL, e1, l1, &d) == 0);
  ASSERT(d.type == m.type && d.cluster_level == m.cluster_level);
  ASSERT(d.key_len == m.key_len && (!m.key_len || !memcmp(d.key, m.key, m.key_len)));
  ASSERT(d.has_record == m.has_record);
  if (m.has_record) {
    ASSERT(d.rec_key_len == m.rec_key_len && (!m.rec_key_len || !memcmp(d.rec_key, m.rec_key, m.rec_key_len)));
    ASSERT(d.rec_value_len == m.rec_value_len &&
           (!m.rec_value_len || !memcmp(d.rec_value, m.rec_value, m.rec_value_len)));
  }
  ASSERT(d.dropped == 0);
  same_peers(m.closer, m.ncloser, d.closer, d.ncloser);
  same_peers(m.providers, m.nproviders, d.providers, d.nproviders);
  ASSERT(kad_msg_encode(NULL, &d, &e2, &l2) == 0);
  ASSERT(l1 == l2 && !memcmp(e1, e2, l1));
  kad_bytes_free(NULL, e1);
  kad_bytes_free(NULL, e2);
  kad_msg_clear(NULL, &d);
  kad_msg_clear(NULL, &m);
  return 0;
}
