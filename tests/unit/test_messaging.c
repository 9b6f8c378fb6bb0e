/* test_messaging.c - the messaging behaviour (lp2p/messaging.h) between in-process swarms over real TCP
 * and real SQLite files: delivery over the one connection (no second dial), receipts, retries with
 * backoff then dead letter, TTL expiry, rate limit answered and honoured, TOO_LARGE, a replayed and a
 * malformed frame sent on a raw stream, the outbox surviving a restart of the sender (exactly-once
 * delivery after a restart of both), redial through the peer store after the connection closed, and
 * ordered delivery. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp2p/lpm.h"
#include "lp2p/messaging.h"
#include "swarm_harness.h"
#include "test.h"

static char g_dir[64];
static int g_case;

typedef struct rec {
  int n[8];
  int last_status, last_err;
  char last_reason[32];
  uint32_t last_attempts;
  int n_rate_limited;
  uint64_t seqs[2048]; /* RECEIVED seqs in order */
  int n_seqs;
  uint8_t dup_seen[2048]; /* RECEIVED count per seq (exactly-once) */
  char last_body[256];
} rec;

static void on_ev(lp2p_msg_service *ms, const lp2p_msg_event *ev, void *ud) {
  rec *r = ud;
  (void)ms;
  if (ev->type < 8) r->n[ev->type]++;
  if (ev->type == LP2P_MSG_EV_RETRY && ev->status == LP2P_MSG_RATE_LIMITED) r->n_rate_limited++;
  if (ev->type == LP2P_MSG_EV_FAILED || ev->type == LP2P_MSG_EV_EXPIRED || ev->type == LP2P_MSG_EV_RETRY) {
    r->last_status = ev->status;
    r->last_err = ev->err;
    r->last_attempts = ev->attempts;
    snprintf(r->last_reason, sizeof r->last_reason, "%s", ev->reason ? ev->reason : "");
  }
  if (ev->type == LP2P_MSG_EV_RECEIVED) {
    if (r->n_seqs < 2048) r->seqs[r->n_seqs++] = ev->seq;
    if (ev->seq < 2048) r->dup_seen[ev->seq]++;
    size_t n = ev->body_len < sizeof r->last_body - 1 ? ev->body_len : sizeof r->last_body - 1;
    memcpy(r->last_body, ev->body, n);
    r->last_body[n] = 0;
  }
}

static void db_path(char *buf, size_t cap, const char *who) {
  snprintf(buf, cap, "%s/%s%d.db", g_dir, who, g_case);
}

static lp2p_msg_service *add_msg(tsw *t, const char *path, rec *r, void (*tweak)(lp2p_msg_config *)) {
  lp2p_msg_config cfg;
  lp2p_msg_config_default(&cfg);
  cfg.db_path = path;
  cfg.on_event = on_ev;
  cfg.ud = r;
  cfg.backoff_base_ms = 50;
  cfg.backoff_max_ms = 400;
  if (tweak) tweak(&cfg);
  lp2p_msg_service *ms = NULL;
  int rv = lp2p_msg_add(t->sw, &cfg, &ms);
  if (rv) fprintf(stderr, "lp2p_msg_add: %s\n", lp2p_strerror(rv));
  return ms;
}

static int connect_pair(tloop *L, tsw *a, tsw *b) {
  tdial d = {0};
  if (lp2p_swarm_dial(a->sw, NULL, (const char *[]){b->addr}, 1, tdial_cb, &d) < 0) return 0;
  return RUN_UNTIL(L, d.done && b->n_established >= 1, 5000) && d.err == 0;
}

TEST(msg_deliver_over_one_connection) {
  g_case++;
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  char pa[200], pb[200];
  db_path(pa, sizeof pa, "a");
  db_path(pb, sizeof pb, "b");
  rec ra = {0}, rb = {0};
  lp2p_msg_service *ma = add_msg(&a, pa, &ra, NULL), *mb = add_msg(&b, pb, &rb, NULL);
  REQUIRE(ma && mb);
  CHECK(lp2p_msg_get(a.sw) == ma);
  REQUIRE(connect_pair(&L, &a, &b));
  uint64_t dials = lp2p_swarm_dial_count(a.sw);
  lp2p_msg_id ids[200];
  for (int i = 0; i < 200; i++) {
    char body[32];
    int n = snprintf(body, sizeof body, "hello %d", i);
    CHECK_OK(lp2p_msg_send(ma, &b.id, (const uint8_t *)body, (size_t)n, &ids[i]));
  }
  CHECK_EQ(ra.n[LP2P_MSG_EV_QUEUED], 0); /* never from inside send */
  CHECK(memcmp(ids[0].b, ids[1].b, 16) != 0);
  CHECK(RUN_UNTIL(&L, ra.n[LP2P_MSG_EV_DELIVERED] == 200, 10000));
  CHECK_EQ(ra.n[LP2P_MSG_EV_QUEUED], 200);
  CHECK_EQ(rb.n[LP2P_MSG_EV_RECEIVED], 200);
  CHECK_EQ(ra.n[LP2P_MSG_EV_FAILED], 0);
  CHECK_STR(rb.last_body, "hello 199");
  CHECK_EQ(lp2p_swarm_dial_count(a.sw), dials); /* connected: no second dial */
  CHECK_EQ(lp2p_swarm_dial_count(b.sw), 0);
  CHECK_EQ(a.n_established, 1);
  CHECK_EQ(lp2p_msg_pending(ma), 0);
  lp2p_msg_state st;
  uint32_t att;
  CHECK_OK(lp2p_msg_outbox_state(ma, &ids[7], &st, &att));
  CHECK_EQ(st, LP2P_MSG_STATE_DELIVERED);
  CHECK_EQ(att, 0); /* attempts are recorded only when one fails */
  for (int i = 1; i <= 200; i++) CHECK_EQ(rb.dup_seen[i], 1);
  /* errors */
  CHECK_EQ(lp2p_msg_send(ma, &a.id, (const uint8_t *)"x", 1, NULL), LP2P_ERR_INVAL);
  uint8_t *big = calloc(1, 2 * 1024 * 1024);
  CHECK_EQ(lp2p_msg_send(ma, &b.id, big, 2 * 1024 * 1024, NULL), LP2P_ERR_TOO_LARGE);
  free(big);
  char hex[33];
  lp2p_msg_id back;
  CHECK_OK(lp2p_msg_id_parse(lp2p_msg_id_hex(&ids[3], hex), &back));
  CHECK_MEM(back.b, ids[3].b, 16);
  CHECK_EQ(lp2p_msg_id_parse("zz", &back), LP2P_ERR_PARSE);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

static void tweak_small(lp2p_msg_config *c) { c->max_msg_size = 100; }
static void tweak_rate(lp2p_msg_config *c) {
  c->rate_msgs_per_s = 100;
  c->rate_msgs_burst = 10;
}
static void tweak_dead(lp2p_msg_config *c) { c->max_attempts = 3; }
static void tweak_ttl(lp2p_msg_config *c) {
  c->ttl_ms = 150;
  c->backoff_base_ms = 1000;
}

TEST(msg_limits_typed_answers) {
  g_case++;
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  char pa[200], pb[200];
  db_path(pa, sizeof pa, "a");
  db_path(pb, sizeof pb, "b");
  rec ra = {0}, rb = {0};
  lp2p_msg_service *ma = add_msg(&a, pa, &ra, NULL);
  lp2p_msg_config c;
  lp2p_msg_config_default(&c);
  c.db_path = pb;
  c.on_event = on_ev;
  c.ud = &rb;
  tweak_small(&c);
  tweak_rate(&c);
  lp2p_msg_service *mb = NULL;
  CHECK_OK(lp2p_msg_add(b.sw, &c, &mb));
  REQUIRE(ma && mb);
  REQUIRE(connect_pair(&L, &a, &b));
  /* too large for the receiver: a dead letter with the receiver's typed answer */
  uint8_t body[200];
  memset(body, 'x', sizeof body);
  CHECK_OK(lp2p_msg_send(ma, &b.id, body, sizeof body, NULL));
  CHECK(RUN_UNTIL(&L, ra.n[LP2P_MSG_EV_FAILED] == 1, 5000));
  CHECK_EQ(ra.last_status, LP2P_MSG_TOO_LARGE);
  CHECK_STR(ra.last_reason, "too-large");
  CHECK_EQ(rb.n[LP2P_MSG_EV_RECEIVED], 0);
  /* 60 messages at 100/s with a burst of 10: RATE_LIMITED answers, the sender waits as told */
  uint64_t t0 = uv_now(&L.loop);
  for (int i = 0; i < 60; i++) CHECK_OK(lp2p_msg_send(ma, &b.id, body, 10, NULL));
  CHECK(RUN_UNTIL(&L, ra.n[LP2P_MSG_EV_DELIVERED] == 60, 10000));
  uint64_t el = uv_now(&L.loop) - t0;
  CHECK_EQ(rb.n[LP2P_MSG_EV_RECEIVED], 60);
  CHECK(ra.n_rate_limited > 0);
  CHECK_EQ(ra.n[LP2P_MSG_EV_FAILED], 1);
  CHECK(el >= 400); /* (60 - 10) / 100 per s = 500 ms minus timer slack */
  printf("     rate limited: %d answers, 60 msgs in %llu ms\n", ra.n_rate_limited, (unsigned long long)el);
  CHECK_EQ(lp2p_msg_pending(ma), 0);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

TEST(msg_retry_then_dead_letter_and_ttl) {
  g_case++;
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  char addr[200];
  snprintf(addr, sizeof addr, "%s", b.base_addr);
  lp2p_peer_id bid = b.id;
  tsw_free(&b); /* gone for good: its port refuses */
  CHECK_OK(lp2p_swarm_add_address(a.sw, &bid, addr));
  char pa[200];
  db_path(pa, sizeof pa, "a");
  rec ra = {0};
  lp2p_msg_service *ma = add_msg(&a, pa, &ra, tweak_dead);
  REQUIRE(ma);
  lp2p_msg_id id;
  CHECK_OK(lp2p_msg_send(ma, &bid, (const uint8_t *)"lost", 4, &id));
  CHECK(RUN_UNTIL(&L, ra.n[LP2P_MSG_EV_FAILED] == 1, 10000));
  CHECK_EQ(ra.n[LP2P_MSG_EV_RETRY], 2);
  CHECK_STR(ra.last_reason, "attempts");
  CHECK_EQ(ra.last_attempts, 3);
  CHECK(ra.last_err < 0);
  lp2p_msg_state st;
  uint32_t att;
  CHECK_OK(lp2p_msg_outbox_state(ma, &id, &st, &att));
  CHECK_EQ(st, LP2P_MSG_STATE_DEAD);
  CHECK_EQ(att, 3);
  tsw_free(&a);
  CHECK_EQ(tloop_finish(&L), 0);

  /* TTL: backoff 1 s, TTL 150 ms: expires before the second attempt */
  g_case++;
  tloop_init(&L);
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(lp2p_swarm_add_address(a.sw, &bid, addr));
  db_path(pa, sizeof pa, "a");
  memset(&ra, 0, sizeof ra);
  ma = add_msg(&a, pa, &ra, tweak_ttl);
  REQUIRE(ma);
  CHECK_OK(lp2p_msg_send(ma, &bid, (const uint8_t *)"late", 4, &id));
  CHECK(RUN_UNTIL(&L, ra.n[LP2P_MSG_EV_EXPIRED] == 1, 5000));
  CHECK_STR(ra.last_reason, "ttl");
  CHECK_OK(lp2p_msg_outbox_state(ma, &id, &st, NULL));
  CHECK_EQ(st, LP2P_MSG_STATE_DEAD);
  CHECK_EQ(lp2p_msg_pending(ma), 0);
  tsw_free(&a);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* A raw client stream speaking the wire format by hand. */
typedef struct raw {
  lp2p_stream *s;
  int open, closed;
  lp2p_lpm_reader *rd;
  lp2p_msg_frame acks[16];
  int n_acks;
} raw;
static void raw_open(lp2p_stream *s, const char *p, void *ud) {
  (void)s;
  (void)p;
  ((raw *)ud)->open = 1;
}
static void raw_data(lp2p_stream *s, const uint8_t *d, size_t n, void *ud) {
  raw *r = ud;
  (void)s;
  while (n) {
    size_t used;
    const uint8_t *m;
    size_t ml;
    int rv = lp2p_lpm_read(r->rd, d, n, &used, &m, &ml);
    if (rv < 0) return;
    d += used;
    n -= used;
    if (rv == 1 && r->n_acks < 16 && lp2p_msg_frame_decode(m, ml, &r->acks[r->n_acks]) == 0) r->n_acks++;
  }
}
static void raw_close(lp2p_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  ((raw *)ud)->closed = 1;
}
static const lp2p_stream_handler raw_h = {sizeof(lp2p_stream_handler), raw_open, raw_data, NULL, NULL, raw_close};

static void raw_send_msg(raw *r, const lp2p_msg_id *id, uint64_t seq, uint8_t flags, const char *body) {
  uint8_t buf[300];
  lp2p_msg_frame f = {.type = LP2P_MSG_FRAME_MSG, .flags_or_status = flags, .id = *id, .seq = seq};
  size_t bl = strlen(body);
  int k = lp2p_lpm_write_prefix(LP2P_MSG_HDR_LEN + bl, buf, sizeof buf);
  k += lp2p_msg_frame_encode_head(&f, buf + k);
  memcpy(buf + k, body, bl);
  lp2p_stream_send_all(r->s, buf, (size_t)k + bl, 0);
}

TEST(msg_replayed_frame_rejected_across_restart) {
  g_case++;
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  char pb[200];
  db_path(pb, sizeof pb, "b");
  rec rb = {0};
  REQUIRE(add_msg(&b, pb, &rb, NULL));
  REQUIRE(connect_pair(&L, &a, &b));
  raw r = {0};
  CHECK_OK(lp2p_lpm_reader_new(&r.rd, 64, NULL));
  const char *protos[] = {LP2P_MSG_PROTOCOL_ID};
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, protos, 1, &raw_h, &r, &r.s));
  REQUIRE(RUN_UNTIL(&L, r.open, 5000));
  lp2p_msg_id id = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}};
  raw_send_msg(&r, &id, 1, 0, "first");
  CHECK(RUN_UNTIL(&L, r.n_acks == 1, 5000));
  CHECK_EQ(r.acks[0].type, LP2P_MSG_FRAME_ACK);
  CHECK_EQ(r.acks[0].flags_or_status, LP2P_MSG_OK);
  CHECK_MEM(r.acks[0].id.b, id.b, 16);
  CHECK_EQ(rb.n[LP2P_MSG_EV_RECEIVED], 1);
  raw_send_msg(&r, &id, 1, 0, "first"); /* the same frame again */
  CHECK(RUN_UNTIL(&L, r.n_acks == 2, 5000));
  CHECK_EQ(r.acks[1].flags_or_status, LP2P_MSG_DUPLICATE);
  lp2p_msg_id id2 = id;
  id2.b[0] = 99;
  raw_send_msg(&r, &id2, 0, 0, "seq zero"); /* malformed: seq 0 */
  raw_send_msg(&r, &id2, 5, 7, "bad flags");
  CHECK(RUN_UNTIL(&L, r.n_acks == 4, 5000));
  CHECK_EQ(r.acks[2].flags_or_status, LP2P_MSG_REJECTED);
  CHECK_EQ(r.acks[3].flags_or_status, LP2P_MSG_REJECTED);
  CHECK_EQ(rb.n[LP2P_MSG_EV_RECEIVED], 1);
  lp2p_stream_close_write(r.s);
  CHECK(RUN_UNTIL(&L, r.closed, 5000));
  lp2p_lpm_reader_free(r.rd);
  /* restart the receiver on the same database: the replay is still recognised */
  tsw_free(&b);
  CHECK(RUN_UNTIL(&L, a.n_closed == 1, 5000));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  memset(&rb, 0, sizeof rb);
  REQUIRE(add_msg(&b, pb, &rb, NULL));
  REQUIRE(connect_pair(&L, &a, &b));
  memset(&r, 0, sizeof r);
  CHECK_OK(lp2p_lpm_reader_new(&r.rd, 64, NULL));
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, protos, 1, &raw_h, &r, &r.s));
  REQUIRE(RUN_UNTIL(&L, r.open, 5000));
  raw_send_msg(&r, &id, 1, 0, "first");
  CHECK(RUN_UNTIL(&L, r.n_acks == 1, 5000));
  CHECK_EQ(r.acks[0].flags_or_status, LP2P_MSG_DUPLICATE);
  CHECK_EQ(rb.n[LP2P_MSG_EV_RECEIVED], 0);
  lp2p_stream_reset(r.s);
  CHECK(RUN_UNTIL(&L, r.closed, 5000));
  lp2p_lpm_reader_free(r.rd);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

TEST(msg_outbox_survives_restart_and_redial) {
  g_case++;
  tloop L;
  tloop_init(&L);
  tsw a, b;
  char pa[200], pb[200];
  db_path(pa, sizeof pa, "a");
  db_path(pb, sizeof pb, "b");
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  char baddr[200];
  snprintf(baddr, sizeof baddr, "%s", b.base_addr);
  lp2p_peer_id bid = b.id;
  tsw_free(&b); /* the receiver is down while the sender queues */
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  rec ra = {0}, rb = {0};
  lp2p_msg_service *ma = add_msg(&a, pa, &ra, NULL);
  REQUIRE(ma);
  CHECK_OK(lp2p_swarm_add_address(a.sw, &bid, baddr));
  for (int i = 0; i < 300; i++) {
    char body[32];
    int n = snprintf(body, sizeof body, "m%d", i);
    CHECK_OK(lp2p_msg_send(ma, &bid, (const uint8_t *)body, (size_t)n, NULL));
  }
  CHECK(RUN_UNTIL(&L, ra.n[LP2P_MSG_EV_QUEUED] == 300, 5000));
  CHECK(RUN_UNTIL(&L, ra.n[LP2P_MSG_EV_RETRY] >= 300, 5000)); /* the dial was refused */
  tsw_free(&a); /* sender stops with 300 queued */
  /* both come back: the receiver on its old port, the sender from its database */
  lp2p_swarm_config cb;
  tsw_config(&cb);
  CHECK_OK(tsw_init(&b, &L, 2, &cb, 0));
  char listen[200];
  snprintf(listen, sizeof listen, "%s", baddr);
  CHECK_OK(lp2p_swarm_listen(b.sw, listen));
  lp2p_msg_service *mb = add_msg(&b, pb, &rb, NULL);
  REQUIRE(mb);
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(lp2p_swarm_add_address(a.sw, &bid, baddr));
  memset(&ra, 0, sizeof ra);
  ma = add_msg(&a, pa, &ra, NULL);
  REQUIRE(ma);
  CHECK_EQ(lp2p_msg_pending(ma), 300);
  CHECK(RUN_UNTIL(&L, ra.n[LP2P_MSG_EV_DELIVERED] == 300, 15000));
  CHECK_EQ(rb.n[LP2P_MSG_EV_RECEIVED], 300);
  for (int i = 1; i <= 300; i++) CHECK_EQ(rb.dup_seen[i], 1);
  /* the receiver closes the connection: the peer table empties, the next send redials */
  CHECK_OK(lp2p_swarm_disconnect(b.sw, &a.id));
  CHECK(RUN_UNTIL(&L, a.n_closed == 1, 5000));
  CHECK(!lp2p_swarm_is_connected(a.sw, &bid));
  uint64_t dials = lp2p_swarm_dial_count(a.sw);
  CHECK_OK(lp2p_msg_send(ma, &bid, (const uint8_t *)"again", 5, NULL));
  CHECK(RUN_UNTIL(&L, ra.n[LP2P_MSG_EV_DELIVERED] == 301, 5000));
  CHECK_STR(rb.last_body, "again");
  CHECK_EQ(lp2p_swarm_dial_count(a.sw), dials + 1);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

static void tweak_ordered(lp2p_msg_config *c) { c->ordered = 1; }

TEST(msg_ordered_delivery) {
  g_case++;
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  char pa[200], pb[200];
  db_path(pa, sizeof pa, "a");
  db_path(pb, sizeof pb, "b");
  rec ra = {0}, rb = {0};
  lp2p_msg_config c;
  lp2p_msg_config_default(&c);
  c.db_path = pb;
  c.on_event = on_ev;
  c.ud = &rb;
  tweak_rate(&c); /* rate limiting in the middle must not reorder */
  lp2p_msg_service *ma = add_msg(&a, pa, &ra, tweak_ordered);
  lp2p_msg_service *mb = NULL;
  CHECK_OK(lp2p_msg_add(b.sw, &c, &mb));
  REQUIRE(ma && mb);
  REQUIRE(connect_pair(&L, &a, &b));
  for (int i = 0; i < 30; i++) CHECK_OK(lp2p_msg_send(ma, &b.id, (const uint8_t *)"o", 1, NULL));
  CHECK(RUN_UNTIL(&L, ra.n[LP2P_MSG_EV_DELIVERED] == 30, 10000));
  REQUIRE(rb.n_seqs == 30);
  for (int i = 0; i < 30; i++) CHECK_EQ(rb.seqs[i], (uint64_t)i + 1);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/lp2p-msg-XXXXXX");
  if (!mkdtemp(g_dir)) return 1;
  RUN(msg_deliver_over_one_connection);
  RUN(msg_limits_typed_answers);
  RUN(msg_retry_then_dead_letter_and_ttl);
  RUN(msg_replayed_frame_rejected_across_restart);
  RUN(msg_outbox_survives_restart_and_redial);
  RUN(msg_ordered_delivery);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
  return test_done();
}
