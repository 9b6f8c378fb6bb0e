/* protocols/messaging/messaging.c - durable messaging behaviour (lp2p/messaging.h) on the public swarm API
 * and the SQLite store (store.h).
 *
 * Sender: every pending message is held in memory (omsg) in its peer's `ready` or `inflight` list and in a
 * hash by id; the database is the durable copy. A peer has at most one outbound stream (ostream) at a
 * time, opened on demand with lp2p_swarm_open_stream (the live connection, or a redial from the peer
 * store), half-closed when nothing is left. Frames are batched into one send_all per pump.
 * Receiver: one istream per inbound stream; each MSG becomes an inbox write whose completion (after the
 * group commit) queues the ACK in the istream's buffer; buffers are sent after each commit.
 * Group commit: every store write arms the flush timer (flush_delay_ms, 0 = next loop turn); the flush
 * commits the batch, fires the completions (events), sends the queued ACKs and pumps the peers that
 * became ready. */
#include "lp2p/messaging.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lp2p/lpm.h"
#include "protocols/messaging/store.h"
#include "protocols/proto_mem.h"

_Static_assert(sizeof(lp2p_msg_id) == sizeof(lp2p_msgid), "message id layouts agree");

#define MSG_INFLIGHT_BYTES (8u * 1024u * 1024u)
#define HT_BITS 16
#define HT_CAP (1u << HT_BITS)

enum { O_UNCOMMITTED = 0, O_READY, O_INFLIGHT, O_SETTLING };

typedef struct mpeer mpeer;
typedef struct ostream ostream;

typedef struct omsg {
  lp2p_msg_id id;
  lp2p_msg_service *ms;
  mpeer *p;
  uint64_t seq, next_at, expires_at;
  uint32_t attempts;
  int state;
  ostream *st;
  uint8_t *body;
  size_t len;
  struct omsg *prev, *next; /* ready or inflight list */
  struct omsg *hnext;
  int last_status; /* for FAILED events */
} omsg;

typedef struct olist {
  omsg *head, *tail;
  size_t n;
} olist;

struct ostream {
  lp2p_msg_service *ms;
  mpeer *p;
  lp2p_stream *s;
  lp2p_lpm_reader *rd;
  int open, closing;
  uint64_t last_progress;
};

typedef struct istream {
  lp2p_msg_service *ms;
  lp2p_stream *s;
  lp2p_peer_id peer;
  mpeer *p;
  lp2p_lpm_reader *rd;
  int closed, eof, refs, dirty;
  uint8_t *obuf;
  size_t olen, ocap;
  struct istream *dnext;
} istream;

struct mpeer {
  lp2p_peer_id id;
  olist ready, inflight;
  size_t inflight_bytes;
  ostream *st;
  uint64_t paused_until, wake;
  uint32_t cwnd; /* after a RATE_LIMITED answer: 1, doubled by each OK (slow start), 0 = full window */
  int kick;
  double tok_msgs, tok_bytes;
  uint64_t tok_at;
  mpeer *next;
};

typedef struct pin {
  istream *is;
  lp2p_msg_id id;
  uint64_t seq;
  uint8_t *body;
  size_t len;
  int fresh;
} pin;

struct lp2p_msg_service {
  lp2p_mem mem;
  lp2p_swarm *sw;
  lp2p_msg_config cfg;
  char *db_path;
  lp2p_msgstore *st;
  mpeer *peers;
  omsg **ht;
  size_t n_pending;
  lp2p_timer *flush_t, *tick_t;
  int flush_armed, tick_armed, flushing, detached;
  istream *dirty;
  uint8_t *wbuf;
  size_t wcap;
};

/* ---- small helpers ---- */

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *lp2p_msg_status_name(int status) {
  switch (status) {
    case LP2P_MSG_OK: return "ok";
    case LP2P_MSG_DUPLICATE: return "duplicate";
    case LP2P_MSG_RATE_LIMITED: return "rate-limited";
    case LP2P_MSG_TOO_LARGE: return "too-large";
    case LP2P_MSG_INBOX_FULL: return "inbox-full";
    case LP2P_MSG_REJECTED: return "rejected";
    case LP2P_MSG_UNAVAILABLE: return "unavailable";
    default: return "unknown";
  }
}

char *lp2p_msg_id_hex(const lp2p_msg_id *id, char *buf) {
  static const char hx[] = "0123456789abcdef";
  for (int i = 0; i < LP2P_MSG_ID_LEN; i++) {
    buf[2 * i] = hx[id->b[i] >> 4];
    buf[2 * i + 1] = hx[id->b[i] & 15];
  }
  buf[2 * LP2P_MSG_ID_LEN] = 0;
  return buf;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int lp2p_msg_id_parse(const char *hex, lp2p_msg_id *id) {
  if (!hex || !id || strlen(hex) != 2 * LP2P_MSG_ID_LEN) return LP2P_ERR_PARSE;
  for (int i = 0; i < LP2P_MSG_ID_LEN; i++) {
    int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
    if (a < 0 || b < 0) return LP2P_ERR_PARSE;
    id->b[i] = (uint8_t)(a << 4 | b);
  }
  return 0;
}

static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

int lp2p_msg_frame_decode(const uint8_t *p, size_t n, lp2p_msg_frame *f) {
  if (!p || !f || n < 1) return LP2P_ERR_PARSE;
  memset(f, 0, sizeof *f);
  f->type = p[0];
  if (p[0] == LP2P_MSG_FRAME_MSG) {
    if (n < LP2P_MSG_HDR_LEN) return LP2P_ERR_PARSE;
    f->flags_or_status = p[1];
    memcpy(f->id.b, p + 2, LP2P_MSG_ID_LEN);
    f->seq = get_be64(p + 18);
    f->body = p + LP2P_MSG_HDR_LEN;
    f->body_len = n - LP2P_MSG_HDR_LEN;
    return 0;
  }
  if (p[0] == LP2P_MSG_FRAME_ACK) {
    if (n != LP2P_MSG_ACK_LEN) return LP2P_ERR_PARSE;
    f->flags_or_status = p[1];
    memcpy(f->id.b, p + 2, LP2P_MSG_ID_LEN);
    f->retry_after_ms = (uint32_t)p[18] << 24 | (uint32_t)p[19] << 16 | (uint32_t)p[20] << 8 | p[21];
    return 0;
  }
  return LP2P_ERR_PARSE;
}

int lp2p_msg_frame_encode_head(const lp2p_msg_frame *f, uint8_t out[LP2P_MSG_HDR_LEN]) {
  if (!f || !out) return LP2P_ERR_INVAL;
  out[0] = f->type;
  out[1] = f->flags_or_status;
  memcpy(out + 2, f->id.b, LP2P_MSG_ID_LEN);
  if (f->type == LP2P_MSG_FRAME_MSG) {
    put_be64(out + 18, f->seq);
    return LP2P_MSG_HDR_LEN;
  }
  if (f->type == LP2P_MSG_FRAME_ACK) {
    uint32_t r = f->retry_after_ms;
    out[18] = (uint8_t)(r >> 24), out[19] = (uint8_t)(r >> 16), out[20] = (uint8_t)(r >> 8), out[21] = (uint8_t)r;
    return LP2P_MSG_ACK_LEN;
  }
  return LP2P_ERR_INVAL;
}

void lp2p_msg_config_default(lp2p_msg_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->struct_size = sizeof *cfg;
  cfg->max_attempts = 10;
  cfg->ttl_ms = 7ull * 24 * 3600 * 1000;
  cfg->backoff_base_ms = 1000;
  cfg->backoff_max_ms = 300000;
  cfg->ack_timeout_ms = 10000;
  cfg->max_msg_size = 1024 * 1024;
  cfg->window = 4096;
}

static void emit(lp2p_msg_service *ms, lp2p_msg_event *ev) {
  if (ms->detached || !ms->cfg.on_event) return;
  ev->struct_size = sizeof *ev;
  ms->cfg.on_event(ms, ev, ms->cfg.ud);
}

static void emit_m(lp2p_msg_service *ms, omsg *m, lp2p_msg_event_type t, int err, int status, const char *reason) {
  lp2p_msg_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = t;
  ev.id = m->id;
  ev.peer = &m->p->id;
  ev.seq = m->seq;
  ev.err = err;
  ev.status = status;
  ev.reason = reason;
  ev.attempts = m->attempts;
  if (t == LP2P_MSG_EV_RETRY) {
    uint64_t now = wall_ms();
    ev.retry_after_ms = m->next_at > now ? m->next_at - now : 0;
  }
  emit(ms, &ev);
}

/* ---- lists and hash ---- */

static void l_push(olist *l, omsg *m) {
  m->next = NULL;
  m->prev = l->tail;
  if (l->tail) l->tail->next = m;
  else l->head = m;
  l->tail = m;
  l->n++;
}
static void l_insert_by_seq(olist *l, omsg *m) {
  omsg *after = l->tail;
  while (after && after->seq > m->seq) after = after->prev;
  m->prev = after;
  m->next = after ? after->next : l->head;
  if (m->next) m->next->prev = m;
  else l->tail = m;
  if (after) after->next = m;
  else l->head = m;
  l->n++;
}
static void l_remove(olist *l, omsg *m) {
  if (m->prev) m->prev->next = m->next;
  else l->head = m->next;
  if (m->next) m->next->prev = m->prev;
  else l->tail = m->prev;
  m->prev = m->next = NULL;
  l->n--;
}

static size_t h_idx(const lp2p_msg_id *id) { return ((size_t)id->b[0] << 8 | id->b[1]) & (HT_CAP - 1); }
static omsg *h_find(lp2p_msg_service *ms, const lp2p_msg_id *id) {
  for (omsg *m = ms->ht[h_idx(id)]; m; m = m->hnext)
    if (!memcmp(m->id.b, id->b, LP2P_MSG_ID_LEN)) return m;
  return NULL;
}
static void h_add(lp2p_msg_service *ms, omsg *m) {
  size_t i = h_idx(&m->id);
  m->hnext = ms->ht[i];
  ms->ht[i] = m;
}
static void h_del(lp2p_msg_service *ms, omsg *m) {
  for (omsg **pp = &ms->ht[h_idx(&m->id)]; *pp; pp = &(*pp)->hnext)
    if (*pp == m) {
      *pp = m->hnext;
      return;
    }
}

static mpeer *peer_get(lp2p_msg_service *ms, const lp2p_peer_id *id, int create) {
  for (mpeer *p = ms->peers; p; p = p->next)
    if (lp2p_peer_id_equal(&p->id, id)) return p;
  if (!create) return NULL;
  mpeer *p = lp2p__pm_calloc(&ms->mem, sizeof *p);
  if (!p) return NULL;
  p->id = *id;
  p->wake = LP2P_TSTAMP_NEVER;
  p->next = ms->peers;
  ms->peers = p;
  return p;
}

static void m_free(lp2p_msg_service *ms, omsg *m) {
  h_del(ms, m);
  if (ms->n_pending) ms->n_pending--;
  lp2p__pm_free(&ms->mem, m->body);
  lp2p__pm_free(&ms->mem, m);
}

/* ---- timers ---- */

static void kick_flush(lp2p_msg_service *ms) {
  if (ms->flush_armed || ms->detached || !ms->flush_t) return;
  ms->flush_armed = 1;
  lp2p_timer_start(ms->flush_t, ms->cfg.flush_delay_ms, 0);
}

static uint64_t tick_ms(const lp2p_msg_service *ms) {
  uint64_t t = ms->cfg.backoff_base_ms / 4;
  if (t > 250) t = 250;
  if (t < 5) t = 5;
  return t;
}

static void arm_tick(lp2p_msg_service *ms) {
  if (ms->tick_armed || ms->detached || !ms->tick_t) return;
  ms->tick_armed = 1;
  uint64_t t = tick_ms(ms);
  lp2p_timer_start(ms->tick_t, t, t);
}

static void ready_add(lp2p_msg_service *ms, omsg *m) {
  mpeer *p = m->p;
  m->state = O_READY;
  m->st = NULL;
  if (ms->cfg.ordered) l_insert_by_seq(&p->ready, m);
  else if (p->ready.tail && p->ready.tail->seq > m->seq) l_insert_by_seq(&p->ready, m);
  else l_push(&p->ready, m);
  uint64_t w = m->next_at;
  if (m->expires_at && m->expires_at < w) w = m->expires_at;
  if (w < p->wake) p->wake = w;
  p->kick = 1;
  arm_tick(ms);
}

/* ---- sender ---- */

static void pump(lp2p_msg_service *ms, mpeer *p);
static const lp2p_stream_handler out_handler;

typedef struct settle {
  lp2p_msg_service *ms;
  omsg *m;
  lp2p_msg_event_type ev;
  int err, status;
  const char *reason;
} settle;

static void on_settled(void *ud, int status) {
  settle *x = ud;
  lp2p_msg_service *ms = x->ms;
  omsg *m = x->m;
  (void)status;
  /* DELIVERED was raised when the ack arrived; if its mark did not commit, the message is still pending on
   * disk and the next run sends it again (the peer answers DUPLICATE) */
  if (x->ev != LP2P_MSG_EV_DELIVERED) emit_m(ms, m, x->ev, x->err, x->status, x->reason);
  m_free(ms, m);
  lp2p__pm_free(&ms->mem, x);
}

/* Settles m (already off every list): DELIVERED or a dead letter, raised after the commit. */
static void settle_msg(lp2p_msg_service *ms, omsg *m, lp2p_msg_event_type ev, int err, int status,
                       const char *reason) {
  m->state = O_SETTLING;
  if (ev == LP2P_MSG_EV_DELIVERED) emit_m(ms, m, ev, err, status, reason); /* the peer has it durably */
  settle *x = lp2p__pm_calloc(&ms->mem, sizeof *x);
  int rv = LP2P_ERR_NOMEM;
  if (x) {
    *x = (settle){ms, m, ev, err, status, reason};
    if (ev == LP2P_MSG_EV_DELIVERED)
      rv = lp2p_msgstore_outbox_mark_delivered(ms->st, (const lp2p_msgid *)&m->id, on_settled, x);
    else
      rv = lp2p_msgstore_outbox_mark_dead(ms->st, (const lp2p_msgid *)&m->id, reason, on_settled, x);
    if (rv == LP2P_ERR_NOT_FOUND) rv = 0, on_settled(x, 0);
  }
  if (rv < 0) { /* could not even queue the write: report now-ish, keep nothing */
    if (x) lp2p__pm_free(&ms->mem, x);
    if (ev != LP2P_MSG_EV_DELIVERED) emit_m(ms, m, ev, err, status, reason);
    m_free(ms, m);
  }
  kick_flush(ms);
}

static uint64_t backoff_ms(lp2p_msg_service *ms, uint32_t attempts) {
  return lp2p_msgstore_backoff(attempts, ms->cfg.backoff_base_ms, ms->cfg.backoff_max_ms, 250,
                               randombytes_random());
}

/* An attempt of m (off every list) failed: retry later, or dead letter after max_attempts (raised once
 * the store's mark has committed). */
static void fail_attempt(lp2p_msg_service *ms, omsg *m, int err, int status) {
  m->attempts++;
  uint64_t now = wall_ms();
  m->next_at = now + backoff_ms(ms, m->attempts);
  kick_flush(ms);
  if (m->attempts >= ms->cfg.max_attempts) {
    m->state = O_SETTLING;
    settle *x = lp2p__pm_calloc(&ms->mem, sizeof *x);
    int rv = LP2P_ERR_NOMEM;
    if (x) {
      *x = (settle){ms, m, LP2P_MSG_EV_FAILED, err, status, "attempts"};
      rv = lp2p_msgstore_outbox_mark_attempt(ms->st, (const lp2p_msgid *)&m->id, m->next_at, on_settled, x);
    }
    if (rv < 0) {
      lp2p__pm_free(&ms->mem, x);
      emit_m(ms, m, LP2P_MSG_EV_FAILED, err, status, "attempts");
      m_free(ms, m);
    }
    return;
  }
  int dead = lp2p_msgstore_outbox_mark_attempt(ms->st, (const lp2p_msgid *)&m->id, m->next_at, NULL, NULL);
  if (dead == 1) { /* the store counted more attempts (an earlier run): it is a dead letter now */
    m->attempts = ms->cfg.max_attempts;
    emit_m(ms, m, LP2P_MSG_EV_FAILED, err, status, "attempts");
    m_free(ms, m);
    return;
  }
  ready_add(ms, m);
  emit_m(ms, m, LP2P_MSG_EV_RETRY, err, status, NULL);
}

static void ostream_fail_all(lp2p_msg_service *ms, ostream *os, int err) {
  mpeer *p = os->p;
  omsg *m = p->inflight.head;
  while (m) {
    omsg *n = m->next;
    if (m->st == os) {
      l_remove(&p->inflight, m);
      p->inflight_bytes -= m->len < p->inflight_bytes ? m->len : p->inflight_bytes;
      fail_attempt(ms, m, err, -1);
    }
    m = n;
  }
}

static void out_open(lp2p_stream *s, const char *protocol, void *ud) {
  ostream *os = ud;
  (void)s;
  (void)protocol;
  os->open = 1;
  os->last_progress = wall_ms();
  if (os->p->st == os) pump(os->ms, os->p);
}

static void on_ack(lp2p_msg_service *ms, ostream *os, const lp2p_msg_frame *f) {
  mpeer *p = os->p;
  omsg *m = h_find(ms, &f->id);
  if (!m || m->state != O_INFLIGHT || m->st != os) return; /* late answer to an earlier attempt */
  l_remove(&p->inflight, m);
  p->inflight_bytes -= m->len < p->inflight_bytes ? m->len : p->inflight_bytes;
  int status = f->flags_or_status;
  uint64_t now = wall_ms();
  switch (status) {
    case LP2P_MSG_OK:
    case LP2P_MSG_DUPLICATE:
      if (p->cwnd) p->cwnd = p->cwnd >= ms->cfg.window / 2 ? 0 : p->cwnd * 2;
      m->attempts++;
      settle_msg(ms, m, LP2P_MSG_EV_DELIVERED, 0, status, NULL);
      break;
    case LP2P_MSG_RATE_LIMITED: {
      uint64_t ra = f->retry_after_ms ? f->retry_after_ms : 1;
      if (now + ra > p->paused_until) p->paused_until = now + ra;
      p->cwnd = 1;
      m->next_at = p->paused_until;
      ready_add(ms, m);
      emit_m(ms, m, LP2P_MSG_EV_RETRY, 0, status, NULL);
      break;
    }
    case LP2P_MSG_TOO_LARGE:
      settle_msg(ms, m, LP2P_MSG_EV_FAILED, 0, status, "too-large");
      break;
    case LP2P_MSG_REJECTED:
      settle_msg(ms, m, LP2P_MSG_EV_FAILED, 0, status, "rejected");
      break;
    default:
      fail_attempt(ms, m, 0, status);
      break;
  }
}

static void out_data(lp2p_stream *s, const uint8_t *d, size_t n, void *ud) {
  ostream *os = ud;
  lp2p_msg_service *ms = os->ms;
  os->last_progress = wall_ms();
  while (n > 0) {
    size_t used;
    const uint8_t *fm;
    size_t flen;
    int rv = lp2p_lpm_read(os->rd, d, n, &used, &fm, &flen);
    if (rv < 0) {
      lp2p_stream_reset(s);
      return;
    }
    d += used;
    n -= used;
    if (rv == 0) break;
    lp2p_msg_frame f;
    if (lp2p_msg_frame_decode(fm, flen, &f) < 0 || f.type != LP2P_MSG_FRAME_ACK) {
      lp2p_stream_reset(s);
      return;
    }
    on_ack(ms, os, &f);
  }
  if (os->p->st == os) pump(ms, os->p);
}

static void out_close(lp2p_stream *s, int err, void *ud) {
  ostream *os = ud;
  lp2p_msg_service *ms = os->ms;
  mpeer *p = os->p;
  (void)s;
  if (p->st == os) p->st = NULL;
  if (!err) err = LP2P_ERR_EOF;
  ostream_fail_all(ms, os, err);
  if (!os->open) {
    /* never opened (no address, dial failed, protocol refused): every due message had its attempt */
    uint64_t now = wall_ms();
    omsg *m = p->ready.head;
    while (m) {
      omsg *nx = m->next;
      if (m->next_at <= now) {
        l_remove(&p->ready, m);
        fail_attempt(ms, m, err, -1);
        if (ms->cfg.ordered) break;
      }
      m = nx;
    }
  }
  lp2p_lpm_reader_free(os->rd);
  lp2p__pm_free(&ms->mem, os);
}

static const lp2p_stream_handler out_handler = {
    .struct_size = sizeof(lp2p_stream_handler),
    .on_open = out_open,
    .on_data = out_data,
    .on_close = out_close,
};

static int wbuf_reserve(lp2p_msg_service *ms, size_t need) {
  if (need <= ms->wcap) return 0;
  size_t cap = ms->wcap ? ms->wcap : 65536;
  while (cap < need) cap *= 2;
  uint8_t *b = lp2p__pm_realloc(&ms->mem, ms->wbuf, cap);
  if (!b) return LP2P_ERR_NOMEM;
  ms->wbuf = b;
  ms->wcap = cap;
  return 0;
}

static void pump(lp2p_msg_service *ms, mpeer *p) {
  if (ms->detached) return;
  p->kick = 0;
  uint64_t now = wall_ms();
  if (p->paused_until > now) {
    arm_tick(ms);
    return;
  }
  if (!p->ready.n) {
    if (!p->inflight.n && p->st && p->st->open && !p->st->closing) { /* nothing left: let the stream go */
      p->st->closing = 1;
      lp2p_stream_close_write(p->st->s);
      p->st = NULL;
    }
    return;
  }
  int due = 0;
  for (omsg *m = p->ready.head; m; m = m->next) {
    if (m->next_at <= now) {
      due = 1;
      break;
    }
    if (ms->cfg.ordered) break;
  }
  if (!due) {
    if (!p->inflight.n && p->st && p->st->open && !p->st->closing) {
      p->st->closing = 1;
      lp2p_stream_close_write(p->st->s);
      p->st = NULL;
    }
    return;
  }
  if (!p->st) {
    ostream *os = lp2p__pm_calloc(&ms->mem, sizeof *os);
    if (!os) return;
    os->ms = ms;
    os->p = p;
    if (lp2p_lpm_reader_new(&os->rd, 64, &ms->mem) < 0) {
      lp2p__pm_free(&ms->mem, os);
      return;
    }
    const char *protos[] = {LP2P_MSG_PROTOCOL_ID};
    int rv = lp2p_swarm_open_stream(ms->sw, &p->id, protos, 1, &out_handler, os, &os->s);
    if (rv < 0) {
      lp2p_lpm_reader_free(os->rd);
      lp2p__pm_free(&ms->mem, os);
      return;
    }
    p->st = os;
    return; /* out_open pumps */
  }
  ostream *os = p->st;
  if (!os->open || os->closing) return;
  uint32_t window = ms->cfg.ordered ? 1 : p->cwnd ? p->cwnd : ms->cfg.window;
  size_t off = 0;
  omsg *m = p->ready.head;
  while (m && p->inflight.n < window && p->inflight_bytes < MSG_INFLIGHT_BYTES) {
    omsg *nx = m->next;
    if (m->next_at > now) {
      if (ms->cfg.ordered) break;
      m = nx;
      continue;
    }
    size_t plen = LP2P_MSG_HDR_LEN + m->len;
    if (wbuf_reserve(ms, off + LP2P_LPM_PREFIX_MAX + plen) < 0) break;
    int k = lp2p_lpm_write_prefix(plen, ms->wbuf + off, LP2P_LPM_PREFIX_MAX);
    if (k < 0) break;
    off += (size_t)k;
    lp2p_msg_frame f = {.type = LP2P_MSG_FRAME_MSG, .id = m->id, .seq = m->seq};
    off += (size_t)lp2p_msg_frame_encode_head(&f, ms->wbuf + off);
    if (m->len) memcpy(ms->wbuf + off, m->body, m->len);
    off += m->len;
    l_remove(&p->ready, m);
    m->state = O_INFLIGHT;
    m->st = os;
    l_push(&p->inflight, m);
    p->inflight_bytes += m->len;
    uint32_t a = m->attempts;
    m->attempts = a + 1; /* this attempt, for the event; counted for real when it fails or succeeds */
    emit_m(ms, m, LP2P_MSG_EV_SENT, 0, -1, NULL);
    m->attempts = a;
    m = nx;
  }
  if (off) {
    if (!os->last_progress || !p->inflight.n) os->last_progress = now;
    if (lp2p_stream_send_all(os->s, ms->wbuf, off, 0) < 0) lp2p_stream_reset(os->s);
  }
}

/* ---- receiver ---- */

static void is_free(lp2p_msg_service *ms, istream *is) {
  lp2p_lpm_reader_free(is->rd);
  lp2p__pm_free(&ms->mem, is->obuf);
  lp2p__pm_free(&ms->mem, is);
}

static void is_queue_ack(lp2p_msg_service *ms, istream *is, const lp2p_msg_id *id, int status, uint32_t retry) {
  if (is->closed) return;
  if (is->olen + 1 + LP2P_MSG_ACK_LEN > is->ocap) {
    size_t cap = is->ocap ? is->ocap * 2 : 1024;
    uint8_t *b = lp2p__pm_realloc(&ms->mem, is->obuf, cap);
    if (!b) return;
    is->obuf = b;
    is->ocap = cap;
  }
  is->obuf[is->olen++] = LP2P_MSG_ACK_LEN;
  lp2p_msg_frame f = {.type = LP2P_MSG_FRAME_ACK, .flags_or_status = (uint8_t)status, .id = *id,
                      .retry_after_ms = retry};
  is->olen += (size_t)lp2p_msg_frame_encode_head(&f, is->obuf + is->olen);
  if (!is->dirty) {
    is->dirty = 1;
    is->dnext = ms->dirty;
    ms->dirty = is;
  }
}

static void is_send(lp2p_msg_service *ms, istream *is) {
  (void)ms;
  if (!is->closed && is->olen) {
    if (lp2p_stream_send_all(is->s, is->obuf, is->olen, 0) < 0) lp2p_stream_reset(is->s);
  }
  is->olen = 0;
  if (!is->closed && is->eof && !is->refs) lp2p_stream_close_write(is->s);
}

static void send_dirty(lp2p_msg_service *ms) {
  while (ms->dirty) {
    istream *is = ms->dirty;
    ms->dirty = is->dnext;
    is->dirty = 0;
    is->dnext = NULL;
    is_send(ms, is);
    if (is->closed && !is->refs) is_free(ms, is);
  }
}

static void on_in_done(void *ud, int status) {
  pin *x = ud;
  istream *is = x->is;
  lp2p_msg_service *ms = is->ms;
  is->refs--;
  if (status < 0) {
    is_queue_ack(ms, is, &x->id, LP2P_MSG_UNAVAILABLE, 0);
  } else {
    is_queue_ack(ms, is, &x->id, x->fresh ? LP2P_MSG_OK : LP2P_MSG_DUPLICATE, 0);
    if (x->fresh) {
      lp2p_msg_event ev;
      memset(&ev, 0, sizeof ev);
      ev.type = LP2P_MSG_EV_RECEIVED;
      ev.id = x->id;
      ev.peer = &is->peer;
      ev.seq = x->seq;
      ev.body = x->body;
      ev.body_len = x->len;
      ev.status = -1;
      emit(ms, &ev);
    }
  }
  if (!is->dirty && is->closed && !is->refs) is_free(ms, is);
  lp2p__pm_free(&ms->mem, x->body);
  lp2p__pm_free(&ms->mem, x);
}

/* Token buckets: 0 when the message may pass (tokens taken), else the wait in ms. */
static uint32_t rate_check(lp2p_msg_service *ms, mpeer *p, size_t len) {
  const lp2p_msg_config *c = &ms->cfg;
  if (!c->rate_msgs_per_s && !c->rate_bytes_per_s) return 0;
  uint64_t now = wall_ms();
  double mburst = c->rate_msgs_burst ? c->rate_msgs_burst : c->rate_msgs_per_s;
  double bburst = (double)(c->rate_bytes_burst ? c->rate_bytes_burst : c->rate_bytes_per_s);
  if (bburst < (double)c->max_msg_size) bburst = c->max_msg_size;
  if (!p->tok_at) {
    p->tok_msgs = mburst;
    p->tok_bytes = bburst;
  } else if (now > p->tok_at) {
    double dt = (double)(now - p->tok_at) / 1000.0;
    p->tok_msgs += dt * c->rate_msgs_per_s;
    if (p->tok_msgs > mburst) p->tok_msgs = mburst;
    p->tok_bytes += dt * (double)c->rate_bytes_per_s;
    if (p->tok_bytes > bburst) p->tok_bytes = bburst;
  }
  p->tok_at = now;
  double wait = 0;
  if (c->rate_msgs_per_s && p->tok_msgs < 1.0) wait = (1.0 - p->tok_msgs) / c->rate_msgs_per_s;
  if (c->rate_bytes_per_s && p->tok_bytes < (double)len) {
    double w = ((double)len - p->tok_bytes) / (double)c->rate_bytes_per_s;
    if (w > wait) wait = w;
  }
  if (wait > 0) {
    uint64_t ms_wait = (uint64_t)(wait * 1000.0) + 1;
    return ms_wait > UINT32_MAX ? UINT32_MAX : (uint32_t)ms_wait;
  }
  if (c->rate_msgs_per_s) p->tok_msgs -= 1.0;
  if (c->rate_bytes_per_s) p->tok_bytes -= (double)len;
  return 0;
}

static void in_msg(lp2p_msg_service *ms, istream *is, const lp2p_msg_frame *f) {
  if (f->seq == 0 || f->flags_or_status != 0) {
    is_queue_ack(ms, is, &f->id, LP2P_MSG_REJECTED, 0);
    return;
  }
  if (f->body_len > ms->cfg.max_msg_size) {
    is_queue_ack(ms, is, &f->id, LP2P_MSG_TOO_LARGE, 0);
    return;
  }
  uint32_t wait = rate_check(ms, is->p, f->body_len);
  if (wait) {
    is_queue_ack(ms, is, &f->id, LP2P_MSG_RATE_LIMITED, wait);
    return;
  }
  pin *x = lp2p__pm_calloc(&ms->mem, sizeof *x);
  if (!x) {
    is_queue_ack(ms, is, &f->id, LP2P_MSG_UNAVAILABLE, 0);
    return;
  }
  x->is = is;
  x->id = f->id;
  x->seq = f->seq;
  x->len = f->body_len;
  int rv = ms->cfg.manual_ack
               ? lp2p_msgstore_inbox_put_if_new(ms->st, is->peer.bytes, is->peer.len, (const lp2p_msgid *)&f->id,
                                                f->seq, f->body, f->body_len, wall_ms(), on_in_done, x)
               : lp2p_msgstore_inbox_put_taken(ms->st, is->peer.bytes, is->peer.len, (const lp2p_msgid *)&f->id,
                                               f->seq, f->body_len, wall_ms(), on_in_done, x);
  if (rv == LP2P_INBOX_NEW && f->body_len) {
    x->body = lp2p__pm_malloc(&ms->mem, f->body_len);
    if (x->body) memcpy(x->body, f->body, f->body_len);
    else x->len = 0;
  }
  if (rv < 0) {
    lp2p__pm_free(&ms->mem, x);
    is_queue_ack(ms, is, &f->id, rv == LP2P_ERR_LIMIT ? LP2P_MSG_INBOX_FULL : LP2P_MSG_UNAVAILABLE, 0);
    return;
  }
  x->fresh = rv == LP2P_INBOX_NEW;
  is->refs++;
  kick_flush(ms);
}

static void in_open(lp2p_stream *s, const char *protocol, void *ud) {
  lp2p_msg_service *ms = ud;
  (void)protocol;
  istream *is = lp2p__pm_calloc(&ms->mem, sizeof *is);
  if (!is || lp2p_lpm_reader_new(&is->rd, LP2P_MSG_FRAME_MAX, &ms->mem) < 0) {
    lp2p__pm_free(&ms->mem, is);
    lp2p_stream_reset(s);
    return;
  }
  is->ms = ms;
  is->s = s;
  is->peer = *lp2p_stream_peer(s);
  is->p = peer_get(ms, &is->peer, 1);
  if (!is->p) {
    is_free(ms, is);
    lp2p_stream_reset(s);
    return;
  }
  lp2p_stream_set_user(s, is);
}

static void in_data(lp2p_stream *s, const uint8_t *d, size_t n, void *ud) {
  lp2p_msg_service *ms = ud;
  istream *is = lp2p_stream_user(s);
  if (!is) return;
  while (n > 0) {
    size_t used;
    const uint8_t *fm;
    size_t flen;
    int rv = lp2p_lpm_read(is->rd, d, n, &used, &fm, &flen);
    if (rv < 0) {
      lp2p_stream_reset(s);
      return;
    }
    d += used;
    n -= used;
    if (rv == 0) break;
    lp2p_msg_frame f;
    if (lp2p_msg_frame_decode(fm, flen, &f) < 0 || f.type != LP2P_MSG_FRAME_MSG) {
      if (flen >= 18 && fm[0] == LP2P_MSG_FRAME_MSG) {
        memcpy(f.id.b, fm + 2, LP2P_MSG_ID_LEN);
        is_queue_ack(ms, is, &f.id, LP2P_MSG_REJECTED, 0);
        continue;
      }
      lp2p_stream_reset(s);
      return;
    }
    in_msg(ms, is, &f);
  }
  /* answers that need no commit go out now (after the ones already queued) */
  if (is->dirty && !is->refs) {
    for (istream **pp = &ms->dirty; *pp; pp = &(*pp)->dnext)
      if (*pp == is) {
        *pp = is->dnext;
        break;
      }
    is->dirty = 0;
    is_send(ms, is);
  }
}

static void in_eof(lp2p_stream *s, void *ud) {
  (void)ud;
  istream *is = lp2p_stream_user(s);
  if (!is) return;
  is->eof = 1;
  if (!is->refs && !is->dirty) lp2p_stream_close_write(s);
}

static void in_close(lp2p_stream *s, int err, void *ud) {
  lp2p_msg_service *ms = ud;
  (void)err;
  istream *is = lp2p_stream_user(s);
  if (!is) return;
  lp2p_stream_set_user(s, NULL);
  is->closed = 1;
  is->s = NULL;
  if (!is->refs && !is->dirty) is_free(ms, is);
}

static const lp2p_stream_handler in_handler = {
    .struct_size = sizeof(lp2p_stream_handler),
    .on_open = in_open,
    .on_data = in_data,
    .on_eof = in_eof,
    .on_close = in_close,
};

/* ---- flush and tick ---- */

static void pump_kicked(lp2p_msg_service *ms) {
  for (mpeer *p = ms->peers; p; p = p->next)
    if (p->kick) pump(ms, p);
}

static void do_flush(lp2p_msg_service *ms) {
  if (ms->flushing) return;
  ms->flushing = 1;
  lp2p_msgstore_flush(ms->st);
  ms->flushing = 0;
  send_dirty(ms);
  pump_kicked(ms);
  if (lp2p_msgstore_pending(ms->st)) kick_flush(ms);
}

static void flush_cb(lp2p_timer *t, void *ud) {
  lp2p_msg_service *ms = ud;
  (void)t;
  ms->flush_armed = 0;
  do_flush(ms);
}

int lp2p_msg_flush(lp2p_msg_service *ms) {
  if (!ms) return LP2P_ERR_INVAL;
  if (ms->flushing) return LP2P_ERR_STATE;
  ms->flushing = 1;
  int rv = lp2p_msgstore_flush(ms->st);
  ms->flushing = 0;
  send_dirty(ms);
  pump_kicked(ms);
  return rv;
}

static void tick_peer(lp2p_msg_service *ms, mpeer *p, uint64_t now) {
  if (p->inflight.n && p->st && p->st->open && ms->cfg.ack_timeout_ms &&
      now > p->st->last_progress + ms->cfg.ack_timeout_ms) {
    lp2p_stream_reset(p->st->s); /* out_close fails what is in flight */
    return;
  }
  if (now < p->wake && !p->kick) return;
  uint64_t wake = LP2P_TSTAMP_NEVER;
  omsg *m = p->ready.head;
  while (m) {
    omsg *nx = m->next;
    if (m->expires_at && m->expires_at <= now) {
      l_remove(&p->ready, m);
      settle_msg(ms, m, LP2P_MSG_EV_EXPIRED, LP2P_ERR_TIMEOUT, -1, "ttl");
    } else {
      if (m->next_at < wake) wake = m->next_at;
      if (m->expires_at && m->expires_at < wake) wake = m->expires_at;
    }
    m = nx;
  }
  p->wake = wake;
  pump(ms, p);
}

static void tick_cb(lp2p_timer *t, void *ud) {
  lp2p_msg_service *ms = ud;
  uint64_t now = wall_ms();
  for (mpeer *p = ms->peers; p; p = p->next) tick_peer(ms, p, now);
  if (!ms->n_pending) {
    lp2p_timer_stop(t);
    ms->tick_armed = 0;
  }
}

/* ---- public API ---- */

static void on_put_done(void *ud, int status) {
  omsg *m = ud;
  lp2p_msg_service *ms = m->ms;
  if (status < 0) {
    emit_m(ms, m, LP2P_MSG_EV_FAILED, status, -1, "outbox");
    m_free(ms, m);
    return;
  }
  emit_m(ms, m, LP2P_MSG_EV_QUEUED, 0, -1, NULL);
  ready_add(ms, m);
}

int lp2p_msg_send(lp2p_msg_service *ms, const lp2p_peer_id *peer, const uint8_t *body, size_t len,
                  lp2p_msg_id *id) {
  if (!ms || !peer || !peer->len || (!body && len) || ms->detached) return LP2P_ERR_INVAL;
  if (lp2p_peer_id_equal(peer, lp2p_swarm_local_peer(ms->sw))) return LP2P_ERR_INVAL;
  if (len > ms->cfg.max_msg_size) return LP2P_ERR_TOO_LARGE;
  mpeer *p = peer_get(ms, peer, 1);
  omsg *m = p ? lp2p__pm_calloc(&ms->mem, sizeof *m) : NULL;
  if (!m) return LP2P_ERR_NOMEM;
  if (len && !(m->body = lp2p__pm_malloc(&ms->mem, len))) {
    lp2p__pm_free(&ms->mem, m);
    return LP2P_ERR_NOMEM;
  }
  if (len) memcpy(m->body, body, len);
  m->len = len;
  m->p = p;
  uint64_t now = wall_ms();
  m->next_at = now;
  m->expires_at = ms->cfg.ttl_ms ? now + ms->cfg.ttl_ms : 0;
  m->ms = ms;
  int rv = lp2p_msgstore_outbox_put(ms->st, peer->bytes, peer->len, body, len, now, m->expires_at,
                                    (lp2p_msgid *)&m->id, &m->seq, on_put_done, m);
  if (rv < 0) {
    lp2p__pm_free(&ms->mem, m->body);
    lp2p__pm_free(&ms->mem, m);
    return rv;
  }
  m->state = O_UNCOMMITTED;
  h_add(ms, m);
  ms->n_pending++;
  if (id) *id = m->id;
  kick_flush(ms);
  return 0;
}

int lp2p_msg_outbox_state(lp2p_msg_service *ms, const lp2p_msg_id *id, lp2p_msg_state *state, uint32_t *attempts) {
  if (!ms || !id) return LP2P_ERR_INVAL;
  lp2p_msgstore_msg r;
  int rv = lp2p_msgstore_outbox_get(ms->st, (const lp2p_msgid *)id, &r);
  if (rv < 0) return rv;
  if (state) *state = (lp2p_msg_state)r.state;
  if (attempts) *attempts = r.attempts;
  return 0;
}

size_t lp2p_msg_pending(const lp2p_msg_service *ms) { return ms ? ms->n_pending : 0; }

int lp2p_msg_inbox(lp2p_msg_service *ms, size_t max, lp2p_msg_inbox_fn fn, void *ud) {
  if (!ms || !fn) return LP2P_ERR_INVAL;
  size_t chunk = max < 256 ? max : 256;
  if (!chunk) return 0;
  lp2p_msgstore_msg *v = lp2p__pm_calloc(&ms->mem, chunk * sizeof *v);
  if (!v) return LP2P_ERR_NOMEM;
  int n = lp2p_msgstore_inbox_list(ms->st, v, chunk);
  for (int i = 0; i < n; i++) {
    lp2p_peer_id from;
    if (lp2p_peer_id_from_bytes(v[i].peer, v[i].peer_len, &from) < 0) continue;
    fn(ud, &from, (const lp2p_msg_id *)&v[i].id, v[i].seq, v[i].body, v[i].body_len);
  }
  lp2p__pm_free(&ms->mem, v);
  return n;
}

int lp2p_msg_inbox_ack(lp2p_msg_service *ms, const lp2p_peer_id *from, const lp2p_msg_id *id) {
  if (!ms || !from || !id) return LP2P_ERR_INVAL;
  int rv = lp2p_msgstore_inbox_ack(ms->st, from->bytes, from->len, (const lp2p_msgid *)id, NULL, NULL);
  if (rv == 0) kick_flush(ms);
  return rv;
}

lp2p_msg_service *lp2p_msg_get(lp2p_swarm *sw) { return sw ? lp2p_swarm_behaviour(sw, LP2P_MSG_BEHAVIOUR) : NULL; }

/* ---- behaviour ---- */

static int load_pending(lp2p_msg_service *ms) {
  lp2p_msgstore_msg v[256];
  size_t off = 0;
  for (;;) {
    int n = lp2p_msgstore_outbox_list(ms->st, LP2P_OUTBOX_PENDING, off, v, 256);
    if (n < 0) return n;
    for (int i = 0; i < n; i++) {
      lp2p_peer_id pid;
      if (lp2p_peer_id_from_bytes(v[i].peer, v[i].peer_len, &pid) < 0) continue;
      mpeer *p = peer_get(ms, &pid, 1);
      omsg *m = p ? lp2p__pm_calloc(&ms->mem, sizeof *m) : NULL;
      if (!m) return LP2P_ERR_NOMEM;
      if (v[i].body_len && !(m->body = lp2p__pm_malloc(&ms->mem, v[i].body_len))) {
        lp2p__pm_free(&ms->mem, m);
        return LP2P_ERR_NOMEM;
      }
      if (v[i].body_len) memcpy(m->body, v[i].body, v[i].body_len);
      m->len = v[i].body_len;
      memcpy(m->id.b, v[i].id.b, LP2P_MSG_ID_LEN);
      m->ms = ms;
      m->p = p;
      m->seq = v[i].seq;
      m->attempts = v[i].attempts;
      m->next_at = v[i].next_at;
      m->expires_at = v[i].expires_at;
      h_add(ms, m);
      ms->n_pending++;
      ready_add(ms, m);
    }
    if (n < 256) return 0;
    off += (size_t)n;
  }
}

static void ms_on_event(void *self, lp2p_swarm *sw, const lp2p_swarm_event *ev) {
  lp2p_msg_service *ms = self;
  (void)sw;
  if (ev->type != LP2P_SWARM_EV_CONN_ESTABLISHED || !ev->peer) return;
  mpeer *p = peer_get(ms, ev->peer, 0);
  if (!p || !p->ready.n) return;
  /* reconnected: everything waiting for this peer is due at once (a rate-limit pause still holds) */
  uint64_t now = wall_ms();
  for (omsg *m = p->ready.head; m; m = m->next)
    if (m->next_at > now && m->next_at > p->paused_until) m->next_at = now > p->paused_until ? now : p->paused_until;
  p->wake = now;
  pump(ms, p);
}

static int ms_attach(void *self, lp2p_swarm *sw) {
  lp2p_msg_service *ms = self;
  ms->sw = sw;
  int rv;
  if ((rv = lp2p_timer_new(&ms->flush_t, sw, flush_cb, ms)) < 0) return rv;
  if ((rv = lp2p_timer_new(&ms->tick_t, sw, tick_cb, ms)) < 0) return rv;
  if ((rv = load_pending(ms)) < 0) return rv;
  if ((rv = lp2p_swarm_set_protocol(sw, LP2P_MSG_PROTOCOL_ID, &in_handler, ms)) < 0) return rv;
  return 0;
}

static void ms_detach(void *self, lp2p_swarm *sw) {
  lp2p_msg_service *ms = self;
  (void)sw;
  lp2p_msgstore_flush(ms->st); /* events of what committed still reach the app */
  send_dirty(ms);
  ms->detached = 1;
  lp2p_swarm_remove_protocol(sw, LP2P_MSG_PROTOCOL_ID);
  lp2p_timer_free(ms->flush_t);
  lp2p_timer_free(ms->tick_t);
  ms->flush_t = ms->tick_t = NULL;
}

static void ms_destroy(void *self) {
  lp2p_msg_service *ms = self;
  ms->detached = 1;
  if (ms->st) lp2p_msgstore_close(ms->st); /* commits what the closing streams wrote */
  ms->st = NULL;
  while (ms->dirty) {
    istream *is = ms->dirty;
    ms->dirty = is->dnext;
    is->dirty = 0;
    if (is->closed && !is->refs) is_free(ms, is);
  }
  for (size_t i = 0; ms->ht && i < HT_CAP; i++) {
    omsg *m = ms->ht[i];
    while (m) {
      omsg *n = m->hnext;
      lp2p__pm_free(&ms->mem, m->body);
      lp2p__pm_free(&ms->mem, m);
      m = n;
    }
  }
  while (ms->peers) {
    mpeer *p = ms->peers;
    ms->peers = p->next;
    lp2p__pm_free(&ms->mem, p);
  }
  lp2p__pm_free(&ms->mem, ms->ht);
  lp2p__pm_free(&ms->mem, ms->wbuf);
  lp2p__pm_free(&ms->mem, ms->db_path);
  lp2p_mem m = ms->mem;
  lp2p__pm_free(&m, ms);
}

static int ms_keep_alive(void *self, lp2p_swarm *sw, const lp2p_peer_id *peer) {
  lp2p_msg_service *ms = self;
  (void)sw;
  mpeer *p = peer_get(ms, peer, 0);
  return p && p->inflight.n;
}

static const lp2p_behaviour_vtable ms_vtable = {
    .struct_size = sizeof(lp2p_behaviour_vtable),
    .name = LP2P_MSG_BEHAVIOUR,
    .attach = ms_attach,
    .on_event = ms_on_event,
    .detach = ms_detach,
    .destroy = ms_destroy,
    .keep_alive = ms_keep_alive,
};

int lp2p_msg_add(lp2p_swarm *sw, const lp2p_msg_config *cfg, lp2p_msg_service **out) {
  if (out) *out = NULL;
  if (!sw || !cfg || !cfg->db_path) return LP2P_ERR_INVAL;
  if (lp2p_swarm_behaviour(sw, LP2P_MSG_BEHAVIOUR)) return LP2P_ERR_EXISTS;
  const lp2p_mem *mem = lp2p_swarm_mem(sw);
  lp2p_msg_service *ms = lp2p__pm_calloc(mem, sizeof *ms);
  if (!ms) return LP2P_ERR_NOMEM;
  ms->mem = *mem;
  lp2p_msg_config_default(&ms->cfg);
  size_t n = cfg->struct_size && cfg->struct_size < sizeof ms->cfg ? cfg->struct_size : sizeof ms->cfg;
  memcpy(&ms->cfg, cfg, n);
  ms->cfg.struct_size = sizeof ms->cfg;
  lp2p_msg_config *c = &ms->cfg;
  if (!c->max_attempts) c->max_attempts = 10;
  if (!c->backoff_base_ms) c->backoff_base_ms = 1000;
  if (c->backoff_max_ms < c->backoff_base_ms) c->backoff_max_ms = c->backoff_base_ms;
  if (!c->window) c->window = 4096;
  if (!c->max_msg_size || c->max_msg_size > LP2P_MSG_FRAME_MAX - LP2P_MSG_HDR_LEN)
    c->max_msg_size = c->max_msg_size ? LP2P_MSG_FRAME_MAX - LP2P_MSG_HDR_LEN : 1024 * 1024;
  ms->db_path = lp2p__pm_strdup(mem, cfg->db_path);
  ms->ht = lp2p__pm_calloc(mem, HT_CAP * sizeof *ms->ht);
  c->db_path = ms->db_path;
  if (!ms->db_path || !ms->ht) {
    ms_destroy(ms);
    return LP2P_ERR_NOMEM;
  }
  lp2p_msgstore_sqlite_opts so = {.struct_size = sizeof so,
                                  .path = ms->db_path,
                                  .sync = c->sync_normal ? LP2P_MSGSTORE_SYNC_NORMAL : LP2P_MSGSTORE_SYNC_FULL,
                                  .max_attempts = c->max_attempts,
                                  .outbox_max_msgs = c->outbox_max_msgs,
                                  .inbox_max_msgs = c->inbox_max_msgs,
                                  .inbox_max_bytes = c->inbox_max_bytes};
  int rv = lp2p_msgstore_sqlite_open(&ms->st, &so);
  if (rv < 0) {
    ms->st = NULL;
    ms_destroy(ms);
    return rv;
  }
  rv = lp2p_swarm_add_behaviour(sw, &ms_vtable, ms);
  if (rv < 0) return rv; /* destroy was called */
  if (out) *out = ms;
  return 0;
}
