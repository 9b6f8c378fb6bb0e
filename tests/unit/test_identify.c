/* test_identify.c - Identify codec against tests/vectors/identify.json (full
 * and minimal messages; the signed peer record itself: test_record.c), decoding limits and hostile
 * input, then the behaviour between in-process swarms: both sides identify,
 * address book, query function, push on registry change, and rejection of
 * answers with a wrong/missing key, a bad record or oversized messages. */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "lp2p/encoding.h"
#include "lp2p/identify.h"
#include "lp2p/record.h"
#include "lp2p/ping.h"
#include "protocols/identify/identify_int.h"
#include "swarm_harness.h"
#include "test.h"

/* ------------------------------------------------------------------------- */
/* codec */

typedef struct vec {
  json *root;
  lp2p_privkey *key;
  lp2p_peer_id id;
  lp2p_multiaddr *addrs[2];
  lp2p_multiaddr *observed;
  const char *protos[4];
} vec;

static int vec_load(vec *v) {
  memset(v, 0, sizeof *v);
  if (!(v->root = json_load_vector("identify.json"))) return -1;
  json *idn = json_get(v->root, "identity"), *full = json_get(v->root, "identify_full");
  size_t n;
  uint8_t *seed = json_hex(idn, "ed25519_seed", &n);
  int rv = seed && n == 32 ? lp2p_privkey_from_ed25519_seed(&v->key, seed) : -1;
  free(seed);
  if (rv < 0) return -1;
  lp2p_peer_id_from_pubkey(lp2p_privkey_public(v->key), &v->id);
  json *la = json_get(full, "listen_addrs"), *pr = json_get(full, "protocols");
  for (size_t i = 0; i < 2; i++)
    if (lp2p_multiaddr_parse(&v->addrs[i], json_at(la, i)->str, NULL, 0) < 0) return -1;
  if (lp2p_multiaddr_parse(&v->observed, json_str(full, "observed_addr"), NULL, 0) < 0) return -1;
  for (size_t i = 0; i < 4; i++) v->protos[i] = json_at(pr, i)->str;
  return 0;
}

static void vec_free(vec *v) {
  for (int i = 0; i < 2; i++) lp2p_multiaddr_free(v->addrs[i]);
  lp2p_multiaddr_free(v->observed);
  lp2p_privkey_free(v->key);
  json_free(v->root);
}

TEST(codec_encode_vectors) {
  vec v;
  REQUIRE(vec_load(&v) == 0);
  json *full = json_get(v.root, "identify_full"), *min = json_get(v.root, "identify_minimal");
  size_t pklen, reclen, wlen, mlen;
  uint8_t *pk = json_hex(json_get(v.root, "identity"), "public_key_pb", &pklen);
  uint8_t *rec = json_hex(json_get(v.root, "peer_record"), "envelope_pb", &reclen);
  uint8_t *want = json_hex(full, "message_pb", &wlen);
  lp2p__identify_fields f;
  memset(&f, 0, sizeof f);
  f.public_key = pk;
  f.public_key_len = pklen;
  f.listen_addrs = (const lp2p_multiaddr *const *)v.addrs;
  f.n_listen_addrs = 2;
  f.protocols = v.protos;
  f.n_protocols = 4;
  f.observed_addr = v.observed;
  f.protocol_version = json_str(full, "protocol_version");
  f.agent_version = json_str(full, "agent_version");
  f.signed_record = rec;
  f.signed_record_len = reclen;
  CHECK_EQ(lp2p__identify_size(&f), wlen);
  CHECK_EQ(wlen, (size_t)json_get(full, "length")->num);
  uint8_t buf[1024];
  CHECK_EQ(lp2p__identify_encode(&f, buf, sizeof buf), (int)wlen);
  CHECK_MEM(buf, want, wlen);
  CHECK_EQ(lp2p__identify_encode(&f, buf, wlen - 1), LP2P_ERR_BUFSIZE);
  /* the wire form is the varint prefix + message */
  size_t wire_len;
  uint8_t *wire = json_hex(full, "wire_with_varint_prefix", &wire_len);
  uint8_t pre[9];
  int k = lp2p_uvarint_encode(wlen, pre, sizeof pre);
  CHECK_EQ(k, 2);
  CHECK_MEM(wire, pre, 2);
  CHECK_EQ(wire_len, wlen + 2);

  /* minimal: key + protocols + versions */
  uint8_t *wmin = json_hex(min, "message_pb", &mlen);
  f.listen_addrs = NULL;
  f.n_listen_addrs = 0;
  f.observed_addr = NULL;
  f.signed_record = NULL;
  f.signed_record_len = 0;
  CHECK_EQ(lp2p__identify_encode(&f, buf, sizeof buf), (int)mlen);
  CHECK_MEM(buf, wmin, mlen);
  free(wmin);
  free(wire);
  free(want);
  free(rec);
  free(pk);
  vec_free(&v);
}

TEST(codec_decode_vectors) {
  vec v;
  REQUIRE(vec_load(&v) == 0);
  json *full = json_get(v.root, "identify_full");
  size_t wire_len;
  uint8_t *wire = json_hex(full, "wire_with_varint_prefix", &wire_len);
  /* fed in every split: byte by byte */
  lp2p__identify_state st;
  lp2p__identify_state_init(&st);
  lp2p__identify_reader rd = {0};
  for (size_t i = 0; i < wire_len; i++) CHECK_OK(lp2p__identify_reader_feed(&rd, &st, wire + i, 1));
  CHECK_OK(lp2p__identify_reader_end(&rd));
  CHECK_OK(lp2p__identify_validate(&st, &v.id, 1));
  const lp2p_identify_info *in = &st.info;
  CHECK(lp2p_peer_id_equal(&in->peer, &v.id));
  CHECK(in->public_key && lp2p_peer_id_matches(&v.id, in->public_key));
  CHECK_STR(in->protocol_version, "ipfs/0.1.0");
  CHECK_STR(in->agent_version, "c-libp2p/0.1.0");
  REQUIRE(in->n_protocols == 4);
  for (int i = 0; i < 4; i++) CHECK_STR(in->protocols[i], v.protos[i]);
  REQUIRE(in->n_listen_addrs == 2);
  CHECK(lp2p_multiaddr_equal(in->listen_addrs[0], v.addrs[0]));
  CHECK(lp2p_multiaddr_equal(in->listen_addrs[1], v.addrs[1]));
  CHECK(lp2p_multiaddr_equal(in->observed_addr, v.observed));
  CHECK_EQ(in->signed_record, 1);
  CHECK_EQ(in->record_seq, 1700000000000ull);
  /* the same message for another peer id is rejected */
  lp2p_peer_id other = v.id;
  other.bytes[other.len - 1] ^= 1;
  CHECK_EQ(lp2p__identify_validate(&st, &other, 1), LP2P_ERR_PEER_ID_MISMATCH);
  lp2p__identify_reader_free(&rd);
  lp2p__identify_state_clear(&st);

  /* minimal message: no addresses, no record */
  size_t mlen;
  uint8_t *min = json_hex(json_get(v.root, "identify_minimal"), "message_pb", &mlen);
  lp2p__identify_state_init(&st);
  CHECK_OK(lp2p__identify_merge(&st, min, mlen));
  CHECK_OK(lp2p__identify_validate(&st, &v.id, 1));
  CHECK_EQ(st.info.n_listen_addrs, 0);
  CHECK(st.info.observed_addr == NULL);
  CHECK_EQ(st.info.signed_record, 0);
  CHECK_EQ(st.info.n_protocols, 4);
  /* merging the same message again: scalars overwrite, repeated fields append (deduplicated) */
  CHECK_OK(lp2p__identify_merge(&st, min, mlen));
  CHECK_EQ(st.n_protocols, 4);
  lp2p__identify_state_clear(&st);
  free(min);
  free(wire);
  vec_free(&v);
}

/* A message with n copies of field 3 (protocol "/p<i>") and optionally a key. */
static size_t make_msg(uint8_t *out, size_t cap, const uint8_t *pk, size_t pklen, int nprotos) {
  size_t o = 0;
  if (pk) {
    out[o++] = 0x0a;
    out[o++] = (uint8_t)pklen;
    memcpy(out + o, pk, pklen);
    o += pklen;
  }
  for (int i = 0; i < nprotos && o + 16 < cap; i++) {
    char p[16];
    int n = snprintf(p, sizeof p, "/p%d", i);
    out[o++] = 0x1a;
    out[o++] = (uint8_t)n;
    memcpy(out + o, p, (size_t)n);
    o += (size_t)n;
  }
  return o;
}

TEST(codec_limits_and_garbage) {
  vec v;
  REQUIRE(vec_load(&v) == 0);
  uint8_t pk[64];
  int pklen = lp2p_pubkey_to_protobuf(lp2p_privkey_public(v.key), pk, sizeof pk);
  REQUIRE(pklen > 0);
  lp2p__identify_state st;
  static uint8_t msg[LP2P_IDENTIFY_MAX_MESSAGE + 64];

  /* too large */
  lp2p__identify_state_init(&st);
  CHECK_EQ(lp2p__identify_merge(&st, msg, LP2P_IDENTIFY_MAX_MESSAGE + 1), LP2P_ERR_TOO_LARGE);
  /* garbage */
  static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01, 0x02};
  CHECK_EQ(lp2p__identify_merge(&st, junk, sizeof junk), LP2P_ERR_PROTO);
  /* a bad key */
  static const uint8_t badkey[] = {0x0a, 0x03, 0x08, 0x09, 0x12};
  CHECK_EQ(lp2p__identify_merge(&st, badkey, sizeof badkey), LP2P_ERR_KEY);
  /* no key: merge is fine, validation requires one (except for pushes) */
  size_t n = make_msg(msg, sizeof msg, NULL, 0, 3);
  CHECK_OK(lp2p__identify_merge(&st, msg, n));
  CHECK_EQ(lp2p__identify_validate(&st, &v.id, 1), LP2P_ERR_KEY);
  CHECK_OK(lp2p__identify_validate(&st, &v.id, 0));
  lp2p__identify_state_clear(&st);

  /* protocol limit: 600 entries -> 256 kept */
  lp2p__identify_state_init(&st);
  n = make_msg(msg, LP2P_IDENTIFY_MAX_MESSAGE, pk, (size_t)pklen, 600);
  CHECK(n <= LP2P_IDENTIFY_MAX_MESSAGE);
  CHECK_OK(lp2p__identify_merge(&st, msg, n));
  CHECK_EQ(st.n_protocols, LP2P_IDENTIFY_MAX_PROTOCOLS);
  lp2p__identify_state_clear(&st);

  /* framing: 11 messages is one too many; a truncated message at EOF; a bad varint; huge length */
  lp2p__identify_reader rd = {0};
  lp2p__identify_state_init(&st);
  uint8_t one[80];
  size_t m = make_msg(one + 1, sizeof one - 1, NULL, 0, 2);
  one[0] = (uint8_t)m;
  int rv = 0;
  for (int i = 0; i < 11 && rv == 0; i++) rv = lp2p__identify_reader_feed(&rd, &st, one, m + 1);
  CHECK_EQ(rv, LP2P_ERR_LIMIT);
  lp2p__identify_reader_free(&rd);
  lp2p__identify_state_clear(&st);

  lp2p__identify_state_init(&st);
  CHECK_OK(lp2p__identify_reader_feed(&rd, &st, one, m));
  CHECK_EQ(lp2p__identify_reader_end(&rd), LP2P_ERR_PROTO);
  lp2p__identify_reader_free(&rd);
  CHECK_EQ(lp2p__identify_reader_end(&rd), LP2P_ERR_EOF); /* nothing at all */
  static const uint8_t overlong[] = {0x80, 0x00};
  CHECK_EQ(lp2p__identify_reader_feed(&rd, &st, overlong, sizeof overlong), LP2P_ERR_VARINT);
  lp2p__identify_reader_free(&rd);
  static const uint8_t huge[] = {0x81, 0x80, 0x01}; /* 16385 */
  CHECK_EQ(lp2p__identify_reader_feed(&rd, &st, huge, sizeof huge), LP2P_ERR_TOO_LARGE);
  lp2p__identify_reader_free(&rd);
  /* a message of exactly the limit is fine, even glued to the next one */
  uint8_t *big = calloc(1, LP2P_IDENTIFY_MAX_MESSAGE * 2 + 16);
  size_t o = (size_t)lp2p_uvarint_encode(LP2P_IDENTIFY_MAX_MESSAGE, big, 9);
  size_t body = make_msg(big + o, LP2P_IDENTIFY_MAX_MESSAGE, pk, (size_t)pklen, 0);
  /* pad with an unknown bytes field (field 15) up to the limit */
  size_t pad = LP2P_IDENTIFY_MAX_MESSAGE - body - 3;
  big[o + body] = 0x7a; /* field 15, wire type 2 */
  lp2p_uvarint_encode(pad, big + o + body + 1, 9);
  size_t total = o + LP2P_IDENTIFY_MAX_MESSAGE;
  memcpy(big + total, one, m + 1);
  lp2p__identify_state_clear(&st);
  lp2p__identify_state_init(&st);
  CHECK_OK(lp2p__identify_reader_feed(&rd, &st, big, total + m + 1));
  CHECK_OK(lp2p__identify_reader_end(&rd));
  CHECK_EQ(rd.messages, 2);
  CHECK_OK(lp2p__identify_validate(&st, &v.id, 1));
  CHECK_EQ(st.info.n_protocols, 2);
  free(big);
  lp2p__identify_reader_free(&rd);
  lp2p__identify_state_clear(&st);
  vec_free(&v);
}

/* Push semantics: present fields replace, absent ones stay. */
TEST(codec_apply_push) {
  vec v;
  REQUIRE(vec_load(&v) == 0);
  size_t wlen;
  uint8_t *full = json_hex(json_get(v.root, "identify_full"), "message_pb", &wlen);
  lp2p__identify_state have, push;
  lp2p__identify_state_init(&have);
  CHECK_OK(lp2p__identify_merge(&have, full, wlen));
  CHECK_OK(lp2p__identify_validate(&have, &v.id, 1));
  uint8_t msg[128];
  size_t n = make_msg(msg, sizeof msg, NULL, 0, 1); /* only protocols: ["/p0"] */
  lp2p__identify_state_init(&push);
  CHECK_OK(lp2p__identify_merge(&push, msg, n));
  CHECK_OK(lp2p__identify_validate(&push, &v.id, 0));
  lp2p__identify_apply(&have, &push);
  CHECK_EQ(have.info.n_protocols, 1);
  CHECK_STR(have.info.protocols[0], "/p0");
  CHECK_EQ(have.info.n_listen_addrs, 2); /* unchanged */
  CHECK_STR(have.info.agent_version, "c-libp2p/0.1.0");
  CHECK(have.info.public_key != NULL);
  CHECK(lp2p_peer_id_equal(&have.info.peer, &v.id));
  lp2p__identify_state_clear(&have);
  free(full);
  vec_free(&v);
}

/* ------------------------------------------------------------------------- */
/* behaviour */

typedef struct idrec {
  int identified, failed, pushes_in, pushed;
  int last_err, last_pushed_err;
  char agent[128], pv[64];
  int n_protocols, n_listen, has_observed, signed_record;
  int has_proto_new;
  lp2p_multiaddr *listen0;
} idrec;

static void id_event(lp2p_identify *id, const lp2p_identify_event *ev, void *ud) {
  idrec *r = ud;
  (void)id;
  switch (ev->type) {
    case LP2P_IDENTIFY_EV_IDENTIFIED:
    case LP2P_IDENTIFY_EV_PUSH_RECEIVED: {
      const lp2p_identify_info *in = ev->info;
      if (ev->type == LP2P_IDENTIFY_EV_IDENTIFIED)
        r->identified++;
      else
        r->pushes_in++;
      snprintf(r->agent, sizeof r->agent, "%s", in->agent_version ? in->agent_version : "");
      snprintf(r->pv, sizeof r->pv, "%s", in->protocol_version ? in->protocol_version : "");
      r->n_protocols = (int)in->n_protocols;
      r->n_listen = (int)in->n_listen_addrs;
      r->has_observed = in->observed_addr != NULL;
      r->signed_record = in->signed_record;
      r->has_proto_new = 0;
      for (size_t i = 0; i < in->n_protocols; i++)
        if (!strcmp(in->protocols[i], "/lp2p-test/new/1.0.0")) r->has_proto_new = 1;
      lp2p_multiaddr_free(r->listen0);
      r->listen0 = in->n_listen_addrs ? lp2p_multiaddr_dup(in->listen_addrs[0]) : NULL;
      break;
    }
    case LP2P_IDENTIFY_EV_FAILED:
      r->failed++;
      r->last_err = ev->err;
      break;
    case LP2P_IDENTIFY_EV_PUSHED:
      r->pushed++;
      r->last_pushed_err = ev->err;
      break;
  }
}

static int connect_pair(tloop *L, tsw *a, tsw *b) {
  tdial d = {0};
  if (lp2p_swarm_dial(a->sw, NULL, (const char *[]){b->addr}, 1, tdial_cb, &d) < 0) return 0;
  return RUN_UNTIL(L, d.done && b->n_established >= 1, 5000) && d.err == 0;
}

static lp2p_identify *add_identify(tsw *t, idrec *r) {
  lp2p_identify_config cfg;
  lp2p_identify_config_default(&cfg);
  cfg.on_event = id_event;
  cfg.ud = r;
  cfg.push_check_ms = 100;
  lp2p_identify *id = NULL;
  CHECK_OK(lp2p_identify_add(t->sw, &cfg, &id));
  return id;
}

static void dummy_open(lp2p_stream *s, const char *p, void *ud) {
  (void)p;
  (void)ud;
  lp2p_stream_reset(s);
}
static const lp2p_stream_handler dummy_handler = {sizeof(lp2p_stream_handler), dummy_open, NULL, NULL, NULL, NULL};

TEST(swarm_identify_both_ways) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.agent_version = "lp2p-test-a/1";
  CHECK_OK(tsw_init(&a, &L, 1, &cfg, 1));
  cfg.agent_version = "lp2p-test-b/2";
  CHECK_OK(tsw_init(&b, &L, 2, &cfg, 1));
  idrec ra = {0}, rb = {0};
  lp2p_identify *ia = add_identify(&a, &ra), *ib = add_identify(&b, &rb);
  CHECK_EQ(lp2p_identify_add(a.sw, NULL, NULL), LP2P_ERR_EXISTS);
  CHECK(lp2p_identify_get(a.sw) == ia);
  CHECK_OK(lp2p_ping_add(b.sw, NULL, NULL));
  REQUIRE(connect_pair(&L, &a, &b));
  CHECK(RUN_UNTIL(&L, ra.identified && rb.identified, 5000));
  CHECK_EQ(ra.failed + rb.failed, 0);
  CHECK_STR(ra.agent, "lp2p-test-b/2");
  CHECK_STR(rb.agent, "lp2p-test-a/1");
  CHECK_STR(ra.pv, LP2P_IDENTIFY_PROTOCOL_VERSION);
  CHECK_EQ(ra.n_protocols, 3); /* id, id/push, ping */
  CHECK_EQ(rb.n_protocols, 2);
  CHECK_EQ(ra.n_listen, 1);
  CHECK(ra.has_observed && rb.has_observed);
  CHECK_EQ(ra.signed_record, 1);
  /* b's listen address is in a's address book */
  const lp2p_multiaddr *book[8];
  size_t nb = lp2p_swarm_peer_addresses(a.sw, &b.id, book, 8);
  int found = 0;
  const lp2p_multiaddr *bl;
  REQUIRE(lp2p_swarm_listen_addrs(b.sw, &bl, 1) == 1);
  for (size_t i = 0; i < nb && i < 8; i++) found |= lp2p_multiaddr_equal(book[i], bl);
  CHECK(found);
  CHECK(lp2p_multiaddr_equal(ra.listen0, bl));
  /* query */
  const lp2p_identify_info *info = lp2p_identify_peer_info(ia, &b.id);
  REQUIRE(info != NULL);
  CHECK_STR(info->agent_version, "lp2p-test-b/2");
  CHECK(lp2p_peer_id_equal(&info->peer, &b.id));
  CHECK(lp2p_peer_id_matches(&b.id, info->public_key));
  /* observed addresses: what each side sees as the other's remote address */
  CHECK(info->observed_addr && lp2p_multiaddr_equal(info->observed_addr, lp2p_swarm_peer_remote_addr(b.sw, &a.id)));
  const lp2p_identify_info *binfo = lp2p_identify_peer_info(ib, &a.id);
  REQUIRE(binfo && binfo->observed_addr);
  CHECK(lp2p_multiaddr_equal(binfo->observed_addr, lp2p_swarm_peer_remote_addr(a.sw, &b.id)));
  CHECK(lp2p_multiaddr_equal(binfo->observed_addr, bl));
  CHECK(lp2p_identify_peer_info(ia, &a.id) == NULL);

  /* push: b adds a protocol; a hears about it without asking */
  CHECK_OK(lp2p_swarm_set_protocol(b.sw, "/lp2p-test/new/1.0.0", &dummy_handler, NULL));
  CHECK(RUN_UNTIL(&L, ra.pushes_in >= 1 && rb.pushed >= 1, 3000));
  CHECK_EQ(rb.last_pushed_err, 0);
  CHECK(ra.has_proto_new);
  CHECK_EQ(ra.n_protocols, 4);
  info = lp2p_identify_peer_info(ia, &b.id);
  REQUIRE(info != NULL);
  CHECK_EQ(info->n_protocols, 4);
  CHECK_STR(info->agent_version, "lp2p-test-b/2");
  /* explicit push and request */
  CHECK_EQ(lp2p_identify_push(ia), 1);
  CHECK(RUN_UNTIL(&L, rb.pushes_in >= 1, 3000));
  CHECK_OK(lp2p_identify_request(ia, &b.id));
  CHECK(RUN_UNTIL(&L, ra.identified == 2, 3000));

  /* disconnect: the info is dropped */
  CHECK_OK(lp2p_swarm_disconnect(a.sw, &b.id));
  CHECK(RUN_UNTIL(&L, a.n_closed == 1, 3000));
  CHECK(lp2p_identify_peer_info(ia, &b.id) == NULL);
  lp2p_multiaddr_free(ra.listen0);
  lp2p_multiaddr_free(rb.listen0);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* ---- a fake identify server writing canned bytes ---- */
typedef struct fake {
  uint8_t *bytes;
  size_t len;
} fake;
static void fake_open(lp2p_stream *s, const char *p, void *ud) {
  fake *f = ud;
  (void)p;
  CHECK_EQ(lp2p_stream_write(s, f->bytes, f->len), (int64_t)f->len);
  lp2p_stream_close_write(s);
}
static const lp2p_stream_handler fake_handler = {sizeof(lp2p_stream_handler), fake_open, NULL, NULL, NULL, NULL};

static void set_fake(fake *f, const uint8_t *msg, size_t n) {
  free(f->bytes);
  f->bytes = malloc(n + 9);
  int k = lp2p_uvarint_encode(n, f->bytes, 9);
  memcpy(f->bytes + k, msg, n);
  f->len = (size_t)k + n;
}

TEST(swarm_identify_rejects_bad_answers) {
  vec v;
  REQUIRE(vec_load(&v) == 0);
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  idrec ra = {0};
  lp2p_identify *ia = add_identify(&a, &ra);
  fake f = {0};
  CHECK_OK(lp2p_swarm_set_protocol(b.sw, LP2P_IDENTIFY_PROTOCOL_ID, &fake_handler, &f));

  /* 1. the vector's message: a valid Identify, but of another peer */
  size_t wlen;
  uint8_t *full = json_hex(json_get(v.root, "identify_full"), "message_pb", &wlen);
  set_fake(&f, full, wlen);
  REQUIRE(connect_pair(&L, &a, &b));
  CHECK(RUN_UNTIL(&L, ra.failed == 1, 3000));
  CHECK_EQ(ra.last_err, LP2P_ERR_PEER_ID_MISMATCH);
  CHECK_EQ(ra.identified, 0);
  CHECK(lp2p_identify_peer_info(ia, &b.id) == NULL);

  /* 2. no public key */
  uint8_t msg[LP2P_IDENTIFY_MAX_MESSAGE + 64];
  size_t n = make_msg(msg, sizeof msg, NULL, 0, 2);
  set_fake(&f, msg, n);
  CHECK_OK(lp2p_identify_request(ia, &b.id));
  CHECK(RUN_UNTIL(&L, ra.failed == 2, 3000));
  CHECK_EQ(ra.last_err, LP2P_ERR_KEY);

  /* 3. the right key but someone else's signed record */
  uint8_t pk[64];
  int pklen = lp2p_pubkey_to_protobuf(lp2p_privkey_public(b.key), pk, sizeof pk);
  size_t reclen;
  uint8_t *rec = json_hex(json_get(v.root, "peer_record"), "envelope_pb", &reclen);
  n = make_msg(msg, sizeof msg, pk, (size_t)pklen, 1);
  msg[n++] = 0x42; /* field 8 */
  n += (size_t)lp2p_uvarint_encode(reclen, msg + n, 9);
  memcpy(msg + n, rec, reclen);
  n += reclen;
  set_fake(&f, msg, n);
  CHECK_OK(lp2p_identify_request(ia, &b.id));
  CHECK(RUN_UNTIL(&L, ra.failed == 3, 3000));
  CHECK_EQ(ra.last_err, LP2P_ERR_PEER_ID_MISMATCH);

  /* 4. oversized */
  n = make_msg(msg, sizeof msg, pk, (size_t)pklen, 0);
  memset(msg + n, 0, LP2P_IDENTIFY_MAX_MESSAGE + 1 - n);
  set_fake(&f, msg, LP2P_IDENTIFY_MAX_MESSAGE + 1);
  CHECK_OK(lp2p_identify_request(ia, &b.id));
  CHECK(RUN_UNTIL(&L, ra.failed == 4, 3000));
  CHECK_EQ(ra.last_err, LP2P_ERR_TOO_LARGE);

  /* 5. nothing at all, then EOF */
  f.len = 0;
  CHECK_OK(lp2p_identify_request(ia, &b.id));
  CHECK(RUN_UNTIL(&L, ra.failed == 5, 3000));
  CHECK_EQ(ra.last_err, LP2P_ERR_EOF);

  /* 6. a good answer (b's key) is accepted after all that; the connection survived */
  n = make_msg(msg, sizeof msg, pk, (size_t)pklen, 3);
  set_fake(&f, msg, n);
  CHECK_OK(lp2p_identify_request(ia, &b.id));
  CHECK(RUN_UNTIL(&L, ra.identified == 1, 3000));
  CHECK_EQ(ra.n_protocols, 3);
  CHECK_EQ(a.n_closed, 0);

  /* 7. b's own record, signed with rust-libp2p 0.57's legacy domain/payload type
   * (rust-libp2p#6204): accepted as b's signed record (same PeerRecord, same checks) */
  {
    uint8_t *prec = NULL;
    size_t plen = 0;
    lp2p_multiaddr *ma = NULL;
    CHECK_OK(lp2p_multiaddr_parse(&ma, "/ip4/127.0.0.1/tcp/4001", NULL, 0));
    const lp2p_multiaddr *mas[] = {ma};
    CHECK_OK(lp2p_peer_record_encode(&b.id, 7, mas, 1, &prec, &plen));
    uint8_t *env = NULL;
    size_t envlen = 0;
    static const char legacy_type[] = "/libp2p/routing-state-record";
    CHECK_OK(lp2p_envelope_seal(b.key, "libp2p-routing-state", (const uint8_t *)legacy_type, sizeof legacy_type - 1,
                                prec, plen, &env, &envlen));
    n = make_msg(msg, sizeof msg, pk, (size_t)pklen, 2);
    msg[n++] = 0x42; /* field 8 */
    n += (size_t)lp2p_uvarint_encode(envlen, msg + n, 9);
    memcpy(msg + n, env, envlen);
    n += envlen;
    set_fake(&f, msg, n);
    CHECK_OK(lp2p_identify_request(ia, &b.id));
    CHECK(RUN_UNTIL(&L, ra.identified == 2, 3000));
    CHECK_EQ(ra.n_protocols, 2);
    CHECK_EQ(ra.signed_record, 1);
    CHECK_EQ(ra.failed, 5);
    /* the same legacy envelope signed by another key: refused like any foreign record */
    free(env);
    env = NULL;
    CHECK_OK(lp2p_envelope_seal(a.key, "libp2p-routing-state", (const uint8_t *)legacy_type, sizeof legacy_type - 1,
                                prec, plen, &env, &envlen));
    n = make_msg(msg, sizeof msg, pk, (size_t)pklen, 2);
    msg[n++] = 0x42; /* field 8 */
    n += (size_t)lp2p_uvarint_encode(envlen, msg + n, 9);
    memcpy(msg + n, env, envlen);
    n += envlen;
    set_fake(&f, msg, n);
    CHECK_OK(lp2p_identify_request(ia, &b.id));
    CHECK(RUN_UNTIL(&L, ra.failed == 6, 3000));
    CHECK_EQ(ra.last_err, LP2P_ERR_PEER_ID_MISMATCH);
    free(env);
    free(prec);
    lp2p_multiaddr_free(ma);
  }

  free(rec);
  free(full);
  free(f.bytes);
  lp2p_multiaddr_free(ra.listen0);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
  vec_free(&v);
}

static void silent_open(lp2p_stream *s, const char *p, void *ud) {
  (void)s;
  (void)p;
  (void)ud;
}
static const lp2p_stream_handler silent_handler = {sizeof(lp2p_stream_handler), silent_open, NULL, NULL, NULL,
                                                   NULL};

TEST(swarm_identify_timeout) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  idrec ra = {0};
  lp2p_identify_config cfg;
  lp2p_identify_config_default(&cfg);
  CHECK_EQ(cfg.timeout_ms, 5000);
  cfg.timeout_ms = 300;
  cfg.on_event = id_event;
  cfg.ud = &ra;
  CHECK_OK(lp2p_identify_add(a.sw, &cfg, NULL));
  CHECK_OK(lp2p_swarm_set_protocol(b.sw, LP2P_IDENTIFY_PROTOCOL_ID, &silent_handler, NULL));
  REQUIRE(connect_pair(&L, &a, &b));
  CHECK(RUN_UNTIL(&L, ra.failed == 1, 3000));
  CHECK_EQ(ra.last_err, LP2P_ERR_TIMEOUT);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Our own message stays <= 4096 bytes even with many protocols/addresses. */
TEST(swarm_identify_own_message_limit) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  idrec ra = {0};
  add_identify(&a, &ra);
  CHECK_OK(lp2p_identify_add(b.sw, NULL, NULL));
  for (int i = 0; i < 200; i++) {
    char p[64];
    snprintf(p, sizeof p, "/lp2p-test/a-rather-long-protocol-name/%03d/1.0.0", i);
    CHECK_OK(lp2p_swarm_set_protocol(b.sw, p, &dummy_handler, NULL));
  }
  REQUIRE(connect_pair(&L, &a, &b));
  CHECK(RUN_UNTIL(&L, ra.identified == 1, 3000));
  CHECK_EQ(ra.failed, 0);
  CHECK(ra.n_protocols > 50 && ra.n_protocols < 202);
  CHECK_EQ(ra.signed_record, 0); /* dropped first */
  lp2p_multiaddr_free(ra.listen0);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

int main(void) {
  RUN(codec_encode_vectors);
  RUN(codec_decode_vectors);
  RUN(codec_limits_and_garbage);
  RUN(codec_apply_push);
  RUN(swarm_identify_both_ways);
  RUN(swarm_identify_rejects_bad_answers);
  RUN(swarm_identify_timeout);
  RUN(swarm_identify_own_message_limit);
  return test_done();
}
