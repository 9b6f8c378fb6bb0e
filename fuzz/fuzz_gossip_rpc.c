/* fuzz/fuzz_gossip_rpc.c - the gossipsub RPC decoder on arbitrary bytes.
 *
 * Input: one mode byte, then one RPC body (no length prefix). Mode bit 0: also feed the
 * body to a router (joined to "news", two v1.1 peers, the body arriving from the first,
 * then two heartbeats) and check that every RPC it emits is length-prefixed and decodes
 * under the default limits. Checks (abort on failure): the decoder never
 * reads out of bounds (ASan); a decoded RPC respects every default limit; every decoded
 * message's signature check terminates with 0 or LP2P_ERR_SIGNATURE; each message
 * re-encodes through the hand-written encoder and decodes again to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/encoding.h"
#include "protocols/gossipsub/engine/gossip_router.h"

#define BDP(x, h) ((h) ? ((x).data ? (x).data : (const uint8_t *)"") : NULL)

static int frng(void *ud, uint8_t *buf, size_t n) {
  uint32_t *x = ud;
  for (size_t i = 0; i < n; i++) {
    *x ^= *x << 13, *x ^= *x >> 17, *x ^= *x << 5;
    buf[i] = (uint8_t)(*x >> 11);
  }
  return 0;
}

static void drive_router(const uint8_t *data, size_t size) {
  static lp2p_privkey *k[3];
  static lp2p_peer_id id[3];
  if (!k[0])
    for (int i = 0; i < 3; i++) {
      uint8_t seed[32] = {(uint8_t)(i + 1)};
      if (lp2p_privkey_from_ed25519_seed(&k[i], seed) || lp2p_peer_id_from_pubkey(lp2p_privkey_public(k[i]), &id[i]))
        abort();
    }
  uint32_t rs = 42;
  lp2p_gs_config c;
  lp2p_gs_config_default(&c);
  c.key = k[0], c.rng = frng, c.rng_ud = &rs;
  lp2p_gs *g = NULL;
  if (lp2p_gs_new(&g, &c, 0)) abort();
  lp2p_gs_add_peer(g, &id[1], LP2P_GS_PROTO_V11, 1, 0);
  lp2p_gs_add_peer(g, &id[2], LP2P_GS_PROTO_V10, 0, 0);
  lp2p_gs_subscribe(g, (const uint8_t *)"news", 4, 0);
  lp2p_gs_handle_rpc(g, &id[1], data, size, 10);
  lp2p_gs_tick(g, 1000);
  lp2p_gs_handle_rpc(g, &id[1], data, size, 1500);
  lp2p_gs_tick(g, 2000);
  lp2p_gs_event ev;
  while (lp2p_gs_poll(g, &ev)) {
    if (ev.type != LP2P_GS_EV_SEND) continue;
    uint64_t len;
    int pre = lp2p_uvarint_decode(ev.data, ev.len, &len);
    if (pre <= 0 || (size_t)pre + len != ev.len) abort();
    Lp2pGs__RPC *r = NULL;
    if (lp2p_gs_rpc_decode(NULL, ev.data + pre, (size_t)len, NULL, &r)) abort();
    lp2p_gs_rpc_free(NULL, r);
  }
  lp2p_gs_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const lp2p_mem *m = lp2p_mem_default();
  if (size < 1) return 0;
  uint8_t mode = data[0];
  data++, size--;
  if (mode & 1) drive_router(data, size);
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
