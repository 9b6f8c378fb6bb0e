/* protocols/messaging/store.h - the durable store behind messaging and file transfer (issue 15): the
 * outbox, the inbox with its de-duplication state, file-transfer progress and a generic key/value table
 * for later hooks (paired devices, peers). Internal header (not installed): the messaging behaviour is
 * its user; an application may plug its own store by filling an lp2p_msgstore_ops.
 *
 * ---- Model -------------------------------------------------------------------------------------------
 * A store is an object whose first member is `const lp2p_msgstore_ops *ops`. Call it through the inline
 * wrappers below (they return LP2P_ERR_UNSUPPORTED for an operation an older, shorter ops table lacks:
 * struct_size rule, append fields only).
 *
 * ---- Group commit and durability --------------------------------------------------------------------
 * Every mutating call (outbox_put, mark_*, inbox_put_if_new, inbox_ack, xfer_*, kv_put/del, inbox_prune)
 * is applied at once to the store's current write batch, so its result (id, seq, NEW/DUPLICATE, quota
 * error) is known when the call returns and later reads see it, but it is NOT durable yet. It becomes
 * durable when lp2p_msgstore_flush() commits the batch (SQLite: one transaction, fsync of the WAL with
 * synchronous=FULL). Each call may pass a completion `done(ud, status)`; it fires exactly once, from inside
 * a later flush() (or close()), never from inside the call that queued it: status 0 after COMMIT returned,
 * or a negative error if the batch could not be committed (then every write of the batch is gone, and
 * every done of the batch gets that error). Close flushes what is pending.
 *
 * So: messaging.send() reports its id to the app only from outbox_put's done; the receiver acknowledges a
 * message to the sender (and hands it to the app) only after inbox_put_if_new's done. The behaviour calls
 * flush() once per loop turn (or on a short timer); the more writes per flush, the fewer fsyncs.
 *
 * ---- Time ---------------------------------------------------------------------------------------------
 * The store never reads a clock: `now`, `next_at` and `expires_at` come from the caller. They are stored
 * and compared across restarts, so the caller must use a clock that survives a restart (wall-clock
 * milliseconds since the Unix epoch), not the swarm's monotonic lp2p_tstamp.
 *
 * ---- Threading ----------------------------------------------------------------------------------------
 * One store object is used from one thread at a time (the loop thread); no internal thread, no locking.
 * Several processes may open the same file (SQLite WAL + busy timeout) but that is not the intended use.
 *
 * ---- Memory -------------------------------------------------------------------------------------------
 * Input pointers are read during the call only. Records returned (lp2p_msgstore_msg, _xfer, kv values)
 * point into store-owned memory valid until the next call on the same store.
 */
#ifndef LP2P_MESSAGING_STORE_H
#define LP2P_MESSAGING_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "lp2p/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_MSGID_LEN 16
/* A 128-bit message id: random (libsodium), assigned by outbox_put, the idempotency key of every retry. */
typedef struct lp2p_msgid {
  uint8_t b[LP2P_MSGID_LEN];
} lp2p_msgid;

/* Peers (and conversations) are opaque byte strings up to this length: a peer id's multihash bytes. */
#define LP2P_MSGSTORE_PEER_MAX 64

typedef enum lp2p_outbox_state {
  LP2P_OUTBOX_PENDING = 0,   /* waiting for (re)transmission */
  LP2P_OUTBOX_DELIVERED = 1, /* the peer acknowledged it */
  LP2P_OUTBOX_DEAD = 2,      /* dead letter: too many attempts, TTL passed, or mark_dead */
  LP2P_OUTBOX_ANY = 3        /* list filter only */
} lp2p_outbox_state;

/* inbox_put_if_new results (non-negative). */
#define LP2P_INBOX_NEW 1
#define LP2P_INBOX_DUPLICATE 0

/* One outbox or inbox message. For the inbox, `peer` is the sender, state/attempts/next_at/expires_at
 * are 0, `acked` says whether the app has taken it. `body` may be NULL when len is 0 (or the body was
 * dropped after the ack). */
typedef struct lp2p_msgstore_msg {
  lp2p_msgid id;
  uint8_t peer[LP2P_MSGSTORE_PEER_MAX];
  size_t peer_len;
  uint64_t seq;            /* per-conversation (per peer) sequence number, from 1 */
  const uint8_t *body;
  size_t body_len;
  lp2p_outbox_state state; /* outbox */
  uint32_t attempts;       /* outbox: transmissions recorded by mark_attempt */
  uint64_t created_at;
  uint64_t next_at;        /* outbox: when the next attempt is due */
  uint64_t expires_at;     /* outbox: TTL deadline (0 = none) */
  const char *dead_reason; /* outbox, DEAD only: "ttl", "attempts", or mark_dead's reason */
  int acked;               /* inbox */
} lp2p_msgstore_msg;

/* File-transfer progress: which chunks are verified. bitmap bit i (byte i/8, bit i%8, LSB first) = chunk i
 * verified; verified_prefix = number of leading verified chunks (so the resume offset is
 * verified_prefix * chunk_size). */
typedef struct lp2p_msgstore_xfer {
  uint8_t id[LP2P_MSGID_LEN];
  uint8_t peer[LP2P_MSGSTORE_PEER_MAX];
  size_t peer_len;
  uint8_t manifest_hash[64];
  size_t manifest_hash_len;
  uint64_t total_size;
  uint32_t chunk_size;
  uint32_t n_chunks;
  uint32_t n_verified;
  uint32_t verified_prefix;
  const uint8_t *bitmap; /* (n_chunks + 7) / 8 bytes */
  int outgoing;
  uint64_t updated_at;
} lp2p_msgstore_xfer;

typedef void (*lp2p_msgstore_done_fn)(void *ud, int status);

typedef struct lp2p_msgstore lp2p_msgstore;

typedef struct lp2p_msgstore_ops {
  size_t struct_size; /* sizeof(lp2p_msgstore_ops) of the implementation */
  /* Flushes what is pending (fires its completions), then frees the store. */
  void (*close)(lp2p_msgstore *s);
  /* Commits the current batch; fires its completions. Returns 0, or the commit error (the completions got
   * it too). Nothing pending: 0 at once. */
  int (*flush)(lp2p_msgstore *s);
  /* Number of writes in the current (uncommitted) batch. */
  size_t (*pending)(lp2p_msgstore *s);

  /* Outbox. put assigns *id (random 128-bit) and *seq (next of the conversation = peer); LP2P_ERR_LIMIT
   * when the outbox holds outbox_max_msgs pending messages. The message is due at `now`. */
  int (*outbox_put)(lp2p_msgstore *s, const uint8_t *peer, size_t peer_len, const uint8_t *body,
                    size_t body_len, uint64_t now, uint64_t expires_at, lp2p_msgid *id, uint64_t *seq,
                    lp2p_msgstore_done_fn done, void *ud);
  /* The pending message with the earliest next_at <= now (ties: oldest), first turning every pending
   * message whose expires_at (non-zero) <= now into a dead letter ("ttl"). Returns 1 and fills *out, or 0
   * when none is due; then *wake (if non-NULL) = the earliest next_at of a pending message, or
   * LP2P_TSTAMP_NEVER. The expiry writes are part of the current batch. */
  int (*outbox_next_due)(lp2p_msgstore *s, uint64_t now, lp2p_msgstore_msg *out, uint64_t *wake);
  /* Records one transmission: attempts += 1, next_at = the next retry. When attempts reaches
   * max_attempts the message becomes a dead letter ("attempts") and 1 is returned; else 0.
   * LP2P_ERR_NOT_FOUND if id is not a pending message. */
  int (*outbox_mark_attempt)(lp2p_msgstore *s, const lp2p_msgid *id, uint64_t next_at,
                             lp2p_msgstore_done_fn done, void *ud);
  /* PENDING -> DELIVERED (the body is dropped). LP2P_ERR_NOT_FOUND if not pending. */
  int (*outbox_mark_delivered)(lp2p_msgstore *s, const lp2p_msgid *id, lp2p_msgstore_done_fn done,
                               void *ud);
  /* PENDING -> DEAD with a reason (copied, truncated to 63 bytes). LP2P_ERR_NOT_FOUND if not pending. */
  int (*outbox_mark_dead)(lp2p_msgstore *s, const lp2p_msgid *id, const char *reason,
                          lp2p_msgstore_done_fn done, void *ud);
  int (*outbox_get)(lp2p_msgstore *s, const lp2p_msgid *id, lp2p_msgstore_msg *out);
  /* Up to max messages in `state` (or ANY), oldest first, skipping the first `offset`; returns the count. */
  int (*outbox_list)(lp2p_msgstore *s, lp2p_outbox_state state, size_t offset, lp2p_msgstore_msg *out,
                     size_t max);

  /* Inbox. LP2P_INBOX_NEW (stored, not yet acked to the app) or LP2P_INBOX_DUPLICATE ((sender, id) seen
   * before, even if acked or before a restart; nothing written, done still fires after the next commit
   * so the caller can ack the sender then). LP2P_ERR_LIMIT (quota: inbox_max_msgs un-acked messages or
   * inbox_max_bytes of un-acked bodies) for a new message that does not fit: not stored, the sender
   * should retry later; done is not called. */
  int (*inbox_put_if_new)(lp2p_msgstore *s, const uint8_t *sender, size_t sender_len, const lp2p_msgid *id,
                          uint64_t seq, const uint8_t *body, size_t body_len, uint64_t now,
                          lp2p_msgstore_done_fn done, void *ud);
  /* Up to max un-acked messages, in arrival order; returns the count. */
  int (*inbox_list)(lp2p_msgstore *s, lp2p_msgstore_msg *out, size_t max);
  /* The app has taken it: the body is dropped, the (sender, id) record stays for de-duplication.
   * LP2P_ERR_NOT_FOUND if unknown or already acked. */
  int (*inbox_ack)(lp2p_msgstore *s, const uint8_t *sender, size_t sender_len, const lp2p_msgid *id,
                   lp2p_msgstore_done_fn done, void *ud);
  /* Forgets acked de-duplication records received before `before` (when no sender can still retry them,
   * i.e. older than the senders' TTL). Returns how many were dropped. */
  int (*inbox_prune)(lp2p_msgstore *s, uint64_t before, lp2p_msgstore_done_fn done, void *ud);

  /* File-transfer progress. xfer_begin creates (LP2P_ERR_EXISTS if the id exists); n_chunks =
   * ceil(total_size / chunk_size). xfer_mark_chunk sets bit `index` (idempotent; LP2P_ERR_INVAL out of
   * range). xfer_get fills *out (LP2P_ERR_NOT_FOUND). xfer_delete removes it. */
  int (*xfer_begin)(lp2p_msgstore *s, const uint8_t id[LP2P_MSGID_LEN], const uint8_t *peer, size_t peer_len,
                    const uint8_t *manifest_hash, size_t manifest_hash_len, uint64_t total_size,
                    uint32_t chunk_size, int outgoing, uint64_t now, lp2p_msgstore_done_fn done, void *ud);
  int (*xfer_mark_chunk)(lp2p_msgstore *s, const uint8_t id[LP2P_MSGID_LEN], uint32_t index, uint64_t now,
                         lp2p_msgstore_done_fn done, void *ud);
  int (*xfer_get)(lp2p_msgstore *s, const uint8_t id[LP2P_MSGID_LEN], lp2p_msgstore_xfer *out);
  int (*xfer_delete)(lp2p_msgstore *s, const uint8_t id[LP2P_MSGID_LEN], lp2p_msgstore_done_fn done,
                     void *ud);

  /* Generic key/value table in namespaces ("paired", "peers", ...). kv_get: 0 and *val and *val_len (store
   * memory) or LP2P_ERR_NOT_FOUND. kv_del: 0 or LP2P_ERR_NOT_FOUND. kv_list: the (ns) keys in byte order
   * strictly after `after` (NULL = from the start), up to max; keys[i]/key_lens[i] point to store memory;
   * returns the count. */
  int (*kv_put)(lp2p_msgstore *s, const char *ns, const uint8_t *key, size_t key_len, const uint8_t *val,
                size_t val_len, lp2p_msgstore_done_fn done, void *ud);
  int (*kv_get)(lp2p_msgstore *s, const char *ns, const uint8_t *key, size_t key_len, const uint8_t **val,
                size_t *val_len);
  int (*kv_del)(lp2p_msgstore *s, const char *ns, const uint8_t *key, size_t key_len,
                lp2p_msgstore_done_fn done, void *ud);
  int (*kv_list)(lp2p_msgstore *s, const char *ns, const uint8_t *after, size_t after_len,
                 const uint8_t **keys, size_t *key_lens, size_t max);

  /* Appended. inbox_put_if_new for a message the app takes at once: only the de-duplication record
   * (sender, id, seq, body_len) is written, already acked, no body; not counted against the inbox
   * quota. LP2P_INBOX_NEW / LP2P_INBOX_DUPLICATE; done as for inbox_put_if_new. */
  int (*inbox_put_taken)(lp2p_msgstore *s, const uint8_t *sender, size_t sender_len, const lp2p_msgid *id,
                         uint64_t seq, size_t body_len, uint64_t now, lp2p_msgstore_done_fn done, void *ud);
} lp2p_msgstore_ops;

struct lp2p_msgstore {
  const lp2p_msgstore_ops *ops;
};

/* ---- The SQLite implementation (store_sqlite.c) ---- */

typedef enum lp2p_msgstore_sync {
  LP2P_MSGSTORE_SYNC_FULL = 0,   /* default: the WAL is fsynced at every commit (durable on power loss) */
  LP2P_MSGSTORE_SYNC_NORMAL = 1, /* fsync at checkpoints only: survives a process crash, not power loss */
} lp2p_msgstore_sync;

typedef struct lp2p_msgstore_sqlite_opts {
  size_t struct_size;        /* sizeof(lp2p_msgstore_sqlite_opts) */
  const char *path;          /* the database file (e.g. DATA_DIR/messages.db); created if missing */
  lp2p_msgstore_sync sync;
  uint32_t busy_timeout_ms;  /* 0 = 5000 */
  uint32_t max_attempts;     /* outbox dead-letter threshold; 0 = 10 */
  uint64_t outbox_max_msgs;  /* pending outbox quota; 0 = 100000 */
  uint64_t inbox_max_msgs;   /* un-acked inbox quota; 0 = 10000 */
  uint64_t inbox_max_bytes;  /* un-acked inbox bytes quota; 0 = 64 MiB */
  int schema_version;        /* tests only: migrate up to this version, not the latest (0 = latest) */
  uint32_t checkpoint_frames; /* internal: WAL frames after a commit that wake the background checkpointer;
                                 0 = 8192 (32 MiB of 4 KiB pages) */
} lp2p_msgstore_sqlite_opts;

/* The latest schema version this build knows. */
#define LP2P_MSGSTORE_SCHEMA_VERSION 2

/* Opens (creating and migrating as needed) the database at opts->path. *out is the caller's: close with
 * lp2p_msgstore_close. LP2P_ERR_IO on an SQLite error (message on stderr), LP2P_ERR_UNSUPPORTED if the
 * file's schema is newer than this build, LP2P_ERR_INVAL for bad options. */
LP2P_EXTERN int lp2p_msgstore_sqlite_open(lp2p_msgstore **out, const lp2p_msgstore_sqlite_opts *opts);
/* The schema version of an open SQLite store (tests, diagnostics). */
LP2P_EXTERN int lp2p_msgstore_sqlite_schema_version(lp2p_msgstore *s);
/* Tests, diagnostics: blocks until the store's background checkpointer has no request pending and is not
 * running (a condition-variable wait, no polling), then returns how many checkpoint runs it has completed
 * (0 if the store checkpoints inline because no thread could be started). */
LP2P_EXTERN long lp2p_msgstore_sqlite_checkpoint_idle(lp2p_msgstore *s);

/* Exponential backoff helper for the behaviour: base_ms * 2^(attempts-1), capped at max_ms, plus up to
 * jitter_permille/1000 of it taken from `rnd` (any random 32-bit value, 0 = no jitter). */
LP2P_EXTERN uint64_t lp2p_msgstore_backoff(uint32_t attempts, uint64_t base_ms, uint64_t max_ms,
                                           uint32_t jitter_permille, uint32_t rnd);

/* ---- Wrappers ---- */
#define LP2P_MSGSTORE_HAS(s, fn) \
  ((s) && (s)->ops && offsetof(lp2p_msgstore_ops, fn) < (s)->ops->struct_size && (s)->ops->fn)
#define LP2P_MSGSTORE_CALL(s, fn, ...) \
  (LP2P_MSGSTORE_HAS(s, fn) ? (s)->ops->fn((s), __VA_ARGS__) : LP2P_ERR_UNSUPPORTED)

static inline void lp2p_msgstore_close(lp2p_msgstore *s) {
  if (LP2P_MSGSTORE_HAS(s, close)) s->ops->close(s);
}
static inline int lp2p_msgstore_flush(lp2p_msgstore *s) {
  return LP2P_MSGSTORE_HAS(s, flush) ? s->ops->flush(s) : LP2P_ERR_UNSUPPORTED;
}
static inline size_t lp2p_msgstore_pending(lp2p_msgstore *s) {
  return LP2P_MSGSTORE_HAS(s, pending) ? s->ops->pending(s) : 0;
}
#define lp2p_msgstore_outbox_put(s, ...) LP2P_MSGSTORE_CALL(s, outbox_put, __VA_ARGS__)
#define lp2p_msgstore_outbox_next_due(s, ...) LP2P_MSGSTORE_CALL(s, outbox_next_due, __VA_ARGS__)
#define lp2p_msgstore_outbox_mark_attempt(s, ...) LP2P_MSGSTORE_CALL(s, outbox_mark_attempt, __VA_ARGS__)
#define lp2p_msgstore_outbox_mark_delivered(s, ...) LP2P_MSGSTORE_CALL(s, outbox_mark_delivered, __VA_ARGS__)
#define lp2p_msgstore_outbox_mark_dead(s, ...) LP2P_MSGSTORE_CALL(s, outbox_mark_dead, __VA_ARGS__)
#define lp2p_msgstore_outbox_get(s, ...) LP2P_MSGSTORE_CALL(s, outbox_get, __VA_ARGS__)
#define lp2p_msgstore_outbox_list(s, ...) LP2P_MSGSTORE_CALL(s, outbox_list, __VA_ARGS__)
#define lp2p_msgstore_inbox_put_if_new(s, ...) LP2P_MSGSTORE_CALL(s, inbox_put_if_new, __VA_ARGS__)
#define lp2p_msgstore_inbox_put_taken(s, ...) LP2P_MSGSTORE_CALL(s, inbox_put_taken, __VA_ARGS__)
#define lp2p_msgstore_inbox_list(s, ...) LP2P_MSGSTORE_CALL(s, inbox_list, __VA_ARGS__)
#define lp2p_msgstore_inbox_ack(s, ...) LP2P_MSGSTORE_CALL(s, inbox_ack, __VA_ARGS__)
#define lp2p_msgstore_inbox_prune(s, ...) LP2P_MSGSTORE_CALL(s, inbox_prune, __VA_ARGS__)
#define lp2p_msgstore_xfer_begin(s, ...) LP2P_MSGSTORE_CALL(s, xfer_begin, __VA_ARGS__)
#define lp2p_msgstore_xfer_mark_chunk(s, ...) LP2P_MSGSTORE_CALL(s, xfer_mark_chunk, __VA_ARGS__)
#define lp2p_msgstore_xfer_get(s, ...) LP2P_MSGSTORE_CALL(s, xfer_get, __VA_ARGS__)
#define lp2p_msgstore_xfer_delete(s, ...) LP2P_MSGSTORE_CALL(s, xfer_delete, __VA_ARGS__)
#define lp2p_msgstore_kv_put(s, ...) LP2P_MSGSTORE_CALL(s, kv_put, __VA_ARGS__)
#define lp2p_msgstore_kv_get(s, ...) LP2P_MSGSTORE_CALL(s, kv_get, __VA_ARGS__)
#define lp2p_msgstore_kv_del(s, ...) LP2P_MSGSTORE_CALL(s, kv_del, __VA_ARGS__)
#define lp2p_msgstore_kv_list(s, ...) LP2P_MSGSTORE_CALL(s, kv_list, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif /* LP2P_MESSAGING_STORE_H */
