/* muxer/yamux_session.c - the Yamux session: frame parser (feed), output
 * scheduler, stream opening/accepting, ping/keep-alive, GoAway, fatal errors
 * and deferred stream closing. */
#include <stddef.h>

#include "muxer/yamux_int.h"

/* ---- config ---- */

void lp2p_yamux_config_default(lp2p_yamux_config *cfg, int is_client) {
  if (!cfg) return;
  memset(cfg, 0, sizeof *cfg);
  cfg->struct_size = sizeof *cfg;
  cfg->is_client = is_client ? 1 : 0;
  cfg->initial_window = LP2P_YAMUX_DEFAULT_WINDOW;
  cfg->max_window = LP2P_YAMUX_DEFAULT_MAX_WINDOW;
  cfg->max_inbound_streams = LP2P_YAMUX_DEFAULT_MAX_INBOUND;
  cfg->max_unacked_outbound = LP2P_YAMUX_DEFAULT_MAX_UNACKED;
  cfg->keepalive_interval = LP2P_YAMUX_DEFAULT_KEEPALIVE_INTERVAL;
  cfg->keepalive_timeout = LP2P_YAMUX_DEFAULT_KEEPALIVE_TIMEOUT;
  cfg->send_budget = LP2P_YAMUX_DEFAULT_SEND_BUDGET;
  cfg->max_frame_payload = LP2P_YAMUX_MAX_DATA_FRAME;
}

static int load_config(lp2p_yamux_config *c, const lp2p_yamux_config *in) {
  if (in->struct_size < offsetof(lp2p_yamux_config, initial_window)) return LP2P_ERR_INVAL;
  lp2p_yamux_config_default(c, in->is_client);
  size_t n = in->struct_size < sizeof *c ? in->struct_size : sizeof *c;
  memcpy(c, in, n);
  c->struct_size = sizeof *c;
  c->is_client = in->is_client ? 1 : 0;
  if (!c->initial_window) c->initial_window = LP2P_YAMUX_DEFAULT_WINDOW;
  if (!c->max_window)
    c->max_window =
        c->initial_window > LP2P_YAMUX_DEFAULT_MAX_WINDOW ? c->initial_window : LP2P_YAMUX_DEFAULT_MAX_WINDOW;
  if (!c->max_inbound_streams) c->max_inbound_streams = LP2P_YAMUX_DEFAULT_MAX_INBOUND;
  if (!c->max_unacked_outbound) c->max_unacked_outbound = LP2P_YAMUX_DEFAULT_MAX_UNACKED;
  if (!c->send_budget) c->send_budget = LP2P_YAMUX_DEFAULT_SEND_BUDGET;
  if (!c->max_frame_payload) c->max_frame_payload = LP2P_YAMUX_MAX_DATA_FRAME;
  if (c->initial_window < LP2P_YAMUX_DEFAULT_WINDOW || c->max_window < c->initial_window ||
      c->max_frame_payload > LP2P_YAMUX_MAX_FRAME_PAYLOAD_LIMIT)
    return LP2P_ERR_INVAL;
  return 0;
}

int lp2p_yamux_new(lp2p_yamux **out, const lp2p_yamux_config *cfg, const lp2p_yamux_callbacks *cb, void *ud,
                   const lp2p_mem *mem) {
  if (!out || !cfg) return LP2P_ERR_INVAL;
  *out = NULL;
  lp2p_yamux_config c;
  int rv = load_config(&c, cfg);
  if (rv) return rv;
  if (cb && cb->struct_size < sizeof(size_t)) return LP2P_ERR_INVAL;
  mem = lp2p__mem_or_default(mem);
  lp2p_yamux *mx = lp2p__calloc(mem, 1, sizeof *mx);
  if (!mx) return LP2P_ERR_NOMEM;
  mx->mem = *mem;
  mx->cfg = c;
  if (cb) memcpy(&mx->cb, cb, cb->struct_size < sizeof mx->cb ? cb->struct_size : sizeof mx->cb);
  mx->cb.struct_size = sizeof mx->cb;
  mx->ud = ud;
  mx->next_id = c.is_client ? 1 : 2;
  mx->max_frame = c.max_frame_payload;
  mx->out_batch = LP2P_YAMUX_OUTPUT_BATCH;
  mx->tune_rtts = LP2P__YAMUX_TUNE_RTTS;
  mx->own_pool.max = c.send_budget < LP2P__YAMUX_SPARE_MAX ? c.send_budget : LP2P__YAMUX_SPARE_MAX;
  mx->pool = &mx->own_pool;
  *out = mx; /* the output buffer is allocated on first use */
  return 0;
}

void lp2p_yamux_free(lp2p_yamux *mx) {
  if (!mx) return;
  for (size_t i = 0; i < mx->map.cap; i++)
    if (mx->map.slots[i]) lp2p__yamux_stream_destroy(mx, mx->map.slots[i]);
  lp2p__yamux_map_free(&mx->mem, &mx->map);
  lp2p__yamux_output_free(mx);
  lp2p_mem mem = mx->mem;
  lp2p__free(&mem, mx);
}

/* ---- nesting and deferred closes ---- */

void lp2p__yamux_enter(lp2p_yamux *mx) { mx->depth++; }

void lp2p__yamux_leave(lp2p_yamux *mx) {
  if (mx->depth == 1) lp2p__yamux_flush_closed(mx);
  mx->depth--;
}

void lp2p__yamux_flush_closed(lp2p_yamux *mx) {
  if (mx->depth > 1) return; /* a callback is on the stack */
  lp2p__yamux_stream *s;
  while ((s = mx->closing)) {
    mx->closing = s->cnext;
    if (!mx->closing) mx->closing_tail = NULL;
    if ((s->flags & YX_ANNOUNCED) && mx->cb.on_stream_close) {
      mx->depth++;
      mx->cb.on_stream_close(mx, s->id, s->close_err, mx->ud);
      mx->depth--;
    }
    lp2p__yamux_map_del(&mx->map, s->id);
    if (mx->body_stream == s) mx->body_stream = NULL;
    if (s->inflight) { /* its last bytes are still queued: freed once they are consumed */
      s->flags |= YX_ZOMBIE;
      s->cnext = mx->zombies;
      mx->zombies = s;
    } else {
      lp2p__yamux_stream_destroy(mx, s);
    }
  }
  if (!mx->map.n && mx->map.cap) { /* no stream left: no table, and no buffers once output drained */
    lp2p__yamux_map_free(&mx->mem, &mx->map);
    lp2p__yamux_release_idle(mx);
  }
}

void lp2p_yamux_set_on_outbound_available(lp2p_yamux *mx, lp2p_yamux_outbound_fn fn) {
  if (mx) mx->on_outbound_available = fn;
}

void lp2p__yamux_unacked_dec(lp2p_yamux *mx) {
  mx->n_unacked--;
  if (mx->limit_hit && mx->n_unacked < mx->cfg.max_unacked_outbound) mx->outbound_avail = 1;
}

void lp2p__yamux_report_outbound(lp2p_yamux *mx) {
  if (mx->depth || !mx->outbound_avail) return;
  mx->outbound_avail = mx->limit_hit = 0;
  if (mx->err || mx->goaway_sent || mx->goaway_recv || !mx->on_outbound_available) return;
  lp2p__yamux_enter(mx);
  mx->depth++;
  mx->on_outbound_available(mx, mx->ud);
  mx->depth--;
  lp2p__yamux_leave(mx);
}

/* ---- fatal errors ---- */

int lp2p__yamux_fail(lp2p_yamux *mx, int err, int goaway_code) {
  if (mx->err) return mx->err;
  mx->err = err;
  if (goaway_code >= 0 && !mx->goaway_sent &&
      !lp2p__yamux_put_frame(mx, LP2P__YAMUX_GO_AWAY, 0, 0, (uint32_t)goaway_code))
    mx->goaway_sent = 1;
  for (size_t i = 0; i < mx->map.cap; i++)
    if (mx->map.slots[i]) lp2p__yamux_stream_close(mx, mx->map.slots[i], err);
  mx->body_stream = NULL;
  mx->ping_out = 0;
  return err;
}

/* ---- opening ---- */

int lp2p_yamux_open_stream(lp2p_yamux *mx, uint32_t *id) {
  if (!mx || !id) return LP2P_ERR_INVAL;
  if (mx->err) return mx->err;
  if (mx->goaway_sent || mx->goaway_recv) return LP2P_ERR_GOAWAY;
  if (mx->next_id > UINT32_MAX) return LP2P_ERR_LIMIT;
  if (mx->n_unacked >= mx->cfg.max_unacked_outbound) {
    mx->limit_hit = 1; /* outbound-available callback once an ACK brings the count below the limit */
    return LP2P_ERR_LIMIT;
  }
  if (!lp2p__yamux_out_reserve(mx, LP2P__YAMUX_HDR_LEN)) return LP2P_ERR_NOMEM;
  lp2p__yamux_stream *s = lp2p__yamux_stream_new(mx, (uint32_t)mx->next_id, YX_OUTBOUND | YX_AWAIT_ACK);
  if (!s) return LP2P_ERR_NOMEM;
  lp2p__yamux_enter(mx);
  mx->n_unacked++;
  mx->next_id += 2;
  /* Advertise our window beyond the protocol's 256 KiB in the SYN's delta. */
  uint32_t delta = s->recv_win - s->recv_avail;
  int rv = lp2p__yamux_emit(mx, LP2P__YAMUX_WINDOW_UPDATE, LP2P__YAMUX_SYN, s->id, delta);
  if (!rv) {
    s->recv_avail += delta;
    s->flags |= YX_ANNOUNCED;
    *id = s->id;
  }
  lp2p__yamux_leave(mx);
  return rv;
}

static int recent_has(const lp2p_yamux *mx, uint32_t id) {
  for (unsigned i = 0; i < mx->recent_n; i++)
    if (mx->recent[i] == id) return 1;
  return 0;
}

void lp2p__yamux_recent_add(lp2p_yamux *mx, uint32_t id) {
  mx->recent[mx->recent_pos] = id;
  mx->recent_pos = (mx->recent_pos + 1) % LP2P__YAMUX_RECENT;
  if (mx->recent_n < LP2P__YAMUX_RECENT) mx->recent_n++;
}

static int is_ours(const lp2p_yamux *mx, uint32_t id) { return (int)(id & 1) == mx->cfg.is_client; }

/* Inbound SYN for a fresh id. *out = the accepted stream, or NULL if refused. */
static int accept_inbound(lp2p_yamux *mx, uint32_t id, lp2p__yamux_stream **out) {
  *out = NULL;
  if (id > mx->max_inbound_seen) mx->max_inbound_seen = id;
  lp2p__yamux_stream *s = NULL;
  if (!mx->goaway_sent && mx->n_inbound < mx->cfg.max_inbound_streams) s = lp2p__yamux_stream_new(mx, id, 0);
  if (!s) { /* over the limit, going away, or out of memory: refuse with RST */
    lp2p__yamux_recent_add(mx, id);
    return lp2p__yamux_emit(mx, LP2P__YAMUX_WINDOW_UPDATE, LP2P__YAMUX_RST, id, 0);
  }
  /* ACK at once, advertising our window beyond 256 KiB. */
  uint32_t delta = s->recv_win - s->recv_avail;
  int rv = lp2p__yamux_emit(mx, LP2P__YAMUX_WINDOW_UPDATE, LP2P__YAMUX_ACK, id, delta);
  if (rv) return rv;
  s->recv_avail += delta;
  s->flags |= YX_ANNOUNCED;
  if (mx->cb.on_stream_open) {
    mx->depth++;
    int refuse = mx->cb.on_stream_open(mx, id, mx->ud);
    mx->depth--;
    if (mx->err) return mx->err;
    if (refuse) {
      s->flags &= ~(uint32_t)YX_ANNOUNCED;
      if (s->flags & YX_CLOSED) return 0;
      rv = lp2p__yamux_emit(mx, LP2P__YAMUX_WINDOW_UPDATE, LP2P__YAMUX_RST, id, 0);
      lp2p__yamux_stream_close(mx, s, LP2P_ERR_RESET);
      return rv;
    }
  }
  if (!(s->flags & YX_CLOSED)) *out = s;
  return 0;
}

/* ---- input ---- */

static int proto_error(lp2p_yamux *mx) {
  return lp2p__yamux_fail(mx, LP2P_ERR_PROTO, LP2P_YAMUX_GOAWAY_PROTOCOL_ERROR);
}

static int skip_body(lp2p_yamux *mx, const lp2p__yamux_hdr *h) {
  if (h->type == LP2P__YAMUX_DATA) {
    mx->body_left = h->length;
    mx->body_stream = NULL;
  }
  return 0;
}

static int on_stream_frame(lp2p_yamux *mx, const lp2p__yamux_hdr *h) {
  uint32_t id = h->stream_id;
  if (!id) return proto_error(mx);
  lp2p__yamux_stream *s = lp2p__yamux_map_get(&mx->map, id);
  if (h->flags & LP2P__YAMUX_SYN) {
    /* Our parity (both sides think they are clients), id in use, or reused after a recent close. */
    if (is_ours(mx, id) || s || recent_has(mx, id)) return proto_error(mx);
    int rv = accept_inbound(mx, id, &s);
    if (rv) return rv;
    if (!s) return skip_body(mx, h);
  } else if (!s) {
    /* A stream that existed and is gone: late frame, ignore. Never opened: violation. */
    int known = is_ours(mx, id) ? id < mx->next_id : id <= mx->max_inbound_seen;
    if (!known) return proto_error(mx);
    return skip_body(mx, h);
  }
  if (s->flags & YX_CLOSED) return skip_body(mx, h);
  if ((h->flags & LP2P__YAMUX_ACK) && (s->flags & YX_AWAIT_ACK)) {
    s->flags &= ~(uint32_t)YX_AWAIT_ACK;
    lp2p__yamux_unacked_dec(mx);
  }
  if (h->flags & LP2P__YAMUX_RST) {
    lp2p__yamux_stream_close(mx, s, LP2P_ERR_RESET);
    return skip_body(mx, h); /* a WindowUpdate RST's length (go: error code) is ignored */
  }
  if (h->type == LP2P__YAMUX_WINDOW_UPDATE) {
    s->send_window += h->length;
    lp2p__yamux_recount(mx, s);
    lp2p__yamux_stream_room(mx, s);
    if (h->flags & LP2P__YAMUX_FIN) lp2p__yamux_remote_fin(mx, s);
    return 0;
  }
  if (s->flags & YX_REMOTE_FIN) return skip_body(mx, h); /* data after FIN: discarded */
  if (h->length > s->recv_avail)
    return lp2p__yamux_fail(mx, LP2P_ERR_WINDOW, LP2P_YAMUX_GOAWAY_PROTOCOL_ERROR);
  if (!h->length) {
    if (h->flags & LP2P__YAMUX_FIN) lp2p__yamux_remote_fin(mx, s);
    return 0;
  }
  s->recv_avail -= h->length;
  s->recv_held += h->length;
  mx->body_left = h->length;
  mx->body_flags = h->flags;
  mx->body_stream = s;
  return 0;
}

static int on_ping(lp2p_yamux *mx, const lp2p__yamux_hdr *h) {
  if (h->flags & LP2P__YAMUX_SYN)
    return lp2p__yamux_emit(mx, LP2P__YAMUX_PING, LP2P__YAMUX_ACK, 0, h->length);
  if ((h->flags & LP2P__YAMUX_ACK) && mx->ping_out && h->length == mx->ping_val) {
    mx->ping_out = 0;
    lp2p_tstamp rtt = mx->now >= mx->ping_sent ? mx->now - mx->ping_sent : 0;
    if (rtt > UINT32_MAX) rtt = UINT32_MAX;
    mx->rtt = rtt ? (uint32_t)rtt : 1;
    if (mx->cfg.keepalive_interval) mx->next_ping = mx->ping_sent + mx->cfg.keepalive_interval;
    if (mx->cb.on_pong) {
      mx->depth++;
      mx->cb.on_pong(mx, (uint32_t)rtt, mx->ud);
      mx->depth--;
    }
  }
  return 0; /* unsolicited / mismatched answers are ignored */
}

static int on_header(lp2p_yamux *mx) {
  lp2p__yamux_hdr h;
  lp2p__yamux_hdr_decode(mx->hdr, &h);
  if (h.version != LP2P__YAMUX_VERSION) return proto_error(mx);
  switch (h.type) {
  case LP2P__YAMUX_DATA:
  case LP2P__YAMUX_WINDOW_UPDATE: return on_stream_frame(mx, &h);
  case LP2P__YAMUX_PING: return on_ping(mx, &h);
  case LP2P__YAMUX_GO_AWAY:
    if (!mx->goaway_recv) {
      mx->goaway_recv = 1;
      mx->goaway_code = h.length;
      if (mx->cb.on_goaway) {
        mx->depth++;
        mx->cb.on_goaway(mx, h.length, mx->ud);
        mx->depth--;
      }
    }
    return 0;
  default: return proto_error(mx);
  }
}

static void deliver(lp2p_yamux *mx, const uint8_t *p, size_t k) {
  lp2p__yamux_stream *s = mx->body_stream;
  mx->body_left -= (uint32_t)k;
  if (!s || (s->flags & YX_CLOSED)) return;
  if (mx->cb.on_stream_data) {
    mx->depth++;
    mx->cb.on_stream_data(mx, s->id, p, k, mx->ud);
    mx->depth--;
  } else { /* nobody reads: credit the window back at once */
    s->recv_held -= (uint32_t)k;
    lp2p__yamux_maybe_window_update(mx, s);
  }
}

int64_t lp2p_yamux_feed(lp2p_yamux *mx, const uint8_t *in, size_t len, lp2p_tstamp now) {
  if (!mx || (!in && len)) return LP2P_ERR_INVAL;
  if (mx->depth) return LP2P_ERR_STATE;
  if (mx->err) return mx->err;
  mx->now = now;
  lp2p__yamux_enter(mx);
  size_t pos = 0;
  while (pos < len && !mx->err) {
    if (mx->body_left) {
      size_t k = len - pos < mx->body_left ? len - pos : mx->body_left;
      deliver(mx, in + pos, k);
      pos += k;
      if (!mx->body_left && mx->body_stream) {
        lp2p__yamux_stream *s = mx->body_stream;
        mx->body_stream = NULL;
        if (mx->body_flags & LP2P__YAMUX_FIN) lp2p__yamux_remote_fin(mx, s);
      }
    } else {
      size_t k = LP2P__YAMUX_HDR_LEN - mx->hdr_len;
      if (k > len - pos) k = len - pos;
      memcpy(mx->hdr + mx->hdr_len, in + pos, k);
      mx->hdr_len += k;
      pos += k;
      if (mx->hdr_len < LP2P__YAMUX_HDR_LEN) break;
      mx->hdr_len = 0;
      on_header(mx);
    }
    lp2p__yamux_flush_closed(mx);
  }
  if (!mx->err && mx->budget_freed && mx->blocked) lp2p__yamux_notify_writers(mx); /* a reset freed budget */
  lp2p__yamux_leave(mx);
  if (mx->outbound_avail) lp2p__yamux_report_outbound(mx);
  return mx->err ? mx->err : (int64_t)len;
}

/* ---- ping, keep-alive, GoAway ---- */

static int send_ping(lp2p_yamux *mx, lp2p_tstamp now) {
  uint32_t val = mx->ping_seq++;
  int rv = lp2p__yamux_emit(mx, LP2P__YAMUX_PING, LP2P__YAMUX_SYN, 0, val);
  if (rv) return rv;
  mx->ping_out = 1;
  mx->ping_val = val;
  mx->ping_sent = now;
  return 0;
}

int lp2p_yamux_ping(lp2p_yamux *mx, lp2p_tstamp now) {
  if (!mx) return LP2P_ERR_INVAL;
  if (mx->err) return mx->err;
  mx->now = now;
  if (mx->ping_out) return 0;
  if (!lp2p__yamux_out_reserve(mx, LP2P__YAMUX_HDR_LEN)) return LP2P_ERR_NOMEM;
  lp2p__yamux_enter(mx);
  int rv = send_ping(mx, now);
  lp2p__yamux_leave(mx);
  return rv;
}

uint32_t lp2p_yamux_rtt(const lp2p_yamux *mx) { return mx ? mx->rtt : 0; }

lp2p_tstamp lp2p_yamux_next_expiry(const lp2p_yamux *mx) {
  if (!mx || mx->err) return LP2P_TSTAMP_NEVER;
  if (mx->ping_out)
    return mx->cfg.keepalive_timeout ? mx->ping_sent + mx->cfg.keepalive_timeout : LP2P_TSTAMP_NEVER;
  return mx->cfg.keepalive_interval ? mx->next_ping : LP2P_TSTAMP_NEVER;
}

int lp2p_yamux_handle_expiry(lp2p_yamux *mx, lp2p_tstamp now) {
  if (!mx) return LP2P_ERR_INVAL;
  if (mx->err) return mx->err;
  mx->now = now;
  lp2p__yamux_enter(mx);
  lp2p__yamux_trim(mx); /* keep-alive tick: release buffers an idle session does not need */
  if (mx->ping_out) {
    if (mx->cfg.keepalive_timeout && now >= mx->ping_sent && now - mx->ping_sent >= mx->cfg.keepalive_timeout)
      lp2p__yamux_fail(mx, LP2P_ERR_TIMEOUT, -1);
  } else if (mx->cfg.keepalive_interval && now >= mx->next_ping) {
    send_ping(mx, now);
  }
  lp2p__yamux_leave(mx);
  if (mx->outbound_avail) lp2p__yamux_report_outbound(mx);
  return mx->err;
}

int lp2p_yamux_go_away(lp2p_yamux *mx, uint32_t code) {
  if (!mx) return LP2P_ERR_INVAL;
  if (mx->err) return mx->err;
  if (mx->goaway_sent) return 0;
  if (!lp2p__yamux_out_reserve(mx, LP2P__YAMUX_HDR_LEN)) return LP2P_ERR_NOMEM;
  lp2p__yamux_enter(mx);
  int rv = lp2p__yamux_emit(mx, LP2P__YAMUX_GO_AWAY, 0, 0, code);
  if (!rv) mx->goaway_sent = 1;
  lp2p__yamux_leave(mx);
  return rv;
}

/* ---- accessors ---- */

int lp2p_yamux_error(const lp2p_yamux *mx) { return mx ? mx->err : LP2P_ERR_INVAL; }
size_t lp2p_yamux_buffered(const lp2p_yamux *mx) { return mx ? mx->buffered + mx->pending : 0; }

size_t lp2p_yamux_memory(const lp2p_yamux *mx) {
  if (!mx) return 0;
  return mx->ring_cap + mx->out_cap + mx->gap_cap * sizeof(struct lp2p__yamux_gap) +
         (mx->pool == &mx->own_pool ? mx->own_pool.total : 0);
}

size_t lp2p_yamux_stream_count(const lp2p_yamux *mx) { return mx ? mx->n_streams : 0; }

int lp2p_yamux_remote_goaway(const lp2p_yamux *mx, uint32_t *code) {
  if (!mx || !mx->goaway_recv) return 0;
  if (code) *code = mx->goaway_code;
  return 1;
}
