/* fuzz_files_offer.c - the /lp2p/file/2.0.0 frame decoders (protocols/files/engine/wire.h) over a stream
 * of length-prefixed frames, as either side reads them: the OFFER (manifest) the receiver decodes and the
 * answers (ACCEPT, REJECT, DONE) the sender decodes. An accepted OFFER has consistent sizes and its pointers
 * inside the frame; an answer that decodes re-encodes to the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "lp2p/lpm.h"
#include "protocols/files/engine/wire.h"

static void check_offer(const uint8_t *m, size_t ml) {
  lp2p_files_offer o;
  int rv = lp2p__files_offer_decode(m, ml, &o);
  if (rv == LP2P_FILES_OFFER_MALFORMED) return;
  if (rv != LP2P_FILES_OFFER_OK && rv != LP2P_FILES_OFFER_BAD) abort();
  if (memcmp(o.id.b, m + 1, 16) != 0) abort(); /* a REJECT names the offer's id */
  if (rv != LP2P_FILES_OFFER_OK) return;
  if (!o.chunk || o.chunk % 64 || !o.name_len || o.name_len > 255) abort();
  if (o.n_chunks != (o.size ? (o.size - 1) / o.chunk + 1 : 0)) abort();
  if (o.name != m + LP2P_FILES_OFFER_FIXED || o.hashes != o.name + o.name_len ||
      o.hashes + 32 * (size_t)o.n_chunks != m + ml)
    abort();
  if (memchr(o.name, '/', o.name_len) || memchr(o.name, 0, o.name_len) || o.name[0] == '.') abort();
  if (o.n_chunks && memcmp(o.hashes + 32 * ((size_t)o.n_chunks - 1), o.sha, 32)) abort();
}

static void check_answer(const uint8_t *m, size_t ml) {
  lp2p_files_answer a;
  if (lp2p__files_answer_decode(m, ml, &a) < 0) return;
  uint8_t out[LP2P_FILES_ANSWER_MAX];
  int k = lp2p__files_answer_encode(&a, out);
  if (k < 0 || (size_t)k != ml || memcmp(out, m, ml) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lp2p_lpm_reader *r = NULL;
  if (lp2p_lpm_reader_new(&r, LP2P_FILES_OFFER_MAX, NULL) < 0) return 0;
  while (size > 0) {
    size_t used;
    const uint8_t *m;
    size_t ml;
    int rv = lp2p_lpm_read(r, data, size, &used, &m, &ml);
    if (rv < 0) break;
    data += used;
    size -= used;
    if (rv == 0) break;
    check_offer(m, ml);
    check_answer(m, ml);
  }
  lp2p_lpm_reader_free(r);
  return 0;
}
