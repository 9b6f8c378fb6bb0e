/* test_mss.c - multistream-select engine: vectors, dialer/lister/listener behaviour, limits and malformed
 * input. Every scenario that feeds input is run with the input whole, split at every byte offset, and
 * byte by byte, and must give the same result each time. */
#include "core/mss_int.h"
#include "failmem.h"
#include "json.h"
#include "lp2p/encoding.h"
#include "lp2p/mss.h"
#include "test.h"

/* ---- byte builder ---- */

typedef struct bb {
  uint8_t d[16384];
  size_t n;
} bb;

static void bb_raw(bb *b, const void *p, size_t n) {
  if (b->n + n > sizeof b->d) abort();
  memcpy(b->d + b->n, p, n);
  b->n += n;
}
static void bb_byte(bb *b, uint8_t c) { bb_raw(b, &c, 1); }
static void bb_varint(bb *b, uint64_t v) {
  uint8_t t[LP2P_UVARINT_MAX_LEN];
  int n = lp2p_uvarint_encode(v, t, sizeof t);
  if (n <= 0) abort();
  bb_raw(b, t, (size_t)n);
}
/* One multistream message: varint(len+1) text '\n'. */
static void bb_line(bb *b, const char *text) {
  bb_varint(b, strlen(text) + 1);
  bb_raw(b, text, strlen(text));
  bb_byte(b, '\n');
}
static void bb_hex(bb *b, const char *hex) {
  size_t n;
  uint8_t *p = hex_to_bytes(hex, &n);
  if (!p) abort();
  bb_raw(b, p, n);
  free(p);
}

/* ---- registry used by listeners ---- */

typedef struct reg_ctx {
  const char *const *ids; /* supported */
  size_t n;
  const char *const *list; /* answered to "ls" (defaults to ids) */
  size_t list_n;
  int use_list;
  int calls;
} reg_ctx;

static int reg_supports(void *ud, const char *p, size_t len) {
  reg_ctx *r = ud;
  r->calls++;
  for (size_t i = 0; i < r->n; i++)
    if (strlen(r->ids[i]) == len && !memcmp(r->ids[i], p, len)) return 1;
  return 0;
}
static size_t reg_list(void *ud, const char **out, size_t max) {
  reg_ctx *r = ud;
  const char *const *src = r->use_list ? r->list : r->ids;
  size_t n = r->use_list ? r->list_n : r->n;
  for (size_t i = 0; i < n && i < max; i++) out[i] = src[i];
  return n < max ? n : max;
}

/* ---- scenarios ---- */

enum { K_DIALER, K_LISTER, K_LISTENER, K_LISTENER_NOLS };

typedef struct scen {
  int kind;
  const char *const *protos; /* dialer / lister proposals */
  size_t n;
  reg_ctx *reg; /* listener */
  lp2p_mss_limits lim;
  const lp2p_mem *mem;
} scen;

static int scen_new(const scen *s, lp2p_mss **m) {
  lp2p_mss_registry reg = {reg_supports, s->kind == K_LISTENER_NOLS ? NULL : reg_list};
  switch (s->kind) {
  case K_DIALER: return lp2p_mss_new_dialer(m, s->protos, s->n, &s->lim, s->mem);
  case K_LISTER: return lp2p_mss_new_lister(m, s->protos, s->n, &s->lim, s->mem);
  default: return lp2p_mss_new_listener(m, &reg, s->reg, &s->lim, s->mem);
  }
}

typedef struct run_out {
  int64_t rv; /* first error, or total bytes consumed */
  bb out;     /* everything the engine output, from creation on */
  int done;
  char proto[2048];
} run_out;

static void drain(lp2p_mss *m, run_out *r, int piecewise) {
  const uint8_t *p;
  size_t n;
  while ((n = lp2p_mss_output(m, &p)) > 0) {
    size_t k = piecewise ? 1 : n; /* also exercise partial output_consumed */
    bb_raw(&r->out, p, k);
    lp2p_mss_output_consumed(m, k);
  }
}

/* Feeds in[0..len): whole (split == 0, bytewise == 0), as [0,split) + [split,len), or byte by byte. */
static int run_once(const scen *s, const uint8_t *in, size_t len, size_t split, int bytewise, int piecewise,
                    run_out *r) {
  memset(r, 0, sizeof *r);
  lp2p_mss *m;
  int rv = scen_new(s, &m);
  if (rv) return rv;
  drain(m, r, piecewise);
  size_t pos = 0;
  while (pos < len) {
    size_t end = bytewise ? pos + 1 : (split && pos < split ? split : len);
    int64_t c = lp2p_mss_feed(m, in + pos, end - pos);
    drain(m, r, piecewise);
    if (c < 0) {
      r->rv = c;
      /* errors are sticky */
      if (lp2p_mss_feed(m, in, len) != c || lp2p_mss_error(m) != c) r->rv = 12345;
      break;
    }
    r->rv += c;
    if ((size_t)c < end - pos) {
      /* stopped consuming: it must stay stopped */
      if (lp2p_mss_feed(m, in + pos + c, end - pos - (size_t)c) != 0) r->rv = 54321;
      break;
    }
    pos = end;
  }
  r->done = lp2p_mss_done(m);
  if (r->done) snprintf(r->proto, sizeof r->proto, "%s", lp2p_mss_protocol(m));
  else if (lp2p_mss_protocol(m)) r->rv = 99999;
  lp2p_mss_free(m);
  return 0;
}

/* Runs s over in whole, at every split and byte by byte; every run must give want_rv, the output want_out
 * (when non-NULL) and the agreed protocol want_proto (NULL = not done). Returns the number of bad runs. */
static int check_scen_at(const char *file, int line, const scen *s, const uint8_t *in, size_t len, int64_t want_rv,
                         const bb *want_out, const char *want_proto) {
  static run_out r;
  int bad = 0;
  for (size_t mode = 0; mode <= len + 1; mode++) {
    /* mode 0: whole; 1..len-1: split there; len: byte by byte; len+1: whole, output taken byte by byte */
    size_t split = mode > 0 && mode < len ? mode : 0;
    int bytewise = mode == len;
    if (run_once(s, in, len, split, bytewise, mode == len + 1, &r)) {
      fprintf(stderr, "  %s:%d: create failed\n", file, line);
      return 1;
    }
    int ok = r.rv == want_rv && (!want_out || (r.out.n == want_out->n && !memcmp(r.out.d, want_out->d, r.out.n))) &&
             (want_proto ? r.done && !strcmp(r.proto, want_proto) : !r.done);
    if (!ok) {
      fprintf(stderr, "  %s:%d: mode %zu (split %zu, bytewise %d): rv %lld want %lld, out %zu bytes want %zu, "
              "done %d proto '%s'\n", file, line, mode, split, bytewise, (long long)r.rv, (long long)want_rv,
              r.out.n, want_out ? want_out->n : 0, r.done, r.proto);
      bad++;
      if (bad > 3) break;
    }
  }
  return bad;
}
#define CHECK_SCEN(s, in, want_rv, want_out, want_proto) \
  CHECK(check_scen_at(__FILE__, __LINE__, (s), (in)->d, (in)->n, (want_rv), (want_out), (want_proto)) == 0)

static const char *const NOISE[] = {"/noise"};
static const char *const AB[] = {"/a", "/b"};

/* ---- vectors ---- */

static json *vec;
static const char *flow_hex(const char *prefix) {
  json *flows = json_get(vec, "flows");
  for (size_t i = 0; flows && i < flows->n; i++) {
    const char *name = json_str(json_at(flows, i), "name");
    if (name && !strncmp(name, prefix, strlen(prefix))) return json_str(json_at(flows, i), "hex");
  }
  return NULL;
}

TEST(vector_messages_encode) {
  json *msgs = json_get(vec, "messages");
  REQUIRE(msgs && msgs->n >= 10);
  for (size_t i = 0; i < msgs->n; i++) {
    const char *text = json_str(json_at(msgs, i), "text");
    size_t n;
    uint8_t *want = json_hex(json_at(msgs, i), "hex", &n);
    REQUIRE(text && want);
    lp2p_bytes b = {0};
    CHECK_OK(lp2p__mss_put_line(lp2p_mem_default(), &b, text, strlen(text)));
    CHECK_EQ(b.len, n);
    if (b.len == n) CHECK_MEM(b.data, want, n);
    lp2p__bytes_free(lp2p_mem_default(), &b);
    free(want);
  }
}

/* Each vector message, sent by a dialer after the header, gets the right listener answer; each protocol
 * message, echoed by a listener, completes a dialer proposing it. */
TEST(vector_messages_both_roles) {
  json *msgs = json_get(vec, "messages");
  REQUIRE(msgs);
  const char *protos[32];
  size_t np = 0;
  for (size_t i = 0; i < msgs->n && np < 32; i++) {
    const char *t = json_str(json_at(msgs, i), "text");
    if (t[0] == '/' && strcmp(t, LP2P_MSS_PROTOCOL_ID)) protos[np++] = t;
  }
  CHECK(np >= 8);
  reg_ctx reg = {protos, np, NULL, 0, 0, 0};
  for (size_t i = 0; i < msgs->n; i++) {
    const char *text = json_str(json_at(msgs, i), "text");
    const char *hex = json_str(json_at(msgs, i), "hex");
    bb in = {0}, want = {0};
    bb_line(&in, LP2P_MSS_PROTOCOL_ID);
    bb_hex(&in, hex);
    bb_line(&want, LP2P_MSS_PROTOCOL_ID);
    scen ls = {K_LISTENER, NULL, 0, &reg, {0}, NULL};
    if (!strcmp(text, "ls")) {
      bb body = {0};
      for (size_t k = 0; k < np; k++) bb_line(&body, protos[k]);
      bb_byte(&body, '\n');
      bb_varint(&want, body.n);
      bb_raw(&want, body.d, body.n);
      CHECK_SCEN(&ls, &in, (int64_t)in.n, &want, NULL);
    } else if (!strcmp(text, "na") || !strcmp(text, LP2P_MSS_PROTOCOL_ID)) {
      bb_line(&want, "na");
      CHECK_SCEN(&ls, &in, (int64_t)in.n, &want, NULL);
    } else {
      bb_hex(&want, hex); /* echo == the vector bytes */
      CHECK_SCEN(&ls, &in, (int64_t)in.n, &want, text);
      /* dialer side */
      const char *one[] = {text};
      scen d = {K_DIALER, one, 1, NULL, {0}, NULL};
      bb din = {0}, dwant = {0};
      bb_line(&din, LP2P_MSS_PROTOCOL_ID);
      bb_hex(&din, hex);
      bb_line(&dwant, LP2P_MSS_PROTOCOL_ID);
      bb_hex(&dwant, hex);
      CHECK_SCEN(&d, &din, (int64_t)din.n, &dwant, text);
    }
  }
}

TEST(vector_dialer_first_flight) {
  const char *hex = flow_hex("dialer first flight");
  REQUIRE(hex);
  bb want = {0};
  bb_hex(&want, hex);
  lp2p_mss *m;
  CHECK_OK(lp2p_mss_new_dialer(&m, NOISE, 1, NULL, NULL));
  const uint8_t *p;
  size_t n = lp2p_mss_output(m, &p);
  CHECK_EQ(n, want.n);
  if (n == want.n) CHECK_MEM(p, want.d, n);
  CHECK(!lp2p_mss_done(m));
  CHECK(lp2p_mss_is_dialer(m));
  lp2p_mss_free(m);
}

TEST(vector_listener_accepts_noise) {
  const char *in_hex = flow_hex("dialer first flight"), *out_hex = flow_hex("listener reply accepting");
  REQUIRE(in_hex && out_hex);
  bb in = {0}, want = {0};
  bb_hex(&in, in_hex);
  bb_hex(&want, out_hex);
  reg_ctx reg = {NOISE, 1, NULL, 0, 0, 0};
  scen s = {K_LISTENER, NULL, 0, &reg, {0}, NULL};
  CHECK_SCEN(&s, &in, (int64_t)in.n, &want, "/noise");
  /* and the dialer accepts that reply (output = its first flight only) */
  scen d = {K_DIALER, NOISE, 1, NULL, {0}, NULL};
  bb first = {0};
  bb_hex(&first, in_hex);
  CHECK_SCEN(&d, &want, (int64_t)want.n, &first, "/noise");
}

TEST(vector_listener_rejects_noise) {
  const char *in_hex = flow_hex("dialer first flight"), *out_hex = flow_hex("listener reply rejecting");
  REQUIRE(in_hex && out_hex);
  bb in = {0}, want = {0};
  bb_hex(&in, in_hex);
  bb_hex(&want, out_hex);
  static const char *const other[] = {"/tls/1.0.0"};
  reg_ctx reg = {other, 1, NULL, 0, 0, 0};
  scen s = {K_LISTENER, NULL, 0, &reg, {0}, NULL};
  CHECK_SCEN(&s, &in, (int64_t)in.n, &want, NULL);
  /* a dialer with only /noise gets that reply: unsupported */
  scen d = {K_DIALER, NOISE, 1, NULL, {0}, NULL};
  CHECK_SCEN(&d, &want, LP2P_ERR_UNSUPPORTED, NULL, NULL);
}

static const char *const PING_ID[] = {"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0"};

TEST(vector_ls_response) {
  const char *hex = flow_hex("ls response body");
  REQUIRE(hex);
  reg_ctx reg = {PING_ID, 2, NULL, 0, 0, 0};
  scen s = {K_LISTENER, NULL, 0, &reg, {0}, NULL};
  bb in = {0}, want = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  bb_line(&in, "ls");
  bb_line(&want, LP2P_MSS_PROTOCOL_ID);
  bb_hex(&want, hex);
  CHECK_SCEN(&s, &in, (int64_t)in.n, &want, NULL);

  /* the lister parses it */
  bb reply = {0};
  bb_line(&reply, LP2P_MSS_PROTOCOL_ID);
  bb_hex(&reply, hex);
  lp2p_mss *m;
  CHECK_OK(lp2p_mss_new_lister(&m, NULL, 0, NULL, NULL));
  const uint8_t *p;
  size_t n = lp2p_mss_output(m, &p);
  bb first = {0};
  bb_line(&first, LP2P_MSS_PROTOCOL_ID);
  bb_line(&first, "ls");
  CHECK_EQ(n, first.n);
  if (n == first.n) CHECK_MEM(p, first.d, n);
  CHECK(!lp2p_mss_list_received(m));
  CHECK_EQ(lp2p_mss_feed(m, reply.d, reply.n), reply.n);
  CHECK(lp2p_mss_list_received(m));
  CHECK(!lp2p_mss_done(m));
  REQUIRE(lp2p_mss_list_count(m) == 2);
  CHECK_STR(lp2p_mss_list_at(m, 0), "/ipfs/ping/1.0.0");
  CHECK_STR(lp2p_mss_list_at(m, 1), "/ipfs/id/1.0.0");
  CHECK(lp2p_mss_list_at(m, 2) == NULL);
  /* nothing more is consumed */
  CHECK_EQ(lp2p_mss_feed(m, (const uint8_t *)"xyz", 3), 0);
  lp2p_mss_free(m);
  /* lister without proposals, all splits: consumes exactly the reply, output = first flight */
  scen ls = {K_LISTER, NULL, 0, NULL, {0}, NULL};
  bb tail = reply;
  bb_raw(&tail, "tail", 4);
  CHECK_SCEN(&ls, &tail, (int64_t)reply.n, &first, NULL);
}

/* ---- dialer ---- */

TEST(dialer_na_then_second) {
  scen s = {K_DIALER, AB, 2, NULL, {0}, NULL};
  bb in = {0}, want = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  bb_line(&in, "na");
  bb_line(&in, "/b");
  bb_line(&want, LP2P_MSS_PROTOCOL_ID);
  bb_line(&want, "/a");
  bb_line(&want, "/b");
  CHECK_SCEN(&s, &in, (int64_t)in.n, &want, "/b");
}

TEST(dialer_all_refused_is_unsupported) {
  scen s = {K_DIALER, AB, 2, NULL, {0}, NULL};
  bb in = {0}, want = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  bb_line(&in, "na");
  bb_line(&in, "na");
  bb_line(&want, LP2P_MSS_PROTOCOL_ID);
  bb_line(&want, "/a");
  bb_line(&want, "/b");
  CHECK_SCEN(&s, &in, LP2P_ERR_UNSUPPORTED, &want, NULL);
  lp2p_mss *m;
  CHECK_OK(lp2p_mss_new_dialer(&m, AB, 2, NULL, NULL));
  CHECK_EQ(lp2p_mss_feed(m, in.d, in.n), LP2P_ERR_UNSUPPORTED);
  CHECK_EQ(lp2p_mss_rejections(m), 2);
  CHECK_EQ(lp2p_mss_error(m), LP2P_ERR_UNSUPPORTED);
  lp2p_mss_free(m);
}

TEST(dialer_keeps_next_layer_bytes) {
  scen s = {K_DIALER, NOISE, 1, NULL, {0}, NULL};
  bb in = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  bb_line(&in, "/noise");
  size_t negotiated = in.n;
  bb_raw(&in, "\x00\x20noise-bytes", 13);
  CHECK_SCEN(&s, &in, (int64_t)negotiated, NULL, "/noise");
  /* the tail that looks like a multistream message is not consumed either */
  bb in2 = {0};
  bb_line(&in2, LP2P_MSS_PROTOCOL_ID);
  bb_line(&in2, "/noise");
  bb_line(&in2, "na");
  CHECK_SCEN(&s, &in2, (int64_t)negotiated, NULL, "/noise");
}

TEST(dialer_bad_answers) {
  scen s = {K_DIALER, AB, 2, NULL, {0}, NULL};
  const char *bad_answers[] = {"/b", "/aa", "NA", "ls", "", LP2P_MSS_PROTOCOL_ID};
  for (size_t i = 0; i < sizeof bad_answers / sizeof *bad_answers; i++) {
    bb in = {0};
    bb_line(&in, LP2P_MSS_PROTOCOL_ID);
    bb_line(&in, bad_answers[i]);
    CHECK_SCEN(&s, &in, LP2P_ERR_PROTO, NULL, NULL);
  }
}

TEST(wrong_header_both_roles) {
  reg_ctx reg = {NOISE, 1, NULL, 0, 0, 0};
  scen roles[] = {{K_DIALER, NOISE, 1, NULL, {0}, NULL}, {K_LISTENER, NULL, 0, &reg, {0}, NULL},
                  {K_LISTER, NOISE, 1, NULL, {0}, NULL}};
  for (size_t r = 0; r < 3; r++) {
    struct {
      const char *first;
      int64_t want;
    } cases[] = {{"/multistream/2.0.0", LP2P_ERR_UNSUPPORTED}, {"/multistream/1.0", LP2P_ERR_UNSUPPORTED},
                 {"/noise", LP2P_ERR_PROTO},      {"/multistream/", LP2P_ERR_PROTO},
                 {"/multistream/1.0.0 ", LP2P_ERR_UNSUPPORTED}, {"na", LP2P_ERR_PROTO},
                 {"", LP2P_ERR_PROTO}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
      bb in = {0};
      bb_line(&in, cases[i].first);
      bb_line(&in, "/noise");
      CHECK_SCEN(&roles[r], &in, cases[i].want, NULL, NULL);
    }
    /* header without its newline */
    bb in = {0};
    bb_varint(&in, 19);
    bb_raw(&in, LP2P_MSS_PROTOCOL_ID "X", 19);
    CHECK_SCEN(&roles[r], &in, LP2P_ERR_PROTO, NULL, NULL);
  }
}

TEST(dialer_create_errors) {
  lp2p_mss *m = (lp2p_mss *)1;
  CHECK_EQ(lp2p_mss_new_dialer(&m, NULL, 1, NULL, NULL), LP2P_ERR_INVAL);
  CHECK(m == NULL);
  CHECK_EQ(lp2p_mss_new_dialer(&m, NOISE, 0, NULL, NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_mss_new_dialer(NULL, NOISE, 1, NULL, NULL), LP2P_ERR_INVAL);
  const char *bad[][2] = {{"/ok", ""}, {"/ok", "/a\nb"}, {"na", "/ok"}, {"/ok", "ls"}, {"/ok", NULL}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    CHECK_EQ(lp2p_mss_new_dialer(&m, bad[i], 2, NULL, NULL), LP2P_ERR_INVAL);
  static char big[1025];
  memset(big, 'x', 1024);
  big[0] = '/';
  const char *one[] = {big};
  CHECK_EQ(lp2p_mss_new_dialer(&m, one, 1, NULL, NULL), LP2P_ERR_TOO_LARGE); /* 1024 + '\n' > 1024 */
  big[1023] = 0;
  CHECK_OK(lp2p_mss_new_dialer(&m, one, 1, NULL, NULL)); /* 1023 + '\n' fits */
  lp2p_mss_free(m);
  lp2p_mss_limits small = {18, 0};
  CHECK_EQ(lp2p_mss_new_dialer(&m, NOISE, 1, &small, NULL), LP2P_ERR_INVAL);
  small.max_line = 19;
  CHECK_OK(lp2p_mss_new_dialer(&m, NOISE, 1, &small, NULL));
  lp2p_mss_free(m);
  lp2p_mss_free(NULL);
  /* the ids are copied */
  char buf[8] = "/copy";
  const char *cp[] = {buf};
  CHECK_OK(lp2p_mss_new_dialer(&m, cp, 1, NULL, NULL));
  strcpy(buf, "/zzzz");
  bb in = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  bb_line(&in, "/copy");
  CHECK_EQ(lp2p_mss_feed(m, in.d, in.n), in.n);
  CHECK_STR(lp2p_mss_protocol(m), "/copy");
  lp2p_mss_free(m);
}

/* ---- listener ---- */

TEST(listener_lazy_dialer_pipelined_bytes) {
  reg_ctx reg = {NOISE, 1, NULL, 0, 0, 0};
  scen s = {K_LISTENER, NULL, 0, &reg, {0}, NULL};
  bb in = {0}, want = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  bb_line(&in, "/noise");
  size_t negotiated = in.n;
  uint8_t eph[34] = {0x00, 0x20};
  for (int i = 2; i < 34; i++) eph[i] = (uint8_t)(i * 7);
  bb_raw(&in, eph, sizeof eph);
  bb_line(&want, LP2P_MSS_PROTOCOL_ID);
  bb_line(&want, "/noise");
  CHECK_SCEN(&s, &in, (int64_t)negotiated, &want, "/noise");
}

TEST(listener_na_then_accept) {
  static const char *const sup[] = {"/yamux/1.0.0", "/b"};
  reg_ctx reg = {sup, 2, NULL, 0, 0, 0};
  scen s = {K_LISTENER, NULL, 0, &reg, {0}, NULL};
  bb in = {0}, want = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  bb_line(&in, "/mplex/6.7.0");
  bb_line(&in, "/a");
  bb_line(&in, "/yamux/1.0.0");
  bb_line(&in, "/b"); /* next layer */
  bb_line(&want, LP2P_MSS_PROTOCOL_ID);
  bb_line(&want, "na");
  bb_line(&want, "na");
  bb_line(&want, "/yamux/1.0.0");
  CHECK_SCEN(&s, &in, (int64_t)(in.n - 4), &want, "/yamux/1.0.0");
  lp2p_mss *m;
  lp2p_mss_registry r = {reg_supports, NULL};
  CHECK_OK(lp2p_mss_new_listener(&m, &r, &reg, NULL, NULL));
  const uint8_t *p;
  CHECK_EQ(lp2p_mss_output(m, &p), 0); /* nothing before the dialer's header */
  CHECK_EQ(lp2p_mss_feed(m, in.d, in.n), in.n - 4);
  CHECK_EQ(lp2p_mss_rejections(m), 2);
  CHECK(!lp2p_mss_is_dialer(m));
  CHECK_STR(lp2p_mss_protocol(m), "/yamux/1.0.0");
  lp2p_mss_free(m);
}

TEST(listener_never_asks_registry_about_na_or_ls) {
  static const char *const all[] = {"na", "ls", "/x"};
  reg_ctx reg = {all, 3, NULL, 0, 0, 0};
  scen s = {K_LISTENER_NOLS, NULL, 0, &reg, {0}, NULL};
  bb in = {0}, want = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  bb_line(&in, "na");
  bb_line(&in, "ls");
  bb_line(&in, "/x");
  bb_line(&want, LP2P_MSS_PROTOCOL_ID);
  bb_line(&want, "na");
  bb_line(&want, "na"); /* no list callback: "ls" gets "na" */
  bb_line(&want, "/x");
  CHECK_SCEN(&s, &in, (int64_t)in.n, &want, "/x");
}

TEST(listener_attempt_limit) {
  reg_ctx reg = {NOISE, 1, NULL, 0, 0, 0};
  scen s = {K_LISTENER, NULL, 0, &reg, {0, 3}, NULL};
  bb in = {0}, want = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  bb_line(&want, LP2P_MSS_PROTOCOL_ID);
  bb_line(&in, "/x");
  bb_line(&want, "na");
  bb_line(&in, "ls"); /* "ls" counts as an attempt */
  bb_varint(&want, 9);
  bb_line(&want, "/noise");
  bb_byte(&want, '\n');
  bb_line(&in, "/y");
  bb_line(&want, "na");
  bb ok = in;
  bb_line(&ok, "/noise");
  bb okwant = want;
  bb_line(&okwant, "/noise");
  CHECK_SCEN(&s, &ok, (int64_t)ok.n, &okwant, "/noise"); /* 3 attempts, then success */
  bb_line(&in, "/z");
  bb_line(&in, "/noise");
  CHECK_SCEN(&s, &in, LP2P_ERR_LIMIT, &want, NULL); /* 4th attempt fails, no 4th answer */
  /* default limit: 32 */
  scen d = {K_LISTENER, NULL, 0, &reg, {0}, NULL};
  bb many = {0};
  bb_line(&many, LP2P_MSS_PROTOCOL_ID);
  for (int i = 0; i < 32; i++) bb_line(&many, "/nope");
  bb fine = many;
  bb_line(&fine, "/noise");
  CHECK_SCEN(&d, &fine, (int64_t)fine.n, NULL, "/noise");
  bb_line(&many, "/nope");
  CHECK_SCEN(&d, &many, LP2P_ERR_LIMIT, NULL, NULL);
}

TEST(listener_create_errors) {
  lp2p_mss *m = (lp2p_mss *)1;
  lp2p_mss_registry r = {NULL, reg_list};
  CHECK_EQ(lp2p_mss_new_listener(&m, &r, NULL, NULL, NULL), LP2P_ERR_INVAL);
  CHECK(m == NULL);
  CHECK_EQ(lp2p_mss_new_listener(&m, NULL, NULL, NULL, NULL), LP2P_ERR_INVAL);
  r.supports = reg_supports;
  lp2p_mss_limits lim = {5, 0};
  CHECK_EQ(lp2p_mss_new_listener(&m, &r, NULL, &lim, NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_mss_new_listener(NULL, &r, NULL, NULL, NULL), LP2P_ERR_INVAL);
}

TEST(listener_ls_filters_and_caps) {
  static const char *const list[] = {"/p1", "", "/bad\nid", "/p2", "/p3"};
  reg_ctx reg = {NOISE, 1, list, 5, 1, 0};
  bb in = {0}, want = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  bb_line(&in, "ls");
  bb_line(&want, LP2P_MSS_PROTOCOL_ID);
  bb_varint(&want, 5 * 3 + 1);
  bb_line(&want, "/p1");
  bb_line(&want, "/p2");
  bb_line(&want, "/p3");
  bb_byte(&want, '\n');
  scen s = {K_LISTENER, NULL, 0, &reg, {0}, NULL};
  CHECK_SCEN(&s, &in, (int64_t)in.n, &want, NULL);
  /* body capped at max_line = 19: 1 + 3 * 5 = 16 fits, a fourth 5-byte entry would not; ids longer than
   * 18 bytes are skipped, the first id that would overflow ends the list */
  static const char *const list2[] = {"/p1", "/an-id-that-is-too-long", "/p2", "/p3", "/p4", "/p5"};
  reg_ctx reg2 = {NOISE, 1, list2, 6, 1, 0};
  scen s2 = {K_LISTENER, NULL, 0, &reg2, {19, 0}, NULL};
  bb want2 = {0};
  bb_line(&want2, LP2P_MSS_PROTOCOL_ID);
  bb_varint(&want2, 16);
  bb_line(&want2, "/p1");
  bb_line(&want2, "/p2");
  bb_line(&want2, "/p3");
  bb_byte(&want2, '\n');
  CHECK_SCEN(&s2, &in, (int64_t)in.n, &want2, NULL);
  /* empty list: body is a bare newline */
  reg_ctx reg3 = {NOISE, 1, NULL, 0, 1, 0};
  scen s3 = {K_LISTENER, NULL, 0, &reg3, {0}, NULL};
  bb want3 = {0};
  bb_line(&want3, LP2P_MSS_PROTOCOL_ID);
  bb_raw(&want3, "\x01\n", 2);
  CHECK_SCEN(&s3, &in, (int64_t)in.n, &want3, NULL);
}

/* ---- lister ---- */

TEST(lister_then_proposals) {
  scen s = {K_LISTER, AB, 2, NULL, {0}, NULL};
  bb in = {0}, want = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  bb_raw(&in, "\x09\x03/x\n\x03/b\n\n", 10);
  bb_line(&in, "na");
  bb_line(&in, "/b");
  bb_line(&want, LP2P_MSS_PROTOCOL_ID);
  bb_line(&want, "ls");
  bb_line(&want, "/a");
  bb_line(&want, "/b");
  CHECK_SCEN(&s, &in, (int64_t)in.n, &want, "/b");
  lp2p_mss *m;
  CHECK_OK(lp2p_mss_new_lister(&m, AB, 2, NULL, NULL));
  CHECK_EQ(lp2p_mss_feed(m, in.d, in.n), in.n);
  CHECK_EQ(lp2p_mss_list_count(m), 2);
  CHECK_STR(lp2p_mss_list_at(m, 1), "/b");
  lp2p_mss_free(m);
}

TEST(lister_ls_refused) {
  scen s = {K_LISTER, AB, 2, NULL, {0}, NULL};
  bb in = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  bb_line(&in, "na"); /* go-style: ls not implemented */
  bb_line(&in, "/a");
  CHECK_SCEN(&s, &in, (int64_t)in.n, NULL, "/a");
  lp2p_mss *m;
  CHECK_OK(lp2p_mss_new_lister(&m, AB, 2, NULL, NULL));
  CHECK_EQ(lp2p_mss_feed(m, in.d, in.n), in.n);
  CHECK(lp2p_mss_list_received(m));
  CHECK_EQ(lp2p_mss_list_count(m), 0);
  CHECK_EQ(lp2p_mss_rejections(m), 1);
  lp2p_mss_free(m);
}

TEST(lister_malformed_lists) {
  scen s = {K_LISTER, NULL, 0, NULL, {0}, NULL};
  const char *bodies[] = {
      "0103",                /* body "\x03": no final newline */
      "0203" "0a",           /* entry overruns the body */
      "03010a0a",            /* empty entry */
      "04032f610a",          /* no final bare newline after the entry (body ends "/a\n") */
      "0604" "2f610a0a0a",   /* entry with inner newline: "/a\n\n" */
      "0683002f610a0a",      /* non-minimal inner varint */
      "05032f61780a",        /* entry without its newline */
      "0503002f0a0a",        /* NUL inside an entry -> still must be rejected */
  };
  for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
    bb in = {0};
    bb_line(&in, LP2P_MSS_PROTOCOL_ID);
    bb_hex(&in, bodies[i]);
    CHECK_SCEN(&s, &in, LP2P_ERR_PROTO, NULL, NULL);
  }
  /* a list body bigger than max_line */
  bb in = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  bb_varint(&in, 1025);
  CHECK_SCEN(&s, &in, LP2P_ERR_TOO_LARGE, NULL, NULL);
}

/* ---- framing and limits (listener and dialer) ---- */

TEST(line_length_cap) {
  reg_ctx reg = {NOISE, 1, NULL, 0, 0, 0};
  scen l = {K_LISTENER, NULL, 0, &reg, {0}, NULL};
  scen d = {K_DIALER, NOISE, 1, NULL, {0}, NULL};
  static char id[1100];
  memset(id, 'x', sizeof id - 1);
  id[0] = '/';
  /* 1023 chars + newline = 1024: allowed (answered "na") */
  id[1023] = 0;
  bb in = {0}, want = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  bb_line(&in, id);
  bb_line(&want, LP2P_MSS_PROTOCOL_ID);
  bb_line(&want, "na");
  CHECK_SCEN(&l, &in, (int64_t)in.n, &want, NULL);
  CHECK_SCEN(&d, &in, LP2P_ERR_PROTO, NULL, NULL); /* dialer: a valid-size but unexpected answer */
  /* 1024 chars: too large, detected from the length prefix alone */
  id[1023] = 'x';
  id[1024] = 0;
  bb big = {0};
  bb_line(&big, LP2P_MSS_PROTOCOL_ID);
  bb_line(&big, id);
  CHECK_SCEN(&l, &big, LP2P_ERR_TOO_LARGE, NULL, NULL);
  CHECK_SCEN(&d, &big, LP2P_ERR_TOO_LARGE, NULL, NULL);
  bb prefix_only = {0};
  bb_line(&prefix_only, LP2P_MSS_PROTOCOL_ID);
  bb_varint(&prefix_only, 1025);
  CHECK_SCEN(&l, &prefix_only, LP2P_ERR_TOO_LARGE, NULL, NULL);
  /* the header itself is checked against the cap too */
  bb huge_first = {0};
  bb_varint(&huge_first, (uint64_t)1 << 40);
  CHECK_SCEN(&l, &huge_first, LP2P_ERR_TOO_LARGE, NULL, NULL);
  CHECK_SCEN(&d, &huge_first, LP2P_ERR_TOO_LARGE, NULL, NULL);
  /* custom cap */
  scen l2 = {K_LISTENER, NULL, 0, &reg, {32, 0}, NULL};
  bb c = {0};
  bb_line(&c, LP2P_MSS_PROTOCOL_ID);
  bb_line(&c, "/0123456789012345678901234567890"); /* 32 chars + newline = 33 */
  CHECK_SCEN(&l2, &c, LP2P_ERR_TOO_LARGE, NULL, NULL);
}

TEST(malformed_framing) {
  reg_ctx reg = {NOISE, 1, NULL, 0, 0, 0};
  scen roles[] = {{K_LISTENER, NULL, 0, &reg, {0}, NULL}, {K_DIALER, NOISE, 1, NULL, {0}, NULL}};
  const char *after_header[] = {
      "00",                 /* zero-length message */
      "8000",               /* non-minimal varint */
      "ffffffffffffffffff", /* 9 continuation bytes */
      "036e6178",           /* "nax": no trailing newline */
      "042f0a610a",         /* newline inside the id */
      "010a",               /* empty id */
      "032f000a",           /* NUL inside the id */
  };
  for (size_t r = 0; r < 2; r++) {
    for (size_t i = 0; i < sizeof after_header / sizeof *after_header; i++) {
      bb in = {0};
      bb_line(&in, LP2P_MSS_PROTOCOL_ID);
      bb_hex(&in, after_header[i]);
      CHECK_SCEN(&roles[r], &in, LP2P_ERR_PROTO, NULL, NULL);
    }
    bb first = {0};
    bb_hex(&first, "00");
    CHECK_SCEN(&roles[r], &first, LP2P_ERR_PROTO, NULL, NULL);
  }
}

TEST(partial_input_is_buffered) {
  /* input ending mid-message: all consumed, not done, no error */
  reg_ctx reg = {NOISE, 1, NULL, 0, 0, 0};
  scen l = {K_LISTENER, NULL, 0, &reg, {0}, NULL};
  bb in = {0}, want = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  bb_raw(&in, "\x07/noi", 5);
  bb_line(&want, LP2P_MSS_PROTOCOL_ID);
  CHECK_SCEN(&l, &in, (int64_t)in.n, &want, NULL);
  bb v = {0};
  bb_line(&v, LP2P_MSS_PROTOCOL_ID);
  bb_raw(&v, "\x80", 1); /* incomplete varint */
  CHECK_SCEN(&l, &v, (int64_t)v.n, &want, NULL);
  /* empty feed */
  lp2p_mss *m;
  lp2p_mss_registry r = {reg_supports, NULL};
  CHECK_OK(lp2p_mss_new_listener(&m, &r, &reg, NULL, NULL));
  CHECK_EQ(lp2p_mss_feed(m, NULL, 0), 0);
  CHECK_EQ(lp2p_mss_feed(m, NULL, 1), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_mss_feed(NULL, in.d, 1), LP2P_ERR_INVAL);
  CHECK(lp2p_mss_protocol(m) == NULL);
  lp2p_mss_free(m);
}

/* lp2p_mss_memory (what the swarm charges a negotiating stream): counts the object, the partial line
 * buffered (up to max_line) and the unsent answers, and stays bounded whatever the peer sends. */
TEST(memory_reported_and_bounded) {
  reg_ctx reg = {NOISE, 1, NULL, 0, 0, 0};
  lp2p_mss *m;
  lp2p_mss_registry r = {reg_supports, NULL};
  CHECK_EQ(lp2p_mss_memory(NULL), 0);
  CHECK_OK(lp2p_mss_new_listener(&m, &r, &reg, NULL, NULL));
  size_t m0 = lp2p_mss_memory(m);
  CHECK(m0 > 0);
  bb in = {0};
  bb_line(&in, LP2P_MSS_PROTOCOL_ID);
  CHECK_EQ(lp2p_mss_feed(m, in.d, in.n), (int64_t)in.n);
  /* a 900-byte proposal, sent in part: buffered and counted */
  uint8_t big[903];
  big[0] = 0x85;
  big[1] = 0x07; /* 901 = 900 bytes + '\n' */
  memset(big + 2, 'x', sizeof big - 2);
  CHECK_EQ(lp2p_mss_feed(m, big, 600), 600);
  CHECK(lp2p_mss_memory(m) >= m0 + 598);
  big[sizeof big - 1] = '\n';
  CHECK_EQ(lp2p_mss_feed(m, big + 600, sizeof big - 600), (int64_t)(sizeof big - 600)); /* refused: "na" */
  /* never more than the object + max line + the unsent answers, however many proposals are refused */
  size_t peak = 0;
  for (int i = 0; i < LP2P_MSS_DEFAULT_MAX_ATTEMPTS - 1; i++) {
    bb p = {0};
    bb_raw(&p, "\x85\x07", 2);
    for (int k = 0; k < 900; k++) bb_raw(&p, "y", 1);
    bb_raw(&p, "\n", 1);
    int64_t k = lp2p_mss_feed(m, p.d, p.n);
    if (k < 0) break;
    size_t mem = lp2p_mss_memory(m);
    if (mem > peak) peak = mem;
  }
  CHECK(peak <= m0 + 2 * LP2P_MSS_DEFAULT_MAX_LINE + LP2P_MSS_DEFAULT_MAX_ATTEMPTS * 8);
  lp2p_mss_free(m);
}

/* ---- allocation failure at creation and while feeding (single engine) ---- */

TEST(alloc_failure_single_engine) {
  reg_ctx reg = {PING_ID, 2, NULL, 0, 0, 0};
  bb lin = {0};
  bb_line(&lin, LP2P_MSS_PROTOCOL_ID);
  bb_line(&lin, "ls");
  bb_line(&lin, "/x");
  bb_line(&lin, "/ipfs/id/1.0.0");
  bb din = {0};
  bb_line(&din, LP2P_MSS_PROTOCOL_ID);
  bb_raw(&din, "\x09\x03/x\n\x03/b\n\n", 10);
  bb_line(&din, "na");
  bb_line(&din, "/b");
  for (int kind = 0; kind < 2; kind++) {
    int successes = 0;
    for (long n = 1; n < 1000; n++) {
      failmem fm;
      failmem_init(&fm, n);
      scen s = kind ? (scen){K_LISTENER, NULL, 0, &reg, {0}, &fm.mem} : (scen){K_LISTER, AB, 2, NULL, {0}, &fm.mem};
      const bb *in = kind ? &lin : &din;
      lp2p_mss *m;
      int rv = scen_new(&s, &m);
      if (rv == 0) {
        /* byte by byte, so the line buffer is used */
        int64_t c = 0;
        for (size_t i = 0; i < in->n && c >= 0; i++) c = lp2p_mss_feed(m, in->d + i, 1);
        if (c >= 0) {
          CHECK(lp2p_mss_done(m));
          successes++;
        } else {
          CHECK_EQ(c, LP2P_ERR_NOMEM);
          CHECK(fm.triggered);
        }
        lp2p_mss_free(m);
      } else {
        CHECK_EQ(rv, LP2P_ERR_NOMEM);
      }
      CHECK_EQ(fm.live, 0);
      if (!fm.triggered) break;
    }
    CHECK_EQ(successes, 1);
  }
}

int main(void) {
  vec = json_load_vector("multistream.json");
  if (!vec) return 1;
  RUN(vector_messages_encode);
  RUN(vector_messages_both_roles);
  RUN(vector_dialer_first_flight);
  RUN(vector_listener_accepts_noise);
  RUN(vector_listener_rejects_noise);
  RUN(vector_ls_response);
  RUN(dialer_na_then_second);
  RUN(dialer_all_refused_is_unsupported);
  RUN(dialer_keeps_next_layer_bytes);
  RUN(dialer_bad_answers);
  RUN(wrong_header_both_roles);
  RUN(dialer_create_errors);
  RUN(listener_lazy_dialer_pipelined_bytes);
  RUN(listener_na_then_accept);
  RUN(listener_never_asks_registry_about_na_or_ls);
  RUN(listener_attempt_limit);
  RUN(listener_create_errors);
  RUN(listener_ls_filters_and_caps);
  RUN(lister_then_proposals);
  RUN(lister_ls_refused);
  RUN(lister_malformed_lists);
  RUN(line_length_cap);
  RUN(malformed_framing);
  RUN(partial_input_is_buffered);
  RUN(memory_reported_and_bounded);
  RUN(alloc_failure_single_engine);
  json_free(vec);
  return test_done();
}
