/* swarm/registry.c - the swarm's protocol registry (lp2p_swarm_set_protocol & co.)
 * and its multistream-select view (lp2p__registry_mss). */
#include <string.h>

#include "swarm/swarm_int.h"

/* ------------------------------------------------------------------------- */
/* registry */

static int rebuild_list(lp2p_swarm *sw) {
  lp2p__free(&sw->mem, sw->proto_list);
  sw->proto_list = NULL;
  if (!sw->n_protos) return 0;
  sw->proto_list = lp2p__malloc(&sw->mem, sw->n_protos * sizeof *sw->proto_list);
  if (!sw->proto_list) return LP2P_ERR_NOMEM;
  for (size_t i = 0; i < sw->n_protos; i++) sw->proto_list[i] = sw->protos[i].id;
  return 0;
}

const lp2p__proto *lp2p__registry_find(const lp2p_swarm *sw, const char *id, size_t len) {
  for (size_t i = 0; i < sw->n_protos; i++)
    if (sw->protos[i].len == len && !memcmp(sw->protos[i].id, id, len)) return &sw->protos[i];
  return NULL;
}

int lp2p_swarm_set_protocol(lp2p_swarm *sw, const char *id, const lp2p_stream_handler *h, void *ud) {
  if (!sw || !id || !h || id[0] != '/') return LP2P_ERR_INVAL;
  size_t len = strlen(id);
  if (len > LP2P_PROTOCOL_ID_MAX || memchr(id, '\n', len)) return LP2P_ERR_INVAL;
  for (size_t i = 0; i < sw->n_protos; i++) {
    if (sw->protos[i].len == len && !memcmp(sw->protos[i].id, id, len)) {
      lp2p__copy_handler(&sw->protos[i].h, h);
      sw->protos[i].ud = ud;
      return 0;
    }
  }
  if (sw->n_protos == sw->cap_protos) {
    size_t ncap = sw->cap_protos ? sw->cap_protos * 2 : 8;
    lp2p__proto *np = lp2p__realloc(&sw->mem, sw->protos, ncap * sizeof *np);
    if (!np) return LP2P_ERR_NOMEM;
    sw->protos = np;
    sw->cap_protos = ncap;
  }
  char *copy = lp2p__strndup(&sw->mem, id, len);
  if (!copy) return LP2P_ERR_NOMEM;
  lp2p__proto *p = &sw->protos[sw->n_protos++];
  p->id = copy;
  p->len = len;
  lp2p__copy_handler(&p->h, h);
  p->ud = ud;
  if (rebuild_list(sw) < 0) {
    sw->n_protos--;
    lp2p__free(&sw->mem, copy);
    return LP2P_ERR_NOMEM;
  }
  lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "protocol %s registered", id);
  return 0;
}

int lp2p_swarm_remove_protocol(lp2p_swarm *sw, const char *id) {
  if (!sw || !id) return LP2P_ERR_INVAL;
  size_t len = strlen(id);
  for (size_t i = 0; i < sw->n_protos; i++) {
    if (sw->protos[i].len == len && !memcmp(sw->protos[i].id, id, len)) {
      lp2p__free(&sw->mem, sw->protos[i].id);
      memmove(&sw->protos[i], &sw->protos[i + 1], (sw->n_protos - i - 1) * sizeof sw->protos[0]);
      sw->n_protos--;
      rebuild_list(sw); /* shrinking: a failure leaves proto_list NULL, handled by readers */
      return 0;
    }
  }
  return LP2P_ERR_NOT_FOUND;
}

size_t lp2p_swarm_protocols(const lp2p_swarm *sw, const char **out, size_t max) {
  for (size_t i = 0; i < sw->n_protos && i < max; i++) out[i] = sw->protos[i].id;
  return sw->n_protos;
}

void lp2p__registry_free(lp2p_swarm *sw) {
  for (size_t i = 0; i < sw->n_protos; i++) lp2p__free(&sw->mem, sw->protos[i].id);
  lp2p__free(&sw->mem, sw->protos);
  lp2p__free(&sw->mem, sw->proto_list);
  sw->protos = NULL;
  sw->proto_list = NULL;
  sw->n_protos = sw->cap_protos = 0;
}

static int reg_supports(void *ud, const char *proto, size_t len) {
  return lp2p__registry_find(ud, proto, len) != NULL;
}

static size_t reg_list(void *ud, const char **out, size_t max) {
  const lp2p_swarm *sw = ud;
  return lp2p_swarm_protocols(sw, out, max);
}

const lp2p_mss_registry lp2p__registry_mss = {reg_supports, reg_list};
