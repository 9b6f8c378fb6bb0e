/* test_atomicfile.c - lp2p/atomicfile.h on a real directory: content, mode, no temporary files left,
 * the old content kept on abort, on a failed commit and when the writer dies before committing. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lp2p/atomicfile.h"
#include "test.h"

static char dir[64];

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

/* the whole file, NUL-terminated, in buf; its length or -1 */
static long slurp(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = 0;
  return (long)n;
}

/* directory entries other than . and .. */
static int entries(void) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

TEST(write_creates_file_mode_0600) {
  char p[128], buf[64];
  path_of(p, sizeof p, "a");
  CHECK_OK(lp2p_atomic_file_write(p, "hello", 5));
  CHECK_EQ(slurp(p, buf, sizeof buf), 5);
  CHECK_STR(buf, "hello");
  struct stat st;
  REQUIRE(stat(p, &st) == 0);
  CHECK_EQ(st.st_mode & 0777, 0600);
  CHECK_EQ(entries(), 1);
  CHECK_OK(lp2p_atomic_file_write(p, "", 0)); /* empty content is content */
  CHECK_EQ(slurp(p, buf, sizeof buf), 0);
  unlink(p);
}

TEST(stream_replaces_old_content) {
  char p[128], buf[4096];
  path_of(p, sizeof p, "b");
  CHECK_OK(lp2p_atomic_file_write(p, "old content that is longer", 26));
  lp2p_atomic_file *af = NULL;
  REQUIRE(lp2p_atomic_file_begin(&af, p) == 0);
  FILE *f = lp2p_atomic_file_stream(af);
  REQUIRE(f != NULL);
  CHECK(lp2p_atomic_file_stream(af) == f); /* one stream per handle */
  fprintf(f, "new %d\n", 42);
  CHECK_EQ(slurp(p, buf, sizeof buf), 26); /* not visible before the commit */
  CHECK_EQ(entries(), 2);                  /* b and its temporary file */
  CHECK_OK(lp2p_atomic_file_commit(af));
  CHECK_EQ(slurp(p, buf, sizeof buf), 7);
  CHECK_STR(buf, "new 42\n");
  CHECK_EQ(entries(), 1);
  unlink(p);
}

TEST(abort_keeps_old_content) {
  char p[128], buf[64];
  path_of(p, sizeof p, "c");
  CHECK_OK(lp2p_atomic_file_write(p, "keep", 4));
  lp2p_atomic_file *af = NULL;
  REQUIRE(lp2p_atomic_file_begin(&af, p) == 0);
  fputs("discarded", lp2p_atomic_file_stream(af));
  lp2p_atomic_file_abort(af);
  lp2p_atomic_file_abort(NULL);
  CHECK_EQ(slurp(p, buf, sizeof buf), 4);
  CHECK_STR(buf, "keep");
  CHECK_EQ(entries(), 1);
  /* abort before any stream was asked for */
  REQUIRE(lp2p_atomic_file_begin(&af, p) == 0);
  lp2p_atomic_file_abort(af);
  CHECK_EQ(entries(), 1);
  unlink(p);
}

TEST(failed_commit_reports_io_and_cleans_up) {
  char p[128], inner[160];
  path_of(p, sizeof p, "d");
  REQUIRE(mkdir(p, 0700) == 0); /* a non-empty directory cannot be replaced by a file */
  snprintf(inner, sizeof inner, "%s/x", p);
  CHECK_OK(lp2p_atomic_file_write(inner, "x", 1));
  CHECK_EQ(lp2p_atomic_file_write(p, "y", 1), LP2P_ERR_IO);
  struct stat st;
  CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
  CHECK_EQ(entries(), 1); /* no temporary file left */
  unlink(inner);
  rmdir(p);
}

TEST(bad_arguments) {
  lp2p_atomic_file *af = (lp2p_atomic_file *)1;
  CHECK_EQ(lp2p_atomic_file_begin(&af, ""), LP2P_ERR_INVAL);
  CHECK(af == NULL);
  CHECK_EQ(lp2p_atomic_file_begin(&af, NULL), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_atomic_file_begin(NULL, "x"), LP2P_ERR_INVAL);
  CHECK_EQ(lp2p_atomic_file_commit(NULL), LP2P_ERR_INVAL);
  CHECK(lp2p_atomic_file_stream(NULL) == NULL);
  CHECK_EQ(lp2p_atomic_file_write("x", NULL, 1), LP2P_ERR_INVAL);
  char p[160];
  path_of(p, sizeof p, "no-such-dir/file");
  CHECK_EQ(lp2p_atomic_file_begin(&af, p), LP2P_ERR_IO);
  CHECK_EQ(errno, ENOENT);
}

/* A writer killed (SIGKILL) in the middle of the new content: the file keeps its old content. */
TEST(writer_killed_before_commit) {
  char p[128], buf[64];
  path_of(p, sizeof p, "e");
  CHECK_OK(lp2p_atomic_file_write(p, "before", 6));
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    lp2p_atomic_file *af;
    if (lp2p_atomic_file_begin(&af, p) != 0) _exit(1);
    FILE *f = lp2p_atomic_file_stream(af);
    for (int i = 0; i < 100000; i++) fputs("partial new content\n", f);
    fflush(f);
    if (write(ready[1], "r", 1) != 1) _exit(1);
    pause(); /* killed here, before the commit */
    _exit(0);
  }
  close(ready[1]);
  char c;
  CHECK_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  CHECK(WIFSIGNALED(st));
  CHECK_EQ(slurp(p, buf, sizeof buf), 6);
  CHECK_STR(buf, "before");
  /* the dead writer's temporary file is what remains besides e; the next commit is unaffected */
  CHECK_EQ(entries(), 2);
  CHECK_OK(lp2p_atomic_file_write(p, "after", 5));
  CHECK_EQ(slurp(p, buf, sizeof buf), 5);
  CHECK_STR(buf, "after");
  unlink(p);
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (!strncmp(e->d_name, "e.tmp.", 6)) {
      char t[400];
      snprintf(t, sizeof t, "%s/%s", dir, e->d_name);
      unlink(t);
    }
  }
  if (d) closedir(d);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/lp2p-atomicfile.XXXXXX");
  if (!mkdtemp(dir)) return 1;
  RUN(write_creates_file_mode_0600);
  RUN(stream_replaces_old_content);
  RUN(abort_keeps_old_content);
  RUN(failed_commit_reports_io_and_cleans_up);
  RUN(bad_arguments);
  RUN(writer_killed_before_commit);
  CHECK_EQ(entries(), 0);
  rmdir(dir);
  return test_done();
}
