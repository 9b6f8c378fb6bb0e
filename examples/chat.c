/* chat.c - durable messaging with lp2p/messaging.h (and lp2p/files.h for attachments).
 *
 *   chat DIR                          listen on 127.0.0.1, print the address, print what arrives
 *   chat DIR MADDR TEXT [TEXT...]     send each TEXT to the peer at MADDR (ending in /p2p/<id>), wait for
 *                                     the receipts (at most 30 s), exit 0 when all were delivered
 *
 * DIR holds the databases; what is not delivered stays in DIR/messages.db and goes out with the next run
 * (same DIR, same identity: DIR/identity.key). Stop the listener with Ctrl-C. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lp2p/keys.h>
#include <lp2p/messaging.h>
#include <lp2p/multiaddr.h>
#include <lp2p/swarm.h>

static int g_left;

static void on_msg(lp2p_msg_service *ms, const lp2p_msg_event *ev, void *ud) {
  lp2p_swarm *sw = ud;
  char id[33], from[LP2P_PEER_ID_MAX_TEXT] = "?";
  (void)ms;
  lp2p_msg_id_hex(&ev->id, id);
  if (ev->peer) lp2p_peer_id_to_string(ev->peer, from, sizeof from);
  switch (ev->type) {
    case LP2P_MSG_EV_QUEUED: printf("queued    %s\n", id); break;
    case LP2P_MSG_EV_DELIVERED: printf("delivered %s\n", id); break;
    case LP2P_MSG_EV_RETRY: printf("retry     %s in %llu ms\n", id, (unsigned long long)ev->retry_after_ms); break;
    case LP2P_MSG_EV_FAILED:
    case LP2P_MSG_EV_EXPIRED: printf("failed    %s: %s\n", id, ev->reason ? ev->reason : "?"); break;
    case LP2P_MSG_EV_RECEIVED:
      printf("<%s> %.*s\n", from, (int)ev->body_len, (const char *)ev->body);
      break;
    default: break;
  }
  fflush(stdout);
  if ((ev->type == LP2P_MSG_EV_DELIVERED || ev->type == LP2P_MSG_EV_FAILED || ev->type == LP2P_MSG_EV_EXPIRED) &&
      --g_left == 0)
    lp2p_swarm_stop(sw);
}

static void on_timeout(lp2p_timer *t, void *ud) {
  (void)t;
  fprintf(stderr, "timeout: %d message(s) still queued\n", g_left);
  lp2p_swarm_stop(ud);
}

int main(int argc, char **argv) {
  if (argc != 2 && argc < 4) {
    fprintf(stderr, "usage: chat DIR | chat DIR MADDR TEXT...\n");
    return 2;
  }
  const char *dir = argv[1];
  mkdir(dir, 0700);
  char path[4096];
  snprintf(path, sizeof path, "%s/identity.key", dir);
  lp2p_privkey *key = NULL;
  if (lp2p_privkey_load_file(&key, path) < 0) {
    if (lp2p_privkey_generate(&key, LP2P_KEY_ED25519, 0) < 0 || lp2p_privkey_save_file(key, path) < 0) return 1;
  }
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = key;
  lp2p_swarm *sw = NULL;
  if (lp2p_swarm_new(&sw, &cfg, NULL) < 0) return 1;
  snprintf(path, sizeof path, "%s/messages.db", dir);
  lp2p_msg_config mc;
  lp2p_msg_config_default(&mc);
  mc.db_path = path;
  mc.on_event = on_msg;
  mc.ud = sw;
  lp2p_msg_service *ms = NULL;
  int rv = lp2p_msg_add(sw, &mc, &ms);
  if (rv < 0) {
    fprintf(stderr, "messaging: %s\n", lp2p_strerror(rv));
    return 1;
  }
  int status = 0;
  if (argc == 2) {
    if (lp2p_swarm_listen(sw, "/ip4/127.0.0.1/tcp/0") < 0) return 1;
    const lp2p_multiaddr *la[1];
    char a[256], id[LP2P_PEER_ID_MAX_TEXT];
    lp2p_swarm_listen_addrs(sw, la, 1);
    lp2p_multiaddr_to_string(la[0], a, sizeof a);
    lp2p_peer_id_to_string(lp2p_swarm_local_peer(sw), id, sizeof id);
    printf("listening on %s/p2p/%s\n", a, id);
    fflush(stdout);
    g_left = -1; /* run until killed */
    lp2p_swarm_run(sw);
  } else {
    const char *p2p = strstr(argv[2], "/p2p/");
    lp2p_peer_id peer;
    if (!p2p || lp2p_peer_id_parse(p2p + 5, &peer) < 0 || lp2p_swarm_add_address(sw, NULL, argv[2]) < 0) {
      fprintf(stderr, "MADDR must end in /p2p/<peer id>\n");
      return 2;
    }
    for (int i = 3; i < argc; i++) {
      lp2p_msg_id id;
      if ((rv = lp2p_msg_send(ms, &peer, (const uint8_t *)argv[i], strlen(argv[i]), &id)) < 0) {
        fprintf(stderr, "send: %s\n", lp2p_strerror(rv));
        return 1;
      }
      g_left++;
    }
    lp2p_timer *t = NULL;
    lp2p_timer_new(&t, sw, on_timeout, sw);
    lp2p_timer_start(t, 30000, 0);
    lp2p_swarm_run(sw);
    status = g_left == 0 ? 0 : 1;
  }
  lp2p_swarm_free(sw);
  lp2p_privkey_free(key);
  return status;
}
