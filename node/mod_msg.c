/* node/mod_msg.c - messaging and file transfer in `lp2p-node listen` (lp2p/messaging.h, lp2p/files.h):
 * the databases DATA_DIR/messages.db and DATA_DIR/files.db, received files in DATA_DIR/received (or
 * --recv-dir), control/API commands `send PEER TEXT`, `send-file PEER PATH`, `inbox`, and the events
 * message-queued {id}, message-delivered {id, peer}, message-failed {id, error}, message-received {from,
 * id, text}, file-progress {id, bytes, total}, file-delivered {id}, file-failed {id, error},
 * file-received {from, id, path, size, sha256}, inbox-message {from, id, text}, inbox-done {count}. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lp2p/files.h"
#include "lp2p/messaging.h"
#include "module.h"
#include "netcmd.h"

enum { OPT_RECV_DIR, OPT_RATE, OPT_ATTEMPTS, OPT_BACKOFF, OPT_TTL, OPT_MAX_FILE };
static const cli_opt msg_opts[] = {
    [OPT_RECV_DIR] = {"recv-dir", "DIR", "where received files go (default DATA_DIR/received)"},
    [OPT_RATE] = {"msg-rate", "N", "messages per second accepted from one peer (default: unlimited)"},
    [OPT_ATTEMPTS] = {"msg-attempts", "N", "attempts before a message is a dead letter (default 10)"},
    [OPT_BACKOFF] = {"msg-backoff", "MS", "first retry delay in ms, doubled up to 5 min (default 1000)"},
    [OPT_TTL] = {"msg-ttl", "SEC", "seconds before an undelivered message expires (default 7 days)"},
    [OPT_MAX_FILE] = {"max-file-size", "BYTES", "largest file accepted (k/m/g suffixes; default 4g)"},
};

typedef struct origin_ent {
  uint8_t id[16];
  uint64_t origin;
  struct origin_ent *next;
} origin_ent;

typedef struct msg_state {
  const char *recv_dir;
  uint64_t rate, attempts, backoff, ttl, max_file;
  int have_rate, have_attempts, have_backoff, have_ttl, have_max_file;
  node *n;
  lp2p_msg_service *ms;
  lp2p_files_service *fs;
  char recv[4096];
  origin_ent *origins; /* who asked for which message/file: their queued event goes to them */
} msg_state;

static int msg_opt(node *n, void *st, size_t idx, const char *val) {
  msg_state *s = st;
  (void)n;
  switch (idx) {
    case OPT_RECV_DIR: s->recv_dir = val; break;
    case OPT_RATE:
      if (nc_parse_uint(val, 10000000, &s->rate)) return cli_usage_error("listen: --msg-rate needs a number");
      s->have_rate = 1;
      break;
    case OPT_ATTEMPTS:
      if (nc_parse_uint(val, 1000000, &s->attempts) || !s->attempts)
        return cli_usage_error("listen: --msg-attempts needs a positive number");
      s->have_attempts = 1;
      break;
    case OPT_BACKOFF:
      if (nc_parse_uint(val, 3600000, &s->backoff) || !s->backoff)
        return cli_usage_error("listen: --msg-backoff needs milliseconds");
      s->have_backoff = 1;
      break;
    case OPT_TTL:
      if (nc_parse_uint(val, 10u * 365 * 86400, &s->ttl)) return cli_usage_error("listen: --msg-ttl needs seconds");
      s->have_ttl = 1;
      break;
    case OPT_MAX_FILE:
      if (nc_parse_size(val, &s->max_file)) return cli_usage_error("listen: --max-file-size needs a size");
      s->have_max_file = 1;
      break;
  }
  return 0;
}

static void origin_put(msg_state *s, const uint8_t id[16], uint64_t origin) {
  if (!origin) return;
  origin_ent *e = calloc(1, sizeof *e);
  if (!e) return;
  memcpy(e->id, id, 16);
  e->origin = origin;
  e->next = s->origins;
  s->origins = e;
}

/* the client that asked (0 = everyone), forgetting it when done */
static uint64_t origin_get(msg_state *s, const uint8_t id[16], int forget) {
  for (origin_ent **pp = &s->origins; *pp; pp = &(*pp)->next)
    if (!memcmp((*pp)->id, id, 16)) {
      origin_ent *e = *pp;
      uint64_t o = e->origin;
      if (forget) {
        *pp = e->next;
        free(e);
      }
      return o;
    }
  return 0;
}

static void hex16(const uint8_t *b, char out[33]) {
  for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void on_msg(lp2p_msg_service *ms, const lp2p_msg_event *ev, void *ud) {
  msg_state *s = ud;
  node *n = s->n;
  (void)ms;
  char id[33], pb[LP2P_PEER_ID_MAX_TEXT];
  hex16(ev->id.b, id);
  nc_peer_str(ev->peer, pb, sizeof pb);
  cli_json j;
  switch (ev->type) {
    case LP2P_MSG_EV_QUEUED: {
      uint64_t to = origin_get(s, ev->id.b, 0);
      node_text(n, "message %s queued for %s", id, pb);
      if (!node_json_wanted(n)) return;
      cli_json_begin(&j);
      cli_json_str(&j, "event", "message-queued");
      cli_json_str(&j, "id", id);
      cli_json_str(&j, "peer", pb);
      node_emit(n, &j, to);
      return;
    }
    case LP2P_MSG_EV_DELIVERED:
      origin_get(s, ev->id.b, 1);
      node_text(n, "message %s delivered to %s", id, pb);
      if (!node_json_wanted(n)) return;
      cli_json_begin(&j);
      cli_json_str(&j, "event", "message-delivered");
      cli_json_str(&j, "id", id);
      cli_json_str(&j, "peer", pb);
      node_emit(n, &j, 0);
      return;
    case LP2P_MSG_EV_FAILED:
    case LP2P_MSG_EV_EXPIRED: {
      origin_get(s, ev->id.b, 1);
      char why[160];
      if (ev->status >= 0)
        snprintf(why, sizeof why, "%s (peer answered %s)", ev->reason ? ev->reason : "failed",
                 lp2p_msg_status_name(ev->status));
      else
        snprintf(why, sizeof why, "%s%s%s", ev->reason ? ev->reason : "failed", ev->err ? ": " : "",
                 ev->err ? lp2p_strerror(ev->err) : "");
      node_text(n, "message %s to %s failed: %s", id, pb, why);
      if (!node_json_wanted(n)) return;
      cli_json_begin(&j);
      cli_json_str(&j, "event", "message-failed");
      cli_json_str(&j, "id", id);
      cli_json_str(&j, "peer", pb);
      cli_json_str(&j, "error", why);
      cli_json_int(&j, "attempts", ev->attempts);
      node_emit(n, &j, 0);
      return;
    }
    case LP2P_MSG_EV_RECEIVED: {
      char *text = malloc(ev->body_len + 1);
      if (!text) return;
      memcpy(text, ev->body, ev->body_len);
      text[ev->body_len] = 0;
      node_text(n, "message from %s: %s", pb, text);
      if (node_json_wanted(n)) {
        cli_json_begin(&j);
        cli_json_str(&j, "event", "message-received");
        cli_json_str(&j, "from", pb);
        cli_json_str(&j, "id", id);
        cli_json_int(&j, "seq", (long long)ev->seq);
        cli_json_str(&j, "text", text);
        node_emit(n, &j, 0);
      }
      free(text);
      return;
    }
    default: return;
  }
}

static void on_file(lp2p_files_service *fs, const lp2p_files_event *ev, void *ud) {
  msg_state *s = ud;
  node *n = s->n;
  (void)fs;
  char id[33], pb[LP2P_PEER_ID_MAX_TEXT];
  hex16(ev->id.b, id);
  nc_peer_str(ev->peer, pb, sizeof pb);
  cli_json j;
  switch (ev->type) {
    case LP2P_FILES_EV_QUEUED: {
      uint64_t to = origin_get(s, ev->id.b, 0);
      node_text(n, "file %s (%s) queued for %s", id, ev->name, pb);
      if (!node_json_wanted(n)) return;
      cli_json_begin(&j);
      cli_json_str(&j, "event", "file-queued");
      cli_json_str(&j, "id", id);
      cli_json_int(&j, "total", (long long)ev->total);
      node_emit(n, &j, to);
      return;
    }
    case LP2P_FILES_EV_PROGRESS:
      if (!ev->outgoing && !node_json_wanted(n)) return;
      if (!node_json_wanted(n)) return;
      cli_json_begin(&j);
      cli_json_str(&j, "event", "file-progress");
      cli_json_str(&j, "id", id);
      cli_json_int(&j, "bytes", (long long)ev->bytes);
      cli_json_int(&j, "total", (long long)ev->total);
      cli_json_int(&j, "rate", (long long)ev->rate);
      cli_json_int(&j, "eta_ms", ev->eta_s < 0 ? -1 : (long long)(ev->eta_s * 1000));
      cli_json_bool(&j, "outgoing", ev->outgoing);
      cli_json_int(&j, "resumed_from", (long long)ev->resumed_from);
      node_emit(n, &j, ev->outgoing ? origin_get(s, ev->id.b, 0) : 0);
      return;
    case LP2P_FILES_EV_DELIVERED:
      origin_get(s, ev->id.b, 1);
      node_text(n, "file %s delivered to %s", id, pb);
      if (!node_json_wanted(n)) return;
      cli_json_begin(&j);
      cli_json_str(&j, "event", "file-delivered");
      cli_json_str(&j, "id", id);
      cli_json_str(&j, "peer", pb);
      node_emit(n, &j, 0);
      return;
    case LP2P_FILES_EV_FAILED: {
      origin_get(s, ev->id.b, 1);
      char why[160];
      snprintf(why, sizeof why, "%s%s%s", ev->reason ? ev->reason : "failed", ev->err ? ": " : "",
               ev->err ? lp2p_strerror(ev->err) : "");
      node_text(n, "file %s to %s failed: %s", id, pb, why);
      if (!node_json_wanted(n)) return;
      cli_json_begin(&j);
      cli_json_str(&j, "event", "file-failed");
      cli_json_str(&j, "id", id);
      cli_json_str(&j, "error", why);
      node_emit(n, &j, 0);
      return;
    }
    case LP2P_FILES_EV_RECEIVED: {
      char sha[65];
      for (int i = 0; i < 32; i++) snprintf(sha + 2 * i, 3, "%02x", ev->sha256[i]);
      node_text(n, "file from %s: %s (%llu bytes, sha256 %s)", pb, ev->path, (unsigned long long)ev->total, sha);
      if (!node_json_wanted(n)) return;
      cli_json_begin(&j);
      cli_json_str(&j, "event", "file-received");
      cli_json_str(&j, "from", pb);
      cli_json_str(&j, "id", id);
      cli_json_str(&j, "path", ev->path);
      cli_json_int(&j, "size", (long long)ev->total);
      cli_json_str(&j, "sha256", sha);
      node_emit(n, &j, 0);
      return;
    }
    default: return;
  }
}

static int msg_setup(node *n, void *st) {
  msg_state *s = st;
  s->n = n;
  const char *dd = node_data_dir(n);
  if (!dd[0]) return 0; /* no data directory: no messaging (commands say so) */
  char db[4096], fdb[4096];
  snprintf(db, sizeof db, "%s/messages.db", dd);
  snprintf(fdb, sizeof fdb, "%s/files.db", dd);
  if (s->recv_dir) snprintf(s->recv, sizeof s->recv, "%s", s->recv_dir);
  else snprintf(s->recv, sizeof s->recv, "%s/received", dd);
  if (mkdir(s->recv, 0700) < 0 && errno != EEXIST)
    return cli_error("listen: cannot create %s: %s", s->recv, strerror(errno));
  lp2p_msg_config mc;
  lp2p_msg_config_default(&mc);
  mc.db_path = db;
  mc.manual_ack = 1; /* received messages stay in the inbox until `inbox` takes them */
  mc.on_event = on_msg;
  mc.ud = s;
  if (s->have_rate) {
    mc.rate_msgs_per_s = (uint32_t)s->rate;
    mc.rate_msgs_burst = (uint32_t)(s->rate < 10 ? 10 : s->rate);
  }
  if (s->have_attempts) mc.max_attempts = (uint32_t)s->attempts;
  if (s->have_backoff) mc.backoff_base_ms = s->backoff;
  if (s->have_ttl) mc.ttl_ms = s->ttl * 1000;
  int rv = lp2p_msg_add(node_swarm(n), &mc, &s->ms);
  if (rv < 0) return cli_error("listen: messaging (%s): %s", db, lp2p_strerror(rv));
  lp2p_files_config fc;
  lp2p_files_config_default(&fc);
  fc.db_path = fdb;
  fc.recv_dir = s->recv;
  fc.on_event = on_file;
  fc.ud = s;
  if (s->have_max_file) fc.max_file_size = s->max_file;
  if (s->have_attempts) fc.max_attempts = (uint32_t)s->attempts;
  if (s->have_backoff) fc.backoff_base_ms = s->backoff;
  rv = lp2p_files_add(node_swarm(n), &fc, &s->fs);
  if (rv < 0) return cli_error("listen: file transfer (%s): %s", fdb, lp2p_strerror(rv));
  return 0;
}

/* splits "PEER REST": args modified; *rest points after the blanks */
static char *split_peer(char *args, char **rest) {
  char *p = args;
  while (*p && *p != ' ' && *p != '\t') p++;
  if (!*p) {
    *rest = p;
    return args;
  }
  *p++ = 0;
  while (*p == ' ' || *p == '\t') p++;
  *rest = p;
  return args;
}

typedef struct inbox_ctx {
  msg_state *s;
  uint64_t origin;
  int count;
  lp2p_peer_id from[256];
  lp2p_msg_id ids[256];
} inbox_ctx;

static void inbox_one(void *ud, const lp2p_peer_id *from, const lp2p_msg_id *id, uint64_t seq,
                      const uint8_t *body, size_t len) {
  inbox_ctx *c = ud;
  node *n = c->s->n;
  char hid[33], pb[LP2P_PEER_ID_MAX_TEXT];
  hex16(id->b, hid);
  nc_peer_str(from, pb, sizeof pb);
  char *text = malloc(len + 1);
  if (!text) return;
  memcpy(text, body, len);
  text[len] = 0;
  node_text(n, "inbox: %s from %s: %s", hid, pb, text);
  if (node_json_wanted(n)) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "inbox-message");
    cli_json_str(&j, "from", pb);
    cli_json_str(&j, "id", hid);
    cli_json_int(&j, "seq", (long long)seq);
    cli_json_str(&j, "text", text);
    node_emit(n, &j, c->origin);
  }
  free(text);
  if (c->count < 256) {
    c->from[c->count] = *from;
    c->ids[c->count] = *id;
  }
  c->count++;
}

static int msg_command(node *n, void *st, uint64_t origin, const char *verb, char *args) {
  msg_state *s = st;
  int is_send = !strcmp(verb, "send"), is_file = !strcmp(verb, "send-file"), is_inbox = !strcmp(verb, "inbox");
  if (!is_send && !is_file && !is_inbox) return 0;
  char line[300];
  snprintf(line, sizeof line, "%s %.280s", verb, args);
  if (!s->ms || !s->fs) {
    node_command_error(n, origin, line, "messaging needs a data directory");
    return 1;
  }
  if (is_inbox) {
    inbox_ctx *c = calloc(1, sizeof *c);
    if (!c) return 1;
    c->s = s;
    c->origin = origin;
    int rv = lp2p_msg_inbox(s->ms, 256, inbox_one, c);
    if (rv < 0) {
      node_command_error(n, origin, line, lp2p_strerror(rv));
      free(c);
      return 1;
    }
    for (int i = 0; i < c->count && i < 256; i++) lp2p_msg_inbox_ack(s->ms, &c->from[i], &c->ids[i]);
    if (node_json_wanted(n)) {
      cli_json j;
      cli_json_begin(&j);
      cli_json_str(&j, "event", "inbox-done");
      cli_json_int(&j, "count", c->count);
      node_emit(n, &j, origin);
    }
    node_text(n, "inbox: %d message%s", c->count, c->count == 1 ? "" : "s");
    free(c);
    return 1;
  }
  char *rest;
  char *peer_txt = split_peer(args, &rest);
  lp2p_peer_id peer;
  int rv = *peer_txt ? node_parse_peer(n, peer_txt, &peer) : LP2P_ERR_INVAL;
  if (rv < 0 || !*rest) {
    node_command_error(n, origin, line, is_send ? "usage: send PEER TEXT" : "usage: send-file PEER PATH");
    return 1;
  }
  if (is_send) {
    lp2p_msg_id id;
    rv = lp2p_msg_send(s->ms, &peer, (const uint8_t *)rest, strlen(rest), &id);
    if (rv < 0) {
      node_command_error(n, origin, line, lp2p_strerror(rv));
      return 1;
    }
    origin_put(s, id.b, origin);
  } else {
    lp2p_files_id id;
    rv = lp2p_files_send(s->fs, &peer, rest, &id);
    if (rv < 0) {
      char msg[200];
      snprintf(msg, sizeof msg, "%s: %s", rest, lp2p_strerror(rv));
      node_command_error(n, origin, line, msg);
      return 1;
    }
    origin_put(s, id.b, origin);
  }
  return 1;
}

static void msg_teardown(node *n, void *st) {
  msg_state *s = st;
  (void)n;
  while (s->origins) {
    origin_ent *e = s->origins;
    s->origins = e->next;
    free(e);
  }
}

const node_module node_mod_msg = {
    .name = "msg",
    .opts = msg_opts,
    .n_opts = sizeof msg_opts / sizeof *msg_opts,
    .opt = msg_opt,
    .usage = "Messaging and files (DATA_DIR/messages.db, files.db; received files in DATA_DIR/received):\n"
             "  commands: send PEER TEXT, send-file PEER PATH, inbox (lists and takes received messages)\n"
             "  events: message-queued {id, peer}, message-delivered {id, peer}, message-failed {id, peer,\n"
             "  error, attempts}, message-received {from, id, seq, text}, file-queued {id, total},\n"
             "  file-progress {id, bytes, total, rate, eta_ms, outgoing}, file-delivered {id, peer},\n"
             "  file-failed {id, error}, file-received {from, id, path, size, sha256},\n"
             "  inbox-message {from, id, seq, text}, inbox-done {count}\n",
    .state_size = sizeof(msg_state),
    .setup = msg_setup,
    .command = msg_command,
    .teardown = msg_teardown,
    .commands = "send PEER TEXT, send-file PEER PATH, inbox",
};
