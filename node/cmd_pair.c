/* node/cmd_pair.c - one-shot pairing subcommands:
 *   lp2p-node pair [--name NAME] [--peer MADDR] [CODE] [listen options]
 *       without CODE: print a code, wait until a device paired with it (exit 0) or the code
 *       failed/expired (exit 1); with CODE: join (direct rendezvous: --peer, else the peers
 *       this node connects to with --dial) and exit 0 when paired, 1 otherwise.
 *   lp2p-node unpair PEER [listen options]   forget PEER and tell it (when reachable)
 *   lp2p-node devices [--data-dir DIR] [--json]   list the paired devices
 * pair and unpair run `listen` (same identity and data directory as the daemon) with the
 * pairing module's --pair-once (node/mod_pair.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "lp2p/devices.h"
#include "lp2p/keys.h"
#include "netcmd.h"

static int is_code(const char *s) {
  size_t d = strspn(s, "0123456789");
  return d > 0 && (s[d] == '-' || s[d] == ' ');
}

static int run_listen(int argc, char **argv, const char *once, int skip_first_positional_code,
                      const char *positional) {
  /* listen ARGS... --pair-once X */
  char **av = calloc((size_t)argc + 4, sizeof *av);
  if (!av) return cli_error("out of memory");
  int k = 0;
  av[k++] = (char *)"listen";
  for (int i = 1; i < argc; i++) {
    if (skip_first_positional_code && argv[i] == positional) continue;
    if (!strcmp(argv[i], "--name")) {
      av[k++] = (char *)"--device-name";
    } else if (!strncmp(argv[i], "--name=", 7)) {
      static char buf[128];
      snprintf(buf, sizeof buf, "--device-name=%s", argv[i] + 7);
      av[k++] = buf;
    } else if (!strcmp(argv[i], "--peer")) {
      av[k++] = (char *)"--pair-peer";
    } else if (!strncmp(argv[i], "--peer=", 7)) {
      static char buf2[600];
      snprintf(buf2, sizeof buf2, "--pair-peer=%s", argv[i] + 7);
      av[k++] = buf2;
    } else {
      av[k++] = argv[i];
    }
  }
  av[k++] = (char *)"--pair-once";
  av[k++] = (char *)once;
  static const cli_command listen_cmd = {"listen", "", cmd_listen};
  int rv = cmd_listen(&listen_cmd, k, av);
  free(av);
  return rv;
}

int cmd_pair(const cli_command *cmd, int argc, char **argv) {
  (void)cmd;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("Usage: " CLI_PROG " pair [--name NAME] [CODE [--peer MADDR]] [--json] [listen options]\n"
             "\n"
             "Without CODE: prints a pairing code (\"<nameplate>-word-word-word\", valid 5 minutes,\n"
             "single use) and waits until a device joins with it. With CODE: joins the device that\n"
             "showed it, found at --peer MADDR (direct), or among the peers given with --dial.\n"
             "Exit 0 when paired (the device is stored in the data directory), 1 when the pairing\n"
             "failed (a wrong code burns it on both sides). Takes every `listen` option\n"
             "(--data-dir, --identity, --listen, --json, --paired-only, ...).\n"
             "Events with --json: pair-code {code}, paired {peer, name, sas}, pair-failed {error},\n"
             "device-state {peer, name, state}, and the listen events.\n");
      return CLI_EXIT_OK;
    }
  }
  const char *code = NULL;
  for (int i = 1; i < argc; i++)
    if (argv[i][0] != '-' && is_code(argv[i]) && (i == 1 || strcmp(argv[i - 1], "--name"))) {
      code = argv[i];
      break;
    }
  return run_listen(argc, argv, code ? code : "start", code != NULL, code);
}

int cmd_unpair(const cli_command *cmd, int argc, char **argv) {
  (void)cmd;
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    printf("Usage: " CLI_PROG " unpair PEER [--data-dir DIR] [--json] [listen options]\n"
           "\n"
           "Forgets the paired device PEER and tells it (it is dialed at its last known\n"
           "addresses; waits at most 5 s). Exit 0 when it was paired, 1 otherwise.\n");
    return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
  }
  char once[600];
  snprintf(once, sizeof once, "unpair:%s", argv[1]);
  return run_listen(argc, argv, once, 1, argv[1]);
}

/* ---- devices: read the registry without going on the network ---- */
enum { D_DATA_DIR, D_JSON, D_HELP };
static const cli_opt dev_opts[] = {
    [D_DATA_DIR] = {"data-dir", "DIR", "data directory (default: the one `listen` uses)"},
    [D_JSON] = CLI_OPT_JSON,
    [D_HELP] = CLI_OPT_HELP,
};
typedef struct dev_args {
  const char *dir;
  int json;
} dev_args;
static int dev_opt(void *ud, size_t idx, const char *val) {
  dev_args *a = ud;
  if (idx == D_DATA_DIR) a->dir = val;
  if (idx == D_JSON) a->json = 1;
  return 0;
}

int cmd_devices(const cli_command *cmd, int argc, char **argv) {
  (void)cmd;
  dev_args a = {0};
  int rv = cli_parse(argc, argv, dev_opts, sizeof dev_opts / sizeof *dev_opts, dev_opt, &a);
  if (rv == CLI_HELP_SHOWN) {
    printf("Usage: " CLI_PROG " devices [--data-dir DIR] [--json]\n\nLists the paired devices.\n\nOptions:\n");
    cli_print_opts(stdout, dev_opts, sizeof dev_opts / sizeof *dev_opts);
    return CLI_EXIT_OK;
  }
  if (rv) return rv;
  char dir[4096];
  if (a.dir)
    snprintf(dir, sizeof dir, "%s", a.dir);
  else if (cli_data_path("", dir, sizeof dir) < 0)
    return cli_error("devices: no home directory (use --data-dir)");
  lp2p_privkey *key = NULL;
  if ((rv = nc_identity("devices", NULL, 0, LP2P_KEY_ED25519, &key))) return rv;
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = key;
  lp2p_swarm *sw = NULL;
  lp2p_devices *d = NULL;
  lp2p_devices_config dc = {sizeof dc, dir, NULL, NULL};
  if ((rv = lp2p_swarm_new(&sw, &cfg, NULL)) < 0 || (rv = lp2p_devices_add(sw, &dc, &d)) < 0) {
    lp2p_swarm_free(sw);
    lp2p_privkey_free(key);
    return cli_error("devices: cannot read %s/devices: %s", dir, lp2p_strerror(rv));
  }
  size_t n = lp2p_devices_list(d, NULL, 0);
  lp2p_device *devs = calloc(n ? n : 1, sizeof *devs);
  n = devs ? lp2p_devices_list(d, devs, n) : 0;
  if (!a.json) printf("devices: %zu\n", n);
  for (size_t i = 0; i < n; i++) {
    char pb[LP2P_PEER_ID_MAX_TEXT];
    nc_peer_str(&devs[i].peer, pb, sizeof pb);
    if (!a.json) {
      printf("  %s  %-20s paired at %llu", pb, devs[i].name, (unsigned long long)devs[i].paired_at);
      for (size_t k = 0; k < devs[i].n_addrs; k++) printf(" %s", devs[i].addrs[k]);
      printf("\n");
      continue;
    }
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "device");
    cli_json_str(&j, "peer", pb);
    cli_json_str(&j, "name", devs[i].name);
    cli_json_int(&j, "paired_at", (long long)devs[i].paired_at);
    const char *addrs[LP2P_DEVICE_ADDRS_MAX];
    for (size_t k = 0; k < devs[i].n_addrs; k++) addrs[k] = devs[i].addrs[k];
    cli_json_str_array(&j, "addrs", addrs, devs[i].n_addrs);
    nc_json_out(&j);
  }
  if (a.json) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "devices");
    cli_json_int(&j, "count", (long long)n);
    nc_json_out(&j);
  }
  free(devs);
  lp2p_swarm_free(sw);
  lp2p_privkey_free(key);
  return CLI_EXIT_OK;
}
