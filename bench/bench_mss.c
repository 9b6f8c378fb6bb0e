/* bench_mss.c - multistream-select: in-process negotiations per second (dialer + listener, creation and
 * free included) and listener input rate. */
#include <string.h>

#include "bench_util.h"
#include "lp2p/mss.h"

typedef struct ctx {
  const char *const *want;
  size_t n_want;
  const char *const *have;
  size_t n_have;
  uint64_t bytes;
} ctx;

static int supports(void *ud, const char *p, size_t len) {
  const ctx *c = ud;
  for (size_t i = 0; i < c->n_have; i++)
    if (strlen(c->have[i]) == len && !memcmp(c->have[i], p, len)) return 1;
  return 0;
}

/* Moves everything a has to send into b; returns the bytes moved, or -1 on error. */
static int64_t pass(lp2p_mss *a, lp2p_mss *b) {
  const uint8_t *p;
  size_t n = lp2p_mss_output(a, &p);
  if (!n) return 0;
  int64_t used = lp2p_mss_done(b) ? 0 : lp2p_mss_feed(b, p, n);
  if (used < 0) return -1;
  lp2p_mss_output_consumed(a, n);
  return (int64_t)n;
}

static void negotiate(void *ud) {
  ctx *c = ud;
  lp2p_mss *d, *l;
  lp2p_mss_registry reg = {supports, NULL};
  if (lp2p_mss_new_dialer(&d, c->want, c->n_want, NULL, NULL) || lp2p_mss_new_listener(&l, &reg, c, NULL, NULL)) {
    bench_fail("create failed");
    exit(1);
  }
  for (int i = 0; i < 16 && !(lp2p_mss_done(d) && lp2p_mss_done(l)); i++) {
    int64_t a = pass(d, l), b = pass(l, d);
    if (a < 0 || b < 0) break;
    c->bytes += (uint64_t)(a + b);
  }
  if (!lp2p_mss_done(d) || !lp2p_mss_done(l)) {
    bench_fail("negotiation did not complete");
    exit(1);
  }
  lp2p_mss_free(d);
  lp2p_mss_free(l);
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "mss");
  static const char *const noise[] = {"/noise"};
  static const char *const want3[] = {"/mplex/6.7.0", "/tls/1.0.0", "/yamux/1.0.0"};
  static const char *const have[] = {"/noise", "/yamux/1.0.0", "/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"};
  ctx one = {noise, 1, have, 4, 0}, three = {want3, 3, have, 4, 0};
  uint64_t calls;
  double r = bench_run(negotiate, &one, bench_min_seconds(), &calls);
  report("negotiation, first choice (dialer+listener, alloc+free)", r, "op/s");
  r = bench_run(negotiate, &three, bench_min_seconds(), &calls);
  report("negotiation, 2x na then accept", r, "op/s");

  /* listener input rate: header + 1000 refused proposals fed in 64 KiB slices */
  uint8_t buf[65536];
  size_t n = 0;
  const char *hdr = "\x13/multistream/1.0.0\n";
  memcpy(buf, hdr, 20);
  n = 20;
  while (n + 14 <= sizeof buf) {
    memcpy(buf + n, "\x0d/mplex/6.7.0\n", 14);
    n += 14;
  }
  lp2p_mss_limits lim = {0, (size_t)-1 / 2};
  lp2p_mss_registry reg = {supports, NULL};
  uint64_t bytes = 0, t0 = bench_now_ns();
  while (bench_seconds(bench_now_ns() - t0) < bench_min_seconds()) {
    lp2p_mss *l;
    if (lp2p_mss_new_listener(&l, &reg, &one, &lim, NULL)) return 1;
    int64_t used = lp2p_mss_feed(l, buf, n);
    if (used != (int64_t)n) bench_fail("listener feed");
    const uint8_t *p;
    lp2p_mss_output_consumed(l, lp2p_mss_output(l, &p));
    lp2p_mss_free(l);
    bytes += n;
  }
  report("listener input (refused proposals)", bench_rate((double)bytes, bench_now_ns() - t0), "B/s");
  return bench_done();
}
