/* tests/unit/test_mdns.c - the mDNS behaviour (mdns/mdns.c, lp2p/mdns.h) with real swarms and real
 * UDP multicast: the engine has its own tests (test_mdns_engine); this one checks what the behaviour
 * adds around it - sockets, timers, the peer store, swarm events, auto-dial, teardown.
 *
 * The test moves itself into a fresh network namespace (unshare CLONE_NEWNET) and brings `lo` up
 * with the MULTICAST flag (Linux's loopback lacks it by default), so IPv4 multicast flows between
 * the swarms of this process without touching the host; mDNS runs on a non-default port. Where a
 * namespace cannot be made (no privilege) the test prints why and exits 77 (ctest SKIP).
 *
 * Checked: three swarms find each other, each peer reported exactly once (PEER_DISCOVERED, source
 * mDNS) although answers keep refreshing it; the peer store holds the peer's listen address with
 * source mDNS and a TTL that each answer renews; no dial without auto_dial; a swarm that is freed
 * says goodbye and the others expire it at once (PEER_EXPIRED exactly once, store entries gone);
 * auto_dial connects exactly once; freeing a swarm while its first query is pending, while a
 * peer's answer sits unread in its socket, or while its auto-dial is in flight leaves nothing
 * behind (ASan/LSan in the sanitizer build) and makes no callback afterwards. */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lp2p/mdns.h"
#include "lp2p/peerstore.h"
#include "swarm_harness.h"
#include "test.h"

#define TEST_PORT 15353
#define MAXN 5

static char skip_reason[256];

static int enter_netns(void) {
  if (unshare(CLONE_NEWNET) != 0) {
    snprintf(skip_reason, sizeof skip_reason, "unshare(CLONE_NEWNET) failed: %s", strerror(errno));
    return 0;
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  int ok = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags |= IFF_UP | IFF_MULTICAST;
  ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  if (fd >= 0) close(fd);
  if (!ok) {
    snprintf(skip_reason, sizeof skip_reason, "cannot bring lo up with MULTICAST in the namespace: %s",
             strerror(errno));
    return 0;
  }
  return 1;
}

/* One swarm with mDNS and what its app handler saw. */
typedef struct node {
  tsw t;
  lp2p_mdns_service *m;
  int idx, freed, bad_callbacks;
  int disc[MAXN], exp[MAXN];      /* PEER_DISCOVERED / PEER_EXPIRED (source mDNS) per other node */
  int disc_without_addr[MAXN];    /* a DISCOVERED that did not list the node's listen address */
  int established, inbound;       /* CONN_ESTABLISHED, and how many of them inbound */
} node;

static node *g_nodes[MAXN];

static int node_of(const lp2p_peer_id *id) {
  for (int i = 0; i < MAXN; i++)
    if (g_nodes[i] && lp2p_peer_id_equal(&g_nodes[i]->t.id, id)) return i;
  return -1;
}

static void on_event(lp2p_swarm *sw, const lp2p_swarm_event *ev, void *ud) {
  node *n = ud;
  (void)sw;
  if (n->freed) {
    n->bad_callbacks++;
    return;
  }
  switch (ev->type) {
  case LP2P_SWARM_EV_PEER_DISCOVERED: {
    int j = ev->peer ? node_of(ev->peer) : -1;
    if (ev->source != LP2P_ADDR_SRC_MDNS || j < 0) break;
    n->disc[j]++;
    int found = 0;
    for (size_t i = 0; i < ev->n_addrs; i++) {
      char t[256];
      if (lp2p_multiaddr_to_string(ev->addrs[i], t, sizeof t) > 0 && !strcmp(t, g_nodes[j]->t.base_addr)) found = 1;
    }
    if (!found) n->disc_without_addr[j]++;
    break;
  }
  case LP2P_SWARM_EV_PEER_EXPIRED: {
    int j = ev->peer ? node_of(ev->peer) : -1;
    if (ev->source == LP2P_ADDR_SRC_MDNS && j >= 0) n->exp[j]++;
    break;
  }
  case LP2P_SWARM_EV_CONN_ESTABLISHED:
    n->established++;
    n->inbound += ev->dir == LP2P_DIR_INBOUND;
    break;
  default:
    break;
  }
}

static int node_init(node *n, tloop *L, int idx, int auto_dial) {
  memset(n, 0, sizeof *n);
  n->idx = idx;
  int rv = tsw_init(&n->t, L, (uint8_t)(10 + idx), NULL, TSW_LISTEN_TCP);
  if (rv < 0) return rv;
  lp2p_swarm_set_event_handler(n->t.sw, on_event, n);
  g_nodes[idx] = n;
  lp2p_mdns_service_config cfg;
  lp2p_mdns_service_config_default(&cfg);
  cfg.port = TEST_PORT;
  cfg.auto_dial = auto_dial;
  return lp2p_mdns_add(n->t.sw, &cfg, &n->m);
}

static void node_free(node *n) {
  if (n->freed) return;
  tsw_free(&n->t);
  n->freed = 1;
  n->m = NULL;
}

/* The expiry of j's listen address in i's peer store if its source is mDNS (0: absent or another source). */
static lp2p_tstamp mdns_expiry(node *i, node *j) {
  lp2p_peer_addr v[16];
  size_t k = lp2p_peerstore_addrs(lp2p_swarm_peerstore(i->t.sw), &j->t.id, LP2P_MA_SCOPE_ANY, v, 16);
  if (k > 16) k = 16;
  for (size_t a = 0; a < k; a++) {
    char t[256];
    if (v[a].source == LP2P_ADDR_SRC_MDNS && lp2p_multiaddr_to_string(v[a].addr, t, sizeof t) > 0 &&
        !strcmp(t, j->t.base_addr))
      return v[a].expires;
  }
  return 0;
}

static size_t mdns_addr_count(node *i, node *j) {
  lp2p_peer_addr v[16];
  size_t k = lp2p_peerstore_addrs(lp2p_swarm_peerstore(i->t.sw), &j->t.id, LP2P_MA_SCOPE_ANY, v, 16), c = 0;
  if (k > 16) k = 16;
  for (size_t a = 0; a < k; a++) c += v[a].source == LP2P_ADDR_SRC_MDNS;
  return c;
}

static int all_found(node **v, int n) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (i != j && v[i]->disc[v[j]->idx] < 1) return 0;
  return 1;
}

TEST(discovery_refresh_goodbye) {
  tloop L;
  tloop_init(&L);
  static node a, b, c;
  REQUIRE(node_init(&a, &L, 0, 0) == 0);
  REQUIRE(node_init(&b, &L, 1, 0) == 0);
  REQUIRE(node_init(&c, &L, 2, 0) == 0);
  node *all[] = {&a, &b, &c};
  CHECK_EQ(lp2p_mdns_add(a.t.sw, NULL, NULL), LP2P_ERR_EXISTS);
  CHECK(lp2p_swarm_behaviour(a.t.sw, LP2P_MDNS_BEHAVIOUR) == (void *)a.m);
  const char *pn = lp2p_mdns_service_peer_name(a.m);
  REQUIRE(pn);
  CHECK(strlen(pn) >= 32 && strlen(pn) <= 63);
  lp2p_mdns_service_stats st = {.struct_size = sizeof st};
  lp2p_mdns_service_get_stats(a.m, &st);
  CHECK(st.sockets >= 1);

  /* everyone finds everyone, with the listen address, in the peer store with source mDNS */
  CHECK(RUN_UNTIL(&L, all_found(all, 3), 5000));
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(lp2p_mdns_service_peer_count(all[i]->m), 2);
    for (int j = 0; j < 3; j++) {
      if (i == j) continue;
      CHECK_EQ(all[i]->disc[j], 1);
      CHECK_EQ(all[i]->disc_without_addr[j], 0);
      lp2p_tstamp e = mdns_expiry(all[i], all[j]);
      CHECK(e != 0 && e != LP2P_TSTAMP_NEVER && e > lp2p_swarm_now(all[i]->t.sw));
      CHECK(e <= lp2p_swarm_now(all[i]->t.sw) + 4505000); /* 4500 s TTL + 5 s slack */
    }
  }

  /* answers keep coming (second announcement, backoff queries): every TTL in every store is
   * renewed at least once, and nobody is reported twice */
  lp2p_tstamp first[3][3];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) first[i][j] = i == j ? 0 : mdns_expiry(all[i], all[j]);
  int renewed = 0;
  CHECK(RUN_UNTIL(&L, ({
                    renewed = 1;
                    for (int i = 0; i < 3; i++)
                      for (int j = 0; j < 3; j++)
                        if (i != j && mdns_expiry(all[i], all[j]) <= first[i][j]) renewed = 0;
                    renewed;
                  }),
                  6000));
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      if (i != j) {
        CHECK_EQ(all[i]->disc[j], 1);
        CHECK_EQ(all[i]->exp[j], 0);
      }
  /* no auto_dial: nobody dialed */
  for (int i = 0; i < 3; i++) CHECK_EQ(all[i]->established, 0);
  lp2p_mdns_service_get_stats(a.m, &st);
  CHECK(st.queries_sent >= 2 && st.responses_sent >= 2 && st.packets_received > 0);
  CHECK_EQ(st.packets_malformed, 0);

  /* c leaves: its goodbye expires it at once on a and b (its records had 120 s to live) */
  lp2p_tstamp t0 = lp2p_swarm_now(a.t.sw);
  node_free(&c);
  CHECK(RUN_UNTIL(&L, a.exp[2] == 1 && b.exp[2] == 1, 3000));
  CHECK(lp2p_swarm_now(a.t.sw) - t0 < 3000);
  CHECK_EQ(lp2p_mdns_service_peer_count(a.m), 1);
  CHECK_EQ(lp2p_mdns_service_peer_count(b.m), 1);
  CHECK_EQ(mdns_addr_count(&a, &c), 0);
  CHECK_EQ(mdns_addr_count(&b, &c), 0);
  /* a and b keep each other while they go on querying (each query lists the other as a known
   * answer: they stay quiet), and c is not expired twice */
  lp2p_mdns_service_get_stats(b.m, &st);
  uint64_t bq = st.queries_sent;
  lp2p_mdns_service_query(a.m);
  lp2p_mdns_service_query(b.m);
  CHECK(RUN_UNTIL(&L, (lp2p_mdns_service_get_stats(b.m, &st), st.queries_sent >= bq + 2u * st.sockets), 4000));
  CHECK(mdns_expiry(&a, &b) > lp2p_swarm_now(a.t.sw) + 4000000);
  CHECK_EQ(a.exp[2], 1);
  CHECK_EQ(b.exp[2], 1);
  CHECK_EQ(a.exp[1], 0);
  CHECK_EQ(a.disc[1], 1);
  CHECK_EQ(c.bad_callbacks, 0);
  node_free(&a);
  node_free(&b);
  CHECK_EQ(a.bad_callbacks + b.bad_callbacks, 0);
  CHECK_EQ(tloop_finish(&L), 0);
  memset(g_nodes, 0, sizeof g_nodes);
}

TEST(auto_dial) {
  tloop L;
  tloop_init(&L);
  static node a, b;
  REQUIRE(node_init(&a, &L, 0, 1) == 0); /* dials what it finds */
  REQUIRE(node_init(&b, &L, 1, 0) == 0); /* does not */
  CHECK(RUN_UNTIL(&L, a.established == 1 && b.established == 1, 5000));
  CHECK(lp2p_swarm_is_connected(a.t.sw, &b.t.id));
  CHECK_EQ(a.inbound, 0);
  CHECK_EQ(b.inbound, 1);
  CHECK(RUN_UNTIL(&L, b.disc[0] == 1, 3000));
  /* more packets come (b's second announcement, both sides' backoff queries): no second dial, no
   * new event */
  lp2p_mdns_service_stats st2 = {.struct_size = sizeof st2};
  CHECK(RUN_UNTIL(&L, (lp2p_mdns_service_get_stats(a.m, &st2), st2.queries_sent >= 3u * st2.sockets), 5000));
  CHECK(RUN_UNTIL(&L, (lp2p_mdns_service_get_stats(b.m, &st2), st2.queries_sent >= 3u * st2.sockets), 5000));
  CHECK_EQ(a.disc[1], 1);
  CHECK_EQ(a.established, 1);
  CHECK_EQ(b.established, 1);
  CHECK_EQ(a.exp[1] + b.exp[0], 0);
  node_free(&a);
  node_free(&b);
  CHECK_EQ(a.bad_callbacks + b.bad_callbacks, 0);
  CHECK_EQ(tloop_finish(&L), 0);
  memset(g_nodes, 0, sizeof g_nodes);
}

TEST(free_while_pending) {
  tloop L;
  tloop_init(&L);
  static node a, b, c, d, e;
  /* 1. freed before its first (jittered) query went out: the timer is pending */
  REQUIRE(node_init(&a, &L, 0, 0) == 0);
  lp2p_mdns_service_stats st = {.struct_size = sizeof st};
  lp2p_mdns_service_get_stats(a.m, &st);
  CHECK_EQ(st.queries_sent, 0);
  node_free(&a);

  /* 2. freed while a peer's answer waits unread in its socket: stop the loop right after b's
   * first response went out (its announcement, or its answer to c's first query), free c at once */
  REQUIRE(node_init(&b, &L, 1, 0) == 0);
  REQUIRE(node_init(&c, &L, 2, 0) == 0);
  CHECK(RUN_UNTIL(&L, (lp2p_mdns_service_get_stats(b.m, &st), st.responses_sent >= 1), 5000));
  node_free(&c);

  /* 3. freed while its auto-dial is in flight: d dials b from inside the discovery (same turn) */
  REQUIRE(node_init(&d, &L, 3, 1) == 0);
  CHECK(RUN_UNTIL(&L, lp2p_mdns_service_peer_count(d.m) >= 1, 5000));
  node_free(&d);

  /* b carries on: a newcomer e finds it, and by the time b answered e, b had read everything c and
   * d sent before they went (their goodbyes included): whatever it had found of them is expired */
  REQUIRE(node_init(&e, &L, 4, 0) == 0);
  CHECK(RUN_UNTIL(&L, e.disc[1] == 1 && b.disc[4] == 1, 5000));
  CHECK_EQ(b.exp[2], b.disc[2]);
  CHECK_EQ(b.exp[3], b.disc[3]);
  CHECK_EQ(lp2p_mdns_service_peer_count(b.m), 1);
  lp2p_mdns_service_get_stats(b.m, &st);
  CHECK_EQ(st.packets_malformed, 0);
  node_free(&b);
  node_free(&e);
  CHECK_EQ(a.bad_callbacks + b.bad_callbacks + c.bad_callbacks + d.bad_callbacks + e.bad_callbacks, 0);
  CHECK_EQ(tloop_finish(&L), 0);
  memset(g_nodes, 0, sizeof g_nodes);
}

TEST(bad_config) {
  tloop L;
  tloop_init(&L);
  tsw t;
  REQUIRE(tsw_init(&t, &L, 30, NULL, 0) == 0);
  lp2p_mdns_service_config cfg;
  lp2p_mdns_service_config_default(&cfg);
  cfg.ttl_s = 4501;
  CHECK_EQ(lp2p_mdns_add(t.sw, &cfg, NULL), LP2P_ERR_INVAL);
  lp2p_mdns_service_config_default(&cfg);
  cfg.no_ipv4 = cfg.no_ipv6 = 1;
  CHECK_EQ(lp2p_mdns_add(t.sw, &cfg, NULL), LP2P_ERR_INVAL);
  lp2p_mdns_service_config_default(&cfg);
  cfg.query_interval_min_ms = 5000, cfg.query_interval_max_ms = 1000;
  CHECK_EQ(lp2p_mdns_add(t.sw, &cfg, NULL), LP2P_ERR_INVAL);
  cfg.struct_size = 4;
  CHECK_EQ(lp2p_mdns_add(t.sw, &cfg, NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_mdns_add(NULL, NULL, NULL), LP2P_ERR_INVAL);
  CHECK(lp2p_swarm_behaviour(t.sw, LP2P_MDNS_BEHAVIOUR) == NULL);
  CHECK_EQ(lp2p_mdns_service_query(NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_mdns_service_peer_count(NULL), 0);
  tsw_free(&t);
  CHECK_EQ(tloop_finish(&L), 0);
}

int main(void) {
  if (!enter_netns()) {
    printf("SKIP: %s\n", skip_reason);
    return 77;
  }
  RUN(bad_config);
  RUN(discovery_refresh_goodbye);
  RUN(auto_dial);
  RUN(free_while_pending);
  return test_done();
}
