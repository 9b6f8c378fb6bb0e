/* swarm/interfaces.c - the network interface table (getifaddrs), the swarm's
 * snapshot of it and change notification by polling (see lp2p/udp.h). */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swarm/swarm_int.h"
#include "swarm/udp_int.h"

struct lp2p__ifwatch {
  lp2p__ifent *v; /* current snapshot */
  size_t n;
  lp2p_timer *poll; /* NULL when polling is off */
  int have;         /* a snapshot was taken */
};

int lp2p__ip_sockaddr_to_ma(const struct sockaddr *sa, int with_udp_port, lp2p_multiaddr **out) {
  char ip[INET6_ADDRSTRLEN], text[128];
  int port;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
    if (!inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip)) return LP2P_ERR_INVAL;
    port = ntohs(sin->sin_port);
    snprintf(text, sizeof text, "/ip4/%s", ip);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
    if (!inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip)) return LP2P_ERR_INVAL;
    port = ntohs(sin6->sin6_port);
    snprintf(text, sizeof text, "/ip6/%s", ip);
  } else {
    return LP2P_ERR_UNSUPPORTED;
  }
  if (with_udp_port) snprintf(text + strlen(text), sizeof text - strlen(text), "/udp/%d", port);
  return lp2p_multiaddr_parse(out, text, NULL, 0);
}

int lp2p__ip_ma_to_sockaddr(const lp2p_multiaddr *ma, int need_port, struct sockaddr_storage *ss) {
  uint32_t c0, c1;
  const uint8_t *v0, *v1;
  size_t l0, l1;
  size_t cnt = ma ? lp2p_multiaddr_count(ma) : 0;
  if (cnt < 1 || cnt > 2 || (need_port && cnt != 2)) return LP2P_ERR_MULTIADDR;
  if (lp2p_multiaddr_component(ma, 0, &c0, &v0, &l0) < 0) return LP2P_ERR_MULTIADDR;
  uint16_t port = 0;
  if (cnt == 2) {
    if (lp2p_multiaddr_component(ma, 1, &c1, &v1, &l1) < 0 || c1 != LP2P_MA_UDP || l1 != 2)
      return LP2P_ERR_MULTIADDR;
    port = (uint16_t)((v1[0] << 8) | v1[1]);
  }
  if (lp2p__ip_sockaddr(c0, v0, l0, port, ss) == 0) return 0;
  return LP2P_ERR_MULTIADDR;
}

/* ------------------------------------------------------------------------- */
/* reading the table */

static unsigned prefix_len(const struct sockaddr *mask) {
  const uint8_t *b;
  size_t n;
  if (!mask) return 0;
  if (mask->sa_family == AF_INET) {
    b = (const uint8_t *)&((const struct sockaddr_in *)mask)->sin_addr;
    n = 4;
  } else if (mask->sa_family == AF_INET6) {
    b = (const uint8_t *)&((const struct sockaddr_in6 *)mask)->sin6_addr;
    n = 16;
  } else {
    return 0;
  }
  unsigned bits = 0;
  for (size_t i = 0; i < n; i++)
    for (int k = 7; k >= 0; k--) {
      if (!(b[i] >> k & 1)) return bits;
      bits++;
    }
  return bits;
}

static const uint8_t *addr_bytes(const struct sockaddr_storage *ss, size_t *len) {
  if (ss->ss_family == AF_INET) {
    *len = 4;
    return (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
  }
  *len = 16;
  return (const uint8_t *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
}

static int ent_cmp(const void *a, const void *b) {
  const lp2p__ifent *x = a, *y = b;
  if (x->pub.index != y->pub.index) return x->pub.index < y->pub.index ? -1 : 1;
  if (x->sa.ss_family != y->sa.ss_family) return x->sa.ss_family == AF_INET ? -1 : 1;
  size_t lx, ly;
  const uint8_t *bx = addr_bytes(&x->sa, &lx), *by = addr_bytes(&y->sa, &ly);
  return memcmp(bx, by, lx);
}

void lp2p__interfaces_release(const lp2p_mem *mem, lp2p__ifent *v, size_t n) {
  for (size_t i = 0; i < n; i++) lp2p_multiaddr_free(v[i].ma);
  lp2p__free(mem, v);
}

int lp2p__interfaces_read(const lp2p_mem *mem, lp2p__ifent **out, size_t *nout) {
  *out = NULL;
  *nout = 0;
  struct ifaddrs *ifa;
  if (getifaddrs(&ifa) != 0) return LP2P_ERR_IO;
  size_t cap = 0;
  for (struct ifaddrs *it = ifa; it; it = it->ifa_next)
    if (it->ifa_addr && (it->ifa_addr->sa_family == AF_INET || it->ifa_addr->sa_family == AF_INET6)) cap++;
  lp2p__ifent *v = lp2p__calloc(mem, cap ? cap : 1, sizeof *v);
  if (!v) {
    freeifaddrs(ifa);
    return LP2P_ERR_NOMEM;
  }
  size_t n = 0;
  int rv = 0;
  for (struct ifaddrs *it = ifa; it && !rv; it = it->ifa_next) {
    if (!it->ifa_addr || (it->ifa_addr->sa_family != AF_INET && it->ifa_addr->sa_family != AF_INET6)) continue;
    lp2p__ifent *e = &v[n];
    memcpy(&e->sa, it->ifa_addr,
           it->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    if (e->sa.ss_family == AF_INET)
      ((struct sockaddr_in *)&e->sa)->sin_port = 0;
    else
      ((struct sockaddr_in6 *)&e->sa)->sin6_port = 0;
    snprintf(e->pub.name, sizeof e->pub.name, "%s", it->ifa_name ? it->ifa_name : "");
    e->pub.index = it->ifa_name ? if_nametoindex(it->ifa_name) : 0;
    e->pub.prefix_len = prefix_len(it->ifa_netmask);
    unsigned f = 0;
    if (it->ifa_flags & IFF_UP) f |= LP2P_IF_UP;
    if (it->ifa_flags & IFF_RUNNING) f |= LP2P_IF_RUNNING;
    if (it->ifa_flags & IFF_LOOPBACK) f |= LP2P_IF_LOOPBACK;
    if (it->ifa_flags & IFF_MULTICAST) f |= LP2P_IF_MULTICAST;
    e->pub.flags = f;
    rv = lp2p__ip_sockaddr_to_ma((struct sockaddr *)&e->sa, 0, &e->ma);
    if (rv == LP2P_ERR_INVAL || rv == LP2P_ERR_UNSUPPORTED) { /* skip what cannot be named */
      rv = 0;
      continue;
    }
    if (rv) break;
    e->pub.addr = e->ma;
    n++;
  }
  freeifaddrs(ifa);
  if (rv) {
    lp2p__interfaces_release(mem, v, n);
    return rv < 0 ? rv : LP2P_ERR_NOMEM;
  }
  qsort(v, n, sizeof *v, ent_cmp);
  for (size_t i = 0; i < n; i++) v[i].pub.addr = v[i].ma; /* qsort moved the entries */
  *out = v;
  *nout = n;
  return 0;
}

/* ------------------------------------------------------------------------- */
/* snapshot and polling */

static int same(const lp2p__ifent *a, size_t na, const lp2p__ifent *b, size_t nb) {
  if (na != nb) return 0;
  for (size_t i = 0; i < na; i++) {
    if (a[i].pub.index != b[i].pub.index || a[i].pub.flags != b[i].pub.flags ||
        a[i].pub.prefix_len != b[i].pub.prefix_len || strcmp(a[i].pub.name, b[i].pub.name) ||
        a[i].sa.ss_family != b[i].sa.ss_family || ent_cmp(&a[i], &b[i]))
      return 0;
  }
  return 1;
}

/* Re-reads the table; returns 1 if the snapshot changed, 0 if not, or an error. */
static int refresh(lp2p_swarm *sw) {
  lp2p__ifwatch *w = sw->ifw;
  lp2p__ifent *v;
  size_t n;
  int rv = lp2p__interfaces_read(&sw->mem, &v, &n);
  if (rv < 0) return rv;
  if (w->have && same(w->v, w->n, v, n)) {
    lp2p__interfaces_release(&sw->mem, v, n);
    return 0;
  }
  int changed = w->have;
  lp2p__interfaces_release(&sw->mem, w->v, w->n);
  w->v = v;
  w->n = n;
  w->have = 1;
  return changed;
}

static void poll_cb(lp2p_timer *t, void *ud) {
  (void)t;
  lp2p_swarm *sw = ud;
  int rv = refresh(sw);
  if (rv < 0) {
    lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "reading the interface table failed: %s", lp2p_strerror(rv));
    return;
  }
  if (rv == 1) {
    lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "network interfaces changed (%zu addresses)", sw->ifw->n);
    lp2p_swarm_event ev;
    memset(&ev, 0, sizeof ev);
    ev.struct_size = sizeof ev;
    ev.type = LP2P_SWARM_EV_INTERFACES_CHANGED;
    lp2p__swarm_emit(sw, &ev);
  }
}

int lp2p_swarm_interfaces(lp2p_swarm *sw, lp2p_interface *out, size_t max) {
  if (!sw || (!out && max)) return LP2P_ERR_INVAL;
  if (!sw->ifw) {
    if (sw->freeing) return LP2P_ERR_STATE;
    if (!(sw->ifw = lp2p__calloc(&sw->mem, 1, sizeof *sw->ifw))) return LP2P_ERR_NOMEM;
  }
  lp2p__ifwatch *w = sw->ifw;
  if (!w->have || !sw->cfg.interface_poll_ms) {
    int rv = refresh(sw);
    if (rv < 0) return rv;
  }
  if (sw->cfg.interface_poll_ms && !w->poll && !sw->freeing) {
    if (lp2p_timer_new(&w->poll, sw, poll_cb, sw) == 0) {
      lp2p_timer_start(w->poll, sw->cfg.interface_poll_ms, sw->cfg.interface_poll_ms);
    }
  }
  for (size_t i = 0; i < w->n && i < max; i++) out[i] = w->v[i].pub;
  return w->n > (size_t)INT32_MAX ? INT32_MAX : (int)w->n;
}

void lp2p__interfaces_free(lp2p_swarm *sw) {
  lp2p__ifwatch *w = sw->ifw;
  if (!w) return;
  lp2p_timer_free(w->poll);
  lp2p__interfaces_release(&sw->mem, w->v, w->n);
  lp2p__free(&sw->mem, w);
  sw->ifw = NULL;
}
