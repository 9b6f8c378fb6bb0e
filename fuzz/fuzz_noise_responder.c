/* fuzz_noise_responder.c - the Noise responder's input path (msg1, msg3, transport frames).
 *
 * Input: [opt][chunk][body...]
 *   opt bits 0-1 mode:
 *     0  body is the whole initiator->responder byte stream (msg1 onwards)
 *     1  a valid msg1, then body as the raw rest of the stream (msg3 framing / MAC failures)
 *     2  a valid msg1, then msg3 built by a real XX initiator whose *payload* is taken from body
 *        ([len16][payload]); what follows is transport data (see below)
 *     3  like 2, but the payload is a valid identity key + signature followed by the fuzzed bytes
 *        (extensions, duplicate or unknown fields)
 *   opt bits 2-3: our muxer list (none, yamux, mplex+yamux, yamux+weird); bit 4: expect the right
 *   peer id, bit 5: expect a wrong one; bit 6: the session borrows a per-node lp2p_noise_identity
 *   made from the same fixed static key (so every byte must come out the same), bit 7 (with bit 6):
 *   and is given no lp2p_privkey.
 *   chunk: feed in pieces of chunk bytes (0 = all at once).
 * Transport data (modes 2 and 3, after a completed handshake): [n][flags][n*37 % 4096 plaintext
 * bytes]... encrypted with the initiator's key; flags bit 0 flips a ciphertext bit, bit 1 sends
 * the frame through lp2p_noise_open_frame instead of feed. A flipped frame must fail the session,
 * everything else must come out as sent. Keys are fixed, so every run is deterministic. */
#include "noise_fuzz_common.h"

static const uint8_t kS_i[32] = {0x11, 1}, kE_i[32] = {0x11, 2}, kS_r[32] = {0x22, 1}, kE_r[32] = {0x22, 2};

static lp2p_privkey *id_i, *id_r;
static lp2p_peer_id peer_i, peer_r;
static lp2p_noise_identity *nid; /* our static key as a shared per-node identity */
static uint8_t good_payload[256]; /* valid identity_key + identity_sig of the initiator for kS_i */
static size_t good_len;
/* The raw initiator is deterministic up to msg1: keep its state (saves two X25519 per run). */
static lp2p__noise_hs hs_after_msg1;
static uint8_t msg1_wire[34];

static void init_once(void) {
  if (id_i) return;
  uint8_t seed[32];
  memset(seed, 0x11, 32);
  CHECK(lp2p_privkey_from_ed25519_seed(&id_i, seed) == 0);
  memset(seed, 0x22, 32);
  CHECK(lp2p_privkey_from_ed25519_seed(&id_r, seed) == 0);
  CHECK(lp2p_peer_id_from_pubkey(lp2p_privkey_public(id_i), &peer_i) == 0);
  CHECK(lp2p_peer_id_from_pubkey(lp2p_privkey_public(id_r), &peer_r) == 0);
  CHECK(lp2p__noise_identity_new_ex(&nid, id_r, kS_r, NULL) == 0);
  lp2p__noise_hs hs;
  CHECK(lp2p__noise_hs_init(&hs, 1, NULL, 0, kS_i, kE_i) == 0);
  uint8_t *p = NULL;
  CHECK(lp2p__noise_payload_build(lp2p_mem_default(), id_i, hs.s_pub, NULL, 0, &p, &good_len) == 0);
  CHECK(good_len <= sizeof good_payload);
  memcpy(good_payload, p, good_len);
  free(p);
  size_t ml;
  CHECK(lp2p__noise_hs_write(&hs, NULL, 0, msg1_wire + 2, 32, &ml) == 0 && ml == 32);
  msg1_wire[1] = 32;
  hs_after_msg1 = hs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_once();
  if (size < 2) return 0;
  uint8_t opt = data[0];
  size_t chunk = data[1];
  const uint8_t *body = data + 2;
  size_t blen = size - 2;
  int mode = opt & 3;

  static const char *const m1[] = {"/yamux/1.0.0"};
  static const char *const m2[] = {"/mplex/6.7.0", "/yamux/1.0.0"};
  static const char *const m3[] = {"/yamux/1.0.0", "/\xff\x00weird"};
  const char *const *lists[4] = {NULL, m1, m2, m3};
  size_t counts[4] = {0, 1, 2, 2};
  const char *const *mux = lists[(opt >> 2) & 3];
  size_t nmux = counts[(opt >> 2) & 3];
  const lp2p_peer_id *expected = (opt & 0x10) ? &peer_i : (opt & 0x20) ? &peer_r : NULL;

  lp2p_noise_config cfg = {sizeof cfg, 0, id_r, expected, mux, nmux, NULL};
  lp2p__noise_test_params tp = {kS_r, kE_r, NULL, 0};
  if (opt & 0x40) {
    tp.static_priv = NULL;
    cfg.noise_identity = nid;
    if (opt & 0x80) cfg.identity = NULL;
  }
  lp2p_noise *n = NULL;
  CHECK(lp2p__noise_new_ex(&n, &cfg, NULL, &tp) == 0);
  const uint8_t *o;
  CHECK(lp2p_noise_output(n, &o) == 0);

  if (mode == 0) {
    nf_feed_all(n, body, blen, chunk, NULL, NULL);
    nf_check_done_state(n, mux, nmux, &peer_r, 0);
    lp2p_noise_free(n);
    return 0;
  }

  /* a real initiator: msg1 */
  lp2p__noise_hs hs = hs_after_msg1;
  uint8_t *msg = malloc(70000), *wire = malloc(70000);
  CHECK(msg && wire);
  size_t ml, wl, pl;
  CHECK(nf_feed_all(n, msg1_wire, sizeof msg1_wire, chunk, NULL, NULL) == 0);
  size_t ol = lp2p_noise_output(n, &o);
  CHECK(ol > 2 + 96 && (size_t)(o[0] << 8 | o[1]) == ol - 2);
  CHECK(lp2p__noise_hs_read(&hs, o + 2, ol - 2, msg, 70000, &pl) == 0); /* our msg2 is valid */
  lp2p_noise_output_consumed(n, ol);

  if (mode == 1) {
    nf_feed_all(n, body, blen, chunk, NULL, NULL);
    nf_check_done_state(n, mux, nmux, &peer_r, 0);
    goto out;
  }

  /* msg3 with a fuzzed payload */
  size_t plen = blen >= 2 ? (size_t)(body[0] << 8 | body[1]) : 0;
  const uint8_t *pay = blen >= 2 ? body + 2 : body;
  size_t avail = blen >= 2 ? blen - 2 : 0;
  if (plen > avail) plen = avail;
  uint8_t *payload = malloc(good_len + plen + 1);
  CHECK(payload);
  size_t total = 0;
  if (mode == 3) {
    memcpy(payload, good_payload, good_len);
    total = good_len;
  }
  memcpy(payload + total, pay, plen);
  total += plen;
  if (total > LP2P_NOISE_MAX_FRAME - 64) total = LP2P_NOISE_MAX_FRAME - 64;
  CHECK(lp2p__noise_hs_write(&hs, payload, total, msg, 70000, &ml) == 0);
  free(payload);
  wl = nf_frame(wire, msg, ml);
  int rv = nf_feed_all(n, wire, wl, chunk, NULL, NULL);
  nf_check_done_state(n, mux, nmux, &peer_r, 0);
  if (rv) {
    CHECK(!lp2p_noise_handshake_done(n));
    goto out;
  }
  CHECK(lp2p_noise_handshake_done(n));
  if (mode == 3 && plen == 0) CHECK(lp2p_peer_id_equal(lp2p_noise_remote_peer(n), &peer_i));

  /* transport: the initiator's frames, then one frame from us checked with the raw key */
  lp2p__noise_cipher c1, c2;
  CHECK(lp2p__noise_hs_split(&hs, &c1, &c2) == 0);
  nf_transport(n, &c1, &c2, pay + plen, avail - plen, chunk, msg);
out:
  lp2p__noise_hs_wipe(&hs);
  free(msg);
  free(wire);
  lp2p_noise_free(n);
  return 0;
}
