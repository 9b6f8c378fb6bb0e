/* test_swarm.c - swarms over real loopback TCP: connecting, behaviours and
 * the registry, negotiation errors, dialing rules, peer table. */
#include <stdlib.h>
#include <string.h>

#include "swarm_harness.h"
#include "test.h"

static const char *const k_echo[] = {TECHO_PROTO};

/* A dials B; both sides see one CONN_ESTABLISHED with the right direction. */
TEST(connect_both_directions) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  CHECK_EQ(a.n_listen_added, 1);

  tdial d1 = {0};
  const char *addrs[] = {b.addr};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, addrs, 1, tdial_cb, &d1));
  CHECK_EQ(d1.done, 0); /* never from inside the call */
  CHECK(RUN_UNTIL(&L, d1.done && b.n_established == 1, 5000));
  CHECK_EQ(d1.err, 0);
  CHECK(lp2p_peer_id_equal(&d1.peer, &b.id));
  CHECK_EQ(a.n_established, 1);
  CHECK(lp2p_swarm_is_connected(a.sw, &b.id));
  CHECK(lp2p_swarm_is_connected(b.sw, &a.id));
  lp2p_peer_id peers[4];
  CHECK_EQ(lp2p_swarm_connected_peers(a.sw, peers, 4), 1);
  CHECK(lp2p_peer_id_equal(&peers[0], &b.id));
  CHECK(lp2p_swarm_peer_remote_addr(a.sw, &b.id) != NULL);

  /* and the other direction, to a third swarm */
  tsw c;
  CHECK_OK(tsw_init(&c, &L, 3, NULL, 1));
  tdial d2 = {0};
  const char *addrs2[] = {a.addr};
  CHECK_OK(lp2p_swarm_dial(c.sw, &a.id, addrs2, 1, tdial_cb, &d2));
  CHECK(RUN_UNTIL(&L, d2.done && a.n_established == 2, 5000));
  CHECK_EQ(d2.err, 0);
  CHECK_EQ(lp2p_swarm_connected_peers(a.sw, NULL, 0), 2);
  CHECK_EQ(a.n_closed + b.n_closed + c.n_closed, 0);

  tsw_free(&a);
  tsw_free(&b);
  tsw_free(&c);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* A behaviour written against the public API registers an echo protocol. */
TEST(behaviour_echo_protocol) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  techo *eb = calloc(1, sizeof *eb);
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, eb));
  CHECK_EQ(eb->attached, 1);
  CHECK(lp2p_swarm_behaviour(b.sw, "test-echo") == eb);
  const char *ids[4];
  CHECK_EQ(lp2p_swarm_protocols(b.sw, ids, 4), 1);
  CHECK_STR(ids[0], TECHO_PROTO);

  CHECK_OK(lp2p_swarm_add_address(a.sw, NULL, b.addr));
  tclient cl;
  tclient_init(&cl, 100000, 7);
  lp2p_stream *s = NULL;
  /* not connected yet: open_stream dials the address book */
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &cl, &s));
  CHECK(s != NULL);
  CHECK_EQ(lp2p_stream_direction(s), LP2P_DIR_OUTBOUND);
  CHECK(RUN_UNTIL(&L, cl.closed, 5000));
  CHECK_EQ(cl.opened, 1);
  CHECK_STR(cl.protocol, TECHO_PROTO);
  CHECK_EQ(cl.close_err, 0);
  CHECK_EQ(cl.received, 100000);
  CHECK_EQ(cl.mismatch, 0);
  CHECK_EQ(cl.eof, 1);
  CHECK(RUN_UNTIL(&L, eb->closed == 1, 2000));
  CHECK_EQ(eb->opened, 1);
  CHECK_EQ(eb->close_errs, 0);
  CHECK_EQ(lp2p_swarm_dial_count(a.sw), 1);

  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(eb->detached, 1);
  CHECK_EQ(eb->destroyed, 1);
  free(eb);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* None of the proposed protocols is supported: LP2P_ERR_UNSUPPORTED, no hang. */
TEST(protocol_not_supported) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  techo eb = {0};
  eb.proto = TECHO_PROTO;
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  CHECK_OK(lp2p_swarm_add_address(a.sw, &b.id, b.base_addr));

  const char *ids[] = {"/nope/1.0.0", "/nope/2.0.0"};
  tclient cl;
  tclient_init(&cl, 10, 1);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, ids, 2, &tclient_handler, &cl, NULL));
  CHECK(RUN_UNTIL(&L, cl.closed, 5000));
  CHECK_EQ(cl.opened, 0);
  CHECK_EQ(cl.close_err, LP2P_ERR_UNSUPPORTED);
  CHECK(RUN_UNTIL(&L, b.n_in_stream_failed == 1, 2000));
  CHECK_EQ(b.last_in_stream_err, LP2P_ERR_UNSUPPORTED);

  /* the second choice is taken when the first is refused */
  const char *ids2[] = {"/nope/1.0.0", TECHO_PROTO};
  tclient cl2;
  tclient_init(&cl2, 1000, 2);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, ids2, 2, &tclient_handler, &cl2, NULL));
  CHECK(RUN_UNTIL(&L, cl2.closed, 5000));
  CHECK_STR(cl2.protocol, TECHO_PROTO);
  CHECK_EQ(cl2.received, 1000);
  CHECK_EQ(cl2.close_err, 0);

  /* the connection survived both */
  CHECK(lp2p_swarm_is_connected(a.sw, &b.id));
  CHECK_EQ(a.n_closed, 0);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* /p2p/<other id> on a dial: LP2P_ERR_PEER_ID_MISMATCH, per-address error reported. */
TEST(peer_id_mismatch) {
  tloop L;
  tloop_init(&L);
  tsw a, b, c;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  CHECK_OK(tsw_init(&c, &L, 3, NULL, 0));
  char wrong[300];
  char cid[LP2P_PEER_ID_MAX_TEXT];
  lp2p_peer_id_to_string(&c.id, cid, sizeof cid);
  snprintf(wrong, sizeof wrong, "%s/p2p/%s", b.base_addr, cid);
  tdial d = {0};
  const char *addrs[] = {wrong};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, addrs, 1, tdial_cb, &d));
  CHECK(RUN_UNTIL(&L, d.done, 5000));
  CHECK_EQ(d.err, LP2P_ERR_PEER_ID_MISMATCH);
  CHECK_EQ(d.n_errs, 1);
  CHECK_EQ(d.errs[0], LP2P_ERR_PEER_ID_MISMATCH);
  CHECK_EQ(a.n_dial_failed, 1);
  CHECK_EQ(a.last_dial_err, LP2P_ERR_PEER_ID_MISMATCH);
  CHECK(!lp2p_swarm_is_connected(a.sw, &b.id));
  CHECK(!lp2p_swarm_is_connected(a.sw, &c.id));
  CHECK_EQ(a.n_established, 0);
  /* B saw the failed inbound upgrade, never a connection */
  CHECK(RUN_UNTIL(&L, b.n_in_conn_failed == 1, 2000));
  CHECK_EQ(b.n_established, 0);

  /* explicit peer argument that contradicts the /p2p suffix: refused before dialing */
  tdial d2 = {0};
  const char *addrs2[] = {b.addr};
  uint64_t dials = lp2p_swarm_dial_count(a.sw);
  CHECK_OK(lp2p_swarm_dial(a.sw, &c.id, addrs2, 1, tdial_cb, &d2));
  CHECK(RUN_UNTIL(&L, d2.done, 5000));
  CHECK_EQ(d2.err, LP2P_ERR_PEER_ID_MISMATCH);
  CHECK_EQ(lp2p_swarm_dial_count(a.sw), dials);

  tsw_free(&a);
  tsw_free(&b);
  tsw_free(&c);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Several addresses are tried in turn; each failure is reported. */
TEST(dial_addresses_in_turn) {
  tloop L;
  tloop_init(&L);
  tsw a, b, dead;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  /* a port nobody listens on: listen, remember, free */
  CHECK_OK(tsw_init(&dead, &L, 9, NULL, 1));
  char dead_addr[200];
  strcpy(dead_addr, dead.base_addr);
  tsw_free(&dead);
  tloop_sleep(&L, 20);

  tdial d = {0};
  const char *addrs[] = {dead_addr, "/ip4/127.0.0.1/udp/1/quic-v1", b.base_addr};
  CHECK_OK(lp2p_swarm_dial(a.sw, &b.id, addrs, 3, tdial_cb, &d));
  CHECK(RUN_UNTIL(&L, d.done, 5000));
  CHECK_EQ(d.err, 0);
  CHECK(lp2p_swarm_is_connected(a.sw, &b.id));
  CHECK_OK(lp2p_swarm_disconnect(a.sw, &b.id));
  CHECK(RUN_UNTIL(&L, a.n_closed == 1 && b.n_closed == 1, 5000));
  CHECK_EQ(a.last_closed_err, LP2P_ERR_CANCELED);

  tdial d2 = {0};
  const char *bad[] = {dead_addr, "/ip4/127.0.0.1/udp/1/quic-v1"};
  CHECK_OK(lp2p_swarm_dial(a.sw, &b.id, bad, 2, tdial_cb, &d2));
  CHECK(RUN_UNTIL(&L, d2.done, 5000));
  CHECK_EQ(d2.err, LP2P_ERR_DIAL);
  CHECK_EQ(d2.n_errs, 2);
  CHECK_EQ(d2.errs[0], LP2P_ERR_CONNREFUSED);
  CHECK_EQ(d2.errs[1], LP2P_ERR_UNSUPPORTED);
  CHECK_EQ(a.n_dial_failed, 1);

  /* sync argument errors: no callback */
  tdial d3 = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, (const char *[]){"/ip4/1.2.3.4"}, 1, tdial_cb, &d3));
  CHECK(RUN_UNTIL(&L, d3.done, 5000));
  CHECK_EQ(d3.err, LP2P_ERR_UNSUPPORTED);
  CHECK_EQ(lp2p_swarm_dial(a.sw, NULL, (const char *[]){"nonsense"}, 1, tdial_cb, &d2), LP2P_ERR_MULTIADDR);
  CHECK_EQ(lp2p_swarm_dial(a.sw, &a.id, (const char *[]){b.base_addr}, 1, tdial_cb, &d2), LP2P_ERR_INVAL);
  CHECK_EQ(d2.calls, 1);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* The remote goes away: CONN_CLOSED at once, empty peer table, streams fail. */
TEST(remote_close_event) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  CHECK_OK(lp2p_swarm_add_address(a.sw, &b.id, b.base_addr));
  /* a stream that stays open: far more data than will ever be sent */
  tclient held;
  tclient_init(&held, 1u << 30, 3); /* too much to finish: stays open */
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &held, NULL));
  CHECK(RUN_UNTIL(&L, held.opened && held.received > 0, 5000));

  tsw_free(&b);
  CHECK(RUN_UNTIL(&L, a.n_closed == 1 && held.closed, 5000));
  CHECK(a.last_closed_err == LP2P_ERR_GOAWAY || a.last_closed_err == LP2P_ERR_EOF ||
        a.last_closed_err == LP2P_ERR_CONNRESET);
  CHECK(held.close_err != 0);
  CHECK(!lp2p_swarm_is_connected(a.sw, &b.id));
  CHECK_EQ(lp2p_swarm_connected_peers(a.sw, NULL, 0), 0);

  /* opening a stream now redials the known address: it is gone => dial error, not silence */
  tclient again;
  tclient_init(&again, 10, 4);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &again, NULL));
  CHECK(RUN_UNTIL(&L, again.closed, 5000));
  CHECK_EQ(again.close_err, LP2P_ERR_CONNREFUSED);
  CHECK_EQ(again.opened, 0);

  /* unknown peer, no address */
  tsw c;
  CHECK_OK(tsw_init(&c, &L, 3, NULL, 0));
  tclient none;
  tclient_init(&none, 10, 5);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &c.id, k_echo, 1, &tclient_handler, &none, NULL));
  CHECK_EQ(none.closed, 0);
  CHECK(RUN_UNTIL(&L, none.closed, 2000));
  CHECK_EQ(none.close_err, LP2P_ERR_NOT_CONNECTED);

  tsw_free(&a);
  tsw_free(&c);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Streams to a connected peer reuse the connection: no dial. */
TEST(connected_peer_no_dial) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  tdial d = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, (const char *[]){b.addr}, 1, tdial_cb, &d));
  CHECK(RUN_UNTIL(&L, d.done && b.n_established == 1, 5000));
  CHECK_EQ(lp2p_swarm_dial_count(a.sw), 1);
  tclient cls[5];
  for (int i = 0; i < 5; i++) {
    tclient_init(&cls[i], 5000, (uint32_t)i);
    CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &cls[i], NULL));
  }
  /* and the listener side opens to the dialer: uses the same connection */
  techo ea = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(a.sw, &techo_vtable, &ea));
  tclient back;
  tclient_init(&back, 3000, 9);
  CHECK_OK(lp2p_swarm_open_stream(b.sw, &a.id, k_echo, 1, &tclient_handler, &back, NULL));
  /* dialing a connected peer: success, no network */
  tdial d2 = {0};
  CHECK_OK(lp2p_swarm_dial(a.sw, &b.id, NULL, 0, tdial_cb, &d2));
  CHECK(RUN_UNTIL(&L,
                  cls[0].closed && cls[1].closed && cls[2].closed && cls[3].closed && cls[4].closed &&
                      back.closed && d2.done,
                  5000));
  for (int i = 0; i < 5; i++) {
    CHECK_EQ(cls[i].close_err, 0);
    CHECK_EQ(cls[i].received, 5000);
    CHECK_EQ(cls[i].mismatch, 0);
  }
  CHECK_EQ(back.close_err, 0);
  CHECK_EQ(back.opened, 1);
  CHECK_EQ(back.received, 3000);
  CHECK_EQ(d2.err, 0);
  CHECK_EQ(lp2p_swarm_dial_count(a.sw), 1);
  CHECK_EQ(lp2p_swarm_dial_count(b.sw), 0);
  CHECK_EQ(a.n_established, 1);
  CHECK_EQ(b.n_established, 1);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Concurrent dials (and stream opens) to one peer coalesce into one attempt. */
TEST(concurrent_dials_coalesce) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  tdial d[3] = {{0}};
  CHECK_OK(lp2p_swarm_dial(a.sw, NULL, (const char *[]){b.addr}, 1, tdial_cb, &d[0]));
  CHECK_OK(lp2p_swarm_dial(a.sw, &b.id, (const char *[]){b.base_addr}, 1, tdial_cb, &d[1]));
  CHECK_OK(lp2p_swarm_dial(a.sw, &b.id, NULL, 0, tdial_cb, &d[2]));
  tclient cl;
  tclient_init(&cl, 100, 1);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &cl, NULL));
  CHECK(RUN_UNTIL(&L, d[0].done && d[1].done && d[2].done && cl.closed, 5000));
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(d[i].err, 0);
    CHECK_EQ(d[i].calls, 1);
  }
  CHECK_EQ(cl.received, 100);
  CHECK_EQ(lp2p_swarm_dial_count(a.sw), 1);
  CHECK_EQ(a.n_established, 1);
  CHECK_EQ(b.n_established, 1);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* The remote drops the connection; the next stream redials the known address. */
TEST(redial_after_close) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  techo eb = {0};
  CHECK_OK(lp2p_swarm_add_behaviour(b.sw, &techo_vtable, &eb));
  tclient c1;
  tclient_init(&c1, 1000, 1);
  CHECK_OK(lp2p_swarm_add_address(a.sw, NULL, b.addr));
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &c1, NULL));
  CHECK(RUN_UNTIL(&L, c1.closed && b.n_established == 1, 5000));
  CHECK_EQ(c1.close_err, 0);
  CHECK_OK(lp2p_swarm_disconnect(b.sw, &a.id));
  CHECK(RUN_UNTIL(&L, a.n_closed == 1 && b.n_closed == 1, 5000));
  CHECK(a.last_closed_err == LP2P_ERR_GOAWAY || a.last_closed_err == LP2P_ERR_EOF);
  CHECK(!lp2p_swarm_is_connected(a.sw, &b.id));
  /* the listener has no dialable address of A: fails clearly, does not dial */
  {
    tclient back;
    tclient_init(&back, 10, 3);
    CHECK_OK(lp2p_swarm_open_stream(b.sw, &a.id, k_echo, 1, &tclient_handler, &back, NULL));
    CHECK(RUN_UNTIL(&L, back.closed, 2000));
    CHECK_EQ(back.close_err, LP2P_ERR_NOT_CONNECTED);
    CHECK_EQ(lp2p_swarm_dial_count(b.sw), 0);
  }
  tclient c2;
  tclient_init(&c2, 1000, 2);
  CHECK_OK(lp2p_swarm_open_stream(a.sw, &b.id, k_echo, 1, &tclient_handler, &c2, NULL));
  CHECK(RUN_UNTIL(&L, c2.closed, 5000));
  CHECK_EQ(c2.close_err, 0);
  CHECK_EQ(c2.received, 1000);
  CHECK_EQ(lp2p_swarm_dial_count(a.sw), 2);
  CHECK_EQ(a.n_established, 2);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Listen addresses: unspecified address expansion, unlisten, events. */
TEST(listen_addresses) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 0));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 0));
  CHECK_OK(lp2p_swarm_listen(a.sw, "/ip4/0.0.0.0/tcp/0"));
  const lp2p_multiaddr *addrs[16];
  size_t n = lp2p_swarm_listen_addrs(a.sw, addrs, 16);
  CHECK(n >= 1);
  CHECK_EQ(a.n_listen_added, (int)n);
  int loopback = 0, port = -1;
  for (size_t i = 0; i < n && i < 16; i++) {
    char t[128];
    lp2p_multiaddr_to_string(addrs[i], t, sizeof t);
    CHECK(strncmp(t, "/ip4/0.0.0.0/", 13) != 0);
    if (!strncmp(t, "/ip4/127.0.0.1/tcp/", 19)) {
      loopback = 1;
      port = atoi(t + 19);
    }
  }
  CHECK(loopback);
  /* reachable through the expanded loopback address */
  char dial_to[64];
  snprintf(dial_to, sizeof dial_to, "/ip4/127.0.0.1/tcp/%d", port);
  tdial d = {0};
  CHECK_OK(lp2p_swarm_dial(b.sw, &a.id, (const char *[]){dial_to}, 1, tdial_cb, &d));
  CHECK(RUN_UNTIL(&L, d.done && a.n_established == 1, 5000));
  CHECK_EQ(d.err, 0);
  /* unlisten: addresses removed, events emitted, existing connections kept */
  CHECK_EQ(lp2p_swarm_unlisten(a.sw, "/ip4/1.2.3.4/tcp/1"), LP2P_ERR_NOT_FOUND);
  CHECK_OK(lp2p_swarm_unlisten(a.sw, "/ip4/0.0.0.0/tcp/0"));
  CHECK_EQ(lp2p_swarm_listen_addrs(a.sw, addrs, 16), 0);
  int removed = 0;
  for (int i = 0; i < a.n_events; i++) removed += a.events[i] == LP2P_SWARM_EV_LISTEN_ADDR_REMOVED;
  CHECK_EQ(removed, (int)n);
  CHECK(lp2p_swarm_is_connected(a.sw, &b.id));
  CHECK_OK(lp2p_swarm_disconnect(b.sw, &a.id));
  CHECK(RUN_UNTIL(&L, a.n_closed == 1, 5000));
  tdial d2 = {0};
  CHECK_OK(lp2p_swarm_dial(b.sw, &a.id, (const char *[]){dial_to}, 1, tdial_cb, &d2));
  CHECK(RUN_UNTIL(&L, d2.done, 5000));
  CHECK_EQ(d2.err, LP2P_ERR_CONNREFUSED);
  /* the same port can be taken again; a taken port is reported */
  char again[64];
  snprintf(again, sizeof again, "/ip4/127.0.0.1/tcp/%d", port);
  CHECK_OK(lp2p_swarm_listen(a.sw, again));
  CHECK_EQ(lp2p_swarm_listen(b.sw, again), LP2P_ERR_ADDRINUSE);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* IPv6 loopback, when the host has it. */
TEST(ipv6_loopback) {
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 0));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 0));
  int rv = lp2p_swarm_listen(b.sw, "/ip6/::1/tcp/0");
  if (rv == 0) {
    const lp2p_multiaddr *ma;
    CHECK_EQ(lp2p_swarm_listen_addrs(b.sw, &ma, 1), 1);
    char t[128];
    lp2p_multiaddr_to_string(ma, t, sizeof t);
    CHECK(!strncmp(t, "/ip6/::1/tcp/", 13));
    tdial d = {0};
    CHECK_OK(lp2p_swarm_dial(a.sw, &b.id, (const char *[]){t}, 1, tdial_cb, &d));
    CHECK(RUN_UNTIL(&L, d.done && b.n_established == 1, 5000));
    CHECK_EQ(d.err, 0);
    char r[128];
    lp2p_multiaddr_to_string(lp2p_swarm_peer_remote_addr(b.sw, &a.id), r, sizeof r);
    CHECK(!strncmp(r, "/ip6/::1/tcp/", 13));
  } else {
    printf("     (no IPv6 loopback here: %s)\n", lp2p_err_name(rv));
  }
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

/* Registry: inbound handler replaced/removed; protocol list; bad ids rejected. */
TEST(registry_api) {
  tloop L;
  tloop_init(&L);
  tsw a;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 0));
  static const lp2p_stream_handler h = {sizeof(lp2p_stream_handler), NULL, NULL, NULL, NULL, NULL};
  CHECK_EQ(lp2p_swarm_set_protocol(a.sw, "noslash", &h, NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_swarm_set_protocol(a.sw, "/bad\nid", &h, NULL), LP2P_ERR_INVAL);
  CHECK_OK(lp2p_swarm_set_protocol(a.sw, "/a/1", &h, NULL));
  CHECK_OK(lp2p_swarm_set_protocol(a.sw, "/b/1", &h, NULL));
  CHECK_OK(lp2p_swarm_set_protocol(a.sw, "/a/1", &h, &a));
  const char *ids[4];
  CHECK_EQ(lp2p_swarm_protocols(a.sw, ids, 4), 2);
  CHECK_OK(lp2p_swarm_remove_protocol(a.sw, "/a/1"));
  CHECK_EQ(lp2p_swarm_remove_protocol(a.sw, "/a/1"), LP2P_ERR_NOT_FOUND);
  CHECK_EQ(lp2p_swarm_protocols(a.sw, ids, 4), 1);
  CHECK_STR(ids[0], "/b/1");
  CHECK_EQ(lp2p_swarm_open_stream(a.sw, &a.id, (const char *[]){"/b/1"}, 1, &h, NULL, NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_swarm_listen(a.sw, "/ip4/127.0.0.1/udp/0"), LP2P_ERR_UNSUPPORTED);
  CHECK_EQ(lp2p_swarm_listen(a.sw, "garbage"), LP2P_ERR_MULTIADDR);
  tsw_free(&a);
  CHECK_EQ(tloop_finish(&L), 0);
}

int main(void) {
  RUN(connect_both_directions);
  RUN(behaviour_echo_protocol);
  RUN(protocol_not_supported);
  RUN(peer_id_mismatch);
  RUN(dial_addresses_in_turn);
  RUN(remote_close_event);
  RUN(connected_peer_no_dial);
  RUN(concurrent_dials_coalesce);
  RUN(redial_after_close);
  RUN(listen_addresses);
  RUN(ipv6_loopback);
  RUN(registry_api);
  return test_done();
}
