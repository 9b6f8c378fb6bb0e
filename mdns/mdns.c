/* mdns/mdns.c - mDNS discovery behaviour (lp2p/mdns.h): the runtime around the sans-IO engine
 * (mdns/engine/mdns_engine.h). Public swarm API only: swarm-owned UDP sockets and the interface
 * table (lp2p/udp.h), a timer, the peer store, lp2p_swarm_emit. */
#include "lp2p/mdns.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lp2p/log.h"
#include "lp2p/peerstore.h"
#include "lp2p/udp.h"
#include "mdns/engine/mdns_engine.h"
#include "protocols/proto_mem.h"

#define MDNS_LOG "mdns"
#define STORE_TTL_SLACK_MS 5000u /* the peer store keeps mDNS addresses this much past the engine */
#define MAX_STORE_ADDRS 64u
#define MAX_LISTENERS 8u
/* The behaviour's defaults (the engine's own, 120 s and 60 s, match the spec's vectors). A quiet
 * steady state: records live 75 minutes (RFC 6762 §10 for PTR/TXT records; go-libp2p sends
 * 3200 s) and queries back off 1 s doubling to 5 minutes (rust-libp2p's query interval); our
 * queries list the peers we know on that link as known answers, so a peer answers about once per
 * half-life.
 * Discovery does not wait for either: a node queries and announces itself when it starts. */
#define SERVICE_DEFAULT_TTL 4500u
#define SERVICE_DEFAULT_QUERY_MAX 300000u

typedef struct sock_ent {
  struct lp2p_mdns_service *m;
  unsigned ifindex;
  int family; /* 4 or 6 */
  lp2p_udp *u;
} sock_ent;

struct lp2p_mdns_service {
  lp2p_mem mem;
  lp2p_swarm *sw;
  lp2p_mdns_service_config cfg;
  char service[256];
  lp2p_mdns *eng;
  lp2p_timer *timer;
  sock_ent **socks;
  size_t nsocks;
  lp2p_peer_id *live; /* peers mDNS reported and did not lose yet */
  size_t nlive, caplive;
  lp2p_multiaddr *group4, *group6; /* group + port: where multicast goes */
  lp2p_mdns_service_stats st;
  int detached;
  struct listener {
    lp2p_mdns_peer_fn fn;
    void *ud;
  } listeners[MAX_LISTENERS];
  size_t nlisteners;
  char *txt[LP2P_MDNS_TXT_MAX]; /* our extra TXT strings "key=value" (owned) */
  size_t ntxt;
};

void lp2p_mdns_service_config_default(lp2p_mdns_service_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->struct_size = sizeof *cfg;
  cfg->ttl_s = SERVICE_DEFAULT_TTL;
  cfg->query_interval_min_ms = LP2P_MDNS_DEFAULT_QUERY_MIN;
  cfg->query_interval_max_ms = SERVICE_DEFAULT_QUERY_MAX;
  cfg->port = LP2P_MDNS_PORT;
}

/* ---- sending / driving the engine --------------------------------------------------------- */

static sock_ent *find_sock(lp2p_mdns_service *m, unsigned ifindex, int family) {
  for (size_t i = 0; i < m->nsocks; i++)
    if (m->socks[i]->ifindex == ifindex && m->socks[i]->family == family) return m->socks[i];
  return NULL;
}

/* /ip4|ip6/<ip>/udp/<port> from raw bytes. */
static int udp_ma(lp2p_mdns_service *m, int family, const uint8_t *ip, uint16_t port, lp2p_multiaddr **out) {
  uint8_t b[1 + 16 + 2 + 2];
  size_t n = 0;
  b[n++] = family == 6 ? LP2P_MA_IP6 : LP2P_MA_IP4;
  memcpy(b + n, ip, family == 6 ? 16 : 4);
  n += family == 6 ? 16 : 4;
  b[n++] = 0x91; /* varint 273 = udp */
  b[n++] = 0x02;
  b[n++] = (uint8_t)(port >> 8);
  b[n++] = (uint8_t)port;
  return lp2p_multiaddr_from_bytes_mem(out, b, n, &m->mem, NULL, 0);
}

static void send_packet(lp2p_mdns_service *m, const lp2p_mdns_packet *p) {
  sock_ent *s = find_sock(m, p->ifindex, p->family);
  if (!s) return;
  lp2p_multiaddr *to = NULL;
  const lp2p_multiaddr *dst = p->family == 6 ? m->group6 : m->group4;
  if (p->unicast) {
    if (udp_ma(m, p->family, p->dst, p->dst_port, &to)) return;
    dst = to;
  }
  int rv = lp2p_udp_send(s->u, dst, p->data, p->len);
  if (rv == 0) {
    m->st.packets_sent++;
    m->st.bytes_sent += p->len;
  } else {
    m->st.send_errors++;
    lp2p_log(LP2P_LOG_DEBUG, MDNS_LOG, "send on if %u (IPv%d) failed: %s", p->ifindex, p->family,
             lp2p_strerror(rv));
  }
  lp2p_multiaddr_free(to);
}

static void handle_event(lp2p_mdns_service *m, const lp2p_mdns_event *ev);

static void drive(lp2p_mdns_service *m) {
  lp2p_mdns_packet p;
  lp2p_mdns_event ev;
  for (;;) {
    int any = 0;
    while (lp2p_mdns_next_packet(m->eng, &p) == 1) send_packet(m, &p), any = 1;
    while (lp2p_mdns_next_event(m->eng, &ev) == 1) handle_event(m, &ev), any = 1;
    if (!any) break;
  }
  if (m->detached) return;
  lp2p_tstamp dl = lp2p_mdns_next_deadline(m->eng), now = lp2p_swarm_now(m->sw);
  if (dl == LP2P_TSTAMP_NEVER)
    lp2p_timer_stop(m->timer);
  else
    lp2p_timer_start(m->timer, dl > now ? dl - now : 0, 0);
}

static void on_timer(lp2p_timer *t, void *ud) {
  (void)t;
  lp2p_mdns_service *m = ud;
  int rv = lp2p_mdns_tick(m->eng, lp2p_swarm_now(m->sw));
  if (rv < 0) lp2p_log(LP2P_LOG_DEBUG, MDNS_LOG, "tick: %s", lp2p_strerror(rv));
  drive(m);
}

/* ---- results: peer store + events ---------------------------------------------------------- */

static long live_find(const lp2p_mdns_service *m, const lp2p_peer_id *id) {
  for (size_t i = 0; i < m->nlive; i++)
    if (lp2p_peer_id_equal(&m->live[i], id)) return (long)i;
  return -1;
}

static int live_add(lp2p_mdns_service *m, const lp2p_peer_id *id) {
  if (m->nlive == m->caplive) {
    size_t nc = m->caplive ? m->caplive * 2 : 16;
    lp2p_peer_id *nl = lp2p__pm_realloc(&m->mem, m->live, nc * sizeof *nl);
    if (!nl) return LP2P_ERR_NOMEM;
    m->live = nl;
    m->caplive = nc;
  }
  m->live[m->nlive++] = *id;
  return 0;
}

static void emit(lp2p_mdns_service *m, lp2p_swarm_event_type type, const lp2p_peer_id *peer,
                 const lp2p_multiaddr *const *addrs, size_t n) {
  lp2p_swarm_event ev;
  memset(&ev, 0, sizeof ev);
  ev.struct_size = sizeof ev;
  ev.type = type;
  ev.peer = peer;
  ev.addrs = addrs;
  ev.n_addrs = n;
  ev.source = LP2P_ADDR_SRC_MDNS;
  int rv = lp2p_swarm_emit(m->sw, &ev);
  if (rv < 0) lp2p_log(LP2P_LOG_WARN, MDNS_LOG, "emit: %s", lp2p_strerror(rv));
}

static void dial_done(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_dial_error *errs, size_t n,
                      void *ud) {
  (void)sw, (void)errs, (void)n, (void)ud;
  char id[LP2P_PEER_ID_MAX_TEXT] = "?";
  if (peer) lp2p_peer_id_to_string(peer, id, sizeof id);
  lp2p_log(LP2P_LOG_DEBUG, MDNS_LOG, "auto-dial %s: %s", id, err ? lp2p_strerror(err) : "ok");
}

static void on_found(lp2p_mdns_service *m, const lp2p_mdns_event *ev) {
  lp2p_peerstore *ps = lp2p_swarm_peerstore(m->sw);
  lp2p_multiaddr *bare[LP2P_MDNS_DEFAULT_MAX_ADDRS * 4];
  size_t nb = 0, fresh = 0;
  lp2p_peer_addr known[MAX_STORE_ADDRS];
  size_t nk = lp2p_peerstore_addrs(ps, &ev->peer, LP2P_MA_SCOPE_ANY, known, MAX_STORE_ADDRS);
  if (nk > MAX_STORE_ADDRS) nk = MAX_STORE_ADDRS;
  for (size_t i = 0; i < ev->naddrs && nb < sizeof bare / sizeof *bare; i++) {
    size_t c = lp2p_multiaddr_count(ev->addrs[i]);
    lp2p_multiaddr *b = NULL;
    if (c < 2 || lp2p_multiaddr_prefix(&b, ev->addrs[i], c - 1) || !b) continue; /* drop /p2p/<id> */
    int have = 0;
    for (size_t k = 0; k < nk && !have; k++) have = lp2p_multiaddr_equal(known[k].addr, b);
    fresh += !have;
    bare[nb++] = b;
  }
  uint64_t ttl_ms = (uint64_t)ev->ttl * 1000u + STORE_TTL_SLACK_MS;
  int rv = nb ? lp2p_peerstore_add_addrs(ps, &ev->peer, (const lp2p_multiaddr *const *)bare, nb,
                                        LP2P_ADDR_SRC_MDNS, ttl_ms)
              : LP2P_ERR_INVAL;
  int appeared = live_find(m, &ev->peer) < 0;
  if (appeared) {
    if (live_add(m, &ev->peer) < 0) appeared = 0;
    /* the store raised PEER_DISCOVERED only for addresses it did not know */
    if (rv < 0 || fresh == 0) emit(m, LP2P_SWARM_EV_PEER_DISCOVERED, &ev->peer, (const lp2p_multiaddr *const *)bare, nb);
    char id[LP2P_PEER_ID_MAX_TEXT] = "?";
    lp2p_peer_id_to_string(&ev->peer, id, sizeof id);
    lp2p_log(LP2P_LOG_DEBUG, MDNS_LOG, "discovered %s (%zu addrs, ttl %u s, if %u)", id, ev->naddrs, ev->ttl,
             ev->ifindex);
    if (m->cfg.auto_dial && !lp2p_swarm_is_connected(m->sw, &ev->peer)) {
      int d = lp2p_swarm_dial_ma(m->sw, &ev->peer, NULL, 0, dial_done, m);
      if (d < 0) lp2p_log(LP2P_LOG_DEBUG, MDNS_LOG, "auto-dial %s: %s", id, lp2p_strerror(d));
    }
  } else if (rv < 0 && rv != LP2P_ERR_INVAL) {
    lp2p_log(LP2P_LOG_DEBUG, MDNS_LOG, "peer store: %s", lp2p_strerror(rv));
  }
  for (size_t i = 0; i < nb; i++) lp2p_multiaddr_free(bare[i]);
}

static void on_lost(lp2p_mdns_service *m, const lp2p_peer_id *peer) {
  long li = live_find(m, peer);
  if (li < 0) return;
  m->live[li] = m->live[--m->nlive];
  lp2p_peerstore *ps = lp2p_swarm_peerstore(m->sw);
  lp2p_peer_addr known[MAX_STORE_ADDRS];
  size_t nk = lp2p_peerstore_addrs(ps, peer, LP2P_MA_SCOPE_ANY, known, MAX_STORE_ADDRS);
  if (nk > MAX_STORE_ADDRS) nk = MAX_STORE_ADDRS;
  lp2p_multiaddr *rm[MAX_STORE_ADDRS];
  size_t nrm = 0, other_discovery = 0;
  for (size_t k = 0; k < nk; k++) {
    if (known[k].source == LP2P_ADDR_SRC_MDNS) {
      rm[nrm] = lp2p_multiaddr_dup(known[k].addr); /* store pointers die at the first change */
      if (rm[nrm]) nrm++;
    } else if (known[k].source > LP2P_ADDR_SRC_MDNS) {
      other_discovery++;
    }
  }
  size_t removed = 0;
  for (size_t k = 0; k < nrm; k++) {
    removed += lp2p_peerstore_remove_addr(ps, peer, rm[k]) == 0;
    lp2p_multiaddr_free(rm[k]);
  }
  /* the store raises PEER_EXPIRED when it lost the peer's last discovery address */
  if (!removed || other_discovery) emit(m, LP2P_SWARM_EV_PEER_EXPIRED, peer, NULL, 0);
  char id[LP2P_PEER_ID_MAX_TEXT] = "?";
  lp2p_peer_id_to_string(peer, id, sizeof id);
  lp2p_log(LP2P_LOG_DEBUG, MDNS_LOG, "expired %s (%zu addrs removed)", id, removed);
}

/* Calls the listeners (a copy: they may add/remove listeners; a removed one is skipped). */
static void notify(lp2p_mdns_service *m, lp2p_mdns_peer_event_type type, const lp2p_mdns_event *ev) {
  if (!m->nlisteners) return;
  lp2p_mdns_peer_event pe;
  memset(&pe, 0, sizeof pe);
  pe.struct_size = sizeof pe;
  pe.type = type;
  pe.peer = &ev->peer;
  if (type != LP2P_MDNS_PEER_LOST) {
    pe.addrs = ev->addrs;
    pe.n_addrs = ev->naddrs;
    pe.txt = ev->txt;
    pe.n_txt = ev->ntxt;
  }
  struct listener ls[MAX_LISTENERS];
  size_t n = m->nlisteners;
  memcpy(ls, m->listeners, n * sizeof *ls);
  for (size_t i = 0; i < n && !m->detached; i++) {
    int still = 0;
    for (size_t k = 0; k < m->nlisteners && !still; k++)
      still = m->listeners[k].fn == ls[i].fn && m->listeners[k].ud == ls[i].ud;
    if (still) ls[i].fn(m, &pe, ls[i].ud);
  }
}

static void handle_event(lp2p_mdns_service *m, const lp2p_mdns_event *ev) {
  if (m->detached) return;
  switch (ev->type) {
  case LP2P_MDNS_EV_DISCOVERED:
    on_found(m, ev);
    notify(m, LP2P_MDNS_PEER_FOUND, ev);
    break;
  case LP2P_MDNS_EV_REFRESHED:
    on_found(m, ev);
    break;
  case LP2P_MDNS_EV_UPDATED:
    on_found(m, ev); /* renews the store's TTLs like a refresh */
    notify(m, LP2P_MDNS_PEER_UPDATED, ev);
    break;
  case LP2P_MDNS_EV_EXPIRED:
    on_lost(m, &ev->peer);
    notify(m, LP2P_MDNS_PEER_LOST, ev);
    break;
  default:
    break;
  }
}

/* ---- sockets and interfaces ------------------------------------------------------------------ */

static void on_recv(lp2p_udp *u, const lp2p_multiaddr *from, const uint8_t *p, size_t n, void *ud) {
  (void)u;
  sock_ent *s = ud;
  lp2p_mdns_service *m = s->m;
  if (m->detached) return;
  m->st.packets_received++;
  m->st.bytes_received += n;
  uint32_t code;
  const uint8_t *ip = NULL, *pv = NULL;
  size_t il = 0, pl = 0;
  uint16_t port = 0;
  if (lp2p_multiaddr_component(from, 0, &code, &ip, &il) || (il != 4 && il != 16)) ip = NULL;
  if (lp2p_multiaddr_component(from, 1, &code, &pv, &pl) == 0 && pl == 2) port = (uint16_t)(pv[0] << 8 | pv[1]);
  if (port == m->cfg.port) port = LP2P_MDNS_PORT; /* the engine's notion of "the mDNS port" */
  else if (port == LP2P_MDNS_PORT) port = 1; /* (only when cfg.port is not 5353) */
  int rv = lp2p_mdns_packet_in(m->eng, s->ifindex, s->family, ip, port, p, n, lp2p_swarm_now(m->sw));
  if (rv < 0) lp2p_log(LP2P_LOG_DEBUG, MDNS_LOG, "packet_in: %s", lp2p_strerror(rv));
  drive(m);
}

static void sock_close(lp2p_mdns_service *m, size_t i) {
  sock_ent *s = m->socks[i];
  lp2p_udp_free(s->u);
  lp2p__pm_free(&m->mem, s);
  m->socks[i] = m->socks[--m->nsocks];
}

static int sock_open(lp2p_mdns_service *m, unsigned ifindex, int family) {
  char bind[64];
  snprintf(bind, sizeof bind, family == 6 ? "/ip6/::/udp/%u" : "/ip4/0.0.0.0/udp/%u", (unsigned)m->cfg.port);
  lp2p_multiaddr *ba = NULL;
  int rv = lp2p_multiaddr_parse(&ba, bind, NULL, 0);
  if (rv) return rv;
  sock_ent *s = lp2p__pm_calloc(&m->mem, sizeof *s);
  if (!s) {
    lp2p_multiaddr_free(ba);
    return LP2P_ERR_NOMEM;
  }
  s->m = m;
  s->ifindex = ifindex;
  s->family = family;
  rv = lp2p_udp_new(&s->u, m->sw, ba, LP2P_UDP_REUSEADDR | (family == 6 ? LP2P_UDP_IPV6ONLY : 0), on_recv, s);
  lp2p_multiaddr_free(ba);
  const char *step = "bind";
  if (!rv) step = "join", rv = lp2p_udp_join(s->u, family == 6 ? m->group6 : m->group4, ifindex);
  if (!rv) step = "multicast if", rv = lp2p_udp_set_multicast_if(s->u, ifindex);
  if (!rv) step = "multicast ttl", rv = lp2p_udp_set_multicast_ttl(s->u, 255);
  if (!rv) step = "multicast loop", rv = lp2p_udp_set_multicast_loop(s->u, 1);
  if (rv) {
    lp2p_log(LP2P_LOG_INFO, MDNS_LOG, "if %u IPv%d: %s failed: %s (interface skipped)", ifindex, family, step,
             lp2p_strerror(rv));
    lp2p_udp_free(s->u);
    lp2p__pm_free(&m->mem, s);
    return rv;
  }
  sock_ent **ns = lp2p__pm_realloc(&m->mem, m->socks, (m->nsocks + 1) * sizeof *ns);
  if (!ns) {
    lp2p_udp_free(s->u);
    lp2p__pm_free(&m->mem, s);
    return LP2P_ERR_NOMEM;
  }
  m->socks = ns;
  m->socks[m->nsocks++] = s;
  lp2p_log(LP2P_LOG_DEBUG, MDNS_LOG, "listening on if %u IPv%d", ifindex, family);
  return 0;
}

/* Reads the interface table, opens/closes sockets to match it, and tells the engine. */
static int sync_interfaces(lp2p_mdns_service *m) {
  int total = lp2p_swarm_interfaces(m->sw, NULL, 0);
  if (total < 0) return total;
  lp2p_interface *tab = total ? lp2p__pm_malloc(&m->mem, (size_t)total * sizeof *tab) : NULL;
  if (total && !tab) return LP2P_ERR_NOMEM;
  int n = total ? lp2p_swarm_interfaces(m->sw, tab, (size_t)total) : 0;
  if (n > total) n = total;
  if (n < 0) {
    lp2p__pm_free(&m->mem, tab);
    return n;
  }
  lp2p_mdns_iface *ifs = n ? lp2p__pm_calloc(&m->mem, (size_t)n * sizeof *ifs) : NULL;
  if (n && !ifs) {
    lp2p__pm_free(&m->mem, tab);
    return LP2P_ERR_NOMEM;
  }
  size_t nifs = 0;
  const unsigned need = LP2P_IF_UP | LP2P_IF_RUNNING | LP2P_IF_MULTICAST;
  for (int i = 0; i < n; i++) {
    const lp2p_interface *t = &tab[i];
    if ((t->flags & need) != need || !t->index || !t->addr) continue;
    uint32_t code;
    const uint8_t *v;
    size_t vl;
    if (lp2p_multiaddr_component(t->addr, 0, &code, &v, &vl)) continue;
    int family = code == LP2P_MA_IP4 && vl == 4 ? 4 : code == LP2P_MA_IP6 && vl == 16 ? 6 : 0;
    if (!family || (family == 4 && m->cfg.no_ipv4) || (family == 6 && m->cfg.no_ipv6)) continue;
    size_t k;
    for (k = 0; k < nifs; k++)
      if (ifs[k].index == t->index) break;
    if (k == nifs) {
      ifs[nifs].index = t->index;
      ifs[nifs].loopback = (t->flags & LP2P_IF_LOOPBACK) != 0;
      nifs++;
    }
    if (ifs[k].naddrs >= LP2P_MDNS_MAX_IFACE_ADDRS) continue;
    lp2p_mdns_ifaddr *a = &ifs[k].addrs[ifs[k].naddrs++];
    a->family = family;
    memcpy(a->addr, v, vl);
    a->prefix_len = (uint8_t)(t->prefix_len > (family == 6 ? 128u : 32u) ? (family == 6 ? 128u : 32u) : t->prefix_len);
  }
  lp2p__pm_free(&m->mem, tab);
  /* close sockets no longer wanted */
  for (size_t i = 0; i < m->nsocks;) {
    sock_ent *s = m->socks[i];
    int want = 0;
    for (size_t k = 0; k < nifs && !want; k++)
      if (ifs[k].index == s->ifindex)
        for (size_t a = 0; a < ifs[k].naddrs && !want; a++) want = ifs[k].addrs[a].family == s->family;
    if (!want) {
      lp2p_log(LP2P_LOG_DEBUG, MDNS_LOG, "closing if %u IPv%d", s->ifindex, s->family);
      sock_close(m, i);
    } else {
      i++;
    }
  }
  /* open the missing ones; families without a socket are hidden from the engine */
  for (size_t k = 0; k < nifs; k++) {
    for (int family = 4; family <= 6; family += 2) {
      int has = 0;
      for (size_t a = 0; a < ifs[k].naddrs && !has; a++) has = ifs[k].addrs[a].family == family;
      if (!has || find_sock(m, ifs[k].index, family)) continue;
      if (sock_open(m, ifs[k].index, family) == LP2P_ERR_NOMEM) {
        lp2p__pm_free(&m->mem, ifs);
        return LP2P_ERR_NOMEM;
      }
    }
    size_t w = 0;
    for (size_t a = 0; a < ifs[k].naddrs; a++)
      if (find_sock(m, ifs[k].index, ifs[k].addrs[a].family)) ifs[k].addrs[w++] = ifs[k].addrs[a];
    ifs[k].naddrs = w;
  }
  size_t w = 0;
  for (size_t k = 0; k < nifs; k++)
    if (ifs[k].naddrs) ifs[w++] = ifs[k];
  int rv = lp2p_mdns_set_interfaces(m->eng, ifs, w, lp2p_swarm_now(m->sw));
  lp2p__pm_free(&m->mem, ifs);
  m->st.sockets = (uint32_t)m->nsocks;
  return rv;
}

static int sync_listen(lp2p_mdns_service *m) {
  size_t n = lp2p_swarm_listen_addrs(m->sw, NULL, 0);
  const lp2p_multiaddr **v = n ? lp2p__pm_malloc(&m->mem, n * sizeof *v) : NULL;
  if (n && !v) return LP2P_ERR_NOMEM;
  size_t got = n ? lp2p_swarm_listen_addrs(m->sw, v, n) : 0;
  if (got > n) got = n;
  int rv = lp2p_mdns_set_listen_addrs(m->eng, (const lp2p_multiaddr *const *)v, got, lp2p_swarm_local_peer(m->sw),
                                      lp2p_swarm_now(m->sw));
  lp2p__pm_free(&m->mem, v);
  return rv;
}

/* ---- behaviour ------------------------------------------------------------------------------ */

static int mdns_attach(void *self, lp2p_swarm *sw) {
  lp2p_mdns_service *m = self;
  m->sw = sw;
  lp2p_mdns_config ec;
  memset(&ec, 0, sizeof ec);
  ec.struct_size = sizeof ec;
  ec.service = m->service[0] ? m->service : NULL;
  ec.ttl = m->cfg.ttl_s;
  ec.query_interval_min = m->cfg.query_interval_min_ms;
  ec.query_interval_max = m->cfg.query_interval_max_ms;
  ec.txt_single_record = m->cfg.txt_single_record;
  ec.report_refresh = 1;
  int rv = lp2p_mdns_new(&m->eng, &ec, &m->mem, lp2p_swarm_now(sw));
  if (rv) return rv;
  if ((rv = lp2p_timer_new(&m->timer, sw, on_timer, m))) return rv;
  if ((rv = udp_ma(m, 4, (const uint8_t[]){224, 0, 0, 251}, m->cfg.port, &m->group4))) return rv;
  if ((rv = udp_ma(m, 6, (const uint8_t[]){0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb}, m->cfg.port,
                   &m->group6)))
    return rv;
  if ((rv = sync_interfaces(m)) < 0) return rv;
  if ((rv = sync_listen(m)) < 0) return rv;
  lp2p_log(LP2P_LOG_DEBUG, MDNS_LOG, "peer name %s, %zu sockets", lp2p_mdns_peer_name(m->eng), m->nsocks);
  drive(m);
  return 0;
}

static void mdns_on_event(void *self, lp2p_swarm *sw, const lp2p_swarm_event *ev) {
  (void)sw;
  lp2p_mdns_service *m = self;
  if (m->detached || !m->eng) return;
  int rv = 0;
  switch (ev->type) {
  case LP2P_SWARM_EV_INTERFACES_CHANGED:
    rv = sync_interfaces(m);
    if (rv >= 0) rv = sync_listen(m); /* a listener on 0.0.0.0 may have new addresses */
    break;
  case LP2P_SWARM_EV_LISTEN_ADDR_ADDED:
  case LP2P_SWARM_EV_LISTEN_ADDR_REMOVED:
    rv = sync_listen(m);
    break;
  default:
    return;
  }
  if (rv < 0) lp2p_log(LP2P_LOG_WARN, MDNS_LOG, "%s: %s", lp2p_swarm_event_name(ev->type), lp2p_strerror(rv));
  drive(m);
}

static void mdns_detach(void *self, lp2p_swarm *sw) {
  (void)sw;
  lp2p_mdns_service *m = self;
  if (m->eng && lp2p_mdns_shutdown(m->eng, lp2p_swarm_now(m->sw)) == 0) { /* goodbyes */
    lp2p_mdns_packet p;
    while (lp2p_mdns_next_packet(m->eng, &p) == 1) send_packet(m, &p);
  }
  m->detached = 1;
  while (m->nsocks) sock_close(m, m->nsocks - 1);
  lp2p_timer_free(m->timer);
  m->timer = NULL;
}

static void mdns_destroy(void *self) {
  lp2p_mdns_service *m = self;
  lp2p_mem mem = m->mem;
  lp2p_mdns_free(m->eng);
  lp2p_multiaddr_free(m->group4);
  lp2p_multiaddr_free(m->group6);
  lp2p__pm_free(&mem, m->socks);
  lp2p__pm_free(&mem, m->live);
  for (size_t i = 0; i < m->ntxt; i++) lp2p__pm_free(&mem, m->txt[i]);
  lp2p__pm_free(&mem, m);
}

static const lp2p_behaviour_vtable mdns_vtable = {
    .struct_size = sizeof(lp2p_behaviour_vtable),
    .name = LP2P_MDNS_BEHAVIOUR,
    .attach = mdns_attach,
    .on_event = mdns_on_event,
    .detach = mdns_detach,
    .destroy = mdns_destroy,
};

int lp2p_mdns_add(lp2p_swarm *sw, const lp2p_mdns_service_config *cfg, lp2p_mdns_service **out) {
  if (out) *out = NULL;
  if (!sw) return LP2P_ERR_INVAL;
  if (lp2p_swarm_behaviour(sw, LP2P_MDNS_BEHAVIOUR)) return LP2P_ERR_EXISTS;
  lp2p_mdns_service_config c;
  lp2p_mdns_service_config_default(&c);
  if (cfg) {
    if (cfg->struct_size < offsetof(lp2p_mdns_service_config, auto_dial) + sizeof cfg->auto_dial)
      return LP2P_ERR_INVAL;
    size_t n = cfg->struct_size < sizeof c ? cfg->struct_size : sizeof c;
    memcpy(&c, cfg, n);
    c.struct_size = sizeof c;
    if (!c.ttl_s) c.ttl_s = SERVICE_DEFAULT_TTL;
    if (!c.query_interval_min_ms) c.query_interval_min_ms = LP2P_MDNS_DEFAULT_QUERY_MIN;
    if (!c.query_interval_max_ms) c.query_interval_max_ms = SERVICE_DEFAULT_QUERY_MAX;
    if (!c.port) c.port = LP2P_MDNS_PORT;
  }
  if (c.ttl_s > 4500 || c.query_interval_max_ms < c.query_interval_min_ms || (c.no_ipv4 && c.no_ipv6))
    return LP2P_ERR_INVAL;
  if (c.service && strlen(c.service) >= 255) return LP2P_ERR_INVAL;
  lp2p_mdns_service *m = lp2p__pm_calloc(lp2p_swarm_mem(sw), sizeof *m);
  if (!m) return LP2P_ERR_NOMEM;
  m->mem = *lp2p_swarm_mem(sw);
  m->cfg = c;
  if (c.service) memcpy(m->service, c.service, strlen(c.service) + 1);
  m->cfg.service = NULL;
  m->st.struct_size = sizeof m->st;
  int rv = lp2p_swarm_add_behaviour(sw, &mdns_vtable, m); /* destroys m on failure */
  if (rv < 0) return rv;
  if (out) *out = m;
  return 0;
}

const char *lp2p_mdns_service_peer_name(const lp2p_mdns_service *m) {
  return m && m->eng ? lp2p_mdns_peer_name(m->eng) : NULL;
}

size_t lp2p_mdns_service_peer_count(const lp2p_mdns_service *m) { return m ? m->nlive : 0; }

int lp2p_mdns_service_query(lp2p_mdns_service *m) {
  if (!m || !m->eng) return LP2P_ERR_INVAL;
  if (m->detached) return LP2P_ERR_STATE;
  int rv = lp2p_mdns_query_now(m->eng, lp2p_swarm_now(m->sw));
  lp2p_timer_start(m->timer, 0, 0); /* packets (and any event) leave from the loop */
  return rv < 0 ? rv : 0;
}

int lp2p_mdns_service_set_txt(lp2p_mdns_service *m, const char *key, const char *value) {
  if (!m || !key || !m->eng) return LP2P_ERR_INVAL;
  if (m->detached) return LP2P_ERR_STATE;
  size_t kl = strlen(key);
  char probe[256];
  int pl = snprintf(probe, sizeof probe, "%s=%s", key, value ? value : "x");
  if (kl == 0 || kl > 9 || strchr(key, '=') || pl < 0 || (size_t)pl >= sizeof probe ||
      !lp2p_mdns_txt_valid(probe, (size_t)pl))
    return LP2P_ERR_INVAL;
  size_t at = m->ntxt;
  for (size_t i = 0; i < m->ntxt; i++)
    if (!strncmp(m->txt[i], key, kl) && m->txt[i][kl] == '=') at = i;
  char *old = at < m->ntxt ? m->txt[at] : NULL;
  if (!value && !old) return LP2P_ERR_NOT_FOUND;
  char *fresh = NULL;
  if (value) {
    size_t total = (size_t)pl;
    for (size_t i = 0; i < m->ntxt; i++) total += i == at ? 0 : strlen(m->txt[i]);
    if ((!old && m->ntxt == LP2P_MDNS_TXT_MAX) || total > LP2P_MDNS_TXT_MAX_BYTES) return LP2P_ERR_LIMIT;
    if (old && !strcmp(old, probe)) return 0;
    if (!(fresh = lp2p__pm_malloc(&m->mem, (size_t)pl + 1))) return LP2P_ERR_NOMEM;
    memcpy(fresh, probe, (size_t)pl + 1);
  }
  const char *next[LP2P_MDNS_TXT_MAX];
  size_t n = 0;
  for (size_t i = 0; i < m->ntxt; i++)
    if (i != at) next[n++] = m->txt[i];
  if (fresh) next[n++] = fresh;
  int rv = lp2p_mdns_set_txt(m->eng, next, n, lp2p_swarm_now(m->sw));
  if (rv < 0) {
    lp2p__pm_free(&m->mem, fresh);
    return rv;
  }
  lp2p__pm_free(&m->mem, old);
  for (size_t i = 0; i < n; i++) m->txt[i] = (char *)next[i];
  m->ntxt = n;
  lp2p_timer_start(m->timer, 0, 0); /* the announcement leaves from the loop */
  return 0;
}

size_t lp2p_mdns_service_peer_txt(const lp2p_mdns_service *m, const lp2p_peer_id *peer, const char **out,
                                  size_t cap) {
  if (!m || !m->eng || !peer || m->detached) return 0;
  return lp2p_mdns_peer_txt(m->eng, peer, out, out ? cap : 0);
}

int lp2p_mdns_service_add_listener(lp2p_mdns_service *m, lp2p_mdns_peer_fn fn, void *ud) {
  if (!m || !fn) return LP2P_ERR_INVAL;
  for (size_t i = 0; i < m->nlisteners; i++)
    if (m->listeners[i].fn == fn && m->listeners[i].ud == ud) return LP2P_ERR_EXISTS;
  if (m->nlisteners == MAX_LISTENERS) return LP2P_ERR_LIMIT;
  m->listeners[m->nlisteners].fn = fn;
  m->listeners[m->nlisteners++].ud = ud;
  return 0;
}

void lp2p_mdns_service_remove_listener(lp2p_mdns_service *m, lp2p_mdns_peer_fn fn, void *ud) {
  if (!m) return;
  for (size_t i = 0; i < m->nlisteners; i++)
    if (m->listeners[i].fn == fn && m->listeners[i].ud == ud) {
      memmove(&m->listeners[i], &m->listeners[i + 1], (m->nlisteners - i - 1) * sizeof *m->listeners);
      m->nlisteners--;
      return;
    }
}

void lp2p_mdns_service_get_stats(const lp2p_mdns_service *m, lp2p_mdns_service_stats *out) {
  if (!out || out->struct_size < sizeof(size_t)) return;
  lp2p_mdns_service_stats s = m ? m->st : (lp2p_mdns_service_stats){0};
  if (m && m->eng) {
    lp2p_mdns_stats es;
    lp2p_mdns_get_stats(m->eng, &es);
    s.queries_sent = es.queries_sent;
    s.responses_sent = es.responses_sent;
    s.packets_malformed = es.packets_malformed;
    s.packets_flood_dropped = es.packets_flood_dropped;
    s.records_dropped = es.records_dropped;
    s.answers_rate_limited = es.answers_rate_limited;
  }
  size_t n = out->struct_size < sizeof s ? out->struct_size : sizeof s;
  s.struct_size = out->struct_size;
  memcpy(out, &s, n);
}
