/* tests/tools/kad_net.c - N lp2p swarms with the Kademlia behaviour (lp2p/kad.h) in ONE process on
 * loopback TCP, driven over stdin (one command a line), answering with JSON lines on stdout. Used
 * by the mixed-network test (tests/interop/test_kad_mixed.sh: these nodes + go, js and rust ctl
 * peers in one DHT) and the mixed benchmark (bench/bench_kad_mixed.py).
 *
 *   kad_net [--nodes N] [--isolated K] [--seed S]
 *
 * N swarms (default 50), each with identify, ping and kad (server mode, /pk/ and any-value "/v/"
 * namespaces), listen on 127.0.0.1; all but the last K (default 0) bootstrap among themselves
 * (node i knows node (7i mod i) and node i-1). Then the first line is
 *   {"event":"ready","nodes":N,"peers":[ids],"addrs":[addr/p2p/id],"ms":bootstrap duration}
 * Commands (I = node index; KEY/VALUE/MH = hex; PEER = peer id; MADDR = .../p2p/ID):
 *   add I MADDR            kad add_bootstrap               -> add {node, ok, error?}
 *   known PEER             an outside peer, for grind-*    -> known {count}
 *   bootstrap I            -> bootstrap {node, ok, error?, peers(count), requests, hops, ms}
 *   find-peer I PEER       -> find-peer {node, ok, peer, addrs, requests, hops, ms}
 *   closest I KEY          -> closest {node, ok, peers, requests, hops, ms}
 *   put I KEY VALUE        -> put {node, ok, stored, requests, ms}
 *   get I KEY              -> get {node, ok, value, requests, ms}
 *   provide I MH           -> provide {node, ok, stored, requests, ms}
 *   find-providers I MH    -> find-providers {node, ok, providers:[{peer, addrs}], requests, ms}
 *   table I                -> table {node, count, peers}
 *   in-tables PEER         -> in-tables {count: nodes whose routing table holds PEER}
 *   holders KEY            nodes holding the record locally -> holders {nodes:[I...]}
 *   prov-holders MH        nodes holding providers for MH   -> prov-holders {nodes:[I...]}
 *   probe I MADDR get|prov KEY   node I sends ONE GET_VALUE / GET_PROVIDERS for KEY straight to the
 *                          peer of MADDR and reports what that peer holds itself
 *                          -> probe {node, ok, value?, providers:[ids], closer(count), error?}
 *   grind-pk PEER          an Ed25519 key whose /pk/ record key is closer to PEER than to any other
 *                          node of this process or `known` peer -> grind-pk {key, value, tries}
 *   grind-mh PEER          same for a sha2-256 multihash (provider key) -> grind-mh {mh, cid, tries}
 *   stats                  -> stats {served (kad requests answered, all nodes), cpu_us (user+sys of
 *                             this process), rss_kb, records}
 *   quit                   -> stopped {} and exit (also on stdin EOF)
 * Results of queries come when they end, possibly out of order (every one names its node). */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "kad/engine/kad_engine.h"
#include "lp2p/encoding.h"
#include "lp2p/identify.h"
#include "lp2p/kad.h"
#include "lp2p/ping.h"
#include "lp2p/uv.h"

typedef struct knode {
  lp2p_swarm *sw;
  lp2p_privkey *key;
  lp2p_peer_id id;
  lp2p_kad *kad;
  char addr[300];
} knode;

static uv_loop_t loop;
static knode *nodes;
static int nn = 50, isolated = 0;
static lp2p_peer_id known[64];
static int nknown;
static int quitting;

static int v_any(void *ud, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
  (void)ud, (void)k, (void)kl, (void)v, (void)vl;
  return 0;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- output ---------------------------------------------------------------------------------- */
static void hexout(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
}
static void idout(const lp2p_peer_id *id) {
  char t[LP2P_PEER_ID_MAX_TEXT];
  lp2p_peer_id_to_string(id, t, sizeof t);
  printf("\"%s\"", t);
}
static void jstr(const char *s) { /* our strings need no escaping beyond quotes/backslashes */
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') putchar('\\');
    putchar((unsigned char)*s < 0x20 ? ' ' : *s);
  }
  putchar('"');
}
static void done_line(void) {
  puts("}");
  fflush(stdout);
}
static void err_line(const char *ev, int node, const char *msg) {
  printf("{\"event\":\"%s\",\"node\":%d,\"ok\":false,\"error\":", ev, node);
  jstr(msg);
  done_line();
}

static int unhex(const char *s, uint8_t *out, size_t cap, size_t *len) {
  if (s[0] == '0' && s[1] == 'x') s += 2;
  size_t n = strlen(s);
  if (n % 2 || n / 2 > cap) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (uint8_t)v;
  }
  *len = n / 2;
  return 0;
}

/* ---- nodes ----------------------------------------------------------------------------------- */
static int node_new(knode *n, int i, uint32_t seed) {
  uint8_t s[32];
  for (int j = 0; j < 32; j++) s[j] = (uint8_t)(seed * 131u + (uint32_t)i * 7u + (uint32_t)j * 13u);
  s[0] = 0x6b, s[1] = (uint8_t)i, s[2] = (uint8_t)(seed >> 8), s[3] = (uint8_t)seed;
  if (lp2p_privkey_from_ed25519_seed(&n->key, s) < 0) return -1;
  lp2p_peer_id_from_pubkey(lp2p_privkey_public(n->key), &n->id);
  lp2p_swarm_config c;
  lp2p_swarm_config_default(&c);
  c.identity = n->key;
  c.idle_timeout_ms = 0;
  if (lp2p_swarm_new_uv(&n->sw, &c, &loop, NULL) < 0) return -1;
  if (lp2p_swarm_listen(n->sw, "/ip4/127.0.0.1/tcp/0") < 0) return -1;
  if (lp2p_identify_add(n->sw, NULL, NULL) < 0) return -1;
  /* js @libp2p/kad-dht admits a peer to its routing table only once it answered a libp2p ping */
  if (lp2p_ping_add(n->sw, NULL, NULL) < 0) return -1;
  lp2p_kad_config kc;
  lp2p_kad_config_default(&kc);
  static const lp2p_kad_validator vv = {"v", v_any, NULL, NULL};
  kc.validators = &vv;
  kc.n_validators = 1;
  if (lp2p_kad_add(n->sw, &kc, &n->kad) < 0) return -1;
  const lp2p_multiaddr *ma;
  lp2p_swarm_listen_addrs(n->sw, &ma, 1);
  char pid[LP2P_PEER_ID_MAX_TEXT];
  lp2p_multiaddr_to_string(ma, n->addr, sizeof n->addr);
  lp2p_peer_id_to_string(&n->id, pid, sizeof pid);
  size_t l = strlen(n->addr);
  snprintf(n->addr + l, sizeof n->addr - l, "/p2p/%s", pid);
  return 0;
}

/* ---- queries --------------------------------------------------------------------------------- */
typedef struct qctx {
  char ev[24];
  int node;
  uint64_t t0;
  int *counter; /* startup bootstrap */
} qctx;

static void on_result(lp2p_kad *k, const lp2p_kad_result *r, void *ud) {
  qctx *q = ud;
  (void)k;
  if (q->counter) {
    ++*q->counter;
    free(q);
    return;
  }
  double ms = (double)(now_ns() - q->t0) / 1e6;
  printf("{\"event\":\"%s\",\"node\":%d,\"ok\":%s", q->ev, q->node, r->err ? "false" : "true");
  if (r->err) {
    printf(",\"error\":");
    jstr(lp2p_strerror(r->err));
  }
  printf(",\"requests\":%u,\"hops\":%u,\"contacted\":%u,\"failures\":%u,\"ms\":%.3f,\"stored\":%u", r->stats.requests,
         r->stats.hops, r->stats.peers_contacted, r->stats.failures, ms, r->stored);
  if (r->kind == LP2P_KAD_Q_GET_VALUE && !r->err) {
    printf(",\"value\":\"");
    hexout(r->value, r->value_len);
    putchar('"');
  }
  if (r->kind == LP2P_KAD_Q_FIND_PEER && !r->err && r->n_peers) {
    printf(",\"peer\":");
    idout(&r->peers[0].peer);
    printf(",\"addrs\":[");
    for (size_t i = 0; i < r->peers[0].n_addrs; i++) {
      char a[300];
      lp2p_multiaddr_to_string(r->peers[0].addrs[i], a, sizeof a);
      printf("%s", i ? "," : "");
      jstr(a);
    }
    putchar(']');
  }
  if (r->kind == LP2P_KAD_Q_GET_CLOSEST_PEERS || r->kind == LP2P_KAD_Q_BOOTSTRAP) {
    printf(",\"peers\":[");
    for (size_t i = 0; i < r->n_peers; i++) {
      printf("%s", i ? "," : "");
      idout(&r->peers[i].peer);
    }
    putchar(']');
  }
  if (r->kind == LP2P_KAD_Q_FIND_PROVIDERS) {
    printf(",\"providers\":[");
    for (size_t i = 0; i < r->n_peers; i++) {
      printf("%s{\"peer\":", i ? "," : "");
      idout(&r->peers[i].peer);
      printf(",\"addrs\":[");
      for (size_t j = 0; j < r->peers[i].n_addrs; j++) {
        char a[300];
        lp2p_multiaddr_to_string(r->peers[i].addrs[j], a, sizeof a);
        printf("%s", j ? "," : "");
        jstr(a);
      }
      printf("]}");
    }
    putchar(']');
  }
  done_line();
  free(q);
}

/* ---- probe: one raw request to one peer ------------------------------------------------------ */
typedef struct probe {
  int node;
  uint8_t key[KAD_MAX_KEY];
  size_t klen;
  uint8_t *msg;
  size_t len;
  uint8_t *buf;
  size_t blen;
  int done;
} probe;

static void probe_finish(probe *p, const uint8_t *m, size_t n, int err) {
  if (p->done) return;
  p->done = 1;
  if (err) {
    err_line("probe", p->node, lp2p_strerror(err));
    return;
  }
  kad_msg km;
  int rv = kad_msg_decode(NULL, m, n, &km);
  if (rv < 0) {
    err_line("probe", p->node, "undecodable answer");
    return;
  }
  printf("{\"event\":\"probe\",\"node\":%d,\"ok\":true,\"type\":%d,\"closer\":%zu", p->node, km.type, km.ncloser);
  if (km.has_record && km.rec_key_len == p->klen && !memcmp(km.rec_key, p->key, p->klen)) {
    printf(",\"value\":\"");
    hexout(km.rec_value, km.rec_value_len);
    putchar('"');
  }
  printf(",\"providers\":[");
  for (size_t i = 0; i < km.nproviders; i++) {
    printf("%s", i ? "," : "");
    idout(&km.providers[i].id);
  }
  putchar(']');
  done_line();
  kad_msg_clear(NULL, &km);
}

static void probe_open(lp2p_stream *s, const char *proto, void *ud) {
  probe *p = ud;
  (void)proto;
  if (lp2p_stream_send_all(s, p->msg, p->len, 1) < 0) lp2p_stream_reset(s);
}
static void probe_data(lp2p_stream *s, const uint8_t *d, size_t n, void *ud) {
  probe *p = ud;
  if (p->done) return;
  uint8_t *nb = realloc(p->buf, p->blen + n);
  if (!nb) return;
  p->buf = nb;
  memcpy(p->buf + p->blen, d, n);
  p->blen += n;
  size_t mlen = 0;
  int h = kad_frame_parse(p->buf, p->blen, &mlen);
  if (h < 0) {
    probe_finish(p, NULL, 0, h);
    lp2p_stream_reset(s);
  } else if (h > 0 && p->blen >= (size_t)h + mlen) {
    probe_finish(p, p->buf + h, mlen, 0);
    lp2p_stream_reset(s);
  }
}
static void probe_close(lp2p_stream *s, int err, void *ud) {
  probe *p = ud;
  (void)s;
  probe_finish(p, NULL, 0, err ? err : LP2P_ERR_EOF);
  free(p->msg);
  free(p->buf);
  free(p);
}
static const lp2p_stream_handler probe_handler = {sizeof(lp2p_stream_handler), probe_open, probe_data, NULL, NULL,
                                                  probe_close};

static void cmd_probe(int i, const char *maddr, const char *type, const char *keyhex) {
  const char *slash = strstr(maddr, "/p2p/");
  lp2p_peer_id peer;
  probe *p = calloc(1, sizeof *p);
  if (!p || !slash || lp2p_peer_id_parse(slash + 5, &peer) < 0 || unhex(keyhex, p->key, sizeof p->key, &p->klen) < 0) {
    free(p);
    err_line("probe", i, "usage: probe I MADDR/p2p/ID get|prov KEYHEX");
    return;
  }
  p->node = i;
  lp2p_swarm_add_address(nodes[i].sw, &peer, maddr);
  kad_msg m;
  memset(&m, 0, sizeof m);
  m.type = !strcmp(type, "prov") ? KAD_GET_PROVIDERS : KAD_GET_VALUE;
  m.key = p->key;
  m.key_len = p->klen;
  uint8_t *enc = NULL;
  size_t el = 0;
  if (kad_msg_encode(NULL, &m, &enc, &el) < 0) {
    free(p);
    err_line("probe", i, "encode");
    return;
  }
  uint8_t hdr[10];
  size_t hl = kad_frame_prefix(el, hdr);
  p->msg = malloc(hl + el);
  memcpy(p->msg, hdr, hl);
  memcpy(p->msg + hl, enc, el);
  p->len = hl + el;
  free(enc);
  const char *protos[] = {lp2p_kad_protocol(nodes[i].kad)};
  if (lp2p_swarm_open_stream(nodes[i].sw, &peer, protos, 1, &probe_handler, p, NULL) < 0) {
    err_line("probe", i, "open_stream");
    free(p->msg);
    free(p);
  }
}

/* ---- grinding keys close to one peer --------------------------------------------------------- */
/* 1 if key's kad id is closer to target than to every node and known peer other than target */
static int closest_to(const uint8_t *key, size_t klen, const lp2p_peer_id *target) {
  kad_id kid, t, o;
  kad_id_from_key(key, klen, &kid);
  kad_id_from_peer(target, &t);
  for (int i = 0; i < nn + nknown; i++) {
    const lp2p_peer_id *p = i < nn ? &nodes[i].id : &known[i - nn];
    if (lp2p_peer_id_equal(p, target)) continue;
    kad_id_from_peer(p, &o);
    if (kad_cmp_distance(&o, &t, &kid) <= 0) return 0;
  }
  return 1;
}

static void cmd_grind(const char *what, const char *peer_text) {
  lp2p_peer_id target;
  char ev[16];
  snprintf(ev, sizeof ev, "grind-%s", what);
  if (lp2p_peer_id_parse(peer_text, &target) < 0) {
    err_line(ev, -1, "bad peer id");
    return;
  }
  for (unsigned tries = 1; tries < 1000000; tries++) {
    if (!strcmp(what, "pk")) {
      uint8_t seed[32], key[128], val[128];
      size_t kl, vl;
      randombytes_buf(seed, sizeof seed);
      lp2p_privkey *pk = NULL;
      if (lp2p_privkey_from_ed25519_seed(&pk, seed) < 0) continue;
      int rv = lp2p_kad_pk_record(lp2p_privkey_public(pk), key, sizeof key, &kl, val, sizeof val, &vl);
      lp2p_privkey_free(pk);
      if (rv < 0 || !closest_to(key, kl, &target)) continue;
      printf("{\"event\":\"%s\",\"ok\":true,\"tries\":%u,\"key\":\"", ev, tries);
      hexout(key, kl);
      printf("\",\"value\":\"");
      hexout(val, vl);
      putchar('"');
      done_line();
      return;
    }
    uint8_t data[16], mh[34] = {0x12, 0x20};
    randombytes_buf(data, sizeof data);
    crypto_hash_sha256(mh + 2, data, sizeof data);
    if (!closest_to(mh, sizeof mh, &target)) continue;
    uint8_t cid[36] = {0x01, 0x55};
    memcpy(cid + 2, mh, sizeof mh);
    char b32[80];
    size_t bl = 0;
    lp2p_base32_encode(cid, sizeof cid, b32, sizeof b32, &bl);
    b32[bl < sizeof b32 ? bl : sizeof b32 - 1] = 0;
    for (char *c = b32; *c; c++)
      if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    char *eq = strchr(b32, '=');
    if (eq) *eq = 0;
    printf("{\"event\":\"%s\",\"ok\":true,\"tries\":%u,\"mh\":\"", ev, tries);
    hexout(mh, sizeof mh);
    printf("\",\"cid\":\"b%s\"", b32);
    done_line();
    return;
  }
  err_line(ev, -1, "no key found");
}

/* ---- commands -------------------------------------------------------------------------------- */
static uint64_t cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
         (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

static void stop_all(void);

static void command(char *line) {
  char *argv[8];
  int argc = 0;
  for (char *t = strtok(line, " \t\r"); t && argc < 8; t = strtok(NULL, " \t\r")) argv[argc++] = t;
  if (!argc) return;
  const char *c = argv[0];
  if (!strcmp(c, "quit")) {
    stop_all();
    return;
  }
  if (!strcmp(c, "stats")) {
    uint64_t served = 0;
    size_t recs = 0;
    for (int i = 0; i < nn; i++) served += lp2p_kad_served(nodes[i].kad), recs += lp2p_kad_record_count(nodes[i].kad);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"event\":\"stats\",\"served\":%llu,\"cpu_us\":%llu,\"rss_kb\":%ld,\"records\":%zu", (unsigned long long)served,
           (unsigned long long)cpu_us(), ru.ru_maxrss, recs);
    done_line();
    return;
  }
  if (!strcmp(c, "known") && argc == 2) {
    if (nknown < 64 && lp2p_peer_id_parse(argv[1], &known[nknown]) == 0) nknown++;
    printf("{\"event\":\"known\",\"count\":%d", nknown);
    done_line();
    return;
  }
  if (!strcmp(c, "in-tables") && argc == 2) { /* how many nodes' routing tables hold PEER */
    lp2p_peer_id p, ids[512];
    int count = 0;
    if (lp2p_peer_id_parse(argv[1], &p) < 0) {
      err_line(c, -1, "bad peer id");
      return;
    }
    for (int i = 0; i < nn; i++) {
      size_t n = lp2p_kad_routing_table(nodes[i].kad, ids, 512);
      for (size_t j = 0; j < n && j < 512; j++) count += lp2p_peer_id_equal(&ids[j], &p);
    }
    printf("{\"event\":\"in-tables\",\"count\":%d", count);
    done_line();
    return;
  }
  if ((!strcmp(c, "grind-pk") || !strcmp(c, "grind-mh")) && argc == 2) {
    cmd_grind(c + 6, argv[1]);
    return;
  }
  if ((!strcmp(c, "holders") || !strcmp(c, "prov-holders")) && argc == 2) {
    uint8_t key[KAD_MAX_KEY], buf[16];
    size_t kl;
    if (unhex(argv[1], key, sizeof key, &kl) < 0) {
      err_line(c, -1, "bad hex");
      return;
    }
    printf("{\"event\":\"%s\",\"nodes\":[", c);
    int first = 1;
    for (int i = 0; i < nn; i++) {
      int has = c[0] == 'h' ? lp2p_kad_local_value(nodes[i].kad, key, kl, buf, sizeof buf) >= 0
                            : lp2p_kad_provider_count(nodes[i].kad, key, kl) > 0;
      if (has) printf("%s%d", first ? "" : ",", i), first = 0;
    }
    putchar(']');
    done_line();
    return;
  }
  int i = argc > 1 ? atoi(argv[1]) : -1;
  if (argc < 2 || i < 0 || i >= nn) {
    err_line(c, i, "unknown command, or bad node index");
    return;
  }
  lp2p_kad *k = nodes[i].kad;
  if (!strcmp(c, "table")) {
    lp2p_peer_id ids[512];
    size_t n = lp2p_kad_routing_table(k, ids, 512);
    printf("{\"event\":\"table\",\"node\":%d,\"count\":%zu,\"peers\":[", i, n);
    for (size_t j = 0; j < n && j < 512; j++) {
      printf("%s", j ? "," : "");
      idout(&ids[j]);
    }
    putchar(']');
    done_line();
    return;
  }
  if (!strcmp(c, "add") && argc == 3) {
    int rv = lp2p_kad_add_bootstrap(k, argv[2]);
    if (rv < 0) {
      err_line(c, i, lp2p_strerror(rv));
      return;
    }
    printf("{\"event\":\"add\",\"node\":%d,\"ok\":true", i);
    done_line();
    return;
  }
  if (!strcmp(c, "probe") && argc == 5) {
    cmd_probe(i, argv[2], argv[3], argv[4]);
    return;
  }
  qctx *q = calloc(1, sizeof *q);
  if (!q) return;
  snprintf(q->ev, sizeof q->ev, "%s", c);
  q->node = i;
  q->t0 = now_ns();
  uint8_t key[KAD_MAX_KEY], val[4096];
  size_t kl = 0, vl = 0;
  int rv = LP2P_ERR_INVAL;
  if (!strcmp(c, "bootstrap") && argc == 2) {
    rv = lp2p_kad_bootstrap(k, on_result, q, NULL);
  } else if (!strcmp(c, "find-peer") && argc == 3) {
    lp2p_peer_id p;
    if (lp2p_peer_id_parse(argv[2], &p) == 0) rv = lp2p_kad_find_peer(k, &p, on_result, q, NULL);
  } else if (argc >= 3 && unhex(argv[2], key, sizeof key, &kl) == 0) {
    if (!strcmp(c, "closest") && argc == 3)
      rv = lp2p_kad_get_closest_peers(k, key, kl, on_result, q, NULL);
    else if (!strcmp(c, "get") && argc == 3)
      rv = lp2p_kad_get_value(k, key, kl, 1, on_result, q, NULL);
    else if (!strcmp(c, "provide") && argc == 3)
      rv = lp2p_kad_provide(k, key, kl, on_result, q, NULL);
    else if (!strcmp(c, "find-providers") && argc == 3)
      rv = lp2p_kad_find_providers(k, key, kl, 0, on_result, q, NULL);
    else if (!strcmp(c, "put") && argc == 4 && unhex(argv[3], val, sizeof val, &vl) == 0)
      rv = lp2p_kad_put_value(k, key, kl, val, vl, on_result, q, NULL);
  }
  if (rv < 0) {
    err_line(c, i, rv == LP2P_ERR_INVAL ? "bad arguments" : lp2p_strerror(rv));
    free(q);
  }
}

/* ---- stdin ----------------------------------------------------------------------------------- */
static uv_poll_t in_poll;
static char inbuf[65536];
static size_t inlen;

static void stop_all(void) {
  if (quitting) return;
  quitting = 1;
  uv_poll_stop(&in_poll);
  uv_close((uv_handle_t *)&in_poll, NULL);
  for (int i = 0; i < nn; i++) lp2p_swarm_free(nodes[i].sw);
  printf("{\"event\":\"stopped\"}\n");
  fflush(stdout);
}

static void on_stdin(uv_poll_t *h, int status, int events) {
  (void)h, (void)events;
  if (status < 0) {
    stop_all();
    return;
  }
  ssize_t r = read(0, inbuf + inlen, sizeof inbuf - 1 - inlen);
  if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
    stop_all();
    return;
  }
  if (r < 0) return;
  inlen += (size_t)r;
  char *nl;
  while (!quitting && (nl = memchr(inbuf, '\n', inlen))) {
    *nl = 0;
    size_t used = (size_t)(nl - inbuf) + 1;
    command(inbuf);
    memmove(inbuf, inbuf + used, inlen - used);
    inlen -= used;
  }
  if (inlen == sizeof inbuf - 1) inlen = 0; /* an absurd line: dropped */
}

int main(int argc, char **argv) {
  uint32_t seed = (uint32_t)getpid();
  for (int a = 1; a < argc; a++) {
    if (!strcmp(argv[a], "--nodes") && a + 1 < argc) nn = atoi(argv[++a]);
    else if (!strcmp(argv[a], "--isolated") && a + 1 < argc) isolated = atoi(argv[++a]);
    else if (!strcmp(argv[a], "--seed") && a + 1 < argc) seed = (uint32_t)strtoul(argv[++a], NULL, 10);
    else {
      fprintf(stderr, "usage: kad_net [--nodes N] [--isolated K] [--seed S]\n");
      return 2;
    }
  }
  if (nn < 2 || nn > 250 || isolated < 0 || isolated >= nn) return 2;
  if (sodium_init() < 0) return 1;
  uv_loop_init(&loop);
  nodes = calloc((size_t)nn, sizeof *nodes);
  for (int i = 0; i < nn; i++)
    if (node_new(&nodes[i], i, seed) < 0) {
      fprintf(stderr, "kad_net: node %d setup failed\n", i);
      return 1;
    }
  int joined = nn - isolated, booted = 0;
  for (int i = 1; i < joined; i++) {
    lp2p_kad_add_bootstrap(nodes[i].kad, nodes[(i * 7) % i].addr);
    if (i > 2) lp2p_kad_add_bootstrap(nodes[i].kad, nodes[i - 1].addr);
  }
  uint64_t t0 = now_ns();
  for (int i = 1; i < joined; i++) {
    qctx *q = calloc(1, sizeof *q);
    q->counter = &booted;
    lp2p_kad_bootstrap(nodes[i].kad, on_result, q, NULL);
  }
  while (booted < joined - 1 && now_ns() - t0 < 60000000000ull) uv_run(&loop, UV_RUN_ONCE);
  printf("{\"event\":\"ready\",\"nodes\":%d,\"booted\":%d,\"ms\":%.1f,\"peers\":[", nn, booted,
         (double)(now_ns() - t0) / 1e6);
  for (int i = 0; i < nn; i++) {
    printf("%s", i ? "," : "");
    idout(&nodes[i].id);
  }
  printf("],\"addrs\":[");
  for (int i = 0; i < nn; i++) {
    printf("%s", i ? "," : "");
    jstr(nodes[i].addr);
  }
  putchar(']');
  done_line();
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  if (uv_poll_init(&loop, &in_poll, 0) < 0 || uv_poll_start(&in_poll, UV_READABLE, on_stdin) < 0) {
    fprintf(stderr, "kad_net: stdin must be a pipe or FIFO\n");
    return 1;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  for (int i = 0; i < nn; i++) lp2p_privkey_free(nodes[i].key);
  free(nodes);
  return 0;
}
