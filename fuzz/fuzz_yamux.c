/* fuzz/fuzz_yamux.c - drives a server-side Yamux session with arbitrary input.
 *
 * Input: one mode byte, then records [op][arg][...]:
 *   op%8 0..2  feed the next arg+1 bytes (raw frames from the "peer")
 *   op%8 3     consume some of a stream's delivered bytes
 *   op%8 4     write arg*97 bytes on a stream
 *   op%8 5     pull output (arg bit 1: gather form output_iov with 1 + arg/4%8 iovecs and at most
 *              arg*300 bytes, or all), mark part (bit 0 clear: half) or all of it sent
 *   op%8 6     close_write / reset / open_stream / go_away / ping
 *   op%8 7     advance time by arg*50 ms, handle_expiry
 * Mode bits: 0x07 inbound stream cap - 1, 0x08 keep-alive on, 0x10 refuse every
 * third inbound stream, 0x20 open a stream first, 0x40 fail the k-th allocation
 * (k = next byte), 0x80 callbacks act re-entrantly (reset/write/close/open from
 * inside callbacks); pairs: 0x30 both set: 3000-byte session send budget, 0x28:
 * 1500-byte Data frames, 0x18: at most 3 unacknowledged SYNs. The
 * outbound-available callback opens a stream. Checks: no crash (ASan/UBSan), no
 * leak through lp2p_mem, on_stream_close exactly once per known stream, never
 * nested in a callback, every gathered byte readable, the gathered total equals
 * lp2p_yamux_pending() when nothing limits it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/yamux.h"

#define MAXS 64

typedef struct fz {
  lp2p_yamux *mx;
  uint32_t ids[MAXS];
  uint64_t unconsumed[MAXS];
  int n;
  int depth;
  int mode;
  long live, count, fail_at;
} fz;

static void *fm_malloc(size_t n, void *u) {
  fz *f = u;
  if (++f->count == f->fail_at) return NULL;
  void *p = malloc(n);
  if (p) f->live++;
  return p;
}
static void *fm_realloc(void *p, size_t n, void *u) {
  fz *f = u;
  if (++f->count == f->fail_at) return NULL;
  void *q = realloc(p, n);
  if (q && !p) f->live++;
  return q;
}
static void fm_free(void *p, void *u) {
  fz *f = u;
  if (p) {
    f->live--;
    free(p);
  }
}

static int find(fz *f, uint32_t id) {
  for (int i = 0; i < f->n; i++)
    if (f->ids[i] == id) return i;
  return -1;
}
static void add(fz *f, uint32_t id) {
  if (find(f, id) >= 0) abort(); /* announced twice */
  if (f->n < MAXS) {
    f->ids[f->n] = id;
    f->unconsumed[f->n++] = 0;
  }
}

static int cb_open(lp2p_yamux *mx, uint32_t id, void *ud) {
  fz *f = ud;
  if ((f->mode & 0x10) && id % 3 == 0) return 1;
  if (f->n >= MAXS) return 1;
  add(f, id);
  if (f->mode & 0x80) {
    f->depth++;
    if (id % 5 == 1) lp2p_yamux_write(mx, id, (const uint8_t *)"hello", 5);
    if (id % 7 == 1) lp2p_yamux_close_write(mx, id);
    if (id % 11 == 1) lp2p_yamux_reset(mx, id);
    f->depth--;
  }
  return 0;
}

static void cb_data(lp2p_yamux *mx, uint32_t id, const uint8_t *p, size_t n, void *ud) {
  fz *f = ud;
  int i = find(f, id);
  if (i < 0) abort(); /* data for a stream never announced */
  f->unconsumed[i] += n;
  if (f->mode & 0x80) {
    f->depth++;
    if (n && p[0] == 'R') lp2p_yamux_reset(mx, id);
    if (n && p[0] == 'W') lp2p_yamux_write(mx, id, p, n);
    if (n && p[0] == 'C') lp2p_yamux_close_write(mx, id);
    if (n && p[0] == 'O' && f->n < MAXS) {
      uint32_t nid;
      if (lp2p_yamux_open_stream(mx, &nid) == 0) add(f, nid);
    }
    if (n && p[0] == 'K' && lp2p_yamux_consume(mx, id, f->unconsumed[i]) == 0) f->unconsumed[i] = 0;
    if (n && p[0] == 'F' && lp2p_yamux_feed(mx, p, n, 0) != LP2P_ERR_STATE) abort();
    f->depth--;
  }
}

static void cb_eof(lp2p_yamux *mx, uint32_t id, void *ud) {
  fz *f = ud;
  if (find(f, id) < 0) abort();
  if (f->mode & 0x80) lp2p_yamux_close_write(mx, id);
}

static void cb_writable(lp2p_yamux *mx, uint32_t id, void *ud) {
  fz *f = ud;
  if (find(f, id) < 0) abort();
  (void)mx;
}

static void cb_close(lp2p_yamux *mx, uint32_t id, int err, void *ud) {
  fz *f = ud;
  if (f->depth) abort(); /* never nested in another callback */
  int i = find(f, id);
  if (i < 0) abort(); /* closed twice or never announced */
  f->ids[i] = f->ids[f->n - 1];
  f->unconsumed[i] = f->unconsumed[f->n - 1];
  f->n--;
  (void)mx;
  (void)err;
}

static void cb_avail(lp2p_yamux *mx, void *ud) {
  fz *f = ud;
  uint32_t nid;
  if (f->depth) abort(); /* only from the outermost call */
  if (f->n < MAXS && lp2p_yamux_open_stream(mx, &nid) == 0) add(f, nid);
}

static void cb_pong(lp2p_yamux *mx, uint32_t rtt, void *ud) { (void)mx, (void)rtt, (void)ud; }
static void cb_goaway(lp2p_yamux *mx, uint32_t code, void *ud) { (void)mx, (void)code, (void)ud; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  fz f;
  memset(&f, 0, sizeof f);
  f.mode = data[0];
  size_t pos = 1;
  if ((f.mode & 0x40) && pos < size) f.fail_at = data[pos++] + 1;
  lp2p_mem mem = {fm_malloc, fm_realloc, fm_free, &f};
  lp2p_yamux_config cfg;
  lp2p_yamux_config_default(&cfg, 0);
  cfg.max_inbound_streams = (uint32_t)(f.mode & 7) + 1;
  cfg.keepalive_interval = (f.mode & 8) ? 1000 : 0;
  cfg.keepalive_timeout = 500;
  if ((f.mode & 0x30) == 0x30) cfg.send_budget = 3000;
  if ((f.mode & 0x28) == 0x28) cfg.max_frame_payload = 1500;
  if ((f.mode & 0x18) == 0x18) cfg.max_unacked_outbound = 3;
  lp2p_yamux_callbacks cb = {sizeof cb, cb_open, cb_data, cb_eof, cb_writable, cb_close, cb_pong, cb_goaway};
  if (lp2p_yamux_new(&f.mx, &cfg, &cb, &f, &mem)) {
    if (f.live) abort();
    return 0;
  }
  lp2p_yamux_set_on_outbound_available(f.mx, cb_avail);
  lp2p_tstamp now = 0;
  uint32_t id;
  if ((f.mode & 0x20) && lp2p_yamux_open_stream(f.mx, &id) == 0) add(&f, id);
  static uint8_t zeros[255 * 97];
  static uint8_t scratch[70000];
  while (pos + 2 <= size) {
    uint8_t op = data[pos] & 7, arg = data[pos + 1];
    pos += 2;
    uint32_t sid = f.n ? f.ids[arg % f.n] : arg;
    int si = f.n ? arg % f.n : -1;
    switch (op) {
    case 0:
    case 1:
    case 2: {
      size_t n = (size_t)arg + 1;
      if (n > size - pos) n = size - pos;
      int64_t rv = lp2p_yamux_feed(f.mx, data + pos, n, now);
      if (rv >= 0 && (size_t)rv != n) abort();
      if (rv < 0 && rv != lp2p_yamux_error(f.mx)) abort();
      pos += n;
      break;
    }
    case 3:
      if (si >= 0) {
        uint64_t n = f.unconsumed[si] * (arg & 3) / 3;
        if (lp2p_yamux_consume(f.mx, sid, (size_t)n) == 0) f.unconsumed[si] -= n;
      }
      break;
    case 4: {
      int64_t rv = lp2p_yamux_write(f.mx, sid, zeros, (size_t)arg * 97);
      if (rv > (int64_t)arg * 97) abort();
      break;
    }
    case 5: {
      size_t n = 0;
      if (arg & 2) {
        lp2p_iovec iov[8];
        size_t max_iov = 1 + (size_t)(arg / 4 % 8), max_bytes = arg >= 128 ? SIZE_MAX : (size_t)arg * 300;
        size_t k = lp2p_yamux_output_iov(f.mx, iov, max_iov, max_bytes);
        if (k > max_iov) abort();
        for (size_t i = 0; i < k; i++) {
          if (!iov[i].len) abort();
          memcpy(scratch, iov[i].base, iov[i].len < sizeof scratch ? iov[i].len : sizeof scratch);
          if (iov[i].len > sizeof scratch) memcpy(scratch, iov[i].base + iov[i].len - 64, 64);
          n += iov[i].len;
        }
        if (n > max_bytes || n > lp2p_yamux_pending(f.mx)) abort();
        if (k < max_iov && max_bytes == SIZE_MAX && n != lp2p_yamux_pending(f.mx)) abort();
      } else {
        const uint8_t *o;
        n = lp2p_yamux_output(f.mx, &o);
        if (n > lp2p_yamux_pending(f.mx)) abort();
        if (n) memcpy(scratch, o + n - 1, 1);
      }
      lp2p_yamux_output_consumed(f.mx, arg & 1 ? n : n / 2);
      break;
    }
    case 6:
      switch (arg % 5) {
      case 0: lp2p_yamux_close_write(f.mx, sid); break;
      case 1: lp2p_yamux_reset(f.mx, sid); break;
      case 2:
        if (f.n < MAXS && lp2p_yamux_open_stream(f.mx, &id) == 0) add(&f, id);
        break;
      case 3: lp2p_yamux_go_away(f.mx, arg >> 4); break;
      default: lp2p_yamux_ping(f.mx, now); break;
      }
      break;
    default:
      now += (lp2p_tstamp)arg * 50;
      lp2p_yamux_handle_expiry(f.mx, now);
      break;
    }
    if (lp2p_yamux_stream_count(f.mx) != (size_t)f.n) abort(); /* live streams == announced, not closed */
  }
  const uint8_t *o;
  while (lp2p_yamux_output(f.mx, &o) > 0) lp2p_yamux_output_consumed(f.mx, SIZE_MAX);
  lp2p_yamux_free(f.mx);
  if (f.live) abort(); /* leak */
  return 0;
}
