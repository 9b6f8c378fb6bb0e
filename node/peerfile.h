/* node/peerfile.h - lp2p-node's known peers across restarts: the peer store's
 * persistence hook (lp2p/peerstore.h) backed by the text file DATA_DIR/peers,
 * one line per peer: "<peer-id> <source>:<expires-unix-ms|0>:<multiaddr>...".
 * The file is rewritten atomically (temporary file, fsync, rename; mode 0600)
 * after each batch of changes the store reports. Loading skips unreadable
 * entries (counted on stderr) and addresses that expired while the node was
 * down. Loop thread only; one per swarm. */
#ifndef LP2P_NODE_PEERFILE_H
#define LP2P_NODE_PEERFILE_H
#include "lp2p/peerstore.h"

typedef struct peerfile peerfile;

/* Loads DIR/peers into sw's peer store and saves every later change there.
 * *out is freed with peerfile_close after lp2p_swarm_free. Errors: LP2P_ERR_*. */
int peerfile_open(peerfile **out, lp2p_swarm *sw, const char *dir);
void peerfile_close(peerfile *pf);

#endif
