/* muxer/yamux_frame.c - the 12-byte Yamux frame header (all fields big-endian). */
#include "muxer/yamux_int.h"

void lp2p__yamux_hdr_encode(uint8_t out[LP2P__YAMUX_HDR_LEN], uint8_t type, uint16_t flags, uint32_t id,
                            uint32_t length) {
  out[0] = LP2P__YAMUX_VERSION;
  out[1] = type;
  out[2] = (uint8_t)(flags >> 8);
  out[3] = (uint8_t)flags;
  out[4] = (uint8_t)(id >> 24);
  out[5] = (uint8_t)(id >> 16);
  out[6] = (uint8_t)(id >> 8);
  out[7] = (uint8_t)id;
  out[8] = (uint8_t)(length >> 24);
  out[9] = (uint8_t)(length >> 16);
  out[10] = (uint8_t)(length >> 8);
  out[11] = (uint8_t)length;
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void lp2p__yamux_hdr_decode(const uint8_t in[LP2P__YAMUX_HDR_LEN], lp2p__yamux_hdr *h) {
  h->version = in[0];
  h->type = in[1];
  h->flags = (uint16_t)((uint16_t)in[2] << 8 | in[3]);
  h->stream_id = be32(in + 4);
  h->length = be32(in + 8);
}
