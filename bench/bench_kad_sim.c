/* bench_kad_sim.c - the Kademlia engine at scale: N sans-IO engines in the discrete-event
 * simulator of tests/sim/kad_sim.h (latency 10-100 ms per hop, 1 % message loss, fixed seed,
 * alpha 3, beta 3, k 20), N = 1,000 and 10,000, three scenarios: normal, 10 % of the nodes
 * leaving 5 s into the lookup phase, 10 % adversarial nodes answering with junk peers (random
 * ids at addresses where nobody listens) or with far peers (random live nodes).
 *
 * Prints one markdown table: lookup success (the closest live node to a random key is in the
 * result), hops (referral chain to the result, mean and p99), requests per lookup, duration in
 * simulated RTTs (mean RTT = lat_min + lat_max = 110 ms; mean, median, p99), mean routing-table
 * size, messages, wall time.
 *
 *   bench_kad_sim [--quick] [--n N] [--lookups L] [--json FILE]
 * --quick: N = 1,000 only. --json appends one JSON line per row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/kad_sim.h"

static const char *g_json;

static void row(const char *scenario, const sim_cfg *c, const sim_report *r) {
  double pct = r->lookups ? 100.0 * r->success / r->lookups : 0;
  printf("| %6u | %-10s | %5u | %6.2f %% | %4.2f | %3u | %5.1f | %6.2f | %5.2f | %7.2f | %5.1f | %9llu | %7.1f s |\n",
         c->n, scenario, r->lookups, pct, r->hops_mean, r->hops_p99, r->req_mean, r->rtt_mean, r->rtt_p50, r->rtt_p99,
         r->table_mean,
         (unsigned long long)r->messages, r->wall_s);
  fflush(stdout);
  if (!g_json) return;
  FILE *f = fopen(g_json, "a");
  if (!f) return;
  fprintf(f,
          "{\"suite\":\"kad_sim\",\"n\":%u,\"scenario\":\"%s\",\"lookups\":%u,\"success\":%u,\"hops_mean\":%.3f,"
          "\"hops_p99\":%u,\"requests_mean\":%.2f,\"rtt_mean\":%.3f,\"rtt_p50\":%.3f,\"rtt_p99\":%.3f,\"table_mean\":%.1f,"
          "\"messages\":%llu,\"wall_s\":%.2f}\n",
          c->n, scenario, r->lookups, r->success, r->hops_mean, r->hops_p99, r->req_mean, r->rtt_mean, r->rtt_p50,
          r->rtt_p99, r->table_mean, (unsigned long long)r->messages, r->wall_s);
  fclose(f);
}

int main(int argc, char **argv) {
  int quick = 0;
  unsigned only_n = 0, lookups = 1000;
  g_json = getenv("LP2P_BENCH_JSON");
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) quick = 1;
    else if (!strcmp(argv[i], "--n") && i + 1 < argc) only_n = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--lookups") && i + 1 < argc) lookups = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--json") && i + 1 < argc) g_json = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--quick] [--n N] [--lookups L] [--json FILE]\n", argv[0]);
      return 2;
    }
  }
  unsigned sizes[2] = {1000, 10000};
  size_t nsizes = quick ? 1 : 2;
  if (only_n) {
    sizes[0] = only_n;
    nsizes = 1;
  }
  printf("| N | scenario | lookups | success | hops | p99 | req/lookup | RTTs mean | p50 | p99 | table | messages | wall |\n");
  printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (size_t s = 0; s < nsizes; s++) {
    for (int sc = 0; sc < 4; sc++) {
      sim_cfg c;
      memset(&c, 0, sizeof c);
      c.n = sizes[s];
      c.seed = 1000 + s;
      c.loss = 0.01;
      c.lookups = lookups;
      c.lat_min = 10;
      c.lat_max = 100;
      const char *name = "normal";
      if (sc == 1) {
        c.leave_frac = 0.10;
        name = "10% leave";
      } else if (sc == 2) {
        c.adv_frac = 0.10;
        name = "10% junk";
      } else if (sc == 3) {
        c.adv_frac = 0.10;
        c.adv_far = 1;
        name = "10% far";
      }
      sim_report r;
      if (sim_run(&c, &r)) {
        fprintf(stderr, "simulation failed\n");
        return 1;
      }
      row(name, &c, &r);
    }
  }
  return 0;
}
