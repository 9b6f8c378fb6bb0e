/* transport/memory.c - the in-process transport: /memory/<u64>, for tests and harnesses.
 *
 * Choice (see transport_int.h): real byte streams without ports or network. A listener on
 * /memory/N is a Unix-domain stream socket at <dir>/N, where <dir> is a private directory made once
 * per process (mkdtemp under $TMPDIR or /tmp, removed at exit); dial connects a uv_pipe_t to it.
 * So only swarms of the same process reach each other, every byte crosses a real socket (libuv
 * reads, writes and back-pressure behave as with TCP), and nothing is visible on the network.
 * /memory/0 picks a free number. A socket left behind by a closed listener is replaced when the
 * number is used again (nobody accepts on it any more).
 *
 * Addresses: a listener's local address is /memory/N; the dialing side has no name (/memory/0). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/mem.h"
#include "transport/transport_int.h"

static uv_once_t g_once = UV_ONCE_INIT;
static char g_dir[80]; /* "" if it could not be made */
static uint64_t g_next = 1;

static void remove_dir(void) {
  DIR *d = opendir(g_dir);
  if (!d) return;
  struct dirent *e;
  char p[sizeof g_dir + 300];
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%.255s", g_dir, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(g_dir);
}

static void make_dir(void) {
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp || strlen(tmp) > 40) tmp = "/tmp";
  snprintf(g_dir, sizeof g_dir, "%s/lp2p-memory-XXXXXX", tmp);
  if (!mkdtemp(g_dir)) {
    g_dir[0] = '\0';
    return;
  }
  atexit(remove_dir);
}

/* The number of a /memory/<n> address (exactly one component). */
static int ma_number(const lp2p_multiaddr *ma, uint64_t *n) {
  uint32_t code;
  const uint8_t *v;
  size_t len;
  if (lp2p_multiaddr_count(ma) != 1 || lp2p_multiaddr_component(ma, 0, &code, &v, &len) < 0 ||
      code != LP2P_MA_MEMORY || len != 8)
    return LP2P_ERR_UNSUPPORTED;
  uint64_t x = 0;
  for (int i = 0; i < 8; i++) x = x << 8 | v[i];
  *n = x;
  return 0;
}

static int number_ma(uint64_t n, lp2p_multiaddr **out) {
  char text[40];
  snprintf(text, sizeof text, "/memory/%llu", (unsigned long long)n);
  return lp2p_multiaddr_parse(out, text, NULL, 0);
}

static int path_of(uint64_t n, char *buf, size_t cap) {
  uv_once(&g_once, make_dir);
  if (!g_dir[0]) return LP2P_ERR_IO;
  snprintf(buf, cap, "%s/%llu", g_dir, (unsigned long long)n);
  return 0;
}

/* The number in a socket path ("" = unnamed: 0). */
static uint64_t path_number(const char *p, size_t len) {
  const char *slash = NULL;
  for (size_t i = 0; i < len; i++)
    if (p[i] == '/') slash = p + i;
  if (!slash) return 0;
  uint64_t x = 0;
  for (const char *q = slash + 1; q < p + len && *q >= '0' && *q <= '9'; q++) x = x * 10 + (uint64_t)(*q - '0');
  return x;
}

/* 1 if a socket at path still has a listener. */
static int path_live(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 1;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) return 1;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  int live = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 || errno != ECONNREFUSED;
  close(fd);
  return live;
}

static int mem_handles(const lp2p_multiaddr *ma, int for_listen) {
  uint64_t n;
  (void)for_listen;
  return ma_number(ma, &n) == 0;
}

static int new_pipe(uv_loop_t *loop, const lp2p_mem *mem, uv_pipe_t **out) {
  uv_pipe_t *p = lp2p__malloc(mem, sizeof *p);
  if (!p) return LP2P_ERR_NOMEM;
  int rv = uv_pipe_init(loop, p, 0);
  if (rv) {
    lp2p__free(mem, p);
    return lp2p__uv_err(rv);
  }
  *out = p;
  return 0;
}

static int mem_dial(uv_loop_t *loop, const lp2p_mem *mem, const lp2p_multiaddr *ma, uv_stream_t **io,
                    uv_connect_t *req, uv_connect_cb cb) {
  uint64_t n;
  char path[sizeof g_dir + 32];
  int rv = ma_number(ma, &n);
  if (!rv && n == 0) rv = LP2P_ERR_UNREACHABLE;
  if (!rv) rv = path_of(n, path, sizeof path);
  if (rv < 0) return rv;
  uv_pipe_t *p = NULL;
  if ((rv = new_pipe(loop, mem, &p)) < 0) return rv;
  *io = (uv_stream_t *)p; /* owned by the caller from here on */
  uv_pipe_connect(req, p, path, cb); /* errors (no listener: ENOENT/ECONNREFUSED) arrive in cb */
  return 0;
}

static int mem_listen(uv_loop_t *loop, const lp2p_mem *mem, const lp2p_multiaddr *ma, int backlog,
                      uv_stream_t **srv, uv_connection_cb cb, lp2p_multiaddr **bound) {
  uint64_t n;
  char path[sizeof g_dir + 32];
  int rv = ma_number(ma, &n);
  if (rv < 0) return rv;
  uv_pipe_t *p = NULL;
  if ((rv = new_pipe(loop, mem, &p)) < 0) return rv;
  *srv = (uv_stream_t *)p;
  int pick = n == 0;
  for (int tries = 0; tries < 1000; tries++) {
    if (pick) n = __atomic_fetch_add(&g_next, 1, __ATOMIC_RELAXED);
    if ((rv = path_of(n, path, sizeof path)) < 0) return rv;
    rv = uv_pipe_bind(p, path);
    if (rv == UV_EADDRINUSE && !path_live(path)) { /* left behind by a closed listener */
      unlink(path);
      rv = uv_pipe_bind(p, path);
    }
    if (rv != UV_EADDRINUSE || !pick) break;
  }
  if (!rv) rv = uv_listen((uv_stream_t *)p, backlog, cb);
  if (rv) return lp2p__uv_err(rv);
  return number_ma(n, bound);
}

static int mem_accept(uv_stream_t *srv, const lp2p_mem *mem, uv_stream_t **io) {
  uv_pipe_t *p = NULL;
  int rv = new_pipe(srv->loop, mem, &p);
  if (rv < 0) return rv;
  *io = (uv_stream_t *)p;
  rv = uv_accept(srv, (uv_stream_t *)p);
  return rv ? lp2p__uv_err(rv) : 0;
}

static int mem_addrs(uv_stream_t *io, lp2p_multiaddr **local, lp2p_multiaddr **remote) {
  char buf[sizeof g_dir + 32];
  size_t len;
  int rv;
  if (local) {
    *local = NULL;
    len = sizeof buf;
    rv = uv_pipe_getsockname((uv_pipe_t *)io, buf, &len);
    if ((rv = number_ma(rv ? 0 : path_number(buf, len), local)) < 0) return rv;
  }
  if (remote) {
    *remote = NULL;
    len = sizeof buf;
    rv = uv_pipe_getpeername((uv_pipe_t *)io, buf, &len);
    if ((rv = number_ma(rv ? 0 : path_number(buf, len), remote)) < 0) return rv;
  }
  return 0;
}

const lp2p__transport lp2p__memory_transport = {
    .name = "memory",
    .handles = mem_handles,
    .dial = mem_dial,
    .listen = mem_listen,
    .accept = mem_accept,
    .addrs = mem_addrs,
};
