/* protocols/proto_mem.h - behaviours allocate through the swarm's allocator
 * (lp2p_swarm_mem), so that allocation-failure tests cover them. Public API only. */
#ifndef LP2P_PROTOCOLS_PROTO_MEM_H
#define LP2P_PROTOCOLS_PROTO_MEM_H
#include <string.h>

#include "lp2p/common.h"

static inline void *lp2p__pm_malloc(const lp2p_mem *m, size_t n) { return m->malloc_fn(n ? n : 1, m->user); }
static inline void *lp2p__pm_calloc(const lp2p_mem *m, size_t n) {
  void *p = lp2p__pm_malloc(m, n);
  if (p) memset(p, 0, n);
  return p;
}
static inline void lp2p__pm_free(const lp2p_mem *m, void *p) {
  if (p) m->free_fn(p, m->user);
}
static inline void *lp2p__pm_realloc(const lp2p_mem *m, void *p, size_t n) {
  return m->realloc_fn(p, n ? n : 1, m->user);
}
static inline char *lp2p__pm_strdup(const lp2p_mem *m, const char *s) {
  size_t n = strlen(s);
  char *d = lp2p__pm_malloc(m, n + 1);
  if (d) memcpy(d, s, n + 1);
  return d;
}
#endif
