/* transport/transport_int.h - internal transport and resolver vtables.
 *
 * A transport turns a multiaddr into a connected libuv byte stream (dial) or
 * accepts them (listen). The swarm never looks inside: it reads/writes the
 * uv_stream_t it gets and closes it with uv_close(), then frees the handle
 * memory with lp2p__free(mem, io). Transports are stateless tables; all state
 * lives in the libuv handles they allocate (through the swarm's lp2p_mem).
 *
 * The vtable hands over libuv streams rather than owning byte I/O itself: a transport is any way to
 * get a uv_stream_t (TCP: uv_tcp_t; the in-process /memory transport of tests: a uv_pipe_t on a
 * Unix-domain socket, transport/memory.c). That keeps the swarm's zero-copy write path
 * (uv_try_write straight from seal buffers) identical for every transport. A transport whose bytes
 * do not come from a file descriptor (QUIC streams, relays) will need byte-I/O entries here.
 *
 * A resolver rewrites a multiaddr that no transport dials directly (/dns4,
 * /dns6, /dnsaddr) into dialable ones; the dial pipeline expands resolvable
 * addresses in place before dialing them. */
#ifndef LP2P_TRANSPORT_INT_H
#define LP2P_TRANSPORT_INT_H
#include <uv.h>

#include "lp2p/common.h"
#include "lp2p/multiaddr.h"

typedef struct lp2p__transport {
  const char *name;
  /* 1 if this transport can dial (for_listen 0) / listen on (1) ma. ma has no /p2p suffix. */
  int (*handles)(const lp2p_multiaddr *ma, int for_listen);
  /* Allocates the stream handle (*io, owned by the caller from now on, even if
   * the connect later fails) and starts connecting; cb(req, status) follows
   * (UV_ECANCELED if *io is closed first). req->data is the caller's. */
  int (*dial)(uv_loop_t *loop, const lp2p_mem *mem, const lp2p_multiaddr *ma, uv_stream_t **io,
              uv_connect_t *req, uv_connect_cb cb);
  /* Binds and listens; *srv owned by the caller (uv_close + lp2p__free). *bound
   * receives the actual address (port resolved), owned by the caller. */
  int (*listen)(uv_loop_t *loop, const lp2p_mem *mem, const lp2p_multiaddr *ma, int backlog,
                uv_stream_t **srv, uv_connection_cb cb, lp2p_multiaddr **bound);
  /* Accepts one pending connection of srv into a new handle (*io owned by the caller). */
  int (*accept)(uv_stream_t *srv, const lp2p_mem *mem, uv_stream_t **io);
  /* Local and remote address of a connected stream (each owned by the caller; either may be NULL). */
  int (*addrs)(uv_stream_t *io, lp2p_multiaddr **local, lp2p_multiaddr **remote);
} lp2p__transport;

/* A resolver request in flight. */
typedef struct lp2p__resolve_req lp2p__resolve_req;
/* addrs[0..n) are borrowed for the duration of the call. Called exactly once
 * (err LP2P_ERR_CANCELED after lp2p__resolver.cancel). */
typedef void (*lp2p__resolve_cb)(void *ud, int err, lp2p_multiaddr *const *addrs, size_t n);

typedef struct lp2p__resolver {
  const char *name;
  int (*handles)(const lp2p_multiaddr *ma);
  int (*resolve)(uv_loop_t *loop, const lp2p_mem *mem, const lp2p_multiaddr *ma, lp2p__resolve_cb cb,
                 void *ud, lp2p__resolve_req **out);
  void (*cancel)(lp2p__resolve_req *req);
} lp2p__resolver;

/* The built-in resolvers (transport/dns.c), NULL-terminated. */
extern const lp2p__resolver *const lp2p__resolvers[];
const lp2p__resolver *lp2p__resolver_for(const lp2p_multiaddr *ma);
extern const lp2p__resolver lp2p__dns_resolver;
/* Tests only: DNS servers to use instead of the system's ("127.0.0.1:5353"). */
extern char *lp2p__dns_servers_override;

/* The built-in transports, NULL-terminated. */
extern const lp2p__transport *const lp2p__transports[];
/* The transport for ma (NULL if none). */
const lp2p__transport *lp2p__transport_for(const lp2p_multiaddr *ma, int for_listen);

/* /memory/<u64>: in-process, for tests (transport/memory.c). */
extern const lp2p__transport lp2p__memory_transport;

/* TCP helpers shared with the swarm (transport/tcp.c). */
extern const lp2p__transport lp2p__tcp_transport;
/* The ip4/ip6 component (code, value bytes) + port as a sockaddr (0, or -1 if not an IP address). */
int lp2p__ip_sockaddr(uint32_t code, const uint8_t *v, size_t len, uint16_t port, struct sockaddr_storage *ss);
/* sockaddr <-> /ip4|ip6/<a>/tcp/<p>. */
int lp2p__tcp_ma_to_sockaddr(const lp2p_multiaddr *ma, struct sockaddr_storage *ss);
int lp2p__tcp_sockaddr_to_ma(const struct sockaddr *sa, lp2p_multiaddr **out);
/* Map a libuv error to LP2P_ERR_*. */
int lp2p__uv_err(int uverr);

#endif
