/* reqresp.c - request-response between two nodes (lp2p/reqresp.h).
 *
 * A server process (forked) serves "/example/echo/1.0.0": it answers every
 * request with "you said: <request>", except "drop", whose channel it drops
 * (the requester then sees RESPONSE_OMISSION). The client sends two requests
 * over loopback TCP and checks both outcomes. Exits 0 when they are right.
 *
 * Build against an installed lp2p:
 *   CMake:      find_package(lp2p REQUIRED) + target_link_libraries(app PRIVATE lp2p::lp2p)
 *   pkg-config: cc reqresp.c $(pkg-config --cflags --libs lp2p) */
#define _POSIX_C_SOURCE 200809L /* fork, pipe, kill */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lp2p/keys.h>
#include <lp2p/reqresp.h>

#define PROTO "/example/echo/1.0.0"

/* ---- server: answer from the REQUEST event (an app could keep the channel and answer later) */
static void server_event(lp2p_reqresp *rr, const lp2p_reqresp_event *ev, void *ud) {
  (void)rr;
  (void)ud;
  if (ev->type != LP2P_REQRESP_EV_REQUEST) return;
  if (ev->len == 4 && !memcmp(ev->data, "drop", 4)) {
    lp2p_reqresp_channel_drop(ev->channel);
    return;
  }
  char out[256];
  int n = snprintf(out, sizeof out, "you said: %.*s", (int)(ev->len < 200 ? ev->len : 200), (const char *)ev->data);
  lp2p_reqresp_respond(ev->channel, (const uint8_t *)out, (size_t)n);
}

/* ---- client */
typedef struct client {
  lp2p_swarm *sw;
  int done, ok;
  uint64_t id_echo, id_drop;
} client;

static void client_event(lp2p_reqresp *rr, const lp2p_reqresp_event *ev, void *ud) {
  client *c = ud;
  (void)rr;
  if (ev->type != LP2P_REQRESP_EV_OUTBOUND) return;
  printf("request %llu: %s", (unsigned long long)ev->request_id, lp2p_reqresp_outcome_name(ev->outcome));
  if (ev->outcome == LP2P_REQRESP_RESPONSE) printf(" \"%.*s\"", (int)ev->len, (const char *)ev->data);
  printf("\n");
  if (ev->request_id == c->id_echo)
    c->ok += ev->outcome == LP2P_REQRESP_RESPONSE && ev->len == 16 && !memcmp(ev->data, "you said: hello!", 16);
  if (ev->request_id == c->id_drop) c->ok += ev->outcome == LP2P_REQRESP_RESPONSE_OMISSION;
  if (++c->done == 2) lp2p_swarm_stop(c->sw);
}

static lp2p_swarm *make_swarm(lp2p_privkey **key) {
  lp2p_swarm_config cfg;
  lp2p_swarm *sw = NULL;
  if (lp2p_privkey_generate(key, LP2P_KEY_ED25519, 0) < 0) return NULL;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = *key;
  if (lp2p_swarm_new(&sw, &cfg, NULL) < 0) return NULL;
  return sw;
}

static int add_rr(lp2p_swarm *sw, lp2p_reqresp_event_fn fn, void *ud, lp2p_reqresp **out) {
  lp2p_reqresp_config cfg;
  lp2p_reqresp_config_default(&cfg);
  cfg.protocols[0] = PROTO;
  cfg.n_protocols = 1;
  cfg.on_event = fn;
  cfg.ud = ud;
  return lp2p_reqresp_add(sw, &cfg, out);
}

int main(void) {
  int fds[2];
  if (pipe(fds) < 0) return 1;
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) { /* server */
    lp2p_privkey *key = NULL;
    lp2p_swarm *sw = make_swarm(&key);
    if (!sw || add_rr(sw, server_event, NULL, NULL) < 0 || lp2p_swarm_listen(sw, "/ip4/127.0.0.1/tcp/0") < 0)
      _exit(1);
    const lp2p_multiaddr *ma;
    char addr[300], id[LP2P_PEER_ID_MAX_TEXT], line[400];
    lp2p_swarm_listen_addrs(sw, &ma, 1);
    lp2p_multiaddr_to_string(ma, addr, sizeof addr);
    lp2p_peer_id_to_string(lp2p_swarm_local_peer(sw), id, sizeof id);
    int n = snprintf(line, sizeof line, "%s/p2p/%s", addr, id);
    if (write(fds[1], line, (size_t)n + 1) < 0) _exit(1);
    lp2p_swarm_run(sw); /* until killed */
    _exit(0);
  }
  close(fds[1]);
  char line[400] = {0};
  size_t got = 0;
  ssize_t k;
  while (got < sizeof line - 1 && (k = read(fds[0], line + got, sizeof line - 1 - got)) > 0) {
    got += (size_t)k;
    if (memchr(line, 0, got)) break;
  }
  int status = 1;
  lp2p_privkey *key = NULL;
  client c = {0};
  lp2p_reqresp *rr = NULL;
  lp2p_peer_id server;
  const char *p2p = strstr(line, "/p2p/");
  c.sw = make_swarm(&key);
  if (p2p && c.sw && add_rr(c.sw, client_event, &c, &rr) == 0 && lp2p_peer_id_parse(p2p + 5, &server) == 0 &&
      lp2p_swarm_add_address(c.sw, NULL, line) == 0 &&
      lp2p_reqresp_send(rr, &server, PROTO, (const uint8_t *)"hello!", 6, &c.id_echo) == 0 &&
      lp2p_reqresp_send(rr, &server, PROTO, (const uint8_t *)"drop", 4, &c.id_drop) == 0) {
    lp2p_swarm_run(c.sw); /* the request dials the server through the peer store */
    status = c.ok == 2 ? 0 : 1;
  }
  lp2p_swarm_free(c.sw);
  lp2p_privkey_free(key);
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  printf("reqresp example: %s\n", status ? "FAILED" : "ok");
  return status;
}
