/* node/control.h - the command channel of `lp2p-node listen`: one command per
 * line from stdin (--control) and from the clients of a unix socket (--api),
 * all handed to ONE dispatcher on the swarm's loop thread; JSON event lines
 * back to the API clients.
 *
 * One I/O thread polls stdin, the listening socket and every client. Complete
 * lines (LF or CRLF, at most CTL_LINE_MAX bytes) are queued and run, in
 * arrival order, by the dispatcher through lp2p_swarm_post. A longer line is
 * reported to the dispatcher as an error (its first bytes and a message) and
 * then that client is dropped; a client that disconnects mid-line loses only
 * that partial line. Output for a client is buffered (at most CTL_OUT_MAX
 * bytes; a client that does not read beyond that is dropped) and written by
 * the I/O thread, so the loop thread never blocks on a slow client.
 *
 * Lifecycle: ctl_api_open (optional, before the node starts: refuses a PATH
 * held by a live node, replaces a stale socket file, mode 0600), ctl_start,
 * then ctl_stop before lp2p_swarm_free (closes clients, removes the socket
 * file). One channel per process. */
#ifndef LP2P_NODE_CONTROL_H
#define LP2P_NODE_CONTROL_H
#include <stddef.h>
#include <stdint.h>

#include "lp2p/swarm.h"

#define CTL_LINE_MAX (64 * 1024)
#define CTL_OUT_MAX (4 * 1024 * 1024)
#define CTL_MAX_CLIENTS 64

/* Runs on the loop thread. origin: 0 for stdin, else the API client's id
 * (never reused). error == NULL: line is a command (modifiable, owned by the
 * channel, valid during the call). error != NULL: the source sent a line over
 * CTL_LINE_MAX; line holds its first bytes; the client is dropped after the
 * events the dispatcher sends it now (ctl_send) are written. */
typedef void (*ctl_dispatch_fn)(void *ud, uint64_t origin, char *line, const char *error);

/* Binds the API socket at path (mode 0600). Returns 0, or -1 with a message
 * in err: path too long, taken by something that is not a socket, held by a
 * live node (a connect succeeds), or a bind/listen failure. A socket file
 * nobody listens on (left by a crash) is replaced. */
int ctl_api_open(const char *path, char *err, size_t cap);

/* Starts the I/O thread: stdin when use_stdin, the API socket when opened.
 * Returns 0 or -1. */
int ctl_start(lp2p_swarm *sw, int use_stdin, ctl_dispatch_fn fn, void *ud);

/* Loop thread (or before ctl_start): queues line (len bytes, normally one
 * JSON object and '\n') for client `to`, or for every client when to == 0.
 * Clients that have gone, or whose buffer would exceed CTL_OUT_MAX (then
 * dropped), are skipped. */
void ctl_send(uint64_t to, const char *line, size_t len);

/* 1 if API clients may exist (ctl_api_open succeeded). */
int ctl_api_enabled(void);

/* Stops the thread (output still buffered is written if the client can take
 * it without blocking), closes every client and the socket, removes the
 * socket file (if it is still the one bound here), drops queued lines. Safe
 * to call when nothing was started. */
void ctl_stop(void);

#endif
