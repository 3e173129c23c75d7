package tests

// Damaged data (issue 9, item 1's VM tests): the committed root.sqsh of a
// store whose root.prev.sqsh is good gets 4 KiB of bad data, in the middle
// or at a quarter of the file, and the device must end on root.prev within
// its boot budget (overlayupd.boot_budget=3), with status saying why,
// whatever the damage does on the way: a mount that fails, an init that
// dies or cannot be read, a kernel panic, or a system that boots with a
// broken file and is never marked good.
//
// The damage comes two ways:
//   - flipped bytes: every bit of the 4 KiB inverted in the disk image,
//     read through dm-verity (overlayupd.verity=on, the default: an I/O
//     error where the bytes are read) or without it (verity=off: the
//     squashfs reader gets the wrong bytes);
//   - I/O errors: the initramfs maps the disk through device-mapper with a
//     dm-flakey target over those sectors that is down all the time (every
//     read fails), and mounts that as the kernel's root (tests/dmflakey).
//     The image's bytes are intact: this is a bad block, not bit rot.
//
// What is already covered elsewhere, and not repeated here:
// TestVerityStore flips one byte of the first block (the mount fails
// through dm-verity; root.prev boots at once); TestStoreBootBudget boots a
// committed root whose /sbin/init segfaults until the budget falls back;
// boot/'s TestStoreBrokenImagesFallBack has a zero-byte init in a private
// namespace, and TestStoreZeroByteInit below boots one in the VM.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// damageBudget is the boot budget of the damage scenarios: the device may
// boot the damaged root this many times before root.prev must run.
const damageBudget = 3

type damageCase struct {
	name   string
	frac   int64  // the damage starts at 1/frac of the file: 2 the middle, 4 a quarter
	verity string // overlayupd.verity=
	flakey bool   // I/O errors through dm-flakey instead of flipped bytes
	full   bool   // only with OVERLAYUPD_FULL=1
}

var damageCases = []damageCase{
	{name: "FlipMiddleVerity", frac: 2, verity: "on"},
	{name: "FlipQuarterVerity", frac: 4, verity: "on", full: true},
	{name: "FlipMiddleNoVerity", frac: 2, verity: "off"},
	{name: "FlipQuarterNoVerity", frac: 4, verity: "off", full: true},
	{name: "FlakeyMiddle", frac: 2, verity: "on", flakey: true},
	{name: "FlakeyQuarter", frac: 4, verity: "on", flakey: true, full: true},
}

func TestStoreDamagedRoot(t *testing.T) {
	for _, c := range damageCases {
		t.Run(c.name, func(t *testing.T) {
			if c.full && os.Getenv("OVERLAYUPD_FULL") != "1" {
				t.Skip("OVERLAYUPD_FULL=1 (make test-full) runs this case")
			}
			damageScenario(t, c)
		})
	}
}

// committedStoreDisk makes a store disk on the host, as a build host would:
// store init with v1, then apply v2 and commit it (--store, --force), so
// v2 is root.sqsh and v1 root.prev.sqsh. It returns the disk and the size
// of root.sqsh (image, dm-verity tree and trailer).
func committedStoreDisk(t *testing.T, s *session, v1, v2 string) (*disk, int64) {
	t.Helper()
	top := testroot.NewTree(t)
	for _, args := range [][]string{
		{"store", "init", top, "--image", v1},
		{"apply", "--store", top, v2},
		{"commit", "--store", top, "--force"},
	} {
		if err := run("", s.a.bin, args...); err != nil {
			t.Fatalf("overlayupd %s: %v", args[0], err)
		}
	}
	fi, err := os.Stat(filepath.Join(top, "roots", "root.sqsh"))
	if err != nil {
		t.Fatal(err)
	}
	return &disk{t: t, path: testroot.Ext4(t, top, "256M", "-L", "store"), fstype: "ext4"}, fi.Size()
}

func damageScenario(t *testing.T, c damageCase) {
	s := newSession(t)
	d, size := committedStoreDisk(t, s, storeImage(t, s.a, "v1", nil), storeImage(t, s.a, "v2", nil))
	off := size / c.frac &^ 4095
	sc := &storeScenario{t: t, s: s, d: d,
		// hardoff: the damaged device is power-cycled, never shut down
		// in order (an orderly shutdown after the keeper's floor would
		// mark it good; that is TestStoreBootBudget's).
		args: []string{fmt.Sprintf("overlayupd.boot_budget=%d", damageBudget), "overlayupd.verity=" + c.verity, "harness.hardoff=1"}}
	var helper string
	if c.flakey {
		helper = buildHelper(t, "tests/dmflakey")
		sc.args = append(sc.args, "harness.badblocks="+d.fileSectors("/roots/root.sqsh", off, 4096))
	} else {
		d.flipRange("/roots/root.sqsh", off, 4096)
	}
	t.Logf("root.sqsh: %d bytes, 4 KiB damaged at %d (%s)", size, off, map[bool]string{true: "dm-flakey I/O errors", false: "bytes inverted"}[c.flakey])
	var seen []string
	for i := 1; i <= damageBudget+1; i++ {
		o := sc.opts("status")
		o.devHelper = helper
		if c.flakey {
			o.modules = []string{"dm_flakey"}
			// A disk without a volatile write cache: the kernel sends it no
			// cache flushes. dm-flakey fails every bio in its range while
			// down, and an empty flush goes to every target: on a disk with a
			// write cache, each fsync of the store would fail and the journal
			// could not be replayed, a dead disk rather than 4 KiB of bad
			// blocks.
			o.drive = []string{"-drive", "file=" + d.path + ",format=raw,if=virtio,cache=writethrough"}
		}
		sc.boots++
		out := s.boot(d, o).wait(bootTimeout)
		// A damaged v2 may not run status at all; v1 must.
		b, err := readStoreBoot(sc.boots, out)
		if err != nil && b.image == "v1" {
			t.Error(err)
		}
		seen = append(seen, fmt.Sprintf("boot %d: %s", i, damageOutcome(out, b)))
		if c.flakey && !strings.Contains(out, "harness: disk /dev/dm-") {
			t.Fatalf("boot %d: the disk was not mapped through dm-flakey:\n%s", i, tail(out, 30))
		}
		if b.image != "v1" {
			continue
		}
		lb := b.status.Store.LastBootReason
		budget := fmt.Sprintf("did not boot well %d times in a row", damageBudget)
		switch {
		case lb == nil:
			t.Errorf("boot %d: v1 runs, but status gives no reason", i)
		case !strings.Contains(lb.Why, budget) && !(strings.Contains(lb.Why, "root.sqsh") && regexp.MustCompile(`damaged|input/output error|cannot boot|does not mount`).MatchString(lb.Why)):
			t.Errorf("boot %d: last_boot_reason %q names neither the budget nor the damage", i, lb.Why)
		}
		t.Logf("%s\nstatus: last boot reason: %+v", strings.Join(seen, "\n"), lb)
		fmt.Printf("damaged root (%s): %s; then %s\n", c.name, strings.Join(seen, "; "), lb.Why)
		return
	}
	t.Errorf("root.prev (v1) did not run within %d boots under boot_budget=%d:\n%s\n(logs in %s)",
		damageBudget+1, damageBudget, strings.Join(seen, "\n"), s.logDir)
}

var (
	rePanic    = regexp.MustCompile(`Kernel panic - not syncing: [^\n]*`)
	reFallback = regexp.MustCompile(`overlayupd: [^\n]*(does not mount|cannot boot|budget)[^\n]*`)
	reStepDone = regexp.MustCompile(`harness: step-done step=run rc=(\d+)`)
	reFlakey   = regexp.MustCompile(`initramfs: [^\n]*`)
	reIOError  = regexp.MustCompile(`(?i)[^\n]*(I/O error|input/output error|corrupted|SQUASHFS error)[^\n]*`)
)

// damageOutcome says in one line what a boot did.
func damageOutcome(out string, b *storeBoot) string {
	var parts []string
	if b.image != "" && b.status != nil {
		name, role := b.status.booted()
		parts = append(parts, fmt.Sprintf("ran %s as %s (%s)", b.image, role, name))
	} else if b.image != "" {
		parts = append(parts, fmt.Sprintf("ran %s", b.image))
	} else {
		parts = append(parts, "no image ran its step")
	}
	if m := reFallback.FindString(out); m != "" {
		parts = append(parts, strings.TrimSpace(m))
	}
	if m := reIOError.FindString(out); m != "" {
		parts = append(parts, "first error: "+strings.TrimSpace(m))
	}
	if m := rePanic.FindString(out); m != "" {
		parts = append(parts, m)
	}
	if m := reStepDone.FindStringSubmatch(out); m != nil {
		parts = append(parts, "step rc="+m[1])
	}
	if b.image != "" && b.status == nil {
		parts = append(parts, "status did not run")
	}
	if m := reFlakey.FindString(out); m != "" {
		parts = append(parts, "harness: "+m)
	}
	return strings.Join(parts, "; ")
}

// buildHelper builds a test helper program of this module, static, for a
// guest.
func buildHelper(t *testing.T, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./"+pkg)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./%s: %v\n%s", pkg, err, b)
	}
	return out
}

// fileBlocks returns the filesystem block size of the (not running) ext4
// image and the physical blocks that hold bytes off..off+n-1 of path.
func (d *disk) fileBlocks(path string, off, n int64) (bs int64, blocks []int64) {
	d.t.Helper()
	stats, _ := d.debugfs(false, "stats -h")
	m := regexp.MustCompile(`Block size:\s+(\d+)`).FindStringSubmatch(stats)
	if m == nil {
		d.t.Fatalf("debugfs stats: no block size:\n%s", stats)
	}
	bs, _ = strconv.ParseInt(m[1], 10, 64)
	for lblk := off / bs; lblk*bs < off+n; lblk++ {
		out, _ := d.debugfs(false, fmt.Sprintf("bmap %s %d", path, lblk))
		p, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
		if err != nil || p == 0 {
			d.t.Fatalf("debugfs bmap %s %d: %q", path, lblk, out)
		}
		blocks = append(blocks, p)
	}
	return bs, blocks
}

// flipRange inverts every byte off..off+n-1 (block-aligned) of path inside
// the image, through the blocks debugfs maps it to; nothing is mounted.
func (d *disk) flipRange(path string, off, n int64) {
	d.t.Helper()
	bs, blocks := d.fileBlocks(path, off, n)
	if off%bs != 0 || n%bs != 0 {
		d.t.Fatalf("flipRange %d+%d: not aligned to the %d-byte blocks", off, n, bs)
	}
	f, err := os.OpenFile(d.path, os.O_RDWR, 0)
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, bs)
	for _, p := range blocks {
		if _, err := f.ReadAt(b, p*bs); err != nil {
			d.t.Fatal(err)
		}
		for i := range b {
			b[i] ^= 0xff
		}
		if _, err := f.WriteAt(b, p*bs); err != nil {
			d.t.Fatal(err)
		}
	}
}

// fileSectors names the disk's 512-byte sectors that hold bytes
// off..off+n-1 (block-aligned) of path, as harness.badblocks= wants them.
func (d *disk) fileSectors(path string, off, n int64) string {
	d.t.Helper()
	bs, blocks := d.fileBlocks(path, off, n)
	var r []string
	for _, p := range blocks {
		r = append(r, fmt.Sprintf("%d+%d", p*bs/512, bs/512))
	}
	return strings.Join(r, ",")
}

// TestStoreZeroByteInit: a committed root whose /sbin/init is zero bytes
// never gets exec'd (the kernel would fail it and panic, at every boot):
// the trampoline finds it before the pivot and boots root.prev in the
// same boot, and status says why.
func TestStoreZeroByteInit(t *testing.T) {
	s := newSession(t)
	v1 := storeImage(t, s.a, "v1", nil)
	vzero := storeImage(t, s.a, "vzero", func(r *rootTree) { r.write("sbin/init", "", 0o755) })
	top := testroot.NewTree(t)
	if err := run("", s.a.bin, "store", "init", top, "--image", v1); err != nil {
		t.Fatal(err)
	}
	// apply refuses an image with an empty init: put it in place by hand,
	// as a store written elsewhere (or damaged) could hold it.
	roots := filepath.Join(top, "roots")
	if err := os.Rename(filepath.Join(roots, "root.sqsh"), filepath.Join(roots, "root.prev.sqsh")); err != nil {
		t.Fatal(err)
	}
	testroot.Apply(t, top, testroot.CopyFile(vzero, "roots/root.sqsh", 0o644))
	sc := &storeScenario{t: t, s: s, d: &disk{t: t, path: testroot.Ext4(t, top, "256M", "-L", "store"), fstype: "ext4"}}
	b := sc.boot("v1", "")
	sc.wantBooted(b, "root.prev.sqsh", "previous")
	must(t, b.console, `root\.sqsh cannot boot.*/sbin/init is empty \(0 bytes\)`)
	mustNot(t, b.console, `Kernel panic`)
	if lb := b.status.Store.LastBootReason; lb == nil || !strings.Contains(lb.Why, "empty (0 bytes)") {
		t.Errorf("last_boot_reason %+v does not say why root.sqsh was passed over", lb)
	}
}
