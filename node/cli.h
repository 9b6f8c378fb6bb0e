/* node/cli.h - the small framework shared by lp2p-node subcommands.
 *
 * Conventions every subcommand follows:
 *  - `--help` / `-h` prints the command's usage on stdout and exits 0.
 *  - Errors are one line on stderr, "lp2p-node: <message>", with a non-zero
 *    exit: CLI_EXIT_USAGE (2) for bad invocations (unknown option or command,
 *    missing or bad option value), CLI_EXIT_FAIL (1) for everything else.
 *  - `--json` switches stdout to machine output: one JSON object per line.
 *
 * A subcommand is a cli_command in node/main.c's table; it declares its
 * options as a cli_opt array and parses them with cli_parse(). */
#ifndef LP2P_NODE_CLI_H
#define LP2P_NODE_CLI_H
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_PROG "lp2p-node"
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

typedef struct cli_command {
  const char *name;
  const char *summary; /* one line, for the top-level usage */
  /* argv[0] is the command name; returns the process exit status. */
  int (*run)(const struct cli_command *cmd, int argc, char **argv);
} cli_command;

typedef struct cli_opt {
  const char *name;     /* long name without "--" */
  const char *arg_name; /* NULL for a flag, else the value's placeholder ("FILE") */
  const char *help;
} cli_opt;

/* Shared option descriptions. */
#define CLI_OPT_JSON                                                                                         \
  { "json", NULL, "machine-readable output: one JSON object per line" }
#define CLI_OPT_HELP                                                                                         \
  { "help", NULL, "show this help" }

/* Called once per option found: idx indexes opts, val is the value (NULL for
 * flags; points into argv). Return 0 to go on, or an exit status (after
 * printing an error with cli_error) to stop. */
typedef int (*cli_opt_cb)(void *ud, size_t idx, const char *val);

/* Parses argv[1..argc): "--name value", "--name=value", "--flag", "-h".
 * Positional arguments are not accepted. Returns 0 when all options were
 * handled, CLI_HELP_SHOWN when --help/-h was given (the caller prints usage
 * and exits 0), or an exit status after printing a one-line error. "help"
 * must be one of opts. */
#define CLI_HELP_SHOWN (-1)
int cli_parse(int argc, char **argv, const cli_opt *opts, size_t n_opts, cli_opt_cb cb, void *ud);

/* Prints the option list (aligned, one per line). */
void cli_print_opts(FILE *f, const cli_opt *opts, size_t n_opts);

/* "lp2p-node: <message>\n" on stderr. Always returns CLI_EXIT_FAIL. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, for bad invocations: returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- JSON lines ---- */
/* A one-line JSON object under construction (growable; cli_json_emit frees). */
typedef struct cli_json {
  char *buf;
  size_t len, cap;
  int fields;
  int oom;
} cli_json;
void cli_json_begin(cli_json *j);
void cli_json_str(cli_json *j, const char *key, const char *val); /* val NULL => null */
void cli_json_int(cli_json *j, const char *key, long long val);
void cli_json_bool(cli_json *j, const char *key, int val);
/* "key":["v0","v1",...]; NULL entries are written as "". */
void cli_json_str_array(cli_json *j, const char *key, const char *const *v, size_t n);
/* Writes the object and a newline to f, flushes and frees the buffer. Returns
 * 0, or -1 on write/allocation failure. */
int cli_json_emit(cli_json *j, FILE *f);
/* Closes the object and adds the newline: j->buf/j->len then hold the line
 * (the caller frees j->buf). Returns 0, or -1 after an allocation failure. */
int cli_json_end(cli_json *j);

/* ---- paths ---- */
/* Data directory per the XDG base directory spec: $XDG_DATA_HOME if set to an
 * absolute path, else $HOME/.local/share; then "/lp2p/<leaf>". Returns 0, or -1
 * (no usable home directory / too long). */
int cli_data_path(const char *leaf, char *out, size_t cap);

#endif
