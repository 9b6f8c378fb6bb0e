/* tests/unit/test_yamux_frames.c - Yamux engine, the wire side: frame codec, every vector of
 * yamux-frames.json, one test per frame type / flag / violation and the inbound stream limit, each
 * input fed whole, split at every byte offset (sampled offsets for very large inputs) and one byte
 * at a time (the scenario runner in tests/helpers/yamux_scenario.h). */
#include <stdlib.h>

#include "failmem.h"
#include "json.h"
#include "muxer/yamux_int.h"
#include "test.h"
#include "yamux_harness.h"
#include "yamux_scenario.h"

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
  printf("%ld scenario runs (whole, every split offset, byte by byte)\n", g_runs);
  return test_done();
}
