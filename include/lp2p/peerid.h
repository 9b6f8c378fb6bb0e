/* lp2p/peerid.h - peer ids.
 *
 * A peer id is the multihash of the deterministic `PublicKey` protobuf:
 * identity multihash when that protobuf is <= 42 bytes, sha2-256 otherwise.
 * It is a small value type (no allocation): copy it freely. Compare with
 * lp2p_peer_id_equal (multihash bytes, never strings). */
#ifndef LP2P_PEERID_H
#define LP2P_PEERID_H
#include "lp2p/common.h"
#include "lp2p/keys.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_PEER_ID_MAX_BYTES 48   /* identity multihash of a 42-byte key: 44 */
#define LP2P_PEER_ID_MAX_TEXT 96    /* longest text form incl. NUL */

typedef struct lp2p_peer_id {
  uint8_t len;                          /* multihash length; 0 = unset */
  uint8_t bytes[LP2P_PEER_ID_MAX_BYTES]; /* the multihash */
} lp2p_peer_id;

LP2P_EXTERN int lp2p_peer_id_from_pubkey(const lp2p_pubkey *k, lp2p_peer_id *out);
/* From multihash bytes (validates: identity <= 42-byte payload or sha2-256). */
LP2P_EXTERN int lp2p_peer_id_from_bytes(const uint8_t *mh, size_t len, lp2p_peer_id *out);
/* Parses "12D3KooW…", "Qm…", "16Uiu2…" (bare base58btc) or a CIDv1 multibase
 * string ("bafz…", codec libp2p-key). LP2P_ERR_PEER_ID on anything else. */
LP2P_EXTERN int lp2p_peer_id_parse(const char *text, lp2p_peer_id *out);
/* Same, with explicit length (text need not be NUL-terminated). */
LP2P_EXTERN int lp2p_peer_id_parse_n(const char *text, size_t len, lp2p_peer_id *out);
/* Base58btc text (the default display form). Returns length or LP2P_ERR_BUFSIZE. */
LP2P_EXTERN int lp2p_peer_id_to_string(const lp2p_peer_id *id, char *buf, size_t cap);
/* CIDv1 base32 text ("bafz…"). */
LP2P_EXTERN int lp2p_peer_id_to_cid_string(const lp2p_peer_id *id, char *buf, size_t cap);
LP2P_EXTERN int lp2p_peer_id_equal(const lp2p_peer_id *a, const lp2p_peer_id *b);
LP2P_EXTERN int lp2p_peer_id_cmp(const lp2p_peer_id *a, const lp2p_peer_id *b); /* total order */
/* For hash tables: SipHash-2-4 of the multihash bytes under a per-process random
 * key (peers choose identity ids freely). Stable within one process only: never
 * persist it or send it. */
LP2P_EXTERN uint64_t lp2p_peer_id_hash(const lp2p_peer_id *id);
/* For identity-multihash ids, the embedded public key (caller owns it);
 * LP2P_ERR_NOT_FOUND for sha2-256 ids. */
LP2P_EXTERN int lp2p_peer_id_extract_pubkey(const lp2p_peer_id *id, lp2p_pubkey **out);
/* True if k hashes to id. */
LP2P_EXTERN int lp2p_peer_id_matches(const lp2p_peer_id *id, const lp2p_pubkey *k);

#ifdef __cplusplus
}
#endif
#endif
