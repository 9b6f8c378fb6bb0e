/* bench_noise.c - the Noise engine against the bare crypto it is built on, in the same run:
 *  - transport: encrypt + decrypt throughput through the engine (write -> feed -> plaintext, and the
 *    zero-copy seal/open pair) vs raw libsodium ChaCha20-Poly1305 IETF on the same frame sizes; for
 *    32-byte messages (the echo path) also the time per message (one encryption + one decryption);
 *  - handshakes: complete in-process XX handshakes per second (two engines created, three messages,
 *    payload signing and verification, freed) vs the bare crypto of one handshake: 4 X25519 key
 *    generations + 6 X25519 DHs + 2 Ed25519 signatures + 2 verifications (libsodium); and with a
 *    per-node lp2p_noise_identity on both sides (static key and signature made once) vs its bare
 *    crypto: 2 key generations (ephemeral) + 6 DHs + 2 verifications.
 *  - idle: bytes one established session keeps (sizeof + live heap through its lp2p_mem; the remote
 *    lp2p_pubkey comes from keys.h's libc allocations and is not included).
 * Ratios are engine / bare in percent (100 % = no overhead); each figure is the best of 3 interleaved
 * runs because the machine is shared. */
#include <sodium.h>
#include <string.h>

#include "bench_util.h"
#include "lp2p/noise.h"
#include "lp2p/peerid.h"

static lp2p_privkey *key_a, *key_b;
static lp2p_noise_identity *nid_a, *nid_b; /* per-node static keys, for the *_id handshakes */

static void die(const char *why) {
  bench_fail(why);
  exit(1);
}

static void handshake_pair_ex(lp2p_noise **pi, lp2p_noise **pr, int shared) {
  lp2p_noise_config ci = {sizeof ci, 1, key_a, NULL, NULL, 0, shared ? nid_a : NULL},
                    cr = {sizeof cr, 0, key_b, NULL, NULL, 0, shared ? nid_b : NULL};
  if (lp2p_noise_new(pi, &ci, NULL) || lp2p_noise_new(pr, &cr, NULL)) die("new failed");
  lp2p_noise *i = *pi, *r = *pr;
  for (int round = 0; round < 3; round++) {
    lp2p_noise *from = round == 1 ? r : i, *to = round == 1 ? i : r;
    const uint8_t *p;
    size_t n = lp2p_noise_output(from, &p);
    if (lp2p_noise_feed(to, p, n) != (int64_t)n) die("handshake feed failed");
    lp2p_noise_output_consumed(from, n);
  }
  if (!lp2p_noise_handshake_done(i) || !lp2p_noise_handshake_done(r)) die("handshake incomplete");
}

static void handshake_pair(lp2p_noise **pi, lp2p_noise **pr) { handshake_pair_ex(pi, pr, 0); }

static void one_handshake(void *ud) {
  lp2p_noise *i, *r;
  handshake_pair_ex(&i, &r, ud != NULL);
  lp2p_noise_free(i);
  lp2p_noise_free(r);
}

typedef struct bare_ctx {
  uint8_t sk_a[64], pk_a[32], sk_b[64], pk_b[32];
  uint8_t msg[56], sig[64];
  int shared;                  /* static keys and signatures made once (per node) */
  uint8_t s_priv[2][32], s_pub[2][32];
  uint8_t sig_a[64], sig_b[64];
} bare_ctx;

static void bare_handshake_crypto(void *ud) {
  bare_ctx *c = ud;
  uint8_t priv[4][32], pub[4][32], out[32];
  for (int k = 0; k < 4; k++) { /* s and e, both sides */
    if (c->shared && k < 2) {
      memcpy(priv[k], c->s_priv[k], 32);
      memcpy(pub[k], c->s_pub[k], 32);
      continue;
    }
    randombytes_buf(priv[k], 32);
    if (crypto_scalarmult_base(pub[k], priv[k])) die("x25519 base");
  }
  static const int dh[6][2] = {{0, 2}, {2, 0}, {1, 2}, {2, 1}, {0, 3}, {3, 0}}; /* ee, es, se, each side */
  for (int k = 0; k < 6; k++)
    if (crypto_scalarmult(out, priv[dh[k][0]], pub[dh[k][1]])) die("x25519");
  unsigned long long sl;
  if (c->shared) {
    if (crypto_sign_verify_detached(c->sig_a, c->msg, sizeof c->msg, c->pk_a)) die("verify a");
    if (crypto_sign_verify_detached(c->sig_b, c->msg, sizeof c->msg, c->pk_b)) die("verify b");
  } else {
    crypto_sign_detached(c->sig, &sl, c->msg, sizeof c->msg, c->sk_a);
    if (crypto_sign_verify_detached(c->sig, c->msg, sizeof c->msg, c->pk_a)) die("verify a");
    crypto_sign_detached(c->sig, &sl, c->msg, sizeof c->msg, c->sk_b);
    if (crypto_sign_verify_detached(c->sig, c->msg, sizeof c->msg, c->pk_b)) die("verify b");
  }
  bench_sink(out);
}

/* ---- transport ---- */

typedef struct xfer_ctx {
  lp2p_noise *i, *r;
  uint8_t *data;
  size_t len;    /* bytes per call */
  uint8_t *buf;  /* seal/open scratch */
} xfer_ctx;

static void engine_write_feed(void *ud) {
  xfer_ctx *c = ud;
  if (lp2p_noise_write(c->i, c->data, c->len)) die("write");
  const uint8_t *w;
  size_t n = lp2p_noise_output(c->i, &w), off = 0;
  while (off < n) {
    int64_t k = lp2p_noise_feed(c->r, w + off, n - off);
    if (k < 0) die("feed");
    off += (size_t)k;
    const uint8_t *p;
    size_t got = lp2p_noise_plaintext(c->r, &p);
    bench_sink(p);
    lp2p_noise_plaintext_consumed(c->r, got);
  }
  lp2p_noise_output_consumed(c->i, n);
}

static void engine_seal_open(void *ud) {
  xfer_ctx *c = ud;
  for (size_t off = 0; off < c->len; off += LP2P_NOISE_MAX_PLAINTEXT) {
    size_t k = c->len - off < LP2P_NOISE_MAX_PLAINTEXT ? c->len - off : LP2P_NOISE_MAX_PLAINTEXT;
    int n = lp2p_noise_seal_frame(c->i, c->data + off, k, c->buf);
    size_t pl;
    if (n < 0 || lp2p_noise_open_frame(c->r, c->buf + 2, (size_t)n - 2, &pl) || pl != k) die("seal/open");
  }
}

typedef struct raw_ctx {
  uint8_t key[32];
  uint64_t n;
  uint8_t *data, *buf;
  size_t len;
} raw_ctx;

static void raw_aead(void *ud) {
  raw_ctx *c = ud;
  for (size_t off = 0; off < c->len; off += LP2P_NOISE_MAX_PLAINTEXT) {
    size_t k = c->len - off < LP2P_NOISE_MAX_PLAINTEXT ? c->len - off : LP2P_NOISE_MAX_PLAINTEXT;
    uint8_t nonce[12] = {0};
    memcpy(nonce + 4, &c->n, 8);
    c->n++;
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(c->buf, c->buf + k, NULL, c->data + off, k, NULL, 0, NULL,
                                                       nonce, c->key);
    if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(c->buf, NULL, c->buf, k, c->buf + k, NULL, 0, nonce,
                                                           c->key))
      die("raw decrypt");
  }
}

/* Best of 3 interleaved rounds per function: the machine is shared, so take the least disturbed. */
static void best_of(void (*const fn[])(void *), void *const ud[], size_t n, double out[]) {
  for (size_t k = 0; k < n; k++) out[k] = 0;
  for (int rep = 0; rep < 3; rep++)
    for (size_t k = 0; k < n; k++) {
      double v = bench_run(fn[k], ud[k], bench_min_seconds(), NULL);
      if (v > out[k]) out[k] = v;
    }
}

static void transport_case(const char *label, size_t len) {
  xfer_ctx x = {0};
  handshake_pair(&x.i, &x.r);
  x.len = len;
  x.data = malloc(len);
  x.buf = malloc(LP2P_NOISE_MAX_FRAME + 2);
  raw_ctx rc = {{0}, 0, x.data, x.buf, len};
  if (!x.data || !x.buf) die("oom");
  for (size_t k = 0; k < len; k++) x.data[k] = (uint8_t)k;
  randombytes_buf(rc.key, sizeof rc.key);
  char name[128];
  void (*const fn[3])(void *) = {raw_aead, engine_write_feed, engine_seal_open};
  void *const ud[3] = {&rc, &x, &x};
  double r[3];
  best_of(fn, ud, 3, r);
  double raw = r[0] * (double)len, eng = r[1] * (double)len, zc = r[2] * (double)len;
  snprintf(name, sizeof name, "transport %s: raw chacha20-poly1305 enc+dec", label);
  report(name, raw, "B/s");
  snprintf(name, sizeof name, "transport %s: engine write+feed", label);
  report(name, eng, "B/s");
  snprintf(name, sizeof name, "transport %s: engine seal+open (zero-copy)", label);
  report(name, zc, "B/s");
  snprintf(name, sizeof name, "transport %s: ratio engine/raw (write+feed)", label);
  report(name, raw > 0 ? 100.0 * eng / raw : 0, "%");
  snprintf(name, sizeof name, "transport %s: ratio engine/raw (seal+open)", label);
  report(name, raw > 0 ? 100.0 * zc / raw : 0, "%");
  if (len <= 1024) { /* small messages: fixed cost per message (one frame sealed and opened) */
    const char *what[3] = {"raw chacha20-poly1305", "engine write+feed", "engine seal+open"};
    for (int k = 0; k < 3; k++) {
      snprintf(name, sizeof name, "transport %s: time per message enc+dec, %s", label, what[k]);
      report(name, r[k] > 0 ? 1.0 / r[k] : 0, "s");
    }
  }
  free(x.data);
  free(x.buf);
  lp2p_noise_free(x.i);
  lp2p_noise_free(x.r);
}

/* ---- idle session bytes: an lp2p_mem counting live bytes (size header before each block) ---- */

typedef struct count_mem {
  lp2p_mem mem;
  size_t live;
} count_mem;

#define CM_HDR 16u

static void *cm_malloc(size_t n, void *u) {
  count_mem *c = u;
  uint8_t *p = malloc(CM_HDR + n);
  if (!p) return NULL;
  memcpy(p, &n, sizeof n);
  c->live += n;
  return p + CM_HDR;
}

static void *cm_realloc(void *q, size_t n, void *u) {
  count_mem *c = u;
  if (!q) return cm_malloc(n, u);
  size_t old;
  memcpy(&old, (uint8_t *)q - CM_HDR, sizeof old);
  uint8_t *p = realloc((uint8_t *)q - CM_HDR, CM_HDR + n);
  if (!p) return NULL;
  memcpy(p, &n, sizeof n);
  c->live += n - old;
  return p + CM_HDR;
}

static void cm_free(void *q, void *u) {
  count_mem *c = u;
  if (!q) return;
  size_t old;
  memcpy(&old, (uint8_t *)q - CM_HDR, sizeof old);
  c->live -= old;
  free((uint8_t *)q - CM_HDR);
}

/* Heap bytes (through lp2p_mem) of an established initiator and responder after the handshake
 * messages were sent (output drained), Ed25519 identities, one muxer in the extension. */
static void idle_bytes(void) {
  static const char *const mux[] = {"/yamux/1.0.0"};
  count_mem ci = {{cm_malloc, cm_realloc, cm_free, NULL}, 0}, cr = ci;
  ci.mem.user = &ci;
  cr.mem.user = &cr;
  lp2p_noise_config ki = {sizeof ki, 1, key_a, NULL, mux, 1, NULL}, kr = {sizeof kr, 0, key_b, NULL, mux, 1, NULL};
  lp2p_noise *i, *r;
  if (lp2p_noise_new(&i, &ki, &ci.mem) || lp2p_noise_new(&r, &kr, &cr.mem)) die("new failed");
  for (int round = 0; round < 3; round++) {
    lp2p_noise *from = round == 1 ? r : i, *to = round == 1 ? i : r;
    const uint8_t *p;
    size_t n = lp2p_noise_output(from, &p);
    if (lp2p_noise_feed(to, p, n) != (int64_t)n) die("handshake feed failed");
    lp2p_noise_output_consumed(from, n);
  }
  if (!lp2p_noise_handshake_done(i) || !lp2p_noise_handshake_done(r)) die("handshake incomplete");
  report("idle session: heap bytes through lp2p_mem, initiator", (double)ci.live, "B");
  report("idle session: heap bytes through lp2p_mem, responder", (double)cr.live, "B");
  lp2p_noise_free(i);
  lp2p_noise_free(r);
  if (ci.live || cr.live) die("idle: leak");
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "noise");
  if (sodium_init() < 0) die("sodium_init");
  uint8_t seed[32];
  memset(seed, 1, 32);
  if (lp2p_privkey_from_ed25519_seed(&key_a, seed)) die("key a");
  memset(seed, 2, 32);
  if (lp2p_privkey_from_ed25519_seed(&key_b, seed)) die("key b");

  transport_case("32 B", 32);
  transport_case("1 KiB", 1024);
  transport_case("16 KiB", 16 * 1024);
  transport_case("1 MiB", 1024 * 1024);

  if (lp2p_noise_identity_new(&nid_a, key_a, NULL) || lp2p_noise_identity_new(&nid_b, key_b, NULL))
    die("noise identity");
  bare_ctx bc, bs;
  memset(&bc, 0, sizeof bc);
  crypto_sign_keypair(bc.pk_a, bc.sk_a);
  crypto_sign_keypair(bc.pk_b, bc.sk_b);
  memcpy(bc.msg, "noise-libp2p-static-key:", 24);
  randombytes_buf(bc.msg + 24, 32);
  bs = bc;
  bs.shared = 1;
  for (int k = 0; k < 2; k++) {
    randombytes_buf(bs.s_priv[k], 32);
    if (crypto_scalarmult_base(bs.s_pub[k], bs.s_priv[k])) die("x25519 base");
  }
  unsigned long long sl;
  crypto_sign_detached(bs.sig_a, &sl, bs.msg, sizeof bs.msg, bs.sk_a);
  crypto_sign_detached(bs.sig_b, &sl, bs.msg, sizeof bs.msg, bs.sk_b);
  void (*const fn[4])(void *) = {bare_handshake_crypto, one_handshake, bare_handshake_crypto, one_handshake};
  void *const ud[4] = {&bc, NULL, &bs, nid_a};
  double r[4];
  best_of(fn, ud, 4, r);
  double bare = r[0], hs = r[1], bare_id = r[2], hs_id = r[3];
  report("handshake: bare crypto (4 keygen + 6 DH + 2 sign + 2 verify)", bare, "op/s");
  report("handshake: engine XX, both sides, Ed25519 identities", hs, "op/s");
  report("handshake: ratio engine/bare", bare > 0 ? 100.0 * hs / bare : 0, "%");
  report("handshake: engine time per handshake", hs > 0 ? 1.0 / hs : 0, "s");
  report("handshake: bare crypto time per handshake", bare > 0 ? 1.0 / bare : 0, "s");
  report("handshake_id: bare crypto, per-node static keys (2 keygen + 6 DH + 2 verify)", bare_id, "op/s");
  report("handshake_id: engine XX with lp2p_noise_identity on both sides", hs_id, "op/s");
  report("handshake_id: ratio engine/bare (per-node static keys)", bare_id > 0 ? 100.0 * hs_id / bare_id : 0, "%");
  report("handshake_id: ratio engine with identity / bare per-session crypto", bare > 0 ? 100.0 * hs_id / bare : 0,
         "%");
  report("handshake_id: engine time per handshake", hs_id > 0 ? 1.0 / hs_id : 0, "s");
  report("handshake_id: handshakes/s gained over per-session static keys", hs > 0 ? 100.0 * (hs_id / hs - 1) : 0,
         "%");
  idle_bytes();
  lp2p_noise_identity_free(nid_a);
  lp2p_noise_identity_free(nid_b);
  lp2p_privkey_free(key_a);
  lp2p_privkey_free(key_b);
  return bench_done();
}
