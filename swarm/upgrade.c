/* swarm/upgrade.c - the upgrade pipeline of a connection: multistream(/noise) -> Noise XX ->
 * (early muxer | multistream(/yamux/1.0.0)) -> yamux, and the yamux callbacks of a ready
 * connection. Input arrives from conn_io.c (lp2p__upgrade_drive). */
#include <string.h>

#include "swarm/swarm_int.h"

static const char *const k_noise_ids[] = {LP2P_NOISE_PROTOCOL_ID};
static const char *const k_mux_ids[] = {LP2P_YAMUX_PROTOCOL_ID};

static int only_noise(void *ud, const char *p, size_t n) {
  (void)ud;
  return n == strlen(LP2P_NOISE_PROTOCOL_ID) && !memcmp(p, LP2P_NOISE_PROTOCOL_ID, n);
}
static int only_yamux(void *ud, const char *p, size_t n) {
  (void)ud;
  return n == strlen(LP2P_YAMUX_PROTOCOL_ID) && !memcmp(p, LP2P_YAMUX_PROTOCOL_ID, n);
}
static size_t list_noise(void *ud, const char **out, size_t max) {
  (void)ud;
  if (max) out[0] = LP2P_NOISE_PROTOCOL_ID;
  return 1;
}
static size_t list_yamux(void *ud, const char **out, size_t max) {
  (void)ud;
  if (max) out[0] = LP2P_YAMUX_PROTOCOL_ID;
  return 1;
}
static const lp2p_mss_registry k_sec_registry = {only_noise, list_noise};
static const lp2p_mss_registry k_mux_registry = {only_yamux, list_yamux};

/* ------------------------------------------------------------------------- */
/* yamux callbacks */

static lp2p_stream *stream_of(lp2p_yamux *mx, uint32_t id) { return lp2p_yamux_stream_user(mx, id); }

static int ycb_open(lp2p_yamux *mx, uint32_t id, void *ud) {
  (void)mx;
  return lp2p__stream_on_inbound(ud, id);
}
static void ycb_data(lp2p_yamux *mx, uint32_t id, const uint8_t *p, size_t n, void *ud) {
  (void)ud;
  lp2p_stream *s = stream_of(mx, id);
  if (s) lp2p__stream_mx_data(s, p, n);
}
static void ycb_eof(lp2p_yamux *mx, uint32_t id, void *ud) {
  (void)ud;
  lp2p_stream *s = stream_of(mx, id);
  if (s) lp2p__stream_mx_eof(s);
}
static void ycb_writable(lp2p_yamux *mx, uint32_t id, void *ud) {
  (void)ud;
  lp2p_stream *s = stream_of(mx, id);
  if (s) lp2p__stream_mx_writable(s);
}
static void ycb_close(lp2p_yamux *mx, uint32_t id, int err, void *ud) {
  (void)ud;
  lp2p_stream *s = stream_of(mx, id);
  if (s) lp2p__stream_mx_close(s, err);
  lp2p__conn_mark_dirty(ud); /* idleness may have changed */
}
static void ycb_pong(lp2p_yamux *mx, uint32_t rtt, void *ud) {
  (void)mx;
  lp2p__conn *c = ud;
  lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "conn #%llu keep-alive pong, rtt %u ms", (unsigned long long)c->id,
           rtt);
}
static void ycb_goaway(lp2p_yamux *mx, uint32_t code, void *ud) {
  (void)mx;
  lp2p__conn *c = ud;
  c->goaway_recv = 1;
  lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "conn #%llu: remote GoAway (code %u)", (unsigned long long)c->id,
           code);
  lp2p__conn_mark_dirty(c);
}

static void ycb_outbound(lp2p_yamux *mx, void *ud) {
  (void)mx;
  lp2p__conn_unblock(ud); /* below the un-ACKed SYN limit again: open the waiting streams */
}

static const lp2p_yamux_callbacks k_ycb = {
    .struct_size = sizeof(lp2p_yamux_callbacks),
    .on_stream_open = ycb_open,
    .on_stream_data = ycb_data,
    .on_stream_eof = ycb_eof,
    .on_stream_writable = ycb_writable,
    .on_stream_close = ycb_close,
    .on_pong = ycb_pong,
    .on_goaway = ycb_goaway,
};

/* ------------------------------------------------------------------------- */
/* upgrade pipeline */

int lp2p__upgrade_new_noise(lp2p__conn *c) {
  lp2p_swarm *sw = c->sw;
  lp2p_noise_config nc;
  memset(&nc, 0, sizeof nc);
  nc.struct_size = sizeof nc;
  nc.initiator = c->dir == LP2P_DIR_OUTBOUND;
  nc.identity = sw->cfg.identity;
  nc.expected_remote = c->expected.len ? &c->expected : NULL;
  nc.muxers = k_mux_ids;
  nc.n_muxers = 1;
  nc.noise_identity = sw->noise_id;
  return lp2p_noise_new(&c->noise, &nc, &sw->mem);
}

static int start_yamux(lp2p__conn *c) {
  lp2p_swarm *sw = c->sw;
  lp2p_yamux_config yc;
  lp2p_yamux_config_default(&yc, c->dir == LP2P_DIR_OUTBOUND);
  yc.initial_window = sw->cfg.yamux_initial_window;
  yc.max_window = sw->cfg.yamux_max_window;
  /* the swarm enforces max_streams_per_conn itself (counting both directions,
   * with an event); yamux's own cap is a backstop just above it */
  if (sw->cfg.max_streams_per_conn) yc.max_inbound_streams = sw->cfg.max_streams_per_conn + 1;
  yc.keepalive_interval = sw->cfg.keepalive_interval_ms;
  yc.keepalive_timeout = sw->cfg.keepalive_timeout_ms;
  yc.max_frame_payload = LP2P_NOISE_MAX_PLAINTEXT; /* a payload is one Noise frame (seal_yamux) */
  int rv = lp2p_yamux_new(&c->mx, &yc, &k_ycb, c, &sw->mem);
  if (rv < 0) return rv;
  lp2p_yamux_set_on_outbound_available(c->mx, ycb_outbound);
  lp2p__yamux_set_pool(c->mx, &sw->ypool); /* spare rings go to the node-wide pool (rcmgr.c) */
  lp2p_mss_free(c->mss);
  c->mss = NULL;
  c->state = LP2P__C_READY;
  c->was_ready = 1;
  c->deadline = 0;
  if (c->counted_pending_in) {
    c->counted_pending_in = 0;
    sw->pending_inbound--;
  }
  lp2p__conn_log(c, LP2P_LOG_DEBUG, "upgraded (noise, " LP2P_YAMUX_PROTOCOL_ID ")", 0);
  lp2p__rcs_conn_peer(c);
  lp2p__swarm_conn_ready(sw, c);
  return 0;
}

static int handshake_done(lp2p__conn *c) {
  lp2p_swarm *sw = c->sw;
  const lp2p_peer_id *rp = lp2p_noise_remote_peer(c->noise);
  if (!rp) return LP2P_ERR_HANDSHAKE;
  c->remote = *rp;
  if (c->expected.len && !lp2p_peer_id_equal(&c->expected, rp)) return LP2P_ERR_PEER_ID_MISMATCH;
  if (lp2p_peer_id_equal(rp, &sw->local)) return LP2P_ERR_HANDSHAKE;
  if (lp2p__gate_inbound_conn(c) < 0) return LP2P_ERR_DENIED; /* gate.c: behaviours' allow_inbound */
  const char *mux = lp2p_noise_muxer(c->noise);
  lp2p__conn_log(c, LP2P_LOG_DEBUG, mux ? "noise done, muxer from extension" : "noise done, muxer via multistream",
           0);
  if (mux) {
    if (strcmp(mux, LP2P_YAMUX_PROTOCOL_ID)) return LP2P_ERR_UNSUPPORTED;
    return start_yamux(c);
  }
  int rv = c->dir == LP2P_DIR_OUTBOUND
               ? lp2p_mss_new_dialer(&c->mss, k_mux_ids, 1, NULL, &sw->mem)
               : lp2p_mss_new_listener(&c->mss, &k_mux_registry, NULL, NULL, &sw->mem);
  if (rv < 0) return rv;
  c->state = LP2P__C_MSS_MUX;
  return 0;
}

/* Hands one decrypted frame to the current encrypted layer. */
static int deliver_plaintext(lp2p__conn *c, const uint8_t *p, size_t m) {
  if (c->state == LP2P__C_MSS_MUX) {
    int64_t k = lp2p_mss_feed(c->mss, p, m);
    if (k < 0) return (int)k;
    if (!lp2p_mss_done(c->mss)) return (size_t)k < m ? LP2P_ERR_PROTO : 0;
    /* the echo/answer must leave before any yamux frame: staged now, sent first by the next flush */
    int rv = lp2p__conn_stage_out(c);
    if (rv < 0) return rv;
    if ((rv = start_yamux(c)) < 0) return rv;
    p += k;
    m -= (size_t)k;
    if (!m || c->close_queued) return 0;
  }
  if (c->state != LP2P__C_READY || !m) return 0;
  c->in_feed = 1;
  int64_t k = lp2p_yamux_feed(c->mx, p, m, lp2p__swarm_now(c->sw));
  c->in_feed = 0;
  if (k < 0) return (int)k;
  if (!c->remote_seen) {
    c->remote_seen = 1;
    if (c->peer && c->peer->primary) lp2p__peer_open_waiting(c->sw, c->peer);
  }
  return 0;
}

/* Transport frames after the handshake: every complete frame is decrypted in place and handed on;
 * a trailing partial frame is left unconsumed. Returns the bytes used or an error. */
static int64_t drive_frames(lp2p__conn *c, uint8_t *in, size_t len) {
  size_t off = 0;
  while (off < len && !c->close_queued) {
    uint8_t *pt;
    size_t m;
    int64_t k = lp2p_noise_open_next(c->noise, in + off, len - off, &pt, &m);
    if (k <= 0) {
      if (k < 0) return k;
      break; /* a partial frame */
    }
    int rv = deliver_plaintext(c, pt, m);
    if (rv < 0) return rv;
    off += (size_t)k;
  }
  return c->close_queued ? (int64_t)len : (int64_t)off;
}

/* Runs received bytes through the layers. Returns bytes used, or an error. */
int64_t lp2p__upgrade_drive(lp2p__conn *c, uint8_t *in, size_t len) {
  size_t off = 0;
  int rv;
  for (;;) {
    if (c->close_queued) return (int64_t)len;
    switch (c->state) {
      case LP2P__C_MSS_SEC: {
        if (off == len) return (int64_t)off;
        int64_t k = lp2p_mss_feed(c->mss, in + off, len - off);
        if (k < 0) return k;
        off += (size_t)k;
        if (!lp2p_mss_done(c->mss)) {
          if (off < len) return LP2P_ERR_PROTO;
          return (int64_t)off;
        }
        lp2p__conn_log(c, LP2P_LOG_DEBUG, "security negotiated: " LP2P_NOISE_PROTOCOL_ID, 0);
        if ((rv = lp2p__conn_stage_out(c)) < 0) return rv; /* our mss answer precedes noise bytes */
        lp2p_mss_free(c->mss);
        c->mss = NULL;
        if (!c->noise && (rv = lp2p__upgrade_new_noise(c)) < 0) return rv; /* (a dialer's session exists already) */
        c->state = LP2P__C_NOISE;
        continue;
      }
      case LP2P__C_NOISE: {
        int64_t k = 0;
        if (off < len) {
          k = lp2p_noise_feed(c->noise, in + off, len - off);
          if (k < 0) return k;
          off += (size_t)k;
        }
        if (lp2p_noise_handshake_done(c->noise)) {
          if ((rv = handshake_done(c)) < 0) return rv;
          continue; /* the rest are transport frames (the engine stops after the last message) */
        }
        if (off == len || k == 0) return (int64_t)off;
        continue;
      }
      case LP2P__C_MSS_MUX:
      case LP2P__C_READY: {
        int64_t k = drive_frames(c, in + off, len - off);
        if (k < 0) return k;
        return (int64_t)(off + (size_t)k);
      }
      default:
        return (int64_t)len;
    }
  }
}


/* Starts the upgrade of a connected transport stream: multistream for /noise (state MSS_SEC). */
int lp2p__upgrade_start(lp2p__conn *c) {
  lp2p_swarm *sw = c->sw;
  if (c->dir == LP2P_DIR_INBOUND) return lp2p_mss_new_listener(&c->mss, &k_sec_registry, NULL, NULL, &sw->mem);
  int rv = lp2p_mss_new_dialer(&c->mss, k_noise_ids, 1, NULL, &sw->mem);
  /* lazy (multistream V1Lazy, as rust-libp2p dials): Noise msg1 follows the /noise proposal in the
   * same write instead of waiting a round trip for the echo; js-libp2p and go-libp2p listeners keep
   * the bytes after the proposal for the negotiated protocol. A listener without /noise answers "na":
   * the dial fails as it would anyway. */
  if (!rv) rv = lp2p__upgrade_new_noise(c);
  if (!rv) c->state = LP2P__C_MSS_SEC;
  return rv;
}
