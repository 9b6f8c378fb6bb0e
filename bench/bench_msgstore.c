/* bench_msgstore.c - durable messages per second through the messaging store (SQLite, WAL): one sender
 * puts 100-byte messages into the outbox and calls flush() every `batch` puts; a message counts when its
 * completion (after COMMIT) has fired. batch 1 = no group commit (one transaction and WAL fsync per
 * message). synchronous=FULL (fsync at every commit) unless the row says NORMAL.
 *
 * The database lives on the data dir's filesystem: $LP2P_BENCH_DIR, else $XDG_DATA_HOME/lp2p, else
 * ~/.local/share/lp2p (a temporary subdirectory, removed afterwards). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "protocols/messaging/store.h"

static void on_done(void *ud, int status) {
  uint64_t *n = ud;
  if (status == 0) (*n)++;
}

static void mkdirs(const char *p) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s", p);
  for (char *q = buf + 1; *q; q++) {
    if (*q != '/') continue;
    *q = 0;
    mkdir(buf, 0700);
    *q = '/';
  }
  mkdir(buf, 0700);
}

static double run(const char *dir, int idx, unsigned batch, lp2p_msgstore_sync sync) {
  char path[700];
  snprintf(path, sizeof path, "%s/bench%d.db", dir, idx);
  lp2p_msgstore_sqlite_opts o = {.struct_size = sizeof o, .path = path, .sync = sync,
                                 .outbox_max_msgs = UINT64_MAX};
  lp2p_msgstore *s;
  int rv = lp2p_msgstore_sqlite_open(&s, &o);
  if (rv) {
    fprintf(stderr, "open %s: %s\n", path, lp2p_strerror(rv));
    exit(1);
  }
  static const uint8_t peer[34] = {0x12, 0x20, 1, 2, 3};
  uint8_t body[100];
  memset(body, 'm', sizeof body);
  uint64_t done = 0, put = 0, t0 = bench_now_ns(), el;
  do {
    for (unsigned i = 0; i < batch; i++, put++) {
      lp2p_msgid id;
      uint64_t seq;
      if (lp2p_msgstore_outbox_put(s, peer, sizeof peer, body, sizeof body, put, 0, &id, &seq, on_done, &done)) {
        fprintf(stderr, "put failed\n");
        exit(1);
      }
    }
    if (lp2p_msgstore_flush(s)) {
      fprintf(stderr, "flush failed\n");
      exit(1);
    }
    el = bench_now_ns() - t0;
  } while (bench_seconds(el) < bench_min_seconds() * 2);
  lp2p_msgstore_close(s);
  remove(path);
  char wal[720];
  snprintf(wal, sizeof wal, "%s-wal", path);
  remove(wal);
  snprintf(wal, sizeof wal, "%s-shm", path);
  remove(wal);
  return bench_rate((double)done, el);
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "msgstore");
  char base[512];
  const char *d = getenv("LP2P_BENCH_DIR"), *x = getenv("XDG_DATA_HOME"), *h = getenv("HOME");
  if (d && *d) snprintf(base, sizeof base, "%s", d);
  else if (x && *x) snprintf(base, sizeof base, "%s/lp2p", x);
  else snprintf(base, sizeof base, "%s/.local/share/lp2p", h ? h : "/tmp");
  mkdirs(base);
  char dir[600];
  snprintf(dir, sizeof dir, "%s/bench-msgstore-XXXXXX", base);
  if (!mkdtemp(dir)) {
    perror(dir);
    return 1;
  }
  fprintf(stderr, "bench_msgstore: database in %s\n", dir);
  static const struct {
    unsigned batch;
    lp2p_msgstore_sync sync;
    const char *name;
  } rows[] = {
      {1, LP2P_MSGSTORE_SYNC_FULL, "durable msgs, no group commit (batch 1), sync FULL"},
      {16, LP2P_MSGSTORE_SYNC_FULL, "durable msgs, group commit batch 16, sync FULL"},
      {256, LP2P_MSGSTORE_SYNC_FULL, "durable msgs, group commit batch 256, sync FULL"},
      {1024, LP2P_MSGSTORE_SYNC_FULL, "durable msgs, group commit batch 1024, sync FULL"},
      {1, LP2P_MSGSTORE_SYNC_NORMAL, "msgs, batch 1, sync NORMAL (crash-safe, not power-safe)"},
      {256, LP2P_MSGSTORE_SYNC_NORMAL, "msgs, batch 256, sync NORMAL (crash-safe, not power-safe)"},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    report(rows[i].name, run(dir, (int)i, rows[i].batch, rows[i].sync), "msg/s");
  rmdir(dir);
  return bench_done();
}
