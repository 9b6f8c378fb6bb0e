/* pubsub_chat.c - gossipsub (lp2p/pubsub.h) between two processes on 127.0.0.1.
 *
 * The program forks: the parent listens, subscribes to "chat" and answers every
 * "hello" with "welcome"; the child dials the parent, subscribes, publishes "hello"
 * once the parent's subscription has arrived and stops when "welcome" comes back.
 * Exits 0 when both sides got their message (each gives up after 10 s). */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lp2p/keys.h>
#include <lp2p/pubsub.h>

#define TOPIC "chat"

typedef struct app {
  lp2p_swarm *sw;
  lp2p_pubsub *ps;
  const char *name;
  int got, sent;
} app;

static void on_message(lp2p_pubsub *ps, const lp2p_pubsub_message *m, void *ud) {
  app *a = ud;
  char from[LP2P_PEER_ID_MAX_TEXT];
  lp2p_peer_id_to_string(m->from, from, sizeof from);
  printf("pubsub_chat %s: [%s] %.*s (from %.12s...)\n", a->name, m->topic, (int)m->data_len,
         (const char *)m->data, from);
  fflush(stdout);
  if (m->data_len == 5 && !memcmp(m->data, "hello", 5)) { /* parent: answer */
    a->got = 1;
    size_t peers;
    lp2p_pubsub_publish(ps, TOPIC, (const uint8_t *)"welcome", 7, NULL, 0, &peers);
  } else if (m->data_len == 7 && !memcmp(m->data, "welcome", 7)) { /* child: done */
    a->got = 1;
    lp2p_swarm_stop(a->sw);
  }
}

/* Child: publish once the parent is a topic peer. Parent: stop a moment after answering. */
static void on_tick(lp2p_timer *t, void *ud) {
  app *a = ud;
  (void)t;
  if (!strcmp(a->name, "child") && !a->sent && lp2p_pubsub_topic_peers(a->ps, TOPIC, NULL, 0) > 0) {
    size_t peers = 0;
    uint8_t id[LP2P_PUBSUB_MAX_ID];
    int n = lp2p_pubsub_publish(a->ps, TOPIC, (const uint8_t *)"hello", 5, id, sizeof id, &peers);
    printf("pubsub_chat child: published hello (id %d bytes) to %zu peer(s)\n", n, peers);
    a->sent = n > 0;
  }
  if (!strcmp(a->name, "parent") && a->got && ++a->sent > 5) lp2p_swarm_stop(a->sw);
}

static void on_timeout(lp2p_timer *t, void *ud) {
  app *a = ud;
  (void)t;
  fprintf(stderr, "pubsub_chat %s: gave up after 10 s\n", a->name);
  lp2p_swarm_stop(a->sw);
}

static int run(const char *name, int fd_addr) {
  lp2p_privkey *key;
  if (lp2p_privkey_generate(&key, LP2P_KEY_ED25519, 0) < 0) return 1;
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = key;
  app a = {0};
  a.name = name;
  if (lp2p_swarm_new(&a.sw, &cfg, NULL) < 0) return 1;
  lp2p_pubsub_config pc;
  lp2p_pubsub_config_default(&pc);
  pc.heartbeat_ms = 200; /* a quick mesh for a short demo */
  if (lp2p_pubsub_add(a.sw, &pc, &a.ps) < 0 || lp2p_pubsub_subscribe(a.ps, TOPIC, on_message, &a) < 0) return 1;
  if (!strcmp(name, "parent")) {
    if (lp2p_swarm_listen(a.sw, "/ip4/127.0.0.1/tcp/0") < 0) return 1;
    const lp2p_multiaddr *la[1];
    char text[512], pid[LP2P_PEER_ID_MAX_TEXT];
    lp2p_swarm_listen_addrs(a.sw, la, 1);
    lp2p_multiaddr_to_string(la[0], text, sizeof text);
    lp2p_peer_id_to_string(lp2p_swarm_local_peer(a.sw), pid, sizeof pid);
    char line[600];
    int n = snprintf(line, sizeof line, "%s/p2p/%s\n", text, pid);
    if (write(fd_addr, line, (size_t)n) != n) return 1;
    close(fd_addr);
  } else {
    char line[600];
    ssize_t n = 0, r;
    while (n < (ssize_t)sizeof line - 1 && (r = read(fd_addr, line + n, sizeof line - 1 - (size_t)n)) > 0) n += r;
    close(fd_addr);
    if (n <= 1) return 1;
    line[n - 1] = 0;
    const char *addrs[] = {line};
    if (lp2p_swarm_dial(a.sw, NULL, addrs, 1, NULL, NULL) < 0) return 1;
  }
  lp2p_timer *tick, *guard;
  lp2p_timer_new(&tick, a.sw, on_tick, &a);
  lp2p_timer_start(tick, 100, 100);
  lp2p_timer_new(&guard, a.sw, on_timeout, &a);
  lp2p_timer_start(guard, 10000, 0);
  lp2p_swarm_run(a.sw);
  lp2p_pubsub_stats st;
  lp2p_pubsub_get_stats(a.ps, &st);
  printf("pubsub_chat %s: delivered %llu, published %llu\n", name, (unsigned long long)st.delivered,
         (unsigned long long)st.published);
  fflush(stdout);
  lp2p_swarm_free(a.sw);
  lp2p_privkey_free(key);
  return a.got ? 0 : 1;
}

int main(void) {
  int fds[2];
  if (pipe(fds)) return 1;
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    close(fds[1]);
    _exit(run("child", fds[0]));
  }
  close(fds[0]);
  int rv = run("parent", fds[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  int child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  printf("pubsub_chat: parent %s, child %s\n", rv ? "FAILED" : "ok", child_ok ? "ok" : "FAILED");
  return rv || !child_ok;
}
