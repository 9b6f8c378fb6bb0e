/* protocols/identify/identify_codec.c - Identify protobuf encode/decode,
 * merge/push semantics and the varint-framed reader. See identify_int.h. */
#include <stdlib.h>
#include <string.h>

#include "identify.pb-c.h"
#include "lp2p/encoding.h"
#include "lp2p/keys.h"
#include "lp2p/multiaddr.h"
#include "lp2p/peerid.h"
#include "lp2p/lpm.h"
#include "protocols/identify/identify_int.h"
#include "protocols/proto_mem.h"

/* ------------------------------------------------------------------------- */
/* encoding */

static void fill(Lp2pIdentify__Identify *m, const lp2p__identify_fields *f, ProtobufCBinaryData *addrs) {
  lp2p_identify__identify__init(m);
  if (f->public_key) {
    m->has_publickey = 1;
    m->publickey.data = (uint8_t *)f->public_key;
    m->publickey.len = f->public_key_len;
  }
  for (size_t i = 0; i < f->n_listen_addrs; i++) addrs[i].data = (uint8_t *)lp2p_multiaddr_bytes(f->listen_addrs[i], &addrs[i].len);
  m->n_listenaddrs = f->n_listen_addrs;
  m->listenaddrs = addrs;
  m->n_protocols = f->n_protocols;
  m->protocols = (char **)f->protocols;
  if (f->observed_addr) {
    m->has_observedaddr = 1;
    m->observedaddr.data = (uint8_t *)lp2p_multiaddr_bytes(f->observed_addr, &m->observedaddr.len);
  }
  m->protocolversion = (char *)f->protocol_version;
  m->agentversion = (char *)f->agent_version;
  if (f->signed_record) {
    m->has_signedpeerrecord = 1;
    m->signedpeerrecord.data = (uint8_t *)f->signed_record;
    m->signedpeerrecord.len = f->signed_record_len;
  }
}

size_t lp2p__identify_size(const lp2p__identify_fields *f) {
  ProtobufCBinaryData *addrs = calloc(f->n_listen_addrs ? f->n_listen_addrs : 1, sizeof *addrs);
  if (!addrs) return SIZE_MAX;
  Lp2pIdentify__Identify m;
  fill(&m, f, addrs);
  size_t n = lp2p_identify__identify__get_packed_size(&m);
  free(addrs);
  return n;
}

int lp2p__identify_encode(const lp2p__identify_fields *f, uint8_t *out, size_t cap) {
  ProtobufCBinaryData *addrs = calloc(f->n_listen_addrs ? f->n_listen_addrs : 1, sizeof *addrs);
  if (!addrs) return LP2P_ERR_NOMEM;
  Lp2pIdentify__Identify m;
  fill(&m, f, addrs);
  size_t n = lp2p_identify__identify__get_packed_size(&m);
  int rv = LP2P_ERR_BUFSIZE;
  if (n <= cap && n <= INT32_MAX) rv = (int)lp2p_identify__identify__pack(&m, out);
  free(addrs);
  return rv;
}

/* ------------------------------------------------------------------------- */
/* state */

static const lp2p_mem *SM(const lp2p__identify_state *st) { return st->mem ? st->mem : lp2p_mem_default(); }

void lp2p__identify_state_init(lp2p__identify_state *st) { memset(st, 0, sizeof *st); }
void lp2p__identify_state_init_mem(lp2p__identify_state *st, const lp2p_mem *mem) {
  memset(st, 0, sizeof *st);
  st->mem = mem;
}

static void free_protocols(lp2p__identify_state *st) {
  for (size_t i = 0; i < st->n_protocols; i++) lp2p__pm_free(SM(st), st->protocols[i]);
  lp2p__pm_free(SM(st), st->protocols);
  st->protocols = NULL;
  st->n_protocols = 0;
}

static void free_listen(lp2p__identify_state *st) {
  for (size_t i = 0; i < st->n_listen; i++) lp2p_multiaddr_free(st->listen[i]);
  lp2p__pm_free(SM(st), st->listen);
  st->listen = NULL;
  st->n_listen = 0;
}

void lp2p__identify_state_clear(lp2p__identify_state *st) {
  const lp2p_mem *m = st->mem;
  lp2p_pubkey_free(st->key);
  lp2p__pm_free(SM(st), st->protocol_version);
  lp2p__pm_free(SM(st), st->agent_version);
  free_protocols(st);
  free_listen(st);
  lp2p_multiaddr_free(st->observed);
  lp2p__pm_free(SM(st), st->record);
  memset(st, 0, sizeof *st);
  st->mem = m;
}

/* A multiaddr from the wire without a trailing /p2p (NULL if unparsable). */
static lp2p_multiaddr *wire_addr(const uint8_t *p, size_t n) {
  lp2p_multiaddr *ma = NULL;
  if (!n || n > LP2P_MULTIADDR_MAX_LEN || lp2p_multiaddr_from_bytes(&ma, p, n, NULL, 0) < 0) return NULL;
  size_t cnt = lp2p_multiaddr_count(ma);
  uint32_t code = 0;
  if (cnt > 0 && lp2p_multiaddr_component(ma, cnt - 1, &code, NULL, NULL) == 0 && code == LP2P_MA_P2P) {
    lp2p_multiaddr *bare = NULL;
    if (cnt > 1) lp2p_multiaddr_prefix(&bare, ma, cnt - 1);
    lp2p_multiaddr_free(ma);
    ma = bare;
  }
  return ma;
}

static char *dup_limited(const lp2p__identify_state *st, const char *s) {
  if (!s) return NULL;
  size_t n = strnlen(s, LP2P_IDENTIFY_MAX_VERSION + 1);
  if (n > LP2P_IDENTIFY_MAX_VERSION) n = LP2P_IDENTIFY_MAX_VERSION;
  char *d = lp2p__pm_malloc(SM(st), n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

int lp2p__identify_merge(lp2p__identify_state *st, const uint8_t *msg, size_t len) {
  if (len > LP2P_IDENTIFY_MAX_MESSAGE) return LP2P_ERR_TOO_LARGE;
  Lp2pIdentify__Identify *m = lp2p_identify__identify__unpack(NULL, len, msg);
  if (!m) return LP2P_ERR_PROTO;
  int rv = 0;
  if (m->has_publickey) {
    lp2p_pubkey *k = NULL;
    if ((rv = lp2p_pubkey_from_protobuf(&k, m->publickey.data, m->publickey.len)) < 0) {
      rv = rv == LP2P_ERR_NOMEM ? rv : LP2P_ERR_KEY;
      goto out;
    }
    lp2p_pubkey_free(st->key);
    st->key = k;
    st->has_key = 1;
  }
  if (m->protocolversion) {
    char *d = dup_limited(st, m->protocolversion);
    if (!d) goto oom;
    lp2p__pm_free(SM(st), st->protocol_version);
    st->protocol_version = d;
    st->has_pv = 1;
  }
  if (m->agentversion) {
    char *d = dup_limited(st, m->agentversion);
    if (!d) goto oom;
    lp2p__pm_free(SM(st), st->agent_version);
    st->agent_version = d;
    st->has_av = 1;
  }
  if (m->has_observedaddr) {
    lp2p_multiaddr *ma = wire_addr(m->observedaddr.data, m->observedaddr.len);
    lp2p_multiaddr_free(st->observed);
    st->observed = ma; /* NULL if unparsable */
    st->has_observed = 1;
  }
  if (m->has_signedpeerrecord) {
    uint8_t *r = lp2p__pm_malloc(SM(st), m->signedpeerrecord.len ? m->signedpeerrecord.len : 1);
    if (!r) goto oom;
    /* an empty field comes with data == NULL: no memcpy from NULL */
    if (m->signedpeerrecord.len) memcpy(r, m->signedpeerrecord.data, m->signedpeerrecord.len);
    lp2p__pm_free(SM(st), st->record);
    st->record = r;
    st->record_len = m->signedpeerrecord.len;
    st->has_record = 1;
  }
  st->n_protocols_seen += (int)(m->n_protocols > INT32_MAX / 2 ? INT32_MAX / 2 : m->n_protocols);
  for (size_t i = 0; i < m->n_protocols && st->n_protocols < LP2P_IDENTIFY_MAX_PROTOCOLS; i++) {
    const char *p = m->protocols[i];
    size_t n = p ? strlen(p) : 0;
    if (!n || n > LP2P_PROTOCOL_ID_MAX) continue;
    int dup = 0;
    for (size_t j = 0; j < st->n_protocols && !dup; j++) dup = !strcmp(st->protocols[j], p);
    if (dup) continue;
    char **np = lp2p__pm_realloc(SM(st), st->protocols, (st->n_protocols + 1) * sizeof *np);
    if (!np) goto oom;
    st->protocols = np;
    if (!(np[st->n_protocols] = lp2p__pm_strdup(SM(st), p))) goto oom;
    st->n_protocols++;
  }
  st->n_listen_seen += (int)(m->n_listenaddrs > INT32_MAX / 2 ? INT32_MAX / 2 : m->n_listenaddrs);
  for (size_t i = 0; i < m->n_listenaddrs && st->n_listen < LP2P_IDENTIFY_MAX_ADDRS; i++) {
    lp2p_multiaddr *ma = wire_addr(m->listenaddrs[i].data, m->listenaddrs[i].len);
    if (!ma) continue;
    int dup = 0;
    for (size_t j = 0; j < st->n_listen && !dup; j++) dup = lp2p_multiaddr_equal(st->listen[j], ma);
    lp2p_multiaddr **nl = dup ? NULL : lp2p__pm_realloc(SM(st), st->listen, (st->n_listen + 1) * sizeof *nl);
    if (!nl) {
      lp2p_multiaddr_free(ma);
      if (dup) continue;
      goto oom;
    }
    st->listen = nl;
    nl[st->n_listen++] = ma;
  }
  goto out;
oom:
  rv = LP2P_ERR_NOMEM;
out:
  lp2p_identify__identify__free_unpacked(m, NULL);
  return rv;
}

void lp2p__identify_state_view(lp2p__identify_state *st, const lp2p_peer_id *peer) {
  lp2p_identify_info *i = &st->info;
  memset(i, 0, sizeof *i);
  i->struct_size = sizeof *i;
  if (peer) i->peer = *peer;
  i->public_key = st->key;
  i->protocol_version = st->protocol_version;
  i->agent_version = st->agent_version;
  i->protocols = (const char *const *)st->protocols;
  i->n_protocols = st->n_protocols;
  i->listen_addrs = (const lp2p_multiaddr *const *)st->listen;
  i->n_listen_addrs = st->n_listen;
  i->observed_addr = st->observed;
  i->signed_record = st->record_ok;
  i->record_seq = st->record_ok ? st->record_seq : 0;
}

/* rust-libp2p 0.57's identify signs its PeerRecord with the legacy domain "libp2p-routing-state"
 * and payload type "/libp2p/routing-state-record" (rust-libp2p#6204) instead of the standard
 * "libp2p-peer-record" / 0x0301. The payload is the same PeerRecord, signed by the peer: opened
 * here with the same checks (signature, record peer id == signer == peer) and the same outputs
 * as lp2p_peer_record_open. */
static int legacy_record_open(const uint8_t *env, size_t len, const lp2p_peer_id *peer, uint64_t *seq,
                              lp2p_multiaddr ***addrs, size_t *n, size_t max) {
  static const char type[] = "/libp2p/routing-state-record";
  lp2p_peer_id signer, rec_peer;
  uint8_t *payload = NULL;
  size_t plen = 0;
  int rv = lp2p_envelope_open(env, len, "libp2p-routing-state", (const uint8_t *)type, sizeof type - 1, &signer,
                              &payload, &plen);
  if (rv < 0) return rv;
  rv = lp2p_peer_record_decode(payload, plen, &rec_peer, seq, addrs, n, max);
  free(payload);
  if (rv < 0) return rv;
  if (!lp2p_peer_id_equal(&rec_peer, &signer) || !lp2p_peer_id_equal(&signer, peer)) {
    lp2p_peer_record_addrs_free(*addrs, *n);
    *addrs = NULL;
    *n = 0;
    return LP2P_ERR_PEER_ID_MISMATCH;
  }
  return 0;
}

int lp2p__identify_validate(lp2p__identify_state *st, const lp2p_peer_id *peer, int require_key) {
  if (st->key) {
    if (!lp2p_peer_id_matches(peer, st->key)) return LP2P_ERR_PEER_ID_MISMATCH;
  } else if (require_key) {
    return LP2P_ERR_KEY;
  }
  if (st->has_record) {
    uint64_t seq = 0;
    lp2p_multiaddr **addrs = NULL;
    size_t n = 0;
    int rv = lp2p_peer_record_open(st->record, st->record_len, peer, NULL, &seq, &addrs,
                                    &n, LP2P_IDENTIFY_MAX_ADDRS);
    if (rv == LP2P_ERR_PROTO) /* not the standard type: maybe rust-libp2p's legacy record */
      rv = legacy_record_open(st->record, st->record_len, peer, &seq, &addrs, &n, LP2P_IDENTIFY_MAX_ADDRS);
    if (rv < 0) return rv;
    /* the signed addresses are authoritative: add those not listed yet */
    for (size_t i = 0; i < n; i++) {
      int dup = 0;
      for (size_t j = 0; j < st->n_listen && !dup; j++) dup = lp2p_multiaddr_equal(st->listen[j], addrs[i]);
      lp2p_multiaddr **nl = NULL;
      if (!dup && st->n_listen < LP2P_IDENTIFY_MAX_ADDRS &&
          (nl = lp2p__pm_realloc(SM(st), st->listen, (st->n_listen + 1) * sizeof *nl))) {
        st->listen = nl;
        nl[st->n_listen++] = addrs[i];
        addrs[i] = NULL;
      }
      lp2p_multiaddr_free(addrs[i]);
    }
    free(addrs); /* lp2p__peer_record_open's array: libc */
    st->record_ok = 1;
    st->record_seq = seq;
  }
  lp2p__identify_state_view(st, peer);
  return 0;
}

#define MOVE(field) \
  do {              \
    dst->field = src->field; \
    src->field = 0; \
  } while (0)

void lp2p__identify_apply(lp2p__identify_state *dst, lp2p__identify_state *src) {
  if (src->key) {
    lp2p_pubkey_free(dst->key);
    MOVE(key);
  }
  if (src->has_pv) {
    lp2p__pm_free(SM(dst), dst->protocol_version);
    MOVE(protocol_version);
  }
  if (src->has_av) {
    lp2p__pm_free(SM(dst), dst->agent_version);
    MOVE(agent_version);
  }
  if (src->has_observed) {
    lp2p_multiaddr_free(dst->observed);
    MOVE(observed);
  }
  if (src->n_protocols_seen) {
    free_protocols(dst);
    MOVE(protocols);
    MOVE(n_protocols);
  }
  if (src->n_listen_seen || src->record_ok) {
    free_listen(dst);
    MOVE(listen);
    MOVE(n_listen);
  }
  if (src->record_ok) {
    lp2p__pm_free(SM(dst), dst->record);
    MOVE(record);
    MOVE(record_len);
    dst->has_record = 1;
    dst->record_ok = 1;
    dst->record_seq = src->record_seq;
  }
  lp2p_identify_info info = dst->info;
  lp2p__identify_state_clear(src);
  lp2p__identify_state_view(dst, &info.peer);
}

/* ------------------------------------------------------------------------- */
/* framing */

/* Framing is lp2p/lpm.h; this adds the merge and the per-stream message limit. */
int lp2p__identify_reader_feed(lp2p__identify_reader *r, lp2p__identify_state *st, const uint8_t *p, size_t n) {
  if (!r->lpm) {
    int rv = lp2p_lpm_reader_new(&r->lpm, LP2P_IDENTIFY_MAX_MESSAGE, r->mem);
    if (rv < 0) return rv;
  }
  while (n) {
    size_t used;
    const uint8_t *m;
    size_t mlen;
    int rv = lp2p_lpm_read(r->lpm, p, n, &used, &m, &mlen);
    if (rv < 0) return rv == LP2P_ERR_PROTO ? LP2P_ERR_VARINT : rv; /* a bad length prefix */
    p += used;
    n -= used;
    if (rv == 0) break;
    if (++r->messages > LP2P_IDENTIFY_MAX_MESSAGES) return LP2P_ERR_LIMIT;
    if ((rv = lp2p__identify_merge(st, m, mlen)) < 0) return rv;
  }
  return 0;
}

int lp2p__identify_reader_end(const lp2p__identify_reader *r) {
  if (r->lpm && lp2p_lpm_reader_pending(r->lpm)) return LP2P_ERR_PROTO;
  return r->messages ? 0 : LP2P_ERR_EOF;
}

void lp2p__identify_reader_free(lp2p__identify_reader *r) {
  const lp2p_mem *m = r->mem;
  lp2p_lpm_reader_free(r->lpm);
  memset(r, 0, sizeof *r);
  r->mem = m;
}

/* ---- memory held (resource charges) ---- */

#define ID_ALLOC_OVH 16u /* allocator header per block */
#define ID_MA_OBJ 64u    /* a multiaddr object beside its bytes */

static size_t ma_mem(const lp2p_multiaddr *ma) {
  size_t n = 0;
  if (!ma) return 0;
  lp2p_multiaddr_bytes(ma, &n);
  return n + ID_MA_OBJ + ID_ALLOC_OVH;
}

size_t lp2p__identify_state_memory(const lp2p__identify_state *st) {
  size_t m = 0;
  if (st->key) m += LP2P_PUBKEY_PB_MAX + 2 * ID_ALLOC_OVH;
  if (st->protocol_version) m += strlen(st->protocol_version) + 1 + ID_ALLOC_OVH;
  if (st->agent_version) m += strlen(st->agent_version) + 1 + ID_ALLOC_OVH;
  if (st->protocols) m += st->n_protocols * 2 * sizeof(char *) + ID_ALLOC_OVH; /* the array may be twice n */
  for (size_t i = 0; i < st->n_protocols; i++) m += strlen(st->protocols[i]) + 1 + ID_ALLOC_OVH;
  if (st->listen) m += st->n_listen * 2 * sizeof(lp2p_multiaddr *) + ID_ALLOC_OVH;
  for (size_t i = 0; i < st->n_listen; i++) m += ma_mem(st->listen[i]);
  m += ma_mem(st->observed);
  if (st->record) m += st->record_len + ID_ALLOC_OVH;
  return m;
}

size_t lp2p__identify_reader_memory(const lp2p__identify_reader *r) {
  return r->lpm ? lp2p_lpm_reader_pending(r->lpm) + 64 + 2 * ID_ALLOC_OVH : 0;
}
