/* tests/unit/test_yamux_api.c - Yamux engine, API-driven behaviours: stream ids, config, windows
 * and auto-tuning, half-close, reset, ping, keep-alive, GoAway, limits, fair scheduling, control
 * floods, reentrancy from callbacks, API misuse, the stream map. */
#include <stdlib.h>

#include "failmem.h"
#include "json.h"
#include "muxer/yamux_int.h"
#include "test.h"
#include "yamux_harness.h"
#include "yamux_scenario.h"

TEST(stream_ids) {
  uint32_t id;
  cli();
  for (uint32_t want = 1; want <= 9; want += 2) {
    CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
    CHECK_EQ(id, want);
  }
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0 WU+SYN#3=0 WU+SYN#5=0 WU+SYN#7=0 WU+SYN#9=0");
  CHECK_EQ(lp2p_yamux_stream_count(g_p.mx), 5);
  yh_peer_free(&g_p);
  srv();
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(id, 2);
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(id, 4);
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#2=0 WU+SYN#4=0");
  /* id space exhaustion */
  g_p.mx->next_id = 0xFFFFFFFEull + 2;
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  yh_peer_free(&g_p);
}

TEST(config) {
  lp2p_yamux_config cfg;
  lp2p_yamux *mx = NULL;
  lp2p_yamux_config_default(&cfg, 1);
  CHECK_EQ(cfg.initial_window, W256K);
  CHECK_EQ(cfg.max_window, 16u << 20);
  CHECK_EQ(cfg.max_unacked_outbound, 256);
  CHECK_EQ(lp2p_yamux_new(NULL, &cfg, NULL, NULL, NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_yamux_new(&mx, NULL, NULL, NULL, NULL), LP2P_ERR_INVAL);
  cfg.initial_window = W256K - 1;
  CHECK_EQ(lp2p_yamux_new(&mx, &cfg, NULL, NULL, NULL), LP2P_ERR_INVAL);
  cfg.initial_window = 1 << 20;
  cfg.max_window = 1 << 19;
  CHECK_EQ(lp2p_yamux_new(&mx, &cfg, NULL, NULL, NULL), LP2P_ERR_INVAL);
  cfg.struct_size = 4;
  CHECK_EQ(lp2p_yamux_new(&mx, &cfg, NULL, NULL, NULL), LP2P_ERR_INVAL);
  CHECK(mx == NULL);
  /* a bigger initial window is advertised in the SYN / ACK delta */
  lp2p_yamux_config_default(&cfg, 1);
  cfg.keepalive_interval = 0;
  cfg.initial_window = 1 << 20;
  REQUIRE(yh_peer_init(&g_p, 1, &cfg, NULL) == 0);
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=786432");
  in_reset();
  fr(T_WU, F_SYN, 2, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#2=786432");
  /* ... and the peer may then send 1 MiB at once */
  in_reset();
  frz(0, 2, 1 << 20, 1 << 20);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_EQ(yh_st(&g_p, 2)->rx, 1 << 20);
  yh_peer_free(&g_p);
  /* partial struct: missing fields take defaults */
  lp2p_yamux_config small = {offsetof(lp2p_yamux_config, initial_window), 1, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK_OK(lp2p_yamux_new(&mx, &small, NULL, NULL, NULL));
  CHECK_EQ(mx->cfg.initial_window, W256K);
  CHECK_EQ(mx->cfg.keepalive_interval, 30000);
  lp2p_yamux_free(mx);
  lp2p_yamux_free(NULL);
}

/* Data frames respect the send window, are at most 64 KiB, and the buffer is bounded. */
TEST(write_and_send_window) {
  static uint8_t big[512 * 1024];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7);
  cli();
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"hello", 5), 5);
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0 DATA#1=5");
  /* window 256K - 5 left; buffer may hold min(window, 256K) + 64K */
  size_t cap = lp2p_yamux_write_capacity(g_p.mx, id);
  CHECK_EQ(cap, W256K - 5 + 65536);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, sizeof big), (int64_t)cap);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, 10), 0);
  CHECK_EQ(lp2p_yamux_write_capacity(g_p.mx, id), 0);
  size_t n;
  uint8_t *o = yh_take_output(&g_p, &n);
  CHECK_STR(yh_frames_text(o, n), "DATA#1=65536 DATA#1=65536 DATA#1=65536 DATA#1=65531");
  /* payload is the written bytes in order */
  CHECK_MEM(o + 12, big, 65536);
  CHECK_MEM(o + 3 * (12 + 65536) + 12, big + 3 * 65536, 65531);
  free(o);
  uint64_t sw;
  size_t buffered;
  CHECK_OK(lp2p__yamux_stream_windows(g_p.mx, id, &sw, NULL, NULL, &buffered));
  CHECK_EQ(sw, 0);
  CHECK_EQ(buffered, 65536);
  CHECK_EQ(g_p.n_ev, 0); /* still blocked: no writable */
  /* peer grants 1000: one frame of 1000, and writable fires (room reopened) */
  in_reset();
  fr(T_WU, F_ACK, 1, 1000, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_STR(yh_log(&g_p), "W1");
  CHECK_STR(yh_out_text(&g_p), "DATA#1=1000");
  CHECK_EQ(lp2p_yamux_write_capacity(g_p.mx, id), 1000);
  yh_peer_free(&g_p);
}

/* Memory is reported by capacity (lp2p_yamux_memory >= buffered); a stalled stream's ring, grown to
 * its high-water mark while the window was open, shrinks to fit what it holds under pressure
 * (lp2p__yamux_squeeze) and the bytes survive the move; a write whose ring may grow only by a given
 * room takes what fits (lp2p__yamux_write_within). */
TEST(stalled_ring_squeezed) {
  static uint8_t big[512 * 1024];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 13 + 1);
  cli();
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_memory(NULL), 0);
  size_t cap = lp2p_yamux_write_capacity(g_p.mx, id);
  CHECK_EQ(cap, W256K + 65536);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, sizeof big), (int64_t)cap);
  CHECK(lp2p_yamux_memory(g_p.mx) >= lp2p_yamux_buffered(g_p.mx));
  size_t n;
  uint8_t *o = yh_take_output(&g_p, &n);
  free(o);
  uint64_t sw;
  size_t buffered;
  CHECK_OK(lp2p__yamux_stream_windows(g_p.mx, id, &sw, NULL, NULL, &buffered));
  CHECK_EQ(sw, 0);
  CHECK_EQ(buffered, 65536);
  size_t before, after, mem = lp2p_yamux_memory(g_p.mx);
  lp2p__yamux_send_stats(g_p.mx, NULL, &before, NULL, NULL);
  CHECK(before >= 4 * 65536); /* the ring's high-water mark */
  CHECK(mem >= before);
  CHECK_EQ(lp2p__yamux_squeeze(g_p.mx), before - 81920);
  lp2p__yamux_send_stats(g_p.mx, NULL, &after, NULL, NULL);
  CHECK_EQ(after, 81920); /* fits what it holds: 320 KiB halved while 64 KiB still fit */
  CHECK_EQ(lp2p_yamux_memory(g_p.mx), mem - (before - after));
  CHECK_EQ(lp2p__yamux_squeeze(g_p.mx), 0); /* nothing more to give */
  /* the bytes moved intact: the peer grants window, the rest goes out in order */
  in_reset();
  fr(T_WU, F_ACK, 1, 65536, NULL);
  CHECK_EQ(feed(&g_p), 12);
  o = yh_take_output(&g_p, &n);
  CHECK_STR(yh_frames_text(o, n), "DATA#1=65536");
  CHECK_MEM(o + 12, big + W256K, 65536);
  free(o);
  /* drained: squeeze releases the ring */
  CHECK_EQ(lp2p__yamux_squeeze(g_p.mx), 81920);
  lp2p__yamux_send_stats(g_p.mx, NULL, &after, NULL, NULL);
  CHECK_EQ(after, 0);
  CHECK_EQ(lp2p__yamux_window_room(g_p.mx, id), 0);
  /* growth bounded by a room: 4 KiB of ring, 4 KiB taken, no writable promised */
  uint32_t id2;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id2));
  CHECK_EQ(lp2p__yamux_window_room(g_p.mx, id2), W256K);
  int hit = 0;
  CHECK_EQ(lp2p__yamux_write_within(g_p.mx, id2, big, 10000, 4096, &hit), 4096);
  CHECK_EQ(hit, 1);
  CHECK_EQ(lp2p__yamux_write_within(g_p.mx, id2, big, 100, 0, &hit), 0); /* full, may not grow */
  CHECK_EQ(hit, 1);
  CHECK_EQ(lp2p__yamux_write_within(g_p.mx, id2, big, 100, SIZE_MAX, &hit), 100);
  CHECK_EQ(hit, 0);
  yh_peer_free(&g_p);
}

/* Consume returns window in batches: a WindowUpdate once half the window is free. */
TEST(consume_window_updates) {
  srv();
  g_p.auto_consume = 0;
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  frz(0, 1, 200000, 200000);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#1=0");
  CHECK_EQ(lp2p_yamux_consume(g_p.mx, 1, 200001), LP2P_ERR_INVAL);
  CHECK_OK(lp2p_yamux_consume(g_p.mx, 1, 100000));
  CHECK_STR(yh_out_text(&g_p), ""); /* 100000 < 131072 */
  CHECK_OK(lp2p_yamux_consume(g_p.mx, 1, 31071));
  CHECK_STR(yh_out_text(&g_p), "");
  CHECK_OK(lp2p_yamux_consume(g_p.mx, 1, 1));
  CHECK_STR(yh_out_text(&g_p), "WU#1=131072");
  CHECK_OK(lp2p_yamux_consume(g_p.mx, 1, 68928));
  CHECK_STR(yh_out_text(&g_p), "");
  CHECK_EQ(lp2p_yamux_consume(g_p.mx, 1, 1), LP2P_ERR_INVAL);
  uint32_t avail;
  CHECK_OK(lp2p__yamux_stream_windows(g_p.mx, 1, NULL, NULL, &avail, NULL));
  CHECK_EQ(avail, W256K - 200000 + 131072);
  /* consume inside a partially received frame: only delivered bytes count */
  in_reset();
  frz(0, 1, 100000, 50000);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_EQ(lp2p_yamux_consume(g_p.mx, 1, 50001), LP2P_ERR_INVAL);
  CHECK_OK(lp2p_yamux_consume(g_p.mx, 1, 50000));
  CHECK_STR(yh_out_text(&g_p), ""); /* 50000 of the frame still in flight: not reclaimable */
  CHECK_EQ(lp2p_yamux_consume(g_p.mx, 7, 1), LP2P_ERR_NOT_FOUND);
  yh_peer_free(&g_p);
}

/* Window auto-tuning: with an RTT known and the window used up within 2 RTTs the window doubles. */
TEST(window_autotune) {
  lp2p_yamux_config cfg;
  lp2p_yamux_config_default(&cfg, 0);
  cfg.keepalive_interval = 0;
  cfg.max_window = 1 << 20;
  REQUIRE(yh_peer_init(&g_p, 0, &cfg, NULL) == 0);
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  frz(0, 1, W256K, W256K);
  g_p.now = 1000;
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  /* no RTT yet: plain update */
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#1=0 WU#1=262144");
  /* measure RTT = 10 ms */
  CHECK_OK(lp2p_yamux_ping(g_p.mx, 1000));
  CHECK_STR(yh_out_text(&g_p), "PING+SYN#0=0");
  in_reset();
  fr(T_PING, F_ACK, 0, 0, NULL);
  g_p.now = 1010;
  CHECK_EQ(feed(&g_p), 12);
  CHECK_STR(yh_log(&g_p), "O1 D1:262144 P10");
  CHECK_EQ(lp2p_yamux_rtt(g_p.mx), 10);
  /* window used within 20 ms of the last update => 512K */
  in_reset();
  frz(0, 1, W256K, W256K);
  g_p.now = 1019;
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_out_text(&g_p), "WU#1=524288");
  uint32_t win;
  CHECK_OK(lp2p__yamux_stream_windows(g_p.mx, 1, NULL, &win, NULL, NULL));
  CHECK_EQ(win, 524288);
  /* again => 1 MiB (the configured max), then no further growth */
  in_reset();
  frz(0, 1, 524288, 524288);
  g_p.now = 1038;
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_out_text(&g_p), "WU#1=1048576");
  in_reset();
  frz(0, 1, 1 << 20, 1 << 20);
  g_p.now = 1045;
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_out_text(&g_p), "WU#1=1048576");
  /* slow consumption (2 RTT or more since the last update): no growth */
  lp2p_yamux_config_default(&cfg, 0);
  cfg.keepalive_interval = 0;
  yh_peer_free(&g_p);
  REQUIRE(yh_peer_init(&g_p, 0, &cfg, NULL) == 0);
  g_p.mx->rtt = 10;
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  in_reset();
  frz(0, 1, W256K, W256K);
  g_p.now = 20;
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#1=0 WU#1=262144");
  yh_peer_free(&g_p);
}

TEST(half_close) {
  cli();
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_OK(lp2p_yamux_close_write(g_p.mx, id));
  CHECK_OK(lp2p_yamux_close_write(g_p.mx, id)); /* idempotent */
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0 WU+FIN#1=0");
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"x", 1), LP2P_ERR_CLOSED);
  /* we can still read; the peer's FIN completes the close with err 0 */
  in_reset();
  fr(T_DATA, F_ACK, 1, 2, "hi");
  fr(T_WU, F_FIN, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_log(&g_p), "D1:2 E1 C1:0");
  CHECK_EQ(lp2p_yamux_stream_count(g_p.mx), 0);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"x", 1), LP2P_ERR_NOT_FOUND);
  /* the other order: remote FIN first, our FIN closes (close fires before close_write returns) */
  yh_clear_events(&g_p);
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(id, 3);
  in_reset();
  fr(T_DATA, F_ACK | F_FIN, 3, 1, "z");
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"abc", 3), 3); /* half-closed: still writable */
  CHECK_OK(lp2p_yamux_close_write(g_p.mx, id));
  /* FIN follows the last Data frame (own WindowUpdate, see js note); the close completes when it is built */
  CHECK_STR(yh_log(&g_p), "D3:1 E3");
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#3=0 DATA#3=3 WU+FIN#3=0");
  CHECK_STR(yh_log(&g_p), "D3:1 E3 C3:0");
  /* FIN waits behind buffered data that has no window */
  yh_clear_events(&g_p);
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  static uint8_t big[W256K + 10];
  memset(big, 'q', sizeof big);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, sizeof big), (int64_t)sizeof big);
  CHECK_OK(lp2p_yamux_close_write(g_p.mx, id));
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#5=0 DATA#5=65536 DATA#5=65536 DATA#5=65536 DATA#5=65536");
  in_reset();
  fr(T_WU, F_ACK, 5, 10, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_STR(yh_out_text(&g_p), "DATA#5=10 WU+FIN#5=0");
  yh_peer_free(&g_p);
}

TEST(reset) {
  cli();
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"dropped", 7), 7);
  CHECK_OK(lp2p_yamux_reset(g_p.mx, id));
  /* close delivered before reset returned; buffered data dropped */
  CHECK_STR(yh_log(&g_p), "C1:LP2P_ERR_CANCELED");
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0 WU+RST#1=0");
  CHECK_EQ(lp2p_yamux_reset(g_p.mx, id), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_yamux_close_write(g_p.mx, id), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_yamux_stream_count(g_p.mx), 0);
  CHECK_EQ(g_p.mx->n_unacked, 0); /* an unacked stream that is reset frees its slot */
  yh_peer_free(&g_p);
}

/* reset_after_data: the buffered bytes leave first, then RST instead of FIN; nothing is delivered
 * inside the call, writes are refused from then on. */
TEST(reset_after_data) {
  cli();
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"na\n", 3), 3);
  CHECK_OK(lp2p_yamux_reset_after_data(g_p.mx, id));
  CHECK_STR(yh_log(&g_p), "");
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"x", 1), LP2P_ERR_CLOSED);
  CHECK_OK(lp2p_yamux_reset_after_data(g_p.mx, id)); /* idempotent while the bytes wait */
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0 DATA#1=3 WU+RST#1=0");
  CHECK_STR(yh_log(&g_p), "C1:LP2P_ERR_CANCELED");
  CHECK_EQ(lp2p_yamux_stream_count(g_p.mx), 0);
  CHECK_EQ(lp2p_yamux_reset_after_data(g_p.mx, id), LP2P_ERR_NOT_FOUND);
  /* nothing buffered: a plain reset */
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#3=0");
  yh_clear_events(&g_p);
  CHECK_OK(lp2p_yamux_reset_after_data(g_p.mx, id));
  CHECK_STR(yh_log(&g_p), "C3:LP2P_ERR_CANCELED");
  CHECK_STR(yh_out_text(&g_p), "WU+RST#3=0");
  yh_peer_free(&g_p);

  /* end to end: the peer reads the bytes, then sees the reset */
  yh_peer a, b;
  REQUIRE(yh_peer_init(&a, 1, NULL, NULL) == 0);
  REQUIRE(yh_peer_init(&b, 0, NULL, NULL) == 0);
  CHECK_OK(lp2p_yamux_open_stream(a.mx, &id));
  CHECK_EQ(lp2p_yamux_write(a.mx, id, (const uint8_t *)"hello", 5), 5);
  CHECK_OK(lp2p_yamux_reset_after_data(a.mx, id));
  CHECK_OK(yh_pump(&a, &b, 10, 0));
  CHECK_STR(yh_log(&b), "O1 D1:5 C1:LP2P_ERR_RESET");
  CHECK_MEM(yh_st(&b, 1)->data, "hello", 5);
  CHECK_STR(yh_log(&a), "C1:LP2P_ERR_CANCELED");
  yh_peer_free(&a);
  yh_peer_free(&b);
}

TEST(ping_api) {
  srv();
  CHECK_OK(lp2p_yamux_ping(g_p.mx, 100));
  CHECK_OK(lp2p_yamux_ping(g_p.mx, 110)); /* outstanding: nothing new */
  CHECK_STR(yh_out_text(&g_p), "PING+SYN#0=0");
  in_reset();
  fr(T_PING, F_ACK, 0, 0, NULL);
  g_p.now = 130;
  CHECK_EQ(feed(&g_p), 12);
  CHECK_STR(yh_log(&g_p), "P30");
  CHECK_EQ(lp2p_yamux_rtt(g_p.mx), 30);
  CHECK_OK(lp2p_yamux_ping(g_p.mx, 200));
  CHECK_STR(yh_out_text(&g_p), "PING+SYN#0=1");
  yh_peer_free(&g_p);
}

TEST(keepalive) {
  lp2p_yamux_config cfg;
  lp2p_yamux_config_default(&cfg, 1);
  cfg.keepalive_interval = 1000;
  cfg.keepalive_timeout = 500;
  REQUIRE(yh_peer_init(&g_p, 1, &cfg, NULL) == 0);
  CHECK_EQ(lp2p_yamux_next_expiry(g_p.mx), 0); /* first ping at once (measures the RTT) */
  CHECK_OK(lp2p_yamux_handle_expiry(g_p.mx, 10));
  CHECK_STR(yh_out_text(&g_p), "PING+SYN#0=0");
  CHECK_EQ(lp2p_yamux_next_expiry(g_p.mx), 510);
  in_reset();
  fr(T_PING, F_ACK, 0, 0, NULL);
  g_p.now = 20;
  CHECK_EQ(feed(&g_p), 12);
  CHECK_EQ(lp2p_yamux_next_expiry(g_p.mx), 1010);
  CHECK_OK(lp2p_yamux_handle_expiry(g_p.mx, 500)); /* early: nothing */
  CHECK_STR(yh_out_text(&g_p), "");
  CHECK_OK(lp2p_yamux_handle_expiry(g_p.mx, 1010));
  CHECK_STR(yh_out_text(&g_p), "PING+SYN#0=1");
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_OK(lp2p_yamux_handle_expiry(g_p.mx, 1509));
  CHECK_EQ(lp2p_yamux_handle_expiry(g_p.mx, 1510), LP2P_ERR_TIMEOUT);
  CHECK_EQ(lp2p_yamux_error(g_p.mx), LP2P_ERR_TIMEOUT);
  CHECK_STR(yh_log(&g_p), "P10 C1:LP2P_ERR_TIMEOUT");
  CHECK_EQ(lp2p_yamux_next_expiry(g_p.mx), LP2P_TSTAMP_NEVER);
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0"); /* no GoAway on timeout */
  yh_peer_free(&g_p);
  /* keep-alive off */
  cli();
  CHECK_EQ(lp2p_yamux_next_expiry(g_p.mx), LP2P_TSTAMP_NEVER);
  CHECK_OK(lp2p_yamux_handle_expiry(g_p.mx, 99999));
  CHECK_STR(yh_out_text(&g_p), "");
  yh_peer_free(&g_p);
}

TEST(goaway_local) {
  srv();
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_OK(lp2p_yamux_go_away(g_p.mx, LP2P_YAMUX_GOAWAY_NORMAL));
  CHECK_OK(lp2p_yamux_go_away(g_p.mx, 2)); /* once */
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#1=0 GOAWAY#0=0");
  uint32_t id;
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_GOAWAY);
  /* new inbound streams are refused; existing ones go on */
  in_reset();
  fr(T_WU, F_SYN, 3, 0, NULL);
  fr(T_DATA, 0, 1, 2, "ok");
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_out_text(&g_p), "WU+RST#3=0");
  CHECK_EQ(lp2p_yamux_write(g_p.mx, 1, (const uint8_t *)"yes", 3), 3);
  CHECK_STR(yh_out_text(&g_p), "DATA#1=3");
  CHECK_STR(yh_log(&g_p), "O1 D1:2");
  yh_peer_free(&g_p);
}

TEST(unacked_limit) {
  cli();
  uint32_t id = 0;
  for (int i = 0; i < 256; i++) CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(id, 511);
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  in_reset();
  fr(T_WU, F_ACK, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(id, 513);
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  /* a refused (RST) stream releases its slot too */
  in_reset();
  fr(T_WU, F_RST, 3, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_stream_count(g_p.mx), 257);
  yh_peer_free(&g_p);
}

static int frame_ids(const uint8_t *o, size_t n, uint32_t *ids, int max) {
  int k = 0;
  for (size_t i = 0; i + 12 <= n && k < max;) {
    uint32_t id = (uint32_t)o[i + 4] << 24 | (uint32_t)o[i + 5] << 16 | (uint32_t)o[i + 6] << 8 | o[i + 7];
    uint32_t len = (uint32_t)o[i + 8] << 24 | (uint32_t)o[i + 9] << 16 | (uint32_t)o[i + 10] << 8 | o[i + 11];
    if (o[i + 1] == 0) ids[k++] = id;
    i += 12 + (o[i + 1] == 0 ? len : 0);
  }
  return k;
}

/* Round-robin among streams with data; control frames are not stuck behind data. */
TEST(fair_scheduling) {
  static uint8_t big[200000];
  memset(big, 1, sizeof big);
  cli();
  uint32_t a, b, c;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &a));
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &b));
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &c));
  free(yh_take_output(&g_p, &(size_t){0}));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, a, big, sizeof big), (int64_t)sizeof big);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, b, big, 1000), 1000);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, c, big, sizeof big), (int64_t)sizeof big);
  CHECK(lp2p_yamux_want_output(g_p.mx));
  const uint8_t *o;
  size_t n = lp2p_yamux_output(g_p.mx, &o);
  CHECK(n <= LP2P_YAMUX_OUTPUT_BATCH + 12 + LP2P_YAMUX_MAX_DATA_FRAME);
  uint32_t ids[64];
  int k = frame_ids(o, n, ids, 64);
  CHECK(k >= 3);
  CHECK_EQ(ids[0], 1);
  CHECK_EQ(ids[1], 3);
  CHECK_EQ(ids[2], 5);
  /* not consumed yet: a control frame queued now goes before any further data */
  CHECK_OK(lp2p_yamux_ping(g_p.mx, 0));
  size_t n2 = lp2p_yamux_output(g_p.mx, &o);
  CHECK_EQ(n2, n + 12);
  CHECK_EQ(o[n + 1], T_PING);
  lp2p_yamux_output_consumed(g_p.mx, n2);
  n = lp2p_yamux_output(g_p.mx, &o);
  k = frame_ids(o, n, ids, 64);
  CHECK(k >= 2);
  CHECK_EQ(ids[0], 1); /* b is done; a and c alternate */
  CHECK_EQ(ids[1], 5);
  lp2p_yamux_output_consumed(g_p.mx, 5); /* partial consumption keeps the rest in order */
  const uint8_t *o2;
  size_t n3 = lp2p_yamux_output(g_p.mx, &o2);
  CHECK(n3 >= n - 5);
  yh_peer_free(&g_p);
}

/* Output flood protection: control frames piling up unsent past 2 MiB kill the session. */
TEST(control_flood) {
  srv();
  static uint8_t pings[12 * 180000];
  for (size_t i = 0; i < 180000; i++) yh_frame(pings + 12 * i, T_PING, F_SYN, 0, (uint32_t)i, NULL, 0);
  CHECK_EQ(lp2p_yamux_feed(g_p.mx, pings, sizeof pings, 0), LP2P_ERR_LIMIT);
  /* draining between feeds: fine */
  yh_peer_free(&g_p);
  srv();
  for (size_t i = 0; i < 180000; i += 10000) {
    CHECK_EQ(lp2p_yamux_feed(g_p.mx, pings + 12 * i, 12 * 10000, 0), 120000);
    size_t n;
    free(yh_take_output(&g_p, &n));
    CHECK_EQ(n, 120000);
  }
  yh_peer_free(&g_p);
}

/* ---- reentrancy ---- */

static void hook_reset_on_data(yh_peer *p, char t, uint32_t id, int64_t v) {
  if (t == 'D') CHECK_OK(lp2p_yamux_reset(p->mx, id));
  if (t == 'C') CHECK(lp2p_yamux_stream_user(p->mx, id) == (void *)p); /* user pointer valid in close */
  if (t == 'O') lp2p_yamux_stream_set_user(p->mx, id, p);
  (void)v;
}

static void hook_busy_open(yh_peer *p, char t, uint32_t id, int64_t v) {
  if (t != 'O') return;
  uint32_t nid;
  CHECK_EQ(lp2p_yamux_write(p->mx, id, (const uint8_t *)"hey", 3), 3);
  CHECK_OK(lp2p_yamux_close_write(p->mx, id));
  CHECK_OK(lp2p_yamux_open_stream(p->mx, &nid));
  CHECK_OK(lp2p_yamux_ping(p->mx, 0));
  uint8_t f[12];
  yh_frame(f, T_PING, F_SYN, 0, 1, NULL, 0);
  CHECK_EQ(lp2p_yamux_feed(p->mx, f, 12, 0), LP2P_ERR_STATE);
  (void)v;
}

static void hook_reset_other_in_close(yh_peer *p, char t, uint32_t id, int64_t v) {
  if (t == 'C' && id == 1) CHECK_OK(lp2p_yamux_reset(p->mx, 3));
  (void)v;
}

TEST(reentrancy) {
  /* reset inside on_stream_data: the rest of the frame is dropped, close fires after the callback,
   * later frames in the same input are processed */
  srv();
  g_p.hook = hook_reset_on_data;
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  fr(T_DATA, 0, 1, 5, "hello");
  fr(T_DATA, 0, 1, 5, "again");
  fr(T_PING, F_SYN, 0, 4, NULL);
  CHECK_EQ(yh_feed_split(&g_p, g_in, g_n, SIZE_MAX), (int64_t)g_n); /* byte by byte: D1:1 then reset */
  CHECK_STR(yh_log(&g_p), "O1 D1:1 C1:LP2P_ERR_CANCELED");
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#1=0 WU+RST#1=0 PING+ACK#0=4");
  CHECK_EQ(g_p.nested, 0);
  yh_peer_free(&g_p);

  /* write, close_write, open, ping inside on_stream_open; feed from a callback is refused */
  srv();
  g_p.hook = hook_busy_open;
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#1=0 WU+SYN#2=0 PING+SYN#0=0 DATA#1=3 WU+FIN#1=0");
  yh_peer_free(&g_p);

  /* reset of another stream inside on_stream_close: its close follows, not nested */
  srv();
  g_p.hook = hook_reset_other_in_close;
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  fr(T_WU, F_SYN, 3, 0, NULL);
  fr(T_WU, F_RST, 1, 0, NULL);
  fr(T_WU, F_SYN, 5, 0, NULL);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_log(&g_p), "O1 O3 C1:LP2P_ERR_RESET C3:LP2P_ERR_CANCELED O5");
  CHECK_EQ(g_p.nested, 0);
  CHECK_EQ(lp2p_yamux_stream_count(g_p.mx), 1);
  yh_peer_free(&g_p);
}

static void hook_close_in_eof(yh_peer *p, char t, uint32_t id, int64_t v) {
  if (t == 'E') CHECK_OK(lp2p_yamux_close_write(p->mx, id)); /* completes the close: deferred */
  if (t == 'E') CHECK(lp2p_yamux_stream_count(p->mx) == 0);
  (void)v;
}

TEST(close_in_callback_deferred) {
  cli();
  g_p.hook = hook_close_in_eof;
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  in_reset();
  fr(T_DATA, F_ACK | F_FIN, 1, 2, "hi");
  fr(T_PING, F_SYN, 0, 1, NULL);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_log(&g_p), "D1:2 E1 C1:0");
  CHECK_EQ(g_p.nested, 0);
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0 WU+FIN#1=0 PING+ACK#0=1");
  yh_peer_free(&g_p);
}

/* The application resets a stream while one of its frames is half received: the rest is discarded. */
TEST(reset_mid_frame) {
  srv();
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  fr(T_DATA, 0, 1, 10, "0123456789");
  fr(T_PING, F_SYN, 0, 5, NULL);
  CHECK_EQ(lp2p_yamux_feed(g_p.mx, g_in, 12 + 12 + 4, 0), 28);
  CHECK_OK(lp2p_yamux_reset(g_p.mx, 1));
  CHECK_EQ(lp2p_yamux_feed(g_p.mx, g_in + 28, g_n - 28, 0), (int64_t)(g_n - 28));
  CHECK_STR(yh_log(&g_p), "O1 D1:4 C1:LP2P_ERR_CANCELED");
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#1=0 WU+RST#1=0 PING+ACK#0=5");
  CHECK_EQ(lp2p_yamux_error(g_p.mx), 0);
  /* free with live streams, buffered data and unsent output: no leak (ASan) */
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"pending", 7), 7);
  in_reset();
  fr(T_WU, F_SYN, 3, 0, NULL);
  frz(0, 3, 100, 50);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  yh_peer_free(&g_p);
}

TEST(api_misuse) {
  cli();
  uint32_t id;
  CHECK_EQ(lp2p_yamux_write(g_p.mx, 1, (const uint8_t *)"x", 1), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, 1, NULL, 1), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_yamux_consume(g_p.mx, 1, 1), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_yamux_reset(g_p.mx, 1), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_yamux_close_write(g_p.mx, 1), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_yamux_feed(g_p.mx, NULL, 1, 0), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_yamux_feed(g_p.mx, NULL, 0, 0), 0);
  CHECK(lp2p_yamux_stream_user(g_p.mx, 1) == NULL);
  lp2p_yamux_stream_set_user(g_p.mx, 1, &id); /* ignored */
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"x", 0), 0);
  lp2p_yamux_stream_set_user(g_p.mx, id, &id);
  CHECK(lp2p_yamux_stream_user(g_p.mx, id) == &id);
  CHECK_EQ(lp2p_yamux_output(NULL, NULL), 0);
  CHECK_EQ(lp2p_yamux_error(NULL), LP2P_ERR_INVAL);
  lp2p_yamux_output_consumed(g_p.mx, 1 << 30); /* clamped */
  CHECK(!lp2p_yamux_want_output(g_p.mx));
  yh_peer_free(&g_p);
}

/* Stream map: many insertions/deletions in a mixed order keep lookups right. */
TEST(stream_map) {
  lp2p__yamux_map m = {0};
  static lp2p__yamux_stream st[3000];
  const lp2p_mem *mem = lp2p_mem_default();
  for (uint32_t i = 0; i < 3000; i++) {
    st[i].id = i * 2 + 1;
    CHECK_OK(lp2p__yamux_map_put(mem, &m, &st[i]));
  }
  for (uint32_t i = 0; i < 3000; i += 3) lp2p__yamux_map_del(&m, i * 2 + 1);
  lp2p__yamux_map_del(&m, 2); /* absent */
  for (uint32_t i = 0; i < 3000; i++) {
    lp2p__yamux_stream *s = lp2p__yamux_map_get(&m, i * 2 + 1);
    if (i % 3 == 0)
      CHECK(s == NULL);
    else
      CHECK(s == &st[i]);
  }
  CHECK_EQ(m.n, 2000);
  lp2p__yamux_map_free(mem, &m);
}

int main(void) {
  RUN(stream_ids);
  RUN(config);
  RUN(write_and_send_window);
  RUN(stalled_ring_squeezed);
  RUN(consume_window_updates);
  RUN(window_autotune);
  RUN(half_close);
  RUN(reset);
  RUN(reset_after_data);
  RUN(ping_api);
  RUN(keepalive);
  RUN(goaway_local);
  RUN(unacked_limit);
  RUN(fair_scheduling);
  RUN(control_flood);
  RUN(reentrancy);
  RUN(close_in_callback_deferred);
  RUN(reset_mid_frame);
  RUN(api_misuse);
  RUN(stream_map);
  return test_done();
}
