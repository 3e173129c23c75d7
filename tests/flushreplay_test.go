package tests

// Flush-point replay (issue 9, item 8): QEMU's blklogwrites driver records
// every write and flush that reaches the store disk during two boots: one
// that runs `overlayupd apply`, and the trial boot of the applied image
// that runs `overlayupd commit`. After each command exits 0, the guest
// writes a sentinel sector to a raw region of the same disk (past the
// filesystem's end) with O_DIRECT and fsync, so the log shows where
// "success reported" lies among the writes.
//
// The disk is then rebuilt at every flush point: the disk before the first
// boot plus the logged writes up to that flush, which is what a power cut
// right after the flush can leave. Each rebuilt disk is checked offline:
// loop-mounted read-only in a private mount namespace (the host's kernel
// replays the ext4 journal as the device's would), its slot directory
// listed, each entry's contents matched against the known images, and the
// protocol's own boot decision (trampoline.Decide) run over the names
// (checkFlushPoint, flushcheck_test.go). A sample of the points also
// boots: the first, every one whose entries differ from the point before
// (each rename that became durable), and the last; with OVERLAYUPD_FULL=1,
// every point. A boot must run the image and role the offline check
// predicted.
//
// The store has a persistent writable layer, so its filesystem stays
// writable after boot: a command's renames are durable through its own
// directory fsyncs only (on a read-only store, the remount back to
// read-only runs sync(2), which would hide a missing fsync). The recorded
// boots mount it with commit=600 (flushCommit), checked in the guest's
// mount table: ext4's journal commit timer would otherwise make a pending
// rename durable whenever it fired, and the result would hang on the
// boot's timing. TestFlushReplayNoDirSync builds the binaries without
// directory fsyncs (the overlayupd_nodirsync tag), the ones the images run
// included, and requires the check to catch both the apply and the commit.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/loop"
	"github.com/overlayupd/overlayupd/internal/mountns"
	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/trampoline"
	"github.com/overlayupd/overlayupd/verity"
)

// The store disk: a 256 MiB ext4, then 1 MiB that no filesystem uses, where
// the sentinels go (one 4 KiB block each).
const (
	flushFSBytes   = 256 << 20
	flushDiskBytes = flushFSBytes + 1<<20
	sentinelApply  = flushFSBytes / 512
	sentinelCommit = sentinelApply + 8
	sentinelPrefix = "OVERLAYUPD-SENTINEL "
	// flushCommit is the recorded boots' rootflags: ext4's journal commit
	// timer (5 s by default) never fires in a recording, so a rename is on
	// the disk at a flush point only when a sync, an fsync of its directory
	// or an fsync of another file (which commits the whole journal
	// transaction) put it there, never by the timing of the boot.
	flushCommit       = "commit=600"
	flushRunSentinels = `
sentinel() {
	# the command said rc=0: mark it in the disk's write log, durably
	printf '` + sentinelPrefix + `%s\n' "$1" | dd of=/dev/vda bs=512 seek=$2 count=1 conv=sync,fsync,notrunc oflag=direct 2>/dev/null &&
		echo "result: sentinel $1"
}
`
)

// flushRun is the recorded boots' step: apply:vX or commit, each followed
// by its sentinel when it exits 0. It first shows the store's mounts, whose
// options must hold flushCommit.
var flushRun = `
. /test/lib.sh
show
echo "result: storemounts $(grep '^/dev/vda ' /proc/mounts | tr '\n' ';')"
` + flushRunSentinels + `
for a in $(arg act | tr , ' '); do
	set -- $(echo "$a" | tr : ' ')
	case $1 in
	apply)
		overlayupd apply "/overlay/store/updates/$2.sqsh" 2>&1 | sed 's/^/result: apply: /'
		rc=$?; echo "result: apply rc=$rc"
		[ $rc = 0 ] && sentinel apply ` + fmt.Sprint(sentinelApply) + ` ;;
	commit)
		overlayupd commit 2>&1 | sed 's/^/result: commit: /'
		rc=$?; echo "result: commit rc=$rc"
		[ $rc = 0 ] && sentinel commit ` + fmt.Sprint(sentinelCommit) + ` ;;
	esac
done
`

// flushResult counts what one replay did.
type flushResult struct {
	points, boots int
	violations    []string
	stages        map[string]int // points per stage, for the summary
}

func (r flushResult) String() string {
	var st []string
	for _, n := range stageNames {
		st = append(st, fmt.Sprintf("%s %d", n, r.stages[n]))
	}
	return fmt.Sprintf("%d flush points (%s), %d boots, %d violations", r.points, strings.Join(st, ", "), r.boots, len(r.violations))
}

// TestFlushReplay: the release build's apply and commit hold the protocol's
// invariants at every flush point.
func TestFlushReplay(t *testing.T) {
	s := newSession(t)
	res := flushReplay(t, s, false, os.Getenv("OVERLAYUPD_FULL") == "1")
	fmt.Printf("flush-point replay: %s\n", res)
	for _, v := range res.violations {
		t.Error(v)
	}
	if res.points < 10 || res.boots < 3 {
		t.Errorf("only %d flush points and %d boots: the recording missed the commands", res.points, res.boots)
	}
}

// TestFlushReplayNoDirSync: binaries built without directory fsyncs
// (overlayupd_nodirsync) must fail the same check: a rename that the
// command reported done is not on the disk at a later flush point. Both
// the host's pair (store init installs its init-overlay as the store's
// trampoline) and the guest's (what the images run: apply, commit) are
// rebuilt so.
func TestFlushReplayNoDirSync(t *testing.T) {
	s := newSession(t)
	a := *s.a
	a.bin, a.init = buildNoDirSync(t, "")
	a.guestBin, a.guestInit = a.bin, a.init
	if !a.arch.native() {
		a.guestBin, a.guestInit = buildNoDirSync(t, a.arch.name)
	}
	nds := *s
	nds.a = &a
	res := flushReplay(t, &nds, true, false)
	fmt.Printf("flush-point replay without directory fsyncs: %s\n", res)
	for _, v := range res.violations {
		t.Logf("caught: %s", v)
	}
	// Each command's last renames are durable only through its directory
	// fsyncs (nothing else fsyncs before its sentinel, and the timer is
	// off): both must be caught, every run.
	for _, cmd := range []string{"apply", "commit"} {
		if !slices.ContainsFunc(res.violations, func(v string) bool { return strings.Contains(v, cmd+" reported success") }) {
			t.Errorf("the replay did not catch the %s of a build without directory fsyncs (%s)", cmd, res)
		}
	}
}

// buildNoDirSync builds the test binary pair with the overlayupd_nodirsync
// tag for make's TARGET (empty: this machine) into a temp directory.
func buildNoDirSync(t *testing.T, target string) (bin, init string) {
	t.Helper()
	dir := t.TempDir()
	bin = filepath.Join(dir, "overlayupd-test")
	args := []string{"--no-print-directory", "build-test", "TESTBIN=" + bin, "TEST_TAGS=overlayupd_nodirsync"}
	if target != "" {
		args = append(args, "TARGET="+target)
	}
	if out, err := runOut(repoRoot(), "make", args...); err != nil {
		t.Fatalf("build without directory fsyncs (TARGET=%q): %v\n%s", target, err, out)
	}
	return bin, filepath.Join(dir, "init-overlay")
}

// noDirSyncMarker is atomicfile.NoDirSyncMarker's first word, which only an
// overlayupd_nodirsync build holds (the Makefile greps for it too).
const noDirSyncMarker = "OVERLAYUPD_NODIRSYNC"

// requireBuild fails the test unless each binary is (nodirsync) or is not
// a build without directory fsyncs: the replay must record the binaries it
// means to judge. The images hold the assets' guest pair, not bin and init:
// a test that swaps one pair and not the other judges the wrong build.
func requireBuild(t *testing.T, nodirsync bool, paths ...string) {
	t.Helper()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if has := bytes.Contains(b, []byte(noDirSyncMarker)); has != nodirsync {
			t.Fatalf("%s: built without directory fsyncs: %v, want %v", p, has, nodirsync)
		}
	}
}

func runOut(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// flushReplay records the two boots on a fresh store and checks every
// flush point; bootAll boots every point instead of the sample. nodirsync
// says which build the binaries must be (requireBuild).
func flushReplay(t *testing.T, s *session, nodirsync, bootAll bool) flushResult {
	t.Helper()
	testroot.RequireRoot(t, "cp")
	// What the images run, and the trampoline store init installs: the
	// guest's init-overlay on another architecture, else the one beside bin.
	tramp := s.a.init
	if !s.a.arch.native() {
		tramp = s.a.guestInit
	}
	requireBuild(t, nodirsync, s.a.guestBin, s.a.guestInit, tramp)
	add := func(r *rootTree) { r.step("flushrun", storeRunPrefix+flushRun) }
	v1, v2 := storeImage(t, s.a, "v1", add), storeImage(t, s.a, "v2", add)
	d := storeDisk(t, s, v1, true, map[string]string{"v2": v2})
	if err := os.Truncate(d.path, flushDiskBytes); err != nil {
		t.Fatal(err)
	}
	known := map[[32]byte]string{entryHash(t, v1): "v1", entryHash(t, v2): "v2"}
	base := cloneDisk(t, d)
	logPath := filepath.Join(t.TempDir(), "writes.log")
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sc := &storeScenario{t: t, s: s, d: d}
	record := func(want, act, sentinel string) {
		o := sc.opts(act, "rootflags="+flushCommit)
		o.step = "flushrun"
		o.drive = []string{
			"-blockdev", "driver=file,node-name=store,filename=" + d.path,
			"-blockdev", "driver=file,node-name=wlog,filename=" + logPath,
			"-blockdev", "driver=blklogwrites,node-name=logged,file=store,log=wlog,log-append=on",
			"-device", "virtio-blk-pci,drive=logged,write-cache=on",
		}
		sc.boots++
		out := s.run(d, o)
		b := parseStoreBoot(t, sc.boots, out)
		sc.wantImage(b, want)
		m := regexp.MustCompile(`result: storemounts (.*)\n`).FindStringSubmatch(out)
		if m == nil || strings.TrimSpace(m[1]) == "" {
			t.Fatalf("boot %d: the store's mounts are not shown; console tail:\n%s", sc.boots, tail(out, 30))
		}
		for _, mnt := range strings.Split(strings.TrimSuffix(m[1], ";"), ";") {
			f := strings.Fields(mnt) // device, mount point, type, options, ...
			if len(f) < 4 || !slices.Contains(strings.Split(f[3], ","), flushCommit) {
				t.Fatalf("boot %d: the store is mounted without %s (%s): ext4's commit timer could make a rename durable by chance", sc.boots, flushCommit, mnt)
			}
		}
		if !strings.Contains(out, "result: sentinel "+sentinel+"\n") {
			t.Fatalf("boot %d: no %s sentinel; console tail:\n%s", sc.boots, sentinel, tail(out, 30))
		}
	}
	record("v1", "apply:v2", "apply")
	firstBoot := logEntries(t, logPath)
	record("v2", "commit", "commit")

	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	l, err := readWriteLog(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	applyAt, err := l.find(sentinelApply, sentinelPrefix+"apply\n")
	if err != nil || applyAt < 0 || applyAt >= firstBoot {
		t.Fatalf("the apply sentinel is not in the first boot's log (entry %d of %d, %v)", applyAt, firstBoot, err)
	}
	commitAt, err := l.find(sentinelCommit, sentinelPrefix+"commit\n")
	if err != nil || commitAt < firstBoot {
		t.Fatalf("the commit sentinel is not in the second boot's log (entry %d, first boot %d entries, %v)", commitAt, firstBoot, err)
	}
	t.Logf("log: %d entries (%d in the first boot), %d flushes; apply sentinel at %d, commit sentinel at %d",
		len(l.Entries), firstBoot, len(l.flushes()), applyAt, commitAt)
	return checkFlushPoints(t, s, l, base.path, known, func(entry int) (applied, second, committed bool) {
		return entry > applyAt, entry >= firstBoot, entry > commitAt
	}, bootAll)
}

// logEntries reads the entry count of the log's super block.
func logEntries(t *testing.T, logPath string) int {
	t.Helper()
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sb [24]byte
	if _, err := io.ReadFull(f, sb[:]); err != nil {
		t.Fatalf("write log %s: %v", logPath, err)
	}
	return int(binary.LittleEndian.Uint64(sb[16:]))
}

// entryHash is the sha256 of the store entry that staging img makes: the
// image, then its dm-verity tree and trailer.
func entryHash(t *testing.T, img string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := verity.Compute(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &growBuf{b: b}
	if _, err := verity.Append(w, tree, int64(len(b))); err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(w.b)
}

// growBuf is an io.WriterAt over a slice that grows.
type growBuf struct{ b []byte }

func (g *growBuf) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(g.b) {
		g.b = append(g.b, make([]byte, end-len(g.b))...)
	}
	return copy(g.b[off:], p), nil
}

// checkFlushPoints rebuilds the disk at every flush point of l and checks
// it; phase says where an entry lies in the recording.
func checkFlushPoints(t *testing.T, s *session, l *writeLog, base string, known map[[32]byte]string,
	phase func(entry int) (applied, second, committed bool), bootAll bool) flushResult {
	t.Helper()
	work := shmTemp(t)
	copySparse(t, base, filepath.Join(work, "disk"))
	w, err := os.OpenFile(filepath.Join(work, "disk"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	res := flushResult{stages: map[string]int{}}
	type sample struct {
		p     flushPoint
		image string
	}
	var samples []sample
	prevStage, prevKey, done := -1, "", 0
	flushes := l.flushes()
	for i, at := range flushes {
		if err := l.replay(w, done, at); err != nil {
			t.Fatal(err)
		}
		done = at
		p, err := readFlushPoint(filepath.Join(work, "disk"), filepath.Join(work, "mount"), known)
		if err != nil {
			t.Fatalf("flush point at entry %d: %v", at, err)
		}
		p.entry = at
		p.applied, p.secondBoot, p.committed = phase(at)
		stage, v := checkFlushPoint(p, prevStage)
		for _, line := range v {
			res.violations = append(res.violations, fmt.Sprintf("flush point %d (log entry %d of %d): %s", i, at, len(l.Entries), line))
		}
		if stage >= 0 {
			res.stages[stageNames[stage]]++
			prevStage = stage
		}
		res.points++
		key := p.key()
		// The sample: the first and last points, each durable change of
		// the entries, and each point the offline check found wrong (what
		// the device does there is the evidence).
		if bootAll || i == 0 || i == len(flushes)-1 || key != prevKey || len(v) > 0 {
			img := filepath.Join(work, fmt.Sprintf("point-%d", at))
			copySparse(t, filepath.Join(work, "disk"), img)
			samples = append(samples, sample{p, img})
		}
		prevKey = key
	}
	if len(res.violations) > 0 {
		t.Logf("offline violations:\n%s", strings.Join(res.violations, "\n"))
	}
	var mu sync.Mutex
	t.Run("boots", func(t *testing.T) {
		for _, smp := range samples {
			t.Run(fmt.Sprintf("entry%d", smp.p.entry), func(t *testing.T) {
				t.Parallel()
				v := bootFlushPoint(t, s, smp.p, smp.image)
				mu.Lock()
				res.boots++
				res.violations = append(res.violations, v...)
				mu.Unlock()
			})
		}
	})
	return res
}

// key identifies a point's protocol state: entries and their images.
func (p flushPoint) key() string {
	var k []string
	st := trampoline.NewState(".sqsh", p.names...)
	for _, e := range st.Entries() {
		if protocolRoles[e.Role] {
			k = append(k, e.Name+"="+p.images[e.Name])
		}
	}
	sort.Strings(k)
	return strings.Join(k, " ")
}

// bootFlushPoint boots a rebuilt disk and checks that it runs the image and
// role that the offline check predicted; it returns the violations.
func bootFlushPoint(t *testing.T, s *session, p flushPoint, img string) []string {
	plan := trampoline.Decide(trampoline.NewState(".sqsh", p.names...))
	want := imageAfter(p.images, plan.Ops)[plan.Boot.Name]
	wantRole := "committed"
	if plan.Trial {
		wantRole = "trying"
	} else if trampoline.ParseName(plan.Boot.Name, ".sqsh").Role == trampoline.RolePrevious {
		wantRole = "previous"
	}
	ps := &session{t: t, a: s.a, logDir: s.logDir, keepLogs: s.keepLogs, boots: 1000 + p.entry}
	sc := &storeScenario{t: t, s: ps, d: &disk{t: t, path: img, fstype: "ext4"}}
	out := ps.run(sc.d, sc.opts(""))
	os.Remove(img)
	b := parseStoreBoot(t, p.entry, out)
	name, role := b.status.booted()
	if b.image != want || role != wantRole {
		return []string{fmt.Sprintf("boot of flush point at entry %d (%s): ran %q as %q (%s), the offline check predicted %s as %s",
			p.entry, strings.Join(p.names, " "), b.image, role, name, want, wantRole)}
	}
	return nil
}

// readFlushPoint mounts the disk image (ext4) read-only at mnt in a private
// mount namespace and reads its slot directory. The loop device is
// writable, so the kernel replays the journal: the mount sees what the
// device would see after a power cut at this point.
func readFlushPoint(img, mnt string, known map[[32]byte]string) (p flushPoint, err error) {
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return p, err
	}
	// The journal replay writes to the image: mount a copy.
	scratch := img + ".mount"
	if err := copySparseErr(img, scratch); err != nil {
		return p, err
	}
	defer os.Remove(scratch)
	err = mountns.InPrivate(func() error {
		backing, err := loop.OpenImage(scratch, false)
		if err != nil {
			return err
		}
		lf, err := loop.Attach(scratch, backing, false)
		backing.Close()
		if err != nil {
			return err
		}
		defer lf.Close()
		if err := unix.Mount(lf.Name(), mnt, "ext4", unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("mount %s (%s): %w", scratch, lf.Name(), err)
		}
		defer unix.Unmount(mnt, 0)
		p, err = readStoreTree(mnt, known)
		return err
	})
	return p, err
}

// readStoreTree reads a mounted store: marker, trampoline, and for each
// entry of the slot directory the known image it holds.
func readStoreTree(top string, known map[[32]byte]string) (flushPoint, error) {
	p := flushPoint{images: map[string]string{}}
	_, err := os.Stat(filepath.Join(top, "overlayupd-store"))
	p.marker = err == nil
	fi, err := os.Stat(filepath.Join(top, "sbin", "init-overlay"))
	p.trampoline = err == nil && fi.Mode().IsRegular() && fi.Size() > 0
	st, _, err := trampoline.LoadState(trampoline.NewDirBackend(filepath.Join(top, "roots"), ".sqsh", nil))
	if err != nil {
		return p, err
	}
	p.names = st.Names()
	for _, e := range st.Entries() {
		if !protocolRoles[e.Role] {
			continue
		}
		p.images[e.Name] = identify(filepath.Join(top, "roots", e.Name), known)
	}
	return p, nil
}

// identify names the known image whose staged entry the file is, byte for
// byte, or says what it is instead.
func identify(path string, known map[[32]byte]string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unreadable (" + err.Error() + ")"
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "unreadable (" + err.Error() + ")"
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	if name, ok := known[sum]; ok {
		return name
	}
	if _, err := verity.ReadTrailer(f, n); err != nil {
		return fmt.Sprintf("partial (%d bytes, %v)", n, err)
	}
	return fmt.Sprintf("unknown (%d bytes)", n)
}

// shmTemp is a temp directory in /dev/shm when there is one (the points
// are rebuilt and copied many times), else in the test's temp dir.
func shmTemp(t *testing.T) string {
	t.Helper()
	if d, err := os.MkdirTemp("/dev/shm", "overlayupd-flush-"); err == nil {
		t.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return t.TempDir()
}

func copySparse(t *testing.T, src, dst string) {
	t.Helper()
	if err := copySparseErr(src, dst); err != nil {
		t.Fatal(err)
	}
}

func copySparseErr(src, dst string) error { return run("", "cp", "--sparse=always", src, dst) }
