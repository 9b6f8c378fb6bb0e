/* protocols/ping/ping.c - /ipfs/ping/1.0.0 behaviour (server) and client,
 * built only on the public swarm API. See lp2p/ping.h. */
#include "lp2p/ping.h"

#include "lp2p/peerstore.h"
#include "protocols/proto_mem.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PING_MAX_PENDING 4096 /* unsent echo bytes per inbound stream before we reset it */

static uint64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void lp2p_ping_config_default(lp2p_ping_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->struct_size = sizeof *cfg;
  cfg->timeout_ms = 10000;
  cfg->idle_timeout_ms = 30000;
  cfg->max_inbound_per_peer = 4;
}

/* ------------------------------------------------------------------------- */
/* server */

typedef struct peer_slot {
  struct peer_slot *next;
  lp2p_peer_id peer;
  uint32_t n;
} peer_slot;

struct lp2p_ping_service {
  lp2p_mem mem; /* the swarm's (lp2p_swarm_mem): everything here is allocated through it */
  lp2p_swarm *sw;
  lp2p_ping_config cfg;
  peer_slot *slots;
  uint64_t served, echoed;
};

typedef struct ping_in {
  lp2p_ping_service *ps;
  lp2p_stream *s;
  lp2p_timer *idle;
  peer_slot *slot;
  size_t npend;
  int eof, write_closed;
  uint8_t pend[PING_MAX_PENDING];
} ping_in;

static peer_slot *slot_get(lp2p_ping_service *ps, const lp2p_peer_id *peer) {
  for (peer_slot *p = ps->slots; p; p = p->next)
    if (lp2p_peer_id_equal(&p->peer, peer)) return p;
  peer_slot *p = lp2p__pm_calloc(&ps->mem, sizeof *p);
  if (!p) return NULL;
  p->peer = *peer;
  p->next = ps->slots;
  ps->slots = p;
  return p;
}

static void slot_put(lp2p_ping_service *ps, peer_slot *slot) {
  if (!slot || --slot->n) return;
  for (peer_slot **pp = &ps->slots; *pp; pp = &(*pp)->next) {
    if (*pp == slot) {
      *pp = slot->next;
      lp2p__pm_free(&ps->mem, slot);
      return;
    }
  }
}

static void in_idle(lp2p_timer *t, void *ud) {
  ping_in *in = ud;
  (void)t;
  lp2p_stream_reset(in->s);
}

static void in_touch(ping_in *in) {
  if (in->idle) lp2p_timer_start(in->idle, in->ps->cfg.idle_timeout_ms, 0);
}

/* Queues pending echo bytes; credits the peer for what left our buffer. */
static void in_flush(ping_in *in) {
  lp2p_stream *s = in->s;
  if (in->npend) {
    int64_t k = lp2p_stream_write(s, in->pend, in->npend);
    if (k < 0) {
      lp2p_stream_reset(s);
      return;
    }
    if (k > 0) {
      memmove(in->pend, in->pend + k, in->npend - (size_t)k);
      in->npend -= (size_t)k;
      in->ps->echoed += (uint64_t)k;
      lp2p_stream_consume(s, (size_t)k);
    }
  }
  if (!in->npend && in->eof && !in->write_closed) {
    in->write_closed = 1;
    lp2p_stream_close_write(s);
  }
}

static void in_open(lp2p_stream *s, const char *protocol, void *ud) {
  lp2p_ping_service *ps = ud;
  (void)protocol;
  const lp2p_peer_id *peer = lp2p_stream_peer(s);
  peer_slot *slot = peer ? slot_get(ps, peer) : NULL;
  ping_in *in = NULL;
  /* a full slot has n >= 1, so only a fresh slot (n == 0) needs dropping on failure */
  if (!slot || (ps->cfg.max_inbound_per_peer && slot->n >= ps->cfg.max_inbound_per_peer) ||
      !(in = lp2p__pm_calloc(&ps->mem, sizeof *in))) {
    if (slot && !slot->n) {
      slot->n = 1;
      slot_put(ps, slot);
    }
    lp2p_stream_reset(s); /* on_close then finds no user state */
    return;
  }
  slot->n++;
  in->ps = ps;
  in->s = s;
  in->slot = slot;
  ps->served++;
  lp2p_stream_set_user(s, in);
  lp2p_stream_set_manual_consume(s, 1);
  if (ps->cfg.idle_timeout_ms && lp2p_timer_new(&in->idle, ps->sw, in_idle, in) == 0) in_touch(in);
}

static void in_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  ping_in *in = lp2p_stream_user(s);
  (void)ud;
  if (!in) return;
  in_touch(in);
  if (!in->npend) { /* fast path: echo straight from the input */
    int64_t k = lp2p_stream_write(s, p, n);
    if (k < 0) {
      lp2p_stream_reset(s);
      return;
    }
    in->ps->echoed += (uint64_t)k;
    lp2p_stream_consume(s, (size_t)k);
    p += k;
    n -= (size_t)k;
  }
  if (!n) return;
  if (n > sizeof in->pend - in->npend) { /* the peer does not read its echoes */
    lp2p_stream_reset(s);
    return;
  }
  memcpy(in->pend + in->npend, p, n);
  in->npend += n;
}

static void in_eof(lp2p_stream *s, void *ud) {
  ping_in *in = lp2p_stream_user(s);
  (void)ud;
  if (!in) return;
  in->eof = 1;
  in_flush(in);
}

static void in_writable(lp2p_stream *s, void *ud) {
  ping_in *in = lp2p_stream_user(s);
  (void)ud;
  if (in) in_flush(in);
}

static void in_close(lp2p_stream *s, int err, void *ud) {
  ping_in *in = lp2p_stream_user(s);
  (void)err;
  (void)ud;
  if (!in) return;
  lp2p_stream_set_user(s, NULL);
  lp2p_timer_free(in->idle);
  slot_put(in->ps, in->slot);
  lp2p__pm_free(&in->ps->mem, in);
}

static const lp2p_stream_handler in_handler = {
    sizeof(lp2p_stream_handler), in_open, in_data, in_eof, in_writable, in_close,
};

static int ps_attach(void *self, lp2p_swarm *sw) {
  lp2p_ping_service *ps = self;
  ps->sw = sw;
  return lp2p_swarm_set_protocol(sw, LP2P_PING_PROTOCOL_ID, &in_handler, ps);
}

static void ps_destroy(void *self) {
  lp2p_ping_service *ps = self;
  lp2p_mem m = ps->mem;
  while (ps->slots) {
    peer_slot *n = ps->slots->next;
    lp2p__pm_free(&m, ps->slots);
    ps->slots = n;
  }
  lp2p__pm_free(&m, ps);
}

static const lp2p_behaviour_vtable ps_vtable = {
    .struct_size = sizeof(lp2p_behaviour_vtable),
    .name = LP2P_PING_BEHAVIOUR,
    .attach = ps_attach,
    .destroy = ps_destroy,
};

int lp2p_ping_add(lp2p_swarm *sw, const lp2p_ping_config *cfg, lp2p_ping_service **out) {
  if (out) *out = NULL;
  if (!sw) return LP2P_ERR_INVAL;
  if (lp2p_swarm_behaviour(sw, LP2P_PING_BEHAVIOUR)) return LP2P_ERR_EXISTS;
  lp2p_ping_service *ps = lp2p__pm_calloc(lp2p_swarm_mem(sw), sizeof *ps);
  if (!ps) return LP2P_ERR_NOMEM;
  ps->mem = *lp2p_swarm_mem(sw);
  lp2p_ping_config_default(&ps->cfg);
  if (cfg) {
    size_t n = cfg->struct_size && cfg->struct_size < sizeof ps->cfg ? cfg->struct_size : sizeof ps->cfg;
    memcpy(&ps->cfg, cfg, n);
    ps->cfg.struct_size = sizeof ps->cfg;
  }
  int rv = lp2p_swarm_add_behaviour(sw, &ps_vtable, ps); /* destroys ps on failure */
  if (rv < 0) return rv;
  if (out) *out = ps;
  return 0;
}

uint64_t lp2p_ping_served_streams(const lp2p_ping_service *ps) { return ps ? ps->served : 0; }
uint64_t lp2p_ping_echoed_bytes(const lp2p_ping_service *ps) { return ps ? ps->echoed : 0; }

/* ------------------------------------------------------------------------- */
/* client */

typedef struct ping_out {
  lp2p_swarm *sw;
  lp2p_peer_id peer;
  lp2p_ping_fn cb;
  void *ud;
  lp2p_stream *s;
  lp2p_timer *timer;
  uint64_t t0, rtt;
  size_t ngot;
  int reported;
  uint8_t payload[LP2P_PING_PAYLOAD_SIZE];
  uint8_t got[LP2P_PING_PAYLOAD_SIZE];
} ping_out;

static void out_report(ping_out *o, int err) {
  if (o->reported) return;
  o->reported = 1;
  if (o->cb) o->cb(o->sw, &o->peer, err, err ? 0 : o->rtt, o->ud);
}

static void out_timeout(lp2p_timer *t, void *ud) {
  ping_out *o = ud;
  (void)t;
  out_report(o, LP2P_ERR_TIMEOUT);
  lp2p_stream_reset(o->s);
}

static void out_open(lp2p_stream *s, const char *protocol, void *ud) {
  ping_out *o = ud;
  (void)protocol;
  o->t0 = mono_us();
  int rv = lp2p_stream_send_all(s, o->payload, sizeof o->payload, 1); /* the payload, then FIN */
  if (rv < 0) {
    out_report(o, rv);
    lp2p_stream_reset(s);
  }
}

static void out_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  ping_out *o = ud;
  if (o->reported) return;
  if (n > sizeof o->got - o->ngot) {
    out_report(o, LP2P_ERR_PROTO);
    lp2p_stream_reset(s);
    return;
  }
  memcpy(o->got + o->ngot, p, n);
  o->ngot += n;
  if (o->ngot < sizeof o->got) return;
  if (memcmp(o->got, o->payload, sizeof o->got)) {
    out_report(o, LP2P_ERR_PROTO);
    lp2p_stream_reset(s);
    return;
  }
  o->rtt = mono_us() - o->t0;
  lp2p_peerstore_set_latency(lp2p_swarm_peerstore(o->sw), &o->peer, o->rtt); /* also marks it seen */
  out_report(o, 0);
}

static void out_close(lp2p_stream *s, int err, void *ud) {
  ping_out *o = ud;
  (void)s;
  out_report(o, err ? err : LP2P_ERR_EOF);
  lp2p_timer_free(o->timer);
  lp2p__pm_free(lp2p_swarm_mem(o->sw), o);
}

static const lp2p_stream_handler out_handler = {
    sizeof(lp2p_stream_handler), out_open, out_data, NULL, NULL, out_close,
};

int lp2p_ping_timeout(lp2p_swarm *sw, const lp2p_peer_id *peer, uint32_t timeout_ms, lp2p_ping_fn cb, void *ud) {
  if (!sw || !peer || !peer->len) return LP2P_ERR_INVAL;
  if (!timeout_ms) {
    const lp2p_ping_service *ps = lp2p_swarm_behaviour(sw, LP2P_PING_BEHAVIOUR);
    timeout_ms = ps && ps->cfg.timeout_ms ? ps->cfg.timeout_ms : 10000;
  }
  ping_out *o = lp2p__pm_calloc(lp2p_swarm_mem(sw), sizeof *o);
  if (!o) return LP2P_ERR_NOMEM;
  o->sw = sw;
  o->peer = *peer;
  o->cb = cb;
  o->ud = ud;
  randombytes_buf(o->payload, sizeof o->payload);
  int rv = lp2p_timer_new(&o->timer, sw, out_timeout, o);
  if (rv < 0) {
    lp2p__pm_free(lp2p_swarm_mem(sw), o);
    return rv;
  }
  const char *protos[] = {LP2P_PING_PROTOCOL_ID};
  rv = lp2p_swarm_open_stream(sw, peer, protos, 1, &out_handler, o, &o->s);
  if (rv < 0) {
    lp2p_timer_free(o->timer);
    lp2p__pm_free(lp2p_swarm_mem(sw), o);
    return rv;
  }
  lp2p_timer_start(o->timer, timeout_ms, 0);
  return 0;
}

int lp2p_ping(lp2p_swarm *sw, const lp2p_peer_id *peer, lp2p_ping_fn cb, void *ud) {
  return lp2p_ping_timeout(sw, peer, 0, cb, ud);
}
