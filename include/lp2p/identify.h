/* lp2p/identify.h - the libp2p identify protocols (/ipfs/id/1.0.0 and
 * /ipfs/id/push/1.0.0) as a swarm behaviour, written only against the public
 * swarm API (lp2p/swarm.h).
 *
 * Answering: an inbound /ipfs/id/1.0.0 stream gets ONE varint-length-prefixed
 * Identify message (<= 4096 bytes: the signed peer record, then listen
 * addresses, then protocols are dropped until it fits), then our write side
 * is closed. The message carries protocolVersion (default "ipfs/0.1.0"),
 * agentVersion (lp2p_swarm_agent_version), publicKey (our identity),
 * listenAddrs (lp2p_swarm_listen_addrs), observedAddr (the stream's remote
 * address), protocols (the swarm's registry) and, unless disabled, a signed
 * peer record (RFC 0003 envelope, domain "libp2p-peer-record", payload type
 * 0x0301, seq = wall-clock milliseconds, strictly increasing).
 *
 * Asking: on every CONN_ESTABLISHED the behaviour opens /ipfs/id/1.0.0 towards
 * the peer and reads messages until EOF (at most 10, each <= 8192 bytes,
 * merged with protobuf merge semantics), within timeout_ms. The result is
 * accepted only if publicKey is present and hashes to the connection's peer id,
 * and a signed peer record, when present, verifies and names the same peer
 * (else the identify fails with LP2P_ERR_KEY / LP2P_ERR_PEER_ID_MISMATCH /
 * LP2P_ERR_SIGNATURE).
 *
 * Peer store (lp2p/peerstore.h): an accepted identify or push stores the
 * listen addresses (and a verified record's addresses) with source
 * LP2P_ADDR_SRC_IDENTIFY and TTL LP2P_IDENTIFY_ADDR_TTL_MS (refreshed by every
 * identify; unspecified addresses and port 0 are refused by the store), the
 * protocols, agent version and public key, and marks the peer seen. Then, if
 * the (protocols, listen addresses, agent) differ from what was last announced
 * for the peer's current connection, the swarm event PEER_IDENTIFIED is raised
 * (deferred: after the identify's own on_event callback). The observedAddr of
 * our own request is reported to lp2p_swarm_observed_addr (external address
 * confirmation, see lp2p/swarm.h).
 * Limits: 256 protocols (each <= LP2P_PROTOCOL_ID_MAX bytes), 64 addresses,
 * versions <= 1024 bytes; entries beyond a limit are ignored, unparsable
 * addresses are skipped.
 *
 * Push: inbound /ipfs/id/push/1.0.0 is read the same way and merged into what
 * is known (fields that are present replace the old values; the publicKey, if
 * sent, must still match). When our listen addresses change
 * (LISTEN_ADDR_ADDED/REMOVED) or our protocol registry changes (checked every
 * push_check_ms while a peer is connected), a push is sent to every connected
 * peer whose identify listed the push protocol, debounced by push_check_ms.
 * lp2p_identify_push() pushes at once.
 *
 * What was learned is kept per connected peer (dropped at CONN_CLOSED) and is
 * reported through the on_event callback and lp2p_identify_peer_info().
 *
 * Threading: loop thread only (see lp2p/swarm.h). */
#ifndef LP2P_IDENTIFY_H
#define LP2P_IDENTIFY_H
#include "lp2p/swarm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_IDENTIFY_PROTOCOL_ID "/ipfs/id/1.0.0"
#define LP2P_IDENTIFY_PUSH_PROTOCOL_ID "/ipfs/id/push/1.0.0"
#define LP2P_IDENTIFY_PROTOCOL_VERSION "ipfs/0.1.0"
#define LP2P_IDENTIFY_BEHAVIOUR "identify"
#define LP2P_IDENTIFY_MAX_OWN_MESSAGE 4096  /* what we send */
#define LP2P_IDENTIFY_MAX_MESSAGE 8192      /* what we accept, per message */
#define LP2P_IDENTIFY_MAX_MESSAGES 10       /* per stream */
#define LP2P_IDENTIFY_MAX_PROTOCOLS 256
#define LP2P_IDENTIFY_MAX_ADDRS 64
#define LP2P_IDENTIFY_MAX_VERSION 1024
#define LP2P_IDENTIFY_ADDR_TTL_MS (24u * 60u * 60u * 1000u) /* peer-store TTL of identify addresses */

typedef struct lp2p_identify lp2p_identify;

/* What a peer told us. All pointers are owned by the behaviour and valid until
 * the peer's info changes (next identify/push) or it disconnects, and in any
 * case only until control returns to the loop: copy what you keep. */
typedef struct lp2p_identify_info {
  size_t struct_size;
  lp2p_peer_id peer;
  const lp2p_pubkey *public_key;               /* always set (required) */
  const char *protocol_version;                /* NULL if not sent */
  const char *agent_version;                   /* NULL if not sent */
  const char *const *protocols;                /* n_protocols entries */
  size_t n_protocols;
  const lp2p_multiaddr *const *listen_addrs;   /* n_listen_addrs entries, without /p2p */
  size_t n_listen_addrs;
  const lp2p_multiaddr *observed_addr;         /* how the peer sees us (/p2p stripped), NULL if not sent */
  int signed_record;                           /* 1: a signed peer record was received and verified */
  uint64_t record_seq;                         /* its seq (0 if none) */
} lp2p_identify_info;

typedef enum lp2p_identify_event_type {
  LP2P_IDENTIFY_EV_IDENTIFIED = 1,    /* info: result of our /ipfs/id/1.0.0 request */
  LP2P_IDENTIFY_EV_PUSH_RECEIVED = 2, /* info: state after merging a push */
  LP2P_IDENTIFY_EV_FAILED = 3,        /* err: why our request or a received push failed (a push cut
                                       * by its connection's end is dropped without an event) */
  LP2P_IDENTIFY_EV_PUSHED = 4         /* err 0: our push to peer completed; else why it failed */
} lp2p_identify_event_type;

typedef struct lp2p_identify_event {
  size_t struct_size;
  lp2p_identify_event_type type;
  const lp2p_peer_id *peer;
  int err;
  const lp2p_identify_info *info; /* IDENTIFIED / PUSH_RECEIVED, else NULL */
} lp2p_identify_event;

/* Event callback; the event and what it points to are valid during the call. */
typedef void (*lp2p_identify_event_fn)(lp2p_identify *id, const lp2p_identify_event *ev, void *ud);

typedef struct lp2p_identify_config {
  size_t struct_size;             /* sizeof(lp2p_identify_config); set by lp2p_identify_config_default */
  const char *protocol_version;   /* copied; default LP2P_IDENTIFY_PROTOCOL_VERSION */
  uint32_t timeout_ms;            /* whole exchange per stream; default 5000 */
  int push;                       /* 1 (default): serve and send identify push */
  int signed_peer_record;         /* 1 (default): include a signed peer record */
  int run_on_connect;             /* 1 (default): identify every new connection */
  uint32_t push_check_ms;         /* default 1000: registry check period and push debounce */
  lp2p_identify_event_fn on_event;/* optional */
  void *ud;                       /* borrowed, for on_event */
} lp2p_identify_config;

LP2P_EXTERN void lp2p_identify_config_default(lp2p_identify_config *cfg);

/* Adds the identify behaviour to sw. cfg may be NULL (defaults); it is copied.
 * *out (optional) receives the handle, owned by the swarm (freed by
 * lp2p_swarm_free; valid until then). Errors: LP2P_ERR_NOMEM,
 * LP2P_ERR_EXISTS (already added), swarm errors. */
LP2P_EXTERN int lp2p_identify_add(lp2p_swarm *sw, const lp2p_identify_config *cfg, lp2p_identify **out);

/* The behaviour added to sw, or NULL. */
LP2P_EXTERN lp2p_identify *lp2p_identify_get(const lp2p_swarm *sw);

/* What peer told us, or NULL if nothing (yet). See lp2p_identify_info for lifetime. */
LP2P_EXTERN const lp2p_identify_info *lp2p_identify_peer_info(const lp2p_identify *id, const lp2p_peer_id *peer);

/* Runs /ipfs/id/1.0.0 towards peer now (dialing via the peer store if
 * needed); the result arrives as an IDENTIFIED or FAILED event. A request
 * already running for peer is joined. Sync errors: LP2P_ERR_INVAL,
 * LP2P_ERR_NOMEM, LP2P_ERR_STATE. */
LP2P_EXTERN int lp2p_identify_request(lp2p_identify *id, const lp2p_peer_id *peer);

/* Pushes our current Identify to every connected peer that announced
 * /ipfs/id/push/1.0.0. Returns the number of pushes started (>= 0). */
LP2P_EXTERN int lp2p_identify_push(lp2p_identify *id);

/* Replaces the event callback (NULL removes it). */
LP2P_EXTERN void lp2p_identify_set_event_handler(lp2p_identify *id, lp2p_identify_event_fn fn, void *ud);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_IDENTIFY_H */
