/* core/mem.h - internal allocation helpers over lp2p_mem (never NULL inside
 * the library: objects resolve a NULL lp2p_mem to lp2p_mem_default() at _new). */
#ifndef LP2P_CORE_MEM_H
#define LP2P_CORE_MEM_H
#include <string.h>
#include "lp2p/common.h"

/* Returns mem, or the libc allocator when mem is NULL. */
const lp2p_mem *lp2p__mem_or_default(const lp2p_mem *mem);

static inline void *lp2p__malloc(const lp2p_mem *m, size_t n) { return m->malloc_fn(n ? n : 1, m->user); }
static inline void *lp2p__realloc(const lp2p_mem *m, void *p, size_t n) {
  return m->realloc_fn(p, n ? n : 1, m->user);
}
static inline void lp2p__free(const lp2p_mem *m, void *p) {
  if (p) m->free_fn(p, m->user);
}
static inline void *lp2p__calloc(const lp2p_mem *m, size_t k, size_t n) {
  if (n && k > SIZE_MAX / n) return NULL;
  void *p = lp2p__malloc(m, k * n);
  if (p) memset(p, 0, k * n);
  return p;
}
/* Duplicate len bytes into a NUL-terminated string. */
char *lp2p__strndup(const lp2p_mem *m, const char *s, size_t len);

/* Growable byte buffer. */
typedef struct lp2p_bytes {
  uint8_t *data;
  size_t len, cap;
} lp2p_bytes;
/* Ensure room for `extra` more bytes; LP2P_ERR_NOMEM on failure (buffer unchanged). */
int lp2p__bytes_reserve(const lp2p_mem *m, lp2p_bytes *b, size_t extra);
int lp2p__bytes_append(const lp2p_mem *m, lp2p_bytes *b, const void *p, size_t n);
/* Drop the first n bytes. */
void lp2p__bytes_consume(lp2p_bytes *b, size_t n);
void lp2p__bytes_free(const lp2p_mem *m, lp2p_bytes *b);

/* protobuf-c allocator adaptor routed through an lp2p_mem. */
struct ProtobufCAllocator;
void lp2p__protobuf_allocator(const lp2p_mem *m, struct ProtobufCAllocator *out);

#endif
