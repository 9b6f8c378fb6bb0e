/* tests/tools/hostile_peer/attacks_yamux.c - case 4: yamux protocol violations, stream limits and
 * timeouts, multistream on streams, and hostile identify pushes. */
#include "hostile.h"

/* ------------------------------------------------------------------------- */
/* case 4: yamux */

int m_yamux_conn(const char *mode) {
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  uint8_t h[12];
  buf b = {0};
  if (!strcmp(mode, "yamux-window-frame")) { /* one Data frame one byte larger than the window */
    st_open(&c, 1, NULL, 0);
    yx_hdr(h, 0, YX_DATA, 0, 1, YX_WINDOW + 1);
    buf_add(&b, h, 12);
    buf_reserve(&b, 65000);
    memset(b.p + b.len, 'w', 65000);
    b.len += 65000;
    send_plain(&c, b.p, b.len);
  } else if (!strcmp(mode, "yamux-reuse-id")) {
    st_open(&c, 1, NULL, 0);
    pump_for(&c, 100);
    st_open(&c, 1, NULL, 0);
  } else if (!strcmp(mode, "yamux-reuse-closed-id")) {
    st_open(&c, 1, NULL, 0);
    pump_for(&c, 100);
    yx_send(&c, YX_WUPD, YX_RST, 1, 0);
    pump_for(&c, 100);
    st_open(&c, 1, NULL, 0);
  } else if (!strcmp(mode, "yamux-even-id")) {
    yx_send(&c, YX_WUPD, YX_SYN, 2, 0);
  } else if (!strcmp(mode, "yamux-bad-version")) {
    yx_hdr(h, 1, YX_WUPD, YX_SYN, 1, 0);
    send_plain(&c, h, 12);
  } else if (!strcmp(mode, "yamux-bad-type")) {
    yx_hdr(h, 0, 7, 0, 1, 0);
    send_plain(&c, h, 12);
  } else if (!strcmp(mode, "yamux-unknown-stream")) {
    yx_hdr(h, 0, YX_DATA, 0, 99, 4);
    buf_add(&b, h, 12);
    buf_add(&b, "abcd", 4);
    send_plain(&c, b.p, b.len);
  } else if (!strcmp(mode, "yamux-stream-zero")) {
    yx_send(&c, YX_WUPD, 0, 0, 1000);
  }
  buf_free(&b);
  int rv = expect_close(&c, mode);
  hc_free(&c);
  return rv;
}

/* Window violation on a real data path: the echo protocol (the node must run with --echo). We
 * never read the echoes, so the node's echo stops consuming once our receive window is full; we
 * send exactly the credit the node granted (legal), then one byte more. */
int m_yamux_window(void) {
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  buf b = {0};
  buf_mss(&b, MSS_HEADER);
  buf_mss(&b, ECHO_ID);
  st_open(&c, 1, b.p, b.len);
  buf_free(&b);
  yst *s = st_get(&c, 1);
  uint64_t end = now_ms() + (uint64_t)g_o.wait_ms;
  while (st_count_lines(s, ECHO_ID) < 1 && !s->rst && now_ms() < end)
    if (pump(&c, 100) < 0) break;
  if (st_count_lines(s, ECHO_ID) < 1) {
    hc_free(&c);
    return fail("the node did not accept %s (run it with --echo)", ECHO_ID);
  }
  static uint8_t chunk[16384];
  memset(chunk, 'e', sizeof chunk);
  uint64_t sent = 0;
  int idle_rounds = 0;
  while (!c.closed && !s->rst && idle_rounds < 3) {
    if (s->credit > 0) {
      size_t k = s->credit > (int64_t)sizeof chunk ? sizeof chunk : (size_t)s->credit;
      if (st_send(&c, 1, chunk, k) < 0) break;
      sent += k;
      idle_rounds = 0;
      pump(&c, 0);
      continue;
    }
    int64_t before = s->credit;
    pump_for(&c, 300);
    if (s->credit == before) idle_rounds++;
  }
  if (c.closed || s->rst) {
    hc_free(&c);
    return fail("yamux-window: %s before the window was used up (%llu bytes sent)",
                c.closed ? "connection closed" : "stream reset", (unsigned long long)sent);
  }
  say("window exhausted after %llu bytes (credit %lld); sending one byte more", (unsigned long long)sent,
      (long long)s->credit);
  st_send(&c, 1, chunk, 1);
  int rv = expect_close(&c, "yamux-window");
  hc_free(&c);
  return rv;
}

/* More SYNs than the node's per-connection stream limit: the excess is reset, the rest stays. */
int m_yamux_syn_flood(void) {
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  int n = g_o.count ? g_o.count : 700;
  if (n > MAX_ST) n = MAX_ST;
  buf b = {0};
  for (int i = 0; i < n; i++) {
    uint8_t h[12];
    uint32_t id = 2u * (uint32_t)i + 1;
    st_get(&c, id)->used = 1;
    yx_hdr(h, 0, YX_WUPD, YX_SYN, id, 0);
    buf_add(&b, h, 12);
  }
  send_plain(&c, b.p, b.len);
  buf_free(&b);
  pump_for(&c, 1500);
  int rst = 0, alive = 0, acked = 0;
  for (int i = 0; i < n; i++) {
    yst *s = st_get(&c, 2u * (uint32_t)i + 1);
    if (s->acked) acked++;
    if (s->rst)
      rst++;
    else
      alive++;
  }
  say("syn-flood: %d streams opened, %d acked, %d reset, %d kept", n, acked, rst, alive);
  if (c.closed) {
    hc_free(&c);
    return fail("syn-flood: the node closed the whole connection");
  }
  if (ping_ok(&c, g_o.wait_ms) < 0) {
    hc_free(&c);
    return fail("syn-flood: no ping answer afterwards");
  }
  int rv, lim = g_o.expect_open >= 0 ? g_o.expect_open : 512; /* the node's streams-per-connection limit */
  if (alive == 0 || rst == 0 || alive > lim || rst < n - lim)
    rv = fail("syn-flood: expected some streams kept (<= %d) and the excess reset", lim);
  else
    rv = pass("syn-flood: %d of %d streams reset past the limit, %d kept, connection alive", rst, n, alive);
  /* clean up: reset what we opened, the node must free them */
  b = (buf){0};
  for (int i = 0; i < n; i++) {
    yst *s = st_get(&c, 2u * (uint32_t)i + 1);
    if (s->rst) continue;
    uint8_t h[12];
    yx_hdr(h, 0, YX_WUPD, YX_RST, 2u * (uint32_t)i + 1, 0);
    buf_add(&b, h, 12);
  }
  send_plain(&c, b.p, b.len);
  buf_free(&b);
  if (!rv && ping_ok(&c, g_o.wait_ms) < 0) rv = fail("syn-flood: no ping answer after resetting the streams");
  hc_free(&c);
  return rv;
}

/* Streams that never negotiate: each is reset at the node's negotiation timeout. */
int m_yamux_nego_timeout(void) {
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  int n = g_o.count ? g_o.count : 4;
  uint64_t t0 = now_ms();
  for (int i = 0; i < n; i++) st_open(&c, 2u * (uint32_t)i + 1, NULL, 0);
  /* one stream that stops mid-line (a partial multistream message) */
  uint8_t part[] = {19, '/', 'm', 'u', 'l'};
  st_open(&c, 2u * (uint32_t)n + 1, part, sizeof part);
  n++;
  int done = 0;
  uint64_t end = t0 + (uint64_t)g_o.wait_ms;
  while (now_ms() < end && !c.closed) {
    done = 0;
    for (int i = 0; i < n; i++) done += st_get(&c, 2u * (uint32_t)i + 1)->rst;
    if (done == n) break;
    pump(&c, 200);
  }
  if (c.closed) {
    hc_free(&c);
    return fail("nego-timeout: the node closed the connection");
  }
  if (done < n) {
    hc_free(&c);
    return fail("nego-timeout: only %d of %d silent streams reset within %d ms", done, n, g_o.wait_ms);
  }
  uint64_t first = UINT64_MAX, last = 0;
  for (int i = 0; i < n; i++) {
    uint64_t at = st_get(&c, 2u * (uint32_t)i + 1)->rst_at - t0;
    if (at < first) first = at;
    if (at > last) last = at;
  }
  say("nego-timeout: %d streams reset between %llu and %llu ms", n, (unsigned long long)first,
      (unsigned long long)last);
  int rv;
  if ((long)first < g_o.min_ms)
    rv = fail("nego-timeout: a stream was reset after %llu ms, before the %d ms timeout", (unsigned long long)first,
              g_o.min_ms);
  else if (ping_ok(&c, g_o.wait_ms) < 0)
    rv = fail("nego-timeout: no ping answer afterwards");
  else
    rv = pass("nego-timeout: %d silent streams reset after %llu..%llu ms, connection alive", n,
              (unsigned long long)first, (unsigned long long)last);
  hc_free(&c);
  return rv;
}

/* Stream-level multistream abuse: only the stream dies. */
int m_yamux_stream_mss(const char *mode) {
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  buf b = {0};
  buf_mss(&b, MSS_HEADER);
  if (!strcmp(mode, "stream-na-flood")) {
    for (int i = 0; i < (g_o.count ? g_o.count : 40); i++) {
      char p[64];
      snprintf(p, sizeof p, "/hostile/nope/%d", i);
      buf_mss(&b, p);
    }
  } else if (!strcmp(mode, "stream-oversize")) {
    buf_varint(&b, 100 * 1024);
    for (int i = 0; i < 4000; i++) buf_byte(&b, 'a');
  } else if (!strcmp(mode, "stream-bad-varint")) {
    for (int i = 0; i < 10; i++) buf_byte(&b, 0xff);
  } else if (!strcmp(mode, "stream-nul")) {
    buf_varint(&b, 8);
    buf_add(&b, "/pi\0ng/\n", 8);
  }
  st_open(&c, 1, b.p, b.len);
  buf_free(&b);
  int rv = expect_stream_reset(&c, 1, mode, g_o.wait_ms);
  if (!rv && !strcmp(mode, "stream-na-flood")) {
    int na = st_count_lines(st_get(&c, 1), "na");
    say("na answers: %d", na);
    if (na >= (g_o.count ? g_o.count : 40)) rv = fail("the node answered every unknown proposal");
  }
  hc_free(&c);
  return rv;
}

/* Identify pushes (/ipfs/id/push/1.0.0) with defects: only the push is rejected (the node
 * reports identify-failed with the reason), the connection stays. */
int m_identify_push(void) {
  static const char *const kinds[] = {"empty-record", "garbage", "oversize", "too-many",
                                      "other-key",    "record-other-key", "record-badsig"};
  int kind = -1;
  for (int i = 0; i < (int)(sizeof kinds / sizeof *kinds); i++)
    if (!strcmp(g_o.tamper, kinds[i])) kind = i;
  if (kind < 0)
    return fail("identify-push needs --tamper empty-record|garbage|oversize|too-many|other-key|record-other-key|"
                "record-badsig");
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  uint8_t pk[LP2P_PUBKEY_PB_MAX], opk[LP2P_PUBKEY_PB_MAX];
  int pk_len = lp2p_pubkey_to_protobuf(lp2p_privkey_public(g_key), pk, sizeof pk);
  int opk_len = lp2p_pubkey_to_protobuf(lp2p_privkey_public(g_other), opk, sizeof opk);
  buf msg = {0}, wire = {0};
  uint8_t *env = NULL;
  size_t env_len = 0;
  if (kind == 5 || kind == 6) {
    lp2p_multiaddr *ma = NULL;
    lp2p_multiaddr_parse(&ma, "/ip4/127.0.0.1/tcp/1", NULL, 0);
    const lp2p_multiaddr *addrs[] = {ma};
    lp2p_peer_record_seal(kind == 5 ? g_other : g_key, 1, addrs, 1, &env, &env_len);
    lp2p_multiaddr_free(ma);
    if (!env) {
      hc_free(&c);
      return fail("cannot seal a peer record");
    }
    if (kind == 6) env[env_len - 1] ^= 0x01; /* the signature is the last field */
  }
  pb_bytes(&msg, 1, kind == 4 ? opk : pk, (size_t)(kind == 4 ? opk_len : pk_len));
  pb_bytes(&msg, 3, "/hostile/1.0.0", 14);
  if (kind == 0) pb_bytes(&msg, 8, "", 0);
  if (env) pb_bytes(&msg, 8, env, env_len);
  free(env);
  if (kind == 1) {
    buf_varint(&wire, 40);
    for (int i = 0; i < 40; i++) buf_byte(&wire, (uint8_t)(0xff - i));
  } else if (kind == 2) {
    buf_varint(&wire, 9000);
    for (int i = 0; i < 9000; i++) buf_byte(&wire, 0x1a);
  } else {
    for (int i = 0; i < (kind == 3 ? 11 : 1); i++) {
      buf_varint(&wire, msg.len);
      buf_add(&wire, msg.p, msg.len);
    }
  }
  buf b = {0};
  buf_mss(&b, MSS_HEADER);
  buf_mss(&b, "/ipfs/id/push/1.0.0");
  st_open(&c, 1, b.p, b.len);
  yst *s = st_get(&c, 1);
  uint64_t end = now_ms() + (uint64_t)g_o.wait_ms;
  while (st_count_lines(s, "/ipfs/id/push/1.0.0") < 1 && !s->rst && now_ms() < end)
    if (pump(&c, 100) < 0) break;
  int rv;
  if (st_count_lines(s, "/ipfs/id/push/1.0.0") < 1) {
    rv = fail("the node did not accept /ipfs/id/push/1.0.0");
  } else {
    st_send(&c, 1, wire.p, wire.len);
    yx_send(&c, YX_WUPD, YX_FIN, 1, 0);
    end = now_ms() + (uint64_t)g_o.wait_ms;
    while (!s->fin && !s->rst && now_ms() < end)
      if (pump(&c, 100) < 0) break;
    if (c.closed)
      rv = fail("identify-push %s: the node closed the connection", g_o.tamper);
    else if (!s->fin && !s->rst)
      rv = fail("identify-push %s: the node did not end the push stream", g_o.tamper);
    else if (ping_ok(&c, g_o.wait_ms) < 0)
      rv = fail("identify-push %s: no ping answer afterwards", g_o.tamper);
    else
      rv = pass("identify-push %s: push stream ended (%s), connection alive", g_o.tamper, s->rst ? "reset" : "FIN");
  }
  buf_free(&b);
  buf_free(&msg);
  buf_free(&wire);
  hc_free(&c);
  return rv;
}

/* Ping SYNs without reading the answers: the node must bound what it queues for us. */
int m_yamux_ping_flood(void) {
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  int n = g_o.count ? g_o.count : 3000000;
  buf b = {0};
  for (int i = 0; i < 4096; i++) {
    uint8_t h[12];
    yx_hdr(h, 0, YX_PING, YX_SYN, 0, (uint32_t)i);
    buf_add(&b, h, 12);
  }
  int sent = 0;
  /* no pumping: the node's answers pile up on its side */
  while (sent < n && !c.closed) {
    if (send_plain(&c, b.p, b.len) < 0) break;
    sent += 4096;
  }
  buf_free(&b);
  say("ping-flood: %d ping SYNs sent, connection %s", sent, c.closed ? "closed while sending" : "still open");
  /* the answers (12 bytes each) pile up in the node: it must cut us off rather than queue them */
  long ms = c.closed ? 0 : wait_closed(&c, g_o.wait_ms);
  const char *how = c.how;
  hc_free(&c);
  if (ms < 0) return fail("ping-flood: the node kept the connection after %d unanswered pings", sent);
  return pass("ping-flood: connection closed by the node (%s) after %d pings", how, sent);
}
