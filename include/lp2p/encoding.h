/* lp2p/encoding.h - the multiformats encodings lp2p uses: unsigned varint,
 * base58btc, base32 (RFC 4648 lower case, no padding), multibase ('z', 'b'
 * and a few more), multihash (identity, sha2-256), SHA-256, CIDv1 and hex.
 *
 * All functions are pure: no allocation, no global state, thread-safe. Output
 * goes to a caller buffer of stated capacity; LP2P_ERR_BUFSIZE when it does
 * not fit (the buffer contents are then unspecified). Text outputs are
 * NUL-terminated and the returned/stored length excludes the NUL. Functions
 * with an `outlen` parameter return LP2P_OK and store the length there
 * (outlen may be NULL); the others return the length. Inputs are never
 * modified and must not overlap the output, except that the multihash/CID
 * encoders accept a digest/multihash already at its final place in out. */
#ifndef LP2P_ENCODING_H
#define LP2P_ENCODING_H
#include "lp2p/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- unsigned varint (multiformats/unsigned-varint: at most 9 bytes, 63 bits,
 * minimal encoding required) ---- */
#define LP2P_UVARINT_MAX_LEN 9
/* Encodes v (must be < 2^63, else LP2P_ERR_INVAL) into out; returns bytes
 * written (1..9) or LP2P_ERR_BUFSIZE. */
LP2P_EXTERN int lp2p_uvarint_encode(uint64_t v, uint8_t *out, size_t cap);
/* Bytes needed to encode v (v < 2^63). */
LP2P_EXTERN size_t lp2p_uvarint_size(uint64_t v);
/* Decodes one varint from in[0..len). Returns bytes consumed (>0), or
 * LP2P_ERR_AGAIN if in is a valid but incomplete prefix (len < 9 and every byte
 * has the continuation bit), or LP2P_ERR_VARINT for an overlong (non-minimal)
 * encoding or one longer than 9 bytes. Only the varint is read: bytes after it
 * are ignored. v may be NULL (just measure). */
LP2P_EXTERN int lp2p_uvarint_decode(const uint8_t *in, size_t len, uint64_t *v);

/* ---- base58btc (Bitcoin alphabet; each leading 0x00 byte <-> a leading '1') ---- */
/* Writes NUL-terminated text; *outlen = text length. Needs at most
 * len * 138 / 100 + 2 bytes of cap. Quadratic time: keep inputs small. */
LP2P_EXTERN int lp2p_base58_encode(const uint8_t *in, size_t len, char *out, size_t cap, size_t *outlen);
/* Decodes text[0..len) (no NUL needed; empty text gives 0 bytes). LP2P_ERR_PARSE
 * on a character outside the alphabet. Work stops as soon as the output
 * would exceed cap, so a small cap bounds the cost of hostile input. */
LP2P_EXTERN int lp2p_base58_decode(const char *text, size_t len, uint8_t *out, size_t cap, size_t *outlen);

/* ---- base32 (RFC 4648 alphabet, lower case, no padding) ---- */
/* Writes ceil(len * 8 / 5) characters + NUL. */
LP2P_EXTERN int lp2p_base32_encode(const uint8_t *in, size_t len, char *out, size_t cap, size_t *outlen);
/* Accepts lower or upper case; rejects padding, bad characters and non-zero
 * trailing bits (LP2P_ERR_PARSE). */
LP2P_EXTERN int lp2p_base32_decode(const char *text, size_t len, uint8_t *out, size_t cap, size_t *outlen);

/* ---- multibase ----
 * 'z' base58btc, 'b' base32 lower, 'B' base32 upper, 'u' base64url (no
 * padding), 'f' base16 lower. Encode writes prefix + text + NUL; an
 * unsupported prefix gives LP2P_ERR_INVAL. */
LP2P_EXTERN int lp2p_multibase_encode(char prefix, const uint8_t *in, size_t len, char *out, size_t cap,
                                      size_t *outlen);
/* Decode accepts the prefixes above plus 'F' (base16 upper); 'b'/'B' accept
 * either case. LP2P_ERR_MULTIBASE for empty text, an unknown prefix or a bad
 * payload; LP2P_ERR_BUFSIZE if the bytes do not fit. */
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
 * Supported codes: identity (digest <= LP2P_MH_MAX_DIGEST bytes) and sha2-256
 * (digest length 32); anything else is LP2P_ERR_MULTIHASH. out may be NULL
 * (validate only); out->digest points into in. */
LP2P_EXTERN int lp2p_multihash_parse(const uint8_t *in, size_t len, lp2p_multihash_view *out);
/* Writes code || len || digest for any code < 2^63 (sha2-256 requires a
 * 32-byte digest: LP2P_ERR_INVAL). Returns bytes written or error. */
LP2P_EXTERN int lp2p_multihash_encode(uint64_t code, const uint8_t *digest, size_t dlen, uint8_t *out, size_t cap);
/* sha2-256 multihash of data (34 bytes). Returns 34 or error. */
LP2P_EXTERN int lp2p_multihash_sha256(const uint8_t *data, size_t len, uint8_t *out, size_t cap);

/* ---- SHA-256 (FIPS 180-4; libsodium) ---- */
#define LP2P_SHA256_LEN 32
/* out[0..32) = SHA-256 of data[0..len) (data may be NULL when len is 0). */
LP2P_EXTERN void lp2p_sha256(const uint8_t *data, size_t len, uint8_t out[LP2P_SHA256_LEN]);

/* ---- CIDv1 ---- */
#define LP2P_CODEC_LIBP2P_KEY 0x72
/* Binary CIDv1: 0x01 || codec varint || multihash. Returns bytes written;
 * LP2P_ERR_MULTIHASH if mh is not a valid (supported) multihash. */
LP2P_EXTERN int lp2p_cid_encode(uint64_t codec, const uint8_t *mh, size_t mhlen, uint8_t *out, size_t cap);
/* Parses a whole binary CIDv1; *mh points into in (out pointers may be NULL).
 * LP2P_ERR_CID if the version is not 1 (a CIDv0 / bare multihash starts with
 * 0x12) or a varint is bad; LP2P_ERR_MULTIHASH if the rest is not exactly one
 * valid multihash. The codec is not checked. */
LP2P_EXTERN int lp2p_cid_decode(const uint8_t *in, size_t len, uint64_t *codec, const uint8_t **mh, size_t *mhlen);

/* Lower-case hex helpers (tests, logs, CLI). hex_encode returns the text
 * length (2 * len; needs 2 * len + 1 bytes of cap). hex_decode accepts both
 * cases; LP2P_ERR_PARSE on odd length or a non-hex character. */
LP2P_EXTERN int lp2p_hex_encode(const uint8_t *in, size_t len, char *out, size_t cap);
LP2P_EXTERN int lp2p_hex_decode(const char *hex, size_t len, uint8_t *out, size_t cap, size_t *outlen);

#ifdef __cplusplus
}
#endif
#endif
