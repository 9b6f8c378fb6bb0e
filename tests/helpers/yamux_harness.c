/* tests/helpers/yamux_harness.c - see yamux_harness.h. */
#include "yamux_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void push_ev(yh_peer *p, char type, uint32_t id, int64_t val) {
  if (!p->record) return;
  if (p->n_ev == p->cap_ev) {
    p->cap_ev = p->cap_ev ? p->cap_ev * 2 : 64;
    p->ev = realloc(p->ev, p->cap_ev * sizeof *p->ev);
    if (!p->ev) abort();
  }
  p->ev[p->n_ev++] = (yh_ev){type, id, val};
}

yh_stream *yh_st(yh_peer *p, uint32_t id) {
  if (id >= p->n_st) {
    size_t n = p->n_st ? p->n_st : 64;
    while (n <= id) n *= 2;
    p->st = realloc(p->st, n * sizeof *p->st);
    if (!p->st) abort();
    memset(p->st + p->n_st, 0, (n - p->n_st) * sizeof *p->st);
    p->n_st = n;
  }
  return &p->st[id];
}

static uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

void yh_pattern(uint64_t seed, uint64_t off, uint8_t *out, size_t n) {
  uint64_t base = seed * 0x100000001B3ull;
  while (n) {
    uint64_t blk = off >> 3, w = splitmix(base ^ blk);
    unsigned i = (unsigned)(off & 7);
    for (; i < 8 && n; i++, n--, off++) *out++ = (uint8_t)(w >> (8 * i));
  }
}

#define ENTER(p) ((p)->depth++)
#define LEAVE(p) ((p)->depth--)

static int cb_open(lp2p_yamux *mx, uint32_t id, void *ud) {
  yh_peer *p = ud;
  ENTER(p);
  yh_stream *s = yh_st(p, id);
  push_ev(p, 'O', id, 0);
  int rv = p->refuse;
  if (!rv) {
    memset(s, 0, sizeof *s);
    s->known = s->opened_in = 1;
  }
  if (p->hook) p->hook(p, 'O', id, 0);
  LEAVE(p);
  (void)mx;
  return rv;
}

static void cb_data(lp2p_yamux *mx, uint32_t id, const uint8_t *d, size_t n, void *ud) {
  yh_peer *p = ud;
  ENTER(p);
  yh_stream *s = yh_st(p, id);
  push_ev(p, 'D', id, (int64_t)n);
  if (p->verify) {
    uint8_t tmp[4096];
    for (size_t o = 0; o < n;) {
      size_t k = n - o < sizeof tmp ? n - o : sizeof tmp;
      yh_pattern(id, s->rx + o, tmp, k);
      if (memcmp(tmp, d + o, k)) s->bad++;
      o += k;
    }
  }
  if (p->keep_data) {
    if (s->len + n > s->cap) {
      s->cap = (s->len + n) * 2;
      s->data = realloc(s->data, s->cap);
      if (!s->data) abort();
    }
    memcpy(s->data + s->len, d, n);
    s->len += n;
  }
  s->rx += n;
  p->total_rx += n;
  s->unconsumed += n;
  if (p->auto_consume) {
    if (lp2p_yamux_consume(mx, id, n) == 0) s->unconsumed -= n;
  }
  if (p->hook) p->hook(p, 'D', id, (int64_t)n);
  LEAVE(p);
}

static void cb_eof(lp2p_yamux *mx, uint32_t id, void *ud) {
  yh_peer *p = ud;
  ENTER(p);
  yh_st(p, id)->eof++;
  push_ev(p, 'E', id, 0);
  if (p->hook) p->hook(p, 'E', id, 0);
  LEAVE(p);
  (void)mx;
}

static void cb_writable(lp2p_yamux *mx, uint32_t id, void *ud) {
  yh_peer *p = ud;
  ENTER(p);
  yh_stream *s = yh_st(p, id);
  s->writable++;
  push_ev(p, 'W', id, 0);
  if (s->tx_goal) yh_write_pattern(p, id);
  if (p->hook) p->hook(p, 'W', id, 0);
  LEAVE(p);
  (void)mx;
}

static void cb_close(lp2p_yamux *mx, uint32_t id, int err, void *ud) {
  yh_peer *p = ud;
  ENTER(p);
  if (p->depth > 1) p->nested++;
  yh_stream *s = yh_st(p, id);
  s->closed++;
  s->close_err = err;
  push_ev(p, 'C', id, err);
  if (p->hook) p->hook(p, 'C', id, err);
  LEAVE(p);
  (void)mx;
}

static void cb_pong(lp2p_yamux *mx, uint32_t rtt, void *ud) {
  yh_peer *p = ud;
  ENTER(p);
  push_ev(p, 'P', 0, rtt);
  if (p->hook) p->hook(p, 'P', 0, rtt);
  LEAVE(p);
  (void)mx;
}

static void cb_goaway(lp2p_yamux *mx, uint32_t code, void *ud) {
  yh_peer *p = ud;
  ENTER(p);
  push_ev(p, 'G', 0, code);
  if (p->hook) p->hook(p, 'G', 0, code);
  LEAVE(p);
  (void)mx;
}

int yh_peer_init(yh_peer *p, int is_client, const lp2p_yamux_config *cfg, const lp2p_mem *mem) {
  memset(p, 0, sizeof *p);
  p->auto_consume = 1;
  p->keep_data = 1;
  p->record = 1;
  if (cfg) {
    p->cfg = *cfg;
  } else {
    lp2p_yamux_config_default(&p->cfg, is_client);
    p->cfg.keepalive_interval = 0;
  }
  lp2p_yamux_callbacks cb = {sizeof cb, cb_open, cb_data, cb_eof, cb_writable, cb_close, cb_pong, cb_goaway};
  return lp2p_yamux_new(&p->mx, &p->cfg, &cb, p, mem);
}

void yh_peer_free(yh_peer *p) {
  lp2p_yamux_free(p->mx);
  for (size_t i = 0; i < p->n_st; i++) free(p->st[i].data);
  free(p->st);
  free(p->ev);
  memset(p, 0, sizeof *p);
}

void yh_clear_events(yh_peer *p) { p->n_ev = 0; }

const char *yh_log(const yh_peer *p) {
  static char buf[1 << 16];
  size_t o = 0;
  buf[0] = 0;
  for (size_t i = 0; i < p->n_ev && o < sizeof buf - 64; i++) {
    const yh_ev *e = &p->ev[i];
    if (e->type == 'D') {
      int64_t sum = e->val;
      while (i + 1 < p->n_ev && p->ev[i + 1].type == 'D' && p->ev[i + 1].id == e->id) sum += p->ev[++i].val;
      o += (size_t)snprintf(buf + o, sizeof buf - o, "%sD%u:%lld", o ? " " : "", e->id, (long long)sum);
    } else if (e->type == 'C') {
      o += (size_t)snprintf(buf + o, sizeof buf - o, "%sC%u:%s", o ? " " : "", e->id,
                            e->val ? lp2p_err_name((int)e->val) : "0");
    } else if (e->type == 'P' || e->type == 'G') {
      o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%c%lld", o ? " " : "", e->type, (long long)e->val);
    } else {
      o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%c%u", o ? " " : "", e->type, e->id);
    }
  }
  return buf;
}

uint8_t *yh_take_output(yh_peer *p, size_t *len) {
  uint8_t *acc = NULL;
  size_t n = 0;
  const uint8_t *o;
  size_t k;
  while ((k = lp2p_yamux_output(p->mx, &o)) > 0) {
    acc = realloc(acc, n + k);
    if (!acc) abort();
    memcpy(acc + n, o, k);
    n += k;
    lp2p_yamux_output_consumed(p->mx, k);
  }
  *len = n;
  return acc;
}

int64_t yh_feed_split(yh_peer *p, const uint8_t *in, size_t len, size_t split) {
  if (split == SIZE_MAX) {
    int64_t rv = 0;
    for (size_t i = 0; i < len && rv >= 0; i++) rv = lp2p_yamux_feed(p->mx, in + i, 1, p->now);
    if (!len) rv = lp2p_yamux_feed(p->mx, in, 0, p->now);
    return rv < 0 ? rv : (int64_t)len;
  }
  if (!split || split >= len) return lp2p_yamux_feed(p->mx, in, len, p->now);
  int64_t rv = lp2p_yamux_feed(p->mx, in, split, p->now);
  if (rv < 0) return rv;
  rv = lp2p_yamux_feed(p->mx, in + split, len - split, p->now);
  return rv < 0 ? rv : (int64_t)len;
}

static int move(yh_peer *from, yh_peer *to, size_t chunk, int *moved) {
  const uint8_t *o;
  size_t k;
  while ((k = lp2p_yamux_output(from->mx, &o)) > 0) {
    size_t take = chunk && chunk < k ? chunk : k;
    /* Feeding `to` never calls into `from` (harness callbacks act on their own session), so the
     * output pointer stays valid during the feed. */
    int64_t rv = lp2p_yamux_feed(to->mx, o, take, to->now);
    lp2p_yamux_output_consumed(from->mx, take);
    *moved = 1;
    if (rv < 0) return (int)rv;
  }
  return 0;
}

int yh_pump(yh_peer *a, yh_peer *b, int max_rounds, size_t chunk) {
  for (int r = 0; r < max_rounds; r++) {
    int moved = 0, rv;
    if ((rv = move(a, b, chunk, &moved))) return rv;
    if ((rv = move(b, a, chunk, &moved))) return rv;
    if (!moved) return 0;
  }
  return 0;
}

int yh_write_pattern(yh_peer *p, uint32_t id) {
  static uint8_t buf[65536];
  yh_stream *s = yh_st(p, id);
  for (;;) {
    if (s->tx >= s->tx_goal) {
      if (s->fin_after_goal) {
        s->fin_after_goal = 0;
        return lp2p_yamux_close_write(p->mx, id);
      }
      return 0;
    }
    uint64_t want = s->tx_goal - s->tx;
    size_t n = want < sizeof buf ? (size_t)want : sizeof buf;
    yh_pattern(id, s->tx, buf, n);
    int64_t k = lp2p_yamux_write(p->mx, id, buf, n);
    if (k < 0) return (int)k;
    s->tx += (uint64_t)k;
    if ((size_t)k < n) return 0;
  }
}

size_t yh_frame(uint8_t *buf, uint8_t type, uint16_t flags, uint32_t id, uint32_t length, const void *payload,
                size_t plen) {
  buf[0] = 0;
  buf[1] = type;
  buf[2] = (uint8_t)(flags >> 8);
  buf[3] = (uint8_t)flags;
  for (int i = 0; i < 4; i++) {
    buf[4 + i] = (uint8_t)(id >> (24 - 8 * i));
    buf[8 + i] = (uint8_t)(length >> (24 - 8 * i));
  }
  if (plen) memcpy(buf + 12, payload, plen);
  return 12 + plen;
}

const char *yh_frames_text(const uint8_t *b, size_t len) {
  static char buf[1 << 16];
  static const char *types[] = {"DATA", "WU", "PING", "GOAWAY"};
  static const char *flags[] = {"SYN", "ACK", "FIN", "RST"};
  size_t o = 0, i = 0;
  buf[0] = 0;
  while (i < len && o < sizeof buf - 128) {
    if (len - i < 12) {
      o += (size_t)snprintf(buf + o, sizeof buf - o, "%sPARTIAL", o ? " " : "");
      break;
    }
    const uint8_t *h = b + i;
    uint16_t fl = (uint16_t)(h[2] << 8 | h[3]);
    uint32_t id = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
    uint32_t ln = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
    if (o) buf[o++] = ' ';
    if (h[0]) o += (size_t)snprintf(buf + o, sizeof buf - o, "V%u:", h[0]);
    if (h[1] < 4)
      o += (size_t)snprintf(buf + o, sizeof buf - o, "%s", types[h[1]]);
    else
      o += (size_t)snprintf(buf + o, sizeof buf - o, "T%u", h[1]);
    for (int f = 0; f < 4; f++)
      if (fl & (1u << f)) o += (size_t)snprintf(buf + o, sizeof buf - o, "+%s", flags[f]);
    o += (size_t)snprintf(buf + o, sizeof buf - o, "#%u=%u", id, ln);
    i += 12;
    if (h[1] == 0) {
      if (len - i < ln) {
        o += (size_t)snprintf(buf + o, sizeof buf - o, " PARTIAL");
        break;
      }
      i += ln;
    }
  }
  buf[o] = 0;
  return buf;
}

const char *yh_out_text(yh_peer *p) {
  size_t n;
  uint8_t *o = yh_take_output(p, &n);
  const char *t = yh_frames_text(o, n);
  free(o);
  return t;
}
