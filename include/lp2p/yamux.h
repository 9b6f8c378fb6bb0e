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
 *   - The pointer returned by lp2p_yamux_output() is valid until the next call
 *     on the session. Bytes returned by lp2p_yamux_output() stay at the front
 *     of the output until lp2p_yamux_output_consumed() removes them.
 *   - lp2p_yamux_write() copies what it accepts.
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
 *   output (on_stream_writable when buffered data drained, on_stream_close when
 *   a FIN completed a close), handle_expiry, and on_stream_close from
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
 *   buffered against it) plus LP2P_YAMUX_SEND_SLACK bytes; when it accepts fewer
 *   bytes than offered, on_stream_writable fires once room reopens.
 *
 * Output scheduling
 *   Control frames (SYN, ACK, window updates, ping answers, FIN, RST, GoAway)
 *   are queued as soon as they arise (a FIN queued behind buffered data follows
 *   the last Data frame as its own WindowUpdate FIN: FIN is never put on a Data
 *   frame with payload, which js-libp2p-yamux 8.x would drop); Data frames are built lazily by
 *   lp2p_yamux_output(), at most LP2P_YAMUX_MAX_DATA_FRAME payload bytes each,
 *   round-robin over streams with data and window, until about
 *   LP2P_YAMUX_OUTPUT_BATCH bytes are pending.
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
/* Largest Data frame payload we send. */
#define LP2P_YAMUX_MAX_DATA_FRAME (64u * 1024u)
/* lp2p_yamux_output() builds Data frames until this many bytes are pending. */
#define LP2P_YAMUX_OUTPUT_BATCH (128u * 1024u)
/* Per stream: buffered bytes allowed against the peer's window (cap) ... */
#define LP2P_YAMUX_SEND_BUFFER_MAX (256u * 1024u)
/* ... plus this much beyond the window. */
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
/* n bytes of the output were sent (n larger than pending is clamped). */
LP2P_EXTERN void lp2p_yamux_output_consumed(lp2p_yamux *mx, size_t n);
/* 1 if lp2p_yamux_output() would return bytes now. */
LP2P_EXTERN int lp2p_yamux_want_output(const lp2p_yamux *mx);

/* Opens a stream (SYN queued). LP2P_ERR_LIMIT when max_unacked_outbound SYNs
 * are unacknowledged or ids are exhausted, LP2P_ERR_GOAWAY after a GoAway
 * either way, LP2P_ERR_NOMEM, or the session error. */
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
 * ping went unanswered for keepalive_timeout. */
LP2P_EXTERN int lp2p_yamux_handle_expiry(lp2p_yamux *mx, lp2p_tstamp now);
/* 0 or the fatal session error. */
LP2P_EXTERN int lp2p_yamux_error(const lp2p_yamux *mx);
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
