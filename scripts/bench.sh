#!/usr/bin/env bash
# make bench, part one: boot overhead of init=/sbin/init-overlay (tmpfs) over a
# direct init=/sbin/init, from the initramfs's switch_root to the real
# /sbin/init, on the guest clock. BOOTS (default 7) boots per variant.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
./scripts/deps.sh
[ -x bin/overlayupd ] || make build
export OVERLAYUPD_BIN=${OVERLAYUPD_BIN:-$PWD/bin/overlayupd}
set +e
OVERLAYUPD_BENCH=${BOOTS:-7} go test -count=1 -timeout 30m -run '^TestBench$' -v ./tests/ |
  grep -v -E '^(=== (RUN|PAUSE|CONT)|PASS$|ok )'
exit "${PIPESTATUS[0]}"
