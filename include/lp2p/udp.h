/* lp2p/udp.h - UDP sockets and network interfaces owned by the swarm.
 *
 * Behaviours that speak datagrams (mDNS, later QUIC) never open libuv handles
 * themselves: they ask the swarm for an lp2p_udp handle, which lives on the
 * swarm's loop and obeys its rules (lp2p/swarm.h, "Threading" and
 * "Reentrancy"): loop thread only; callbacks are bracketed like every other
 * swarm callback, so closes and writes requested inside them are deferred
 * safely.
 *
 * Lifetime (the lp2p_timer discipline): lp2p_udp_free() may be called at any
 * time, also from inside the handle's own receive callback; no callback is
 * made after it. The memory is released once libuv has closed the socket.
 * Handles still open when the swarm is freed are closed and released by
 * lp2p_swarm_free(); the application must not use them afterwards.
 *
 * Addresses are multiaddrs: /ip4/<a>/udp/<port> and /ip6/<a>/udp/<port>
 * (IPv6 link-local peers are reported without a zone; send to them through
 * the multicast interface set with lp2p_udp_set_multicast_if). Multicast
 * groups are /ip4/<g> or /ip6/<g> (a trailing /udp/<port> is ignored).
 * A socket receives multicast only for the groups it joined itself (on Linux
 * IP_MULTICAST_ALL / IPV6_MULTICAST_ALL are turned off).
 *
 * Errors: negative LP2P_ERR_* codes (lp2p/common.h). */
#ifndef LP2P_UDP_H
#define LP2P_UDP_H
#include "lp2p/swarm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lp2p_udp lp2p_udp;

/* lp2p_udp_new flags */
#define LP2P_UDP_REUSEADDR 0x1u /* SO_REUSEADDR and, where available, SO_REUSEPORT: share the port with
                                   other sockets that set it too (mDNS on 5353 next to avahi/Bonjour) */
#define LP2P_UDP_IPV6ONLY 0x2u  /* an /ip6/:: socket does not receive IPv4 traffic */

/* Receive callback: one datagram p[0..n) from the sender's address. Both are
 * valid only during the call. Datagrams longer than 64 KiB - 1 are truncated
 * by the kernel (never the case for UDP over IP). */
typedef void (*lp2p_udp_recv_fn)(lp2p_udp *u, const lp2p_multiaddr *from, const uint8_t *p, size_t n, void *ud);

/* Binds a UDP socket to bind (/ip4|ip6/<a>/udp/<port>; port 0 = any free
 * port; address 0.0.0.0 / :: = all interfaces) and starts receiving:
 * on_recv (required) is called for every datagram. ud is borrowed.
 * Errors: LP2P_ERR_INVAL, LP2P_ERR_MULTIADDR (not such an address),
 * LP2P_ERR_ADDRINUSE, LP2P_ERR_STATE (the swarm is being freed),
 * LP2P_ERR_NOMEM, LP2P_ERR_IO. */
LP2P_EXTERN int lp2p_udp_new(lp2p_udp **out, lp2p_swarm *sw, const lp2p_multiaddr *bind, unsigned flags,
                             lp2p_udp_recv_fn on_recv, void *ud);

/* Joins / leaves the multicast group on the interface with index ifindex
 * (lp2p_swarm_interfaces; 0 = the system's choice). The group's family must
 * match the socket's (an /ip6 socket bound to :: without IPV6ONLY joins IPv6
 * groups only). Errors: LP2P_ERR_MULTIADDR (not an /ip4|ip6 multicast
 * address), LP2P_ERR_INVAL, LP2P_ERR_NOT_FOUND (no such interface or no
 * IPv4 address on it), LP2P_ERR_EXISTS (already joined: join) or
 * LP2P_ERR_NOT_FOUND (not joined: leave) when the kernel says so, LP2P_ERR_IO. */
LP2P_EXTERN int lp2p_udp_join(lp2p_udp *u, const lp2p_multiaddr *group, unsigned ifindex);
LP2P_EXTERN int lp2p_udp_leave(lp2p_udp *u, const lp2p_multiaddr *group, unsigned ifindex);
/* Interface for outgoing multicast (0 = system default). */
LP2P_EXTERN int lp2p_udp_set_multicast_if(lp2p_udp *u, unsigned ifindex);
/* Multicast TTL (IPv4) / hop limit (IPv6), 1..255; the default is 1. */
LP2P_EXTERN int lp2p_udp_set_multicast_ttl(lp2p_udp *u, int ttl);
/* Whether our own multicast datagrams are looped back to this host (default on). */
LP2P_EXTERN int lp2p_udp_set_multicast_loop(lp2p_udp *u, int on);

/* Sends p[0..n) (copied if it cannot leave at once; the caller's buffer is
 * free when the call returns) to /ip4|ip6/<a>/udp/<port>. Never blocks:
 * returns 0 when the datagram was sent or queued. Errors: LP2P_ERR_MULTIADDR
 * (bad destination, or a family the socket cannot reach), LP2P_ERR_INVAL,
 * LP2P_ERR_TOO_LARGE (n > 65507, or the kernel's EMSGSIZE), LP2P_ERR_LIMIT
 * (more than 1 MiB already queued: the datagram is dropped),
 * LP2P_ERR_UNREACHABLE (no route), LP2P_ERR_NOMEM, LP2P_ERR_IO. A queued
 * datagram that fails later is logged (module "udp") and counted in
 * lp2p_udp_send_errors(). */
LP2P_EXTERN int lp2p_udp_send(lp2p_udp *u, const lp2p_multiaddr *to, const uint8_t *p, size_t n);
/* Queued datagrams that failed after lp2p_udp_send returned 0. */
LP2P_EXTERN uint64_t lp2p_udp_send_errors(const lp2p_udp *u);

/* The bound address (port resolved). Valid while u lives. */
LP2P_EXTERN const lp2p_multiaddr *lp2p_udp_local_addr(const lp2p_udp *u);
/* Closes the socket. No callback afterwards; queued datagrams are dropped.
 * Memory released after libuv closed the handle (or by lp2p_swarm_free). NULL ok. */
LP2P_EXTERN void lp2p_udp_free(lp2p_udp *u);
/* The owning swarm. */
LP2P_EXTERN lp2p_swarm *lp2p_udp_swarm(const lp2p_udp *u);

/* ---------------------------------------------------------------------------
 * Network interfaces: one entry per (interface, IP address). */
#define LP2P_IF_UP 0x1u
#define LP2P_IF_RUNNING 0x2u
#define LP2P_IF_LOOPBACK 0x4u
#define LP2P_IF_MULTICAST 0x8u
#define LP2P_IF_NAME_MAX 64

typedef struct lp2p_interface {
  char name[LP2P_IF_NAME_MAX]; /* "eth0" (NUL-terminated) */
  unsigned index;              /* interface index (for lp2p_udp_join & co.) */
  const lp2p_multiaddr *addr;  /* /ip4/<a> or /ip6/<a> (link-local IPv6 included, no zone) */
  unsigned prefix_len;         /* network prefix length (from the netmask) */
  unsigned flags;              /* LP2P_IF_* */
} lp2p_interface;

/* Writes up to max entries (out may be NULL with max 0) and returns the total
 * count, or a negative error (LP2P_ERR_IO, LP2P_ERR_NOMEM).
 * The swarm keeps a snapshot: the first call reads the system's table and, if
 * config interface_poll_ms is non-zero, starts polling it every that many
 * milliseconds; a snapshot that differs from the previous one replaces it and
 * LP2P_SWARM_EV_INTERFACES_CHANGED is emitted (the event carries nothing: call
 * this function again). With polling off every call re-reads the table.
 * The addr pointers stay valid until the snapshot is replaced: the next
 * INTERFACES_CHANGED event (polling on), the next call (polling off), or
 * lp2p_swarm_free. Entries are ordered by index, then address. */
LP2P_EXTERN int lp2p_swarm_interfaces(lp2p_swarm *sw, lp2p_interface *out, size_t max);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_UDP_H */
