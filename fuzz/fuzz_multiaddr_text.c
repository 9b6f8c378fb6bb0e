/* fuzz/fuzz_multiaddr_text.c - multiaddr text parsing. Invariants: failures
 * leave *out NULL with a non-empty message; successes print, and the printed
 * text parses back to the same binary and prints identically; the binary
 * form re-validates; the component walk covers the whole binary form.
 * Differential check: a lone "/ip6/<x>" must be accepted exactly when libc's
 * inet_pton accepts <x>, with the same bytes, and print like inet_ntop (except
 * for the ::/80 range, where libc prints a dotted quad for IPv4-compatible
 * addresses and we follow RFC 5952, which only does that for ::ffff:0:0/96). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/multiaddr.h"

static char text1[LP2P_MULTIADDR_MAX_TEXT], text2[LP2P_MULTIADDR_MAX_TEXT];

static void ip6_differential(const uint8_t *data, size_t size, const lp2p_multiaddr *ma) {
  char x[128];
  if (size < 6 || size - 5 >= sizeof x || memcmp(data, "/ip6/", 5)) return;
  memcpy(x, data + 5, size - 5);
  x[size - 5] = '\0';
  if (strlen(x) != size - 5 || strchr(x, '/')) return; /* NULs, more components, trailing '/' */
  uint8_t ref[16];
  int libc_ok = inet_pton(AF_INET6, x, ref) == 1;
  if (libc_ok != (ma != NULL)) abort();
  if (!ma) return;
  const uint8_t *v;
  size_t vlen;
  if (lp2p_multiaddr_component(ma, 0, NULL, &v, &vlen) || vlen != 16 || memcmp(v, ref, 16)) abort();
  static const uint8_t zero10[10] = {0};
  if (!memcmp(ref, zero10, sizeof zero10)) return;
  char mine[64], theirs[INET6_ADDRSTRLEN];
  if (lp2p_multiaddr_to_string(ma, mine, sizeof mine) <= 0 || !inet_ntop(AF_INET6, ref, theirs, sizeof theirs)) abort();
  if (strcmp(mine + 5, theirs)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[LP2P_MULTIADDR_ERRLEN];
  lp2p_multiaddr *a = NULL, *b = NULL, *c = NULL;
  int rv = lp2p_multiaddr_parse_n(&a, (const char *)data, size, err, sizeof err);
  ip6_differential(data, size, rv ? NULL : a);
  if (rv) {
    if (rv != LP2P_ERR_MULTIADDR || a || !err[0] || strlen(err) >= sizeof err) abort();
    return 0;
  }
  if (err[0]) abort();
  int n1 = lp2p_multiaddr_to_string(a, text1, sizeof text1);
  if (n1 <= 0 || (size_t)n1 != strlen(text1)) abort();
  if (lp2p_multiaddr_parse(&b, text1, err, sizeof err)) abort();
  if (!lp2p_multiaddr_equal(a, b)) abort();
  int n2 = lp2p_multiaddr_to_string(b, text2, sizeof text2);
  if (n2 != n1 || memcmp(text1, text2, (size_t)n1)) abort();
  /* one byte short must fail cleanly */
  if (lp2p_multiaddr_to_string(b, text2, (size_t)n1) != LP2P_ERR_BUFSIZE) abort();
  size_t len;
  const uint8_t *bytes = lp2p_multiaddr_bytes(a, &len);
  if (!len || len > LP2P_MULTIADDR_MAX_LEN) abort();
  if (lp2p_multiaddr_from_bytes(&c, bytes, len, err, sizeof err) || !lp2p_multiaddr_equal(a, c)) abort();
  size_t count = lp2p_multiaddr_count(a), end = 0;
  for (size_t i = 0; i < count; i++) {
    uint32_t code;
    const uint8_t *v;
    size_t vlen;
    if (lp2p_multiaddr_component(a, i, &code, &v, &vlen) || !lp2p_multiaddr_protocol_name(code)) abort();
    if (v < bytes + end || v + vlen > bytes + len) abort();
    end = (size_t)(v - bytes) + vlen;
  }
  if (end != len) abort();
  lp2p_multiaddr_free(a);
  lp2p_multiaddr_free(b);
  lp2p_multiaddr_free(c);
  return 0;
}
