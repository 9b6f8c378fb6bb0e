/* swarm/rcmgr.c - the resource manager (see rcmgr.h): scope accounting, the peer and protocol scope
 * tables, and the swarm glue that charges connections, streams and the muxer's send side, wakes the
 * writers that waited for room, trims the allocator after bursts and reports usage. */
#include "swarm/rcmgr.h"

#include <assert.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "swarm/swarm_int.h"

/* ------------------------------------------------------------------------- */
/* accounting */

static void lim(lp2p__rc_scope *sc, uint64_t mem, uint32_t streams) {
  memset(sc, 0, sizeof *sc);
  sc->mem_limit = mem;
  sc->st_limit = streams;
}

void lp2p__rc_config_default(lp2p_swarm_config *cfg) {
  cfg->max_memory = 256u << 20;
  cfg->max_memory_per_peer = 32u << 20;
  cfg->max_memory_per_conn = 16u << 20;
  cfg->max_memory_per_stream = 4u << 20;
  cfg->max_memory_per_protocol = 0;
  cfg->max_streams = 16384;
  cfg->max_streams_per_peer = 1024;
  cfg->max_streams_per_protocol = 0;
}

void lp2p__rc_init(lp2p__rcmgr *rc, const lp2p_swarm_config *cfg, const lp2p_mem *mem) {
  memset(rc, 0, sizeof *rc);
  rc->mem = *mem;
  lim(&rc->node, cfg->max_memory, cfg->max_streams);
  lim(&rc->peer_lim, cfg->max_memory_per_peer, cfg->max_streams_per_peer);
  lim(&rc->conn_lim, cfg->max_memory_per_conn, cfg->max_streams_per_conn);
  lim(&rc->stream_lim, cfg->max_memory_per_stream, 0);
  lim(&rc->proto_lim, cfg->max_memory_per_protocol, cfg->max_streams_per_protocol);
}

void lp2p__rc_free(lp2p__rcmgr *rc) {
  while (rc->peers) {
    lp2p__rc_peer *p = rc->peers;
    rc->peers = p->next;
    lp2p__free(&rc->mem, p);
  }
  while (rc->protos) {
    lp2p__rc_proto *p = rc->protos;
    rc->protos = p->next;
    lp2p__free(&rc->mem, p->id);
    lp2p__free(&rc->mem, p);
  }
  rc->n_peers = rc->n_protos = 0;
}

void lp2p__rc_scope_init(lp2p__rc_scope *sc, const lp2p__rc_scope *l) { lim(sc, l->mem_limit, l->st_limit); }

static int over(uint64_t used, uint64_t n, uint64_t limit) { return limit && (n > limit || used > limit - n); }

int lp2p__rc_reserve(lp2p__rcmgr *rc, const lp2p__rc_chain *ch, uint64_t n) {
  for (unsigned i = 0; i < ch->n; i++)
    if (over(ch->s[i]->mem, n, ch->s[i]->mem_limit)) {
      rc->refused++;
      return LP2P_ERR_LIMIT;
    }
  lp2p__rc_force(ch, n);
  return 0;
}

void lp2p__rc_force(const lp2p__rc_chain *ch, uint64_t n) {
  for (unsigned i = 0; i < ch->n; i++) {
    lp2p__rc_scope *sc = ch->s[i];
    sc->mem += n;
    if (sc->mem > sc->mem_peak) sc->mem_peak = sc->mem;
  }
}

void lp2p__rc_release(lp2p__rcmgr *rc, const lp2p__rc_chain *ch, uint64_t n) {
  for (unsigned i = 0; i < ch->n; i++) {
    lp2p__rc_scope *sc = ch->s[i];
    if (sc->mem < n) {
      rc->underflows++;
      sc->mem = 0;
    } else {
      sc->mem -= n;
    }
  }
}

uint64_t lp2p__rc_room_frac(const lp2p__rc_chain *ch, unsigned shift) {
  uint64_t room = UINT64_MAX;
  for (unsigned i = 0; i < ch->n; i++) {
    const lp2p__rc_scope *sc = ch->s[i];
    if (!sc->mem_limit) continue;
    uint64_t lim = sc->mem_limit >> shift;
    uint64_t r = sc->mem >= lim ? 0 : lim - sc->mem;
    if (r < room) room = r;
  }
  return room;
}

uint64_t lp2p__rc_room(const lp2p__rc_chain *ch) { return lp2p__rc_room_frac(ch, 0); }

int lp2p__rc_stream_add(lp2p__rcmgr *rc, const lp2p__rc_chain *ch, int outbound) {
  for (unsigned i = 0; i < ch->n; i++) {
    const lp2p__rc_scope *sc = ch->s[i];
    if (sc->st_limit && (uint64_t)sc->st_in + sc->st_out >= sc->st_limit) {
      rc->refused++;
      return LP2P_ERR_LIMIT;
    }
  }
  for (unsigned i = 0; i < ch->n; i++) {
    if (outbound)
      ch->s[i]->st_out++;
    else
      ch->s[i]->st_in++;
  }
  return 0;
}

static void dec(lp2p__rcmgr *rc, uint32_t *v) {
  if (*v)
    (*v)--;
  else
    rc->underflows++;
}

void lp2p__rc_stream_del(lp2p__rcmgr *rc, const lp2p__rc_chain *ch, int outbound) {
  for (unsigned i = 0; i < ch->n; i++) dec(rc, outbound ? &ch->s[i]->st_out : &ch->s[i]->st_in);
}

int lp2p__rc_conn_add(lp2p__rcmgr *rc, const lp2p__rc_chain *ch, int outbound) {
  for (unsigned i = 0; i < ch->n; i++) {
    const lp2p__rc_scope *sc = ch->s[i];
    if (sc->cn_limit && (uint64_t)sc->cn_in + sc->cn_out >= sc->cn_limit) {
      rc->refused++;
      return LP2P_ERR_LIMIT;
    }
  }
  for (unsigned i = 0; i < ch->n; i++) {
    if (outbound)
      ch->s[i]->cn_out++;
    else
      ch->s[i]->cn_in++;
  }
  return 0;
}

void lp2p__rc_conn_del(lp2p__rcmgr *rc, const lp2p__rc_chain *ch, int outbound) {
  for (unsigned i = 0; i < ch->n; i++) dec(rc, outbound ? &ch->s[i]->cn_out : &ch->s[i]->cn_in);
}

static int scope_empty(const lp2p__rc_scope *sc) {
  return !sc->mem && !sc->st_in && !sc->st_out && !sc->cn_in && !sc->cn_out;
}

lp2p__rc_peer *lp2p__rc_peer_get(lp2p__rcmgr *rc, const lp2p_peer_id *id) {
  for (lp2p__rc_peer *p = rc->peers; p; p = p->next)
    if (lp2p_peer_id_equal(&p->id, id)) {
      p->refs++;
      return p;
    }
  lp2p__rc_peer *p = lp2p__calloc(&rc->mem, 1, sizeof *p);
  if (!p) return NULL;
  p->id = *id;
  p->refs = 1;
  lp2p__rc_scope_init(&p->sc, &rc->peer_lim);
  p->next = rc->peers;
  rc->peers = p;
  rc->n_peers++;
  return p;
}

void lp2p__rc_peer_put(lp2p__rcmgr *rc, lp2p__rc_peer *p) {
  if (!p) return;
  if (--p->refs) return;
  if (!scope_empty(&p->sc)) rc->underflows++; /* a charge never released */
  for (lp2p__rc_peer **pp = &rc->peers; *pp; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  rc->n_peers--;
  lp2p__free(&rc->mem, p);
}

lp2p__rc_proto *lp2p__rc_proto_get(lp2p__rcmgr *rc, const char *id) {
  for (lp2p__rc_proto *p = rc->protos; p; p = p->next)
    if (!strcmp(p->id, id)) {
      p->refs++;
      return p;
    }
  lp2p__rc_proto *p = lp2p__calloc(&rc->mem, 1, sizeof *p);
  if (!p) return NULL;
  p->id = lp2p__strndup(&rc->mem, id, strlen(id));
  if (!p->id) {
    lp2p__free(&rc->mem, p);
    return NULL;
  }
  p->refs = 1;
  lp2p__rc_scope_init(&p->sc, &rc->proto_lim);
  p->next = rc->protos;
  rc->protos = p;
  rc->n_protos++;
  return p;
}

void lp2p__rc_proto_put(lp2p__rcmgr *rc, lp2p__rc_proto *p) {
  if (!p) return;
  if (--p->refs) return;
  if (!scope_empty(&p->sc)) rc->underflows++;
  for (lp2p__rc_proto **pp = &rc->protos; *pp; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  rc->n_protos--;
  lp2p__free(&rc->mem, p->id);
  lp2p__free(&rc->mem, p);
}

/* ------------------------------------------------------------------------- */
/* swarm glue */

static void conn_chain(lp2p__conn *c, lp2p__rc_chain *ch) {
  ch->n = 0;
  ch->s[ch->n++] = &c->rc;
  if (c->rc_peer) ch->s[ch->n++] = &c->rc_peer->sc;
  ch->s[ch->n++] = &c->sw->rc.node;
}

static void stream_chain(lp2p_stream *s, lp2p__rc_chain *ch) {
  lp2p__conn *c = s->rc_conn;
  ch->n = 0;
  ch->s[ch->n++] = &s->rc;
  if (s->rc_proto) ch->s[ch->n++] = &s->rc_proto->sc;
  ch->s[ch->n++] = &c->rc;
  if (c->rc_peer) ch->s[ch->n++] = &c->rc_peer->sc;
  ch->s[ch->n++] = &c->sw->rc.node;
}

void lp2p__rcs_conn_open(lp2p__conn *c) {
  lp2p_swarm *sw = c->sw;
  lp2p__rc_scope_init(&c->rc, &sw->rc.conn_lim);
  lp2p__rc_chain ch;
  conn_chain(c, &ch);
  /* connection limits are the swarm's own (max_inbound_conns, ...): counted here, never refused */
  lp2p__rc_conn_add(&sw->rc, &ch, c->dir == LP2P_DIR_OUTBOUND);
  lp2p__rc_force(&ch, LP2P__RC_CONN_BASE);
  c->rc_held = LP2P__RC_CONN_BASE;
  c->rc_open = 1;
}

void lp2p__rcs_conn_peer(lp2p__conn *c) {
  lp2p_swarm *sw = c->sw;
  if (!c->rc_open || c->rc_peer || !c->remote.len) return;
  lp2p__rc_peer *p = lp2p__rc_peer_get(&sw->rc, &c->remote);
  if (!p) return; /* out of memory: the connection stays charged to itself and the node only */
  c->rc_peer = p;
  /* what the connection holds so far moves up into the peer */
  lp2p__rc_chain one = {{&p->sc}, 1};
  lp2p__rc_force(&one, c->rc.mem);
  p->sc.st_in += c->rc.st_in;
  p->sc.st_out += c->rc.st_out;
  if (c->dir == LP2P_DIR_OUTBOUND)
    p->sc.cn_out++;
  else
    p->sc.cn_in++;
}

/* What a write of n bytes on s may buffer now. Bytes within the peer's window go out as soon as the
 * socket takes them: they may use the whole room of the stream's scopes. Bytes beyond it (the muxer's
 * slack) wait for the peer to read, maybe forever: they may only use room below half of each limit, so
 * that streams whose peers stalled never take the budget the others need (the other half). */
static size_t write_allowed(lp2p_stream *s, size_t n) {
  lp2p__rc_chain ch;
  stream_chain(s, &ch);
  uint64_t half = lp2p__rc_room_frac(&ch, 1);
  if (half >= n) return n;
  uint64_t room = lp2p__rc_room(&ch);
  uint64_t win = s->conn && s->conn->mx && s->has_id ? lp2p__yamux_window_room(s->conn->mx, s->id) : 0;
  uint64_t a = win > half ? win : half;
  if (a > room) a = room;
  return a < n ? (size_t)a : n;
}

static void rc_wake(lp2p_swarm *sw, void *arg) {
  (void)arg;
  sw->rc_wake_queued = 0;
  /* oldest first; a woken writer that blocks again queues at the tail; each looked at once */
  size_t n = 0;
  for (lp2p__link *it = sw->rc_waiters.next; it != &sw->rc_waiters; it = it->next) n++;
  while (n-- && !lp2p__list_empty(&sw->rc_waiters)) {
    lp2p_stream *s = LP2P__CONTAINER(sw->rc_waiters.next, lp2p_stream, rc_link);
    lp2p__list_del(&s->rc_link);
    if (!s->rc_on) continue;
    if (!write_allowed(s, SIZE_MAX)) {
      lp2p__list_add_tail(&sw->rc_waiters, &s->rc_link);
      continue;
    }
    lp2p__stream_mx_writable(s);
  }
}

/* The node-wide pools are emptied after a burst and under memory pressure (spare send rings, charged to
 * the node; all: the free seal buffers too, the node's fixed overhead, which the next connection would
 * allocate again at once) and once no connection is left (the spare rings). */
static void drain_pools(lp2p_swarm *sw, int all) {
  lp2p__yamux_pool_drain(&sw->mem, &sw->ypool);
  if (all) lp2p__wbuf_pool_free(sw);
  lp2p__rcs_pools_sync(sw);
}

static void rc_trim_cb(lp2p_swarm *sw, void *arg) {
  sw->rc_trim_queued = 0;
  drain_pools(sw, arg == NULL);
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  sw->rc_trimmed = lp2p__swarm_now(sw);
  if (!sw->rc_trimmed) sw->rc_trimmed = 1;
}

/* A fall in usage (below half the peak, by at least 1 MiB) with connections still open is trimmed once
 * releases have paused for RC_TRIM_QUIET_MS, or at the latest RC_TRIM_LATEST_MS after the fall: a node
 * in the middle of a transfer would otherwise hand pages back to the kernel that it faults in again
 * a moment later (measured: 1,000 streams x 64 KiB, ~4,000 extra page faults and 8 % of the rate). */
#define RC_TRIM_QUIET_MS 1000
#define RC_TRIM_LATEST_MS 5000
#define RC_TRIM_MIN_FALL (1u << 20)

static int fell(const lp2p_swarm *sw) {
  uint64_t now = sw->rc.node.mem;
  return sw->rc_peak > now && sw->rc_peak - now >= RC_TRIM_MIN_FALL && now < sw->rc_peak / 2;
}

static void rc_trim_due(lp2p__sched_entry *e) {
  lp2p_swarm *sw = LP2P__CONTAINER(e, lp2p_swarm, rc_trim_e);
  lp2p_tstamp now = lp2p__swarm_now(sw);
  lp2p_tstamp quiet = sw->rc_last_release + RC_TRIM_QUIET_MS, latest = sw->rc_fall_at + RC_TRIM_LATEST_MS;
  if (now < quiet && now < latest) {
    lp2p__sched_set(sw, e, quiet < latest ? quiet : latest);
    return;
  }
  sw->rc_fall_at = 0;
  if (sw->freeing || sw->rc_trim_queued || !fell(sw)) return; /* usage climbed back: a new burst */
  if (lp2p__swarm_defer(sw, rc_trim_cb, NULL) < 0) return;
  sw->rc_trim_queued = 1;
  sw->rc_peak = sw->rc.node.mem; /* one trim per burst */
}

/* After a burst, trim the allocator: at once (next loop turn: the frees of a closing burst come first;
 * no timer keeps the loop alive) when the last connection closed; for a fall in usage once releases
 * paused (rc_trim_due) and at most once a second (a busy node does not trim all the time). */
static void schedule_trim(lp2p_swarm *sw, int last_conn) {
  if (sw->freeing || sw->rc_trim_queued) return;
  /* the last connection closing trims at once after a burst (1 MiB held since the last trim); after a
   * small one (a dial, a ping) it is rate-limited like a fall in usage: malloc_trim costs hundreds of
   * microseconds, and a node that connects and disconnects one peer at a time must not pay it each time */
  int burst = last_conn && sw->rc_peak >= RC_TRIM_MIN_FALL;
  lp2p_tstamp now = lp2p__swarm_now(sw);
  if (!burst && sw->rc_trimmed && now < sw->rc_trimmed + 1000) return;
  if (!last_conn && sw->rc_trim_open) {
    if (!sw->rc_fall_at) {
      sw->rc_fall_at = now ? now : 1;
      lp2p__sched_set(sw, &sw->rc_trim_e, now + RC_TRIM_QUIET_MS);
    }
    sw->rc_last_release = now;
    return;
  }
  if (sw->rc_fall_at) {
    sw->rc_fall_at = 0;
    lp2p__sched_cancel(sw, &sw->rc_trim_e);
  }
  if (lp2p__swarm_defer(sw, rc_trim_cb, last_conn ? (void *)sw : NULL) < 0) return;
  sw->rc_trim_queued = 1;
  sw->rc_peak = sw->rc.node.mem; /* one trim per burst */
}

void lp2p__rcs_start(lp2p_swarm *sw) {
  if (lp2p__sched_reserve(sw) < 0) return; /* NOMEM: falls are trimmed at once, as before */
  sw->rc_trim_e.fn = rc_trim_due;
  sw->rc_trim_open = 1;
}

void lp2p__rcs_stop(lp2p_swarm *sw) {
  if (!sw->rc_trim_open) return;
  sw->rc_trim_open = 0;
  sw->rc_fall_at = 0;
  lp2p__sched_unreserve(sw, &sw->rc_trim_e);
}

static void released(lp2p_swarm *sw) {
  if (!lp2p__list_empty(&sw->rc_waiters) && !sw->rc_wake_queued && !sw->freeing) {
    if (lp2p__swarm_defer(sw, rc_wake, NULL) == 0) sw->rc_wake_queued = 1;
  }
  if (sw->rc_fall_at)
    sw->rc_last_release = lp2p__swarm_now(sw);
  else if (fell(sw))
    schedule_trim(sw, 0);
}

static void note_peak(lp2p_swarm *sw) {
  if (sw->rc.node.mem > sw->rc_peak) sw->rc_peak = sw->rc.node.mem;
}

void lp2p__rcs_pools_sync(lp2p_swarm *sw) {
  /* the spare rings (at most 1/16 of the node budget); the free seal buffers are the node's own fixed
   * overhead (at most LP2P__SW_WBUF_POOL of them, whatever the peers do), like its read buffer */
  uint64_t now = (uint64_t)sw->ypool.total;
  if (now == sw->rc_pools) return;
  lp2p__rc_chain ch = {{&sw->rc.node}, 1};
  if (now > sw->rc_pools) {
    lp2p__rc_force(&ch, now - sw->rc_pools);
    note_peak(sw);
  } else {
    lp2p__rc_release(&sw->rc, &ch, sw->rc_pools - now);
    sw->rc_pools = now;
    released(sw);
    return;
  }
  sw->rc_pools = now;
}

/* Memory pressure (a writer was held back): every session's stalled rings shrink to fit, drained ones
 * are released, and, when the node scope itself is tight, the node-wide pools are emptied (they are
 * charged to the node only: emptying them for a connection or peer at its limit gains that scope
 * nothing, and the next streams would allocate the same rings again - measured: 12 MiB freed and
 * faulted back per squeeze with 1,000 streams x 64 KiB on one connection); at most once per
 * LP2P__RC_SQUEEZE_MS. */
#define LP2P__RC_SQUEEZE_MS 50
static void rc_squeeze(lp2p_swarm *sw, void *arg) {
  (void)arg;
  sw->rc_squeeze_queued = 0;
  sw->rc_squeezed = lp2p__swarm_now(sw);
  for (lp2p__link *it = sw->conns.next; it != &sw->conns; it = it->next) {
    lp2p__conn *c = LP2P__CONTAINER(it, lp2p__conn, sw_link);
    if (!c->mx || !c->rc_open) continue;
    if (lp2p__yamux_squeeze(c->mx)) lp2p__rcs_conn_sync(c);
  }
  const lp2p__rc_scope *node = &sw->rc.node;
  if (node->mem_limit && node->mem > node->mem_limit - node->mem_limit / 4) drain_pools(sw, 1);
}

static void want_squeeze(lp2p_swarm *sw) {
  if (sw->rc_squeeze_queued || sw->freeing) return;
  lp2p_tstamp now = lp2p__swarm_now(sw);
  if (sw->rc_squeezed && now < sw->rc_squeezed + LP2P__RC_SQUEEZE_MS) return;
  if (lp2p__swarm_defer(sw, rc_squeeze, NULL) == 0) sw->rc_squeeze_queued = 1;
}

/* Over 3/4 of a limit somewhere in the chain. */
static int tight(const lp2p__rc_chain *ch) {
  for (unsigned i = 0; i < ch->n; i++) {
    const lp2p__rc_scope *sc = ch->s[i];
    if (sc->mem_limit && sc->mem > sc->mem_limit - sc->mem_limit / 4) return 1;
  }
  return 0;
}

void lp2p__rcs_conn_sync(lp2p__conn *c) {
  if (!c->rc_open) return;
  /* by capacity: the rings, output buffer and own spares the session holds, not only their bytes */
  uint64_t now = lp2p_yamux_memory(c->mx);
  if (c->io && c->io_open) now += uv_stream_get_write_queue_size(c->io);
  lp2p__rcs_pools_sync(c->sw);
  lp2p__rc_chain ch;
  conn_chain(c, &ch);
  if (now > c->rc_mx) {
    lp2p__rc_force(&ch, now - c->rc_mx);
    note_peak(c->sw);
  } else if (now < c->rc_mx) {
    lp2p__rc_release(&c->sw->rc, &ch, c->rc_mx - now);
    released(c->sw);
  }
  c->rc_mx = now;
  /* above 3/4 of a limit, the session frees drained rings and shrinks stalled ones as it sends */
  if (c->mx) lp2p__yamux_set_tight(c->mx, tight(&ch));
}

int lp2p__rcs_conn_room(lp2p__conn *c, size_t n) {
  if (!c->rc_open) return 1;
  lp2p__rc_chain ch;
  conn_chain(c, &ch);
  return lp2p__rc_room(&ch) >= n;
}

void lp2p__rcs_conn_close(lp2p__conn *c) {
  if (!c->rc_open) return;
  lp2p_swarm *sw = c->sw;
  lp2p__rc_chain ch;
  conn_chain(c, &ch);
  lp2p__rc_release(&sw->rc, &ch, c->rc_held + c->rc_mx);
  lp2p__rc_conn_del(&sw->rc, &ch, c->dir == LP2P_DIR_OUTBOUND);
  c->rc_held = c->rc_mx = 0;
  /* every stream released its share when it left the connection */
  if (!scope_empty(&c->rc)) sw->rc.underflows++;
  lp2p__rc_peer_put(&sw->rc, c->rc_peer);
  c->rc_peer = NULL;
  c->rc_open = 0;
  released(sw);
  if (!sw->rc.node.cn_in && !sw->rc.node.cn_out) schedule_trim(sw, 1); /* which empties the pools */
}

int lp2p__rcs_stream_attach(lp2p_stream *s, lp2p__conn *c) {
  lp2p_swarm *sw = s->sw;
  if (s->rc_on || !c->rc_open) return 0;
  lp2p__rc_scope_init(&s->rc, &sw->rc.stream_lim);
  s->rc_conn = c;
  s->rc_proto = NULL;
  lp2p__rc_chain ch;
  stream_chain(s, &ch);
  int out = s->dir == LP2P_DIR_OUTBOUND;
  int rv = lp2p__rc_stream_add(&sw->rc, &ch, out);
  if (rv) return rv;
  if ((rv = lp2p__rc_reserve(&sw->rc, &ch, LP2P__RC_STREAM_BASE)) != 0) {
    lp2p__rc_stream_del(&sw->rc, &ch, out);
    return rv;
  }
  note_peak(sw);
  s->rc_app = 0;
  s->rc_dyn = 0;
  s->rc_body = 0;
  s->rc_on = 1;
  lp2p__rcs_stream_sync(s);
  return 0;
}

/* The fixed charge of a stream covers the swarm's and the muxer's stream objects (with the allocator's
 * headers and the muxer's map slot); what negotiation holds is charged as it changes. */
_Static_assert(sizeof(lp2p_stream) + sizeof(lp2p__yamux_stream) + 4 * 16 + 2 * sizeof(void *) <= LP2P__RC_STREAM_BASE,
               "LP2P__RC_STREAM_BASE must cover the stream objects");
_Static_assert(sizeof(lp2p__conn) + sizeof(struct lp2p_yamux) + 4 * 16 <= LP2P__RC_CONN_BASE / 2,
               "LP2P__RC_CONN_BASE must cover the connection objects (and leave half for the handshake)");

void lp2p__rcs_stream_sync(lp2p_stream *s) {
  if (!s->rc_on) return;
  uint64_t now = lp2p_mss_memory(s->mss) + (s->protocol ? strlen(s->protocol) + 1 : 0);
  if (now == s->rc_dyn) return;
  lp2p__rc_chain ch;
  stream_chain(s, &ch);
  if (now > s->rc_dyn) {
    lp2p__rc_force(&ch, now - s->rc_dyn); /* already held: the limits refuse what comes next */
    note_peak(s->sw);
  } else {
    lp2p__rc_release(&s->sw->rc, &ch, s->rc_dyn - now);
    released(s->sw);
  }
  s->rc_dyn = now;
}

static void body_chain(lp2p_stream *s, lp2p__rc_chain *ch) {
  stream_chain(s, ch);
  ch->s[0] = ch->s[--ch->n]; /* every scope but the stream's (the order does not matter) */
}

void lp2p__rcs_stream_detach(lp2p_stream *s) {
  if (!s->rc_on) return;
  lp2p_swarm *sw = s->sw;
  lp2p__list_del(&s->rc_link);
  lp2p__rc_chain ch;
  if (s->rc_body) {
    body_chain(s, &ch);
    lp2p__rc_release(&sw->rc, &ch, s->rc_body);
    s->rc_body = 0;
  }
  stream_chain(s, &ch);
  lp2p__rc_release(&sw->rc, &ch, LP2P__RC_STREAM_BASE + s->rc_app + s->rc_dyn);
  s->rc_dyn = 0;
  lp2p__rc_stream_del(&sw->rc, &ch, s->dir == LP2P_DIR_OUTBOUND);
  if (!scope_empty(&s->rc)) sw->rc.underflows++;
  lp2p__rc_proto_put(&sw->rc, s->rc_proto);
  s->rc_proto = NULL;
  s->rc_app = 0;
  s->rc_on = 0;
  released(sw);
}

int lp2p__rcs_stream_protocol(lp2p_stream *s, const char *protocol) {
  if (!s->rc_on || s->rc_proto || !protocol) return 0;
  lp2p_swarm *sw = s->sw;
  lp2p__rc_proto *p = lp2p__rc_proto_get(&sw->rc, protocol);
  if (!p) return LP2P_ERR_NOMEM;
  lp2p__rc_chain one = {{&p->sc}, 1};
  int out = s->dir == LP2P_DIR_OUTBOUND;
  int rv = lp2p__rc_stream_add(&sw->rc, &one, out);
  if (!rv && (rv = lp2p__rc_reserve(&sw->rc, &one, s->rc.mem)) != 0) lp2p__rc_stream_del(&sw->rc, &one, out);
  if (rv) {
    lp2p__rc_proto_put(&sw->rc, p);
    return rv;
  }
  s->rc_proto = p;
  return 0;
}

void lp2p__rcs_wait(lp2p_stream *s) {
  if (!s->rc_on) return;
  if (!lp2p__list_linked(&s->rc_link)) lp2p__list_add_tail(&s->sw->rc_waiters, &s->rc_link);
  want_squeeze(s->sw);
}

size_t lp2p__rcs_write_room(lp2p_stream *s, size_t n, size_t *grow) {
  *grow = SIZE_MAX;
  if (!s->rc_on) return n;
  size_t a = write_allowed(s, n);
  if (a) {
    /* what the send ring may grow by (capacity is charged, see lp2p__rcs_conn_sync) */
    lp2p__rc_chain ch;
    stream_chain(s, &ch);
    uint64_t room = lp2p__rc_room(&ch);
    *grow = room < SIZE_MAX ? (size_t)room : SIZE_MAX;
  }
  if (a >= n) return n;
  /* the rest waits in the app: on_writable after a release (or the peer's window update) leaves room */
  lp2p__rcs_wait(s);
  if (s->conn && s->conn->mx && s->has_id) lp2p__yamux_want_writable(s->conn->mx, s->id);
  return a;
}

int lp2p_stream_reserve_memory(lp2p_stream *s, size_t n) {
  if (!s) return LP2P_ERR_INVAL;
  if (!s->rc_on) return LP2P_ERR_CLOSED;
  lp2p__rc_chain ch;
  stream_chain(s, &ch);
  int rv = lp2p__rc_reserve(&s->sw->rc, &ch, n);
  if (rv) return rv;
  s->rc_app += n;
  note_peak(s->sw);
  return 0;
}

void lp2p_stream_release_memory(lp2p_stream *s, size_t n) {
  if (!s || !s->rc_on) return;
  if (n > s->rc_app) n = (size_t)s->rc_app;
  if (!n) return;
  lp2p__rc_chain ch;
  stream_chain(s, &ch);
  lp2p__rc_release(&s->sw->rc, &ch, n);
  s->rc_app -= n;
  released(s->sw);
}

int lp2p_stream_reserve_body(lp2p_stream *s, size_t n) {
  if (!s) return LP2P_ERR_INVAL;
  if (!s->rc_on) return LP2P_ERR_CLOSED;
  lp2p__rc_chain ch;
  body_chain(s, &ch);
  int rv = lp2p__rc_reserve(&s->sw->rc, &ch, n);
  if (rv) return rv;
  s->rc_body += n;
  note_peak(s->sw);
  return 0;
}

void lp2p_stream_release_body(lp2p_stream *s, size_t n) {
  if (!s || !s->rc_on) return;
  if (n > s->rc_body) n = (size_t)s->rc_body;
  if (!n) return;
  lp2p__rc_chain ch;
  body_chain(s, &ch);
  lp2p__rc_release(&s->sw->rc, &ch, n);
  s->rc_body -= n;
  released(s->sw);
}

static void fill(lp2p_scope_usage *u, lp2p_scope_kind kind, const lp2p__rc_scope *sc) {
  memset(u, 0, sizeof *u);
  u->kind = kind;
  u->memory = sc->mem;
  u->memory_limit = sc->mem_limit;
  u->memory_peak = sc->mem_peak;
  u->streams_in = sc->st_in;
  u->streams_out = sc->st_out;
  u->streams_limit = sc->st_limit;
  u->conns_in = sc->cn_in;
  u->conns_out = sc->cn_out;
}

size_t lp2p_swarm_resource_usage(const lp2p_swarm *sw, lp2p_scope_usage *out, size_t max, size_t elem_size) {
  if (!sw) return 0;
  if (!out || elem_size > sizeof(lp2p_scope_usage)) max = 0;
  size_t k = 0;
  lp2p_scope_usage u;
#define EMIT()                                                           \
  do {                                                                   \
    if (k < max) memcpy((char *)out + k * elem_size, &u, elem_size);     \
    k++;                                                                 \
  } while (0)
  fill(&u, LP2P_SCOPE_NODE, &sw->rc.node);
  EMIT();
  for (const lp2p__rc_peer *p = sw->rc.peers; p; p = p->next) {
    fill(&u, LP2P_SCOPE_PEER, &p->sc);
    u.peer = p->id;
    EMIT();
  }
  for (const lp2p__link *it = sw->conns.next; it != &sw->conns; it = it->next) {
    const lp2p__conn *c = LP2P__CONTAINER(it, lp2p__conn, sw_link);
    if (!c->rc_open) continue;
    fill(&u, LP2P_SCOPE_CONN, &c->rc);
    u.peer = c->remote;
    u.conn_id = c->id;
    u.dir = c->dir;
    EMIT();
  }
  for (const lp2p__rc_proto *p = sw->rc.protos; p; p = p->next) {
    fill(&u, LP2P_SCOPE_PROTOCOL, &p->sc);
    u.protocol = p->id;
    EMIT();
  }
#undef EMIT
  return k;
}

void lp2p_swarm_resource_reset_peaks(lp2p_swarm *sw) {
  if (!sw) return;
  sw->rc.node.mem_peak = sw->rc.node.mem;
  for (lp2p__rc_peer *p = sw->rc.peers; p; p = p->next) p->sc.mem_peak = p->sc.mem;
  for (lp2p__rc_proto *p = sw->rc.protos; p; p = p->next) p->sc.mem_peak = p->sc.mem;
  for (lp2p__link *it = sw->conns.next; it != &sw->conns; it = it->next) {
    lp2p__conn *c = LP2P__CONTAINER(it, lp2p__conn, sw_link);
    c->rc.mem_peak = c->rc.mem;
  }
}

void lp2p__rcs_free(lp2p_swarm *sw) {
  lp2p__yamux_pool_drain(&sw->mem, &sw->ypool);
  lp2p__rc_free(&sw->rc);
}
