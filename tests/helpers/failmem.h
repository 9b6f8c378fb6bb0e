/* tests/helpers/failmem.h - an lp2p_mem that fails the n-th allocation and
 * counts live blocks, for allocation-failure tests:
 *
 *   for (int n = 1;; n++) {
 *     failmem fm; failmem_init(&fm, n);
 *     int rv = run_scenario(&fm.mem);       // must return cleanly
 *     CHECK_EQ(fm.live, 0);                  // no leak
 *     if (!fm.triggered) break;              // scenario finished without hitting n
 *   }
 */
#ifndef LP2P_TEST_FAILMEM_H
#define LP2P_TEST_FAILMEM_H
#include "lp2p/common.h"

typedef struct failmem {
  lp2p_mem mem;
  long fail_at;   /* 1-based index of the allocation to fail; 0 = never */
  long count;     /* allocations attempted so far */
  long live;      /* blocks currently allocated */
  int triggered;  /* the failure was injected */
} failmem;

void failmem_init(failmem *fm, long fail_at);

#endif
