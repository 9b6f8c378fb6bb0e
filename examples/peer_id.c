/* peer_id.c - the smallest lp2p program: make an identity and show its peer id.
 *
 * Generates an Ed25519 key, derives its peer id, prints it (base58btc and CIDv1 forms), parses
 * both texts back and checks they give the same peer id, and checks that the key embedded in
 * the (identity-multihash) peer id is ours. Exits 0 when all of that holds.
 *
 * Build against an installed lp2p:
 *   CMake:      find_package(lp2p REQUIRED) + target_link_libraries(app PRIVATE lp2p::lp2p)
 *   pkg-config: cc peer_id.c $(pkg-config --cflags --libs lp2p) */
#include <stdio.h>

#include <lp2p/common.h>
#include <lp2p/keys.h>
#include <lp2p/peerid.h>

static int fail(const char *what, int err) {
  fprintf(stderr, "peer_id: %s: %s (%s)\n", what, lp2p_strerror(err), lp2p_err_name(err));
  return 1;
}

int main(void) {
  lp2p_privkey *key = NULL;
  int rc = lp2p_privkey_generate(&key, LP2P_KEY_ED25519, 0);
  if (rc < 0) return fail("generate key", rc);

  int status = 1;
  lp2p_pubkey *embedded = NULL;
  lp2p_peer_id id, parsed, parsed_cid;
  char text[LP2P_PEER_ID_MAX_TEXT], cid[LP2P_PEER_ID_MAX_TEXT];

  if ((rc = lp2p_peer_id_from_pubkey(lp2p_privkey_public(key), &id)) < 0) {
    fail("peer id from key", rc);
    goto out;
  }
  if ((rc = lp2p_peer_id_to_string(&id, text, sizeof text)) < 0) {
    fail("peer id to text", rc);
    goto out;
  }
  if ((rc = lp2p_peer_id_to_cid_string(&id, cid, sizeof cid)) < 0) {
    fail("peer id to CID text", rc);
    goto out;
  }
  printf("%s\n%s\n", text, cid);

  if ((rc = lp2p_peer_id_parse(text, &parsed)) < 0) {
    fail("parse base58 text", rc);
    goto out;
  }
  if ((rc = lp2p_peer_id_parse(cid, &parsed_cid)) < 0) {
    fail("parse CID text", rc);
    goto out;
  }
  if (!lp2p_peer_id_equal(&id, &parsed) || !lp2p_peer_id_equal(&id, &parsed_cid)) {
    fprintf(stderr, "peer_id: text round trip gave a different peer id\n");
    goto out;
  }
  if ((rc = lp2p_peer_id_extract_pubkey(&id, &embedded)) < 0) {
    fail("extract embedded key", rc);
    goto out;
  }
  if (!lp2p_pubkey_equal(embedded, lp2p_privkey_public(key)) || !lp2p_peer_id_matches(&id, embedded)) {
    fprintf(stderr, "peer_id: embedded key does not match\n");
    goto out;
  }
  if (lp2p_peer_id_parse("12D3KooWnot-a-peer-id", &parsed) >= 0) {
    fprintf(stderr, "peer_id: garbage text was accepted\n");
    goto out;
  }
  status = 0;
out:
  lp2p_pubkey_free(embedded);
  lp2p_privkey_free(key);
  return status;
}
