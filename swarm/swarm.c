/* swarm/swarm.c - swarm lifecycle, the deferred-work machinery, post, events,
 * behaviours and timers. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swarm/swarm_int.h"
#include "swarm/udp_int.h"

/* ------------------------------------------------------------------------- */
/* config / names */

void lp2p_swarm_config_default(lp2p_swarm_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->struct_size = sizeof *cfg;
  cfg->max_inbound_conns = 256;
  cfg->max_outbound_conns = 256;
  cfg->max_pending_inbound = 64;
  cfg->max_streams_per_conn = 512;
  cfg->max_address_book_peers = 4096;
  cfg->handshake_timeout_ms = 10000;
  cfg->dial_timeout_ms = 10000;
  cfg->stream_negotiation_timeout_ms = 10000;
  cfg->idle_timeout_ms = 30000;
  cfg->keepalive_interval_ms = 15000;
  cfg->keepalive_timeout_ms = 10000;
  cfg->yamux_initial_window = 256 * 1024;
  cfg->yamux_max_window = 16 * 1024 * 1024;
  cfg->max_addrs_per_peer = LP2P__SW_MAX_ADDRS_PER_PEER;
  cfg->interface_poll_ms = 5000;
  lp2p__rc_config_default(cfg);
}

const char *lp2p_swarm_event_name(lp2p_swarm_event_type t) {
  switch (t) {
    case LP2P_SWARM_EV_LISTEN_ADDR_ADDED:
      return "listen-addr-added";
    case LP2P_SWARM_EV_LISTEN_ADDR_REMOVED:
      return "listen-addr-removed";
    case LP2P_SWARM_EV_CONN_ESTABLISHED:
      return "conn-established";
    case LP2P_SWARM_EV_CONN_CLOSED:
      return "conn-closed";
    case LP2P_SWARM_EV_DIAL_FAILED:
      return "dial-failed";
    case LP2P_SWARM_EV_INBOUND_STREAM_FAILED:
      return "inbound-stream-failed";
    case LP2P_SWARM_EV_INBOUND_CONN_FAILED:
      return "inbound-conn-failed";
    case LP2P_SWARM_EV_PEER_IDENTIFIED:
      return "peer-identified";
    case LP2P_SWARM_EV_PEER_DISCOVERED:
      return "peer-discovered";
    case LP2P_SWARM_EV_PEER_EXPIRED:
      return "peer-expired";
    case LP2P_SWARM_EV_EXTERNAL_ADDR_CONFIRMED:
      return "external-addr-confirmed";
    case LP2P_SWARM_EV_EXTERNAL_ADDR_EXPIRED:
      return "external-addr-expired";
    case LP2P_SWARM_EV_INTERFACES_CHANGED:
      return "interfaces-changed";
  }
  return "unknown";
}

const char *lp2p__peer_str(const lp2p_peer_id *id, char *buf, size_t cap) {
  if (!id || !id->len || lp2p_peer_id_to_string(id, buf, cap) < 0) snprintf(buf, cap, "?");
  return buf;
}

const char *lp2p__ma_str(const lp2p_multiaddr *ma, char *buf, size_t cap) {
  if (!ma || lp2p_multiaddr_to_string(ma, buf, cap) < 0) snprintf(buf, cap, "?");
  return buf;
}


/* ------------------------------------------------------------------------- */
/* deferred work */

static int has_pending(const lp2p_swarm *sw) {
  return !lp2p__list_empty(&sw->conn_closeq) || !lp2p__list_empty(&sw->closeq) ||
         !lp2p__list_empty(&sw->dial_doneq) || !lp2p__list_empty(&sw->tasks) || !lp2p__list_empty(&sw->openq) ||
         !lp2p__list_empty(&sw->dirty);
}

static void process_pending(lp2p_swarm *sw) {
  for (;;) {
    if (!lp2p__list_empty(&sw->conn_closeq)) {
      lp2p__conn *c = LP2P__CONTAINER(sw->conn_closeq.next, lp2p__conn, close_link);
      lp2p__list_del(&c->close_link);
      lp2p__conn_teardown(c);
      continue;
    }
    if (!lp2p__list_empty(&sw->closeq)) {
      lp2p_stream *s = LP2P__CONTAINER(sw->closeq.next, lp2p_stream, close_link);
      lp2p__list_del(&s->close_link);
      lp2p__stream_deliver_close(s);
      continue;
    }
    if (!lp2p__list_empty(&sw->dial_doneq)) {
      lp2p__dial *d = LP2P__CONTAINER(sw->dial_doneq.next, lp2p__dial, done_link);
      lp2p__list_del(&d->done_link);
      lp2p__dial_finish_callbacks(d);
      continue;
    }
    if (!lp2p__list_empty(&sw->tasks)) {
      lp2p__task *t = LP2P__CONTAINER(sw->tasks.next, lp2p__task, link);
      lp2p__list_del(&t->link);
      void (*fn)(lp2p_swarm *, void *) = t->fn;
      void *arg = t->arg;
      lp2p__free(&sw->mem, t);
      fn(sw, arg);
      continue;
    }
    if (!lp2p__list_empty(&sw->openq)) { /* before the flush: first writes leave with the proposal */
      lp2p_stream *s = LP2P__CONTAINER(sw->openq.next, lp2p_stream, open_link);
      lp2p__list_del(&s->open_link);
      lp2p__stream_deliver_open(s);
      continue;
    }
    if (!lp2p__list_empty(&sw->dirty)) {
      lp2p__conn *c = LP2P__CONTAINER(sw->dirty.next, lp2p__conn, pending_link);
      lp2p__list_del(&c->pending_link);
      lp2p__conn_flush(c);
      lp2p__conn_arm(c);
      continue;
    }
    break;
  }
}

void lp2p__swarm_enter(lp2p_swarm *sw) { sw->depth++; }

void lp2p__swarm_leave(lp2p_swarm *sw) {
  if (sw->depth > 1) {
    sw->depth--;
    return;
  }
  process_pending(sw);
  sw->depth = 0;
  if (sw->soon_active && !has_pending(sw)) {
    uv_idle_stop(&sw->soon);
    sw->soon_active = 0;
  }
}

static void soon_cb(uv_idle_t *h) {
  lp2p_swarm *sw = h->data;
  lp2p__swarm_enter(sw);
  lp2p__swarm_leave(sw);
  if (sw->soon_active) {
    uv_idle_stop(&sw->soon);
    sw->soon_active = 0;
  }
}

void lp2p__swarm_kick(lp2p_swarm *sw) {
  if (sw->depth > 0 || sw->soon_active) return;
  if (uv_is_closing((uv_handle_t *)&sw->soon)) return;
  uv_idle_start(&sw->soon, soon_cb);
  sw->soon_active = 1;
}

int lp2p__swarm_defer(lp2p_swarm *sw, void (*fn)(lp2p_swarm *, void *), void *arg) {
  return lp2p__swarm_defer2(sw, fn, arg, NULL);
}

int lp2p__swarm_defer2(lp2p_swarm *sw, void (*fn)(lp2p_swarm *, void *), void *arg,
                       void (*drop)(lp2p_swarm *, void *)) {
  lp2p__task *t = lp2p__malloc(&sw->mem, sizeof *t);
  if (!t) return LP2P_ERR_NOMEM;
  t->fn = fn;
  t->arg = arg;
  t->drop = drop;
  lp2p__list_add_tail(&sw->tasks, &t->link);
  lp2p__swarm_kick(sw);
  return 0;
}

void lp2p__swarm_emit(lp2p_swarm *sw, const lp2p_swarm_event *ev) {
  if (sw->freeing) return;
  size_t n = sw->n_behaviours;
  for (size_t i = 0; i < n && i < sw->n_behaviours; i++) {
    const lp2p__behaviour *b = &sw->behaviours[i];
    if (b->vt->on_event) b->vt->on_event(b->self, sw, ev);
  }
  if (sw->ev_fn) sw->ev_fn(sw, ev, sw->ev_ud);
}

/* ------------------------------------------------------------------------- */
/* connection results: the connection layer reports here, the core tells the dial and peer tables */

void lp2p__swarm_conn_ready(lp2p_swarm *sw, lp2p__conn *c) {
  lp2p__peer_conn_ready(sw, c);
  if (c->dial && !c->close_queued) {
    lp2p__dial *d = c->dial;
    c->dial = NULL;
    lp2p__dial_conn_ready(d, c);
  }
}

void lp2p__swarm_conn_demoted(lp2p_swarm *sw, lp2p__conn *c, int reason) {
  if (c->live) lp2p__peer_conn_gone(sw, c, reason);
}

void lp2p__swarm_conn_gone(lp2p_swarm *sw, lp2p__conn *c, int reason) {
  if (c->dial) {
    lp2p__dial *d = c->dial;
    c->dial = NULL;
    lp2p__dial_conn_failed(d, c, reason);
  }
  if (c->peer) {
    lp2p__peer *pe = c->peer;
    lp2p__list_del(&c->peer_link);
    lp2p__peer_conn_gone(sw, c, reason);
    c->peer = NULL;
    /* streams waiting for this peer: another connection, a dial in progress, or failure */
    if (pe->primary)
      lp2p__peer_open_waiting(sw, pe);
    else if (!pe->dial)
      lp2p__peer_fail_waiting(sw, pe, reason);
  }
}

/* ------------------------------------------------------------------------- */
/* post */

static void async_cb(uv_async_t *h) {
  lp2p_swarm *sw = h->data;
  uv_mutex_lock(&sw->post_mu);
  lp2p__post *q = sw->post_head;
  sw->post_head = sw->post_tail = NULL;
  uv_mutex_unlock(&sw->post_mu);
  lp2p__swarm_enter(sw);
  while (q) {
    lp2p__post *next = q->next;
    void (*fn)(lp2p_swarm *, void *) = q->fn;
    void *arg = q->arg;
    free(q);
    fn(sw, arg);
    q = next;
  }
  lp2p__swarm_leave(sw);
}

int lp2p_swarm_post(lp2p_swarm *sw, void (*fn)(lp2p_swarm *sw, void *arg), void *arg) {
  return lp2p_swarm_post2(sw, fn, arg, NULL);
}

int lp2p_swarm_post2(lp2p_swarm *sw, void (*fn)(lp2p_swarm *sw, void *arg), void *arg,
                     void (*drop_fn)(void *arg)) {
  if (!sw || !fn) {
    if (drop_fn) drop_fn(arg);
    return LP2P_ERR_INVAL;
  }
  /* plain malloc: lp2p_mem implementations need not be thread-safe */
  lp2p__post *p = malloc(sizeof *p);
  if (!p) {
    if (drop_fn) drop_fn(arg);
    return LP2P_ERR_NOMEM;
  }
  p->next = NULL;
  p->fn = fn;
  p->arg = arg;
  p->drop = drop_fn;
  uv_mutex_lock(&sw->post_mu);
  if (sw->post_closed) {
    uv_mutex_unlock(&sw->post_mu);
    free(p);
    if (drop_fn) drop_fn(arg);
    return LP2P_ERR_STATE;
  }
  if (sw->post_tail)
    sw->post_tail->next = p;
  else
    sw->post_head = p;
  sw->post_tail = p;
  uv_async_send(&sw->async); /* under the lock: free() cannot close the handle meanwhile */
  uv_mutex_unlock(&sw->post_mu);
  return 0;
}

/* ------------------------------------------------------------------------- */
/* lifecycle */

static void final_free(lp2p_swarm *sw) {
  uv_mutex_destroy(&sw->post_mu);
  lp2p__free(&sw->mem, sw->heap);
  lp2p__free(&sw->mem, sw->readbuf);
  lp2p_noise_identity_free(sw->noise_id);
  lp2p__wbuf_pool_free(sw);
  lp2p__rcs_free(sw);
  lp2p__free(&sw->mem, sw->agent);
  lp2p_mem mem = sw->mem;
  lp2p__free(&mem, sw);
}

void lp2p__swarm_handle_closed(lp2p_swarm *sw) {
  sw->handles--;
  if (sw->freeing && sw->handles == 0 && !sw->owns_loop) final_free(sw);
}

static void internal_close_cb(uv_handle_t *h) { lp2p__swarm_handle_closed(h->data); }

/* libuv writes with write(2): a peer that closed its end would kill the
 * process with SIGPIPE. Ignore it unless the application installed a handler. */
static void ignore_sigpipe(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, NULL);
  }
}

static int swarm_init(lp2p_swarm **out, const lp2p_swarm_config *cfg, uv_loop_t *loop, const lp2p_mem *mem) {
  if (!out || !cfg || !cfg->identity) return LP2P_ERR_INVAL;
  *out = NULL;
  ignore_sigpipe();
  mem = lp2p__mem_or_default(mem);
  lp2p_swarm *sw = lp2p__calloc(mem, 1, sizeof *sw);
  if (!sw) return LP2P_ERR_NOMEM;
  sw->mem = *mem;
  lp2p_swarm_config_default(&sw->cfg);
  size_t n = cfg->struct_size && cfg->struct_size < sizeof sw->cfg ? cfg->struct_size : sizeof sw->cfg;
  memcpy(&sw->cfg, cfg, n);
  sw->cfg.struct_size = sizeof sw->cfg;
  if (!sw->cfg.yamux_initial_window) sw->cfg.yamux_initial_window = 256 * 1024;
  if (sw->cfg.yamux_max_window < sw->cfg.yamux_initial_window)
    sw->cfg.yamux_max_window = sw->cfg.yamux_initial_window;
  char dflt[64];
  snprintf(dflt, sizeof dflt, "lp2p/%s", lp2p_version());
  const char *agent = cfg->agent_version ? cfg->agent_version : dflt;
  sw->agent = lp2p__strndup(mem, agent, strlen(agent));
  sw->readbuf = lp2p__malloc(mem, LP2P__SW_READ_BUF);
  int rv = 0;
  if (!sw->agent || !sw->readbuf) rv = LP2P_ERR_NOMEM;
  if (!rv) rv = lp2p_peer_id_from_pubkey(lp2p_privkey_public(cfg->identity), &sw->local);
  /* the Noise static key and its signed payload, made once for every connection */
  if (!rv) rv = lp2p_noise_identity_new(&sw->noise_id, cfg->identity, mem);
  if (!rv && (rv = lp2p__swarm_ps_init(sw)) < 0) lp2p_noise_identity_free(sw->noise_id);
  if (rv) {
    lp2p__free(mem, sw->agent);
    lp2p__free(mem, sw->readbuf);
    lp2p__free(mem, sw);
    return rv;
  }
  sw->cfg.agent_version = sw->agent;
  if (!loop) {
    if ((rv = uv_loop_init(&sw->own_loop)) != 0) {
      lp2p__swarm_ps_close(sw);
      lp2p_noise_identity_free(sw->noise_id);
      lp2p__free(mem, sw->agent);
      lp2p__free(mem, sw->readbuf);
      lp2p__free(mem, sw);
      return lp2p__uv_err(rv);
    }
    sw->loop = &sw->own_loop;
    sw->owns_loop = 1;
  } else {
    sw->loop = loop;
  }
  lp2p__list_init(&sw->conns);
  lp2p__list_init(&sw->listeners);
  lp2p__list_init(&sw->dials);
  lp2p__list_init(&sw->timers);
  lp2p__list_init(&sw->udps);
  lp2p__list_init(&sw->dirty);
  lp2p__list_init(&sw->conn_closeq);
  lp2p__list_init(&sw->closeq);
  lp2p__list_init(&sw->openq);
  lp2p__list_init(&sw->rc_waiters);
  lp2p__rc_init(&sw->rc, &sw->cfg, &sw->mem);
  /* node-wide spare send rings: at most 1/16 of the node budget, 4 MiB */
  sw->ypool.max = 4u << 20;
  if (sw->cfg.max_memory && sw->cfg.max_memory / 16 < sw->ypool.max) sw->ypool.max = (size_t)(sw->cfg.max_memory / 16);
  lp2p__list_init(&sw->dial_doneq);
  lp2p__list_init(&sw->tasks);
  lp2p__list_init(&sw->peer_lru);
  uv_mutex_init(&sw->post_mu);
  uv_async_init(sw->loop, &sw->async, async_cb);
  sw->async.data = sw;
  uv_unref((uv_handle_t *)&sw->async);
  uv_idle_init(sw->loop, &sw->soon);
  sw->soon.data = sw;
  sw->handles = 2;
  if (lp2p__sched_init(sw) == 0) sw->handles++;
  lp2p__swarm_ps_start(sw); /* the store's expiry deadline (a scheduler entry) */
  lp2p__rcs_start(sw);      /* the allocator trim's deadline (a scheduler entry) */
  sw->next_conn_id = 1;
  *out = sw;
  char pb[LP2P_PEER_ID_MAX_TEXT];
  lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "swarm %s created", lp2p__peer_str(&sw->local, pb, sizeof pb));
  return 0;
}

int lp2p_swarm_new(lp2p_swarm **out, const lp2p_swarm_config *cfg, const lp2p_mem *mem) {
  return swarm_init(out, cfg, NULL, mem);
}

int lp2p_swarm_new_uv(lp2p_swarm **out, const lp2p_swarm_config *cfg, uv_loop_t *loop, const lp2p_mem *mem) {
  if (!loop) return LP2P_ERR_INVAL;
  return swarm_init(out, cfg, loop, mem);
}

uv_loop_t *lp2p_swarm_uv_loop(const lp2p_swarm *sw) { return sw->loop; }

int lp2p_swarm_run(lp2p_swarm *sw) {
  if (!sw || !sw->owns_loop || sw->depth > 0 || sw->running || sw->freeing) return LP2P_ERR_STATE;
  sw->running = 1;
  sw->stopping = 0;
  /* keep the loop alive even with nothing to do until lp2p_swarm_stop() */
  uv_ref((uv_handle_t *)&sw->async);
  while (!sw->stopping) uv_run(sw->loop, UV_RUN_DEFAULT);
  uv_unref((uv_handle_t *)&sw->async);
  sw->running = 0;
  return 0;
}

void lp2p_swarm_stop(lp2p_swarm *sw) {
  if (!sw) return;
  sw->stopping = 1;
  uv_stop(sw->loop);
}

void lp2p_swarm_free(lp2p_swarm *sw) {
  if (!sw || sw->freeing) return;
  if (sw->depth > 0) { /* from inside a callback: the caller's frames still use sw */
    lp2p_log(LP2P_LOG_ERROR, LP2P__SW_LOG,
             "lp2p_swarm_free called from a swarm callback: ignored (use lp2p_swarm_stop)");
    return;
  }
  uv_mutex_lock(&sw->post_mu);
  sw->post_closed = 1;
  lp2p__post *q = sw->post_head;
  sw->post_head = sw->post_tail = NULL;
  uv_mutex_unlock(&sw->post_mu);
  while (q) {
    lp2p__post *n = q->next;
    if (q->drop) q->drop(q->arg);
    free(q);
    q = n;
  }
  lp2p__swarm_enter(sw);
  /* detach behaviours (they still see a working swarm, without events) */
  sw->freeing = 1;
  for (size_t i = sw->n_behaviours; i-- > 0;) {
    lp2p__behaviour *b = &sw->behaviours[i];
    if (b->vt->detach) b->vt->detach(b->self, sw);
  }
  lp2p__listeners_close_all(sw);
  lp2p__dial_cancel_all(sw);
  lp2p__link *it = sw->conns.next;
  while (it != &sw->conns) {
    lp2p__conn *c = LP2P__CONTAINER(it, lp2p__conn, sw_link);
    it = it->next;
    lp2p__conn_close(c, LP2P_ERR_CANCELED);
  }
  process_pending(sw);
  /* streams still waiting for a connection */
  for (size_t i = 0; i < sw->ptab_cap; i++)
    for (lp2p__peer *pe = sw->ptab[i]; pe; pe = pe->hnext) lp2p__peer_fail_waiting(sw, pe, LP2P_ERR_CANCELED);
  process_pending(sw);
  for (size_t i = sw->n_behaviours; i-- > 0;) {
    lp2p__behaviour *b = &sw->behaviours[i];
    if (b->vt->destroy) b->vt->destroy(b->self);
  }
  sw->n_behaviours = 0;
  process_pending(sw);
  /* tasks queued after this point are dropped */
  while (!lp2p__list_empty(&sw->tasks)) {
    lp2p__task *t = LP2P__CONTAINER(sw->tasks.next, lp2p__task, link);
    lp2p__list_del(&t->link);
    if (t->drop) t->drop(sw, t->arg);
    lp2p__free(&sw->mem, t);
  }
  lp2p__interfaces_free(sw);
  lp2p__udp_free_all(sw);
  while (!lp2p__list_empty(&sw->timers)) {
    lp2p_timer *t = LP2P__CONTAINER(sw->timers.next, lp2p_timer, link);
    lp2p_timer_free(t);
  }
  lp2p__registry_free(sw);
  lp2p__peers_free_all(sw);
  lp2p__swarm_ps_close(sw);
  lp2p__rcs_stop(sw);
  if (sw->manual) lp2p__sched_run_all(sw); /* close grace periods: nobody advances this clock any more */
  sw->depth = 0;
  if (sw->soon_active) uv_idle_stop(&sw->soon);
  sw->soon_active = 0;
  uv_close((uv_handle_t *)&sw->async, internal_close_cb);
  uv_close((uv_handle_t *)&sw->soon, internal_close_cb);
  lp2p__sched_close(sw, internal_close_cb);
  if (sw->owns_loop) {
    /* everything on the own loop is ours (including resolver handles) */
    while (sw->handles > 0 || uv_loop_alive(sw->loop)) uv_run(sw->loop, UV_RUN_DEFAULT);
    int rv = uv_loop_close(sw->loop);
    if (rv) lp2p_log(LP2P_LOG_ERROR, LP2P__SW_LOG, "loop not closed cleanly: %s", uv_strerror(rv));
    final_free(sw);
  }
  /* app loop: final_free runs from the last close callback */
}

void lp2p_swarm_set_event_handler(lp2p_swarm *sw, lp2p_swarm_event_fn fn, void *ud) {
  sw->ev_fn = fn;
  sw->ev_ud = ud;
}

const lp2p_peer_id *lp2p_swarm_local_peer(const lp2p_swarm *sw) { return &sw->local; }
const lp2p_privkey *lp2p_swarm_identity(const lp2p_swarm *sw) { return sw->cfg.identity; }
const char *lp2p_swarm_agent_version(const lp2p_swarm *sw) { return sw->agent; }
const lp2p_swarm_config *lp2p_swarm_config_get(const lp2p_swarm *sw) { return &sw->cfg; }
uint64_t lp2p_swarm_dial_count(const lp2p_swarm *sw) { return sw->dial_count; }

/* ------------------------------------------------------------------------- */
/* behaviours */

int lp2p_swarm_add_behaviour(lp2p_swarm *sw, const lp2p_behaviour_vtable *vt, void *self) {
  if (!sw || !vt || vt->struct_size < offsetof(lp2p_behaviour_vtable, keep_alive)) return LP2P_ERR_INVAL;
  if (sw->freeing) return LP2P_ERR_STATE;
  if (sw->n_behaviours >= LP2P__SW_MAX_BEHAVIOURS) {
    if (vt->destroy) vt->destroy(self);
    return LP2P_ERR_LIMIT;
  }
  size_t idx = sw->n_behaviours++;
  sw->behaviours[idx].vt = vt;
  sw->behaviours[idx].self = self;
  int rv = 0;
  if (vt->attach) {
    lp2p__swarm_enter(sw);
    rv = vt->attach(self, sw);
    if (rv) {
      /* remove (it was the last one unless attach added others: shift) */
      for (size_t i = 0; i < sw->n_behaviours; i++) {
        if (sw->behaviours[i].self == self && sw->behaviours[i].vt == vt) {
          memmove(&sw->behaviours[i], &sw->behaviours[i + 1],
                  (sw->n_behaviours - i - 1) * sizeof sw->behaviours[0]);
          sw->n_behaviours--;
          break;
        }
      }
      if (vt->destroy) vt->destroy(self);
    }
    lp2p__swarm_leave(sw);
  }
  lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "behaviour %s added: %s", vt->name ? vt->name : "?",
           rv ? lp2p_strerror(rv) : "ok");
  return rv < 0 ? rv : (rv ? LP2P_ERR_CALLBACK : 0);
}

void *lp2p_swarm_behaviour(const lp2p_swarm *sw, const char *name) {
  for (size_t i = 0; i < sw->n_behaviours; i++)
    if (sw->behaviours[i].vt->name && name && !strcmp(sw->behaviours[i].vt->name, name))
      return sw->behaviours[i].self;
  return NULL;
}

int lp2p__behaviours_keep_alive(lp2p_swarm *sw, const lp2p_peer_id *peer) {
  for (size_t i = 0; i < sw->n_behaviours; i++) {
    const lp2p__behaviour *b = &sw->behaviours[i];
    if (b->vt->struct_size > offsetof(lp2p_behaviour_vtable, keep_alive) && b->vt->keep_alive &&
        b->vt->keep_alive(b->self, sw, peer))
      return 1;
  }
  return 0;
}

/* ------------------------------------------------------------------------- */
/* timers */

static void timer_cb(lp2p__sched_entry *e) {
  lp2p_timer *t = LP2P__CONTAINER(e, lp2p_timer, e);
  if (t->repeat) lp2p__sched_set(t->sw, &t->e, lp2p__swarm_now(t->sw) + t->repeat);
  t->fn(t, t->ud); /* may free t */
}

int lp2p_timer_new(lp2p_timer **out, lp2p_swarm *sw, lp2p_timer_fn fn, void *ud) {
  if (!out || !sw || !fn) return LP2P_ERR_INVAL;
  if (sw->freeing) return LP2P_ERR_STATE;
  lp2p_timer *t = lp2p__calloc(&sw->mem, 1, sizeof *t);
  if (!t) return LP2P_ERR_NOMEM;
  if (lp2p__sched_reserve(sw) < 0) {
    lp2p__free(&sw->mem, t);
    return LP2P_ERR_NOMEM;
  }
  t->sw = sw;
  t->fn = fn;
  t->ud = ud;
  t->e.fn = timer_cb;
  lp2p__list_add_tail(&sw->timers, &t->link);
  *out = t;
  return 0;
}

int lp2p_timer_start(lp2p_timer *t, uint64_t timeout_ms, uint64_t repeat_ms) {
  if (!t) return LP2P_ERR_INVAL;
  t->repeat = repeat_ms;
  lp2p__sched_set(t->sw, &t->e, lp2p__swarm_now(t->sw) + timeout_ms);
  return 0;
}

void lp2p_timer_stop(lp2p_timer *t) {
  if (t) lp2p__sched_cancel(t->sw, &t->e);
}

void lp2p_timer_free(lp2p_timer *t) {
  if (!t) return;
  lp2p_swarm *sw = t->sw;
  lp2p__sched_unreserve(sw, &t->e);
  lp2p__list_del(&t->link);
  lp2p__free(&sw->mem, t);
}
