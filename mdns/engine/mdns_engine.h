/* mdns/engine/mdns_engine.h - sans-IO mDNS peer discovery engine (`_p2p._udp.local`), internal.
 *
 * One lp2p_mdns is the responder and the querier of libp2p mDNS discovery for one local peer on
 * any number of interfaces. It never touches a socket or a clock: the runtime feeds received UDP
 * payloads (lp2p_mdns_packet_in), the interface list (lp2p_mdns_set_interfaces), the local listen
 * addresses and peer id (lp2p_mdns_set_listen_addrs) and the time (`now`, monotonic ms, in every
 * call; lp2p_mdns_tick at lp2p_mdns_next_deadline()), and pulls packets to send
 * (lp2p_mdns_next_packet) and discovery events (lp2p_mdns_next_event).
 *
 * Wire behaviour
 *   - Peer name: cfg.peer_name, or 32 random lower-case [a-z0-9] drawn once from cfg.rng
 *     (libsodium's randombytes_buf when NULL): the spec asks for 32..63; the shortest keeps every
 *     response (which carries the name twice) small. Instance `<peer-name>._p2p._udp.local`,
 *     host `<peer-name>.local`.
 *   - Queries: one question `_p2p._udp.local PTR IN` (QU clear, id 0; byte-identical to
 *     js-libp2p's while we know no peer), multicast on every interface and family, with known
 *     answers (RFC 6762 §7.1): the PTR of every known peer heard on that interface and family (the
 *     last 4 such links of each peer are remembered) whose records from there still have at least
 *     half of their TTL, with the TTL left (a responder that honours them, as we do, stays silent
 *     there until our copy of its records is past half-life; a peer heard on other links only is
 *     not named and answers; the list stops where max_packet would overflow). The first one 20..120 ms (random)
 *     after _new, then after cfg.query_interval_min (1 s), doubling up to cfg.query_interval_max
 *     (60 s). An interface change (lp2p_mdns_set_interfaces with a different list) or a listen
 *     address change queries at once (from inside that call) and restarts the backoff.
 *   - Responses ("superset layout", accepted by js, go and rust): flags QR|AA, no question,
 *     answer `_p2p._udp.local PTR <instance>`; additionals: one TXT record per address, each with
 *     one `dnsaddr=<ma>/p2p/<id>` string (the layout of the libp2p spec and rust; go keeps only
 *     the last TXT record of an instance, so go learns the last address of each packet: the
 *     strings are ordered so that the last one is the first listen address; cfg.txt_single_record
 *     = 1 sends ONE TXT record holding every string instead, which go reads whole),
 *     `SRV 0 0 <port> <host>` (port of the first tcp address, else of the first udp address,
 *     else 4001 like go), and A (IPv4 packets) or AAAA (IPv6 packets) records for <host> with the
 *     interface's addresses of that family. All TTLs cfg.ttl (120 s), class IN, cache-flush bit
 *     clear (as js sends). Names are compressed unless cfg.no_compression. A response larger
 *     than cfg.max_packet is split into several complete packets (PTR + part of the strings +
 *     SRV + A/AAAA).
 *   - What is advertised on interface I in a packet of family F: listen addresses whose first
 *     component is ip4 (F = 4) or ip6 (F = 6) and whose IP lies inside the prefix of one of I's
 *     addresses of family F. Unspecified listen addresses (0.0.0.0, ::) are expanded into I's
 *     addresses of F (IPv6 link-local ones excluded: a dnsaddr cannot carry the zone). Loopback
 *     IPs only on interfaces flagged loopback, multicast and unspecified IPs never, circuit
 *     addresses never. `/p2p/<local id>` is appended when absent; an address ending with another
 *     peer id is skipped, and so is any string longer than 255 bytes. No address: no response
 *     (except a goodbye, which then carries the PTR alone).
 *   - Announcements: an unsolicited response on every interface and family at once and 1 s later
 *     whenever the listen addresses or the interfaces change; changes made before the jittered
 *     first query slot wait for it (a node configured right after _new still starts jittered).
 *   - Cache maintenance (RFC 6762 §5.2): when a discovered address reaches 80 % and again 90 % of
 *     its TTL, the engine queries (without touching the backoff), so a live peer refreshes it.
 *   - Answers: to a query (QR clear) whose questions contain `_p2p._udp.local` with type PTR or
 *     ANY, class IN or ANY; also to the DNS-SD meta query `_services._dns-sd._udp.local PTR` with
 *     `PTR _p2p._udp.local`. The answer goes to the multicast group of the interface and family
 *     the query arrived on; a query with the QU bit or from a source port other than 5353 also
 *     gets a unicast copy to its source (legacy unicast: the query id is echoed). At most one
 *     answer per cfg.answer_interval (1 s) per interface, family, question kind and querier
 *     (8 queriers remembered), and answers at least answer_interval / 8 apart per interface,
 *     family and question kind whoever asks (only answers actually sent count; a query that falls
 *     in that gap gets its multicast answer when the gap is over); known-answer
 *     suppression: a query that already lists our PTR with at least half our TTL is not answered.
 *   - Floods: at most cfg.max_packets_per_sec (100) packets per source address and second are
 *     processed (the 16 most recent sources of each interface are tracked; packets without a source
 *     count for the interface), and at most 10 times that per interface; the rest are dropped and
 *     counted. A noisy sender thus does not silence the others. Queues are bounded: past 512 pending packets
 *     or 1024 pending events, new ones are dropped (stats.queue_dropped).
 *   - Shutdown: lp2p_mdns_shutdown queues goodbyes (the same responses with TTL 0) on every
 *     interface and family; afterwards every input is ignored and no timer runs.
 *
 *   - Extra TXT strings (lp2p_mdns_set_txt, e.g. a pairing rendezvous tag): one more TXT record
 *     of the instance holding them, placed BEFORE the dnsaddr TXT records (go keeps only the
 *     last TXT record of an instance, which must stay a dnsaddr one), in every packet of a
 *     response (a receiver of any packet sees them). js, go and rust skip non-dnsaddr strings.
 *
 * Discovery (any layout the three implementations send)
 *   Responses are packets with QR set (or no question and some answer). PTR records
 *   `_p2p._udp.local -> <instance>` are taken from any section; for each instance, the TXT
 *   records owned by it in any section (or, when the packet holds exactly one instance and no
 *   TXT is owned by it, every TXT of the packet), one or many strings each. Strings starting with
 *   `dnsaddr=` (key case-insensitive) whose value parses as a multiaddr ending with /p2p/<id>
 *   are kept; any other string (or record) is skipped alone, and so are loopback addresses
 *   (127/8, ::1) heard on an interface not flagged loopback (go advertises ::1 to the LAN).
 *   Addresses naming a different peer id than the first valid one of that instance are skipped. Our own instance and our own peer id
 *   are ignored. SRV/A/AAAA are neither required nor used (hints are what TXT says).
 *   Each address expires TTL seconds after it was last seen (TTL of its TXT record, capped by the
 *   PTR's TTL when the PTR came in the same packet; at most 4500 s). A TTL of 0 (goodbye)
 *   removes the address at once; a PTR goodbye removes the instance's peer. Peers are deduplicated by peer id across
 *   interfaces: LP2P_MDNS_EV_DISCOVERED fires when a peer appears or gains an address (the event
 *   lists every current address); LP2P_MDNS_EV_EXPIRED when its last address expired or it said
 *   goodbye; LP2P_MDNS_EV_UPDATED when a response changed the peer's extra TXT strings (strings
 *   of its records other than dnsaddr that lp2p_mdns_txt_valid accepts, at most LP2P_MDNS_MAX_TXT
 *   and LP2P_MDNS_MAX_TXT_BYTES; a response with at least one live address replaces them) and
 *   nothing else; with cfg.report_refresh, LP2P_MDNS_EV_REFRESHED (same content as DISCOVERED) when a
 *   response renewed a known peer's addresses without adding one (runtimes that mirror the
 *   expiry elsewhere, e.g. a peer store with TTLs, renew it there). At most cfg.max_peers peers (256) and cfg.max_addrs_per_peer (16) addresses each;
 *   what exceeds them is ignored.
 *
 * Ownership
 *   _new copies the config (first struct_size bytes; peer_name and service strings too) and the
 *   allocator. set_interfaces and set_listen_addrs copy their inputs. Packets and events returned
 *   by next_packet / next_event point into engine memory valid until the next call to the same
 *   function or to lp2p_mdns_free. Errors: LP2P_ERR_INVAL (bad argument), LP2P_ERR_NOMEM (the call
 *   had no effect beyond what its comment says), LP2P_ERR_STATE after shutdown.
 */
#ifndef LP2P_MDNS_ENGINE_H
#define LP2P_MDNS_ENGINE_H
#include "lp2p/common.h"
#include "lp2p/multiaddr.h"
#include "lp2p/peerid.h"

#define LP2P_MDNS_PORT 5353u
#define LP2P_MDNS_SERVICE "_p2p._udp.local"
#define LP2P_MDNS_META_SERVICE "_services._dns-sd._udp.local"
#define LP2P_MDNS_DEFAULT_TTL 120u                   /* seconds */
#define LP2P_MDNS_DEFAULT_QUERY_MIN 1000u            /* ms */
#define LP2P_MDNS_DEFAULT_QUERY_MAX 60000u           /* ms */
#define LP2P_MDNS_DEFAULT_ANSWER_INTERVAL 1000u      /* ms */
#define LP2P_MDNS_DEFAULT_MAX_PACKET 1452u           /* 1500 - IPv6 header - UDP header */
#define LP2P_MDNS_DEFAULT_MAX_PEERS 256u
#define LP2P_MDNS_DEFAULT_MAX_ADDRS 16u
#define LP2P_MDNS_DEFAULT_MAX_PACKETS_PER_SEC 100u
#define LP2P_MDNS_MAX_IFACE_ADDRS 16u
#define LP2P_MDNS_MAX_TXT 8u          /* extra TXT strings, ours or a peer's */
#define LP2P_MDNS_MAX_TXT_BYTES 400u  /* their total length (without length bytes) */
/* Multicast groups (for the runtime). */
#define LP2P_MDNS_GROUP_V4 "224.0.0.251"
#define LP2P_MDNS_GROUP_V6 "ff02::fb"

typedef struct lp2p_mdns lp2p_mdns;

/* Random bytes; return 0 on success. */
typedef int (*lp2p_mdns_rng_fn)(void *ud, uint8_t *buf, size_t n);

typedef struct lp2p_mdns_config {
  size_t struct_size;          /* sizeof(lp2p_mdns_config) */
  lp2p_mdns_rng_fn rng;        /* NULL = randombytes_buf */
  void *rng_ud;
  const char *peer_name;       /* NULL = random; else 1..63 lower-case [a-z0-9] (tests) */
  const char *service;         /* NULL = "_p2p._udp.local" (pnet: "_p2p-<fp>._udp.local") */
  /* 0 means the default for every number below. */
  uint32_t ttl;                /* seconds, records we send */
  lp2p_tstamp query_interval_min, query_interval_max;
  lp2p_tstamp answer_interval;
  size_t max_packet;           /* >= 512 */
  size_t max_peers, max_addrs_per_peer;
  uint32_t max_packets_per_sec;
  int txt_single_record;       /* 1: one TXT record holding every string (see header) */
  int no_compression;          /* 1: names written uncompressed */
  int report_refresh;          /* 1: LP2P_MDNS_EV_REFRESHED events (see header) */
} lp2p_mdns_config;

typedef struct lp2p_mdns_ifaddr {
  int family;                  /* 4 or 6 */
  uint8_t addr[16];            /* IPv4 in the first 4 bytes */
  uint8_t prefix_len;          /* 0..32 / 0..128 */
} lp2p_mdns_ifaddr;

typedef struct lp2p_mdns_iface {
  uint32_t index;              /* OS interface index (non-zero, unique in the list) */
  int loopback;
  size_t naddrs;               /* <= LP2P_MDNS_MAX_IFACE_ADDRS */
  lp2p_mdns_ifaddr addrs[LP2P_MDNS_MAX_IFACE_ADDRS];
} lp2p_mdns_iface;

typedef struct lp2p_mdns_packet {
  uint32_t ifindex;
  int family;                  /* 4 or 6 */
  int unicast;                 /* 0: to the group (224.0.0.251 / ff02::fb) port 5353; 1: to dst:dst_port */
  uint8_t dst[16];
  uint16_t dst_port;
  const uint8_t *data;
  size_t len;
} lp2p_mdns_packet;

enum { LP2P_MDNS_EV_DISCOVERED = 1, LP2P_MDNS_EV_EXPIRED = 2, LP2P_MDNS_EV_REFRESHED = 3, LP2P_MDNS_EV_UPDATED = 4 };

typedef struct lp2p_mdns_event {
  int type;
  lp2p_peer_id peer;
  const lp2p_multiaddr *const *addrs; /* DISCOVERED, REFRESHED: every current address (with /p2p/<id>) */
  size_t naddrs;
  uint32_t ttl;                        /* DISCOVERED: seconds until the longest-lived address expires */
  uint32_t ifindex;                    /* interface the (last) packet came from */
  const char *const *txt;              /* DISCOVERED, REFRESHED, UPDATED: the peer's extra TXT strings */
  size_t ntxt;
} lp2p_mdns_event;

typedef struct lp2p_mdns_stats {
  uint64_t packets_in, packets_malformed, packets_flood_dropped, records_dropped;
  uint64_t queries_sent, responses_sent, answers_rate_limited;
  uint64_t queue_dropped; /* packets/events not queued: 512 packets or 1024 events were pending */
} lp2p_mdns_stats;

/* cfg may be NULL (defaults); mem NULL = libc. */
int lp2p_mdns_new(lp2p_mdns **out, const lp2p_mdns_config *cfg, const lp2p_mem *mem, lp2p_tstamp now);
void lp2p_mdns_free(lp2p_mdns *e); /* NULL ok */

/* Replace the interface list (copied). Interfaces that appeared or whose addresses changed make
 * the engine query (and announce) at once. */
int lp2p_mdns_set_interfaces(lp2p_mdns *e, const lp2p_mdns_iface *ifaces, size_t n, lp2p_tstamp now);
/* Replace the listen addresses (copied) and the local peer id. A change re-announces and
 * queries at once. */
int lp2p_mdns_set_listen_addrs(lp2p_mdns *e, const lp2p_multiaddr *const *addrs, size_t n,
                               const lp2p_peer_id *self, lp2p_tstamp now);
/* A received UDP payload. src: 4 or 16 bytes per family, src_port its port. A packet on an interface
 * not in the list, or of a family that interface has no address of, is ignored. Malformed packets are
 * dropped (0 is returned: a peer's garbage is not the caller's error); LP2P_ERR_NOMEM, or
 * LP2P_ERR_STATE after shutdown. */
int lp2p_mdns_packet_in(lp2p_mdns *e, uint32_t ifindex, int family, const uint8_t *src, uint16_t src_port,
                        const uint8_t *data, size_t len, lp2p_tstamp now);
/* Runs the timers due at now (queries, announcements, expiry). */
int lp2p_mdns_tick(lp2p_mdns *e, lp2p_tstamp now);
/* When tick must run next (LP2P_TSTAMP_NEVER after shutdown). */
lp2p_tstamp lp2p_mdns_next_deadline(const lp2p_mdns *e);
/* Replace our extra TXT strings (copied): each "key=value", 3..255 printable ASCII bytes, key
 * 1..9 bytes of [a-z0-9-] and not "dnsaddr"; at most LP2P_MDNS_MAX_TXT strings,
 * LP2P_MDNS_MAX_TXT_BYTES in all; n = 0 clears them. A change announces at once (twice, 1 s
 * apart, like a listen address change). LP2P_ERR_INVAL for a bad string. */
int lp2p_mdns_set_txt(lp2p_mdns *e, const char *const *strs, size_t n, lp2p_tstamp now);
/* A known peer's extra TXT strings (pointers valid until the next engine call): their count,
 * at most cap written. 0 for an unknown peer. */
size_t lp2p_mdns_peer_txt(const lp2p_mdns *e, const lp2p_peer_id *peer, const char **out, size_t cap);
/* Valid extra TXT string (see lp2p_mdns_set_txt)? 1 / 0. len = its length. */
int lp2p_mdns_txt_valid(const char *s, size_t len);
/* Queries at once on every interface and family and restarts the backoff (no announcement). */
int lp2p_mdns_query_now(lp2p_mdns *e, lp2p_tstamp now);
/* Queue goodbyes; the engine then stops. */
int lp2p_mdns_shutdown(lp2p_mdns *e, lp2p_tstamp now);

/* 1 and *pkt when a packet is queued (valid until the next call), 0 when none. */
int lp2p_mdns_next_packet(lp2p_mdns *e, lp2p_mdns_packet *pkt);
/* 1 and *ev when an event is queued (valid until the next call), 0 when none. */
int lp2p_mdns_next_event(lp2p_mdns *e, lp2p_mdns_event *ev);

const char *lp2p_mdns_peer_name(const lp2p_mdns *e);
size_t lp2p_mdns_peer_count(const lp2p_mdns *e);
void lp2p_mdns_get_stats(const lp2p_mdns *e, lp2p_mdns_stats *out);

#endif
