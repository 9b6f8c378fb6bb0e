/* tests/tools/hostile_peer/main.c - a scripted hostile libp2p peer for tests/interop/test_hostile.sh.
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
/* The tool is split by concern across the .c files of tests/tools/hostile_peer/ (see hostile.h). */
#include "hostile.h"

/* ------------------------------------------------------------------------- */
/* options, output */

opts g_o = {"127.0.0.1", 0, 5000, 0, 3000, 0, -1, 500, "none", 1, 0};

void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

int pass(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("ok: ");
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
  return 0;
}

int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("FAIL: ");
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
  return 1;
}

uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
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
