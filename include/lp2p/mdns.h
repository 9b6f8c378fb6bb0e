/* lp2p/mdns.h - mDNS peer discovery on the LAN (libp2p `_p2p._udp.local`) as a swarm behaviour,
 * written only against the public swarm API (lp2p/swarm.h, lp2p/udp.h, lp2p/peerstore.h).
 *
 * What it does
 *   - Sockets: for every interface that is up and multicast-capable (lp2p_swarm_interfaces), one
 *     UDP socket per family bound to 0.0.0.0:5353 / [::]:5353 with SO_REUSEADDR + SO_REUSEPORT
 *     (it coexists with avahi/Bonjour and other mDNS stacks on the host), joined to 224.0.0.251
 *     or ff02::fb on that interface only, multicast TTL 255, loopback on. IPv4 on interfaces with
 *     an IPv4 address, IPv6 on interfaces with an IPv6 address (link-local is enough). The set
 *     follows LP2P_SWARM_EV_INTERFACES_CHANGED (the swarm's interface_poll_ms).
 *   - Names: a random peer name of 32..63 lower-case [a-z0-9] drawn once; instance
 *     `<name>._p2p._udp.local`, host `<name>.local`.
 *   - Queries `_p2p._udp.local PTR` on every interface and family: the first 20..120 ms after the
 *     behaviour is added (jitter), then after 1 s doubling up to 5 minutes, and at once (backoff
 *     restarted) when the interfaces or our listen addresses change. Our queries list the peers
 *     we know, and ourselves, as known answers (RFC 6762 §7.1): a peer answers only once our copy
 *     of its records is past half-life, and we do not answer our own query.
 *   - Answers (and unsolicited announcements on change, twice 1 s apart): PTR in answers; in
 *     additionals one TXT record per address (`dnsaddr=<multiaddr>/p2p/<our id>`, each <= 255
 *     bytes), SRV and A/AAAA - the superset layout js, go and rust all read. On interface I only
 *     listen addresses reachable there are advertised: an address inside one of I's prefixes, or
 *     I's own addresses for a listener on 0.0.0.0 / :: ; never loopback to the LAN, never 0.0.0.0,
 *     no IPv6 link-local (a dnsaddr cannot carry the zone). At most one answer per second per
 *     interface, family and question; at most 100 packets per second per interface are read
 *     (floods are dropped and counted).
 *   - Accepts every layout js, go and rust send (TXT in answers or additionals, one or many
 *     strings, SRV/A present or not); a malformed record drops only itself.
 *   - Shutdown (lp2p_swarm_free): goodbye packets (TTL 0) on every interface and family.
 *
 * Results
 *   A discovered peer's addresses go into the swarm's peer store (lp2p/peerstore.h) with source
 *   LP2P_ADDR_SRC_MDNS and a TTL (the record TTL the peer sent, renewed by each of its answers,
 *   plus 5 s of slack); they are removed when the peer says goodbye or its records expire.
 *   Swarm events, one per transition (deferred, like every swarm event):
 *     LP2P_SWARM_EV_PEER_DISCOVERED (peer, addrs, source LP2P_ADDR_SRC_MDNS): a peer appeared, or
 *       gained addresses (addrs: the new ones; when the peer store already knew every address,
 *       e.g. a peer that comes back after a goodbye and was dialed before, all of them).
 *     LP2P_SWARM_EV_PEER_EXPIRED (peer, source LP2P_ADDR_SRC_MDNS): mDNS lost the peer (goodbye, or
 *       every record expired).
 *   Most come from the peer store itself (it raises them when a discovery source adds or loses
 *   addresses); the behaviour raises the ones the store does not (lp2p_swarm_emit), so an app sees
 *   exactly one DISCOVERED per appearance and one EXPIRED per disappearance. Treat the addresses
 *   as hints: the peer id is proven only by the Noise handshake of a dial.
 *   With cfg.auto_dial every peer that appears is dialed once (lp2p_swarm_dial_ma with the peer
 *   store's addresses), unless already connected.
 *
 * Threading: loop thread only (see lp2p/swarm.h). Errors: negative LP2P_ERR_* (lp2p/common.h). */
#ifndef LP2P_MDNS_H
#define LP2P_MDNS_H
#include "lp2p/swarm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Behaviour name (lp2p_swarm_behaviour(sw, LP2P_MDNS_BEHAVIOUR) gives the lp2p_mdns_service). */
#define LP2P_MDNS_BEHAVIOUR "mdns"
#define LP2P_MDNS_SERVICE_NAME "_p2p._udp.local"

typedef struct lp2p_mdns_service lp2p_mdns_service;

typedef struct lp2p_mdns_service_config {
  size_t struct_size;            /* sizeof(lp2p_mdns_service_config); set by lp2p_mdns_service_config_default */
  int auto_dial;                 /* 1: dial every peer that appears (default 0) */
  int no_ipv4, no_ipv6;          /* 1: leave that family out (default 0: both) */
  uint32_t ttl_s;                /* TTL of the records we send, seconds; default 4500 (1..4500) */
  uint32_t query_interval_min_ms; /* default 1000 */
  uint32_t query_interval_max_ms; /* default 300000 */
  const char *service;           /* NULL = "_p2p._udp.local"; a private network uses
                                    "_p2p-<hex fingerprint>._udp.local" (copied) */
  uint16_t port;                 /* default 5353 (tests may pick another; peers must agree) */
  int txt_single_record;         /* 1: one TXT record holding every address instead of one per address */
} lp2p_mdns_service_config;

LP2P_EXTERN void lp2p_mdns_service_config_default(lp2p_mdns_service_config *cfg);

/* Adds mDNS discovery to sw. cfg may be NULL (defaults); it is copied. *out (optional) receives
 * the handle, owned by the swarm (valid until lp2p_swarm_free). Sockets are opened at once; an
 * interface whose socket cannot be set up is skipped (logged, module "mdns") and retried at the
 * next interface change. Errors: LP2P_ERR_INVAL (bad config), LP2P_ERR_EXISTS (already added),
 * LP2P_ERR_NOMEM, LP2P_ERR_IO (the interface table cannot be read). */
LP2P_EXTERN int lp2p_mdns_add(lp2p_swarm *sw, const lp2p_mdns_service_config *cfg, lp2p_mdns_service **out);

/* Our random peer name (valid while the service lives). */
LP2P_EXTERN const char *lp2p_mdns_service_peer_name(const lp2p_mdns_service *m);
/* Peers mDNS currently knows (not expired). */
LP2P_EXTERN size_t lp2p_mdns_service_peer_count(const lp2p_mdns_service *m);
/* Queries at once on every interface (and restarts the backoff). */
LP2P_EXTERN int lp2p_mdns_service_query(lp2p_mdns_service *m);

typedef struct lp2p_mdns_service_stats {
  size_t struct_size;            /* set by the caller: fields beyond it are not written */
  uint64_t packets_sent, bytes_sent;         /* UDP payloads handed to the sockets */
  uint64_t packets_received, bytes_received; /* UDP payloads read (before any check) */
  uint64_t queries_sent, responses_sent;     /* packets built (responses include goodbyes) */
  uint64_t packets_malformed, packets_flood_dropped, records_dropped, answers_rate_limited;
  uint64_t send_errors;                      /* sends refused or failed */
  uint32_t sockets;                          /* sockets open now */
} lp2p_mdns_service_stats;

/* Counters since lp2p_mdns_add. */
LP2P_EXTERN void lp2p_mdns_service_get_stats(const lp2p_mdns_service *m, lp2p_mdns_service_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_MDNS_H */
