/* kad/engine/kad_engine.h - the sans-IO Kademlia DHT engine (`/ipfs/kad/1.0.0`) and its codec.
 *
 * Internal header (not installed): the kad behaviour (swarm side, later) and the tests use it.
 *
 * The engine owns the routing table, the running queries, the record store and the provider
 * store. It never touches a socket or a clock: time comes in as `now` (lp2p_tstamp, monotonic
 * ms) on every call that can change state, randomness only through the rng callback given at
 * _new. Given the same inputs and the same random bytes it produces the same outputs, which is
 * what lets bench/bench_kad_sim.c run thousands of engines in one process.
 *
 * Inputs                                           Outputs (polled)
 *   kad_on_peer_identified  (identify says: serves  kad_next_action: "send request R (id) as
 *                            kad, or no longer)        message bytes to peer P at addrs"
 *   kad_on_peer_connected / _disconnected           kad_next_result: one per query, exactly once
 *   kad_on_inbound_request  (server side; returns
 *                            the response bytes)
 *   kad_on_response         (bytes or an error for
 *                            a request id we emitted)
 *   kad_tick(now)           (timeouts, refresh,
 *                            republish, expiry)
 *   kad_query_start / kad_query_cancel, kad_provide, kad_bootstrap
 *
 * Exactly-once rules:
 *  - Every action (request id) emitted by kad_next_action must be answered by the caller with
 *    exactly one kad_on_response for that id (bytes, or an error such as LP2P_ERR_TIMEOUT /
 *    LP2P_ERR_DIAL / LP2P_ERR_RESET), unless the engine is freed first. The engine also enforces
 *    the per-request timeout itself (cfg.request_timeout_ms, 10 s): once it fired, a late
 *    kad_on_response for that id returns LP2P_ERR_NOT_FOUND and is otherwise ignored.
 *    ADD_PROVIDER requests expect no response bytes: report kad_on_response(id, NULL, 0, 0)
 *    once the message was written (or an error if it could not be).
 *  - Every query started successfully (kad_query_start returned 0) yields exactly one
 *    kad_result, also when it is cancelled (status LP2P_ERR_CANCELED) or times out. Results are
 *    only queued, never delivered from inside the call that started the query.
 *
 * Framing is the caller's job: message bytes here are one protobuf `Message` without the
 * uvarint length prefix (see kad_frame_* helpers below for the prefix).
 *
 * Ownership: pointers inside a kad_action / kad_result stay valid until the next call of
 * kad_next_action / kad_next_result (respectively) or kad_engine_free. Response bytes from
 * kad_on_inbound_request belong to the caller (free with kad_bytes_free). Peer ids are values.
 * Multiaddrs passed in are copied. */
#ifndef LP2P_KAD_ENGINE_H
#define LP2P_KAD_ENGINE_H
#include <stddef.h>
#include <stdint.h>

#include "lp2p/common.h"
#include "lp2p/multiaddr.h"
#include "lp2p/peerid.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KAD_PROTOCOL_ID "/ipfs/kad/1.0.0"

/* ------------------------------------------------------------------------------------------ */
/* Limits and defaults                                                                         */
#define KAD_K 20                          /* bucket size and replication factor */
#define KAD_ALPHA 3                       /* default requests in flight per query */
#define KAD_ALPHA_MAX 10
#define KAD_BETA 3                        /* closest peers that must answer before a lookup ends */
#define KAD_MSG_MAX (4u << 20)            /* largest message accepted (go/js: 4 MiB) */
#define KAD_MAX_PEERS_PER_MSG (20 * KAD_K) /* closer + provider entries accepted in one message */
#define KAD_MAX_ADDRS_PER_PEER 16         /* addresses kept per peer entry (extras dropped) */
#define KAD_MAX_ADDRS_PER_MSG 4096        /* addresses in a whole message (more: rejected) */
#define KAD_ANSWER_ADDRS 8                /* addresses per peer written in our answers */
#define KAD_MAX_KEY 1024                  /* longest key we accept (record keys, multihashes) */
#define KAD_MAX_PROVIDER_KEY 80           /* go: provider keys longer than this are refused */
#define KAD_REQUEST_TIMEOUT_MS 10000
#define KAD_QUERY_TIMEOUT_MS 60000
#define KAD_REFRESH_MS (10 * 60 * 1000)
#define KAD_RECORD_TTL_MS (48ull * 3600 * 1000)
#define KAD_PROVIDER_TTL_MS (48ull * 3600 * 1000)
#define KAD_REPUBLISH_MS (22ull * 3600 * 1000)
#define KAD_REPLACEMENTS 8                /* replacement cache per bucket */
#define KAD_BUCKETS 256

/* ------------------------------------------------------------------------------------------ */
/* Keyspace                                                                                    */
typedef struct kad_id {
  uint8_t b[32];                          /* SHA-256 of the key bytes */
} kad_id;

void kad_id_from_key(const uint8_t *key, size_t len, kad_id *out);
void kad_id_from_peer(const lp2p_peer_id *p, kad_id *out);
void kad_distance(const kad_id *a, const kad_id *b, kad_id *out); /* XOR */
/* <0, 0, >0 as distance(a, target) is smaller, equal, larger than distance(b, target). */
int kad_cmp_distance(const kad_id *a, const kad_id *b, const kad_id *target);
/* Common prefix length, 0..256 (256 = equal). The bucket index of b in a's table. */
int kad_cpl(const kad_id *a, const kad_id *b);

/* ------------------------------------------------------------------------------------------ */
/* Codec                                                                                       */
typedef enum kad_msg_type {
  KAD_PUT_VALUE = 0,
  KAD_GET_VALUE = 1,
  KAD_ADD_PROVIDER = 2,
  KAD_GET_PROVIDERS = 3,
  KAD_FIND_NODE = 4,
  KAD_PING = 5,
} kad_msg_type;

typedef enum kad_conn_type {
  KAD_NOT_CONNECTED = 0,
  KAD_CONNECTED = 1,
  KAD_CAN_CONNECT = 2,
  KAD_CANNOT_CONNECT = 3,
} kad_conn_type;

typedef struct kad_peer {
  lp2p_peer_id id;
  lp2p_multiaddr **addrs;                 /* naddrs valid multiaddrs */
  size_t naddrs;
  int connection;                         /* kad_conn_type */
} kad_peer;

typedef struct kad_msg {
  int type;                               /* kad_msg_type; a missing field decodes as PUT_VALUE */
  int32_t cluster_level;                  /* echoed; 0 = absent */
  const uint8_t *key;
  size_t key_len;
  int has_record;
  const uint8_t *rec_key, *rec_value;
  size_t rec_key_len, rec_value_len;
  const char *rec_time;                   /* RFC 3339 or NULL */
  kad_peer *closer;
  size_t ncloser;
  kad_peer *providers;
  size_t nproviders;
  size_t dropped;                         /* decode: peer entries or addresses dropped as malformed */
  void *priv_;                            /* decode: the unpacked protobuf (owns key/record bytes) */
} kad_msg;

/* Decodes one Message (no length prefix). Strict: len <= KAD_MSG_MAX (else LP2P_ERR_TOO_LARGE);
 * more than KAD_MAX_PEERS_PER_MSG peer entries or KAD_MAX_ADDRS_PER_MSG addresses: LP2P_ERR_LIMIT;
 * malformed protobuf, unknown message type, key or record key > KAD_MAX_KEY: LP2P_ERR_PROTO.
 * Peer entries whose id is not a valid peer id are dropped one by one, as are addresses that
 * are not valid multiaddrs and addresses beyond KAD_MAX_ADDRS_PER_PEER (counted in `dropped`).
 * On success *out owns its memory: release with kad_msg_clear. On failure *out is cleared. */
int kad_msg_decode(const lp2p_mem *mem, const uint8_t *buf, size_t len, kad_msg *out);
void kad_msg_clear(const lp2p_mem *mem, kad_msg *m);
/* Encodes m (fields as set; a zeroed kad_msg is an empty PUT_VALUE) into a new buffer from mem
 * (caller frees it through mem: kad_bytes_free with a NULL engine uses libc). */
int kad_msg_encode(const lp2p_mem *mem, const kad_msg *m, uint8_t **out, size_t *out_len);

/* ------------------------------------------------------------------------------------------ */
/* Engine configuration                                                                        */
typedef struct kad_engine kad_engine;

/* Fills buf with len random bytes. The only source of randomness of the engine. */
typedef void (*kad_rng_fn)(void *user, uint8_t *buf, size_t len);

/* Record validation for one namespace ("/ns/..."): return 0 if (key, value) is valid.
 * select: given n >= 1 valid values for the same key, return the index of the best one. */
typedef struct kad_validator {
  const char *ns;                         /* namespace without slashes, e.g. "v"; copied */
  int (*validate)(void *user, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);
  int (*select)(void *user, const uint8_t *key, size_t klen, const uint8_t *const *vals,
                const size_t *vlens, size_t n);  /* NULL: the first one */
  void *user;
} kad_validator;

/* Persistence hook: called synchronously when the stores change. event: 1 = record stored,
 * 2 = record removed (expired/evicted), 3 = provider added, 4 = provider removed. `value` is the
 * record value (events 1) or the provider peer id bytes (3, 4). Must not call into the engine. */
typedef void (*kad_persist_fn)(void *user, int event, const uint8_t *key, size_t klen, const uint8_t *value,
                               size_t vlen);

typedef struct kad_config {
  size_t struct_size;                     /* sizeof(kad_config) */
  int client_mode;                        /* 1: answers nothing (kad_on_inbound_request refuses) */
  unsigned alpha;                         /* 0 = KAD_ALPHA; capped at KAD_ALPHA_MAX */
  unsigned beta;                          /* 0 = KAD_BETA (FIND_NODE, GET_VALUE, GET_PROVIDERS) */
  unsigned disjoint_paths;                /* 0/1 = one path; d > 1 (<= KAD_ALPHA_MAX): S/Kademlia
                                             disjoint paths: the seeds are dealt out to d paths, a
                                             peer belongs to the path that heard of it first, each
                                             path keeps max(1, alpha / d) requests in flight and
                                             ends by the beta rule on its own; the query ends when
                                             every path has (js does this with d = alpha) */
  uint64_t request_timeout_ms;            /* 0 = KAD_REQUEST_TIMEOUT_MS */
  uint64_t query_timeout_ms;              /* 0 = KAD_QUERY_TIMEOUT_MS */
  uint64_t refresh_ms;                    /* 0 = KAD_REFRESH_MS; UINT64_MAX: never */
  unsigned max_per_ip_group_bucket;       /* 0 = 2 */
  unsigned max_per_ip_group_table;        /* 0 = 3 */
  int ip_diversity_all;                   /* 0: limits apply to public addresses only */
  size_t max_records;                     /* 0 = 1024 */
  size_t max_record_bytes;                /* 0 = 16 MiB (sum of key + value sizes) */
  size_t max_value_size;                  /* 0 = 64 KiB */
  size_t max_provider_keys;               /* 0 = 1024 */
  size_t max_providers_per_key;           /* 0 = 20 */
  const kad_validator *validators;        /* app namespaces ("pk" is built in) */
  size_t nvalidators;
  kad_persist_fn persist;
  void *persist_user;
} kad_config;

/* Creates an engine for `local`. cfg may be NULL (defaults). rng must not be NULL.
 * mem: NULL = libc. *out owned by the caller (kad_engine_free). */
int kad_engine_new(kad_engine **out, const kad_config *cfg, const lp2p_peer_id *local, kad_rng_fn rng,
                   void *rng_user, const lp2p_mem *mem);
/* Frees everything; queued actions and results are dropped, no callbacks. NULL: no-op. */
void kad_engine_free(kad_engine *e);
/* Frees bytes returned by kad_on_inbound_request (or kad_msg_encode when e is that engine). */
void kad_bytes_free(kad_engine *e, void *p);

/* Our own listen addresses, written into ADD_PROVIDER messages (copied). */
int kad_set_local_addrs(kad_engine *e, const lp2p_multiaddr *const *addrs, size_t n);
/* Switch server/client mode at runtime. */
void kad_set_client_mode(kad_engine *e, int client);

/* ------------------------------------------------------------------------------------------ */
/* Peer inputs                                                                                 */
/* Identify finished for `peer` (also from mDNS/bootstrap config: pass what is known).
 * serves_kad: its protocol list contains our kad protocol. A peer that serves kad becomes a
 * candidate: unless it already answered one of our requests, the engine sends it a check
 * (FIND_NODE for our own id); it enters the routing table once it answered (go's
 * check-before-add). serves_kad = 0 removes it from the table. addrs are copied (the addresses
 * the peer can be dialled at; at most KAD_MAX_ADDRS_PER_PEER kept). Returns 0, or LP2P_ERR_LIMIT
 * when 32 checks are already pending (the candidate is dropped; identify it again later). A
 * peer that answered one of our requests during the last 10 min enters without a new check.
 * A full bucket keeps checked candidates in a replacement cache (KAD_REPLACEMENTS) and checks
 * its least recently seen member (if not seen for 60 s); a member that fails a request is
 * replaced by the newest cached candidate (or dropped after 3 failures in a row). IP diversity:
 * at most cfg.max_per_ip_group_bucket / _table members per /24 (IPv4) or /48 (IPv6) group. */
int kad_on_peer_identified(kad_engine *e, const lp2p_peer_id *peer, const lp2p_multiaddr *const *addrs,
                           size_t naddrs, int serves_kad, lp2p_tstamp now);
void kad_on_peer_connected(kad_engine *e, const lp2p_peer_id *peer, lp2p_tstamp now);
void kad_on_peer_disconnected(kad_engine *e, const lp2p_peer_id *peer, lp2p_tstamp now);

/* Server side. `from` sent `req` (one Message). On 0, *resp / *resp_len is the answer to send
 * (the caller owns it: kad_bytes_free), or NULL / 0 when nothing is sent back (ADD_PROVIDER).
 * Errors: LP2P_ERR_UNSUPPORTED in client mode; LP2P_ERR_PROTO / _TOO_LARGE / _LIMIT for a
 * malformed message, a PUT_VALUE whose record is invalid, has no validator or whose key differs
 * from the message key: the caller resets the stream. from_scope is reserved (0). */
int kad_on_inbound_request(kad_engine *e, const lp2p_peer_id *from, int from_scope, const uint8_t *req,
                           size_t req_len, lp2p_tstamp now, uint8_t **resp, size_t *resp_len);

/* Client side: the answer to request `id`. err = 0 with the response bytes, or a negative
 * LP2P_ERR_* (bytes ignored). LP2P_ERR_NOT_FOUND if id is unknown (already timed out). */
int kad_on_response(kad_engine *e, uint64_t id, const uint8_t *bytes, size_t len, int err, lp2p_tstamp now);

/* Timers: requests and queries time out, buckets refresh, providers republish, stores expire.
 * Call at (or after) kad_next_deadline(). */
void kad_tick(kad_engine *e, lp2p_tstamp now);
/* Earliest time kad_tick has something to do (LP2P_TSTAMP_NEVER if nothing). */
lp2p_tstamp kad_next_deadline(const kad_engine *e);

/* ------------------------------------------------------------------------------------------ */
/* Queries                                                                                     */
typedef enum kad_query_kind {
  KAD_Q_FIND_NODE = 1,       /* key = peer id bytes; ends early when the peer is found */
  KAD_Q_GET_CLOSEST_PEERS,   /* key = any bytes; result: the k closest peers that answered */
  KAD_Q_GET_VALUE,           /* key = record key; quorum; the selector picks the best */
  KAD_Q_PUT_VALUE,           /* key = record key, value; stored on the k closest */
  KAD_Q_ADD_PROVIDER,        /* key = multihash; announces us (kad_set_local_addrs) */
  KAD_Q_GET_PROVIDERS,       /* key = multihash; ends early with max_providers found */
  KAD_Q_BOOTSTRAP,           /* self lookup, then a refresh of every bucket below it */
} kad_query_kind;

typedef struct kad_query_opts {
  size_t struct_size;
  const uint8_t *value;      /* PUT_VALUE */
  size_t value_len;
  unsigned quorum;           /* GET_VALUE: valid records to collect (0 = 1... stops early) */
  unsigned max_providers;    /* GET_PROVIDERS: 0 = KAD_K */
  uint64_t timeout_ms;       /* 0 = cfg.query_timeout_ms */
  unsigned beta;             /* closest peers that must answer before the lookup ends; 0 = KAD_K
                                for GET_CLOSEST_PEERS, PUT_VALUE, ADD_PROVIDER and bootstrap
                                (every one of the k closest), cfg.beta for the others */
} kad_query_opts;

typedef struct kad_query_stats {
  unsigned hops;             /* longest referral chain to a peer in the result (seeds = 1) */
  unsigned peers_contacted;  /* distinct peers we sent a request to */
  unsigned requests;         /* requests sent (incl. PUT/ADD_PROVIDER phase and corrections) */
  unsigned failures;         /* requests that failed or timed out */
  lp2p_tstamp duration_ms;
} kad_query_stats;

typedef struct kad_result {
  uint64_t query_id;
  int kind;                  /* kad_query_kind */
  int status;                /* 0, or LP2P_ERR_NOT_FOUND / _TIMEOUT / _CANCELED / ... */
  kad_query_stats stats;
  const kad_peer *peers;     /* closest peers that answered (closest first), or the found peer
                                (FIND_NODE: peers[0] when status 0), or providers (GET_PROVIDERS) */
  size_t npeers;
  const uint8_t *value;      /* GET_VALUE: the selected record value */
  size_t value_len;
  unsigned stored;           /* PUT_VALUE / ADD_PROVIDER: peers that accepted; GET_VALUE: valid
                                records received */
} kad_result;

int kad_query_start(kad_engine *e, kad_query_kind kind, const uint8_t *key, size_t key_len,
                    const kad_query_opts *opts, lp2p_tstamp now, uint64_t *id);
/* Cancels a running query: its result (LP2P_ERR_CANCELED) is queued. LP2P_ERR_NOT_FOUND if done. */
int kad_query_cancel(kad_engine *e, uint64_t id, lp2p_tstamp now);
/* Announce us as provider of key now and every KAD_REPUBLISH_MS (ADD_PROVIDER query). */
int kad_provide(kad_engine *e, const uint8_t *key, size_t key_len, lp2p_tstamp now, uint64_t *id);
int kad_bootstrap(kad_engine *e, lp2p_tstamp now, uint64_t *id);

/* ------------------------------------------------------------------------------------------ */
/* Outputs                                                                                     */
typedef struct kad_action {
  uint64_t id;               /* request id for kad_on_response */
  lp2p_peer_id peer;
  const lp2p_multiaddr *const *addrs; /* known addresses of peer (may be 0) */
  size_t naddrs;
  const uint8_t *msg;        /* the Message, without length prefix */
  size_t msg_len;
  int expect_response;       /* 0 for ADD_PROVIDER */
} kad_action;

/* 1 and *out filled if an action was queued, 0 if none. */
int kad_next_action(kad_engine *e, kad_action *out);
int kad_next_result(kad_engine *e, kad_result *out);

/* ------------------------------------------------------------------------------------------ */
/* Introspection (tests, node commands)                                                        */
size_t kad_table_size(const kad_engine *e);
int kad_table_contains(const kad_engine *e, const lp2p_peer_id *p);
/* Peers of bucket i (0..255), most recently seen last; returns how many were written. */
size_t kad_table_bucket(const kad_engine *e, int i, lp2p_peer_id *out, size_t cap);
size_t kad_replacements(const kad_engine *e, int i);
/* Candidate checks (kad_on_peer_identified) still waiting for their answer. */
size_t kad_pending_checks(const kad_engine *e);
size_t kad_record_count(const kad_engine *e);
size_t kad_provider_count(const kad_engine *e, const uint8_t *key, size_t klen);
/* Local record lookup (valid, unexpired). Pointer valid until the next engine call. */
int kad_record_get(kad_engine *e, const uint8_t *key, size_t klen, const uint8_t **val, size_t *vlen,
                   lp2p_tstamp now);
/* Store a record locally after validation (as an inbound PUT would). */
int kad_record_put(kad_engine *e, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                   lp2p_tstamp now);
/* Persistence: every unexpired record, most recently used first, with its age (ms since it was
 * stored). fn must not call into the engine. Returns how many. */
typedef void (*kad_record_fn)(void *ud, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                              lp2p_tstamp age_ms);
size_t kad_records_each(kad_engine *e, kad_record_fn fn, void *ud, lp2p_tstamp now);
/* Reload a saved record that is age_ms old (validated like kad_record_put; LP2P_ERR_NOT_FOUND if it
 * has expired meanwhile); it expires record TTL after it was first stored. */
int kad_record_restore(kad_engine *e, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                       lp2p_tstamp age_ms, lp2p_tstamp now);
/* Persistence of the provider store: every unexpired provider entry (key, provider id and the
 * addresses stored with it), most recently used keys first, with its age (ms since it was added).
 * fn must not call into the engine. Returns how many. */
typedef void (*kad_provider_fn)(void *ud, const uint8_t *key, size_t klen, const kad_peer *prov, lp2p_tstamp age_ms);
size_t kad_providers_each(kad_engine *e, kad_provider_fn fn, void *ud, lp2p_tstamp now);
/* Reload a saved provider entry that is age_ms old: checked like an inbound ADD_PROVIDER's entry
 * (key length, store limits) and LP2P_ERR_NOT_FOUND if it has expired meanwhile; it expires
 * provider TTL after it was first added. now must be >= age_ms (LP2P_ERR_INVAL otherwise). */
int kad_provider_restore(kad_engine *e, const uint8_t *key, size_t klen, const kad_peer *prov, lp2p_tstamp age_ms,
                         lp2p_tstamp now);
/* Add a provider locally (persistence reload, tests). */
int kad_provider_add(kad_engine *e, const uint8_t *key, size_t klen, const kad_peer *prov, lp2p_tstamp now);

/* Framing helpers: uvarint length prefix. */
size_t kad_frame_prefix(size_t len, uint8_t out[10]);
/* >0: header length with *msg_len; 0: need more bytes; LP2P_ERR_TOO_LARGE / _VARINT. */
int kad_frame_parse(const uint8_t *buf, size_t len, size_t *msg_len);

#ifdef __cplusplus
}
#endif
#endif
