/* kad_lookup.c - the Kademlia DHT (lp2p/kad.h) in one process: four swarms on 127.0.0.1 sharing
 * one loop; three of them bootstrap from the first, the last one publishes its public key as a
 * "/pk/" record, another one reads it back and looks the publisher up by peer id alone. Every step
 * prints its query stats. Exits 0 when the value read equals the value written and the peer was
 * found (fails after 20 s otherwise).
 *
 * Build against an installed lp2p:
 *   CMake:      find_package(lp2p REQUIRED) + target_link_libraries(app PRIVATE lp2p::lp2p)
 *   pkg-config: cc kad_lookup.c $(pkg-config --cflags --libs lp2p) */
#define _POSIX_C_SOURCE 200809L /* <uv.h> needs the POSIX types under -std=c11 */
#include <stdio.h>
#include <string.h>

#include <lp2p/identify.h>
#include <lp2p/kad.h>
#include <lp2p/keys.h>
#include <lp2p/uv.h> /* only to put the four swarms on one loop */

#define N 4

typedef struct app {
  lp2p_swarm *sw[N];
  lp2p_kad *kad[N];
  lp2p_privkey *key[N];
  lp2p_peer_id id[N];
  int booted, ok;
  uint8_t rkey[64], rval[128];
  size_t rklen, rvlen;
} app;

static void stats(const char *what, const lp2p_kad_result *r) {
  printf("kad_lookup: %-16s %s  hops %u, peers contacted %u, requests %u, %llu ms\n", what,
         r->err ? lp2p_strerror(r->err) : "ok", r->stats.hops, r->stats.peers_contacted, r->stats.requests,
         (unsigned long long)r->stats.duration_ms);
}

static void on_found(lp2p_kad *kad, const lp2p_kad_result *r, void *ud) {
  app *a = ud;
  (void)kad;
  stats("find_peer", r);
  if (!r->err && r->n_peers == 1 && lp2p_peer_id_equal(&r->peers[0].peer, &a->id[N - 1]) && r->peers[0].n_addrs) {
    char t[128];
    lp2p_multiaddr_to_string(r->peers[0].addrs[0], t, sizeof t);
    printf("kad_lookup: the publisher is at %s\n", t);
    a->ok++;
  }
  lp2p_swarm_stop(a->sw[0]);
}

static void on_get(lp2p_kad *kad, const lp2p_kad_result *r, void *ud) {
  app *a = ud;
  stats("get_value", r);
  if (!r->err && r->value_len == a->rvlen && !memcmp(r->value, a->rval, a->rvlen)) a->ok++;
  if (lp2p_kad_find_peer(kad, &a->id[N - 1], on_found, a, NULL) < 0) lp2p_swarm_stop(a->sw[0]);
}

static void on_put(lp2p_kad *kad, const lp2p_kad_result *r, void *ud) {
  app *a = ud;
  (void)kad;
  stats("put_value", r);
  printf("kad_lookup: record stored on %u peers\n", r->stored);
  if (r->err || lp2p_kad_get_value(a->kad[1], a->rkey, a->rklen, 1, on_get, a, NULL) < 0) lp2p_swarm_stop(a->sw[0]);
}

static void on_boot(lp2p_kad *kad, const lp2p_kad_result *r, void *ud) {
  app *a = ud;
  (void)kad;
  stats("bootstrap", r);
  if (++a->booted < N - 1) return;
  /* the last node publishes its public key under /pk/<its peer id> */
  lp2p_kad_pk_record(lp2p_privkey_public(a->key[N - 1]), a->rkey, sizeof a->rkey, &a->rklen, a->rval,
                     sizeof a->rval, &a->rvlen);
  if (lp2p_kad_put_value(a->kad[N - 1], a->rkey, a->rklen, a->rval, a->rvlen, on_put, a, NULL) < 0)
    lp2p_swarm_stop(a->sw[0]);
}

static void on_watchdog(lp2p_timer *t, void *ud) {
  app *a = ud;
  (void)t;
  printf("kad_lookup: timed out\n");
  lp2p_swarm_stop(a->sw[0]);
}

int main(void) {
  app a;
  memset(&a, 0, sizeof a);
  int rc = 0;
  for (int i = 0; i < N && rc == 0; i++) {
    rc = lp2p_privkey_generate(&a.key[i], LP2P_KEY_ED25519, 0);
    if (rc < 0) break;
    lp2p_peer_id_from_pubkey(lp2p_privkey_public(a.key[i]), &a.id[i]);
    lp2p_swarm_config cfg;
    lp2p_swarm_config_default(&cfg);
    cfg.identity = a.key[i];
    rc = i == 0 ? lp2p_swarm_new(&a.sw[0], &cfg, NULL) : lp2p_swarm_new_uv(&a.sw[i], &cfg, lp2p_swarm_uv_loop(a.sw[0]), NULL);
    if (rc == 0) rc = lp2p_swarm_listen(a.sw[i], "/ip4/127.0.0.1/tcp/0");
    if (rc == 0) rc = lp2p_identify_add(a.sw[i], NULL, NULL);
    if (rc == 0) rc = lp2p_kad_add(a.sw[i], NULL, &a.kad[i]); /* server mode, /ipfs/kad/1.0.0 */
  }
  if (rc < 0) {
    fprintf(stderr, "kad_lookup: setup: %s\n", lp2p_strerror(rc));
    return 1;
  }
  /* node 0 is the bootstrap node of the others */
  const lp2p_multiaddr *la;
  lp2p_swarm_listen_addrs(a.sw[0], &la, 1);
  char boot[256], pid[LP2P_PEER_ID_MAX_TEXT];
  lp2p_multiaddr_to_string(la, boot, sizeof boot);
  lp2p_peer_id_to_string(&a.id[0], pid, sizeof pid);
  snprintf(boot + strlen(boot), sizeof boot - strlen(boot), "/p2p/%s", pid);
  printf("kad_lookup: bootstrap node %s\n", boot);
  for (int i = 1; i < N; i++) {
    if ((rc = lp2p_kad_add_bootstrap(a.kad[i], boot)) == 0) rc = lp2p_kad_bootstrap(a.kad[i], on_boot, &a, NULL);
    if (rc < 0) {
      fprintf(stderr, "kad_lookup: bootstrap: %s\n", lp2p_strerror(rc));
      return 1;
    }
  }
  lp2p_timer *wd = NULL;
  lp2p_timer_new(&wd, a.sw[0], on_watchdog, &a);
  lp2p_timer_start(wd, 20000, 0);
  lp2p_swarm_run(a.sw[0]);
  lp2p_timer_free(wd);
  for (int i = N - 1; i >= 1; i--) lp2p_swarm_free(a.sw[i]); /* their handles close while sw[0]'s free runs the loop */
  lp2p_swarm_free(a.sw[0]);
  for (int i = 0; i < N; i++) lp2p_privkey_free(a.key[i]);
  printf("kad_lookup: %s\n", a.ok == 2 ? "ok" : "FAILED");
  return a.ok == 2 ? 0 : 1;
}
