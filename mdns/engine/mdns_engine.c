/* mdns/engine/mdns_engine.c - sans-IO mDNS responder/querier (see mdns_engine.h). */
#include "mdns/engine/mdns_engine.h"

#include <sodium.h>
#include <string.h>

#include "core/mem.h"
#include "mdns/engine/mdns_codec.h"

#define MAX_STRINGS 64u   /* dnsaddr strings per interface and family */
#define MAX_INSTANCES 16u /* instances considered per received packet */
#define ANNOUNCE_COUNT 2
#define ANNOUNCE_GAP 1000u
#define JITTER_MIN 20u
#define JITTER_SPAN 101u /* 20..120 ms */
#define DEFAULT_SRV_PORT 4001u
#define MAX_QUEUED_PACKETS 512u /* beyond: new packets are dropped (the runtime is not draining) */
#define MAX_QUEUED_EVENTS 1024u
#define MAX_TTL 4500u
#define ANSWER_SOURCES 8u     /* queriers remembered per interface, family and question for the rate limit */
#define FLOOD_SOURCES 16u      /* sources tracked per interface for the per-source packet limit */
#define FLOOD_IFACE_FACTOR 10u /* an interface reads at most 10x the per-source limit */ /* seconds: RFC 6762 §10's longest recommended record TTL (75 min) */

typedef struct pkt_item {
  struct pkt_item *next;
  lp2p_mdns_packet pkt;
  uint8_t data[];
} pkt_item;

/* Extra TXT strings: NUL-terminated, back to back. */
typedef struct txt_set {
  size_t n, bytes;
  char buf[LP2P_MDNS_MAX_TXT_BYTES + LP2P_MDNS_MAX_TXT];
} txt_set;

typedef struct ev_item {
  struct ev_item *next;
  lp2p_mdns_event ev;
  lp2p_multiaddr **addrs;
  txt_set txt;
  const char *txtp[LP2P_MDNS_MAX_TXT];
} ev_item;

typedef struct dnsaddr_str {
  uint8_t len;
  char s[255];
} dnsaddr_str;

/* What we advertise on one interface in packets of one family (collect_strings), computed on
 * first use and kept until the interface's addresses or our listen addresses / peer id change:
 * every query and answer needs it, and computing it walks listen addresses x interface
 * addresses through the multiaddr printer. */
typedef struct adv_cache {
  uint8_t valid;
  uint16_t port;
  size_t n;
  dnsaddr_str *strs; /* n strings (NULL when n is 0) */
} adv_cache;

typedef struct iface_state {
  lp2p_mdns_iface info;
  adv_cache adv[2]; /* [family 4/6] */
  lp2p_tstamp last_answer[2][2]; /* [family 4/6][kind service/meta]: any querier */
  uint8_t answered[2][2];
  lp2p_tstamp deferred[2][2]; /* a multicast answer held back by the gap, due then (0 = none) */
  struct answer_src { /* per querier: the last answer its query got */
    uint8_t used, ip[16];
    lp2p_tstamp at;
  } asrc[2][2][ANSWER_SOURCES];
  lp2p_tstamp flood_start;
  uint32_t flood_count;
  struct flood_src { /* per-source windows (the sources seen most recently) */
    uint8_t family, ip[16];
    lp2p_tstamp start;
    uint32_t count;
  } src[FLOOD_SOURCES];
} iface_state;

typedef struct addr_entry {
  lp2p_multiaddr *ma;
  lp2p_tstamp expires;
  lp2p_tstamp seen, refresh; /* refresh: when to query for it (80 %, then 90 % of its TTL; NEVER after) */
} addr_entry;

/* A link (interface + family) a peer's records were heard on, and the lifetime they got there:
 * the known answers of our query on a link list only what we learned on that link (a peer heard
 * on eth0/IPv4 that we listed on wlan0 or on eth0/IPv6 would stay silent there, and we would
 * never learn its addresses of that link). */
#define PEER_LINKS 4
typedef struct peer_link {
  uint32_t ifindex;
  int family;
  lp2p_tstamp seen, expires;
} peer_link;

typedef struct peer {
  lp2p_peer_id id;
  lp2p_mdns_name instance;
  addr_entry *addrs;
  size_t naddrs;
  txt_set *txt; /* NULL: none */
  peer_link links[PEER_LINKS]; /* the most recently heard ones; the least recent is replaced */
  size_t nlinks;
} peer;

struct lp2p_mdns {
  lp2p_mem mem;
  lp2p_mdns_config cfg;
  char peer_name[64];
  lp2p_mdns_name service, meta, instance, host;
  int have_self;
  lp2p_peer_id self;
  char self_text[LP2P_PEER_ID_MAX_TEXT];
  lp2p_multiaddr **listen;
  size_t nlisten;
  iface_state *ifaces;
  size_t nifaces;
  peer *peers;
  size_t npeers;
  pkt_item *pq_head, *pq_tail, *pcur;
  ev_item *eq_head, *eq_tail, *ecur;
  size_t npq, neq;
  lp2p_tstamp next_query, query_interval, next_announce;
  int announce_left;
  int started; /* the first (jittered) query slot has passed */
  int shut;
  lp2p_mdns_msg msg;
  uint8_t *buf; /* max_packet bytes */
  dnsaddr_str strs[MAX_STRINGS];
  txt_set own_txt; /* our extra TXT strings */
  lp2p_mdns_stats stats;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static int rand_bytes(lp2p_mdns *e, uint8_t *buf, size_t n) {
  if (e->cfg.rng) return e->cfg.rng(e->cfg.rng_ud, buf, n) ? LP2P_ERR_INTERNAL : 0;
  randombytes_buf(buf, n);
  return 0;
}

static int fam_idx(int family) { return family == 6 ? 1 : 0; }
static size_t fam_len(int family) { return family == 6 ? 16 : 4; }

static int iface_has_family(const lp2p_mdns_iface *ifc, int family) {
  for (size_t i = 0; i < ifc->naddrs; i++)
    if (ifc->addrs[i].family == family) return 1;
  return 0;
}

static int in_prefix(const uint8_t *a, const uint8_t *net, unsigned bits, unsigned maxbits) {
  if (bits > maxbits) bits = maxbits;
  size_t full = bits / 8;
  if (memcmp(a, net, full)) return 0;
  unsigned rest = bits % 8;
  if (!rest) return 1;
  uint8_t mask = (uint8_t)(0xFF << (8 - rest));
  return (a[full] & mask) == (net[full] & mask);
}

static int ip_unspecified(const uint8_t *a, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i]) return 0;
  return 1;
}
static int ip_loopback(int family, const uint8_t *a) {
  if (family == 4) return a[0] == 127;
  static const uint8_t one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return memcmp(a, one, 16) == 0;
}
static int ip_multicast(int family, const uint8_t *a) { return family == 4 ? (a[0] & 0xF0) == 0xE0 : a[0] == 0xFF; }
static int ip6_link_local(const uint8_t *a) { return a[0] == 0xFE && (a[1] & 0xC0) == 0x80; }

static iface_state *find_iface(lp2p_mdns *e, uint32_t index) {
  for (size_t i = 0; i < e->nifaces; i++)
    if (e->ifaces[i].info.index == index) return &e->ifaces[i];
  return NULL;
}

/* ---- extra TXT strings ---- */

int lp2p_mdns_txt_valid(const char *s, size_t len) {
  if (!s || len < 3 || len > 255) return 0;
  size_t k = 0;
  while (k < len && s[k] != '=') {
    char c = s[k];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return 0;
    k++;
  }
  if (k == 0 || k > 9 || k == len) return 0;
  if (k == 7 && !memcmp(s, "dnsaddr", 7)) return 0;
  for (size_t i = k; i < len; i++)
    if (s[i] < 0x20 || s[i] > 0x7e) return 0;
  return 1;
}

/* Appends s (len bytes) to t; 0 if it does not fit. */
static int txt_add(txt_set *t, const char *s, size_t len) {
  if (t->n >= LP2P_MDNS_MAX_TXT || t->bytes + len + 1 > sizeof t->buf || t->bytes - t->n + len > LP2P_MDNS_MAX_TXT_BYTES)
    return 0;
  memcpy(t->buf + t->bytes, s, len);
  t->buf[t->bytes + len] = 0;
  t->bytes += len + 1;
  t->n++;
  return 1;
}

static size_t txt_ptrs(const txt_set *t, const char **out, size_t cap) {
  size_t off = 0, i = 0;
  if (!t) return 0;
  for (; i < t->n; i++) {
    if (i < cap) out[i] = t->buf + off;
    off += strlen(t->buf + off) + 1;
  }
  return t->n;
}

static int txt_equal(const txt_set *a, const txt_set *b) {
  size_t na = a ? a->n : 0, nb = b ? b->n : 0;
  if (na != nb) return 0;
  return na == 0 || (a->bytes == b->bytes && !memcmp(a->buf, b->buf, a->bytes));
}

/* ---- output queues ------------------------------------------------------------------------ */

static int enqueue_packet(lp2p_mdns *e, uint32_t ifindex, int family, const uint8_t *dst, uint16_t dst_port,
                          const uint8_t *data, size_t len) {
  if (e->npq >= MAX_QUEUED_PACKETS) {
    e->stats.queue_dropped++;
    return 0;
  }
  pkt_item *it = lp2p__malloc(&e->mem, sizeof *it + len);
  if (!it) return LP2P_ERR_NOMEM;
  memset(&it->pkt, 0, sizeof it->pkt);
  it->next = NULL;
  it->pkt.ifindex = ifindex;
  it->pkt.family = family;
  if (dst) {
    it->pkt.unicast = 1;
    memcpy(it->pkt.dst, dst, fam_len(family));
    it->pkt.dst_port = dst_port;
  } else {
    it->pkt.dst_port = LP2P_MDNS_PORT;
  }
  memcpy(it->data, data, len);
  it->pkt.data = it->data;
  it->pkt.len = len;
  if (e->pq_tail)
    e->pq_tail->next = it;
  else
    e->pq_head = it;
  e->pq_tail = it;
  e->npq++;
  return 0;
}

static void free_event(lp2p_mdns *e, ev_item *it) {
  if (!it) return;
  for (size_t i = 0; i < it->ev.naddrs; i++) lp2p_multiaddr_free(it->addrs[i]);
  lp2p__free(&e->mem, it->addrs);
  lp2p__free(&e->mem, it);
}

static int enqueue_event(lp2p_mdns *e, int type, const peer *p, uint32_t ifindex, lp2p_tstamp now) {
  if (e->neq >= MAX_QUEUED_EVENTS) {
    e->stats.queue_dropped++;
    return 0;
  }
  ev_item *it = lp2p__calloc(&e->mem, 1, sizeof *it);
  if (!it) return LP2P_ERR_NOMEM;
  it->ev.type = type;
  it->ev.peer = p->id;
  it->ev.ifindex = ifindex;
  if (type != LP2P_MDNS_EV_EXPIRED && p->naddrs) {
    it->addrs = lp2p__calloc(&e->mem, p->naddrs, sizeof *it->addrs);
    if (!it->addrs) {
      free_event(e, it);
      return LP2P_ERR_NOMEM;
    }
    lp2p_tstamp last = now;
    for (size_t i = 0; i < p->naddrs; i++) {
      it->addrs[i] = lp2p_multiaddr_dup(p->addrs[i].ma);
      if (!it->addrs[i]) {
        free_event(e, it);
        return LP2P_ERR_NOMEM;
      }
      it->ev.naddrs++;
      if (p->addrs[i].expires > last) last = p->addrs[i].expires;
    }
    it->ev.ttl = (uint32_t)((last - now + 999) / 1000);
  }
  it->ev.addrs = (const lp2p_multiaddr *const *)it->addrs;
  if (type != LP2P_MDNS_EV_EXPIRED && p->txt) {
    it->txt = *p->txt;
    it->ev.ntxt = txt_ptrs(&it->txt, it->txtp, LP2P_MDNS_MAX_TXT);
  }
  it->ev.txt = it->txtp;
  if (e->eq_tail)
    e->eq_tail->next = it;
  else
    e->eq_head = it;
  e->eq_tail = it;
  e->neq++;
  return 0;
}

int lp2p_mdns_next_packet(lp2p_mdns *e, lp2p_mdns_packet *pkt) {
  lp2p__free(&e->mem, e->pcur);
  e->pcur = e->pq_head;
  if (!e->pcur) return 0;
  e->pq_head = e->pcur->next;
  if (!e->pq_head) e->pq_tail = NULL;
  e->npq--;
  *pkt = e->pcur->pkt;
  return 1;
}

int lp2p_mdns_next_event(lp2p_mdns *e, lp2p_mdns_event *ev) {
  free_event(e, e->ecur);
  e->ecur = e->eq_head;
  if (!e->ecur) return 0;
  e->eq_head = e->ecur->next;
  if (!e->eq_head) e->eq_tail = NULL;
  e->neq--;
  *ev = e->ecur->ev;
  return 1;
}

/* ---- what we advertise -------------------------------------------------------------------- */

/* Text form of a bare IP ("/ip4/1.2.3.4") through the multiaddr printer; length or <0. */
static int ip_text(lp2p_mdns *e, int family, const uint8_t *ip, char *buf, size_t cap) {
  uint8_t b[17];
  b[0] = family == 6 ? LP2P_MA_IP6 : LP2P_MA_IP4;
  memcpy(b + 1, ip, fam_len(family));
  lp2p_multiaddr *ma;
  int rv = lp2p_multiaddr_from_bytes_mem(&ma, b, 1 + fam_len(family), &e->mem, NULL, 0);
  if (rv) return rv;
  rv = lp2p_multiaddr_to_string(ma, buf, cap);
  lp2p_multiaddr_free(ma);
  return rv;
}

/* Adds "dnsaddr=" + head + tail (+ "/p2p/<self>" when need_p2p) if it fits 255 bytes and is new. */
static void add_string(lp2p_mdns *e, size_t *n, const char *head, size_t hl, const char *tail, size_t tl,
                       int need_p2p) {
  dnsaddr_str s;
  size_t idl = need_p2p ? 5 + strlen(e->self_text) : 0;
  size_t total = 8 + hl + tl + idl;
  if (total > 255 || *n >= MAX_STRINGS) return;
  memcpy(s.s, "dnsaddr=", 8);
  memcpy(s.s + 8, head, hl);
  memcpy(s.s + 8 + hl, tail, tl);
  if (need_p2p) {
    memcpy(s.s + 8 + hl + tl, "/p2p/", 5);
    memcpy(s.s + 8 + hl + tl + 5, e->self_text, idl - 5);
  }
  s.len = (uint8_t)total;
  for (size_t i = 0; i < *n; i++)
    if (e->strs[i].len == s.len && !memcmp(e->strs[i].s, s.s, s.len)) return;
  e->strs[(*n)++] = s;
}

/* Fills e->strs with the strings advertised on ifc in packets of `family`; returns their count and
 * the SRV port in *port. *partial is set when an allocation failed (some string may be missing). */
static size_t collect_strings(lp2p_mdns *e, const lp2p_mdns_iface *ifc, int family, uint16_t *port, int *partial) {
  size_t n = 0;
  *partial = 0;
  int have_tcp = 0, have_udp = 0;
  *port = DEFAULT_SRV_PORT;
  if (!e->have_self) return 0;
  for (size_t i = 0; i < e->nlisten; i++) {
    const lp2p_multiaddr *ma = e->listen[i];
    uint32_t code;
    const uint8_t *v;
    size_t vl;
    if (lp2p_multiaddr_component(ma, 0, &code, &v, &vl)) continue;
    if (!((family == 4 && code == LP2P_MA_IP4 && vl == 4) || (family == 6 && code == LP2P_MA_IP6 && vl == 16)))
      continue;
    if (lp2p_multiaddr_find_last(ma, LP2P_MA_P2P_CIRCUIT) >= 0) continue;
    size_t count = lp2p_multiaddr_count(ma);
    int p2p = lp2p_multiaddr_find_last(ma, LP2P_MA_P2P);
    int need_p2p = 1;
    if (p2p >= 0) {
      const uint8_t *pv;
      size_t pl;
      if ((size_t)p2p != count - 1 || lp2p_multiaddr_component(ma, (size_t)p2p, NULL, &pv, &pl)) continue;
      if (pl != e->self.len || memcmp(pv, e->self.bytes, pl)) continue;
      need_p2p = 0;
    }
    if (ip_multicast(family, v)) continue;
    char text[300];
    int tl = lp2p_multiaddr_to_string(ma, text, sizeof text);
    if (tl < 0) continue;
    const char *tail = strchr(text + 1, '/'); /* after "/ip4" */
    tail = tail ? strchr(tail + 1, '/') : NULL; /* after the address */
    if (!tail) tail = text + tl;
    size_t before = n;
    if (ip_unspecified(v, vl)) {
      for (size_t k = 0; k < ifc->naddrs; k++) {
        const lp2p_mdns_ifaddr *ia = &ifc->addrs[k];
        if (ia->family != family || ip_unspecified(ia->addr, vl) || ip_multicast(family, ia->addr)) continue;
        if (family == 6 && ip6_link_local(ia->addr)) continue;
        if (ip_loopback(family, ia->addr) && !ifc->loopback) continue;
        char head[64];
        int hl = ip_text(e, family, ia->addr, head, sizeof head);
        if (hl < 0) {
          *partial = 1;
          continue;
        }
        add_string(e, &n, head, (size_t)hl, tail, strlen(tail), need_p2p);
      }
    } else {
      if (ip_loopback(family, v) && !ifc->loopback) continue;
      if (family == 6 && ip6_link_local(v)) continue; /* a dnsaddr cannot carry the zone */
      int reachable = 0;
      for (size_t k = 0; k < ifc->naddrs && !reachable; k++) {
        const lp2p_mdns_ifaddr *ia = &ifc->addrs[k];
        if (ia->family == family && in_prefix(v, ia->addr, ia->prefix_len, family == 6 ? 128 : 32)) reachable = 1;
      }
      if (!reachable) continue;
      add_string(e, &n, text, (size_t)(tail - text), tail, strlen(tail), need_p2p);
    }
    if (n > before && !(have_tcp && have_udp)) {
      for (size_t c = 1; c < count; c++) {
        const uint8_t *pv;
        size_t pl;
        if (lp2p_multiaddr_component(ma, c, &code, &pv, &pl) || pl != 2) continue;
        uint16_t pn = (uint16_t)((pv[0] << 8) | pv[1]);
        if (code == LP2P_MA_TCP && !have_tcp) {
          have_tcp = 1;
          *port = pn;
        } else if (code == LP2P_MA_UDP && !have_udp && !have_tcp) {
          have_udp = 1;
          *port = pn;
        }
        break;
      }
    }
  }
  return n;
}

static void adv_reset(lp2p_mdns *e, iface_state *ifs) {
  for (int fi = 0; fi < 2; fi++) {
    lp2p__free(&e->mem, ifs->adv[fi].strs);
    memset(&ifs->adv[fi], 0, sizeof ifs->adv[fi]);
  }
}

/* The strings advertised on ifs in packets of `family` (the cache, or e->strs when it cannot be
 * kept for lack of memory); their count in *n, the SRV port in *port. */
static const dnsaddr_str *advertised(lp2p_mdns *e, iface_state *ifs, int family, size_t *n, uint16_t *port) {
  adv_cache *c = &ifs->adv[fam_idx(family)];
  if (!c->valid) {
    int partial;
    size_t k = collect_strings(e, &ifs->info, family, port, &partial);
    dnsaddr_str *copy = k && !partial ? lp2p__malloc(&e->mem, k * sizeof *copy) : NULL;
    if (partial || (k && !copy)) { /* out of memory: used this time, not kept */
      *n = k;
      return e->strs;
    }
    if (k) memcpy(copy, e->strs, k * sizeof *copy);
    c->valid = 1;
    c->n = k;
    c->port = *port;
    c->strs = copy;
  }
  *n = c->n;
  *port = c->port;
  return c->strs;
}

/* Builds one response carrying strings [i, j) into e->buf; length or <0. */
static int build_response(lp2p_mdns *e, const lp2p_mdns_iface *ifc, int family, const dnsaddr_str *strs, size_t i,
                          size_t j, uint16_t port, uint32_t ttl, uint16_t id) {
  lp2p_mdns_builder b;
  lp2p_mdns_build_init(&b, e->buf, e->cfg.max_packet, id, LP2P_MDNS_FLAG_QR | LP2P_MDNS_FLAG_AA,
                       !e->cfg.no_compression);
  lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ANSWER, &e->service, LP2P_MDNS_TYPE_PTR, LP2P_MDNS_CLASS_IN, ttl);
  lp2p_mdns_build_name(&b, &e->instance);
  lp2p_mdns_build_rr_end(&b);
  if (j > i && e->own_txt.n) { /* before the dnsaddr records: go keeps the last TXT record */
    lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ADDITIONAL, &e->instance, LP2P_MDNS_TYPE_TXT, LP2P_MDNS_CLASS_IN, ttl);
    const char *xs[LP2P_MDNS_MAX_TXT];
    size_t nx = txt_ptrs(&e->own_txt, xs, LP2P_MDNS_MAX_TXT);
    for (size_t k = 0; k < nx; k++) lp2p_mdns_build_string(&b, xs[k], strlen(xs[k]));
    lp2p_mdns_build_rr_end(&b);
  }
  if (j > i) {
    for (size_t k = i; k < j; k++) {
      /* go keeps the last TXT record: the first string (first listen address) goes last */
      size_t s = e->cfg.txt_single_record ? k : (k + 1 < j ? k + 1 : i);
      if (k == i || !e->cfg.txt_single_record)
        lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ADDITIONAL, &e->instance, LP2P_MDNS_TYPE_TXT, LP2P_MDNS_CLASS_IN,
                                 ttl);
      lp2p_mdns_build_string(&b, strs[s].s, strs[s].len);
      if (k + 1 == j || !e->cfg.txt_single_record) lp2p_mdns_build_rr_end(&b);
    }
    lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ADDITIONAL, &e->instance, LP2P_MDNS_TYPE_SRV, LP2P_MDNS_CLASS_IN, ttl);
    lp2p_mdns_build_u16(&b, 0);
    lp2p_mdns_build_u16(&b, 0);
    lp2p_mdns_build_u16(&b, port);
    lp2p_mdns_build_name(&b, &e->host);
    lp2p_mdns_build_rr_end(&b);
    for (size_t k = 0; k < ifc->naddrs; k++) {
      const lp2p_mdns_ifaddr *ia = &ifc->addrs[k];
      if (ia->family != family) continue;
      lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ADDITIONAL, &e->host,
                               family == 6 ? LP2P_MDNS_TYPE_AAAA : LP2P_MDNS_TYPE_A, LP2P_MDNS_CLASS_IN, ttl);
      lp2p_mdns_build_bytes(&b, ia->addr, fam_len(family));
      lp2p_mdns_build_rr_end(&b);
    }
  }
  return lp2p_mdns_build_finish(&b);
}

/* Queues our response(s) for ifc/family: to the group (dst NULL) or unicast. */
static int emit_responses(lp2p_mdns *e, iface_state *ifs, int family, uint32_t ttl, uint16_t id, const uint8_t *dst,
                          uint16_t dst_port) {
  const lp2p_mdns_iface *ifc = &ifs->info;
  uint16_t port;
  size_t n;
  const dnsaddr_str *strs = advertised(e, ifs, family, &n, &port);
  if (n == 0) {
    if (ttl || !e->have_self) return 0;
    int len = build_response(e, ifc, family, strs, 0, 0, port, 0, id);
    if (len < 0) return 0;
    e->stats.responses_sent++;
    return enqueue_packet(e, ifc->index, family, dst, dst_port, e->buf, (size_t)len);
  }
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && build_response(e, ifc, family, strs, i, j + 1, port, ttl, id) >= 0) j++;
    if (j == i) { /* one string does not fit (tiny max_packet): skip it */
      i++;
      continue;
    }
    int len = build_response(e, ifc, family, strs, i, j, port, ttl, id); /* rebuild the last fitting one */
    if (len < 0) return 0;
    e->stats.responses_sent++;
    int rv = enqueue_packet(e, ifc->index, family, dst, dst_port, e->buf, (size_t)len);
    if (rv) return rv;
    i = j;
  }
  return 0;
}

static int emit_meta(lp2p_mdns *e, const lp2p_mdns_iface *ifc, int family, uint16_t id, const uint8_t *dst,
                     uint16_t dst_port) {
  lp2p_mdns_builder b;
  lp2p_mdns_build_init(&b, e->buf, e->cfg.max_packet, id, LP2P_MDNS_FLAG_QR | LP2P_MDNS_FLAG_AA,
                       !e->cfg.no_compression);
  lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ANSWER, &e->meta, LP2P_MDNS_TYPE_PTR, LP2P_MDNS_CLASS_IN, e->cfg.ttl);
  lp2p_mdns_build_name(&b, &e->service);
  lp2p_mdns_build_rr_end(&b);
  int len = lp2p_mdns_build_finish(&b);
  if (len < 0) return 0;
  e->stats.responses_sent++;
  return enqueue_packet(e, ifc->index, family, dst, dst_port, e->buf, (size_t)len);
}

/* Our query on ifc/family: the PTR question and, as known answers (RFC 6762 §7.1), the PTR of every
 * peer heard on that interface and family whose records from there still have at least half of
 * their TTL, with the TTL left: such a peer stays silent there until our copy is past half-life
 * (a peer heard elsewhere only is not named: it answers on this link too). Our own PTR is
 * listed too wherever we would answer (the query loops back to us: without it we would answer
 * ourselves, to no one's use; a co-located node is not named and still answers). With nothing to
 * list the packet is byte-identical to js-libp2p's query. Peers that do not fit in max_packet are
 * left out (they answer). */
static int build_query(lp2p_mdns *e, iface_state *ifs, int family, lp2p_tstamp now) {
  lp2p_mdns_builder b;
  lp2p_mdns_build_init(&b, e->buf, e->cfg.max_packet, 0, 0, !e->cfg.no_compression);
  lp2p_mdns_build_question(&b, &e->service, LP2P_MDNS_TYPE_PTR, LP2P_MDNS_CLASS_IN);
  uint16_t port;
  size_t nstr;
  advertised(e, ifs, family, &nstr, &port);
  if (nstr > 0) {
    lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ANSWER, &e->service, LP2P_MDNS_TYPE_PTR, LP2P_MDNS_CLASS_IN, e->cfg.ttl);
    lp2p_mdns_build_name(&b, &e->instance);
    lp2p_mdns_build_rr_end(&b);
  }
  for (size_t i = 0; i < e->npeers; i++) {
    const peer *p = &e->peers[i];
    const peer_link *l = NULL;
    for (size_t k = 0; k < p->nlinks && !l; k++)
      if (p->links[k].ifindex == ifs->info.index && p->links[k].family == family) l = &p->links[k];
    if (!l || l->expires <= now || (l->expires - now) * 2 < l->expires - l->seen) continue;
    lp2p_tstamp left = l->expires - now, last = now; /* capped by the addresses still held */
    for (size_t k = 0; k < p->naddrs; k++)
      if (p->addrs[k].expires > last) last = p->addrs[k].expires;
    if (last - now < left) left = last - now;
    if (left < 1000 || !p->instance.len) continue;
    if (b.len + e->service.len + 10u + p->instance.len > b.cap) break; /* the record uncompressed */
    lp2p_mdns_build_rr_begin(&b, LP2P_MDNS_SEC_ANSWER, &e->service, LP2P_MDNS_TYPE_PTR, LP2P_MDNS_CLASS_IN,
                             (uint32_t)(left / 1000));
    lp2p_mdns_build_name(&b, &p->instance);
    lp2p_mdns_build_rr_end(&b);
  }
  return lp2p_mdns_build_finish(&b);
}

static int send_queries(lp2p_mdns *e, lp2p_tstamp now) {
  for (size_t i = 0; i < e->nifaces; i++) {
    for (int family = 4; family <= 6; family += 2) {
      if (!iface_has_family(&e->ifaces[i].info, family)) continue;
      int len = build_query(e, &e->ifaces[i], family, now);
      if (len < 0) return LP2P_ERR_INTERNAL;
      int rv = enqueue_packet(e, e->ifaces[i].info.index, family, NULL, 0, e->buf, (size_t)len);
      if (rv) return rv;
      e->stats.queries_sent++;
    }
  }
  return 0;
}

static int announce_all(lp2p_mdns *e, uint32_t ttl) {
  for (size_t i = 0; i < e->nifaces; i++) {
    for (int family = 4; family <= 6; family += 2) {
      if (!iface_has_family(&e->ifaces[i].info, family)) continue;
      int rv = emit_responses(e, &e->ifaces[i], family, ttl, 0, NULL, 0);
      if (rv) return rv;
    }
  }
  return 0;
}

/* ---- peers -------------------------------------------------------------------------------- */

static void peer_clear(lp2p_mdns *e, peer *p) {
  for (size_t i = 0; i < p->naddrs; i++) lp2p_multiaddr_free(p->addrs[i].ma);
  lp2p__free(&e->mem, p->addrs);
  lp2p__free(&e->mem, p->txt);
  p->addrs = NULL;
  p->txt = NULL;
  p->naddrs = 0;
}

static void peer_remove(lp2p_mdns *e, size_t idx) {
  peer_clear(e, &e->peers[idx]);
  e->peers[idx] = e->peers[--e->npeers];
}

static peer *find_peer(lp2p_mdns *e, const lp2p_peer_id *id) {
  for (size_t i = 0; i < e->npeers; i++)
    if (lp2p_peer_id_equal(&e->peers[i].id, id)) return &e->peers[i];
  return NULL;
}

static int run_expiry(lp2p_mdns *e, lp2p_tstamp now) {
  int rv = 0;
  for (size_t i = 0; i < e->npeers;) {
    peer *p = &e->peers[i];
    for (size_t k = 0; k < p->naddrs;) {
      if (p->addrs[k].expires <= now) {
        lp2p_multiaddr_free(p->addrs[k].ma);
        p->addrs[k] = p->addrs[--p->naddrs];
      } else {
        k++;
      }
    }
    if (p->naddrs == 0) {
      int r = enqueue_event(e, LP2P_MDNS_EV_EXPIRED, p, 0, now);
      if (r) rv = r;
      peer_remove(e, i);
      continue;
    }
    i++;
  }
  return rv;
}

/* One instance of a response: its addresses (ttl 0 = goodbye). */
static int learn(lp2p_mdns *e, const lp2p_mdns_name *instance, const lp2p_mdns_record *const *txts, size_t ntxt,
                 int have_ptr, uint32_t ptr_ttl, uint32_t ifindex, int family, lp2p_tstamp now) {
  lp2p_peer_id id = {0};
  lp2p_multiaddr *mas[MAX_STRINGS];
  uint32_t ttls[MAX_STRINGS];
  size_t nma = 0;
  int rv = 0;
  txt_set xt;
  xt.n = xt.bytes = 0;
  const iface_state *ifs = find_iface(e, ifindex);
  int lan_loopback_ok = ifs && ifs->info.loopback;
  for (size_t t = 0; t < ntxt; t++) {
    const lp2p_mdns_record *r = txts[t];
    size_t off = 0, sl;
    const uint8_t *s;
    while (lp2p_mdns_txt_next(r->rdata, r->rdlen, &off, &s, &sl) == 1) {
      if (sl < 3 || nma >= MAX_STRINGS) continue;
      static const char key[] = "dnsaddr=";
      int match = sl > 8;
      for (size_t k = 0; k < 8 && match; k++) {
        uint8_t c = s[k];
        if (c >= 'A' && c <= 'Z') c = (uint8_t)(c + 32);
        if (c != (uint8_t)key[k]) match = 0;
      }
      if (!match) {
        if (lp2p_mdns_txt_valid((const char *)s, sl)) txt_add(&xt, (const char *)s, sl);
        continue;
      }
      lp2p_multiaddr *ma;
      if (lp2p_multiaddr_parse_mem(&ma, (const char *)s + 8, sl - 8, &e->mem, NULL, 0)) continue;
      size_t count = lp2p_multiaddr_count(ma);
      uint32_t code;
      const uint8_t *pv;
      size_t pl;
      lp2p_peer_id pid;
      if (lp2p_multiaddr_component(ma, count - 1, &code, &pv, &pl) || code != LP2P_MA_P2P ||
          lp2p_peer_id_from_bytes(pv, pl, &pid) || (id.len && !lp2p_peer_id_equal(&id, &pid))) {
        lp2p_multiaddr_free(ma);
        continue;
      }
      id = pid;
      /* a loopback address heard on a LAN interface is the sender's loopback, not ours: useless,
       * and a dial to it would reach whatever listens on our own host (go advertises ::1) */
      const uint8_t *iv;
      size_t il;
      if (!lan_loopback_ok && lp2p_multiaddr_component(ma, 0, &code, &iv, &il) == 0 &&
          ((code == LP2P_MA_IP4 && il == 4 && ip_loopback(4, iv)) || (code == LP2P_MA_IP6 && il == 16 && ip_loopback(6, iv)))) {
        lp2p_multiaddr_free(ma);
        continue;
      }
      mas[nma] = ma;
      ttls[nma] = have_ptr && ptr_ttl < r->ttl ? ptr_ttl : r->ttl;
      if (ttls[nma] > MAX_TTL) ttls[nma] = MAX_TTL;
      nma++;
    }
  }
  peer *p = NULL;
  if (id.len) {
    if (e->have_self && lp2p_peer_id_equal(&id, &e->self)) goto done;
    p = find_peer(e, &id);
  } else if (have_ptr && ptr_ttl == 0) {
    for (size_t i = 0; i < e->npeers && !p; i++)
      if (lp2p_mdns_name_equal(&e->peers[i].instance, instance)) p = &e->peers[i];
  }
  if (have_ptr && ptr_ttl == 0) { /* goodbye of the whole instance */
    if (p) {
      rv = enqueue_event(e, LP2P_MDNS_EV_EXPIRED, p, ifindex, now);
      peer_remove(e, (size_t)(p - e->peers));
    }
    goto done;
  }
  if (!nma) goto done;
  int changed = 0;
  if (!p) {
    size_t live = 0;
    for (size_t i = 0; i < nma; i++) live += ttls[i] != 0;
    if (!live || e->npeers >= e->cfg.max_peers) goto done;
    if (!e->peers) {
      e->peers = lp2p__calloc(&e->mem, e->cfg.max_peers, sizeof *e->peers);
      if (!e->peers) {
        rv = LP2P_ERR_NOMEM;
        goto done;
      }
    }
    p = &e->peers[e->npeers];
    memset(p, 0, sizeof *p);
    p->addrs = lp2p__calloc(&e->mem, e->cfg.max_addrs_per_peer, sizeof *p->addrs);
    if (!p->addrs) {
      rv = LP2P_ERR_NOMEM;
      goto done;
    }
    p->id = id;
    e->npeers++;
  }
  if (!lp2p_mdns_name_equal(&p->instance, instance)) p->nlinks = 0; /* links are those of its PTR record */
  p->instance = *instance;
  size_t before = p->naddrs;
  int live_in_packet = 0;
  for (size_t i = 0; i < nma; i++) live_in_packet |= ttls[i] != 0;
  for (size_t i = 0; i < nma; i++) {
    size_t k;
    for (k = 0; k < p->naddrs; k++)
      if (lp2p_multiaddr_equal(p->addrs[k].ma, mas[i])) break;
    if (ttls[i] == 0) {
      if (k < p->naddrs) {
        lp2p_multiaddr_free(p->addrs[k].ma);
        p->addrs[k] = p->addrs[--p->naddrs];
      }
      continue;
    }
    lp2p_tstamp exp = now + (lp2p_tstamp)ttls[i] * 1000u;
    lp2p_tstamp refresh = now + (lp2p_tstamp)ttls[i] * 800u;
    if (k < p->naddrs) {
      p->addrs[k].expires = exp;
      p->addrs[k].seen = now;
      p->addrs[k].refresh = refresh;
    } else if (p->naddrs < e->cfg.max_addrs_per_peer) {
      p->addrs[p->naddrs].ma = mas[i];
      p->addrs[p->naddrs].expires = exp;
      p->addrs[p->naddrs].seen = now;
      p->addrs[p->naddrs].refresh = refresh;
      p->naddrs++;
      mas[i] = NULL;
      changed = 1;
    }
  }
  if (p->naddrs && live_in_packet) { /* the link it was heard on, with the longest TTL of the packet */
    uint32_t longest = 0;
    for (size_t i = 0; i < nma; i++)
      if (ttls[i] > longest) longest = ttls[i];
    size_t k;
    for (k = 0; k < p->nlinks; k++)
      if (p->links[k].ifindex == ifindex && p->links[k].family == family) break;
    if (k == p->nlinks) {
      if (p->nlinks < PEER_LINKS) {
        p->nlinks++;
      } else {
        k = 0;
        for (size_t j = 1; j < PEER_LINKS; j++)
          if (p->links[j].seen < p->links[k].seen) k = j;
      }
    }
    p->links[k].ifindex = ifindex;
    p->links[k].family = family;
    p->links[k].seen = now;
    p->links[k].expires = now + (lp2p_tstamp)longest * 1000u;
  }
  int txt_changed = 0;
  if (p->naddrs && live_in_packet && !txt_equal(p->txt, &xt)) {
    if (!xt.n) {
      lp2p__free(&e->mem, p->txt);
      p->txt = NULL;
      txt_changed = 1;
    } else if (p->txt || (p->txt = lp2p__malloc(&e->mem, sizeof *p->txt))) {
      *p->txt = xt;
      txt_changed = 1;
    }
  }
  if (p->naddrs == 0) {
    if (before) rv = enqueue_event(e, LP2P_MDNS_EV_EXPIRED, p, ifindex, now);
    peer_remove(e, (size_t)(p - e->peers));
  } else if (changed) {
    rv = enqueue_event(e, LP2P_MDNS_EV_DISCOVERED, p, ifindex, now);
  } else if (txt_changed && before) {
    rv = enqueue_event(e, LP2P_MDNS_EV_UPDATED, p, ifindex, now);
  } else if (e->cfg.report_refresh && before) {
    rv = enqueue_event(e, LP2P_MDNS_EV_REFRESHED, p, ifindex, now);
  }
done:
  for (size_t i = 0; i < nma; i++) lp2p_multiaddr_free(mas[i]);
  return rv;
}

static int is_instance_of_service(const lp2p_mdns *e, const lp2p_mdns_name *n) {
  if (!n->len || n->wire[0] == 0) return 0;
  size_t skip = 1u + n->wire[0];
  if (n->len - skip != e->service.len) return 0;
  lp2p_mdns_name suffix;
  suffix.len = (uint8_t)(n->len - skip);
  memcpy(suffix.wire, n->wire + skip, suffix.len);
  return lp2p_mdns_name_equal(&suffix, &e->service);
}

static int handle_response(lp2p_mdns *e, const lp2p_mdns_msg *m, uint32_t ifindex, int family, lp2p_tstamp now) {
  lp2p_mdns_name inst[MAX_INSTANCES];
  uint32_t ptr_ttl[MAX_INSTANCES];
  uint8_t has_ptr[MAX_INSTANCES];
  size_t ni = 0;
  /* Instances: PTR targets of our service (any section), then owners of stray TXT records. */
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < m->nrr; i++) {
      const lp2p_mdns_record *r = &m->rr[i];
      const lp2p_mdns_name *name;
      if (pass == 0 && r->type == LP2P_MDNS_TYPE_PTR && lp2p_mdns_name_equal(&r->name, &e->service))
        name = &r->target;
      else if (pass == 1 && r->type == LP2P_MDNS_TYPE_TXT && is_instance_of_service(e, &r->name))
        name = &r->name;
      else
        continue;
      if (lp2p_mdns_name_equal(name, &e->instance)) continue; /* our own */
      size_t k;
      for (k = 0; k < ni; k++)
        if (lp2p_mdns_name_equal(&inst[k], name)) break;
      if (k < ni) {
        if (pass == 0 && r->ttl < ptr_ttl[k]) ptr_ttl[k] = r->ttl;
        continue;
      }
      if (ni >= MAX_INSTANCES) continue;
      inst[ni] = *name;
      ptr_ttl[ni] = r->ttl;
      has_ptr[ni] = pass == 0;
      ni++;
    }
  }
  int rv = 0;
  for (size_t k = 0; k < ni; k++) {
    const lp2p_mdns_record *txts[LP2P_MDNS_MAX_RECORDS];
    size_t nt = 0;
    for (size_t i = 0; i < m->nrr; i++)
      if (m->rr[i].type == LP2P_MDNS_TYPE_TXT && lp2p_mdns_name_equal(&m->rr[i].name, &inst[k]))
        txts[nt++] = &m->rr[i];
    if (nt == 0 && ni == 1) /* lenient: a lone instance takes every TXT of the packet */
      for (size_t i = 0; i < m->nrr; i++)
        if (m->rr[i].type == LP2P_MDNS_TYPE_TXT && !lp2p_mdns_name_equal(&m->rr[i].name, &e->instance))
          txts[nt++] = &m->rr[i];
    int r = learn(e, &inst[k], txts, nt, has_ptr[k], ptr_ttl[k], ifindex, family, now);
    if (r) rv = r;
  }
  return rv;
}

static int handle_query(lp2p_mdns *e, iface_state *ifs, int family, const uint8_t *src, uint16_t src_port,
                        const lp2p_mdns_msg *m, lp2p_tstamp now) {
  int want[2] = {0, 0}, unicast[2] = {0, 0};
  for (size_t i = 0; i < m->nq; i++) {
    const lp2p_mdns_question *q = &m->q[i];
    if (q->type != LP2P_MDNS_TYPE_PTR && q->type != LP2P_MDNS_TYPE_ANY) continue;
    int kind = lp2p_mdns_name_equal(&q->name, &e->service) ? 0 : lp2p_mdns_name_equal(&q->name, &e->meta) ? 1 : -1;
    if (kind < 0) continue;
    want[kind] = 1;
    if (q->unicast) unicast[kind] = 1;
  }
  /* Known-answer suppression (RFC 6762 §7.1). */
  for (size_t i = 0; i < m->nrr && want[0]; i++) {
    const lp2p_mdns_record *r = &m->rr[i];
    if (r->section == LP2P_MDNS_SEC_ANSWER && r->type == LP2P_MDNS_TYPE_PTR &&
        lp2p_mdns_name_equal(&r->name, &e->service) && lp2p_mdns_name_equal(&r->target, &e->instance) &&
        (uint64_t)r->ttl * 2 >= e->cfg.ttl)
      want[0] = 0;
  }
  int legacy = src_port != LP2P_MDNS_PORT;
  int fi = fam_idx(family);
  for (int kind = 0; kind < 2; kind++) {
    if (!want[kind]) continue;
    /* Rate limit: one answer per answer_interval to the same querier (a source without address
     * counts as one querier), and answers at least answer_interval / 8 apart on the interface
     * whoever asks, so that a newcomer's query right after someone else's still gets its answer
     * (the first query of a node that just started usually follows our own looped-back one). */
    struct answer_src *as = NULL, *oldest = &ifs->asrc[fi][kind][0];
    uint8_t key[16] = {0};
    if (src) memcpy(key, src, fam_len(family));
    for (size_t k = 0; k < ANSWER_SOURCES && !as; k++) {
      struct answer_src *c = &ifs->asrc[fi][kind][k];
      if (c->used && !memcmp(c->ip, key, 16)) as = c;
      else if (!c->used || (oldest->used && c->at < oldest->at)) oldest = c;
    }
    if (as && now - as->at < e->cfg.answer_interval) {
      e->stats.answers_rate_limited++;
      continue;
    }
    if (ifs->answered[fi][kind] && now - ifs->last_answer[fi][kind] < e->cfg.answer_interval / 8) {
      /* too soon after an answer to someone else: the multicast answer goes out once the gap is over */
      e->stats.answers_rate_limited++;
      if (!ifs->deferred[fi][kind]) ifs->deferred[fi][kind] = ifs->last_answer[fi][kind] + e->cfg.answer_interval / 8;
      if (!as) {
        as = oldest;
        as->used = 1;
        memcpy(as->ip, key, 16);
      }
      as->at = ifs->deferred[fi][kind];
      continue;
    }
    uint64_t sent_before = e->stats.responses_sent;
    int rv;
    if (kind == 0) {
      rv = emit_responses(e, ifs, family, e->cfg.ttl, 0, NULL, 0);
      if (!rv && (unicast[0] || legacy) && src)
        rv = emit_responses(e, ifs, family, e->cfg.ttl, legacy ? m->id : 0, src, src_port);
    } else {
      rv = emit_meta(e, &ifs->info, family, 0, NULL, 0);
      if (!rv && (unicast[1] || legacy) && src) rv = emit_meta(e, &ifs->info, family, legacy ? m->id : 0, src, src_port);
    }
    if (e->stats.responses_sent != sent_before) { /* only what went out counts */
      ifs->answered[fi][kind] = 1;
      ifs->last_answer[fi][kind] = now;
      if (!as) {
        as = oldest;
        as->used = 1;
        memcpy(as->ip, key, 16);
      }
      as->at = now;
    }
    if (rv) return rv;
  }
  return 0;
}

int lp2p_mdns_packet_in(lp2p_mdns *e, uint32_t ifindex, int family, const uint8_t *src, uint16_t src_port,
                        const uint8_t *data, size_t len, lp2p_tstamp now) {
  if (!e || (family != 4 && family != 6) || (!data && len)) return LP2P_ERR_INVAL;
  if (e->shut) return LP2P_ERR_STATE;
  e->stats.packets_in++;
  iface_state *ifs = find_iface(e, ifindex);
  if (!ifs || !iface_has_family(&ifs->info, family)) return 0; /* not an interface/family we serve */
  if (now - ifs->flood_start >= 1000 || now < ifs->flood_start) {
    ifs->flood_start = now;
    ifs->flood_count = 0;
  }
  int flooded = 0;
  if (src) { /* one noisy source does not silence the others */
    struct flood_src *fs = NULL, *old = &ifs->src[0];
    for (size_t i = 0; i < FLOOD_SOURCES && !fs; i++) {
      struct flood_src *c = &ifs->src[i];
      if (c->family == family && !memcmp(c->ip, src, fam_len(family))) fs = c;
      else if (c->start < old->start) old = c;
    }
    if (!fs) {
      fs = old;
      fs->family = (uint8_t)family;
      memcpy(fs->ip, src, fam_len(family));
      fs->start = now;
      fs->count = 0;
    }
    if (now - fs->start >= 1000 || now < fs->start) {
      fs->start = now;
      fs->count = 0;
    }
    flooded = ++fs->count > e->cfg.max_packets_per_sec;
  }
  /* the interface as a whole: packets that passed their source's limit (or have no source) */
  if (!flooded)
    flooded = ++ifs->flood_count > e->cfg.max_packets_per_sec * (src ? FLOOD_IFACE_FACTOR : 1u);
  if (flooded) {
    e->stats.packets_flood_dropped++;
    return 0;
  }
  lp2p_mdns_msg *m = &e->msg;
  if (lp2p_mdns_parse(data, len, m)) {
    e->stats.packets_malformed++;
    return 0;
  }
  e->stats.records_dropped += m->dropped;
  int rv = 0;
  if (!(m->flags & LP2P_MDNS_FLAG_QR) && m->nq > 0)
    rv = handle_query(e, ifs, family, src, src_port, m, now);
  else if ((m->flags & LP2P_MDNS_FLAG_QR) || m->nq == 0)
    rv = handle_response(e, m, ifindex, family, now);
  return rv;
}

/* ---- timers ------------------------------------------------------------------------------- */

static int run_timers(lp2p_mdns *e, lp2p_tstamp now) {
  int rv = 0;
  if (now >= e->next_query) {
    e->started = 1;
    rv = send_queries(e, now);
    e->next_query = now + e->query_interval;
    e->query_interval *= 2;
    if (e->query_interval > e->cfg.query_interval_max) e->query_interval = e->cfg.query_interval_max;
  }
  for (size_t i = 0; i < e->nifaces && !rv; i++) { /* answers held back by the gap */
    iface_state *ifs = &e->ifaces[i];
    for (int fi = 0; fi < 2 && !rv; fi++)
      for (int kind = 0; kind < 2 && !rv; kind++) {
        if (!ifs->deferred[fi][kind] || ifs->deferred[fi][kind] > now) continue;
        ifs->deferred[fi][kind] = 0;
        int family = fi ? 6 : 4;
        if (!iface_has_family(&ifs->info, family)) continue; /* the interface lost that family since */
        ifs->answered[fi][kind] = 1;
        ifs->last_answer[fi][kind] = now;
        rv = kind == 0 ? emit_responses(e, ifs, family, e->cfg.ttl, 0, NULL, 0)
                       : emit_meta(e, &ifs->info, family, 0, NULL, 0);
      }
  }
  /* Cache maintenance (RFC 6762 §5.2): a record at 80 % (then 90 %) of its TTL makes us query, so
   * that a live peer answers before it expires even when our backoff has grown past its TTL. */
  int refresh = 0;
  for (size_t i = 0; i < e->npeers; i++)
    for (size_t k = 0; k < e->peers[i].naddrs; k++) {
      addr_entry *a = &e->peers[i].addrs[k];
      if (a->refresh > now) continue;
      refresh = 1;
      lp2p_tstamp ttl = a->expires - a->seen, nine = a->seen + ttl * 9 / 10;
      a->refresh = nine > now ? nine : LP2P_TSTAMP_NEVER;
    }
  if (!rv && refresh && e->started) rv = send_queries(e, now);
  if (!rv && e->announce_left > 0 && now >= e->next_announce) {
    rv = announce_all(e, e->cfg.ttl);
    e->announce_left--;
    e->next_announce = now + ANNOUNCE_GAP;
  }
  int r = run_expiry(e, now);
  return rv ? rv : r;
}

int lp2p_mdns_tick(lp2p_mdns *e, lp2p_tstamp now) {
  if (!e) return LP2P_ERR_INVAL;
  if (e->shut) return LP2P_ERR_STATE;
  return run_timers(e, now);
}

lp2p_tstamp lp2p_mdns_next_deadline(const lp2p_mdns *e) {
  if (!e || e->shut) return LP2P_TSTAMP_NEVER;
  lp2p_tstamp t = e->next_query;
  if (e->announce_left > 0 && e->next_announce < t) t = e->next_announce;
  for (size_t i = 0; i < e->npeers; i++)
    for (size_t k = 0; k < e->peers[i].naddrs; k++) {
      if (e->peers[i].addrs[k].expires < t) t = e->peers[i].addrs[k].expires;
      if (e->peers[i].addrs[k].refresh < t) t = e->peers[i].addrs[k].refresh;
    }
  for (size_t i = 0; i < e->nifaces; i++)
    for (int fi = 0; fi < 2; fi++)
      for (int kind = 0; kind < 2; kind++)
        if (e->ifaces[i].deferred[fi][kind] && e->ifaces[i].deferred[fi][kind] < t) t = e->ifaces[i].deferred[fi][kind];
  return t;
}

/* Interfaces or listen addresses changed: query and announce at once (but never before the
 * jittered first query slot). */
static void changed(lp2p_mdns *e, lp2p_tstamp now) {
  if (e->started) {
    e->next_query = now;
    e->query_interval = e->cfg.query_interval_min;
  }
  e->announce_left = ANNOUNCE_COUNT;
  e->next_announce = e->started ? now : e->next_query;
}

int lp2p_mdns_set_interfaces(lp2p_mdns *e, const lp2p_mdns_iface *ifaces, size_t n, lp2p_tstamp now) {
  if (!e || (n && !ifaces)) return LP2P_ERR_INVAL;
  if (e->shut) return LP2P_ERR_STATE;
  for (size_t i = 0; i < n; i++) {
    if (ifaces[i].naddrs > LP2P_MDNS_MAX_IFACE_ADDRS || ifaces[i].index == 0) return LP2P_ERR_INVAL;
    for (size_t k = 0; k < ifaces[i].naddrs; k++) {
      const lp2p_mdns_ifaddr *a = &ifaces[i].addrs[k];
      if ((a->family != 4 && a->family != 6) || a->prefix_len > (a->family == 6 ? 128 : 32)) return LP2P_ERR_INVAL;
    }
    for (size_t k = 0; k < i; k++)
      if (ifaces[k].index == ifaces[i].index) return LP2P_ERR_INVAL;
  }
  iface_state *ns = n ? lp2p__calloc(&e->mem, n, sizeof *ns) : NULL;
  if (n && !ns) return LP2P_ERR_NOMEM;
  int diff = n != e->nifaces;
  for (size_t i = 0; i < n; i++) {
    iface_state *old = find_iface(e, ifaces[i].index);
    if (old) ns[i] = *old;
    memset(&ns[i].info, 0, sizeof ns[i].info);
    ns[i].info.index = ifaces[i].index;
    ns[i].info.loopback = ifaces[i].loopback != 0;
    ns[i].info.naddrs = ifaces[i].naddrs;
    for (size_t k = 0; k < ifaces[i].naddrs; k++) {
      ns[i].info.addrs[k].family = ifaces[i].addrs[k].family;
      ns[i].info.addrs[k].prefix_len = ifaces[i].addrs[k].prefix_len;
      memcpy(ns[i].info.addrs[k].addr, ifaces[i].addrs[k].addr, fam_len(ifaces[i].addrs[k].family));
    }
    if (!old || memcmp(&old->info, &ns[i].info, sizeof ns[i].info)) {
      diff = 1;
      memset(ns[i].adv, 0, sizeof ns[i].adv); /* recomputed on use; the old one is freed below */
    }
    for (int fi = 0; fi < 2; fi++) /* an answer held back for a family the interface no longer has */
      if (!iface_has_family(&ns[i].info, fi ? 6 : 4)) ns[i].deferred[fi][0] = ns[i].deferred[fi][1] = 0;
  }
  for (size_t k = 0; k < e->nifaces; k++) { /* caches not carried over */
    iface_state *o = &e->ifaces[k];
    size_t i;
    for (i = 0; i < n && ns[i].info.index != o->info.index; i++) {
    }
    for (int fi = 0; fi < 2; fi++)
      if (i == n || ns[i].adv[fi].strs != o->adv[fi].strs) lp2p__free(&e->mem, o->adv[fi].strs);
  }
  lp2p__free(&e->mem, e->ifaces);
  e->ifaces = ns;
  e->nifaces = n;
  if (!diff) return 0;
  changed(e, now);
  return run_timers(e, now);
}

int lp2p_mdns_set_listen_addrs(lp2p_mdns *e, const lp2p_multiaddr *const *addrs, size_t n,
                               const lp2p_peer_id *self, lp2p_tstamp now) {
  if (!e || !self || !self->len || (n && !addrs)) return LP2P_ERR_INVAL;
  if (e->shut) return LP2P_ERR_STATE;
  for (size_t i = 0; i < n; i++)
    if (!addrs[i]) return LP2P_ERR_INVAL;
  int diff = !e->have_self || !lp2p_peer_id_equal(self, &e->self) || n != e->nlisten;
  for (size_t i = 0; i < n && !diff; i++)
    if (!lp2p_multiaddr_equal(addrs[i], e->listen[i])) diff = 1;
  if (!diff) return 0;
  char text[LP2P_PEER_ID_MAX_TEXT];
  if (lp2p_peer_id_to_string(self, text, sizeof text) < 0) return LP2P_ERR_NOMEM; /* nothing changed */
  lp2p_multiaddr **nl = n ? lp2p__calloc(&e->mem, n, sizeof *nl) : NULL;
  if (n && !nl) return LP2P_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) {
    nl[i] = lp2p_multiaddr_dup(addrs[i]);
    if (!nl[i]) {
      for (size_t k = 0; k < i; k++) lp2p_multiaddr_free(nl[k]);
      lp2p__free(&e->mem, nl);
      return LP2P_ERR_NOMEM;
    }
  }
  for (size_t i = 0; i < e->nlisten; i++) lp2p_multiaddr_free(e->listen[i]);
  lp2p__free(&e->mem, e->listen);
  e->listen = nl;
  e->nlisten = n;
  e->self = *self;
  e->have_self = 1;
  memcpy(e->self_text, text, sizeof text);
  for (size_t i = 0; i < e->nifaces; i++) adv_reset(e, &e->ifaces[i]);
  changed(e, now);
  return run_timers(e, now);
}

int lp2p_mdns_set_txt(lp2p_mdns *e, const char *const *strs, size_t n, lp2p_tstamp now) {
  if (!e || (n && !strs) || n > LP2P_MDNS_MAX_TXT) return LP2P_ERR_INVAL;
  if (e->shut) return LP2P_ERR_STATE;
  txt_set t;
  t.n = t.bytes = 0;
  for (size_t i = 0; i < n; i++) {
    size_t len = strs[i] ? strlen(strs[i]) : 0;
    if (!lp2p_mdns_txt_valid(strs[i], len) || !txt_add(&t, strs[i], len)) return LP2P_ERR_INVAL;
  }
  if (txt_equal(&e->own_txt, &t)) return 0;
  e->own_txt = t;
  e->announce_left = ANNOUNCE_COUNT;
  e->next_announce = e->started ? now : e->next_query;
  return run_timers(e, now);
}

size_t lp2p_mdns_peer_txt(const lp2p_mdns *e, const lp2p_peer_id *peer, const char **out, size_t cap) {
  if (!e || !peer) return 0;
  for (size_t i = 0; i < e->npeers; i++)
    if (lp2p_peer_id_equal(&e->peers[i].id, peer)) return txt_ptrs(e->peers[i].txt, out, cap);
  return 0;
}

int lp2p_mdns_query_now(lp2p_mdns *e, lp2p_tstamp now) {
  if (!e) return LP2P_ERR_INVAL;
  if (e->shut) return LP2P_ERR_STATE;
  e->next_query = now;
  e->query_interval = e->cfg.query_interval_min;
  return run_timers(e, now);
}

int lp2p_mdns_shutdown(lp2p_mdns *e, lp2p_tstamp now) {
  (void)now;
  if (!e) return LP2P_ERR_INVAL;
  if (e->shut) return LP2P_ERR_STATE;
  int rv = announce_all(e, 0);
  e->shut = 1;
  return rv;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static int valid_peer_name(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 63) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'))) return 0;
  return 1;
}

static int gen_peer_name(lp2p_mdns *e) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  size_t n = 32u, i = 0; /* the shortest the spec allows: every response carries it twice */
  while (i < n) {
    uint8_t chunk[64];
    if (rand_bytes(e, chunk, sizeof chunk)) return LP2P_ERR_INTERNAL;
    for (size_t k = 0; k < sizeof chunk && i < n; k++)
      if (chunk[k] < 252) e->peer_name[i++] = alphabet[chunk[k] % 36]; /* 252 = 7 * 36: no bias */
  }
  e->peer_name[n] = 0;
  return 0;
}

int lp2p_mdns_new(lp2p_mdns **out, const lp2p_mdns_config *cfg, const lp2p_mem *mem, lp2p_tstamp now) {
  if (!out) return LP2P_ERR_INVAL;
  *out = NULL;
  lp2p_mdns_config c;
  memset(&c, 0, sizeof c);
  if (cfg) {
    if (cfg->struct_size < offsetof(lp2p_mdns_config, rng) + sizeof cfg->rng) return LP2P_ERR_INVAL;
    memcpy(&c, cfg, cfg->struct_size < sizeof c ? cfg->struct_size : sizeof c);
  }
  c.struct_size = sizeof c;
  if (!c.ttl) c.ttl = LP2P_MDNS_DEFAULT_TTL;
  if (!c.query_interval_min) c.query_interval_min = LP2P_MDNS_DEFAULT_QUERY_MIN;
  if (!c.query_interval_max) c.query_interval_max = LP2P_MDNS_DEFAULT_QUERY_MAX;
  if (c.query_interval_max < c.query_interval_min) return LP2P_ERR_INVAL;
  if (!c.answer_interval) c.answer_interval = LP2P_MDNS_DEFAULT_ANSWER_INTERVAL;
  if (!c.max_packet) c.max_packet = LP2P_MDNS_DEFAULT_MAX_PACKET;
  if (c.max_packet < 512 || c.max_packet > LP2P_MDNS_MAX_PACKET) return LP2P_ERR_INVAL;
  if (!c.max_peers) c.max_peers = LP2P_MDNS_DEFAULT_MAX_PEERS;
  if (!c.max_addrs_per_peer) c.max_addrs_per_peer = LP2P_MDNS_DEFAULT_MAX_ADDRS;
  if (!c.max_packets_per_sec) c.max_packets_per_sec = LP2P_MDNS_DEFAULT_MAX_PACKETS_PER_SEC;
  if (c.peer_name && !valid_peer_name(c.peer_name)) return LP2P_ERR_INVAL;
  const lp2p_mem *m = lp2p__mem_or_default(mem);
  lp2p_mdns *e = lp2p__calloc(m, 1, sizeof *e);
  if (!e) return LP2P_ERR_NOMEM;
  e->mem = *m;
  e->cfg = c;
  int rv = 0;
  if (lp2p_mdns_name_from_text(&e->service, c.service ? c.service : LP2P_MDNS_SERVICE) ||
      lp2p_mdns_name_from_text(&e->meta, LP2P_MDNS_META_SERVICE)) {
    rv = LP2P_ERR_INVAL;
    goto fail;
  }
  e->cfg.service = NULL; /* not retained */
  if (c.peer_name)
    memcpy(e->peer_name, c.peer_name, strlen(c.peer_name) + 1);
  else if ((rv = gen_peer_name(e)))
    goto fail;
  e->cfg.peer_name = NULL;
  lp2p_mdns_name local;
  lp2p_mdns_name_from_text(&local, "local");
  if (lp2p_mdns_name_prepend(&e->instance, (const uint8_t *)e->peer_name, strlen(e->peer_name), &e->service) ||
      lp2p_mdns_name_prepend(&e->host, (const uint8_t *)e->peer_name, strlen(e->peer_name), &local)) {
    rv = LP2P_ERR_INVAL;
    goto fail;
  }
  e->cfg.peer_name = NULL;
  uint8_t j[2];
  if (rand_bytes(e, j, 2)) {
    rv = LP2P_ERR_INTERNAL;
    goto fail;
  }
  e->next_query = now + JITTER_MIN + (((unsigned)j[0] << 8 | j[1]) % JITTER_SPAN);
  e->query_interval = c.query_interval_min;
  e->buf = lp2p__malloc(&e->mem, c.max_packet);
  if (!e->buf) {
    rv = LP2P_ERR_NOMEM;
    goto fail;
  }
  *out = e;
  return 0;
fail:
  lp2p_mdns_free(e);
  return rv;
}

void lp2p_mdns_free(lp2p_mdns *e) {
  if (!e) return;
  while (e->pq_head) {
    pkt_item *n = e->pq_head->next;
    lp2p__free(&e->mem, e->pq_head);
    e->pq_head = n;
  }
  lp2p__free(&e->mem, e->pcur);
  while (e->eq_head) {
    ev_item *n = e->eq_head->next;
    free_event(e, e->eq_head);
    e->eq_head = n;
  }
  free_event(e, e->ecur);
  for (size_t i = 0; i < e->npeers; i++) peer_clear(e, &e->peers[i]);
  lp2p__free(&e->mem, e->peers);
  for (size_t i = 0; i < e->nlisten; i++) lp2p_multiaddr_free(e->listen[i]);
  lp2p__free(&e->mem, e->listen);
  for (size_t i = 0; i < e->nifaces; i++) adv_reset(e, &e->ifaces[i]);
  lp2p__free(&e->mem, e->ifaces);
  lp2p__free(&e->mem, e->buf);
  lp2p_mem mm = e->mem;
  lp2p__free(&mm, e);
}

const char *lp2p_mdns_peer_name(const lp2p_mdns *e) { return e->peer_name; }
size_t lp2p_mdns_peer_count(const lp2p_mdns *e) { return e->npeers; }
void lp2p_mdns_get_stats(const lp2p_mdns *e, lp2p_mdns_stats *out) { *out = e->stats; }
