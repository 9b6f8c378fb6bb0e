/* node/peerfile.c - see peerfile.h. */
#include "peerfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lp2p/atomicfile.h"
#include "lp2p/multiaddr.h"
#include "lp2p/peerid.h"

#define PF_MAX_LINE 65536
#define PF_MAX_ADDRS 64

typedef struct pf_entry {
  char *id;   /* peer id text */
  char *line; /* the whole line, '\n' included */
} pf_entry;

struct peerfile {
  lp2p_swarm *sw;
  char path[4096];
  pf_entry *v;
  size_t n, cap;
};

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static pf_entry *find(peerfile *pf, const char *id) {
  for (size_t i = 0; i < pf->n; i++)
    if (!strcmp(pf->v[i].id, id)) return &pf->v[i];
  return NULL;
}

static void drop(peerfile *pf, pf_entry *e) {
  free(e->id);
  free(e->line);
  *e = pf->v[--pf->n];
}

/* entry for id takes line (owned) */
static int put(peerfile *pf, const char *id, char *line) {
  pf_entry *e = find(pf, id);
  if (e) {
    free(e->line);
    e->line = line;
    return 0;
  }
  if (pf->n == pf->cap) {
    size_t cap = pf->cap ? pf->cap * 2 : 16;
    pf_entry *v = realloc(pf->v, cap * sizeof *v);
    if (!v) return -1;
    pf->v = v;
    pf->cap = cap;
  }
  char *idc = strdup(id);
  if (!idc) return -1;
  pf->v[pf->n++] = (pf_entry){idc, line};
  return 0;
}

/* Replaces the file with every entry (lp2p/atomicfile.h: temporary file, fsync, rename). */
static void write_all(peerfile *pf) {
  lp2p_atomic_file *af = NULL;
  FILE *f = lp2p_atomic_file_begin(&af, pf->path) == 0 ? lp2p_atomic_file_stream(af) : NULL;
  if (!f) {
    lp2p_atomic_file_abort(af);
    fprintf(stderr, "lp2p-node: cannot write %s: %s\n", pf->path, strerror(errno));
    return;
  }
  int ok = fputs("# lp2p-node known peers: <peer-id> (<source>:<expires-unix-ms|0>:<multiaddr>)...\n", f) >= 0;
  for (size_t i = 0; i < pf->n && ok; i++) ok = fputs(pf->v[i].line, f) >= 0;
  if (!ok) {
    lp2p_atomic_file_abort(af);
    fprintf(stderr, "lp2p-node: cannot write %s: %s\n", pf->path, strerror(errno));
  } else if (lp2p_atomic_file_commit(af) < 0) {
    fprintf(stderr, "lp2p-node: cannot write %s: %s\n", pf->path, strerror(errno));
  }
}

static char *build_line(peerfile *pf, const char *id, const lp2p_peer_addr *addrs, size_t n_addrs);

static int pf_load(void *ud, lp2p_peerstore *ps) {
  peerfile *pf = ud;
  FILE *f = fopen(pf->path, "r");
  if (!f) return 0; /* nothing saved yet */
  char *buf = malloc(PF_MAX_LINE);
  if (!buf) {
    fclose(f);
    return LP2P_ERR_NOMEM;
  }
  uint64_t now = wall_ms();
  unsigned bad = 0, expired = 0;
  while (fgets(buf, PF_MAX_LINE, f)) {
    size_t len = strlen(buf);
    if (!len || buf[0] == '#' || buf[0] == '\n') continue;
    if (buf[len - 1] != '\n') { /* over-long line: skip the rest of it */
      int c;
      while ((c = fgetc(f)) != EOF && c != '\n') {
      }
      bad++;
      continue;
    }
    char *save = NULL, *tok = strtok_r(buf, " \n", &save);
    lp2p_peer_id peer;
    if (!tok || lp2p_peer_id_parse(tok, &peer) < 0) {
      bad++;
      continue;
    }
    size_t kept = 0;
    while ((tok = strtok_r(NULL, " \n", &save))) {
      unsigned src = 0;
      unsigned long long exp = 0;
      int off = 0;
      lp2p_multiaddr *ma = NULL;
      if (sscanf(tok, "%u:%llu:%n", &src, &exp, &off) != 2 || off <= 0 || src < LP2P_ADDR_SRC_USER ||
          src > LP2P_ADDR_SRC_OTHER || lp2p_multiaddr_parse(&ma, tok + off, NULL, 0) < 0) {
        bad++;
        continue;
      }
      if (exp == 0 || exp > now) {
        const lp2p_multiaddr *one[] = {ma};
        if (lp2p_peerstore_add_addrs(ps, &peer, one, 1, (lp2p_addr_source)src, exp ? exp - now : 0) > 0) kept++;
      } else {
        expired++;
      }
      lp2p_multiaddr_free(ma);
    }
    char idt[LP2P_PEER_ID_MAX_TEXT];
    lp2p_peer_addr pa[PF_MAX_ADDRS];
    if (kept && lp2p_peer_id_to_string(&peer, idt, sizeof idt) >= 0) {
      /* the entry as the store now has it (a peer on several lines: merged) */
      size_t na = lp2p_peerstore_addrs(ps, &peer, LP2P_MA_SCOPE_ANY, pa, PF_MAX_ADDRS);
      char *line = build_line(pf, idt, pa, na < PF_MAX_ADDRS ? na : PF_MAX_ADDRS);
      if (line && put(pf, idt, line) < 0) free(line);
    }
  }
  if (bad) fprintf(stderr, "lp2p-node: %s: %u unreadable entries skipped\n", pf->path, bad);
  free(buf);
  fclose(f);
  if (bad || expired) write_all(pf); /* the file keeps only what was loaded */
  return 0;
}

/* "<id> <source>:<expires-unix-ms|0>:<multiaddr>...\n" (malloc'ed), or NULL when no address fits. */
static char *build_line(peerfile *pf, const char *id, const lp2p_peer_addr *addrs, size_t n_addrs) {
  size_t cap = strlen(id) + 2, len = 0;
  char *line = malloc(cap);
  if (!line) return NULL;
  len = (size_t)snprintf(line, cap, "%s", id);
  uint64_t now_wall = wall_ms();
  lp2p_tstamp now = lp2p_swarm_now(pf->sw);
  size_t n = n_addrs < PF_MAX_ADDRS ? n_addrs : PF_MAX_ADDRS, kept = 0;
  for (size_t i = 0; i < n; i++) {
    char ma[LP2P_MULTIADDR_MAX_TEXT];
    if (lp2p_multiaddr_to_string(addrs[i].addr, ma, sizeof ma) < 0) continue;
    unsigned long long exp =
        addrs[i].expires == LP2P_TSTAMP_NEVER
            ? 0
            : (unsigned long long)(now_wall + (addrs[i].expires > now ? addrs[i].expires - now : 0));
    char item[LP2P_MULTIADDR_MAX_TEXT + 48];
    int k = snprintf(item, sizeof item, " %u:%llu:%s", (unsigned)addrs[i].source, exp, ma);
    if (k < 0 || (size_t)k >= sizeof item) continue;
    char *l = realloc(line, len + (size_t)k + 2);
    if (!l) break;
    line = l;
    memcpy(line + len, item, (size_t)k + 1);
    len += (size_t)k;
    kept++;
  }
  if (!kept) {
    free(line);
    return NULL;
  }
  line[len++] = '\n';
  line[len] = 0;
  return line;
}

static void pf_save(void *ud, const lp2p_peerstore_snapshot *snap) {
  peerfile *pf = ud;
  char id[LP2P_PEER_ID_MAX_TEXT];
  if (lp2p_peer_id_to_string(snap->peer, id, sizeof id) < 0) return;
  char *line = build_line(pf, id, snap->addrs, snap->n_addrs);
  pf_entry *e = find(pf, id);
  if (!line) { /* nothing worth keeping: forget the peer */
    if (e) {
      drop(pf, e);
      write_all(pf);
    }
    return;
  }
  if (e && !strcmp(e->line, line)) { /* unchanged */
    free(line);
    return;
  }
  if (put(pf, id, line) < 0) {
    free(line);
    return;
  }
  write_all(pf);
}

static void pf_remove(void *ud, const lp2p_peer_id *peer) {
  peerfile *pf = ud;
  char id[LP2P_PEER_ID_MAX_TEXT];
  if (lp2p_peer_id_to_string(peer, id, sizeof id) < 0) return;
  pf_entry *e = find(pf, id);
  if (!e) return;
  drop(pf, e);
  write_all(pf);
}

int peerfile_open(peerfile **out, lp2p_swarm *sw, const char *dir) {
  *out = NULL;
  peerfile *pf = calloc(1, sizeof *pf);
  if (!pf) return LP2P_ERR_NOMEM;
  pf->sw = sw;
  if ((size_t)snprintf(pf->path, sizeof pf->path, "%s/peers", dir) >= sizeof pf->path) {
    free(pf);
    return LP2P_ERR_INVAL;
  }
  lp2p_peerstore_persist p = {sizeof p, pf_load, pf_save, pf_remove, pf};
  int rv = lp2p_peerstore_set_persist(lp2p_swarm_peerstore(sw), &p);
  if (rv < 0) {
    peerfile_close(pf);
    return rv;
  }
  *out = pf;
  return 0;
}

void peerfile_close(peerfile *pf) {
  if (!pf) return;
  for (size_t i = 0; i < pf->n; i++) {
    free(pf->v[i].id);
    free(pf->v[i].line);
  }
  free(pf->v);
  free(pf);
}
