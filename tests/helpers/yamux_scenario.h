/* tests/helpers/yamux_scenario.h - shared by the Yamux engine unit tests (tests/unit/test_yamux_*.c):
 * frame/flag constants, an input builder (fr, frz, raw into g_in/g_n), the byte-split scenario runner
 * (run_scen: one input fed whole, split at every byte offset - sampled past 4 KiB - and one byte at a
 * time, with the expected events, output frames, error and stream count checked each time; PCHECK
 * for post-checks) and API shortcuts (g_p, srv, cli, feed).
 *
 * Header-only on purpose: failures are reported with TEST_FAIL_ into the test.h counters of the
 * executable that includes it (test.h keeps them per translation unit). */
#ifndef LP2P_TEST_YAMUX_SCENARIO_H
#define LP2P_TEST_YAMUX_SCENARIO_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muxer/yamux_int.h"
#include "test.h"
#include "yamux_harness.h"

enum { T_DATA = 0, T_WU = 1, T_PING = 2, T_GOAWAY = 3 };
enum { F_SYN = 1, F_ACK = 2, F_FIN = 4, F_RST = 8 };
#define W256K 262144u

/* ---- input builder ---- */
static uint8_t g_in[2 << 20] __attribute__((unused));
static size_t g_n __attribute__((unused));
static inline void in_reset(void) { g_n = 0; }
static inline void fr(uint8_t type, uint16_t flags, uint32_t id, uint32_t len, const char *payload) {
  g_n += yh_frame(g_in + g_n, type, flags, id, len, payload, payload ? len : 0);
}
/* Data frame header plus `body` bytes of zeros (body may be < len: truncated input). */
static inline void frz(uint16_t flags, uint32_t id, uint32_t len, size_t body) {
  g_n += yh_frame(g_in + g_n, T_DATA, flags, id, len, NULL, 0);
  memset(g_in + g_n, 0, body);
  g_n += body;
}
static inline void raw(const uint8_t *p, size_t n) {
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

static int g_post_failed __attribute__((unused));
static long g_runs __attribute__((unused)); /* scenario executions (all splits) */

static inline void run_one(const scen *sc, const uint8_t *in, size_t len, size_t split, int *failed) {
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
static inline void run_scen(const scen *sc, const uint8_t *in, size_t len) {
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

/* ---- API shortcuts ---- */
static yh_peer g_p __attribute__((unused));
static inline void srv(void) { REQUIRE(yh_peer_init(&g_p, 0, NULL, NULL) == 0); }
static inline void cli(void) { REQUIRE(yh_peer_init(&g_p, 1, NULL, NULL) == 0); }
static inline int64_t feed(yh_peer *p) { return lp2p_yamux_feed(p->mx, g_in, g_n, p->now); }

#endif
