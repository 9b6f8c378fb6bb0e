/* tests/unit/test_mdns_txt.c - the mDNS engine's extra TXT strings (lp2p_mdns_set_txt, the hook
 * behind lp2p_mdns_service_set_txt and the pairing rendezvous by mDNS): validation, the record
 * layout (one TXT record before the dnsaddr ones, in every packet of a split response), an
 * announcement at once on change, and the receiving engine's DISCOVERED / UPDATED events and
 * lp2p_mdns_peer_txt. Two engines joined by hand, explicit clock. And the behaviour's API
 * (lp2p_mdns_service_set_txt keys and limits, listeners) on a real swarm; its traffic on a LAN is
 * tests/netns/test_pair_mdns.sh. */
#include <stdlib.h>

#include <unistd.h>

#include "lp2p/mdns.h"
#include "mdns/engine/mdns_codec.h"
#include "swarm_harness.h"
#include "mdns/engine/mdns_engine.h"
#include "test.h"

#define ID_A "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"
#define ID_B "12D3KooWLqLxEfJ9nDdEe8Kh8PFvNPQRYDQBwyL7CMM7HhVd5LsX"

static lp2p_mdns_msg msg;
static const uint8_t SRC_A[4] = {192, 168, 1, 10};

static lp2p_mdns_iface lan(uint8_t host) {
  lp2p_mdns_iface f;
  memset(&f, 0, sizeof f);
  f.index = 2;
  f.naddrs = 1;
  f.addrs[0].family = 4;
  f.addrs[0].addr[0] = 192, f.addrs[0].addr[1] = 168, f.addrs[0].addr[2] = 1, f.addrs[0].addr[3] = host;
  f.addrs[0].prefix_len = 24;
  return f;
}

static lp2p_mdns *engine(const char *name, uint8_t host, size_t max_packet, const char *id, size_t naddrs) {
  lp2p_mdns_config c;
  memset(&c, 0, sizeof c);
  c.struct_size = sizeof c;
  c.peer_name = name;
  c.max_packet = max_packet;
  lp2p_mdns *e = NULL;
  CHECK_OK(lp2p_mdns_new(&e, &c, NULL, 0));
  lp2p_mdns_iface f = lan(host);
  CHECK_OK(lp2p_mdns_set_interfaces(e, &f, 1, 0));
  lp2p_multiaddr *mas[32];
  for (size_t i = 0; i < naddrs; i++) {
    char t[64];
    snprintf(t, sizeof t, "/ip4/192.168.1.%u/tcp/%zu", host, 4001 + i);
    CHECK_OK(lp2p_multiaddr_parse(&mas[i], t, NULL, 0));
  }
  lp2p_peer_id pid;
  CHECK_OK(lp2p_peer_id_parse(id, &pid));
  CHECK_OK(lp2p_mdns_set_listen_addrs(e, (const lp2p_multiaddr *const *)mas, naddrs, &pid, 0));
  for (size_t i = 0; i < naddrs; i++) lp2p_multiaddr_free(mas[i]);
  return e;
}

/* Moves a's response packets into b (queries dropped); returns how many responses; checks the
 * layout of each: the extra TXT record (when want_extra) comes first, a dnsaddr one last. */
static size_t pump(lp2p_mdns *a, lp2p_mdns *b, lp2p_tstamp now, const char *want_extra) {
  lp2p_mdns_packet p;
  size_t n = 0;
  while (lp2p_mdns_next_packet(a, &p) == 1) {
    if (!(p.data[2] & 0x80)) continue;
    n++;
    CHECK_OK(lp2p_mdns_parse(p.data, p.len, &msg));
    int first_txt = 1, last_is_dnsaddr = 0, saw_extra = 0;
    for (size_t k = 0; k < msg.nrr; k++) {
      if (msg.rr[k].type != LP2P_MDNS_TYPE_TXT) continue;
      size_t off = 0, sl;
      const uint8_t *s;
      int dnsaddr = 0;
      while (lp2p_mdns_txt_next(msg.rr[k].rdata, msg.rr[k].rdlen, &off, &s, &sl) == 1) {
        if (sl > 8 && !memcmp(s, "dnsaddr=", 8)) {
          dnsaddr = 1;
        } else {
          CHECK(first_txt); /* the extras are in the first TXT record only */
          if (want_extra && sl == strlen(want_extra) && !memcmp(s, want_extra, sl)) saw_extra = 1;
        }
      }
      last_is_dnsaddr = dnsaddr;
      first_txt = 0;
    }
    CHECK(last_is_dnsaddr); /* go reads only the last TXT record */
    if (want_extra) CHECK(saw_extra);
    CHECK_OK(lp2p_mdns_packet_in(b, 2, 4, SRC_A, 5353, p.data, p.len, now));
  }
  return n;
}

static size_t ev_txt(const lp2p_mdns_event *ev, char *out, size_t cap) {
  out[0] = 0;
  for (size_t i = 0; i < ev->ntxt; i++) {
    strncat(out, ev->txt[i], cap - strlen(out) - 1);
    if (i + 1 < ev->ntxt) strncat(out, "|", cap - strlen(out) - 1);
  }
  return ev->ntxt;
}

TEST(set_txt_validation) {
  lp2p_mdns *e = engine("aaaa", 10, 0, ID_A, 1);
  const char *bad[] = {"novalue",       "=x",          "dnsaddr=/ip4/1.2.3.4/tcp/1", "UPPER=x",  "toolongkey=x",
                       "k=tab\tinside", "k=",          "k_y=1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    const char *one[] = {bad[i]};
    CHECK_EQ(lp2p_mdns_set_txt(e, one, 1, 0), LP2P_ERR_INVAL);
  }
  const char *nine[9] = {"a=1", "b=1", "c=1", "d=1", "e=1", "f=1", "g=1", "h=1", "i=1"};
  CHECK_EQ(lp2p_mdns_set_txt(e, nine, 9, 0), LP2P_ERR_INVAL);
  CHECK_OK(lp2p_mdns_set_txt(e, nine, 8, 0));
  static char big[2][256];
  memset(big, 'x', sizeof big);
  memcpy(big[0], "a=", 2), memcpy(big[1], "b=", 2);
  big[0][255] = big[1][255] = 0; /* 255 + 255 > 400 bytes */
  const char *two[] = {big[0], big[1]};
  CHECK_EQ(lp2p_mdns_set_txt(e, two, 1, 0), 0); /* one 255-byte string fits */
  CHECK_EQ(lp2p_mdns_set_txt(e, two, 2, 0), LP2P_ERR_INVAL);
  CHECK(lp2p_mdns_txt_valid("lp2p-pair=00ff", 14));
  CHECK(!lp2p_mdns_txt_valid("dnsaddr=x", 9));
  CHECK_OK(lp2p_mdns_set_txt(e, NULL, 0, 0));
  lp2p_mdns_free(e);
}

TEST(extra_txt_announced_and_discovered) {
  lp2p_mdns *a = engine("aaaa", 10, 0, ID_A, 2), *b = engine("bbbb", 20, 0, ID_B, 1);
  const char *t1[] = {"lp2p-pair=0011aabb"};
  CHECK_OK(lp2p_mdns_set_txt(a, t1, 1, 0)); /* before the first (jittered) slot: waits for it */
  CHECK_OK(lp2p_mdns_tick(a, 200));
  CHECK(pump(a, b, 200, t1[0]) >= 1);
  lp2p_mdns_event ev;
  char buf[512];
  REQUIRE(lp2p_mdns_next_event(b, &ev) == 1);
  CHECK_EQ(ev.type, LP2P_MDNS_EV_DISCOVERED);
  CHECK_EQ(ev.naddrs, 2);
  CHECK_EQ(ev_txt(&ev, buf, sizeof buf), 1);
  CHECK_STR(buf, "lp2p-pair=0011aabb");
  lp2p_peer_id ida;
  CHECK_OK(lp2p_peer_id_parse(ID_A, &ida));
  const char *got[4];
  CHECK_EQ(lp2p_mdns_peer_txt(b, &ida, got, 4), 1);
  CHECK_STR(got[0], "lp2p-pair=0011aabb");
  while (lp2p_mdns_next_event(b, &ev) == 1) {}
  /* the same announcement again (the second of the pair, 1 s later): no event */
  CHECK_OK(lp2p_mdns_tick(a, 1200));
  CHECK(pump(a, b, 1200, t1[0]) >= 1);
  CHECK_EQ(lp2p_mdns_next_event(b, &ev), 0);
  /* a change is announced from inside the call, at once: UPDATED, addresses unchanged */
  const char *t2[] = {"lp2p-pair=ffee", "app=v2"};
  CHECK_OK(lp2p_mdns_set_txt(a, t2, 2, 5000));
  CHECK(pump(a, b, 5000, t2[1]) >= 1);
  REQUIRE(lp2p_mdns_next_event(b, &ev) == 1);
  CHECK_EQ(ev.type, LP2P_MDNS_EV_UPDATED);
  CHECK_EQ(ev.naddrs, 2);
  CHECK_EQ(ev_txt(&ev, buf, sizeof buf), 2);
  CHECK_STR(buf, "lp2p-pair=ffee|app=v2");
  CHECK_EQ(lp2p_mdns_next_event(b, &ev), 0);
  /* setting the same set again: nothing is sent */
  CHECK_OK(lp2p_mdns_tick(a, 6000));
  pump(a, b, 6000, NULL);
  while (lp2p_mdns_next_event(b, &ev) == 1) {}
  CHECK_OK(lp2p_mdns_set_txt(a, t2, 2, 6100));
  CHECK_EQ(pump(a, b, 6100, NULL), 0);
  /* cleared: UPDATED with no strings */
  CHECK_OK(lp2p_mdns_set_txt(a, NULL, 0, 7000));
  CHECK(pump(a, b, 7000, NULL) >= 1);
  REQUIRE(lp2p_mdns_next_event(b, &ev) == 1);
  CHECK_EQ(ev.type, LP2P_MDNS_EV_UPDATED);
  CHECK_EQ(ev.ntxt, 0);
  CHECK_EQ(lp2p_mdns_peer_txt(b, &ida, got, 4), 0);
  /* goodbye: EXPIRED carries no strings */
  CHECK_OK(lp2p_mdns_set_txt(a, t1, 1, 8000));
  pump(a, b, 8000, t1[0]);
  while (lp2p_mdns_next_event(b, &ev) == 1) {}
  CHECK_OK(lp2p_mdns_shutdown(a, 9000));
  pump(a, b, 9000, NULL);
  REQUIRE(lp2p_mdns_next_event(b, &ev) == 1);
  CHECK_EQ(ev.type, LP2P_MDNS_EV_EXPIRED);
  CHECK_EQ(ev.ntxt, 0);
  CHECK_EQ(lp2p_mdns_peer_txt(b, &ida, got, 4), 0);
  lp2p_mdns_free(a);
  lp2p_mdns_free(b);
}

/* A response split over several packets carries the extras in each; the receiver keeps them. */
TEST(extra_txt_in_every_split_packet) {
  lp2p_mdns *a = engine("aaaa", 10, 512, ID_A, 12), *b = engine("bbbb", 20, 0, ID_B, 1);
  static char s[200];
  memset(s, 'z', sizeof s);
  memcpy(s, "big=", 4);
  s[199] = 0;
  const char *t[] = {s};
  CHECK_OK(lp2p_mdns_set_txt(a, t, 1, 0));
  CHECK_OK(lp2p_mdns_tick(a, 200));
  CHECK(pump(a, b, 200, s) >= 2);
  lp2p_mdns_event ev;
  size_t addrs = 0, updated = 0;
  while (lp2p_mdns_next_event(b, &ev) == 1) {
    CHECK_EQ(ev.ntxt, 1);
    if (ev.type == LP2P_MDNS_EV_UPDATED) updated++;
    addrs = ev.naddrs;
  }
  CHECK_EQ(addrs, 12);
  CHECK_EQ(updated, 0); /* the later packets did not "change" the strings */
  lp2p_mdns_free(a);
  lp2p_mdns_free(b);
}

/* Strings a peer sends that are not valid extras are skipped alone; a response without extras
 * (js/go/rust) reports none. */
TEST(received_extras_filtered) {
  lp2p_mdns *b = engine("bbbb", 20, 0, ID_B, 1);
  uint8_t buf[1500];
  lp2p_mdns_builder w;
  lp2p_mdns_name svc, inst;
  CHECK_OK(lp2p_mdns_name_from_text(&svc, "_p2p._udp.local"));
  CHECK_OK(lp2p_mdns_name_from_text(&inst, "peera._p2p._udp.local"));
  lp2p_mdns_build_init(&w, buf, sizeof buf, 0, LP2P_MDNS_FLAG_QR | LP2P_MDNS_FLAG_AA, 1);
  lp2p_mdns_build_rr_begin(&w, LP2P_MDNS_SEC_ANSWER, &svc, LP2P_MDNS_TYPE_PTR, LP2P_MDNS_CLASS_IN, 120);
  lp2p_mdns_build_name(&w, &inst);
  lp2p_mdns_build_rr_end(&w);
  lp2p_mdns_build_rr_begin(&w, LP2P_MDNS_SEC_ADDITIONAL, &inst, LP2P_MDNS_TYPE_TXT, LP2P_MDNS_CLASS_IN, 120);
  const char *strs[] = {"ok=1", "BAD=1", "noequals", "dnsaddr=/ip4/192.168.1.10/tcp/1/p2p/" ID_A, "k=\x01", "x=2"};
  for (size_t i = 0; i < 6; i++) lp2p_mdns_build_string(&w, strs[i], strlen(strs[i]));
  lp2p_mdns_build_rr_end(&w);
  int len = lp2p_mdns_build_finish(&w);
  REQUIRE(len > 0);
  CHECK_OK(lp2p_mdns_packet_in(b, 2, 4, SRC_A, 5353, buf, (size_t)len, 100));
  lp2p_mdns_event ev;
  char out[256];
  REQUIRE(lp2p_mdns_next_event(b, &ev) == 1);
  CHECK_EQ(ev.type, LP2P_MDNS_EV_DISCOVERED);
  CHECK_EQ(ev.naddrs, 1);
  CHECK_EQ(ev_txt(&ev, out, sizeof out), 2);
  CHECK_STR(out, "ok=1|x=2");
  lp2p_mdns_free(b);
}

static void l_fn(lp2p_mdns_service *m, const lp2p_mdns_peer_event *ev, void *ud) { (void)m, (void)ev, (void)ud; }
static void l_fn2(lp2p_mdns_service *m, const lp2p_mdns_peer_event *ev, void *ud) { (void)m, (void)ev, (void)ud; }

TEST(service_txt_api) {
  tloop L;
  tloop_init(&L);
  tsw a;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  lp2p_mdns_service_config c;
  lp2p_mdns_service_config_default(&c);
  c.port = (uint16_t)(40000 + getpid() % 20000); /* not the host's 5353 */
  lp2p_mdns_service *m = NULL;
  CHECK_OK(lp2p_mdns_add(a.sw, &c, &m));
  REQUIRE(m != NULL);
  CHECK_OK(lp2p_mdns_service_set_txt(m, "lp2p-pair", "00ff"));
  CHECK_OK(lp2p_mdns_service_set_txt(m, "lp2p-pair", "00ff")); /* unchanged */
  CHECK_OK(lp2p_mdns_service_set_txt(m, "lp2p-pair", "11ee")); /* replaced, still one string */
  CHECK_EQ(lp2p_mdns_service_set_txt(m, "dnsaddr", "/ip4/1.2.3.4/tcp/1"), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_mdns_service_set_txt(m, "Up", "x"), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_mdns_service_set_txt(m, "k=v", "x"), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_mdns_service_set_txt(m, "tenletters", "x"), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_mdns_service_set_txt(m, "k", "bad\x01"), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_mdns_service_set_txt(m, "k", ""), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_mdns_service_set_txt(m, "nokey", NULL), LP2P_ERR_NOT_FOUND);
  char k[8];
  for (int i = 0; i < 7; i++) {
    snprintf(k, sizeof k, "k%d", i);
    CHECK_OK(lp2p_mdns_service_set_txt(m, k, "1"));
  }
  CHECK_EQ(lp2p_mdns_service_set_txt(m, "k9", "1"), LP2P_ERR_LIMIT); /* 9 strings */
  static char big[300];
  memset(big, 'v', 240);
  big[240] = 0;
  CHECK_OK(lp2p_mdns_service_set_txt(m, "k0", big));
  CHECK_EQ(lp2p_mdns_service_set_txt(m, "k1", big), LP2P_ERR_LIMIT); /* > 400 bytes in all */
  CHECK_OK(lp2p_mdns_service_set_txt(m, "k0", NULL));
  CHECK_OK(lp2p_mdns_service_set_txt(m, "k9", "1"));
  lp2p_peer_id nobody;
  CHECK_OK(lp2p_peer_id_parse(ID_B, &nobody));
  const char *out[4];
  CHECK_EQ(lp2p_mdns_service_peer_txt(m, &nobody, out, 4), 0);
  CHECK_OK(lp2p_mdns_service_add_listener(m, l_fn, NULL));
  CHECK_EQ(lp2p_mdns_service_add_listener(m, l_fn, NULL), LP2P_ERR_EXISTS);
  for (int i = 1; i < 8; i++) CHECK_OK(lp2p_mdns_service_add_listener(m, l_fn, (void *)(intptr_t)i));
  CHECK_EQ(lp2p_mdns_service_add_listener(m, l_fn2, NULL), LP2P_ERR_LIMIT);
  lp2p_mdns_service_remove_listener(m, l_fn, (void *)(intptr_t)3);
  CHECK_OK(lp2p_mdns_service_add_listener(m, l_fn2, NULL));
  CHECK(RUN_UNTIL(&L, 0, 300) == 0); /* the announcements leave from the loop: nothing breaks */
  tsw_free(&a);
  CHECK_EQ(tloop_finish(&L), 0);
}

int main(void) {
  RUN(set_txt_validation);
  RUN(extra_txt_announced_and_discovered);
  RUN(extra_txt_in_every_split_packet);
  RUN(received_extras_filtered);
  RUN(service_txt_api);
  return test_done();
}
