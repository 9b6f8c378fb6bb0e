/* tests/unit/test_yamux_output.c - Yamux engine output side: gathered output (output_iov, also
 * with frames in flight and under allocation failure), maximum frame payload, the send budget,
 * outbound stream capacity, idle memory per stream. */
#include <stdlib.h>

#include "failmem.h"
#include "json.h"
#include "muxer/yamux_int.h"
#include "test.h"
#include "yamux_harness.h"
#include "yamux_scenario.h"

/* ---- gather output, send budget, outbound capacity, memory ---- */

/* Drains mx with output_iov (at most max_iov entries / max_bytes per call), consuming `step` bytes at a
 * time (0 = all returned). Appends to dst; returns the bytes taken. Checks that the payload of big frames
 * is referenced in place (outside the output buffer) when `in_place` is non-NULL. */
static size_t take_iov(lp2p_yamux *mx, uint8_t *dst, size_t max_iov, size_t max_bytes, size_t step,
                       int *in_place) {
  lp2p_iovec iov[64];
  size_t n = 0, k;
  while ((k = lp2p_yamux_output_iov(mx, iov, max_iov, max_bytes)) > 0) {
    size_t total = 0;
    CHECK(k <= max_iov);
    for (size_t i = 0; i < k; i++) {
      CHECK(iov[i].len > 0);
      if (in_place && (iov[i].base < mx->out || iov[i].base >= mx->out + mx->out_cap))
        *in_place = 1;
      memcpy(dst + n + total, iov[i].base, iov[i].len);
      total += iov[i].len;
    }
    CHECK(total <= max_bytes);
    size_t take = step && step < total ? step : total;
    lp2p_yamux_output_consumed(mx, take);
    n += take;
  }
  CHECK_EQ(lp2p_yamux_pending(mx), 0);
  return n;
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i * 131 + seed * 7) >> 3);
}

/* Same workload on two sessions: output() and output_iov() produce the same bytes. */
static void gather_workload(yh_peer *p) {
  static uint8_t big[200000];
  fill_pattern(big, sizeof big, 1);
  uint32_t a, b, c;
  CHECK_OK(lp2p_yamux_open_stream(p->mx, &a));
  CHECK_OK(lp2p_yamux_open_stream(p->mx, &b));
  CHECK_OK(lp2p_yamux_open_stream(p->mx, &c));
  CHECK_EQ(lp2p_yamux_write(p->mx, a, big, sizeof big), (int64_t)sizeof big);
  CHECK_EQ(lp2p_yamux_write(p->mx, b, big, 700), 700); /* small: copied into the output buffer */
  CHECK_EQ(lp2p_yamux_write(p->mx, c, big + 5, 150000), 150000);
  CHECK_OK(lp2p_yamux_close_write(p->mx, b));
  CHECK_OK(lp2p_yamux_close_write(p->mx, c)); /* FIN after c's last Data frame */
  CHECK_OK(lp2p_yamux_ping(p->mx, 0));
}

TEST(output_iov) {
  static uint8_t want[400000], got[400000];
  yh_peer x, y;
  REQUIRE(yh_peer_init(&x, 1, NULL, NULL) == 0 && yh_peer_init(&y, 1, NULL, NULL) == 0);
  gather_workload(&x);
  size_t n;
  uint8_t *o = yh_take_output(&x, &n);
  REQUIRE(o && n <= sizeof want);
  memcpy(want, o, n);
  free(o);
  CHECK_STR(yh_frames_text(want, n), "WU+SYN#1=0 WU+SYN#3=0 WU+SYN#5=0 PING+SYN#0=0 DATA#1=65536 DATA#3=700 "
                                     "WU+FIN#3=0 DATA#5=65536 DATA#1=65536 DATA#5=65536 DATA#1=65536 "
                                     "DATA#5=18928 WU+FIN#5=0 DATA#1=3392");
  /* split every way: few iovecs, few bytes, partial consumption */
  static const size_t cfgs[][3] = {{64, SIZE_MAX, 0}, {1, SIZE_MAX, 0}, {3, 100000, 0}, {64, 131038, 0},
                                   {2, 1000, 333}, {64, 70000, 12}, {5, 65519, 65000}};
  for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
    yh_peer_free(&y);
    REQUIRE(yh_peer_init(&y, 1, NULL, NULL) == 0);
    gather_workload(&y);
    int in_place = 0;
    size_t m = take_iov(y.mx, got, cfgs[c][0], cfgs[c][1], cfgs[c][2], &in_place);
    CHECK_EQ(m, n);
    CHECK_MEM(got, want, n);
    CHECK(in_place); /* big payloads were not copied */
    size_t buffered = 1, ring_cap = 1, out_cap = 1, zombies = 1;
    lp2p__yamux_send_stats(y.mx, &buffered, &ring_cap, &out_cap, &zombies);
    CHECK_EQ(buffered, 0);
    CHECK_EQ(zombies, 0);
  }
  /* max_bytes a multiple of the Noise plaintext: every call returns exactly that while enough is queued */
  yh_peer_free(&y);
  REQUIRE(yh_peer_init(&y, 1, NULL, NULL) == 0);
  gather_workload(&y);
  lp2p_iovec iov[32];
  size_t k, calls = 0, left = n;
  while ((k = lp2p_yamux_output_iov(y.mx, iov, 32, 2 * 65519)) > 0) {
    size_t total = 0;
    for (size_t i = 0; i < k; i++) total += iov[i].len;
    CHECK_EQ(total, left < 2 * 65519 ? left : 2 * 65519);
    lp2p_yamux_output_consumed(y.mx, total);
    left -= total;
    calls++;
  }
  CHECK_EQ(left, 0);
  CHECK_EQ(calls, (n + 2 * 65519 - 1) / (2 * 65519));
  /* argument checks */
  CHECK_EQ(lp2p_yamux_output_iov(NULL, iov, 1, 1), 0);
  CHECK_EQ(lp2p_yamux_output_iov(y.mx, NULL, 1, 1), 0);
  CHECK_EQ(lp2p_yamux_output_iov(y.mx, iov, 0, 1), 0);
  CHECK_EQ(lp2p_yamux_output_iov(y.mx, iov, 1, 0), 0);
  yh_peer_free(&x);
  yh_peer_free(&y);
}

/* Bytes referenced by the output stay valid when their stream is reset / closed or the session fails
 * before they are consumed; mixing output_iov and output keeps the byte order. */
TEST(output_iov_in_flight) {
  static uint8_t big[100000], got[400000];
  fill_pattern(big, sizeof big, 2);
  cli();
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  free(yh_take_output(&g_p, &(size_t){0}));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, sizeof big), (int64_t)sizeof big);
  lp2p_iovec iov[8];
  size_t k = lp2p_yamux_output_iov(g_p.mx, iov, 8, 30000), total = 0;
  for (size_t i = 0; i < k; i++) total += iov[i].len;
  CHECK_EQ(total, 30000);
  lp2p_yamux_output_consumed(g_p.mx, 10000);
  CHECK_EQ(lp2p_yamux_pending(g_p.mx), 12 + 65536 - 10000);
  /* reset: the stream is gone for the application, its frame in flight completes, then RST */
  CHECK_OK(lp2p_yamux_reset(g_p.mx, id));
  CHECK_STR(yh_log(&g_p), "C1:LP2P_ERR_CANCELED");
  CHECK_EQ(lp2p_yamux_stream_count(g_p.mx), 0);
  size_t zombies = 0, ring_cap = 0;
  lp2p__yamux_send_stats(g_p.mx, NULL, &ring_cap, NULL, &zombies);
  CHECK_EQ(zombies, 1);
  CHECK(ring_cap >= 65536);
  size_t n = take_iov(g_p.mx, got, 3, 7000, 0, NULL);
  CHECK_EQ(n, 12 + 65536 - 10000 + 12);
  CHECK_MEM(got, big + 10000 - 12, 65536 - 10000 + 12);
  CHECK_STR(yh_frames_text(got + n - 12, 12), "WU+RST#1=0");
  lp2p__yamux_send_stats(g_p.mx, NULL, &ring_cap, NULL, &zombies);
  CHECK_EQ(zombies, 0);
  CHECK_EQ(ring_cap, 0);
  yh_peer_free(&g_p);

  /* session failure with a frame in flight: the frame completes, then the GoAway */
  srv();
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  free(yh_take_output(&g_p, &(size_t){0}));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, 1, big, sizeof big), (int64_t)sizeof big);
  k = lp2p_yamux_output_iov(g_p.mx, iov, 8, 100);
  lp2p_yamux_output_consumed(g_p.mx, 100);
  in_reset();
  fr(7, 0, 0, 0, NULL); /* unknown frame type */
  CHECK_EQ(feed(&g_p), LP2P_ERR_PROTO);
  n = take_iov(g_p.mx, got, 64, SIZE_MAX, 0, NULL);
  CHECK_EQ(n, 12 + 65536 - 100 + 12);
  CHECK_MEM(got, big + 100 - 12, 65536 - 100 + 12);
  CHECK_STR(yh_frames_text(got + n - 12, 12), "GOAWAY#0=1");
  yh_peer_free(&g_p);

  /* a stream that completes its close (FIN both ways) while its last frame is in flight */
  cli();
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  free(yh_take_output(&g_p, &(size_t){0}));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, 5000), 5000);
  CHECK_OK(lp2p_yamux_close_write(g_p.mx, id));
  k = lp2p_yamux_output_iov(g_p.mx, iov, 8, 20); /* builds Data + FIN, hands out 20 bytes */
  lp2p_yamux_output_consumed(g_p.mx, 20);
  in_reset();
  fr(T_WU, F_ACK | F_FIN, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_STR(yh_log(&g_p), "E1 C1:0");
  n = take_iov(g_p.mx, got, 64, SIZE_MAX, 0, NULL);
  CHECK_EQ(n, 12 + 5000 + 12 - 20);
  CHECK_MEM(got, big + 8, 4992);
  yh_peer_free(&g_p);

  /* output_iov, partial consumption, then the contiguous output(): same bytes in the same order */
  static uint8_t want[400000];
  yh_peer x;
  REQUIRE(yh_peer_init(&x, 1, NULL, NULL) == 0);
  gather_workload(&x);
  size_t nw;
  uint8_t *o = yh_take_output(&x, &nw);
  REQUIRE(nw <= sizeof want);
  memcpy(want, o, nw);
  free(o);
  yh_peer_free(&x);
  cli();
  gather_workload(&g_p);
  k = lp2p_yamux_output_iov(g_p.mx, iov, 8, 100000);
  total = 0;
  for (size_t i = 0; i < k; i++) {
    memcpy(got + total, iov[i].base, iov[i].len);
    total += iov[i].len;
  }
  lp2p_yamux_output_consumed(g_p.mx, total - 777);
  const uint8_t *c;
  size_t m = lp2p_yamux_output(g_p.mx, &c);
  CHECK(m >= 777);
  memcpy(got + total - 777, c, m);
  lp2p_yamux_output_consumed(g_p.mx, m);
  m += total - 777;
  uint8_t *rest = yh_take_output(&g_p, &n);
  REQUIRE(m + n <= sizeof got);
  memcpy(got + m, rest, n);
  free(rest);
  CHECK_EQ(m + n, nw);
  CHECK_MEM(got, want, nw);
  yh_peer_free(&g_p);
}

/* Data frame payload cap. */
TEST(max_frame_payload) {
  static uint8_t big[200000];
  lp2p_yamux_config cfg;
  lp2p_yamux_config_default(&cfg, 1);
  CHECK_EQ(cfg.max_frame_payload, LP2P_YAMUX_MAX_DATA_FRAME);
  CHECK_EQ(cfg.send_budget, LP2P_YAMUX_DEFAULT_SEND_BUDGET);
  cfg.keepalive_interval = 0;
  cfg.max_frame_payload = LP2P_YAMUX_NOISE_FRAME_PAYLOAD;
  REQUIRE(yh_peer_init(&g_p, 1, &cfg, NULL) == 0);
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, sizeof big), (int64_t)sizeof big);
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0 DATA#1=65507 DATA#1=65507 DATA#1=65507 DATA#1=3479");
  CHECK_EQ(12 + LP2P_YAMUX_NOISE_FRAME_PAYLOAD, 65519);
  yh_peer_free(&g_p);
  lp2p_yamux *mx = NULL;
  cfg.max_frame_payload = LP2P_YAMUX_MAX_FRAME_PAYLOAD_LIMIT + 1;
  CHECK_EQ(lp2p_yamux_new(&mx, &cfg, NULL, NULL, NULL), LP2P_ERR_INVAL);
  cfg.max_frame_payload = 0; /* default */
  CHECK_OK(lp2p_yamux_new(&mx, &cfg, NULL, NULL, NULL));
  CHECK_EQ(mx->max_frame, LP2P_YAMUX_MAX_DATA_FRAME);
  CHECK_EQ(mx->cfg.send_budget, LP2P_YAMUX_DEFAULT_SEND_BUDGET);
  lp2p_yamux_free(mx);
}

/* Session send budget: accepted bytes within the send windows stay within it; blocked writers are told
 * oldest first; bytes beyond a stalled stream's window don't count. */
static void hook_greedy_writer(yh_peer *p, char t, uint32_t id, int64_t v) {
  static uint8_t buf[300000];
  if (t == 'W') CHECK(lp2p_yamux_write(p->mx, id, buf, sizeof buf) > 0);
  (void)v;
}

TEST(send_budget) {
  static uint8_t big[400000];
  lp2p_yamux_config cfg;
  lp2p_yamux_config_default(&cfg, 1);
  cfg.keepalive_interval = 0;
  cfg.send_budget = 100000;
  REQUIRE(yh_peer_init(&g_p, 1, &cfg, NULL) == 0);
  uint32_t a, b;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &a));
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &b));
  in_reset(); /* the peer grants 16 MiB more on both */
  fr(T_WU, F_ACK, a, 16u << 20, NULL);
  fr(T_WU, F_ACK, b, 16u << 20, NULL);
  CHECK_EQ(feed(&g_p), 24);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, a, big, 200000), 100000);
  CHECK_EQ(lp2p_yamux_write_capacity(g_p.mx, b), 0);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, b, big, 10), 0);
  size_t buffered;
  lp2p__yamux_send_stats(g_p.mx, &buffered, NULL, NULL, NULL);
  CHECK_EQ(buffered, 100000);
  CHECK_EQ(g_p.n_ev, 0);
  /* output frames a's bytes: room again, both writers told, oldest first */
  free(yh_take_output(&g_p, &(size_t){0}));
  CHECK_STR(yh_log(&g_p), "W1 W3");
  /* greedy writers: each takes all the room and queues behind the other */
  yh_clear_events(&g_p);
  g_p.hook = hook_greedy_writer;
  CHECK_EQ(lp2p_yamux_write(g_p.mx, a, big, 200000), 100000);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, b, big, 10), 0);
  for (int i = 0; i < 4; i++) {
    const uint8_t *o;
    size_t n = lp2p_yamux_output(g_p.mx, &o);
    lp2p_yamux_output_consumed(g_p.mx, n);
    lp2p__yamux_send_stats(g_p.mx, &buffered, NULL, NULL, NULL);
    CHECK(buffered <= 100000);
  }
  CHECK_STR(yh_log(&g_p), "W1 W3 W1 W3");
  g_p.hook = NULL;
  yh_peer_free(&g_p);

  /* a stream whose peer stopped reading holds only its slack (counted); the others go on */
  REQUIRE(yh_peer_init(&g_p, 1, &cfg, NULL) == 0);
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &a));
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &b));
  uint64_t sent = 0;
  while (sent < W256K) {
    int64_t k = lp2p_yamux_write(g_p.mx, a, big, (size_t)(W256K - sent));
    CHECK(k > 0);
    sent += (uint64_t)k;
    free(yh_take_output(&g_p, &(size_t){0}));
  }
  uint64_t sw = 1;
  CHECK_OK(lp2p__yamux_stream_windows(g_p.mx, a, &sw, NULL, NULL, NULL));
  CHECK_EQ(sw, 0);
  /* the slack beyond the window is accepted and counts against the budget like every buffered byte */
  CHECK_EQ(lp2p_yamux_write(g_p.mx, a, big, sizeof big), LP2P_YAMUX_SEND_SLACK);
  lp2p__yamux_send_stats(g_p.mx, &buffered, NULL, NULL, NULL);
  CHECK_EQ(buffered, LP2P_YAMUX_SEND_SLACK);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, b, big, sizeof big), 100000 - LP2P_YAMUX_SEND_SLACK);
  in_reset();
  fr(T_WU, F_ACK, a, 1000, NULL);
  CHECK_EQ(feed(&g_p), 12);
  lp2p__yamux_send_stats(g_p.mx, &buffered, NULL, NULL, NULL);
  CHECK_EQ(buffered, 100000);
  CHECK_EQ(lp2p_yamux_write_capacity(g_p.mx, b), 0);
  /* resetting the stalled stream releases its bytes */
  CHECK_OK(lp2p_yamux_reset(g_p.mx, a));
  lp2p__yamux_send_stats(g_p.mx, &buffered, NULL, NULL, NULL);
  CHECK_EQ(buffered, 100000 - LP2P_YAMUX_SEND_SLACK);
  yh_peer_free(&g_p);
}

/* Outbound capacity after LP2P_ERR_LIMIT is reported once, when an ACK (or a close) frees a slot. */
static int g_avail;
static uint32_t g_avail_opened;
static void on_avail(lp2p_yamux *mx, void *ud) {
  g_avail++;
  CHECK(ud == &g_p);
  if (g_avail == 1) CHECK_OK(lp2p_yamux_open_stream(mx, &g_avail_opened)); /* allowed from the callback */
}

TEST(outbound_available) {
  lp2p_yamux_config cfg;
  lp2p_yamux_config_default(&cfg, 1);
  cfg.keepalive_interval = 0;
  cfg.max_unacked_outbound = 2;
  REQUIRE(yh_peer_init(&g_p, 1, &cfg, NULL) == 0);
  lp2p_yamux_set_on_outbound_available(g_p.mx, on_avail);
  g_avail = 0;
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  /* an ACK without a prior LIMIT: nothing to report */
  in_reset();
  fr(T_WU, F_ACK, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_EQ(g_avail, 0);
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id)); /* 5 */
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  in_reset();
  fr(T_WU, F_ACK, 3, 0, NULL);
  fr(T_WU, F_ACK, 5, 0, NULL); /* two ACKs in one feed: one report, after the feed */
  CHECK_EQ(feed(&g_p), 24);
  CHECK_EQ(g_avail, 1);
  CHECK_EQ(g_avail_opened, 7);
  /* no LIMIT since: later ACKs report nothing */
  in_reset();
  fr(T_WU, F_ACK, 7, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_EQ(g_avail, 1);
  /* a RST of an unacknowledged stream frees a slot too */
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id)); /* 9 */
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id)); /* 11 */
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  in_reset();
  fr(T_WU, F_RST, 9, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_EQ(g_avail, 2);
  /* our own reset of one: reported by the next output call, not from inside reset */
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id)); /* 13 */
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  CHECK_OK(lp2p_yamux_reset(g_p.mx, 11));
  CHECK_EQ(g_avail, 2);
  CHECK(lp2p_yamux_output(g_p.mx, NULL) > 0);
  CHECK_EQ(g_avail, 3);
  /* after a GoAway nothing can be opened: no report */
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id)); /* 15 */
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  in_reset();
  fr(T_GOAWAY, 0, 0, 0, NULL);
  fr(T_WU, F_ACK, 13, 0, NULL);
  CHECK_EQ(feed(&g_p), 24);
  CHECK_EQ(g_avail, 3);
  yh_peer_free(&g_p);
}

/* Memory: nothing but the session object while idle; buffers come and go with use. */
TEST(idle_memory) {
  failmem fm;
  failmem_init(&fm, 0);
  REQUIRE(yh_peer_init(&g_p, 1, NULL, &fm.mem) == 0);
  CHECK_EQ(fm.live, 1);
  CHECK(sizeof(lp2p_yamux) < 1024);
  CHECK_OK(lp2p_yamux_ping(g_p.mx, 0));
  CHECK_STR(yh_out_text(&g_p), "PING+SYN#0=0");
  CHECK_EQ(fm.live, 1); /* drained, no stream: output buffer released */
  /* a request/response stream, closed both ways */
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"request", 7), 7);
  CHECK_OK(lp2p_yamux_close_write(g_p.mx, id));
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0 DATA#1=7 WU+FIN#1=0");
  in_reset();
  fr(T_DATA, F_ACK, 1, 8, "response");
  fr(T_WU, F_FIN, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_log(&g_p), "D1:8 E1 C1:0");
  CHECK_EQ(fm.live, 1);
  /* an open stream that carried data keeps its ring until a keep-alive tick finds it empty */
  static uint8_t big[100000];
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, sizeof big), (int64_t)sizeof big);
  free(yh_take_output(&g_p, &(size_t){0}));
  size_t ring_cap = 0, out_cap = 0;
  lp2p__yamux_send_stats(g_p.mx, NULL, &ring_cap, &out_cap, NULL);
  CHECK(ring_cap >= sizeof big);
  CHECK(out_cap > 0);
  long with_stream = fm.live; /* session, map, stream, ring, output buffer */
  CHECK_EQ(with_stream, 5);
  CHECK_OK(lp2p_yamux_handle_expiry(g_p.mx, 0));
  lp2p__yamux_send_stats(g_p.mx, NULL, &ring_cap, &out_cap, NULL);
  CHECK_EQ(ring_cap, 0);
  CHECK_EQ(out_cap, 0);
  CHECK_EQ(fm.live, 3);
  CHECK_OK(lp2p_yamux_reset(g_p.mx, id));
  free(yh_take_output(&g_p, &(size_t){0}));
  CHECK_EQ(fm.live, 1);
  /* a stream's ring is reused across writes (no allocation per message) */
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  free(yh_take_output(&g_p, &(size_t){0}));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, 32), 32);
  free(yh_take_output(&g_p, &(size_t){0}));
  long count = fm.count;
  for (int i = 0; i < 100; i++) {
    CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, 32), 32);
    const uint8_t *o;
    size_t n = lp2p_yamux_output(g_p.mx, &o);
    CHECK_EQ(n, 44);
    lp2p_yamux_output_consumed(g_p.mx, n);
    lp2p_iovec iov[4];
    CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, 32), 32);
    CHECK_EQ(lp2p_yamux_output_iov(g_p.mx, iov, 4, SIZE_MAX), 1);
    CHECK_EQ(iov[0].len, 44);
    lp2p_yamux_output_consumed(g_p.mx, 44);
  }
  CHECK_EQ(fm.count, count);
  yh_peer_free(&g_p);
  CHECK_EQ(fm.live, 0);
}

/* Allocation failures on the gather path: every call fails cleanly and leaks nothing. */
TEST(output_iov_oom) {
  static uint8_t big[200000], got[400000];
  fill_pattern(big, sizeof big, 3);
  long runs = 0;
  for (long n = 1;; n++) {
    failmem fm;
    failmem_init(&fm, n);
    yh_peer p;
    runs++;
    if (yh_peer_init(&p, 1, NULL, &fm.mem)) {
      CHECK_EQ(fm.live, 0);
      continue;
    }
    uint32_t ids[3];
    int nopen = 0;
    for (int i = 0; i < 3; i++)
      if (lp2p_yamux_open_stream(p.mx, &ids[nopen]) == 0) nopen++;
    size_t wrote = 0;
    for (int i = 0; i < nopen; i++) {
      int64_t k = lp2p_yamux_write(p.mx, ids[i], big, i == 1 ? 500 : sizeof big);
      if (k > 0) wrote += (size_t)k;
    }
    size_t got_n = 0;
    for (int r = 0; r < 50 && lp2p_yamux_want_output(p.mx); r++) {
      lp2p_iovec iov[16];
      size_t k = lp2p_yamux_output_iov(p.mx, iov, 16, 50000), total = 0;
      for (size_t i = 0; i < k; i++) {
        memcpy(got + got_n + total, iov[i].base, iov[i].len);
        total += iov[i].len;
      }
      lp2p_yamux_output_consumed(p.mx, total / 2 + 1 < total ? total / 2 + 1 : total);
      got_n += total / 2 + 1 < total ? total / 2 + 1 : total;
      if (r == 3 && nopen) lp2p_yamux_reset(p.mx, ids[0]);
      if (r == 5) {
        const uint8_t *o;
        size_t m = lp2p_yamux_output(p.mx, &o);
        lp2p_yamux_output_consumed(p.mx, m / 3);
      }
    }
    yh_peer_free(&p);
    if (fm.live) {
      TEST_FAIL_("fail_at %ld: %ld blocks leaked", n, fm.live);
      break;
    }
    if (!fm.triggered) {
      CHECK_EQ(wrote, 2 * sizeof big + 500);
      break;
    }
  }
  printf("  output_iov allocation-failure runs: %ld\n", runs);
  CHECK(runs > 5);
}

int main(void) {
  RUN(output_iov);
  RUN(output_iov_in_flight);
  RUN(max_frame_payload);
  RUN(send_budget);
  RUN(outbound_available);
  RUN(idle_memory);
  RUN(output_iov_oom);
  return test_done();
}
