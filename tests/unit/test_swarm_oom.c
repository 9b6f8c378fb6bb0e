/* test_swarm_oom.c - allocation failures inside a live swarm: every n-th
 * allocation of swarm A fails in turn during create/listen/dial/upgrade/
 * streams/teardown. Every run must end (no hang: streams and dials always get
 * their final callback), the loop must close cleanly and nothing may leak. */
#include <stdlib.h>
#include <string.h>

#include "failmem.h"
#include "swarm_harness.h"
#include "test.h"

static const char *const k_echo[] = {TECHO_PROTO};

typedef struct outcome {
  int ok;       /* the whole exchange succeeded */
  int finished; /* every callback arrived */
} outcome;

static outcome scenario(failmem *fm) {
  outcome o = {0, 0};
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

int main(void) {
  RUN(oom_every_allocation);
  return test_done();
}
