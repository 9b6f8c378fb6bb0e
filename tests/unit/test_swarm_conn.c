/* test_swarm_conn.c - connection lifecycle: simultaneous dial, idle and
 * keep-alive timeouts, limits, negotiation timeouts, hostile raw clients. */
#include <stdlib.h>
#include <string.h>

#include "swarm/swarm_int.h"
#include "swarm_harness.h"
#include "test.h"

static const char *const k_echo[] = {TECHO_PROTO};

static size_t conn_count(lp2p_swarm *sw) {
  size_t n = 0;
  for (lp2p__link *it = sw->conns.next; it != &sw->conns; it = it->next) n++;
  return n;
}

static lp2p__conn *first_conn(lp2p_swarm *sw) {
  return lp2p__list_empty(&sw->conns) ? NULL : LP2P__CONTAINER(sw->conns.next, lp2p__conn, sw_link);
}

/* A stream handler that opens and then just sits there. */
typedef struct idle_stream {
  int opened, closed, err;
  lp2p_stream *s;
} idle_stream;
static void idle_open(lp2p_stream *s, const char *p, void *ud) {
  idle_stream *x = ud;
  (void)p;
  x->opened = 1;
  x->s = s;
}
static void idle_close(lp2p_stream *s, int err, void *ud) {
  idle_stream *x = ud;
  (void)s;
  x->closed = 1;
  x->err = err;
  x->s = NULL;
}
static const lp2p_stream_handler idle_handler = {
    sizeof(lp2p_stream_handler), idle_open, NULL, NULL, NULL, idle_close};

/* Both sides dial each other at the same moment: one usable connection each,
 * one CONN_ESTABLISHED each, no CONN_CLOSED. Both id orders, several rounds. */
TEST(simultaneous_dial) {
  for (int round = 0; round < 6; round++) {
    tloop L;
    tloop_init(&L);
    tsw a, b;
    uint8_t sa = round % 2 ? 1 : 2, sb = round % 2 ? 2 : 1;
    CHECK_OK(tsw_init(&a, &L, sa, NULL, 1));
    CHECK_OK(tsw_init(&b, &L, sb, NULL, 1));
    techo ea = {0}, eb = {0};
    CHECK_OK(lp2p_swarm_add_behaviour(a.sw, &techo_vtable, &ea));
    CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
    tdial da = {0}, db = {0};
    CHECK_OK(lp2p_swarm_dial(a.sw, NULL, (const char *[]){b.addr}, 1, tdial_cb, &da));
    CHECK_OK(lp2p_swarm_dial(b.sw, NULL, (const char *[]){a.addr}, 1, tdial_cb, &db));
    CHECK(RUN_UNTIL(&L, da.done && db.done && a.n_established && b.n_established, 5000));
    CHECK_EQ(da.err, 0);
    CHECK_EQ(db.err, 0);
    /* the duplicate goes away */
    CHECK(RUN_UNTIL(&L, conn_count(a.sw) == 1 && conn_count(b.sw) == 1, 5000));
    CHECK_OK(tloop_settle(&L)); /* and nothing else follows */
    CHECK_EQ(conn_count(a.sw), 1);
    CHECK_EQ(conn_count(b.sw), 1);
    CHECK_EQ(a.n_established, 1);
    CHECK_EQ(b.n_established, 1);
    CHECK_EQ(a.n_closed, 0);
    CHECK_EQ(b.n_closed, 0);
    /* and the survivor is the same TCP connection on both sides, usable both ways */
    lp2p__conn *ca = first_conn(a.sw), *cb = first_conn(b.sw);
    REQUIRE(ca && cb);
    CHECK(ca->dir != cb->dir);
    const lp2p_peer_id *smaller = lp2p_peer_id_cmp(&a.id, &b.id) < 0 ? &a.id : &b.id;
    CHECK(lp2p_peer_id_equal(ca->dir == LP2P_DIR_OUTBOUND ? &a.id : &b.id, smaller));
    tclient c1, c2;
    tclient_init(&c1, 20000, 1);
    tclient_init(&c2, 20000, 2);
    CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &c1, NULL));
    CHECK_OK(lp2p_swarm_open_stream(b.sw, &a.id, k_echo, 1, &tclient_handler, &c2, NULL));
    CHECK(RUN_UNTIL(&L, c1.closed && c2.closed, 5000));
    CHECK_EQ(c1.close_err, 0);
    CHECK_EQ(c2.close_err, 0);
    CHECK_EQ(c1.received, 20000);
    CHECK_EQ(c2.received, 20000);
    CHECK_EQ(lp2p_swarm_dial_count(a.sw), 1);
    CHECK_EQ(lp2p_swarm_dial_count(b.sw), 1);
    tsw_free(&a);
    tsw_free(&b);
    CHECK_EQ(tloop_finish(&L), 0);
  }
}

/* A stream still negotiating on a connection that the simultaneous-dial rule retires starts over on
 * the kept one (here the peer never reads the retired connection again). */
TEST(retired_connection_restarts_negotiation) {
  tloop L;
  tloop_init(&L);
  lp2p_swarm_config cfg;
  tsw_config_manual(&cfg); /* no deadline is involved; the frozen connection closes at free */
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, &cfg, TSW_LISTEN_MEMORY));
  CHECK_OK(tsw_init(&b, &L, 2, &cfg, TSW_LISTEN_MEMORY));
  techo ea = {0}, eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(a.sw, &techo_vtable, &ea));
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  /* the connection kept is the one dialed by the smaller peer id: the larger dials first */
  tsw *big = lp2p_peer_id_cmp(&a.id, &b.id) > 0 ? &a : &b, *small = big == &a ? &b : &a;
  tdial d1 = {0};
  CHECK_OK(lp2p_swarm_dial(big->sw, NULL, (const char *[]){small->addr}, 1, tdial_cb, &d1));
  CHECK(RUN_UNTIL(&L, d1.done && small->n_established == 1, 5000));
  lp2p__conn *c1 = first_conn(small->sw);
  REQUIRE(c1 && c1->io);
  uv_read_stop(c1->io); /* nothing proposed on the first connection is ever answered */
  tclient cl;
  tclient_init(&cl, 1000, 5);
  CHECK_OK(lp2p_swarm_open_stream(big->sw, &small->id, k_echo, 1, &tclient_handler, &cl, NULL));
  CHECK_OK(tloop_settle(&L));
  CHECK_EQ(cl.opened, 0);
  tdial d2 = {0};
  CHECK_OK(lp2p_swarm_dial(small->sw, NULL, (const char *[]){big->base_addr}, 1, tdial_cb, &d2));
  CHECK(RUN_UNTIL(&L, cl.closed, 5000));
  CHECK_EQ(cl.opened, 1);
  CHECK_EQ(cl.close_err, 0);
  CHECK_EQ(cl.received, 1000);
  CHECK_EQ(cl.mismatch, 0);
  CHECK_EQ(d2.err, 0);
  CHECK(lp2p_swarm_is_connected(big->sw, &small->id));
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Idle connections close; holds, behaviour hooks and open streams keep them. In-process transport
 * and manual clocks: "nothing happened before the deadline" is checked at the deadline itself. */
TEST(idle_timeout) {
  tloop L;
  tloop_init(&L);
  lp2p_swarm_config cfg;
  tsw_config_manual(&cfg);
  cfg.idle_timeout_ms = 200;
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, &cfg, TSW_LISTEN_MEMORY));
  CHECK_OK(tsw_init(&b, &L, 2, &cfg, TSW_LISTEN_MEMORY));
  tsw *both[] = {&a, &b};
  CHECK(!strncmp(b.addr, "/memory/", 8));
  techo ea = {0}, eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(a.sw, &techo_vtable, &ea));
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));

  /* plain: closes by itself, exactly idle_timeout_ms after the upgrade (the clocks stood still) */
  tdial d = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, (const char *[]){b.addr}, 1, tdial_cb, &d));
  CHECK(RUN_UNTIL(&L, a.n_established == 1 && b.n_established == 1, 5000));
  CHECK_OK(tclock_advance(&L, both, 2, 199));
  CHECK_EQ(a.n_closed + b.n_closed, 0);
  CHECK_OK(tclock_advance(&L, both, 2, 1));
  CHECK_EQ(a.n_closed, 1);
  CHECK_EQ(b.n_closed, 1);
  CHECK(a.last_closed_err == LP2P_ERR_CLOSED || b.last_closed_err == LP2P_ERR_CLOSED);
  CHECK(!lp2p_swarm_is_connected(a.sw, &b.id));
  CHECK(RUN_UNTIL(&L, conn_count(a.sw) == 0 && conn_count(b.sw) == 0, 3000));

  /* keep-alive holds on both sides */
  CHECK_OK(lp2p_swarm_keep_alive(a.sw, &b.id, 1));
  CHECK_OK(lp2p_swarm_keep_alive(b.sw, &a.id, 1));
  tdial d2 = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, &b.id, NULL, 0, tdial_cb, &d2)); /* from the address book */
  CHECK(RUN_UNTIL(&L, a.n_established == 2 && b.n_established == 2, 5000));
  CHECK_OK(tclock_advance(&L, both, 2, 600));
  CHECK_EQ(a.n_closed, 1);
  CHECK(lp2p_swarm_is_connected(a.sw, &b.id));
  CHECK_OK(lp2p_swarm_keep_alive(a.sw, &b.id, 0));
  CHECK_OK(lp2p_swarm_keep_alive(b.sw, &a.id, 0));
  CHECK_EQ(lp2p_swarm_keep_alive(b.sw, &a.id, 0), LP2P_ERR_STATE);
  CHECK_OK(tclock_advance(&L, both, 2, 199)); /* idle from the release on */
  CHECK_EQ(a.n_closed + b.n_closed, 2);
  CHECK_OK(tclock_advance(&L, both, 2, 1));
  CHECK_EQ(a.n_closed, 2);
  CHECK_EQ(b.n_closed, 2);

  /* a behaviour's keep_alive hook (polled every idle_timeout_ms while the connection is busy) */
  ea.keep_alive = eb.keep_alive = 1;
  tdial d3 = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, &b.id, NULL, 0, tdial_cb, &d3));
  CHECK(RUN_UNTIL(&L, a.n_established == 3 && b.n_established == 3, 5000));
  CHECK_OK(tclock_advance(&L, both, 2, 600));
  CHECK_EQ(a.n_closed, 2);
  ea.keep_alive = eb.keep_alive = 0;
  CHECK_OK(tclock_advance(&L, both, 2, 199)); /* the next poll finds it idle: closed 200 ms later */
  CHECK_EQ(a.n_closed + b.n_closed, 4);
  CHECK_OK(tclock_advance(&L, both, 2, 201));
  CHECK_EQ(a.n_closed, 3);
  CHECK_EQ(b.n_closed, 3);

  /* an open stream keeps it */
  idle_stream is = {0};
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &idle_handler, &is, NULL));
  CHECK(RUN_UNTIL(&L, is.opened && b.n_established == 4, 5000));
  CHECK_OK(tclock_advance(&L, both, 2, 600));
  CHECK_EQ(a.n_closed, 3);
  CHECK_EQ(is.closed, 0);
  lp2p_stream_reset(is.s);
  CHECK_OK(tclock_advance(&L, both, 2, 199));
  CHECK(is.closed);
  CHECK_EQ(a.n_closed + b.n_closed, 6);
  CHECK_OK(tclock_advance(&L, both, 2, 1));
  CHECK_EQ(a.n_closed, 4);
  CHECK_EQ(b.n_closed, 4);
  CHECK_EQ(is.err, LP2P_ERR_CANCELED);
  CHECK_EQ(lp2p_swarm_dial_count(a.sw), 4);

  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* The peer stops answering: keep-alive ping times out => CONN_CLOSED(TIMEOUT), exactly
 * keepalive_timeout_ms after the unanswered ping. */
TEST(keepalive_timeout) {
  tloop L;
  tloop_init(&L);
  lp2p_swarm_config cfg, cfg_b;
  tsw_config_manual(&cfg);
  cfg.keepalive_interval_ms = 100;
  cfg.keepalive_timeout_ms = 1000;
  tsw_config_manual(&cfg_b);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, &cfg, TSW_LISTEN_MEMORY));
  CHECK_OK(tsw_init(&b, &L, 2, &cfg_b, TSW_LISTEN_MEMORY));
  tsw *both[] = {&a, &b};
  tdial d = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, (const char *[]){b.addr}, 1, tdial_cb, &d));
  CHECK(RUN_UNTIL(&L, a.n_established == 1 && b.n_established == 1, 5000));
  /* healthy pings (every 100 ms, each answered at once) for a while */
  CHECK_OK(tclock_advance(&L, both, 2, 500));
  CHECK_EQ(a.n_closed, 0);
  lp2p__conn *ca = first_conn(a.sw);
  REQUIRE(ca && ca->mx);
  CHECK_EQ(lp2p_yamux_next_expiry(ca->mx), lp2p_swarm_now(a.sw) + 100); /* the ping at 500 was answered */
  /* B goes deaf: the ping at +100 stays unanswered */
  lp2p__conn *cb = first_conn(b.sw);
  REQUIRE(cb && cb->io);
  uv_read_stop(cb->io);
  CHECK_OK(tclock_advance(&L, both, 2, 100 + 999));
  CHECK_EQ(a.n_closed, 0);
  CHECK(lp2p_swarm_is_connected(a.sw, &b.id));
  CHECK_OK(tclock_advance(&L, both, 2, 1));
  CHECK_EQ(a.n_closed, 1);
  CHECK_EQ(a.last_closed_err, LP2P_ERR_TIMEOUT);
  CHECK(!lp2p_swarm_is_connected(a.sw, &b.id));
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* max inbound / outbound connections. */
TEST(connection_limits) {
  tloop L;
  tloop_init(&L);
  lp2p_swarm_config cb_cfg, ca_cfg;
  tsw_config(&cb_cfg);
  cb_cfg.max_inbound_conns = 1;
  tsw_config(&ca_cfg);
  ca_cfg.max_outbound_conns = 1;
  tsw a, b, c;
  CHECK_OK(tsw_init(&a, &L, 1, &ca_cfg, 1));
  CHECK_OK(tsw_init(&b, &L, 2, &cb_cfg, 1));
  CHECK_OK(tsw_init(&c, &L, 3, NULL, 1));
  tdial d1 = {0}, d2 = {0}, d3 = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, (const char *[]){b.addr}, 1, tdial_cb, &d1));
  CHECK(RUN_UNTIL(&L, d1.done && b.n_established == 1, 5000));
  CHECK_EQ(d1.err, 0);
  /* B is full: C is refused */
  CHECK_OK(lp2p_swarm_dial(c.sw, NULL, (const char *[]){b.addr}, 1, tdial_cb, &d2));
  CHECK(RUN_UNTIL(&L, d2.done && b.n_in_conn_failed == 1, 5000));
  CHECK(d2.err < 0);
  CHECK_EQ(b.last_in_conn_err, LP2P_ERR_LIMIT);
  CHECK_EQ(b.n_established, 1);
  /* A may not dial a second peer */
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, (const char *[]){c.addr}, 1, tdial_cb, &d3));
  CHECK(RUN_UNTIL(&L, d3.done, 5000));
  CHECK_EQ(d3.err, LP2P_ERR_LIMIT);
  CHECK(lp2p_swarm_is_connected(a.sw, &b.id));
  tsw_free(&a);
  tsw_free(&b);
  tsw_free(&c);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Silent raw TCP clients: pending-handshake limit and handshake timeout (B's clock is manual). */
TEST(pending_handshakes_and_timeout) {
  tloop L;
  tloop_init(&L);
  lp2p_swarm_config cfg;
  tsw_config_manual(&cfg);
  cfg.max_pending_inbound = 1;
  cfg.handshake_timeout_ms = 300;
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, &cfg, 1));
  traw r1, r2;
  CHECK_EQ(traw_connect(&r1, &L, tsw_port(&b)), 0);
  CHECK(RUN_UNTIL(&L, r1.connected && b.sw->pending_inbound == 1, 2000));
  CHECK_EQ(traw_connect(&r2, &L, tsw_port(&b)), 0);
  /* r2 exceeds the pending limit: closed at once */
  CHECK(RUN_UNTIL(&L, r2.eof, 2000));
  CHECK_EQ(b.n_in_conn_failed, 1);
  CHECK_EQ(b.last_in_conn_err, LP2P_ERR_LIMIT);
  CHECK_EQ(r1.eof, 0);
  /* r1 sends nothing: handshake timeout */
  tsw *bp[] = {&b};
  CHECK_OK(tclock_advance(&L, bp, 1, 299));
  CHECK_EQ(r1.eof, 0);
  CHECK_EQ(b.n_in_conn_failed, 1);
  CHECK_OK(tclock_advance(&L, bp, 1, 1));
  CHECK(RUN_UNTIL(&L, r1.eof, 3000));
  CHECK_EQ(b.n_in_conn_failed, 2);
  CHECK_EQ(b.last_in_conn_err, LP2P_ERR_TIMEOUT);
  CHECK_EQ(b.sw->pending_inbound, 0);
  /* a real peer still gets in */
  tdial d = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, (const char *[]){b.addr}, 1, tdial_cb, &d));
  CHECK(RUN_UNTIL(&L, d.done && b.n_established == 1, 5000));
  CHECK_EQ(d.err, 0);
  traw_close(&r1);
  traw_close(&r2);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* A server that accepts TCP and never answers: the dial times out per address. */
typedef struct silent_srv {
  int accepted;
  uv_tcp_t *last;
} silent_srv;
static void silent_conn(uv_stream_t *srv, int status) {
  silent_srv *st = srv->data;
  if (status < 0) return;
  uv_tcp_t *t = malloc(sizeof *t);
  uv_tcp_init(srv->loop, t);
  uv_accept(srv, (uv_stream_t *)t);
  st->accepted++;
  st->last = t;
}
static void free_handle(uv_handle_t *h) { free(h); }

TEST(dial_timeout) {
  tloop L;
  tloop_init(&L);
  lp2p_swarm_config cfg;
  tsw_config_manual(&cfg);
  cfg.dial_timeout_ms = 300;
  tsw a;
  CHECK_OK(tsw_init(&a, &L, 1, &cfg, 0));
  uv_tcp_t srv;
  silent_srv st = {0, NULL};
  uv_tcp_init(&L.loop, &srv);
  srv.data = &st;
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  uv_tcp_bind(&srv, (const struct sockaddr *)&sa, 0);
  CHECK_EQ(uv_listen((uv_stream_t *)&srv, 8, silent_conn), 0);
  int len = sizeof sa;
  uv_tcp_getsockname(&srv, (struct sockaddr *)&sa, &len);
  char addr[64];
  snprintf(addr, sizeof addr, "/ip4/127.0.0.1/tcp/%d", ntohs(sa.sin_port));
  tsw b;
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 0));
  tdial d = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, &b.id, (const char *[]){addr}, 1, tdial_cb, &d));
  CHECK(RUN_UNTIL(&L, st.accepted == 1, 5000));
  tsw *ap[] = {&a};
  CHECK_OK(tclock_advance(&L, ap, 1, 299));
  CHECK_EQ(d.done, 0);
  CHECK_OK(tclock_advance(&L, ap, 1, 1));
  CHECK_EQ(d.done, 1);
  CHECK_EQ(d.err, LP2P_ERR_TIMEOUT);
  CHECK_EQ(st.accepted, 1);
  CHECK_EQ(a.n_dial_failed, 1);
  if (st.last) uv_close((uv_handle_t *)st.last, free_handle);
  uv_close((uv_handle_t *)&srv, NULL);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Our dialer is lazy too: Noise msg1 follows the /noise proposal in the first flight, without waiting
 * for the listener's echo (a listener that never answers still receives it). */
typedef struct record_srv {
  uv_tcp_t *conn;
  uint8_t buf[256];
  size_t len;
} record_srv;
static void record_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  record_srv *r = h->data;
  (void)n;
  b->base = (char *)r->buf + r->len;
  b->len = sizeof r->buf - r->len;
}
static void record_read(uv_stream_t *st, ssize_t nr, const uv_buf_t *b) {
  record_srv *r = st->data;
  (void)b;
  if (nr > 0) r->len += (size_t)nr;
  if (nr < 0 || r->len == sizeof r->buf) uv_read_stop(st);
}
static void record_conn(uv_stream_t *srv, int status) {
  record_srv *r = srv->data;
  if (status < 0 || r->conn) return;
  r->conn = malloc(sizeof *r->conn);
  uv_tcp_init(srv->loop, r->conn);
  r->conn->data = r;
  uv_accept(srv, (uv_stream_t *)r->conn);
  uv_read_start((uv_stream_t *)r->conn, record_alloc, record_read);
}

TEST(lazy_security_first_flight) {
  tloop L;
  tloop_init(&L);
  lp2p_swarm_config cfg;
  tsw_config_manual(&cfg);
  cfg.dial_timeout_ms = 400;
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, &cfg, 0));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 0));
  uv_tcp_t srv;
  record_srv r;
  memset(&r, 0, sizeof r);
  uv_tcp_init(&L.loop, &srv);
  srv.data = &r;
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  uv_tcp_bind(&srv, (const struct sockaddr *)&sa, 0);
  CHECK_EQ(uv_listen((uv_stream_t *)&srv, 8, record_conn), 0);
  int len = sizeof sa;
  uv_tcp_getsockname(&srv, (struct sockaddr *)&sa, &len);
  char addr[64];
  snprintf(addr, sizeof addr, "/ip4/127.0.0.1/tcp/%d", ntohs(sa.sin_port));
  tdial d = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, &b.id, (const char *[]){addr}, 1, tdial_cb, &d));
  static const uint8_t hello[] = "\x13/multistream/1.0.0\n\x07/noise\n\x00\x20"; /* + 32-byte e */
  CHECK(RUN_UNTIL(&L, r.len >= sizeof hello - 1 + 32, 2000));
  tsw *ap[] = {&a};
  CHECK_OK(tclock_advance(&L, ap, 1, 400));
  CHECK(d.done);
  CHECK_EQ(d.err, LP2P_ERR_TIMEOUT);
  CHECK_EQ(r.len, sizeof hello - 1 + 32); /* nothing else: msg2 never came */
  CHECK_MEM(r.buf, hello, sizeof hello - 1);
  if (r.conn) uv_close((uv_handle_t *)r.conn, free_handle);
  uv_close((uv_handle_t *)&srv, NULL);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---- a lazy dialer (rust-libp2p V1Lazy style) built from the engines over a raw
 * socket: every negotiation is pipelined with the next layer's first bytes:
 *   flight 1: mss "/noise" + Noise msg1
 *   flight 2: Noise msg3 + [mss "/yamux/1.0.0" + yamux SYN + mss echo proposal + app data]
 * and no muxer list in the Noise handshake (rust does not send one). */
typedef struct lazy {
  uv_tcp_t tcp;
  uv_connect_t creq;
  lp2p_privkey *key;
  lp2p_mss *sec, *mux, *app;
  lp2p_noise *noise;
  lp2p_yamux *mx;
  uint32_t sid;
  int stage, failed;
  uint8_t in[1 << 16];
  size_t in_len;
  char echoed[64];
  size_t n_echoed;
  int fin_with_data; /* half-close right after the first data */
  /* yamux frames from the listener, parsed off the decrypted byte stream */
  uint8_t yhdr[12];
  size_t yhdr_len, ybody_left;
  int data_frames, fin_frames, data_fin_frames;
} lazy;

/* Records the listener's yamux frames (version, type, flags u16, id u32, length u32; only Data (type
 * 0) frames carry `length` payload bytes). */
static void lazy_inspect(lazy *z, const uint8_t *p, size_t n) {
  while (n) {
    if (z->ybody_left) {
      size_t k = n < z->ybody_left ? n : z->ybody_left;
      z->ybody_left -= k;
      p += k;
      n -= k;
      continue;
    }
    size_t k = 12 - z->yhdr_len < n ? 12 - z->yhdr_len : n;
    memcpy(z->yhdr + z->yhdr_len, p, k);
    z->yhdr_len += k;
    p += k;
    n -= k;
    if (z->yhdr_len < 12) break;
    z->yhdr_len = 0;
    uint32_t len = ((uint32_t)z->yhdr[8] << 24) | ((uint32_t)z->yhdr[9] << 16) | ((uint32_t)z->yhdr[10] << 8) |
                   z->yhdr[11];
    int fin = (z->yhdr[3] & 0x04) != 0, data = z->yhdr[1] == 0;
    z->fin_frames += fin;
    if (data && len) {
      z->data_frames++;
      z->data_fin_frames += fin;
      z->ybody_left = len;
    }
  }
}

static void lazy_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}
static void lazy_send(lazy *z, const uint8_t *p, size_t n) {
  uv_write_t *w = malloc(sizeof *w + n);
  memcpy(w + 1, p, n);
  uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)n);
  uv_write(w, (uv_stream_t *)&z->tcp, &b, 1, lazy_written);
}
static void lazy_flush_noise(lazy *z) {
  const uint8_t *p;
  size_t n = lp2p_noise_output(z->noise, &p);
  if (n) {
    lazy_send(z, p, n);
    lp2p_noise_output_consumed(z->noise, n);
  }
}
static void lazy_data(lp2p_yamux *mx, uint32_t id, const uint8_t *p, size_t n, void *ud) {
  lazy *z = ud;
  lp2p_yamux_consume(mx, id, n);
  if (!lp2p_mss_done(z->app)) {
    int64_t k = lp2p_mss_feed(z->app, p, n);
    if (k < 0) {
      z->failed = 1;
      return;
    }
    p += k;
    n -= (size_t)k;
  }
  if (n && z->n_echoed + n < sizeof z->echoed) {
    memcpy(z->echoed + z->n_echoed, p, n);
    z->n_echoed += n;
  }
}
static const lp2p_yamux_callbacks lazy_ycb = {.struct_size = sizeof(lp2p_yamux_callbacks),
                                              .on_stream_data = lazy_data};

static void lazy_second_flight(lazy *z) {
  static const char *const mux[] = {"/yamux/1.0.0"};
  static const char *const app[] = {TECHO_PROTO};
  lp2p_mss_new_dialer(&z->mux, mux, 1, NULL, NULL);
  lp2p_yamux_config yc;
  lp2p_yamux_config_default(&yc, 1);
  yc.keepalive_interval = 0;
  lp2p_yamux_new(&z->mx, &yc, &lazy_ycb, z, NULL);
  lp2p_yamux_open_stream(z->mx, &z->sid);
  lp2p_mss_new_dialer(&z->app, app, 1, NULL, NULL);
  const uint8_t *p;
  size_t n = lp2p_mss_output(z->app, &p);
  uint8_t first[256];
  memcpy(first, p, n);
  memcpy(first + n, "hello, lazy", 11);
  lp2p_yamux_write(z->mx, z->sid, first, n + 11);
  if (z->fin_with_data) lp2p_yamux_close_write(z->mx, z->sid);
  lp2p_mss_output_consumed(z->app, n);
  n = lp2p_mss_output(z->mux, &p);
  lp2p_noise_write(z->noise, p, n); /* after msg3 in the noise output */
  lp2p_mss_output_consumed(z->mux, n);
  while ((n = lp2p_yamux_output(z->mx, &p)) > 0) {
    lp2p_noise_write(z->noise, p, n);
    lp2p_yamux_output_consumed(z->mx, n);
  }
  lazy_flush_noise(z); /* msg3 + muxer proposal + yamux frames: one write */
}

static void lazy_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  lazy *z = h->data;
  (void)s;
  b->base = (char *)z->in + z->in_len;
  b->len = sizeof z->in - z->in_len;
}

static void lazy_read(uv_stream_t *st, ssize_t nr, const uv_buf_t *b) {
  lazy *z = st->data;
  (void)b;
  if (nr < 0) {
    z->failed = z->failed || z->n_echoed < 11;
    uv_read_stop(st);
    return;
  }
  z->in_len += (size_t)nr;
  for (int progress = 1; progress && !z->failed;) {
    progress = 0;
    int64_t k = 0;
    if (z->stage == 0) {
      k = lp2p_mss_feed(z->sec, z->in, z->in_len);
      if (k >= 0 && lp2p_mss_done(z->sec)) z->stage = 1, progress = 1;
    } else {
      k = lp2p_noise_feed(z->noise, z->in, z->in_len);
      if (k >= 0 && z->stage == 1 && lp2p_noise_handshake_done(z->noise)) {
        z->stage = 2;
        progress = 1;
        lazy_second_flight(z);
      }
    }
    if (k < 0) {
      z->failed = 1;
      break;
    }
    memmove(z->in, z->in + k, z->in_len - (size_t)k);
    z->in_len -= (size_t)k;
    if (k > 0) progress = 1;
    if (z->stage == 2) {
      const uint8_t *p;
      size_t n;
      while ((n = lp2p_noise_plaintext(z->noise, &p)) > 0) {
        int64_t used = 0;
        if (!lp2p_mss_done(z->mux)) {
          used = lp2p_mss_feed(z->mux, p, n);
          if (used < 0) z->failed = 1;
        } else {
          lazy_inspect(z, p, n);
          used = lp2p_yamux_feed(z->mx, p, n, 0);
          if (used < 0) z->failed = 1;
        }
        if (z->failed || used == 0) break;
        lp2p_noise_plaintext_consumed(z->noise, (size_t)used);
      }
    }
  }
}

static void lazy_connected(uv_connect_t *req, int status) {
  lazy *z = req->data;
  if (status < 0) {
    z->failed = 1;
    return;
  }
  static const char *const sec[] = {"/noise"};
  lp2p_mss_new_dialer(&z->sec, sec, 1, NULL, NULL);
  lp2p_noise_config nc;
  memset(&nc, 0, sizeof nc);
  nc.struct_size = sizeof nc;
  nc.initiator = 1;
  nc.identity = z->key;
  lp2p_noise_new(&z->noise, &nc, NULL);
  /* flight 1: proposal + msg1, before the echo */
  const uint8_t *p, *q;
  size_t n = lp2p_mss_output(z->sec, &p), m = lp2p_noise_output(z->noise, &q);
  uint8_t buf[256];
  memcpy(buf, p, n);
  memcpy(buf + n, q, m);
  lazy_send(z, buf, n + m);
  lp2p_mss_output_consumed(z->sec, n);
  lp2p_noise_output_consumed(z->noise, m);
  uv_read_start((uv_stream_t *)&z->tcp, lazy_alloc, lazy_read);
}

TEST(lazy_dialer_pipelining) {
  tloop L;
  tloop_init(&L);
  tsw b;
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  lazy *z = calloc(1, sizeof *z);
  uint8_t seed[32];
  memset(seed, 5, sizeof seed);
  CHECK_OK(lp2p_privkey_from_ed25519_seed(&z->key, seed));
  uv_tcp_init(&L.loop, &z->tcp);
  z->tcp.data = z;
  z->creq.data = z;
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", tsw_port(&b), &sa);
  CHECK_EQ(uv_tcp_connect(&z->creq, &z->tcp, (const struct sockaddr *)&sa, lazy_connected), 0);
  CHECK(RUN_UNTIL(&L, z->failed || z->n_echoed >= 11, 5000));
  CHECK_EQ(z->failed, 0);
  CHECK_EQ(z->n_echoed, 11);
  CHECK_MEM(z->echoed, "hello, lazy", 11);
  CHECK_EQ(b.n_established, 1);
  CHECK_EQ(eb.opened, 1);
  uv_close((uv_handle_t *)&z->tcp, NULL);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
  lp2p_mss_free(z->sec);
  lp2p_mss_free(z->mux);
  lp2p_mss_free(z->app);
  lp2p_noise_free(z->noise);
  lp2p_yamux_free(z->mx);
  lp2p_privkey_free(z->key);
  free(z);
}

/* Interop guard (js-libp2p-yamux 8.x drops the payload of a Data frame that carries FIN): the echo
 * peer's answer and its half-close leave in one flush, and on the wire FIN never rides on a Data frame
 * with payload. */
TEST(fin_never_on_data_frame) {
  tloop L;
  tloop_init(&L);
  tsw b;
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  lazy *z = calloc(1, sizeof *z);
  z->fin_with_data = 1;
  uint8_t seed[32];
  memset(seed, 6, sizeof seed);
  CHECK_OK(lp2p_privkey_from_ed25519_seed(&z->key, seed));
  uv_tcp_init(&L.loop, &z->tcp);
  z->tcp.data = z;
  z->creq.data = z;
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", tsw_port(&b), &sa);
  CHECK_EQ(uv_tcp_connect(&z->creq, &z->tcp, (const struct sockaddr *)&sa, lazy_connected), 0);
  CHECK(RUN_UNTIL(&L, z->failed || (z->n_echoed >= 11 && z->fin_frames >= 1), 5000));
  CHECK_EQ(z->failed, 0);
  CHECK_EQ(z->n_echoed, 11);
  CHECK_MEM(z->echoed, "hello, lazy", 11);
  CHECK(z->data_frames >= 1);    /* the echo arrived in Data frames ... */
  CHECK_EQ(z->fin_frames, 1);    /* ... followed by exactly one FIN ... */
  CHECK_EQ(z->data_fin_frames, 0); /* ... on a frame without payload */
  CHECK(RUN_UNTIL(&L, eb.closed == 1, 3000));
  CHECK_EQ(eb.close_errs, 0);
  uv_close((uv_handle_t *)&z->tcp, NULL);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
  lp2p_mss_free(z->sec);
  lp2p_mss_free(z->mux);
  lp2p_mss_free(z->app);
  lp2p_noise_free(z->noise);
  lp2p_yamux_free(z->mx);
  lp2p_privkey_free(z->key);
  free(z);
}

int main(void) {
  RUN(lazy_dialer_pipelining);
  RUN(fin_never_on_data_frame);
  RUN(dial_timeout);
  RUN(lazy_security_first_flight);
  RUN(simultaneous_dial);
  RUN(retired_connection_restarts_negotiation);
  RUN(idle_timeout);
  RUN(keepalive_timeout);
  RUN(connection_limits);
  RUN(pending_handshakes_and_timeout);
  return test_done();
}
