/* test_kad_sim.c - 200 sans-IO Kademlia engines in the discrete-event simulator
 * (tests/sim/kad_sim.h): latency 10-100 ms per hop, 1 % loss, fixed seed. Lookups of random keys
 * must find the closest live node in >= 99 % of cases; with 10 % of nodes leaving mid-run and
 * with 10 % adversarial nodes the bar is lower (printed, and asserted at >= 95 %). */
#include "test.h"
#include "tests/sim/kad_sim.h"

static void show(const char *name, const sim_report *r) {
  printf("  %-12s lookups %u success %u (%.1f %%) hops %.2f p99 %u req %.1f rtt %.2f p99 %.2f table %.1f wall %.2fs\n",
         name, r->lookups, r->success, r->lookups ? 100.0 * r->success / r->lookups : 0, r->hops_mean, r->hops_p99,
         r->req_mean, r->rtt_mean, r->rtt_p99, r->table_mean, r->wall_s);
}

static sim_cfg base(void) {
  sim_cfg c;
  memset(&c, 0, sizeof c);
  c.n = 200;
  c.seed = 42;
  c.loss = getenv("SIM_LOSS") ? atof(getenv("SIM_LOSS")) : 0.01;
  c.lookups = 300;
  c.beta = getenv("SIM_BETA") ? (unsigned)atoi(getenv("SIM_BETA")) : 0;
  c.alpha = getenv("SIM_ALPHA") ? (unsigned)atoi(getenv("SIM_ALPHA")) : 0;
  c.lat_min = 10;
  c.lat_max = 100;
  return c;
}

TEST(sim_200_normal) {
  sim_cfg c = base();
  sim_report r;
  REQUIRE(sim_run(&c, &r) == 0);
  show("normal", &r);
  CHECK_EQ(r.lookups, c.lookups);
  CHECK(r.success * 100 >= 99 * r.lookups);
  CHECK(r.table_mean >= 20);
}

TEST(sim_200_leave) {
  sim_cfg c = base();
  c.leave_frac = 0.10;
  sim_report r;
  REQUIRE(sim_run(&c, &r) == 0);
  show("10% leave", &r);
  CHECK(r.success * 100 >= 95 * r.lookups);
}

TEST(sim_200_adversarial) {
  sim_cfg c = base();
  c.adv_frac = 0.10;
  sim_report r;
  REQUIRE(sim_run(&c, &r) == 0);
  show("10% junk", &r);
  CHECK(r.success * 100 >= 95 * r.lookups);
  c.adv_far = 1;
  REQUIRE(sim_run(&c, &r) == 0);
  show("10% far", &r);
  CHECK(r.success * 100 >= 95 * r.lookups);
}

TEST(sim_200_disjoint_paths) {
  sim_cfg c = base();
  c.alpha = 6;
  c.paths = 3;
  c.adv_frac = 0.10;
  sim_report r;
  REQUIRE(sim_run(&c, &r) == 0);
  show("3 paths junk", &r);
  CHECK(r.success * 100 >= 97 * r.lookups);
}

TEST(sim_is_deterministic) {
  sim_cfg c = base();
  c.n = 60;
  c.lookups = 50;
  sim_report a, b;
  REQUIRE(sim_run(&c, &a) == 0);
  REQUIRE(sim_run(&c, &b) == 0);
  CHECK_EQ(a.success, b.success);
  CHECK_EQ(a.messages, b.messages);
  CHECK_EQ(a.sim_ms, b.sim_ms);
  CHECK(a.hops_mean == b.hops_mean);
}

int main(void) {
  RUN(sim_200_normal);
  RUN(sim_200_leave);
  RUN(sim_200_adversarial);
  RUN(sim_200_disjoint_paths);
  RUN(sim_is_deterministic);
  return test_done();
}
