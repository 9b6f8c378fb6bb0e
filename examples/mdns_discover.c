/* mdns_discover.c - LAN discovery with mDNS (lp2p/mdns.h): a node listening on every interface
 * announces itself as `_p2p._udp.local` and prints the peers it discovers or loses, then stops.
 *   mdns_discover [SECONDS] [--until-found]
 * SECONDS (default 2) bounds the run; with --until-found it exits 0 as soon as one peer was
 * discovered and 1 if none was (run two of them on one LAN, or in two network namespaces).
 * Without it, it exits 0 after SECONDS whatever it found (a lone node on a quiet LAN is fine). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lp2p/keys.h>
#include <lp2p/mdns.h>

typedef struct app {
  lp2p_swarm *sw;
  int until_found, found;
} app;

static void on_event(lp2p_swarm *sw, const lp2p_swarm_event *ev, void *ud) {
  app *a = ud;
  (void)sw;
  if ((ev->type != LP2P_SWARM_EV_PEER_DISCOVERED && ev->type != LP2P_SWARM_EV_PEER_EXPIRED) ||
      ev->source != LP2P_ADDR_SRC_MDNS)
    return;
  char id[LP2P_PEER_ID_MAX_TEXT];
  lp2p_peer_id_to_string(ev->peer, id, sizeof id);
  printf("mdns_discover: %s %s\n", ev->type == LP2P_SWARM_EV_PEER_DISCOVERED ? "discovered" : "expired", id);
  for (size_t i = 0; i < ev->n_addrs; i++) {
    char t[256];
    if (lp2p_multiaddr_to_string(ev->addrs[i], t, sizeof t) > 0) printf("mdns_discover:   %s\n", t);
  }
  if (ev->type == LP2P_SWARM_EV_PEER_DISCOVERED) {
    a->found++;
    if (a->until_found) lp2p_swarm_stop(a->sw);
  }
}

static void on_deadline(lp2p_timer *t, void *ud) {
  (void)t;
  lp2p_swarm_stop(((app *)ud)->sw);
}

int main(int argc, char **argv) {
  app a = {0};
  double secs = 2;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--until-found")) a.until_found = 1;
    else secs = atof(argv[i]);
  }
  lp2p_privkey *key = NULL;
  if (lp2p_privkey_generate(&key, LP2P_KEY_ED25519, 0)) return 1;
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = key;
  cfg.interface_poll_ms = 1000; /* notice interfaces coming and going */
  if (lp2p_swarm_new(&a.sw, &cfg, NULL)) return 1;
  lp2p_swarm_set_event_handler(a.sw, on_event, &a);
  if (lp2p_swarm_listen(a.sw, "/ip4/0.0.0.0/tcp/0") < 0) fprintf(stderr, "mdns_discover: no IPv4 listener\n");
  lp2p_swarm_listen(a.sw, "/ip6/::/tcp/0"); /* optional */
  lp2p_mdns_service *m = NULL;
  int rv = lp2p_mdns_add(a.sw, NULL, &m); /* lp2p_mdns_service_config_default values */
  if (rv) {
    fprintf(stderr, "mdns_discover: lp2p_mdns_add: %s\n", lp2p_strerror(rv));
    return 1;
  }
  lp2p_timer *t = NULL;
  lp2p_timer_new(&t, a.sw, on_deadline, &a);
  lp2p_timer_start(t, (uint64_t)(secs * 1000), 0);
  lp2p_swarm_run(a.sw);
  lp2p_mdns_service_stats st = {.struct_size = sizeof st};
  lp2p_mdns_service_get_stats(m, &st);
  printf("mdns_discover: peer name %s, %u sockets, %d peers found, sent %llu packets (%llu bytes), received %llu\n",
         lp2p_mdns_service_peer_name(m), st.sockets, a.found, (unsigned long long)st.packets_sent,
         (unsigned long long)st.bytes_sent, (unsigned long long)st.packets_received);
  lp2p_swarm_free(a.sw); /* sends the goodbyes */
  lp2p_privkey_free(key);
  return a.until_found && !a.found ? 1 : 0;
}
