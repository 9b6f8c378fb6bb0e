/* fuzz/fuzz_gossip_rpc.c - the gossipsub RPC decoder on arbitrary bytes.
 *
 * Input: one RPC body (no length prefix). Checks (abort on failure): the decoder never
 * reads out of bounds (ASan); a decoded RPC respects every default limit; every decoded
 * message's signature check terminates with 0 or LP2P_ERR_SIGNATURE; each message
 * re-encodes through the hand-written encoder and decodes again to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/gossipsub/engine/gossip_rpc.h"

#define BDP(x, h) ((h) ? ((x).data ? (x).data : (const uint8_t *)"") : NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const lp2p_mem *m = lp2p_mem_default();
  lp2p_gs_limits l;
  lp2p_gs_limits_default(&l);
  Lp2pGs__RPC *r = NULL;
  int rv = lp2p_gs_rpc_decode(m, data, size, &l, &r);
  if (rv) {
    if (r) abort();
    return 0;
  }
  if (r->n_publish > l.max_messages || r->n_subscriptions > l.max_subs) abort();
  for (size_t i = 0; i < r->n_publish; i++) {
    const Lp2pGs__Message *pm = r->publish[i];
    int v = lp2p_gs_msg_verify(m, pm);
    if (v != 0 && v != LP2P_ERR_SIGNATURE) abort();
    lp2p_gs_msg_fields f = {0};
    f.from = BDP(pm->from, pm->has_from), f.from_len = pm->from.len;
    f.data = BDP(pm->data, pm->has_data), f.data_len = pm->data.len;
    f.seqno = BDP(pm->seqno, pm->has_seqno), f.seqno_len = pm->seqno.len;
    f.topic = BDP(pm->topic, pm->has_topic), f.topic_len = pm->topic.len;
    f.signature = BDP(pm->signature, pm->has_signature), f.signature_len = pm->signature.len;
    f.key = BDP(pm->key, pm->has_key), f.key_len = pm->key.len;
    lp2p_bytes mb = {0}, rb = {0};
    if (lp2p_gs_msg_encode(m, &f, &mb) || lp2p_gs_pb_ld(m, &rb, 2, mb.data, mb.len)) abort();
    Lp2pGs__RPC *r2 = NULL;
    if (lp2p_gs_rpc_decode(m, rb.data, rb.len, NULL, &r2) || r2->n_publish != 1) abort();
    const Lp2pGs__Message *q = r2->publish[0];
    if (q->data.len != pm->data.len || (q->data.len && memcmp(q->data.data, pm->data.data, q->data.len)) ||
        q->topic.len != pm->topic.len || memcmp(q->topic.data, pm->topic.data, q->topic.len))
      abort();
    lp2p_gs_rpc_free(m, r2);
    lp2p__bytes_free(m, &mb), lp2p__bytes_free(m, &rb);
  }
  lp2p_gs_rpc_free(m, r);
  return 0;
}
