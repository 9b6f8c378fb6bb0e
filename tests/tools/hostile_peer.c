/* tests/tools/hostile_peer.c - a scripted hostile libp2p peer for tests/interop/test_hostile.sh.
 *
 * It speaks the wire formats directly: multistream-select lines and Noise/yamux frames are built by
 * hand; the Noise XX pattern and the transport ciphers come from the engine's internals
 * (noise/noise_int.h: lp2p__noise_hs_*, lp2p__noise_cipher_*), so that any byte of any message can
 * be crafted or corrupted. It attacks one listening node over TCP (127.0.0.1 only) and checks how
 * the node reacts from the wire: the offending connection is closed, or only the offending stream
 * is reset while the connection keeps answering yamux pings.
 *
 * Usage: hostile_peer MODE [--port P] [options]         (hostile_peer --help lists the modes)
 * Output (stdout, line-buffered): "local-port N" for each connection it opens (the node reports
 * that port in its events), "peer-id ID" when it completes a handshake, progress lines, and a
 * last line "ok: ..." (exit 0, the node behaved as expected) or "FAIL: ..." (exit 1). Usage
 * errors exit 2. Test code only: every allocation is checked and freed, errors abort the mode. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lp2p/encoding.h"
#include "lp2p/keys.h"
#include "lp2p/multiaddr.h"
#include "lp2p/peerid.h"
#include "noise/noise_int.h"
#include "protocols/identify/identify_int.h"

#define MSS_HEADER "/multistream/1.0.0"
#define NOISE_ID "/noise"
#define YAMUX_ID "/yamux/1.0.0"
#define ECHO_ID "/lp2p-test/echo/1.0.0"
#define YX_WINDOW (256u * 1024u)
#define YX_DATA 0
#define YX_WUPD 1
#define YX_PING 2
#define YX_GOAWAY 3
#define YX_SYN 1
#define YX_ACK 2
#define YX_FIN 4
#define YX_RST 8
#define MAX_ST 4096 /* tracked client streams: odd ids 1 .. 2*MAX_ST-1 */
#define ST_RX_CAP 8192

/* ------------------------------------------------------------------------- */
/* options, output */

typedef struct opts {
  const char *host;
  int port;
  int wait_ms;      /* how long to wait for the node's reaction */
  int count;        /* connections / streams / proposals, per mode */
  int hold_ms;      /* flood: hold the connections this long */
  int min_ms;       /* slowloris: the close must not come earlier */
  int expect_open;  /* pending: connections the node must keep (its pending-handshake limit) */
  int interval_ms;  /* dribble: one byte per interval */
  const char *tamper;
  int serve;        /* listen modes: connections to serve */
  int expect_accept; /* listen: the dialer must accept our msg2 (control run) */
} opts;

static opts g_o = {"127.0.0.1", 0, 5000, 0, 3000, 0, -1, 500, "none", 1, 0};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

static int pass(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int pass(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("ok: ");
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
  return 0;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("FAIL: ");
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
  return 1;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

/* ------------------------------------------------------------------------- */
/* growable byte buffer */

typedef struct buf {
  uint8_t *p;
  size_t len, cap;
} buf;

static void buf_reserve(buf *b, size_t n) {
  if (b->len + n <= b->cap) return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + n) cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) {
    fprintf(stderr, "hostile_peer: out of memory\n");
    exit(3);
  }
  b->p = p;
  b->cap = cap;
}
static void buf_add(buf *b, const void *p, size_t n) {
  buf_reserve(b, n);
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
}
static void buf_byte(buf *b, uint8_t v) { buf_add(b, &v, 1); }
static void buf_varint(buf *b, uint64_t v) {
  uint8_t tmp[LP2P_UVARINT_MAX_LEN];
  int k = lp2p_uvarint_encode(v, tmp, sizeof tmp);
  if (k > 0) buf_add(b, tmp, (size_t)k);
}
static void buf_consume(buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
}
static void buf_free(buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}
/* One multistream message: varint(len(s) + 1) || s || '\n'. */
static void buf_mss(buf *b, const char *s) {
  buf_varint(b, strlen(s) + 1);
  buf_add(b, s, strlen(s));
  buf_byte(b, '\n');
}

/* ------------------------------------------------------------------------- */
/* one connection to (or from) the node */

typedef struct yst {
  uint8_t used, acked, rst, fin;
  int64_t credit; /* our send window on it */
  uint64_t rst_at;
  uint8_t rx[ST_RX_CAP];
  size_t rxlen;
} yst;

typedef struct hconn {
  int fd, lport;
  int closed;      /* the node closed (EOF / reset / error) */
  const char *how; /* "eof", "reset", "error" */
  uint64_t opened_at, closed_at;
  buf in;          /* raw bytes from the socket, not yet used */
  /* noise */
  lp2p__noise_hs hs;
  lp2p__noise_cipher tx, rx;
  int secure, bad_frame;
  buf pt;          /* decrypted bytes, not yet parsed as yamux */
  /* yamux (we are the client: odd ids) */
  int yamux;
  int goaway_seen;
  uint32_t goaway_code;
  int pong_seen;
  uint32_t pong_val;
  int node_syns;   /* streams the node opened (we reset them) */
  yst *st;
} hconn;

static void hc_init(hconn *c, int fd) {
  memset(c, 0, sizeof *c);
  c->fd = fd;
  c->opened_at = now_ms();
  struct sockaddr_in a;
  socklen_t al = sizeof a;
  if (getsockname(fd, (struct sockaddr *)&a, &al) == 0) c->lport = ntohs(a.sin_port);
}

static void hc_free(hconn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  buf_free(&c->in);
  buf_free(&c->pt);
  free(c->st);
  c->st = NULL;
  sodium_memzero(&c->hs, sizeof c->hs);
}

static int tcp_socket_to(const char *host, int port, int nonblock, int *inprogress) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  if (inprogress) *inprogress = 0;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    if (nonblock && errno == EINPROGRESS) {
      *inprogress = 1;
      return fd;
    }
    close(fd);
    return -1;
  }
  return fd;
}

static int hc_connect(hconn *c) {
  int fd = tcp_socket_to(g_o.host, g_o.port, 0, NULL);
  if (fd < 0) {
    memset(c, 0, sizeof *c);
    c->fd = -1;
    return -1;
  }
  struct timeval tv = {5, 0}; /* a node that stops reading must not hang us forever */
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  hc_init(c, fd);
  say("local-port %d", c->lport);
  return 0;
}

static void mark_closed(hconn *c, const char *how) {
  if (c->closed) return;
  c->closed = 1;
  c->how = how;
  c->closed_at = now_ms();
}

/* Raw send of everything (blocking). -1 once the node has closed. */
static int send_raw(hconn *c, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t k = send(c->fd, b, n, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR) continue;
      mark_closed(c, errno == ECONNRESET || errno == EPIPE ? "reset" : "error");
      return -1;
    }
    b += k;
    n -= (size_t)k;
  }
  return 0;
}

static void process_in(hconn *c);

/* Waits up to timeout_ms for bytes, reads what is there and processes it. Returns the number of
 * bytes read, 0 on timeout, -1 once the node has closed. */
static int pump(hconn *c, int timeout_ms) {
  if (c->closed) return -1;
  struct pollfd p = {c->fd, POLLIN, 0};
  int r = poll(&p, 1, timeout_ms < 0 ? 0 : timeout_ms);
  if (r < 0) return errno == EINTR ? 0 : -1;
  if (r == 0) return 0;
  buf_reserve(&c->in, 65536);
  ssize_t k = recv(c->fd, c->in.p + c->in.len, 65536, 0);
  if (k == 0) {
    mark_closed(c, "eof");
    return -1;
  }
  if (k < 0) {
    if (errno == EINTR || errno == EAGAIN) return 0;
    mark_closed(c, errno == ECONNRESET ? "reset" : "error");
    return -1;
  }
  c->in.len += (size_t)k;
  process_in(c);
  return (int)k;
}

/* Keeps reading (and answering pings) for ms. -1 if the node closed meanwhile. */
static int pump_for(hconn *c, int ms) {
  uint64_t end = now_ms() + (uint64_t)ms;
  for (;;) {
    uint64_t t = now_ms();
    if (t >= end) return 0;
    if (pump(c, (int)(end - t)) < 0) return -1;
  }
}

/* Waits up to ms for the node to close the connection: elapsed ms since it was opened, or -1. */
static long wait_closed(hconn *c, int ms) {
  uint64_t end = now_ms() + (uint64_t)ms;
  while (!c->closed) {
    uint64_t t = now_ms();
    if (t >= end) return -1;
    pump(c, (int)(end - t));
  }
  return (long)(c->closed_at - c->opened_at);
}

/* Ensures n raw bytes are buffered (pre-noise / handshake reads). 0, or -1 (closed / timeout). */
static int need_raw(hconn *c, size_t n, int timeout_ms) {
  uint64_t end = now_ms() + (uint64_t)timeout_ms;
  while (c->in.len < n) {
    uint64_t t = now_ms();
    if (t >= end || pump(c, (int)(end - t)) < 0) return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------- */
/* multistream-select on the raw connection */

/* Reads one message (without its '\n') into line. Returns its length, or -1. */
static int mss_read_raw(hconn *c, char *line, size_t cap, int timeout_ms) {
  uint64_t v = 0;
  int k;
  uint64_t end = now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    k = lp2p_uvarint_decode(c->in.p, c->in.len, &v);
    if (k > 0) break;
    if (k != LP2P_ERR_AGAIN && c->in.len) return -1;
    uint64_t t = now_ms();
    if (t >= end || pump(c, (int)(end - t)) < 0) return -1;
  }
  if (v == 0 || v > cap) return -1;
  if (need_raw(c, (size_t)k + v, (int)(end > now_ms() ? end - now_ms() : 0)) < 0) return -1;
  memcpy(line, c->in.p + k, v);
  buf_consume(&c->in, (size_t)k + v);
  if (line[v - 1] != '\n') return -1;
  line[v - 1] = 0;
  return (int)v - 1;
}

/* Dialer side: header + proposal, expects both echoed. */
static int mss_select_raw(hconn *c, const char *proto) {
  buf b = {0};
  buf_mss(&b, MSS_HEADER);
  buf_mss(&b, proto);
  int rv = send_raw(c, b.p, b.len);
  buf_free(&b);
  char line[1100];
  if (rv < 0 || mss_read_raw(c, line, sizeof line, g_o.wait_ms) < 0 || strcmp(line, MSS_HEADER)) return -1;
  if (mss_read_raw(c, line, sizeof line, g_o.wait_ms) < 0 || strcmp(line, proto)) return -1;
  return 0;
}

/* ------------------------------------------------------------------------- */
/* Noise */

typedef enum tamper {
  T_NONE,
  T_BADSIG,       /* one bit of the identity signature flipped */
  T_WRONG_STATIC, /* a valid signature, but over another X25519 key */
  T_OTHER_KEY,    /* identity key B, signature by key A */
  T_NO_SIG,       /* identity key only */
  T_NO_KEY,       /* signature only */
  T_BAD_KEY,      /* identity key bytes are garbage */
  T_GARBAGE,      /* the payload is not a protobuf */
  T_MUXER_JUNK,   /* stream_muxers lists only an unknown muxer */
} tamper;

static int parse_tamper(const char *s, tamper *t) {
  static const char *const names[] = {"none",   "badsig", "wrong-static", "other-key",  "no-sig",
                                      "no-key", "bad-key", "garbage",     "muxer-junk"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (!strcmp(s, names[i])) {
      *t = (tamper)i;
      return 0;
    }
  return -1;
}

static void pb_bytes(buf *b, unsigned field, const void *p, size_t n) {
  buf_byte(b, (uint8_t)(field << 3 | 2));
  buf_varint(b, n);
  buf_add(b, p, n);
}

/* The libp2p NoiseHandshakePayload, with an optional defect. */
static int build_payload(buf *out, const lp2p_privkey *key, const lp2p_privkey *other, const uint8_t s_pub[32],
                         int muxers, tamper t) {
  uint8_t pk[LP2P_PUBKEY_PB_MAX], sig[LP2P_SIGNATURE_MAX], msg[LP2P__NOISE_SIG_PREFIX_LEN + 32];
  const lp2p_privkey *idk = t == T_OTHER_KEY ? other : key;
  int pk_len = lp2p_pubkey_to_protobuf(lp2p_privkey_public(idk), pk, sizeof pk);
  if (pk_len < 0) return -1;
  memcpy(msg, LP2P__NOISE_SIG_PREFIX, LP2P__NOISE_SIG_PREFIX_LEN);
  if (t == T_WRONG_STATIC)
    randombytes_buf(msg + LP2P__NOISE_SIG_PREFIX_LEN, 32);
  else
    memcpy(msg + LP2P__NOISE_SIG_PREFIX_LEN, s_pub, 32);
  int sig_len = lp2p_privkey_sign(key, msg, sizeof msg, sig, sizeof sig);
  if (sig_len < 0) return -1;
  if (t == T_BADSIG) sig[sig_len / 2] ^= 0x10;
  if (t == T_BAD_KEY) memset(pk + 4, 0xee, (size_t)pk_len - 4);
  if (t == T_GARBAGE) {
    uint8_t junk[64];
    randombytes_buf(junk, sizeof junk);
    junk[0] = 0xff; /* field 31, wire type 7: invalid */
    buf_add(out, junk, sizeof junk);
    return 0;
  }
  if (t != T_NO_KEY) pb_bytes(out, 1, pk, (size_t)pk_len);
  if (t != T_NO_SIG) pb_bytes(out, 2, sig, (size_t)sig_len);
  if (muxers || t == T_MUXER_JUNK) {
    buf ext = {0};
    pb_bytes(&ext, 2, t == T_MUXER_JUNK ? "/mplex/6.7.0" : YAMUX_ID, strlen(t == T_MUXER_JUNK ? "/mplex/6.7.0" : YAMUX_ID));
    pb_bytes(out, 4, ext.p, ext.len);
    buf_free(&ext);
  }
  return 0;
}

static int noise_send_msg(hconn *c, const uint8_t *m, size_t n, size_t announce) {
  uint8_t h[2] = {(uint8_t)(announce >> 8), (uint8_t)announce};
  if (send_raw(c, h, 2) < 0) return -1;
  return n ? send_raw(c, m, n) : 0;
}

static int noise_recv_msg(hconn *c, buf *m, int timeout_ms) {
  if (need_raw(c, 2, timeout_ms) < 0) return -1;
  size_t n = (size_t)c->in.p[0] << 8 | c->in.p[1];
  if (need_raw(c, 2 + n, timeout_ms) < 0) return -1;
  m->len = 0;
  buf_add(m, c->in.p + 2, n);
  buf_consume(&c->in, 2 + n);
  return 0;
}

typedef enum msg3_defect { M3_NONE, M3_FLIP_STATIC, M3_FLIP_TAG, M3_SHORT } msg3_defect;

static int set_transport(hconn *c) {
  lp2p__noise_cipher c1, c2;
  if (lp2p__noise_hs_split(&c->hs, &c1, &c2) < 0) return -1;
  c->tx = c->hs.initiator ? c1 : c2;
  c->rx = c->hs.initiator ? c2 : c1;
  c->secure = 1;
  c->yamux = 1;
  c->st = calloc(MAX_ST, sizeof *c->st);
  if (!c->st) return -1;
  process_in(c); /* transport bytes that came with the last handshake message */
  return 0;
}

/* Initiator handshake (we dialed the node). Returns 0 when msg3 went out undamaged, 1 when a
 * defective msg3 went out, -1 when the node did not play along. */
static int noise_initiate(hconn *c, const lp2p_privkey *key, const lp2p_privkey *other, tamper t,
                          msg3_defect d) {
  uint8_t m[65535], pl[65535];
  size_t n = 0, pn = 0;
  if (lp2p__noise_hs_init(&c->hs, 1, NULL, 0, NULL, NULL) < 0) return -1;
  if (lp2p__noise_hs_write(&c->hs, NULL, 0, m, sizeof m, &n) < 0 || noise_send_msg(c, m, n, n) < 0) return -1;
  buf msg = {0}, payload = {0};
  int rv = -1;
  if (noise_recv_msg(c, &msg, g_o.wait_ms) < 0) {
    say("no noise msg2 from the node (%s)", c->closed ? c->how : "timeout");
    goto out;
  }
  if (lp2p__noise_hs_read(&c->hs, msg.p, msg.len, pl, sizeof pl, &pn) < 0) {
    say("node's msg2 does not decrypt");
    goto out;
  }
  if (build_payload(&payload, key, other, c->hs.s_pub, 1, t) < 0) goto out;
  if (lp2p__noise_hs_write(&c->hs, payload.p, payload.len, m, sizeof m, &n) < 0) goto out;
  switch (d) {
    case M3_NONE: break;
    case M3_FLIP_STATIC: m[5] ^= 0x01; break;
    case M3_FLIP_TAG: m[n - 1] ^= 0x80; break;
    case M3_SHORT: n = 40; break;
  }
  if (noise_send_msg(c, m, n, n) < 0) goto out;
  if (d != M3_NONE || t != T_NONE) {
    rv = 1;
    goto out;
  }
  rv = set_transport(c) < 0 ? -1 : 0;
out:
  buf_free(&msg);
  buf_free(&payload);
  return rv;
}

/* Encrypts one transport frame. flip: corrupt one ciphertext bit. */
static int send_frame(hconn *c, const uint8_t *pt, size_t n, int flip) {
  uint8_t fr[2 + LP2P_NOISE_MAX_FRAME];
  if (n > LP2P_NOISE_MAX_PLAINTEXT) return -1;
  if (lp2p__noise_cipher_encrypt(&c->tx, NULL, 0, pt, n, fr + 2) < 0) return -1;
  size_t len = n + LP2P_NOISE_TAG_LEN;
  fr[0] = (uint8_t)(len >> 8);
  fr[1] = (uint8_t)len;
  if (flip) fr[2 + len / 2] ^= 0x04;
  return send_raw(c, fr, 2 + len);
}

static int send_plain(hconn *c, const uint8_t *p, size_t n) {
  while (n) {
    size_t k = n > LP2P_NOISE_MAX_PLAINTEXT ? LP2P_NOISE_MAX_PLAINTEXT : n;
    if (send_frame(c, p, k, 0) < 0) return -1;
    p += k;
    n -= k;
  }
  return 0;
}

/* ------------------------------------------------------------------------- */
/* yamux */

static void yx_hdr(uint8_t h[12], uint8_t ver, uint8_t type, uint16_t flags, uint32_t id, uint32_t len) {
  h[0] = ver;
  h[1] = type;
  h[2] = (uint8_t)(flags >> 8);
  h[3] = (uint8_t)flags;
  h[4] = (uint8_t)(id >> 24);
  h[5] = (uint8_t)(id >> 16);
  h[6] = (uint8_t)(id >> 8);
  h[7] = (uint8_t)id;
  h[8] = (uint8_t)(len >> 24);
  h[9] = (uint8_t)(len >> 16);
  h[10] = (uint8_t)(len >> 8);
  h[11] = (uint8_t)len;
}

static int yx_send(hconn *c, uint8_t type, uint16_t flags, uint32_t id, uint32_t len) {
  uint8_t h[12];
  yx_hdr(h, 0, type, flags, id, len);
  return send_plain(c, h, 12);
}

static yst *st_get(hconn *c, uint32_t id) {
  if (!c->st || !(id & 1) || (id >> 1) >= MAX_ST) return NULL;
  return &c->st[id >> 1];
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void yamux_process(hconn *c) {
  size_t off = 0; /* consumed once at the end: floods bring hundreds of thousands of frames */
  while (c->pt.len - off >= 12 && !c->closed) {
    const uint8_t *h = c->pt.p + off;
    uint8_t type = h[1];
    uint16_t flags = (uint16_t)(h[2] << 8 | h[3]);
    uint32_t id = be32(h + 4), len = be32(h + 8);
    size_t flen = 12 + (type == YX_DATA ? len : 0);
    if (c->pt.len - off < flen) break;
    if (type == YX_PING) {
      if (flags & YX_SYN) yx_send(c, YX_PING, YX_ACK, 0, len);
      if (flags & YX_ACK) {
        c->pong_seen = 1;
        c->pong_val = len;
      }
    } else if (type == YX_GOAWAY) {
      c->goaway_seen = 1;
      c->goaway_code = len;
    } else if (type == YX_DATA || type == YX_WUPD) {
      yst *s = st_get(c, id);
      if ((flags & YX_SYN) && !(id & 1)) { /* the node opens a stream (identify): refuse it */
        c->node_syns++;
        yx_send(c, YX_WUPD, YX_RST, id, 0);
      } else if (s) {
        if (flags & YX_ACK) s->acked = 1;
        if (type == YX_WUPD) s->credit += len;
        if (type == YX_DATA) {
          size_t k = len < ST_RX_CAP - s->rxlen ? len : ST_RX_CAP - s->rxlen;
          memcpy(s->rx + s->rxlen, h + 12, k);
          s->rxlen += k;
        }
        if (flags & YX_FIN) s->fin = 1;
        if ((flags & YX_RST) && !s->rst) {
          s->rst = 1;
          s->rst_at = now_ms();
        }
      }
    }
    off += flen;
  }
  buf_consume(&c->pt, off);
}

static void process_in(hconn *c) {
  if (!c->secure) return;
  size_t off = 0;
  while (c->in.len - off >= 2) {
    const uint8_t *f = c->in.p + off;
    size_t n = (size_t)f[0] << 8 | f[1];
    if (c->in.len - off < 2 + n) break;
    off += 2 + n;
    if (n < LP2P_NOISE_TAG_LEN) {
      c->bad_frame = 1;
      continue;
    }
    buf_reserve(&c->pt, n);
    if (lp2p__noise_cipher_decrypt(&c->rx, NULL, 0, f + 2, n, c->pt.p + c->pt.len) < 0)
      c->bad_frame = 1;
    else
      c->pt.len += n - LP2P_NOISE_TAG_LEN;
  }
  buf_consume(&c->in, off);
  if (c->yamux) yamux_process(c);
}

/* Opens stream id (SYN), optionally with a first Data payload. */
static int st_open(hconn *c, uint32_t id, const uint8_t *p, size_t n) {
  yst *s = st_get(c, id);
  if (s) {
    memset(s, 0, sizeof *s);
    s->used = 1;
    s->credit = YX_WINDOW - (int64_t)n;
  }
  if (!n) return yx_send(c, YX_WUPD, YX_SYN, id, 0);
  buf b = {0};
  uint8_t h[12];
  yx_hdr(h, 0, YX_DATA, YX_SYN, id, (uint32_t)n);
  buf_add(&b, h, 12);
  buf_add(&b, p, n);
  int rv = send_plain(c, b.p, b.len);
  buf_free(&b);
  return rv;
}

/* Data on an open stream (frames of at most 16 KiB), no window check: callers decide. */
static int st_send(hconn *c, uint32_t id, const uint8_t *p, size_t n) {
  yst *s = st_get(c, id);
  buf b = {0};
  while (n) {
    size_t k = n > 16384 ? 16384 : n;
    uint8_t h[12];
    yx_hdr(h, 0, YX_DATA, 0, id, (uint32_t)k);
    buf_add(&b, h, 12);
    buf_add(&b, p, k);
    if (s) s->credit -= (int64_t)k;
    p += k;
    n -= k;
  }
  int rv = send_plain(c, b.p, b.len);
  buf_free(&b);
  return rv;
}

/* Yamux ping round trip: 0 when answered within timeout_ms. */
static int ping_ok(hconn *c, int timeout_ms) {
  uint32_t v = randombytes_random() | 1u;
  c->pong_seen = 0;
  if (yx_send(c, YX_PING, YX_SYN, 0, v) < 0) return -1;
  uint64_t end = now_ms() + (uint64_t)timeout_ms;
  while (!(c->pong_seen && c->pong_val == v)) {
    uint64_t t = now_ms();
    if (t >= end || pump(c, (int)(end - t)) < 0) return -1;
  }
  return 0;
}

static int wait_rst(hconn *c, uint32_t id, int timeout_ms) {
  yst *s = st_get(c, id);
  uint64_t end = now_ms() + (uint64_t)timeout_ms;
  while (!s->rst) {
    uint64_t t = now_ms();
    if (t >= end || pump(c, (int)(end - t)) < 0) return -1;
  }
  return 0;
}

/* Counts complete multistream messages equal to text in a stream's received bytes. */
static int st_count_lines(const yst *s, const char *text) {
  size_t off = 0;
  int n = 0;
  while (off < s->rxlen) {
    uint64_t v;
    int k = lp2p_uvarint_decode(s->rx + off, s->rxlen - off, &v);
    if (k <= 0 || off + (size_t)k + v > s->rxlen) break;
    const uint8_t *l = s->rx + off + k;
    if (v == strlen(text) + 1 && !memcmp(l, text, v - 1) && l[v - 1] == '\n') n++;
    off += (size_t)k + v;
  }
  return n;
}

/* ------------------------------------------------------------------------- */
/* session setup shared by the modes */

static lp2p_privkey *g_key, *g_other;

static void print_peer(const lp2p_privkey *k) {
  lp2p_peer_id id;
  char txt[LP2P_PEER_ID_MAX_TEXT];
  if (lp2p_peer_id_from_pubkey(lp2p_privkey_public(k), &id) == 0 && lp2p_peer_id_to_string(&id, txt, sizeof txt) >= 0)
    say("peer-id %s", txt);
}

/* TCP + multistream /noise + a valid Noise handshake with early yamux + a first ping round trip. */
static int secure_session(hconn *c) {
  if (hc_connect(c) < 0) return fail("cannot connect to %s:%d: %s", g_o.host, g_o.port, strerror(errno));
  if (mss_select_raw(c, NOISE_ID) < 0) return fail("multistream /noise was not accepted");
  print_peer(g_key);
  if (noise_initiate(c, g_key, g_other, T_NONE, M3_NONE) != 0) return fail("noise handshake failed");
  if (ping_ok(c, g_o.wait_ms) < 0) return fail("no answer to a yamux ping after the handshake");
  return 0;
}

/* Connection-level verdict: the node must close within wait_ms. */
static int expect_close(hconn *c, const char *what) {
  long ms = wait_closed(c, g_o.wait_ms);
  if (ms < 0) return fail("%s: the node kept the connection open for %d ms", what, g_o.wait_ms);
  if (c->goaway_seen) say("goaway code %u", c->goaway_code);
  return pass("%s: connection closed by the node (%s) after %ld ms%s", what, c->how, ms,
              c->goaway_seen ? ", with a GoAway" : "");
}

/* Stream-level verdict: stream id is reset, the connection still answers pings. */
static int expect_stream_reset(hconn *c, uint32_t id, const char *what, int timeout_ms) {
  uint64_t t0 = now_ms();
  if (wait_rst(c, id, timeout_ms) < 0)
    return fail("%s: stream %u not reset within %d ms (%s)", what, id, timeout_ms,
                c->closed ? "the connection was closed instead" : "no reaction");
  long ms = (long)(now_ms() - t0);
  if (ping_ok(c, g_o.wait_ms) < 0) return fail("%s: stream reset, but the connection died too", what);
  return pass("%s: stream %u reset after %ld ms, connection alive", what, id, ms);
}

/* ------------------------------------------------------------------------- */
/* case 1: multistream-select on the raw connection */

static int m_mss(const char *mode) {
  hconn c;
  if (hc_connect(&c) < 0) return fail("cannot connect: %s", strerror(errno));
  buf b = {0};
  int rv;
  if (strcmp(mode, "mss-bad-varint")) buf_mss(&b, MSS_HEADER);
  if (!strcmp(mode, "mss-oversize")) { /* a 100 KiB line */
    buf_varint(&b, 100 * 1024);
    for (int i = 0; i < 100 * 1024 - 1; i++) buf_byte(&b, 'a');
    buf_byte(&b, '\n');
  } else if (!strcmp(mode, "mss-no-newline")) {
    buf_varint(&b, 7);
    buf_add(&b, "/noisex", 7);
  } else if (!strcmp(mode, "mss-bad-varint")) {
    for (int i = 0; i < 10; i++) buf_byte(&b, 0xff);
  } else if (!strcmp(mode, "mss-nul")) {
    buf_varint(&b, 8);
    buf_add(&b, "/noi\0se\n", 8);
  } else if (!strcmp(mode, "mss-empty")) {
    buf_varint(&b, 0);
  } else if (!strcmp(mode, "mss-bad-header")) {
    b.len = 0;
    buf_mss(&b, "/multistream/9.9.9");
    buf_mss(&b, NOISE_ID);
  }
  send_raw(&c, b.p, b.len); /* the node may close while we are still sending: that is fine */
  buf_free(&b);
  rv = expect_close(&c, mode);
  hc_free(&c);
  return rv;
}

/* Unknown proposals until the node gives up; it must answer "na" at most its limit (32) times. */
static int m_mss_na_flood(void) {
  hconn c;
  if (hc_connect(&c) < 0) return fail("cannot connect: %s", strerror(errno));
  int n = g_o.count ? g_o.count : 100, na = 0;
  buf b = {0};
  buf_mss(&b, MSS_HEADER);
  send_raw(&c, b.p, b.len);
  char line[1100];
  if (mss_read_raw(&c, line, sizeof line, g_o.wait_ms) < 0 || strcmp(line, MSS_HEADER)) {
    buf_free(&b);
    hc_free(&c);
    return fail("no multistream header from the node");
  }
  for (int i = 0; i < n && !c.closed; i++) {
    b.len = 0;
    char p[64];
    snprintf(p, sizeof p, "/hostile/nope/%d", i);
    buf_mss(&b, p);
    if (send_raw(&c, b.p, b.len) < 0) break;
    if (mss_read_raw(&c, line, sizeof line, 2000) < 0) break;
    if (!strcmp(line, "na")) na++;
  }
  buf_free(&b);
  say("na answers: %d", na);
  int rv;
  if (na >= n)
    rv = fail("the node answered all %d unknown proposals", n);
  else
    rv = expect_close(&c, "mss-na-flood");
  hc_free(&c);
  return rv;
}

/* ------------------------------------------------------------------------- */
/* case 2 + 3: Noise handshake */

static int m_noise_msg1(const char *mode) {
  hconn c;
  if (hc_connect(&c) < 0) return fail("cannot connect: %s", strerror(errno));
  if (mss_select_raw(&c, NOISE_ID) < 0) {
    hc_free(&c);
    return fail("multistream /noise was not accepted");
  }
  uint8_t junk[65535];
  randombytes_buf(junk, sizeof junk);
  if (!strcmp(mode, "noise-msg1-short")) {
    noise_send_msg(&c, junk, 16, 16);
  } else if (!strcmp(mode, "noise-msg1-zero")) {
    noise_send_msg(&c, junk, 0, 0);
  } else if (!strcmp(mode, "noise-msg1-max")) {
    noise_send_msg(&c, junk, 65535, 65535);
  } else if (!strcmp(mode, "noise-msg1-truncated")) { /* announces 32, sends 10, then EOF */
    noise_send_msg(&c, junk, 10, 32);
    shutdown(c.fd, SHUT_WR);
  } else if (!strcmp(mode, "noise-msg1-lowpoint")) { /* an all-zero ephemeral key: DH fails */
    memset(junk, 0, 32);
    noise_send_msg(&c, junk, 32, 32);
    /* the responder only notices at msg2's DH: it must close instead of answering */
  }
  int rv = expect_close(&c, mode);
  hc_free(&c);
  return rv;
}

static int m_noise_msg3(const char *mode) {
  hconn c;
  if (hc_connect(&c) < 0) return fail("cannot connect: %s", strerror(errno));
  if (mss_select_raw(&c, NOISE_ID) < 0) {
    hc_free(&c);
    return fail("multistream /noise was not accepted");
  }
  print_peer(g_key);
  tamper t = T_NONE;
  msg3_defect d = M3_NONE;
  if (!strcmp(mode, "noise-msg3-flip-static")) d = M3_FLIP_STATIC;
  else if (!strcmp(mode, "noise-msg3-flip-tag")) d = M3_FLIP_TAG;
  else if (!strcmp(mode, "noise-msg3-short")) d = M3_SHORT;
  else if (parse_tamper(g_o.tamper, &t) < 0 || t == T_NONE) {
    hc_free(&c);
    return fail("noise-payload needs --tamper badsig|wrong-static|other-key|no-sig|no-key|bad-key|garbage|muxer-junk");
  }
  int r = noise_initiate(&c, g_key, g_other, t, d);
  if (r < 0) {
    hc_free(&c);
    return fail("%s: the node did not get to msg3", mode);
  }
  char what[96];
  snprintf(what, sizeof what, "%s%s%s", mode, t != T_NONE ? " " : "", t != T_NONE ? g_o.tamper : "");
  int rv = expect_close(&c, what);
  hc_free(&c);
  return rv;
}

/* Transport frames after a complete handshake. */
static int m_noise_transport(const char *mode) {
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  uint8_t h[12], junk[65535];
  yx_hdr(h, 0, YX_PING, YX_SYN, 0, 7);
  randombytes_buf(junk, sizeof junk);
  if (!strcmp(mode, "noise-frame-flip")) {
    send_frame(&c, h, 12, 1);
  } else if (!strcmp(mode, "noise-frame-zero")) {
    noise_send_msg(&c, junk, 0, 0);
  } else if (!strcmp(mode, "noise-frame-short")) {
    noise_send_msg(&c, junk, 10, 10);
  } else if (!strcmp(mode, "noise-frame-max")) {
    noise_send_msg(&c, junk, 65535, 65535);
  } else if (!strcmp(mode, "noise-frame-replay")) { /* the same valid frame twice: nonce reuse */
    uint8_t fr[2 + 12 + 16];
    lp2p__noise_cipher_encrypt(&c.tx, NULL, 0, h, 12, fr + 2);
    fr[0] = 0;
    fr[1] = 28;
    send_raw(&c, fr, sizeof fr);
    send_raw(&c, fr, sizeof fr);
  } else if (!strcmp(mode, "noise-frame-truncated")) { /* announce 1000, send 100, then EOF */
    noise_send_msg(&c, junk, 100, 1000);
    shutdown(c.fd, SHUT_WR);
  }
  int rv = expect_close(&c, mode);
  hc_free(&c);
  return rv;
}

/* Listener roles: the node dials us. We answer multistream and play the Noise responder with our
 * key (and an optional payload defect); the node must abort after msg2 (no msg3). */
static int serve_one(int lfd, tamper t) {
  struct pollfd p = {lfd, POLLIN, 0};
  if (poll(&p, 1, g_o.wait_ms) <= 0) return fail("nobody dialed within %d ms", g_o.wait_ms);
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) return fail("accept: %s", strerror(errno));
  hconn c;
  hc_init(&c, fd);
  char line[1100];
  buf b = {0}, msg = {0}, payload = {0};
  int rv = 1;
  if (mss_read_raw(&c, line, sizeof line, g_o.wait_ms) < 0 || strcmp(line, MSS_HEADER)) {
    rv = fail("no multistream header from the dialer");
    goto out;
  }
  buf_mss(&b, MSS_HEADER);
  for (;;) { /* answer proposals until /noise */
    if (mss_read_raw(&c, line, sizeof line, g_o.wait_ms) < 0) {
      rv = fail("dialer went away during multistream");
      goto out;
    }
    buf_mss(&b, strcmp(line, NOISE_ID) ? "na" : NOISE_ID);
    send_raw(&c, b.p, b.len);
    b.len = 0;
    if (!strcmp(line, NOISE_ID)) break;
  }
  uint8_t m[65535], pl[65535];
  size_t n, pn;
  if (noise_recv_msg(&c, &msg, g_o.wait_ms) < 0 || lp2p__noise_hs_init(&c.hs, 0, NULL, 0, NULL, NULL) < 0 ||
      lp2p__noise_hs_read(&c.hs, msg.p, msg.len, pl, sizeof pl, &pn) < 0) {
    rv = fail("no valid noise msg1 from the dialer");
    goto out;
  }
  if (build_payload(&payload, g_key, g_other, c.hs.s_pub, 1, t) < 0 ||
      lp2p__noise_hs_write(&c.hs, payload.p, payload.len, m, sizeof m, &n) < 0 || noise_send_msg(&c, m, n, n) < 0) {
    rv = fail("cannot send msg2");
    goto out;
  }
  /* a correct dialer that rejects us closes without msg3 */
  msg.len = 0;
  uint64_t t0 = now_ms();
  if (noise_recv_msg(&c, &msg, g_o.wait_ms) == 0) {
    int valid = lp2p__noise_hs_read(&c.hs, msg.p, msg.len, pl, sizeof pl, &pn) == 0;
    if (g_o.expect_accept && valid)
      rv = pass("the dialer accepted our msg2 and sent a valid msg3");
    else
      rv = fail("the dialer sent msg3 (%zu bytes, %s)", msg.len, valid ? "valid" : "invalid");
    goto out;
  }
  if (g_o.expect_accept) {
    rv = fail("the dialer rejected our msg2 (%s)", c.closed ? c.how : "no msg3");
    goto out;
  }
  if (!c.closed) {
    rv = fail("the dialer neither closed nor sent msg3 within %d ms", g_o.wait_ms);
    goto out;
  }
  rv = pass("dialer aborted after msg2 (%s, %llu ms)", c.how, (unsigned long long)(now_ms() - t0));
out:
  buf_free(&b);
  buf_free(&msg);
  buf_free(&payload);
  hc_free(&c);
  return rv;
}

static int m_listen(void) {
  tamper t;
  if (parse_tamper(g_o.tamper, &t) < 0) return fail("bad --tamper %s", g_o.tamper);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)g_o.port);
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  socklen_t al = sizeof a;
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 16) < 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
    return fail("cannot listen: %s", strerror(errno));
  lp2p_peer_id id;
  char txt[LP2P_PEER_ID_MAX_TEXT];
  lp2p_peer_id_from_pubkey(lp2p_privkey_public(g_key), &id);
  lp2p_peer_id_to_string(&id, txt, sizeof txt);
  say("listening /ip4/127.0.0.1/tcp/%d %s", ntohs(a.sin_port), txt);
  int rv = 0;
  for (int i = 0; i < g_o.serve; i++) rv |= serve_one(lfd, t);
  close(lfd);
  return rv;
}

/* ------------------------------------------------------------------------- */
/* case 4: yamux */

static int m_yamux_conn(const char *mode) {
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  uint8_t h[12];
  buf b = {0};
  if (!strcmp(mode, "yamux-window-frame")) { /* one Data frame one byte larger than the window */
    st_open(&c, 1, NULL, 0);
    yx_hdr(h, 0, YX_DATA, 0, 1, YX_WINDOW + 1);
    buf_add(&b, h, 12);
    buf_reserve(&b, 65000);
    memset(b.p + b.len, 'w', 65000);
    b.len += 65000;
    send_plain(&c, b.p, b.len);
  } else if (!strcmp(mode, "yamux-reuse-id")) {
    st_open(&c, 1, NULL, 0);
    pump_for(&c, 100);
    st_open(&c, 1, NULL, 0);
  } else if (!strcmp(mode, "yamux-reuse-closed-id")) {
    st_open(&c, 1, NULL, 0);
    pump_for(&c, 100);
    yx_send(&c, YX_WUPD, YX_RST, 1, 0);
    pump_for(&c, 100);
    st_open(&c, 1, NULL, 0);
  } else if (!strcmp(mode, "yamux-even-id")) {
    yx_send(&c, YX_WUPD, YX_SYN, 2, 0);
  } else if (!strcmp(mode, "yamux-bad-version")) {
    yx_hdr(h, 1, YX_WUPD, YX_SYN, 1, 0);
    send_plain(&c, h, 12);
  } else if (!strcmp(mode, "yamux-bad-type")) {
    yx_hdr(h, 0, 7, 0, 1, 0);
    send_plain(&c, h, 12);
  } else if (!strcmp(mode, "yamux-unknown-stream")) {
    yx_hdr(h, 0, YX_DATA, 0, 99, 4);
    buf_add(&b, h, 12);
    buf_add(&b, "abcd", 4);
    send_plain(&c, b.p, b.len);
  } else if (!strcmp(mode, "yamux-stream-zero")) {
    yx_send(&c, YX_WUPD, 0, 0, 1000);
  }
  buf_free(&b);
  int rv = expect_close(&c, mode);
  hc_free(&c);
  return rv;
}

/* Window violation on a real data path: the echo protocol (the node must run with --echo). We
 * never read the echoes, so the node's echo stops consuming once our receive window is full; we
 * send exactly the credit the node granted (legal), then one byte more. */
static int m_yamux_window(void) {
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  buf b = {0};
  buf_mss(&b, MSS_HEADER);
  buf_mss(&b, ECHO_ID);
  st_open(&c, 1, b.p, b.len);
  buf_free(&b);
  yst *s = st_get(&c, 1);
  uint64_t end = now_ms() + (uint64_t)g_o.wait_ms;
  while (st_count_lines(s, ECHO_ID) < 1 && !s->rst && now_ms() < end)
    if (pump(&c, 100) < 0) break;
  if (st_count_lines(s, ECHO_ID) < 1) {
    hc_free(&c);
    return fail("the node did not accept %s (run it with --echo)", ECHO_ID);
  }
  static uint8_t chunk[16384];
  memset(chunk, 'e', sizeof chunk);
  uint64_t sent = 0;
  int idle_rounds = 0;
  while (!c.closed && !s->rst && idle_rounds < 3) {
    if (s->credit > 0) {
      size_t k = s->credit > (int64_t)sizeof chunk ? sizeof chunk : (size_t)s->credit;
      if (st_send(&c, 1, chunk, k) < 0) break;
      sent += k;
      idle_rounds = 0;
      pump(&c, 0);
      continue;
    }
    int64_t before = s->credit;
    pump_for(&c, 300);
    if (s->credit == before) idle_rounds++;
  }
  if (c.closed || s->rst) {
    hc_free(&c);
    return fail("yamux-window: %s before the window was used up (%llu bytes sent)",
                c.closed ? "connection closed" : "stream reset", (unsigned long long)sent);
  }
  say("window exhausted after %llu bytes (credit %lld); sending one byte more", (unsigned long long)sent,
      (long long)s->credit);
  st_send(&c, 1, chunk, 1);
  int rv = expect_close(&c, "yamux-window");
  hc_free(&c);
  return rv;
}

/* More SYNs than the node's per-connection stream limit: the excess is reset, the rest stays. */
static int m_yamux_syn_flood(void) {
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  int n = g_o.count ? g_o.count : 700;
  if (n > MAX_ST) n = MAX_ST;
  buf b = {0};
  for (int i = 0; i < n; i++) {
    uint8_t h[12];
    uint32_t id = 2u * (uint32_t)i + 1;
    st_get(&c, id)->used = 1;
    yx_hdr(h, 0, YX_WUPD, YX_SYN, id, 0);
    buf_add(&b, h, 12);
  }
  send_plain(&c, b.p, b.len);
  buf_free(&b);
  pump_for(&c, 1500);
  int rst = 0, alive = 0, acked = 0;
  for (int i = 0; i < n; i++) {
    yst *s = st_get(&c, 2u * (uint32_t)i + 1);
    if (s->acked) acked++;
    if (s->rst)
      rst++;
    else
      alive++;
  }
  say("syn-flood: %d streams opened, %d acked, %d reset, %d kept", n, acked, rst, alive);
  if (c.closed) {
    hc_free(&c);
    return fail("syn-flood: the node closed the whole connection");
  }
  if (ping_ok(&c, g_o.wait_ms) < 0) {
    hc_free(&c);
    return fail("syn-flood: no ping answer afterwards");
  }
  int rv, lim = g_o.expect_open >= 0 ? g_o.expect_open : 512; /* the node's streams-per-connection limit */
  if (alive == 0 || rst == 0 || alive > lim || rst < n - lim)
    rv = fail("syn-flood: expected some streams kept (<= %d) and the excess reset", lim);
  else
    rv = pass("syn-flood: %d of %d streams reset past the limit, %d kept, connection alive", rst, n, alive);
  /* clean up: reset what we opened, the node must free them */
  b = (buf){0};
  for (int i = 0; i < n; i++) {
    yst *s = st_get(&c, 2u * (uint32_t)i + 1);
    if (s->rst) continue;
    uint8_t h[12];
    yx_hdr(h, 0, YX_WUPD, YX_RST, 2u * (uint32_t)i + 1, 0);
    buf_add(&b, h, 12);
  }
  send_plain(&c, b.p, b.len);
  buf_free(&b);
  if (!rv && ping_ok(&c, g_o.wait_ms) < 0) rv = fail("syn-flood: no ping answer after resetting the streams");
  hc_free(&c);
  return rv;
}

/* Streams that never negotiate: each is reset at the node's negotiation timeout. */
static int m_yamux_nego_timeout(void) {
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  int n = g_o.count ? g_o.count : 4;
  uint64_t t0 = now_ms();
  for (int i = 0; i < n; i++) st_open(&c, 2u * (uint32_t)i + 1, NULL, 0);
  /* one stream that stops mid-line (a partial multistream message) */
  uint8_t part[] = {19, '/', 'm', 'u', 'l'};
  st_open(&c, 2u * (uint32_t)n + 1, part, sizeof part);
  n++;
  int done = 0;
  uint64_t end = t0 + (uint64_t)g_o.wait_ms;
  while (now_ms() < end && !c.closed) {
    done = 0;
    for (int i = 0; i < n; i++) done += st_get(&c, 2u * (uint32_t)i + 1)->rst;
    if (done == n) break;
    pump(&c, 200);
  }
  if (c.closed) {
    hc_free(&c);
    return fail("nego-timeout: the node closed the connection");
  }
  if (done < n) {
    hc_free(&c);
    return fail("nego-timeout: only %d of %d silent streams reset within %d ms", done, n, g_o.wait_ms);
  }
  uint64_t first = UINT64_MAX, last = 0;
  for (int i = 0; i < n; i++) {
    uint64_t at = st_get(&c, 2u * (uint32_t)i + 1)->rst_at - t0;
    if (at < first) first = at;
    if (at > last) last = at;
  }
  say("nego-timeout: %d streams reset between %llu and %llu ms", n, (unsigned long long)first,
      (unsigned long long)last);
  int rv;
  if ((long)first < g_o.min_ms)
    rv = fail("nego-timeout: a stream was reset after %llu ms, before the %d ms timeout", (unsigned long long)first,
              g_o.min_ms);
  else if (ping_ok(&c, g_o.wait_ms) < 0)
    rv = fail("nego-timeout: no ping answer afterwards");
  else
    rv = pass("nego-timeout: %d silent streams reset after %llu..%llu ms, connection alive", n,
              (unsigned long long)first, (unsigned long long)last);
  hc_free(&c);
  return rv;
}

/* Stream-level multistream abuse: only the stream dies. */
static int m_yamux_stream_mss(const char *mode) {
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  buf b = {0};
  buf_mss(&b, MSS_HEADER);
  if (!strcmp(mode, "stream-na-flood")) {
    for (int i = 0; i < (g_o.count ? g_o.count : 40); i++) {
      char p[64];
      snprintf(p, sizeof p, "/hostile/nope/%d", i);
      buf_mss(&b, p);
    }
  } else if (!strcmp(mode, "stream-oversize")) {
    buf_varint(&b, 100 * 1024);
    for (int i = 0; i < 4000; i++) buf_byte(&b, 'a');
  } else if (!strcmp(mode, "stream-bad-varint")) {
    for (int i = 0; i < 10; i++) buf_byte(&b, 0xff);
  } else if (!strcmp(mode, "stream-nul")) {
    buf_varint(&b, 8);
    buf_add(&b, "/pi\0ng/\n", 8);
  }
  st_open(&c, 1, b.p, b.len);
  buf_free(&b);
  int rv = expect_stream_reset(&c, 1, mode, g_o.wait_ms);
  if (!rv && !strcmp(mode, "stream-na-flood")) {
    int na = st_count_lines(st_get(&c, 1), "na");
    say("na answers: %d", na);
    if (na >= (g_o.count ? g_o.count : 40)) rv = fail("the node answered every unknown proposal");
  }
  hc_free(&c);
  return rv;
}

/* Identify pushes (/ipfs/id/push/1.0.0) with defects: only the push is rejected (the node
 * reports identify-failed with the reason), the connection stays. */
static int m_identify_push(void) {
  static const char *const kinds[] = {"empty-record", "garbage", "oversize", "too-many",
                                      "other-key",    "record-other-key", "record-badsig"};
  int kind = -1;
  for (int i = 0; i < (int)(sizeof kinds / sizeof *kinds); i++)
    if (!strcmp(g_o.tamper, kinds[i])) kind = i;
  if (kind < 0)
    return fail("identify-push needs --tamper empty-record|garbage|oversize|too-many|other-key|record-other-key|"
                "record-badsig");
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  uint8_t pk[LP2P_PUBKEY_PB_MAX], opk[LP2P_PUBKEY_PB_MAX];
  int pk_len = lp2p_pubkey_to_protobuf(lp2p_privkey_public(g_key), pk, sizeof pk);
  int opk_len = lp2p_pubkey_to_protobuf(lp2p_privkey_public(g_other), opk, sizeof opk);
  buf msg = {0}, wire = {0};
  uint8_t *env = NULL;
  size_t env_len = 0;
  if (kind == 5 || kind == 6) {
    lp2p_multiaddr *ma = NULL;
    lp2p_multiaddr_parse(&ma, "/ip4/127.0.0.1/tcp/1", NULL, 0);
    const lp2p_multiaddr *addrs[] = {ma};
    lp2p_peer_record_seal(kind == 5 ? g_other : g_key, 1, addrs, 1, &env, &env_len);
    lp2p_multiaddr_free(ma);
    if (!env) {
      hc_free(&c);
      return fail("cannot seal a peer record");
    }
    if (kind == 6) env[env_len - 1] ^= 0x01; /* the signature is the last field */
  }
  pb_bytes(&msg, 1, kind == 4 ? opk : pk, (size_t)(kind == 4 ? opk_len : pk_len));
  pb_bytes(&msg, 3, "/hostile/1.0.0", 14);
  if (kind == 0) pb_bytes(&msg, 8, "", 0);
  if (env) pb_bytes(&msg, 8, env, env_len);
  free(env);
  if (kind == 1) {
    buf_varint(&wire, 40);
    for (int i = 0; i < 40; i++) buf_byte(&wire, (uint8_t)(0xff - i));
  } else if (kind == 2) {
    buf_varint(&wire, 9000);
    for (int i = 0; i < 9000; i++) buf_byte(&wire, 0x1a);
  } else {
    for (int i = 0; i < (kind == 3 ? 11 : 1); i++) {
      buf_varint(&wire, msg.len);
      buf_add(&wire, msg.p, msg.len);
    }
  }
  buf b = {0};
  buf_mss(&b, MSS_HEADER);
  buf_mss(&b, "/ipfs/id/push/1.0.0");
  st_open(&c, 1, b.p, b.len);
  yst *s = st_get(&c, 1);
  uint64_t end = now_ms() + (uint64_t)g_o.wait_ms;
  while (st_count_lines(s, "/ipfs/id/push/1.0.0") < 1 && !s->rst && now_ms() < end)
    if (pump(&c, 100) < 0) break;
  int rv;
  if (st_count_lines(s, "/ipfs/id/push/1.0.0") < 1) {
    rv = fail("the node did not accept /ipfs/id/push/1.0.0");
  } else {
    st_send(&c, 1, wire.p, wire.len);
    yx_send(&c, YX_WUPD, YX_FIN, 1, 0);
    end = now_ms() + (uint64_t)g_o.wait_ms;
    while (!s->fin && !s->rst && now_ms() < end)
      if (pump(&c, 100) < 0) break;
    if (c.closed)
      rv = fail("identify-push %s: the node closed the connection", g_o.tamper);
    else if (!s->fin && !s->rst)
      rv = fail("identify-push %s: the node did not end the push stream", g_o.tamper);
    else if (ping_ok(&c, g_o.wait_ms) < 0)
      rv = fail("identify-push %s: no ping answer afterwards", g_o.tamper);
    else
      rv = pass("identify-push %s: push stream ended (%s), connection alive", g_o.tamper, s->rst ? "reset" : "FIN");
  }
  buf_free(&b);
  buf_free(&msg);
  buf_free(&wire);
  hc_free(&c);
  return rv;
}

/* Ping SYNs without reading the answers: the node must bound what it queues for us. */
static int m_yamux_ping_flood(void) {
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  int n = g_o.count ? g_o.count : 3000000;
  buf b = {0};
  for (int i = 0; i < 4096; i++) {
    uint8_t h[12];
    yx_hdr(h, 0, YX_PING, YX_SYN, 0, (uint32_t)i);
    buf_add(&b, h, 12);
  }
  int sent = 0;
  /* no pumping: the node's answers pile up on its side */
  while (sent < n && !c.closed) {
    if (send_plain(&c, b.p, b.len) < 0) break;
    sent += 4096;
  }
  buf_free(&b);
  say("ping-flood: %d ping SYNs sent, connection %s", sent, c.closed ? "closed while sending" : "still open");
  /* the answers (12 bytes each) pile up in the node: it must cut us off rather than queue them */
  long ms = c.closed ? 0 : wait_closed(&c, g_o.wait_ms);
  const char *how = c.how;
  hc_free(&c);
  if (ms < 0) return fail("ping-flood: the node kept the connection after %d unanswered pings", sent);
  return pass("ping-flood: connection closed by the node (%s) after %d pings", how, sent);
}

/* ------------------------------------------------------------------------- */
/* case 5: slowloris */

static int m_slowloris(const char *mode) {
  hconn c;
  if (hc_connect(&c) < 0) return fail("cannot connect: %s", strerror(errno));
  long ms = -1;
  if (!strcmp(mode, "slow-silent")) {
    ms = wait_closed(&c, g_o.wait_ms);
  } else if (!strcmp(mode, "slow-dribble")) { /* a valid start (multistream, noise msg1), one byte per interval */
    buf b = {0};
    buf_mss(&b, MSS_HEADER);
    buf_mss(&b, NOISE_ID);
    uint8_t e[34] = {0, 32};
    randombytes_buf(e + 2, 32);
    buf_add(&b, e, sizeof e);
    uint64_t end = now_ms() + (uint64_t)g_o.wait_ms;
    size_t i = 0;
    while (!c.closed && now_ms() < end) {
      if (i < b.len && send_raw(&c, b.p + i++, 1) < 0) break;
      pump_for(&c, g_o.interval_ms);
    }
    buf_free(&b);
    say("dribbled %zu bytes", i);
    ms = c.closed ? (long)(c.closed_at - c.opened_at) : -1;
  } else if (!strcmp(mode, "slow-noise")) { /* msg1, then nothing */
    if (mss_select_raw(&c, NOISE_ID) < 0) {
      hc_free(&c);
      return fail("multistream /noise was not accepted");
    }
    uint8_t m[64];
    size_t n;
    lp2p__noise_hs_init(&c.hs, 1, NULL, 0, NULL, NULL);
    lp2p__noise_hs_write(&c.hs, NULL, 0, m, sizeof m, &n);
    noise_send_msg(&c, m, n, n);
    ms = wait_closed(&c, g_o.wait_ms);
  }
  hc_free(&c);
  if (ms < 0) return fail("%s: still open after %d ms", mode, g_o.wait_ms);
  if (ms < g_o.min_ms) return fail("%s: closed after %ld ms, before the %d ms handshake timeout", mode, ms, g_o.min_ms);
  return pass("%s: closed by the node after %ld ms", mode, ms);
}

/* Many connections that never speak. The node keeps at most its pending-handshake limit and
 * refuses the rest at once; the kept ones close at the handshake timeout. */
static int m_pending(void) {
  int n = g_o.count ? g_o.count : 100;
  hconn *cs = calloc((size_t)n, sizeof *cs);
  if (!cs) return fail("out of memory");
  int opened = 0;
  for (int i = 0; i < n; i++) {
    if (hc_connect(&cs[i]) < 0) break;
    opened++;
  }
  /* settle: refused connections are closed right away */
  uint64_t end = now_ms() + 1000;
  while (now_ms() < end) {
    for (int i = 0; i < opened; i++) pump(&cs[i], 0);
    sleep_ms(50);
  }
  int closed = 0;
  for (int i = 0; i < opened; i++) closed += cs[i].closed;
  say("pending: %d connections, %d refused at once, %d kept", opened, closed, opened - closed);
  int rv = 0;
  if (g_o.expect_open >= 0 && opened - closed != g_o.expect_open)
    rv = fail("pending: the node kept %d connections, expected %d", opened - closed, g_o.expect_open);
  /* the kept ones must go at the handshake timeout */
  end = now_ms() + (uint64_t)g_o.wait_ms;
  int left = opened - closed;
  while (left && now_ms() < end) {
    struct pollfd *p = calloc((size_t)opened, sizeof *p);
    for (int i = 0; i < opened; i++) p[i] = (struct pollfd){cs[i].closed ? -1 : cs[i].fd, POLLIN, 0};
    poll(p, (nfds_t)opened, 200);
    free(p);
    left = 0;
    for (int i = 0; i < opened; i++) {
      pump(&cs[i], 0);
      left += !cs[i].closed;
    }
  }
  long first = -1, last = -1;
  for (int i = 0; i < opened; i++) {
    if (!cs[i].closed) continue;
    long ms = (long)(cs[i].closed_at - cs[i].opened_at);
    if (ms < 1000) continue; /* refused at once */
    if (first < 0 || ms < first) first = ms;
    if (ms > last) last = ms;
  }
  for (int i = 0; i < opened; i++) hc_free(&cs[i]);
  free(cs);
  if (rv) return rv;
  if (left) return fail("pending: %d connections still open after %d ms", left, g_o.wait_ms);
  if (first >= 0 && first < g_o.min_ms) return fail("pending: a kept connection closed after %ld ms", first);
  return pass("pending: %d refused at once, %d kept and closed at the handshake timeout (%ld..%ld ms)", closed,
              opened - closed, first, last);
}

/* Established connections up to the node's inbound limit: --count secured sessions one after the
 * other (a fresh identity each); the node must keep exactly --expect-open of them (its inbound
 * limit minus the connections it already has), refuse every later one before the handshake, and
 * keep answering pings on the kept ones. */
static int m_conns(void) {
  int n = g_o.count ? g_o.count : 40, kept = 0, refused = 0, late = 0;
  hconn *cs = calloc((size_t)n, sizeof *cs);
  if (!cs) return fail("out of memory");
  for (int i = 0; i < n; i++) {
    lp2p_privkey *k = NULL;
    if (hc_connect(&cs[i]) < 0) {
      free(cs);
      return fail("cannot connect: %s", strerror(errno));
    }
    if (mss_select_raw(&cs[i], NOISE_ID) < 0) { /* refused: closed before any answer */
      refused++;
      hc_free(&cs[i]);
      cs[i].fd = -1;
      continue;
    }
    if (refused) late++; /* accepted after a refusal: the limit is not what was expected */
    int rv = lp2p_privkey_generate(&k, LP2P_KEY_ED25519, 0);
    if (!rv) rv = noise_initiate(&cs[i], k, g_other, T_NONE, M3_NONE);
    if (!rv) rv = ping_ok(&cs[i], g_o.wait_ms);
    lp2p_privkey_free(k);
    if (rv) {
      for (int j = 0; j <= i; j++)
        if (cs[j].fd >= 0) hc_free(&cs[j]);
      free(cs);
      return fail("conns: connection %d: the secure session failed", i + 1);
    }
    kept++;
  }
  int dead = 0;
  for (int i = 0; i < n; i++)
    if (cs[i].fd >= 0 && ping_ok(&cs[i], g_o.wait_ms) < 0) dead++;
  say("conns: %d connections, %d established, %d refused, %d no longer answering", n, kept, refused, dead);
  for (int i = 0; i < n; i++)
    if (cs[i].fd >= 0) hc_free(&cs[i]);
  free(cs);
  if (late) return fail("conns: %d connections established after the first refusal", late);
  if (dead) return fail("conns: %d established connections stopped answering pings", dead);
  if (g_o.expect_open >= 0 && kept != g_o.expect_open)
    return fail("conns: the node kept %d connections, expected %d (its inbound limit)", kept, g_o.expect_open);
  return pass("conns: %d established and still answering, %d refused before the handshake", kept, refused);
}

/* ------------------------------------------------------------------------- */
/* case 6: connection flood */

static int m_flood(void) {
  int n = g_o.count ? g_o.count : 3000;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
    rl.rlim_cur = rl.rlim_max < (rlim_t)n + 64 ? rl.rlim_max : (rlim_t)n + 64;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  int *fd = malloc((size_t)n * sizeof *fd);
  uint8_t *st = calloc((size_t)n, 1); /* 0 connecting, 1 connected, 2 closed by node, 3 connect failed */
  uint8_t *served = calloc((size_t)n, 1); /* the node answered (multistream): it took it as a pending handshake */
  struct pollfd *p = malloc((size_t)n * sizeof *p);
  if (!fd || !st || !p || !served) return fail("out of memory");
  buf hello = {0};
  buf_mss(&hello, MSS_HEADER);
  buf_mss(&hello, NOISE_ID);
  uint64_t t0 = now_ms();
  for (int i = 0; i < n; i++) {
    int inprog = 0;
    fd[i] = tcp_socket_to(g_o.host, g_o.port, 1, &inprog);
    if (fd[i] < 0) {
      st[i] = 3;
      continue;
    }
    if (!inprog && send(fd[i], hello.p, hello.len, MSG_NOSIGNAL) >= 0) st[i] = 1;
    if (!inprog && st[i] != 1) st[i] = 2;
  }
  int connected = 0, refused = 0, failed = 0, pending = 0, open_hold = -1;
  /* phase 0: connects finish; 1: the node refuses what is over its limits; 2: hold */
  int phase = 0;
  uint64_t settle_end = now_ms() + (uint64_t)g_o.wait_ms, end = settle_end;
  for (;;) {
    connected = refused = failed = pending = 0;
    for (int i = 0; i < n; i++) {
      p[i].fd = st[i] <= 1 ? fd[i] : -1;
      p[i].events = st[i] == 0 ? POLLOUT : POLLIN;
      p[i].revents = 0;
      pending += st[i] == 0;
      connected += st[i] == 1 || st[i] == 2;
      refused += st[i] == 2;
      failed += st[i] == 3;
    }
    uint64_t t = now_ms();
    if (phase == 0 && !pending) {
      say("flood-connected connected=%d refused=%d open=%d failed=%d connect-ms=%llu", connected, refused,
          connected - refused, failed, (unsigned long long)(t - t0));
      phase = 1;
    }
    if (phase < 2 && (t >= settle_end || (phase == 1 && g_o.expect_open >= 0 && connected - refused <= g_o.expect_open))) {
      say("flood-holding connected=%d refused=%d open=%d failed=%d connecting=%d settle-ms=%llu", connected, refused,
          connected - refused, failed, pending, (unsigned long long)(t - t0));
      phase = 2;
      open_hold = connected - refused;
      end = t + (uint64_t)g_o.hold_ms;
    }
    if (phase == 2 && t >= end) break;
    uint64_t until = phase == 2 ? end : settle_end;
    int r = poll(p, (nfds_t)n, (int)(until > t ? (until - t > 200 ? 200 : until - t) : 0));
    if (r <= 0) continue;
    for (int i = 0; i < n; i++) {
      if (!p[i].revents) continue;
      if (st[i] == 0) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(fd[i], SOL_SOCKET, SO_ERROR, &err, &el);
        st[i] = err ? 3 : 1;
        /* speak first: a connection the kernel completed but the node has not accepted yet is
         * then retransmitted until the node takes it (and refuses or serves it) */
        if (st[i] == 1 && send(fd[i], hello.p, hello.len, MSG_NOSIGNAL) < 0) st[i] = 2;
      } else if (st[i] == 1) {
        char tmp[4096];
        ssize_t k = recv(fd[i], tmp, sizeof tmp, 0);
        if (k > 0) served[i] = 1;
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) st[i] = 2;
      }
    }
  }
  connected = refused = failed = 0;
  int still_connecting = 0, n_served = 0;
  for (int i = 0; i < n; i++) {
    n_served += served[i];
    connected += st[i] == 1 || st[i] == 2;
    refused += st[i] == 2;
    failed += st[i] == 3;
    still_connecting += st[i] == 0;
    if (fd[i] >= 0) close(fd[i]);
  }
  say("flood-done connected=%d refused=%d open=%d failed=%d connecting=%d served=%d", connected, refused,
      connected - refused, failed, still_connecting, n_served);
  free(fd);
  free(st);
  free(p);
  free(served);
  buf_free(&hello);
  if (connected < n / 2) return fail("flood: only %d of %d connections got through TCP", connected, n);
  /* --expect-open N (the pending-handshake limit): the node never keeps more than N once the flood has
   * settled, and it did serve (answer) at least N. Exactly N stay open unless kept ones reach the
   * node's handshake timeout while the flood settles or during the hold (short timeouts). */
  if (g_o.expect_open >= 0 && (open_hold > g_o.expect_open || connected - refused > g_o.expect_open))
    return fail("flood: the node kept %d connections (%d at the end), more than %d (its pending-handshake limit)",
                open_hold, connected - refused, g_o.expect_open);
  if (g_o.expect_open >= 0 && n_served < g_o.expect_open)
    return fail("flood: the node served only %d connections, expected at least %d", n_served, g_o.expect_open);
  return pass("flood: %d connections, %d served, %d closed by the node, %d kept when settled, %d left open",
              connected, n_served, refused, open_hold, connected - refused);
}

/* ------------------------------------------------------------------------- */

typedef struct mode {
  const char *name;
  int (*fn)(const char *mode);
  const char *help;
} mode;

static int w_mss_na(const char *m) { (void)m; return m_mss_na_flood(); }
static int w_listen(const char *m) { (void)m; return m_listen(); }
static int w_window(const char *m) { (void)m; return m_yamux_window(); }
static int w_syn(const char *m) { (void)m; return m_yamux_syn_flood(); }
static int w_nego(const char *m) { (void)m; return m_yamux_nego_timeout(); }
static int w_ping(const char *m) { (void)m; return m_yamux_ping_flood(); }
static int w_idpush(const char *m) { (void)m; return m_identify_push(); }
static int w_pending(const char *m) { (void)m; return m_pending(); }
static int w_flood(const char *m) { (void)m; return m_flood(); }
static int w_conns(const char *m) { (void)m; return m_conns(); }

static const mode k_modes[] = {
    {"mss-oversize", m_mss, "a 100 KiB multistream line"},
    {"mss-no-newline", m_mss, "a multistream message without its newline"},
    {"mss-bad-varint", m_mss, "ten 0xff bytes as the length prefix"},
    {"mss-nul", m_mss, "a protocol id with a NUL byte"},
    {"mss-empty", m_mss, "a zero-length multistream message"},
    {"mss-bad-header", m_mss, "a wrong multistream version header"},
    {"mss-na-flood", w_mss_na, "unknown proposals until the node gives up (--count N, default 100)"},
    {"noise-msg1-short", m_noise_msg1, "msg1 of 16 bytes"},
    {"noise-msg1-zero", m_noise_msg1, "msg1 of length 0"},
    {"noise-msg1-max", m_noise_msg1, "msg1 of 65535 bytes"},
    {"noise-msg1-truncated", m_noise_msg1, "msg1 announces 32 bytes, 10 arrive, then EOF"},
    {"noise-msg1-lowpoint", m_noise_msg1, "msg1 with an all-zero ephemeral key"},
    {"noise-msg3-flip-static", m_noise_msg3, "one bit flipped in msg3's encrypted static key"},
    {"noise-msg3-flip-tag", m_noise_msg3, "one bit flipped in msg3's payload tag"},
    {"noise-msg3-short", m_noise_msg3, "msg3 truncated to 40 bytes"},
    {"noise-payload", m_noise_msg3, "msg3 payload defect: --tamper badsig|wrong-static|other-key|no-sig|no-key|"
                                    "bad-key|garbage|muxer-junk"},
    {"noise-frame-flip", m_noise_transport, "a transport frame with one bit flipped"},
    {"noise-frame-zero", m_noise_transport, "a transport frame of length 0"},
    {"noise-frame-short", m_noise_transport, "a transport frame shorter than the tag"},
    {"noise-frame-max", m_noise_transport, "a 65535-byte frame of garbage"},
    {"noise-frame-replay", m_noise_transport, "the same valid frame twice (nonce reuse)"},
    {"noise-frame-truncated", m_noise_transport, "a frame announcing 1000 bytes, 100 arrive, then EOF"},
    {"listen", w_listen, "listen (--port, default any) and serve --serve N dialers as a Noise responder with "
                         "--tamper (prints 'listening MADDR PEER-ID'); each dialer must abort after msg2, "
                         "or with --expect accept send a valid msg3"},
    {"yamux-window-frame", m_yamux_conn, "a Data frame one byte larger than the 256 KiB window"},
    {"yamux-window", w_window, "echo stream: send the granted credit, then one byte more (node --echo)"},
    {"yamux-reuse-id", m_yamux_conn, "SYN on a stream id that is open"},
    {"yamux-reuse-closed-id", m_yamux_conn, "SYN on a stream id that was just reset"},
    {"yamux-even-id", m_yamux_conn, "SYN with the listener's (even) parity"},
    {"yamux-bad-version", m_yamux_conn, "a frame with version 1"},
    {"yamux-bad-type", m_yamux_conn, "a frame of type 7"},
    {"yamux-unknown-stream", m_yamux_conn, "Data on a stream that was never opened"},
    {"yamux-stream-zero", m_yamux_conn, "a WindowUpdate on stream 0"},
    {"yamux-syn-flood", w_syn, "--count SYNs (default 700) at once; the excess over --expect-open (the "
                                 "node's stream limit, default 512) must be reset"},
    {"yamux-nego-timeout", w_nego, "--count silent streams + one partial line; reset at the negotiation timeout "
                                   "(--min-ms)"},
    {"yamux-ping-flood", w_ping, "--count ping SYNs without reading the answers"},
    {"identify-push", w_idpush, "an identify push with --tamper empty-record|garbage|oversize|too-many|other-key|"
                                "record-other-key|record-badsig"},
    {"stream-na-flood", m_yamux_stream_mss, "unknown proposals on a stream (--count, default 40)"},
    {"stream-oversize", m_yamux_stream_mss, "a 100 KiB multistream line on a stream"},
    {"stream-bad-varint", m_yamux_stream_mss, "a bad varint on a stream"},
    {"stream-nul", m_yamux_stream_mss, "a NUL byte in a protocol id on a stream"},
    {"slow-silent", m_slowloris, "connect and say nothing (--wait-ms, --min-ms)"},
    {"slow-dribble", m_slowloris, "multistream + noise msg1, one byte every --interval-ms"},
    {"slow-noise", m_slowloris, "multistream + noise msg1, then nothing"},
    {"pending", w_pending, "--count silent connections; --expect-open = the node's pending limit"},
    {"conns", w_conns, "--count secured connections one by one; --expect-open = the node's inbound limit"},
    {"flood", w_flood, "--count connections at once (nonblocking), held --hold-ms; --expect-open = the "
                       "node's pending limit (never more kept, at least that many served)"},
};

static void usage(FILE *f) {
  fprintf(f, "Usage: hostile_peer MODE --port P [--host 127.0.0.1] [--wait-ms MS] [--min-ms MS] [--count N]\n"
             "                    [--hold-ms MS] [--expect-open N] [--interval-ms MS] [--tamper T] [--serve N]\n"
             "                    [--expect abort|accept]\n"
             "Modes:\n");
  for (size_t i = 0; i < sizeof k_modes / sizeof *k_modes; i++) fprintf(f, "  %-22s %s\n", k_modes[i].name, k_modes[i].help);
}

static int int_arg(const char *s, int *out) {
  char *e;
  long v = strtol(s, &e, 10);
  if (!*s || *e || v < 0 || v > 1000000000) return -1;
  *out = (int)v;
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const mode *md = NULL;
  for (size_t i = 0; i < sizeof k_modes / sizeof *k_modes; i++)
    if (!strcmp(argv[1], k_modes[i].name)) md = &k_modes[i];
  if (!md) {
    fprintf(stderr, "hostile_peer: unknown mode '%s'\n", argv[1]);
    usage(stderr);
    return 2;
  }
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int bad = !v;
    if (!bad) {
      if (!strcmp(a, "--port")) bad = int_arg(v, &g_o.port) || g_o.port > 65535;
      else if (!strcmp(a, "--host")) g_o.host = v;
      else if (!strcmp(a, "--wait-ms")) bad = int_arg(v, &g_o.wait_ms);
      else if (!strcmp(a, "--min-ms")) bad = int_arg(v, &g_o.min_ms);
      else if (!strcmp(a, "--count")) bad = int_arg(v, &g_o.count);
      else if (!strcmp(a, "--hold-ms")) bad = int_arg(v, &g_o.hold_ms);
      else if (!strcmp(a, "--expect-open")) bad = int_arg(v, &g_o.expect_open);
      else if (!strcmp(a, "--interval-ms")) bad = int_arg(v, &g_o.interval_ms);
      else if (!strcmp(a, "--tamper")) g_o.tamper = v;
      else if (!strcmp(a, "--serve")) bad = int_arg(v, &g_o.serve);
      else if (!strcmp(a, "--expect")) {
        g_o.expect_accept = !strcmp(v, "accept");
        bad = !g_o.expect_accept && strcmp(v, "abort");
      }
      else bad = 1;
    }
    if (bad) {
      fprintf(stderr, "hostile_peer: bad option '%s'\n", a);
      return 2;
    }
    i++;
  }
  if (strcmp(md->name, "listen") && !g_o.port) {
    fprintf(stderr, "hostile_peer: --port is required\n");
    return 2;
  }
  if (strcmp(g_o.host, "127.0.0.1")) { /* this tool attacks loopback only */
    fprintf(stderr, "hostile_peer: only --host 127.0.0.1 is allowed\n");
    return 2;
  }
  if (sodium_init() < 0 || lp2p_privkey_generate(&g_key, LP2P_KEY_ED25519, 0) < 0 ||
      lp2p_privkey_generate(&g_other, LP2P_KEY_ED25519, 0) < 0) {
    fprintf(stderr, "hostile_peer: cannot create keys\n");
    return 3;
  }
  int rv = md->fn(md->name);
  lp2p_privkey_free(g_key);
  lp2p_privkey_free(g_other);
  return rv ? 1 : 0;
}
