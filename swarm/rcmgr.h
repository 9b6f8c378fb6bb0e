/* swarm/rcmgr.h - the resource manager: what the node holds because of its peers, charged to scopes.
 *
 * Scopes: node (one), peer (one per peer with a connection, shared by its connections), connection,
 * stream and protocol (one per negotiated protocol id, shared by its streams). Each scope counts
 * memory (bytes), streams (inbound / outbound) and connections (inbound / outbound) and may have a
 * limit for each (0 = unlimited). A charge is made to a chain of scopes at once (a stream's chain:
 * stream, protocol, connection, peer, node), all or nothing: lp2p__rc_reserve() refuses with
 * LP2P_ERR_LIMIT when any scope of the chain would go over its limit, and charges nothing then.
 * lp2p__rc_force() charges past the limits (bytes that are already held, e.g. what the muxer
 * accepted); the limits then refuse new reservations until enough is released. Every charge is
 * released exactly once with lp2p__rc_release() on the same chain; a release of more than a scope
 * holds is a bug: it is counted in rcmgr->underflows (asserted zero by the tests) and clamped.
 *
 * The accounting part (lp2p__rc_* on scopes, chains and the peer/protocol tables) is plain C without
 * libuv and is unit tested on its own (tests/unit/test_rcmgr.c); the swarm glue (lp2p__rcs_*) ties it
 * to connections and streams. Memory of the tables goes through the swarm's lp2p_mem. */
#ifndef LP2P_SWARM_RCMGR_H
#define LP2P_SWARM_RCMGR_H
#include "core/mem.h"
#include "lp2p/peerid.h"
#include "lp2p/swarm.h"

typedef struct lp2p__rc_scope {
  uint64_t mem, mem_limit;           /* bytes; limit 0 = unlimited */
  uint64_t mem_peak;                 /* highest mem since the scope was created */
  uint32_t st_in, st_out, st_limit;  /* streams; the limit applies to in + out */
  uint32_t cn_in, cn_out, cn_limit;  /* connections; the limit applies to in + out */
} lp2p__rc_scope;

#define LP2P__RC_CHAIN 5
typedef struct lp2p__rc_chain {
  lp2p__rc_scope *s[LP2P__RC_CHAIN];
  unsigned n;
} lp2p__rc_chain;

typedef struct lp2p__rc_peer {
  struct lp2p__rc_peer *next;
  lp2p_peer_id id;
  unsigned refs;
  lp2p__rc_scope sc;
} lp2p__rc_peer;

typedef struct lp2p__rc_proto {
  struct lp2p__rc_proto *next;
  char *id;
  unsigned refs;
  lp2p__rc_scope sc;
} lp2p__rc_proto;

typedef struct lp2p__rcmgr {
  lp2p_mem mem;
  lp2p__rc_scope node;
  lp2p__rc_scope peer_lim, conn_lim, stream_lim, proto_lim; /* limits of new scopes (counts unused) */
  lp2p__rc_peer *peers;
  lp2p__rc_proto *protos;
  size_t n_peers, n_protos;
  uint64_t underflows; /* releases of more than was charged (bugs) */
  uint64_t refused;    /* reservations refused */
} lp2p__rcmgr;

/* Limits from the swarm config (0 = unlimited). */
void lp2p__rc_init(lp2p__rcmgr *rc, const lp2p_swarm_config *cfg, const lp2p_mem *mem);
/* Frees the tables (whatever is still referenced: the swarm is going away). */
void lp2p__rc_free(lp2p__rcmgr *rc);

/* Scope of a new connection/stream: zero counts, the rcmgr's limits for that kind. */
void lp2p__rc_scope_init(lp2p__rc_scope *sc, const lp2p__rc_scope *lim);
/* 0 or LP2P_ERR_LIMIT (nothing charged). */
int lp2p__rc_reserve(lp2p__rcmgr *rc, const lp2p__rc_chain *ch, uint64_t n);
void lp2p__rc_force(const lp2p__rc_chain *ch, uint64_t n);
void lp2p__rc_release(lp2p__rcmgr *rc, const lp2p__rc_chain *ch, uint64_t n);
/* Bytes the chain could still reserve (UINT64_MAX when nothing is limited). */
uint64_t lp2p__rc_room(const lp2p__rc_chain *ch);
/* The same against each limit >> shift (e.g. 1: half of each limit). */
uint64_t lp2p__rc_room_frac(const lp2p__rc_chain *ch, unsigned shift);
/* One stream / connection more (0 or LP2P_ERR_LIMIT, nothing charged) or less. */
int lp2p__rc_stream_add(lp2p__rcmgr *rc, const lp2p__rc_chain *ch, int outbound);
void lp2p__rc_stream_del(lp2p__rcmgr *rc, const lp2p__rc_chain *ch, int outbound);
int lp2p__rc_conn_add(lp2p__rcmgr *rc, const lp2p__rc_chain *ch, int outbound);
void lp2p__rc_conn_del(lp2p__rcmgr *rc, const lp2p__rc_chain *ch, int outbound);

/* Peer / protocol scopes, reference counted: get adds a reference (creating the scope; NULL on
 * LP2P_ERR_NOMEM), put drops one (the scope is freed with its last reference; it must hold nothing
 * then, else that is counted as an underflow). */
lp2p__rc_peer *lp2p__rc_peer_get(lp2p__rcmgr *rc, const lp2p_peer_id *id);
void lp2p__rc_peer_put(lp2p__rcmgr *rc, lp2p__rc_peer *p);
lp2p__rc_proto *lp2p__rc_proto_get(lp2p__rcmgr *rc, const char *id);
void lp2p__rc_proto_put(lp2p__rcmgr *rc, lp2p__rc_proto *p);

/* Fixed charges: what a connection (pending handshake: connection state, Noise, multistream, partial
 * frame) and a stream (swarm + yamux stream state, multistream negotiation) hold at least. */
#define LP2P__RC_CONN_BASE (16u * 1024u)
#define LP2P__RC_STREAM_BASE 1024u

#endif
