/* tests/test.h - the tiny test harness every lp2p test executable uses.
 *
 *   TEST(name) { CHECK(x); CHECK_EQ(a, b); CHECK_OK(rv); CHECK_MEM(a, b, n); }
 *   int main(void) { RUN(name); ...; return test_done(); }
 *
 * A failed check prints file:line and the expression, marks the current test
 * failed and continues. test_done() prints "N passed, N failed" and returns
 * the exit status. Vectors live in LP2P_TEST_VECTORS (tests/vectors). */
#ifndef LP2P_TEST_H
#define LP2P_TEST_H
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/common.h"

static int test__passed, test__failed, test__cur_failed;
static const char *test__cur;

#define TEST(name) static void name(void)

#define TEST_FAIL_(fmt, ...)                                                                  \
  do {                                                                                        \
    fprintf(stderr, "  %s:%d: %s: " fmt "\n", __FILE__, __LINE__, test__cur, __VA_ARGS__);   \
    test__cur_failed = 1;                                                                     \
  } while (0)

#define CHECK(cond)                                  \
  do {                                               \
    if (!(cond)) TEST_FAIL_("CHECK(%s) failed", #cond); \
  } while (0)

#define CHECK_EQ(a, b)                                                                           \
  do {                                                                                           \
    long long test__a = (long long)(a), test__b = (long long)(b);                                \
    if (test__a != test__b) TEST_FAIL_("%s == %s failed: %lld != %lld", #a, #b, test__a, test__b); \
  } while (0)

#define CHECK_OK(expr)                                                                          \
  do {                                                                                          \
    long long test__rv = (long long)(expr);                                                     \
    if (test__rv < 0) TEST_FAIL_("%s returned %lld (%s)", #expr, test__rv, lp2p_strerror((int)test__rv)); \
  } while (0)

#define CHECK_STR(a, b)                                                                 \
  do {                                                                                  \
    const char *test__sa = (a), *test__sb = (b);                                        \
    if (!test__sa || !test__sb || strcmp(test__sa, test__sb))                           \
      TEST_FAIL_("%s == %s failed: \"%s\" != \"%s\"", #a, #b, test__sa ? test__sa : "(null)", \
                 test__sb ? test__sb : "(null)");                                       \
  } while (0)

#define CHECK_MEM(a, b, n)                                                     \
  do {                                                                         \
    if (memcmp((a), (b), (n))) TEST_FAIL_("memcmp(%s, %s, %s) != 0", #a, #b, #n); \
  } while (0)

/* Stop the current test (after a failed precondition). */
#define REQUIRE(cond)                                 \
  do {                                                \
    if (!(cond)) {                                    \
      TEST_FAIL_("REQUIRE(%s) failed", #cond);        \
      return;                                         \
    }                                                 \
  } while (0)

#define RUN(name)                                      \
  do {                                                 \
    test__cur = #name;                                 \
    test__cur_failed = 0;                              \
    name();                                            \
    if (test__cur_failed) {                            \
      test__failed++;                                  \
      fprintf(stderr, "FAIL %s\n", #name);             \
    } else {                                           \
      test__passed++;                                  \
      printf("ok   %s\n", #name);                      \
    }                                                  \
    fflush(stdout);                                    \
  } while (0)

static inline int test_done(void) {
  printf("%d passed, %d failed\n", test__passed, test__failed);
  return test__failed ? 1 : 0;
}

#endif
