/* test_msgstore.c - the durable messaging store (protocols/messaging/store.h) over its SQLite
 * implementation, on real files: outbox lifecycle, ids and per-conversation seq, retry schedule and
 * dead letters across restarts, inbox de-duplication across restarts, quotas, migrations from a v1
 * database, group-commit completions only after COMMIT (checked from a second connection), file-transfer
 * progress, kv, and a child process killed with SIGKILL while writing. */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "protocols/messaging/store.h"
#include "test.h"

static char g_dir[64];
static char g_path[128];
static int g_case;

/* A fresh database path for each test. */
static const char *fresh_path(void) {
  snprintf(g_path, sizeof g_path, "%s/t%d.db", g_dir, ++g_case);
  return g_path;
}

static lp2p_msgstore *open_store(const char *path, int schema_version, uint64_t in_max, uint64_t in_bytes,
                                 uint64_t out_max, uint32_t max_attempts) {
  lp2p_msgstore_sqlite_opts o = {sizeof o, path, LP2P_MSGSTORE_SYNC_FULL, 0, max_attempts, out_max, in_max,
                                 in_bytes, schema_version, 0};
  lp2p_msgstore *s = NULL;
  int rv = lp2p_msgstore_sqlite_open(&s, &o);
  if (rv) fprintf(stderr, "open %s: %s\n", path, lp2p_strerror(rv));
  return s;
}
static lp2p_msgstore *open_default(const char *path) { return open_store(path, 0, 0, 0, 0, 0); }

typedef struct counter {
  int n, ok, err;
} counter;
static void on_done(void *ud, int status) {
  counter *c = ud;
  c->n++;
  if (status == 0) c->ok++;
  else c->err++;
}

static const uint8_t PA[] = {0x12, 0x20, 'a', 'a', 'a'};
static const uint8_t PB[] = {0x12, 0x20, 'b', 'b', 'b'};

/* Rows in `table` seen by an independent connection (committed data only). */
static long count_rows(const char *path, const char *table) {
  sqlite3 *db;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return -1;
  char sql[96];
  snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", table);
  sqlite3_stmt *st;
  long n = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

static int raw_exec(const char *path, const char *sql) {
  sqlite3 *db;
  if (sqlite3_open(path, &db) != SQLITE_OK) return -1;
  int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  sqlite3_close(db);
  return rc == SQLITE_OK ? 0 : -1;
}

/* ---- tests ---- */

TEST(outbox_lifecycle_ids_and_seq) {
  const char *path = fresh_path();
  lp2p_msgstore *s = open_default(path);
  REQUIRE(s);
  counter c = {0};
  lp2p_msgid id[5];
  uint64_t seq[5];
  const uint8_t *peers[5] = {PA, PA, PB, PA, PB};
  for (int i = 0; i < 5; i++) {
    char body[16];
    int n = snprintf(body, sizeof body, "m%d", i);
    CHECK_EQ(lp2p_msgstore_outbox_put(s, peers[i], sizeof PA, (const uint8_t *)body, (size_t)n, 1000 + i, 0,
                                      &id[i], &seq[i], on_done, &c),
             0);
  }
  CHECK_EQ(c.n, 0); /* never from inside the call */
  CHECK_EQ(lp2p_msgstore_pending(s), 5);
  CHECK_EQ(lp2p_msgstore_flush(s), 0);
  CHECK_EQ(c.ok, 5);
  CHECK_EQ(lp2p_msgstore_pending(s), 0);
  CHECK_EQ(seq[0], 1);
  CHECK_EQ(seq[1], 2);
  CHECK_EQ(seq[2], 1);
  CHECK_EQ(seq[3], 3);
  CHECK_EQ(seq[4], 2);
  static const uint8_t zero[16];
  for (int i = 0; i < 5; i++) {
    CHECK(memcmp(id[i].b, zero, 16) != 0);
    for (int j = 0; j < i; j++) CHECK(memcmp(id[i].b, id[j].b, 16) != 0);
  }
  /* Due order: earliest next_at first. */
  lp2p_msgstore_msg m;
  uint64_t wake = 0;
  CHECK_EQ(lp2p_msgstore_outbox_next_due(s, 999, &m, &wake), 0);
  CHECK_EQ(wake, 1000);
  CHECK_EQ(lp2p_msgstore_outbox_next_due(s, 5000, &m, &wake), 1);
  CHECK_MEM(m.id.b, id[0].b, 16);
  CHECK_EQ(m.body_len, 2);
  CHECK_MEM(m.body, "m0", 2);
  CHECK_EQ(m.peer_len, sizeof PA);
  CHECK_MEM(m.peer, PA, sizeof PA);
  CHECK_EQ(m.state, LP2P_OUTBOX_PENDING);
  /* A retry later: the next one comes first now; the id stays the same (idempotency key). */
  CHECK_EQ(lp2p_msgstore_outbox_mark_attempt(s, &id[0], 9000, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_outbox_next_due(s, 5000, &m, NULL), 1);
  CHECK_MEM(m.id.b, id[1].b, 16);
  CHECK_EQ(lp2p_msgstore_outbox_mark_delivered(s, &id[1], on_done, &c), 0);
  CHECK_EQ(lp2p_msgstore_outbox_mark_delivered(s, &id[1], NULL, NULL), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_msgstore_outbox_get(s, &id[1], &m), 0);
  CHECK_EQ(m.state, LP2P_OUTBOX_DELIVERED);
  CHECK(m.body == NULL);
  CHECK_EQ(lp2p_msgstore_outbox_get(s, &id[0], &m), 0);
  CHECK_EQ(m.attempts, 1);
  CHECK_EQ(m.next_at, 9000);
  lp2p_msgstore_msg list[8];
  CHECK_EQ(lp2p_msgstore_outbox_list(s, LP2P_OUTBOX_PENDING, 0, list, 8), 4);
  CHECK_EQ(lp2p_msgstore_outbox_list(s, LP2P_OUTBOX_ANY, 0, list, 8), 5);
  CHECK_EQ(lp2p_msgstore_outbox_list(s, LP2P_OUTBOX_ANY, 3, list, 8), 2);
  CHECK_EQ(lp2p_msgstore_outbox_list(s, LP2P_OUTBOX_DELIVERED, 0, list, 8), 1);
  lp2p_msgid unknown = {{1}};
  CHECK_EQ(lp2p_msgstore_outbox_get(s, &unknown, &m), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_msgstore_outbox_put(s, PA, 0, NULL, 0, 1, 0, &unknown, NULL, NULL, NULL), LP2P_ERR_INVAL);
  lp2p_msgstore_close(s); /* close flushes: the delivered completion fires */
  CHECK_EQ(c.ok, 6);
  CHECK_EQ(c.err, 0);
}

TEST(retry_schedule_and_seq_persist_across_restart) {
  const char *path = fresh_path();
  lp2p_msgstore *s = open_default(path);
  REQUIRE(s);
  lp2p_msgid id, id2;
  uint64_t seq;
  CHECK_EQ(lp2p_msgstore_outbox_put(s, PA, sizeof PA, (const uint8_t *)"x", 1, 100, 0, &id, &seq, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_outbox_mark_attempt(s, &id, 5000, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_flush(s), 0);
  lp2p_msgstore_close(s);
  s = open_default(path);
  REQUIRE(s);
  lp2p_msgstore_msg m;
  uint64_t wake = 0;
  CHECK_EQ(lp2p_msgstore_outbox_next_due(s, 4999, &m, &wake), 0);
  CHECK_EQ(wake, 5000);
  CHECK_EQ(lp2p_msgstore_outbox_next_due(s, 5000, &m, NULL), 1);
  CHECK_MEM(m.id.b, id.b, 16);
  CHECK_EQ(m.attempts, 1);
  CHECK_EQ(lp2p_msgstore_outbox_put(s, PA, sizeof PA, (const uint8_t *)"y", 1, 200, 0, &id2, &seq, NULL, NULL), 0);
  CHECK_EQ(seq, 2); /* the conversation counter survived the restart */
  lp2p_msgstore_close(s);
  /* Nothing pending: wake is NEVER. */
  s = open_default(fresh_path());
  REQUIRE(s);
  CHECK_EQ(lp2p_msgstore_outbox_next_due(s, 1, &m, &wake), 0);
  CHECK(wake == LP2P_TSTAMP_NEVER);
  lp2p_msgstore_close(s);
}

TEST(dead_letters) {
  const char *path = fresh_path();
  lp2p_msgstore *s = open_store(path, 0, 0, 0, 0, 3);
  REQUIRE(s);
  lp2p_msgid a, b, c;
  CHECK_EQ(lp2p_msgstore_outbox_put(s, PA, sizeof PA, (const uint8_t *)"a", 1, 0, 0, &a, NULL, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_outbox_put(s, PA, sizeof PA, (const uint8_t *)"b", 1, 0, 2000, &b, NULL, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_outbox_put(s, PB, sizeof PB, (const uint8_t *)"c", 1, 0, 0, &c, NULL, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_outbox_mark_attempt(s, &a, 10, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_outbox_mark_attempt(s, &a, 20, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_outbox_mark_attempt(s, &a, 40, NULL, NULL), 1); /* third of 3: dead */
  CHECK_EQ(lp2p_msgstore_outbox_mark_attempt(s, &a, 80, NULL, NULL), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_msgstore_outbox_mark_dead(s, &c, "peer unknown", NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_flush(s), 0);
  lp2p_msgstore_close(s);
  s = open_store(path, 0, 0, 0, 0, 3);
  REQUIRE(s);
  lp2p_msgstore_msg m;
  CHECK_EQ(lp2p_msgstore_outbox_next_due(s, 1999, &m, NULL), 1); /* b, not yet expired */
  CHECK_MEM(m.id.b, b.b, 16);
  CHECK_EQ(lp2p_msgstore_outbox_next_due(s, 2000, &m, NULL), 0); /* TTL reached: b is dead now */
  CHECK_EQ(lp2p_msgstore_flush(s), 0);
  lp2p_msgstore_close(s);
  s = open_store(path, 0, 0, 0, 0, 3);
  REQUIRE(s);
  lp2p_msgstore_msg dead[4];
  REQUIRE(lp2p_msgstore_outbox_list(s, LP2P_OUTBOX_DEAD, 0, dead, 4) == 3);
  CHECK_STR(dead[0].dead_reason, "attempts");
  CHECK_MEM(dead[0].body, "a", 1); /* dead letters keep their body for the app */
  CHECK_STR(dead[1].dead_reason, "ttl");
  CHECK_STR(dead[2].dead_reason, "peer unknown");
  CHECK_EQ(lp2p_msgstore_outbox_list(s, LP2P_OUTBOX_PENDING, 0, dead, 4), 0);
  lp2p_msgstore_close(s);
}

TEST(inbox_dedup_across_restart) {
  const char *path = fresh_path();
  lp2p_msgstore *s = open_default(path);
  REQUIRE(s);
  lp2p_msgid id = {{7, 7, 7}};
  counter c = {0};
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PA, sizeof PA, &id, 1, (const uint8_t *)"hi", 2, 10, on_done, &c),
           LP2P_INBOX_NEW);
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PA, sizeof PA, &id, 1, (const uint8_t *)"hi", 2, 11, on_done, &c),
           LP2P_INBOX_DUPLICATE); /* same batch */
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PB, sizeof PB, &id, 1, (const uint8_t *)"yo", 2, 12, on_done, &c),
           LP2P_INBOX_NEW); /* other sender, same id */
  CHECK_EQ(c.n, 0);
  CHECK_EQ(lp2p_msgstore_flush(s), 0);
  CHECK_EQ(c.ok, 3);
  lp2p_msgstore_close(s);
  s = open_default(path);
  REQUIRE(s);
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PA, sizeof PA, &id, 1, (const uint8_t *)"hi", 2, 20, NULL, NULL),
           LP2P_INBOX_DUPLICATE);
  lp2p_msgstore_msg m[4];
  REQUIRE(lp2p_msgstore_inbox_list(s, m, 4) == 2);
  CHECK_MEM(m[0].peer, PA, sizeof PA);
  CHECK_MEM(m[0].body, "hi", 2);
  CHECK_EQ(m[0].seq, 1);
  CHECK_EQ(lp2p_msgstore_inbox_ack(s, PA, sizeof PA, &id, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_inbox_ack(s, PA, sizeof PA, &id, NULL, NULL), LP2P_ERR_NOT_FOUND);
  lp2p_msgstore_close(s);
  s = open_default(path);
  REQUIRE(s);
  /* Acked and restarted: still a duplicate (effectively-once), no longer listed. */
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PA, sizeof PA, &id, 1, (const uint8_t *)"hi", 2, 30, NULL, NULL),
           LP2P_INBOX_DUPLICATE);
  CHECK_EQ(lp2p_msgstore_inbox_list(s, m, 4), 1);
  /* Pruning drops acked records older than the cut; then the id is new again. */
  CHECK_EQ(lp2p_msgstore_inbox_prune(s, 11, NULL, NULL), 1);
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PA, sizeof PA, &id, 1, (const uint8_t *)"hi", 2, 40, NULL, NULL),
           LP2P_INBOX_NEW);
  lp2p_msgstore_close(s);
}

TEST(quotas) {
  lp2p_msgstore *s = open_store(fresh_path(), 0, 2, 100, 2, 0);
  REQUIRE(s);
  lp2p_msgid i1 = {{1}}, i2 = {{2}}, i3 = {{3}}, i4 = {{4}};
  uint8_t big[60] = {0};
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PA, sizeof PA, &i1, 1, big, 10, 0, NULL, NULL), LP2P_INBOX_NEW);
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PA, sizeof PA, &i2, 2, big, 60, 0, NULL, NULL), LP2P_INBOX_NEW);
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PA, sizeof PA, &i3, 3, big, 1, 0, NULL, NULL), LP2P_ERR_LIMIT);
  /* A duplicate is still recognised at quota. */
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PA, sizeof PA, &i1, 1, big, 10, 0, NULL, NULL),
           LP2P_INBOX_DUPLICATE);
  CHECK_EQ(lp2p_msgstore_inbox_ack(s, PA, sizeof PA, &i1, NULL, NULL), 0);
  /* Count is fine now, bytes are not: 60 + 60 > 100. */
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PA, sizeof PA, &i3, 3, big, 60, 0, NULL, NULL), LP2P_ERR_LIMIT);
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PA, sizeof PA, &i3, 3, big, 40, 0, NULL, NULL), LP2P_INBOX_NEW);
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PA, sizeof PA, &i4, 4, big, 0, 0, NULL, NULL), LP2P_ERR_LIMIT);
  /* Outbox quota: pending messages. */
  lp2p_msgid o1, o2, o3;
  CHECK_EQ(lp2p_msgstore_outbox_put(s, PB, sizeof PB, big, 1, 0, 0, &o1, NULL, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_outbox_put(s, PB, sizeof PB, big, 1, 0, 0, &o2, NULL, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_outbox_put(s, PB, sizeof PB, big, 1, 0, 0, &o3, NULL, NULL, NULL), LP2P_ERR_LIMIT);
  CHECK_EQ(lp2p_msgstore_outbox_mark_delivered(s, &o1, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_outbox_put(s, PB, sizeof PB, big, 1, 0, 0, &o3, NULL, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_flush(s), 0);
  lp2p_msgstore_close(s);
}

TEST(quota_counts_survive_restart) {
  const char *path = fresh_path();
  lp2p_msgstore *s = open_store(path, 0, 1, 0, 0, 0);
  REQUIRE(s);
  lp2p_msgid i1 = {{1}}, i2 = {{2}};
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PA, sizeof PA, &i1, 1, NULL, 0, 0, NULL, NULL), LP2P_INBOX_NEW);
  lp2p_msgstore_close(s);
  s = open_store(path, 0, 1, 0, 0, 0);
  REQUIRE(s);
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PA, sizeof PA, &i2, 2, NULL, 0, 0, NULL, NULL), LP2P_ERR_LIMIT);
  lp2p_msgstore_close(s);
}

TEST(migrate_from_v1) {
  const char *path = fresh_path();
  lp2p_msgstore *s = open_store(path, 1, 0, 0, 0, 0);
  REQUIRE(s);
  CHECK_EQ(lp2p_msgstore_sqlite_schema_version(s), 1);
  CHECK_EQ(lp2p_msgstore_flush(s), LP2P_ERR_UNSUPPORTED); /* an old schema: close only */
  lp2p_msgstore_close(s);
  CHECK_EQ(count_rows(path, "xfer"), -1); /* not there yet */
  /* A v1 inbox row written by "the old version". */
  CHECK_EQ(raw_exec(path, "INSERT INTO inbox(sender, id, seq, body, body_len, acked, received_at) VALUES("
                          "x'1220616161', x'09090909090909090909090909090909', 1, x'6869', 2, 0, 5)"),
           0);
  s = open_default(path);
  REQUIRE(s);
  CHECK_EQ(lp2p_msgstore_sqlite_schema_version(s), LP2P_MSGSTORE_SCHEMA_VERSION);
  lp2p_msgid id;
  memset(id.b, 9, 16);
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PA, sizeof PA, &id, 1, (const uint8_t *)"hi", 2, 6, NULL, NULL),
           LP2P_INBOX_DUPLICATE);
  CHECK_EQ(lp2p_msgstore_kv_put(s, "peers", (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_flush(s), 0);
  lp2p_msgstore_close(s);
  CHECK_EQ(count_rows(path, "kv"), 1);
  /* A database from the future is refused. */
  CHECK_EQ(raw_exec(path, "UPDATE schema_version SET version = 99"), 0);
  lp2p_msgstore_sqlite_opts o = {.struct_size = sizeof o, .path = path};
  CHECK_EQ(lp2p_msgstore_sqlite_open(&s, &o), LP2P_ERR_UNSUPPORTED);
  CHECK(s == NULL);
}

typedef struct chain_ctx {
  lp2p_msgstore *s;
  counter c;
  long committed_when_called;
  const char *path;
} chain_ctx;
static void on_done_chain(void *ud, int status) {
  chain_ctx *x = ud;
  on_done(&x->c, status);
  x->committed_when_called = count_rows(x->path, "outbox");
  lp2p_msgid id;
  /* A write from inside a completion goes to the next batch. */
  lp2p_msgstore_outbox_put(x->s, PB, sizeof PB, (const uint8_t *)"z", 1, 0, 0, &id, NULL, NULL, NULL);
}

TEST(group_commit_completions_only_after_commit) {
  const char *path = fresh_path();
  lp2p_msgstore *s = open_default(path);
  REQUIRE(s);
  counter c = {0};
  lp2p_msgid id;
  for (int i = 0; i < 10; i++)
    CHECK_EQ(lp2p_msgstore_outbox_put(s, PA, sizeof PA, (const uint8_t *)"q", 1, 0, 0, &id, NULL, on_done, &c), 0);
  chain_ctx x = {s, {0}, -1, path};
  CHECK_EQ(lp2p_msgstore_outbox_put(s, PA, sizeof PA, (const uint8_t *)"q", 1, 0, 0, &id, NULL, on_done_chain, &x),
           0);
  CHECK_EQ(lp2p_msgstore_pending(s), 11);
  CHECK_EQ(count_rows(path, "outbox"), 0); /* another connection sees nothing before the commit */
  CHECK_EQ(c.n, 0);
  CHECK_EQ(lp2p_msgstore_flush(s), 0);
  CHECK_EQ(c.ok, 10);
  CHECK_EQ(x.c.ok, 1);
  CHECK_EQ(x.committed_when_called, 11); /* the completion ran after COMMIT */
  CHECK_EQ(lp2p_msgstore_pending(s), 1);  /* the write queued from the callback */
  CHECK_EQ(count_rows(path, "outbox"), 11);
  CHECK_EQ(lp2p_msgstore_flush(s), 0);
  CHECK_EQ(count_rows(path, "outbox"), 12);
  CHECK_EQ(lp2p_msgstore_flush(s), 0); /* nothing pending */
  lp2p_msgstore_close(s);
}

TEST(file_transfer_progress) {
  const char *path = fresh_path();
  lp2p_msgstore *s = open_default(path);
  REQUIRE(s);
  uint8_t xid[16] = {0xaa}, hash[32];
  memset(hash, 0x5c, sizeof hash);
  CHECK_EQ(lp2p_msgstore_xfer_begin(s, xid, PA, sizeof PA, hash, 32, 10 * 1024 + 1, 1024, 0, 1, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_xfer_begin(s, xid, PA, sizeof PA, hash, 32, 10, 1, 0, 1, NULL, NULL), LP2P_ERR_EXISTS);
  CHECK_EQ(lp2p_msgstore_xfer_mark_chunk(s, xid, 0, 2, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_xfer_mark_chunk(s, xid, 1, 3, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_xfer_mark_chunk(s, xid, 3, 4, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_xfer_mark_chunk(s, xid, 1, 5, NULL, NULL), 0); /* idempotent */
  CHECK_EQ(lp2p_msgstore_xfer_mark_chunk(s, xid, 11, 5, NULL, NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_msgstore_flush(s), 0);
  lp2p_msgstore_close(s);
  s = open_default(path);
  REQUIRE(s);
  lp2p_msgstore_xfer x;
  CHECK_EQ(lp2p_msgstore_xfer_get(s, xid, &x), 0);
  CHECK_EQ(x.n_chunks, 11);
  CHECK_EQ(x.n_verified, 3);
  CHECK_EQ(x.verified_prefix, 2);
  CHECK_EQ(x.bitmap[0], 0x0b);
  CHECK_EQ(x.bitmap[1], 0);
  CHECK_EQ(x.total_size, 10 * 1024 + 1);
  CHECK_EQ(x.chunk_size, 1024);
  CHECK_EQ(x.manifest_hash_len, 32);
  CHECK_MEM(x.manifest_hash, hash, 32);
  CHECK_EQ(x.updated_at, 4);
  CHECK_EQ(lp2p_msgstore_xfer_delete(s, xid, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_xfer_get(s, xid, &x), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_msgstore_xfer_delete(s, xid, NULL, NULL), LP2P_ERR_NOT_FOUND);
  lp2p_msgstore_close(s);
}

TEST(kv_table) {
  const char *path = fresh_path();
  lp2p_msgstore *s = open_default(path);
  REQUIRE(s);
  CHECK_EQ(lp2p_msgstore_kv_put(s, "paired", (const uint8_t *)"b", 1, (const uint8_t *)"2", 1, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_kv_put(s, "paired", (const uint8_t *)"a", 1, (const uint8_t *)"1", 1, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_kv_put(s, "paired", (const uint8_t *)"c", 1, (const uint8_t *)"3", 1, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_kv_put(s, "other", (const uint8_t *)"a", 1, (const uint8_t *)"x", 1, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_kv_put(s, "paired", (const uint8_t *)"a", 1, (const uint8_t *)"11", 2, NULL, NULL), 0);
  lp2p_msgstore_close(s);
  s = open_default(path);
  REQUIRE(s);
  const uint8_t *v;
  size_t vl;
  CHECK_EQ(lp2p_msgstore_kv_get(s, "paired", (const uint8_t *)"a", 1, &v, &vl), 0);
  CHECK_EQ(vl, 2);
  CHECK_MEM(v, "11", 2);
  CHECK_EQ(lp2p_msgstore_kv_get(s, "paired", (const uint8_t *)"z", 1, &v, &vl), LP2P_ERR_NOT_FOUND);
  const uint8_t *keys[4];
  size_t kl[4];
  REQUIRE(lp2p_msgstore_kv_list(s, "paired", NULL, 0, keys, kl, 2) == 2);
  CHECK_MEM(keys[0], "a", 1);
  CHECK_MEM(keys[1], "b", 1);
  REQUIRE(lp2p_msgstore_kv_list(s, "paired", (const uint8_t *)"b", 1, keys, kl, 4) == 1);
  CHECK_MEM(keys[0], "c", 1);
  CHECK_EQ(lp2p_msgstore_kv_del(s, "paired", (const uint8_t *)"b", 1, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_kv_del(s, "paired", (const uint8_t *)"b", 1, NULL, NULL), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_msgstore_kv_list(s, "paired", NULL, 0, keys, kl, 4), 2);
  lp2p_msgstore_close(s);
}

TEST(backoff_helper) {
  CHECK_EQ(lp2p_msgstore_backoff(1, 500, 60000, 0, 0), 500);
  CHECK_EQ(lp2p_msgstore_backoff(2, 500, 60000, 0, 0), 1000);
  CHECK_EQ(lp2p_msgstore_backoff(5, 500, 60000, 0, 0), 8000);
  CHECK_EQ(lp2p_msgstore_backoff(200, 500, 60000, 0, 0), 60000);
  uint64_t j = lp2p_msgstore_backoff(3, 1000, 60000, 250, 123456789);
  CHECK(j >= 4000 && j <= 5000);
}

/* ---- kill -9 in the middle of writing ---- */

typedef struct kill_rec {
  uint64_t k;
  uint8_t id[16];
} kill_rec;
typedef struct child_put {
  int fd;
  kill_rec r;
} child_put;
static void child_done(void *ud, int status) {
  child_put *p = ud;
  if (status == 0 && write(p->fd, &p->r, sizeof p->r) != (ssize_t)sizeof p->r) _exit(3);
}

static void child_writer(const char *path, int fd) {
  lp2p_msgstore *s = open_default(path);
  if (!s) _exit(2);
  static child_put puts[64];
  uint64_t k = 0;
  for (unsigned batch = 1;; batch = batch % 37 + 1) {
    for (unsigned i = 0; i < batch; i++, k++) {
      char body[32];
      int n = snprintf(body, sizeof body, "msg-%llu", (unsigned long long)k);
      lp2p_msgid id;
      uint64_t seq;
      puts[i].fd = fd;
      puts[i].r.k = k;
      if (lp2p_msgstore_outbox_put(s, PA, sizeof PA, (const uint8_t *)body, (size_t)n, k, 0, &id, &seq,
                                   child_done, &puts[i]))
        _exit(4);
      memcpy(puts[i].r.id, id.b, 16);
    }
    if (lp2p_msgstore_flush(s)) _exit(5);
  }
}

/* A PASSIVE checkpoint from an independent connection: *log frames in the WAL, *done of them copied. */
static int wal_checkpoint(const char *path, int *log, int *done) {
  sqlite3 *db;
  *log = *done = -1;
  if (sqlite3_open(path, &db) != SQLITE_OK) return -1;
  /* a read first: a connection that has not read yet has not opened the WAL and checkpoints nothing */
  int rc = sqlite3_exec(db, "SELECT COUNT(*) FROM sqlite_master", NULL, NULL, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, log, done);
  sqlite3_close(db);
  return rc == SQLITE_OK ? 0 : -1;
}

static long wal_file_size(const char *path) {
  char w[160];
  snprintf(w, sizeof w, "%s-wal", path);
  struct stat sb;
  return stat(w, &sb) == 0 ? (long)sb.st_size : 0;
}

static lp2p_msgstore *open_ckpt(const char *path, uint32_t checkpoint_frames) {
  lp2p_msgstore_sqlite_opts o = {.struct_size = sizeof o, .path = path, .outbox_max_msgs = 1000000,
                                 .inbox_max_msgs = 1000000, .checkpoint_frames = checkpoint_frames};
  lp2p_msgstore *s = NULL;
  int rv = lp2p_msgstore_sqlite_open(&s, &o);
  if (rv) fprintf(stderr, "open %s: %s\n", path, lp2p_strerror(rv));
  return s;
}

/* After commits and every kind of read, the store holds no read snapshot: a checkpoint from another
 * connection copies every frame of the WAL. (A statement left on its row, as the startup count query was,
 * pinned the snapshot of the open: checkpoints never got past it and the WAL grew without bound.) */
TEST(no_statement_pins_a_wal_snapshot) {
  const char *path = fresh_path();
  lp2p_msgstore *s = open_ckpt(path, 0);
  REQUIRE(s);
  lp2p_msgid ids[20];
  for (int i = 0; i < 20; i++)
    CHECK_EQ(lp2p_msgstore_outbox_put(s, i % 2 ? PA : PB, sizeof PA, (const uint8_t *)"body", 4, 1, 0, &ids[i],
                                      NULL, NULL, NULL), 0);
  lp2p_msgid in_id = {{7}};
  CHECK_EQ(lp2p_msgstore_inbox_put_if_new(s, PB, sizeof PB, &in_id, 1, (const uint8_t *)"x", 1, 1, NULL, NULL),
           LP2P_INBOX_NEW);
  CHECK_EQ(lp2p_msgstore_kv_put(s, "ns", (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, NULL, NULL), 0);
  uint8_t xid[16] = {0x42}, hash[32] = {1};
  CHECK_EQ(lp2p_msgstore_xfer_begin(s, xid, PA, sizeof PA, hash, 32, 4096, 1024, 1, 1, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_flush(s), 0);
  /* reads outside a transaction, each stopping on a row where it can */
  lp2p_msgstore_msg m, list[4];
  uint64_t wake = 0;
  CHECK_EQ(lp2p_msgstore_outbox_next_due(s, 5, &m, &wake), 1);
  CHECK_EQ(lp2p_msgstore_outbox_get(s, &ids[3], &m), 0);
  CHECK_EQ(lp2p_msgstore_outbox_list(s, LP2P_OUTBOX_ANY, 0, list, 4), 4);
  CHECK_EQ(lp2p_msgstore_inbox_list(s, list, 1), 1);
  const uint8_t *v;
  size_t vl;
  CHECK_EQ(lp2p_msgstore_kv_get(s, "ns", (const uint8_t *)"k", 1, &v, &vl), 0);
  const uint8_t *keys[1];
  size_t kls[1];
  CHECK_EQ(lp2p_msgstore_kv_list(s, "ns", NULL, 0, keys, kls, 1), 1);
  lp2p_msgstore_xfer x;
  CHECK_EQ(lp2p_msgstore_xfer_get(s, xid, &x), 0);
  int log, done;
  CHECK_EQ(lp2p_msgstore_sqlite_checkpoint_idle(s), 0); /* far below the threshold: never woken */
  CHECK_EQ(wal_checkpoint(path, &log, &done), 0);
  CHECK(log > 0);
  CHECK_EQ(done, log);
  /* and the same after writes inside a batch that ends with reads and a commit */
  CHECK_EQ(lp2p_msgstore_outbox_mark_attempt(s, &ids[0], 10, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_outbox_mark_delivered(s, &ids[1], NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_inbox_ack(s, PB, sizeof PB, &in_id, NULL, NULL), 0);
  CHECK_EQ(lp2p_msgstore_outbox_next_due(s, 5, &m, &wake), 1);
  CHECK_EQ(lp2p_msgstore_flush(s), 0);
  CHECK_EQ(wal_checkpoint(path, &log, &done), 0);
  CHECK(log > 0);
  CHECK_EQ(done, log);
  lp2p_msgstore_close(s);
}

/* A sustained stream of commits with a low checkpoint threshold: the background checkpointer keeps the WAL
 * file bounded (it starts over instead of growing), and the store's data is all there. */
TEST(background_checkpoints_keep_the_wal_bounded) {
  const char *path = fresh_path();
  enum { FRAMES = 256, ROUNDS = 40, PER_ROUND = 500, BATCH = 50 };
  lp2p_msgstore *s = open_ckpt(path, FRAMES);
  REQUIRE(s);
  uint8_t body[100];
  memset(body, 'w', sizeof body);
  long max_wal = 0, runs = 0;
  for (int r = 0; r < ROUNDS; r++) {
    for (int i = 0; i < PER_ROUND; i++) {
      lp2p_msgid id;
      CHECK_EQ(lp2p_msgstore_outbox_put(s, PA, sizeof PA, body, sizeof body, 1, 0, &id, NULL, NULL, NULL), 0);
      if (i % BATCH == BATCH - 1) CHECK_EQ(lp2p_msgstore_flush(s), 0);
    }
    runs = lp2p_msgstore_sqlite_checkpoint_idle(s); /* each round starts with the checkpointer idle */
    long w = wal_file_size(path);
    if (w > max_wal) max_wal = w;
  }
  /* Unbounded, the WAL would hold every frame of the 20,000 inserts (some 20,000 frames, ~80 MB: see the
   * commit message); bounded, it stays near the threshold plus one round's frames (~500). */
  int log, done;
  CHECK_EQ(wal_checkpoint(path, &log, &done), 0);
  printf("  %ld checkpoint runs; WAL file at most %ld bytes; %d frames at the end, %d copied\n", runs, max_wal,
         log, done);
  CHECK(runs > 0);
  CHECK(max_wal < 2000L * 4120);
  lp2p_msgstore_msg last;
  CHECK_EQ(lp2p_msgstore_outbox_list(s, LP2P_OUTBOX_PENDING, ROUNDS * PER_ROUND - 1, &last, 1), 1);
  CHECK_EQ(last.seq, ROUNDS * PER_ROUND);
  lp2p_msgstore_close(s);
  s = open_ckpt(path, FRAMES);
  REQUIRE(s);
  CHECK_EQ(lp2p_msgstore_outbox_list(s, LP2P_OUTBOX_PENDING, ROUNDS * PER_ROUND - 1, &last, 1), 1);
  CHECK_EQ(last.seq, ROUNDS * PER_ROUND);
  lp2p_msgstore_close(s);
}

TEST(kill9_mid_batch_keeps_every_reported_write) {
  const char *path = fresh_path();
  /* Create the schema first so the child starts writing at once. */
  lp2p_msgstore *s0 = open_store(path, 0, 0, 0, 1000000, 0);
  REQUIRE(s0);
  lp2p_msgstore_close(s0);
  int pfd[2];
  REQUIRE(pipe(pfd) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(pfd[0]);
    child_writer(path, pfd[1]);
    _exit(0);
  }
  close(pfd[1]);
  enum { WANT = 1500, CAP = 1 << 16 };
  kill_rec *got = calloc(CAP, sizeof *got);
  REQUIRE(got);
  size_t n = 0;
  while (n < WANT) {
    ssize_t r = read(pfd[0], &got[n], sizeof *got);
    if (r != (ssize_t)sizeof *got) break;
    n++;
  }
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  /* Completions already written to the pipe before the kill were reported too. */
  while (n < CAP && read(pfd[0], &got[n], sizeof *got) == (ssize_t)sizeof *got) n++;
  close(pfd[0]);
  CHECK(n >= WANT);
  printf("  kill -9 after %zu reported writes\n", n);

  lp2p_msgstore *s = open_default(path);
  if (!s) {
    free(got);
    REQUIRE(s);
  }
  lp2p_msgstore_msg m;
  size_t missing = 0, bad = 0;
  for (size_t i = 0; i < n; i++) {
    lp2p_msgid id;
    memcpy(id.b, got[i].id, 16);
    if (lp2p_msgstore_outbox_get(s, &id, &m)) {
      missing++;
      continue;
    }
    char body[32];
    int bl = snprintf(body, sizeof body, "msg-%llu", (unsigned long long)got[i].k);
    if (m.seq != got[i].k + 1 || m.body_len != (size_t)bl || memcmp(m.body, body, (size_t)bl)) bad++;
  }
  CHECK_EQ(missing, 0);
  CHECK_EQ(bad, 0);
  /* Nothing half-written: rows are exactly seq 1..N, each with its own body. */
  static lp2p_msgstore_msg all[512];
  size_t total = 0, gaps = 0;
  for (;;) {
    int k = lp2p_msgstore_outbox_list(s, LP2P_OUTBOX_ANY, total, all, 512);
    if (k <= 0) break;
    for (int i = 0; i < k; i++) {
      char body[32];
      int bl = snprintf(body, sizeof body, "msg-%llu", (unsigned long long)(total + (size_t)i));
      if (all[i].seq != total + (size_t)i + 1 || all[i].body_len != (size_t)bl ||
          memcmp(all[i].body, body, (size_t)bl))
        gaps++;
    }
    total += (size_t)k;
  }
  CHECK(total >= n);
  CHECK_EQ(gaps, 0);
  lp2p_msgstore_close(s);
  sqlite3 *db;
  REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
  sqlite3_stmt *q;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL) == SQLITE_OK);
  CHECK(sqlite3_step(q) == SQLITE_ROW);
  CHECK_STR((const char *)sqlite3_column_text(q, 0), "ok");
  sqlite3_finalize(q);
  sqlite3_close(db);
  free(got);
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/lp2p-msgstore-XXXXXX");
  if (!mkdtemp(g_dir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(outbox_lifecycle_ids_and_seq);
  RUN(retry_schedule_and_seq_persist_across_restart);
  RUN(dead_letters);
  RUN(inbox_dedup_across_restart);
  RUN(quotas);
  RUN(quota_counts_survive_restart);
  RUN(migrate_from_v1);
  RUN(group_commit_completions_only_after_commit);
  RUN(file_transfer_progress);
  RUN(kv_table);
  RUN(backoff_helper);
  RUN(no_statement_pins_a_wal_snapshot);
  RUN(background_checkpoints_keep_the_wal_bounded);
  RUN(kill9_mid_batch_keeps_every_reported_write);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
  return test_done();
}
