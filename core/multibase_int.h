/* core/multibase_int.h - internal codecs behind lp2p_multibase_* that have no
 * public API of their own. Same conventions as lp2p/encoding.h (caller buffers,
 * NUL-terminated text, no allocation). */
#ifndef LP2P_CORE_MULTIBASE_INT_H
#define LP2P_CORE_MULTIBASE_INT_H
#include "lp2p/common.h"

/* base64url (RFC 4648 §5), no padding; decode rejects '=', bad characters and
 * non-zero trailing bits (LP2P_ERR_PARSE). */
int lp2p__base64url_encode(const uint8_t *in, size_t len, char *out, size_t cap, size_t *outlen);
int lp2p__base64url_decode(const char *text, size_t len, uint8_t *out, size_t cap, size_t *outlen);

#endif
