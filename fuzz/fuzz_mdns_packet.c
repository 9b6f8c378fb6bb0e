/* fuzz/fuzz_mdns_packet.c - the mDNS codec and engine on arbitrary packets.
 *
 * Input: one mode byte, then the packet bytes.
 *   mode bit 0   family (0: IPv4, 1: IPv6), bit 1: interface (0: eth0 index 2, 1: lo index 1),
 *   bit 2        source port 5353 or 40000 (legacy unicast), bit 3: feed the packet twice
 *                (dedup/refresh paths), bit 4: txt_single_record, bit 5: no compression,
 *   bit 6        fail the k-th allocation (k = 1 + first packet byte % 32),
 *   bit 7        whole life cycle: first query slot and announcements before the packet, expiry
 *                tick an hour later and shutdown (goodbyes) after it (otherwise only the packet)
 * Checks (abort on failure): the codec never reads out of bounds (ASan); a packet that parses
 * re-encodes (names through the compressing builder) and re-parses to the same names; every
 * packet the engine queues parses; every event is well-formed; nothing leaks through lp2p_mem. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mdns/engine/mdns_codec.h"
#include "mdns/engine/mdns_engine.h"

typedef struct fz {
  long live, count, fail_at;
} fz;
static void *fm_malloc(size_t n, void *u) {
  fz *f = u;
  if (++f->count == f->fail_at) return NULL;
  void *p = malloc(n);
  if (p) f->live++;
  return p;
}
static void *fm_realloc(void *p, size_t n, void *u) {
  fz *f = u;
  if (++f->count == f->fail_at) return NULL;
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
    buf[i] = (uint8_t)*x;
  }
  return 0;
}

static lp2p_mdns_msg msg, msg2;
static uint8_t rebuilt[65536]; /* decompressed names: at most 80 entries x 2 x 255 bytes + 9000 */

static void check_codec(const uint8_t *p, size_t n) {
  if (lp2p_mdns_parse(p, n, &msg)) return;
  lp2p_mdns_builder b;
  lp2p_mdns_build_init(&b, rebuilt, sizeof rebuilt, msg.id, msg.flags, 1);
  for (size_t i = 0; i < msg.nq; i++) lp2p_mdns_build_question(&b, &msg.q[i].name, msg.q[i].type, msg.q[i].qclass);
  for (size_t i = 0; i < msg.nrr; i++) {
    const lp2p_mdns_record *r = &msg.rr[i];
    lp2p_mdns_build_rr_begin(&b, r->section, &r->name, r->type, r->rclass, r->ttl);
    if (r->type == LP2P_MDNS_TYPE_PTR) {
      lp2p_mdns_build_name(&b, &r->target);
    } else if (r->type == LP2P_MDNS_TYPE_SRV) {
      lp2p_mdns_build_u16(&b, r->srv_priority);
      lp2p_mdns_build_u16(&b, r->srv_weight);
      lp2p_mdns_build_u16(&b, r->srv_port);
      lp2p_mdns_build_name(&b, &r->target);
    } else {
      lp2p_mdns_build_bytes(&b, r->rdata, r->rdlen);
    }
    lp2p_mdns_build_rr_end(&b);
  }
  int len = lp2p_mdns_build_finish(&b);
  if (len < 0) abort();
  if ((size_t)len > LP2P_MDNS_MAX_PACKET) return; /* decompressed names can exceed the parse limit */
  if (lp2p_mdns_parse(rebuilt, (size_t)len, &msg2)) abort();
  if (msg2.nq != msg.nq || msg2.nrr != msg.nrr) abort();
  for (size_t i = 0; i < msg.nq; i++)
    if (!lp2p_mdns_name_equal(&msg.q[i].name, &msg2.q[i].name)) abort();
  for (size_t i = 0; i < msg.nrr; i++) {
    if (!lp2p_mdns_name_equal(&msg.rr[i].name, &msg2.rr[i].name) || msg.rr[i].type != msg2.rr[i].type) abort();
    if ((msg.rr[i].type == LP2P_MDNS_TYPE_PTR || msg.rr[i].type == LP2P_MDNS_TYPE_SRV) &&
        !lp2p_mdns_name_equal(&msg.rr[i].target, &msg2.rr[i].target))
      abort();
  }
}

static void drain(lp2p_mdns *e) {
  lp2p_mdns_packet pk;
  while (lp2p_mdns_next_packet(e, &pk)) {
    if (!pk.data || pk.len < 12 || pk.len > LP2P_MDNS_DEFAULT_MAX_PACKET) abort();
    if (lp2p_mdns_parse(pk.data, pk.len, &msg2)) abort();
  }
  lp2p_mdns_event ev;
  while (lp2p_mdns_next_event(e, &ev)) {
    if (ev.type != LP2P_MDNS_EV_DISCOVERED && ev.type != LP2P_MDNS_EV_EXPIRED && ev.type != LP2P_MDNS_EV_REFRESHED &&
        ev.type != LP2P_MDNS_EV_UPDATED)
      abort();
    if (!ev.peer.len) abort();
    if (ev.type != LP2P_MDNS_EV_EXPIRED && (!ev.naddrs || !ev.addrs)) abort();
    for (size_t i = 0; i < ev.naddrs; i++)
      if (lp2p_multiaddr_find_last(ev.addrs[i], LP2P_MA_P2P) < 0) abort();
  }
}

static lp2p_multiaddr *listen[3];
static lp2p_peer_id self;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0];
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  check_codec(p, n);

  if (!listen[0]) {
    lp2p_multiaddr_parse(&listen[0], "/ip4/0.0.0.0/tcp/4001", NULL, 0);
    lp2p_multiaddr_parse(&listen[1], "/ip6/::/udp/4001/quic-v1", NULL, 0);
    lp2p_multiaddr_parse(&listen[2], "/ip4/192.168.1.10/tcp/4002/ws", NULL, 0);
    lp2p_peer_id_parse("12D3KooWLqLxEfJ9nDdEe8Kh8PFvNPQRYDQBwyL7CMM7HhVd5LsX", &self);
  }
  fz f = {0, 0, 0};
  if (mode & 0x40) f.fail_at = 1 + (n ? p[0] % 32 : 0);
  int full = (mode & 0x80) != 0;
  lp2p_mem mem = {fm_malloc, fm_realloc, fm_free, &f};
  uint32_t seed = 7;
  lp2p_mdns_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.struct_size = sizeof cfg;
  cfg.rng = rng;
  cfg.rng_ud = &seed;
  cfg.txt_single_record = (mode & 0x10) != 0;
  cfg.report_refresh = (mode & 0x10) != 0;
  cfg.no_compression = (mode & 0x20) != 0;
  lp2p_mdns *e = NULL;
  if (lp2p_mdns_new(&e, &cfg, &mem, 0) == 0) {
    lp2p_mdns_iface ifs[2];
    memset(ifs, 0, sizeof ifs);
    ifs[0].index = 1;
    ifs[0].loopback = 1;
    ifs[0].naddrs = 2;
    ifs[0].addrs[0].family = 4;
    ifs[0].addrs[0].addr[0] = 127, ifs[0].addrs[0].addr[3] = 1, ifs[0].addrs[0].prefix_len = 8;
    ifs[0].addrs[1].family = 6;
    ifs[0].addrs[1].addr[15] = 1, ifs[0].addrs[1].prefix_len = 128;
    ifs[1].index = 2;
    ifs[1].naddrs = 2;
    ifs[1].addrs[0].family = 4;
    memcpy(ifs[1].addrs[0].addr, "\xc0\xa8\x01\x0a", 4), ifs[1].addrs[0].prefix_len = 24;
    ifs[1].addrs[1].family = 6;
    memcpy(ifs[1].addrs[1].addr, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x10", 16), ifs[1].addrs[1].prefix_len = 64;
    lp2p_mdns_set_interfaces(e, ifs, 2, 0);
    lp2p_mdns_set_listen_addrs(e, (const lp2p_multiaddr *const *)listen, 3, &self, 0);
    if (full) lp2p_mdns_tick(e, 200);
    drain(e);
    int family = (mode & 1) ? 6 : 4;
    uint32_t ifindex = (mode & 2) ? 1 : 2;
    uint16_t port = (mode & 4) ? 40000 : 5353;
    static const uint8_t src[16] = {192, 168, 1, 20};
    lp2p_mdns_packet_in(e, ifindex, family, src, port, p, n, 1000);
    drain(e);
    if (mode & 8) {
      lp2p_mdns_packet_in(e, ifindex, family, src, port, p, n, 1500);
      drain(e);
    }
    if (full) {
      lp2p_mdns_tick(e, 1000 + 3600u * 1000u);
      drain(e);
      lp2p_mdns_shutdown(e, 1000 + 3600u * 1000u);
      drain(e);
    }
    lp2p_mdns_free(e);
  }
  if (f.live != 0) abort();
  return 0;
}
