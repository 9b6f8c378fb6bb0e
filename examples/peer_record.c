/* peer_record.c - signed peer records (lp2p/record.h): seals our addresses in
 * a signed envelope (what identify sends as signedPeerRecord), opens it as a
 * receiver would, and shows that a modified envelope no longer verifies.
 * Exits 0 when all of that holds. */
#include <stdio.h>
#include <stdlib.h>

#include <lp2p/record.h>

int main(void) {
  lp2p_privkey *key;
  if (lp2p_privkey_generate(&key, LP2P_KEY_ED25519, 0) < 0) return 1;
  lp2p_peer_id me;
  lp2p_peer_id_from_pubkey(lp2p_privkey_public(key), &me);
  lp2p_multiaddr *addrs[2];
  lp2p_multiaddr_parse(&addrs[0], "/ip4/192.0.2.7/tcp/4001", NULL, 0);
  lp2p_multiaddr_parse(&addrs[1], "/ip6/2001:db8::7/tcp/4001", NULL, 0);

  uint8_t *env;
  size_t len;
  int rv = lp2p_peer_record_seal(key, 42, (const lp2p_multiaddr *const *)addrs, 2, &env, &len);
  if (rv < 0) return fprintf(stderr, "peer_record: seal: %s\n", lp2p_strerror(rv)), 1;
  printf("peer_record: sealed %zu-byte envelope\n", len);

  uint64_t seq = 0;
  lp2p_multiaddr **got = NULL;
  size_t n = 0;
  rv = lp2p_peer_record_open(env, len, &me, NULL, &seq, &got, &n, 16);
  int ok = rv == 0 && seq == 42 && n == 2;
  for (size_t i = 0; i < n; i++) {
    char t[128];
    lp2p_multiaddr_to_string(got[i], t, sizeof t);
    printf("peer_record: seq %llu address %s\n", (unsigned long long)seq, t);
    if (!lp2p_multiaddr_equal(got[i], addrs[i])) ok = 0;
  }
  lp2p_peer_record_addrs_free(got, n);

  env[len - 1] ^= 1; /* flip a bit of the signature */
  rv = lp2p_peer_record_open(env, len, &me, NULL, NULL, NULL, NULL, 0);
  printf("peer_record: tampered envelope: %s\n", lp2p_err_name(rv));
  if (rv != LP2P_ERR_SIGNATURE) ok = 0;

  free(env);
  lp2p_multiaddr_free(addrs[0]);
  lp2p_multiaddr_free(addrs[1]);
  lp2p_privkey_free(key);
  return ok ? 0 : 1;
}
