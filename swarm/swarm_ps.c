/* swarm/swarm_ps.c - the swarm's side of the peer store (hooks, expiry timer,
 * persistence flushing), lp2p_swarm_emit (deferred, deep-copied events),
 * lp2p_swarm_mem, and the node's external addresses (see lp2p/swarm.h). */
#include <string.h>

#include "swarm/swarm_int.h"

#define EXT_MAX 32                          /* candidates + confirmed */
#define EXT_VOTERS 8                        /* distinct reporters remembered per candidate */
#define EXT_CONFIRM 2                       /* distinct reporters needed */
#define EXT_TTL_MS (30u * 60u * 1000u)      /* an observation not repeated within this expires */

/* ------------------------------------------------------------------------- */
/* deferred events */

typedef struct ev_copy {
  lp2p_swarm_event ev;
  lp2p_peer_id peer;
  lp2p_multiaddr *addr;
  lp2p_multiaddr **addrs;
  size_t n_addrs;
  lp2p_dial_error *derrs;
  size_t n_derrs;
  char **protos;
  size_t n_protos;
  char *agent;
} ev_copy;

static lp2p_multiaddr *ma_copy(lp2p_swarm *sw, const lp2p_multiaddr *ma, int *fail) {
  if (!ma) return NULL;
  size_t len;
  const uint8_t *b = lp2p_multiaddr_bytes(ma, &len);
  lp2p_multiaddr *out = NULL;
  if (lp2p_multiaddr_from_bytes_mem(&out, b, len, &sw->mem, NULL, 0) < 0) *fail = 1;
  return out;
}

static void ev_free(lp2p_swarm *sw, void *arg) {
  ev_copy *c = arg;
  lp2p_multiaddr_free(c->addr);
  for (size_t i = 0; i < c->n_addrs; i++) lp2p_multiaddr_free(c->addrs[i]);
  lp2p__free(&sw->mem, c->addrs);
  for (size_t i = 0; i < c->n_derrs; i++) lp2p_multiaddr_free((lp2p_multiaddr *)c->derrs[i].addr);
  lp2p__free(&sw->mem, c->derrs);
  for (size_t i = 0; i < c->n_protos; i++) lp2p__free(&sw->mem, c->protos[i]);
  lp2p__free(&sw->mem, c->protos);
  lp2p__free(&sw->mem, c->agent);
  lp2p__free(&sw->mem, c);
}

static void ev_deliver(lp2p_swarm *sw, void *arg) {
  ev_copy *c = arg;
  lp2p__swarm_emit(sw, &c->ev);
  ev_free(sw, c);
}

#define EV_HAS(e, m) ((e)->struct_size >= offsetof(lp2p_swarm_event, m) + sizeof((e)->m))

int lp2p_swarm_emit(lp2p_swarm *sw, const lp2p_swarm_event *in) {
  if (!sw || !in || in->struct_size < offsetof(lp2p_swarm_event, n_dial_errors) + sizeof(size_t))
    return LP2P_ERR_INVAL;
  if (sw->freeing) return LP2P_ERR_STATE;
  lp2p_swarm_event e;
  memset(&e, 0, sizeof e);
  memcpy(&e, in, in->struct_size < sizeof e ? in->struct_size : sizeof e);
  ev_copy *c = lp2p__calloc(&sw->mem, 1, sizeof *c);
  if (!c) return LP2P_ERR_NOMEM;
  int fail = 0;
  c->ev = e;
  c->ev.struct_size = sizeof c->ev;
  if (e.peer) {
    c->peer = *e.peer;
    c->ev.peer = &c->peer;
  }
  c->addr = ma_copy(sw, e.addr, &fail);
  c->ev.addr = c->addr;
  if (e.n_dial_errors && e.dial_errors) {
    c->derrs = lp2p__calloc(&sw->mem, e.n_dial_errors, sizeof *c->derrs);
    if (!c->derrs) fail = 1;
    for (size_t i = 0; c->derrs && i < e.n_dial_errors; i++) {
      c->derrs[i].err = e.dial_errors[i].err;
      c->derrs[i].addr = ma_copy(sw, e.dial_errors[i].addr, &fail);
      c->n_derrs++;
    }
  }
  c->ev.dial_errors = c->derrs;
  c->ev.n_dial_errors = c->n_derrs;
  if (e.n_addrs && e.addrs) {
    c->addrs = lp2p__calloc(&sw->mem, e.n_addrs, sizeof *c->addrs);
    if (!c->addrs) fail = 1;
    for (size_t i = 0; c->addrs && i < e.n_addrs; i++) c->addrs[c->n_addrs++] = ma_copy(sw, e.addrs[i], &fail);
  }
  c->ev.addrs = (const lp2p_multiaddr *const *)c->addrs;
  c->ev.n_addrs = c->n_addrs;
  if (e.n_protocols && e.protocols) {
    c->protos = lp2p__calloc(&sw->mem, e.n_protocols, sizeof *c->protos);
    if (!c->protos) fail = 1;
    for (size_t i = 0; c->protos && i < e.n_protocols; i++) {
      const char *p = e.protocols[i] ? e.protocols[i] : "";
      if (!(c->protos[c->n_protos++] = lp2p__strndup(&sw->mem, p, strlen(p)))) fail = 1;
    }
  }
  c->ev.protocols = (const char *const *)c->protos;
  c->ev.n_protocols = c->n_protos;
  if (e.agent && !(c->agent = lp2p__strndup(&sw->mem, e.agent, strlen(e.agent)))) fail = 1;
  c->ev.agent = c->agent;
  if (fail || lp2p__swarm_defer2(sw, ev_deliver, c, ev_free) < 0) {
    ev_free(sw, c);
    return LP2P_ERR_NOMEM;
  }
  return 0;
}

const lp2p_mem *lp2p_swarm_mem(const lp2p_swarm *sw) { return sw ? &sw->mem : NULL; }

/* ------------------------------------------------------------------------- */
/* external addresses */

typedef struct ext_voter {
  lp2p_peer_id peer;
  uint8_t net[7]; /* scope + /24 or /48 of the reporter's address */
} ext_voter;

typedef struct ext_item {
  lp2p_multiaddr *ma;
  ext_voter voters[EXT_VOTERS];
  size_t n_voters;
  lp2p_tstamp last;
  int confirmed, configured;
} ext_item;

struct lp2p__ext {
  ext_item items[EXT_MAX];
  size_t n;
  const lp2p_multiaddr *view[EXT_MAX];
};

static void ext_emit(lp2p_swarm *sw, lp2p_swarm_event_type type, const lp2p_multiaddr *ma) {
  lp2p_swarm_event ev;
  memset(&ev, 0, sizeof ev);
  ev.struct_size = sizeof ev;
  ev.type = type;
  ev.addr = ma;
  char ab[256];
  lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "external address %s %s", lp2p__ma_str(ma, ab, sizeof ab),
           type == LP2P_SWARM_EV_EXTERNAL_ADDR_CONFIRMED ? "confirmed" : "expired");
  lp2p_swarm_emit(sw, &ev);
}

static void ext_drop(lp2p_swarm *sw, size_t i, int report) {
  lp2p__ext *x = sw->ext;
  if (report && x->items[i].confirmed) ext_emit(sw, LP2P_SWARM_EV_EXTERNAL_ADDR_EXPIRED, x->items[i].ma);
  lp2p_multiaddr_free(x->items[i].ma);
  memmove(&x->items[i], &x->items[i + 1], (x->n - i - 1) * sizeof x->items[0]);
  x->n--;
}

static ext_item *ext_find(lp2p__ext *x, const lp2p_multiaddr *ma) {
  for (size_t i = 0; i < x->n; i++)
    if (lp2p_multiaddr_equal(x->items[i].ma, ma)) return &x->items[i];
  return NULL;
}

/* A new entry (takes ma); evicts the oldest unconfirmed candidate when full. */
static ext_item *ext_add(lp2p_swarm *sw, lp2p_multiaddr *ma) {
  lp2p__ext *x = sw->ext;
  if (x->n == EXT_MAX) {
    size_t victim = EXT_MAX;
    for (size_t i = 0; i < x->n; i++)
      if (!x->items[i].confirmed && (victim == EXT_MAX || x->items[i].last < x->items[victim].last)) victim = i;
    if (victim == EXT_MAX) {
      lp2p_multiaddr_free(ma);
      return NULL;
    }
    ext_drop(sw, victim, 0);
  }
  ext_item *it = &x->items[x->n++];
  memset(it, 0, sizeof *it);
  it->ma = ma;
  return it;
}

static void ps_rearm(lp2p_swarm *sw);

int lp2p_swarm_add_external_addr(lp2p_swarm *sw, const lp2p_multiaddr *in) {
  if (!sw || !in || !sw->ext) return LP2P_ERR_INVAL;
  lp2p_multiaddr *ma;
  lp2p_peer_id id;
  int rv = lp2p__split_p2p(in, &ma, &id);
  if (rv < 0) return rv;
  if (!lp2p_multiaddr_is_dialable(ma) || (id.len && !lp2p_peer_id_equal(&id, &sw->local))) {
    lp2p_multiaddr_free(ma);
    return LP2P_ERR_INVAL;
  }
  ext_item *it = ext_find(sw->ext, ma);
  if (it) {
    lp2p_multiaddr_free(ma);
  } else if (!(it = ext_add(sw, ma))) {
    return LP2P_ERR_LIMIT;
  }
  it->configured = 1;
  it->last = lp2p__swarm_now(sw);
  if (!it->confirmed) {
    it->confirmed = 1;
    ext_emit(sw, LP2P_SWARM_EV_EXTERNAL_ADDR_CONFIRMED, it->ma);
  }
  return 0;
}

int lp2p_swarm_remove_external_addr(lp2p_swarm *sw, const lp2p_multiaddr *in) {
  if (!sw || !in || !sw->ext) return LP2P_ERR_INVAL;
  lp2p_multiaddr *ma;
  lp2p_peer_id id;
  int rv = lp2p__split_p2p(in, &ma, &id);
  if (rv < 0) return rv;
  rv = LP2P_ERR_NOT_FOUND;
  for (size_t i = 0; i < sw->ext->n; i++) {
    if (lp2p_multiaddr_equal(sw->ext->items[i].ma, ma)) {
      ext_drop(sw, i, 1);
      rv = 0;
      break;
    }
  }
  lp2p_multiaddr_free(ma);
  return rv;
}

size_t lp2p_swarm_external_addrs(const lp2p_swarm *sw, const lp2p_multiaddr **out, size_t max) {
  size_t k = 0;
  for (size_t i = 0; sw && sw->ext && i < sw->ext->n; i++) {
    if (!sw->ext->items[i].confirmed) continue;
    if (out && k < max) out[k] = sw->ext->items[i].ma;
    k++;
  }
  return k;
}

/* Network of the reporter: its scope, plus its /24 (IPv4) or /48 (IPv6) when public. */
static void net_key(const lp2p_multiaddr *remote, uint8_t key[7]) {
  memset(key, 0, 7);
  lp2p_ma_scope sc = lp2p_multiaddr_scope(remote);
  key[0] = (uint8_t)sc;
  uint32_t code;
  const uint8_t *v;
  size_t vlen;
  if (sc != LP2P_MA_SCOPE_PUBLIC || !remote || lp2p_multiaddr_component(remote, 0, &code, &v, &vlen) < 0) return;
  if (code == LP2P_MA_IP4 && vlen == 4) memcpy(key + 1, v, 3);
  if (code == LP2P_MA_IP6 && vlen == 16) memcpy(key + 1, v, 6);
}

static void ext_vote(lp2p_swarm *sw, lp2p_multiaddr *ma, const lp2p_peer_id *peer, const uint8_t net[7],
                     lp2p_tstamp now) {
  ext_item *it = ext_find(sw->ext, ma);
  if (it)
    lp2p_multiaddr_free(ma);
  else if (!(it = ext_add(sw, ma)))
    return;
  it->last = now;
  int new_peer = 1, new_net = 1;
  for (size_t i = 0; i < it->n_voters; i++) {
    if (lp2p_peer_id_equal(&it->voters[i].peer, peer)) new_peer = 0;
    if (!memcmp(it->voters[i].net, net, 7)) new_net = 0;
  }
  /* non-public reporters (LAN, loopback) share their /24 by nature: distinct peer ids suffice there */
  if (new_peer && (new_net || net[0] != LP2P_MA_SCOPE_PUBLIC) && it->n_voters < EXT_VOTERS) {
    it->voters[it->n_voters].peer = *peer;
    memcpy(it->voters[it->n_voters].net, net, 7);
    it->n_voters++;
  }
  if (!it->confirmed && it->n_voters >= EXT_CONFIRM) {
    it->confirmed = 1;
    ext_emit(sw, LP2P_SWARM_EV_EXTERNAL_ADDR_CONFIRMED, it->ma);
  }
}

int lp2p_swarm_observed_addr(lp2p_swarm *sw, const lp2p_peer_id *peer, lp2p_direction dir,
                             const lp2p_multiaddr *conn_remote, const lp2p_multiaddr *observed) {
  if (!sw || !peer || !peer->len || !observed || !sw->ext) return LP2P_ERR_INVAL;
  lp2p_multiaddr *ma;
  lp2p_peer_id id;
  int rv = lp2p__split_p2p(observed, &ma, &id);
  if (rv < 0) return rv;
  if (!lp2p_multiaddr_is_dialable(ma)) {
    lp2p_multiaddr_free(ma);
    return LP2P_ERR_INVAL;
  }
  uint8_t net[7];
  net_key(conn_remote, net);
  lp2p_tstamp now = lp2p__swarm_now(sw);
  uint32_t c0 = 0, c1 = 0;
  int tcp = lp2p_multiaddr_count(ma) == 2 && lp2p_multiaddr_component(ma, 0, &c0, NULL, NULL) == 0 &&
            lp2p_multiaddr_component(ma, 1, &c1, NULL, NULL) == 0 && (c0 == LP2P_MA_IP4 || c0 == LP2P_MA_IP6) &&
            c1 == LP2P_MA_TCP;
  if (dir == LP2P_DIR_INBOUND || !tcp) {
    ext_vote(sw, ma, peer, net, now);
  } else {
    /* our outbound TCP connection: the observed port is an ephemeral source port; the IP is what
     * counts, combined with each of our TCP listen ports of the same family */
    lp2p_multiaddr *ip = NULL;
    rv = lp2p_multiaddr_prefix(&ip, ma, 1);
    lp2p_multiaddr_free(ma);
    if (rv < 0) return rv;
    const lp2p_multiaddr *ls[64];
    size_t nl = lp2p_swarm_listen_addrs(sw, ls, 64);
    uint16_t seen[64];
    size_t n_seen = 0;
    for (size_t i = 0; i < nl && i < 64; i++) {
      uint32_t a0, a1;
      const uint8_t *pv;
      size_t plen;
      if (lp2p_multiaddr_count(ls[i]) != 2 || lp2p_multiaddr_component(ls[i], 0, &a0, NULL, NULL) < 0 ||
          lp2p_multiaddr_component(ls[i], 1, &a1, &pv, &plen) < 0 || a0 != c0 || a1 != LP2P_MA_TCP || plen != 2)
        continue;
      uint16_t port = (uint16_t)((pv[0] << 8) | pv[1]);
      int dup = 0;
      for (size_t k = 0; k < n_seen; k++) dup |= seen[k] == port;
      if (dup || !port) continue;
      seen[n_seen++] = port;
      lp2p_multiaddr *cand = NULL;
      if (lp2p_multiaddr_append(&cand, ip, LP2P_MA_TCP, pv, 2, NULL, 0) == 0) ext_vote(sw, cand, peer, net, now);
    }
    lp2p_multiaddr_free(ip);
  }
  ps_rearm(sw);
  return 0;
}

static lp2p_tstamp ext_next(const lp2p_swarm *sw) {
  lp2p_tstamp t = LP2P_TSTAMP_NEVER;
  for (size_t i = 0; sw->ext && i < sw->ext->n; i++)
    if (!sw->ext->items[i].configured && sw->ext->items[i].last + EXT_TTL_MS < t)
      t = sw->ext->items[i].last + EXT_TTL_MS;
  return t;
}

static void ext_expire(lp2p_swarm *sw, lp2p_tstamp now) {
  for (size_t i = sw->ext ? sw->ext->n : 0; i-- > 0;) {
    ext_item *it = &sw->ext->items[i];
    if (!it->configured && it->last + EXT_TTL_MS <= now) ext_drop(sw, i, 1);
  }
}

/* ------------------------------------------------------------------------- */
/* peer store glue */

lp2p_peerstore *lp2p_swarm_peerstore(lp2p_swarm *sw) { return sw ? sw->ps : NULL; }

static lp2p_tstamp hook_now(void *ud) { return lp2p__swarm_now(ud); }
static int hook_busy(void *ud, const lp2p_peer_id *peer) { return lp2p__peer_busy(ud, peer); }
static void hook_emit(void *ud, const lp2p_swarm_event *ev) { lp2p_swarm_emit(ud, ev); }

static void ps_task(lp2p_swarm *sw, void *arg) {
  (void)arg;
  sw->ps_task_queued = 0;
  lp2p__ps_flush(sw->ps, lp2p__swarm_now(sw));
  ps_rearm(sw);
}

static void hook_changed(void *ud) {
  lp2p_swarm *sw = ud;
  if (sw->ps_task_queued || sw->freeing) return;
  if (lp2p__swarm_defer2(sw, ps_task, NULL, NULL) == 0) sw->ps_task_queued = 1;
}

static void ps_timer_cb(lp2p__sched_entry *e) { /* runs inside enter/leave */
  lp2p_swarm *sw = LP2P__CONTAINER(e, lp2p_swarm, ps_tmo);
  lp2p_tstamp now = lp2p__swarm_now(sw);
  lp2p__ps_expire(sw->ps, now);
  ext_expire(sw, now);
  ps_rearm(sw);
}

static void ps_rearm(lp2p_swarm *sw) {
  if (!sw->ps_timer_open || sw->freeing) return;
  lp2p_tstamp t = lp2p__ps_next_expiry(sw->ps), e = ext_next(sw), now = lp2p__swarm_now(sw);
  if (e < t) t = e;
  if (t == LP2P_TSTAMP_NEVER) {
    lp2p__sched_cancel(sw, &sw->ps_tmo);
    return;
  }
  lp2p__sched_set(sw, &sw->ps_tmo, t > now ? t : now);
}

int lp2p__swarm_ps_init(lp2p_swarm *sw) {
  lp2p__ps_hooks hk = {sw, hook_now, hook_busy, hook_emit, hook_changed};
  int rv = lp2p__ps_new(&sw->ps, &sw->mem, sw->cfg.max_address_book_peers,
                        sw->cfg.max_addrs_per_peer ? sw->cfg.max_addrs_per_peer : LP2P__SW_MAX_ADDRS_PER_PEER, &hk);
  if (rv < 0) return rv;
  sw->ext = lp2p__calloc(&sw->mem, 1, sizeof *sw->ext);
  if (!sw->ext) {
    lp2p__ps_free(sw->ps);
    sw->ps = NULL;
    return LP2P_ERR_NOMEM;
  }
  return 0;
}

/* called once the scheduler is up: one reserved scheduler slot for the store's expiry deadline */
void lp2p__swarm_ps_start(lp2p_swarm *sw) {
  if (lp2p__sched_reserve(sw) < 0) return; /* NOMEM: expiry is then checked lazily on reads only */
  sw->ps_tmo.fn = ps_timer_cb;
  sw->ps_timer_open = 1;
}

void lp2p__swarm_ps_close(lp2p_swarm *sw) {
  if (sw->ps_timer_open) {
    sw->ps_timer_open = 0;
    lp2p__sched_unreserve(sw, &sw->ps_tmo);
  }
  lp2p__ps_free(sw->ps);
  sw->ps = NULL;
  if (sw->ext) {
    while (sw->ext->n) ext_drop(sw, sw->ext->n - 1, 0);
    lp2p__free(&sw->mem, sw->ext);
    sw->ext = NULL;
  }
}

void lp2p__swarm_ps_conn_ready(lp2p_swarm *sw, lp2p__conn *c) {
  lp2p_tstamp now = lp2p__swarm_now(sw);
  if (c->dir == LP2P_DIR_OUTBOUND && c->remote_addr) {
    const lp2p_multiaddr *one = c->remote_addr;
    lp2p__ps_add_at(sw->ps, &c->remote, &one, 1, LP2P_ADDR_SRC_DIALED, 0, now);
  }
  lp2p__ps_seen(sw->ps, &c->remote, now);
}

size_t lp2p__swarm_ps_dial_addrs(lp2p_swarm *sw, const lp2p_peer_id *peer, const lp2p_multiaddr **out, size_t max) {
  size_t n = lp2p__ps_addr_ptrs(sw->ps, peer, out, max, lp2p__swarm_now(sw));
  return n < max ? n : max;
}

int lp2p__swarm_ps_dialable(lp2p_swarm *sw, const lp2p_peer_id *peer) {
  return lp2p__ps_addr_ptrs(sw->ps, peer, NULL, 0, lp2p__swarm_now(sw)) > 0;
}
