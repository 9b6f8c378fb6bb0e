/* test_swarm_dns.c - dialing /dns4, /dns6 and /dnsaddr addresses: the hosts
 * file (localhost) and a tiny in-process DNS server on 127.0.0.1 (UDP) that
 * answers A and TXT queries from a table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swarm_harness.h"
#include "test.h"
#include "transport/transport_int.h"

/* ---- mock DNS server ---- */
typedef struct dns_rec {
  const char *name;
  int type;        /* 1 = A, 16 = TXT */
  char value[400]; /* A: dotted quad; TXT: the string */
} dns_rec;

typedef struct mock_dns {
  uv_udp_t udp;
  int port;
  dns_rec recs[8];
  int n_recs;
  int queries;
} mock_dns;

static void dns_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  static char buf[2048];
  (void)h;
  (void)s;
  b->base = buf;
  b->len = sizeof buf;
}

static void dns_sent(uv_udp_send_t *req, int status) {
  (void)status;
  free(req);
}

static void dns_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                     unsigned flags) {
  mock_dns *m = h->data;
  (void)flags;
  if (n < 17 || !from) return;
  const uint8_t *q = (const uint8_t *)buf->base;
  m->queries++;
  /* question name */
  char name[256];
  size_t off = 12, nl = 0;
  while (off < (size_t)n && q[off]) {
    size_t l = q[off++];
    if (off + l > (size_t)n || nl + l + 1 >= sizeof name) return;
    if (nl) name[nl++] = '.';
    memcpy(name + nl, q + off, l);
    nl += l;
    off += l;
  }
  name[nl] = 0;
  off++;
  if (off + 4 > (size_t)n) return;
  int qtype = (q[off] << 8) | q[off + 1];
  size_t qend = off + 4;
  uint8_t *out = malloc(sizeof(uv_udp_send_t) + 1500);
  uv_udp_send_t *req = (uv_udp_send_t *)out;
  uint8_t *r = out + sizeof(uv_udp_send_t);
  memcpy(r, q, qend);
  r[2] = 0x81;
  r[3] = 0x80;
  r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;
  size_t o = qend;
  int an = 0, known = 0;
  for (int i = 0; i < m->n_recs; i++) {
    if (strcasecmp(m->recs[i].name, name)) continue;
    known = 1;
    if (m->recs[i].type != qtype) continue;
    r[o++] = 0xc0;
    r[o++] = 12;
    r[o++] = 0;
    r[o++] = (uint8_t)qtype;
    r[o++] = 0;
    r[o++] = 1;
    r[o++] = 0;
    r[o++] = 0;
    r[o++] = 0;
    r[o++] = 60;
    if (qtype == 1) {
      struct sockaddr_in sa;
      uv_ip4_addr(m->recs[i].value, 0, &sa);
      r[o++] = 0;
      r[o++] = 4;
      memcpy(r + o, &sa.sin_addr, 4);
      o += 4;
    } else {
      size_t l = strlen(m->recs[i].value);
      r[o++] = 0;
      r[o++] = (uint8_t)(l + 1);
      r[o++] = (uint8_t)l;
      memcpy(r + o, m->recs[i].value, l);
      o += l;
    }
    an++;
  }
  if (!known) r[3] = 0x83; /* NXDOMAIN */
  r[7] = (uint8_t)an;
  uv_buf_t b = uv_buf_init((char *)r, (unsigned)o);
  uv_udp_send(req, h, &b, 1, from, dns_sent);
}

static void mock_dns_start(mock_dns *m, tloop *L) {
  memset(m, 0, sizeof *m);
  uv_udp_init(&L->loop, &m->udp);
  m->udp.data = m;
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  uv_udp_bind(&m->udp, (const struct sockaddr *)&sa, 0);
  int len = sizeof sa;
  uv_udp_getsockname(&m->udp, (struct sockaddr *)&sa, &len);
  m->port = ntohs(sa.sin_port);
  uv_udp_recv_start(&m->udp, dns_alloc, dns_recv);
  static char servers[64];
  snprintf(servers, sizeof servers, "127.0.0.1:%d", m->port);
  lp2p__dns_servers_override = servers;
}

static void mock_dns_stop(mock_dns *m) {
  uv_close((uv_handle_t *)&m->udp, NULL);
  lp2p__dns_servers_override = NULL;
}

static void add_rec(mock_dns *m, const char *name, int type, const char *value) {
  m->recs[m->n_recs].name = name;
  m->recs[m->n_recs].type = type;
  snprintf(m->recs[m->n_recs].value, sizeof m->recs[0].value, "%s", value);
  m->n_recs++;
}

/* /dns4/localhost via the hosts file. */
TEST(dns4_localhost) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  char addr[400], pid[LP2P_PEER_ID_MAX_TEXT];
  lp2p_peer_id_to_string(&b.id, pid, sizeof pid);
  snprintf(addr, sizeof addr, "/dns4/localhost/tcp/%d/p2p/%s", tsw_port(&b), pid);
  tdial d = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, (const char *[]){addr}, 1, tdial_cb, &d));
  CHECK_EQ(d.done, 0);
  CHECK(RUN_UNTIL(&L, d.done, 10000));
  CHECK_EQ(d.err, 0);
  CHECK(lp2p_swarm_is_connected(a.sw, &b.id));
  /* the resolved address went to the address book */
  const lp2p_multiaddr *book[4];
  CHECK(lp2p_swarm_peer_addresses(a.sw, &b.id, book, 4) >= 1);
  char t[128];
  lp2p_multiaddr_to_string(book[0], t, sizeof t);
  CHECK_STR(t, b.base_addr);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* A records and /dnsaddr TXT lists from a DNS server; failures are per address. */
TEST(dnsaddr_and_dns4_server) {
  tloop L;
  tloop_init(&L);
  mock_dns m;
  mock_dns_start(&m, &L);
  tsw a, b, c;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  CHECK_OK(tsw_init(&c, &L, 3, NULL, 1));
  char bid[LP2P_PEER_ID_MAX_TEXT], cid[LP2P_PEER_ID_MAX_TEXT], v[400];
  lp2p_peer_id_to_string(&b.id, bid, sizeof bid);
  lp2p_peer_id_to_string(&c.id, cid, sizeof cid);
  add_rec(&m, "node.lp2p.test", 1, "127.0.0.1");
  snprintf(v, sizeof v, "dnsaddr=/dns4/node.lp2p.test/tcp/%d/p2p/%s", tsw_port(&c), cid);
  add_rec(&m, "_dnsaddr.boot.lp2p.test", 16, v);
  snprintf(v, sizeof v, "dnsaddr=/ip4/127.0.0.1/tcp/%d/p2p/%s", tsw_port(&b), bid);
  add_rec(&m, "_dnsaddr.boot.lp2p.test", 16, v);
  add_rec(&m, "_dnsaddr.boot.lp2p.test", 16, "not-a-dnsaddr-entry");

  /* /dnsaddr with the peer id: only B's entry is dialed */
  char addr[400];
  snprintf(addr, sizeof addr, "/dnsaddr/boot.lp2p.test/p2p/%s", bid);
  tdial d1 = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, (const char *[]){addr}, 1, tdial_cb, &d1));
  CHECK(RUN_UNTIL(&L, d1.done, 10000));
  CHECK_EQ(d1.err, 0);
  CHECK(lp2p_peer_id_equal(&d1.peer, &b.id));
  CHECK(!lp2p_swarm_is_connected(a.sw, &c.id));

  /* C's entry is a nested /dns4 name: resolved again, then dialed */
  snprintf(addr, sizeof addr, "/dnsaddr/boot.lp2p.test/p2p/%s", cid);
  tdial d2 = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, (const char *[]){addr}, 1, tdial_cb, &d2));
  CHECK(RUN_UNTIL(&L, d2.done, 10000));
  CHECK_EQ(d2.err, 0);
  CHECK(lp2p_swarm_is_connected(a.sw, &c.id));

  /* unknown names: LP2P_ERR_DNS, and the next address is tried */
  tdial d3 = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, &b.id,
                           (const char *[]){"/dns4/nowhere.lp2p.test/tcp/1", "/dnsaddr/none.lp2p.test"}, 2,
                           tdial_cb, &d3));
  CHECK(RUN_UNTIL(&L, d3.done, 10000));
  CHECK_EQ(d3.err, 0); /* B is connected already: no lookup needed */
  tsw x;
  CHECK_OK(tsw_init(&x, &L, 9, NULL, 0));
  tdial d4 = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, &x.id,
                           (const char *[]){"/dns4/nowhere.lp2p.test/tcp/1", "/dnsaddr/none.lp2p.test"}, 2,
                           tdial_cb, &d4));
  CHECK(RUN_UNTIL(&L, d4.done, 10000));
  CHECK_EQ(d4.err, LP2P_ERR_DIAL);
  CHECK_EQ(d4.n_errs, 2);
  CHECK_EQ(d4.errs[0], LP2P_ERR_DNS);
  CHECK_EQ(d4.errs[1], LP2P_ERR_DNS);
  CHECK(m.queries >= 4);

  /* a lookup in flight when the swarm is freed: the dial callback gets CANCELED */
  tdial d5 = {0};
  mock_dns_stop(&m);
  uv_udp_t silent; /* bound, never reads: queries stay unanswered */
  uv_udp_init(&L.loop, &silent);
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  uv_udp_bind(&silent, (const struct sockaddr *)&sa, 0);
  int sl = sizeof sa;
  uv_udp_getsockname(&silent, (struct sockaddr *)&sa, &sl);
  char srv[64];
  snprintf(srv, sizeof srv, "127.0.0.1:%d", ntohs(sa.sin_port));
  lp2p__dns_servers_override = srv;
  CHECK_OK(lp2p_swarm_dial(a.sw, &x.id, (const char *[]){"/dns4/slow.lp2p.test/tcp/1"}, 1, tdial_cb, &d5));
  tloop_sleep(&L, 20);
  tsw_free(&a);
  CHECK_EQ(d5.done, 1);
  CHECK_EQ(d5.err, LP2P_ERR_CANCELED);
  lp2p__dns_servers_override = NULL;
  uv_close((uv_handle_t *)&silent, NULL);
  tsw_free(&b);
  tsw_free(&c);
  tsw_free(&x);
  CHECK_EQ(tloop_finish(&L), 0);
}

int main(void) {
  RUN(dns4_localhost);
  RUN(dnsaddr_and_dns4_server);
  return test_done();
}
