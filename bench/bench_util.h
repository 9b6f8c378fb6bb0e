/* bench/bench_util.h - helpers shared by the bench_*.c programs (header-only; include it from exactly one
 * .c file per program, which is how the bench folder is built).
 *
 *   int main(int argc, char **argv) {
 *     bench_init(argc, argv, "noise");          // --json FILE, --quick; prints the table header
 *     uint64_t calls;
 *     double per_s = bench_run(one_handshake, &ctx, bench_min_seconds(), &calls);
 *     report("xx handshake", per_s, "op/s");
 *     report("transport 16 KiB", bench_rate(bytes, elapsed_ns), "B/s");
 *     return bench_done();
 *   }
 *
 * Output: one markdown row per report() on stdout ("| name | 1.23 GiB/s | 1320702443 B/s |"). With a JSON
 * file configured, each report also appends one line {"suite":..,"name":..,"value":..,"unit":..} to it
 * (JSON Lines, so several programs can append to the same file). Units: "B/s" and "B" are shown with binary
 * prefixes (KiB, MiB, GiB), "s" as ns/us/ms/s, anything else with SI prefixes (k, M, G). */
#ifndef LP2P_BENCH_UTIL_H
#define LP2P_BENCH_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *bench__json_path;
static const char *bench__suite = "lp2p";
static int bench__quick;
static int bench__failed;

/* Monotonic clock in nanoseconds. */
static inline uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double bench_seconds(uint64_t ns) { return (double)ns / 1e9; }

/* count per second over elapsed_ns (0 if no time passed). */
static inline double bench_rate(double count, uint64_t elapsed_ns) {
  return elapsed_ns ? count / bench_seconds(elapsed_ns) : 0.0;
}

/* Keeps the compiler from optimising a computed value away. */
static inline void bench_sink(const void *p) { __asm__ __volatile__("" : : "g"(p) : "memory"); }

/* Minimum measuring time per result: 0.5 s, or 0.05 s with --quick. */
static inline double bench_min_seconds(void) { return bench__quick ? 0.05 : 0.5; }
static inline int bench_quick(void) { return bench__quick; }

/* Human-readable value + unit into buf (NUL-terminated); returns buf. */
static inline const char *bench_human(double v, const char *unit, char *buf, size_t cap) {
  if (!strcmp(unit, "s")) {
    if (v < 1e-6) snprintf(buf, cap, "%.1f ns", v * 1e9);
    else if (v < 1e-3) snprintf(buf, cap, "%.2f us", v * 1e6);
    else if (v < 1.0) snprintf(buf, cap, "%.2f ms", v * 1e3);
    else snprintf(buf, cap, "%.3f s", v);
    return buf;
  }
  int binary = unit[0] == 'B' && (unit[1] == 0 || unit[1] == '/');
  static const char *const si[] = {"", "k", "M", "G", "T", "P"};
  static const char *const bin[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi"};
  double base = binary ? 1024.0 : 1000.0, a = v < 0 ? -v : v;
  int i = 0;
  while (a >= base && i < 5) {
    a /= base;
    v /= base;
    i++;
  }
  const char *prefix = binary ? bin[i] : si[i];
  if (a >= 100 || i == 0) snprintf(buf, cap, "%.0f %s%s", v, prefix, unit);
  else if (a >= 10) snprintf(buf, cap, "%.1f %s%s", v, prefix, unit);
  else snprintf(buf, cap, "%.2f %s%s", v, prefix, unit);
  return buf;
}

static inline void bench__json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
    else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", (unsigned char)*s);
    else fputc(*s, f);
  }
  fputc('"', f);
}

/* Prints one markdown row and, when configured, appends a JSON line. */
static inline void report(const char *name, double value, const char *unit) {
  char h[64];
  printf("| %s | %s | %.6g %s |\n", name, bench_human(value, unit, h, sizeof h), value, unit);
  fflush(stdout);
  if (!bench__json_path) return;
  FILE *f = fopen(bench__json_path, "a");
  if (!f) {
    fprintf(stderr, "bench: cannot append to %s\n", bench__json_path);
    bench__failed = 1;
    return;
  }
  fputs("{\"suite\":", f);
  bench__json_string(f, bench__suite);
  fputs(",\"name\":", f);
  bench__json_string(f, name);
  fprintf(f, ",\"value\":%.17g,\"unit\":", value);
  bench__json_string(f, unit);
  fprintf(f, ",\"quick\":%s}\n", bench__quick ? "true" : "false");
  fclose(f);
}

/* Parses --json FILE and --quick (env: LP2P_BENCH_JSON, LP2P_BENCH_QUICK), records the suite name used in
 * the JSON lines, and prints the markdown table header. Exits with status 2 on an unknown argument. */
static inline void bench_init(int argc, char **argv, const char *suite) {
  bench__suite = suite;
  bench__json_path = getenv("LP2P_BENCH_JSON");
  const char *q = getenv("LP2P_BENCH_QUICK");
  bench__quick = q && *q && strcmp(q, "0");
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json") && i + 1 < argc) bench__json_path = argv[++i];
    else if (!strcmp(argv[i], "--quick")) bench__quick = 1;
    else {
      fprintf(stderr, "usage: %s [--json FILE] [--quick]\n", argv[0]);
      exit(2);
    }
  }
  printf("\n### %s\n\n| benchmark | value | raw |\n|---|---:|---:|\n", suite);
}

/* Calls fn(ud) in doubling batches until at least min_s seconds have passed; returns calls per second and
 * stores the number of calls in *calls (if non-NULL). */
static inline double bench_run(void (*fn)(void *ud), void *ud, double min_s, uint64_t *calls) {
  uint64_t n = 0, batch = 1, t0 = bench_now_ns(), el;
  for (;;) {
    for (uint64_t i = 0; i < batch; i++) fn(ud);
    n += batch;
    el = bench_now_ns() - t0;
    if (bench_seconds(el) >= min_s) break;
    if (batch < (UINT64_C(1) << 30)) batch *= 2;
  }
  if (calls) *calls = n;
  return bench_rate((double)n, el);
}

/* Marks the run failed (e.g. a self-check inside a benchmark went wrong). */
static inline void bench_fail(const char *why) {
  fprintf(stderr, "bench: %s\n", why);
  bench__failed = 1;
}

/* Exit status for main. */
static inline int bench_done(void) { return bench__failed ? 1 : 0; }

#endif
