/* tests/helpers/failmem.c - see failmem.h. */
#include "failmem.h"

#include <stdlib.h>

static void *fm_malloc(size_t n, void *u) {
  failmem *fm = u;
  if (++fm->count == fm->fail_at) {
    fm->triggered = 1;
    return NULL;
  }
  void *p = malloc(n);
  if (p) fm->live++;
  return p;
}

static void *fm_realloc(void *p, size_t n, void *u) {
  failmem *fm = u;
  if (++fm->count == fm->fail_at) {
    fm->triggered = 1;
    return NULL;
  }
  void *q = realloc(p, n);
  if (q && !p) fm->live++;
  return q;
}

static void fm_free(void *p, void *u) {
  failmem *fm = u;
  if (p) {
    fm->live--;
    free(p);
  }
}

void failmem_init(failmem *fm, long fail_at) {
  fm->mem.malloc_fn = fm_malloc;
  fm->mem.realloc_fn = fm_realloc;
  fm->mem.free_fn = fm_free;
  fm->mem.user = fm;
  fm->fail_at = fail_at;
  fm->count = 0;
  fm->live = 0;
  fm->triggered = 0;
}
