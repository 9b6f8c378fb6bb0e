/* test_swarm_peerstore.c - the peer store, behaviour events and connection
 * gating inside real swarms over loopback: lp2p_swarm_emit (deferred,
 * deep-copied, ordered), lp2p_swarm_post2's drop function, allow_inbound /
 * allow_stream, identify filling the store and raising PEER_IDENTIFIED once
 * (and again after a push with a change), ping's latency, external addresses
 * (configured, observed by 2 peers, TCP outbound rule), dialing from the store. */
#include <stdlib.h>
#include <string.h>

#include "lp2p/identify.h"
#include "lp2p/peerstore.h"
#include "lp2p/ping.h"
#include "swarm_harness.h"
#include "test.h"

/* ---- an observer behaviour: records every event with its content ---- */
typedef struct seen_ev {
  lp2p_swarm_event_type type;
  lp2p_peer_id peer;
  int err;
  lp2p_addr_source source;
  size_t n_addrs, n_protocols;
  char addr[128], first_addr[128], first_proto[64], agent[64];
  int app_seen; /* the app handler saw it after the behaviour */
} seen_ev;

typedef struct observer {
  seen_ev ev[128];
  int n;
  int in_cb; /* an event callback is running (nesting check) */
  int nested;
  int app_n;
} observer;

static void obs_on_event(void *self, lp2p_swarm *sw, const lp2p_swarm_event *e) {
  observer *o = self;
  (void)sw;
  if (o->in_cb) o->nested = 1;
  if (o->n >= 128) return;
  seen_ev *s = &o->ev[o->n++];
  memset(s, 0, sizeof *s);
  s->type = e->type;
  if (e->peer) s->peer = *e->peer;
  s->err = e->err;
  s->source = e->source;
  s->n_addrs = e->n_addrs;
  s->n_protocols = e->n_protocols;
  if (e->addr) lp2p_multiaddr_to_string(e->addr, s->addr, sizeof s->addr);
  if (e->n_addrs) lp2p_multiaddr_to_string(e->addrs[0], s->first_addr, sizeof s->first_addr);
  if (e->n_protocols) snprintf(s->first_proto, sizeof s->first_proto, "%s", e->protocols[0]);
  if (e->agent) snprintf(s->agent, sizeof s->agent, "%s", e->agent);
}

static const lp2p_behaviour_vtable obs_vt = {
    .struct_size = sizeof(lp2p_behaviour_vtable),
    .name = "observer",
    .on_event = obs_on_event,
};

static int count(const observer *o, lp2p_swarm_event_type t) {
  int k = 0;
  for (int i = 0; i < o->n; i++) k += o->ev[i].type == t;
  return k;
}

static const seen_ev *last_of(const observer *o, lp2p_swarm_event_type t) {
  for (int i = o->n; i-- > 0;)
    if (o->ev[i].type == t) return &o->ev[i];
  return NULL;
}

static lp2p_multiaddr *ma(const char *t) {
  lp2p_multiaddr *m = NULL;
  if (lp2p_multiaddr_parse(&m, t, NULL, 0) < 0) abort();
  return m;
}

/* ---- lp2p_swarm_emit ---- */

typedef struct emit_ctx {
  lp2p_swarm *sw;
  observer *o;
  int seen_during; /* events observed while the emitting callback still ran */
  int rv1, rv2;
  int done;
} emit_ctx;

static void emit_from_post(lp2p_swarm *sw, void *arg) {
  emit_ctx *c = arg;
  lp2p_multiaddr *a1 = ma("/ip4/192.168.7.7/tcp/77");
  char proto[32] = "/demo/1.0.0", agent[32] = "demo-agent";
  const char *protos[] = {proto};
  const lp2p_multiaddr *addrs[] = {a1};
  lp2p_peer_id p;
  memset(&p, 0, sizeof p);
  p = *lp2p_swarm_local_peer(sw);
  lp2p_swarm_event ev;
  memset(&ev, 0, sizeof ev);
  ev.struct_size = sizeof ev;
  ev.type = LP2P_SWARM_EV_PEER_DISCOVERED;
  ev.peer = &p;
  ev.addrs = addrs;
  ev.n_addrs = 1;
  ev.source = LP2P_ADDR_SRC_OTHER;
  ev.protocols = protos;
  ev.n_protocols = 1;
  ev.agent = agent;
  c->rv1 = lp2p_swarm_emit(sw, &ev);
  ev.type = LP2P_SWARM_EV_PEER_EXPIRED;
  c->rv2 = lp2p_swarm_emit(sw, &ev);
  /* the copies are independent of our buffers */
  lp2p_multiaddr_free(a1);
  memset(proto, 'x', sizeof proto - 1);
  memset(agent, 'y', sizeof agent - 1);
  memset(&p, 0, sizeof p);
  c->seen_during = c->o->n;
  c->done = 1;
}

/* an old-sized event (struct_size up to n_dial_errors) is accepted */
typedef struct old_event {
  size_t struct_size;
  lp2p_swarm_event_type type;
  const lp2p_peer_id *peer;
  const lp2p_multiaddr *addr;
  lp2p_direction dir;
  uint64_t conn_id;
  int err;
  const lp2p_dial_error *dial_errors;
  size_t n_dial_errors;
} old_event;

TEST(emit_is_deferred_copied_and_ordered) {
  tloop L;
  tloop_init(&L);
  tsw a;
  REQUIRE(tsw_init(&a, &L, 1, NULL, 0) == 0);
  observer *o = calloc(1, sizeof *o);
  CHECK_OK(lp2p_swarm_add_behaviour(a.sw, &obs_vt, o));
  emit_ctx c = {a.sw, o, -1, -1, -1, 0};
  CHECK_OK(lp2p_swarm_post(a.sw, emit_from_post, &c));
  CHECK(RUN_UNTIL(&L, o->n >= 2, 2000));
  CHECK_EQ(c.rv1, 0);
  CHECK_EQ(c.rv2, 0);
  CHECK_EQ(c.seen_during, 0); /* nothing delivered from inside lp2p_swarm_emit */
  REQUIRE(o->n == 2);
  CHECK_EQ(o->ev[0].type, LP2P_SWARM_EV_PEER_DISCOVERED);
  CHECK_EQ(o->ev[1].type, LP2P_SWARM_EV_PEER_EXPIRED);
  CHECK(lp2p_peer_id_equal(&o->ev[0].peer, &a.id));
  CHECK_STR(o->ev[0].first_addr, "/ip4/192.168.7.7/tcp/77");
  CHECK_STR(o->ev[0].first_proto, "/demo/1.0.0");
  CHECK_STR(o->ev[0].agent, "demo-agent");
  CHECK_EQ(o->ev[0].source, LP2P_ADDR_SRC_OTHER);
  CHECK(!o->nested);
  /* the app handler got them too, after the behaviour, in the same order */
  CHECK_EQ(a.n_events, 2);
  CHECK_EQ(a.events[0], LP2P_SWARM_EV_PEER_DISCOVERED);
  CHECK_EQ(a.events[1], LP2P_SWARM_EV_PEER_EXPIRED);
  /* outside any callback: delivered soon, not from inside the call */
  old_event oe;
  memset(&oe, 0, sizeof oe);
  oe.struct_size = sizeof oe;
  oe.type = LP2P_SWARM_EV_EXTERNAL_ADDR_EXPIRED;
  CHECK_OK(lp2p_swarm_emit(a.sw, (const lp2p_swarm_event *)&oe));
  CHECK_EQ(o->n, 2);
  CHECK(RUN_UNTIL(&L, o->n == 3, 2000));
  CHECK_EQ(o->ev[2].type, LP2P_SWARM_EV_EXTERNAL_ADDR_EXPIRED);
  oe.struct_size = 8;
  CHECK_EQ(lp2p_swarm_emit(a.sw, (const lp2p_swarm_event *)&oe), LP2P_ERR_INVAL);
  CHECK_STR(lp2p_swarm_event_name(LP2P_SWARM_EV_PEER_IDENTIFIED), "peer-identified");
  CHECK_STR(lp2p_swarm_event_name(LP2P_SWARM_EV_PEER_DISCOVERED), "peer-discovered");
  CHECK_STR(lp2p_swarm_event_name(LP2P_SWARM_EV_PEER_EXPIRED), "peer-expired");
  CHECK_STR(lp2p_swarm_event_name(LP2P_SWARM_EV_EXTERNAL_ADDR_CONFIRMED), "external-addr-confirmed");
  CHECK_STR(lp2p_swarm_event_name(LP2P_SWARM_EV_EXTERNAL_ADDR_EXPIRED), "external-addr-expired");
  /* an event still queued when the swarm is freed is released (ASan: no leak), never delivered */
  int before = o->n;
  oe.struct_size = sizeof oe;
  CHECK_OK(lp2p_swarm_emit(a.sw, (const lp2p_swarm_event *)&oe));
  tsw_free(&a);
  CHECK_EQ(o->n, before);
  free(o);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---- post2 ---- */

static int g_ran, g_dropped;
static void p2_fn(lp2p_swarm *sw, void *arg) {
  (void)sw;
  g_ran++;
  free(arg);
}
static void p2_drop(void *arg) {
  g_dropped++;
  free(arg);
}

TEST(post2_drop_frees_argument) {
  tloop L;
  tloop_init(&L);
  tsw a;
  REQUIRE(tsw_init(&a, &L, 2, NULL, 0) == 0);
  g_ran = g_dropped = 0;
  CHECK_OK(lp2p_swarm_post2(a.sw, p2_fn, malloc(16), p2_drop));
  CHECK(RUN_UNTIL(&L, g_ran == 1, 2000));
  CHECK_EQ(g_dropped, 0);
  /* queued but never run: dropped at free, the argument released */
  CHECK_OK(lp2p_swarm_post2(a.sw, p2_fn, malloc(16), p2_drop));
  CHECK_OK(lp2p_swarm_post2(a.sw, p2_fn, malloc(16), p2_drop));
  CHECK_OK(lp2p_swarm_post(a.sw, p2_fn, NULL)); /* plain post: dropped silently (free(NULL) never runs) */
  tsw_free(&a);
  CHECK_EQ(g_ran, 1);
  CHECK_EQ(g_dropped, 2);
  /* refused (bad arguments): drop_fn runs at once */
  CHECK_EQ(lp2p_swarm_post2(NULL, p2_fn, malloc(16), p2_drop), LP2P_ERR_INVAL);
  CHECK_EQ(g_dropped, 3);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---- gating ---- */

typedef struct gate {
  lp2p_peer_id deny_peer; /* allow_inbound refuses it */
  const char *deny_proto; /* allow_stream refuses it (any peer) */
  int inbound_calls, stream_calls;
} gate;

static int gate_inbound(void *self, lp2p_swarm *sw, const lp2p_peer_id *peer, const lp2p_multiaddr *remote) {
  gate *g = self;
  (void)sw;
  g->inbound_calls++;
  if (!remote) return 0;
  return !(g->deny_peer.len && lp2p_peer_id_equal(peer, &g->deny_peer));
}

static int gate_stream(void *self, lp2p_swarm *sw, const lp2p_peer_id *peer, const char *protocol) {
  gate *g = self;
  (void)sw;
  (void)peer;
  g->stream_calls++;
  return !(g->deny_proto && !strcmp(protocol, g->deny_proto));
}

static const lp2p_behaviour_vtable gate_vt = {
    .struct_size = sizeof(lp2p_behaviour_vtable),
    .name = "gate",
    .allow_inbound = gate_inbound,
    .allow_stream = gate_stream,
};

TEST(gating_inbound_connection) {
  tloop L;
  tloop_init(&L);
  tsw a, b, c;
  REQUIRE(tsw_init(&b, &L, 3, NULL, 1) == 0);
  REQUIRE(tsw_init(&a, &L, 4, NULL, 0) == 0);
  REQUIRE(tsw_init(&c, &L, 5, NULL, 0) == 0);
  gate g;
  memset(&g, 0, sizeof g);
  g.deny_peer = a.id;
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &gate_vt, &g));
  tdial da, dc;
  memset(&da, 0, sizeof da);
  memset(&dc, 0, sizeof dc);
  const char *addrs[] = {b.addr};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, addrs, 1, tdial_cb, &da));
  /* (Noise XX: the dialer may consider the connection up before the listener has read its last
   * message; it then sees it closed at once) */
  CHECK(RUN_UNTIL(&L, da.done && b.n_in_conn_failed == 1 && !lp2p_swarm_is_connected(a.sw, &b.id), 5000));
  CHECK_EQ(b.last_in_conn_err, LP2P_ERR_DENIED);
  CHECK_EQ(b.n_established, 0);
  CHECK_EQ(g.inbound_calls, 1);
  /* another peer is let in */
  CHECK_OK(lp2p_swarm_dial(c.sw, NULL, addrs, 1, tdial_cb, &dc));
  CHECK(RUN_UNTIL(&L, dc.done && b.n_established == 1, 5000));
  CHECK_EQ(dc.err, 0);
  CHECK_EQ(g.inbound_calls, 2);
  CHECK_STR(lp2p_strerror(LP2P_ERR_DENIED), "denied by policy (connection gating)");
  tsw_free(&a);
  tsw_free(&c);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

TEST(gating_inbound_stream) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  REQUIRE(tsw_init(&b, &L, 6, NULL, 1) == 0);
  REQUIRE(tsw_init(&a, &L, 7, NULL, 0) == 0);
  techo eb;
  memset(&eb, 0, sizeof eb);
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  gate g;
  memset(&g, 0, sizeof g);
  g.deny_proto = TECHO_PROTO;
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &gate_vt, &g));
  CHECK_OK(lp2p_swarm_add_address(a.sw, NULL, b.addr));
  tclient cl;
  tclient_init(&cl, 100, 1);
  const char *protos[] = {TECHO_PROTO};
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, protos, 1, &tclient_handler, &cl, NULL));
  CHECK(RUN_UNTIL(&L, cl.closed && b.n_in_stream_failed == 1, 5000));
  CHECK(!cl.opened);
  CHECK_EQ(cl.close_err, LP2P_ERR_UNSUPPORTED); /* answered "na" like an unknown protocol */
  CHECK_EQ(b.last_in_stream_err, LP2P_ERR_DENIED);
  CHECK_EQ(eb.opened, 0); /* the handler never saw it */
  CHECK(g.stream_calls >= 1);
  /* allowed again: the same protocol works */
  g.deny_proto = NULL;
  tclient cl2;
  tclient_init(&cl2, 100, 2);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, protos, 1, &tclient_handler, &cl2, NULL));
  CHECK(RUN_UNTIL(&L, cl2.closed, 5000));
  CHECK(cl2.opened);
  CHECK_EQ(cl2.close_err, 0);
  CHECK_EQ(cl2.received, 100);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---- identify fills the store ---- */

typedef struct idc {
  int identified, pushes, failed;
} idc;

static void on_id(lp2p_identify *id, const lp2p_identify_event *ev, void *ud) {
  idc *c = ud;
  (void)id;
  if (ev->type == LP2P_IDENTIFY_EV_IDENTIFIED) c->identified++;
  if (ev->type == LP2P_IDENTIFY_EV_PUSH_RECEIVED) c->pushes++;
  if (ev->type == LP2P_IDENTIFY_EV_FAILED) c->failed++;
}

static void noop_open(lp2p_stream *s, const char *p, void *ud) {
  (void)p;
  (void)ud;
  lp2p_stream_reset(s);
}
static const lp2p_stream_handler noop_handler = {sizeof(lp2p_stream_handler), noop_open, NULL, NULL, NULL, NULL};

typedef struct pingc {
  int done, err;
  uint64_t rtt;
} pingc;
static void on_ping(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, uint64_t rtt, void *ud) {
  pingc *p = ud;
  (void)sw;
  (void)peer;
  p->done = 1;
  p->err = err;
  p->rtt = rtt;
}

TEST(identify_fills_store_and_raises_peer_identified) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  lp2p_swarm_config cfg;
  tsw_config(&cfg);
  cfg.agent_version = "agent-b/1";
  REQUIRE(tsw_init(&b, &L, 8, &cfg, 1) == 0);
  CHECK_OK(lp2p_swarm_listen(b.sw, "/ip4/127.0.0.1/tcp/0")); /* a second address: learned from identify only */
  REQUIRE(tsw_init(&a, &L, 9, NULL, 0) == 0);
  observer *o = calloc(1, sizeof *o);
  CHECK_OK(lp2p_swarm_add_behaviour(a.sw, &obs_vt, o));
  idc ca = {0, 0, 0}, cb = {0, 0, 0};
  lp2p_identify_config ic;
  lp2p_identify_config_default(&ic);
  ic.push_check_ms = 50;
  ic.on_event = on_id;
  ic.ud = &ca;
  CHECK_OK(lp2p_identify_add(a.sw, &ic, NULL));
  ic.ud = &cb;
  CHECK_OK(lp2p_identify_add(b.sw, &ic, NULL));
  CHECK_OK(lp2p_ping_add(a.sw, NULL, NULL));
  CHECK_OK(lp2p_ping_add(b.sw, NULL, NULL));
  const char *addrs[] = {b.addr};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, addrs, 1, NULL, NULL));
  CHECK(RUN_UNTIL(&L, count(o, LP2P_SWARM_EV_PEER_IDENTIFIED) == 1, 5000));
  CHECK_EQ(ca.identified, 1);
  const seen_ev *e = last_of(o, LP2P_SWARM_EV_PEER_IDENTIFIED);
  REQUIRE(e);
  CHECK(lp2p_peer_id_equal(&e->peer, &b.id));
  CHECK_STR(e->agent, "agent-b/1");
  CHECK_EQ(e->n_addrs, 2);
  CHECK(e->n_protocols >= 3);
  /* after CONN_ESTABLISHED */
  int i_est = -1, i_id = -1;
  for (int i = 0; i < o->n; i++) {
    if (o->ev[i].type == LP2P_SWARM_EV_CONN_ESTABLISHED && i_est < 0) i_est = i;
    if (o->ev[i].type == LP2P_SWARM_EV_PEER_IDENTIFIED && i_id < 0) i_id = i;
  }
  CHECK(i_est >= 0 && i_est < i_id);

  lp2p_peerstore *ps = lp2p_swarm_peerstore(a.sw);
  CHECK_EQ(lp2p_peerstore_supports(ps, &b.id, LP2P_PING_PROTOCOL_ID), 1);
  CHECK_EQ(lp2p_peerstore_supports(ps, &b.id, LP2P_IDENTIFY_PUSH_PROTOCOL_ID), 1);
  CHECK_STR(lp2p_peerstore_agent(ps, &b.id), "agent-b/1");
  lp2p_pubkey *pk = NULL;
  CHECK_OK(lp2p_peerstore_pubkey(ps, &b.id, &pk));
  lp2p_pubkey_free(pk);
  CHECK(lp2p_peerstore_last_seen(ps, &b.id) > 0);
  lp2p_peer_addr pa[8];
  size_t n = lp2p_peerstore_addrs(ps, &b.id, LP2P_MA_SCOPE_ANY, pa, 8);
  CHECK_EQ(n, 2);
  int dialed = 0, identified = 0;
  for (size_t i = 0; i < n && i < 8; i++) {
    dialed += pa[i].source == LP2P_ADDR_SRC_DIALED;
    identified += pa[i].source == LP2P_ADDR_SRC_IDENTIFY;
    CHECK_EQ(pa[i].scope, LP2P_MA_SCOPE_LOOPBACK);
  }
  CHECK_EQ(dialed, 1);
  CHECK_EQ(identified, 1);
  CHECK_EQ(lp2p_peerstore_addrs(ps, &b.id, LP2P_MA_SCOPE_PUBLIC, NULL, 0), 0);
  /* the old accessor still works */
  const lp2p_multiaddr *old[4];
  CHECK_EQ(lp2p_swarm_peer_addresses(a.sw, &b.id, old, 4), 2);

  /* identify again, nothing changed: no second PEER_IDENTIFIED */
  CHECK_OK(lp2p_identify_request(lp2p_identify_get(a.sw), &b.id));
  CHECK(RUN_UNTIL(&L, ca.identified == 2, 5000));
  CHECK_EQ(count(o, LP2P_SWARM_EV_PEER_IDENTIFIED), 1);

  /* ping fills the latency */
  pingc pc = {0, 0, 0};
  CHECK_OK(lp2p_ping(a.sw, &b.id, on_ping, &pc));
  CHECK(RUN_UNTIL(&L, pc.done, 5000));
  CHECK_EQ(pc.err, 0);
  uint64_t rtt = 0;
  CHECK_OK(lp2p_peerstore_latency(ps, &b.id, &rtt));
  CHECK_EQ(rtt, pc.rtt);

  /* B gains a protocol: its push changes what A knows -> PEER_IDENTIFIED again */
  CHECK_OK(lp2p_swarm_set_protocol(b.sw, "/new/1.0.0", &noop_handler, NULL));
  CHECK(RUN_UNTIL(&L, count(o, LP2P_SWARM_EV_PEER_IDENTIFIED) == 2, 5000));
  CHECK_EQ(ca.pushes, 1);
  CHECK_EQ(lp2p_peerstore_supports(ps, &b.id, "/new/1.0.0"), 1);
  CHECK_EQ(ca.failed, 0);
  tsw_free(&a);
  tsw_free(&b);
  free(o);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---- external addresses ---- */

TEST(external_addresses) {
  tloop L;
  tloop_init(&L);
  tsw a;
  REQUIRE(tsw_init(&a, &L, 10, NULL, 1) == 0);
  observer *o = calloc(1, sizeof *o);
  CHECK_OK(lp2p_swarm_add_behaviour(a.sw, &obs_vt, o));
  /* configured: confirmed at once */
  lp2p_multiaddr *cfgd = ma("/ip4/203.0.113.1/tcp/4001"), *bad = ma("/ip4/0.0.0.0/tcp/4001"),
                 *bad2 = ma("/ip4/203.0.113.1/tcp/0");
  CHECK_OK(lp2p_swarm_add_external_addr(a.sw, cfgd));
  CHECK_EQ(lp2p_swarm_add_external_addr(a.sw, bad), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_swarm_add_external_addr(a.sw, bad2), LP2P_ERR_INVAL);
  CHECK(RUN_UNTIL(&L, count(o, LP2P_SWARM_EV_EXTERNAL_ADDR_CONFIRMED) == 1, 2000));
  CHECK_STR(last_of(o, LP2P_SWARM_EV_EXTERNAL_ADDR_CONFIRMED)->addr, "/ip4/203.0.113.1/tcp/4001");
  const lp2p_multiaddr *list[8];
  CHECK_EQ(lp2p_swarm_external_addrs(a.sw, list, 8), 1);

  /* observed on inbound connections: 2 distinct peers from distinct /24s confirm */
  lp2p_peer_id p1, p2, p3;
  {
    tsw t1, t2, t3;
    REQUIRE(tsw_init(&t1, &L, 11, NULL, 0) == 0);
    REQUIRE(tsw_init(&t2, &L, 12, NULL, 0) == 0);
    REQUIRE(tsw_init(&t3, &L, 13, NULL, 0) == 0);
    p1 = t1.id;
    p2 = t2.id;
    p3 = t3.id;
    tsw_free(&t1);
    tsw_free(&t2);
    tsw_free(&t3);
  }
  lp2p_multiaddr *obs = ma("/ip4/198.51.100.9/tcp/4001");
  lp2p_multiaddr *r1 = ma("/ip4/8.8.8.1/tcp/5555"), *r1b = ma("/ip4/8.8.8.2/tcp/5555"),
                 *r2 = ma("/ip4/9.9.9.9/tcp/5555");
  CHECK_OK(lp2p_swarm_observed_addr(a.sw, &p1, LP2P_DIR_INBOUND, r1, obs));
  CHECK_OK(lp2p_swarm_observed_addr(a.sw, &p1, LP2P_DIR_INBOUND, r1, obs)); /* same peer twice */
  CHECK_OK(lp2p_swarm_observed_addr(a.sw, &p2, LP2P_DIR_INBOUND, r1b, obs)); /* same /24 */
  CHECK_EQ(lp2p_swarm_external_addrs(a.sw, NULL, 0), 1);
  CHECK_OK(lp2p_swarm_observed_addr(a.sw, &p3, LP2P_DIR_INBOUND, r2, obs));
  CHECK_EQ(lp2p_swarm_external_addrs(a.sw, NULL, 0), 2);
  CHECK(RUN_UNTIL(&L, count(o, LP2P_SWARM_EV_EXTERNAL_ADDR_CONFIRMED) == 2, 2000));
  CHECK_STR(last_of(o, LP2P_SWARM_EV_EXTERNAL_ADDR_CONFIRMED)->addr, "/ip4/198.51.100.9/tcp/4001");
  /* never a candidate: unspecified, port 0 */
  lp2p_multiaddr *z = ma("/ip4/0.0.0.0/tcp/1");
  CHECK_EQ(lp2p_swarm_observed_addr(a.sw, &p1, LP2P_DIR_INBOUND, r1, z), LP2P_ERR_INVAL);
  /* outbound TCP: the observed port is ephemeral; the IP with our listen port is what gets voted */
  lp2p_multiaddr *eph = ma("/ip4/198.51.100.77/tcp/61234");
  CHECK_OK(lp2p_swarm_observed_addr(a.sw, &p1, LP2P_DIR_OUTBOUND, r1, eph));
  CHECK_OK(lp2p_swarm_observed_addr(a.sw, &p3, LP2P_DIR_OUTBOUND, r2, eph));
  CHECK_EQ(lp2p_swarm_external_addrs(a.sw, list, 8), 3);
  char want[128], got[128] = "";
  snprintf(want, sizeof want, "/ip4/198.51.100.77/tcp/%d", tsw_port(&a));
  for (size_t i = 0; i < 3; i++) {
    char t[128];
    lp2p_multiaddr_to_string(list[i], t, sizeof t);
    if (strstr(t, "198.51.100.77")) snprintf(got, sizeof got, "%s", t);
  }
  CHECK_STR(got, want);
  /* removal */
  CHECK_OK(lp2p_swarm_remove_external_addr(a.sw, cfgd));
  CHECK_EQ(lp2p_swarm_remove_external_addr(a.sw, cfgd), LP2P_ERR_NOT_FOUND);
  CHECK(RUN_UNTIL(&L, count(o, LP2P_SWARM_EV_EXTERNAL_ADDR_EXPIRED) == 1, 2000));
  CHECK_EQ(lp2p_swarm_external_addrs(a.sw, NULL, 0), 2);
  lp2p_multiaddr *all[] = {cfgd, bad, bad2, obs, r1, r1b, r2, z, eph};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lp2p_multiaddr_free(all[i]);
  tsw_free(&a);
  free(o);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* identify's observed addresses: two peers dialing us confirm our listen address */
TEST(external_address_from_identify) {
  tloop L;
  tloop_init(&L);
  tsw a, b, c;
  REQUIRE(tsw_init(&a, &L, 14, NULL, 1) == 0);
  REQUIRE(tsw_init(&b, &L, 15, NULL, 0) == 0);
  REQUIRE(tsw_init(&c, &L, 16, NULL, 0) == 0);
  observer *o = calloc(1, sizeof *o);
  CHECK_OK(lp2p_swarm_add_behaviour(a.sw, &obs_vt, o));
  CHECK_OK(lp2p_identify_add(a.sw, NULL, NULL));
  CHECK_OK(lp2p_identify_add(b.sw, NULL, NULL));
  CHECK_OK(lp2p_identify_add(c.sw, NULL, NULL));
  const char *addrs[] = {a.addr};
  CHECK_OK(lp2p_swarm_dial(b.sw, NULL, addrs, 1, NULL, NULL));
  CHECK(RUN_UNTIL(&L, count(o, LP2P_SWARM_EV_PEER_IDENTIFIED) == 1, 5000));
  CHECK_EQ(lp2p_swarm_external_addrs(a.sw, NULL, 0), 0); /* one peer is not enough */
  CHECK_OK(lp2p_swarm_dial(c.sw, NULL, addrs, 1, NULL, NULL));
  CHECK(RUN_UNTIL(&L, count(o, LP2P_SWARM_EV_EXTERNAL_ADDR_CONFIRMED) == 1, 5000));
  CHECK_STR(last_of(o, LP2P_SWARM_EV_EXTERNAL_ADDR_CONFIRMED)->addr, a.base_addr);
  tsw_free(&b);
  tsw_free(&c);
  tsw_free(&a);
  free(o);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---- discovery sources through the swarm, and dialing from the store ---- */

TEST(discovered_peer_is_dialable) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  REQUIRE(tsw_init(&b, &L, 17, NULL, 1) == 0);
  REQUIRE(tsw_init(&a, &L, 18, NULL, 0) == 0);
  observer *o = calloc(1, sizeof *o);
  CHECK_OK(lp2p_swarm_add_behaviour(a.sw, &obs_vt, o));
  techo eb;
  memset(&eb, 0, sizeof eb);
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  lp2p_multiaddr *m = ma(b.base_addr), *m2 = ma("/ip4/192.168.77.1/tcp/9");
  const lp2p_multiaddr *two[] = {m, m2};
  CHECK_EQ(lp2p_peerstore_add_addrs(lp2p_swarm_peerstore(a.sw), &b.id, two, 2, LP2P_ADDR_SRC_MDNS, 60000), 2);
  CHECK_EQ(o->n, 0); /* deferred */
  CHECK(RUN_UNTIL(&L, count(o, LP2P_SWARM_EV_PEER_DISCOVERED) == 1, 2000));
  CHECK_EQ(last_of(o, LP2P_SWARM_EV_PEER_DISCOVERED)->source, LP2P_ADDR_SRC_MDNS);
  CHECK_STR(last_of(o, LP2P_SWARM_EV_PEER_DISCOVERED)->first_addr, b.base_addr);
  tclient cl;
  tclient_init(&cl, 64, 3);
  const char *protos[] = {TECHO_PROTO};
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, protos, 1, &tclient_handler, &cl, NULL));
  CHECK(RUN_UNTIL(&L, cl.closed, 5000));
  CHECK_EQ(cl.close_err, 0);
  CHECK_EQ(cl.received, 64);
  /* the dialed one is now DIALED (permanent, no longer a discovery address); removing the other,
   * the last discovery address: PEER_EXPIRED */
  lp2p_peer_addr pa[4];
  CHECK_EQ(lp2p_peerstore_addrs(lp2p_swarm_peerstore(a.sw), &b.id, LP2P_MA_SCOPE_ANY, pa, 4), 2);
  CHECK_EQ(pa[0].source, LP2P_ADDR_SRC_DIALED);
  CHECK_EQ(pa[0].expires, LP2P_TSTAMP_NEVER);
  CHECK_EQ(pa[1].source, LP2P_ADDR_SRC_MDNS);
  CHECK_EQ(count(o, LP2P_SWARM_EV_PEER_EXPIRED), 0);
  CHECK_OK(lp2p_peerstore_remove_addr(lp2p_swarm_peerstore(a.sw), &b.id, m2));
  CHECK(RUN_UNTIL(&L, count(o, LP2P_SWARM_EV_PEER_EXPIRED) == 1, 2000));
  lp2p_multiaddr_free(m);
  lp2p_multiaddr_free(m2);
  tsw_free(&a);
  tsw_free(&b);
  free(o);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---- the swarm drives expiry (timer) and persistence (deferred saves) ---- */

typedef struct pdb {
  int loads, saves, removes;
  int saving_inside; /* a save arrived while our add call was still running */
  int in_call;
  size_t last_n_addrs;
} pdb;

static int pdb_load(void *ud, lp2p_peerstore *ps) {
  (void)ps;
  ((pdb *)ud)->loads++;
  return 0;
}
static void pdb_save(void *ud, const lp2p_peerstore_snapshot *snap) {
  pdb *d = ud;
  d->saves++;
  if (d->in_call) d->saving_inside = 1;
  d->last_n_addrs = snap->n_addrs;
}
static void pdb_remove(void *ud, const lp2p_peer_id *peer) {
  (void)peer;
  ((pdb *)ud)->removes++;
}

TEST(swarm_expires_and_persists) {
  tloop L;
  tloop_init(&L);
  tsw a;
  REQUIRE(tsw_init(&a, &L, 19, NULL, 0) == 0);
  observer *o = calloc(1, sizeof *o);
  CHECK_OK(lp2p_swarm_add_behaviour(a.sw, &obs_vt, o));
  lp2p_peerstore *ps = lp2p_swarm_peerstore(a.sw);
  pdb d = {0, 0, 0, 0, 0, 0};
  lp2p_peerstore_persist pv = {sizeof pv, pdb_load, pdb_save, pdb_remove, &d};
  CHECK_OK(lp2p_peerstore_set_persist(ps, &pv));
  CHECK_EQ(d.loads, 1);
  lp2p_peer_id other;
  {
    tsw t;
    REQUIRE(tsw_init(&t, &L, 20, NULL, 0) == 0);
    other = t.id;
    tsw_free(&t);
  }
  lp2p_multiaddr *perm = ma("/ip4/203.0.113.9/tcp/1"), *brief = ma("/ip4/192.168.3.3/tcp/1");
  d.in_call = 1;
  CHECK_EQ(lp2p_peerstore_add_addrs(ps, &other, (const lp2p_multiaddr *const[]){perm}, 1, LP2P_ADDR_SRC_USER, 0), 1);
  CHECK_EQ(lp2p_peerstore_add_addrs(ps, &other, (const lp2p_multiaddr *const[]){brief}, 1, LP2P_ADDR_SRC_MDNS, 60),
           1);
  d.in_call = 0;
  CHECK_EQ(d.saves, 0);
  /* one batched save after the calls; the 60 ms address is not worth saving */
  CHECK(RUN_UNTIL(&L, d.saves == 1, 2000));
  CHECK(!d.saving_inside);
  CHECK_EQ(d.last_n_addrs, 1);
  /* the swarm's timer expires the mDNS address: PEER_EXPIRED, and it is gone */
  CHECK(RUN_UNTIL(&L, count(o, LP2P_SWARM_EV_PEER_EXPIRED) == 1, 3000));
  CHECK_EQ(lp2p_peerstore_addrs(ps, &other, LP2P_MA_SCOPE_ANY, NULL, 0), 1);
  CHECK_EQ(lp2p_peerstore_addrs(ps, &other, LP2P_MA_SCOPE_LAN, NULL, 0), 0);
  CHECK_EQ(count(o, LP2P_SWARM_EV_PEER_DISCOVERED), 1);
  CHECK_OK(lp2p_peerstore_remove_peer(ps, &other));
  CHECK_EQ(d.removes, 1);
  CHECK_EQ(lp2p_peerstore_peers(ps, NULL, 0), 0);
  lp2p_multiaddr_free(perm);
  lp2p_multiaddr_free(brief);
  tsw_free(&a);
  free(o);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* two gates: any one denying wins; allow_stream is not consulted for outbound streams */
TEST(gating_any_denial_wins) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  REQUIRE(tsw_init(&b, &L, 21, NULL, 1) == 0);
  REQUIRE(tsw_init(&a, &L, 22, NULL, 0) == 0);
  techo eb, ea;
  memset(&eb, 0, sizeof eb);
  memset(&ea, 0, sizeof ea);
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  CHECK_OK(lp2p_swarm_add_behaviour(a.sw, &techo_vtable, &ea));
  gate allow_all, deny_echo, a_gate;
  memset(&allow_all, 0, sizeof allow_all);
  memset(&deny_echo, 0, sizeof deny_echo);
  memset(&a_gate, 0, sizeof a_gate);
  deny_echo.deny_proto = TECHO_PROTO;
  a_gate.deny_proto = TECHO_PROTO; /* on the dialer: must not matter for its own outbound streams */
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &gate_vt, &allow_all));
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &gate_vt, &deny_echo));
  CHECK_OK(lp2p_swarm_add_behaviour(a.sw, &gate_vt, &a_gate));
  CHECK_OK(lp2p_swarm_add_address(a.sw, NULL, b.addr));
  tclient cl;
  tclient_init(&cl, 10, 4);
  const char *protos[] = {TECHO_PROTO};
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, protos, 1, &tclient_handler, &cl, NULL));
  CHECK(RUN_UNTIL(&L, cl.closed && b.n_in_stream_failed == 1, 5000));
  CHECK_EQ(cl.close_err, LP2P_ERR_UNSUPPORTED);
  CHECK_EQ(b.last_in_stream_err, LP2P_ERR_DENIED);
  CHECK(allow_all.stream_calls >= 1);
  CHECK(deny_echo.stream_calls >= 1);
  CHECK_EQ(a_gate.stream_calls, 0);
  CHECK_EQ(a_gate.inbound_calls, 0); /* a dialed: no inbound connection to gate */
  CHECK_EQ(allow_all.inbound_calls, 1);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

int main(void) {
  RUN(emit_is_deferred_copied_and_ordered);
  RUN(post2_drop_frees_argument);
  RUN(gating_inbound_connection);
  RUN(gating_inbound_stream);
  RUN(identify_fills_store_and_raises_peer_identified);
  RUN(external_addresses);
  RUN(external_address_from_identify);
  RUN(discovered_peer_is_dialable);
  RUN(swarm_expires_and_persists);
  RUN(gating_any_denial_wins);
  return test_done();
}
