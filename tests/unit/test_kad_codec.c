/* test_kad_codec.c - Kademlia keyspace and Message codec against tests/vectors/kad-dht.json
 * (byte for byte), plus malformed messages. */
#include "json.h"
#include "kad/engine/kad_engine.h"
#include "lp2p/encoding.h"
#include "test.h"

static json *g_v;

static lp2p_multiaddr *ma(const char *s) {
  lp2p_multiaddr *m = NULL;
  lp2p_multiaddr_parse(&m, s, NULL, 0);
  return m;
}

static lp2p_peer_id pid(const char *s) {
  lp2p_peer_id p;
  memset(&p, 0, sizeof p);
  lp2p_peer_id_parse(s, &p);
  return p;
}

/* The vector's wire form = uvarint(len) ‖ message_pb. */
static void check_wire(const json *o, const uint8_t *pb, size_t len) {
  size_t wl;
  uint8_t *wire = json_hex(o, "wire", &wl);
  uint8_t pre[10];
  size_t pl = kad_frame_prefix(len, pre);
  CHECK_EQ(pl + len, wl);
  if (pl + len == wl) {
    CHECK_MEM(wire, pre, pl);
    CHECK_MEM(wire + pl, pb, len);
  }
  size_t ml = 0;
  CHECK_EQ(kad_frame_parse(wire, wl, &ml), (long long)pl);
  CHECK_EQ(ml, len);
  free(wire);
}

TEST(xor_distance_and_cpl) {
  json *o = json_get(g_v, "xor_distance");
  lp2p_peer_id a = pid(json_str(o, "a")), b = pid(json_str(o, "b"));
  REQUIRE(a.len && b.len);
  kad_id ka, kb, d;
  kad_id_from_peer(&a, &ka);
  kad_id_from_peer(&b, &kb);
  size_t n;
  uint8_t *x = json_hex(o, "kad_id_a", &n);
  CHECK_MEM(ka.b, x, 32);
  free(x);
  x = json_hex(o, "kad_id_b", &n);
  CHECK_MEM(kb.b, x, 32);
  free(x);
  kad_distance(&ka, &kb, &d);
  x = json_hex(o, "distance", &n);
  CHECK_MEM(d.b, x, 32);
  free(x);
  CHECK_EQ(kad_cpl(&ka, &kb), (long long)json_get(o, "common_prefix_len")->num);
  CHECK_EQ(kad_cpl(&ka, &ka), 256);
  /* bucket index of hand-made ids */
  kad_id z, y;
  memset(&z, 0, sizeof z);
  memset(&y, 0, sizeof y);
  y.b[0] = 0x80;
  CHECK_EQ(kad_cpl(&z, &y), 0);
  y.b[0] = 0x01;
  CHECK_EQ(kad_cpl(&z, &y), 7);
  y.b[0] = 0;
  y.b[31] = 1;
  CHECK_EQ(kad_cpl(&z, &y), 255);
  /* ordering relative to a target */
  kad_id t;
  memset(&t, 0, sizeof t);
  CHECK(kad_cmp_distance(&y, &ka, &t) < 0);
  CHECK(kad_cmp_distance(&ka, &y, &t) > 0);
  CHECK_EQ(kad_cmp_distance(&ka, &ka, &t), 0);
}

TEST(find_node_request_vector) {
  json *o = json_get(g_v, "find_node_request");
  lp2p_peer_id t = pid(json_str(o, "target_peer"));
  REQUIRE(t.len);
  kad_msg m;
  memset(&m, 0, sizeof m);
  m.type = KAD_FIND_NODE;
  m.key = t.bytes;
  m.key_len = t.len;
  uint8_t *out;
  size_t len, vl;
  CHECK_OK(kad_msg_encode(NULL, &m, &out, &len));
  uint8_t *v = json_hex(o, "message_pb", &vl);
  CHECK_EQ(len, vl);
  CHECK_MEM(out, v, vl);
  check_wire(o, out, len);
  kad_msg d;
  CHECK_OK(kad_msg_decode(NULL, v, vl, &d));
  CHECK_EQ(d.type, KAD_FIND_NODE);
  CHECK_EQ(d.key_len, t.len);
  CHECK_MEM(d.key, t.bytes, t.len);
  CHECK_EQ(d.ncloser, 0);
  CHECK(!d.has_record);
  kad_msg_clear(NULL, &d);
  free(v);
  kad_bytes_free(NULL, out);
}

TEST(find_node_response_vector) {
  json *o = json_get(g_v, "find_node_response");
  kad_peer p;
  memset(&p, 0, sizeof p);
  p.id = pid(json_str(o, "closer_peer"));
  lp2p_multiaddr *a = ma(json_str(o, "addr"));
  REQUIRE(a && p.id.len);
  p.addrs = &a;
  p.naddrs = 1;
  p.connection = KAD_CONNECTED;
  kad_msg m;
  memset(&m, 0, sizeof m);
  m.type = KAD_FIND_NODE;
  m.closer = &p;
  m.ncloser = 1;
  uint8_t *out;
  size_t len, vl;
  CHECK_OK(kad_msg_encode(NULL, &m, &out, &len));
  uint8_t *v = json_hex(o, "message_pb", &vl);
  CHECK_EQ(len, vl);
  CHECK_MEM(out, v, vl);
  check_wire(o, out, len);
  kad_msg d;
  CHECK_OK(kad_msg_decode(NULL, v, vl, &d));
  CHECK_EQ(d.type, KAD_FIND_NODE);
  REQUIRE(d.ncloser == 1);
  CHECK(lp2p_peer_id_equal(&d.closer[0].id, &p.id));
  CHECK_EQ(d.closer[0].naddrs, 1);
  CHECK(lp2p_multiaddr_equal(d.closer[0].addrs[0], a));
  CHECK_EQ(d.closer[0].connection, KAD_CONNECTED);
  CHECK_EQ(d.dropped, 0);
  /* re-encoding the decoded message gives the same bytes */
  uint8_t *again;
  size_t al;
  CHECK_OK(kad_msg_encode(NULL, &d, &again, &al));
  CHECK_EQ(al, vl);
  CHECK_MEM(again, v, vl);
  kad_bytes_free(NULL, again);
  kad_msg_clear(NULL, &d);
  free(v);
  kad_bytes_free(NULL, out);
  lp2p_multiaddr_free(a);
}

TEST(put_value_vector_type_omitted) {
  json *o = json_get(g_v, "put_value_pk_request");
  size_t kl, vl;
  uint8_t *key = json_hex(o, "record_key_hex", &kl);
  uint8_t *v = json_hex(o, "message_pb", &vl);
  REQUIRE(key && v);
  kad_msg d;
  CHECK_OK(kad_msg_decode(NULL, v, vl, &d));
  CHECK_EQ(d.type, KAD_PUT_VALUE); /* missing type = PUT_VALUE */
  CHECK(d.has_record);
  CHECK_EQ(d.rec_key_len, kl);
  CHECK_MEM(d.rec_key, key, kl);
  CHECK_EQ(d.key_len, kl);
  uint8_t *out;
  size_t len;
  CHECK_OK(kad_msg_encode(NULL, &d, &out, &len));
  CHECK_EQ(len, vl);
  CHECK_MEM(out, v, vl);
  check_wire(o, out, len);
  kad_bytes_free(NULL, out);
  kad_msg_clear(NULL, &d);
  free(v);
  free(key);
}

TEST(add_provider_and_get_providers_vectors) {
  json *o = json_get(g_v, "add_provider_request");
  size_t kl, vl;
  uint8_t *key = json_hex(o, "key_multihash", &kl);
  uint8_t *v = json_hex(o, "message_pb", &vl);
  REQUIRE(key && v);
  kad_msg d;
  CHECK_OK(kad_msg_decode(NULL, v, vl, &d));
  CHECK_EQ(d.type, KAD_ADD_PROVIDER);
  CHECK_EQ(d.key_len, kl);
  CHECK_MEM(d.key, key, kl);
  REQUIRE(d.nproviders == 1);
  lp2p_peer_id expect = pid("12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");
  CHECK(lp2p_peer_id_equal(&d.providers[0].id, &expect));
  CHECK_EQ(d.providers[0].naddrs, 1);
  uint8_t *out;
  size_t len;
  CHECK_OK(kad_msg_encode(NULL, &d, &out, &len));
  CHECK_EQ(len, vl);
  CHECK_MEM(out, v, vl);
  check_wire(o, out, len);
  kad_bytes_free(NULL, out);
  kad_msg_clear(NULL, &d);
  free(v);

  o = json_get(g_v, "get_providers_request");
  v = json_hex(o, "message_pb", &vl);
  kad_msg m;
  memset(&m, 0, sizeof m);
  m.type = KAD_GET_PROVIDERS;
  m.key = key;
  m.key_len = kl;
  CHECK_OK(kad_msg_encode(NULL, &m, &out, &len));
  CHECK_EQ(len, vl);
  CHECK_MEM(out, v, vl);
  check_wire(o, out, len);
  kad_bytes_free(NULL, out);
  free(v);
  free(key);
}

TEST(malformed_messages) {
  kad_msg d;
  /* truncated length-delimited field */
  static const uint8_t trunc[] = {0x12, 0x05, 0x01};
  CHECK_EQ(kad_msg_decode(NULL, trunc, sizeof trunc, &d), LP2P_ERR_PROTO);
  /* bad wire type 7 */
  static const uint8_t wt[] = {0x0f, 0x00};
  CHECK_EQ(kad_msg_decode(NULL, wt, sizeof wt, &d), LP2P_ERR_PROTO);
  /* unknown message type 9 */
  static const uint8_t ty[] = {0x08, 0x09};
  CHECK_EQ(kad_msg_decode(NULL, ty, sizeof ty, &d), LP2P_ERR_PROTO);
  /* negative type */
  static const uint8_t neg[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  CHECK_EQ(kad_msg_decode(NULL, neg, sizeof neg, &d), LP2P_ERR_PROTO);
  /* unterminated varint */
  static const uint8_t uv[] = {0x08, 0x80};
  CHECK_EQ(kad_msg_decode(NULL, uv, sizeof uv, &d), LP2P_ERR_PROTO);
  /* too large */
  CHECK_EQ(kad_msg_decode(NULL, trunc, (size_t)KAD_MSG_MAX + 1, &d), LP2P_ERR_TOO_LARGE);
  /* empty = PUT_VALUE with nothing */
  CHECK_OK(kad_msg_decode(NULL, NULL, 0, &d));
  CHECK_EQ(d.type, KAD_PUT_VALUE);
  kad_msg_clear(NULL, &d);
  /* key longer than KAD_MAX_KEY */
  size_t n = KAD_MAX_KEY + 1 + 4;
  uint8_t *big = calloc(1, n);
  big[0] = 0x12;
  big[1] = (uint8_t)(0x80 | ((KAD_MAX_KEY + 1) & 0x7f));
  big[2] = (uint8_t)((KAD_MAX_KEY + 1) >> 7);
  CHECK_EQ(kad_msg_decode(NULL, big, 3 + KAD_MAX_KEY + 1, &d), LP2P_ERR_PROTO);
  free(big);
  /* too many closer peers: 401 empty Peer entries (42 00) */
  size_t cnt = KAD_MAX_PEERS_PER_MSG + 1;
  uint8_t *many = malloc(cnt * 2);
  for (size_t i = 0; i < cnt; i++) {
    many[2 * i] = 0x42;
    many[2 * i + 1] = 0;
  }
  CHECK_EQ(kad_msg_decode(NULL, many, cnt * 2, &d), LP2P_ERR_LIMIT);
  /* 400 entries with bad (empty) ids: accepted, every one dropped */
  CHECK_OK(kad_msg_decode(NULL, many, (cnt - 1) * 2, &d));
  CHECK_EQ(d.ncloser, 0);
  CHECK_EQ(d.dropped, cnt - 1);
  kad_msg_clear(NULL, &d);
  free(many);
  /* framing: oversized length prefix */
  uint8_t pre[10];
  size_t pl = kad_frame_prefix((size_t)KAD_MSG_MAX + 1, pre), ml;
  CHECK_EQ(kad_frame_parse(pre, pl, &ml), LP2P_ERR_TOO_LARGE);
  CHECK_EQ(kad_frame_parse(pre, 1, &ml), 0); /* incomplete */
}

TEST(bad_entries_dropped_individually) {
  /* closer peers: [good id + one good addr + one junk addr], [junk id], [good id, 20 addrs] */
  lp2p_peer_id good = pid("12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");
  lp2p_multiaddr *a = ma("/ip4/1.2.3.4/tcp/1");
  size_t al;
  const uint8_t *ab = lp2p_multiaddr_bytes(a, &al);
  uint8_t buf[2048];
  size_t n = 0;
  /* peer 1 */
  uint8_t p1[256];
  size_t m1 = 0;
  p1[m1++] = 0x0a;
  p1[m1++] = good.len;
  memcpy(p1 + m1, good.bytes, good.len);
  m1 += good.len;
  p1[m1++] = 0x12;
  p1[m1++] = (uint8_t)al;
  memcpy(p1 + m1, ab, al);
  m1 += al;
  p1[m1++] = 0x12;
  p1[m1++] = 2;
  p1[m1++] = 0xff;
  p1[m1++] = 0xff;
  buf[n++] = 0x42;
  buf[n++] = (uint8_t)m1;
  memcpy(buf + n, p1, m1);
  n += m1;
  /* peer 2: id = 3 junk bytes */
  static const uint8_t p2[] = {0x0a, 0x03, 0x01, 0x02, 0x03};
  buf[n++] = 0x42;
  buf[n++] = sizeof p2;
  memcpy(buf + n, p2, sizeof p2);
  n += sizeof p2;
  /* peer 3: 20 addrs */
  uint8_t p3[1024];
  size_t m3 = 0;
  p3[m3++] = 0x0a;
  p3[m3++] = good.len;
  memcpy(p3 + m3, good.bytes, good.len);
  m3 += good.len;
  for (int i = 0; i < 20; i++) {
    p3[m3++] = 0x12;
    p3[m3++] = (uint8_t)al;
    memcpy(p3 + m3, ab, al);
    m3 += al;
  }
  buf[n++] = 0x42;
  n += (size_t)lp2p_uvarint_encode(m3, buf + n, 9);
  memcpy(buf + n, p3, m3);
  n += m3;
  kad_msg d;
  CHECK_OK(kad_msg_decode(NULL, buf, n, &d));
  REQUIRE(d.ncloser == 2);
  CHECK_EQ(d.closer[0].naddrs, 1);
  CHECK_EQ(d.closer[1].naddrs, KAD_MAX_ADDRS_PER_PEER);
  CHECK_EQ(d.dropped, 1 + 1 + (20 - KAD_MAX_ADDRS_PER_PEER));
  kad_msg_clear(NULL, &d);
  lp2p_multiaddr_free(a);
}

int main(void) {
  g_v = json_load_vector("kad-dht.json");
  if (!g_v) return 1;
  RUN(xor_distance_and_cpl);
  RUN(find_node_request_vector);
  RUN(find_node_response_vector);
  RUN(put_value_vector_type_omitted);
  RUN(add_provider_and_get_providers_vectors);
  RUN(malformed_messages);
  RUN(bad_entries_dropped_individually);
  json_free(g_v);
  return test_done();
}
