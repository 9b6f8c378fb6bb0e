/* protocols/identify/identify_int.h - Identify message codec, merged peer
 * state (internal; the behaviour is identify.c). Signed peer records: lp2p/record.h.
 * Allocations of the state and reader go through their `mem` (NULL = libc; the
 * behaviour passes the swarm's allocator); multiaddrs, keys, protobuf-c
 * unpacking and signed peer records use libc. */
#ifndef LP2P_PROTOCOLS_IDENTIFY_INT_H
#define LP2P_PROTOCOLS_IDENTIFY_INT_H
#include "lp2p/identify.h"
#include "lp2p/record.h"

/* ---- encoding ---- */
/* Everything borrowed; NULL / 0 fields are left out. */
typedef struct lp2p__identify_fields {
  const uint8_t *public_key;       /* PublicKey protobuf */
  size_t public_key_len;
  const lp2p_multiaddr *const *listen_addrs;
  size_t n_listen_addrs;
  const char *const *protocols;
  size_t n_protocols;
  const lp2p_multiaddr *observed_addr;
  const char *protocol_version;
  const char *agent_version;
  const uint8_t *signed_record;    /* serialized Envelope */
  size_t signed_record_len;
} lp2p__identify_fields;

/* Serialized size of the Identify protobuf (no length prefix). */
size_t lp2p__identify_size(const lp2p__identify_fields *f);
/* Writes the protobuf into out. Returns its length or LP2P_ERR_BUFSIZE / LP2P_ERR_NOMEM. */
int lp2p__identify_encode(const lp2p__identify_fields *f, uint8_t *out, size_t cap);

/* ---- decoding: merged state of one peer ---- */
typedef struct lp2p__identify_state {
  const lp2p_mem *mem; /* NULL = libc; kept by clear; states merged by apply share one */
  lp2p_pubkey *key;
  char *protocol_version, *agent_version;
  char **protocols;
  size_t n_protocols;
  lp2p_multiaddr **listen;
  size_t n_listen;
  lp2p_multiaddr *observed;
  uint8_t *record;               /* raw Envelope bytes (last one received) */
  size_t record_len;
  /* presence of each field in what was merged */
  int has_key, has_pv, has_av, has_observed, has_record;
  int n_protocols_seen, n_listen_seen; /* entries received (before limits), for "present" checks */
  /* verified record */
  int record_ok;
  uint64_t record_seq;
  /* the public view (lp2p_identify_info) points into the fields above */
  lp2p_identify_info info;
} lp2p__identify_state;

void lp2p__identify_state_init(lp2p__identify_state *st); /* libc */
void lp2p__identify_state_init_mem(lp2p__identify_state *st, const lp2p_mem *mem);
void lp2p__identify_state_clear(lp2p__identify_state *st);
/* Decodes one Identify protobuf and merges it into st (scalars overwrite,
 * repeated fields append, limits applied, bad addresses skipped).
 * Errors: LP2P_ERR_TOO_LARGE (len > LP2P_IDENTIFY_MAX_MESSAGE), LP2P_ERR_PROTO
 * (not a valid Identify), LP2P_ERR_KEY (bad publicKey), LP2P_ERR_NOMEM. */
int lp2p__identify_merge(lp2p__identify_state *st, const uint8_t *msg, size_t len);
/* Checks st for peer: publicKey present (LP2P_ERR_KEY) and matching
 * (LP2P_ERR_PEER_ID_MISMATCH); a record, if any, must verify for peer
 * (LP2P_ERR_SIGNATURE / LP2P_ERR_PEER_ID_MISMATCH / LP2P_ERR_PROTO). On
 * success fills st->info and st->record_ok/record_seq. require_key: 0 for
 * pushes (a missing key is fine). */
int lp2p__identify_validate(lp2p__identify_state *st, const lp2p_peer_id *peer, int require_key);
/* Push semantics: moves every field present in src into dst (replacing), then
 * refreshes dst->info. src is left cleared. */
void lp2p__identify_apply(lp2p__identify_state *dst, lp2p__identify_state *src);
/* Heap bytes st holds (an upper estimate: allocator headers and the multiaddr objects counted
 * generously), for the stream's resource charge. */
size_t lp2p__identify_state_memory(const lp2p__identify_state *st);
/* Rebuilds st->info from the fields. */
void lp2p__identify_state_view(lp2p__identify_state *st, const lp2p_peer_id *peer);

/* ---- framing: varint-length-prefixed messages until EOF ---- */
typedef struct lp2p__identify_reader { /* zero-initialised but for mem; framing by lp2p/lpm.h */
  const lp2p_mem *mem; /* NULL = libc; kept by free */
  struct lp2p_lpm_reader *lpm;
  size_t messages;
} lp2p__identify_reader;
/* Appends received bytes and merges every complete message into st.
 * Errors: LP2P_ERR_TOO_LARGE, LP2P_ERR_LIMIT (more than LP2P_IDENTIFY_MAX_MESSAGES),
 * LP2P_ERR_VARINT, merge errors. */
int lp2p__identify_reader_feed(lp2p__identify_reader *r, lp2p__identify_state *st, const uint8_t *p, size_t n);
/* At EOF: LP2P_ERR_PROTO if a partial message is left, LP2P_ERR_EOF if no message at all. */
int lp2p__identify_reader_end(const lp2p__identify_reader *r);
void lp2p__identify_reader_free(lp2p__identify_reader *r);
/* Heap bytes r holds (the partial message buffered), for the stream's resource charge. */
size_t lp2p__identify_reader_memory(const lp2p__identify_reader *r);

#endif
