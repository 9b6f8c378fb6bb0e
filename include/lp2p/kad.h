/* lp2p/kad.h - the Kademlia DHT (`/ipfs/kad/1.0.0`) as a swarm behaviour, written only against
 * the public swarm API (lp2p/swarm.h, lp2p/peerstore.h). Interoperable with go-libp2p-kad-dht,
 * js @libp2p/kad-dht and rust libp2p-kad.
 *
 * Wire: one request per outbound stream (a uvarint-length-prefixed protobuf `Message`, at most
 * 4 MiB), the answer read from the same stream, then the stream is closed; ADD_PROVIDER has no
 * answer. Inbound streams may carry several requests in a row (go and js reuse streams): each is
 * answered in order until the peer closes its side. Per request: 10 s (request_timeout_ms), after
 * which the stream is reset and the peer counts as failed. At most max_streams_per_peer inbound
 * kad streams per peer are served at once (extra ones are reset); outbound requests beyond
 * max_outbound_per_peer wait for a free slot.
 *
 * Routing table: k = 20 buckets over the SHA-256 keyspace. A peer enters only after identify
 * (PEER_IDENTIFIED) shows it serves our protocol AND it answered one request (check-before-add);
 * a full bucket keeps a replacement cache and checks its least recently seen member before
 * evicting it; IP diversity (at most 2 per bucket and 3 per table from one /24 or /48, public
 * addresses only unless ip_diversity_all); buckets refresh every 10 min and a self lookup runs
 * when the table holds fewer than 10 peers.
 *
 * Queries: iterative, alpha requests in flight (default 3, up to 10), they end when the beta
 * (default 3) closest peers have answered, per-query timeout (default 60 s); optional disjoint
 * paths. Every query ends with exactly ONE completion callback (also when cancelled:
 * LP2P_ERR_CANCELED, or when the swarm is freed: LP2P_ERR_CANCELED from inside lp2p_swarm_free),
 * never from inside the call that started it.
 *
 * Records: a value is accepted (stored locally, from PUT_VALUE, or returned by GET_VALUE) only if
 * a validator for its namespace (the first path segment of the key, "/pk/..." -> "pk") accepts it.
 * "/pk/" is built in: key = "/pk/" + peer id multihash bytes, value = the public key protobuf
 * that hashes to that peer id. Other namespaces need an app validator (config.validators);
 * records of namespaces without one are refused (LP2P_ERR_UNSUPPORTED locally, the inbound
 * stream is reset remotely). Records expire after 48 h; the store is bounded (max_records,
 * 16 MiB) with LRU eviction. Providers: ADD_PROVIDER is accepted only for the sender's own peer
 * id; 48 h expiry; lp2p_kad_provide republishes every 22 h while the behaviour lives.
 *
 * Modes: SERVER registers the protocol (so identify advertises it) and answers requests;
 * CLIENT does neither (it still queries); AUTO starts as client and becomes a server once the
 * swarm confirms an external address (EXTERNAL_ADDR_CONFIRMED), or at once when auto_lan_server
 * is set and a listen address exists (loopback/LAN deployments), and back when none remains.
 *
 * Peer routing: unless config.peer_router is 0, the behaviour installs itself as the swarm's
 * peer router (lp2p_swarm_set_peer_router): lp2p_swarm_open_stream() to a peer with no known
 * address runs a FIND_NODE for it and dials the addresses found. Addresses learned from the DHT
 * go into the peer store with source LP2P_ADDR_SRC_DHT and a 1 h TTL.
 *
 * Persistence: with config.data_dir set, the stored records are kept in <data_dir>/kad-records (one
 * line per record: when it was stored, key and value in hex), rewritten atomically (mode 0600) one
 * second after a change and when the swarm is freed, and reloaded at attach: each record validated
 * again and keeping its original 48 h expiry; malformed, expired or refused lines are skipped.
 * Provider entries are kept the same way in <data_dir>/kad-providers (one line per entry: when it
 * was added, key, provider peer id and its addresses, in hex), checked again at load (peer id,
 * addresses, key length, store limits) and keeping their original 48 h expiry. The directory must
 * exist.
 *
 * Threading: loop thread only (see lp2p/swarm.h). */
#ifndef LP2P_KAD_H
#define LP2P_KAD_H
#include "lp2p/swarm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_KAD_PROTOCOL_ID "/ipfs/kad/1.0.0"
/* Behaviour name (lp2p_swarm_behaviour(sw, LP2P_KAD_BEHAVIOUR) gives the lp2p_kad). */
#define LP2P_KAD_BEHAVIOUR "kad"
#define LP2P_KAD_MAX_MESSAGE (4u << 20)

typedef struct lp2p_kad lp2p_kad;

typedef enum lp2p_kad_mode {
  LP2P_KAD_MODE_SERVER = 0,
  LP2P_KAD_MODE_CLIENT = 1,
  LP2P_KAD_MODE_AUTO = 2
} lp2p_kad_mode;

/* Record validator for one namespace. validate: 0 if (key, value) is valid. select (optional):
 * given n >= 1 valid values for a key, the index of the best one (NULL: the first). Both are
 * called synchronously and must not call into the behaviour. */
typedef struct lp2p_kad_validator {
  const char *ns; /* namespace without slashes, e.g. "v" for keys "/v/..." (copied) */
  int (*validate)(void *ud, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);
  int (*select)(void *ud, const uint8_t *key, size_t klen, const uint8_t *const *vals, const size_t *vlens,
                size_t n);
  void *ud; /* borrowed while the behaviour lives */
} lp2p_kad_validator;

typedef struct lp2p_kad_config {
  size_t struct_size;            /* sizeof(lp2p_kad_config); set by lp2p_kad_config_default */
  lp2p_kad_mode mode;            /* default SERVER */
  const char *protocol_id;       /* copied; default LP2P_KAD_PROTOCOL_ID (private nets: "/myapp/kad/1.0.0") */
  unsigned alpha;                /* requests in flight per query; default 3, at most 10 */
  unsigned beta;                 /* closest peers that must answer; default 3 */
  unsigned disjoint_paths;       /* 0/1: one path; d > 1: S/Kademlia disjoint paths */
  uint32_t request_timeout_ms;   /* default 10000 */
  uint32_t query_timeout_ms;     /* default 60000 */
  uint32_t max_streams_per_peer; /* inbound kad streams served at once per peer; default 32 */
  uint32_t max_outbound_per_peer;/* outbound requests in flight per peer; default 8 (others wait) */
  int auto_lan_server;           /* AUTO: a listen address counts as reachable (LAN/loopback); default 0 */
  int ip_diversity_all;          /* apply IP diversity limits to private addresses too; default 0 */
  size_t max_records;            /* default 1024 */
  size_t max_provider_keys;      /* default 1024 */
  size_t max_providers_per_key;  /* default 20 */
  const lp2p_kad_validator *validators; /* app namespaces; copied ("pk" is built in) */
  size_t n_validators;
  int peer_router;               /* 1 (default): install as the swarm's peer router */
  const char *data_dir;          /* copied; NULL (default): records and providers live in memory only */
} lp2p_kad_config;

LP2P_EXTERN void lp2p_kad_config_default(lp2p_kad_config *cfg);

/* Adds the behaviour to sw (cfg may be NULL: defaults; copied). *out (optional) receives the
 * handle, owned by the swarm (freed by lp2p_swarm_free). Errors: LP2P_ERR_INVAL, LP2P_ERR_NOMEM,
 * LP2P_ERR_EXISTS (already added), swarm errors. */
LP2P_EXTERN int lp2p_kad_add(lp2p_swarm *sw, const lp2p_kad_config *cfg, lp2p_kad **out);
/* The behaviour added to sw, or NULL. */
LP2P_EXTERN lp2p_kad *lp2p_kad_get(const lp2p_swarm *sw);

/* Mode. set_mode may be called at any time; lp2p_kad_is_server tells the effective role. */
LP2P_EXTERN int lp2p_kad_set_mode(lp2p_kad *kad, lp2p_kad_mode mode);
LP2P_EXTERN int lp2p_kad_is_server(const lp2p_kad *kad);
LP2P_EXTERN const char *lp2p_kad_protocol(const lp2p_kad *kad);

/* A peer (and its addresses, copied into the peer store with source USER) becomes a routing-
 * table candidate: it is checked with one request (dialled if needed) and enters the table if
 * it answers. Use for bootstrap peers. 0, LP2P_ERR_INVAL, LP2P_ERR_LIMIT (too many checks
 * pending), peer-store errors. */
LP2P_EXTERN int lp2p_kad_add_address(lp2p_kad *kad, const lp2p_peer_id *peer, const lp2p_multiaddr *const *addrs,
                                     size_t n);
/* Same from text "<multiaddr>/p2p/<id>". */
LP2P_EXTERN int lp2p_kad_add_bootstrap(lp2p_kad *kad, const char *multiaddr);

/* ---------------------------------------------------------------------------------------------
 * Queries */
typedef enum lp2p_kad_query_kind {
  LP2P_KAD_Q_FIND_PEER = 1,
  LP2P_KAD_Q_GET_CLOSEST_PEERS = 2,
  LP2P_KAD_Q_GET_VALUE = 3,
  LP2P_KAD_Q_PUT_VALUE = 4,
  LP2P_KAD_Q_PROVIDE = 5,
  LP2P_KAD_Q_FIND_PROVIDERS = 6,
  LP2P_KAD_Q_BOOTSTRAP = 7
} lp2p_kad_query_kind;

typedef struct lp2p_kad_stats {
  unsigned hops;            /* longest referral chain to a peer in the result (seeds = 1) */
  unsigned peers_contacted; /* distinct peers a request was sent to */
  unsigned requests;        /* requests sent (incl. the PUT/ADD_PROVIDER phase) */
  unsigned failures;        /* requests that failed or timed out */
  uint64_t duration_ms;     /* swarm clock */
} lp2p_kad_stats;

typedef struct lp2p_kad_peer {
  lp2p_peer_id peer;
  const lp2p_multiaddr *const *addrs;
  size_t n_addrs;
} lp2p_kad_peer;

/* A query's result. Valid during the callback only: copy what you keep. */
typedef struct lp2p_kad_result {
  size_t struct_size;
  lp2p_kad_query_kind kind;
  uint64_t query_id;
  int err;                    /* 0, LP2P_ERR_NOT_FOUND, _TIMEOUT, _CANCELED, ... */
  lp2p_kad_stats stats;
  const lp2p_kad_peer *peers; /* FIND_PEER: the peer (1 entry, on success); GET_CLOSEST_PEERS /
                                 BOOTSTRAP: the closest peers that answered, closest first;
                                 FIND_PROVIDERS: the providers */
  size_t n_peers;
  const uint8_t *value;       /* GET_VALUE: the selected value */
  size_t value_len;
  unsigned stored;            /* PUT_VALUE / PROVIDE: peers that accepted it; GET_VALUE: valid
                                 records received (ours included) */
} lp2p_kad_result;

typedef void (*lp2p_kad_fn)(lp2p_kad *kad, const lp2p_kad_result *res, void *ud);

/* Each starts a query and returns 0 (cb will be called exactly once; *qid, optional, receives
 * its id for lp2p_kad_cancel) or a synchronous error (cb not called): LP2P_ERR_INVAL,
 * LP2P_ERR_NOMEM, LP2P_ERR_UNSUPPORTED (no validator for the key's namespace), LP2P_ERR_STATE
 * (provide: we have no address to announce), a validator's refusal (put_value). A query started
 * with an empty routing table ends with LP2P_ERR_NOT_FOUND. */
/* Self lookup and refresh of every bucket below it; when checks of bootstrap peers
 * (lp2p_kad_add_address) are still running it starts once they are done (at most 10 s later). */
LP2P_EXTERN int lp2p_kad_bootstrap(lp2p_kad *kad, lp2p_kad_fn cb, void *ud, uint64_t *qid);
/* The peer's addresses (FIND_NODE; ends early when a peer answers with it, or it is connected). */
LP2P_EXTERN int lp2p_kad_find_peer(lp2p_kad *kad, const lp2p_peer_id *peer, lp2p_kad_fn cb, void *ud,
                                   uint64_t *qid);
/* The k closest peers to key (any bytes). */
LP2P_EXTERN int lp2p_kad_get_closest_peers(lp2p_kad *kad, const uint8_t *key, size_t klen, lp2p_kad_fn cb,
                                           void *ud, uint64_t *qid);
/* Stores the record locally and on the k closest peers. */
LP2P_EXTERN int lp2p_kad_put_value(lp2p_kad *kad, const uint8_t *key, size_t klen, const uint8_t *val,
                                   size_t vlen, lp2p_kad_fn cb, void *ud, uint64_t *qid);
/* Looks the record up; quorum: valid records to collect before ending (0 = 1). */
LP2P_EXTERN int lp2p_kad_get_value(lp2p_kad *kad, const uint8_t *key, size_t klen, unsigned quorum,
                                   lp2p_kad_fn cb, void *ud, uint64_t *qid);
/* Announces us as a provider of key (a multihash, e.g. a CID's) to the k closest peers, and
 * again every 22 h. */
LP2P_EXTERN int lp2p_kad_provide(lp2p_kad *kad, const uint8_t *key, size_t klen, lp2p_kad_fn cb, void *ud,
                                 uint64_t *qid);
/* Providers of key; ends early once max (0 = 20) were found. */
LP2P_EXTERN int lp2p_kad_find_providers(lp2p_kad *kad, const uint8_t *key, size_t klen, unsigned max,
                                        lp2p_kad_fn cb, void *ud, uint64_t *qid);
/* Cancels a running query: its callback follows with LP2P_ERR_CANCELED (not from inside this
 * call). LP2P_ERR_NOT_FOUND if it already ended. */
LP2P_EXTERN int lp2p_kad_cancel(lp2p_kad *kad, uint64_t qid);

/* ---------------------------------------------------------------------------------------------
 * Introspection */
/* Routing-table members: copies up to max ids (closest buckets last), returns the total. */
LP2P_EXTERN size_t lp2p_kad_routing_table(const lp2p_kad *kad, lp2p_peer_id *out, size_t max);
/* Records and provider keys held locally. */
LP2P_EXTERN size_t lp2p_kad_record_count(const lp2p_kad *kad);
LP2P_EXTERN size_t lp2p_kad_provider_count(const lp2p_kad *kad, const uint8_t *key, size_t klen);
/* Inbound requests answered so far (diagnostics). */
LP2P_EXTERN uint64_t lp2p_kad_served(const lp2p_kad *kad);
/* A locally held valid record (copied into buf up to cap; returns its length) or LP2P_ERR_NOT_FOUND. */
LP2P_EXTERN int64_t lp2p_kad_local_value(lp2p_kad *kad, const uint8_t *key, size_t klen, uint8_t *buf, size_t cap);

/* Builds the "/pk/" record of a public key: key = "/pk/" + peer id multihash, value = the key
 * protobuf. Writes up to the caps; returns 0 or LP2P_ERR_BUFSIZE / LP2P_ERR_INVAL. */
LP2P_EXTERN int lp2p_kad_pk_record(const lp2p_pubkey *k, uint8_t *key, size_t kcap, size_t *klen, uint8_t *val,
                                   size_t vcap, size_t *vlen);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_KAD_H */
