/* test_perf.c - the perf behaviour between in-process swarms: 64 MiB each way
 * with exact byte counts on both sides, one-way transfers, the server's
 * request limit, a lying server, a client closing before the header, idle
 * timeouts and cancellation at swarm free. */
#include <stdlib.h>
#include <string.h>

#include "lp2p/perf.h"
#include "swarm_harness.h"
#include "test.h"

#define MiB (1024ull * 1024ull)

static const char *const k_perf[] = {LP2P_PERF_PROTOCOL_ID};

typedef struct pres {
  int calls, err;
  lp2p_perf_result r;
} pres;

static void perf_cb(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_perf_result *r, void *ud) {
  pres *p = ud;
  (void)sw;
  (void)peer;
  p->calls++;
  p->err = err;
  p->r = *r;
}

static int connect_pair(tloop *L, tsw *a, tsw *b) {
  tdial d = {0};
  if (lp2p_swarm_dial(a->sw, NULL, (const char *[]){b->addr}, 1, tdial_cb, &d) < 0) return 0;
  return RUN_UNTIL(L, d.done && b->n_established >= 1, 5000) && d.err == 0;
}

static void add_server(tsw *t, pres *served, uint64_t max) {
  lp2p_perf_config cfg;
  lp2p_perf_config_default(&cfg);
  CHECK_EQ(cfg.idle_timeout_ms, 30000);
  cfg.on_served = perf_cb;
  cfg.ud = served;
  cfg.max_download = max;
  CHECK_OK(lp2p_perf_add(t->sw, &cfg, NULL));
}

TEST(perf_64mib_each_way) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  pres served = {0}, res = {0};
  add_server(&b, &served, 0);
  CHECK_EQ(lp2p_perf_add(b.sw, NULL, NULL), LP2P_ERR_EXISTS);
  REQUIRE(connect_pair(&L, &a, &b));
  CHECK_OK(lp2p_perf_run(a.sw, &b.id, 64 * MiB, 64 * MiB, perf_cb, &res));
  CHECK_EQ(res.calls, 0);
  CHECK(RUN_UNTIL(&L, res.calls && served.calls, 120000));
  CHECK_EQ(res.err, 0);
  CHECK_EQ(res.r.uploaded, 64 * MiB);
  CHECK_EQ(res.r.downloaded, 64 * MiB);
  CHECK(res.r.upload_us > 0 && res.r.download_us > 0);
  CHECK(res.r.total_us >= res.r.upload_us);
  CHECK_EQ(served.err, 0);
  CHECK_EQ(served.r.uploaded, 64 * MiB);
  CHECK_EQ(served.r.downloaded, 64 * MiB);
  printf("     64 MiB up %.1f MiB/s, 64 MiB down %.1f MiB/s\n", 64.0 * 1e6 / (double)res.r.upload_us,
         64.0 * 1e6 / (double)res.r.download_us);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

TEST(perf_one_way_and_odd_sizes) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  pres served = {0};
  add_server(&b, &served, 0);
  CHECK_OK(lp2p_swarm_add_address(a.sw, NULL, b.addr)); /* dial through the address book */
  static const uint64_t sizes[][2] = {{0, 0}, {1, 0}, {0, 1}, {3 * MiB + 17, 0}, {0, 5 * MiB + 3}, {65535, 65537}};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    pres res = {0};
    served.calls = 0;
    CHECK_OK(lp2p_perf_run(a.sw, &b.id, sizes[i][0], sizes[i][1], perf_cb, &res));
    CHECK(RUN_UNTIL(&L, res.calls && served.calls, 20000));
    CHECK_EQ(res.err, 0);
    CHECK_EQ(res.r.uploaded, sizes[i][0]);
    CHECK_EQ(res.r.downloaded, sizes[i][1]);
    CHECK_EQ(served.r.uploaded, sizes[i][0]);
    CHECK_EQ(served.r.downloaded, sizes[i][1]);
  }
  /* several at once on the same connection */
  pres many[8];
  memset(many, 0, sizeof many);
  for (int i = 0; i < 8; i++) CHECK_OK(lp2p_perf_run(a.sw, &b.id, MiB + (uint64_t)i, MiB - (uint64_t)i, perf_cb, &many[i]));
  int done = 0;
  CHECK(RUN_UNTIL(&L, (done = many[0].calls + many[1].calls + many[2].calls + many[3].calls + many[4].calls +
                              many[5].calls + many[6].calls + many[7].calls) == 8,
                  20000));
  for (int i = 0; i < 8; i++) {
    CHECK_EQ(many[i].err, 0);
    CHECK_EQ(many[i].r.uploaded, MiB + (uint64_t)i);
    CHECK_EQ(many[i].r.downloaded, MiB - (uint64_t)i);
  }
  CHECK_EQ(a.n_established, 1);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---- raw stream helper for hostile peers ---- */
typedef struct rec {
  lp2p_stream *s;
  int opened, closed, err, eof;
  uint64_t got;
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
  (void)s;
  (void)p;
  ((rec *)ud)->got += n;
}
static void rec_eof(lp2p_stream *s, void *ud) {
  rec *r = ud;
  r->eof = 1;
  if (r->half_close == 2) lp2p_stream_close_write(s);
}
static void rec_close(lp2p_stream *s, int err, void *ud) {
  rec *r = ud;
  (void)s;
  r->closed = 1;
  r->err = err;
}
static const lp2p_stream_handler rec_handler = {sizeof(lp2p_stream_handler), rec_open, rec_data, rec_eof, NULL,
                                                rec_close};

TEST(perf_server_checks) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  pres served = {0};
  add_server(&b, &served, 10 * MiB);
  REQUIRE(connect_pair(&L, &a, &b));

  /* over the server's limit: reset */
  pres res = {0};
  CHECK_OK(lp2p_perf_run(a.sw, &b.id, 10, 10 * MiB + 1, perf_cb, &res));
  CHECK(RUN_UNTIL(&L, res.calls && served.calls, 5000));
  CHECK_EQ(res.err, LP2P_ERR_RESET);
  CHECK_EQ(res.r.uploaded, 10);
  CHECK_EQ(res.r.downloaded, 0);
  CHECK_EQ(served.err, LP2P_ERR_LIMIT);

  /* the client closes after 5 bytes: no header */
  static const uint8_t five[5] = {0};
  rec r = {0};
  r.send = five;
  r.nsend = sizeof five;
  r.half_close = 1;
  served.calls = 0;
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_perf, 1, &rec_handler, &r, NULL));
  CHECK(RUN_UNTIL(&L, r.closed && served.calls, 5000));
  CHECK_EQ(r.err, LP2P_ERR_RESET);
  CHECK_EQ(served.err, LP2P_ERR_PROTO);

  /* a zero-length request with bytes: the server answers nothing and closes */
  static const uint8_t req[12] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
  rec r2 = {0};
  r2.send = req;
  r2.nsend = sizeof req;
  r2.half_close = 1;
  served.calls = 0;
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_perf, 1, &rec_handler, &r2, NULL));
  CHECK(RUN_UNTIL(&L, r2.closed && served.calls, 5000));
  CHECK_EQ(r2.err, 0);
  CHECK_EQ(r2.got, 0);
  CHECK_EQ(served.err, 0);
  CHECK_EQ(served.r.uploaded, 4);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

TEST(perf_client_checks) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  /* a liar: sends 100 bytes whatever was asked, after the client's EOF */
  static const uint8_t hundred[100] = {0};
  rec liar = {0};
  liar.half_close = 2;
  CHECK_OK(lp2p_swarm_set_protocol(b.sw, LP2P_PERF_PROTOCOL_ID, &rec_handler, &liar));
  REQUIRE(connect_pair(&L, &a, &b));
  liar.send = hundred;
  liar.nsend = sizeof hundred;
  pres res = {0};
  CHECK_OK(lp2p_perf_run(a.sw, &b.id, 1000, 50, perf_cb, &res)); /* too many back */
  CHECK(RUN_UNTIL(&L, res.calls, 5000));
  CHECK_EQ(res.err, LP2P_ERR_PROTO);
  memset(&res, 0, sizeof res);
  memset(&liar, 0, sizeof liar);
  liar.half_close = 2;
  liar.send = hundred;
  liar.nsend = sizeof hundred;
  CHECK_OK(lp2p_perf_run(a.sw, &b.id, 1000, 200, perf_cb, &res)); /* too few back */
  CHECK(RUN_UNTIL(&L, res.calls, 5000));
  CHECK_EQ(res.err, LP2P_ERR_PROTO);
  CHECK_EQ(res.r.downloaded, 100);
  CHECK_EQ(res.r.uploaded, 1000);

  /* the peer does not speak perf */
  CHECK_OK(lp2p_swarm_remove_protocol(b.sw, LP2P_PERF_PROTOCOL_ID));
  memset(&res, 0, sizeof res);
  CHECK_OK(lp2p_perf_run(a.sw, &b.id, 1, 1, perf_cb, &res));
  CHECK(RUN_UNTIL(&L, res.calls, 5000));
  CHECK_EQ(res.err, LP2P_ERR_UNSUPPORTED);

  /* idle timeout: a silent server (client behaviour configured with 300 ms) */
  lp2p_perf_config cfg;
  lp2p_perf_config_default(&cfg);
  cfg.idle_timeout_ms = 300;
  CHECK_OK(lp2p_perf_add(a.sw, &cfg, NULL));
  rec hole = {0};
  CHECK_OK(lp2p_swarm_set_protocol(b.sw, LP2P_PERF_PROTOCOL_ID, &rec_handler, &hole));
  memset(&res, 0, sizeof res);
  CHECK_OK(lp2p_perf_run(a.sw, &b.id, 10, 10, perf_cb, &res));
  CHECK(RUN_UNTIL(&L, res.calls, 5000));
  CHECK_EQ(res.err, LP2P_ERR_TIMEOUT);
  CHECK_EQ(res.r.uploaded, 10);

  /* cancellation at swarm free */
  memset(&res, 0, sizeof res);
  memset(&hole, 0, sizeof hole);
  CHECK_OK(lp2p_perf_run(a.sw, &b.id, 10, 10, perf_cb, &res));
  CHECK(RUN_UNTIL(&L, hole.opened, 5000));
  tsw_free(&a);
  CHECK_EQ(res.calls, 1);
  CHECK_EQ(res.err, LP2P_ERR_CANCELED);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

int main(void) {
  RUN(perf_64mib_each_way);
  RUN(perf_one_way_and_odd_sizes);
  RUN(perf_server_checks);
  RUN(perf_client_checks);
  return test_done();
}
