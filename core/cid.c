/* core/cid.c - binary CIDv1: 0x01 || codec uvarint || multihash. */
#include <string.h>

#include "lp2p/encoding.h"

int lp2p_cid_encode(uint64_t codec, const uint8_t *mh, size_t mhlen, uint8_t *out, size_t cap) {
  if (codec >> 63) return LP2P_ERR_INVAL;
  if (lp2p_multihash_parse(mh, mhlen, NULL) != LP2P_OK) return LP2P_ERR_MULTIHASH;
  size_t need = 1 + lp2p_uvarint_size(codec) + mhlen;
  if (!out || cap < need) return LP2P_ERR_BUFSIZE;
  out[0] = 0x01;
  size_t o = 1 + (size_t)lp2p_uvarint_encode(codec, out + 1, cap - 1);
  memmove(out + o, mh, mhlen);
  return (int)need;
}

int lp2p_cid_decode(const uint8_t *in, size_t len, uint64_t *codec, const uint8_t **mh, size_t *mhlen) {
  uint64_t version, c;
  if (!in && len) return LP2P_ERR_INVAL;
  int a = lp2p_uvarint_decode(in, len, &version);
  if (a < 0 || version != 1) return LP2P_ERR_CID; /* also rejects CIDv0 / a bare multihash (0x12) */
  int b = lp2p_uvarint_decode(in + a, len - (size_t)a, &c);
  if (b < 0) return LP2P_ERR_CID;
  size_t off = (size_t)a + (size_t)b;
  if (lp2p_multihash_parse(in + off, len - off, NULL) != LP2P_OK) return LP2P_ERR_MULTIHASH;
  if (codec) *codec = c;
  if (mh) *mh = in + off;
  if (mhlen) *mhlen = len - off;
  return LP2P_OK;
}
