/* bench_yamux.c - Yamux pair throughput in one process: a client session writes, a server session reads
 * and consumes at once, output buffers are handed across directly (no sockets, no encryption). Reported:
 * 1 stream and 100 streams, with the receive window fixed at 256 KiB (no RTT known) or auto-tuned (RTT
 * measured by a ping first), and the effect of the Data frame size and output batch (internal tunables).
 * First, for both output forms (contiguous lp2p_yamux_output, gather lp2p_yamux_output_iov): the heap of
 * an idle session (through a counting lp2p_mem), 32-byte echo round trips and allocations per round trip,
 * a "swarm model" (output sealed into 65,519-byte pieces: rate, sender peak heap, sealed frames) for 1
 * stream and 1000 streams x 64 KiB, and the session send budget swept over 256 KiB .. unlimited.
 * BENCH_YAMUX_ONLY=new runs only those. */
#include <string.h>

#include "bench_util.h"
#include "lp2p/yamux.h"
#include "muxer/yamux_int.h"

typedef struct side {
  lp2p_yamux *mx;
  uint64_t rx;
  int echo;
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


/* ---- counting allocator: live / peak heap bytes and allocation calls through lp2p_mem ---- */
typedef struct cmem {
  lp2p_mem mem;
  size_t live, peak;
  uint64_t calls;
} cmem;
#define CM_HDR 16
static void *cm_malloc(size_t n, void *u) {
  cmem *c = u;
  uint8_t *p = malloc(n + CM_HDR);
  if (!p) return NULL;
  memcpy(p, &n, sizeof n);
  c->calls++;
  c->live += n;
  if (c->live > c->peak) c->peak = c->live;
  return p + CM_HDR;
}
static void cm_free(void *q, void *u) {
  cmem *c = u;
  if (!q) return;
  uint8_t *p = (uint8_t *)q - CM_HDR;
  size_t n;
  memcpy(&n, p, sizeof n);
  c->live -= n;
  free(p);
}
static void *cm_realloc(void *q, size_t n, void *u) {
  if (!q) return cm_malloc(n, u);
  cmem *c = u;
  uint8_t *p = (uint8_t *)q - CM_HDR;
  size_t old;
  memcpy(&old, p, sizeof old);
  uint8_t *r = realloc(p, n + CM_HDR);
  if (!r) return NULL;
  memcpy(r, &n, sizeof n);
  c->calls++;
  c->live = c->live - old + n;
  if (c->live > c->peak) c->peak = c->live;
  return r + CM_HDR;
}
static void cm_init(cmem *c) {
  memset(c, 0, sizeof *c);
  c->mem = (lp2p_mem){cm_malloc, cm_realloc, cm_free, c};
}

/* Output modes of the new cases: contiguous lp2p_yamux_output() or gather lp2p_yamux_output_iov(). */
static int g_iov;
static const char *mode_name(void) { return g_iov ? "output_iov" : "output"; }

/* Hands all of a's output to b in the current mode (no staging copy). */
static int move_mode(side *a, side *b) {
  if (!g_iov) return move(a, b);
  lp2p_iovec iov[32];
  size_t k;
  while ((k = lp2p_yamux_output_iov(a->mx, iov, 32, SIZE_MAX)) > 0) {
    size_t total = 0;
    for (size_t i = 0; i < k; i++) {
      if (lp2p_yamux_feed(b->mx, iov[i].base, iov[i].len, 0) < 0) return -1;
      total += iov[i].len;
    }
    lp2p_yamux_output_consumed(a->mx, total);
  }
  return 0;
}

/* Pumps both directions until neither side has output. */
static int pump2(side *a, side *b) {
  for (int r = 0; r < 1000; r++) {
    if (!lp2p_yamux_want_output(a->mx) && !lp2p_yamux_want_output(b->mx)) return 0;
    if (move_mode(a, b) || move_mode(b, a)) return -1;
  }
  return -1;
}

static void on_data_echo(lp2p_yamux *mx, uint32_t id, const uint8_t *p, size_t n, void *ud) {
  side *s = ud;
  s->rx += n;
  if (lp2p_yamux_consume(mx, id, n)) bench_fail("consume failed");
  if (s->echo && lp2p_yamux_write(mx, id, p, n) != (int64_t)n) bench_fail("echo write short");
}

typedef void (*data_fn)(lp2p_yamux *, uint32_t, const uint8_t *, size_t, void *);
static int pair_new(side *a, side *b, cmem *m, data_fn data, uint32_t max_inbound, size_t budget,
                    uint32_t max_frame) {
  lp2p_yamux_config ca, cb;
  lp2p_yamux_config_default(&ca, 1);
  lp2p_yamux_config_default(&cb, 0);
  ca.keepalive_interval = cb.keepalive_interval = 0;
  if (max_inbound) cb.max_inbound_streams = max_inbound;
  ca.send_budget = budget;
  ca.max_frame_payload = max_frame;
  lp2p_yamux_callbacks cbs = {sizeof cbs, NULL, data, NULL, NULL, NULL, NULL, NULL};
  if (lp2p_yamux_new(&a->mx, &ca, &cbs, a, m ? &m->mem : NULL) ||
      lp2p_yamux_new(&b->mx, &cb, &cbs, b, NULL)) {
    bench_fail("new failed");
    return -1;
  }
  return 0;
}

/* Heap held by one idle session (client side, through lp2p_mem): fresh; after a stream carried a request
 * and a response and closed both ways and a ping was answered (0 streams); with one idle open stream that
 * carried 64 KiB each way, before and after a keep-alive tick (lp2p_yamux_handle_expiry). */
static void idle_memory(void) {
  cmem m;
  cm_init(&m);
  side a = {0}, b = {0};
  b.echo = 1;
  if (pair_new(&a, &b, &m, on_data_echo, 0, 0, 0)) return;
  char name[160];
  snprintf(name, sizeof name, "idle memory (%s): fresh session (client heap)", mode_name());
  report(name, (double)m.live, "B");
  uint32_t id;
  if (lp2p_yamux_open_stream(a.mx, &id) || lp2p_yamux_write(a.mx, id, src, 300) != 300)
    bench_fail("open/write");
  pump2(&a, &b);
  lp2p_yamux_close_write(a.mx, id);
  lp2p_yamux_close_write(b.mx, id);
  lp2p_yamux_ping(a.mx, now_ms());
  if (pump2(&a, &b) || lp2p_yamux_stream_count(a.mx)) bench_fail("idle: stream not closed");
  snprintf(name, sizeof name, "idle memory (%s): session after a closed request/response stream",
           mode_name());
  report(name, (double)m.live, "B");
  if (lp2p_yamux_open_stream(a.mx, &id)) bench_fail("open");
  for (uint64_t left = 65536; left;) {
    int64_t k = lp2p_yamux_write(a.mx, id, src, (size_t)left);
    if (k < 0) break;
    left -= (uint64_t)k;
    if (pump2(&a, &b)) bench_fail("pump");
  }
  if (pump2(&a, &b) || a.rx != 65536 + 300) bench_fail("idle: echo incomplete");
  snprintf(name, sizeof name, "idle memory (%s): 1 open stream after 64 KiB each way", mode_name());
  report(name, (double)m.live, "B");
  lp2p_yamux_handle_expiry(a.mx, 0);
  snprintf(name, sizeof name, "idle memory (%s): 1 open stream after 64 KiB each way, after keep-alive tick",
           mode_name());
  report(name, (double)m.live, "B");
  lp2p_yamux_free(a.mx);
  lp2p_yamux_free(b.mx);
}

/* Request/response: 32-byte messages echoed on one stream; round trips per second and client allocation
 * calls per round trip. */
static void echo_small(void) {
  cmem m;
  cm_init(&m);
  side a = {0}, b = {0};
  b.echo = 1;
  if (pair_new(&a, &b, &m, on_data_echo, 0, 0, 0)) return;
  uint32_t id;
  if (lp2p_yamux_open_stream(a.mx, &id)) bench_fail("open");
  pump2(&a, &b);
  uint64_t n = bench_quick() ? 200000 : 2000000, calls0 = m.calls, t0 = bench_now_ns();
  for (uint64_t i = 0; i < n; i++) {
    if (lp2p_yamux_write(a.mx, id, src, 32) != 32 || move_mode(&a, &b) || move_mode(&b, &a)) {
      bench_fail("echo failed");
      break;
    }
  }
  uint64_t el = bench_now_ns() - t0;
  if (a.rx != n * 32) bench_fail("echo: bytes missing");
  char name[160];
  snprintf(name, sizeof name, "echo 32 B on one stream (%s): round trips", mode_name());
  report(name, bench_rate((double)n, el), "op/s");
  snprintf(name, sizeof name, "echo 32 B on one stream (%s): client allocations per round trip", mode_name());
  report(name, (double)(m.calls - calls0) / (double)n, "calls");
  lp2p_yamux_free(a.mx);
  lp2p_yamux_free(b.mx);
}

/* Swarm model: output is "sealed" into Noise-sized pieces (copied into a staging buffer at most 65,519
 * bytes at a time, as the swarm does when it encrypts) and fed to the peer. Contiguous mode: output() in
 * whole batches, cut into 65,519-byte pieces (the batch tail is a runt); gather mode: output_iov() with
 * max_bytes = 2 x 65,519, gathered straight from the rings. */
#define NOISE_PT 65519
static uint8_t stage[NOISE_PT];
static uint64_t g_sealed;

static int seal_move(side *a, side *b) {
  if (g_iov) {
    lp2p_iovec iov[32];
    size_t k;
    while ((k = lp2p_yamux_output_iov(a->mx, iov, 32, 2 * NOISE_PT)) > 0) {
      size_t fill = 0, total = 0;
      for (size_t i = 0; i < k; i++) {
        for (size_t off = 0; off < iov[i].len;) {
          size_t t = iov[i].len - off < NOISE_PT - fill ? iov[i].len - off : NOISE_PT - fill;
          memcpy(stage + fill, iov[i].base + off, t);
          fill += t;
          off += t;
          if (fill == NOISE_PT) {
            g_sealed++;
            if (lp2p_yamux_feed(b->mx, stage, fill, 0) < 0) return -1;
            fill = 0;
          }
        }
        total += iov[i].len;
      }
      if (fill) {
        g_sealed++;
        if (lp2p_yamux_feed(b->mx, stage, fill, 0) < 0) return -1;
      }
      lp2p_yamux_output_consumed(a->mx, total);
    }
    return 0;
  }
  const uint8_t *o;
  size_t n;
  while ((n = lp2p_yamux_output(a->mx, &o)) > 0) {
    for (size_t off = 0; off < n;) {
      size_t k = n - off < NOISE_PT ? n - off : NOISE_PT;
      memcpy(stage, o + off, k);
      g_sealed++;
      if (lp2p_yamux_feed(b->mx, stage, k, 0) < 0) return -1;
      off += k;
    }
    lp2p_yamux_output_consumed(a->mx, n);
  }
  return 0;
}

/* nstreams streams of per_stream bytes each (opened in waves while LP2P_ERR_LIMIT says so); reports the
 * rate, the sender's peak heap and the sealed frames per 64 MiB. budget/max_frame 0 = defaults. */
static void run_many(int nstreams, uint64_t per_stream, size_t budget, uint32_t max_frame,
                     const char *label) {
  cmem m;
  cm_init(&m);
  side a = {0}, b = {0};
  if (pair_new(&a, &b, &m, on_data, (uint32_t)nstreams + 1, budget, max_frame)) return;
  uint32_t *ids = calloc((size_t)nstreams, sizeof *ids);
  uint64_t *left = calloc((size_t)nstreams, sizeof *left);
  if (!ids || !left) abort();
  int opened = 0;
  uint64_t want = per_stream * (uint64_t)nstreams;
  g_sealed = 0;
  uint64_t t0 = bench_now_ns();
  while (b.rx < want) {
    while (opened < nstreams) {
      int rv = lp2p_yamux_open_stream(a.mx, &ids[opened]);
      if (rv == LP2P_ERR_LIMIT) break;
      if (rv) {
        bench_fail("open failed");
        goto out;
      }
      left[opened++] = per_stream;
    }
    for (int i = 0; i < opened; i++) {
      while (left[i]) {
        size_t n = left[i] < sizeof src ? (size_t)left[i] : sizeof src;
        int64_t k = lp2p_yamux_write(a.mx, ids[i], src, n);
        if (k < 0) {
          bench_fail("write failed");
          goto out;
        }
        left[i] -= (uint64_t)k;
        if (!left[i]) lp2p_yamux_close_write(a.mx, ids[i]);
        if ((size_t)k < n) break;
      }
    }
    if (seal_move(&a, &b) || seal_move(&b, &a)) {
      bench_fail("feed failed");
      goto out;
    }
  }
  uint64_t el = bench_now_ns() - t0;
  char name[200], what[120];
  snprintf(what, sizeof what, "%s (%s): %d stream%s x %llu KiB", label, mode_name(), nstreams,
           nstreams > 1 ? "s" : "", (unsigned long long)(per_stream >> 10));
  report(what, bench_rate((double)want, el), "B/s");
  snprintf(name, sizeof name, "%s, sender peak heap", what);
  report(name, (double)m.peak, "B");
  snprintf(name, sizeof name, "%s, sealed frames per 64 MiB", what);
  report(name, (double)g_sealed * (double)(64u << 20) / (double)want, "frames");
out:
  free(ids);
  free(left);
  lp2p_yamux_free(a.mx);
  lp2p_yamux_free(b.mx);
}

/* BENCH_YAMUX_ONLY=new runs only the cases above (idle memory, echo, swarm model). */
static void new_cases(void) {
  uint64_t bulk = bench_quick() ? (64u << 20) : (256u << 20);
  for (g_iov = 0; g_iov <= 1; g_iov++) {
    idle_memory();
    echo_small();
    run_many(1, bulk, 0, 0, "swarm model");
    run_many(1000, 64u << 10, 0, 0, "swarm model");
  }
  g_iov = 1;
  run_many(1, bulk, 0, LP2P_YAMUX_NOISE_FRAME_PAYLOAD, "swarm model, 65,507-byte frames");
  /* session send budget: 1000 streams x 64 KiB */
  static const size_t budgets[] = {256u << 10, 512u << 10, 1u << 20, 2u << 20, 4u << 20, SIZE_MAX};
  for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
    char label[80];
    if (budgets[i] == SIZE_MAX)
      snprintf(label, sizeof label, "send budget unlimited");
    else
      snprintf(label, sizeof label, "send budget %zu KiB", budgets[i] >> 10);
    run_many(1000, 64u << 10, budgets[i], 0, label);
    run_many(100, bulk / 100, budgets[i], 0, label);
  }
  g_iov = 0;
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "yamux");
  memset(src, 0xA5, sizeof src);
  uint64_t total = bench_quick() ? (64u << 20) : (512u << 20);
  char name[128];
  new_cases();
  const char *only = getenv("BENCH_YAMUX_ONLY");
  if (only && !strcmp(only, "new")) return bench_done();
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
