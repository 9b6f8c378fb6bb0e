/* peerstore.c - what a node knows about other peers (lp2p/peerstore.h).
 *
 * Makes a swarm (no network needed), tells its peer store about a peer from
 * several sources (the app, an mDNS-like discovery with a TTL), shows that
 * unusable addresses (0.0.0.0, port 0) are refused, lists the addresses with
 * their source and scope, asks for "public only", records protocols, and
 * checks the answers. Exits 0 when all of that holds.
 *
 * Build against an installed lp2p:
 *   CMake:      find_package(lp2p REQUIRED) + target_link_libraries(app PRIVATE lp2p::lp2p)
 *   pkg-config: cc peerstore.c $(pkg-config --cflags --libs lp2p) */
#include <stdio.h>

#include <lp2p/keys.h>
#include <lp2p/peerstore.h>
#include <lp2p/swarm.h>

static const char *source_name(lp2p_addr_source s) {
  switch (s) {
    case LP2P_ADDR_SRC_USER: return "user";
    case LP2P_ADDR_SRC_DIALED: return "dialed";
    case LP2P_ADDR_SRC_IDENTIFY: return "identify";
    case LP2P_ADDR_SRC_MDNS: return "mdns";
    case LP2P_ADDR_SRC_DHT: return "dht";
    default: return "other";
  }
}

static const char *scope_name(lp2p_ma_scope s) {
  switch (s) {
    case LP2P_MA_SCOPE_LOOPBACK: return "loopback";
    case LP2P_MA_SCOPE_LINK_LOCAL: return "link-local";
    case LP2P_MA_SCOPE_PRIVATE: return "private";
    case LP2P_MA_SCOPE_PUBLIC: return "public";
    default: return "unspecified";
  }
}

static int add(lp2p_peerstore *ps, const lp2p_peer_id *peer, const char *text, lp2p_addr_source src,
               uint64_t ttl_ms) {
  lp2p_multiaddr *ma = NULL;
  int rc = lp2p_multiaddr_parse(&ma, text, NULL, 0);
  if (rc < 0) return rc;
  const lp2p_multiaddr *one = ma;
  rc = lp2p_peerstore_add_addrs(ps, peer, &one, 1, src, ttl_ms);
  lp2p_multiaddr_free(ma);
  return rc;
}

int main(void) {
  int status = 1;
  lp2p_privkey *mine = NULL, *theirs = NULL;
  lp2p_swarm *sw = NULL;
  lp2p_peer_id other;
  if (lp2p_privkey_generate(&mine, LP2P_KEY_ED25519, 0) < 0 ||
      lp2p_privkey_generate(&theirs, LP2P_KEY_ED25519, 0) < 0 ||
      lp2p_peer_id_from_pubkey(lp2p_privkey_public(theirs), &other) < 0) {
    fprintf(stderr, "peerstore: key generation failed\n");
    goto out;
  }
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = mine;
  int rc = lp2p_swarm_new(&sw, &cfg, NULL);
  if (rc < 0) {
    fprintf(stderr, "peerstore: lp2p_swarm_new: %s\n", lp2p_strerror(rc));
    goto out;
  }
  lp2p_peerstore *ps = lp2p_swarm_peerstore(sw);

  /* the app knows a public address; a discovery source found a LAN one for 2 minutes */
  int ok = add(ps, &other, "/ip4/203.0.113.5/tcp/4001", LP2P_ADDR_SRC_USER, 0) == 1;
  ok &= add(ps, &other, "/ip4/192.168.1.20/tcp/4001", LP2P_ADDR_SRC_MDNS, 120000) == 1;
  ok &= add(ps, &other, "/ip6/::1/tcp/4001", LP2P_ADDR_SRC_USER, 0) == 1;
  /* never stored: nobody could dial these */
  ok &= add(ps, &other, "/ip4/0.0.0.0/tcp/4001", LP2P_ADDR_SRC_USER, 0) == LP2P_ERR_INVAL;
  ok &= add(ps, &other, "/ip4/203.0.113.5/tcp/0", LP2P_ADDR_SRC_USER, 0) == LP2P_ERR_INVAL;

  char pid[LP2P_PEER_ID_MAX_TEXT];
  lp2p_peer_id_to_string(&other, pid, sizeof pid);
  lp2p_peer_addr addrs[8];
  size_t n = lp2p_peerstore_addrs(ps, &other, LP2P_MA_SCOPE_ANY, addrs, 8);
  printf("peer %s: %zu addresses\n", pid, n);
  for (size_t i = 0; i < n && i < 8; i++) {
    char text[LP2P_MULTIADDR_MAX_TEXT];
    lp2p_multiaddr_to_string(addrs[i].addr, text, sizeof text);
    printf("  %-28s source=%-8s scope=%-9s %s\n", text, source_name(addrs[i].source), scope_name(addrs[i].scope),
           addrs[i].expires == LP2P_TSTAMP_NEVER ? "permanent" : "expires");
  }
  ok &= n == 3;
  /* what may be handed to the Internet (a DHT answer): public addresses only */
  ok &= lp2p_peerstore_addrs(ps, &other, LP2P_MA_SCOPE_PUBLIC, NULL, 0) == 1;
  ok &= lp2p_peerstore_addrs(ps, &other, LP2P_MA_SCOPE_LAN, NULL, 0) == 1;

  const char *protocols[] = {"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0"};
  ok &= lp2p_peerstore_set_protocols(ps, &other, protocols, 2) == 0;
  ok &= lp2p_peerstore_supports(ps, &other, "/ipfs/ping/1.0.0") == 1;
  ok &= lp2p_peerstore_supports(ps, &other, "/unknown/1.0.0") == 0;
  ok &= lp2p_peerstore_peers(ps, NULL, 0) == 1;
  printf("speaks ping: %s\n", lp2p_peerstore_supports(ps, &other, "/ipfs/ping/1.0.0") ? "yes" : "no");
  if (!ok) {
    fprintf(stderr, "peerstore: unexpected answer from the peer store\n");
    goto out;
  }
  status = 0;
out:
  lp2p_swarm_free(sw);
  lp2p_privkey_free(mine);
  lp2p_privkey_free(theirs);
  return status;
}
