/* tests/unit/test_gossip_rpc.c - the gossipsub RPC codec: limits, topic checks, StrictSign
 * signing and verification with Ed25519 and RSA (key field) keys, tampering. */
#include "protocols/gossipsub/engine/gossip_rpc.h"
#include "test.h"

static lp2p_bytes rpc_with_msg(const uint8_t *msg, size_t n) {
  lp2p_bytes b = {0};
  lp2p_gs_pb_ld(lp2p_mem_default(), &b, 2, msg, n);
  return b;
}

static void sign_and_check(lp2p_privkey *k, int expect_key) {
  const lp2p_mem *m = lp2p_mem_default();
  lp2p_gs_msg_fields f = {0};
  uint8_t seq[8] = {0, 0, 0, 0, 0, 0, 0, 7};
  f.data = (const uint8_t *)"hello", f.data_len = 5;
  f.seqno = seq, f.seqno_len = 8;
  f.topic = (const uint8_t *)"news", f.topic_len = 4;
  lp2p_bytes msg = {0};
  CHECK_OK(lp2p_gs_msg_sign_encode(m, k, &f, &msg));
  lp2p_bytes r = rpc_with_msg(msg.data, msg.len);
  Lp2pGs__RPC *rpc = NULL;
  CHECK_OK(lp2p_gs_rpc_decode(m, r.data, r.len, NULL, &rpc));
  CHECK(rpc && rpc->n_publish == 1);
  if (rpc && rpc->n_publish == 1) {
    Lp2pGs__Message *pm = rpc->publish[0];
    CHECK_EQ(pm->has_key, expect_key);
    CHECK_OK(lp2p_gs_msg_verify(m, pm));
    lp2p_peer_id id;
    CHECK_OK(lp2p_peer_id_from_pubkey(lp2p_privkey_public(k), &id));
    CHECK_EQ(pm->from.len, id.len);
    CHECK(!memcmp(pm->from.data, id.bytes, id.len));
    pm->data.data[0] ^= 1; /* tampered data */
    CHECK_EQ(lp2p_gs_msg_verify(m, pm), LP2P_ERR_SIGNATURE);
    pm->data.data[0] ^= 1;
    pm->seqno.data[7] ^= 1; /* tampered seqno */
    CHECK_EQ(lp2p_gs_msg_verify(m, pm), LP2P_ERR_SIGNATURE);
    pm->seqno.data[7] ^= 1;
    pm->topic.data[0] ^= 1; /* tampered topic */
    CHECK_EQ(lp2p_gs_msg_verify(m, pm), LP2P_ERR_SIGNATURE);
    pm->topic.data[0] ^= 1;
    CHECK_OK(lp2p_gs_msg_verify(m, pm));
    pm->signature.data[pm->signature.len - 1] ^= 0x80;
    CHECK_EQ(lp2p_gs_msg_verify(m, pm), LP2P_ERR_SIGNATURE);
    pm->signature.data[pm->signature.len - 1] ^= 0x80;
    pm->has_signature = 0;
    CHECK_EQ(lp2p_gs_msg_verify(m, pm), LP2P_ERR_SIGNATURE);
    pm->has_signature = 1;
    /* someone else's from */
    lp2p_privkey *o = NULL;
    CHECK_OK(lp2p_privkey_generate(&o, LP2P_KEY_ED25519, 0));
    lp2p_peer_id oid;
    CHECK_OK(lp2p_peer_id_from_pubkey(lp2p_privkey_public(o), &oid));
    ProtobufCBinaryData save = pm->from;
    pm->from.data = oid.bytes, pm->from.len = oid.len;
    CHECK_EQ(lp2p_gs_msg_verify(m, pm), LP2P_ERR_SIGNATURE);
    pm->from = save;
    lp2p_privkey_free(o);
  }
  lp2p_gs_rpc_free(m, rpc);
  lp2p__bytes_free(m, &r);
  lp2p__bytes_free(m, &msg);
}

TEST(sign_ed25519) {
  lp2p_privkey *k = NULL;
  uint8_t seed[32] = {1, 2, 3};
  CHECK_OK(lp2p_privkey_from_ed25519_seed(&k, seed));
  sign_and_check(k, 0);
  lp2p_privkey_free(k);
}

TEST(sign_rsa_key_field) {
  lp2p_privkey *k = NULL;
  CHECK_OK(lp2p_privkey_generate(&k, LP2P_KEY_RSA, 2048));
  if (k) sign_and_check(k, 1);
  lp2p_privkey_free(k);
}

TEST(limits) {
  const lp2p_mem *m = lp2p_mem_default();
  lp2p_gs_limits l;
  lp2p_gs_limits_default(&l);
  l.max_messages = 2, l.max_topic_len = 8, l.max_control = 3, l.max_ids = 4, l.max_rpc_size = 200;
  Lp2pGs__RPC *r = NULL;
  lp2p_bytes b = {0}, msg = {0}, sub = {0}, ctl = {0}, e = {0};
  lp2p_gs_msg_fields f = {0};
  f.topic = (const uint8_t *)"t", f.topic_len = 1;
  CHECK_OK(lp2p_gs_msg_encode(m, &f, &msg));
  for (int i = 0; i < 3; i++) lp2p_gs_pb_ld(m, &b, 2, msg.data, msg.len);
  CHECK_EQ(lp2p_gs_rpc_decode(m, b.data, b.len, &l, &r), LP2P_ERR_LIMIT);
  b.len = 0;
  for (int i = 0; i < 2; i++) lp2p_gs_pb_ld(m, &b, 2, msg.data, msg.len);
  CHECK_OK(lp2p_gs_rpc_decode(m, b.data, b.len, &l, &r));
  CHECK(r && r->n_publish == 2);
  lp2p_gs_rpc_free(m, r);
  /* message without topic */
  b.len = 0;
  lp2p_gs_pb_ld(m, &b, 2, "", 0);
  CHECK_EQ(lp2p_gs_rpc_decode(m, b.data, b.len, &l, &r), LP2P_ERR_PROTO);
  /* topic too long, empty, with NUL */
  const char *bad[] = {"123456789", "", "a\0b"};
  size_t blen[] = {9, 0, 3};
  for (int i = 0; i < 3; i++) {
    sub.len = 0, b.len = 0;
    lp2p_gs_pb_varint(m, &sub, 1, 1);
    lp2p_gs_pb_ld(m, &sub, 2, bad[i], blen[i]);
    lp2p_gs_pb_ld(m, &b, 1, sub.data, sub.len);
    CHECK_EQ(lp2p_gs_rpc_decode(m, b.data, b.len, &l, &r), LP2P_ERR_PROTO);
  }
  /* control entries and ids */
  b.len = 0;
  e.len = 0;
  lp2p_gs_pb_ld(m, &e, 1, "t", 1);
  for (int i = 0; i < 4; i++) lp2p_gs_pb_ld(m, &ctl, 3, e.data, e.len);
  lp2p_gs_pb_ld(m, &b, 3, ctl.data, ctl.len);
  CHECK_EQ(lp2p_gs_rpc_decode(m, b.data, b.len, &l, &r), LP2P_ERR_LIMIT);
  ctl.len = 0, e.len = 0, b.len = 0;
  for (int i = 0; i < 5; i++) lp2p_gs_pb_ld(m, &e, 1, "id", 2);
  lp2p_gs_pb_ld(m, &ctl, 2, e.data, e.len);
  lp2p_gs_pb_ld(m, &b, 3, ctl.data, ctl.len);
  CHECK_EQ(lp2p_gs_rpc_decode(m, b.data, b.len, &l, &r), LP2P_ERR_LIMIT);
  /* size */
  uint8_t big[300] = {0};
  CHECK_EQ(lp2p_gs_rpc_decode(m, big, sizeof big, &l, &r), LP2P_ERR_TOO_LARGE);
  /* garbage */
  uint8_t junk[] = {0x12, 0x50, 1};
  CHECK_EQ(lp2p_gs_rpc_decode(m, junk, sizeof junk, &l, &r), LP2P_ERR_PARSE);
  lp2p__bytes_free(m, &b), lp2p__bytes_free(m, &msg), lp2p__bytes_free(m, &sub);
  lp2p__bytes_free(m, &ctl), lp2p__bytes_free(m, &e);
}

int main(void) {
  RUN(sign_ed25519);
  RUN(sign_rsa_key_field);
  RUN(limits);
  return test_done();
}
