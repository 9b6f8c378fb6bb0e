/* fuzz/fuzz_mdns_engine.c - the mDNS engine's state machine driven by a script of operations with a
 * manual clock (fuzz_mdns_packet feeds one packet; this target runs a whole life: many packets,
 * time passing through every timer, interface and listen-address changes, shutdown).
 *
 * Input: byte 0 = configuration, byte 1 = allocation to fail (with cfg bit 4), then operations
 * (at most 32), each an opcode byte (value % 9) and its argument bytes:
 *   0 raw packet      if/src byte, length byte, that many bytes (truncated at the end of input)
 *   1 response        peer, layout, address mask, if/src: a well-formed response from one of four
 *                     remote peers (or from ourselves) in any layout the three implementations use
 *                     (PTR or not, TXT in answers or additionals, one TXT per string or one for
 *                     all, SRV + A), TTLs 0 (goodbye), 1 s, 120 s, 4500 s, 9999 s, addresses good,
 *                     loopback, naming another peer, unparsable, other keys
 *   2 query           flags, if/src: `_p2p._udp.local`, the meta query or another name, PTR/ANY/A,
 *                     QU bit, from port 5353 or a legacy port, with known answers (our PTR at
 *                     several TTLs, someone else's)
 *   3 advance         two bytes: time passes (10 ms or 1 s steps, up to 255 s); every deadline the
 *                     engine reports on the way is fired at its time, like the runtime's timer
 *   4 interfaces      mask over four interfaces (lo, a dual-stack eth0, IPv4-only, IPv6-only) and
 *                     variant bits (eth0 renumbered, eth0 without IPv6)
 *   5 listen          mask over eight listen addresses (unspecified, specific, loopback, with our
 *                     /p2p, with another peer's, multicast, link-local), bit: another local peer id
 *   6 query now
 *   7 drain           (lazy mode only) pull up to n packets/events
 *   8 shutdown
 * Config byte: bit 0 txt_single_record, 1 no_compression, 2 report_refresh, 3 max_packet 512,
 *   4 fail one allocation, 5 ttl 2 s, 6 max_peers 2 and max_addrs_per_peer 2, 7 lazy draining
 *   (otherwise everything is drained after each operation, as the runtime does).
 * Checks (abort): calls return documented codes (LP2P_ERR_STATE after shutdown, 0 for garbage);
 * every queued packet parses, fits max_packet, goes out on an interface and family we have; every
 * dnsaddr string we send names our peer id, an IP of the packet's family inside one of that
 * interface's prefixes, never unspecified, loopback only on a loopback interface, no IPv6
 * link-local; after shutdown only goodbyes (TTL 0); events: DISCOVERED/REFRESHED carry 1..max
 * distinct addresses ending with the event's peer id, never ours; a query's known answers name
 * only our own instance or instances fed to the engine on that interface and family; with
 * nothing dropped (no allocation failure, no queue overflow) the events tell a consistent story
 * (EXPIRED and REFRESHED only for a live peer) whose live set equals lp2p_mdns_peer_count, a
 * tick leaves the next deadline in the future, and nothing leaks through lp2p_mem. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mdns/engine/mdns_codec.h"
#include "mdns/engine/mdns_engine.h"

#define ASSERT(c)                                                                \
  do {                                                                           \
    if (!(c)) {                                                                  \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c); \
      abort();                                                                   \
    }                                                                            \
  } while (0)

/* ---- allocator that counts and can fail once ----------------------------------------------- */
typedef struct fz {
  long live, count, fail_at, failed;
} fz;
static void *fm_malloc(size_t n, void *u) {
  fz *f = u;
  if (++f->count == f->fail_at) {
    f->failed++;
    return NULL;
  }
  void *p = malloc(n);
  if (p) f->live++;
  return p;
}
static void *fm_realloc(void *p, size_t n, void *u) {
  fz *f = u;
  if (++f->count == f->fail_at) {
    f->failed++;
    return NULL;
  }
  void *q = realloc(p, n);
  if (q && !p) f->live++;
  return q;
}
static void fm_free(void *p, void *u) {
  fz *f = u;
  if (p) {
    f->live--;
    free(p);
  }
}

static int rng(void *ud, uint8_t *buf, size_t n) {
  uint32_t *x = ud;
  for (size_t i = 0; i < n; i++) {
    *x ^= *x << 13, *x ^= *x >> 17, *x ^= *x << 5;
    buf[i] = (uint8_t)(*x >> 7);
  }
  return 0;
}

/* Operations per input: 32 keep an execution short (a run is a whole engine life, up to 255 s per
 * advance) and still reach every timer: 90 s from the committed corpus gave 890 exec/s and 3321
 * edges with 32, 695 exec/s and 3319 edges with 64. */
#define MAX_OPS 32

/* ---- fixed world ----------------------------------------------------------------------------- */
#define NPEERS 4
static int g_init;
static lp2p_peer_id g_self[2], g_peer[NPEERS];
static char g_self_text[2][LP2P_PEER_ID_MAX_TEXT], g_peer_text[NPEERS][LP2P_PEER_ID_MAX_TEXT];
static lp2p_multiaddr *g_listen[2][8];
static lp2p_mdns_name g_service, g_meta, g_other_service;
static lp2p_mdns_iface g_ifs[4], g_eth0_renumbered, g_eth0_v4only;
static lp2p_mdns_msg g_msg;
static uint8_t g_buf[LP2P_MDNS_MAX_PACKET];

static lp2p_peer_id mkpeer(uint8_t seed) {
  uint8_t mh[34] = {0x12, 0x20};
  for (int i = 0; i < 32; i++) mh[2 + i] = (uint8_t)(seed * 31 + i);
  lp2p_peer_id p;
  ASSERT(lp2p_peer_id_from_bytes(mh, sizeof mh, &p) == 0);
  return p;
}

static lp2p_mdns_ifaddr ifa(int family, const char *bytes, uint8_t plen) {
  lp2p_mdns_ifaddr a;
  memset(&a, 0, sizeof a);
  a.family = family;
  memcpy(a.addr, bytes, family == 6 ? 16 : 4);
  a.prefix_len = plen;
  return a;
}

static void world_init(void) {
  if (g_init) return;
  g_init = 1;
  for (int i = 0; i < 2; i++) {
    g_self[i] = mkpeer((uint8_t)(200 + i));
    ASSERT(lp2p_peer_id_to_string(&g_self[i], g_self_text[i], sizeof g_self_text[i]) > 0);
  }
  for (int i = 0; i < NPEERS; i++) {
    g_peer[i] = mkpeer((uint8_t)(1 + i));
    ASSERT(lp2p_peer_id_to_string(&g_peer[i], g_peer_text[i], sizeof g_peer_text[i]) > 0);
  }
  for (int s = 0; s < 2; s++) {
    char t[8][300];
    snprintf(t[0], sizeof t[0], "/ip4/0.0.0.0/tcp/4001");
    snprintf(t[1], sizeof t[1], "/ip6/::/tcp/4001");
    snprintf(t[2], sizeof t[2], "/ip4/10.77.0.1/udp/4001/quic-v1");
    snprintf(t[3], sizeof t[3], "/ip4/127.0.0.1/tcp/5000");
    snprintf(t[4], sizeof t[4], "/ip4/10.77.0.1/tcp/4002/p2p/%s", g_self_text[s]);
    snprintf(t[5], sizeof t[5], "/ip4/10.77.0.1/tcp/4003/p2p/%s", g_peer_text[0]);
    snprintf(t[6], sizeof t[6], "/ip4/224.0.0.1/tcp/1");
    snprintf(t[7], sizeof t[7], "/ip6/fe80::1/tcp/4004");
    for (int i = 0; i < 8; i++) ASSERT(lp2p_multiaddr_parse(&g_listen[s][i], t[i], NULL, 0) == 0);
  }
  ASSERT(lp2p_mdns_name_from_text(&g_service, LP2P_MDNS_SERVICE) == 0);
  ASSERT(lp2p_mdns_name_from_text(&g_meta, LP2P_MDNS_META_SERVICE) == 0);
  ASSERT(lp2p_mdns_name_from_text(&g_other_service, "_other._udp.local") == 0);
  memset(g_ifs, 0, sizeof g_ifs);
  g_ifs[0].index = 1; /* lo */
  g_ifs[0].loopback = 1;
  g_ifs[0].addrs[g_ifs[0].naddrs++] = ifa(4, "\x7f\0\0\x01", 8);
  g_ifs[0].addrs[g_ifs[0].naddrs++] = ifa(6, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 128);
  g_ifs[1].index = 2; /* eth0 */
  g_ifs[1].addrs[g_ifs[1].naddrs++] = ifa(4, "\x0a\x4d\0\x01", 24);
  g_ifs[1].addrs[g_ifs[1].naddrs++] = ifa(6, "\xfe\x80\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 64);
  g_ifs[1].addrs[g_ifs[1].naddrs++] = ifa(6, "\xfd\x77\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 64);
  g_ifs[2].index = 3; /* IPv4 only */
  g_ifs[2].addrs[g_ifs[2].naddrs++] = ifa(4, "\xc0\xa8\x05\x01", 24);
  g_ifs[3].index = 4; /* IPv6 only */
  g_ifs[3].addrs[g_ifs[3].naddrs++] = ifa(6, "\xfd\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\x01", 64);
  g_eth0_renumbered = g_ifs[1];
  g_eth0_renumbered.addrs[0] = ifa(4, "\x0a\x4d\0\xc8", 24);
  memset(&g_eth0_v4only, 0, sizeof g_eth0_v4only);
  g_eth0_v4only.index = 2;
  g_eth0_v4only.addrs[g_eth0_v4only.naddrs++] = g_ifs[1].addrs[0];
}

/* ---- the run ----------------------------------------------------------------------------------- */
typedef struct run {
  lp2p_mdns *e;
  fz f;
  lp2p_tstamp now;
  int shut, lazy, self_idx, self_unknown; /* self_unknown: a failed set_listen_addrs may have applied it */
  size_t max_packet, max_addrs;
  lp2p_mdns_iface ifs[4];
  size_t nifs;
  int ifs_unknown; /* set_interfaces failed: the engine has the old list or the new one */
  lp2p_peer_id live[NPEERS + 2];
  size_t nlive;
  int model_ok; /* 0 once something may have been dropped */
  lp2p_mdns_name self_inst;
  struct heard { /* instance names fed in responses, per interface and family */
    lp2p_mdns_name inst;
    uint32_t ifindex;
    int family;
  } heard[64];
  size_t nheard;
  int heard_overflow;
} run;

static int was_heard(const run *r, const lp2p_mdns_name *n, uint32_t ifindex, int family) {
  for (size_t i = 0; i < r->nheard; i++)
    if (r->heard[i].ifindex == ifindex && r->heard[i].family == family && lp2p_mdns_name_equal(&r->heard[i].inst, n))
      return 1;
  return 0;
}

/* Every PTR target and TXT owner of a response is a name the engine may take for an instance. */
static void note_heard(run *r, uint32_t ifindex, int family, const uint8_t *data, size_t len) {
  if (lp2p_mdns_parse(data, len, &g_msg) || !((g_msg.flags & LP2P_MDNS_FLAG_QR) || g_msg.nq == 0)) return;
  for (size_t i = 0; i < g_msg.nrr; i++) {
    const lp2p_mdns_record *rr = &g_msg.rr[i];
    const lp2p_mdns_name *n = rr->type == LP2P_MDNS_TYPE_PTR ? &rr->target : rr->type == LP2P_MDNS_TYPE_TXT ? &rr->name : NULL;
    if (!n || was_heard(r, n, ifindex, family)) continue;
    if (r->nheard == sizeof r->heard / sizeof *r->heard) {
      r->heard_overflow = 1;
      return;
    }
    r->heard[r->nheard].inst = *n;
    r->heard[r->nheard].ifindex = ifindex;
    r->heard[r->nheard++].family = family;
  }
}

static int exact(run *r) {
  lp2p_mdns_stats st;
  lp2p_mdns_get_stats(r->e, &st);
  return r->model_ok && !r->f.failed && st.queue_dropped == 0;
}

static const lp2p_mdns_iface *cur_iface(run *r, uint32_t index) {
  for (size_t i = 0; i < r->nifs; i++)
    if (r->ifs[i].index == index) return &r->ifs[i];
  return NULL;
}

static int in_prefix(const uint8_t *a, const uint8_t *net, unsigned bits) {
  size_t full = bits / 8;
  if (memcmp(a, net, full)) return 0;
  unsigned rest = bits % 8;
  if (!rest) return 1;
  uint8_t mask = (uint8_t)(0xFF << (8 - rest));
  return (a[full] & mask) == (net[full] & mask);
}

static void check_string(run *r, const lp2p_mdns_iface *ifc, int family, const uint8_t *s, size_t n) {
  ASSERT(n > 8 && !memcmp(s, "dnsaddr=", 8));
  lp2p_multiaddr *ma = NULL;
  ASSERT(lp2p_multiaddr_parse_mem(&ma, (const char *)s + 8, n - 8, NULL, NULL, 0) == 0);
  size_t count = lp2p_multiaddr_count(ma);
  uint32_t code;
  const uint8_t *v;
  size_t vl;
  ASSERT(lp2p_multiaddr_component(ma, count - 1, &code, &v, &vl) == 0 && code == LP2P_MA_P2P);
  const lp2p_peer_id *self = &g_self[r->self_idx], *alt = &g_self[!r->self_idx];
  ASSERT((vl == self->len && !memcmp(v, self->bytes, vl)) ||
         (r->self_unknown && vl == alt->len && !memcmp(v, alt->bytes, vl)));
  ASSERT(lp2p_multiaddr_component(ma, 0, &code, &v, &vl) == 0);
  ASSERT((family == 4 && code == LP2P_MA_IP4 && vl == 4) || (family == 6 && code == LP2P_MA_IP6 && vl == 16));
  int zero = 1;
  for (size_t i = 0; i < vl; i++) zero &= v[i] == 0;
  ASSERT(!zero);
  int loop = family == 4 ? v[0] == 127 : !memcmp(v, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
  ASSERT(!loop || ifc->loopback);
  ASSERT(family == 4 || !(v[0] == 0xfe && (v[1] & 0xc0) == 0x80));
  int inside = 0;
  for (size_t k = 0; k < ifc->naddrs && !inside; k++)
    if (ifc->addrs[k].family == family && in_prefix(v, ifc->addrs[k].addr, ifc->addrs[k].prefix_len)) inside = 1;
  ASSERT(inside);
  lp2p_multiaddr_free(ma);
}

static void check_packet(run *r, const lp2p_mdns_packet *p, int after_shutdown) {
  ASSERT(p->data && p->len >= 12 && p->len <= r->max_packet);
  ASSERT(p->family == 4 || p->family == 6);
  ASSERT(lp2p_mdns_parse(p->data, p->len, &g_msg) == 0);
  ASSERT(g_msg.dropped == 0);
  if (!(g_msg.flags & LP2P_MDNS_FLAG_QR) && !r->heard_overflow) /* known answers: learned on this link */
    for (size_t i = 0; i < g_msg.nrr; i++)
      if (g_msg.rr[i].type == LP2P_MDNS_TYPE_PTR && !lp2p_mdns_name_equal(&g_msg.rr[i].target, &r->self_inst))
        ASSERT(was_heard(r, &g_msg.rr[i].target, p->ifindex, p->family));
  const lp2p_mdns_iface *ifc = cur_iface(r, p->ifindex);
  if (r->lazy || r->ifs_unknown) return; /* the interface list may have changed since it was queued */
  ASSERT(ifc);
  int has = 0;
  for (size_t k = 0; k < ifc->naddrs; k++) has |= ifc->addrs[k].family == p->family;
  ASSERT(has);
  if (!(g_msg.flags & LP2P_MDNS_FLAG_QR)) {
    ASSERT(!after_shutdown && g_msg.nq == 1 && !p->unicast);
    return;
  }
  for (size_t i = 0; i < g_msg.nrr; i++) {
    const lp2p_mdns_record *rr = &g_msg.rr[i];
    if (after_shutdown) ASSERT(rr->ttl == 0);
    if (rr->type != LP2P_MDNS_TYPE_TXT) continue;
    size_t off = 0, sl;
    const uint8_t *s;
    int k;
    while ((k = lp2p_mdns_txt_next(rr->rdata, rr->rdlen, &off, &s, &sl)) == 1) check_string(r, ifc, p->family, s, sl);
    ASSERT(k == 0);
  }
}

static long live_find(run *r, const lp2p_peer_id *id) {
  for (size_t i = 0; i < r->nlive; i++)
    if (lp2p_peer_id_equal(&r->live[i], id)) return (long)i;
  return -1;
}

static void check_event(run *r, const lp2p_mdns_event *ev) {
  ASSERT(ev->type == LP2P_MDNS_EV_DISCOVERED || ev->type == LP2P_MDNS_EV_EXPIRED || ev->type == LP2P_MDNS_EV_REFRESHED || ev->type == LP2P_MDNS_EV_UPDATED);
  ASSERT(ev->peer.len > 0);
  ASSERT(!lp2p_peer_id_equal(&ev->peer, &g_self[r->self_idx]) || r->self_unknown);
  if (ev->type != LP2P_MDNS_EV_EXPIRED) {
    ASSERT(ev->naddrs >= 1 && ev->naddrs <= r->max_addrs && ev->addrs);
    for (size_t i = 0; i < ev->naddrs; i++) {
      size_t count = lp2p_multiaddr_count(ev->addrs[i]);
      uint32_t code;
      const uint8_t *v;
      size_t vl;
      ASSERT(lp2p_multiaddr_component(ev->addrs[i], count - 1, &code, &v, &vl) == 0 && code == LP2P_MA_P2P);
      ASSERT(vl == ev->peer.len && !memcmp(v, ev->peer.bytes, vl));
      for (size_t k = 0; k < i; k++) ASSERT(!lp2p_multiaddr_equal(ev->addrs[i], ev->addrs[k]));
    }
  }
  if (!exact(r)) return;
  long li = live_find(r, &ev->peer);
  if (ev->type == LP2P_MDNS_EV_DISCOVERED) {
    if (li < 0) {
      ASSERT(r->nlive < sizeof r->live / sizeof *r->live);
      r->live[r->nlive++] = ev->peer;
    }
  } else if (ev->type == LP2P_MDNS_EV_EXPIRED) {
    ASSERT(li >= 0);
    r->live[li] = r->live[--r->nlive];
  } else {
    ASSERT(li >= 0);
  }
}

static void drain(run *r, size_t max, int after_shutdown) {
  lp2p_mdns_packet p;
  lp2p_mdns_event ev;
  size_t n = 0;
  while (n < max && lp2p_mdns_next_packet(r->e, &p) == 1) check_packet(r, &p, after_shutdown), n++;
  n = 0;
  while (n < max && lp2p_mdns_next_event(r->e, &ev) == 1) check_event(r, &ev), n++;
  if (!exact(r)) {
    r->model_ok = 0;
    return;
  }
  if (max == (size_t)-1) ASSERT(lp2p_mdns_peer_count(r->e) == r->nlive);
}

static void after_call(run *r, int rv) {
  if (r->shut) {
    ASSERT(rv == LP2P_ERR_STATE);
    return;
  }
  ASSERT(rv == 0 || rv == LP2P_ERR_NOMEM || rv == LP2P_ERR_INTERNAL);
  if (rv) r->model_ok = 0;
  if (!r->lazy) drain(r, (size_t)-1, 0);
}

/* if/src byte: bits 0-1 interface slot (1..4; a slot not configured is "unknown interface"),
 * bit 2 family, bits 3-4 source (none, three hosts), bit 5 legacy source port. */
static void packet_in(run *r, uint8_t sel, const uint8_t *data, size_t len) {
  static const uint8_t srcs[3][16] = {{10, 77, 0, 2}, {10, 77, 0, 3}, {0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4}};
  uint32_t ifindex = 1u + (sel & 3u);
  int family = (sel & 4) ? 6 : 4;
  unsigned s = (sel >> 3) & 3u;
  const uint8_t *src = s ? srcs[s - 1] : NULL;
  uint16_t port = (sel & 0x20) ? 40000 : 5353;
  note_heard(r, ifindex, family, data, len);
  int rv = lp2p_mdns_packet_in(r->e, ifindex, family, src, port, data, len, r->now);
  after_call(r, rv);
}

static uint32_t ttl_pick(unsigned v) {
  static const uint32_t t[8] = {0, 1, 120, 4500, 9999, 60, 2, 120};
  return t[v & 7];
}

static void op_response(run *r, const uint8_t *a) {
  unsigned pi = a[0] % (NPEERS + 1); /* NPEERS = ourselves */
  uint8_t lay = a[1], mask = a[2];
  const lp2p_peer_id *pid = pi < NPEERS ? &g_peer[pi] : &g_self[r->self_idx];
  const char *id = pi < NPEERS ? g_peer_text[pi] : g_self_text[r->self_idx];
  const char *other = g_peer_text[(pi + 1) % NPEERS];
  (void)pid;
  char label[16];
  int ll = snprintf(label, sizeof label, "inst%u%c", pi, (lay & 0x80) ? 'b' : 'a');
  lp2p_mdns_name inst;
  if (pi == NPEERS) {
    const char *pn = lp2p_mdns_peer_name(r->e);
    ASSERT(lp2p_mdns_name_prepend(&inst, (const uint8_t *)pn, strlen(pn), &g_service) == 0);
  } else {
    ASSERT(lp2p_mdns_name_prepend(&inst, (const uint8_t *)label, (size_t)ll, &g_service) == 0);
  }
  uint32_t ttl = ttl_pick(lay), ptr_ttl = (lay & 0x40) ? ttl_pick(lay >> 3) : ttl;
  char strs[8][320];
  size_t ns = 0;
  if (mask & 1) snprintf(strs[ns++], 320, "dnsaddr=/ip4/10.77.0.%u/tcp/4001/p2p/%s", pi + 2, id);
  if (mask & 2) snprintf(strs[ns++], 320, "dnsaddr=/ip6/fd77::%u/tcp/4001/p2p/%s", pi + 2, id);
  if (mask & 4) snprintf(strs[ns++], 320, "dnsaddr=/ip4/127.0.0.1/tcp/4001/p2p/%s", id);
  if (mask & 8) snprintf(strs[ns++], 320, "dnsaddr=/ip4/10.77.0.%u/udp/4001/quic-v1/p2p/%s", pi + 2, id);
  if (mask & 16) snprintf(strs[ns++], 320, "dnsaddr=/ip4/10.77.0.%u/tcp/4009/p2p/%s", pi + 2, other);
  if (mask & 32) snprintf(strs[ns++], 320, "dnsaddr=/ip4/999.1.1.1/tcp/1/p2p/x");
  if (mask & 64) snprintf(strs[ns++], 320, "foo=bar");
  if (mask & 128) snprintf(strs[ns++], 320, "DNSADDR=/ip4/10.77.0.%u/tcp/%u/p2p/%s", pi + 2, 5000u + a[3], id);
  lp2p_mdns_builder b;
  lp2p_mdns_build_init(&b, g_buf, sizeof g_buf, 0, LP2P_MDNS_FLAG_QR | LP2P_MDNS_FLAG_AA, (lay & 0x20) != 0);
  int txt_sec = (lay & 0x10) ? LP2P_MDNS_SEC_ANSWER : LP2P_MDNS_SEC_ADDITIONAL;
  int with_ptr = (a[3] & 0x40) == 0;
  if (with_ptr) {
    lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ANSWER, &g_service, LP2P_MDNS_TYPE_PTR, LP2P_MDNS_CLASS_IN, ptr_ttl);
    lp2p_mdns_build_name(&b, &inst);
    lp2p_mdns_build_rr_end(&b);
  }
  int single = (a[3] & 0x80) != 0;
  for (int pass = 0; pass < 2; pass++) {
    int sec = pass == 0 ? LP2P_MDNS_SEC_ANSWER : LP2P_MDNS_SEC_ADDITIONAL;
    if (sec == txt_sec && ns) {
      for (size_t i = 0; i < ns; i++) {
        if (i == 0 || !single)
          lp2p_mdns_build_rr_begin(&b, sec, &inst, LP2P_MDNS_TYPE_TXT, LP2P_MDNS_CLASS_IN, ttl);
        lp2p_mdns_build_string(&b, strs[i], strlen(strs[i]));
        if (i + 1 == ns || !single) lp2p_mdns_build_rr_end(&b);
      }
    }
    if (sec == LP2P_MDNS_SEC_ADDITIONAL && (lay & 0x08)) { /* SRV + A, as go wants them */
      lp2p_mdns_name host, local;
      lp2p_mdns_name_from_text(&local, "local");
      lp2p_mdns_name_prepend(&host, (const uint8_t *)label, (size_t)ll, &local);
      lp2p_mdns_build_rr_begin(&b, sec, &inst, LP2P_MDNS_TYPE_SRV, LP2P_MDNS_CLASS_IN, ttl);
      lp2p_mdns_build_u16(&b, 0);
      lp2p_mdns_build_u16(&b, 0);
      lp2p_mdns_build_u16(&b, 4001);
      lp2p_mdns_build_name(&b, &host);
      lp2p_mdns_build_rr_end(&b);
      lp2p_mdns_build_rr_begin(&b, sec, &host, LP2P_MDNS_TYPE_A, LP2P_MDNS_CLASS_IN, ttl);
      lp2p_mdns_build_bytes(&b, (const uint8_t[]){10, 77, 0, (uint8_t)(pi + 2)}, 4);
      lp2p_mdns_build_rr_end(&b);
    }
  }
  int len = lp2p_mdns_build_finish(&b);
  ASSERT(len > 0);
  packet_in(r, a[3], g_buf, (size_t)len);
}

static void op_query(run *r, const uint8_t *a) {
  uint8_t fl = a[0];
  lp2p_mdns_builder b;
  uint16_t id = (uint16_t)(a[1] * 257u);
  lp2p_mdns_build_init(&b, g_buf, sizeof g_buf, id, 0, (fl & 0x80) != 0);
  const lp2p_mdns_name *qn = (fl & 3) == 0 ? &g_service : (fl & 3) == 1 ? &g_meta : (fl & 3) == 2 ? &g_other_service : &g_service;
  uint16_t qt = (fl & 4) ? LP2P_MDNS_TYPE_ANY : (fl & 3) == 3 ? LP2P_MDNS_TYPE_A : LP2P_MDNS_TYPE_PTR;
  uint16_t qc = (uint16_t)(((fl & 8) ? LP2P_MDNS_CLASS_ANY : LP2P_MDNS_CLASS_IN) | ((fl & 0x10) ? LP2P_MDNS_CLASS_FLAG : 0));
  lp2p_mdns_build_question(&b, qn, qt, qc);
  if (fl & 0x20) { /* known answer: our PTR */
    lp2p_mdns_name inst;
    const char *pn = lp2p_mdns_peer_name(r->e);
    ASSERT(lp2p_mdns_name_prepend(&inst, (const uint8_t *)pn, strlen(pn), &g_service) == 0);
    lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ANSWER, &g_service, LP2P_MDNS_TYPE_PTR, LP2P_MDNS_CLASS_IN,
                             ttl_pick(a[1] >> 5));
    lp2p_mdns_build_name(&b, &inst);
    lp2p_mdns_build_rr_end(&b);
  }
  if (fl & 0x40) { /* known answer: someone else's */
    lp2p_mdns_name inst;
    ASSERT(lp2p_mdns_name_prepend(&inst, (const uint8_t *)"inst0a", 6, &g_service) == 0);
    lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ANSWER, &g_service, LP2P_MDNS_TYPE_PTR, LP2P_MDNS_CLASS_IN, 120);
    lp2p_mdns_build_name(&b, &inst);
    lp2p_mdns_build_rr_end(&b);
  }
  int len = lp2p_mdns_build_finish(&b);
  ASSERT(len > 0);
  packet_in(r, a[2], g_buf, (size_t)len);
}

static void op_advance(run *r, const uint8_t *a) {
  lp2p_tstamp delta = (lp2p_tstamp)a[0] * ((a[1] & 0x80) ? 1000u : 10u) + (a[1] & 0x7f);
  lp2p_tstamp target = r->now + delta;
  for (int guard = 0; guard < 200; guard++) {
    lp2p_tstamp dl = lp2p_mdns_next_deadline(r->e);
    if (r->shut) {
      ASSERT(dl == LP2P_TSTAMP_NEVER);
      break;
    }
    if (dl > target) break;
    if (dl > r->now) r->now = dl;
    int rv = lp2p_mdns_tick(r->e, r->now);
    after_call(r, rv);
    if (rv == 0 && !r->f.failed) ASSERT(lp2p_mdns_next_deadline(r->e) > r->now);
    if (lp2p_mdns_next_deadline(r->e) <= r->now) break; /* after a failed allocation it may stay */
  }
  r->now = target;
}

static void op_ifaces(run *r, const uint8_t *a) {
  r->nifs = 0;
  for (int i = 0; i < 4; i++) {
    if (!(a[0] & (1 << i))) continue;
    lp2p_mdns_iface x = g_ifs[i];
    if (i == 1 && (a[0] & 0x10)) x = g_eth0_renumbered;
    if (i == 1 && (a[0] & 0x20)) x = g_eth0_v4only;
    r->ifs[r->nifs++] = x;
  }
  int rv = lp2p_mdns_set_interfaces(r->e, r->ifs, r->nifs, r->now);
  /* NOMEM: before the change (nothing applied) or from the queries it triggers (applied) */
  if (!r->shut) r->ifs_unknown = rv != 0;
  after_call(r, rv);
}

static void op_listen(run *r, const uint8_t *a) {
  int s = (a[1] & 1);
  const lp2p_multiaddr *v[8];
  size_t n = 0;
  for (int i = 0; i < 8; i++)
    if (a[0] & (1 << i)) v[n++] = g_listen[s][i];
  int rv = lp2p_mdns_set_listen_addrs(r->e, v, n, &g_self[s], r->now);
  if (rv == 0 && !r->shut) r->self_idx = s;
  /* NOMEM from the announcement it triggers comes after the change was applied */
  if (rv == LP2P_ERR_NOMEM && s != r->self_idx) r->self_unknown = 1;
  after_call(r, rv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  world_init();
  run r;
  memset(&r, 0, sizeof r);
  uint8_t cb = data[0];
  if (cb & 0x10) r.f.fail_at = 1 + data[1];
  r.lazy = (cb & 0x80) != 0;
  r.model_ok = 1;
  r.now = 1000;
  lp2p_mem mem = {fm_malloc, fm_realloc, fm_free, &r.f};
  uint32_t seed = 12345u + data[1];
  lp2p_mdns_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.struct_size = sizeof cfg;
  cfg.rng = rng;
  cfg.rng_ud = &seed;
  cfg.txt_single_record = (cb & 1) != 0;
  cfg.no_compression = (cb & 2) != 0;
  cfg.report_refresh = (cb & 4) != 0;
  cfg.max_packet = (cb & 8) ? 512 : 0;
  cfg.ttl = (cb & 0x20) ? 2 : 0;
  if (cb & 0x40) cfg.max_peers = 2, cfg.max_addrs_per_peer = 2;
  r.max_packet = (cb & 8) ? 512 : LP2P_MDNS_DEFAULT_MAX_PACKET;
  r.max_addrs = (cb & 0x40) ? 2 : LP2P_MDNS_DEFAULT_MAX_ADDRS;
  int rv = lp2p_mdns_new(&r.e, &cfg, &mem, r.now);
  if (rv) {
    ASSERT(rv == LP2P_ERR_NOMEM && r.f.failed);
    ASSERT(r.f.live == 0);
    return 0;
  }
  const char *pn = lp2p_mdns_peer_name(r.e);
  ASSERT(lp2p_mdns_name_prepend(&r.self_inst, (const uint8_t *)pn, strlen(pn), &g_service) == 0);
  size_t i = 2;
  for (int ops = 0; ops < MAX_OPS && i < size; ops++) {
    uint8_t op = data[i++] % 9;
    uint8_t a[4] = {0, 0, 0, 0};
    size_t need = op == 0 ? 2 : op == 1 ? 4 : op == 2 ? 3 : op == 3 || op == 5 ? 2 : op == 4 || op == 7 ? 1 : 0;
    for (size_t k = 0; k < need && i < size; k++) a[k] = data[i++];
    switch (op) {
    case 0: {
      size_t len = a[1];
      if (len > size - i) len = size - i;
      packet_in(&r, a[0], data + i, len);
      i += len;
      break;
    }
    case 1: op_response(&r, a); break;
    case 2: op_query(&r, a); break;
    case 3: op_advance(&r, a); break;
    case 4: op_ifaces(&r, a); break;
    case 5: op_listen(&r, a); break;
    case 6: after_call(&r, lp2p_mdns_query_now(r.e, r.now)); break;
    case 7:
      if (r.lazy) drain(&r, a[0] % 8u, 0);
      break;
    case 8:
      if (r.lazy) drain(&r, (size_t)-1, 0);
      rv = lp2p_mdns_shutdown(r.e, r.now);
      if (r.shut) {
        ASSERT(rv == LP2P_ERR_STATE);
      } else {
        ASSERT(rv == 0 || rv == LP2P_ERR_NOMEM);
        r.shut = 1;
        drain(&r, (size_t)-1, 1);
      }
      break;
    }
  }
  if (!r.shut) {
    drain(&r, (size_t)-1, 0);
    rv = lp2p_mdns_shutdown(r.e, r.now);
    ASSERT(rv == 0 || rv == LP2P_ERR_NOMEM);
    r.shut = 1;
    drain(&r, (size_t)-1, 1);
  }
  ASSERT(lp2p_mdns_next_deadline(r.e) == LP2P_TSTAMP_NEVER);
  lp2p_mdns_free(r.e);
  ASSERT(r.f.live == 0);
  return 0;
}
