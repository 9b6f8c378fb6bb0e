/* lp2p/multiaddr.h - multiaddr text <-> binary.
 *
 * Supported protocols: ip4 (4), tcp (6), udp (273), dns (53), dns4 (54),
 * dns6 (55), dnsaddr (56), ip6 (41), p2p (421, also parsed from the legacy
 * name "ipfs"), quic-v1 (461).
 *
 * A multiaddr is an opaque value holding its binary form. Errors: parse
 * failures return LP2P_ERR_MULTIADDR and, when `err` is non-NULL, write a
 * one-line NUL-terminated reason naming the component, e.g.
 * "tcp: port '70000' out of range" or "unknown protocol 'foo'". */
#ifndef LP2P_MULTIADDR_H
#define LP2P_MULTIADDR_H
#include "lp2p/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_MA_IP4 4
#define LP2P_MA_TCP 6
#define LP2P_MA_DNS 53
#define LP2P_MA_DNS4 54
#define LP2P_MA_DNS6 55
#define LP2P_MA_DNSADDR 56
#define LP2P_MA_IP6 41
#define LP2P_MA_UDP 273
#define LP2P_MA_P2P 421
#define LP2P_MA_QUIC_V1 461

/* Upper bound on the binary size we accept/produce (a guard against hostile input). */
#define LP2P_MULTIADDR_MAX_LEN 1024
#define LP2P_MULTIADDR_ERRLEN 128

typedef struct lp2p_multiaddr lp2p_multiaddr;

/* Parse text ("/ip4/127.0.0.1/tcp/4001/p2p/12D3Koo..."). *out is owned by the
 * caller (lp2p_multiaddr_free). */
LP2P_EXTERN int lp2p_multiaddr_parse(lp2p_multiaddr **out, const char *text, char *err, size_t errcap);
/* Parse binary; validates every component. */
LP2P_EXTERN int lp2p_multiaddr_from_bytes(lp2p_multiaddr **out, const uint8_t *bytes, size_t len, char *err,
                                          size_t errcap);
LP2P_EXTERN lp2p_multiaddr *lp2p_multiaddr_dup(const lp2p_multiaddr *ma); /* NULL on OOM */
LP2P_EXTERN void lp2p_multiaddr_free(lp2p_multiaddr *ma);

/* Binary form; valid while ma lives. */
LP2P_EXTERN const uint8_t *lp2p_multiaddr_bytes(const lp2p_multiaddr *ma, size_t *len);
/* Text form into buf (NUL-terminated). Returns text length or LP2P_ERR_BUFSIZE. */
LP2P_EXTERN int lp2p_multiaddr_to_string(const lp2p_multiaddr *ma, char *buf, size_t cap);
LP2P_EXTERN int lp2p_multiaddr_equal(const lp2p_multiaddr *a, const lp2p_multiaddr *b);

/* Component access. Returns the number of components. */
LP2P_EXTERN size_t lp2p_multiaddr_count(const lp2p_multiaddr *ma);
/* i-th component: protocol code and raw value bytes (pointer into ma). */
LP2P_EXTERN int lp2p_multiaddr_component(const lp2p_multiaddr *ma, size_t i, uint32_t *code, const uint8_t **value,
                                         size_t *vlen);
/* Protocol name for a code ("ip4"), or NULL if unknown. */
LP2P_EXTERN const char *lp2p_multiaddr_protocol_name(uint32_t code);

/* New multiaddr of components [0, n) of ma (e.g. strip a trailing /p2p). */
LP2P_EXTERN int lp2p_multiaddr_prefix(lp2p_multiaddr **out, const lp2p_multiaddr *ma, size_t n);
/* New multiaddr a ++ b. */
LP2P_EXTERN int lp2p_multiaddr_concat(lp2p_multiaddr **out, const lp2p_multiaddr *a, const lp2p_multiaddr *b);

#ifdef __cplusplus
}
#endif
#endif
