/* protocols/files/engine/wire.h - the /lp2p/file/2.0.0 frame codec (lp2p/files.h "Wire"), sans-IO:
 * the OFFER (manifest) and the receiver's answers (ACCEPT, REJECT, DONE). Internal: files.c and
 * fuzz/fuzz_files_offer.c use it. */
#ifndef LP2P_FILES_WIRE_H
#define LP2P_FILES_WIRE_H
#include <stddef.h>
#include <stdint.h>

#include "lp2p/files.h"

/* type | id | size | chunk_size | n_chunks | sha256 | name_len: the OFFER bytes before the name */
#define LP2P_FILES_OFFER_FIXED (1 + 16 + 8 + 4 + 4 + 32 + 2)

typedef struct lp2p_files_offer {
  lp2p_files_id id;
  uint64_t size;
  uint32_t chunk, n_chunks;
  const uint8_t *sha;    /* 32 bytes, into the frame */
  const uint8_t *name;   /* name_len bytes, into the frame (not NUL-terminated) */
  size_t name_len;
  const uint8_t *hashes; /* n_chunks x 32 bytes, into the frame: midstates, the last is the whole sha256 */
} lp2p_files_offer;

enum {
  LP2P_FILES_OFFER_OK = 0,
  LP2P_FILES_OFFER_MALFORMED = -1, /* not an OFFER at all (shorter than its fixed part, another type): reset */
  LP2P_FILES_OFFER_BAD = -2        /* an OFFER whose manifest or name is unusable: REJECT bad-offer */
};

/* Decodes and checks an OFFER payload (without its length prefix): sizes agree (n_chunks =
 * ceil(size / chunk_size), chunk_size a non-zero multiple of 64, the frame exactly as long as the name and
 * the hashes), the last hash is the whole-file sha256 (empty file: no hashes), the name is 1..255 bytes
 * without NUL or '/', not starting with '.'. On BAD, *o holds what was decoded (id at least). */
int lp2p__files_offer_decode(const uint8_t *m, size_t ml, lp2p_files_offer *o);

typedef struct lp2p_files_answer {
  uint8_t type; /* LP2P_FILES_FRAME_ACCEPT, _REJECT or _DONE */
  lp2p_files_id id;
  uint32_t first;      /* ACCEPT */
  uint8_t reason;      /* REJECT */
  uint8_t sha256[32];  /* DONE */
} lp2p_files_answer;

#define LP2P_FILES_ANSWER_MAX 49
/* 0 and *a, or -1 (unknown type or wrong length for its type). */
int lp2p__files_answer_decode(const uint8_t *m, size_t ml, lp2p_files_answer *a);
/* Writes the payload (no prefix) into out[LP2P_FILES_ANSWER_MAX]; its length, or -1 for an unknown type. */
int lp2p__files_answer_encode(const lp2p_files_answer *a, uint8_t *out);

#endif
