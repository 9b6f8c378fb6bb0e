/* tests/unit/test_rcmgr.c - the resource manager's scope accounting (swarm/rcmgr.c): all-or-nothing
 * reservations over a chain of scopes, limits, forced charges, stream/connection counts, the peer and
 * protocol tables (allocation-failure loop), a randomized run in which every charge is released exactly
 * once (and a double release is detected), and the swarm glue end to end: streams over real loopback
 * connections charge the node, a stream limit refuses a stream, a memory limit turns writes into
 * backpressure with on_writable later, stalled streams hold at most half the budget (the rest goes to
 * streams with window), and everything returns to 0 once the streams are closed. */
#include "failmem.h"
#include "lp2p/yamux.h"
#include "swarm/rcmgr.h"
#include "swarm_harness.h"
#include "test.h"

static void limits_cfg(lp2p_swarm_config *cfg) {
  lp2p_swarm_config_default(cfg);
  cfg->max_memory = 1000;
  cfg->max_memory_per_peer = 600;
  cfg->max_memory_per_conn = 500;
  cfg->max_memory_per_stream = 300;
  cfg->max_memory_per_protocol = 0;
  cfg->max_streams = 4;
  cfg->max_streams_per_peer = 3;
  cfg->max_streams_per_conn = 2;
}

TEST(defaults) {
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  CHECK_EQ(cfg.max_memory, 256u << 20);
  CHECK_EQ(cfg.max_memory_per_peer, 32u << 20);
  CHECK_EQ(cfg.max_memory_per_conn, 16u << 20);
  CHECK_EQ(cfg.max_memory_per_stream, 4u << 20);
  CHECK_EQ(cfg.max_streams, 16384);
  CHECK_EQ(cfg.max_streams_per_peer, 1024);
}

TEST(chain_reserve_release) {
  lp2p_swarm_config cfg;
  limits_cfg(&cfg);
  lp2p__rcmgr rc;
  lp2p__rc_init(&rc, &cfg, lp2p_mem_default());
  lp2p_peer_id pid = {0};
  pid.len = 3;
  memcpy(pid.bytes, "abc", 3);
  lp2p__rc_peer *p = lp2p__rc_peer_get(&rc, &pid);
  REQUIRE(p != NULL);
  lp2p__rc_scope conn, st;
  lp2p__rc_scope_init(&conn, &rc.conn_lim);
  lp2p__rc_scope_init(&st, &rc.stream_lim);
  lp2p__rc_chain ch = {{&st, &conn, &p->sc, &rc.node}, 4};
  CHECK_EQ(lp2p__rc_room(&ch), 300); /* the stream's limit binds */
  CHECK_OK(lp2p__rc_reserve(&rc, &ch, 200));
  CHECK_EQ(lp2p__rc_reserve(&rc, &ch, 101), LP2P_ERR_LIMIT); /* all or nothing */
  CHECK_EQ(st.mem, 200);
  CHECK_EQ(conn.mem, 200);
  CHECK_EQ(p->sc.mem, 200);
  CHECK_EQ(rc.node.mem, 200);
  CHECK_EQ(rc.refused, 1);
  CHECK_OK(lp2p__rc_reserve(&rc, &ch, 100));
  CHECK_EQ(lp2p__rc_room(&ch), 0);
  /* a forced charge goes past the limits; reservations are refused until released */
  lp2p__rc_force(&ch, 50);
  CHECK_EQ(st.mem, 350);
  CHECK_EQ(lp2p__rc_room(&ch), 0);
  CHECK_EQ(lp2p__rc_reserve(&rc, &ch, 1), LP2P_ERR_LIMIT);
  lp2p__rc_release(&rc, &ch, 350);
  CHECK_EQ(rc.node.mem, 0);
  CHECK_EQ(rc.underflows, 0);
  /* each scope remembers its highest charge, forced ones included */
  CHECK_EQ(st.mem_peak, 350);
  CHECK_EQ(rc.node.mem_peak, 350);
  /* the node limit binds across chains */
  lp2p__rc_chain node_only = {{&rc.node}, 1};
  CHECK_OK(lp2p__rc_reserve(&rc, &node_only, 900));
  CHECK_EQ(lp2p__rc_room(&ch), 100);
  CHECK_EQ(lp2p__rc_reserve(&rc, &ch, 101), LP2P_ERR_LIMIT);
  lp2p__rc_release(&rc, &node_only, 900);
  /* overflow-safe limit check */
  CHECK_EQ(lp2p__rc_reserve(&rc, &ch, UINT64_MAX), LP2P_ERR_LIMIT);
  /* stream counts: the connection allows 2 */
  CHECK_OK(lp2p__rc_stream_add(&rc, &ch, 0));
  CHECK_OK(lp2p__rc_stream_add(&rc, &ch, 1));
  CHECK_EQ(lp2p__rc_stream_add(&rc, &ch, 1), LP2P_ERR_LIMIT);
  CHECK_EQ(rc.node.st_in, 1);
  CHECK_EQ(rc.node.st_out, 1);
  lp2p__rc_stream_del(&rc, &ch, 0);
  lp2p__rc_stream_del(&rc, &ch, 1);
  CHECK_EQ(rc.underflows, 0);
  /* releasing what was never charged is detected (and clamped) */
  lp2p__rc_release(&rc, &ch, 1);
  CHECK(rc.underflows > 0);
  CHECK_EQ(rc.node.mem, 0);
  lp2p__rc_peer_put(&rc, p);
  CHECK_EQ(rc.n_peers, 0);
  lp2p__rc_free(&rc);
}

TEST(tables_refcount_and_oom) {
  lp2p_swarm_config cfg;
  limits_cfg(&cfg);
  for (long n = 1;; n++) {
    failmem fm;
    failmem_init(&fm, n);
    lp2p__rcmgr rc;
    lp2p__rc_init(&rc, &cfg, &fm.mem);
    lp2p_peer_id a = {0}, b = {0};
    a.len = b.len = 1;
    a.bytes[0] = 1;
    b.bytes[0] = 2;
    lp2p__rc_peer *pa = lp2p__rc_peer_get(&rc, &a), *pa2 = lp2p__rc_peer_get(&rc, &a);
    lp2p__rc_peer *pb = lp2p__rc_peer_get(&rc, &b);
    lp2p__rc_proto *x = lp2p__rc_proto_get(&rc, "/x/1"), *x2 = lp2p__rc_proto_get(&rc, "/x/1");
    if (pa && pa2) CHECK(pa == pa2);
    if (x && x2) CHECK(x == x2);
    if (pa && pb) CHECK(pa != pb);
    if (x) CHECK_EQ(x->sc.st_limit, 0);
    if (pa) CHECK_EQ(pa->sc.mem_limit, 600);
    lp2p__rc_peer_put(&rc, pa);
    lp2p__rc_peer_put(&rc, pa2);
    lp2p__rc_peer_put(&rc, pb);
    lp2p__rc_proto_put(&rc, x);
    lp2p__rc_proto_put(&rc, x2);
    CHECK_EQ(rc.n_peers, 0);
    CHECK_EQ(rc.n_protos, 0);
    CHECK_EQ(rc.underflows, 0);
    lp2p__rc_free(&rc);
    CHECK_EQ(fm.live, 0);
    if (!fm.triggered) break;
  }
}

/* Random charges on random chains (node / peer / conn / stream / protocol), each recorded and released
 * exactly once in random order: every scope ends at zero, no underflow. */
TEST(random_exactly_once) {
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.max_memory = 1u << 20;
  cfg.max_memory_per_peer = 300000;
  cfg.max_memory_per_conn = 200000;
  cfg.max_memory_per_stream = 50000;
  cfg.max_memory_per_protocol = 400000;
  lp2p__rcmgr rc;
  lp2p__rc_init(&rc, &cfg, lp2p_mem_default());
  enum { NP = 3, NC = 6, NS = 24, NPR = 2, NCH = 4000 };
  lp2p__rc_peer *peers[NP];
  lp2p__rc_proto *protos[NPR];
  lp2p__rc_scope conns[NC], streams[NS];
  for (int i = 0; i < NP; i++) {
    lp2p_peer_id id = {0};
    id.len = 1;
    id.bytes[0] = (uint8_t)i;
    peers[i] = lp2p__rc_peer_get(&rc, &id);
    REQUIRE(peers[i] != NULL);
  }
  protos[0] = lp2p__rc_proto_get(&rc, "/a");
  protos[1] = lp2p__rc_proto_get(&rc, "/b");
  REQUIRE(protos[0] && protos[1]);
  for (int i = 0; i < NC; i++) lp2p__rc_scope_init(&conns[i], &rc.conn_lim);
  for (int i = 0; i < NS; i++) lp2p__rc_scope_init(&streams[i], &rc.stream_lim);
  struct charge {
    lp2p__rc_chain ch;
    uint64_t n;
    int stream, out;
  } *charges = calloc(NCH, sizeof *charges);
  REQUIRE(charges != NULL);
  int nch = 0, refused = 0;
  uint32_t seed = 12345;
#define RND() (seed = seed * 1103515245u + 12345u, (seed >> 8) & 0xffffff)
  for (int i = 0; i < NCH; i++) {
    int s = (int)(RND() % NS), c = s % NC, p = c % NP, pr = s % NPR;
    struct charge *g = &charges[nch];
    g->ch.n = 0;
    g->ch.s[g->ch.n++] = &streams[s];
    if (RND() & 1) g->ch.s[g->ch.n++] = &protos[pr]->sc;
    g->ch.s[g->ch.n++] = &conns[c];
    g->ch.s[g->ch.n++] = &peers[p]->sc;
    g->ch.s[g->ch.n++] = &rc.node;
    g->n = RND() % 20000;
    g->stream = RND() % 4 == 0;
    g->out = (int)(RND() & 1);
    if (g->stream) {
      if (lp2p__rc_stream_add(&rc, &g->ch, g->out)) {
        refused++;
        continue;
      }
    } else if (lp2p__rc_reserve(&rc, &g->ch, g->n)) {
      refused++;
      continue;
    }
    nch++;
    CHECK(rc.node.mem <= cfg.max_memory);
    for (int k = 0; k < NP; k++) CHECK(peers[k]->sc.mem <= cfg.max_memory_per_peer);
    for (int k = 0; k < NC; k++) CHECK(conns[k].mem <= cfg.max_memory_per_conn);
  }
  CHECK(refused > 0); /* the limits were reached */
  CHECK(nch > 100);
  /* release in random order */
  for (int left = nch; left > 0; left--) {
    int k = (int)(RND() % (uint32_t)left);
    struct charge g = charges[k];
    charges[k] = charges[left - 1];
    if (g.stream)
      lp2p__rc_stream_del(&rc, &g.ch, g.out);
    else {
      lp2p__rc_release(&rc, &g.ch, g.n);
    }
  }
  CHECK_EQ(rc.underflows, 0);
  CHECK_EQ(rc.node.mem, 0);
  CHECK_EQ(rc.node.st_in + rc.node.st_out, 0);
  for (int i = 0; i < NC; i++) CHECK_EQ(conns[i].mem + conns[i].st_in + conns[i].st_out, 0);
  for (int i = 0; i < NS; i++) CHECK_EQ(streams[i].mem + streams[i].st_in + streams[i].st_out, 0);
  for (int i = 0; i < NP; i++) lp2p__rc_peer_put(&rc, peers[i]);
  for (int i = 0; i < NPR; i++) lp2p__rc_proto_put(&rc, protos[i]);
  CHECK_EQ(rc.underflows, 0); /* the tables were empty when their last reference went */
  CHECK_EQ(rc.n_peers + rc.n_protos, 0);
  free(charges);
  lp2p__rc_free(&rc);
#undef RND
}

/* ---- swarm glue over loopback ---- */

#define SINK_ID "/rc-test/sink/1.0.0"
static int g_open, g_closed, g_writable, g_close_err[16];
static lp2p_stream *g_st[16];
static uint8_t g_buf[64 * 1024];

static void c_open(lp2p_stream *s, const char *p, void *ud) {
  (void)p;
  (void)ud;
  if (g_open < 16) g_st[g_open] = s;
  g_open++;
}
static void c_writable(lp2p_stream *s, void *ud) {
  (void)s;
  (void)ud;
  g_writable++;
}
static void c_close(lp2p_stream *s, int err, void *ud) {
  (void)ud;
  for (int i = 0; i < 16; i++)
    if (g_st[i] == s) g_st[i] = NULL;
  if (g_closed < 16) g_close_err[g_closed] = err;
  g_closed++;
}
static const lp2p_stream_handler k_client = {sizeof(lp2p_stream_handler), c_open, NULL, NULL, c_writable, c_close};

/* The server's sink: never consumes (the window closes), counts nothing. */
static int g_srv_open, g_srv_reserve_rv;
static void s_open(lp2p_stream *s, const char *p, void *ud) {
  (void)p;
  (void)ud;
  g_srv_open++;
  lp2p_stream_set_manual_consume(s, 1);
  g_srv_reserve_rv = lp2p_stream_reserve_memory(s, 1000);
}
static void s_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  (void)s;
  (void)p;
  (void)n;
  (void)ud;
}
static const lp2p_stream_handler k_sink = {sizeof(lp2p_stream_handler), s_open, s_data, NULL, NULL, NULL};

static uint64_t node_mem(lp2p_swarm *sw, uint32_t *streams) {
  lp2p_scope_usage u;
  CHECK(lp2p_swarm_resource_usage(sw, &u, 1, sizeof u) >= 1);
  CHECK_EQ(u.kind, LP2P_SCOPE_NODE);
  if (streams) *streams = u.streams_in + u.streams_out;
  return u.memory;
}

TEST(swarm_glue) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  lp2p_swarm_config ca, cb;
  tsw_config(&ca);
  tsw_config(&cb);
  ca.max_memory = 128u * 1024u; /* the client: a small node budget */
  cb.max_streams_per_peer = 3;   /* the server: three streams per peer */
  REQUIRE(tsw_init(&a, &L, 1, &ca, 0) == 0);
  REQUIRE(tsw_init(&b, &L, 2, &cb, 1) == 0);
  REQUIRE(lp2p_swarm_set_protocol(b.sw, SINK_ID, &k_sink, NULL) == 0);
  CHECK_EQ(node_mem(a.sw, NULL), 0);
  const char *addrs[] = {b.addr};
  tdial d = {0};
  REQUIRE(lp2p_swarm_dial(a.sw, NULL, addrs, 1, tdial_cb, &d) == 0);
  CHECK(RUN_UNTIL(&L, d.done, 5000));
  CHECK_EQ(d.err, 0);
  /* the connection's fixed charge, on both sides */
  CHECK(node_mem(a.sw, NULL) >= LP2P__RC_CONN_BASE);
  /* four streams: the server takes three (identify's stream may take a slot: wait for it to end) */
  CHECK(RUN_UNTIL(&L, ({
                    uint32_t n;
                    node_mem(b.sw, &n);
                    n == 0;
                  }),
                  5000));
  const char *protos[] = {SINK_ID};
  for (int i = 0; i < 4; i++) REQUIRE(lp2p_swarm_open_stream(a.sw, &b.id, protos, 1, &k_client, NULL, NULL) == 0);
  CHECK(RUN_UNTIL(&L, g_open + g_closed >= 4 && g_srv_open >= 3, 5000));
  CHECK(RUN_UNTIL(&L, g_closed >= 1, 5000));
  CHECK_EQ(g_srv_open, 3);
  CHECK_EQ(g_srv_reserve_rv, 0);
  CHECK(b.n_in_stream_failed >= 1);
  CHECK_EQ(b.last_in_stream_err, LP2P_ERR_LIMIT);
  uint32_t nst = 0;
  uint64_t mb = node_mem(b.sw, &nst);
  CHECK_EQ(nst, 3);
  CHECK(mb >= 3 * (LP2P__RC_STREAM_BASE + 1000));
  /* writes within the client's 128 KiB budget: short writes (backpressure, not growth), on_writable once
   * the bytes went out; the sink never reads: the windows close at 256 KiB per stream */
  int n_open = 0;
  for (int i = 0; i < 16; i++)
    if (g_st[i]) n_open++;
  CHECK_EQ(n_open, 3);
  uint64_t accepted = 0;
  for (int round = 0; round < 50; round++) {
    for (int i = 0; i < 16; i++) {
      if (!g_st[i]) continue;
      int64_t k;
      while ((k = lp2p_stream_write(g_st[i], g_buf, sizeof g_buf)) > 0) accepted += (uint64_t)k;
      CHECK(k >= 0);
    }
    tloop_sleep(&L, 10);
    /* capacity is charged: the rings may not grow past the room; the output buffer (frame headers) may */
    CHECK(node_mem(a.sw, NULL) <= ca.max_memory + 4096);
  }
  /* the node's peak (the usage report's memory_peak) saw the budget used, never far past it; a reset
   * starts it again from the current usage */
  lp2p_scope_usage u;
  REQUIRE(lp2p_swarm_resource_usage(a.sw, &u, 1, sizeof u) >= 1);
  CHECK(u.memory_peak >= u.memory);
  CHECK(u.memory_peak >= ca.max_memory / 2);
  CHECK(u.memory_peak <= ca.max_memory + 4096);
  lp2p_swarm_resource_reset_peaks(a.sw);
  REQUIRE(lp2p_swarm_resource_usage(a.sw, &u, 1, sizeof u) >= 1);
  CHECK_EQ(u.memory_peak, u.memory);
  /* Every stream got its whole window (256 KiB, of which the multistream proposal took 41 bytes; the sink
   * never reads, so that is all a stream can send), and the bytes accepted beyond the windows (the muxer's
   * slack, which waits for a reader that never comes) took at most half the budget: stalled streams cannot
   * starve the ones whose peers granted window (they once did: the slack of the first stream to stall held
   * the whole budget and the third stream never got its window). */
  uint64_t windows = 3u * (256u * 1024u - 41u);
  CHECK(accepted >= windows);
  CHECK(accepted - windows <= ca.max_memory / 2);
  CHECK(accepted <= 3u * (256u * 1024u - 41u + LP2P_YAMUX_SEND_SLACK));
  CHECK(g_writable > 0);
  /* closing the streams releases everything, on both sides */
  for (int i = 0; i < 16; i++)
    if (g_st[i]) lp2p_stream_reset(g_st[i]);
  CHECK(RUN_UNTIL(&L, g_closed == 4, 5000));
  CHECK(RUN_UNTIL(&L, node_mem(b.sw, NULL) == LP2P__RC_CONN_BASE && node_mem(a.sw, NULL) == LP2P__RC_CONN_BASE, 5000));
  size_t n = lp2p_swarm_resource_usage(a.sw, NULL, 0, sizeof(lp2p_scope_usage));
  CHECK(n >= 3); /* node, peer, connection (+ protocols) */
  CHECK_OK(lp2p_swarm_disconnect(a.sw, &b.id));
  CHECK(RUN_UNTIL(&L, node_mem(a.sw, NULL) == 0 && node_mem(b.sw, NULL) == 0, 5000));
  lp2p_swarm_resource_reset_peaks(a.sw);
  REQUIRE(lp2p_swarm_resource_usage(a.sw, &u, 1, sizeof u) >= 1);
  CHECK_EQ(u.memory_peak, 0);
  CHECK_EQ(lp2p_swarm_resource_usage(a.sw, NULL, 0, sizeof(lp2p_scope_usage)), 1); /* only the node */
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

int main(void) {
  RUN(defaults);
  RUN(chain_reserve_release);
  RUN(tables_refcount_and_oom);
  RUN(random_exactly_once);
  RUN(swarm_glue);
  return test_done();
}
