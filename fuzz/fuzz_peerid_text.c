/* fuzz_peerid_text.c - peer id text parsing (bare base58btc and multibase
 * CIDs). Invariants (abort on violation): a parsed id re-encodes in both
 * text forms and parses back to the same bytes, validates as multihash bytes,
 * and an inline key extracted from it hashes back to the same id. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/keys.h"
#include "lp2p/peerid.h"

#define ASSERT(c)                                                                                           \
  do {                                                                                                      \
    if (!(c)) abort();                                                                                      \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lp2p_peer_id id, back;
  int rv = lp2p_peer_id_parse_n((const char *)data, size, &id);
  /* The NUL-terminated entry point agrees when the text has no NUL. */
  if (size < 256 && !memchr(data, 0, size)) {
    char z[256];
    memcpy(z, data, size);
    z[size] = 0;
    lp2p_peer_id id2;
    int rv2 = lp2p_peer_id_parse(z, &id2);
    ASSERT(rv2 == rv);
    if (rv == 0) ASSERT(lp2p_peer_id_equal(&id, &id2));
  }
  if (rv != 0) {
    ASSERT(rv == LP2P_ERR_PEER_ID);
    return 0;
  }
  ASSERT(id.len > 0 && id.len <= LP2P_PEER_ID_MAX_BYTES);
  ASSERT(lp2p_peer_id_from_bytes(id.bytes, id.len, &back) == 0 && lp2p_peer_id_equal(&id, &back));
  char text[LP2P_PEER_ID_MAX_TEXT];
  int n = lp2p_peer_id_to_string(&id, text, sizeof text);
  ASSERT(n > 0 && (size_t)n < sizeof text);
  ASSERT(lp2p_peer_id_parse(text, &back) == 0 && lp2p_peer_id_equal(&id, &back));
  ASSERT(lp2p_peer_id_hash(&id) == lp2p_peer_id_hash(&back) && lp2p_peer_id_cmp(&id, &back) == 0);
  n = lp2p_peer_id_to_cid_string(&id, text, sizeof text);
  ASSERT(n > 4 && !memcmp(text, "bafz", 4));
  ASSERT(lp2p_peer_id_parse(text, &back) == 0 && lp2p_peer_id_equal(&id, &back));
  lp2p_pubkey *k = NULL;
  rv = lp2p_peer_id_extract_pubkey(&id, &k);
  if (id.bytes[0] == 0x12) ASSERT(rv == LP2P_ERR_NOT_FOUND);
  if (rv == 0) ASSERT(lp2p_peer_id_matches(&id, k));
  else ASSERT(k == NULL);
  lp2p_pubkey_free(k);
  return 0;
}
