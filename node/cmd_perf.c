/* node/cmd_perf.c - `lp2p-node perf MADDR --upload BYTES --download BYTES`:
 * one /perf/1.0.0 exchange with exact byte counts and timings. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "lp2p/perf.h"
#include "netcmd.h"

enum { OPT_UPLOAD, OPT_DOWNLOAD, OPT_TIMEOUT, OPT_IDENTITY, OPT_JSON, OPT_HELP };
static const cli_opt perf_opts[] = {
    [OPT_UPLOAD] = {"upload", "BYTES", "bytes to send (suffix k, m or g for KiB, MiB, GiB)"},
    [OPT_DOWNLOAD] = {"download", "BYTES", "bytes to request back (same suffixes)"},
    [OPT_TIMEOUT] = {"timeout", "SEC", "give up after SEC seconds in total (default 300)"},
    [OPT_IDENTITY] = {"identity", "FILE", "identity key file to use (default: a fresh Ed25519 key)"},
    [OPT_JSON] = CLI_OPT_JSON,
    [OPT_HELP] = CLI_OPT_HELP,
};
#define N_OPTS (sizeof perf_opts / sizeof *perf_opts)

typedef struct perf_args {
  uint64_t upload, download, timeout;
  int have_up, have_down;
  const char *identity;
  int json;
} perf_args;

static void perf_usage(FILE *f) {
  fprintf(f, "Usage: " CLI_PROG " perf MADDR --upload BYTES --download BYTES [--timeout SEC] [--json]\n"
             "\n"
             "Connects to MADDR and runs the perf protocol (/perf/1.0.0): sends BYTES of\n"
             "upload, then receives the requested download. Both counts are checked exactly.\n"
             "Prints the byte counts, durations and rates.\n"
             "\n"
             "Options:\n");
  cli_print_opts(f, perf_opts, N_OPTS);
  fprintf(f, "\nWith --json: {\"event\":\"connected\",...} then {\"event\":\"perf\",\"peer\",\"upload\",\n"
             "\"download\",\"upload_seconds\",\"download_seconds\",\"seconds\",\"upload_mib_s\",\"download_mib_s\"}\n"
             "(counts in bytes; seconds as decimal strings).\n");
}

static int on_opt(void *ud, size_t idx, const char *val) {
  perf_args *a = ud;
  switch (idx) {
    case OPT_UPLOAD:
      if (nc_parse_size(val, &a->upload)) return cli_usage_error("perf: bad --upload size '%s'", val);
      a->have_up = 1;
      break;
    case OPT_DOWNLOAD:
      if (nc_parse_size(val, &a->download)) return cli_usage_error("perf: bad --download size '%s'", val);
      a->have_down = 1;
      break;
    case OPT_TIMEOUT:
      if (nc_parse_uint(val, 86400, &a->timeout) || !a->timeout)
        return cli_usage_error("perf: --timeout needs a positive number of seconds, got '%s'", val);
      break;
    case OPT_IDENTITY: a->identity = val; break;
    case OPT_JSON: a->json = 1; break;
  }
  return 0;
}

typedef struct perf_state {
  nc_client c;
  perf_args a;
} perf_state;

static double mib_s(uint64_t bytes, uint64_t us) {
  return us ? (double)bytes / (1024.0 * 1024.0) / ((double)us / 1e6) : 0.0;
}

static void on_result(lp2p_swarm *sw, const lp2p_peer_id *peer, int err, const lp2p_perf_result *r, void *ud) {
  perf_state *p = ud;
  (void)sw;
  if (p->c.finished) return;
  if (err) {
    char what[160];
    snprintf(what, sizeof what, "perf failed after %llu bytes up, %llu bytes down",
             (unsigned long long)r->uploaded, (unsigned long long)r->downloaded);
    nc_client_finish(&p->c, err, what);
    return;
  }
  char pb[LP2P_PEER_ID_MAX_TEXT];
  if (p->a.json) {
    char s[4][32];
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "perf");
    cli_json_str(&j, "peer", nc_peer_str(peer, pb, sizeof pb));
    cli_json_int(&j, "upload", (long long)r->uploaded);
    cli_json_int(&j, "download", (long long)r->downloaded);
    snprintf(s[0], sizeof s[0], "%.6f", (double)r->upload_us / 1e6);
    snprintf(s[1], sizeof s[1], "%.6f", (double)r->download_us / 1e6);
    snprintf(s[2], sizeof s[2], "%.6f", (double)r->total_us / 1e6);
    cli_json_str(&j, "upload_seconds", s[0]);
    cli_json_str(&j, "download_seconds", s[1]);
    cli_json_str(&j, "seconds", s[2]);
    snprintf(s[0], sizeof s[0], "%.2f", mib_s(r->uploaded, r->upload_us));
    snprintf(s[1], sizeof s[1], "%.2f", mib_s(r->downloaded, r->download_us));
    cli_json_str(&j, "upload_mib_s", s[0]);
    cli_json_str(&j, "download_mib_s", s[1]);
    nc_json_out(&j);
  } else {
    printf("peer: %s\n", nc_peer_str(peer, pb, sizeof pb));
    printf("upload: %llu bytes in %.3f s (%.2f MiB/s)\n", (unsigned long long)r->uploaded,
           (double)r->upload_us / 1e6, mib_s(r->uploaded, r->upload_us));
    printf("download: %llu bytes in %.3f s (%.2f MiB/s)\n", (unsigned long long)r->downloaded,
           (double)r->download_us / 1e6, mib_s(r->downloaded, r->download_us));
    printf("total: %.3f s\n", (double)r->total_us / 1e6);
    fflush(stdout);
  }
  nc_client_finish(&p->c, 0, NULL);
}

static void on_connected(nc_client *c) {
  perf_state *p = c->ud;
  int rv = lp2p_perf_run(c->sw, &c->peer, p->a.upload, p->a.download, on_result, p);
  if (rv < 0) nc_client_finish(c, rv, "perf failed");
}

int cmd_perf(const cli_command *cmd, int argc, char **argv) {
  (void)cmd;
  const char *target = NULL;
  int rv = nc_take_positional("perf", &argc, argv, perf_opts, N_OPTS, &target);
  if (rv) return rv;
  perf_state p;
  memset(&p, 0, sizeof p);
  p.a.timeout = 300;
  rv = cli_parse(argc, argv, perf_opts, N_OPTS, on_opt, &p.a);
  if (rv == CLI_HELP_SHOWN) {
    perf_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (rv) return rv;
  if (!target) return cli_usage_error("perf: missing MADDR (see --help)");
  if (!p.a.have_up || !p.a.have_down) return cli_usage_error("perf: --upload and --download are required");
  p.c.cmd = "perf";
  p.c.target = target;
  p.c.json = p.a.json;
  p.c.timeout_ms = (uint32_t)(p.a.timeout * 1000);
  p.c.on_connected = on_connected;
  p.c.ud = &p;
  return nc_client_run(&p.c, p.a.identity);
}
