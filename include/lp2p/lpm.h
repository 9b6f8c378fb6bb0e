/* lp2p/lpm.h - unsigned-varint length-prefixed messages ("lpm"), the framing
 * most libp2p protocols use on a stream (identify, kad, autonat, ...):
 *
 *     uvarint(len) || len bytes of payload
 *
 * The varint is multiformats/unsigned-varint (lp2p/encoding.h): minimal
 * encoding, at most 9 bytes. Both halves are sans-IO and never block.
 *
 * Reader: created with the largest payload accepted. Bytes are fed as they
 * arrive, in pieces of any size; each lp2p_lpm_read() call yields at most one
 * complete message. A message wholly inside the bytes passed to that call is
 * returned in place (zero copy); one that spans calls is assembled in a buffer
 * owned by the reader (grown to the announced length, never beyond max).
 * Errors are sticky (every later call returns the same error):
 *   LP2P_ERR_TOO_LARGE  the announced length exceeds max (reported as soon as
 *                       the length prefix is complete, before any payload);
 *   LP2P_ERR_PROTO      malformed prefix: non-minimal (overlong) varint, or
 *                       more than 9 bytes;
 *   LP2P_ERR_NOMEM      the buffer could not be allocated.
 * At end of input, lp2p_lpm_reader_finish() tells a clean boundary from a
 * message cut short.
 *
 * Writer: plain functions writing the prefix (and the payload) into a caller
 * buffer, or describing the frame as two pieces (prefix, payload) for
 * scatter/gather writes without copying the payload.
 *
 * Threading: a reader is used by one thread at a time; the writer functions
 * are pure. */
#ifndef LP2P_LPM_H
#define LP2P_LPM_H
#include "lp2p/common.h"
#include "lp2p/encoding.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest length prefix (a 63-bit varint). */
#define LP2P_LPM_PREFIX_MAX LP2P_UVARINT_MAX_LEN

typedef struct lp2p_lpm_reader lp2p_lpm_reader;

/* Creates a reader accepting payloads of at most max_msg bytes (0 is a valid
 * limit: only empty messages). mem: NULL = libc; copied.
 * Errors: LP2P_ERR_INVAL (out NULL), LP2P_ERR_NOMEM. */
LP2P_EXTERN int lp2p_lpm_reader_new(lp2p_lpm_reader **out, size_t max_msg, const lp2p_mem *mem);
/* Frees the reader and its buffer. NULL is a no-op. */
LP2P_EXTERN void lp2p_lpm_reader_free(lp2p_lpm_reader *r);

/* Consumes bytes from in[0..len) until one message is complete or the input
 * is exhausted. *used receives the number of bytes consumed (always set;
 * the caller passes the rest, in + *used, to the next call).
 * Returns 1: a message is complete; *msg / *msg_len describe it (never NULL,
 *            also for an empty message). *msg points into in (zero copy) or
 *            into the reader's buffer; valid until the next call on r or
 *            lp2p_lpm_reader_free, and only as long as in is when it points
 *            there. More messages may follow in the unconsumed input.
 *         0: all len bytes consumed (*used == len), no message complete yet.
 *         <0: error (see header); sticky. *used is then 0.
 * Typical loop:
 *     while (n > 0) {
 *       size_t used; const uint8_t *m; size_t mlen;
 *       int rv = lp2p_lpm_read(r, p, n, &used, &m, &mlen);
 *       if (rv < 0) fail(rv);
 *       p += used; n -= used;
 *       if (rv == 1) handle(m, mlen);
 *     } */
LP2P_EXTERN int lp2p_lpm_read(lp2p_lpm_reader *r, const uint8_t *in, size_t len, size_t *used, const uint8_t **msg,
                              size_t *msg_len);

/* At end of input: 0 when the input ended on a message boundary, LP2P_ERR_EOF
 * when it ended inside a message (prefix or payload cut short), or the sticky
 * error. */
LP2P_EXTERN int lp2p_lpm_reader_finish(const lp2p_lpm_reader *r);
/* Bytes of the current (incomplete) message received so far, prefix included
 * (0 at a boundary). */
LP2P_EXTERN size_t lp2p_lpm_reader_pending(const lp2p_lpm_reader *r);
/* Complete messages returned so far. */
LP2P_EXTERN uint64_t lp2p_lpm_reader_count(const lp2p_lpm_reader *r);
/* Forgets any partial message and a sticky error (the limit and the count stay). */
LP2P_EXTERN void lp2p_lpm_reader_reset(lp2p_lpm_reader *r);

/* ---- writer ---- */

/* Size of the whole frame for a payload of n bytes (prefix + n). */
LP2P_EXTERN size_t lp2p_lpm_frame_size(size_t n);
/* Writes the prefix for a payload of n bytes; returns its length (1..9) or
 * LP2P_ERR_BUFSIZE / LP2P_ERR_INVAL (n >= 2^63). cap >= LP2P_LPM_PREFIX_MAX always fits. */
LP2P_EXTERN int lp2p_lpm_write_prefix(size_t n, uint8_t *out, size_t cap);
/* Writes prefix || p[0..n) into out (must not overlap p); returns the frame
 * length or LP2P_ERR_BUFSIZE (out unspecified then) / LP2P_ERR_INVAL. */
LP2P_EXTERN int64_t lp2p_lpm_write(const uint8_t *p, size_t n, uint8_t *out, size_t cap);

/* A frame as two pieces: iov[0] the prefix (in prefix_buf), iov[1] the payload
 * (p itself, not copied; empty when n == 0). */
typedef struct lp2p_lpm_iov {
  const uint8_t *base;
  size_t len;
} lp2p_lpm_iov;
/* Fills prefix_buf and iov[2]. Returns the frame length or LP2P_ERR_INVAL. */
LP2P_EXTERN int64_t lp2p_lpm_write_iov(const uint8_t *p, size_t n, uint8_t prefix_buf[LP2P_LPM_PREFIX_MAX],
                                       lp2p_lpm_iov iov[2]);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_LPM_H */
