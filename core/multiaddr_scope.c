/* core/multiaddr_scope.c - reachability scope of a multiaddr and the
 * "could someone dial this" test (see lp2p/multiaddr.h). */
#include <string.h>

#include "lp2p/multiaddr.h"

static lp2p_ma_scope scope_ip4(const uint8_t *a) {
  if (!a[0] && !a[1] && !a[2] && !a[3]) return LP2P_MA_SCOPE_UNSPECIFIED;
  if (a[0] == 127) return LP2P_MA_SCOPE_LOOPBACK;
  if (a[0] == 169 && a[1] == 254) return LP2P_MA_SCOPE_LINK_LOCAL;
  if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xF0) == 16) || (a[0] == 192 && a[1] == 168) ||
      (a[0] == 100 && (a[1] & 0xC0) == 64))
    return LP2P_MA_SCOPE_PRIVATE;
  return LP2P_MA_SCOPE_PUBLIC;
}

static lp2p_ma_scope scope_ip6(const uint8_t *a) {
  static const uint8_t zero[16];
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (!memcmp(a, zero, 16)) return LP2P_MA_SCOPE_UNSPECIFIED;
  if (!memcmp(a, zero, 15) && a[15] == 1) return LP2P_MA_SCOPE_LOOPBACK;
  if (!memcmp(a, mapped, 12)) return scope_ip4(a + 12);
  if (a[0] == 0xFE && (a[1] & 0xC0) == 0x80) return LP2P_MA_SCOPE_LINK_LOCAL;
  if ((a[0] & 0xFE) == 0xFC) return LP2P_MA_SCOPE_PRIVATE;
  return LP2P_MA_SCOPE_PUBLIC;
}

static int name_ends(const uint8_t *v, size_t n, const char *suffix) {
  size_t k = strlen(suffix);
  if (n < k) return 0;
  for (size_t i = 0; i < k; i++) {
    uint8_t c = v[n - k + i];
    if (c >= 'A' && c <= 'Z') c = (uint8_t)(c - 'A' + 'a');
    if (c != (uint8_t)suffix[i]) return 0;
  }
  return 1;
}

static lp2p_ma_scope scope_dns(const uint8_t *v, size_t n) {
  if (n && v[n - 1] == '.') n--; /* fully qualified form */
  if ((n == 9 && name_ends(v, n, "localhost")) || name_ends(v, n, ".localhost")) return LP2P_MA_SCOPE_LOOPBACK;
  if (name_ends(v, n, ".local")) return LP2P_MA_SCOPE_PRIVATE;
  return LP2P_MA_SCOPE_PUBLIC;
}

lp2p_ma_scope lp2p_multiaddr_scope(const lp2p_multiaddr *ma) {
  size_t n = lp2p_multiaddr_count(ma);
  if (!ma) return LP2P_MA_SCOPE_UNSPECIFIED;
  for (size_t i = 0; i < n; i++) {
    uint32_t code;
    const uint8_t *v;
    size_t vlen;
    if (lp2p_multiaddr_component(ma, i, &code, &v, &vlen) < 0) break;
    switch (code) {
      case LP2P_MA_IP4:
        if (vlen == 4) return scope_ip4(v);
        break;
      case LP2P_MA_IP6:
        if (vlen == 16) return scope_ip6(v);
        break;
      case LP2P_MA_DNS:
      case LP2P_MA_DNS4:
      case LP2P_MA_DNS6:
      case LP2P_MA_DNSADDR:
        return scope_dns(v, vlen);
      default:
        break;
    }
  }
  return LP2P_MA_SCOPE_PUBLIC;
}

int lp2p_multiaddr_is_dialable(const lp2p_multiaddr *ma) {
  if (!ma || lp2p_multiaddr_scope(ma) == LP2P_MA_SCOPE_UNSPECIFIED) return 0;
  size_t n = lp2p_multiaddr_count(ma);
  for (size_t i = 0; i < n; i++) {
    uint32_t code;
    const uint8_t *v;
    size_t vlen;
    if (lp2p_multiaddr_component(ma, i, &code, &v, &vlen) < 0) return 0;
    if ((code == LP2P_MA_TCP || code == LP2P_MA_UDP) && vlen == 2 && !v[0] && !v[1]) return 0;
    if (code == LP2P_MA_IP4 && vlen == 4 && ((v[0] & 0xF0) == 0xE0 || (v[0] == 255 && v[1] == 255 && v[2] == 255 && v[3] == 255)))
      return 0;
  }
  return 1;
}
