/* atomic_state.c - keep an application's small state file crash-safe with lp2p/atomicfile.h.
 *
 * Saves a run counter and the node's peer id to <dir>/state, replacing the file atomically each
 * time (a crash leaves the old or the new file, never a torn one), then reads it back. Run it twice
 * with the same directory and the counter goes up. Usage: atomic_state [DIR] (default: a new
 * temporary directory, removed at the end). Exits 0 when the content read back is what was written. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lp2p/atomicfile.h>
#include <lp2p/common.h>
#include <lp2p/keys.h>
#include <lp2p/peerid.h>

int main(int argc, char **argv) {
  char tmpdir[] = "/tmp/atomic_state.XXXXXX";
  const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpdir);
  if (!dir) return 1;
  char path[4096];
  snprintf(path, sizeof path, "%s/state", dir);

  unsigned runs = 0;
  FILE *in = fopen(path, "r");
  if (in) {
    if (fscanf(in, "runs %u", &runs) != 1) runs = 0;
    fclose(in);
  }

  lp2p_privkey *key = NULL;
  lp2p_peer_id id;
  char text[LP2P_PEER_ID_MAX_TEXT];
  int rc = lp2p_privkey_generate(&key, LP2P_KEY_ED25519, 0);
  if (rc == 0) rc = lp2p_peer_id_from_pubkey(lp2p_privkey_public(key), &id);
  if (rc == 0 && (rc = lp2p_peer_id_to_string(&id, text, sizeof text)) > 0) rc = 0;
  lp2p_privkey_free(key);
  if (rc < 0) {
    fprintf(stderr, "atomic_state: identity: %s\n", lp2p_strerror(rc));
    return 1;
  }

  lp2p_atomic_file *af = NULL;
  rc = lp2p_atomic_file_begin(&af, path);
  if (rc < 0) {
    fprintf(stderr, "atomic_state: %s: %s\n", path, lp2p_strerror(rc));
    return 1;
  }
  fprintf(lp2p_atomic_file_stream(af), "runs %u\nlast-peer %s\n", runs + 1, text);
  rc = lp2p_atomic_file_commit(af); /* af is freed whatever the result */
  if (rc < 0) {
    fprintf(stderr, "atomic_state: commit %s: %s\n", path, lp2p_strerror(rc));
    return 1;
  }

  char want[256], got[256] = {0};
  snprintf(want, sizeof want, "runs %u\nlast-peer %s\n", runs + 1, text);
  in = fopen(path, "r");
  size_t n = in ? fread(got, 1, sizeof got - 1, in) : 0;
  if (in) fclose(in);
  int ok = n == strlen(want) && memcmp(got, want, n) == 0;
  printf("atomic_state: %s run %u, peer %s: %s\n", path, runs + 1, text, ok ? "ok" : "MISMATCH");
  if (argc <= 1) {
    unlink(path);
    rmdir(dir);
  }
  return ok ? 0 : 1;
}
