/* test_swarm_streams.c - streams: many concurrent streams, flow control,
 * limits, negotiation timeouts, resets and reentrant callbacks, hostile raw
 * clients, lp2p_swarm_post from another thread, lp2p_swarm_run/stop. */
#include <stdlib.h>
#include <string.h>

#include "swarm/swarm_int.h"
#include "swarm_harness.h"
#include "test.h"

static const char *const k_echo[] = {TECHO_PROTO};

static lp2p__conn *first_conn(lp2p_swarm *sw) {
  return lp2p__list_empty(&sw->conns) ? NULL : LP2P__CONTAINER(sw->conns.next, lp2p__conn, sw_link);
}

static int connect_pair(tloop *L, tsw *a, tsw *b) {
  tdial d = {0};
  if (lp2p_swarm_dial(a->sw, NULL, (const char *[]){b->addr}, 1, tdial_cb, &d) < 0) return 0;
  return RUN_UNTIL(L, d.done && b->n_established >= 1, 5000) && d.err == 0;
}

/* ---- a generic recording handler ---- */
typedef struct rec {
  int opened, closed, err, eofs;
  size_t got;
  lp2p_stream *s;
  int reset_on_open, disconnect_on_data;
} rec;
static void rec_open(lp2p_stream *s, const char *p, void *ud) {
  rec *r = ud;
  (void)p;
  r->opened++;
  r->s = s;
  if (r->reset_on_open) {
    lp2p_stream_reset(s);
    lp2p_stream_reset(s);   /* idempotent */
    CHECK_EQ(r->closed, 0); /* on_close is deferred */
  }
}
static void rec_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  rec *r = ud;
  (void)p;
  r->got += n;
  if (r->disconnect_on_data) {
    lp2p_swarm_disconnect(lp2p_stream_swarm(s), lp2p_stream_peer(s));
    CHECK_EQ(r->closed, 0);
  }
}
static void rec_eof(lp2p_stream *s, void *ud) {
  rec *r = ud;
  (void)s;
  r->eofs++;
}
static void rec_close(lp2p_stream *s, int err, void *ud) {
  rec *r = ud;
  (void)s;
  r->closed++;
  r->err = err;
  r->s = NULL;
}
static const lp2p_stream_handler rec_handler = {
    sizeof(lp2p_stream_handler), rec_open, rec_data, rec_eof, NULL, rec_close};

/* 128 concurrent streams, each with its own verified content. */
TEST(many_concurrent_streams) {
  enum { N = 128, LEN = 48 * 1024 };
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  REQUIRE(connect_pair(&L, &a, &b));
  tclient *cl = calloc(N, sizeof *cl);
  for (int i = 0; i < N; i++) {
    tclient_init(&cl[i], LEN + (size_t)i * 101, (uint32_t)i + 1);
    CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &cl[i], NULL));
  }
  int all = 0;
  tloop_guard_start(&L, 20000);
  while (!all && !L.fired) {
    uv_run(&L.loop, UV_RUN_ONCE);
    all = 1;
    for (int i = 0; i < N; i++) all &= cl[i].closed;
  }
  tloop_guard_stop(&L);
  CHECK(all);
  int ok = 0;
  for (int i = 0; i < N; i++)
    ok += cl[i].closed && !cl[i].close_err && !cl[i].mismatch && cl[i].received == LEN + (size_t)i * 101 &&
          cl[i].eof;
  CHECK_EQ(ok, N);
  CHECK(RUN_UNTIL(&L, eb.closed == N, 3000));
  CHECK_EQ(eb.close_errs, 0);
  CHECK_EQ(lp2p_swarm_dial_count(a.sw), 1);
  free(cl);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---- manual consume: a sink that does not consume until told ---- */
typedef struct sink {
  size_t got, consumed;
  lp2p_stream *s;
  int closed, err;
} sink;
static void sink_open(lp2p_stream *s, const char *p, void *ud) {
  sink *k = ud;
  (void)p;
  k->s = s;
  lp2p_stream_set_manual_consume(s, 1);
}
static void sink_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  sink *k = ud;
  (void)s;
  (void)p;
  k->got += n;
}
static void sink_eof(lp2p_stream *s, void *ud) {
  (void)ud;
  lp2p_stream_close_write(s);
}
static void sink_close(lp2p_stream *s, int err, void *ud) {
  sink *k = ud;
  (void)s;
  k->closed = 1;
  k->err = err;
  k->s = NULL;
}
static const lp2p_stream_handler sink_handler = {
    sizeof(lp2p_stream_handler), sink_open, sink_data, sink_eof, NULL, sink_close};

TEST(manual_consume_backpressure) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  sink k = {0};
  CHECK_OK(lp2p_swarm_set_protocol(b.sw, "/sink/1", &sink_handler, &k));
  REQUIRE(connect_pair(&L, &a, &b));
  tclient cl;
  tclient_init(&cl, 4u << 20, 3);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, (const char *[]){"/sink/1"}, 1, &tclient_handler, &cl, NULL));
  /* the peer's window (256 KiB, minus the negotiation bytes) bounds what gets through */
  CHECK(RUN_UNTIL(&L, k.got >= 200 * 1024, 5000));
  CHECK_OK(tloop_settle(&L)); /* nothing more can move */
  CHECK(k.got <= 256 * 1024 + 64 * 1024);
  CHECK(cl.sent < 1u << 20);
  /* consuming reopens the window: everything arrives */
  tloop_guard_start(&L, 10000);
  while (!k.closed && !L.fired) {
    if (k.s && k.got > k.consumed) {
      lp2p_stream_consume(k.s, k.got - k.consumed);
      k.consumed = k.got;
    }
    uv_run(&L.loop, UV_RUN_ONCE);
  }
  tloop_guard_stop(&L);
  CHECK_EQ(k.got, 4u << 20);
  CHECK_EQ(k.err, 0);
  CHECK(RUN_UNTIL(&L, cl.closed, 3000));
  CHECK_EQ(cl.close_err, 0);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* max streams per connection, both directions. */
TEST(stream_limits) {
  tloop L;
  tloop_init(&L);
  lp2p_swarm_config cfg;
  tsw_config(&cfg);
  cfg.max_streams_per_conn = 2;
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, &cfg, 1));
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  REQUIRE(connect_pair(&L, &a, &b));
  rec r[3] = {{0}};
  for (int i = 0; i < 3; i++)
    CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &rec_handler, &r[i], NULL));
  CHECK(RUN_UNTIL(&L, r[0].opened && r[1].opened && r[2].closed, 5000));
  CHECK_EQ(r[2].opened, 0);
  CHECK_EQ(r[2].err, LP2P_ERR_RESET);
  CHECK(RUN_UNTIL(&L, b.n_in_stream_failed == 1, 2000));
  CHECK_EQ(b.last_in_stream_err, LP2P_ERR_LIMIT);
  /* B itself may not open a third one on that connection */
  techo ea = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(a.sw, &techo_vtable, &ea));
  rec rb = {0};
  CHECK_OK(lp2p_swarm_open_stream(b.sw, &a.id, k_echo, 1, &rec_handler, &rb, NULL));
  CHECK(RUN_UNTIL(&L, rb.closed, 2000));
  CHECK_EQ(rb.err, LP2P_ERR_LIMIT);
  /* freeing a slot makes room */
  lp2p_stream_reset(r[0].s);
  CHECK(RUN_UNTIL(&L, r[0].closed, 2000));
  rec r4 = {0};
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &rec_handler, &r4, NULL));
  CHECK(RUN_UNTIL(&L, r4.opened, 2000));
  CHECK(lp2p_swarm_is_connected(a.sw, &b.id));
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Negotiation that never finishes is cut off, in both directions, exactly at the deadline. */
TEST(negotiation_timeout) {
  tloop L;
  tloop_init(&L);
  lp2p_swarm_config cfg;
  tsw_config_manual(&cfg);
  cfg.stream_negotiation_timeout_ms = 300;
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, &cfg, TSW_LISTEN_MEMORY));
  CHECK_OK(tsw_init(&b, &L, 2, &cfg, TSW_LISTEN_MEMORY));
  tsw *both[] = {&a, &b};
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  REQUIRE(connect_pair(&L, &a, &b));
  /* inbound: A opens a raw yamux stream and never speaks multistream */
  lp2p__conn *ca = first_conn(a.sw);
  REQUIRE(ca && ca->mx);
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(ca->mx, &id));
  lp2p__conn_mark_dirty(ca);
  CHECK_OK(tclock_advance(&L, both, 2, 299));
  CHECK_EQ(b.n_in_stream_failed, 0);
  CHECK_OK(tclock_advance(&L, both, 2, 1));
  CHECK_EQ(b.n_in_stream_failed, 1);
  CHECK_EQ(b.last_in_stream_err, LP2P_ERR_TIMEOUT);
  /* outbound: B stops reading, so A's proposal is never answered */
  lp2p__conn *cb = first_conn(b.sw);
  REQUIRE(cb && cb->io);
  uv_read_stop(cb->io);
  rec r = {0};
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &rec_handler, &r, NULL));
  CHECK_OK(tclock_advance(&L, both, 2, 299));
  CHECK_EQ(r.closed, 0);
  CHECK_OK(tclock_advance(&L, both, 2, 1));
  CHECK_EQ(r.closed, 1);
  CHECK_EQ(r.opened, 0);
  CHECK_EQ(r.err, LP2P_ERR_TIMEOUT);
  CHECK(lp2p_swarm_is_connected(a.sw, &b.id));
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Resets and closes from inside callbacks are deferred and delivered once. */
typedef struct resetter {
  int opened;
} resetter;
static void resetter_open(lp2p_stream *s, const char *p, void *ud) {
  resetter *x = ud;
  (void)p;
  x->opened++;
  lp2p_stream_reset(s);
}
static const lp2p_stream_handler resetter_handler = {
    sizeof(lp2p_stream_handler), resetter_open, NULL, NULL, NULL, NULL};

TEST(reentrant_callbacks) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  resetter rs = {0};
  CHECK_OK(lp2p_swarm_set_protocol(b.sw, "/resetter/1", &resetter_handler, &rs));
  REQUIRE(connect_pair(&L, &a, &b));

  /* local reset inside on_open */
  rec r1 = {0};
  r1.reset_on_open = 1;
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &rec_handler, &r1, NULL));
  CHECK(RUN_UNTIL(&L, r1.closed, 3000));
  CHECK_EQ(r1.opened, 1);
  CHECK_EQ(r1.closed, 1);
  CHECK_EQ(r1.err, LP2P_ERR_CANCELED);

  /* remote resets inside its on_open */
  rec r2 = {0};
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, (const char *[]){"/resetter/1"}, 1, &rec_handler, &r2, NULL));
  CHECK(RUN_UNTIL(&L, r2.closed, 3000));
  CHECK_EQ(rs.opened, 1);
  CHECK_EQ(r2.err, LP2P_ERR_RESET);
  CHECK_EQ(r2.closed, 1);

  /* disconnect from inside on_data: CONN_CLOSED once on each side, the stream closes once */
  rec r3 = {0};
  r3.disconnect_on_data = 1;
  lp2p_stream *s3;
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &rec_handler, &r3, &s3));
  CHECK(RUN_UNTIL(&L, r3.opened, 3000));
  CHECK_EQ(lp2p_stream_write(s3, (const uint8_t *)"hello", 5), 5);
  CHECK(RUN_UNTIL(&L, r3.closed && a.n_closed == 1 && b.n_closed == 1, 3000));
  CHECK_EQ(r3.closed, 1);
  CHECK_EQ(r3.err, LP2P_ERR_CANCELED);
  CHECK_EQ(a.last_closed_err, LP2P_ERR_CANCELED);
  CHECK_OK(tloop_settle(&L));
  CHECK_EQ(a.n_closed, 1);
  CHECK_EQ(b.n_closed, 1);
  CHECK_EQ(lp2p_swarm_disconnect(a.sw, &b.id), LP2P_ERR_NOT_CONNECTED);

  /* API misuse is an error, not a crash */
  rec r4 = {0};
  lp2p_stream *s4;
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &rec_handler, &r4, &s4));
  CHECK_EQ(lp2p_stream_write(s4, (const uint8_t *)"x", 1), LP2P_ERR_STATE); /* not open yet */
  CHECK(RUN_UNTIL(&L, r4.opened, 3000));
  CHECK_OK(lp2p_stream_close_write(s4));
  CHECK_EQ(lp2p_stream_write(s4, (const uint8_t *)"x", 1), LP2P_ERR_CLOSED);
  CHECK(RUN_UNTIL(&L, r4.closed, 3000));
  CHECK_EQ(r4.err, 0);
  CHECK_EQ(r4.eofs, 1);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Garbage from raw TCP clients closes only their connection. */
TEST(garbage_clients) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  REQUIRE(connect_pair(&L, &a, &b));
  static const uint8_t g1[] = "\x05hello";                                         /* no newline */
  static const uint8_t g2[] = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";      /* absurd length */
  static const uint8_t g3[] = "\x13/multistream/1.0.0\n\x07/noise\n\x00\x05hello"; /* bad noise msg1 */
  static const uint8_t g4[] = "\x13/multistream/1.0.0\n\x07/tls/1\n";              /* unsupported: na */
  const uint8_t *gs[] = {g1, g2, g3};
  size_t gl[] = {sizeof g1 - 1, sizeof g2 - 1, sizeof g3 - 1};
  traw r[4];
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(traw_connect(&r[i], &L, tsw_port(&b)), 0);
    CHECK(RUN_UNTIL(&L, r[i].connected, 2000));
    CHECK_EQ(traw_send(&r[i], gs[i], gl[i]), 0);
    CHECK(RUN_UNTIL(&L, r[i].eof, 3000));
    CHECK_EQ(b.n_in_conn_failed, i + 1);
    CHECK(b.last_in_conn_err < 0 && b.last_in_conn_err != LP2P_ERR_TIMEOUT);
  }
  /* refused proposal: answered with na, the connection stays until the handshake timeout */
  CHECK_EQ(traw_connect(&r[3], &L, tsw_port(&b)), 0);
  CHECK(RUN_UNTIL(&L, r[3].connected, 2000));
  CHECK_EQ(traw_send(&r[3], g4, sizeof g4 - 1), 0);
  CHECK(RUN_UNTIL(&L, r[3].received >= 20 + 3, 2000));
  CHECK_EQ(r[3].eof, 0);
  /* the real peer is unaffected */
  tclient cl;
  tclient_init(&cl, 10000, 5);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &cl, NULL));
  CHECK(RUN_UNTIL(&L, cl.closed, 3000));
  CHECK_EQ(cl.close_err, 0);
  CHECK_EQ(cl.received, 10000);
  CHECK_EQ(a.n_closed, 0);
  for (int i = 0; i < 4; i++) traw_close(&r[i]);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---- lp2p_swarm_post from another thread; lp2p_swarm_run/stop on the own loop ---- */
typedef struct post_ctx {
  lp2p_swarm *sw;
  int count, order_ok, n;
} post_ctx;

static void post_inc(lp2p_swarm *sw, void *arg) {
  post_ctx *p = arg;
  (void)sw;
  p->count++;
}
static void post_stop(lp2p_swarm *sw, void *arg) {
  post_ctx *p = arg;
  p->order_ok = p->count == p->n;
  lp2p_swarm_stop(sw);
}
static void poster(void *arg) {
  post_ctx *p = arg;
  for (int i = 0; i < p->n; i++) {
    while (lp2p_swarm_post(p->sw, post_inc, p) != 0) {
    }
    if (i % 97 == 0) uv_sleep(1);
  }
  lp2p_swarm_post(p->sw, post_stop, p);
}

TEST(post_from_thread) {
  uint8_t seed[32];
  memset(seed, 4, sizeof seed);
  lp2p_privkey *key;
  CHECK_OK(lp2p_privkey_from_ed25519_seed(&key, seed));
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = key;
  lp2p_swarm *sw;
  CHECK_OK(lp2p_swarm_new(&sw, &cfg, NULL));
  CHECK_OK(lp2p_swarm_listen(sw, "/ip4/127.0.0.1/tcp/0"));
  post_ctx p = {sw, 0, 0, 1000};
  uv_thread_t th;
  CHECK_EQ(uv_thread_create(&th, poster, &p), 0);
  CHECK_OK(lp2p_swarm_run(sw)); /* returns once post_stop ran */
  uv_thread_join(&th);
  CHECK_EQ(p.count, 1000);
  CHECK_EQ(p.order_ok, 1);
  /* the own-loop swarm can be run again, and posting from the loop thread works too */
  p.count = 0;
  p.n = 1;
  CHECK_OK(lp2p_swarm_post(sw, post_inc, &p));
  CHECK_OK(lp2p_swarm_post(sw, post_stop, &p));
  CHECK_OK(lp2p_swarm_run(sw));
  CHECK_EQ(p.count, 1);
  CHECK_EQ(p.order_ok, 1);
  /* a posted function not yet run when the swarm is freed is dropped */
  CHECK_OK(lp2p_swarm_post(sw, post_inc, &p));
  lp2p_swarm_free(sw);
  CHECK_EQ(p.count, 1);
  lp2p_privkey_free(key);
}

/* A behaviour's timer and a stream from it, plus timers freed inside their callback. */
typedef struct tick {
  lp2p_timer *t;
  int fired;
} tick;
static void tick_cb(lp2p_timer *t, void *ud) {
  tick *k = ud;
  k->fired++;
  if (k->fired == 3) {
    lp2p_timer_free(t);
    k->t = NULL;
  }
}

TEST(timers) {
  tloop L;
  tloop_init(&L);
  tsw a;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 0));
  tick k = {0};
  CHECK_OK(lp2p_timer_new(&k.t, a.sw, tick_cb, &k));
  CHECK_OK(lp2p_timer_start(k.t, 10, 10));
  CHECK(RUN_UNTIL(&L, k.fired == 3, 2000));
  tloop_sleep(&L, 50);
  CHECK_EQ(k.fired, 3);
  tick k2 = {0};
  CHECK_OK(lp2p_timer_new(&k2.t, a.sw, tick_cb, &k2));
  CHECK_OK(lp2p_timer_start(k2.t, 100000, 0)); /* never fires: released by the swarm */
  lp2p_tstamp t0 = lp2p_swarm_now(a.sw);
  tloop_sleep(&L, 20);
  CHECK(lp2p_swarm_now(a.sw) >= t0 + 20);
  tsw_free(&a);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* The manual clock: timers fire only in lp2p_swarm_advance, in deadline order (ties in the order set),
 * repeating ones once per period crossed; lp2p_timer_free from inside the callback is fine. */
typedef struct order_rec {
  char seen[16];
  int n;
  lp2p_timer *self_free;
} order_rec;
typedef struct order_tm {
  order_rec *rec;
  char tag;
  lp2p_timer *t;
} order_tm;
static void order_cb(lp2p_timer *t, void *ud) {
  order_tm *o = ud;
  if (o->rec->n < 15) o->rec->seen[o->rec->n++] = o->tag;
  if (o->rec->self_free == t) {
    lp2p_timer_free(t);
    o->t = NULL;
  }
}

TEST(manual_clock_timers) {
  tloop L;
  tloop_init(&L);
  lp2p_swarm_config cfg;
  tsw_config_manual(&cfg);
  tsw a;
  CHECK_OK(tsw_init(&a, &L, 1, &cfg, 0));
  lp2p_tstamp t0 = lp2p_swarm_now(a.sw);
  CHECK(t0 > 0);
  CHECK_EQ(lp2p_swarm_next_deadline(a.sw), LP2P_TSTAMP_NEVER);
  order_rec rec = {{0}, 0, NULL};
  order_tm tm[4] = {{&rec, 'a', NULL}, {&rec, 'b', NULL}, {&rec, 'c', NULL}, {&rec, 'r', NULL}};
  for (int i = 0; i < 4; i++) CHECK_OK(lp2p_timer_new(&tm[i].t, a.sw, order_cb, &tm[i]));
  CHECK_OK(lp2p_timer_start(tm[0].t, 30, 0));
  CHECK_OK(lp2p_timer_start(tm[1].t, 10, 0));
  CHECK_OK(lp2p_timer_start(tm[2].t, 30, 0)); /* same deadline as a, set later: after a */
  CHECK_OK(lp2p_timer_start(tm[3].t, 20, 20)); /* repeating */
  CHECK_EQ(lp2p_swarm_next_deadline(a.sw), t0 + 10);
  CHECK_OK(tloop_settle(&L));
  CHECK_EQ(rec.n, 0); /* real time passing changes nothing */
  CHECK_EQ(lp2p_swarm_now(a.sw), t0);
  CHECK_OK(lp2p_swarm_advance(a.sw, 9));
  CHECK_EQ(rec.n, 0);
  CHECK_OK(lp2p_swarm_advance(a.sw, 1));
  CHECK_STR(rec.seen, "b");
  CHECK_OK(lp2p_swarm_advance(a.sw, 70)); /* to t0 + 80: r at 20, a and c at 30, r at 40, 60, 80 */
  CHECK_STR(rec.seen, "bracrrr");
  CHECK_EQ(lp2p_swarm_now(a.sw), t0 + 80);
  rec.self_free = tm[3].t;
  CHECK_OK(lp2p_swarm_advance_to(a.sw, t0 + 100));
  CHECK_STR(rec.seen, "bracrrrr");
  CHECK(tm[3].t == NULL);
  CHECK_OK(lp2p_swarm_advance(a.sw, 1000));
  CHECK_STR(rec.seen, "bracrrrr");
  CHECK_EQ(lp2p_swarm_advance_to(a.sw, t0), LP2P_ERR_INVAL); /* the past */
  /* a stopped timer does not fire; a restarted one counts from now */
  CHECK_OK(lp2p_timer_start(tm[0].t, 5, 0));
  lp2p_timer_stop(tm[0].t);
  CHECK_OK(lp2p_swarm_advance(a.sw, 10));
  CHECK_EQ(rec.n, 8);
  CHECK_OK(lp2p_timer_start(tm[0].t, 5, 0));
  CHECK_EQ(lp2p_swarm_next_deadline(a.sw), lp2p_swarm_now(a.sw) + 5);
  CHECK_OK(lp2p_swarm_advance(a.sw, 5));
  CHECK_STR(rec.seen, "bracrrrra");
  tsw_free(&a);
  CHECK_EQ(tloop_finish(&L), 0);

  /* a real clock refuses advancing */
  tloop L2;
  tloop_init(&L2);
  tsw r;
  CHECK_OK(tsw_init(&r, &L2, 2, NULL, 0));
  CHECK_EQ(lp2p_swarm_advance(r.sw, 1), LP2P_ERR_STATE);
  tsw_free(&r);
  CHECK_EQ(tloop_finish(&L2), 0);
}

/* Interop guard: js-libp2p aborts a connection on > 10 streams opened before its
 * upgrader attached the handler; we open at most LP2P__SW_EARLY_STREAMS until the
 * peer's muxer has sent a frame, the rest follow. */
TEST(early_stream_gate) {
  enum { N = 20 };
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  tdial d = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, (const char *[]){b.addr}, 1, tdial_cb, &d));
  CHECK(RUN_UNTIL(&L, lp2p_swarm_is_connected(a.sw, &b.id), 5000));
  lp2p__conn *c = first_conn(a.sw);
  REQUIRE(c);
  CHECK_EQ(c->remote_seen, 0); /* the dialer is ready before the listener spoke yamux */
  tclient cl[N];
  for (int i = 0; i < N; i++) {
    tclient_init(&cl[i], 1000, (uint32_t)i);
    CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &cl[i], NULL));
  }
  CHECK_EQ(c->n_streams, LP2P__SW_EARLY_STREAMS);
  int done = 0;
  tloop_guard_start(&L, 5000);
  while (done < N && !L.fired) {
    uv_run(&L.loop, UV_RUN_ONCE);
    done = 0;
    for (int i = 0; i < N; i++) done += cl[i].closed && !cl[i].close_err && cl[i].received == 1000;
  }
  tloop_guard_stop(&L);
  CHECK_EQ(done, N);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Optimistic (lazy) negotiation: once the peer accepted a protocol on a connection, a stream proposing
 * just that protocol opens without waiting for the answer (the first writes join the proposal), and a
 * late "na" still fails it with LP2P_ERR_UNSUPPORTED; the protocol is then negotiated fully again. */
TEST(optimistic_negotiation) {
  tloop L;
  tloop_init(&L);
  lp2p_swarm_config cfg;
  tsw_config_manual(&cfg); /* no deadline is involved; the frozen connection closes at free */
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, &cfg, TSW_LISTEN_MEMORY));
  CHECK_OK(tsw_init(&b, &L, 2, &cfg, TSW_LISTEN_MEMORY));
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  REQUIRE(connect_pair(&L, &a, &b));
  tclient c1;
  tclient_init(&c1, 1000, 1);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &c1, NULL));
  CHECK(RUN_UNTIL(&L, c1.closed, 3000));
  CHECK_EQ(c1.close_err, 0);
  CHECK_EQ(c1.received, 1000);

  /* known now: optimistic, and the data written in on_open travels with the proposal */
  tclient c2;
  tclient_init(&c2, 70000, 2);
  lp2p_stream *s2;
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &c2, &s2));
  CHECK_EQ(c2.opened, 0); /* never from inside the call */
  CHECK_EQ(lp2p_stream_write(s2, (const uint8_t *)"x", 1), LP2P_ERR_STATE);
  CHECK(RUN_UNTIL(&L, c2.opened, 3000));
  CHECK_STR(c2.protocol, TECHO_PROTO);
  CHECK(RUN_UNTIL(&L, c2.closed, 3000));
  CHECK_EQ(c2.close_err, 0);
  CHECK_EQ(c2.received, 70000);
  CHECK_EQ(c2.mismatch, 0);
  CHECK_EQ(eb.opened, 2);

  /* the answer is not needed to open: B stops reading, A's stream opens anyway */
  lp2p__conn *cb = first_conn(b.sw);
  REQUIRE(cb && cb->io);
  uv_read_stop(cb->io);
  rec r = {0};
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &rec_handler, &r, NULL));
  CHECK(RUN_UNTIL(&L, r.opened, 3000));
  CHECK_EQ(lp2p_stream_write(r.s, (const uint8_t *)"hello", 5), 5);
  lp2p_stream_reset(r.s);
  CHECK(RUN_UNTIL(&L, r.closed, 3000));
  CHECK_EQ(r.err, LP2P_ERR_CANCELED);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

TEST(optimistic_negotiation_refused) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  REQUIRE(connect_pair(&L, &a, &b));
  tclient c1;
  tclient_init(&c1, 100, 1);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &c1, NULL));
  CHECK(RUN_UNTIL(&L, c1.closed, 3000));
  CHECK_EQ(c1.close_err, 0);
  /* B drops the protocol: the optimistic stream opens, writes, then learns "na" */
  CHECK_OK(lp2p_swarm_remove_protocol(b.sw, TECHO_PROTO));
  tclient c2;
  tclient_init(&c2, 100, 2);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &c2, NULL));
  CHECK(RUN_UNTIL(&L, c2.closed, 3000));
  CHECK_EQ(c2.opened, 1);
  CHECK_EQ(c2.close_err, LP2P_ERR_UNSUPPORTED);
  CHECK_EQ(c2.received, 0);
  CHECK(RUN_UNTIL(&L, b.n_in_stream_failed == 1, 2000));
  /* forgotten: the next stream negotiates fully (no on_open) */
  tclient c3;
  tclient_init(&c3, 100, 3);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &c3, NULL));
  CHECK(RUN_UNTIL(&L, c3.closed, 3000));
  CHECK_EQ(c3.opened, 0);
  CHECK_EQ(c3.close_err, LP2P_ERR_UNSUPPORTED);
  /* several proposals: always the full negotiation, the second choice is taken */
  rec other = {0};
  CHECK_OK(lp2p_swarm_set_protocol(b.sw, "/other/1", &rec_handler, &other));
  tclient c4;
  tclient_init(&c4, 100, 4);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, (const char *[]){TECHO_PROTO, "/other/1"}, 2, &tclient_handler,
                                  &c4, NULL));
  CHECK(RUN_UNTIL(&L, c4.opened, 3000));
  CHECK_STR(c4.protocol, "/other/1");
  CHECK(RUN_UNTIL(&L, other.opened == 1, 3000));
  CHECK(lp2p_swarm_is_connected(a.sw, &b.id));
  CHECK_EQ(a.n_closed, 0);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* More streams than yamux lets us have un-ACKed SYNs for (256): the rest wait on the connection and
 * open as ACKs arrive, none fails. */
TEST(streams_beyond_unacked_limit) {
  enum { N = 400, LEN = 3000 };
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  REQUIRE(connect_pair(&L, &a, &b));
  tclient warm;
  tclient_init(&warm, 10, 99);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, (const char *[]){"/unknown/1"}, 1, &tclient_handler, &warm, NULL));
  CHECK(RUN_UNTIL(&L, warm.closed, 3000)); /* the peer's muxer has spoken: no early-stream gate */
  CHECK_EQ(warm.close_err, LP2P_ERR_UNSUPPORTED);
  lp2p__conn *c = first_conn(a.sw);
  REQUIRE(c && c->remote_seen);
  tclient *cl = calloc(N, sizeof *cl);
  for (int i = 0; i < N; i++) {
    tclient_init(&cl[i], LEN, (uint32_t)i + 1);
    CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &cl[i], NULL));
  }
  CHECK_EQ(c->mx_blocked, 1);
  CHECK_EQ(c->n_streams, LP2P_YAMUX_DEFAULT_MAX_UNACKED);
  int done = 0;
  tloop_guard_start(&L, 10000);
  while (done < N && !L.fired) {
    uv_run(&L.loop, UV_RUN_ONCE);
    done = 0;
    for (int i = 0; i < N; i++) done += cl[i].closed;
  }
  tloop_guard_stop(&L);
  int ok = 0;
  for (int i = 0; i < N; i++) ok += cl[i].closed && !cl[i].close_err && cl[i].received == LEN && !cl[i].mismatch;
  CHECK_EQ(ok, N);
  CHECK_EQ(c->mx_blocked, 0);
  CHECK_EQ(lp2p_swarm_dial_count(a.sw), 1);
  free(cl);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ... and when the peer never ACKs, the waiting streams time out like a negotiation (no hang). */
TEST(unacked_limit_timeout) {
  enum { N = 300 };
  tloop L;
  tloop_init(&L);
  lp2p_swarm_config cfg, cfg_b;
  tsw_config_manual(&cfg);
  cfg.stream_negotiation_timeout_ms = 300;
  tsw_config_manual(&cfg_b);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, &cfg, TSW_LISTEN_MEMORY));
  CHECK_OK(tsw_init(&b, &L, 2, &cfg_b, TSW_LISTEN_MEMORY));
  tsw *both[] = {&a, &b};
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  REQUIRE(connect_pair(&L, &a, &b));
  tclient warm;
  tclient_init(&warm, 10, 99);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &warm, NULL));
  CHECK(RUN_UNTIL(&L, warm.closed, 3000));
  lp2p__conn *cb = first_conn(b.sw);
  REQUIRE(cb && cb->io);
  uv_read_stop(cb->io);
  rec *r = calloc(N, sizeof *r);
  for (int i = 0; i < N; i++)
    CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, (const char *[]){"/other/1"}, 1, &rec_handler, &r[i], NULL));
  lp2p__conn *ca = first_conn(a.sw);
  REQUIRE(ca);
  CHECK_EQ(ca->mx_blocked, 1);
  CHECK_OK(tclock_advance(&L, both, 2, 299));
  int done = 0;
  for (int i = 0; i < N; i++) done += r[i].closed;
  CHECK_EQ(done, 0);
  CHECK_OK(tclock_advance(&L, both, 2, 1));
  int timed_out = 0;
  for (int i = 0; i < N; i++) timed_out += r[i].closed == 1 && r[i].err == LP2P_ERR_TIMEOUT && !r[i].opened;
  CHECK_EQ(timed_out, N);
  CHECK(lp2p_swarm_is_connected(a.sw, &b.id));
  free(r);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}


/* Two connections receiving at the same time: the swarm's one read buffer is shared, a connection's
 * partial Noise frame moves to its own buffer when the other reads, and every byte still arrives in
 * order (echoed and checked both ways). */
TEST(interleaved_partial_frames) {
  enum { LEN = 6 << 20 };
  tloop L;
  tloop_init(&L);
  tsw a, b, c;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  CHECK_OK(tsw_init(&c, &L, 3, NULL, 1));
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  REQUIRE(connect_pair(&L, &a, &b));
  REQUIRE(connect_pair(&L, &c, &b));
  tclient ca, cc;
  tclient_init(&ca, LEN, 11);
  tclient_init(&cc, LEN + 12345, 12);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &ca, NULL));
  CHECK_OK(lp2p_swarm_open_stream(c.sw, &b.id, k_echo, 1, &tclient_handler, &cc, NULL));
  CHECK(RUN_UNTIL(&L, ca.closed && cc.closed, 20000));
  CHECK_EQ(ca.close_err, 0);
  CHECK_EQ(cc.close_err, 0);
  CHECK_EQ(ca.received, LEN);
  CHECK_EQ(cc.received, LEN + 12345);
  CHECK_EQ(ca.mismatch + cc.mismatch, 0);
  CHECK(b.sw->rb_evictions > 0); /* the sharing actually happened */
  tsw_free(&a);
  tsw_free(&b);
  tsw_free(&c);
  CHECK_EQ(tloop_finish(&L), 0);
}

int main(void) {
  RUN(early_stream_gate);
  RUN(optimistic_negotiation);
  RUN(optimistic_negotiation_refused);
  RUN(streams_beyond_unacked_limit);
  RUN(unacked_limit_timeout);
  RUN(interleaved_partial_frames);
  RUN(many_concurrent_streams);
  RUN(manual_consume_backpressure);
  RUN(stream_limits);
  RUN(negotiation_timeout);
  RUN(reentrant_callbacks);
  RUN(garbage_clients);
  RUN(post_from_thread);
  RUN(timers);
  RUN(manual_clock_timers);
  return test_done();
}
