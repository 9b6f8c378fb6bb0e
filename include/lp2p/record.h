/* lp2p/record.h - signed envelopes (libp2p RFC 0002) and peer records
 * (RFC 0003), as exchanged by identify (signedPeerRecord) and used by kad,
 * rendezvous and others. Byte-compatible with js-libp2p and go-libp2p.
 *
 * Envelope (protobuf): public_key (PublicKey protobuf of the signer),
 * payload_type (multicodec bytes), payload, signature over
 *     uvarint(len(domain)) || domain || uvarint(len(type)) || type ||
 *     uvarint(len(payload)) || payload
 * The domain is not carried: both sides must agree on it (peer records use
 * "libp2p-peer-record"), which keeps a signature made for one purpose from
 * being replayed for another.
 *
 * Peer record (payload type 0x0301): peer id, sequence number, addresses.
 *
 * Pure functions (no I/O, no globals). Outputs called *out / *payload /
 * *addrs are malloc'ed: release them with free() (and addresses with
 * lp2p_peer_record_addrs_free). Envelopes longer than LP2P_ENVELOPE_MAX are
 * refused with LP2P_ERR_TOO_LARGE. */
#ifndef LP2P_RECORD_H
#define LP2P_RECORD_H
#include "lp2p/keys.h"
#include "lp2p/multiaddr.h"
#include "lp2p/peerid.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_ENVELOPE_MAX 8192
#define LP2P_PEER_RECORD_DOMAIN "libp2p-peer-record"
/* The peer record payload type (multicodec 0x0301 as uvarint bytes) and its length. */
#define LP2P_PEER_RECORD_TYPE ((const uint8_t *)"\x03\x01")
#define LP2P_PEER_RECORD_TYPE_LEN 2

/* ---- envelopes ---- */

/* Signs payload[0..plen) with k for domain (NUL-terminated, non-empty) and
 * payload type type[0..type_len) (non-empty). *out (malloc'ed) / *out_len get
 * the serialized Envelope. Errors: LP2P_ERR_INVAL, LP2P_ERR_NOMEM, key errors. */
LP2P_EXTERN int lp2p_envelope_seal(const lp2p_privkey *k, const char *domain, const uint8_t *type, size_t type_len,
                                   const uint8_t *payload, size_t plen, uint8_t **out, size_t *out_len);

/* Parses and verifies an Envelope for domain and the expected payload type.
 * On success: *signer (optional) = the signer's peer id; *payload (optional;
 * malloc'ed copy, non-NULL even when empty) / *payload_len = the payload.
 * Errors: LP2P_ERR_TOO_LARGE, LP2P_ERR_PROTO (malformed, missing field, other
 * payload type), LP2P_ERR_KEY (bad public key), LP2P_ERR_SIGNATURE,
 * LP2P_ERR_NOMEM, LP2P_ERR_INVAL. */
LP2P_EXTERN int lp2p_envelope_open(const uint8_t *env, size_t len, const char *domain, const uint8_t *type,
                                   size_t type_len, lp2p_peer_id *signer, uint8_t **payload, size_t *payload_len);

/* ---- peer records (unsigned payload) ---- */

/* Encodes PeerRecord{peer, seq, addrs[0..n)} (addresses as multiaddr bytes). */
LP2P_EXTERN int lp2p_peer_record_encode(const lp2p_peer_id *peer, uint64_t seq, const lp2p_multiaddr *const *addrs,
                                        size_t n, uint8_t **out, size_t *out_len);
/* Decodes a PeerRecord. peer (optional) receives its peer id (LP2P_ERR_PROTO
 * if missing or malformed), seq its sequence number (0 if absent). If addrs
 * is non-NULL it receives up to max parseable addresses (unparseable ones are
 * skipped), count in *n_addrs; release with lp2p_peer_record_addrs_free. */
LP2P_EXTERN int lp2p_peer_record_decode(const uint8_t *p, size_t len, lp2p_peer_id *peer, uint64_t *seq,
                                        lp2p_multiaddr ***addrs, size_t *n_addrs, size_t max);
LP2P_EXTERN void lp2p_peer_record_addrs_free(lp2p_multiaddr **addrs, size_t n);

/* ---- signed peer records ---- */

/* Envelope (domain LP2P_PEER_RECORD_DOMAIN, type 0x0301) holding
 * PeerRecord{peer id of k, seq, addrs}. */
LP2P_EXTERN int lp2p_peer_record_seal(const lp2p_privkey *k, uint64_t seq, const lp2p_multiaddr *const *addrs,
                                      size_t n, uint8_t **out, size_t *out_len);
/* Verifies a signed peer record for peer (NULL: any peer; the signer is then
 * written to *signer if non-NULL). The record's peer id must be the signer's.
 * Outputs seq and, if addrs is non-NULL, at most max parseable addresses
 * (lp2p_peer_record_addrs_free). Errors: LP2P_ERR_TOO_LARGE, LP2P_ERR_PROTO,
 * LP2P_ERR_KEY, LP2P_ERR_SIGNATURE, LP2P_ERR_PEER_ID_MISMATCH, LP2P_ERR_NOMEM. */
LP2P_EXTERN int lp2p_peer_record_open(const uint8_t *env, size_t len, const lp2p_peer_id *peer,
                                      lp2p_peer_id *signer, uint64_t *seq, lp2p_multiaddr ***addrs, size_t *n_addrs,
                                      size_t max);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_RECORD_H */
