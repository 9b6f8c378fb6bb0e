/* protocols/files/engine/wire.c - /lp2p/file/2.0.0 frame codec (wire.h). */
#include "protocols/files/engine/wire.h"

#include <string.h>

static uint64_t rd64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void be32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i));
}

int lp2p__files_offer_decode(const uint8_t *m, size_t ml, lp2p_files_offer *o) {
  memset(o, 0, sizeof *o);
  if (ml < LP2P_FILES_OFFER_FIXED || m[0] != LP2P_FILES_FRAME_OFFER) return LP2P_FILES_OFFER_MALFORMED;
  memcpy(o->id.b, m + 1, 16);
  o->size = rd64(m + 17);
  o->chunk = rd32(m + 25);
  o->n_chunks = rd32(m + 29);
  o->sha = m + 33;
  o->name_len = (size_t)m[65] << 8 | m[66];
  if (o->name_len == 0 || o->name_len > 255 || !o->chunk || o->chunk % 64 != 0) return LP2P_FILES_OFFER_BAD;
  uint64_t want_chunks = o->size ? (o->size - 1) / o->chunk + 1 : 0;
  if (o->n_chunks != want_chunks) return LP2P_FILES_OFFER_BAD;
  if ((uint64_t)ml != (uint64_t)LP2P_FILES_OFFER_FIXED + o->name_len + (uint64_t)o->n_chunks * 32)
    return LP2P_FILES_OFFER_BAD;
  o->name = m + LP2P_FILES_OFFER_FIXED;
  o->hashes = o->name + o->name_len;
  if (o->n_chunks && memcmp(o->hashes + 32 * ((size_t)o->n_chunks - 1), o->sha, 32) != 0)
    return LP2P_FILES_OFFER_BAD;
  if (memchr(o->name, 0, o->name_len) || memchr(o->name, '/', o->name_len) || o->name[0] == '.')
    return LP2P_FILES_OFFER_BAD; /* also "." and ".." */
  return LP2P_FILES_OFFER_OK;
}

int lp2p__files_answer_decode(const uint8_t *m, size_t ml, lp2p_files_answer *a) {
  memset(a, 0, sizeof *a);
  if (ml < 17) return -1;
  a->type = m[0];
  memcpy(a->id.b, m + 1, 16);
  switch (m[0]) {
  case LP2P_FILES_FRAME_ACCEPT:
    if (ml != 21) return -1;
    a->first = rd32(m + 17);
    return 0;
  case LP2P_FILES_FRAME_REJECT:
    if (ml != 18) return -1;
    a->reason = m[17];
    return 0;
  case LP2P_FILES_FRAME_DONE:
    if (ml != 49) return -1;
    memcpy(a->sha256, m + 17, 32);
    return 0;
  default:
    return -1;
  }
}

int lp2p__files_answer_encode(const lp2p_files_answer *a, uint8_t *out) {
  out[0] = a->type;
  memcpy(out + 1, a->id.b, 16);
  switch (a->type) {
  case LP2P_FILES_FRAME_ACCEPT:
    be32(out + 17, a->first);
    return 21;
  case LP2P_FILES_FRAME_REJECT:
    out[17] = a->reason;
    return 18;
  case LP2P_FILES_FRAME_DONE:
    memcpy(out + 17, a->sha256, 32);
    return 49;
  default:
    return -1;
  }
}
