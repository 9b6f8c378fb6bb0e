/* kad/engine/kad_int.h - engine internals shared by kad_engine.c and kad_store.c. */
#ifndef LP2P_KAD_INT_H
#define LP2P_KAD_INT_H
#include "kad/engine/kad_engine.h"

/* A routing-table member or replacement-cache entry. */
typedef struct kad_entry {
  lp2p_peer_id id;
  kad_id kid;
  lp2p_multiaddr **addrs;
  uint8_t naddrs;
  uint8_t fails;
  uint8_t connected;
  uint64_t group;                         /* IP group (0 = exempt from the diversity limits) */
  lp2p_tstamp last_seen;
} kad_entry;

typedef struct kad_bucket {
  kad_entry *e[KAD_K];                    /* least recently seen first */
  size_t n;
  kad_entry *repl[KAD_REPLACEMENTS];      /* checked candidates waiting for room; newest last */
  size_t nrepl;
  uint64_t ping_req;                      /* pending liveness check of e[0] (0 = none) */
  lp2p_tstamp last_refresh;
} kad_bucket;

typedef struct kad_rec {
  uint8_t *key, *val;
  size_t klen, vlen;
  lp2p_tstamp received;
  struct kad_rec *prev, *next, *hnext;
} kad_rec;

typedef struct kad_prov {
  lp2p_peer_id id;
  lp2p_multiaddr *addrs[KAD_ANSWER_ADDRS];
  size_t naddrs;
  lp2p_tstamp added;
} kad_prov;

typedef struct kad_pkey {
  uint8_t *key;
  size_t klen;
  kad_prov *p;
  size_t n;
  struct kad_pkey *prev, *next, *hnext;
} kad_pkey;

typedef struct kad_query kad_query;
typedef struct kad_req kad_req;

typedef struct kad_provided {
  uint8_t *key;
  size_t klen;
  lp2p_tstamp next_at;
} kad_provided;

typedef struct kad_cand {                /* a peer that answered one of our requests recently */
  lp2p_peer_id id;
  lp2p_tstamp at;
} kad_cand;

#define KAD_ANSWERED_RING 64
#define KAD_MAX_CHECKS 32

struct kad_engine {
  const lp2p_mem *mem;
  lp2p_mem mem_copy;
  kad_config cfg;
  lp2p_peer_id self;
  kad_id self_kid;
  kad_rng_fn rng;
  void *rng_user;
  uint8_t hash_key[16];
  uint64_t record_ttl, provider_ttl;

  kad_bucket *buckets[KAD_BUCKETS];
  size_t table_size;

  kad_req **reqs;                         /* requests in flight */
  size_t nreqs, capreqs;
  uint64_t next_id;
  size_t nchecks;

  kad_query *queries;                     /* running */
  kad_query *done_head, *done_tail;       /* finished, results queued */
  kad_query *result_cur;                  /* last handed out by kad_next_result */

  /* queued actions */
  kad_req **actq;
  size_t nact, capact, acthead;
  kad_req *act_cur;                       /* last handed out (fire-and-forget ones are owned here) */

  kad_cand answered[KAD_ANSWERED_RING];
  size_t answered_pos;

  lp2p_multiaddr **local_addrs;
  size_t nlocal;

  /* stores */
  kad_rec **rec_tab;
  size_t rec_nb, rec_count, rec_bytes;
  kad_rec *rec_head, *rec_tail;
  kad_pkey **prov_tab;
  size_t prov_nb, prov_keys;
  kad_pkey *prov_head, *prov_tail;
  kad_provided *provided;
  size_t nprovided;

  lp2p_tstamp next_gc, last_bootstrap;
  int bootstrapped;
};

int kad__store_init(kad_engine *e);
void kad__store_free(kad_engine *e);
void kad__store_gc(kad_engine *e, lp2p_tstamp now);
kad_rec *kad__rec_find(kad_engine *e, const uint8_t *k, size_t n, lp2p_tstamp now);
int kad__rec_store(kad_engine *e, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, lp2p_tstamp now);
kad_pkey *kad__pkey_find(kad_engine *e, const uint8_t *k, size_t n, lp2p_tstamp now);
int kad__prov_add(kad_engine *e, const uint8_t *k, size_t kl, const kad_peer *prov, lp2p_tstamp now);
int kad__validate(const kad_engine *e, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
                  const kad_validator **vi);
int kad__has_validator(const kad_engine *e, const uint8_t *k, size_t kl);

#endif
