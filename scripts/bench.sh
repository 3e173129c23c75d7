#!/usr/bin/env bash
# make bench.
# Part one: boot overhead of init=/sbin/init-overlay (tmpfs) over a direct
# init=/sbin/init, from the initramfs's switch_root to the real /sbin/init, on
# the guest clock, against the stand-in for the original script
# (scripts/pid1bench/init-overlay.sh; target <= 0.7x), a minimal script and
# the Go floor, on a busybox root (every command of the script an applet of
# one static binary); then init-overlay and the stand-in again on a Debian
# bookworm root (TestBenchDebian: dash, and Debian's own dynamically linked
# mount, grep, mawk, coreutils), as on a real board. BOOTS (default 7) boots
# per variant; OVERLAYUPD_BENCH_INIT=PATH boots another init-overlay build
# beside the shipped one (busybox root).
# Part two: the squashfs store.
#   apply throughput: `overlayupd apply` of a 256 MiB and a 1 GiB image into a
#   store directory on the host's disk (BENCH_DIR, default the repository)
#   against cp + fsync of that file (`sync FILE`) to the same filesystem, and
#   apply's peak RSS (targets: >= 0.85x cp+fsync, RSS < 64 MiB and flat with size);
#   commit latency: `overlayupd commit --force` on a store in a loop-mounted
#   ext4, inside a private mount namespace (nothing is mounted on the host),
#   median of COMMITS (default 15) against the same number of plain
#   rename + fsync(dir) pairs in the same filesystem (target: < 50 ms).
# Part three: the native PID-1 path, no emulation. Each variant runs as PID 1
#   of a private PID and mount namespace on a loop-mounted read-only ext4 root,
#   timed on CLOCK_MONOTONIC from the exec of /sbin/init-overlay to the first
#   instruction of /sbin/init (scripts/pid1bench/: launch.c execs, init.c
#   reads the clock first and reports the root it sees). Variants, round-robin,
#   ROUNDS (default 25) each: overlayupd; the init-overlay shell script
#   (INIT_OVERLAY_SCRIPT, default the stand-in scripts/pid1bench/init-overlay.sh);
#   floor, a static Go program that only execs /sbin/init; direct, /sbin/init
#   itself. BENCH_VARIANTS (default "overlayupd script floor direct") picks
#   them; nocgo is overlayupd built with CGO_ENABLED=0. Target: overlayupd
#   <= 1.5x the floor. A variant that does not lay its overlay (or, for floor
#   and direct, does not reach /sbin/init as PID 1) fails the bench. The
#   image's files are in the page cache when the clock starts; BENCH_COLD=1
#   leaves them to be read through the fresh loop device inside the window.
# Part four: the btrfs store, on a sparse btrfs image (BTRFS_IMAGE_SIZE,
#   default 4G, in BENCH_DIR) loop-mounted at its top level inside a private
#   mount namespace, with a 1 GiB committed root. Whole processes, medians,
#   each against a baseline timed in the same run, alternating with it:
#   update -- true (UPDATES, default 5) against btrfs subvolume snapshot +
#   btrfs property set ro true (target: < 1 s); persist --upper of 10,000
#   changed files in a tmpfs (BTRFS_RUNS, default 3) against a snapshot +
#   rsync -aHAX + sync -f (target: >= 1.0x); apply of a 256 MiB squashfs
#   (BTRFS_RUNS) against btrfs subvolume create + unsquashfs + sync (target:
#   >= 0.8x); commit --force (COMMITS, default 15) against 5 rename +
#   fsync(dir) pairs (target: < 100 ms). A missed target is reported, a
#   failed command fails the bench.
# Part five: dm-verity. What the hash tree, the tree with a signature's
#   BLAKE2b-512, and the tree checked against a signed digest (minisign -t
#   "$(overlayupd digest IMG)": no BLAKE2b, no sha256 pass) add to staging an
#   image (Stage without the tree, with it, with the signature, with the
#   digest, round-robin, TREE_ROUNDS (default 5) each, an image of TREE_MB
#   (default 1024) MiB in BENCH_DIR; target >= 0.9x); what it adds
#   to a store boot (overlayupd.verity=off and =on alternating on one store
#   disk, BOOTS each, switch_root to the image's /sbin/init on the guest
#   clock; under TCG the guest's sha256 is the kernel's generic code).
# PARTS (default "1 2 3 4 5") picks the parts; APPLY_SIZES (default "256 1024", MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
./scripts/deps.sh
[ -x bin/overlayupd ] || make build
export OVERLAYUPD_BIN=${OVERLAYUPD_BIN:-$PWD/bin/overlayupd}
BIN=$OVERLAYUPD_BIN
INITBIN=${OVERLAYUPD_INIT_BIN:-$(dirname "$BIN")/init-overlay}
PARTS=${PARTS:-1 2 3 4 5}
rc=0

part1() {
  set +e
  OVERLAYUPD_BENCH=${BOOTS:-7} go test -count=1 -timeout 30m -run '^TestBench(Debian)?$' -v ./tests/ |
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
  printf '%-10s %12s %12s %8s %16s\n' image "cp+fsync" apply ratio "apply peak RSS"
  local rss_list=() worst=99 at1g=
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
      sync "$work/store/copy.sqsh" # fsync of that file only, as apply does; a global sync also waits for others' writes
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
    [ "$mb" = 1024 ] && at1g=$ratio
  done
  local max_rss min_rss
  max_rss=$(printf '%s\n' "${rss_list[@]}" | sort -n | tail -1)
  min_rss=$(printf '%s\n' "${rss_list[@]}" | sort -n | head -1)
  # The target (>= 0.85x) is set at 1 GiB; smaller images pay the fixed
  # costs (process, validation, records, renames) on less data.
  [ -n "$at1g" ] && echo "apply vs cp+fsync at 1 GiB: ${at1g}x ($(awk -v w="$at1g" 'BEGIN {print (w >= 0.85 ? "meets" : "MISSES")}') the 0.85x target)"
  echo "apply vs cp+fsync: worst ratio ${worst}x over all sizes;" \
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

# build_renamefsync DIR builds the baseline helper as DIR/renamefsync.
build_renamefsync() {
  mkdir -p "$1"
  printf '%s\n' "$RENAMEFSYNC" >"$1/main.go"
  printf 'module renamefsync\n' >"$1/go.mod"
  (cd "$1" && CGO_ENABLED=0 go build -o renamefsync .)
}

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
  build_renamefsync "$work/helper"
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

# PID1_SETUP runs as PID 1 of the private namespace, as testroot.Boot does:
# the image read-only with /proc (a fake /proc/cmdline on it), /sys, /dev and
# /run mounted, as an initramfs leaves them (initramfs-tools moves all four
# into the root before it runs init); then the launcher chroots and execs. The loop
# device is autoclear: it goes when the namespace dies with its init. With
# warm=1 every file of the image is read first, so that the timed window has
# no block I/O: the loop device's reads are done by a kernel worker of normal
# priority, which on a busy machine makes them the noisiest part.
read -r -d '' PID1_SETUP <<'EOF' || true
set -e
img=$1 mnt=$2 cmdline=$3 launch=$4 warm=$5
mount -o loop "$img" "$mnt"
mount -o remount,ro "$mnt"
[ "$warm" = 0 ] || find "$mnt" -xdev -type f -exec cat {} + >/dev/null
mount -t proc proc "$mnt/proc"
mount --bind "$cmdline" "$mnt/proc/cmdline"
mount -t sysfs sysfs "$mnt/sys"
mount -t devtmpfs devtmpfs "$mnt/dev"
mount -t tmpfs run "$mnt/run"
mkdir "$mnt/run/lock"
mount -t tmpfs lock "$mnt/run/lock"
exec "$launch" "$mnt" /sbin/init-overlay
EOF

# pid1_tree DIR INIT: the root every variant shares: busybox with the applets
# the init-overlay script calls, where it calls them, and INIT as /sbin/init.
pid1_tree() {
  local tree=$1 a
  mkdir -p "$tree"/{bin,sbin,usr/sbin,etc,proc,sys,dev,overlay,tmp,run}
  cp /bin/busybox "$tree/bin/busybox"
  for a in sh awk cat chmod grep mkdir mount mv rm sed touch umount uname; do
    ln -s busybox "$tree/bin/$a"
  done
  for a in insmod modprobe pivot_root; do ln -s ../bin/busybox "$tree/sbin/$a"; done
  ln -s ../../bin/busybox "$tree/usr/sbin/chroot"
  cp "$2" "$tree/sbin/init"
}

# pid1_run WORK VARIANT prints the variant's time from exec to /sbin/init in
# ns, or fails with the console output when it did not do its job. It runs
# under SCHED_FIFO: at boot nothing competes with PID 1, and on a shared
# machine the real-time class stands in for that (under load, the forks of the
# shell script otherwise vary threefold from run to run).
pid1_run() {
  local work=$1 v=$2 out t0 t1 root rw pid want=ext4
  case $v in init-overlay | overlayupd | script | nocgo | *=*) want=overlay ;; esac
  out=$(timeout 30 chrt -f 10 env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/ TERM=linux \
    unshare --mount --pid --fork --kill-child --propagation private \
    sh -c "$PID1_SETUP" sh "$work/${v%%=*}.ext4" "$work/mnt" "$work/cmdline" "$work/launch" "$PID1_WARM" </dev/null 2>&1) || true
  t0=$(sed -n 's/^T0=\([0-9]*\)$/\1/p' <<<"$out")
  read -r t1 pid root rw < <(sed -n 's/^T1=\([0-9]*\) PID=\([0-9]*\) ROOT=\([^ ]*\) RW=\([a-z]*\)$/\1 \2 \3 \4/p' <<<"$out") || true
  if [ -z "$t0" ] || [ -z "$t1" ] || [ "$pid" != 1 ] || [ "$root" != "$want" ] ||
    { [ "$want" = overlay ] && [ "$rw" != yes ]; }; then
    echo "bench: part 3: variant $v did not do its job within 30 s: want /sbin/init as PID 1" \
      "with / on $want$([ "$want" = overlay ] && echo ", writable"); got PID=${pid:-none}" \
      "ROOT=${root:-none} RW=${rw:-none}. Its console:" >&2
    sed 's/^/  | /' <<<"$out" >&2
    return 1
  fi
  echo $((t1 - t0))
}

part3() {
  local work rounds=${ROUNDS:-25} variants=${BENCH_VARIANTS:-init-overlay overlayupd script floor direct}
  PID1_WARM=1
  [ "${BENCH_COLD:-0}" = 0 ] || PID1_WARM=0
  local script=${INIT_OVERLAY_SCRIPT:-$PWD/scripts/pid1bench/init-overlay.sh}
  work=$(mktemp -d -t pid1bench-XXXXXX)
  trap 'rm -rf "'"$work"'"' EXIT
  echo "== make bench, part three: the native PID-1 path ($("$BIN" --version 2>/dev/null | head -1 || true))"
  gcc -static -O2 -o "$work/launch" scripts/pid1bench/launch.c
  gcc -static -O2 -o "$work/init" scripts/pid1bench/init.c
  printf 'root=/dev/vda ro init=/sbin/init-overlay\n' >"$work/cmdline"
  mkdir -p "$work/mnt"
  pid1_tree "$work/tree" "$work/init"
  local v prog
  for v in $variants; do
    case $v in
    init-overlay) prog=$INITBIN ;;
    overlayupd) prog=$BIN ;;
    script) prog=$script ;;
    floor)
      prog=$work/floor
      CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$prog" ./scripts/pid1bench/floor
      ;;
    floorimports)
      prog=$work/floorimports
      CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -tags 'osusergo netgo' -o "$prog" ./scripts/pid1bench/floorimports
      ;;
    nocgo)
      prog=$work/nocgo
      CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -tags 'osusergo netgo' -o "$prog" ./cmd/overlayupd
      ;;
    direct) prog= ;;
    *=*) prog=${v#*=} ;;
    *) echo "bench: part 3: unknown variant $v (init-overlay overlayupd script floor floorimports direct nocgo)" >&2; exit 2 ;;
    esac
    rm -f "$work/tree/sbin/init-overlay"
    if [ -n "$prog" ]; then cp "$prog" "$work/tree/sbin/init-overlay"; else ln -s init "$work/tree/sbin/init-overlay"; fi
    mkfs.ext4 -q -F -d "$work/tree" "$work/${v%%=*}.ext4" 64M >/dev/null
  done
  sync
  # Round 0 is not counted: it brings the images and the programs into the
  # page cache, so that every counted round starts alike.
  local r t
  for ((r = 0; r <= rounds; r++)); do
    for v in $variants; do
      t=$(pid1_run "$work" "$v") || exit 1
      [ "$r" -eq 0 ] || echo "$t" >>"$work/${v%%=*}.ns"
    done
  done
  pid1_report "$work" "$rounds" "$variants"
  rm -rf "$work"
  trap - EXIT
}

# pid1_report prints each variant's range and median, and the ratios of
# the medians (of the minimums too: the least disturbed runs).
pid1_report() {
  local work=$1 rounds=$2 variants=$3 v what
  echo
  echo "exec /sbin/init-overlay -> first instruction of /sbin/init (CLOCK_MONOTONIC), as PID 1 of a private"
  echo "namespace on a loop-mounted read-only ext4, its files $([ "$PID1_WARM" = 1 ] && echo "in the page cache" || echo "read through the loop device (BENCH_COLD)");"
  echo "$rounds rounds, variants interleaved, SCHED_FIFO ($(nproc) CPUs, kernel $(uname -r))"
  printf '  %-11s %9s %9s %9s\n' variant min median max
  declare -A med low
  for v in $variants; do
    case $v in
    init-overlay) what="$INITBIN, the PID-1 binary, classic mode, tmpfs" ;;
    overlayupd) what="$BIN, the CLI binary (it can boot too), classic mode, tmpfs" ;;
    script) what="${INIT_OVERLAY_SCRIPT:-the stand-in for the original, scripts/pid1bench/init-overlay.sh}, tmpfs" ;;
    floor) what="a static Go program that only execs /sbin/init" ;;
    floorimports) what="the floor linking (and initialising) the boot path's packages" ;;
    direct) what="/sbin/init itself: the C init's own exec and start" ;;
    nocgo) what="overlayupd built with CGO_ENABLED=0" ;;
    *=*) what="${v#*=}" ;;
    esac
    med[$v]=$(median <"$work/${v%%=*}.ns")
    low[$v]=$(sort -g "$work/${v%%=*}.ns" | head -1)
    awk -v v="$v" -v lo="${low[$v]}" -v m="${med[$v]}" -v hi="$(sort -g "$work/${v%%=*}.ns" | tail -1)" -v w="$what" \
      'BEGIN {printf "  %-11s %6.2f ms %6.2f ms %6.2f ms   %s\n", v, lo / 1e6, m / 1e6, hi / 1e6, w}'
  done
  local pair
  for pair in init-overlay/script init-overlay/floor floorimports/floor init-overlay/floorimports overlayupd/script overlayupd/nocgo nocgo/floor overlayupd/floor; do
    local x=${pair%/*} y=${pair#*/}
    [ -n "${med[$x]:-}" ] && [ -n "${med[$y]:-}" ] || continue
    awk -v p="$pair" -v a="${med[$x]}" -v b="${med[$y]}" -v la="${low[$x]}" -v lb="${low[$y]}" \
      'BEGIN {printf "  %-19s %5.2fx  (%+.2f ms; on the minimums %.2fx)\n", p ":", a / b, (a - b) / 1e6, la / lb}'
  done
  local b=init-overlay
  [ -n "${med[$b]:-}" ] || b=overlayupd
  if [ -n "${med[$b]:-}" ] && [ -n "${med[floor]:-}" ]; then
    awk -v n="$b" -v a="${med[$b]}" -v b="${med[floor]}" \
      'BEGIN {printf "  %s %s the target of at most 1.5x the floor\n", n, (a / b <= 1.5 ? "meets" : "MISSES")}'
  fi
  if [ -n "${med[$b]:-}" ] && [ -n "${med[script]:-}" ]; then
    awk -v n="$b" -v a="${med[$b]}" -v b="${med[script]}" \
      'BEGIN {printf "  %s %s the target of at most 0.15x the script\n", n, (a / b <= 0.15 ? "meets" : "MISSES")}'
  fi
}

# ---------------------------------------------------------------------------
# Part four: the btrfs store. Everything runs inside a private mount namespace
# (unshare --mount --propagation private): a sparse image in the work
# directory is formatted btrfs and loop-mounted at its top level
# (subvolid=5); the upper of persist is a tmpfs. When the namespace ends, its
# mounts go, and with the last one the loop device (autoclear).

# bt_fail prints what failed, with its output, and ends the bench.
bt_fail() {
  echo
  echo "bench: part 4: failed: $1" >&2
  [ -s "$BT_LOG" ] && sed 's/^/  | /' "$BT_LOG" >&2
  exit 1
}

# bt_timed CMD... runs CMD (a command or a function), its output in $BT_LOG,
# and sets BT_T to its wall time in seconds; a failure ends the bench.
# Functions given here chain their steps with && (errexit does not apply in
# a function called on the left of ||).
bt_timed() {
  local t0 t1
  t0=$EPOCHREALTIME
  "$@" >"$BT_LOG" 2>&1 || bt_fail "$*"
  t1=$EPOCHREALTIME
  BT_T=$(elapsed "$t0" "$t1")
}

# bt_q CMD... runs an untimed step quietly; a failure ends the bench.
bt_q() { "$@" >"$BT_LOG" 2>&1 || bt_fail "$*"; }

# bt_reset cancels what update, persist or apply staged (rollback keeps it as
# root.failed), then gc deletes it and waits until btrfs has freed it, so
# that every run starts from the same store: the committed root alone.
bt_reset() {
  bt_q "$BIN" rollback --store "$BT_MNT"
  bt_q "$BIN" gc --store "$BT_MNT"
  bt_q sync
}

# bt_drop SUBVOL deletes a baseline's subvolume; gc then waits until btrfs
# has freed it (`btrfs subvolume sync` alone waits for the periodic commit,
# up to 30 s; gc kicks the cleaner with BTRFS_IOC_SYNC).
bt_drop() {
  bt_q btrfs subvolume delete "$1"
  bt_q "$BIN" gc --store "$BT_MNT"
  bt_q sync
}

# bt_files DIR NAME N SIZE: N files DIR/NAME00.. of SIZE bytes of random data,
# in one split (no fork per file).
bt_files() {
  mkdir -p "$1"
  head -c $(($3 * $4)) /dev/urandom | split -b "$4" -a 4 -d - "$1/$2"
}

# bt_persist_tree DIR: the 10,000 files that persist changes, 100 directories
# of 100 files of 4 KiB, each run with its own random bytes.
bt_persist_tree() {
  local d
  for ((d = 0; d < 100; d++)); do
    bt_files "$1/etc/bench/d$d" f 100 4096
  done
}

# Figure 1: `update -- true` on the 1 GiB root, the whole process (snapshot,
# chroot helper, true, syncfs, read-only, staged). Baseline: what the btrfs
# CLI does for a read-only snapshot, `btrfs subvolume snapshot` then
# `btrfs property set ro true`.
bt_base_update() {
  btrfs subvolume snapshot "$BT_MNT/roots/root" "$BT_MNT/base" &&
    btrfs property set -ts "$BT_MNT/base" ro true
}
bt_update() {
  local n=${UPDATES:-5} i up=() base=()
  for ((i = 0; i < n; i++)); do
    bt_timed "$BIN" update --store "$BT_MNT" -- true
    up+=("$BT_T")
    [ -d "$BT_MNT/roots/root.try-1" ] || bt_fail "update staged no root.try-1"
    bt_reset
    bt_timed bt_base_update
    base+=("$BT_T")
    bt_drop "$BT_MNT/base"
  done
  BT_UPDATE=$(printf '%s\n' "${up[@]}" | median)
  BT_UPDATE_BASE=$(printf '%s\n' "${base[@]}" | median)
}

# Figure 2: `persist --upper` of 10,000 changed files (the root holds the same
# paths, persist replaces them), the whole process (snapshot, fold, syncfs,
# read-only, staged). Baseline: a fresh writable snapshot of the root,
# `rsync -aHAX UPPER/ SNAP/` into it, then syncfs (`sync -f`). rsync does not
# process whiteouts; there are none: this is the speed baseline.
bt_base_persist() {
  btrfs subvolume snapshot "$BT_MNT/roots/root" "$BT_MNT/base" &&
    rsync -aHAX "$BT_UPPER/" "$BT_MNT/base/" &&
    sync -f "$BT_MNT/base"
}
bt_persist() {
  local n=${BTRFS_RUNS:-3} i ps=() base=()
  for ((i = 0; i < n; i++)); do
    rm -rf "${BT_UPPER:?}"/*
    bt_persist_tree "$BT_UPPER"
    bt_timed "$BIN" persist --store "$BT_MNT" --upper "$BT_UPPER"
    ps+=("$BT_T")
    cmp -s "$BT_UPPER/etc/bench/d99/f0099" "$BT_MNT/roots/root.try-1/etc/bench/d99/f0099" ||
      bt_fail "persist did not fold the upper into root.try-1"
    bt_reset
    bt_timed bt_base_persist
    base+=("$BT_T")
    bt_drop "$BT_MNT/base"
  done
  BT_PERSIST=$(printf '%s\n' "${ps[@]}" | median)
  BT_PERSIST_BASE=$(printf '%s\n' "${base[@]}" | median)
}

# Figure 3: `apply` of a 256 MiB squashfs (incompressible, uncompressed
# data: 128 files of 1 MiB and 2,048 of 64 KiB), unpacked into a new
# subvolume, the whole process. Baseline: `btrfs subvolume create`,
# `unsquashfs -f -d` into it, then `sync`. The image is in the page cache
# for both.
bt_base_apply() {
  btrfs subvolume create "$BT_MNT/base" &&
    unsquashfs -f -n -d "$BT_MNT/base" "$BT_IMG" &&
    sync
}
bt_apply() {
  local n=${BTRFS_RUNS:-3} i ap=() base=() tree=$BT_WORK/apply-tree
  mkdir -p "$tree/bin" "$tree/sbin"
  cp /bin/busybox "$tree/bin/busybox"
  ln -s busybox "$tree/bin/sh"
  printf '#!/bin/sh\nexec /bin/sh\n' >"$tree/sbin/init"
  chmod 755 "$tree/sbin/init"
  bt_files "$tree/usr/share/big" f 128 1048576
  bt_files "$tree/usr/share/small" f 2048 65536
  bt_q mksquashfs "$tree" "$BT_IMG" -noappend -quiet -no-progress -all-root -noI -noD -noF -noX
  rm -rf "$tree"
  BT_IMG_MIB=$(awk -v b="$(stat -c %s "$BT_IMG")" 'BEGIN {printf "%.0f", b / 1048576}')
  cat "$BT_IMG" >/dev/null
  bt_q sync
  for ((i = 0; i < n; i++)); do
    bt_timed "$BIN" apply --store "$BT_MNT" "$BT_IMG"
    ap+=("$BT_T")
    [ -d "$BT_MNT/roots/root.try-1/usr/share/big" ] || bt_fail "apply staged no root.try-1"
    bt_reset
    bt_timed bt_base_apply
    base+=("$BT_T")
    bt_drop "$BT_MNT/base"
  done
  BT_APPLY=$(printf '%s\n' "${ap[@]}" | median)
  BT_APPLY_BASE=$(printf '%s\n' "${base[@]}" | median)
}

# Figure 4: `commit --force` of a staged image (no health checks), the whole
# process, median of COMMITS. Each commit but the first retires a previous
# root (trying -> next, prev -> rm-*, root -> prev, next -> root, rm-*
# deleted): 5 directory changes, each fsynced, as in part two. Baseline: 5
# rename + fsync(dir) pairs in one process on the same btrfs. Before each
# commit, btrfs has freed the subvolumes deleted earlier.
bt_commit() {
  local n=${COMMITS:-15} i cm=() st=()
  make_image "$BT_WORK" "$BT_WORK/small.sqsh"
  mkdir -p "$BT_WORK/nohealth"
  for ((i = 0; i <= n; i++)); do
    bt_q "$BIN" apply --store "$BT_MNT" "$BT_WORK/small.sqsh"
    bt_q "$BIN" gc --store "$BT_MNT"
    bt_q sync
    bt_timed "$BIN" commit --force --store "$BT_MNT" --health-dir "$BT_WORK/nohealth"
    [ "$i" -gt 0 ] && cm+=("$BT_T")
  done
  for ((i = 0; i < n; i++)); do
    bt_timed "$BIN" status --store "$BT_MNT"
    st+=("$BT_T")
  done
  mkdir -p "$BT_MNT/pairs"
  BT_COMMIT_BASE=$("$BT_HELPER" "$BT_MNT/pairs" "$n" 5) || bt_fail "rename + fsync pairs"
  BT_COMMIT=$(printf '%s\n' "${cm[@]}" | median)
  BT_STATUS=$(printf '%s\n' "${st[@]}" | median)
}

# bt_setup: the btrfs filesystem, its store, and the root: busybox (sh and
# true), a /sbin/init, 1,024 files of 1 MiB of random data, and the 10,000
# files that persist will change.
bt_setup() {
  local tree=$BT_WORK/root-tree
  mkdir -p "$BT_MNT" "$BT_UPPER" "$tree/bin" "$tree/sbin"
  truncate -s "${BTRFS_IMAGE_SIZE:-4G}" "$BT_WORK/store.btrfs"
  bt_q mkfs.btrfs -q -f "$BT_WORK/store.btrfs"
  bt_q mount -o loop,subvolid=5 "$BT_WORK/store.btrfs" "$BT_MNT"
  bt_q mount -t tmpfs -o size=512M upper "$BT_UPPER"
  cp /bin/busybox "$tree/bin/busybox"
  ln -s busybox "$tree/bin/sh"
  ln -s busybox "$tree/bin/true"
  printf '#!/bin/sh\nexec /bin/sh\n' >"$tree/sbin/init"
  chmod 755 "$tree/sbin/init"
  bt_files "$tree/usr/lib/payload" p 1024 1048576
  bt_persist_tree "$tree"
  bt_q "$BIN" store init "$BT_MNT" --btrfs --from "$tree"
  rm -rf "$tree"
  bt_q sync
  BT_ROOT_MIB=$(du -sm "$BT_MNT/roots/root" | cut -f1)
}

# bt_report prints the four figures with their baselines and targets.
bt_report() {
  echo
  echo "btrfs store on a loop-mounted btrfs (private mount namespace), $BT_ROOT_MIB MiB committed root; whole processes"
  awk -v u="$BT_UPDATE" -v ub="$BT_UPDATE_BASE" -v un="${UPDATES:-5}" \
    -v p="$BT_PERSIST" -v pb="$BT_PERSIST_BASE" -v a="$BT_APPLY" -v ab="$BT_APPLY_BASE" -v mib="$BT_IMG_MIB" \
    -v rn="${BTRFS_RUNS:-3}" -v c="$BT_COMMIT" -v cb="$BT_COMMIT_BASE" -v cn="${COMMITS:-15}" -v s="$BT_STATUS" 'BEGIN {
    ok = "meets"; no = "MISSES"
    printf "  %-44s %10s %10s %8s  %s\n", "figure (median)", "overlayupd", "baseline", "ratio", "target"
    printf "  %-44s %7.1f ms %7.1f ms %7.2fx  < 1 s: %s\n", "update -- true, " un " runs", u * 1000, ub * 1000, u / ub, (u < 1 ? ok : no)
    printf "  %-44s %7.0f ms %7.0f ms %7.2fx  >= 1.0x: %s\n", "persist --upper, 10,000 files, " rn " runs", p * 1000, pb * 1000, pb / p, (pb / p >= 1 ? ok : no)
    printf "  %-44s %4.0f MiB/s %4.0f MiB/s %7.2fx  >= 0.8x: %s\n", "apply " mib " MiB squashfs, " rn " runs", mib / a, mib / ab, ab / a, (ab / a >= 0.8 ? ok : no)
    printf "  %-44s %7.1f ms %7.1f ms %7.2fx  < 100 ms: %s\n", "commit --force, " cn " commits", c * 1000, cb * 1000, c / cb, (c < 0.1 ? ok : no)
    print "  baselines: update: btrfs subvolume snapshot + btrfs property set ro true (ratio: update / baseline);"
    print "  persist: btrfs subvolume snapshot + rsync -aHAX UPPER/ SNAP/ + sync -f (ratio: baseline / persist);"
    print "  apply: btrfs subvolume create + unsquashfs -f -d + sync (ratio: apply / baseline throughput);"
    print "  commit: 5 rename + fsync(dir) pairs in one process (ratio: commit / baseline)"
    printf "  overlayupd status (exec + read, no fsync): %.1f ms, the floor of any whole-process figure\n", s * 1000
  }'
}

# bt_step WHAT FUNC runs FUNC, saying what it does and how long it took.
bt_step() {
  local t0
  t0=$EPOCHREALTIME
  printf '%s ...' "$1"
  "$2"
  printf ' %.0f s\n' "$(elapsed "$t0" "$EPOCHREALTIME")"
}

# bt_inner runs in the private mount namespace.
bt_inner() {
  set -Eeuo pipefail
  trap 'echo "bench: part 4: failed (exit $?) at: $BASH_COMMAND" >&2' ERR
  BT_WORK=$1 BT_HELPER=$2 BT_MNT=$1/mnt BT_UPPER=$1/upper BT_IMG=$1/apply.sqsh BT_LOG=$1/log
  bt_step "setting up: a ${BTRFS_IMAGE_SIZE:-4G} btrfs, a 1 GiB root, 10,000 files to persist" bt_setup
  bt_step "update: ${UPDATES:-5} runs and as many baselines" bt_update
  bt_step "persist: ${BTRFS_RUNS:-3} runs and as many baselines" bt_persist
  bt_step "apply: a 256 MiB image, ${BTRFS_RUNS:-3} runs and as many baselines" bt_apply
  bt_step "commit: ${COMMITS:-15} commits and their baseline" bt_commit
  bt_report
  umount "$BT_UPPER"
  umount "$BT_MNT"
}

part4() {
  local work
  work=$(mktemp -d "${BENCH_DIR:-$PWD}/.bench-btrfs-XXXXXX")
  trap 'rm -rf "'"$work"'"' EXIT
  echo "== make bench, part four: the btrfs store ($("$BIN" --version 2>/dev/null | head -1 || true))"
  build_renamefsync "$work/helper"
  unshare --mount --propagation private bash -c "$(declare -f now elapsed median make_image \
    bt_fail bt_timed bt_q bt_step bt_reset bt_drop bt_files bt_persist_tree bt_base_update bt_update \
    bt_base_persist bt_persist bt_base_apply bt_apply bt_commit bt_setup bt_report bt_inner); \
    BIN='$BIN'; bt_inner '$work' '$work/helper/renamefsync'"
  rm -rf "$work"
  trap - EXIT
}

part5() {
  echo "== make bench, part five: dm-verity"
  set +e
  OVERLAYUPD_BENCH_DIR=${BENCH_DIR:-$PWD} OVERLAYUPD_BENCH_TREE=${TREE_ROUNDS:-5} OVERLAYUPD_BENCH_MB=${TREE_MB:-1024} \
    go test -count=1 -timeout 30m -run '^TestTreeCost$' -v ./squash/ | grep -E '^(stage|--- FAIL)'
  local r1=${PIPESTATUS[0]}
  OVERLAYUPD_BENCH=${BOOTS:-7} go test -count=1 -timeout 30m -run '^TestVerityBootCost$' -v ./tests/ |
    grep -v -E '^(=== (RUN|PAUSE|CONT)|PASS$|ok )'
  local r2=${PIPESTATUS[0]}
  set -e
  [ "$r1" -eq 0 ] && [ "$r2" -eq 0 ] || rc=1
}

for p in $PARTS; do
  case $p in
  1) part1 ;;
  2) part2 ;;
  3) part3 ;;
  4) part4 ;;
  5) part5 ;;
  *) echo "bench: unknown part $p" >&2; exit 2 ;;
  esac
done
exit "$rc"
