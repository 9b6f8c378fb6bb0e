/* fuzz_kad_engine.c - a server-mode Kademlia engine with a populated routing table and record /
 * provider stores, fed arbitrary bytes (byte 0 selects the path):
 *   bit 0 clear: an inbound request from a fixed peer (kad_on_inbound_request);
 *   bit 0 set:   the response to a running query's request (kad_on_response), then the query is
 *                driven to its end with empty answers.
 * Invariants: errors are documented codes; an answer decodes, keeps <= k closer peers, never
 * names the requester, and ADD_PROVIDER gets no answer; a query yields exactly one result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kad/engine/kad_engine.h"

#define ASSERT(c)                                                                \
  do {                                                                           \
    if (!(c)) {                                                                  \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c); \
      abort();                                                                   \
    }                                                                            \
  } while (0)

static uint64_t g_state = 7;
static void rng(void *u, uint8_t *b, size_t n) {
  (void)u;
  for (size_t i = 0; i < n; i++) {
    g_state = g_state * 6364136223846793005ull + 1442695040888963407ull;
    b[i] = (uint8_t)(g_state >> 56);
  }
}

static lp2p_peer_id mkpeer(uint32_t seed) {
  uint8_t mh[34] = {0x12, 0x20};
  memcpy(mh + 2, &seed, 4);
  lp2p_peer_id p;
  lp2p_peer_id_from_bytes(mh, sizeof mh, &p);
  return p;
}

static int v_validate(void *u, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
  (void)u;
  (void)k;
  (void)kl;
  return vl > 0 && v[0] == 'v' ? 0 : -1;
}
static const kad_validator g_vv = {"v", v_validate, NULL, NULL};

static kad_engine *setup(lp2p_peer_id *self) {
  *self = mkpeer(1);
  kad_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.struct_size = sizeof cfg;
  cfg.validators = &g_vv;
  cfg.nvalidators = 1;
  cfg.refresh_ms = UINT64_MAX; /* no bucket refresh: its random-key search would dominate */
  kad_engine *e = NULL;
  ASSERT(kad_engine_new(&e, &cfg, self, rng, NULL, NULL) == 0);
  static const uint8_t resp[] = {0x08, 0x04};
  for (uint32_t i = 0; i < 30; i++) {
    lp2p_peer_id p = mkpeer(100 + i);
    char t[64];
    snprintf(t, sizeof t, "/ip4/10.0.%u.1/tcp/4001", i);
    lp2p_multiaddr *a = NULL;
    lp2p_multiaddr_parse(&a, t, NULL, 0);
    const lp2p_multiaddr *aa = a;
    kad_on_peer_identified(e, &p, &aa, 1, 1, 0);
    kad_action act;
    while (kad_next_action(e, &act)) kad_on_response(e, act.id, resp, sizeof resp, 0, 0);
    lp2p_multiaddr_free(a);
  }
  kad_record_put(e, (const uint8_t *)"/v/a", 4, (const uint8_t *)"v1", 2, 0);
  return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!size) return 0;
  lp2p_peer_id self, from = mkpeer(100);
  kad_engine *e = setup(&self);
  if (!(data[0] & 1)) {
    uint8_t *resp = NULL;
    size_t rl = 0;
    int rv = kad_on_inbound_request(e, &from, 0, data + 1, size - 1, 1, &resp, &rl);
    ASSERT(rv == 0 || rv == LP2P_ERR_PROTO || rv == LP2P_ERR_LIMIT || rv == LP2P_ERR_TOO_LARGE ||
           rv == LP2P_ERR_NOMEM);
    if (rv) ASSERT(!resp);
    if (rv == 0 && resp) {
      kad_msg m;
      ASSERT(kad_msg_decode(NULL, resp, rl, &m) == 0);
      ASSERT(m.type != KAD_ADD_PROVIDER);
      ASSERT(m.ncloser <= KAD_K);
      for (size_t i = 0; i < m.ncloser; i++) ASSERT(!lp2p_peer_id_equal(&m.closer[i].id, &from));
      kad_msg_clear(NULL, &m);
      kad_bytes_free(e, resp);
    }
  } else {
    static const int kinds[] = {KAD_Q_FIND_NODE, KAD_Q_GET_CLOSEST_PEERS, KAD_Q_GET_VALUE, KAD_Q_GET_PROVIDERS,
                                KAD_Q_PUT_VALUE};
    int kind = kinds[(data[0] >> 1) % 5];
    lp2p_peer_id target = mkpeer(12345);
    kad_query_opts o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.value = (const uint8_t *)"v2";
    o.value_len = 2;
    const uint8_t *key = target.bytes;
    size_t kl = target.len;
    if (kind == KAD_Q_GET_VALUE || kind == KAD_Q_PUT_VALUE) {
      key = (const uint8_t *)"/v/a";
      kl = 4;
    }
    uint64_t qid;
    ASSERT(kad_query_start(e, kind, key, kl, &o, 1, &qid) == 0);
    kad_action act;
    int first = 1;
    unsigned results = 0;
    lp2p_tstamp now = 2;
    static const uint8_t empty[] = {0x08, 0x04};
    for (int round = 0; round < 200; round++) {
      int any = 0;
      while (kad_next_action(e, &act)) {
        any = 1;
        if (first) {
          ASSERT(kad_on_response(e, act.id, data + 1, size - 1, 0, now) == 0);
          first = 0;
        } else {
          kad_on_response(e, act.id, empty, act.expect_response ? sizeof empty : 0, 0, now);
        }
      }
      kad_result r;
      while (kad_next_result(e, &r)) {
        ASSERT(r.query_id == qid);
        ASSERT(r.npeers <= KAD_MAX_PEERS_PER_MSG);
        results++;
      }
      if (results) break;
      if (!any) {
        lp2p_tstamp d = kad_next_deadline(e);
        if (d == LP2P_TSTAMP_NEVER) break;
        now = d > now ? d : now;
        kad_tick(e, now);
      }
    }
    ASSERT(results == 1);
  }
  kad_engine_free(e);
  return 0;
}
