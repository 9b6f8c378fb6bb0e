/* tests/unit/test_kad.c - the Kademlia behaviour (lp2p/kad.h) with real swarms on loopback TCP in
 * one process: a small network (put/get, find-peer, providers, client mode, peer routing through
 * lp2p_swarm_open_stream), a 50-swarm network (bootstrap, put/get, provide/find-providers,
 * find-peer, routing for a newcomer) and hostile peers (junk, enormous closer lists, far/unreachable
 * peers, silence, ADD_PROVIDER for someone else, record floods): only the offender suffers. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kad/engine/kad_engine.h"
#include "lp2p/encoding.h"
#include "lp2p/identify.h"
#include "lp2p/kad.h"
#include "lp2p/peerstore.h"
#include "lp2p/ping.h"
#include "swarm_harness.h"
#include "test.h"

/* ---------------------------------------------------------------------------------------------- */
/* query recorder */
typedef struct qres {
  int calls, err;
  lp2p_kad_stats st;
  size_t n_peers;
  lp2p_peer_id peers[64];
  size_t n_addrs0;
  uint8_t value[512];
  size_t vlen;
  unsigned stored;
} qres;

static void qcb(lp2p_kad *k, const lp2p_kad_result *r, void *ud) {
  qres *q = ud;
  (void)k;
  q->calls++;
  q->err = r->err;
  q->st = r->stats;
  q->n_peers = r->n_peers;
  for (size_t i = 0; i < r->n_peers && i < 64; i++) q->peers[i] = r->peers[i].peer;
  q->n_addrs0 = r->n_peers ? r->peers[0].n_addrs : 0;
  q->vlen = r->value_len < sizeof q->value ? r->value_len : sizeof q->value;
  if (r->value) memcpy(q->value, r->value, q->vlen);
  q->stored = r->stored;
}

static int has_peer(const qres *q, const lp2p_peer_id *p) {
  for (size_t i = 0; i < q->n_peers && i < 64; i++)
    if (lp2p_peer_id_equal(&q->peers[i], p)) return 1;
  return 0;
}

/* a validator for "/v/" accepting anything (selects the longest value) */
static int v_validate(void *ud, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen) {
  (void)ud, (void)key, (void)klen, (void)val;
  return vlen <= 256 ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------------- */
/* nodes */
typedef struct node {
  tsw t;
  lp2p_kad *kad;
} node;

static int node_init(node *n, tloop *L, uint8_t seed, const lp2p_kad_config *kc) {
  lp2p_swarm_config sc;
  tsw_config(&sc);
  sc.idle_timeout_ms = 0; /* keep connections: the test network is small and busy */
  int rv = tsw_init(&n->t, L, seed, &sc, TSW_LISTEN_TCP);
  if (rv < 0) return rv;
  if ((rv = lp2p_identify_add(n->t.sw, NULL, NULL)) < 0) return rv;
  if ((rv = lp2p_ping_add(n->t.sw, NULL, NULL)) < 0) return rv;
  lp2p_kad_config c;
  if (kc) {
    c = *kc;
  } else {
    lp2p_kad_config_default(&c);
  }
  static const lp2p_kad_validator vv = {"v", v_validate, NULL, NULL};
  if (!c.n_validators) {
    c.validators = &vv;
    c.n_validators = 1;
  }
  return lp2p_kad_add(n->t.sw, &c, &n->kad);
}

static void node_free(node *n) { tsw_free(&n->t); }

static size_t table_size(node *n) { return lp2p_kad_routing_table(n->kad, NULL, 0); }

static int in_table(node *n, const lp2p_peer_id *p) {
  lp2p_peer_id t[256];
  size_t k = lp2p_kad_routing_table(n->kad, t, 256);
  for (size_t i = 0; i < k && i < 256; i++)
    if (lp2p_peer_id_equal(&t[i], p)) return 1;
  return 0;
}

static void pk_record(node *n, uint8_t *key, size_t *klen, uint8_t *val, size_t *vlen) {
  lp2p_kad_pk_record(lp2p_privkey_public(n->t.key), key, 64, klen, val, 128, vlen);
}

/* ---------------------------------------------------------------------------------------------- */
TEST(kad_api_basics) {
  tloop L;
  tloop_init(&L);
  node a;
  REQUIRE(node_init(&a, &L, 1, NULL) == 0);
  CHECK(lp2p_kad_get(a.t.sw) == a.kad);
  CHECK_EQ(lp2p_kad_add(a.t.sw, NULL, NULL), LP2P_ERR_EXISTS);
  CHECK(lp2p_kad_is_server(a.kad));
  CHECK_STR(lp2p_kad_protocol(a.kad), LP2P_KAD_PROTOCOL_ID);
  const char *protos[32];
  size_t np = lp2p_swarm_protocols(a.t.sw, protos, 32);
  int found = 0;
  for (size_t i = 0; i < np && i < 32; i++) found |= !strcmp(protos[i], LP2P_KAD_PROTOCOL_ID);
  CHECK(found);
  /* client mode: the protocol leaves the registry */
  CHECK_OK(lp2p_kad_set_mode(a.kad, LP2P_KAD_MODE_CLIENT));
  CHECK(!lp2p_kad_is_server(a.kad));
  np = lp2p_swarm_protocols(a.t.sw, protos, 32);
  found = 0;
  for (size_t i = 0; i < np && i < 32; i++) found |= !strcmp(protos[i], LP2P_KAD_PROTOCOL_ID);
  CHECK(!found);
  /* auto: a listen address counts only with auto_lan_server; loopback is not external */
  CHECK_OK(lp2p_kad_set_mode(a.kad, LP2P_KAD_MODE_AUTO));
  CHECK(!lp2p_kad_is_server(a.kad));
  /* ... and a confirmed external address makes it a server, its removal a client again */
  lp2p_multiaddr *ext = NULL;
  CHECK_OK(lp2p_multiaddr_parse(&ext, "/ip4/203.0.113.7/tcp/4001", NULL, 0));
  CHECK_OK(lp2p_swarm_add_external_addr(a.t.sw, ext));
  CHECK(RUN_UNTIL(&L, lp2p_kad_is_server(a.kad), 2000));
  CHECK_OK(lp2p_swarm_remove_external_addr(a.t.sw, ext));
  CHECK(RUN_UNTIL(&L, !lp2p_kad_is_server(a.kad), 2000));
  lp2p_multiaddr_free(ext);
  CHECK_OK(lp2p_kad_set_mode(a.kad, LP2P_KAD_MODE_SERVER));
  CHECK(lp2p_kad_is_server(a.kad));

  /* empty table: every lookup ends NOT_FOUND, through the callback, never synchronously */
  qres q1 = {0}, q2 = {0}, q3 = {0};
  uint64_t id = 0;
  CHECK_OK(lp2p_kad_get_closest_peers(a.kad, (const uint8_t *)"abc", 3, qcb, &q1, &id));
  CHECK(id != 0);
  CHECK_EQ(q1.calls, 0);
  uint8_t key[64], val[128];
  size_t kl, vl;
  pk_record(&a, key, &kl, val, &vl);
  CHECK_OK(lp2p_kad_put_value(a.kad, key, kl, val, vl, qcb, &q2, NULL));
  CHECK(lp2p_kad_local_value(a.kad, key, kl, NULL, 0) == (int64_t)vl); /* stored locally at once */
  /* unvalidated namespace, invalid /pk/ value: refused synchronously */
  CHECK_EQ(lp2p_kad_put_value(a.kad, (const uint8_t *)"/x/1", 4, val, vl, qcb, &q3, NULL), LP2P_ERR_UNSUPPORTED);
  CHECK_EQ(lp2p_kad_get_value(a.kad, (const uint8_t *)"/x/1", 4, 0, qcb, &q3, NULL), LP2P_ERR_UNSUPPORTED);
  val[vl - 1] ^= 1;
  CHECK(lp2p_kad_put_value(a.kad, key, kl, val, vl, qcb, &q3, NULL) < 0);
  CHECK(RUN_UNTIL(&L, q1.calls && q2.calls, 2000));
  CHECK_EQ(q1.calls, 1);
  CHECK_EQ(q1.err, LP2P_ERR_NOT_FOUND);
  CHECK_EQ(q3.calls, 0);
  /* the local copy answers get_value even with nobody around */
  qres q4 = {0};
  CHECK_OK(lp2p_kad_get_value(a.kad, key, kl, 1, qcb, &q4, NULL));
  CHECK(RUN_UNTIL(&L, q4.calls, 2000));
  CHECK_EQ(q4.err, 0);
  val[vl - 1] ^= 1;
  CHECK_EQ(q4.vlen, vl);
  CHECK_MEM(q4.value, val, vl);
  /* cancel: exactly one callback with CANCELED */
  qres q5 = {0};
  CHECK_OK(lp2p_kad_bootstrap(a.kad, qcb, &q5, &id));
  CHECK_OK(lp2p_kad_cancel(a.kad, id));
  CHECK_EQ(q5.calls, 0);
  CHECK(RUN_UNTIL(&L, q5.calls, 2000));
  CHECK_EQ(q5.err, LP2P_ERR_CANCELED);
  CHECK_EQ(lp2p_kad_cancel(a.kad, id), LP2P_ERR_NOT_FOUND);
  /* a query still running at swarm free gets its callback (CANCELED) from inside the free */
  qres q6 = {0};
  CHECK_OK(lp2p_kad_bootstrap(a.kad, qcb, &q6, NULL));
  node_free(&a);
  CHECK_EQ(q6.calls, 1);
  CHECK_EQ(q6.err, LP2P_ERR_CANCELED);
  CHECK_EQ(q1.calls + q2.calls + q5.calls, 3);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---------------------------------------------------------------------------------------------- */
/* small network: a <- b <- c <- d (each bootstraps from the previous one) */
typedef struct pingres {
  int calls, err;
} pingres;
static void ping_cb(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, uint64_t rtt, void *ud) {
  pingres *p = ud;
  (void)sw, (void)peer, (void)rtt;
  p->calls++;
  p->err = err;
}

static int all_done(qres *q, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!q[i].calls) return 0;
  return 1;
}

TEST(kad_small_network) {
  tloop L;
  tloop_init(&L);
  node n[4];
  for (int i = 0; i < 4; i++) REQUIRE(node_init(&n[i], &L, (uint8_t)(10 + i), NULL) == 0);
  for (int i = 1; i < 4; i++) CHECK_OK(lp2p_kad_add_bootstrap(n[i].kad, n[i - 1].t.addr));
  /* check-before-add: the bootstrap peer enters once it answered */
  CHECK(RUN_UNTIL(&L, table_size(&n[1]) >= 1 && table_size(&n[2]) >= 1 && table_size(&n[3]) >= 1, 5000));
  qres b[4];
  memset(b, 0, sizeof b);
  for (int i = 1; i < 4; i++) CHECK_OK(lp2p_kad_bootstrap(n[i].kad, qcb, &b[i], NULL));
  b[0].calls = 1;
  CHECK(RUN_UNTIL(&L, all_done(b, 4), 10000));
  for (int i = 1; i < 4; i++) CHECK_EQ(b[i].err, 0);
  /* identify + a check: everyone knows everyone now */
  CHECK(RUN_UNTIL(&L, table_size(&n[0]) == 3 && table_size(&n[3]) == 3, 5000));

  /* put a /pk/ record from d, get it from a */
  uint8_t key[64], val[128];
  size_t kl, vl;
  pk_record(&n[3], key, &kl, val, &vl);
  qres put = {0}, get = {0};
  CHECK_OK(lp2p_kad_put_value(n[3].kad, key, kl, val, vl, qcb, &put, NULL));
  CHECK(RUN_UNTIL(&L, put.calls, 10000));
  CHECK_EQ(put.err, 0);
  CHECK(put.stored >= 3);
  CHECK(put.st.requests >= 3);
  CHECK(lp2p_kad_local_value(n[0].kad, key, kl, NULL, 0) == (int64_t)vl);
  CHECK_OK(lp2p_kad_get_value(n[0].kad, key, kl, 2, qcb, &get, NULL));
  CHECK(RUN_UNTIL(&L, get.calls, 10000));
  CHECK_EQ(get.err, 0);
  CHECK_EQ(get.vlen, vl);
  CHECK_MEM(get.value, val, vl);
  CHECK(get.stored >= 2);

  /* provide from b, find from d: b (with its addresses) */
  uint8_t mh[34];
  CHECK_OK(lp2p_multihash_sha256((const uint8_t *)"some content", 12, mh, sizeof mh));
  qres prov = {0}, fp = {0};
  CHECK_OK(lp2p_kad_provide(n[1].kad, mh, 34, qcb, &prov, NULL));
  CHECK(RUN_UNTIL(&L, prov.calls, 10000));
  CHECK_EQ(prov.err, 0);
  CHECK(prov.stored >= 2);
  CHECK(RUN_UNTIL(&L, lp2p_kad_provider_count(n[3].kad, mh, 34) == 1, 3000));
  CHECK_OK(lp2p_kad_find_providers(n[0].kad, mh, 34, 1, qcb, &fp, NULL));
  CHECK(RUN_UNTIL(&L, fp.calls, 10000));
  CHECK_EQ(fp.err, 0);
  CHECK_EQ(fp.n_peers, 1);
  CHECK(lp2p_peer_id_equal(&fp.peers[0], &n[1].t.id));
  CHECK(fp.n_addrs0 >= 1);

  /* find-peer */
  qres fpeer = {0}, none = {0};
  CHECK_OK(lp2p_kad_find_peer(n[0].kad, &n[3].t.id, qcb, &fpeer, NULL));
  lp2p_peer_id ghost;
  uint8_t gmh[34];
  lp2p_multihash_sha256((const uint8_t *)"ghost", 5, gmh, sizeof gmh);
  lp2p_peer_id_from_bytes(gmh, 34, &ghost);
  CHECK_OK(lp2p_kad_find_peer(n[0].kad, &ghost, qcb, &none, NULL));
  CHECK(RUN_UNTIL(&L, fpeer.calls && none.calls, 10000));
  CHECK_EQ(fpeer.err, 0);
  CHECK_EQ(fpeer.n_peers, 1);
  CHECK(lp2p_peer_id_equal(&fpeer.peers[0], &n[3].t.id));
  CHECK(fpeer.n_addrs0 >= 1);
  CHECK_EQ(none.err, LP2P_ERR_NOT_FOUND);
  CHECK_EQ(none.n_peers, 0);
  CHECK(none.st.peers_contacted >= 1);

  /* get_closest_peers: the three others, closest first */
  qres cl = {0};
  CHECK_OK(lp2p_kad_get_closest_peers(n[0].kad, (const uint8_t *)"key", 3, qcb, &cl, NULL));
  CHECK(RUN_UNTIL(&L, cl.calls, 10000));
  CHECK_EQ(cl.err, 0);
  CHECK_EQ(cl.n_peers, 3);
  for (int i = 1; i < 4; i++) CHECK(has_peer(&cl, &n[i].t.id));

  /* a newcomer that knows only a: a ping to d (no address known) goes through the peer router */
  node e;
  REQUIRE(node_init(&e, &L, 20, NULL) == 0);
  CHECK_OK(lp2p_kad_add_bootstrap(e.kad, n[0].t.addr));
  CHECK(RUN_UNTIL(&L, table_size(&e) >= 1, 5000));
  CHECK_EQ(lp2p_swarm_peer_addresses(e.t.sw, &n[3].t.id, NULL, 0), 0);
  pingres pr = {0};
  CHECK_OK(lp2p_ping(e.t.sw, &n[3].t.id, ping_cb, &pr));
  CHECK(RUN_UNTIL(&L, pr.calls, 10000));
  CHECK_EQ(pr.err, 0);
  CHECK(lp2p_swarm_is_connected(e.t.sw, &n[3].t.id));
  /* a peer nobody knows: NOT_CONNECTED after the lookup */
  pingres pg = {0};
  CHECK_OK(lp2p_ping(e.t.sw, &ghost, ping_cb, &pg));
  CHECK(RUN_UNTIL(&L, pg.calls, 10000));
  CHECK_EQ(pg.err, LP2P_ERR_NOT_CONNECTED);
  /* lp2p_swarm_dial by id alone goes through the router too: g joins through d only */
  node g;
  REQUIRE(node_init(&g, &L, 22, NULL) == 0);
  CHECK_OK(lp2p_kad_add_bootstrap(g.kad, n[3].t.addr));
  CHECK(RUN_UNTIL(&L, in_table(&n[3], &g.t.id), 5000));
  CHECK_EQ(lp2p_swarm_peer_addresses(e.t.sw, &g.t.id, NULL, 0), 0);
  tdial d1 = {0}, d2 = {0};
  CHECK_OK(lp2p_swarm_dial(e.t.sw, &g.t.id, NULL, 0, tdial_cb, &d1));
  CHECK_OK(lp2p_swarm_dial(e.t.sw, &ghost, NULL, 0, tdial_cb, &d2));
  CHECK_EQ(d1.calls + d2.calls, 0);
  CHECK(RUN_UNTIL(&L, d1.calls && d2.calls, 10000));
  CHECK_EQ(d1.calls, 1);
  CHECK_EQ(d1.err, 0);
  CHECK(lp2p_swarm_is_connected(e.t.sw, &g.t.id));
  CHECK_EQ(d2.calls, 1);
  CHECK_EQ(d2.err, LP2P_ERR_NOT_CONNECTED);
  node_free(&g);
  node_free(&e);

  /* a client: queries work, nobody adds it to their table, it answers nothing */
  node c;
  lp2p_kad_config cc;
  lp2p_kad_config_default(&cc);
  cc.mode = LP2P_KAD_MODE_CLIENT;
  REQUIRE(node_init(&c, &L, 21, &cc) == 0);
  CHECK_OK(lp2p_kad_add_bootstrap(c.kad, n[2].t.addr));
  qres cb = {0}, cg = {0};
  CHECK_OK(lp2p_kad_bootstrap(c.kad, qcb, &cb, NULL));
  CHECK(RUN_UNTIL(&L, cb.calls, 10000));
  CHECK_EQ(cb.err, 0);
  CHECK_OK(lp2p_kad_get_value(c.kad, key, kl, 1, qcb, &cg, NULL));
  CHECK(RUN_UNTIL(&L, cg.calls, 10000));
  CHECK_EQ(cg.err, 0);
  CHECK_MEM(cg.value, val, vl);
  for (int i = 0; i < 4; i++) {
    lp2p_peer_id t[16];
    size_t k = lp2p_kad_routing_table(n[i].kad, t, 16);
    for (size_t j = 0; j < k && j < 16; j++) CHECK(!lp2p_peer_id_equal(&t[j], &c.t.id));
  }
  CHECK_EQ(lp2p_kad_served(c.kad), 0);
  node_free(&c);
  for (int i = 0; i < 4; i++) node_free(&n[i]);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* A swarm with no peer router: open_stream to an unknown peer fails at once as before. */
TEST(kad_no_router) {
  tloop L;
  tloop_init(&L);
  node a;
  lp2p_kad_config c;
  lp2p_kad_config_default(&c);
  c.peer_router = 0;
  REQUIRE(node_init(&a, &L, 30, &c) == 0);
  lp2p_peer_id ghost;
  uint8_t gmh[34];
  lp2p_multihash_sha256((const uint8_t *)"ghost", 5, gmh, sizeof gmh);
  lp2p_peer_id_from_bytes(gmh, 34, &ghost);
  pingres pg = {0};
  CHECK_OK(lp2p_ping(a.t.sw, &ghost, ping_cb, &pg));
  CHECK(RUN_UNTIL(&L, pg.calls, 2000));
  CHECK_EQ(pg.err, LP2P_ERR_NOT_CONNECTED);
  CHECK_EQ(lp2p_swarm_dial(a.t.sw, &ghost, NULL, 0, NULL, NULL), LP2P_ERR_INVAL); /* as before */
  node_free(&a);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---------------------------------------------------------------------------------------------- */
/* 50 swarms */
#define NET 50

TEST(kad_network_50) {
  tloop L;
  tloop_init(&L);
  static node n[NET];
  for (int i = 0; i < NET; i++) REQUIRE(node_init(&n[i], &L, (uint8_t)(100 + i), NULL) == 0);
  /* each joins through one or two earlier nodes */
  for (int i = 1; i < NET; i++) {
    CHECK_OK(lp2p_kad_add_bootstrap(n[i].kad, n[(i * 7) % i].t.addr));
    if (i > 2) CHECK_OK(lp2p_kad_add_bootstrap(n[i].kad, n[i - 1].t.addr));
  }
  static qres b[NET];
  memset(b, 0, sizeof b);
  for (int i = 1; i < NET; i++) CHECK_OK(lp2p_kad_bootstrap(n[i].kad, qcb, &b[i], NULL));
  b[0].calls = 1;
  CHECK(RUN_UNTIL(&L, all_done(b, NET), 60000));
  int boot_ok = 0;
  for (int i = 1; i < NET; i++) boot_ok += b[i].err == 0;
  CHECK_EQ(boot_ok, NET - 1);
  size_t tmin = 1000, tsum = 0;
  for (int i = 0; i < NET; i++) {
    size_t t = table_size(&n[i]);
    tsum += t;
    if (t < tmin) tmin = t;
  }
  printf("  50 nodes: table min %zu mean %.1f\n", tmin, (double)tsum / NET);
  CHECK(tmin >= 5);

  /* put/get: 10 records from 10 nodes, each read from another node */
  static qres put[10], get[10];
  memset(put, 0, sizeof put);
  memset(get, 0, sizeof get);
  uint8_t keys[10][64], vals[10][128];
  size_t kls[10], vls[10];
  for (int i = 0; i < 10; i++) {
    pk_record(&n[i * 5], keys[i], &kls[i], vals[i], &vls[i]);
    CHECK_OK(lp2p_kad_put_value(n[i * 5].kad, keys[i], kls[i], vals[i], vls[i], qcb, &put[i], NULL));
  }
  CHECK(RUN_UNTIL(&L, all_done(put, 10), 30000));
  unsigned req_sum = 0;
  for (int i = 0; i < 10; i++) {
    CHECK_EQ(put[i].err, 0);
    CHECK(put[i].stored >= 10);
  }
  for (int i = 0; i < 10; i++)
    CHECK_OK(lp2p_kad_get_value(n[(i * 5 + 23) % NET].kad, keys[i], kls[i], 1, qcb, &get[i], NULL));
  CHECK(RUN_UNTIL(&L, all_done(get, 10), 30000));
  int got = 0;
  for (int i = 0; i < 10; i++) {
    got += get[i].err == 0 && get[i].vlen == vls[i] && !memcmp(get[i].value, vals[i], vls[i]);
    req_sum += get[i].st.requests;
  }
  CHECK_EQ(got, 10);
  printf("  get_value: %.1f requests per lookup\n", req_sum / 10.0);

  /* provide / find providers */
  static qres pv[5], fp[5];
  memset(pv, 0, sizeof pv);
  memset(fp, 0, sizeof fp);
  uint8_t mh[5][34];
  for (int i = 0; i < 5; i++) {
    char content[32];
    snprintf(content, sizeof content, "content %d", i);
    lp2p_multihash_sha256((const uint8_t *)content, strlen(content), mh[i], 34);
    CHECK_OK(lp2p_kad_provide(n[i * 9 + 1].kad, mh[i], 34, qcb, &pv[i], NULL));
  }
  CHECK(RUN_UNTIL(&L, all_done(pv, 5), 30000));
  for (int i = 0; i < 5; i++) CHECK_EQ(pv[i].err, 0);
  for (int i = 0; i < 5; i++) CHECK_OK(lp2p_kad_find_providers(n[NET - 1 - i * 3].kad, mh[i], 34, 1, qcb, &fp[i], NULL));
  CHECK(RUN_UNTIL(&L, all_done(fp, 5), 30000));
  int pfound = 0;
  for (int i = 0; i < 5; i++) pfound += fp[i].err == 0 && fp[i].n_peers == 1 && lp2p_peer_id_equal(&fp[i].peers[0], &n[i * 9 + 1].t.id);
  CHECK_EQ(pfound, 5);

  /* find-peer: 20 lookups */
  static qres fpr[20];
  memset(fpr, 0, sizeof fpr);
  for (int i = 0; i < 20; i++)
    CHECK_OK(lp2p_kad_find_peer(n[i].kad, &n[(i * 13 + 29) % NET].t.id, qcb, &fpr[i], NULL));
  CHECK(RUN_UNTIL(&L, all_done(fpr, 20), 30000));
  int ffound = 0;
  unsigned hops = 0;
  for (int i = 0; i < 20; i++) {
    if (lp2p_peer_id_equal(&n[i].t.id, &n[(i * 13 + 29) % NET].t.id)) {
      ffound++;
      continue;
    }
    ffound += fpr[i].err == 0 && fpr[i].n_peers == 1 && fpr[i].n_addrs0 >= 1;
    hops += fpr[i].st.hops;
  }
  CHECK_EQ(ffound, 20);
  printf("  find_peer: mean hops %.2f\n", hops / 20.0);

  /* a newcomer knowing one node reaches a far one through open_stream alone */
  node z;
  REQUIRE(node_init(&z, &L, 250, NULL) == 0);
  CHECK_OK(lp2p_kad_add_bootstrap(z.kad, n[0].t.addr));
  CHECK(RUN_UNTIL(&L, table_size(&z) >= 1, 5000));
  pingres pr = {0};
  CHECK_EQ(lp2p_swarm_peer_addresses(z.t.sw, &n[37].t.id, NULL, 0), 0);
  CHECK_OK(lp2p_ping(z.t.sw, &n[37].t.id, ping_cb, &pr));
  CHECK(RUN_UNTIL(&L, pr.calls, 15000));
  CHECK_EQ(pr.err, 0);
  node_free(&z);
  for (int i = 0; i < NET; i++) node_free(&n[i]);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---------------------------------------------------------------------------------------------- */
/* hostile peers: a swarm whose kad handler answers the first request of each peer (the check)
 * correctly, then misbehaves. */
enum { H_JUNK = 1, H_HUGE, H_FAR, H_SILENT };

typedef struct hostile {
  tsw t;
  int mode;
  int seen[64]; /* per-peer request counts by hash slot */
  uint64_t requests;
} hostile;

typedef struct hin {
  hostile *h;
  uint8_t buf[65536];
  size_t n;
} hin;

static void h_answer(hostile *h, lp2p_stream *s, const uint8_t *msg, size_t len) {
  kad_msg m;
  if (kad_msg_decode(NULL, msg, len, &m) < 0) {
    lp2p_stream_reset(s);
    return;
  }
  h->requests++;
  size_t slot = lp2p_peer_id_hash(lp2p_stream_peer(s)) % 64;
  int first = h->seen[slot]++ == 0;
  uint8_t *out = NULL;
  size_t olen = 0;
  kad_msg a;
  memset(&a, 0, sizeof a);
  a.type = m.type;
  a.key = m.key;
  a.key_len = m.key_len;
  static kad_peer fake[3000];
  static lp2p_multiaddr *fake_addr;
  if (!fake_addr) lp2p_multiaddr_parse(&fake_addr, "/ip4/127.0.0.1/tcp/1", NULL, 0);
  if (!first && h->mode == H_SILENT) {
    kad_msg_clear(NULL, &m);
    return; /* never answers */
  }
  if (!first && h->mode == H_JUNK) {
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 37 + 11);
    uint8_t hdr[10];
    size_t hl = kad_frame_prefix(sizeof junk, hdr);
    lp2p_stream_send_all(s, hdr, hl, 0);
    lp2p_stream_send_all(s, junk, sizeof junk, 0);
    kad_msg_clear(NULL, &m);
    return;
  }
  if (!first && (h->mode == H_HUGE || h->mode == H_FAR)) {
    size_t nf = h->mode == H_HUGE ? 3000 : 20;
    for (size_t i = 0; i < nf; i++) {
      uint8_t mh[34];
      char seed[32];
      snprintf(seed, sizeof seed, "fake %zu %d", i, h->mode);
      lp2p_multihash_sha256((const uint8_t *)seed, strlen(seed), mh, 34);
      lp2p_peer_id_from_bytes(mh, 34, &fake[i].id);
      fake[i].addrs = &fake_addr;
      fake[i].naddrs = 1;
    }
    a.closer = fake;
    a.ncloser = nf;
  }
  if (kad_msg_encode(NULL, &a, &out, &olen) == 0) {
    uint8_t hdr[10];
    size_t hl = kad_frame_prefix(olen, hdr);
    lp2p_stream_send_all(s, hdr, hl, 0);
    lp2p_stream_send_all(s, out, olen, 0);
    free(out);
  }
  kad_msg_clear(NULL, &m);
}

static void h_open(lp2p_stream *s, const char *p, void *ud) {
  (void)p;
  hin *in = calloc(1, sizeof *in);
  in->h = ud;
  lp2p_stream_set_user(s, in);
}
static void h_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  (void)ud;
  hin *in = lp2p_stream_user(s);
  if (!in || n > sizeof in->buf - in->n) {
    lp2p_stream_reset(s);
    return;
  }
  memcpy(in->buf + in->n, p, n);
  in->n += n;
  size_t ml;
  int h = kad_frame_parse(in->buf, in->n, &ml);
  if (h > 0 && in->n >= h + ml) {
    h_answer(in->h, s, in->buf + h, ml);
    in->n = 0;
  }
}
static void h_close(lp2p_stream *s, int err, void *ud) {
  (void)err, (void)ud;
  free(lp2p_stream_user(s));
}
static const lp2p_stream_handler h_handler = {sizeof(lp2p_stream_handler), h_open, h_data, NULL, NULL, h_close};

static int hostile_init(hostile *h, tloop *L, uint8_t seed, int mode) {
  memset(h, 0, sizeof *h);
  h->mode = mode;
  lp2p_swarm_config sc;
  tsw_config(&sc);
  sc.idle_timeout_ms = 0;
  int rv = tsw_init(&h->t, L, seed, &sc, TSW_LISTEN_TCP);
  if (rv < 0) return rv;
  h->mode = mode;
  if ((rv = lp2p_identify_add(h->t.sw, NULL, NULL)) < 0) return rv;
  return lp2p_swarm_set_protocol(h->t.sw, LP2P_KAD_PROTOCOL_ID, &h_handler, h);
}

/* raw requests from a test swarm: one stream, several framed messages, then FIN */
typedef struct rawreq {
  uint8_t *buf;
  size_t len;
  int opened, closed, err;
  size_t received;
} rawreq;
static void raw_open(lp2p_stream *s, const char *p, void *ud) {
  (void)p;
  rawreq *r = ud;
  r->opened = 1;
  lp2p_stream_send_all(s, r->buf, r->len, 1);
}
static void raw_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  (void)s, (void)p;
  ((rawreq *)ud)->received += n;
}
static void raw_close(lp2p_stream *s, int err, void *ud) {
  (void)s;
  rawreq *r = ud;
  r->closed = 1;
  r->err = err;
}
static const lp2p_stream_handler raw_handler = {sizeof(lp2p_stream_handler), raw_open, raw_data, NULL, NULL, raw_close};

static void append_msg(uint8_t **buf, size_t *len, const kad_msg *m) {
  uint8_t *out;
  size_t olen;
  if (kad_msg_encode(NULL, m, &out, &olen) != 0) return;
  uint8_t hdr[10];
  size_t hl = kad_frame_prefix(olen, hdr);
  *buf = realloc(*buf, *len + hl + olen);
  memcpy(*buf + *len, hdr, hl);
  memcpy(*buf + *len + hl, out, olen);
  *len += hl + olen;
  free(out);
}

TEST(kad_hostile) {
  tloop L;
  tloop_init(&L);
  enum { NH = 8 };
  static node n[NH];
  lp2p_kad_config kc;
  lp2p_kad_config_default(&kc);
  kc.request_timeout_ms = 400; /* silence shows quickly */
  kc.max_records = 64;
  for (int i = 0; i < NH; i++) REQUIRE(node_init(&n[i], &L, (uint8_t)(40 + i), &kc) == 0);
  static hostile h[4];
  for (int i = 0; i < 4; i++) REQUIRE(hostile_init(&h[i], &L, (uint8_t)(60 + i), H_JUNK + i) == 0);
  for (int i = 1; i < NH; i++) CHECK_OK(lp2p_kad_add_bootstrap(n[i].kad, n[i - 1].t.addr));
  /* every honest node meets every hostile one (they pass the check) */
  for (int i = 0; i < NH; i++)
    for (int j = 0; j < 4; j++) CHECK_OK(lp2p_kad_add_bootstrap(n[i].kad, h[j].t.addr));
  CHECK(RUN_UNTIL(&L, table_size(&n[0]) >= 5 && table_size(&n[NH - 1]) >= 5, 10000));
  static qres b[NH];
  memset(b, 0, sizeof b);
  for (int i = 0; i < NH; i++) CHECK_OK(lp2p_kad_bootstrap(n[i].kad, qcb, &b[i], NULL));
  CHECK(RUN_UNTIL(&L, all_done(b, NH), 30000));
  int bok = 0;
  for (int i = 0; i < NH; i++) bok += b[i].err == 0;
  CHECK_EQ(bok, NH);
  uint64_t hreq = 0;
  for (int j = 0; j < 4; j++) hreq += h[j].requests;
  CHECK(hreq > 8); /* the hostile peers were asked (and misbehaved) */

  /* lookups still succeed */
  static qres put[NH], get[NH], fpr[NH];
  memset(put, 0, sizeof put);
  memset(get, 0, sizeof get);
  memset(fpr, 0, sizeof fpr);
  uint8_t keys[NH][64], vals[NH][128];
  size_t kls[NH], vls[NH];
  for (int i = 0; i < NH; i++) {
    pk_record(&n[i], keys[i], &kls[i], vals[i], &vls[i]);
    CHECK_OK(lp2p_kad_put_value(n[i].kad, keys[i], kls[i], vals[i], vls[i], qcb, &put[i], NULL));
  }
  CHECK(RUN_UNTIL(&L, all_done(put, NH), 30000));
  for (int i = 0; i < NH; i++) CHECK_EQ(put[i].err, 0);
  for (int i = 0; i < NH; i++) {
    CHECK_OK(lp2p_kad_get_value(n[(i + 3) % NH].kad, keys[i], kls[i], 1, qcb, &get[i], NULL));
    CHECK_OK(lp2p_kad_find_peer(n[i].kad, &n[(i + 5) % NH].t.id, qcb, &fpr[i], NULL));
  }
  CHECK(RUN_UNTIL(&L, all_done(get, NH) && all_done(fpr, NH), 30000));
  int ok = 0;
  for (int i = 0; i < NH; i++) ok += get[i].err == 0 && get[i].vlen == vls[i] && !memcmp(get[i].value, vals[i], vls[i]);
  CHECK_EQ(ok, NH);
  ok = 0;
  for (int i = 0; i < NH; i++) ok += fpr[i].err == 0 && fpr[i].n_peers == 1;
  CHECK_EQ(ok, NH);
  /* honest members stay; connections between honest nodes survive */
  for (int i = 0; i < NH; i++)
    for (int j = 0; j < NH; j++)
      if (i != j) CHECK(lp2p_swarm_is_connected(n[i].t.sw, &n[j].t.id) || table_size(&n[i]) >= 3);

  /* ADD_PROVIDER for someone else, and a record flood, from a raw client */
  tsw raw;
  lp2p_swarm_config sc;
  tsw_config(&sc);
  REQUIRE(tsw_init(&raw, &L, 70, &sc, 0) == 0);
  CHECK_OK(lp2p_swarm_add_address(raw.sw, NULL, n[0].t.addr));
  uint8_t mh[34];
  lp2p_multihash_sha256((const uint8_t *)"stolen", 6, mh, 34);
  kad_msg m;
  memset(&m, 0, sizeof m);
  m.type = KAD_ADD_PROVIDER;
  m.key = mh;
  m.key_len = 34;
  kad_peer other;
  memset(&other, 0, sizeof other);
  other.id = n[5].t.id; /* not the sender */
  lp2p_multiaddr *oa = NULL;
  lp2p_multiaddr_parse(&oa, "/ip4/127.0.0.1/tcp/9", NULL, 0);
  other.addrs = &oa;
  other.naddrs = 1;
  m.providers = &other;
  m.nproviders = 1;
  rawreq r1 = {0};
  append_msg(&r1.buf, &r1.len, &m);
  const char *protos[] = {LP2P_KAD_PROTOCOL_ID};
  CHECK_OK(lp2p_swarm_open_stream(raw.sw, &n[0].t.id, protos, 1, &raw_handler, &r1, NULL));
  CHECK(RUN_UNTIL(&L, r1.closed, 5000));
  CHECK_EQ(lp2p_kad_provider_count(n[0].kad, mh, 34), 0);
  /* the flood: 300 valid /v/ records in one stream; the store keeps at most max_records */
  rawreq r2 = {0};
  for (int i = 0; i < 300; i++) {
    char k[32], v[32];
    snprintf(k, sizeof k, "/v/flood-%d", i);
    snprintf(v, sizeof v, "value %d", i);
    kad_msg p;
    memset(&p, 0, sizeof p);
    p.type = KAD_PUT_VALUE;
    p.key = (const uint8_t *)k;
    p.key_len = strlen(k);
    p.has_record = 1;
    p.rec_key = p.key;
    p.rec_key_len = p.key_len;
    p.rec_value = (const uint8_t *)v;
    p.rec_value_len = strlen(v);
    append_msg(&r2.buf, &r2.len, &p);
  }
  CHECK_OK(lp2p_swarm_open_stream(raw.sw, &n[0].t.id, protos, 1, &raw_handler, &r2, NULL));
  CHECK(RUN_UNTIL(&L, r2.closed, 10000));
  CHECK(r2.received > 0);
  CHECK(lp2p_kad_record_count(n[0].kad) <= 64);
  CHECK(lp2p_kad_record_count(n[0].kad) >= 32);
  /* a malformed request resets that stream only; the raw client's connection lives on */
  rawreq r3 = {0};
  r3.buf = malloc(8);
  memcpy(r3.buf, "\x06\xff\xff\xff\xff\xff\xff", 7);
  r3.len = 7;
  CHECK_OK(lp2p_swarm_open_stream(raw.sw, &n[0].t.id, protos, 1, &raw_handler, &r3, NULL));
  CHECK(RUN_UNTIL(&L, r3.closed, 5000));
  CHECK(r3.err != 0);
  CHECK(lp2p_swarm_is_connected(raw.sw, &n[0].t.id));
  /* and n[0] still serves: a lookup through it works */
  qres after = {0};
  CHECK_OK(lp2p_kad_get_value(n[1].kad, keys[4], kls[4], 1, qcb, &after, NULL));
  CHECK(RUN_UNTIL(&L, after.calls, 10000));
  CHECK_EQ(after.err, 0);
  lp2p_multiaddr_free(oa);
  free(r1.buf);
  free(r2.buf);
  free(r3.buf);
  tsw_free(&raw);
  for (int i = 0; i < 4; i++) tsw_free(&h[i].t);
  for (int i = 0; i < NH; i++) node_free(&n[i]);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---------------------------------------------------------------------------------------------- */
/* records survive a restart through the data dir */
TEST(kad_persistence) {
  char dir[] = "/tmp/lp2p-kad-XXXXXX";
  REQUIRE(mkdtemp(dir) != NULL);
  char path[256];
  snprintf(path, sizeof path, "%s/kad-records", dir);
  tloop L;
  tloop_init(&L);
  lp2p_kad_config c;
  lp2p_kad_config_default(&c);
  c.data_dir = dir;
  node a;
  REQUIRE(node_init(&a, &L, 31, &c) == 0);
  uint8_t key[64], val[128];
  size_t kl, vl;
  pk_record(&a, key, &kl, val, &vl);
  qres q1 = {0}, q2 = {0};
  CHECK_OK(lp2p_kad_put_value(a.kad, key, kl, val, vl, qcb, &q1, NULL));
  CHECK_OK(lp2p_kad_put_value(a.kad, (const uint8_t *)"/v/kept", 7, (const uint8_t *)"yes", 3, qcb, &q2, NULL));
  CHECK(RUN_UNTIL(&L, q1.calls && q2.calls, 2000));
  /* saved about a second after the change */
  CHECK(RUN_UNTIL(&L, access(path, F_OK) == 0, 3000));
  struct stat st;
  CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
  node_free(&a);
  /* junk, an expired record and a record nobody validates any more are skipped */
  FILE *f = fopen(path, "a");
  REQUIRE(f != NULL);
  fprintf(f, "garbage line\n123 zz 00\n1000 2f762f6f6c64 6f6c64\n%llu 2f782f31 00\n",
          (unsigned long long)time(NULL) * 1000ull);
  fclose(f);
  node b;
  REQUIRE(node_init(&b, &L, 31, &c) == 0);
  CHECK_EQ(lp2p_kad_record_count(b.kad), 2);
  CHECK(lp2p_kad_local_value(b.kad, key, kl, NULL, 0) == (int64_t)vl);
  uint8_t got[8];
  CHECK(lp2p_kad_local_value(b.kad, (const uint8_t *)"/v/kept", 7, got, sizeof got) == 3);
  CHECK_MEM(got, "yes", 3);
  CHECK_EQ(lp2p_kad_local_value(b.kad, (const uint8_t *)"/v/old", 6, NULL, 0), LP2P_ERR_NOT_FOUND);
  node_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
  unlink(path);
  rmdir(dir);
}

/* provider entries survive a restart through the data dir too (kad-providers) */
TEST(kad_persistence_providers) {
  char dir[] = "/tmp/lp2p-kad-XXXXXX";
  REQUIRE(mkdtemp(dir) != NULL);
  char path[256], rpath[256];
  snprintf(path, sizeof path, "%s/kad-providers", dir);
  snprintf(rpath, sizeof rpath, "%s/kad-records", dir);
  tloop L;
  tloop_init(&L);
  lp2p_kad_config c;
  lp2p_kad_config_default(&c);
  c.data_dir = dir;
  node a;
  REQUIRE(node_init(&a, &L, 33, &c) == 0);
  uint8_t mh[34] = {0x12, 0x20};
  memset(mh + 2, 0x5a, 32);
  qres q = {0};
  /* no peer to tell, but we hold our own announcement */
  CHECK_OK(lp2p_kad_provide(a.kad, mh, sizeof mh, qcb, &q, NULL));
  CHECK(RUN_UNTIL(&L, q.calls, 2000));
  CHECK_EQ(lp2p_kad_provider_count(a.kad, mh, sizeof mh), 1);
  CHECK(RUN_UNTIL(&L, access(path, F_OK) == 0, 3000));
  struct stat st;
  CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
  lp2p_peer_id aid = a.t.id;
  node_free(&a);
  /* junk, an expired entry, a bad peer id, a bad address and a key too long are skipped */
  char pid_hex[2 * LP2P_PEER_ID_MAX_BYTES + 1];
  for (size_t i = 0; i < aid.len; i++) snprintf(pid_hex + 2 * i, 3, "%02x", aid.bytes[i]);
  unsigned long long now_wall = (unsigned long long)time(NULL) * 1000ull;
  FILE *f = fopen(path, "a");
  REQUIRE(f != NULL);
  fprintf(f, "garbage\n1000 1220%s %s -\n", "1111111111111111111111111111111111111111111111111111111111111111", pid_hex);
  fprintf(f, "%llu 1220%s 0011 -\n", now_wall, "2222222222222222222222222222222222222222222222222222222222222222");
  fprintf(f, "%llu 1220%s %s 0404\n", now_wall, "3333333333333333333333333333333333333333333333333333333333333333", pid_hex);
  fprintf(f, "%llu ", now_wall);
  for (int i = 0; i < 100; i++) fputs("44", f);
  fprintf(f, " %s -\n", pid_hex);
  fclose(f);
  node b;
  REQUIRE(node_init(&b, &L, 33, &c) == 0);
  CHECK_EQ(lp2p_kad_provider_count(b.kad, mh, sizeof mh), 1);
  uint8_t k1[34] = {0x12, 0x20}, k3[34] = {0x12, 0x20};
  memset(k1 + 2, 0x11, 32);
  memset(k3 + 2, 0x33, 32);
  CHECK_EQ(lp2p_kad_provider_count(b.kad, k1, sizeof k1), 0);
  CHECK_EQ(lp2p_kad_provider_count(b.kad, k3, sizeof k3), 0);
  /* another node asks b: the restored entry is served with its address */
  node d;
  REQUIRE(node_init(&d, &L, 34, NULL) == 0);
  CHECK_OK(lp2p_kad_add_bootstrap(d.kad, b.t.addr));
  CHECK(RUN_UNTIL(&L, in_table(&d, &b.t.id), 10000));
  qres fp = {0};
  CHECK_OK(lp2p_kad_find_providers(d.kad, mh, sizeof mh, 0, qcb, &fp, NULL));
  CHECK(RUN_UNTIL(&L, fp.calls, 10000));
  CHECK_EQ(fp.err, 0);
  CHECK_EQ(fp.n_peers, 1);
  CHECK(has_peer(&fp, &b.t.id));
  CHECK(fp.n_addrs0 >= 1);
  node_free(&d);
  node_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
  unlink(path);
  unlink(rpath);
  rmdir(dir);
}

int main(void) {
  RUN(kad_api_basics);
  RUN(kad_no_router);
  RUN(kad_persistence);
  RUN(kad_persistence_providers);
  RUN(kad_small_network);
  RUN(kad_hostile);
  RUN(kad_network_50);
  return test_done();
}
