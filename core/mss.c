/* mss.c - multistream-select 1.0.0 engine (dialer, lister, listener). See lp2p/mss.h. */
#include "core/mss_int.h"

#include "lp2p/encoding.h"

#define MSS_HEADER LP2P_MSS_PROTOCOL_ID
#define MSS_HEADER_LEN (sizeof MSS_HEADER - 1)
#define MSS_PREFIX "/multistream/"
#define MSS_PREFIX_LEN (sizeof MSS_PREFIX - 1)

enum {
  ST_HEADER,  /* waiting for the peer's header */
  ST_LIST,    /* lister: waiting for the answer to "ls" */
  ST_PROPOSE, /* dialer: waiting for the answer to ids[cur]; listener: waiting for a request */
  ST_DONE,    /* protocol agreed; nothing more is consumed */
  ST_IDLE,    /* lister without proposals: list received, nothing more is consumed */
  ST_ERROR,
};

typedef struct mss_id {
  const char *s; /* NUL-terminated */
  size_t len;
} mss_id;

struct lp2p_mss {
  lp2p_mem mem;
  int dialer, lister;
  int state, err;
  size_t max_line, max_attempts;
  /* dialer: proposals (one block: array then strings) */
  mss_id *ids;
  size_t n_ids, cur;
  /* listener */
  lp2p_mss_registry reg;
  void *ud;
  char *agreed; /* listener's copy of the accepted id */
  size_t attempts, rejections;
  /* lister: received list (one block: array then strings) */
  int list_received;
  const char **list;
  size_t list_n;
  /* framing of the message being received */
  uint8_t vbuf[LP2P_UVARINT_MAX_LEN];
  size_t vlen;
  int have_len;
  size_t need;
  lp2p_bytes line;
  lp2p_bytes out;
  size_t blocks; /* bytes of the ids / list / agreed blocks (lp2p_mss_memory) */
};

size_t lp2p_mss_memory(const lp2p_mss *m) {
  return m ? sizeof *m + m->line.cap + m->out.cap + m->blocks : 0;
}

/* ---- helpers shared with the tests ---- */

int lp2p__mss_id_valid(const char *s, size_t len) {
  if (!s || !len) return 0;
  return !memchr(s, '\n', len) && !memchr(s, '\0', len);
}

int lp2p__mss_put_line(const lp2p_mem *m, lp2p_bytes *b, const char *text, size_t len) {
  uint8_t v[LP2P_UVARINT_MAX_LEN];
  int vn = lp2p_uvarint_encode((uint64_t)len + 1, v, sizeof v);
  if (vn < 0) return vn;
  int rv = lp2p__bytes_reserve(m, b, (size_t)vn + len + 1);
  if (rv) return rv;
  memcpy(b->data + b->len, v, (size_t)vn);
  if (len) memcpy(b->data + b->len + vn, text, len);
  b->data[b->len + vn + len] = '\n';
  b->len += (size_t)vn + len + 1;
  return 0;
}

int lp2p__mss_check_header(const uint8_t *p, size_t len) {
  if (len == MSS_HEADER_LEN && !memcmp(p, MSS_HEADER, len)) return 0;
  if (len > MSS_PREFIX_LEN && !memcmp(p, MSS_PREFIX, MSS_PREFIX_LEN) && lp2p__mss_id_valid((const char *)p, len))
    return LP2P_ERR_UNSUPPORTED;
  return LP2P_ERR_PROTO;
}

int lp2p__mss_parse_list(const uint8_t *body, size_t len,
                         void (*cb)(void *ud, const uint8_t *id, size_t idlen), void *ud) {
  if (!len || body[len - 1] != '\n') return LP2P_ERR_PROTO;
  size_t end = len - 1, pos = 0;
  int count = 0;
  while (pos < end) {
    uint64_t l;
    int vn = lp2p_uvarint_decode(body + pos, end - pos, &l);
    if (vn <= 0) return LP2P_ERR_PROTO;
    pos += (size_t)vn;
    if (l < 2 || l > end - pos) return LP2P_ERR_PROTO;
    const uint8_t *id = body + pos;
    size_t idlen = (size_t)l - 1;
    if (id[idlen] != '\n' || !lp2p__mss_id_valid((const char *)id, idlen)) return LP2P_ERR_PROTO;
    if (cb) cb(ud, id, idlen);
    pos += (size_t)l;
    count++;
  }
  return count;
}

/* ---- construction ---- */

/* Resolves defaults (0 fields) into max_line / max_attempts; LP2P_ERR_INVAL if the header cannot fit. */
static int resolve_limits(const lp2p_mss_limits *lim, size_t *max_line, size_t *max_attempts) {
  *max_line = lim && lim->max_line ? lim->max_line : LP2P_MSS_DEFAULT_MAX_LINE;
  *max_attempts = lim && lim->max_attempts ? lim->max_attempts : LP2P_MSS_DEFAULT_MAX_ATTEMPTS;
  return *max_line < MSS_HEADER_LEN + 1 ? LP2P_ERR_INVAL : 0;
}

static lp2p_mss *mss_alloc(const lp2p_mem *mem, size_t max_line, size_t max_attempts) {
  mem = lp2p__mem_or_default(mem);
  lp2p_mss *m = lp2p__calloc(mem, 1, sizeof *m);
  if (!m) return NULL;
  m->mem = *mem;
  m->max_line = max_line;
  m->max_attempts = max_attempts;
  m->state = ST_HEADER;
  return m;
}

static int dialer_new(lp2p_mss **out, const char *const *protocols, size_t n, int lister,
                      const lp2p_mss_limits *lim, const lp2p_mem *mem) {
  if (!out) return LP2P_ERR_INVAL;
  *out = NULL;
  if ((!lister && n == 0) || (n && !protocols)) return LP2P_ERR_INVAL;
  if (n > (SIZE_MAX / 2) / sizeof(mss_id)) return LP2P_ERR_INVAL;
  size_t max_line, max_attempts;
  int rv = resolve_limits(lim, &max_line, &max_attempts);
  if (rv) return rv;
  size_t chars = 0;
  for (size_t i = 0; i < n; i++) {
    if (!protocols[i]) return LP2P_ERR_INVAL;
    size_t l = strlen(protocols[i]);
    if (!lp2p__mss_id_valid(protocols[i], l)) return LP2P_ERR_INVAL;
    if (l == 2 && (!memcmp(protocols[i], "na", 2) || !memcmp(protocols[i], "ls", 2))) return LP2P_ERR_INVAL;
    if (l >= max_line) return LP2P_ERR_TOO_LARGE;
    chars += l + 1;
  }
  lp2p_mss *m = mss_alloc(mem, max_line, max_attempts);
  if (!m) return LP2P_ERR_NOMEM;
  m->dialer = 1;
  m->lister = lister;
  if (n) {
    m->ids = lp2p__malloc(&m->mem, n * sizeof(mss_id) + chars);
    if (!m->ids) goto nomem;
    m->blocks += n * sizeof(mss_id) + chars;
    char *p = (char *)(m->ids + n);
    for (size_t i = 0; i < n; i++) {
      size_t l = strlen(protocols[i]);
      memcpy(p, protocols[i], l + 1);
      m->ids[i].s = p;
      m->ids[i].len = l;
      p += l + 1;
    }
    m->n_ids = n;
  }
  if (lp2p__mss_put_line(&m->mem, &m->out, MSS_HEADER, MSS_HEADER_LEN)) goto nomem;
  if (lister && lp2p__mss_put_line(&m->mem, &m->out, "ls", 2)) goto nomem;
  if (n && lp2p__mss_put_line(&m->mem, &m->out, m->ids[0].s, m->ids[0].len)) goto nomem;
  *out = m;
  return 0;
nomem:
  lp2p_mss_free(m);
  return LP2P_ERR_NOMEM;
}

int lp2p_mss_new_dialer(lp2p_mss **out, const char *const *protocols, size_t n, const lp2p_mss_limits *lim,
                        const lp2p_mem *mem) {
  return dialer_new(out, protocols, n, 0, lim, mem);
}

int lp2p_mss_new_lister(lp2p_mss **out, const char *const *protocols, size_t n, const lp2p_mss_limits *lim,
                        const lp2p_mem *mem) {
  return dialer_new(out, protocols, n, 1, lim, mem);
}

int lp2p_mss_new_listener(lp2p_mss **out, const lp2p_mss_registry *reg, void *ud, const lp2p_mss_limits *lim,
                          const lp2p_mem *mem) {
  if (!out) return LP2P_ERR_INVAL;
  *out = NULL;
  if (!reg || !reg->supports) return LP2P_ERR_INVAL;
  size_t max_line, max_attempts;
  int rv = resolve_limits(lim, &max_line, &max_attempts);
  if (rv) return rv;
  lp2p_mss *m = mss_alloc(mem, max_line, max_attempts);
  if (!m) return LP2P_ERR_NOMEM;
  m->reg = *reg;
  m->ud = ud;
  *out = m;
  return 0;
}

void lp2p_mss_free(lp2p_mss *m) {
  if (!m) return;
  lp2p_mem mem = m->mem;
  lp2p__free(&mem, m->ids);
  lp2p__free(&mem, m->agreed);
  lp2p__free(&mem, (void *)m->list);
  lp2p__bytes_free(&mem, &m->line);
  lp2p__bytes_free(&mem, &m->out);
  lp2p__free(&mem, m);
}

/* ---- message handling ---- */

static int is_text(const uint8_t *p, size_t len, const char *s) {
  return len == strlen(s) && !memcmp(p, s, len);
}

struct list_fill {
  const char **arr;
  char *chars;
  size_t i;
};

static void list_store(void *ud, const uint8_t *id, size_t idlen) {
  struct list_fill *f = ud;
  memcpy(f->chars, id, idlen);
  f->chars[idlen] = 0;
  f->arr[f->i++] = f->chars;
  f->chars += idlen + 1;
}

/* Lister: the answer to "ls" (body = the whole message, '\n' included). */
static int on_list(lp2p_mss *m, const uint8_t *p, size_t len) {
  if (is_text(p, len, "na\n")) {
    m->rejections++;
  } else {
    int n = lp2p__mss_parse_list(p, len, NULL, NULL);
    if (n < 0) return n;
    if (n) {
      /* Each id needs its bytes + NUL; the body holds id + '\n' + varint, so len bounds the chars. */
      const char **arr = lp2p__malloc(&m->mem, (size_t)n * sizeof(char *) + len);
      if (!arr) return LP2P_ERR_NOMEM;
      struct list_fill f = {arr, (char *)(arr + n), 0};
      lp2p__mss_parse_list(p, len, list_store, &f);
      m->list = arr;
      m->list_n = (size_t)n;
      m->blocks += (size_t)n * sizeof(char *) + len;
    }
  }
  m->list_received = 1;
  m->state = m->n_ids ? ST_PROPOSE : ST_IDLE;
  return 0;
}

static int dialer_on_answer(lp2p_mss *m, const uint8_t *p, size_t len) {
  const mss_id *id = &m->ids[m->cur];
  if (len == id->len && !memcmp(p, id->s, len)) {
    m->state = ST_DONE;
    return 0;
  }
  if (!is_text(p, len, "na")) return LP2P_ERR_PROTO;
  m->rejections++;
  if (++m->cur == m->n_ids) return LP2P_ERR_UNSUPPORTED;
  return lp2p__mss_put_line(&m->mem, &m->out, m->ids[m->cur].s, m->ids[m->cur].len);
}

/* Listener: answer "ls" into out as one message: uvarint(body) body, body = (uvarint id '\n')* '\n'. */
static int listener_ls(lp2p_mss *m) {
  const char *ids[LP2P_MSS_LS_MAX_IDS];
  size_t n = m->reg.list(m->ud, ids, LP2P_MSS_LS_MAX_IDS);
  if (n > LP2P_MSS_LS_MAX_IDS) n = LP2P_MSS_LS_MAX_IDS;
  size_t body = 1, used = 0;
  size_t lens[LP2P_MSS_LS_MAX_IDS];
  for (size_t i = 0; i < n; i++) {
    lens[i] = 0;
    if (!ids[i]) continue;
    size_t l = strlen(ids[i]);
    if (!lp2p__mss_id_valid(ids[i], l) || l >= m->max_line) continue;
    size_t entry = lp2p_uvarint_size(l + 1) + l + 1;
    if (body + entry > m->max_line) break;
    body += entry;
    lens[i] = l;
    used = i + 1;
  }
  int rv = lp2p__bytes_reserve(&m->mem, &m->out, lp2p_uvarint_size(body) + body);
  if (rv) return rv;
  lp2p_bytes *o = &m->out;
  o->len += (size_t)lp2p_uvarint_encode(body, o->data + o->len, o->cap - o->len);
  for (size_t i = 0; i < used; i++) {
    if (!lens[i]) continue;
    o->len += (size_t)lp2p_uvarint_encode(lens[i] + 1, o->data + o->len, o->cap - o->len);
    memcpy(o->data + o->len, ids[i], lens[i]);
    o->len += lens[i];
    o->data[o->len++] = '\n';
  }
  o->data[o->len++] = '\n';
  return 0;
}

static int listener_on_request(lp2p_mss *m, const uint8_t *p, size_t len) {
  const char *s = (const char *)p;
  if (!lp2p__mss_id_valid(s, len)) return LP2P_ERR_PROTO;
  int ls = is_text(p, len, "ls");
  if (!ls && !is_text(p, len, "na") && m->reg.supports(m->ud, s, len) == 1) {
    char *copy = lp2p__strndup(&m->mem, s, len);
    if (!copy) return LP2P_ERR_NOMEM;
    int rv = lp2p__mss_put_line(&m->mem, &m->out, s, len);
    if (rv) {
      lp2p__free(&m->mem, copy);
      return rv;
    }
    m->agreed = copy;
    m->blocks += len + 1;
    m->state = ST_DONE;
    return 0;
  }
  if (m->attempts >= m->max_attempts) return LP2P_ERR_LIMIT;
  m->attempts++;
  if (ls && m->reg.list) return listener_ls(m);
  m->rejections++;
  return lp2p__mss_put_line(&m->mem, &m->out, "na", 2);
}

/* One complete message p[0..len) (len >= 1, newline included). */
static int on_message(lp2p_mss *m, const uint8_t *p, size_t len) {
  if (p[len - 1] != '\n') return LP2P_ERR_PROTO;
  if (m->state == ST_LIST) return on_list(m, p, len);
  len--; /* strip the newline */
  if (m->state == ST_HEADER) {
    int rv = lp2p__mss_check_header(p, len);
    if (rv) return rv;
    if (!m->dialer) {
      rv = lp2p__mss_put_line(&m->mem, &m->out, MSS_HEADER, MSS_HEADER_LEN);
      if (rv) return rv;
    }
    m->state = m->lister ? ST_LIST : ST_PROPOSE;
    return 0;
  }
  return m->dialer ? dialer_on_answer(m, p, len) : listener_on_request(m, p, len);
}

static int64_t fail(lp2p_mss *m, int err) {
  m->state = ST_ERROR;
  m->err = err;
  return err;
}

int64_t lp2p_mss_feed(lp2p_mss *m, const uint8_t *in, size_t len) {
  if (!m || (!in && len)) return LP2P_ERR_INVAL;
  if (m->state == ST_ERROR) return m->err;
  size_t used = 0;
  while (used < len && (m->state == ST_HEADER || m->state == ST_LIST || m->state == ST_PROPOSE)) {
    if (!m->have_len) {
      uint64_t l;
      m->vbuf[m->vlen++] = in[used++];
      int vn = lp2p_uvarint_decode(m->vbuf, m->vlen, &l);
      if (vn == LP2P_ERR_AGAIN && m->vlen < sizeof m->vbuf) continue;
      if (vn < 0) return fail(m, LP2P_ERR_PROTO);
      if (l == 0) return fail(m, LP2P_ERR_PROTO);
      if (l > m->max_line) return fail(m, LP2P_ERR_TOO_LARGE);
      m->have_len = 1;
      m->need = (size_t)l;
      continue;
    }
    size_t avail = len - used;
    int rv;
    if (m->line.len == 0 && avail >= m->need) {
      rv = on_message(m, in + used, m->need); /* whole message in the input: no copy */
      used += m->need;
    } else {
      size_t take = m->need - m->line.len;
      if (take > avail) take = avail;
      rv = lp2p__bytes_append(&m->mem, &m->line, in + used, take);
      if (rv) return fail(m, rv);
      used += take;
      if (m->line.len < m->need) break;
      rv = on_message(m, m->line.data, m->need);
    }
    if (rv) return fail(m, rv);
    m->have_len = 0;
    m->vlen = 0;
    m->line.len = 0;
  }
  if (m->state == ST_DONE || m->state == ST_IDLE) lp2p__bytes_free(&m->mem, &m->line);
  return (int64_t)used;
}

/* ---- output and accessors ---- */

size_t lp2p_mss_output(lp2p_mss *m, const uint8_t **out) {
  if (!m || !m->out.len) {
    if (out) *out = NULL;
    return 0;
  }
  if (out) *out = m->out.data;
  return m->out.len;
}

void lp2p_mss_output_consumed(lp2p_mss *m, size_t n) {
  if (!m) return;
  lp2p__bytes_consume(&m->out, n);
  if (!m->out.len && (m->state == ST_DONE || m->state == ST_IDLE)) lp2p__bytes_free(&m->mem, &m->out);
}

int lp2p_mss_done(const lp2p_mss *m) { return m && m->state == ST_DONE; }

const char *lp2p_mss_protocol(const lp2p_mss *m) {
  if (!m || m->state != ST_DONE) return NULL;
  return m->dialer ? m->ids[m->cur].s : m->agreed;
}

int lp2p_mss_error(const lp2p_mss *m) { return m ? m->err : LP2P_ERR_INVAL; }
int lp2p_mss_is_dialer(const lp2p_mss *m) { return m && m->dialer; }
size_t lp2p_mss_rejections(const lp2p_mss *m) { return m ? m->rejections : 0; }
int lp2p_mss_list_received(const lp2p_mss *m) { return m && m->list_received; }
size_t lp2p_mss_list_count(const lp2p_mss *m) { return m ? m->list_n : 0; }
const char *lp2p_mss_list_at(const lp2p_mss *m, size_t i) { return m && i < m->list_n ? m->list[i] : NULL; }
