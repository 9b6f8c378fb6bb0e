/* fuzz_noise_initiator.c - the Noise initiator's input path (msg2, transport frames).
 *
 * The engine (fixed keys) produces msg1, which a real XX responder reads. Then
 * Input: [opt][chunk][body...]
 *   opt bits 0-1 mode:
 *     0, 1  body is the raw responder->initiator stream (msg2 onwards); mode 1 prefixes the
 *           responder's real ephemeral key so the DH and MAC paths are reached
 *     2     msg2 built by the real responder with its *payload* taken from body ([len16][payload])
 *     3     like 2, but the payload is a valid identity key + signature followed by the fuzzed bytes
 *   opt bits 2-3: our muxer list (none, yamux, mplex+yamux, yamux+mplex); bit 4: expect the right
 *   peer id, bit 5: expect a wrong one; bit 6: the session borrows a per-node lp2p_noise_identity
 *   made from the same fixed static key (so every byte must come out the same), bit 7 (with bit 6):
 *   and is given no lp2p_privkey.
 *   chunk: feed in pieces of chunk bytes (0 = all at once).
 * After a completed handshake (modes 2, 3): msg3 must be valid for the real responder, and the rest
 * of body is transport data [n][flags][plaintext...] encrypted with the responder's key (flags bit 0
 * flips a ciphertext bit, which must kill the session; bit 1 uses open_frame instead of feed). */
#include "noise_fuzz_common.h"

static const uint8_t kS_i[32] = {0x33, 1}, kE_i[32] = {0x33, 2}, kS_r[32] = {0x44, 1}, kE_r[32] = {0x44, 2};

static lp2p_privkey *id_i, *id_r;
static lp2p_peer_id peer_i, peer_r;
static lp2p_noise_identity *nid; /* our static key as a shared per-node identity */
static uint8_t good_payload[256]; /* valid identity_key + identity_sig of the responder for kS_r */
static size_t good_len;
/* The engine's msg1 is fixed (fixed keys): keep the raw responder's state after reading it. */
static lp2p__noise_hs hs_after_msg1;
static uint8_t msg1_wire[34];

static void init_once(void) {
  if (id_i) return;
  uint8_t seed[32];
  memset(seed, 0x33, 32);
  CHECK(lp2p_privkey_from_ed25519_seed(&id_i, seed) == 0);
  memset(seed, 0x44, 32);
  CHECK(lp2p_privkey_from_ed25519_seed(&id_r, seed) == 0);
  CHECK(lp2p_peer_id_from_pubkey(lp2p_privkey_public(id_i), &peer_i) == 0);
  CHECK(lp2p_peer_id_from_pubkey(lp2p_privkey_public(id_r), &peer_r) == 0);
  CHECK(lp2p__noise_identity_new_ex(&nid, id_i, kS_i, NULL) == 0);
  lp2p__noise_hs hs;
  CHECK(lp2p__noise_hs_init(&hs, 0, NULL, 0, kS_r, kE_r) == 0);
  uint8_t *p = NULL;
  CHECK(lp2p__noise_payload_build(lp2p_mem_default(), id_r, hs.s_pub, NULL, 0, &p, &good_len) == 0);
  CHECK(good_len <= sizeof good_payload);
  memcpy(good_payload, p, good_len);
  free(p);
  lp2p_noise_config cfg = {sizeof cfg, 1, id_i, NULL, NULL, 0, NULL};
  lp2p__noise_test_params tp = {kS_i, kE_i, NULL, 0};
  lp2p_noise *n = NULL;
  CHECK(lp2p__noise_new_ex(&n, &cfg, NULL, &tp) == 0);
  const uint8_t *o;
  CHECK(lp2p_noise_output(n, &o) == sizeof msg1_wire);
  memcpy(msg1_wire, o, sizeof msg1_wire);
  uint8_t none[1];
  size_t pl;
  CHECK(lp2p__noise_hs_read(&hs, msg1_wire + 2, 32, none, 0, &pl) == 0 && pl == 0);
  hs_after_msg1 = hs;
  lp2p_noise_free(n);
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
  static const char *const m3[] = {"/yamux/1.0.0", "/mplex/6.7.0"};
  const char *const *lists[4] = {NULL, m1, m2, m3};
  size_t counts[4] = {0, 1, 2, 2};
  const char *const *mux = lists[(opt >> 2) & 3];
  size_t nmux = counts[(opt >> 2) & 3];
  const lp2p_peer_id *expected = (opt & 0x10) ? &peer_r : (opt & 0x20) ? &peer_i : NULL;

  lp2p_noise_config cfg = {sizeof cfg, 1, id_i, expected, mux, nmux, NULL};
  lp2p__noise_test_params tp = {kS_i, kE_i, NULL, 0};
  if (opt & 0x40) {
    tp.static_priv = NULL;
    cfg.noise_identity = nid;
    if (opt & 0x80) cfg.identity = NULL;
  }
  lp2p_noise *n = NULL;
  CHECK(lp2p__noise_new_ex(&n, &cfg, NULL, &tp) == 0);
  const uint8_t *o;
  size_t ol = lp2p_noise_output(n, &o);
  CHECK(ol == sizeof msg1_wire && !memcmp(o, msg1_wire, ol)); /* deterministic with fixed keys */
  lp2p__noise_hs hs = hs_after_msg1;
  uint8_t *msg = malloc(70000), *wire = malloc(70000);
  CHECK(msg && wire);
  size_t ml, pl;
  lp2p_noise_output_consumed(n, ol);

  if (mode < 2) {
    size_t wl = 0;
    if (mode == 1) { /* length prefix from body, then the real e, then the rest of body */
      size_t take = blen < 2 ? blen : 2;
      memcpy(wire, body, take);
      memcpy(wire + take, hs.e_pub, 32);
      wl = take + 32;
      size_t rest = blen - take;
      if (rest > 65000) rest = 65000;
      memcpy(wire + wl, body + take, rest);
      wl += rest;
      nf_feed_all(n, wire, wl, chunk, NULL, NULL);
    } else {
      nf_feed_all(n, body, blen, chunk, NULL, NULL);
    }
    nf_check_done_state(n, mux, nmux, &peer_i, 1);
    goto out;
  }

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
  if (total > LP2P_NOISE_MAX_FRAME - 96) total = LP2P_NOISE_MAX_FRAME - 96;
  CHECK(lp2p__noise_hs_write(&hs, payload, total, msg, 70000, &ml) == 0);
  free(payload);
  wire[0] = (uint8_t)(ml >> 8);
  wire[1] = (uint8_t)ml;
  memcpy(wire + 2, msg, ml);
  int rv = nf_feed_all(n, wire, ml + 2, chunk, NULL, NULL);
  nf_check_done_state(n, mux, nmux, &peer_i, 1);
  if (rv) {
    CHECK(!lp2p_noise_handshake_done(n));
    goto out;
  }
  CHECK(lp2p_noise_handshake_done(n));
  if (mode == 3 && plen == 0) CHECK(lp2p_peer_id_equal(lp2p_noise_remote_peer(n), &peer_r));

  /* msg3 must be valid for the real responder and carry a payload that verifies */
  ol = lp2p_noise_output(n, &o);
  CHECK(ol > 2 + 64 && (size_t)(o[0] << 8 | o[1]) == ol - 2);
  CHECK(lp2p__noise_hs_read(&hs, o + 2, ol - 2, msg, 70000, &pl) == 0);
  lp2p__noise_remote remote;
  CHECK(lp2p__noise_payload_check(lp2p_mem_default(), msg, pl, hs.rs, 0, &peer_i, NULL, NULL, 0, &remote) == 0);
  lp2p_pubkey_free(remote.key);
  lp2p_noise_output_consumed(n, ol);

  lp2p__noise_cipher c1, c2;
  CHECK(lp2p__noise_hs_split(&hs, &c1, &c2) == 0);
  nf_transport(n, &c2, &c1, pay + plen, avail - plen, chunk, msg);
out:
  lp2p__noise_hs_wipe(&hs);
  free(msg);
  free(wire);
  lp2p_noise_free(n);
  return 0;
}
