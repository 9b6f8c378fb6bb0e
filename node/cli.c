/* node/cli.c - option parsing, error reporting and JSON lines for lp2p-node. */
#include "cli.h"

#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void verror(const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  for (char *p = msg; *p; p++) /* keep it one line */
    if (*p == '\n' || *p == '\r') *p = ' ';
  fprintf(stderr, CLI_PROG ": %s\n", msg);
  fflush(stderr);
}

int cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verror(fmt, ap);
  va_end(ap);
  return CLI_EXIT_FAIL;
}

int cli_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verror(fmt, ap);
  va_end(ap);
  return CLI_EXIT_USAGE;
}

static const cli_opt *find_opt(const cli_opt *opts, size_t n, const char *name, size_t len, size_t *idx) {
  for (size_t i = 0; i < n; i++) {
    if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len)) {
      *idx = i;
      return &opts[i];
    }
  }
  return NULL;
}

int cli_parse(int argc, char **argv, const cli_opt *opts, size_t n_opts, cli_opt_cb cb, void *ud) {
  const char *cmd = argc > 0 ? argv[0] : CLI_PROG;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h")) return CLI_HELP_SHOWN;
    if (strncmp(a, "--", 2) || a[2] == 0) {
      if (a[0] == '-' && a[1] != 0) return cli_usage_error("%s: unknown option '%s' (see --help)", cmd, a);
      return cli_usage_error("%s: unexpected argument '%s' (see --help)", cmd, a);
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name), idx = 0;
    const cli_opt *o = find_opt(opts, n_opts, name, len, &idx);
    if (!o) return cli_usage_error("%s: unknown option '--%.*s' (see --help)", cmd, (int)len, name);
    if (!strcmp(o->name, "help")) {
      if (eq) return cli_usage_error("%s: option '--help' takes no value", cmd);
      return CLI_HELP_SHOWN;
    }
    const char *val = NULL;
    if (o->arg_name) {
      if (eq) {
        val = eq + 1;
      } else if (i + 1 < argc) {
        val = argv[++i];
      } else {
        return cli_usage_error("%s: option '--%s' needs a value (%s)", cmd, o->name, o->arg_name);
      }
      if (!*val) return cli_usage_error("%s: option '--%s' needs a non-empty value", cmd, o->name);
    } else if (eq) {
      return cli_usage_error("%s: option '--%s' takes no value", cmd, o->name);
    }
    int rv = cb(ud, idx, val);
    if (rv) return rv;
  }
  return 0;
}

void cli_print_opts(FILE *f, const cli_opt *opts, size_t n_opts) {
  for (size_t i = 0; i < n_opts; i++) {
    char left[64];
    snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].arg_name ? " " : "",
             opts[i].arg_name ? opts[i].arg_name : "");
    fprintf(f, "  %-26s %s\n", left, opts[i].help);
  }
}

/* ---- JSON lines ---- */

static void put(cli_json *j, const char *s, size_t n) {
  if (j->oom) return;
  if (j->len + n + 1 > j->cap) {
    size_t cap = j->cap ? j->cap : 128;
    while (cap < j->len + n + 1) cap *= 2;
    char *p = realloc(j->buf, cap);
    if (!p) {
      j->oom = 1;
      return;
    }
    j->buf = p;
    j->cap = cap;
  }
  memcpy(j->buf + j->len, s, n);
  j->len += n;
  j->buf[j->len] = 0;
}

static void put_str(cli_json *j, const char *s) {
  put(j, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[8];
    switch (*p) {
    case '"': put(j, "\\\"", 2); break;
    case '\\': put(j, "\\\\", 2); break;
    case '\n': put(j, "\\n", 2); break;
    case '\r': put(j, "\\r", 2); break;
    case '\t': put(j, "\\t", 2); break;
    default:
      if (*p < 0x20) {
        snprintf(esc, sizeof esc, "\\u%04x", *p);
        put(j, esc, 6);
      } else {
        put(j, (const char *)p, 1);
      }
    }
  }
  put(j, "\"", 1);
}

static void put_key(cli_json *j, const char *key) {
  if (j->fields++) put(j, ",", 1);
  put_str(j, key);
  put(j, ":", 1);
}

void cli_json_str_array(cli_json *j, const char *key, const char *const *v, size_t n) {
  put_key(j, key);
  put(j, "[", 1);
  for (size_t i = 0; i < n; i++) {
    if (i) put(j, ",", 1);
    put_str(j, v[i] ? v[i] : "");
  }
  put(j, "]", 1);
}

void cli_json_begin(cli_json *j) {
  memset(j, 0, sizeof *j);
  put(j, "{", 1);
}

void cli_json_str(cli_json *j, const char *key, const char *val) {
  put_key(j, key);
  if (val)
    put_str(j, val);
  else
    put(j, "null", 4);
}

void cli_json_int(cli_json *j, const char *key, long long val) {
  char num[32];
  int n = snprintf(num, sizeof num, "%lld", val);
  put_key(j, key);
  put(j, num, (size_t)n);
}

void cli_json_bool(cli_json *j, const char *key, int val) {
  put_key(j, key);
  put(j, val ? "true" : "false", val ? 4 : 5);
}

int cli_json_end(cli_json *j) {
  put(j, "}\n", 2);
  return j->oom ? -1 : 0;
}

int cli_json_emit(cli_json *j, FILE *f) {
  put(j, "}\n", 2);
  int rv = -1;
  if (!j->oom && fwrite(j->buf, 1, j->len, f) == j->len && fflush(f) == 0) rv = 0;
  free(j->buf);
  memset(j, 0, sizeof *j);
  return rv;
}

/* ---- paths ---- */

int cli_data_path(const char *leaf, char *out, size_t cap) {
  const char *xdg = getenv("XDG_DATA_HOME");
  int n;
  if (xdg && xdg[0] == '/') { /* relative values are invalid per the XDG spec */
    n = snprintf(out, cap, "%s/lp2p/%s", xdg, leaf);
  } else {
    const char *home = getenv("HOME");
    if (!home || home[0] != '/') {
      struct passwd *pw = getpwuid(getuid());
      home = pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
    }
    if (!home) return -1;
    n = snprintf(out, cap, "%s/.local/share/lp2p/%s", home, leaf);
  }
  return n > 0 && (size_t)n < cap ? 0 : -1;
}
