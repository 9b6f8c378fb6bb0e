/* protocols/pairing/devices.c - the device registry (lp2p/devices.h): paired
 * devices persisted atomically in <data_dir>/devices, states derived from
 * swarm events, the paired-only connection gate, and unpair messages over
 * lp2p/reqresp.h. Public API only. */
#include "lp2p/devices.h"

#include "lp2p/atomicfile.h"
#include "lp2p/reqresp.h"
#include "protocols/proto_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAIRED_ONLY_MAX 16

struct lp2p_devices {
  lp2p_mem mem;
  lp2p_swarm *sw;
  lp2p_devices_config cfg;
  char *dir;
  lp2p_device *devs;
  size_t n, cap;
  char *paired_only[PAIRED_ONLY_MAX];
  size_t n_paired_only;
  lp2p_reqresp *rr;
};

static const char *const k_state_names[] = {"?",         "discovered",   "pairing", "paired",
                                            "connected", "disconnected", "unpaired"};

const char *lp2p_device_state_name(lp2p_device_state s) {
  return (unsigned)s < sizeof k_state_names / sizeof *k_state_names ? k_state_names[s] : "?";
}

static int is_paired_state(lp2p_device_state s) {
  return s == LP2P_DEVICE_PAIRED || s == LP2P_DEVICE_CONNECTED || s == LP2P_DEVICE_DISCONNECTED;
}

static lp2p_device *find(const lp2p_devices *d, const lp2p_peer_id *peer) {
  for (size_t i = 0; i < d->n; i++)
    if (lp2p_peer_id_equal(&d->devs[i].peer, peer)) return &d->devs[i];
  return NULL;
}

static lp2p_device *add_dev(lp2p_devices *d, const lp2p_peer_id *peer) {
  if (d->n == d->cap) {
    size_t nc = d->cap ? d->cap * 2 : 8;
    lp2p_device *nd = lp2p__pm_realloc(&d->mem, d->devs, nc * sizeof *nd);
    if (!nd) return NULL;
    d->devs = nd;
    d->cap = nc;
  }
  lp2p_device *v = &d->devs[d->n++];
  memset(v, 0, sizeof *v);
  v->peer = *peer;
  return v;
}

static void remove_dev(lp2p_devices *d, lp2p_device *v) {
  size_t i = (size_t)(v - d->devs);
  memmove(&d->devs[i], &d->devs[i + 1], (d->n - i - 1) * sizeof *v);
  d->n--;
}

/* Moves v to state s and reports it (a copy: the callback may change the registry). */
static void set_state(lp2p_devices *d, lp2p_device *v, lp2p_device_state s) {
  lp2p_device_state prev = v->state;
  if (prev == s) return;
  v->state = s;
  if (!d->cfg.on_event) return;
  lp2p_device copy = *v;
  lp2p_device_event ev = {sizeof ev, &copy, prev};
  d->cfg.on_event(d, &ev, d->cfg.ud);
}

/* ---- persistence ---- */

static void hex(const uint8_t *p, size_t n, char *out) {
  static const char h[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = h[p[i] >> 4];
    out[2 * i + 1] = h[p[i] & 15];
  }
  out[2 * n] = 0;
}

static int unhex(const char *s, size_t n, char *out, size_t cap) {
  if (n % 2 || n / 2 >= cap) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (char)v;
  }
  out[n / 2] = 0;
  return 0;
}

static int save(lp2p_devices *d) {
  if (!d->dir) return 0;
  char path[4096];
  snprintf(path, sizeof path, "%s/devices", d->dir);
  lp2p_atomic_file *af = NULL;
  int rv = lp2p_atomic_file_begin(&af, path);
  if (rv < 0) return rv;
  FILE *f = lp2p_atomic_file_stream(af);
  if (!f) {
    lp2p_atomic_file_abort(af);
    return LP2P_ERR_IO;
  }
  fprintf(f, "# lp2p paired devices: peer-id paired-at name(hex) addrs(comma-separated or -)\n");
  for (size_t i = 0; i < d->n; i++) {
    lp2p_device *v = &d->devs[i];
    if (!is_paired_state(v->state)) continue;
    char id[LP2P_PEER_ID_MAX_TEXT], name[2 * LP2P_DEVICE_NAME_MAX + 1];
    lp2p_peer_id_to_string(&v->peer, id, sizeof id);
    hex((const uint8_t *)v->name, strlen(v->name), name);
    fprintf(f, "%s %llu %s ", id, (unsigned long long)v->paired_at, name[0] ? name : "-");
    if (!v->n_addrs) fputs("-", f);
    for (size_t k = 0; k < v->n_addrs; k++) fprintf(f, "%s%s", k ? "," : "", v->addrs[k]);
    fputc('\n', f);
  }
  return lp2p_atomic_file_commit(af);
}

static void load(lp2p_devices *d) {
  char path[4096];
  snprintf(path, sizeof path, "%s/devices", d->dir);
  FILE *f = fopen(path, "r");
  if (!f) return;
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#') continue;
    char id[128], name[256], addrs[3000];
    unsigned long long at;
    if (sscanf(line, "%127s %llu %255s %2999s", id, &at, name, addrs) != 4) continue;
    lp2p_peer_id peer;
    if (lp2p_peer_id_parse(id, &peer) < 0 || find(d, &peer)) continue;
    char nm[LP2P_DEVICE_NAME_MAX + 1] = "";
    if (strcmp(name, "-") && unhex(name, strlen(name), nm, sizeof nm) < 0) continue;
    lp2p_device *v = add_dev(d, &peer);
    if (!v) break;
    snprintf(v->name, sizeof v->name, "%s", nm);
    v->paired_at = at;
    v->state = LP2P_DEVICE_DISCONNECTED;
    if (strcmp(addrs, "-")) {
      for (char *save_p = NULL, *a = strtok_r(addrs, ",", &save_p); a && v->n_addrs < LP2P_DEVICE_ADDRS_MAX;
           a = strtok_r(NULL, ",", &save_p)) {
        if (strlen(a) >= sizeof v->addrs[0]) continue;
        snprintf(v->addrs[v->n_addrs], sizeof v->addrs[0], "%s", a);
        if (lp2p_swarm_add_address(d->sw, &peer, a) == 0) v->n_addrs++;
      }
    }
  }
  fclose(f);
}

/* ---- unpair messages ---- */

static void rr_event(lp2p_reqresp *rr, const lp2p_reqresp_event *ev, void *ud) {
  lp2p_devices *d = ud;
  (void)rr;
  if (ev->type != LP2P_REQRESP_EV_REQUEST) return;
  lp2p_device *v = find(d, ev->peer);
  int was = v && is_paired_state(v->state);
  lp2p_reqresp_respond(ev->channel, (const uint8_t *)(was ? "ok" : "unknown"), was ? 2 : 7);
  if (!was) return;
  lp2p_device copy = *v;
  remove_dev(d, v);
  save(d);
  lp2p_device_state prev = copy.state;
  copy.state = LP2P_DEVICE_UNPAIRED;
  if (d->cfg.on_event) {
    lp2p_device_event e = {sizeof e, &copy, prev};
    d->cfg.on_event(d, &e, d->cfg.ud);
  }
}

/* ---- behaviour ---- */

/* Text of a dialable address without /p2p/<id> into out[128]; 0, or -1 to skip it. */
static int addr_text(const lp2p_multiaddr *ma, char out[128]) {
  if (!ma || !lp2p_multiaddr_is_dialable(ma)) return -1;
  char t[512];
  if (lp2p_multiaddr_to_string(ma, t, sizeof t) < 0) return -1;
  char *p2p = strstr(t, "/p2p/");
  if (p2p) *p2p = 0;
  if (!t[0] || strlen(t) >= 128) return -1;
  memcpy(out, t, strlen(t) + 1);
  return 0;
}

static int has_addr(const lp2p_device *v, const char *a) {
  for (size_t k = 0; k < v->n_addrs; k++)
    if (!strcmp(v->addrs[k], a)) return 1;
  return 0;
}

/* A paired device's last addresses follow what it tells us (identify: its listen addresses) and
 * where we reached it (an outbound connection's address); a change is persisted (atomically). */
static void refresh_addrs(lp2p_devices *d, lp2p_device *v, const lp2p_swarm_event *ev) {
  char fresh[LP2P_DEVICE_ADDRS_MAX][128];
  size_t n = 0;
  if (ev->type == LP2P_SWARM_EV_PEER_IDENTIFIED) {
    for (size_t i = 0; i < ev->n_addrs && n < LP2P_DEVICE_ADDRS_MAX; i++) {
      if (addr_text(ev->addrs[i], fresh[n]) < 0) continue;
      int dup = 0;
      for (size_t k = 0; k < n && !dup; k++) dup = !strcmp(fresh[k], fresh[n]);
      n += !dup;
    }
    if (!n) return; /* nothing dialable reported: keep what we had */
    int same = n == v->n_addrs;
    for (size_t k = 0; k < n && same; k++) same = has_addr(v, fresh[k]);
    if (same) return;
  } else { /* outbound connection: the address that worked goes first */
    if (ev->dir != LP2P_DIR_OUTBOUND || addr_text(ev->addr, fresh[0]) < 0 || has_addr(v, fresh[0])) return;
    n = 1;
    for (size_t k = 0; k < v->n_addrs && n < LP2P_DEVICE_ADDRS_MAX; k++) memcpy(fresh[n++], v->addrs[k], 128);
  }
  memcpy(v->addrs, fresh, n * sizeof fresh[0]);
  v->n_addrs = n;
  save(d);
}

static void dv_on_event(void *self, lp2p_swarm *sw, const lp2p_swarm_event *ev) {
  lp2p_devices *d = self;
  (void)sw;
  if (!ev->peer) return;
  lp2p_device *v = find(d, ev->peer);
  if (!v || !is_paired_state(v->state)) return;
  if (ev->type == LP2P_SWARM_EV_CONN_ESTABLISHED) {
    refresh_addrs(d, v, ev);
    set_state(d, v, LP2P_DEVICE_CONNECTED);
  } else if (ev->type == LP2P_SWARM_EV_PEER_IDENTIFIED) {
    refresh_addrs(d, v, ev);
  } else if (ev->type == LP2P_SWARM_EV_CONN_CLOSED) {
    set_state(d, v, LP2P_DEVICE_DISCONNECTED);
  }
}

static int dv_allow_stream(void *self, lp2p_swarm *sw, const lp2p_peer_id *peer, const char *protocol) {
  lp2p_devices *d = self;
  (void)sw;
  for (size_t i = 0; i < d->n_paired_only; i++)
    if (!strcmp(d->paired_only[i], protocol)) return lp2p_devices_is_paired(d, peer);
  return 1;
}

static void dv_destroy(void *self) {
  lp2p_devices *d = self;
  lp2p_mem m = d->mem;
  for (size_t i = 0; i < d->n_paired_only; i++) lp2p__pm_free(&m, d->paired_only[i]);
  lp2p__pm_free(&m, d->devs);
  lp2p__pm_free(&m, d->dir);
  lp2p__pm_free(&m, d);
}

static int dv_attach(void *self, lp2p_swarm *sw) {
  ((lp2p_devices *)self)->sw = sw;
  return 0;
}

static const lp2p_behaviour_vtable dv_vtable = {
    .struct_size = sizeof(lp2p_behaviour_vtable),
    .name = LP2P_DEVICES_BEHAVIOUR,
    .attach = dv_attach,
    .on_event = dv_on_event,
    .destroy = dv_destroy,
    .allow_stream = dv_allow_stream,
};

int lp2p_devices_add(lp2p_swarm *sw, const lp2p_devices_config *cfg, lp2p_devices **out) {
  if (out) *out = NULL;
  if (!sw) return LP2P_ERR_INVAL;
  if (lp2p_swarm_behaviour(sw, LP2P_DEVICES_BEHAVIOUR)) return LP2P_ERR_EXISTS;
  const lp2p_mem *m = lp2p_swarm_mem(sw);
  lp2p_devices *d = lp2p__pm_calloc(m, sizeof *d);
  if (!d) return LP2P_ERR_NOMEM;
  d->mem = *m;
  d->cfg.struct_size = sizeof d->cfg;
  if (cfg) {
    size_t n = cfg->struct_size && cfg->struct_size < sizeof d->cfg ? cfg->struct_size : sizeof d->cfg;
    memcpy(&d->cfg, cfg, n);
  }
  if (d->cfg.data_dir && d->cfg.data_dir[0]) {
    struct stat st;
    if (stat(d->cfg.data_dir, &st) != 0 && mkdir(d->cfg.data_dir, 0700) != 0) {
      lp2p__pm_free(m, d);
      return LP2P_ERR_IO;
    }
    d->dir = lp2p__pm_strdup(m, d->cfg.data_dir);
    if (!d->dir) {
      lp2p__pm_free(m, d);
      return LP2P_ERR_NOMEM;
    }
  }
  d->cfg.data_dir = d->dir;
  int rv = lp2p_swarm_add_behaviour(sw, &dv_vtable, d); /* destroys d on failure */
  if (rv < 0) return rv;
  if (d->dir) load(d);
  for (size_t i = 0; i < d->n; i++)
    if (lp2p_swarm_is_connected(sw, &d->devs[i].peer)) d->devs[i].state = LP2P_DEVICE_CONNECTED;
  lp2p_reqresp_config rc;
  lp2p_reqresp_config_default(&rc);
  rc.protocols[0] = LP2P_UNPAIR_PROTOCOL;
  rc.n_protocols = 1;
  rc.max_request_size = rc.max_response_size = 64;
  rc.timeout_ms = 5000;
  rc.on_event = rr_event;
  rc.ud = d;
  rv = lp2p_reqresp_add(sw, &rc, &d->rr);
  if (rv < 0) return rv; /* d stays owned by the swarm */
  if (out) *out = d;
  return 0;
}

size_t lp2p_devices_list(const lp2p_devices *d, lp2p_device *out, size_t max) {
  size_t k = 0;
  if (!d) return 0;
  for (size_t i = 0; i < d->n; i++) {
    if (!is_paired_state(d->devs[i].state)) continue;
    if (k < max && out) out[k] = d->devs[i];
    k++;
  }
  return k;
}

int lp2p_devices_get(const lp2p_devices *d, const lp2p_peer_id *peer, lp2p_device *out) {
  lp2p_device *v = d && peer ? find(d, peer) : NULL;
  if (!v) return LP2P_ERR_NOT_FOUND;
  if (out) *out = *v;
  return 0;
}

int lp2p_devices_is_paired(const lp2p_devices *d, const lp2p_peer_id *peer) {
  lp2p_device *v = d && peer ? find(d, peer) : NULL;
  return v && is_paired_state(v->state);
}

int lp2p_devices_set_paired_only(lp2p_devices *d, const char *protocol) {
  if (!d || !protocol || protocol[0] != '/') return LP2P_ERR_INVAL;
  for (size_t i = 0; i < d->n_paired_only; i++)
    if (!strcmp(d->paired_only[i], protocol)) return 0;
  if (d->n_paired_only == PAIRED_ONLY_MAX) return LP2P_ERR_LIMIT;
  char *c = lp2p__pm_strdup(&d->mem, protocol);
  if (!c) return LP2P_ERR_NOMEM;
  d->paired_only[d->n_paired_only++] = c;
  return 0;
}

int lp2p_devices_unpair(lp2p_devices *d, const lp2p_peer_id *peer) {
  lp2p_device *v = d && peer ? find(d, peer) : NULL;
  if (!v || !is_paired_state(v->state)) return LP2P_ERR_NOT_FOUND;
  lp2p_device copy = *v;
  remove_dev(d, v);
  save(d);
  /* tell the peer (best effort: dials it through the peer store if needed) */
  lp2p_reqresp_send(d->rr, peer, NULL, (const uint8_t *)"unpair", 6, NULL);
  lp2p_device_state prev = copy.state;
  copy.state = LP2P_DEVICE_UNPAIRED;
  if (d->cfg.on_event) {
    lp2p_device_event e = {sizeof e, &copy, prev};
    d->cfg.on_event(d, &e, d->cfg.ud);
  }
  return 0;
}

void lp2p_devices_note(lp2p_devices *d, const lp2p_peer_id *peer, lp2p_device_state state) {
  if (!d || !peer || (state != LP2P_DEVICE_DISCOVERED && state != LP2P_DEVICE_PAIRING)) return;
  lp2p_device *v = find(d, peer);
  if (v && is_paired_state(v->state)) return;
  if (!v && !(v = add_dev(d, peer))) return;
  set_state(d, v, state);
}

int lp2p_devices_paired(lp2p_devices *d, const lp2p_peer_id *peer, const char *name, const char *const *addrs,
                        size_t n_addrs) {
  if (!d || !peer) return LP2P_ERR_INVAL;
  lp2p_device *v = find(d, peer);
  if (!v && !(v = add_dev(d, peer))) return LP2P_ERR_NOMEM;
  snprintf(v->name, sizeof v->name, "%s", name ? name : "");
  v->paired_at = (uint64_t)time(NULL);
  v->n_addrs = 0;
  for (size_t i = 0; i < n_addrs && v->n_addrs < LP2P_DEVICE_ADDRS_MAX; i++)
    if (addrs[i] && strlen(addrs[i]) < sizeof v->addrs[0])
      snprintf(v->addrs[v->n_addrs++], sizeof v->addrs[0], "%s", addrs[i]);
  int connected = lp2p_swarm_is_connected(d->sw, peer);
  lp2p_peer_id id = *peer;
  if (is_paired_state(v->state)) { /* re-paired: refresh only */
    set_state(d, v, connected ? LP2P_DEVICE_CONNECTED : LP2P_DEVICE_DISCONNECTED);
  } else {
    set_state(d, v, LP2P_DEVICE_PAIRED);
    v = find(d, &id); /* the callback may have changed the registry */
    if (v && v->state == LP2P_DEVICE_PAIRED)
      set_state(d, v, connected ? LP2P_DEVICE_CONNECTED : LP2P_DEVICE_DISCONNECTED);
  }
  return save(d);
}
