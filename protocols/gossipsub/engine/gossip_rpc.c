/* protocols/gossipsub/engine/gossip_rpc.c - RPC decoding with limits, hand-written
 * encoding, StrictSign signing and verification. See gossip_rpc.h. */
#include "gossip_rpc.h"

#include <string.h>

#include "lp2p/encoding.h"

void lp2p_gs_limits_default(lp2p_gs_limits *l) {
  l->max_rpc_size = 1 << 20;
  l->max_subs = 1024;
  l->max_messages = 256;
  l->max_topic_len = 256;
  l->max_control = 1024;
  l->max_ids = 5000;
  l->max_px = 16;
}

int lp2p_gs_topic_check(const uint8_t *t, size_t len, size_t max) {
  if (!t || len == 0 || len > max || memchr(t, 0, len)) return LP2P_ERR_PROTO;
  return 0;
}

static int check_rpc(const Lp2pGs__RPC *r, const lp2p_gs_limits *l) {
  if (r->n_subscriptions > l->max_subs || r->n_publish > l->max_messages) return LP2P_ERR_LIMIT;
  for (size_t i = 0; i < r->n_subscriptions; i++) {
    const Lp2pGs__RPC__SubOpts *s = r->subscriptions[i];
    if (!s->has_topicid || lp2p_gs_topic_check(s->topicid.data, s->topicid.len, l->max_topic_len))
      return LP2P_ERR_PROTO;
  }
  for (size_t i = 0; i < r->n_publish; i++) {
    const Lp2pGs__Message *m = r->publish[i];
    if (!m->has_topic || lp2p_gs_topic_check(m->topic.data, m->topic.len, l->max_topic_len))
      return LP2P_ERR_PROTO;
  }
  const Lp2pGs__ControlMessage *c = r->control;
  if (!c) return 0;
  size_t n = c->n_ihave + c->n_iwant + c->n_graft + c->n_prune + c->n_idontwant;
  if (n > l->max_control) return LP2P_ERR_LIMIT;
  size_t ids = 0;
  for (size_t i = 0; i < c->n_ihave; i++) {
    const Lp2pGs__ControlIHave *h = c->ihave[i];
    if (!h->has_topicid || lp2p_gs_topic_check(h->topicid.data, h->topicid.len, l->max_topic_len))
      return LP2P_ERR_PROTO;
    ids += h->n_messageids;
  }
  for (size_t i = 0; i < c->n_iwant; i++) ids += c->iwant[i]->n_messageids;
  for (size_t i = 0; i < c->n_idontwant; i++) ids += c->idontwant[i]->n_messageids;
  if (ids > l->max_ids) return LP2P_ERR_LIMIT;
  for (size_t i = 0; i < c->n_graft; i++) {
    const Lp2pGs__ControlGraft *g = c->graft[i];
    if (!g->has_topicid || lp2p_gs_topic_check(g->topicid.data, g->topicid.len, l->max_topic_len))
      return LP2P_ERR_PROTO;
  }
  for (size_t i = 0; i < c->n_prune; i++) {
    const Lp2pGs__ControlPrune *p = c->prune[i];
    if (!p->has_topicid || lp2p_gs_topic_check(p->topicid.data, p->topicid.len, l->max_topic_len))
      return LP2P_ERR_PROTO;
    if (p->n_peers > l->max_px) return LP2P_ERR_LIMIT;
  }
  return 0;
}

int lp2p_gs_rpc_decode(const lp2p_mem *m, const uint8_t *buf, size_t len, const lp2p_gs_limits *lim,
                       Lp2pGs__RPC **out) {
  lp2p_gs_limits d;
  if (!lim) lp2p_gs_limits_default(&d), lim = &d;
  *out = NULL;
  if (len > lim->max_rpc_size) return LP2P_ERR_TOO_LARGE;
  m = lp2p__mem_or_default(m);
  ProtobufCAllocator a;
  lp2p__protobuf_allocator(m, &a);
  Lp2pGs__RPC *r = lp2p_gs__rpc__unpack(&a, len, buf);
  if (!r) return LP2P_ERR_PARSE; /* malformed, or allocation failure inside protobuf-c */
  int rv = check_rpc(r, lim);
  if (rv) {
    lp2p_gs__rpc__free_unpacked(r, &a);
    return rv;
  }
  *out = r;
  return 0;
}

void lp2p_gs_rpc_free(const lp2p_mem *m, Lp2pGs__RPC *rpc) {
  if (!rpc) return;
  ProtobufCAllocator a;
  lp2p__protobuf_allocator(lp2p__mem_or_default(m), &a);
  lp2p_gs__rpc__free_unpacked(rpc, &a);
}

/* ---- writing ---- */
static int put_uv(const lp2p_mem *m, lp2p_bytes *b, uint64_t v) {
  uint8_t tmp[10];
  int n = lp2p_uvarint_encode(v, tmp, sizeof tmp);
  if (n < 0) return n;
  return lp2p__bytes_append(m, b, tmp, (size_t)n);
}

int lp2p_gs_pb_varint(const lp2p_mem *m, lp2p_bytes *b, uint32_t field, uint64_t v) {
  if (v > (UINT64_MAX >> 1)) v = UINT64_MAX >> 1; /* lp2p varints carry 63 bits */
  int rv = put_uv(m, b, (uint64_t)field << 3);
  return rv ? rv : put_uv(m, b, v);
}

int lp2p_gs_pb_ld(const lp2p_mem *m, lp2p_bytes *b, uint32_t field, const void *p, size_t n) {
  int rv = put_uv(m, b, ((uint64_t)field << 3) | 2);
  if (!rv) rv = put_uv(m, b, n);
  if (!rv && n) rv = lp2p__bytes_append(m, b, p, n);
  return rv;
}

int lp2p_gs_msg_encode(const lp2p_mem *m, const lp2p_gs_msg_fields *f, lp2p_bytes *out) {
  int rv = 0;
  if (!rv && f->from) rv = lp2p_gs_pb_ld(m, out, 1, f->from, f->from_len);
  if (!rv && f->data) rv = lp2p_gs_pb_ld(m, out, 2, f->data, f->data_len);
  if (!rv && f->seqno) rv = lp2p_gs_pb_ld(m, out, 3, f->seqno, f->seqno_len);
  if (!rv && f->topic) rv = lp2p_gs_pb_ld(m, out, 4, f->topic, f->topic_len);
  if (!rv && f->signature) rv = lp2p_gs_pb_ld(m, out, 5, f->signature, f->signature_len);
  if (!rv && f->key) rv = lp2p_gs_pb_ld(m, out, 6, f->key, f->key_len);
  return rv;
}

static int signing_bytes(const lp2p_mem *m, const lp2p_gs_msg_fields *f, lp2p_bytes *sb) {
  lp2p_gs_msg_fields u = *f;
  u.signature = u.key = NULL;
  int rv = lp2p__bytes_append(m, sb, LP2P_GS_SIGN_PREFIX, sizeof LP2P_GS_SIGN_PREFIX - 1);
  return rv ? rv : lp2p_gs_msg_encode(m, &u, sb);
}

int lp2p_gs_msg_sign_encode(const lp2p_mem *m, const lp2p_privkey *k, const lp2p_gs_msg_fields *f,
                            lp2p_bytes *out) {
  m = lp2p__mem_or_default(m);
  const lp2p_pubkey *pub = lp2p_privkey_public(k);
  lp2p_peer_id id;
  int rv = lp2p_peer_id_from_pubkey(pub, &id);
  if (rv) return rv;
  lp2p_gs_msg_fields g = *f;
  g.from = id.bytes, g.from_len = id.len;
  uint8_t keypb[2048];
  g.key = NULL;
  lp2p_pubkey *inl = NULL;
  if (lp2p_peer_id_extract_pubkey(&id, &inl) == 0) {
    lp2p_pubkey_free(inl);
  } else {
    int n = lp2p_pubkey_to_protobuf(pub, keypb, sizeof keypb);
    if (n < 0) return n;
    g.key = keypb, g.key_len = (size_t)n;
  }
  lp2p_bytes sb = {0};
  rv = signing_bytes(m, &g, &sb);
  uint8_t sig[1100];
  int sn = rv ? rv : lp2p_privkey_sign(k, sb.data, sb.len, sig, sizeof sig);
  lp2p__bytes_free(m, &sb);
  if (sn < 0) return sn;
  g.signature = sig, g.signature_len = (size_t)sn;
  return lp2p_gs_msg_encode(m, &g, out);
}

#define BD(x) ((x).data ? (x).data : (const uint8_t *)"")

int lp2p_gs_msg_verify(const lp2p_mem *m, const Lp2pGs__Message *msg) {
  m = lp2p__mem_or_default(m);
  if (!msg->has_from || !msg->has_seqno || !msg->has_signature || !msg->has_topic) return LP2P_ERR_SIGNATURE;
  lp2p_peer_id id;
  if (lp2p_peer_id_from_bytes(msg->from.data, msg->from.len, &id)) return LP2P_ERR_SIGNATURE;
  lp2p_pubkey *k = NULL;
  if (msg->has_key) {
    if (lp2p_pubkey_from_protobuf(&k, msg->key.data, msg->key.len)) return LP2P_ERR_SIGNATURE;
    if (!lp2p_peer_id_matches(&id, k)) {
      lp2p_pubkey_free(k);
      return LP2P_ERR_SIGNATURE;
    }
  } else if (lp2p_peer_id_extract_pubkey(&id, &k)) {
    return LP2P_ERR_SIGNATURE;
  }
  lp2p_gs_msg_fields f = {0};
  f.from = BD(msg->from), f.from_len = msg->from.len;
  if (msg->has_data) f.data = BD(msg->data), f.data_len = msg->data.len;
  f.seqno = BD(msg->seqno), f.seqno_len = msg->seqno.len;
  f.topic = BD(msg->topic), f.topic_len = msg->topic.len;
  lp2p_bytes sb = {0};
  int rv = signing_bytes(m, &f, &sb);
  if (!rv) rv = lp2p_pubkey_verify(k, sb.data, sb.len, msg->signature.data, msg->signature.len);
  lp2p__bytes_free(m, &sb);
  lp2p_pubkey_free(k);
  if (rv == LP2P_ERR_NOMEM) return rv;
  return rv ? LP2P_ERR_SIGNATURE : 0;
}
