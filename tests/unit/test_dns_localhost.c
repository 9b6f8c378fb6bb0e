/* test_dns_localhost.c - "localhost" and "*.localhost" resolve to loopback
 * without a hosts file and without asking a DNS server (RFC 6761 6.3), as on
 * a minimal Debian image that has no /etc/hosts.
 *
 * The process first moves into its own mount namespace and bind-mounts an
 * empty file over /etc/hosts (unshare(CLONE_NEWNS), or a user namespace when
 * not privileged), so c-ares really has no "localhost" entry; when neither is
 * possible the test prints why and skips. The DNS server is a local UDP
 * responder that answers NXDOMAIN to everything and counts the queries: a
 * localhost name must never reach it, any other name must. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "swarm_harness.h"
#include "test.h"
#include "transport/transport_int.h"

/* ---- an empty /etc/hosts, in a private mount namespace ---- */

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  close(fd);
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* 0 when /etc/hosts is now an empty file for this process, else -1 with why. */
static int hide_hosts_file(char *why, size_t cap) {
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWNS) < 0) {
    int e1 = errno;
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
      snprintf(why, cap, "unshare(CLONE_NEWNS): %s; with CLONE_NEWUSER: %s", strerror(e1), strerror(errno));
      return -1;
    }
    char map[64];
    snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
    (void)write_file("/proc/self/setgroups", "deny");
    if (write_file("/proc/self/uid_map", map) < 0) {
      snprintf(why, cap, "cannot write uid_map: %s", strerror(errno));
      return -1;
    }
    snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
    (void)write_file("/proc/self/gid_map", map);
  }
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
    snprintf(why, cap, "mount --make-rprivate /: %s", strerror(errno));
    return -1;
  }
  char empty[] = "/tmp/lp2p-nohosts-XXXXXX";
  int fd = mkstemp(empty);
  if (fd < 0) {
    snprintf(why, cap, "mkstemp: %s", strerror(errno));
    return -1;
  }
  close(fd);
  int rv = mount(empty, "/etc/hosts", NULL, MS_BIND, NULL);
  int e = errno;
  unlink(empty); /* the bind mount keeps the inode */
  if (rv < 0) {
    snprintf(why, cap, "bind-mount over /etc/hosts: %s", strerror(e));
    return -1;
  }
  return 0;
}

/* ---- a DNS server that says NXDOMAIN to everything ---- */

typedef struct nx_dns {
  uv_udp_t udp;
  int queries;
  char servers[64];
} nx_dns;

static void nx_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  static char buf[2048];
  (void)h;
  (void)s;
  b->base = buf;
  b->len = sizeof buf;
}

static void nx_sent(uv_udp_send_t *req, int status) {
  (void)status;
  free(req);
}

static void nx_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from, unsigned flags) {
  nx_dns *d = h->data;
  (void)flags;
  if (n < 12 || !from) return;
  d->queries++;
  uint8_t *out = malloc(sizeof(uv_udp_send_t) + (size_t)n);
  if (!out) return;
  uint8_t *r = out + sizeof(uv_udp_send_t);
  memcpy(r, buf->base, (size_t)n); /* header + question echoed */
  r[2] = 0x81;                     /* response, recursion desired */
  r[3] = 0x83;                     /* recursion available, NXDOMAIN */
  memset(r + 6, 0, 6);             /* no answer, authority or additional records */
  uv_buf_t b = uv_buf_init((char *)r, (unsigned)n);
  if (uv_udp_send((uv_udp_send_t *)out, h, &b, 1, from, nx_sent) < 0) free(out);
}

static void nx_start(nx_dns *d, tloop *L) {
  memset(d, 0, sizeof *d);
  uv_udp_init(&L->loop, &d->udp);
  d->udp.data = d;
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  uv_udp_bind(&d->udp, (const struct sockaddr *)&sa, 0);
  int len = sizeof sa;
  uv_udp_getsockname(&d->udp, (struct sockaddr *)&sa, &len);
  snprintf(d->servers, sizeof d->servers, "127.0.0.1:%d", ntohs(sa.sin_port));
  uv_udp_recv_start(&d->udp, nx_alloc, nx_recv);
  lp2p__dns_servers_override = d->servers;
}

static void nx_stop(nx_dns *d) {
  lp2p__dns_servers_override = NULL;
  uv_close((uv_handle_t *)&d->udp, NULL);
}

/* ---- resolver requests ---- */

typedef struct res {
  int done, err;
  char addrs[4][128];
  size_t n;
} res;

static void res_cb(void *ud, int err, lp2p_multiaddr *const *addrs, size_t n) {
  res *r = ud;
  r->done++;
  r->err = err;
  for (size_t i = 0; i < n && i < 4; i++) lp2p_multiaddr_to_string(addrs[i], r->addrs[i], sizeof r->addrs[i]);
  r->n = n;
}

/* Resolves text on L's loop; the callback must not run inside the call. */
static int resolve(tloop *L, const char *text, res *r) {
  memset(r, 0, sizeof *r);
  lp2p_multiaddr *ma;
  if (lp2p_multiaddr_parse(&ma, text, NULL, 0) < 0) return -1;
  const lp2p__resolver *rs = lp2p__resolver_for(ma);
  lp2p__resolve_req *req;
  int rv = rs ? rs->resolve(&L->loop, NULL, ma, res_cb, r, &req) : -1;
  lp2p_multiaddr_free(ma);
  if (rv < 0 || r->done) return -1;
  if (!RUN_UNTIL(L, r->done, 10000)) return -1;
  return 0;
}

static int g_hidden;

TEST(hosts_file_has_no_localhost) {
  FILE *f = fopen("/etc/hosts", "r");
  REQUIRE(f != NULL);
  char line[256];
  int found = 0;
  while (fgets(line, sizeof line, f))
    if (strstr(line, "localhost")) found = 1;
  fclose(f);
  CHECK_EQ(found, 0);
  CHECK_EQ(g_hidden, 1);
}

TEST(localhost_names_are_loopback) {
  tloop L;
  tloop_init(&L);
  nx_dns d;
  nx_start(&d, &L);
  res r;
  CHECK_OK(resolve(&L, "/dns4/localhost/tcp/4001", &r));
  CHECK_EQ(r.err, 0);
  CHECK_EQ(r.n, 1);
  CHECK_STR(r.addrs[0], "/ip4/127.0.0.1/tcp/4001");

  CHECK_OK(resolve(&L, "/dns6/LocalHost./tcp/4001/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq", &r));
  CHECK_EQ(r.err, 0);
  CHECK_EQ(r.n, 1);
  CHECK_STR(r.addrs[0], "/ip6/::1/tcp/4001/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");

  CHECK_OK(resolve(&L, "/dns/node.app.LOCALHOST/udp/9", &r));
  CHECK_EQ(r.err, 0);
  CHECK_EQ(r.n, 2);
  CHECK_STR(r.addrs[0], "/ip4/127.0.0.1/udp/9");
  CHECK_STR(r.addrs[1], "/ip6/::1/udp/9");

  CHECK_OK(resolve(&L, "/dns4/localhost.", &r));
  CHECK_EQ(r.err, 0);
  CHECK_EQ(r.n, 1);
  CHECK_STR(r.addrs[0], "/ip4/127.0.0.1");
  CHECK_EQ(d.queries, 0); /* none of these reached the DNS server */

  /* not localhost: the server is asked (and says NXDOMAIN) */
  const char *others[] = {"/dns4/notlocalhost/tcp/1", "/dns4/localhost.example/tcp/1", "/dns6/localhostx/tcp/1"};
  for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
    int before = d.queries;
    CHECK_OK(resolve(&L, others[i], &r));
    CHECK_EQ(r.err, LP2P_ERR_DNS);
    CHECK_EQ(r.n, 0);
    CHECK(d.queries > before);
  }
  nx_stop(&d);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* The scenario that failed on a minimal image: dialing /dns4/localhost. */
TEST(dial_dns4_localhost_without_hosts_entry) {
  tloop L;
  tloop_init(&L);
  nx_dns d;
  nx_start(&d, &L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  char addr[400], pid[LP2P_PEER_ID_MAX_TEXT];
  lp2p_peer_id_to_string(&b.id, pid, sizeof pid);
  snprintf(addr, sizeof addr, "/dns4/localhost/tcp/%d/p2p/%s", tsw_port(&b), pid);
  tdial dl = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, (const char *[]){addr}, 1, tdial_cb, &dl));
  CHECK_EQ(dl.done, 0);
  CHECK(RUN_UNTIL(&L, dl.done, 10000));
  CHECK_EQ(dl.err, 0);
  CHECK(lp2p_swarm_is_connected(a.sw, &b.id));
  CHECK_EQ(d.queries, 0);
  tsw_free(&a);
  tsw_free(&b);
  nx_stop(&d);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Freed while the (immediate) answer waits for the next loop turn. */
TEST(cancel_before_delivery) {
  tloop L;
  tloop_init(&L);
  res r;
  memset(&r, 0, sizeof r);
  lp2p_multiaddr *ma;
  REQUIRE(lp2p_multiaddr_parse(&ma, "/dns4/localhost/tcp/1", NULL, 0) == 0);
  lp2p__resolve_req *req;
  CHECK_OK(lp2p__dns_resolver.resolve(&L.loop, NULL, ma, res_cb, &r, &req));
  lp2p_multiaddr_free(ma);
  CHECK_EQ(r.done, 0);
  lp2p__dns_resolver.cancel(req);
  CHECK_EQ(r.done, 1);
  CHECK_EQ(r.err, LP2P_ERR_CANCELED);
  CHECK_EQ(tloop_finish(&L), 0);
  CHECK_EQ(r.done, 1);
}

int main(void) {
  char why[256];
  if (hide_hosts_file(why, sizeof why) < 0) {
    printf("skip: cannot hide /etc/hosts (%s)\n", why);
    RUN(cancel_before_delivery);
    return test_done();
  }
  g_hidden = 1;
  RUN(hosts_file_has_no_localhost);
  RUN(localhost_names_are_loopback);
  RUN(dial_dns4_localhost_without_hosts_entry);
  RUN(cancel_before_delivery);
  return test_done();
}
