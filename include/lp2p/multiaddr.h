/* lp2p/multiaddr.h - multiaddr text <-> binary.
 *
 * Supported protocols: ip4 (4), tcp (6), ip6 (41), ip6zone (42), dns (53),
 * dns4 (54), dns6 (55), dnsaddr (56), udp (273), webrtc-direct (280),
 * webrtc (281), p2p-circuit (290), p2p (421, also parsed from the legacy name
 * "ipfs"), tls (448), sni (449), noise (454), quic (460), quic-v1 (461),
 * webtransport (465), certhash (466), ws (477), wss (478), http (480).
 * Anything else is rejected (its value size would be unknown).
 *
 * Text form: "/<name>[/<value>]..." . ip4 is a dotted quad (no leading zeros);
 * ip6 is RFC 4291 text on input and RFC 5952 on output (lower case, longest
 * zero run compressed, IPv4-mapped addresses as ::ffff:a.b.c.d); ports are
 * decimal 0..65535; dns, dns4, dns6, dnsaddr, sni and ip6zone values are
 * non-empty UTF-8 without '/' or control characters; p2p is a peer-id multihash printed as bare base58btc
 * (input may also be a CIDv1 "bafz..." with codec libp2p-key; identity
 * multihashes carry at most 42 bytes); certhash is a multibase multihash
 * printed as base64url ('u'). One trailing '/' is tolerated on input.
 *
 * A multiaddr is an immutable opaque value holding its binary form, which is
 * always valid, non-empty and at most LP2P_MULTIADDR_MAX_LEN bytes. Objects
 * are independent (no sharing); free each with lp2p_multiaddr_free.
 *
 * Errors: parse failures return LP2P_ERR_MULTIADDR and, when `err` is
 * non-NULL, write a one-line NUL-terminated reason (truncated to errcap)
 * naming the component, e.g. "tcp: port '70000' out of range",
 * "unknown protocol 'foo'", "ip4: invalid address '1.2.3'". On success err is
 * set to "". Allocation failure: LP2P_ERR_NOMEM. On any failure *out = NULL. */
#ifndef LP2P_MULTIADDR_H
#define LP2P_MULTIADDR_H
#include "lp2p/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_MA_IP4 4
#define LP2P_MA_TCP 6
#define LP2P_MA_IP6 41
#define LP2P_MA_IP6ZONE 42
#define LP2P_MA_DNS 53
#define LP2P_MA_DNS4 54
#define LP2P_MA_DNS6 55
#define LP2P_MA_DNSADDR 56
#define LP2P_MA_UDP 273
#define LP2P_MA_WEBRTC_DIRECT 280
#define LP2P_MA_WEBRTC 281
#define LP2P_MA_P2P_CIRCUIT 290
#define LP2P_MA_P2P 421
#define LP2P_MA_TLS 448
#define LP2P_MA_SNI 449
#define LP2P_MA_NOISE 454
#define LP2P_MA_QUIC 460
#define LP2P_MA_QUIC_V1 461
#define LP2P_MA_WEBTRANSPORT 465
#define LP2P_MA_CERTHASH 466
#define LP2P_MA_WS 477
#define LP2P_MA_WSS 478
#define LP2P_MA_HTTP 480
#define LP2P_MA_MEMORY 777 /* 0x0309: in-process transport (/memory/<u64>), testing */

/* Upper bound on the binary size we accept/produce (a guard against hostile input). */
#define LP2P_MULTIADDR_MAX_LEN 1024
/* Buffer size (incl. NUL) that always holds lp2p_multiaddr_to_string output:
 * the worst case is 7 text bytes per binary byte ("/webrtc-direct" is 2
 * bytes). Text inputs of this length or more are rejected. */
#define LP2P_MULTIADDR_MAX_TEXT (7 * LP2P_MULTIADDR_MAX_LEN + 1)
#define LP2P_MULTIADDR_ERRLEN 128

typedef struct lp2p_multiaddr lp2p_multiaddr;

/* Parse NUL-terminated text ("/ip4/127.0.0.1/tcp/4001/p2p/12D3Koo..."). *out
 * is owned by the caller (lp2p_multiaddr_free). Empty text and "/" are errors. */
LP2P_EXTERN int lp2p_multiaddr_parse(lp2p_multiaddr **out, const char *text, char *err, size_t errcap);
/* Same with an explicit length (text need not be NUL-terminated; an embedded
 * NUL is a parse error). */
LP2P_EXTERN int lp2p_multiaddr_parse_n(lp2p_multiaddr **out, const char *text, size_t len, char *err,
                                       size_t errcap);
/* Same, allocating the object from mem (NULL = libc). The object keeps a copy
 * of *mem and frees itself through it; dup/prefix/concat/append results use the
 * allocator of their (first) source. */
LP2P_EXTERN int lp2p_multiaddr_parse_mem(lp2p_multiaddr **out, const char *text, size_t len, const lp2p_mem *mem,
                                         char *err, size_t errcap);
/* Parse binary; validates every component (known code, complete value, valid
 * names/multihashes). Zero length is an error. */
LP2P_EXTERN int lp2p_multiaddr_from_bytes(lp2p_multiaddr **out, const uint8_t *bytes, size_t len, char *err,
                                          size_t errcap);
LP2P_EXTERN int lp2p_multiaddr_from_bytes_mem(lp2p_multiaddr **out, const uint8_t *bytes, size_t len,
                                              const lp2p_mem *mem, char *err, size_t errcap);
LP2P_EXTERN lp2p_multiaddr *lp2p_multiaddr_dup(const lp2p_multiaddr *ma); /* NULL on OOM or ma == NULL */
LP2P_EXTERN void lp2p_multiaddr_free(lp2p_multiaddr *ma);                 /* NULL is a no-op */

/* Binary form; valid while ma lives. */
LP2P_EXTERN const uint8_t *lp2p_multiaddr_bytes(const lp2p_multiaddr *ma, size_t *len);
/* Text form into buf (NUL-terminated). Returns text length or LP2P_ERR_BUFSIZE
 * (a buffer of LP2P_MULTIADDR_MAX_TEXT bytes always suffices). */
LP2P_EXTERN int lp2p_multiaddr_to_string(const lp2p_multiaddr *ma, char *buf, size_t cap);
/* 1 if both hold the same binary form (two NULLs are equal), else 0. */
LP2P_EXTERN int lp2p_multiaddr_equal(const lp2p_multiaddr *a, const lp2p_multiaddr *b);

/* Component access. Returns the number of components (0 for NULL). */
LP2P_EXTERN size_t lp2p_multiaddr_count(const lp2p_multiaddr *ma);
/* i-th component: protocol code and raw value bytes (pointer into ma, valid
 * while ma lives). For variable-size protocols the value excludes the length
 * prefix (for p2p it is the peer-id multihash); zero-size protocols give
 * vlen 0. Any out pointer may be NULL. LP2P_ERR_INVAL if i >= count. */
LP2P_EXTERN int lp2p_multiaddr_component(const lp2p_multiaddr *ma, size_t i, uint32_t *code, const uint8_t **value,
                                         size_t *vlen);
/* Index of the last component with this code, or LP2P_ERR_NOT_FOUND. */
LP2P_EXTERN int lp2p_multiaddr_find_last(const lp2p_multiaddr *ma, uint32_t code);
/* Protocol name for a code ("ip4"), or NULL if unknown. Static storage. */
LP2P_EXTERN const char *lp2p_multiaddr_protocol_name(uint32_t code);
/* Code for a protocol name ("ipfs" gives 421); LP2P_ERR_NOT_FOUND if unknown. */
LP2P_EXTERN int lp2p_multiaddr_protocol_code(const char *name, uint32_t *code);

/* New multiaddr of components [0, n) of ma (e.g. strip a trailing /p2p).
 * LP2P_ERR_INVAL unless 1 <= n <= count (multiaddrs are never empty). */
LP2P_EXTERN int lp2p_multiaddr_prefix(lp2p_multiaddr **out, const lp2p_multiaddr *ma, size_t n);
/* New multiaddr a ++ b. LP2P_ERR_TOO_LARGE past LP2P_MULTIADDR_MAX_LEN. */
LP2P_EXTERN int lp2p_multiaddr_concat(lp2p_multiaddr **out, const lp2p_multiaddr *a, const lp2p_multiaddr *b);
/* New multiaddr ma ++ /<code>/<value> with a binary value (e.g. append
 * /p2p/<peer-id multihash>). The value is validated like binary input; a
 * zero-size protocol needs vlen 0. LP2P_ERR_MULTIADDR (reason in err) on a bad
 * component or when the result would exceed LP2P_MULTIADDR_MAX_LEN. */
LP2P_EXTERN int lp2p_multiaddr_append(lp2p_multiaddr **out, const lp2p_multiaddr *ma, uint32_t code,
                                      const uint8_t *value, size_t vlen, char *err, size_t errcap);

/* Reachability scope of an address, for deciding who may be told about it
 * (a public DHT answer never carries a LAN address, an mDNS answer never a
 * public one, ...). Bit values, so that callers can filter with a mask.
 * Classified from the first ip4/ip6/dns* component:
 *   UNSPECIFIED  0.0.0.0, :: (never dialable; never stored for others)
 *   LOOPBACK     127.0.0.0/8, ::1, ::ffff:127.x, dns names "localhost" / "*.localhost"
 *   LINK_LOCAL   169.254.0.0/16, fe80::/10
 *   PRIVATE      10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7 (ULA), dns names "*.local"
 *   PUBLIC       every other ip4/ip6 address and dns name; also addresses without
 *                an ip/dns component (nothing better is known about them). */
typedef enum lp2p_ma_scope {
  LP2P_MA_SCOPE_UNSPECIFIED = 0,
  LP2P_MA_SCOPE_LOOPBACK = 1,
  LP2P_MA_SCOPE_LINK_LOCAL = 2,
  LP2P_MA_SCOPE_PRIVATE = 4,
  LP2P_MA_SCOPE_PUBLIC = 8
} lp2p_ma_scope;
#define LP2P_MA_SCOPE_LAN (LP2P_MA_SCOPE_LINK_LOCAL | LP2P_MA_SCOPE_PRIVATE)
#define LP2P_MA_SCOPE_ANY 0xF /* every scope except UNSPECIFIED */

/* Scope of ma (see above); LP2P_MA_SCOPE_UNSPECIFIED for NULL. */
LP2P_EXTERN lp2p_ma_scope lp2p_multiaddr_scope(const lp2p_multiaddr *ma);
/* 1 if ma could work as a dial address for someone else: not UNSPECIFIED,
 * no tcp/udp port 0, not an ip4 multicast/broadcast address; else 0. */
LP2P_EXTERN int lp2p_multiaddr_is_dialable(const lp2p_multiaddr *ma);

#ifdef __cplusplus
}
#endif
#endif
