/* core/multiaddr.c - the lp2p_multiaddr value: binary validation, text
 * parsing/printing, component access, prefix/concat. Every multiaddr object
 * holds a validated, non-empty binary form of at most LP2P_MULTIADDR_MAX_LEN
 * bytes. */
#include <string.h>

#include "core/mem.h"
#include "core/multiaddr_int.h"
#include "lp2p/encoding.h"

struct lp2p_multiaddr {
  lp2p_mem mem;  /* allocator that owns this object */
  size_t len;    /* bytes in `bytes` */
  size_t count;  /* number of components */
  uint8_t bytes[];
};

/* One decoded component. */
typedef struct ma_comp {
  const lp2p__ma_proto *proto;
  const uint8_t *value;
  size_t vlen;
  size_t next; /* offset just past this component */
} ma_comp;

/* Decode and validate the component starting at off (< len). */
static int comp_read(const uint8_t *b, size_t len, size_t off, ma_comp *c, char *err, size_t errcap) {
  uint64_t code, vlen;
  int k = lp2p_uvarint_decode(b + off, len - off, &code);
  if (k < 0) {
    lp2p__ma_err(err, errcap, "%s protocol code at byte %zu", k == LP2P_ERR_AGAIN ? "truncated" : "malformed", off);
    return LP2P_ERR_MULTIADDR;
  }
  const lp2p__ma_proto *p = lp2p__ma_proto_by_code(code);
  if (!p) {
    lp2p__ma_err(err, errcap, "unknown protocol code %llu", (unsigned long long)code);
    return LP2P_ERR_MULTIADDR;
  }
  off += (size_t)k;
  if (p->size >= 0) {
    vlen = (uint64_t)p->size;
  } else {
    k = lp2p_uvarint_decode(b + off, len - off, &vlen);
    if (k < 0) {
      lp2p__ma_err(err, errcap, "%s: %s value length", p->name, k == LP2P_ERR_AGAIN ? "truncated" : "malformed");
      return LP2P_ERR_MULTIADDR;
    }
    off += (size_t)k;
  }
  if (vlen > len - off) {
    lp2p__ma_err(err, errcap, "%s: truncated value (%llu bytes announced, %zu left)", p->name,
                 (unsigned long long)vlen, len - off);
    return LP2P_ERR_MULTIADDR;
  }
  int rv = lp2p__ma_value_check(p, b + off, (size_t)vlen, err, errcap);
  if (rv) return rv;
  c->proto = p;
  c->value = b + off;
  c->vlen = (size_t)vlen;
  c->next = off + (size_t)vlen;
  return LP2P_OK;
}

/* Validate a whole binary multiaddr; *count = components. */
static int validate(const uint8_t *b, size_t len, size_t *count, char *err, size_t errcap) {
  if (len == 0) {
    lp2p__ma_err(err, errcap, "empty multiaddr");
    return LP2P_ERR_MULTIADDR;
  }
  if (len > LP2P_MULTIADDR_MAX_LEN) {
    lp2p__ma_err(err, errcap, "multiaddr of %zu bytes exceeds the %d byte limit", len, LP2P_MULTIADDR_MAX_LEN);
    return LP2P_ERR_MULTIADDR;
  }
  size_t n = 0;
  for (size_t off = 0; off < len; n++) {
    ma_comp c;
    int rv = comp_read(b, len, off, &c, err, errcap);
    if (rv) return rv;
    off = c.next;
  }
  *count = n;
  return LP2P_OK;
}

/* Allocate an object holding a copy of already validated bytes. */
static int ma_make(lp2p_multiaddr **out, const lp2p_mem *mem, const uint8_t *b, size_t len, size_t count) {
  mem = lp2p__mem_or_default(mem);
  lp2p_multiaddr *ma = lp2p__malloc(mem, sizeof *ma + len);
  if (!ma) return LP2P_ERR_NOMEM;
  ma->mem = *mem;
  ma->len = len;
  ma->count = count;
  memcpy(ma->bytes, b, len);
  *out = ma;
  return LP2P_OK;
}

int lp2p_multiaddr_from_bytes_mem(lp2p_multiaddr **out, const uint8_t *bytes, size_t len, const lp2p_mem *mem,
                                  char *err, size_t errcap) {
  if (err && errcap) err[0] = '\0';
  if (!out || (!bytes && len)) return LP2P_ERR_INVAL;
  *out = NULL;
  size_t count;
  int rv = validate(bytes, len, &count, err, errcap);
  if (rv) return rv;
  return ma_make(out, mem, bytes, len, count);
}

int lp2p_multiaddr_from_bytes(lp2p_multiaddr **out, const uint8_t *bytes, size_t len, char *err, size_t errcap) {
  return lp2p_multiaddr_from_bytes_mem(out, bytes, len, NULL, err, errcap);
}

/* ---- text ---- */

static int too_big(char *err, size_t errcap) {
  lp2p__ma_err(err, errcap, "multiaddr exceeds the %d byte limit", LP2P_MULTIADDR_MAX_LEN);
  return LP2P_ERR_MULTIADDR;
}

int lp2p_multiaddr_parse_mem(lp2p_multiaddr **out, const char *text, size_t len, const lp2p_mem *mem, char *err,
                             size_t errcap) {
  if (err && errcap) err[0] = '\0';
  if (!out || (!text && len)) return LP2P_ERR_INVAL;
  *out = NULL;
  if (len >= LP2P_MULTIADDR_MAX_TEXT) {
    lp2p__ma_err(err, errcap, "multiaddr text of %zu bytes is too long", len);
    return LP2P_ERR_MULTIADDR;
  }
  if (len == 0 || text[0] != '/') {
    lp2p__ma_err(err, errcap, len ? "multiaddr must begin with '/'" : "empty multiaddr");
    return LP2P_ERR_MULTIADDR;
  }
  if (len > 1 && text[len - 1] == '/') len--; /* one trailing slash is tolerated */
  uint8_t buf[LP2P_MULTIADDR_MAX_LEN];
  size_t blen = 0, count = 0;
  size_t i = 1;
  while (i < len) {
    size_t ns = i;
    while (i < len && text[i] != '/') i++;
    const char *name = text + ns;
    size_t nlen = i - ns;
    if (nlen == 0) {
      lp2p__ma_err(err, errcap, "empty protocol name at offset %zu", ns);
      return LP2P_ERR_MULTIADDR;
    }
    const lp2p__ma_proto *p = lp2p__ma_proto_by_name(name, nlen);
    if (!p) {
      char q[LP2P__MA_QUOTE_MAX + 4];
      lp2p__ma_quote(q, name, nlen);
      lp2p__ma_err(err, errcap, "unknown protocol '%s'", q);
      return LP2P_ERR_MULTIADDR;
    }
    int k = lp2p_uvarint_encode(p->code, buf + blen, sizeof buf - blen);
    if (k < 0) return too_big(err, errcap);
    blen += (size_t)k;
    if (p->size != 0) {
      size_t vs = i < len ? i + 1 : i; /* skip the '/' before the value */
      i = vs;
      while (i < len && text[i] != '/') i++;
      uint8_t val[LP2P_MULTIADDR_MAX_LEN];
      size_t vlen = 0;
      int rv = lp2p__ma_value_from_text(p, text + vs, i - vs, val, sizeof val, &vlen, err, errcap);
      if (rv) return rv;
      if (p->size < 0) {
        k = lp2p_uvarint_encode(vlen, buf + blen, sizeof buf - blen);
        if (k < 0) return too_big(err, errcap);
        blen += (size_t)k;
      }
      if (vlen > sizeof buf - blen) return too_big(err, errcap);
      memcpy(buf + blen, val, vlen);
      blen += vlen;
    }
    count++;
    if (i < len && ++i == len) { /* a '/' with nothing after it (one trailing '/' was dropped above) */
      lp2p__ma_err(err, errcap, "empty protocol name at offset %zu", i);
      return LP2P_ERR_MULTIADDR;
    }
  }
  if (count == 0) {
    lp2p__ma_err(err, errcap, "empty multiaddr");
    return LP2P_ERR_MULTIADDR;
  }
  return ma_make(out, mem, buf, blen, count);
}

int lp2p_multiaddr_parse_n(lp2p_multiaddr **out, const char *text, size_t len, char *err, size_t errcap) {
  return lp2p_multiaddr_parse_mem(out, text, len, NULL, err, errcap);
}

int lp2p_multiaddr_parse(lp2p_multiaddr **out, const char *text, char *err, size_t errcap) {
  return lp2p_multiaddr_parse_mem(out, text, text ? strlen(text) : 0, NULL, err, errcap);
}

int lp2p_multiaddr_to_string(const lp2p_multiaddr *ma, char *buf, size_t cap) {
  if (!ma) return LP2P_ERR_INVAL;
  if (!buf || cap == 0) return LP2P_ERR_BUFSIZE;
  size_t pos = 0;
  for (size_t off = 0; off < ma->len;) {
    ma_comp c;
    if (comp_read(ma->bytes, ma->len, off, &c, NULL, 0)) return LP2P_ERR_INTERNAL; /* validated at creation */
    size_t nl = strlen(c.proto->name);
    if (pos + 1 + nl > cap) return LP2P_ERR_BUFSIZE;
    buf[pos++] = '/';
    memcpy(buf + pos, c.proto->name, nl);
    pos += nl;
    if (c.proto->size != 0) {
      if (pos + 1 > cap) return LP2P_ERR_BUFSIZE;
      buf[pos++] = '/';
      int rv = lp2p__ma_value_to_text(c.proto, c.value, c.vlen, buf, cap, &pos);
      if (rv) return rv;
    }
    off = c.next;
  }
  if (pos >= cap) return LP2P_ERR_BUFSIZE;
  buf[pos] = '\0';
  return (int)pos;
}

/* ---- object ---- */

lp2p_multiaddr *lp2p_multiaddr_dup(const lp2p_multiaddr *ma) {
  lp2p_multiaddr *out = NULL;
  if (!ma || ma_make(&out, &ma->mem, ma->bytes, ma->len, ma->count)) return NULL;
  return out;
}

void lp2p_multiaddr_free(lp2p_multiaddr *ma) {
  if (!ma) return;
  lp2p_mem mem = ma->mem;
  lp2p__free(&mem, ma);
}

const uint8_t *lp2p_multiaddr_bytes(const lp2p_multiaddr *ma, size_t *len) {
  if (len) *len = ma ? ma->len : 0;
  return ma ? ma->bytes : NULL;
}

int lp2p_multiaddr_equal(const lp2p_multiaddr *a, const lp2p_multiaddr *b) {
  if (!a || !b) return a == b;
  return a->len == b->len && !memcmp(a->bytes, b->bytes, a->len);
}

size_t lp2p_multiaddr_count(const lp2p_multiaddr *ma) { return ma ? ma->count : 0; }

/* Offset of component i (i <= count; i == count gives len). */
static size_t comp_offset(const lp2p_multiaddr *ma, size_t i) {
  size_t off = 0;
  for (size_t k = 0; k < i && off < ma->len; k++) {
    ma_comp c;
    if (comp_read(ma->bytes, ma->len, off, &c, NULL, 0)) return ma->len;
    off = c.next;
  }
  return off;
}

int lp2p_multiaddr_component(const lp2p_multiaddr *ma, size_t i, uint32_t *code, const uint8_t **value,
                             size_t *vlen) {
  if (!ma || i >= ma->count) return LP2P_ERR_INVAL;
  ma_comp c;
  if (comp_read(ma->bytes, ma->len, comp_offset(ma, i), &c, NULL, 0)) return LP2P_ERR_INTERNAL;
  if (code) *code = c.proto->code;
  if (value) *value = c.value;
  if (vlen) *vlen = c.vlen;
  return LP2P_OK;
}

int lp2p_multiaddr_find_last(const lp2p_multiaddr *ma, uint32_t code) {
  if (!ma) return LP2P_ERR_INVAL;
  int found = LP2P_ERR_NOT_FOUND;
  size_t off = 0;
  for (size_t k = 0; k < ma->count; k++) {
    ma_comp c;
    if (comp_read(ma->bytes, ma->len, off, &c, NULL, 0)) return LP2P_ERR_INTERNAL;
    if (c.proto->code == code) found = (int)k;
    off = c.next;
  }
  return found;
}

int lp2p_multiaddr_prefix(lp2p_multiaddr **out, const lp2p_multiaddr *ma, size_t n) {
  if (!out) return LP2P_ERR_INVAL;
  *out = NULL;
  if (!ma || n == 0 || n > ma->count) return LP2P_ERR_INVAL;
  return ma_make(out, &ma->mem, ma->bytes, comp_offset(ma, n), n);
}

int lp2p_multiaddr_concat(lp2p_multiaddr **out, const lp2p_multiaddr *a, const lp2p_multiaddr *b) {
  if (!out) return LP2P_ERR_INVAL;
  *out = NULL;
  if (!a || !b) return LP2P_ERR_INVAL;
  if (a->len + b->len > LP2P_MULTIADDR_MAX_LEN) return LP2P_ERR_TOO_LARGE;
  const lp2p_mem *mem = &a->mem;
  lp2p_multiaddr *ma = lp2p__malloc(mem, sizeof *ma + a->len + b->len);
  if (!ma) return LP2P_ERR_NOMEM;
  ma->mem = *mem;
  ma->len = a->len + b->len;
  ma->count = a->count + b->count;
  memcpy(ma->bytes, a->bytes, a->len);
  memcpy(ma->bytes + a->len, b->bytes, b->len);
  *out = ma;
  return LP2P_OK;
}

int lp2p_multiaddr_append(lp2p_multiaddr **out, const lp2p_multiaddr *ma, uint32_t code, const uint8_t *value,
                          size_t vlen, char *err, size_t errcap) {
  if (err && errcap) err[0] = '\0';
  if (!out) return LP2P_ERR_INVAL;
  *out = NULL;
  if (!ma || (!value && vlen)) return LP2P_ERR_INVAL;
  const lp2p__ma_proto *p = lp2p__ma_proto_by_code(code);
  if (!p) {
    lp2p__ma_err(err, errcap, "unknown protocol code %lu", (unsigned long)code);
    return LP2P_ERR_MULTIADDR;
  }
  if (p->size >= 0 && vlen != (size_t)p->size) {
    lp2p__ma_err(err, errcap, "%s: value must be %d bytes, got %zu", p->name, p->size, vlen);
    return LP2P_ERR_MULTIADDR;
  }
  uint8_t buf[LP2P_MULTIADDR_MAX_LEN];
  memcpy(buf, ma->bytes, ma->len);
  size_t blen = ma->len;
  int k = lp2p_uvarint_encode(code, buf + blen, sizeof buf - blen);
  if (k < 0) return too_big(err, errcap);
  blen += (size_t)k;
  if (p->size < 0) {
    k = lp2p_uvarint_encode(vlen, buf + blen, sizeof buf - blen);
    if (k < 0) return too_big(err, errcap);
    blen += (size_t)k;
  }
  if (vlen > sizeof buf - blen) return too_big(err, errcap);
  if (vlen) memcpy(buf + blen, value, vlen);
  blen += vlen;
  /* The prefix is valid already: check only the new component. */
  ma_comp c;
  int rv = comp_read(buf, blen, ma->len, &c, err, errcap);
  if (rv) return rv;
  return ma_make(out, &ma->mem, buf, blen, ma->count + 1);
}
