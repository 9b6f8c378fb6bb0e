/* swarm/peers.c - the live-connection peer table (connections derived from live
 * connections only) and the simultaneous-dial rule. What is KNOWN about peers
 * (addresses, protocols, ...) lives in the peer store (swarm/peerstore.c); the
 * protocol registry in swarm/registry.c. */
#include <string.h>

#include "swarm/swarm_int.h"

/* ------------------------------------------------------------------------- */
/* peer table */

static size_t bucket(const lp2p_swarm *sw, const lp2p_peer_id *id) {
  return (size_t)(lp2p_peer_id_hash(id) & (sw->ptab_cap - 1));
}

lp2p__peer *lp2p__peer_find(const lp2p_swarm *sw, const lp2p_peer_id *id) {
  if (!sw->ptab_cap || !id || !id->len) return NULL;
  for (lp2p__peer *pe = sw->ptab[bucket(sw, id)]; pe; pe = pe->hnext)
    if (lp2p_peer_id_equal(&pe->id, id)) return pe;
  return NULL;
}

static int grow(lp2p_swarm *sw) {
  size_t ncap = sw->ptab_cap ? sw->ptab_cap * 2 : 64;
  lp2p__peer **nt = lp2p__calloc(&sw->mem, ncap, sizeof *nt);
  if (!nt) return LP2P_ERR_NOMEM;
  for (size_t i = 0; i < sw->ptab_cap; i++) {
    lp2p__peer *pe = sw->ptab[i];
    while (pe) {
      lp2p__peer *next = pe->hnext;
      size_t b = (size_t)(lp2p_peer_id_hash(&pe->id) & (ncap - 1));
      pe->hnext = nt[b];
      nt[b] = pe;
      pe = next;
    }
  }
  lp2p__free(&sw->mem, sw->ptab);
  sw->ptab = nt;
  sw->ptab_cap = ncap;
  return 0;
}

void lp2p__peer_touch(lp2p_swarm *sw, lp2p__peer *pe) {
  lp2p__list_del(&pe->lru_link);
  lp2p__list_add_tail(&sw->peer_lru, &pe->lru_link);
}

lp2p__peer *lp2p__peer_get(lp2p_swarm *sw, const lp2p_peer_id *id) {
  if (!id || !id->len) return NULL;
  lp2p__peer *pe = lp2p__peer_find(sw, id);
  if (pe) {
    lp2p__peer_touch(sw, pe);
    return pe;
  }
  if (sw->n_peers + 1 > sw->ptab_cap && grow(sw) < 0) return NULL;
  pe = lp2p__calloc(&sw->mem, 1, sizeof *pe);
  if (!pe) return NULL;
  pe->id = *id;
  lp2p__list_init(&pe->conns);
  lp2p__list_init(&pe->waiting);
  size_t b = bucket(sw, id);
  pe->hnext = sw->ptab[b];
  sw->ptab[b] = pe;
  sw->n_peers++;
  lp2p__list_add_tail(&sw->peer_lru, &pe->lru_link);
  lp2p__peer_maybe_evict(sw);
  return pe;
}

static int peer_busy(const lp2p__peer *pe) {
  return !lp2p__list_empty(&pe->conns) || pe->dial || !lp2p__list_empty(&pe->waiting) || pe->holds > 0 ||
         pe->routing;
}

static void peer_remove(lp2p_swarm *sw, lp2p__peer *pe) {
  lp2p__peer **pp = &sw->ptab[bucket(sw, &pe->id)];
  while (*pp && *pp != pe) pp = &(*pp)->hnext;
  if (*pp) *pp = pe->hnext;
  lp2p__list_del(&pe->lru_link);
  sw->n_peers--;
  lp2p__free(&sw->mem, pe);
}

void lp2p__peer_maybe_evict(lp2p_swarm *sw) {
  uint32_t max = sw->cfg.max_address_book_peers;
  if (!max) return;
  lp2p__link *it = sw->peer_lru.next;
  /* never evict the most recently touched entry (the one just created/used) */
  while (sw->n_peers > max && it != &sw->peer_lru && it->next != &sw->peer_lru) {
    lp2p__peer *pe = LP2P__CONTAINER(it, lp2p__peer, lru_link);
    it = it->next;
    if (!peer_busy(pe)) peer_remove(sw, pe);
  }
}

void lp2p__peers_free_all(lp2p_swarm *sw) {
  for (size_t i = 0; i < sw->ptab_cap; i++) {
    while (sw->ptab[i]) peer_remove(sw, sw->ptab[i]);
  }
  lp2p__free(&sw->mem, sw->ptab);
  sw->ptab = NULL;
  sw->ptab_cap = 0;
}

int lp2p__split_p2p(const lp2p_multiaddr *ma, lp2p_multiaddr **base, lp2p_peer_id *id) {
  size_t n = lp2p_multiaddr_count(ma);
  uint32_t code;
  const uint8_t *v;
  size_t vlen;
  id->len = 0;
  if (n > 0 && lp2p_multiaddr_component(ma, n - 1, &code, &v, &vlen) == 0 && code == LP2P_MA_P2P) {
    int rv = lp2p_peer_id_from_bytes(v, vlen, id);
    if (rv < 0) return rv;
    return lp2p_multiaddr_prefix(base, ma, n - 1);
  }
  *base = lp2p_multiaddr_dup(ma);
  return *base ? 0 : LP2P_ERR_NOMEM;
}

/* ------------------------------------------------------------------------- */
/* live set */

static void pick_primary(lp2p__peer *pe) {
  pe->primary = NULL;
  for (lp2p__link *it = pe->conns.next; it != &pe->conns; it = it->next) {
    lp2p__conn *c = LP2P__CONTAINER(it, lp2p__conn, peer_link);
    if (c->live) {
      pe->primary = c;
      return;
    }
  }
}

static void emit_conn(lp2p_swarm *sw, lp2p__conn *c, lp2p_swarm_event_type type, int err) {
  lp2p_swarm_event ev;
  memset(&ev, 0, sizeof ev);
  ev.struct_size = sizeof ev;
  ev.type = type;
  ev.peer = &c->remote;
  ev.addr = c->remote_addr;
  ev.dir = c->dir;
  ev.conn_id = c->id;
  ev.err = err;
  lp2p__swarm_emit(sw, &ev);
}

void lp2p__peer_conn_gone(lp2p_swarm *sw, lp2p__conn *c, int reason) {
  lp2p__peer *pe = c->peer;
  if (!pe || !c->live) return;
  c->live = 0;
  pe->live--;
  if (pe->primary == c) pick_primary(pe);
  char pb[LP2P_PEER_ID_MAX_TEXT];
  if (pe->live == 0) {
    lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "peer %s disconnected (conn #%llu: %s)",
             lp2p__peer_str(&pe->id, pb, sizeof pb), (unsigned long long)c->id, lp2p_err_name(reason));
    emit_conn(sw, c, LP2P_SWARM_EV_CONN_CLOSED, reason);
  } else {
    lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "peer %s: conn #%llu no longer live (%s), %d left",
             lp2p__peer_str(&pe->id, pb, sizeof pb), (unsigned long long)c->id, lp2p_err_name(reason),
             pe->live);
  }
}

void lp2p__peer_conn_ready(lp2p_swarm *sw, lp2p__conn *c) {
  lp2p__peer *pe = lp2p__peer_get(sw, &c->remote);
  if (!pe) {
    lp2p__conn_close(c, LP2P_ERR_NOMEM);
    return;
  }
  c->peer = pe;
  lp2p__list_add_tail(&pe->conns, &c->peer_link);
  lp2p__swarm_ps_conn_ready(sw, c); /* peer store: dialed address, last seen */
  char pb[LP2P_PEER_ID_MAX_TEXT], ab[256];
  if (pe->live == 0) {
    c->live = 1;
    pe->live = 1;
    pe->primary = c;
    lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "peer %s connected (conn #%llu %s %s)",
             lp2p__peer_str(&pe->id, pb, sizeof pb), (unsigned long long)c->id,
             c->dir == LP2P_DIR_OUTBOUND ? "outbound" : "inbound",
             lp2p__ma_str(c->remote_addr, ab, sizeof ab));
    emit_conn(sw, c, LP2P_SWARM_EV_CONN_ESTABLISHED, 0);
  } else {
    /* a second connection: simultaneous dial rule (see lp2p/swarm.h) */
    lp2p__conn *old = pe->primary;
    const lp2p_peer_id *old_dialer = old->dir == LP2P_DIR_OUTBOUND ? &sw->local : &pe->id;
    const lp2p_peer_id *new_dialer = c->dir == LP2P_DIR_OUTBOUND ? &sw->local : &pe->id;
    lp2p__conn *winner = old, *loser = c;
    if (!lp2p_peer_id_equal(old_dialer, new_dialer)) {
      const lp2p_peer_id *keeper = lp2p_peer_id_cmp(&sw->local, &pe->id) < 0 ? &sw->local : &pe->id;
      if (lp2p_peer_id_equal(new_dialer, keeper)) {
        winner = c;
        loser = old;
      }
    }
    c->live = 1;
    pe->live++;
    pe->primary = winner;
    lp2p__stream_restart_negotiating(loser, pe); /* opened below, on the winner */
    /* the side that dialed the losing connection sends the GoAway; the other
     * side only stops using it for new streams and follows that GoAway */
    if (loser->dir == LP2P_DIR_OUTBOUND) lp2p__conn_goaway(loser);
    lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG,
             "peer %s: duplicate conn #%llu (%s), keeping conn #%llu, retiring #%llu",
             lp2p__peer_str(&pe->id, pb, sizeof pb), (unsigned long long)c->id,
             c->dir == LP2P_DIR_OUTBOUND ? "outbound" : "inbound", (unsigned long long)winner->id,
             (unsigned long long)loser->id);
  }
  lp2p__peer_open_waiting(sw, pe);
}

/* yamux refused s (un-ACKed SYN limit): back to the front of the queue until the peer ACKs. */
static void requeue_blocked(lp2p_swarm *sw, lp2p__peer *pe, lp2p_stream *s) {
  lp2p__list_add_tail(pe->waiting.next, &s->wait_link); /* inserted before the first: at the head */
  pe->primary->mx_blocked = 1;
  if (!s->nego_deadline && sw->cfg.stream_negotiation_timeout_ms)
    s->nego_deadline = lp2p__swarm_now(sw) + sw->cfg.stream_negotiation_timeout_ms;
  lp2p__conn_mark_dirty(pe->primary); /* arms the timer for the deadline */
}

void lp2p__peer_open_waiting(lp2p_swarm *sw, lp2p__peer *pe) {
  while (pe->primary && lp2p__conn_can_open(pe->primary) && !lp2p__list_empty(&pe->waiting)) {
    lp2p_stream *s = LP2P__CONTAINER(pe->waiting.next, lp2p_stream, wait_link);
    lp2p__list_del(&s->wait_link);
    int rv = lp2p__stream_start_outbound(s, pe->primary);
    if (rv == LP2P__SW_BLOCKED)
      requeue_blocked(sw, pe, s);
    else if (rv < 0)
      lp2p__stream_fail(s, rv);
  }
}

lp2p_tstamp lp2p__peer_waiting_due(const lp2p__peer *pe) {
  for (const lp2p__link *it = pe->waiting.next; it != &pe->waiting; it = it->next) {
    const lp2p_stream *s = LP2P__CONTAINER(it, lp2p_stream, wait_link);
    if (s->nego_deadline) return s->nego_deadline; /* queued in deadline order */
  }
  return LP2P_TSTAMP_NEVER;
}

void lp2p__peer_expire_waiting(lp2p_swarm *sw, lp2p__peer *pe, lp2p_tstamp now) {
  (void)sw;
  for (lp2p__link *it = pe->waiting.next; it != &pe->waiting;) {
    lp2p_stream *s = LP2P__CONTAINER(it, lp2p_stream, wait_link);
    it = it->next;
    if (!s->nego_deadline) continue;
    if (now < s->nego_deadline) break;
    lp2p__list_del(&s->wait_link);
    lp2p__stream_fail(s, LP2P_ERR_TIMEOUT);
  }
}

void lp2p__peer_fail_waiting(lp2p_swarm *sw, lp2p__peer *pe, int err) {
  (void)sw;
  while (!lp2p__list_empty(&pe->waiting)) {
    lp2p_stream *s = LP2P__CONTAINER(pe->waiting.next, lp2p_stream, wait_link);
    lp2p__list_del(&s->wait_link);
    lp2p__stream_fail(s, err);
  }
}

/* ------------------------------------------------------------------------- */
/* public: peers / address book */

int lp2p_swarm_is_connected(const lp2p_swarm *sw, const lp2p_peer_id *peer) {
  const lp2p__peer *pe = lp2p__peer_find(sw, peer);
  return pe && pe->live > 0;
}

size_t lp2p_swarm_connected_peers(const lp2p_swarm *sw, lp2p_peer_id *out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < sw->ptab_cap; i++)
    for (const lp2p__peer *pe = sw->ptab[i]; pe; pe = pe->hnext)
      if (pe->live > 0) {
        if (out && n < max) out[n] = pe->id;
        n++;
      }
  return n;
}

const lp2p_multiaddr *lp2p_swarm_peer_remote_addr(const lp2p_swarm *sw, const lp2p_peer_id *peer) {
  const lp2p__peer *pe = lp2p__peer_find(sw, peer);
  return pe && pe->primary ? pe->primary->remote_addr : NULL;
}

int lp2p_swarm_add_addresses(lp2p_swarm *sw, const lp2p_peer_id *peer, const lp2p_multiaddr *const *addrs,
                             size_t n) {
  if (!sw || !peer || !peer->len || (n && !addrs)) return LP2P_ERR_INVAL;
  if (lp2p_peer_id_equal(peer, &sw->local)) return LP2P_ERR_INVAL;
  if (!n) return 0;
  int rv = lp2p_peerstore_add_addrs(sw->ps, peer, addrs, n, LP2P_ADDR_SRC_USER, 0);
  return rv < 0 ? rv : 0;
}

int lp2p_swarm_add_address(lp2p_swarm *sw, const lp2p_peer_id *peer, const char *text) {
  if (!sw || !text) return LP2P_ERR_INVAL;
  lp2p_multiaddr *ma;
  int rv = lp2p_multiaddr_parse(&ma, text, NULL, 0);
  if (rv < 0) return rv;
  lp2p_peer_id id;
  lp2p_multiaddr *base;
  rv = lp2p__split_p2p(ma, &base, &id);
  if (rv == 0) {
    lp2p_multiaddr_free(base);
    if (!peer) {
      if (!id.len) rv = LP2P_ERR_INVAL;
      peer = &id;
    }
    if (!rv) {
      const lp2p_multiaddr *one = ma;
      rv = lp2p_swarm_add_addresses(sw, peer, &one, 1);
    }
  }
  lp2p_multiaddr_free(ma);
  return rv;
}

size_t lp2p_swarm_peer_addresses(const lp2p_swarm *sw, const lp2p_peer_id *peer, const lp2p_multiaddr **out,
                                 size_t max) {
  return lp2p__ps_addr_ptrs(sw->ps, peer, out, out ? max : 0, lp2p__swarm_now(sw));
}

int lp2p__peer_busy(const lp2p_swarm *sw, const lp2p_peer_id *peer) {
  const lp2p__peer *pe = lp2p__peer_find(sw, peer);
  return pe && peer_busy(pe);
}

int lp2p_swarm_keep_alive(lp2p_swarm *sw, const lp2p_peer_id *peer, int on) {
  if (!sw || !peer || !peer->len) return LP2P_ERR_INVAL;
  lp2p__peer *pe = on ? lp2p__peer_get(sw, peer) : lp2p__peer_find(sw, peer);
  if (!pe) return on ? LP2P_ERR_NOMEM : LP2P_ERR_NOT_FOUND;
  if (on) {
    pe->holds++;
  } else {
    if (pe->holds == 0) return LP2P_ERR_STATE;
    pe->holds--;
    /* re-evaluate idleness of its connections */
    for (lp2p__link *it = pe->conns.next; it != &pe->conns; it = it->next)
      lp2p__conn_mark_dirty(LP2P__CONTAINER(it, lp2p__conn, peer_link));
  }
  return 0;
}

int lp2p_swarm_disconnect(lp2p_swarm *sw, const lp2p_peer_id *peer) {
  lp2p__peer *pe = lp2p__peer_find(sw, peer);
  int n = 0;
  if (pe) {
    for (lp2p__link *it = pe->conns.next; it != &pe->conns; it = it->next) {
      lp2p__conn_close(LP2P__CONTAINER(it, lp2p__conn, peer_link), LP2P_ERR_CANCELED);
      n++;
    }
  }
  return n ? 0 : LP2P_ERR_NOT_CONNECTED;
}


/* ------------------------------------------------------------------------- */
/* peer routing hook */

/* The router's lookup for pe is over (or the router went away): waiting streams go on. */
static void route_done(lp2p_swarm *sw, lp2p__peer *pe, int err) {
  pe->routing = 0;
  if (pe->primary) {
    lp2p__peer_open_waiting(sw, pe);
  } else if (pe->dial) {
    /* a dial started meanwhile (lp2p_swarm_dial, another stream): the waiting streams follow it */
  } else if (lp2p__list_empty(&pe->waiting)) {
    /* nobody waits any more (streams reset meanwhile) */
  } else if (err == 0 && lp2p__swarm_ps_dialable(sw, &pe->id)) {
    int rv = lp2p__dial_start(sw, &pe->id, NULL, 0, NULL, NULL);
    if (rv < 0) lp2p__peer_fail_waiting(sw, pe, rv);
  } else {
    char pb[LP2P_PEER_ID_MAX_TEXT];
    lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "peer router found no address for %s (%s)",
             lp2p__peer_str(&pe->id, pb, sizeof pb), lp2p_err_name(err));
    lp2p__peer_fail_waiting(sw, pe, LP2P_ERR_NOT_CONNECTED);
  }
  lp2p__swarm_kick(sw);
}

int lp2p__peer_route(lp2p_swarm *sw, lp2p__peer *pe) {
  if (!sw->router) return LP2P_ERR_NOT_CONNECTED;
  if (pe->routing) return 0; /* joins the lookup in progress */
  pe->routing = 1;
  int rv = sw->router(sw, &pe->id, sw->router_ud);
  if (rv < 0) {
    pe->routing = 0;
    return LP2P_ERR_NOT_CONNECTED;
  }
  return 0;
}

int lp2p_swarm_set_peer_router(lp2p_swarm *sw, lp2p_peer_router_fn fn, void *ud) {
  if (!sw) return LP2P_ERR_INVAL;
  sw->router = fn;
  sw->router_ud = ud;
  if (!fn) /* lookups in progress will never report: their streams fail now */
    for (size_t i = 0; i < sw->ptab_cap; i++)
      for (lp2p__peer *pe = sw->ptab[i], *next; pe; pe = next) {
        next = pe->hnext;
        if (pe->routing) route_done(sw, pe, LP2P_ERR_CANCELED);
      }
  return 0;
}

int lp2p_swarm_peer_routed(lp2p_swarm *sw, const lp2p_peer_id *peer, int err) {
  if (!sw || !peer || !peer->len) return LP2P_ERR_INVAL;
  lp2p__peer *pe = lp2p__peer_find(sw, peer);
  if (!pe || !pe->routing) return LP2P_ERR_NOT_FOUND;
  route_done(sw, pe, err);
  return 0;
}
