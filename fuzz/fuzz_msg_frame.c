/* fuzz_msg_frame.c - the /lp2p/msg/1.0.0 frame decoder (lp2p/messaging.h) over a stream of length-prefixed
 * frames, as the receiver reads them: every frame that decodes re-encodes to the same header bytes. */
#include <stdlib.h>
#include <string.h>

#include "lp2p/lpm.h"
#include "lp2p/messaging.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lp2p_lpm_reader *r = NULL;
  if (lp2p_lpm_reader_new(&r, 1 << 20, NULL) < 0) return 0;
  while (size > 0) {
    size_t used;
    const uint8_t *m;
    size_t ml;
    int rv = lp2p_lpm_read(r, data, size, &used, &m, &ml);
    if (rv < 0) break;
    data += used;
    size -= used;
    if (rv == 0) break;
    lp2p_msg_frame f;
    if (lp2p_msg_frame_decode(m, ml, &f) == 0) {
      uint8_t head[LP2P_MSG_HDR_LEN];
      int k = lp2p_msg_frame_encode_head(&f, head);
      if (k < 0 || (size_t)k > ml || memcmp(head, m, (size_t)k) != 0) abort();
      if (f.type == LP2P_MSG_FRAME_MSG && (f.body != m + LP2P_MSG_HDR_LEN || f.body_len != ml - LP2P_MSG_HDR_LEN))
        abort();
    }
  }
  lp2p_lpm_reader_free(r);
  return 0;
}
