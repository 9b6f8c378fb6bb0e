/* node/kadcmd.c - kad commands shared by mod_kad.c and cmd_kad.c. See kadcmd.h. */
#include "kadcmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/encoding.h"
#include "netcmd.h"

#define KC_MAX_KEY 1024
#define KC_MAX_VALUE 65536

static const char *const kc_verbs[] = {"kad-bootstrap", "kad-find-peer",      "kad-closest", "kad-put",
                                       "kad-get",       "kad-provide",        "kad-find-providers",
                                       "kad-table"};

int kc_is_command(const char *verb) {
  for (size_t i = 0; i < sizeof kc_verbs / sizeof *kc_verbs; i++)
    if (!strcmp(verb, kc_verbs[i])) return 1;
  return 0;
}

int kc_parse_bytes(const char *arg, uint8_t *out, size_t cap, size_t *len) {
  size_t n = strlen(arg);
  if (n >= 2 && arg[0] == '0' && (arg[1] == 'x' || arg[1] == 'X')) {
    if ((n - 2) % 2) return LP2P_ERR_INVAL;
    if ((n - 2) / 2 > cap) return LP2P_ERR_BUFSIZE;
    return lp2p_hex_decode(arg + 2, n - 2, out, cap, len) < 0 ? LP2P_ERR_INVAL : 0;
  }
  if (n > cap) return LP2P_ERR_BUFSIZE;
  memcpy(out, arg, n);
  *len = n;
  return 0;
}

int kc_parse_cid(const char *arg, uint8_t *mh, size_t cap, size_t *len) {
  size_t n = strlen(arg);
  uint8_t buf[256];
  size_t bl = 0;
  lp2p_multihash_view v;
  if (n >= 2 && arg[0] == '0' && arg[1] == 'x') { /* a bare multihash */
    if (kc_parse_bytes(arg, buf, sizeof buf, &bl) < 0) return LP2P_ERR_CID;
  } else if (n == 46 && arg[0] == 'Q' && arg[1] == 'm') { /* CIDv0: base58btc sha2-256 multihash */
    if (lp2p_base58_decode(arg, n, buf, sizeof buf, &bl) < 0) return LP2P_ERR_CID;
  } else {
    uint8_t cid[256];
    size_t cl = 0;
    uint64_t codec;
    const uint8_t *m;
    size_t ml;
    if (lp2p_multibase_decode(arg, n, cid, sizeof cid, &cl) < 0) return LP2P_ERR_CID;
    if (lp2p_cid_decode(cid, cl, &codec, &m, &ml) < 0) return LP2P_ERR_CID;
    if (ml > sizeof buf) return LP2P_ERR_CID;
    memcpy(buf, m, ml);
    bl = ml;
  }
  if (lp2p_multihash_parse(buf, bl, &v) < 0) return LP2P_ERR_MULTIHASH;
  if (bl > cap) return LP2P_ERR_BUFSIZE;
  memcpy(mh, buf, bl);
  *len = bl;
  return 0;
}

/* ---------------------------------------------------------------------------------------------- */
typedef struct kc_ctx {
  char verb[32];
  kc_done_fn done;
  void *ud;
} kc_ctx;

static void json_stats(cli_json *j, const lp2p_kad_stats *s) {
  cli_json_int(j, "hops", s->hops);
  cli_json_int(j, "peers_contacted", s->peers_contacted);
  cli_json_int(j, "requests", s->requests);
  cli_json_int(j, "failures", s->failures);
  cli_json_int(j, "duration_ms", (long long)s->duration_ms);
}

static void fail_now(const char *verb, int err, const char *what, kc_done_fn done, void *ud) {
  cli_json j;
  cli_json_begin(&j);
  cli_json_str(&j, "event", verb);
  cli_json_bool(&j, "ok", 0);
  nc_json_error(&j, err);
  char text[512];
  snprintf(text, sizeof text, "%s failed: %s: %s", verb, what, lp2p_strerror(err));
  done(ud, &j, text, err);
}

/* strings of peer ids (txt[i] freed by the caller) */
static char **peer_texts(const lp2p_kad_peer *p, size_t n) {
  char **t = calloc(n ? n : 1, sizeof *t);
  if (!t) return NULL;
  for (size_t i = 0; i < n; i++) {
    char pb[LP2P_PEER_ID_MAX_TEXT];
    t[i] = strdup(nc_peer_str(&p[i].peer, pb, sizeof pb));
  }
  return t;
}

static void free_texts(char **t, size_t n) {
  if (!t) return;
  for (size_t i = 0; i < n; i++) free(t[i]);
  free(t);
}

static int printable(const uint8_t *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (v[i] < 0x20 || v[i] > 0x7e) return 0;
  return 1;
}

static void on_result(lp2p_kad *kad, const lp2p_kad_result *r, void *ud) {
  kc_ctx *c = ud;
  (void)kad;
  cli_json j;
  cli_json_begin(&j);
  cli_json_str(&j, "event", c->verb);
  cli_json_bool(&j, "ok", r->err == 0);
  if (r->err) nc_json_error(&j, r->err);
  json_stats(&j, &r->stats);
  size_t tl = 16384;
  char *text = malloc(tl);
  size_t used = 0;
#define TXT(...)                                                                          \
  do {                                                                                    \
    if (text && used < tl) used += (size_t)snprintf(text + used, tl - used, __VA_ARGS__); \
  } while (0)
  if (r->err)
    TXT("%s failed: %s", c->verb, lp2p_strerror(r->err));
  else
    TXT("%s: ok", c->verb);
  TXT(" (hops %u, peers contacted %u, requests %u, %llu ms)", r->stats.hops, r->stats.peers_contacted,
      r->stats.requests, (unsigned long long)r->stats.duration_ms);
  switch (r->kind) {
    case LP2P_KAD_Q_FIND_PEER: {
      char pb[LP2P_PEER_ID_MAX_TEXT];
      size_t na = r->n_peers ? r->peers[0].n_addrs : 0;
      char **a = calloc(na ? na : 1, sizeof *a);
      for (size_t i = 0; a && i < na; i++) {
        char ab[512];
        a[i] = strdup(nc_ma_str(r->peers[0].addrs[i], ab, sizeof ab));
        TXT("\n  %s", a[i] ? a[i] : "?");
      }
      if (r->n_peers) cli_json_str(&j, "peer", nc_peer_str(&r->peers[0].peer, pb, sizeof pb));
      cli_json_str_array(&j, "addrs", (const char *const *)a, a ? na : 0);
      free_texts(a, na);
      break;
    }
    case LP2P_KAD_Q_GET_CLOSEST_PEERS:
    case LP2P_KAD_Q_BOOTSTRAP: {
      char **t = peer_texts(r->peers, r->n_peers);
      cli_json_int(&j, "count", (long long)r->n_peers);
      cli_json_str_array(&j, "peers", (const char *const *)t, t ? r->n_peers : 0);
      for (size_t i = 0; t && i < r->n_peers; i++) TXT("\n  %s", t[i] ? t[i] : "?");
      free_texts(t, r->n_peers);
      break;
    }
    case LP2P_KAD_Q_GET_VALUE:
      cli_json_int(&j, "records", r->stored);
      if (!r->err && r->value) {
        char *hex = malloc(2 * r->value_len + 1);
        if (hex) {
          lp2p_hex_encode(r->value, r->value_len, hex, 2 * r->value_len + 1);
          cli_json_str(&j, "value", hex);
          free(hex);
        }
        if (printable(r->value, r->value_len)) {
          char *s = malloc(r->value_len + 1);
          if (s) {
            memcpy(s, r->value, r->value_len);
            s[r->value_len] = 0;
            cli_json_str(&j, "text", s);
            TXT("\n  value: %s", s);
            free(s);
          }
        } else {
          TXT("\n  value: %zu bytes", r->value_len);
        }
      }
      break;
    case LP2P_KAD_Q_PUT_VALUE:
    case LP2P_KAD_Q_PROVIDE:
      cli_json_int(&j, "stored", r->stored);
      TXT("\n  stored on %u peers", r->stored);
      break;
    case LP2P_KAD_Q_FIND_PROVIDERS: {
      char **t = peer_texts(r->peers, r->n_peers);
      size_t na = 0;
      for (size_t i = 0; i < r->n_peers; i++) na += r->peers[i].n_addrs;
      char **a = calloc(na ? na : 1, sizeof *a);
      size_t k = 0;
      for (size_t i = 0; a && i < r->n_peers; i++) {
        TXT("\n  %s", t && t[i] ? t[i] : "?");
        for (size_t m = 0; m < r->peers[i].n_addrs; m++) {
          char ab[512], full[700];
          snprintf(full, sizeof full, "%s/p2p/%s", nc_ma_str(r->peers[i].addrs[m], ab, sizeof ab),
                   t && t[i] ? t[i] : "");
          a[k++] = strdup(full);
        }
      }
      cli_json_int(&j, "count", (long long)r->n_peers);
      cli_json_str_array(&j, "providers", (const char *const *)t, t ? r->n_peers : 0);
      cli_json_str_array(&j, "addrs", (const char *const *)a, a ? k : 0);
      free_texts(t, r->n_peers);
      free_texts(a, k);
      break;
    }
  }
#undef TXT
  c->done(c->ud, &j, text ? text : c->verb, r->err);
  free(text);
  free(c);
}

static kc_ctx *ctx_new(const char *verb, kc_done_fn done, void *ud) {
  kc_ctx *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  snprintf(c->verb, sizeof c->verb, "%s", verb);
  c->done = done;
  c->ud = ud;
  return c;
}

static void table(lp2p_kad *kad, kc_done_fn done, void *ud) {
  size_t n = lp2p_kad_routing_table(kad, NULL, 0);
  lp2p_peer_id *ids = calloc(n ? n : 1, sizeof *ids);
  char **t = calloc(n ? n : 1, sizeof *t);
  if (!ids || !t) n = 0;
  n = n ? lp2p_kad_routing_table(kad, ids, n) : 0;
  size_t tl = 64 + n * 64;
  char *text = malloc(tl);
  size_t used = text ? (size_t)snprintf(text, tl, "kad-table: %zu peers", n) : 0;
  for (size_t i = 0; i < n; i++) {
    char pb[LP2P_PEER_ID_MAX_TEXT];
    t[i] = strdup(nc_peer_str(&ids[i], pb, sizeof pb));
    if (text && used < tl) used += (size_t)snprintf(text + used, tl - used, "\n  %s", t[i] ? t[i] : "?");
  }
  cli_json j;
  cli_json_begin(&j);
  cli_json_str(&j, "event", "kad-table");
  cli_json_bool(&j, "ok", 1);
  cli_json_int(&j, "count", (long long)n);
  cli_json_str_array(&j, "peers", (const char *const *)t, n);
  cli_json_str(&j, "mode", lp2p_kad_is_server(kad) ? "server" : "client");
  cli_json_int(&j, "records", (long long)lp2p_kad_record_count(kad));
  done(ud, &j, text ? text : "kad-table", 0);
  free(text);
  free_texts(t, n);
  free(ids);
}

int kc_bootstrap(lp2p_kad *kad, kc_done_fn done, void *ud) {
  kc_ctx *c = ctx_new("kad-bootstrap", done, ud);
  if (!c) return LP2P_ERR_NOMEM;
  int rv = lp2p_kad_bootstrap(kad, on_result, c, NULL);
  if (rv < 0) free(c);
  return rv;
}

void kc_run(lp2p_kad *kad, const char *verb, char *args, kc_done_fn done, void *ud) {
  char *save = NULL;
  char *a1 = strtok_r(args, " \t", &save);
  char *a2 = a1 ? strtok_r(NULL, " \t", &save) : NULL;
  if (!strcmp(verb, "kad-table")) {
    table(kad, done, ud);
    return;
  }
  int needs = !strcmp(verb, "kad-bootstrap") ? 0 : !strcmp(verb, "kad-put") ? 2 : 1;
  if ((needs >= 1 && !a1) || (needs == 2 && !a2)) {
    fail_now(verb, LP2P_ERR_INVAL, needs == 2 ? "needs KEY VALUE" : "needs an argument", done, ud);
    return;
  }
  kc_ctx *c = ctx_new(verb, done, ud);
  if (!c) {
    fail_now(verb, LP2P_ERR_NOMEM, "start", done, ud);
    return;
  }
  static uint8_t key[KC_MAX_KEY], val[KC_MAX_VALUE];
  size_t kl = 0, vl = 0;
  int rv;
  const char *what = "start";
  if (!strcmp(verb, "kad-bootstrap")) {
    rv = lp2p_kad_bootstrap(kad, on_result, c, NULL);
  } else if (!strcmp(verb, "kad-find-peer")) {
    lp2p_peer_id p;
    rv = lp2p_peer_id_parse(a1, &p);
    if (rv < 0) what = "PEER";
    if (rv == 0) rv = lp2p_kad_find_peer(kad, &p, on_result, c, NULL);
  } else if (!strcmp(verb, "kad-closest")) {
    rv = kc_parse_bytes(a1, key, sizeof key, &kl);
    if (rv < 0) what = "KEY";
    if (rv == 0) rv = lp2p_kad_get_closest_peers(kad, key, kl, on_result, c, NULL);
  } else if (!strcmp(verb, "kad-put")) {
    rv = kc_parse_bytes(a1, key, sizeof key, &kl);
    if (rv < 0) what = "KEY";
    if (rv == 0 && (rv = kc_parse_bytes(a2, val, sizeof val, &vl)) < 0) what = "VALUE";
    if (rv == 0) rv = lp2p_kad_put_value(kad, key, kl, val, vl, on_result, c, NULL);
  } else if (!strcmp(verb, "kad-get")) {
    rv = kc_parse_bytes(a1, key, sizeof key, &kl);
    if (rv < 0) what = "KEY";
    if (rv == 0) rv = lp2p_kad_get_value(kad, key, kl, 1, on_result, c, NULL);
  } else if (!strcmp(verb, "kad-provide") || !strcmp(verb, "kad-find-providers")) {
    rv = kc_parse_cid(a1, key, sizeof key, &kl);
    if (rv < 0) what = "CID";
    if (rv == 0)
      rv = !strcmp(verb, "kad-provide") ? lp2p_kad_provide(kad, key, kl, on_result, c, NULL)
                                        : lp2p_kad_find_providers(kad, key, kl, 0, on_result, c, NULL);
  } else {
    rv = LP2P_ERR_INVAL;
  }
  if (rv < 0) {
    free(c);
    fail_now(verb, rv, what, done, ud);
  }
}
