/* swarm/listen.c - listeners and listen addresses. */
#include <stdio.h>
#include <string.h>

#include "swarm/swarm_int.h"
#include "swarm/udp_int.h"

static void srv_close_cb(uv_handle_t *h) {
  lp2p_swarm *sw = h->data;
  lp2p__free(&sw->mem, h);
  lp2p__swarm_handle_closed(sw);
}

static void on_connection(uv_stream_t *srv, int status) {
  lp2p__listener *l = srv->data;
  lp2p_swarm *sw = l->sw;
  lp2p__swarm_enter(sw);
  if (status < 0)
    lp2p_log(LP2P_LOG_WARN, LP2P__SW_LOG, "accept error: %s", uv_strerror(status));
  else
    lp2p__conn_accept(sw, l);
  lp2p__swarm_leave(sw);
}

static void emit_addr(lp2p_swarm *sw, lp2p_swarm_event_type type, const lp2p_multiaddr *ma, int err) {
  lp2p_swarm_event ev;
  memset(&ev, 0, sizeof ev);
  ev.struct_size = sizeof ev;
  ev.type = type;
  ev.addr = ma;
  ev.err = err;
  lp2p__swarm_emit(sw, &ev);
}

static void listener_free(lp2p_swarm *sw, lp2p__listener *l) {
  for (size_t i = 0; i < l->n_addrs; i++) lp2p_multiaddr_free(l->addrs[i]);
  lp2p__free(&sw->mem, l->addrs);
  lp2p_multiaddr_free(l->requested);
  lp2p_multiaddr_free(l->bound);
  if (l->srv) {
    l->srv->data = sw;
    uv_close((uv_handle_t *)l->srv, srv_close_cb);
  }
  lp2p__free(&sw->mem, l);
}

/* Is the IP component of a bound /ip4|ip6/x/tcp/p address unspecified? Sets *family, *port. */
static int unspecified(const lp2p_multiaddr *ma, int *family, int *port) {
  uint32_t c0, c1;
  const uint8_t *v0, *v1;
  size_t l0, l1;
  if (lp2p_multiaddr_count(ma) != 2 || lp2p_multiaddr_component(ma, 0, &c0, &v0, &l0) < 0 ||
      lp2p_multiaddr_component(ma, 1, &c1, &v1, &l1) < 0 || l1 != 2)
    return 0;
  *port = (v1[0] << 8) | v1[1];
  static const uint8_t zero[16];
  if (c0 == LP2P_MA_IP4 && l0 == 4 && !memcmp(v0, zero, 4)) {
    *family = AF_INET;
    return 1;
  }
  if (c0 == LP2P_MA_IP6 && l0 == 16 && !memcmp(v0, zero, 16)) {
    *family = AF_INET6;
    return 1;
  }
  return 0;
}

static int push_addr(lp2p_swarm *sw, lp2p__listener *l, lp2p_multiaddr *ma) {
  for (size_t i = 0; i < l->n_addrs; i++) {
    if (lp2p_multiaddr_equal(l->addrs[i], ma)) {
      lp2p_multiaddr_free(ma);
      return 0;
    }
  }
  lp2p_multiaddr **na = lp2p__realloc(&sw->mem, l->addrs, (l->n_addrs + 1) * sizeof *na);
  if (!na) {
    lp2p_multiaddr_free(ma);
    return LP2P_ERR_NOMEM;
  }
  l->addrs = na;
  l->addrs[l->n_addrs++] = ma;
  return 0;
}

static int expand(lp2p_swarm *sw, lp2p__listener *l) {
  int family, port;
  if (!unspecified(l->bound, &family, &port)) {
    lp2p_multiaddr *d = lp2p_multiaddr_dup(l->bound);
    return d ? push_addr(sw, l, d) : LP2P_ERR_NOMEM;
  }
  lp2p__ifent *ifs;
  size_t n;
  if (lp2p__interfaces_read(&sw->mem, &ifs, &n) == 0) {
    for (size_t i = 0; i < n; i++) {
      const unsigned up = LP2P_IF_UP | LP2P_IF_RUNNING;
      if (ifs[i].sa.ss_family != family || (ifs[i].pub.flags & up) != up) continue;
      struct sockaddr_storage ss = ifs[i].sa;
      if (family == AF_INET) {
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
      } else {
        if (((struct sockaddr_in6 *)&ss)->sin6_scope_id) continue; /* link-local needs a zone */
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
      }
      lp2p_multiaddr *ma;
      if (lp2p__tcp_sockaddr_to_ma((struct sockaddr *)&ss, &ma) == 0) push_addr(sw, l, ma);
    }
    lp2p__interfaces_release(&sw->mem, ifs, n);
  }
  if (!l->n_addrs) {
    lp2p_multiaddr *d = lp2p_multiaddr_dup(l->bound);
    return d ? push_addr(sw, l, d) : LP2P_ERR_NOMEM;
  }
  return 0;
}

int lp2p_swarm_listen_ma(lp2p_swarm *sw, const lp2p_multiaddr *ma) {
  if (!sw || !ma) return LP2P_ERR_INVAL;
  if (sw->freeing) return LP2P_ERR_STATE;
  const lp2p__transport *tr = lp2p__transport_for(ma, 1);
  if (!tr) return LP2P_ERR_UNSUPPORTED;
  lp2p__listener *l = lp2p__calloc(&sw->mem, 1, sizeof *l);
  if (!l) return LP2P_ERR_NOMEM;
  l->sw = sw;
  l->tr = tr;
  l->requested = lp2p_multiaddr_dup(ma);
  int rv = l->requested ? 0 : LP2P_ERR_NOMEM;
  if (!rv) {
    rv = tr->listen(sw->loop, &sw->mem, ma, 128, &l->srv, on_connection, &l->bound);
    if (l->srv) {
      l->srv->data = l;
      sw->handles++;
    }
  }
  if (!rv) rv = expand(sw, l);
  char ab[256];
  if (rv < 0) {
    lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "listen on %s failed: %s", lp2p__ma_str(ma, ab, sizeof ab),
             lp2p_err_name(rv));
    listener_free(sw, l);
    return rv;
  }
  lp2p__list_add_tail(&sw->listeners, &l->link);
  lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "listening on %s", lp2p__ma_str(l->bound, ab, sizeof ab));
  lp2p__swarm_enter(sw);
  for (size_t i = 0; i < l->n_addrs; i++) emit_addr(sw, LP2P_SWARM_EV_LISTEN_ADDR_ADDED, l->addrs[i], 0);
  lp2p__swarm_leave(sw);
  return 0;
}

int lp2p_swarm_listen(lp2p_swarm *sw, const char *text) {
  if (!sw || !text) return LP2P_ERR_INVAL;
  lp2p_multiaddr *ma;
  char err[LP2P_MULTIADDR_ERRLEN];
  int rv = lp2p_multiaddr_parse(&ma, text, err, sizeof err);
  if (rv < 0) {
    lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "listen: bad multiaddr '%s': %s", text, err);
    return rv;
  }
  rv = lp2p_swarm_listen_ma(sw, ma);
  lp2p_multiaddr_free(ma);
  return rv;
}

int lp2p_swarm_unlisten(lp2p_swarm *sw, const char *text) {
  if (!sw || !text) return LP2P_ERR_INVAL;
  lp2p_multiaddr *ma;
  int rv = lp2p_multiaddr_parse(&ma, text, NULL, 0);
  if (rv < 0) return rv;
  rv = LP2P_ERR_NOT_FOUND;
  for (lp2p__link *it = sw->listeners.next; it != &sw->listeners; it = it->next) {
    lp2p__listener *l = LP2P__CONTAINER(it, lp2p__listener, link);
    if (lp2p_multiaddr_equal(l->requested, ma) || lp2p_multiaddr_equal(l->bound, ma)) {
      lp2p__list_del(&l->link);
      lp2p__swarm_enter(sw);
      for (size_t i = 0; i < l->n_addrs; i++)
        emit_addr(sw, LP2P_SWARM_EV_LISTEN_ADDR_REMOVED, l->addrs[i], 0);
      listener_free(sw, l);
      lp2p__swarm_leave(sw);
      rv = 0;
      break;
    }
  }
  lp2p_multiaddr_free(ma);
  return rv;
}

size_t lp2p_swarm_listen_addrs(const lp2p_swarm *sw, const lp2p_multiaddr **out, size_t max) {
  size_t n = 0;
  for (const lp2p__link *it = sw->listeners.next; it != &sw->listeners; it = it->next) {
    const lp2p__listener *l = LP2P__CONTAINER(it, lp2p__listener, link);
    for (size_t i = 0; i < l->n_addrs; i++, n++)
      if (out && n < max) out[n] = l->addrs[i];
  }
  return n;
}

void lp2p__listeners_close_all(lp2p_swarm *sw) {
  while (!lp2p__list_empty(&sw->listeners)) {
    lp2p__listener *l = LP2P__CONTAINER(sw->listeners.next, lp2p__listener, link);
    lp2p__list_del(&l->link);
    listener_free(sw, l);
  }
}
