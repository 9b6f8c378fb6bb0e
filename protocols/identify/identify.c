/* protocols/identify/identify.c - the identify behaviour: answers
 * /ipfs/id/1.0.0, identifies every new connection, accepts and sends
 * /ipfs/id/push/1.0.0. Built only on the public swarm API. See lp2p/identify.h. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lp2p/encoding.h"
#include "lp2p/log.h"
#include "lp2p/peerstore.h"
#include "protocols/identify/identify_int.h"
#include "protocols/proto_mem.h"

#define ID_LOG "identify"
#define ID_MAX_LISTEN_OWN 64
#define ID_MAX_PROTOCOLS_OWN 256

typedef struct id_req id_req;

typedef struct id_peer {
  struct id_peer *next;
  lp2p_peer_id peer;
  int connected;
  int have_info;
  lp2p_direction conn_dir;     /* of the connection (CONN_ESTABLISHED), for observed addresses */
  int announced;               /* PEER_IDENTIFIED raised for this connection ... */
  uint64_t announced_hash;     /* ... with this (protocols, listen addrs, agent) */
  id_req *req;                 /* our /ipfs/id/1.0.0 request in flight */
  lp2p__identify_state st;     /* accepted info (have_info) */
} id_peer;

struct lp2p_identify {
  lp2p_mem mem; /* the swarm's (lp2p_swarm_mem): the behaviour's own objects and codec state */
  lp2p_swarm *sw;
  lp2p_identify_config cfg;
  char *protocol_version;
  id_peer *peers;
  size_t n_connected;
  lp2p_timer *tick;            /* registry/address change check while connected */
  uint64_t baseline;           /* hash of (protocols, listen addrs) last announced */
  uint8_t *record;             /* our signed peer record, rebuilt when addresses change */
  size_t record_len;
  uint64_t record_seq, record_hash;
  int detached;
};

/* kinds of stream state */
enum { K_REQ = 1, K_ANSWER, K_PUSH_IN, K_PUSH_OUT };

struct id_req { /* outbound request or inbound push: read messages until EOF */
  int kind;
  lp2p_identify *id;
  lp2p_peer_id peer;
  lp2p_stream *s;
  lp2p_timer *timer;
  lp2p__identify_reader rd;
  lp2p__identify_state st;
  int done;
  size_t charged; /* bytes reserved on the stream (lp2p_stream_reserve_memory) */
};

/* A timer object (the behaviour's, beside the libuv handle) is smaller than this. */
#define ID_TIMER_BYTES 256u

/* Charges what r holds (object, partial message, merged fields) to its stream: the peer's resource
 * scopes. LP2P_ERR_LIMIT when over a limit. Released with the stream. */
static int req_charge(id_req *r, lp2p_stream *s) {
  size_t want = sizeof *r + ID_TIMER_BYTES + lp2p__identify_reader_memory(&r->rd) + lp2p__identify_state_memory(&r->st);
  if (want <= r->charged) return 0;
  int rv = lp2p_stream_reserve_memory(s, want - r->charged);
  if (rv == 0) r->charged = want;
  return rv == LP2P_ERR_CLOSED ? 0 : rv;
}

typedef struct id_writer { /* inbound answer or outbound push: write one message, close */
  int kind;
  lp2p_identify *id;
  lp2p_peer_id peer;
  lp2p_stream *s;
  lp2p_timer *timer;
  uint8_t *buf; /* the message until handed to lp2p_stream_send_all */
  size_t len;
  int err; /* forced result (timeout, send error) */
} id_writer;

/* ------------------------------------------------------------------------- */
/* helpers */

void lp2p_identify_config_default(lp2p_identify_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->struct_size = sizeof *cfg;
  cfg->timeout_ms = 5000;
  cfg->push = 1;
  cfg->signed_peer_record = 1;
  cfg->run_on_connect = 1;
  cfg->push_check_ms = 1000;
}

static void emit(lp2p_identify *id, lp2p_identify_event_type type, const lp2p_peer_id *peer, int err,
                 const lp2p_identify_info *info) {
  if (id->detached || !id->cfg.on_event) return;
  lp2p_identify_event ev;
  memset(&ev, 0, sizeof ev);
  ev.struct_size = sizeof ev;
  ev.type = type;
  ev.peer = peer;
  ev.err = err;
  ev.info = info;
  id->cfg.on_event(id, &ev, id->cfg.ud);
}

static void log_peer(lp2p_log_level lvl, const lp2p_peer_id *peer, const char *what, int err) {
  if ((int)lvl > (int)lp2p_log_get_level()) return;
  char pb[LP2P_PEER_ID_MAX_TEXT] = "?";
  lp2p_peer_id_to_string(peer, pb, sizeof pb);
  lp2p_log(lvl, ID_LOG, "peer %s: %s%s%s", pb, what, err ? " " : "", err ? lp2p_err_name(err) : "");
}

static id_peer *peer_find(lp2p_identify *id, const lp2p_peer_id *peer) {
  for (id_peer *p = id->peers; p; p = p->next)
    if (lp2p_peer_id_equal(&p->peer, peer)) return p;
  return NULL;
}

static id_peer *peer_get(lp2p_identify *id, const lp2p_peer_id *peer) {
  id_peer *p = peer_find(id, peer);
  if (p) return p;
  if (!(p = lp2p__pm_calloc(&id->mem, sizeof *p))) return NULL;
  p->peer = *peer;
  lp2p__identify_state_init_mem(&p->st, &id->mem);
  p->next = id->peers;
  id->peers = p;
  return p;
}

static void peer_maybe_free(lp2p_identify *id, id_peer *p) {
  if (p->connected || p->req) return;
  for (id_peer **pp = &id->peers; *pp; pp = &(*pp)->next) {
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  }
  lp2p__identify_state_clear(&p->st);
  lp2p__pm_free(&id->mem, p);
}

static uint64_t fnv(const void *data, size_t n) {
  const uint8_t *p = data;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

/* Order-independent hash of what PEER_IDENTIFIED reports. */
static uint64_t info_hash(const lp2p_identify_info *in) {
  uint64_t h = in->n_protocols * 131u + in->n_listen_addrs * 7u;
  for (size_t i = 0; i < in->n_protocols; i++) h += fnv(in->protocols[i], strlen(in->protocols[i]));
  for (size_t i = 0; i < in->n_listen_addrs; i++) {
    size_t len;
    const uint8_t *b = lp2p_multiaddr_bytes(in->listen_addrs[i], &len);
    h += fnv(b, len) * 3u;
  }
  if (in->agent_version) h ^= fnv(in->agent_version, strlen(in->agent_version)) * 5u;
  return h;
}

/* What identify learned goes to the peer store (listen addresses with source IDENTIFY; the store
 * refuses unspecified addresses and port 0), our observed address to external-address confirmation,
 * and PEER_IDENTIFIED is raised when something changed. */
static void publish(lp2p_identify *id, id_peer *p, int request) {
  lp2p_swarm *sw = id->sw;
  lp2p_peerstore *ps = lp2p_swarm_peerstore(sw);
  const lp2p_identify_info *in = &p->st.info;
  if (in->n_listen_addrs)
    lp2p_peerstore_add_addrs(ps, &p->peer, in->listen_addrs, in->n_listen_addrs, LP2P_ADDR_SRC_IDENTIFY,
                             LP2P_IDENTIFY_ADDR_TTL_MS);
  lp2p_peerstore_set_protocols(ps, &p->peer, in->protocols, in->n_protocols);
  if (in->agent_version) lp2p_peerstore_set_agent(ps, &p->peer, in->agent_version);
  if (in->public_key) lp2p_peerstore_set_pubkey(ps, &p->peer, in->public_key);
  lp2p_peerstore_mark_seen(ps, &p->peer);
  if (request && p->connected && in->observed_addr)
    lp2p_swarm_observed_addr(sw, &p->peer, p->conn_dir, lp2p_swarm_peer_remote_addr(sw, &p->peer),
                             in->observed_addr);
  uint64_t h = info_hash(in);
  if (p->announced && h == p->announced_hash) return;
  lp2p_swarm_event ev;
  memset(&ev, 0, sizeof ev);
  ev.struct_size = sizeof ev;
  ev.type = LP2P_SWARM_EV_PEER_IDENTIFIED;
  ev.peer = &p->peer;
  ev.addrs = in->listen_addrs;
  ev.n_addrs = in->n_listen_addrs;
  ev.protocols = in->protocols;
  ev.n_protocols = in->n_protocols;
  ev.agent = in->agent_version;
  if (lp2p_swarm_emit(sw, &ev) == 0) {
    p->announced = 1;
    p->announced_hash = h;
  }
}

/* Order-independent hash of the listen addresses. */
static uint64_t addrs_hash(lp2p_swarm *sw) {
  const lp2p_multiaddr *addrs[ID_MAX_LISTEN_OWN];
  size_t n = lp2p_swarm_listen_addrs(sw, addrs, ID_MAX_LISTEN_OWN);
  if (n > ID_MAX_LISTEN_OWN) n = ID_MAX_LISTEN_OWN;
  uint64_t h = n;
  for (size_t i = 0; i < n; i++) {
    size_t len;
    const uint8_t *b = lp2p_multiaddr_bytes(addrs[i], &len);
    h += fnv(b, len);
  }
  return h;
}

/* Order-independent hash of (registry, listen addresses). */
static uint64_t state_hash(lp2p_swarm *sw) {
  const char *protos[ID_MAX_PROTOCOLS_OWN];
  size_t n = lp2p_swarm_protocols(sw, protos, ID_MAX_PROTOCOLS_OWN);
  if (n > ID_MAX_PROTOCOLS_OWN) n = ID_MAX_PROTOCOLS_OWN;
  uint64_t h = n * 31u + addrs_hash(sw) * 7u;
  for (size_t i = 0; i < n; i++) h += fnv(protos[i], strlen(protos[i]));
  return h;
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* (Re)builds our signed peer record if the listen addresses changed. */
static void refresh_record(lp2p_identify *id, const lp2p_multiaddr *const *addrs, size_t n) {
  uint64_t h = addrs_hash(id->sw);
  if (id->record && h == id->record_hash) return;
  uint64_t seq = wall_ms();
  if (seq <= id->record_seq) seq = id->record_seq + 1;
  uint8_t *rec = NULL;
  size_t len = 0;
  if (lp2p_peer_record_seal(lp2p_swarm_identity(id->sw), seq, addrs, n, &rec, &len) < 0) return;
  free(id->record);
  id->record = rec;
  id->record_len = len;
  id->record_seq = seq;
  id->record_hash = h;
}

/* Our Identify message with its varint prefix (malloc'ed). observed may be NULL. */
static int build_own(lp2p_identify *id, const lp2p_multiaddr *observed, uint8_t **out, size_t *out_len) {
  lp2p_swarm *sw = id->sw;
  uint8_t pk[LP2P_PUBKEY_PB_MAX];
  int pklen = lp2p_pubkey_to_protobuf(lp2p_privkey_public(lp2p_swarm_identity(sw)), pk, sizeof pk);
  if (pklen < 0) return pklen;
  const lp2p_multiaddr *addrs[ID_MAX_LISTEN_OWN];
  size_t na = lp2p_swarm_listen_addrs(sw, addrs, ID_MAX_LISTEN_OWN);
  if (na > ID_MAX_LISTEN_OWN) na = ID_MAX_LISTEN_OWN;
  const char *protos[ID_MAX_PROTOCOLS_OWN];
  size_t np = lp2p_swarm_protocols(sw, protos, ID_MAX_PROTOCOLS_OWN);
  if (np > ID_MAX_PROTOCOLS_OWN) np = ID_MAX_PROTOCOLS_OWN;
  if (id->cfg.signed_peer_record) refresh_record(id, addrs, na);

  /* an observed address carries no /p2p suffix on our side (go style) */
  lp2p_multiaddr *obs = NULL;
  if (observed) {
    size_t cnt = lp2p_multiaddr_count(observed);
    uint32_t code = 0;
    if (cnt > 1 && lp2p_multiaddr_component(observed, cnt - 1, &code, NULL, NULL) == 0 && code == LP2P_MA_P2P)
      lp2p_multiaddr_prefix(&obs, observed, cnt - 1);
    else
      obs = lp2p_multiaddr_dup(observed);
  }
  lp2p__identify_fields f;
  memset(&f, 0, sizeof f);
  f.public_key = pk;
  f.public_key_len = (size_t)pklen;
  f.listen_addrs = addrs;
  f.n_listen_addrs = na;
  f.protocols = protos;
  f.n_protocols = np;
  f.observed_addr = obs;
  f.protocol_version = id->protocol_version;
  f.agent_version = lp2p_swarm_agent_version(sw);
  if (id->cfg.signed_peer_record && id->record) {
    f.signed_record = id->record;
    f.signed_record_len = id->record_len;
  }
  /* stay within 4096 bytes: drop the record, then addresses, then protocols */
  size_t size;
  while ((size = lp2p__identify_size(&f)) > LP2P_IDENTIFY_MAX_OWN_MESSAGE) {
    if (f.signed_record) {
      f.signed_record = NULL;
      f.signed_record_len = 0;
    } else if (f.n_listen_addrs) {
      f.n_listen_addrs--;
    } else if (f.n_protocols) {
      f.n_protocols--;
    } else {
      break;
    }
  }
  int rv = LP2P_ERR_NOMEM;
  uint8_t *buf = size != SIZE_MAX ? lp2p__pm_malloc(&id->mem, size + LP2P_UVARINT_MAX_LEN) : NULL;
  if (buf) {
    int k = lp2p_uvarint_encode(size, buf, LP2P_UVARINT_MAX_LEN);
    rv = lp2p__identify_encode(&f, buf + k, size);
    if (rv >= 0) {
      *out = buf;
      *out_len = (size_t)k + (size_t)rv;
      rv = 0;
    } else {
      lp2p__pm_free(&id->mem, buf);
    }
  }
  lp2p_multiaddr_free(obs);
  return rv;
}

/* ------------------------------------------------------------------------- */
/* reading side: our request, or an inbound push */

static void req_finish(id_req *r, int err);

static void req_timeout(lp2p_timer *t, void *ud) {
  id_req *r = ud;
  (void)t;
  req_finish(r, LP2P_ERR_TIMEOUT);
  lp2p_stream_reset(r->s);
}

static void req_finish(id_req *r, int err) {
  if (r->done) return;
  r->done = 1;
  lp2p_identify *id = r->id;
  if (!err) err = lp2p__identify_reader_end(&r->rd);
  if (!err) err = lp2p__identify_validate(&r->st, &r->peer, r->kind == K_REQ);
  if (err && r->kind == K_PUSH_IN &&
      (err == LP2P_ERR_CONNRESET || err == LP2P_ERR_CLOSED || err == LP2P_ERR_GOAWAY || err == LP2P_ERR_CANCELED)) {
    /* the connection went away under a push the peer was sending: nothing was received, and the
     * peer is gone (its connection-closed event says so); not a failure of identify */
    log_peer(LP2P_LOG_DEBUG, &r->peer, "push cut by the connection's end:", err);
    return;
  }
  if (err) {
    log_peer(LP2P_LOG_DEBUG, &r->peer, r->kind == K_REQ ? "identify failed:" : "push rejected:", err);
    emit(id, LP2P_IDENTIFY_EV_FAILED, &r->peer, err, NULL);
    return;
  }
  id_peer *p = peer_get(id, &r->peer);
  if (!p) {
    emit(id, LP2P_IDENTIFY_EV_FAILED, &r->peer, LP2P_ERR_NOMEM, NULL);
    return;
  }
  if (r->kind == K_PUSH_IN && p->have_info) {
    if (r->st.record_ok && p->st.record_ok && r->st.record_seq <= p->st.record_seq) {
      /* an older record: keep ours, apply the rest */
      free(r->st.record);
      r->st.record = NULL;
      r->st.record_len = 0;
      r->st.has_record = 0;
      r->st.record_ok = 0;
    }
    lp2p__identify_apply(&p->st, &r->st);
  } else if (r->kind == K_PUSH_IN && !r->st.key) {
    /* a partial push for a peer we know nothing about */
    emit(id, LP2P_IDENTIFY_EV_FAILED, &r->peer, LP2P_ERR_KEY, NULL);
    return;
  } else {
    lp2p__identify_state_clear(&p->st);
    p->st = r->st;
    lp2p__identify_state_init_mem(&r->st, &id->mem);
    lp2p__identify_state_view(&p->st, &p->peer);
  }
  p->have_info = 1;
  publish(id, p, r->kind == K_REQ);
  log_peer(LP2P_LOG_DEBUG, &r->peer, r->kind == K_REQ ? "identified" : "push received", 0);
  emit(id, r->kind == K_REQ ? LP2P_IDENTIFY_EV_IDENTIFIED : LP2P_IDENTIFY_EV_PUSH_RECEIVED, &p->peer, 0,
       &p->st.info);
  if (!p->connected && p->req != r) peer_maybe_free(id, p); /* not tracked: report only */
}

static void req_open(lp2p_stream *s, const char *protocol, void *ud) {
  id_req *r = ud;
  (void)protocol;
  lp2p_stream_close_write(s); /* the asker / push receiver sends nothing */
  (void)r;
}

static void req_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  id_req *r = ud;
  if (r->done) return;
  int rv = lp2p__identify_reader_feed(&r->rd, &r->st, p, n);
  if (rv >= 0) rv = req_charge(r, s);
  if (rv < 0) {
    req_finish(r, rv);
    lp2p_stream_reset(s);
  }
}

static void req_eof(lp2p_stream *s, void *ud) {
  (void)s;
  req_finish(ud, 0);
}

static void req_free(id_req *r) {
  lp2p_timer_free(r->timer);
  lp2p__identify_reader_free(&r->rd);
  lp2p__identify_state_clear(&r->st);
  lp2p__pm_free(&r->id->mem, r);
}

static void req_close(lp2p_stream *s, int err, void *ud) {
  id_req *r = ud;
  (void)s;
  req_finish(r, err ? err : LP2P_ERR_EOF);
  if (r->kind == K_REQ) {
    id_peer *p = peer_find(r->id, &r->peer);
    if (p && p->req == r) {
      p->req = NULL;
      peer_maybe_free(r->id, p);
    }
  }
  req_free(r);
}

static const lp2p_stream_handler req_handler = {
    sizeof(lp2p_stream_handler), req_open, req_data, req_eof, NULL, req_close,
};

static id_req *req_new(lp2p_identify *id, int kind, const lp2p_peer_id *peer) {
  id_req *r = lp2p__pm_calloc(&id->mem, sizeof *r);
  if (!r) return NULL;
  r->kind = kind;
  r->id = id;
  r->peer = *peer;
  r->rd.mem = &id->mem;
  lp2p__identify_state_init_mem(&r->st, &id->mem);
  if (!id->detached && lp2p_timer_new(&r->timer, id->sw, req_timeout, r) < 0) r->timer = NULL;
  return r;
}

int lp2p_identify_request(lp2p_identify *id, const lp2p_peer_id *peer) {
  if (!id || !peer || !peer->len) return LP2P_ERR_INVAL;
  if (id->detached) return LP2P_ERR_STATE;
  id_peer *p = peer_get(id, peer);
  if (!p) return LP2P_ERR_NOMEM;
  if (p->req) return 0;
  id_req *r = req_new(id, K_REQ, peer);
  if (!r) {
    peer_maybe_free(id, p);
    return LP2P_ERR_NOMEM;
  }
  const char *protos[] = {LP2P_IDENTIFY_PROTOCOL_ID};
  int rv = lp2p_swarm_open_stream(id->sw, peer, protos, 1, &req_handler, r, &r->s);
  if (rv < 0) {
    req_free(r);
    peer_maybe_free(id, p);
    return rv;
  }
  p->req = r;
  if (r->timer && id->cfg.timeout_ms) lp2p_timer_start(r->timer, id->cfg.timeout_ms, 0);
  return 0;
}

/* inbound push: the stream was negotiated by the registry */
static void push_in_open(lp2p_stream *s, const char *protocol, void *ud) {
  lp2p_identify *id = ud;
  (void)protocol;
  const lp2p_peer_id *peer = lp2p_stream_peer(s);
  id_req *r = peer ? req_new(id, K_PUSH_IN, peer) : NULL;
  if (!r) {
    lp2p_stream_reset(s);
    return;
  }
  r->s = s;
  lp2p_stream_set_handler(s, &req_handler, r);
  if (req_charge(r, s) < 0) {
    lp2p_stream_reset(s); /* req_close frees r */
    return;
  }
  if (r->timer && id->cfg.timeout_ms) lp2p_timer_start(r->timer, id->cfg.timeout_ms, 0);
  req_open(s, protocol, r);
}

static void detached_close(lp2p_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  (void)ud;
}

static const lp2p_stream_handler push_in_handler = {
    sizeof(lp2p_stream_handler), push_in_open, NULL, NULL, NULL, detached_close,
};

/* ------------------------------------------------------------------------- */
/* writing side: inbound answer, or our push */

static void wr_timeout(lp2p_timer *t, void *ud) {
  id_writer *w = ud;
  (void)t;
  w->err = LP2P_ERR_TIMEOUT;
  lp2p_stream_reset(w->s);
}

/* The whole message, then FIN (lp2p_stream_send_all copies what cannot leave at once). */
static void wr_pump(lp2p_stream *s, id_writer *w) {
  int rv = lp2p_stream_send_all(s, w->buf, w->len, 1);
  lp2p__pm_free(&w->id->mem, w->buf);
  w->buf = NULL;
  if (rv < 0) {
    w->err = rv;
    lp2p_stream_reset(s);
  }
}

static void wr_data(lp2p_stream *s, const uint8_t *p, size_t n, void *ud) {
  (void)s;
  (void)p;
  (void)n;
  (void)ud; /* the other side has nothing to say: ignore */
}

static void wr_close(lp2p_stream *s, int err, void *ud) {
  id_writer *w = ud;
  (void)s;
  if (w->kind == K_PUSH_OUT) {
    if (w->err) err = w->err;
    log_peer(LP2P_LOG_DEBUG, &w->peer, "push sent:", err);
    emit(w->id, LP2P_IDENTIFY_EV_PUSHED, &w->peer, err, NULL);
  }
  lp2p_timer_free(w->timer);
  lp2p__pm_free(&w->id->mem, w->buf);
  lp2p__pm_free(&w->id->mem, w);
}

static void push_out_open(lp2p_stream *s, const char *protocol, void *ud) {
  id_writer *w = ud;
  (void)protocol;
  if (build_own(w->id, lp2p_stream_remote_addr(s), &w->buf, &w->len) < 0) {
    lp2p_stream_reset(s);
    return;
  }
  wr_pump(s, w);
}

static const lp2p_stream_handler wr_handler = {
    sizeof(lp2p_stream_handler), NULL, wr_data, NULL, NULL, wr_close,
};
static const lp2p_stream_handler push_out_handler = {
    sizeof(lp2p_stream_handler), push_out_open, wr_data, NULL, NULL, wr_close,
};

static id_writer *wr_new(lp2p_identify *id, int kind) {
  id_writer *w = lp2p__pm_calloc(&id->mem, sizeof *w);
  if (!w) return NULL;
  w->kind = kind;
  w->id = id;
  if (!id->detached && lp2p_timer_new(&w->timer, id->sw, wr_timeout, w) < 0) w->timer = NULL;
  if (w->timer && id->cfg.timeout_ms) lp2p_timer_start(w->timer, id->cfg.timeout_ms, 0);
  return w;
}

static void answer_open(lp2p_stream *s, const char *protocol, void *ud) {
  lp2p_identify *id = ud;
  (void)protocol;
  id_writer *w = wr_new(id, K_ANSWER);
  if (!w) {
    lp2p_stream_reset(s);
    return;
  }
  w->s = s;
  if (lp2p_stream_peer(s)) w->peer = *lp2p_stream_peer(s);
  lp2p_stream_set_handler(s, &wr_handler, w);
  if (build_own(id, lp2p_stream_remote_addr(s), &w->buf, &w->len) < 0 ||
      lp2p_stream_reserve_memory(s, sizeof *w + ID_TIMER_BYTES + w->len) < 0) { /* released with the stream */
    lp2p_stream_reset(s);
    return;
  }
  wr_pump(s, w);
}

static const lp2p_stream_handler answer_handler = {
    sizeof(lp2p_stream_handler), answer_open, NULL, NULL, NULL, detached_close,
};

static int push_to(lp2p_identify *id, const lp2p_peer_id *peer) {
  id_writer *w = wr_new(id, K_PUSH_OUT);
  if (!w) return LP2P_ERR_NOMEM;
  w->peer = *peer;
  const char *protos[] = {LP2P_IDENTIFY_PUSH_PROTOCOL_ID};
  int rv = lp2p_swarm_open_stream(id->sw, peer, protos, 1, &push_out_handler, w, &w->s);
  if (rv < 0) {
    lp2p_timer_free(w->timer);
    lp2p__pm_free(&id->mem, w);
  }
  return rv;
}

static int peer_supports_push(const id_peer *p) {
  if (!p->have_info) return 0;
  for (size_t i = 0; i < p->st.n_protocols; i++)
    if (!strcmp(p->st.protocols[i], LP2P_IDENTIFY_PUSH_PROTOCOL_ID)) return 1;
  return 0;
}

int lp2p_identify_push(lp2p_identify *id) {
  if (!id || id->detached) return 0;
  id->baseline = state_hash(id->sw);
  int n = 0;
  for (id_peer *p = id->peers; p; p = p->next)
    if (p->connected && peer_supports_push(p) && push_to(id, &p->peer) == 0) n++;
  return n;
}

/* ------------------------------------------------------------------------- */
/* behaviour */

static void on_tick(lp2p_timer *t, void *ud) {
  lp2p_identify *id = ud;
  (void)t;
  if (!id->n_connected) {
    lp2p_timer_stop(id->tick);
    return;
  }
  if (id->cfg.push && state_hash(id->sw) != id->baseline) lp2p_identify_push(id);
}

static void id_on_event(void *self, lp2p_swarm *sw, const lp2p_swarm_event *ev) {
  lp2p_identify *id = self;
  (void)sw;
  if (id->detached) return;
  if (ev->type == LP2P_SWARM_EV_CONN_ESTABLISHED && ev->peer) {
    id_peer *p = peer_get(id, ev->peer);
    if (!p) return;
    if (!p->connected) {
      p->connected = 1;
      p->conn_dir = ev->dir;
      p->announced = 0;
      if (id->n_connected++ == 0 && id->tick && id->cfg.push && id->cfg.push_check_ms) {
        id->baseline = state_hash(id->sw);
        lp2p_timer_start(id->tick, id->cfg.push_check_ms, id->cfg.push_check_ms);
      }
    }
    if (id->cfg.run_on_connect) {
      int rv = lp2p_identify_request(id, ev->peer);
      if (rv < 0) log_peer(LP2P_LOG_DEBUG, ev->peer, "cannot start identify:", rv);
    }
  } else if (ev->type == LP2P_SWARM_EV_CONN_CLOSED && ev->peer) {
    id_peer *p = peer_find(id, ev->peer);
    if (!p || !p->connected) return;
    p->connected = 0;
    p->have_info = 0;
    lp2p__identify_state_clear(&p->st);
    if (--id->n_connected == 0 && id->tick) lp2p_timer_stop(id->tick);
    peer_maybe_free(id, p);
  }
}

static int id_attach(void *self, lp2p_swarm *sw) {
  lp2p_identify *id = self;
  id->sw = sw;
  int rv = lp2p_swarm_set_protocol(sw, LP2P_IDENTIFY_PROTOCOL_ID, &answer_handler, id);
  if (rv < 0) return rv;
  if (id->cfg.push) {
    if ((rv = lp2p_swarm_set_protocol(sw, LP2P_IDENTIFY_PUSH_PROTOCOL_ID, &push_in_handler, id)) < 0 ||
        (rv = lp2p_timer_new(&id->tick, sw, on_tick, id)) < 0) {
      /* the failed add destroys id: nothing registered may keep pointing at it */
      lp2p_swarm_remove_protocol(sw, LP2P_IDENTIFY_PUSH_PROTOCOL_ID);
      lp2p_swarm_remove_protocol(sw, LP2P_IDENTIFY_PROTOCOL_ID);
      id->tick = NULL;
      return rv;
    }
  }
  return 0;
}

static void id_detach(void *self, lp2p_swarm *sw) {
  lp2p_identify *id = self;
  (void)sw;
  id->detached = 1;
  lp2p_timer_free(id->tick);
  id->tick = NULL;
}

static void id_destroy(void *self) {
  lp2p_identify *id = self;
  lp2p_mem m = id->mem;
  while (id->peers) {
    id_peer *n = id->peers->next;
    lp2p__identify_state_clear(&id->peers->st);
    lp2p__pm_free(&m, id->peers);
    id->peers = n;
  }
  free(id->record); /* made by lp2p__peer_record_seal (libc) */
  lp2p__pm_free(&m, id->protocol_version);
  lp2p__pm_free(&m, id);
}

static const lp2p_behaviour_vtable id_vtable = {
    .struct_size = sizeof(lp2p_behaviour_vtable),
    .name = LP2P_IDENTIFY_BEHAVIOUR,
    .attach = id_attach,
    .on_event = id_on_event,
    .detach = id_detach,
    .destroy = id_destroy,
};

int lp2p_identify_add(lp2p_swarm *sw, const lp2p_identify_config *cfg, lp2p_identify **out) {
  if (out) *out = NULL;
  if (!sw) return LP2P_ERR_INVAL;
  if (lp2p_swarm_behaviour(sw, LP2P_IDENTIFY_BEHAVIOUR)) return LP2P_ERR_EXISTS;
  lp2p_identify *id = lp2p__pm_calloc(lp2p_swarm_mem(sw), sizeof *id);
  if (!id) return LP2P_ERR_NOMEM;
  id->mem = *lp2p_swarm_mem(sw);
  lp2p_identify_config_default(&id->cfg);
  if (cfg) {
    size_t n = cfg->struct_size && cfg->struct_size < sizeof id->cfg ? cfg->struct_size : sizeof id->cfg;
    memcpy(&id->cfg, cfg, n);
    id->cfg.struct_size = sizeof id->cfg;
  }
  const char *pv = id->cfg.protocol_version ? id->cfg.protocol_version : LP2P_IDENTIFY_PROTOCOL_VERSION;
  if (!(id->protocol_version = lp2p__pm_strdup(&id->mem, pv))) {
    lp2p__pm_free(&id->mem, id);
    return LP2P_ERR_NOMEM;
  }
  id->cfg.protocol_version = id->protocol_version;
  int rv = lp2p_swarm_add_behaviour(sw, &id_vtable, id); /* destroys id on failure */
  if (rv < 0) return rv;
  if (out) *out = id;
  return 0;
}

lp2p_identify *lp2p_identify_get(const lp2p_swarm *sw) {
  return sw ? lp2p_swarm_behaviour(sw, LP2P_IDENTIFY_BEHAVIOUR) : NULL;
}

const lp2p_identify_info *lp2p_identify_peer_info(const lp2p_identify *id, const lp2p_peer_id *peer) {
  if (!id || !peer) return NULL;
  id_peer *p = peer_find((lp2p_identify *)id, peer);
  return p && p->have_info ? &p->st.info : NULL;
}

void lp2p_identify_set_event_handler(lp2p_identify *id, lp2p_identify_event_fn fn, void *ud) {
  if (!id) return;
  id->cfg.on_event = fn;
  id->cfg.ud = ud;
}
