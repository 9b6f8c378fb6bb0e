/* tests/unit/test_udp.c - lp2p/udp.h: swarm-owned UDP handles and the
 * interface table.
 *
 * The test first moves itself into a fresh network namespace (unshare
 * CLONE_NEWNET) where it may bring `lo` up with the MULTICAST flag (Linux's
 * loopback lacks it by default) and add addresses, so multicast and interface
 * changes are tested for real without touching the host. Where a namespace
 * cannot be made (no privilege), the unicast tests run on the host's loopback,
 * the multicast/interface-change tests are skipped with the reason printed,
 * and the executable exits 77 (ctest SKIP). */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lp2p/udp.h"
#include "swarm_harness.h"
#include "test.h"

static char skip_reason[256];

/* 1: in a fresh namespace with lo up + multicast. 0: skipped (reason in skip_reason). */
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

static lp2p_multiaddr *ma(const char *text) {
  lp2p_multiaddr *m = NULL;
  if (lp2p_multiaddr_parse(&m, text, NULL, 0) < 0) return NULL;
  return m;
}

/* A receiver: records datagrams. */
typedef struct rx {
  int n;
  char last[256];
  size_t last_len;
  char from[128];
  int free_self; /* lp2p_udp_free(u) inside the callback */
  lp2p_udp *u;
} rx;

static void on_recv(lp2p_udp *u, const lp2p_multiaddr *from, const uint8_t *p, size_t n, void *ud) {
  rx *r = ud;
  r->n++;
  r->last_len = n < sizeof r->last ? n : sizeof r->last - 1;
  memcpy(r->last, p, r->last_len);
  r->last[r->last_len] = 0;
  lp2p_multiaddr_to_string(from, r->from, sizeof r->from);
  if (r->free_self) {
    lp2p_udp_free(u);
    r->u = NULL;
  }
}

static void unicast(const char *bind_text, const char *host) {
  tloop L;
  tloop_init(&L);
  tsw a;
  REQUIRE(tsw_init(&a, &L, 1, NULL, 0) == 0);
  lp2p_multiaddr *bind = ma(bind_text);
  REQUIRE(bind);
  rx r1, r2;
  memset(&r1, 0, sizeof r1);
  memset(&r2, 0, sizeof r2);
  lp2p_udp *u1, *u2;
  CHECK_OK(lp2p_udp_new(&u1, a.sw, bind, 0, on_recv, &r1));
  CHECK_OK(lp2p_udp_new(&u2, a.sw, bind, 0, on_recv, &r2));
  char t1[128], t2[128], dst[160];
  lp2p_multiaddr_to_string(lp2p_udp_local_addr(u1), t1, sizeof t1);
  lp2p_multiaddr_to_string(lp2p_udp_local_addr(u2), t2, sizeof t2);
  CHECK(strstr(t1, "/udp/") && !strstr(t1, "/udp/0"));
  CHECK(strcmp(t1, t2) != 0);
  /* u1 -> u2 */
  snprintf(dst, sizeof dst, "/%s/udp/%s", host, strstr(t2, "/udp/") + 5);
  lp2p_multiaddr *to2 = ma(dst);
  REQUIRE(to2);
  CHECK_OK(lp2p_udp_send(u1, to2, (const uint8_t *)"hello", 5));
  CHECK(RUN_UNTIL(&L, r2.n == 1, 3000));
  CHECK_STR(r2.last, "hello");
  CHECK_STR(r2.from, t1); /* the sender's bound address */
  /* reply to the reported sender, and an empty datagram */
  lp2p_multiaddr *back = ma(r2.from);
  REQUIRE(back);
  CHECK_OK(lp2p_udp_send(u2, back, (const uint8_t *)"world", 5));
  CHECK_OK(lp2p_udp_send(u2, back, NULL, 0));
  CHECK(RUN_UNTIL(&L, r1.n == 2, 3000));
  CHECK_EQ(r1.last_len, 0);
  /* many datagrams: none lost on loopback, in order */
  for (int i = 0; i < 200; i++) {
    char msg[32];
    int len = snprintf(msg, sizeof msg, "m%d", i);
    CHECK_OK(lp2p_udp_send(u1, to2, (const uint8_t *)msg, (size_t)len));
  }
  CHECK(RUN_UNTIL(&L, r2.n == 201, 3000));
  CHECK_STR(r2.last, "m199");
  CHECK_EQ(lp2p_udp_send_errors(u1), 0);
  lp2p_multiaddr_free(back);
  lp2p_multiaddr_free(to2);
  lp2p_multiaddr_free(bind);
  lp2p_udp_free(u1);
  lp2p_udp_free(u2);
  lp2p_udp_free(NULL);
  tsw_free(&a);
  CHECK_EQ(tloop_finish(&L), 0);
}

TEST(unicast_ipv4) { unicast("/ip4/127.0.0.1/udp/0", "ip4/127.0.0.1"); }
TEST(unicast_ipv6) { unicast("/ip6/::1/udp/0", "ip6/::1"); }

TEST(bad_addresses) {
  tloop L;
  tloop_init(&L);
  tsw a;
  REQUIRE(tsw_init(&a, &L, 1, NULL, 0) == 0);
  rx r;
  memset(&r, 0, sizeof r);
  lp2p_udp *u = (lp2p_udp *)1;
  static const char *bad_bind[] = {"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1", "/dns4/localhost/udp/0",
                                   "/ip4/127.0.0.1/udp/0/quic-v1"};
  for (size_t i = 0; i < sizeof bad_bind / sizeof *bad_bind; i++) {
    lp2p_multiaddr *m = ma(bad_bind[i]);
    REQUIRE(m);
    CHECK_EQ(lp2p_udp_new(&u, a.sw, m, 0, on_recv, &r), LP2P_ERR_MULTIADDR);
    CHECK(u == NULL);
    lp2p_multiaddr_free(m);
  }
  lp2p_multiaddr *b = ma("/ip4/127.0.0.1/udp/0");
  CHECK_EQ(lp2p_udp_new(&u, a.sw, b, 0, NULL, &r), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_udp_new(&u, a.sw, b, 0x100, on_recv, &r), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_udp_new(&u, NULL, b, 0, on_recv, &r), LP2P_ERR_INVAL);
  /* an address of no local interface */
  lp2p_multiaddr *far = ma("/ip4/192.0.2.1/udp/0");
  CHECK(lp2p_udp_new(&u, a.sw, far, 0, on_recv, &r) < 0);
  lp2p_multiaddr_free(far);
  REQUIRE(lp2p_udp_new(&u, a.sw, b, 0, on_recv, &r) == 0);
  /* the port in use without REUSEADDR */
  lp2p_udp *u2 = NULL;
  CHECK_EQ(lp2p_udp_new(&u2, a.sw, lp2p_udp_local_addr(u), 0, on_recv, &r), LP2P_ERR_ADDRINUSE);
  static const char *bad_to[] = {"/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1", "/ip6/::1/udp/9",
                                 "/dns4/localhost/udp/9"};
  for (size_t i = 0; i < sizeof bad_to / sizeof *bad_to; i++) {
    lp2p_multiaddr *m = ma(bad_to[i]);
    REQUIRE(m);
    CHECK_EQ(lp2p_udp_send(u, m, (const uint8_t *)"x", 1), LP2P_ERR_MULTIADDR);
    lp2p_multiaddr_free(m);
  }
  static uint8_t big[65508];
  lp2p_multiaddr *to = ma("/ip4/127.0.0.1/udp/9");
  CHECK_EQ(lp2p_udp_send(u, to, big, sizeof big), LP2P_ERR_TOO_LARGE);
  CHECK_OK(lp2p_udp_send(u, to, big, sizeof big - 1)); /* the largest IPv4 datagram */
  CHECK_EQ(lp2p_udp_send(u, NULL, big, 1), LP2P_ERR_INVAL);
  /* multicast groups: not multicast, wrong family, not an address */
  lp2p_multiaddr *g_uni = ma("/ip4/10.0.0.1"), *g6 = ma("/ip6/ff02::fb"), *g_tcp = ma("/ip4/224.0.0.251/tcp/1");
  CHECK_EQ(lp2p_udp_join(u, g_uni, 0), LP2P_ERR_MULTIADDR);
  CHECK_EQ(lp2p_udp_join(u, g6, 0), LP2P_ERR_MULTIADDR);
  CHECK_EQ(lp2p_udp_join(u, g_tcp, 0), LP2P_ERR_MULTIADDR);
  CHECK_EQ(lp2p_udp_set_multicast_ttl(u, 0), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_udp_set_multicast_ttl(u, 256), LP2P_ERR_INVAL);
  CHECK_OK(lp2p_udp_set_multicast_ttl(u, 255));
  CHECK_OK(lp2p_udp_set_multicast_loop(u, 0));
  lp2p_multiaddr_free(g_uni);
  lp2p_multiaddr_free(g6);
  lp2p_multiaddr_free(g_tcp);
  lp2p_multiaddr_free(to);
  lp2p_multiaddr_free(b);
  lp2p_udp_free(u);
  tsw_free(&a);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* lp2p_udp_free from inside the receive callback: no further callback, no leak. */
TEST(free_inside_recv) {
  tloop L;
  tloop_init(&L);
  tsw a;
  REQUIRE(tsw_init(&a, &L, 1, NULL, 0) == 0);
  lp2p_multiaddr *b = ma("/ip4/127.0.0.1/udp/0");
  rx r, s;
  memset(&r, 0, sizeof r);
  memset(&s, 0, sizeof s);
  r.free_self = 1;
  lp2p_udp *ur, *us;
  REQUIRE(lp2p_udp_new(&ur, a.sw, b, 0, on_recv, &r) == 0);
  REQUIRE(lp2p_udp_new(&us, a.sw, b, 0, on_recv, &s) == 0);
  r.u = ur;
  lp2p_multiaddr *to = lp2p_multiaddr_dup(lp2p_udp_local_addr(ur));
  for (int i = 0; i < 5; i++) CHECK_OK(lp2p_udp_send(us, to, (const uint8_t *)"x", 1));
  CHECK(RUN_UNTIL(&L, r.n >= 1, 3000));
  tloop_sleep(&L, 50);
  CHECK_EQ(r.n, 1);
  CHECK(r.u == NULL);
  /* sending to the closed port: no crash; ICMP errors may be counted */
  CHECK_OK(lp2p_udp_send(us, to, (const uint8_t *)"y", 1));
  lp2p_multiaddr_free(to);
  lp2p_multiaddr_free(b);
  lp2p_udp_free(us);
  tsw_free(&a);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Freeing the swarm with handles still open (and datagrams queued) releases
 * everything: app loop and own loop. */
TEST(swarm_free_with_open_handles) {
  tloop L;
  tloop_init(&L);
  tsw a;
  REQUIRE(tsw_init(&a, &L, 1, NULL, 0) == 0);
  lp2p_multiaddr *b = ma("/ip4/127.0.0.1/udp/0");
  rx r;
  memset(&r, 0, sizeof r);
  lp2p_udp *u[4];
  for (int i = 0; i < 4; i++) REQUIRE(lp2p_udp_new(&u[i], a.sw, b, 0, on_recv, &r) == 0);
  lp2p_udp_free(u[3]); /* one closed already, still closing */
  lp2p_multiaddr *to = lp2p_multiaddr_dup(lp2p_udp_local_addr(u[1]));
  static uint8_t buf[60000];
  int queued = 0;
  for (int i = 0; i < 200 && !queued; i++) {
    int rv = lp2p_udp_send(u[0], to, buf, sizeof buf);
    CHECK(rv == 0 || rv == LP2P_ERR_LIMIT);
    if (rv == LP2P_ERR_LIMIT) queued = 1;
  }
  lp2p_interface ifs[8];
  CHECK(lp2p_swarm_interfaces(a.sw, ifs, 8) > 0); /* starts the poll timer */
  tsw_free(&a);
  CHECK_EQ(tloop_finish(&L), 0);
  /* own loop */
  lp2p_privkey *k;
  uint8_t seed[32] = {7};
  REQUIRE(lp2p_privkey_from_ed25519_seed(&k, seed) == 0);
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = k;
  lp2p_swarm *sw;
  REQUIRE(lp2p_swarm_new(&sw, &cfg, NULL) == 0);
  lp2p_udp *v;
  REQUIRE(lp2p_udp_new(&v, sw, b, LP2P_UDP_REUSEADDR, on_recv, &r) == 0);
  CHECK_OK(lp2p_udp_send(v, to, buf, 100));
  CHECK(lp2p_swarm_interfaces(sw, NULL, 0) > 0);
  lp2p_swarm_free(sw);
  lp2p_privkey_free(k);
  lp2p_multiaddr_free(to);
  lp2p_multiaddr_free(b);
}

/* ---- in the namespace ---- */

static unsigned lo_index(void) { return if_nametoindex("lo"); }

static void multicast(const char *ifname, const char *bind_text, const char *group_text, const char *dst_text) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  REQUIRE(tsw_init(&a, &L, 1, NULL, 0) == 0);
  REQUIRE(tsw_init(&b, &L, 2, NULL, 0) == 0);
  lp2p_multiaddr *bind = ma(bind_text), *group = ma(group_text), *dst = ma(dst_text);
  REQUIRE(bind && group && dst);
  rx r1, r2;
  memset(&r1, 0, sizeof r1);
  memset(&r2, 0, sizeof r2);
  lp2p_udp *u1, *u2;
  /* two sockets (two swarms) sharing the group's port, as mDNS next to avahi */
  REQUIRE(lp2p_udp_new(&u1, a.sw, bind, LP2P_UDP_REUSEADDR, on_recv, &r1) == 0);
  REQUIRE(lp2p_udp_new(&u2, b.sw, bind, LP2P_UDP_REUSEADDR, on_recv, &r2) == 0);
  unsigned lo = if_nametoindex(ifname);
  REQUIRE(lo != 0);
  CHECK_OK(lp2p_udp_join(u1, group, lo));
  CHECK_OK(lp2p_udp_join(u2, group, lo));
  CHECK_OK(lp2p_udp_set_multicast_if(u1, lo));
  CHECK_OK(lp2p_udp_set_multicast_if(u2, lo));
  CHECK_OK(lp2p_udp_set_multicast_ttl(u1, 1));
  CHECK_OK(lp2p_udp_set_multicast_loop(u1, 1));
  CHECK_OK(lp2p_udp_set_multicast_loop(u2, 1));
  CHECK_OK(lp2p_udp_send(u1, dst, (const uint8_t *)"query", 5));
  /* both members get it (the sender too: loop on) */
  CHECK(RUN_UNTIL(&L, r1.n == 1 && r2.n == 1, 3000));
  CHECK_STR(r2.last, "query");
  CHECK_OK(lp2p_udp_send(u2, dst, (const uint8_t *)"answer", 6));
  CHECK(RUN_UNTIL(&L, r1.n == 2 && r2.n == 2, 3000));
  CHECK_STR(r1.last, "answer");
  /* unicast reply to the reported multicast sender */
  lp2p_multiaddr *back = ma(r1.from);
  REQUIRE(back);
  /* u2 leaves: only u1 receives now */
  CHECK_OK(lp2p_udp_leave(u2, group, lo));
  CHECK_EQ(lp2p_udp_leave(u2, group, lo), LP2P_ERR_NOT_FOUND);
  CHECK_OK(lp2p_udp_send(u1, dst, (const uint8_t *)"again", 5));
  CHECK(RUN_UNTIL(&L, r1.n == 3, 3000));
  tloop_sleep(&L, 100);
  CHECK_EQ(r2.n, 2);
  /* join again, on an interface that does not exist */
  CHECK_EQ(lp2p_udp_join(u2, group, 9999), LP2P_ERR_NOT_FOUND);
  lp2p_multiaddr_free(back);
  lp2p_multiaddr_free(bind);
  lp2p_multiaddr_free(group);
  lp2p_multiaddr_free(dst);
  /* handles left open: freed with their swarms */
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

TEST(multicast_ipv4) {
  multicast("lo", "/ip4/0.0.0.0/udp/5353", "/ip4/224.0.0.251", "/ip4/224.0.0.251/udp/5353");
}

static int have_veth;
/* IPv6 multicast does not flow over Linux's lo (no multicast route, and none that delivers): the test
 * uses a veth pair made in the namespace, with link-local addresses (no DAD wait). */
TEST(multicast_ipv6) {
  REQUIRE(have_veth);
  multicast("lp2pv0", "/ip6/::/udp/5353", "/ip6/ff02::fb", "/ip6/ff02::fb/udp/5353");
}

static int has_addr(const lp2p_interface *v, int n, const char *text) {
  for (int i = 0; i < n; i++) {
    char t[128];
    lp2p_multiaddr_to_string(v[i].addr, t, sizeof t);
    if (!strcmp(t, text)) return 1;
  }
  return 0;
}

static int n_changed(const tsw *t) {
  int k = 0;
  for (int i = 0; i < t->n_events; i++) k += t->events[i] == LP2P_SWARM_EV_INTERFACES_CHANGED;
  return k;
}

TEST(interfaces_and_changes) {
  tloop L;
  tloop_init(&L);
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  CHECK_EQ(cfg.interface_poll_ms, 5000);
  cfg.interface_poll_ms = 50;
  tsw a;
  REQUIRE(tsw_init(&a, &L, 1, &cfg, 0) == 0);
  CHECK_STR(lp2p_swarm_event_name(LP2P_SWARM_EV_INTERFACES_CHANGED), "interfaces-changed");
  lp2p_interface v[16];
  int n = lp2p_swarm_interfaces(a.sw, v, 16);
  REQUIRE(n >= 1);
  /* the namespace has lo only: 127.0.0.1/8 and ::1/128, up, loopback, multicast */
  CHECK(has_addr(v, n, "/ip4/127.0.0.1"));
  for (int i = 0; i < n; i++) {
    CHECK_STR(v[i].name, "lo");
    CHECK_EQ(v[i].index, lo_index());
    CHECK((v[i].flags & (LP2P_IF_UP | LP2P_IF_LOOPBACK | LP2P_IF_MULTICAST)) ==
          (LP2P_IF_UP | LP2P_IF_LOOPBACK | LP2P_IF_MULTICAST));
    char t[64];
    lp2p_multiaddr_to_string(v[i].addr, t, sizeof t);
    if (!strcmp(t, "/ip4/127.0.0.1")) CHECK_EQ(v[i].prefix_len, 8);
    if (!strcmp(t, "/ip6/::1")) CHECK_EQ(v[i].prefix_len, 128);
  }
  CHECK_EQ(lp2p_swarm_interfaces(a.sw, NULL, 0), n);
  /* nothing changes: no event */
  tloop_sleep(&L, 200);
  CHECK_EQ(n_changed(&a), 0);
  /* add an address: one event, then the snapshot has it */
  REQUIRE(system("ip addr add 10.9.8.7/24 dev lo") == 0);
  CHECK(RUN_UNTIL(&L, n_changed(&a) == 1, 3000));
  int n2 = lp2p_swarm_interfaces(a.sw, v, 16);
  CHECK_EQ(n2, n + 1);
  CHECK(has_addr(v, n2, "/ip4/10.9.8.7"));
  for (int i = 0; i < n2; i++)
    if (has_addr(&v[i], 1, "/ip4/10.9.8.7")) CHECK_EQ(v[i].prefix_len, 24);
  tloop_sleep(&L, 200);
  CHECK_EQ(n_changed(&a), 1);
  /* remove it: one more event */
  REQUIRE(system("ip addr del 10.9.8.7/24 dev lo") == 0);
  CHECK(RUN_UNTIL(&L, n_changed(&a) == 2, 3000));
  CHECK_EQ(lp2p_swarm_interfaces(a.sw, v, 16), n);
  CHECK(!has_addr(v, n, "/ip4/10.9.8.7"));
  /* a listener on 0.0.0.0 reports the interface addresses */
  CHECK_OK(lp2p_swarm_listen(a.sw, "/ip4/0.0.0.0/tcp/0"));
  const lp2p_multiaddr *la[8];
  size_t nl = lp2p_swarm_listen_addrs(a.sw, la, 8);
  CHECK_EQ(nl, 1);
  char t[64];
  lp2p_multiaddr_to_string(la[0], t, sizeof t);
  CHECK(!strncmp(t, "/ip4/127.0.0.1/tcp/", 19));
  tsw_free(&a);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* With polling off every call re-reads the table and no event is emitted. */
TEST(interfaces_poll_off) {
  tloop L;
  tloop_init(&L);
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.interface_poll_ms = 0;
  tsw a;
  REQUIRE(tsw_init(&a, &L, 1, &cfg, 0) == 0);
  lp2p_interface v[16];
  int n = lp2p_swarm_interfaces(a.sw, v, 16);
  REQUIRE(n >= 1);
  REQUIRE(system("ip addr add 10.9.8.9/32 dev lo") == 0);
  CHECK_EQ(lp2p_swarm_interfaces(a.sw, v, 16), n + 1);
  REQUIRE(system("ip addr del 10.9.8.9/32 dev lo") == 0);
  tloop_sleep(&L, 100);
  CHECK_EQ(n_changed(&a), 0);
  tsw_free(&a);
  CHECK_EQ(tloop_finish(&L), 0);
}

int main(void) {
  int ns = enter_netns();
  RUN(unicast_ipv4);
  RUN(unicast_ipv6);
  RUN(bad_addresses);
  RUN(free_inside_recv);
  RUN(swarm_free_with_open_handles);
  if (ns) {
    RUN(multicast_ipv4);
    have_veth = system("ip link add lp2pv0 type veth peer name lp2pv1 && ip link set lp2pv0 up && "
                       "ip link set lp2pv1 up && ip addr add fe80::10/64 dev lp2pv0 nodad && "
                       "ip addr add fe80::11/64 dev lp2pv1 nodad") == 0;
    if (have_veth) {
      RUN(multicast_ipv6);
      if (system("ip link del lp2pv0") != 0) fprintf(stderr, "could not delete the veth pair\n");
    } else {
      ns = 0;
      snprintf(skip_reason, sizeof skip_reason, "IPv6 multicast: cannot create a veth pair (ip link add ... type veth)");
    }
    RUN(interfaces_and_changes);
    RUN(interfaces_poll_off);
  }
  int rv = test_done();
  if (!rv && !ns) {
    printf("SKIP: multicast and interface-change tests: %s\n", skip_reason);
    return 77;
  }
  return rv;
}
