/* protocols/messaging/store_sqlite.c - the SQLite implementation of lp2p_msgstore (store.h).
 *
 * One database file, WAL journal, synchronous=FULL by default (the WAL is fsynced at every COMMIT, so a
 * reported write survives power loss; NORMAL survives a process crash only). Group commit: the first write
 * after a flush opens a transaction (BEGIN IMMEDIATE); every write goes straight into it through prepared
 * statements; lp2p_msgstore_flush() COMMITs and only then fires the queued completions. A crash before the
 * COMMIT loses the whole batch, none of whose completions was reported. Schema: schema_version table and
 * ordered migrations, each in its own transaction. The store is single-threaded (SQLITE_OPEN_NOMUTEX): one
 * thread owns it.
 *
 * Checkpoints are off that thread's path: the main connection never checkpoints (wal_autocheckpoint=0);
 * a commit that leaves the WAL at checkpoint_frames or more wakes a background thread which, on its own
 * connection, copies the WAL into the database with PASSIVE checkpoints (writers go on meanwhile) and, once
 * the part not yet copied is small (CKPT_RESTART_MAX frames), with one RESTART checkpoint, so that the next
 * write transaction starts the WAL over from its beginning instead of appending to an ever longer file.
 * The RESTART holds the write lock for that short tail only; the main connection's busy handler polls every
 * CKPT_POLL_NS instead of SQLite's millisecond sleeps. The thread shares nothing with the owner but the
 * mutex-guarded request/stop flags; its connection is opened before it starts and closed after it is joined.
 * Every statement is reset right after use (and all of them after each commit): a statement left on a row
 * keeps a read transaction open, which pins a WAL snapshot that no checkpoint can get past. */
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocols/messaging/store.h"

/* ---- Migrations: migrations[i] takes the schema from version i to i+1. Append only. ---- */
static const char *const migrations[] = {
    /* 0 -> 1: outbox, conversations, inbox */
    "CREATE TABLE conv(peer BLOB PRIMARY KEY, next_seq INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE outbox(rid INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, peer BLOB NOT NULL,"
    " seq INTEGER NOT NULL, body BLOB, state INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL, next_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    " dead_reason TEXT);"
    "CREATE INDEX outbox_due ON outbox(state, next_at);"
    "CREATE INDEX outbox_exp ON outbox(state, expires_at);"
    "CREATE TABLE inbox(rid INTEGER PRIMARY KEY, sender BLOB NOT NULL, id BLOB NOT NULL,"
    " seq INTEGER NOT NULL, body BLOB, body_len INTEGER NOT NULL, acked INTEGER NOT NULL DEFAULT 0,"
    " received_at INTEGER NOT NULL, UNIQUE(sender, id));"
    "CREATE INDEX inbox_unacked ON inbox(acked, rid);",
    /* 1 -> 2: file-transfer progress, generic key/value */
    "CREATE TABLE xfer(id BLOB PRIMARY KEY, peer BLOB NOT NULL, manifest_hash BLOB NOT NULL,"
    " total_size INTEGER NOT NULL, chunk_size INTEGER NOT NULL, n_chunks INTEGER NOT NULL,"
    " n_verified INTEGER NOT NULL, bitmap BLOB NOT NULL, outgoing INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE kv(ns TEXT NOT NULL, k BLOB NOT NULL, v BLOB NOT NULL, PRIMARY KEY(ns, k)) WITHOUT ROWID;",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == LP2P_MSGSTORE_SCHEMA_VERSION,
               "one migration per schema version");

enum {
  ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
  ST_CONV_NEXT, ST_OUT_INSERT, ST_OUT_EXP_ANY, ST_OUT_EXPIRE, ST_OUT_DUE, ST_OUT_WAKE, ST_OUT_GET,
  ST_OUT_ATTEMPT, ST_OUT_DELIVERED, ST_OUT_DEAD, ST_OUT_LIST, ST_OUT_LIST_ANY, ST_OUT_COUNT,
  ST_IN_INSERT, ST_IN_EXISTS, ST_IN_LIST, ST_IN_ACK, ST_IN_PRUNE, ST_IN_COUNT,
  ST_X_INSERT, ST_X_GET, ST_X_UPDATE, ST_X_DELETE,
  ST_KV_PUT, ST_KV_GET, ST_KV_DEL, ST_KV_LIST,
  ST_CONV_GET, ST_CONV_SET, ST_IN_INSERT_TAKEN,
  ST__N
};

#define OUT_COLS "id, peer, seq, body, state, attempts, created_at, next_at, expires_at, dead_reason"
static const char *const stmt_sql[ST__N] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_CONV_NEXT] = "INSERT INTO conv(peer, next_seq) VALUES(?1, 1) ON CONFLICT(peer) DO UPDATE SET"
                     " next_seq = next_seq + 1 RETURNING next_seq",
    [ST_OUT_INSERT] = "INSERT INTO outbox(id, peer, seq, body, state, attempts, created_at, next_at,"
                      " expires_at) VALUES(?1, ?2, ?3, ?4, 0, 0, ?5, ?5, ?6)",
    [ST_OUT_EXP_ANY] = "SELECT 1 FROM outbox WHERE state = 0 AND expires_at BETWEEN 1 AND ?1 LIMIT 1",
    [ST_OUT_EXPIRE] = "UPDATE outbox SET state = 2, dead_reason = 'ttl' WHERE state = 0 AND"
                      " expires_at BETWEEN 1 AND ?1",
    [ST_OUT_DUE] = "SELECT " OUT_COLS " FROM outbox WHERE state = 0 AND next_at <= ?1"
                   " ORDER BY next_at, rid LIMIT 1",
    [ST_OUT_WAKE] = "SELECT MIN(next_at) FROM outbox WHERE state = 0",
    [ST_OUT_GET] = "SELECT " OUT_COLS " FROM outbox WHERE id = ?1",
    [ST_OUT_ATTEMPT] = "UPDATE outbox SET attempts = attempts + 1, next_at = ?2,"
                       " state = CASE WHEN attempts + 1 >= ?3 THEN 2 ELSE 0 END,"
                       " dead_reason = CASE WHEN attempts + 1 >= ?3 THEN 'attempts' ELSE NULL END"
                       " WHERE id = ?1 AND state = 0 RETURNING state",
    [ST_OUT_DELIVERED] = "UPDATE outbox SET state = 1, body = NULL WHERE id = ?1 AND state = 0",
    [ST_OUT_DEAD] = "UPDATE outbox SET state = 2, dead_reason = ?2 WHERE id = ?1 AND state = 0",
    [ST_OUT_LIST] = "SELECT " OUT_COLS " FROM outbox WHERE state = ?1 ORDER BY rid LIMIT ?2 OFFSET ?3",
    [ST_OUT_LIST_ANY] = "SELECT " OUT_COLS " FROM outbox ORDER BY rid LIMIT ?2 OFFSET ?3",
    [ST_OUT_COUNT] = "SELECT COUNT(*) FROM outbox WHERE state = 0",
    [ST_IN_INSERT] = "INSERT INTO inbox(sender, id, seq, body, body_len, acked, received_at)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, 0, ?6) ON CONFLICT(sender, id) DO NOTHING",
    [ST_IN_EXISTS] = "SELECT 1 FROM inbox WHERE sender = ?1 AND id = ?2",
    [ST_IN_LIST] = "SELECT sender, id, seq, body, received_at FROM inbox WHERE acked = 0 ORDER BY rid"
                   " LIMIT ?1",
    [ST_IN_ACK] = "UPDATE inbox SET acked = 1, body = NULL WHERE sender = ?1 AND id = ?2 AND acked = 0"
                  " RETURNING body_len",
    [ST_IN_PRUNE] = "DELETE FROM inbox WHERE acked = 1 AND received_at < ?1",
    [ST_IN_COUNT] = "SELECT COUNT(*), COALESCE(SUM(body_len), 0) FROM inbox WHERE acked = 0",
    [ST_X_INSERT] = "INSERT INTO xfer(id, peer, manifest_hash, total_size, chunk_size, n_chunks, n_verified,"
                    " bitmap, outgoing, updated_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, 0, zeroblob(?7), ?8, ?9)",
    [ST_X_GET] = "SELECT id, peer, manifest_hash, total_size, chunk_size, n_chunks, n_verified, bitmap,"
                 " outgoing, updated_at FROM xfer WHERE id = ?1",
    [ST_X_UPDATE] = "UPDATE xfer SET bitmap = ?2, n_verified = ?3, updated_at = ?4 WHERE id = ?1",
    [ST_X_DELETE] = "DELETE FROM xfer WHERE id = ?1",
    [ST_KV_PUT] = "INSERT INTO kv(ns, k, v) VALUES(?1, ?2, ?3) ON CONFLICT(ns, k) DO UPDATE SET v = ?3",
    [ST_KV_GET] = "SELECT v FROM kv WHERE ns = ?1 AND k = ?2",
    [ST_KV_DEL] = "DELETE FROM kv WHERE ns = ?1 AND k = ?2",
    [ST_KV_LIST] = "SELECT k FROM kv WHERE ns = ?1 AND (?2 IS NULL OR k > ?2) ORDER BY k LIMIT ?3",
    [ST_CONV_GET] = "SELECT next_seq FROM conv WHERE peer = ?1",
    [ST_CONV_SET] = "INSERT INTO conv(peer, next_seq) VALUES(?1, ?2) ON CONFLICT(peer) DO UPDATE SET next_seq = ?2",
    [ST_IN_INSERT_TAKEN] = "INSERT INTO inbox(sender, id, seq, body, body_len, acked, received_at)"
                           " VALUES(?1, ?2, ?3, NULL, ?4, 1, ?5) ON CONFLICT(sender, id) DO NOTHING",
};

/* Conversation sequence cache: the last seq assigned per peer, written to conv once per batch (at flush,
 * inside the batch's transaction) instead of once per message. Dropped when a batch is lost. */
typedef struct conv_ent {
  uint8_t peer[LP2P_MSGSTORE_PEER_MAX];
  size_t peer_len;
  uint64_t last;
  int dirty;
} conv_ent;

typedef struct done_ent {
  lp2p_msgstore_done_fn fn;
  void *ud;
} done_ent;

typedef struct scratch_blk {
  struct scratch_blk *next;
  max_align_t align[];
} scratch_blk;

/* ---- busy handling and the background checkpointer ---- */
enum {
  CKPT_FRAMES_DEFAULT = 8192, /* WAL frames (4 KiB pages) that wake the checkpointer */
  CKPT_RESTART_MAX = 128,     /* frames not yet copied below which the checkpointer does a RESTART */
  CKPT_PASSIVE_ROUNDS = 8,    /* PASSIVE rounds that have not caught up before a RESTART anyway */
  CKPT_POLL_NS = 20000,       /* busy poll of both connections (what they wait for is short) */
  CKPT_THREAD_TIMEOUT_MS = 100,   /* the checkpointer's RESTART gives up after this (until the next request) */
  CKPT_YIELD_MAX_MS = 10,         /* the owner waits at most this long for a RESTART before it writes */
  JOURNAL_SIZE_LIMIT = 64 << 20,  /* a WAL that has grown past this is truncated back when it starts over */
};

typedef struct busy_poll {
  uint64_t timeout_ns, sleep_ns, since;
} busy_poll;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* SQLite busy handler: sleep b->sleep_ns between tries, give up after b->timeout_ns. Each connection has its
 * own busy_poll, used only by the thread that owns the connection. */
static int busy_poll_cb(void *ud, int n) {
  busy_poll *b = ud;
  uint64_t now = mono_ns();
  if (n == 0) b->since = now;
  else if (now - b->since >= b->timeout_ns) return 0;
  struct timespec ts = {0, (long)b->sleep_ns};
  nanosleep(&ts, NULL);
  return 1;
}

typedef struct sq_store {
  lp2p_msgstore base; /* first */
  sqlite3 *db;
  busy_poll busy;     /* the main connection's */
  /* The background checkpointer. ck_db and ck_busy are the thread's alone while it runs. */
  sqlite3 *ck_db;
  busy_poll ck_busy;
  pthread_t ck_thread;
  int ck_started, ck_sync_init;
  pthread_mutex_t ck_mu; /* guards the five below; ck_cv (CLOCK_MONOTONIC) signals any change of them */
  pthread_cond_t ck_cv;
  int ck_req, ck_running, ck_stop, ck_restarting;
  long ck_runs;
  sqlite3_stmt *st[ST__N];
  int version;
  int in_txn;
  int batch_err;      /* the open batch is lost (SQLite rolled it back): its completions get this */
  done_ent *dones;
  size_t n_dones, cap_dones, n_writes;
  scratch_blk *scratch;
  lp2p_msgstore_sqlite_opts o;
  uint64_t out_pending; /* pending outbox messages, committed + in the batch */
  conv_ent *conv;
  size_t n_conv, cap_conv;
  uint64_t in_msgs, in_bytes;
} sq_store;

static int64_t i64(uint64_t v) { return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v; }
static uint64_t u64(int64_t v) { return v == INT64_MAX ? LP2P_TSTAMP_NEVER : v < 0 ? 0 : (uint64_t)v; }

static int sq_err(sq_store *s, const char *what) {
  fprintf(stderr, "lp2p msgstore: %s: %s\n", what, sqlite3_errmsg(s->db));
  return LP2P_ERR_IO;
}

/* ---- scratch memory for returned records (valid until the next call) ---- */
static void scratch_reset(sq_store *s) {
  while (s->scratch) {
    scratch_blk *n = s->scratch->next;
    free(s->scratch);
    s->scratch = n;
  }
}
static const void *scratch_dup(sq_store *s, const void *p, size_t n, int *err) {
  if (!p) return NULL;
  scratch_blk *b = malloc(sizeof *b + n + 1);
  if (!b) {
    *err = LP2P_ERR_NOMEM;
    return NULL;
  }
  b->next = s->scratch;
  s->scratch = b;
  memcpy(b->align, p, n);
  ((char *)b->align)[n] = 0;
  return b->align;
}

static sqlite3_stmt *stmt(sq_store *s, int i) {
  sqlite3_stmt *st = s->st[i];
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return st;
}

static int bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n) {
  if (!p && n == 0) return sqlite3_bind_zeroblob(st, i, 0);
  return sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC);
}

/* ---- batches ---- */

static void ckpt_yield(sq_store *s);

/* Makes sure a write transaction is open. */
static int begin_write(sq_store *s) {
  if (s->in_txn) return 0;
  if (s->batch_err) return s->batch_err;
  if (s->ck_started) ckpt_yield(s);
  sqlite3_stmt *st = stmt(s, ST_BEGIN);
  if (sqlite3_step(st) != SQLITE_DONE) return sq_err(s, "BEGIN");
  s->in_txn = 1;
  return 0;
}

/* After a failed write statement: if SQLite rolled the whole transaction back, the batch is lost. */
static int write_failed(sq_store *s, const char *what) {
  int rv = sq_err(s, what);
  if (s->in_txn && sqlite3_get_autocommit(s->db)) {
    s->in_txn = 0;
    s->batch_err = LP2P_ERR_IO;
  }
  return rv;
}

static int queue_done(sq_store *s, lp2p_msgstore_done_fn fn, void *ud) {
  s->n_writes++;
  if (!fn) return 0;
  if (s->n_dones == s->cap_dones) {
    size_t cap = s->cap_dones ? s->cap_dones * 2 : 64;
    done_ent *d = realloc(s->dones, cap * sizeof *d);
    if (!d) return LP2P_ERR_NOMEM;
    s->dones = d;
    s->cap_dones = cap;
  }
  s->dones[s->n_dones++] = (done_ent){fn, ud};
  return 0;
}

/* Every statement back to its start. One left on a row (SQLITE_ROW, not reset) keeps its read transaction
 * open after the COMMIT: that pins a WAL snapshot, no checkpoint can copy past it nor can the WAL start
 * over, and the WAL file (which every commit's fsync then appends to) grows without bound. */
static void reset_all(sq_store *s) {
  for (int i = 0; i < ST__N; i++)
    if (s->st[i] && sqlite3_stmt_busy(s->st[i])) sqlite3_reset(s->st[i]);
}

static int reload_counts(sq_store *s) {
  sqlite3_stmt *st = stmt(s, ST_OUT_COUNT);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) s->out_pending = (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  if (rc != SQLITE_ROW) return sq_err(s, "count outbox");
  st = stmt(s, ST_IN_COUNT);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    s->in_msgs = (uint64_t)sqlite3_column_int64(st, 0);
    s->in_bytes = (uint64_t)sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_ROW) return sq_err(s, "count inbox");
  return 0;
}

static int sq_flush(lp2p_msgstore *b) {
  sq_store *s = (sq_store *)b;
  int rv = s->batch_err;
  if (s->in_txn) {
    int conv_ok = 1;
    for (size_t i = 0; i < s->n_conv && conv_ok; i++) {
      if (!s->conv[i].dirty) continue;
      sqlite3_stmt *cs = stmt(s, ST_CONV_SET);
      bind_blob(cs, 1, s->conv[i].peer, s->conv[i].peer_len);
      sqlite3_bind_int64(cs, 2, (int64_t)s->conv[i].last);
      conv_ok = sqlite3_step(cs) == SQLITE_DONE;
      sqlite3_reset(cs);
      s->conv[i].dirty = 0;
    }
    sqlite3_stmt *st = stmt(s, conv_ok ? ST_COMMIT : ST_ROLLBACK);
    if (!conv_ok) {
      sqlite3_step(st);
      rv = sq_err(s, "conversation seq");
    } else if (sqlite3_step(st) != SQLITE_DONE) {
      rv = sq_err(s, "COMMIT");
      sqlite3_reset(st);
      if (!sqlite3_get_autocommit(s->db)) { /* e.g. BUSY: the transaction is still open; drop it */
        sqlite3_step(stmt(s, ST_ROLLBACK));
        sqlite3_reset(s->st[ST_ROLLBACK]);
      }
    }
    sqlite3_reset(st);
    s->in_txn = 0;
  }
  if (rv) { /* the batch is gone: counters and sequence cache back to what is on disk */
    reload_counts(s);
    s->n_conv = 0;
  }
  reset_all(s); /* no statement may hold a read snapshot past the commit */
  s->batch_err = 0;
  s->n_writes = 0;
  /* Fire the completions. A callback may queue new writes (they go to the next batch): take the list. */
  done_ent *d = s->dones;
  size_t n = s->n_dones;
  s->dones = NULL;
  s->n_dones = s->cap_dones = 0;
  for (size_t i = 0; i < n; i++) d[i].fn(d[i].ud, rv);
  free(d);
  return rv;
}

static size_t sq_pending(lp2p_msgstore *b) { return ((sq_store *)b)->n_writes; }

/* ---- outbox ---- */

static int fill_out(sq_store *s, sqlite3_stmt *st, lp2p_msgstore_msg *m) {
  int err = 0;
  memset(m, 0, sizeof *m);
  if (sqlite3_column_bytes(st, 0) == LP2P_MSGID_LEN) memcpy(m->id.b, sqlite3_column_blob(st, 0), LP2P_MSGID_LEN);
  size_t pl = (size_t)sqlite3_column_bytes(st, 1);
  if (pl > LP2P_MSGSTORE_PEER_MAX) pl = LP2P_MSGSTORE_PEER_MAX;
  if (pl) memcpy(m->peer, sqlite3_column_blob(st, 1), pl);
  m->peer_len = pl;
  m->seq = (uint64_t)sqlite3_column_int64(st, 2);
  m->body_len = (size_t)sqlite3_column_bytes(st, 3);
  m->body = m->body_len ? scratch_dup(s, sqlite3_column_blob(st, 3), m->body_len, &err) : NULL;
  m->state = (lp2p_outbox_state)sqlite3_column_int(st, 4);
  m->attempts = (uint32_t)sqlite3_column_int64(st, 5);
  m->created_at = u64(sqlite3_column_int64(st, 6));
  m->next_at = u64(sqlite3_column_int64(st, 7));
  m->expires_at = u64(sqlite3_column_int64(st, 8));
  if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
    const unsigned char *r = sqlite3_column_text(st, 9);
    m->dead_reason = scratch_dup(s, r, strlen((const char *)r), &err);
  }
  return err;
}

static int sq_outbox_put(lp2p_msgstore *b, const uint8_t *peer, size_t peer_len, const uint8_t *body,
                         size_t body_len, uint64_t now, uint64_t expires_at, lp2p_msgid *id, uint64_t *seq,
                         lp2p_msgstore_done_fn done, void *ud) {
  sq_store *s = (sq_store *)b;
  if (!peer || !peer_len || peer_len > LP2P_MSGSTORE_PEER_MAX || (!body && body_len) || !id) return LP2P_ERR_INVAL;
  if (s->out_pending >= s->o.outbox_max_msgs) return LP2P_ERR_LIMIT;
  int rv = begin_write(s);
  if (rv) return rv;
  conv_ent *c = NULL;
  for (size_t i = 0; i < s->n_conv && !c; i++)
    if (s->conv[i].peer_len == peer_len && !memcmp(s->conv[i].peer, peer, peer_len)) c = &s->conv[i];
  if (!c) {
    if (s->n_conv == s->cap_conv) {
      size_t cap = s->cap_conv ? s->cap_conv * 2 : 16;
      conv_ent *v = realloc(s->conv, cap * sizeof *v);
      if (!v) return LP2P_ERR_NOMEM;
      s->conv = v;
      s->cap_conv = cap;
    }
    sqlite3_stmt *g = stmt(s, ST_CONV_GET);
    bind_blob(g, 1, peer, peer_len);
    int rc = sqlite3_step(g);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return write_failed(s, "conversation seq");
    c = &s->conv[s->n_conv++];
    memcpy(c->peer, peer, peer_len);
    c->peer_len = peer_len;
    c->last = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(g, 0) : 0;
    c->dirty = 0;
    sqlite3_reset(g);
  }
  uint64_t q = c->last + 1;
  sqlite3_stmt *st;
  for (int tries = 0;; tries++) {
    randombytes_buf(id->b, LP2P_MSGID_LEN);
    st = stmt(s, ST_OUT_INSERT);
    bind_blob(st, 1, id->b, LP2P_MSGID_LEN);
    bind_blob(st, 2, peer, peer_len);
    sqlite3_bind_int64(st, 3, (int64_t)q);
    bind_blob(st, 4, body, body_len);
    sqlite3_bind_int64(st, 5, i64(now));
    sqlite3_bind_int64(st, 6, i64(expires_at));
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_CONSTRAINT || tries > 3) return write_failed(s, "outbox insert");
  }
  s->out_pending++;
  c->last = q;
  c->dirty = 1;
  if (seq) *seq = q;
  return queue_done(s, done, ud);
}

static int sq_outbox_next_due(lp2p_msgstore *b, uint64_t now, lp2p_msgstore_msg *out, uint64_t *wake) {
  sq_store *s = (sq_store *)b;
  scratch_reset(s);
  if (!out) return LP2P_ERR_INVAL;
  sqlite3_stmt *st = stmt(s, ST_OUT_EXP_ANY);
  sqlite3_bind_int64(st, 1, i64(now));
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_ROW) {
    int rv = begin_write(s);
    if (rv) return rv;
    st = stmt(s, ST_OUT_EXPIRE);
    sqlite3_bind_int64(st, 1, i64(now));
    if (sqlite3_step(st) != SQLITE_DONE) return write_failed(s, "outbox expire");
    uint64_t n = (uint64_t)sqlite3_changes(s->db);
    s->out_pending = n > s->out_pending ? 0 : s->out_pending - n;
    if ((rv = queue_done(s, NULL, NULL))) return rv;
  } else if (rc != SQLITE_DONE) {
    return sq_err(s, "outbox expiry scan");
  }
  st = stmt(s, ST_OUT_DUE);
  sqlite3_bind_int64(st, 1, i64(now));
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    int rv = fill_out(s, st, out);
    sqlite3_reset(st);
    return rv ? rv : 1;
  }
  if (rc != SQLITE_DONE) return sq_err(s, "outbox due");
  if (wake) {
    st = stmt(s, ST_OUT_WAKE);
    if (sqlite3_step(st) != SQLITE_ROW) return sq_err(s, "outbox wake");
    *wake = sqlite3_column_type(st, 0) == SQLITE_NULL ? LP2P_TSTAMP_NEVER : u64(sqlite3_column_int64(st, 0));
    sqlite3_reset(st);
  }
  return 0;
}

static int sq_outbox_mark_attempt(lp2p_msgstore *b, const lp2p_msgid *id, uint64_t next_at,
                                  lp2p_msgstore_done_fn done, void *ud) {
  sq_store *s = (sq_store *)b;
  if (!id) return LP2P_ERR_INVAL;
  int rv = begin_write(s);
  if (rv) return rv;
  sqlite3_stmt *st = stmt(s, ST_OUT_ATTEMPT);
  bind_blob(st, 1, id->b, LP2P_MSGID_LEN);
  sqlite3_bind_int64(st, 2, i64(next_at));
  sqlite3_bind_int64(st, 3, s->o.max_attempts);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) return LP2P_ERR_NOT_FOUND;
  if (rc != SQLITE_ROW) return write_failed(s, "outbox attempt");
  int dead = sqlite3_column_int(st, 0) == LP2P_OUTBOX_DEAD;
  sqlite3_reset(st);
  if (dead && s->out_pending) s->out_pending--;
  rv = queue_done(s, done, ud);
  return rv ? rv : dead;
}

static int out_transition(sq_store *s, int which, const lp2p_msgid *id, const char *reason,
                          lp2p_msgstore_done_fn done, void *ud) {
  if (!id) return LP2P_ERR_INVAL;
  int rv = begin_write(s);
  if (rv) return rv;
  sqlite3_stmt *st = stmt(s, which);
  bind_blob(st, 1, id->b, LP2P_MSGID_LEN);
  if (reason) sqlite3_bind_text(st, 2, reason, (int)strnlen(reason, 63), SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE) return write_failed(s, "outbox update");
  sqlite3_reset(st);
  if (sqlite3_changes(s->db) == 0) return LP2P_ERR_NOT_FOUND;
  if (s->out_pending) s->out_pending--;
  return queue_done(s, done, ud);
}

static int sq_outbox_mark_delivered(lp2p_msgstore *b, const lp2p_msgid *id, lp2p_msgstore_done_fn done,
                                    void *ud) {
  return out_transition((sq_store *)b, ST_OUT_DELIVERED, id, NULL, done, ud);
}

static int sq_outbox_mark_dead(lp2p_msgstore *b, const lp2p_msgid *id, const char *reason,
                               lp2p_msgstore_done_fn done, void *ud) {
  return out_transition((sq_store *)b, ST_OUT_DEAD, id, reason ? reason : "dead", done, ud);
}

static int sq_outbox_get(lp2p_msgstore *b, const lp2p_msgid *id, lp2p_msgstore_msg *out) {
  sq_store *s = (sq_store *)b;
  scratch_reset(s);
  if (!id || !out) return LP2P_ERR_INVAL;
  sqlite3_stmt *st = stmt(s, ST_OUT_GET);
  bind_blob(st, 1, id->b, LP2P_MSGID_LEN);
  int rc = sqlite3_step(st);
  int rv = rc == SQLITE_ROW ? fill_out(s, st, out) : rc == SQLITE_DONE ? LP2P_ERR_NOT_FOUND
                                                                        : sq_err(s, "outbox get");
  sqlite3_reset(st);
  return rv;
}

static int sq_outbox_list(lp2p_msgstore *b, lp2p_outbox_state state, size_t offset, lp2p_msgstore_msg *out,
                          size_t max) {
  sq_store *s = (sq_store *)b;
  scratch_reset(s);
  if (!out && max) return LP2P_ERR_INVAL;
  sqlite3_stmt *st = stmt(s, state == LP2P_OUTBOX_ANY ? ST_OUT_LIST_ANY : ST_OUT_LIST);
  if (state != LP2P_OUTBOX_ANY) sqlite3_bind_int(st, 1, (int)state);
  sqlite3_bind_int64(st, 2, i64(max));
  sqlite3_bind_int64(st, 3, i64(offset));
  int n = 0, rc, rv = 0;
  while ((size_t)n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    if ((rv = fill_out(s, st, &out[n]))) break;
    n++;
  }
  if (!rv && (size_t)n < max && rc != SQLITE_DONE) rv = sq_err(s, "outbox list");
  sqlite3_reset(st);
  return rv ? rv : n;
}

/* ---- inbox ---- */

static int sq_inbox_put_if_new(lp2p_msgstore *b, const uint8_t *sender, size_t sender_len,
                               const lp2p_msgid *id, uint64_t seq, const uint8_t *body, size_t body_len,
                               uint64_t now, lp2p_msgstore_done_fn done, void *ud) {
  sq_store *s = (sq_store *)b;
  if (!sender || !sender_len || sender_len > LP2P_MSGSTORE_PEER_MAX || !id || (!body && body_len))
    return LP2P_ERR_INVAL;
  sqlite3_stmt *st;
  int rv;
  if (s->in_msgs + 1 > s->o.inbox_max_msgs || s->in_bytes + body_len > s->o.inbox_max_bytes) {
    st = stmt(s, ST_IN_EXISTS);
    bind_blob(st, 1, sender, sender_len);
    bind_blob(st, 2, id->b, LP2P_MSGID_LEN);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return LP2P_ERR_LIMIT;
    if (rc != SQLITE_ROW) return sq_err(s, "inbox lookup");
    rv = queue_done(s, done, ud);
    return rv ? rv : LP2P_INBOX_DUPLICATE;
  }
  if ((rv = begin_write(s))) return rv;
  st = stmt(s, ST_IN_INSERT);
  bind_blob(st, 1, sender, sender_len);
  bind_blob(st, 2, id->b, LP2P_MSGID_LEN);
  sqlite3_bind_int64(st, 3, i64(seq));
  bind_blob(st, 4, body, body_len);
  sqlite3_bind_int64(st, 5, (int64_t)body_len);
  sqlite3_bind_int64(st, 6, i64(now));
  if (sqlite3_step(st) != SQLITE_DONE) return write_failed(s, "inbox insert");
  sqlite3_reset(st);
  int fresh = sqlite3_changes(s->db) > 0;
  if (fresh) {
    s->in_msgs++;
    s->in_bytes += body_len;
  }
  rv = queue_done(s, done, ud);
  return rv ? rv : fresh ? LP2P_INBOX_NEW : LP2P_INBOX_DUPLICATE;
}

static int sq_inbox_put_taken(lp2p_msgstore *b, const uint8_t *sender, size_t sender_len, const lp2p_msgid *id,
                              uint64_t seq, size_t body_len, uint64_t now, lp2p_msgstore_done_fn done, void *ud) {
  sq_store *s = (sq_store *)b;
  if (!sender || !sender_len || sender_len > LP2P_MSGSTORE_PEER_MAX || !id) return LP2P_ERR_INVAL;
  int rv = begin_write(s);
  if (rv) return rv;
  sqlite3_stmt *st = stmt(s, ST_IN_INSERT_TAKEN);
  bind_blob(st, 1, sender, sender_len);
  bind_blob(st, 2, id->b, LP2P_MSGID_LEN);
  sqlite3_bind_int64(st, 3, i64(seq));
  sqlite3_bind_int64(st, 4, (int64_t)body_len);
  sqlite3_bind_int64(st, 5, i64(now));
  if (sqlite3_step(st) != SQLITE_DONE) return write_failed(s, "inbox insert");
  sqlite3_reset(st);
  int fresh = sqlite3_changes(s->db) > 0;
  rv = queue_done(s, done, ud);
  return rv ? rv : fresh ? LP2P_INBOX_NEW : LP2P_INBOX_DUPLICATE;
}

static int sq_inbox_list(lp2p_msgstore *b, lp2p_msgstore_msg *out, size_t max) {
  sq_store *s = (sq_store *)b;
  scratch_reset(s);
  if (!out && max) return LP2P_ERR_INVAL;
  sqlite3_stmt *st = stmt(s, ST_IN_LIST);
  sqlite3_bind_int64(st, 1, i64(max));
  int n = 0, rc = SQLITE_DONE, err = 0;
  while ((size_t)n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    lp2p_msgstore_msg *m = &out[n++];
    memset(m, 0, sizeof *m);
    size_t pl = (size_t)sqlite3_column_bytes(st, 0);
    if (pl > LP2P_MSGSTORE_PEER_MAX) pl = LP2P_MSGSTORE_PEER_MAX;
    memcpy(m->peer, sqlite3_column_blob(st, 0), pl);
    m->peer_len = pl;
    if (sqlite3_column_bytes(st, 1) == LP2P_MSGID_LEN) memcpy(m->id.b, sqlite3_column_blob(st, 1), LP2P_MSGID_LEN);
    m->seq = (uint64_t)sqlite3_column_int64(st, 2);
    m->body_len = (size_t)sqlite3_column_bytes(st, 3);
    m->body = m->body_len ? scratch_dup(s, sqlite3_column_blob(st, 3), m->body_len, &err) : NULL;
    m->created_at = u64(sqlite3_column_int64(st, 4));
  }
  if (!err && (size_t)n < max && rc != SQLITE_DONE) err = sq_err(s, "inbox list");
  sqlite3_reset(st);
  return err ? err : n;
}

static int sq_inbox_ack(lp2p_msgstore *b, const uint8_t *sender, size_t sender_len, const lp2p_msgid *id,
                        lp2p_msgstore_done_fn done, void *ud) {
  sq_store *s = (sq_store *)b;
  if (!sender || !sender_len || !id) return LP2P_ERR_INVAL;
  int rv = begin_write(s);
  if (rv) return rv;
  sqlite3_stmt *st = stmt(s, ST_IN_ACK);
  bind_blob(st, 1, sender, sender_len);
  bind_blob(st, 2, id->b, LP2P_MSGID_LEN);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) return LP2P_ERR_NOT_FOUND;
  if (rc != SQLITE_ROW) return write_failed(s, "inbox ack");
  uint64_t len = (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  if (s->in_msgs) s->in_msgs--;
  s->in_bytes = len > s->in_bytes ? 0 : s->in_bytes - len;
  return queue_done(s, done, ud);
}

static int sq_inbox_prune(lp2p_msgstore *b, uint64_t before, lp2p_msgstore_done_fn done, void *ud) {
  sq_store *s = (sq_store *)b;
  int rv = begin_write(s);
  if (rv) return rv;
  sqlite3_stmt *st = stmt(s, ST_IN_PRUNE);
  sqlite3_bind_int64(st, 1, i64(before));
  if (sqlite3_step(st) != SQLITE_DONE) return write_failed(s, "inbox prune");
  sqlite3_reset(st);
  int n = sqlite3_changes(s->db);
  rv = queue_done(s, done, ud);
  return rv ? rv : n;
}

/* ---- file transfers ---- */

static int sq_xfer_begin(lp2p_msgstore *b, const uint8_t id[LP2P_MSGID_LEN], const uint8_t *peer,
                         size_t peer_len, const uint8_t *manifest_hash, size_t manifest_hash_len,
                         uint64_t total_size, uint32_t chunk_size, int outgoing, uint64_t now,
                         lp2p_msgstore_done_fn done, void *ud) {
  sq_store *s = (sq_store *)b;
  if (!id || !peer || !peer_len || peer_len > LP2P_MSGSTORE_PEER_MAX || !manifest_hash ||
      !manifest_hash_len || manifest_hash_len > 64 || !chunk_size)
    return LP2P_ERR_INVAL;
  uint64_t n_chunks = (total_size + chunk_size - 1) / chunk_size;
  if (n_chunks > UINT32_MAX) return LP2P_ERR_INVAL;
  int rv = begin_write(s);
  if (rv) return rv;
  sqlite3_stmt *st = stmt(s, ST_X_INSERT);
  bind_blob(st, 1, id, LP2P_MSGID_LEN);
  bind_blob(st, 2, peer, peer_len);
  bind_blob(st, 3, manifest_hash, manifest_hash_len);
  sqlite3_bind_int64(st, 4, i64(total_size));
  sqlite3_bind_int64(st, 5, chunk_size);
  sqlite3_bind_int64(st, 6, (int64_t)n_chunks);
  sqlite3_bind_int64(st, 7, (int64_t)((n_chunks + 7) / 8));
  sqlite3_bind_int(st, 8, outgoing ? 1 : 0);
  sqlite3_bind_int64(st, 9, i64(now));
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_CONSTRAINT) return LP2P_ERR_EXISTS;
  if (rc != SQLITE_DONE) return write_failed(s, "xfer insert");
  return queue_done(s, done, ud);
}

static int sq_xfer_get(lp2p_msgstore *b, const uint8_t id[LP2P_MSGID_LEN], lp2p_msgstore_xfer *x) {
  sq_store *s = (sq_store *)b;
  scratch_reset(s);
  if (!id || !x) return LP2P_ERR_INVAL;
  sqlite3_stmt *st = stmt(s, ST_X_GET);
  bind_blob(st, 1, id, LP2P_MSGID_LEN);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? LP2P_ERR_NOT_FOUND : sq_err(s, "xfer get");
  }
  int err = 0;
  memset(x, 0, sizeof *x);
  memcpy(x->id, id, LP2P_MSGID_LEN);
  x->peer_len = (size_t)sqlite3_column_bytes(st, 1);
  if (x->peer_len > LP2P_MSGSTORE_PEER_MAX) x->peer_len = LP2P_MSGSTORE_PEER_MAX;
  memcpy(x->peer, sqlite3_column_blob(st, 1), x->peer_len);
  x->manifest_hash_len = (size_t)sqlite3_column_bytes(st, 2);
  if (x->manifest_hash_len > sizeof x->manifest_hash) x->manifest_hash_len = sizeof x->manifest_hash;
  memcpy(x->manifest_hash, sqlite3_column_blob(st, 2), x->manifest_hash_len);
  x->total_size = (uint64_t)sqlite3_column_int64(st, 3);
  x->chunk_size = (uint32_t)sqlite3_column_int64(st, 4);
  x->n_chunks = (uint32_t)sqlite3_column_int64(st, 5);
  x->n_verified = (uint32_t)sqlite3_column_int64(st, 6);
  size_t bl = (size_t)sqlite3_column_bytes(st, 7);
  const uint8_t *bm = sqlite3_column_blob(st, 7);
  uint8_t zero = 0;
  x->bitmap = bl ? scratch_dup(s, bm, bl, &err) : scratch_dup(s, &zero, 1, &err);
  x->outgoing = sqlite3_column_int(st, 8);
  x->updated_at = u64(sqlite3_column_int64(st, 9));
  sqlite3_reset(st);
  if (err) return err;
  uint32_t p = 0;
  while (p < x->n_chunks && (size_t)(p / 8) < bl && (x->bitmap[p / 8] >> (p % 8) & 1)) p++;
  x->verified_prefix = p;
  return 0;
}

static int sq_xfer_mark_chunk(lp2p_msgstore *b, const uint8_t id[LP2P_MSGID_LEN], uint32_t index,
                              uint64_t now, lp2p_msgstore_done_fn done, void *ud) {
  sq_store *s = (sq_store *)b;
  lp2p_msgstore_xfer x;
  int rv = sq_xfer_get(b, id, &x);
  if (rv) return rv;
  if (index >= x.n_chunks) return LP2P_ERR_INVAL;
  uint8_t *bm = (uint8_t *)x.bitmap; /* our own scratch copy */
  if (!(bm[index / 8] >> (index % 8) & 1)) {
    bm[index / 8] |= (uint8_t)(1u << (index % 8));
    if ((rv = begin_write(s))) return rv;
    sqlite3_stmt *st = stmt(s, ST_X_UPDATE);
    bind_blob(st, 1, id, LP2P_MSGID_LEN);
    bind_blob(st, 2, bm, (x.n_chunks + 7) / 8);
    sqlite3_bind_int64(st, 3, (int64_t)x.n_verified + 1);
    sqlite3_bind_int64(st, 4, i64(now));
    if (sqlite3_step(st) != SQLITE_DONE) return write_failed(s, "xfer update");
    sqlite3_reset(st);
  }
  scratch_reset(s);
  return queue_done(s, done, ud);
}

static int sq_xfer_delete(lp2p_msgstore *b, const uint8_t id[LP2P_MSGID_LEN], lp2p_msgstore_done_fn done,
                          void *ud) {
  sq_store *s = (sq_store *)b;
  if (!id) return LP2P_ERR_INVAL;
  int rv = begin_write(s);
  if (rv) return rv;
  sqlite3_stmt *st = stmt(s, ST_X_DELETE);
  bind_blob(st, 1, id, LP2P_MSGID_LEN);
  if (sqlite3_step(st) != SQLITE_DONE) return write_failed(s, "xfer delete");
  sqlite3_reset(st);
  if (sqlite3_changes(s->db) == 0) return LP2P_ERR_NOT_FOUND;
  return queue_done(s, done, ud);
}

/* ---- key/value ---- */

static int sq_kv_put(lp2p_msgstore *b, const char *ns, const uint8_t *key, size_t key_len, const uint8_t *val,
                     size_t val_len, lp2p_msgstore_done_fn done, void *ud) {
  sq_store *s = (sq_store *)b;
  if (!ns || (!key && key_len) || (!val && val_len)) return LP2P_ERR_INVAL;
  int rv = begin_write(s);
  if (rv) return rv;
  sqlite3_stmt *st = stmt(s, ST_KV_PUT);
  sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
  bind_blob(st, 2, key, key_len);
  bind_blob(st, 3, val, val_len);
  if (sqlite3_step(st) != SQLITE_DONE) return write_failed(s, "kv put");
  sqlite3_reset(st);
  return queue_done(s, done, ud);
}

static int sq_kv_get(lp2p_msgstore *b, const char *ns, const uint8_t *key, size_t key_len, const uint8_t **val,
                     size_t *val_len) {
  sq_store *s = (sq_store *)b;
  scratch_reset(s);
  if (!ns || (!key && key_len) || !val || !val_len) return LP2P_ERR_INVAL;
  sqlite3_stmt *st = stmt(s, ST_KV_GET);
  sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
  bind_blob(st, 2, key, key_len);
  int rc = sqlite3_step(st), err = 0;
  if (rc == SQLITE_ROW) {
    *val_len = (size_t)sqlite3_column_bytes(st, 0);
    uint8_t z = 0;
    *val = scratch_dup(s, *val_len ? sqlite3_column_blob(st, 0) : &z, *val_len, &err);
  }
  sqlite3_reset(st);
  if (rc == SQLITE_DONE) return LP2P_ERR_NOT_FOUND;
  if (rc != SQLITE_ROW) return sq_err(s, "kv get");
  return err;
}

static int sq_kv_del(lp2p_msgstore *b, const char *ns, const uint8_t *key, size_t key_len,
                     lp2p_msgstore_done_fn done, void *ud) {
  sq_store *s = (sq_store *)b;
  if (!ns || (!key && key_len)) return LP2P_ERR_INVAL;
  int rv = begin_write(s);
  if (rv) return rv;
  sqlite3_stmt *st = stmt(s, ST_KV_DEL);
  sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
  bind_blob(st, 2, key, key_len);
  if (sqlite3_step(st) != SQLITE_DONE) return write_failed(s, "kv del");
  sqlite3_reset(st);
  if (sqlite3_changes(s->db) == 0) return LP2P_ERR_NOT_FOUND;
  return queue_done(s, done, ud);
}

static int sq_kv_list(lp2p_msgstore *b, const char *ns, const uint8_t *after, size_t after_len,
                      const uint8_t **keys, size_t *key_lens, size_t max) {
  sq_store *s = (sq_store *)b;
  scratch_reset(s);
  if (!ns || (max && (!keys || !key_lens))) return LP2P_ERR_INVAL;
  sqlite3_stmt *st = stmt(s, ST_KV_LIST);
  sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
  if (after) bind_blob(st, 2, after, after_len);
  sqlite3_bind_int64(st, 3, i64(max));
  int n = 0, rc = SQLITE_DONE, err = 0;
  while ((size_t)n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    uint8_t z = 0;
    key_lens[n] = (size_t)sqlite3_column_bytes(st, 0);
    keys[n] = scratch_dup(s, key_lens[n] ? sqlite3_column_blob(st, 0) : &z, key_lens[n], &err);
    n++;
  }
  if (!err && (size_t)n < max && rc != SQLITE_DONE) err = sq_err(s, "kv list");
  sqlite3_reset(st);
  return err ? err : n;
}

/* ---- the background checkpointer ---- */

/* One request: PASSIVE rounds while the owner keeps writing, then a RESTART once the tail still to copy
 * is short, so that the next write transaction starts the WAL over. (A PASSIVE that copied everything it
 * saw is not enough: the owner may have committed again meanwhile, and a writer starts the WAL over only
 * if every frame is in the database when its transaction begins.) */
static void ckpt_run(sq_store *s) {
  for (int round = 0;; round++) {
    int log = -1, done = -1;
    int rc = sqlite3_wal_checkpoint_v2(s->ck_db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (rc != SQLITE_OK || log <= 0) return; /* (an error: try again on the next request) */
    if (log - done <= CKPT_RESTART_MAX || round + 1 >= CKPT_PASSIVE_ROUNDS) {
      /* The owner's next transaction waits for this one (ckpt_yield): a writer that never pauses would
       * otherwise keep the write lock from the RESTART and the WAL growing. On BUSY (another connection
       * outlasted the busy handler) SQLite has done a PASSIVE instead: the next request tries again. */
      pthread_mutex_lock(&s->ck_mu);
      s->ck_restarting = 1;
      pthread_mutex_unlock(&s->ck_mu);
      sqlite3_wal_checkpoint_v2(s->ck_db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
      pthread_mutex_lock(&s->ck_mu);
      s->ck_restarting = 0;
      pthread_cond_broadcast(&s->ck_cv);
      pthread_mutex_unlock(&s->ck_mu);
      return;
    }
    pthread_mutex_lock(&s->ck_mu);
    int stop = s->ck_stop;
    pthread_mutex_unlock(&s->ck_mu);
    if (stop) return;
  }
}

static void *ckpt_main(void *arg) {
  sq_store *s = arg;
  pthread_mutex_lock(&s->ck_mu);
  for (;;) {
    while (!s->ck_req && !s->ck_stop) pthread_cond_wait(&s->ck_cv, &s->ck_mu);
    if (s->ck_stop) break;
    s->ck_req = 0;
    s->ck_running = 1;
    pthread_mutex_unlock(&s->ck_mu);
    ckpt_run(s);
    pthread_mutex_lock(&s->ck_mu);
    s->ck_running = 0;
    s->ck_runs++;
    pthread_cond_broadcast(&s->ck_cv);
  }
  pthread_mutex_unlock(&s->ck_mu);
  return NULL;
}

/* Before the owner opens a write transaction: if a RESTART is under way (it copies a short tail, fsyncs the
 * database file and lets the WAL start over), let it finish first, waiting at most CKPT_YIELD_MAX_MS. */
static void ckpt_yield(sq_store *s) {
  pthread_mutex_lock(&s->ck_mu);
  if (s->ck_restarting) {
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_nsec += CKPT_YIELD_MAX_MS * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
      dl.tv_sec++;
      dl.tv_nsec -= 1000000000L;
    }
    while (s->ck_restarting && pthread_cond_timedwait(&s->ck_cv, &s->ck_mu, &dl) == 0) {
    }
  }
  pthread_mutex_unlock(&s->ck_mu);
}

/* The main connection's WAL hook (after each commit, write lock released): wake the checkpointer. */
static int ckpt_wal_hook(void *ud, sqlite3 *db, const char *name, int frames) {
  sq_store *s = ud;
  (void)db;
  (void)name;
  if (frames < 0 || (uint32_t)frames < s->o.checkpoint_frames) return SQLITE_OK;
  pthread_mutex_lock(&s->ck_mu);
  if (!s->ck_req && !s->ck_running && !s->ck_stop) { /* a run in progress goes on until the WAL restarts */
    s->ck_req = 1;
    pthread_cond_broadcast(&s->ck_cv);
  }
  pthread_mutex_unlock(&s->ck_mu);
  return SQLITE_OK;
}

/* Opens the checkpointer's connection and starts its thread (signals blocked: they are the application's).
 * Returns 0, or nonzero when the store must checkpoint inline instead (no thread-safe SQLite, no thread). */
static int ckpt_start(sq_store *s) {
  if (!sqlite3_threadsafe()) return -1;
  if (pthread_mutex_init(&s->ck_mu, NULL)) return -1;
  pthread_condattr_t ca;
  int bad = pthread_condattr_init(&ca);
  if (!bad) {
    bad = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) || pthread_cond_init(&s->ck_cv, &ca);
    pthread_condattr_destroy(&ca);
  }
  if (bad) {
    pthread_mutex_destroy(&s->ck_mu);
    return -1;
  }
  s->ck_sync_init = 1;
  if (sqlite3_open_v2(s->o.path, &s->ck_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
    goto fail;
  s->ck_busy = (busy_poll){.timeout_ns = (uint64_t)CKPT_THREAD_TIMEOUT_MS * 1000000u,
                           .sleep_ns = CKPT_POLL_NS};
  sqlite3_busy_handler(s->ck_db, busy_poll_cb, &s->ck_busy);
  char sql[96];
  snprintf(sql, sizeof sql, "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA journal_size_limit=%d",
           s->o.sync == LP2P_MSGSTORE_SYNC_NORMAL ? "NORMAL" : "FULL", JOURNAL_SIZE_LIMIT);
  if (sqlite3_exec(s->ck_db, sql, NULL, NULL, NULL) != SQLITE_OK) goto fail;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&s->ck_thread, NULL, ckpt_main, s);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc) goto fail;
  s->ck_started = 1;
  return 0;
fail:
  fprintf(stderr, "lp2p msgstore: no background checkpointer (%s): checkpoints inline\n",
          s->ck_db ? sqlite3_errmsg(s->ck_db) : "thread");
  sqlite3_close(s->ck_db);
  s->ck_db = NULL;
  return -1;
}

static void ckpt_stop(sq_store *s) {
  if (s->ck_started) {
    pthread_mutex_lock(&s->ck_mu);
    s->ck_stop = 1;
    pthread_cond_broadcast(&s->ck_cv);
    pthread_mutex_unlock(&s->ck_mu);
    pthread_join(s->ck_thread, NULL);
    s->ck_started = 0;
  }
  sqlite3_close(s->ck_db);
  s->ck_db = NULL;
  if (s->ck_sync_init) {
    pthread_cond_destroy(&s->ck_cv);
    pthread_mutex_destroy(&s->ck_mu);
    s->ck_sync_init = 0;
  }
}

long lp2p_msgstore_sqlite_checkpoint_idle(lp2p_msgstore *b) {
  if (!b) return LP2P_ERR_INVAL;
  sq_store *s = (sq_store *)b;
  if (!s->ck_started) return 0;
  pthread_mutex_lock(&s->ck_mu);
  while ((s->ck_req || s->ck_running) && !s->ck_stop) pthread_cond_wait(&s->ck_cv, &s->ck_mu);
  long n = s->ck_runs;
  pthread_mutex_unlock(&s->ck_mu);
  return n;
}

/* ---- open / close ---- */

static void sq_free(sq_store *s) {
  ckpt_stop(s); /* its connection closes first: the last one to close checkpoints and removes the WAL */
  for (int i = 0; i < ST__N; i++) sqlite3_finalize(s->st[i]);
  sqlite3_close(s->db);
  scratch_reset(s);
  free(s->dones);
  free(s->conv);
  free(s);
}

static void sq_close(lp2p_msgstore *b) {
  if (!b) return;
  sq_flush(b);
  sq_free((sq_store *)b);
}

static const lp2p_msgstore_ops sq_ops = {
    .struct_size = sizeof(lp2p_msgstore_ops),
    .close = sq_close,
    .flush = sq_flush,
    .pending = sq_pending,
    .outbox_put = sq_outbox_put,
    .outbox_next_due = sq_outbox_next_due,
    .outbox_mark_attempt = sq_outbox_mark_attempt,
    .outbox_mark_delivered = sq_outbox_mark_delivered,
    .outbox_mark_dead = sq_outbox_mark_dead,
    .outbox_get = sq_outbox_get,
    .outbox_list = sq_outbox_list,
    .inbox_put_if_new = sq_inbox_put_if_new,
    .inbox_list = sq_inbox_list,
    .inbox_ack = sq_inbox_ack,
    .inbox_prune = sq_inbox_prune,
    .xfer_begin = sq_xfer_begin,
    .xfer_mark_chunk = sq_xfer_mark_chunk,
    .xfer_get = sq_xfer_get,
    .xfer_delete = sq_xfer_delete,
    .kv_put = sq_kv_put,
    .kv_get = sq_kv_get,
    .kv_del = sq_kv_del,
    .kv_list = sq_kv_list,
    .inbox_put_taken = sq_inbox_put_taken,
};

static int exec(sq_store *s, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
  fprintf(stderr, "lp2p msgstore: %s: %s\n", sql, msg ? msg : "?");
  sqlite3_free(msg);
  return LP2P_ERR_IO;
}

static int read_version(sq_store *s, int *v) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, "SELECT version FROM schema_version", -1, &st, NULL) != SQLITE_OK)
    return sq_err(s, "schema_version");
  int rc = sqlite3_step(st);
  *v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
  sqlite3_finalize(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_err(s, "schema_version");
}

static int migrate(sq_store *s, int target) {
  int rv = exec(s, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)");
  if (rv) return rv;
  for (;;) {
    int v;
    if ((rv = exec(s, "BEGIN IMMEDIATE"))) return rv;
    if ((rv = read_version(s, &v))) goto fail; /* re-read under the write lock */
    if (v > LP2P_MSGSTORE_SCHEMA_VERSION) {
      fprintf(stderr, "lp2p msgstore: schema version %d is newer than this build (%d)\n", v,
              LP2P_MSGSTORE_SCHEMA_VERSION);
      rv = LP2P_ERR_UNSUPPORTED;
      goto fail;
    }
    if (v >= target) {
      s->version = v;
      return exec(s, "COMMIT");
    }
    if ((rv = exec(s, migrations[v]))) goto fail;
    char sql[96];
    snprintf(sql, sizeof sql, "DELETE FROM schema_version; INSERT INTO schema_version VALUES(%d)", v + 1);
    if ((rv = exec(s, sql))) goto fail;
    if ((rv = exec(s, "COMMIT"))) goto fail;
  }
fail:
  sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return rv;
}

int lp2p_msgstore_sqlite_open(lp2p_msgstore **out, const lp2p_msgstore_sqlite_opts *opts) {
  if (!out) return LP2P_ERR_INVAL;
  *out = NULL;
  if (!opts || opts->struct_size < offsetof(lp2p_msgstore_sqlite_opts, schema_version) || !opts->path)
    return LP2P_ERR_INVAL;
  if (sodium_init() < 0) return LP2P_ERR_INTERNAL;
  sq_store *s = calloc(1, sizeof *s);
  if (!s) return LP2P_ERR_NOMEM;
  s->base.ops = &sq_ops;
  memcpy(&s->o, opts, opts->struct_size < sizeof s->o ? opts->struct_size : sizeof s->o);
  if (!s->o.busy_timeout_ms) s->o.busy_timeout_ms = 5000;
  if (!s->o.max_attempts) s->o.max_attempts = 10;
  if (!s->o.outbox_max_msgs) s->o.outbox_max_msgs = 100000;
  if (!s->o.inbox_max_msgs) s->o.inbox_max_msgs = 10000;
  if (!s->o.inbox_max_bytes) s->o.inbox_max_bytes = 64u << 20;
  if (!s->o.checkpoint_frames) s->o.checkpoint_frames = CKPT_FRAMES_DEFAULT;
  if (s->o.checkpoint_frames > INT32_MAX) s->o.checkpoint_frames = INT32_MAX;
  int target = s->o.schema_version > 0 && s->o.schema_version < LP2P_MSGSTORE_SCHEMA_VERSION
                   ? s->o.schema_version : LP2P_MSGSTORE_SCHEMA_VERSION;
  int rv = LP2P_ERR_IO;
  if (sqlite3_open_v2(opts->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK) {
    fprintf(stderr, "lp2p msgstore: open %s: %s\n", opts->path, s->db ? sqlite3_errmsg(s->db) : "no memory");
    goto fail;
  }
  s->busy = (busy_poll){.timeout_ns = (uint64_t)s->o.busy_timeout_ms * 1000000u, .sleep_ns = CKPT_POLL_NS};
  sqlite3_busy_handler(s->db, busy_poll_cb, &s->busy);
  sqlite3_extended_result_codes(s->db, 0);
  if ((rv = exec(s, "PRAGMA journal_mode=WAL"))) goto fail;
  if ((rv = exec(s, s->o.sync == LP2P_MSGSTORE_SYNC_NORMAL ? "PRAGMA synchronous=NORMAL"
                                                           : "PRAGMA synchronous=FULL")))
    goto fail;
  if ((rv = exec(s, "PRAGMA foreign_keys=ON"))) goto fail;
  if ((rv = exec(s, "PRAGMA cache_size=-16384"))) goto fail; /* 16 MiB: the random-id index stays hot */
  char jsl[64];
  snprintf(jsl, sizeof jsl, "PRAGMA journal_size_limit=%d", JOURNAL_SIZE_LIMIT);
  if ((rv = exec(s, jsl))) goto fail;
  if ((rv = exec(s, "PRAGMA temp_store=MEMORY"))) goto fail;
  if ((rv = migrate(s, target))) goto fail;
  if (s->version == LP2P_MSGSTORE_SCHEMA_VERSION) {
    for (int i = 0; i < ST__N; i++) {
      if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
        rv = sq_err(s, stmt_sql[i]);
        goto fail;
      }
    }
    if ((rv = reload_counts(s))) goto fail;
    /* Checkpoints: in the background (see the top of the file), or inline at the same threshold. */
    if (ckpt_start(s) == 0) {
      sqlite3_wal_autocheckpoint(s->db, 0);
      sqlite3_wal_hook(s->db, ckpt_wal_hook, s);
    } else {
      sqlite3_wal_autocheckpoint(s->db, (int)s->o.checkpoint_frames);
    }
  } else {
    /* An older schema (tests only): nothing but close may be used. */
    static const lp2p_msgstore_ops closed_ops = {.struct_size = sizeof(lp2p_msgstore_ops), .close = sq_close};
    s->base.ops = &closed_ops;
  }
  *out = &s->base;
  return 0;
fail:
  sq_free(s);
  return rv;
}

int lp2p_msgstore_sqlite_schema_version(lp2p_msgstore *b) {
  return b ? ((sq_store *)b)->version : LP2P_ERR_INVAL;
}

uint64_t lp2p_msgstore_backoff(uint32_t attempts, uint64_t base_ms, uint64_t max_ms, uint32_t jitter_permille,
                               uint32_t rnd) {
  uint64_t d = base_ms;
  for (uint32_t i = 1; i < attempts && d < max_ms; i++) d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
  if (d > max_ms) d = max_ms;
  if (jitter_permille && rnd) {
    uint64_t span = d / 1000 * jitter_permille + (d % 1000) * jitter_permille / 1000;
    if (span) d += rnd % (span + 1);
  }
  return d;
}
