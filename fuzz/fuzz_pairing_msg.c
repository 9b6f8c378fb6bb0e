/* fuzz/fuzz_pairing_msg.c - the pairing session's decoder (protocols/pairing/engine): arbitrary
 * bytes fed to an initiator or a joiner (byte 0: bit 0 role, bits 1..3 log2 chunk size), plus
 * the code parser and the device info decoder on the same bytes. The session must end in a
 * consistent state (paired only with its outputs; otherwise failed at the deadline), the output
 * must stay framed, and whatever decodes must re-encode to the same bytes. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/pairing/engine/pair_int.h"

static void fixed_rng(void *ctx, uint8_t *b, size_t n) {
  uint64_t *s = ctx;
  for (size_t i = 0; i < n; i++) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    b[i] = (uint8_t)(*s >> 24);
  }
}

static const uint8_t ID_I[] = "fuzz-initiator-id";
static const uint8_t ID_J[] = "fuzz-joiner-id";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  static lp2p__pair_code code;
  if (!init) {
    if (sodium_init() < 0) abort();
    uint64_t s = 1;
    if (lp2p__pair_code_generate(&code, 3, fixed_rng, &s) < 0) abort();
    init = 1;
  }
  /* side decoders on the raw bytes */
  char text[LP2P__PAIR_CODE_MAX];
  size_t tl = size < sizeof text - 1 ? size : sizeof text - 1;
  memcpy(text, data, tl);
  text[tl] = 0;
  lp2p__pair_code pc;
  if (lp2p__pair_code_parse(&pc, text) == 0 && !lp2p__pair_code_check(&pc)) abort();
  lp2p__pair_device_info di;
  if (lp2p__pair_info_decode(&di, data, size) == 0) {
    uint8_t re[LP2P__PAIR_INFO_MAX];
    int n = lp2p__pair_info_encode(&di, re, sizeof re);
    if (n < 0 || (size_t)n != size || memcmp(re, data, size)) abort();
  }
  if (size < 1) return 0;

  int joiner = data[0] & 1;
  size_t chunk = (size_t)1 << ((data[0] >> 1) & 7);
  uint64_t seed = 7;
  lp2p__pair_params p;
  memset(&p, 0, sizeof p);
  p.role = joiner ? LP2P__PAIR_JOINER : LP2P__PAIR_INITIATOR;
  p.code = &code;
  p.local_id = joiner ? ID_J : ID_I, p.local_id_len = joiner ? sizeof ID_J - 1 : sizeof ID_I - 1;
  p.remote_id = joiner ? ID_I : ID_J, p.remote_id_len = joiner ? sizeof ID_I - 1 : sizeof ID_J - 1;
  p.rng = fixed_rng, p.rng_ctx = &seed;
  lp2p__pair_session *s = lp2p__pair_session_new(&p);
  if (!s) abort();
  const uint8_t *in = data + 1;
  size_t left = size - 1;
  while (left) {
    size_t n = left < chunk ? left : chunk;
    int rv = lp2p__pair_session_input(s, in, n, 1);
    if (rv < 0 && rv != LP2P_ERR_STATE) abort();
    in += n, left -= n;
    /* drain and check the output framing */
    size_t olen;
    const uint8_t *o = lp2p__pair_session_output(s, &olen);
    size_t off = 0;
    while (off < olen) {
      if (olen - off < 3) abort();
      size_t body = (size_t)o[off] << 8 | o[off + 1];
      if (body == 0 || body > LP2P__PAIR_MAX_BODY || olen - off - 2 < body) abort();
      off += 2 + body;
    }
    lp2p__pair_session_output_done(s, olen);
    if (rv == LP2P_ERR_STATE) break;
  }
  lp2p__pair_state st = lp2p__pair_session_state(s);
  /* PAIRED is reachable only with a genuine transcript (the seeds hold one for this code and
   * these ids); then the outputs must be there and consistent. */
  if ((st == LP2P__PAIR_S_PAIRED) != (lp2p__pair_session_key(s) != NULL)) abort();
  if ((st == LP2P__PAIR_S_PAIRED) != (lp2p__pair_session_remote_info(s) != NULL)) abort();
  if (st == LP2P__PAIR_S_PAIRED) {
    uint8_t re[LP2P__PAIR_INFO_MAX];
    if (lp2p__pair_info_encode(lp2p__pair_session_remote_info(s), re, sizeof re) < 2) abort();
    if (strlen(lp2p__pair_session_sas(s)) != 7) abort();
    if (lp2p__pair_session_burns_code(s)) abort();
    lp2p__pair_session_free(s);
    return 0;
  }
  if (st == LP2P__PAIR_S_FAILED && lp2p__pair_session_failure(s) == LP2P__PAIR_OK) abort();
  lp2p__pair_session_tick(s, lp2p__pair_session_deadline(s));
  if (lp2p__pair_session_state(s) != LP2P__PAIR_S_FAILED) abort();
  lp2p__pair_session_free(s);
  return 0;
}
