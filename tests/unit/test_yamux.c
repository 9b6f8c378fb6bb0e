/* tests/unit/test_yamux.c - Yamux engine unit tests: frame codec, every vector of
 * yamux-frames.json, one test per frame type / flag / violation, each input fed
 * whole, split at every byte offset (sampled offsets for very large inputs) and
 * one byte at a time; plus the API-driven behaviours (ids, framing, windows,
 * half-close, reset, ping, keep-alive, GoAway, limits, scheduling, reentrancy). */
#include <stdlib.h>

#include "failmem.h"
#include "json.h"
#include "muxer/yamux_int.h"
#include "test.h"
#include "yamux_harness.h"

enum { T_DATA = 0, T_WU = 1, T_PING = 2, T_GOAWAY = 3 };
enum { F_SYN = 1, F_ACK = 2, F_FIN = 4, F_RST = 8 };
#define W256K 262144u

/* ---- input builder ---- */
static uint8_t g_in[2 << 20];
static size_t g_n;
static void in_reset(void) { g_n = 0; }
static void fr(uint8_t type, uint16_t flags, uint32_t id, uint32_t len, const char *payload) {
  g_n += yh_frame(g_in + g_n, type, flags, id, len, payload, payload ? len : 0);
}
/* Data frame header plus `body` bytes of zeros (body may be < len: truncated input). */
static void frz(uint16_t flags, uint32_t id, uint32_t len, size_t body) {
  g_n += yh_frame(g_in + g_n, T_DATA, flags, id, len, NULL, 0);
  memset(g_in + g_n, 0, body);
  g_n += body;
}
static void raw(const uint8_t *p, size_t n) {
  memcpy(g_in + g_n, p, n);
  g_n += n;
}

/* ---- scenario runner ---- */
typedef struct scen {
  const char *name;
  int is_client;
  void (*setup)(yh_peer *p);
  const char *log;  /* expected events */
  const char *out;  /* expected output frames */
  int err;          /* expected feed error, 0 = none */
  int count;        /* expected stream count, -1 = skip */
  void (*post)(yh_peer *p); /* extra checks */
  int manual;       /* no auto-consume */
  const lp2p_yamux_config *cfg;
} scen;

static int g_post_failed;
static long g_runs; /* scenario executions (all splits) */

static void run_one(const scen *sc, const uint8_t *in, size_t len, size_t split, int *failed) {
  yh_peer p;
  g_runs++;
  if (yh_peer_init(&p, sc->is_client, sc->cfg, NULL)) {
    TEST_FAIL_("%s: init failed", sc->name);
    *failed = 1;
    return;
  }
  if (sc->manual) p.auto_consume = 0;
  if (sc->setup) sc->setup(&p);
  size_t n;
  free(yh_take_output(&p, &n));
  yh_clear_events(&p);
  int64_t rv = yh_feed_split(&p, in, len, split);
  int64_t want = sc->err ? sc->err : (int64_t)len;
  char log[4096];
  snprintf(log, sizeof log, "%s", yh_log(&p));
  const char *out = yh_out_text(&p);
  if (rv != want) {
    TEST_FAIL_("%s split %zu: feed returned %lld, want %lld", sc->name, split, (long long)rv,
               (long long)want);
    *failed = 1;
  } else if (strcmp(log, sc->log)) {
    TEST_FAIL_("%s split %zu: events \"%s\", want \"%s\"", sc->name, split, log, sc->log);
    *failed = 1;
  } else if (strcmp(out, sc->out)) {
    TEST_FAIL_("%s split %zu: output \"%s\", want \"%s\"", sc->name, split, out, sc->out);
    *failed = 1;
  } else if (lp2p_yamux_error(p.mx) != sc->err) {
    TEST_FAIL_("%s split %zu: error() %d", sc->name, split, lp2p_yamux_error(p.mx));
    *failed = 1;
  } else if (sc->count >= 0 && lp2p_yamux_stream_count(p.mx) != (size_t)sc->count) {
    TEST_FAIL_("%s split %zu: %zu streams, want %d", sc->name, split, lp2p_yamux_stream_count(p.mx),
               sc->count);
    *failed = 1;
  } else if (p.nested) {
    TEST_FAIL_("%s split %zu: on_stream_close nested in a callback", sc->name, split);
    *failed = 1;
  } else if (sc->post) {
    g_post_failed = 0;
    sc->post(&p);
    if (g_post_failed) {
      TEST_FAIL_("%s split %zu: post-check failed", sc->name, split);
      *failed = 1;
    }
  }
  if (sc->err) { /* dead session: every entry point reports the error */
    uint32_t id;
    if (lp2p_yamux_feed(p.mx, in, len, 0) != sc->err || lp2p_yamux_open_stream(p.mx, &id) != sc->err ||
        lp2p_yamux_next_expiry(p.mx) != LP2P_TSTAMP_NEVER) {
      TEST_FAIL_("%s: dead session still usable", sc->name);
      *failed = 1;
    }
  }
  yh_peer_free(&p);
}

/* Whole, every split offset (sampled past 4 KiB), and byte by byte. */
static void run_scen(const scen *sc, const uint8_t *in, size_t len) {
  int failed = 0;
  run_one(sc, in, len, 0, &failed);
  for (size_t s = 1; s < len && !failed; s++) {
    if (len > 4096 && s > 256 && s < len - 256 && s % 4093) continue;
    run_one(sc, in, len, s, &failed);
  }
  if (!failed) run_one(sc, in, len, SIZE_MAX, &failed);
}
#define PCHECK(c)                                      \
  do {                                                 \
    if (!(c)) {                                        \
      fprintf(stderr, "  post-check %s failed\n", #c); \
      g_post_failed = 1;                               \
    }                                                  \
  } while (0)

/* ---- setups ---- */
static void setup_srv_s1(yh_peer *p) {
  uint8_t f[12];
  yh_frame(f, T_WU, F_SYN, 1, 0, NULL, 0);
  lp2p_yamux_feed(p->mx, f, 12, 0);
}
static void setup_cli_s2(yh_peer *p) {
  uint8_t f[12];
  yh_frame(f, T_WU, F_SYN, 2, 0, NULL, 0);
  lp2p_yamux_feed(p->mx, f, 12, 0);
}
static void setup_cli_open1(yh_peer *p) {
  uint32_t id = 0;
  lp2p_yamux_open_stream(p->mx, &id);
}
static void setup_cli_open1_acked(yh_peer *p) {
  setup_cli_open1(p);
  uint8_t f[12];
  yh_frame(f, T_WU, F_ACK, 1, 0, NULL, 0);
  lp2p_yamux_feed(p->mx, f, 12, 0);
}
static void setup_srv_s1_remote_rst(yh_peer *p) {
  setup_srv_s1(p);
  uint8_t f[12];
  yh_frame(f, T_WU, F_RST, 1, 0, NULL, 0);
  lp2p_yamux_feed(p->mx, f, 12, 0);
}
static void setup_srv_s1_local_reset(yh_peer *p) {
  setup_srv_s1(p);
  lp2p_yamux_reset(p->mx, 1);
}
static void setup_refuse(yh_peer *p) { p->refuse = 1; }
static void setup_ping7(yh_peer *p) {
  p->mx->ping_seq = 7;
  lp2p_yamux_ping(p->mx, 0);
}

static void post_unacked0(yh_peer *p) { PCHECK(p->mx->n_unacked == 0); }
static void post_sw_1mib(yh_peer *p) {
  uint64_t sw = 0;
  PCHECK(lp2p__yamux_stream_windows(p->mx, 1, &sw, NULL, NULL, NULL) == 0);
  PCHECK(sw == 1048576);
}
static void post_sw_plus1000(yh_peer *p) {
  uint64_t sw = 0;
  PCHECK(lp2p__yamux_stream_windows(p->mx, 1, &sw, NULL, NULL, NULL) == 0);
  PCHECK(sw == W256K + 1000);
}
static void post_data_hello(yh_peer *p) {
  yh_stream *s = yh_st(p, 1);
  PCHECK(s->len == 5 && !memcmp(s->data, "hello", 5));
}
static void post_data_hello3(yh_peer *p) {
  yh_stream *s = yh_st(p, 3);
  PCHECK(s->len == 5 && !memcmp(s->data, "hello", 5));
}
static void post_rtt(yh_peer *p) { PCHECK(lp2p_yamux_rtt(p->mx) == 1); }
static void post_goaway(yh_peer *p) {
  uint32_t code = 99, id;
  PCHECK(lp2p_yamux_remote_goaway(p->mx, &code) == 1 && code == 2);
  PCHECK(lp2p_yamux_open_stream(p->mx, &id) == LP2P_ERR_GOAWAY);
}

/* ---------------------------------------------------------------- tests */

TEST(frame_codec) {
  uint8_t b[12];
  lp2p__yamux_hdr h;
  lp2p__yamux_hdr_encode(b, 3, 0xABCD, 0x01020304, 0xFFFFFFFE);
  const uint8_t want[12] = {0, 3, 0xAB, 0xCD, 1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFE};
  CHECK_MEM(b, want, 12);
  lp2p__yamux_hdr_decode(b, &h);
  CHECK_EQ(h.version, 0);
  CHECK_EQ(h.type, 3);
  CHECK_EQ(h.flags, 0xABCD);
  CHECK_EQ(h.stream_id, 0x01020304);
  CHECK_EQ(h.length, 0xFFFFFFFEu);
}

/* Every vector: header decodes/re-encodes, and the frame has its meaning when fed
 * (a session is set up in the state the frame needs). */
TEST(vectors) {
  json *j = json_load_vector("yamux-frames.json");
  REQUIRE(j);
  json *frames = json_get(j, "frames");
  REQUIRE(frames && frames->n == 15);
  for (size_t i = 0; i < frames->n; i++) {
    json *v = json_at(frames, i);
    size_t n;
    uint8_t *f = json_hex(v, "hex", &n);
    REQUIRE(f && n >= 12);
    lp2p__yamux_hdr h;
    lp2p__yamux_hdr_decode(f, &h);
    uint8_t re[12];
    lp2p__yamux_hdr_encode(re, h.type, h.flags, h.stream_id, h.length);
    CHECK_MEM(re, f, 12);
    CHECK_EQ(h.version, 0);
    CHECK_EQ(n, 12 + (h.type == T_DATA ? h.length : 0));
    static char log[256], out[256];
    scen sc = {json_str(v, "desc"), 0, NULL, log, out, 0, -1, NULL, 0, NULL};
    log[0] = out[0] = 0;
    if (h.type == T_DATA || h.type == T_WU) {
      uint32_t id = h.stream_id;
      sc.is_client = id % 2 == 0; /* the frame comes from the peer: id has the peer's parity */
      char dpart[64] = "";
      if (h.type == T_DATA && h.length) snprintf(dpart, sizeof dpart, " D%u:%u", id, h.length);
      if (h.flags & F_SYN) {
        snprintf(log, sizeof log, "O%u%s", id, dpart);
        snprintf(out, sizeof out, "WU+ACK#%u=0", id);
        sc.count = 1;
        if (h.length == 786432) sc.post = post_sw_1mib;
        if (h.type == T_DATA) sc.post = id == 3 ? post_data_hello3 : post_data_hello;
      } else if (h.flags & F_ACK) {
        sc.is_client = 1; /* our own stream 1 being acknowledged */
        sc.setup = setup_cli_open1;
        sc.post = post_unacked0;
        sc.count = 1;
      } else {
        sc.setup = id % 2 ? setup_srv_s1 : setup_cli_s2;
        if (h.flags & F_RST) {
          snprintf(log, sizeof log, "C%u:LP2P_ERR_RESET", id);
          sc.count = 0;
        } else if (h.flags & F_FIN) {
          snprintf(log, sizeof log, "E%u", id);
          sc.count = 1;
        } else if (h.type == T_DATA) {
          snprintf(log, sizeof log, "D%u:%u", id, h.length);
          sc.post = post_data_hello;
        } else {
          sc.is_client = 1;
          sc.setup = setup_cli_open1_acked;
          sc.post = h.length == W256K ? NULL : post_sw_plus1000;
          sc.count = 1;
        }
      }
    } else if (h.type == T_PING) {
      if (h.flags & F_SYN) {
        snprintf(out, sizeof out, "PING+ACK#0=%u", h.length);
      } else {
        sc.setup = setup_ping7;
        snprintf(log, sizeof log, "P0");
        sc.post = post_rtt;
      }
    } else {
      snprintf(log, sizeof log, "G%u", h.length);
      if (h.length == 2) sc.post = post_goaway;
    }
    run_scen(&sc, f, n);
    free(f);
  }
  json_free(j);
}

TEST(syn_and_ack) {
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  scen a = {"syn_wu", 0, NULL, "O1", "WU+ACK#1=0", 0, 1, NULL, 0, NULL};
  run_scen(&a, g_in, g_n);

  in_reset();
  fr(T_DATA, F_SYN | F_FIN, 1, 5, "hello");
  scen b = {"syn_data_fin", 0, NULL, "O1 D1:5 E1", "WU+ACK#1=0", 0, 1, post_data_hello, 0, NULL};
  run_scen(&b, g_in, g_n);

  /* ACK may ride on a Data frame (rust) */
  in_reset();
  fr(T_DATA, F_ACK, 1, 5, "hello");
  scen c = {"ack_on_data", 1, setup_cli_open1, "D1:5", "", 0, 1, post_unacked0, 0, NULL};
  run_scen(&c, g_in, g_n);

  /* go-yamux concurrency can put SYNs on the wire out of order */
  in_reset();
  fr(T_WU, F_SYN, 5, 0, NULL);
  fr(T_WU, F_SYN, 3, 0, NULL);
  fr(T_DATA, 0, 3, 2, "hi");
  scen d = {"reordered_syn", 0, NULL, "O5 O3 D3:2", "WU+ACK#5=0 WU+ACK#3=0", 0, 2, NULL, 0, NULL};
  run_scen(&d, g_in, g_n);

  /* refused by the application: ACK then RST, data discarded, no close event */
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  fr(T_DATA, 0, 1, 5, "hello");
  fr(T_PING, F_SYN, 0, 3, NULL);
  scen e = {"refused", 0, setup_refuse, "O1", "WU+ACK#1=0 WU+RST#1=0 PING+ACK#0=3", 0, 0, NULL, 0, NULL};
  run_scen(&e, g_in, g_n);
}

TEST(data_frames) {
  in_reset();
  fr(T_DATA, 0, 1, 5, "hello");
  scen a = {"data", 0, setup_srv_s1, "D1:5", "", 0, 1, post_data_hello, 0, NULL};
  run_scen(&a, g_in, g_n);

  /* js sends Data frames as large as the window: a whole 256 KiB frame is fine */
  in_reset();
  frz(0, 1, W256K, W256K);
  scen b = {"full_window_frame", 0, setup_srv_s1, "D1:262144", "", 0, 1, NULL, 1, NULL};
  run_scen(&b, g_in, g_n);

  /* one byte more than the window: fatal, GoAway(protocol error) */
  in_reset();
  frz(0, 1, W256K + 1, 16);
  scen c = {"window_exceeded", 0, setup_srv_s1, "C1:LP2P_ERR_WINDOW", "GOAWAY#0=1", LP2P_ERR_WINDOW, 0,
            NULL, 1,
            NULL};
  run_scen(&c, g_in, g_n);

  in_reset();
  frz(0, 1, 200000, 200000);
  frz(0, 1, W256K - 200000 + 1, 0);
  scen d = {"window_exceeded_cumulative", 0, setup_srv_s1, "D1:200000 C1:LP2P_ERR_WINDOW", "GOAWAY#0=1",
            LP2P_ERR_WINDOW, 0, NULL, 1, NULL};
  run_scen(&d, g_in, g_n);

  /* empty Data frame: nothing happens */
  in_reset();
  fr(T_DATA, 0, 1, 0, NULL);
  scen e = {"empty_data", 0, setup_srv_s1, "", "", 0, 1, NULL, 0, NULL};
  run_scen(&e, g_in, g_n);
}

TEST(window_update_frames) {
  in_reset();
  fr(T_WU, 0, 1, 1000, NULL);
  scen a = {"wu", 1, setup_cli_open1_acked, "", "", 0, 1, post_sw_plus1000, 0, NULL};
  run_scen(&a, g_in, g_n);

  in_reset();
  fr(T_WU, F_SYN, 1, 786432, NULL);
  scen b = {"syn_delta", 0, NULL, "O1", "WU+ACK#1=0", 0, 1, post_sw_1mib, 0, NULL};
  run_scen(&b, g_in, g_n);
}

TEST(fin_frames) {
  in_reset();
  fr(T_WU, F_FIN, 1, 0, NULL);
  scen a = {"fin_wu", 0, setup_srv_s1, "E1", "", 0, 1, NULL, 0, NULL};
  run_scen(&a, g_in, g_n);

  in_reset();
  fr(T_DATA, F_FIN, 2, 0, NULL);
  scen b = {"fin_empty_data", 1, setup_cli_s2, "E2", "", 0, 1, NULL, 0, NULL};
  run_scen(&b, g_in, g_n);

  in_reset();
  fr(T_DATA, F_FIN, 1, 5, "hello");
  scen c = {"fin_with_data", 0, setup_srv_s1, "D1:5 E1", "", 0, 1, post_data_hello, 0, NULL};
  run_scen(&c, g_in, g_n);

  /* after FIN: more data and a second FIN are ignored */
  in_reset();
  fr(T_WU, F_FIN, 1, 0, NULL);
  fr(T_DATA, 0, 1, 3, "abc");
  fr(T_WU, F_FIN, 1, 0, NULL);
  scen d = {"data_after_fin", 0, setup_srv_s1, "E1", "", 0, 1, NULL, 0, NULL};
  run_scen(&d, g_in, g_n);
}

TEST(rst_frames) {
  in_reset();
  fr(T_WU, F_RST, 1, 0, NULL);
  scen a = {"rst_wu", 0, setup_srv_s1, "C1:LP2P_ERR_RESET", "", 0, 0, NULL, 0, NULL};
  run_scen(&a, g_in, g_n);

  /* go-yamux error code in the length: ignored (not a window delta) */
  in_reset();
  fr(T_WU, F_RST, 1, 42, NULL);
  fr(T_PING, F_SYN, 0, 1, NULL);
  scen b = {"rst_code", 0, setup_srv_s1, "C1:LP2P_ERR_RESET", "PING+ACK#0=1", 0, 0, NULL, 0, NULL};
  run_scen(&b, g_in, g_n);

  /* RST on a Data frame (rust): its body is skipped */
  in_reset();
  fr(T_DATA, F_RST, 1, 5, "hello");
  fr(T_PING, F_SYN, 0, 9, NULL);
  scen c = {"rst_data_body", 0, setup_srv_s1, "C1:LP2P_ERR_RESET", "PING+ACK#0=9", 0, 0, NULL, 0, NULL};
  run_scen(&c, g_in, g_n);

  /* late frames after the peer's RST: ignored */
  in_reset();
  fr(T_WU, F_RST, 1, 0, NULL);
  fr(T_DATA, 0, 1, 5, "hello");
  fr(T_WU, F_FIN, 1, 0, NULL);
  fr(T_WU, F_RST, 1, 0, NULL);
  fr(T_PING, F_SYN, 0, 1, NULL);
  scen d = {"late_after_remote_rst", 0, setup_srv_s1, "C1:LP2P_ERR_RESET", "PING+ACK#0=1", 0, 0, NULL, 0,
            NULL};
  run_scen(&d, g_in, g_n);

  /* late frames after our RST (the peer had data in flight) */
  in_reset();
  fr(T_DATA, 0, 1, 5, "hello");
  frz(0, 1, 300000, 300000); /* beyond any window: still just discarded */
  fr(T_WU, 0, 1, 100, NULL);
  fr(T_WU, F_FIN, 1, 0, NULL);
  fr(T_PING, F_SYN, 0, 1, NULL);
  scen e = {"late_after_local_reset", 0, setup_srv_s1_local_reset, "", "PING+ACK#0=1", 0, 0, NULL, 0, NULL};
  run_scen(&e, g_in, g_n);

  /* late frames for a closed stream whose id fell out of the table */
  in_reset();
  fr(T_WU, F_SYN, 3, 0, NULL);
  fr(T_DATA, 0, 1, 2, "zz");
  scen f = {"late_old_id", 0, setup_srv_s1_remote_rst, "O3", "WU+ACK#3=0", 0, 1, NULL, 0, NULL};
  run_scen(&f, g_in, g_n);
}

TEST(ping_frames) {
  in_reset();
  fr(T_PING, F_SYN, 0, 7, NULL);
  fr(T_PING, F_SYN, 0, 0xFFFFFFFF, NULL);
  scen a = {"ping_syn", 0, NULL, "", "PING+ACK#0=7 PING+ACK#0=4294967295", 0, 0, NULL, 0, NULL};
  run_scen(&a, g_in, g_n);

  in_reset();
  fr(T_PING, F_ACK, 0, 7, NULL);
  scen b = {"ping_unsolicited_ack", 0, NULL, "", "", 0, 0, NULL, 0, NULL};
  run_scen(&b, g_in, g_n);

  in_reset();
  fr(T_PING, F_ACK, 0, 8, NULL); /* wrong value: ignored */
  fr(T_PING, F_ACK, 0, 7, NULL);
  fr(T_PING, F_ACK, 0, 7, NULL); /* duplicate: ignored */
  scen c = {"ping_ack", 0, setup_ping7, "P0", "", 0, 0, post_rtt, 0, NULL};
  run_scen(&c, g_in, g_n);
}

TEST(goaway_frames) {
  in_reset();
  fr(T_GOAWAY, 0, 0, 2, NULL);
  fr(T_GOAWAY, 0, 0, 0, NULL);
  scen a = {"goaway", 0, NULL, "G2", "", 0, 0, post_goaway, 0, NULL};
  run_scen(&a, g_in, g_n);

  /* existing streams keep working after a remote GoAway */
  in_reset();
  fr(T_GOAWAY, 0, 0, 0, NULL);
  fr(T_DATA, F_FIN, 1, 5, "hello");
  scen b = {"goaway_streams_continue", 0, setup_srv_s1, "G0 D1:5 E1", "", 0, 1, post_data_hello, 0, NULL};
  run_scen(&b, g_in, g_n);
}

TEST(violations) {
  static const uint8_t badver[12] = {1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0};
  in_reset();
  raw(badver, 12);
  scen a = {"bad_version", 0, NULL, "", "GOAWAY#0=1", LP2P_ERR_PROTO, 0, NULL, 0, NULL};
  run_scen(&a, g_in, g_n);

  in_reset();
  fr(4, 0, 0, 0, NULL);
  scen b = {"unknown_type", 0, setup_srv_s1, "C1:LP2P_ERR_PROTO", "GOAWAY#0=1", LP2P_ERR_PROTO, 0, NULL, 0,
            NULL};
  run_scen(&b, g_in, g_n);

  /* both sides think they are the server/client */
  in_reset();
  fr(T_WU, F_SYN, 2, 0, NULL);
  scen c = {"syn_our_parity", 0, NULL, "", "GOAWAY#0=1", LP2P_ERR_PROTO, 0, NULL, 0, NULL};
  run_scen(&c, g_in, g_n);
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  scen c2 = {"syn_our_parity_client", 1, NULL, "", "GOAWAY#0=1", LP2P_ERR_PROTO, 0, NULL, 0, NULL};
  run_scen(&c2, g_in, g_n);

  in_reset();
  fr(T_DATA, F_SYN, 1, 1, "x");
  scen d = {"syn_existing", 0, setup_srv_s1, "C1:LP2P_ERR_PROTO", "GOAWAY#0=1", LP2P_ERR_PROTO, 0, NULL, 0,
            NULL};
  run_scen(&d, g_in, g_n);

  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  scen e = {"syn_reused_after_close", 0, setup_srv_s1_remote_rst, "", "GOAWAY#0=1", LP2P_ERR_PROTO, 0,
            NULL, 0,
            NULL};
  run_scen(&e, g_in, g_n);

  in_reset();
  fr(T_DATA, 0, 5, 1, "x");
  scen f = {"data_never_opened", 0, setup_srv_s1, "C1:LP2P_ERR_PROTO", "GOAWAY#0=1", LP2P_ERR_PROTO, 0,
            NULL, 0,
            NULL};
  run_scen(&f, g_in, g_n);

  in_reset();
  fr(T_WU, 0, 4, 0, NULL);
  scen g = {"wu_never_opened_our_parity", 0, NULL, "", "GOAWAY#0=1", LP2P_ERR_PROTO, 0, NULL, 0, NULL};
  run_scen(&g, g_in, g_n);

  in_reset();
  fr(T_DATA, 0, 0, 0, NULL);
  scen h = {"data_stream0", 0, NULL, "", "GOAWAY#0=1", LP2P_ERR_PROTO, 0, NULL, 0, NULL};
  run_scen(&h, g_in, g_n);

  in_reset();
  fr(T_WU, 0, 0, 5, NULL);
  scen i = {"wu_stream0", 0, NULL, "", "GOAWAY#0=1", LP2P_ERR_PROTO, 0, NULL, 0, NULL};
  run_scen(&i, g_in, g_n);

  /* a violation in the middle of the input: earlier frames took effect */
  in_reset();
  fr(T_WU, F_SYN, 3, 0, NULL);
  fr(T_DATA, 0, 3, 2, "ok");
  fr(9, 0, 0, 0, NULL);
  fr(T_PING, F_SYN, 0, 1, NULL);
  scen j = {"violation_mid_input", 0, NULL, "O3 D3:2 C3:LP2P_ERR_PROTO", "WU+ACK#3=0 GOAWAY#0=1",
            LP2P_ERR_PROTO, 0,
            NULL, 0, NULL};
  run_scen(&j, g_in, g_n);
}

TEST(inbound_limit) {
  lp2p_yamux_config cfg;
  lp2p_yamux_config_default(&cfg, 0);
  cfg.keepalive_interval = 0;
  cfg.max_inbound_streams = 2;
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  fr(T_WU, F_SYN, 3, 0, NULL);
  fr(T_DATA, F_SYN, 5, 3, "abc"); /* over the limit: RST, body skipped */
  fr(T_DATA, 0, 5, 3, "abc");      /* late frame for the refused stream */
  fr(T_WU, F_RST, 1, 0, NULL);     /* frees a slot */
  fr(T_WU, F_SYN, 7, 0, NULL);
  scen a = {"inbound_limit", 0, NULL, "O1 O3 C1:LP2P_ERR_RESET O7",
            "WU+ACK#1=0 WU+ACK#3=0 WU+RST#5=0 WU+ACK#7=0",
            0, 2, NULL, 0, &cfg};
  run_scen(&a, g_in, g_n);
  /* a SYN for the refused id later is a reuse */
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  fr(T_WU, F_SYN, 3, 0, NULL);
  fr(T_WU, F_SYN, 5, 0, NULL);
  fr(T_WU, F_SYN, 5, 0, NULL);
  scen b = {"refused_id_reused", 0, NULL, "O1 O3 C1:LP2P_ERR_PROTO C3:LP2P_ERR_PROTO",
            "WU+ACK#1=0 WU+ACK#3=0 WU+RST#5=0 GOAWAY#0=1", LP2P_ERR_PROTO, 0, NULL, 0, &cfg};
  run_scen(&b, g_in, g_n);
}

/* ---- API-driven tests ---- */

static yh_peer g_p;
static void srv(void) { REQUIRE(yh_peer_init(&g_p, 0, NULL, NULL) == 0); }
static void cli(void) { REQUIRE(yh_peer_init(&g_p, 1, NULL, NULL) == 0); }
static int64_t feed(yh_peer *p) { return lp2p_yamux_feed(p->mx, g_in, g_n, p->now); }

TEST(stream_ids) {
  uint32_t id;
  cli();
  for (uint32_t want = 1; want <= 9; want += 2) {
    CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
    CHECK_EQ(id, want);
  }
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0 WU+SYN#3=0 WU+SYN#5=0 WU+SYN#7=0 WU+SYN#9=0");
  CHECK_EQ(lp2p_yamux_stream_count(g_p.mx), 5);
  yh_peer_free(&g_p);
  srv();
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(id, 2);
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(id, 4);
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#2=0 WU+SYN#4=0");
  /* id space exhaustion */
  g_p.mx->next_id = 0xFFFFFFFEull + 2;
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  yh_peer_free(&g_p);
}

TEST(config) {
  lp2p_yamux_config cfg;
  lp2p_yamux *mx = NULL;
  lp2p_yamux_config_default(&cfg, 1);
  CHECK_EQ(cfg.initial_window, W256K);
  CHECK_EQ(cfg.max_window, 16u << 20);
  CHECK_EQ(cfg.max_unacked_outbound, 256);
  CHECK_EQ(lp2p_yamux_new(NULL, &cfg, NULL, NULL, NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_yamux_new(&mx, NULL, NULL, NULL, NULL), LP2P_ERR_INVAL);
  cfg.initial_window = W256K - 1;
  CHECK_EQ(lp2p_yamux_new(&mx, &cfg, NULL, NULL, NULL), LP2P_ERR_INVAL);
  cfg.initial_window = 1 << 20;
  cfg.max_window = 1 << 19;
  CHECK_EQ(lp2p_yamux_new(&mx, &cfg, NULL, NULL, NULL), LP2P_ERR_INVAL);
  cfg.struct_size = 4;
  CHECK_EQ(lp2p_yamux_new(&mx, &cfg, NULL, NULL, NULL), LP2P_ERR_INVAL);
  CHECK(mx == NULL);
  /* a bigger initial window is advertised in the SYN / ACK delta */
  lp2p_yamux_config_default(&cfg, 1);
  cfg.keepalive_interval = 0;
  cfg.initial_window = 1 << 20;
  REQUIRE(yh_peer_init(&g_p, 1, &cfg, NULL) == 0);
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=786432");
  in_reset();
  fr(T_WU, F_SYN, 2, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#2=786432");
  /* ... and the peer may then send 1 MiB at once */
  in_reset();
  frz(0, 2, 1 << 20, 1 << 20);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_EQ(yh_st(&g_p, 2)->rx, 1 << 20);
  yh_peer_free(&g_p);
  /* partial struct: missing fields take defaults */
  lp2p_yamux_config small = {offsetof(lp2p_yamux_config, initial_window), 1, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK_OK(lp2p_yamux_new(&mx, &small, NULL, NULL, NULL));
  CHECK_EQ(mx->cfg.initial_window, W256K);
  CHECK_EQ(mx->cfg.keepalive_interval, 30000);
  lp2p_yamux_free(mx);
  lp2p_yamux_free(NULL);
}

/* Data frames respect the send window, are at most 64 KiB, and the buffer is bounded. */
TEST(write_and_send_window) {
  static uint8_t big[512 * 1024];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7);
  cli();
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"hello", 5), 5);
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0 DATA#1=5");
  /* window 256K - 5 left; buffer may hold min(window, 256K) + 64K */
  size_t cap = lp2p_yamux_write_capacity(g_p.mx, id);
  CHECK_EQ(cap, W256K - 5 + 65536);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, sizeof big), (int64_t)cap);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, 10), 0);
  CHECK_EQ(lp2p_yamux_write_capacity(g_p.mx, id), 0);
  size_t n;
  uint8_t *o = yh_take_output(&g_p, &n);
  CHECK_STR(yh_frames_text(o, n), "DATA#1=65536 DATA#1=65536 DATA#1=65536 DATA#1=65531");
  /* payload is the written bytes in order */
  CHECK_MEM(o + 12, big, 65536);
  CHECK_MEM(o + 3 * (12 + 65536) + 12, big + 3 * 65536, 65531);
  free(o);
  uint64_t sw;
  size_t buffered;
  CHECK_OK(lp2p__yamux_stream_windows(g_p.mx, id, &sw, NULL, NULL, &buffered));
  CHECK_EQ(sw, 0);
  CHECK_EQ(buffered, 65536);
  CHECK_EQ(g_p.n_ev, 0); /* still blocked: no writable */
  /* peer grants 1000: one frame of 1000, and writable fires (room reopened) */
  in_reset();
  fr(T_WU, F_ACK, 1, 1000, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_STR(yh_log(&g_p), "W1");
  CHECK_STR(yh_out_text(&g_p), "DATA#1=1000");
  CHECK_EQ(lp2p_yamux_write_capacity(g_p.mx, id), 1000);
  yh_peer_free(&g_p);
}

/* Consume returns window in batches: a WindowUpdate once half the window is free. */
TEST(consume_window_updates) {
  srv();
  g_p.auto_consume = 0;
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  frz(0, 1, 200000, 200000);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#1=0");
  CHECK_EQ(lp2p_yamux_consume(g_p.mx, 1, 200001), LP2P_ERR_INVAL);
  CHECK_OK(lp2p_yamux_consume(g_p.mx, 1, 100000));
  CHECK_STR(yh_out_text(&g_p), ""); /* 100000 < 131072 */
  CHECK_OK(lp2p_yamux_consume(g_p.mx, 1, 31071));
  CHECK_STR(yh_out_text(&g_p), "");
  CHECK_OK(lp2p_yamux_consume(g_p.mx, 1, 1));
  CHECK_STR(yh_out_text(&g_p), "WU#1=131072");
  CHECK_OK(lp2p_yamux_consume(g_p.mx, 1, 68928));
  CHECK_STR(yh_out_text(&g_p), "");
  CHECK_EQ(lp2p_yamux_consume(g_p.mx, 1, 1), LP2P_ERR_INVAL);
  uint32_t avail;
  CHECK_OK(lp2p__yamux_stream_windows(g_p.mx, 1, NULL, NULL, &avail, NULL));
  CHECK_EQ(avail, W256K - 200000 + 131072);
  /* consume inside a partially received frame: only delivered bytes count */
  in_reset();
  frz(0, 1, 100000, 50000);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_EQ(lp2p_yamux_consume(g_p.mx, 1, 50001), LP2P_ERR_INVAL);
  CHECK_OK(lp2p_yamux_consume(g_p.mx, 1, 50000));
  CHECK_STR(yh_out_text(&g_p), ""); /* 50000 of the frame still in flight: not reclaimable */
  CHECK_EQ(lp2p_yamux_consume(g_p.mx, 7, 1), LP2P_ERR_NOT_FOUND);
  yh_peer_free(&g_p);
}

/* Window auto-tuning: with an RTT known and the window used up within 2 RTTs the window doubles. */
TEST(window_autotune) {
  lp2p_yamux_config cfg;
  lp2p_yamux_config_default(&cfg, 0);
  cfg.keepalive_interval = 0;
  cfg.max_window = 1 << 20;
  REQUIRE(yh_peer_init(&g_p, 0, &cfg, NULL) == 0);
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  frz(0, 1, W256K, W256K);
  g_p.now = 1000;
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  /* no RTT yet: plain update */
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#1=0 WU#1=262144");
  /* measure RTT = 10 ms */
  CHECK_OK(lp2p_yamux_ping(g_p.mx, 1000));
  CHECK_STR(yh_out_text(&g_p), "PING+SYN#0=0");
  in_reset();
  fr(T_PING, F_ACK, 0, 0, NULL);
  g_p.now = 1010;
  CHECK_EQ(feed(&g_p), 12);
  CHECK_STR(yh_log(&g_p), "O1 D1:262144 P10");
  CHECK_EQ(lp2p_yamux_rtt(g_p.mx), 10);
  /* window used within 20 ms of the last update => 512K */
  in_reset();
  frz(0, 1, W256K, W256K);
  g_p.now = 1019;
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_out_text(&g_p), "WU#1=524288");
  uint32_t win;
  CHECK_OK(lp2p__yamux_stream_windows(g_p.mx, 1, NULL, &win, NULL, NULL));
  CHECK_EQ(win, 524288);
  /* again => 1 MiB (the configured max), then no further growth */
  in_reset();
  frz(0, 1, 524288, 524288);
  g_p.now = 1038;
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_out_text(&g_p), "WU#1=1048576");
  in_reset();
  frz(0, 1, 1 << 20, 1 << 20);
  g_p.now = 1045;
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_out_text(&g_p), "WU#1=1048576");
  /* slow consumption (2 RTT or more since the last update): no growth */
  lp2p_yamux_config_default(&cfg, 0);
  cfg.keepalive_interval = 0;
  yh_peer_free(&g_p);
  REQUIRE(yh_peer_init(&g_p, 0, &cfg, NULL) == 0);
  g_p.mx->rtt = 10;
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  in_reset();
  frz(0, 1, W256K, W256K);
  g_p.now = 20;
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#1=0 WU#1=262144");
  yh_peer_free(&g_p);
}

TEST(half_close) {
  cli();
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_OK(lp2p_yamux_close_write(g_p.mx, id));
  CHECK_OK(lp2p_yamux_close_write(g_p.mx, id)); /* idempotent */
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0 WU+FIN#1=0");
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"x", 1), LP2P_ERR_CLOSED);
  /* we can still read; the peer's FIN completes the close with err 0 */
  in_reset();
  fr(T_DATA, F_ACK, 1, 2, "hi");
  fr(T_WU, F_FIN, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_log(&g_p), "D1:2 E1 C1:0");
  CHECK_EQ(lp2p_yamux_stream_count(g_p.mx), 0);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"x", 1), LP2P_ERR_NOT_FOUND);
  /* the other order: remote FIN first, our FIN closes (close fires before close_write returns) */
  yh_clear_events(&g_p);
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(id, 3);
  in_reset();
  fr(T_DATA, F_ACK | F_FIN, 3, 1, "z");
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"abc", 3), 3); /* half-closed: still writable */
  CHECK_OK(lp2p_yamux_close_write(g_p.mx, id));
  /* FIN follows the last Data frame (own WindowUpdate, see js note); the close completes when it is built */
  CHECK_STR(yh_log(&g_p), "D3:1 E3");
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#3=0 DATA#3=3 WU+FIN#3=0");
  CHECK_STR(yh_log(&g_p), "D3:1 E3 C3:0");
  /* FIN waits behind buffered data that has no window */
  yh_clear_events(&g_p);
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  static uint8_t big[W256K + 10];
  memset(big, 'q', sizeof big);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, sizeof big), (int64_t)sizeof big);
  CHECK_OK(lp2p_yamux_close_write(g_p.mx, id));
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#5=0 DATA#5=65536 DATA#5=65536 DATA#5=65536 DATA#5=65536");
  in_reset();
  fr(T_WU, F_ACK, 5, 10, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_STR(yh_out_text(&g_p), "DATA#5=10 WU+FIN#5=0");
  yh_peer_free(&g_p);
}

TEST(reset) {
  cli();
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"dropped", 7), 7);
  CHECK_OK(lp2p_yamux_reset(g_p.mx, id));
  /* close delivered before reset returned; buffered data dropped */
  CHECK_STR(yh_log(&g_p), "C1:LP2P_ERR_CANCELED");
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0 WU+RST#1=0");
  CHECK_EQ(lp2p_yamux_reset(g_p.mx, id), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_yamux_close_write(g_p.mx, id), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_yamux_stream_count(g_p.mx), 0);
  CHECK_EQ(g_p.mx->n_unacked, 0); /* an unacked stream that is reset frees its slot */
  yh_peer_free(&g_p);
}

TEST(ping_api) {
  srv();
  CHECK_OK(lp2p_yamux_ping(g_p.mx, 100));
  CHECK_OK(lp2p_yamux_ping(g_p.mx, 110)); /* outstanding: nothing new */
  CHECK_STR(yh_out_text(&g_p), "PING+SYN#0=0");
  in_reset();
  fr(T_PING, F_ACK, 0, 0, NULL);
  g_p.now = 130;
  CHECK_EQ(feed(&g_p), 12);
  CHECK_STR(yh_log(&g_p), "P30");
  CHECK_EQ(lp2p_yamux_rtt(g_p.mx), 30);
  CHECK_OK(lp2p_yamux_ping(g_p.mx, 200));
  CHECK_STR(yh_out_text(&g_p), "PING+SYN#0=1");
  yh_peer_free(&g_p);
}

TEST(keepalive) {
  lp2p_yamux_config cfg;
  lp2p_yamux_config_default(&cfg, 1);
  cfg.keepalive_interval = 1000;
  cfg.keepalive_timeout = 500;
  REQUIRE(yh_peer_init(&g_p, 1, &cfg, NULL) == 0);
  CHECK_EQ(lp2p_yamux_next_expiry(g_p.mx), 0); /* first ping at once (measures the RTT) */
  CHECK_OK(lp2p_yamux_handle_expiry(g_p.mx, 10));
  CHECK_STR(yh_out_text(&g_p), "PING+SYN#0=0");
  CHECK_EQ(lp2p_yamux_next_expiry(g_p.mx), 510);
  in_reset();
  fr(T_PING, F_ACK, 0, 0, NULL);
  g_p.now = 20;
  CHECK_EQ(feed(&g_p), 12);
  CHECK_EQ(lp2p_yamux_next_expiry(g_p.mx), 1010);
  CHECK_OK(lp2p_yamux_handle_expiry(g_p.mx, 500)); /* early: nothing */
  CHECK_STR(yh_out_text(&g_p), "");
  CHECK_OK(lp2p_yamux_handle_expiry(g_p.mx, 1010));
  CHECK_STR(yh_out_text(&g_p), "PING+SYN#0=1");
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_OK(lp2p_yamux_handle_expiry(g_p.mx, 1509));
  CHECK_EQ(lp2p_yamux_handle_expiry(g_p.mx, 1510), LP2P_ERR_TIMEOUT);
  CHECK_EQ(lp2p_yamux_error(g_p.mx), LP2P_ERR_TIMEOUT);
  CHECK_STR(yh_log(&g_p), "P10 C1:LP2P_ERR_TIMEOUT");
  CHECK_EQ(lp2p_yamux_next_expiry(g_p.mx), LP2P_TSTAMP_NEVER);
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0"); /* no GoAway on timeout */
  yh_peer_free(&g_p);
  /* keep-alive off */
  cli();
  CHECK_EQ(lp2p_yamux_next_expiry(g_p.mx), LP2P_TSTAMP_NEVER);
  CHECK_OK(lp2p_yamux_handle_expiry(g_p.mx, 99999));
  CHECK_STR(yh_out_text(&g_p), "");
  yh_peer_free(&g_p);
}

TEST(goaway_local) {
  srv();
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_OK(lp2p_yamux_go_away(g_p.mx, LP2P_YAMUX_GOAWAY_NORMAL));
  CHECK_OK(lp2p_yamux_go_away(g_p.mx, 2)); /* once */
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#1=0 GOAWAY#0=0");
  uint32_t id;
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_GOAWAY);
  /* new inbound streams are refused; existing ones go on */
  in_reset();
  fr(T_WU, F_SYN, 3, 0, NULL);
  fr(T_DATA, 0, 1, 2, "ok");
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_out_text(&g_p), "WU+RST#3=0");
  CHECK_EQ(lp2p_yamux_write(g_p.mx, 1, (const uint8_t *)"yes", 3), 3);
  CHECK_STR(yh_out_text(&g_p), "DATA#1=3");
  CHECK_STR(yh_log(&g_p), "O1 D1:2");
  yh_peer_free(&g_p);
}

TEST(unacked_limit) {
  cli();
  uint32_t id = 0;
  for (int i = 0; i < 256; i++) CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(id, 511);
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  in_reset();
  fr(T_WU, F_ACK, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(id, 513);
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  /* a refused (RST) stream releases its slot too */
  in_reset();
  fr(T_WU, F_RST, 3, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_stream_count(g_p.mx), 257);
  yh_peer_free(&g_p);
}

static int frame_ids(const uint8_t *o, size_t n, uint32_t *ids, int max) {
  int k = 0;
  for (size_t i = 0; i + 12 <= n && k < max;) {
    uint32_t id = (uint32_t)o[i + 4] << 24 | (uint32_t)o[i + 5] << 16 | (uint32_t)o[i + 6] << 8 | o[i + 7];
    uint32_t len = (uint32_t)o[i + 8] << 24 | (uint32_t)o[i + 9] << 16 | (uint32_t)o[i + 10] << 8 | o[i + 11];
    if (o[i + 1] == 0) ids[k++] = id;
    i += 12 + (o[i + 1] == 0 ? len : 0);
  }
  return k;
}

/* Round-robin among streams with data; control frames are not stuck behind data. */
TEST(fair_scheduling) {
  static uint8_t big[200000];
  memset(big, 1, sizeof big);
  cli();
  uint32_t a, b, c;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &a));
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &b));
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &c));
  free(yh_take_output(&g_p, &(size_t){0}));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, a, big, sizeof big), (int64_t)sizeof big);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, b, big, 1000), 1000);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, c, big, sizeof big), (int64_t)sizeof big);
  CHECK(lp2p_yamux_want_output(g_p.mx));
  const uint8_t *o;
  size_t n = lp2p_yamux_output(g_p.mx, &o);
  CHECK(n <= LP2P_YAMUX_OUTPUT_BATCH + 12 + LP2P_YAMUX_MAX_DATA_FRAME);
  uint32_t ids[64];
  int k = frame_ids(o, n, ids, 64);
  CHECK(k >= 3);
  CHECK_EQ(ids[0], 1);
  CHECK_EQ(ids[1], 3);
  CHECK_EQ(ids[2], 5);
  /* not consumed yet: a control frame queued now goes before any further data */
  CHECK_OK(lp2p_yamux_ping(g_p.mx, 0));
  size_t n2 = lp2p_yamux_output(g_p.mx, &o);
  CHECK_EQ(n2, n + 12);
  CHECK_EQ(o[n + 1], T_PING);
  lp2p_yamux_output_consumed(g_p.mx, n2);
  n = lp2p_yamux_output(g_p.mx, &o);
  k = frame_ids(o, n, ids, 64);
  CHECK(k >= 2);
  CHECK_EQ(ids[0], 1); /* b is done; a and c alternate */
  CHECK_EQ(ids[1], 5);
  lp2p_yamux_output_consumed(g_p.mx, 5); /* partial consumption keeps the rest in order */
  const uint8_t *o2;
  size_t n3 = lp2p_yamux_output(g_p.mx, &o2);
  CHECK(n3 >= n - 5);
  yh_peer_free(&g_p);
}

/* Output flood protection: control frames piling up unsent past 2 MiB kill the session. */
TEST(control_flood) {
  srv();
  static uint8_t pings[12 * 180000];
  for (size_t i = 0; i < 180000; i++) yh_frame(pings + 12 * i, T_PING, F_SYN, 0, (uint32_t)i, NULL, 0);
  CHECK_EQ(lp2p_yamux_feed(g_p.mx, pings, sizeof pings, 0), LP2P_ERR_LIMIT);
  /* draining between feeds: fine */
  yh_peer_free(&g_p);
  srv();
  for (size_t i = 0; i < 180000; i += 10000) {
    CHECK_EQ(lp2p_yamux_feed(g_p.mx, pings + 12 * i, 12 * 10000, 0), 120000);
    size_t n;
    free(yh_take_output(&g_p, &n));
    CHECK_EQ(n, 120000);
  }
  yh_peer_free(&g_p);
}

/* ---- reentrancy ---- */

static void hook_reset_on_data(yh_peer *p, char t, uint32_t id, int64_t v) {
  if (t == 'D') CHECK_OK(lp2p_yamux_reset(p->mx, id));
  if (t == 'C') CHECK(lp2p_yamux_stream_user(p->mx, id) == (void *)p); /* user pointer valid in close */
  if (t == 'O') lp2p_yamux_stream_set_user(p->mx, id, p);
  (void)v;
}

static void hook_busy_open(yh_peer *p, char t, uint32_t id, int64_t v) {
  if (t != 'O') return;
  uint32_t nid;
  CHECK_EQ(lp2p_yamux_write(p->mx, id, (const uint8_t *)"hey", 3), 3);
  CHECK_OK(lp2p_yamux_close_write(p->mx, id));
  CHECK_OK(lp2p_yamux_open_stream(p->mx, &nid));
  CHECK_OK(lp2p_yamux_ping(p->mx, 0));
  uint8_t f[12];
  yh_frame(f, T_PING, F_SYN, 0, 1, NULL, 0);
  CHECK_EQ(lp2p_yamux_feed(p->mx, f, 12, 0), LP2P_ERR_STATE);
  (void)v;
}

static void hook_reset_other_in_close(yh_peer *p, char t, uint32_t id, int64_t v) {
  if (t == 'C' && id == 1) CHECK_OK(lp2p_yamux_reset(p->mx, 3));
  (void)v;
}

TEST(reentrancy) {
  /* reset inside on_stream_data: the rest of the frame is dropped, close fires after the callback,
   * later frames in the same input are processed */
  srv();
  g_p.hook = hook_reset_on_data;
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  fr(T_DATA, 0, 1, 5, "hello");
  fr(T_DATA, 0, 1, 5, "again");
  fr(T_PING, F_SYN, 0, 4, NULL);
  CHECK_EQ(yh_feed_split(&g_p, g_in, g_n, SIZE_MAX), (int64_t)g_n); /* byte by byte: D1:1 then reset */
  CHECK_STR(yh_log(&g_p), "O1 D1:1 C1:LP2P_ERR_CANCELED");
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#1=0 WU+RST#1=0 PING+ACK#0=4");
  CHECK_EQ(g_p.nested, 0);
  yh_peer_free(&g_p);

  /* write, close_write, open, ping inside on_stream_open; feed from a callback is refused */
  srv();
  g_p.hook = hook_busy_open;
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#1=0 WU+SYN#2=0 PING+SYN#0=0 DATA#1=3 WU+FIN#1=0");
  yh_peer_free(&g_p);

  /* reset of another stream inside on_stream_close: its close follows, not nested */
  srv();
  g_p.hook = hook_reset_other_in_close;
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  fr(T_WU, F_SYN, 3, 0, NULL);
  fr(T_WU, F_RST, 1, 0, NULL);
  fr(T_WU, F_SYN, 5, 0, NULL);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_log(&g_p), "O1 O3 C1:LP2P_ERR_RESET C3:LP2P_ERR_CANCELED O5");
  CHECK_EQ(g_p.nested, 0);
  CHECK_EQ(lp2p_yamux_stream_count(g_p.mx), 1);
  yh_peer_free(&g_p);
}

static void hook_close_in_eof(yh_peer *p, char t, uint32_t id, int64_t v) {
  if (t == 'E') CHECK_OK(lp2p_yamux_close_write(p->mx, id)); /* completes the close: deferred */
  if (t == 'E') CHECK(lp2p_yamux_stream_count(p->mx) == 0);
  (void)v;
}

TEST(close_in_callback_deferred) {
  cli();
  g_p.hook = hook_close_in_eof;
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  in_reset();
  fr(T_DATA, F_ACK | F_FIN, 1, 2, "hi");
  fr(T_PING, F_SYN, 0, 1, NULL);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_log(&g_p), "D1:2 E1 C1:0");
  CHECK_EQ(g_p.nested, 0);
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0 WU+FIN#1=0 PING+ACK#0=1");
  yh_peer_free(&g_p);
}

/* The application resets a stream while one of its frames is half received: the rest is discarded. */
TEST(reset_mid_frame) {
  srv();
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  fr(T_DATA, 0, 1, 10, "0123456789");
  fr(T_PING, F_SYN, 0, 5, NULL);
  CHECK_EQ(lp2p_yamux_feed(g_p.mx, g_in, 12 + 12 + 4, 0), 28);
  CHECK_OK(lp2p_yamux_reset(g_p.mx, 1));
  CHECK_EQ(lp2p_yamux_feed(g_p.mx, g_in + 28, g_n - 28, 0), (int64_t)(g_n - 28));
  CHECK_STR(yh_log(&g_p), "O1 D1:4 C1:LP2P_ERR_CANCELED");
  CHECK_STR(yh_out_text(&g_p), "WU+ACK#1=0 WU+RST#1=0 PING+ACK#0=5");
  CHECK_EQ(lp2p_yamux_error(g_p.mx), 0);
  /* free with live streams, buffered data and unsent output: no leak (ASan) */
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"pending", 7), 7);
  in_reset();
  fr(T_WU, F_SYN, 3, 0, NULL);
  frz(0, 3, 100, 50);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  yh_peer_free(&g_p);
}

TEST(api_misuse) {
  cli();
  uint32_t id;
  CHECK_EQ(lp2p_yamux_write(g_p.mx, 1, (const uint8_t *)"x", 1), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, 1, NULL, 1), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_yamux_consume(g_p.mx, 1, 1), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_yamux_reset(g_p.mx, 1), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_yamux_close_write(g_p.mx, 1), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_yamux_feed(g_p.mx, NULL, 1, 0), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_yamux_feed(g_p.mx, NULL, 0, 0), 0);
  CHECK(lp2p_yamux_stream_user(g_p.mx, 1) == NULL);
  lp2p_yamux_stream_set_user(g_p.mx, 1, &id); /* ignored */
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"x", 0), 0);
  lp2p_yamux_stream_set_user(g_p.mx, id, &id);
  CHECK(lp2p_yamux_stream_user(g_p.mx, id) == &id);
  CHECK_EQ(lp2p_yamux_output(NULL, NULL), 0);
  CHECK_EQ(lp2p_yamux_error(NULL), LP2P_ERR_INVAL);
  lp2p_yamux_output_consumed(g_p.mx, 1 << 30); /* clamped */
  CHECK(!lp2p_yamux_want_output(g_p.mx));
  yh_peer_free(&g_p);
}

/* Stream map: many insertions/deletions in a mixed order keep lookups right. */
TEST(stream_map) {
  lp2p__yamux_map m = {0};
  static lp2p__yamux_stream st[3000];
  const lp2p_mem *mem = lp2p_mem_default();
  for (uint32_t i = 0; i < 3000; i++) {
    st[i].id = i * 2 + 1;
    CHECK_OK(lp2p__yamux_map_put(mem, &m, &st[i]));
  }
  for (uint32_t i = 0; i < 3000; i += 3) lp2p__yamux_map_del(&m, i * 2 + 1);
  lp2p__yamux_map_del(&m, 2); /* absent */
  for (uint32_t i = 0; i < 3000; i++) {
    lp2p__yamux_stream *s = lp2p__yamux_map_get(&m, i * 2 + 1);
    if (i % 3 == 0)
      CHECK(s == NULL);
    else
      CHECK(s == &st[i]);
  }
  CHECK_EQ(m.n, 2000);
  lp2p__yamux_map_free(mem, &m);
}

/* ---- gather output, send budget, outbound capacity, memory ---- */

/* Drains mx with output_iov (at most max_iov entries / max_bytes per call), consuming `step` bytes at a
 * time (0 = all returned). Appends to dst; returns the bytes taken. Checks that the payload of big frames
 * is referenced in place (outside the output buffer) when `in_place` is non-NULL. */
static size_t take_iov(lp2p_yamux *mx, uint8_t *dst, size_t max_iov, size_t max_bytes, size_t step,
                       int *in_place) {
  lp2p_iovec iov[64];
  size_t n = 0, k;
  while ((k = lp2p_yamux_output_iov(mx, iov, max_iov, max_bytes)) > 0) {
    size_t total = 0;
    CHECK(k <= max_iov);
    for (size_t i = 0; i < k; i++) {
      CHECK(iov[i].len > 0);
      if (in_place && (iov[i].base < mx->out || iov[i].base >= mx->out + mx->out_cap))
        *in_place = 1;
      memcpy(dst + n + total, iov[i].base, iov[i].len);
      total += iov[i].len;
    }
    CHECK(total <= max_bytes);
    size_t take = step && step < total ? step : total;
    lp2p_yamux_output_consumed(mx, take);
    n += take;
  }
  CHECK_EQ(lp2p_yamux_pending(mx), 0);
  return n;
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i * 131 + seed * 7) >> 3);
}

/* Same workload on two sessions: output() and output_iov() produce the same bytes. */
static void gather_workload(yh_peer *p) {
  static uint8_t big[200000];
  fill_pattern(big, sizeof big, 1);
  uint32_t a, b, c;
  CHECK_OK(lp2p_yamux_open_stream(p->mx, &a));
  CHECK_OK(lp2p_yamux_open_stream(p->mx, &b));
  CHECK_OK(lp2p_yamux_open_stream(p->mx, &c));
  CHECK_EQ(lp2p_yamux_write(p->mx, a, big, sizeof big), (int64_t)sizeof big);
  CHECK_EQ(lp2p_yamux_write(p->mx, b, big, 700), 700); /* small: copied into the output buffer */
  CHECK_EQ(lp2p_yamux_write(p->mx, c, big + 5, 150000), 150000);
  CHECK_OK(lp2p_yamux_close_write(p->mx, b));
  CHECK_OK(lp2p_yamux_close_write(p->mx, c)); /* FIN after c's last Data frame */
  CHECK_OK(lp2p_yamux_ping(p->mx, 0));
}

TEST(output_iov) {
  static uint8_t want[400000], got[400000];
  yh_peer x, y;
  REQUIRE(yh_peer_init(&x, 1, NULL, NULL) == 0 && yh_peer_init(&y, 1, NULL, NULL) == 0);
  gather_workload(&x);
  size_t n;
  uint8_t *o = yh_take_output(&x, &n);
  REQUIRE(o && n <= sizeof want);
  memcpy(want, o, n);
  free(o);
  CHECK_STR(yh_frames_text(want, n), "WU+SYN#1=0 WU+SYN#3=0 WU+SYN#5=0 PING+SYN#0=0 DATA#1=65536 DATA#3=700 "
                                     "WU+FIN#3=0 DATA#5=65536 DATA#1=65536 DATA#5=65536 DATA#1=65536 "
                                     "DATA#5=18928 WU+FIN#5=0 DATA#1=3392");
  /* split every way: few iovecs, few bytes, partial consumption */
  static const size_t cfgs[][3] = {{64, SIZE_MAX, 0}, {1, SIZE_MAX, 0}, {3, 100000, 0}, {64, 131038, 0},
                                   {2, 1000, 333}, {64, 70000, 12}, {5, 65519, 65000}};
  for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
    yh_peer_free(&y);
    REQUIRE(yh_peer_init(&y, 1, NULL, NULL) == 0);
    gather_workload(&y);
    int in_place = 0;
    size_t m = take_iov(y.mx, got, cfgs[c][0], cfgs[c][1], cfgs[c][2], &in_place);
    CHECK_EQ(m, n);
    CHECK_MEM(got, want, n);
    CHECK(in_place); /* big payloads were not copied */
    size_t buffered = 1, ring_cap = 1, out_cap = 1, zombies = 1;
    lp2p__yamux_send_stats(y.mx, &buffered, &ring_cap, &out_cap, &zombies);
    CHECK_EQ(buffered, 0);
    CHECK_EQ(zombies, 0);
  }
  /* max_bytes a multiple of the Noise plaintext: every call returns exactly that while enough is queued */
  yh_peer_free(&y);
  REQUIRE(yh_peer_init(&y, 1, NULL, NULL) == 0);
  gather_workload(&y);
  lp2p_iovec iov[32];
  size_t k, calls = 0, left = n;
  while ((k = lp2p_yamux_output_iov(y.mx, iov, 32, 2 * 65519)) > 0) {
    size_t total = 0;
    for (size_t i = 0; i < k; i++) total += iov[i].len;
    CHECK_EQ(total, left < 2 * 65519 ? left : 2 * 65519);
    lp2p_yamux_output_consumed(y.mx, total);
    left -= total;
    calls++;
  }
  CHECK_EQ(left, 0);
  CHECK_EQ(calls, (n + 2 * 65519 - 1) / (2 * 65519));
  /* argument checks */
  CHECK_EQ(lp2p_yamux_output_iov(NULL, iov, 1, 1), 0);
  CHECK_EQ(lp2p_yamux_output_iov(y.mx, NULL, 1, 1), 0);
  CHECK_EQ(lp2p_yamux_output_iov(y.mx, iov, 0, 1), 0);
  CHECK_EQ(lp2p_yamux_output_iov(y.mx, iov, 1, 0), 0);
  yh_peer_free(&x);
  yh_peer_free(&y);
}

/* Bytes referenced by the output stay valid when their stream is reset / closed or the session fails
 * before they are consumed; mixing output_iov and output keeps the byte order. */
TEST(output_iov_in_flight) {
  static uint8_t big[100000], got[400000];
  fill_pattern(big, sizeof big, 2);
  cli();
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  free(yh_take_output(&g_p, &(size_t){0}));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, sizeof big), (int64_t)sizeof big);
  lp2p_iovec iov[8];
  size_t k = lp2p_yamux_output_iov(g_p.mx, iov, 8, 30000), total = 0;
  for (size_t i = 0; i < k; i++) total += iov[i].len;
  CHECK_EQ(total, 30000);
  lp2p_yamux_output_consumed(g_p.mx, 10000);
  CHECK_EQ(lp2p_yamux_pending(g_p.mx), 12 + 65536 - 10000);
  /* reset: the stream is gone for the application, its frame in flight completes, then RST */
  CHECK_OK(lp2p_yamux_reset(g_p.mx, id));
  CHECK_STR(yh_log(&g_p), "C1:LP2P_ERR_CANCELED");
  CHECK_EQ(lp2p_yamux_stream_count(g_p.mx), 0);
  size_t zombies = 0, ring_cap = 0;
  lp2p__yamux_send_stats(g_p.mx, NULL, &ring_cap, NULL, &zombies);
  CHECK_EQ(zombies, 1);
  CHECK(ring_cap >= 65536);
  size_t n = take_iov(g_p.mx, got, 3, 7000, 0, NULL);
  CHECK_EQ(n, 12 + 65536 - 10000 + 12);
  CHECK_MEM(got, big + 10000 - 12, 65536 - 10000 + 12);
  CHECK_STR(yh_frames_text(got + n - 12, 12), "WU+RST#1=0");
  lp2p__yamux_send_stats(g_p.mx, NULL, &ring_cap, NULL, &zombies);
  CHECK_EQ(zombies, 0);
  CHECK_EQ(ring_cap, 0);
  yh_peer_free(&g_p);

  /* session failure with a frame in flight: the frame completes, then the GoAway */
  srv();
  in_reset();
  fr(T_WU, F_SYN, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  free(yh_take_output(&g_p, &(size_t){0}));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, 1, big, sizeof big), (int64_t)sizeof big);
  k = lp2p_yamux_output_iov(g_p.mx, iov, 8, 100);
  lp2p_yamux_output_consumed(g_p.mx, 100);
  in_reset();
  fr(7, 0, 0, 0, NULL); /* unknown frame type */
  CHECK_EQ(feed(&g_p), LP2P_ERR_PROTO);
  n = take_iov(g_p.mx, got, 64, SIZE_MAX, 0, NULL);
  CHECK_EQ(n, 12 + 65536 - 100 + 12);
  CHECK_MEM(got, big + 100 - 12, 65536 - 100 + 12);
  CHECK_STR(yh_frames_text(got + n - 12, 12), "GOAWAY#0=1");
  yh_peer_free(&g_p);

  /* a stream that completes its close (FIN both ways) while its last frame is in flight */
  cli();
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  free(yh_take_output(&g_p, &(size_t){0}));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, 5000), 5000);
  CHECK_OK(lp2p_yamux_close_write(g_p.mx, id));
  k = lp2p_yamux_output_iov(g_p.mx, iov, 8, 20); /* builds Data + FIN, hands out 20 bytes */
  lp2p_yamux_output_consumed(g_p.mx, 20);
  in_reset();
  fr(T_WU, F_ACK | F_FIN, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_STR(yh_log(&g_p), "E1 C1:0");
  n = take_iov(g_p.mx, got, 64, SIZE_MAX, 0, NULL);
  CHECK_EQ(n, 12 + 5000 + 12 - 20);
  CHECK_MEM(got, big + 8, 4992);
  yh_peer_free(&g_p);

  /* output_iov, partial consumption, then the contiguous output(): same bytes in the same order */
  static uint8_t want[400000];
  yh_peer x;
  REQUIRE(yh_peer_init(&x, 1, NULL, NULL) == 0);
  gather_workload(&x);
  size_t nw;
  uint8_t *o = yh_take_output(&x, &nw);
  REQUIRE(nw <= sizeof want);
  memcpy(want, o, nw);
  free(o);
  yh_peer_free(&x);
  cli();
  gather_workload(&g_p);
  k = lp2p_yamux_output_iov(g_p.mx, iov, 8, 100000);
  total = 0;
  for (size_t i = 0; i < k; i++) {
    memcpy(got + total, iov[i].base, iov[i].len);
    total += iov[i].len;
  }
  lp2p_yamux_output_consumed(g_p.mx, total - 777);
  const uint8_t *c;
  size_t m = lp2p_yamux_output(g_p.mx, &c);
  CHECK(m >= 777);
  memcpy(got + total - 777, c, m);
  lp2p_yamux_output_consumed(g_p.mx, m);
  m += total - 777;
  uint8_t *rest = yh_take_output(&g_p, &n);
  REQUIRE(m + n <= sizeof got);
  memcpy(got + m, rest, n);
  free(rest);
  CHECK_EQ(m + n, nw);
  CHECK_MEM(got, want, nw);
  yh_peer_free(&g_p);
}

/* Data frame payload cap. */
TEST(max_frame_payload) {
  static uint8_t big[200000];
  lp2p_yamux_config cfg;
  lp2p_yamux_config_default(&cfg, 1);
  CHECK_EQ(cfg.max_frame_payload, LP2P_YAMUX_MAX_DATA_FRAME);
  CHECK_EQ(cfg.send_budget, LP2P_YAMUX_DEFAULT_SEND_BUDGET);
  cfg.keepalive_interval = 0;
  cfg.max_frame_payload = LP2P_YAMUX_NOISE_FRAME_PAYLOAD;
  REQUIRE(yh_peer_init(&g_p, 1, &cfg, NULL) == 0);
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, sizeof big), (int64_t)sizeof big);
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0 DATA#1=65507 DATA#1=65507 DATA#1=65507 DATA#1=3479");
  CHECK_EQ(12 + LP2P_YAMUX_NOISE_FRAME_PAYLOAD, 65519);
  yh_peer_free(&g_p);
  lp2p_yamux *mx = NULL;
  cfg.max_frame_payload = LP2P_YAMUX_MAX_FRAME_PAYLOAD_LIMIT + 1;
  CHECK_EQ(lp2p_yamux_new(&mx, &cfg, NULL, NULL, NULL), LP2P_ERR_INVAL);
  cfg.max_frame_payload = 0; /* default */
  CHECK_OK(lp2p_yamux_new(&mx, &cfg, NULL, NULL, NULL));
  CHECK_EQ(mx->max_frame, LP2P_YAMUX_MAX_DATA_FRAME);
  CHECK_EQ(mx->cfg.send_budget, LP2P_YAMUX_DEFAULT_SEND_BUDGET);
  lp2p_yamux_free(mx);
}

/* Session send budget: accepted bytes within the send windows stay within it; blocked writers are told
 * oldest first; bytes beyond a stalled stream's window don't count. */
static void hook_greedy_writer(yh_peer *p, char t, uint32_t id, int64_t v) {
  static uint8_t buf[300000];
  if (t == 'W') CHECK(lp2p_yamux_write(p->mx, id, buf, sizeof buf) > 0);
  (void)v;
}

TEST(send_budget) {
  static uint8_t big[400000];
  lp2p_yamux_config cfg;
  lp2p_yamux_config_default(&cfg, 1);
  cfg.keepalive_interval = 0;
  cfg.send_budget = 100000;
  REQUIRE(yh_peer_init(&g_p, 1, &cfg, NULL) == 0);
  uint32_t a, b;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &a));
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &b));
  in_reset(); /* the peer grants 16 MiB more on both */
  fr(T_WU, F_ACK, a, 16u << 20, NULL);
  fr(T_WU, F_ACK, b, 16u << 20, NULL);
  CHECK_EQ(feed(&g_p), 24);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, a, big, 200000), 100000);
  CHECK_EQ(lp2p_yamux_write_capacity(g_p.mx, b), 0);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, b, big, 10), 0);
  size_t buffered;
  lp2p__yamux_send_stats(g_p.mx, &buffered, NULL, NULL, NULL);
  CHECK_EQ(buffered, 100000);
  CHECK_EQ(g_p.n_ev, 0);
  /* output frames a's bytes: room again, both writers told, oldest first */
  free(yh_take_output(&g_p, &(size_t){0}));
  CHECK_STR(yh_log(&g_p), "W1 W3");
  /* greedy writers: each takes all the room and queues behind the other */
  yh_clear_events(&g_p);
  g_p.hook = hook_greedy_writer;
  CHECK_EQ(lp2p_yamux_write(g_p.mx, a, big, 200000), 100000);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, b, big, 10), 0);
  for (int i = 0; i < 4; i++) {
    const uint8_t *o;
    size_t n = lp2p_yamux_output(g_p.mx, &o);
    lp2p_yamux_output_consumed(g_p.mx, n);
    lp2p__yamux_send_stats(g_p.mx, &buffered, NULL, NULL, NULL);
    CHECK(buffered <= 100000);
  }
  CHECK_STR(yh_log(&g_p), "W1 W3 W1 W3");
  g_p.hook = NULL;
  yh_peer_free(&g_p);

  /* a stream whose peer stopped reading holds only its slack (counted); the others go on */
  REQUIRE(yh_peer_init(&g_p, 1, &cfg, NULL) == 0);
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &a));
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &b));
  uint64_t sent = 0;
  while (sent < W256K) {
    int64_t k = lp2p_yamux_write(g_p.mx, a, big, (size_t)(W256K - sent));
    CHECK(k > 0);
    sent += (uint64_t)k;
    free(yh_take_output(&g_p, &(size_t){0}));
  }
  uint64_t sw = 1;
  CHECK_OK(lp2p__yamux_stream_windows(g_p.mx, a, &sw, NULL, NULL, NULL));
  CHECK_EQ(sw, 0);
  /* the slack beyond the window is accepted and counts against the budget like every buffered byte */
  CHECK_EQ(lp2p_yamux_write(g_p.mx, a, big, sizeof big), LP2P_YAMUX_SEND_SLACK);
  lp2p__yamux_send_stats(g_p.mx, &buffered, NULL, NULL, NULL);
  CHECK_EQ(buffered, LP2P_YAMUX_SEND_SLACK);
  CHECK_EQ(lp2p_yamux_write(g_p.mx, b, big, sizeof big), 100000 - LP2P_YAMUX_SEND_SLACK);
  in_reset();
  fr(T_WU, F_ACK, a, 1000, NULL);
  CHECK_EQ(feed(&g_p), 12);
  lp2p__yamux_send_stats(g_p.mx, &buffered, NULL, NULL, NULL);
  CHECK_EQ(buffered, 100000);
  CHECK_EQ(lp2p_yamux_write_capacity(g_p.mx, b), 0);
  /* resetting the stalled stream releases its bytes */
  CHECK_OK(lp2p_yamux_reset(g_p.mx, a));
  lp2p__yamux_send_stats(g_p.mx, &buffered, NULL, NULL, NULL);
  CHECK_EQ(buffered, 100000 - LP2P_YAMUX_SEND_SLACK);
  yh_peer_free(&g_p);
}

/* Outbound capacity after LP2P_ERR_LIMIT is reported once, when an ACK (or a close) frees a slot. */
static int g_avail;
static uint32_t g_avail_opened;
static void on_avail(lp2p_yamux *mx, void *ud) {
  g_avail++;
  CHECK(ud == &g_p);
  if (g_avail == 1) CHECK_OK(lp2p_yamux_open_stream(mx, &g_avail_opened)); /* allowed from the callback */
}

TEST(outbound_available) {
  lp2p_yamux_config cfg;
  lp2p_yamux_config_default(&cfg, 1);
  cfg.keepalive_interval = 0;
  cfg.max_unacked_outbound = 2;
  REQUIRE(yh_peer_init(&g_p, 1, &cfg, NULL) == 0);
  lp2p_yamux_set_on_outbound_available(g_p.mx, on_avail);
  g_avail = 0;
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  /* an ACK without a prior LIMIT: nothing to report */
  in_reset();
  fr(T_WU, F_ACK, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_EQ(g_avail, 0);
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id)); /* 5 */
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  in_reset();
  fr(T_WU, F_ACK, 3, 0, NULL);
  fr(T_WU, F_ACK, 5, 0, NULL); /* two ACKs in one feed: one report, after the feed */
  CHECK_EQ(feed(&g_p), 24);
  CHECK_EQ(g_avail, 1);
  CHECK_EQ(g_avail_opened, 7);
  /* no LIMIT since: later ACKs report nothing */
  in_reset();
  fr(T_WU, F_ACK, 7, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_EQ(g_avail, 1);
  /* a RST of an unacknowledged stream frees a slot too */
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id)); /* 9 */
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id)); /* 11 */
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  in_reset();
  fr(T_WU, F_RST, 9, 0, NULL);
  CHECK_EQ(feed(&g_p), 12);
  CHECK_EQ(g_avail, 2);
  /* our own reset of one: reported by the next output call, not from inside reset */
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id)); /* 13 */
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  CHECK_OK(lp2p_yamux_reset(g_p.mx, 11));
  CHECK_EQ(g_avail, 2);
  CHECK(lp2p_yamux_output(g_p.mx, NULL) > 0);
  CHECK_EQ(g_avail, 3);
  /* after a GoAway nothing can be opened: no report */
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id)); /* 15 */
  CHECK_EQ(lp2p_yamux_open_stream(g_p.mx, &id), LP2P_ERR_LIMIT);
  in_reset();
  fr(T_GOAWAY, 0, 0, 0, NULL);
  fr(T_WU, F_ACK, 13, 0, NULL);
  CHECK_EQ(feed(&g_p), 24);
  CHECK_EQ(g_avail, 3);
  yh_peer_free(&g_p);
}

/* Memory: nothing but the session object while idle; buffers come and go with use. */
TEST(idle_memory) {
  failmem fm;
  failmem_init(&fm, 0);
  REQUIRE(yh_peer_init(&g_p, 1, NULL, &fm.mem) == 0);
  CHECK_EQ(fm.live, 1);
  CHECK(sizeof(lp2p_yamux) < 1024);
  CHECK_OK(lp2p_yamux_ping(g_p.mx, 0));
  CHECK_STR(yh_out_text(&g_p), "PING+SYN#0=0");
  CHECK_EQ(fm.live, 1); /* drained, no stream: output buffer released */
  /* a request/response stream, closed both ways */
  uint32_t id;
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, (const uint8_t *)"request", 7), 7);
  CHECK_OK(lp2p_yamux_close_write(g_p.mx, id));
  CHECK_STR(yh_out_text(&g_p), "WU+SYN#1=0 DATA#1=7 WU+FIN#1=0");
  in_reset();
  fr(T_DATA, F_ACK, 1, 8, "response");
  fr(T_WU, F_FIN, 1, 0, NULL);
  CHECK_EQ(feed(&g_p), (int64_t)g_n);
  CHECK_STR(yh_log(&g_p), "D1:8 E1 C1:0");
  CHECK_EQ(fm.live, 1);
  /* an open stream that carried data keeps its ring until a keep-alive tick finds it empty */
  static uint8_t big[100000];
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, sizeof big), (int64_t)sizeof big);
  free(yh_take_output(&g_p, &(size_t){0}));
  size_t ring_cap = 0, out_cap = 0;
  lp2p__yamux_send_stats(g_p.mx, NULL, &ring_cap, &out_cap, NULL);
  CHECK(ring_cap >= sizeof big);
  CHECK(out_cap > 0);
  long with_stream = fm.live; /* session, map, stream, ring, output buffer */
  CHECK_EQ(with_stream, 5);
  CHECK_OK(lp2p_yamux_handle_expiry(g_p.mx, 0));
  lp2p__yamux_send_stats(g_p.mx, NULL, &ring_cap, &out_cap, NULL);
  CHECK_EQ(ring_cap, 0);
  CHECK_EQ(out_cap, 0);
  CHECK_EQ(fm.live, 3);
  CHECK_OK(lp2p_yamux_reset(g_p.mx, id));
  free(yh_take_output(&g_p, &(size_t){0}));
  CHECK_EQ(fm.live, 1);
  /* a stream's ring is reused across writes (no allocation per message) */
  CHECK_OK(lp2p_yamux_open_stream(g_p.mx, &id));
  free(yh_take_output(&g_p, &(size_t){0}));
  CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, 32), 32);
  free(yh_take_output(&g_p, &(size_t){0}));
  long count = fm.count;
  for (int i = 0; i < 100; i++) {
    CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, 32), 32);
    const uint8_t *o;
    size_t n = lp2p_yamux_output(g_p.mx, &o);
    CHECK_EQ(n, 44);
    lp2p_yamux_output_consumed(g_p.mx, n);
    lp2p_iovec iov[4];
    CHECK_EQ(lp2p_yamux_write(g_p.mx, id, big, 32), 32);
    CHECK_EQ(lp2p_yamux_output_iov(g_p.mx, iov, 4, SIZE_MAX), 1);
    CHECK_EQ(iov[0].len, 44);
    lp2p_yamux_output_consumed(g_p.mx, 44);
  }
  CHECK_EQ(fm.count, count);
  yh_peer_free(&g_p);
  CHECK_EQ(fm.live, 0);
}

/* Allocation failures on the gather path: every call fails cleanly and leaks nothing. */
TEST(output_iov_oom) {
  static uint8_t big[200000], got[400000];
  fill_pattern(big, sizeof big, 3);
  long runs = 0;
  for (long n = 1;; n++) {
    failmem fm;
    failmem_init(&fm, n);
    yh_peer p;
    runs++;
    if (yh_peer_init(&p, 1, NULL, &fm.mem)) {
      CHECK_EQ(fm.live, 0);
      continue;
    }
    uint32_t ids[3];
    int nopen = 0;
    for (int i = 0; i < 3; i++)
      if (lp2p_yamux_open_stream(p.mx, &ids[nopen]) == 0) nopen++;
    size_t wrote = 0;
    for (int i = 0; i < nopen; i++) {
      int64_t k = lp2p_yamux_write(p.mx, ids[i], big, i == 1 ? 500 : sizeof big);
      if (k > 0) wrote += (size_t)k;
    }
    size_t got_n = 0;
    for (int r = 0; r < 50 && lp2p_yamux_want_output(p.mx); r++) {
      lp2p_iovec iov[16];
      size_t k = lp2p_yamux_output_iov(p.mx, iov, 16, 50000), total = 0;
      for (size_t i = 0; i < k; i++) {
        memcpy(got + got_n + total, iov[i].base, iov[i].len);
        total += iov[i].len;
      }
      lp2p_yamux_output_consumed(p.mx, total / 2 + 1 < total ? total / 2 + 1 : total);
      got_n += total / 2 + 1 < total ? total / 2 + 1 : total;
      if (r == 3 && nopen) lp2p_yamux_reset(p.mx, ids[0]);
      if (r == 5) {
        const uint8_t *o;
        size_t m = lp2p_yamux_output(p.mx, &o);
        lp2p_yamux_output_consumed(p.mx, m / 3);
      }
    }
    yh_peer_free(&p);
    if (fm.live) {
      TEST_FAIL_("fail_at %ld: %ld blocks leaked", n, fm.live);
      break;
    }
    if (!fm.triggered) {
      CHECK_EQ(wrote, 2 * sizeof big + 500);
      break;
    }
  }
  printf("  output_iov allocation-failure runs: %ld\n", runs);
  CHECK(runs > 5);
}

int main(void) {
  RUN(frame_codec);
  RUN(vectors);
  RUN(syn_and_ack);
  RUN(data_frames);
  RUN(window_update_frames);
  RUN(fin_frames);
  RUN(rst_frames);
  RUN(ping_frames);
  RUN(goaway_frames);
  RUN(violations);
  RUN(inbound_limit);
  RUN(stream_ids);
  RUN(config);
  RUN(write_and_send_window);
  RUN(consume_window_updates);
  RUN(window_autotune);
  RUN(half_close);
  RUN(reset);
  RUN(ping_api);
  RUN(keepalive);
  RUN(goaway_local);
  RUN(unacked_limit);
  RUN(fair_scheduling);
  RUN(control_flood);
  RUN(reentrancy);
  RUN(close_in_callback_deferred);
  RUN(reset_mid_frame);
  RUN(api_misuse);
  RUN(stream_map);
  RUN(output_iov);
  RUN(output_iov_in_flight);
  RUN(max_frame_payload);
  RUN(send_budget);
  RUN(outbound_available);
  RUN(idle_memory);
  RUN(output_iov_oom);
  printf("%ld scenario runs (whole, every split offset, byte by byte)\n", g_runs);
  return test_done();
}
