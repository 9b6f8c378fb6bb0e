/* tests/tools/hostile_peer/hostile.h - shared by the files of the hostile_peer tool (one binary,
 * built from every the .c files of tests/tools/hostile_peer/; see main.c for what it is and how it is used):
 *   main.c             options, output (say/pass/fail), the mode table, main
 *   wire.c             byte buffer, raw TCP connection, hand-made multistream, Noise from the engine's
 *                      internals, yamux frames and client streams, session setup and verdicts
 *   attacks_mss.c      case 1: multistream-select on the raw connection
 *   attacks_noise.c    case 2 + 3: the Noise handshake (dialer and listener side), transport frames
 *   attacks_yamux.c    case 4: yamux, streams, identify push
 *   floods.c           case 5 + 6: slowloris, pending/established limits, connection flood */
#ifndef LP2P_HOSTILE_H
#define LP2P_HOSTILE_H
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
#include "lp2p/record.h"
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

typedef struct buf {
  uint8_t *p;
  size_t len, cap;
} buf;

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

typedef enum msg3_defect { M3_NONE, M3_FLIP_STATIC, M3_FLIP_TAG, M3_SHORT } msg3_defect;

extern opts g_o;                       /* main.c: the command-line options */
extern lp2p_privkey *g_key, *g_other; /* wire.c; main() creates them: ours and a second identity */

/* main.c */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int pass(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t now_ms(void);
void sleep_ms(int ms);

/* wire.c */
void buf_reserve(buf *b, size_t n);
void buf_add(buf *b, const void *p, size_t n);
void buf_byte(buf *b, uint8_t v);
void buf_varint(buf *b, uint64_t v);
void buf_free(buf *b);
void buf_mss(buf *b, const char *s);
void hc_init(hconn *c, int fd);
void hc_free(hconn *c);
int tcp_socket_to(const char *host, int port, int nonblock, int *inprogress);
int hc_connect(hconn *c);
int send_raw(hconn *c, const void *p, size_t n);
int pump(hconn *c, int timeout_ms);
int pump_for(hconn *c, int ms);
long wait_closed(hconn *c, int ms);
int mss_read_raw(hconn *c, char *line, size_t cap, int timeout_ms);
int mss_select_raw(hconn *c, const char *proto);
int parse_tamper(const char *s, tamper *t);
void pb_bytes(buf *b, unsigned field, const void *p, size_t n);
int build_payload(buf *out, const lp2p_privkey *key, const lp2p_privkey *other, const uint8_t s_pub[32],
                  int muxers, tamper t);
int noise_send_msg(hconn *c, const uint8_t *m, size_t n, size_t announce);
int noise_recv_msg(hconn *c, buf *m, int timeout_ms);
int noise_initiate(hconn *c, const lp2p_privkey *key, const lp2p_privkey *other, tamper t,
                   msg3_defect d);
int send_frame(hconn *c, const uint8_t *pt, size_t n, int flip);
int send_plain(hconn *c, const uint8_t *p, size_t n);
void yx_hdr(uint8_t h[12], uint8_t ver, uint8_t type, uint16_t flags, uint32_t id, uint32_t len);
int yx_send(hconn *c, uint8_t type, uint16_t flags, uint32_t id, uint32_t len);
yst *st_get(hconn *c, uint32_t id);
int st_open(hconn *c, uint32_t id, const uint8_t *p, size_t n);
int st_send(hconn *c, uint32_t id, const uint8_t *p, size_t n);
int ping_ok(hconn *c, int timeout_ms);
int st_count_lines(const yst *s, const char *text);
void print_peer(const lp2p_privkey *k);
int secure_session(hconn *c);
int expect_close(hconn *c, const char *what);
int expect_stream_reset(hconn *c, uint32_t id, const char *what, int timeout_ms);

/* attacks_mss.c */
int m_mss(const char *mode);
int m_mss_na_flood(void);

/* attacks_noise.c */
int m_noise_msg1(const char *mode);
int m_noise_msg3(const char *mode);
int m_noise_transport(const char *mode);
int m_listen(void);

/* attacks_yamux.c */
int m_yamux_conn(const char *mode);
int m_yamux_window(void);
int m_yamux_syn_flood(void);
int m_yamux_nego_timeout(void);
int m_yamux_stream_mss(const char *mode);
int m_identify_push(void);
int m_yamux_ping_flood(void);

/* floods.c */
int m_slowloris(const char *mode);
int m_pending(void);
int m_conns(void);
int m_flood(void);

#endif
