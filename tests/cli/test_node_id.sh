#!/usr/bin/env bash
# test_node_id.sh - `lp2p-node id`: key creation and reuse, file mode, XDG default path, key types,
# spec-vector key files, corrupt/unreadable files, --json, --help and usage errors.
# Env (set by ctest): LP2P_NODE (binary), LP2P_SOURCE_DIR.
set -uo pipefail
src="${LP2P_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
node="${LP2P_NODE:-$src/build/lp2p-node}"
if [ ! -x "$node" ]; then
  echo "FAIL: lp2p-node not found at $node"; echo "0 passed, 1 failed"; exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
check() { # check NAME 'SHELL CONDITION' (evaluated here, may use && and ||)
  if eval "$2"; then ok "$1"; else bad "$1"; fi
}

# run ARGS...: sets rc, out (stdout), err (stderr); HOME and XDG_DATA_HOME point into $tmp
# unless the caller overrides them in the environment of `run`.
run() {
  "$node" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
  out="$(cat "$tmp/out")"; err="$(cat "$tmp/err")"
}
first_line() { printf '%s\n' "$out" | head -n 1; }
one_line_error() { # stderr is exactly one line starting with "lp2p-node: "
  [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && [[ "$err" == "lp2p-node: "* ]]
}
mode_of() { stat -c '%a' "$1"; }

export HOME="$tmp/home"
mkdir -p "$HOME"
unset XDG_DATA_HOME

# ---- creation and reuse (explicit file) ----
key="$tmp/keys/sub/node.key"
run id --identity "$key"
id1="$(first_line)"
check "create: exit 0" '[ "$rc" = 0 ]'
check "create: Ed25519 peer id by default" '[[ "$id1" =~ ^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$ ]]'
check "create: stderr empty" '[ -z "$err" ]'
check "create: file exists" '[ -f "$key" ]'
check "create: file mode 0600" '[ "$(mode_of "$key")" = 600 ]'
check "create: new parent dirs 0700" \
  '[ "$(mode_of "$tmp/keys/sub")" = 700 ] && [ "$(mode_of "$tmp/keys")" = 700 ]'
check "create: file is a 68-byte Ed25519 PrivateKey protobuf" \
  '[ "$(head -c 4 "$key" | xxd -p)" = 08011240 ] && [ "$(stat -c %s "$key")" = 68 ]'
run id --identity "$key"
check "reuse: same id" '[ "$rc" = 0 ] && [ "$(first_line)" = "$id1" ]'
run id --identity="$key" --key-type ed25519
check "reuse: matching --key-type accepted, --opt=value form" '[ "$rc" = 0 ] && [ "$(first_line)" = "$id1" ]'
run id --identity "$key" --key-type secp256k1
check "reuse: different --key-type is an error" '[ "$rc" = 1 ] && one_line_error && [ -z "$out" ]'
check "reuse: the key file is left untouched" '[ "$(stat -c %s "$key")" = 68 ]'

# ---- XDG default path ----
export XDG_DATA_HOME="$tmp/xdg"
run id
idx="$(first_line)"
check "xdg: exit 0" '[ "$rc" = 0 ]'
check "xdg: key at \$XDG_DATA_HOME/lp2p/identity.key" '[ -f "$XDG_DATA_HOME/lp2p/identity.key" ]'
check "xdg: mode 0600" '[ "$(mode_of "$XDG_DATA_HOME/lp2p/identity.key")" = 600 ]'
check "xdg: not the other key" '[ "$idx" != "$id1" ]'
run id
check "xdg: reused" '[ "$(first_line)" = "$idx" ]'
run id --json
check "xdg: --json identity is the default path" \
  '[ "$out" = "{\"peer_id\":\"$idx\",\"key_type\":\"ed25519\",\"identity\":\"$XDG_DATA_HOME/lp2p/identity.key\"}" ]'
unset XDG_DATA_HOME
run id
check "home: default ~/.local/share/lp2p/identity.key" \
  '[ "$rc" = 0 ] && [ -f "$HOME/.local/share/lp2p/identity.key" ]'
XDG_DATA_HOME=relative/dir run id
home_id="$(XDG_DATA_HOME= "$node" id | head -n 1)"
check "xdg: relative XDG_DATA_HOME ignored (falls back to ~/.local/share)" \
  '[ "$rc" = 0 ] && [ ! -e relative/dir ] && [ -n "$home_id" ] && [ "$(first_line)" = "$home_id" ]'

# ---- key types ----
declare -A prefix=([ed25519]='12D3KooW' [secp256k1]='16Uiu2HA' [rsa]='Qm')
for t in ed25519 secp256k1 rsa; do
  f="$tmp/types/$t.key"
  run id --identity "$f" --key-type "$t" --json
  check "type $t: created" '[ "$rc" = 0 ] && [ -f "$f" ] && [ "$(mode_of "$f")" = 600 ]'
  pid="$(printf '%s' "$out" | sed -n 's/^{"peer_id":"\([^"]*\)","key_type":"\([^"]*\)",.*/\1/p')"
  kt="$(printf '%s' "$out" | sed -n 's/^{"peer_id":"\([^"]*\)","key_type":"\([^"]*\)",.*/\2/p')"
  check "type $t: json key_type" '[ "$kt" = "$t" ]'
  check "type $t: id prefix ${prefix[$t]}" '[[ "$pid" == "${prefix[$t]}"* ]]'
  run id --identity "$f"
  check "type $t: reused without --key-type" '[ "$rc" = 0 ] && [ "$(first_line)" = "$pid" ]'
done
run id --identity "$tmp/x.key" --key-type ecdsa
check "type ecdsa: refused (usage error)" '[ "$rc" = 2 ] && one_line_error && [ ! -e "$tmp/x.key" ]'
run id --identity "$tmp/x.key" --key-type dsa
check "type dsa: refused (usage error)" '[ "$rc" = 2 ] && one_line_error'

# ---- key files from the spec vectors ----
vec() { # vec HEX FILE
  printf '%s' "$1" | xxd -r -p >"$2"
}
vec 080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e \
  "$tmp/v-ed.key"
run id --identity "$tmp/v-ed.key"
check "vector Ed25519 key file" \
  '[ "$rc" = 0 ] && [ "$(first_line)" = 12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq ]'
vec 0802122053dadf1d5a164d6b4acdb15e24aa4c5b1d3461bdbd42abedb0a4404d56ced8fb "$tmp/v-k1.key"
run id --identity "$tmp/v-k1.key" --json
check "vector secp256k1 key file (--json)" \
  '[ "$rc" = 0 ] && [ "$out" = "{\"peer_id\":\"16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY\",\"key_type\":\"secp256k1\",\"identity\":\"$tmp/v-k1.key\"}" ]'
# RSA-4096 and ECDSA vectors straight from the copied JSON vectors (no network, no js)
vjson="$src/tests/vectors/peer-ids.json"
rsa_hex="$(sed -n '/"key_type": "RSA"/,/}/s/.*"private_key_pb": "\([0-9a-f]*\)".*/\1/p' "$vjson")"
if [ -n "$rsa_hex" ]; then
  vec "$rsa_hex" "$tmp/v-rsa.key"
  run id --identity "$tmp/v-rsa.key"
  check "vector RSA-4096 key file" \
    '[ "$rc" = 0 ] && [ "$(first_line)" = QmaeANgBs1DTSxWSrPPtobgQuxW8XTfsS4ydbK4rCHzqxG ]'
else
  bad "vector RSA-4096 key file: hex not found in $vjson"
fi
ec_hex="$(sed -n '/"key_type": "ECDSA"/,/}/s/.*"private_key_pb": "\([0-9a-f]*\)".*/\1/p' "$vjson")"
vec "$ec_hex" "$tmp/v-ec.key"
run id --identity "$tmp/v-ec.key" --json
check "vector ECDSA key file (loads; key_type ecdsa)" \
  '[ "$rc" = 0 ] && [[ "$out" == "{\"peer_id\":\"QmVMT29id3TUASyfZZ6k9hmNyc2nYabCo4uMSpDw4zrgDk\",\"key_type\":\"ecdsa\","* ]]'
# legacy 96-byte Ed25519 form (js fixture)
vec 08011260c9d0016eb010e62542b895fc4e38ce8802267698e2c575c836bd9cdab8077639e931dd61a49ef18149a6e1ffc1761654370ff9a8e1b4c6bf0e4bbbf3965be825e931dd61a49ef18149a6e1ffc1761654370ff9a8e1b4c6bf0e4bbbf3965be825 \
  "$tmp/v-legacy.key"
run id --identity "$tmp/v-legacy.key"
check "legacy 96-byte Ed25519 key file" \
  '[ "$rc" = 0 ] && [ "$(first_line)" = 12D3KooWRWfGD8v8pLXtuRZaERfubgBZZEpkgPZKP4FojE2dtWgc ]'

# ---- corrupt and unreadable files ----
printf 'garbage' >"$tmp/corrupt.key"
run id --identity "$tmp/corrupt.key"
check "corrupt: non-zero exit, one-line error, no stdout" '[ "$rc" != 0 ] && one_line_error && [ -z "$out" ]'
check "corrupt: error names the file" '[[ "$err" == *"$tmp/corrupt.key"* ]]'
check "corrupt: file not replaced" '[ "$(cat "$tmp/corrupt.key")" = garbage ]'
head -c 40 "$tmp/v-ed.key" >"$tmp/trunc.key"
run id --identity "$tmp/trunc.key"
check "truncated key: error" '[ "$rc" != 0 ] && one_line_error'
: >"$tmp/empty.key"
run id --identity "$tmp/empty.key"
check "empty key file: error" '[ "$rc" != 0 ] && one_line_error'
run id --identity "$tmp"
check "directory as key file: error" '[ "$rc" != 0 ] && one_line_error'
if [ "$(id -u)" != 0 ]; then
  cp "$tmp/v-ed.key" "$tmp/noread.key"; chmod 000 "$tmp/noread.key"
  run id --identity "$tmp/noread.key"
  check "unreadable key file: error" '[ "$rc" != 0 ] && one_line_error'
  mkdir -p "$tmp/ro"; chmod 500 "$tmp/ro"
  run id --identity "$tmp/ro/new.key"
  check "unwritable directory: error" '[ "$rc" != 0 ] && one_line_error'
else
  echo "skip unreadable/unwritable checks (running as root)"
fi
run id --identity "$tmp/corrupt.key/sub.key"
check "parent is a file: error" '[ "$rc" != 0 ] && one_line_error'

# ---- help, usage, errors ----
run
check "no command: usage, exit 2" '[ "$rc" = 2 ] && [[ "$err" == *"Usage: lp2p-node"* ]]'
run --help
check "--help: usage on stdout, exit 0" \
  '[ "$rc" = 0 ] && [[ "$out" == *"Usage: lp2p-node"* ]] && [[ "$out" == *" id "* ]]'
run -h
check "-h: exit 0" '[ "$rc" = 0 ] && [[ "$out" == *"Usage: lp2p-node"* ]]'
run id --help
check "id --help: exit 0, mentions options" \
  '[ "$rc" = 0 ] && [[ "$out" == *"--identity"* ]] && [[ "$out" == *"--key-type"* ]] && [[ "$out" == *"--json"* ]]'
run help id
check "help id: same as id --help" '[ "$rc" = 0 ] && [[ "$out" == *"--key-type"* ]]'
run --version
check "--version" '[ "$rc" = 0 ] && [[ "$out" == "lp2p-node "* ]]'
run frobnicate
check "unknown command: exit 2, one-line error" \
  '[ "$rc" = 2 ] && one_line_error && [[ "$err" == *frobnicate* ]]'
run --frobnicate
check "unknown top-level option: exit 2" '[ "$rc" = 2 ] && one_line_error'
run id --frobnicate
check "unknown option: exit 2, one-line error" \
  '[ "$rc" = 2 ] && one_line_error && [[ "$err" == *frobnicate* ]]'
run id extra-arg
check "positional argument: exit 2" '[ "$rc" = 2 ] && one_line_error'
run id --identity
check "missing option value: exit 2" '[ "$rc" = 2 ] && one_line_error'
run id --json=yes
check "value for a flag: exit 2" '[ "$rc" = 2 ] && one_line_error'
run id --key-type
check "missing --key-type value: exit 2" '[ "$rc" = 2 ] && one_line_error'

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
