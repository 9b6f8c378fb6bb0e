#!/usr/bin/env bash
# test_js_keys.sh - key files cross both ways between js-libp2p and lp2p, for Ed25519, secp256k1
# and RSA-2048:
#   js -> C: js writes privateKeyToProtobuf(key); `lp2p-node id --identity FILE` must print the
#            same peer id as js's peerIdFromPrivateKey() on its first line.
#   C -> js: `lp2p-node id --identity NEW --key-type T` creates a key file; js must load it
#            (privateKeyFromProtobuf), derive the same peer id and type, and re-encode it to the
#            very same bytes (lp2p writes the canonical form js writes).
# Env (set by ctest): LP2P_NODE, LP2P_SOURCE_DIR. Needs scripts/deps (pinned Node 22 + js-libp2p).
set -uo pipefail
src="${LP2P_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
node_exe="${LP2P_NODE:-$src/build/lp2p-node}"
js="$src/scripts/node"
keygen="$src/tests/interop/js/keygen.mjs"

if ! "$js" --version >/dev/null 2>&1; then
  echo "FAIL: pinned Node is missing (run scripts/deps)"; echo "0 passed, 1 failed"; exit 1
fi
if [ ! -x "$node_exe" ]; then
  echo "FAIL: lp2p-node not found at $node_exe"; echo "0 passed, 1 failed"; exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

for type in Ed25519 secp256k1 RSA; do
  key="$tmp/$type.key"
  if ! want="$("$js" "$keygen" "$type" "$key" 2>"$tmp/js.err")"; then
    echo "FAIL js->C $type: keygen.mjs failed: $(cat "$tmp/js.err")"; fail=$((fail + 1)); continue
  fi
  out="$("$node_exe" id --identity "$key" 2>"$tmp/c.err")"; rc=$?
  got="$(printf '%s\n' "$out" | head -n 1)"
  if [ "$rc" = 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]; then
    echo "ok   js->C $type: $got"; pass=$((pass + 1))
  else
    echo "FAIL js->C $type: js=$want lp2p-node(rc=$rc)=$got $(head -c 300 "$tmp/c.err")"; fail=$((fail + 1))
  fi
done

for type in ed25519 secp256k1 rsa; do
  key="$tmp/c-$type.key"
  out="$("$node_exe" id --identity "$key" --key-type "$type" 2>"$tmp/c.err")"; rc=$?
  mine="$(printf '%s\n' "$out" | head -n 1)"
  if [ "$rc" != 0 ] || [ ! -s "$key" ]; then
    echo "FAIL C->js $type: lp2p-node id --key-type $type (rc=$rc): $(head -c 300 "$tmp/c.err")"
    fail=$((fail + 1)); continue
  fi
  if ! js_out="$("$js" "$keygen" --read "$key" 2>"$tmp/js.err")"; then
    echo "FAIL C->js $type: js cannot load the key: $(head -c 300 "$tmp/js.err")"; fail=$((fail + 1)); continue
  fi
  { read -r js_id; read -r js_type; read -r js_form; } <<<"$js_out"
  want_type="$(tr '[:upper:]' '[:lower:]' <<<"$js_type")"
  if [ "$js_id" = "$mine" ] && [ "$want_type" = "$type" ] && [ "$js_form" = canonical ]; then
    echo "ok   C->js $type: $mine"; pass=$((pass + 1))
  else
    echo "FAIL C->js $type: lp2p-node=$mine js=$js_id type=$js_type encoding=$js_form"; fail=$((fail + 1))
  fi
done

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
