/* test_error.c - the error table and allocator basics. */
#include "core/mem.h"
#include "failmem.h"
#include "lp2p/log.h"
#include "test.h"

TEST(strerror_known_and_unknown) {
  CHECK_STR(lp2p_strerror(0), "success");
  CHECK_STR(lp2p_strerror(LP2P_ERR_UNSUPPORTED), "protocol not supported");
  CHECK_STR(lp2p_err_name(LP2P_ERR_PEER_ID_MISMATCH), "LP2P_ERR_PEER_ID_MISMATCH");
  CHECK_STR(lp2p_strerror(-99999), "unknown error");
  CHECK(lp2p_is_fatal(LP2P_ERR_NOMEM));
  CHECK(!lp2p_is_fatal(LP2P_ERR_PROTO));
}

TEST(bytes_buffer_grows_and_consumes) {
  const lp2p_mem *m = lp2p_mem_default();
  lp2p_bytes b = {0};
  for (int i = 0; i < 1000; i++) CHECK_OK(lp2p__bytes_append(m, &b, "abcd", 4));
  CHECK_EQ(b.len, 4000);
  lp2p__bytes_consume(&b, 3998);
  CHECK_EQ(b.len, 2);
  CHECK_MEM(b.data, "cd", 2);
  lp2p__bytes_free(m, &b);
}

TEST(bytes_buffer_allocation_failure_is_clean) {
  failmem fm;
  failmem_init(&fm, 1);
  lp2p_bytes b = {0};
  CHECK_EQ(lp2p__bytes_append(&fm.mem, &b, "x", 1), LP2P_ERR_NOMEM);
  CHECK_EQ(b.len, 0);
  CHECK(fm.triggered);
  lp2p__bytes_free(&fm.mem, &b);
  CHECK_EQ(fm.live, 0);
}

static int log_calls;
static void count_log(lp2p_log_level l, const char *mod, const char *msg, void *u) {
  (void)l;
  (void)u;
  if (!strcmp(mod, "test") && !strcmp(msg, "hello 42")) log_calls++;
}

TEST(log_handler_and_level) {
  lp2p_log_set_handler(count_log, NULL);
  lp2p_log_set_level(LP2P_LOG_INFO);
  lp2p_log(LP2P_LOG_DEBUG, "test", "hello %d", 42);
  lp2p_log(LP2P_LOG_INFO, "test", "hello %d", 42);
  CHECK_EQ(log_calls, 1);
  lp2p_log_set_handler(NULL, NULL);
}

int main(void) {
  RUN(strerror_known_and_unknown);
  RUN(bytes_buffer_grows_and_consumes);
  RUN(bytes_buffer_allocation_failure_is_clean);
  RUN(log_handler_and_level);
  return test_done();
}
