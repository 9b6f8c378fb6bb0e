#!/usr/bin/env bash
# test_sansio_guard.sh CMAKE BUILD_DIR TARGET:HEADER... - the sans-IO engines
# (core/, noise/, muxer/, kad/engine/, mdns/engine/) cannot include <uv.h> or
# socket headers: probe objects compiled with lp2p_engines' include path and
# definitions (tests/CMakeLists.txt) fail on each forbidden header with the
# guard's error, while the headers engines legitimately use still compile.
set -uo pipefail
cmake="$1" build="$2"
shift 2
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | tail -15 | sed 's/^/       /'; fail=$((fail + 1)); }

out="$("$cmake" --build "$build" --target sansio_probe_ok 2>&1)"
if [ $? = 0 ]; then ok "engine flags: allowed headers (libc, sodium, mbedtls, tomcrypt, protobuf-c, lp2p) compile"
else bad "engine flags: allowed headers compile" "$out"; fi

for pair in "$@"; do
  target="${pair%%:*}" header="${pair#*:}"
  out="$("$cmake" --build "$build" --target "$target" 2>&1)"; rc=$?
  if [ $rc != 0 ] && grep -qF "sans-IO engine: <$header> is forbidden here" <<<"$out"; then
    ok "engine flags: #include <$header> fails with the guard's error"
  else
    bad "engine flags: #include <$header> must fail (rc=$rc)" "$out"
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
