/* rr_tool.c - the lp2p side of the request-response interop tests
 * (tests/interop/peer_reqresp.sh), on lp2p/reqresp.h. JSON lines on stdout.
 *
 *   rr_tool serve PROTOCOL [TIMEOUT_MS]
 *       listens on 127.0.0.1, prints {"event":"listening","addr":...}; answers like the ctl peers
 *       (PEERS-CONTRACT.md): {"echo": <request>, "from": "<our id>"}; {"omit": true} is dropped;
 *       {"sleep_ms": N} is answered after N ms. Prints {"event":"request",...} for each request and
 *       {"event":"inbound",...,"outcome":...} when it ends. Exits when stdin closes.
 *   rr_tool request MADDR PROTOCOL JSON [TIMEOUT_MS] [MAX_RESPONSE]
 *       sends JSON, prints {"event":"response","outcome":...,"body":"<text>"}; exit 0 on RESPONSE,
 *       1 otherwise. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lp2p/keys.h"
#include "lp2p/reqresp.h"
#include "lp2p/uv.h"

static lp2p_swarm *g_sw;
static uv_loop_t g_loop;
static int g_done, g_rc = 1;
static char g_self[LP2P_PEER_ID_MAX_TEXT];

static void json_str(const uint8_t *p, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    unsigned c = p[i];
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar((int)c);
  }
  putchar('"');
}

typedef struct later {
  lp2p_timer *t;
  lp2p_reqresp_channel *ch;
  char *body;
  size_t n;
} later;

static void later_fire(lp2p_timer *t, void *ud) {
  later *l = ud;
  lp2p_reqresp_respond(l->ch, (const uint8_t *)l->body, l->n);
  free(l->body);
  free(l);
  lp2p_timer_free(t);
}

/* the value of "key": in a flat JSON object (enough for the contract's test requests) */
static const char *json_find(const char *s, size_t n, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\"", key);
  const char *p = memmem(s, n, pat, strlen(pat));
  if (!p) return NULL;
  p += strlen(pat);
  while (p < s + n && (*p == ' ' || *p == ':')) p++;
  return p < s + n ? p : NULL;
}

static void on_event(lp2p_reqresp *rr, const lp2p_reqresp_event *ev, void *ud) {
  (void)rr;
  (void)ud;
  char peer[LP2P_PEER_ID_MAX_TEXT] = "";
  if (ev->peer) lp2p_peer_id_to_string(ev->peer, peer, sizeof peer);
  if (ev->type == LP2P_REQRESP_EV_REQUEST) {
    printf("{\"event\":\"request\",\"peer\":\"%s\",\"protocol\":\"%s\",\"body\":", peer,
           ev->protocol ? ev->protocol : "");
    json_str(ev->data, ev->len);
    printf("}\n");
    fflush(stdout);
    const char *s = (const char *)ev->data;
    const char *o = json_find(s, ev->len, "omit");
    if (o && !strncmp(o, "true", 4)) {
      lp2p_reqresp_channel_drop(ev->channel);
      return;
    }
    later *l = calloc(1, sizeof *l);
    l->ch = ev->channel;
    l->n = ev->len + strlen(g_self) + 32;
    l->body = malloc(l->n);
    l->n = (size_t)snprintf(l->body, l->n, "{\"echo\":%.*s,\"from\":\"%s\"}", (int)ev->len, s, g_self);
    const char *sl = json_find(s, ev->len, "sleep_ms");
    lp2p_timer_new(&l->t, g_sw, later_fire, l);
    lp2p_timer_start(l->t, sl ? strtoull(sl, NULL, 10) : 0, 0);
    return;
  }
  printf("{\"event\":\"%s\",\"peer\":\"%s\",\"protocol\":\"%s\",\"id\":%llu,\"outcome\":\"%s\",\"error\":\"%s\"",
         ev->type == LP2P_REQRESP_EV_OUTBOUND ? "response" : "inbound", peer, ev->protocol ? ev->protocol : "",
         (unsigned long long)ev->request_id, lp2p_reqresp_outcome_name(ev->outcome),
         ev->err ? lp2p_err_name(ev->err) : "");
  if (ev->type == LP2P_REQRESP_EV_OUTBOUND) {
    printf(",\"ok\":%s,\"body\":", ev->outcome == LP2P_REQRESP_RESPONSE ? "true" : "false");
    json_str(ev->data ? ev->data : (const uint8_t *)"", ev->len);
    g_rc = ev->outcome == LP2P_REQRESP_RESPONSE ? 0 : 1;
    g_done = 1;
    uv_stop(&g_loop);
  }
  printf("}\n");
  fflush(stdout);
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  free(b->base);
  if (n < 0) {
    uv_read_stop(s);
    g_done = 1;
    uv_stop(&g_loop);
  }
}
static void alloc_cb(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  (void)h;
  b->base = malloc(sz);
  b->len = sz;
}

int main(int argc, char **argv) {
  if (argc < 3 || (strcmp(argv[1], "serve") && strcmp(argv[1], "request")) ||
      (!strcmp(argv[1], "request") && argc < 5)) {
    fprintf(stderr, "usage: rr_tool serve PROTOCOL [TIMEOUT_MS] | request MADDR PROTOCOL JSON [TIMEOUT_MS] [MAXRESP]\n");
    return 2;
  }
  int serve = !strcmp(argv[1], "serve");
  uv_loop_init(&g_loop);
  lp2p_privkey *key = NULL;
  lp2p_privkey_generate(&key, LP2P_KEY_ED25519, 0);
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = key;
  if (lp2p_swarm_new_uv(&g_sw, &cfg, &g_loop, NULL) < 0) return 2;
  lp2p_peer_id_to_string(lp2p_swarm_local_peer(g_sw), g_self, sizeof g_self);
  lp2p_reqresp_config rc;
  lp2p_reqresp_config_default(&rc);
  rc.protocols[0] = serve ? argv[2] : argv[3];
  rc.n_protocols = 1;
  rc.inbound = serve;
  rc.on_event = on_event;
  const char *tmo = serve ? (argc > 3 ? argv[3] : NULL) : (argc > 5 ? argv[5] : NULL);
  if (tmo) rc.timeout_ms = (uint32_t)strtoul(tmo, NULL, 10);
  if (!serve && argc > 6) rc.max_response_size = strtoull(argv[6], NULL, 10);
  lp2p_reqresp *rr = NULL;
  int rv = lp2p_reqresp_add(g_sw, &rc, &rr);
  uv_pipe_t in;
  if (rv == 0 && serve) {
    rv = lp2p_swarm_listen(g_sw, "/ip4/127.0.0.1/tcp/0");
    const lp2p_multiaddr *ma;
    char a[300];
    if (rv == 0 && lp2p_swarm_listen_addrs(g_sw, &ma, 1) == 1) {
      lp2p_multiaddr_to_string(ma, a, sizeof a);
      printf("{\"event\":\"listening\",\"peerId\":\"%s\",\"addr\":\"%s/p2p/%s\"}\n", g_self, a, g_self);
      fflush(stdout);
    }
    uv_pipe_init(&g_loop, &in, 0);
    uv_pipe_open(&in, 0);
    uv_read_start((uv_stream_t *)&in, alloc_cb, on_stdin);
  } else if (rv == 0) {
    const char *p2p = strstr(argv[2], "/p2p/");
    lp2p_peer_id peer;
    rv = p2p ? lp2p_peer_id_parse(p2p + 5, &peer) : LP2P_ERR_INVAL;
    if (rv == 0) rv = lp2p_swarm_add_address(g_sw, NULL, argv[2]);
    if (rv == 0) rv = lp2p_reqresp_send(rr, &peer, NULL, (const uint8_t *)argv[4], strlen(argv[4]), NULL);
  }
  if (rv < 0) {
    fprintf(stderr, "rr_tool: %s\n", lp2p_strerror(rv));
    return 2;
  }
  while (!g_done) uv_run(&g_loop, UV_RUN_DEFAULT);
  if (serve) uv_close((uv_handle_t *)&in, NULL);
  lp2p_swarm_free(g_sw);
  uv_run(&g_loop, UV_RUN_DEFAULT);
  uv_loop_close(&g_loop);
  lp2p_privkey_free(key);
  return serve ? 0 : g_rc;
}
