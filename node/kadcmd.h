/* node/kadcmd.h - the kad commands shared by `lp2p-node listen` (node/mod_kad.c: control/API
 * commands) and the one-shot `lp2p-node kad ...` (node/cmd_kad.c): argument forms, starting the
 * query, and its result as a JSON event named like the command plus a human line.
 *
 * Commands: kad-bootstrap, kad-find-peer PEER, kad-closest KEY, kad-put KEY VALUE, kad-get KEY,
 * kad-provide CID, kad-find-providers CID, kad-table.
 * KEY / VALUE: text as given, or raw bytes in hex with a "0x" prefix ("0x2f706b2f...").
 * CID: CIDv1 multibase text ("bafy...", "b..."), CIDv0 ("Qm..."), or a bare multihash in hex
 * ("0x1220...").
 * Events: {"event":"<command>","ok":true|false, "error"/"message" on failure, the stats
 * "hops","peers_contacted","requests","failures","duration_ms" for queries, then per command
 * "peer","addrs" (find-peer), "peers" (closest, bootstrap, table, with "count"), "value" (hex) and
 * "text" (when printable) (get), "stored" (put, provide), "providers" + "addrs" (find-providers;
 * addrs carry /p2p/<provider>)}. */
#ifndef LP2P_NODE_KADCMD_H
#define LP2P_NODE_KADCMD_H
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "lp2p/kad.h"

/* The result of one command: j is a complete event (the callee frees j->buf via node_emit /
 * cli_json_emit), text the human line(s), err 0 or the failure. */
typedef void (*kc_done_fn)(void *ud, cli_json *j, const char *text, int err);

/* 1 if verb is one of the kad commands. */
int kc_is_command(const char *verb);
/* Starts verb with args (the rest of the line, modifiable). done is called exactly once: later
 * for a query, at once for kad-table and for argument errors (then err < 0 and j is an event with
 * ok false). */
void kc_run(lp2p_kad *kad, const char *verb, char *args, kc_done_fn done, void *ud);
/* "kad-bootstrap" as the result event of an automatic bootstrap. */
int kc_bootstrap(lp2p_kad *kad, kc_done_fn done, void *ud);
/* The commands, for help texts. */
#define KC_COMMANDS                                                                                 \
  "kad-bootstrap, kad-find-peer PEER, kad-closest KEY, kad-put KEY VALUE, kad-get KEY, kad-provide CID, " \
  "kad-find-providers CID, kad-table"

/* KEY/VALUE argument (text or 0x-hex) into out (cap bytes). 0 or LP2P_ERR_INVAL/_BUFSIZE. */
int kc_parse_bytes(const char *arg, uint8_t *out, size_t cap, size_t *len);
/* CID argument -> multihash bytes. */
int kc_parse_cid(const char *arg, uint8_t *mh, size_t cap, size_t *len);

#endif
