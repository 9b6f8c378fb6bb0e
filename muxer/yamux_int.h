/* muxer/yamux_int.h - internals of the Yamux engine shared by yamux_frame.c,
 * yamux_map.c, yamux_stream.c and yamux_session.c (and reachable by tests that
 * link the static library). Nothing here is part of the public API.
 *
 * Ownership: the session owns every stream (lp2p__yamux_stream), the stream map,
 * the output buffer, the gap table, the zombie streams (closed, freed once their
 * in-flight bytes are consumed) and the spare ring buffers; streams own their
 * send ring. Gaps point at streams, never the other way. All memory goes
 * through the session's lp2p_mem. */
#ifndef LP2P_MUXER_YAMUX_INT_H
#define LP2P_MUXER_YAMUX_INT_H
#include "core/mem.h"
#include "lp2p/yamux.h"

/* ---- frames (yamux_frame.c) ---- */
#define LP2P__YAMUX_HDR_LEN 12
#define LP2P__YAMUX_VERSION 0
enum { LP2P__YAMUX_DATA = 0, LP2P__YAMUX_WINDOW_UPDATE = 1, LP2P__YAMUX_PING = 2, LP2P__YAMUX_GO_AWAY = 3 };
enum { LP2P__YAMUX_SYN = 1, LP2P__YAMUX_ACK = 2, LP2P__YAMUX_FIN = 4, LP2P__YAMUX_RST = 8 };

typedef struct lp2p__yamux_hdr {
  uint8_t version, type;
  uint16_t flags;
  uint32_t stream_id, length;
} lp2p__yamux_hdr;

void lp2p__yamux_hdr_encode(uint8_t out[LP2P__YAMUX_HDR_LEN], uint8_t type, uint16_t flags, uint32_t id,
                            uint32_t length);
void lp2p__yamux_hdr_decode(const uint8_t in[LP2P__YAMUX_HDR_LEN], lp2p__yamux_hdr *h);

/* ---- streams ---- */
enum {
  YX_OUTBOUND = 1u << 0,     /* we opened it */
  YX_AWAIT_ACK = 1u << 1,    /* our SYN not yet acknowledged (counted in n_unacked) */
  YX_FIN_QUEUED = 1u << 3,   /* close_write called */
  YX_FIN_SENT = 1u << 4,     /* FIN serialized into the output */
  YX_REMOTE_FIN = 1u << 5,   /* peer's FIN received */
  YX_CLOSED = 1u << 6,       /* closed; waiting in the closing list for on_stream_close + free */
  YX_READY = 1u << 7,        /* in the ready ring (data + window) */
  YX_WANT_WRITABLE = 1u << 8,/* a write was short: fire on_stream_writable when room reopens */
  YX_ANNOUNCED = 1u << 10,   /* the application knows the id: on_stream_close owed */
  YX_ZOMBIE = 1u << 11,      /* closed and released by the application, kept for its in-flight bytes */
  YX_RST_AFTER = 1u << 12,   /* reset_after_data: the frame after the last bytes is RST, not FIN */
};

/* Send buffer: a ring of bytes. The first `inflight` bytes of the stream (see below) are referenced by
 * pending output (gaps) and stay until lp2p_yamux_output_consumed() passes them; the rest is unframed. */
typedef struct lp2p__yamux_ring {
  uint8_t *data;
  size_t cap, head, len; /* len = in-flight + unframed bytes */
  uint64_t seq;          /* stream offset of data[head] (bytes popped so far) */
} lp2p__yamux_ring;

typedef struct lp2p__yamux_stream {
  uint32_t id;
  uint32_t flags;
  int close_err;
  void *user;
  uint64_t send_window;     /* what the peer still lets us send */
  lp2p__yamux_ring sbuf;    /* accepted bytes: in flight (framed, unsent) + unframed */
  size_t inflight;          /* bytes at the ring head referenced by output gaps */
  size_t counted;           /* this stream's share of mx->buffered: min(unframed, send_window) */
  uint32_t recv_win;        /* target receive window (auto-tuned) */
  uint32_t recv_avail;      /* what the peer may still send (advertised - received) */
  uint32_t recv_held;       /* received (incl. the frame being read) and not yet consumed */
  lp2p_tstamp epoch;        /* when the last window update was sent (auto-tuning) */
  struct lp2p__yamux_stream *rnext, *rprev; /* ready ring */
  struct lp2p__yamux_stream *cnext;         /* closing list, then zombie list */
  struct lp2p__yamux_stream *bnext, *bprev; /* blocked-writer list (YX_WANT_WRITABLE), FIFO */
  uint32_t pass;            /* last writer-notification pass that looked at this stream */
} lp2p__yamux_stream;

/* Unframed bytes: accepted by write, not yet put in a Data frame. */
static inline size_t lp2p__yamux_unframed(const lp2p__yamux_stream *s) { return s->sbuf.len - s->inflight; }

/* ---- id -> stream map (yamux_map.c): open addressing, linear probing ---- */
typedef struct lp2p__yamux_map {
  lp2p__yamux_stream **slots;
  size_t cap, n; /* cap is 0 or a power of two */
} lp2p__yamux_map;

lp2p__yamux_stream *lp2p__yamux_map_get(const lp2p__yamux_map *m, uint32_t id);
/* LP2P_ERR_NOMEM (map unchanged). id must not be present. */
int lp2p__yamux_map_put(const lp2p_mem *mem, lp2p__yamux_map *m, lp2p__yamux_stream *s);
void lp2p__yamux_map_del(lp2p__yamux_map *m, uint32_t id);
void lp2p__yamux_map_free(const lp2p_mem *mem, lp2p__yamux_map *m);

/* ---- session ---- */
#define LP2P__YAMUX_RECENT 64                 /* remembered recently closed inbound ids */
#define LP2P__YAMUX_MAX_PENDING_OUT (2u << 20) /* unsent output beyond this on a control frame = flood */
/* output_iov copies Data payloads up to this size into the output buffer instead of referencing them. */
#define LP2P__YAMUX_COPY_MAX 1024u
/* Smallest send ring (grows by doubling). */
#define LP2P__YAMUX_RING_MIN 1024u
/* Released rings above SPARE_MIN bytes are kept for reuse, up to min(send_budget, SPARE_MAX) in all. */
#define LP2P__YAMUX_SPARE_MIN (16u * 1024u)
#define LP2P__YAMUX_SPARE_MAX (1024u * 1024u)
/* Auto-tuning threshold in RTTs. bench_yamux (simulated links): 2 reaches the throughput of 4 with half
 * the window; 1 is slightly slower and fragile when queueing inflates the RTT. */
#define LP2P__YAMUX_TUNE_RTTS 2

/* A pool of spare send-ring buffers (each > LP2P__YAMUX_SPARE_MIN bytes), total at most max bytes. Each
 * session has its own (max = min(send_budget, SPARE_MAX), emptied when the session goes idle); the swarm
 * shares one node-wide pool between its sessions (lp2p__yamux_set_pool: the owner empties it). */
typedef struct lp2p__yamux_pool {
  void *list;
  size_t total, max;
  uint64_t hits, misses; /* statistics */
} lp2p__yamux_pool;
/* Uses pool (owned by the caller, outliving the session) instead of the session's own; the session's
 * spares move to it (or are freed past its max). NULL: back to the session's own pool. */
void lp2p__yamux_set_pool(lp2p_yamux *mx, lp2p__yamux_pool *pool);
/* Frees every buffer of a pool (whoever owns it). */
void lp2p__yamux_pool_drain(const lp2p_mem *mem, lp2p__yamux_pool *pool);
/* Memory pressure: every stalled stream's ring (no send window) shrinks to fit what it holds, drained
 * rings are released, the session's own spares freed. Returns the bytes of ring capacity released. */
size_t lp2p__yamux_squeeze(lp2p_yamux *mx);
/* The owner's memory budget is nearly used up (1) or not (0): while tight, a ring that drains is freed
 * at once (not pooled) and a stalled one shrinks as it sends. */
void lp2p__yamux_set_tight(lp2p_yamux *mx, int tight);
/* Room within the peer's window for stream id: bytes write() can take without using the slack beyond
 * it (0 for unknown/closed streams). */
size_t lp2p__yamux_window_room(const lp2p_yamux *mx, uint32_t id);
/* The caller's write to stream id was held back (by a resource limit): on_stream_writable fires at the next
 * window update or budget release that leaves the stream room. */
void lp2p__yamux_want_writable(lp2p_yamux *mx, uint32_t id);
/* lp2p_yamux_write whose send ring grows by at most grow bytes of capacity (a resource limit's room):
 * when that binds, fewer bytes are taken, *hit is set and no on_stream_writable is promised (the limit's
 * owner wakes the writer). */
int64_t lp2p__yamux_write_within(lp2p_yamux *mx, uint32_t id, const uint8_t *p, size_t n, size_t grow, int *hit);

struct lp2p_yamux {
  lp2p_mem mem;
  lp2p_yamux_config cfg;
  lp2p_yamux_callbacks cb;
  lp2p_yamux_outbound_fn on_outbound_available;
  void *ud;
  int err;          /* fatal session error */
  int depth;        /* API/callback nesting */
  lp2p_tstamp now;  /* latest time seen */
  uint64_t next_id; /* next outbound stream id */
  uint32_t max_inbound_seen;
  uint32_t n_streams, n_inbound, n_unacked;
  lp2p__yamux_map map;
  lp2p__yamux_stream *ready;                 /* ready ring head (next to serve) */
  lp2p__yamux_stream *closing, *closing_tail;
  lp2p__yamux_stream *blocked, *blocked_tail; /* writers waiting for on_stream_writable, FIFO */
  lp2p__yamux_stream *zombies;               /* closed streams whose bytes are still in flight */
  uint32_t recent[LP2P__YAMUX_RECENT];
  unsigned recent_n, recent_pos;
  /* Output: out[out_off .. out_len) holds control frames and Data frame headers (and, for the contiguous
   * lp2p_yamux_output(), the payload too); the gaps splice payload from stream rings in after out[pos].
   * Allocated on first use, released when drained (see LP2P__YAMUX_OUT_KEEP). */
  uint8_t *out;
  size_t out_off, out_len, out_cap;
  struct lp2p__yamux_gap *gaps; /* FIFO ring of gap_n entries from gap_head, capacity gap_cap */
  size_t gap_head, gap_n, gap_cap;
  size_t gap_done;  /* bytes of the first gap already consumed */
  size_t pending;   /* unsent bytes: out part + gaps */
  /* send accounting */
  size_t buffered;  /* sum of the streams' counted bytes (the session send budget applies to it) */
  size_t ring_cap;  /* sum of the send rings' capacities */
  lp2p__yamux_pool own_pool; /* spare ring buffers (yamux_stream.c) */
  lp2p__yamux_pool *pool;    /* &own_pool or a shared one */
  int tight;                 /* memory is tight (set by the owner): drained rings freed, stalled ones shrunk */
  int budget_freed; /* buffered went down since blocked writers were last looked at */
  uint32_t notify_pass;
  int limit_hit;    /* open_stream returned LP2P_ERR_LIMIT (unacked): report on_outbound_available */
  int outbound_avail;/* ... and the unacked count has dropped below the limit since */
  /* input parser */
  uint8_t hdr[LP2P__YAMUX_HDR_LEN];
  size_t hdr_len;
  uint32_t body_left;               /* Data body bytes still to read */
  uint16_t body_flags;
  lp2p__yamux_stream *body_stream;  /* NULL: discard the body */
  /* ping / keep-alive */
  int ping_out;
  uint32_t ping_val, ping_seq, rtt;
  lp2p_tstamp ping_sent, next_ping;
  int goaway_sent, goaway_recv;
  uint32_t goaway_code;
  /* tunables (set from the public macros at _new; benches/tests may change them) */
  uint32_t max_frame; /* Data payload per frame */
  size_t out_batch;   /* build Data frames until this much output is pending */
  uint32_t tune_rtts; /* grow the receive window when it was used up within this many RTTs */
};

/* Payload of one Data frame, spliced into the output after out[pos]: len bytes of stream s from stream
 * offset seq (s's ring holds them until consumed). */
typedef struct lp2p__yamux_gap {
  size_t pos;
  lp2p__yamux_stream *s;
  uint64_t seq;
  size_t len;
} lp2p__yamux_gap;

/* Session helpers. All return 0 or a (fatal) error. */
/* Appends a 12-byte control frame. On failure the session is failed (NOMEM, or
 * LIMIT when more than LP2P__YAMUX_MAX_PENDING_OUT bytes are unsent) and the
 * error returned. Callers that must not fail the session reserve first. */
int lp2p__yamux_emit(lp2p_yamux *mx, uint8_t type, uint16_t flags, uint32_t id, uint32_t length);
/* Appends a 12-byte frame without the flood check. 0 or LP2P_ERR_NOMEM (nothing changed, session intact). */
int lp2p__yamux_put_frame(lp2p_yamux *mx, uint8_t type, uint16_t flags, uint32_t id, uint32_t length);
/* Room for n more output bytes; pointer to where they go (out + out_len), or
 * NULL (LP2P_ERR_NOMEM, nothing changed). The caller adds what it wrote to out_len and pending. */
uint8_t *lp2p__yamux_out_reserve(lp2p_yamux *mx, size_t n);
/* Fails the session: queues GoAway(goaway_code) unless goaway_code < 0,
 * closes every stream with err. Returns err. */
int lp2p__yamux_fail(lp2p_yamux *mx, int err, int goaway_code);
/* Marks s closed with err and schedules on_stream_close + free. */
void lp2p__yamux_stream_close(lp2p_yamux *mx, lp2p__yamux_stream *s, int err);
/* Enter/leave an API call: leaving the outermost level delivers pending closes. */
void lp2p__yamux_enter(lp2p_yamux *mx);
void lp2p__yamux_leave(lp2p_yamux *mx);
/* Runs on_stream_close for closed streams and frees them (only at depth <= 1). */
void lp2p__yamux_flush_closed(lp2p_yamux *mx);
/* Fires the outbound-available callback if owed (outermost level of feed/output/handle_expiry only). */
void lp2p__yamux_report_outbound(lp2p_yamux *mx);
/* One fewer unacknowledged SYN (ACK, or the stream closed). */
void lp2p__yamux_unacked_dec(lp2p_yamux *mx);
/* Remember a closed/refused inbound id (a later SYN for it is a violation). */
void lp2p__yamux_recent_add(lp2p_yamux *mx, uint32_t id);
/* Live (not closing) stream or NULL. */
lp2p__yamux_stream *lp2p__yamux_live(const lp2p_yamux *mx, uint32_t id);

/* Output queue (yamux_output.c). */
/* Builds Data frames round-robin until `target` bytes are pending; by_ref: payload stays in the rings
 * (gaps), else it is copied into out. Then fires on_stream_writable for blocked writers with room. */
void lp2p__yamux_build(lp2p_yamux *mx, size_t target, int by_ref);
/* With nothing queued and no stream left: frees the output buffer, gap table and spare rings. (While
 * streams exist they are kept for reuse: no malloc/free per message.) */
void lp2p__yamux_release_idle(lp2p_yamux *mx);
/* Frees the drained output buffer, gap table, empty send rings and spare rings (keep-alive tick). */
void lp2p__yamux_trim(lp2p_yamux *mx);
/* Releases everything the output queue holds (session free). */
void lp2p__yamux_output_free(lp2p_yamux *mx);

/* Stream helpers (yamux_stream.c). */
lp2p__yamux_stream *lp2p__yamux_stream_new(lp2p_yamux *mx, uint32_t id, uint32_t flags);
void lp2p__yamux_stream_destroy(lp2p_yamux *mx, lp2p__yamux_stream *s);
/* How many bytes write would accept (per-stream cap and session budget). */
size_t lp2p__yamux_writable(const lp2p_yamux *mx, const lp2p__yamux_stream *s);
void lp2p__yamux_ready_add(lp2p_yamux *mx, lp2p__yamux_stream *s);
void lp2p__yamux_ready_del(lp2p_yamux *mx, lp2p__yamux_stream *s);
/* Stream s has unframed bytes and send window (belongs in the ready ring). */
static inline int lp2p__yamux_sendable(const lp2p__yamux_stream *s) {
  return s->sbuf.len > s->inflight && s->send_window;
}
/* After the send window grew: re-arm readiness and fire on_stream_writable if s waits and has room. */
void lp2p__yamux_stream_room(lp2p_yamux *mx, lp2p__yamux_stream *s);
/* Fires on_stream_writable for every blocked writer that has room now (FIFO). */
void lp2p__yamux_notify_writers(lp2p_yamux *mx);
/* Recomputes s->counted and mx->buffered after s's unframed bytes or send window changed. */
void lp2p__yamux_recount(lp2p_yamux *mx, lp2p__yamux_stream *s);
/* Window update if >= half the window is reclaimable (auto-tunes). */
int lp2p__yamux_maybe_window_update(lp2p_yamux *mx, lp2p__yamux_stream *s);
/* Remote FIN handling (on_stream_eof, full close). */
void lp2p__yamux_remote_fin(lp2p_yamux *mx, lp2p__yamux_stream *s);
/* Serializes one Data frame from s into the output (header in out; payload copied, or by reference as a
 * gap when by_ref). 0, or LP2P_ERR_NOMEM (nothing changed). */
int lp2p__yamux_emit_data(lp2p_yamux *mx, lp2p__yamux_stream *s, int by_ref);
/* Copies n bytes of s's ring starting off bytes after the ring head. */
void lp2p__yamux_ring_copy(const lp2p__yamux_ring *r, size_t off, uint8_t *dst, size_t n);
/* Where byte `off` (after the head) of the ring is and how many bytes follow it contiguously. */
const uint8_t *lp2p__yamux_ring_at(const lp2p__yamux_ring *r, size_t off, size_t *contig);
/* Removes n sent bytes from the head of s's ring (n <= in flight, or <= len when nothing is in flight);
 * releases the ring when it drains and is not worth keeping. */
void lp2p__yamux_ring_sent(lp2p_yamux *mx, lp2p__yamux_stream *s, size_t n);
/* Frees the spare ring buffers. */
void lp2p__yamux_spares_free(lp2p_yamux *mx);
/* Frees s's ring if it is empty. */
void lp2p__yamux_ring_release(lp2p_yamux *mx, lp2p__yamux_stream *s);
/* Bytes delivered to the app and not yet consumed. */
uint32_t lp2p__yamux_consumable(const lp2p_yamux *mx, const lp2p__yamux_stream *s);

/* Test/diagnostic accessors (not exported from the shared library). */
int lp2p__yamux_stream_windows(const lp2p_yamux *mx, uint32_t id, uint64_t *send_window, uint32_t *recv_win,
                               uint32_t *recv_avail, size_t *buffered);
/* Session-wide: budgeted bytes (mx->buffered), ring capacity, output buffer capacity, zombies. */
void lp2p__yamux_send_stats(const lp2p_yamux *mx, size_t *buffered, size_t *ring_cap, size_t *out_cap,
                            size_t *zombies);

#endif
