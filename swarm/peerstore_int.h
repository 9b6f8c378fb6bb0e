/* swarm/peerstore_int.h - the peer store's internal interface (see lp2p/peerstore.h).
 *
 * The store is a plain data structure: no libuv, no clock. Time comes in as
 * `now` (the *_at functions; unit tests drive it explicitly) or, for the
 * public API, from hooks.now. It talks to its owner (the swarm) only through
 * the hooks: `busy` (may this peer be evicted?), `emit` (raise a swarm event;
 * the owner copies and defers it), `changed` (saves are pending or the
 * earliest expiry moved: the owner schedules lp2p__ps_flush / lp2p__ps_expire). */
#ifndef LP2P_SWARM_PEERSTORE_INT_H
#define LP2P_SWARM_PEERSTORE_INT_H
#include "lp2p/peerstore.h"

typedef struct lp2p__ps_hooks {
  void *ud;
  lp2p_tstamp (*now)(void *ud);
  int (*busy)(void *ud, const lp2p_peer_id *peer);          /* optional: non-zero = never evict */
  void (*emit)(void *ud, const lp2p_swarm_event *ev);       /* optional */
  void (*changed)(void *ud);                                /* optional */
} lp2p__ps_hooks;

int lp2p__ps_new(lp2p_peerstore **out, const lp2p_mem *mem, uint32_t max_peers, uint32_t max_addrs,
                 const lp2p__ps_hooks *hooks);
void lp2p__ps_free(lp2p_peerstore *ps);

int lp2p__ps_add_at(lp2p_peerstore *ps, const lp2p_peer_id *peer, const lp2p_multiaddr *const *addrs, size_t n,
                    lp2p_addr_source source, uint64_t ttl_ms, lp2p_tstamp now);
size_t lp2p__ps_addrs_at(const lp2p_peerstore *ps, const lp2p_peer_id *peer, unsigned scope_mask,
                         lp2p_peer_addr *out, size_t max, lp2p_tstamp now);
/* Unexpired addresses as bare pointers (dialing, lp2p_swarm_peer_addresses). */
size_t lp2p__ps_addr_ptrs(const lp2p_peerstore *ps, const lp2p_peer_id *peer, const lp2p_multiaddr **out,
                          size_t max, lp2p_tstamp now);
/* Removes expired addresses (PEER_EXPIRED as documented). */
void lp2p__ps_expire(lp2p_peerstore *ps, lp2p_tstamp now);
/* Earliest expiry of a stored address, LP2P_TSTAMP_NEVER if none. */
lp2p_tstamp lp2p__ps_next_expiry(const lp2p_peerstore *ps);
/* Calls persist.save for every changed peer. */
void lp2p__ps_flush(lp2p_peerstore *ps, lp2p_tstamp now);
/* The peer was seen (connected, identified, answered a ping). Creates no entry. */
void lp2p__ps_seen(lp2p_peerstore *ps, const lp2p_peer_id *peer, lp2p_tstamp now);
size_t lp2p__ps_count(const lp2p_peerstore *ps);

#endif
