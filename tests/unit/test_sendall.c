/* tests/unit/test_sendall.c - lp2p_stream_send_all: "write all, then close"
 * between two in-process swarms. A server answers every stream with a
 * payload far larger than the yamux window (so most of it is queued and
 * written as the stream becomes writable) and half-closes; the client checks
 * every byte, the order of mixed send_all / lp2p_stream_write calls, the
 * errors after the FIN, and that a stream reset with bytes still queued
 * releases them (ASan). */
#include <stdlib.h>
#include <string.h>

#include "swarm_harness.h"
#include "test.h"

#define BIG (3 * 1024 * 1024 + 17)

/* ---- server ---- */
typedef enum { MODE_ONE = 0, MODE_MIXED, MODE_RESET } srv_mode;
typedef struct srv {
  srv_mode mode;
  uint8_t *data;
  int opened, closed, writable_calls, err_after_fin, write_refused;
  size_t mixed_tail_sent;
  lp2p_stream *s;
} srv;

static void srv_writable(lp2p_stream *s, void *ud) {
  srv *v = ud;
  v->writable_calls++;
  if (v->mode == MODE_MIXED && v->mixed_tail_sent < 1000) {
    /* the app's own bytes, written after the queue drained; then the FIN */
    int64_t k = lp2p_stream_write(s, v->data + BIG - 1000 + v->mixed_tail_sent, 1000 - v->mixed_tail_sent);
    if (k > 0) v->mixed_tail_sent += (size_t)k;
    if (v->mixed_tail_sent == 1000) lp2p_stream_close_write(s);
  }
}

static void srv_open(lp2p_stream *s, const char *proto, void *ud) {
  srv *v = ud;
  (void)proto;
  v->opened++;
  v->s = s;
  if (v->mode == MODE_ONE) {
    CHECK_OK(lp2p_stream_send_all(s, v->data, BIG, 1));
    /* after a send_all with close: everything else is refused */
    if (lp2p_stream_write(s, (const uint8_t *)"x", 1) == LP2P_ERR_CLOSED &&
        lp2p_stream_send_all(s, (const uint8_t *)"x", 1, 0) == LP2P_ERR_CLOSED)
      v->err_after_fin = 1;
  } else if (v->mode == MODE_MIXED) {
    /* two send_alls append; the app's write is held back (0) and on_writable follows the drain */
    CHECK_OK(lp2p_stream_send_all(s, v->data, 1000, 0));
    CHECK_OK(lp2p_stream_send_all(s, v->data + 1000, BIG - 2000, 0));
    if (lp2p_stream_write(s, v->data + BIG - 1000, 1000) == 0) v->write_refused = 1;
  } else {
    CHECK_OK(lp2p_stream_send_all(s, v->data, BIG, 1));
  }
}

static void srv_close(lp2p_stream *s, int err, void *ud) {
  srv *v = ud;
  (void)s;
  (void)err;
  v->closed++;
  v->s = NULL;
}

static const lp2p_stream_handler srv_handler = {sizeof(lp2p_stream_handler), srv_open, NULL, NULL, srv_writable,
                                                srv_close};

/* ---- client: reads everything, compares ---- */
typedef struct cli {
  const uint8_t *want;
  size_t got;
  int mismatch, eof, closed, err, reset_after;
} cli;

static void cli_open(lp2p_stream *s, const char *proto, void *ud) {
  (void)ud;
  (void)proto;
  lp2p_stream_close_write(s);
}
static void cli_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  cli *c = ud;
  if (c->got + n > BIG || memcmp(p, c->want + c->got, n)) c->mismatch = 1;
  c->got += n;
  if (c->reset_after && c->got >= (size_t)c->reset_after) lp2p_stream_reset(s);
}
static void cli_eof(lp2p_stream *s, void *ud) {
  cli *c = ud;
  (void)s;
  c->eof = 1;
}
static void cli_close(lp2p_stream *s, int err, void *ud) {
  cli *c = ud;
  (void)s;
  c->closed = 1;
  c->err = err;
}
static const lp2p_stream_handler cli_handler = {sizeof(lp2p_stream_handler), cli_open, cli_data, cli_eof, NULL,
                                                cli_close};

static uint8_t *pattern(void) {
  uint8_t *d = malloc(BIG);
  uint32_t x = 12345;
  for (size_t i = 0; i < BIG; i++) {
    x = x * 1103515245u + 12345u;
    d[i] = (uint8_t)(x >> 16);
  }
  return d;
}

static void run(srv_mode mode) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  REQUIRE(tsw_init(&a, &L, 1, NULL, 0) == 0);
  REQUIRE(tsw_init(&b, &L, 2, NULL, 1) == 0);
  srv v;
  memset(&v, 0, sizeof v);
  v.mode = mode;
  v.data = pattern();
  CHECK_OK(lp2p_swarm_set_protocol(b.sw, "/sendall/1", &srv_handler, &v));
  CHECK_OK(lp2p_swarm_add_address(a.sw, NULL, b.addr));
  cli c;
  memset(&c, 0, sizeof c);
  c.want = v.data;
  if (mode == MODE_RESET) c.reset_after = 300000;
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, (const char *[]){"/sendall/1"}, 1, &cli_handler, &c, NULL));
  CHECK(RUN_UNTIL(&L, c.closed && v.closed, 20000));
  CHECK_EQ(c.mismatch, 0);
  if (mode == MODE_RESET) {
    CHECK(c.got < BIG);
    CHECK_EQ(c.err, LP2P_ERR_CANCELED);
  } else {
    CHECK_EQ(c.got, BIG);
    CHECK(c.eof);
    CHECK_EQ(c.err, 0);
  }
  if (mode == MODE_ONE) {
    CHECK(v.err_after_fin);
    CHECK_EQ(v.writable_calls, 0); /* nothing of the app's was refused */
  }
  if (mode == MODE_MIXED) {
    CHECK(v.write_refused);
    CHECK_EQ(v.mixed_tail_sent, 1000);
    CHECK(v.writable_calls >= 1);
  }
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
  free(v.data);
}

TEST(send_all_then_close) { run(MODE_ONE); }
TEST(send_all_mixed_with_writes) { run(MODE_MIXED); }
TEST(reset_with_bytes_queued) { run(MODE_RESET); }

/* Argument and state errors. */
TEST(send_all_errors) {
  CHECK_EQ(lp2p_stream_send_all(NULL, (const uint8_t *)"x", 1, 0), LP2P_ERR_INVAL);
}

int main(void) {
  RUN(send_all_then_close);
  RUN(send_all_mixed_with_writes);
  RUN(reset_with_bytes_queued);
  RUN(send_all_errors);
  return test_done();
}
