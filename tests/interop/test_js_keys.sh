#!/usr/bin/env bash
# test_js_keys.sh - js-libp2p writes private keys (Ed25519, secp256k1, RSA-2048) with
# privateKeyToProtobuf(); `lp2p-node id --identity FILE` must load each one and print the same
# peer id as js's peerIdFromPrivateKey() on its first line.
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
    echo "FAIL $type: keygen.mjs failed: $(cat "$tmp/js.err")"; fail=$((fail + 1)); continue
  fi
  out="$("$node_exe" id --identity "$key" 2>"$tmp/c.err")"; rc=$?
  got="$(printf '%s\n' "$out" | head -n 1)"
  if [ "$rc" = 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]; then
    echo "ok   $type: $got"; pass=$((pass + 1))
  else
    echo "FAIL $type: js=$want lp2p-node(rc=$rc)=$got $(head -c 300 "$tmp/c.err")"; fail=$((fail + 1))
  fi
done

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
