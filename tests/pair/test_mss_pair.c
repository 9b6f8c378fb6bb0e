/* test_mss_pair.c - a dialer (or lister) and a listener negotiating in one process. Every scenario runs with
 * the bytes delivered whole, in chunks of every size from 1 byte up, and with the first delivery in each
 * direction split at every offset; the outcome must not change. Also: allocation failure at every allocation
 * of a whole negotiation, and next-layer bytes pipelined by either side. */
#include "failmem.h"
#include "lp2p/mss.h"
#include "test.h"

typedef struct wire {
  uint8_t d[8192];
  size_t n;
} wire;

static void wire_put(wire *w, const void *p, size_t n) {
  if (w->n + n > sizeof w->d) abort();
  memcpy(w->d + w->n, p, n);
  w->n += n;
}
static void wire_take(wire *w, size_t n) {
  memmove(w->d, w->d + n, w->n - n);
  w->n -= n;
}

typedef struct reg_ctx {
  const char *const *ids;
  size_t n;
} reg_ctx;

static int reg_supports(void *ud, const char *p, size_t len) {
  reg_ctx *r = ud;
  for (size_t i = 0; i < r->n; i++)
    if (strlen(r->ids[i]) == len && !memcmp(r->ids[i], p, len)) return 1;
  return 0;
}
static size_t reg_list(void *ud, const char **out, size_t max) {
  reg_ctx *r = ud;
  size_t i;
  for (i = 0; i < r->n && i < max; i++) out[i] = r->ids[i];
  return i;
}

typedef struct pair_cfg {
  int lister;                 /* dialer side is a lister */
  const char *const *protos;  /* dialer proposals */
  size_t n;
  reg_ctx reg;                /* listener registry */
  lp2p_mss_limits llim;       /* listener limits */
  const char *dialer_app;     /* lazy dialer: bytes queued right behind its first flight */
  const char *listener_app;   /* bytes the listener writes as soon as it is done */
  size_t dialer_app_len;      /* 0 = strlen(dialer_app) */
} pair_cfg;

typedef struct pair_out {
  int d_err, l_err;
  int d_done, l_done;
  char d_proto[64], l_proto[64];
  size_t d_rej, l_rej;
  int list_received;
  size_t list_n;
  char list[4][64];
  wire to_l, to_d; /* what is left on each wire: next-layer bytes */
  int rounds;
} pair_out;

/* chunk: most bytes per feed (0 = all). split: the first feed in each direction gets at most split bytes. */
static int run_pair(const pair_cfg *c, size_t chunk, size_t split, const lp2p_mem *mem, pair_out *o) {
  memset(o, 0, sizeof *o);
  lp2p_mss *d = NULL, *l = NULL;
  lp2p_mss_registry reg = {reg_supports, reg_list};
  int rv = c->lister ? lp2p_mss_new_lister(&d, c->protos, c->n, NULL, mem)
                     : lp2p_mss_new_dialer(&d, c->protos, c->n, NULL, mem);
  if (!rv) rv = lp2p_mss_new_listener(&l, &reg, (void *)&c->reg, &c->llim, mem);
  if (rv) {
    lp2p_mss_free(d);
    return rv;
  }
  int first_d = 1, first_l = 1, l_app_sent = 0;
  const uint8_t *p;
  size_t n;
  n = lp2p_mss_output(d, &p);
  wire_put(&o->to_l, p, n);
  lp2p_mss_output_consumed(d, n);
  if (c->dialer_app)
    wire_put(&o->to_l, c->dialer_app, c->dialer_app_len ? c->dialer_app_len : strlen(c->dialer_app));
  for (int progress = 1; progress && o->rounds < 1000; o->rounds++) {
    progress = 0;
    /* listener reads */
    if (o->to_l.n && !o->l_err && !lp2p_mss_done(l)) {
      size_t k = o->to_l.n;
      if (chunk && k > chunk) k = chunk;
      if (first_l && split && k > split) k = split;
      first_l = 0;
      int64_t used = lp2p_mss_feed(l, o->to_l.d, k);
      if (used < 0) {
        o->l_err = (int)used;
        o->to_l.n = 0; /* the channel is closed */
      } else {
        wire_take(&o->to_l, (size_t)used);
        if ((size_t)used == k) progress = 1;
      }
    }
    if ((n = lp2p_mss_output(l, &p)) > 0) {
      wire_put(&o->to_d, p, n);
      lp2p_mss_output_consumed(l, n);
      progress = 1;
    }
    if (lp2p_mss_done(l) && c->listener_app && !l_app_sent) {
      wire_put(&o->to_d, c->listener_app, strlen(c->listener_app));
      l_app_sent = 1;
    }
    /* dialer reads */
    if (o->to_d.n && !o->d_err && !lp2p_mss_done(d)) {
      size_t k = o->to_d.n;
      if (chunk && k > chunk) k = chunk;
      if (first_d && split && k > split) k = split;
      first_d = 0;
      int64_t used = lp2p_mss_feed(d, o->to_d.d, k);
      if (used < 0) {
        o->d_err = (int)used;
        o->to_d.n = 0;
      } else {
        wire_take(&o->to_d, (size_t)used);
        if ((size_t)used == k) progress = 1;
      }
    }
    if ((n = lp2p_mss_output(d, &p)) > 0) {
      wire_put(&o->to_l, p, n);
      lp2p_mss_output_consumed(d, n);
      progress = 1;
    }
  }
  o->d_done = lp2p_mss_done(d);
  o->l_done = lp2p_mss_done(l);
  if (o->d_done) snprintf(o->d_proto, sizeof o->d_proto, "%s", lp2p_mss_protocol(d));
  if (o->l_done) snprintf(o->l_proto, sizeof o->l_proto, "%s", lp2p_mss_protocol(l));
  o->d_rej = lp2p_mss_rejections(d);
  o->l_rej = lp2p_mss_rejections(l);
  o->list_received = lp2p_mss_list_received(d);
  o->list_n = lp2p_mss_list_count(d);
  for (size_t i = 0; i < o->list_n && i < 4; i++) snprintf(o->list[i], 64, "%s", lp2p_mss_list_at(d, i));
  lp2p_mss_free(d);
  lp2p_mss_free(l);
  return 0;
}

static int same_outcome(const pair_out *a, const pair_out *b) {
  if (a->d_err != b->d_err || a->l_err != b->l_err || a->d_done != b->d_done || a->l_done != b->l_done) return 0;
  if (strcmp(a->d_proto, b->d_proto) || strcmp(a->l_proto, b->l_proto)) return 0;
  if (a->d_rej != b->d_rej || a->l_rej != b->l_rej || a->list_received != b->list_received) return 0;
  if (a->list_n != b->list_n) return 0;
  for (size_t i = 0; i < a->list_n && i < 4; i++)
    if (strcmp(a->list[i], b->list[i])) return 0;
  if (a->to_l.n != b->to_l.n || memcmp(a->to_l.d, b->to_l.d, a->to_l.n)) return 0;
  if (a->to_d.n != b->to_d.n || memcmp(a->to_d.d, b->to_d.d, a->to_d.n)) return 0;
  return 1;
}

/* Runs c whole, with every chunk size 1..64 and with every first-delivery split 1..64; each outcome must equal
 * the whole run, which is returned in *ref. */
static void run_all(const pair_cfg *c, pair_out *ref) {
  static pair_out o;
  CHECK_OK(run_pair(c, 0, 0, NULL, ref));
  int bad = 0;
  for (size_t k = 1; k <= 64 && bad < 3; k++) {
    for (int mode = 0; mode < 2; mode++) {
      CHECK_OK(run_pair(c, mode ? 0 : k, mode ? k : 0, NULL, &o));
      if (!same_outcome(ref, &o)) {
        fprintf(stderr, "  outcome differs with %s %zu\n", mode ? "split" : "chunk", k);
        bad++;
      }
    }
  }
  CHECK_EQ(bad, 0);
}

static const char *const NOISE[] = {"/noise"};

TEST(pair_first_choice) {
  pair_cfg c = {0, NOISE, 1, {NOISE, 1}, {0}, NULL, NULL, 0};
  pair_out o;
  run_all(&c, &o);
  CHECK_EQ(o.d_err, 0);
  CHECK_EQ(o.l_err, 0);
  CHECK(o.d_done && o.l_done);
  CHECK_STR(o.d_proto, "/noise");
  CHECK_STR(o.l_proto, "/noise");
  CHECK_EQ(o.to_l.n, 0);
  CHECK_EQ(o.to_d.n, 0);
  CHECK_EQ(o.d_rej, 0);
  /* one round trip: the listener answers the first flight, the dialer reads the answer */
  CHECK(o.rounds <= 3);
}

TEST(pair_na_then_success) {
  static const char *const want[] = {"/mplex/6.7.0", "/tls/1.0.0", "/yamux/1.0.0", "/noise"};
  static const char *const have[] = {"/noise", "/yamux/1.0.0"};
  pair_cfg c = {0, want, 4, {have, 2}, {0}, NULL, NULL, 0};
  pair_out o;
  run_all(&c, &o);
  CHECK_EQ(o.d_err, 0);
  CHECK_EQ(o.l_err, 0);
  CHECK_STR(o.d_proto, "/yamux/1.0.0");
  CHECK_STR(o.l_proto, "/yamux/1.0.0");
  CHECK_EQ(o.d_rej, 2);
  CHECK_EQ(o.l_rej, 2);
  CHECK_EQ(o.to_l.n + o.to_d.n, 0);
}

TEST(pair_all_refused) {
  static const char *const want[] = {"/a", "/b", "/c"};
  static const char *const have[] = {"/x"};
  pair_cfg c = {0, want, 3, {have, 1}, {0}, NULL, NULL, 0};
  pair_out o;
  run_all(&c, &o);
  CHECK_EQ(o.d_err, LP2P_ERR_UNSUPPORTED);
  CHECK_EQ(o.l_err, 0); /* the listener just keeps answering "na" */
  CHECK(!o.d_done && !o.l_done);
  CHECK_EQ(o.d_rej, 3);
  CHECK_EQ(o.l_rej, 3);
}

TEST(pair_ls_then_propose) {
  static const char *const want[] = {"/ipfs/kad/1.0.0", "/ipfs/id/1.0.0"};
  static const char *const have[] = {"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0"};
  pair_cfg c = {1, want, 2, {have, 2}, {0}, NULL, NULL, 0};
  pair_out o;
  run_all(&c, &o);
  CHECK_EQ(o.d_err, 0);
  CHECK_EQ(o.l_err, 0);
  CHECK(o.list_received);
  REQUIRE(o.list_n == 2);
  CHECK_STR(o.list[0], "/ipfs/ping/1.0.0");
  CHECK_STR(o.list[1], "/ipfs/id/1.0.0");
  CHECK_STR(o.d_proto, "/ipfs/id/1.0.0");
  CHECK_STR(o.l_proto, "/ipfs/id/1.0.0");
  CHECK_EQ(o.d_rej, 1);
}

TEST(pair_ls_only) {
  static const char *const have[] = {"/a", "/b", "/c"};
  pair_cfg c = {1, NULL, 0, {have, 3}, {0}, NULL, NULL, 0};
  pair_out o;
  run_all(&c, &o);
  CHECK_EQ(o.d_err, 0);
  CHECK_EQ(o.l_err, 0);
  CHECK(o.list_received);
  CHECK_EQ(o.list_n, 3);
  CHECK_STR(o.list[2], "/c");
  CHECK(!o.d_done && !o.l_done);
}

TEST(pair_next_layer_bytes_are_kept) {
  /* lazy dialer: its Noise bytes follow the proposal; the listener's first app bytes follow the echo */
  pair_cfg c = {0, NOISE, 1, {NOISE, 1}, {0}, "\x00\x20" "ephemeral-key", "listener-data", 15};
  pair_out o;
  run_all(&c, &o);
  CHECK(o.d_done && o.l_done);
  CHECK_EQ(o.to_l.n, 15);
  CHECK_MEM(o.to_l.d, "\x00\x20" "ephemeral-key", 15);
  CHECK_EQ(o.to_d.n, 13);
  CHECK_MEM(o.to_d.d, "listener-data", 13);
  /* the same after a refusal (non-lazy dialer, listener data only) */
  static const char *const want[] = {"/tls/1.0.0", "/noise"};
  pair_cfg c2 = {0, want, 2, {NOISE, 1}, {0}, NULL, "/yamux/1.0.0\n", 0};
  run_all(&c2, &o);
  CHECK_STR(o.d_proto, "/noise");
  CHECK_EQ(o.to_d.n, 13);
  CHECK_MEM(o.to_d.d, "/yamux/1.0.0\n", 13);
}

TEST(pair_listener_attempt_limit) {
  static const char *want[40];
  static char names[40][8];
  for (int i = 0; i < 40; i++) {
    snprintf(names[i], sizeof names[i], "/p%d", i);
    want[i] = names[i];
  }
  pair_cfg c = {0, want, 40, {NOISE, 1}, {0}, NULL, NULL, 0};
  pair_out o;
  run_all(&c, &o);
  CHECK_EQ(o.l_err, LP2P_ERR_LIMIT);
  CHECK_EQ(o.d_err, 0); /* the dialer is left waiting; the caller's timeout closes the channel */
  CHECK_EQ(o.l_rej, 32);
  CHECK_EQ(o.d_rej, 32);
  pair_cfg c2 = {0, want, 40, {NOISE, 1}, {0, 5}, NULL, NULL, 0};
  run_all(&c2, &o);
  CHECK_EQ(o.l_err, LP2P_ERR_LIMIT);
  CHECK_EQ(o.d_rej, 5);
}

/* Fail each allocation of a whole negotiation in turn (both engines share the allocator): always a clean
 * LP2P_ERR_NOMEM on the side that hit it, never a crash or a leak; the last run succeeds. */
static void oom_loop(const pair_cfg *c, size_t chunk) {
  long n;
  int successes = 0, failures = 0;
  for (n = 1; n < 10000; n++) {
    failmem fm;
    failmem_init(&fm, n);
    pair_out o;
    int rv = run_pair(c, chunk, 0, &fm.mem, &o);
    CHECK_EQ(fm.live, 0);
    if (rv) {
      CHECK_EQ(rv, LP2P_ERR_NOMEM);
      failures++;
    } else if (o.d_err || o.l_err) {
      CHECK(o.d_err == LP2P_ERR_NOMEM || o.l_err == LP2P_ERR_NOMEM);
      CHECK(o.d_err == 0 || o.l_err == 0);
      CHECK(!(o.d_done && o.l_done));
      failures++;
    } else {
      CHECK(!fm.triggered);
      CHECK(o.d_done && o.l_done);
      successes++;
    }
    if (!fm.triggered) break;
  }
  CHECK_EQ(successes, 1);
  CHECK(failures >= 4);
  CHECK(n < 10000);
}

TEST(pair_allocation_failure) {
  static const char *const want[] = {"/mplex/6.7.0", "/yamux/1.0.0"};
  static const char *const have[] = {"/yamux/1.0.0", "/ipfs/id/1.0.0"};
  pair_cfg c = {0, want, 2, {have, 2}, {0}, NULL, NULL, 0};
  pair_cfg ls = {1, want, 2, {have, 2}, {0}, NULL, NULL, 0};
  oom_loop(&c, 0);
  oom_loop(&c, 1); /* byte by byte: the line buffers allocate too */
  oom_loop(&ls, 0);
  oom_loop(&ls, 3);
}

int main(void) {
  RUN(pair_first_choice);
  RUN(pair_na_then_success);
  RUN(pair_all_refused);
  RUN(pair_ls_then_propose);
  RUN(pair_ls_only);
  RUN(pair_next_layer_bytes_are_kept);
  RUN(pair_listener_attempt_limit);
  RUN(pair_allocation_failure);
  return test_done();
}
