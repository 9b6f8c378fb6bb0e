/* test_pairing.c - the pairing behaviour and the device registry between real
 * swarms on loopback TCP: a pairing (same SAS on both sides, device info,
 * registry states), a wrong code (fails on both sides, burns the code on both),
 * a joiner meeting another nameplate (no PAKE, code intact), a tampered and a
 * replayed PAKE message from a raw joiner, a tampered CONFIRM from a raw initiator, the failure rate limit, code expiry,
 * persistence across restarts with a paired-only protocol refused to an
 * unpaired peer before its handler sees it, and unpair telling the other side. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lp2p/devices.h"
#include "lp2p/kad.h"
#include "lp2p/pairing.h"
#include "protocols/pairing/engine/pair_int.h"
#include "swarm_harness.h"
#include "test.h"

typedef struct node {
  tsw t;
  lp2p_devices *dev;
  lp2p_pairing *pair;
  int n_paired, n_failed;
  lp2p_pairing_event last; /* pointers not kept */
  char sas[16], name[80], peer_name[80];
  lp2p_peer_id peer;
  int fail, reason, burned;
  size_t n_addrs;
  int states[64]; /* device-state sequence */
  int n_states;
  char dir[128];
} node;

static void on_pair(lp2p_pairing *p, const lp2p_pairing_event *ev, void *ud) {
  node *n = ud;
  (void)p;
  if (ev->type == LP2P_PAIRING_EV_PAIRED) {
    n->n_paired++;
    snprintf(n->sas, sizeof n->sas, "%s", ev->sas ? ev->sas : "");
    snprintf(n->peer_name, sizeof n->peer_name, "%s", ev->name ? ev->name : "");
    n->peer = *ev->peer;
    n->n_addrs = ev->n_addrs;
  } else {
    n->n_failed++;
    n->fail = (int)ev->fail;
    n->reason = ev->peer_reason;
    n->burned = ev->code_burned;
  }
}

static void on_dev(lp2p_devices *d, const lp2p_device_event *ev, void *ud) {
  node *n = ud;
  (void)d;
  if (n->n_states < 64) n->states[n->n_states++] = (int)ev->device->state;
}

static void pair_tweak_none(lp2p_pairing_config *c) { (void)c; }

static int node_init(node *n, tloop *L, uint8_t seed, const char *name, const char *dir,
                     void (*tweak)(lp2p_pairing_config *)) {
  memset(n, 0, sizeof *n);
  int rv = tsw_init(&n->t, L, seed, NULL, 1);
  if (rv < 0) return rv;
  snprintf(n->name, sizeof n->name, "%s", name);
  if (dir) snprintf(n->dir, sizeof n->dir, "%s", dir);
  lp2p_devices_config dc = {sizeof dc, dir, on_dev, n};
  if ((rv = lp2p_devices_add(n->t.sw, &dc, &n->dev)) < 0) return rv;
  lp2p_pairing_config pc;
  lp2p_pairing_config_default(&pc);
  pc.device_name = n->name;
  pc.on_event = on_pair;
  pc.ud = n;
  (tweak ? tweak : pair_tweak_none)(&pc);
  return lp2p_pairing_add(n->t.sw, &pc, &n->pair);
}

static int connect_nodes(tloop *L, node *a, node *b) {
  tdial d = {0};
  if (lp2p_swarm_dial(a->t.sw, NULL, (const char *[]){b->t.addr}, 1, tdial_cb, &d) < 0) return 0;
  return RUN_UNTIL(L, d.done, 5000) && d.err == 0;
}

/* A valid code with the same nameplate as `code` and other words. */
static void other_words(const char *code, char *out, size_t cap) {
  lp2p__pair_code c;
  CHECK_OK(lp2p__pair_code_parse(&c, code));
  uint16_t w0 = c.words[0];
  for (unsigned i = 1; i < 2048; i++) {
    c.words[0] = (uint16_t)((w0 + i) % 2048);
    if (lp2p__pair_code_check(&c)) break;
  }
  CHECK(lp2p__pair_code_format(&c, out, cap) > 0);
}

TEST(pair_success_and_registry) {
  tloop L;
  tloop_init(&L);
  node a, b;
  CHECK_OK(node_init(&a, &L, 1, "laptop", NULL, NULL));
  CHECK_OK(node_init(&b, &L, 2, "phone", NULL, NULL));
  CHECK_OK(lp2p_swarm_add_address(b.t.sw, NULL, a.t.addr)); /* direct rendezvous: b knows where a is */
  char code[LP2P_PAIRING_CODE_MAX];
  CHECK_OK(lp2p_pairing_start(a.pair, code, sizeof code));
  printf("  code: %s\n", code);
  /* typos are caught before any traffic */
  CHECK_EQ(lp2p_pairing_join(b.pair, "12-xqzw-abandon-ability", &a.t.id), LP2P_ERR_PARSE);
  char typo[LP2P_PAIRING_CODE_MAX];
  snprintf(typo, sizeof typo, "%s", code);
  typo[0] = typo[0] == '9' ? '1' : (char)(typo[0] + 1);
  int trv = lp2p_pairing_join(b.pair, typo, &a.t.id);
  CHECK(trv == LP2P_ERR_SIGNATURE || trv == 0); /* 1 in 16 typos pass the check */
  if (trv == 0) lp2p_pairing_cancel(b.pair), RUN_UNTIL(&L, b.n_failed == 1, 5000), b.n_failed = 0;
  uint64_t t0 = uv_hrtime();
  CHECK_OK(lp2p_pairing_join(b.pair, code, &a.t.id));
  CHECK_EQ(b.n_paired + b.n_failed, 0);
  CHECK(RUN_UNTIL(&L, a.n_paired == 1 && b.n_paired == 1, 10000));
  printf("  paired in %.1f ms (dial + Noise + PAKE), SAS %s\n", (double)(uv_hrtime() - t0) / 1e6, a.sas);
  CHECK_STR(a.sas, b.sas);
  CHECK_EQ(strlen(a.sas), 7);
  CHECK(a.n_addrs >= 1 && b.n_addrs >= 1);
  CHECK_STR(a.peer_name, "phone");
  CHECK_STR(b.peer_name, "laptop");
  CHECK(lp2p_peer_id_equal(&a.peer, &b.t.id));
  CHECK(lp2p_peer_id_equal(&b.peer, &a.t.id));
  CHECK(lp2p_devices_is_paired(a.dev, &b.t.id));
  CHECK(lp2p_devices_is_paired(b.dev, &a.t.id));
  lp2p_device dv;
  CHECK_OK(lp2p_devices_get(b.dev, &a.t.id, &dv));
  CHECK_EQ(dv.state, LP2P_DEVICE_CONNECTED);
  CHECK_STR(dv.name, "laptop");
  CHECK(dv.n_addrs >= 1 && dv.paired_at > 0);
  CHECK_EQ(lp2p_devices_list(a.dev, NULL, 0), 1);
  /* the joiner's states: discovered -> pairing -> paired -> connected */
  CHECK_EQ(b.n_states, 4);
  CHECK_EQ(b.states[0], LP2P_DEVICE_DISCOVERED);
  CHECK_EQ(b.states[1], LP2P_DEVICE_PAIRING);
  CHECK_EQ(b.states[2], LP2P_DEVICE_PAIRED);
  CHECK_EQ(b.states[3], LP2P_DEVICE_CONNECTED);
  CHECK_EQ(a.states[a.n_states - 1], LP2P_DEVICE_CONNECTED);
  /* single use: the code is gone */
  CHECK_OK(lp2p_pairing_join(b.pair, code, &a.t.id));
  CHECK(RUN_UNTIL(&L, b.n_failed == 1, 5000));
  CHECK_EQ(a.n_paired, 1);
  /* disconnect -> disconnected, reconnect -> connected (swarm events only) */
  CHECK_OK(lp2p_swarm_disconnect(a.t.sw, &b.t.id));
  CHECK(RUN_UNTIL(&L, b.states[b.n_states - 1] == LP2P_DEVICE_DISCONNECTED, 5000));
  CHECK(connect_nodes(&L, &b, &a));
  CHECK(RUN_UNTIL(&L, b.states[b.n_states - 1] == LP2P_DEVICE_CONNECTED, 5000));
  /* unpair tells the other side */
  CHECK_OK(lp2p_devices_unpair(b.dev, &a.t.id));
  CHECK_EQ(b.states[b.n_states - 1], LP2P_DEVICE_UNPAIRED);
  CHECK(!lp2p_devices_is_paired(b.dev, &a.t.id));
  CHECK(RUN_UNTIL(&L, !lp2p_devices_is_paired(a.dev, &b.t.id), 5000));
  CHECK_EQ(a.states[a.n_states - 1], LP2P_DEVICE_UNPAIRED);
  CHECK_EQ(lp2p_devices_unpair(b.dev, &a.t.id), LP2P_ERR_NOT_FOUND);
  tsw_free(&a.t);
  tsw_free(&b.t);
  CHECK_EQ(tloop_finish(&L), 0);
}

TEST(pair_wrong_code_burns_both_sides) {
  tloop L;
  tloop_init(&L);
  node a, b, c;
  CHECK_OK(node_init(&a, &L, 1, "a", NULL, NULL));
  CHECK_OK(node_init(&b, &L, 2, "b", NULL, NULL));
  CHECK_OK(node_init(&c, &L, 3, "c", NULL, NULL));
  REQUIRE(connect_nodes(&L, &b, &a));
  REQUIRE(connect_nodes(&L, &c, &a));
  char code[LP2P_PAIRING_CODE_MAX], wrong[LP2P_PAIRING_CODE_MAX];
  CHECK_OK(lp2p_pairing_start(a.pair, code, sizeof code));
  other_words(code, wrong, sizeof wrong);
  /* c knows the nameplate, not the words: one guess, it fails on both sides and burns the code */
  CHECK_OK(lp2p_pairing_join(c.pair, wrong, NULL)); /* candidates: the connected peers */
  CHECK(RUN_UNTIL(&L, a.n_failed == 1 && c.n_failed == 1, 10000));
  CHECK_EQ(a.fail, LP2P_PAIRING_FAIL_WRONG_CODE);
  CHECK(a.burned);
  CHECK_EQ(c.fail, LP2P_PAIRING_FAIL_ABORTED);
  CHECK_EQ(c.reason, LP2P_PAIRING_FAIL_WRONG_CODE);
  CHECK(c.burned);
  CHECK_EQ(a.n_paired + c.n_paired, 0);
  CHECK(!lp2p_devices_is_paired(a.dev, &c.t.id));
  /* the joiner refuses its burned code; the initiator's code is dead even with the right words */
  CHECK_EQ(lp2p_pairing_join(c.pair, wrong, NULL), LP2P_ERR_STATE);
  CHECK_OK(lp2p_pairing_join(b.pair, code, &a.t.id));
  CHECK(RUN_UNTIL(&L, b.n_failed == 1, 10000));
  CHECK_EQ(b.n_paired + a.n_paired, 0);
  /* rate limit: after 3 failed sessions in the window no new code */
  for (int i = 0; i < 2; i++) {
    CHECK_OK(lp2p_pairing_start(a.pair, code, sizeof code));
    other_words(code, wrong, sizeof wrong);
    int before = a.n_failed, cbefore = c.n_failed;
    CHECK_OK(lp2p_pairing_join(c.pair, wrong, &a.t.id));
    CHECK(RUN_UNTIL(&L, a.n_failed == before + 1 && c.n_failed == cbefore + 1, 10000));
  }
  CHECK_EQ(lp2p_pairing_start(a.pair, code, sizeof code), LP2P_ERR_LIMIT);
  tsw_free(&a.t);
  tsw_free(&b.t);
  tsw_free(&c.t);
  CHECK_EQ(tloop_finish(&L), 0);
}

TEST(pair_other_nameplate_never_runs_the_pake) {
  tloop L;
  tloop_init(&L);
  node a, b;
  CHECK_OK(node_init(&a, &L, 1, "a", NULL, NULL));
  CHECK_OK(node_init(&b, &L, 2, "b", NULL, NULL));
  REQUIRE(connect_nodes(&L, &b, &a));
  char code[LP2P_PAIRING_CODE_MAX], other[LP2P_PAIRING_CODE_MAX];
  CHECK_OK(lp2p_pairing_start(a.pair, code, sizeof code));
  lp2p__pair_code oc;
  do CHECK_OK(lp2p__pair_code_generate(&oc, 4, NULL, NULL));
  while (0);
  CHECK(lp2p__pair_code_format(&oc, other, sizeof other) > 0); /* 4 digits: another nameplate */
  CHECK_OK(lp2p_pairing_join(b.pair, other, &a.t.id));
  CHECK(RUN_UNTIL(&L, b.n_failed == 1, 10000));
  CHECK_EQ(b.fail, LP2P_PAIRING_FAIL_NO_PEER);
  CHECK(!b.burned);
  CHECK_EQ(a.n_failed, 0); /* a's code is intact */
  CHECK_OK(lp2p_pairing_join(b.pair, code, NULL));
  CHECK(RUN_UNTIL(&L, a.n_paired == 1 && b.n_paired == 1, 10000));
  tsw_free(&a.t);
  tsw_free(&b.t);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---- a raw joiner: runs the engine itself and can tamper with / replay its SHARE ---- */
typedef struct raw {
  lp2p__pair_session *eng;
  lp2p__pair_code code;
  int mode; /* joiner: 0 tamper Tb, 1 replay the saved SHARE, 2 record SHARE; initiator: 3 tamper Ta */
  uint8_t saved[256];
  size_t nsaved;
  int closed, got_abort;
  lp2p_swarm *sw;
} raw;

static void raw_flush(lp2p_stream *s, raw *r) {
  size_t n;
  const uint8_t *out = lp2p__pair_session_output(r->eng, &n);
  if (!n) return;
  uint8_t buf[4096];
  memcpy(buf, out, n);
  lp2p__pair_session_output_done(r->eng, n);
  if (r->mode == 3 && buf[2] == LP2P__PAIR_MSG_CONFIRM) buf[3 + 7] ^= 0x40; /* a bit of Ta */
  if (r->mode != 3 && buf[2] == LP2P__PAIR_MSG_SHARE) {
    if (r->mode == 2) {
      memcpy(r->saved, buf, n);
      r->nsaved = n;
    } else if (r->mode == 0) {
      buf[n - 1] ^= 1; /* flip a bit of Tb */
    } else if (r->mode == 1) {
      memcpy(buf, r->saved, r->nsaved); /* a SHARE from an earlier session */
      n = r->nsaved;
    }
  }
  lp2p_stream_write(s, buf, n);
}
static void raw_open(lp2p_stream *s, const char *proto, void *ud) {
  raw *r = ud;
  (void)proto;
  const lp2p_peer_id *me = lp2p_swarm_local_peer(r->sw), *peer = lp2p_stream_peer(s);
  lp2p__pair_params prm = {0};
  prm.role = r->mode == 3 ? LP2P__PAIR_INITIATOR : LP2P__PAIR_JOINER;
  prm.code = &r->code;
  prm.local_id = me->bytes;
  prm.local_id_len = me->len;
  prm.remote_id = peer->bytes;
  prm.remote_id_len = peer->len;
  lp2p__pair_device_info di = {0};
  prm.local_info = &di;
  prm.now = lp2p_swarm_now(r->sw);
  r->eng = lp2p__pair_session_new(&prm);
  raw_flush(s, r); /* the initiator's HELLO */
}
static void raw_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  raw *r = ud;
  for (size_t i = 0; i + 2 < n; i++)
    if (p[i] == 0 && p[i + 1] == 2 && p[i + 2] == LP2P__PAIR_MSG_ABORT) r->got_abort = 1;
  lp2p__pair_session_input(r->eng, p, n, lp2p_swarm_now(r->sw));
  raw_flush(s, r);
}
static void raw_close(lp2p_stream *s, int err, void *ud) {
  raw *r = ud;
  (void)s;
  (void)err;
  r->closed = 1;
  lp2p__pair_session_free(r->eng);
  r->eng = NULL;
}
static void raw_eof(lp2p_stream *s, void *ud) {
  (void)ud;
  lp2p_stream_close_write(s);
}
static const lp2p_stream_handler raw_handler = {sizeof(lp2p_stream_handler), raw_open, raw_data, raw_eof, NULL,
                                                raw_close};

static void lenient(lp2p_pairing_config *c) { c->max_failures = 10; }

TEST(pair_tampered_and_replayed_messages_fail) {
  tloop L;
  tloop_init(&L);
  node a, m;
  CHECK_OK(node_init(&a, &L, 1, "a", NULL, lenient));
  CHECK_OK(node_init(&m, &L, 5, "mallory", NULL, NULL));
  REQUIRE(connect_nodes(&L, &m, &a));
  const char *protos[] = {LP2P_PAIRING_PROTOCOL};
  char code[LP2P_PAIRING_CODE_MAX];
  for (int mode = 0; mode < 2; mode++) {
    /* mode 0: the right code, but the SHARE's confirmation tag is tampered with;
     * mode 1: the right code, but the SHARE replayed from an earlier session (another sid) */
    if (mode == 1) { /* record a SHARE with a code that is then burned */
      CHECK_OK(lp2p_pairing_start(a.pair, code, sizeof code));
      raw rec = {0};
      rec.mode = 2;
      rec.sw = m.t.sw;
      CHECK_OK(lp2p__pair_code_parse(&rec.code, code));
      CHECK_OK(lp2p_swarm_open_stream(m.t.sw, &a.t.id, protos, 1, &raw_handler, &rec, NULL));
      CHECK(RUN_UNTIL(&L, rec.closed, 10000));
      CHECK(rec.nsaved > 0);
      /* the recorded session completed: a paired with m; forget it for the next round */
      CHECK(RUN_UNTIL(&L, a.n_paired == 1, 5000));
      CHECK_OK(lp2p_devices_unpair(a.dev, &m.t.id));
      static raw keep;
      keep = rec;
      CHECK_OK(lp2p_pairing_start(a.pair, code, sizeof code));
      raw r = keep;
      r.mode = 1;
      r.closed = 0;
      r.got_abort = 0;
      CHECK_OK(lp2p__pair_code_parse(&r.code, code));
      int before = a.n_failed;
      CHECK_OK(lp2p_swarm_open_stream(m.t.sw, &a.t.id, protos, 1, &raw_handler, &r, NULL));
      CHECK(RUN_UNTIL(&L, r.closed && a.n_failed == before + 1, 10000));
      CHECK_EQ(a.fail, LP2P_PAIRING_FAIL_WRONG_CODE);
      CHECK(a.burned);
      CHECK(r.got_abort);
      CHECK_EQ(a.n_paired, 1);
      continue;
    }
    CHECK_OK(lp2p_pairing_start(a.pair, code, sizeof code));
    raw r = {0};
    r.mode = 0;
    r.sw = m.t.sw;
    CHECK_OK(lp2p__pair_code_parse(&r.code, code));
    CHECK_OK(lp2p_swarm_open_stream(m.t.sw, &a.t.id, protos, 1, &raw_handler, &r, NULL));
    CHECK(RUN_UNTIL(&L, r.closed && a.n_failed == 1, 10000));
    CHECK_EQ(a.fail, LP2P_PAIRING_FAIL_WRONG_CODE);
    CHECK(a.burned);
    CHECK(r.got_abort);
    CHECK_EQ(a.n_paired, 0);
  }
  tsw_free(&a.t);
  tsw_free(&m.t);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* The other direction: a raw initiator (a bare swarm serving /lp2p/pair/1.0.0 with the engine)
 * that knows the code but tampers with its CONFIRM (a bit of Ta): the real joiner fails
 * (WRONG_CODE: the confirmation does not verify), burns its typed code, and tells the
 * initiator (ABORT). */
TEST(pair_tampered_confirm_fails_the_joiner) {
  tloop L;
  tloop_init(&L);
  node a;
  tsw m;
  CHECK_OK(node_init(&a, &L, 1, "a", NULL, NULL));
  CHECK_OK(tsw_init(&m, &L, 6, NULL, 1));
  lp2p__pair_code c;
  CHECK_OK(lp2p__pair_code_generate(&c, 3, NULL, NULL));
  char code[LP2P_PAIRING_CODE_MAX];
  CHECK(lp2p__pair_code_format(&c, code, sizeof code) > 0);
  raw r = {0};
  r.mode = 3;
  r.sw = m.sw;
  r.code = c;
  CHECK_OK(lp2p_swarm_set_protocol(m.sw, LP2P_PAIRING_PROTOCOL, &raw_handler, &r));
  REQUIRE(connect_nodes(&L, &a, &(node){.t = m}));
  CHECK_OK(lp2p_pairing_join(a.pair, code, &m.id));
  CHECK(RUN_UNTIL(&L, a.n_failed == 1 && r.closed, 10000));
  CHECK_EQ(a.n_paired, 0);
  CHECK_EQ(a.fail, LP2P_PAIRING_FAIL_WRONG_CODE);
  CHECK(a.burned);
  CHECK(r.got_abort);
  CHECK_EQ(lp2p_pairing_join(a.pair, code, &m.id), LP2P_ERR_STATE); /* burned on the joiner's side */
  CHECK(!lp2p_devices_is_paired(a.dev, &m.id));
  tsw_free(&a.t);
  tsw_free(&m);
  CHECK_EQ(tloop_finish(&L), 0);
}

static void short_life(lp2p_pairing_config *c) { c->code_lifetime_ms = 200; }

TEST(pair_code_expires) {
  tloop L;
  tloop_init(&L);
  node a, b;
  CHECK_OK(node_init(&a, &L, 1, "a", NULL, short_life));
  CHECK_OK(node_init(&b, &L, 2, "b", NULL, NULL));
  REQUIRE(connect_nodes(&L, &b, &a));
  char code[LP2P_PAIRING_CODE_MAX];
  CHECK_OK(lp2p_pairing_start(a.pair, code, sizeof code));
  CHECK(RUN_UNTIL(&L, a.n_failed == 1, 5000));
  CHECK_EQ(a.fail, LP2P_PAIRING_FAIL_EXPIRED);
  CHECK_OK(lp2p_pairing_join(b.pair, code, &a.t.id));
  CHECK(RUN_UNTIL(&L, b.n_failed == 1, 5000));
  CHECK_EQ(b.n_paired + a.n_paired, 0);
  tsw_free(&a.t);
  tsw_free(&b.t);
  CHECK_EQ(tloop_finish(&L), 0);
}

#define PRIVATE_PROTO "/lp2p-test/private/1.0.0"

static int echo_works(tloop *L, tsw *from, const lp2p_peer_id *to, int *err) {
  tclient c;
  tclient_init(&c, 1000, 7);
  const char *protos[] = {PRIVATE_PROTO};
  if (lp2p_swarm_open_stream(from->sw, to, protos, 1, &tclient_handler, &c, NULL) < 0) return 0;
  if (!RUN_UNTIL(L, c.closed, 5000)) return 0;
  *err = c.close_err;
  return c.close_err == 0 && c.received == 1000 && !c.mismatch;
}

TEST(pair_persists_and_gates_paired_only_protocols) {
  char tmpl[] = "/tmp/lp2p-pair-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  char da[200], db[200];
  snprintf(da, sizeof da, "%s/a", tmpl);
  snprintf(db, sizeof db, "%s/b", tmpl);
  tloop L;
  tloop_init(&L);
  node a, b;
  CHECK_OK(node_init(&a, &L, 1, "a", da, NULL));
  CHECK_OK(node_init(&b, &L, 2, "b", db, NULL));
  CHECK_OK(lp2p_swarm_add_address(b.t.sw, NULL, a.t.addr));
  char code[LP2P_PAIRING_CODE_MAX];
  CHECK_OK(lp2p_pairing_start(a.pair, code, sizeof code));
  CHECK_OK(lp2p_pairing_join(b.pair, code, &a.t.id));
  CHECK(RUN_UNTIL(&L, a.n_paired == 1 && b.n_paired == 1, 10000));
  tsw_free(&a.t);
  tsw_free(&b.t);
  CHECK_EQ(tloop_finish(&L), 0);
  char path[300];
  snprintf(path, sizeof path, "%s/devices", da);
  CHECK_EQ(access(path, R_OK), 0);

  /* both restart: still paired; the private protocol works between them, not for c */
  tloop_init(&L);
  node c;
  CHECK_OK(node_init(&a, &L, 1, "a", da, NULL));
  CHECK_OK(node_init(&b, &L, 2, "b", db, NULL));
  CHECK_OK(node_init(&c, &L, 3, "c", NULL, NULL));
  CHECK(lp2p_devices_is_paired(a.dev, &b.t.id));
  CHECK(lp2p_devices_is_paired(b.dev, &a.t.id));
  lp2p_device dv;
  CHECK_OK(lp2p_devices_get(b.dev, &a.t.id, &dv));
  CHECK_EQ(dv.state, LP2P_DEVICE_DISCONNECTED);
  CHECK_STR(dv.name, "a");
  static techo eb = {.proto = PRIVATE_PROTO};
  CHECK_OK(lp2p_swarm_add_behaviour(a.t.sw, &techo_vtable, &eb));
  CHECK_OK(lp2p_devices_set_paired_only(a.dev, PRIVATE_PROTO));
  CHECK_OK(lp2p_swarm_add_address(b.t.sw, NULL, a.t.addr)); /* a listens on a new port now */
  CHECK_OK(lp2p_swarm_add_address(c.t.sw, NULL, a.t.addr));
  int err = 0;
  CHECK(echo_works(&L, &b.t, &a.t.id, &err));
  CHECK(RUN_UNTIL(&L, b.states[b.n_states - 1] == LP2P_DEVICE_CONNECTED, 5000));
  int opened_before = eb.opened;
  CHECK(!echo_works(&L, &c.t, &a.t.id, &err));
  CHECK_EQ(err, LP2P_ERR_UNSUPPORTED);
  CHECK_EQ(eb.opened, opened_before); /* the handler never saw c's stream */
  CHECK(RUN_UNTIL(&L, a.t.last_in_stream_err == LP2P_ERR_DENIED, 5000));
  tsw_free(&a.t);
  tsw_free(&b.t);
  tsw_free(&c.t);
  CHECK_EQ(tloop_finish(&L), 0);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpl);
  CHECK_EQ(system(cmd), 0);
}


static void six_digits(lp2p_pairing_config *c) { c->nameplate_digits = 6; }

static void kad_cb(lp2p_kad *kad, const lp2p_kad_result *res, void *ud) {
  (void)kad;
  (void)res;
  ++*(int *)ud;
}

/* Rendezvous through the DHT: a and b only know a bootstrap node; the joiner finds the
 * initiator as the provider of the nameplate's key for the current epoch. */
TEST(pair_via_dht) {
  tloop L;
  tloop_init(&L);
  tsw boot;
  node a, b;
  CHECK_OK(tsw_init(&boot, &L, 9, NULL, 1));
  lp2p_kad *kb = NULL, *ka = NULL, *kj = NULL;
  CHECK_OK(lp2p_kad_add(boot.sw, NULL, &kb));
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  /* kad first, then devices + pairing */
  CHECK_OK(tsw_init(&a.t, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b.t, &L, 2, NULL, 1));
  CHECK_OK(lp2p_kad_add(a.t.sw, NULL, &ka));
  CHECK_OK(lp2p_kad_add(b.t.sw, NULL, &kj));
  node *nn[2] = {&a, &b};
  const char *names[2] = {"dht-a", "dht-b"};
  for (int i = 0; i < 2; i++) {
    node *n = nn[i];
    snprintf(n->name, sizeof n->name, "%s", names[i]);
    lp2p_devices_config dc = {sizeof dc, NULL, on_dev, n};
    CHECK_OK(lp2p_devices_add(n->t.sw, &dc, &n->dev));
    lp2p_pairing_config pc;
    lp2p_pairing_config_default(&pc);
    pc.device_name = n->name;
    pc.on_event = on_pair;
    pc.ud = n;
    six_digits(&pc);
    CHECK_OK(lp2p_pairing_add(n->t.sw, &pc, &n->pair));
  }
  CHECK_OK(lp2p_pairing_add_dht_rendezvous(a.pair, ka));
  CHECK_OK(lp2p_pairing_add_dht_rendezvous(b.pair, kj));
  CHECK_OK(lp2p_kad_add_bootstrap(ka, boot.addr));
  CHECK_OK(lp2p_kad_add_bootstrap(kj, boot.addr));
  int done = 0;
  CHECK_OK(lp2p_kad_bootstrap(ka, kad_cb, &done, NULL));
  CHECK_OK(lp2p_kad_bootstrap(kj, kad_cb, &done, NULL));
  CHECK(RUN_UNTIL(&L, done == 2, 20000));
  char code[LP2P_PAIRING_CODE_MAX];
  CHECK_OK(lp2p_pairing_start(a.pair, code, sizeof code));
  CHECK_EQ(strlen(code) - strlen(strchr(code, '-')), 6);
  /* the provider record reaches the bootstrap node (the only other DHT server a knows) */
  lp2p__pair_code pc;
  CHECK_OK(lp2p__pair_code_parse(&pc, code));
  uint8_t mh[34] = {0x12, 32};
  lp2p__pair_dht_key(pc.nameplate, lp2p__pair_epoch((uint64_t)time(NULL)), mh + 2);
  CHECK(RUN_UNTIL(&L, lp2p_kad_provider_count(kb, mh, sizeof mh) >= 1, 10000));
  /* b is not connected to a: a can only become b's candidate through the DHT */
  CHECK(!lp2p_swarm_is_connected(b.t.sw, &a.t.id) || lp2p_swarm_disconnect(b.t.sw, &a.t.id) == 0);
  CHECK(RUN_UNTIL(&L, !lp2p_swarm_is_connected(b.t.sw, &a.t.id), 5000));
  CHECK(!lp2p_swarm_is_connected(b.t.sw, &a.t.id));
  uint64_t t0 = uv_hrtime();
  CHECK_OK(lp2p_pairing_join(b.pair, code, NULL));
  CHECK(RUN_UNTIL(&L, a.n_paired == 1 && b.n_paired == 1, 20000));
  printf("  paired via the DHT in %.1f ms (find providers + dial + PAKE)\n", (double)(uv_hrtime() - t0) / 1e6);
  CHECK_STR(a.sas, b.sas);
  CHECK(lp2p_peer_id_equal(&b.peer, &a.t.id));
  tsw_free(&a.t);
  tsw_free(&b.t);
  tsw_free(&boot);
  CHECK_EQ(tloop_finish(&L), 0);
}

int main(void) {
  RUN(pair_success_and_registry);
  RUN(pair_wrong_code_burns_both_sides);
  RUN(pair_other_nameplate_never_runs_the_pake);
  RUN(pair_tampered_and_replayed_messages_fail);
  RUN(pair_tampered_confirm_fails_the_joiner);
  RUN(pair_code_expires);
  RUN(pair_persists_and_gates_paired_only_protocols);
  RUN(pair_via_dht);
  return test_done();
}
