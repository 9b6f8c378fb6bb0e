/* tests/helpers/noise_helpers.h - shared test plumbing for the Noise engine tests: identity keys
 * from the vectors and a driver that moves bytes between two lp2p_noise sessions. Test code only.
 * Functions returning keys hand ownership to the caller (lp2p_privkey_free). */
#ifndef LP2P_TEST_NOISE_HELPERS_H
#define LP2P_TEST_NOISE_HELPERS_H
#include <stddef.h>
#include <stdint.h>

#include "lp2p/noise.h"

/* Growable byte collector (malloc'd; nh_sink_free). */
typedef struct nh_sink {
  uint8_t *data;
  size_t len, cap;
} nh_sink;
void nh_sink_add(nh_sink *s, const uint8_t *p, size_t n);
void nh_sink_free(nh_sink *s);

/* Private key from tests/vectors/key-signatures.json: "RSA", "Secp256k1", "ECDSA", "Ed25519".
 * NULL if the vector or the key type is unavailable. */
lp2p_privkey *nh_vector_key(const char *name);
/* Ed25519 key from a seed of 32 copies of b. */
lp2p_privkey *nh_seed_key(uint8_t b);
lp2p_peer_id nh_peer_id(const lp2p_privkey *k);

/* Feeds in[0..len) to n in pieces of at most chunk bytes (0 = all at once), feeding again
 * whatever feed did not consume and draining the plaintext into sink (NULL = discard).
 * Returns 0 or the first error. */
int nh_feed_all(lp2p_noise *n, const uint8_t *in, size_t len, size_t chunk, nh_sink *sink);
/* Moves all pending output of from into to (nh_feed_all), marking it consumed. */
int nh_transfer(lp2p_noise *from, lp2p_noise *to, size_t chunk, nh_sink *sink);
/* Runs the handshake between an initiator and a responder. *ierr / *rerr get each side's error
 * (0 if none). Returns 0 when both finished. */
int nh_handshake(lp2p_noise *ini, lp2p_noise *res, size_t chunk, int *ierr, int *rerr);
/* Convenience constructor. */
int nh_new(lp2p_noise **out, int initiator, const lp2p_privkey *id, const lp2p_peer_id *expected,
           const char *const *muxers, size_t n_muxers, const lp2p_mem *mem);
/* The same with a per-node lp2p_noise_identity (id may then be NULL). */
int nh_new_id(lp2p_noise **out, int initiator, const lp2p_privkey *id, const lp2p_noise_identity *nid,
              const lp2p_peer_id *expected, const char *const *muxers, size_t n_muxers, const lp2p_mem *mem);

/* An lp2p_mem counting live bytes and blocks (a size header sits before each block). Blocks of
 * exactly watch_size bytes are checked on free: watched_dirty counts those not wiped to zero. */
typedef struct nh_countmem {
  lp2p_mem mem;
  size_t live_bytes;
  long live_blocks;
  size_t watch_size;
  long watched_frees, watched_dirty;
} nh_countmem;
void nh_countmem_init(nh_countmem *c);

#endif
