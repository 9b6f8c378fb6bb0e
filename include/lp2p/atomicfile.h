/* lp2p/atomicfile.h - replace a small state file atomically: after a crash the file holds either
 * its old content or the complete new one, never a mix or a truncated file.
 *
 *   lp2p_atomic_file *af;
 *   if (lp2p_atomic_file_begin(&af, "/data/peers") == 0) {
 *     fprintf(lp2p_atomic_file_stream(af), "...");      (write the whole new content)
 *     rc = lp2p_atomic_file_commit(af);                  (af is gone whatever rc is)
 *   }
 *
 * begin creates a temporary file "<path>.tmp.XXXXXX" (mode 0600) in the same directory; commit
 * flushes it, fsyncs it, renames it over path and fsyncs the directory so the rename itself is
 * durable; abort (or a failed commit) removes the temporary file and leaves path as it was.
 * The parent directory must exist. Blocking file I/O: call it where blocking a moment is fine (a
 * state file of a few KiB, or from a worker thread). Not thread-safe per handle; separate handles
 * on different paths are independent. Two writers of the SAME path race: the last commit wins. */
#ifndef LP2P_ATOMICFILE_H
#define LP2P_ATOMICFILE_H

#include <stdio.h>

#include "lp2p/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lp2p_atomic_file lp2p_atomic_file;

/* Starts a replacement of path (copied; a NUL-terminated file name). *out is owned by the caller
 * until lp2p_atomic_file_commit or lp2p_atomic_file_abort. LP2P_ERR_INVAL (NULL or empty path),
 * LP2P_ERR_NOMEM, LP2P_ERR_IO (the temporary file cannot be created; errno tells why). */
LP2P_EXTERN int lp2p_atomic_file_begin(lp2p_atomic_file **out, const char *path);

/* The stream to write the new content to (owned by af; do not fclose it). */
LP2P_EXTERN FILE *lp2p_atomic_file_stream(lp2p_atomic_file *af);

/* Makes the new content the file's: 0, or LP2P_ERR_IO when a write, the fsync or the rename failed
 * (path then keeps its old content). Frees af in every case. */
LP2P_EXTERN int lp2p_atomic_file_commit(lp2p_atomic_file *af);

/* Drops the new content (removes the temporary file); path is untouched. Frees af; NULL is a no-op. */
LP2P_EXTERN void lp2p_atomic_file_abort(lp2p_atomic_file *af);

/* The whole replacement in one call: path's new content is the n bytes at data. */
LP2P_EXTERN int lp2p_atomic_file_write(const char *path, const void *data, size_t n);

#ifdef __cplusplus
}
#endif

#endif
