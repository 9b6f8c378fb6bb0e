/* protocols/gossipsub/engine/gossip_rpc.h - the gossipsub RPC codec (internal, sans-IO).
 *
 * Wire format (libp2p/specs pubsub/README.md): every RPC on a `/meshsub/1.x.0` stream is
 * an unsigned-varint length prefix followed by one `RPC` protobuf (gossipsub_rpc.proto).
 *
 * Decoding is strict and bounded: lp2p_gs_rpc_decode refuses an RPC larger than
 * max_rpc_size (LP2P_ERR_TOO_LARGE) before parsing it, anything protobuf-c cannot parse
 * (LP2P_ERR_PARSE), and, after parsing, more than the configured number of
 * subscriptions, messages, control entries or message ids, and topics that are empty,
 * longer than max_topic_len or contain NUL (LP2P_ERR_LIMIT / LP2P_ERR_PROTO). A message
 * without a topic is LP2P_ERR_PROTO. The decoded tree is owned by the caller and freed
 * with lp2p_gs_rpc_free (same lp2p_mem).
 *
 * Encoding is hand-written (lp2p_gs_pb_*): the router appends fields to growable
 * buffers so an RPC is assembled without building a protobuf-c tree.
 *
 * Signing (StrictSign): the signature covers "libp2p-pubsub:" || Message protobuf with
 * the fields from(1), data(2), seqno(3), topic(4) in that order (signature and key
 * absent). `from` is the signer's peer id; `key` carries the public key protobuf only
 * when the peer id does not inline it (sha2-256 ids, i.e. RSA). Verification parses
 * `from`, takes the key from `key` (which must match `from`) or from the identity peer
 * id, and checks the signature; every failure is LP2P_ERR_SIGNATURE. */
#ifndef LP2P_GOSSIP_RPC_H
#define LP2P_GOSSIP_RPC_H
#include <stddef.h>
#include <stdint.h>

#include "core/mem.h"
#include "gossipsub_rpc.pb-c.h"
#include "lp2p/common.h"
#include "lp2p/keys.h"
#include "lp2p/peerid.h"

#define LP2P_GS_SIGN_PREFIX "libp2p-pubsub:"

typedef struct lp2p_gs_limits {
  size_t max_rpc_size;   /* bytes of one RPC (without its length prefix); default 1 MiB */
  size_t max_subs;       /* subscriptions per RPC; default 1024 */
  size_t max_messages;   /* published messages per RPC; default 256 */
  size_t max_topic_len;  /* bytes; default 256 */
  size_t max_control;    /* ihave+iwant+graft+prune+idontwant entries per RPC; default 1024 */
  size_t max_ids;        /* message ids over all ihave/iwant/idontwant entries; default 5000 */
  size_t max_px;         /* peer-exchange records per prune; default 16 */
} lp2p_gs_limits;

/* Fills the defaults above. */
void lp2p_gs_limits_default(lp2p_gs_limits *l);

/* Decodes one RPC body (no length prefix). Caller owns *out. */
int lp2p_gs_rpc_decode(const lp2p_mem *m, const uint8_t *buf, size_t len, const lp2p_gs_limits *lim,
                       Lp2pGs__RPC **out);
void lp2p_gs_rpc_free(const lp2p_mem *m, Lp2pGs__RPC *rpc);

/* Checks a topic: 1..max bytes, no NUL. 0 or LP2P_ERR_PROTO. */
int lp2p_gs_topic_check(const uint8_t *t, size_t len, size_t max);

/* ---- protobuf writing into an lp2p_bytes (LP2P_ERR_NOMEM on failure) ---- */
int lp2p_gs_pb_varint(const lp2p_mem *m, lp2p_bytes *b, uint32_t field, uint64_t v);
int lp2p_gs_pb_ld(const lp2p_mem *m, lp2p_bytes *b, uint32_t field, const void *p, size_t n);

/* A message being published. from/seqno/signature/key are filled by lp2p_gs_msg_encode. */
typedef struct lp2p_gs_msg_fields {
  const uint8_t *from;  size_t from_len;
  const uint8_t *data;  size_t data_len;
  const uint8_t *seqno; size_t seqno_len;
  const uint8_t *topic; size_t topic_len;
  const uint8_t *signature; size_t signature_len;
  const uint8_t *key;   size_t key_len;
} lp2p_gs_msg_fields;

/* Encodes a Message protobuf (fields present when their pointer is non-NULL) into *out
 * (appended). */
int lp2p_gs_msg_encode(const lp2p_mem *m, const lp2p_gs_msg_fields *f, lp2p_bytes *out);

/* Signs: sets f->from to the signer's peer id, computes the signature over the signing
 * bytes and appends the full signed Message protobuf to *out. `seqno` and `topic` must be
 * set by the caller. */
int lp2p_gs_msg_sign_encode(const lp2p_mem *m, const lp2p_privkey *k, const lp2p_gs_msg_fields *f,
                            lp2p_bytes *out);

/* Verifies a decoded message under StrictSign (from, seqno and signature required). */
int lp2p_gs_msg_verify(const lp2p_mem *m, const Lp2pGs__Message *msg);

#endif
