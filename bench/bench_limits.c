/* bench/bench_limits.c - the physical limits lp2p is compared against (no lp2p code on the measured path):
 *
 *   tcp_bulk        raw TCP loopback throughput, sender and receiver in two processes (2 cores), 64 KiB
 *                   writes and reads like lp2p's I/O; also the CPU seconds per byte of each side
 *   tcp_connect     connect()+accept()+close() per second and the latency of one connect(), two processes
 *   tcp_rtt_32      32-byte ping-pong round trip over one TCP_NODELAY connection, two processes (blocking
 *                   read/write); tcp_rtt_32_epoll the same with epoll_wait before every read (event-loop floor)
 *   chacha_enc/dec  libsodium ChaCha20-Poly1305 (IETF) on one Noise frame (65519 plaintext bytes + tag)
 *   x25519_keygen, x25519_dh, ed25519_sign, ed25519_verify: the public-key operations of a Noise XX handshake
 *   xx_crypto_side  the modelled crypto cost of one XX handshake per side (see xx_crypto below)
 * Compute costs (chacha_*, x25519_*, ed25519_*, xx_*) are in thread CPU time (per-core cost, immune to other
 * load on the machine); tcp_* are wall-clock, with the CPU seconds per byte of each side for tcp_bulk.
 *
 * Usage: bench_limits [--json FILE] [--quick] [--only NAME[,NAME..]] [--seconds S]
 * Prints a markdown table; --json appends one JSON line per result (bench_util.h format). Loopback only. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

#define FRAME_PT 65519u
#define IO_CHUNK (64 * 1024)

static double g_seconds = 1.0;
static const char *g_only;

/* CPU time of the calling thread, in ns: compute costs are measured in CPU time so that other processes on
 * the (shared) machine do not inflate them; they are per-core costs by definition. */
static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Like bench_run() but timed in thread CPU time: calls per CPU second. */
static double run_cpu(void (*fn)(void *ud), void *ud, double min_s) {
  uint64_t n = 0, batch = 1, t0 = thread_cpu_ns(), el;
  for (;;) {
    for (uint64_t i = 0; i < batch; i++) fn(ud);
    n += batch;
    el = thread_cpu_ns() - t0;
    if (bench_seconds(el) >= min_s) break;
    if (batch < (UINT64_C(1) << 30)) batch *= 2;
  }
  return bench_rate((double)n, el);
}

static int wanted(const char *name) {
  if (!g_only) return 1;
  size_t n = strlen(name);
  for (const char *p = g_only; *p;) {
    const char *e = strchr(p, ',');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l == n && !strncmp(p, name, n)) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static int listener(struct sockaddr_in *sa) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)sa, sizeof *sa) < 0) die("bind");
  if (listen(fd, 4096) < 0) die("listen");
  socklen_t len = sizeof *sa;
  getsockname(fd, (struct sockaddr *)sa, &len);
  return fd;
}

static int connect_to(const struct sockaddr_in *sa, int nodelay) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (nodelay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
  while (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
    if (errno != EINTR) die("connect");
  }
  return fd;
}

static void write_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t k = write(fd, b, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    b += k;
    n -= (size_t)k;
  }
}

static int read_full(int fd, void *p, size_t n) {
  uint8_t *b = p;
  while (n) {
    ssize_t k = read(fd, b, n);
    if (k == 0) return -1;
    if (k < 0) {
      if (errno == EINTR) continue;
      die("read");
    }
    b += k;
    n -= (size_t)k;
  }
  return 0;
}

/* ---- raw TCP bulk ---------------------------------------------------------------------------------- */
typedef struct rx_result {
  uint64_t bytes;
  double cpu;
} rx_result;

static void tcp_bulk(void) {
  struct sockaddr_in sa;
  int lfd = listener(&sa);
  int pfd[2];
  if (pipe(pfd) < 0) die("pipe");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) { /* receiver */
    close(pfd[0]);
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) die("accept");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static uint8_t buf[IO_CHUNK];
    rx_result r = {0, 0};
    double c0 = cpu_seconds();
    for (;;) {
      ssize_t k = read(fd, buf, sizeof buf);
      if (k == 0) break;
      if (k < 0) {
        if (errno == EINTR) continue;
        die("read");
      }
      r.bytes += (uint64_t)k;
    }
    r.cpu = cpu_seconds() - c0;
    write_all(pfd[1], &r, sizeof r);
    _exit(0);
  }
  close(pfd[1]);
  close(lfd);
  int fd = connect_to(&sa, 1);
  static uint8_t buf[IO_CHUNK];
  memset(buf, 0xab, sizeof buf);
  uint64_t sent = 0, t0 = bench_now_ns(), dl = t0 + (uint64_t)(g_seconds * 1e9);
  double c0 = cpu_seconds();
  do {
    for (int i = 0; i < 16; i++) {
      write_all(fd, buf, sizeof buf);
      sent += sizeof buf;
    }
  } while (bench_now_ns() < dl);
  double cpu_tx = cpu_seconds() - c0;
  close(fd);
  rx_result r;
  if (read_full(pfd[0], &r, sizeof r) < 0) die("receiver result");
  uint64_t el = bench_now_ns() - t0;
  waitpid(pid, NULL, 0);
  close(pfd[0]);
  if (r.bytes != sent) bench_fail("tcp_bulk: byte count mismatch");
  report("tcp_bulk", bench_rate((double)r.bytes, el), "B/s");
  report("tcp_bulk_tx_cpu_per_byte", cpu_tx / (double)sent, "s");
  report("tcp_bulk_rx_cpu_per_byte", r.cpu / (double)r.bytes, "s");
}

/* ---- TCP connect + accept -------------------------------------------------------------------------- */
static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void tcp_connect(void) {
  struct sockaddr_in sa;
  int lfd = listener(&sa);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) { /* acceptor: accept, wait for the client's FIN, close */
    for (;;) {
      int fd = accept(lfd, NULL, NULL);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        _exit(1);
      }
      uint8_t b;
      if (read(fd, &b, 1) == 1 && b == 'q') _exit(0);
      close(fd);
    }
  }
  close(lfd);
  size_t cap = 1 << 20, n = 0;
  uint64_t *lat = malloc(cap * sizeof *lat);
  uint64_t t0 = bench_now_ns(), dl = t0 + (uint64_t)(g_seconds * 0.5e9);
  while (n < cap) {
    uint64_t a = bench_now_ns();
    int fd = connect_to(&sa, 1);
    lat[n++] = bench_now_ns() - a;
    close(fd);
    if ((n & 63) == 0 && bench_now_ns() >= dl) break;
  }
  uint64_t el = bench_now_ns() - t0;
  int fd = connect_to(&sa, 1);
  write_all(fd, "q", 1);
  close(fd);
  waitpid(pid, NULL, 0);
  qsort(lat, n, sizeof *lat, cmp_u64);
  report("tcp_connect_rate", bench_rate((double)n, el), "conn/s");
  report("tcp_connect_latency_p50", lat[n / 2] / 1e9, "s");
  free(lat);
}

/* ---- TCP 32-byte ping-pong ------------------------------------------------------------------------- */
static void tcp_rtt(void) {
  struct sockaddr_in sa;
  int lfd = listener(&sa);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) die("accept");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint8_t b[32];
    while (read_full(fd, b, sizeof b) == 0) write_all(fd, b, sizeof b);
    _exit(0);
  }
  close(lfd);
  int fd = connect_to(&sa, 1);
  uint8_t b[32] = {1};
  for (int i = 0; i < 200; i++) { /* warm-up */
    write_all(fd, b, sizeof b);
    read_full(fd, b, sizeof b);
  }
  size_t cap = 1 << 20, n = 0;
  uint64_t *lat = malloc(cap * sizeof *lat);
  uint64_t t0 = bench_now_ns(), dl = t0 + (uint64_t)(g_seconds * 0.5e9);
  while (n < cap) {
    uint64_t a = bench_now_ns();
    write_all(fd, b, sizeof b);
    if (read_full(fd, b, sizeof b) < 0) die("rtt: eof");
    lat[n++] = bench_now_ns() - a;
    if ((n & 255) == 0 && bench_now_ns() >= dl) break;
  }
  uint64_t el = bench_now_ns() - t0;
  close(fd);
  waitpid(pid, NULL, 0);
  qsort(lat, n, sizeof *lat, cmp_u64);
  report("tcp_rtt_32_p50", lat[n / 2] / 1e9, "s");
  report("tcp_rtt_32_mean", (double)el / (double)n / 1e9, "s");
  free(lat);
}

/* ---- the same ping-pong through epoll (the floor of any event-loop design: libuv, Node) ---------------- */
static void epoll_wait_in(int ep) {
  struct epoll_event ev;
  while (epoll_wait(ep, &ev, 1, -1) < 0)
    if (errno != EINTR) die("epoll_wait");
}

static int epoll_for(int fd) {
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll");
  return ep;
}

static void tcp_rtt_epoll(void) {
  struct sockaddr_in sa;
  int lfd = listener(&sa);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) { /* each message: epoll_wait, read, write */
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) die("accept");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int ep = epoll_for(fd);
    uint8_t b[32];
    for (;;) {
      epoll_wait_in(ep);
      ssize_t k = read(fd, b, sizeof b);
      if (k <= 0) _exit(0);
      write_all(fd, b, (size_t)k);
    }
  }
  close(lfd);
  int fd = connect_to(&sa, 1);
  int ep = epoll_for(fd);
  uint8_t b[32] = {1};
  size_t cap = 1 << 20, n = 0;
  uint64_t *lat = malloc(cap * sizeof *lat);
  uint64_t t0 = bench_now_ns(), dl = t0 + (uint64_t)(g_seconds * 0.3e9);
  for (int i = 0; n < cap; i++) {
    uint64_t a = bench_now_ns();
    write_all(fd, b, sizeof b);
    size_t got = 0;
    while (got < sizeof b) {
      epoll_wait_in(ep);
      ssize_t k = read(fd, b + got, sizeof b - got);
      if (k <= 0) die("rtt epoll: eof");
      got += (size_t)k;
    }
    if (i >= 200) lat[n++] = bench_now_ns() - a; /* after a warm-up */
    if ((n & 255) == 255 && bench_now_ns() >= dl) break;
  }
  close(fd);
  waitpid(pid, NULL, 0);
  qsort(lat, n, sizeof *lat, cmp_u64);
  report("tcp_rtt_32_epoll_p50", lat[n / 2] / 1e9, "s");
  free(lat);
}

/* ---- ChaCha20-Poly1305 at the Noise frame size ----------------------------------------------------- */
typedef struct aead_ctx {
  uint8_t key[32], nonce[12];
  uint8_t *pt, *ct;
} aead_ctx;

static void enc_one(void *ud) {
  aead_ctx *c = ud;
  unsigned long long clen;
  c->nonce[4]++;
  crypto_aead_chacha20poly1305_ietf_encrypt(c->ct, &clen, c->pt, FRAME_PT, NULL, 0, NULL, c->nonce, c->key);
  bench_sink(c->ct);
}

static void dec_one(void *ud) {
  aead_ctx *c = ud;
  unsigned long long plen;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(c->pt, &plen, NULL, c->ct, FRAME_PT + 16, NULL, 0, c->nonce,
                                                c->key) != 0)
    bench_fail("chacha decrypt failed");
  bench_sink(c->pt);
}

static void chacha(void) {
  aead_ctx c;
  randombytes_buf(c.key, sizeof c.key);
  memset(c.nonce, 0, sizeof c.nonce);
  c.pt = malloc(FRAME_PT);
  c.ct = malloc(FRAME_PT + 16);
  randombytes_buf(c.pt, FRAME_PT);
  double s = g_seconds * 0.25;
  double enc = run_cpu(enc_one, &c, s);
  enc_one(&c); /* ct now matches nonce for dec_one */
  double dec = run_cpu(dec_one, &c, s);
  report("chacha_enc", enc * FRAME_PT, "B/s");
  report("chacha_dec", dec * FRAME_PT, "B/s");
  free(c.pt);
  free(c.ct);
}

/* ---- Noise XX public-key crypto --------------------------------------------------------------------- */
typedef struct pk_ctx {
  uint8_t a_priv[32], a_pub[32], b_pub[32], out[32];
  uint8_t ed_pk[32], ed_sk[64], msg[56], sig[64];
} pk_ctx;

static void op_keygen(void *ud) {
  pk_ctx *c = ud;
  c->a_priv[0]++;
  crypto_scalarmult_base(c->out, c->a_priv);
  bench_sink(c->out);
}
static void op_dh(void *ud) {
  pk_ctx *c = ud;
  c->a_priv[0]++;
  if (crypto_scalarmult(c->out, c->a_priv, c->b_pub) != 0) bench_fail("x25519 failed");
  bench_sink(c->out);
}
static void op_sign(void *ud) {
  pk_ctx *c = ud;
  c->msg[55]++;
  crypto_sign_detached(c->sig, NULL, c->msg, sizeof c->msg, c->ed_sk);
  bench_sink(c->sig);
}
static void op_verify(void *ud) {
  pk_ctx *c = ud;
  if (crypto_sign_verify_detached(c->sig, c->msg, sizeof c->msg, c->ed_pk) != 0) bench_fail("verify failed");
}

static void xx_crypto(void) {
  pk_ctx c;
  randombytes_buf(c.a_priv, 32);
  uint8_t b_priv[32];
  randombytes_buf(b_priv, 32);
  crypto_scalarmult_base(c.b_pub, b_priv);
  crypto_sign_keypair(c.ed_pk, c.ed_sk);
  memcpy(c.msg, "noise-libp2p-static-key:", 24);
  randombytes_buf(c.msg + 24, 32);
  double s = g_seconds * 0.15;
  double kg = 1.0 / run_cpu(op_keygen, &c, s);
  double dh = 1.0 / run_cpu(op_dh, &c, s);
  double sg = 1.0 / run_cpu(op_sign, &c, s);
  crypto_sign_detached(c.sig, NULL, c.msg, sizeof c.msg, c.ed_sk);
  double vf = 1.0 / run_cpu(op_verify, &c, s);
  report("x25519_keygen", kg, "s");
  report("x25519_dh", dh, "s");
  report("ed25519_sign", sg, "s");
  report("ed25519_verify", vf, "s");
  /* The XX handshake per side: one ephemeral keypair (e), three DH (initiator: ee, es, se as DH(e,re),
   * DH(e,rs), DH(s,re); responder the mirror), one Ed25519 signature over "noise-libp2p-static-key:"||s and
   * one verification of the peer's. The hashing/HKDF/AEAD of ~200 handshake bytes is < 2% and left out. */
  report("xx_crypto_side", kg + 3 * dh + sg + vf, "s");
  /* What lp2p does today: also a fresh static X25519 keypair per connection (a second keygen). */
  report("xx_crypto_side_lp2p", 2 * kg + 3 * dh + sg + vf, "s");
}

int main(int argc, char **argv) {
  bench__suite = "limits";
  bench__json_path = getenv("LP2P_BENCH_JSON");
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json") && i + 1 < argc) bench__json_path = argv[++i];
    else if (!strcmp(argv[i], "--quick")) bench__quick = 1;
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) g_only = argv[++i];
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) g_seconds = atof(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--json FILE] [--quick] [--only NAME,..] [--seconds S]\n", argv[0]);
      return 2;
    }
  }
  if (bench__quick) g_seconds *= 0.2;
  if (sodium_init() < 0) return 1;
  signal(SIGPIPE, SIG_IGN);
  printf("\n### limits\n\n| benchmark | value | raw |\n|---|---:|---:|\n");
  if (wanted("tcp_bulk")) tcp_bulk();
  if (wanted("tcp_connect")) tcp_connect();
  if (wanted("tcp_rtt")) tcp_rtt();
  if (wanted("tcp_rtt_epoll")) tcp_rtt_epoll();
  if (wanted("chacha")) chacha();
  if (wanted("xx")) xx_crypto();
  return bench_done();
}
