/* core/multiaddr_proto.c - multiaddr protocol table and value codecs. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/multiaddr_int.h"
#include "core/multibase_int.h"
#include "lp2p/encoding.h"

static const lp2p__ma_proto protos[] = {
    {LP2P_MA_IP4, "ip4", 4, LP2P__MA_IP4},
    {LP2P_MA_TCP, "tcp", 2, LP2P__MA_PORT},
    {LP2P_MA_IP6, "ip6", 16, LP2P__MA_IP6},
    {LP2P_MA_IP6ZONE, "ip6zone", -1, LP2P__MA_NAME},
    {LP2P_MA_DNS, "dns", -1, LP2P__MA_NAME},
    {LP2P_MA_DNS4, "dns4", -1, LP2P__MA_NAME},
    {LP2P_MA_DNS6, "dns6", -1, LP2P__MA_NAME},
    {LP2P_MA_DNSADDR, "dnsaddr", -1, LP2P__MA_NAME},
    {LP2P_MA_UDP, "udp", 2, LP2P__MA_PORT},
    {LP2P_MA_WEBRTC_DIRECT, "webrtc-direct", 0, LP2P__MA_NONE},
    {LP2P_MA_WEBRTC, "webrtc", 0, LP2P__MA_NONE},
    {LP2P_MA_P2P_CIRCUIT, "p2p-circuit", 0, LP2P__MA_NONE},
    {LP2P_MA_P2P, "p2p", -1, LP2P__MA_P2P},
    {LP2P_MA_TLS, "tls", 0, LP2P__MA_NONE},
    {LP2P_MA_SNI, "sni", -1, LP2P__MA_NAME},
    {LP2P_MA_NOISE, "noise", 0, LP2P__MA_NONE},
    {LP2P_MA_QUIC, "quic", 0, LP2P__MA_NONE},
    {LP2P_MA_QUIC_V1, "quic-v1", 0, LP2P__MA_NONE},
    {LP2P_MA_WEBTRANSPORT, "webtransport", 0, LP2P__MA_NONE},
    {LP2P_MA_CERTHASH, "certhash", -1, LP2P__MA_CERTHASH},
    {LP2P_MA_WS, "ws", 0, LP2P__MA_NONE},
    {LP2P_MA_WSS, "wss", 0, LP2P__MA_NONE},
    {LP2P_MA_HTTP, "http", 0, LP2P__MA_NONE},
    {LP2P_MA_MEMORY, "memory", 8, LP2P__MA_U64},
};

const lp2p__ma_proto *lp2p__ma_proto_by_code(uint64_t code) {
  for (size_t i = 0; i < sizeof protos / sizeof protos[0]; i++)
    if (protos[i].code == code) return &protos[i];
  return NULL;
}

const lp2p__ma_proto *lp2p__ma_proto_by_name(const char *name, size_t len) {
  if (len == 4 && !memcmp(name, "ipfs", 4)) return lp2p__ma_proto_by_code(LP2P_MA_P2P);
  for (size_t i = 0; i < sizeof protos / sizeof protos[0]; i++)
    if (strlen(protos[i].name) == len && !memcmp(protos[i].name, name, len)) return &protos[i];
  return NULL;
}

const char *lp2p_multiaddr_protocol_name(uint32_t code) {
  const lp2p__ma_proto *p = lp2p__ma_proto_by_code(code);
  return p ? p->name : NULL;
}

int lp2p_multiaddr_protocol_code(const char *name, uint32_t *code) {
  const lp2p__ma_proto *p = name ? lp2p__ma_proto_by_name(name, strlen(name)) : NULL;
  if (!p) return LP2P_ERR_NOT_FOUND;
  if (code) *code = p->code;
  return LP2P_OK;
}

/* ---- error messages ---- */

void lp2p__ma_err(char *err, size_t errcap, const char *fmt, ...) {
  if (!err || !errcap) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errcap, fmt, ap);
  va_end(ap);
}

void lp2p__ma_quote(char q[LP2P__MA_QUOTE_MAX + 4], const char *s, size_t n) {
  size_t k = n > LP2P__MA_QUOTE_MAX ? LP2P__MA_QUOTE_MAX : n, o = 0;
  for (size_t i = 0; i < k; i++) {
    unsigned char c = (unsigned char)s[i];
    q[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  if (k < n) {
    memcpy(q + o, "...", 3);
    o += 3;
  }
  q[o] = '\0';
}

/* ---- names: non-empty, valid UTF-8 (no overlongs/surrogates), no '/', no
 * control characters (they would corrupt the text form or logs) ---- */

static int name_ok(const uint8_t *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f || c == '/') return 0;
      i++;
      continue;
    }
    size_t k;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) k = 1, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0) k = 2, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0) k = 3, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (n - i - 1 < k) return 0;
    for (size_t j = 1; j <= k; j++) {
      if ((s[i + j] & 0xc0) != 0x80) return 0;
      cp = cp << 6 | (s[i + j] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    if (cp >= 0x80 && cp < 0xa0) return 0; /* C1 controls */
    i += k + 1;
  }
  return 1;
}

static int p2p_ok(const uint8_t *v, size_t len) {
  lp2p_multihash_view mh;
  if (lp2p_multihash_parse(v, len, &mh) != LP2P_OK) return 0;
  return mh.code != LP2P_MH_IDENTITY || mh.digest_len <= LP2P__MA_MAX_IDENTITY_PEER;
}

int lp2p__ma_value_check(const lp2p__ma_proto *p, const uint8_t *v, size_t len, char *err, size_t errcap) {
  switch (p->kind) {
  case LP2P__MA_NAME:
    if (len == 0) {
      lp2p__ma_err(err, errcap, "%s: empty value", p->name);
      return LP2P_ERR_MULTIADDR;
    }
    if (!name_ok(v, len)) {
      char q[LP2P__MA_QUOTE_MAX + 4];
      lp2p__ma_quote(q, (const char *)v, len);
      lp2p__ma_err(err, errcap, "%s: invalid name '%s'", p->name, q);
      return LP2P_ERR_MULTIADDR;
    }
    return LP2P_OK;
  case LP2P__MA_P2P:
    if (!p2p_ok(v, len)) {
      lp2p__ma_err(err, errcap, "%s: value is not a peer id multihash", p->name);
      return LP2P_ERR_MULTIADDR;
    }
    return LP2P_OK;
  case LP2P__MA_CERTHASH:
    if (lp2p_multihash_parse(v, len, NULL) != LP2P_OK) {
      lp2p__ma_err(err, errcap, "%s: value is not a supported multihash", p->name);
      return LP2P_ERR_MULTIADDR;
    }
    return LP2P_OK;
  default: return LP2P_OK; /* fixed-size values: any bit pattern is valid */
  }
}

/* ---- ip4 / ip6 text ---- */

/* Dotted quad, decimal, no leading zeros, each part 0..255. */
static int ip4_parse(const char *s, size_t n, uint8_t out[4]) {
  size_t i = 0;
  for (int part = 0; part < 4; part++) {
    if (part) {
      if (i >= n || s[i] != '.') return 0;
      i++;
    }
    size_t start = i;
    unsigned v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 3) v = v * 10 + (unsigned)(s[i++] - '0');
    size_t digits = i - start;
    if (digits == 0 || v > 255 || (digits > 1 && s[start] == '0')) return 0;
    if (i < n && s[i] >= '0' && s[i] <= '9') return 0; /* more than 3 digits */
    out[part] = (uint8_t)v;
  }
  return i == n;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* RFC 4291 section 2.2 text: 8 groups of 1-4 hex digits, at most one "::"
 * standing for one or more zero groups, optional dotted quad for the last 32
 * bits. No zone (that is the ip6zone protocol). */
static int ip6_parse(const char *s, size_t n, uint8_t out[16]) {
  uint16_t g[8];
  int ng = 0, gap = -1;
  size_t i = 0;
  if (n >= 2 && s[0] == ':' && s[1] == ':') {
    gap = 0;
    i = 2;
  }
  while (i < n) {
    size_t start = i;
    while (i < n && hexval(s[i]) >= 0) i++;
    if (i < n && s[i] == '.') { /* embedded IPv4: the rest of the string */
      if (ng > 6) return 0;
      uint8_t v4[4];
      if (!ip4_parse(s + start, n - start, v4)) return 0;
      g[ng++] = (uint16_t)(v4[0] << 8 | v4[1]);
      g[ng++] = (uint16_t)(v4[2] << 8 | v4[3]);
      i = n;
      break;
    }
    size_t digits = i - start;
    if (digits == 0 || digits > 4 || ng == 8) return 0;
    unsigned v = 0;
    for (size_t k = start; k < i; k++) v = v << 4 | (unsigned)hexval(s[k]);
    g[ng++] = (uint16_t)v;
    if (i == n) break;
    if (s[i] != ':') return 0;
    i++;
    if (i < n && s[i] == ':') {
      if (gap >= 0) return 0;
      gap = ng;
      i++;
    } else if (i == n) {
      return 0; /* trailing single ':' */
    }
  }
  if (gap >= 0) {
    if (ng > 7) return 0; /* "::" must stand for at least one group */
    int fill = 8 - ng;
    memmove(g + gap + fill, g + gap, (size_t)(ng - gap) * sizeof g[0]);
    for (int k = 0; k < fill; k++) g[gap + k] = 0;
  } else if (ng != 8) {
    return 0;
  }
  for (int k = 0; k < 8; k++) {
    out[2 * k] = (uint8_t)(g[k] >> 8);
    out[2 * k + 1] = (uint8_t)g[k];
  }
  return 1;
}

/* ---- text output helpers ---- */

static int put(char *buf, size_t cap, size_t *pos, const char *s, size_t n) {
  if (n > cap || *pos > cap - n) return LP2P_ERR_BUFSIZE;
  memcpy(buf + *pos, s, n);
  *pos += n;
  return LP2P_OK;
}

static int putf(char *buf, size_t cap, size_t *pos, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int putf(char *buf, size_t cap, size_t *pos, const char *fmt, ...) {
  char tmp[48];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof tmp) return LP2P_ERR_INTERNAL;
  return put(buf, cap, pos, tmp, (size_t)n);
}

/* RFC 5952: lower case, no leading zeros, the longest run (first on a tie) of
 * two or more zero groups becomes "::"; IPv4-mapped addresses (::ffff:0:0/96)
 * end in a dotted quad (section 5). */
static int ip6_print(const uint8_t *v, char *buf, size_t cap, size_t *pos) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!memcmp(v, mapped, sizeof mapped))
    return putf(buf, cap, pos, "::ffff:%u.%u.%u.%u", v[12], v[13], v[14], v[15]);
  unsigned g[8];
  for (int k = 0; k < 8; k++) g[k] = (unsigned)v[2 * k] << 8 | v[2 * k + 1];
  int best = -1, best_len = 1;
  for (int k = 0; k < 8;) {
    if (g[k]) {
      k++;
      continue;
    }
    int e = k;
    while (e < 8 && !g[e]) e++;
    if (e - k > best_len) best = k, best_len = e - k;
    k = e;
  }
  int rv = LP2P_OK;
  for (int k = 0; k < 8 && rv == LP2P_OK;) {
    if (k == best) {
      rv = put(buf, cap, pos, "::", 2);
      k += best_len;
      continue;
    }
    if (k && k != best + best_len) rv = put(buf, cap, pos, ":", 1);
    if (rv == LP2P_OK) rv = putf(buf, cap, pos, "%x", g[k]);
    k++;
  }
  return rv;
}

/* ---- value codecs ---- */

static int text_err(const lp2p__ma_proto *p, const char *what, const char *s, size_t len, char *err,
                    size_t errcap) {
  char q[LP2P__MA_QUOTE_MAX + 4];
  lp2p__ma_quote(q, s, len);
  lp2p__ma_err(err, errcap, "%s: invalid %s '%s'", p->name, what, q);
  return LP2P_ERR_MULTIADDR;
}

static int too_long(const lp2p__ma_proto *p, char *err, size_t errcap) {
  lp2p__ma_err(err, errcap, "%s: value too long (multiaddr limit %d bytes)", p->name, LP2P_MULTIADDR_MAX_LEN);
  return LP2P_ERR_MULTIADDR;
}

/* p2p text: bare base58btc multihash ("Qm…", "12D3…", "16U…"), or a CIDv1 in
 * multibase form with codec libp2p-key ("bafz…"). */
static int p2p_from_text(const lp2p__ma_proto *p, const char *s, size_t len, uint8_t *out, size_t cap,
                         size_t *outlen, char *err, size_t errcap) {
  uint8_t tmp[64]; /* > any valid peer-id CID (1 + 1 + 2 + 42); bounds decoding work */
  size_t n = 0;
  int ok;
  if (len && (s[0] == '1' || s[0] == 'Q')) {
    ok = lp2p_base58_decode(s, len, tmp, sizeof tmp, &n) == LP2P_OK && p2p_ok(tmp, n);
    if (ok) {
      if (n > cap) return too_long(p, err, errcap);
      memcpy(out, tmp, n);
    }
  } else {
    uint64_t codec;
    const uint8_t *mh = NULL;
    size_t mhlen = 0;
    ok = lp2p_multibase_decode(s, len, tmp, sizeof tmp, &n) == LP2P_OK &&
         lp2p_cid_decode(tmp, n, &codec, &mh, &mhlen) == LP2P_OK && codec == LP2P_CODEC_LIBP2P_KEY &&
         p2p_ok(mh, mhlen);
    if (ok) {
      if (mhlen > cap) return too_long(p, err, errcap);
      memcpy(out, mh, mhlen);
      n = mhlen;
    }
  }
  if (!ok) return text_err(p, "peer id", s, len, err, errcap);
  *outlen = n;
  return LP2P_OK;
}

int lp2p__ma_value_from_text(const lp2p__ma_proto *p, const char *s, size_t len, uint8_t *out, size_t cap,
                             size_t *outlen, char *err, size_t errcap) {
  if (len == 0) {
    lp2p__ma_err(err, errcap, "%s: missing value", p->name);
    return LP2P_ERR_MULTIADDR;
  }
  if (p->size > 0 && cap < (size_t)p->size) return too_long(p, err, errcap);
  switch (p->kind) {
  case LP2P__MA_IP4:
    if (!ip4_parse(s, len, out)) return text_err(p, "address", s, len, err, errcap);
    *outlen = 4;
    return LP2P_OK;
  case LP2P__MA_IP6:
    if (!ip6_parse(s, len, out)) return text_err(p, "address", s, len, err, errcap);
    *outlen = 16;
    return LP2P_OK;
  case LP2P__MA_PORT: {
    unsigned long v = 0;
    for (size_t i = 0; i < len; i++) {
      if (s[i] < '0' || s[i] > '9') return text_err(p, "port", s, len, err, errcap);
      if (v <= 65535) v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535) {
      char q[LP2P__MA_QUOTE_MAX + 4];
      lp2p__ma_quote(q, s, len);
      lp2p__ma_err(err, errcap, "%s: port '%s' out of range", p->name, q);
      return LP2P_ERR_MULTIADDR;
    }
    out[0] = (uint8_t)(v >> 8);
    out[1] = (uint8_t)v;
    *outlen = 2;
    return LP2P_OK;
  }
  case LP2P__MA_U64: {
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
      if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
        return text_err(p, "number", s, len, err, errcap);
      v = v * 10 + (uint64_t)(s[i] - '0');
    }
    for (int i = 7; i >= 0; i--, v >>= 8) out[i] = (uint8_t)v;
    *outlen = 8;
    return LP2P_OK;
  }
  case LP2P__MA_NAME:
    if (!name_ok((const uint8_t *)s, len)) return text_err(p, "name", s, len, err, errcap);
    if (len > cap) return too_long(p, err, errcap);
    memcpy(out, s, len);
    *outlen = len;
    return LP2P_OK;
  case LP2P__MA_P2P: return p2p_from_text(p, s, len, out, cap, outlen, err, errcap);
  case LP2P__MA_CERTHASH: {
    uint8_t tmp[2 * LP2P_UVARINT_MAX_LEN + LP2P_MH_MAX_DIGEST]; /* largest multihash we accept */
    size_t n = 0;
    if (lp2p_multibase_decode(s, len, tmp, sizeof tmp, &n) != LP2P_OK || lp2p_multihash_parse(tmp, n, NULL))
      return text_err(p, "value", s, len, err, errcap);
    if (n > cap) return too_long(p, err, errcap);
    memcpy(out, tmp, n);
    *outlen = n;
    return LP2P_OK;
  }
  default: lp2p__ma_err(err, errcap, "%s: takes no value", p->name); return LP2P_ERR_MULTIADDR;
  }
}

int lp2p__ma_value_to_text(const lp2p__ma_proto *p, const uint8_t *v, size_t len, char *buf, size_t cap,
                           size_t *pos) {
  size_t n = 0;
  int rv;
  switch (p->kind) {
  case LP2P__MA_IP4: return putf(buf, cap, pos, "%u.%u.%u.%u", v[0], v[1], v[2], v[3]);
  case LP2P__MA_IP6: return ip6_print(v, buf, cap, pos);
  case LP2P__MA_PORT: return putf(buf, cap, pos, "%u", (unsigned)v[0] << 8 | v[1]);
  case LP2P__MA_U64: {
    unsigned long long x = 0;
    for (int i = 0; i < 8; i++) x = x << 8 | v[i];
    return putf(buf, cap, pos, "%llu", x);
  }
  case LP2P__MA_NAME: return put(buf, cap, pos, (const char *)v, len);
  case LP2P__MA_P2P:
    /* lp2p_base58_encode wants room for a NUL too; the caller's final NUL
     * comes after the text anyway, so it may land in the same spot. */
    if (*pos >= cap) return LP2P_ERR_BUFSIZE;
    rv = lp2p_base58_encode(v, len, buf + *pos, cap - *pos, &n);
    break;
  case LP2P__MA_CERTHASH:
    if (*pos >= cap) return LP2P_ERR_BUFSIZE;
    rv = lp2p_multibase_encode('u', v, len, buf + *pos, cap - *pos, &n);
    break;
  default: return LP2P_OK;
  }
  if (rv == LP2P_OK) *pos += n;
  return rv;
}
