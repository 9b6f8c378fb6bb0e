/* lp2p/files.h - resumable, verified file transfer over the one swarm (issue 15), on its own stream
 * protocol /lp2p/file/2.0.0. Written only against the public swarm API; progress is kept in the same
 * SQLite database as messaging (lp2p/messaging.h), so it survives restarts of either side.
 *
 * ---- Wire ------------------------------------------------------------------------------------------
 * One stream per transfer attempt. Control frames are length-prefixed (lp2p/lpm.h); payloads:
 *   OFFER  0x10 | id (16) | size (u64 BE) | chunk_size (u32 BE) | n_chunks (u32 BE) | sha256 (32)
 *               | name_len (u16 BE) | name | n_chunks x hash (32 each)            (sender -> receiver)
 *   ACCEPT 0x11 | id (16) | first_chunk (u32 BE): send from this chunk on         (receiver -> sender)
 *   REJECT 0x12 | id (16) | reason (u8, lp2p_files_reject)                        (receiver -> sender)
 *   DONE   0x13 | id (16) | sha256 (32): the file is verified and in place       (receiver -> sender)
 * After ACCEPT the sender writes the raw bytes of chunks first_chunk.. to the end (no framing; sizes come
 * from the manifest) and half-closes. n_chunks = ceil(size / chunk_size) (0 for an empty file).
 * chunk_size is a multiple of 64 (SHA-256 blocks). Hash i (i < n_chunks - 1) is the SHA-256 midstate after
 * absorbing chunks 0..i (the 8 state words, big-endian; lp2p_sha256_midstate), the last is the whole-file
 * sha256 (the same as the header's): one SHA-256 pass on each side hashes the manifest and verifies every
 * chunk, and a resume continues from the midstate of the last verified chunk. (1.0.0 had independent
 * per-chunk SHA-256 and cost two passes per side; it is not spoken any more.)
 *
 * ---- Receiver --------------------------------------------------------------------------------------
 * Accept policy: size <= max_file_size, the bytes of all unfinished incoming transfers <= quota_bytes,
 * a usable name (its last path component; "." / ".." / empty refused). Data goes to
 * recv_dir/.lp2p-<id>.part; each chunk is checked against its hash when complete (a bad chunk resets the
 * stream: the sender retries from the last verified chunk; the last chunk is checked by the whole-file hash); verified chunks are recorded in the database
 * after an fdatasync of the temp file, so a resume never trusts bytes that were not on disk. When the
 * last chunk verifies (the whole-file SHA-256), the file is fsynced and renamed atomically to
 * recv_dir/<name> (or <name>.1, .2, ... if taken), the directory fsynced, the completion recorded, and
 * only then DONE is sent and RECEIVED raised. An OFFER for a transfer already completed is answered DONE
 * again (no second RECEIVED); for an unfinished one with the same manifest the answer is ACCEPT from the
 * first unverified chunk (resume after a broken connection or a restart of either side).
 *
 * ---- Sender ----------------------------------------------------------------------------------------
 * lp2p_files_send hashes the file (one pass: midstates and whole), records the transfer durably (QUEUED), then
 * delivers it: retries with exponential backoff (backoff_base_ms.. backoff_max_ms, jitter) and at once
 * when the peer reconnects; the attempt counter restarts whenever a retry made progress; after
 * max_attempts attempts without progress, or a REJECT, FAILED. Unfinished transfers are resumed by
 * lp2p_files_add after a restart. The file must not change while it is sent (chunks are re-read).
 * Several transfers run at once (one stream each, the muxer shares the connection fairly).
 *
 * Events come through cfg.on_event, never from inside the call that caused them. Loop thread only.
 * The sender's manifest pass runs in lp2p_files_send (a helper thread reads ahead while it hashes), its
 * reads while sending on the loop thread. Each incoming transfer has a writer thread
 * (joined when its stream closes or the service goes) that writes, hashes, verifies each chunk and
 * fdatasyncs, and reports to the loop (lp2p_swarm_post) the chunks that are verified and on disk; the loop
 * only queues the stream's bytes, crediting them to the stream's window at once until 32 MiB are queued
 * (then the sender waits until the queue is under 8 MiB). PROGRESS on the receiver counts written bytes. */
#ifndef LP2P_FILES_H
#define LP2P_FILES_H
#include "lp2p/swarm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_FILES_PROTOCOL_ID "/lp2p/file/2.0.0"
#define LP2P_FILES_BEHAVIOUR "files"
#define LP2P_FILES_OFFER_MAX (8u * 1024u * 1024u) /* largest OFFER frame accepted */

#define LP2P_FILES_FRAME_OFFER 0x10
#define LP2P_FILES_FRAME_ACCEPT 0x11
#define LP2P_FILES_FRAME_REJECT 0x12
#define LP2P_FILES_FRAME_DONE 0x13

typedef struct lp2p_files_id {
  uint8_t b[16];
} lp2p_files_id;

typedef enum lp2p_files_reject {
  LP2P_FILES_REJECT_TOO_LARGE = 1, /* size > max_file_size */
  LP2P_FILES_REJECT_QUOTA = 2,     /* not enough quota now */
  LP2P_FILES_REJECT_BAD_OFFER = 3, /* malformed manifest or name, or a different manifest for a known id */
  LP2P_FILES_REJECT_IO = 4,        /* the receiver cannot write */
  LP2P_FILES_REJECT_REFUSED = 5    /* the application's accept hook said no */
} lp2p_files_reject;
/* "too-large", "quota", "bad-offer", "io", "refused", "unknown". */
LP2P_EXTERN const char *lp2p_files_reject_name(int reason);

typedef enum lp2p_files_event_type {
  LP2P_FILES_EV_QUEUED = 1,    /* outgoing: hashed and durably recorded */
  LP2P_FILES_EV_PROGRESS = 2,  /* either side: bytes, total, rate, eta (at most every progress_ms) */
  LP2P_FILES_EV_DELIVERED = 3, /* outgoing: the receiver verified and stored it (sha256) */
  LP2P_FILES_EV_RETRY = 4,     /* outgoing: attempt failed (err), next in retry_after_ms */
  LP2P_FILES_EV_FAILED = 5,    /* outgoing: final (err, reason: "attempts" or a reject name) */
  LP2P_FILES_EV_RECEIVED = 6   /* incoming: verified, renamed into place: path, size, sha256 */
} lp2p_files_event_type;

typedef struct lp2p_files_event {
  size_t struct_size;
  lp2p_files_event_type type;
  lp2p_files_id id;
  const lp2p_peer_id *peer;
  int outgoing;
  const char *name;  /* the offered name */
  const char *path;  /* RECEIVED: the final path; outgoing: the source path */
  uint64_t bytes;    /* PROGRESS: bytes done (sent or verified-written) */
  uint64_t total;
  double rate;       /* PROGRESS: bytes/s over this attempt */
  double eta_s;      /* PROGRESS: seconds left at that rate (-1 unknown) */
  uint8_t sha256[32];/* DELIVERED, RECEIVED */
  int err;
  const char *reason;
  uint32_t attempts;
  uint64_t retry_after_ms;
  uint64_t resumed_from; /* PROGRESS: bytes already verified when this attempt started (a resume if > 0) */
} lp2p_files_event;

typedef struct lp2p_files_service lp2p_files_service;
typedef void (*lp2p_files_event_fn)(lp2p_files_service *fs, const lp2p_files_event *ev, void *ud);
/* Optional accept hook: non-zero accepts an offer (after the size/quota checks). */
typedef int (*lp2p_files_accept_fn)(lp2p_files_service *fs, const lp2p_peer_id *from, const char *name,
                                    uint64_t size, void *ud);

typedef struct lp2p_files_config {
  size_t struct_size;        /* sizeof(lp2p_files_config); set by lp2p_files_config_default */
  const char *db_path;       /* REQUIRED: its SQLite database; NOT messaging's file (each service keeps its own
                                write transaction open between commits); copied */
  const char *recv_dir;      /* where received files go; NULL = refuse every offer (send only); copied */
  uint64_t max_file_size;    /* default 4 GiB */
  uint64_t quota_bytes;      /* unfinished incoming bytes at once; default 16 GiB */
  uint32_t chunk_size;       /* sender: default 1 MiB; rounded up to a multiple of 64 */
  uint32_t max_attempts;     /* attempts without progress before FAILED; default 10 */
  uint64_t backoff_base_ms;  /* default 1000 */
  uint64_t backoff_max_ms;   /* default 300000 */
  uint32_t idle_timeout_ms;  /* an attempt with no bytes moving this long is reset; default 30000 */
  uint32_t progress_ms;      /* PROGRESS period; default 250 */
  uint32_t sync_every_chunks;/* receiver: fdatasync + record every this many verified chunks; default 16 */
  lp2p_files_accept_fn accept;
  lp2p_files_event_fn on_event;
  void *ud;
} lp2p_files_config;

LP2P_EXTERN void lp2p_files_config_default(lp2p_files_config *cfg);

/* Adds the file-transfer behaviour: opens the database, registers /lp2p/file/2.0.0, resumes unfinished
 * outgoing transfers. *out (optional) is owned by the swarm. Errors: LP2P_ERR_INVAL, LP2P_ERR_EXISTS,
 * LP2P_ERR_IO, LP2P_ERR_NOMEM. */
LP2P_EXTERN int lp2p_files_add(lp2p_swarm *sw, const lp2p_files_config *cfg, lp2p_files_service **out);
LP2P_EXTERN lp2p_files_service *lp2p_files_get(lp2p_swarm *sw);

/* Sends the regular file at path to peer. Hashes it now (blocking). *id receives the transfer id; QUEUED
 * follows once it is recorded. Errors: LP2P_ERR_INVAL, LP2P_ERR_IO (cannot open/read: not a regular
 * file), LP2P_ERR_NOMEM. */
LP2P_EXTERN int lp2p_files_send(lp2p_files_service *fs, const lp2p_peer_id *peer, const char *path,
                                lp2p_files_id *id);
/* Unfinished outgoing transfers. */
LP2P_EXTERN size_t lp2p_files_pending(const lp2p_files_service *fs);

/* Streaming SHA-256 used by the transfer (SHA-NI when the CPU has it, else libsodium). */
typedef struct lp2p_sha256_ctx {
  uint32_t h[8];
  uint64_t n;
  uint8_t buf[64];
  size_t blen;
} lp2p_sha256_ctx;
LP2P_EXTERN void lp2p_sha256_init(lp2p_sha256_ctx *c);
LP2P_EXTERN void lp2p_sha256_update(lp2p_sha256_ctx *c, const uint8_t *p, size_t n);
LP2P_EXTERN void lp2p_sha256_final(lp2p_sha256_ctx *c, uint8_t out[32]);
/* The midstate: the 8 state words (big-endian, 32 bytes) after absorbing a multiple of 64 bytes; -1 if
 * the absorbed length is not one. lp2p_sha256_resume sets c to continue after `absorbed` bytes (a multiple
 * of 64, else -1) whose midstate is mid: init + update(x) + midstate == resume(midstate, |x|). */
LP2P_EXTERN int lp2p_sha256_midstate(const lp2p_sha256_ctx *c, uint8_t out[32]);
LP2P_EXTERN int lp2p_sha256_resume(lp2p_sha256_ctx *c, const uint8_t mid[32], uint64_t absorbed);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_FILES_H */
