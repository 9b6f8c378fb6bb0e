/* lp2p/messaging.h - durable messaging over the one swarm (issue 15): a message handed to
 * lp2p_msg_send() is written to an outbox in an SQLite database (WAL, group commit) before the app is
 * told its id is final, then delivered to the peer over a stream of the swarm's existing connection
 * (a connected peer is never dialed again; with no live connection lp2p_swarm_open_stream redials from
 * the peer store) and retried with exponential backoff and jitter until the peer acknowledges it,
 * which it does only after its own durable write. The receiver de-duplicates by (sender, id) across
 * restarts, so the app sees every message once. Written only against the public swarm API.
 *
 * ---- Wire: /lp2p/msg/1.0.0 ---------------------------------------------------------------------
 * The sender opens a stream and writes frames; the receiver answers each with an ACK frame on the same
 * stream. Every frame is length-prefixed (lp2p/lpm.h: uvarint length || payload), payload:
 *   MSG  0x01 | flags (u8, 0) | id (16) | seq (u64 BE) | body (rest)
 *   ACK  0x02 | status (u8, lp2p_msg_status) | id (16) | retry_after_ms (u32 BE)
 * A stream carries any number of MSG frames in a row (pipelined, up to `window` un-answered); the
 * sender half-closes it when it has nothing in flight, the receiver then closes its side. A frame the
 * receiver cannot parse is answered REJECTED when its id is readable, else the stream is reset.
 *
 * ---- Life of an outgoing message ---------------------------------------------------------------
 *   send() -> QUEUED (durable, id final) -> SENT (per attempt) -> DELIVERED (acked)
 *                                        \-> RETRY (attempt failed: no connection, stream lost, no
 *                                             answer within ack_timeout_ms, peer's inbox full, peer's
 *                                             store error) -> ... -> FAILED (dead letter: max_attempts
 *                                             reached, or the peer answered TOO_LARGE / REJECTED)
 *                                        \-> EXPIRED (dead letter: ttl_ms passed)
 * Backoff after attempt n: backoff_base_ms * 2^(n-1), capped at backoff_max_ms, plus up to 25 % jitter.
 * A peer's (re)connection makes every waiting message for it due at once. RATE_LIMITED answers are not
 * attempts: the sender pauses that peer for the retry_after_ms the receiver gave, then resends.
 * With `ordered` set, a conversation (peer) has at most one message in flight and messages go in
 * sequence order, so the receiving app sees them in order; otherwise they are pipelined (faster) and
 * may arrive out of order after retries.
 *
 * ---- Receiving -----------------------------------------------------------------------------------
 * Checks per MSG, in order: size (> max_msg_size: TOO_LARGE), the sender's token buckets (messages/s and
 * bytes/s: RATE_LIMITED with the wait until enough tokens), then the inbox: a new (sender, id) is stored;
 * when that write has committed the ACK (OK) goes out and RECEIVED is raised; an (sender, id) seen
 * before, even before a restart, is answered DUPLICATE after the current batch commits and NOT raised
 * again (so a replayed frame never reaches the app twice); an inbox over its quota answers INBOX_FULL
 * (nothing stored; the sender retries later). With manual_ack 0 (default) only the de-duplication record is
 * written (already taken, no body, outside the inbox quota) and RECEIVED carries the body once it has
 * committed: a crash between that commit and the app's handling of RECEIVED loses the message for the app
 * (never a duplicate). With manual_ack 1 the body is stored and stays in the inbox (lp2p_msg_inbox, across
 * restarts, counted against the quota) until lp2p_msg_inbox_ack: nothing is lost.
 * DELIVERED is raised as soon as the ack arrives (the peer has it durably); the local "delivered" mark is
 * committed with the next batch; if the process dies before, the next run sends the message again, the
 * peer answers DUPLICATE and DELIVERED is raised once more for that id (receipts may repeat after a
 * crash; deliveries to the receiving app never do).
 *
 * ---- Time, threads, memory -----------------------------------------------------------------------
 * Deadlines in the database use the wall clock (ms since the epoch) so they survive restarts. Loop
 * thread only (lp2p/swarm.h). Events are delivered through cfg.on_event, never from inside the call
 * that caused them; pointers in an event are valid during the call only. Pending outgoing messages are
 * also held in memory (bodies included) while the service runs. */
#ifndef LP2P_MESSAGING_H
#define LP2P_MESSAGING_H
#include "lp2p/swarm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_MSG_PROTOCOL_ID "/lp2p/msg/1.0.0"
#define LP2P_MSG_BEHAVIOUR "messaging"
#define LP2P_MSG_ID_LEN 16
/* Largest frame payload a receiver reads at all (bigger: the stream is reset). */
#define LP2P_MSG_FRAME_MAX (16u * 1024u * 1024u)

#define LP2P_MSG_FRAME_MSG 0x01
#define LP2P_MSG_FRAME_ACK 0x02
#define LP2P_MSG_HDR_LEN 26 /* MSG payload header: type, flags, id, seq */
#define LP2P_MSG_ACK_LEN 22 /* ACK payload */

/* A 128-bit message id: random, assigned at send(), the idempotency key of every retry. */
typedef struct lp2p_msg_id {
  uint8_t b[LP2P_MSG_ID_LEN];
} lp2p_msg_id;

/* The receiver's answer to a MSG (ACK status byte). */
typedef enum lp2p_msg_status {
  LP2P_MSG_OK = 0,           /* stored durably (new) */
  LP2P_MSG_DUPLICATE = 1,    /* (sender, id) seen before: already stored, not delivered again */
  LP2P_MSG_RATE_LIMITED = 2, /* over the per-peer rate; retry after retry_after_ms */
  LP2P_MSG_TOO_LARGE = 3,    /* body larger than the receiver's max_msg_size (final) */
  LP2P_MSG_INBOX_FULL = 4,   /* the receiver's inbox quota is used up; retry later */
  LP2P_MSG_REJECTED = 5,     /* malformed frame (seq 0, bad flags) (final) */
  LP2P_MSG_UNAVAILABLE = 6   /* the receiver's store failed; retry later */
} lp2p_msg_status;

/* "ok", "duplicate", "rate-limited", "too-large", "inbox-full", "rejected", "unavailable", "unknown". */
LP2P_EXTERN const char *lp2p_msg_status_name(int status);

typedef enum lp2p_msg_event_type {
  LP2P_MSG_EV_QUEUED = 1,    /* id, peer, seq: durably in the outbox */
  LP2P_MSG_EV_SENT = 2,      /* id, peer, seq, attempts (this one counted from 1): written to a stream */
  LP2P_MSG_EV_DELIVERED = 3, /* id, peer, seq: the peer acknowledged (OK or DUPLICATE); durable here too */
  LP2P_MSG_EV_RETRY = 4,     /* id, peer, err, status, attempts, retry_after_ms: attempt failed, will retry */
  LP2P_MSG_EV_FAILED = 5,    /* id, peer, err, status, reason: dead letter ("attempts", "too-large",
                                "rejected", or "outbox": the durable write failed, err set) */
  LP2P_MSG_EV_EXPIRED = 6,   /* id, peer, reason "ttl": dead letter, the TTL passed */
  LP2P_MSG_EV_RECEIVED = 7   /* id, peer (the sender), seq, body: a new message, durably in our inbox */
} lp2p_msg_event_type;

typedef struct lp2p_msg_event {
  size_t struct_size;
  lp2p_msg_event_type type;
  lp2p_msg_id id;
  const lp2p_peer_id *peer;
  uint64_t seq;
  const uint8_t *body; /* RECEIVED */
  size_t body_len;
  int err;             /* LP2P_ERR_* cause (RETRY, FAILED), 0 if the peer answered */
  int status;          /* the peer's answer (lp2p_msg_status) when there was one, else -1 */
  const char *reason;  /* FAILED / EXPIRED */
  uint32_t attempts;
  uint64_t retry_after_ms; /* RETRY: until the next attempt */
} lp2p_msg_event;

typedef struct lp2p_msg_service lp2p_msg_service;
typedef void (*lp2p_msg_event_fn)(lp2p_msg_service *ms, const lp2p_msg_event *ev, void *ud);

typedef struct lp2p_msg_config {
  size_t struct_size;       /* sizeof(lp2p_msg_config); set by lp2p_msg_config_default */
  const char *db_path;      /* REQUIRED: the SQLite database (created if missing); copied */
  int sync_normal;          /* 0: fsync the WAL at each commit (default); 1: survive a crash, not power loss */
  uint32_t max_attempts;    /* dead letter after this many attempts; default 10 */
  uint64_t ttl_ms;          /* dead letter this long after send(); default 7 days; 0 = never */
  uint64_t backoff_base_ms; /* default 1000 */
  uint64_t backoff_max_ms;  /* default 300000 (5 min) */
  uint32_t ack_timeout_ms;  /* an attempt without answer this long fails (stream reset); default 10000 */
  uint32_t max_msg_size;    /* bodies larger are refused (send: TOO_LARGE; receiving: TOO_LARGE); 1 MiB */
  uint32_t window;          /* un-answered messages in flight per peer; default 4096 (ordered: 1) */
  int ordered;              /* 1: in-order delivery per conversation (one in flight) */
  /* receiver: per-sender token buckets; 0 = unlimited (default) */
  uint32_t rate_msgs_per_s, rate_msgs_burst;   /* burst 0 = one second's worth */
  uint64_t rate_bytes_per_s, rate_bytes_burst;
  /* quotas (0 = the store's defaults: outbox 100000 pending, inbox 10000 un-taken msgs / 64 MiB) */
  uint64_t outbox_max_msgs, inbox_max_msgs, inbox_max_bytes;
  int manual_ack;           /* see header */
  uint32_t flush_delay_ms;  /* group-commit window: writes are committed this long after the first
                               (0 = at the next loop turn, default) */
  lp2p_msg_event_fn on_event; /* optional */
  void *ud;
} lp2p_msg_config;

LP2P_EXTERN void lp2p_msg_config_default(lp2p_msg_config *cfg);

/* Adds the messaging behaviour: opens (creating/migrating) the database, loads the pending outbox
 * (delivery of what was pending resumes at once) and registers /lp2p/msg/1.0.0. cfg is copied.
 * *out (optional) is owned by the swarm (freed at lp2p_swarm_free, which commits what is pending).
 * Errors: LP2P_ERR_INVAL (no db_path), LP2P_ERR_EXISTS, LP2P_ERR_IO (database), LP2P_ERR_NOMEM. */
LP2P_EXTERN int lp2p_msg_add(lp2p_swarm *sw, const lp2p_msg_config *cfg, lp2p_msg_service **out);
/* The service added to sw, or NULL. */
LP2P_EXTERN lp2p_msg_service *lp2p_msg_get(lp2p_swarm *sw);

/* Queues body (copied) for peer. *id receives the message id at once; the id is final (and the message
 * will be delivered or dead-lettered, never lost) when QUEUED with that id is raised, after the
 * outbox write has committed; if that write fails, FAILED (reason "outbox") is raised instead.
 * Errors (nothing queued): LP2P_ERR_INVAL, LP2P_ERR_TOO_LARGE (> max_msg_size), LP2P_ERR_LIMIT
 * (outbox quota), LP2P_ERR_IO, LP2P_ERR_NOMEM. Sending to ourselves: LP2P_ERR_INVAL. */
LP2P_EXTERN int lp2p_msg_send(lp2p_msg_service *ms, const lp2p_peer_id *peer, const uint8_t *body, size_t len,
                              lp2p_msg_id *id);

/* Outgoing message state (from the database). */
typedef enum lp2p_msg_state {
  LP2P_MSG_STATE_PENDING = 0,
  LP2P_MSG_STATE_DELIVERED = 1,
  LP2P_MSG_STATE_DEAD = 2
} lp2p_msg_state;
/* 0 and *state / *attempts (either may be NULL), or LP2P_ERR_NOT_FOUND. Sees uncommitted writes. */
LP2P_EXTERN int lp2p_msg_outbox_state(lp2p_msg_service *ms, const lp2p_msg_id *id, lp2p_msg_state *state,
                                      uint32_t *attempts);
/* Outgoing messages not yet delivered or dead (in memory). */
LP2P_EXTERN size_t lp2p_msg_pending(const lp2p_msg_service *ms);

/* Inbox (manual_ack): calls fn for up to max un-taken messages in arrival order; returns the count or an
 * error. Pointers valid during fn only. */
typedef void (*lp2p_msg_inbox_fn)(void *ud, const lp2p_peer_id *from, const lp2p_msg_id *id, uint64_t seq,
                                  const uint8_t *body, size_t len);
LP2P_EXTERN int lp2p_msg_inbox(lp2p_msg_service *ms, size_t max, lp2p_msg_inbox_fn fn, void *ud);
/* The app has taken the message: its body is dropped (the de-duplication record stays). Durable at the
 * next commit. LP2P_ERR_NOT_FOUND if unknown or already taken. */
LP2P_EXTERN int lp2p_msg_inbox_ack(lp2p_msg_service *ms, const lp2p_peer_id *from, const lp2p_msg_id *id);

/* Commits what is pending now (also raises the events that wait for it). 0 or the commit's error. Not
 * from inside a messaging event. */
LP2P_EXTERN int lp2p_msg_flush(lp2p_msg_service *ms);

/* Lowercase hex of an id into buf (>= 33 bytes); returns buf. */
LP2P_EXTERN char *lp2p_msg_id_hex(const lp2p_msg_id *id, char *buf);
/* Parses 32 hex digits; 0 or LP2P_ERR_PARSE. */
LP2P_EXTERN int lp2p_msg_id_parse(const char *hex, lp2p_msg_id *id);

/* Frame codec (exposed for tests, fuzzing and other implementations). decode: 0 and the fields (body
 * points into p), or LP2P_ERR_PARSE. */
typedef struct lp2p_msg_frame {
  uint8_t type; /* LP2P_MSG_FRAME_MSG / _ACK */
  uint8_t flags_or_status;
  lp2p_msg_id id;
  uint64_t seq;             /* MSG */
  uint32_t retry_after_ms;  /* ACK */
  const uint8_t *body;      /* MSG */
  size_t body_len;
} lp2p_msg_frame;
LP2P_EXTERN int lp2p_msg_frame_decode(const uint8_t *p, size_t n, lp2p_msg_frame *f);
/* Encodes the payload header of f (MSG: LP2P_MSG_HDR_LEN bytes, the body follows; ACK: LP2P_MSG_ACK_LEN)
 * into out; returns its length or LP2P_ERR_INVAL. */
LP2P_EXTERN int lp2p_msg_frame_encode_head(const lp2p_msg_frame *f, uint8_t out[LP2P_MSG_HDR_LEN]);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_MESSAGING_H */
