/* protocols/gossipsub/engine/gossip_router.h - the sans-IO gossipsub v1.1 router core
 * (internal; the swarm behaviour will drive it).
 *
 * Inputs: peers added/removed (with their negotiated /meshsub version and whether we
 * dialed them), one decoded-from-the-wire RPC body from a peer, subscribe/unsubscribe/
 * publish from the application, and lp2p_gs_tick(now) (heartbeats every heartbeat_ms).
 * Outputs (lp2p_gs_poll): SEND events (one length-prefixed RPC for one peer, ready for
 * its outbound stream), DELIVER events (a validated message for a joined topic) and PX
 * events (peer ids offered by a PRUNE). No clock, socket or randomness of its own: time
 * comes in `now`, randomness from config.rng, so a run is reproducible.
 *
 * Implemented: subscriptions; mesh maintenance on heartbeat (D, D_lo, D_hi, outbound
 * quota D_out); GRAFT/PRUNE with backoff (GRAFT for a topic we have not joined is
 * ignored; GRAFT during backoff is answered with PRUNE); PRUNE peer exchange for v1.1
 * peers; fanout with TTL; flood publishing of own messages; forwarding to the mesh;
 * message cache (mcache_len windows, gossip over mcache_gossip) with IHAVE/IWANT (IHAVE
 * accepted at most max_ihave_msgs times per peer and heartbeat, at most max_ihave_len
 * ids asked per peer and heartbeat, IWANT retransmissions capped at gossip_retransmission
 * per message and peer); seen cache with TTL; StrictSign on every message; message ids
 * from from+seqno or config.msg_id; validation callback (accept/reject/ignore).
 * Peer scoring v1.1 (when score.enabled): P1 time in mesh, P2 first deliveries, P3 mesh
 * delivery deficit (after activation), P3b mesh failure penalty (deficit^2 on leaving the
 * mesh), P4 invalid messages (bad signature, REJECT), P5 app score callback, P6 peers
 * sharing an address key (lp2p_gs_set_peer_addr_key), P7 behaviour penalty (GRAFT in
 * backoff, broken IWANT promises); one parameter set for every topic; counters decay
 * every heartbeat. Thresholds: below gossip no IHAVE/IWANT either way, below publish no
 * flood publish, below graylist the peer's RPCs are dropped unread, PX accepted only from
 * peers at or above accept_px; negative peers leave the mesh and are not grafted.
 * Score counters of a peer that disconnects are retained (and decay) for retain_score_ms.
 * IDONTWANT (v1.2): a received message whose data is >= idontwant_threshold bytes (as
 * go-libp2p-pubsub) makes us send IDONTWANT with its id to the v1.2 peers we are about to
 * forward it to (the topic's mesh peers, not the sender, not the author, not those that said
 * IDONTWANT for it), as an RPC of its own per peer (the ids of every message of one received
 * RPC together) queued ahead of every other event that RPC caused and marked urgent (the
 * caller should send it ahead of RPCs already queued for the peer); ids received in IDONTWANT are kept per
 * peer for idontwant_ttl heartbeats (at most max_idontwant per peer and heartbeat, the rest
 * ignored; so at most max_idontwant * (idontwant_ttl + 1) per peer) and those messages are
 * not forwarded or published to that peer (IWANT answers are not affected). Ids are kept as
 * 64-bit hashes (a collision only withholds a message from the peer that sent the hash).
 * Held forwards (config.hold_forwards): forwards of a received message are not queued at once
 * but held until lp2p_gs_flush_forwards (the caller runs it one event-loop turn later) or the
 * next lp2p_gs_tick; a held forward to a peer is cancelled when that peer shows it has the
 * message meanwhile: it sends us a copy, an IDONTWANT or an IHAVE with its id, or an IWANT we
 * answer. Our own messages (publish) and IWANT answers are never held.
 * Not yet: per-topic parameters, opportunistic graft, async validation.
 *
 * Ownership: the router copies everything it keeps. Event pointers stay valid until the
 * next lp2p_gs_poll or lp2p_gs_free. config.key is borrowed and must outlive the router.
 * Errors: LP2P_ERR_NOMEM (the router stays consistent), LP2P_ERR_NOT_FOUND (unknown
 * peer), decoding errors of lp2p_gs_rpc_decode for a bad RPC (the caller decides whether
 * to drop the peer; nothing of that RPC was applied). */
#ifndef LP2P_GOSSIP_ROUTER_H
#define LP2P_GOSSIP_ROUTER_H
#include "gossip_rpc.h"

#define LP2P_GS_PROTO_V10 10 /* /meshsub/1.0.0 */
#define LP2P_GS_PROTO_V11 11 /* /meshsub/1.1.0 */
#define LP2P_GS_PROTO_V12 12 /* /meshsub/1.2.0 */

typedef enum lp2p_gs_verdict { LP2P_GS_ACCEPT = 0, LP2P_GS_REJECT = 1, LP2P_GS_IGNORE = 2 } lp2p_gs_verdict;

/* A message as the application sees it (pointers valid for the callback / event). */
typedef struct lp2p_gs_message {
  const uint8_t *from;  size_t from_len;  /* the author's peer id bytes */
  const uint8_t *data;  size_t data_len;
  const uint8_t *seqno; size_t seqno_len;
  const uint8_t *topic; size_t topic_len;
  const uint8_t *id;    size_t id_len;    /* empty inside msg_id */
} lp2p_gs_message;

typedef struct lp2p_gs_config {
  size_t struct_size;
  const lp2p_mem *mem;        /* NULL: libc */
  const lp2p_privkey *key;    /* required: signs own messages (StrictSign) */
  int (*rng)(void *ud, uint8_t *buf, size_t n); /* required */
  void *rng_ud;
  /* Message id; NULL: from || seqno. Returns the id length (<= cap) or < 0. */
  int (*msg_id)(void *ud, const lp2p_gs_message *m, uint8_t *out, size_t cap);
  void *msg_id_ud;
  /* Validation of messages from others; NULL accepts everything. */
  lp2p_gs_verdict (*validate)(void *ud, const lp2p_peer_id *src, const lp2p_gs_message *m);
  void *validate_ud;
  unsigned D, D_lo, D_hi, D_lazy, D_out;       /* 6, 4, 12, 6, 2 */
  uint64_t heartbeat_ms;                       /* 1000 */
  uint64_t fanout_ttl_ms;                      /* 60000 */
  uint64_t seen_ttl_ms;                        /* 120000 */
  uint64_t prune_backoff_ms;                   /* 60000 */
  unsigned mcache_len, mcache_gossip;          /* 5, 3 */
  unsigned gossip_factor_pct;                  /* 25 */
  unsigned max_ihave_len, max_ihave_msgs;      /* 5000, 10 */
  unsigned gossip_retransmission;              /* 3 */
  unsigned prune_peers;                        /* PX records per PRUNE: 16 */
  int flood_publish;                           /* 1 */
  lp2p_gs_limits limits;
  struct lp2p_gs_score_params {
    int enabled;
    double topic_weight;                                   /* 1 */
    double time_in_mesh_weight, time_in_mesh_cap;          /* 0.01, 3600 (quanta) */
    uint64_t time_in_mesh_quantum_ms;                      /* 1000 */
    double first_deliveries_weight, first_deliveries_decay, first_deliveries_cap; /* 1, .5, 100 */
    double mesh_deliveries_weight, mesh_deliveries_decay;  /* -1, .5 */
    double mesh_deliveries_threshold, mesh_deliveries_cap; /* 1, 100 */
    uint64_t mesh_deliveries_activation_ms, mesh_deliveries_window_ms; /* 5000, 10 */
    double mesh_failure_weight, mesh_failure_decay;        /* -1, .5 */
    double invalid_weight, invalid_decay;                  /* -10, .3 */
    double app_weight;                                     /* 1 */
    double (*app_score)(void *ud, const lp2p_peer_id *peer);
    void *app_score_ud;
    double ip_colocation_weight, ip_colocation_threshold;  /* -10, 1 */
    double behaviour_weight, behaviour_threshold, behaviour_decay; /* -10, 0, .9 */
    uint64_t iwant_followup_ms;                            /* 3000 */
    uint64_t retain_score_ms; /* 600000: a disconnected peer's counters are kept (decaying) this long */
    double decay_to_zero;                                  /* 0.01 */
    double gossip_threshold, publish_threshold, graylist_threshold, accept_px_threshold;
    /* -10, -50, -80, 10 */
  } score;
  /* v1.2 IDONTWANT (appended) */
  size_t idontwant_threshold;  /* 1024: Message protobuf bytes from which we send IDONTWANT; 0: never */
  unsigned max_idontwant;      /* 1000: ids accepted per peer and heartbeat */
  unsigned idontwant_ttl;      /* 3: heartbeats an id is remembered */
  int hold_forwards;           /* 0: forwards queued at once; 1: held (see above) */
} lp2p_gs_config;

void lp2p_gs_config_default(lp2p_gs_config *c);

typedef enum lp2p_gs_event_type {
  LP2P_GS_EV_SEND = 1,    /* peer, data/len: one varint-length-prefixed RPC */
  LP2P_GS_EV_DELIVER = 2, /* msg: a validated message of a joined topic (never our own) */
  LP2P_GS_EV_PX = 3,      /* peer: offered by a PRUNE from `src` */
} lp2p_gs_event_type;

typedef struct lp2p_gs_event {
  lp2p_gs_event_type type;
  lp2p_peer_id peer;
  lp2p_peer_id src;
  const uint8_t *data;
  size_t len;
  lp2p_gs_message msg;
  int urgent; /* SEND: an IDONTWANT RPC, to be written ahead of RPCs queued for the peer */
} lp2p_gs_event;

typedef struct lp2p_gs lp2p_gs;

int lp2p_gs_new(lp2p_gs **out, const lp2p_gs_config *c, lp2p_tstamp now);
void lp2p_gs_free(lp2p_gs *g);

/* A peer whose /meshsub stream is up. We send it our subscriptions. LP2P_ERR_EXISTS. */
int lp2p_gs_add_peer(lp2p_gs *g, const lp2p_peer_id *id, int proto, int outbound, lp2p_tstamp now);
int lp2p_gs_remove_peer(lp2p_gs *g, const lp2p_peer_id *id, lp2p_tstamp now);
/* Join / leave a topic (announced to every peer; GRAFT/PRUNE follow). */
int lp2p_gs_subscribe(lp2p_gs *g, const uint8_t *topic, size_t tlen, lp2p_tstamp now);
int lp2p_gs_unsubscribe(lp2p_gs *g, const uint8_t *topic, size_t tlen, lp2p_tstamp now);
/* Signs and sends a message (flood publish, else mesh or fanout). The id in *id_out
 * (cap bytes) when non-NULL. Returns the id length. */
int lp2p_gs_publish(lp2p_gs *g, const uint8_t *topic, size_t tlen, const uint8_t *data, size_t len,
                    lp2p_tstamp now, uint8_t *id_out, size_t cap);
/* One RPC body (without its length prefix) received from a peer. */
int lp2p_gs_handle_rpc(lp2p_gs *g, const lp2p_peer_id *from, const uint8_t *rpc, size_t len, lp2p_tstamp now);
/* Runs the heartbeats due at `now` (held forwards are sent first). */
int lp2p_gs_tick(lp2p_gs *g, lp2p_tstamp now);
/* hold_forwards: sends every held forward that was not cancelled (SEND events); the number of
 * forwards held now (0: nothing to flush). */
int lp2p_gs_flush_forwards(lp2p_gs *g, lp2p_tstamp now);
size_t lp2p_gs_held_forwards(const lp2p_gs *g);
lp2p_tstamp lp2p_gs_next_deadline(const lp2p_gs *g);
/* Next event: 1 (filled), 0 (none). */
int lp2p_gs_poll(lp2p_gs *g, lp2p_gs_event *ev);

/* Peers with equal non-zero keys (e.g. a hash of the remote IP) count as colocated (P6). */
int lp2p_gs_set_peer_addr_key(lp2p_gs *g, const lp2p_peer_id *id, uint64_t key);
/* The peer's current score (0 when scoring is off); LP2P_ERR_NOT_FOUND. */
int lp2p_gs_peer_score(lp2p_gs *g, const lp2p_peer_id *id, lp2p_tstamp now, double *out);

/* Introspection for tests and the behaviour. */
size_t lp2p_gs_mesh_size(const lp2p_gs *g, const uint8_t *topic, size_t tlen);
int lp2p_gs_in_mesh(const lp2p_gs *g, const uint8_t *topic, size_t tlen, const lp2p_peer_id *id);
/* Listings: up to max ids into out, returns the total. Peers that announced the topic; our mesh
 * of the topic; every peer. */
size_t lp2p_gs_topic_peers(const lp2p_gs *g, const uint8_t *topic, size_t tlen, lp2p_peer_id *out, size_t max);
size_t lp2p_gs_mesh_peers(const lp2p_gs *g, const uint8_t *topic, size_t tlen, lp2p_peer_id *out, size_t max);
size_t lp2p_gs_peers(const lp2p_gs *g, lp2p_peer_id *out, size_t max);
int lp2p_gs_has_peer(const lp2p_gs *g, const lp2p_peer_id *id);
typedef struct lp2p_gs_stats {
  uint64_t delivered, duplicates, rejected, ignored, invalid_sig, iwant_sent, ihave_sent,
      graft_sent, prune_sent, forwarded, graylisted, broken_promises;
  uint64_t idontwant_sent;     /* IDONTWANT ids sent */
  uint64_t idontwant_recv;     /* IDONTWANT ids remembered */
  uint64_t idontwant_dropped;  /* IDONTWANT ids over the per-peer limit, or malformed */
  uint64_t idontwant_skipped;  /* sends withheld because the peer said IDONTWANT */
  uint64_t fwd_held;           /* forwards held (hold_forwards) */
  uint64_t fwd_cancelled;      /* held forwards cancelled: the peer had the message meanwhile */
} lp2p_gs_stats;
void lp2p_gs_get_stats(const lp2p_gs *g, lp2p_gs_stats *s);

#endif
