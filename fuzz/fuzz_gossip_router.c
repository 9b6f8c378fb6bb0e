/* fuzz/fuzz_gossip_router.c - the gossipsub router driven by a fuzzed sequence of operations.
 *
 * Input: one config byte (bit 0 scoring, bit 1 flood publishing, bit 2 content message ids,
 * bit 3 a validator that rejects data starting with 'x' and ignores 'y', bit 4 hold_forwards,
 * bit 5 IDONTWANT for every message: threshold 1 byte), then operations until the input ends
 * (op = byte % 9):
 *   0 RPC body from peer (byte % 4) of length (2 bytes LE, clipped to what is left)
 *   1 time passes: byte * 37 ms, then lp2p_gs_tick
 *   2 publish to topic (byte % 3) a payload of (byte % 16) bytes taken from the input
 *   3 subscribe / 4 unsubscribe topic (byte % 3)
 *   5 add peer (byte % 4; bit 2 outbound, bit 3 /meshsub/1.0.0, else bit 4 /meshsub/1.2.0, else
 *     1.1.0) / 6 remove peer (byte % 4)
 *   7 a validly signed message (author byte % 5: the 4 peers or ourselves, sent by peer
 *     (byte >> 4) % 4, topic, seqno byte, payload byte), so that delivery, forwarding,
 *     duplicates, IHAVE/IWANT and the score counters are reached.
 *   8 lp2p_gs_flush_forwards (the held forwards go out)
 * Checks (abort): every SEND is one length-prefixed RPC that decodes under the default
 * limits; an urgent SEND holds IDONTWANT ids and nothing else; no forward is held without
 * hold_forwards, none after a flush or a tick; every DELIVER is for a joined topic and never our own message; a message id is
 * delivered at most once while it is in the seen cache (the run is shorter than seen TTL);
 * the mesh of a topic never holds more peers than the router knows; ASan/UBSan clean. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/encoding.h"
#include "protocols/gossipsub/engine/gossip_router.h"

#define NPEER 4
static const char *const topics[3] = {"news", "chat", "a/b"};

static int frng(void *ud, uint8_t *buf, size_t n) {
  uint32_t *x = ud;
  for (size_t i = 0; i < n; i++) {
    *x ^= *x << 13, *x ^= *x >> 17, *x ^= *x << 5;
    buf[i] = (uint8_t)(*x >> 11);
  }
  return 0;
}
static int content_id(void *ud, const lp2p_gs_message *m, uint8_t *out, size_t cap) {
  (void)ud;
  if (cap < LP2P_SHA256_LEN) return -1;
  lp2p_sha256(m->data, m->data_len, out);
  return LP2P_SHA256_LEN;
}
static lp2p_gs_verdict validate(void *ud, const lp2p_peer_id *src, const lp2p_gs_message *m) {
  (void)ud, (void)src;
  if (m->data_len && m->data[0] == 'x') return LP2P_GS_REJECT;
  if (m->data_len && m->data[0] == 'y') return LP2P_GS_IGNORE;
  return LP2P_GS_ACCEPT;
}

/* Op 7's RPCs, signed once and kept: Ed25519 signatures are deterministic, so a cached RPC is the
 * same bytes as a fresh one (the router still verifies every message it has not seen). Signing
 * was a large share of the time per input. Direct-mapped, keyed by (author, topic, seqno bytes,
 * payload byte). */
#define SIGCACHE 8192
static struct {
  uint32_t key;
  int used;
  lp2p_bytes rpc;
} sigcache[SIGCACHE];
static const lp2p_bytes *signed_rpc(const lp2p_privkey *key, uint8_t author, uint8_t t, uint8_t seq6, uint8_t seq7,
                                    uint8_t pl0) {
  uint32_t kk = (uint32_t)author | (uint32_t)t << 3 | (uint32_t)seq7 << 5 | (uint32_t)seq6 << 6 | (uint32_t)pl0 << 14;
  uint32_t slot = (kk * 2654435761u) >> 19; /* 13 bits */
  const lp2p_mem *m = lp2p_mem_default();
  if (sigcache[slot].used && sigcache[slot].key == kk) return &sigcache[slot].rpc;
  if (sigcache[slot].used) lp2p__bytes_free(m, &sigcache[slot].rpc);
  uint8_t seq[8] = {0, 0, 0, 0, 0, 0, seq6, seq7};
  uint8_t pl[2] = {pl0, (uint8_t)'!'};
  lp2p_gs_msg_fields f = {0};
  f.data = pl, f.data_len = 2, f.seqno = seq, f.seqno_len = 8;
  f.topic = (const uint8_t *)topics[t], f.topic_len = strlen(topics[t]);
  lp2p_bytes msg = {0}, rpc = {0};
  if (lp2p_gs_msg_sign_encode(m, key, &f, &msg) || lp2p_gs_pb_ld(m, &rpc, 2, msg.data, msg.len)) abort();
  lp2p__bytes_free(m, &msg);
  sigcache[slot].key = kk, sigcache[slot].used = 1, sigcache[slot].rpc = rpc;
  return &sigcache[slot].rpc;
}

#define MAXSEEN 512
static uint8_t seen_ids[MAXSEEN][64];
static size_t seen_len[MAXSEEN], nseen;

static int check_dups; /* only while the run is shorter than the seen TTL */

static void drain(lp2p_gs *g, const lp2p_peer_id *self, const int *joined) {
  lp2p_gs_event ev;
  while (lp2p_gs_poll(g, &ev)) {
    if (ev.type == LP2P_GS_EV_SEND) {
      uint64_t len;
      int pre = lp2p_uvarint_decode(ev.data, ev.len, &len);
      if (pre <= 0 || (size_t)pre + len != ev.len) abort();
      Lp2pGs__RPC *r = NULL;
      if (lp2p_gs_rpc_decode(NULL, ev.data + pre, (size_t)len, NULL, &r)) abort();
      if (ev.urgent && (r->n_publish || r->n_subscriptions || !r->control || r->control->n_idontwant != 1 ||
                        r->control->n_ihave || r->control->n_iwant || r->control->n_graft || r->control->n_prune))
        abort();
      lp2p_gs_rpc_free(NULL, r);
    } else if (ev.type == LP2P_GS_EV_DELIVER) {
      int t = -1;
      for (int i = 0; i < 3; i++)
        if (ev.msg.topic_len == strlen(topics[i]) && !memcmp(ev.msg.topic, topics[i], ev.msg.topic_len)) t = i;
      if (t < 0 || !joined[t]) abort();
      if (ev.msg.from_len == self->len && !memcmp(ev.msg.from, self->bytes, self->len)) abort();
      if (ev.msg.id_len <= 64 && check_dups) {
        for (size_t i = 0; i < nseen; i++)
          if (seen_len[i] == ev.msg.id_len && !memcmp(seen_ids[i], ev.msg.id, ev.msg.id_len)) abort();
        if (nseen < MAXSEEN) memcpy(seen_ids[nseen], ev.msg.id, ev.msg.id_len), seen_len[nseen++] = ev.msg.id_len;
      }
    }
  }
  for (int i = 0; i < 3; i++)
    if (lp2p_gs_mesh_size(g, (const uint8_t *)topics[i], strlen(topics[i])) > lp2p_gs_peers(g, NULL, 0)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static lp2p_privkey *k[NPEER + 1];
  static lp2p_peer_id id[NPEER + 1];
  if (!k[0])
    for (int i = 0; i <= NPEER; i++) {
      uint8_t seed[32] = {(uint8_t)(i + 1), 0x55};
      if (lp2p_privkey_from_ed25519_seed(&k[i], seed) ||
          lp2p_peer_id_from_pubkey(lp2p_privkey_public(k[i]), &id[i]))
        abort();
    }
  if (size < 1) return 0;
  uint8_t cfgb = data[0];
  size_t i = 1;
  uint32_t rs = 7;
  lp2p_gs_config c;
  lp2p_gs_config_default(&c);
  c.key = k[NPEER], c.rng = frng, c.rng_ud = &rs; /* we are id[NPEER] */
  c.score.enabled = cfgb & 1;
  c.flood_publish = (cfgb >> 1) & 1;
  if (cfgb & 4) c.msg_id = content_id;
  if (cfgb & 8) c.validate = validate;
  c.hold_forwards = (cfgb >> 4) & 1;
  if (cfgb & 32) c.idontwant_threshold = 1;
  lp2p_gs *g = NULL;
  if (lp2p_gs_new(&g, &c, 1000)) abort();
  lp2p_tstamp now = 1000;
  int joined[3] = {0, 0, 0};
  nseen = 0;
  check_dups = 1;
  uint8_t seqctr = 0;
#define NEED(n) \
  if (i + (n) > size) goto done
  while (i < size) {
    uint8_t op = data[i++] % 9;
    switch (op) {
      case 0: {
        NEED(3);
        int p = data[i] % NPEER;
        size_t len = (size_t)data[i + 1] | (size_t)data[i + 2] << 8;
        i += 3;
        if (len > size - i) len = size - i;
        lp2p_gs_handle_rpc(g, &id[p], data + i, len, now);
        i += len;
        break;
      }
      case 1:
        NEED(1);
        now += (lp2p_tstamp)data[i++] * 37;
        lp2p_gs_tick(g, now);
        if (lp2p_gs_held_forwards(g)) abort();
        break;
      case 2: {
        NEED(2);
        int t = data[i] % 3;
        size_t len = data[i + 1] % 16;
        i += 2;
        if (len > size - i) len = size - i;
        uint8_t idb[256];
        lp2p_gs_publish(g, (const uint8_t *)topics[t], strlen(topics[t]), data + i, len, now, idb, sizeof idb);
        i += len;
        break;
      }
      case 3:
      case 4: {
        NEED(1);
        int t = data[i++] % 3;
        if (op == 3) lp2p_gs_subscribe(g, (const uint8_t *)topics[t], strlen(topics[t]), now), joined[t] = 1;
        else lp2p_gs_unsubscribe(g, (const uint8_t *)topics[t], strlen(topics[t]), now), joined[t] = 0;
        break;
      }
      case 5:
        NEED(1);
        lp2p_gs_add_peer(g, &id[data[i] % NPEER],
                         (data[i] & 8) ? LP2P_GS_PROTO_V10 : (data[i] & 16) ? LP2P_GS_PROTO_V12 : LP2P_GS_PROTO_V11,
                         (data[i] >> 2) & 1, now);
        i++;
        break;
      case 6:
        NEED(1);
        lp2p_gs_remove_peer(g, &id[data[i++] % NPEER], now);
        break;
      case 7: {
        NEED(4);
        int author = data[i] % (NPEER + 1), via = (data[i] >> 4) % NPEER, t = data[i + 1] % 3;
        const lp2p_bytes *rpc = signed_rpc(k[author], (uint8_t)author, (uint8_t)t, data[i + 2],
                                           (uint8_t)(seqctr++ & 1), data[i + 3]);
        i += 4;
        lp2p_gs_handle_rpc(g, &id[via], rpc->data, rpc->len, now);
        break;
      }
      case 8:
        lp2p_gs_flush_forwards(g, now);
        if (lp2p_gs_held_forwards(g)) abort();
        break;
    }
    if (!c.hold_forwards && lp2p_gs_held_forwards(g)) abort();
    check_dups = now < 1000 + c.seen_ttl_ms - 10000;
    drain(g, &id[NPEER], joined);
  }
done:
  drain(g, &id[NPEER], joined);
  lp2p_gs_free(g);
  return 0;
}
