/* node/module.h - a feature of `lp2p-node listen` as a module: its extra
 * flags, its help text, its setup once the swarm exists, its control/API
 * commands, the swarm events it wants, and its shutdown. A feature is one
 * node/mod_<name>.c defining a `const node_module` and one line in the table
 * of node/modules.c; cmd_listen.c does not change.
 *
 * Modules reach the node only through the functions below (the node itself is
 * opaque). Everything runs on the swarm's loop thread, except opt (argument
 * parsing, before the swarm exists) and teardown (after it is freed).
 *
 * Output convention (what ping/identify do): a module that reports something
 * calls node_text() for the human line (printed only without --json), then,
 * when node_json_wanted(), builds a cli_json object whose first field is
 * "event" and hands it to node_emit(). */
#ifndef LP2P_NODE_MODULE_H
#define LP2P_NODE_MODULE_H
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "lp2p/swarm.h"

typedef struct node node;

typedef struct node_module {
  const char *name;
  /* extra `listen` options (may be NULL/0) and their parser: idx is the
   * index into opts; returns 0 or an exit status (cli_usage_error(...)) */
  const cli_opt *opts;
  size_t n_opts;
  int (*opt)(node *n, void *st, size_t idx, const char *val);
  /* appended to `listen --help` (events and commands; NULL for none) */
  const char *usage;
  /* bytes of module state: zeroed, handed to every hook, freed after teardown */
  size_t state_size;
  /* the swarm exists (identify, ping, perf added; not listening yet):
   * returns 0, or an exit status (cli_error(...)) that stops the node */
  int (*setup)(node *n, void *st);
  /* a control/API line whose first word is verb; args is the rest of the
   * line (leading blanks skipped, may be "", modifiable, valid during the
   * call). Returns 1 when the verb is the module's (it then reports the
   * result or node_command_error to origin), 0 when not. */
  int (*command)(node *n, void *st, uint64_t origin, const char *verb, char *args);
  /* every swarm event (after the node's own handling; may be NULL) */
  void (*swarm_event)(node *n, void *st, const lp2p_swarm_event *ev);
  /* the loop has stopped, the swarm is still alive (may be NULL) */
  void (*stop)(node *n, void *st);
  /* the swarm has been freed (behaviours are gone): close files (may be NULL) */
  void (*teardown)(node *n, void *st);
  /* one line per command for the "unknown command" message, e.g.
   * "kad-get KEY, kad-put KEY VALUE" (may be NULL) */
  const char *commands;
} node_module;

/* the table (node/modules.c), NULL-terminated */
extern const node_module *const node_modules[];

lp2p_swarm *node_swarm(node *n);
const lp2p_privkey *node_identity(const node *n);
/* this node's peer id as text */
const char *node_peer_id(const node *n);
/* the data directory ("" when there is none: no home and --identity given) */
const char *node_data_dir(const node *n);
/* 1 with --json (stdout carries JSON lines, node_text prints nothing) */
int node_is_json(const node *n);
/* 1 when JSON events have a reader: --json or API clients */
int node_json_wanted(const node *n);
/* One JSON event: on stdout with --json, and to the API clients (to: that
 * client only; 0: every client). Frees j's buffer. */
void node_emit(node *n, cli_json *j, uint64_t to);
/* a human line on stdout (newline added), only without --json */
void node_text(node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* the control-error event {line, message} for origin (text line without --json) */
void node_command_error(node *n, uint64_t origin, const char *line, const char *msg);
/* a peer from "12D3..." or from the /p2p suffix of a multiaddr (whose address
 * is then added to the peer store): 0 or a negative LP2P_ERR_* */
int node_parse_peer(node *n, const char *arg, lp2p_peer_id *peer);

#endif
