#!/usr/bin/env bash
# make demo: boots a device image under QEMU and narrates the main job of
# overlayupd: a tmpfs overlay over a read-only root, gone after a reboot; then
# the squashfs store: apply an image, boot it as a trial, commit, roll back;
# then the btrfs store: update in a snapshot, trial, commit, then persist.
# Run as root on Debian 12; `make demo` builds bin/overlayupd first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
./scripts/deps.sh
[ -x bin/overlayupd ] || make build
export OVERLAYUPD_BIN=${OVERLAYUPD_BIN:-$PWD/bin/overlayupd}
echo "overlayupd demo: a tmpfs overlay (two boots), a squashfs store: apply, trial, commit, rollback (four boots), and a btrfs store: update in a snapshot, trial, commit, persist (five boots); QEMU in software emulation, a few seconds a boot"
set +e
OVERLAYUPD_DEMO=1 go test -count=1 -timeout 10m -run '^TestDemo$' -v ./tests/ |
  grep -v -E '^(=== (RUN|PAUSE|CONT)|--- PASS|PASS$|ok )'
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  echo "overlayupd demo: FAILED (console logs under tests/logs/)" >&2
  exit "$rc"
fi
echo "overlayupd demo: done"
