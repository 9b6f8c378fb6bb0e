/* udp_echo.c - UDP through the swarm (lp2p/udp.h): lists the network
 * interfaces, binds two UDP handles on 127.0.0.1, one echoing what it
 * receives, and sends a datagram from the other; stops when the echo comes
 * back (or after 3 s, failing). No libuv in sight: the swarm owns the
 * sockets and the loop. Exits 0 when the echo arrived intact. */
#include <stdio.h>
#include <string.h>

#include <lp2p/keys.h>
#include <lp2p/udp.h>

typedef struct app {
  lp2p_swarm *sw;
  int echoed;
} app;

static void on_server(lp2p_udp *u, const lp2p_multiaddr *from, const uint8_t *p, size_t n, void *ud) {
  (void)ud;
  char t[128];
  lp2p_multiaddr_to_string(from, t, sizeof t);
  printf("udp_echo: server got %zu bytes from %s, echoing\n", n, t);
  lp2p_udp_send(u, from, p, n); /* back to the sender */
}

static void on_client(lp2p_udp *u, const lp2p_multiaddr *from, const uint8_t *p, size_t n, void *ud) {
  app *a = ud;
  (void)u;
  (void)from;
  printf("udp_echo: client got back \"%.*s\"\n", (int)n, (const char *)p);
  a->echoed = n == 5 && !memcmp(p, "hello", 5);
  lp2p_swarm_stop(a->sw);
}

static void on_timeout(lp2p_timer *t, void *ud) {
  app *a = ud;
  (void)t;
  fprintf(stderr, "udp_echo: no echo within 3 s\n");
  lp2p_swarm_stop(a->sw);
}

int main(void) {
  lp2p_privkey *key;
  if (lp2p_privkey_generate(&key, LP2P_KEY_ED25519, 0) < 0) return 1;
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = key;
  app a = {0};
  if (lp2p_swarm_new(&a.sw, &cfg, NULL) < 0) return 1;

  lp2p_interface ifs[32];
  int n = lp2p_swarm_interfaces(a.sw, ifs, 32);
  for (int i = 0; i < n && i < 32; i++) {
    char t[128];
    lp2p_multiaddr_to_string(ifs[i].addr, t, sizeof t);
    printf("udp_echo: interface %s (#%u) %s/%u%s%s\n", ifs[i].name, ifs[i].index, t, ifs[i].prefix_len,
           ifs[i].flags & LP2P_IF_LOOPBACK ? " loopback" : "", ifs[i].flags & LP2P_IF_MULTICAST ? " multicast" : "");
  }

  lp2p_multiaddr *bind;
  lp2p_multiaddr_parse(&bind, "/ip4/127.0.0.1/udp/0", NULL, 0);
  lp2p_udp *server = NULL, *client = NULL;
  lp2p_timer *guard = NULL;
  int rv = lp2p_udp_new(&server, a.sw, bind, 0, on_server, &a);
  if (!rv) rv = lp2p_udp_new(&client, a.sw, bind, 0, on_client, &a);
  if (!rv) rv = lp2p_timer_new(&guard, a.sw, on_timeout, &a);
  if (!rv) rv = lp2p_timer_start(guard, 3000, 0);
  if (!rv) rv = lp2p_udp_send(client, lp2p_udp_local_addr(server), (const uint8_t *)"hello", 5);
  if (rv < 0) {
    fprintf(stderr, "udp_echo: %s\n", lp2p_strerror(rv));
  } else {
    char t[128];
    lp2p_multiaddr_to_string(lp2p_udp_local_addr(server), t, sizeof t);
    printf("udp_echo: sent \"hello\" to %s\n", t);
    lp2p_swarm_run(a.sw);
  }
  /* the handles and the timer are released with the swarm */
  lp2p_swarm_free(a.sw);
  lp2p_multiaddr_free(bind);
  lp2p_privkey_free(key);
  return a.echoed ? 0 : 1;
}
