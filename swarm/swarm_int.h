/* swarm/swarm_int.h - internal structures of the swarm runtime.
 *
 * Files: swarm.c (lifecycle, post, events, behaviours, deferred work, lp2p_timer, connection
 * results), sched.c (the one deadline scheduler and the clock, real or manual), conn.c (one connection: creation, handles, timers/idleness, GoAway, teardown),
 * upgrade.c (its upgrade pipeline and yamux callbacks), conn_io.c (its reads and writes),
 * stream.c (streams and their multistream negotiation), dial.c (dial attempts),
 * listen.c (listeners), peers.c (live-connection peer table, simultaneous-dial rule),
 * registry.c (protocol registry), peerstore.c (the peer store: addresses, protocols, ...; sans-IO),
 * swarm_ps.c (the swarm's side of the peer store, lp2p_swarm_emit, external addresses),
 * gate.c (connection gating: behaviours' allow_inbound / allow_stream),
 * udp.c + interfaces.c (UDP handles, interface table; swarm/udp_int.h),
 * sendall.c (lp2p_stream_send_all's queue).
 *
 * Control flow: every libuv callback into the swarm is bracketed by
 * lp2p__swarm_enter()/lp2p__swarm_leave(). Work that must not run nested
 * (stream on_close, connection teardown, dial completion, output flushing) is
 * queued and executed by leave() once the outermost callback returns, or by
 * the "soon" idle handle when an API call happens outside any swarm callback. */
#ifndef LP2P_SWARM_INT_H
#define LP2P_SWARM_INT_H
#include <uv.h>

#include "core/mem.h"
#include "lp2p/log.h"
#include "lp2p/mss.h"
#include "lp2p/noise.h"
#include "lp2p/swarm.h"
#include "lp2p/uv.h"
#include "swarm/peerstore_int.h"
#include "lp2p/yamux.h"
#include "muxer/yamux_int.h"
#include "transport/transport_int.h"
#include "swarm/rcmgr.h"

#define LP2P__SW_LOG "swarm"
#define LP2P__SW_MAX_ADDRS_PER_PEER 32
#define LP2P__SW_MAX_BEHAVIOURS 64
/* One read buffer per swarm (reads are processed synchronously in read_cb): room for several full
 * Noise frames (65,537 bytes on the wire), decrypted in place. A connection keeps only its trailing
 * partial frame (in the read buffer while no other connection reads, else copied to conn->rbuf). */
#define LP2P__SW_READ_BUF (256 * 1024)
#define LP2P__SW_MAX_LEFTOVER (2 + 65535) /* a partial Noise frame */
#define LP2P__SW_WRITE_HIGH (1024 * 1024) /* stop pulling engine output above this many queued bytes */
/* Seal buffers: LP2P__SW_SEAL_FRAMES full Noise frames each, shared by the swarm's connections through
 * a free list of at most LP2P__SW_WBUF_POOL buffers. A buffer is free again as soon as the socket took
 * its bytes (uv_try_write); only a partly written one waits in libuv's queue (small tails are copied to
 * an exact-size buffer so that a slow connection never pins a whole seal buffer). */
#define LP2P__SW_SEAL_FRAMES 4
#define LP2P__SW_WBUF_CAP (LP2P__SW_SEAL_FRAMES * (LP2P_NOISE_MAX_PLAINTEXT + LP2P_NOISE_FRAME_OVERHEAD))
#define LP2P__SW_WBUF_POOL (LP2P__SW_WRITE_HIGH / LP2P__SW_WBUF_CAP + 2)
#define LP2P__SW_WBUF_SMALL_TAIL (16 * 1024) /* tails below this are copied out of a seal buffer */
/* yamux output is pulled in pieces of at most LP2P__SW_PULL bytes (<= LP2P_YAMUX_OUTPUT_BATCH) ... */
#define LP2P__SW_PULL (2 * (size_t)LP2P_NOISE_MAX_PLAINTEXT)
#define LP2P__SW_IOV 64            /* ... described by at most this many iovecs ... */
#define LP2P__SW_MIN_PULL 1024     /* ... while a seal buffer has room for this much more */
#define LP2P__SW_DIRECT_MIN 4096   /* payload pieces this long are encrypted where the muxer keeps them */
#define LP2P__SW_CLOSE_GRACE_MS 1000      /* max wait for a graceful close to flush */
#define LP2P__SW_RETRY_MS 10              /* retry a flush the muxer could not build (out of memory) */
#define LP2P__SW_MAX_DIAL_ADDRS 64
/* Streams opened on a connection before the peer's muxer has sent us anything.
 * js-libp2p aborts the whole connection when more than 10 streams arrive
 * before its upgrader has attached its stream handler ("early streams"). */
#define LP2P__SW_EARLY_STREAMS 8
#define LP2P__SW_MAX_RESOLUTIONS 8 /* DNS lookups per dial */
/* Outbound protocols the peer has accepted on a connection (hashes): a later stream proposing exactly
 * one of them is negotiated optimistically (lazily): on_open follows the proposal at once and the first
 * writes travel with it; a late "na" fails the stream with LP2P_ERR_UNSUPPORTED. */
#define LP2P__SW_KNOWN_PROTOS 4

typedef struct lp2p__conn lp2p__conn;

/* A deadline in the swarm's scheduler (sched.c). fn runs inside enter/leave once due; the entry is
 * no longer scheduled then (fn may schedule it again or free its owner). */
typedef struct lp2p__sched_entry {
  lp2p_tstamp due;
  uint64_t seq;  /* insertion order: ties run first-scheduled first */
  size_t slot;   /* heap index + 1, 0 = not scheduled */
  void (*fn)(struct lp2p__sched_entry *e);
} lp2p__sched_entry;

typedef struct lp2p__peer lp2p__peer;
typedef struct lp2p__dial lp2p__dial;
typedef struct lp2p__listener lp2p__listener;
typedef struct lp2p__ifwatch lp2p__ifwatch;

/* An output buffer: a uv_write_t while queued in libuv, else in the swarm's free list. */
typedef struct lp2p__wbuf {
  uv_write_t req;
  struct lp2p__wbuf *next; /* free list */
  lp2p__conn *c;
  size_t cap;
  uint8_t data[];
} lp2p__wbuf;

/* intrusive doubly linked list node */
typedef struct lp2p__link {
  struct lp2p__link *prev, *next;
} lp2p__link;
static inline void lp2p__list_init(lp2p__link *h) { h->prev = h->next = h; }
static inline int lp2p__list_empty(const lp2p__link *h) { return h->next == h; }
static inline void lp2p__list_add_tail(lp2p__link *h, lp2p__link *n) {
  n->prev = h->prev;
  n->next = h;
  h->prev->next = n;
  h->prev = n;
}
static inline void lp2p__list_del(lp2p__link *n) {
  if (!n->next) return;
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = NULL;
}
static inline int lp2p__list_linked(const lp2p__link *n) { return n->next != NULL; }
#define LP2P__CONTAINER(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ---- streams ---- */
typedef enum {
  LP2P__ST_PENDING = 0, /* outbound, waiting for a connection */
  LP2P__ST_NEGOTIATING, /* multistream in progress */
  LP2P__ST_OPEN,        /* on_open delivered */
  LP2P__ST_CLOSED       /* on_close queued or delivered */
} lp2p__stream_state;

struct lp2p_stream {
  lp2p_swarm *sw;
  lp2p__conn *conn;      /* NULL while pending or after detach */
  lp2p__link conn_link;  /* in conn->streams */
  lp2p__link wait_link;  /* in peer->waiting (pending outbound) */
  lp2p__link close_link; /* in sw->closeq */
  lp2p__link open_link;  /* in sw->openq (lazy negotiation: on_open due) */
  lp2p_peer_id peer;     /* len 0 = unknown */
  lp2p_direction dir;
  lp2p__stream_state state;
  uint32_t id;
  int has_id; /* yamux still knows id (user pointer set) */
  lp2p_stream_handler h;
  void *ud;
  void *user;
  lp2p_mss *mss;
  char **protos; /* outbound proposals */
  size_t n_protos;
  char *protocol;            /* agreed */
  lp2p_tstamp nego_deadline; /* 0 = none */
  int said_na;               /* inbound: we answered "na" at least once */
  int lazy;                  /* outbound, optimistic: OPEN before the peer confirmed (s->mss still set) */
  int fin_pending;           /* close_write waits for the proposal to reach the muxer */
  int manual_consume;
  int write_closed, eof, want_writable;
  int close_err;
  int in_cb; /* a user callback of this stream is running */
  int denied; /* inbound: a behaviour's allow_stream refused a proposal (gate.c) */
  struct lp2p__sendq *sendq; /* lp2p_stream_send_all bytes not yet taken (swarm/sendall.c), NULL if none */
  /* resource manager (rcmgr.c) */
  lp2p__rc_scope rc;
  lp2p__rc_proto *rc_proto;
  lp2p__conn *rc_conn; /* the connection charged (set while rc_on) */
  lp2p__link rc_link;  /* in sw->rc_waiters: a write was short for want of room */
  uint64_t rc_app;     /* bytes reserved by the protocol */
  uint64_t rc_dyn;     /* negotiation state (lp2p_mss_memory) + protocol id, as last charged */
  uint64_t rc_body;    /* message bodies reserved by the protocol (not charged to the stream scope) */
  int rc_on;
};

/* ---- connections ---- */
typedef enum {
  LP2P__C_CONNECTING = 0, /* outbound TCP connect in progress */
  LP2P__C_MSS_SEC,        /* multistream for /noise (plaintext) */
  LP2P__C_NOISE,          /* Noise handshake */
  LP2P__C_MSS_MUX,        /* multistream for the muxer inside Noise */
  LP2P__C_READY,          /* yamux session up */
  LP2P__C_CLOSING         /* teardown started */
} lp2p__conn_state;

struct lp2p__conn {
  lp2p_swarm *sw;
  uint64_t id;
  lp2p__link sw_link;      /* sw->conns */
  lp2p__link peer_link;    /* peer->conns */
  lp2p__link pending_link; /* sw->dirty (flush) */
  lp2p__link close_link;   /* sw->conn_closeq */
  lp2p_direction dir;
  lp2p__conn_state state;
  const lp2p__transport *tr;
  uv_stream_t *io;
  uv_connect_t connect_req;
  lp2p__sched_entry tmo; /* deadlines (lp2p__conn_arm), then the close grace period */
  int tmo_reserved;      /* holds a scheduler slot */
  uv_shutdown_t shutdown_req;
  int io_open, reading, shutting_down, eof_seen;
  lp2p_multiaddr *remote_addr, *local_addr;
  lp2p_peer_id expected; /* len 0 = none */
  lp2p_peer_id remote;   /* after the handshake */
  lp2p__peer *peer;      /* after READY */
  lp2p__dial *dial;      /* outbound: the attempt this conn belongs to (until READY/failure) */
  lp2p_bytes rbuf;       /* received bytes not yet consumed by the current layer */
  lp2p_bytes staged;     /* upgrade output queued by the read path (wire bytes), sent before the rest */
  lp2p_mss *mss;
  lp2p_noise *noise;
  lp2p_yamux *mx;
  lp2p_tstamp deadline;   /* dial/handshake deadline while upgrading */
  lp2p_tstamp idle_since; /* 0 = not idle */
  lp2p_tstamp armed;      /* due time tmo is scheduled for, 0 = not scheduled */
  lp2p__link streams;     /* lp2p_stream.conn_link */
  size_t n_streams, n_negotiating;
  int live; /* counted in peer->live */
  int goaway_sent, goaway_recv;
  int close_reason;
  int close_queued;
  int tearing; /* teardown running: no more dirty/close queuing */
  int in_feed;
  int write_blocked; /* socket queue above high water */
  int flush_retry;   /* the muxer failed to build output (no memory): flush again soon */
  int was_ready;
  int remote_seen;        /* a yamux frame arrived from the peer (its muxer runs) */
  int mx_blocked;         /* yamux refused a new stream (un-ACKed SYN limit): peer->waiting waits */
  uint64_t known[LP2P__SW_KNOWN_PROTOS]; /* accepted outbound protocols (hashes, 0 = free) */
  unsigned known_next;
  int counted_pending_in; /* counted in sw->pending_inbound */
  int counted_in, counted_out;
  /* resource manager (rcmgr.c) */
  lp2p__rc_scope rc;
  lp2p__rc_peer *rc_peer;
  uint64_t rc_held; /* fixed charge */
  uint64_t rc_mx;   /* muxer send side + socket queue, as last charged */
  int rc_open;
};

/* ---- peer table ---- */
struct lp2p__peer {
  lp2p__peer *hnext;   /* hash chain */
  lp2p__link lru_link; /* sw->peer_lru (address book eviction) */
  lp2p_peer_id id;
  lp2p__link conns;    /* lp2p__conn.peer_link (ready connections, live or demoted) */
  lp2p__conn *primary; /* the connection new streams use */
  int live;            /* number of live connections */
  int holds;
  lp2p__dial *dial;   /* coalesced dial in progress */
  lp2p__link waiting; /* lp2p_stream.wait_link */
  int routing;        /* the peer router (lp2p_swarm_set_peer_router) is looking for addresses */
};

/* ---- dials ---- */
typedef struct lp2p__dial_waiter {
  lp2p_dial_fn cb;
  void *ud;
} lp2p__dial_waiter;

struct lp2p__dial {
  lp2p_swarm *sw;
  lp2p__link link;      /* sw->dials */
  lp2p__link done_link; /* sw->dial_doneq */
  lp2p_peer_id peer;    /* len 0 = unknown until handshake */
  lp2p__peer *pe;       /* coalescing owner (peer known) */
  lp2p_multiaddr *addrs[LP2P__SW_MAX_DIAL_ADDRS];
  lp2p_peer_id expect[LP2P__SW_MAX_DIAL_ADDRS]; /* per-address expected id (from /p2p) */
  int pre_err[LP2P__SW_MAX_DIAL_ADDRS];         /* error known before dialing (0 = dial it) */
  size_t n, idx;
  lp2p_dial_error errs[LP2P__SW_MAX_DIAL_ADDRS];
  size_t n_errs;
  lp2p__dial_waiter *waiters;
  size_t n_waiters, cap_waiters;
  lp2p__conn *cur;
  lp2p__resolve_req *resolving; /* DNS resolution in progress for addrs[idx - 1] */
  const lp2p__resolver *resolver;
  int n_resolutions; /* bounded: nested /dnsaddr chains */
  int result;        /* final result once done */
  lp2p_peer_id result_peer;
  int done;
  int routing; /* waiting for the peer router (no address known yet): nothing dialed */
};

/* ---- listeners ---- */
struct lp2p__listener {
  lp2p_swarm *sw;
  lp2p__link link;
  const lp2p__transport *tr;
  uv_stream_t *srv;
  lp2p_multiaddr *requested; /* as given */
  lp2p_multiaddr *bound;     /* port resolved */
  lp2p_multiaddr **addrs;    /* reported addresses (interface expansion) */
  size_t n_addrs;
};

/* ---- registry ---- */
typedef struct lp2p__proto {
  char *id;
  size_t len;
  lp2p_stream_handler h;
  void *ud;
} lp2p__proto;

typedef struct lp2p__behaviour {
  const lp2p_behaviour_vtable *vt;
  void *self;
} lp2p__behaviour;

typedef struct lp2p__post {
  struct lp2p__post *next;
  void (*fn)(lp2p_swarm *, void *);
  void *arg;
  void (*drop)(void *); /* lp2p_swarm_post2: called instead of fn when dropped */
} lp2p__post;

typedef struct lp2p__task {
  lp2p__link link;
  void (*fn)(lp2p_swarm *, void *);
  void *arg;
  void (*drop)(lp2p_swarm *, void *); /* called instead of fn when the swarm is freed first */
} lp2p__task;

typedef struct lp2p__ext lp2p__ext; /* external addresses (swarm_ps.c) */

struct lp2p_timer {
  lp2p_swarm *sw;
  lp2p__link link;
  lp2p__sched_entry e;
  uint64_t repeat;
  lp2p_timer_fn fn;
  void *ud;
};

struct lp2p_swarm {
  lp2p_mem mem;
  lp2p_swarm_config cfg;
  char *agent;
  lp2p_peer_id local;
  uv_loop_t *loop;
  uv_loop_t own_loop;
  int owns_loop, running, stopping, freeing;
  int depth;   /* callback nesting */
  int handles; /* open libuv handles owned by the swarm (release when 0 while freeing) */
  uv_async_t async;
  uv_mutex_t post_mu;
  lp2p__post *post_head, *post_tail;
  int post_closed;
  uv_idle_t soon;
  int soon_active;
  /* the scheduler (sched.c) */
  lp2p__sched_entry **heap; /* min-heap by (due, seq); cap_heap >= n_reserved >= n_heap */
  size_t n_heap, cap_heap, n_reserved;
  uint64_t sched_seq;
  uv_timer_t sched_timer; /* real time: armed for heap[0] */
  int sched_open, sched_armed;
  uv_close_cb sched_close_cb; /* set when the swarm is freed: close the timer once the heap is empty */
  lp2p_tstamp sched_armed_due;
  int manual;              /* cfg.manual_clock */
  lp2p_tstamp manual_now;  /* the manual clock */
  lp2p_noise_identity *noise_id; /* static key + signed payload shared by every Noise session */
  uint8_t *readbuf;     /* LP2P__SW_READ_BUF bytes, see above */
  lp2p__conn *rb_owner; /* its partial frame is readbuf[rb_off .. rb_off + rb_len) */
  size_t rb_off, rb_len;
  uint64_t rb_evictions; /* partial frames moved out of readbuf for another connection (statistics) */
  lp2p__wbuf *wpool; /* free seal buffers (LP2P__SW_WBUF_CAP bytes each) */
  size_t n_wpool;
  lp2p_swarm_event_fn ev_fn;
  void *ev_ud;
  lp2p__behaviour behaviours[LP2P__SW_MAX_BEHAVIOURS];
  size_t n_behaviours;
  lp2p__proto *protos;
  size_t n_protos, cap_protos;
  const char **proto_list; /* cached pointers for lp2p_swarm_protocols / mss ls */
  lp2p__link conns;        /* all connections */
  lp2p__link listeners;
  lp2p__link dials;
  lp2p__link timers;
  lp2p__link udps;                /* lp2p_udp handles (swarm/udp.c) */
  struct lp2p__ifwatch *ifw;      /* interface snapshot and poll (swarm/interfaces.c), NULL until asked */
  lp2p__link dirty;       /* conns needing flush/arm */
  lp2p__link conn_closeq; /* conns to tear down */
  lp2p__link closeq;      /* streams whose on_close is due */
  lp2p__link openq;       /* lazily negotiated streams whose on_open is due */
  lp2p__link dial_doneq;  /* finished dials whose callbacks are due */
  lp2p__link tasks;       /* deferred internal tasks */
  lp2p__peer **ptab;      /* peer hash table */
  size_t ptab_cap, n_peers;
  lp2p__link peer_lru;
  uint64_t next_conn_id;
  uint64_t dial_count;
  uint32_t pending_inbound, n_inbound, n_outbound;
  /* peer store & co. (swarm_ps.c) */
  lp2p_peerstore *ps;
  lp2p__sched_entry ps_tmo; /* earliest address / external-address expiry (scheduler entry) */
  int ps_timer_open, ps_task_queued;
  lp2p__ext *ext;
  /* resource manager (rcmgr.c) */
  lp2p__rcmgr rc;
  lp2p__link rc_waiters; /* streams whose write was short for want of room */
  int rc_wake_queued;
  uint64_t rc_peak;      /* node usage peak since the last allocator trim */
  /* peer routing hook (peers.c, lp2p_swarm_set_peer_router) */
  lp2p_peer_router_fn router;
  void *router_ud;
  int rc_trim_queued;
  lp2p__yamux_pool ypool; /* node-wide spare send rings, shared by the sessions (capped, charged to the node) */
  uint64_t rc_pools;      /* spare rings + free seal buffers, as last charged to the node */
  int rc_squeeze_queued;
  lp2p_tstamp rc_trimmed;  /* last allocator trim */
  lp2p__sched_entry rc_trim_e; /* a fall in usage: trimmed once releases paused (rcmgr.c) */
  int rc_trim_open;            /* rc_trim_e has its scheduler slot */
  lp2p_tstamp rc_fall_at;      /* when the pending fall was seen (0: none pending) */
  lp2p_tstamp rc_last_release; /* last release while a fall is pending */
  lp2p_tstamp rc_squeezed; /* last squeeze pass (at most one per LP2P__RC_SQUEEZE_MS) */
};

/* swarm.c */
void lp2p__swarm_enter(lp2p_swarm *sw);
void lp2p__swarm_leave(lp2p_swarm *sw);
void lp2p__swarm_kick(lp2p_swarm *sw); /* make sure queued work runs soon */
int lp2p__swarm_defer(lp2p_swarm *sw, void (*fn)(lp2p_swarm *, void *), void *arg);
/* Same; drop(sw, arg) instead of fn when the swarm is freed before the task ran. */
int lp2p__swarm_defer2(lp2p_swarm *sw, void (*fn)(lp2p_swarm *, void *), void *arg,
                       void (*drop)(lp2p_swarm *, void *));
void lp2p__swarm_emit(lp2p_swarm *sw, const lp2p_swarm_event *ev);

/* sched.c */
lp2p_tstamp lp2p__swarm_now(const lp2p_swarm *sw);
int lp2p__sched_init(lp2p_swarm *sw);
void lp2p__sched_close(lp2p_swarm *sw, uv_close_cb cb); /* closes the uv_timer once nothing is scheduled */
int lp2p__sched_reserve(lp2p_swarm *sw);               /* one more entry may be scheduled (NOMEM) */
void lp2p__sched_unreserve(lp2p_swarm *sw, lp2p__sched_entry *e); /* cancels e, gives the slot back */
void lp2p__sched_set(lp2p_swarm *sw, lp2p__sched_entry *e, lp2p_tstamp due); /* (re)schedules e */
void lp2p__sched_cancel(lp2p_swarm *sw, lp2p__sched_entry *e);
void lp2p__sched_run_all(lp2p_swarm *sw); /* manual clock, swarm freeing: runs what is left */
void lp2p__swarm_handle_closed(lp2p_swarm *sw); /* a handle's close callback ran */
/* Connection results (from the connection layer): c is upgraded (peer table, then its dial attempt);
 * c is torn down, its streams already failed (its dial attempt fails, it leaves the peer table and
 * the peer's waiting streams move on). */
void lp2p__swarm_conn_ready(lp2p_swarm *sw, lp2p__conn *c);
void lp2p__swarm_conn_gone(lp2p_swarm *sw, lp2p__conn *c, int reason);
void lp2p__swarm_conn_demoted(lp2p_swarm *sw, lp2p__conn *c, int reason); /* GoAway: leaves the live set */
int lp2p__behaviours_keep_alive(lp2p_swarm *sw, const lp2p_peer_id *peer);
const char *lp2p__peer_str(const lp2p_peer_id *id, char *buf, size_t cap);
const char *lp2p__ma_str(const lp2p_multiaddr *ma, char *buf, size_t cap);

/* conn.c */
int lp2p__conn_new_outbound(lp2p_swarm *sw, lp2p__dial *d, const lp2p_multiaddr *ma,
                            const lp2p_peer_id *expect, lp2p__conn **out);
void lp2p__conn_accept(lp2p_swarm *sw, lp2p__listener *l);
void lp2p__conn_close(lp2p__conn *c, int reason); /* deferred teardown */
void lp2p__conn_goaway(lp2p__conn *c);            /* demote: no new streams, close when idle */
void lp2p__conn_mark_dirty(lp2p__conn *c);
void lp2p__conn_flush(lp2p__conn *c);
void lp2p__conn_teardown(lp2p__conn *c); /* run from the close queue */
void lp2p__conn_arm(lp2p__conn *c);
int lp2p__conn_can_open(const lp2p__conn *c); /* early-stream gate, un-ACKed SYN limit */
void lp2p__conn_unblock(lp2p__conn *c);       /* yamux can open streams again */
void lp2p__conn_log(const lp2p__conn *c, lp2p_log_level lvl, const char *what, int err);
void lp2p__conn_close_io(lp2p__conn *c);    /* uv_close the transport stream (once) */
void lp2p__conn_close_timer(lp2p__conn *c); /* no more deadlines (frees c once io is closed too) */

/* upgrade.c */
int lp2p__upgrade_start(lp2p__conn *c); /* connected: multistream for /noise (state MSS_SEC) */
int lp2p__upgrade_new_noise(lp2p__conn *c);
/* Runs received bytes through the layers. Returns bytes used, or an error. */
int64_t lp2p__upgrade_drive(lp2p__conn *c, uint8_t *in, size_t len);

/* conn_io.c */
int lp2p__conn_start_reading(lp2p__conn *c);
int lp2p__conn_flush_out(lp2p__conn *c); /* pushes pending engine output to the socket (error: caller closes) */
int lp2p__conn_stage_out(lp2p__conn *c); /* queues the upgrade layers' output in order, no I/O */
void lp2p__wbuf_pool_free(lp2p_swarm *sw);

/* stream.c */
lp2p_stream *lp2p__stream_alloc(lp2p_swarm *sw, lp2p_direction dir, const lp2p_stream_handler *h, void *ud);
/* Opens the yamux stream and proposes. 0, LP2P__SW_BLOCKED (yamux at its un-ACKed SYN limit: nothing
 * done, the caller queues s in peer->waiting and sets c->mx_blocked) or an error. */
#define LP2P__SW_BLOCKED 1
int lp2p__stream_start_outbound(lp2p_stream *s, lp2p__conn *c);
void lp2p__stream_deliver_open(lp2p_stream *s); /* from the open queue */
/* c is retired in favour of another connection to pe (simultaneous dial): its outbound streams still
 * negotiating (no on_open yet, nothing written by the app) are reset there and queued in front of
 * pe->waiting, to start over on the kept connection. (js-libp2p may leave a stream it received just
 * before our GoAway unanswered.) */
void lp2p__stream_restart_negotiating(lp2p__conn *c, lp2p__peer *pe);
int lp2p__stream_on_inbound(lp2p__conn *c, uint32_t id);        /* yamux on_stream_open */
void lp2p__stream_mx_data(lp2p_stream *s, const uint8_t *p, size_t n);
void lp2p__stream_mx_eof(lp2p_stream *s);
void lp2p__stream_mx_writable(lp2p_stream *s);
void lp2p__stream_mx_close(lp2p_stream *s, int err);
void lp2p__stream_fail(lp2p_stream *s, int err); /* detach and queue on_close(err) */
void lp2p__stream_deliver_close(lp2p_stream *s); /* from the close queue */
void lp2p__stream_check_deadline(lp2p_stream *s, lp2p_tstamp now);
void lp2p__stream_flush_mss(lp2p_stream *s);
int lp2p__conn_knows(const lp2p__conn *c, const char *proto);
void lp2p__conn_learn(lp2p__conn *c, const char *proto, int ok); /* ok 0: forget */
/* Copies a handler given with any struct_size (the missing members zeroed); the registry uses it too. */
void lp2p__copy_handler(lp2p_stream_handler *dst, const lp2p_stream_handler *src);
int64_t lp2p__stream_write_now(lp2p_stream *s, const uint8_t *p, size_t n); /* lp2p_stream_write minus send_all */

/* sendall.c (lp2p_stream_send_all) */
int64_t lp2p__sendq_gate(lp2p_stream *s, size_t n); /* lp2p_stream_write while send_all bytes wait */
int lp2p__sendq_fin(lp2p_stream *s);                /* lp2p_stream_close_write while they wait */
int lp2p__sendq_drain(lp2p_stream *s);              /* writable: 1 = queue gone, go on; 0 = still waiting */
void lp2p__sendq_free(lp2p_stream *s);

/* rcmgr.c (see rcmgr.h) */
void lp2p__rc_config_default(lp2p_swarm_config *cfg);
void lp2p__rcs_conn_open(lp2p__conn *c);  /* new connection: fixed charge, counted */
void lp2p__rcs_conn_peer(lp2p__conn *c);  /* its peer is known: charged to the peer scope too */
void lp2p__rcs_conn_sync(lp2p__conn *c);  /* muxer send side + socket queue changed */
void lp2p__rcs_conn_close(lp2p__conn *c); /* releases everything (its streams released theirs) */
/* c's scopes have room for n more bytes (1) or not (0); the flush stops queueing seal buffers behind a
 * full socket when they have not (1 when c is not charged). */
int lp2p__rcs_conn_room(lp2p__conn *c, size_t n);
/* s joins c (after the swarm's own limits): 0 or LP2P_ERR_LIMIT (nothing charged: refuse it). */
int lp2p__rcs_stream_attach(lp2p_stream *s, lp2p__conn *c);
void lp2p__rcs_stream_detach(lp2p_stream *s); /* releases everything s holds (idempotent) */
/* protocol agreed: 0, or LP2P_ERR_LIMIT / LP2P_ERR_NOMEM (refuse the stream) */
int lp2p__rcs_stream_protocol(lp2p_stream *s, const char *protocol);
/* How much of n bytes s may write now; when fewer, s waits for room (on_writable follows). */
/* How much of an n-byte write may be buffered now (the rest waits in the app, the stream is woken later),
 * and by how much its send ring may grow (*grow). */
size_t lp2p__rcs_write_room(lp2p_stream *s, size_t n, size_t *grow);
void lp2p__rcs_wait(lp2p_stream *s);
void lp2p__rcs_stream_sync(lp2p_stream *s); /* its negotiation state or protocol id changed */ /* a write was held back by a limit: wake s once room returns */
void lp2p__rcs_pools_sync(lp2p_swarm *sw); /* the node-wide pools changed size */
void lp2p__rcs_free(lp2p_swarm *sw);
void lp2p__rcs_start(lp2p_swarm *sw); /* the scheduler is up: reserve the trim deadline */
void lp2p__rcs_stop(lp2p_swarm *sw);  /* the swarm is being freed: give it back */

/* dial.c */
int lp2p__dial_start(lp2p_swarm *sw, const lp2p_peer_id *peer, const lp2p_multiaddr *const *addrs, size_t n,
                     lp2p_dial_fn cb, void *ud);
void lp2p__dial_conn_failed(lp2p__dial *d, lp2p__conn *c, int err);
void lp2p__dial_conn_ready(lp2p__dial *d, lp2p__conn *c);
void lp2p__dial_finish_callbacks(lp2p__dial *d); /* from the done queue */
void lp2p__dial_cancel_all(lp2p_swarm *sw);

/* listen.c */
void lp2p__listeners_close_all(lp2p_swarm *sw);

/* peers.c */
lp2p__peer *lp2p__peer_find(const lp2p_swarm *sw, const lp2p_peer_id *id);
lp2p__peer *lp2p__peer_get(lp2p_swarm *sw, const lp2p_peer_id *id); /* create if absent; NULL on OOM */
void lp2p__peer_touch(lp2p_swarm *sw, lp2p__peer *pe);
void lp2p__peer_maybe_evict(lp2p_swarm *sw);
void lp2p__peers_free_all(lp2p_swarm *sw);
int lp2p__peer_busy(const lp2p_swarm *sw, const lp2p_peer_id *peer); /* connected, dialing, waiting, held */
void lp2p__peer_conn_ready(lp2p_swarm *sw, lp2p__conn *c); /* connection became usable: live set + events */
void lp2p__peer_conn_gone(lp2p_swarm *sw, lp2p__conn *c, int reason); /* leaves the live set */
void lp2p__peer_open_waiting(lp2p_swarm *sw, lp2p__peer *pe);
/* Streams queued behind the un-ACKed SYN limit time out like a negotiation: earliest deadline (or
 * LP2P_TSTAMP_NEVER), and failing the expired ones. */
lp2p_tstamp lp2p__peer_waiting_due(const lp2p__peer *pe);
void lp2p__peer_expire_waiting(lp2p_swarm *sw, lp2p__peer *pe, lp2p_tstamp now);
void lp2p__peer_fail_waiting(lp2p_swarm *sw, lp2p__peer *pe, int err);
/* Asks the peer router for pe's addresses (0: lookup running; LP2P_ERR_NOT_CONNECTED: no router / refused). */
int lp2p__peer_route(lp2p_swarm *sw, lp2p__peer *pe);
/* The peer router's lookup for a routing dial ended: dial what the peer store knows now, or fail. */
void lp2p__dial_routed(lp2p__dial *d, int err);
const lp2p__proto *lp2p__registry_find(const lp2p_swarm *sw, const char *id, size_t len);
void lp2p__registry_free(lp2p_swarm *sw);
extern const lp2p_mss_registry lp2p__registry_mss; /* ud = sw */
int lp2p__split_p2p(const lp2p_multiaddr *ma, lp2p_multiaddr **base, lp2p_peer_id *id);

/* swarm_ps.c */
int lp2p__swarm_ps_init(lp2p_swarm *sw);  /* peer store + external addresses (swarm_init) */
void lp2p__swarm_ps_start(lp2p_swarm *sw); /* the expiry timer, once sw->loop is set */
void lp2p__swarm_ps_close(lp2p_swarm *sw); /* lp2p_swarm_free: close the timer, free store + external addrs */
void lp2p__swarm_ps_conn_ready(lp2p_swarm *sw, lp2p__conn *c); /* dialed address, last seen */
/* Addresses to dial for a known peer (unexpired, from the store). */
size_t lp2p__swarm_ps_dial_addrs(lp2p_swarm *sw, const lp2p_peer_id *peer, const lp2p_multiaddr **out, size_t max);
int lp2p__swarm_ps_dialable(lp2p_swarm *sw, const lp2p_peer_id *peer); /* has an unexpired address */

/* gate.c: 0 = allowed, LP2P_ERR_DENIED */
int lp2p__gate_inbound_conn(lp2p__conn *c);
extern const lp2p_mss_registry lp2p__gate_registry_mss; /* ud = the inbound lp2p_stream */
int lp2p__gate_stream_err(const lp2p_stream *s, int err); /* err, or LP2P_ERR_DENIED for a denied stream */

#endif
