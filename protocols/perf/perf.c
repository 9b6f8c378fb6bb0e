/* protocols/perf/perf.c - /perf/1.0.0 server behaviour and client, built only
 * on the public swarm API. See lp2p/perf.h. */
#include "lp2p/perf.h"

#include "protocols/proto_mem.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PERF_BLOCK (64 * 1024)
#define PERF_DEFAULT_IDLE_MS 30000

/* The bytes we send: contents do not matter (the spec sends zeros). */
static const uint8_t k_block[PERF_BLOCK];

static uint64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void lp2p_perf_config_default(lp2p_perf_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->struct_size = sizeof *cfg;
  cfg->idle_timeout_ms = PERF_DEFAULT_IDLE_MS;
}

struct lp2p_perf_service {
  lp2p_mem mem; /* the swarm's (lp2p_swarm_mem) */
  lp2p_swarm *sw;
  lp2p_perf_config cfg;
};

/* Writes up to *left bytes from k_block; returns 1 when everything was
 * accepted, 0 to wait for on_writable, < 0 on error. */
static int pump(lp2p_stream *s, uint64_t *left) {
  while (*left) {
    size_t n = *left < PERF_BLOCK ? (size_t)*left : PERF_BLOCK;
    int64_t k = lp2p_stream_write(s, k_block, n);
    if (k < 0) return (int)k;
    if (k == 0) return 0;
    *left -= (uint64_t)k;
  }
  return 1;
}

/* ------------------------------------------------------------------------- */
/* server */

typedef struct perf_in {
  lp2p_perf_service *ps;
  lp2p_stream *s;
  lp2p_timer *idle;
  uint8_t head[8];
  size_t nhead;
  uint64_t received, want, left;
  uint64_t t0, t_eof, t_done;
  int sending, done, err;
} perf_in;

static void in_touch(perf_in *in) {
  if (in->idle) lp2p_timer_start(in->idle, in->ps->cfg.idle_timeout_ms, 0);
}

static void in_idle(lp2p_timer *t, void *ud) {
  perf_in *in = ud;
  (void)t;
  in->err = LP2P_ERR_TIMEOUT;
  lp2p_stream_reset(in->s);
}

static void in_send(perf_in *in) {
  int rv = pump(in->s, &in->left);
  if (rv < 0) {
    in->err = rv;
    lp2p_stream_reset(in->s);
  } else if (rv == 1 && !in->done) {
    in->done = 1;
    in->t_done = mono_us();
    lp2p_stream_close_write(in->s);
  }
}

static void in_open(lp2p_stream *s, const char *protocol, void *ud) {
  lp2p_perf_service *ps = ud;
  (void)protocol;
  /* what the stream holds here (its state and idle timer, < 256 bytes) is charged to the peer's resource
   * scopes, released with the stream; over a limit the stream is refused */
  perf_in *in = lp2p_stream_reserve_memory(s, sizeof *in + 256) == 0 ? lp2p__pm_calloc(&ps->mem, sizeof *in) : NULL;
  if (!in) {
    lp2p_stream_reset(s);
    return;
  }
  in->ps = ps;
  in->s = s;
  in->t0 = mono_us();
  lp2p_stream_set_user(s, in);
  if (ps->cfg.idle_timeout_ms && lp2p_timer_new(&in->idle, ps->sw, in_idle, in) == 0) in_touch(in);
}

static void in_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  perf_in *in = lp2p_stream_user(s);
  (void)ud;
  if (!in) return;
  in_touch(in);
  if (in->nhead < 8) {
    size_t take = 8 - in->nhead < n ? 8 - in->nhead : n;
    memcpy(in->head + in->nhead, p, take);
    in->nhead += take;
    n -= take;
  }
  in->received += n;
}

static void in_eof(lp2p_stream *s, void *ud) {
  perf_in *in = lp2p_stream_user(s);
  (void)ud;
  if (!in || in->sending) return;
  in->t_eof = mono_us();
  if (in->nhead < 8) { /* closed before the header */
    in->err = LP2P_ERR_PROTO;
    lp2p_stream_reset(s);
    return;
  }
  uint64_t want = 0;
  for (int i = 0; i < 8; i++) want = want << 8 | in->head[i];
  if (in->ps->cfg.max_download && want > in->ps->cfg.max_download) {
    in->err = LP2P_ERR_LIMIT;
    lp2p_stream_reset(s);
    return;
  }
  in->want = in->left = want;
  in->sending = 1;
  in_touch(in);
  in_send(in);
}

static void in_writable(lp2p_stream *s, void *ud) {
  perf_in *in = lp2p_stream_user(s);
  (void)ud;
  if (!in || !in->sending) return;
  in_touch(in);
  in_send(in);
}

static void in_close(lp2p_stream *s, int err, void *ud) {
  perf_in *in = lp2p_stream_user(s);
  (void)ud;
  if (!in) return;
  lp2p_stream_set_user(s, NULL);
  if (in->err) err = in->err;
  if (!err && !in->done) err = LP2P_ERR_EOF;
  if (in->ps->cfg.on_served) {
    uint64_t now = mono_us();
    lp2p_perf_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.uploaded = in->received;
    r.downloaded = in->want - in->left;
    r.upload_us = (in->t_eof ? in->t_eof : now) - in->t0;
    r.download_us = in->t_eof ? (in->t_done ? in->t_done : now) - in->t_eof : 0;
    r.total_us = (in->t_done ? in->t_done : now) - in->t0;
    const lp2p_peer_id *peer = lp2p_stream_peer(s);
    in->ps->cfg.on_served(lp2p_stream_swarm(s), peer, err, &r, in->ps->cfg.ud);
  }
  lp2p_timer_free(in->idle);
  lp2p__pm_free(&in->ps->mem, in);
}

static const lp2p_stream_handler in_handler = {
    sizeof(lp2p_stream_handler), in_open, in_data, in_eof, in_writable, in_close,
};

static int ps_attach(void *self, lp2p_swarm *sw) {
  lp2p_perf_service *ps = self;
  ps->sw = sw;
  return lp2p_swarm_set_protocol(sw, LP2P_PERF_PROTOCOL_ID, &in_handler, ps);
}

static void ps_destroy(void *self) {
  lp2p_perf_service *ps = self;
  lp2p_mem m = ps->mem;
  lp2p__pm_free(&m, ps);
}

static const lp2p_behaviour_vtable ps_vtable = {
    .struct_size = sizeof(lp2p_behaviour_vtable),
    .name = LP2P_PERF_BEHAVIOUR,
    .attach = ps_attach,
    .destroy = ps_destroy,
};

int lp2p_perf_add(lp2p_swarm *sw, const lp2p_perf_config *cfg, lp2p_perf_service **out) {
  if (out) *out = NULL;
  if (!sw) return LP2P_ERR_INVAL;
  if (lp2p_swarm_behaviour(sw, LP2P_PERF_BEHAVIOUR)) return LP2P_ERR_EXISTS;
  lp2p_perf_service *ps = lp2p__pm_calloc(lp2p_swarm_mem(sw), sizeof *ps);
  if (!ps) return LP2P_ERR_NOMEM;
  ps->mem = *lp2p_swarm_mem(sw);
  lp2p_perf_config_default(&ps->cfg);
  if (cfg) {
    size_t n = cfg->struct_size && cfg->struct_size < sizeof ps->cfg ? cfg->struct_size : sizeof ps->cfg;
    memcpy(&ps->cfg, cfg, n);
    ps->cfg.struct_size = sizeof ps->cfg;
  }
  int rv = lp2p_swarm_add_behaviour(sw, &ps_vtable, ps);
  if (rv < 0) return rv;
  if (out) *out = ps;
  return 0;
}

/* ------------------------------------------------------------------------- */
/* client */

typedef struct perf_out {
  lp2p_swarm *sw;
  lp2p_peer_id peer;
  lp2p_perf_fn cb;
  void *ud;
  lp2p_stream *s;
  lp2p_timer *idle;
  uint32_t idle_ms;
  uint8_t head[8];
  uint64_t upload, left, download, received;
  uint64_t t0, t_up, t_eof;
  int uploaded, eof, err;
} perf_out;

static void out_touch(perf_out *o) {
  if (o->idle && o->idle_ms) lp2p_timer_start(o->idle, o->idle_ms, 0);
}

static void out_idle(lp2p_timer *t, void *ud) {
  perf_out *o = ud;
  (void)t;
  o->err = LP2P_ERR_TIMEOUT;
  lp2p_stream_reset(o->s);
}

static void out_pump(lp2p_stream *s, perf_out *o) {
  int rv = pump(s, &o->left); /* held back (0) until the header sent by out_open has left */
  if (rv < 0) {
    o->err = rv;
    lp2p_stream_reset(s);
  } else if (rv == 1 && !o->uploaded) {
    o->uploaded = 1;
    o->t_up = mono_us();
    lp2p_stream_close_write(s);
  }
}

static void out_open(lp2p_stream *s, const char *protocol, void *ud) {
  perf_out *o = ud;
  (void)protocol;
  o->t0 = mono_us();
  out_touch(o);
  int rv = lp2p_stream_send_all(s, o->head, sizeof o->head, 0); /* the 8-byte size, whatever it takes */
  if (rv < 0) {
    o->err = rv;
    lp2p_stream_reset(s);
    return;
  }
  out_pump(s, o);
}

static void out_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  perf_out *o = ud;
  (void)p;
  o->received += n;
  out_touch(o);
  if (o->received > o->download) {
    o->err = LP2P_ERR_PROTO;
    lp2p_stream_reset(s);
  }
}

static void out_eof(lp2p_stream *s, void *ud) {
  perf_out *o = ud;
  (void)s;
  o->eof = 1;
  o->t_eof = mono_us();
}

static void out_writable(lp2p_stream *s, void *ud) {
  perf_out *o = ud;
  if (o->uploaded) return;
  out_touch(o);
  out_pump(s, o);
}

static void out_close(lp2p_stream *s, int err, void *ud) {
  perf_out *o = ud;
  (void)s;
  if (o->err) err = o->err;
  if (!err && (!o->eof || !o->uploaded)) err = LP2P_ERR_EOF;
  if (!err && o->received != o->download) err = LP2P_ERR_PROTO;
  uint64_t now = mono_us();
  lp2p_perf_result r;
  memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  r.uploaded = o->upload - o->left;
  r.downloaded = o->received;
  if (o->t0) {
    r.upload_us = (o->t_up ? o->t_up : now) - o->t0;
    r.download_us = o->t_up ? (o->t_eof ? o->t_eof : now) - o->t_up : 0;
    r.total_us = (o->t_eof ? o->t_eof : now) - o->t0;
  }
  if (o->cb) o->cb(o->sw, &o->peer, err, &r, o->ud);
  lp2p_timer_free(o->idle);
  lp2p__pm_free(lp2p_swarm_mem(o->sw), o);
}

static const lp2p_stream_handler out_handler = {
    sizeof(lp2p_stream_handler), out_open, out_data, out_eof, out_writable, out_close,
};

int lp2p_perf_run(lp2p_swarm *sw, const lp2p_peer_id *peer, uint64_t upload, uint64_t download, lp2p_perf_fn cb,
                  void *ud) {
  if (!sw || !peer || !peer->len) return LP2P_ERR_INVAL;
  perf_out *o = lp2p__pm_calloc(lp2p_swarm_mem(sw), sizeof *o);
  if (!o) return LP2P_ERR_NOMEM;
  const lp2p_perf_service *ps = lp2p_swarm_behaviour(sw, LP2P_PERF_BEHAVIOUR);
  o->idle_ms = ps ? ps->cfg.idle_timeout_ms : PERF_DEFAULT_IDLE_MS;
  o->sw = sw;
  o->peer = *peer;
  o->cb = cb;
  o->ud = ud;
  o->upload = o->left = upload;
  o->download = download;
  for (int i = 0; i < 8; i++) o->head[i] = (uint8_t)(download >> (56 - 8 * i));
  int rv = lp2p_timer_new(&o->idle, sw, out_idle, o);
  if (rv < 0) {
    lp2p__pm_free(lp2p_swarm_mem(sw), o);
    return rv;
  }
  const char *protos[] = {LP2P_PERF_PROTOCOL_ID};
  rv = lp2p_swarm_open_stream(sw, peer, protos, 1, &out_handler, o, &o->s);
  if (rv < 0) {
    lp2p_timer_free(o->idle);
    lp2p__pm_free(lp2p_swarm_mem(sw), o);
    return rv;
  }
  /* the idle timer also bounds dialing + negotiation */
  if (o->idle_ms) lp2p_timer_start(o->idle, o->idle_ms, 0);
  return 0;
}
