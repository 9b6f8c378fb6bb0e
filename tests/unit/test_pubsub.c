/* test_pubsub.c - the gossipsub behaviour (lp2p/pubsub.h) between in-process swarms on the
 * in-process transport with manual clocks (heartbeats fire only in tclock_advance):
 * a line A-B-C delivers every message exactly once and a late joiner gets later messages;
 * validation and a content-hash message id; a peer that spams invalid messages is
 * graylisted and the mesh heals around it; a peer that never answers IWANT is penalised;
 * oversized frames reset the inbound stream. */
#include <stdlib.h>
#include <string.h>

#include "lp2p/encoding.h"
#include "lp2p/pubsub.h"
#include "protocols/gossipsub/engine/gossip_rpc.h"
#include "swarm_harness.h"
#include "test.h"

#define TOPIC "chat"
#define MAXN 8
#define MAXREC 64
#define M lp2p_mem_default()

typedef struct rec {
  int n;
  char data[MAXREC][64];
  int count[MAXREC];
  lp2p_peer_id from[MAXREC];
} rec;

static void on_msg(lp2p_pubsub *ps, const lp2p_pubsub_message *m, void *ud) {
  rec *r = ud;
  (void)ps;
  char d[64];
  size_t n = m->data_len < 63 ? m->data_len : 63;
  memcpy(d, m->data, n), d[n] = 0;
  for (int i = 0; i < r->n; i++)
    if (!strcmp(r->data[i], d)) {
      r->count[i]++;
      return;
    }
  if (r->n == MAXREC) return;
  strcpy(r->data[r->n], d);
  r->from[r->n] = *m->from;
  r->count[r->n++] = 1;
}
static int got(const rec *r, const char *d) {
  for (int i = 0; i < r->n; i++)
    if (!strcmp(r->data[i], d)) return r->count[i];
  return 0;
}

typedef struct net {
  tloop L;
  tsw s[MAXN];
  tsw *all[MAXN];
  lp2p_pubsub *ps[MAXN];
  rec r[MAXN];
  int n;
} net;

static void net_init(net *nt, int n, const lp2p_pubsub_config *pc) {
  memset(nt, 0, sizeof *nt);
  tloop_init(&nt->L);
  lp2p_swarm_config cfg;
  tsw_config_manual(&cfg);
  nt->n = n;
  for (int i = 0; i < n; i++) {
    CHECK_OK(tsw_init(&nt->s[i], &nt->L, (uint8_t)(10 + i), &cfg, TSW_LISTEN_MEMORY));
    nt->all[i] = &nt->s[i];
    if (pc) CHECK_OK(lp2p_pubsub_add(nt->s[i].sw, pc, &nt->ps[i]));
  }
}
static void net_free(net *nt) {
  for (int i = 0; i < nt->n; i++) tsw_free(&nt->s[i]);
  CHECK_EQ(tloop_finish(&nt->L), 0);
}
static void link_(net *nt, int i, int j) {
  tdial d = {0};
  CHECK_OK(lp2p_swarm_dial(nt->s[i].sw, NULL, (const char *[]){nt->s[j].addr}, 1, tdial_cb, &d));
  CHECK(RUN_UNTIL(&nt->L, d.done, 5000));
  CHECK_EQ(d.err, 0);
  CHECK_OK(tloop_settle(&nt->L));
}
static void advance(net *nt, uint64_t ms) { CHECK_OK(tclock_advance(&nt->L, nt->all, (size_t)nt->n, ms)); }
static int in_list(const lp2p_peer_id *ids, size_t n, const lp2p_peer_id *id) {
  for (size_t i = 0; i < n; i++)
    if (lp2p_peer_id_equal(&ids[i], id)) return 1;
  return 0;
}
static void publish(net *nt, int i, const char *text, size_t *peers) {
  uint8_t id[LP2P_PUBSUB_MAX_ID];
  int n = lp2p_pubsub_publish(nt->ps[i], TOPIC, (const uint8_t *)text, strlen(text), id, sizeof id, peers);
  CHECK(n > 0);
  CHECK_OK(tloop_settle(&nt->L));
}

/* ------------------------------------------------------------------------- */

TEST(line_exactly_once_and_late_joiner) {
  net nt;
  lp2p_pubsub_config pc;
  lp2p_pubsub_config_default(&pc);
  net_init(&nt, 4, &pc);
  for (int i = 0; i < 3; i++) CHECK_OK(lp2p_pubsub_subscribe(nt.ps[i], TOPIC, on_msg, &nt.r[i]));
  CHECK(lp2p_pubsub_subscribed(nt.ps[0], TOPIC));
  link_(&nt, 0, 1);
  link_(&nt, 1, 2); /* no A-C link */
  advance(&nt, 3000);
  /* subscriptions crossed, meshes formed */
  lp2p_peer_id ids[8];
  CHECK_EQ(lp2p_pubsub_topic_peers(nt.ps[1], TOPIC, ids, 8), 2u);
  CHECK_EQ(lp2p_pubsub_mesh_peers(nt.ps[1], TOPIC, ids, 8), 2u);
  CHECK(in_list(ids, 2, &nt.s[0].id) && in_list(ids, 2, &nt.s[2].id));
  CHECK_EQ(lp2p_pubsub_mesh_peers(nt.ps[0], TOPIC, ids, 8), 1u);
  CHECK(lp2p_peer_id_equal(&ids[0], &nt.s[1].id));
  CHECK_EQ(lp2p_pubsub_peers(nt.ps[2], ids, 8), 1u);

  size_t peers = 99;
  publish(&nt, 0, "hello from A", &peers);
  CHECK_EQ(peers, 1u);
  CHECK_EQ(got(&nt.r[1], "hello from A"), 1);
  CHECK_EQ(got(&nt.r[2], "hello from A"), 1);
  CHECK_EQ(got(&nt.r[0], "hello from A"), 0); /* never our own */
  CHECK(nt.r[2].n > 0 && lp2p_peer_id_equal(&nt.r[2].from[0], &nt.s[0].id));
  publish(&nt, 2, "hello from C", NULL);
  CHECK_EQ(got(&nt.r[0], "hello from C"), 1);
  CHECK_EQ(got(&nt.r[1], "hello from C"), 1);
  /* gossip rounds bring no second copy */
  advance(&nt, 5000);
  CHECK_EQ(got(&nt.r[1], "hello from A"), 1);
  CHECK_EQ(got(&nt.r[2], "hello from A"), 1);
  CHECK_EQ(got(&nt.r[0], "hello from C"), 1);

  /* D joins late, linked to C only */
  CHECK_OK(lp2p_pubsub_subscribe(nt.ps[3], TOPIC, on_msg, &nt.r[3]));
  link_(&nt, 3, 2);
  advance(&nt, 2000);
  CHECK(lp2p_pubsub_mesh_peers(nt.ps[3], TOPIC, ids, 8) == 1);
  CHECK_EQ(got(&nt.r[3], "hello from A"), 0); /* history is not replayed */
  for (int k = 0; k < 10; k++) {
    char t[32];
    snprintf(t, sizeof t, "late %d", k);
    publish(&nt, k % 2 ? 0 : 1, t, NULL);
  }
  advance(&nt, 4000);
  for (int k = 0; k < 10; k++) {
    char t[32];
    snprintf(t, sizeof t, "late %d", k);
    CHECK_EQ(got(&nt.r[3], t), 1);
    CHECK_EQ(got(&nt.r[2], t), 1);
    CHECK_EQ(got(&nt.r[k % 2 ? 1 : 0], t), 1);
  }
  lp2p_pubsub_stats st;
  lp2p_pubsub_get_stats(nt.ps[2], &st);
  CHECK_EQ(st.delivered, 11u); /* "hello from A" + 10 late ones */
  CHECK_EQ(st.invalid_sig, 0u);
  CHECK_EQ(st.rpc_errors, 0u);

  /* unsubscribe: C leaves, B's mesh shrinks, C gets nothing more */
  CHECK_OK(lp2p_pubsub_unsubscribe(nt.ps[2], TOPIC));
  CHECK_OK(tloop_settle(&nt.L));
  advance(&nt, 1000);
  CHECK_EQ(lp2p_pubsub_mesh_peers(nt.ps[1], TOPIC, ids, 8), 1u);
  CHECK_EQ(lp2p_pubsub_topic_peers(nt.ps[1], TOPIC, ids, 8), 1u);
  publish(&nt, 0, "after leave", NULL);
  CHECK_EQ(got(&nt.r[1], "after leave"), 1);
  CHECK_EQ(got(&nt.r[2], "after leave"), 0);
  net_free(&nt);
}

/* ------------------------------------------------------------------------- */

static lp2p_pubsub_verdict validate_no_bad(void *ud, const lp2p_pubsub_message *m) {
  (void)ud;
  if (m->data_len >= 3 && !memcmp(m->data, "bad", 3)) return LP2P_PUBSUB_REJECT;
  if (m->data_len >= 4 && !memcmp(m->data, "skip", 4)) return LP2P_PUBSUB_IGNORE;
  return LP2P_PUBSUB_ACCEPT;
}
static int content_id(void *ud, const lp2p_pubsub_message *m, uint8_t *out, size_t cap) {
  (void)ud;
  if (cap < 32) return LP2P_ERR_BUFSIZE;
  lp2p_sha256(m->data, m->data_len, out);
  return 32;
}

TEST(validation_and_content_id) {
  net nt;
  lp2p_pubsub_config pc;
  lp2p_pubsub_config_default(&pc);
  pc.validate = validate_no_bad;
  pc.msg_id = content_id;
  net_init(&nt, 3, &pc);
  for (int i = 0; i < 3; i++) CHECK_OK(lp2p_pubsub_subscribe(nt.ps[i], TOPIC, on_msg, &nt.r[i]));
  link_(&nt, 0, 1);
  link_(&nt, 1, 2);
  advance(&nt, 2000);
  uint8_t id1[64], id2[64], want[32];
  int n1 = lp2p_pubsub_publish(nt.ps[0], TOPIC, (const uint8_t *)"same", 4, id1, sizeof id1, NULL);
  CHECK_EQ(n1, 32);
  lp2p_sha256((const uint8_t *)"same", 4, want);
  CHECK_MEM(id1, want, 32);
  CHECK_OK(tloop_settle(&nt.L));
  /* the same content from C has the same id: B has seen it, A too */
  int n2 = lp2p_pubsub_publish(nt.ps[2], TOPIC, (const uint8_t *)"same", 4, id2, sizeof id2, NULL);
  CHECK_EQ(n2, 32);
  CHECK_OK(tloop_settle(&nt.L));
  CHECK_EQ(got(&nt.r[1], "same"), 1);
  CHECK_EQ(got(&nt.r[2], "same"), 1);
  CHECK_EQ(got(&nt.r[0], "same"), 0);
  /* rejected and ignored messages are neither delivered nor forwarded */
  publish(&nt, 0, "bad thing", NULL);
  publish(&nt, 0, "skip this", NULL);
  publish(&nt, 0, "fine", NULL);
  CHECK_EQ(got(&nt.r[1], "bad thing"), 0);
  CHECK_EQ(got(&nt.r[2], "bad thing"), 0);
  CHECK_EQ(got(&nt.r[1], "skip this"), 0);
  CHECK_EQ(got(&nt.r[2], "fine"), 1);
  lp2p_pubsub_stats st;
  lp2p_pubsub_get_stats(nt.ps[1], &st);
  CHECK_EQ(st.rejected, 1u);
  CHECK_EQ(st.ignored, 1u);
  double sc;
  CHECK_OK(lp2p_pubsub_peer_score(nt.ps[1], &nt.s[0].id, &sc));
  CHECK(sc < 0); /* one reject: P4 */
  net_free(&nt);
}

/* ------------------------------------------------------------------------- */
/* A raw peer: speaks /meshsub/1.1.0 through the public stream API and sends what the test
 * scripts (hand-built RPCs); it never answers anything. */

typedef struct raw {
  lp2p_stream *out;
  int opened, closed, close_err;
  size_t received;
} raw;

static void raw_open(lp2p_stream *s, const char *p, void *ud) {
  raw *r = ud;
  (void)p;
  r->out = s, r->opened = 1;
}
static void raw_close(lp2p_stream *s, int err, void *ud) {
  raw *r = ud;
  if (r->out == s) r->out = NULL;
  r->closed = 1, r->close_err = err;
}
static void raw_sink(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  (void)s, (void)p;
  ((raw *)ud)->received += n;
}
static const lp2p_stream_handler raw_out_h = {.struct_size = sizeof(lp2p_stream_handler),
                                              .on_open = raw_open,
                                              .on_data = raw_sink,
                                              .on_close = raw_close};
static const lp2p_stream_handler raw_in_h = {.struct_size = sizeof(lp2p_stream_handler), .on_data = raw_sink};

static void raw_start(net *nt, int i, int victim, raw *r) {
  memset(r, 0, sizeof *r);
  CHECK_OK(lp2p_swarm_set_protocol(nt->s[i].sw, LP2P_PUBSUB_PROTOCOL_V11, &raw_in_h, r));
  link_(nt, i, victim);
  const char *p[] = {LP2P_PUBSUB_PROTOCOL_V11};
  CHECK_OK(lp2p_swarm_open_stream(nt->s[i].sw, &nt->s[victim].id, p, 1, &raw_out_h, r, NULL));
  CHECK(RUN_UNTIL(&nt->L, r->opened, 5000));
}
/* Sends one RPC body (prefixed). */
static void raw_send(net *nt, raw *r, const lp2p_bytes *body) {
  uint8_t pre[10];
  int k = lp2p_uvarint_encode(body->len, pre, sizeof pre);
  REQUIRE(r->out);
  CHECK_OK(lp2p_stream_send_all(r->out, pre, (size_t)k, 0));
  CHECK_OK(lp2p_stream_send_all(r->out, body->data, body->len, 0));
  CHECK_OK(tloop_settle(&nt->L));
}
static void rpc_sub_graft(lp2p_bytes *b) {
  lp2p_bytes e = {0}, c = {0}, g = {0};
  lp2p_gs_pb_varint(M, &e, 1, 1);
  lp2p_gs_pb_ld(M, &e, 2, TOPIC, strlen(TOPIC));
  lp2p_gs_pb_ld(M, b, 1, e.data, e.len);
  lp2p_gs_pb_ld(M, &g, 1, TOPIC, strlen(TOPIC));
  lp2p_gs_pb_ld(M, &c, 3, g.data, g.len);
  lp2p_gs_pb_ld(M, b, 3, c.data, c.len);
  lp2p__bytes_free(M, &e), lp2p__bytes_free(M, &c), lp2p__bytes_free(M, &g);
}

TEST(invalid_spammer_graylisted_mesh_heals) {
  net nt;
  lp2p_pubsub_config pc;
  lp2p_pubsub_config_default(&pc);
  pc.D = 3, pc.D_lo = 2, pc.D_hi = 4, pc.D_lazy = 3;
  /* 0 = victim, 1..3 honest, 4 = spammer (no pubsub behaviour) */
  memset(&nt, 0, sizeof nt);
  net_init(&nt, 5, NULL);
  for (int i = 0; i < 4; i++) {
    CHECK_OK(lp2p_pubsub_add(nt.s[i].sw, &pc, &nt.ps[i]));
    CHECK_OK(lp2p_pubsub_subscribe(nt.ps[i], TOPIC, on_msg, &nt.r[i]));
  }
  link_(&nt, 1, 0);
  link_(&nt, 2, 0);
  link_(&nt, 3, 1);
  link_(&nt, 3, 2);
  raw sp;
  raw_start(&nt, 4, 0, &sp);
  lp2p_bytes b = {0};
  rpc_sub_graft(&b);
  raw_send(&nt, &sp, &b);
  lp2p__bytes_free(M, &b);
  advance(&nt, 2000);
  CHECK_EQ(lp2p_pubsub_topic_peers(nt.ps[0], TOPIC, NULL, 0), 3u);
  lp2p_peer_id ids[8];
  size_t nm = lp2p_pubsub_mesh_peers(nt.ps[0], TOPIC, ids, 8);
  CHECK(in_list(ids, nm, &nt.s[4].id)); /* the spammer got in by GRAFT */

  /* 20 messages signed by the spammer, each with its data changed after signing */
  const lp2p_privkey *k = lp2p_swarm_identity(nt.s[4].sw);
  for (int m = 0; m < 20; m++) {
    lp2p_bytes msg = {0}, rpc = {0};
    uint8_t seq[8] = {0, 0, 0, 0, 0, 0, 1, (uint8_t)m};
    char d[16];
    snprintf(d, sizeof d, "spam %02d", m);
    lp2p_gs_msg_fields f = {0};
    f.data = (const uint8_t *)d, f.data_len = strlen(d);
    f.seqno = seq, f.seqno_len = 8, f.topic = (const uint8_t *)TOPIC, f.topic_len = strlen(TOPIC);
    CHECK_OK(lp2p_gs_msg_sign_encode(M, k, &f, &msg));
    uint8_t *hit = NULL;
    for (size_t q = 0; q + 4 <= msg.len && !hit; q++)
      if (!memcmp(msg.data + q, "spam", 4)) hit = msg.data + q;
    REQUIRE(hit);
    hit[0] = 'S'; /* breaks the signature */
    lp2p_gs_pb_ld(M, &rpc, 2, msg.data, msg.len);
    raw_send(&nt, &sp, &rpc);
    lp2p__bytes_free(M, &msg), lp2p__bytes_free(M, &rpc);
  }
  lp2p_pubsub_stats st;
  lp2p_pubsub_get_stats(nt.ps[0], &st);
  CHECK(st.invalid_sig >= 3);
  double sc;
  CHECK_OK(lp2p_pubsub_peer_score(nt.ps[0], &nt.s[4].id, &sc));
  CHECK(sc < pc.graylist_threshold);
  CHECK_EQ(got(&nt.r[0], "Spam 00"), 0);
  /* further RPCs of the spammer are ignored unread */
  uint64_t gl = st.graylisted;
  b = (lp2p_bytes){0};
  rpc_sub_graft(&b);
  raw_send(&nt, &sp, &b);
  lp2p__bytes_free(M, &b);
  lp2p_pubsub_get_stats(nt.ps[0], &st);
  CHECK(st.graylisted > gl);
  /* the next heartbeat prunes it; the mesh is honest and keeps D_lo */
  advance(&nt, 1000);
  nm = lp2p_pubsub_mesh_peers(nt.ps[0], TOPIC, ids, 8);
  CHECK(!in_list(ids, nm, &nt.s[4].id));
  CHECK(nm >= 2);
  /* reconnecting does not wash the score clean (retained): still negative, no GRAFT accepted */
  double before;
  CHECK_OK(lp2p_pubsub_peer_score(nt.ps[0], &nt.s[4].id, &before));
  CHECK(before < -1);
  CHECK_OK(lp2p_swarm_disconnect(nt.s[0].sw, &nt.s[4].id));
  CHECK(RUN_UNTIL(&nt.L, !lp2p_swarm_is_connected(nt.s[4].sw, &nt.s[0].id), 5000));
  CHECK_OK(tloop_settle(&nt.L));
  CHECK_EQ(lp2p_pubsub_topic_peers(nt.ps[0], TOPIC, NULL, 0), 2u);
  raw_start(&nt, 4, 0, &sp);
  b = (lp2p_bytes){0};
  rpc_sub_graft(&b);
  raw_send(&nt, &sp, &b);
  lp2p__bytes_free(M, &b);
  CHECK_EQ(lp2p_pubsub_topic_peers(nt.ps[0], TOPIC, NULL, 0), 3u);
  CHECK_OK(lp2p_pubsub_peer_score(nt.ps[0], &nt.s[4].id, &sc));
  CHECK(sc < before + 1e-6); /* kept, and its GRAFT during the backoff cost it P7 on top */
  nm = lp2p_pubsub_mesh_peers(nt.ps[0], TOPIC, ids, 8);
  CHECK(!in_list(ids, nm, &nt.s[4].id)); /* its GRAFT was answered with PRUNE */
  /* and everyone honest still gets everything once */
  publish(&nt, 3, "after the storm", NULL);
  for (int i = 0; i < 3; i++) CHECK_EQ(got(&nt.r[i], "after the storm"), 1);
  publish(&nt, 0, "from the victim", NULL);
  for (int i = 1; i < 4; i++) CHECK_EQ(got(&nt.r[i], "from the victim"), 1);
  net_free(&nt);
}

TEST(iwant_never_answered_penalised) {
  net nt;
  lp2p_pubsub_config pc;
  lp2p_pubsub_config_default(&pc);
  memset(&nt, 0, sizeof nt);
  net_init(&nt, 2, NULL);
  CHECK_OK(lp2p_pubsub_add(nt.s[0].sw, &pc, &nt.ps[0]));
  CHECK_OK(lp2p_pubsub_subscribe(nt.ps[0], TOPIC, on_msg, &nt.r[0]));
  raw liar;
  raw_start(&nt, 1, 0, &liar);
  lp2p_bytes b = {0};
  rpc_sub_graft(&b);
  raw_send(&nt, &liar, &b);
  lp2p__bytes_free(M, &b);
  advance(&nt, 1000);
  double sc0;
  CHECK_OK(lp2p_pubsub_peer_score(nt.ps[0], &nt.s[1].id, &sc0));
  CHECK(sc0 >= 0);
  size_t before = liar.received;
  /* IHAVE for three ids nobody has */
  lp2p_bytes ih = {0}, c = {0};
  lp2p_gs_pb_ld(M, &ih, 1, TOPIC, strlen(TOPIC));
  lp2p_gs_pb_ld(M, &ih, 2, "fake-id-1", 9);
  lp2p_gs_pb_ld(M, &ih, 2, "fake-id-2", 9);
  lp2p_gs_pb_ld(M, &ih, 2, "fake-id-3", 9);
  lp2p_gs_pb_ld(M, &c, 1, ih.data, ih.len);
  lp2p_gs_pb_ld(M, &b, 3, c.data, c.len);
  raw_send(&nt, &liar, &b);
  lp2p__bytes_free(M, &b), lp2p__bytes_free(M, &ih), lp2p__bytes_free(M, &c);
  CHECK(liar.received > before); /* the IWANT went out */
  lp2p_pubsub_stats st;
  lp2p_pubsub_get_stats(nt.ps[0], &st);
  CHECK_EQ(st.broken_promises, 0u);
  advance(&nt, 5000); /* past iwant_followup_ms (3 s) and two heartbeats */
  lp2p_pubsub_get_stats(nt.ps[0], &st);
  CHECK(st.broken_promises >= 1);
  double sc;
  CHECK_OK(lp2p_pubsub_peer_score(nt.ps[0], &nt.s[1].id, &sc));
  CHECK(sc < 0);
  lp2p_peer_id ids[4];
  CHECK_EQ(lp2p_pubsub_mesh_peers(nt.ps[0], TOPIC, ids, 4), 0u); /* negative peers leave the mesh */
  net_free(&nt);
}

TEST(oversized_frame_resets_stream) {
  net nt;
  lp2p_pubsub_config pc;
  lp2p_pubsub_config_default(&pc);
  pc.max_rpc_size = 4096;
  memset(&nt, 0, sizeof nt);
  net_init(&nt, 2, NULL);
  CHECK_OK(lp2p_pubsub_add(nt.s[0].sw, &pc, &nt.ps[0]));
  raw r;
  raw_start(&nt, 1, 0, &r);
  uint8_t pre[10];
  int k = lp2p_uvarint_encode(5000, pre, sizeof pre);
  CHECK_OK(lp2p_stream_send_all(r.out, pre, (size_t)k, 0));
  CHECK(RUN_UNTIL(&nt.L, r.closed, 5000));
  CHECK_EQ(r.close_err, LP2P_ERR_RESET);
  lp2p_pubsub_stats st;
  lp2p_pubsub_get_stats(nt.ps[0], &st);
  CHECK_EQ(st.rpc_errors, 1u);
  /* publishing more than max_rpc_size is refused */
  static uint8_t big[5000];
  CHECK_EQ(lp2p_pubsub_publish(nt.ps[0], TOPIC, big, sizeof big, NULL, 0, NULL), LP2P_ERR_TOO_LARGE);
  CHECK_EQ(lp2p_pubsub_add(nt.s[0].sw, NULL, NULL), LP2P_ERR_EXISTS);
  CHECK(lp2p_pubsub_get(nt.s[0].sw) == nt.ps[0]);
  net_free(&nt);
}

int main(void) {
  RUN(line_exactly_once_and_late_joiner);
  RUN(validation_and_content_id);
  RUN(invalid_spammer_graylisted_mesh_heals);
  RUN(iwant_never_answered_penalised);
  RUN(oversized_frame_resets_stream);
  return test_done();
}
