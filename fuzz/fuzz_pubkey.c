/* fuzz_pubkey.c - PublicKey protobuf parsing, signature verification, marshal
 * round trip and the derived peer id.
 *
 * Input: u16 BE pb_len | pb | u8 msg_len | msg | signature (rest). An input
 * too short for that layout is taken whole as the protobuf. Invariants
 * checked (abort on violation):
 *  - a parsed key marshals back to exactly the input bytes (strict parsing
 *    means only the canonical encoding is accepted);
 *  - verification returns 0 or LP2P_ERR_SIGNATURE, and a dup verifies alike;
 *  - the peer id survives both text forms, and inline keys come back out. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/keys.h"
#include "lp2p/peerid.h"

#define ASSERT(c)                                                                                           \
  do {                                                                                                      \
    if (!(c)) abort();                                                                                      \
  } while (0)

static void check_peer_id(const lp2p_pubkey *k, const uint8_t *pb, size_t pblen) {
  lp2p_peer_id id, back;
  ASSERT(lp2p_peer_id_from_pubkey(k, &id) == 0);
  ASSERT(lp2p_peer_id_matches(&id, k));
  ASSERT(id.bytes[0] == (pblen <= 42 ? 0x00 : 0x12));
  char text[LP2P_PEER_ID_MAX_TEXT];
  ASSERT(lp2p_peer_id_to_string(&id, text, sizeof text) > 0);
  ASSERT(lp2p_peer_id_parse(text, &back) == 0 && lp2p_peer_id_equal(&id, &back));
  ASSERT(lp2p_peer_id_to_cid_string(&id, text, sizeof text) > 0);
  ASSERT(lp2p_peer_id_parse(text, &back) == 0 && lp2p_peer_id_equal(&id, &back));
  lp2p_pubkey *ex = NULL;
  int rv = lp2p_peer_id_extract_pubkey(&id, &ex);
  if (pblen <= 42) {
    ASSERT(rv == 0 && lp2p_pubkey_equal(ex, k));
    ASSERT(id.len == pblen + 2 && !memcmp(id.bytes + 2, pb, pblen));
  } else {
    ASSERT(rv == LP2P_ERR_NOT_FOUND && ex == NULL);
  }
  lp2p_pubkey_free(ex);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *pb = data, *msg = NULL, *sig = NULL;
  size_t pblen = size, msglen = 0, siglen = 0;
  if (size >= 2) {
    size_t n = (size_t)data[0] << 8 | data[1];
    if (n + 3 <= size && data[2 + n] <= size - 3 - n) {
      pb = data + 2;
      pblen = n;
      msglen = data[2 + n];
      msg = data + 3 + n;
      sig = msg + msglen;
      siglen = size - 3 - n - msglen;
    }
  }
  lp2p_pubkey *k = NULL;
  int rv = lp2p_pubkey_from_protobuf(&k, pb, pblen);
  if (rv != 0) {
    ASSERT(k == NULL && rv < 0);
    return 0;
  }
  uint8_t out[LP2P_PUBKEY_PB_MAX];
  int n = lp2p_pubkey_to_protobuf(k, out, sizeof out);
  ASSERT(n == (int)pblen && !memcmp(out, pb, pblen));
  size_t dlen;
  const uint8_t *d = lp2p_pubkey_data(k, &dlen);
  ASSERT(d && dlen < pblen && !memcmp(d, pb + pblen - dlen, dlen));
  check_peer_id(k, pb, pblen);
  if (sig) {
    uint8_t empty = 0;
    int v = lp2p_pubkey_verify(k, msglen ? msg : &empty, msglen, siglen ? sig : &empty, siglen);
    ASSERT(v == 0 || v == LP2P_ERR_SIGNATURE);
    lp2p_pubkey *dup = lp2p_pubkey_dup(k);
    ASSERT(dup && lp2p_pubkey_equal(dup, k));
    ASSERT(lp2p_pubkey_verify(dup, msglen ? msg : &empty, msglen, siglen ? sig : &empty, siglen) == v);
    lp2p_pubkey_free(dup);
  }
  lp2p_pubkey_free(k);
  return 0;
}
