/* tests/pair/test_yamux_pair.c - two Yamux sessions (client and server) in one
 * process exchanging buffers: many streams, half-closes, resets, window
 * exhaustion and recovery, keep-alive timeout, GoAway, 64 MiB transfers with
 * PRNG-pattern verification, limits, chunked delivery and an allocation-failure
 * loop. */
#include <stdlib.h>

#include "failmem.h"
#include "muxer/yamux_int.h"
#include "test.h"
#include "yamux_harness.h"

static yh_peer A, B; /* A = client (dialer), B = server */

static void pair_init(void) {
  if (yh_peer_init(&A, 1, NULL, NULL) || yh_peer_init(&B, 0, NULL, NULL)) abort();
}
static void pair_free(void) {
  yh_peer_free(&A);
  yh_peer_free(&B);
}
static int pump(void) { return yh_pump(&A, &B, 1 << 30, 0); }

/* Server behaviour: answer every inbound stream with `reply` pattern bytes then FIN. */
static uint64_t g_reply;
static void hook_reply(yh_peer *p, char t, uint32_t id, int64_t v) {
  if (t == 'O') {
    yh_stream *s = yh_st(p, id);
    s->tx_goal = g_reply;
    s->fin_after_goal = 1;
    int rv = yh_write_pattern(p, id);
    if (rv != LP2P_ERR_NOMEM) CHECK_OK(rv); /* NOMEM: retried later (allocation-failure test) */
  }
  (void)v;
}

static uint32_t open_with_goal(yh_peer *p, uint64_t goal, int fin) {
  uint32_t id = 0;
  if (lp2p_yamux_open_stream(p->mx, &id)) return 0;
  yh_stream *s = yh_st(p, id);
  s->known = 1;
  s->tx_goal = goal;
  s->fin_after_goal = fin;
  CHECK_OK(yh_write_pattern(p, id));
  return id;
}

TEST(many_streams) {
  pair_init();
  A.verify = B.verify = 1;
  g_reply = 7000;
  B.hook = hook_reply;
  uint32_t ids[200];
  for (int i = 0; i < 200; i++) {
    ids[i] = open_with_goal(&A, 10000 + (uint64_t)i * 37, 1);
    CHECK(ids[i] == (uint32_t)(2 * i + 1));
  }
  CHECK_EQ(lp2p_yamux_stream_count(A.mx), 200);
  CHECK_OK(pump());
  for (int i = 0; i < 200; i++) {
    yh_stream *a = yh_st(&A, ids[i]), *b = yh_st(&B, ids[i]);
    CHECK_EQ(b->rx, 10000 + (uint64_t)i * 37);
    CHECK_EQ(a->rx, 7000);
    CHECK(a->bad == 0 && b->bad == 0);
    CHECK(a->eof == 1 && b->eof == 1);
    CHECK(a->closed == 1 && b->closed == 1);
    CHECK(a->close_err == 0 && b->close_err == 0);
  }
  CHECK_EQ(lp2p_yamux_stream_count(A.mx), 0);
  CHECK_EQ(lp2p_yamux_stream_count(B.mx), 0);
  CHECK_EQ(A.nested + B.nested, 0);
  CHECK_EQ(A.mx->map.n + B.mx->map.n, 0); /* everything freed */
  pair_free();
}

/* Request/response over half-close: the server answers after the client's FIN. */
static void hook_answer_on_eof(yh_peer *p, char t, uint32_t id, int64_t v) {
  if (t == 'E') {
    yh_stream *s = yh_st(p, id);
    CHECK_EQ(lp2p_yamux_write(p->mx, id, s->data, s->len), (int64_t)s->len); /* echo */
    CHECK_OK(lp2p_yamux_close_write(p->mx, id));
  }
  (void)v;
}

TEST(half_close) {
  pair_init();
  B.hook = hook_answer_on_eof;
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(A.mx, &id));
  CHECK_EQ(lp2p_yamux_write(A.mx, id, (const uint8_t *)"request", 7), 7);
  CHECK_OK(lp2p_yamux_close_write(A.mx, id));
  CHECK_OK(pump());
  CHECK_STR(yh_log(&B), "O1 D1:7 E1 C1:0");
  CHECK_STR(yh_log(&A), "D1:7 E1 C1:0");
  CHECK_MEM(yh_st(&A, 1)->data, "request", 7);
  /* one-sided: A closes its side, B keeps sending for a while */
  yh_clear_events(&A);
  yh_clear_events(&B);
  B.hook = NULL;
  CHECK_OK(lp2p_yamux_open_stream(A.mx, &id));
  CHECK_OK(lp2p_yamux_close_write(A.mx, id));
  CHECK_OK(pump());
  CHECK_STR(yh_log(&B), "O3 E3");
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(lp2p_yamux_write(B.mx, id, (const uint8_t *)"more", 4), 4);
    CHECK_OK(pump());
  }
  CHECK_STR(yh_log(&A), "D3:12");
  CHECK_EQ(lp2p_yamux_stream_count(A.mx), 1);
  CHECK_OK(lp2p_yamux_close_write(B.mx, id));
  CHECK_OK(pump());
  CHECK_STR(yh_log(&A), "D3:12 E3 C3:0");
  CHECK_STR(yh_log(&B), "O3 E3 C3:0");
  pair_free();
}

TEST(resets) {
  pair_init();
  A.verify = B.verify = 1;
  A.keep_data = B.keep_data = 0;
  /* client resets mid-transfer; frames in flight are discarded by the server's late-frame rule */
  uint32_t id = open_with_goal(&A, 4 << 20, 1);
  CHECK_OK(yh_pump(&A, &B, 2, 0));
  CHECK(yh_st(&B, id)->rx > 0);
  CHECK(yh_st(&B, id)->rx < (4u << 20));
  yh_st(&A, id)->tx_goal = 0;
  CHECK_OK(lp2p_yamux_reset(A.mx, id));
  CHECK_EQ(yh_st(&A, id)->close_err, LP2P_ERR_CANCELED);
  CHECK_OK(pump());
  CHECK_EQ(yh_st(&B, id)->close_err, LP2P_ERR_RESET);
  CHECK_EQ(yh_st(&B, id)->closed, 1);
  CHECK_EQ(lp2p_yamux_error(A.mx) | lp2p_yamux_error(B.mx), 0);
  /* server resets a stream the client is writing to; the client's data in flight is dropped */
  uint32_t id2 = open_with_goal(&A, 4 << 20, 1);
  CHECK_OK(yh_pump(&A, &B, 1, 0));
  CHECK_OK(lp2p_yamux_reset(B.mx, id2));
  CHECK_OK(pump());
  CHECK_EQ(yh_st(&A, id2)->close_err, LP2P_ERR_RESET);
  CHECK_EQ(lp2p_yamux_write(A.mx, id2, (const uint8_t *)"x", 1), LP2P_ERR_NOT_FOUND);
  /* the session is still fine: a fresh stream works */
  uint32_t id3 = open_with_goal(&A, 100000, 1);
  CHECK_OK(pump());
  CHECK_EQ(yh_st(&B, id3)->rx, 100000);
  CHECK_EQ(yh_st(&B, id3)->bad, 0);
  CHECK_EQ(yh_st(&B, id3)->eof, 1);
  pair_free();
}

/* The receiver stops consuming: the sender stalls at the window, then resumes. */
TEST(window_exhaustion_recovery) {
  pair_init();
  B.auto_consume = 0;
  B.keep_data = 0;
  B.verify = 1;
  uint32_t id = open_with_goal(&A, 1 << 20, 1);
  CHECK_OK(pump());
  yh_stream *b = yh_st(&B, id), *a = yh_st(&A, id);
  CHECK_EQ(b->rx, LP2P_YAMUX_DEFAULT_WINDOW); /* exactly the window */
  uint64_t sw;
  size_t buffered;
  CHECK_OK(lp2p__yamux_stream_windows(A.mx, id, &sw, NULL, NULL, &buffered));
  CHECK_EQ(sw, 0);
  CHECK_EQ(buffered, LP2P_YAMUX_SEND_SLACK); /* bounded: window + slack accepted */
  CHECK_EQ(a->tx, LP2P_YAMUX_DEFAULT_WINDOW + LP2P_YAMUX_SEND_SLACK);
  int w0 = a->writable;
  /* consuming less than half: no update, still stalled */
  CHECK_OK(lp2p_yamux_consume(B.mx, id, 1000));
  b->unconsumed -= 1000;
  CHECK_OK(pump());
  CHECK_EQ(b->rx, LP2P_YAMUX_DEFAULT_WINDOW);
  CHECK_EQ(a->writable, w0);
  /* consume everything received, repeatedly, until the transfer is done */
  for (int i = 0; i < 1000 && !b->eof; i++) {
    if (b->unconsumed) CHECK_OK(lp2p_yamux_consume(B.mx, id, (size_t)b->unconsumed));
    b->unconsumed = 0;
    CHECK_OK(pump());
  }
  CHECK(a->writable > w0);
  CHECK_EQ(b->rx, 1 << 20);
  CHECK_EQ(b->bad, 0);
  CHECK_EQ(b->eof, 1);
  pair_free();
}

TEST(keepalive_timeout) {
  lp2p_yamux_config ca, cb;
  lp2p_yamux_config_default(&ca, 1);
  ca.keepalive_interval = 1000;
  ca.keepalive_timeout = 300;
  lp2p_yamux_config_default(&cb, 0);
  cb.keepalive_interval = 0;
  REQUIRE(yh_peer_init(&A, 1, &ca, NULL) == 0 && yh_peer_init(&B, 0, &cb, NULL) == 0);
  uint64_t t = 5;
  CHECK_OK(lp2p_yamux_handle_expiry(A.mx, t));
  A.now = B.now = t + 7;
  CHECK_OK(pump());
  CHECK_STR(yh_log(&A), "P7");
  /* answered pings keep the session alive across several intervals */
  for (int i = 0; i < 5; i++) {
    t = lp2p_yamux_next_expiry(A.mx);
    CHECK_OK(lp2p_yamux_handle_expiry(A.mx, t));
    A.now = B.now = t + 2;
    CHECK_OK(pump());
  }
  CHECK_STR(yh_log(&A), "P7 P2 P2 P2 P2 P2");
  uint32_t id = open_with_goal(&A, 10, 0);
  CHECK_OK(pump());
  /* the peer goes silent: its output is never delivered */
  t = lp2p_yamux_next_expiry(A.mx);
  CHECK_OK(lp2p_yamux_handle_expiry(A.mx, t));
  size_t n;
  free(yh_take_output(&A, &n));
  t = lp2p_yamux_next_expiry(A.mx);
  CHECK_EQ(lp2p_yamux_handle_expiry(A.mx, t - 1), 0);
  CHECK_EQ(lp2p_yamux_handle_expiry(A.mx, t), LP2P_ERR_TIMEOUT);
  CHECK_EQ(yh_st(&A, id)->close_err, LP2P_ERR_TIMEOUT);
  CHECK_EQ(lp2p_yamux_error(A.mx), LP2P_ERR_TIMEOUT);
  CHECK_EQ(lp2p_yamux_error(B.mx), 0);
  pair_free();
}

TEST(goaway) {
  pair_init();
  A.verify = B.verify = 1;
  A.keep_data = B.keep_data = 0;
  uint32_t id = open_with_goal(&A, 2 << 20, 1);
  CHECK_OK(yh_pump(&A, &B, 1, 0));
  CHECK_OK(lp2p_yamux_go_away(B.mx, LP2P_YAMUX_GOAWAY_NORMAL));
  CHECK_OK(pump());
  CHECK(strstr(yh_log(&A), "G0") != NULL);
  uint32_t x;
  CHECK_EQ(lp2p_yamux_open_stream(A.mx, &x), LP2P_ERR_GOAWAY);
  CHECK_EQ(lp2p_yamux_open_stream(B.mx, &x), LP2P_ERR_GOAWAY);
  /* the stream in progress completes */
  CHECK_EQ(yh_st(&B, id)->rx, 2 << 20);
  CHECK_EQ(yh_st(&B, id)->eof, 1);
  CHECK_OK(lp2p_yamux_close_write(B.mx, id));
  CHECK_OK(pump());
  CHECK_EQ(yh_st(&A, id)->close_err, 0);
  CHECK_EQ(yh_st(&A, id)->closed, 1);
  CHECK_EQ(lp2p_yamux_stream_count(A.mx), 0);
  /* a peer that ignores our GoAway and opens a stream gets RST */
  lp2p_yamux *m = A.mx;
  m->goaway_recv = 0; /* pretend A never saw it */
  CHECK_OK(lp2p_yamux_open_stream(A.mx, &x));
  CHECK_OK(pump());
  CHECK_EQ(yh_st(&A, x)->close_err, LP2P_ERR_RESET);
  pair_free();
}

/* Protocol errors travel: the GoAway(1) reaches the peer. */
TEST(protocol_error_goaway) {
  pair_init();
  uint8_t bad[12] = {0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK_EQ(lp2p_yamux_feed(B.mx, bad, 12, 0), LP2P_ERR_PROTO);
  CHECK_OK(pump());
  CHECK_STR(yh_log(&A), "G1");
  pair_free();
}

static void big_transfer(int nstreams, uint64_t total, int with_rtt, size_t chunk) {
  pair_init();
  A.verify = B.verify = 1;
  A.keep_data = B.keep_data = 0;
  A.record = B.record = 0;
  if (with_rtt) {
    CHECK_OK(lp2p_yamux_ping(A.mx, 0));
    CHECK_OK(lp2p_yamux_ping(B.mx, 0));
    CHECK_OK(pump());
    CHECK_EQ(lp2p_yamux_rtt(A.mx), 1);
  }
  uint64_t per = total / (uint64_t)nstreams;
  uint32_t first = 0;
  for (int i = 0; i < nstreams; i++) {
    uint32_t id = open_with_goal(&A, per, 1);
    REQUIRE(id);
    if (!first) first = id;
  }
  CHECK_OK(yh_pump(&A, &B, 1 << 30, chunk));
  uint64_t got = 0, bad = 0, eof = 0;
  for (int i = 0; i < nstreams; i++) {
    yh_stream *s = yh_st(&B, first + 2 * (uint32_t)i);
    got += s->rx;
    bad += s->bad;
    eof += (uint64_t)s->eof;
  }
  CHECK_EQ(got, per * (uint64_t)nstreams);
  CHECK_EQ(bad, 0);
  CHECK_EQ(eof, (uint64_t)nstreams);
  if (with_rtt) { /* auto-tuning grew the receive window */
    uint32_t win = 0;
    CHECK_OK(lp2p__yamux_stream_windows(B.mx, first, NULL, &win, NULL, NULL));
    CHECK(win > LP2P_YAMUX_DEFAULT_WINDOW);
  }
  pair_free();
}

TEST(transfer_64mib_one_stream) { big_transfer(1, 64u << 20, 0, 0); }
TEST(transfer_64mib_one_stream_autotuned) { big_transfer(1, 64u << 20, 1, 0); }
TEST(transfer_64mib_100_streams) { big_transfer(100, 64u << 20, 1, 0); }
TEST(transfer_chunked_delivery) {
  big_transfer(5, 3u << 20, 1, 1237);
  big_transfer(3, 150000, 0, 1); /* one byte at a time */
}

/* Inbound cap on the server: excess SYNs are reset, the session goes on. */
TEST(inbound_stream_cap) {
  lp2p_yamux_config cb;
  lp2p_yamux_config_default(&cb, 0);
  cb.keepalive_interval = 0;
  cb.max_inbound_streams = 10;
  REQUIRE(yh_peer_init(&A, 1, NULL, NULL) == 0 && yh_peer_init(&B, 0, &cb, NULL) == 0);
  uint32_t ids[15];
  for (int i = 0; i < 15; i++) ids[i] = open_with_goal(&A, 100, 0);
  CHECK_OK(pump());
  int reset = 0, open = 0;
  for (int i = 0; i < 15; i++) {
    yh_stream *s = yh_st(&A, ids[i]);
    if (s->closed && s->close_err == LP2P_ERR_RESET) reset++;
    if (!s->closed) open++;
  }
  CHECK_EQ(reset, 5);
  CHECK_EQ(open, 10);
  CHECK_EQ(lp2p_yamux_stream_count(B.mx), 10);
  CHECK_EQ(lp2p_yamux_error(B.mx), 0);
  /* closing one admits a new one */
  CHECK_OK(lp2p_yamux_reset(A.mx, ids[0]));
  uint32_t n = open_with_goal(&A, 100, 0);
  CHECK_OK(pump());
  CHECK_EQ(yh_st(&B, n)->rx, 100);
  CHECK_EQ(yh_st(&A, n)->closed, 0);
  pair_free();
}

/* 256 unacknowledged SYNs: the 257th open fails until the peer answers. */
TEST(unacked_syn_limit) {
  pair_init();
  uint32_t id;
  for (int i = 0; i < 256; i++) CHECK_OK(lp2p_yamux_open_stream(A.mx, &id));
  CHECK_EQ(lp2p_yamux_open_stream(A.mx, &id), LP2P_ERR_LIMIT);
  CHECK_OK(pump());
  CHECK_EQ(lp2p_yamux_stream_count(B.mx), 256);
  for (int i = 0; i < 256; i++) CHECK_OK(lp2p_yamux_open_stream(A.mx, &id));
  CHECK_EQ(lp2p_yamux_open_stream(A.mx, &id), LP2P_ERR_LIMIT);
  CHECK_OK(pump());
  CHECK_EQ(lp2p_yamux_stream_count(B.mx), 512);
  pair_free();
}

/* Allocation failure: every allocation of a scenario (two sessions, streams both ways,
 * data, close) fails in turn; each run ends cleanly and leaks nothing. */
static int oom_scenario(const lp2p_mem *mem, int *complete) {
  yh_peer a, b;
  *complete = 0;
  int rv = yh_peer_init(&a, 1, NULL, mem);
  if (rv) return rv == LP2P_ERR_NOMEM ? 0 : rv;
  rv = yh_peer_init(&b, 0, NULL, mem);
  if (rv) {
    yh_peer_free(&a);
    return rv == LP2P_ERR_NOMEM ? 0 : rv;
  }
  a.verify = b.verify = 1;
  a.keep_data = b.keep_data = 0;
  g_reply = 30000;
  b.hook = hook_reply;
  uint32_t ids[3];
  int nopen = 0;
  for (int i = 0; i < 3; i++) {
    uint32_t id;
    if (lp2p_yamux_open_stream(a.mx, &id)) continue;
    yh_stream *s = yh_st(&a, id);
    s->tx_goal = 300000;
    s->fin_after_goal = 1;
    yh_write_pattern(&a, id);
    ids[nopen++] = id;
  }
  /* writes that failed on NOMEM are retried by the pump loop */
  for (int r = 0; r < 2000; r++) {
    for (int i = 0; i < nopen; i++) {
      yh_stream *s = yh_st(&a, ids[i]);
      if (!s->closed && s->tx < s->tx_goal + 1) yh_write_pattern(&a, ids[i]);
    }
    for (size_t i = 0; i < b.n_st; i++) {
      yh_stream *s = &b.st[i];
      if (s->known && !s->closed && s->tx_goal) yh_write_pattern(&b, (uint32_t)i);
    }
    rv = yh_pump(&a, &b, 4, 0);
    if (rv || lp2p_yamux_error(a.mx) || lp2p_yamux_error(b.mx)) break;
  }
  int e1 = lp2p_yamux_error(a.mx), e2 = lp2p_yamux_error(b.mx);
  if (e1 && e1 != LP2P_ERR_NOMEM) rv = e1;
  if (e2 && e2 != LP2P_ERR_NOMEM) rv = e2;
  if (!rv && nopen == 3) {
    int done = 1;
    for (int i = 0; i < 3; i++) {
      yh_stream *x = yh_st(&a, ids[i]), *y = yh_st(&b, ids[i]);
      if (!(x->closed && !x->close_err && x->rx == 30000 && y->rx == 300000 && !x->bad && !y->bad)) done = 0;
    }
    *complete = done;
  }
  if (a.nested || b.nested) rv = LP2P_ERR_INTERNAL;
  yh_peer_free(&a);
  yh_peer_free(&b);
  return rv == LP2P_ERR_NOMEM ? 0 : rv;
}

TEST(allocation_failures) {
  long runs = 0, completed_despite = 0;
  for (long n = 1;; n++) {
    failmem fm;
    failmem_init(&fm, n);
    int complete = 0;
    int rv = oom_scenario(&fm.mem, &complete);
    runs++;
    if (rv) {
      TEST_FAIL_("fail_at %ld: scenario returned %d (%s)", n, rv, lp2p_strerror(rv));
      break;
    }
    if (fm.live != 0) {
      TEST_FAIL_("fail_at %ld: %ld blocks leaked", n, fm.live);
      break;
    }
    if (!fm.triggered) {
      CHECK(complete); /* the unfailed run completes the whole exchange */
      break;
    }
    completed_despite += complete;
  }
  printf("  allocation-failure runs: %ld (completed despite the failure: %ld)\n", runs, completed_despite);
  CHECK(runs > 10);
}

/* ---- gather output (lp2p_yamux_output_iov) between the two sessions ---- */

static uint8_t g_wire[4 << 20];

/* Moves from -> to with output_iov (max_iov entries, max_bytes per call); part: consume about half of
 * what each call returned (the rest comes again). Returns 0 or the first feed error. */
static int iov_move(yh_peer *from, yh_peer *to, size_t max_iov, size_t max_bytes, int part, int *moved) {
  lp2p_iovec iov[64];
  size_t k;
  while ((k = lp2p_yamux_output_iov(from->mx, iov, max_iov, max_bytes)) > 0) {
    size_t total = 0;
    for (size_t i = 0; i < k; i++) {
      if (total + iov[i].len > sizeof g_wire) abort();
      memcpy(g_wire + total, iov[i].base, iov[i].len);
      total += iov[i].len;
    }
    size_t take = part && total > 1 ? total / 2 + 1 : total;
    lp2p_yamux_output_consumed(from->mx, take);
    *moved = 1;
    int64_t rv = lp2p_yamux_feed(to->mx, g_wire, take, to->now);
    if (rv < 0) return (int)rv;
  }
  return 0;
}

typedef struct iov_stats {
  size_t max_buffered, max_ring;
} iov_stats;

static int iov_pump(yh_peer *a, yh_peer *b, int max_rounds, size_t max_iov, size_t max_bytes, int part,
                    iov_stats *st) {
  for (int r = 0; r < max_rounds; r++) {
    int moved = 0, rv;
    if ((rv = iov_move(a, b, max_iov, max_bytes, part, &moved))) return rv;
    if ((rv = iov_move(b, a, max_iov, max_bytes, part, &moved))) return rv;
    if (st) {
      size_t buffered, ring;
      lp2p__yamux_send_stats(a->mx, &buffered, &ring, NULL, NULL);
      if (buffered > st->max_buffered) st->max_buffered = buffered;
      if (ring > st->max_ring) st->max_ring = ring;
    }
    if (!moved) return 0;
  }
  return 0;
}

/* A opens streams with a goal on its own: up to the unacked limit, then from the outbound-available
 * callback whenever an ACK frees a slot. */
static int g_to_open, g_opened, g_avail_calls;
static uint64_t g_goal;
static uint32_t g_first;
static void open_more(lp2p_yamux *mx, void *ud) {
  yh_peer *p = ud;
  g_avail_calls++;
  while (g_opened < g_to_open) {
    uint32_t id;
    int rv = lp2p_yamux_open_stream(mx, &id);
    if (rv == LP2P_ERR_LIMIT) return;
    CHECK_OK(rv);
    if (rv) return;
    if (!g_first) g_first = id;
    yh_stream *s = yh_st(p, id);
    s->known = 1;
    s->tx_goal = g_goal;
    s->fin_after_goal = 1;
    CHECK_OK(yh_write_pattern(p, id));
    g_opened++;
  }
}

static void iov_transfer(int nstreams, uint64_t per, size_t budget, size_t max_iov, size_t max_bytes,
                         int part, iov_stats *st) {
  lp2p_yamux_config ca, cb;
  lp2p_yamux_config_default(&ca, 1);
  lp2p_yamux_config_default(&cb, 0);
  ca.keepalive_interval = cb.keepalive_interval = 0;
  ca.send_budget = budget;
  cb.max_inbound_streams = (uint32_t)nstreams + 1;
  REQUIRE(yh_peer_init(&A, 1, &ca, NULL) == 0 && yh_peer_init(&B, 0, &cb, NULL) == 0);
  A.verify = B.verify = 1;
  A.keep_data = B.keep_data = 0;
  A.record = B.record = 0;
  lp2p_yamux_set_on_outbound_available(A.mx, open_more);
  g_to_open = nstreams;
  g_opened = g_avail_calls = 0;
  g_goal = per;
  g_first = 0;
  open_more(A.mx, &A);
  g_avail_calls = 0;
  CHECK_OK(iov_pump(&A, &B, 1 << 30, max_iov, max_bytes, part, st));
  CHECK_EQ(g_opened, nstreams);
  uint64_t got = 0, bad = 0, eof = 0;
  for (int i = 0; i < nstreams; i++) {
    yh_stream *s = yh_st(&B, g_first + 2 * (uint32_t)i);
    got += s->rx;
    bad += s->bad;
    eof += (uint64_t)s->eof;
  }
  CHECK_EQ(got, per * (uint64_t)nstreams);
  CHECK_EQ(bad, 0);
  CHECK_EQ(eof, (uint64_t)nstreams);
  CHECK_EQ(lp2p_yamux_error(A.mx) | lp2p_yamux_error(B.mx), 0);
  size_t buffered = 1, zombies = 1;
  lp2p__yamux_send_stats(A.mx, &buffered, NULL, NULL, &zombies);
  CHECK_EQ(buffered, 0);
  CHECK_EQ(zombies, 0);
  pair_free();
}

TEST(transfer_iov_64mib_one_stream) {
  iov_stats st = {0, 0};
  iov_transfer(1, 64u << 20, 0, 64, 2 * 65519, 0, &st);
  CHECK(st.max_ring <= LP2P_YAMUX_SEND_BUFFER_MAX + LP2P_YAMUX_SEND_SLACK + 2 * 65536);
}

TEST(transfer_iov_100_streams_partial) {
  iov_stats st = {0, 0};
  iov_transfer(100, 200000, 256u << 10, 3, 50000, 1, &st); /* few iovecs, small pulls, half consumed */
  CHECK(st.max_buffered <= 256u << 10);
}

/* 1000 streams x 64 KiB on one session with a 256 KiB send budget: opened as ACKs come back (the
 * outbound-available callback), the sender's buffers stay bounded by the budget instead of 64 MiB. */
TEST(transfer_iov_1000_streams_budget) {
  iov_stats st = {0, 0};
  iov_transfer(1000, 64u << 10, 256u << 10, 32, 2 * 65519, 0, &st);
  CHECK(g_avail_calls > 0);
  printf("  1000 streams: peak budgeted %zu B, peak ring capacity %zu B, outbound-available calls %d\n",
         st.max_buffered, st.max_ring, g_avail_calls);
  CHECK(st.max_buffered <= 256u << 10);
  CHECK(st.max_ring <= 2u << 20);
}

/* Allocation failures with the gather path on both sides (budget small, partial consumption). */
static int oom_scenario_iov(const lp2p_mem *mem, int *complete) {
  yh_peer a, b;
  *complete = 0;
  lp2p_yamux_config ca;
  lp2p_yamux_config_default(&ca, 1);
  ca.keepalive_interval = 0;
  ca.send_budget = 100000;
  int rv = yh_peer_init(&a, 1, &ca, mem);
  if (rv) return rv == LP2P_ERR_NOMEM ? 0 : rv;
  rv = yh_peer_init(&b, 0, NULL, mem);
  if (rv) {
    yh_peer_free(&a);
    return rv == LP2P_ERR_NOMEM ? 0 : rv;
  }
  a.verify = b.verify = 1;
  a.keep_data = b.keep_data = 0;
  g_reply = 30000;
  b.hook = hook_reply;
  uint32_t ids[3];
  int nopen = 0;
  for (int i = 0; i < 3; i++) {
    uint32_t id;
    if (lp2p_yamux_open_stream(a.mx, &id)) continue;
    yh_stream *s = yh_st(&a, id);
    s->tx_goal = 300000;
    s->fin_after_goal = 1;
    yh_write_pattern(&a, id);
    ids[nopen++] = id;
  }
  for (int r = 0; r < 2000; r++) {
    for (int i = 0; i < nopen; i++) {
      yh_stream *s = yh_st(&a, ids[i]);
      if (!s->closed && s->tx < s->tx_goal + 1) yh_write_pattern(&a, ids[i]);
    }
    for (size_t i = 0; i < b.n_st; i++) {
      yh_stream *s = &b.st[i];
      if (s->known && !s->closed && s->tx_goal) yh_write_pattern(&b, (uint32_t)i);
    }
    rv = iov_pump(&a, &b, 4, 5, 70000, r & 1, NULL);
    if (rv || lp2p_yamux_error(a.mx) || lp2p_yamux_error(b.mx)) break;
  }
  int e1 = lp2p_yamux_error(a.mx), e2 = lp2p_yamux_error(b.mx);
  if (e1 && e1 != LP2P_ERR_NOMEM) rv = e1;
  if (e2 && e2 != LP2P_ERR_NOMEM) rv = e2;
  if (!rv && nopen == 3) {
    int done = 1;
    for (int i = 0; i < 3; i++) {
      yh_stream *x = yh_st(&a, ids[i]), *y = yh_st(&b, ids[i]);
      if (!(x->closed && !x->close_err && x->rx == 30000 && y->rx == 300000 && !x->bad && !y->bad)) done = 0;
    }
    *complete = done;
  }
  if (a.nested || b.nested) rv = LP2P_ERR_INTERNAL;
  yh_peer_free(&a);
  yh_peer_free(&b);
  return rv == LP2P_ERR_NOMEM ? 0 : rv;
}

TEST(allocation_failures_iov) {
  long runs = 0, completed_despite = 0;
  for (long n = 1;; n++) {
    failmem fm;
    failmem_init(&fm, n);
    int complete = 0;
    int rv = oom_scenario_iov(&fm.mem, &complete);
    runs++;
    if (rv) {
      TEST_FAIL_("fail_at %ld: scenario returned %d (%s)", n, rv, lp2p_strerror(rv));
      break;
    }
    if (fm.live != 0) {
      TEST_FAIL_("fail_at %ld: %ld blocks leaked", n, fm.live);
      break;
    }
    if (!fm.triggered) {
      CHECK(complete);
      break;
    }
    completed_despite += complete;
  }
  printf("  allocation-failure runs (gather): %ld (completed despite the failure: %ld)\n", runs,
         completed_despite);
  CHECK(runs > 10);
}

int main(void) {
  RUN(many_streams);
  RUN(half_close);
  RUN(resets);
  RUN(window_exhaustion_recovery);
  RUN(keepalive_timeout);
  RUN(goaway);
  RUN(protocol_error_goaway);
  RUN(transfer_64mib_one_stream);
  RUN(transfer_64mib_one_stream_autotuned);
  RUN(transfer_64mib_100_streams);
  RUN(transfer_chunked_delivery);
  RUN(inbound_stream_cap);
  RUN(unacked_syn_limit);
  RUN(allocation_failures);
  RUN(transfer_iov_64mib_one_stream);
  RUN(transfer_iov_100_streams_partial);
  RUN(transfer_iov_1000_streams_budget);
  RUN(allocation_failures_iov);
  return test_done();
}
