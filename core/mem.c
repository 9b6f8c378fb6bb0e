/* mem.c - default allocator, byte buffers, protobuf-c allocator adaptor. */
#include "core/mem.h"

#include <protobuf-c/protobuf-c.h>
#include <stdlib.h>

static void *libc_malloc(size_t n, void *u) { (void)u; return malloc(n); }
static void *libc_realloc(void *p, size_t n, void *u) { (void)u; return realloc(p, n); }
static void libc_free(void *p, void *u) { (void)u; free(p); }

static const lp2p_mem default_mem = {libc_malloc, libc_realloc, libc_free, NULL};

const lp2p_mem *lp2p_mem_default(void) { return &default_mem; }
const lp2p_mem *lp2p__mem_or_default(const lp2p_mem *mem) { return mem ? mem : &default_mem; }

char *lp2p__strndup(const lp2p_mem *m, const char *s, size_t len) {
  char *p = lp2p__malloc(m, len + 1);
  if (!p) return NULL;
  memcpy(p, s, len);
  p[len] = 0;
  return p;
}

int lp2p__bytes_reserve(const lp2p_mem *m, lp2p_bytes *b, size_t extra) {
  if (extra > SIZE_MAX - b->len) return LP2P_ERR_NOMEM;
  size_t need = b->len + extra;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  uint8_t *p = lp2p__realloc(m, b->data, cap);
  if (!p) return LP2P_ERR_NOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int lp2p__bytes_append(const lp2p_mem *m, lp2p_bytes *b, const void *p, size_t n) {
  if (!n) return 0;
  int rv = lp2p__bytes_reserve(m, b, n);
  if (rv) return rv;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void lp2p__bytes_consume(lp2p_bytes *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

void lp2p__bytes_free(const lp2p_mem *m, lp2p_bytes *b) {
  lp2p__free(m, b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

static void *pb_alloc(void *ud, size_t n) {
  const lp2p_mem *m = ud;
  return lp2p__malloc(m, n);
}
static void pb_free(void *ud, void *p) {
  const lp2p_mem *m = ud;
  lp2p__free(m, p);
}
void lp2p__protobuf_allocator(const lp2p_mem *m, ProtobufCAllocator *out) {
  out->alloc = pb_alloc;
  out->free = pb_free;
  out->allocator_data = (void *)m;
}
