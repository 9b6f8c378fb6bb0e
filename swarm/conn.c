/* swarm/conn.c - one connection's lifecycle: creation (outbound dial, inbound accept), the
 * handles, timers and idleness, GoAway and teardown. The upgrade pipeline is in upgrade.c, the
 * read/write path in conn_io.c. */
#include <string.h>

#include "swarm/swarm_int.h"

void lp2p__conn_log(const lp2p__conn *c, lp2p_log_level lvl, const char *what, int err) {
  if ((int)lvl > (int)lp2p_log_get_level()) return;
  char pb[LP2P_PEER_ID_MAX_TEXT], ab[256];
  lp2p_log(lvl, LP2P__SW_LOG, "conn #%llu %s %s peer %s: %s%s%s", (unsigned long long)c->id,
           c->dir == LP2P_DIR_OUTBOUND ? "->" : "<-", lp2p__ma_str(c->remote_addr, ab, sizeof ab),
           lp2p__peer_str(c->remote.len ? &c->remote : &c->expected, pb, sizeof pb), what, err ? " " : "",
           err ? lp2p_err_name(err) : "");
}

/* ------------------------------------------------------------------------- */
/* memory / handles */

static void conn_maybe_free(lp2p__conn *c) {
  if (c->io_open || c->tmo_reserved) return;
  lp2p_swarm *sw = c->sw;
  if (sw->rb_owner == c) sw->rb_owner = NULL;
  lp2p__rcs_conn_close(c); /* no-op after teardown */
  lp2p__bytes_free(&sw->mem, &c->rbuf);
  lp2p__bytes_free(&sw->mem, &c->staged);
  lp2p_multiaddr_free(c->remote_addr);
  lp2p_multiaddr_free(c->local_addr);
  lp2p__free(&sw->mem, c);
}

static void io_close_cb(uv_handle_t *h) {
  lp2p__conn *c = h->data;
  lp2p_swarm *sw = c->sw;
  lp2p__free(&sw->mem, h);
  c->io = NULL;
  c->io_open = 0;
  conn_maybe_free(c);
  lp2p__swarm_handle_closed(sw);
}

void lp2p__conn_close_io(lp2p__conn *c) {
  if (c->io && !uv_is_closing((uv_handle_t *)c->io)) uv_close((uv_handle_t *)c->io, io_close_cb);
}
void lp2p__conn_close_timer(lp2p__conn *c) {
  if (!c->tmo_reserved) return;
  c->tmo_reserved = 0;
  c->armed = 0;
  lp2p__sched_unreserve(c->sw, &c->tmo);
  conn_maybe_free(c); /* (when the transport stream is closed already) */
}

static lp2p__conn *conn_alloc(lp2p_swarm *sw, lp2p_direction dir) {
  lp2p__conn *c = lp2p__calloc(&sw->mem, 1, sizeof *c);
  if (!c) return NULL;
  c->sw = sw;
  c->id = sw->next_conn_id++;
  c->dir = dir;
  lp2p__list_init(&c->streams);
  if (lp2p__sched_reserve(sw) < 0) {
    lp2p__free(&sw->mem, c);
    return NULL;
  }
  c->tmo_reserved = 1;
  lp2p__list_add_tail(&sw->conns, &c->sw_link);
  lp2p__rcs_conn_open(c);
  return c;
}

void lp2p__conn_mark_dirty(lp2p__conn *c) {
  if (c->tearing || c->state == LP2P__C_CLOSING || lp2p__list_linked(&c->pending_link)) return;
  lp2p__list_add_tail(&c->sw->dirty, &c->pending_link);
  lp2p__swarm_kick(c->sw);
}

void lp2p__conn_close(lp2p__conn *c, int reason) {
  if (c->tearing || c->close_queued || c->state == LP2P__C_CLOSING) return;
  c->close_queued = 1;
  c->close_reason = reason;
  lp2p__list_add_tail(&c->sw->conn_closeq, &c->close_link);
  lp2p__swarm_kick(c->sw);
}

/* ------------------------------------------------------------------------- */
/* connect */

static void on_connect(uv_connect_t *req, int status) {
  lp2p__conn *c = req->data;
  lp2p_swarm *sw = c->sw;
  if (status == UV_ECANCELED || c->state == LP2P__C_CLOSING) return;
  lp2p__swarm_enter(sw);
  int rv = status < 0 ? lp2p__uv_err(status) : 0;
  if (!rv) {
    c->tr->addrs(c->io, &c->local_addr, NULL);
    rv = lp2p__upgrade_start(c);
  }
  if (!rv) rv = lp2p__conn_start_reading(c);
  if (!rv) {
    lp2p__conn_log(c, LP2P_LOG_DEBUG, "tcp connected", 0);
    lp2p__conn_mark_dirty(c);
  } else {
    lp2p__conn_log(c, LP2P_LOG_DEBUG, "connect failed:", rv);
    lp2p__conn_close(c, rv);
  }
  lp2p__swarm_leave(sw);
}

/* ------------------------------------------------------------------------- */
/* creation */

int lp2p__conn_new_outbound(lp2p_swarm *sw, lp2p__dial *d, const lp2p_multiaddr *ma,
                            const lp2p_peer_id *expect, lp2p__conn **out) {
  const lp2p__transport *tr = lp2p__transport_for(ma, 0);
  if (!tr) return LP2P_ERR_UNSUPPORTED;
  if (sw->cfg.max_outbound_conns && sw->n_outbound >= sw->cfg.max_outbound_conns) return LP2P_ERR_LIMIT;
  lp2p__conn *c = conn_alloc(sw, LP2P_DIR_OUTBOUND);
  if (!c) return LP2P_ERR_NOMEM;
  c->tr = tr;
  c->state = LP2P__C_CONNECTING;
  c->remote_addr = lp2p_multiaddr_dup(ma);
  if (expect && expect->len) c->expected = *expect;
  c->connect_req.data = c;
  int rv = c->remote_addr ? 0 : LP2P_ERR_NOMEM;
  if (!rv) rv = tr->dial(sw->loop, &sw->mem, ma, &c->io, &c->connect_req, on_connect);
  if (c->io) {
    c->io->data = c;
    c->io_open = 1;
    sw->handles++;
  }
  if (rv < 0) {
    /* not a live attempt yet: tear down quietly, the caller records the error */
    c->state = LP2P__C_CLOSING;
    lp2p__list_del(&c->sw_link);
    lp2p__conn_close_io(c);
    lp2p__conn_close_timer(c);
    return rv;
  }
  sw->dial_count++;
  sw->n_outbound++;
  c->counted_out = 1;
  c->dial = d;
  if (sw->cfg.dial_timeout_ms) c->deadline = lp2p__swarm_now(sw) + sw->cfg.dial_timeout_ms;
  lp2p__conn_log(c, LP2P_LOG_DEBUG, "dialing", 0);
  lp2p__conn_arm(c);
  *out = c;
  return 0;
}

static void raw_close_cb(uv_handle_t *h) {
  lp2p_swarm *sw = h->data;
  lp2p__free(&sw->mem, h);
  lp2p__swarm_handle_closed(sw);
}

static void emit_inbound_failed(lp2p_swarm *sw, const lp2p_multiaddr *addr, int err) {
  lp2p_swarm_event ev;
  memset(&ev, 0, sizeof ev);
  ev.struct_size = sizeof ev;
  ev.type = LP2P_SWARM_EV_INBOUND_CONN_FAILED;
  ev.addr = addr;
  ev.dir = LP2P_DIR_INBOUND;
  ev.err = err;
  lp2p__swarm_emit(sw, &ev);
}

void lp2p__conn_accept(lp2p_swarm *sw, lp2p__listener *l) {
  uv_stream_t *io = NULL;
  int rv = l->tr->accept(l->srv, &sw->mem, &io);
  if (rv < 0 || sw->freeing ||
      (sw->cfg.max_pending_inbound && sw->pending_inbound >= sw->cfg.max_pending_inbound) ||
      (sw->cfg.max_inbound_conns && sw->n_inbound >= sw->cfg.max_inbound_conns)) {
    int err = rv < 0 ? rv : LP2P_ERR_LIMIT;
    lp2p_multiaddr *remote = NULL;
    if (io && rv == 0) l->tr->addrs(io, NULL, &remote);
    char ab[256];
    lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "inbound connection from %s refused: %s",
             lp2p__ma_str(remote, ab, sizeof ab), lp2p_err_name(err));
    if (io) {
      io->data = sw;
      sw->handles++;
      uv_close((uv_handle_t *)io, raw_close_cb);
    }
    emit_inbound_failed(sw, remote, err);
    lp2p_multiaddr_free(remote);
    return;
  }
  lp2p__conn *c = conn_alloc(sw, LP2P_DIR_INBOUND);
  if (!c) {
    io->data = sw;
    sw->handles++;
    uv_close((uv_handle_t *)io, raw_close_cb);
    return;
  }
  c->tr = l->tr;
  c->io = io;
  io->data = c;
  c->io_open = 1;
  sw->handles++;
  c->state = LP2P__C_MSS_SEC;
  sw->n_inbound++;
  c->counted_in = 1;
  sw->pending_inbound++;
  c->counted_pending_in = 1;
  if (sw->cfg.handshake_timeout_ms) c->deadline = lp2p__swarm_now(sw) + sw->cfg.handshake_timeout_ms;
  rv = l->tr->addrs(io, &c->local_addr, &c->remote_addr);
  if (!rv) rv = lp2p__upgrade_start(c);
  if (!rv) rv = lp2p__conn_start_reading(c);
  lp2p__conn_log(c, LP2P_LOG_DEBUG, rv ? "accept failed:" : "accepted", rv);
  if (rv < 0)
    lp2p__conn_close(c, rv);
  else
    lp2p__conn_arm(c);
}

/* ------------------------------------------------------------------------- */
/* timers, idleness */

static int conn_is_idle(lp2p__conn *c) {
  if (c->n_streams || lp2p_yamux_stream_count(c->mx)) return 0;
  lp2p__peer *pe = c->peer;
  if (!c->live) return 1; /* demoted: close as soon as its streams are done */
  if (pe && (pe->holds > 0 || !lp2p__list_empty(&pe->waiting))) return 0;
  if (pe && lp2p__behaviours_keep_alive(c->sw, &pe->id)) return 0;
  return 1;
}

static void timer_cb(lp2p__sched_entry *e);

void lp2p__conn_arm(lp2p__conn *c) {
  lp2p_swarm *sw = c->sw;
  if (c->state == LP2P__C_CLOSING || c->close_queued) return;
  lp2p_tstamp now = lp2p__swarm_now(sw), due = LP2P_TSTAMP_NEVER;
  if (c->state != LP2P__C_READY) {
    if (c->deadline) due = c->deadline;
  } else {
    if (c->goaway_recv && c->live) lp2p__swarm_conn_demoted(sw, c, LP2P_ERR_GOAWAY);
    if (lp2p_yamux_error(c->mx)) {
      lp2p__conn_close(c, lp2p_yamux_error(c->mx));
      return;
    }
    lp2p_tstamp y = lp2p_yamux_next_expiry(c->mx);
    if (y < due) due = y;
    if (c->flush_retry) {
      c->flush_retry = 0;
      if (now + LP2P__SW_RETRY_MS < due) due = now + LP2P__SW_RETRY_MS; /* timer_cb marks c dirty */
    }
    if (c->n_negotiating) {
      for (lp2p__link *it = c->streams.next; it != &c->streams; it = it->next) {
        lp2p_stream *s = LP2P__CONTAINER(it, lp2p_stream, conn_link);
        if (s->state == LP2P__ST_NEGOTIATING && s->nego_deadline && s->nego_deadline < due)
          due = s->nego_deadline;
      }
    }
    if (c->mx_blocked && c->peer && c->peer->primary == c) {
      lp2p_tstamp w = lp2p__peer_waiting_due(c->peer);
      if (w < due) due = w;
    }
    int demoted = !c->live;
    if (demoted || sw->cfg.idle_timeout_ms) {
      if (conn_is_idle(c)) {
        if (demoted) {
          lp2p__conn_close(c, c->goaway_recv ? LP2P_ERR_GOAWAY : LP2P_ERR_CLOSED);
          return;
        }
        if (!c->idle_since) c->idle_since = now;
        lp2p_tstamp at = c->idle_since + sw->cfg.idle_timeout_ms;
        if (at < due) due = at;
      } else {
        c->idle_since = 0;
        if (!demoted) {
          /* re-check later: keep-alive holds/hooks can change without traffic */
          lp2p_tstamp at = now + sw->cfg.idle_timeout_ms;
          if (at < due) due = at;
        }
      }
    }
  }
  /* re-arm only for an earlier deadline: firing early is harmless (timer_cb re-checks everything and
   * re-arms), and most flushes leave the deadline where it was */
  if (due == LP2P_TSTAMP_NEVER) {
    if (c->armed) lp2p__sched_cancel(sw, &c->tmo);
    c->armed = 0;
  } else if (!c->armed || due < c->armed) {
    c->tmo.fn = timer_cb;
    lp2p__sched_set(sw, &c->tmo, due);
    c->armed = due ? due : 1;
  }
}

static void timer_cb(lp2p__sched_entry *e) {
  lp2p__conn *c = LP2P__CONTAINER(e, lp2p__conn, tmo);
  lp2p_swarm *sw = c->sw;
  c->armed = 0;
  if (c->state == LP2P__C_CLOSING || c->close_queued) return;
  lp2p__swarm_enter(sw);
  lp2p_tstamp now = lp2p__swarm_now(sw);
  if (c->state != LP2P__C_READY) {
    if (c->deadline && now >= c->deadline) {
      lp2p__conn_log(c, LP2P_LOG_DEBUG, c->dir == LP2P_DIR_OUTBOUND ? "dial timed out" : "handshake timed out", 0);
      lp2p__conn_close(c, LP2P_ERR_TIMEOUT);
    }
  } else {
    int rv = lp2p_yamux_handle_expiry(c->mx, now);
    if (rv < 0) {
      lp2p__conn_log(c, LP2P_LOG_DEBUG, "keep-alive failed:", rv);
      lp2p__conn_close(c, rv);
    } else {
      for (lp2p__link *it = c->streams.next; c->n_negotiating && it != &c->streams;) {
        lp2p_stream *s = LP2P__CONTAINER(it, lp2p_stream, conn_link);
        it = it->next;
        lp2p__stream_check_deadline(s, now);
      }
      if (c->mx_blocked && c->peer && c->peer->primary == c) lp2p__peer_expire_waiting(sw, c->peer, now);
      if (c->live && sw->cfg.idle_timeout_ms && c->idle_since &&
          now >= c->idle_since + sw->cfg.idle_timeout_ms && conn_is_idle(c)) {
        lp2p__conn_log(c, LP2P_LOG_DEBUG, "idle, closing", 0);
        lp2p__conn_close(c, LP2P_ERR_CLOSED);
      }
    }
  }
  lp2p__conn_mark_dirty(c);
  lp2p__swarm_leave(sw);
}

/* ------------------------------------------------------------------------- */
/* GoAway / teardown */

int lp2p__conn_can_open(const lp2p__conn *c) {
  return (c->remote_seen || c->n_streams < LP2P__SW_EARLY_STREAMS) && !c->mx_blocked;
}

void lp2p__conn_unblock(lp2p__conn *c) {
  if (!c->mx_blocked) return;
  c->mx_blocked = 0;
  if (c->peer && c->peer->primary == c) lp2p__peer_open_waiting(c->sw, c->peer); /* may block again */
}

void lp2p__conn_goaway(lp2p__conn *c) {
  if (!c->goaway_sent && c->mx) {
    lp2p_yamux_go_away(c->mx, LP2P_YAMUX_GOAWAY_NORMAL);
    c->goaway_sent = 1;
  }
  if (c->live) lp2p__swarm_conn_demoted(c->sw, c, LP2P_ERR_GOAWAY);
  lp2p__conn_mark_dirty(c);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  lp2p__conn *c = req->data;
  /* on success keep reading until the peer's EOF (or the grace timer), so
   * that unread bytes do not turn our close into a reset */
  if (status < 0 || !c->reading || c->eof_seen) {
    lp2p__conn_close_io(c);
    lp2p__conn_close_timer(c);
  }
}

static void grace_cb(lp2p__sched_entry *e) {
  lp2p__conn *c = LP2P__CONTAINER(e, lp2p__conn, tmo);
  lp2p__conn_close_io(c);
  lp2p__conn_close_timer(c);
}

void lp2p__conn_teardown(lp2p__conn *c) {
  lp2p_swarm *sw = c->sw;
  int reason = c->close_reason;
  lp2p__conn_state prev = c->state;
  c->state = LP2P__C_CLOSING;
  c->tearing = 1;
  if (sw->rb_owner == c) sw->rb_owner = NULL; /* its partial frame is of no use now */
  lp2p__list_del(&c->pending_link);
  lp2p__list_del(&c->sw_link);
  lp2p__conn_log(c, LP2P_LOG_DEBUG, "closed:", reason);

  if (c->counted_pending_in) {
    c->counted_pending_in = 0;
    sw->pending_inbound--;
  }
  if (c->counted_in) sw->n_inbound--;
  if (c->counted_out) sw->n_outbound--;
  c->counted_in = c->counted_out = 0;
  if (c->dir == LP2P_DIR_INBOUND && !c->was_ready && reason != LP2P_ERR_CANCELED)
    emit_inbound_failed(sw, c->remote_addr, reason);

  /* streams first, then the dial attempt and the per-peer transition */
  while (!lp2p__list_empty(&c->streams)) {
    lp2p_stream *s = LP2P__CONTAINER(c->streams.next, lp2p_stream, conn_link);
    lp2p__stream_fail(s, reason);
  }
  lp2p__swarm_conn_gone(sw, c, reason);

  /* say goodbye when the close is ours and the transport still works */
  int graceful = c->io && c->reading && !c->eof_seen &&
                 (reason == LP2P_ERR_CANCELED || reason == LP2P_ERR_CLOSED || reason == LP2P_ERR_PROTO ||
                  reason == LP2P_ERR_WINDOW || reason == LP2P_ERR_LIMIT || reason == LP2P_ERR_GOAWAY ||
                  reason == LP2P_ERR_TOO_LARGE || reason == LP2P_ERR_UNSUPPORTED ||
                  (reason == LP2P_ERR_TIMEOUT && prev != LP2P__C_READY));
  if (graceful) {
    if (c->mx && !c->goaway_sent && !lp2p_yamux_error(c->mx)) {
      lp2p_yamux_go_away(c->mx, LP2P_YAMUX_GOAWAY_NORMAL);
      c->goaway_sent = 1;
    }
    c->state = prev; /* flush_out checks the layer state */
    if (lp2p__conn_flush_out(c) < 0) graceful = 0;
    c->state = LP2P__C_CLOSING;
  }
  lp2p_yamux_free(c->mx);
  c->mx = NULL;
  lp2p__rcs_conn_close(c);
  lp2p_noise_free(c->noise);
  c->noise = NULL;
  lp2p_mss_free(c->mss);
  c->mss = NULL;

  if (!graceful && c->io && c->reading) {
    uv_read_stop(c->io);
    c->reading = 0;
  }
  if (graceful && c->io) {
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, c->io, shutdown_cb) == 0) {
      c->shutting_down = 1;
      c->tmo.fn = grace_cb;
      lp2p__sched_set(sw, &c->tmo, lp2p__swarm_now(sw) + LP2P__SW_CLOSE_GRACE_MS);
      return;
    }
  }
  if (c->io && c->reading) uv_read_stop(c->io);
  lp2p__conn_close_io(c);
  lp2p__conn_close_timer(c);
}
