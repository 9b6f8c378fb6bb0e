/* fuzz_privkey.c - PrivateKey protobuf parsing (key files: Ed25519 64/96-byte forms, secp256k1
 * scalars, RSA PKCS#1 DER, ECDSA SEC1 DER), as lp2p_privkey_load_file and js-libp2p key files
 * feed it.
 *
 * Input: the PrivateKey protobuf.
 * Invariants (abort on violation):
 *  - errors are LP2P_ERR_KEY / LP2P_ERR_KEY_TYPE / LP2P_ERR_NOMEM (nothing returned then);
 *  - a parsed key marshals to a protobuf that parses to the same public key and marshals to the
 *    same bytes again (one normalisation step at most, e.g. the legacy 96-byte Ed25519 form);
 *  - a signature made with the key verifies with its public key, and not for another message
 *    (a key whose parts do not belong together must have been rejected). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/keys.h"
#include "lp2p/peerid.h"

#define ASSERT(c)                                                                                           \
  do {                                                                                                      \
    if (!(c)) {                                                                                             \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);                            \
      abort();                                                                                              \
    }                                                                                                       \
  } while (0)

#define PB_CAP 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lp2p_privkey *k = NULL;
  int rv = lp2p_privkey_from_protobuf(&k, data, size);
  if (rv != 0) {
    ASSERT(rv == LP2P_ERR_KEY || rv == LP2P_ERR_KEY_TYPE || rv == LP2P_ERR_NOMEM);
    ASSERT(k == NULL);
    return 0;
  }
  ASSERT(k && lp2p_privkey_public(k));
  static uint8_t pb1[PB_CAP], pb2[PB_CAP];
  int n1 = lp2p_privkey_to_protobuf(k, pb1, sizeof pb1);
  ASSERT(n1 > 0);
  lp2p_privkey *k2 = NULL;
  rv = lp2p_privkey_from_protobuf(&k2, pb1, (size_t)n1);
  ASSERT(rv == 0 || rv == LP2P_ERR_NOMEM);
  if (rv == 0) {
    ASSERT(lp2p_privkey_type(k2) == lp2p_privkey_type(k));
    ASSERT(lp2p_pubkey_equal(lp2p_privkey_public(k), lp2p_privkey_public(k2)));
    int n2 = lp2p_privkey_to_protobuf(k2, pb2, sizeof pb2);
    ASSERT(n2 == n1 && !memcmp(pb1, pb2, (size_t)n1));
    lp2p_privkey_free(k2);
  }
  static const uint8_t msg[] = "lp2p fuzz_privkey message", other[] = "lp2p fuzz_privkey messagf";
  uint8_t sig[LP2P_SIGNATURE_MAX];
  int sl = lp2p_privkey_sign(k, msg, sizeof msg, sig, sizeof sig);
  ASSERT(sl > 0 || sl == LP2P_ERR_NOMEM);
  if (sl > 0) {
    const lp2p_pubkey *pub = lp2p_privkey_public(k);
    ASSERT(lp2p_pubkey_verify(pub, msg, sizeof msg, sig, (size_t)sl) == 0);
    ASSERT(lp2p_pubkey_verify(pub, other, sizeof other, sig, (size_t)sl) == LP2P_ERR_SIGNATURE);
    lp2p_peer_id id;
    ASSERT(lp2p_peer_id_from_pubkey(pub, &id) == 0 && lp2p_peer_id_matches(&id, pub));
  }
  lp2p_privkey_free(k);
  return 0;
}
