/* bench_yamux.c - Yamux pair throughput in one process: a client session writes, a server session reads
 * and consumes at once, output buffers are handed across directly (no sockets, no encryption). Reported:
 * 1 stream and 100 streams, with the receive window fixed at 256 KiB (no RTT known) or auto-tuned (RTT
 * measured by a ping first), and the effect of the Data frame size and output batch (internal tunables). */
#include <string.h>

#include "bench_util.h"
#include "lp2p/yamux.h"
#include "muxer/yamux_int.h"

typedef struct side {
  lp2p_yamux *mx;
  uint64_t rx;
} side;

static void on_data(lp2p_yamux *mx, uint32_t id, const uint8_t *p, size_t n, void *ud) {
  side *s = ud;
  s->rx += n;
  bench_sink(p);
  if (lp2p_yamux_consume(mx, id, n)) bench_fail("consume failed");
}

static lp2p_tstamp now_ms(void) { return bench_now_ns() / 1000000u; }

/* Hands all of a's output to b. */
static int move(side *a, side *b) {
  const uint8_t *o;
  size_t n;
  while ((n = lp2p_yamux_output(a->mx, &o)) > 0) {
    if (lp2p_yamux_feed(b->mx, o, n, now_ms()) < 0) return -1;
    lp2p_yamux_output_consumed(a->mx, n);
  }
  return 0;
}

static uint8_t src[1 << 20];

typedef struct result {
  double bps;
  uint32_t win;
} result;

static result run(int nstreams, uint64_t total, int autotune, uint32_t frame, size_t batch) {
  result r = {0, 0};
  side a = {0}, b = {0};
  lp2p_yamux_config ca, cb;
  lp2p_yamux_config_default(&ca, 1);
  lp2p_yamux_config_default(&cb, 0);
  ca.keepalive_interval = cb.keepalive_interval = 0;
  lp2p_yamux_callbacks cbs = {sizeof cbs, NULL, on_data, NULL, NULL, NULL, NULL, NULL};
  if (lp2p_yamux_new(&a.mx, &ca, &cbs, &a, NULL) || lp2p_yamux_new(&b.mx, &cb, &cbs, &b, NULL)) {
    bench_fail("new failed");
    return r;
  }
  a.mx->max_frame = b.mx->max_frame = frame;
  a.mx->out_batch = b.mx->out_batch = batch;
  if (autotune) {
    lp2p_yamux_ping(a.mx, now_ms());
    lp2p_yamux_ping(b.mx, now_ms());
    move(&a, &b);
    move(&b, &a);
    move(&a, &b);
  }
  uint32_t ids[128];
  uint64_t left[128];
  for (int i = 0; i < nstreams; i++) {
    if (lp2p_yamux_open_stream(a.mx, &ids[i])) bench_fail("open failed");
    left[i] = total / (uint64_t)nstreams;
  }
  uint64_t want = total / (uint64_t)nstreams * (uint64_t)nstreams;
  uint64_t t0 = bench_now_ns();
  while (b.rx < want) {
    for (int i = 0; i < nstreams; i++) {
      while (left[i]) {
        size_t n = left[i] < sizeof src ? (size_t)left[i] : sizeof src;
        int64_t k = lp2p_yamux_write(a.mx, ids[i], src, n);
        if (k < 0) {
          bench_fail("write failed");
          goto out;
        }
        left[i] -= (uint64_t)k;
        if ((size_t)k < n) break;
      }
    }
    if (move(&a, &b) || move(&b, &a)) {
      bench_fail("feed failed");
      goto out;
    }
  }
  r.bps = bench_rate((double)want, bench_now_ns() - t0);
  lp2p__yamux_stream_windows(b.mx, ids[0], NULL, &r.win, NULL, NULL);
out:
  lp2p_yamux_free(a.mx);
  lp2p_yamux_free(b.mx);
  return r;
}

/* ---- simulated link: one-way delay + bandwidth, simulated clock (us) ---- */
typedef struct pkt {
  uint64_t due;
  size_t len;
  uint8_t *data;
} pkt;
typedef struct link {
  pkt *q;
  size_t head, n, cap;
  uint64_t free_at, delay_us;
  double bytes_per_us;
} link;

static void link_push(link *l, uint64_t t, const uint8_t *p, size_t len) {
  if (l->head + l->n == l->cap) {
    if (l->head) {
      memmove(l->q, l->q + l->head, l->n * sizeof *l->q);
      l->head = 0;
    } else {
      l->cap = l->cap ? l->cap * 2 : 64;
      l->q = realloc(l->q, l->cap * sizeof *l->q);
      if (!l->q) abort();
    }
  }
  uint64_t start = t > l->free_at ? t : l->free_at;
  l->free_at = start + (uint64_t)((double)len / l->bytes_per_us) + 1;
  pkt *k = &l->q[l->head + l->n++];
  k->due = l->free_at + l->delay_us;
  k->len = len;
  k->data = malloc(len);
  if (!k->data) abort();
  memcpy(k->data, p, len);
}

static void take(side *s, link *l, uint64_t t) {
  const uint8_t *o;
  size_t n;
  while ((n = lp2p_yamux_output(s->mx, &o)) > 0) {
    link_push(l, t, o, n);
    lp2p_yamux_output_consumed(s->mx, n);
  }
}

static int deliver(link *l, side *to, uint64_t t) {
  while (l->n && l->q[l->head].due <= t) {
    pkt *k = &l->q[l->head];
    int64_t rv = lp2p_yamux_feed(to->mx, k->data, k->len, t / 1000);
    free(k->data);
    l->head++;
    l->n--;
    if (rv < 0) return -1;
  }
  return 0;
}

/* Transfers `total` bytes on one stream over a link of rtt_ms and mbit_s; returns simulated B/s. */
static result run_link(uint64_t total, int autotune, uint32_t rtt_ms, double mbit_s, uint32_t rtts) {
  result r = {0, 0};
  side a = {0}, b = {0};
  link ab = {0}, ba = {0};
  ab.delay_us = ba.delay_us = (uint64_t)rtt_ms * 500;
  ab.bytes_per_us = ba.bytes_per_us = mbit_s / 8.0;
  lp2p_yamux_config ca, cb;
  lp2p_yamux_config_default(&ca, 1);
  lp2p_yamux_config_default(&cb, 0);
  ca.keepalive_interval = cb.keepalive_interval = 0;
  lp2p_yamux_callbacks cbs = {sizeof cbs, NULL, on_data, NULL, NULL, NULL, NULL, NULL};
  if (lp2p_yamux_new(&a.mx, &ca, &cbs, &a, NULL) || lp2p_yamux_new(&b.mx, &cb, &cbs, &b, NULL)) {
    bench_fail("new failed");
    return r;
  }
  uint64_t t = 0;
  a.mx->tune_rtts = b.mx->tune_rtts = rtts;
  if (autotune) lp2p_yamux_ping(b.mx, 0); /* the receiver needs the RTT */
  uint32_t id;
  if (lp2p_yamux_open_stream(a.mx, &id)) bench_fail("open failed");
  uint64_t left = total, t0 = 0;
  while (b.rx < total) {
    while (left) {
      size_t n = left < sizeof src ? (size_t)left : sizeof src;
      int64_t k = lp2p_yamux_write(a.mx, id, src, n);
      if (k < 0) goto out;
      left -= (uint64_t)k;
      if ((size_t)k < n) break;
    }
    take(&a, &ab, t);
    take(&b, &ba, t);
    uint64_t next = UINT64_MAX;
    if (ab.n) next = ab.q[ab.head].due;
    if (ba.n && ba.q[ba.head].due < next) next = ba.q[ba.head].due;
    if (next == UINT64_MAX) {
      bench_fail("link stalled");
      goto out;
    }
    if (next > t) t = next;
    if (deliver(&ab, &b, t) || deliver(&ba, &a, t)) {
      bench_fail("feed failed");
      goto out;
    }
  }
  r.bps = bench_rate((double)total, (t - t0) * 1000);
  lp2p__yamux_stream_windows(b.mx, id, NULL, &r.win, NULL, NULL);
out:
  while (ab.n) free(ab.q[ab.head + --ab.n].data);
  while (ba.n) free(ba.q[ba.head + --ba.n].data);
  free(ab.q);
  free(ba.q);
  lp2p_yamux_free(a.mx);
  lp2p_yamux_free(b.mx);
  return r;
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "yamux");
  memset(src, 0xA5, sizeof src);
  uint64_t total = bench_quick() ? (64u << 20) : (512u << 20);
  char name[128];
  static const struct { int n, tune; } cases[] = {{1, 0}, {1, 1}, {100, 0}, {100, 1}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    result r = run(cases[c].n, total, cases[c].tune, LP2P_YAMUX_MAX_DATA_FRAME, LP2P_YAMUX_OUTPUT_BATCH);
    snprintf(name, sizeof name, "pair %d stream%s, %s (window %u KiB)", cases[c].n, cases[c].n > 1 ? "s" : "",
             cases[c].tune ? "auto-tuned" : "fixed 256 KiB window", r.win / 1024);
    report(name, r.bps, "B/s");
  }
  /* Tunables: frame size and output batch (1 stream, auto-tuned; 100 streams, fixed). */
  static const uint32_t frames[] = {16384, 32768, 65536};
  static const size_t batches[] = {65536, 131072, 262144};
  for (size_t f = 0; f < 3; f++)
    for (size_t bt = 0; bt < 3; bt++) {
      for (int n = 1; n <= 100; n += 99) {
        result r = run(n, total / 2, n == 1, frames[f], batches[bt]);
        snprintf(name, sizeof name, "tunable: %d stream%s, frame %u KiB, batch %zu KiB", n, n > 1 ? "s" : "",
                 frames[f] / 1024, batches[bt] / 1024);
        report(name, r.bps, "B/s");
      }
    }
  /* Auto-tuning on a simulated link (simulated time): the 256 KiB window caps a stream at window/RTT. */
  static const struct {
    uint32_t rtt;
    double mbit;
  } links[] = {{1, 1000}, {20, 1000}, {100, 100}};
  static const uint32_t rtts[] = {0, 1, 2, 4};
  for (size_t l = 0; l < 3; l++)
    for (size_t k = 0; k < 4; k++) {
      result r = run_link(bench_quick() ? (16u << 20) : (64u << 20), rtts[k] != 0, links[l].rtt,
                          links[l].mbit, rtts[k]);
      if (rtts[k])
        snprintf(name, sizeof name,
                 "simulated %u ms RTT, %.0f Mbit/s link: auto-tuned at %u RTT (window %u KiB)", links[l].rtt,
                 links[l].mbit, rtts[k], r.win / 1024);
      else
        snprintf(name, sizeof name, "simulated %u ms RTT, %.0f Mbit/s link: fixed 256 KiB window",
                 links[l].rtt, links[l].mbit);
      report(name, r.bps, "B/s");
    }
  return bench_done();
}
