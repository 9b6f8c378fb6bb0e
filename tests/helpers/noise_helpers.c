/* tests/helpers/noise_helpers.c - see noise_helpers.h. */
#include "noise_helpers.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"

void nh_sink_add(nh_sink *s, const uint8_t *p, size_t n) {
  if (!n) return;
  if (s->len + n > s->cap) {
    size_t cap = s->cap ? s->cap : 1024;
    while (cap < s->len + n) cap *= 2;
    uint8_t *d = realloc(s->data, cap);
    if (!d) abort();
    s->data = d;
    s->cap = cap;
  }
  memcpy(s->data + s->len, p, n);
  s->len += n;
}

void nh_sink_free(nh_sink *s) {
  free(s->data);
  memset(s, 0, sizeof *s);
}

lp2p_privkey *nh_vector_key(const char *name) {
  json *doc = json_load_vector("key-signatures.json");
  if (!doc) return NULL;
  lp2p_privkey *k = NULL;
  const json *e = json_get(json_get(doc, "keys"), name);
  size_t len = 0;
  uint8_t *pb = e ? json_hex(e, "private_key_pb", &len) : NULL;
  if (pb && lp2p_privkey_from_protobuf(&k, pb, len) != 0) k = NULL;
  free(pb);
  json_free(doc);
  return k;
}

lp2p_privkey *nh_seed_key(uint8_t b) {
  uint8_t seed[32];
  memset(seed, b, sizeof seed);
  lp2p_privkey *k = NULL;
  if (lp2p_privkey_from_ed25519_seed(&k, seed) != 0) return NULL;
  return k;
}

lp2p_peer_id nh_peer_id(const lp2p_privkey *k) {
  lp2p_peer_id id;
  memset(&id, 0, sizeof id);
  if (lp2p_peer_id_from_pubkey(lp2p_privkey_public(k), &id) != 0) abort();
  return id;
}

static void drain(lp2p_noise *n, nh_sink *sink) {
  const uint8_t *p;
  size_t k = lp2p_noise_plaintext(n, &p);
  if (k && sink) nh_sink_add(sink, p, k);
  lp2p_noise_plaintext_consumed(n, k);
}

int nh_feed_all(lp2p_noise *n, const uint8_t *in, size_t len, size_t chunk, nh_sink *sink) {
  size_t off = 0;
  int stalls = 0;
  while (off < len) {
    size_t c = chunk && chunk < len - off ? chunk : len - off;
    int64_t k = lp2p_noise_feed(n, in + off, c);
    if (k < 0) return (int)k;
    if ((size_t)k > c) abort();
    off += (size_t)k;
    drain(n, sink);
    stalls = k ? 0 : stalls + 1;
    if (stalls > 2) return LP2P_ERR_INTERNAL; /* no progress possible */
  }
  drain(n, sink);
  return 0;
}

int nh_transfer(lp2p_noise *from, lp2p_noise *to, size_t chunk, nh_sink *sink) {
  const uint8_t *p;
  size_t k = lp2p_noise_output(from, &p);
  if (!k) return 0;
  int rv = nh_feed_all(to, p, k, chunk, sink);
  lp2p_noise_output_consumed(from, k);
  return rv;
}

int nh_handshake(lp2p_noise *ini, lp2p_noise *res, size_t chunk, int *ierr, int *rerr) {
  int ie = 0, re = 0;
  for (int round = 0; round < 4 && !ie && !re; round++) {
    re = nh_transfer(ini, res, chunk, NULL);
    if (!re) ie = nh_transfer(res, ini, chunk, NULL);
    if (lp2p_noise_handshake_done(ini) && lp2p_noise_handshake_done(res)) break;
  }
  if (ierr) *ierr = ie;
  if (rerr) *rerr = re;
  if (ie) return ie;
  if (re) return re;
  return lp2p_noise_handshake_done(ini) && lp2p_noise_handshake_done(res) ? 0 : LP2P_ERR_HANDSHAKE;
}

int nh_new(lp2p_noise **out, int initiator, const lp2p_privkey *id, const lp2p_peer_id *expected,
           const char *const *muxers, size_t n_muxers, const lp2p_mem *mem) {
  return nh_new_id(out, initiator, id, NULL, expected, muxers, n_muxers, mem);
}

int nh_new_id(lp2p_noise **out, int initiator, const lp2p_privkey *id, const lp2p_noise_identity *nid,
              const lp2p_peer_id *expected, const char *const *muxers, size_t n_muxers, const lp2p_mem *mem) {
  lp2p_noise_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.struct_size = sizeof cfg;
  cfg.initiator = initiator;
  cfg.identity = id;
  cfg.expected_remote = expected;
  cfg.muxers = muxers;
  cfg.n_muxers = n_muxers;
  cfg.noise_identity = nid;
  return lp2p_noise_new(out, &cfg, mem);
}

#define CM_HDR 16u /* keeps the blocks 16-byte aligned */

static void *cm_malloc(size_t n, void *u) {
  nh_countmem *c = u;
  uint8_t *p = malloc(CM_HDR + n);
  if (!p) return NULL;
  memcpy(p, &n, sizeof n);
  c->live_bytes += n;
  c->live_blocks++;
  return p + CM_HDR;
}

static void *cm_realloc(void *q, size_t n, void *u) {
  nh_countmem *c = u;
  if (!q) return cm_malloc(n, u);
  size_t old;
  memcpy(&old, (uint8_t *)q - CM_HDR, sizeof old);
  uint8_t *p = realloc((uint8_t *)q - CM_HDR, CM_HDR + n);
  if (!p) return NULL;
  memcpy(p, &n, sizeof n);
  c->live_bytes = c->live_bytes - old + n;
  return p + CM_HDR;
}

static void cm_free(void *q, void *u) {
  nh_countmem *c = u;
  if (!q) return;
  size_t old;
  memcpy(&old, (uint8_t *)q - CM_HDR, sizeof old);
  if (c->watch_size && old == c->watch_size) {
    const uint8_t *b = q;
    int dirty = 0;
    for (size_t i = 0; i < old; i++) dirty |= b[i];
    c->watched_frees++;
    c->watched_dirty += dirty != 0;
  }
  c->live_bytes -= old;
  c->live_blocks--;
  free((uint8_t *)q - CM_HDR);
}

void nh_countmem_init(nh_countmem *c) {
  memset(c, 0, sizeof *c);
  c->mem.malloc_fn = cm_malloc;
  c->mem.realloc_fn = cm_realloc;
  c->mem.free_fn = cm_free;
  c->mem.user = c;
}
