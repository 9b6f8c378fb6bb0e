/* noise/noise_int.h - internals of the Noise engine (not installed, not exported).
 *
 *  symmetric.c  CipherState / SymmetricState / HKDF (Noise spec §5.1, §5.2)
 *  handshake.c  the raw XX pattern (§5.3, §7.5) with arbitrary payloads and prologue
 *  payload.c    the libp2p NoiseHandshakePayload: build (sign) and check (verify, muxers)
 *  identity.c   lp2p_noise_identity: static key + signed payload fields, made once per node
 *  session.c    lp2p_noise: framing, handshake driving, buffers
 *  transport.c  transport frames (write / seal / open / plaintext)
 *
 * Everything here works on caller-provided memory except where a lp2p_mem is passed. */
#ifndef LP2P_NOISE_INT_H
#define LP2P_NOISE_INT_H
#include <stdint.h>

#include "core/mem.h"
#include "lp2p/noise.h"

#define LP2P__NOISE_DHLEN 32
#define LP2P__NOISE_HASHLEN 32
#define LP2P__NOISE_KEYLEN 32
#define LP2P__NOISE_PROTOCOL_NAME "Noise_XX_25519_ChaChaPoly_SHA256"

/* ---- symmetric.c ---- */
typedef struct lp2p__noise_cipher {
  uint8_t k[LP2P__NOISE_KEYLEN];
  uint64_t n;  /* next nonce; UINT64_MAX is reserved (never used) */
  int has_key;
} lp2p__noise_cipher;

typedef struct lp2p__noise_sym {
  lp2p__noise_cipher cs;
  uint8_t ck[LP2P__NOISE_HASHLEN];
  uint8_t h[LP2P__NOISE_HASHLEN];
} lp2p__noise_sym;

/* Noise HKDF with two outputs (HMAC-SHA256 via libtomcrypt). ikm may be empty. Returns 0 or
 * LP2P_ERR_NOMEM / LP2P_ERR_INTERNAL. */
int lp2p__noise_hkdf2(const uint8_t ck[32], const uint8_t *ikm, size_t ikm_len, uint8_t out1[32],
                      uint8_t out2[32]);

void lp2p__noise_cipher_init(lp2p__noise_cipher *c, const uint8_t k[32]);
/* ENC(k, n++, ad, pt) into out (pt_len + 16 bytes; out may equal pt). Without a key, copies.
 * LP2P_ERR_NONCE_EXHAUSTED when n reached 2^64-1. */
int lp2p__noise_cipher_encrypt(lp2p__noise_cipher *c, const uint8_t *ad, size_t ad_len, const uint8_t *pt,
                               size_t pt_len, uint8_t *out);
/* DEC(k, n++, ad, ct) into out (ct_len - 16 bytes; out may equal ct). LP2P_ERR_DECRYPT on a bad
 * tag or ct_len < 16 (the nonce is not advanced then), LP2P_ERR_NONCE_EXHAUSTED. */
int lp2p__noise_cipher_decrypt(lp2p__noise_cipher *c, const uint8_t *ad, size_t ad_len, const uint8_t *ct,
                               size_t ct_len, uint8_t *out);
void lp2p__noise_cipher_wipe(lp2p__noise_cipher *c);

/* name must be <= 32 bytes here (padded with zeros, as the spec says). */
void lp2p__noise_sym_init(lp2p__noise_sym *s, const char *protocol_name);
void lp2p__noise_sym_mix_hash(lp2p__noise_sym *s, const uint8_t *data, size_t len);
int lp2p__noise_sym_mix_key(lp2p__noise_sym *s, const uint8_t *ikm, size_t len);
/* out gets len (+16 once a key is set) bytes; out may equal pt. */
int lp2p__noise_sym_encrypt_and_hash(lp2p__noise_sym *s, const uint8_t *pt, size_t len, uint8_t *out,
                                     size_t *out_len);
/* out gets len (-16 once a key is set) bytes; out may equal ct. */
int lp2p__noise_sym_decrypt_and_hash(lp2p__noise_sym *s, const uint8_t *ct, size_t len, uint8_t *out,
                                     size_t *out_len);
int lp2p__noise_sym_split(const lp2p__noise_sym *s, lp2p__noise_cipher *c1, lp2p__noise_cipher *c2);
void lp2p__noise_sym_wipe(lp2p__noise_sym *s);

/* ---- handshake.c: the XX pattern ---- */
typedef struct lp2p__noise_hs {
  lp2p__noise_sym sym;
  int initiator;
  int step; /* index of the next message (0..2); 3 = done */
  uint8_t s_priv[32], s_pub[32];
  uint8_t e_priv[32], e_pub[32];
  uint8_t rs[32], re[32];
} lp2p__noise_hs;

/* Overhead of handshake message i (0..2) beyond its payload. */
size_t lp2p__noise_hs_overhead(int msg_index);
/* Where lp2p__noise_hs_write puts the (encrypted) payload of message i in its output: 32, 80, 48. */
size_t lp2p__noise_hs_payload_offset(int msg_index);
/* s_priv / e_priv: 32-byte X25519 private keys, or NULL for fresh random keys. The prologue is
 * mixed into h (empty for libp2p). Returns 0 or LP2P_ERR_INTERNAL (bad fixed key). */
int lp2p__noise_hs_init(lp2p__noise_hs *hs, int initiator, const uint8_t *prologue, size_t prologue_len,
                        const uint8_t *s_priv, const uint8_t *e_priv);
/* The same with a ready static keypair (copied; s_pub = X25519 base point times s_priv): no
 * static key generation. s_priv / s_pub may be NULL: set them with lp2p__noise_hs_set_static
 * before the message that sends s (msg2 for the responder, msg3 for the initiator). */
int lp2p__noise_hs_init_keys(lp2p__noise_hs *hs, int initiator, const uint8_t *prologue, size_t prologue_len,
                             const uint8_t *s_priv, const uint8_t *s_pub, const uint8_t *e_priv);
void lp2p__noise_hs_set_static(lp2p__noise_hs *hs, const uint8_t s_priv[32], const uint8_t s_pub[32]);
/* Writes the next message (our turn) into out (cap bytes); *out_len = payload_len + overhead.
 * The payload may already sit at out + lp2p__noise_hs_payload_offset(step) (it is then
 * encrypted in place); otherwise it must not overlap out.
 * LP2P_ERR_STATE if it is not our turn, LP2P_ERR_BUFSIZE if cap is too small. */
int lp2p__noise_hs_write(lp2p__noise_hs *hs, const uint8_t *payload, size_t payload_len, uint8_t *out, size_t cap,
                         size_t *out_len);
/* Reads the next message (their turn); the payload goes to payload_out (cap >= len - overhead;
 * may not overlap msg). LP2P_ERR_HANDSHAKE for a message shorter than the overhead or an
 * invalid DH result, LP2P_ERR_DECRYPT for a bad tag. */
int lp2p__noise_hs_read(lp2p__noise_hs *hs, const uint8_t *msg, size_t len, uint8_t *payload_out, size_t cap,
                        size_t *payload_len);
/* After message 3: c1 = initiator->responder, c2 = responder->initiator. */
int lp2p__noise_hs_split(const lp2p__noise_hs *hs, lp2p__noise_cipher *c1, lp2p__noise_cipher *c2);
/* Drops the ephemeral and static private keys (keeps h for debugging / tests). */
void lp2p__noise_hs_wipe_keys(lp2p__noise_hs *hs);
void lp2p__noise_hs_wipe(lp2p__noise_hs *hs);

/* ---- payload.c ---- */
#define LP2P__NOISE_SIG_PREFIX "noise-libp2p-static-key:"
#define LP2P__NOISE_SIG_PREFIX_LEN 24

/* Encodes our NoiseHandshakePayload into a buffer allocated with m (*out, caller frees with m). */
int lp2p__noise_payload_build(const lp2p_mem *m, const lp2p_privkey *identity, const uint8_t static_pub[32],
                              const char *const *muxers, size_t n_muxers, uint8_t **out, size_t *out_len);
/* The same in two parts, whose concatenation is the payload above (protobuf-c packs fields in
 * field-number order): fields 1 and 2 (identity key + signature over static_pub), made once per
 * static key, and field 4 (the stream_muxers extension; 0 bytes without muxers), per session.
 * id_fields: *len = bytes needed; written only when cap suffices (else LP2P_ERR_BUFSIZE). */
#define LP2P__NOISE_ID_FIELDS_MAX (LP2P_PUBKEY_PB_MAX + LP2P_SIGNATURE_MAX + 6) /* 2 x (tag + 2-byte len) */
int lp2p__noise_payload_id_fields(const lp2p_privkey *identity, const uint8_t static_pub[32], uint8_t *out,
                                  size_t cap, size_t *len);
size_t lp2p__noise_payload_ext_size(const char *const *muxers, size_t n_muxers);
/* Writes exactly lp2p__noise_payload_ext_size() bytes to out. */
void lp2p__noise_payload_ext_pack(const char *const *muxers, size_t n_muxers, uint8_t *out);

typedef struct lp2p__noise_remote {
  lp2p_pubkey *key; /* owned by the caller on success */
  lp2p_peer_id id;
  int muxer_index;  /* index into the local muxer list, or -1 (multistream-select) */
} lp2p__noise_remote;

/* Decodes and checks the remote payload (rs = the static key this handshake decrypted):
 * key parse, signature, peer id, expected peer, self-connection, muxer selection (initiator's
 * order). On error nothing is returned to free. */
int lp2p__noise_payload_check(const lp2p_mem *m, const uint8_t *payload, size_t len, const uint8_t rs[32],
                              int we_initiate, const lp2p_peer_id *expected, const lp2p_peer_id *self,
                              const char *const *muxers, size_t n_muxers, lp2p__noise_remote *out);

/* ---- identity.c ---- */
struct lp2p_noise_identity {
  lp2p_mem mem;
  uint8_t s_priv[32], s_pub[32]; /* the X25519 static keypair */
  lp2p_peer_id self_id;          /* peer id of the identity key (self-connection check) */
  size_t fields_len;
  uint8_t fields[];              /* NoiseHandshakePayload fields 1 and 2 (key, signature) */
};

/* lp2p_noise_identity_new with a fixed static private key (NULL = random). */
int lp2p__noise_identity_new_ex(lp2p_noise_identity **out, const lp2p_privkey *identity, const uint8_t *static_priv,
                                const lp2p_mem *mem);

/* ---- session ---- */
typedef struct lp2p__noise_buf {
  lp2p_bytes b; /* data[off .. len) is pending */
  size_t off;
} lp2p__noise_buf;

/* Reserve room for n more bytes at the end (compacting first); returns a pointer to write at or
 * NULL on allocation failure. Commit with buf->b.len += n. */
uint8_t *lp2p__noise_buf_reserve(const lp2p_mem *m, lp2p__noise_buf *buf, size_t n);
void lp2p__noise_buf_consume(lp2p__noise_buf *buf, size_t n);
static inline size_t lp2p__noise_buf_pending(const lp2p__noise_buf *buf) { return buf->b.len - buf->off; }
void lp2p__noise_buf_free(const lp2p_mem *m, lp2p__noise_buf *buf);

enum lp2p__noise_state {
  LP2P__NOISE_WAIT_MSG1 = 1, /* responder */
  LP2P__NOISE_WAIT_MSG2,     /* initiator, msg1 queued */
  LP2P__NOISE_WAIT_MSG3,     /* responder, msg2 queued */
  LP2P__NOISE_DONE,
};

/* Everything only the handshake needs; allocated by lp2p_noise_new, wiped and freed as soon as
 * the handshake completes or fails. */
typedef struct lp2p__noise_handshake {
  lp2p__noise_hs hs;
  /* cfg->noise_identity, or own_id once made. Without a noise_identity the per-session static key
   * and signature are made only when our payload message is due (nothing is signed for a peer that
   * never sends msg1). */
  const lp2p_noise_identity *id;
  lp2p_noise_identity *own_id;
  const lp2p_privkey *identity;  /* cfg->identity, for own_id */
  uint8_t fixed_s[32];           /* test hook: fixed per-session static key */
  int has_fixed_s;
  lp2p_peer_id self_id;          /* our peer id (self-connection check) */
  lp2p_peer_id expected;
  int has_expected;
  int muxer_index;               /* result of the remote payload check, -1 = multistream */
  size_t n_muxers;
  char *muxers[LP2P_NOISE_MAX_MUXERS]; /* copies of cfg->muxers */
} lp2p__noise_handshake;

struct lp2p_noise {
  lp2p_mem mem;
  lp2p__noise_cipher tx, rx;
  lp2p__noise_handshake *hs; /* NULL once the handshake is over (done or failed) */
  lp2p_pubkey *remote_key;
  char *muxer;               /* agreed muxer (moved out of hs->muxers) or NULL */
  int err;                   /* terminal error or 0 */
  uint8_t initiator;
  uint8_t state;
  uint8_t release_out;       /* free the handshake's output buffer once it drains */
  /* framing of received bytes */
  uint8_t hdr[2];
  uint8_t hdr_len;           /* 0..2 bytes of the length prefix received */
  uint32_t body_len;         /* announced body length (valid when hdr_len == 2) */
  lp2p_bytes partial;        /* body bytes received so far (len < body_len) */
  lp2p__noise_buf out;       /* wire bytes to send */
  lp2p__noise_buf pt;        /* decrypted plaintext for the caller */
  lp2p_peer_id remote_id;
  uint8_t h[LP2P__NOISE_HASHLEN]; /* final handshake hash */
};

/* transport.c: decrypts one complete frame body into n->pt. */
int lp2p__noise_transport_recv(lp2p_noise *n, const uint8_t *body, size_t len);
/* Marks the session dead with err (returns err). */
int lp2p__noise_fail(lp2p_noise *n, int err);

/* ---- test hooks (deterministic vectors, fuzzing) ---- */
typedef struct lp2p__noise_test_params {
  const uint8_t *static_priv;    /* 32 bytes, or NULL = random */
  const uint8_t *ephemeral_priv; /* 32 bytes, or NULL = random */
  const uint8_t *prologue;       /* default: empty */
  size_t prologue_len;
} lp2p__noise_test_params;

/* lp2p_noise_new with fixed keys / prologue (tp may be NULL). static_priv cannot be combined with
 * cfg->noise_identity (LP2P_ERR_INVAL). */
int lp2p__noise_new_ex(lp2p_noise **out, const lp2p_noise_config *cfg, const lp2p_mem *mem,
                       const lp2p__noise_test_params *tp);
/* Handshake hash h (32 bytes; final after the handshake, zero after a failed one). */
const uint8_t *lp2p__noise_handshake_hash(const lp2p_noise *n);
/* Force the transport nonces (tests of nonce exhaustion). */
void lp2p__noise_set_nonces(lp2p_noise *n, uint64_t tx_nonce, uint64_t rx_nonce);
/* The transport keys (tests): send and receive. */
void lp2p__noise_transport_keys(const lp2p_noise *n, uint8_t tx[32], uint8_t rx[32]);

#endif
