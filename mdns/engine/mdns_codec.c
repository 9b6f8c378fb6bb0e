/* mdns/engine/mdns_codec.c - DNS message parser and builder for mDNS (see mdns_codec.h). */
#include "mdns/engine/mdns_codec.h"

#include <string.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t rd32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint8_t lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c; }

int lp2p_mdns_name_decode(const uint8_t *p, size_t n, size_t off, lp2p_mdns_name *out, size_t *end) {
  size_t pos = off, limit = off, outlen = 0, hops = 0, after = 0;
  int jumped = 0;
  for (;;) {
    if (pos >= n) return LP2P_ERR_PARSE;
    uint8_t c = p[pos];
    if ((c & 0xC0) == 0xC0) {
      if (pos + 1 >= n) return LP2P_ERR_PARSE;
      size_t target = ((size_t)(c & 0x3F) << 8) | p[pos + 1];
      if (!jumped) after = pos + 2;
      /* Only backward, and each jump lands before the previous landing point: no loops. */
      if (target >= limit || ++hops > LP2P_MDNS_MAX_POINTER_HOPS) return LP2P_ERR_PARSE;
      limit = target;
      pos = target;
      jumped = 1;
      continue;
    }
    if (c & 0xC0) return LP2P_ERR_PARSE; /* 0x40 / 0x80 label types */
    if (outlen + 1u + c > LP2P_MDNS_MAX_NAME) return LP2P_ERR_PARSE;
    if (c == 0) {
      out->wire[outlen++] = 0;
      out->len = (uint8_t)outlen;
      if (!jumped) after = pos + 1;
      if (end) *end = after;
      return 0;
    }
    if (pos + 1u + c > n) return LP2P_ERR_PARSE;
    memcpy(out->wire + outlen, p + pos, 1u + c);
    outlen += 1u + c;
    pos += 1u + c;
  }
}

int lp2p_mdns_name_from_text(lp2p_mdns_name *out, const char *text) {
  size_t len = 0, start = 0, i = 0;
  size_t tl = strlen(text);
  if (tl && text[tl - 1] == '.') tl--;
  if (tl == 0) {
    out->wire[0] = 0;
    out->len = 1;
    return 0;
  }
  for (i = 0; i <= tl; i++) {
    if (i == tl || text[i] == '.') {
      size_t ll = i - start;
      if (ll == 0 || ll > LP2P_MDNS_MAX_LABEL || len + 1 + ll + 1 > LP2P_MDNS_MAX_NAME) return LP2P_ERR_INVAL;
      out->wire[len++] = (uint8_t)ll;
      memcpy(out->wire + len, text + start, ll);
      len += ll;
      start = i + 1;
    }
  }
  out->wire[len++] = 0;
  out->len = (uint8_t)len;
  return 0;
}

int lp2p_mdns_name_prepend(lp2p_mdns_name *out, const uint8_t *label, size_t llen, const lp2p_mdns_name *suffix) {
  if (llen == 0 || llen > LP2P_MDNS_MAX_LABEL || !suffix->len || 1 + llen + suffix->len > LP2P_MDNS_MAX_NAME)
    return LP2P_ERR_INVAL;
  lp2p_mdns_name tmp;
  tmp.wire[0] = (uint8_t)llen;
  memcpy(tmp.wire + 1, label, llen);
  memcpy(tmp.wire + 1 + llen, suffix->wire, suffix->len);
  tmp.len = (uint8_t)(1 + llen + suffix->len);
  *out = tmp;
  return 0;
}

int lp2p_mdns_name_equal(const lp2p_mdns_name *a, const lp2p_mdns_name *b) {
  if (a->len != b->len) return 0;
  for (size_t i = 0; i < a->len; i++)
    if (lower(a->wire[i]) != lower(b->wire[i])) return 0;
  return 1;
}

const uint8_t *lp2p_mdns_name_first_label(const lp2p_mdns_name *name, size_t *llen) {
  *llen = name->len ? name->wire[0] : 0;
  return name->wire + 1;
}

int lp2p_mdns_name_to_text(const lp2p_mdns_name *name, char *buf, size_t cap) {
  size_t o = 0, i = 0;
  while (i < name->len && name->wire[i]) {
    size_t ll = name->wire[i];
    if (o + (o ? 1 : 0) + ll + 1 > cap) return LP2P_ERR_BUFSIZE;
    if (o) buf[o++] = '.';
    memcpy(buf + o, name->wire + i + 1, ll);
    o += ll;
    i += 1 + ll;
  }
  if (o + 1 > cap) return LP2P_ERR_BUFSIZE;
  buf[o] = 0;
  return (int)o;
}

int lp2p_mdns_txt_next(const uint8_t *rdata, size_t rdlen, size_t *off, const uint8_t **s, size_t *slen) {
  if (*off >= rdlen) return 0;
  size_t l = rdata[*off];
  if (*off + 1 + l > rdlen) return LP2P_ERR_PARSE;
  *s = rdata + *off + 1;
  *slen = l;
  *off += 1 + l;
  return 1;
}

/* Content checks of one record whose framing is intact; 0 keeps it, <0 drops it. */
static int parse_rdata(const uint8_t *p, size_t n, size_t rdoff, lp2p_mdns_record *r) {
  size_t end;
  size_t rdend = rdoff + r->rdlen;
  switch (r->type) {
    case LP2P_MDNS_TYPE_A:
      if (r->rdlen != 4) return LP2P_ERR_PARSE;
      memcpy(r->addr, p + rdoff, 4);
      return 0;
    case LP2P_MDNS_TYPE_AAAA:
      if (r->rdlen != 16) return LP2P_ERR_PARSE;
      memcpy(r->addr, p + rdoff, 16);
      return 0;
    case LP2P_MDNS_TYPE_PTR:
      /* The target may point anywhere before it, but its own bytes must stay inside RDATA. */
      if (lp2p_mdns_name_decode(p, n, rdoff, &r->target, &end) || end != rdend) return LP2P_ERR_PARSE;
      return 0;
    case LP2P_MDNS_TYPE_SRV:
      if (r->rdlen < 7) return LP2P_ERR_PARSE;
      r->srv_priority = rd16(p + rdoff);
      r->srv_weight = rd16(p + rdoff + 2);
      r->srv_port = rd16(p + rdoff + 4);
      if (lp2p_mdns_name_decode(p, n, rdoff + 6, &r->target, &end) || end != rdend) return LP2P_ERR_PARSE;
      return 0;
    case LP2P_MDNS_TYPE_TXT: {
      size_t off = 0;
      const uint8_t *s;
      size_t sl;
      int rv;
      while ((rv = lp2p_mdns_txt_next(p + rdoff, r->rdlen, &off, &s, &sl)) == 1) {
      }
      return rv;
    }
    default:
      return 1; /* unknown: skipped */
  }
}

int lp2p_mdns_parse(const uint8_t *p, size_t n, lp2p_mdns_msg *msg) {
  if (n < 12 || n > LP2P_MDNS_MAX_PACKET) return LP2P_ERR_PARSE;
  msg->id = rd16(p);
  msg->flags = rd16(p + 2);
  for (int i = 0; i < 4; i++) msg->counts[i] = rd16(p + 4 + 2 * i);
  msg->nq = msg->nrr = msg->dropped = msg->skipped = 0;
  /* Every entry takes at least 5 (question) or 11 (record) bytes: reject impossible counts early. */
  size_t minimum = 12 + 5u * msg->counts[0] + 11u * ((size_t)msg->counts[1] + msg->counts[2] + msg->counts[3]);
  if (minimum > n) return LP2P_ERR_PARSE;
  size_t off = 12;
  for (unsigned i = 0; i < msg->counts[0]; i++) {
    lp2p_mdns_question *q = msg->nq < LP2P_MDNS_MAX_QUESTIONS ? &msg->q[msg->nq] : NULL;
    lp2p_mdns_name scratch;
    if (lp2p_mdns_name_decode(p, n, off, q ? &q->name : &scratch, &off)) return LP2P_ERR_PARSE;
    if (off + 4 > n) return LP2P_ERR_PARSE;
    uint16_t type = rd16(p + off), qclass = rd16(p + off + 2);
    off += 4;
    if (!q) {
      msg->skipped++;
      continue;
    }
    q->type = type;
    q->qclass = qclass & (uint16_t)~LP2P_MDNS_CLASS_FLAG;
    q->unicast = (qclass & LP2P_MDNS_CLASS_FLAG) != 0;
    if (q->qclass != LP2P_MDNS_CLASS_IN && q->qclass != LP2P_MDNS_CLASS_ANY) {
      msg->dropped++;
      continue;
    }
    msg->nq++;
  }
  for (int sec = 1; sec < 4; sec++) {
    for (unsigned i = 0; i < msg->counts[sec]; i++) {
      lp2p_mdns_record *r = msg->nrr < LP2P_MDNS_MAX_RECORDS ? &msg->rr[msg->nrr] : NULL;
      lp2p_mdns_name scratch;
      if (lp2p_mdns_name_decode(p, n, off, r ? &r->name : &scratch, &off)) return LP2P_ERR_PARSE;
      if (off + 10 > n) return LP2P_ERR_PARSE;
      uint16_t type = rd16(p + off), rclass = rd16(p + off + 2);
      uint32_t ttl = rd32(p + off + 4);
      uint16_t rdlen = rd16(p + off + 8);
      off += 10;
      if (off + rdlen > n) return LP2P_ERR_PARSE;
      size_t rdoff = off;
      off += rdlen;
      if (!r) {
        msg->skipped++;
        continue;
      }
      r->type = type;
      r->rclass = rclass & (uint16_t)~LP2P_MDNS_CLASS_FLAG;
      r->cache_flush = (rclass & LP2P_MDNS_CLASS_FLAG) != 0;
      r->section = (uint8_t)sec;
      /* RFC 2181 §8: a TTL with the top bit set is treated as zero. */
      r->ttl = (ttl & 0x80000000u) ? 0 : ttl;
      r->rdata = p + rdoff;
      r->rdlen = rdlen;
      r->target.len = 0;
      if (r->rclass != LP2P_MDNS_CLASS_IN) {
        msg->dropped++;
        continue;
      }
      int rv = parse_rdata(p, n, rdoff, r);
      if (rv < 0) {
        msg->dropped++;
        continue;
      }
      if (rv > 0) {
        msg->skipped++;
        continue;
      }
      msg->nrr++;
    }
  }
  return 0;
}

/* ---- Builder ---------------------------------------------------------------------------- */

static void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

void lp2p_mdns_build_init(lp2p_mdns_builder *b, uint8_t *buf, size_t cap, uint16_t id, uint16_t flags, int compress) {
  memset(b, 0, sizeof *b);
  b->buf = buf;
  b->cap = cap;
  b->compress = compress;
  if (cap < 12) {
    b->err = LP2P_ERR_BUFSIZE;
    return;
  }
  memset(buf, 0, 12);
  wr16(buf, id);
  wr16(buf + 2, flags);
  b->len = 12;
}

static int put(lp2p_mdns_builder *b, const void *p, size_t n) {
  if (b->err) return b->err;
  if (n > b->cap - b->len) return b->err = LP2P_ERR_BUFSIZE;
  memcpy(b->buf + b->len, p, n);
  b->len += n;
  return 0;
}

int lp2p_mdns_build_bytes(lp2p_mdns_builder *b, const void *p, size_t n) {
  if (!b->err && !b->rr_start) b->err = LP2P_ERR_INVAL;
  return put(b, p, n);
}

int lp2p_mdns_build_u16(lp2p_mdns_builder *b, uint16_t v) {
  uint8_t t[2];
  wr16(t, v);
  return lp2p_mdns_build_bytes(b, t, 2);
}

int lp2p_mdns_build_string(lp2p_mdns_builder *b, const void *p, size_t n) {
  if (n > 255 && !b->err) b->err = LP2P_ERR_INVAL;
  uint8_t l = (uint8_t)n;
  if (lp2p_mdns_build_bytes(b, &l, 1)) return b->err;
  return put(b, p, n);
}

static int wire_equal_ci(const uint8_t *a, const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (lower(a[i]) != lower(b[i])) return 0;
  return 1;
}

/* Writes name, compressed against earlier suffixes when enabled. Suffix hashes are computed once
 * per name from the right (O(length)), and the table is matched by hash before a decode confirms,
 * so a name costs O(length + labels x table size). */
static int put_name(lp2p_mdns_builder *b, const lp2p_mdns_name *name) {
  if (b->err) return b->err;
  if (!name->len) return b->err = LP2P_ERR_INVAL;
  size_t offs[LP2P_MDNS_MAX_NAME / 2 + 1], nl = 0;
  uint32_t hs[LP2P_MDNS_MAX_NAME / 2 + 1];
  for (size_t i = 0; i < name->len && name->wire[i]; i += 1u + name->wire[i]) offs[nl++] = i;
  if (b->compress) {
    uint32_t h = 0;
    for (size_t k = nl; k-- > 0;) {
      uint32_t lh = 2166136261u;
      for (size_t j = 0; j <= name->wire[offs[k]]; j++) lh = (lh ^ lower(name->wire[offs[k] + j])) * 16777619u;
      h = h * 0x9E3779B1u + lh;
      hs[k] = h;
    }
  }
  for (size_t k = 0; k < nl; k++) {
    size_t i = offs[k];
    if (b->compress) {
      size_t slen = name->len - i;
      for (size_t t = 0; t < b->nsuffix; t++) {
        lp2p_mdns_name seen;
        if (b->suffix_hash[t] == hs[k] && lp2p_mdns_name_decode(b->buf, b->len, b->suffix[t], &seen, NULL) == 0 &&
            seen.len == slen && wire_equal_ci(seen.wire, name->wire + i, slen)) {
          uint8_t ptr[2] = {(uint8_t)(0xC0 | (b->suffix[t] >> 8)), (uint8_t)b->suffix[t]};
          return put(b, ptr, 2);
        }
      }
      if (b->len < 0x3FFF && b->nsuffix < LP2P_MDNS_BUILD_MAX_SUFFIXES) {
        b->suffix_hash[b->nsuffix] = hs[k];
        b->suffix[b->nsuffix++] = (uint16_t)b->len;
      }
    }
    if (put(b, name->wire + i, 1u + name->wire[i])) return b->err;
  }
  uint8_t z = 0;
  return put(b, &z, 1);
}

int lp2p_mdns_build_name(lp2p_mdns_builder *b, const lp2p_mdns_name *name) {
  if (!b->err && !b->rr_start) b->err = LP2P_ERR_INVAL;
  return put_name(b, name);
}

static int enter_section(lp2p_mdns_builder *b, int section) {
  if (b->err) return b->err;
  if (section < b->section || section > 3 || b->rr_start) return b->err = LP2P_ERR_INVAL;
  if (b->counts[section] == 0xFFFF) return b->err = LP2P_ERR_BUFSIZE;
  b->section = section;
  return 0;
}

int lp2p_mdns_build_question(lp2p_mdns_builder *b, const lp2p_mdns_name *name, uint16_t type, uint16_t qclass) {
  if (enter_section(b, LP2P_MDNS_SEC_QUESTION)) return b->err;
  uint8_t t[4];
  wr16(t, type);
  wr16(t + 2, qclass);
  if (put_name(b, name) || put(b, t, 4)) return b->err;
  b->counts[0]++;
  return 0;
}

int lp2p_mdns_build_rr_begin(lp2p_mdns_builder *b, int section, const lp2p_mdns_name *name, uint16_t type,
                             uint16_t rclass, uint32_t ttl) {
  if (section == LP2P_MDNS_SEC_QUESTION && !b->err) b->err = LP2P_ERR_INVAL;
  if (enter_section(b, section)) return b->err;
  uint8_t t[10];
  wr16(t, type);
  wr16(t + 2, rclass);
  t[4] = (uint8_t)(ttl >> 24);
  t[5] = (uint8_t)(ttl >> 16);
  t[6] = (uint8_t)(ttl >> 8);
  t[7] = (uint8_t)ttl;
  wr16(t + 8, 0);
  if (put_name(b, name) || put(b, t, 10)) return b->err;
  b->rr_start = b->len - 2;
  return 0;
}

int lp2p_mdns_build_rr_end(lp2p_mdns_builder *b) {
  if (b->err) return b->err;
  if (!b->rr_start) return b->err = LP2P_ERR_INVAL;
  size_t rdlen = b->len - b->rr_start - 2;
  if (rdlen > 0xFFFF) return b->err = LP2P_ERR_BUFSIZE;
  wr16(b->buf + b->rr_start, (uint16_t)rdlen);
  b->rr_start = 0;
  b->counts[b->section]++;
  return 0;
}

int lp2p_mdns_build_finish(lp2p_mdns_builder *b) {
  if (!b->err && b->rr_start) b->err = LP2P_ERR_INVAL;
  if (b->err) return b->err;
  for (int i = 0; i < 4; i++) wr16(b->buf + 4 + 2 * i, b->counts[i]);
  return (int)b->len;
}
