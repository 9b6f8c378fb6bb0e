/* lp2p/perf.h - the libp2p perf protocol (/perf/1.0.0) as a swarm behaviour,
 * written only against the public swarm API (lp2p/swarm.h).
 *
 * Wire (libp2p/specs perf/perf.md): the client opens a stream, writes the
 * number of bytes it wants back as an 8-byte big-endian integer, then its
 * upload bytes, and closes its write side. The server counts bytes until EOF,
 * then sends the requested number of bytes and closes its write side.
 *
 * Both sides respect backpressure: they write from a fixed block and continue
 * on on_writable, and discard what they receive (auto-consume), so memory use
 * does not depend on the transfer size. Byte counts are exact (uint64_t).
 *
 * Threading: loop thread only (see lp2p/swarm.h). */
#ifndef LP2P_PERF_H
#define LP2P_PERF_H
#include "lp2p/swarm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_PERF_PROTOCOL_ID "/perf/1.0.0"
#define LP2P_PERF_BEHAVIOUR "perf"

typedef struct lp2p_perf_service lp2p_perf_service;

/* One finished perf stream. Client: uploaded = bytes sent after the header,
 * downloaded = bytes received; upload_us = on_open until every upload byte was
 * accepted and the write side closed; download_us = from then until the
 * server's EOF; total_us = on_open until EOF. Server: uploaded = bytes
 * received after the header, downloaded = bytes sent back; upload_us = open
 * until the client's EOF; download_us = from then until our last byte was
 * accepted. */
typedef struct lp2p_perf_result {
  size_t struct_size;
  uint64_t uploaded, downloaded;
  uint64_t upload_us, download_us, total_us;
} lp2p_perf_result;

/* err 0 on success (r valid during the call; r is also passed, with the
 * counts so far, on failure). Errors: LP2P_ERR_PROTO (the server sent a
 * different number of bytes than requested), LP2P_ERR_TIMEOUT (no progress
 * for idle_timeout_ms), LP2P_ERR_UNSUPPORTED, LP2P_ERR_RESET, dial errors,
 * LP2P_ERR_CANCELED (swarm freed). */
typedef void (*lp2p_perf_fn)(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_perf_result *r,
                             void *ud);

typedef struct lp2p_perf_config {
  size_t struct_size;            /* sizeof(lp2p_perf_config); set by lp2p_perf_config_default */
  uint64_t max_download;         /* server: largest request served (bigger: reset); default 0 = no limit */
  uint32_t idle_timeout_ms;      /* both sides: reset a stream without progress this long; default 30000 */
  lp2p_perf_fn on_served;        /* server: called once per finished inbound stream (optional) */
  void *ud;                      /* borrowed, for on_served */
} lp2p_perf_config;

LP2P_EXTERN void lp2p_perf_config_default(lp2p_perf_config *cfg);

/* Adds the perf server behaviour. cfg may be NULL; it is copied. *out
 * (optional) is owned by the swarm. Errors: LP2P_ERR_NOMEM, LP2P_ERR_EXISTS. */
LP2P_EXTERN int lp2p_perf_add(lp2p_swarm *sw, const lp2p_perf_config *cfg, lp2p_perf_service **out);

/* Runs one perf exchange with peer: upload bytes up, download bytes back.
 * cb is called exactly once, never from inside this call. The idle timeout is
 * the behaviour's (if added) or 30 s. Sync errors: LP2P_ERR_INVAL,
 * LP2P_ERR_NOMEM, LP2P_ERR_STATE. */
LP2P_EXTERN int lp2p_perf_run(lp2p_swarm *sw, const lp2p_peer_id *peer, uint64_t upload, uint64_t download,
                              lp2p_perf_fn cb, void *ud);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_PERF_H */
