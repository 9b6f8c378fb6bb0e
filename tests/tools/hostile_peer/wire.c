/* tests/tools/hostile_peer/wire.c - the wire as the hostile peer speaks it: a growable byte buffer,
 * a raw TCP connection (blocking pumps with timeouts), hand-made multistream-select lines, Noise XX
 * built from the engine's internals (noise/noise_int.h) so that any byte can be corrupted, yamux
 * frames and client streams, and the session setup and verdict helpers the modes share. */
#include "hostile.h"

/* ------------------------------------------------------------------------- */
/* growable byte buffer */

void buf_reserve(buf *b, size_t n) {
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
void buf_add(buf *b, const void *p, size_t n) {
  buf_reserve(b, n);
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
}
void buf_byte(buf *b, uint8_t v) { buf_add(b, &v, 1); }
void buf_varint(buf *b, uint64_t v) {
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
void buf_free(buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}
/* One multistream message: varint(len(s) + 1) || s || '\n'. */
void buf_mss(buf *b, const char *s) {
  buf_varint(b, strlen(s) + 1);
  buf_add(b, s, strlen(s));
  buf_byte(b, '\n');
}

/* ------------------------------------------------------------------------- */
/* one connection to (or from) the node */

void hc_init(hconn *c, int fd) {
  memset(c, 0, sizeof *c);
  c->fd = fd;
  c->opened_at = now_ms();
  struct sockaddr_in a;
  socklen_t al = sizeof a;
  if (getsockname(fd, (struct sockaddr *)&a, &al) == 0) c->lport = ntohs(a.sin_port);
}

void hc_free(hconn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  buf_free(&c->in);
  buf_free(&c->pt);
  free(c->st);
  c->st = NULL;
  sodium_memzero(&c->hs, sizeof c->hs);
}

int tcp_socket_to(const char *host, int port, int nonblock, int *inprogress) {
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

int hc_connect(hconn *c) {
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
int send_raw(hconn *c, const void *p, size_t n) {
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
int pump(hconn *c, int timeout_ms) {
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
int pump_for(hconn *c, int ms) {
  uint64_t end = now_ms() + (uint64_t)ms;
  for (;;) {
    uint64_t t = now_ms();
    if (t >= end) return 0;
    if (pump(c, (int)(end - t)) < 0) return -1;
  }
}

/* Waits up to ms for the node to close the connection: elapsed ms since it was opened, or -1. */
long wait_closed(hconn *c, int ms) {
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
int mss_read_raw(hconn *c, char *line, size_t cap, int timeout_ms) {
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
int mss_select_raw(hconn *c, const char *proto) {
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

int parse_tamper(const char *s, tamper *t) {
  static const char *const names[] = {"none",   "badsig", "wrong-static", "other-key",  "no-sig",
                                      "no-key", "bad-key", "garbage",     "muxer-junk"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (!strcmp(s, names[i])) {
      *t = (tamper)i;
      return 0;
    }
  return -1;
}

void pb_bytes(buf *b, unsigned field, const void *p, size_t n) {
  buf_byte(b, (uint8_t)(field << 3 | 2));
  buf_varint(b, n);
  buf_add(b, p, n);
}

/* The libp2p NoiseHandshakePayload, with an optional defect. */
int build_payload(buf *out, const lp2p_privkey *key, const lp2p_privkey *other, const uint8_t s_pub[32],
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

int noise_send_msg(hconn *c, const uint8_t *m, size_t n, size_t announce) {
  uint8_t h[2] = {(uint8_t)(announce >> 8), (uint8_t)announce};
  if (send_raw(c, h, 2) < 0) return -1;
  return n ? send_raw(c, m, n) : 0;
}

int noise_recv_msg(hconn *c, buf *m, int timeout_ms) {
  if (need_raw(c, 2, timeout_ms) < 0) return -1;
  size_t n = (size_t)c->in.p[0] << 8 | c->in.p[1];
  if (need_raw(c, 2 + n, timeout_ms) < 0) return -1;
  m->len = 0;
  buf_add(m, c->in.p + 2, n);
  buf_consume(&c->in, 2 + n);
  return 0;
}

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
int noise_initiate(hconn *c, const lp2p_privkey *key, const lp2p_privkey *other, tamper t,
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
int send_frame(hconn *c, const uint8_t *pt, size_t n, int flip) {
  uint8_t fr[2 + LP2P_NOISE_MAX_FRAME];
  if (n > LP2P_NOISE_MAX_PLAINTEXT) return -1;
  if (lp2p__noise_cipher_encrypt(&c->tx, NULL, 0, pt, n, fr + 2) < 0) return -1;
  size_t len = n + LP2P_NOISE_TAG_LEN;
  fr[0] = (uint8_t)(len >> 8);
  fr[1] = (uint8_t)len;
  if (flip) fr[2 + len / 2] ^= 0x04;
  return send_raw(c, fr, 2 + len);
}

int send_plain(hconn *c, const uint8_t *p, size_t n) {
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

void yx_hdr(uint8_t h[12], uint8_t ver, uint8_t type, uint16_t flags, uint32_t id, uint32_t len) {
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

int yx_send(hconn *c, uint8_t type, uint16_t flags, uint32_t id, uint32_t len) {
  uint8_t h[12];
  yx_hdr(h, 0, type, flags, id, len);
  return send_plain(c, h, 12);
}

yst *st_get(hconn *c, uint32_t id) {
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
int st_open(hconn *c, uint32_t id, const uint8_t *p, size_t n) {
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
int st_send(hconn *c, uint32_t id, const uint8_t *p, size_t n) {
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
int ping_ok(hconn *c, int timeout_ms) {
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
int st_count_lines(const yst *s, const char *text) {
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

lp2p_privkey *g_key, *g_other;

void print_peer(const lp2p_privkey *k) {
  lp2p_peer_id id;
  char txt[LP2P_PEER_ID_MAX_TEXT];
  if (lp2p_peer_id_from_pubkey(lp2p_privkey_public(k), &id) == 0 && lp2p_peer_id_to_string(&id, txt, sizeof txt) >= 0)
    say("peer-id %s", txt);
}

/* TCP + multistream /noise + a valid Noise handshake with early yamux + a first ping round trip. */
int secure_session(hconn *c) {
  if (hc_connect(c) < 0) return fail("cannot connect to %s:%d: %s", g_o.host, g_o.port, strerror(errno));
  if (mss_select_raw(c, NOISE_ID) < 0) return fail("multistream /noise was not accepted");
  print_peer(g_key);
  if (noise_initiate(c, g_key, g_other, T_NONE, M3_NONE) != 0) return fail("noise handshake failed");
  if (ping_ok(c, g_o.wait_ms) < 0) return fail("no answer to a yamux ping after the handshake");
  return 0;
}

/* Connection-level verdict: the node must close within wait_ms. */
int expect_close(hconn *c, const char *what) {
  long ms = wait_closed(c, g_o.wait_ms);
  if (ms < 0) return fail("%s: the node kept the connection open for %d ms", what, g_o.wait_ms);
  if (c->goaway_seen) say("goaway code %u", c->goaway_code);
  return pass("%s: connection closed by the node (%s) after %ld ms%s", what, c->how, ms,
              c->goaway_seen ? ", with a GoAway" : "");
}

/* Stream-level verdict: stream id is reset, the connection still answers pings. */
int expect_stream_reset(hconn *c, uint32_t id, const char *what, int timeout_ms) {
  uint64_t t0 = now_ms();
  if (wait_rst(c, id, timeout_ms) < 0)
    return fail("%s: stream %u not reset within %d ms (%s)", what, id, timeout_ms,
                c->closed ? "the connection was closed instead" : "no reaction");
  long ms = (long)(now_ms() - t0);
  if (ping_ok(c, g_o.wait_ms) < 0) return fail("%s: stream reset, but the connection died too", what);
  return pass("%s: stream %u reset after %ld ms, connection alive", what, id, ms);
}
