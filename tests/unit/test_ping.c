/* test_ping.c - the ping behaviour between in-process swarms: round trips,
 * many payloads per stream, dialing through the address book, unsupported
 * peers, timeouts, wrong echoes, per-peer stream limits, idle resets and
 * cancellation at swarm free. */
#include <stdlib.h>
#include <string.h>

#include "lp2p/ping.h"
#include "swarm_harness.h"
#include "test.h"

static const char *const k_ping[] = {LP2P_PING_PROTOCOL_ID};

typedef struct pres {
  int calls, err, ok;
  uint64_t rtt;
  lp2p_peer_id peer;
} pres;

static void ping_cb(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, uint64_t rtt_us, void *ud) {
  pres *r = ud;
  (void)sw;
  r->calls++;
  r->err = err;
  r->rtt = rtt_us;
  if (!err) r->ok++;
  r->peer = *peer;
}

static int connect_pair(tloop *L, tsw *a, tsw *b) {
  tdial d = {0};
  if (lp2p_swarm_dial(a->sw, NULL, (const char *[]){b->addr}, 1, tdial_cb, &d) < 0) return 0;
  return RUN_UNTIL(L, d.done && b->n_established >= 1, 5000) && d.err == 0;
}

/* ---- a raw stream recorder ---- */
typedef struct rec {
  lp2p_stream *s;
  int opened, closed, err, eof;
  uint8_t got[1024];
  size_t ngot;
  const uint8_t *send;
  size_t nsend;
  int half_close;
} rec;
static void rec_open(lp2p_stream *s, const char *p, void *ud) {
  rec *r = ud;
  (void)p;
  r->s = s;
  r->opened = 1;
  if (r->nsend) CHECK_EQ(lp2p_stream_write(s, r->send, r->nsend), (int64_t)r->nsend);
  if (r->half_close) lp2p_stream_close_write(s);
}
static void rec_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  rec *r = ud;
  (void)s;
  if (r->ngot + n <= sizeof r->got) memcpy(r->got + r->ngot, p, n);
  r->ngot += n;
}
static void rec_eof(lp2p_stream *s, void *ud) {
  (void)s;
  ((rec *)ud)->eof = 1;
}
static void rec_close(lp2p_stream *s, int err, void *ud) {
  rec *r = ud;
  (void)s;
  r->closed = 1;
  r->err = err;
  r->s = NULL;
}
static const lp2p_stream_handler rec_handler = {sizeof(lp2p_stream_handler), rec_open, rec_data, rec_eof, NULL,
                                                rec_close};

TEST(ping_round_trips) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  lp2p_ping_service *pa = NULL, *pb = NULL;
  CHECK_OK(lp2p_ping_add(a.sw, NULL, &pa));
  CHECK_OK(lp2p_ping_add(b.sw, NULL, &pb));
  CHECK(pa && pb);
  CHECK_EQ(lp2p_ping_add(b.sw, NULL, NULL), LP2P_ERR_EXISTS);
  CHECK(lp2p_swarm_behaviour(b.sw, LP2P_PING_BEHAVIOUR) == pb);
  REQUIRE(connect_pair(&L, &a, &b));

  /* sequential pings, both directions */
  for (int i = 0; i < 5; i++) {
    pres r = {0};
    CHECK_OK(lp2p_ping(a.sw, &b.id, ping_cb, &r));
    CHECK_EQ(r.calls, 0); /* never from inside the call */
    CHECK(RUN_UNTIL(&L, r.calls == 1, 5000));
    CHECK_EQ(r.err, 0);
    CHECK(r.rtt > 0 && r.rtt < 5000000);
    CHECK(lp2p_peer_id_equal(&r.peer, &b.id));
    pres r2 = {0};
    CHECK_OK(lp2p_ping(b.sw, &a.id, ping_cb, &r2));
    CHECK(RUN_UNTIL(&L, r2.calls == 1, 5000));
    CHECK_EQ(r2.err, 0);
  }
  /* concurrent pings (within the per-peer server limit) */
  pres rs[4];
  memset(rs, 0, sizeof rs);
  for (int i = 0; i < 4; i++) CHECK_OK(lp2p_ping(a.sw, &b.id, ping_cb, &rs[i]));
  CHECK(RUN_UNTIL(&L, rs[0].calls && rs[1].calls && rs[2].calls && rs[3].calls, 5000));
  for (int i = 0; i < 4; i++) CHECK_EQ(rs[i].err, 0);
  /* every stream is released again */
  CHECK(RUN_UNTIL(&L, lp2p_ping_served_streams(pb) == 9, 2000));
  CHECK_EQ(lp2p_ping_echoed_bytes(pb), 9 * 32);
  CHECK_EQ(a.n_closed, 0);

  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Many 32-byte payloads on one stream are echoed in order; FIN after ours. */
TEST(ping_many_payloads_one_stream) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  CHECK_OK(lp2p_ping_add(b.sw, NULL, NULL));
  REQUIRE(connect_pair(&L, &a, &b));
  uint8_t payload[10 * 32];
  for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 7 + 3);
  rec r = {0};
  r.send = payload;
  r.nsend = sizeof payload;
  r.half_close = 1;
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_ping, 1, &rec_handler, &r, NULL));
  CHECK(RUN_UNTIL(&L, r.closed, 5000));
  CHECK_EQ(r.err, 0);
  CHECK(r.eof);
  CHECK_EQ(r.ngot, sizeof payload);
  CHECK_MEM(r.got, payload, sizeof payload);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

TEST(ping_dials_through_address_book) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  CHECK_OK(lp2p_ping_add(b.sw, NULL, NULL));
  CHECK_OK(lp2p_swarm_add_address(a.sw, NULL, b.addr));
  pres r = {0};
  CHECK_OK(lp2p_ping(a.sw, &b.id, ping_cb, &r));
  CHECK(RUN_UNTIL(&L, r.calls == 1, 5000));
  CHECK_EQ(r.err, 0);
  CHECK_EQ(a.n_established, 1);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

TEST(ping_errors) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1)); /* no ping behaviour */
  CHECK_EQ(lp2p_ping(a.sw, NULL, ping_cb, NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_ping(NULL, &b.id, ping_cb, NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_ping(a.sw, &a.id, ping_cb, NULL), LP2P_ERR_INVAL); /* ourselves */

  /* unknown peer, no address */
  pres r = {0};
  CHECK_OK(lp2p_ping(a.sw, &b.id, ping_cb, &r));
  CHECK(RUN_UNTIL(&L, r.calls == 1, 2000));
  CHECK_EQ(r.err, LP2P_ERR_NOT_CONNECTED);

  /* the peer does not speak ping */
  REQUIRE(connect_pair(&L, &a, &b));
  memset(&r, 0, sizeof r);
  CHECK_OK(lp2p_ping(a.sw, &b.id, ping_cb, &r));
  CHECK(RUN_UNTIL(&L, r.calls == 1, 5000));
  CHECK_EQ(r.err, LP2P_ERR_UNSUPPORTED);

  /* a black hole: accepts the protocol, never answers */
  rec hole = {0};
  CHECK_OK(lp2p_swarm_set_protocol(b.sw, LP2P_PING_PROTOCOL_ID, &rec_handler, &hole));
  memset(&r, 0, sizeof r);
  CHECK_OK(lp2p_ping_timeout(a.sw, &b.id, 300, ping_cb, &r));
  CHECK(RUN_UNTIL(&L, r.calls == 1, 3000));
  CHECK_EQ(r.err, LP2P_ERR_TIMEOUT);
  CHECK(RUN_UNTIL(&L, hole.closed, 2000)); /* our side reset the stream */
  CHECK_EQ(hole.err, LP2P_ERR_RESET);

  /* a liar: echoes something else */
  static const uint8_t junk[32] = {1, 2, 3};
  rec liar = {0};
  liar.send = junk;
  liar.nsend = sizeof junk;
  CHECK_OK(lp2p_swarm_set_protocol(b.sw, LP2P_PING_PROTOCOL_ID, &rec_handler, &liar));
  memset(&r, 0, sizeof r);
  CHECK_OK(lp2p_ping(a.sw, &b.id, ping_cb, &r));
  CHECK(RUN_UNTIL(&L, r.calls == 1, 3000));
  CHECK_EQ(r.err, LP2P_ERR_PROTO);

  /* too much: 33 bytes */
  static const uint8_t big[33] = {0};
  rec chatty = {0};
  chatty.send = big;
  chatty.nsend = sizeof big;
  CHECK_OK(lp2p_swarm_set_protocol(b.sw, LP2P_PING_PROTOCOL_ID, &rec_handler, &chatty));
  memset(&r, 0, sizeof r);
  CHECK_OK(lp2p_ping(a.sw, &b.id, ping_cb, &r));
  CHECK(RUN_UNTIL(&L, r.calls == 1, 3000));
  CHECK_EQ(r.err, LP2P_ERR_PROTO);

  /* a ping in flight when the swarm is freed reports CANCELED */
  rec hole2 = {0};
  CHECK_OK(lp2p_swarm_set_protocol(b.sw, LP2P_PING_PROTOCOL_ID, &rec_handler, &hole2));
  memset(&r, 0, sizeof r);
  CHECK_OK(lp2p_ping(a.sw, &b.id, ping_cb, &r));
  CHECK(RUN_UNTIL(&L, hole2.opened, 3000));
  CHECK_EQ(r.calls, 0);
  tsw_free(&a);
  CHECK_EQ(r.calls, 1);
  CHECK_EQ(r.err, LP2P_ERR_CANCELED);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Server limits: concurrent streams per peer, idle streams. */
TEST(ping_server_limits) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  lp2p_ping_config cfg;
  lp2p_ping_config_default(&cfg);
  CHECK_EQ(cfg.timeout_ms, 10000);
  cfg.max_inbound_per_peer = 2;
  cfg.idle_timeout_ms = 300;
  lp2p_ping_service *ps = NULL;
  CHECK_OK(lp2p_ping_add(b.sw, &cfg, &ps));
  REQUIRE(connect_pair(&L, &a, &b));
  /* three silent streams: the third is reset at once, the other two when idle */
  rec r[3];
  memset(r, 0, sizeof r);
  for (int i = 0; i < 3; i++) CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_ping, 1, &rec_handler, &r[i], NULL));
  CHECK(RUN_UNTIL(&L, r[2].closed, 2000));
  CHECK_EQ(r[2].err, LP2P_ERR_RESET);
  CHECK(!r[0].closed && !r[1].closed);
  CHECK(RUN_UNTIL(&L, r[0].closed && r[1].closed, 3000));
  CHECK_EQ(r[0].err, LP2P_ERR_RESET);
  CHECK_EQ(lp2p_ping_served_streams(ps), 2);
  /* slots are released: pings work again */
  pres p = {0};
  CHECK_OK(lp2p_ping(a.sw, &b.id, ping_cb, &p));
  CHECK(RUN_UNTIL(&L, p.calls == 1, 3000));
  CHECK_EQ(p.err, 0);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

int main(void) {
  RUN(ping_round_trips);
  RUN(ping_many_payloads_one_stream);
  RUN(ping_dials_through_address_book);
  RUN(ping_errors);
  RUN(ping_server_limits);
  return test_done();
}
