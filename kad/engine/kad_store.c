/* kad/engine/kad_store.c - bounded record and provider stores (LRU, expiry), record validators. */
#include <sodium.h>
#include <string.h>

#include "core/mem.h"
#include "kad/engine/kad_int.h"
#include "lp2p/keys.h"

static uint64_t key_hash(const kad_engine *e, const uint8_t *k, size_t n) {
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, k, n, e->hash_key);
  uint64_t v;
  memcpy(&v, h, 8);
  return v;
}

/* ---- LRU list helpers (most recent at head) ---------------------------------------------- */
#define LRU_UNLINK(head, tail, x)             \
  do {                                        \
    if ((x)->prev) (x)->prev->next = (x)->next; \
    else (head) = (x)->next;                  \
    if ((x)->next) (x)->next->prev = (x)->prev; \
    else (tail) = (x)->prev;                  \
    (x)->prev = (x)->next = NULL;             \
  } while (0)
#define LRU_PUSH(head, tail, x)   \
  do {                            \
    (x)->prev = NULL;             \
    (x)->next = (head);           \
    if (head) (head)->prev = (x); \
    (head) = (x);                 \
    if (!(tail)) (tail) = (x);    \
  } while (0)

int kad__store_init(kad_engine *e) {
  e->rec_nb = 256;
  e->rec_tab = lp2p__calloc(e->mem, e->rec_nb, sizeof *e->rec_tab);
  e->prov_nb = 256;
  e->prov_tab = lp2p__calloc(e->mem, e->prov_nb, sizeof *e->prov_tab);
  return (e->rec_tab && e->prov_tab) ? 0 : LP2P_ERR_NOMEM;
}

/* ---- records ----------------------------------------------------------------------------- */
static kad_rec **rec_slot(kad_engine *e, const uint8_t *k, size_t n) {
  kad_rec **pp = &e->rec_tab[key_hash(e, k, n) % e->rec_nb];
  while (*pp && !((*pp)->klen == n && !memcmp((*pp)->key, k, n))) pp = &(*pp)->hnext;
  return pp;
}

static void rec_remove(kad_engine *e, kad_rec *r, int notify) {
  kad_rec **pp = rec_slot(e, r->key, r->klen);
  if (*pp == r) *pp = r->hnext;
  LRU_UNLINK(e->rec_head, e->rec_tail, r);
  e->rec_count--;
  e->rec_bytes -= r->klen + r->vlen;
  if (notify && e->cfg.persist) e->cfg.persist(e->cfg.persist_user, 2, r->key, r->klen, NULL, 0);
  lp2p__free(e->mem, r);
}

kad_rec *kad__rec_find(kad_engine *e, const uint8_t *k, size_t n, lp2p_tstamp now) {
  kad_rec *r = *rec_slot(e, k, n);
  if (!r) return NULL;
  if (now >= r->received + e->record_ttl) {
    rec_remove(e, r, 1);
    return NULL;
  }
  LRU_UNLINK(e->rec_head, e->rec_tail, r);
  LRU_PUSH(e->rec_head, e->rec_tail, r);
  return r;
}

int kad__rec_store(kad_engine *e, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, lp2p_tstamp now) {
  if (vl > e->cfg.max_value_size || kl + vl > e->cfg.max_record_bytes) return LP2P_ERR_TOO_LARGE;
  kad_rec **pp = rec_slot(e, k, kl);
  if (*pp) rec_remove(e, *pp, 0);
  while (e->rec_tail && (e->rec_count + 1 > e->cfg.max_records || e->rec_bytes + kl + vl > e->cfg.max_record_bytes))
    rec_remove(e, e->rec_tail, 1);
  kad_rec *r = lp2p__calloc(e->mem, 1, sizeof *r + kl + vl);
  if (!r) return LP2P_ERR_NOMEM;
  r->key = (uint8_t *)(r + 1);
  r->val = r->key + kl;
  memcpy(r->key, k, kl);
  if (vl) memcpy(r->val, v, vl);
  r->klen = kl;
  r->vlen = vl;
  r->received = now;
  pp = rec_slot(e, k, kl);
  *pp = r;
  LRU_PUSH(e->rec_head, e->rec_tail, r);
  e->rec_count++;
  e->rec_bytes += kl + vl;
  if (e->cfg.persist) e->cfg.persist(e->cfg.persist_user, 1, k, kl, v, vl);
  return 0;
}

/* ---- providers --------------------------------------------------------------------------- */
static kad_pkey **pkey_slot(kad_engine *e, const uint8_t *k, size_t n) {
  kad_pkey **pp = &e->prov_tab[key_hash(e, k, n) % e->prov_nb];
  while (*pp && !((*pp)->klen == n && !memcmp((*pp)->key, k, n))) pp = &(*pp)->hnext;
  return pp;
}

static void prov_free_one(kad_engine *e, kad_prov *p) {
  (void)e;
  for (size_t j = 0; j < p->naddrs; j++) lp2p_multiaddr_free(p->addrs[j]);
  p->naddrs = 0;
}

static void pkey_remove(kad_engine *e, kad_pkey *pk) {
  kad_pkey **pp = pkey_slot(e, pk->key, pk->klen);
  if (*pp == pk) *pp = pk->hnext;
  LRU_UNLINK(e->prov_head, e->prov_tail, pk);
  for (size_t i = 0; i < pk->n; i++) {
    if (e->cfg.persist) e->cfg.persist(e->cfg.persist_user, 4, pk->key, pk->klen, pk->p[i].id.bytes, pk->p[i].id.len);
    prov_free_one(e, &pk->p[i]);
  }
  e->prov_keys--;
  lp2p__free(e->mem, pk);
}

static void pkey_expire(kad_engine *e, kad_pkey *pk, lp2p_tstamp now) {
  size_t w = 0;
  for (size_t i = 0; i < pk->n; i++) {
    if (now >= pk->p[i].added + e->provider_ttl) {
      if (e->cfg.persist)
        e->cfg.persist(e->cfg.persist_user, 4, pk->key, pk->klen, pk->p[i].id.bytes, pk->p[i].id.len);
      prov_free_one(e, &pk->p[i]);
    } else {
      pk->p[w++] = pk->p[i];
    }
  }
  pk->n = w;
}

kad_pkey *kad__pkey_find(kad_engine *e, const uint8_t *k, size_t n, lp2p_tstamp now) {
  kad_pkey *pk = *pkey_slot(e, k, n);
  if (!pk) return NULL;
  pkey_expire(e, pk, now);
  if (!pk->n) {
    pkey_remove(e, pk);
    return NULL;
  }
  LRU_UNLINK(e->prov_head, e->prov_tail, pk);
  LRU_PUSH(e->prov_head, e->prov_tail, pk);
  return pk;
}

int kad__prov_add(kad_engine *e, const uint8_t *k, size_t kl, const kad_peer *prov, lp2p_tstamp now) {
  if (kl > KAD_MAX_PROVIDER_KEY || !kl) return LP2P_ERR_PROTO;
  kad_pkey *pk = kad__pkey_find(e, k, kl, now);
  if (!pk) {
    while (e->prov_tail && e->prov_keys + 1 > e->cfg.max_provider_keys) pkey_remove(e, e->prov_tail);
    pk = lp2p__calloc(e->mem, 1, sizeof *pk + e->cfg.max_providers_per_key * sizeof(kad_prov) + kl);
    if (!pk) return LP2P_ERR_NOMEM;
    pk->p = (kad_prov *)(pk + 1);
    pk->key = (uint8_t *)(pk->p + e->cfg.max_providers_per_key);
    memcpy(pk->key, k, kl);
    pk->klen = kl;
    kad_pkey **pp = pkey_slot(e, k, kl);
    *pp = pk;
    LRU_PUSH(e->prov_head, e->prov_tail, pk);
    e->prov_keys++;
  }
  kad_prov *slot = NULL;
  for (size_t i = 0; i < pk->n; i++)
    if (lp2p_peer_id_equal(&pk->p[i].id, &prov->id)) slot = &pk->p[i];
  if (!slot) {
    if (pk->n < e->cfg.max_providers_per_key) {
      slot = &pk->p[pk->n++];
    } else { /* full: replace the oldest announcement */
      slot = &pk->p[0];
      for (size_t i = 1; i < pk->n; i++)
        if (pk->p[i].added < slot->added) slot = &pk->p[i];
      if (e->cfg.persist) e->cfg.persist(e->cfg.persist_user, 4, k, kl, slot->id.bytes, slot->id.len);
    }
  }
  prov_free_one(e, slot);
  memset(slot, 0, sizeof *slot);
  slot->id = prov->id;
  slot->added = now;
  for (size_t j = 0; j < prov->naddrs && slot->naddrs < KAD_ANSWER_ADDRS; j++) {
    lp2p_multiaddr *d = lp2p_multiaddr_dup(prov->addrs[j]);
    if (!d) return LP2P_ERR_NOMEM;
    slot->addrs[slot->naddrs++] = d;
  }
  if (e->cfg.persist) e->cfg.persist(e->cfg.persist_user, 3, k, kl, prov->id.bytes, prov->id.len);
  return 0;
}

void kad__store_gc(kad_engine *e, lp2p_tstamp now) {
  for (kad_rec *r = e->rec_head, *n; r; r = n) {
    n = r->next;
    if (now >= r->received + e->record_ttl) rec_remove(e, r, 1);
  }
  for (kad_pkey *pk = e->prov_head, *n; pk; pk = n) {
    n = pk->next;
    pkey_expire(e, pk, now);
    if (!pk->n) pkey_remove(e, pk);
  }
}

void kad__store_free(kad_engine *e) {
  while (e->rec_head) rec_remove(e, e->rec_head, 0);
  while (e->prov_head) {
    kad_pkey *pk = e->prov_head;
    LRU_UNLINK(e->prov_head, e->prov_tail, pk);
    for (size_t i = 0; i < pk->n; i++) prov_free_one(e, &pk->p[i]);
    lp2p__free(e->mem, pk);
  }
  lp2p__free(e->mem, e->rec_tab);
  lp2p__free(e->mem, e->prov_tab);
}

/* ---- validation -------------------------------------------------------------------------- */
/* "/ns/rest": namespace bytes [1, slash). 0 and the namespace, or -1. */
static int key_ns(const uint8_t *k, size_t n, const uint8_t **ns, size_t *nslen) {
  if (n < 3 || k[0] != '/') return -1;
  const uint8_t *s = memchr(k + 1, '/', n - 1);
  if (!s || s == k + 1) return -1;
  *ns = k + 1;
  *nslen = (size_t)(s - (k + 1));
  return 0;
}

static int pk_validate(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
  lp2p_peer_id id;
  if (kl <= 4 || lp2p_peer_id_from_bytes(k + 4, kl - 4, &id) != 0) return LP2P_ERR_PROTO;
  lp2p_pubkey *pub = NULL;
  if (lp2p_pubkey_from_protobuf(&pub, v, vl) != 0) return LP2P_ERR_PROTO;
  int ok = lp2p_peer_id_matches(&id, pub);
  lp2p_pubkey_free(pub);
  return ok ? 0 : LP2P_ERR_PROTO;
}

/* 0 valid; LP2P_ERR_UNSUPPORTED no validator; LP2P_ERR_PROTO invalid. *vi = app validator or NULL. */
int kad__validate(const kad_engine *e, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
                  const kad_validator **vi) {
  const uint8_t *ns;
  size_t nl;
  *vi = NULL;
  if (key_ns(k, kl, &ns, &nl) < 0) return LP2P_ERR_UNSUPPORTED;
  if (nl == 2 && !memcmp(ns, "pk", 2)) return pk_validate(k, kl, v, vl);
  for (size_t i = 0; i < e->cfg.nvalidators; i++) {
    const kad_validator *x = &e->cfg.validators[i];
    if (x->ns && strlen(x->ns) == nl && !memcmp(x->ns, ns, nl)) {
      *vi = x;
      return x->validate(x->user, k, kl, v, vl) == 0 ? 0 : LP2P_ERR_PROTO;
    }
  }
  return LP2P_ERR_UNSUPPORTED;
}

int kad__has_validator(const kad_engine *e, const uint8_t *k, size_t kl) {
  const uint8_t *ns;
  size_t nl;
  if (key_ns(k, kl, &ns, &nl) < 0) return 0;
  if (nl == 2 && !memcmp(ns, "pk", 2)) return 1;
  for (size_t i = 0; i < e->cfg.nvalidators; i++) {
    const kad_validator *x = &e->cfg.validators[i];
    if (x->ns && strlen(x->ns) == nl && !memcmp(x->ns, ns, nl)) return 1;
  }
  return 0;
}

/* ---- persistence helpers (kad_engine.h) ------------------------------------------------------ */
size_t kad_records_each(kad_engine *e, kad_record_fn fn, void *ud, lp2p_tstamp now) {
  size_t n = 0;
  for (kad_rec *r = e->rec_head; r; r = r->next) {
    if (now >= r->received + e->record_ttl) continue;
    fn(ud, r->key, r->klen, r->val, r->vlen, now - r->received);
    n++;
  }
  return n;
}

size_t kad_providers_each(kad_engine *e, kad_provider_fn fn, void *ud, lp2p_tstamp now) {
  size_t n = 0;
  for (kad_pkey *pk = e->prov_head; pk; pk = pk->next)
    for (size_t i = 0; i < pk->n; i++) {
      kad_prov *p = &pk->p[i];
      if (now >= p->added + e->provider_ttl) continue;
      kad_peer kp = {p->id, p->addrs, p->naddrs, 0};
      fn(ud, pk->key, pk->klen, &kp, now - p->added);
      n++;
    }
  return n;
}

int kad_provider_restore(kad_engine *e, const uint8_t *k, size_t kl, const kad_peer *prov, lp2p_tstamp age_ms,
                         lp2p_tstamp now) {
  if (!e || !k || !kl || !prov || !prov->id.len || age_ms > now) return LP2P_ERR_INVAL;
  if (age_ms >= e->provider_ttl) return LP2P_ERR_NOT_FOUND;
  int rv = kad__prov_add(e, k, kl, prov, now);
  if (rv) return rv;
  kad_pkey *pk = *pkey_slot(e, k, kl);
  for (size_t i = 0; pk && i < pk->n; i++)
    if (lp2p_peer_id_equal(&pk->p[i].id, &prov->id)) pk->p[i].added = now - age_ms;
  return 0;
}

int kad_record_restore(kad_engine *e, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, lp2p_tstamp age_ms,
                       lp2p_tstamp now) {
  if (!e || !k || !kl || (vl && !v) || kl > KAD_MAX_KEY) return LP2P_ERR_INVAL;
  if (age_ms >= e->record_ttl) return LP2P_ERR_NOT_FOUND;
  const kad_validator *vi;
  int rv = kad__validate(e, k, kl, v, vl, &vi);
  if (rv) return rv;
  if ((rv = kad__rec_store(e, k, kl, v, vl, now))) return rv;
  kad_rec *r = *rec_slot(e, k, kl);
  if (r) r->received = now >= age_ms ? now - age_ms : 0;
  return 0;
}
