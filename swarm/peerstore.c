/* swarm/peerstore.c - the peer store (see lp2p/peerstore.h and swarm/peerstore_int.h).
 * A hash table of peers; per peer a small array of addresses. No clock, no I/O. */
#include <string.h>

#include "core/mem.h"
#include "lp2p/log.h"
#include "swarm/peerstore_int.h"

#define PS_LOG "peerstore"

typedef struct ps_addr {
  lp2p_multiaddr *ma;
  lp2p_addr_source src;
  lp2p_ma_scope scope;
  lp2p_tstamp expires; /* LP2P_TSTAMP_NEVER = permanent */
  lp2p_tstamp added;
} ps_addr;

typedef struct ps_peer {
  struct ps_peer *hnext;
  lp2p_peer_id id;
  ps_addr *addrs;
  size_t n_addrs, cap_addrs;
  char **protos;
  size_t n_protos;
  char *agent;
  uint8_t *pk;
  size_t pk_len;
  lp2p_tstamp last_seen, created;
  uint64_t rtt_us;
  int has_rtt;
  int dirty;
} ps_peer;

struct lp2p_peerstore {
  lp2p_mem mem;
  lp2p__ps_hooks hooks;
  uint32_t max_peers, max_addrs;
  ps_peer **tab;
  size_t cap, n;
  lp2p_peerstore_persist persist;
  int has_persist, loading, dirty_any;
};

static int is_discovery(lp2p_addr_source s) { return s >= LP2P_ADDR_SRC_MDNS; }
static int src_rank(lp2p_addr_source s) {
  return s == LP2P_ADDR_SRC_USER || s == LP2P_ADDR_SRC_DIALED ? 3 : s == LP2P_ADDR_SRC_IDENTIFY ? 2 : 1;
}
static int live(const ps_addr *a, lp2p_tstamp now) { return a->expires == LP2P_TSTAMP_NEVER || a->expires > now; }
static lp2p_tstamp ps_now(const lp2p_peerstore *ps) { return ps->hooks.now ? ps->hooks.now(ps->hooks.ud) : 0; }

/* ------------------------------------------------------------------------- */
/* table */

static size_t bucket(const lp2p_peerstore *ps, const lp2p_peer_id *id) {
  return (size_t)(lp2p_peer_id_hash(id) & (ps->cap - 1));
}

static ps_peer *find(const lp2p_peerstore *ps, const lp2p_peer_id *id) {
  if (!ps || !ps->cap || !id || !id->len) return NULL;
  for (ps_peer *p = ps->tab[bucket(ps, id)]; p; p = p->hnext)
    if (lp2p_peer_id_equal(&p->id, id)) return p;
  return NULL;
}

static int grow(lp2p_peerstore *ps) {
  size_t ncap = ps->cap ? ps->cap * 2 : 64;
  ps_peer **nt = lp2p__calloc(&ps->mem, ncap, sizeof *nt);
  if (!nt) return LP2P_ERR_NOMEM;
  for (size_t i = 0; i < ps->cap; i++) {
    for (ps_peer *p = ps->tab[i], *next; p; p = next) {
      next = p->hnext;
      size_t b = (size_t)(lp2p_peer_id_hash(&p->id) & (ncap - 1));
      p->hnext = nt[b];
      nt[b] = p;
    }
  }
  lp2p__free(&ps->mem, ps->tab);
  ps->tab = nt;
  ps->cap = ncap;
  return 0;
}

static void emit(lp2p_peerstore *ps, lp2p_swarm_event_type type, const lp2p_peer_id *peer,
                 const lp2p_multiaddr *const *addrs, size_t n, lp2p_addr_source src) {
  if (!ps->hooks.emit) return;
  lp2p_swarm_event ev;
  memset(&ev, 0, sizeof ev);
  ev.struct_size = sizeof ev;
  ev.type = type;
  ev.peer = peer;
  ev.addrs = addrs;
  ev.n_addrs = n;
  ev.source = src;
  ps->hooks.emit(ps->hooks.ud, &ev);
}

static void mark_dirty(lp2p_peerstore *ps, ps_peer *p) {
  if (!ps->has_persist || ps->loading || !ps->persist.save) return;
  p->dirty = 1;
  if (!ps->dirty_any) {
    ps->dirty_any = 1;
    if (ps->hooks.changed) ps->hooks.changed(ps->hooks.ud);
  }
}

static void free_protos(lp2p_peerstore *ps, ps_peer *p) {
  for (size_t i = 0; i < p->n_protos; i++) lp2p__free(&ps->mem, p->protos[i]);
  lp2p__free(&ps->mem, p->protos);
  p->protos = NULL;
  p->n_protos = 0;
}

static size_t count_discovery(const ps_peer *p, lp2p_addr_source *last) {
  size_t k = 0;
  for (size_t i = 0; i < p->n_addrs; i++)
    if (is_discovery(p->addrs[i].src)) {
      k++;
      if (last) *last = p->addrs[i].src;
    }
  return k;
}

/* Removes address i; PEER_EXPIRED if it was the last discovery-sourced one. */
static void drop_addr(lp2p_peerstore *ps, ps_peer *p, size_t i) {
  lp2p_addr_source src = p->addrs[i].src;
  lp2p_multiaddr_free(p->addrs[i].ma);
  memmove(&p->addrs[i], &p->addrs[i + 1], (p->n_addrs - i - 1) * sizeof p->addrs[0]);
  p->n_addrs--;
  if (is_discovery(src) && count_discovery(p, NULL) == 0) emit(ps, LP2P_SWARM_EV_PEER_EXPIRED, &p->id, NULL, 0, src);
}

static void unlink_peer(lp2p_peerstore *ps, ps_peer *p) {
  ps_peer **pp = &ps->tab[bucket(ps, &p->id)];
  while (*pp && *pp != p) pp = &(*pp)->hnext;
  if (*pp) *pp = p->hnext;
  ps->n--;
}

static void peer_destroy(lp2p_peerstore *ps, ps_peer *p) {
  for (size_t i = 0; i < p->n_addrs; i++) lp2p_multiaddr_free(p->addrs[i].ma);
  lp2p__free(&ps->mem, p->addrs);
  free_protos(ps, p);
  lp2p__free(&ps->mem, p->agent);
  lp2p__free(&ps->mem, p->pk);
  lp2p__free(&ps->mem, p);
}

/* Leaves the store (removal or eviction): PEER_EXPIRED if discovery knew it, persist.remove. */
static void peer_remove(lp2p_peerstore *ps, ps_peer *p) {
  lp2p_addr_source last = 0;
  unlink_peer(ps, p);
  if (count_discovery(p, &last)) emit(ps, LP2P_SWARM_EV_PEER_EXPIRED, &p->id, NULL, 0, last);
  if (ps->has_persist && ps->persist.remove && !ps->loading) ps->persist.remove(ps->persist.ud, &p->id);
  peer_destroy(ps, p);
}

static int peer_busy(const lp2p_peerstore *ps, const ps_peer *p) {
  return ps->hooks.busy && ps->hooks.busy(ps->hooks.ud, &p->id);
}

/* Usefulness class for eviction: 0 = no live address, 1 = never identified, 2 = identified. */
static int usefulness(const ps_peer *p, lp2p_tstamp now) {
  int any = 0;
  for (size_t i = 0; i < p->n_addrs && !any; i++) any = live(&p->addrs[i], now);
  if (!any) return 0;
  return p->n_protos ? 2 : 1;
}

/* Makes room for one more peer. keep: never evicted. */
static int evict_one(lp2p_peerstore *ps, const ps_peer *keep, lp2p_tstamp now) {
  ps_peer *victim = NULL;
  int vu = 0;
  lp2p_tstamp vseen = 0;
  for (size_t b = 0; b < ps->cap; b++) {
    for (ps_peer *p = ps->tab[b]; p; p = p->hnext) {
      if (p == keep || peer_busy(ps, p)) continue;
      int u = usefulness(p, now);
      lp2p_tstamp seen = p->last_seen > p->created ? p->last_seen : p->created;
      if (!victim || u < vu || (u == vu && seen < vseen)) {
        victim = p;
        vu = u;
        vseen = seen;
      }
    }
  }
  if (!victim) return LP2P_ERR_LIMIT;
  char pb[LP2P_PEER_ID_MAX_TEXT] = "?";
  lp2p_peer_id_to_string(&victim->id, pb, sizeof pb);
  lp2p_log(LP2P_LOG_DEBUG, PS_LOG, "evicting peer %s (usefulness %d)", pb, vu);
  peer_remove(ps, victim);
  return 0;
}

static ps_peer *get(lp2p_peerstore *ps, const lp2p_peer_id *id, lp2p_tstamp now, int *err) {
  ps_peer *p = find(ps, id);
  if (p) return p;
  if (ps->max_peers && ps->n >= ps->max_peers) {
    int rv = evict_one(ps, NULL, now);
    if (rv < 0) {
      *err = rv;
      return NULL;
    }
  }
  if (ps->n + 1 > ps->cap && grow(ps) < 0) {
    *err = LP2P_ERR_NOMEM;
    return NULL;
  }
  p = lp2p__calloc(&ps->mem, 1, sizeof *p);
  if (!p) {
    *err = LP2P_ERR_NOMEM;
    return NULL;
  }
  p->id = *id;
  p->created = now;
  size_t b = bucket(ps, id);
  p->hnext = ps->tab[b];
  ps->tab[b] = p;
  ps->n++;
  return p;
}

/* A peer entry that got nothing (e.g. all its addresses were rejected) is dropped again. */
static void drop_if_empty(lp2p_peerstore *ps, ps_peer *p) {
  if (!p->n_addrs && !p->n_protos && !p->agent && !p->pk && !p->has_rtt && !p->last_seen) {
    unlink_peer(ps, p);
    peer_destroy(ps, p);
  }
}

/* ------------------------------------------------------------------------- */
/* lifecycle */

int lp2p__ps_new(lp2p_peerstore **out, const lp2p_mem *mem, uint32_t max_peers, uint32_t max_addrs,
                 const lp2p__ps_hooks *hooks) {
  mem = lp2p__mem_or_default(mem);
  lp2p_peerstore *ps = lp2p__calloc(mem, 1, sizeof *ps);
  if (!ps) return LP2P_ERR_NOMEM;
  ps->mem = *mem;
  ps->max_peers = max_peers;
  ps->max_addrs = max_addrs ? max_addrs : 32;
  if (hooks) ps->hooks = *hooks;
  *out = ps;
  return 0;
}

void lp2p__ps_free(lp2p_peerstore *ps) {
  if (!ps) return;
  for (size_t b = 0; b < ps->cap; b++) {
    while (ps->tab[b]) {
      ps_peer *p = ps->tab[b];
      ps->tab[b] = p->hnext;
      peer_destroy(ps, p);
    }
  }
  lp2p__free(&ps->mem, ps->tab);
  lp2p_mem mem = ps->mem;
  lp2p__free(&mem, ps);
}

size_t lp2p__ps_count(const lp2p_peerstore *ps) { return ps ? ps->n : 0; }

/* ------------------------------------------------------------------------- */
/* addresses */

static size_t uvarint_len(uint64_t v) {
  size_t k = 1;
  while (v >= 0x80) {
    v >>= 7;
    k++;
  }
  return k;
}

/* Copy of ma without a trailing /p2p (through the store's allocator); *id gets that /p2p id (len 0 if none). */
static int strip_p2p(lp2p_peerstore *ps, const lp2p_multiaddr *ma, lp2p_multiaddr **out, lp2p_peer_id *id) {
  size_t len, n = lp2p_multiaddr_count(ma);
  const uint8_t *bytes = lp2p_multiaddr_bytes(ma, &len);
  uint32_t code;
  const uint8_t *v;
  size_t vlen;
  id->len = 0;
  *out = NULL;
  if (n > 0 && lp2p_multiaddr_component(ma, n - 1, &code, &v, &vlen) == 0 && code == LP2P_MA_P2P) {
    int rv = lp2p_peer_id_from_bytes(v, vlen, id);
    if (rv < 0) return rv;
    if (n == 1) return LP2P_ERR_INVAL;
    len = (size_t)(v - bytes) - uvarint_len(vlen) - uvarint_len(LP2P_MA_P2P);
  }
  return lp2p_multiaddr_from_bytes_mem(out, bytes, len, &ps->mem, NULL, 0);
}

/* Index of the address to drop to make room: an expired one, else the weakest source, oldest first. */
static size_t addr_victim(const ps_peer *p, lp2p_tstamp now) {
  size_t best = 0;
  for (size_t i = 0; i < p->n_addrs; i++) {
    if (!live(&p->addrs[i], now)) return i;
    int r = src_rank(p->addrs[i].src), rb = src_rank(p->addrs[best].src);
    if (r < rb || (r == rb && p->addrs[i].added < p->addrs[best].added)) best = i;
  }
  return best;
}

int lp2p__ps_add_at(lp2p_peerstore *ps, const lp2p_peer_id *peer, const lp2p_multiaddr *const *addrs, size_t n,
                    lp2p_addr_source source, uint64_t ttl_ms, lp2p_tstamp now) {
  if (!ps || !peer || !peer->len || (n && !addrs) || source < LP2P_ADDR_SRC_USER || source > LP2P_ADDR_SRC_OTHER)
    return LP2P_ERR_INVAL;
  if (!n) return 0;
  int err = 0;
  ps_peer *p = get(ps, peer, now, &err);
  if (!p) return err;
  lp2p_tstamp expires = ttl_ms ? now + ttl_ms : LP2P_TSTAMP_NEVER;
  if (ttl_ms && expires < now) expires = LP2P_TSTAMP_NEVER; /* overflow */
  const lp2p_multiaddr *fresh[64];
  size_t n_fresh = 0;
  int stored = 0, changed = 0, first_err = 0;
  for (size_t k = 0; k < n; k++) {
    lp2p_multiaddr *base = NULL;
    lp2p_peer_id id;
    int rv = addrs[k] ? strip_p2p(ps, addrs[k], &base, &id) : LP2P_ERR_INVAL;
    if (rv == 0 && id.len && !lp2p_peer_id_equal(&id, peer)) rv = LP2P_ERR_PEER_ID_MISMATCH;
    if (rv == 0 && !lp2p_multiaddr_is_dialable(base)) rv = LP2P_ERR_INVAL;
    if (rv < 0) {
      lp2p_multiaddr_free(base);
      if (!first_err || rv == LP2P_ERR_NOMEM) first_err = rv;
      continue;
    }
    size_t i;
    for (i = 0; i < p->n_addrs && !lp2p_multiaddr_equal(p->addrs[i].ma, base); i++) {
    }
    if (i < p->n_addrs) { /* known: refresh */
      ps_addr *a = &p->addrs[i];
      lp2p_multiaddr_free(base);
      int was_live = live(a, now);
      if (!was_live || expires > a->expires) {
        if (expires == LP2P_TSTAMP_NEVER && a->expires != LP2P_TSTAMP_NEVER) changed = 1;
        a->expires = expires;
      }
      if (src_rank(source) > src_rank(a->src) || (!was_live && source != a->src)) {
        a->src = source;
        changed = 1;
      }
      if (!was_live && is_discovery(source) && n_fresh < 64) fresh[n_fresh++] = a->ma;
      stored++;
      continue;
    }
    if (p->n_addrs >= ps->max_addrs) {
      size_t v = addr_victim(p, now);
      for (size_t f = 0; f < n_fresh; f++) /* an address of this very call: not reported after all */
        if (fresh[f] == p->addrs[v].ma) fresh[f--] = fresh[--n_fresh];
      drop_addr(ps, p, v);
    }
    if (p->n_addrs == p->cap_addrs) {
      size_t ncap = p->cap_addrs ? p->cap_addrs * 2 : 4;
      if (ncap > ps->max_addrs) ncap = ps->max_addrs;
      ps_addr *na = lp2p__realloc(&ps->mem, p->addrs, ncap * sizeof *na);
      if (!na) {
        lp2p_multiaddr_free(base);
        first_err = LP2P_ERR_NOMEM;
        continue;
      }
      p->addrs = na;
      p->cap_addrs = ncap;
    }
    ps_addr *a = &p->addrs[p->n_addrs++];
    a->ma = base;
    a->src = source;
    a->scope = lp2p_multiaddr_scope(base);
    a->expires = expires;
    a->added = now;
    if (is_discovery(source) && n_fresh < 64) fresh[n_fresh++] = base;
    stored++;
    changed = 1;
  }
  if (n_fresh) emit(ps, LP2P_SWARM_EV_PEER_DISCOVERED, peer, fresh, n_fresh, source);
  if (changed) {
    mark_dirty(ps, p);
    if (expires != LP2P_TSTAMP_NEVER && ps->hooks.changed) ps->hooks.changed(ps->hooks.ud);
  }
  if (!stored) {
    drop_if_empty(ps, p);
    return first_err ? first_err : (n ? LP2P_ERR_INVAL : 0);
  }
  return first_err == LP2P_ERR_NOMEM ? first_err : stored;
}

size_t lp2p__ps_addrs_at(const lp2p_peerstore *ps, const lp2p_peer_id *peer, unsigned scope_mask,
                         lp2p_peer_addr *out, size_t max, lp2p_tstamp now) {
  const ps_peer *p = find(ps, peer);
  size_t k = 0;
  if (!p) return 0;
  for (size_t i = 0; i < p->n_addrs; i++) {
    const ps_addr *a = &p->addrs[i];
    if (!live(a, now) || !(a->scope & scope_mask)) continue;
    if (out && k < max) {
      out[k].addr = a->ma;
      out[k].source = a->src;
      out[k].scope = a->scope;
      out[k].expires = a->expires;
    }
    k++;
  }
  return k;
}

size_t lp2p__ps_addr_ptrs(const lp2p_peerstore *ps, const lp2p_peer_id *peer, const lp2p_multiaddr **out,
                          size_t max, lp2p_tstamp now) {
  const ps_peer *p = find(ps, peer);
  size_t k = 0;
  if (!p) return 0;
  for (size_t i = 0; i < p->n_addrs; i++) {
    if (!live(&p->addrs[i], now)) continue;
    if (out && k < max) out[k] = p->addrs[i].ma;
    k++;
  }
  return k;
}

void lp2p__ps_expire(lp2p_peerstore *ps, lp2p_tstamp now) {
  if (!ps) return;
  for (size_t b = 0; b < ps->cap; b++) {
    for (ps_peer *p = ps->tab[b]; p; p = p->hnext) {
      for (size_t i = p->n_addrs; i-- > 0;)
        if (!live(&p->addrs[i], now)) drop_addr(ps, p, i);
    }
  }
}

lp2p_tstamp lp2p__ps_next_expiry(const lp2p_peerstore *ps) {
  lp2p_tstamp t = LP2P_TSTAMP_NEVER;
  for (size_t b = 0; ps && b < ps->cap; b++)
    for (const ps_peer *p = ps->tab[b]; p; p = p->hnext)
      for (size_t i = 0; i < p->n_addrs; i++)
        if (p->addrs[i].expires < t) t = p->addrs[i].expires;
  return t;
}

void lp2p__ps_seen(lp2p_peerstore *ps, const lp2p_peer_id *peer, lp2p_tstamp now) {
  ps_peer *p = find(ps, peer);
  if (p) p->last_seen = now ? now : 1;
}

/* ------------------------------------------------------------------------- */
/* persistence */

void lp2p__ps_flush(lp2p_peerstore *ps, lp2p_tstamp now) {
  if (!ps || !ps->dirty_any) return;
  ps->dirty_any = 0;
  for (size_t b = 0; b < ps->cap; b++) {
    for (ps_peer *p = ps->tab[b]; p; p = p->hnext) {
      if (!p->dirty) continue;
      p->dirty = 0;
      if (!ps->has_persist || !ps->persist.save) continue;
      lp2p_peer_addr keep[64];
      size_t nk = 0;
      for (size_t i = 0; i < p->n_addrs && nk < 64; i++) {
        const ps_addr *a = &p->addrs[i];
        if (a->expires != LP2P_TSTAMP_NEVER && (a->expires <= now || a->expires - now < LP2P_PEERSTORE_PERSIST_MIN_TTL_MS))
          continue;
        keep[nk].addr = a->ma;
        keep[nk].source = a->src;
        keep[nk].scope = a->scope;
        keep[nk].expires = a->expires;
        nk++;
      }
      lp2p_peerstore_snapshot snap;
      memset(&snap, 0, sizeof snap);
      snap.struct_size = sizeof snap;
      snap.peer = &p->id;
      snap.addrs = keep;
      snap.n_addrs = nk;
      snap.protocols = (const char *const *)p->protos;
      snap.n_protocols = p->n_protos;
      snap.agent = p->agent;
      snap.pubkey_pb = p->pk;
      snap.pubkey_len = p->pk_len;
      ps->persist.save(ps->persist.ud, &snap);
    }
  }
}

int lp2p_peerstore_set_persist(lp2p_peerstore *ps, const lp2p_peerstore_persist *pv) {
  if (!ps) return LP2P_ERR_INVAL;
  if (!pv) {
    ps->has_persist = 0;
    memset(&ps->persist, 0, sizeof ps->persist);
    return 0;
  }
  memset(&ps->persist, 0, sizeof ps->persist);
  size_t n = pv->struct_size && pv->struct_size < sizeof ps->persist ? pv->struct_size : sizeof ps->persist;
  memcpy(&ps->persist, pv, n);
  ps->persist.struct_size = sizeof ps->persist;
  ps->has_persist = 1;
  int rv = 0;
  if (ps->persist.load) {
    ps->loading = 1;
    rv = ps->persist.load(ps->persist.ud, ps);
    ps->loading = 0;
  }
  return rv < 0 ? rv : (rv ? LP2P_ERR_CALLBACK : 0);
}

/* ------------------------------------------------------------------------- */
/* public */

int lp2p_peerstore_add_addrs(lp2p_peerstore *ps, const lp2p_peer_id *peer, const lp2p_multiaddr *const *addrs,
                             size_t n, lp2p_addr_source source, uint64_t ttl_ms) {
  return lp2p__ps_add_at(ps, peer, addrs, n, source, ttl_ms, ps_now(ps));
}

int lp2p_peerstore_remove_addr(lp2p_peerstore *ps, const lp2p_peer_id *peer, const lp2p_multiaddr *ma) {
  ps_peer *p = find(ps, peer);
  if (!p || !ma) return ps && ma ? LP2P_ERR_NOT_FOUND : LP2P_ERR_INVAL;
  lp2p_multiaddr *base;
  lp2p_peer_id id;
  int rv = strip_p2p(ps, ma, &base, &id);
  if (rv < 0) return rv;
  rv = LP2P_ERR_NOT_FOUND;
  for (size_t i = 0; i < p->n_addrs; i++) {
    if (lp2p_multiaddr_equal(p->addrs[i].ma, base)) {
      drop_addr(ps, p, i);
      mark_dirty(ps, p);
      rv = 0;
      break;
    }
  }
  lp2p_multiaddr_free(base);
  return rv;
}

int lp2p_peerstore_remove_peer(lp2p_peerstore *ps, const lp2p_peer_id *peer) {
  ps_peer *p = find(ps, peer);
  if (!p) return ps && peer ? LP2P_ERR_NOT_FOUND : LP2P_ERR_INVAL;
  peer_remove(ps, p);
  return 0;
}

size_t lp2p_peerstore_peers(const lp2p_peerstore *ps, lp2p_peer_id *out, size_t max) {
  size_t k = 0;
  for (size_t b = 0; ps && b < ps->cap; b++)
    for (const ps_peer *p = ps->tab[b]; p; p = p->hnext) {
      if (out && k < max) out[k] = p->id;
      k++;
    }
  return k;
}

size_t lp2p_peerstore_addrs(const lp2p_peerstore *ps, const lp2p_peer_id *peer, unsigned scope_mask,
                            lp2p_peer_addr *out, size_t max) {
  return lp2p__ps_addrs_at(ps, peer, scope_mask, out, max, ps_now(ps));
}

int lp2p_peerstore_set_protocols(lp2p_peerstore *ps, const lp2p_peer_id *peer, const char *const *protocols,
                                 size_t n) {
  if (!ps || !peer || !peer->len || (n && !protocols)) return LP2P_ERR_INVAL;
  if (n > LP2P_PEERSTORE_MAX_PROTOCOLS) n = LP2P_PEERSTORE_MAX_PROTOCOLS;
  int err = 0;
  ps_peer *p = get(ps, peer, ps_now(ps), &err);
  if (!p) return err;
  char **np = n ? lp2p__calloc(&ps->mem, n, sizeof *np) : NULL;
  if (n && !np) {
    drop_if_empty(ps, p);
    return LP2P_ERR_NOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    if (!protocols[i] || !(np[i] = lp2p__strndup(&ps->mem, protocols[i], strlen(protocols[i])))) {
      for (size_t j = 0; j < i; j++) lp2p__free(&ps->mem, np[j]);
      lp2p__free(&ps->mem, np);
      drop_if_empty(ps, p);
      return protocols[i] ? LP2P_ERR_NOMEM : LP2P_ERR_INVAL;
    }
  }
  free_protos(ps, p);
  p->protos = np;
  p->n_protos = n;
  mark_dirty(ps, p);
  return 0;
}

size_t lp2p_peerstore_protocols(const lp2p_peerstore *ps, const lp2p_peer_id *peer, const char **out,
                                size_t max) {
  const ps_peer *p = find(ps, peer);
  if (!p) return 0;
  for (size_t i = 0; out && i < p->n_protos && i < max; i++) out[i] = p->protos[i];
  return p->n_protos;
}

int lp2p_peerstore_supports(const lp2p_peerstore *ps, const lp2p_peer_id *peer, const char *protocol) {
  const ps_peer *p = find(ps, peer);
  if (!p || !protocol) return 0;
  for (size_t i = 0; i < p->n_protos; i++)
    if (!strcmp(p->protos[i], protocol)) return 1;
  return 0;
}

int lp2p_peerstore_set_agent(lp2p_peerstore *ps, const lp2p_peer_id *peer, const char *agent) {
  if (!ps || !peer || !peer->len) return LP2P_ERR_INVAL;
  int err = 0;
  ps_peer *p = agent ? get(ps, peer, ps_now(ps), &err) : find(ps, peer);
  if (!p) return agent ? err : 0;
  char *copy = NULL;
  if (agent) {
    size_t len = strlen(agent);
    if (len > LP2P_PEERSTORE_MAX_AGENT) len = LP2P_PEERSTORE_MAX_AGENT;
    if (p->agent && strlen(p->agent) == len && !memcmp(p->agent, agent, len)) return 0;
    if (!(copy = lp2p__strndup(&ps->mem, agent, len))) {
      drop_if_empty(ps, p);
      return LP2P_ERR_NOMEM;
    }
  }
  lp2p__free(&ps->mem, p->agent);
  p->agent = copy;
  mark_dirty(ps, p);
  return 0;
}

const char *lp2p_peerstore_agent(const lp2p_peerstore *ps, const lp2p_peer_id *peer) {
  const ps_peer *p = find(ps, peer);
  return p ? p->agent : NULL;
}

int lp2p_peerstore_set_pubkey(lp2p_peerstore *ps, const lp2p_peer_id *peer, const lp2p_pubkey *key) {
  if (!ps || !peer || !peer->len || !key) return LP2P_ERR_INVAL;
  lp2p_peer_id kid;
  int rv = lp2p_peer_id_from_pubkey(key, &kid);
  if (rv < 0) return rv;
  if (!lp2p_peer_id_equal(&kid, peer)) return LP2P_ERR_PEER_ID_MISMATCH;
  uint8_t pb[LP2P_PUBKEY_PB_MAX];
  int len = lp2p_pubkey_to_protobuf(key, pb, sizeof pb);
  if (len < 0) return len;
  int err = 0;
  ps_peer *p = get(ps, peer, ps_now(ps), &err);
  if (!p) return err;
  if (p->pk && p->pk_len == (size_t)len && !memcmp(p->pk, pb, (size_t)len)) return 0;
  uint8_t *copy = lp2p__malloc(&ps->mem, (size_t)len);
  if (!copy) {
    drop_if_empty(ps, p);
    return LP2P_ERR_NOMEM;
  }
  memcpy(copy, pb, (size_t)len);
  lp2p__free(&ps->mem, p->pk);
  p->pk = copy;
  p->pk_len = (size_t)len;
  mark_dirty(ps, p);
  return 0;
}

int lp2p_peerstore_pubkey(const lp2p_peerstore *ps, const lp2p_peer_id *peer, lp2p_pubkey **out) {
  const ps_peer *p = find(ps, peer);
  if (!out) return LP2P_ERR_INVAL;
  *out = NULL;
  if (!p || !p->pk) return LP2P_ERR_NOT_FOUND;
  return lp2p_pubkey_from_protobuf(out, p->pk, p->pk_len);
}

lp2p_tstamp lp2p_peerstore_last_seen(const lp2p_peerstore *ps, const lp2p_peer_id *peer) {
  const ps_peer *p = find(ps, peer);
  return p ? p->last_seen : 0;
}

void lp2p_peerstore_mark_seen(lp2p_peerstore *ps, const lp2p_peer_id *peer) {
  if (ps) lp2p__ps_seen(ps, peer, ps_now(ps));
}

int lp2p_peerstore_set_latency(lp2p_peerstore *ps, const lp2p_peer_id *peer, uint64_t rtt_us) {
  if (!ps || !peer || !peer->len) return LP2P_ERR_INVAL;
  int err = 0;
  lp2p_tstamp now = ps_now(ps);
  ps_peer *p = get(ps, peer, now, &err);
  if (!p) return err;
  p->rtt_us = rtt_us;
  p->has_rtt = 1;
  p->last_seen = now ? now : 1;
  return 0;
}

int lp2p_peerstore_latency(const lp2p_peerstore *ps, const lp2p_peer_id *peer, uint64_t *rtt_us) {
  const ps_peer *p = find(ps, peer);
  if (!p || !p->has_rtt) return LP2P_ERR_NOT_FOUND;
  if (rtt_us) *rtt_us = p->rtt_us;
  return 0;
}
