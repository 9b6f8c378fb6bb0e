/* lp2p/ping.h - the libp2p ping protocol (/ipfs/ping/1.0.0) as a swarm
 * behaviour, written only against the public swarm API (lp2p/swarm.h).
 *
 * Wire: raw 32-byte payloads; the listener echoes every byte it receives, in
 * order, on the same stream (many payloads per stream are allowed), and
 * half-closes once the dialer has half-closed and everything was echoed.
 *
 * Server: lp2p_ping_add() registers /ipfs/ping/1.0.0 in the swarm's registry.
 * The echo is flow-controlled (manual consume: bytes are credited back to the
 * peer only once they were queued for sending), at most
 * max_inbound_per_peer streams per peer are served at once (extra ones are
 * reset), a stream that holds more than 4 KiB of unsent echo is reset, and a
 * stream idle for idle_timeout_ms is reset.
 *
 * Client: lp2p_ping() opens ONE NEW STREAM PER PING (the most compatible
 * pattern: js listeners abort ping streams after 10 s, go after 30 s), writes
 * 32 random bytes, half-closes, waits for the same 32 bytes back and reports
 * the round-trip time. It dials through the swarm if the peer is not
 * connected but known in the peer store. A successful ping records the round
 * trip in the peer store (lp2p_peerstore_latency) and marks the peer seen.
 *
 * Threading: loop thread only (see lp2p/swarm.h). */
#ifndef LP2P_PING_H
#define LP2P_PING_H
#include "lp2p/swarm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_PING_PROTOCOL_ID "/ipfs/ping/1.0.0"
#define LP2P_PING_PAYLOAD_SIZE 32
/* Behaviour name (lp2p_swarm_behaviour(sw, LP2P_PING_BEHAVIOUR) gives the lp2p_ping_service). */
#define LP2P_PING_BEHAVIOUR "ping"

typedef struct lp2p_ping_service lp2p_ping_service;

typedef struct lp2p_ping_config {
  size_t struct_size;             /* sizeof(lp2p_ping_config); set by lp2p_ping_config_default */
  uint32_t timeout_ms;            /* client: per ping, stream open included; default 10000 */
  uint32_t idle_timeout_ms;       /* server: reset a stream idle this long; default 30000, 0 = off */
  uint32_t max_inbound_per_peer;  /* server: concurrent inbound ping streams per peer; default 4 */
} lp2p_ping_config;

LP2P_EXTERN void lp2p_ping_config_default(lp2p_ping_config *cfg);

/* Adds the ping behaviour (server + client defaults) to sw. cfg may be NULL
 * (defaults); it is copied. *out (optional) receives the service handle, owned
 * by the swarm (freed by lp2p_swarm_free; valid until then).
 * Errors: LP2P_ERR_NOMEM, LP2P_ERR_EXISTS (already added), swarm errors. */
LP2P_EXTERN int lp2p_ping_add(lp2p_swarm *sw, const lp2p_ping_config *cfg, lp2p_ping_service **out);

/* Inbound ping streams served so far / payload bytes echoed (diagnostics). */
LP2P_EXTERN uint64_t lp2p_ping_served_streams(const lp2p_ping_service *ps);
LP2P_EXTERN uint64_t lp2p_ping_echoed_bytes(const lp2p_ping_service *ps);

/* Ping result: err 0 and rtt_us (microseconds, monotonic clock, from the write
 * of the payload to the arrival of its last echoed byte) on success. Else err:
 * LP2P_ERR_TIMEOUT, LP2P_ERR_UNSUPPORTED (peer does not speak ping),
 * LP2P_ERR_PROTO (wrong echo), LP2P_ERR_EOF (stream ended early), a dial error,
 * LP2P_ERR_NOT_CONNECTED, LP2P_ERR_CANCELED (swarm freed), ... */
typedef void (*lp2p_ping_fn)(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, uint64_t rtt_us, void *ud);

/* Pings peer once. cb is called exactly once, never from inside this call
 * (also with LP2P_ERR_CANCELED from inside lp2p_swarm_free for a ping still in
 * flight). Timeout: the behaviour's timeout_ms if lp2p_ping_add was called,
 * else 10 s. Sync errors (cb not called): LP2P_ERR_INVAL, LP2P_ERR_NOMEM,
 * LP2P_ERR_STATE. */
LP2P_EXTERN int lp2p_ping(lp2p_swarm *sw, const lp2p_peer_id *peer, lp2p_ping_fn cb, void *ud);
/* Same with an explicit timeout (0 = the default above). */
LP2P_EXTERN int lp2p_ping_timeout(lp2p_swarm *sw, const lp2p_peer_id *peer, uint32_t timeout_ms,
                                  lp2p_ping_fn cb, void *ud);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_PING_H */
