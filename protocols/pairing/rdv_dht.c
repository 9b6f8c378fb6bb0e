/* protocols/pairing/rdv_dht.c - the pairing DHT rendezvous (lp2p_pairing_add_dht_rendezvous):
 * the initiator provides the key SHA-256("lp2p-pair-dht", nameplate, epoch) (as a sha2-256
 * multihash) for the current 5-minute epoch; the joiner looks for providers of the current and
 * the previous epoch's key and hands every provider to the pairing behaviour as a candidate.
 * The key reveals the nameplate to nobody (a hash) and nothing about the words. The joiner
 * searches again every RETRY_MS until the join ends (a code typed before the initiator's provide
 * reached the DHT is still found), so the backend never reports "done". Public API only. */
#include "lp2p/kad.h"
#include "lp2p/pairing.h"
#include "protocols/pairing/engine/pair_int.h"
#include "protocols/proto_mem.h"

#include <string.h>
#include <time.h>

#define RETRY_MS 1000u

typedef struct rdv_dht {
  lp2p_mem mem;
  lp2p_kad *kad;
  uint64_t provide_qid;
  int providing;
  uint64_t find_qid[2];
  int finding[2];
  lp2p_pair_found_fn found;
  void *ctx;
  uint64_t gen; /* find generation: results of a cancelled search are ignored */
  lp2p_swarm *sw;
  lp2p_timer *retry;
  char nameplate[32];
} rdv_dht;

static int start_find(rdv_dht *r);

typedef struct find_ud {
  rdv_dht *r;
  int slot;
  uint64_t gen;
} find_ud;

static void mh(const uint8_t key[32], uint8_t out[34]) {
  out[0] = 0x12; /* sha2-256 */
  out[1] = 32;
  memcpy(out + 2, key, 32);
}

static void provide_done(lp2p_kad *kad, const lp2p_kad_result *res, void *ud) {
  rdv_dht *r = ud;
  (void)kad;
  (void)res;
  r->providing = 0;
}

static int dht_advertise(void *self, lp2p_swarm *sw, const char *nameplate, const uint8_t tag[32],
                         const uint8_t dht_key[32]) {
  rdv_dht *r = self;
  (void)sw;
  (void)nameplate;
  (void)tag;
  if (r->providing) lp2p_kad_cancel(r->kad, r->provide_qid);
  uint8_t k[34];
  mh(dht_key, k);
  int rv = lp2p_kad_provide(r->kad, k, sizeof k, provide_done, r, &r->provide_qid);
  r->providing = rv == 0;
  return rv;
}

static void dht_withdraw(void *self, lp2p_swarm *sw) {
  rdv_dht *r = self;
  (void)sw;
  /* Kademlia has no "unprovide": the record expires with the peers' provider TTL; a joiner
   * that finds us after the code ended gets its stream reset (no code) and moves on. */
  if (r->providing) lp2p_kad_cancel(r->kad, r->provide_qid);
}

static void find_done(lp2p_kad *kad, const lp2p_kad_result *res, void *ud) {
  find_ud *f = ud;
  rdv_dht *r = f->r;
  (void)kad;
  if (f->gen == r->gen) {
    r->finding[f->slot] = 0;
    for (size_t i = 0; i < res->n_peers && r->found; i++) r->found(r->ctx, &res->peers[i].peer);
    if (!r->finding[0] && !r->finding[1] && r->found && r->retry) lp2p_timer_start(r->retry, RETRY_MS, 0);
  }
  lp2p__pm_free(&r->mem, f);
}

static void dht_cancel(void *self, lp2p_swarm *sw) {
  rdv_dht *r = self;
  (void)sw;
  r->gen++;
  for (int i = 0; i < 2; i++)
    if (r->finding[i]) lp2p_kad_cancel(r->kad, r->find_qid[i]);
  r->finding[0] = r->finding[1] = 0;
  r->found = NULL;
  if (r->retry) lp2p_timer_stop(r->retry);
}

static void retry_tick(lp2p_timer *t, void *ud) {
  rdv_dht *r = ud;
  (void)t;
  if (r->found && !r->finding[0] && !r->finding[1] && start_find(r) < 0) lp2p_timer_start(r->retry, RETRY_MS, 0);
}

static int dht_find(void *self, lp2p_swarm *sw, const char *nameplate, const uint8_t tag[32],
                    const uint8_t dht_key[32], lp2p_pair_found_fn found, void *ctx) {
  rdv_dht *r = self;
  (void)tag, (void)dht_key;
  dht_cancel(r, sw);
  if (strlen(nameplate) >= sizeof r->nameplate) return LP2P_ERR_INVAL;
  if (!r->retry && lp2p_timer_new(&r->retry, r->sw, retry_tick, r) < 0) return LP2P_ERR_NOMEM;
  memcpy(r->nameplate, nameplate, strlen(nameplate) + 1);
  r->found = found;
  r->ctx = ctx;
  int rv = start_find(r);
  if (rv < 0) r->found = NULL;
  return rv;
}

/* Providers of the current and the previous epoch's key (both derived now: a retry may cross an
 * epoch boundary). */
static int start_find(rdv_dht *r) {
  uint8_t keys[2][32];
  uint64_t epoch = lp2p__pair_epoch((uint64_t)time(NULL));
  lp2p__pair_dht_key(r->nameplate, epoch, keys[0]);
  lp2p__pair_dht_key(r->nameplate, epoch ? epoch - 1 : 0, keys[1]);
  int started = 0;
  for (int i = 0; i < 2; i++) {
    find_ud *f = lp2p__pm_calloc(&r->mem, sizeof *f);
    if (!f) continue;
    f->r = r;
    f->slot = i;
    f->gen = r->gen;
    uint8_t k[34];
    mh(keys[i], k);
    if (lp2p_kad_find_providers(r->kad, k, sizeof k, 0, find_done, f, &r->find_qid[i]) < 0) {
      lp2p__pm_free(&r->mem, f);
      continue;
    }
    r->finding[i] = 1;
    started++;
  }
  return started ? 0 : LP2P_ERR_STATE;
}

static void dht_destroy(void *self) {
  rdv_dht *r = self;
  lp2p_mem m = r->mem;
  lp2p__pm_free(&m, r);
}

static const lp2p_pair_rendezvous dht_vt = {
    .struct_size = sizeof(lp2p_pair_rendezvous),
    .name = "dht",
    .advertise = dht_advertise,
    .withdraw = dht_withdraw,
    .find = dht_find,
    .cancel = dht_cancel,
    .destroy = dht_destroy,
};

int lp2p_pairing_add_dht_rendezvous(lp2p_pairing *p, lp2p_kad *kad) {
  if (!p || !kad) return LP2P_ERR_INVAL;
  const lp2p_mem *m = lp2p_swarm_mem(lp2p_pairing_swarm(p));
  rdv_dht *r = lp2p__pm_calloc(m, sizeof *r);
  if (!r) return LP2P_ERR_NOMEM;
  r->mem = *m;
  r->kad = kad;
  r->sw = lp2p_pairing_swarm(p);
  int rv = lp2p_pairing_add_rendezvous(p, &dht_vt, r);
  if (rv < 0) lp2p__pm_free(m, r);
  return rv;
}
