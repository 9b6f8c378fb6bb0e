/* bench_messaging.c - durable messaging end to end (lp2p/messaging.h): one sender process, one receiver
 * process (forked), real TCP on loopback, SQLite with synchronous=FULL on the data dir's filesystem.
 *   - durable messages/s: the sender sends N 100-byte messages as fast as the window allows; a message
 *     counts when the sender has its DELIVERED (both outbox and inbox writes committed, ack received);
 *   - delivery latency p50/p99/max: one message at a time, send() until DELIVERED (two group commits, two
 *     fsyncs and one round trip in the path), split into phases at the sender's events: send->QUEUED (the
 *     outbox commit), QUEUED->SENT (onto the stream), SENT->DELIVERED (wire, the receiver's inbox commit,
 *     the ack back); next to them the physical floor measured in the same run and directory: one 4 KiB
 *     write + fdatasync into an existing file, p50/p99 (each message's path has two such syncs);
 *   - the WAL files' sizes after the messaging runs (checkpoints keep them bounded);
 *   - the same latency through a TCP proxy adding delay (tests/tools/msg_proxy, --proxy PATH) with 20 ms
 *     RTT, when the proxy tool is given or found next to this program's build tree;
 *   - file transfer MB/s (lp2p/files.h) against the perf protocol's bulk rate measured in the same run.
 * Prints figures and ratios; no timed assertions.
 * Usage: bench_messaging [--quick] [--json FILE] [--proxy PATH] [--file-mb N] [--files-only] */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "lp2p/files.h"
#include "lp2p/keys.h"
#include "lp2p/messaging.h"
#include "lp2p/perf.h"
#include "lp2p/swarm.h"

static char g_dir[600];

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

static lp2p_privkey *key_from(uint8_t seed) {
  uint8_t s[32];
  memset(s, seed, sizeof s);
  lp2p_privkey *k = NULL;
  if (lp2p_privkey_from_ed25519_seed(&k, s) < 0) exit(1);
  return k;
}

static lp2p_swarm *mk_swarm(lp2p_privkey *k) {
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = k;
  cfg.idle_timeout_ms = 0;
  lp2p_swarm *sw = NULL;
  if (lp2p_swarm_new(&sw, &cfg, NULL) < 0) exit(1);
  return sw;
}

/* ---- receiver (child) ---- */
static void rx_stop(lp2p_swarm *sw, void *arg) {
  (void)arg;
  lp2p_swarm_stop(sw);
}

static int receiver(int wfd, const char *recvdir) {
  lp2p_privkey *k = key_from(2);
  lp2p_swarm *sw = mk_swarm(k);
  char path[700], fpath[700];
  snprintf(path, sizeof path, "%s/rx.db", g_dir);
  snprintf(fpath, sizeof fpath, "%s/rx-files.db", g_dir);
  lp2p_msg_config mc;
  lp2p_msg_config_default(&mc);
  mc.db_path = path;
  mc.inbox_max_msgs = UINT32_MAX;
  if (lp2p_msg_add(sw, &mc, NULL) < 0) return 1;
  lp2p_files_config fc;
  lp2p_files_config_default(&fc);
  fc.db_path = fpath;
  fc.recv_dir = recvdir;
  fc.max_file_size = UINT64_MAX;
  fc.quota_bytes = UINT64_MAX;
  if (lp2p_files_add(sw, &fc, NULL) < 0) return 1;
  if (lp2p_perf_add(sw, NULL, NULL) < 0) return 1;
  if (lp2p_swarm_listen(sw, "/ip4/127.0.0.1/tcp/0") < 0) return 1;
  const lp2p_multiaddr *ma[1];
  lp2p_swarm_listen_addrs(sw, ma, 1);
  char txt[200];
  lp2p_multiaddr_to_string(ma[0], txt, sizeof txt);
  if (write(wfd, txt, strlen(txt) + 1) < 0) return 1;
  close(wfd);
  signal(SIGTERM, SIG_DFL);
  lp2p_swarm_run(sw);
  (void)rx_stop;
  lp2p_swarm_free(sw);
  lp2p_privkey_free(k);
  return 0;
}

/* ---- sender ---- */
typedef struct tx {
  lp2p_swarm *sw;
  lp2p_msg_service *ms;
  lp2p_files_service *fs;
  lp2p_peer_id peer;
  uint64_t delivered, failed, target;
  uint64_t t_sent, t_queued, t_wire; /* latency mode: this message's send() call, QUEUED and SENT events */
  uint64_t *lat, *ph_commit, *ph_stream, *ph_ack; /* per message: total and the three phases */
  size_t n_lat;
  int lat_mode;
  int file_done, file_err;
  int perf_done, perf_err;
  lp2p_perf_result perf;
  int dialed, dial_err;
} tx;

static void tx_ev(lp2p_msg_service *ms, const lp2p_msg_event *ev, void *ud) {
  tx *t = ud;
  (void)ms;
  if (ev->type == LP2P_MSG_EV_QUEUED) {
    if (t->lat_mode) t->t_queued = bench_now_ns();
  } else if (ev->type == LP2P_MSG_EV_SENT) {
    if (t->lat_mode) t->t_wire = bench_now_ns();
  } else if (ev->type == LP2P_MSG_EV_DELIVERED) {
    t->delivered++;
    if (t->lat_mode) {
      uint64_t now = bench_now_ns();
      size_t i = t->n_lat++;
      t->lat[i] = now - t->t_sent;
      t->ph_commit[i] = t->t_queued - t->t_sent;
      t->ph_stream[i] = t->t_wire - t->t_queued;
      t->ph_ack[i] = now - t->t_wire;
    }
    if (t->delivered >= t->target) lp2p_swarm_stop(t->sw);
  } else if (ev->type == LP2P_MSG_EV_FAILED || ev->type == LP2P_MSG_EV_EXPIRED) {
    t->failed++;
    fprintf(stderr, "message failed: %s\n", ev->reason ? ev->reason : "?");
    lp2p_swarm_stop(t->sw);
  }
}

static void file_ev(lp2p_files_service *fs, const lp2p_files_event *ev, void *ud) {
  tx *t = ud;
  (void)fs;
  if (ev->type == LP2P_FILES_EV_DELIVERED) {
    t->file_done = 1;
    lp2p_swarm_stop(t->sw);
  } else if (ev->type == LP2P_FILES_EV_FAILED) {
    t->file_done = 1;
    t->file_err = ev->err ? ev->err : -1;
    lp2p_swarm_stop(t->sw);
  }
}

static void perf_cb(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_perf_result *r, void *ud) {
  tx *t = ud;
  (void)peer;
  t->perf_done = 1;
  t->perf_err = err;
  t->perf = *r;
  lp2p_swarm_stop(sw);
}

static void dial_cb(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_dial_error *e, size_t n,
                    void *ud) {
  tx *t = ud;
  (void)peer;
  (void)e;
  (void)n;
  t->dialed = 1;
  t->dial_err = err;
  lp2p_swarm_stop(sw);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Sorts v[0..n) and reports its p50 and p99 (and max when asked) as "<what> pNN, <label>". */
static void report_pct(const char *what, const char *label, uint64_t *v, size_t n, int with_max) {
  if (!n) return;
  qsort(v, n, sizeof *v, cmp_u64);
  char name[240];
  snprintf(name, sizeof name, "%s p50, %s", what, label);
  report(name, (double)v[n / 2] / 1e9, "s");
  snprintf(name, sizeof name, "%s p99, %s", what, label);
  report(name, (double)v[(n * 99) / 100] / 1e9, "s");
  if (with_max) {
    snprintf(name, sizeof name, "%s max, %s", what, label);
    report(name, (double)v[n - 1] / 1e9, "s");
  }
}

static void latency(tx *t, size_t n, const char *label) {
  t->lat = calloc(n, sizeof *t->lat);
  t->ph_commit = calloc(n, sizeof *t->ph_commit);
  t->ph_stream = calloc(n, sizeof *t->ph_stream);
  t->ph_ack = calloc(n, sizeof *t->ph_ack);
  if (!t->lat || !t->ph_commit || !t->ph_stream || !t->ph_ack) exit(1);
  t->n_lat = 0;
  t->lat_mode = 1;
  uint8_t body[100];
  memset(body, 'l', sizeof body);
  for (size_t i = 0; i < n; i++) {
    t->target = t->delivered + 1;
    t->t_sent = bench_now_ns();
    if (lp2p_msg_send(t->ms, &t->peer, body, sizeof body, NULL) < 0) break;
    lp2p_swarm_run(t->sw);
    if (t->failed) break;
  }
  t->lat_mode = 0;
  char lab[160];
  snprintf(lab, sizeof lab, "%s (%zu msgs)", label, t->n_lat);
  report_pct("delivery latency", lab, t->lat, t->n_lat, 1);
  report_pct("  phase send->QUEUED (outbox commit)", label, t->ph_commit, t->n_lat, 0);
  report_pct("  phase QUEUED->SENT", label, t->ph_stream, t->n_lat, 0);
  report_pct("  phase SENT->DELIVERED (wire, inbox commit, ack)", label, t->ph_ack, t->n_lat, 0);
  free(t->lat);
  free(t->ph_commit);
  free(t->ph_stream);
  free(t->ph_ack);
  t->lat = t->ph_commit = t->ph_stream = t->ph_ack = NULL;
}

/* The physical floor under each commit: one 4 KiB write into an existing file (as a WAL that has started
 * over is written) + fdatasync, in the databases' directory; n samples, p50/p99. */
static void fsync_floor(size_t n) {
  char path[700];
  snprintf(path, sizeof path, "%s/fsync-floor.bin", g_dir);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return;
  enum { BLK = 4096, SPAN = 64 };
  static uint8_t blk[BLK];
  memset(blk, 'f', sizeof blk);
  for (int i = 0; i < SPAN; i++)
    if (pwrite(fd, blk, BLK, (off_t)i * BLK) != BLK) goto out;
  if (fsync(fd) != 0) goto out;
  uint64_t *v = calloc(n, sizeof *v);
  if (!v) goto out;
  for (size_t i = 0; i < n; i++) {
    blk[0] = (uint8_t)i;
    uint64_t t0 = bench_now_ns();
    if (pwrite(fd, blk, BLK, (off_t)(i % SPAN) * BLK) != BLK || fdatasync(fd) != 0) break;
    v[i] = bench_now_ns() - t0;
  }
  char lab[64];
  snprintf(lab, sizeof lab, "same dir (%zu syncs)", n);
  report_pct("floor: 4 KiB write + fdatasync", lab, v, n, 0);
  free(v);
out:
  close(fd);
  unlink(path);
}

static void report_wal(const char *db, const char *who) {
  char p[720], name[120];
  struct stat sb;
  snprintf(p, sizeof p, "%s/%s-wal", g_dir, db);
  snprintf(name, sizeof name, "WAL file size after the runs, %s", who);
  report(name, stat(p, &sb) == 0 ? (double)sb.st_size : 0.0, "B");
}

static pid_t spawn_proxy(const char *proxy, const char *target, int delay_ms, char *out, size_t cap) {
  /* target: /ip4/127.0.0.1/tcp/PORT */
  const char *p = strrchr(target, '/');
  int pfd[2];
  if (!p || pipe(pfd) < 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pfd[1], 1);
    close(pfd[0]);
    char port[16], delay[16];
    snprintf(port, sizeof port, "%s", p + 1);
    snprintf(delay, sizeof delay, "%d", delay_ms);
    execl(proxy, proxy, "--listen", "0", "--target", port, "--delay-ms", delay, (char *)NULL);
    _exit(127);
  }
  close(pfd[1]);
  char buf[64] = {0};
  ssize_t k = read(pfd[0], buf, sizeof buf - 1);
  close(pfd[0]);
  if (k <= 0) return -1;
  int lport = atoi(buf);
  snprintf(out, cap, "/ip4/127.0.0.1/tcp/%d", lport);
  return pid;
}

int main(int argc, char **argv) {
  const char *proxy = NULL;
  long file_mb = 100;
  int file_mb_set = 0, files_only = 0;
  char *rest[64];
  int nrest = 0;
  for (int i = 0; i < argc && nrest < 63; i++) {
    if (i > 0 && !strcmp(argv[i], "--proxy") && i + 1 < argc) proxy = argv[++i];
    else if (i > 0 && !strcmp(argv[i], "--file-mb") && i + 1 < argc) file_mb = atol(argv[++i]), file_mb_set = 1;
    else if (i > 0 && !strcmp(argv[i], "--files-only")) files_only = 1;
    else rest[nrest++] = argv[i];
  }
  rest[nrest] = NULL;
  bench_init(nrest, rest, "messaging");
  if (bench_quick() && file_mb > 32 && !file_mb_set) file_mb = 32;
  char base[512];
  const char *d = getenv("LP2P_BENCH_DIR"), *x = getenv("XDG_DATA_HOME"), *h = getenv("HOME");
  if (d && *d) snprintf(base, sizeof base, "%s", d);
  else if (x && *x) snprintf(base, sizeof base, "%s/lp2p", x);
  else snprintf(base, sizeof base, "%s/.local/share/lp2p", h ? h : "/tmp");
  mkdirs(base);
  snprintf(g_dir, sizeof g_dir, "%s/bench-messaging-XXXXXX", base);
  if (!mkdtemp(g_dir)) {
    perror(g_dir);
    return 1;
  }
  fprintf(stderr, "bench_messaging: databases in %s\n", g_dir);
  char recvdir[700];
  snprintf(recvdir, sizeof recvdir, "%s/recv", g_dir);
  mkdir(recvdir, 0700);
  if (!proxy) {
    static char guess[1024];
    char self[900];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k > 0) {
      self[k] = 0;
      char *sl = strrchr(self, '/');
      if (sl) *sl = 0;
      snprintf(guess, sizeof guess, "%s/../tests/msg_proxy", self);
      if (access(guess, X_OK) == 0) proxy = guess;
    }
  }

  int pfd[2];
  if (pipe(pfd) < 0) return 1;
  pid_t child = fork();
  if (child == 0) {
    close(pfd[0]);
    _exit(receiver(pfd[1], recvdir));
  }
  close(pfd[1]);
  char addr[200] = {0};
  if (read(pfd[0], addr, sizeof addr - 1) <= 0) {
    fprintf(stderr, "receiver did not start\n");
    return 1;
  }
  close(pfd[0]);

  lp2p_privkey *k = key_from(1), *kr = key_from(2);
  tx t;
  memset(&t, 0, sizeof t);
  lp2p_peer_id_from_pubkey(lp2p_privkey_public(kr), &t.peer);
  t.sw = mk_swarm(k);
  char path[700], fdb[700];
  snprintf(path, sizeof path, "%s/tx.db", g_dir);
  snprintf(fdb, sizeof fdb, "%s/tx-files.db", g_dir);
  lp2p_msg_config mc;
  lp2p_msg_config_default(&mc);
  mc.db_path = path;
  mc.outbox_max_msgs = UINT32_MAX;
  mc.on_event = tx_ev;
  mc.ud = &t;
  if (lp2p_msg_add(t.sw, &mc, &t.ms) < 0) return 1;
  lp2p_files_config fc;
  lp2p_files_config_default(&fc);
  fc.db_path = fdb;
  fc.recv_dir = NULL;
  fc.on_event = file_ev;
  fc.ud = &t;
  if (lp2p_files_add(t.sw, &fc, &t.fs) < 0) return 1;
  const char *addrs[] = {addr};
  lp2p_swarm_dial(t.sw, &t.peer, addrs, 1, dial_cb, &t);
  lp2p_swarm_run(t.sw);
  if (t.dial_err) {
    fprintf(stderr, "dial: %s\n", lp2p_strerror(t.dial_err));
    return 1;
  }

  /* durable messages per second */
  uint64_t n = files_only ? 0 : bench_quick() ? 10000 : 50000;
  uint8_t body[100];
  memset(body, 'm', sizeof body);
  uint64_t t0 = bench_now_ns();
  if (files_only) goto files;
  for (uint64_t i = 0; i < n; i++)
    if (lp2p_msg_send(t.ms, &t.peer, body, sizeof body, NULL) < 0) return 1;
  t.target = n;
  lp2p_swarm_run(t.sw);
  uint64_t el = bench_now_ns() - t0;
  char name[200];
  snprintf(name, sizeof name, "durable msgs (100 B) sender->receiver, %llu msgs, sync FULL", (unsigned long long)n);
  report(name, bench_rate((double)t.delivered, el), "msg/s");

  fsync_floor(bench_quick() ? 200 : 1000);
  latency(&t, bench_quick() ? 200 : 1000, "loopback");

  /* through the proxy: +10 ms each way */
  if (proxy) {
    char paddr[200];
    pid_t pp = spawn_proxy(proxy, addr, 10, paddr, sizeof paddr);
    if (pp > 0) {
      /* a second sender that knows the receiver only through the proxy */
      lp2p_privkey *k3 = key_from(3);
      tx t2;
      memset(&t2, 0, sizeof t2);
      t2.peer = t.peer;
      t2.sw = mk_swarm(k3);
      char p2[700];
      snprintf(p2, sizeof p2, "%s/tx2.db", g_dir);
      lp2p_msg_config mc2 = mc;
      mc2.db_path = p2;
      mc2.ud = &t2;
      if (lp2p_msg_add(t2.sw, &mc2, &t2.ms) == 0) {
        const char *pa[] = {paddr};
        lp2p_swarm_dial(t2.sw, &t2.peer, pa, 1, dial_cb, &t2);
        lp2p_swarm_run(t2.sw);
        if (!t2.dial_err) latency(&t2, bench_quick() ? 50 : 200, "proxy 20 ms RTT");
      }
      lp2p_swarm_free(t2.sw);
      lp2p_privkey_free(k3);
      kill(pp, SIGTERM);
      waitpid(pp, NULL, 0);
    }
  } else {
    fprintf(stderr, "bench_messaging: no msg_proxy tool found (--proxy PATH): proxy latency skipped\n");
  }

  report_wal("tx.db", "sender");
  report_wal("rx.db", "receiver");

files:
  /* file transfer vs perf bulk, same run */
  if (file_mb > 0) {
    uint64_t bytes = (uint64_t)file_mb * 1000000u;
    lp2p_perf_run(t.sw, &t.peer, bytes, 0, perf_cb, &t);
    lp2p_swarm_run(t.sw);
    double perf_rate = t.perf_err ? 0 : (double)bytes / ((double)t.perf.upload_us / 1e6);
    report("perf bulk upload (same run)", perf_rate, "B/s");
    char fpath[700];
    snprintf(fpath, sizeof fpath, "%s/file.bin", g_dir);
    FILE *f = fopen(fpath, "wb");
    uint8_t *blk = malloc(1 << 20);
    for (size_t i = 0; i < (1 << 20); i++) blk[i] = (uint8_t)(i * 131 + 7);
    for (uint64_t w = 0; w < bytes; w += 1 << 20) {
      size_t c = bytes - w < (1 << 20) ? (size_t)(bytes - w) : (1 << 20);
      blk[0] = (uint8_t)w;
      fwrite(blk, 1, c, f);
    }
    fclose(f);
    free(blk);
    uint64_t f0 = bench_now_ns();
    lp2p_files_id fid;
    if (lp2p_files_send(t.fs, &t.peer, fpath, &fid) == 0) {
      uint64_t hashed = bench_now_ns() - f0;
      lp2p_swarm_run(t.sw);
      uint64_t fel = bench_now_ns() - f0;
      report("file: sender's manifest hashing (part of the transfer time)", (double)hashed / 1e9, "s");
      double frate = t.file_err ? 0 : bench_rate((double)bytes, fel);
      snprintf(name, sizeof name, "file transfer %ld MB (hash, send, verify, fsync, rename)", file_mb);
      report(name, frate, "B/s");
      if (perf_rate > 0) printf("| file / perf bulk ratio | %.2f | |\n", frate / perf_rate);
    }
    remove(fpath);
  }

  lp2p_swarm_free(t.sw);
  lp2p_privkey_free(k);
  lp2p_privkey_free(kr);
  kill(child, SIGTERM);
  waitpid(child, NULL, 0);
  char cmd[800];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
  return bench_done();
}
