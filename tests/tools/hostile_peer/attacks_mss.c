/* tests/tools/hostile_peer/attacks_mss.c - case 1: malformed multistream-select on the raw connection. */
#include "hostile.h"

/* ------------------------------------------------------------------------- */
/* case 1: multistream-select on the raw connection */

int m_mss(const char *mode) {
  hconn c;
  if (hc_connect(&c) < 0) return fail("cannot connect: %s", strerror(errno));
  buf b = {0};
  int rv;
  if (strcmp(mode, "mss-bad-varint")) buf_mss(&b, MSS_HEADER);
  if (!strcmp(mode, "mss-oversize")) { /* a 100 KiB line */
    buf_varint(&b, 100 * 1024);
    for (int i = 0; i < 100 * 1024 - 1; i++) buf_byte(&b, 'a');
    buf_byte(&b, '\n');
  } else if (!strcmp(mode, "mss-no-newline")) {
    buf_varint(&b, 7);
    buf_add(&b, "/noisex", 7);
  } else if (!strcmp(mode, "mss-bad-varint")) {
    for (int i = 0; i < 10; i++) buf_byte(&b, 0xff);
  } else if (!strcmp(mode, "mss-nul")) {
    buf_varint(&b, 8);
    buf_add(&b, "/noi\0se\n", 8);
  } else if (!strcmp(mode, "mss-empty")) {
    buf_varint(&b, 0);
  } else if (!strcmp(mode, "mss-bad-header")) {
    b.len = 0;
    buf_mss(&b, "/multistream/9.9.9");
    buf_mss(&b, NOISE_ID);
  }
  send_raw(&c, b.p, b.len); /* the node may close while we are still sending: that is fine */
  buf_free(&b);
  rv = expect_close(&c, mode);
  hc_free(&c);
  return rv;
}

/* Unknown proposals until the node gives up; it must answer "na" at most its limit (32) times. */
int m_mss_na_flood(void) {
  hconn c;
  if (hc_connect(&c) < 0) return fail("cannot connect: %s", strerror(errno));
  int n = g_o.count ? g_o.count : 100, na = 0;
  buf b = {0};
  buf_mss(&b, MSS_HEADER);
  send_raw(&c, b.p, b.len);
  char line[1100];
  if (mss_read_raw(&c, line, sizeof line, g_o.wait_ms) < 0 || strcmp(line, MSS_HEADER)) {
    buf_free(&b);
    hc_free(&c);
    return fail("no multistream header from the node");
  }
  for (int i = 0; i < n && !c.closed; i++) {
    b.len = 0;
    char p[64];
    snprintf(p, sizeof p, "/hostile/nope/%d", i);
    buf_mss(&b, p);
    if (send_raw(&c, b.p, b.len) < 0) break;
    if (mss_read_raw(&c, line, sizeof line, 2000) < 0) break;
    if (!strcmp(line, "na")) na++;
  }
  buf_free(&b);
  say("na answers: %d", na);
  int rv;
  if (na >= n)
    rv = fail("the node answered all %d unknown proposals", n);
  else
    rv = expect_close(&c, "mss-na-flood");
  hc_free(&c);
  return rv;
}
