/* muxer/yamux_int.h - internals of the Yamux engine shared by yamux_frame.c,
 * yamux_map.c, yamux_stream.c and yamux_session.c (and reachable by tests that
 * link the static library). Nothing here is part of the public API.
 *
 * Ownership: the session owns every stream (lp2p__yamux_stream), the stream map
 * and the output buffer; streams own their send ring. All memory goes through
 * the session's lp2p_mem. */
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
  YX_NOTIFY = 1u << 9,       /* in the writable-notification list */
  YX_ANNOUNCED = 1u << 10,   /* the application knows the id: on_stream_close owed */
};

/* Send buffer: a ring of bytes. */
typedef struct lp2p__yamux_ring {
  uint8_t *data;
  size_t cap, head, len;
} lp2p__yamux_ring;

typedef struct lp2p__yamux_stream {
  uint32_t id;
  uint32_t flags;
  int close_err;
  void *user;
  uint64_t send_window;     /* what the peer still lets us send */
  lp2p__yamux_ring sbuf;    /* accepted, not yet framed */
  uint32_t recv_win;        /* target receive window (auto-tuned) */
  uint32_t recv_avail;      /* what the peer may still send (advertised - received) */
  uint32_t recv_held;       /* received (incl. the frame being read) and not yet consumed */
  lp2p_tstamp epoch;        /* when the last window update was sent (auto-tuning) */
  struct lp2p__yamux_stream *rnext, *rprev; /* ready ring */
  struct lp2p__yamux_stream *cnext;         /* closing list */
  struct lp2p__yamux_stream *nnext;         /* writable-notification list */
} lp2p__yamux_stream;

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
/* Auto-tuning threshold in RTTs. bench_yamux (simulated links): 2 reaches the throughput of 4 with half
 * the window; 1 is slightly slower and fragile when queueing inflates the RTT. */
#define LP2P__YAMUX_TUNE_RTTS 2

struct lp2p_yamux {
  lp2p_mem mem;
  lp2p_yamux_config cfg;
  lp2p_yamux_callbacks cb;
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
  lp2p__yamux_stream *notify;
  uint32_t recent[LP2P__YAMUX_RECENT];
  unsigned recent_n, recent_pos;
  /* output */
  uint8_t *out;
  size_t out_off, out_len, out_cap; /* unsent = out[out_off .. out_len) */
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

/* Session helpers used by yamux_stream.c. All return 0 or a (fatal) error. */
/* Appends a 12-byte control frame. On failure the session is failed (NOMEM, or
 * LIMIT when more than LP2P__YAMUX_MAX_PENDING_OUT bytes are unsent) and the
 * error returned. Callers that must not fail the session reserve first. */
int lp2p__yamux_emit(lp2p_yamux *mx, uint8_t type, uint16_t flags, uint32_t id, uint32_t length);
/* Room for n more output bytes; pointer to where they go (out + out_len), or
 * NULL (LP2P_ERR_NOMEM, nothing changed). */
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
/* Remember a closed/refused inbound id (a later SYN for it is a violation). */
void lp2p__yamux_recent_add(lp2p_yamux *mx, uint32_t id);
/* Live (not closing) stream or NULL. */
lp2p__yamux_stream *lp2p__yamux_live(const lp2p_yamux *mx, uint32_t id);

/* Stream helpers (yamux_stream.c). */
lp2p__yamux_stream *lp2p__yamux_stream_new(lp2p_yamux *mx, uint32_t id, uint32_t flags);
void lp2p__yamux_stream_destroy(lp2p_yamux *mx, lp2p__yamux_stream *s);
size_t lp2p__yamux_writable(const lp2p__yamux_stream *s);
void lp2p__yamux_ready_add(lp2p_yamux *mx, lp2p__yamux_stream *s);
void lp2p__yamux_ready_del(lp2p_yamux *mx, lp2p__yamux_stream *s);
/* After the send window grew or the buffer drained: re-arm readiness and
 * fire on_stream_writable if a writer waits (immediately). */
void lp2p__yamux_stream_room(lp2p_yamux *mx, lp2p__yamux_stream *s);
/* Window update if >= half the window is reclaimable (auto-tunes). */
int lp2p__yamux_maybe_window_update(lp2p_yamux *mx, lp2p__yamux_stream *s);
/* Remote FIN handling (on_stream_eof, full close). */
void lp2p__yamux_remote_fin(lp2p_yamux *mx, lp2p__yamux_stream *s);
/* Serializes one Data frame from s into the output. 0, or LP2P_ERR_NOMEM (nothing changed). */
int lp2p__yamux_emit_data(lp2p_yamux *mx, lp2p__yamux_stream *s);
/* Bytes delivered to the app and not yet consumed. */
uint32_t lp2p__yamux_consumable(const lp2p_yamux *mx, const lp2p__yamux_stream *s);

/* Test/diagnostic accessors (not exported from the shared library). */
int lp2p__yamux_stream_windows(const lp2p_yamux *mx, uint32_t id, uint64_t *send_window, uint32_t *recv_win,
                               uint32_t *recv_avail, size_t *buffered);

#endif
