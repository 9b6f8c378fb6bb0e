/* tests/tools/hostile_peer/floods.c - case 5 + 6: slowloris connections, the pending and inbound
 * connection limits, and a connection flood. */
#include "hostile.h"

/* ------------------------------------------------------------------------- */
/* case 5: slowloris */

int m_slowloris(const char *mode) {
  hconn c;
  if (hc_connect(&c) < 0) return fail("cannot connect: %s", strerror(errno));
  long ms = -1;
  if (!strcmp(mode, "slow-silent")) {
    ms = wait_closed(&c, g_o.wait_ms);
  } else if (!strcmp(mode, "slow-dribble")) { /* a valid start (multistream, noise msg1), one byte per interval */
    buf b = {0};
    buf_mss(&b, MSS_HEADER);
    buf_mss(&b, NOISE_ID);
    uint8_t e[34] = {0, 32};
    randombytes_buf(e + 2, 32);
    buf_add(&b, e, sizeof e);
    uint64_t end = now_ms() + (uint64_t)g_o.wait_ms;
    size_t i = 0;
    while (!c.closed && now_ms() < end) {
      if (i < b.len && send_raw(&c, b.p + i++, 1) < 0) break;
      pump_for(&c, g_o.interval_ms);
    }
    buf_free(&b);
    say("dribbled %zu bytes", i);
    ms = c.closed ? (long)(c.closed_at - c.opened_at) : -1;
  } else if (!strcmp(mode, "slow-noise")) { /* msg1, then nothing */
    if (mss_select_raw(&c, NOISE_ID) < 0) {
      hc_free(&c);
      return fail("multistream /noise was not accepted");
    }
    uint8_t m[64];
    size_t n;
    lp2p__noise_hs_init(&c.hs, 1, NULL, 0, NULL, NULL);
    lp2p__noise_hs_write(&c.hs, NULL, 0, m, sizeof m, &n);
    noise_send_msg(&c, m, n, n);
    ms = wait_closed(&c, g_o.wait_ms);
  }
  hc_free(&c);
  if (ms < 0) return fail("%s: still open after %d ms", mode, g_o.wait_ms);
  if (ms < g_o.min_ms) return fail("%s: closed after %ld ms, before the %d ms handshake timeout", mode, ms, g_o.min_ms);
  return pass("%s: closed by the node after %ld ms", mode, ms);
}

/* Many connections that never speak. The node keeps at most its pending-handshake limit and
 * refuses the rest at once; the kept ones close at the handshake timeout. */
int m_pending(void) {
  int n = g_o.count ? g_o.count : 100;
  hconn *cs = calloc((size_t)n, sizeof *cs);
  if (!cs) return fail("out of memory");
  int opened = 0;
  for (int i = 0; i < n; i++) {
    if (hc_connect(&cs[i]) < 0) break;
    opened++;
  }
  /* settle: refused connections are closed right away */
  uint64_t end = now_ms() + 1000;
  while (now_ms() < end) {
    for (int i = 0; i < opened; i++) pump(&cs[i], 0);
    sleep_ms(50);
  }
  int closed = 0;
  for (int i = 0; i < opened; i++) closed += cs[i].closed;
  say("pending: %d connections, %d refused at once, %d kept", opened, closed, opened - closed);
  int rv = 0;
  if (g_o.expect_open >= 0 && opened - closed != g_o.expect_open)
    rv = fail("pending: the node kept %d connections, expected %d", opened - closed, g_o.expect_open);
  /* the kept ones must go at the handshake timeout */
  end = now_ms() + (uint64_t)g_o.wait_ms;
  int left = opened - closed;
  while (left && now_ms() < end) {
    struct pollfd *p = calloc((size_t)opened, sizeof *p);
    for (int i = 0; i < opened; i++) p[i] = (struct pollfd){cs[i].closed ? -1 : cs[i].fd, POLLIN, 0};
    poll(p, (nfds_t)opened, 200);
    free(p);
    left = 0;
    for (int i = 0; i < opened; i++) {
      pump(&cs[i], 0);
      left += !cs[i].closed;
    }
  }
  long first = -1, last = -1;
  for (int i = 0; i < opened; i++) {
    if (!cs[i].closed) continue;
    long ms = (long)(cs[i].closed_at - cs[i].opened_at);
    if (ms < 1000) continue; /* refused at once */
    if (first < 0 || ms < first) first = ms;
    if (ms > last) last = ms;
  }
  for (int i = 0; i < opened; i++) hc_free(&cs[i]);
  free(cs);
  if (rv) return rv;
  if (left) return fail("pending: %d connections still open after %d ms", left, g_o.wait_ms);
  if (first >= 0 && first < g_o.min_ms) return fail("pending: a kept connection closed after %ld ms", first);
  return pass("pending: %d refused at once, %d kept and closed at the handshake timeout (%ld..%ld ms)", closed,
              opened - closed, first, last);
}

/* Established connections up to the node's inbound limit: --count secured sessions one after the
 * other (a fresh identity each); the node must keep exactly --expect-open of them (its inbound
 * limit minus the connections it already has), refuse every later one before the handshake, and
 * keep answering pings on the kept ones. */
int m_conns(void) {
  int n = g_o.count ? g_o.count : 40, kept = 0, refused = 0, late = 0;
  hconn *cs = calloc((size_t)n, sizeof *cs);
  if (!cs) return fail("out of memory");
  for (int i = 0; i < n; i++) {
    lp2p_privkey *k = NULL;
    if (hc_connect(&cs[i]) < 0) {
      free(cs);
      return fail("cannot connect: %s", strerror(errno));
    }
    if (mss_select_raw(&cs[i], NOISE_ID) < 0) { /* refused: closed before any answer */
      refused++;
      hc_free(&cs[i]);
      cs[i].fd = -1;
      continue;
    }
    if (refused) late++; /* accepted after a refusal: the limit is not what was expected */
    int rv = lp2p_privkey_generate(&k, LP2P_KEY_ED25519, 0);
    if (!rv) rv = noise_initiate(&cs[i], k, g_other, T_NONE, M3_NONE);
    if (!rv) rv = ping_ok(&cs[i], g_o.wait_ms);
    lp2p_privkey_free(k);
    if (rv) {
      for (int j = 0; j <= i; j++)
        if (cs[j].fd >= 0) hc_free(&cs[j]);
      free(cs);
      return fail("conns: connection %d: the secure session failed", i + 1);
    }
    kept++;
  }
  int dead = 0;
  for (int i = 0; i < n; i++)
    if (cs[i].fd >= 0 && ping_ok(&cs[i], g_o.wait_ms) < 0) dead++;
  say("conns: %d connections, %d established, %d refused, %d no longer answering", n, kept, refused, dead);
  for (int i = 0; i < n; i++)
    if (cs[i].fd >= 0) hc_free(&cs[i]);
  free(cs);
  if (late) return fail("conns: %d connections established after the first refusal", late);
  if (dead) return fail("conns: %d established connections stopped answering pings", dead);
  if (g_o.expect_open >= 0 && kept != g_o.expect_open)
    return fail("conns: the node kept %d connections, expected %d (its inbound limit)", kept, g_o.expect_open);
  return pass("conns: %d established and still answering, %d refused before the handshake", kept, refused);
}

/* ------------------------------------------------------------------------- */
/* case 6: connection flood */

int m_flood(void) {
  int n = g_o.count ? g_o.count : 3000;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
    rl.rlim_cur = rl.rlim_max < (rlim_t)n + 64 ? rl.rlim_max : (rlim_t)n + 64;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  int *fd = malloc((size_t)n * sizeof *fd);
  uint8_t *st = calloc((size_t)n, 1); /* 0 connecting, 1 connected, 2 closed by node, 3 connect failed */
  uint8_t *served = calloc((size_t)n, 1); /* the node answered (multistream): it took it as a pending handshake */
  struct pollfd *p = malloc((size_t)n * sizeof *p);
  if (!fd || !st || !p || !served) return fail("out of memory");
  buf hello = {0};
  buf_mss(&hello, MSS_HEADER);
  buf_mss(&hello, NOISE_ID);
  uint64_t t0 = now_ms();
  for (int i = 0; i < n; i++) {
    int inprog = 0;
    fd[i] = tcp_socket_to(g_o.host, g_o.port, 1, &inprog);
    if (fd[i] < 0) {
      st[i] = 3;
      continue;
    }
    if (!inprog && send(fd[i], hello.p, hello.len, MSG_NOSIGNAL) >= 0) st[i] = 1;
    if (!inprog && st[i] != 1) st[i] = 2;
  }
  int connected = 0, refused = 0, failed = 0, pending = 0, open_hold = -1;
  /* phase 0: connects finish; 1: the node refuses what is over its limits; 2: hold */
  int phase = 0;
  uint64_t settle_end = now_ms() + (uint64_t)g_o.wait_ms, end = settle_end;
  for (;;) {
    connected = refused = failed = pending = 0;
    for (int i = 0; i < n; i++) {
      p[i].fd = st[i] <= 1 ? fd[i] : -1;
      p[i].events = st[i] == 0 ? POLLOUT : POLLIN;
      p[i].revents = 0;
      pending += st[i] == 0;
      connected += st[i] == 1 || st[i] == 2;
      refused += st[i] == 2;
      failed += st[i] == 3;
    }
    uint64_t t = now_ms();
    if (phase == 0 && !pending) {
      say("flood-connected connected=%d refused=%d open=%d failed=%d connect-ms=%llu", connected, refused,
          connected - refused, failed, (unsigned long long)(t - t0));
      phase = 1;
    }
    if (phase < 2 && (t >= settle_end || (phase == 1 && g_o.expect_open >= 0 && connected - refused <= g_o.expect_open))) {
      say("flood-holding connected=%d refused=%d open=%d failed=%d connecting=%d settle-ms=%llu", connected, refused,
          connected - refused, failed, pending, (unsigned long long)(t - t0));
      phase = 2;
      open_hold = connected - refused;
      end = t + (uint64_t)g_o.hold_ms;
    }
    if (phase == 2 && t >= end) break;
    uint64_t until = phase == 2 ? end : settle_end;
    int r = poll(p, (nfds_t)n, (int)(until > t ? (until - t > 200 ? 200 : until - t) : 0));
    if (r <= 0) continue;
    for (int i = 0; i < n; i++) {
      if (!p[i].revents) continue;
      if (st[i] == 0) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(fd[i], SOL_SOCKET, SO_ERROR, &err, &el);
        st[i] = err ? 3 : 1;
        /* speak first: a connection the kernel completed but the node has not accepted yet is
         * then retransmitted until the node takes it (and refuses or serves it) */
        if (st[i] == 1 && send(fd[i], hello.p, hello.len, MSG_NOSIGNAL) < 0) st[i] = 2;
      } else if (st[i] == 1) {
        char tmp[4096];
        ssize_t k = recv(fd[i], tmp, sizeof tmp, 0);
        if (k > 0) served[i] = 1;
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) st[i] = 2;
      }
    }
  }
  connected = refused = failed = 0;
  int still_connecting = 0, n_served = 0;
  for (int i = 0; i < n; i++) {
    n_served += served[i];
    connected += st[i] == 1 || st[i] == 2;
    refused += st[i] == 2;
    failed += st[i] == 3;
    still_connecting += st[i] == 0;
    if (fd[i] >= 0) close(fd[i]);
  }
  say("flood-done connected=%d refused=%d open=%d failed=%d connecting=%d served=%d", connected, refused,
      connected - refused, failed, still_connecting, n_served);
  free(fd);
  free(st);
  free(p);
  free(served);
  buf_free(&hello);
  if (connected < n / 2) return fail("flood: only %d of %d connections got through TCP", connected, n);
  /* --expect-open N (the pending-handshake limit): the node never keeps more than N once the flood has
   * settled, and it did serve (answer) at least N. Exactly N stay open unless kept ones reach the
   * node's handshake timeout while the flood settles or during the hold (short timeouts). */
  if (g_o.expect_open >= 0 && (open_hold > g_o.expect_open || connected - refused > g_o.expect_open))
    return fail("flood: the node kept %d connections (%d at the end), more than %d (its pending-handshake limit)",
                open_hold, connected - refused, g_o.expect_open);
  if (g_o.expect_open >= 0 && n_served < g_o.expect_open)
    return fail("flood: the node served only %d connections, expected at least %d", n_served, g_o.expect_open);
  return pass("flood: %d connections, %d served, %d closed by the node, %d kept when settled, %d left open",
              connected, n_served, refused, open_hold, connected - refused);
}
