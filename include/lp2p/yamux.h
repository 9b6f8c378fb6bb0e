/* lp2p/yamux.h - sans-IO Yamux session engine (/yamux/1.0.0), nghttp2 style.
 *
 * One lp2p_yamux is one multiplexed connection. It never touches a socket or a
 * clock: the caller feeds received (already decrypted) bytes with
 * lp2p_yamux_feed(), pulls bytes to send with lp2p_yamux_output(), passes the
 * current monotonic time in ms wherever `now` appears, and gets events through
 * callbacks.
 *
 * Ownership
 *   - lp2p_yamux_new() copies the config, the callbacks (first struct_size
 *     bytes) and the allocator; ud is borrowed. lp2p_yamux_free() releases
 *     everything (no callback fires from free).
 *   - Pointers passed to callbacks (on_stream_data) are valid during the call.
 *   - The pointer returned by lp2p_yamux_output() and the iovecs filled by
 *     lp2p_yamux_output_iov() point into session memory (the output buffer and
 *     the streams' send rings) and are valid until the next call on the session
 *     other than the const accessors (want_output, pending, error, rtt,
 *     stream_count, stream_user, write_capacity, next_expiry, remote_goaway).
 *     Returned bytes stay at the front of the output until
 *     lp2p_yamux_output_consumed() removes them.
 *   - lp2p_yamux_write() copies what it accepts.
 *
 * Memory
 *   A session allocates nothing until it is used. The output buffer is
 *   allocated on demand, kept while streams exist (no allocation per message)
 *   and released once the output is drained and no stream is left. A stream's
 *   send ring is allocated on its first write (1 KiB, doubling as needed), kept
 *   while the stream may still write, and released when it drains after FIN or
 *   close, when it drains while
 *   the session's rings add up to more than send_budget, or at a keep-alive
 *   tick when it is empty. Released rings above
 *   16 KiB are kept as spares (at most min(send_budget, 1 MiB)) for the next
 *   stream that needs a big ring, until no stream is left or the next tick.
 *   lp2p_yamux_handle_expiry() (the keep-alive tick) releases every drained
 *   buffer. An idle session with no streams holds only the session object
 *   (sizeof(struct lp2p_yamux), about 0.8 KiB).
 *
 * Streams
 *   Ids: the client (connection dialer) uses odd ids 1,3,5..., the server even
 *   ids 2,4,6.... A stream opened locally sends WindowUpdate SYN at once; an
 *   inbound stream is announced with on_stream_open and, when accepted, answered
 *   at once with WindowUpdate ACK. Every stream the application has seen
 *   (lp2p_yamux_open_stream() succeeded, or on_stream_open returned 0) gets
 *   exactly one on_stream_close, its last callback:
 *     err 0                  both sides sent FIN (graceful close),
 *     LP2P_ERR_RESET         the peer reset it (RST),
 *     LP2P_ERR_CANCELED      we reset it (lp2p_yamux_reset),
 *     the session error      (LP2P_ERR_PROTO, LP2P_ERR_WINDOW, LP2P_ERR_TIMEOUT,
 *                             LP2P_ERR_LIMIT, LP2P_ERR_NOMEM) when the session died.
 *   A stream refused by on_stream_open (non-zero return) gets no on_stream_close.
 *   During on_stream_close the id is still valid for lp2p_yamux_stream_user();
 *   afterwards the id is unknown (LP2P_ERR_NOT_FOUND).
 *
 * Callbacks and reentrancy
 *   Callbacks fire only from inside calls on the session: feed (all kinds),
 *   output / output_iov (on_stream_writable when buffered data drained,
 *   on_stream_close when a FIN completed a close, the outbound-available
 *   callback of lp2p_yamux_set_on_outbound_available()),
 *   handle_expiry, and on_stream_close from
 *   close_write / reset / consume / open_stream / ping / go_away when they
 *   complete a close or the session fails. Never from write or free. Callbacks
 *   may call any function on the session except lp2p_yamux_feed() (returns
 *   LP2P_ERR_STATE) and lp2p_yamux_free(). Closing a
 *   stream inside a callback (reset, or close_write completing a half-closed
 *   stream) is deferred: its on_stream_close fires after the current callback
 *   returns, never nested inside another callback, and its memory is released
 *   after on_stream_close returns. When a close is requested outside any
 *   callback, on_stream_close fires before that call returns.
 *
 * Flow control
 *   Each stream has a receive window (initially 256 KiB, the protocol value,
 *   plus what we advertise above it). Received data is delivered with
 *   on_stream_data; the application calls lp2p_yamux_consume() once it has
 *   processed bytes; window updates are sent when at least half the window has
 *   been consumed. Windows grow (doubling, up to max_window) when a window was
 *   used up within 2 round-trip times of the previous update (RTT from the last
 *   ping; no growth before an RTT is known, so enable keep-alive or call
 *   lp2p_yamux_ping() once). The send side follows the peer's window: write() accepts
 *   what the send window allows (at most LP2P_YAMUX_SEND_BUFFER_MAX bytes
 *   buffered against it) plus LP2P_YAMUX_SEND_SLACK bytes (ready for the next
 *   window update); beyond that, bytes wait in the application: when write()
 *   accepts fewer bytes than offered, on_stream_writable fires once room reopens.
 *   Session send budget: every byte accepted by write() and not yet put into a
 *   Data frame, summed over all streams, stays within cfg.send_budget (default
 *   LP2P_YAMUX_DEFAULT_SEND_BUDGET). Once it is used up, write() accepts 0 (or
 *   what is left) and on_stream_writable follows when output has been built
 *   and room reopened; blocked writers are served oldest first (a writer that
 *   blocks again queues behind the others). A stream whose peer does not read
 *   holds at most its slack once its window is used up (its send ring shrinks to
 *   fit, and is released when drained), counted in the budget: such streams
 *   take at most send_budget of the session together.
 *
 * Output scheduling
 *   Control frames (SYN, ACK, window updates, ping answers, FIN, RST, GoAway)
 *   are queued as soon as they arise (a FIN queued behind buffered data follows
 *   the last Data frame as its own WindowUpdate FIN: FIN is never put on a Data
 *   frame with payload, which js-libp2p-yamux 8.x would drop, so callers need no
 *   FIN splitting); Data frames are built lazily by lp2p_yamux_output() /
 *   lp2p_yamux_output_iov(), at most cfg.max_frame_payload (default
 *   LP2P_YAMUX_MAX_DATA_FRAME) payload bytes each, round-robin over streams
 *   with data and window, until about LP2P_YAMUX_OUTPUT_BATCH bytes are pending
 *   (output_iov: min(max_bytes, LP2P_YAMUX_OUTPUT_BATCH)).
 *
 * Gather output (lp2p_yamux_output_iov): instead of copying Data payload into
 *   one buffer, the output is described by iovecs: runs of frame headers and
 *   control frames from the output buffer, and payload pointing straight into
 *   the streams' send rings (a payload may take two iovecs when it wraps around
 *   its ring). This saves one copy of every payload byte. Usage (swarm, sealing
 *   into Noise frames of at most LP2P_NOISE_MAX_PLAINTEXT = 65,519 bytes):
 *
 *     lp2p_iovec iov[32];
 *     for (;;) {
 *       size_t k = lp2p_yamux_output_iov(mx, iov, 32, 2 * 65519);
 *       if (!k) break;
 *       size_t total = 0;
 *       for (size_t i = 0; i < k; i++) total += iov[i].len;
 *       ... seal/copy the bytes of iov[0..k) (in order) into Noise frames ...
 *       lp2p_yamux_output_consumed(mx, total);  // or fewer: the rest stays queued
 *     }
 *
 *   With max_bytes a multiple of 65,519 and at most LP2P_YAMUX_OUTPUT_BATCH,
 *   every call returns exactly max_bytes while that much can be sent, so the
 *   sealed frames are full except the last one of a burst (no runt frame per
 *   batch). Alternatively cfg.max_frame_payload = LP2P_YAMUX_NOISE_FRAME_PAYLOAD
 *   (65,507) makes every full Data frame (12-byte header + payload) exactly one
 *   Noise plaintext. Don't free, reset or write on the session between
 *   output_iov and using the iovecs (any non-const call invalidates them);
 *   output_consumed may be called with any n <= total. lp2p_yamux_output() and
 *   lp2p_yamux_output_iov() may be mixed (output() then copies what output_iov
 *   left referenced), but a caller normally uses one of them.
 *
 * Errors
 *   Protocol violations by the peer (bad version, unknown frame type, data
 *   beyond the receive window (LP2P_ERR_WINDOW), SYN with our parity or for a
 *   stream id in use or recently closed, a frame for a stream id never opened,
 *   Data/WindowUpdate on stream 0, an outbound control-frame flood) are fatal:
 *   a GoAway(protocol error) is queued, every stream is closed with the error,
 *   feed returns the error and lp2p_yamux_error() reports it. The caller should
 *   flush lp2p_yamux_output() (the GoAway) and close the connection. After a
 *   fatal error every call returns the error; only output/output_consumed and
 *   free remain useful. Late frames for streams that were closed or reset are
 *   ignored (their data is discarded). The length field of a WindowUpdate RST is
 *   ignored (go-yamux puts an error code there).
 *   A keep-alive timeout makes the session fail with LP2P_ERR_TIMEOUT (no GoAway
 *   is queued: the peer is not answering).
 *   A remote GoAway is reported with on_goaway; existing streams continue, new
 *   streams cannot be opened (LP2P_ERR_GOAWAY).
 */
#ifndef LP2P_YAMUX_H
#define LP2P_YAMUX_H
#include "lp2p/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_YAMUX_PROTOCOL "/yamux/1.0.0"
/* The window every stream starts with, in each direction (protocol constant). */
#define LP2P_YAMUX_DEFAULT_WINDOW (256u * 1024u)
#define LP2P_YAMUX_DEFAULT_MAX_WINDOW (16u * 1024u * 1024u)
#define LP2P_YAMUX_DEFAULT_MAX_INBOUND 512u
#define LP2P_YAMUX_DEFAULT_MAX_UNACKED 256u
#define LP2P_YAMUX_DEFAULT_KEEPALIVE_INTERVAL 30000u
#define LP2P_YAMUX_DEFAULT_KEEPALIVE_TIMEOUT 10000u
/* Largest Data frame payload we send (default of cfg.max_frame_payload). */
#define LP2P_YAMUX_MAX_DATA_FRAME (64u * 1024u)
/* Upper bound for cfg.max_frame_payload. */
#define LP2P_YAMUX_MAX_FRAME_PAYLOAD_LIMIT (16u * 1024u * 1024u)
/* Size of a frame header. */
#define LP2P_YAMUX_FRAME_HEADER 12u
/* cfg.max_frame_payload that makes header + payload exactly one Noise plaintext (65,519 - 12). */
#define LP2P_YAMUX_NOISE_FRAME_PAYLOAD (65519u - LP2P_YAMUX_FRAME_HEADER)
/* Default session send budget (cfg.send_budget). */
#define LP2P_YAMUX_DEFAULT_SEND_BUDGET (1024u * 1024u)
/* lp2p_yamux_output() builds Data frames until this many bytes are pending. */
#define LP2P_YAMUX_OUTPUT_BATCH (128u * 1024u)
/* Per stream: buffered bytes allowed against the peer's window (cap) ... */
#define LP2P_YAMUX_SEND_BUFFER_MAX (256u * 1024u)
/* ... plus this much beyond the window (counted in the session send budget). */
#define LP2P_YAMUX_SEND_SLACK (64u * 1024u)
/* GoAway codes. */
#define LP2P_YAMUX_GOAWAY_NORMAL 0u
#define LP2P_YAMUX_GOAWAY_PROTOCOL_ERROR 1u
#define LP2P_YAMUX_GOAWAY_INTERNAL_ERROR 2u

typedef struct lp2p_yamux lp2p_yamux;

typedef struct lp2p_yamux_config {
  size_t struct_size;               /* sizeof(lp2p_yamux_config) */
  int is_client;                    /* dialer = client = odd stream ids */
  /* For the four limits below, 0 means the default. */
  uint32_t initial_window;          /* receive window per stream, >= 256 KiB (default 256 KiB) */
  uint32_t max_window;              /* auto-tuning ceiling, >= initial_window (default 16 MiB) */
  uint32_t max_inbound_streams;     /* live inbound streams; beyond it a new SYN is RST (default 512);
                                     * to refuse every stream return non-zero from on_stream_open */
  uint32_t max_unacked_outbound;    /* open_stream fails with LP2P_ERR_LIMIT past it (default 256) */
  lp2p_tstamp keepalive_interval;   /* ms between keep-alive pings, 0 = off (default 30000); the first
                                     * keep-alive ping is due at once (it also measures the RTT) */
  lp2p_tstamp keepalive_timeout;    /* ms without ping answer => LP2P_ERR_TIMEOUT, 0 = never (default
                                     * 10000); applies to any outstanding ping */
  /* Added later (callers with a smaller struct_size get the defaults); 0 means the default. */
  size_t send_budget;               /* session send budget in bytes (see Flow control; default 1 MiB) */
  uint32_t max_frame_payload;       /* Data frame payload cap, <= LP2P_YAMUX_MAX_FRAME_PAYLOAD_LIMIT
                                     * (default 64 KiB; LP2P_YAMUX_NOISE_FRAME_PAYLOAD: one Noise frame) */
} lp2p_yamux_config;

/* Fills defaults (values above). */
LP2P_EXTERN void lp2p_yamux_config_default(lp2p_yamux_config *cfg, int is_client);

/* Every member optional. ud is the pointer given to lp2p_yamux_new(). */
typedef struct lp2p_yamux_callbacks {
  size_t struct_size;
  /* Inbound SYN. Return 0 to accept (ACK sent when it returns), non-zero to
   * refuse (RST sent, no further callback for id). NULL = accept all. */
  int (*on_stream_open)(lp2p_yamux *mx, uint32_t id, void *ud);
  /* Received bytes (possibly a part of a frame). Call lp2p_yamux_consume()
   * when processed (now or later). */
  void (*on_stream_data)(lp2p_yamux *mx, uint32_t id, const uint8_t *p, size_t n, void *ud);
  /* Remote FIN (half close): no more data will arrive. We may still write. */
  void (*on_stream_eof)(lp2p_yamux *mx, uint32_t id, void *ud);
  /* A write accepted fewer bytes than offered (or 0) and room has reopened. */
  void (*on_stream_writable)(lp2p_yamux *mx, uint32_t id, void *ud);
  /* Last call for id (see the header comment for err). */
  void (*on_stream_close)(lp2p_yamux *mx, uint32_t id, int err, void *ud);
  /* Answer to our ping; rtt_ms = now(answer) - now(ping). */
  void (*on_pong)(lp2p_yamux *mx, uint32_t rtt_ms, void *ud);
  /* The peer sent GoAway (first one only). */
  void (*on_goaway)(lp2p_yamux *mx, uint32_t code, void *ud);
} lp2p_yamux_callbacks;

/* Optional, set after lp2p_yamux_new() (a setter rather than a new lp2p_yamux_callbacks member, so that
 * positional initializers of that struct keep compiling under -Wextra): fn(mx, ud) is called when
 * lp2p_yamux_open_stream() returned LP2P_ERR_LIMIT because max_unacked_outbound SYNs were unacknowledged
 * and since then an ACK (or the close of such a stream) brought the count below the limit, i.e.
 * open_stream can succeed again (also from inside fn). Fires once per LP2P_ERR_LIMIT episode, at the end of
 * the outermost feed / output / output_iov / handle_expiry call (a local reset of an unacknowledged stream
 * is reported by the next of those calls), never after a GoAway either way or a session error. ud is the
 * pointer given to lp2p_yamux_new(). NULL fn disables it. */
typedef void (*lp2p_yamux_outbound_fn)(lp2p_yamux *mx, void *ud);
LP2P_EXTERN void lp2p_yamux_set_on_outbound_available(lp2p_yamux *mx, lp2p_yamux_outbound_fn fn);

/* One piece of gathered output (see lp2p_yamux_output_iov). */
typedef struct lp2p_iovec {
  const uint8_t *base;
  size_t len;
} lp2p_iovec;

/* cfg required (struct_size >= the size up to keepalive_timeout; missing
 * tail fields take defaults); cb may be NULL; mem NULL = libc.
 * LP2P_ERR_INVAL for a bad config, LP2P_ERR_NOMEM. */
LP2P_EXTERN int lp2p_yamux_new(lp2p_yamux **out, const lp2p_yamux_config *cfg, const lp2p_yamux_callbacks *cb,
                               void *ud, const lp2p_mem *mem);
/* NULL ok. Must not be called from a callback. */
LP2P_EXTERN void lp2p_yamux_free(lp2p_yamux *mx);

/* Consumes all input and returns len, or returns the fatal session error
 * (see header). LP2P_ERR_STATE when called from a callback. */
LP2P_EXTERN int64_t lp2p_yamux_feed(lp2p_yamux *mx, const uint8_t *in, size_t len, lp2p_tstamp now);
/* Bytes to send; *out valid until the next call on mx. 0 = nothing to send. */
LP2P_EXTERN size_t lp2p_yamux_output(lp2p_yamux *mx, const uint8_t **out);
/* Gather form of lp2p_yamux_output() (see "Gather output" above): builds Data frames until
 * min(max_bytes, LP2P_YAMUX_OUTPUT_BATCH) bytes are pending, then fills iov[0..max_iov) with the first
 * pending bytes, at most max_bytes in total, in order. Returns the number of entries filled (0 = nothing
 * to send, or a NULL/0 argument); the byte count is the sum of their len. The iovecs point into session
 * memory, valid until the next non-const call on mx. */
LP2P_EXTERN size_t lp2p_yamux_output_iov(lp2p_yamux *mx, lp2p_iovec *iov, size_t max_iov, size_t max_bytes);
/* n bytes of the output were sent (n larger than pending is clamped). Works for both output forms.
 * Never fires callbacks. */
LP2P_EXTERN void lp2p_yamux_output_consumed(lp2p_yamux *mx, size_t n);
/* 1 if lp2p_yamux_output() / lp2p_yamux_output_iov() would return bytes now. */
LP2P_EXTERN int lp2p_yamux_want_output(const lp2p_yamux *mx);
/* Bytes already queued for sending (frames built, not yet consumed); more may be built on the next
 * output call. */
LP2P_EXTERN size_t lp2p_yamux_pending(const lp2p_yamux *mx);

/* Opens a stream (SYN queued). LP2P_ERR_LIMIT when max_unacked_outbound SYNs
 * are unacknowledged (lp2p_yamux_set_on_outbound_available() reports when that is over) or ids
 * are exhausted, LP2P_ERR_GOAWAY after a GoAway either way, LP2P_ERR_NOMEM, or
 * the session error. */
LP2P_EXTERN int lp2p_yamux_open_stream(lp2p_yamux *mx, uint32_t *id);
/* Queues bytes; returns how many were accepted (may be < n; 0 => wait for
 * on_stream_writable). LP2P_ERR_CLOSED after close_write or once the stream is
 * closing, LP2P_ERR_NOT_FOUND for an unknown id, LP2P_ERR_NOMEM (nothing
 * accepted, stream intact). */
LP2P_EXTERN int64_t lp2p_yamux_write(lp2p_yamux *mx, uint32_t id, const uint8_t *p, size_t n);
/* How many bytes lp2p_yamux_write would accept now (0 for unknown/closed). */
LP2P_EXTERN size_t lp2p_yamux_write_capacity(const lp2p_yamux *mx, uint32_t id);
/* Half-close our side (FIN after the buffered data). Idempotent.
 * LP2P_ERR_CLOSED once the stream is closing, LP2P_ERR_NOT_FOUND. */
LP2P_EXTERN int lp2p_yamux_close_write(lp2p_yamux *mx, uint32_t id);
/* RST: drops buffered data, closes both directions; on_stream_close(id,
 * LP2P_ERR_CANCELED) follows. Returns 0 if the stream is already closing.
 * LP2P_ERR_NOT_FOUND for an unknown id. */
LP2P_EXTERN int lp2p_yamux_reset(lp2p_yamux *mx, uint32_t id);
/* RST after the bytes already written: no more writes (LP2P_ERR_CLOSED); the buffered bytes are
 * framed as usual (send window permitting) and the RST follows them instead of a FIN; then
 * on_stream_close(id, LP2P_ERR_CANCELED) as after lp2p_yamux_reset. Nothing buffered: same as
 * lp2p_yamux_reset. Returns 0 if already closing,
 * LP2P_ERR_NOT_FOUND, LP2P_ERR_NOMEM. (A caller inside a callback only queues: it need not flush
 * the muxer's output first to keep its last bytes.) */
LP2P_EXTERN int lp2p_yamux_reset_after_data(lp2p_yamux *mx, uint32_t id);
/* The application processed n delivered bytes: returns them to the receive
 * window (window update when >= half the window is free). LP2P_ERR_INVAL if n
 * exceeds the bytes delivered and not yet consumed; 0 for a closing stream. */
LP2P_EXTERN int lp2p_yamux_consume(lp2p_yamux *mx, uint32_t id, size_t n);
/* Queues GoAway(code) once (later calls return 0 and send nothing). After it
 * no stream can be opened and inbound SYNs are reset; existing streams go on. */
LP2P_EXTERN int lp2p_yamux_go_away(lp2p_yamux *mx, uint32_t code);
/* Sends a ping unless one is outstanding (then returns 0 and its answer is
 * reported). The answer fires on_pong. */
LP2P_EXTERN int lp2p_yamux_ping(lp2p_yamux *mx, lp2p_tstamp now);
/* Last measured RTT in ms (0 = unknown; sub-millisecond RTTs report 1). */
LP2P_EXTERN uint32_t lp2p_yamux_rtt(const lp2p_yamux *mx);
/* When handle_expiry must be called next (keep-alive ping due or ping
 * timeout); LP2P_TSTAMP_NEVER if none. May be in the past: call it now. */
LP2P_EXTERN lp2p_tstamp lp2p_yamux_next_expiry(const lp2p_yamux *mx);
/* Sends a due keep-alive ping; returns LP2P_ERR_TIMEOUT (session dead) when a
 * ping went unanswered for keepalive_timeout. Also releases drained buffers
 * (output buffer, empty send rings) an idle session does not need. */
LP2P_EXTERN int lp2p_yamux_handle_expiry(lp2p_yamux *mx, lp2p_tstamp now);
/* 0 or the fatal session error. */
LP2P_EXTERN int lp2p_yamux_error(const lp2p_yamux *mx);
/* Bytes the session holds for sending: accepted by write() and not yet consumed from the output, plus
 * queued frame headers and control frames (the buffers holding them may be up to about twice as large,
 * see Memory). 0 for NULL. */
LP2P_EXTERN size_t lp2p_yamux_buffered(const lp2p_yamux *mx);
/* Heap the session holds for sending, by capacity: the streams' send rings, the output buffer and its
 * splice table, and the spare rings of the session's own pool; always >= lp2p_yamux_buffered(). What a
 * resource manager should charge. 0 for NULL. */
LP2P_EXTERN size_t lp2p_yamux_memory(const lp2p_yamux *mx);
/* Live streams (not counting ones whose on_stream_close is pending). */
LP2P_EXTERN size_t lp2p_yamux_stream_count(const lp2p_yamux *mx);
/* 1 once the peer sent GoAway (its code in *code if non-NULL). */
LP2P_EXTERN int lp2p_yamux_remote_goaway(const lp2p_yamux *mx, uint32_t *code);
/* Per-stream user pointer (borrowed, never freed by the engine). Unknown ids:
 * set does nothing, get returns NULL. Valid until on_stream_close returns. */
LP2P_EXTERN void lp2p_yamux_stream_set_user(lp2p_yamux *mx, uint32_t id, void *p);
LP2P_EXTERN void *lp2p_yamux_stream_user(const lp2p_yamux *mx, uint32_t id);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_YAMUX_H */
