/* tests/unit/test_gossip_router.c - the sans-IO gossipsub router: a 30-node simulation on a
 * random sparse graph (every message delivered exactly once to every subscriber, mesh
 * degrees within D_lo..D_hi), GRAFT handling (unknown topic ignored, backoff answered with
 * PRUNE), IWANT retransmission cap, validation verdicts and tampered signatures. */
#define _GNU_SOURCE
#include <string.h>

#include "lp2p/encoding.h"
#include "protocols/gossipsub/engine/gossip_router.h"
#include "test.h"

#define N 30
#define NMSG 40
static const uint8_t T[] = "blocks";
#define TL 6

typedef struct node {
  lp2p_privkey *k;
  lp2p_peer_id id;
  lp2p_gs *g;
  uint32_t rs;
  int delivered[NMSG];
  lp2p_gs_verdict verdict;
} node;
static node nodes[N];
static uint8_t ids[NMSG][256];
static size_t idlens[NMSG];

static int xrng(void *ud, uint8_t *buf, size_t n) {
  uint32_t *x = ud;
  for (size_t i = 0; i < n; i++) {
    *x ^= *x << 13, *x ^= *x >> 17, *x ^= *x << 5;
    buf[i] = (uint8_t)(*x >> 11);
  }
  return 0;
}
static lp2p_gs_verdict validate(void *ud, const lp2p_peer_id *src, const lp2p_gs_message *m) {
  (void)src, (void)m;
  return ((node *)ud)->verdict;
}

static int find_node(const lp2p_peer_id *id) {
  for (int i = 0; i < N; i++)
    if (lp2p_peer_id_equal(&nodes[i].id, id)) return i;
  return -1;
}

/* Moves every SEND to its target until nothing is left; counts deliveries. */
static long pump(lp2p_tstamp now) {
  long moved = 0, round;
  do {
    round = 0;
    for (int i = 0; i < N; i++) {
      if (!nodes[i].g) continue;
      lp2p_gs_event ev;
      /* Copy out first: handling may queue more events on other nodes only. */
      while (lp2p_gs_poll(nodes[i].g, &ev)) {
        if (ev.type == LP2P_GS_EV_SEND) {
          int j = find_node(&ev.peer);
          CHECK(j >= 0);
          uint64_t len;
          int pre = lp2p_uvarint_decode(ev.data, ev.len, &len);
          CHECK(pre > 0 && (size_t)pre + len == ev.len);
          size_t n = ev.len - (size_t)pre;
          uint8_t *copy = malloc(n + 1);
          memcpy(copy, ev.data + pre, n);
          CHECK_OK(lp2p_gs_handle_rpc(nodes[j].g, &nodes[i].id, copy, n, now));
          free(copy);
          round++;
        } else if (ev.type == LP2P_GS_EV_DELIVER) {
          for (int m = 0; m < NMSG; m++)
            if (idlens[m] == ev.msg.id_len && !memcmp(ids[m], ev.msg.id, idlens[m])) nodes[i].delivered[m]++;
        }
      }
    }
    moved += round;
  } while (round);
  return moved;
}

static int scoring;
static void setup(int n, unsigned edges_extra, uint32_t seed, int flood) {
  uint32_t gs = seed;
  for (int i = 0; i < n; i++) {
    node *x = &nodes[i];
    memset(x, 0, sizeof *x);
    uint8_t s[32] = {(uint8_t)i, 7};
    CHECK_OK(lp2p_privkey_from_ed25519_seed(&x->k, s));
    CHECK_OK(lp2p_peer_id_from_pubkey(lp2p_privkey_public(x->k), &x->id));
    x->rs = seed * 31 + (uint32_t)i + 1;
    lp2p_gs_config c;
    lp2p_gs_config_default(&c);
    c.key = x->k, c.rng = xrng, c.rng_ud = &x->rs, c.validate = validate, c.validate_ud = x;
    c.flood_publish = flood;
    c.score.enabled = scoring;
    CHECK_OK(lp2p_gs_new(&x->g, &c, 0));
  }
  /* ring + random chords: connected, sparse */
  for (int i = 0; i < (n == 2 ? 1 : n); i++) {
    int j = (i + 1) % n;
    CHECK_OK(lp2p_gs_add_peer(nodes[i].g, &nodes[j].id, LP2P_GS_PROTO_V11, 1, 0));
    CHECK_OK(lp2p_gs_add_peer(nodes[j].g, &nodes[i].id, LP2P_GS_PROTO_V11, 0, 0));
  }
  for (unsigned e = 0; e < edges_extra; e++) {
    uint8_t r[2];
    xrng(&gs, r, 2);
    int i = r[0] % n, j = r[1] % n;
    if (i == j || lp2p_gs_add_peer(nodes[i].g, &nodes[j].id, LP2P_GS_PROTO_V11, 1, 0) == LP2P_ERR_EXISTS)
      continue;
    CHECK_OK(lp2p_gs_add_peer(nodes[j].g, &nodes[i].id, LP2P_GS_PROTO_V11, 0, 0));
  }
}
static void teardown(int n) {
  for (int i = 0; i < n; i++) {
    lp2p_gs_free(nodes[i].g);
    lp2p_privkey_free(nodes[i].k);
    memset(&nodes[i], 0, sizeof nodes[i]);
  }
}

static void simulate(int flood, uint32_t seed) {
  setup(N, 45, seed, flood);
  lp2p_tstamp now = 0;
  pump(now);
  for (int i = 0; i < N; i++) CHECK_OK(lp2p_gs_subscribe(nodes[i].g, T, TL, now));
  pump(now);
  for (int s = 0; s < 5; s++) { /* meshes form */
    now += 1000;
    for (int i = 0; i < N; i++) CHECK_OK(lp2p_gs_tick(nodes[i].g, now));
    pump(now);
  }
  for (int i = 0; i < N; i++) {
    size_t ms = lp2p_gs_mesh_size(nodes[i].g, T, TL);
    CHECK(ms >= 1 && ms <= 12);
  }
  uint32_t ps = seed;
  for (int m = 0; m < NMSG; m++) {
    uint8_t r[1];
    xrng(&ps, r, 1);
    int src = r[0] % N;
    char data[32];
    int dl = snprintf(data, sizeof data, "msg %d", m);
    int n = lp2p_gs_publish(nodes[src].g, T, TL, (const uint8_t *)data, (size_t)dl, now, ids[m], sizeof ids[m]);
    CHECK(n > 0);
    idlens[m] = n > 0 ? (size_t)n : 0;
    nodes[src].delivered[m] = 1; /* the publisher does not deliver to itself */
    pump(now);
    if (m % 8 == 7) {
      now += 1000;
      for (int i = 0; i < N; i++) CHECK_OK(lp2p_gs_tick(nodes[i].g, now));
      pump(now);
    }
  }
  for (int s = 0; s < 3; s++) { /* gossip rounds: IHAVE/IWANT repair anything missing */
    now += 1000;
    for (int i = 0; i < N; i++) CHECK_OK(lp2p_gs_tick(nodes[i].g, now));
    pump(now);
  }
  long exact = 0, dups = 0;
  for (int i = 0; i < N; i++)
    for (int m = 0; m < NMSG; m++) exact += nodes[i].delivered[m] == 1;
  for (int i = 0; i < N; i++) {
    lp2p_gs_stats st;
    lp2p_gs_get_stats(nodes[i].g, &st);
    dups += (long)st.duplicates;
  }
  CHECK_EQ(exact, (long)N * NMSG);
  printf("  flood=%d: %d nodes, %d messages, delivered exactly once %ld/%d, duplicates received %ld (%.1f per "
         "message)\n",
         flood, N, NMSG, exact, N * NMSG, dups, (double)dups / NMSG);
  teardown(N);
}

TEST(sim_30_flood) { simulate(1, 12345); }
TEST(sim_30_mesh) { simulate(0, 777); }

/* Two nodes: 0 and 1, connected, both joined. */
static void pair(void) {
  setup(2, 0, 5, 1);
  pump(0);
}

TEST(graft_unknown_topic_ignored_and_backoff) {
  pair();
  /* node 1 grafts node 0 on a topic node 0 has not joined: ignored (no PRUNE back). */
  lp2p_bytes ctl = {0}, e = {0}, b = {0};
  const lp2p_mem *m = lp2p_mem_default();
  lp2p_gs_pb_ld(m, &e, 1, "nope", 4);
  lp2p_gs_pb_ld(m, &ctl, 3, e.data, e.len);
  lp2p_gs_pb_ld(m, &b, 3, ctl.data, ctl.len);
  CHECK_OK(lp2p_gs_handle_rpc(nodes[0].g, &nodes[1].id, b.data, b.len, 0));
  lp2p_gs_event ev;
  CHECK_EQ(lp2p_gs_poll(nodes[0].g, &ev), 0);
  /* joined topic: node 0 prunes node 1 (unsubscribe), then a GRAFT during backoff -> PRUNE */
  CHECK_OK(lp2p_gs_subscribe(nodes[0].g, T, TL, 0));
  CHECK_OK(lp2p_gs_subscribe(nodes[1].g, T, TL, 0));
  pump(0);
  CHECK_OK(lp2p_gs_tick(nodes[0].g, 1000));
  CHECK_OK(lp2p_gs_tick(nodes[1].g, 1000));
  pump(1000);
  CHECK(lp2p_gs_in_mesh(nodes[0].g, T, TL, &nodes[1].id));
  CHECK(lp2p_gs_in_mesh(nodes[1].g, T, TL, &nodes[0].id));
  CHECK_OK(lp2p_gs_unsubscribe(nodes[0].g, T, TL, 1000));
  CHECK_OK(lp2p_gs_subscribe(nodes[0].g, T, TL, 1000));
  pump(1000);
  CHECK(!lp2p_gs_in_mesh(nodes[1].g, T, TL, &nodes[0].id)); /* pruned */
  e.len = ctl.len = b.len = 0;
  lp2p_gs_pb_ld(m, &e, 1, T, TL);
  lp2p_gs_pb_ld(m, &ctl, 3, e.data, e.len);
  lp2p_gs_pb_ld(m, &b, 3, ctl.data, ctl.len);
  CHECK_OK(lp2p_gs_handle_rpc(nodes[0].g, &nodes[1].id, b.data, b.len, 2000));
  CHECK(!lp2p_gs_in_mesh(nodes[0].g, T, TL, &nodes[1].id)); /* in backoff */
  CHECK_EQ(lp2p_gs_poll(nodes[0].g, &ev), 1);
  CHECK_EQ(ev.type, LP2P_GS_EV_SEND);
  /* heartbeats inside the backoff do not graft; after it they do */
  for (lp2p_tstamp t = 2000; t <= 50000; t += 1000) {
    CHECK_OK(lp2p_gs_tick(nodes[0].g, t));
    while (lp2p_gs_poll(nodes[0].g, &ev)) {
    }
  }
  CHECK(!lp2p_gs_in_mesh(nodes[0].g, T, TL, &nodes[1].id));
  CHECK_OK(lp2p_gs_tick(nodes[0].g, 62000));
  CHECK(lp2p_gs_in_mesh(nodes[0].g, T, TL, &nodes[1].id));
  lp2p__bytes_free(m, &ctl), lp2p__bytes_free(m, &e), lp2p__bytes_free(m, &b);
  teardown(2);
}

TEST(iwant_cap_validation_tamper) {
  pair();
  const lp2p_mem *m = lp2p_mem_default();
  CHECK_OK(lp2p_gs_subscribe(nodes[0].g, T, TL, 0));
  CHECK_OK(lp2p_gs_subscribe(nodes[1].g, T, TL, 0));
  pump(0);
  uint8_t id[256];
  int n = lp2p_gs_publish(nodes[0].g, T, TL, (const uint8_t *)"x", 1, 0, id, sizeof id);
  CHECK(n > 0);
  lp2p_gs_event ev;
  while (lp2p_gs_poll(nodes[0].g, &ev)) {
  }
  /* IWANT x5 from node 1: only gossip_retransmission (3) answers */
  lp2p_bytes e = {0}, ctl = {0}, b = {0};
  lp2p_gs_pb_ld(m, &e, 1, id, (size_t)n);
  lp2p_gs_pb_ld(m, &ctl, 2, e.data, e.len);
  lp2p_gs_pb_ld(m, &b, 3, ctl.data, ctl.len);
  int answered = 0;
  for (int i = 0; i < 5; i++) {
    CHECK_OK(lp2p_gs_handle_rpc(nodes[0].g, &nodes[1].id, b.data, b.len, 0));
    while (lp2p_gs_poll(nodes[0].g, &ev)) answered += ev.type == LP2P_GS_EV_SEND;
  }
  CHECK_EQ(answered, 3);
  /* a signed message from node 0, tampered, is not delivered by node 1; REJECT/IGNORE neither */
  lp2p_gs_msg_fields f = {0};
  uint8_t seq[8] = {1};
  f.data = (const uint8_t *)"abc", f.data_len = 3, f.seqno = seq, f.seqno_len = 8, f.topic = T, f.topic_len = TL;
  lp2p_bytes msg = {0}, rpc = {0};
  CHECK_OK(lp2p_gs_msg_sign_encode(m, nodes[0].k, &f, &msg));
  uint8_t *abc = memmem(msg.data, msg.len, "abc", 3);
  CHECK(abc != NULL);
  abc[0] = 'X';
  lp2p_gs_pb_ld(m, &rpc, 2, msg.data, msg.len);
  CHECK_OK(lp2p_gs_handle_rpc(nodes[1].g, &nodes[0].id, rpc.data, rpc.len, 0));
  lp2p_gs_stats st;
  lp2p_gs_get_stats(nodes[1].g, &st);
  CHECK_EQ(st.invalid_sig, 1);
  CHECK_EQ(st.delivered, 0);
  nodes[1].verdict = LP2P_GS_REJECT;
  CHECK_OK(lp2p_gs_publish(nodes[0].g, T, TL, (const uint8_t *)"y", 1, 0, NULL, 0));
  pump(0);
  nodes[1].verdict = LP2P_GS_IGNORE;
  CHECK_OK(lp2p_gs_publish(nodes[0].g, T, TL, (const uint8_t *)"z", 1, 0, NULL, 0));
  pump(0);
  lp2p_gs_get_stats(nodes[1].g, &st);
  CHECK_EQ(st.delivered, 0);
  CHECK_EQ(st.rejected, 1);
  CHECK_EQ(st.ignored, 1);
  nodes[1].verdict = LP2P_GS_ACCEPT;
  CHECK_OK(lp2p_gs_publish(nodes[0].g, T, TL, (const uint8_t *)"w", 1, 0, NULL, 0));
  pump(0);
  lp2p_gs_get_stats(nodes[1].g, &st);
  CHECK_EQ(st.delivered, 1);
  lp2p__bytes_free(m, &ctl), lp2p__bytes_free(m, &e), lp2p__bytes_free(m, &b);
  lp2p__bytes_free(m, &msg), lp2p__bytes_free(m, &rpc);
  teardown(2);
}

TEST(sim_30_mesh_scored) {
  scoring = 1;
  simulate(0, 4242);
  scoring = 0;
}

static void send_ctl(int to, int from, uint32_t field, const char *topic, const uint8_t *id, size_t idn,
                     lp2p_tstamp now) {
  const lp2p_mem *m = lp2p_mem_default();
  lp2p_bytes e = {0}, ctl = {0}, b = {0};
  if (topic) lp2p_gs_pb_ld(m, &e, 1, topic, strlen(topic));
  if (id) lp2p_gs_pb_ld(m, &e, topic ? 2 : 1, id, idn);
  lp2p_gs_pb_ld(m, &ctl, field, e.data, e.len);
  lp2p_gs_pb_ld(m, &b, 3, ctl.data, ctl.len);
  CHECK_OK(lp2p_gs_handle_rpc(nodes[to].g, &nodes[from].id, b.data, b.len, now));
  lp2p__bytes_free(m, &ctl), lp2p__bytes_free(m, &e), lp2p__bytes_free(m, &b);
}

TEST(scoring_penalties_graylist) {
  scoring = 1;
  setup(4, 0, 9, 0);
  const lp2p_mem *m = lp2p_mem_default();
  for (int i = 0; i < 4; i++) CHECK_OK(lp2p_gs_subscribe(nodes[i].g, T, TL, 0));
  pump(0);
  CHECK_OK(lp2p_gs_tick(nodes[0].g, 1000));
  pump(1000);
  CHECK(lp2p_gs_in_mesh(nodes[0].g, T, TL, &nodes[1].id));
  double sc;
  /* broken IWANT promise: node 1 announces an id and never sends it -> P7 */
  send_ctl(0, 1, 1, (const char *)T, (const uint8_t *)"ghost-id", 8, 1000);
  lp2p_gs_event ev;
  int iwant = 0;
  while (lp2p_gs_poll(nodes[0].g, &ev)) iwant += ev.type == LP2P_GS_EV_SEND;
  CHECK_EQ(iwant, 1);
  CHECK_OK(lp2p_gs_tick(nodes[0].g, 5000));
  pump(5000);
  lp2p_gs_stats st;
  lp2p_gs_get_stats(nodes[0].g, &st);
  CHECK_EQ(st.broken_promises, 1);
  CHECK_OK(lp2p_gs_peer_score(nodes[0].g, &nodes[1].id, 5000, &sc));
  CHECK(sc < -5); /* behaviour 0.9^k squared times -10 */
  /* P4: three invalid signatures from node 3 -> below graylist (-10 * 3^2 = -90) */
  for (int k = 0; k < 3; k++) {
    lp2p_gs_msg_fields f = {0};
    uint8_t seq[8] = {2, (uint8_t)k};
    f.data = (const uint8_t *)"abc", f.data_len = 3, f.seqno = seq, f.seqno_len = 8, f.topic = T, f.topic_len = TL;
    lp2p_bytes msg = {0}, rpc = {0};
    CHECK_OK(lp2p_gs_msg_sign_encode(m, nodes[3].k, &f, &msg));
    msg.data[msg.len - 1] ^= 1; /* the last byte belongs to the signature */
    lp2p_gs_pb_ld(m, &rpc, 2, msg.data, msg.len);
    CHECK_OK(lp2p_gs_handle_rpc(nodes[0].g, &nodes[3].id, rpc.data, rpc.len, 5000));
    lp2p__bytes_free(m, &msg), lp2p__bytes_free(m, &rpc);
  }
  CHECK_OK(lp2p_gs_peer_score(nodes[0].g, &nodes[3].id, 5000, &sc));
  CHECK(sc < -80);
  send_ctl(0, 3, 3, (const char *)T, NULL, 0, 5000); /* GRAFT ignored: graylisted */
  lp2p_gs_get_stats(nodes[0].g, &st);
  CHECK_EQ(st.invalid_sig, 3);
  CHECK_EQ(st.graylisted, 1);
  CHECK_OK(lp2p_gs_tick(nodes[0].g, 6000));
  pump(6000);
  CHECK(!lp2p_gs_in_mesh(nodes[0].g, T, TL, &nodes[3].id)); /* negative peers leave the mesh */
  /* P6: two peers behind one address key */
  CHECK_OK(lp2p_gs_set_peer_addr_key(nodes[0].g, &nodes[1].id, 77));
  CHECK_OK(lp2p_gs_peer_score(nodes[0].g, &nodes[1].id, 6000, &sc));
  double before = sc;
  CHECK_OK(lp2p_gs_set_peer_addr_key(nodes[0].g, &nodes[3].id, 77));
  CHECK_OK(lp2p_gs_peer_score(nodes[0].g, &nodes[1].id, 6000, &sc));
  CHECK(sc < before - 9.9 && sc > before - 10.1);
  /* Score retention: node 3 leaves and comes back at once with the same (decayed P4) score */
  CHECK_OK(lp2p_gs_set_peer_addr_key(nodes[0].g, &nodes[3].id, 0));
  CHECK_OK(lp2p_gs_peer_score(nodes[0].g, &nodes[3].id, 6000, &sc));
  double bad = sc;
  CHECK(bad < -5);
  CHECK_OK(lp2p_gs_remove_peer(nodes[0].g, &nodes[3].id, 6000));
  CHECK_OK(lp2p_gs_add_peer(nodes[0].g, &nodes[3].id, LP2P_GS_PROTO_V11, 0, 6000));
  pump(6000);
  CHECK_OK(lp2p_gs_peer_score(nodes[0].g, &nodes[3].id, 6000, &sc));
  CHECK(sc > bad - 1e-9 && sc < bad + 1e-9);
  /* ... and after the retention time a returning peer starts from zero */
  CHECK_OK(lp2p_gs_remove_peer(nodes[0].g, &nodes[3].id, 6000));
  CHECK_OK(lp2p_gs_tick(nodes[0].g, 6000 + 600000));
  pump(606000);
  CHECK_OK(lp2p_gs_add_peer(nodes[0].g, &nodes[3].id, LP2P_GS_PROTO_V11, 0, 606000));
  pump(606000);
  CHECK_OK(lp2p_gs_peer_score(nodes[0].g, &nodes[3].id, 606000, &sc));
  CHECK(sc == 0);
  teardown(4);
  scoring = 0;
}

int main(void) {
  RUN(sim_30_flood);
  RUN(sim_30_mesh);
  RUN(sim_30_mesh_scored);
  RUN(scoring_penalties_graylist);
  RUN(graft_unknown_topic_ignored_and_backoff);
  RUN(iwant_cap_validation_tamper);
  return test_done();
}
