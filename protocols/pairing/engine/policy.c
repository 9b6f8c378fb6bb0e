/* protocols/pairing/engine/policy.c - code lifetime: single use, burned by any session that
 * failed after a guess could be tested, expiry, and at most max_failures failed sessions per
 * window (defaults: 5 min, 3, 10 min). Time is the caller's monotonic `now`. */
#include <sodium.h>
#include <string.h>

#include "protocols/pairing/engine/pair_int.h"

void lp2p__pair_policy_init(lp2p__pair_policy *p, uint64_t lifetime_ms, unsigned max_failures,
                            uint64_t window_ms) {
  memset(p, 0, sizeof *p);
  p->lifetime_ms = lifetime_ms ? lifetime_ms : LP2P__PAIR_DEFAULT_LIFETIME_MS;
  p->max_failures = max_failures ? max_failures : LP2P__PAIR_DEFAULT_MAX_FAILURES;
  if (p->max_failures > LP2P__PAIR_FAILURES_MAX) p->max_failures = LP2P__PAIR_FAILURES_MAX;
  p->window_ms = window_ms ? window_ms : LP2P__PAIR_DEFAULT_WINDOW_MS;
  p->status = LP2P__PAIR_CODE_NONE;
}

unsigned lp2p__pair_policy_failures(lp2p__pair_policy *p, lp2p_tstamp now) {
  unsigned keep = 0;
  for (unsigned i = 0; i < p->n_fail; i++)
    if (now < p->fail_at[i] + p->window_ms) p->fail_at[keep++] = p->fail_at[i];
  p->n_fail = keep;
  return keep;
}

static void drop_code(lp2p__pair_policy *p, lp2p__pair_code_status st) {
  sodium_memzero(&p->code, sizeof p->code);
  p->status = st;
}

int lp2p__pair_policy_issue(lp2p__pair_policy *p, const lp2p__pair_code *c, lp2p_tstamp now) {
  if (!c || !lp2p__pair_code_check(c)) return LP2P_ERR_INVAL;
  if (lp2p__pair_policy_failures(p, now) >= p->max_failures) return LP2P_ERR_LIMIT;
  p->code = *c;
  p->status = LP2P__PAIR_CODE_ACTIVE;
  p->issued_at = now;
  return 0;
}

lp2p__pair_code_status lp2p__pair_policy_status(lp2p__pair_policy *p, lp2p_tstamp now) {
  if ((p->status == LP2P__PAIR_CODE_ACTIVE || p->status == LP2P__PAIR_CODE_IN_USE) &&
      now >= p->issued_at + p->lifetime_ms)
    drop_code(p, LP2P__PAIR_CODE_EXPIRED);
  return p->status;
}

int lp2p__pair_policy_begin(lp2p__pair_policy *p, lp2p_tstamp now) {
  lp2p__pair_code_status st = lp2p__pair_policy_status(p, now);
  if (st == LP2P__PAIR_CODE_EXPIRED) return LP2P_ERR_TIMEOUT;
  if (st != LP2P__PAIR_CODE_ACTIVE) return LP2P_ERR_STATE;
  if (lp2p__pair_policy_failures(p, now) >= p->max_failures) return LP2P_ERR_LIMIT;
  p->status = LP2P__PAIR_CODE_IN_USE;
  return 0;
}

void lp2p__pair_policy_end(lp2p__pair_policy *p, const lp2p__pair_session *s, lp2p_tstamp now) {
  if (p->status != LP2P__PAIR_CODE_IN_USE && p->status != LP2P__PAIR_CODE_EXPIRED) return;
  lp2p__pair_state st = lp2p__pair_session_state(s);
  if (st == LP2P__PAIR_S_PAIRED) {
    drop_code(p, LP2P__PAIR_CODE_USED);
    return;
  }
  if (st != LP2P__PAIR_S_FAILED) return; /* still running */
  if (lp2p__pair_session_burns_code(s)) {
    (void)lp2p__pair_policy_failures(p, now);
    if (p->n_fail == LP2P__PAIR_FAILURES_MAX) { /* keep the newest */
      memmove(p->fail_at, p->fail_at + 1, (LP2P__PAIR_FAILURES_MAX - 1) * sizeof p->fail_at[0]);
      p->n_fail--;
    }
    p->fail_at[p->n_fail++] = now;
    drop_code(p, LP2P__PAIR_CODE_BURNED);
    return;
  }
  if (p->status == LP2P__PAIR_CODE_IN_USE) p->status = LP2P__PAIR_CODE_ACTIVE;
  (void)lp2p__pair_policy_status(p, now);
}
