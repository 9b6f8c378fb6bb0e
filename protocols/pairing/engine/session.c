/* protocols/pairing/engine/session.c - the pairing session: HELLO -> SHARE -> CONFIRM -> INFO
 * (messages and key schedule in pair_int.h). Bytes in, bytes out, `now` in; no I/O. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/pairing/engine/pair_int.h"

#define CI_MAX (1 + sizeof LP2P__PAIR_PROTOCOL + 2 * (2 + LP2P__PAIR_PEER_MAX))
#define OUT_CAP (LP2P__PAIR_MAX_FRAME + 16)
#define DEFAULT_TIMEOUT_MS 60000u

struct lp2p__pair_session {
  lp2p__pair_role role;
  lp2p__pair_state state;
  lp2p__pair_fail fail;
  uint8_t abort_reason;
  int burn;
  lp2p_tstamp deadline;

  lp2p__pair_code code;
  uint8_t tag[LP2P__PAIR_TAG_LEN]; /* mdns_tag of our nameplate */
  uint8_t ci[CI_MAX];
  size_t ci_len;

  uint8_t sid[LP2P__PAIR_SID_LEN];
  uint8_t y[32];  /* our scalar; wiped once K is known */
  uint8_t g[32];
  uint8_t Ya[32], Yb[32];
  uint8_t isk[LP2P__PAIR_ISK_LEN];
  uint8_t mac_key[64];
  uint8_t k_i2j[32], k_j2i[32];
  uint8_t session_key[LP2P__PAIR_KEY_LEN];
  char sas[8];
  lp2p__pair_rng_fn rng;
  void *rng_ctx;

  uint8_t local_plain[LP2P__PAIR_INFO_MAX];
  size_t local_plain_len;
  lp2p__pair_device_info remote;

  uint8_t in[LP2P__PAIR_MAX_FRAME];
  size_t in_len;
  uint8_t out[OUT_CAP];
  size_t out_len;
};

const char *lp2p__pair_fail_name(lp2p__pair_fail f) {
  switch (f) {
    case LP2P__PAIR_OK: return "ok";
    case LP2P__PAIR_FAIL_WRONG_CODE: return "wrong code";
    case LP2P__PAIR_FAIL_TAMPERED: return "tampered message";
    case LP2P__PAIR_FAIL_WRONG_NAMEPLATE: return "wrong nameplate";
    case LP2P__PAIR_FAIL_EXPIRED: return "expired";
    case LP2P__PAIR_FAIL_PROTOCOL: return "protocol error";
    case LP2P__PAIR_FAIL_ABORTED: return "aborted by peer";
    case LP2P__PAIR_FAIL_LOCAL: return "local error";
  }
  return "unknown";
}

/* ---- device info codec ---- */
int lp2p__pair_info_encode(const lp2p__pair_device_info *di, uint8_t *out, size_t cap) {
  if (!di || di->name_len > LP2P__PAIR_NAME_MAX || di->n_addrs > LP2P__PAIR_ADDRS_MAX)
    return LP2P_ERR_INVAL;
  size_t off = 0;
  if (cap < 2u + di->name_len) return LP2P_ERR_BUFSIZE;
  out[off++] = di->name_len;
  memcpy(out + off, di->name, di->name_len);
  off += di->name_len;
  out[off++] = di->n_addrs;
  for (unsigned i = 0; i < di->n_addrs; i++) {
    if (di->addr_len[i] == 0) return LP2P_ERR_INVAL;
    if (cap - off < 1u + di->addr_len[i]) return LP2P_ERR_BUFSIZE;
    out[off++] = di->addr_len[i];
    memcpy(out + off, di->addr[i], di->addr_len[i]);
    off += di->addr_len[i];
  }
  return (int)off;
}

int lp2p__pair_info_decode(lp2p__pair_device_info *di, const uint8_t *in, size_t len) {
  memset(di, 0, sizeof *di);
  size_t off = 0;
  if (len < 2) goto bad;
  uint8_t nl = in[off++];
  if (nl > LP2P__PAIR_NAME_MAX || len - off < (size_t)nl + 1) goto bad;
  memcpy(di->name, in + off, nl);
  di->name_len = nl;
  off += nl;
  uint8_t na = in[off++];
  if (na > LP2P__PAIR_ADDRS_MAX) goto bad;
  for (unsigned i = 0; i < na; i++) {
    if (off >= len) goto bad;
    uint8_t al = in[off++];
    if (al == 0 || len - off < al) goto bad;
    memcpy(di->addr[i], in + off, al);
    di->addr_len[i] = al;
    off += al;
  }
  di->n_addrs = na;
  if (off != len) goto bad;
  return 0;
bad:
  memset(di, 0, sizeof *di);
  return LP2P_ERR_PARSE;
}

/* ---- helpers ---- */
static void derive(const lp2p__pair_session *s, const char *label, uint8_t *out, size_t n) {
  uint8_t buf[128], h[64];
  const uint8_t *parts[3] = {(const uint8_t *)label, s->sid, s->isk};
  size_t lens[3] = {strlen(label), sizeof s->sid, sizeof s->isk};
  int len = lp2p__cpace_lv_cat(buf, sizeof buf, 3, parts, lens);
  crypto_hash_sha512(h, buf, len > 0 ? (unsigned long long)len : 0);
  memcpy(out, h, n);
  sodium_memzero(buf, sizeof buf);
  sodium_memzero(h, sizeof h);
}

/* Ta / Tb = HMAC-SHA-512(mac_key, lv_cat(Y, AD)) with AD = "". */
static void conf_tag(const lp2p__pair_session *s, const uint8_t Y[32], uint8_t tag[64]) {
  uint8_t msg[34];
  msg[0] = 32;
  memcpy(msg + 1, Y, 32);
  msg[33] = 0;
  crypto_auth_hmacsha512_state st;
  crypto_auth_hmacsha512_init(&st, s->mac_key, sizeof s->mac_key);
  crypto_auth_hmacsha512_update(&st, msg, sizeof msg);
  crypto_auth_hmacsha512_final(&st, tag);
  sodium_memzero(&st, sizeof st);
}

/* After K: ISK, mac_key, the seal keys, session key and SAS; wipes y and K. */
static int keys_from_K(lp2p__pair_session *s, uint8_t K[32]) {
  int rv = lp2p__cpace_isk_ir(s->isk, s->sid, sizeof s->sid, K, s->Ya, NULL, 0, s->Yb, NULL, 0);
  sodium_memzero(K, 32);
  sodium_memzero(s->y, sizeof s->y);
  if (rv < 0) return rv;
  /* draft "Key confirmation": mac_key = H(b"CPaceMac" || sid || ISK) */
  crypto_hash_sha512_state st;
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, (const uint8_t *)"CPaceMac", 8);
  crypto_hash_sha512_update(&st, s->sid, sizeof s->sid);
  crypto_hash_sha512_update(&st, s->isk, sizeof s->isk);
  crypto_hash_sha512_final(&st, s->mac_key);
  sodium_memzero(&st, sizeof st);
  derive(s, "lp2p-pair seal initiator", s->k_i2j, 32);
  derive(s, "lp2p-pair seal joiner", s->k_j2i, 32);
  derive(s, "lp2p-pair session key", s->session_key, 32);
  uint8_t v[4];
  derive(s, "lp2p-pair sas", v, 4);
  uint32_t x = ((uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3]) % 1000000u;
  snprintf(s->sas, sizeof s->sas, "%03u %03u", (unsigned)(x / 1000), (unsigned)(x % 1000));
  return 0;
}

static int queue(lp2p__pair_session *s, const uint8_t *body, size_t n) {
  if (n == 0 || n > LP2P__PAIR_MAX_BODY || OUT_CAP - s->out_len < n + 2) return LP2P_ERR_BUFSIZE;
  s->out[s->out_len++] = (uint8_t)(n >> 8);
  s->out[s->out_len++] = (uint8_t)n;
  memcpy(s->out + s->out_len, body, n);
  s->out_len += n;
  return 0;
}

/* Fail: record, tell the peer (unless it told us or the stream is gone), wipe key material. */
static void fail(lp2p__pair_session *s, lp2p__pair_fail f, int tell) {
  if (s->state == LP2P__PAIR_S_FAILED || s->state == LP2P__PAIR_S_PAIRED) return;
  s->state = LP2P__PAIR_S_FAILED;
  s->fail = f;
  if (tell) {
    uint8_t ab[2] = {LP2P__PAIR_MSG_ABORT, (uint8_t)f};
    (void)queue(s, ab, sizeof ab);
  }
  sodium_memzero(s->y, sizeof s->y);
  sodium_memzero(s->isk, sizeof s->isk);
  sodium_memzero(s->mac_key, sizeof s->mac_key);
  sodium_memzero(s->k_i2j, sizeof s->k_i2j);
  sodium_memzero(s->k_j2i, sizeof s->k_j2i);
  sodium_memzero(s->session_key, sizeof s->session_key);
  sodium_memzero(s->sas, sizeof s->sas);
  sodium_memzero(&s->code, sizeof s->code);
  sodium_memzero(s->local_plain, sizeof s->local_plain);
}

static int seal_info(lp2p__pair_session *s, uint8_t type, const uint8_t key[32], uint8_t *out) {
  static const uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out, &clen, s->local_plain, s->local_plain_len,
                                             &type, 1, NULL, nonce, key);
  return (int)clen;
}

static int open_info(lp2p__pair_session *s, uint8_t type, const uint8_t key[32],
                     const uint8_t *c, size_t clen) {
  static const uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
  uint8_t plain[LP2P__PAIR_INFO_MAX];
  unsigned long long plen = 0;
  if (clen < LP2P__PAIR_AEAD_TAG || clen - LP2P__PAIR_AEAD_TAG > sizeof plain)
    return LP2P_ERR_PARSE;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, c, clen, &type, 1, nonce,
                                                 key) != 0)
    return LP2P_ERR_DECRYPT;
  int rv = lp2p__pair_info_decode(&s->remote, plain, (size_t)plen);
  sodium_memzero(plain, sizeof plain);
  return rv;
}

/* ---- message handlers ---- */
static void on_hello(lp2p__pair_session *s, const uint8_t *b, size_t n) {
  if (n != 1 + LP2P__PAIR_SID_LEN + LP2P__PAIR_TAG_LEN + 32) return fail(s, LP2P__PAIR_FAIL_PROTOCOL, 1);
  const uint8_t *sid = b + 1, *tag = sid + LP2P__PAIR_SID_LEN, *Ya = tag + LP2P__PAIR_TAG_LEN;
  /* another nameplate: never run the PAKE with it */
  if (sodium_memcmp(tag, s->tag, LP2P__PAIR_TAG_LEN) != 0)
    return fail(s, LP2P__PAIR_FAIL_WRONG_NAMEPLATE, 1);
  memcpy(s->sid, sid, sizeof s->sid);
  memcpy(s->Ya, Ya, 32);
  uint8_t prs[LP2P__PAIR_PRS_LEN], K[32];
  lp2p__pair_code_prs(&s->code, prs);
  int rv = lp2p__cpace_generator(s->g, prs, sizeof prs, s->ci, s->ci_len, s->sid, sizeof s->sid);
  sodium_memzero(prs, sizeof prs);
  if (rv < 0) return fail(s, LP2P__PAIR_FAIL_LOCAL, 1);
  lp2p__cpace_sample_scalar(s->y, s->rng, s->rng_ctx);
  if (lp2p__cpace_share(s->Yb, s->y, s->g) < 0) return fail(s, LP2P__PAIR_FAIL_LOCAL, 1);
  if (lp2p__cpace_vfy(K, s->y, s->Ya) < 0) return fail(s, LP2P__PAIR_FAIL_TAMPERED, 1);
  if (keys_from_K(s, K) < 0) return fail(s, LP2P__PAIR_FAIL_LOCAL, 1);
  uint8_t body[1 + 32 + 64];
  body[0] = LP2P__PAIR_MSG_SHARE;
  memcpy(body + 1, s->Yb, 32);
  conf_tag(s, s->Yb, body + 33);
  if (queue(s, body, sizeof body) < 0) return fail(s, LP2P__PAIR_FAIL_LOCAL, 0);
  s->burn = 1; /* Tb released: the peer may test one guess */
  s->state = LP2P__PAIR_S_WAIT_CONFIRM;
}

static void on_share(lp2p__pair_session *s, const uint8_t *b, size_t n) {
  s->burn = 1; /* a guess arrived */
  if (n != 1 + 32 + 64) return fail(s, LP2P__PAIR_FAIL_PROTOCOL, 1);
  memcpy(s->Yb, b + 1, 32);
  uint8_t K[32], t[64];
  if (lp2p__cpace_vfy(K, s->y, s->Yb) < 0) return fail(s, LP2P__PAIR_FAIL_TAMPERED, 1);
  if (keys_from_K(s, K) < 0) return fail(s, LP2P__PAIR_FAIL_LOCAL, 1);
  conf_tag(s, s->Yb, t);
  int ok = crypto_verify_64(t, b + 33) == 0;
  sodium_memzero(t, sizeof t);
  if (!ok) return fail(s, LP2P__PAIR_FAIL_WRONG_CODE, 1);
  uint8_t body[1 + 64 + LP2P__PAIR_AEAD_TAG + LP2P__PAIR_INFO_MAX];
  body[0] = LP2P__PAIR_MSG_CONFIRM;
  conf_tag(s, s->Ya, body + 1);
  int c = seal_info(s, LP2P__PAIR_MSG_CONFIRM, s->k_i2j, body + 65);
  int rv = queue(s, body, 65 + (size_t)c);
  sodium_memzero(body, sizeof body);
  if (rv < 0) return fail(s, LP2P__PAIR_FAIL_LOCAL, 0);
  s->state = LP2P__PAIR_S_WAIT_INFO;
}

static void paired(lp2p__pair_session *s) {
  s->state = LP2P__PAIR_S_PAIRED;
  s->burn = 0;
  sodium_memzero(s->isk, sizeof s->isk);
  sodium_memzero(s->mac_key, sizeof s->mac_key);
  sodium_memzero(s->k_i2j, sizeof s->k_i2j);
  sodium_memzero(s->k_j2i, sizeof s->k_j2i);
  sodium_memzero(&s->code, sizeof s->code);
  sodium_memzero(s->local_plain, sizeof s->local_plain);
}

static void on_confirm(lp2p__pair_session *s, const uint8_t *b, size_t n) {
  if (n < 1 + 64 + LP2P__PAIR_AEAD_TAG + 2) return fail(s, LP2P__PAIR_FAIL_PROTOCOL, 1);
  uint8_t t[64];
  conf_tag(s, s->Ya, t);
  int ok = crypto_verify_64(t, b + 1) == 0;
  sodium_memzero(t, sizeof t);
  if (!ok) return fail(s, LP2P__PAIR_FAIL_WRONG_CODE, 1);
  if (open_info(s, LP2P__PAIR_MSG_CONFIRM, s->k_i2j, b + 65, n - 65) < 0)
    return fail(s, LP2P__PAIR_FAIL_TAMPERED, 1);
  uint8_t body[1 + LP2P__PAIR_AEAD_TAG + LP2P__PAIR_INFO_MAX];
  body[0] = LP2P__PAIR_MSG_INFO;
  int c = seal_info(s, LP2P__PAIR_MSG_INFO, s->k_j2i, body + 1);
  int rv = queue(s, body, 1 + (size_t)c);
  sodium_memzero(body, sizeof body);
  if (rv < 0) return fail(s, LP2P__PAIR_FAIL_LOCAL, 0);
  paired(s);
}

static void on_info(lp2p__pair_session *s, const uint8_t *b, size_t n) {
  if (n < 1 + LP2P__PAIR_AEAD_TAG + 2) return fail(s, LP2P__PAIR_FAIL_PROTOCOL, 1);
  if (open_info(s, LP2P__PAIR_MSG_INFO, s->k_j2i, b + 1, n - 1) < 0)
    return fail(s, LP2P__PAIR_FAIL_TAMPERED, 1);
  paired(s);
}

static void on_body(lp2p__pair_session *s, const uint8_t *b, size_t n) {
  if (b[0] == LP2P__PAIR_MSG_ABORT) {
    if (n != 2) return fail(s, LP2P__PAIR_FAIL_PROTOCOL, 1);
    s->abort_reason = b[1];
    return fail(s, LP2P__PAIR_FAIL_ABORTED, 0);
  }
  switch (s->state) {
    case LP2P__PAIR_S_WAIT_HELLO:
      if (b[0] == LP2P__PAIR_MSG_HELLO) return on_hello(s, b, n);
      break;
    case LP2P__PAIR_S_WAIT_SHARE:
      if (b[0] == LP2P__PAIR_MSG_SHARE) return on_share(s, b, n);
      break;
    case LP2P__PAIR_S_WAIT_CONFIRM:
      if (b[0] == LP2P__PAIR_MSG_CONFIRM) return on_confirm(s, b, n);
      break;
    case LP2P__PAIR_S_WAIT_INFO:
      if (b[0] == LP2P__PAIR_MSG_INFO) return on_info(s, b, n);
      break;
    default:
      break;
  }
  fail(s, LP2P__PAIR_FAIL_PROTOCOL, 1);
}

/* ---- public (internal) API ---- */
lp2p__pair_session *lp2p__pair_session_new(const lp2p__pair_params *p) {
  if (!p || !p->code || !lp2p__pair_code_check(p->code) || !p->local_id || !p->remote_id ||
      !p->local_id_len || !p->remote_id_len || p->local_id_len > LP2P__PAIR_PEER_MAX ||
      p->remote_id_len > LP2P__PAIR_PEER_MAX ||
      (p->role != LP2P__PAIR_INITIATOR && p->role != LP2P__PAIR_JOINER))
    return NULL;
  if (sodium_init() < 0) return NULL;
  lp2p__pair_session *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->role = p->role;
  s->code = *p->code;
  s->rng = p->rng;
  s->rng_ctx = p->rng_ctx;
  s->deadline = p->now + (p->timeout_ms ? p->timeout_ms : DEFAULT_TIMEOUT_MS);
  lp2p__pair_mdns_tag(s->code.nameplate, s->tag);
  if (p->local_info) {
    int n = lp2p__pair_info_encode(p->local_info, s->local_plain, sizeof s->local_plain);
    if (n < 0) goto bad;
    s->local_plain_len = (size_t)n;
  } else {
    s->local_plain_len = 2; /* empty name, no addresses */
  }
  /* CI = lv_cat(protocol, initiator id, joiner id) */
  int init = p->role == LP2P__PAIR_INITIATOR;
  const uint8_t *parts[3] = {(const uint8_t *)LP2P__PAIR_PROTOCOL, init ? p->local_id : p->remote_id,
                             init ? p->remote_id : p->local_id};
  size_t lens[3] = {sizeof LP2P__PAIR_PROTOCOL - 1, init ? p->local_id_len : p->remote_id_len,
                    init ? p->remote_id_len : p->local_id_len};
  int n = lp2p__cpace_lv_cat(s->ci, sizeof s->ci, 3, parts, lens);
  if (n < 0) goto bad;
  s->ci_len = (size_t)n;
  if (init) {
    if (s->rng)
      s->rng(s->rng_ctx, s->sid, sizeof s->sid);
    else
      randombytes_buf(s->sid, sizeof s->sid);
    uint8_t prs[LP2P__PAIR_PRS_LEN];
    lp2p__pair_code_prs(&s->code, prs);
    int rv = lp2p__cpace_generator(s->g, prs, sizeof prs, s->ci, s->ci_len, s->sid, sizeof s->sid);
    sodium_memzero(prs, sizeof prs);
    if (rv < 0) goto bad;
    lp2p__cpace_sample_scalar(s->y, s->rng, s->rng_ctx);
    if (lp2p__cpace_share(s->Ya, s->y, s->g) < 0) goto bad;
    uint8_t body[1 + LP2P__PAIR_SID_LEN + LP2P__PAIR_TAG_LEN + 32];
    body[0] = LP2P__PAIR_MSG_HELLO;
    memcpy(body + 1, s->sid, LP2P__PAIR_SID_LEN);
    memcpy(body + 1 + LP2P__PAIR_SID_LEN, s->tag, LP2P__PAIR_TAG_LEN);
    memcpy(body + 1 + LP2P__PAIR_SID_LEN + LP2P__PAIR_TAG_LEN, s->Ya, 32);
    if (queue(s, body, sizeof body) < 0) goto bad;
    s->state = LP2P__PAIR_S_WAIT_SHARE;
  } else {
    s->state = LP2P__PAIR_S_WAIT_HELLO;
  }
  return s;
bad:
  lp2p__pair_session_free(s);
  return NULL;
}

void lp2p__pair_session_free(lp2p__pair_session *s) {
  if (!s) return;
  sodium_memzero(s, sizeof *s);
  free(s);
}

int lp2p__pair_session_input(lp2p__pair_session *s, const uint8_t *data, size_t len,
                             lp2p_tstamp now) {
  if (!s) return LP2P_ERR_INVAL;
  lp2p__pair_session_tick(s, now);
  while (len > 0) {
    if (s->state == LP2P__PAIR_S_FAILED || s->state == LP2P__PAIR_S_PAIRED) return LP2P_ERR_STATE;
    size_t need;
    if (s->in_len < 2) {
      need = 2 - s->in_len;
    } else {
      size_t body = (size_t)s->in[0] << 8 | s->in[1];
      if (body == 0 || body > LP2P__PAIR_MAX_BODY) {
        fail(s, LP2P__PAIR_FAIL_PROTOCOL, 1);
        return 0;
      }
      need = 2 + body - s->in_len;
    }
    size_t take = need < len ? need : len;
    memcpy(s->in + s->in_len, data, take);
    s->in_len += take;
    data += take;
    len -= take;
    if (s->in_len >= 2) {
      size_t body = (size_t)s->in[0] << 8 | s->in[1];
      if (body == 0 || body > LP2P__PAIR_MAX_BODY) {
        fail(s, LP2P__PAIR_FAIL_PROTOCOL, 1);
        return 0;
      }
      if (s->in_len == 2 + body) {
        on_body(s, s->in + 2, body);
        sodium_memzero(s->in, s->in_len);
        s->in_len = 0;
      }
    }
  }
  return 0;
}

void lp2p__pair_session_tick(lp2p__pair_session *s, lp2p_tstamp now) {
  if (s && now >= s->deadline) fail(s, LP2P__PAIR_FAIL_EXPIRED, 1);
}

lp2p_tstamp lp2p__pair_session_deadline(const lp2p__pair_session *s) { return s->deadline; }

const uint8_t *lp2p__pair_session_output(const lp2p__pair_session *s, size_t *len) {
  *len = s->out_len;
  return s->out_len ? s->out : NULL;
}

void lp2p__pair_session_output_done(lp2p__pair_session *s, size_t n) {
  if (n > s->out_len) n = s->out_len;
  memmove(s->out, s->out + n, s->out_len - n);
  s->out_len -= n;
  sodium_memzero(s->out + s->out_len, n);
}

void lp2p__pair_session_closed(lp2p__pair_session *s) {
  if (s) fail(s, LP2P__PAIR_FAIL_PROTOCOL, 0);
}

lp2p__pair_state lp2p__pair_session_state(const lp2p__pair_session *s) { return s->state; }
lp2p__pair_fail lp2p__pair_session_failure(const lp2p__pair_session *s) { return s->fail; }
uint8_t lp2p__pair_session_abort_reason(const lp2p__pair_session *s) { return s->abort_reason; }
int lp2p__pair_session_burns_code(const lp2p__pair_session *s) {
  return s->state == LP2P__PAIR_S_FAILED && s->burn;
}

const lp2p__pair_device_info *lp2p__pair_session_remote_info(const lp2p__pair_session *s) {
  return s->state == LP2P__PAIR_S_PAIRED ? &s->remote : NULL;
}
const uint8_t *lp2p__pair_session_key(const lp2p__pair_session *s) {
  return s->state == LP2P__PAIR_S_PAIRED ? s->session_key : NULL;
}
const char *lp2p__pair_session_sas(const lp2p__pair_session *s) {
  return s->state == LP2P__PAIR_S_PAIRED ? s->sas : NULL;
}
