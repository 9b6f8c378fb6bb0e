/* tests/unit/test_pairing_policy.c - code lifetime: single use, burn on failure, expiry with an
 * explicit `now`, at most 3 failed sessions per 10 minutes, and what that leaves an attacker. */
#include <sodium.h>

#include "protocols/pairing/engine/pair_int.h"
#include "test.h"

static const uint8_t IDA[] = "peer-a", IDB[] = "peer-b";

static lp2p__pair_session *run(const lp2p__pair_code *ci, const lp2p__pair_code *cj,
                               lp2p__pair_session **jout) {
  lp2p__pair_params p;
  memset(&p, 0, sizeof p);
  p.role = LP2P__PAIR_INITIATOR, p.code = ci;
  p.local_id = IDA, p.local_id_len = 6, p.remote_id = IDB, p.remote_id_len = 6;
  lp2p__pair_session *I = lp2p__pair_session_new(&p);
  p.role = LP2P__PAIR_JOINER, p.code = cj;
  p.local_id = IDB, p.remote_id = IDA;
  lp2p__pair_session *J = lp2p__pair_session_new(&p);
  for (int k = 0; k < 8; k++) {
    size_t n;
    const uint8_t *o = lp2p__pair_session_output(I, &n);
    if (n) lp2p__pair_session_input(J, o, n, 1), lp2p__pair_session_output_done(I, n);
    o = lp2p__pair_session_output(J, &n);
    if (n) lp2p__pair_session_input(I, o, n, 1), lp2p__pair_session_output_done(J, n);
  }
  if (jout)
    *jout = J;
  else
    lp2p__pair_session_free(J);
  return I;
}

static lp2p__pair_code other_words(const lp2p__pair_code *c) {
  lp2p__pair_code w = *c;
  do w.words[0] = (uint16_t)((w.words[0] + 1) & 2047);
  while (!lp2p__pair_code_check(&w));
  return w;
}

TEST(single_use) {
  lp2p__pair_policy p;
  lp2p__pair_policy_init(&p, 0, 0, 0);
  CHECK_EQ(p.lifetime_ms, 300000);
  CHECK_EQ(p.max_failures, 3);
  CHECK_EQ(p.window_ms, 600000);
  CHECK_EQ(lp2p__pair_policy_begin(&p, 0), LP2P_ERR_STATE); /* no code yet */
  lp2p__pair_code c;
  CHECK_OK(lp2p__pair_code_generate(&c, 3, NULL, NULL));
  CHECK_OK(lp2p__pair_policy_issue(&p, &c, 1000));
  CHECK_EQ(lp2p__pair_policy_status(&p, 1000), LP2P__PAIR_CODE_ACTIVE);
  CHECK_OK(lp2p__pair_policy_begin(&p, 2000));
  CHECK_EQ(lp2p__pair_policy_begin(&p, 2000), LP2P_ERR_STATE); /* one session at a time */
  lp2p__pair_session *I = run(&c, &c, NULL);
  CHECK_EQ(lp2p__pair_session_state(I), LP2P__PAIR_S_PAIRED);
  lp2p__pair_policy_end(&p, I, 3000);
  lp2p__pair_session_free(I);
  CHECK_EQ(lp2p__pair_policy_status(&p, 3000), LP2P__PAIR_CODE_USED);
  CHECK_EQ(lp2p__pair_policy_begin(&p, 3000), LP2P_ERR_STATE);
  CHECK(sodium_is_zero((const uint8_t *)&p.code, sizeof p.code)); /* wiped */
  lp2p__pair_code bad = other_words(&c);
  bad.words[1] ^= 1;
  if (!lp2p__pair_code_check(&bad)) CHECK_EQ(lp2p__pair_policy_issue(&p, &bad, 0), LP2P_ERR_INVAL);
}

TEST(failure_without_guess_keeps_the_code) {
  lp2p__pair_policy p;
  lp2p__pair_policy_init(&p, 0, 0, 0);
  lp2p__pair_code c;
  CHECK_OK(lp2p__pair_code_generate(&c, 3, NULL, NULL));
  CHECK_OK(lp2p__pair_policy_issue(&p, &c, 0));
  CHECK_OK(lp2p__pair_policy_begin(&p, 0));
  lp2p__pair_params pp;
  memset(&pp, 0, sizeof pp);
  pp.role = LP2P__PAIR_INITIATOR, pp.code = &c;
  pp.local_id = IDA, pp.local_id_len = 6, pp.remote_id = IDB, pp.remote_id_len = 6;
  lp2p__pair_session *I = lp2p__pair_session_new(&pp);
  lp2p__pair_session_closed(I); /* the joiner went away before its share */
  lp2p__pair_policy_end(&p, I, 10);
  lp2p__pair_session_free(I);
  CHECK_EQ(lp2p__pair_policy_status(&p, 10), LP2P__PAIR_CODE_ACTIVE);
  CHECK_EQ(lp2p__pair_policy_failures(&p, 10), 0);
  CHECK_OK(lp2p__pair_policy_begin(&p, 20));
}

TEST(expiry_with_explicit_now) {
  lp2p__pair_policy p;
  lp2p__pair_policy_init(&p, 0, 0, 0);
  lp2p__pair_code c;
  CHECK_OK(lp2p__pair_code_generate(&c, 3, NULL, NULL));
  CHECK_OK(lp2p__pair_policy_issue(&p, &c, 10000));
  CHECK_EQ(lp2p__pair_policy_status(&p, 10000 + 299999), LP2P__PAIR_CODE_ACTIVE);
  CHECK_EQ(lp2p__pair_policy_begin(&p, 10000 + 300000), LP2P_ERR_TIMEOUT);
  CHECK_EQ(lp2p__pair_policy_status(&p, 10000 + 300000), LP2P__PAIR_CODE_EXPIRED);
  /* configurable lifetime */
  lp2p__pair_policy_init(&p, 60000, 0, 0);
  CHECK_OK(lp2p__pair_policy_issue(&p, &c, 0));
  CHECK_EQ(lp2p__pair_policy_begin(&p, 60000), LP2P_ERR_TIMEOUT);
}

/* wrong code burns; 3 burns within 10 minutes block new codes until the oldest ages out */
TEST(rate_limit_three_per_ten_minutes) {
  lp2p__pair_policy p;
  lp2p__pair_policy_init(&p, 0, 0, 0);
  lp2p_tstamp t = 0;
  for (int k = 0; k < 3; k++) {
    lp2p__pair_code c;
    CHECK_OK(lp2p__pair_code_generate(&c, 3, NULL, NULL));
    CHECK_OK(lp2p__pair_policy_issue(&p, &c, t));
    CHECK_OK(lp2p__pair_policy_begin(&p, t));
    lp2p__pair_code w = other_words(&c);
    lp2p__pair_session *J;
    lp2p__pair_session *I = run(&c, &w, &J);
    CHECK_EQ(lp2p__pair_session_failure(I), LP2P__PAIR_FAIL_WRONG_CODE);
    lp2p__pair_policy_end(&p, I, t);
    CHECK_EQ(lp2p__pair_policy_status(&p, t), LP2P__PAIR_CODE_BURNED);
    lp2p__pair_session_free(I);
    lp2p__pair_session_free(J);
    t += 60000;
  }
  lp2p__pair_code c;
  CHECK_OK(lp2p__pair_code_generate(&c, 3, NULL, NULL));
  CHECK_EQ(lp2p__pair_policy_failures(&p, t), 3);
  CHECK_EQ(lp2p__pair_policy_issue(&p, &c, t), LP2P_ERR_LIMIT);
  CHECK_EQ(lp2p__pair_policy_issue(&p, &c, 600000 - 1), LP2P_ERR_LIMIT);
  CHECK_OK(lp2p__pair_policy_issue(&p, &c, 600000)); /* the first failure aged out */
  CHECK_EQ(lp2p__pair_policy_failures(&p, 600000), 2);
}

/* An attacker who gets every code the policy allows: at most 3 guesses per 10 minutes, each
 * with probability 2^-29 (one guess per code, 29 bits after the check). */
TEST(attacker_budget_per_hour) {
  lp2p__pair_policy p;
  lp2p__pair_policy_init(&p, 0, 0, 0);
  unsigned guesses = 0;
  lp2p__pair_code c;
  CHECK_OK(lp2p__pair_code_generate(&c, 3, NULL, NULL));
  for (lp2p_tstamp t = 0; t < 3600000; t += 1000) {
    if (lp2p__pair_policy_issue(&p, &c, t) != 0) continue;
    if (lp2p__pair_policy_begin(&p, t) != 0) continue;
    lp2p__pair_code w = other_words(&c);
    lp2p__pair_session *J;
    lp2p__pair_session *I = run(&c, &w, &J);
    lp2p__pair_policy_end(&p, I, t);
    lp2p__pair_session_free(I);
    lp2p__pair_session_free(J);
    guesses++;
  }
  double per_guess = 1.0 / (double)(1u << 29);
  printf("  guesses per hour under the policy: %u; success per guess 2^-29 = %.3g; per hour %.3g\n",
         guesses, per_guess, guesses * per_guess);
  CHECK_EQ(guesses, 18);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  RUN(single_use);
  RUN(failure_without_guess_keeps_the_code);
  RUN(expiry_with_explicit_now);
  RUN(rate_limit_three_per_ten_minutes);
  RUN(attacker_budget_per_hour);
  return test_done();
}
