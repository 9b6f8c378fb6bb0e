/* swarm/gate.c - connection gating: the behaviours' allow_inbound / allow_stream
 * hooks (see lp2p_behaviour_vtable in lp2p/swarm.h). Any behaviour denying wins. */
#include <stddef.h>
#include <string.h>

#include "swarm/swarm_int.h"

#define HAS_HOOK(vt, m) ((vt)->struct_size >= offsetof(lp2p_behaviour_vtable, m) + sizeof((vt)->m) && (vt)->m)

int lp2p__gate_inbound_conn(lp2p__conn *c) {
  lp2p_swarm *sw = c->sw;
  if (c->dir != LP2P_DIR_INBOUND) return 0;
  for (size_t i = 0; i < sw->n_behaviours; i++) {
    const lp2p__behaviour *b = &sw->behaviours[i];
    if (HAS_HOOK(b->vt, allow_inbound) && !b->vt->allow_inbound(b->self, sw, &c->remote, c->remote_addr)) {
      char pb[LP2P_PEER_ID_MAX_TEXT], ab[256];
      lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "conn #%llu from %s (%s) denied by behaviour %s",
               (unsigned long long)c->id, lp2p__peer_str(&c->remote, pb, sizeof pb),
               lp2p__ma_str(c->remote_addr, ab, sizeof ab), b->vt->name ? b->vt->name : "?");
      return LP2P_ERR_DENIED;
    }
  }
  return 0;
}

static int stream_allowed(lp2p_stream *s, const char *proto) {
  lp2p_swarm *sw = s->sw;
  for (size_t i = 0; i < sw->n_behaviours; i++) {
    const lp2p__behaviour *b = &sw->behaviours[i];
    if (HAS_HOOK(b->vt, allow_stream) && !b->vt->allow_stream(b->self, sw, &s->peer, proto)) {
      char pb[LP2P_PEER_ID_MAX_TEXT];
      lp2p_log(LP2P_LOG_DEBUG, LP2P__SW_LOG, "inbound stream %s from %s denied by behaviour %s", proto,
               lp2p__peer_str(&s->peer, pb, sizeof pb), b->vt->name ? b->vt->name : "?");
      s->denied = 1;
      return 0;
    }
  }
  return 1;
}

/* The registry as the inbound stream's multistream listener sees it: known AND allowed. */
static int gate_supports(void *ud, const char *proto, size_t len) {
  lp2p_stream *s = ud;
  if (!lp2p__registry_find(s->sw, proto, len)) return 0;
  if (!s->sw->n_behaviours) return 1;
  char buf[LP2P_PROTOCOL_ID_MAX + 1];
  if (len > LP2P_PROTOCOL_ID_MAX) return 0;
  memcpy(buf, proto, len);
  buf[len] = 0;
  return stream_allowed(s, buf);
}

static size_t gate_list(void *ud, const char **out, size_t max) {
  const lp2p_stream *s = ud;
  return lp2p_swarm_protocols(s->sw, out, max);
}

const lp2p_mss_registry lp2p__gate_registry_mss = {gate_supports, gate_list};

int lp2p__gate_stream_err(const lp2p_stream *s, int err) {
  return s->denied && err == LP2P_ERR_UNSUPPORTED ? LP2P_ERR_DENIED : err;
}
