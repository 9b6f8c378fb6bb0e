/* muxer/yamux_map.c - stream id -> stream table: open addressing with linear
 * probing and backward-shift deletion (no tombstones). Load factor <= 1/2. */
#include "muxer/yamux_int.h"

static size_t slot_of(uint32_t id, size_t cap) { return (size_t)((id * 2654435761u) & (uint32_t)(cap - 1)); }

lp2p__yamux_stream *lp2p__yamux_map_get(const lp2p__yamux_map *m, uint32_t id) {
  if (!m->cap) return NULL;
  for (size_t i = slot_of(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
    lp2p__yamux_stream *s = m->slots[i];
    if (!s) return NULL;
    if (s->id == id) return s;
  }
}

static void insert_slot(lp2p__yamux_stream **slots, size_t cap, lp2p__yamux_stream *s) {
  size_t i = slot_of(s->id, cap);
  while (slots[i]) i = (i + 1) & (cap - 1);
  slots[i] = s;
}

int lp2p__yamux_map_put(const lp2p_mem *mem, lp2p__yamux_map *m, lp2p__yamux_stream *s) {
  if ((m->n + 1) * 2 > m->cap) {
    size_t ncap = m->cap ? m->cap * 2 : 16;
    lp2p__yamux_stream **ns = lp2p__calloc(mem, ncap, sizeof *ns);
    if (!ns) return LP2P_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++)
      if (m->slots[i]) insert_slot(ns, ncap, m->slots[i]);
    lp2p__free(mem, m->slots);
    m->slots = ns;
    m->cap = ncap;
  }
  insert_slot(m->slots, m->cap, s);
  m->n++;
  return 0;
}

void lp2p__yamux_map_del(lp2p__yamux_map *m, uint32_t id) {
  if (!m->cap) return;
  size_t mask = m->cap - 1, i = slot_of(id, m->cap);
  while (m->slots[i] && m->slots[i]->id != id) i = (i + 1) & mask;
  if (!m->slots[i]) return;
  m->slots[i] = NULL;
  m->n--;
  /* Shift back the entries of the cluster that follows so lookups stay correct. */
  for (size_t j = (i + 1) & mask; m->slots[j]; j = (j + 1) & mask) {
    size_t home = slot_of(m->slots[j]->id, m->cap);
    /* Move slots[j] into the hole i if its home is not cyclically in (i, j]. */
    int in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!in_range) {
      m->slots[i] = m->slots[j];
      m->slots[j] = NULL;
      i = j;
    }
  }
}

void lp2p__yamux_map_free(const lp2p_mem *mem, lp2p__yamux_map *m) {
  lp2p__free(mem, m->slots);
  m->slots = NULL;
  m->cap = m->n = 0;
}
