/* lp2p/noise.h - the libp2p Noise security handshake (`/noise`,
 * Noise_XX_25519_ChaChaPoly_SHA256) as a sans-IO engine.
 *
 * The engine never touches a socket: the caller feeds it received wire bytes
 * (lp2p_noise_feed) and sends whatever lp2p_noise_output hands out. The
 * initiator's first message is ready in the output right after lp2p_noise_new.
 *
 * Handshake (empty prologue): msg1 `-> e` with an empty payload (exactly 32
 * bytes), msg2 `<- e, ee, s, es` + the responder's NoiseHandshakePayload,
 * msg3 `-> s, se` + the initiator's payload. A payload carries the identity
 * public key (libp2p PublicKey protobuf), the signature of
 * "noise-libp2p-static-key:" || static X25519 public key, and optionally the
 * stream_muxers extension. The X25519 static key is fresh for every session
 * (generated and signed when the session's own payload message is due: msg2
 * for the responder, msg3 for the initiator), unless the session borrows a
 * per-node lp2p_noise_identity (static key and signature made once, as
 * js-libp2p and go-libp2p do): that saves one X25519 key generation and one
 * signature per handshake.
 * The remote identity is verified (every key type keys.h supports), the remote
 * peer id is derived from it and compared with cfg->expected_remote.
 *
 * Transport: frames of u16 big-endian length || ciphertext || 16-byte tag,
 * at most 65535 bytes, i.e. at most LP2P_NOISE_MAX_PLAINTEXT (65519) bytes of
 * plaintext each. Long writes are split. Noise is a byte stream above this:
 * frame boundaries carry no meaning.
 *
 * Errors returned by feed/write/seal/open are terminal for the session (every
 * later call returns the same error; only lp2p_noise_free is useful), except
 * LP2P_ERR_INVAL / LP2P_ERR_STATE for API misuse, which leave it untouched.
 *
 * Memory: the engine's allocations (session, buffers, protobuf decoding) go through the lp2p_mem
 * given to lp2p_noise_new; the remote lp2p_pubkey comes from keys.h (libc) and libtomcrypt's HMAC
 * uses libc internally. Input buffering is bounded: at most one partial frame (<= 65537 bytes) is
 * held; decrypted plaintext waiting for the caller is bounded by
 * LP2P_NOISE_MAX_PENDING_PLAINTEXT (+ one frame), after which feed stops
 * consuming until the caller drains lp2p_noise_plaintext. Once the handshake is
 * over (done or failed) its state is wiped and freed at once (ephemeral and
 * per-session static keys, symmetric state, muxer list, the buffer of a split
 * handshake message; the output buffer that carried the handshake messages when
 * it drains): an established session keeps the two cipher states, the remote
 * peer id and key, the agreed muxer, the handshake hash and the transport
 * buffers it actually uses. Secrets are wiped on free. Not thread-safe: one
 * session is used by one thread at a time (a shared lp2p_noise_identity is
 * only read, see below). */
#ifndef LP2P_NOISE_H
#define LP2P_NOISE_H
#include "lp2p/common.h"
#include "lp2p/keys.h"
#include "lp2p/peerid.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_NOISE_PROTOCOL_ID "/noise"
#define LP2P_NOISE_MAX_FRAME 65535u                        /* noise message incl. tag, without prefix */
#define LP2P_NOISE_TAG_LEN 16u
#define LP2P_NOISE_MAX_PLAINTEXT (LP2P_NOISE_MAX_FRAME - LP2P_NOISE_TAG_LEN) /* 65519 */
#define LP2P_NOISE_FRAME_OVERHEAD (2u + LP2P_NOISE_TAG_LEN) /* prefix + tag = 18 */
/* feed stops decrypting while this much plaintext waits for the caller. */
#define LP2P_NOISE_MAX_PENDING_PLAINTEXT (256u * 1024u)
/* Local muxer list limits (lp2p_noise_new returns LP2P_ERR_INVAL beyond them) and the
 * longest remote list accepted (a longer one fails the handshake). */
#define LP2P_NOISE_MAX_MUXERS 16u
#define LP2P_NOISE_MAX_MUXER_LEN 256u
#define LP2P_NOISE_MAX_REMOTE_MUXERS 100u

typedef struct lp2p_noise lp2p_noise;

/* ---- per-node static identity (optional, recommended for anything that handles many
 * connections) ----
 * Made once from the identity key: a fresh X25519 static keypair, the identity public key
 * (libp2p PublicKey protobuf) and the identity's signature of "noise-libp2p-static-key:" ||
 * static public key, already encoded as the payload's key and signature fields. Sessions that
 * borrow it (lp2p_noise_config.noise_identity) neither generate a static key nor sign.
 * Ownership: the caller owns it (lp2p_noise_identity_free) and it must outlive every session
 * that borrows it. The identity key is only read during lp2p_noise_identity_new (not retained).
 * Thread-safety: immutable after creation; any number of sessions, on any threads, may borrow
 * and read it at the same time without locking (only _free must not race with them).
 * The static private key stays in memory for the object's lifetime and is wiped on free. */
typedef struct lp2p_noise_identity lp2p_noise_identity;

/* Returns 0, LP2P_ERR_INVAL (NULL out or identity), LP2P_ERR_NOMEM or LP2P_ERR_INTERNAL (the
 * key cannot sign). Allocates through mem (NULL = libc; copied). */
LP2P_EXTERN int lp2p_noise_identity_new(lp2p_noise_identity **out, const lp2p_privkey *identity,
                                        const lp2p_mem *mem);
/* Wipes the static key and frees. NULL is fine. */
LP2P_EXTERN void lp2p_noise_identity_free(lp2p_noise_identity *id);

typedef struct lp2p_noise_config {
  size_t struct_size;                  /* sizeof(lp2p_noise_config) */
  int initiator;                       /* 1 = we dialed (send msg1 and msg3) */
  /* borrowed; must outlive the session. May be NULL when noise_identity is given; when both are
   * given they must be the same key (LP2P_ERR_INVAL otherwise). */
  const lp2p_privkey *identity;
  const lp2p_peer_id *expected_remote; /* optional (copied); mismatch => LP2P_ERR_PEER_ID_MISMATCH */
  /* stream_muxers extension for early muxer negotiation, in order of preference; the strings are
   * copied. 0 = don't send the extension (always fall back to multistream-select). */
  const char *const *muxers;
  size_t n_muxers;
  /* Optional (NULL = a fresh static key and signature per session, as before): the node's static
   * key and signed payload fields (lp2p_noise_identity_new), borrowed; must outlive the session.
   * Appended field: callers built against the older, shorter struct (struct_size up to
   * expected_remote..n_muxers) are still accepted and get NULL here. */
  const lp2p_noise_identity *noise_identity;
} lp2p_noise_config;

/* Creates a session. The initiator's msg1 is queued in the output at once.
 * LP2P_ERR_INVAL: bad config (no identity at all, identity and noise_identity of different keys,
 * muxer list beyond the limits above, struct_size too small).
 * Caller owns *out (lp2p_noise_free). */
LP2P_EXTERN int lp2p_noise_new(lp2p_noise **out, const lp2p_noise_config *cfg, const lp2p_mem *mem);
/* Wipes keys and buffers and frees. NULL is fine. */
LP2P_EXTERN void lp2p_noise_free(lp2p_noise *n);

/* Feeds received wire bytes (handshake messages or transport frames). Returns bytes consumed
 * (0..len) or a terminal error.
 *  - During the handshake it consumes up to the end of the last handshake message it needs
 *    (msg2 for the initiator, msg3 for the responder) and stops there: the remaining bytes are
 *    transport frames, to be fed again once lp2p_noise_handshake_done() is 1.
 *  - After the handshake it decrypts frames into the internal plaintext buffer. It stops
 *    early (returns < len) when LP2P_NOISE_MAX_PENDING_PLAINTEXT bytes are waiting: drain
 *    lp2p_noise_plaintext, then feed the rest again.
 * A partial frame is buffered internally (those bytes count as consumed).
 * Errors: LP2P_ERR_HANDSHAKE (wrong message size, malformed payload or key, self-connection,
 * no common muxer), LP2P_ERR_SIGNATURE, LP2P_ERR_PEER_ID_MISMATCH, LP2P_ERR_DECRYPT
 * (authentication failure, frame shorter than a tag), LP2P_ERR_NONCE_EXHAUSTED, LP2P_ERR_NOMEM. */
LP2P_EXTERN int64_t lp2p_noise_feed(lp2p_noise *n, const uint8_t *in, size_t len);

/* Wire bytes waiting to be sent. *out stays valid until the next non-const call on n. */
LP2P_EXTERN size_t lp2p_noise_output(lp2p_noise *n, const uint8_t **out);
/* The caller has sent the first k bytes of the output (k <= pending). */
LP2P_EXTERN void lp2p_noise_output_consumed(lp2p_noise *n, size_t k);

/* 1 once the handshake has completed (initiator: msg2 verified and msg3 queued; responder:
 * msg3 verified), and it stays 1 after a later transport error (see lp2p_noise_error). The
 * initiator may write transport data at once. */
LP2P_EXTERN int lp2p_noise_handshake_done(const lp2p_noise *n);
/* The terminal error of the session, or 0. */
LP2P_EXTERN int lp2p_noise_error(const lp2p_noise *n);
LP2P_EXTERN int lp2p_noise_is_initiator(const lp2p_noise *n);

/* The verified remote peer id / identity key; NULL until the handshake is done (also when it
 * failed). Owned by n, valid while n lives. */
LP2P_EXTERN const lp2p_peer_id *lp2p_noise_remote_peer(const lp2p_noise *n);
LP2P_EXTERN const lp2p_pubkey *lp2p_noise_remote_key(const lp2p_noise *n);
/* The muxer agreed through the stream_muxers extension, or NULL (use multistream-select).
 * Non-NULL only when both sides sent a non-empty list; if both did and they share nothing the
 * handshake fails. The initiator's preference order wins. Owned by n (NUL-terminated). */
LP2P_EXTERN const char *lp2p_noise_muxer(const lp2p_noise *n);

/* ---- transport (after the handshake; LP2P_ERR_STATE before) ---- */
/* Encrypts pt into output frames (split at LP2P_NOISE_MAX_PLAINTEXT). len 0 writes nothing.
 * Returns 0, or LP2P_ERR_NONCE_EXHAUSTED / LP2P_ERR_NOMEM (terminal; nothing is queued). */
LP2P_EXTERN int lp2p_noise_write(lp2p_noise *n, const uint8_t *pt, size_t len);
/* Decrypted bytes waiting. *out stays valid until the next non-const call on n. */
LP2P_EXTERN size_t lp2p_noise_plaintext(lp2p_noise *n, const uint8_t **out);
LP2P_EXTERN void lp2p_noise_plaintext_consumed(lp2p_noise *n, size_t k);

/* Zero-copy variants for hot paths; they bypass the internal buffers but share the nonce
 * counters with write/feed (do not interleave open_frame with feed on a partial frame).
 * seal: writes u16be(len + 16) || ciphertext || tag into out (needs len + 18 bytes,
 * len <= 65519; LP2P_ERR_TOO_LARGE otherwise). Returns bytes written (len + 18). */
LP2P_EXTERN int lp2p_noise_seal_frame(lp2p_noise *n, const uint8_t *pt, size_t len, uint8_t *out);
/* open: frame_body = ciphertext || tag (without the length prefix), body_len 16..65535
 * (LP2P_ERR_DECRYPT if shorter, LP2P_ERR_TOO_LARGE if longer). Decrypts in place: the
 * plaintext is frame_body[0 .. *pt_len). Returns 0. */
LP2P_EXTERN int lp2p_noise_open_frame(lp2p_noise *n, uint8_t *frame_body, size_t body_len, size_t *pt_len);
/* Transport framing for zero-copy readers, so that they never decode the length prefix themselves:
 * lp2p_noise_frame_len: the wire size (2 + body) of the frame starting at in, or 0 when fewer than
 * 2 bytes are there (the frame may still be incomplete: compare with len).
 * lp2p_noise_open_next: if in[0..len) starts with a complete frame, decrypts it in place and sets
 * (*pt, *pt_len) to its plaintext (inside in); returns the frame's wire size. Returns 0 (nothing
 * consumed) for a partial frame, or an error as lp2p_noise_open_frame. */
LP2P_EXTERN size_t lp2p_noise_frame_len(const uint8_t *in, size_t len);
LP2P_EXTERN int64_t lp2p_noise_open_next(lp2p_noise *n, uint8_t *in, size_t len, uint8_t **pt, size_t *pt_len);

#ifdef __cplusplus
}
#endif
#endif
