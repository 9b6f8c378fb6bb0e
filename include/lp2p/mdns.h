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
 *     we know on that interface and family, and ourselves, as known answers (RFC 6762 §7.1): a
 *     peer answers there only once our copy of its records is past half-life (a peer heard on
 *     another link only is not listed and answers), and we do not answer our own query.
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
 * Extra TXT strings (lp2p_mdns_service_set_txt): small "key=value" strings announced with our
 * record (one more TXT record of our instance, before the dnsaddr ones: js, go and rust skip it),
 * e.g. the pairing rendezvous tag (lp2p/pairing.h). A change is announced at once (twice, 1 s
 * apart). Peers' extra strings come with the mDNS peer events (lp2p_mdns_service_add_listener)
 * and lp2p_mdns_service_peer_txt. They are as trustworthy as the addresses: hints anyone on the
 * LAN can forge.
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
/* Queries at once on every interface (and restarts the backoff). The packets leave from the
 * loop (never from inside this call). */
LP2P_EXTERN int lp2p_mdns_service_query(lp2p_mdns_service *m);

/* ---- extra TXT strings ---- */
#define LP2P_MDNS_TXT_MAX 8          /* extra strings, ours or a peer's */
#define LP2P_MDNS_TXT_MAX_BYTES 400  /* their total length */
/* Sets (value non-NULL) or removes (value NULL) our extra TXT string "key=value": key 1..9 bytes of
 * [a-z0-9-], not "dnsaddr"; value printable ASCII; the string <= 255 bytes. Both are copied. A
 * change is announced at once (from the loop). Errors: LP2P_ERR_INVAL (bad key/value),
 * LP2P_ERR_LIMIT (more than LP2P_MDNS_TXT_MAX strings or LP2P_MDNS_TXT_MAX_BYTES in all),
 * LP2P_ERR_NOT_FOUND (removing a key that is not set), LP2P_ERR_STATE (swarm freeing). */
LP2P_EXTERN int lp2p_mdns_service_set_txt(lp2p_mdns_service *m, const char *key, const char *value);
/* A discovered peer's extra TXT strings ("key=value", NUL-terminated): their count (0 for an
 * unknown peer), at most cap pointers written to out, valid until the service next runs (copy
 * them before returning to the loop). */
LP2P_EXTERN size_t lp2p_mdns_service_peer_txt(const lp2p_mdns_service *m, const lp2p_peer_id *peer,
                                              const char **out, size_t cap);

/* ---- mDNS peer events (with the extra TXT strings) ---- */
typedef enum lp2p_mdns_peer_event_type {
  LP2P_MDNS_PEER_FOUND = 1,   /* the peer appeared or gained addresses (addrs: all current ones) */
  LP2P_MDNS_PEER_UPDATED = 2, /* only its extra TXT strings changed (set, changed or cleared) */
  LP2P_MDNS_PEER_LOST = 3     /* goodbye, or every record expired (no addrs, no txt) */
} lp2p_mdns_peer_event_type;

typedef struct lp2p_mdns_peer_event {
  size_t struct_size;                 /* sizeof(lp2p_mdns_peer_event) of the library */
  lp2p_mdns_peer_event_type type;
  const lp2p_peer_id *peer;
  const lp2p_multiaddr *const *addrs; /* FOUND, UPDATED: every current address (ending /p2p/<id>) */
  size_t n_addrs;
  const char *const *txt;             /* FOUND, UPDATED: the peer's current extra TXT strings */
  size_t n_txt;
} lp2p_mdns_peer_event;
/* Everything ev points to is valid during the call only. */
typedef void (*lp2p_mdns_peer_fn)(lp2p_mdns_service *m, const lp2p_mdns_peer_event *ev, void *ud);

/* Adds a listener (fn, ud borrowed) called for every mDNS peer event, from the loop (a received
 * packet or a timer), never from inside an lp2p_mdns_* call; listeners may add or remove
 * listeners while called. The swarm's PEER_DISCOVERED / PEER_EXPIRED events are raised as before.
 * Errors: LP2P_ERR_INVAL, LP2P_ERR_LIMIT (8 listeners), LP2P_ERR_EXISTS (same fn and ud). */
LP2P_EXTERN int lp2p_mdns_service_add_listener(lp2p_mdns_service *m, lp2p_mdns_peer_fn fn, void *ud);
/* Removes it (no-op when absent): it is not called again, even for events already being delivered. */
LP2P_EXTERN void lp2p_mdns_service_remove_listener(lp2p_mdns_service *m, lp2p_mdns_peer_fn fn, void *ud);

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
