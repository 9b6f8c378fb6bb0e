/* fuzz/fuzz_multiaddr_bytes.c - binary multiaddr validation. Invariants:
 * whatever validates prints, the text parses back to exactly the input bytes
 * (the binary form is canonical), and prefixes/concatenation of the pieces
 * rebuild the same value. */
#include <stdlib.h>
#include <string.h>

#include "lp2p/multiaddr.h"

static char text[LP2P_MULTIADDR_MAX_TEXT];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[LP2P_MULTIADDR_ERRLEN];
  lp2p_multiaddr *a = NULL, *b = NULL;
  int rv = lp2p_multiaddr_from_bytes(&a, data, size, err, sizeof err);
  if (rv) {
    if (rv != LP2P_ERR_MULTIADDR || a || !err[0] || strlen(err) >= sizeof err) abort();
    return 0;
  }
  size_t len;
  const uint8_t *bytes = lp2p_multiaddr_bytes(a, &len);
  if (len != size || memcmp(bytes, data, size)) abort();
  int n = lp2p_multiaddr_to_string(a, text, sizeof text);
  if (n <= 0) abort();
  if (lp2p_multiaddr_parse_n(&b, text, (size_t)n, err, sizeof err)) abort();
  bytes = lp2p_multiaddr_bytes(b, &len);
  if (len != size || memcmp(bytes, data, size)) abort();
  lp2p_multiaddr_free(b);
  /* split after the first component and glue back together */
  size_t count = lp2p_multiaddr_count(a);
  if (count >= 2) {
    lp2p_multiaddr *head = NULL, *tail = NULL, *glued = NULL;
    uint32_t code;
    const uint8_t *v;
    size_t vlen;
    if (lp2p_multiaddr_prefix(&head, a, count - 1)) abort();
    if (lp2p_multiaddr_component(a, count - 1, &code, &v, &vlen)) abort();
    if (lp2p_multiaddr_append(&tail, head, code, v, vlen, err, sizeof err)) abort();
    if (!lp2p_multiaddr_equal(tail, a)) abort();
    if (lp2p_multiaddr_concat(&glued, head, head) == LP2P_OK) {
      if (lp2p_multiaddr_count(glued) != 2 * (count - 1)) abort();
      lp2p_multiaddr_free(glued);
    }
    lp2p_multiaddr_free(head);
    lp2p_multiaddr_free(tail);
  }
  lp2p_multiaddr_free(a);
  return 0;
}
