/* test_kad_engine.c - the sans-IO Kademlia engine: routing-table admission (check-before-add),
 * replacement cache and ping-before-evict, IP diversity, server answers, ADD_PROVIDER rules,
 * record validation, store limits and expiry with a manual clock, request/query timeouts and
 * exactly-once results, and PUT/GET/ADD_PROVIDER/GET_PROVIDERS/FIND_NODE over a small in-process
 * network. */
#include "failmem.h"
#include "json.h"
#include "kad/engine/kad_engine.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------------------------ */
static uint64_t g_rng = 1;
static void rng(void *u, uint8_t *b, size_t n) {
  (void)u;
  for (size_t i = 0; i < n; i++) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    b[i] = (uint8_t)(g_rng >> 56);
  }
}

static lp2p_peer_id mkpeer(uint32_t seed) {
  uint8_t mh[34] = {0x12, 0x20};
  for (int i = 0; i < 32; i++) mh[2 + i] = (uint8_t)((seed * 2654435761u) >> (i % 4 * 8)) ^ (uint8_t)(i * 7 + seed);
  memcpy(mh + 2, &seed, 4);
  lp2p_peer_id p;
  lp2p_peer_id_from_bytes(mh, sizeof mh, &p);
  return p;
}

static lp2p_multiaddr *mkaddr(unsigned a, unsigned b, unsigned c, unsigned d) {
  char t[64];
  snprintf(t, sizeof t, "/ip4/%u.%u.%u.%u/tcp/4001", a, b, c, d);
  lp2p_multiaddr *m = NULL;
  lp2p_multiaddr_parse(&m, t, NULL, 0);
  return m;
}

static int cpl_to(const lp2p_peer_id *a, const lp2p_peer_id *b) {
  kad_id x, y;
  kad_id_from_peer(a, &x);
  kad_id_from_peer(b, &y);
  return kad_cpl(&x, &y);
}

/* the n-th peer (from seed upwards) whose bucket in self's table is `bucket` */
static lp2p_peer_id peer_in_bucket(const lp2p_peer_id *self, int bucket, uint32_t *seed) {
  for (;;) {
    lp2p_peer_id p = mkpeer((*seed)++);
    if (cpl_to(self, &p) == bucket) return p;
  }
}

static kad_engine *mkengine(const lp2p_peer_id *self, const kad_config *cfg) {
  kad_engine *e = NULL;
  kad_engine_new(&e, cfg, self, rng, NULL, NULL);
  return e;
}

/* Answer the single pending action with an empty FIND_NODE response (or an error). */
static int answer_next(kad_engine *e, lp2p_peer_id *to, int err, lp2p_tstamp now) {
  kad_action a;
  if (!kad_next_action(e, &a)) return 0;
  if (to) *to = a.peer;
  static const uint8_t empty_find_node[] = {0x08, 0x04};
  return kad_on_response(e, a.id, err ? NULL : empty_find_node, err ? 0 : 2, err, now) == 0 ? 1 : -1;
}

/* Admit `p` via identify + answered check. */
static void admit(kad_engine *e, const lp2p_peer_id *p, lp2p_multiaddr *a, lp2p_tstamp now) {
  const lp2p_multiaddr *aa = a;
  kad_on_peer_identified(e, p, &aa, a ? 1 : 0, 1, now);
  while (answer_next(e, NULL, 0, now) > 0) {
  }
}

/* ---- routing table ------------------------------------------------------------------------ */
TEST(check_before_add) {
  lp2p_peer_id self = mkpeer(1), p = mkpeer(2);
  kad_engine *e = mkengine(&self, NULL);
  REQUIRE(e);
  lp2p_multiaddr *a = mkaddr(10, 0, 0, 2);
  const lp2p_multiaddr *aa = a;
  CHECK_OK(kad_on_peer_identified(e, &p, &aa, 1, 1, 0));
  CHECK_EQ(kad_table_size(e), 0); /* a candidate, not a member */
  kad_action act;
  REQUIRE(kad_next_action(e, &act));
  CHECK(lp2p_peer_id_equal(&act.peer, &p));
  CHECK_EQ(act.naddrs, 1);
  CHECK(act.expect_response);
  kad_msg m;
  CHECK_OK(kad_msg_decode(NULL, act.msg, act.msg_len, &m));
  CHECK_EQ(m.type, KAD_FIND_NODE);
  CHECK_EQ(m.key_len, self.len);
  kad_msg_clear(NULL, &m);
  /* identify again while the check runs: no second check */
  CHECK_OK(kad_on_peer_identified(e, &p, &aa, 1, 1, 0));
  kad_action none;
  CHECK(!kad_next_action(e, &none));
  static const uint8_t resp[] = {0x08, 0x04};
  CHECK_OK(kad_on_response(e, act.id, resp, sizeof resp, 0, 5));
  CHECK_EQ(kad_table_size(e), 1);
  CHECK(kad_table_contains(e, &p));
  CHECK_EQ(kad_on_response(e, act.id, resp, sizeof resp, 0, 5), LP2P_ERR_NOT_FOUND); /* exactly once */
  /* identify says it no longer serves kad: out */
  CHECK_OK(kad_on_peer_identified(e, &p, &aa, 1, 0, 6));
  CHECK_EQ(kad_table_size(e), 0);
  /* a failed check admits nothing */
  lp2p_peer_id q = mkpeer(3);
  CHECK_OK(kad_on_peer_identified(e, &q, &aa, 1, 1, 7));
  CHECK_EQ(answer_next(e, NULL, LP2P_ERR_TIMEOUT, 8), 1);
  CHECK(!kad_table_contains(e, &q));
  /* a malformed answer admits nothing either */
  CHECK_OK(kad_on_peer_identified(e, &q, &aa, 1, 1, 9));
  REQUIRE(kad_next_action(e, &act));
  static const uint8_t junk[] = {0x0f};
  CHECK_OK(kad_on_response(e, act.id, junk, sizeof junk, 0, 10));
  CHECK(!kad_table_contains(e, &q));
  /* ourselves: ignored */
  CHECK_OK(kad_on_peer_identified(e, &self, &aa, 1, 1, 11));
  CHECK(!kad_next_action(e, &act));
  kad_engine_free(e);
  lp2p_multiaddr_free(a);
}

TEST(request_timeout_enforced_by_engine) {
  lp2p_peer_id self = mkpeer(1), p = mkpeer(2);
  kad_engine *e = mkengine(&self, NULL);
  REQUIRE(e);
  kad_on_peer_identified(e, &p, NULL, 0, 1, 1000);
  kad_action a;
  REQUIRE(kad_next_action(e, &a));
  uint64_t id = a.id;
  CHECK_EQ(kad_next_deadline(e), 1000 + KAD_REQUEST_TIMEOUT_MS);
  kad_tick(e, 1000 + KAD_REQUEST_TIMEOUT_MS - 1);
  static const uint8_t resp[] = {0x08, 0x04};
  kad_tick(e, 1000 + KAD_REQUEST_TIMEOUT_MS);
  CHECK_EQ(kad_on_response(e, id, resp, sizeof resp, 0, 20000), LP2P_ERR_NOT_FOUND);
  CHECK(!kad_table_contains(e, &p));
  CHECK_EQ(kad_next_deadline(e), LP2P_TSTAMP_NEVER);
  kad_engine_free(e);
}

TEST(replacement_cache_and_ping_before_evict) {
  lp2p_peer_id self = mkpeer(100);
  kad_engine *e = mkengine(&self, NULL);
  REQUIRE(e);
  uint32_t seed = 1000;
  lp2p_peer_id members[KAD_K];
  for (int i = 0; i < KAD_K; i++) {
    members[i] = peer_in_bucket(&self, 0, &seed);
    admit(e, &members[i], NULL, 0);
  }
  CHECK_EQ(kad_table_size(e), KAD_K);
  /* a 21st checked peer: replacement cache; the oldest member was seen recently: no ping yet */
  lp2p_peer_id extra = peer_in_bucket(&self, 0, &seed);
  admit(e, &extra, NULL, 1000);
  CHECK_EQ(kad_table_size(e), KAD_K);
  CHECK_EQ(kad_replacements(e, 0), 1);
  CHECK(!kad_table_contains(e, &extra));
  /* later: another candidate triggers a liveness check of the least recently seen member */
  lp2p_peer_id extra2 = peer_in_bucket(&self, 0, &seed);
  const lp2p_multiaddr *none = NULL;
  kad_on_peer_identified(e, &extra2, &none, 0, 1, 70000);
  lp2p_peer_id to;
  CHECK_EQ(answer_next(e, &to, 0, 70000), 1); /* extra2's check: answered */
  CHECK_EQ(kad_replacements(e, 0), 2);
  kad_action a;
  REQUIRE(kad_next_action(e, &a)); /* the ping */
  CHECK(lp2p_peer_id_equal(&a.peer, &members[0]));
  /* it answers: stays, becomes most recently seen; nobody evicted */
  static const uint8_t resp[] = {0x08, 0x04};
  CHECK_OK(kad_on_response(e, a.id, resp, sizeof resp, 0, 70001));
  CHECK(kad_table_contains(e, &members[0]));
  lp2p_peer_id b0[KAD_K];
  CHECK_EQ(kad_table_bucket(e, 0, b0, KAD_K), KAD_K);
  CHECK(lp2p_peer_id_equal(&b0[KAD_K - 1], &members[0]));
  CHECK(lp2p_peer_id_equal(&b0[0], &members[1]));
  /* next candidate: members[1] pinged, does not answer: evicted, newest replacement promoted */
  lp2p_peer_id extra3 = peer_in_bucket(&self, 0, &seed);
  kad_on_peer_identified(e, &extra3, &none, 0, 1, 140000);
  CHECK_EQ(answer_next(e, NULL, 0, 140000), 1);
  REQUIRE(kad_next_action(e, &a));
  CHECK(lp2p_peer_id_equal(&a.peer, &members[1]));
  CHECK_OK(kad_on_response(e, a.id, NULL, 0, LP2P_ERR_TIMEOUT, 150000));
  CHECK(!kad_table_contains(e, &members[1]));
  CHECK(kad_table_contains(e, &extra3));
  CHECK_EQ(kad_table_size(e), KAD_K);
  CHECK_EQ(kad_replacements(e, 0), 2);
  kad_engine_free(e);
}

TEST(ip_diversity_limits) {
  lp2p_peer_id self = mkpeer(7);
  kad_engine *e = mkengine(&self, NULL);
  REQUIRE(e);
  uint32_t seed = 5000;
  /* bucket 0: three peers in 8.8.8.0/24: only two get in */
  for (int i = 0; i < 3; i++) {
    lp2p_peer_id p = peer_in_bucket(&self, 0, &seed);
    lp2p_multiaddr *a = mkaddr(8, 8, 8, 10 + i);
    admit(e, &p, a, 0);
    lp2p_multiaddr_free(a);
  }
  CHECK_EQ(kad_table_size(e), 2);
  /* table-wide: a third one in another bucket is fine, a fourth is not */
  lp2p_peer_id p1 = peer_in_bucket(&self, 1, &seed), p2 = peer_in_bucket(&self, 2, &seed);
  lp2p_multiaddr *a = mkaddr(8, 8, 8, 20);
  admit(e, &p1, a, 0);
  admit(e, &p2, a, 0);
  lp2p_multiaddr_free(a);
  CHECK(kad_table_contains(e, &p1));
  CHECK(!kad_table_contains(e, &p2));
  CHECK_EQ(kad_table_size(e), 3);
  /* private addresses are exempt (LAN, loopback) */
  for (int i = 0; i < 5; i++) {
    lp2p_peer_id p = peer_in_bucket(&self, 0, &seed);
    lp2p_multiaddr *l = mkaddr(192, 168, 1, 10 + i);
    admit(e, &p, l, 0);
    lp2p_multiaddr_free(l);
  }
  CHECK_EQ(kad_table_size(e), 8);
  kad_engine_free(e);
}

/* ---- server side -------------------------------------------------------------------------- */
TEST(server_find_node_answers) {
  lp2p_peer_id self = mkpeer(9);
  kad_engine *e = mkengine(&self, NULL);
  REQUIRE(e);
  lp2p_peer_id peers[40];
  for (int i = 0; i < 40; i++) {
    peers[i] = mkpeer(300 + (uint32_t)i);
    lp2p_multiaddr *a = mkaddr(10, 1, (unsigned)i, 1);
    admit(e, &peers[i], a, 0);
    lp2p_multiaddr_free(a);
  }
  size_t n = kad_table_size(e);
  CHECK(n > KAD_K);
  lp2p_peer_id target = mkpeer(777);
  kad_msg q;
  memset(&q, 0, sizeof q);
  q.type = KAD_FIND_NODE;
  q.key = target.bytes;
  q.key_len = target.len;
  uint8_t *req, *resp;
  size_t rl, sl;
  CHECK_OK(kad_msg_encode(NULL, &q, &req, &rl));
  CHECK_OK(kad_on_inbound_request(e, &peers[0], 0, req, rl, 1, &resp, &sl));
  kad_msg m;
  CHECK_OK(kad_msg_decode(NULL, resp, sl, &m));
  CHECK_EQ(m.type, KAD_FIND_NODE);
  CHECK_EQ(m.ncloser, KAD_K);
  CHECK_EQ(m.key_len, 0);
  kad_id t;
  kad_id_from_key(target.bytes, target.len, &t);
  /* sorted by distance, requester excluded, addresses present; and truly the k closest */
  for (size_t i = 0; i < m.ncloser; i++) {
    CHECK(!lp2p_peer_id_equal(&m.closer[i].id, &peers[0]));
    CHECK_EQ(m.closer[i].naddrs, 1);
    if (i) {
      kad_id a, b;
      kad_id_from_peer(&m.closer[i - 1].id, &a);
      kad_id_from_peer(&m.closer[i].id, &b);
      CHECK(kad_cmp_distance(&a, &b, &t) < 0);
    }
  }
  kad_id far;
  kad_id_from_peer(&m.closer[KAD_K - 1].id, &far);
  unsigned closer_than_last = 0;
  for (int i = 1; i < 40; i++) {
    kad_id x;
    kad_id_from_peer(&peers[i], &x);
    if (kad_table_contains(e, &peers[i]) && kad_cmp_distance(&x, &far, &t) <= 0) closer_than_last++;
  }
  CHECK_EQ(closer_than_last, KAD_K);
  kad_msg_clear(NULL, &m);
  kad_bytes_free(e, resp);
  kad_bytes_free(NULL, req);
  /* FIND_NODE for the server itself: it answers with itself first, then k - 1 others */
  lp2p_multiaddr *la = mkaddr(10, 0, 0, 9);
  const lp2p_multiaddr *laa = la;
  CHECK_OK(kad_set_local_addrs(e, &laa, 1));
  q.key = self.bytes;
  q.key_len = self.len;
  CHECK_OK(kad_msg_encode(NULL, &q, &req, &rl));
  CHECK_OK(kad_on_inbound_request(e, &peers[0], 0, req, rl, 1, &resp, &sl));
  CHECK_OK(kad_msg_decode(NULL, resp, sl, &m));
  CHECK_EQ(m.ncloser, KAD_K);
  CHECK(lp2p_peer_id_equal(&m.closer[0].id, &self));
  CHECK_EQ(m.closer[0].naddrs, 1);
  for (size_t i = 1; i < m.ncloser; i++) CHECK(!lp2p_peer_id_equal(&m.closer[i].id, &self));
  kad_msg_clear(NULL, &m);
  kad_bytes_free(e, resp);
  lp2p_multiaddr_free(la);
  /* PING is echoed; client mode answers nothing */
  q.type = KAD_PING;
  kad_bytes_free(NULL, req);
  CHECK_OK(kad_msg_encode(NULL, &q, &req, &rl));
  CHECK_OK(kad_on_inbound_request(e, &peers[0], 0, req, rl, 1, &resp, &sl));
  CHECK_OK(kad_msg_decode(NULL, resp, sl, &m));
  CHECK_EQ(m.type, KAD_PING);
  kad_msg_clear(NULL, &m);
  kad_bytes_free(e, resp);
  kad_set_client_mode(e, 1);
  CHECK_EQ(kad_on_inbound_request(e, &peers[0], 0, req, rl, 1, &resp, &sl), LP2P_ERR_UNSUPPORTED);
  kad_set_client_mode(e, 0);
  /* malformed */
  static const uint8_t bad[] = {0x08, 0x09};
  CHECK_EQ(kad_on_inbound_request(e, &peers[0], 0, bad, sizeof bad, 1, &resp, &sl), LP2P_ERR_PROTO);
  kad_bytes_free(NULL, req);
  kad_engine_free(e);
}

static int v_validate(void *u, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
  (void)u;
  (void)k;
  (void)kl;
  return vl > 0 && v[0] == 'v' ? 0 : -1;
}
/* higher last byte wins */
static int v_select(void *u, const uint8_t *k, size_t kl, const uint8_t *const *vals, const size_t *lens, size_t n) {
  (void)u;
  (void)k;
  (void)kl;
  size_t b = 0;
  for (size_t i = 1; i < n; i++)
    if (vals[i][lens[i] - 1] > vals[b][lens[b] - 1]) b = i;
  return (int)b;
}
static const kad_validator g_vv = {"v", v_validate, v_select, NULL};

static int inbound_put(kad_engine *e, const lp2p_peer_id *from, const char *key, const uint8_t *val, size_t vl,
                       uint8_t **resp, size_t *rl) {
  kad_msg q;
  memset(&q, 0, sizeof q);
  q.type = KAD_PUT_VALUE;
  q.key = q.rec_key = (const uint8_t *)key;
  q.key_len = q.rec_key_len = strlen(key);
  q.has_record = 1;
  q.rec_value = val;
  q.rec_value_len = vl;
  uint8_t *req;
  size_t n;
  kad_msg_encode(NULL, &q, &req, &n);
  int rv = kad_on_inbound_request(e, from, 0, req, n, 0, resp, rl);
  kad_bytes_free(NULL, req);
  return rv;
}

TEST(server_records_and_validation) {
  json *v = json_load_vector("kad-dht.json");
  REQUIRE(v);
  json *o = json_get(v, "put_value_pk_request");
  size_t pl, kl;
  uint8_t *pb = json_hex(o, "message_pb", &pl), *key = json_hex(o, "record_key_hex", &kl);
  lp2p_peer_id self = mkpeer(11), from = mkpeer(12);
  kad_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.struct_size = sizeof cfg;
  cfg.validators = &g_vv;
  cfg.nvalidators = 1;
  kad_engine *e = mkengine(&self, &cfg);
  REQUIRE(e);
  /* the /pk/ vector: stored, echoed byte for byte */
  uint8_t *resp;
  size_t rl;
  CHECK_OK(kad_on_inbound_request(e, &from, 0, pb, pl, 0, &resp, &rl));
  CHECK_EQ(rl, pl);
  CHECK_MEM(resp, pb, pl);
  kad_bytes_free(e, resp);
  CHECK_EQ(kad_record_count(e), 1);
  /* GET_VALUE returns it */
  kad_msg q;
  memset(&q, 0, sizeof q);
  q.type = KAD_GET_VALUE;
  q.key = key;
  q.key_len = kl;
  uint8_t *req;
  size_t n;
  kad_msg_encode(NULL, &q, &req, &n);
  CHECK_OK(kad_on_inbound_request(e, &from, 0, req, n, 0, &resp, &rl));
  kad_msg m;
  CHECK_OK(kad_msg_decode(NULL, resp, rl, &m));
  CHECK_EQ(m.type, KAD_GET_VALUE);
  CHECK(m.has_record);
  CHECK_EQ(m.rec_key_len, kl);
  CHECK_EQ(m.key_len, kl);
  kad_msg_clear(NULL, &m);
  kad_bytes_free(e, resp);
  kad_bytes_free(NULL, req);
  /* a /pk/ record whose value is not that peer's key (the vector's key under another id) */
  uint8_t bad[64];
  memcpy(bad, "/pk/", 4);
  lp2p_peer_id other = mkpeer(99);
  memcpy(bad + 4, other.bytes, other.len);
  kad_msg d;
  CHECK_OK(kad_msg_decode(NULL, pb, pl, &d));
  CHECK_EQ(kad_record_put(e, bad, 4 + other.len, d.rec_value, d.rec_value_len, 0), LP2P_ERR_PROTO);
  CHECK_OK(kad_record_put(e, d.rec_key, d.rec_key_len, d.rec_value, d.rec_value_len, 0));
  kad_msg_clear(NULL, &d);
  /* unknown namespace; no namespace; invalid for its validator */
  CHECK_EQ(inbound_put(e, &from, "/ipns/xyz", (const uint8_t *)"vx", 2, &resp, &rl), LP2P_ERR_PROTO);
  CHECK_EQ(inbound_put(e, &from, "nonamespace", (const uint8_t *)"vx", 2, &resp, &rl), LP2P_ERR_PROTO);
  CHECK_EQ(inbound_put(e, &from, "/v/a", (const uint8_t *)"x", 1, &resp, &rl), LP2P_ERR_PROTO); /* invalid */
  /* app namespace with a selector: a worse value does not replace a better one */
  CHECK_OK(inbound_put(e, &from, "/v/a", (const uint8_t *)"v5", 2, &resp, &rl));
  kad_bytes_free(e, resp);
  CHECK_OK(inbound_put(e, &from, "/v/a", (const uint8_t *)"v3", 2, &resp, &rl));
  kad_bytes_free(e, resp);
  const uint8_t *val;
  size_t vl;
  CHECK_OK(kad_record_get(e, (const uint8_t *)"/v/a", 4, &val, &vl, 0));
  CHECK_EQ(vl, 2);
  CHECK_EQ(val[1], '5');
  CHECK_OK(inbound_put(e, &from, "/v/a", (const uint8_t *)"v7", 2, &resp, &rl));
  kad_bytes_free(e, resp);
  CHECK_OK(kad_record_get(e, (const uint8_t *)"/v/a", 4, &val, &vl, 0));
  CHECK_EQ(val[1], '7');
  /* PUT whose record key differs from the message key */
  memset(&q, 0, sizeof q);
  q.type = KAD_PUT_VALUE;
  q.key = (const uint8_t *)"/v/a";
  q.key_len = 4;
  q.has_record = 1;
  q.rec_key = (const uint8_t *)"/v/b";
  q.rec_key_len = 4;
  q.rec_value = (const uint8_t *)"v1";
  q.rec_value_len = 2;
  kad_msg_encode(NULL, &q, &req, &n);
  CHECK_EQ(kad_on_inbound_request(e, &from, 0, req, n, 0, &resp, &rl), LP2P_ERR_PROTO);
  kad_bytes_free(NULL, req);
  kad_engine_free(e);
  free(pb);
  free(key);
  json_free(v);
}

TEST(add_provider_only_for_sender) {
  lp2p_peer_id self = mkpeer(21), a = mkpeer(22), b = mkpeer(23);
  kad_engine *e = mkengine(&self, NULL);
  REQUIRE(e);
  static const uint8_t mh[] = {0x12, 0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                               17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
  lp2p_multiaddr *addr = mkaddr(1, 2, 3, 4);
  kad_peer prov = {.id = b, .addrs = &addr, .naddrs = 1};
  kad_msg q;
  memset(&q, 0, sizeof q);
  q.type = KAD_ADD_PROVIDER;
  q.key = mh;
  q.key_len = sizeof mh;
  q.providers = &prov;
  q.nproviders = 1;
  uint8_t *req, *resp;
  size_t n, rl;
  kad_msg_encode(NULL, &q, &req, &n);
  /* a announces b: refused (silently: no answer either way) */
  CHECK_OK(kad_on_inbound_request(e, &a, 0, req, n, 0, &resp, &rl));
  CHECK(!resp);
  CHECK_EQ(rl, 0);
  CHECK_EQ(kad_provider_count(e, mh, sizeof mh), 0);
  /* b announces itself: stored */
  CHECK_OK(kad_on_inbound_request(e, &b, 0, req, n, 0, &resp, &rl));
  CHECK(!resp);
  CHECK_EQ(kad_provider_count(e, mh, sizeof mh), 1);
  kad_bytes_free(NULL, req);
  /* without addresses: refused */
  prov.id = a;
  prov.naddrs = 0;
  kad_msg_encode(NULL, &q, &req, &n);
  CHECK_OK(kad_on_inbound_request(e, &a, 0, req, n, 0, &resp, &rl));
  CHECK_EQ(kad_provider_count(e, mh, sizeof mh), 1);
  kad_bytes_free(NULL, req);
  /* GET_PROVIDERS lists b with its address */
  memset(&q, 0, sizeof q);
  q.type = KAD_GET_PROVIDERS;
  q.key = mh;
  q.key_len = sizeof mh;
  kad_msg_encode(NULL, &q, &req, &n);
  CHECK_OK(kad_on_inbound_request(e, &a, 0, req, n, 0, &resp, &rl));
  kad_msg m;
  CHECK_OK(kad_msg_decode(NULL, resp, rl, &m));
  REQUIRE(m.nproviders == 1);
  CHECK(lp2p_peer_id_equal(&m.providers[0].id, &b));
  CHECK_EQ(m.providers[0].naddrs, 1);
  kad_msg_clear(NULL, &m);
  kad_bytes_free(e, resp);
  kad_bytes_free(NULL, req);
  /* provider records expire after 48 h */
  kad_tick(e, KAD_PROVIDER_TTL_MS + 1);
  CHECK_EQ(kad_provider_count(e, mh, sizeof mh), 0);
  /* keys longer than 80 bytes are refused */
  uint8_t longkey[81];
  memset(longkey, 1, sizeof longkey);
  prov.id = b;
  prov.naddrs = 1;
  memset(&q, 0, sizeof q);
  q.type = KAD_ADD_PROVIDER;
  q.key = longkey;
  q.key_len = sizeof longkey;
  q.providers = &prov;
  q.nproviders = 1;
  kad_msg_encode(NULL, &q, &req, &n);
  CHECK_EQ(kad_on_inbound_request(e, &b, 0, req, n, 0, &resp, &rl), LP2P_ERR_PROTO);
  kad_bytes_free(NULL, req);
  lp2p_multiaddr_free(addr);
  kad_engine_free(e);
}

/* ---- stores ------------------------------------------------------------------------------- */
static int g_persist_events[5];
static void persist(void *u, int ev, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
  (void)u;
  (void)k;
  (void)kl;
  (void)v;
  (void)vl;
  g_persist_events[ev]++;
}

TEST(store_limits_and_expiry) {
  lp2p_peer_id self = mkpeer(31);
  kad_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.struct_size = sizeof cfg;
  cfg.validators = &g_vv;
  cfg.nvalidators = 1;
  cfg.max_records = 3;
  cfg.max_record_bytes = 64;
  cfg.max_value_size = 20;
  cfg.max_providers_per_key = 2;
  cfg.max_provider_keys = 2;
  cfg.persist = persist;
  memset(g_persist_events, 0, sizeof g_persist_events);
  kad_engine *e = mkengine(&self, &cfg);
  REQUIRE(e);
  CHECK_OK(kad_record_put(e, (const uint8_t *)"/v/1", 4, (const uint8_t *)"v1", 2, 0));
  CHECK_OK(kad_record_put(e, (const uint8_t *)"/v/2", 4, (const uint8_t *)"v2", 2, 0));
  CHECK_OK(kad_record_put(e, (const uint8_t *)"/v/3", 4, (const uint8_t *)"v3", 2, 0));
  const uint8_t *val;
  size_t vl;
  CHECK_OK(kad_record_get(e, (const uint8_t *)"/v/1", 4, &val, &vl, 1)); /* 1 is now most recent */
  CHECK_OK(kad_record_put(e, (const uint8_t *)"/v/4", 4, (const uint8_t *)"v4", 2, 2));
  CHECK_EQ(kad_record_count(e), 3);
  CHECK_EQ(kad_record_get(e, (const uint8_t *)"/v/2", 4, &val, &vl, 2), LP2P_ERR_NOT_FOUND); /* LRU evicted */
  CHECK_OK(kad_record_get(e, (const uint8_t *)"/v/1", 4, &val, &vl, 2));
  /* value too large; bytes limit evicts */
  CHECK_EQ(kad_record_put(e, (const uint8_t *)"/v/5", 4, (const uint8_t *)"v1234567890123456789012", 23, 3),
           LP2P_ERR_TOO_LARGE);
  CHECK_OK(kad_record_put(e, (const uint8_t *)"/v/6", 4, (const uint8_t *)"v12345678901234567", 18, 3));
  CHECK_OK(kad_record_put(e, (const uint8_t *)"/v/7", 4, (const uint8_t *)"v12345678901234567", 18, 3));
  CHECK_OK(kad_record_put(e, (const uint8_t *)"/v/8", 4, (const uint8_t *)"v12345678901234567", 18, 3));
  CHECK(kad_record_count(e) <= 3);
  /* expiry: 48 h after receipt */
  CHECK_OK(kad_record_get(e, (const uint8_t *)"/v/8", 4, &val, &vl, 3 + KAD_RECORD_TTL_MS - 1));
  CHECK_EQ(kad_record_get(e, (const uint8_t *)"/v/8", 4, &val, &vl, 3 + KAD_RECORD_TTL_MS), LP2P_ERR_NOT_FOUND);
  kad_tick(e, 3 + KAD_RECORD_TTL_MS);
  CHECK_EQ(kad_record_count(e), 0);
  CHECK(g_persist_events[1] >= 7);
  CHECK(g_persist_events[2] >= 3);
  /* providers: per key (oldest replaced) and per store (LRU key evicted) */
  lp2p_multiaddr *a = mkaddr(1, 1, 1, 1);
  uint8_t k1[] = {0x12, 0x01, 0x01}, k2[] = {0x12, 0x01, 0x02}, k3[] = {0x12, 0x01, 0x03};
  lp2p_tstamp t = 4 + KAD_RECORD_TTL_MS;
  for (uint32_t i = 0; i < 3; i++) {
    kad_peer p = {.id = mkpeer(40 + i), .addrs = &a, .naddrs = 1};
    CHECK_OK(kad_provider_add(e, k1, sizeof k1, &p, t + i));
  }
  CHECK_EQ(kad_provider_count(e, k1, sizeof k1), 2);
  kad_peer p = {.id = mkpeer(50), .addrs = &a, .naddrs = 1};
  CHECK_OK(kad_provider_add(e, k2, sizeof k2, &p, t));
  CHECK_OK(kad_provider_add(e, k3, sizeof k3, &p, t));
  CHECK_EQ(kad_provider_count(e, k1, sizeof k1), 0); /* least recently used key went */
  CHECK_EQ(kad_provider_count(e, k3, sizeof k3), 1);
  CHECK(g_persist_events[3] >= 5);
  lp2p_multiaddr_free(a);
  kad_engine_free(e);
}

/* provider entries: listed with their age and addresses, restored keeping their original expiry */
typedef struct prov_seen {
  int n;
  lp2p_tstamp age;
  size_t naddrs;
} prov_seen;
static void on_prov(void *ud, const uint8_t *k, size_t kl, const kad_peer *p, lp2p_tstamp age) {
  prov_seen *s = ud;
  (void)k, (void)kl;
  s->n++;
  s->age = age;
  s->naddrs = p->naddrs;
}

TEST(store_provider_restore) {
  lp2p_peer_id self = mkpeer(32);
  kad_engine *e = mkengine(&self, NULL);
  REQUIRE(e);
  lp2p_multiaddr *a = mkaddr(1, 2, 3, 4);
  uint8_t k1[] = {0x12, 0x01, 0x07};
  kad_peer p = {.id = mkpeer(60), .addrs = &a, .naddrs = 1};
  lp2p_tstamp t = 100 * 3600 * 1000ull;
  CHECK_OK(kad_provider_add(e, k1, sizeof k1, &p, t));
  prov_seen s = {0};
  CHECK_EQ(kad_providers_each(e, on_prov, &s, t + 5000), 1);
  CHECK_EQ(s.n, 1);
  CHECK_EQ(s.age, 5000);
  CHECK_EQ(s.naddrs, 1);
  kad_engine_free(e);
  /* a fresh engine: the entry 47 h old comes back and expires 1 h later, as it would have */
  e = mkengine(&self, NULL);
  REQUIRE(e);
  lp2p_tstamp age = KAD_PROVIDER_TTL_MS - 3600 * 1000ull;
  CHECK_OK(kad_provider_restore(e, k1, sizeof k1, &p, age, t));
  CHECK_EQ(kad_provider_count(e, k1, sizeof k1), 1);
  CHECK_EQ(kad_provider_restore(e, k1, sizeof k1, &p, KAD_PROVIDER_TTL_MS, t), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(kad_provider_restore(e, k1, sizeof k1, &p, t + 1, t), LP2P_ERR_INVAL);
  uint8_t long_key[KAD_MAX_PROVIDER_KEY + 1];
  memset(long_key, 1, sizeof long_key);
  CHECK(kad_provider_restore(e, long_key, sizeof long_key, &p, 0, t) < 0);
  s.n = 0;
  CHECK_EQ(kad_providers_each(e, on_prov, &s, t + 3600 * 1000ull - 1), 1);
  CHECK_EQ(s.age, age + 3600 * 1000ull - 1);
  CHECK_EQ(kad_providers_each(e, on_prov, &s, t + 3600 * 1000ull), 0);
  kad_tick(e, t + 2 * 3600 * 1000ull); /* the store's collection drops it */
  CHECK_EQ(kad_provider_count(e, k1, sizeof k1), 0);
  lp2p_multiaddr_free(a);
  kad_engine_free(e);
}

/* ---- a small in-process network ----------------------------------------------------------- */
#define NET 40
typedef struct net {
  kad_engine *e[NET];
  lp2p_peer_id id[NET];
  lp2p_multiaddr *addr[NET];
  int down[NET];
  lp2p_tstamp now;
} net;

static int net_index(net *n, const lp2p_peer_id *p) {
  for (int i = 0; i < NET; i++)
    if (lp2p_peer_id_equal(&n->id[i], p)) return i;
  return -1;
}

/* Deliver every queued action synchronously until the network is quiet. */
static void net_run(net *n) {
  for (int progress = 1; progress;) {
    progress = 0;
    n->now += 10;
    for (int i = 0; i < NET; i++) {
      kad_action a;
      while (kad_next_action(n->e[i], &a)) {
        progress = 1;
        int j = net_index(n, &a.peer);
        uint64_t id = a.id;
        if (j < 0 || n->down[j]) {
          kad_on_response(n->e[i], id, NULL, 0, LP2P_ERR_DIAL, n->now);
          continue;
        }
        uint8_t *resp = NULL;
        size_t rl = 0;
        int rv = kad_on_inbound_request(n->e[j], &n->id[i], 0, a.msg, a.msg_len, n->now, &resp, &rl);
        const lp2p_multiaddr *ai = n->addr[i];
        kad_on_peer_identified(n->e[j], &n->id[i], &ai, 1, 1, n->now);
        kad_on_response(n->e[i], id, resp, rl, rv ? LP2P_ERR_RESET : 0, n->now);
        const lp2p_multiaddr *aj = n->addr[j];
        if (!rv) kad_on_peer_identified(n->e[i], &n->id[j], &aj, 1, 1, n->now);
        kad_bytes_free(n->e[j], resp);
      }
    }
  }
}

static int net_result(net *n, int i, uint64_t qid, kad_result *r) {
  for (;;) {
    if (!kad_next_result(n->e[i], r)) return 0;
    if (r->query_id == qid) return 1;
  }
}

static void net_init(net *n) {
  memset(n, 0, sizeof *n);
  kad_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.struct_size = sizeof cfg;
  cfg.validators = &g_vv;
  cfg.nvalidators = 1;
  for (int i = 0; i < NET; i++) {
    n->id[i] = mkpeer(2000 + (uint32_t)i);
    n->addr[i] = mkaddr(10, 9, (unsigned)i, 1);
    kad_engine_new(&n->e[i], &cfg, &n->id[i], rng, NULL, NULL);
    const lp2p_multiaddr *a = n->addr[i];
    kad_set_local_addrs(n->e[i], &a, 1);
  }
  for (int i = 1; i < NET; i++) {
    const lp2p_multiaddr *a = n->addr[i - 1];
    kad_on_peer_identified(n->e[i], &n->id[i - 1], &a, 1, 1, n->now);
    net_run(n);
    kad_bootstrap(n->e[i], n->now, NULL);
    net_run(n);
  }
  /* a second round of self lookups (what the periodic refresh does) */
  for (int i = 0; i < NET; i++) {
    kad_bootstrap(n->e[i], n->now, NULL);
    net_run(n);
  }
}

static void net_free(net *n) {
  for (int i = 0; i < NET; i++) {
    kad_engine_free(n->e[i]);
    lp2p_multiaddr_free(n->addr[i]);
  }
}

TEST(network_queries) {
  net n;
  net_init(&n);
  for (int i = 0; i < NET; i++) CHECK(kad_table_size(n.e[i]) >= 10);
  /* FIND_NODE: node 3 looks for node 31 */
  uint64_t qid;
  CHECK_OK(kad_query_start(n.e[3], KAD_Q_FIND_NODE, n.id[31].bytes, n.id[31].len, NULL, n.now, &qid));
  net_run(&n);
  kad_result r;
  REQUIRE(net_result(&n, 3, qid, &r));
  CHECK_EQ(r.status, 0);
  REQUIRE(r.npeers == 1);
  CHECK(lp2p_peer_id_equal(&r.peers[0].id, &n.id[31]));
  CHECK_EQ(r.peers[0].naddrs, 1);
  CHECK(r.stats.requests >= 1);
  CHECK(r.stats.hops >= 1);
  CHECK(!kad_next_result(n.e[3], &r)); /* exactly once */
  /* PUT_VALUE from 5, GET_VALUE from 27 */
  kad_query_opts o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.value = (const uint8_t *)"v1";
  o.value_len = 2;
  CHECK_OK(kad_query_start(n.e[5], KAD_Q_PUT_VALUE, (const uint8_t *)"/v/key", 6, &o, n.now, &qid));
  net_run(&n);
  REQUIRE(net_result(&n, 5, qid, &r));
  CHECK_EQ(r.status, 0);
  CHECK(r.stored >= 10);
  unsigned holders = 0;
  for (int i = 0; i < NET; i++) {
    const uint8_t *v;
    size_t vl;
    holders += kad_record_get(n.e[i], (const uint8_t *)"/v/key", 6, &v, &vl, n.now) == 0;
  }
  CHECK(holders >= 10);
  /* a stale holder: node h keeps an older value, GET_VALUE picks the best and corrects it */
  int stale = -1;
  kad_id kt;
  kad_id_from_key((const uint8_t *)"/v/key", 6, &kt);
  for (int i = 0; i < NET; i++) { /* the holder closest to the key: any lookup reaches it */
    const uint8_t *v;
    size_t vl;
    if (i == 5 || i == 27 || kad_record_get(n.e[i], (const uint8_t *)"/v/key", 6, &v, &vl, n.now) != 0) continue;
    kad_id x, y;
    kad_id_from_peer(&n.id[i], &x);
    if (stale >= 0) kad_id_from_peer(&n.id[stale], &y);
    if (stale < 0 || kad_cmp_distance(&x, &y, &kt) < 0) stale = i;
  }
  REQUIRE(stale >= 0);
  /* upgrade everyone else to v9 directly, leave `stale` with v1 */
  for (int i = 0; i < NET; i++) {
    const uint8_t *v;
    size_t vl;
    if (i != stale && kad_record_get(n.e[i], (const uint8_t *)"/v/key", 6, &v, &vl, n.now) == 0)
      kad_record_put(n.e[i], (const uint8_t *)"/v/key", 6, (const uint8_t *)"v9", 2, n.now);
  }
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  CHECK_OK(kad_query_start(n.e[27], KAD_Q_GET_VALUE, (const uint8_t *)"/v/key", 6, &o, n.now, &qid));
  net_run(&n);
  REQUIRE(net_result(&n, 27, qid, &r));
  CHECK_EQ(r.status, 0);
  REQUIRE(r.value_len == 2);
  CHECK_MEM(r.value, "v9", 2);
  {
    const uint8_t *v;
    size_t vl;
    CHECK_OK(kad_record_get(n.e[stale], (const uint8_t *)"/v/key", 6, &v, &vl, n.now));
    CHECK_MEM(v, "v9", 2); /* corrected */
  }
  /* GET_VALUE of a missing key, and of a namespace without a validator */
  CHECK_OK(kad_query_start(n.e[27], KAD_Q_GET_VALUE, (const uint8_t *)"/v/none", 7, NULL, n.now, &qid));
  net_run(&n);
  REQUIRE(net_result(&n, 27, qid, &r));
  CHECK_EQ(r.status, LP2P_ERR_NOT_FOUND);
  CHECK_EQ(kad_query_start(n.e[27], KAD_Q_GET_VALUE, (const uint8_t *)"/x/none", 7, NULL, n.now, &qid),
           LP2P_ERR_UNSUPPORTED);
  /* ADD_PROVIDER from 8, GET_PROVIDERS from 33 */
  static const uint8_t mh[] = {0x12, 0x20, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
                               9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
  CHECK_OK(kad_provide(n.e[8], mh, sizeof mh, n.now, &qid));
  net_run(&n);
  REQUIRE(net_result(&n, 8, qid, &r));
  CHECK_EQ(r.status, 0);
  CHECK(r.stored >= 10);
  CHECK_OK(kad_query_start(n.e[33], KAD_Q_GET_PROVIDERS, mh, sizeof mh, NULL, n.now, &qid));
  net_run(&n);
  REQUIRE(net_result(&n, 33, qid, &r));
  CHECK_EQ(r.status, 0);
  REQUIRE(r.npeers >= 1);
  CHECK(lp2p_peer_id_equal(&r.peers[0].id, &n.id[8]));
  CHECK_EQ(r.peers[0].naddrs, 1);
  /* GET_CLOSEST_PEERS: the result is the true k closest among the other nodes */
  CHECK_OK(kad_query_start(n.e[0], KAD_Q_GET_CLOSEST_PEERS, (const uint8_t *)"abc", 3, NULL, n.now, &qid));
  net_run(&n);
  REQUIRE(net_result(&n, 0, qid, &r));
  CHECK_EQ(r.status, 0);
  CHECK_EQ(r.npeers, KAD_K);
  kad_id t;
  kad_id_from_key((const uint8_t *)"abc", 3, &t);
  unsigned better = 0;
  kad_id last;
  kad_id_from_peer(&r.peers[r.npeers - 1].id, &last);
  for (int i = 1; i < NET; i++) {
    kad_id x;
    kad_id_from_peer(&n.id[i], &x);
    better += kad_cmp_distance(&x, &last, &t) <= 0;
  }
  CHECK_EQ(better, KAD_K);
  net_free(&n);
}

TEST(query_timeouts_cancel_exactly_once) {
  lp2p_peer_id self = mkpeer(61);
  kad_engine *e = mkengine(&self, NULL);
  REQUIRE(e);
  /* empty table: the result is queued (never delivered inside start) with NOT_FOUND */
  uint64_t qid;
  kad_result r;
  CHECK_OK(kad_query_start(e, KAD_Q_GET_CLOSEST_PEERS, (const uint8_t *)"k", 1, NULL, 0, &qid));
  REQUIRE(kad_next_result(e, &r));
  CHECK_EQ(r.query_id, qid);
  CHECK_EQ(r.status, LP2P_ERR_NOT_FOUND);
  CHECK(!kad_next_result(e, &r));
  for (uint32_t i = 0; i < 5; i++) {
    lp2p_peer_id p = mkpeer(70 + i);
    admit(e, &p, NULL, 0);
  }
  /* nobody answers: requests time out at 10 s (one retry each for the closest), result once */
  CHECK_OK(kad_query_start(e, KAD_Q_GET_CLOSEST_PEERS, (const uint8_t *)"k", 1, NULL, 0, &qid));
  kad_action a;
  unsigned sent = 0;
  lp2p_tstamp now = 0;
  for (int round = 0; round < 20 && !kad_next_result(e, &r); round++) {
    while (kad_next_action(e, &a)) sent++;
    now = kad_next_deadline(e);
    kad_tick(e, now);
    r.query_id = 0;
  }
  CHECK_EQ(r.query_id, qid);
  CHECK_EQ(r.status, LP2P_ERR_NOT_FOUND);
  CHECK(sent >= 5);
  CHECK(r.stats.failures >= 5);
  CHECK(!kad_next_result(e, &r));
  /* cancel */
  CHECK_OK(kad_query_start(e, KAD_Q_GET_CLOSEST_PEERS, (const uint8_t *)"k", 1, NULL, now, &qid));
  CHECK_OK(kad_query_cancel(e, qid, now + 1));
  CHECK_EQ(kad_query_cancel(e, qid, now + 1), LP2P_ERR_NOT_FOUND);
  REQUIRE(kad_next_result(e, &r));
  CHECK_EQ(r.status, LP2P_ERR_CANCELED);
  CHECK(!kad_next_result(e, &r));
  /* responses to a cancelled query's requests are accepted and ignored */
  while (kad_next_action(e, &a)) CHECK_OK(kad_on_response(e, a.id, NULL, 0, LP2P_ERR_RESET, now + 2));
  /* query timeout */
  kad_query_opts o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.timeout_ms = 5000;
  CHECK_OK(kad_query_start(e, KAD_Q_GET_CLOSEST_PEERS, (const uint8_t *)"k", 1, &o, now, &qid));
  kad_tick(e, now + 5000);
  REQUIRE(kad_next_result(e, &r));
  CHECK_EQ(r.status, LP2P_ERR_TIMEOUT);
  /* ADD_PROVIDER needs our addresses */
  CHECK_EQ(kad_query_start(e, KAD_Q_ADD_PROVIDER, (const uint8_t *)"\x12\x01\x01", 3, NULL, now, &qid),
           LP2P_ERR_STATE);
  /* freeing with queued actions and in-flight requests leaks nothing (ASan checks) */
  CHECK_OK(kad_query_start(e, KAD_Q_GET_CLOSEST_PEERS, (const uint8_t *)"z", 1, NULL, now, &qid));
  kad_engine_free(e);
}

static unsigned drain_empty(kad_engine *e, lp2p_tstamp now, kad_msg_type *last_type) {
  kad_action a;
  unsigned n = 0;
  static const uint8_t resp[] = {0x08, 0x04};
  while (kad_next_action(e, &a)) {
    kad_msg m;
    if (last_type && kad_msg_decode(NULL, a.msg, a.msg_len, &m) == 0) {
      *last_type = (kad_msg_type)m.type;
      kad_msg_clear(NULL, &m);
    }
    kad_on_response(e, a.id, a.expect_response ? resp : NULL, a.expect_response ? sizeof resp : 0, 0, now);
    n++;
  }
  return n;
}

TEST(refresh_and_republish_timers) {
  lp2p_peer_id self = mkpeer(91);
  kad_engine *e = mkengine(&self, NULL);
  REQUIRE(e);
  lp2p_multiaddr *la = mkaddr(10, 0, 0, 1);
  const lp2p_multiaddr *laa = la;
  CHECK_OK(kad_set_local_addrs(e, &laa, 1));
  for (uint32_t i = 0; i < 12; i++) {
    lp2p_peer_id p = mkpeer(900 + i);
    admit(e, &p, la, 0);
  }
  /* first refresh of the used buckets is due at once (no refresh yet), then every 10 min */
  lp2p_tstamp d = kad_next_deadline(e);
  CHECK(d <= KAD_REFRESH_MS);
  kad_tick(e, KAD_REFRESH_MS);
  CHECK(drain_empty(e, KAD_REFRESH_MS, NULL) >= 1);
  kad_result r;
  CHECK(!kad_next_result(e, &r)); /* internal queries report nothing */
  kad_tick(e, KAD_REFRESH_MS + 1000);
  CHECK_EQ(drain_empty(e, KAD_REFRESH_MS + 1000, NULL), 0);
  CHECK(kad_next_deadline(e) >= 2 * KAD_REFRESH_MS - 1000);
  /* provide: lookup then ADD_PROVIDER to those that answered; again after 22 h */
  static const uint8_t mh[] = {0x12, 0x02, 0xaa, 0xbb};
  uint64_t qid;
  lp2p_tstamp t0 = 2 * KAD_REFRESH_MS;
  CHECK_OK(kad_provide(e, mh, sizeof mh, t0, &qid));
  kad_msg_type last = KAD_PING;
  while (drain_empty(e, t0, &last)) {
  }
  CHECK_EQ(last, KAD_ADD_PROVIDER);
  REQUIRE(kad_next_result(e, &r));
  CHECK_EQ(r.query_id, qid);
  CHECK_EQ(r.status, 0);
  CHECK(r.stored >= 10);
  CHECK_EQ(kad_provider_count(e, mh, sizeof mh), 1); /* ourselves, locally */
  last = KAD_PING;
  kad_tick(e, t0 + KAD_REPUBLISH_MS);
  while (drain_empty(e, t0 + KAD_REPUBLISH_MS, &last)) {
  }
  CHECK_EQ(last, KAD_ADD_PROVIDER);
  lp2p_multiaddr_free(la);
  kad_engine_free(e);
}

TEST(allocation_failures) {
  /* a query and a server answer under every single allocation failure: clean errors, no leak */
  for (long n = 1; n < 400; n++) {
    failmem fm;
    failmem_init(&fm, n);
    lp2p_peer_id self = mkpeer(81), p = mkpeer(82);
    kad_engine *e = NULL;
    if (kad_engine_new(&e, NULL, &self, rng, NULL, &fm.mem) != 0) {
      CHECK_EQ(fm.live, 0);
      continue;
    }
    kad_on_peer_identified(e, &p, NULL, 0, 1, 0);
    kad_action a;
    static const uint8_t resp[] = {0x08, 0x04};
    while (kad_next_action(e, &a)) kad_on_response(e, a.id, resp, sizeof resp, 0, 1);
    uint64_t qid;
    kad_query_start(e, KAD_Q_GET_CLOSEST_PEERS, (const uint8_t *)"k", 1, NULL, 2, &qid);
    while (kad_next_action(e, &a)) kad_on_response(e, a.id, resp, sizeof resp, 0, 3);
    kad_result r;
    while (kad_next_result(e, &r)) {
    }
    uint8_t *out;
    size_t ol;
    kad_msg q;
    memset(&q, 0, sizeof q);
    q.type = KAD_FIND_NODE;
    q.key = p.bytes;
    q.key_len = p.len;
    uint8_t *req;
    size_t rl;
    if (kad_msg_encode(NULL, &q, &req, &rl) == 0) {
      if (kad_on_inbound_request(e, &p, 0, req, rl, 4, &out, &ol) == 0) kad_bytes_free(e, out);
      kad_bytes_free(NULL, req);
    }
    kad_engine_free(e);
    CHECK_EQ(fm.live, 0);
    if (!fm.triggered) break;
  }
}

int main(void) {
  RUN(check_before_add);
  RUN(request_timeout_enforced_by_engine);
  RUN(replacement_cache_and_ping_before_evict);
  RUN(ip_diversity_limits);
  RUN(server_find_node_answers);
  RUN(server_records_and_validation);
  RUN(add_provider_only_for_sender);
  RUN(store_limits_and_expiry);
  RUN(store_provider_restore);
  RUN(network_queries);
  RUN(query_timeouts_cancel_exactly_once);
  RUN(refresh_and_republish_timers);
  RUN(allocation_failures);
  return test_done();
}
