/* lp2p/peerstore.h - what the node knows about other peers.
 *
 * Every swarm owns ONE peer store (lp2p_swarm_peerstore). Per peer it keeps:
 *   - addresses, each with its source (lp2p_addr_source: user, dialed,
 *     identify, mDNS, DHT, other), its scope (lp2p_ma_scope: loopback,
 *     link-local, private, public) and an expiry (a TTL, or permanent);
 *   - the protocols the peer speaks, its agent version and public key (filled
 *     by identify), when it was last seen (connected / identified) and its
 *     latest ping round-trip time.
 * Dialing and lp2p_swarm_open_stream take the addresses to dial from here.
 *
 * Which addresses are stored: only ones that could work for a dialer
 * (lp2p_multiaddr_is_dialable): never 0.0.0.0, ::, port 0. Loopback and LAN
 * addresses are kept, with their scope, so that a caller answering someone
 * else (a DHT node, an mDNS responder) filters by scope
 * (lp2p_peerstore_addrs' scope_mask) and never hands out a LAN address to the
 * Internet or vice versa.
 *
 * Expiry: ttl_ms 0 = permanent; else the address expires at
 * lp2p_swarm_now() + ttl_ms. Adding an address that is already known keeps
 * one entry: the longer expiry wins, and the source becomes the new one when
 * it is "stronger" (USER/DIALED > IDENTIFY > discovery). Expired addresses are
 * not returned and are removed by a sweep that runs when the earliest expiry
 * is due. When a peer's last address from a discovery source (>= MDNS)
 * expires or is removed (also by eviction, or with the whole peer),
 * PEER_EXPIRED(peer, source) is raised; when a discovery source adds an
 * address the store did not have (or had expired), PEER_DISCOVERED(peer, those
 * addrs, source). Both are swarm events delivered after the current callback
 * (deferred, see lp2p_swarm_emit). Note: the address a connection succeeds on
 * becomes source DIALED and permanent (the old address book's behaviour), so a
 * dialed discovery address no longer expires nor counts as "discovery".
 *
 * Limits: at most cfg.max_address_book_peers peers (0 = unlimited) and
 * cfg.max_addrs_per_peer addresses per peer. Adding beyond a limit evicts the
 * least useful: for addresses, an expired one, else discovery-sourced before
 * identify before dialed/user, the oldest first; for peers, never one that is
 * connected or being dialed or has streams waiting or keep-alive holds; among
 * the others expired (no address left) first, then unidentified (no
 * protocols) first, then the one seen least recently. A peer that cannot be
 * stored (every entry busy) makes the add fail with LP2P_ERR_LIMIT.
 *
 * Persistence: lp2p_peerstore_set_persist() installs an app vtable. load() is
 * called once, from inside set_persist, with the store: it re-adds what was
 * saved (lp2p_peerstore_add_addrs & co.; nothing is saved back meanwhile).
 * After a change to a peer's addresses, protocols, agent or key, save() gets
 * a snapshot of that peer (addresses worth keeping only: permanent ones and
 * those still valid for at least LP2P_PEERSTORE_PERSIST_MIN_TTL_MS); changes
 * are batched and saved after the current callback. remove() is called when
 * a peer leaves the store (removed or evicted).
 *
 * Ownership: the store belongs to the swarm (freed by lp2p_swarm_free); every
 * pointer it returns stays valid until the next change of the store or the
 * end of the current callback, whichever comes first: copy what you keep.
 * Threading: loop thread only (like the swarm). */
#ifndef LP2P_PEERSTORE_H
#define LP2P_PEERSTORE_H
#include "lp2p/swarm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lp2p_peerstore lp2p_peerstore;

/* Addresses with less than this left to live are not saved by persistence. */
#define LP2P_PEERSTORE_PERSIST_MIN_TTL_MS (10u * 60u * 1000u)
/* Longest agent version kept (longer ones are truncated). */
#define LP2P_PEERSTORE_MAX_AGENT 256
/* Protocols kept per peer (the rest is ignored). */
#define LP2P_PEERSTORE_MAX_PROTOCOLS 256

/* The swarm's peer store (never NULL for a valid swarm; owned by it). */
LP2P_EXTERN lp2p_peerstore *lp2p_swarm_peerstore(lp2p_swarm *sw);

/* One stored address. */
typedef struct lp2p_peer_addr {
  const lp2p_multiaddr *addr; /* without /p2p */
  lp2p_addr_source source;
  lp2p_ma_scope scope;
  lp2p_tstamp expires; /* swarm time (lp2p_swarm_now) it expires at; LP2P_TSTAMP_NEVER = permanent */
} lp2p_peer_addr;

/* Adds addresses for peer (copied; a /p2p suffix is stripped and must match
 * peer). ttl_ms 0 = permanent. Undialable addresses are skipped. Returns the
 * number of addresses stored or refreshed (>= 0), or LP2P_ERR_INVAL (bad
 * arguments, our own id, or nothing storable), LP2P_ERR_PEER_ID_MISMATCH,
 * LP2P_ERR_LIMIT, LP2P_ERR_NOMEM. */
LP2P_EXTERN int lp2p_peerstore_add_addrs(lp2p_peerstore *ps, const lp2p_peer_id *peer,
                                         const lp2p_multiaddr *const *addrs, size_t n, lp2p_addr_source source,
                                         uint64_t ttl_ms);
/* Removes one address (LP2P_ERR_NOT_FOUND if not stored). */
LP2P_EXTERN int lp2p_peerstore_remove_addr(lp2p_peerstore *ps, const lp2p_peer_id *peer, const lp2p_multiaddr *ma);
/* Forgets everything about peer (connections are not touched). LP2P_ERR_NOT_FOUND. */
LP2P_EXTERN int lp2p_peerstore_remove_peer(lp2p_peerstore *ps, const lp2p_peer_id *peer);

/* Known peers: copies up to max ids into out, returns the total count. */
LP2P_EXTERN size_t lp2p_peerstore_peers(const lp2p_peerstore *ps, lp2p_peer_id *out, size_t max);
/* Unexpired addresses of peer whose scope is in scope_mask (LP2P_MA_SCOPE_ANY
 * for all; LP2P_MA_SCOPE_PUBLIC for "Internet only", LP2P_MA_SCOPE_LAN, ...):
 * writes up to max entries, returns the total count. */
LP2P_EXTERN size_t lp2p_peerstore_addrs(const lp2p_peerstore *ps, const lp2p_peer_id *peer, unsigned scope_mask,
                                        lp2p_peer_addr *out, size_t max);

/* Protocols: replaces the list (copied; at most LP2P_PEERSTORE_MAX_PROTOCOLS). */
LP2P_EXTERN int lp2p_peerstore_set_protocols(lp2p_peerstore *ps, const lp2p_peer_id *peer,
                                             const char *const *protocols, size_t n);
LP2P_EXTERN size_t lp2p_peerstore_protocols(const lp2p_peerstore *ps, const lp2p_peer_id *peer, const char **out,
                                            size_t max);
/* 1 if peer is known to speak protocol, 0 if not or unknown. */
LP2P_EXTERN int lp2p_peerstore_supports(const lp2p_peerstore *ps, const lp2p_peer_id *peer, const char *protocol);

/* Agent version (copied; NULL clears). Getter: NULL if unknown. */
LP2P_EXTERN int lp2p_peerstore_set_agent(lp2p_peerstore *ps, const lp2p_peer_id *peer, const char *agent);
LP2P_EXTERN const char *lp2p_peerstore_agent(const lp2p_peerstore *ps, const lp2p_peer_id *peer);
/* Public key: set copies it (it must match peer: LP2P_ERR_PEER_ID_MISMATCH);
 * get writes a NEW key the caller frees (lp2p_pubkey_free), or
 * LP2P_ERR_NOT_FOUND. */
LP2P_EXTERN int lp2p_peerstore_set_pubkey(lp2p_peerstore *ps, const lp2p_peer_id *peer, const lp2p_pubkey *key);
LP2P_EXTERN int lp2p_peerstore_pubkey(const lp2p_peerstore *ps, const lp2p_peer_id *peer, lp2p_pubkey **out);
/* Last time (swarm time) the peer connected, was identified or pinged; 0 = never. */
LP2P_EXTERN lp2p_tstamp lp2p_peerstore_last_seen(const lp2p_peerstore *ps, const lp2p_peer_id *peer);
/* Marks a KNOWN peer seen now (behaviours: after an exchange with it). No-op for an unknown peer. */
LP2P_EXTERN void lp2p_peerstore_mark_seen(lp2p_peerstore *ps, const lp2p_peer_id *peer);
/* Latest ping round trip (ping fills it); LP2P_ERR_NOT_FOUND if none. */
LP2P_EXTERN int lp2p_peerstore_set_latency(lp2p_peerstore *ps, const lp2p_peer_id *peer, uint64_t rtt_us);
LP2P_EXTERN int lp2p_peerstore_latency(const lp2p_peerstore *ps, const lp2p_peer_id *peer, uint64_t *rtt_us);

/* Persistence. Snapshot pointers are valid during save() only. */
typedef struct lp2p_peerstore_snapshot {
  size_t struct_size;
  const lp2p_peer_id *peer;
  const lp2p_peer_addr *addrs; /* worth keeping only (see header) */
  size_t n_addrs;
  const char *const *protocols;
  size_t n_protocols;
  const char *agent;         /* NULL if unknown */
  const uint8_t *pubkey_pb;  /* PublicKey protobuf, NULL if unknown */
  size_t pubkey_len;
} lp2p_peerstore_snapshot;

typedef struct lp2p_peerstore_persist {
  size_t struct_size;
  /* Called once from lp2p_peerstore_set_persist; re-add saved peers through
   * the lp2p_peerstore_* functions. Return 0 or an error (returned by set_persist). */
  int (*load)(void *ud, lp2p_peerstore *ps);
  void (*save)(void *ud, const lp2p_peerstore_snapshot *snap); /* optional */
  void (*remove)(void *ud, const lp2p_peer_id *peer);          /* optional */
  void *ud;                                                     /* borrowed until the swarm is freed */
} lp2p_peerstore_persist;

/* Installs (copied) or, with NULL, removes the persistence vtable. Saved
 * addresses are re-added with the source and remaining TTL the app gives. */
LP2P_EXTERN int lp2p_peerstore_set_persist(lp2p_peerstore *ps, const lp2p_peerstore_persist *p);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_PEERSTORE_H */
