/* test_noise_pair.c - two lp2p_noise engines talking to each other in one process: every
 * identity key type in both roles, early muxer negotiation, expected-peer checks, tampering on
 * the wire, every input split at every byte offset, and a 16 MiB transfer each way. */
#include <sodium.h>

#include "lp2p/peerid.h"
#include "noise/noise_int.h"
#include "noise_helpers.h"
#include "test.h"

static const char *const yamux[] = {"/yamux/1.0.0"};

typedef struct ident {
  const char *name;
  lp2p_privkey *key;
  lp2p_peer_id id;
} ident;

static ident ids[4] = {{"Ed25519", NULL, {0}}, {"Secp256k1", NULL, {0}}, {"RSA", NULL, {0}}, {"ECDSA", NULL, {0}}};
static lp2p_privkey *other_key;
static lp2p_peer_id other_id;

static void exchange_and_check(lp2p_noise *a, lp2p_noise *b, const char *msg) {
  size_t len = strlen(msg);
  nh_sink s = {0};
  CHECK_OK(lp2p_noise_write(a, (const uint8_t *)msg, len));
  CHECK_OK(nh_transfer(a, b, 0, &s));
  CHECK_EQ(s.len, len);
  if (s.len == len) CHECK_MEM(s.data, msg, len);
  nh_sink_free(&s);
}

TEST(all_identity_types_both_roles) {
  for (int mux = 0; mux < 2; mux++)
    for (size_t a = 0; a < 4; a++)
      for (size_t b = 0; b < 4; b++) {
        if (!ids[a].key || !ids[b].key || a == b) continue;
        lp2p_noise *i = NULL, *r = NULL;
        CHECK_OK(nh_new(&i, 1, ids[a].key, &ids[b].id, mux ? yamux : NULL, mux ? 1 : 0, NULL));
        CHECK_OK(nh_new(&r, 0, ids[b].key, NULL, mux ? yamux : NULL, mux ? 1 : 0, NULL));
        int ie = 0, re = 0;
        int rv = nh_handshake(i, r, 0, &ie, &re);
        if (rv) fprintf(stderr, "  %s -> %s (mux %d): %s\n", ids[a].name, ids[b].name, mux, lp2p_strerror(rv));
        CHECK_OK(rv);
        if (rv) {
          lp2p_noise_free(i);
          lp2p_noise_free(r);
          continue;
        }
        CHECK(lp2p_peer_id_equal(lp2p_noise_remote_peer(i), &ids[b].id));
        CHECK(lp2p_peer_id_equal(lp2p_noise_remote_peer(r), &ids[a].id));
        CHECK(lp2p_pubkey_equal(lp2p_noise_remote_key(i), lp2p_privkey_public(ids[b].key)));
        CHECK(lp2p_pubkey_equal(lp2p_noise_remote_key(r), lp2p_privkey_public(ids[a].key)));
        CHECK_EQ(lp2p_pubkey_type(lp2p_noise_remote_key(r)), lp2p_privkey_type(ids[a].key));
        if (mux) {
          CHECK_STR(lp2p_noise_muxer(i), "/yamux/1.0.0");
          CHECK_STR(lp2p_noise_muxer(r), "/yamux/1.0.0");
        } else {
          CHECK(lp2p_noise_muxer(i) == NULL && lp2p_noise_muxer(r) == NULL);
        }
        CHECK_MEM(lp2p__noise_handshake_hash(i), lp2p__noise_handshake_hash(r), 32);
        exchange_and_check(i, r, "hello from the initiator");
        exchange_and_check(r, i, "hello from the responder");
        lp2p_noise_free(i);
        lp2p_noise_free(r);
      }
}

typedef struct mux_case {
  const char *const *ini;
  size_t ni;
  const char *const *res;
  size_t nr;
  const char *want; /* NULL = multistream; "!" = handshake failure */
} mux_case;

TEST(early_muxer_negotiation_matrix) {
  static const char *const y[] = {"/yamux/1.0.0"};
  static const char *const m[] = {"/mplex/6.7.0"};
  static const char *const my[] = {"/mplex/6.7.0", "/yamux/1.0.0"};
  static const char *const ym[] = {"/yamux/1.0.0", "/mplex/6.7.0"};
  const mux_case cases[] = {
      {y, 1, y, 1, "/yamux/1.0.0"}, {y, 1, NULL, 0, NULL},         {NULL, 0, y, 1, NULL},
      {NULL, 0, NULL, 0, NULL},     {y, 1, m, 1, "!"},             {my, 2, ym, 2, "/mplex/6.7.0"},
      {ym, 2, my, 2, "/yamux/1.0.0"}, {my, 2, y, 1, "/yamux/1.0.0"}, {m, 1, ym, 2, "/mplex/6.7.0"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    lp2p_noise *i = NULL, *r = NULL;
    CHECK_OK(nh_new(&i, 1, ids[0].key, NULL, cases[c].ini, cases[c].ni, NULL));
    CHECK_OK(nh_new(&r, 0, other_key, NULL, cases[c].res, cases[c].nr, NULL));
    int ie = 0, re = 0;
    int rv = nh_handshake(i, r, 0, &ie, &re);
    if (cases[c].want && !strcmp(cases[c].want, "!")) {
      /* the initiator sees both lists first (msg2) and fails; msg3 is never sent */
      CHECK_EQ(ie, LP2P_ERR_HANDSHAKE);
      CHECK(!lp2p_noise_handshake_done(r));
    } else {
      CHECK_OK(rv);
      if (cases[c].want) {
        CHECK_STR(lp2p_noise_muxer(i), cases[c].want);
        CHECK_STR(lp2p_noise_muxer(r), cases[c].want);
      } else {
        CHECK(lp2p_noise_muxer(i) == NULL);
        CHECK(lp2p_noise_muxer(r) == NULL);
      }
    }
    lp2p_noise_free(i);
    lp2p_noise_free(r);
  }
}

TEST(expected_peer_checks) {
  lp2p_noise *i = NULL, *r = NULL;
  int ie, re;
  /* initiator dialed /p2p/<other>: fails at msg2, sends no msg3 */
  CHECK_OK(nh_new(&i, 1, ids[0].key, &other_id, NULL, 0, NULL));
  CHECK_OK(nh_new(&r, 0, ids[1].key, NULL, NULL, 0, NULL));
  CHECK_EQ(nh_handshake(i, r, 0, &ie, &re), LP2P_ERR_PEER_ID_MISMATCH);
  CHECK_EQ(ie, LP2P_ERR_PEER_ID_MISMATCH);
  CHECK_EQ(re, 0);
  CHECK(!lp2p_noise_handshake_done(r));
  lp2p_noise_free(i);
  lp2p_noise_free(r);
  /* responder expecting someone else: fails at msg3 */
  CHECK_OK(nh_new(&i, 1, ids[0].key, &ids[1].id, NULL, 0, NULL));
  CHECK_OK(nh_new(&r, 0, ids[1].key, &other_id, NULL, 0, NULL));
  CHECK_EQ(nh_handshake(i, r, 0, &ie, &re), LP2P_ERR_PEER_ID_MISMATCH);
  CHECK_EQ(re, LP2P_ERR_PEER_ID_MISMATCH);
  CHECK(lp2p_noise_remote_peer(r) == NULL);
  lp2p_noise_free(i);
  lp2p_noise_free(r);
  /* both right */
  CHECK_OK(nh_new(&i, 1, ids[0].key, &ids[1].id, NULL, 0, NULL));
  CHECK_OK(nh_new(&r, 0, ids[1].key, &ids[0].id, NULL, 0, NULL));
  CHECK_OK(nh_handshake(i, r, 0, &ie, &re));
  lp2p_noise_free(i);
  lp2p_noise_free(r);
  /* a connection to ourselves */
  CHECK_OK(nh_new(&i, 1, ids[0].key, NULL, NULL, 0, NULL));
  CHECK_OK(nh_new(&r, 0, ids[0].key, NULL, NULL, 0, NULL));
  CHECK_EQ(nh_handshake(i, r, 0, &ie, &re), LP2P_ERR_HANDSHAKE);
  lp2p_noise_free(i);
  lp2p_noise_free(r);
}

/* A man in the middle flips one bit of one message (msg1, msg2, msg3 or a transport frame).
 * Returns 1 if the session nevertheless completed and delivered the payload intact, 0 if some
 * side rejected it or is still waiting (a flipped length byte), -1 if pos is beyond the message. */
static int run_tampered(int msg, size_t pos) {
  lp2p_noise *i = NULL, *r = NULL;
  if (nh_new(&i, 1, ids[0].key, NULL, yamux, 1, NULL) || nh_new(&r, 0, other_key, NULL, yamux, 1, NULL)) abort();
  lp2p_noise *from[4] = {i, r, i, i}, *to[4] = {r, i, r, r};
  nh_sink s = {0};
  int result = 0;
  for (int step = 0; step < 4; step++) {
    if (step == 3 && lp2p_noise_write(i, (const uint8_t *)"secret payload", 14)) break;
    const uint8_t *p;
    size_t n = lp2p_noise_output(from[step], &p);
    uint8_t *buf = malloc(n ? n : 1);
    if (n) memcpy(buf, p, n);
    lp2p_noise_output_consumed(from[step], n);
    if (step == msg) {
      if (pos / 8 >= n) {
        free(buf);
        result = -1;
        break;
      }
      buf[pos / 8] ^= (uint8_t)(1u << (pos % 8));
    }
    int rv = nh_feed_all(to[step], buf, n, 0, &s);
    free(buf);
    if (rv) break;
    if (step == 3)
      result = lp2p_noise_handshake_done(i) && lp2p_noise_handshake_done(r) && s.len == 14 &&
               !memcmp(s.data, "secret payload", 14);
  }
  nh_sink_free(&s);
  lp2p_noise_free(i);
  lp2p_noise_free(r);
  return result;
}

TEST(tampered_wire_bytes) {
  CHECK_EQ(run_tampered(-1, 0), 1); /* untouched: accepted */
  int accepted = 0, runs = 0;
  for (int msg = 0; msg < 4; msg++)
    for (size_t pos = 0;; pos += 5) {
      int rv = run_tampered(msg, pos);
      if (rv < 0) break;
      runs++;
      if (rv) {
        fprintf(stderr, "  tampering msg %d bit %zu went unnoticed\n", msg, pos);
        accepted++;
      }
    }
  CHECK(runs > 500);
  CHECK_EQ(accepted, 0);
}

/* ---- every input split at every byte offset ---- */

static const uint8_t kS_i[32] = {1, 2, 3}, kE_i[32] = {4, 5, 6}, kS_r[32] = {7, 8, 9}, kE_r[32] = {10, 11, 12};

static void new_fixed(lp2p_noise **n, int initiator) {
  lp2p__noise_test_params tp = {initiator ? kS_i : kS_r, initiator ? kE_i : kE_r, NULL, 0};
  lp2p_noise_config cfg = {sizeof cfg, initiator, initiator ? ids[0].key : other_key,
                           initiator ? &other_id : &ids[0].id, yamux, 1, NULL};
  if (lp2p__noise_new_ex(n, &cfg, NULL, &tp)) abort();
}

typedef struct recording {
  nh_sink to_res, to_ini;   /* wire bytes each side received */
  nh_sink out_ini, out_res; /* wire bytes each side sent */
  nh_sink pt_res, pt_ini;   /* plaintext each side received */
} recording;

static void take(lp2p_noise *from, nh_sink *log, nh_sink *wire) {
  const uint8_t *p;
  size_t n = lp2p_noise_output(from, &p);
  nh_sink_add(log, p, n);
  nh_sink_add(wire, p, n);
  lp2p_noise_output_consumed(from, n);
}

/* Reference run with fixed keys: handshake, then frames both ways (a multi-frame write and an
 * empty frame included). Each side's input is then replayable on a fresh session. */
static void record(recording *rec) {
  memset(rec, 0, sizeof *rec);
  lp2p_noise *i, *r;
  new_fixed(&i, 1);
  new_fixed(&r, 0);
  take(i, &rec->out_ini, &rec->to_res); /* msg1 */
  if (nh_feed_all(r, rec->to_res.data, rec->to_res.len, 0, NULL)) abort();
  size_t r_fed = rec->to_res.len;
  take(r, &rec->out_res, &rec->to_ini); /* msg2 */
  if (nh_feed_all(i, rec->to_ini.data, rec->to_ini.len, 0, NULL)) abort();
  size_t i_fed = rec->to_ini.len;
  static uint8_t big[2000];
  for (size_t k = 0; k < sizeof big; k++) big[k] = (uint8_t)(k * 13);
  if (lp2p_noise_write(i, (const uint8_t *)"first", 5) || lp2p_noise_write(i, big, sizeof big)) abort();
  take(i, &rec->out_ini, &rec->to_res); /* msg3 + frames */
  uint8_t f[32];
  int fl = lp2p_noise_seal_frame(i, NULL, 0, f);
  if (fl != 18) abort();
  nh_sink_add(&rec->out_ini, f, (size_t)fl);
  nh_sink_add(&rec->to_res, f, (size_t)fl);
  if (lp2p_noise_write(i, (const uint8_t *)"last", 4)) abort();
  take(i, &rec->out_ini, &rec->to_res);
  if (nh_feed_all(r, rec->to_res.data + r_fed, rec->to_res.len - r_fed, 0, &rec->pt_res)) abort();
  if (lp2p_noise_write(r, (const uint8_t *)"reply", 5)) abort();
  take(r, &rec->out_res, &rec->to_ini);
  if (nh_feed_all(i, rec->to_ini.data + i_fed, rec->to_ini.len - i_fed, 0, &rec->pt_ini)) abort();
  if (rec->pt_res.len != 5 + sizeof big + 4 || memcmp(rec->pt_res.data + 5, big, sizeof big)) abort();
  if (rec->pt_ini.len != 5) abort();
  lp2p_noise_free(i);
  lp2p_noise_free(r);
}

/* Feeds the recorded input of one side to a fresh session in pieces ending at cuts[];
 * returns 1 if it finished the handshake with the reference's messages and plaintext. */
static int replay(int initiator, const recording *rec, const size_t *cuts, size_t ncuts) {
  lp2p_noise *n;
  new_fixed(&n, initiator);
  const nh_sink *in = initiator ? &rec->to_ini : &rec->to_res;
  const nh_sink *want_out = initiator ? &rec->out_ini : &rec->out_res;
  const nh_sink *want_pt = initiator ? &rec->pt_ini : &rec->pt_res;
  nh_sink out = {0}, pt = {0};
  int ok = 1;
  size_t prev = 0;
  for (size_t c = 0; c <= ncuts && ok; c++) {
    size_t end = c < ncuts ? cuts[c] : in->len;
    if (nh_feed_all(n, in->data + prev, end - prev, 0, &pt)) ok = 0;
    const uint8_t *p;
    size_t k = lp2p_noise_output(n, &p);
    nh_sink_add(&out, p, k);
    lp2p_noise_output_consumed(n, k);
    prev = end;
  }
  if (!lp2p_noise_handshake_done(n)) ok = 0;
  if (pt.len != want_pt->len || (pt.len && memcmp(pt.data, want_pt->data, pt.len))) ok = 0;
  /* handshake messages equal the reference's (this replay makes no transport writes) */
  size_t hs_len = initiator ? 2 + 32 + 2 + 184 : 2 + 216;
  if (out.len != hs_len || want_out->len < hs_len || memcmp(out.data, want_out->data, hs_len)) ok = 0;
  nh_sink_free(&out);
  nh_sink_free(&pt);
  lp2p_noise_free(n);
  return ok;
}

TEST(every_split_offset_gives_the_same_result) {
  recording rec;
  record(&rec);
  for (int side = 0; side < 2; side++) {
    const nh_sink *in = side ? &rec.to_ini : &rec.to_res;
    int fails = 0;
    CHECK(replay(side, &rec, NULL, 0));
    for (size_t k = 0; k <= in->len; k++) {
      size_t cut = k;
      if (!replay(side, &rec, &cut, 1)) fails++;
    }
    /* byte by byte */
    size_t *cuts = malloc(in->len * sizeof *cuts);
    for (size_t k = 0; k < in->len; k++) cuts[k] = k + 1;
    if (!replay(side, &rec, cuts, in->len - 1)) fails++;
    free(cuts);
    CHECK_EQ(fails, 0);
  }
  nh_sink_free(&rec.to_res);
  nh_sink_free(&rec.to_ini);
  nh_sink_free(&rec.out_ini);
  nh_sink_free(&rec.out_res);
  nh_sink_free(&rec.pt_res);
  nh_sink_free(&rec.pt_ini);
}

/* ---- bulk ---- */

static void pattern(uint8_t *p, size_t n, uint64_t off, uint32_t seed) {
  for (size_t k = 0; k < n; k++) {
    uint64_t x = (off + k) * 0x9e3779b97f4a7c15ull ^ seed;
    p[k] = (uint8_t)(x >> 29);
  }
}

TEST(sixteen_mib_each_way_verified) {
  lp2p_noise *i = NULL, *r = NULL;
  CHECK_OK(nh_new(&i, 1, ids[0].key, NULL, yamux, 1, NULL));
  CHECK_OK(nh_new(&r, 0, ids[1].key, NULL, yamux, 1, NULL));
  REQUIRE(nh_handshake(i, r, 0, NULL, NULL) == 0);
  const size_t total = 16u << 20;
  uint8_t *chunk = malloc(200000);
  nh_sink got_r = {0}, got_i = {0};
  size_t sent = 0, step = 1;
  const size_t feed_chunks[] = {0, 1000, 65537, 7919};
  while (sent < total) {
    size_t n = (step * 40503u) % 200000u + 1;
    if (n > total - sent) n = total - sent;
    pattern(chunk, n, sent, 1);
    CHECK_OK(lp2p_noise_write(i, chunk, n));
    pattern(chunk, n, sent, 2);
    CHECK_OK(lp2p_noise_write(r, chunk, n));
    sent += n;
    size_t fc = feed_chunks[step % 4];
    CHECK_OK(nh_transfer(i, r, fc, &got_r));
    CHECK_OK(nh_transfer(r, i, fc, &got_i));
    step++;
  }
  CHECK_EQ(got_r.len, total);
  CHECK_EQ(got_i.len, total);
  uint8_t *want = malloc(total);
  pattern(want, total, 0, 1);
  if (got_r.len == total) CHECK_MEM(got_r.data, want, total);
  pattern(want, total, 0, 2);
  if (got_i.len == total) CHECK_MEM(got_i.data, want, total);
  free(want);
  free(chunk);
  nh_sink_free(&got_r);
  nh_sink_free(&got_i);
  lp2p_noise_free(i);
  lp2p_noise_free(r);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  ids[0].key = nh_seed_key(0x11);
  for (int k = 1; k < 4; k++) ids[k].key = nh_vector_key(ids[k].name);
  for (int k = 0; k < 4; k++) {
    if (!ids[k].key) {
      fprintf(stderr, "identity %s unavailable\n", ids[k].name);
      return 1;
    }
    ids[k].id = nh_peer_id(ids[k].key);
  }
  other_key = nh_seed_key(0x22);
  other_id = nh_peer_id(other_key);
  RUN(all_identity_types_both_roles);
  RUN(early_muxer_negotiation_matrix);
  RUN(expected_peer_checks);
  RUN(tampered_wire_bytes);
  RUN(every_split_offset_gives_the_same_result);
  RUN(sixteen_mib_each_way_verified);
  for (int k = 0; k < 4; k++) lp2p_privkey_free(ids[k].key);
  lp2p_privkey_free(other_key);
  return test_done();
}
