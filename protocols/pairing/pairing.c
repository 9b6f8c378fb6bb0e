/* protocols/pairing/pairing.c - the pairing behaviour (lp2p/pairing.h): drives
 * the sans-IO engine (engine/pair_int.h) over /lp2p/pair/1.0.0 streams,
 * applies the code policy on both sides, finds candidates through rendezvous
 * backends, and records the paired device in the registry (lp2p/devices.h). */
#include "lp2p/pairing.h"

#include "lp2p/peerstore.h"

#include "protocols/pairing/engine/pair_int.h"
#include "protocols/proto_mem.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_CAND 64
#define MAX_BURNED 32
#define MAX_RDV 4

typedef struct psess psess;

typedef struct rdv {
  const lp2p_pair_rendezvous *vt;
  void *self;
} rdv;

struct lp2p_pairing {
  lp2p_mem mem;
  lp2p_swarm *sw;
  lp2p_pairing_config cfg;
  char name[LP2P__PAIR_NAME_MAX + 1];
  lp2p_devices *dev;
  /* initiator */
  lp2p__pair_policy own;
  int own_active;
  lp2p_timer *expiry;
  psess *isess;
  /* joiner */
  int joining, join_explicit, join_cancel, join_kicked;
  size_t rdv_pending; /* backends still searching */
  lp2p__pair_code jcode;
  psess *jsess;
  lp2p_peer_id cand[MAX_CAND];
  size_t ncand, next;
  lp2p_pairing_fail last_fail;
  int last_reason;
  lp2p_timer *jtimer;
  uint8_t burned[MAX_BURNED][32]; /* hashes of burned typed codes */
  unsigned nburned;
  rdv rdvs[MAX_RDV];
  size_t nrdv, n_finders; /* backends with find() */
  int detached;
};

struct psess {
  lp2p_pairing *p;
  lp2p__pair_role role;
  lp2p_stream *s;
  lp2p__pair_session *eng;
  lp2p_timer *timer;
  lp2p_peer_id peer;
  int finished, canceled;
};

static const char *const k_fail_names[] = {"?",        "wrong-code", "tampered", "wrong-nameplate", "expired",
                                           "protocol", "aborted",    "local",    "no-peer",         "canceled"};

const char *lp2p_pairing_fail_name(lp2p_pairing_fail f) {
  return (unsigned)f < sizeof k_fail_names / sizeof *k_fail_names ? k_fail_names[f] : "?";
}

void lp2p_pairing_config_default(lp2p_pairing_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->struct_size = sizeof *cfg;
  cfg->device_name = "lp2p device";
  cfg->nameplate_digits = 3;
  cfg->code_lifetime_ms = LP2P__PAIR_DEFAULT_LIFETIME_MS;
  cfg->max_failures = LP2P__PAIR_DEFAULT_MAX_FAILURES;
  cfg->failure_window_ms = LP2P__PAIR_DEFAULT_WINDOW_MS;
  cfg->session_timeout_ms = 30000;
}

static void emit_failed(lp2p_pairing *p, lp2p_pairing_role role, const lp2p_peer_id *peer, lp2p_pairing_fail f,
                        int reason, int burned) {
  lp2p_pairing_event ev;
  memset(&ev, 0, sizeof ev);
  ev.struct_size = sizeof ev;
  ev.type = LP2P_PAIRING_EV_FAILED;
  ev.role = role;
  ev.peer = peer;
  ev.fail = f;
  ev.peer_reason = reason;
  ev.code_burned = burned;
  p->cfg.on_event(p, &ev, p->cfg.ud);
}

static void code_hash(const lp2p__pair_code *c, uint8_t h[32]) {
  char text[LP2P__PAIR_CODE_MAX];
  int n = lp2p__pair_code_format(c, text, sizeof text);
  crypto_generichash(h, 32, (const uint8_t *)text, n > 0 ? (size_t)n : 0, NULL, 0);
  sodium_memzero(text, sizeof text);
}

static void withdraw(lp2p_pairing *p) {
  for (size_t i = 0; i < p->nrdv; i++)
    if (p->rdvs[i].vt->withdraw) p->rdvs[i].vt->withdraw(p->rdvs[i].self, p->sw);
}

/* Our device info: name + listen addresses (binary multiaddrs). */
static void local_info(lp2p_pairing *p, lp2p__pair_device_info *di) {
  memset(di, 0, sizeof *di);
  size_t nl = strlen(p->name);
  di->name_len = (uint8_t)nl;
  memcpy(di->name, p->name, nl);
  const lp2p_multiaddr *mas[LP2P__PAIR_ADDRS_MAX];
  size_t n = lp2p_swarm_listen_addrs(p->sw, mas, LP2P__PAIR_ADDRS_MAX);
  if (n > LP2P__PAIR_ADDRS_MAX) n = LP2P__PAIR_ADDRS_MAX;
  for (size_t i = 0; i < n; i++) {
    size_t len;
    const uint8_t *b = lp2p_multiaddr_bytes(mas[i], &len);
    if (!b || !len || len > LP2P__PAIR_ADDR_MAX) continue;
    di->addr_len[di->n_addrs] = (uint8_t)len;
    memcpy(di->addr[di->n_addrs++], b, len);
  }
}

/* ------------------------------------------------------------------------- */
/* sessions */

static void join_next(lp2p_pairing *p);

static void sess_free(psess *ps) {
  lp2p_timer_free(ps->timer);
  lp2p__pair_session_free(ps->eng);
  lp2p__pm_free(&ps->p->mem, ps);
}

static void on_paired(psess *ps) {
  lp2p_pairing *p = ps->p;
  const lp2p__pair_device_info *ri = lp2p__pair_session_remote_info(ps->eng);
  char texts[LP2P__PAIR_ADDRS_MAX][256];
  const char *addrs[LP2P__PAIR_ADDRS_MAX];
  const lp2p_multiaddr *mas[LP2P__PAIR_ADDRS_MAX];
  lp2p_multiaddr *owned[LP2P__PAIR_ADDRS_MAX];
  size_t n = 0;
  for (size_t i = 0; ri && i < ri->n_addrs; i++) {
    lp2p_multiaddr *ma = NULL;
    if (lp2p_multiaddr_from_bytes(&ma, ri->addr[i], ri->addr_len[i], NULL, 0) < 0) continue;
    if (lp2p_multiaddr_to_string(ma, texts[n], sizeof texts[n]) < 0 || !lp2p_multiaddr_is_dialable(ma)) {
      lp2p_multiaddr_free(ma);
      continue;
    }
    addrs[n] = texts[n];
    mas[n] = ma;
    owned[n++] = ma;
  }
  if (n) lp2p_swarm_add_addresses(p->sw, &ps->peer, mas, n);
  for (size_t i = 0; i < n; i++) lp2p_multiaddr_free(owned[i]);
  char name[LP2P__PAIR_NAME_MAX + 1] = "";
  if (ri) {
    memcpy(name, ri->name, ri->name_len);
    name[ri->name_len] = 0;
  }
  lp2p_devices_paired(p->dev, &ps->peer, name, addrs, n);
  lp2p_pairing_event ev;
  memset(&ev, 0, sizeof ev);
  ev.struct_size = sizeof ev;
  ev.type = LP2P_PAIRING_EV_PAIRED;
  ev.role = ps->role == LP2P__PAIR_INITIATOR ? LP2P_PAIRING_INITIATOR : LP2P_PAIRING_JOINER;
  ev.peer = &ps->peer;
  ev.name = name;
  ev.addrs = addrs;
  ev.n_addrs = n;
  ev.sas = lp2p__pair_session_sas(ps->eng);
  p->cfg.on_event(p, &ev, p->cfg.ud);
}

/* The session is over (engine final, or the stream ended without one). Once per session. */
static void sess_finish(psess *ps) {
  if (ps->finished) return;
  ps->finished = 1;
  lp2p_pairing *p = ps->p;
  lp2p_tstamp now = lp2p_swarm_now(p->sw);
  lp2p__pair_state st = ps->eng ? lp2p__pair_session_state(ps->eng) : LP2P__PAIR_S_FAILED;
  int paired = st == LP2P__PAIR_S_PAIRED;
  lp2p_pairing_fail f = ps->canceled ? LP2P_PAIRING_FAIL_CANCELED
                        : ps->eng && !paired ? (lp2p_pairing_fail)lp2p__pair_session_failure(ps->eng)
                                             : LP2P_PAIRING_FAIL_PROTOCOL;
  int reason = ps->eng ? lp2p__pair_session_abort_reason(ps->eng) : 0;
  int burns = ps->eng && !paired && lp2p__pair_session_burns_code(ps->eng);
  if (ps->role == LP2P__PAIR_INITIATOR) {
    p->isess = NULL;
    if (ps->eng) lp2p__pair_policy_end(&p->own, ps->eng, now);
    if (paired) {
      p->own_active = 0;
      withdraw(p);
      on_paired(ps);
    } else {
      lp2p_devices_note(p->dev, &ps->peer, LP2P_DEVICE_DISCOVERED);
      if (burns || ps->canceled) {
        p->own_active = 0;
        withdraw(p);
        emit_failed(p, LP2P_PAIRING_INITIATOR, &ps->peer, f, reason, 1);
      }
      /* any other failure (no guess possible): the code stays usable, nothing to report,
       * unless it expired meanwhile */
      else if (p->own_active && lp2p__pair_policy_status(&p->own, now) == LP2P__PAIR_CODE_EXPIRED) {
        p->own_active = 0;
        withdraw(p);
        emit_failed(p, LP2P_PAIRING_INITIATOR, NULL, LP2P_PAIRING_FAIL_EXPIRED, 0, 1);
      }
    }
    return;
  }
  /* joiner */
  p->jsess = NULL;
  if (paired) {
    p->joining = 0;
    lp2p_timer_stop(p->jtimer);
    on_paired(ps);
    return;
  }
  lp2p_devices_note(p->dev, &ps->peer, LP2P_DEVICE_DISCOVERED);
  if (burns || ps->canceled || p->join_cancel) {
    if (burns && p->nburned < MAX_BURNED) code_hash(&p->jcode, p->burned[p->nburned++]);
    p->joining = 0;
    lp2p_timer_stop(p->jtimer);
    sodium_memzero(&p->jcode, sizeof p->jcode);
    emit_failed(p, LP2P_PAIRING_JOINER, &ps->peer, f, reason, burns);
    return;
  }
  if (f != LP2P_PAIRING_FAIL_WRONG_NAMEPLATE || !p->last_fail) {
    p->last_fail = f;
    p->last_reason = reason;
  }
  join_next(p); /* another candidate, or the end */
}

static void sess_flush(psess *ps) {
  size_t n = 0;
  const uint8_t *out = lp2p__pair_session_output(ps->eng, &n);
  if (n && ps->s) {
    if (lp2p_stream_send_all(ps->s, out, n, 0) < 0) lp2p_stream_reset(ps->s);
  }
  if (n) lp2p__pair_session_output_done(ps->eng, n);
  lp2p__pair_state st = lp2p__pair_session_state(ps->eng);
  if (st == LP2P__PAIR_S_PAIRED || st == LP2P__PAIR_S_FAILED) {
    if (ps->s) lp2p_stream_close_write(ps->s);
    sess_finish(ps);
  } else if (ps->timer) {
    lp2p_tstamp dl = lp2p__pair_session_deadline(ps->eng), now = lp2p_swarm_now(ps->p->sw);
    lp2p_timer_start(ps->timer, dl > now ? dl - now : 0, 0);
  }
}

static void sess_tick(lp2p_timer *t, void *ud) {
  psess *ps = ud;
  (void)t;
  if (!ps->eng || ps->finished) return;
  lp2p__pair_session_tick(ps->eng, lp2p_swarm_now(ps->p->sw));
  sess_flush(ps);
  if (ps->finished && ps->s) lp2p_stream_reset(ps->s);
}

static lp2p__pair_session *make_engine(psess *ps, lp2p_stream *s, const lp2p__pair_code *code) {
  lp2p_pairing *p = ps->p;
  lp2p__pair_device_info di;
  local_info(p, &di);
  const lp2p_peer_id *me = lp2p_swarm_local_peer(p->sw), *peer = lp2p_stream_peer(s);
  lp2p__pair_params prm;
  memset(&prm, 0, sizeof prm);
  prm.role = ps->role;
  prm.code = code;
  prm.local_id = me->bytes;
  prm.local_id_len = me->len;
  prm.remote_id = peer->bytes;
  prm.remote_id_len = peer->len;
  prm.local_info = &di;
  prm.now = lp2p_swarm_now(p->sw);
  prm.timeout_ms = p->cfg.session_timeout_ms;
  return lp2p__pair_session_new(&prm);
}

static void sess_open(lp2p_stream *s, const char *protocol, void *ud) {
  psess *ps = ud; /* joiner: the stream to a candidate is up */
  (void)protocol;
  ps->eng = make_engine(ps, s, &ps->p->jcode);
  if (!ps->eng) {
    lp2p_stream_reset(s);
    return;
  }
  lp2p_devices_note(ps->p->dev, &ps->peer, LP2P_DEVICE_PAIRING);
  sess_flush(ps);
}

static void sess_data(lp2p_stream *s, const uint8_t *d, size_t n, void *ud) {
  psess *ps = ud;
  (void)s;
  if (!ps->eng || ps->finished) return;
  lp2p__pair_session_input(ps->eng, d, n, lp2p_swarm_now(ps->p->sw));
  sess_flush(ps);
}

static void sess_eof(lp2p_stream *s, void *ud) {
  psess *ps = ud;
  if (!ps->eng || ps->finished) return;
  lp2p__pair_session_closed(ps->eng);
  sess_flush(ps);
  (void)s;
}

static void sess_close(lp2p_stream *s, int err, void *ud) {
  psess *ps = ud;
  (void)s;
  (void)err;
  ps->s = NULL;
  if (!ps->finished) {
    if (ps->eng) lp2p__pair_session_closed(ps->eng);
    sess_finish(ps);
  }
  sess_free(ps);
}

static const lp2p_stream_handler sess_handler = {
    sizeof(lp2p_stream_handler), sess_open, sess_data, sess_eof, NULL, sess_close,
};

/* Initiator: a joiner opened /lp2p/pair/1.0.0. */
static void in_open(lp2p_stream *s, const char *protocol, void *ud) {
  lp2p_pairing *p = ud;
  (void)protocol;
  lp2p_tstamp now = lp2p_swarm_now(p->sw);
  psess *ps = NULL;
  if (!p->own_active || p->isess || lp2p__pair_policy_begin(&p->own, now) < 0 ||
      !(ps = lp2p__pm_calloc(&p->mem, sizeof *ps))) {
    lp2p_stream_reset(s); /* no code, busy, expired or rate limited */
    return;
  }
  ps->p = p;
  ps->role = LP2P__PAIR_INITIATOR;
  ps->s = s;
  ps->peer = *lp2p_stream_peer(s);
  ps->eng = make_engine(ps, s, &p->own.code);
  if (!ps->eng || lp2p_timer_new(&ps->timer, p->sw, sess_tick, ps) < 0) {
    p->own.status = LP2P__PAIR_CODE_ACTIVE; /* nothing ran on it */
    sess_free(ps);
    lp2p_stream_reset(s);
    return;
  }
  p->isess = ps;
  lp2p_stream_set_handler(s, &sess_handler, ps);
  lp2p_devices_note(p->dev, &ps->peer, LP2P_DEVICE_PAIRING);
  sess_flush(ps);
}

static const lp2p_stream_handler in_handler = {
    sizeof(lp2p_stream_handler), in_open, NULL, NULL, NULL, NULL,
};

/* ------------------------------------------------------------------------- */
/* joiner */

static void join_end_nopeer(lp2p_pairing *p) {
  p->joining = 0;
  lp2p_timer_stop(p->jtimer);
  for (size_t i = 0; i < p->nrdv; i++)
    if (p->rdvs[i].vt->cancel) p->rdvs[i].vt->cancel(p->rdvs[i].self, p->sw);
  sodium_memzero(&p->jcode, sizeof p->jcode);
  lp2p_pairing_fail f = p->join_cancel ? LP2P_PAIRING_FAIL_CANCELED
                        : p->last_fail && p->last_fail != LP2P_PAIRING_FAIL_WRONG_NAMEPLATE ? p->last_fail
                                                                                              : LP2P_PAIRING_FAIL_NO_PEER;
  emit_failed(p, LP2P_PAIRING_JOINER, NULL, f, p->last_reason, 0);
}

static void join_next(lp2p_pairing *p) {
  if (!p->joining || p->jsess) return;
  if (p->join_cancel) {
    join_end_nopeer(p);
    return;
  }
  while (p->next < p->ncand) {
    const lp2p_peer_id *peer = &p->cand[p->next++];
    psess *ps = lp2p__pm_calloc(&p->mem, sizeof *ps);
    if (!ps) break;
    ps->p = p;
    ps->role = LP2P__PAIR_JOINER;
    ps->peer = *peer;
    const char *protos[] = {LP2P_PAIRING_PROTOCOL};
    if (lp2p_timer_new(&ps->timer, p->sw, sess_tick, ps) < 0 ||
        lp2p_swarm_open_stream(p->sw, peer, protos, 1, &sess_handler, ps, &ps->s) < 0) {
      sess_free(ps);
      continue;
    }
    p->jsess = ps;
    return;
  }
  /* else wait until the deadline: for the backends, or (none) for discovered peers */
  if (p->join_explicit || (p->nrdv && !p->rdv_pending)) join_end_nopeer(p);
}

static void add_candidate(lp2p_pairing *p, const lp2p_peer_id *peer) {
  if (lp2p_peer_id_equal(peer, lp2p_swarm_local_peer(p->sw))) return;
  for (size_t i = 0; i < p->ncand; i++)
    if (lp2p_peer_id_equal(&p->cand[i], peer)) return;
  if (p->ncand == MAX_CAND) return;
  p->cand[p->ncand++] = *peer;
  lp2p_devices_note(p->dev, peer, LP2P_DEVICE_DISCOVERED);
}

static void rdv_found(void *ctx, const lp2p_peer_id *peer) {
  lp2p_pairing *p = ctx;
  if (!p->joining || p->join_explicit) return;
  if (!peer) { /* a backend is done */
    if (p->rdv_pending) p->rdv_pending--;
  } else {
    add_candidate(p, peer);
  }
  join_next(p);
}

lp2p_swarm *lp2p_pairing_swarm(const lp2p_pairing *p) { return p ? p->sw : NULL; }

static void pb_on_event(void *self, lp2p_swarm *sw, const lp2p_swarm_event *ev) {
  lp2p_pairing *p = self;
  (void)sw;
  if (ev->type != LP2P_SWARM_EV_PEER_DISCOVERED || !ev->peer || !p->joining || p->join_explicit || p->n_finders)
    return;
  add_candidate(p, ev->peer);
  join_next(p);
}

static void join_timer(lp2p_timer *t, void *ud) {
  lp2p_pairing *p = ud;
  (void)t;
  if (!p->joining) return;
  if (p->jsess) { /* running: it has its own deadline; cancel ends it */
    if (p->join_cancel) {
      p->jsess->canceled = 1;
      if (p->jsess->s) lp2p_stream_reset(p->jsess->s);
    }
    return;
  }
  p->next = p->ncand;
  if (!p->join_cancel) p->join_explicit = 1; /* the search is over */
  join_next(p);
}

int lp2p_pairing_join(lp2p_pairing *p, const char *code, const lp2p_peer_id *peer) {
  if (!p || !code) return LP2P_ERR_INVAL;
  if (p->detached) return LP2P_ERR_STATE;
  if (p->joining) return LP2P_ERR_STATE;
  lp2p__pair_code c;
  int rv = lp2p__pair_code_parse(&c, code);
  if (rv < 0) return rv;
  uint8_t h[32];
  code_hash(&c, h);
  for (unsigned i = 0; i < p->nburned; i++)
    if (!sodium_memcmp(h, p->burned[i], 32)) {
      sodium_memzero(&c, sizeof c);
      return LP2P_ERR_STATE;
    }
  p->jcode = c;
  sodium_memzero(&c, sizeof c);
  p->joining = 1;
  p->join_cancel = 0;
  p->join_kicked = 0;
  p->ncand = p->next = 0;
  p->last_fail = 0;
  p->last_reason = 0;
  p->join_explicit = peer != NULL;
  if (peer) {
    add_candidate(p, peer);
  } else {
    lp2p_peer_id conn[MAX_CAND];
    size_t n = lp2p_swarm_connected_peers(p->sw, conn, MAX_CAND);
    for (size_t i = 0; i < n && i < MAX_CAND; i++) add_candidate(p, &conn[i]);
    /* without a backend that finds: the peers a discovery source reported and that are still valid */
    lp2p_peerstore *pst = p->n_finders ? NULL : lp2p_swarm_peerstore(p->sw);
    size_t np = pst ? lp2p_peerstore_peers(pst, NULL, 0) : 0;
    lp2p_peer_id *ids = np ? lp2p__pm_calloc(&p->mem, np * sizeof *ids) : NULL;
    np = ids ? lp2p_peerstore_peers(pst, ids, np) : 0;
    for (size_t i = 0; i < np; i++) {
      lp2p_peer_addr pa[LP2P__PAIR_ADDRS_MAX];
      size_t na = lp2p_peerstore_addrs(pst, &ids[i], LP2P_MA_SCOPE_ANY, pa, LP2P__PAIR_ADDRS_MAX);
      for (size_t k = 0; k < na && k < LP2P__PAIR_ADDRS_MAX; k++)
        if (pa[k].source >= LP2P_ADDR_SRC_MDNS) {
          add_candidate(p, &ids[i]);
          break;
        }
    }
    lp2p__pm_free(&p->mem, ids);
    uint8_t tag[32], key[32];
    lp2p__pair_mdns_tag(p->jcode.nameplate, tag);
    lp2p__pair_dht_key(p->jcode.nameplate, lp2p__pair_epoch((uint64_t)time(NULL)), key);
    p->rdv_pending = 0;
    for (size_t i = 0; i < p->nrdv; i++)
      if (p->rdvs[i].vt->find &&
          p->rdvs[i].vt->find(p->rdvs[i].self, p->sw, p->jcode.nameplate, tag, key, rdv_found, p) == 0)
        p->rdv_pending++;
  }
  /* the search deadline; candidates are tried from the loop, never from inside this call */
  lp2p_timer_start(p->jtimer, 0, 0);
  return 0;
}

/* the first tick after join: start trying; later ones: the deadline */
static void join_kick(lp2p_timer *t, void *ud) {
  lp2p_pairing *p = ud;
  if (!p->joining) return;
  if (!p->join_kicked && !p->join_cancel) {
    p->join_kicked = 1;
    lp2p_timer_start(t, p->cfg.session_timeout_ms, 0);
    join_next(p);
    return;
  }
  join_timer(t, ud);
}

/* ------------------------------------------------------------------------- */
/* initiator */

static void code_expiry(lp2p_timer *t, void *ud) {
  lp2p_pairing *p = ud;
  (void)t;
  if (!p->own_active || p->isess) return;
  if (lp2p__pair_policy_status(&p->own, lp2p_swarm_now(p->sw)) != LP2P__PAIR_CODE_EXPIRED) return;
  p->own_active = 0;
  withdraw(p);
  emit_failed(p, LP2P_PAIRING_INITIATOR, NULL, LP2P_PAIRING_FAIL_EXPIRED, 0, 1);
}

int lp2p_pairing_start(lp2p_pairing *p, char *code, size_t cap) {
  if (!p || !code) return LP2P_ERR_INVAL;
  if (p->detached) return LP2P_ERR_STATE;
  if (p->isess) return LP2P_ERR_STATE;
  lp2p__pair_code c;
  int rv = lp2p__pair_code_generate(&c, p->cfg.nameplate_digits, NULL, NULL);
  if (rv < 0) return rv;
  char text[LP2P__PAIR_CODE_MAX];
  int n = lp2p__pair_code_format(&c, text, sizeof text);
  if (n < 0 || (size_t)n >= cap) return LP2P_ERR_BUFSIZE;
  rv = lp2p__pair_policy_issue(&p->own, &c, lp2p_swarm_now(p->sw));
  sodium_memzero(&c, sizeof c);
  if (rv < 0) return rv;
  memcpy(code, text, (size_t)n + 1);
  sodium_memzero(text, sizeof text);
  p->own_active = 1;
  lp2p_timer_start(p->expiry, p->cfg.code_lifetime_ms, 0);
  uint8_t tag[32], key[32];
  lp2p__pair_mdns_tag(p->own.code.nameplate, tag);
  lp2p__pair_dht_key(p->own.code.nameplate, lp2p__pair_epoch((uint64_t)time(NULL)), key);
  for (size_t i = 0; i < p->nrdv; i++)
    if (p->rdvs[i].vt->advertise) p->rdvs[i].vt->advertise(p->rdvs[i].self, p->sw, p->own.code.nameplate, tag, key);
  return 0;
}

void lp2p_pairing_cancel(lp2p_pairing *p) {
  if (!p) return;
  if (p->own_active) {
    p->own_active = 0;
    withdraw(p);
    lp2p__pair_policy_init(&p->own, p->cfg.code_lifetime_ms, p->cfg.max_failures, p->cfg.failure_window_ms);
  }
  if (p->isess) {
    p->isess->canceled = 1;
    if (p->isess->s) lp2p_stream_reset(p->isess->s);
  }
  if (p->joining) {
    p->join_cancel = 1;
    lp2p_timer_start(p->jtimer, 0, 0); /* reported from the loop */
  }
}

int lp2p_pairing_add_rendezvous(lp2p_pairing *p, const lp2p_pair_rendezvous *vt, void *self) {
  if (!p || !vt) return LP2P_ERR_INVAL;
  if (p->nrdv == MAX_RDV) return LP2P_ERR_LIMIT;
  if (vt->find) p->n_finders++;
  p->rdvs[p->nrdv].vt = vt;
  p->rdvs[p->nrdv++].self = self;
  return 0;
}

/* ------------------------------------------------------------------------- */
/* behaviour */

static int pb_attach(void *self, lp2p_swarm *sw) {
  lp2p_pairing *p = self;
  p->sw = sw;
  int rv = lp2p_timer_new(&p->expiry, sw, code_expiry, p);
  if (rv == 0) rv = lp2p_timer_new(&p->jtimer, sw, join_kick, p);
  if (rv == 0) rv = lp2p_swarm_set_protocol(sw, LP2P_PAIRING_PROTOCOL, &in_handler, p);
  return rv;
}

static void pb_detach(void *self, lp2p_swarm *sw) {
  lp2p_pairing *p = self;
  (void)sw;
  p->detached = 1;
  p->own_active = 0;
  lp2p_timer_free(p->expiry);
  lp2p_timer_free(p->jtimer);
  p->expiry = p->jtimer = NULL;
  for (size_t i = 0; i < p->nrdv; i++) {
    if (p->rdvs[i].vt->withdraw) p->rdvs[i].vt->withdraw(p->rdvs[i].self, sw);
    if (p->rdvs[i].vt->cancel) p->rdvs[i].vt->cancel(p->rdvs[i].self, sw);
  }
  if (p->joining) p->join_cancel = 1;
  if (p->isess) p->isess->canceled = 1;
  if (p->jsess) p->jsess->canceled = 1;
  if (p->joining && !p->jsess) {
    p->joining = 0;
    emit_failed(p, LP2P_PAIRING_JOINER, NULL, LP2P_PAIRING_FAIL_CANCELED, 0, 0);
  }
}

static void pb_destroy(void *self) {
  lp2p_pairing *p = self;
  for (size_t i = 0; i < p->nrdv; i++)
    if (p->rdvs[i].vt->destroy) p->rdvs[i].vt->destroy(p->rdvs[i].self);
  sodium_memzero(&p->own, sizeof p->own);
  sodium_memzero(&p->jcode, sizeof p->jcode);
  lp2p_mem m = p->mem;
  lp2p__pm_free(&m, p);
}

static const lp2p_behaviour_vtable pb_vtable = {
    .struct_size = sizeof(lp2p_behaviour_vtable),
    .name = LP2P_PAIRING_BEHAVIOUR,
    .attach = pb_attach,
    .on_event = pb_on_event,
    .detach = pb_detach,
    .destroy = pb_destroy,
};

int lp2p_pairing_add(lp2p_swarm *sw, const lp2p_pairing_config *cfg, lp2p_pairing **out) {
  if (out) *out = NULL;
  if (!sw || !cfg || !cfg->on_event) return LP2P_ERR_INVAL;
  lp2p_devices *dev = lp2p_swarm_behaviour(sw, LP2P_DEVICES_BEHAVIOUR);
  if (!dev) return LP2P_ERR_STATE;
  if (lp2p_swarm_behaviour(sw, LP2P_PAIRING_BEHAVIOUR)) return LP2P_ERR_EXISTS;
  lp2p_pairing_config c;
  lp2p_pairing_config_default(&c);
  size_t sz = cfg->struct_size && cfg->struct_size < sizeof c ? cfg->struct_size : sizeof c;
  memcpy(&c, cfg, sz);
  c.struct_size = sizeof c;
  if (!c.device_name) c.device_name = "lp2p device";
  if (strlen(c.device_name) > LP2P__PAIR_NAME_MAX || c.nameplate_digits < LP2P__PAIR_NP_MIN ||
      c.nameplate_digits > LP2P__PAIR_NP_MAX || !c.session_timeout_ms)
    return LP2P_ERR_INVAL;
  const lp2p_mem *m = lp2p_swarm_mem(sw);
  lp2p_pairing *p = lp2p__pm_calloc(m, sizeof *p);
  if (!p) return LP2P_ERR_NOMEM;
  p->mem = *m;
  p->cfg = c;
  snprintf(p->name, sizeof p->name, "%s", c.device_name);
  p->cfg.device_name = p->name;
  p->dev = dev;
  lp2p__pair_policy_init(&p->own, c.code_lifetime_ms, c.max_failures, c.failure_window_ms);
  int rv = lp2p_swarm_add_behaviour(sw, &pb_vtable, p);
  if (rv < 0) return rv;
  if (out) *out = p;
  return 0;
}
