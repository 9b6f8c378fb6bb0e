/* node/netcmd.h - plumbing shared by the networking subcommands of lp2p-node
 * (listen, ping, identify, perf): identity loading, swarm creation, a
 * positional MADDR argument, JSON arrays, size parsing, text forms and the
 * dial-then-act client skeleton. Only the public (LP2P_EXTERN) API is used. */
#ifndef LP2P_NODE_NETCMD_H
#define LP2P_NODE_NETCMD_H
#include <stdint.h>

#include "cli.h"
#include "lp2p/identify.h"
#include "lp2p/keys.h"
#include "lp2p/multiaddr.h"
#include "lp2p/peerid.h"
#include "lp2p/swarm.h"

/* ---- arguments ---- */
/* Moves the first positional argument (one that is neither an option nor the
 * value of an option taking one, per opts) out of argv: *pos receives it (or
 * NULL), argv/argc are compacted in place. Returns 0, or a usage exit status
 * if there is more than one positional argument. */
int nc_take_positional(const char *cmd, int *argc, char **argv, const cli_opt *opts, size_t n_opts,
                       const char **pos);
/* Byte counts: decimal, optional suffix k/K, m/M, g/G (powers of 1024). */
int nc_parse_size(const char *text, uint64_t *out);
/* Non-negative decimal integer <= max. */
int nc_parse_uint(const char *text, uint64_t max, uint64_t *out);

/* ---- identity ---- */
/* path NULL: a fresh Ed25519 key in memory (never saved). Else load the key
 * file, or create it (type, mode 0600) when create != 0 and it is absent.
 * Returns 0 or an exit status after printing a one-line error (prefix cmd). */
int nc_identity(const char *cmd, const char *path, int create, lp2p_key_type type, lp2p_privkey **out);
/* The default identity file (the one `lp2p-node id` uses) into buf. */
int nc_default_identity(char *buf, size_t cap);

/* ---- text forms ---- */
const char *nc_peer_str(const lp2p_peer_id *peer, char *buf, size_t cap); /* "?" if NULL */
const char *nc_ma_str(const lp2p_multiaddr *ma, char *buf, size_t cap);   /* NULL if ma is NULL */
const char *nc_dir_str(lp2p_direction d);                                 /* "inbound" / "outbound" */

/* ---- JSON ---- */
/* Adds the identify info fields (agent_version, protocol_version, protocols,
 * listen_addrs, observed_addr, signed_record) to j. */
void nc_json_identify(cli_json *j, const lp2p_identify_info *in);
/* Adds "error":"LP2P_ERR_..." and "message":"<lp2p_strerror>" (err != 0). */
void nc_json_error(cli_json *j, int err);
/* Emits j on stdout; on failure (stdout gone) stops caring. */
void nc_json_out(cli_json *j);

/* ---- signals ---- */
/* Blocks SIGINT/SIGTERM in the calling thread (call before any thread
 * exists, so that every thread inherits the mask). */
int nc_signals_block(void);
/* Starts a thread that stops sw (through lp2p_swarm_post) when SIGINT or
 * SIGTERM arrives (also one that arrived since nc_signals_block). */
int nc_signals_start(lp2p_swarm *sw);
/* Stops and joins that thread (before lp2p_swarm_free). Returns the signal
 * that stopped the node, or 0. */
int nc_signals_stop(void);

/* ---- client skeleton: one swarm, dial MADDR, then act ---- */
typedef struct nc_client nc_client;
typedef void (*nc_client_fn)(nc_client *c);
struct nc_client {
  const char *cmd;          /* "ping" ... (for messages) */
  const char *target;       /* MADDR as given */
  int json;
  uint32_t timeout_ms;      /* whole command (0 = none) */
  lp2p_swarm *sw;
  lp2p_privkey *key;
  lp2p_identify *identify;  /* when want_identify */
  lp2p_peer_id peer;        /* after the dial */
  nc_client_fn on_setup;    /* optional: behaviours exist, nothing dialed yet */
  nc_client_fn on_connected;/* start the action; call nc_client_finish when done */
  void *ud;
  int status;               /* exit status */
  int finished;
  lp2p_timer *timer;
};
/* Creates the swarm (identity: path or ephemeral), adds identify (always: the
 * peer expects answers) and ping/perf servers, dials target, runs the loop
 * until nc_client_finish, frees everything. Returns the exit status. */
int nc_client_run(nc_client *c, const char *identity);
/* Ends the command: status 0, or an error printed as one line
 * "lp2p-node: <cmd>: <target>: <what>: <lp2p_strerror(err)>". */
void nc_client_finish(nc_client *c, int err, const char *what);

#endif
