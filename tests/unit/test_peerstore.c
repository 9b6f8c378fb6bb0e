/* test_peerstore.c - the peer store as a data structure, with explicit time
 * (swarm/peerstore_int.h): limits, expiry, eviction order, scope filtering,
 * refusal of unusable addresses, discovery events and the persistence vtable;
 * plus lp2p_multiaddr_scope / lp2p_multiaddr_is_dialable. */
#include <stdlib.h>
#include <string.h>

#include "lp2p/keys.h"
#include "swarm/peerstore_int.h"
#include "test.h"

/* ---- fixtures ---- */

static lp2p_tstamp g_now;
static lp2p_peer_id g_busy; /* the hook calls this peer busy */

typedef struct rec_ev {
  lp2p_swarm_event_type type;
  lp2p_peer_id peer;
  lp2p_addr_source source;
  size_t n_addrs;
  char first[128];
} rec_ev;
static rec_ev g_ev[64];
static int g_nev;
static int g_changed;

static lp2p_tstamp h_now(void *ud) {
  (void)ud;
  return g_now;
}
static int h_busy(void *ud, const lp2p_peer_id *p) {
  (void)ud;
  return g_busy.len && lp2p_peer_id_equal(p, &g_busy);
}
static void h_emit(void *ud, const lp2p_swarm_event *ev) {
  (void)ud;
  if (g_nev >= 64) return;
  rec_ev *r = &g_ev[g_nev++];
  memset(r, 0, sizeof *r);
  r->type = ev->type;
  if (ev->peer) r->peer = *ev->peer;
  r->source = ev->source;
  r->n_addrs = ev->n_addrs;
  if (ev->n_addrs) lp2p_multiaddr_to_string(ev->addrs[0], r->first, sizeof r->first);
}
static void h_changed(void *ud) {
  (void)ud;
  g_changed++;
}

static lp2p_peerstore *mk(uint32_t max_peers, uint32_t max_addrs) {
  lp2p__ps_hooks hk = {NULL, h_now, h_busy, h_emit, h_changed};
  lp2p_peerstore *ps = NULL;
  g_now = 1000;
  g_nev = 0;
  g_changed = 0;
  memset(&g_busy, 0, sizeof g_busy);
  if (lp2p__ps_new(&ps, NULL, max_peers, max_addrs, &hk) < 0) abort();
  return ps;
}

static lp2p_peer_id pid(uint8_t seed) {
  uint8_t s[32];
  memset(s, seed, sizeof s);
  lp2p_privkey *k;
  lp2p_peer_id id;
  if (lp2p_privkey_from_ed25519_seed(&k, s) < 0 || lp2p_peer_id_from_pubkey(lp2p_privkey_public(k), &id) < 0)
    abort();
  lp2p_privkey_free(k);
  return id;
}

static lp2p_multiaddr *ma(const char *t) {
  lp2p_multiaddr *m = NULL;
  if (lp2p_multiaddr_parse(&m, t, NULL, 0) < 0) {
    fprintf(stderr, "bad multiaddr %s\n", t);
    abort();
  }
  return m;
}

/* adds one text address at time `now` */
static int add1(lp2p_peerstore *ps, const lp2p_peer_id *p, const char *t, lp2p_addr_source src, uint64_t ttl,
                lp2p_tstamp now) {
  lp2p_multiaddr *m = ma(t);
  const lp2p_multiaddr *one = m;
  int rv = lp2p__ps_add_at(ps, p, &one, 1, src, ttl, now);
  lp2p_multiaddr_free(m);
  return rv;
}

static int has_addr(lp2p_peerstore *ps, const lp2p_peer_id *p, const char *t, lp2p_tstamp now) {
  lp2p_peer_addr out[64];
  size_t n = lp2p__ps_addrs_at(ps, p, LP2P_MA_SCOPE_ANY, out, 64, now);
  char buf[256];
  for (size_t i = 0; i < n && i < 64; i++)
    if (lp2p_multiaddr_to_string(out[i].addr, buf, sizeof buf) >= 0 && !strcmp(buf, t)) return 1;
  return 0;
}

/* ---- scope ---- */

TEST(scope_classifier) {
  struct {
    const char *a;
    lp2p_ma_scope s;
    int dialable;
  } v[] = {
      {"/ip4/0.0.0.0/tcp/4001", LP2P_MA_SCOPE_UNSPECIFIED, 0},
      {"/ip6/::/tcp/4001", LP2P_MA_SCOPE_UNSPECIFIED, 0},
      {"/ip4/127.0.0.1/tcp/4001", LP2P_MA_SCOPE_LOOPBACK, 1},
      {"/ip4/127.0.0.1/tcp/0", LP2P_MA_SCOPE_LOOPBACK, 0},
      {"/ip6/::1/tcp/1", LP2P_MA_SCOPE_LOOPBACK, 1},
      {"/ip6/::ffff:127.0.0.2/tcp/1", LP2P_MA_SCOPE_LOOPBACK, 1},
      {"/ip4/169.254.3.4/tcp/1", LP2P_MA_SCOPE_LINK_LOCAL, 1},
      {"/ip6/fe80::1/tcp/1", LP2P_MA_SCOPE_LINK_LOCAL, 1},
      {"/ip4/10.1.2.3/tcp/1", LP2P_MA_SCOPE_PRIVATE, 1},
      {"/ip4/172.16.0.1/tcp/1", LP2P_MA_SCOPE_PRIVATE, 1},
      {"/ip4/172.31.255.1/tcp/1", LP2P_MA_SCOPE_PRIVATE, 1},
      {"/ip4/172.32.0.1/tcp/1", LP2P_MA_SCOPE_PUBLIC, 1},
      {"/ip4/192.168.1.1/udp/5/quic-v1", LP2P_MA_SCOPE_PRIVATE, 1},
      {"/ip4/100.64.0.1/tcp/1", LP2P_MA_SCOPE_PRIVATE, 1},
      {"/ip4/100.128.0.1/tcp/1", LP2P_MA_SCOPE_PUBLIC, 1},
      {"/ip6/fd00::5/tcp/1", LP2P_MA_SCOPE_PRIVATE, 1},
      {"/ip4/8.8.8.8/tcp/53", LP2P_MA_SCOPE_PUBLIC, 1},
      {"/ip4/8.8.8.8/udp/0/quic-v1", LP2P_MA_SCOPE_PUBLIC, 0},
      {"/ip4/224.0.0.251/udp/5353", LP2P_MA_SCOPE_PUBLIC, 0},
      {"/ip6/2001:db8::1/tcp/1", LP2P_MA_SCOPE_PUBLIC, 1},
      {"/dns4/localhost/tcp/1", LP2P_MA_SCOPE_LOOPBACK, 1},
      {"/dns/a.localhost/tcp/1", LP2P_MA_SCOPE_LOOPBACK, 1},
      {"/dns/printer.local/tcp/1", LP2P_MA_SCOPE_PRIVATE, 1},
      {"/dnsaddr/bootstrap.libp2p.io", LP2P_MA_SCOPE_PUBLIC, 1},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    lp2p_multiaddr *m = ma(v[i].a);
    if (lp2p_multiaddr_scope(m) != v[i].s || lp2p_multiaddr_is_dialable(m) != v[i].dialable)
      TEST_FAIL_("%s: scope %d dialable %d", v[i].a, (int)lp2p_multiaddr_scope(m), lp2p_multiaddr_is_dialable(m));
    lp2p_multiaddr_free(m);
  }
  CHECK_EQ(lp2p_multiaddr_scope(NULL), LP2P_MA_SCOPE_UNSPECIFIED);
  CHECK_EQ(lp2p_multiaddr_is_dialable(NULL), 0);
}

/* ---- basics ---- */

TEST(add_list_dedupe_and_refuse_unusable) {
  lp2p_peerstore *ps = mk(0, 32);
  lp2p_peer_id a = pid(1), b = pid(2);
  CHECK_EQ(add1(ps, &a, "/ip4/1.2.3.4/tcp/4001", LP2P_ADDR_SRC_USER, 0, 1000), 1);
  CHECK_EQ(add1(ps, &a, "/ip4/1.2.3.4/tcp/4001", LP2P_ADDR_SRC_USER, 0, 1000), 1); /* refresh, one entry */
  CHECK_EQ(lp2p__ps_addrs_at(ps, &a, LP2P_MA_SCOPE_ANY, NULL, 0, 1000), 1);
  /* never stored: unspecified, port 0 */
  CHECK_EQ(add1(ps, &a, "/ip4/0.0.0.0/tcp/4001", LP2P_ADDR_SRC_IDENTIFY, 0, 1000), LP2P_ERR_INVAL);
  CHECK_EQ(add1(ps, &a, "/ip6/::/tcp/4001", LP2P_ADDR_SRC_IDENTIFY, 0, 1000), LP2P_ERR_INVAL);
  CHECK_EQ(add1(ps, &a, "/ip4/127.0.0.1/tcp/0", LP2P_ADDR_SRC_IDENTIFY, 0, 1000), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p__ps_addrs_at(ps, &a, LP2P_MA_SCOPE_ANY, NULL, 0, 1000), 1);
  /* a peer that got nothing is not kept */
  CHECK_EQ(add1(ps, &b, "/ip4/0.0.0.0/tcp/1", LP2P_ADDR_SRC_USER, 0, 1000), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p__ps_count(ps), 1);
  /* /p2p suffix: stripped when it matches, refused when it does not */
  char t[256];
  char ida[LP2P_PEER_ID_MAX_TEXT], idb[LP2P_PEER_ID_MAX_TEXT];
  lp2p_peer_id_to_string(&a, ida, sizeof ida);
  lp2p_peer_id_to_string(&b, idb, sizeof idb);
  snprintf(t, sizeof t, "/ip4/5.6.7.8/tcp/1/p2p/%s", ida);
  CHECK_EQ(add1(ps, &a, t, LP2P_ADDR_SRC_USER, 0, 1000), 1);
  CHECK(has_addr(ps, &a, "/ip4/5.6.7.8/tcp/1", 1000));
  snprintf(t, sizeof t, "/ip4/5.6.7.9/tcp/1/p2p/%s", idb);
  CHECK_EQ(add1(ps, &a, t, LP2P_ADDR_SRC_USER, 0, 1000), LP2P_ERR_PEER_ID_MISMATCH);
  /* a mixed batch stores what it can */
  lp2p_multiaddr *m1 = ma("/ip4/0.0.0.0/tcp/9"), *m2 = ma("/ip4/9.9.9.9/tcp/9");
  const lp2p_multiaddr *both[] = {m1, m2};
  CHECK_EQ(lp2p__ps_add_at(ps, &a, both, 2, LP2P_ADDR_SRC_IDENTIFY, 0, 1000), 1);
  lp2p_multiaddr_free(m1);
  lp2p_multiaddr_free(m2);
  CHECK(has_addr(ps, &a, "/ip4/9.9.9.9/tcp/9", 1000));
  CHECK_EQ(lp2p_peerstore_remove_peer(ps, &a), 0);
  CHECK_EQ(lp2p_peerstore_remove_peer(ps, &a), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p__ps_count(ps), 0);
  lp2p__ps_free(ps);
}

TEST(protocols_agent_key_latency) {
  lp2p_peerstore *ps = mk(0, 32);
  lp2p_peer_id a = pid(3), other = pid(4);
  const char *protos[] = {"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0"};
  CHECK_OK(lp2p_peerstore_set_protocols(ps, &a, protos, 2));
  CHECK_EQ(lp2p_peerstore_supports(ps, &a, "/ipfs/ping/1.0.0"), 1);
  CHECK_EQ(lp2p_peerstore_supports(ps, &a, "/x/1"), 0);
  CHECK_EQ(lp2p_peerstore_supports(ps, &other, "/ipfs/ping/1.0.0"), 0);
  const char *out[4];
  CHECK_EQ(lp2p_peerstore_protocols(ps, &a, out, 4), 2);
  CHECK_STR(out[1], "/ipfs/id/1.0.0");
  CHECK_OK(lp2p_peerstore_set_agent(ps, &a, "js-libp2p/3"));
  CHECK_STR(lp2p_peerstore_agent(ps, &a), "js-libp2p/3");
  CHECK(lp2p_peerstore_agent(ps, &other) == NULL);
  /* public key: must match the peer */
  uint8_t s[32];
  memset(s, 3, sizeof s);
  lp2p_privkey *k;
  CHECK_OK(lp2p_privkey_from_ed25519_seed(&k, s));
  CHECK_EQ(lp2p_peerstore_set_pubkey(ps, &other, lp2p_privkey_public(k)), LP2P_ERR_PEER_ID_MISMATCH);
  CHECK_OK(lp2p_peerstore_set_pubkey(ps, &a, lp2p_privkey_public(k)));
  lp2p_pubkey *got = NULL;
  CHECK_OK(lp2p_peerstore_pubkey(ps, &a, &got));
  lp2p_peer_id gid;
  CHECK_OK(lp2p_peer_id_from_pubkey(got, &gid));
  CHECK(lp2p_peer_id_equal(&gid, &a));
  lp2p_pubkey_free(got);
  lp2p_privkey_free(k);
  CHECK_EQ(lp2p_peerstore_pubkey(ps, &other, &got), LP2P_ERR_NOT_FOUND);
  uint64_t rtt = 0;
  CHECK_EQ(lp2p_peerstore_latency(ps, &a, &rtt), LP2P_ERR_NOT_FOUND);
  g_now = 5000;
  CHECK_OK(lp2p_peerstore_set_latency(ps, &a, 1234));
  CHECK_OK(lp2p_peerstore_latency(ps, &a, &rtt));
  CHECK_EQ(rtt, 1234);
  CHECK_EQ(lp2p_peerstore_last_seen(ps, &a), 5000);
  g_now = 6000;
  lp2p_peerstore_mark_seen(ps, &a);
  CHECK_EQ(lp2p_peerstore_last_seen(ps, &a), 6000);
  lp2p__ps_free(ps);
}

/* ---- expiry ---- */

TEST(expiry_with_explicit_time) {
  lp2p_peerstore *ps = mk(0, 32);
  lp2p_peer_id a = pid(5);
  CHECK_EQ(add1(ps, &a, "/ip4/1.1.1.1/tcp/1", LP2P_ADDR_SRC_USER, 0, 1000), 1);
  CHECK_EQ(add1(ps, &a, "/ip4/2.2.2.2/tcp/2", LP2P_ADDR_SRC_IDENTIFY, 500, 1000), 1);
  CHECK_EQ(lp2p__ps_next_expiry(ps), 1500);
  CHECK(has_addr(ps, &a, "/ip4/2.2.2.2/tcp/2", 1499));
  CHECK(!has_addr(ps, &a, "/ip4/2.2.2.2/tcp/2", 1500)); /* expired: not returned even before a sweep */
  CHECK(has_addr(ps, &a, "/ip4/1.1.1.1/tcp/1", 1000000000));
  /* a refresh extends; a shorter TTL never shortens */
  CHECK_EQ(add1(ps, &a, "/ip4/2.2.2.2/tcp/2", LP2P_ADDR_SRC_IDENTIFY, 1000, 1200), 1);
  CHECK_EQ(lp2p__ps_next_expiry(ps), 2200);
  CHECK_EQ(add1(ps, &a, "/ip4/2.2.2.2/tcp/2", LP2P_ADDR_SRC_IDENTIFY, 10, 1300), 1);
  CHECK_EQ(lp2p__ps_next_expiry(ps), 2200);
  lp2p__ps_expire(ps, 2199);
  CHECK_EQ(lp2p__ps_addrs_at(ps, &a, LP2P_MA_SCOPE_ANY, NULL, 0, 0), 2);
  lp2p__ps_expire(ps, 2200);
  CHECK_EQ(lp2p__ps_addrs_at(ps, &a, LP2P_MA_SCOPE_ANY, NULL, 0, 0), 1);
  CHECK_EQ(lp2p__ps_next_expiry(ps), LP2P_TSTAMP_NEVER);
  CHECK_EQ(g_nev, 0); /* identify/user addresses raise no discovery events */
  lp2p__ps_free(ps);
}

TEST(discovery_events) {
  lp2p_peerstore *ps = mk(0, 32);
  lp2p_peer_id a = pid(6);
  CHECK_EQ(add1(ps, &a, "/ip4/192.168.1.5/tcp/4001", LP2P_ADDR_SRC_MDNS, 1000, 1000), 1);
  REQUIRE(g_nev == 1);
  CHECK_EQ(g_ev[0].type, LP2P_SWARM_EV_PEER_DISCOVERED);
  CHECK_EQ(g_ev[0].source, LP2P_ADDR_SRC_MDNS);
  CHECK_EQ(g_ev[0].n_addrs, 1);
  CHECK_STR(g_ev[0].first, "/ip4/192.168.1.5/tcp/4001");
  CHECK(lp2p_peer_id_equal(&g_ev[0].peer, &a));
  /* known address refreshed: no new event */
  CHECK_EQ(add1(ps, &a, "/ip4/192.168.1.5/tcp/4001", LP2P_ADDR_SRC_MDNS, 1000, 1500), 1);
  CHECK_EQ(g_nev, 1);
  /* a second discovery address, then both expire at different times: one PEER_EXPIRED at the last */
  CHECK_EQ(add1(ps, &a, "/ip4/192.168.1.6/tcp/4001", LP2P_ADDR_SRC_DHT, 2000, 1500), 1);
  CHECK_EQ(g_nev, 2);
  CHECK_EQ(add1(ps, &a, "/ip4/8.8.4.4/tcp/1", LP2P_ADDR_SRC_IDENTIFY, 0, 1500), 1);
  CHECK_EQ(g_nev, 2);
  lp2p__ps_expire(ps, 2500); /* the mDNS one (expires 2500) */
  CHECK_EQ(g_nev, 2);
  lp2p__ps_expire(ps, 3500); /* the DHT one: last discovery address */
  REQUIRE(g_nev == 3);
  CHECK_EQ(g_ev[2].type, LP2P_SWARM_EV_PEER_EXPIRED);
  CHECK_EQ(g_ev[2].source, LP2P_ADDR_SRC_DHT);
  CHECK_EQ(lp2p__ps_count(ps), 1); /* still known through identify */
  /* an expired discovery address seen again is "discovered" again */
  CHECK_EQ(add1(ps, &a, "/ip4/192.168.1.7/tcp/1", LP2P_ADDR_SRC_MDNS, 100, 4000), 1);
  CHECK_EQ(add1(ps, &a, "/ip4/192.168.1.7/tcp/1", LP2P_ADDR_SRC_MDNS, 100, 4200), 1);
  CHECK_EQ(g_nev, 5);
  CHECK_EQ(g_ev[4].type, LP2P_SWARM_EV_PEER_DISCOVERED);
  /* removing the peer reports the loss of its discovery address */
  CHECK_OK(lp2p_peerstore_remove_peer(ps, &a));
  CHECK_EQ(g_nev, 6);
  CHECK_EQ(g_ev[5].type, LP2P_SWARM_EV_PEER_EXPIRED);
  lp2p__ps_free(ps);
}

/* ---- limits ---- */

TEST(address_limit_evicts_least_useful) {
  lp2p_peerstore *ps = mk(0, 3);
  lp2p_peer_id a = pid(7);
  CHECK_EQ(add1(ps, &a, "/ip4/1.0.0.1/tcp/1", LP2P_ADDR_SRC_USER, 0, 1000), 1);
  CHECK_EQ(add1(ps, &a, "/ip4/1.0.0.2/tcp/1", LP2P_ADDR_SRC_DHT, 0, 1001), 1);
  CHECK_EQ(add1(ps, &a, "/ip4/1.0.0.3/tcp/1", LP2P_ADDR_SRC_IDENTIFY, 0, 1002), 1);
  CHECK_EQ(add1(ps, &a, "/ip4/1.0.0.4/tcp/1", LP2P_ADDR_SRC_USER, 0, 1003), 1);
  CHECK_EQ(lp2p__ps_addrs_at(ps, &a, LP2P_MA_SCOPE_ANY, NULL, 0, 1003), 3);
  CHECK(!has_addr(ps, &a, "/ip4/1.0.0.2/tcp/1", 1003)); /* discovery went first */
  CHECK(g_nev >= 2 && g_ev[g_nev - 1].type == LP2P_SWARM_EV_PEER_EXPIRED);
  CHECK_EQ(add1(ps, &a, "/ip4/1.0.0.5/tcp/1", LP2P_ADDR_SRC_USER, 0, 1004), 1);
  CHECK(!has_addr(ps, &a, "/ip4/1.0.0.3/tcp/1", 1004)); /* then identify */
  CHECK_EQ(add1(ps, &a, "/ip4/1.0.0.6/tcp/1", LP2P_ADDR_SRC_USER, 0, 1005), 1);
  CHECK(!has_addr(ps, &a, "/ip4/1.0.0.1/tcp/1", 1005)); /* then the oldest of equals */
  /* an expired one goes before anything else */
  lp2p__ps_free(ps);
  ps = mk(0, 2);
  CHECK_EQ(add1(ps, &a, "/ip4/1.0.0.1/tcp/1", LP2P_ADDR_SRC_DHT, 0, 1000), 1);
  CHECK_EQ(add1(ps, &a, "/ip4/1.0.0.2/tcp/1", LP2P_ADDR_SRC_USER, 10, 1000), 1);
  CHECK_EQ(add1(ps, &a, "/ip4/1.0.0.3/tcp/1", LP2P_ADDR_SRC_USER, 0, 2000), 1);
  CHECK(has_addr(ps, &a, "/ip4/1.0.0.1/tcp/1", 2000));
  CHECK(has_addr(ps, &a, "/ip4/1.0.0.3/tcp/1", 2000));
  lp2p__ps_free(ps);
}

TEST(peer_limit_eviction_order) {
  lp2p_peerstore *ps = mk(3, 8);
  lp2p_peer_id busy = pid(10), ident = pid(11), plain = pid(12), d = pid(13), e = pid(14), f = pid(15);
  g_busy = busy;
  const char *protos[] = {"/p/1"};
  CHECK_EQ(add1(ps, &busy, "/ip4/3.0.0.1/tcp/1", LP2P_ADDR_SRC_USER, 0, 1000), 1);
  CHECK_EQ(add1(ps, &ident, "/ip4/3.0.0.2/tcp/1", LP2P_ADDR_SRC_USER, 0, 1001), 1);
  g_now = 1001;
  CHECK_OK(lp2p_peerstore_set_protocols(ps, &ident, protos, 1));
  CHECK_EQ(add1(ps, &plain, "/ip4/3.0.0.3/tcp/1", LP2P_ADDR_SRC_USER, 0, 1002), 1);
  /* full: the unidentified one goes (busy never, identified later) */
  CHECK_EQ(add1(ps, &d, "/ip4/3.0.0.4/tcp/1", LP2P_ADDR_SRC_USER, 0, 1003), 1);
  CHECK_EQ(lp2p__ps_count(ps), 3);
  CHECK_EQ(lp2p__ps_addrs_at(ps, &plain, LP2P_MA_SCOPE_ANY, NULL, 0, 1003), 0);
  CHECK_EQ(lp2p__ps_addrs_at(ps, &busy, LP2P_MA_SCOPE_ANY, NULL, 0, 1003), 1);
  /* an expired (no live address) peer goes before an unidentified one */
  CHECK_EQ(lp2p__ps_addrs_at(ps, &d, LP2P_MA_SCOPE_ANY, NULL, 0, 1003), 1);
  lp2p__ps_free(ps);
  ps = mk(3, 8);
  g_busy = busy;
  CHECK_EQ(add1(ps, &busy, "/ip4/3.0.0.1/tcp/1", LP2P_ADDR_SRC_USER, 0, 1000), 1);
  CHECK_EQ(add1(ps, &plain, "/ip4/3.0.0.3/tcp/1", LP2P_ADDR_SRC_USER, 0, 1000), 1);
  CHECK_EQ(add1(ps, &d, "/ip4/3.0.0.4/tcp/1", LP2P_ADDR_SRC_MDNS, 50, 1500), 1);
  CHECK_EQ(add1(ps, &e, "/ip4/3.0.0.5/tcp/1", LP2P_ADDR_SRC_USER, 0, 2000), 1);
  CHECK_EQ(lp2p__ps_addrs_at(ps, &plain, LP2P_MA_SCOPE_ANY, NULL, 0, 2000), 1); /* older, but not expired */
  CHECK_EQ(lp2p_peerstore_remove_peer(ps, &d), LP2P_ERR_NOT_FOUND);             /* d was evicted */
  /* among equals, the least recently seen goes */
  lp2p__ps_seen(ps, &plain, 3000);
  CHECK_EQ(add1(ps, &f, "/ip4/3.0.0.6/tcp/1", LP2P_ADDR_SRC_USER, 0, 3001), 1);
  CHECK_EQ(lp2p_peerstore_remove_peer(ps, &e), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p__ps_count(ps), 3);
  lp2p__ps_free(ps);
  /* everything busy: the add fails */
  ps = mk(1, 8);
  g_busy = busy;
  CHECK_EQ(add1(ps, &busy, "/ip4/3.0.0.1/tcp/1", LP2P_ADDR_SRC_USER, 0, 1000), 1);
  CHECK_EQ(add1(ps, &plain, "/ip4/3.0.0.3/tcp/1", LP2P_ADDR_SRC_USER, 0, 1000), LP2P_ERR_LIMIT);
  CHECK_EQ(lp2p__ps_count(ps), 1);
  lp2p__ps_free(ps);
}

TEST(scope_filtering) {
  lp2p_peerstore *ps = mk(0, 32);
  lp2p_peer_id a = pid(20);
  CHECK_EQ(add1(ps, &a, "/ip4/127.0.0.1/tcp/1", LP2P_ADDR_SRC_IDENTIFY, 0, 1000), 1);
  CHECK_EQ(add1(ps, &a, "/ip4/192.168.0.9/tcp/1", LP2P_ADDR_SRC_IDENTIFY, 0, 1000), 1);
  CHECK_EQ(add1(ps, &a, "/ip6/fe80::2/tcp/1", LP2P_ADDR_SRC_IDENTIFY, 0, 1000), 1);
  CHECK_EQ(add1(ps, &a, "/ip4/203.0.113.7/tcp/1", LP2P_ADDR_SRC_IDENTIFY, 0, 1000), 1);
  lp2p_peer_addr out[8];
  CHECK_EQ(lp2p__ps_addrs_at(ps, &a, LP2P_MA_SCOPE_PUBLIC, out, 8, 1000), 1);
  char buf[128];
  lp2p_multiaddr_to_string(out[0].addr, buf, sizeof buf);
  CHECK_STR(buf, "/ip4/203.0.113.7/tcp/1");
  CHECK_EQ(out[0].scope, LP2P_MA_SCOPE_PUBLIC);
  CHECK_EQ(out[0].source, LP2P_ADDR_SRC_IDENTIFY);
  CHECK_EQ(out[0].expires, LP2P_TSTAMP_NEVER);
  CHECK_EQ(lp2p__ps_addrs_at(ps, &a, LP2P_MA_SCOPE_LAN, NULL, 0, 1000), 2);
  CHECK_EQ(lp2p__ps_addrs_at(ps, &a, LP2P_MA_SCOPE_LOOPBACK, NULL, 0, 1000), 1);
  CHECK_EQ(lp2p__ps_addrs_at(ps, &a, LP2P_MA_SCOPE_ANY, NULL, 0, 1000), 4);
  /* a source upgrade: identify -> user keeps one entry with the stronger source */
  CHECK_EQ(add1(ps, &a, "/ip4/203.0.113.7/tcp/1", LP2P_ADDR_SRC_USER, 0, 1000), 1);
  CHECK_EQ(lp2p__ps_addrs_at(ps, &a, LP2P_MA_SCOPE_PUBLIC, out, 8, 1000), 1);
  CHECK_EQ(out[0].source, LP2P_ADDR_SRC_USER);
  lp2p__ps_free(ps);
}

/* ---- persistence ---- */

typedef struct saved_peer {
  lp2p_peer_id id;
  char addrs[8][128];
  lp2p_addr_source src[8];
  lp2p_tstamp expires[8];
  size_t n_addrs;
  char protos[4][64];
  size_t n_protos;
  char agent[64];
  int used;
} saved_peer;

typedef struct memdb {
  saved_peer p[8];
  int saves, removes, loads;
} memdb;

static saved_peer *db_slot(memdb *db, const lp2p_peer_id *id) {
  for (int i = 0; i < 8; i++)
    if (db->p[i].used && lp2p_peer_id_equal(&db->p[i].id, id)) return &db->p[i];
  for (int i = 0; i < 8; i++)
    if (!db->p[i].used) {
      memset(&db->p[i], 0, sizeof db->p[i]);
      db->p[i].used = 1;
      db->p[i].id = *id;
      return &db->p[i];
    }
  return NULL;
}

static void db_save(void *ud, const lp2p_peerstore_snapshot *s) {
  memdb *db = ud;
  db->saves++;
  saved_peer *p = db_slot(db, s->peer);
  if (!p) return;
  p->n_addrs = 0;
  for (size_t i = 0; i < s->n_addrs && i < 8; i++) {
    lp2p_multiaddr_to_string(s->addrs[i].addr, p->addrs[i], sizeof p->addrs[i]);
    p->src[i] = s->addrs[i].source;
    p->expires[i] = s->addrs[i].expires;
    p->n_addrs++;
  }
  p->n_protos = 0;
  for (size_t i = 0; i < s->n_protocols && i < 4; i++) snprintf(p->protos[p->n_protos++], 64, "%s", s->protocols[i]);
  snprintf(p->agent, sizeof p->agent, "%s", s->agent ? s->agent : "");
}

static void db_remove(void *ud, const lp2p_peer_id *id) {
  memdb *db = ud;
  db->removes++;
  saved_peer *p = db_slot(db, id);
  if (p) p->used = 0;
}

static int db_load(void *ud, lp2p_peerstore *ps) {
  memdb *db = ud;
  db->loads++;
  for (int i = 0; i < 8; i++) {
    saved_peer *p = &db->p[i];
    if (!p->used) continue;
    for (size_t k = 0; k < p->n_addrs; k++) {
      lp2p_multiaddr *m = ma(p->addrs[k]);
      const lp2p_multiaddr *one = m;
      uint64_t ttl = p->expires[k] == LP2P_TSTAMP_NEVER ? 0 : p->expires[k] - g_now; /* same clock here */
      lp2p_peerstore_add_addrs(ps, &p->id, &one, 1, p->src[k], ttl);
      lp2p_multiaddr_free(m);
    }
    const char *pr[4];
    for (size_t k = 0; k < p->n_protos; k++) pr[k] = p->protos[k];
    lp2p_peerstore_set_protocols(ps, &p->id, pr, p->n_protos);
    if (p->agent[0]) lp2p_peerstore_set_agent(ps, &p->id, p->agent);
  }
  return 0;
}

TEST(persistence_round_trip) {
  memdb db;
  memset(&db, 0, sizeof db);
  lp2p_peerstore_persist pv = {sizeof pv, db_load, db_save, db_remove, &db};
  lp2p_peerstore *ps = mk(0, 32);
  CHECK_OK(lp2p_peerstore_set_persist(ps, &pv));
  CHECK_EQ(db.loads, 1);
  CHECK_EQ(db.saves, 0);
  lp2p_peer_id a = pid(30), b = pid(31);
  CHECK_EQ(add1(ps, &a, "/ip4/4.4.4.4/tcp/1", LP2P_ADDR_SRC_USER, 0, 1000), 1);
  CHECK_EQ(add1(ps, &a, "/ip4/4.4.4.5/tcp/1", LP2P_ADDR_SRC_DHT, 3600000, 1000), 1);
  CHECK_EQ(add1(ps, &a, "/ip4/4.4.4.6/tcp/1", LP2P_ADDR_SRC_MDNS, 1000, 1000), 1); /* short TTL: not saved */
  const char *protos[] = {"/a/1", "/b/1"};
  g_now = 1000;
  CHECK_OK(lp2p_peerstore_set_protocols(ps, &a, protos, 2));
  CHECK_OK(lp2p_peerstore_set_agent(ps, &a, "agent/1"));
  CHECK_EQ(add1(ps, &b, "/ip4/4.4.4.7/tcp/1", LP2P_ADDR_SRC_USER, 0, 1000), 1);
  CHECK(g_changed >= 1); /* the owner was told to flush */
  CHECK_EQ(db.saves, 0); /* batched */
  lp2p__ps_flush(ps, 1000);
  CHECK_EQ(db.saves, 2); /* once per changed peer */
  lp2p__ps_flush(ps, 1000);
  CHECK_EQ(db.saves, 2);
  saved_peer *sa = db_slot(&db, &a);
  REQUIRE(sa);
  CHECK_EQ(sa->n_addrs, 2);
  CHECK_EQ(sa->n_protos, 2);
  CHECK_STR(sa->agent, "agent/1");
  CHECK_OK(lp2p_peerstore_remove_peer(ps, &b));
  CHECK_EQ(db.removes, 1);
  lp2p__ps_free(ps);

  /* a new store loads it back */
  int saves_before = db.saves;
  ps = mk(0, 32);
  CHECK_OK(lp2p_peerstore_set_persist(ps, &pv));
  CHECK_EQ(db.loads, 2);
  CHECK_EQ(lp2p__ps_count(ps), 1);
  CHECK(has_addr(ps, &a, "/ip4/4.4.4.4/tcp/1", 1000));
  CHECK(has_addr(ps, &a, "/ip4/4.4.4.5/tcp/1", 1000));
  CHECK(!has_addr(ps, &a, "/ip4/4.4.4.6/tcp/1", 1000));
  CHECK_EQ(lp2p_peerstore_supports(ps, &a, "/b/1"), 1);
  CHECK_STR(lp2p_peerstore_agent(ps, &a), "agent/1");
  lp2p_peer_addr out[4];
  CHECK_EQ(lp2p__ps_addrs_at(ps, &a, LP2P_MA_SCOPE_ANY, out, 4, 1000), 2);
  CHECK_EQ(out[1].source, LP2P_ADDR_SRC_DHT);
  CHECK_EQ(out[1].expires, 1000 + 3600000);
  lp2p__ps_flush(ps, 1000);
  CHECK_EQ(db.saves, saves_before); /* loading does not save back */
  CHECK_OK(lp2p_peerstore_set_persist(ps, NULL));
  lp2p__ps_free(ps);
}

/* every allocation failing in turn: no leak, no crash (ASan build checks leaks) */
static int g_fail_at, g_allocs;
static void *f_malloc(size_t n, void *u) {
  (void)u;
  return ++g_allocs == g_fail_at ? NULL : malloc(n);
}
static void *f_realloc(void *p, size_t n, void *u) {
  (void)u;
  return ++g_allocs == g_fail_at ? NULL : realloc(p, n);
}
static void f_free(void *p, void *u) {
  (void)u;
  free(p);
}

TEST(allocation_failures) {
  lp2p_mem fm = {f_malloc, f_realloc, f_free, NULL};
  lp2p_peer_id a = pid(40), b = pid(41);
  int completed = 0;
  for (g_fail_at = 1; g_fail_at < 200 && !completed; g_fail_at++) {
    g_allocs = 0;
    lp2p__ps_hooks hk = {NULL, h_now, h_busy, h_emit, h_changed};
    lp2p_peerstore *ps = NULL;
    if (lp2p__ps_new(&ps, &fm, 1, 2, &hk) < 0) continue;
    int ok = add1(ps, &a, "/ip4/1.1.1.1/tcp/1", LP2P_ADDR_SRC_USER, 0, 1) == 1;
    ok &= add1(ps, &a, "/ip4/1.1.1.2/tcp/1", LP2P_ADDR_SRC_USER, 0, 1) == 1;
    ok &= add1(ps, &a, "/ip4/1.1.1.3/tcp/1", LP2P_ADDR_SRC_USER, 0, 1) == 1;
    const char *protos[] = {"/x/1"};
    ok &= lp2p_peerstore_set_protocols(ps, &a, protos, 1) == 0;
    ok &= lp2p_peerstore_set_agent(ps, &a, "ag") == 0;
    ok &= add1(ps, &b, "/ip4/1.1.1.4/tcp/1", LP2P_ADDR_SRC_USER, 0, 2) == 1; /* evicts a */
    if (ok) {
      CHECK_EQ(lp2p__ps_count(ps), 1);
      completed = 1;
    }
    lp2p__ps_free(ps);
  }
  CHECK(completed);
}

int main(void) {
  RUN(scope_classifier);
  RUN(add_list_dedupe_and_refuse_unusable);
  RUN(protocols_agent_key_latency);
  RUN(expiry_with_explicit_time);
  RUN(discovery_events);
  RUN(address_limit_evicts_least_useful);
  RUN(peer_limit_eviction_order);
  RUN(scope_filtering);
  RUN(persistence_round_trip);
  RUN(allocation_failures);
  return test_done();
}
