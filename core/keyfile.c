/* core/keyfile.c - identity key files: the raw PrivateKey protobuf bytes (as
 * js-libp2p's privateKeyToProtobuf() and go-libp2p write them). Saved
 * atomically (temp file in the same directory, fsync, rename) with mode 0600. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp2p/atomicfile.h"
#include "lp2p/keys.h"

int lp2p_privkey_load_file(lp2p_privkey **out, const char *path) {
  if (!out || !path || !*path) return LP2P_ERR_INVAL;
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return errno == ENOENT ? LP2P_ERR_NOT_FOUND : LP2P_ERR_IO;
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    close(fd);
    return LP2P_ERR_IO;
  }
  /* One byte more than the largest key: a longer file is not a key. */
  uint8_t buf[LP2P_PRIVKEY_PB_MAX + 1];
  size_t n = 0;
  int rv = 0;
  while (n < sizeof buf) {
    ssize_t r = read(fd, buf + n, sizeof buf - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      rv = LP2P_ERR_IO;
      break;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  if (!rv) {
    if (n == 0 || n > LP2P_PRIVKEY_PB_MAX)
      rv = LP2P_ERR_KEY;
    else if ((rv = lp2p_privkey_from_protobuf(out, buf, n)) && rv != LP2P_ERR_NOMEM)
      rv = LP2P_ERR_KEY;
  }
  sodium_memzero(buf, sizeof buf);
  return rv;
}

/* mkdir -p for the directory part of path, new directories mode 0700. */
static int make_parents(const char *path) {
  char dir[PATH_MAX];
  size_t len = strlen(path);
  if (len >= sizeof dir) return LP2P_ERR_INVAL;
  memcpy(dir, path, len + 1);
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir) return 0;
  *slash = 0;
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(dir, 0700) && errno != EEXIST) return LP2P_ERR_IO;
    *p = '/';
  }
  if (mkdir(dir, 0700) && errno != EEXIST) return LP2P_ERR_IO;
  struct stat st;
  return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : LP2P_ERR_IO;
}

int lp2p_privkey_save_file(const lp2p_privkey *k, const char *path) {
  if (!k || !path || !*path) return LP2P_ERR_INVAL;
  uint8_t buf[LP2P_PRIVKEY_PB_MAX];
  int n = lp2p_privkey_to_protobuf(k, buf, sizeof buf);
  if (n < 0) return n;
  int rv = make_parents(path);
  if (!rv) rv = lp2p_atomic_file_write(path, buf, (size_t)n); /* mode 0600, fsync, rename, directory fsync */
  sodium_memzero(buf, sizeof buf);
  return rv;
}
