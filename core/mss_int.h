/* core/mss_int.h - multistream-select internals shared with the tests. */
#ifndef LP2P_CORE_MSS_INT_H
#define LP2P_CORE_MSS_INT_H
#include "core/mem.h"
#include "lp2p/mss.h"

/* 1 when s[0..len) may be sent or accepted as a protocol id: non-empty, no
 * '\n' and no NUL. */
int lp2p__mss_id_valid(const char *s, size_t len);

/* Append one message "<uvarint(len+1)> text '\n'" to b. LP2P_ERR_NOMEM on
 * allocation failure (b unchanged). */
int lp2p__mss_put_line(const lp2p_mem *m, lp2p_bytes *b, const char *text, size_t len);

/* Classify a peer's first message text (without its '\n'): 0 for
 * "/multistream/1.0.0", LP2P_ERR_UNSUPPORTED for another "/multistream/..."
 * version, LP2P_ERR_PROTO otherwise. */
int lp2p__mss_check_header(const uint8_t *p, size_t len);

/* Parse an "ls" answer body (the L bytes of the outer message, trailing bare
 * '\n' included). Calls cb(ud, id, len) for each entry when cb is non-NULL and
 * returns the number of entries, or LP2P_ERR_PROTO when malformed (an entry
 * that is empty, lacks its '\n', contains '\n'/NUL, or overruns the body; no
 * final bare '\n'). */
int lp2p__mss_parse_list(const uint8_t *body, size_t len,
                         void (*cb)(void *ud, const uint8_t *id, size_t idlen), void *ud);

#endif
