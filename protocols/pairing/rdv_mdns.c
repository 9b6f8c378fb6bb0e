/* protocols/pairing/rdv_mdns.c - the pairing mDNS rendezvous (lp2p_pairing_add_mdns_rendezvous).
 * The initiator announces the extra TXT string "lp2p-pair=<hex of the nameplate's tag>" with its
 * mDNS record (lp2p_mdns_service_set_txt); the tag is SHA-256(lv_cat("lp2p-pair-mdns",
 * nameplate)) and depends on the nameplate only, so it reveals nothing about the words (the
 * nameplate itself is public: it only locates the session). The joiner's candidates are the
 * mDNS peers whose record carries the tag of the typed nameplate: the ones known when the join
 * starts and every one announced while it runs. Another session's initiator (another tag) is
 * never contacted; a forged tag only wins a HELLO, and the HELLO's tag check keeps the PAKE
 * away from it. Public API only. */
#include <stdio.h>
#include <string.h>

#include "lp2p/mdns.h"
#include "lp2p/pairing.h"
#include "lp2p/peerstore.h"
#include "protocols/proto_mem.h"

#define TXT_KEY "lp2p-pair"
#define MAX_KNOWN 256

typedef struct rdv_mdns {
  lp2p_mem mem;
  lp2p_swarm *sw;
  lp2p_mdns_service *m;
  lp2p_timer *kick; /* reports the peers known at find() from the loop */
  int listening;
  char want[sizeof TXT_KEY + 64]; /* "lp2p-pair=<64 hex>" while finding, else "" */
  lp2p_pair_found_fn found;
  void *ctx;
} rdv_mdns;

static void tag_string(const uint8_t tag[32], char *out) {
  int n = snprintf(out, sizeof TXT_KEY + 1, "%s=", TXT_KEY);
  for (int i = 0; i < 32; i++) snprintf(out + n + 2 * i, 3, "%02x", tag[i]);
}

static int carries(const char *const *txt, size_t n, const char *want) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(txt[i], want)) return 1;
  return 0;
}

static void on_peer(lp2p_mdns_service *m, const lp2p_mdns_peer_event *ev, void *ud) {
  rdv_mdns *r = ud;
  (void)m;
  if (!r->want[0] || !r->found || ev->type == LP2P_MDNS_PEER_LOST) return;
  if (carries(ev->txt, ev->n_txt, r->want)) r->found(r->ctx, ev->peer);
}

static int mdns_advertise(void *self, lp2p_swarm *sw, const char *nameplate, const uint8_t tag[32],
                          const uint8_t dht_key[32]) {
  rdv_mdns *r = self;
  (void)sw, (void)nameplate, (void)dht_key;
  char s[sizeof TXT_KEY + 65];
  tag_string(tag, s);
  return lp2p_mdns_service_set_txt(r->m, TXT_KEY, s + sizeof TXT_KEY);
}

static void mdns_withdraw(void *self, lp2p_swarm *sw) {
  rdv_mdns *r = self;
  (void)sw;
  lp2p_mdns_service_set_txt(r->m, TXT_KEY, NULL); /* LP2P_ERR_NOT_FOUND when not advertising */
}

/* The mDNS peers known now that carry the tag (from the loop: never inside find). */
static void kick(lp2p_timer *t, void *ud) {
  rdv_mdns *r = ud;
  (void)t;
  if (!r->want[0] || !r->found) return;
  lp2p_peerstore *ps = lp2p_swarm_peerstore(r->sw);
  size_t n = ps ? lp2p_peerstore_peers(ps, NULL, 0) : 0;
  if (n > MAX_KNOWN) n = MAX_KNOWN;
  lp2p_peer_id *ids = n ? lp2p__pm_calloc(&r->mem, n * sizeof *ids) : NULL;
  n = ids ? lp2p_peerstore_peers(ps, ids, n) : 0;
  if (n > MAX_KNOWN) n = MAX_KNOWN;
  for (size_t i = 0; i < n && r->found; i++) {
    const char *txt[LP2P_MDNS_TXT_MAX];
    size_t k = lp2p_mdns_service_peer_txt(r->m, &ids[i], txt, LP2P_MDNS_TXT_MAX);
    if (k > LP2P_MDNS_TXT_MAX) k = LP2P_MDNS_TXT_MAX;
    if (carries(txt, k, r->want)) r->found(r->ctx, &ids[i]);
  }
  lp2p__pm_free(&r->mem, ids);
}

static void mdns_cancel(void *self, lp2p_swarm *sw) {
  rdv_mdns *r = self;
  (void)sw;
  r->want[0] = 0;
  r->found = NULL;
  if (r->kick) lp2p_timer_stop(r->kick);
}

static int mdns_find(void *self, lp2p_swarm *sw, const char *nameplate, const uint8_t tag[32],
                     const uint8_t dht_key[32], lp2p_pair_found_fn found, void *ctx) {
  rdv_mdns *r = self;
  (void)nameplate, (void)dht_key;
  mdns_cancel(r, sw);
  if (!r->listening) {
    int rv = lp2p_mdns_service_add_listener(r->m, on_peer, r);
    if (rv < 0) return rv;
    r->listening = 1;
  }
  if (!r->kick && lp2p_timer_new(&r->kick, r->sw, kick, r) < 0) return LP2P_ERR_NOMEM;
  tag_string(tag, r->want);
  r->found = found;
  r->ctx = ctx;
  lp2p_timer_start(r->kick, 0, 0);
  lp2p_mdns_service_query(r->m); /* initiators answer at once: no wait for our next query */
  return 0; /* never "done": candidates may be announced until the join's deadline */
}

static void mdns_destroy(void *self) {
  rdv_mdns *r = self;
  lp2p_mem m = r->mem;
  lp2p__pm_free(&m, r); /* the timer is released with the swarm; the mDNS service is gone or
                           detached (no more listener calls) */
}

static const lp2p_pair_rendezvous mdns_vt = {
    .struct_size = sizeof(lp2p_pair_rendezvous),
    .name = "mdns",
    .advertise = mdns_advertise,
    .withdraw = mdns_withdraw,
    .find = mdns_find,
    .cancel = mdns_cancel,
    .destroy = mdns_destroy,
};

int lp2p_pairing_add_mdns_rendezvous(lp2p_pairing *p, lp2p_mdns_service *m) {
  if (!p || !m) return LP2P_ERR_INVAL;
  lp2p_swarm *sw = lp2p_pairing_swarm(p);
  const lp2p_mem *mem = lp2p_swarm_mem(sw);
  rdv_mdns *r = lp2p__pm_calloc(mem, sizeof *r);
  if (!r) return LP2P_ERR_NOMEM;
  r->mem = *mem;
  r->sw = sw;
  r->m = m;
  int rv = lp2p_pairing_add_rendezvous(p, &mdns_vt, r);
  if (rv < 0) lp2p__pm_free(mem, r);
  return rv;
}
