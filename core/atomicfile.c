#define _GNU_SOURCE /* mkostemp */
/* core/atomicfile.c - atomic replacement of small state files (lp2p/atomicfile.h): a temporary file
 * in the same directory, fsync, rename over the target, fsync of the directory. The one copy of
 * this sequence: key files, the node's peer file, Kademlia records and providers, paired devices. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp2p/atomicfile.h"

struct lp2p_atomic_file {
  char *path;
  char *tmp;
  int fd;
  FILE *f; /* fdopen'ed on first lp2p_atomic_file_stream (owns fd then) */
};

static void release(lp2p_atomic_file *af) {
  free(af->path);
  free(af->tmp);
  free(af);
}

int lp2p_atomic_file_begin(lp2p_atomic_file **out, const char *path) {
  if (!out) return LP2P_ERR_INVAL;
  *out = NULL;
  if (!path || !*path) return LP2P_ERR_INVAL;
  size_t n = strlen(path);
  lp2p_atomic_file *af = calloc(1, sizeof *af);
  if (!af) return LP2P_ERR_NOMEM;
  af->path = malloc(n + 1);
  af->tmp = malloc(n + sizeof ".tmp.XXXXXX");
  if (!af->path || !af->tmp) {
    release(af);
    return LP2P_ERR_NOMEM;
  }
  memcpy(af->path, path, n + 1);
  memcpy(af->tmp, path, n);
  memcpy(af->tmp + n, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
  af->fd = mkostemp(af->tmp, O_CLOEXEC); /* mode 0600 */
  if (af->fd < 0) {
    int e = errno;
    release(af);
    errno = e;
    return LP2P_ERR_IO;
  }
  *out = af;
  return 0;
}

FILE *lp2p_atomic_file_stream(lp2p_atomic_file *af) {
  if (!af) return NULL;
  if (!af->f) af->f = fdopen(af->fd, "w");
  return af->f;
}

void lp2p_atomic_file_abort(lp2p_atomic_file *af) {
  if (!af) return;
  if (af->f)
    fclose(af->f);
  else
    close(af->fd);
  unlink(af->tmp);
  release(af);
}

/* fsync of path's directory, so that a rename into it survives a crash */
static void sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = NULL;
  if (!slash) {
    dir = strdup(".");
  } else if (slash == path) {
    dir = strdup("/");
  } else {
    dir = malloc((size_t)(slash - path) + 1);
    if (dir) memcpy(dir, path, (size_t)(slash - path)), dir[slash - path] = 0;
  }
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

int lp2p_atomic_file_commit(lp2p_atomic_file *af) {
  if (!af) return LP2P_ERR_INVAL;
  int bad = 0;
  if (af->f) {
    bad |= fflush(af->f) != 0 || ferror(af->f);
    bad |= fsync(af->fd) != 0;
    bad |= fclose(af->f) != 0;
  } else {
    bad |= fsync(af->fd) != 0;
    bad |= close(af->fd) != 0;
  }
  if (!bad) bad = rename(af->tmp, af->path) != 0;
  int e = errno;
  if (bad)
    unlink(af->tmp);
  else
    sync_dir(af->path);
  release(af);
  errno = e;
  return bad ? LP2P_ERR_IO : 0;
}

int lp2p_atomic_file_write(const char *path, const void *data, size_t n) {
  if (!data && n) return LP2P_ERR_INVAL;
  lp2p_atomic_file *af;
  int rv = lp2p_atomic_file_begin(&af, path);
  if (rv < 0) return rv;
  const unsigned char *p = data;
  while (n) {
    ssize_t w = write(af->fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = errno;
      lp2p_atomic_file_abort(af);
      errno = e;
      return LP2P_ERR_IO;
    }
    p += w;
    n -= (size_t)w;
  }
  return lp2p_atomic_file_commit(af);
}
