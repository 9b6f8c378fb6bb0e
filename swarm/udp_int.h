/* swarm/udp_int.h - internals shared by swarm/udp.c, swarm/interfaces.c and
 * the rest of the swarm (listen.c expands unspecified listen addresses with the
 * interface table; swarm.c releases UDP handles and the interface snapshot). */
#ifndef LP2P_SWARM_UDP_INT_H
#define LP2P_SWARM_UDP_INT_H
#include <sys/socket.h>

#include "lp2p/udp.h"

/* One (interface, address) entry of the system's table. */
typedef struct lp2p__ifent {
  lp2p_interface pub;         /* pub.addr == ma */
  struct sockaddr_storage sa; /* the address, port 0 (IPv6: sin6_scope_id set for link-local) */
  lp2p_multiaddr *ma;         /* /ip4|ip6/<a> */
} lp2p__ifent;

/* Reads the table (getifaddrs): IPv4 and IPv6 entries only, sorted by index,
 * family, address. *out is allocated with mem (release with lp2p__interfaces_release). */
int lp2p__interfaces_read(const lp2p_mem *mem, lp2p__ifent **out, size_t *n);
void lp2p__interfaces_release(const lp2p_mem *mem, lp2p__ifent *v, size_t n);
/* lp2p_swarm_free: stops polling and drops the snapshot. */
void lp2p__interfaces_free(lp2p_swarm *sw);
/* lp2p_swarm_free: closes every UDP handle still open (memory released from the close callbacks). */
void lp2p__udp_free_all(lp2p_swarm *sw);

/* sockaddr <-> /ip4|ip6/<a>[/udp/<port>] */
int lp2p__ip_sockaddr_to_ma(const struct sockaddr *sa, int with_udp_port, lp2p_multiaddr **out);
/* Accepts /ip4|ip6/<a>/udp/<p> (need_port 1) or /ip4|ip6/<a> with an optional /udp/<p> (need_port 0). */
int lp2p__ip_ma_to_sockaddr(const lp2p_multiaddr *ma, int need_port, struct sockaddr_storage *ss);

#endif
