/* tests/tools/hostile_peer/attacks_noise.c - case 2 + 3: corrupted Noise handshake messages (as
 * dialer and, in "listen", as a responder that lp2p dials) and corrupted transport frames. */
#include "hostile.h"

/* ------------------------------------------------------------------------- */
/* case 2 + 3: Noise handshake */

int m_noise_msg1(const char *mode) {
  hconn c;
  if (hc_connect(&c) < 0) return fail("cannot connect: %s", strerror(errno));
  if (mss_select_raw(&c, NOISE_ID) < 0) {
    hc_free(&c);
    return fail("multistream /noise was not accepted");
  }
  uint8_t junk[65535];
  randombytes_buf(junk, sizeof junk);
  if (!strcmp(mode, "noise-msg1-short")) {
    noise_send_msg(&c, junk, 16, 16);
  } else if (!strcmp(mode, "noise-msg1-zero")) {
    noise_send_msg(&c, junk, 0, 0);
  } else if (!strcmp(mode, "noise-msg1-max")) {
    noise_send_msg(&c, junk, 65535, 65535);
  } else if (!strcmp(mode, "noise-msg1-truncated")) { /* announces 32, sends 10, then EOF */
    noise_send_msg(&c, junk, 10, 32);
    shutdown(c.fd, SHUT_WR);
  } else if (!strcmp(mode, "noise-msg1-lowpoint")) { /* an all-zero ephemeral key: DH fails */
    memset(junk, 0, 32);
    noise_send_msg(&c, junk, 32, 32);
    /* the responder only notices at msg2's DH: it must close instead of answering */
  }
  int rv = expect_close(&c, mode);
  hc_free(&c);
  return rv;
}

int m_noise_msg3(const char *mode) {
  hconn c;
  if (hc_connect(&c) < 0) return fail("cannot connect: %s", strerror(errno));
  if (mss_select_raw(&c, NOISE_ID) < 0) {
    hc_free(&c);
    return fail("multistream /noise was not accepted");
  }
  print_peer(g_key);
  tamper t = T_NONE;
  msg3_defect d = M3_NONE;
  if (!strcmp(mode, "noise-msg3-flip-static")) d = M3_FLIP_STATIC;
  else if (!strcmp(mode, "noise-msg3-flip-tag")) d = M3_FLIP_TAG;
  else if (!strcmp(mode, "noise-msg3-short")) d = M3_SHORT;
  else if (parse_tamper(g_o.tamper, &t) < 0 || t == T_NONE) {
    hc_free(&c);
    return fail("noise-payload needs --tamper badsig|wrong-static|other-key|no-sig|no-key|bad-key|garbage|muxer-junk");
  }
  int r = noise_initiate(&c, g_key, g_other, t, d);
  if (r < 0) {
    hc_free(&c);
    return fail("%s: the node did not get to msg3", mode);
  }
  char what[96];
  snprintf(what, sizeof what, "%s%s%s", mode, t != T_NONE ? " " : "", t != T_NONE ? g_o.tamper : "");
  int rv = expect_close(&c, what);
  hc_free(&c);
  return rv;
}

/* Transport frames after a complete handshake. */
int m_noise_transport(const char *mode) {
  hconn c;
  if (secure_session(&c)) {
    hc_free(&c);
    return 1;
  }
  uint8_t h[12], junk[65535];
  yx_hdr(h, 0, YX_PING, YX_SYN, 0, 7);
  randombytes_buf(junk, sizeof junk);
  if (!strcmp(mode, "noise-frame-flip")) {
    send_frame(&c, h, 12, 1);
  } else if (!strcmp(mode, "noise-frame-zero")) {
    noise_send_msg(&c, junk, 0, 0);
  } else if (!strcmp(mode, "noise-frame-short")) {
    noise_send_msg(&c, junk, 10, 10);
  } else if (!strcmp(mode, "noise-frame-max")) {
    noise_send_msg(&c, junk, 65535, 65535);
  } else if (!strcmp(mode, "noise-frame-replay")) { /* the same valid frame twice: nonce reuse */
    uint8_t fr[2 + 12 + 16];
    lp2p__noise_cipher_encrypt(&c.tx, NULL, 0, h, 12, fr + 2);
    fr[0] = 0;
    fr[1] = 28;
    send_raw(&c, fr, sizeof fr);
    send_raw(&c, fr, sizeof fr);
  } else if (!strcmp(mode, "noise-frame-truncated")) { /* announce 1000, send 100, then EOF */
    noise_send_msg(&c, junk, 100, 1000);
    shutdown(c.fd, SHUT_WR);
  }
  int rv = expect_close(&c, mode);
  hc_free(&c);
  return rv;
}

/* Listener roles: the node dials us. We answer multistream and play the Noise responder with our
 * key (and an optional payload defect); the node must abort after msg2 (no msg3). */
static int serve_one(int lfd, tamper t) {
  struct pollfd p = {lfd, POLLIN, 0};
  if (poll(&p, 1, g_o.wait_ms) <= 0) return fail("nobody dialed within %d ms", g_o.wait_ms);
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) return fail("accept: %s", strerror(errno));
  hconn c;
  hc_init(&c, fd);
  char line[1100];
  buf b = {0}, msg = {0}, payload = {0};
  int rv = 1;
  if (mss_read_raw(&c, line, sizeof line, g_o.wait_ms) < 0 || strcmp(line, MSS_HEADER)) {
    rv = fail("no multistream header from the dialer");
    goto out;
  }
  buf_mss(&b, MSS_HEADER);
  for (;;) { /* answer proposals until /noise */
    if (mss_read_raw(&c, line, sizeof line, g_o.wait_ms) < 0) {
      rv = fail("dialer went away during multistream");
      goto out;
    }
    buf_mss(&b, strcmp(line, NOISE_ID) ? "na" : NOISE_ID);
    send_raw(&c, b.p, b.len);
    b.len = 0;
    if (!strcmp(line, NOISE_ID)) break;
  }
  uint8_t m[65535], pl[65535];
  size_t n, pn;
  if (noise_recv_msg(&c, &msg, g_o.wait_ms) < 0 || lp2p__noise_hs_init(&c.hs, 0, NULL, 0, NULL, NULL) < 0 ||
      lp2p__noise_hs_read(&c.hs, msg.p, msg.len, pl, sizeof pl, &pn) < 0) {
    rv = fail("no valid noise msg1 from the dialer");
    goto out;
  }
  if (build_payload(&payload, g_key, g_other, c.hs.s_pub, 1, t) < 0 ||
      lp2p__noise_hs_write(&c.hs, payload.p, payload.len, m, sizeof m, &n) < 0 || noise_send_msg(&c, m, n, n) < 0) {
    rv = fail("cannot send msg2");
    goto out;
  }
  /* a correct dialer that rejects us closes without msg3 */
  msg.len = 0;
  uint64_t t0 = now_ms();
  if (noise_recv_msg(&c, &msg, g_o.wait_ms) == 0) {
    int valid = lp2p__noise_hs_read(&c.hs, msg.p, msg.len, pl, sizeof pl, &pn) == 0;
    if (g_o.expect_accept && valid)
      rv = pass("the dialer accepted our msg2 and sent a valid msg3");
    else
      rv = fail("the dialer sent msg3 (%zu bytes, %s)", msg.len, valid ? "valid" : "invalid");
    goto out;
  }
  if (g_o.expect_accept) {
    rv = fail("the dialer rejected our msg2 (%s)", c.closed ? c.how : "no msg3");
    goto out;
  }
  if (!c.closed) {
    rv = fail("the dialer neither closed nor sent msg3 within %d ms", g_o.wait_ms);
    goto out;
  }
  rv = pass("dialer aborted after msg2 (%s, %llu ms)", c.how, (unsigned long long)(now_ms() - t0));
out:
  buf_free(&b);
  buf_free(&msg);
  buf_free(&payload);
  hc_free(&c);
  return rv;
}

int m_listen(void) {
  tamper t;
  if (parse_tamper(g_o.tamper, &t) < 0) return fail("bad --tamper %s", g_o.tamper);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)g_o.port);
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  socklen_t al = sizeof a;
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 16) < 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
    return fail("cannot listen: %s", strerror(errno));
  lp2p_peer_id id;
  char txt[LP2P_PEER_ID_MAX_TEXT];
  lp2p_peer_id_from_pubkey(lp2p_privkey_public(g_key), &id);
  lp2p_peer_id_to_string(&id, txt, sizeof txt);
  say("listening /ip4/127.0.0.1/tcp/%d %s", ntohs(a.sin_port), txt);
  int rv = 0;
  for (int i = 0; i < g_o.serve; i++) rv |= serve_one(lfd, t);
  close(lfd);
  return rv;
}
