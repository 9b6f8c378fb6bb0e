/* swarm/udp.c - UDP handles owned by the swarm (see lp2p/udp.h). Lifetime
 * follows lp2p_timer: counted in sw->handles, closed by lp2p_udp_free or
 * lp2p_swarm_free, memory released from the libuv close callback. */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "swarm/swarm_int.h"
#include "swarm/udp_int.h"

#define UDP_LOG "udp"
#define UDP_MAX_PAYLOAD 65507          /* largest IPv4 UDP payload */
#define UDP_RBUF 65536                 /* receive buffer (one datagram) */
#define UDP_MAX_QUEUED (1024 * 1024)   /* bytes of datagrams waiting for the socket */

struct lp2p_udp {
  lp2p_swarm *sw;
  lp2p__link link; /* sw->udps */
  uv_udp_t h;
  lp2p_udp_recv_fn fn;
  void *ud;
  lp2p_multiaddr *local;
  int family;
  unsigned flags;
  int freed;
  size_t queued; /* bytes in uv_udp_send requests */
  uint64_t send_errors;
  uint8_t *rbuf;
};

typedef struct udp_send {
  uv_udp_send_t req;
  lp2p_udp *u;
  size_t n;
  uint8_t data[];
} udp_send;

static int map_err(int uverr) {
  switch (uverr) {
    case UV_EMSGSIZE:
      return LP2P_ERR_TOO_LARGE;
    case UV_EINVAL:
      return LP2P_ERR_INVAL;
    case UV_EAFNOSUPPORT:
      return LP2P_ERR_MULTIADDR;
    default:
      return lp2p__uv_err(uverr);
  }
}

static int errno_err(int e) {
  switch (e) {
    case EADDRINUSE:
      return LP2P_ERR_EXISTS;
    case EADDRNOTAVAIL:
    case ENODEV:
    case ENXIO:
      return LP2P_ERR_NOT_FOUND;
    case EINVAL:
      return LP2P_ERR_INVAL;
    case ENOMEM:
    case ENOBUFS:
      return LP2P_ERR_NOMEM;
    default:
      return LP2P_ERR_IO;
  }
}

static void close_cb(uv_handle_t *h) {
  lp2p_udp *u = h->data;
  lp2p_swarm *sw = u->sw;
  lp2p_multiaddr_free(u->local);
  lp2p__free(&sw->mem, u->rbuf);
  lp2p__free(&sw->mem, u);
  lp2p__swarm_handle_closed(sw);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  lp2p_udp *u = h->data;
  if (!u->rbuf) u->rbuf = lp2p__malloc(&u->sw->mem, UDP_RBUF);
  *buf = u->rbuf ? uv_buf_init((char *)u->rbuf, UDP_RBUF) : uv_buf_init(NULL, 0);
}

static void recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags) {
  lp2p_udp *u = h->data;
  (void)buf;
  if (u->freed) return;
  if (nread < 0) {
    lp2p_log(LP2P_LOG_DEBUG, UDP_LOG, "receive error: %s", uv_strerror((int)nread));
    return;
  }
  if (!addr) return; /* nothing more to read now */
  if (flags & UV_UDP_PARTIAL) {
    lp2p_log(LP2P_LOG_DEBUG, UDP_LOG, "truncated datagram dropped");
    return;
  }
  lp2p_multiaddr *from;
  if (lp2p__ip_sockaddr_to_ma(addr, 1, &from) < 0) return;
  lp2p_swarm *sw = u->sw;
  lp2p__swarm_enter(sw);
  u->fn(u, from, u->rbuf, (size_t)nread, u->ud);
  lp2p__swarm_leave(sw);
  lp2p_multiaddr_free(from);
}

int lp2p_udp_new(lp2p_udp **out, lp2p_swarm *sw, const lp2p_multiaddr *bind, unsigned flags,
                 lp2p_udp_recv_fn on_recv, void *ud) {
  if (out) *out = NULL;
  if (!out || !sw || !bind || !on_recv || (flags & ~(LP2P_UDP_REUSEADDR | LP2P_UDP_IPV6ONLY)))
    return LP2P_ERR_INVAL;
  if (sw->freeing) return LP2P_ERR_STATE;
  struct sockaddr_storage ss;
  int rv = lp2p__ip_ma_to_sockaddr(bind, 1, &ss);
  if (rv < 0) return rv;
  lp2p_udp *u = lp2p__calloc(&sw->mem, 1, sizeof *u);
  if (!u) return LP2P_ERR_NOMEM;
  u->sw = sw;
  u->fn = on_recv;
  u->ud = ud;
  u->family = ss.ss_family;
  u->flags = flags;
  if ((rv = uv_udp_init_ex(sw->loop, &u->h, (unsigned)ss.ss_family)) != 0) {
    lp2p__free(&sw->mem, u);
    return map_err(rv);
  }
  u->h.data = u;
  sw->handles++;
  /* from here on failures close the handle (released by close_cb) */
  unsigned uvflags = 0;
  if (flags & LP2P_UDP_REUSEADDR) {
    uvflags |= UV_UDP_REUSEADDR;
#ifdef SO_REUSEPORT
    uv_os_fd_t fd;
    int on = 1;
    if (uv_fileno((uv_handle_t *)&u->h, &fd) == 0) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
#endif
  }
  if ((flags & LP2P_UDP_IPV6ONLY) && ss.ss_family == AF_INET6) uvflags |= UV_UDP_IPV6ONLY;
#ifdef __linux__
  { /* receive only the groups this socket joined (Linux otherwise delivers every group joined by any
     * socket of the host to a socket bound to the wildcard address) */
    uv_os_fd_t fd;
    int off = 0;
    if (uv_fileno((uv_handle_t *)&u->h, &fd) == 0) {
      if (ss.ss_family == AF_INET) setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &off, sizeof off);
#ifdef IPV6_MULTICAST_ALL
      if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &off, sizeof off);
#endif
    }
  }
#endif
  rv = uv_udp_bind(&u->h, (const struct sockaddr *)&ss, uvflags);
  struct sockaddr_storage got;
  int glen = sizeof got;
  if (!rv) rv = uv_udp_getsockname(&u->h, (struct sockaddr *)&got, &glen);
  if (rv) {
    rv = map_err(rv);
  } else {
    rv = lp2p__ip_sockaddr_to_ma((const struct sockaddr *)&got, 1, &u->local);
    if (!rv) rv = map_err(uv_udp_recv_start(&u->h, alloc_cb, recv_cb));
  }
  char ab[128];
  if (rv < 0) {
    lp2p_log(LP2P_LOG_DEBUG, UDP_LOG, "bind %s failed: %s", lp2p__ma_str(bind, ab, sizeof ab), lp2p_err_name(rv));
    u->freed = 1;
    uv_close((uv_handle_t *)&u->h, close_cb);
    return rv;
  }
  lp2p__list_add_tail(&sw->udps, &u->link);
  lp2p_log(LP2P_LOG_DEBUG, UDP_LOG, "bound %s", lp2p__ma_str(u->local, ab, sizeof ab));
  *out = u;
  return 0;
}

/* ------------------------------------------------------------------------- */
/* multicast */

static int sock_fd(lp2p_udp *u, uv_os_fd_t *fd) {
  if (!u || u->freed) return LP2P_ERR_INVAL;
  return uv_fileno((uv_handle_t *)&u->h, fd) ? LP2P_ERR_STATE : 0;
}

#ifndef __linux__
/* The first IPv4 address of interface ifindex. */
static int if_ipv4(lp2p_swarm *sw, unsigned ifindex, struct in_addr *a) {
  lp2p__ifent *v;
  size_t n;
  int rv = lp2p__interfaces_read(&sw->mem, &v, &n);
  if (rv < 0) return rv;
  rv = LP2P_ERR_NOT_FOUND;
  for (size_t i = 0; i < n; i++)
    if (v[i].pub.index == ifindex && v[i].sa.ss_family == AF_INET) {
      *a = ((struct sockaddr_in *)&v[i].sa)->sin_addr;
      rv = 0;
      break;
    }
  lp2p__interfaces_release(&sw->mem, v, n);
  return rv;
}
#endif

static int membership(lp2p_udp *u, const lp2p_multiaddr *group, unsigned ifindex, int join) {
  uv_os_fd_t fd;
  int rv = sock_fd(u, &fd);
  if (rv < 0) return rv;
  struct sockaddr_storage g;
  if ((rv = lp2p__ip_ma_to_sockaddr(group, 0, &g)) < 0) return rv;
  if (g.ss_family != u->family) return LP2P_ERR_MULTIADDR;
  if (g.ss_family == AF_INET) {
    struct in_addr ga = ((struct sockaddr_in *)&g)->sin_addr;
    if (!IN_MULTICAST(ntohl(ga.s_addr))) return LP2P_ERR_MULTIADDR;
#ifdef __linux__
    struct ip_mreqn m;
    memset(&m, 0, sizeof m);
    m.imr_multiaddr = ga;
    m.imr_ifindex = (int)ifindex;
#else
    struct ip_mreq m;
    memset(&m, 0, sizeof m);
    m.imr_multiaddr = ga;
    m.imr_interface.s_addr = htonl(INADDR_ANY);
    if (ifindex && (rv = if_ipv4(u->sw, ifindex, &m.imr_interface)) < 0) return rv;
#endif
    if (setsockopt(fd, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &m, sizeof m) != 0)
      return errno_err(errno);
    return 0;
  }
  struct ipv6_mreq m6;
  memset(&m6, 0, sizeof m6);
  m6.ipv6mr_multiaddr = ((struct sockaddr_in6 *)&g)->sin6_addr;
  if (!IN6_IS_ADDR_MULTICAST(&m6.ipv6mr_multiaddr)) return LP2P_ERR_MULTIADDR;
  m6.ipv6mr_interface = ifindex;
  if (setsockopt(fd, IPPROTO_IPV6, join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP, &m6, sizeof m6) != 0)
    return errno_err(errno);
  return 0;
}

int lp2p_udp_join(lp2p_udp *u, const lp2p_multiaddr *group, unsigned ifindex) {
  return membership(u, group, ifindex, 1);
}

int lp2p_udp_leave(lp2p_udp *u, const lp2p_multiaddr *group, unsigned ifindex) {
  return membership(u, group, ifindex, 0);
}

int lp2p_udp_set_multicast_if(lp2p_udp *u, unsigned ifindex) {
  uv_os_fd_t fd;
  int rv = sock_fd(u, &fd);
  if (rv < 0) return rv;
  if (u->family == AF_INET) {
#ifdef __linux__
    struct ip_mreqn m;
    memset(&m, 0, sizeof m);
    m.imr_ifindex = (int)ifindex;
    rv = setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof m);
#else
    struct in_addr a;
    a.s_addr = htonl(INADDR_ANY);
    if (ifindex && (rv = if_ipv4(u->sw, ifindex, &a)) < 0) return rv;
    rv = setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a);
#endif
  } else {
    unsigned idx = ifindex;
    rv = setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx);
  }
  return rv ? errno_err(errno) : 0;
}

int lp2p_udp_set_multicast_ttl(lp2p_udp *u, int ttl) {
  if (!u || u->freed || ttl < 1 || ttl > 255) return LP2P_ERR_INVAL;
  return map_err(uv_udp_set_multicast_ttl(&u->h, ttl));
}

int lp2p_udp_set_multicast_loop(lp2p_udp *u, int on) {
  if (!u || u->freed) return LP2P_ERR_INVAL;
  return map_err(uv_udp_set_multicast_loop(&u->h, on ? 1 : 0));
}

/* ------------------------------------------------------------------------- */
/* sending */

static void send_cb(uv_udp_send_t *req, int status) {
  udp_send *q = LP2P__CONTAINER(req, udp_send, req);
  lp2p_udp *u = q->u;
  u->queued -= q->n;
  if (status < 0 && status != UV_ECANCELED) {
    u->send_errors++;
    lp2p_log(LP2P_LOG_DEBUG, UDP_LOG, "queued datagram failed: %s", uv_strerror(status));
  }
  lp2p__free(&u->sw->mem, q);
}

int lp2p_udp_send(lp2p_udp *u, const lp2p_multiaddr *to, const uint8_t *p, size_t n) {
  if (!u || u->freed || !to || (!p && n)) return LP2P_ERR_INVAL;
  if (n > UDP_MAX_PAYLOAD) return LP2P_ERR_TOO_LARGE;
  struct sockaddr_storage ss;
  int rv = lp2p__ip_ma_to_sockaddr(to, 1, &ss);
  if (rv < 0) return rv;
  if (ss.ss_family != u->family) {
    if (u->family != AF_INET6 || (u->flags & LP2P_UDP_IPV6ONLY)) return LP2P_ERR_MULTIADDR;
    /* an IPv4 destination from a dual-stack IPv6 socket: ::ffff:a.b.c.d */
    struct sockaddr_in v4 = *(struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    memset(&ss, 0, sizeof ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = v4.sin_port;
    s6->sin6_addr.s6_addr[10] = 0xff;
    s6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&s6->sin6_addr.s6_addr[12], &v4.sin_addr, 4);
  }
  uv_buf_t b = uv_buf_init((char *)(uintptr_t)(p ? p : (const uint8_t *)""), (unsigned)n);
  rv = uv_udp_try_send(&u->h, &b, 1, (const struct sockaddr *)&ss);
  if (rv >= 0) return 0;
  if (rv != UV_EAGAIN) return map_err(rv);
  /* the socket buffer is full (or earlier datagrams wait): queue a copy */
  if (u->queued + n > UDP_MAX_QUEUED) return LP2P_ERR_LIMIT;
  udp_send *q = lp2p__malloc(&u->sw->mem, sizeof *q + n);
  if (!q) return LP2P_ERR_NOMEM;
  q->u = u;
  q->n = n;
  if (n) memcpy(q->data, p, n);
  b = uv_buf_init((char *)q->data, (unsigned)n);
  rv = uv_udp_send(&q->req, &u->h, &b, 1, (const struct sockaddr *)&ss, send_cb);
  if (rv) {
    lp2p__free(&u->sw->mem, q);
    return map_err(rv);
  }
  u->queued += n;
  return 0;
}

uint64_t lp2p_udp_send_errors(const lp2p_udp *u) { return u ? u->send_errors : 0; }
const lp2p_multiaddr *lp2p_udp_local_addr(const lp2p_udp *u) { return u ? u->local : NULL; }
lp2p_swarm *lp2p_udp_swarm(const lp2p_udp *u) { return u ? u->sw : NULL; }

void lp2p_udp_free(lp2p_udp *u) {
  if (!u || u->freed) return;
  u->freed = 1;
  uv_udp_recv_stop(&u->h);
  lp2p__list_del(&u->link);
  uv_close((uv_handle_t *)&u->h, close_cb); /* queued sends get UV_ECANCELED first */
}

void lp2p__udp_free_all(lp2p_swarm *sw) {
  while (!lp2p__list_empty(&sw->udps)) lp2p_udp_free(LP2P__CONTAINER(sw->udps.next, lp2p_udp, link));
}
