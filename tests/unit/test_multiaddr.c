/* tests/unit/test_multiaddr.c - multiaddr text/binary conversion against the
 * vectors, canonical printing, every invalid form we could think of, buffer
 * sizes, the component API and allocation failure. */
#include "failmem.h"
#include "json.h"
#include "lp2p/encoding.h"
#include "lp2p/multiaddr.h"
#include "test.h"

static char errbuf[LP2P_MULTIADDR_ERRLEN];

/* Parse text and print it back: returns 0 and fills out on success. */
static int roundtrip(const char *in, char *out, size_t cap) {
  lp2p_multiaddr *ma = NULL;
  int rv = lp2p_multiaddr_parse(&ma, in, errbuf, sizeof errbuf);
  if (rv) return rv;
  rv = lp2p_multiaddr_to_string(ma, out, cap);
  /* the binary form must re-validate and print the same */
  size_t len;
  const uint8_t *b = lp2p_multiaddr_bytes(ma, &len);
  lp2p_multiaddr *mb = NULL;
  if (rv >= 0 && lp2p_multiaddr_from_bytes(&mb, b, len, NULL, 0) != LP2P_OK) rv = LP2P_ERR_INTERNAL;
  if (rv >= 0 && !lp2p_multiaddr_equal(ma, mb)) rv = LP2P_ERR_INTERNAL;
  lp2p_multiaddr_free(mb);
  lp2p_multiaddr_free(ma);
  return rv < 0 ? rv : 0;
}

/* Expect parse failure with exactly this message (or a prefix match when
 * msg ends in '*'). */
static int parse_fails(const char *text, const char *msg) {
  lp2p_multiaddr *ma = (lp2p_multiaddr *)1;
  int rv = lp2p_multiaddr_parse(&ma, text, errbuf, sizeof errbuf);
  if (rv != LP2P_ERR_MULTIADDR || ma != NULL) {
    fprintf(stderr, "    '%s' gave %d\n", text, rv);
    if (rv == 0) lp2p_multiaddr_free(ma);
    return 0;
  }
  if (!msg) return 1;
  size_t n = strlen(msg);
  int ok = msg[n - 1] == '*' ? !strncmp(errbuf, msg, n - 1) : !strcmp(errbuf, msg);
  if (!ok) fprintf(stderr, "    '%s': message '%s', wanted '%s'\n", text, errbuf, msg);
  return ok;
}

static int bytes_fail(const char *hex, const char *msg_part) {
  size_t len;
  uint8_t *b = hex_to_bytes(hex, &len);
  if (!b) return 0;
  lp2p_multiaddr *ma = (lp2p_multiaddr *)1;
  int rv = lp2p_multiaddr_from_bytes(&ma, b, len, errbuf, sizeof errbuf);
  free(b);
  if (rv != LP2P_ERR_MULTIADDR || ma != NULL) {
    fprintf(stderr, "    %s gave %d\n", hex, rv);
    if (rv == 0) lp2p_multiaddr_free(ma);
    return 0;
  }
  if (msg_part && !strstr(errbuf, msg_part)) {
    fprintf(stderr, "    %s: message '%s' lacks '%s'\n", hex, errbuf, msg_part);
    return 0;
  }
  return 1;
}

/* ---- vectors ---- */

TEST(vectors) {
  json *doc = json_load_vector("multiaddr.json");
  REQUIRE(doc);
  json *vecs = json_get(doc, "vectors");
  REQUIRE(vecs && vecs->n >= 8);
  for (size_t i = 0; i < vecs->n; i++) {
    json *v = json_at(vecs, i);
    const char *s = json_str(v, "string");
    size_t blen;
    uint8_t *want = json_hex(v, "hex", &blen);
    REQUIRE(s && want);
    CHECK_EQ(blen, (size_t)json_get(v, "length")->num);

    lp2p_multiaddr *a = NULL, *b = NULL;
    CHECK_OK(lp2p_multiaddr_parse(&a, s, errbuf, sizeof errbuf));
    CHECK_STR(errbuf, "");
    CHECK_OK(lp2p_multiaddr_from_bytes(&b, want, blen, errbuf, sizeof errbuf));
    REQUIRE(a && b);
    size_t len;
    const uint8_t *got = lp2p_multiaddr_bytes(a, &len);
    CHECK_EQ(len, blen);
    CHECK_MEM(got, want, blen);
    CHECK(lp2p_multiaddr_equal(a, b));

    char text[LP2P_MULTIADDR_MAX_TEXT];
    CHECK_EQ(lp2p_multiaddr_to_string(a, text, sizeof text), (int)strlen(s));
    CHECK_STR(text, s);
    CHECK_EQ(lp2p_multiaddr_to_string(b, text, sizeof text), (int)strlen(s));
    CHECK_STR(text, s);
    /* every too-small buffer fails cleanly, the exact one works */
    size_t tl = strlen(s);
    char *small = malloc(tl + 1);
    for (size_t cap = 0; cap <= tl; cap++) CHECK_EQ(lp2p_multiaddr_to_string(a, small, cap), LP2P_ERR_BUFSIZE);
    free(small);
    small = malloc(tl + 1);
    CHECK_EQ(lp2p_multiaddr_to_string(a, small, tl + 1), (int)tl);
    free(small);

    /* components */
    json *comps = json_get(v, "components");
    CHECK_EQ(lp2p_multiaddr_count(a), comps->n);
    size_t off = 0;
    for (size_t k = 0; k < comps->n; k++) {
      json *c = json_at(comps, k);
      size_t clen;
      uint8_t *chex = json_hex(c, "hex", &clen);
      REQUIRE(chex);
      CHECK_MEM(want + off, chex, clen);
      uint32_t code;
      const uint8_t *val;
      size_t vlen;
      CHECK_OK(lp2p_multiaddr_component(a, k, &code, &val, &vlen));
      CHECK_STR(lp2p_multiaddr_protocol_name(code), json_str(c, "proto"));
      /* the value is the tail of the component bytes */
      CHECK(vlen <= clen);
      CHECK(val == got + off + clen - vlen);
      uint32_t code2;
      CHECK_OK(lp2p_multiaddr_protocol_code(json_str(c, "proto"), &code2));
      CHECK_EQ(code, code2);
      off += clen;
      /* prefix k+1 is exactly the first off bytes */
      lp2p_multiaddr *p = NULL;
      CHECK_OK(lp2p_multiaddr_prefix(&p, a, k + 1));
      size_t plen;
      const uint8_t *pb = lp2p_multiaddr_bytes(p, &plen);
      CHECK_EQ(plen, off);
      CHECK_MEM(pb, want, off);
      CHECK_EQ(lp2p_multiaddr_count(p), k + 1);
      lp2p_multiaddr_free(p);
      free(chex);
    }
    CHECK_EQ(off, blen);
    CHECK_EQ(lp2p_multiaddr_component(a, comps->n, NULL, NULL, NULL), LP2P_ERR_INVAL);

    /* every strict prefix of the binary form that cuts a component is invalid;
     * one that ends on a boundary is valid */
    size_t boundary = 0, kk = 0;
    for (size_t cut = 1; cut < blen; cut++) {
      while (kk < comps->n) {
        size_t cl;
        uint8_t *ch = json_hex(json_at(comps, kk), "hex", &cl);
        free(ch);
        if (boundary + cl > cut) break;
        boundary += cl;
        kk++;
      }
      lp2p_multiaddr *t = NULL;
      int rv = lp2p_multiaddr_from_bytes(&t, want, cut, NULL, 0);
      if (cut == boundary) CHECK_OK(rv);
      else CHECK_EQ(rv, LP2P_ERR_MULTIADDR);
      lp2p_multiaddr_free(t);
    }
    lp2p_multiaddr_free(a);
    lp2p_multiaddr_free(b);
    free(want);
  }
  json_free(doc);
}

/* ---- canonical printing ---- */

TEST(canonical_text) {
  static const char *const cases[][2] = {
      {"/ip4/0.0.0.0/tcp/0", NULL},
      {"/ip4/255.255.255.255/udp/65535", NULL},
      {"/ip4/1.2.3.4/", "/ip4/1.2.3.4"},
      {"/ip4/1.2.3.4/tcp/080", "/ip4/1.2.3.4/tcp/80"},
      {"/ip4/1.2.3.4/tcp/00000", "/ip4/1.2.3.4/tcp/0"},
      {"/ip6/::", NULL},
      {"/ip6/::1", NULL},
      {"/ip6/1::", NULL},
      {"/ip6/0:0:0:0:0:0:0:0", "/ip6/::"},
      {"/ip6/0000:0000:0000:0000:0000:0000:0000:0001", "/ip6/::1"},
      {"/ip6/2001:0db8:0000:0000:0000:ff00:0042:8329", "/ip6/2001:db8::ff00:42:8329"},
      {"/ip6/2001:db8:0:0:1:0:0:1", "/ip6/2001:db8::1:0:0:1"},      /* tie: first run */
      {"/ip6/1:0:0:2:0:0:0:3", "/ip6/1:0:0:2::3"},                  /* longest run wins */
      {"/ip6/2001:db8:0:1:1:1:1:1", NULL},                          /* single 0 kept */
      {"/ip6/0:0:1:0:0:0:0:0", "/ip6/0:0:1::"},
      {"/ip6/2001:DB8::A", "/ip6/2001:db8::a"},
      {"/ip6/1:2:3:4:5:6:7::", "/ip6/1:2:3:4:5:6:7:0"},
      {"/ip6/::2:3:4:5:6:7:8", "/ip6/0:2:3:4:5:6:7:8"},
      {"/ip6/1:2:3:4:5:6:7:8", NULL},
      {"/ip6/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
      {"/ip6/::ffff:1.2.3.4", NULL},
      {"/ip6/::ffff:0102:0304", "/ip6/::ffff:1.2.3.4"},
      {"/ip6/::ffff:255.255.255.255/tcp/1", NULL},
      {"/ip6/::1.2.3.4", "/ip6/::102:304"},
      {"/ip6/64:ff9b::192.0.2.33", "/ip6/64:ff9b::c000:221"},
      {"/ip6/1:2:3:4:5:6:1.2.3.4", "/ip6/1:2:3:4:5:6:102:304"},
      {"/ip6/fe80::1/udp/4001/quic-v1", NULL},
      {"/ip6zone/eth0/ip6/fe80::1/tcp/1", NULL},
      {"/dns/example.com/tcp/443/tls/sni/example.com/ws", NULL},
      {"/dns6/b\xc3\xbc" "cher.de/tcp/1", NULL},
      {"/dns4/a b/tcp/1", NULL},
      {"/dnsaddr/bootstrap.libp2p.io", NULL},
      {"/ip4/1.2.3.4/tcp/1/wss", NULL},
      {"/ip4/1.2.3.4/tcp/1/http", NULL},
      {"/ip4/1.2.3.4/tcp/1/tls/http", NULL},
      {"/ip4/1.2.3.4/udp/1/quic", NULL},
      {"/ip4/1.2.3.4/udp/1/webrtc-direct", NULL},
      {"/ip4/1.2.3.4/tcp/1/noise", NULL},
      {"/p2p-circuit/webrtc", NULL},
      {"/ipfs/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
       "/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"},
      {"/p2p/bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe",
       "/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"},
      {"/p2p/BAFZBEIE5745RPV2M6TJYUUGYWY4D5EWRQGQQHFNF445HE3OMZPJBX5XQXE",
       "/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"},
      {"/p2p/bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6",
       "/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"},
      {"/p2p/16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY", NULL},
      {"/ip4/1.2.3.4/udp/1/quic-v1/webtransport/certhash/uEiBWjRHYePkmv9uirJi13sbe1x9JeSVr7ExyTX-8ALXXtA",
       NULL},
      {"/ip4/1.2.3.4/udp/1/quic-v1/webtransport/certhash/"
       "bciqfndir3b4psjv73orkzgfv33dn5vy7jf4sk27mjrze2754ac25pna",
       "/ip4/1.2.3.4/udp/1/quic-v1/webtransport/certhash/uEiBWjRHYePkmv9uirJi13sbe1x9JeSVr7ExyTX-8ALXXtA"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char out[LP2P_MULTIADDR_MAX_TEXT];
    int rv = roundtrip(cases[i][0], out, sizeof out);
    if (rv) fprintf(stderr, "    '%s': %d %s\n", cases[i][0], rv, errbuf);
    CHECK_OK(rv);
    if (!rv) CHECK_STR(out, cases[i][1] ? cases[i][1] : cases[i][0]);
  }
}

/* ---- invalid text ---- */

TEST(invalid_text_messages) {
  CHECK(parse_fails("/ip4/127.0.0.1/tcp/70000", "tcp: port '70000' out of range"));
  CHECK(parse_fails("/ip4/127.0.0.1/udp/65536", "udp: port '65536' out of range"));
  CHECK(parse_fails("/tcp/99999999999999999999999", "tcp: port '99999999999999999999999' out of range"));
  CHECK(parse_fails("/foo/1", "unknown protocol 'foo'"));
  CHECK(parse_fails("/ip4/1.2.3.4/bar", "unknown protocol 'bar'"));
  CHECK(parse_fails("/unix/tmp/sock", "unknown protocol 'unix'"));
  CHECK(parse_fails("/IP4/1.2.3.4", "unknown protocol 'IP4'"));
  CHECK(parse_fails("/ip4/1.2.3", "ip4: invalid address '1.2.3'"));
  CHECK(parse_fails("/ip4", "ip4: missing value"));
  CHECK(parse_fails("/ip4/", "ip4: missing value"));
  CHECK(parse_fails("/tcp/", "tcp: missing value"));
  CHECK(parse_fails("/ip4/1.2.3.4/tcp", "tcp: missing value"));
  CHECK(parse_fails("/tcp/-1", "tcp: invalid port '-1'"));
  CHECK(parse_fails("/tcp/+1", "tcp: invalid port '+1'"));
  CHECK(parse_fails("/tcp/1a", "tcp: invalid port '1a'"));
  CHECK(parse_fails("/tcp/ 1", "tcp: invalid port ' 1'"));
  CHECK(parse_fails("", "empty multiaddr"));
  CHECK(parse_fails("/", "empty multiaddr"));
  CHECK(parse_fails("ip4/1.2.3.4", "multiaddr must begin with '/'"));
  CHECK(parse_fails(" /ip4/1.2.3.4", "multiaddr must begin with '/'"));
  CHECK(parse_fails("//ip4/1.2.3.4", "empty protocol name*"));
  CHECK(parse_fails("/ip4/1.2.3.4//tcp/1", "empty protocol name*"));
  CHECK(parse_fails("/ip4/1.2.3.4/tcp/1//", "empty protocol name*"));
  CHECK(parse_fails("/quic-v1/1", "unknown protocol '1'"));
  CHECK(parse_fails("/dns4", "dns4: missing value"));
  CHECK(parse_fails("/dns4/a\tb", "dns4: invalid name 'a?b'"));
  CHECK(parse_fails("/dns/\xff", "dns: invalid name '?'"));
  CHECK(parse_fails("/dns/\xc0\x80", NULL));         /* overlong UTF-8 NUL */
  CHECK(parse_fails("/dns/\xed\xa0\x80", NULL));     /* surrogate */
  CHECK(parse_fails("/dns/\xc2\x85", NULL));         /* C1 control */
  CHECK(parse_fails("/dns/\xf4\x90\x80\x80", NULL)); /* > U+10FFFF */
  CHECK(parse_fails("/dns/\xe2\x82", NULL));         /* truncated sequence */
  CHECK(parse_fails("/dns/a\x7f", NULL));
  CHECK(parse_fails("/sni", "sni: missing value"));
  CHECK(parse_fails("/p2p/abc", "p2p: invalid peer id 'abc'"));
  CHECK(parse_fails("/p2p/Qm", "p2p: invalid peer id 'Qm'"));
  CHECK(parse_fails("/p2p/1", "p2p: invalid peer id '1'"));
  CHECK(parse_fails("/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5", NULL)); /* one char short */
  CHECK(parse_fails("/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N0", NULL));
  CHECK(parse_fails("/p2p/zQmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", NULL));
  CHECK(parse_fails("/p2p/bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqx", NULL));
  CHECK(parse_fails("/ip4/1.2.3.4/tcp/1/certhash/uAAAA", "certhash: invalid value 'uAAAA'"));
  CHECK(parse_fails("/certhash/x", "certhash: invalid value 'x'"));
  char longname[300];
  memset(longname, 'x', sizeof longname);
  memcpy(longname, "/p2p/", 5);
  longname[sizeof longname - 1] = '\0';
  CHECK(parse_fails(longname, "p2p: invalid peer id 'xxxxxxxx*"));
  CHECK(strlen(errbuf) < 100);
}

TEST(invalid_ip) {
  const char *bad4[] = {"1.2.3",     "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.04", "1..2.3",  "1.2.3.",
                        ".1.2.3",    "1.2.3.4 ",  "a.b.c.d",   "1.2.3.0004", "-1.2.3.4", "1.2.3.1000",
                        "1.2.3.4%1", "0x1.2.3.4", "1.2.3.4.", "::1"};
  for (size_t i = 0; i < sizeof bad4 / sizeof bad4[0]; i++) {
    char t[64], msg[96];
    snprintf(t, sizeof t, "/ip4/%s/tcp/1", bad4[i]);
    snprintf(msg, sizeof msg, "ip4: invalid address '%s'", bad4[i]);
    CHECK(parse_fails(t, msg));
  }
  const char *bad6[] = {":",
                        ":::",
                        "1:::2",
                        "1::2::3",
                        "1:2:3:4:5:6:7:8:9",
                        "1:2:3:4:5:6:7",
                        "12345::",
                        "g::",
                        "::1%eth0",
                        "1.2.3.4",
                        "::1.2.3",
                        "::1.2.3.4.5",
                        "::256.1.1.1",
                        "::01.2.3.4",
                        "1:2:3:4:5:6:7:1.2.3.4",
                        "::1:2:3:4:5:6:1.2.3.4",
                        "::1:",
                        ":1::",
                        "1:2:3:4:5:6:7:8::",
                        "::1:2:3:4:5:6:7:8",
                        "::1.2.3.4:5",
                        "[::1]",
                        "1:2:3:4:5:6:7:8:",
                        ":1:2:3:4:5:6:7:8",
                        "fe80:: 1",
                        "::ffff:1.2.3.4 "};
  for (size_t i = 0; i < sizeof bad6 / sizeof bad6[0]; i++) {
    char t[64], msg[96];
    snprintf(t, sizeof t, "/ip6/%s", bad6[i]);
    snprintf(msg, sizeof msg, "ip6: invalid address '%s'", bad6[i]);
    CHECK(parse_fails(t, msg));
  }
}

TEST(parse_n_and_nul) {
  lp2p_multiaddr *ma = NULL;
  /* not NUL-terminated: only the given bytes count */
  const char *s = "/ip4/1.2.3.4/tcp/80/junk";
  CHECK_OK(lp2p_multiaddr_parse_n(&ma, s, 19, errbuf, sizeof errbuf));
  CHECK_EQ(lp2p_multiaddr_count(ma), 2);
  lp2p_multiaddr_free(ma);
  /* an embedded NUL is an error, wherever it is */
  CHECK_EQ(lp2p_multiaddr_parse_n(&ma, "/dns/a\0b", 8, errbuf, sizeof errbuf), LP2P_ERR_MULTIADDR);
  CHECK_EQ(lp2p_multiaddr_parse_n(&ma, "/tcp/1\0", 7, errbuf, sizeof errbuf), LP2P_ERR_MULTIADDR);
  CHECK_EQ(lp2p_multiaddr_parse_n(&ma, "/tcp\0/1", 7, errbuf, sizeof errbuf), LP2P_ERR_MULTIADDR);
  CHECK_EQ(lp2p_multiaddr_parse_n(&ma, NULL, 0, errbuf, sizeof errbuf), LP2P_ERR_MULTIADDR);
  CHECK_EQ(lp2p_multiaddr_parse_n(&ma, NULL, 3, errbuf, sizeof errbuf), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_multiaddr_parse(NULL, "/tcp/1", errbuf, sizeof errbuf), LP2P_ERR_INVAL);
  CHECK(ma == NULL);
}

TEST(size_limits) {
  /* 204 ip4 components = 1020 bytes; + tcp (3) = 1023; + another tcp -> 1026 */
  static char text[LP2P_MULTIADDR_MAX_TEXT + 16];
  size_t o = 0;
  for (int i = 0; i < 204; i++) o += (size_t)sprintf(text + o, "/ip4/10.0.0.%d", i);
  o += (size_t)sprintf(text + o, "/tcp/1");
  lp2p_multiaddr *ma = NULL;
  CHECK_OK(lp2p_multiaddr_parse(&ma, text, errbuf, sizeof errbuf));
  size_t len;
  lp2p_multiaddr_bytes(ma, &len);
  CHECK_EQ(len, 1023);
  /* +quic-v1 (2 bytes) = 1025: too big */
  lp2p_multiaddr *too = NULL;
  CHECK_EQ(lp2p_multiaddr_append(&too, ma, LP2P_MA_QUIC_V1, NULL, 0, errbuf, sizeof errbuf), LP2P_ERR_MULTIADDR);
  CHECK(strstr(errbuf, "1024") != NULL);
  CHECK(too == NULL);
  lp2p_multiaddr *cat = NULL;
  CHECK_EQ(lp2p_multiaddr_concat(&cat, ma, ma), LP2P_ERR_TOO_LARGE);
  CHECK(cat == NULL);
  sprintf(text + o, "/quic-v1");
  CHECK(parse_fails(text, "multiaddr exceeds the 1024 byte limit"));
  /* binary: 1024 is the cap */
  uint8_t big[1100];
  size_t bo = 0;
  while (bo + 5 <= 1020) {
    memcpy(big + bo, "\x04\x0a\x00\x00\x01", 5);
    bo += 5;
  }
  memcpy(big + bo, "\x06\x00\x01", 3); /* 1023 */
  bo += 3;
  lp2p_multiaddr *b = NULL;
  CHECK_OK(lp2p_multiaddr_from_bytes(&b, big, bo, NULL, 0));
  CHECK(lp2p_multiaddr_equal(b, b));
  lp2p_multiaddr_free(b);
  big[bo++] = 0x04; /* 1024 bytes: an incomplete ip4 */
  CHECK_EQ(lp2p_multiaddr_from_bytes(&b, big, bo, errbuf, sizeof errbuf), LP2P_ERR_MULTIADDR);
  CHECK(strstr(errbuf, "ip4") != NULL);
  memcpy(big + bo, "\x0a\x00\x00\x01", 4);
  bo += 4;
  CHECK_EQ(lp2p_multiaddr_from_bytes(&b, big, bo, errbuf, sizeof errbuf), LP2P_ERR_MULTIADDR);
  CHECK(strstr(errbuf, "exceeds") != NULL);
  /* a single dns name of 1020 bytes: 1 code + 2 len + 1020 = 1023 bytes */
  char *dn = malloc(1200);
  memcpy(dn, "/dns/", 5);
  memset(dn + 5, 'a', 1020);
  dn[1025] = '\0';
  lp2p_multiaddr *d = NULL;
  CHECK_OK(lp2p_multiaddr_parse(&d, dn, errbuf, sizeof errbuf));
  lp2p_multiaddr_bytes(d, &len);
  CHECK_EQ(len, 1023);
  lp2p_multiaddr_free(d);
  memset(dn + 5, 'a', 1022);
  dn[1027] = '\0';
  CHECK(parse_fails(dn, "*"));
  free(dn);
  /* the worst-case text (7 bytes per binary byte) fits LP2P_MULTIADDR_MAX_TEXT exactly */
  lp2p_multiaddr *w = NULL;
  o = 0;
  for (int i = 0; i < 512; i++) o += (size_t)sprintf(text + o, "/webrtc-direct");
  CHECK_EQ(o, LP2P_MULTIADDR_MAX_TEXT - 1);
  CHECK_OK(lp2p_multiaddr_parse(&w, text, errbuf, sizeof errbuf));
  lp2p_multiaddr_bytes(w, &len);
  CHECK_EQ(len, LP2P_MULTIADDR_MAX_LEN);
  static char out[LP2P_MULTIADDR_MAX_TEXT];
  CHECK_EQ(lp2p_multiaddr_to_string(w, out, sizeof out), (int)o);
  CHECK_EQ(lp2p_multiaddr_to_string(w, out, sizeof out - 1), LP2P_ERR_BUFSIZE);
  CHECK_EQ(lp2p_multiaddr_count(w), 512);
  lp2p_multiaddr_free(w);
  /* text of MAX_TEXT bytes or more is refused up front */
  memset(text, '/', LP2P_MULTIADDR_MAX_TEXT);
  text[LP2P_MULTIADDR_MAX_TEXT] = '\0';
  CHECK(parse_fails(text, "multiaddr text of *"));
  lp2p_multiaddr_free(ma);
}

/* ---- invalid binary ---- */

TEST(invalid_bytes) {
  CHECK(bytes_fail("", "empty"));
  CHECK(bytes_fail("9901", "unknown protocol code 153"));
  CHECK(bytes_fail("99", "truncated protocol code at byte 0"));
  CHECK(bytes_fail("047f000001ff01", "unknown protocol code 255"));
  CHECK(bytes_fail("047f00", "ip4: truncated value"));
  CHECK(bytes_fail("04", "ip4: truncated"));
  CHECK(bytes_fail("060f", "tcp: truncated"));
  CHECK(bytes_fail("29000000", "ip6: truncated"));
  CHECK(bytes_fail("9102", "udp: truncated"));
  CHECK(bytes_fail("80", "truncated protocol code"));
  CHECK(bytes_fail("047f000001a5", "truncated protocol code"));
  CHECK(bytes_fail("8400", "malformed protocol code"));              /* non-minimal 4 */
  CHECK(bytes_fail("ffffffffffffffffff01", "malformed protocol code")); /* 10 bytes */
  CHECK(bytes_fail("ffffffffffffffff7f", "unknown protocol code"));
  CHECK(bytes_fail("36", "dns4: truncated value length"));
  CHECK(bytes_fail("3680", "dns4: truncated value length"));
  CHECK(bytes_fail("368000", "dns4: malformed value length"));
  CHECK(bytes_fail("3605616263", "dns4: truncated value"));
  CHECK(bytes_fail("3600", "dns4: empty value"));
  CHECK(bytes_fail("3603612f62", "dns4: invalid name 'a/b'"));
  CHECK(bytes_fail("3603610062", "dns4: invalid name 'a?b'"));
  CHECK(bytes_fail("3801ff", "dnsaddr: invalid name"));
  CHECK(bytes_fail("2a00", "ip6zone: empty value"));
  CHECK(bytes_fail("c1030100", "sni: invalid name"));
  CHECK(bytes_fail("a50300", "p2p: value is not a peer id multihash"));
  CHECK(bytes_fail("a503021220", "p2p"));
  CHECK(bytes_fail("a5030412020102", "p2p"));                                 /* sha2-256 with 2-byte digest */
  CHECK(bytes_fail("a5030413020102", "p2p"));                                 /* unknown hash */
  CHECK(bytes_fail("a503030001aaff", "truncated protocol code at byte 6")); /* valid p2p then junk */
  CHECK(bytes_fail("a50303000201", "p2p"));                                   /* identity digest truncated */
  CHECK(bytes_fail("d20300", "certhash"));
  CHECK(bytes_fail("d203021220", "certhash"));
  /* identity peer id with a 43-byte payload is not a valid peer id */
  char hex[200] = "a5032d002b";
  for (int i = 0; i < 43; i++) strcat(hex, "ab");
  CHECK(bytes_fail(hex, "p2p"));
  strcpy(hex, "a5032c002a");
  for (int i = 0; i < 42; i++) strcat(hex, "ab");
  size_t len;
  uint8_t *b = hex_to_bytes(hex, &len);
  lp2p_multiaddr *ma = NULL;
  CHECK_OK(lp2p_multiaddr_from_bytes(&ma, b, len, NULL, 0));
  free(b);
  /* and its text form parses back to the same bytes */
  char text[256];
  CHECK(lp2p_multiaddr_to_string(ma, text, sizeof text) > 0);
  lp2p_multiaddr *mb = NULL;
  CHECK_OK(lp2p_multiaddr_parse(&mb, text, NULL, 0));
  CHECK(lp2p_multiaddr_equal(ma, mb));
  lp2p_multiaddr_free(ma);
  lp2p_multiaddr_free(mb);
  /* NULL bytes with a length */
  CHECK_EQ(lp2p_multiaddr_from_bytes(&ma, NULL, 4, NULL, 0), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_multiaddr_from_bytes(NULL, (const uint8_t *)"\x06\x00\x01", 3, NULL, 0), LP2P_ERR_INVAL);
}

/* ---- error buffer handling ---- */

TEST(err_buffer) {
  lp2p_multiaddr *ma = NULL;
  char small[8];
  memset(small, 'Q', sizeof small);
  CHECK_EQ(lp2p_multiaddr_parse(&ma, "/ip4/1.2.3.4/tcp/70000", small, sizeof small), LP2P_ERR_MULTIADDR);
  CHECK_STR(small, "tcp: po");
  char one[1] = {'Q'};
  CHECK_EQ(lp2p_multiaddr_parse(&ma, "/nope", one, 1), LP2P_ERR_MULTIADDR);
  CHECK_EQ(one[0], '\0');
  CHECK_EQ(lp2p_multiaddr_parse(&ma, "/nope", NULL, 100), LP2P_ERR_MULTIADDR);
  char keep[4] = "abc";
  CHECK_EQ(lp2p_multiaddr_parse(&ma, "/nope", keep, 0), LP2P_ERR_MULTIADDR);
  CHECK_STR(keep, "abc");
  /* success clears the message */
  strcpy(errbuf, "stale");
  CHECK_OK(lp2p_multiaddr_parse(&ma, "/tcp/1", errbuf, sizeof errbuf));
  CHECK_STR(errbuf, "");
  lp2p_multiaddr_free(ma);
  /* long hostile values are shortened and made printable in the message */
  char t[400] = "/ip4/";
  for (int i = 0; i < 300; i++) strcat(t, i % 2 ? "\x01" : "9");
  CHECK(parse_fails(t, "ip4: invalid address '9?9?*"));
  CHECK(strlen(errbuf) < 100);
  CHECK(strstr(errbuf, "...'") != NULL);
}

/* ---- API ---- */

TEST(api_misc) {
  lp2p_multiaddr *a = NULL, *b = NULL, *c = NULL, *p = NULL;
  CHECK_OK(lp2p_multiaddr_parse(&a, "/ip4/127.0.0.1/tcp/4001", NULL, 0));
  CHECK_OK(lp2p_multiaddr_parse(&b, "/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq", NULL, 0));
  CHECK_OK(lp2p_multiaddr_concat(&c, a, b));
  char t[256];
  CHECK(lp2p_multiaddr_to_string(c, t, sizeof t) > 0);
  CHECK_STR(t, "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");
  CHECK_EQ(lp2p_multiaddr_count(c), 3);
  CHECK_EQ(lp2p_multiaddr_find_last(c, LP2P_MA_P2P), 2);
  CHECK_EQ(lp2p_multiaddr_find_last(c, LP2P_MA_IP4), 0);
  CHECK_EQ(lp2p_multiaddr_find_last(c, LP2P_MA_UDP), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_multiaddr_find_last(NULL, LP2P_MA_UDP), LP2P_ERR_INVAL);
  /* strip /p2p */
  CHECK_OK(lp2p_multiaddr_prefix(&p, c, 2));
  CHECK(lp2p_multiaddr_equal(p, a));
  lp2p_multiaddr_free(p);
  p = (lp2p_multiaddr *)1;
  CHECK_EQ(lp2p_multiaddr_prefix(&p, c, 0), LP2P_ERR_INVAL);
  CHECK(p == NULL);
  CHECK_EQ(lp2p_multiaddr_prefix(&p, c, 4), LP2P_ERR_INVAL);
  CHECK_OK(lp2p_multiaddr_prefix(&p, c, 3));
  CHECK(lp2p_multiaddr_equal(p, c));
  lp2p_multiaddr_free(p);
  /* p2p value is the multihash */
  uint32_t code;
  const uint8_t *v;
  size_t vlen;
  CHECK_OK(lp2p_multiaddr_component(c, 2, &code, &v, &vlen));
  CHECK_EQ(code, LP2P_MA_P2P);
  CHECK_EQ(vlen, 38);
  CHECK_EQ(v[0], 0x00);
  CHECK_EQ(v[1], 0x24);
  CHECK_OK(lp2p_multiaddr_component(c, 1, &code, &v, &vlen));
  CHECK_EQ(code, LP2P_MA_TCP);
  CHECK_EQ(vlen, 2);
  CHECK_EQ(v[0] << 8 | v[1], 4001);
  CHECK_OK(lp2p_multiaddr_component(c, 0, NULL, NULL, NULL));
  /* append: the same p2p component from raw bytes */
  uint8_t mh[38];
  CHECK_OK(lp2p_multiaddr_component(c, 2, NULL, &v, &vlen));
  memcpy(mh, v, vlen);
  lp2p_multiaddr *d = NULL;
  CHECK_OK(lp2p_multiaddr_append(&d, a, LP2P_MA_P2P, mh, sizeof mh, errbuf, sizeof errbuf));
  CHECK(lp2p_multiaddr_equal(d, c));
  lp2p_multiaddr_free(d);
  CHECK_OK(lp2p_multiaddr_append(&d, a, LP2P_MA_QUIC_V1, NULL, 0, NULL, 0));
  CHECK_EQ(lp2p_multiaddr_count(d), 3);
  lp2p_multiaddr_free(d);
  d = (lp2p_multiaddr *)1;
  CHECK_EQ(lp2p_multiaddr_append(&d, a, LP2P_MA_P2P, mh, 10, errbuf, sizeof errbuf), LP2P_ERR_MULTIADDR);
  CHECK(d == NULL);
  CHECK(strstr(errbuf, "p2p") != NULL);
  CHECK_EQ(lp2p_multiaddr_append(&d, a, LP2P_MA_TCP, mh, 3, errbuf, sizeof errbuf), LP2P_ERR_MULTIADDR);
  CHECK_STR(errbuf, "tcp: value must be 2 bytes, got 3");
  CHECK_EQ(lp2p_multiaddr_append(&d, a, LP2P_MA_QUIC_V1, mh, 1, errbuf, sizeof errbuf), LP2P_ERR_MULTIADDR);
  CHECK_EQ(lp2p_multiaddr_append(&d, a, 999, mh, 1, errbuf, sizeof errbuf), LP2P_ERR_MULTIADDR);
  CHECK_STR(errbuf, "unknown protocol code 999");
  CHECK_EQ(lp2p_multiaddr_append(&d, a, LP2P_MA_DNS, (const uint8_t *)"a/b", 3, errbuf, sizeof errbuf),
           LP2P_ERR_MULTIADDR);
  CHECK_EQ(lp2p_multiaddr_append(&d, a, LP2P_MA_DNS, NULL, 3, errbuf, sizeof errbuf), LP2P_ERR_INVAL);
  /* dup / equal / NULL handling */
  lp2p_multiaddr *e = lp2p_multiaddr_dup(c);
  REQUIRE(e);
  CHECK(e != c);
  CHECK(lp2p_multiaddr_equal(e, c));
  CHECK(!lp2p_multiaddr_equal(a, c));
  CHECK(!lp2p_multiaddr_equal(a, NULL));
  CHECK(lp2p_multiaddr_equal(NULL, NULL));
  CHECK(lp2p_multiaddr_dup(NULL) == NULL);
  CHECK_EQ(lp2p_multiaddr_count(NULL), 0);
  size_t n = 99;
  CHECK(lp2p_multiaddr_bytes(NULL, &n) == NULL);
  CHECK_EQ(n, 0);
  CHECK_EQ(lp2p_multiaddr_to_string(NULL, t, sizeof t), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_multiaddr_to_string(a, NULL, 0), LP2P_ERR_BUFSIZE);
  CHECK_EQ(lp2p_multiaddr_concat(&d, a, NULL), LP2P_ERR_INVAL);
  lp2p_multiaddr_free(NULL);
  /* names */
  CHECK_STR(lp2p_multiaddr_protocol_name(LP2P_MA_QUIC_V1), "quic-v1");
  CHECK_STR(lp2p_multiaddr_protocol_name(LP2P_MA_QUIC), "quic");
  CHECK(lp2p_multiaddr_protocol_name(12345) == NULL);
  CHECK_OK(lp2p_multiaddr_protocol_code("ipfs", &code));
  CHECK_EQ(code, LP2P_MA_P2P);
  CHECK_OK(lp2p_multiaddr_protocol_code("dnsaddr", &code));
  CHECK_EQ(code, 56);
  CHECK_EQ(lp2p_multiaddr_protocol_code("ipfs2", &code), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_multiaddr_protocol_code(NULL, &code), LP2P_ERR_NOT_FOUND);
  lp2p_multiaddr_free(a);
  lp2p_multiaddr_free(b);
  lp2p_multiaddr_free(c);
  lp2p_multiaddr_free(e);
}

/* ---- allocation failure ---- */

static int alloc_scenario(const lp2p_mem *mem) {
  lp2p_multiaddr *a = NULL, *b = NULL, *c = NULL, *p = NULL, *d = NULL;
  int rv = lp2p_multiaddr_parse_mem(&a, "/ip4/1.2.3.4/tcp/1", 18, mem, NULL, 0);
  if (rv) goto out;
  rv = lp2p_multiaddr_from_bytes_mem(&b, (const uint8_t *)"\xcd\x03", 2, mem, NULL, 0);
  if (rv) goto out;
  rv = lp2p_multiaddr_concat(&c, a, b);
  if (rv) goto out;
  rv = lp2p_multiaddr_prefix(&p, c, 1);
  if (rv) goto out;
  rv = lp2p_multiaddr_append(&d, p, LP2P_MA_UDP, (const uint8_t *)"\x00\x01", 2, NULL, 0);
  if (rv) goto out;
  lp2p_multiaddr *e = lp2p_multiaddr_dup(d);
  if (!e) rv = LP2P_ERR_NOMEM;
  lp2p_multiaddr_free(e);
out:
  lp2p_multiaddr_free(a);
  lp2p_multiaddr_free(b);
  lp2p_multiaddr_free(c);
  lp2p_multiaddr_free(p);
  lp2p_multiaddr_free(d);
  return rv;
}

TEST(alloc_failure) {
  int n;
  for (n = 1; n < 50; n++) {
    failmem fm;
    failmem_init(&fm, n);
    int rv = alloc_scenario(&fm.mem);
    CHECK_EQ(fm.live, 0);
    if (!fm.triggered) {
      CHECK_OK(rv);
      CHECK_EQ(fm.count, 6); /* every object came from the injected allocator */
      break;
    }
    CHECK_EQ(rv, LP2P_ERR_NOMEM);
  }
  CHECK_EQ(n, 7);
}

/* /memory/<u64> (code 0x0309): 8 bytes big-endian, decimal text. */
TEST(memory_protocol) {
  char out[LP2P_MULTIADDR_MAX_TEXT];
  CHECK_OK(roundtrip("/memory/0", out, sizeof out));
  CHECK_STR(out, "/memory/0");
  CHECK_OK(roundtrip("/memory/0042", out, sizeof out));
  CHECK_STR(out, "/memory/42");
  CHECK_OK(roundtrip("/memory/18446744073709551615/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq", out,
                     sizeof out));
  CHECK_STR(out, "/memory/18446744073709551615/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");
  lp2p_multiaddr *ma = NULL;
  CHECK_OK(lp2p_multiaddr_parse(&ma, "/memory/258", NULL, 0));
  size_t len = 0;
  const uint8_t *b = lp2p_multiaddr_bytes(ma, &len);
  static const uint8_t want[] = {0x89, 0x06, 0, 0, 0, 0, 0, 0, 0x01, 0x02};
  CHECK_EQ(len, sizeof want);
  CHECK(len == sizeof want && !memcmp(b, want, len));
  uint32_t code = 0;
  CHECK_OK(lp2p_multiaddr_protocol_code("memory", &code));
  CHECK_EQ(code, LP2P_MA_MEMORY);
  lp2p_multiaddr_free(ma);
  CHECK(parse_fails("/memory/18446744073709551616", "memory: invalid number '18446744073709551616'"));
  CHECK(parse_fails("/memory/-1", "memory: invalid number '-1'"));
  CHECK(parse_fails("/memory/1x", "memory: invalid number '1x'"));
  CHECK(parse_fails("/memory", "memory: missing value"));
  CHECK(bytes_fail("890600000000", NULL)); /* truncated value */
}

int main(void) {
  RUN(vectors);
  RUN(canonical_text);
  RUN(invalid_text_messages);
  RUN(invalid_ip);
  RUN(parse_n_and_nul);
  RUN(size_limits);
  RUN(invalid_bytes);
  RUN(err_buffer);
  RUN(api_misc);
  RUN(alloc_failure);
  RUN(memory_protocol);
  return test_done();
}
