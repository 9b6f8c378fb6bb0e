/* tests/unit/test_mdns_engine.c - the sans-IO mDNS engine with an explicit clock: the vector
 * layout byte for byte, discovery from the js/go/rust layouts, query timing and backoff,
 * answer rate limits, TTL expiry, goodbyes, per-interface address filtering, splitting,
 * floods and allocation failures. */
#include <stdlib.h>

#include "failmem.h"
#include "json.h"
#include "mdns/engine/mdns_codec.h"
#include "mdns/engine/mdns_engine.h"
#include "test.h"

#define PEER_ID "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"
#define OTHER_ID "12D3KooWLqLxEfJ9nDdEe8Kh8PFvNPQRYDQBwyL7CMM7HhVd5LsX"
#define VEC_NAME "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static lp2p_mdns_msg msg;

static int xrng(void *ud, uint8_t *buf, size_t n) {
  uint32_t *x = ud;
  for (size_t i = 0; i < n; i++) {
    *x ^= *x << 13, *x ^= *x >> 17, *x ^= *x << 5;
    buf[i] = (uint8_t)(*x >> 11);
  }
  return 0;
}
static uint32_t rng_state = 99;

static uint8_t *vec_hex(const char *key, size_t *len) {
  json *j = json_load_vector("mdns-packets.json");
  if (!j) return NULL;
  uint8_t *b = json_hex(json_get(j, key), "hex", len);
  json_free(j);
  return b;
}

static void cfg_init(lp2p_mdns_config *c) {
  memset(c, 0, sizeof *c);
  c->struct_size = sizeof *c;
  c->rng = xrng;
  c->rng_ud = &rng_state;
}

static lp2p_mdns_ifaddr a4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t plen) {
  lp2p_mdns_ifaddr x;
  memset(&x, 0, sizeof x);
  x.family = 4;
  x.addr[0] = a, x.addr[1] = b, x.addr[2] = c, x.addr[3] = d;
  x.prefix_len = plen;
  return x;
}
static lp2p_mdns_ifaddr a6(const char *hex, uint8_t plen) { /* 32 hex digits */
  lp2p_mdns_ifaddr x;
  memset(&x, 0, sizeof x);
  x.family = 6;
  size_t n;
  uint8_t *b = hex_to_bytes(hex, &n);
  memcpy(x.addr, b, 16);
  free(b);
  x.prefix_len = plen;
  return x;
}

/* lo: 127.0.0.1/8 ::1/128; eth0 (2): 192.168.1.10/24 fe80::1/64 2001:db8::10/64. */
static size_t std_ifaces(lp2p_mdns_iface *ifs) {
  memset(ifs, 0, 2 * sizeof *ifs);
  ifs[0].index = 1;
  ifs[0].loopback = 1;
  ifs[0].addrs[ifs[0].naddrs++] = a4(127, 0, 0, 1, 8);
  ifs[0].addrs[ifs[0].naddrs++] = a6("00000000000000000000000000000001", 128);
  ifs[1].index = 2;
  ifs[1].addrs[ifs[1].naddrs++] = a4(192, 168, 1, 10, 24);
  ifs[1].addrs[ifs[1].naddrs++] = a6("fe800000000000000000000000000001", 64);
  ifs[1].addrs[ifs[1].naddrs++] = a6("20010db8000000000000000000000010", 64);
  return 2;
}

static void set_addrs(lp2p_mdns *e, const char *const *texts, size_t n, const char *id, lp2p_tstamp now) {
  lp2p_multiaddr *mas[32];
  for (size_t i = 0; i < n; i++) CHECK_OK(lp2p_multiaddr_parse(&mas[i], texts[i], NULL, 0));
  lp2p_peer_id pid;
  CHECK_OK(lp2p_peer_id_parse(id, &pid));
  CHECK_OK(lp2p_mdns_set_listen_addrs(e, (const lp2p_multiaddr *const *)mas, n, &pid, now));
  for (size_t i = 0; i < n; i++) lp2p_multiaddr_free(mas[i]);
}

typedef struct pkts {
  size_t n;
  lp2p_mdns_packet p[64];
  uint8_t *data[64];
} pkts;
static void drain(lp2p_mdns *e, pkts *out) {
  lp2p_mdns_packet p;
  out->n = 0;
  while (lp2p_mdns_next_packet(e, &p)) {
    if (out->n < 64) {
      out->p[out->n] = p;
      out->data[out->n] = malloc(p.len);
      memcpy(out->data[out->n], p.data, p.len);
      out->p[out->n].data = out->data[out->n];
      out->n++;
    }
  }
}
static void pkts_free(pkts *p) {
  for (size_t i = 0; i < p->n; i++) free(p->data[i]);
  p->n = 0;
}
static size_t count_kind(const pkts *p, int responses, uint32_t ifindex, int family) {
  size_t n = 0;
  for (size_t i = 0; i < p->n; i++) {
    if (ifindex && p->p[i].ifindex != ifindex) continue;
    if (family && p->p[i].family != family) continue;
    int is_resp = (p->p[i].data[2] & 0x80) != 0;
    if (is_resp == responses) n++;
  }
  return n;
}

/* The dnsaddr strings of one packet, joined with '|' in order. */
static void strings_of(const uint8_t *data, size_t len, char *out, size_t cap) {
  out[0] = 0;
  if (lp2p_mdns_parse(data, len, &msg)) return;
  size_t o = 0;
  for (size_t i = 0; i < msg.nrr; i++) {
    if (msg.rr[i].type != LP2P_MDNS_TYPE_TXT) continue;
    size_t off = 0, sl;
    const uint8_t *s;
    while (lp2p_mdns_txt_next(msg.rr[i].rdata, msg.rr[i].rdlen, &off, &s, &sl) == 1) {
      if (o + sl + 2 > cap) return;
      if (o) out[o++] = '|';
      memcpy(out + o, s, sl);
      o += sl;
      out[o] = 0;
    }
  }
}

static int g_single_txt; /* mk_engine: cfg.txt_single_record */
static lp2p_mdns *mk_engine(const char *peer_name, int no_compression, lp2p_tstamp now) {
  lp2p_mdns_config c;
  cfg_init(&c);
  c.peer_name = peer_name;
  c.no_compression = no_compression;
  c.txt_single_record = g_single_txt;
  lp2p_mdns *e = NULL;
  CHECK_OK(lp2p_mdns_new(&e, &c, NULL, now));
  return e;
}

static const uint8_t SRC_LAN[4] = {192, 168, 1, 20};
/* a link-local IPv6 source for packets of family 6 (the engine reads 16 bytes then) */
static const uint8_t SRC_LAN6[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20};

TEST(vector_layout_byte_for_byte) {
  size_t qn, rn;
  uint8_t *q = vec_hex("query", &qn), *r = vec_hex("response_recommended", &rn);
  REQUIRE(q && r);
  g_single_txt = 1; /* the vector holds the one-TXT-record variant */
  lp2p_mdns *e = mk_engine(VEC_NAME, 1, 1000);
  g_single_txt = 0;
  REQUIRE(e);
  lp2p_mdns_iface ifc;
  memset(&ifc, 0, sizeof ifc);
  ifc.index = 2;
  ifc.addrs[ifc.naddrs++] = a4(192, 168, 1, 10, 24);
  CHECK_OK(lp2p_mdns_set_interfaces(e, &ifc, 1, 1000));
  const char *addrs[] = {"/ip4/192.168.1.10/tcp/4001", "/ip4/192.168.1.10/udp/4001/quic-v1/p2p/" PEER_ID};
  set_addrs(e, addrs, 2, PEER_ID, 1000);
  pkts p;
  drain(e, &p);
  CHECK_EQ(p.n, 0); /* nothing before the jittered first slot */
  lp2p_tstamp t = lp2p_mdns_next_deadline(e);
  CHECK(t >= 1020 && t <= 1120);
  CHECK_OK(lp2p_mdns_tick(e, t));
  drain(e, &p);
  REQUIRE(p.n == 2);
  /* the vector's question, plus our own PTR as a known answer (the query loops back to us: we do
   * not answer ourselves) */
  REQUIRE(p.p[0].len > qn);
  CHECK_MEM(p.p[0].data + 12, q + 12, qn - 12);
  REQUIRE(lp2p_mdns_parse(p.p[0].data, p.p[0].len, &msg) == 0);
  CHECK_EQ(msg.nq, 1);
  REQUIRE(msg.nrr == 1);
  CHECK_EQ(msg.rr[0].section, LP2P_MDNS_SEC_ANSWER);
  CHECK_EQ(msg.rr[0].type, LP2P_MDNS_TYPE_PTR);
  CHECK_EQ(msg.rr[0].ttl, 120);
  char itext[128];
  REQUIRE(lp2p_mdns_name_to_text(&msg.rr[0].target, itext, sizeof itext) > 0);
  CHECK_STR(itext, VEC_NAME "._p2p._udp.local");
  CHECK_EQ(p.p[0].unicast, 0);
  CHECK_EQ(p.p[0].dst_port, 5353);
  CHECK_EQ(p.p[1].len, rn); /* the announcement */
  CHECK_MEM(p.p[1].data, r, rn);
  pkts_free(&p);
  /* Answering the js query gives the same bytes. */
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, q, qn, t + 10));
  drain(e, &p);
  REQUIRE(p.n == 1);
  CHECK_EQ(p.p[0].len, rn);
  CHECK_MEM(p.p[0].data, r, rn);
  pkts_free(&p);
  lp2p_mdns_free(e);
  free(q);
  free(r);
}

/* Builds a response for peer OTHER_ID in one of the layouts the others send. */
enum { L_JS, L_GO, L_RUST, L_TXT_ONLY };
static int build_layout(int layout, uint8_t *buf, size_t cap, uint32_t ttl) {
  lp2p_mdns_name svc, inst, host;
  lp2p_mdns_name_from_text(&svc, "_p2p._udp.local");
  lp2p_mdns_name_from_text(&inst, layout == L_RUST ? "Zx81kQ0pLmNoPqRsTuVwXyZaBcDeFgHiJk._p2p._udp.local"
                                                   : "xyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyz._p2p._udp.local");
  lp2p_mdns_name_from_text(&host, "xyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyz.local");
  static const char *s[] = {"dnsaddr=/ip4/192.168.1.30/tcp/4001/p2p/" OTHER_ID,
                            "dnsaddr=/ip6/2001:db8::30/udp/4001/quic-v1/p2p/" OTHER_ID};
  lp2p_mdns_builder b;
  lp2p_mdns_build_init(&b, buf, cap, layout == L_RUST ? 0x1234 : 0, 0x8400, layout == L_GO);
  if (layout != L_TXT_ONLY) {
    lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ANSWER, &svc, LP2P_MDNS_TYPE_PTR, 1, ttl);
    lp2p_mdns_build_name(&b, &inst);
    lp2p_mdns_build_rr_end(&b);
  }
  int sec = layout == L_JS || layout == L_TXT_ONLY ? LP2P_MDNS_SEC_ANSWER : LP2P_MDNS_SEC_ADDITIONAL;
  if (layout == L_GO) { /* SRV first, one TXT with both strings (and an unrelated key), A, AAAA */
    lp2p_mdns_build_rr_begin(&b, sec, &inst, LP2P_MDNS_TYPE_SRV, 0x8001, ttl);
    lp2p_mdns_build_u16(&b, 0);
    lp2p_mdns_build_u16(&b, 0);
    lp2p_mdns_build_u16(&b, 4001);
    lp2p_mdns_build_name(&b, &host);
    lp2p_mdns_build_rr_end(&b);
    lp2p_mdns_build_rr_begin(&b, sec, &inst, LP2P_MDNS_TYPE_TXT, 0x8001, ttl);
    lp2p_mdns_build_string(&b, "other=1", 7);
    lp2p_mdns_build_string(&b, s[0], strlen(s[0]));
    lp2p_mdns_build_string(&b, s[1], strlen(s[1]));
    lp2p_mdns_build_rr_end(&b);
    lp2p_mdns_build_rr_begin(&b, sec, &host, LP2P_MDNS_TYPE_A, 0x8001, ttl);
    lp2p_mdns_build_bytes(&b, "\xc0\xa8\x01\x1e", 4);
    lp2p_mdns_build_rr_end(&b);
  } else {
    for (int i = 0; i < 2; i++) {
      lp2p_mdns_build_rr_begin(&b, sec, &inst, LP2P_MDNS_TYPE_TXT, 1, layout == L_RUST ? ttl * 3 : ttl);
      lp2p_mdns_build_string(&b, s[i], strlen(s[i]));
      lp2p_mdns_build_rr_end(&b);
    }
  }
  return lp2p_mdns_build_finish(&b);
}

static int next_ev(lp2p_mdns *e, lp2p_mdns_event *ev) { return lp2p_mdns_next_event(e, ev); }

TEST(discovers_every_layout) {
  for (int layout = L_JS; layout <= L_TXT_ONLY; layout++) {
    lp2p_mdns *e = mk_engine(NULL, 0, 0);
    REQUIRE(e);
    lp2p_mdns_iface ifs[2];
    std_ifaces(ifs);
    CHECK_OK(lp2p_mdns_set_interfaces(e, ifs, 2, 0));
    uint8_t buf[1500];
    int len = build_layout(layout, buf, sizeof buf, 120);
    REQUIRE(len > 0);
    CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, buf, (size_t)len, 500));
    lp2p_mdns_event ev;
    REQUIRE(next_ev(e, &ev) == 1);
    CHECK_EQ(ev.type, LP2P_MDNS_EV_DISCOVERED);
    char id[LP2P_PEER_ID_MAX_TEXT];
    lp2p_peer_id_to_string(&ev.peer, id, sizeof id);
    CHECK_STR(id, OTHER_ID);
    CHECK_EQ(ev.naddrs, 2);
    CHECK_EQ(ev.ttl, 120);
    CHECK_EQ(ev.ifindex, 2);
    char t[LP2P_MULTIADDR_MAX_TEXT];
    lp2p_multiaddr_to_string(ev.addrs[0], t, sizeof t);
    CHECK_STR(t, "/ip4/192.168.1.30/tcp/4001/p2p/" OTHER_ID);
    CHECK_EQ(next_ev(e, &ev), 0);
    /* The same packet again (dedup): no event; on another interface: no event either. */
    CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, buf, (size_t)len, 600));
    CHECK_OK(lp2p_mdns_packet_in(e, 1, 4, SRC_LAN, 5353, buf, (size_t)len, 700));
    CHECK_EQ(next_ev(e, &ev), 0);
    CHECK_EQ(lp2p_mdns_peer_count(e), 1);
    lp2p_mdns_free(e);
  }
}

TEST(bad_strings_drop_only_themselves) {
  lp2p_mdns *e = mk_engine(NULL, 0, 0);
  lp2p_mdns_iface ifs[2];
  std_ifaces(ifs);
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs, 2, 0));
  lp2p_mdns_name svc, inst;
  lp2p_mdns_name_from_text(&svc, "_p2p._udp.local");
  lp2p_mdns_name_from_text(&inst, "peerpeerpeerpeerpeerpeerpeerpeer._p2p._udp.local");
  uint8_t buf[1500];
  lp2p_mdns_builder b;
  lp2p_mdns_build_init(&b, buf, sizeof buf, 0, 0x8400, 1);
  lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ANSWER, &svc, LP2P_MDNS_TYPE_PTR, 1, 120);
  lp2p_mdns_build_name(&b, &inst);
  lp2p_mdns_build_rr_end(&b);
  lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ADDITIONAL, &inst, LP2P_MDNS_TYPE_TXT, 1, 120);
  static const char *bad[] = {"dnsaddr=/ip4/1.2.3/tcp/1/p2p/" OTHER_ID, "dnsaddr=/ip4/192.168.1.30/tcp/1",
                              "dnsaddr=", "hello", "dnsaddr=/ip4/192.168.1.30/tcp/2/p2p/" OTHER_ID,
                              "dnsaddr=/ip4/192.168.1.30/tcp/3/p2p/" PEER_ID};
  for (int i = 0; i < 6; i++) lp2p_mdns_build_string(&b, bad[i], strlen(bad[i]));
  lp2p_mdns_build_rr_end(&b);
  /* A TXT record with wrong class and one overrunning its strings: dropped by the codec. */
  lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ADDITIONAL, &inst, LP2P_MDNS_TYPE_TXT, 3, 120);
  lp2p_mdns_build_string(&b, bad[4], strlen(bad[4]));
  lp2p_mdns_build_rr_end(&b);
  lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ADDITIONAL, &inst, LP2P_MDNS_TYPE_TXT, 1, 120);
  lp2p_mdns_build_bytes(&b, "\x30xx", 3);
  lp2p_mdns_build_rr_end(&b);
  int len = lp2p_mdns_build_finish(&b);
  REQUIRE(len > 0);
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, buf, (size_t)len, 10));
  lp2p_mdns_event ev;
  REQUIRE(next_ev(e, &ev) == 1);
  CHECK_EQ(ev.naddrs, 1);
  lp2p_mdns_stats st;
  lp2p_mdns_get_stats(e, &st);
  CHECK_EQ(st.records_dropped, 2);
  lp2p_mdns_free(e);
}

TEST(own_announcements_ignored) {
  lp2p_mdns *e = mk_engine(NULL, 0, 0);
  lp2p_mdns_iface ifs[2];
  std_ifaces(ifs);
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs, 2, 0));
  const char *addrs[] = {"/ip4/0.0.0.0/tcp/4001"};
  set_addrs(e, addrs, 1, PEER_ID, 0);
  CHECK_OK(lp2p_mdns_tick(e, lp2p_mdns_next_deadline(e)));
  pkts p;
  drain(e, &p);
  CHECK(count_kind(&p, 1, 0, 0) >= 2);
  for (size_t i = 0; i < p.n; i++)
    CHECK_OK(lp2p_mdns_packet_in(e, p.p[i].ifindex, p.p[i].family, p.p[i].family == 6 ? SRC_LAN6 : SRC_LAN, 5353,
                                 p.p[i].data, p.p[i].len, 200));
  lp2p_mdns_event ev;
  CHECK_EQ(next_ev(e, &ev), 0);
  pkts_free(&p);
  /* Another engine (other peer name) with OUR peer id: ignored as well. */
  lp2p_mdns *twin = mk_engine(NULL, 0, 0);
  CHECK(strcmp(lp2p_mdns_peer_name(twin), lp2p_mdns_peer_name(e)) != 0);
  CHECK_OK(lp2p_mdns_set_interfaces(twin, ifs, 2, 0));
  set_addrs(twin, addrs, 1, PEER_ID, 0);
  CHECK_OK(lp2p_mdns_tick(twin, lp2p_mdns_next_deadline(twin)));
  drain(twin, &p);
  for (size_t i = 0; i < p.n; i++)
    CHECK_OK(lp2p_mdns_packet_in(e, p.p[i].ifindex, p.p[i].family, p.p[i].family == 6 ? SRC_LAN6 : SRC_LAN, 5353, p.p[i].data, p.p[i].len, 300));
  CHECK_EQ(next_ev(e, &ev), 0);
  pkts_free(&p);
  lp2p_mdns_free(twin);
  lp2p_mdns_free(e);
}

TEST(peer_name_generation) {
  for (int i = 0; i < 50; i++) {
    lp2p_mdns *e = NULL;
    CHECK_OK(lp2p_mdns_new(&e, NULL, NULL, 0)); /* libsodium randomness */
    REQUIRE(e);
    const char *n = lp2p_mdns_peer_name(e);
    size_t l = strlen(n);
    CHECK_EQ(l, 32); /* the shortest the spec allows */
    for (size_t k = 0; k < l; k++) CHECK((n[k] >= 'a' && n[k] <= 'z') || (n[k] >= '0' && n[k] <= '9'));
    lp2p_mdns_free(e);
  }
  lp2p_mdns_config c;
  cfg_init(&c);
  lp2p_mdns *e = NULL;
  c.peer_name = "Upper";
  CHECK_EQ(lp2p_mdns_new(&e, &c, NULL, 0), LP2P_ERR_INVAL);
  c.peer_name = NULL;
  c.max_packet = 100;
  CHECK_EQ(lp2p_mdns_new(&e, &c, NULL, 0), LP2P_ERR_INVAL);
}

TEST(query_backoff) {
  lp2p_mdns *e = mk_engine(NULL, 0, 5000);
  lp2p_mdns_iface ifs[2];
  std_ifaces(ifs);
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs, 2, 5000));
  pkts p;
  drain(e, &p);
  CHECK_EQ(p.n, 0);
  lp2p_tstamp t = lp2p_mdns_next_deadline(e);
  CHECK(t >= 5020 && t <= 5120);
  CHECK_OK(lp2p_mdns_tick(e, t - 1));
  drain(e, &p);
  CHECK_EQ(p.n, 0);
  CHECK_OK(lp2p_mdns_tick(e, t));
  drain(e, &p);
  CHECK_EQ(count_kind(&p, 0, 0, 0), 4); /* lo v4+v6, eth0 v4+v6 */
  CHECK_EQ(count_kind(&p, 0, 2, 6), 1);
  pkts_free(&p);
  lp2p_tstamp expect[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000};
  for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
    lp2p_tstamp next = lp2p_mdns_next_deadline(e);
    CHECK_EQ(next - t, expect[i]);
    CHECK_OK(lp2p_mdns_tick(e, next - 1));
    drain(e, &p);
    CHECK_EQ(p.n, 0);
    CHECK_OK(lp2p_mdns_tick(e, next));
    drain(e, &p);
    CHECK_EQ(count_kind(&p, 0, 0, 0), 4);
    pkts_free(&p);
    t = next;
  }
  /* Interface change: a query at once, from inside the call, and the backoff restarts. */
  ifs[1].addrs[0] = a4(192, 168, 2, 10, 24);
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs, 2, t + 5));
  drain(e, &p);
  CHECK_EQ(count_kind(&p, 0, 0, 0), 4);
  pkts_free(&p);
  CHECK_EQ(lp2p_mdns_next_deadline(e), t + 5 + 1000);
  /* The same list again: nothing. */
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs, 2, t + 6));
  drain(e, &p);
  CHECK_EQ(p.n, 0);
  /* Listen address change: query + announcement at once, the announcement repeated 1 s later. */
  const char *addrs[] = {"/ip4/192.168.2.10/tcp/1"};
  set_addrs(e, addrs, 1, PEER_ID, t + 7);
  drain(e, &p);
  CHECK_EQ(count_kind(&p, 0, 0, 0), 4);
  CHECK_EQ(count_kind(&p, 1, 0, 0), 1); /* only eth0 v4 has a reachable address */
  CHECK_EQ(count_kind(&p, 1, 2, 4), 1);
  pkts_free(&p);
  CHECK_EQ(lp2p_mdns_next_deadline(e), t + 7 + 1000);
  CHECK_OK(lp2p_mdns_tick(e, t + 7 + 1000));
  drain(e, &p);
  CHECK_EQ(count_kind(&p, 1, 2, 4), 1);
  CHECK_EQ(count_kind(&p, 0, 0, 0), 4);
  pkts_free(&p);
  CHECK_OK(lp2p_mdns_tick(e, t + 7 + 2000));
  drain(e, &p);
  CHECK_EQ(count_kind(&p, 1, 0, 0), 0); /* two announcements only */
  pkts_free(&p);
  lp2p_mdns_free(e);
}

TEST(answers_rate_limited) {
  size_t qn;
  uint8_t *q = vec_hex("query", &qn);
  REQUIRE(q);
  lp2p_mdns *e = mk_engine(NULL, 0, 0);
  lp2p_mdns_iface ifs[2];
  std_ifaces(ifs);
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs, 2, 0));
  const char *addrs[] = {"/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001"};
  set_addrs(e, addrs, 2, PEER_ID, 0);
  CHECK_OK(lp2p_mdns_tick(e, 200));
  CHECK_OK(lp2p_mdns_tick(e, 1200)); /* the second announcement */
  pkts p;
  drain(e, &p);
  pkts_free(&p);
  lp2p_tstamp t = 10000;
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, q, qn, t));
  drain(e, &p);
  CHECK_EQ(p.n, 1);
  CHECK_EQ(p.p[0].ifindex, 2);
  CHECK_EQ(p.p[0].family, 4);
  CHECK_EQ(p.p[0].unicast, 0);
  pkts_free(&p);
  for (lp2p_tstamp dt = 1; dt < 1000; dt += 111) { /* same query, same interface: silent */
    CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, q, qn, t + dt));
    drain(e, &p);
    CHECK_EQ(p.n, 0);
  }
  /* Other interface, other family: answered independently. */
  CHECK_OK(lp2p_mdns_packet_in(e, 1, 4, SRC_LAN, 5353, q, qn, t + 500));
  drain(e, &p);
  CHECK_EQ(count_kind(&p, 1, 1, 4), 1);
  pkts_free(&p);
  static const uint8_t src6[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 6, src6, 5353, q, qn, t + 500));
  drain(e, &p);
  CHECK_EQ(count_kind(&p, 1, 2, 6), 1);
  pkts_free(&p);
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, q, qn, t + 1000));
  drain(e, &p);
  CHECK_EQ(p.n, 1);
  pkts_free(&p);
  lp2p_mdns_stats st;
  lp2p_mdns_get_stats(e, &st);
  CHECK_EQ(st.answers_rate_limited, 9);
  /* Another querier 200 ms later is answered (a newcomer is not made to wait for its next query);
   * a third one 50 ms after that is not (answers stay >= 125 ms apart on the interface). */
  static const uint8_t SRC_B[4] = {192, 168, 1, 31}, SRC_C[4] = {192, 168, 1, 32};
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_B, 5353, q, qn, t + 1200));
  drain(e, &p);
  CHECK_EQ(p.n, 1);
  pkts_free(&p);
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_C, 5353, q, qn, t + 1250));
  drain(e, &p);
  CHECK_EQ(p.n, 0);
  CHECK(lp2p_mdns_next_deadline(e) <= t + 1325); /* ... C's answer is deferred to the end of the gap */
  CHECK_OK(lp2p_mdns_tick(e, t + 1324));
  drain(e, &p);
  CHECK_EQ(count_kind(&p, 1, 2, 4), 0);
  pkts_free(&p);
  CHECK_OK(lp2p_mdns_tick(e, t + 1325));
  drain(e, &p);
  CHECK_EQ(count_kind(&p, 1, 2, 4), 1);
  pkts_free(&p);
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_B, 5353, q, qn, t + 1900)); /* B again within 1 s */
  drain(e, &p);
  CHECK_EQ(p.n, 0);
  lp2p_mdns_get_stats(e, &st);
  CHECK_EQ(st.answers_rate_limited, 11);
  /* QU bit: multicast + unicast copy; from an ephemeral port (legacy): id echoed. */
  uint8_t qu[64];
  memcpy(qu, q, qn);
  qu[qn - 2] |= 0x80;
  qu[0] = 0xAB, qu[1] = 0xCD;
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, qu, qn, t + 3000));
  drain(e, &p);
  REQUIRE(p.n == 2);
  CHECK_EQ(p.p[1].unicast, 1);
  CHECK_MEM(p.p[1].dst, SRC_LAN, 4);
  CHECK_EQ(p.p[1].dst_port, 5353);
  CHECK_EQ(p.p[1].data[0], 0); /* not legacy: id 0 */
  pkts_free(&p);
  qu[qn - 2] &= 0x7F;
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 40000, qu, qn, t + 5000));
  drain(e, &p);
  REQUIRE(p.n == 2);
  CHECK_EQ(p.p[0].unicast, 0);
  CHECK_EQ(p.p[1].unicast, 1);
  CHECK_EQ(p.p[1].dst_port, 40000);
  CHECK_EQ(p.p[1].data[0], 0xAB);
  CHECK_EQ(p.p[1].data[1], 0xCD);
  pkts_free(&p);
  /* Known answer with our PTR at full TTL: suppressed. */
  lp2p_mdns_name svc, inst;
  lp2p_mdns_name_from_text(&svc, "_p2p._udp.local");
  lp2p_mdns_name_from_text(&inst, lp2p_mdns_peer_name(e));
  lp2p_mdns_name_prepend(&inst, inst.wire + 1, inst.wire[0], &svc);
  uint8_t ka[512];
  lp2p_mdns_builder b;
  lp2p_mdns_build_init(&b, ka, sizeof ka, 0, 0, 1);
  lp2p_mdns_build_question(&b, &svc, LP2P_MDNS_TYPE_PTR, 1);
  lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ANSWER, &svc, LP2P_MDNS_TYPE_PTR, 1, 100);
  lp2p_mdns_build_name(&b, &inst);
  lp2p_mdns_build_rr_end(&b);
  int kl = lp2p_mdns_build_finish(&b);
  REQUIRE(kl > 0);
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, ka, (size_t)kl, t + 8000));
  drain(e, &p);
  CHECK_EQ(p.n, 0);
  /* The DNS-SD meta query gets PTR _services._dns-sd._udp.local -> _p2p._udp.local. */
  lp2p_mdns_name meta;
  lp2p_mdns_name_from_text(&meta, "_services._dns-sd._udp.local");
  lp2p_mdns_build_init(&b, ka, sizeof ka, 0, 0, 1);
  lp2p_mdns_build_question(&b, &meta, LP2P_MDNS_TYPE_PTR, 1);
  kl = lp2p_mdns_build_finish(&b);
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, ka, (size_t)kl, t + 9000));
  drain(e, &p);
  REQUIRE(p.n == 1);
  CHECK_OK(lp2p_mdns_parse(p.data[0], p.p[0].len, &msg));
  CHECK(msg.nrr == 1 && lp2p_mdns_name_equal(&msg.rr[0].name, &meta) && lp2p_mdns_name_equal(&msg.rr[0].target, &svc));
  pkts_free(&p);
  lp2p_mdns_free(e);
  free(q);
}

TEST(ttl_expiry_and_goodbye) {
  lp2p_mdns *e = mk_engine(NULL, 0, 0);
  lp2p_mdns_iface ifs[2];
  std_ifaces(ifs);
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs, 2, 0));
  uint8_t buf[1500];
  int len = build_layout(L_JS, buf, sizeof buf, 120);
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, buf, (size_t)len, 1000));
  lp2p_mdns_event ev;
  REQUIRE(next_ev(e, &ev) == 1);
  /* Refreshed at 50 s: expires at 170 s, not 120 s. */
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, buf, (size_t)len, 51000));
  CHECK_EQ(next_ev(e, &ev), 0);
  CHECK_OK(lp2p_mdns_tick(e, 121000));
  CHECK_EQ(next_ev(e, &ev), 0);
  CHECK_EQ(lp2p_mdns_peer_count(e), 1);
  CHECK(lp2p_mdns_next_deadline(e) <= 171000);
  CHECK_OK(lp2p_mdns_tick(e, 170999));
  CHECK_EQ(next_ev(e, &ev), 0);
  CHECK_OK(lp2p_mdns_tick(e, 171000));
  REQUIRE(next_ev(e, &ev) == 1);
  CHECK_EQ(ev.type, LP2P_MDNS_EV_EXPIRED);
  char id[LP2P_PEER_ID_MAX_TEXT];
  lp2p_peer_id_to_string(&ev.peer, id, sizeof id);
  CHECK_STR(id, OTHER_ID);
  CHECK_EQ(lp2p_mdns_peer_count(e), 0);
  /* Goodbye: engine B discovers A, A shuts down, its TTL-0 packets expire it at B at once. */
  lp2p_mdns *a = mk_engine(NULL, 0, 0);
  CHECK_OK(lp2p_mdns_set_interfaces(a, ifs, 2, 0));
  const char *addrs[] = {"/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001"};
  set_addrs(a, addrs, 2, OTHER_ID, 0);
  CHECK_OK(lp2p_mdns_tick(a, 200));
  pkts p;
  drain(a, &p);
  for (size_t i = 0; i < p.n; i++)
    if (p.p[i].ifindex == 2) CHECK_OK(lp2p_mdns_packet_in(e, 2, p.p[i].family, p.p[i].family == 6 ? SRC_LAN6 : SRC_LAN, 5353, p.data[i], p.p[i].len, 200000));
  pkts_free(&p);
  REQUIRE(next_ev(e, &ev) == 1);
  CHECK_EQ(ev.type, LP2P_MDNS_EV_DISCOVERED);
  CHECK_EQ(ev.naddrs, 1); /* v4 from the v4 packet, then the v6 one adds its address */
  REQUIRE(next_ev(e, &ev) == 1);
  CHECK_EQ(ev.type, LP2P_MDNS_EV_DISCOVERED);
  CHECK_EQ(ev.naddrs, 2);
  CHECK_OK(lp2p_mdns_shutdown(a, 300));
  drain(a, &p);
  CHECK_EQ(count_kind(&p, 1, 0, 0), 4); /* lo and eth0, v4 and v6 each */
  for (size_t i = 0; i < p.n; i++) {
    CHECK_OK(lp2p_mdns_parse(p.data[i], p.p[i].len, &msg));
    for (size_t k = 0; k < msg.nrr; k++) CHECK_EQ(msg.rr[k].ttl, 0);
  }
  for (size_t i = 0; i < p.n; i++)
    if (p.p[i].ifindex == 2) CHECK_OK(lp2p_mdns_packet_in(e, 2, p.p[i].family, p.p[i].family == 6 ? SRC_LAN6 : SRC_LAN, 5353, p.data[i], p.p[i].len, 200100));
  pkts_free(&p);
  REQUIRE(next_ev(e, &ev) == 1);
  CHECK_EQ(ev.type, LP2P_MDNS_EV_EXPIRED);
  CHECK_EQ(next_ev(e, &ev), 0);
  CHECK_EQ(lp2p_mdns_peer_count(e), 0);
  /* A hostile TTL (about 68 years) is capped at 4500 s. */
  len = build_layout(L_GO, buf, sizeof buf, 0x7FFFFFFF);
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, buf, (size_t)len, 300000));
  REQUIRE(next_ev(e, &ev) == 1);
  CHECK_EQ(ev.ttl, 4500);
  CHECK_OK(lp2p_mdns_tick(e, 300000 + 4500000));
  REQUIRE(next_ev(e, &ev) == 1);
  CHECK_EQ(ev.type, LP2P_MDNS_EV_EXPIRED);

  CHECK_EQ(lp2p_mdns_tick(a, 400), LP2P_ERR_STATE);
  CHECK_EQ(lp2p_mdns_next_deadline(a), LP2P_TSTAMP_NEVER);
  lp2p_mdns_free(a);
  lp2p_mdns_free(e);
}

/* Cache maintenance: a discovered record at 80 % and 90 % of its TTL makes the engine query
 * (whatever its backoff), and with cfg.report_refresh an answer that renews it is reported. */
TEST(refresh_queries_and_events) {
  lp2p_mdns_config c;
  cfg_init(&c);
  c.report_refresh = 1;
  c.query_interval_min = 60000; /* backoff far beyond the TTL */
  lp2p_mdns *e = NULL;
  CHECK_OK(lp2p_mdns_new(&e, &c, NULL, 0));
  lp2p_mdns_iface ifs[2];
  std_ifaces(ifs);
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs + 1, 1, 0));
  CHECK_OK(lp2p_mdns_tick(e, 200)); /* the jittered first query */
  CHECK_OK(lp2p_mdns_tick(e, 1200)); /* (the second announcement slot: nothing to announce) */
  pkts p;
  drain(e, &p);
  pkts_free(&p);
  uint8_t buf[1500];
  int len = build_layout(L_JS, buf, sizeof buf, 10); /* 10 s records */
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, buf, (size_t)len, 3000));
  lp2p_mdns_event ev;
  REQUIRE(next_ev(e, &ev) == 1);
  CHECK_EQ(ev.type, LP2P_MDNS_EV_DISCOVERED);
  CHECK_EQ(lp2p_mdns_next_deadline(e), 11000); /* 80 % of 10 s after 3 s */
  CHECK_OK(lp2p_mdns_tick(e, 10999));
  drain(e, &p);
  CHECK_EQ(count_kind(&p, 0, 2, 4), 0);
  pkts_free(&p);
  CHECK_OK(lp2p_mdns_tick(e, 11000));
  drain(e, &p);
  CHECK_EQ(count_kind(&p, 0, 2, 4), 1); /* one query */
  pkts_free(&p);
  CHECK_EQ(lp2p_mdns_next_deadline(e), 12000); /* then at 90 % */
  CHECK_OK(lp2p_mdns_tick(e, 12000));
  drain(e, &p);
  CHECK_EQ(count_kind(&p, 0, 2, 4), 1);
  pkts_free(&p);
  CHECK_EQ(lp2p_mdns_next_deadline(e), 13000); /* expiry: no more refresh queries */
  /* The answer renews it: REFRESHED with every address, then expiry moves to 22.5 s. */
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, buf, (size_t)len, 12500));
  REQUIRE(next_ev(e, &ev) == 1);
  CHECK_EQ(ev.type, LP2P_MDNS_EV_REFRESHED);
  CHECK_EQ(ev.naddrs, 2);
  CHECK_EQ(ev.ttl, 10);
  CHECK_OK(lp2p_mdns_tick(e, 13000));
  CHECK_EQ(next_ev(e, &ev), 0);
  CHECK_EQ(lp2p_mdns_peer_count(e), 1);
  CHECK_EQ(lp2p_mdns_next_deadline(e), 20500);
  lp2p_mdns_free(e);
}

TEST(addresses_per_interface) {
  g_single_txt = 1; /* strings in listen order (the default puts the first one last, for go) */
  lp2p_mdns *e = mk_engine(NULL, 0, 0);
  g_single_txt = 0;
  lp2p_mdns_iface ifs[2];
  std_ifaces(ifs);
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs, 2, 0));
  char sni[300];
  memset(sni, 0, sizeof sni);
  strcpy(sni, "/ip4/192.168.1.10/tcp/443/tls/sni/");
  memset(sni + strlen(sni), 'a', 200);
  strcat(sni, "/ws");
  const char *addrs[] = {"/ip4/127.0.0.1/tcp/1",          "/ip4/0.0.0.0/tcp/2",
                         "/ip4/192.168.1.10/tcp/3",       "/ip4/10.0.0.1/tcp/4",
                         "/ip6/::/tcp/5",                 "/ip6/::1/tcp/6",
                         "/ip4/192.168.1.10/tcp/7/p2p/" OTHER_ID,
                         "/ip4/192.168.1.10/tcp/8/p2p/" OTHER_ID "/p2p-circuit",
                         "/dns4/example.com/tcp/9",       sni};
  set_addrs(e, addrs, 10, PEER_ID, 0);
  CHECK_OK(lp2p_mdns_tick(e, 200));
  pkts p;
  drain(e, &p);
  char s[2048];
  int seen = 0;
  for (size_t i = 0; i < p.n; i++) {
    if (!(p.p[i].data[2] & 0x80)) continue;
    strings_of(p.data[i], p.p[i].len, s, sizeof s);
    if (p.p[i].ifindex == 2 && p.p[i].family == 4) {
      CHECK_STR(s, "dnsaddr=/ip4/192.168.1.10/tcp/2/p2p/" PEER_ID "|dnsaddr=/ip4/192.168.1.10/tcp/3/p2p/" PEER_ID);
      /* A record: the interface address; SRV port: the first tcp address's. */
      int a = 0;
      for (size_t k = 0; k < msg.nrr; k++) {
        if (msg.rr[k].type == LP2P_MDNS_TYPE_A) {
          a++;
          CHECK_EQ(msg.rr[k].addr[3], 10);
        }
        if (msg.rr[k].type == LP2P_MDNS_TYPE_SRV) CHECK_EQ(msg.rr[k].srv_port, 2);
      }
      CHECK_EQ(a, 1);
      seen |= 1;
    } else if (p.p[i].ifindex == 2 && p.p[i].family == 6) {
      CHECK_STR(s, "dnsaddr=/ip6/2001:db8::10/tcp/5/p2p/" PEER_ID);
      seen |= 2;
    } else if (p.p[i].ifindex == 1 && p.p[i].family == 4) {
      CHECK_STR(s, "dnsaddr=/ip4/127.0.0.1/tcp/1/p2p/" PEER_ID "|dnsaddr=/ip4/127.0.0.1/tcp/2/p2p/" PEER_ID);
      seen |= 4;
    } else if (p.p[i].ifindex == 1 && p.p[i].family == 6) {
      CHECK_STR(s, "dnsaddr=/ip6/::1/tcp/5/p2p/" PEER_ID "|dnsaddr=/ip6/::1/tcp/6/p2p/" PEER_ID);
      seen |= 8;
    }
    CHECK(strstr(s, "0.0.0.0") == NULL);
  }
  CHECK_EQ(seen, 15);
  pkts_free(&p);
  lp2p_mdns_free(e);
}

TEST(split_large_responses) {
  lp2p_mdns_config c;
  cfg_init(&c);
  c.max_packet = 600;
  lp2p_mdns *e = NULL;
  CHECK_OK(lp2p_mdns_new(&e, &c, NULL, 0));
  lp2p_mdns_iface ifs[2];
  std_ifaces(ifs);
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs + 1, 1, 0));
  char texts[20][64];
  const char *addrs[20];
  for (int i = 0; i < 20; i++) {
    snprintf(texts[i], sizeof texts[i], "/ip4/192.168.1.10/tcp/%d", 1000 + i);
    addrs[i] = texts[i];
  }
  set_addrs(e, addrs, 20, PEER_ID, 0);
  CHECK_OK(lp2p_mdns_tick(e, 200));
  pkts p;
  drain(e, &p);
  /* Receiver: sees every address from the split packets, each complete (PTR+TXT+SRV+A). */
  lp2p_mdns_config rc;
  cfg_init(&rc);
  rc.max_addrs_per_peer = 32;
  lp2p_mdns *r = NULL;
  CHECK_OK(lp2p_mdns_new(&r, &rc, NULL, 0));
  CHECK_OK(lp2p_mdns_set_interfaces(r, ifs + 1, 1, 0));
  size_t responses = 0;
  for (size_t i = 0; i < p.n; i++) {
    if (!(p.p[i].data[2] & 0x80)) continue;
    responses++;
    CHECK(p.p[i].len <= 600);
    CHECK_OK(lp2p_mdns_parse(p.data[i], p.p[i].len, &msg));
    int types = 0;
    for (size_t k = 0; k < msg.nrr; k++)
      types |= msg.rr[k].type == LP2P_MDNS_TYPE_PTR ? 1 : msg.rr[k].type == LP2P_MDNS_TYPE_TXT ? 2
             : msg.rr[k].type == LP2P_MDNS_TYPE_SRV ? 4 : msg.rr[k].type == LP2P_MDNS_TYPE_A ? 8 : 0;
    CHECK_EQ(types, 15);
    CHECK_OK(lp2p_mdns_packet_in(r, 2, 4, SRC_LAN, 5353, p.data[i], p.p[i].len, 300));
  }
  CHECK(responses >= 3);
  pkts_free(&p);
  lp2p_mdns_event ev, last;
  memset(&last, 0, sizeof last);
  int n = 0;
  while (next_ev(r, &ev) == 1) last = ev, n++;
  CHECK_EQ(n, (int)responses);
  CHECK_EQ(last.naddrs, 20);
  lp2p_mdns_free(r);
  lp2p_mdns_free(e);
}

static int has_sub(const uint8_t *p, size_t n, const char *sub) {
  size_t l = strlen(sub);
  for (size_t i = 0; i + l <= n; i++)
    if (!memcmp(p + i, sub, l)) return 1;
  return 0;
}

TEST(txt_record_layouts) {
  for (int single = 0; single <= 1; single++) {
  lp2p_mdns_config c;
  cfg_init(&c);
  c.txt_single_record = single;
  lp2p_mdns *e = NULL;
  CHECK_OK(lp2p_mdns_new(&e, &c, NULL, 0));
  lp2p_mdns_iface ifs[2];
  std_ifaces(ifs);
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs + 1, 1, 0));
  const char *addrs[] = {"/ip4/192.168.1.10/tcp/1", "/ip4/192.168.1.10/tcp/2"};
  set_addrs(e, addrs, 2, PEER_ID, 0);
  CHECK_OK(lp2p_mdns_tick(e, 200));
  pkts p;
  drain(e, &p);
  int found = 0;
  for (size_t i = 0; i < p.n; i++) {
    if (!(p.p[i].data[2] & 0x80)) continue;
    CHECK_OK(lp2p_mdns_parse(p.data[i], p.p[i].len, &msg));
    int txt = 0;
    const lp2p_mdns_record *last = NULL;
    for (size_t k = 0; k < msg.nrr; k++)
      if (msg.rr[k].type == LP2P_MDNS_TYPE_TXT) txt++, last = &msg.rr[k];
    CHECK_EQ(txt, single ? 1 : 2); /* default: one TXT per address (the superset layout) */
    CHECK(last != NULL);
    /* go keeps the last TXT record: by default it carries the first listen address */
    if (!single) CHECK(last->rdlen > 25 && has_sub(last->rdata, last->rdlen, "/tcp/1/p2p/"));
    found++;
  }
  CHECK_EQ(found, 1);
  pkts_free(&p);
  lp2p_mdns_free(e);
  }
}

TEST(malformed_and_floods) {
  size_t n;
  uint8_t *r = vec_hex("response_js_style", &n);
  REQUIRE(r);
  lp2p_mdns *e = mk_engine(NULL, 0, 0);
  lp2p_mdns_iface ifs[2];
  std_ifaces(ifs);
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs, 2, 0));
  for (size_t cut = 0; cut < n; cut++) CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, r, cut, 10 + cut * 20));
  lp2p_mdns_event ev;
  CHECK_EQ(next_ev(e, &ev), 0);
  lp2p_mdns_stats st;
  lp2p_mdns_get_stats(e, &st);
  CHECK_EQ(st.packets_malformed, n);
  /* Unknown interface: ignored. */
  CHECK_OK(lp2p_mdns_packet_in(e, 77, 4, SRC_LAN, 5353, r, n, 100000));
  CHECK_EQ(next_ev(e, &ev), 0);
  /* Flood: 150 packets in one second on one interface: 100 processed. */
  for (int i = 0; i < 150; i++) CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, r, 5, 200000 + i));
  lp2p_mdns_get_stats(e, &st);
  CHECK_EQ(st.packets_flood_dropped, 50);
  /* ... but another source in the same second is still heard */
  static const uint8_t SRC_OTHER[4] = {192, 168, 1, 21};
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_OTHER, 5353, r, n, 200500));
  CHECK_EQ(next_ev(e, &ev), 1);
  lp2p_mdns_get_stats(e, &st);
  CHECK_EQ(st.packets_flood_dropped, 50);
  /* 20 spoofed sources x 100: the interface cap (10 x 100 per second) holds */
  uint64_t before = st.packets_flood_dropped;
  for (int k = 0; k < 20; k++) {
    uint8_t sp[4] = {10, 0, 0, (uint8_t)k};
    for (int i = 0; i < 100; i++) CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, sp, 5353, r, 5, 300000 + (uint64_t)k));
  }
  lp2p_mdns_get_stats(e, &st);
  CHECK_EQ(st.packets_flood_dropped - before, 1000);
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, r, n, 400000));
  while (next_ev(e, &ev) == 1) {
  }
  lp2p_mdns_free(e);
  free(r);
}

/* Runs a scenario under an allocator that fails the k-th allocation: every error is clean and
 * nothing leaks. */
static int oom_scenario(const lp2p_mem *mem) {
  lp2p_mdns_config c;
  cfg_init(&c);
  lp2p_mdns *e = NULL;
  int rv = lp2p_mdns_new(&e, &c, mem, 0);
  if (rv) return rv;
  lp2p_mdns_iface ifs[2];
  std_ifaces(ifs);
  lp2p_mdns_set_interfaces(e, ifs, 2, 0);
  lp2p_multiaddr *ma = NULL;
  lp2p_multiaddr_parse(&ma, "/ip4/0.0.0.0/tcp/4001", NULL, 0);
  lp2p_peer_id pid;
  lp2p_peer_id_parse(PEER_ID, &pid);
  if (ma) lp2p_mdns_set_listen_addrs(e, (const lp2p_multiaddr *const *)&ma, 1, &pid, 0);
  lp2p_multiaddr_free(ma);
  lp2p_mdns_tick(e, 200);
  uint8_t buf[1500];
  int len = build_layout(L_GO, buf, sizeof buf, 120);
  lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, buf, (size_t)len, 300);
  lp2p_mdns_packet pk;
  lp2p_mdns_event ev;
  while (lp2p_mdns_next_packet(e, &pk)) {
  }
  lp2p_mdns_next_event(e, &ev);
  lp2p_mdns_tick(e, 500000);
  lp2p_mdns_shutdown(e, 500001);
  lp2p_mdns_free(e);
  return 0;
}

TEST(allocation_failures) {
  for (long k = 1; k < 500; k++) {
    failmem fm;
    failmem_init(&fm, k);
    oom_scenario(&fm.mem);
    if (fm.live != 0) TEST_FAIL_("leak of %ld blocks failing allocation %ld", fm.live, k);
    if (!fm.triggered) break;
  }
}


/* Our queries list what we know (RFC 6762 §7.1): our own PTR where we would answer (so we do not
 * answer our own looped-back query) and each peer whose records have >= half their TTL left; a
 * peer past half-life is left out and answers. Two engines: A's periodic query keeps B silent
 * while B is fresh in A's cache, and B answers once it is not. */
static size_t ka_names(const uint8_t *data, size_t len, char names[][128], uint32_t *ttls, size_t max) {
  if (lp2p_mdns_parse(data, len, &msg) || msg.nq != 1) return (size_t)-1;
  size_t n = 0;
  for (size_t i = 0; i < msg.nrr && n < max; i++) {
    if (msg.rr[i].section != LP2P_MDNS_SEC_ANSWER || msg.rr[i].type != LP2P_MDNS_TYPE_PTR) continue;
    lp2p_mdns_name_to_text(&msg.rr[i].target, names[n], 128);
    ttls[n++] = msg.rr[i].ttl;
  }
  return n;
}

TEST(known_answers) {
  lp2p_mdns_iface ifc;
  memset(&ifc, 0, sizeof ifc);
  ifc.index = 2;
  ifc.addrs[ifc.naddrs++] = a4(192, 168, 1, 10, 24);
  lp2p_mdns *a = mk_engine("aaaa", 0, 0), *b = mk_engine("bbbb", 0, 0);
  REQUIRE(a && b);
  CHECK_OK(lp2p_mdns_set_interfaces(a, &ifc, 1, 0));
  CHECK_OK(lp2p_mdns_set_interfaces(b, &ifc, 1, 0));
  const char *aa[] = {"/ip4/192.168.1.10/tcp/4001"}, *ba[] = {"/ip4/192.168.1.11/tcp/4001"};
  set_addrs(a, aa, 1, PEER_ID, 0);
  set_addrs(b, ba, 1, OTHER_ID, 0);
  /* b's first slot: its query and its announcement; a learns b (TTL 120 s) */
  pkts p;
  CHECK_OK(lp2p_mdns_tick(b, lp2p_mdns_next_deadline(b)));
  drain(b, &p);
  REQUIRE(p.n == 2);
  char names[4][128];
  uint32_t ttls[4];
  /* b knows nobody yet: its own PTR only */
  REQUIRE(ka_names(p.p[0].data, p.p[0].len, names, ttls, 4) == 1);
  CHECK_STR(names[0], "bbbb._p2p._udp.local");
  CHECK_EQ(ttls[0], 120);
  /* b's own query looped back to b: no answer; the announcement teaches a */
  CHECK_OK(lp2p_mdns_packet_in(b, 2, 4, SRC_LAN, 5353, p.p[0].data, p.p[0].len, 150));
  pkts q;
  drain(b, &q);
  CHECK_EQ(q.n, 0);
  CHECK_OK(lp2p_mdns_packet_in(a, 2, 4, SRC_LAN, 5353, p.p[1].data, p.p[1].len, 150));
  pkts_free(&p);
  CHECK_EQ(lp2p_mdns_peer_count(a), 1);
  /* a's queries: its own PTR and b's, with the TTL b's records have left */
  lp2p_tstamp t = lp2p_mdns_next_deadline(a);
  CHECK_OK(lp2p_mdns_tick(a, t));
  drain(a, &p);
  size_t nq = 0;
  for (size_t i = 0; i < p.n; i++) {
    if (p.p[i].data[2] & 0x80) continue;
    nq++;
    REQUIRE(ka_names(p.p[i].data, p.p[i].len, names, ttls, 4) == 2);
    CHECK_STR(names[0], "aaaa._p2p._udp.local");
    CHECK_STR(names[1], "bbbb._p2p._udp.local");
    CHECK_EQ(ttls[1], (uint32_t)((120000 - (t - 150)) / 1000));
    /* b hears it: it is listed with more than half its TTL, so b stays silent */
    CHECK_OK(lp2p_mdns_packet_in(b, 2, 4, SRC_LAN, 5353, p.p[i].data, p.p[i].len, t + 1));
    drain(b, &q);
    CHECK_EQ(q.n, 0);
  }
  CHECK_EQ(nq, 1);
  pkts_free(&p);
  lp2p_mdns_stats st;
  lp2p_mdns_get_stats(b, &st);
  CHECK_EQ(st.answers_rate_limited, 0); /* silent because of the known answer, not a rate limit */
  /* past half-life (60 s after a learned b): a's query leaves b out, and b answers */
  CHECK_OK(lp2p_mdns_query_now(a, 150 + 60001));
  drain(a, &p);
  REQUIRE(p.n >= 1);
  REQUIRE(ka_names(p.p[0].data, p.p[0].len, names, ttls, 4) == 1);
  CHECK_STR(names[0], "aaaa._p2p._udp.local");
  CHECK_OK(lp2p_mdns_packet_in(b, 2, 4, SRC_LAN, 5353, p.p[0].data, p.p[0].len, 150 + 60002));
  drain(b, &q);
  CHECK_EQ(count_kind(&q, 1, 2, 4), 1);
  pkts_free(&p);
  pkts_free(&q);
  /* an engine with nothing to advertise asks exactly like js-libp2p (no own PTR) */
  lp2p_mdns *c = mk_engine("cccc", 0, 0);
  CHECK_OK(lp2p_mdns_set_interfaces(c, &ifc, 1, 0));
  CHECK_OK(lp2p_mdns_tick(c, lp2p_mdns_next_deadline(c)));
  drain(c, &p);
  REQUIRE(p.n == 1);
  CHECK_EQ(ka_names(p.p[0].data, p.p[0].len, names, ttls, 4), 0);
  CHECK_EQ(p.p[0].len, 33);
  pkts_free(&p);
  lp2p_mdns_free(a);
  lp2p_mdns_free(b);
  lp2p_mdns_free(c);
}

/* An answer held back by the gap on eth0/IPv6 is dropped when eth0 loses IPv6 before it is due: it
 * never goes out on a family the interface no longer has (found by fuzz_mdns_engine). */
TEST(deferred_answer_follows_interface) {
  size_t qn;
  uint8_t *q = vec_hex("query", &qn);
  REQUIRE(q);
  lp2p_mdns *e = mk_engine(NULL, 0, 0);
  lp2p_mdns_iface ifs[2];
  std_ifaces(ifs);
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs, 2, 0));
  const char *addrs[] = {"/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001"};
  set_addrs(e, addrs, 2, PEER_ID, 0);
  CHECK_OK(lp2p_mdns_tick(e, 200));
  CHECK_OK(lp2p_mdns_tick(e, 1200));
  pkts p;
  drain(e, &p);
  pkts_free(&p);
  static const uint8_t src_b[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x21};
  lp2p_tstamp t = 10000;
  while (lp2p_mdns_next_deadline(e) <= t) CHECK_OK(lp2p_mdns_tick(e, lp2p_mdns_next_deadline(e))); /* queries */
  drain(e, &p);
  pkts_free(&p);
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 6, SRC_LAN6, 5353, q, qn, t));
  drain(e, &p);
  CHECK_EQ(count_kind(&p, 1, 2, 6), 1);
  pkts_free(&p);
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 6, src_b, 5353, q, qn, t + 50)); /* inside the gap: deferred */
  drain(e, &p);
  CHECK_EQ(p.n, 0);
  CHECK_EQ(lp2p_mdns_next_deadline(e), t + 125);
  ifs[1].naddrs = 1; /* eth0 keeps 192.168.1.10/24 only */
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs, 2, t + 60));
  drain(e, &p);
  CHECK_EQ(count_kind(&p, 1, 2, 6), 0);
  CHECK_EQ(count_kind(&p, 0, 2, 6), 0);
  pkts_free(&p);
  CHECK(lp2p_mdns_next_deadline(e) > t + 125);
  CHECK_OK(lp2p_mdns_tick(e, t + 125));
  drain(e, &p);
  CHECK_EQ(count_kind(&p, 1, 2, 6), 0);
  pkts_free(&p);
  lp2p_mdns_free(e);
  free(q);
}

/* A response of peer `label` (id text `id`): PTR + one TXT `dnsaddr=/ip4/<ip>/tcp/4001/p2p/<id>`. */
static int peer_response(uint8_t *buf, size_t cap, const char *label, const char *id, const char *ip, uint32_t ttl) {
  lp2p_mdns_name svc, inst;
  lp2p_mdns_name_from_text(&svc, "_p2p._udp.local");
  lp2p_mdns_name_prepend(&inst, (const uint8_t *)label, strlen(label), &svc);
  char str[256];
  int sl = snprintf(str, sizeof str, "dnsaddr=%s/tcp/4001/p2p/%s", ip, id);
  lp2p_mdns_builder b;
  lp2p_mdns_build_init(&b, buf, cap, 0, 0x8400, 1);
  lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ANSWER, &svc, LP2P_MDNS_TYPE_PTR, 1, ttl);
  lp2p_mdns_build_name(&b, &inst);
  lp2p_mdns_build_rr_end(&b);
  lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ADDITIONAL, &inst, LP2P_MDNS_TYPE_TXT, 1, ttl);
  lp2p_mdns_build_string(&b, str, (size_t)sl);
  lp2p_mdns_build_rr_end(&b);
  return lp2p_mdns_build_finish(&b);
}

/* Our query's bytes: header with `nans` answers, the question `_p2p._udp.local PTR IN`, then the
 * known answers given as hex (see ka_hex). */
static void expect_query(const lp2p_mdns_packet *p, int nans, const char *answers_hex) {
  char hex[1024];
  snprintf(hex, sizeof hex, "00000000" "0001" "%04x" "0000" "0000" /* id, flags, counts */
           "045f703270045f756470056c6f63616c00" "000c" "0001" /* _p2p._udp.local PTR IN */
           "%s", nans, answers_hex);
  size_t n;
  uint8_t *want = hex_to_bytes(hex, &n);
  REQUIRE(want);
  CHECK_EQ(p->len, n);
  if (p->len == n) CHECK_MEM(p->data, want, n);
  free(want);
}
/* One known answer: `_p2p._udp.local` (pointer to offset 12) PTR IN ttl -> <4-letter label> + pointer. */
static void ka_hex(char *out, size_t cap, const char *label4, uint32_t ttl) {
  size_t o = strlen(out);
  snprintf(out + o, cap - o, "c00c000c0001%08x0007" "04%02x%02x%02x%02x" "c00c", ttl, (uint8_t)label4[0],
           (uint8_t)label4[1], (uint8_t)label4[2], (uint8_t)label4[3]);
}

/* Known answers are per link: a peer heard on eth0/IPv4 is listed in our eth0/IPv4 query only,
 * not on eth0/IPv6 nor on lo, whose responders must still answer (a known answer there would
 * silence the peer where we have never heard it, and we would never learn its addresses of that
 * link). Heard on eth0/IPv6 too, it is listed there with the TTL its records have on that link. */
TEST(known_answers_per_link) {
  lp2p_mdns *e = mk_engine("aaaa", 0, 0);
  REQUIRE(e);
  lp2p_mdns_iface ifs[2];
  std_ifaces(ifs);
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs, 2, 0));
  const char *addrs[] = {"/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001"};
  set_addrs(e, addrs, 2, PEER_ID, 0);
  CHECK_OK(lp2p_mdns_tick(e, lp2p_mdns_next_deadline(e)));
  pkts p;
  drain(e, &p);
  pkts_free(&p);
  uint8_t buf[512];
  int len = peer_response(buf, sizeof buf, "bbbb", OTHER_ID, "/ip4/192.168.1.30", 120);
  REQUIRE(len > 0);
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, buf, (size_t)len, 1000));
  CHECK_EQ(lp2p_mdns_peer_count(e), 1);
  CHECK_OK(lp2p_mdns_query_now(e, 11000));
  drain(e, &p);
  char own[128] = "", both[256] = "";
  ka_hex(own, sizeof own, "aaaa", 120);
  ka_hex(both, sizeof both, "aaaa", 120);
  ka_hex(both, sizeof both, "bbbb", 110); /* 120 s heard at 1 s, asked at 11 s */
  size_t nq = 0;
  for (size_t i = 0; i < p.n; i++) {
    if (p.p[i].data[2] & 0x80) continue;
    nq++;
    if (p.p[i].ifindex == 2 && p.p[i].family == 4)
      expect_query(&p.p[i], 2, both);
    else
      expect_query(&p.p[i], 1, own); /* lo/4, lo/6, eth0/6 */
  }
  CHECK_EQ(nq, 4);
  pkts_free(&p);
  /* the same peer heard on eth0/IPv6 at 2 s: listed there too, with that link's TTL */
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 6, SRC_LAN6, 5353, buf, (size_t)len, 2000));
  CHECK_OK(lp2p_mdns_query_now(e, 12000));
  drain(e, &p);
  char v4[256] = "", v6[256] = "";
  ka_hex(v4, sizeof v4, "aaaa", 120);
  ka_hex(v4, sizeof v4, "bbbb", 109);
  ka_hex(v6, sizeof v6, "aaaa", 120);
  ka_hex(v6, sizeof v6, "bbbb", 110);
  nq = 0;
  for (size_t i = 0; i < p.n; i++) {
    if (p.p[i].data[2] & 0x80) continue;
    nq++;
    if (p.p[i].ifindex == 2)
      expect_query(&p.p[i], 2, p.p[i].family == 4 ? v4 : v6);
    else
      expect_query(&p.p[i], 1, own);
  }
  CHECK_EQ(nq, 4);
  pkts_free(&p);
  lp2p_mdns_free(e);
}

/* Three known answers in a query with two peers known on the link is the design: our own PTR
 * (the query loops back to us) and one PTR per peer, in the order they were learned, each with the
 * TTL its records have left. The layout, byte for byte. */
TEST(known_answers_two_peers) {
  lp2p_mdns_iface ifc;
  memset(&ifc, 0, sizeof ifc);
  ifc.index = 2;
  ifc.addrs[ifc.naddrs++] = a4(192, 168, 1, 10, 24);
  lp2p_mdns *e = mk_engine("aaaa", 0, 0);
  REQUIRE(e);
  CHECK_OK(lp2p_mdns_set_interfaces(e, &ifc, 1, 0));
  const char *aa[] = {"/ip4/192.168.1.10/tcp/4001"};
  set_addrs(e, aa, 1, PEER_ID, 0);
  CHECK_OK(lp2p_mdns_tick(e, lp2p_mdns_next_deadline(e)));
  pkts p;
  drain(e, &p);
  pkts_free(&p);
  uint8_t mh[34] = {0x12, 0x20};
  for (int i = 0; i < 32; i++) mh[2 + i] = (uint8_t)(7 * i + 1);
  lp2p_peer_id third;
  CHECK_OK(lp2p_peer_id_from_bytes(mh, sizeof mh, &third));
  char third_text[LP2P_PEER_ID_MAX_TEXT];
  REQUIRE(lp2p_peer_id_to_string(&third, third_text, sizeof third_text) > 0);
  uint8_t buf[512];
  int len = peer_response(buf, sizeof buf, "bbbb", OTHER_ID, "/ip4/192.168.1.30", 120);
  REQUIRE(len > 0);
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, buf, (size_t)len, 1000));
  len = peer_response(buf, sizeof buf, "cccc", third_text, "/ip4/192.168.1.31", 120);
  REQUIRE(len > 0);
  CHECK_OK(lp2p_mdns_packet_in(e, 2, 4, SRC_LAN, 5353, buf, (size_t)len, 2000));
  CHECK_EQ(lp2p_mdns_peer_count(e), 2);
  CHECK_OK(lp2p_mdns_query_now(e, 11000));
  drain(e, &p);
  REQUIRE(p.n >= 1);
  CHECK_EQ(p.p[0].data[2] & 0x80, 0);
  char ka[512] = "";
  ka_hex(ka, sizeof ka, "aaaa", 120);
  ka_hex(ka, sizeof ka, "bbbb", 110);
  ka_hex(ka, sizeof ka, "cccc", 111);
  expect_query(&p.p[0], 3, ka);
  CHECK_EQ(p.p[0].len, 33u + 3u * 19u);
  pkts_free(&p);
  lp2p_mdns_free(e);
}

/* A listen address on an IPv6 link-local IP is never advertised (a dnsaddr cannot carry the zone),
 * whether it comes from :: or is named (found by fuzz_mdns_engine). */
TEST(no_link_local_strings) {
  lp2p_mdns *e = mk_engine(NULL, 0, 0);
  lp2p_mdns_iface ifs[2];
  std_ifaces(ifs);
  CHECK_OK(lp2p_mdns_set_interfaces(e, ifs, 2, 0));
  const char *addrs[] = {"/ip6/fe80::1/tcp/4004", "/ip6/::/tcp/4005", "/ip6/2001:db8::10/tcp/4006"};
  set_addrs(e, addrs, 3, PEER_ID, 0);
  CHECK_OK(lp2p_mdns_tick(e, lp2p_mdns_next_deadline(e)));
  pkts p;
  drain(e, &p);
  int seen = 0;
  for (size_t i = 0; i < p.n; i++) {
    if (!(p.p[i].data[2] & 0x80) || p.p[i].ifindex != 2 || p.p[i].family != 6) continue;
    char t[2048];
    strings_of(p.p[i].data, p.p[i].len, t, sizeof t);
    CHECK(strstr(t, "fe80") == NULL);
    CHECK(strstr(t, "/ip6/2001:db8::10/tcp/4005/p2p/") != NULL);
    CHECK(strstr(t, "/ip6/2001:db8::10/tcp/4006/p2p/") != NULL);
    seen++;
  }
  CHECK(seen >= 1);
  pkts_free(&p);
  lp2p_mdns_free(e);
}

int main(void) {
  RUN(vector_layout_byte_for_byte);
  RUN(discovers_every_layout);
  RUN(bad_strings_drop_only_themselves);
  RUN(own_announcements_ignored);
  RUN(peer_name_generation);
  RUN(query_backoff);
  RUN(answers_rate_limited);
  RUN(ttl_expiry_and_goodbye);
  RUN(addresses_per_interface);
  RUN(split_large_responses);
  RUN(txt_record_layouts);
  RUN(refresh_queries_and_events);
  RUN(known_answers);
  RUN(known_answers_per_link);
  RUN(known_answers_two_peers);
  RUN(no_link_local_strings);
  RUN(deferred_answer_follows_interface);
  RUN(malformed_and_floods);
  RUN(allocation_failures);
  return test_done();
}
