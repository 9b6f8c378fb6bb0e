/* node/cmd_id.c - `lp2p-node id`: print this node's peer id, creating the
 * identity key file on first use. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "lp2p/keys.h"
#include "lp2p/peerid.h"

enum { OPT_IDENTITY, OPT_KEY_TYPE, OPT_JSON, OPT_HELP };
static const cli_opt id_opts[] = {
    [OPT_IDENTITY] = {"identity", "FILE", "identity key file (default $XDG_DATA_HOME/lp2p/identity.key)"},
    [OPT_KEY_TYPE] = {"key-type", "TYPE", "ed25519 (default), secp256k1 or rsa: type of a new key"},
    [OPT_JSON] = CLI_OPT_JSON,
    [OPT_HELP] = CLI_OPT_HELP,
};

typedef struct id_args {
  const char *identity;
  int have_type;
  lp2p_key_type type;
  int json;
} id_args;

static void id_usage(FILE *f) {
  fprintf(f, "Usage: " CLI_PROG " id [--identity FILE] [--key-type ed25519|secp256k1|rsa] [--json]\n"
             "\n"
             "Prints the peer id (base58btc) of this node's identity key as the first line\n"
             "of stdout. The key file is created with a new key of --key-type when absent\n"
             "(mode 0600) and reused afterwards; giving a --key-type that differs from the\n"
             "existing key's type is an error.\n"
             "\n"
             "The default file is $XDG_DATA_HOME/lp2p/identity.key, or\n"
             "~/.local/share/lp2p/identity.key when XDG_DATA_HOME is unset.\n"
             "\n"
             "Options:\n");
  cli_print_opts(f, id_opts, sizeof id_opts / sizeof *id_opts);
  fprintf(f, "\nWith --json: {\"peer_id\":\"...\",\"key_type\":\"...\",\"identity\":\"<path>\"}\n");
}

static int on_opt(void *ud, size_t idx, const char *val) {
  id_args *a = ud;
  switch (idx) {
  case OPT_IDENTITY: a->identity = val; break;
  case OPT_JSON: a->json = 1; break;
  case OPT_KEY_TYPE:
    if (lp2p_key_type_parse(val, &a->type) || a->type == LP2P_KEY_ECDSA)
      return cli_usage_error("id: unsupported key type '%s' (ed25519, secp256k1 or rsa)", val);
    a->have_type = 1;
    break;
  }
  return 0;
}

/* Why a key file could not be read (errno is not carried through the library). */
static const char *why_unreadable(const char *path) {
  struct stat st;
  if (stat(path, &st)) return strerror(errno);
  if (S_ISDIR(st.st_mode)) return "is a directory";
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return strerror(errno);
  close(fd);
  return "read error";
}

/* Loads the key at path, or creates it. Returns an exit status. */
static int load_or_create(const id_args *a, const char *path, lp2p_privkey **out) {
  int rv = lp2p_privkey_load_file(out, path);
  if (rv == 0) {
    lp2p_key_type have = lp2p_privkey_type(*out);
    if (a->have_type && have != a->type) {
      lp2p_privkey_free(*out);
      *out = NULL;
      return cli_error(
          "id: identity %s holds a key of type %s, not %s (use another --identity or drop --key-type)", path,
          lp2p_key_type_name(have), lp2p_key_type_name(a->type));
    }
    return CLI_EXIT_OK;
  }
  if (rv == LP2P_ERR_KEY) return cli_error("id: identity %s is corrupt (not a libp2p private key)", path);
  if (rv == LP2P_ERR_IO) return cli_error("id: cannot read identity %s: %s", path, why_unreadable(path));
  if (rv != LP2P_ERR_NOT_FOUND) return cli_error("id: cannot load identity %s: %s", path, lp2p_strerror(rv));

  lp2p_key_type type = a->have_type ? a->type : LP2P_KEY_ED25519;
  if ((rv = lp2p_privkey_generate(out, type, 0)))
    return cli_error("id: cannot generate a %s key: %s", lp2p_key_type_name(type), lp2p_strerror(rv));
  errno = 0;
  if ((rv = lp2p_privkey_save_file(*out, path))) {
    int err = errno;
    lp2p_privkey_free(*out);
    *out = NULL;
    return cli_error("id: cannot write identity %s: %s%s%s", path, lp2p_strerror(rv), err ? ": " : "",
                     err ? strerror(err) : "");
  }
  return CLI_EXIT_OK;
}

int cmd_id(const cli_command *cmd, int argc, char **argv) {
  (void)cmd;
  id_args a = {0};
  int rv = cli_parse(argc, argv, id_opts, sizeof id_opts / sizeof *id_opts, on_opt, &a);
  if (rv == CLI_HELP_SHOWN) {
    id_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (rv) return rv;

  char path[PATH_MAX];
  if (a.identity) {
    if (strlen(a.identity) >= sizeof path) return cli_usage_error("id: identity path too long");
    strcpy(path, a.identity);
  } else if (cli_data_path("identity.key", path, sizeof path)) {
    return cli_error("id: no home directory for the default identity (set XDG_DATA_HOME or use --identity)");
  }

  lp2p_privkey *key = NULL;
  if ((rv = load_or_create(&a, path, &key))) return rv;
  lp2p_peer_id id;
  char text[LP2P_PEER_ID_MAX_TEXT];
  rv = lp2p_peer_id_from_pubkey(lp2p_privkey_public(key), &id);
  if (!rv && (rv = lp2p_peer_id_to_string(&id, text, sizeof text)) > 0) rv = 0;
  lp2p_key_type type = lp2p_privkey_type(key);
  lp2p_privkey_free(key);
  if (rv) return cli_error("id: cannot compute the peer id: %s", lp2p_strerror(rv));

  if (a.json) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "peer_id", text);
    cli_json_str(&j, "key_type", lp2p_key_type_name(type));
    cli_json_str(&j, "identity", path);
    if (cli_json_emit(&j, stdout)) return cli_error("id: cannot write output");
  } else if (printf("%s\n", text) < 0 || fflush(stdout)) {
    return cli_error("id: cannot write output");
  }
  return CLI_EXIT_OK;
}
