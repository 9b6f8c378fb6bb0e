/* tests/unit/test_gossip_router.c - the sans-IO gossipsub router: a 30-node simulation on a
 * random sparse graph (every message delivered exactly once to every subscriber, mesh
 * degrees within D_lo..D_hi), GRAFT handling (unknown topic ignored, backoff answered with
 * PRUNE), IWANT retransmission cap, validation verdicts and tampered signatures, v1.2
 * IDONTWANT (codec, sent for large messages to v1.2 mesh peers, honoured, bounded, expiring),
 * held forwards (the simulation with hold_forwards + IDONTWANT for every message; byte-level:
 * the urgent IDONTWANT RPC goes first and only to the peers a forward is held for; a held
 * forward is cancelled by an IDONTWANT and by a copy from its peer, the rest go out on
 * lp2p_gs_flush_forwards or the next tick). */
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

/* Moves every SEND to its target until nothing is left; counts deliveries. Held forwards
 * (hold_forwards) are flushed at the end of each round: the next "loop turn". */
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
    for (int i = 0; i < N; i++)
      if (nodes[i].g && lp2p_gs_held_forwards(nodes[i].g)) {
        CHECK_OK(lp2p_gs_flush_forwards(nodes[i].g, now));
        round++;
      }
    moved += round;
  } while (round);
  return moved;
}

static int scoring;
static int proto = LP2P_GS_PROTO_V11;
static int hold;              /* hold_forwards */
static size_t idw_threshold = 1024;
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
    c.hold_forwards = hold, c.idontwant_threshold = idw_threshold;
    CHECK_OK(lp2p_gs_new(&x->g, &c, 0));
  }
  /* ring + random chords: connected, sparse */
  for (int i = 0; i < (n == 2 ? 1 : n); i++) {
    int j = (i + 1) % n;
    CHECK_OK(lp2p_gs_add_peer(nodes[i].g, &nodes[j].id, proto, 1, 0));
    CHECK_OK(lp2p_gs_add_peer(nodes[j].g, &nodes[i].id, proto, 0, 0));
  }
  for (unsigned e = 0; e < edges_extra; e++) {
    uint8_t r[2];
    xrng(&gs, r, 2);
    int i = r[0] % n, j = r[1] % n;
    if (i == j || lp2p_gs_add_peer(nodes[i].g, &nodes[j].id, proto, 1, 0) == LP2P_ERR_EXISTS)
      continue;
    CHECK_OK(lp2p_gs_add_peer(nodes[j].g, &nodes[i].id, proto, 0, 0));
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
  long exact = 0, dups = 0, cancelled = 0, held = 0;
  for (int i = 0; i < N; i++)
    for (int m = 0; m < NMSG; m++) exact += nodes[i].delivered[m] == 1;
  for (int i = 0; i < N; i++) {
    lp2p_gs_stats st;
    lp2p_gs_get_stats(nodes[i].g, &st);
    dups += (long)st.duplicates, cancelled += (long)st.fwd_cancelled, held += (long)st.fwd_held;
    CHECK_EQ(lp2p_gs_held_forwards(nodes[i].g), 0u);
  }
  CHECK_EQ(exact, (long)N * NMSG);
  printf("  flood=%d hold=%d: %d nodes, %d messages, delivered exactly once %ld/%d, duplicates received %ld (%.1f "
         "per message), forwards held %ld, cancelled %ld\n",
         flood, hold, N, NMSG, exact, N * NMSG, dups, (double)dups / NMSG, held, cancelled);
  if (hold) CHECK(held > 0 && cancelled > 0);
  teardown(N);
}

TEST(sim_30_flood) { simulate(1, 12345); }
TEST(sim_30_mesh) { simulate(0, 777); }
/* v1.2 everywhere, IDONTWANT for every message, forwards held a round: exactly once still */
TEST(sim_30_mesh_held) {
  hold = 1, proto = LP2P_GS_PROTO_V12, idw_threshold = 1;
  simulate(0, 777);
  hold = 0, proto = LP2P_GS_PROTO_V11, idw_threshold = 1024;
}

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

/* ---- v1.2 IDONTWANT ---- */
static lp2p_gs *idw_router; /* node 0's router, driven by hand-built RPCs from nodes 1 (v1.2) and 2 (v1.2) */

static void rpc_in(int from, const lp2p_bytes *b, lp2p_tstamp now) {
  CHECK_OK(lp2p_gs_handle_rpc(idw_router, &nodes[from].id, b->data, b->len, now));
}
/* Drains node 0's events; counts messages (with id) and IDONTWANT ids sent to node `to`. */
static void idw_drain(int to, const uint8_t *id, size_t idlen, int *msgs, int *idws) {
  lp2p_gs_event ev;
  *msgs = *idws = 0;
  while (lp2p_gs_poll(idw_router, &ev)) {
    if (ev.type != LP2P_GS_EV_SEND || !lp2p_peer_id_equal(&ev.peer, &nodes[to].id)) continue;
    uint64_t len;
    int pre = lp2p_uvarint_decode(ev.data, ev.len, &len);
    CHECK(pre > 0);
    Lp2pGs__RPC *r = NULL;
    CHECK_OK(lp2p_gs_rpc_decode(lp2p_mem_default(), ev.data + pre, (size_t)len, NULL, &r));
    for (size_t i = 0; i < r->n_publish; i++) {
      Lp2pGs__Message *m = r->publish[i];
      if (m->from.len + m->seqno.len == idlen && !memcmp(m->from.data, id, m->from.len) &&
          !memcmp(m->seqno.data, id + m->from.len, m->seqno.len))
        (*msgs)++;
    }
    for (size_t i = 0; r->control && i < r->control->n_idontwant; i++)
      for (size_t k = 0; k < r->control->idontwant[i]->n_messageids; k++) {
        ProtobufCBinaryData *d = &r->control->idontwant[i]->messageids[k];
        if (d->len == idlen && !memcmp(d->data, id, idlen)) (*idws)++;
      }
    lp2p_gs_rpc_free(lp2p_mem_default(), r);
  }
}
/* An RPC from node `from` publishing a message of `dlen` bytes with seqno `seq`; its id in id/idlen. */
static void idw_msg(int from, uint8_t seq, size_t dlen, lp2p_bytes *rpc, uint8_t *id, size_t *idlen) {
  static uint8_t data[2048];
  uint8_t sq[8] = {0, 0, 0, 0, 0, 0, 0, seq};
  memset(data, 'x', sizeof data);
  lp2p_gs_msg_fields f = {0};
  f.data = data, f.data_len = dlen, f.seqno = sq, f.seqno_len = 8, f.topic = T, f.topic_len = TL;
  lp2p_bytes msg = {0};
  CHECK_OK(lp2p_gs_msg_sign_encode(lp2p_mem_default(), nodes[from].k, &f, &msg));
  rpc->len = 0;
  CHECK_OK(lp2p_gs_pb_ld(lp2p_mem_default(), rpc, 2, msg.data, msg.len));
  lp2p__bytes_free(lp2p_mem_default(), &msg);
  memcpy(id, nodes[from].id.bytes, nodes[from].id.len), memcpy(id + nodes[from].id.len, sq, 8);
  *idlen = nodes[from].id.len + 8;
}
/* An RPC carrying one IDONTWANT with n ids: id (when non-NULL) then distinct fillers. */
static void idw_ctl(lp2p_bytes *rpc, const uint8_t *id, size_t idlen, size_t n, uint32_t salt) {
  lp2p_bytes e = {0}, c = {0};
  for (size_t i = 0; i < n; i++) {
    uint8_t f[12] = {'f'};
    memcpy(f + 1, &i, sizeof(uint32_t)), memcpy(f + 5, &salt, sizeof salt);
    if (i == 0 && id) CHECK_OK(lp2p_gs_pb_ld(lp2p_mem_default(), &e, 1, id, idlen));
    else CHECK_OK(lp2p_gs_pb_ld(lp2p_mem_default(), &e, 1, f, sizeof f));
  }
  CHECK_OK(lp2p_gs_pb_ld(lp2p_mem_default(), &c, 5, e.data, e.len));
  rpc->len = 0;
  CHECK_OK(lp2p_gs_pb_ld(lp2p_mem_default(), rpc, 3, c.data, c.len));
  lp2p__bytes_free(lp2p_mem_default(), &e), lp2p__bytes_free(lp2p_mem_default(), &c);
}

static void idontwant(void) {
  /* codec: IDONTWANT round trip and the id limit */
  lp2p_bytes rpc = {0};
  uint8_t id[300];
  size_t idlen;
  idw_ctl(&rpc, (const uint8_t *)"abc", 3, 4, 1);
  Lp2pGs__RPC *r = NULL;
  CHECK_OK(lp2p_gs_rpc_decode(lp2p_mem_default(), rpc.data, rpc.len, NULL, &r));
  CHECK(r->control && r->control->n_idontwant == 1 && r->control->idontwant[0]->n_messageids == 4);
  CHECK(r->control->idontwant[0]->messageids[0].len == 3 && !memcmp(r->control->idontwant[0]->messageids[0].data, "abc", 3));
  lp2p_gs_rpc_free(lp2p_mem_default(), r);
  idw_ctl(&rpc, NULL, 0, 5001, 2);
  CHECK(lp2p_gs_rpc_decode(lp2p_mem_default(), rpc.data, rpc.len, NULL, &r) == LP2P_ERR_LIMIT && !r);

  /* router: node 0 with peers 1 and 2 (v1.2) in its mesh of T */
  proto = LP2P_GS_PROTO_V12;
  setup(3, 0, 5, 0);
  proto = LP2P_GS_PROTO_V11;
  idw_router = nodes[0].g;
  for (int i = 0; i < 3; i++) CHECK_OK(lp2p_gs_subscribe(nodes[i].g, T, TL, 0));
  pump(0);
  for (int i = 0; i < 3; i++) CHECK_OK(lp2p_gs_tick(nodes[i].g, 1000));
  pump(1000);
  CHECK(lp2p_gs_in_mesh(idw_router, T, TL, &nodes[1].id) && lp2p_gs_in_mesh(idw_router, T, TL, &nodes[2].id));
  int msgs, idws;
  lp2p_gs_stats st;
  /* a large message from 1: IDONTWANT to 2 (not to 1), and forwarded to 2 */
  idw_msg(1, 1, 1500, &rpc, id, &idlen);
  rpc_in(1, &rpc, 1100);
  idw_drain(2, id, idlen, &msgs, &idws);
  CHECK(msgs == 1 && idws == 1);
  lp2p_gs_get_stats(idw_router, &st);
  CHECK(st.idontwant_sent == 1);
  /* a small message: no IDONTWANT */
  idw_msg(1, 2, 100, &rpc, id, &idlen);
  rpc_in(1, &rpc, 1100);
  idw_drain(2, id, idlen, &msgs, &idws);
  CHECK(msgs == 1 && idws == 0);
  /* 2 says IDONTWANT for the next message of 1: it is not forwarded to 2 */
  idw_msg(1, 3, 100, &rpc, id, &idlen);
  lp2p_bytes ctl = {0};
  idw_ctl(&ctl, id, idlen, 1, 3);
  rpc_in(2, &ctl, 1100);
  rpc_in(1, &rpc, 1100);
  idw_drain(2, id, idlen, &msgs, &idws);
  CHECK(msgs == 0);
  lp2p_gs_get_stats(idw_router, &st);
  CHECK(st.idontwant_skipped == 1 && st.idontwant_recv == 1);
  /* limits: 1500 ids in one heartbeat: 1000 kept, the rest (and malformed ones) dropped */
  idw_ctl(&ctl, NULL, 0, 1500, 4);
  rpc_in(2, &ctl, 1200);
  lp2p_gs_get_stats(idw_router, &st);
  CHECK(st.idontwant_recv == 1000 && st.idontwant_dropped == 501);
  /* an IDONTWANT for seqno 4 now (over the budget) is ignored: the message reaches 2 */
  idw_msg(1, 4, 100, &rpc, id, &idlen);
  idw_ctl(&ctl, id, idlen, 1, 5);
  rpc_in(2, &ctl, 1200);
  rpc_in(1, &rpc, 1200);
  idw_drain(2, id, idlen, &msgs, &idws);
  CHECK(msgs == 1);
  /* the next heartbeat resets the budget; an id expires after 3 heartbeats */
  CHECK_OK(lp2p_gs_tick(idw_router, 2000));
  idw_msg(1, 5, 100, &rpc, id, &idlen);
  idw_ctl(&ctl, id, idlen, 1, 6);
  rpc_in(2, &ctl, 2100);
  for (lp2p_tstamp t = 3000; t <= 5000; t += 1000) CHECK_OK(lp2p_gs_tick(idw_router, t));
  idw_drain(2, id, idlen, &msgs, &idws);
  rpc_in(1, &rpc, 5100);
  idw_drain(2, id, idlen, &msgs, &idws);
  CHECK(msgs == 1); /* expired: forwarded again */
  idw_msg(1, 6, 100, &rpc, id, &idlen); /* within the TTL it holds */
  idw_ctl(&ctl, id, idlen, 1, 7);
  rpc_in(2, &ctl, 5200);
  CHECK_OK(lp2p_gs_tick(idw_router, 6000));
  CHECK_OK(lp2p_gs_tick(idw_router, 7000));
  idw_drain(2, id, idlen, &msgs, &idws);
  rpc_in(1, &rpc, 7100);
  idw_drain(2, id, idlen, &msgs, &idws);
  CHECK(msgs == 0);
  /* a v1.1 peer gets no IDONTWANT */
  CHECK_OK(lp2p_gs_remove_peer(idw_router, &nodes[2].id, 7200));
  CHECK_OK(lp2p_gs_add_peer(idw_router, &nodes[2].id, LP2P_GS_PROTO_V11, 1, 7200));
  lp2p_bytes sub = {0}, so = {0};
  CHECK_OK(lp2p_gs_pb_varint(lp2p_mem_default(), &so, 1, 1));
  CHECK_OK(lp2p_gs_pb_ld(lp2p_mem_default(), &so, 2, T, TL));
  CHECK_OK(lp2p_gs_pb_ld(lp2p_mem_default(), &sub, 1, so.data, so.len));
  rpc_in(2, &sub, 7200);
  CHECK_OK(lp2p_gs_tick(idw_router, 8000));
  CHECK(lp2p_gs_in_mesh(idw_router, T, TL, &nodes[2].id));
  idw_drain(2, id, idlen, &msgs, &idws);
  idw_msg(1, 7, 1500, &rpc, id, &idlen);
  rpc_in(1, &rpc, 8100);
  idw_drain(2, id, idlen, &msgs, &idws);
  CHECK(msgs == 1 && idws == 0);
  lp2p__bytes_free(lp2p_mem_default(), &rpc), lp2p__bytes_free(lp2p_mem_default(), &ctl), lp2p__bytes_free(lp2p_mem_default(), &sub), lp2p__bytes_free(lp2p_mem_default(), &so);
  teardown(3);
}

/* ---- held forwards + urgent IDONTWANT (node 0 with hold_forwards; peers 1, 2, 4, 5 v1.2, 3 v1.1) ---- */
/* Polls every event of node 0: per destination node, copies of message `id` sent and urgent RPCs;
 * the number of DELIVER events; order[] the event types in order (S send, U urgent send, D deliver). */
static void held_poll(const uint8_t *id, size_t idlen, int msgs[6], int urg[6], int *deliv, char *order) {
  lp2p_gs_event ev;
  memset(msgs, 0, 6 * sizeof *msgs), memset(urg, 0, 6 * sizeof *urg);
  *deliv = 0;
  size_t no = 0;
  while (lp2p_gs_poll(idw_router, &ev)) {
    if (no < 15) order[no++] = ev.type == LP2P_GS_EV_DELIVER ? 'D' : ev.urgent ? 'U' : 'S';
    if (ev.type == LP2P_GS_EV_DELIVER) (*deliv)++;
    if (ev.type != LP2P_GS_EV_SEND) continue;
    int to = find_node(&ev.peer);
    CHECK(to > 0 && to < 6);
    if (ev.urgent) urg[to]++;
    uint64_t len;
    int pre = lp2p_uvarint_decode(ev.data, ev.len, &len);
    CHECK(pre > 0);
    Lp2pGs__RPC *r = NULL;
    CHECK_OK(lp2p_gs_rpc_decode(lp2p_mem_default(), ev.data + pre, (size_t)len, NULL, &r));
    for (size_t i = 0; i < r->n_publish; i++) {
      Lp2pGs__Message *m = r->publish[i];
      if (m->from.len + m->seqno.len == idlen && !memcmp(m->from.data, id, m->from.len) &&
          !memcmp(m->seqno.data, id + m->from.len, m->seqno.len))
        msgs[to]++;
    }
    if (ev.urgent) CHECK(r->n_publish == 0 && r->n_subscriptions == 0 && r->control && r->control->n_idontwant == 1);
    lp2p_gs_rpc_free(lp2p_mem_default(), r);
  }
  order[no] = 0;
}

TEST(held_forwards_urgent_idontwant) {
  proto = LP2P_GS_PROTO_V12, hold = 1;
  setup(6, 0, 11, 0); /* ring 0-1-2-3-4-5-0, plus 0-2, 0-3 (v1.1 on node 0's side), 0-4 */
  proto = LP2P_GS_PROTO_V11, hold = 0;
  for (int k = 2; k <= 4; k++) {
    CHECK_OK(lp2p_gs_add_peer(nodes[0].g, &nodes[k].id, k == 3 ? LP2P_GS_PROTO_V11 : LP2P_GS_PROTO_V12, 1, 0));
    CHECK_OK(lp2p_gs_add_peer(nodes[k].g, &nodes[0].id, LP2P_GS_PROTO_V12, 0, 0));
  }
  idw_router = nodes[0].g;
  for (int i = 0; i < 6; i++) CHECK_OK(lp2p_gs_subscribe(nodes[i].g, T, TL, 0));
  pump(0);
  for (int i = 0; i < 6; i++) CHECK_OK(lp2p_gs_tick(nodes[i].g, 1000));
  pump(1000);
  for (int k = 1; k <= 5; k++) CHECK(lp2p_gs_in_mesh(idw_router, T, TL, &nodes[k].id));
  lp2p_bytes rpc = {0}, ctl = {0};
  uint8_t id[300];
  size_t idlen;
  int msgs[6], urg[6], deliv;
  char order[16];
  lp2p_gs_stats st;

  /* m (1500 B) authored by 5; 4 already said IDONTWANT for it; it arrives from 1 */
  idw_msg(5, 1, 1500, &rpc, id, &idlen);
  CHECK(idlen < 120);
  idw_ctl(&ctl, id, idlen, 1, 21);
  rpc_in(4, &ctl, 1100);
  rpc_in(1, &rpc, 1100);
  /* first event: the urgent IDONTWANT, to 2 only (not 1: sender, 3: v1.1, 4: has it, 5: author) */
  lp2p_gs_event ev;
  CHECK_EQ(lp2p_gs_poll(idw_router, &ev), 1);
  CHECK(ev.type == LP2P_GS_EV_SEND && ev.urgent && lp2p_peer_id_equal(&ev.peer, &nodes[2].id));
  uint8_t want[160];
  size_t w = 0; /* RPC{control(3){idontwant(5){messageIDs(1): id}}}, length-prefixed */
  want[w++] = (uint8_t)(idlen + 6), want[w++] = 0x1a, want[w++] = (uint8_t)(idlen + 4);
  want[w++] = 0x2a, want[w++] = (uint8_t)(idlen + 2), want[w++] = 0x0a, want[w++] = (uint8_t)idlen;
  memcpy(want + w, id, idlen), w += idlen;
  CHECK_EQ(ev.len, w);
  CHECK(!memcmp(ev.data, want, w));
  held_poll(id, idlen, msgs, urg, &deliv, order);
  CHECK(!strcmp(order, "D")); /* delivered; nothing forwarded yet */
  CHECK_EQ(lp2p_gs_held_forwards(idw_router), 2u); /* to 2 and 3 */
  /* 2 says IDONTWANT, 3 sends its copy: both held forwards are cancelled, nothing goes out */
  idw_ctl(&ctl, id, idlen, 1, 22);
  rpc_in(2, &ctl, 1101);
  CHECK_EQ(lp2p_gs_held_forwards(idw_router), 1u);
  rpc_in(3, &rpc, 1101);
  CHECK_EQ(lp2p_gs_held_forwards(idw_router), 0u);
  lp2p_gs_get_stats(idw_router, &st);
  CHECK(st.fwd_held == 2 && st.fwd_cancelled == 2 && st.duplicates == 1 && st.idontwant_sent == 1);
  CHECK_OK(lp2p_gs_flush_forwards(idw_router, 1102));
  held_poll(id, idlen, msgs, urg, &deliv, order);
  CHECK(!strcmp(order, ""));

  /* m2 (1500 B) from 1: urgent IDONTWANT to 2 and 4 ahead of the DELIVER; forwards held to 2, 3, 4 and
   * sent by lp2p_gs_flush_forwards */
  idw_msg(5, 2, 1500, &rpc, id, &idlen);
  rpc_in(1, &rpc, 1200);
  CHECK_EQ(lp2p_gs_held_forwards(idw_router), 3u);
  held_poll(id, idlen, msgs, urg, &deliv, order);
  CHECK(!strcmp(order, "UUD"));
  CHECK(urg[2] == 1 && urg[4] == 1 && urg[1] + urg[3] + urg[5] == 0);
  CHECK_OK(lp2p_gs_flush_forwards(idw_router, 1201));
  held_poll(id, idlen, msgs, urg, &deliv, order);
  CHECK(msgs[2] == 1 && msgs[3] == 1 && msgs[4] == 1 && msgs[1] + msgs[5] == 0);
  CHECK(urg[1] + urg[2] + urg[3] + urg[4] + urg[5] == 0);

  /* m3 (small: no IDONTWANT) from 1: held, then sent by the next tick */
  idw_msg(5, 3, 100, &rpc, id, &idlen);
  rpc_in(1, &rpc, 1300);
  held_poll(id, idlen, msgs, urg, &deliv, order);
  CHECK(!strcmp(order, "D"));
  CHECK_EQ(lp2p_gs_held_forwards(idw_router), 3u);
  CHECK_OK(lp2p_gs_tick(idw_router, 2000));
  CHECK_EQ(lp2p_gs_held_forwards(idw_router), 0u);
  held_poll(id, idlen, msgs, urg, &deliv, order);
  CHECK(msgs[2] == 1 && msgs[3] == 1 && msgs[4] == 1 && msgs[1] + msgs[5] == 0);

  /* m4 from 1: the forward held for 2 is cancelled by an IHAVE of 2, the one for 4 when 4 goes away */
  idw_msg(5, 4, 100, &rpc, id, &idlen);
  rpc_in(1, &rpc, 2100);
  held_poll(id, idlen, msgs, urg, &deliv, order);
  send_ctl(0, 2, 1, (const char *)T, id, idlen, 2100);
  CHECK_EQ(lp2p_gs_held_forwards(idw_router), 2u);
  CHECK_OK(lp2p_gs_remove_peer(idw_router, &nodes[4].id, 2100));
  CHECK_EQ(lp2p_gs_held_forwards(idw_router), 1u);
  CHECK_OK(lp2p_gs_flush_forwards(idw_router, 2101));
  held_poll(id, idlen, msgs, urg, &deliv, order);
  CHECK(msgs[3] == 1 && msgs[1] + msgs[2] + msgs[4] + msgs[5] == 0);
  /* 60 held messages of 1500 B for 2 and 3: sent in RPCs of at most 32 KiB of messages (rust-libp2p
   * refuses RPCs over 64 KiB) */
  for (int k = 0; k < 60; k++) {
    idw_msg(5, (uint8_t)(10 + k), 1500, &rpc, id, &idlen);
    rpc_in(1, &rpc, 2200);
  }
  CHECK_EQ(lp2p_gs_held_forwards(idw_router), 120u);
  held_poll(id, idlen, msgs, urg, &deliv, order);
  CHECK_EQ(deliv, 60);
  CHECK_OK(lp2p_gs_flush_forwards(idw_router, 2201));
  size_t nsend = 0, nmsg = 0;
  while (lp2p_gs_poll(idw_router, &ev)) {
    CHECK(ev.type == LP2P_GS_EV_SEND && !ev.urgent && ev.len <= 32768 + 1600);
    uint64_t len;
    int pre = lp2p_uvarint_decode(ev.data, ev.len, &len);
    Lp2pGs__RPC *r = NULL;
    CHECK(pre > 0);
    CHECK_OK(lp2p_gs_rpc_decode(lp2p_mem_default(), ev.data + pre, (size_t)len, NULL, &r));
    nsend++, nmsg += r->n_publish;
    lp2p_gs_rpc_free(lp2p_mem_default(), r);
  }
  CHECK_EQ(nmsg, 120u);
  CHECK(nsend >= 6);
  lp2p__bytes_free(lp2p_mem_default(), &rpc), lp2p__bytes_free(lp2p_mem_default(), &ctl);
  teardown(6);
}

int main(void) {
  RUN(sim_30_flood);
  RUN(sim_30_mesh);
  RUN(sim_30_mesh_held);
  RUN(sim_30_mesh_scored);
  RUN(scoring_penalties_graylist);
  RUN(graft_unknown_topic_ignored_and_backoff);
  RUN(iwant_cap_validation_tamper);
  RUN(idontwant);
  RUN(held_forwards_urgent_idontwant);
  return test_done();
}
