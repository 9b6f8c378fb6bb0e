/* test_swarm_oom.c - allocation failures inside a live swarm: every n-th
 * allocation of swarm A fails in turn during create/listen/dial/upgrade/
 * streams/teardown. Every run must end (no hang: streams and dials always get
 * their final callback), the loop must close cleanly and nothing may leak.
 * A second scenario adds identify and ping to swarm A: they allocate through
 * the swarm's allocator (lp2p_swarm_mem), so the loop covers them (and the
 * peer store they fill) too. Both check the resource manager under the same failures: once the peer is
 * disconnected every charge of swarm A was released exactly once (node usage back to 0 bytes, 0 streams,
 * 0 connections; no release of more than was charged, no scope freed while it still held something). */
#include <stdlib.h>
#include <string.h>

#include "failmem.h"
#include "lp2p/identify.h"
#include "lp2p/peerstore.h"
#include "lp2p/ping.h"
#include "swarm/swarm_int.h"
#include "swarm_harness.h"
#include "test.h"

/* Disconnects peer and waits for A's resource scopes to empty; 1 when every charge was released once. */
static int rc_released(tloop *L, lp2p_swarm *a, const lp2p_peer_id *peer) {
  lp2p_swarm_disconnect(a, peer);
  int empty = RUN_UNTIL(L, a->rc.node.mem == 0 && a->rc.node.st_in + a->rc.node.st_out == 0 &&
                               a->rc.node.cn_in + a->rc.node.cn_out == 0 && a->rc.n_peers == 0,
                        8000);
  if (!empty)
    fprintf(stderr, "  rcmgr: node still holds %llu bytes, %u+%u streams, %u+%u conns\n",
            (unsigned long long)a->rc.node.mem, a->rc.node.st_in, a->rc.node.st_out, a->rc.node.cn_in,
            a->rc.node.cn_out);
  if (a->rc.underflows) fprintf(stderr, "  rcmgr: %llu underflows\n", (unsigned long long)a->rc.underflows);
  return empty && a->rc.underflows == 0;
}

static const char *const k_echo[] = {TECHO_PROTO};

typedef struct outcome {
  int ok;       /* the whole exchange succeeded */
  int finished; /* every callback arrived */
  int rc_bad;   /* the resource manager did not end empty (or released something twice) */
} outcome;

static outcome scenario(failmem *fm) {
  outcome o = {0, 0, 0};
  tloop L;
  tloop_init(&L);
  tsw b;
  techo eb = {0}, ea = {0};
  if (tsw_init(&b, &L, 2, NULL, 1) < 0 || lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb) < 0) abort();

  uint8_t seed[32];
  memset(seed, 1, sizeof seed);
  lp2p_privkey *key;
  lp2p_privkey_from_ed25519_seed(&key, seed);
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = key;
  cfg.dial_timeout_ms = 2000;
  cfg.handshake_timeout_ms = 2000;
  cfg.stream_negotiation_timeout_ms = 2000;
  lp2p_swarm *a = NULL;
  int rv = lp2p_swarm_new_uv(&a, &cfg, &L.loop, &fm->mem);
  if (rv == 0) {
    int ready = lp2p_swarm_listen(a, "/ip4/127.0.0.1/tcp/0") == 0;
    ready &= lp2p_swarm_add_behaviour(a, &techo_vtable, &ea) == 0;
    tdial d = {0};
    tclient c1, c2;
    tclient_init(&c1, 3000, 1);
    tclient_init(&c2, 3000, 2);
    int dialed = lp2p_swarm_dial(a, NULL, (const char *[]){b.addr}, 1, tdial_cb, &d) == 0;
    if (dialed) {
      /* dial + a stream A -> B; the dial result must always arrive */
      int got = RUN_UNTIL(&L, d.done, 8000);
      CHECK(got);
      int opened = 0, opened2 = 0;
      if (got && d.err == 0)
        opened = lp2p_swarm_open_stream(a, &b.id, k_echo, 1, &tclient_handler, &c1, NULL) == 0;
      if (opened) CHECK(RUN_UNTIL(&L, c1.closed, 8000));
      /* B -> A on the same connection (A's inbound stream path) */
      if (got && d.err == 0 && RUN_UNTIL(&L, lp2p_swarm_is_connected(b.sw, lp2p_swarm_local_peer(a)), 3000))
        opened2 = lp2p_swarm_open_stream(b.sw, lp2p_swarm_local_peer(a), k_echo, 1, &tclient_handler, &c2,
                                         NULL) == 0;
      if (opened2) CHECK(RUN_UNTIL(&L, c2.closed, 8000));
      o.finished = got && (!opened || c1.closed) && (!opened2 || c2.closed);
      o.ok = ready && opened && opened2 && c1.close_err == 0 && c2.close_err == 0 && c1.received == 3000 &&
             c2.received == 3000 && !c1.mismatch && !c2.mismatch;
      if (o.finished) o.rc_bad = !rc_released(&L, a, &b.id);
    } else {
      o.finished = 1;
    }
    lp2p_swarm_free(a);
  } else {
    CHECK_EQ(rv, LP2P_ERR_NOMEM);
    o.finished = 1;
  }
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
  lp2p_privkey_free(key);
  return o;
}

TEST(oom_every_allocation) {
  failmem fm;
  failmem_init(&fm, 0);
  outcome base = scenario(&fm);
  CHECK(base.ok);
  CHECK(!base.rc_bad);
  CHECK_EQ(fm.live, 0);
  long total = fm.count;
  CHECK(total > 20);
  int fails = 0, recovered = 0;
  long only = getenv("OOM_N") ? atol(getenv("OOM_N")) : 0; /* debugging: one run */
  for (long n = only ? only : 1; n <= (only ? only : total + 5); n++) {
    failmem_init(&fm, n);
    outcome o = scenario(&fm);
    if (!o.finished) {
      fails++;
      fprintf(stderr, "  run failing allocation %ld did not finish\n", n);
    }
    if (o.rc_bad) {
      fails++;
      fprintf(stderr, "  run failing allocation %ld: resource charges not released exactly once\n", n);
    }
    if (o.ok) recovered++;
    if (fm.live != 0) {
      fprintf(stderr, "  leak after failing allocation %ld: %ld blocks\n", n, fm.live);
      CHECK_EQ(fm.live, 0);
      break;
    }
    if (!fm.triggered) break;
  }
  CHECK_EQ(fails, 0);
  printf("     %ld allocations, each failed once; %d runs still completed the exchange\n", total, recovered);
}

typedef struct idping {
  int id_events, id_ok;
  int ping_done, ping_err;
} idping;

static void ip_id_event(lp2p_identify *id, const lp2p_identify_event *ev, void *ud) {
  idping *r = ud;
  (void)id;
  if (ev->type == LP2P_IDENTIFY_EV_IDENTIFIED) r->id_ok = 1;
  if (ev->type == LP2P_IDENTIFY_EV_IDENTIFIED || ev->type == LP2P_IDENTIFY_EV_FAILED) r->id_events++;
}

static void ip_ping(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, uint64_t rtt, void *ud) {
  idping *r = ud;
  (void)sw;
  (void)peer;
  (void)rtt;
  r->ping_done = 1;
  r->ping_err = err;
}

static outcome scenario_identify_ping(failmem *fm) {
  outcome o = {0, 0, 0};
  tloop L;
  tloop_init(&L);
  tsw b;
  if (tsw_init(&b, &L, 2, NULL, 1) < 0 || lp2p_identify_add(b.sw, NULL, NULL) < 0 ||
      lp2p_ping_add(b.sw, NULL, NULL) < 0)
    abort();
  uint8_t seed[32];
  memset(seed, 3, sizeof seed);
  lp2p_privkey *key;
  lp2p_privkey_from_ed25519_seed(&key, seed);
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = key;
  cfg.dial_timeout_ms = 2000;
  cfg.handshake_timeout_ms = 2000;
  cfg.stream_negotiation_timeout_ms = 2000;
  lp2p_swarm *a = NULL;
  idping r = {0, 0, 0, 0};
  int rv = lp2p_swarm_new_uv(&a, &cfg, &L.loop, &fm->mem);
  if (rv == 0) {
    lp2p_identify_config ic;
    lp2p_identify_config_default(&ic);
    ic.timeout_ms = 2000;
    ic.on_event = ip_id_event;
    ic.ud = &r;
    lp2p_ping_config pc;
    lp2p_ping_config_default(&pc);
    pc.timeout_ms = 2000;
    int ready = lp2p_identify_add(a, &ic, NULL) == 0;
    ready &= lp2p_ping_add(a, &pc, NULL) == 0;
    tdial d = {0};
    int dialed = lp2p_swarm_dial(a, NULL, (const char *[]){b.addr}, 1, tdial_cb, &d) == 0;
    if (dialed) {
      int got = RUN_UNTIL(&L, d.done, 8000);
      CHECK(got);
      int asked = 0, pinged = 0;
      if (got && d.err == 0) {
        lp2p_identify *id = lp2p_identify_get(a);
        asked = id && lp2p_identify_request(id, &b.id) == 0; /* joins the on-connect request */
        pinged = lp2p_ping(a, &b.id, ip_ping, &r) == 0;
      }
      if (asked) CHECK(RUN_UNTIL(&L, r.id_events > 0, 8000));
      if (pinged) CHECK(RUN_UNTIL(&L, r.ping_done, 8000));
      o.finished = got && (!asked || r.id_events > 0) && (!pinged || r.ping_done);
      uint64_t rtt;
      o.ok = ready && asked && pinged && r.id_ok && r.ping_err == 0 &&
             lp2p_peerstore_supports(lp2p_swarm_peerstore(a), &b.id, LP2P_PING_PROTOCOL_ID) &&
             lp2p_peerstore_latency(lp2p_swarm_peerstore(a), &b.id, &rtt) == 0;
      if (o.finished) o.rc_bad = !rc_released(&L, a, &b.id);
    } else {
      o.finished = 1;
    }
    lp2p_swarm_free(a);
  } else {
    CHECK_EQ(rv, LP2P_ERR_NOMEM);
    o.finished = 1;
  }
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
  lp2p_privkey_free(key);
  return o;
}

TEST(oom_identify_and_ping) {
  failmem fm;
  failmem_init(&fm, 0);
  outcome base = scenario_identify_ping(&fm);
  CHECK(base.ok);
  CHECK(!base.rc_bad);
  CHECK_EQ(fm.live, 0);
  long total = fm.count;
  CHECK(total > 20);
  int fails = 0, recovered = 0;
  long only = getenv("OOM_N") ? atol(getenv("OOM_N")) : 0;
  for (long n = only ? only : 1; n <= (only ? only : total + 5); n++) {
    failmem_init(&fm, n);
    outcome o = scenario_identify_ping(&fm);
    if (!o.finished) {
      fails++;
      fprintf(stderr, "  identify/ping run failing allocation %ld did not finish\n", n);
    }
    if (o.rc_bad) {
      fails++;
      fprintf(stderr, "  identify/ping run failing allocation %ld: resource charges not released exactly once\n", n);
    }
    if (o.ok) recovered++;
    if (fm.live != 0) {
      fprintf(stderr, "  leak after failing allocation %ld: %ld blocks\n", n, fm.live);
      CHECK_EQ(fm.live, 0);
      break;
    }
    if (!fm.triggered) break;
  }
  CHECK_EQ(fails, 0);
  printf("     identify+ping: %ld allocations, each failed once; %d runs still completed\n", total, recovered);
}

int main(void) {
  RUN(oom_every_allocation);
  RUN(oom_identify_and_ping);
  return test_done();
}
