/* kad/engine/kad_codec.c - keyspace helpers and the Message codec (protoc-c, kad.proto). */
#include <sodium.h>
#include <string.h>

#include "core/mem.h"
#include "kad.pb-c.h"
#include "kad/engine/kad_engine.h"
#include "lp2p/encoding.h"

/* ---- keyspace ---------------------------------------------------------------------------- */
void kad_id_from_key(const uint8_t *key, size_t len, kad_id *out) { crypto_hash_sha256(out->b, key, len); }

void kad_id_from_peer(const lp2p_peer_id *p, kad_id *out) { kad_id_from_key(p->bytes, p->len, out); }

void kad_distance(const kad_id *a, const kad_id *b, kad_id *out) {
  for (int i = 0; i < 32; i++) out->b[i] = (uint8_t)(a->b[i] ^ b->b[i]);
}

int kad_cmp_distance(const kad_id *a, const kad_id *b, const kad_id *t) {
  for (int i = 0; i < 32; i++) {
    uint8_t da = (uint8_t)(a->b[i] ^ t->b[i]), db = (uint8_t)(b->b[i] ^ t->b[i]);
    if (da != db) return da < db ? -1 : 1;
  }
  return 0;
}

int kad_cpl(const kad_id *a, const kad_id *b) {
  for (int i = 0; i < 32; i++) {
    uint8_t x = (uint8_t)(a->b[i] ^ b->b[i]);
    if (x) return i * 8 + __builtin_clz((unsigned)x) - 24;
  }
  return 256;
}

/* ---- framing ----------------------------------------------------------------------------- */
size_t kad_frame_prefix(size_t len, uint8_t out[10]) {
  int n = lp2p_uvarint_encode(len, out, 10);
  return n > 0 ? (size_t)n : 0;
}

int kad_frame_parse(const uint8_t *buf, size_t len, size_t *msg_len) {
  uint64_t v = 0;
  int n = lp2p_uvarint_decode(buf, len, &v);
  if (n == LP2P_ERR_AGAIN) return 0;
  if (n < 0) return LP2P_ERR_VARINT;
  if (v > KAD_MSG_MAX) return LP2P_ERR_TOO_LARGE;
  *msg_len = (size_t)v;
  return n;
}

/* ---- pre-scan ---------------------------------------------------------------------------- */
/* Protobuf varint (up to 10 bytes, no minimality rule: that is protobuf's, not multiformats'). */
static int pb_varint(const uint8_t *p, size_t len, uint64_t *v) {
  uint64_t r = 0;
  for (size_t i = 0; i < len && i < 10; i++) {
    r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if (!(p[i] & 0x80)) {
      *v = r;
      return (int)i + 1;
    }
  }
  return -1;
}

/* Walks one message level; counts fields `count_field` (and, when sub != 0, walks each such
 * length-delimited field counting its field `sub`). Returns 0 or -1 on malformed wire data. */
static int pb_scan(const uint8_t *p, size_t len, uint32_t count_a, uint32_t count_b, uint32_t sub,
                   size_t *n_entries, size_t *n_sub) {
  size_t i = 0;
  while (i < len) {
    uint64_t tag, v;
    int n = pb_varint(p + i, len - i, &tag);
    if (n < 0) return -1;
    i += (size_t)n;
    uint32_t field = (uint32_t)(tag >> 3), wt = (uint32_t)(tag & 7);
    switch (wt) {
      case 0:
        if ((n = pb_varint(p + i, len - i, &v)) < 0) return -1;
        i += (size_t)n;
        break;
      case 1:
        if (len - i < 8) return -1;
        i += 8;
        break;
      case 5:
        if (len - i < 4) return -1;
        i += 4;
        break;
      case 2:
        if ((n = pb_varint(p + i, len - i, &v)) < 0) return -1;
        i += (size_t)n;
        if (v > len - i) return -1;
        if (field == count_a || field == count_b) {
          (*n_entries)++;
          if (sub) {
            size_t dummy = 0;
            if (pb_scan(p + i, (size_t)v, sub, sub, 0, n_sub, &dummy) < 0) return -1;
          }
        }
        i += (size_t)v;
        break;
      default:
        return -1;
    }
  }
  return 0;
}

/* ---- decode ------------------------------------------------------------------------------ */
void kad_msg_clear(const lp2p_mem *mem, kad_msg *m) {
  if (!m) return;
  mem = lp2p__mem_or_default(mem);
  kad_peer *lists[2] = {m->closer, m->providers};
  size_t counts[2] = {m->ncloser, m->nproviders};
  for (int l = 0; l < 2; l++) {
    for (size_t i = 0; i < counts[l]; i++) {
      for (size_t j = 0; j < lists[l][i].naddrs; j++) lp2p_multiaddr_free(lists[l][i].addrs[j]);
      lp2p__free(mem, lists[l][i].addrs);
    }
    lp2p__free(mem, lists[l]);
  }
  if (m->priv_) {
    ProtobufCAllocator alloc;
    lp2p__protobuf_allocator(mem, &alloc);
    lp2p_kad__message__free_unpacked((Lp2pKad__Message *)m->priv_, &alloc);
  }
  memset(m, 0, sizeof *m);
}

static int convert_peers(const lp2p_mem *mem, Lp2pKad__Message__Peer **in, size_t n, kad_peer **out,
                         size_t *nout, size_t *dropped) {
  *out = NULL;
  *nout = 0;
  if (!n) return 0;
  kad_peer *arr = lp2p__calloc(mem, n, sizeof *arr);
  if (!arr) return LP2P_ERR_NOMEM;
  size_t k = 0;
  int rv = 0;
  for (size_t i = 0; i < n; i++) {
    Lp2pKad__Message__Peer *p = in[i];
    kad_peer *d = &arr[k];
    if (lp2p_peer_id_from_bytes(p->id.data, p->id.len, &d->id) != 0) {
      (*dropped)++;
      continue;
    }
    d->connection = (p->connection >= 0 && p->connection <= 3) ? (int)p->connection : 0;
    size_t keep = p->n_addrs < KAD_MAX_ADDRS_PER_PEER ? p->n_addrs : KAD_MAX_ADDRS_PER_PEER;
    *dropped += p->n_addrs - keep;
    if (keep) {
      d->addrs = lp2p__calloc(mem, keep, sizeof *d->addrs);
      if (!d->addrs) {
        rv = LP2P_ERR_NOMEM;
        k++;
        break;
      }
      for (size_t j = 0; j < keep; j++) {
        lp2p_multiaddr *ma = NULL;
        int r = lp2p_multiaddr_from_bytes_mem(&ma, p->addrs[j].data, p->addrs[j].len, mem, NULL, 0);
        if (r == LP2P_ERR_NOMEM) {
          rv = r;
          break;
        }
        if (r != 0) {
          (*dropped)++;
          continue;
        }
        d->addrs[d->naddrs++] = ma;
      }
      if (rv) {
        k++;
        break;
      }
    }
    k++;
  }
  *out = arr;
  *nout = k;
  return rv;
}

int kad_msg_decode(const lp2p_mem *mem, const uint8_t *buf, size_t len, kad_msg *out) {
  memset(out, 0, sizeof *out);
  mem = lp2p__mem_or_default(mem);
  if (len > KAD_MSG_MAX) return LP2P_ERR_TOO_LARGE;
  if (len && !buf) return LP2P_ERR_INVAL;
  size_t npeers = 0, naddrs = 0;
  if (pb_scan(buf, len, 8, 9, 2, &npeers, &naddrs) < 0) return LP2P_ERR_PROTO;
  if (npeers > KAD_MAX_PEERS_PER_MSG || naddrs > KAD_MAX_ADDRS_PER_MSG) return LP2P_ERR_LIMIT;
  ProtobufCAllocator alloc;
  lp2p__protobuf_allocator(mem, &alloc);
  Lp2pKad__Message *m = lp2p_kad__message__unpack(&alloc, len, buf);
  if (!m) return LP2P_ERR_PROTO; /* malformed, or out of memory: indistinguishable here */
  out->priv_ = m;
  int rv = LP2P_ERR_PROTO;
  if ((int)m->type < 0 || (int)m->type > 5) goto fail;
  if (m->key.len > KAD_MAX_KEY) goto fail;
  out->type = (int)m->type;
  out->cluster_level = m->clusterlevelraw;
  out->key = m->key.data;
  out->key_len = m->key.len;
  if (m->record) {
    if (m->record->key.len > KAD_MAX_KEY) goto fail;
    out->has_record = 1;
    out->rec_key = m->record->key.data;
    out->rec_key_len = m->record->key.len;
    out->rec_value = m->record->value.data;
    out->rec_value_len = m->record->value.len;
    out->rec_time = (m->record->timereceived && m->record->timereceived[0]) ? m->record->timereceived : NULL;
  }
  if ((rv = convert_peers(mem, m->closerpeers, m->n_closerpeers, &out->closer, &out->ncloser, &out->dropped)))
    goto fail;
  if ((rv = convert_peers(mem, m->providerpeers, m->n_providerpeers, &out->providers, &out->nproviders,
                          &out->dropped)))
    goto fail;
  return 0;
fail:
  kad_msg_clear(mem, out);
  return rv;
}

/* ---- encode ------------------------------------------------------------------------------ */
static int build_peers(const lp2p_mem *mem, const kad_peer *in, size_t n, Lp2pKad__Message__Peer ***out,
                       Lp2pKad__Message__Peer **store, ProtobufCBinaryData **abuf) {
  *out = NULL;
  *store = NULL;
  *abuf = NULL;
  if (!n) return 0;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += in[i].naddrs;
  *out = lp2p__calloc(mem, n, sizeof **out);
  *store = lp2p__calloc(mem, n, sizeof **store);
  *abuf = lp2p__calloc(mem, total ? total : 1, sizeof **abuf);
  if (!*out || !*store || !*abuf) return LP2P_ERR_NOMEM;
  size_t a = 0;
  for (size_t i = 0; i < n; i++) {
    Lp2pKad__Message__Peer *p = &(*store)[i];
    lp2p_kad__message__peer__init(p);
    p->id.data = (uint8_t *)in[i].id.bytes;
    p->id.len = in[i].id.len;
    p->connection = (Lp2pKad__Message__ConnectionType)in[i].connection;
    p->addrs = &(*abuf)[a];
    for (size_t j = 0; j < in[i].naddrs; j++) {
      size_t bl = 0;
      const uint8_t *b = lp2p_multiaddr_bytes(in[i].addrs[j], &bl);
      (*abuf)[a].data = (uint8_t *)b;
      (*abuf)[a].len = bl;
      a++;
    }
    p->n_addrs = in[i].naddrs;
    (*out)[i] = p;
  }
  return 0;
}

int kad_msg_encode(const lp2p_mem *mem, const kad_msg *in, uint8_t **out, size_t *out_len) {
  mem = lp2p__mem_or_default(mem);
  *out = NULL;
  *out_len = 0;
  Lp2pKad__Message m;
  lp2p_kad__message__init(&m);
  Lp2pKad__Record rec;
  lp2p_kad__record__init(&rec);
  m.type = (Lp2pKad__Message__MessageType)in->type;
  m.clusterlevelraw = in->cluster_level;
  m.key.data = (uint8_t *)in->key;
  m.key.len = in->key_len;
  if (in->has_record) {
    rec.key.data = (uint8_t *)in->rec_key;
    rec.key.len = in->rec_key_len;
    rec.value.data = (uint8_t *)in->rec_value;
    rec.value.len = in->rec_value_len;
    rec.timereceived = (char *)(in->rec_time ? in->rec_time : "");
    m.record = &rec;
  }
  Lp2pKad__Message__Peer *cs = NULL, *ps = NULL;
  ProtobufCBinaryData *ca = NULL, *pa = NULL;
  int rv = build_peers(mem, in->closer, in->ncloser, &m.closerpeers, &cs, &ca);
  if (!rv) rv = build_peers(mem, in->providers, in->nproviders, &m.providerpeers, &ps, &pa);
  if (!rv) {
    m.n_closerpeers = in->ncloser;
    m.n_providerpeers = in->nproviders;
    size_t n = lp2p_kad__message__get_packed_size(&m);
    uint8_t *buf = lp2p__malloc(mem, n);
    if (!buf)
      rv = LP2P_ERR_NOMEM;
    else if (lp2p_kad__message__pack(&m, buf) != n) {
      lp2p__free(mem, buf);
      rv = LP2P_ERR_INTERNAL;
    } else {
      *out = buf;
      *out_len = n;
    }
  }
  lp2p__free(mem, m.closerpeers);
  lp2p__free(mem, cs);
  lp2p__free(mem, ca);
  lp2p__free(mem, m.providerpeers);
  lp2p__free(mem, ps);
  lp2p__free(mem, pa);
  return rv;
}
