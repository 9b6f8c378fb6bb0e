/* node/cmd_msg.c - one-shot messaging commands:
 *   lp2p-node send PEER TEXT        lp2p-node send-file PEER PATH        lp2p-node inbox
 * Through a running node's API socket with --api PATH (the node sends; this command waits for the
 * outcome), else as a short-lived node on the data directory (its identity, its peers, its outbox:
 * whatever is not delivered before --timeout stays queued for the next run or the next `listen`).
 * Exit: 0 delivered (inbox: listed), 1 failed, 2 usage, 3 still queued at the timeout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "commands.h"
#include "lp2p/files.h"
#include "lp2p/messaging.h"
#include "netcmd.h"
#include "peerfile.h"

#define EXIT_QUEUED 3

typedef struct margs {
  const char *api, *data_dir;
  uint64_t timeout;
  int json;
  const char *pos[2];
  char *text; /* joined words after PEER */
} margs;

static void m_usage(const char *verb) {
  printf("Usage: " CLI_PROG " %s%s [--api PATH] [--data-dir DIR] [--timeout SEC] [--json]\n\n", verb,
         !strcmp(verb, "send") ? " PEER TEXT" : !strcmp(verb, "send-file") ? " PEER PATH" : "");
  printf("PEER is a peer id known to the node (its peer store) or a multiaddr ending in /p2p/<id>.\n"
         "--api PATH    use the running node behind that socket (lp2p-node listen --api PATH)\n"
         "--data-dir    without --api: run a short-lived node on this data directory\n"
         "              (default ~/.local/share/lp2p; its identity, peers and outbox)\n"
         "--timeout SEC wait at most SEC seconds for the outcome (default 30); what is not\n"
         "              delivered by then stays queued (exit status 3)\n"
         "--json        JSON lines (send-file: progress events too)\n"
         "Exit status: 0 delivered / listed, 1 failed, 2 usage, 3 still queued.\n");
}

static int parse(const char *verb, int argc, char **argv, margs *a, int npos) {
  memset(a, 0, sizeof *a);
  a->timeout = 30;
  int np = 0;
  size_t tl = 0;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
      m_usage(verb);
      return -1;
    } else if (!strcmp(s, "--json")) {
      a->json = 1;
    } else if (!strcmp(s, "--api") || !strcmp(s, "--data-dir") || !strcmp(s, "--timeout")) {
      if (i + 1 >= argc) return cli_usage_error("%s: %s needs a value", verb, s);
      const char *v = argv[++i];
      if (!strcmp(s, "--api")) a->api = v;
      else if (!strcmp(s, "--data-dir")) a->data_dir = v;
      else if (nc_parse_uint(v, 86400 * 365, &a->timeout) || !a->timeout)
        return cli_usage_error("%s: --timeout needs seconds", verb);
    } else if (s[0] == '-' && s[1] == '-') {
      return cli_usage_error("%s: unknown option %s", verb, s);
    } else if (np < npos && np < 1) {
      a->pos[np++] = s;
    } else if (npos == 2) { /* TEXT / PATH: the rest, joined by blanks */
      size_t l = strlen(s);
      char *t = realloc(a->text, tl + l + 2);
      if (!t) return cli_error("%s: out of memory", verb);
      a->text = t;
      if (tl) a->text[tl++] = ' ';
      memcpy(a->text + tl, s, l + 1);
      tl += l;
    } else {
      return cli_usage_error("%s: unexpected argument '%s'", verb, s);
    }
  }
  if (npos == 2 && (!a->pos[0] || !a->text))
    return cli_usage_error("%s: needs PEER and %s (see --help)", verb, !strcmp(verb, "send") ? "TEXT" : "PATH");
  return 0;
}

/* ---------------------------------------------------------------- through --api */

static const char *json_field(const char *line, const char *key, char *out, size_t cap) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = strstr(line, pat);
  if (!p) return NULL;
  p += strlen(pat);
  size_t n = 0;
  if (*p == '"') {
    p++;
    while (*p && *p != '"' && n + 1 < cap) {
      if (*p == '\\' && p[1]) p++;
      out[n++] = *p++;
    }
  } else {
    while (*p && *p != ',' && *p != '}' && n + 1 < cap) out[n++] = *p++;
  }
  out[n] = 0;
  return out;
}

static void progress_bar(uint64_t bytes, uint64_t total, double rate, long long eta_ms) {
  int w = 30, fill = total ? (int)((double)bytes / (double)total * w) : w;
  char bar[40];
  for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : ' ';
  bar[w] = 0;
  fprintf(stderr, "\r[%s] %3d%% %.1f MB/s ETA %llds   ", bar, total ? (int)(bytes * 100 / total) : 100, rate / 1e6,
          eta_ms < 0 ? 0 : eta_ms / 1000);
  fflush(stderr);
}

static int via_api(const char *verb, const margs *a, const char *cmdline) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", a->api);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    return cli_error("%s: cannot connect to %s: %s", verb, a->api, strerror(errno));
  struct timeval tv = {.tv_sec = (time_t)a->timeout};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  size_t cl = strlen(cmdline);
  if (write(fd, cmdline, cl) != (ssize_t)cl || write(fd, "\n", 1) != 1) {
    close(fd);
    return cli_error("%s: cannot write to %s", verb, a->api);
  }
  int is_inbox = !strcmp(verb, "inbox"), is_file = !strcmp(verb, "send-file");
  int tty = isatty(2) && !a->json;
  char id[64] = "", buf[65536];
  size_t have = 0;
  int status = EXIT_QUEUED;
  for (;;) {
    ssize_t k = read(fd, buf + have, sizeof buf - 1 - have);
    if (k <= 0) break;
    have += (size_t)k;
    buf[have] = 0;
    char *nl;
    int done = 0;
    while ((nl = strchr(buf, '\n'))) {
      *nl = 0;
      char ev[64], f[512];
      if (json_field(buf, "event", ev, sizeof ev)) {
        if (!strcmp(ev, "control-error")) {
          fprintf(stderr, CLI_PROG ": %s: %s\n", verb, json_field(buf, "message", f, sizeof f) ? f : buf);
          status = CLI_EXIT_FAIL;
          done = 1;
        } else if (is_inbox && !strcmp(ev, "inbox-message")) {
          if (a->json) printf("%s\n", buf);
          else {
            char from[128], text[4096];
            printf("%s: %s\n", json_field(buf, "from", from, sizeof from) ? from : "?",
                   json_field(buf, "text", text, sizeof text) ? text : "");
          }
        } else if (is_inbox && !strcmp(ev, "inbox-done")) {
          if (a->json) printf("%s\n", buf);
          status = 0;
          done = 1;
        } else if (!is_inbox && !id[0] && (!strcmp(ev, "message-queued") || !strcmp(ev, "file-queued"))) {
          json_field(buf, "id", id, sizeof id);
          if (a->json) printf("%s\n", buf);
          else if (!is_file) printf("queued %s\n", id);
        } else if (id[0] && json_field(buf, "id", f, sizeof f) && !strcmp(f, id)) {
          if (!strcmp(ev, "file-progress")) {
            if (a->json) printf("%s\n", buf);
            else if (tty) {
              char b[32], t[32], r[32], e[32];
              progress_bar(strtoull(json_field(buf, "bytes", b, sizeof b), NULL, 10),
                           strtoull(json_field(buf, "total", t, sizeof t), NULL, 10),
                           strtod(json_field(buf, "rate", r, sizeof r), NULL),
                           strtoll(json_field(buf, "eta_ms", e, sizeof e), NULL, 10));
            }
          } else if (!strcmp(ev, "message-delivered") || !strcmp(ev, "file-delivered")) {
            if (tty && is_file) fprintf(stderr, "\n");
            if (a->json) printf("%s\n", buf);
            else printf("delivered %s\n", id);
            status = 0;
            done = 1;
          } else if (!strcmp(ev, "message-failed") || !strcmp(ev, "file-failed")) {
            if (a->json) printf("%s\n", buf);
            fprintf(stderr, CLI_PROG ": %s: %s failed: %s\n", verb, id,
                    json_field(buf, "error", f, sizeof f) ? f : "?");
            status = CLI_EXIT_FAIL;
            done = 1;
          }
        }
      }
      size_t used = (size_t)(nl - buf) + 1;
      memmove(buf, nl + 1, have - used + 1);
      have -= used;
      if (done) break;
    }
    fflush(stdout);
    if (done) break;
    if (have >= sizeof buf - 1) have = 0;
  }
  close(fd);
  if (status == EXIT_QUEUED && !is_inbox)
    fprintf(stderr, CLI_PROG ": %s: %s not delivered yet; it stays queued in the node\n", verb, id[0] ? id : "?");
  return status;
}

/* ---------------------------------------------------------------- short-lived node */

typedef struct local {
  lp2p_swarm *sw;
  margs *a;
  const char *verb;
  lp2p_msg_id mid;
  lp2p_files_id fid;
  int have_id, status, tty;
} local;

static void stop_later(local *l, int status) {
  l->status = status;
  lp2p_swarm_stop(l->sw);
}

static void l_msg(lp2p_msg_service *ms, const lp2p_msg_event *ev, void *ud) {
  local *l = ud;
  (void)ms;
  if (!l->have_id || memcmp(ev->id.b, l->mid.b, 16)) return;
  char id[33];
  lp2p_msg_id_hex(&ev->id, id);
  if (ev->type == LP2P_MSG_EV_QUEUED) {
    if (l->a->json) printf("{\"event\":\"message-queued\",\"id\":\"%s\"}\n", id);
    else printf("queued %s\n", id);
  } else if (ev->type == LP2P_MSG_EV_DELIVERED) {
    if (l->a->json) printf("{\"event\":\"message-delivered\",\"id\":\"%s\"}\n", id);
    else printf("delivered %s\n", id);
    stop_later(l, 0);
  } else if (ev->type == LP2P_MSG_EV_FAILED || ev->type == LP2P_MSG_EV_EXPIRED) {
    const char *why = ev->status >= 0 ? lp2p_msg_status_name(ev->status) : ev->reason ? ev->reason : "failed";
    if (l->a->json) printf("{\"event\":\"message-failed\",\"id\":\"%s\",\"error\":\"%s\"}\n", id, why);
    fprintf(stderr, CLI_PROG ": send: %s failed: %s\n", id, why);
    stop_later(l, CLI_EXIT_FAIL);
  } else if (ev->type == LP2P_MSG_EV_RETRY && !l->a->json) {
    fprintf(stderr, "attempt %u failed (%s), retrying in %llu ms\n", ev->attempts,
            ev->err ? lp2p_strerror(ev->err) : lp2p_msg_status_name(ev->status), (unsigned long long)ev->retry_after_ms);
  }
  fflush(stdout);
}

static void l_file(lp2p_files_service *fs, const lp2p_files_event *ev, void *ud) {
  local *l = ud;
  (void)fs;
  if (!l->have_id || memcmp(ev->id.b, l->fid.b, 16)) return;
  char id[33];
  for (int i = 0; i < 16; i++) snprintf(id + 2 * i, 3, "%02x", ev->id.b[i]);
  if (ev->type == LP2P_FILES_EV_PROGRESS) {
    if (l->a->json)
      printf("{\"event\":\"file-progress\",\"id\":\"%s\",\"bytes\":%llu,\"total\":%llu}\n", id,
             (unsigned long long)ev->bytes, (unsigned long long)ev->total);
    else if (l->tty)
      progress_bar(ev->bytes, ev->total, ev->rate, ev->eta_s < 0 ? -1 : (long long)(ev->eta_s * 1000));
  } else if (ev->type == LP2P_FILES_EV_QUEUED) {
    if (l->a->json) printf("{\"event\":\"file-queued\",\"id\":\"%s\",\"total\":%llu}\n", id, (unsigned long long)ev->total);
  } else if (ev->type == LP2P_FILES_EV_DELIVERED) {
    if (l->tty) fprintf(stderr, "\n");
    if (l->a->json) printf("{\"event\":\"file-delivered\",\"id\":\"%s\"}\n", id);
    else printf("delivered %s\n", id);
    stop_later(l, 0);
  } else if (ev->type == LP2P_FILES_EV_FAILED) {
    const char *why = ev->reason ? ev->reason : "failed";
    if (l->a->json) printf("{\"event\":\"file-failed\",\"id\":\"%s\",\"error\":\"%s\"}\n", id, why);
    fprintf(stderr, CLI_PROG ": send-file: %s failed: %s\n", id, why);
    stop_later(l, CLI_EXIT_FAIL);
  }
  fflush(stdout);
}

static void l_timeout(lp2p_timer *t, void *ud) {
  (void)t;
  stop_later(ud, EXIT_QUEUED);
}

static void l_inbox(void *ud, const lp2p_peer_id *from, const lp2p_msg_id *id, uint64_t seq, const uint8_t *body,
                    size_t len) {
  local *l = ud;
  char pb[LP2P_PEER_ID_MAX_TEXT], hid[33];
  nc_peer_str(from, pb, sizeof pb);
  lp2p_msg_id_hex(id, hid);
  if (l->a->json) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "inbox-message");
    cli_json_str(&j, "from", pb);
    cli_json_str(&j, "id", hid);
    cli_json_int(&j, "seq", (long long)seq);
    char *t = malloc(len + 1);
    if (t) {
      memcpy(t, body, len);
      t[len] = 0;
    }
    cli_json_str(&j, "text", t ? t : "");
    free(t);
    nc_json_out(&j);
  } else {
    printf("%s: %.*s\n", pb, (int)len, (const char *)body);
  }
  lp2p_msg_inbox_ack(lp2p_msg_get(l->sw), from, id);
  l->have_id++;
}

static int run_local(const char *verb, margs *a) {
  char dd[4096];
  if (a->data_dir) snprintf(dd, sizeof dd, "%s", a->data_dir);
  else if (cli_data_path("", dd, sizeof dd) < 0) return cli_error("%s: no data directory (use --data-dir or --api)", verb);
  size_t l = strlen(dd);
  while (l > 1 && dd[l - 1] == '/') dd[--l] = 0;
  mkdir(dd, 0700);
  char path[4200], db[4200], fdb[4200], recv[4200];
  snprintf(path, sizeof path, "%s/identity.key", dd);
  snprintf(db, sizeof db, "%s/messages.db", dd);
  snprintf(fdb, sizeof fdb, "%s/files.db", dd);
  snprintf(recv, sizeof recv, "%s/received", dd);
  mkdir(recv, 0700);
  lp2p_privkey *key = NULL;
  int rv = nc_identity(verb, path, 1, LP2P_KEY_ED25519, &key);
  if (rv) return rv;
  nc_signals_block();
  lp2p_swarm_config cfg;
  lp2p_swarm_config_default(&cfg);
  cfg.identity = key;
  local L;
  memset(&L, 0, sizeof L);
  L.a = a;
  L.verb = verb;
  L.status = EXIT_QUEUED;
  L.tty = isatty(2) && !a->json;
  if ((rv = lp2p_swarm_new(&L.sw, &cfg, NULL)) < 0) {
    lp2p_privkey_free(key);
    return cli_error("%s: %s", verb, lp2p_strerror(rv));
  }
  lp2p_identify_add(L.sw, NULL, NULL);
  peerfile *pf = NULL;
  peerfile_open(&pf, L.sw, dd);
  lp2p_msg_config mc;
  lp2p_msg_config_default(&mc);
  mc.db_path = db;
  mc.manual_ack = 1;
  mc.on_event = l_msg;
  mc.ud = &L;
  lp2p_msg_service *ms = NULL;
  lp2p_files_service *fs = NULL;
  int st = 0;
  if ((rv = lp2p_msg_add(L.sw, &mc, &ms)) < 0) st = cli_error("%s: %s: %s", verb, db, lp2p_strerror(rv));
  if (!st && strcmp(verb, "inbox") != 0) {
    lp2p_files_config fc;
    lp2p_files_config_default(&fc);
    fc.db_path = fdb;
    fc.recv_dir = recv;
    fc.on_event = l_file;
    fc.ud = &L;
    if ((rv = lp2p_files_add(L.sw, &fc, &fs)) < 0) st = cli_error("%s: %s: %s", verb, fdb, lp2p_strerror(rv));
  }
  if (!st && !strcmp(verb, "inbox")) {
    rv = lp2p_msg_inbox(ms, 1u << 20, l_inbox, &L);
    if (rv < 0) st = cli_error("inbox: %s", lp2p_strerror(rv));
    else if (!a->json && !L.have_id) printf("inbox empty\n");
    lp2p_msg_flush(ms);
  } else if (!st) {
    lp2p_peer_id peer;
    const char *p2p = strstr(a->pos[0], "/p2p/");
    if (a->pos[0][0] == '/') {
      rv = p2p ? lp2p_peer_id_parse(p2p + 5, &peer) : LP2P_ERR_INVAL;
      if (rv == 0) lp2p_swarm_add_address(L.sw, NULL, a->pos[0]);
    } else {
      rv = lp2p_peer_id_parse(a->pos[0], &peer);
    }
    if (rv < 0) st = cli_usage_error("%s: bad PEER '%s': %s", verb, a->pos[0], lp2p_strerror(rv));
    else if (!strcmp(verb, "send")) {
      rv = lp2p_msg_send(ms, &peer, (const uint8_t *)a->text, strlen(a->text), &L.mid);
      if (rv < 0) st = cli_error("send: %s", lp2p_strerror(rv));
    } else {
      rv = lp2p_files_send(fs, &peer, a->text, &L.fid);
      if (rv < 0) st = cli_error("send-file: %s: %s", a->text, lp2p_strerror(rv));
    }
    if (!st) {
      L.have_id = 1;
      lp2p_timer *t = NULL;
      lp2p_timer_new(&t, L.sw, l_timeout, &L);
      if (t) lp2p_timer_start(t, a->timeout * 1000, 0);
      nc_signals_start(L.sw);
      lp2p_swarm_run(L.sw);
      nc_signals_stop();
      st = L.status;
      if (st == EXIT_QUEUED)
        fprintf(stderr, CLI_PROG ": %s: not delivered within %llu s; it stays in the outbox (%s)\n", verb,
                (unsigned long long)a->timeout, dd);
    }
  }
  lp2p_swarm_free(L.sw);
  peerfile_close(pf);
  lp2p_privkey_free(key);
  return st;
}

static int run(const char *verb, int argc, char **argv, int npos) {
  margs a;
  int rv = parse(verb, argc, argv, &a, npos);
  if (rv) {
    free(a.text);
    return rv < 0 ? CLI_EXIT_OK : rv;
  }
  if (a.api) {
    char *line = malloc(strlen(verb) + (a.pos[0] ? strlen(a.pos[0]) : 0) + (a.text ? strlen(a.text) : 0) + 4);
    if (!line) return cli_error("%s: out of memory", verb);
    if (npos == 2) sprintf(line, "%s %s %s", verb, a.pos[0], a.text);
    else sprintf(line, "%s", verb);
    rv = via_api(verb, &a, line);
    free(line);
  } else {
    rv = run_local(verb, &a);
  }
  free(a.text);
  return rv;
}

int cmd_send(const cli_command *cmd, int argc, char **argv) {
  (void)cmd;
  return run("send", argc, argv, 2);
}
int cmd_send_file(const cli_command *cmd, int argc, char **argv) {
  (void)cmd;
  return run("send-file", argc, argv, 2);
}
int cmd_inbox(const cli_command *cmd, int argc, char **argv) {
  (void)cmd;
  return run("inbox", argc, argv, 0);
}
