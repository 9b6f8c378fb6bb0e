/* lp2p/encoding.h - the multiformats encodings lp2p uses: unsigned varint,
 * base58btc, base32 (RFC 4648 lower case, no padding), multibase ('z', 'b'),
 * multihash (identity, sha2-256) and CIDv1.
 *
 * All functions are pure: no allocation, no global state. Output goes to a
 * caller buffer of stated capacity; LP2P_ERR_BUFSIZE when it does not fit (the
 * buffer contents are then unspecified). Text outputs are NUL-terminated and
 * the returned/stored length excludes the NUL. */
#ifndef LP2P_ENCODING_H
#define LP2P_ENCODING_H
#include "lp2p/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- unsigned varint (multiformats/unsigned-varint: at most 9 bytes, 63 bits,
 * minimal encoding required) ---- */
#define LP2P_UVARINT_MAX_LEN 9
/* Encodes v (must be < 2^63) into out; returns bytes written (1..9) or
 * LP2P_ERR_BUFSIZE / LP2P_ERR_INVAL. */
LP2P_EXTERN int lp2p_uvarint_encode(uint64_t v, uint8_t *out, size_t cap);
/* Bytes needed to encode v. */
LP2P_EXTERN size_t lp2p_uvarint_size(uint64_t v);
/* Decodes one varint from in[0..len). Returns bytes consumed (>0), or
 * LP2P_ERR_AGAIN if in is a valid but incomplete prefix (len < 9 and every byte
 * has the continuation bit), or LP2P_ERR_VARINT for an overlong (non-minimal)
 * encoding or one longer than 9 bytes. */
LP2P_EXTERN int lp2p_uvarint_decode(const uint8_t *in, size_t len, uint64_t *v);

/* ---- base58btc (Bitcoin alphabet) ---- */
/* Writes NUL-terminated text; *outlen = text length. */
LP2P_EXTERN int lp2p_base58_encode(const uint8_t *in, size_t len, char *out, size_t cap, size_t *outlen);
/* Decodes text[0..len) (no NUL needed). LP2P_ERR_PARSE on a character outside
 * the alphabet. */
LP2P_EXTERN int lp2p_base58_decode(const char *text, size_t len, uint8_t *out, size_t cap, size_t *outlen);

/* ---- base32 (RFC 4648 alphabet, lower case, no padding) ---- */
LP2P_EXTERN int lp2p_base32_encode(const uint8_t *in, size_t len, char *out, size_t cap, size_t *outlen);
/* Accepts lower or upper case; rejects padding, bad characters and non-zero
 * trailing bits (LP2P_ERR_PARSE). */
LP2P_EXTERN int lp2p_base32_decode(const char *text, size_t len, uint8_t *out, size_t cap, size_t *outlen);

/* ---- multibase: 'z' = base58btc, 'b' = base32 lower. ---- */
LP2P_EXTERN int lp2p_multibase_encode(char prefix, const uint8_t *in, size_t len, char *out, size_t cap,
                                      size_t *outlen);
/* LP2P_ERR_MULTIBASE for an unknown prefix or bad payload. */
LP2P_EXTERN int lp2p_multibase_decode(const char *text, size_t len, uint8_t *out, size_t cap, size_t *outlen);

/* ---- multihash ---- */
#define LP2P_MH_IDENTITY 0x00
#define LP2P_MH_SHA2_256 0x12
#define LP2P_MH_MAX_DIGEST 128 /* largest digest we accept when parsing */
typedef struct lp2p_multihash_view {
  uint64_t code;          /* hash function code */
  const uint8_t *digest;  /* points into the parsed buffer */
  size_t digest_len;
} lp2p_multihash_view;
/* Parses a whole multihash: in[0..len) must be exactly one multihash.
 * Supported codes: identity and sha2-256 (digest length 32). */
LP2P_EXTERN int lp2p_multihash_parse(const uint8_t *in, size_t len, lp2p_multihash_view *out);
/* Writes code || len || digest. Returns bytes written or error. */
LP2P_EXTERN int lp2p_multihash_encode(uint64_t code, const uint8_t *digest, size_t dlen, uint8_t *out, size_t cap);
/* sha2-256 multihash of data (34 bytes). Returns 34 or error. */
LP2P_EXTERN int lp2p_multihash_sha256(const uint8_t *data, size_t len, uint8_t *out, size_t cap);

/* ---- CIDv1 ---- */
#define LP2P_CODEC_LIBP2P_KEY 0x72
/* Binary CIDv1: 0x01 || codec varint || multihash. Returns bytes written. */
LP2P_EXTERN int lp2p_cid_encode(uint64_t codec, const uint8_t *mh, size_t mhlen, uint8_t *out, size_t cap);
/* Parses a binary CIDv1; *mh points into in. LP2P_ERR_CID if not version 1. */
LP2P_EXTERN int lp2p_cid_decode(const uint8_t *in, size_t len, uint64_t *codec, const uint8_t **mh, size_t *mhlen);

/* Lower-case hex helpers (tests, logs, CLI). hex_decode accepts both cases. */
LP2P_EXTERN int lp2p_hex_encode(const uint8_t *in, size_t len, char *out, size_t cap);
LP2P_EXTERN int lp2p_hex_decode(const char *hex, size_t len, uint8_t *out, size_t cap, size_t *outlen);

#ifdef __cplusplus
}
#endif
#endif
