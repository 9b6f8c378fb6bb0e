/* core/multiaddr_int.h - the multiaddr protocol table and per-protocol value
 * codecs (text <-> binary), shared by core/multiaddr.c. No allocation. */
#ifndef LP2P_CORE_MULTIADDR_INT_H
#define LP2P_CORE_MULTIADDR_INT_H
#include "lp2p/multiaddr.h"

typedef enum lp2p__ma_kind {
  LP2P__MA_NONE,     /* no value */
  LP2P__MA_IP4,      /* 4 bytes */
  LP2P__MA_IP6,      /* 16 bytes */
  LP2P__MA_PORT,     /* 2 bytes, big-endian */
  LP2P__MA_NAME,     /* variable: non-empty UTF-8 without '/' or control characters */
  LP2P__MA_P2P,      /* variable: peer-id multihash; text base58btc (or CIDv1 on input) */
  LP2P__MA_CERTHASH, /* variable: multihash; text multibase (printed base64url 'u') */
  LP2P__MA_U64,      /* 8 bytes, big-endian; text decimal */
} lp2p__ma_kind;

typedef struct lp2p__ma_proto {
  uint32_t code;
  const char *name;
  int size; /* value bytes, or -1 for a uvarint length prefix + bytes */
  lp2p__ma_kind kind;
} lp2p__ma_proto;

/* Largest identity-multihash payload accepted as a peer id (libp2p peer-id spec:
 * keys whose protobuf encoding is longer than 42 bytes are hashed with sha2-256). */
#define LP2P__MA_MAX_IDENTITY_PEER 42

/* Table lookups; NULL if unknown. by_name also maps the legacy "ipfs" to p2p. */
const lp2p__ma_proto *lp2p__ma_proto_by_code(uint64_t code);
const lp2p__ma_proto *lp2p__ma_proto_by_name(const char *name, size_t len);

/* Validate a binary value of protocol p (its length already matches p->size
 * for fixed-size protocols). 0 or LP2P_ERR_MULTIADDR with a message in err. */
int lp2p__ma_value_check(const lp2p__ma_proto *p, const uint8_t *v, size_t len, char *err, size_t errcap);

/* Convert the text value s[0..len) of protocol p (p->size != 0) into binary
 * (without the length prefix). 0, LP2P_ERR_MULTIADDR (message in err) or
 * LP2P_ERR_MULTIADDR with a size message when it exceeds cap. */
int lp2p__ma_value_from_text(const lp2p__ma_proto *p, const char *s, size_t len, uint8_t *out, size_t cap,
                             size_t *outlen, char *err, size_t errcap);

/* Append the text form of a validated binary value to buf[*pos..cap) (no NUL).
 * LP2P_ERR_BUFSIZE if it does not fit (*pos then unspecified). */
int lp2p__ma_value_to_text(const lp2p__ma_proto *p, const uint8_t *v, size_t len, char *buf, size_t cap,
                           size_t *pos);

/* Format a one-line error message into err (if err && errcap). Values quoted
 * with lp2p__ma_quote are shortened and made printable. */
void lp2p__ma_err(char *err, size_t errcap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Copies a printable, length-limited rendition of s[0..n) into q (NUL-terminated). */
#define LP2P__MA_QUOTE_MAX 64
void lp2p__ma_quote(char q[LP2P__MA_QUOTE_MAX + 4], const char *s, size_t n);

#endif
