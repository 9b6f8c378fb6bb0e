/* pairing.c - pair two devices by a short code (lp2p/pairing.h, lp2p/devices.h).
 *
 * A forked "laptop" shows a code (lp2p_pairing_start) and waits; the "phone" (this process)
 * types it (lp2p_pairing_join, told where the laptop listens: the direct rendezvous). Both end
 * with a PAIRED event carrying the same short authentication string, and the phone's device
 * registry lists the laptop. Exits 0 when that holds.
 *
 * Build against an installed lp2p:
 *   CMake:      find_package(lp2p REQUIRED) + target_link_libraries(app PRIVATE lp2p::lp2p)
 *   pkg-config: cc pairing.c $(pkg-config --cflags --libs lp2p) */
#define _POSIX_C_SOURCE 200809L /* fork, pipe, kill */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lp2p/devices.h>
#include <lp2p/keys.h>
#include <lp2p/pairing.h>

typedef struct app {
  lp2p_swarm *sw;
  int paired, failed;
  char sas[16];
} app;

static void on_pairing(lp2p_pairing *p, const lp2p_pairing_event *ev, void *ud) {
  app *a = ud;
  (void)p;
  if (ev->type == LP2P_PAIRING_EV_PAIRED) {
    a->paired = 1;
    snprintf(a->sas, sizeof a->sas, "%s", ev->sas);
    printf("%s: paired with \"%s\", SAS %s\n", ev->role == LP2P_PAIRING_INITIATOR ? "laptop" : "phone", ev->name,
           ev->sas);
  } else {
    a->failed = 1;
    printf("pairing failed: %s\n", lp2p_pairing_fail_name(ev->fail));
  }
  lp2p_swarm_stop(a->sw);
}

static lp2p_pairing *make_node(app *a, lp2p_privkey **key, const char *name, lp2p_devices **dev) {
  lp2p_swarm_config cfg;
  lp2p_pairing *p = NULL;
  if (lp2p_privkey_generate(key, LP2P_KEY_ED25519, 0) < 0) return NULL;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = *key;
  if (lp2p_swarm_new(&a->sw, &cfg, NULL) < 0) return NULL;
  lp2p_devices_config dc = {sizeof dc, NULL, NULL, NULL}; /* in memory; give a data_dir to persist */
  lp2p_pairing_config pc;
  lp2p_pairing_config_default(&pc);
  pc.device_name = name;
  pc.on_event = on_pairing;
  pc.ud = a;
  if (lp2p_devices_add(a->sw, &dc, dev) < 0 || lp2p_pairing_add(a->sw, &pc, &p) < 0 ||
      lp2p_swarm_listen(a->sw, "/ip4/127.0.0.1/tcp/0") < 0)
    return NULL;
  return p;
}

int main(void) {
  int fds[2];
  if (pipe(fds) < 0) return 1;
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) { /* the laptop: shows the code */
    app a = {0};
    lp2p_privkey *key = NULL;
    lp2p_devices *dev = NULL;
    lp2p_pairing *p = make_node(&a, &key, "laptop", &dev);
    char code[LP2P_PAIRING_CODE_MAX], addr[300], id[LP2P_PEER_ID_MAX_TEXT], line[800];
    const lp2p_multiaddr *ma;
    if (!p || lp2p_pairing_start(p, code, sizeof code) < 0) _exit(1);
    lp2p_swarm_listen_addrs(a.sw, &ma, 1);
    lp2p_multiaddr_to_string(ma, addr, sizeof addr);
    lp2p_peer_id_to_string(lp2p_swarm_local_peer(a.sw), id, sizeof id);
    printf("laptop: pairing code %s\n", code);
    fflush(stdout);
    int n = snprintf(line, sizeof line, "%s %s/p2p/%s", code, addr, id);
    if (write(fds[1], line, (size_t)n + 1) < 0) _exit(1);
    lp2p_swarm_run(a.sw);
    fflush(stdout);
    _exit(a.paired ? 0 : 1);
  }
  close(fds[1]);
  char line[800] = {0};
  size_t got = 0;
  ssize_t k;
  while (got < sizeof line - 1 && (k = read(fds[0], line + got, sizeof line - 1 - got)) > 0) {
    got += (size_t)k;
    if (memchr(line, 0, got)) break;
  }
  int status = 1;
  app a = {0};
  lp2p_privkey *key = NULL;
  lp2p_devices *dev = NULL;
  lp2p_pairing *p = make_node(&a, &key, "phone", &dev);
  char *sp = strchr(line, ' '), *p2p = sp ? strstr(sp, "/p2p/") : NULL;
  lp2p_peer_id laptop;
  if (p && sp && p2p) {
    *sp = 0; /* line = the code the user typed, sp + 1 = where the laptop is */
    if (lp2p_peer_id_parse(p2p + 5, &laptop) == 0 && lp2p_swarm_add_address(a.sw, NULL, sp + 1) == 0 &&
        lp2p_pairing_join(p, line, &laptop) == 0) {
      lp2p_swarm_run(a.sw);
      lp2p_device d;
      if (a.paired && lp2p_devices_get(dev, &laptop, &d) == 0) {
        printf("phone: my devices: %s (%s)\n", d.name, lp2p_device_state_name(d.state));
        status = strcmp(d.name, "laptop") != 0;
      }
    }
  }
  lp2p_swarm_free(a.sw);
  lp2p_privkey_free(key);
  int st = 0;
  if (status) kill(pid, SIGKILL); /* the laptop would wait for its code to expire */
  if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    kill(pid, SIGKILL);
    status = 1;
  }
  printf("pairing example: %s\n", status ? "FAILED" : "ok");
  return status;
}
