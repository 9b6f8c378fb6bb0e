/* fuzz_swarm_inbound.c - a peer sends arbitrary bytes to a live swarm.
 *
 * One swarm (echo protocol "/echo" registered) lives for the whole run; each
 * input is one inbound connection, carried by a socketpair through a fake
 * transport (the internal transport vtable), so no TCP ports are used.
 *   data[0] & 1 == 0: data[1..] is sent raw: multistream / Noise handshake layer.
 *   data[0] & 1 == 1: a real client completes multistream + Noise XX (early
 *                     muxer negotiation), then sends data[1..] encrypted as
 *                     yamux plaintext: frames, streams, multistream on streams.
 * The client then half-closes; the swarm must tear the connection down (EOF),
 * never crash, and leave nothing behind (loop handles, connections). */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "swarm/swarm_int.h"

static uv_loop_t g_loop;
static lp2p_swarm *g_sw;
static lp2p_privkey *g_server_key, *g_client_key;
static lp2p__listener g_listener;
static int g_server_fd = -1;

/* ---- fake transport: accept() hands out the server end of the socketpair ---- */
static int fake_accept(uv_stream_t *srv, const lp2p_mem *mem, uv_stream_t **io) {
  (void)srv;
  uv_pipe_t *p = lp2p__malloc(mem, sizeof *p);
  if (!p) return LP2P_ERR_NOMEM;
  uv_pipe_init(&g_loop, p, 0);
  *io = (uv_stream_t *)p;
  return uv_pipe_open(p, g_server_fd) ? LP2P_ERR_IO : 0;
}
static int fake_addrs(uv_stream_t *io, lp2p_multiaddr **local, lp2p_multiaddr **remote) {
  (void)io;
  if (local) lp2p_multiaddr_parse(local, "/ip4/127.0.0.1/tcp/1", NULL, 0);
  if (remote) lp2p_multiaddr_parse(remote, "/ip4/127.0.0.1/tcp/2", NULL, 0);
  return 0;
}
static const lp2p__transport fake_tr = {"fake", NULL, NULL, NULL, fake_accept, fake_addrs};

/* ---- echo protocol ---- */
static void echo_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  (void)ud;
  if (lp2p_stream_write(s, p, n) < 0) lp2p_stream_reset(s);
}
static void echo_eof(lp2p_stream *s, void *ud) {
  (void)ud;
  lp2p_stream_close_write(s);
}
static const lp2p_stream_handler echo_h = {sizeof(lp2p_stream_handler), NULL, echo_data, echo_eof, NULL, NULL};

static void setup(void) {
  uint8_t seed[32];
  uv_loop_init(&g_loop);
  memset(seed, 1, sizeof seed);
  lp2p_privkey_from_ed25519_seed(&g_server_key, seed);
  memset(seed, 2, sizeof seed);
  lp2p_privkey_from_ed25519_seed(&g_client_key, seed);
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = g_server_key;
  cfg.keepalive_interval_ms = 0;
  cfg.idle_timeout_ms = 0;
  if (lp2p_swarm_new_uv(&g_sw, &cfg, &g_loop, NULL)) abort();
  lp2p_swarm_set_protocol(g_sw, "/echo", &echo_h, NULL);
  g_listener.sw = g_sw;
  g_listener.tr = &fake_tr;
}

/* ---- client side ---- */
typedef struct client {
  uv_pipe_t pipe;
  uint8_t in[1 << 17];
  size_t in_len;
  int eof, closed;
} client;

static void c_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  client *c = h->data;
  (void)s;
  b->base = (char *)c->in + c->in_len;
  b->len = sizeof c->in - c->in_len;
  if (!b->len) { /* we only need the handshake bytes: drop the rest */
    c->in_len = 0;
    b->base = (char *)c->in;
    b->len = sizeof c->in;
  }
}
static void c_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  client *c = st->data;
  (void)b;
  if (n > 0) c->in_len += (size_t)n;
  if (n < 0) {
    c->eof = 1;
    uv_read_stop(st);
  }
}
static void c_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}
static void c_send(client *c, const uint8_t *p, size_t n) {
  if (!n) return;
  uv_write_t *w = malloc(sizeof *w + n);
  memcpy(w + 1, p, n);
  uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)n);
  if (uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, c_written)) free(w);
}
static void c_closed(uv_handle_t *h) { ((client *)h->data)->closed = 1; }
static void c_shut(uv_shutdown_t *r, int status) {
  (void)status;
  free(r);
}

/* Runs the loop until cond or the loop has nothing to do. */
#define PUMP(cond)                                                     \
  do {                                                                 \
    for (int i_ = 0; i_ < 100000 && !(cond); i_++)                     \
      if (!uv_run(&g_loop, UV_RUN_ONCE) && !(cond)) break;             \
  } while (0)

/* multistream "/noise" + Noise XX as initiator with the yamux muxer in the
 * handshake. Returns the session (caller frees) or NULL. */
static lp2p_noise *handshake(client *c) {
  static const char *const noise_id[] = {"/noise"};
  static const char *const mux[] = {"/yamux/1.0.0"};
  lp2p_mss *m = NULL;
  lp2p_noise *nz = NULL;
  lp2p_noise_config nc;
  memset(&nc, 0, sizeof nc);
  nc.struct_size = sizeof nc;
  nc.initiator = 1;
  nc.identity = g_client_key;
  nc.muxers = mux;
  nc.n_muxers = 1;
  if (lp2p_mss_new_dialer(&m, noise_id, 1, NULL, NULL) || lp2p_noise_new(&nz, &nc, NULL)) goto fail;
  const uint8_t *p;
  size_t n = lp2p_mss_output(m, &p);
  c_send(c, p, n);
  lp2p_mss_output_consumed(m, n);
  n = lp2p_noise_output(nz, &p);
  c_send(c, p, n);
  lp2p_noise_output_consumed(nz, n);
  int stage = 0;
  while (!c->eof) {
    size_t before = c->in_len;
    PUMP(c->eof || c->in_len != before);
    if (c->in_len == before) break;
    int64_t k;
    if (stage == 0) {
      k = lp2p_mss_feed(m, c->in, c->in_len);
      if (k >= 0 && lp2p_mss_done(m)) stage = 1;
    } else {
      k = lp2p_noise_feed(nz, c->in, c->in_len);
    }
    if (k < 0) goto fail;
    memmove(c->in, c->in + k, c->in_len - (size_t)k);
    c->in_len -= (size_t)k;
    if (stage == 1 && c->in_len) {
      k = lp2p_noise_feed(nz, c->in, c->in_len);
      if (k < 0) goto fail;
      memmove(c->in, c->in + k, c->in_len - (size_t)k);
      c->in_len -= (size_t)k;
    }
    if (stage == 1 && lp2p_noise_handshake_done(nz)) {
      n = lp2p_noise_output(nz, &p); /* msg3 */
      c_send(c, p, n);
      lp2p_noise_output_consumed(nz, n);
      lp2p_mss_free(m);
      return nz;
    }
  }
fail:
  lp2p_mss_free(m);
  lp2p_noise_free(nz);
  return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_sw) setup();
  if (size < 1 || size > 65536) return 0;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds)) return 0;
  g_server_fd = fds[0];
  client *c = calloc(1, sizeof *c);
  uv_pipe_init(&g_loop, &c->pipe, 0);
  c->pipe.data = c;
  uv_pipe_open(&c->pipe, fds[1]);
  uv_read_start((uv_stream_t *)&c->pipe, c_alloc, c_read);

  lp2p__swarm_enter(g_sw);
  lp2p__conn_accept(g_sw, &g_listener);
  lp2p__swarm_leave(g_sw);

  if (data[0] & 1) {
    lp2p_noise *nz = handshake(c);
    if (nz) {
      const uint8_t *p;
      size_t n;
      if (size > 1 && lp2p_noise_write(nz, data + 1, size - 1) == 0 && (n = lp2p_noise_output(nz, &p)) > 0) {
        c_send(c, p, n);
        lp2p_noise_output_consumed(nz, n);
      }
      lp2p_noise_free(nz);
    }
  } else {
    c_send(c, data + 1, size - 1);
  }
  uv_shutdown_t *sr = malloc(sizeof *sr);
  if (uv_shutdown(sr, (uv_stream_t *)&c->pipe, c_shut)) free(sr);
  /* the swarm sees EOF (or has already closed): the connection must go away */
  PUMP(lp2p__list_empty(&g_sw->conns) && c->eof);
  if (!lp2p__list_empty(&g_sw->conns)) abort(); /* a connection outlived its peer's EOF */
  uv_close((uv_handle_t *)&c->pipe, c_closed);
  PUMP(c->closed && !uv_loop_alive(&g_loop));
  free(c);
  return 0;
}
