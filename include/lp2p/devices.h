/* lp2p/devices.h - the device registry: "my devices" (peers paired with
 * lp2p/pairing.h), persisted, with one state machine per device and ONE event
 * stream for the app.
 *
 * States:  DISCOVERED -> PAIRING -> PAIRED -> CONNECTED <-> DISCONNECTED
 *                         |                       (any paired state) -> UNPAIRED
 *                         +-> DISCOVERED (the pairing failed)
 * DISCOVERED / PAIRING are set by the pairing behaviour for candidates (kept
 * in memory only); PAIRED is entered when a pairing succeeds, and is
 * immediately followed by CONNECTED when the swarm has a connection to the
 * peer (it always has right after pairing). CONNECTED / DISCONNECTED are
 * derived from the swarm's CONN_ESTABLISHED / CONN_CLOSED events only (at load
 * a paired device is DISCONNECTED unless the swarm is connected to it).
 * UNPAIRED is the last event of a device: lp2p_devices_unpair() (ours) or the
 * other side's unpair message; the record is gone by then.
 *
 * Persistence: with a data_dir, the paired devices (peer id, name, paired-at
 * unix time, last known addresses) live in <data_dir>/devices, one line each,
 * rewritten atomically (temporary file, fsync, rename; mode 0600) on every
 * change. The last known addresses start as the ones the device sealed into
 * the pairing and follow the device afterwards: the dialable listen addresses
 * it reports by identify (PEER_IDENTIFIED) replace them, and an address we
 * reached it at (an outbound CONN_ESTABLISHED) is added first; a change is
 * persisted at once (no event: the state did not change). Unreadable lines are
 * skipped. The peer's public key is the one its
 * peer id embeds (Ed25519) or the one Noise authenticated.
 *
 * Paired-only protocols: lp2p_devices_set_paired_only(d, id) makes the swarm's
 * connection gate (allow_stream) refuse inbound streams for id from any peer
 * that is not paired, before the protocol handler sees a byte (the opener sees
 * LP2P_ERR_UNSUPPORTED, exactly like an unknown protocol).
 *
 * Unpair tells the other side when it can: a request on /lp2p/unpair/1.0.0
 * (lp2p/reqresp.h framing) to the peer, dialing it if needed; a peer that is
 * unreachable keeps its record until it learns otherwise (its paired-only
 * streams to us are refused from now on).
 *
 * Threading: loop thread only. */
#ifndef LP2P_DEVICES_H
#define LP2P_DEVICES_H
#include "lp2p/swarm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_DEVICES_BEHAVIOUR "devices"
#define LP2P_UNPAIR_PROTOCOL "/lp2p/unpair/1.0.0"
#define LP2P_DEVICE_NAME_MAX 64
#define LP2P_DEVICE_ADDRS_MAX 8

typedef struct lp2p_devices lp2p_devices;

typedef enum lp2p_device_state {
  LP2P_DEVICE_DISCOVERED = 1,
  LP2P_DEVICE_PAIRING = 2,
  LP2P_DEVICE_PAIRED = 3,
  LP2P_DEVICE_CONNECTED = 4,
  LP2P_DEVICE_DISCONNECTED = 5,
  LP2P_DEVICE_UNPAIRED = 6
} lp2p_device_state;

/* "discovered", "pairing", "paired", "connected", "disconnected", "unpaired"; static storage. */
LP2P_EXTERN const char *lp2p_device_state_name(lp2p_device_state s);

typedef struct lp2p_device {
  lp2p_peer_id peer;
  char name[LP2P_DEVICE_NAME_MAX + 1];
  lp2p_device_state state;
  uint64_t paired_at; /* unix seconds; 0 while not paired */
  size_t n_addrs;
  char addrs[LP2P_DEVICE_ADDRS_MAX][128]; /* last known addresses (text, no /p2p) */
} lp2p_device;

/* One transition. device points to the device's state after it (valid during the call). */
typedef struct lp2p_device_event {
  size_t struct_size;
  const lp2p_device *device;
  lp2p_device_state prev; /* 0 for a device that was not known */
} lp2p_device_event;
typedef void (*lp2p_devices_event_fn)(lp2p_devices *d, const lp2p_device_event *ev, void *ud);

typedef struct lp2p_devices_config {
  size_t struct_size;       /* sizeof(lp2p_devices_config) */
  const char *data_dir;     /* copied; NULL = in memory only */
  lp2p_devices_event_fn on_event; /* optional */
  void *ud;
} lp2p_devices_config;

/* Adds the registry (loads <data_dir>/devices). The swarm owns it; *out stays
 * valid until lp2p_swarm_free. Errors: LP2P_ERR_INVAL, LP2P_ERR_NOMEM,
 * LP2P_ERR_EXISTS (one per swarm), LP2P_ERR_IO (data_dir unusable). */
LP2P_EXTERN int lp2p_devices_add(lp2p_swarm *sw, const lp2p_devices_config *cfg, lp2p_devices **out);

/* Paired devices (not the transient DISCOVERED/PAIRING ones): up to max copies, returns the total. */
LP2P_EXTERN size_t lp2p_devices_list(const lp2p_devices *d, lp2p_device *out, size_t max);
/* Any known device (also transient). 0 or LP2P_ERR_NOT_FOUND. */
LP2P_EXTERN int lp2p_devices_get(const lp2p_devices *d, const lp2p_peer_id *peer, lp2p_device *out);
LP2P_EXTERN int lp2p_devices_is_paired(const lp2p_devices *d, const lp2p_peer_id *peer);

/* Marks protocol (copied) paired-only (see header). At most 16. */
LP2P_EXTERN int lp2p_devices_set_paired_only(lp2p_devices *d, const char *protocol);

/* Removes the device (event UNPAIRED) and tells the peer. LP2P_ERR_NOT_FOUND if not paired. */
LP2P_EXTERN int lp2p_devices_unpair(lp2p_devices *d, const lp2p_peer_id *peer);

/* For the pairing behaviour (and tests): a candidate was found / a session runs (DISCOVERED /
 * PAIRING for a peer that is not paired; ignored for a paired one), or the session failed
 * (back to DISCOVERED). */
LP2P_EXTERN void lp2p_devices_note(lp2p_devices *d, const lp2p_peer_id *peer, lp2p_device_state state);
/* A pairing succeeded: records (or refreshes) the device and persists it. addrs: text, copied.
 * 0, LP2P_ERR_IO (not persisted: the device is paired for this run only), LP2P_ERR_NOMEM. */
LP2P_EXTERN int lp2p_devices_paired(lp2p_devices *d, const lp2p_peer_id *peer, const char *name,
                                    const char *const *addrs, size_t n_addrs);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_DEVICES_H */
