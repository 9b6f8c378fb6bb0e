/* swarm/dial.c - dial attempts: addresses tried in turn, coalescing per peer,
 * per-address errors, one result for every caller. */
#include <string.h>

#include "swarm/swarm_int.h"

static void dial_free(lp2p_swarm *sw, lp2p__dial *d) {
  for (size_t i = 0; i < d->n; i++) lp2p_multiaddr_free(d->addrs[i]);
  lp2p__free(&sw->mem, d->waiters);
  lp2p__free(&sw->mem, d);
}

static int add_waiter(lp2p_swarm *sw, lp2p__dial *d, lp2p_dial_fn cb, void *ud) {
  if (!cb) return 0;
  if (d->n_waiters == d->cap_waiters) {
    size_t ncap = d->cap_waiters ? d->cap_waiters * 2 : 2;
    lp2p__dial_waiter *nw = lp2p__realloc(&sw->mem, d->waiters, ncap * sizeof *nw);
    if (!nw) return LP2P_ERR_NOMEM;
    d->waiters = nw;
    d->cap_waiters = ncap;
  }
  d->waiters[d->n_waiters].cb = cb;
  d->waiters[d->n_waiters].ud = ud;
  d->n_waiters++;
  return 0;
}

/* Inserts ma at position pos (a /p2p suffix split off and checked against the
 * dial's peer). skip_foreign: silently drop entries for another peer (dnsaddr
 * lists name several peers) instead of recording a mismatch. Returns 1 if
 * added, 0 if skipped/duplicate, or an error. */
static int insert_addr(lp2p__dial *d, size_t pos, const lp2p_multiaddr *ma, int skip_foreign) {
  if (d->n == LP2P__SW_MAX_DIAL_ADDRS) return LP2P_ERR_LIMIT;
  lp2p_multiaddr *base;
  lp2p_peer_id id;
  int rv = lp2p__split_p2p(ma, &base, &id);
  if (rv < 0) return rv;
  int foreign = id.len && d->peer.len && !lp2p_peer_id_equal(&id, &d->peer);
  int dup = 0;
  for (size_t i = 0; i < d->n && !dup; i++) dup = lp2p_multiaddr_equal(d->addrs[i], base);
  if (dup || (foreign && skip_foreign)) {
    lp2p_multiaddr_free(base);
    return 0;
  }
  memmove(&d->addrs[pos + 1], &d->addrs[pos], (d->n - pos) * sizeof d->addrs[0]);
  memmove(&d->expect[pos + 1], &d->expect[pos], (d->n - pos) * sizeof d->expect[0]);
  memmove(&d->pre_err[pos + 1], &d->pre_err[pos], (d->n - pos) * sizeof d->pre_err[0]);
  d->n++;
  d->addrs[pos] = base;
  d->pre_err[pos] = foreign ? LP2P_ERR_PEER_ID_MISMATCH : 0;
  d->expect[pos] = d->peer.len ? d->peer : id;
  return 1;
}

static int add_addr(lp2p__dial *d, const lp2p_multiaddr *ma) {
  int rv = insert_addr(d, d->n, ma, 0);
  return rv < 0 ? rv : 0;
}

static void finish(lp2p__dial *d, int result) {
  lp2p_swarm *sw = d->sw;
  if (d->done) return;
  d->done = 1;
  if (result < 0 && result != LP2P_ERR_CANCELED) {
    if (d->n_errs == 1)
      result = d->errs[0].err;
    else if (d->n_errs > 1)
      result = LP2P_ERR_DIAL;
  }
  d->result = result;
  lp2p__list_del(&d->link);
  if (d->pe && d->pe->dial == d) d->pe->dial = NULL;
  d->pe = NULL;
  lp2p__list_add_tail(&sw->dial_doneq, &d->done_link);
  lp2p__swarm_kick(sw);
}

static void record(lp2p__dial *d, size_t i, int err) {
  if (d->n_errs < LP2P__SW_MAX_DIAL_ADDRS) {
    d->errs[d->n_errs].addr = d->addrs[i];
    d->errs[d->n_errs].err = err;
    d->n_errs++;
  }
}

static void dial_next(lp2p__dial *d);

static void resolved(void *ud, int err, lp2p_multiaddr *const *addrs, size_t n) {
  lp2p__dial *d = ud;
  lp2p_swarm *sw = d->sw;
  size_t i = d->idx - 1;
  d->resolving = NULL;
  lp2p__swarm_enter(sw);
  char ab[256];
  lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "resolved %s: %s, %zu address%s",
           lp2p__ma_str(d->addrs[i], ab, sizeof ab), err ? lp2p_err_name(err) : "ok", n, n == 1 ? "" : "es");
  if (err == LP2P_ERR_CANCELED) {
    record(d, i, err);
  } else {
    size_t added = 0;
    for (size_t k = 0; k < n; k++) {
      int rv = insert_addr(d, d->idx + added, addrs[k], 1);
      if (rv > 0) added++;
    }
    if (err || !added) record(d, i, err ? err : LP2P_ERR_DNS);
    if (!d->done) dial_next(d);
  }
  lp2p__swarm_leave(sw);
}

static void dial_next(lp2p__dial *d) {
  lp2p_swarm *sw = d->sw;
  while (d->idx < d->n) {
    size_t i = d->idx++;
    if (d->pre_err[i]) {
      record(d, i, d->pre_err[i]);
      continue;
    }
    const lp2p__resolver *res = lp2p__resolver_for(d->addrs[i]);
    if (res) {
      if (++d->n_resolutions > LP2P__SW_MAX_RESOLUTIONS) {
        record(d, i, LP2P_ERR_LIMIT);
        continue;
      }
      lp2p__resolve_req *req;
      int rv = res->resolve(sw->loop, &sw->mem, d->addrs[i], resolved, d, &req);
      if (rv < 0) {
        record(d, i, rv);
        continue;
      }
      d->resolving = req;
      d->resolver = res;
      return;
    }
    lp2p__conn *c;
    int rv = lp2p__conn_new_outbound(sw, d, d->addrs[i], &d->expect[i], &c);
    if (rv < 0) {
      record(d, i, rv);
      continue;
    }
    d->cur = c;
    return;
  }
  finish(d, LP2P_ERR_DIAL);
}

void lp2p__dial_conn_failed(lp2p__dial *d, lp2p__conn *c, int err) {
  (void)c;
  d->cur = NULL;
  if (d->idx > 0) record(d, d->idx - 1, err);
  if (d->sw->freeing || err == LP2P_ERR_CANCELED) {
    finish(d, LP2P_ERR_CANCELED);
    return;
  }
  /* the peer got connected meanwhile (e.g. it dialed us): that is success */
  lp2p__peer *pe = d->peer.len ? lp2p__peer_find(d->sw, &d->peer) : NULL;
  if (pe && pe->live > 0) {
    d->result_peer = pe->id;
    finish(d, 0);
    return;
  }
  dial_next(d);
}

void lp2p__dial_conn_ready(lp2p__dial *d, lp2p__conn *c) {
  d->cur = NULL;
  d->result_peer = c->remote;
  finish(d, 0);
}

void lp2p__dial_finish_callbacks(lp2p__dial *d) {
  lp2p_swarm *sw = d->sw;
  const lp2p_peer_id *peer = d->result == 0 ? &d->result_peer : (d->peer.len ? &d->peer : NULL);
  char pb[LP2P_PEER_ID_MAX_TEXT];
  if (d->result < 0) {
    lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "dial %s failed: %s (%zu address%s tried)",
             lp2p__peer_str(peer, pb, sizeof pb), lp2p_err_name(d->result), d->n_errs,
             d->n_errs == 1 ? "" : "es");
    for (size_t i = 0; i < d->n_errs; i++) {
      char ab[256];
      lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "  %s: %s", lp2p__ma_str(d->errs[i].addr, ab, sizeof ab),
               lp2p_err_name(d->errs[i].err));
    }
    lp2p_swarm_event ev;
    memset(&ev, 0, sizeof ev);
    ev.struct_size = sizeof ev;
    ev.type = LP2P_SWARM_EV_DIAL_FAILED;
    ev.peer = peer;
    ev.dir = LP2P_DIR_OUTBOUND;
    ev.err = d->result;
    ev.dial_errors = d->errs;
    ev.n_dial_errors = d->n_errs;
    lp2p__swarm_emit(sw, &ev);
  }
  for (size_t i = 0; i < d->n_waiters; i++)
    d->waiters[i].cb(sw, peer, d->result, d->errs, d->n_errs, d->waiters[i].ud);
  if (d->result < 0 && d->peer.len) {
    lp2p__peer *pe = lp2p__peer_find(sw, &d->peer);
    /* streams waiting for this peer fail unless a new dial/connection took over */
    if (pe && !pe->primary && !pe->dial) lp2p__peer_fail_waiting(sw, pe, d->result);
  }
  dial_free(sw, d);
}

int lp2p__dial_start(lp2p_swarm *sw, const lp2p_peer_id *peer, const lp2p_multiaddr *const *addrs, size_t n,
                     lp2p_dial_fn cb, void *ud) {
  if (sw->freeing) return LP2P_ERR_STATE;
  if (n && !addrs) return LP2P_ERR_INVAL;
  lp2p_peer_id pid;
  memset(&pid, 0, sizeof pid);
  if (peer && peer->len) pid = *peer;
  for (size_t i = 0; i < n && !pid.len; i++) {
    lp2p_multiaddr *base;
    lp2p_peer_id id;
    int rv = lp2p__split_p2p(addrs[i], &base, &id);
    if (rv < 0) return rv;
    lp2p_multiaddr_free(base);
    if (id.len) pid = id;
  }
  if (pid.len && lp2p_peer_id_equal(&pid, &sw->local)) return LP2P_ERR_INVAL;
  if (!pid.len && !n) return LP2P_ERR_INVAL;

  lp2p__peer *pe = pid.len ? lp2p__peer_get(sw, &pid) : NULL;
  if (pid.len && !pe) return LP2P_ERR_NOMEM;
  if (pe && pe->dial) { /* coalesce */
    lp2p__dial *d = pe->dial;
    int rv = add_waiter(sw, d, cb, ud);
    if (rv < 0) return rv;
    for (size_t i = 0; i < n; i++) add_addr(d, addrs[i]);
    lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "dial joins the attempt in progress (%zu waiters)", d->n_waiters);
    return 0;
  }
  lp2p__dial *d = lp2p__calloc(&sw->mem, 1, sizeof *d);
  if (!d) return LP2P_ERR_NOMEM;
  d->sw = sw;
  d->peer = pid;
  int rv = add_waiter(sw, d, cb, ud);
  for (size_t i = 0; i < n && !rv; i++) rv = add_addr(d, addrs[i]);
  if (!rv && pe && pe->live > 0) {
    /* already connected: success without touching the network */
    lp2p_peerstore_add_addrs(sw->ps, &pid, (const lp2p_multiaddr *const *)d->addrs, d->n, LP2P_ADDR_SRC_USER, 0);
    lp2p__list_init(&d->link);
    d->result_peer = pid;
    finish(d, 0);
    return 0;
  }
  if (!rv && !n && pe) { /* the peer store's unexpired addresses */
    const lp2p_multiaddr *known[LP2P__SW_MAX_DIAL_ADDRS];
    size_t k = lp2p__swarm_ps_dial_addrs(sw, &pid, known, LP2P__SW_MAX_DIAL_ADDRS);
    for (size_t i = 0; i < k && !rv; i++) rv = add_addr(d, known[i]);
  }
  if (!rv && !d->n && !n && pe && sw->router) { /* no address known: ask the peer router first */
    lp2p__list_add_tail(&sw->dials, &d->link);
    pe->dial = d;
    d->pe = pe;
    d->routing = 1;
    if (lp2p__peer_route(sw, pe) == 0) return 0; /* lp2p__dial_routed goes on */
    lp2p__list_del(&d->link);
    pe->dial = NULL;
    d->pe = NULL;
    d->routing = 0;
  }
  if (!rv && !d->n) rv = LP2P_ERR_INVAL;
  if (rv < 0) {
    dial_free(sw, d);
    return rv;
  }
  lp2p__list_add_tail(&sw->dials, &d->link);
  if (pe) {
    pe->dial = d;
    d->pe = pe;
  }
  dial_next(d);
  return 0;
}

void lp2p__dial_routed(lp2p__dial *d, int err) {
  if (!d->routing || d->done) return;
  d->routing = 0;
  lp2p_swarm *sw = d->sw;
  lp2p__peer *pe = d->pe;
  if (pe && pe->live > 0) { /* connected meanwhile (it dialed us) */
    d->result_peer = pe->id;
    finish(d, 0);
    return;
  }
  if (!err && d->peer.len) {
    const lp2p_multiaddr *known[LP2P__SW_MAX_DIAL_ADDRS];
    size_t k = lp2p__swarm_ps_dial_addrs(sw, &d->peer, known, LP2P__SW_MAX_DIAL_ADDRS);
    for (size_t i = 0; i < k; i++) add_addr(d, known[i]);
  }
  if (d->n)
    dial_next(d);
  else
    finish(d, LP2P_ERR_NOT_CONNECTED);
}

void lp2p__dial_cancel_all(lp2p_swarm *sw) {
  while (!lp2p__list_empty(&sw->dials)) {
    lp2p__dial *d = LP2P__CONTAINER(sw->dials.next, lp2p__dial, link);
    if (d->cur) {
      d->cur->dial = NULL;
      lp2p__conn_close(d->cur, LP2P_ERR_CANCELED);
      d->cur = NULL;
    }
    if (d->resolving) {
      lp2p__resolve_req *req = d->resolving;
      d->resolving = NULL;
      d->done = 1; /* the cancel callback must not dial on */
      d->resolver->cancel(req);
      d->done = 0;
    }
    finish(d, LP2P_ERR_CANCELED);
  }
}

/* ------------------------------------------------------------------------- */
/* public */

int lp2p_swarm_dial_ma(lp2p_swarm *sw, const lp2p_peer_id *peer, const lp2p_multiaddr *const *addrs, size_t n,
                       lp2p_dial_fn cb, void *ud) {
  if (!sw || n > LP2P__SW_MAX_DIAL_ADDRS) return LP2P_ERR_INVAL;
  return lp2p__dial_start(sw, peer, addrs, n, cb, ud);
}

int lp2p_swarm_dial(lp2p_swarm *sw, const lp2p_peer_id *peer, const char *const *addrs, size_t n,
                    lp2p_dial_fn cb, void *ud) {
  if (!sw || (n && !addrs) || n > LP2P__SW_MAX_DIAL_ADDRS) return LP2P_ERR_INVAL;
  lp2p_multiaddr *mas[LP2P__SW_MAX_DIAL_ADDRS];
  int rv = 0;
  size_t got = 0;
  for (; got < n; got++) {
    if (!addrs[got]) {
      rv = LP2P_ERR_INVAL;
      break;
    }
    rv = lp2p_multiaddr_parse(&mas[got], addrs[got], NULL, 0);
    if (rv < 0) break;
  }
  if (!rv) rv = lp2p__dial_start(sw, peer, (const lp2p_multiaddr *const *)mas, n, cb, ud);
  for (size_t i = 0; i < got; i++) lp2p_multiaddr_free(mas[i]);
  return rv;
}
