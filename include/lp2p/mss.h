/* lp2p/mss.h - multistream-select 1.0.0, sans-IO.
 *
 * One lp2p_mss negotiates one protocol on one byte channel (a raw connection,
 * an encrypted channel or a muxed stream). The party that opened the channel
 * is the dialer and proposes; the other side is the listener and answers.
 * The engine never does I/O: feed it the bytes received, send the bytes it
 * offers through lp2p_mss_output(), and check lp2p_mss_done().
 *
 * Wire format: every message is <uvarint L><L bytes>, the L bytes being the
 * text followed by '\n' (counted in L). Both sides first send the header
 * "/multistream/1.0.0"; the dialer then proposes protocol ids one at a time,
 * and the listener echoes a supported id or answers "na". "ls" asks the
 * listener for its list (answered as one message whose body is a sequence of
 * <uvarint><id>'\n' entries followed by a bare '\n').
 *
 * Flow:
 *  - dialer: the first output (available right after lp2p_mss_new_dialer) is
 *    the header and the first proposal in one flight. After "na" the next
 *    proposal is queued; when every proposal was refused, feed fails with
 *    LP2P_ERR_UNSUPPORTED. The dialer is done when it reads the echo.
 *  - listener: answers the dialer's header with its own header (so the header
 *    and the first answer normally leave in one write), answers "na" to
 *    unsupported proposals and keeps going, and is done once it has queued the
 *    echo of a supported proposal. The caller must still flush the output
 *    (header + echo) after lp2p_mss_done() turns 1.
 *
 * Input handling: lp2p_mss_feed() buffers partial messages internally, so it
 * consumes every byte given to it until the last negotiation message (the echo
 * for the dialer, the accepted proposal for the listener) is complete. It
 * never consumes past that message: a lazy peer may pipeline next-layer data
 * (e.g. a Noise handshake message) behind its proposal, and those bytes - the
 * tail not consumed by feed, plus anything received later - belong to the
 * next protocol. After completion feed consumes nothing and returns 0.
 *
 * Errors (all terminal: once feed has failed, later feeds return the same
 * error; only output/done/free stay meaningful):
 *  - LP2P_ERR_PROTO        malformed framing: bad or non-minimal varint, empty
 *                          message, missing trailing '\n', an id that is empty
 *                          or contains '\n' or NUL, an unexpected answer (the
 *                          dialer got neither "na" nor the echo), or a first
 *                          message that is not a multistream header.
 *  - LP2P_ERR_UNSUPPORTED  dialer: every proposal was refused. Either side:
 *                          the peer's first message is a multistream header of
 *                          another version ("/multistream/<anything else>"),
 *                          i.e. the peer is well-formed but speaks a version
 *                          we do not: "incompatible", not "malformed".
 *  - LP2P_ERR_TOO_LARGE    a message longer than limits.max_line (L counts the
 *                          trailing newline, so ids are at most max_line-1).
 *  - LP2P_ERR_LIMIT        listener: the dialer made more than
 *                          limits.max_attempts requests that did not end the
 *                          negotiation (refused proposals and "ls" requests).
 *  - LP2P_ERR_NOMEM        allocation failure (fatal).
 * Output already queued before an error stays available (whole messages only);
 * the caller may flush it or just close the channel.
 *
 * Ownership: lp2p_mss_new_* copy everything they are given (protocol ids,
 * limits, registry callbacks, the lp2p_mem struct); `ud` is borrowed and must
 * stay valid while the object lives. All memory is allocated through `mem`
 * (NULL = libc) and released by lp2p_mss_free(). Not thread-safe; one object
 * per channel. */
#ifndef LP2P_MSS_H
#define LP2P_MSS_H
#include "lp2p/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_MSS_PROTOCOL_ID "/multistream/1.0.0"
#define LP2P_MSS_DEFAULT_MAX_LINE 1024
#define LP2P_MSS_DEFAULT_MAX_ATTEMPTS 32
/* Most protocol ids a listener puts in an "ls" answer (further ids are left out). */
#define LP2P_MSS_LS_MAX_IDS 128

typedef struct lp2p_mss lp2p_mss;

typedef struct lp2p_mss_limits {
  size_t max_line;     /* largest message (id + '\n'; for an "ls" answer, its whole body); 0 = 1024.
                          Must be >= 19 (the header) when non-zero. */
  size_t max_attempts; /* listener: refused proposals + "ls" requests allowed; 0 = 32 */
} lp2p_mss_limits;

/* Listener side: what we support. Both callbacks are called from inside
 * lp2p_mss_feed() and must not call back into the same lp2p_mss. */
typedef struct lp2p_mss_registry {
  /* proto[0..len) is the proposed id (not NUL-terminated, never empty, no '\n'
   * or NUL). Return 1 to accept it, 0 to answer "na". */
  int (*supports)(void *ud, const char *proto, size_t len);
  /* For "ls": write up to `max` NUL-terminated ids into out[] and return how
   * many were written (returning the total, if larger than max, is also
   * accepted). The strings only need to stay valid during the call. Ids that
   * are empty, contain '\n' or exceed max_line-1 bytes are skipped; the answer
   * stops before the first id that would push its body over max_line. May be
   * NULL: "ls" is then answered with "na" (as go-multistream does). */
  size_t (*list)(void *ud, const char **out, size_t max);
} lp2p_mss_registry;

/* Dialer proposing protocols[0..n) in order of preference (n >= 1; each id
 * non-empty, without '\n', at most max_line-1 bytes, and neither "na" nor
 * "ls"). Errors: LP2P_ERR_INVAL (bad arguments or id), LP2P_ERR_TOO_LARGE (id
 * too long for max_line), LP2P_ERR_NOMEM. On success *out is owned by the
 * caller (lp2p_mss_free) and its first flight is ready in lp2p_mss_output(). */
LP2P_EXTERN int lp2p_mss_new_dialer(lp2p_mss **out, const char *const *protocols, size_t n,
                                    const lp2p_mss_limits *lim, const lp2p_mem *mem);

/* Listener answering from reg (copied; reg->supports is required). The
 * listener only writes after it has read the dialer's header. */
LP2P_EXTERN int lp2p_mss_new_listener(lp2p_mss **out, const lp2p_mss_registry *reg, void *ud,
                                      const lp2p_mss_limits *lim, const lp2p_mem *mem);

/* A dialer that first asks for the listener's list: its first flight is the
 * header, "ls" and (when n >= 1) the first proposal, all pipelined. The answer
 * to "ls" is available through lp2p_mss_list_*() once lp2p_mss_list_received()
 * is 1; proposals then go on as for a plain dialer. With n == 0 (protocols may
 * be NULL) the negotiation ends after the list: feed consumes nothing more and
 * lp2p_mss_done() stays 0. "ls" is optional in the spec; a listener that
 * answers "na" yields an empty list with lp2p_mss_list_received() == 1. */
LP2P_EXTERN int lp2p_mss_new_lister(lp2p_mss **out, const char *const *protocols, size_t n,
                                    const lp2p_mss_limits *lim, const lp2p_mem *mem);

/* Frees m and everything it owns; NULL is ignored. */
LP2P_EXTERN void lp2p_mss_free(lp2p_mss *m);

/* Feed received bytes. Returns bytes consumed (>= 0) or a negative error (see
 * above). Consumes all of in[0..len) except when negotiation completes inside
 * it: bytes after the final negotiation line are NOT consumed and belong to the
 * next layer. */
LP2P_EXTERN int64_t lp2p_mss_feed(lp2p_mss *m, const uint8_t *in, size_t len);

/* Pending output: *out points to the bytes to send (valid until the next call
 * on m, other than the read-only accessors); returns their length (0 = none).
 * Report what was sent with lp2p_mss_output_consumed (n is clamped). */
LP2P_EXTERN size_t lp2p_mss_output(lp2p_mss *m, const uint8_t **out);
LP2P_EXTERN void lp2p_mss_output_consumed(lp2p_mss *m, size_t n);

/* 1 once a protocol is agreed (the dialer read the echo / the listener queued
 * it), else 0. */
LP2P_EXTERN int lp2p_mss_done(const lp2p_mss *m);
/* The agreed protocol, NUL-terminated, valid while m lives; NULL until done. */
LP2P_EXTERN const char *lp2p_mss_protocol(const lp2p_mss *m);
/* 0, or the terminal error feed returned. */
LP2P_EXTERN int lp2p_mss_error(const lp2p_mss *m);
/* 1 for dialers and listers, 0 for listeners. */
LP2P_EXTERN int lp2p_mss_is_dialer(const lp2p_mss *m);
/* Number of proposals the listener refused so far (dialer: "na" received,
 * listener: "na" sent, including "ls" answered with "na"). */
LP2P_EXTERN size_t lp2p_mss_rejections(const lp2p_mss *m);
/* Heap bytes m holds (the object, its line and output buffers by capacity, proposals, received list,
 * agreed id): what a resource manager charges for a negotiation. 0 for NULL. */
LP2P_EXTERN size_t lp2p_mss_memory(const lp2p_mss *m);

/* Lister only (0 / NULL otherwise). The ids stay valid while m lives. */
LP2P_EXTERN int lp2p_mss_list_received(const lp2p_mss *m);
LP2P_EXTERN size_t lp2p_mss_list_count(const lp2p_mss *m);
LP2P_EXTERN const char *lp2p_mss_list_at(const lp2p_mss *m, size_t i);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_MSS_H */
