#!/usr/bin/env bash
# make bench.
# Part one: boot overhead of init=/sbin/init-overlay (tmpfs) over a direct
# init=/sbin/init, from the initramfs's switch_root to the real /sbin/init, on
# the guest clock. BOOTS (default 7) boots per variant.
# Part two: the squashfs store.
#   apply throughput: `overlayupd apply` of a 256 MiB and a 1 GiB image into a
#   store directory on the host's disk (BENCH_DIR, default the repository)
#   against cp + sync of the same file to the same filesystem, and apply's
#   peak RSS (targets: >= 0.8x cp, RSS < 64 MiB and flat with size);
#   commit latency: `overlayupd commit --force` on a store in a loop-mounted
#   ext4, inside a private mount namespace (nothing is mounted on the host),
#   median of COMMITS (default 15) against the same number of plain
#   rename + fsync(dir) pairs in the same filesystem (target: < 50 ms).
# PARTS (default "1 2") picks the parts; APPLY_SIZES (default "256 1024", MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
./scripts/deps.sh
[ -x bin/overlayupd ] || make build
export OVERLAYUPD_BIN=${OVERLAYUPD_BIN:-$PWD/bin/overlayupd}
BIN=$OVERLAYUPD_BIN
PARTS=${PARTS:-1 2}
rc=0

part1() {
  set +e
  OVERLAYUPD_BENCH=${BOOTS:-7} go test -count=1 -timeout 30m -run '^TestBench$' -v ./tests/ |
    grep -v -E '^(=== (RUN|PAUSE|CONT)|PASS$|ok )'
  rc=${PIPESTATUS[0]}
  set -e
}

# now prints the time in seconds (bash's clock: no fork).
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.6f", b - a}'; }
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# peak_rss CMD... runs CMD and prints its peak RSS in KiB on fd 3; with GNU
# time when installed, else by polling VmHWM in /proc/PID/status.
peak_rss() {
  if [ -x /usr/bin/time ]; then
    local f
    f=$(mktemp)
    /usr/bin/time -v -o "$f" "$@" >/dev/null
    local r=$?
    awk -F': ' '/Maximum resident set size/ {print $2}' "$f" >&3
    rm -f "$f"
    return $r
  fi
  "$@" >/dev/null &
  local pid=$! hwm=0 v
  while kill -0 "$pid" 2>/dev/null; do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
    sleep 0.02
  done
  wait "$pid"
  local r=$?
  echo "$hwm" >&3
  return $r
}

# small_image DIR OUT [PAYLOAD_MIB]: a squashfs root with busybox as /sbin/init's
# shell and an incompressible payload, data uncompressed (apply's cost, not
# mksquashfs's, is measured).
make_image() {
  local tree=$1/tree out=$2 mb=${3:-0}
  rm -rf "$tree"
  mkdir -p "$tree/bin" "$tree/sbin" "$tree/etc"
  cp /bin/busybox "$tree/bin/busybox"
  ln -s busybox "$tree/bin/sh"
  printf '#!/bin/sh\nexec /bin/sh\n' >"$tree/sbin/init"
  chmod 755 "$tree/sbin/init"
  [ "$mb" -gt 0 ] && head -c "${mb}M" /dev/urandom >"$tree/payload"
  mksquashfs "$tree" "$out" -noappend -quiet -no-progress -all-root -noI -noD -noF -noX >/dev/null
  rm -rf "$tree"
}

apply_bench() {
  local work=$1 sizes=${APPLY_SIZES:-256 1024}
  make_image "$work" "$work/small.sqsh"
  mkdir -p "$work/store"
  "$BIN" store init "$work/store" --image "$work/small.sqsh" >/dev/null
  echo
  echo "apply throughput: store directory $work/store ($(df --output=source,fstype "$work" | tail -1 | tr -s ' '))"
  echo "best of 3 runs each, alternating; the source file is in the page cache for both"
  printf '%-10s %12s %12s %8s %16s\n' image "cp+sync" apply ratio "apply peak RSS"
  local rss_list=() worst=99
  for mb in $sizes; do
    local img=$work/image-$mb.sqsh
    make_image "$work" "$img" "$mb"
    local bytes best_cp=0 best_ap=0 rss=0
    bytes=$(stat -c %s "$img")
    cat "$img" >/dev/null
    sync
    for _ in 1 2 3; do
      local t0 t1 r
      t0=$(now)
      cp "$img" "$work/store/copy.sqsh"
      sync
      t1=$(now)
      best_cp=$(awk -v b="$bytes" -v s="$(elapsed "$t0" "$t1")" -v m="$best_cp" 'BEGIN {v = b / 1048576 / s; print (v > m ? v : m)}')
      rm -f "$work/store/copy.sqsh"
      sync

      t0=$(now)
      r=$(peak_rss "$BIN" apply --store "$work/store" "$img" 3>&1)
      t1=$(now)
      best_ap=$(awk -v b="$bytes" -v s="$(elapsed "$t0" "$t1")" -v m="$best_ap" 'BEGIN {v = b / 1048576 / s; print (v > m ? v : m)}')
      [ "$r" -gt "$rss" ] && rss=$r
      rm -f "$work"/store/roots/root.try-*.sqsh
      sync
    done
    rm -f "$img"
    local ratio
    ratio=$(awk -v a="$best_ap" -v c="$best_cp" 'BEGIN {printf "%.2f", a / c}')
    printf '%-10s %8.0f MiB/s %6.0f MiB/s %7sx %12.1f MiB\n' "$mb MiB" "$best_cp" "$best_ap" "$ratio" "$(awk -v k="$rss" 'BEGIN {print k / 1024}')"
    rss_list+=("$rss")
    worst=$(awk -v a="$ratio" -v w="$worst" 'BEGIN {print (a < w ? a : w)}')
  done
  local max_rss min_rss
  max_rss=$(printf '%s\n' "${rss_list[@]}" | sort -n | tail -1)
  min_rss=$(printf '%s\n' "${rss_list[@]}" | sort -n | head -1)
  echo "apply vs cp+sync: worst ratio ${worst}x ($(awk -v w="$worst" 'BEGIN {print (w >= 0.8 ? "meets" : "MISSES")}') the 0.8x target);" \
    "peak RSS $(awk -v k="$max_rss" 'BEGIN {printf "%.1f", k / 1024}') MiB" \
    "($(awk -v k="$max_rss" 'BEGIN {print (k < 65536 ? "under" : "OVER")}') 64 MiB), growth across sizes $(awk -v a="$max_rss" -v b="$min_rss" 'BEGIN {printf "%.1f", (a - b) / 1024}') MiB"
  [ -x /usr/bin/time ] || echo "(peak RSS by polling VmHWM every 20 ms; install the 'time' package for GNU time's exact figure)"
}

# renamefsync.go: the baseline, N rounds of P rename + fsync(dir) pairs.
read -r -d '' RENAMEFSYNC <<'EOF' || true
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

func main() {
	dir := os.Args[1]
	rounds, _ := strconv.Atoi(os.Args[2])
	pairs, _ := strconv.Atoi(os.Args[3])
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(a, []byte("x"), 0o644); err != nil {
		panic(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		panic(err)
	}
	var got []time.Duration
	for r := 0; r < rounds; r++ {
		t0 := time.Now()
		for p := 0; p < pairs; p++ {
			if err := os.Rename(a, b); err != nil {
				panic(err)
			}
			if err := d.Sync(); err != nil {
				panic(err)
			}
			a, b = b, a
		}
		got = append(got, time.Since(t0))
	}
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	fmt.Printf("%.6f\n", got[len(got)/2].Seconds())
}
EOF

# commit_inner runs in the private mount namespace.
commit_inner() {
  local work=$1 n=$2 pairs=$3 helper=$4
  local mnt=$work/mnt
  mkdir -p "$mnt"
  truncate -s 256M "$work/store.ext4"
  mkfs.ext4 -q -F "$work/store.ext4"
  mount -o loop "$work/store.ext4" "$mnt"
  mkdir -p "$mnt/store" "$work/nohealth"
  "$BIN" store init "$mnt/store" --image "$work/small.sqsh" >/dev/null
  local times=() i t0 t1
  for ((i = 0; i <= n; i++)); do
    "$BIN" apply --store "$mnt/store" "$work/small.sqsh" >/dev/null
    sync
    t0=$(now)
    "$BIN" commit --force --store "$mnt/store" --health-dir "$work/nohealth" >/dev/null 2>&1
    t1=$(now)
    # the first commit has no previous root to retire: fewer renames.
    [ "$i" -gt 0 ] && times+=("$(elapsed "$t0" "$t1")")
  done
  local exec_times=()
  for ((i = 0; i < n; i++)); do
    t0=$(now)
    "$BIN" status --store "$mnt/store" >/dev/null
    t1=$(now)
    exec_times+=("$(elapsed "$t0" "$t1")")
  done
  mkdir -p "$mnt/pairs"
  local base
  base=$("$helper" "$mnt/pairs" "$n" "$pairs")
  local cm ex
  cm=$(printf '%s\n' "${times[@]}" | median)
  ex=$(printf '%s\n' "${exec_times[@]}" | median)
  echo
  echo "commit latency: store on a loop-mounted ext4 (private mount namespace), median of $n commits"
  awk -v c="$cm" -v b="$base" -v e="$ex" -v p="$pairs" -v n="$n" 'BEGIN {
    printf "  overlayupd commit --force (whole process)   %8.2f ms\n", c * 1000
    printf "  %d x rename + fsync(dir), in one process    %8.2f ms  (median of %d rounds)\n", p, b * 1000, n
    printf "  overlayupd status (exec + read, no fsync)   %8.2f ms\n", e * 1000
    printf "  ratio commit / baseline: %.1fx; commit minus the status floor: %.2f ms\n", c / b, (c - e) * 1000
    printf "  commit %s the 50 ms target\n", (c < 0.05 ? "meets" : "MISSES")
  }'
  umount "$mnt"
}

commit_bench() {
  local work=$1 n=${COMMITS:-15}
  # A commit with a previous root: trying -> next, prev -> rm-*, root -> prev,
  # next -> root, then rm-* deleted: 5 directory changes, each fsynced.
  local pairs=5
  mkdir -p "$work/helper"
  printf '%s\n' "$RENAMEFSYNC" >"$work/helper/main.go"
  printf 'module renamefsync\n' >"$work/helper/go.mod"
  (cd "$work/helper" && CGO_ENABLED=0 go build -o renamefsync .)
  unshare -m --propagation private bash -c "$(declare -f now elapsed median commit_inner); BIN='$BIN'; commit_inner '$work' '$n' '$pairs' '$work/helper/renamefsync'"
}

part2() {
  local work
  work=$(mktemp -d "${BENCH_DIR:-$PWD}/.bench-store-XXXXXX")
  trap 'rm -rf "'"$work"'"' EXIT
  echo "== make bench, part two: the squashfs store ($("$BIN" --version 2>/dev/null | head -1 || true))"
  apply_bench "$work"
  commit_bench "$work"
  rm -rf "$work"
  trap - EXIT
}

for p in $PARTS; do
  case $p in
  1) part1 ;;
  2) part2 ;;
  *) echo "bench: unknown part $p" >&2; exit 2 ;;
  esac
done
exit "$rc"
