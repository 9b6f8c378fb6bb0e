/* bench/bench_swarm.c - the lp2p side of the end-to-end benchmarks (bench/run drives it, bench/js/bench-peer.mjs
 * is its js-libp2p twin with the same command line and the same JSON output). Only the public API is used:
 * lp2p/swarm.h, lp2p/uv.h (several client swarms on one loop), lp2p/perf.h, lp2p/ping.h.
 *
 *   bench_swarm serve [--listen MADDR]...
 *       Serves /perf/1.0.0, /ipfs/ping/1.0.0 and the echo protocol /lp2p-test/echo/1.0.0 (the same id as the
 *       interop harness). No idle timeout, no connection limit. Prints one JSON line
 *       {"event":"listening","peer":ID,"addrs":[MADDR/p2p/ID..],"pid":N} and serves until SIGTERM/SIGINT or
 *       until its parent exits.
 *   bench_swarm client --dial MADDR/p2p/ID --test TEST [options]   (one JSON line per result on stdout)
 *       bulk     --bytes N [--download N]       one perf stream on one connection
 *                                               {"test":"bulk","bytes":..,"seconds":..,"cpu":..}
 *       connrate --count N --concurrency C [--seconds S]
 *                C client swarms (C identities) each looping dial -> connection ready -> disconnect -> closed;
 *                latency = dial call to ready callback {"test":"connrate","count","seconds","lat_p50",..}
 *       echo     --count N [--size 32]          N round trips of SIZE bytes on ONE echo stream
 *       ping     --count N                      N pings, a new stream each (lp2p_ping); wall = call to result
 *       streams  --streams N --bytes B          N concurrent perf streams uploading B bytes each on one connection
 *       conns    --steps 1000,10000 --server-pid P [--inflight 64] [--settle-ms 2000] [--seconds S]
 *                one swarm (identity) per connection, all held open; at 0 and at each step prints the server's
 *                RSS from /proc/P/status {"test":"conns","conns":k,"server_rss_kib":..}; with --seconds it stops
 *                dialing at the deadline and reports the count reached with "partial":true
 *   All clients: --timeout SEC (default 120) fails the run with {"test":..,"error":..}.
 * Times are wall-clock (CLOCK_MONOTONIC); "cpu" is this process's user+system CPU seconds over the measured
 * interval. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "lp2p/log.h"
#include "lp2p/perf.h"
#include "lp2p/ping.h"
#include "lp2p/swarm.h"
#include "lp2p/uv.h"

#define ECHO_PROTOCOL "/lp2p-test/echo/1.0.0"
#define MAX_LISTEN 8

/* ---- helpers ------------------------------------------------------------------------------------------ */
static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rlim_t want = 200000;
  if (rl.rlim_max < want) {
    struct rlimit r2 = {want, want};
    if (setrlimit(RLIMIT_NOFILE, &r2) == 0) return; /* root may raise the hard limit */
    want = rl.rlim_max;
  }
  rl.rlim_cur = want;
  setrlimit(RLIMIT_NOFILE, &rl);
}

static long rss_kib(long pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long v = -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) {
      v = strtol(line + 6, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Prints ,"<name>_p50":s,"<name>_p90":..,"<name>_p99":..,"<name>_mean":.. (seconds) for ns samples. */
static void print_stats(const char *name, uint64_t *v, size_t n) {
  if (!n) return;
  qsort(v, n, sizeof *v, cmp_u64);
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)v[i];
  printf(",\"%s_p50\":%.9g,\"%s_p90\":%.9g,\"%s_p99\":%.9g,\"%s_mean\":%.9g", name, v[n / 2] / 1e9, name,
         v[n * 9 / 10] / 1e9, name, v[n * 99 / 100] / 1e9, name, sum / (double)n / 1e9);
}

static void fail(const char *test, const char *what, int err) {
  printf("{\"test\":\"%s\",\"error\":\"%s%s%s\"}\n", test, what, err ? ": " : "", err ? lp2p_err_name(err) : "");
  fflush(stdout);
  _exit(1);
}

static lp2p_privkey *new_key(void) {
  lp2p_privkey *k = NULL;
  int rv = lp2p_privkey_generate(&k, LP2P_KEY_ED25519, 0);
  if (rv < 0) fail("setup", "key generation", rv);
  return k;
}

static void bench_config(lp2p_swarm_config *cfg, const lp2p_privkey *k) {
  lp2p_swarm_config_default(cfg);
  cfg->identity = k;
  cfg->max_inbound_conns = 0;
  cfg->max_outbound_conns = 0;
  cfg->max_pending_inbound = 1024;
  cfg->max_streams_per_conn = 4096;
  cfg->idle_timeout_ms = 0;
  cfg->handshake_timeout_ms = 30000;
  cfg->dial_timeout_ms = 30000;
}

/* ---- echo protocol (server side) ----------------------------------------------------------------------- */
/* Echoes every byte back. Manual consume: bytes are credited to the peer's window only once they were accepted
 * by lp2p_stream_write, so the pending buffer is bounded by the yamux window. */
typedef struct echo_st {
  uint8_t *buf;
  size_t len, cap;
  int eof;
} echo_st;

static void echo_flush(lp2p_stream *s, echo_st *e) {
  while (e->len) {
    int64_t k = lp2p_stream_write(s, e->buf, e->len);
    if (k <= 0) break;
    lp2p_stream_consume(s, (size_t)k);
    memmove(e->buf, e->buf + k, e->len - (size_t)k);
    e->len -= (size_t)k;
  }
  if (e->eof && !e->len) lp2p_stream_close_write(s);
}

static void echo_open(lp2p_stream *s, const char *protocol, void *ud) {
  (void)protocol;
  (void)ud;
  echo_st *e = calloc(1, sizeof *e);
  if (!e) {
    lp2p_stream_reset(s);
    return;
  }
  lp2p_stream_set_user(s, e);
  lp2p_stream_set_manual_consume(s, 1);
}

static void echo_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  (void)ud;
  echo_st *e = lp2p_stream_user(s);
  if (!e) return;
  if (!e->len) {
    int64_t k = lp2p_stream_write(s, p, n);
    if (k < 0) {
      lp2p_stream_reset(s);
      return;
    }
    lp2p_stream_consume(s, (size_t)k);
    p += k;
    n -= (size_t)k;
  }
  if (!n) return;
  if (e->len + n > e->cap) {
    size_t cap = e->cap ? e->cap : 4096;
    while (cap < e->len + n) cap *= 2;
    uint8_t *b = realloc(e->buf, cap);
    if (!b) {
      lp2p_stream_reset(s);
      return;
    }
    e->buf = b;
    e->cap = cap;
  }
  memcpy(e->buf + e->len, p, n);
  e->len += n;
}

static void echo_writable(lp2p_stream *s, void *ud) {
  (void)ud;
  echo_st *e = lp2p_stream_user(s);
  if (e) echo_flush(s, e);
}

static void echo_eof(lp2p_stream *s, void *ud) {
  (void)ud;
  echo_st *e = lp2p_stream_user(s);
  if (!e) return;
  e->eof = 1;
  echo_flush(s, e);
}

static void echo_close(lp2p_stream *s, int err, void *ud) {
  (void)err;
  (void)ud;
  echo_st *e = lp2p_stream_user(s);
  if (!e) return;
  free(e->buf);
  free(e);
  lp2p_stream_set_user(s, NULL);
}

static const lp2p_stream_handler k_echo_handler = {
    .struct_size = sizeof(lp2p_stream_handler),
    .on_open = echo_open,
    .on_data = echo_data,
    .on_eof = echo_eof,
    .on_writable = echo_writable,
    .on_close = echo_close,
};

/* ---- serve ---------------------------------------------------------------------------------------------- */
static lp2p_swarm *g_server;

static void stop_fn(lp2p_swarm *sw, void *arg) {
  (void)arg;
  lp2p_swarm_stop(sw);
}

static void *signal_thread(void *arg) {
  sigset_t *set = arg;
  int sig;
  sigwait(set, &sig);
  lp2p_swarm_post(g_server, stop_fn, NULL);
  return NULL;
}

static int serve(int argc, char **argv) {
  const char *listen[MAX_LISTEN];
  size_t n_listen = 0;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--listen") && i + 1 < argc && n_listen < MAX_LISTEN) listen[n_listen++] = argv[++i];
    else {
      fprintf(stderr, "bench_swarm serve: unexpected argument %s\n", argv[i]);
      return 2;
    }
  }
  if (!n_listen) listen[n_listen++] = "/ip4/127.0.0.1/tcp/0";
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  static sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  lp2p_privkey *key = new_key();
  lp2p_swarm_config cfg;
  bench_config(&cfg, key);
  int rv = lp2p_swarm_new(&g_server, &cfg, NULL);
  if (rv < 0) fail("serve", "swarm", rv);
  lp2p_perf_config pc;
  lp2p_perf_config_default(&pc);
  if ((rv = lp2p_perf_add(g_server, &pc, NULL)) < 0) fail("serve", "perf", rv);
  lp2p_ping_config pg;
  lp2p_ping_config_default(&pg);
  if ((rv = lp2p_ping_add(g_server, &pg, NULL)) < 0) fail("serve", "ping", rv);
  if ((rv = lp2p_swarm_set_protocol(g_server, ECHO_PROTOCOL, &k_echo_handler, NULL)) < 0) fail("serve", "echo", rv);
  for (size_t i = 0; i < n_listen; i++)
    if ((rv = lp2p_swarm_listen(g_server, listen[i])) < 0) fail("serve", listen[i], rv);

  char id[LP2P_PEER_ID_MAX_TEXT];
  lp2p_peer_id_to_string(lp2p_swarm_local_peer(g_server), id, sizeof id);
  const lp2p_multiaddr *addrs[16];
  size_t n = lp2p_swarm_listen_addrs(g_server, addrs, 16);
  printf("{\"event\":\"listening\",\"peer\":\"%s\",\"pid\":%ld,\"addrs\":[", id, (long)getpid());
  for (size_t i = 0; i < n && i < 16; i++) {
    char ma[256];
    lp2p_multiaddr_to_string(addrs[i], ma, sizeof ma);
    printf("%s\"%s/p2p/%s\"", i ? "," : "", ma, id);
  }
  printf("]}\n");
  fflush(stdout);

  pthread_t th;
  pthread_create(&th, NULL, signal_thread, &set);
  lp2p_swarm_run(g_server);
  lp2p_swarm_free(g_server);
  lp2p_privkey_free(key);
  printf("{\"event\":\"stopped\"}\n");
  return 0;
}

/* ---- client ---------------------------------------------------------------------------------------------- */
typedef struct copts {
  const char *dial, *test;
  uint64_t bytes, download;
  long count, concurrency, size, streams, inflight, settle_ms, server_pid, timeout;
  double seconds;
  long steps[8];
  size_t n_steps;
} copts;

static copts O;
static uv_loop_t g_loop;
static lp2p_peer_id g_server_id;

static lp2p_swarm *client_swarm(lp2p_privkey **keyp) {
  lp2p_privkey *k = new_key();
  lp2p_swarm_config cfg;
  bench_config(&cfg, k);
  cfg.keepalive_interval_ms = 0; /* the server keeps its own keep-alive; clients stay quiet */
  lp2p_swarm *sw = NULL;
  int rv = lp2p_swarm_new_uv(&sw, &cfg, &g_loop, NULL);
  if (rv < 0) fail(O.test, "swarm", rv);
  if (keyp) *keyp = k;
  return sw;
}

static void watchdog_cb(uv_timer_t *t) {
  (void)t;
  fail(O.test, "timeout", 0);
}

static void dial_or_fail(lp2p_swarm *sw, lp2p_dial_fn cb, void *ud) {
  const char *a[1] = {O.dial};
  int rv = lp2p_swarm_dial(sw, &g_server_id, a, 1, cb, ud);
  if (rv < 0) fail(O.test, "dial", rv);
}

/* -- bulk -- */
static uint64_t g_t0;
static double g_cpu0;

static void bulk_done(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_perf_result *r, void *ud) {
  (void)sw;
  (void)peer;
  (void)ud;
  uint64_t el = now_ns() - g_t0;
  double cpu = cpu_s() - g_cpu0;
  if (err) fail("bulk", "perf", err);
  printf("{\"test\":\"bulk\",\"bytes\":%llu,\"download\":%llu,\"seconds\":%.9g,\"cpu\":%.6g,\"total_us\":%llu}\n",
         (unsigned long long)r->uploaded, (unsigned long long)r->downloaded, el / 1e9, cpu,
         (unsigned long long)r->total_us);
  fflush(stdout);
  uv_stop(&g_loop);
}

static void bulk_dialed(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_dial_error *e, size_t n,
                        void *ud) {
  (void)e;
  (void)n;
  (void)ud;
  if (err) fail("bulk", "dial", err);
  g_t0 = now_ns();
  g_cpu0 = cpu_s();
  int rv = lp2p_perf_run(sw, peer, O.bytes, O.download, bulk_done, NULL);
  if (rv < 0) fail("bulk", "perf_run", rv);
}

/* -- streams -- */
static long g_done, g_errors, g_retries, g_retry_pending;
static int g_first_err;
static uv_timer_t g_retry_timer;
static lp2p_swarm *g_sw;

static void streams_done(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_perf_result *r,
                         void *ud);

static void streams_retry(uv_timer_t *t) {
  (void)t;
  for (; g_retry_pending > 0; g_retry_pending--) {
    int rv = lp2p_perf_run(g_sw, &g_server_id, O.bytes, 0, streams_done, NULL);
    if (rv < 0) fail("streams", "perf_run", rv);
  }
}
static uint64_t g_bytes;

static void streams_done(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_perf_result *r,
                         void *ud) {
  (void)sw;
  (void)peer;
  (void)ud;
  if (err == LP2P_ERR_LIMIT && r->uploaded == 0) {
    /* yamux refuses a 257th un-ACKed outbound stream and the swarm reports it instead of waiting: open it
     * again 1 ms later (from a timer, so that the loop reads the ACKs in between) */
    g_retries++;
    if (!g_retry_pending++) uv_timer_start(&g_retry_timer, streams_retry, 1, 0);
    return;
  }
  if (err && !g_errors++) g_first_err = err;
  if (!err) g_bytes += r->uploaded;
  if (++g_done < O.streams) return;
  uint64_t el = now_ns() - g_t0;
  double cpu = cpu_s() - g_cpu0;
  if (g_errors) {
    char msg[96];
    snprintf(msg, sizeof msg, "%ld of %ld perf streams failed, first", g_errors, O.streams);
    fail("streams", msg, g_first_err);
  }
  printf("{\"test\":\"streams\",\"streams\":%ld,\"bytes\":%llu,\"seconds\":%.9g,\"cpu\":%.6g,\"retries\":%ld}\n",
         O.streams, (unsigned long long)g_bytes, el / 1e9, cpu, g_retries);
  fflush(stdout);
  uv_stop(&g_loop);
}

static void streams_dialed(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_dial_error *e,
                           size_t n, void *ud) {
  (void)e;
  (void)n;
  (void)ud;
  if (err) fail("streams", "dial", err);
  g_sw = sw;
  uv_timer_init(&g_loop, &g_retry_timer);
  g_t0 = now_ns();
  g_cpu0 = cpu_s();
  for (long i = 0; i < O.streams; i++) {
    int rv = lp2p_perf_run(sw, peer, O.bytes, 0, streams_done, NULL);
    if (rv < 0) fail("streams", "perf_run", rv);
  }
}

/* -- echo -- */
#define ECHO_WARMUP 100
static uint64_t *g_lat;
static long g_n, g_total;
static size_t g_got;
static uint8_t g_payload[4096];

static void echo_send(lp2p_stream *s) {
  g_got = 0;
  g_t0 = now_ns();
  int64_t k = lp2p_stream_write(s, g_payload, (size_t)O.size);
  if (k != O.size) fail("echo", "write did not take the payload", k < 0 ? (int)k : 0);
}

static void ec_open(lp2p_stream *s, const char *protocol, void *ud) {
  (void)protocol;
  (void)ud;
  g_cpu0 = cpu_s();
  echo_send(s);
}

static void ec_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  (void)p;
  (void)ud;
  g_got += n;
  if (g_got < (size_t)O.size) return;
  uint64_t t = now_ns() - g_t0;
  if (g_total++ >= ECHO_WARMUP) g_lat[g_n++] = t;
  if (g_n == O.count) {
    printf("{\"test\":\"echo\",\"count\":%ld,\"size\":%ld,\"cpu\":%.6g", g_n, O.size, cpu_s() - g_cpu0);
    print_stats("rtt", g_lat, (size_t)g_n);
    printf("}\n");
    fflush(stdout);
    uv_stop(&g_loop);
    return;
  }
  echo_send(s);
}

static void ec_close(lp2p_stream *s, int err, void *ud) {
  (void)s;
  (void)ud;
  if (g_n < O.count) fail("echo", "stream closed", err);
}

static const lp2p_stream_handler k_echo_client = {
    .struct_size = sizeof(lp2p_stream_handler),
    .on_open = ec_open,
    .on_data = ec_data,
    .on_close = ec_close,
};

static void echo_dialed(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_dial_error *e, size_t n,
                        void *ud) {
  (void)e;
  (void)n;
  (void)ud;
  if (err) fail("echo", "dial", err);
  const char *protos[1] = {ECHO_PROTOCOL};
  int rv = lp2p_swarm_open_stream(sw, peer, protos, 1, &k_echo_client, NULL, NULL);
  if (rv < 0) fail("echo", "open_stream", rv);
}

/* -- ping -- */
#define PING_WARMUP 20
static uint64_t *g_lat2;

static void ping_next(lp2p_swarm *sw);

static void ping_done(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, uint64_t rtt_us, void *ud) {
  (void)peer;
  (void)ud;
  uint64_t t = now_ns() - g_t0;
  if (err) fail("ping", "ping", err);
  if (g_total++ >= PING_WARMUP) {
    g_lat[g_n] = t;
    g_lat2[g_n++] = rtt_us * 1000;
  }
  if (g_n == O.count) {
    printf("{\"test\":\"ping\",\"count\":%ld,\"cpu\":%.6g", g_n, cpu_s() - g_cpu0);
    print_stats("wall", g_lat, (size_t)g_n);
    print_stats("rtt", g_lat2, (size_t)g_n);
    printf("}\n");
    fflush(stdout);
    uv_stop(&g_loop);
    return;
  }
  ping_next(sw);
}

static void ping_next(lp2p_swarm *sw) {
  g_t0 = now_ns();
  int rv = lp2p_ping(sw, &g_server_id, ping_done, NULL);
  if (rv < 0) fail("ping", "ping", rv);
}

static void ping_dialed(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_dial_error *e, size_t n,
                        void *ud) {
  (void)peer;
  (void)e;
  (void)n;
  (void)ud;
  if (err) fail("ping", "dial", err);
  g_cpu0 = cpu_s();
  ping_next(sw);
}

/* -- connrate -- */
typedef struct worker {
  lp2p_swarm *sw;
  uint64_t t0;
  int busy;
} worker;
static worker *g_workers;
static long g_started;
static uint64_t g_deadline;

static void cr_next(worker *w);

static void cr_finish(void) {
  uint64_t el = now_ns() - g_t0;
  double cpu = cpu_s() - g_cpu0;
  printf("{\"test\":\"connrate\",\"count\":%ld,\"concurrency\":%ld,\"seconds\":%.9g,\"cpu\":%.6g", g_n,
         O.concurrency, el / 1e9, cpu);
  print_stats("lat", g_lat, (size_t)g_n);
  printf("}\n");
  fflush(stdout);
  uv_stop(&g_loop);
}

static void cr_event(lp2p_swarm *sw, const lp2p_swarm_event *ev, void *ud) {
  (void)sw;
  worker *w = ud;
  if (ev->type != LP2P_SWARM_EV_CONN_CLOSED || !w->busy) return;
  w->busy = 0;
  cr_next(w);
}

static void cr_dialed(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_dial_error *e, size_t n,
                      void *ud) {
  (void)e;
  (void)n;
  worker *w = ud;
  if (err) fail("connrate", "dial", err);
  g_lat[g_n++] = now_ns() - w->t0;
  int rv = lp2p_swarm_disconnect(sw, peer);
  if (rv < 0) fail("connrate", "disconnect", rv);
}

static void cr_next(worker *w) {
  if (g_started >= O.count || (g_deadline && now_ns() >= g_deadline)) {
    for (long i = 0; i < O.concurrency; i++)
      if (g_workers[i].busy) return;
    cr_finish();
    return;
  }
  g_started++;
  w->busy = 1;
  w->t0 = now_ns();
  dial_or_fail(w->sw, cr_dialed, w);
}

/* -- conns -- */
static long g_step, g_conns, g_dialing;
static uv_timer_t g_settle;
static int g_settling;

static void conns_more(void);

static int g_partial;

static void conns_report(uv_timer_t *t) {
  (void)t;
  g_settling = 0;
  long target = g_conns;
  int partial = g_conns < O.steps[g_step];
  printf("{\"test\":\"conns\",\"conns\":%ld,\"server_rss_kib\":%ld,\"client_rss_kib\":%ld,\"seconds\":%.6g%s}\n",
         target, rss_kib(O.server_pid), rss_kib(getpid()), (now_ns() - g_t0) / 1e9,
         partial ? ",\"partial\":true" : "");
  fflush(stdout);
  if (g_partial || ++g_step >= (long)O.n_steps) {
    uv_stop(&g_loop);
    return;
  }
  conns_more();
}

static void conns_dialed(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_dial_error *e,
                         size_t n, void *ud) {
  (void)sw;
  (void)peer;
  (void)e;
  (void)n;
  (void)ud;
  g_dialing--;
  if (err) {
    char msg[96];
    snprintf(msg, sizeof msg, "dial failed after %ld connections", g_conns);
    fail("conns", msg, err);
  }
  g_conns++;
  conns_more();
}

/* --seconds: stop dialing at the deadline, let the last dials finish and report what was reached. */
static void conns_deadline(uv_timer_t *t) {
  (void)t;
  g_partial = 1;
  if (!g_settling) conns_more();
}

static void conns_more(void) {
  long target = g_partial ? g_conns + g_dialing : O.steps[g_step];
  while (g_conns + g_dialing < target && g_dialing < O.inflight) {
    lp2p_swarm *sw = client_swarm(NULL);
    g_dialing++;
    dial_or_fail(sw, conns_dialed, NULL);
  }
  if (g_conns == target && !g_dialing && !g_settling) {
    g_settling = 1;
    uv_timer_start(&g_settle, conns_report, (uint64_t)O.settle_ms, 0);
  }
}

static int parse_steps(const char *s) {
  O.n_steps = 0;
  while (*s && O.n_steps < 8) {
    char *end;
    O.steps[O.n_steps++] = strtol(s, &end, 10);
    if (*end == ',') end++;
    else if (*end) return -1;
    s = end;
  }
  return O.n_steps ? 0 : -1;
}

static int client(int argc, char **argv) {
  O.count = 1000;
  O.concurrency = 1;
  O.size = 32;
  O.streams = 1000;
  O.bytes = 64 << 20;
  O.inflight = 64;
  O.settle_ms = 2000;
  O.timeout = 120;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) {
      fprintf(stderr, "bench_swarm client: %s needs a value\n", a);
      return 2;
    }
    i++;
    if (!strcmp(a, "--dial")) O.dial = v;
    else if (!strcmp(a, "--test")) O.test = v;
    else if (!strcmp(a, "--bytes")) O.bytes = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--download")) O.download = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--count")) O.count = strtol(v, NULL, 10);
    else if (!strcmp(a, "--concurrency")) O.concurrency = strtol(v, NULL, 10);
    else if (!strcmp(a, "--size")) O.size = strtol(v, NULL, 10);
    else if (!strcmp(a, "--streams")) O.streams = strtol(v, NULL, 10);
    else if (!strcmp(a, "--inflight")) O.inflight = strtol(v, NULL, 10);
    else if (!strcmp(a, "--settle-ms")) O.settle_ms = strtol(v, NULL, 10);
    else if (!strcmp(a, "--server-pid")) O.server_pid = strtol(v, NULL, 10);
    else if (!strcmp(a, "--timeout")) O.timeout = strtol(v, NULL, 10);
    else if (!strcmp(a, "--seconds")) O.seconds = atof(v);
    else if (!strcmp(a, "--steps")) {
      if (parse_steps(v) < 0) {
        fprintf(stderr, "bench_swarm client: bad --steps %s\n", v);
        return 2;
      }
    } else {
      fprintf(stderr, "bench_swarm client: unknown option %s\n", a);
      return 2;
    }
  }
  if (!O.dial || !O.test) {
    fprintf(stderr, "bench_swarm client: --dial and --test are required\n");
    return 2;
  }
  if (O.size < 1 || O.size > (long)sizeof g_payload || O.count < 1 || O.concurrency < 1) {
    fprintf(stderr, "bench_swarm client: bad --size/--count/--concurrency\n");
    return 2;
  }
  const char *p2p = strstr(O.dial, "/p2p/");
  if (!p2p || lp2p_peer_id_parse(p2p + 5, &g_server_id) < 0) {
    fprintf(stderr, "bench_swarm client: --dial needs a /p2p/<id> suffix\n");
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  uv_loop_init(&g_loop);
  uv_timer_t wd;
  uv_timer_init(&g_loop, &wd);
  uv_timer_start(&wd, watchdog_cb, (uint64_t)O.timeout * 1000, 0);
  uv_unref((uv_handle_t *)&wd);
  for (size_t i = 0; i < sizeof g_payload; i++) g_payload[i] = (uint8_t)(i * 7 + 1);

  if (!strcmp(O.test, "bulk")) {
    dial_or_fail(client_swarm(NULL), bulk_dialed, NULL);
  } else if (!strcmp(O.test, "streams")) {
    dial_or_fail(client_swarm(NULL), streams_dialed, NULL);
  } else if (!strcmp(O.test, "echo")) {
    g_lat = calloc((size_t)O.count, sizeof *g_lat);
    dial_or_fail(client_swarm(NULL), echo_dialed, NULL);
  } else if (!strcmp(O.test, "ping")) {
    g_lat = calloc((size_t)O.count, sizeof *g_lat);
    g_lat2 = calloc((size_t)O.count, sizeof *g_lat2);
    lp2p_swarm *sw = client_swarm(NULL);
    lp2p_ping_add(sw, NULL, NULL);
    dial_or_fail(sw, ping_dialed, NULL);
  } else if (!strcmp(O.test, "connrate")) {
    g_lat = calloc((size_t)O.count + (size_t)O.concurrency, sizeof *g_lat);
    g_workers = calloc((size_t)O.concurrency, sizeof *g_workers);
    for (long i = 0; i < O.concurrency; i++) {
      g_workers[i].sw = client_swarm(NULL);
      lp2p_swarm_set_event_handler(g_workers[i].sw, cr_event, &g_workers[i]);
    }
    g_t0 = now_ns();
    g_cpu0 = cpu_s();
    if (O.seconds > 0) g_deadline = g_t0 + (uint64_t)(O.seconds * 1e9);
    for (long i = 0; i < O.concurrency; i++) cr_next(&g_workers[i]);
  } else if (!strcmp(O.test, "conns")) {
    if (!O.n_steps || O.server_pid <= 0) {
      fprintf(stderr, "bench_swarm client: conns needs --steps and --server-pid\n");
      return 2;
    }
    raise_nofile();
    uv_timer_init(&g_loop, &g_settle);
    static uv_timer_t dl;
    uv_timer_init(&g_loop, &dl);
    if (O.seconds > 0) uv_timer_start(&dl, conns_deadline, (uint64_t)(O.seconds * 1000), 0);
    g_t0 = now_ns();
    printf("{\"test\":\"conns\",\"conns\":0,\"server_rss_kib\":%ld,\"client_rss_kib\":%ld,\"seconds\":0}\n",
           rss_kib(O.server_pid), rss_kib(getpid()));
    fflush(stdout);
    conns_more();
  } else {
    fprintf(stderr, "bench_swarm client: unknown test %s\n", O.test);
    return 2;
  }
  uv_run(&g_loop, UV_RUN_DEFAULT);
  fflush(stdout);
  _exit(0); /* the kernel closes every socket; no teardown cost in the figures */
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 2 && !strcmp(argv[1], "serve")) return serve(argc - 2, argv + 2);
  if (argc >= 2 && !strcmp(argv[1], "client")) return client(argc - 2, argv + 2);
  fprintf(stderr, "usage: %s serve [--listen MADDR]... | client --dial MADDR/p2p/ID --test "
                  "bulk|connrate|echo|ping|streams|conns [options]\n", argv[0]);
  return 2;
}
