/* test_reqresp.c - the request-response behaviour between real swarms on
 * loopback TCP: every outcome kind provoked for real on both sides (response,
 * omission, unsupported protocol, too large both ways, stalled handler and
 * requester timeouts, dial failures, a connection closed by freeing the peer's
 * swarm and by SIGKILLing a peer process), a request joining a dial in flight,
 * the per-peer inbound limit, protocol choice, and 1,000 concurrent requests
 * answered asynchronously. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lp2p/identify.h"
#include "lp2p/kad.h"
#include "lp2p/peerstore.h"
#include "lp2p/reqresp.h"
#include "swarm_harness.h"
#include "test.h"

#define P1 "/lp2p-test/rr/1.0.0"
#define P2 "/lp2p-test/rr/2.0.0"
#define MAXR 2100

enum { M_ECHO = 0, M_HOLD, M_DROP, M_BIG, M_LATER };

typedef struct rec {
  int outcome, err, n; /* n: events seen for this id */
  char proto[64];
  uint8_t *data;
  size_t len;
} rec;

typedef struct rapp {
  lp2p_reqresp *rr;
  int mode;
  size_t big;
  /* outbound */
  rec out[MAXR + 1];
  int n_out_events;
  int n_out_by[16];
  /* inbound */
  rec in[MAXR + 1];
  int n_requests, n_in_events;
  int n_in_by[16];
  lp2p_reqresp_channel *held[MAXR];
  uint64_t held_id[MAXR];
  int n_held;
  int n_dup; /* events for an id that already ended: must stay 0 */
  int pipe_fd; /* M_HOLD in a child: a byte per request */
  lp2p_timer *later;
} rapp;

static void on_rr(lp2p_reqresp *rr, const lp2p_reqresp_event *ev, void *ud) {
  rapp *a = ud;
  if (ev->type == LP2P_REQRESP_EV_OUTBOUND) {
    rec *r = ev->request_id <= MAXR ? &a->out[ev->request_id] : &a->out[0];
    if (r->n++) a->n_dup++;
    r->outcome = (int)ev->outcome;
    r->err = ev->err;
    snprintf(r->proto, sizeof r->proto, "%s", ev->protocol ? ev->protocol : "");
    if (ev->len) {
      r->data = malloc(ev->len);
      memcpy(r->data, ev->data, ev->len);
      r->len = ev->len;
    }
    a->n_out_events++;
    a->n_out_by[ev->outcome & 15]++;
    return;
  }
  rec *r = ev->request_id <= MAXR ? &a->in[ev->request_id] : &a->in[0];
  if (ev->type == LP2P_REQRESP_EV_INBOUND) {
    if (r->n >= 2 || (r->n == 1 && r->outcome != -1)) a->n_dup++;
    r->n++;
    r->outcome = (int)ev->outcome;
    r->err = ev->err;
    a->n_in_events++;
    a->n_in_by[ev->outcome & 15]++;
    return;
  }
  /* REQUEST */
  if (r->n++) a->n_dup++;
  r->outcome = -1;
  snprintf(r->proto, sizeof r->proto, "%s", ev->protocol ? ev->protocol : "");
  r->len = ev->len;
  a->n_requests++;
  switch (a->mode) {
    case M_ECHO: {
      uint8_t *buf = malloc(ev->len + 3);
      memcpy(buf, "re:", 3);
      memcpy(buf + 3, ev->data, ev->len);
      CHECK_OK(lp2p_reqresp_respond(ev->channel, buf, ev->len + 3));
      free(buf);
      break;
    }
    case M_DROP:
      lp2p_reqresp_channel_drop(ev->channel);
      break;
    case M_BIG: {
      uint8_t *buf = calloc(1, a->big);
      int rv = lp2p_reqresp_respond(ev->channel, buf, a->big);
      CHECK(rv == 0 || rv == LP2P_ERR_TOO_LARGE);
      free(buf);
      break;
    }
    default: /* HOLD, LATER */
      if (a->n_held < MAXR) {
        a->held_id[a->n_held] = ev->request_id;
        a->held[a->n_held++] = ev->channel;
      } else {
        lp2p_reqresp_channel_drop(ev->channel);
      }
      if (a->pipe_fd > 0) {
        ssize_t w = write(a->pipe_fd, "r", 1);
        (void)w;
      }
      break;
  }
  (void)rr;
}

/* M_LATER: answers every held channel from a timer, echoing the request id. */
static void later_fire(lp2p_timer *t, void *ud) {
  rapp *a = ud;
  (void)t;
  for (int i = 0; i < a->n_held; i++) {
    char body[32];
    int n = snprintf(body, sizeof body, "id:%llu", (unsigned long long)a->held_id[i]);
    CHECK_OK(lp2p_reqresp_respond(a->held[i], (const uint8_t *)body, (size_t)n));
  }
  a->n_held = 0;
}

static void rapp_free(rapp *a) {
  for (int i = 0; i <= MAXR; i++) free(a->out[i].data);
  for (int i = 0; i < a->n_held; i++) lp2p_reqresp_channel_drop(a->held[i]);
  free(a);
}

static rapp *rapp_add(tsw *t, const char *const *protos, size_t n, int mode, void (*tweak)(lp2p_reqresp_config *)) {
  rapp *a = calloc(1, sizeof *a);
  a->mode = mode;
  lp2p_reqresp_config cfg;
  lp2p_reqresp_config_default(&cfg);
  for (size_t i = 0; i < n; i++) cfg.protocols[i] = protos[i];
  cfg.n_protocols = n;
  cfg.on_event = on_rr;
  cfg.ud = a;
  if (tweak) tweak(&cfg);
  int rv = lp2p_reqresp_add(t->sw, &cfg, &a->rr);
  CHECK_OK(rv);
  if (mode == M_LATER) {
    CHECK_OK(lp2p_timer_new(&a->later, t->sw, later_fire, a));
    CHECK_OK(lp2p_timer_start(a->later, 2, 2));
  }
  return a;
}

static const char *const k_p1[] = {P1};

static int connect_pair(tloop *L, tsw *a, tsw *b) {
  tdial d = {0};
  if (lp2p_swarm_dial(a->sw, NULL, (const char *[]){b->addr}, 1, tdial_cb, &d) < 0) return 0;
  return RUN_UNTIL(L, d.done, 5000) && d.err == 0;
}

static int send_str(rapp *a, const lp2p_peer_id *peer, const char *proto, const char *s, uint64_t *id) {
  return lp2p_reqresp_send(a->rr, peer, proto, (const uint8_t *)s, strlen(s), id);
}

TEST(rr_round_trip_and_omission) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  rapp *ra = rapp_add(&a, k_p1, 1, M_ECHO, NULL);
  rapp *rb = rapp_add(&b, k_p1, 1, M_ECHO, NULL);
  CHECK(lp2p_swarm_behaviour(a.sw, LP2P_REQRESP_BEHAVIOUR) == ra->rr);
  REQUIRE(connect_pair(&L, &a, &b));

  uint64_t id = 0;
  CHECK_OK(send_str(ra, &b.id, NULL, "{\"x\":1}", &id));
  CHECK_EQ(id, 1);
  CHECK_EQ(ra->n_out_events, 0); /* never from inside the call */
  CHECK_EQ(lp2p_reqresp_pending_outbound(ra->rr), 1);
  CHECK(RUN_UNTIL(&L, ra->n_out_events == 1 && rb->n_in_events == 1, 5000));
  CHECK_EQ(ra->out[1].outcome, LP2P_REQRESP_RESPONSE);
  CHECK_EQ(ra->out[1].err, 0);
  CHECK_EQ(ra->out[1].len, 10);
  CHECK(ra->out[1].data && !memcmp(ra->out[1].data, "re:{\"x\":1}", 10));
  CHECK_STR(ra->out[1].proto, P1);
  CHECK_EQ(rb->n_requests, 1);
  CHECK_EQ(rb->in[1].len, 7);
  CHECK_EQ(rb->in[1].outcome, LP2P_REQRESP_RESPONSE);
  CHECK_EQ(lp2p_reqresp_pending_outbound(ra->rr), 0);

  /* the other direction, answered later from a timer */
  ra->mode = M_LATER;
  CHECK_OK(lp2p_timer_new(&ra->later, a.sw, later_fire, ra));
  CHECK_OK(lp2p_timer_start(ra->later, 5, 5));
  CHECK_OK(send_str(rb, &a.id, P1, "hello", &id));
  CHECK(RUN_UNTIL(&L, rb->n_out_events == 1 && ra->n_in_events == 1, 5000));
  CHECK_EQ(rb->out[id].outcome, LP2P_REQRESP_RESPONSE);
  CHECK(rb->out[id].len == 4 && !memcmp(rb->out[id].data, "id:1", 4));
  CHECK_EQ(ra->in[1].outcome, LP2P_REQRESP_RESPONSE);

  /* omission: the handler drops the channel -> both sides RESPONSE_OMISSION */
  rb->mode = M_DROP;
  CHECK_OK(send_str(ra, &b.id, NULL, "{}", &id));
  CHECK(RUN_UNTIL(&L, ra->n_out_events == 2 && rb->n_in_events == 2, 5000));
  CHECK_EQ(ra->out[id].outcome, LP2P_REQRESP_RESPONSE_OMISSION);
  CHECK_EQ(rb->in[2].outcome, LP2P_REQRESP_RESPONSE_OMISSION);
  CHECK_EQ(ra->out[id].len, 0);

  /* sync errors */
  CHECK_EQ(send_str(ra, &b.id, "/not/configured", "x", NULL), LP2P_ERR_INVAL);
  CHECK_EQ(send_str(ra, &a.id, NULL, "x", NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_reqresp_send(ra->rr, &b.id, NULL, NULL, 0, NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_reqresp_respond(NULL, NULL, 0), LP2P_ERR_INVAL);
  lp2p_reqresp_channel_drop(NULL);
  CHECK_EQ(ra->n_dup + rb->n_dup, 0);
  CHECK_EQ(lp2p_reqresp_pending_inbound(rb->rr), 0);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
  rapp_free(ra);
  rapp_free(rb);
}

TEST(rr_unsupported_and_protocol_choice) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  static const char *const both[] = {P2, P1};
  rapp *ra = rapp_add(&a, both, 2, M_ECHO, NULL);
  rapp *rb = rapp_add(&b, k_p1, 1, M_ECHO, NULL); /* only P1 */
  REQUIRE(connect_pair(&L, &a, &b));
  uint64_t id1, id2;
  CHECK_OK(send_str(ra, &b.id, P2, "x", &id1)); /* b does not speak P2 */
  CHECK_OK(send_str(ra, &b.id, NULL, "y", &id2)); /* P2 then P1: P1 agreed */
  CHECK(RUN_UNTIL(&L, ra->n_out_events == 2, 5000));
  CHECK_EQ(ra->out[id1].outcome, LP2P_REQRESP_UNSUPPORTED_PROTOCOL);
  CHECK_EQ(ra->out[id1].err, LP2P_ERR_UNSUPPORTED);
  CHECK_EQ(ra->out[id2].outcome, LP2P_REQRESP_RESPONSE);
  CHECK_STR(ra->out[id2].proto, P1);
  CHECK(RUN_UNTIL(&L, rb->n_in_events == 1, 5000));
  CHECK_EQ(rb->n_requests, 1); /* the unsupported request never reached b's app */
  CHECK_EQ(ra->n_dup + rb->n_dup, 0);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
  rapp_free(ra);
  rapp_free(rb);
}

static void small_response(lp2p_reqresp_config *c) { c->max_response_size = 100 * 1024; }
static void big_request(lp2p_reqresp_config *c) { c->max_request_size = 4u << 20; }
static void small_out_resp(lp2p_reqresp_config *c) { c->max_response_size = 1000; }

TEST(rr_too_large) {
  tloop L;
  tloop_init(&L);
  tsw a, b, c;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  CHECK_OK(tsw_init(&c, &L, 3, NULL, 1));
  rapp *ra = rapp_add(&a, k_p1, 1, M_ECHO, small_response);
  rapp *rb = rapp_add(&b, k_p1, 1, M_BIG, big_request);
  rapp *rc = rapp_add(&c, k_p1, 1, M_BIG, small_out_resp);
  rb->big = 600 * 1024; /* > a's 100 KiB response limit, > one yamux window */
  rc->big = 2000;       /* > c's own response limit */
  REQUIRE(connect_pair(&L, &a, &b));
  REQUIRE(connect_pair(&L, &a, &c));

  /* response over the requester's limit: requester TOO_LARGE, responder sees the reset */
  uint64_t id;
  CHECK_OK(send_str(ra, &b.id, NULL, "give me a lot", &id));
  CHECK(RUN_UNTIL(&L, ra->n_out_events == 1 && rb->n_in_events == 1, 5000));
  CHECK_EQ(ra->out[id].outcome, LP2P_REQRESP_TOO_LARGE);
  CHECK_EQ(ra->out[id].err, LP2P_ERR_TOO_LARGE);
  CHECK_EQ(rb->in[1].outcome, LP2P_REQRESP_IO);
  CHECK_EQ(rb->in[1].err, LP2P_ERR_RESET);

  /* request over the responder's limit (1 MiB default): responder TOO_LARGE, requester IO/RESET */
  size_t n = (1u << 20) + 1;
  uint8_t *big = calloc(1, n);
  CHECK_EQ(lp2p_reqresp_send(ra->rr, &b.id, NULL, big, n, NULL), LP2P_ERR_TOO_LARGE); /* a's own limit */
  CHECK_OK(lp2p_reqresp_send(rb->rr, &a.id, NULL, big, n, &id));
  CHECK(RUN_UNTIL(&L, rb->n_out_events == 1 && ra->n_in_events == 1, 5000));
  CHECK_EQ(ra->in[1].outcome, LP2P_REQRESP_TOO_LARGE);
  CHECK_EQ(rb->out[id].outcome, LP2P_REQRESP_IO);
  CHECK_EQ(rb->out[id].err, LP2P_ERR_RESET);
  CHECK_EQ(ra->n_requests, 0);
  free(big);

  /* the responder's app answers more than its own limit: respond() refuses, both sides end */
  CHECK_OK(send_str(ra, &c.id, NULL, "x", &id));
  CHECK(RUN_UNTIL(&L, ra->out[id].n == 1 && rc->n_in_events == 1, 5000));
  CHECK_EQ(rc->in[1].outcome, LP2P_REQRESP_TOO_LARGE);
  CHECK_EQ(ra->out[id].outcome, LP2P_REQRESP_IO);
  CHECK_EQ(ra->out[id].err, LP2P_ERR_RESET);
  CHECK_EQ(ra->n_dup + rb->n_dup + rc->n_dup, 0);
  tsw_free(&a);
  tsw_free(&b);
  tsw_free(&c);
  CHECK_EQ(tloop_finish(&L), 0);
  rapp_free(ra);
  rapp_free(rb);
  rapp_free(rc);
}

/* Bodies are charged to the resource manager (lp2p_stream_reserve_body: protocol, connection,
 * peer and node scopes, not the 4 MiB stream scope): a 10 MiB response (the default limit) works
 * with the default limits; a requester whose peer scope is 3 MiB gets RESOURCE_LIMIT
 * (LP2P_ERR_LIMIT) for it, its charges all come back, and a small request still works; a
 * responder with a 512 KiB peer scope refuses a 1 MiB request the same way. */
static uint64_t peer_mem(tsw *t, const lp2p_peer_id *peer) {
  lp2p_scope_usage u[64];
  size_t n = lp2p_swarm_resource_usage(t->sw, u, 64, sizeof *u);
  for (size_t i = 0; i < n && i < 64; i++)
    if (u[i].kind == LP2P_SCOPE_PEER && lp2p_peer_id_equal(&u[i].peer, peer)) return u[i].memory;
  return 0;
}
static void big_req_limit(lp2p_reqresp_config *c) { c->max_request_size = 1u << 20; }

TEST(rr_bodies_charged_to_resource_manager) {
  tloop L;
  tloop_init(&L);
  tsw a, b, c;
  lp2p_swarm_config small;
  lp2p_swarm_config_default(&small);
  small.max_memory_per_peer = 3u << 20;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  CHECK_OK(tsw_init(&c, &L, 3, &small, 1));
  rapp *ra = rapp_add(&a, k_p1, 1, M_ECHO, NULL);
  rapp *rb = rapp_add(&b, k_p1, 1, M_BIG, NULL);
  rapp *rc = rapp_add(&c, k_p1, 1, M_ECHO, big_req_limit);
  rb->big = 10u << 20;
  REQUIRE(connect_pair(&L, &a, &b));
  REQUIRE(connect_pair(&L, &c, &b));
  uint64_t id;
  /* defaults: the 10 MiB response arrives whole */
  CHECK_OK(send_str(ra, &b.id, NULL, "10 MiB please", &id));
  CHECK(RUN_UNTIL(&L, ra->out[id].n == 1, 20000));
  CHECK_EQ(ra->out[id].outcome, LP2P_REQRESP_RESPONSE);
  CHECK_EQ(ra->out[id].len, 10u << 20);
  /* 3 MiB per peer: refused with a typed failure, nothing grows past the limit */
  uint64_t before = peer_mem(&c, &b.id);
  CHECK_OK(send_str(rc, &b.id, NULL, "10 MiB please", &id));
  CHECK(RUN_UNTIL(&L, rc->out[id].n == 1, 20000));
  CHECK_EQ(rc->out[id].outcome, LP2P_REQRESP_RESOURCE_LIMIT);
  CHECK_EQ(rc->out[id].err, LP2P_ERR_LIMIT);
  CHECK(strcmp(lp2p_reqresp_outcome_name(LP2P_REQRESP_RESOURCE_LIMIT), "resource-limit") == 0);
  CHECK(RUN_UNTIL(&L, rb->n_in_events == 2, 5000)); /* b saw the reset */
  CHECK(RUN_UNTIL(&L, peer_mem(&c, &b.id) <= before, 5000));
  /* c still works: a small request to a (echo) */
  REQUIRE(connect_pair(&L, &c, &a));
  CHECK_OK(send_str(rc, &a.id, NULL, "hi", &id));
  CHECK(RUN_UNTIL(&L, rc->out[id].n == 1, 5000));
  CHECK_EQ(rc->out[id].outcome, LP2P_REQRESP_RESPONSE);
  /* inbound: d (512 KiB per peer) refuses a 1 MiB request body (within max_request_size) */
  CHECK_EQ(lp2p_stream_reserve_body(NULL, 1), LP2P_ERR_INVAL);
  size_t n = 1u << 20;
  uint8_t *body = calloc(1, n);
  lp2p_swarm_config tiny;
  lp2p_swarm_config_default(&tiny);
  tiny.max_memory_per_peer = 512u << 10;
  tsw d;
  CHECK_OK(tsw_init(&d, &L, 4, &tiny, 1));
  rapp *rd = rapp_add(&d, k_p1, 1, M_ECHO, NULL);
  REQUIRE(connect_pair(&L, &a, &d));
  CHECK_OK(lp2p_reqresp_send(ra->rr, &d.id, NULL, body, n, &id));
  CHECK(RUN_UNTIL(&L, ra->out[id].n == 1 && rd->n_in_events == 1, 10000));
  CHECK_EQ(rd->in[1].outcome, LP2P_REQRESP_RESOURCE_LIMIT);
  CHECK_EQ(rd->in[1].err, LP2P_ERR_LIMIT);
  CHECK_EQ(rd->n_requests, 0);
  CHECK(ra->out[id].outcome != LP2P_REQRESP_RESPONSE);
  free(body);
  CHECK_EQ(ra->n_dup + rb->n_dup + rc->n_dup + rd->n_dup, 0);
  tsw_free(&a);
  tsw_free(&b);
  tsw_free(&c);
  tsw_free(&d);
  CHECK_EQ(tloop_finish(&L), 0);
  rapp_free(ra);
  rapp_free(rb);
  rapp_free(rc);
  rapp_free(rd);
}

static void short_timeout(lp2p_reqresp_config *c) { c->timeout_ms = 300; }

TEST(rr_timeouts) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  rapp *ra = rapp_add(&a, k_p1, 1, M_HOLD, short_timeout);
  rapp *rb = rapp_add(&b, k_p1, 1, M_HOLD, NULL);
  REQUIRE(connect_pair(&L, &a, &b));

  /* requester times out (300 ms) while b's handler stalls: a TIMEOUT, b sees the reset */
  uint64_t id;
  CHECK_OK(send_str(ra, &b.id, NULL, "stall", &id));
  CHECK(RUN_UNTIL(&L, ra->n_out_events == 1 && rb->n_in_events == 1, 5000));
  CHECK_EQ(ra->out[id].outcome, LP2P_REQRESP_TIMEOUT);
  CHECK_EQ(rb->in[1].outcome, LP2P_REQRESP_IO);
  CHECK_EQ(rb->in[1].err, LP2P_ERR_RESET);
  /* the stalled app answers late: its channel only frees */
  REQUIRE(rb->n_held == 1);
  CHECK(!lp2p_reqresp_channel_open(rb->held[0]));
  CHECK_EQ(lp2p_reqresp_respond(rb->held[0], (const uint8_t *)"late", 4), LP2P_ERR_CLOSED);
  rb->n_held = 0;

  /* responder times out (300 ms): a (10 s) sees the reset */
  CHECK_OK(send_str(rb, &a.id, NULL, "stall", &id));
  CHECK(RUN_UNTIL(&L, rb->n_out_events == 1 && ra->n_in_events == 1, 5000));
  CHECK_EQ(ra->in[1].outcome, LP2P_REQRESP_TIMEOUT);
  CHECK_EQ(rb->out[id].outcome, LP2P_REQRESP_IO);
  CHECK_EQ(rb->out[id].err, LP2P_ERR_RESET);
  REQUIRE(ra->n_held == 1);
  lp2p_reqresp_channel_drop(ra->held[0]); /* frees only */
  ra->n_held = 0;
  CHECK_EQ(ra->n_dup + rb->n_dup, 0);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
  rapp_free(ra);
  rapp_free(rb);
}

TEST(rr_dial_failures_and_dial_in_flight) {
  tloop L;
  tloop_init(&L);
  tsw a, b, dead;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  CHECK_OK(tsw_init(&dead, &L, 3, NULL, 1));
  rapp *ra = rapp_add(&a, k_p1, 1, M_ECHO, NULL);
  rapp *rb = rapp_add(&b, k_p1, 1, M_ECHO, NULL);
  /* unknown peer: no address */
  uint64_t id;
  CHECK_OK(send_str(ra, &dead.id, NULL, "x", &id));
  CHECK(RUN_UNTIL(&L, ra->out[id].n == 1, 5000));
  CHECK_EQ(ra->out[id].outcome, LP2P_REQRESP_DIAL_FAILURE);
  CHECK_EQ(ra->out[id].err, LP2P_ERR_NOT_CONNECTED);
  /* a known address nobody listens on any more */
  char dead_addr[400];
  snprintf(dead_addr, sizeof dead_addr, "%s", dead.addr);
  lp2p_peer_id dead_id = dead.id;
  tsw_free(&dead);
  CHECK_OK(lp2p_swarm_add_address(a.sw, NULL, dead_addr));
  CHECK_OK(send_str(ra, &dead_id, NULL, "x", &id));
  CHECK(RUN_UNTIL(&L, ra->out[id].n == 1, 5000));
  CHECK_EQ(ra->out[id].outcome, LP2P_REQRESP_DIAL_FAILURE);
  CHECK_EQ(ra->out[id].err, LP2P_ERR_CONNREFUSED);

  /* dial in flight: the requests wait for it and ride the one connection */
  uint64_t dials = lp2p_swarm_dial_count(a.sw);
  tdial d = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, (const char *[]){b.addr}, 1, tdial_cb, &d));
  uint64_t ids[5];
  for (int i = 0; i < 5; i++) CHECK_OK(send_str(ra, &b.id, NULL, "early", &ids[i]));
  CHECK(!lp2p_swarm_is_connected(a.sw, &b.id));
  CHECK(RUN_UNTIL(&L, ra->n_out_events == 7, 5000));
  for (int i = 0; i < 5; i++) CHECK_EQ(ra->out[ids[i]].outcome, LP2P_REQRESP_RESPONSE);
  CHECK(d.done && d.err == 0);
  CHECK_EQ(lp2p_swarm_dial_count(a.sw) - dials, 1);
  CHECK_EQ(ra->n_dup + rb->n_dup, 0);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
  rapp_free(ra);
  rapp_free(rb);
}

/* The peer's swarm goes away in the middle of requests (both stalled in b's app). */
TEST(rr_connection_closed_by_swarm_free) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  rapp *ra = rapp_add(&a, k_p1, 1, M_ECHO, NULL);
  rapp *rb = rapp_add(&b, k_p1, 1, M_HOLD, NULL);
  REQUIRE(connect_pair(&L, &a, &b));
  uint64_t id1, id2;
  CHECK_OK(send_str(ra, &b.id, NULL, "one", &id1));
  CHECK_OK(send_str(ra, &b.id, NULL, "two", &id2));
  CHECK(RUN_UNTIL(&L, rb->n_requests == 2, 5000));
  tsw_free(&b); /* b's in-flight requests end at free */
  CHECK_EQ(rb->n_in_events, 2);
  CHECK_EQ(rb->n_in_by[LP2P_REQRESP_CONNECTION_CLOSED], 2);
  CHECK_EQ(rb->in[1].err, LP2P_ERR_CANCELED);
  /* the channels the app still holds only free */
  REQUIRE(rb->n_held == 2);
  CHECK_EQ(lp2p_reqresp_respond(rb->held[0], (const uint8_t *)"x", 1), LP2P_ERR_CLOSED);
  lp2p_reqresp_channel_drop(rb->held[1]);
  rb->n_held = 0;
  CHECK(RUN_UNTIL(&L, ra->n_out_events == 2, 5000));
  CHECK_EQ(ra->out[id1].outcome, LP2P_REQRESP_CONNECTION_CLOSED);
  CHECK_EQ(ra->out[id2].outcome, LP2P_REQRESP_CONNECTION_CLOSED);
  /* a's own swarm free ends its requests in flight, queued ones included */
  uint64_t ids[3];
  rapp *ra2 = ra;
  tsw c;
  CHECK_OK(tsw_init(&c, &L, 4, NULL, 1));
  rapp *rc = rapp_add(&c, k_p1, 1, M_HOLD, NULL);
  REQUIRE(connect_pair(&L, &a, &c));
  for (int i = 0; i < 3; i++) CHECK_OK(send_str(ra2, &c.id, NULL, "z", &ids[i]));
  CHECK(RUN_UNTIL(&L, rc->n_requests == 3, 5000));
  tsw_free(&a);
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(ra->out[ids[i]].n, 1);
    CHECK_EQ(ra->out[ids[i]].outcome, LP2P_REQRESP_CONNECTION_CLOSED);
    CHECK_EQ(ra->out[ids[i]].err, LP2P_ERR_CANCELED);
  }
  CHECK(RUN_UNTIL(&L, rc->n_in_events == 3, 5000));
  CHECK_EQ(rc->n_in_by[LP2P_REQRESP_CONNECTION_CLOSED], 3);
  CHECK_EQ(ra->n_dup + rb->n_dup + rc->n_dup, 0);
  tsw_free(&c);
  CHECK_EQ(tloop_finish(&L), 0);
  rapp_free(ra);
  rapp_free(rb);
  rapp_free(rc);
}

/* A real peer process, SIGKILLed while it holds our request. */
static void child_main(int addr_fd, int req_fd) {
  tloop L;
  tloop_init(&L);
  tsw b;
  if (tsw_init(&b, &L, 7, NULL, 1) < 0) _exit(2);
  rapp *rb = rapp_add(&b, k_p1, 1, M_HOLD, NULL);
  rb->pipe_fd = req_fd;
  if (write(addr_fd, b.addr, strlen(b.addr) + 1) < 0) _exit(3);
  close(addr_fd);
  for (;;) uv_run(&L.loop, UV_RUN_DEFAULT);
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  int *got = h->data;
  char c;
  if (read(h->io_watcher.fd, &c, 1) == 1) (*got)++;
}

TEST(rr_peer_process_killed) {
  int ap[2], rp[2];
  REQUIRE(pipe(ap) == 0 && pipe(rp) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(ap[0]);
    close(rp[0]);
    child_main(ap[1], rp[1]);
  }
  close(ap[1]);
  close(rp[1]);
  char addr[400] = {0};
  size_t got = 0;
  while (got < sizeof addr - 1) {
    ssize_t k = read(ap[0], addr + got, sizeof addr - 1 - got);
    if (k <= 0) break;
    got += (size_t)k;
    if (memchr(addr, 0, got)) break;
  }
  close(ap[0]);
  REQUIRE(strstr(addr, "/p2p/"));
  tloop L;
  tloop_init(&L);
  tsw a;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  rapp *ra = rapp_add(&a, k_p1, 1, M_ECHO, NULL);
  lp2p_peer_id bid;
  CHECK_OK(lp2p_peer_id_parse(strstr(addr, "/p2p/") + 5, &bid));
  CHECK_OK(lp2p_swarm_add_address(a.sw, NULL, addr));
  int nreq = 0;
  uv_poll_t poll;
  fcntl(rp[0], F_SETFL, O_NONBLOCK);
  uv_poll_init(&L.loop, &poll, rp[0]);
  poll.data = &nreq;
  uv_poll_start(&poll, UV_READABLE, poll_cb);
  uint64_t id;
  CHECK_OK(send_str(ra, &bid, NULL, "{\"hold\":1}", &id));
  CHECK(RUN_UNTIL(&L, nreq == 1, 5000)); /* the child's app holds it */
  CHECK_EQ(ra->n_out_events, 0);
  kill(pid, SIGKILL);
  CHECK(RUN_UNTIL(&L, ra->n_out_events == 1, 5000));
  CHECK_EQ(ra->out[id].outcome, LP2P_REQRESP_CONNECTION_CLOSED);
  CHECK(ra->out[id].err == LP2P_ERR_EOF || ra->out[id].err == LP2P_ERR_CONNRESET);
  int st;
  waitpid(pid, &st, 0);
  uv_close((uv_handle_t *)&poll, NULL);
  close(rp[0]);
  tsw_free(&a);
  CHECK_EQ(tloop_finish(&L), 0);
  rapp_free(ra);
}

static void two_inbound(lp2p_reqresp_config *c) { c->max_inbound_per_peer = 2; }

TEST(rr_inbound_limit_per_peer) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  rapp *ra = rapp_add(&a, k_p1, 1, M_ECHO, NULL);
  rapp *rb = rapp_add(&b, k_p1, 1, M_HOLD, two_inbound);
  REQUIRE(connect_pair(&L, &a, &b));
  uint64_t ids[6];
  for (int i = 0; i < 6; i++) CHECK_OK(send_str(ra, &b.id, NULL, "x", &ids[i]));
  CHECK(RUN_UNTIL(&L, rb->n_requests == 2 && ra->n_out_events == 4, 5000));
  CHECK_EQ(ra->n_out_by[LP2P_REQRESP_IO], 4);
  CHECK_EQ(rb->n_in_by[LP2P_REQRESP_IO], 4);
  /* answering the held two completes them */
  for (int i = 0; i < rb->n_held; i++) CHECK_OK(lp2p_reqresp_respond(rb->held[i], (const uint8_t *)"ok", 2));
  rb->n_held = 0;
  CHECK(RUN_UNTIL(&L, ra->n_out_events == 6 && rb->n_in_events == 6, 5000));
  CHECK_EQ(ra->n_out_by[LP2P_REQRESP_RESPONSE], 2);
  CHECK_EQ(rb->n_in_by[LP2P_REQRESP_RESPONSE], 2);
  CHECK_EQ(ra->n_dup + rb->n_dup, 0);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
  rapp_free(ra);
  rapp_free(rb);
}

TEST(rr_thousand_concurrent) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  rapp *ra = rapp_add(&a, k_p1, 1, M_ECHO, NULL);
  rapp *rb = rapp_add(&b, k_p1, 1, M_LATER, NULL);
  REQUIRE(connect_pair(&L, &a, &b));
  enum { N = 1000 };
  static uint64_t ids[N];
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < N; i++) CHECK_OK(send_str(ra, &b.id, NULL, "{\"n\":1}", &ids[i]));
  CHECK_EQ(lp2p_reqresp_pending_outbound(ra->rr), N);
  CHECK(RUN_UNTIL(&L, ra->n_out_events == N && rb->n_in_events == N, 60000));
  double ms = (double)(uv_hrtime() - t0) / 1e6;
  printf("  1000 concurrent requests (100 streams at a time, async answers): %.0f ms\n", ms);
  CHECK_EQ(ra->n_out_by[LP2P_REQRESP_RESPONSE], N);
  CHECK_EQ(rb->n_in_by[LP2P_REQRESP_RESPONSE], N);
  int ok = 0;
  for (int i = 0; i < N; i++) ok += ra->out[ids[i]].len > 3 && !memcmp(ra->out[ids[i]].data, "id:", 3);
  CHECK_EQ(ok, N);
  CHECK_EQ(lp2p_reqresp_pending_outbound(ra->rr), 0);
  CHECK_EQ(lp2p_reqresp_pending_inbound(rb->rr), 0);
  CHECK_EQ(ra->n_dup + rb->n_dup, 0);
  CHECK_EQ(a.n_closed, 0);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
  rapp_free(ra);
  rapp_free(rb);
}

TEST(rr_config_errors) {
  tloop L;
  tloop_init(&L);
  tsw a;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 0));
  lp2p_reqresp_config cfg;
  lp2p_reqresp_config_default(&cfg);
  CHECK_EQ(cfg.max_request_size, 1u << 20);
  CHECK_EQ(cfg.max_response_size, 10u << 20);
  CHECK_EQ(cfg.timeout_ms, 10000);
  CHECK_EQ(cfg.max_inbound_per_peer, 100);
  CHECK_EQ(lp2p_reqresp_add(a.sw, &cfg, NULL), LP2P_ERR_INVAL); /* no protocol, no handler */
  cfg.on_event = on_rr;
  cfg.protocols[0] = "no-slash";
  cfg.n_protocols = 1;
  CHECK_EQ(lp2p_reqresp_add(a.sw, &cfg, NULL), LP2P_ERR_INVAL);
  CHECK_STR(lp2p_reqresp_outcome_name(LP2P_REQRESP_RESPONSE_OMISSION), "response-omission");
  CHECK_STR(lp2p_reqresp_outcome_name((lp2p_reqresp_outcome)99), "unknown");
  tsw_free(&a);
  CHECK_EQ(tloop_finish(&L), 0);
}


static void kad_done(lp2p_kad *kad, const lp2p_kad_result *res, void *ud) {
  (void)kad;
  (void)res;
  ++*(int *)ud;
}

/* A request to a peer with no known address: the swarm asks its peer router, the Kademlia
 * behaviour, which finds the peer's addresses through the bootstrap node. */
TEST(rr_peer_without_address_found_through_dht) {
  tloop L;
  tloop_init(&L);
  tsw boot, a, b;
  CHECK_OK(tsw_init(&boot, &L, 9, NULL, 1));
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  lp2p_kad *kb = NULL, *ka = NULL, *kbb = NULL;
  /* identify tells the DHT nodes that the others speak kad (routing-table entries) */
  CHECK_OK(lp2p_identify_add(boot.sw, NULL, NULL));
  CHECK_OK(lp2p_identify_add(a.sw, NULL, NULL));
  CHECK_OK(lp2p_identify_add(b.sw, NULL, NULL));
  CHECK_OK(lp2p_kad_add(boot.sw, NULL, &kb));
  CHECK_OK(lp2p_kad_add(a.sw, NULL, &ka));
  CHECK_OK(lp2p_kad_add(b.sw, NULL, &kbb));
  rapp *ra = rapp_add(&a, k_p1, 1, M_ECHO, NULL);
  rapp *rb = rapp_add(&b, k_p1, 1, M_ECHO, NULL);
  CHECK_OK(lp2p_kad_add_bootstrap(kbb, boot.addr)); /* b is in boot's table */
  int done = 0;
  CHECK_OK(lp2p_kad_bootstrap(kbb, kad_done, &done, NULL));
  CHECK(RUN_UNTIL(&L, done == 1, 20000));
  CHECK_OK(lp2p_kad_add_bootstrap(ka, boot.addr)); /* a knows only boot */
  CHECK_OK(lp2p_kad_bootstrap(ka, kad_done, &done, NULL));
  CHECK(RUN_UNTIL(&L, done == 2, 20000));
  if (lp2p_swarm_is_connected(a.sw, &b.id)) {
    CHECK_OK(lp2p_swarm_disconnect(a.sw, &b.id));
    CHECK(RUN_UNTIL(&L, !lp2p_swarm_is_connected(a.sw, &b.id), 5000));
  }
  /* whatever a's bootstrap taught it about b is forgotten: only the router can find b now */
  lp2p_peerstore_remove_peer(lp2p_swarm_peerstore(a.sw), &b.id);
  CHECK_EQ(lp2p_swarm_peer_addresses(a.sw, &b.id, NULL, 0), 0);
  uint64_t id;
  CHECK_OK(send_str(ra, &b.id, NULL, "via the dht", &id));
  CHECK(RUN_UNTIL(&L, ra->out[id].n == 1, 20000));
  CHECK_EQ(ra->out[id].outcome, LP2P_REQRESP_RESPONSE);
  CHECK(ra->out[id].len == 14 && !memcmp(ra->out[id].data, "re:via the dht", 14));
  tsw_free(&a);
  tsw_free(&b);
  tsw_free(&boot);
  CHECK_EQ(tloop_finish(&L), 0);
  rapp_free(ra);
  rapp_free(rb);
}

int main(void) {
  RUN(rr_round_trip_and_omission);
  RUN(rr_unsupported_and_protocol_choice);
  RUN(rr_too_large);
  RUN(rr_bodies_charged_to_resource_manager);
  RUN(rr_timeouts);
  RUN(rr_dial_failures_and_dial_in_flight);
  RUN(rr_connection_closed_by_swarm_free);
  RUN(rr_peer_process_killed);
  RUN(rr_inbound_limit_per_peer);
  RUN(rr_thousand_concurrent);
  RUN(rr_config_errors);
  RUN(rr_peer_without_address_found_through_dht);
  return test_done();
}
