/* tests/helpers/swarm_harness.c - see swarm_harness.h. */
#include "swarm_harness.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void guard_cb(uv_timer_t *t) {
  tloop *l = t->data;
  l->fired = 1;
}

void tloop_init(tloop *l) {
  memset(l, 0, sizeof *l);
  uv_loop_init(&l->loop);
  uv_timer_init(&l->loop, &l->guard);
  l->guard.data = l;
}

void tloop_guard_start(tloop *l, unsigned ms) {
  l->fired = 0;
  uv_update_time(&l->loop);
  uv_timer_start(&l->guard, guard_cb, ms, 0);
}

void tloop_guard_stop(tloop *l) { uv_timer_stop(&l->guard); }

void tloop_sleep(tloop *l, unsigned ms) { RUN_UNTIL(l, 0, ms); }

int tloop_settle(tloop *l) {
  for (int i = 0; i < 100000; i++) {
    uv_run(&l->loop, UV_RUN_NOWAIT);
    struct pollfd p = {.fd = uv_backend_fd(&l->loop), .events = POLLIN};
    if (!uv_loop_alive(&l->loop)) return 0; /* nothing active at all */
    if (uv_backend_timeout(&l->loop) != 0 && poll(&p, 1, 0) == 0) return 0;
  }
  return -1;
}

int tclock_advance(tloop *l, tsw *const *sws, size_t n, uint64_t ms) {
  if (!n) return -1;
  int rv = tloop_settle(l);
  lp2p_tstamp end = lp2p_swarm_now(sws[0]->sw) + ms;
  while (rv == 0) {
    lp2p_tstamp next = end;
    for (size_t i = 0; i < n; i++) {
      lp2p_tstamp d = lp2p_swarm_next_deadline(sws[i]->sw);
      if (d < next) next = d;
    }
    for (size_t i = 0; i < n && rv == 0; i++) {
      lp2p_tstamp now = lp2p_swarm_now(sws[i]->sw);
      rv = lp2p_swarm_advance_to(sws[i]->sw, next > now ? next : now);
    }
    if (rv == 0) rv = tloop_settle(l);
    if (next == end) break;
  }
  return rv;
}

int tloop_finish(tloop *l) {
  uv_close((uv_handle_t *)&l->guard, NULL);
  for (int i = 0; i < 1000 && uv_run(&l->loop, UV_RUN_NOWAIT); i++) {
  }
  uv_run(&l->loop, UV_RUN_DEFAULT);
  int rv = uv_loop_close(&l->loop);
  if (rv) {
    fprintf(stderr, "  loop not closed cleanly; open handles:\n");
    uv_print_all_handles(&l->loop, stderr);
  }
  return rv;
}

static void on_event(lp2p_swarm *sw, const lp2p_swarm_event *ev, void *ud) {
  tsw *t = ud;
  (void)sw;
  if (t->n_events < TSW_MAX_EVENTS) t->events[t->n_events++] = ev->type;
  switch (ev->type) {
    case LP2P_SWARM_EV_CONN_ESTABLISHED:
      t->n_established++;
      break;
    case LP2P_SWARM_EV_CONN_CLOSED:
      t->n_closed++;
      t->last_closed_err = ev->err;
      break;
    case LP2P_SWARM_EV_DIAL_FAILED:
      t->n_dial_failed++;
      t->last_dial_err = ev->err;
      break;
    case LP2P_SWARM_EV_INBOUND_CONN_FAILED:
      t->n_in_conn_failed++;
      t->last_in_conn_err = ev->err;
      break;
    case LP2P_SWARM_EV_INBOUND_STREAM_FAILED:
      t->n_in_stream_failed++;
      t->last_in_stream_err = ev->err;
      break;
    case LP2P_SWARM_EV_LISTEN_ADDR_ADDED:
      t->n_listen_added++;
      break;
    default:
      break;
  }
}

void tsw_config(lp2p_swarm_config *cfg) { lp2p_swarm_config_default(cfg); }

void tsw_config_manual(lp2p_swarm_config *cfg) {
  lp2p_swarm_config_default(cfg);
  cfg->manual_clock = 1;
}

int tsw_init(tsw *t, tloop *l, uint8_t seed, const lp2p_swarm_config *cfg_in, int listen) {
  memset(t, 0, sizeof *t);
  uint8_t s[32];
  memset(s, seed, sizeof s);
  int rv = lp2p_privkey_from_ed25519_seed(&t->key, s);
  if (rv < 0) return rv;
  lp2p_peer_id_from_pubkey(lp2p_privkey_public(t->key), &t->id);
  lp2p_swarm_config cfg;
  if (cfg_in)
    cfg = *cfg_in;
  else
    lp2p_swarm_config_default(&cfg);
  cfg.identity = t->key;
  rv = lp2p_swarm_new_uv(&t->sw, &cfg, &l->loop, NULL);
  if (rv < 0) return rv;
  lp2p_swarm_set_event_handler(t->sw, on_event, t);
  if (listen) {
    rv = lp2p_swarm_listen(t->sw, listen == TSW_LISTEN_MEMORY ? "/memory/0" : "/ip4/127.0.0.1/tcp/0");
    if (rv < 0) return rv;
    const lp2p_multiaddr *ma;
    if (lp2p_swarm_listen_addrs(t->sw, &ma, 1) < 1) return LP2P_ERR_STATE;
    lp2p_multiaddr_to_string(ma, t->base_addr, sizeof t->base_addr);
    char pid[LP2P_PEER_ID_MAX_TEXT];
    lp2p_peer_id_to_string(&t->id, pid, sizeof pid);
    snprintf(t->addr, sizeof t->addr, "%s/p2p/%s", t->base_addr, pid);
  }
  return 0;
}

void tsw_free(tsw *t) {
  lp2p_swarm_free(t->sw);
  t->sw = NULL;
  lp2p_privkey_free(t->key);
  t->key = NULL;
}

int tsw_port(const tsw *t) {
  const char *p = strstr(t->base_addr, "/tcp/");
  return p ? atoi(p + 5) : -1;
}

void tdial_cb(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_dial_error *errs, size_t n,
              void *ud) {
  tdial *d = ud;
  (void)sw;
  d->calls++;
  d->done = 1;
  d->err = err;
  if (peer) d->peer = *peer;
  d->n_errs = n;
  for (size_t i = 0; i < n && i < 8; i++) d->errs[i] = errs[i].err;
}

/* ---- raw TCP client ---- */

static void raw_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  static char buf[65536];
  (void)h;
  (void)s;
  b->base = buf;
  b->len = sizeof buf;
}

static void raw_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  traw *r = st->data;
  (void)b;
  if (n > 0) r->received += (size_t)n;
  if (n < 0) {
    r->eof = 1;
    if (n != UV_EOF) r->err = (int)n;
    uv_read_stop(st);
  }
}

static void raw_connected(uv_connect_t *req, int status) {
  traw *r = req->data;
  if (status < 0) {
    r->err = status;
    r->eof = 1;
    return;
  }
  r->connected = 1;
  uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
}

int traw_connect(traw *r, tloop *l, int port) {
  memset(r, 0, sizeof *r);
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", port, &sa);
  uv_tcp_init(&l->loop, &r->tcp);
  r->tcp.data = r;
  r->req.data = r;
  return uv_tcp_connect(&r->req, &r->tcp, (const struct sockaddr *)&sa, raw_connected);
}

static void raw_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

int traw_send(traw *r, const void *p, size_t n) {
  uv_write_t *w = malloc(sizeof *w + n);
  memcpy(w + 1, p, n);
  uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)n);
  return uv_write(w, (uv_stream_t *)&r->tcp, &b, 1, raw_written);
}

static void raw_closed(uv_handle_t *h) {
  traw *r = h->data;
  r->closed = 1;
}

void traw_close(traw *r) {
  if (!uv_is_closing((uv_handle_t *)&r->tcp)) uv_close((uv_handle_t *)&r->tcp, raw_closed);
}

/* ---- echo behaviour ---- */

typedef struct echo_stream {
  uint8_t *buf;
  size_t len;
  int eof;
} echo_stream;

static void echo_flush(lp2p_stream *s, echo_stream *e) {
  while (e->len) {
    int64_t k = lp2p_stream_write(s, e->buf, e->len);
    if (k < 0) {
      lp2p_stream_reset(s);
      return;
    }
    if (k == 0) break;
    memmove(e->buf, e->buf + k, e->len - (size_t)k);
    e->len -= (size_t)k;
  }
  if (!e->len && e->eof) lp2p_stream_close_write(s);
}

static void echo_open(lp2p_stream *s, const char *proto, void *ud) {
  techo *b = ud;
  (void)proto;
  b->opened++;
  lp2p_stream_set_user(s, calloc(1, sizeof(echo_stream)));
}

static void echo_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  echo_stream *e = lp2p_stream_user(s);
  (void)ud;
  e->buf = realloc(e->buf, e->len + n);
  memcpy(e->buf + e->len, p, n);
  e->len += n;
  echo_flush(s, e);
}

static void echo_eof(lp2p_stream *s, void *ud) {
  echo_stream *e = lp2p_stream_user(s);
  (void)ud;
  e->eof = 1;
  echo_flush(s, e);
}

static void echo_writable(lp2p_stream *s, void *ud) {
  (void)ud;
  echo_flush(s, lp2p_stream_user(s));
}

static void echo_close(lp2p_stream *s, int err, void *ud) {
  techo *b = ud;
  echo_stream *e = lp2p_stream_user(s);
  b->closed++;
  if (err) b->close_errs++;
  if (e) {
    free(e->buf);
    free(e);
  }
}

static const lp2p_stream_handler echo_handler = {
    sizeof(lp2p_stream_handler), echo_open, echo_data, echo_eof, echo_writable, echo_close,
};

static int echo_attach(void *self, lp2p_swarm *sw) {
  techo *b = self;
  b->attached++;
  return lp2p_swarm_set_protocol(sw, b->proto ? b->proto : TECHO_PROTO, &echo_handler, b);
}
static void echo_detach(void *self, lp2p_swarm *sw) {
  techo *b = self;
  (void)sw;
  b->detached++;
}
static void echo_destroy(void *self) {
  techo *b = self;
  b->destroyed++;
}
static int echo_keep_alive(void *self, lp2p_swarm *sw, const lp2p_peer_id *peer) {
  techo *b = self;
  (void)sw;
  (void)peer;
  return b->keep_alive;
}

const lp2p_behaviour_vtable techo_vtable = {
    .struct_size = sizeof(lp2p_behaviour_vtable),
    .name = "test-echo",
    .attach = echo_attach,
    .detach = echo_detach,
    .destroy = echo_destroy,
    .keep_alive = echo_keep_alive,
};

/* ---- client ---- */

uint8_t tpattern(uint32_t seed, size_t i) { return (uint8_t)((i * 131u + seed * 7u + (i >> 8)) & 0xff); }

void tclient_init(tclient *c, size_t len, uint32_t seed) {
  memset(c, 0, sizeof *c);
  c->len = len;
  c->seed = seed;
}

static void client_pump(lp2p_stream *s, tclient *c) {
  uint8_t chunk[4096];
  while (c->sent < c->len) {
    size_t n = c->len - c->sent < sizeof chunk ? c->len - c->sent : sizeof chunk;
    for (size_t i = 0; i < n; i++) chunk[i] = tpattern(c->seed, c->sent + i);
    int64_t k = lp2p_stream_write(s, chunk, n);
    if (k < 0) {
      lp2p_stream_reset(s); /* e.g. LP2P_ERR_NOMEM: give up on the stream */
      return;
    }
    if (k == 0) return; /* on_writable follows */
    c->sent += (size_t)k;
  }
  lp2p_stream_close_write(s);
}

static void client_open(lp2p_stream *s, const char *proto, void *ud) {
  tclient *c = ud;
  c->opened = 1;
  snprintf(c->protocol, sizeof c->protocol, "%s", proto);
  client_pump(s, c);
}
static void client_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  tclient *c = ud;
  (void)s;
  for (size_t i = 0; i < n; i++)
    if (p[i] != tpattern(c->seed, c->received + i)) c->mismatch = 1;
  c->received += n;
}
static void client_eof(lp2p_stream *s, void *ud) {
  tclient *c = ud;
  (void)s;
  c->eof = 1;
}
static void client_writable(lp2p_stream *s, void *ud) { client_pump(s, ud); }
static void client_close(lp2p_stream *s, int err, void *ud) {
  tclient *c = ud;
  (void)s;
  c->closed = 1;
  c->close_err = err;
}

const lp2p_stream_handler tclient_handler = {
    sizeof(lp2p_stream_handler), client_open, client_data, client_eof, client_writable, client_close,
};
