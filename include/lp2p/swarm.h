/* lp2p/swarm.h - the swarm: the one runtime per node.
 *
 * A swarm owns the node's sockets, timers and (unless attached to an app loop
 * with lp2p_swarm_new_uv() from lp2p/uv.h) its libuv loop. It drives the
 * sans-IO engines (multistream-select, Noise, Yamux) and is the ONLY way lp2p
 * code touches the network: every behaviour (ping, identify, kad, ...) and every
 * app protocol shares its connections.
 *
 * ---------------------------------------------------------------------------
 * Threading
 *   A swarm and everything reachable from it (streams, timers, behaviours) is
 *   single-threaded: call its functions only from the thread running its loop
 *   (inside lp2p_swarm_run(), or the thread that runs the app's uv loop).
 *   The single exception is lp2p_swarm_post(), callable from any thread.
 *
 * Reentrancy
 *   Every callback the swarm makes (stream handlers, dial callbacks, events,
 *   behaviour hooks, timers, posted functions) may call any swarm/stream/timer
 *   function EXCEPT lp2p_swarm_free() and lp2p_swarm_run(). Closes requested
 *   inside a callback (lp2p_stream_reset, lp2p_swarm_disconnect, ...) are
 *   deferred: they take effect after the current callback returns; the
 *   corresponding on_close / CONN_CLOSED is never delivered nested inside
 *   another callback of the same object. Memory is released only after the last
 *   callback for an object has returned (libuv uv_close discipline).
 *   Output produced by writes is flushed once the current callback chain
 *   unwinds (at the latest on the next loop iteration).
 *
 * Connections
 *   The swarm keeps exactly ONE usable connection per remote peer.
 *   Upgrade pipeline (dialer = initiator = yamux client, odd stream ids):
 *     TCP -> multistream-select "/noise" -> Noise XX (muxers ["/yamux/1.0.0"]
 *     offered in the handshake extension; expected peer id from /p2p/ enforced)
 *     -> if Noise agreed a muxer use it, else multistream-select
 *     "/yamux/1.0.0" inside Noise -> yamux session.
 *   The dialer sends Noise msg1 right behind its "/noise" proposal (lazy, as
 *   rust-libp2p's V1Lazy), without waiting a round trip for the echo.
 *   Bytes that follow a negotiated multistream line are kept for the next layer.
 *   Yamux pings from the peer are answered; a keep-alive ping is sent every
 *   keepalive_interval_ms and the connection dies with LP2P_ERR_TIMEOUT if it is
 *   not answered within keepalive_timeout_ms.
 *
 *   Simultaneous dial rule: if a second connection to an already connected peer
 *   completes its upgrade, both sides deterministically keep the connection that
 *   was DIALED BY THE PEER WITH THE SMALLER PEER ID (lp2p_peer_id_cmp over the
 *   multihash bytes); if both were dialed by the same side, the older one is
 *   kept. New streams go to the kept connection at once. The side that DIALED
 *   the losing connection sends a yamux GoAway on it (by then, by causality, the
 *   other side already has the kept connection up); the other side stops using
 *   it for new streams and follows that GoAway. A GoAway'd connection opens no
 *   new streams, lets its existing streams finish, and is closed once it has
 *   none; our outbound streams still negotiating on it (no on_open yet) are
 *   reset there and start over on the kept connection. Connection events are per-peer transitions (0 -> 1 live connection:
 *   CONN_ESTABLISHED, 1 -> 0: CONN_CLOSED), so such a swap emits no event.
 *
 *   A connection stops being live at once when: the remote closes TCP
 *   (LP2P_ERR_EOF), TCP errors/resets (LP2P_ERR_CONNRESET / LP2P_ERR_IO), the
 *   peer sends a yamux GoAway (LP2P_ERR_GOAWAY), a keep-alive ping times out
 *   (LP2P_ERR_TIMEOUT), the peer sends malformed bytes (the engine's error,
 *   e.g. LP2P_ERR_PROTO, LP2P_ERR_DECRYPT), it was idle for idle_timeout_ms
 *   (LP2P_ERR_CLOSED), or it is closed locally (lp2p_swarm_disconnect, swarm
 *   shutdown: LP2P_ERR_CANCELED). If it was the peer's last live connection a
 *   CONN_CLOSED event with that reason is emitted immediately, and its open
 *   streams get on_close(err) (a GoAway'd connection lets its streams finish).
 *   A connection is idle when it has no stream, no pending stream open, no
 *   keep-alive hold (lp2p_swarm_keep_alive) and no behaviour's keep_alive hook
 *   returns non-zero; idle_timeout_ms 0 disables idle closing.
 *
 * Streams
 *   Every stream, both directions, is negotiated with multistream-select
 *   through the swarm's ONE protocol registry (lp2p_swarm_set_protocol).
 *   Inbound: the listener answers from the registry (and answers "ls" with it);
 *   an unknown proposal gets "na"; a stream that does not settle within
 *   stream_negotiation_timeout_ms is reset (event INBOUND_STREAM_FAILED).
 *   Outbound: lp2p_swarm_open_stream() proposes the given ids in order; if the
 *   peer accepts none the stream ends with on_close(LP2P_ERR_UNSUPPORTED); if
 *   negotiation does not finish in time, on_close(LP2P_ERR_TIMEOUT). Never hangs.
 *   Optimistic negotiation: a stream proposing exactly ONE protocol that the
 *   peer already accepted on the same connection gets on_open right after the
 *   proposal is queued (the first writes travel with it, no round trip). If the
 *   peer refuses it after all (protocol removed meanwhile), the stream, though
 *   opened, ends with on_close(LP2P_ERR_UNSUPPORTED) and the protocol is
 *   negotiated fully again on that connection; a peer that never answers leaves
 *   such a stream open (the application's own timeouts apply, as for any open
 *   stream). Several proposals or a protocol not yet accepted on the
 *   connection: full negotiation, on_open only after the peer's answer.
 *   Until the peer's muxer has sent its first frame, at most 8 streams are
 *   opened on a new connection (js-libp2p aborts connections that receive more
 *   than 10 streams before its upgrade completes); later ones wait, then go.
 *   Likewise, beyond yamux's limit of 256 un-acknowledged outbound streams new
 *   ones wait on the connection and open as the peer acknowledges; one still
 *   waiting after stream_negotiation_timeout_ms ends with LP2P_ERR_TIMEOUT.
 *
 * Flow control (chosen: AUTO-CONSUME)
 *   By default the bytes passed to on_data are credited back to the yamux
 *   receive window as soon as on_data returns. An app that buffers data and
 *   wants backpressure calls lp2p_stream_set_manual_consume(s, 1); from then on
 *   it must call lp2p_stream_consume(s, n) after it has processed n bytes, and
 *   the peer stops sending once the window (config yamux_initial_window) is
 *   full. Data is never buffered unboundedly by the swarm.
 *
 * Logging (lp2p/log.h, module "swarm"): with LP2P_LOG=debug every negotiation
 * (peer, connection id, stream id, protocol, result) and every connection
 * open/close with its reason is logged. Malformed input closes only the
 * offending connection or stream, with a logged reason.
 *
 * Signals: creating a swarm sets SIGPIPE to SIG_IGN if it is still SIG_DFL
 * (a peer closing its socket must not kill the process); an application
 * handler is left alone.
 *
 * Errors: negative LP2P_ERR_* codes (lp2p/common.h).
 */
#ifndef LP2P_SWARM_H
#define LP2P_SWARM_H
#include "lp2p/common.h"
#include "lp2p/keys.h"
#include "lp2p/multiaddr.h"
#include "lp2p/peerid.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lp2p_swarm lp2p_swarm;
typedef struct lp2p_stream lp2p_stream;
typedef struct lp2p_timer lp2p_timer;

/* The muxer id the swarm negotiates (same value as lp2p/yamux.h's, if defined there). */
#ifndef LP2P_YAMUX_PROTOCOL_ID
#define LP2P_YAMUX_PROTOCOL_ID "/yamux/1.0.0"
#endif
/* Longest protocol id accepted in the registry / open_stream (multistream line limit minus framing). */
#define LP2P_PROTOCOL_ID_MAX 1000

typedef enum lp2p_direction {
  LP2P_DIR_INBOUND = 0, /* the remote dialed us / opened the stream */
  LP2P_DIR_OUTBOUND = 1 /* we dialed / opened it */
} lp2p_direction;

/* ---------------------------------------------------------------------------
 * Configuration */
typedef struct lp2p_swarm_config {
  size_t struct_size;           /* sizeof(lp2p_swarm_config); set by lp2p_swarm_config_default */
  const lp2p_privkey *identity; /* REQUIRED; borrowed: must outlive the swarm */
  const char *agent_version;    /* copied; default "lp2p/<version>" (read by identify) */

  /* connection limits (0 = unlimited, except where noted) */
  uint32_t max_inbound_conns;      /* default 256: established + pending inbound */
  uint32_t max_outbound_conns;     /* default 256: established + pending outbound; dial => LP2P_ERR_LIMIT */
  uint32_t max_pending_inbound;    /* default 64: inbound connections still in their upgrade */
  uint32_t max_streams_per_conn;   /* default 512: inbound beyond it are reset; outbound => LP2P_ERR_LIMIT */
  uint32_t max_address_book_peers; /* default 4096: peers in the peer store (lp2p/peerstore.h); beyond it the
                                      least useful unconnected one is evicted */

  /* timeouts in milliseconds (0 = disabled) */
  uint32_t handshake_timeout_ms;          /* default 10000: inbound TCP accept -> yamux ready */
  uint32_t dial_timeout_ms;               /* default 10000: per address, TCP connect -> yamux ready */
  uint32_t stream_negotiation_timeout_ms; /* default 10000: multistream on a new stream */
  uint32_t idle_timeout_ms;               /* default 30000: close connections nothing needs (see header) */
  uint32_t keepalive_interval_ms;         /* default 15000: yamux ping period */
  uint32_t keepalive_timeout_ms;          /* default 10000: unanswered ping => LP2P_ERR_TIMEOUT */

  /* yamux */
  uint32_t yamux_initial_window; /* default 256 KiB (the spec's value; never lower it for interop) */
  uint32_t yamux_max_window;     /* default 16 MiB: receive-window auto-tuning ceiling */

  /* peer store (lp2p/peerstore.h); max_address_book_peers above is its peer limit */
  uint32_t max_addrs_per_peer; /* default 32: beyond it the least useful address is dropped */

  /* TESTING FACILITY. 0 (default) = real time. 1 = the swarm's clock is manual: lp2p_swarm_now()
   * starts at an arbitrary non-zero value and moves only in lp2p_swarm_advance(); every swarm
   * deadline (dial, handshake, negotiation and idle timeouts, keep-alive, lp2p_timer) fires only
   * there. Sockets still run on the loop in real time. */
  int manual_clock;

  /* network interfaces (lp2p/udp.h): poll period of the interface table once
   * lp2p_swarm_interfaces() was called; default 5000, 0 = no polling */
  uint32_t interface_poll_ms;
  /* resource limits (appended later; callers with a smaller struct_size get the defaults; 0 =
   * unlimited). See "Resource limits" below. */
  uint64_t max_memory;              /* default 256 MiB: bytes held for all peers together */
  uint64_t max_memory_per_peer;     /* default 32 MiB */
  uint64_t max_memory_per_conn;     /* default 16 MiB */
  uint64_t max_memory_per_stream;   /* default 4 MiB */
  uint64_t max_memory_per_protocol; /* default 0 (unlimited) */
  uint32_t max_streams;             /* default 16384: streams of the node, both directions */
  uint32_t max_streams_per_peer;    /* default 1024: both directions, over all its connections */
  uint32_t max_streams_per_protocol;/* default 0 (unlimited) */
} lp2p_swarm_config;

/* Fills *cfg with defaults (identity NULL: the caller must set it). */
LP2P_EXTERN void lp2p_swarm_config_default(lp2p_swarm_config *cfg);

/* ---------------------------------------------------------------------------
 * Events. Delivered to every behaviour's on_event (in the order added) and
 * then to the app handler. The event and everything it points to is valid
 * only during the call. */
typedef enum lp2p_swarm_event_type {
  /* addr */
  LP2P_SWARM_EV_LISTEN_ADDR_ADDED = 1,
  /* addr, err (0 = lp2p_swarm_unlisten) */
  LP2P_SWARM_EV_LISTEN_ADDR_REMOVED = 2,
  /* peer, addr (remote), dir, conn_id: the peer went from 0 to 1 live connection */
  LP2P_SWARM_EV_CONN_ESTABLISHED = 3,
  /* peer, addr, dir, conn_id, err = reason: the peer went from 1 to 0 */
  LP2P_SWARM_EV_CONN_CLOSED = 4,
  /* peer (may be NULL), err, dial_errors[n_dial_errors] */
  LP2P_SWARM_EV_DIAL_FAILED = 5,
  /* peer, conn_id, err (UNSUPPORTED, TIMEOUT, LIMIT, PROTO, RESET, EOF) */
  LP2P_SWARM_EV_INBOUND_STREAM_FAILED = 6,
  /* addr (remote), err: refused by a limit, by a behaviour's allow_inbound
   * (LP2P_ERR_DENIED), or its upgrade failed */
  LP2P_SWARM_EV_INBOUND_CONN_FAILED = 7,
  /* peer, protocols[n_protocols], addrs[n_addrs] (listen addresses), agent:
   * identify learned the peer's protocols/addresses/agent for the first time
   * on this connection, or they changed (identify push). Not raised when an
   * identify brings nothing new. Raised by the identify behaviour. */
  LP2P_SWARM_EV_PEER_IDENTIFIED = 8,
  /* peer, addrs[n_addrs] (the new ones), source: a discovery source (mDNS,
   * DHT, ...: lp2p_peerstore_add_addrs with a source >= LP2P_ADDR_SRC_MDNS)
   * gave the peer store an address it did not know for that peer. */
  LP2P_SWARM_EV_PEER_DISCOVERED = 9,
  /* peer, source: the peer store lost the peer's last address whose source is
   * a discovery source (its TTL ran out, it was removed or evicted, or the peer
   * was removed/evicted); addresses from other sources may remain. An address
   * whose source was upgraded (e.g. mDNS -> DIALED after a successful dial) no
   * longer counts as a discovery address and raises nothing. */
  LP2P_SWARM_EV_PEER_EXPIRED = 10,
  /* addr: one of our own external addresses is confirmed (configured with
   * lp2p_swarm_add_external_addr, or observed by >= 2 distinct peers) */
  LP2P_SWARM_EV_EXTERNAL_ADDR_CONFIRMED = 11,
  /* addr: a confirmed external address was removed or no longer observed */
  LP2P_SWARM_EV_EXTERNAL_ADDR_EXPIRED = 12,
  /* 13..15 and 17..20 are reserved for other modules */
  /* (nothing): the network interface table changed (lp2p/udp.h, lp2p_swarm_interfaces) */
  LP2P_SWARM_EV_INTERFACES_CHANGED = 16
} lp2p_swarm_event_type;

/* Where a peer-store address came from (lp2p/peerstore.h). Values >= MDNS are
 * "discovery sources" (PEER_DISCOVERED / PEER_EXPIRED). */
typedef enum lp2p_addr_source {
  LP2P_ADDR_SRC_USER = 1,     /* lp2p_swarm_add_address(es), the app */
  LP2P_ADDR_SRC_DIALED = 2,   /* we connected to it successfully */
  LP2P_ADDR_SRC_IDENTIFY = 3, /* the peer's own identify (listen addresses) */
  LP2P_ADDR_SRC_MDNS = 4,     /* discovery: mDNS */
  LP2P_ADDR_SRC_DHT = 5,      /* discovery: Kademlia */
  LP2P_ADDR_SRC_OTHER = 6     /* discovery: anything else (rendezvous, a tracker, ...) */
} lp2p_addr_source;

typedef struct lp2p_dial_error {
  const lp2p_multiaddr *addr; /* the address tried */
  int err;                    /* why it failed, e.g. LP2P_ERR_CONNREFUSED, LP2P_ERR_TIMEOUT,
                                  LP2P_ERR_PEER_ID_MISMATCH, LP2P_ERR_HANDSHAKE */
} lp2p_dial_error;

typedef struct lp2p_swarm_event {
  size_t struct_size; /* sizeof(lp2p_swarm_event) of the library */
  lp2p_swarm_event_type type;
  const lp2p_peer_id *peer;           /* NULL when not applicable/unknown */
  const lp2p_multiaddr *addr;         /* listen address or the connection's remote address; may be NULL */
  lp2p_direction dir;                 /* connection direction (CONN_*) */
  uint64_t conn_id;                   /* swarm-unique connection number (logs), 0 if none */
  int err;                            /* reason (0 = none) */
  const lp2p_dial_error *dial_errors; /* DIAL_FAILED: one per address tried */
  size_t n_dial_errors;
  /* appended: read only if struct_size covers them (always true for events the swarm delivers) */
  const lp2p_multiaddr *const *addrs; /* PEER_IDENTIFIED / PEER_DISCOVERED */
  size_t n_addrs;
  lp2p_addr_source source;            /* PEER_DISCOVERED / PEER_EXPIRED, else 0 */
  const char *const *protocols;       /* PEER_IDENTIFIED */
  size_t n_protocols;
  const char *agent;                  /* PEER_IDENTIFIED (NULL if not sent) */
} lp2p_swarm_event;

/* Human-readable event type name ("conn-established"), static storage. */
LP2P_EXTERN const char *lp2p_swarm_event_name(lp2p_swarm_event_type t);

typedef void (*lp2p_swarm_event_fn)(lp2p_swarm *sw, const lp2p_swarm_event *ev, void *ud);

/* ---------------------------------------------------------------------------
 * Lifecycle */

/* Creates a swarm with its own libuv loop (run it with lp2p_swarm_run).
 * cfg is copied (identity stays borrowed). mem: NULL = libc; copied.
 * Errors: LP2P_ERR_INVAL (no identity), LP2P_ERR_NOMEM, LP2P_ERR_IO. */
LP2P_EXTERN int lp2p_swarm_new(lp2p_swarm **out, const lp2p_swarm_config *cfg, const lp2p_mem *mem);

/* Runs the swarm's own loop until lp2p_swarm_stop() is called. Returns 0, or
 * LP2P_ERR_STATE when called for a swarm attached to an app loop or from inside
 * a callback. May be called again after it returned. */
LP2P_EXTERN int lp2p_swarm_run(lp2p_swarm *sw);

/* Makes lp2p_swarm_run() return after the current callback. Loop thread only
 * (from another thread: lp2p_swarm_post a function that calls it). For a swarm
 * on an app loop it only calls uv_stop() on that loop. */
LP2P_EXTERN void lp2p_swarm_stop(lp2p_swarm *sw);

/* Frees the swarm: closes listeners and connections (open streams get
 * on_close(LP2P_ERR_CANCELED); no swarm events are emitted), detaches and
 * destroys behaviours, drops unexecuted posted functions (they are NOT called).
 * Never call it from inside a swarm callback (such a call is logged and ignored).
 * Own loop: everything is released before it returns and the loop is closed.
 * App loop (lp2p_swarm_new_uv): handles are closed; the remaining memory is
 * released from their close callbacks, so the app must run its loop (e.g.
 * uv_run(loop, UV_RUN_DEFAULT)) before uv_loop_close(). NULL is a no-op. */
LP2P_EXTERN void lp2p_swarm_free(lp2p_swarm *sw);

/* App event handler (one; NULL removes it). ud is borrowed. */
LP2P_EXTERN void lp2p_swarm_set_event_handler(lp2p_swarm *sw, lp2p_swarm_event_fn fn, void *ud);

/* Our identity. Pointers valid while sw lives. */
LP2P_EXTERN const lp2p_peer_id *lp2p_swarm_local_peer(const lp2p_swarm *sw);
LP2P_EXTERN const lp2p_privkey *lp2p_swarm_identity(const lp2p_swarm *sw);
LP2P_EXTERN const char *lp2p_swarm_agent_version(const lp2p_swarm *sw);
/* The (copied) configuration in use. */
LP2P_EXTERN const lp2p_swarm_config *lp2p_swarm_config_get(const lp2p_swarm *sw);
/* The swarm's clock in milliseconds: the loop's cached monotonic time (uv_now), or the manual
 * clock (cfg.manual_clock). Every swarm deadline and lp2p_timer follows it. */
LP2P_EXTERN lp2p_tstamp lp2p_swarm_now(const lp2p_swarm *sw);
/* TESTING FACILITY (cfg.manual_clock only). Moves the clock forward by ms (to t), running every
 * deadline due by then in deadline order (ties in the order they were set), each followed by the
 * deferred work it caused (events, stream callbacks, output). Deadlines that callbacks set within
 * the interval run too. Not from inside a swarm callback. Returns 0, LP2P_ERR_STATE (real clock,
 * inside a callback, freeing) or LP2P_ERR_INVAL (t in the past). */
LP2P_EXTERN int lp2p_swarm_advance(lp2p_swarm *sw, uint64_t ms);
LP2P_EXTERN int lp2p_swarm_advance_to(lp2p_swarm *sw, lp2p_tstamp t);
/* The earliest pending deadline of the swarm (LP2P_TSTAMP_NEVER if none). */
LP2P_EXTERN lp2p_tstamp lp2p_swarm_next_deadline(const lp2p_swarm *sw);

/* Raises ev (any type; typically PEER_DISCOVERED, PEER_IDENTIFIED, ...) as a
 * swarm event: ev and everything it points to is deep-copied (struct_size
 * honoured) and delivered after the current callback returns (never nested,
 * never from inside this call), to every behaviour's on_event and then to the
 * app handler, in the order of lp2p_swarm_emit calls. Loop thread only.
 * Errors: LP2P_ERR_INVAL, LP2P_ERR_NOMEM, LP2P_ERR_STATE (swarm freeing). */
LP2P_EXTERN int lp2p_swarm_emit(lp2p_swarm *sw, const lp2p_swarm_event *ev);

/* The swarm's allocator (the lp2p_mem given to lp2p_swarm_new, or libc).
 * Behaviours allocate through it (lp2p_swarm_mem(sw)->malloc_fn(n, ->user))
 * so that allocation-failure tests cover them. Valid while sw lives. Not
 * thread-safe unless the app's allocator is. */
LP2P_EXTERN const lp2p_mem *lp2p_swarm_mem(const lp2p_swarm *sw);

/* THE thread-safe entry point: queue fn(sw, arg) to run on the loop thread.
 * The queue is drained completely on each wake-up, in FIFO order. Returns 0,
 * LP2P_ERR_NOMEM, or LP2P_ERR_STATE once lp2p_swarm_free has started (fn is
 * then not called; arg stays the caller's). */
LP2P_EXTERN int lp2p_swarm_post(lp2p_swarm *sw, void (*fn)(lp2p_swarm *sw, void *arg), void *arg);
/* Same, with a drop function: exactly one of fn(sw, arg) or drop_fn(arg) is
 * eventually called. drop_fn (optional) runs when the post is dropped at
 * lp2p_swarm_free (on the thread calling lp2p_swarm_free) and, when the post
 * is refused (LP2P_ERR_STATE / LP2P_ERR_NOMEM), from inside this call on the
 * calling thread, so that arg is always released. */
LP2P_EXTERN int lp2p_swarm_post2(lp2p_swarm *sw, void (*fn)(lp2p_swarm *sw, void *arg), void *arg,
                                 void (*drop_fn)(void *arg));

/* ---------------------------------------------------------------------------
 * Listening. Supported: /ip4/<a>/tcp/<port> and /ip6/<a>/tcp/<port>, port 0
 * picks a free port. A listener on an unspecified address (0.0.0.0, ::) is
 * reported as one LISTEN_ADDR_ADDED per matching interface address.
 * Errors: LP2P_ERR_MULTIADDR, LP2P_ERR_UNSUPPORTED (other protocols),
 * LP2P_ERR_ADDRINUSE, LP2P_ERR_IO. Events are emitted before the call returns. */
LP2P_EXTERN int lp2p_swarm_listen(lp2p_swarm *sw, const char *multiaddr);
LP2P_EXTERN int lp2p_swarm_listen_ma(lp2p_swarm *sw, const lp2p_multiaddr *ma);
/* Stops the listener that was started with exactly this address text/value
 * (LP2P_ERR_NOT_FOUND otherwise); emits LISTEN_ADDR_REMOVED for its addresses. */
LP2P_EXTERN int lp2p_swarm_unlisten(lp2p_swarm *sw, const char *multiaddr);
/* Current listen addresses (resolved ports, no /p2p suffix). Writes up to max
 * pointers and returns the total count. Pointers stay valid until the next
 * listen/unlisten call or lp2p_swarm_free. */
LP2P_EXTERN size_t lp2p_swarm_listen_addrs(const lp2p_swarm *sw, const lp2p_multiaddr **out, size_t max);

/* ---------------------------------------------------------------------------
 * Dialing */

/* Dial result: err 0 and peer set on success (the connection is live; it may
 * be a connection that already existed). On failure err is the failure
 * (single address: that address's error; several: LP2P_ERR_DIAL) and
 * errs[n] lists each address tried. Pointers valid during the call only. */
typedef void (*lp2p_dial_fn)(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_dial_error *errs,
                             size_t n, void *ud);

/* Connects to a peer. peer is optional (NULL: learned from the handshake, or
 * from a /p2p/<id> suffix of the addresses). Addresses (text, copied) are tried
 * in turn, each with dial_timeout_ms. Dialable: /ip4|ip6/<a>/tcp/<port>;
 * /dns4, /dns6, /dns (A/AAAA) and /dnsaddr (TXT "dnsaddr=<multiaddr>" at
 * _dnsaddr.<host>, entries of other peers skipped when the peer is known) are
 * resolved first (c-ares, hosts file first) and their results tried in place,
 * at most 8 lookups per dial; a failed lookup is LP2P_ERR_DNS for that
 * address. A /p2p/<id> suffix sets the expected peer
 * id (a handshake with another identity fails that address with
 * LP2P_ERR_PEER_ID_MISMATCH). n may be 0 if the peer store (lp2p/peerstore.h)
 * has unexpired addresses for the peer (they are tried in their stored order).
 * Concurrent dials to the same known peer coalesce into ONE attempt (extra
 * addresses are appended to it) and every caller gets the result. Dialing a
 * connected peer succeeds without touching the network.
 * cb (optional) is called exactly once, never from inside this call.
 * The address a connection succeeded on is stored in the peer store (source
 * LP2P_ADDR_SRC_DIALED, permanent); addresses given for an already connected
 * peer are stored with source USER. Failures also emit
 * DIAL_FAILED. Sync errors (no callback then): LP2P_ERR_INVAL (no address and
 * no peer / unknown peer, or dialing ourselves), LP2P_ERR_MULTIADDR,
 * LP2P_ERR_NOMEM, LP2P_ERR_STATE (swarm shutting down). With a peer router
 * (lp2p_swarm_set_peer_router), a peer with no known address is looked up
 * first instead of LP2P_ERR_INVAL. */
LP2P_EXTERN int lp2p_swarm_dial(lp2p_swarm *sw, const lp2p_peer_id *peer, const char *const *addrs, size_t n,
                                lp2p_dial_fn cb, void *ud);
/* Same with parsed addresses (copied). */
LP2P_EXTERN int lp2p_swarm_dial_ma(lp2p_swarm *sw, const lp2p_peer_id *peer,
                                   const lp2p_multiaddr *const *addrs, size_t n, lp2p_dial_fn cb, void *ud);
/* Number of TCP connection attempts started so far (diagnostics/tests). */
LP2P_EXTERN uint64_t lp2p_swarm_dial_count(const lp2p_swarm *sw);

/* Closes every connection to peer (reason LP2P_ERR_CANCELED; CONN_CLOSED is
 * emitted after the current callback). LP2P_ERR_NOT_CONNECTED if none. */
LP2P_EXTERN int lp2p_swarm_disconnect(lp2p_swarm *sw, const lp2p_peer_id *peer);

/* ---------------------------------------------------------------------------
 * Peers. "Connected" is derived from live connections only. What is known about
 * peers (addresses, protocols, agent, key, latency) lives in the swarm's peer
 * store, lp2p/peerstore.h; the address functions below are thin wrappers. */
LP2P_EXTERN int lp2p_swarm_is_connected(const lp2p_swarm *sw, const lp2p_peer_id *peer);
/* Copies up to max connected peer ids into out; returns the total count. */
LP2P_EXTERN size_t lp2p_swarm_connected_peers(const lp2p_swarm *sw, lp2p_peer_id *out, size_t max);
/* Remote address of the peer's live connection, NULL if not connected.
 * Valid until the connection closes (CONN_CLOSED) or the next callback. */
LP2P_EXTERN const lp2p_multiaddr *lp2p_swarm_peer_remote_addr(const lp2p_swarm *sw, const lp2p_peer_id *peer);

/* Adds addresses for peer to the peer store (lp2p/peerstore.h) with source
 * LP2P_ADDR_SRC_USER and no expiry (copied; duplicates ignored; a /p2p
 * suffix is stripped and must match peer). Addresses that cannot work for a
 * dialer (0.0.0.0, ::, port 0) are skipped. Returns 0 when at least one
 * address was stored (or n == 0), else the first error (LP2P_ERR_INVAL for
 * unusable addresses, LP2P_ERR_PEER_ID_MISMATCH, LP2P_ERR_LIMIT, ...). At most
 * max_addrs_per_peer per peer are kept (the least useful is dropped). Used by
 * open_stream/dial to (re)dial. */
LP2P_EXTERN int lp2p_swarm_add_addresses(lp2p_swarm *sw, const lp2p_peer_id *peer,
                                         const lp2p_multiaddr *const *addrs, size_t n);
/* Text variant for one address; peer may be NULL if the text ends in /p2p/<id>. */
LP2P_EXTERN int lp2p_swarm_add_address(lp2p_swarm *sw, const lp2p_peer_id *peer, const char *multiaddr);
/* Known, unexpired addresses of peer (any source and scope): up to max
 * pointers, returns total count. Pointers valid until the next peer-store
 * change or the end of the current callback. */
LP2P_EXTERN size_t lp2p_swarm_peer_addresses(const lp2p_swarm *sw, const lp2p_peer_id *peer,
                                             const lp2p_multiaddr **out, size_t max);

/* Our own external addresses (how others can reach us). Configured ones
 * are confirmed at once; identify's observed addresses become candidates and
 * are confirmed once 2 DISTINCT PEERS (distinct peer ids whose connections
 * come from distinct /24 (IPv4) or /48 (IPv6) networks, or different scopes)
 * reported the same address within 30 minutes; reporters that are not public
 * (LAN, loopback) share a /24 by nature, so distinct peer ids suffice there.
 * TCP: the port a peer observes on a connection WE dialed is an ephemeral
 * source port, so such an observation votes for "observed IP + each of our
 * TCP listen ports of the same family" instead (rust-libp2p's
 * address_translation does the same: IP from the observation, port from the
 * listen address; it holds without NAT or behind a port-preserving NAT, and
 * needs the 2-peer agreement to count); observations on inbound connections
 * vote for the address as observed. (go-libp2p is stricter: it only trusts
 * observations made on connections whose local address is a listen address,
 * and wants 4 distinct observer IPs.) UNSPECIFIED addresses and port 0 are
 * never candidates. Confirmation and expiry raise
 * EXTERNAL_ADDR_CONFIRMED / EXTERNAL_ADDR_EXPIRED (deferred). Observed
 * addresses not re-observed within 30 minutes expire. */
/* Adds a configured external address (copied; /p2p suffix stripped):
 * confirmed at once. LP2P_ERR_INVAL if not dialable (0.0.0.0, port 0). */
LP2P_EXTERN int lp2p_swarm_add_external_addr(lp2p_swarm *sw, const lp2p_multiaddr *ma);
/* Removes an external address (configured or confirmed); LP2P_ERR_NOT_FOUND. */
LP2P_EXTERN int lp2p_swarm_remove_external_addr(lp2p_swarm *sw, const lp2p_multiaddr *ma);
/* An observation of our address by peer over a connection of direction dir
 * (identify calls this; apps and other behaviours may too). */
LP2P_EXTERN int lp2p_swarm_observed_addr(lp2p_swarm *sw, const lp2p_peer_id *peer, lp2p_direction dir,
                                         const lp2p_multiaddr *conn_remote, const lp2p_multiaddr *observed);
/* Confirmed external addresses: up to max pointers, returns the total. Valid
 * until the next change (an event) or the end of the current callback. */
LP2P_EXTERN size_t lp2p_swarm_external_addrs(const lp2p_swarm *sw, const lp2p_multiaddr **out, size_t max);

/* Keep-alive hold: on != 0 adds one hold on peer's connection, on == 0
 * releases one. While a peer has a hold its connection is never closed for
 * idleness. Holds are counted per peer and survive reconnects. */
LP2P_EXTERN int lp2p_swarm_keep_alive(lp2p_swarm *sw, const lp2p_peer_id *peer, int on);

/* ---------------------------------------------------------------------------
 * Streams */

/* Stream handler. Copied (first struct_size bytes) when registered/passed;
 * every member optional. ud: the pointer given with the handler.
 * Order per stream: on_open once (after successful negotiation, or at once for
 * an optimistic one, see "Streams" above), then any of
 * on_data / on_eof / on_writable, then on_close exactly once (also when
 * on_open never happened: negotiation failure, dial failure, ...). After
 * on_close returns the stream pointer is invalid. */
typedef struct lp2p_stream_handler {
  size_t struct_size;
  /* Negotiation done; protocol is the agreed id (valid while s lives). */
  void (*on_open)(lp2p_stream *s, const char *protocol, void *ud);
  /* Bytes received (valid during the call). */
  void (*on_data)(lp2p_stream *s, const uint8_t *p, size_t n, void *ud);
  /* Remote closed its write side (FIN); we may still write. */
  void (*on_eof)(lp2p_stream *s, void *ud);
  /* A previous lp2p_stream_write accepted fewer bytes than offered and the
   * stream can take more now. */
  void (*on_writable)(lp2p_stream *s, void *ud);
  /* Last call. err 0: both sides closed cleanly. Else LP2P_ERR_RESET (peer
   * reset), LP2P_ERR_UNSUPPORTED (no proposed protocol accepted),
   * LP2P_ERR_TIMEOUT (negotiation), LP2P_ERR_NOT_CONNECTED (no connection and
   * no known address), a dial error, LP2P_ERR_LIMIT, the connection's close
   * reason (LP2P_ERR_EOF, LP2P_ERR_CONNRESET, ...), LP2P_ERR_CANCELED (local
   * reset or swarm free). */
  void (*on_close)(lp2p_stream *s, int err, void *ud);
} lp2p_stream_handler;

/* Registry: inbound streams proposing protocol_id are given to h/ud. Replaces
 * an existing registration of the same id. protocol_id is copied and must
 * start with '/' (LP2P_ERR_INVAL) and be at most LP2P_PROTOCOL_ID_MAX bytes.
 * ud is borrowed until the protocol is removed or the swarm freed. */
LP2P_EXTERN int lp2p_swarm_set_protocol(lp2p_swarm *sw, const char *protocol_id, const lp2p_stream_handler *h,
                                        void *ud);
/* LP2P_ERR_NOT_FOUND if not registered. Streams already open keep their handler. */
LP2P_EXTERN int lp2p_swarm_remove_protocol(lp2p_swarm *sw, const char *protocol_id);
/* Registered ids: up to max pointers, returns the total count. Pointers valid
 * until the registry changes. */
LP2P_EXTERN size_t lp2p_swarm_protocols(const lp2p_swarm *sw, const char **out, size_t max);

/* Opens an outbound stream to peer proposing protocols[0..n) in order (strings
 * copied). Uses the peer's live connection; if there is none, dials the
 * peer store's unexpired addresses (or joins a dial in progress); with no address it
 * asks the peer router if one is set (lp2p_swarm_set_peer_router), else the
 * stream fails with LP2P_ERR_NOT_CONNECTED. Never dials when connected.
 * Result through h: on_open(s, agreed id) or on_close(s, err) — never from
 * inside this call. *out (optional) receives the handle, valid until on_close
 * returns. Sync errors (no callback then): LP2P_ERR_INVAL, LP2P_ERR_NOMEM,
 * LP2P_ERR_STATE (swarm shutting down). */
LP2P_EXTERN int lp2p_swarm_open_stream(lp2p_swarm *sw, const lp2p_peer_id *peer, const char *const *protocols,
                                       size_t n, const lp2p_stream_handler *h, void *ud, lp2p_stream **out);

/* Peer routing hook (one per swarm; kad installs itself, lp2p/kad.h). When
 * lp2p_swarm_open_stream() is asked for a peer that is not connected, not being
 * dialed and has no unexpired address in the peer store, the swarm calls
 * fn(sw, peer, ud) (from inside that open_stream call) instead of failing the
 * stream at once. fn returns 0 if it started a lookup, or a negative error (the
 * stream then fails with LP2P_ERR_NOT_CONNECTED exactly as without a router).
 * While a lookup runs, further streams to the same peer wait on it (fn is not
 * called again). The router must then call lp2p_swarm_peer_routed() exactly
 * once, never from inside fn: after err 0 and with addresses added to the peer
 * store (lp2p_peerstore_add_addrs, source LP2P_ADDR_SRC_DHT), the waiting
 * streams dial them as usual (dial errors end them); otherwise they fail with
 * LP2P_ERR_NOT_CONNECTED. A connection that comes up meanwhile (inbound, or
 * lp2p_swarm_dial) serves them at once. Waiting streams keep their usual
 * semantics (on_close exactly once; a reset removes them). lp2p_swarm_dial()
 * by peer id alone (n == 0) for a peer with no known address consults the
 * router the same way (instead of failing with LP2P_ERR_INVAL): the dial
 * callback follows the lookup and the dial of the addresses found, or reports
 * LP2P_ERR_NOT_CONNECTED. fn NULL removes the router; streams and dials waiting
 * for a lookup then fail with LP2P_ERR_NOT_CONNECTED. ud is borrowed. */
typedef int (*lp2p_peer_router_fn)(lp2p_swarm *sw, const lp2p_peer_id *peer, void *ud);
LP2P_EXTERN int lp2p_swarm_set_peer_router(lp2p_swarm *sw, lp2p_peer_router_fn fn, void *ud);
/* The router's lookup for peer ended (err 0: addresses were stored). LP2P_ERR_NOT_FOUND if no lookup
 * was pending for peer. */
LP2P_EXTERN int lp2p_swarm_peer_routed(lp2p_swarm *sw, const lp2p_peer_id *peer, int err);

/* Queues up to n bytes; returns the number accepted (0..n) or an error:
 * LP2P_ERR_STATE (before on_open), LP2P_ERR_CLOSED (write side closed, stream
 * closing). Fewer than n accepted => on_writable follows when there is room
 * (per-stream yamux send window, and the connection's socket buffer). */
LP2P_EXTERN int64_t lp2p_stream_write(lp2p_stream *s, const uint8_t *p, size_t n);
/* Half-close (FIN) our write side. Idempotent. */
LP2P_EXTERN int lp2p_stream_close_write(lp2p_stream *s);
/* "Write all, then (optionally) close": sends p[0..n) completely. What the
 * stream does not take at once is copied and written by the swarm as the
 * stream becomes writable; with close_write != 0 the write side is
 * half-closed (FIN) right after the last byte. Returns 0 (everything sent or
 * queued; the caller's buffer is free) or an error: LP2P_ERR_INVAL,
 * LP2P_ERR_STATE (before on_open), LP2P_ERR_CLOSED (write side closed,
 * stream closing), LP2P_ERR_NOMEM (nothing queued; part of p may have been
 * sent already: reset the stream).
 * Rules while such bytes are queued: further send_all calls append behind
 * them; lp2p_stream_write accepts nothing (returns 0) and the handler's
 * on_writable follows once the queue has drained (so an app may mix both and
 * keep byte order); lp2p_stream_close_write sends its FIN after them; after a
 * send_all with close_write, writes fail with LP2P_ERR_CLOSED. A queue not
 * yet sent when the stream closes (reset, connection lost) is dropped: the
 * stream's on_close(err) reports it. on_writable is not called for the
 * queued bytes themselves. Memory: the queue is bounded only by what the
 * caller sends (use on_writable + lp2p_stream_write for unbounded data). */
LP2P_EXTERN int lp2p_stream_send_all(lp2p_stream *s, const uint8_t *p, size_t n, int close_write);
/* Abort (RST). on_close(LP2P_ERR_CANCELED) follows (deferred when called
 * inside a callback of s). Idempotent. */
LP2P_EXTERN int lp2p_stream_reset(lp2p_stream *s);
/* Manual flow control (see header). */
LP2P_EXTERN void lp2p_stream_set_manual_consume(lp2p_stream *s, int on);
LP2P_EXTERN int lp2p_stream_consume(lp2p_stream *s, size_t n);

/* Accessors; returned pointers valid while s lives. */
LP2P_EXTERN lp2p_swarm *lp2p_stream_swarm(const lp2p_stream *s);
LP2P_EXTERN const lp2p_peer_id *lp2p_stream_peer(const lp2p_stream *s); /* the remote peer */
LP2P_EXTERN const char *lp2p_stream_protocol(const lp2p_stream *s);     /* NULL before on_open */
LP2P_EXTERN lp2p_direction lp2p_stream_direction(const lp2p_stream *s);
LP2P_EXTERN uint32_t lp2p_stream_id(const lp2p_stream *s);                       /* yamux id, 0 if none yet */
LP2P_EXTERN const lp2p_multiaddr *lp2p_stream_remote_addr(const lp2p_stream *s); /* NULL while dialing */
LP2P_EXTERN const lp2p_multiaddr *lp2p_stream_local_addr(const lp2p_stream *s);
/* Per-stream user pointer (not touched by the swarm). */
LP2P_EXTERN void lp2p_stream_set_user(lp2p_stream *s, void *user);
LP2P_EXTERN void *lp2p_stream_user(const lp2p_stream *s);
/* Switches the handler for the rest of the stream's life (e.g. an inbound
 * dispatcher handing the stream to a per-request object). */
LP2P_EXTERN void lp2p_stream_set_handler(lp2p_stream *s, const lp2p_stream_handler *h, void *ud);

/* ---------------------------------------------------------------------------
 * Resource limits
 *
 * Everything the node holds because of a peer is charged to scopes: the node, the peer, the
 * connection, the stream and the stream's protocol. Charged: a fixed amount per connection (from
 * accept: connection, muxer and handshake state) and per stream (from its yamux SYN: swarm + muxer
 * stream objects), what a stream's multistream negotiation holds and its protocol id (as they change),
 * the connection's send side by capacity (the muxer's send rings, output buffer and spare rings, and
 * the bytes queued in the socket), the node-wide pool of spare send rings (at most min(max_memory / 16,
 * 4 MiB)), and what protocols reserve with lp2p_stream_reserve_memory() (identify: its request, push and
 * answer state; perf: its per-stream state). Each scope's limits come from lp2p_swarm_config
 * (max_memory*, max_streams*, max_streams_per_conn).
 * A charge over a limit is refused with LP2P_ERR_LIMIT and handled without growing anything:
 *   - an inbound stream beyond a stream or memory limit is reset (INBOUND_STREAM_FAILED with
 *     LP2P_ERR_LIMIT); an outbound one ends with on_close(LP2P_ERR_LIMIT);
 *   - lp2p_stream_write() accepts only what the scopes have room for (possibly 0): the rest waits in
 *     the application, and on_writable follows once room is released (blocked writers of the whole
 *     node are woken oldest first, so many streams share the budget fairly). Bytes within the peer's
 *     window may use all the room; bytes beyond it (the muxer's slack, which waits for the peer to
 *     read) only the room below half of each limit, so streams whose peers stalled never take the
 *     budget the others need;
 *   - a protocol whose reservation is refused decides (perf, identify and the test echo reset the
 *     stream).
 *   - behind a socket the peer does not read, a connection queues another seal buffer (256 KiB) only
 *     while its scopes have room for it.
 * Above 3/4 of a limit, a connection frees send rings as soon as they drain and shrinks stalled ones;
 * a writer held back by a limit makes every connection do so at once (at most every 50 ms).
 * After a burst (usage fell below half its peak: once releases paused for 1 s, at the latest 5 s after
 * the fall) and at once when the last connection closed, the pools are emptied and the allocator trimmed
 * (malloc_trim where available) so that the process's RSS returns near its baseline.
 * With glibc, an application that wants its RSS to follow these charges closely pins the allocator's
 * mmap threshold (mallopt(M_MMAP_THRESHOLD, 128 * 1024), as lp2p-node does): otherwise glibc raises
 * it as large blocks are freed, and freed send rings stay resident in the heap between live blocks
 * (measured: up to 6.5 MiB over the charged peak under a 48 MiB budget). */

/* Reserves n bytes of protocol state for s (charged to its stream, protocol, connection, peer and the
 * node). 0, LP2P_ERR_LIMIT (nothing reserved), LP2P_ERR_CLOSED (s no longer on a connection),
 * LP2P_ERR_INVAL. Everything still reserved is released when the stream closes. */
LP2P_EXTERN int lp2p_stream_reserve_memory(lp2p_stream *s, size_t n);
/* Releases n bytes reserved with lp2p_stream_reserve_memory() (clamped to what is reserved; nothing
 * after the stream left its connection, which released it all). */
LP2P_EXTERN void lp2p_stream_release_memory(lp2p_stream *s, size_t n);
/* Reserves n bytes of a message body a protocol assembles from or for s (request-response: a
 * request or response body): charged like lp2p_stream_reserve_memory() to s's protocol,
 * connection, peer and the node, but NOT to the stream scope, whose limit (max_memory_per_stream)
 * sizes one stream's transport state, not a message the protocol accepts up to its own size limit
 * (10 MiB responses). 0, LP2P_ERR_LIMIT (nothing reserved), LP2P_ERR_CLOSED, LP2P_ERR_INVAL.
 * Released with lp2p_stream_release_body() (clamped), or all of it when the stream leaves its
 * connection. */
LP2P_EXTERN int lp2p_stream_reserve_body(lp2p_stream *s, size_t n);
LP2P_EXTERN void lp2p_stream_release_body(lp2p_stream *s, size_t n);

typedef enum lp2p_scope_kind {
  LP2P_SCOPE_NODE = 0,
  LP2P_SCOPE_PEER = 1,
  LP2P_SCOPE_CONN = 2,
  LP2P_SCOPE_PROTOCOL = 3
} lp2p_scope_kind;

/* Current usage of one scope. Fields may be appended: lp2p_swarm_resource_usage() takes the caller's
 * element size. */
typedef struct lp2p_scope_usage {
  lp2p_scope_kind kind;
  lp2p_peer_id peer;    /* PEER, CONN (len 0 while the handshake runs) */
  uint64_t conn_id;     /* CONN */
  const char *protocol; /* PROTOCOL; valid until the next swarm call */
  lp2p_direction dir;   /* CONN */
  uint64_t memory, memory_limit; /* bytes; limit 0 = unlimited */
  uint32_t streams_in, streams_out, streams_limit;
  uint32_t conns_in, conns_out;
  uint64_t memory_peak; /* the highest memory this scope has held (the node: since the swarm started) */
} lp2p_scope_usage;

/* Usage snapshot: the node first, then every peer scope, connection and protocol scope. Fills up to
 * max entries of elem_size bytes each (elem_size <= sizeof(lp2p_scope_usage); older callers pass their
 * smaller size) and returns the total number of scopes. */
LP2P_EXTERN size_t lp2p_swarm_resource_usage(const lp2p_swarm *sw, lp2p_scope_usage *out, size_t max,
                                             size_t elem_size);
/* Every scope's memory_peak starts again from what it holds now (e.g. to measure one burst). */
LP2P_EXTERN void lp2p_swarm_resource_reset_peaks(lp2p_swarm *sw);

/* ---------------------------------------------------------------------------
 * Timers for behaviours and apps (no libuv needed). The callback runs on the
 * loop thread. lp2p_timer_free may be called from inside the timer's own
 * callback; no callback is made after free. */
typedef void (*lp2p_timer_fn)(lp2p_timer *t, void *ud);
LP2P_EXTERN int lp2p_timer_new(lp2p_timer **out, lp2p_swarm *sw, lp2p_timer_fn fn, void *ud);
/* (Re)starts: first call after timeout_ms, then every repeat_ms (0 = once). */
LP2P_EXTERN int lp2p_timer_start(lp2p_timer *t, uint64_t timeout_ms, uint64_t repeat_ms);
LP2P_EXTERN void lp2p_timer_stop(lp2p_timer *t);
/* Stops and frees at once (timers not yet released when the swarm is freed are released by
 * it). NULL ok. Timers follow the swarm's clock (lp2p_swarm_now, cfg.manual_clock). */
LP2P_EXTERN void lp2p_timer_free(lp2p_timer *t);

/* ---------------------------------------------------------------------------
 * Behaviours: a C "NetworkBehaviour". A behaviour uses only this public API
 * (ping/identify/perf are written exactly like an app's own behaviour). */
typedef struct lp2p_behaviour_vtable {
  size_t struct_size;
  const char *name; /* for logs; static storage */
  /* Called from lp2p_swarm_add_behaviour: register protocols, create timers.
   * Non-zero return => add fails with that error (destroy is then called). */
  int (*attach)(void *self, lp2p_swarm *sw);
  /* Every swarm event (see lp2p_swarm_event). Optional. */
  void (*on_event)(void *self, lp2p_swarm *sw, const lp2p_swarm_event *ev);
  /* Called at lp2p_swarm_free (in reverse order of adding), before the
   * connections are torn down: release swarm resources (timers). Optional. */
  void (*detach)(void *self, lp2p_swarm *sw);
  /* Frees self; called after detach (last call). Optional. */
  void (*destroy)(void *self);
  /* Optional: non-zero keeps the connection to peer open even when it has no
   * stream (idle timeout). Called when the swarm checks idleness. */
  int (*keep_alive)(void *self, lp2p_swarm *sw, const lp2p_peer_id *peer);
  /* Connection gating (optional; read only if struct_size covers them). Any
   * behaviour returning 0 denies (the first one to deny decides, in the order
   * added).
   * allow_inbound: an inbound connection whose Noise handshake authenticated
   * peer, remote = its remote address; called before any muxer frame is
   * processed. Denied: the connection is closed (reason LP2P_ERR_DENIED,
   * logged) and INBOUND_CONN_FAILED(err LP2P_ERR_DENIED, addr) raised.
   * allow_stream: an inbound stream proposing protocol (one the registry
   * knows), before its handler sees it. Denied: answered "na" exactly like an
   * unknown protocol; if the stream then fails to agree on anything,
   * INBOUND_STREAM_FAILED carries LP2P_ERR_DENIED instead of UNSUPPORTED.
   * Neither hook may free the swarm; they may call other swarm functions. */
  int (*allow_inbound)(void *self, lp2p_swarm *sw, const lp2p_peer_id *peer, const lp2p_multiaddr *remote);
  int (*allow_stream)(void *self, lp2p_swarm *sw, const lp2p_peer_id *peer, const char *protocol);
} lp2p_behaviour_vtable;

/* Adds a behaviour. The vtable pointer is borrowed (static storage expected).
 * From now on the swarm owns self: destroy(self) is called at lp2p_swarm_free
 * (or right away if attach fails). At most 64 behaviours. */
LP2P_EXTERN int lp2p_swarm_add_behaviour(lp2p_swarm *sw, const lp2p_behaviour_vtable *vt, void *self);
/* The self pointer of the first behaviour with this name, or NULL. */
LP2P_EXTERN void *lp2p_swarm_behaviour(const lp2p_swarm *sw, const char *name);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_SWARM_H */
