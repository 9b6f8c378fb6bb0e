/* transport/tcp.c - TCP over libuv: /ip4|ip6/<addr>/tcp/<port>. */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "transport/transport_int.h"

int lp2p__uv_err(int e) {
  switch (e) {
    case 0:
      return 0;
    case UV_ECONNREFUSED:
      return LP2P_ERR_CONNREFUSED;
    case UV_ENETUNREACH:
    case UV_EHOSTUNREACH:
    case UV_EADDRNOTAVAIL:
    case UV_ENETDOWN:
      return LP2P_ERR_UNREACHABLE;
    case UV_ECONNRESET:
    case UV_EPIPE:
    case UV_ECONNABORTED:
      return LP2P_ERR_CONNRESET;
    case UV_EADDRINUSE:
      return LP2P_ERR_ADDRINUSE;
    case UV_EOF:
      return LP2P_ERR_EOF;
    case UV_ETIMEDOUT:
      return LP2P_ERR_TIMEOUT;
    case UV_ECANCELED:
      return LP2P_ERR_CANCELED;
    case UV_ENOMEM:
    case UV_ENOBUFS:
      return LP2P_ERR_NOMEM;
    case UV_EINVAL:
      return LP2P_ERR_INVAL;
    case UV_EMFILE:
    case UV_ENFILE:
      return LP2P_ERR_LIMIT;
    default:
      return LP2P_ERR_IO;
  }
}

int lp2p__ip_sockaddr(uint32_t code, const uint8_t *v, size_t len, uint16_t port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (code == LP2P_MA_IP4 && len == 4) {
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, v, 4);
    sin->sin_port = htons(port);
    return 0;
  }
  if (code == LP2P_MA_IP6 && len == 16) {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, v, 16);
    sin6->sin6_port = htons(port);
    return 0;
  }
  return -1;
}

int lp2p__tcp_ma_to_sockaddr(const lp2p_multiaddr *ma, struct sockaddr_storage *ss) {
  uint32_t c0, c1;
  const uint8_t *v0, *v1;
  size_t l0, l1;
  if (lp2p_multiaddr_count(ma) != 2) return LP2P_ERR_UNSUPPORTED;
  if (lp2p_multiaddr_component(ma, 0, &c0, &v0, &l0) < 0 ||
      lp2p_multiaddr_component(ma, 1, &c1, &v1, &l1) < 0)
    return LP2P_ERR_MULTIADDR;
  if (c1 != LP2P_MA_TCP || l1 != 2) return LP2P_ERR_UNSUPPORTED;
  uint16_t port = (uint16_t)((v1[0] << 8) | v1[1]);
  if (lp2p__ip_sockaddr(c0, v0, l0, port, ss) == 0) return 0;
  return LP2P_ERR_UNSUPPORTED;
}

int lp2p__tcp_sockaddr_to_ma(const struct sockaddr *sa, lp2p_multiaddr **out) {
  char ip[64], text[128];
  int port;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
    if (uv_ip4_name(sin, ip, sizeof ip)) return LP2P_ERR_INVAL;
    port = ntohs(sin->sin_port);
    snprintf(text, sizeof text, "/ip4/%s/tcp/%d", ip, port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
    if (uv_ip6_name(sin6, ip, sizeof ip)) return LP2P_ERR_INVAL;
    port = ntohs(sin6->sin6_port);
    snprintf(text, sizeof text, "/ip6/%s/tcp/%d", ip, port);
  } else {
    return LP2P_ERR_UNSUPPORTED;
  }
  return lp2p_multiaddr_parse(out, text, NULL, 0);
}

static int tcp_handles(const lp2p_multiaddr *ma, int for_listen) {
  struct sockaddr_storage ss;
  (void)for_listen;
  return lp2p__tcp_ma_to_sockaddr(ma, &ss) == 0;
}

static int tcp_dial(uv_loop_t *loop, const lp2p_mem *mem, const lp2p_multiaddr *ma, uv_stream_t **io,
                    uv_connect_t *req, uv_connect_cb cb) {
  struct sockaddr_storage ss;
  int rv = lp2p__tcp_ma_to_sockaddr(ma, &ss);
  if (rv < 0) return rv;
  uv_tcp_t *t = lp2p__malloc(mem, sizeof *t);
  if (!t) return LP2P_ERR_NOMEM;
  rv = uv_tcp_init(loop, t);
  if (rv) {
    lp2p__free(mem, t);
    return lp2p__uv_err(rv);
  }
  *io = (uv_stream_t *)t; /* owned by the caller from here on */
  uv_tcp_nodelay(t, 1);
  rv = uv_tcp_connect(req, t, (const struct sockaddr *)&ss, cb);
  return rv ? lp2p__uv_err(rv) : 0;
}

static int tcp_listen(uv_loop_t *loop, const lp2p_mem *mem, const lp2p_multiaddr *ma, int backlog,
                      uv_stream_t **srv, uv_connection_cb cb, lp2p_multiaddr **bound) {
  struct sockaddr_storage ss;
  int rv = lp2p__tcp_ma_to_sockaddr(ma, &ss);
  if (rv < 0) return rv;
  uv_tcp_t *t = lp2p__malloc(mem, sizeof *t);
  if (!t) return LP2P_ERR_NOMEM;
  rv = uv_tcp_init(loop, t);
  if (rv) {
    lp2p__free(mem, t);
    return lp2p__uv_err(rv);
  }
  *srv = (uv_stream_t *)t;
  rv = uv_tcp_bind(t, (const struct sockaddr *)&ss, ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
  if (!rv) rv = uv_listen((uv_stream_t *)t, backlog, cb);
  if (rv) return lp2p__uv_err(rv);
  struct sockaddr_storage got;
  int len = sizeof got;
  rv = uv_tcp_getsockname(t, (struct sockaddr *)&got, &len);
  if (rv) return lp2p__uv_err(rv);
  return lp2p__tcp_sockaddr_to_ma((struct sockaddr *)&got, bound);
}

static int tcp_accept(uv_stream_t *srv, const lp2p_mem *mem, uv_stream_t **io) {
  uv_tcp_t *t = lp2p__malloc(mem, sizeof *t);
  if (!t) return LP2P_ERR_NOMEM;
  int rv = uv_tcp_init(srv->loop, t);
  if (rv) {
    lp2p__free(mem, t);
    return lp2p__uv_err(rv);
  }
  *io = (uv_stream_t *)t;
  rv = uv_accept(srv, (uv_stream_t *)t);
  if (rv) return lp2p__uv_err(rv);
  uv_tcp_nodelay(t, 1);
  return 0;
}

static int tcp_addrs(uv_stream_t *io, lp2p_multiaddr **local, lp2p_multiaddr **remote) {
  struct sockaddr_storage ss;
  int len, rv;
  if (local) {
    *local = NULL;
    len = sizeof ss;
    rv = uv_tcp_getsockname((uv_tcp_t *)io, (struct sockaddr *)&ss, &len);
    if (rv) return lp2p__uv_err(rv);
    if ((rv = lp2p__tcp_sockaddr_to_ma((struct sockaddr *)&ss, local)) < 0) return rv;
  }
  if (remote) {
    *remote = NULL;
    len = sizeof ss;
    rv = uv_tcp_getpeername((uv_tcp_t *)io, (struct sockaddr *)&ss, &len);
    if (rv) return lp2p__uv_err(rv);
    if ((rv = lp2p__tcp_sockaddr_to_ma((struct sockaddr *)&ss, remote)) < 0) return rv;
  }
  return 0;
}

const lp2p__transport lp2p__tcp_transport = {
    .name = "tcp",
    .handles = tcp_handles,
    .dial = tcp_dial,
    .listen = tcp_listen,
    .accept = tcp_accept,
    .addrs = tcp_addrs,
};

const lp2p__transport *const lp2p__transports[] = {&lp2p__tcp_transport, &lp2p__memory_transport, NULL};

const lp2p__transport *lp2p__transport_for(const lp2p_multiaddr *ma, int for_listen) {
  for (size_t i = 0; lp2p__transports[i]; i++)
    if (lp2p__transports[i]->handles(ma, for_listen)) return lp2p__transports[i];
  return NULL;
}
