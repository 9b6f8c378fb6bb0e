/* tests/helpers/swarm_harness.h - in-process swarm tests: a test loop with a
 * guard timer, swarms with deterministic Ed25519 identities listening on
 * 127.0.0.1, an event recorder, and raw TCP clients.
 *
 *   tloop L; tloop_init(&L);
 *   tsw a, b; tsw_init(&a, &L, 1, NULL); tsw_init(&b, &L, 2, NULL);
 *   lp2p_swarm_dial(a.sw, NULL, (const char *[]){b.addr}, 1, NULL, NULL);
 *   CHECK(RUN_UNTIL(&L, a.n_established == 1, 5000));
 *   tsw_free(&a); tsw_free(&b);
 *   CHECK_EQ(tloop_finish(&L), 0);   // every handle closed, loop closed
 *
 * Deterministic variant (no real time): swarms with a manual clock (tsw_config_manual) listening
 * on the in-process transport (TSW_LISTEN_MEMORY). tloop_settle() runs the loop until no socket
 * has anything left to do; tclock_advance() moves the swarms' clocks together, stopping at every
 * deadline on the way and settling after each:
 *
 *   lp2p_swarm_config cfg; tsw_config_manual(&cfg); cfg.idle_timeout_ms = 200;
 *   tsw_init(&a, &L, 1, &cfg, TSW_LISTEN_MEMORY); tsw_init(&b, &L, 2, &cfg, TSW_LISTEN_MEMORY);
 *   ... dial, CHECK(RUN_UNTIL(...)) ...
 *   tsw *both[] = {&a, &b};
 *   CHECK_OK(tclock_advance(&L, both, 2, 199)); CHECK_EQ(a.n_closed, 0);   // nothing before
 *   CHECK_OK(tclock_advance(&L, both, 2, 1));   CHECK_EQ(a.n_closed, 1);   // exactly at the deadline
 */
#ifndef LP2P_TEST_SWARM_HARNESS_H
#define LP2P_TEST_SWARM_HARNESS_H
#include <uv.h>

#include "lp2p/swarm.h"
#include "lp2p/uv.h"

typedef struct tloop {
  uv_loop_t loop;
  uv_timer_t guard;
  int fired;
} tloop;

void tloop_init(tloop *l);
/* Closes the guard, runs the loop until nothing is left, closes it. Returns uv_loop_close()'s result. */
int tloop_finish(tloop *l);
void tloop_guard_start(tloop *l, unsigned ms);
void tloop_guard_stop(tloop *l);
/* Runs the loop for ms milliseconds. */
void tloop_sleep(tloop *l, unsigned ms);
/* Runs the loop (UV_RUN_NOWAIT) until it is quiescent: no pending callbacks or deferred work and no
 * socket ready (the loop's epoll set polled with timeout 0). Real-time timers are not waited for.
 * 0, or -1 if still busy after many rounds. */
int tloop_settle(tloop *l);

/* Runs the loop until cond holds or ms elapse; evaluates to cond's final value. */
#define RUN_UNTIL(L, cond, ms)                                      \
  ({                                                                \
    tloop_guard_start((L), (ms));                                   \
    while (!(cond) && !(L)->fired) uv_run(&(L)->loop, UV_RUN_ONCE); \
    tloop_guard_stop(L);                                            \
    (cond);                                                         \
  })

#define TSW_MAX_EVENTS 64

typedef struct tsw {
  lp2p_swarm *sw;
  lp2p_privkey *key;
  lp2p_peer_id id;
  char addr[400];      /* first listen address + /p2p/<id> ("" when not listening) */
  char base_addr[200]; /* without /p2p */
  /* event counters */
  int n_established, n_closed, n_dial_failed, n_in_conn_failed, n_in_stream_failed, n_listen_added;
  int last_closed_err, last_dial_err, last_in_conn_err, last_in_stream_err;
  int events[TSW_MAX_EVENTS]; /* types in order */
  int n_events;
} tsw;

/* Default test config (short timeouts suitable for tests are NOT applied:
 * callers tweak). seed picks the identity. listen: 1 (TSW_LISTEN_TCP) = listen on 127.0.0.1:0,
 * TSW_LISTEN_MEMORY = on /memory/0 (in-process). */
#define TSW_LISTEN_TCP 1
#define TSW_LISTEN_MEMORY 2
int tsw_init(tsw *t, tloop *l, uint8_t seed, const lp2p_swarm_config *cfg, int listen);
void tsw_free(tsw *t);
/* A config with identity unset; tsw_init fills the identity. */
void tsw_config(lp2p_swarm_config *cfg);
/* The same with a manual clock (cfg.manual_clock = 1). */
void tsw_config_manual(lp2p_swarm_config *cfg);
/* Advances the manual clocks of sws[0..n) (all started together, so equal) by ms: to each deadline
 * of any of them in turn, settling the loop after each step (so that the peers' answers arrive
 * before the next deadline), then to the end. 0, or an error of lp2p_swarm_advance_to / settle. */
int tclock_advance(tloop *l, tsw *const *sws, size_t n, uint64_t ms);

/* Dial callback recorder. */
typedef struct tdial {
  int done, err, calls;
  lp2p_peer_id peer;
  int errs[8];
  size_t n_errs;
} tdial;
void tdial_cb(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_dial_error *errs, size_t n,
              void *ud);

/* Raw TCP client to host:port on 127.0.0.1 (no libp2p). */
typedef struct traw {
  uv_tcp_t tcp;
  uv_connect_t req;
  int connected, eof, closed, err;
  size_t received;
} traw;
int traw_connect(traw *r, tloop *l, int port);
int traw_send(traw *r, const void *p, size_t n);
void traw_close(traw *r);
/* The TCP port of a tsw's listen address. */
int tsw_port(const tsw *t);

/* ---- a test-defined behaviour: registers an echo protocol through the
 * public API at attach; echoes every stream, half-closes after the peer's FIN. */
#define TECHO_PROTO "/lp2p-test/echo/1.0.0"
typedef struct techo {
  const char *proto; /* TECHO_PROTO unless set before adding */
  int attached, detached, destroyed, opened, closed, close_errs;
  int keep_alive; /* value returned by the keep_alive hook */
} techo;
extern const lp2p_behaviour_vtable techo_vtable;

/* ---- a client stream: sends len bytes of a pattern, half-closes, checks the echo. */
typedef struct tclient {
  size_t len, sent, received;
  uint32_t seed;
  int opened, eof, closed, close_err, mismatch;
  char protocol[64];
} tclient;
extern const lp2p_stream_handler tclient_handler;
void tclient_init(tclient *c, size_t len, uint32_t seed);
/* The pattern byte at offset i for seed. */
uint8_t tpattern(uint32_t seed, size_t i);

#endif
