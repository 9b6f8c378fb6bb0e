/* lp2p/pubsub.h - gossipsub v1.1 publish/subscribe as a swarm behaviour,
 * written only against the public swarm API (lp2p/swarm.h).
 *
 * Wire (libp2p/specs pubsub/README.md, pubsub/gossipsub/gossipsub-v1.0.md and
 * -v1.1.md, -v1.2.md): protocols /meshsub/1.2.0, /meshsub/1.1.0 and /meshsub/1.0.0
 * (all registered; our outbound stream proposes 1.2.0 first; with 1.2.0 peers IDONTWANT
 * is sent for received messages of >= 1 KiB and honoured, see gossip_router.h). Every peer with a connection gets ONE
 * long-lived outbound stream from us (opened when the connection is established,
 * or when identify reports a /meshsub protocol, or when the peer's first inbound
 * stream arrives); the peer opens its own stream towards us. On each stream flow
 * unsigned-varint length-prefixed RPC protobufs; an RPC larger than
 * max_rpc_size resets the inbound stream, one that fails to decode (or exceeds
 * the per-RPC limits: subscriptions, messages, control entries, ids) is dropped.
 * A second inbound stream from a peer replaces (resets) the first.
 *
 * Router: the sans-IO core in protocols/gossipsub/engine/ (mesh with D / D_lo /
 * D_hi / D_lazy / D_out, fanout with TTL, message cache and IHAVE/IWANT gossip,
 * seen cache, PRUNE backoff with peer exchange, flood publishing, adaptive gossip,
 * peer scoring P1-P7 with gossip / publish / graylist thresholds, spam limits:
 * GRAFT for unknown topics ignored, IHAVE per heartbeat capped, IWANT
 * retransmissions capped, broken IWANT promises penalised). The heartbeat runs
 * on a swarm timer (lp2p_timer, so it follows a manual clock in tests).
 *
 * Messages: StrictSign. Own messages are signed with the swarm identity over
 * "libp2p-pubsub:" || Message{from, data, seqno, topic}; every received message
 * must carry from, seqno and a valid signature (else it counts as invalid for
 * the sender's score and is dropped). Message id: from || seqno (go / js
 * default), or config.msg_id (e.g. a content hash). A received message is passed
 * to config.validate (accept / reject / ignore) before it is delivered to the
 * topic's callback and forwarded; reject counts as invalid for the forwarding
 * peer's score. A message is delivered at most once per seen-TTL (seen cache);
 * our own messages are never delivered back to us.
 *
 * Scoring (config.scoring, default on): the router's defaults (P1 time in mesh,
 * P2 first deliveries, P4 invalid messages, P6 IP colocation for public
 * addresses only, P7 behaviour penalty), with the mesh-delivery terms P3/P3b
 * off (weight 0) because they need per-topic traffic knowledge; thresholds
 * gossip -10, publish -50, graylist -80, accept PX 10 unless configured. Peers
 * below 0 leave and are not grafted into the mesh; below graylist their RPCs
 * are ignored.
 *
 * Threading: loop thread only (lp2p/swarm.h). Reentrancy: message callbacks may
 * call any function of this header; config.validate and config.msg_id run inside
 * the router and must not (such calls return LP2P_ERR_STATE).
 * Errors: negative LP2P_ERR_* (lp2p/common.h). */
#ifndef LP2P_PUBSUB_H
#define LP2P_PUBSUB_H
#include "lp2p/swarm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* v1.2 adds IDONTWANT; offered first, 1.1.0 and 1.0.0 still served. */
#define LP2P_PUBSUB_PROTOCOL_V12 "/meshsub/1.2.0"
#define LP2P_PUBSUB_PROTOCOL_V11 "/meshsub/1.1.0"
#define LP2P_PUBSUB_PROTOCOL_V10 "/meshsub/1.0.0"
/* Behaviour name: lp2p_swarm_behaviour(sw, LP2P_PUBSUB_BEHAVIOUR) gives the lp2p_pubsub. */
#define LP2P_PUBSUB_BEHAVIOUR "gossipsub"
/* Longest message id (bytes). */
#define LP2P_PUBSUB_MAX_ID 256
/* Longest topic (bytes, without the NUL). */
#define LP2P_PUBSUB_MAX_TOPIC 256

typedef struct lp2p_pubsub lp2p_pubsub;

typedef enum lp2p_pubsub_verdict {
  LP2P_PUBSUB_ACCEPT = 0, /* deliver and forward */
  LP2P_PUBSUB_REJECT = 1, /* drop; penalise the peer that sent it (P4) */
  LP2P_PUBSUB_IGNORE = 2  /* drop silently */
} lp2p_pubsub_verdict;

/* A message as the application sees it. Everything is valid during the call only. */
typedef struct lp2p_pubsub_message {
  size_t struct_size;
  const char *topic;                  /* NUL-terminated */
  const lp2p_peer_id *from;           /* the author (signer) */
  const lp2p_peer_id *received_from;  /* the peer that forwarded it to us (NULL in msg_id) */
  const uint8_t *data;
  size_t data_len;
  const uint8_t *seqno;
  size_t seqno_len;
  const uint8_t *id; /* the message id (NULL / 0 inside msg_id) */
  size_t id_len;
} lp2p_pubsub_message;

typedef struct lp2p_pubsub_config {
  size_t struct_size;                 /* sizeof(lp2p_pubsub_config); set by lp2p_pubsub_config_default */
  unsigned D, D_lo, D_hi, D_lazy, D_out; /* 6, 4, 12, 6, 2 */
  uint32_t heartbeat_ms;              /* 1000 */
  uint32_t fanout_ttl_ms;             /* 60000 */
  uint32_t seen_ttl_ms;               /* 120000 */
  uint32_t prune_backoff_ms;          /* 60000 */
  unsigned mcache_len, mcache_gossip; /* 5, 3 */
  unsigned gossip_factor_pct;         /* 25 (adaptive gossip: max(D_lazy, 25% of candidates)) */
  int flood_publish;                  /* 1: own messages go to every topic peer above publish_threshold */
  size_t max_rpc_size;                /* 1 MiB: largest RPC accepted or sent */
  size_t max_queue_per_peer;          /* 8 MiB: RPC bytes queued for a slow peer; beyond, RPCs are dropped */
  int px_dial;                        /* 1: dial peers offered by PRUNE peer exchange (known addresses only) */
  int scoring;                        /* 1: peer scoring on */
  double gossip_threshold, publish_threshold, graylist_threshold, accept_px_threshold; /* -10 -50 -80 10 */
  double invalid_weight;              /* P4 weight, -10 (score += weight * invalid^2) */
  double behaviour_weight;            /* P7 weight, -10 (broken promises, GRAFT in backoff) */
  /* Optional app-specific score (P5, weight 1). */
  double (*app_score)(void *ud, const lp2p_peer_id *peer);
  /* Optional message id: writes at most cap bytes to out, returns the length (> 0) or < 0 to drop
   * the message. NULL: from || seqno. */
  int (*msg_id)(void *ud, const lp2p_pubsub_message *m, uint8_t *out, size_t cap);
  /* Optional validation of received messages (own messages are not validated). NULL: accept. */
  lp2p_pubsub_verdict (*validate)(void *ud, const lp2p_pubsub_message *m);
  void *ud; /* for app_score, msg_id and validate; borrowed */
} lp2p_pubsub_config;

LP2P_EXTERN void lp2p_pubsub_config_default(lp2p_pubsub_config *cfg);

/* Adds the gossipsub behaviour to sw. cfg may be NULL (defaults); it is copied. *out
 * (optional) receives the handle, owned by the swarm (valid until lp2p_swarm_free).
 * Errors: LP2P_ERR_INVAL (bad parameters: D_lo <= D <= D_hi, mcache_gossip <= mcache_len,
 * heartbeat_ms > 0), LP2P_ERR_NOMEM, LP2P_ERR_EXISTS (already added), swarm errors. */
LP2P_EXTERN int lp2p_pubsub_add(lp2p_swarm *sw, const lp2p_pubsub_config *cfg, lp2p_pubsub **out);
/* The behaviour of sw, or NULL. */
LP2P_EXTERN lp2p_pubsub *lp2p_pubsub_get(const lp2p_swarm *sw);

/* Message callback of a topic: every validated message of the topic, once. */
typedef void (*lp2p_pubsub_message_fn)(lp2p_pubsub *ps, const lp2p_pubsub_message *m, void *ud);

/* Joins topic (1..LP2P_PUBSUB_MAX_TOPIC bytes, copied): announces it to every peer, and the
 * mesh forms on the next heartbeats. cb (optional) and ud (borrowed) receive its messages; a
 * second subscribe to the same topic replaces them. LP2P_ERR_INVAL, LP2P_ERR_NOMEM,
 * LP2P_ERR_STATE (from inside validate/msg_id). */
LP2P_EXTERN int lp2p_pubsub_subscribe(lp2p_pubsub *ps, const char *topic, lp2p_pubsub_message_fn cb, void *ud);
/* Leaves topic (PRUNE to the mesh, unsubscription announced). 0 also when not joined. */
LP2P_EXTERN int lp2p_pubsub_unsubscribe(lp2p_pubsub *ps, const char *topic);
/* 1 if joined. */
LP2P_EXTERN int lp2p_pubsub_subscribed(const lp2p_pubsub *ps, const char *topic);

/* Signs and sends data to topic (joined or not). The message id is written to id_out (up to
 * id_cap bytes) when non-NULL; *n_peers (optional) receives the number of peers it was sent
 * to (0 is not an error: nobody to send to yet). Returns the id length (> 0) or
 * LP2P_ERR_INVAL, LP2P_ERR_TOO_LARGE (message beyond max_rpc_size), LP2P_ERR_NOMEM,
 * LP2P_ERR_STATE. */
LP2P_EXTERN int lp2p_pubsub_publish(lp2p_pubsub *ps, const char *topic, const uint8_t *data, size_t len,
                                    uint8_t *id_out, size_t id_cap, size_t *n_peers);

/* Peers (with a pubsub stream) that announced topic: up to max ids, returns the total. */
LP2P_EXTERN size_t lp2p_pubsub_topic_peers(const lp2p_pubsub *ps, const char *topic, lp2p_peer_id *out,
                                           size_t max);
/* Our mesh peers of a joined topic: up to max ids, returns the total. */
LP2P_EXTERN size_t lp2p_pubsub_mesh_peers(const lp2p_pubsub *ps, const char *topic, lp2p_peer_id *out,
                                          size_t max);
/* Every peer the router knows (pubsub stream up): up to max ids, returns the total. */
LP2P_EXTERN size_t lp2p_pubsub_peers(const lp2p_pubsub *ps, lp2p_peer_id *out, size_t max);
/* A peer's current score (0 with scoring off). LP2P_ERR_NOT_FOUND. */
LP2P_EXTERN int lp2p_pubsub_peer_score(const lp2p_pubsub *ps, const lp2p_peer_id *peer, double *out);

typedef struct lp2p_pubsub_stats {
  uint64_t delivered;        /* messages given to the application */
  uint64_t duplicates;       /* received again (already seen) */
  uint64_t rejected;         /* validation REJECT (or bad id) */
  uint64_t ignored;          /* validation IGNORE */
  uint64_t invalid_sig;      /* missing or bad signature */
  uint64_t graylisted;       /* RPCs ignored from graylisted peers */
  uint64_t broken_promises;  /* IWANTs never answered */
  uint64_t rpc_in, rpc_out;  /* RPCs received / sent */
  uint64_t rpc_errors;       /* RPCs that failed to decode or broke a limit */
  uint64_t rpc_dropped;      /* RPCs not sent: the peer's queue was full */
  uint64_t published;        /* own messages */
} lp2p_pubsub_stats;
/* Counters since lp2p_pubsub_add. */
LP2P_EXTERN void lp2p_pubsub_get_stats(const lp2p_pubsub *ps, lp2p_pubsub_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_PUBSUB_H */
