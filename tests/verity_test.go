package tests

// dm-verity scenarios (issue 11, item 3). The host kernel of the build
// machine may have no device-mapper at all, so internal/dm's privileged
// test also runs here, inside a guest whose initramfs loads dm-mod and
// dm-verity.

import (
	"bytes"
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

// dmTestImage is a squashfs image holding /data.bin (64 KiB of text, stored
// uncompressed so the test can find and damage its blocks).
func dmTestImage(t *testing.T) string {
	t.Helper()
	var payload bytes.Buffer
	for i := 0; payload.Len() < 64<<10; i++ {
		fmt.Fprintf(&payload, "overlayupd dm-verity guest line %06d\n", i)
	}
	tree := testroot.NewTree(t, testroot.File("data.bin", payload.String(), 0o644))
	return testroot.Squashfs(t, tree, "", testroot.MksquashfsArgs("-noD", "-no-fragments"))
}

// buildPackageTest compiles the tests of a package of this module into a
// static binary (CGO_ENABLED=0) that a guest of a's architecture can run.
func buildPackageTest(t *testing.T, a *assets, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg)+".test")
	cmd := exec.Command("go", "test", "-c", "-o", out, "./"+pkg)
	cmd.Dir = repoRoot()
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), a.arch.goenv...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -c ./%s: %v\n%s", pkg, err, b)
	}
	return out
}

// TestVerityInGuest runs internal/dm's TestMountVerity as root in a guest
// kernel with dm-verity: the mount through a verity device, EIO and never
// wrong bytes for a damaged block, the cleanup of every device.
func TestVerityInGuest(t *testing.T) {
	s := newSession(t)
	r := newRootTree(t, s.a)
	r.copy(buildPackageTest(t, s.a, "internal/dm"), "test/dm.test", 0o755)
	r.copy(dmTestImage(t), "test/dm.sqsh", 0o644)
	r.step("dmtest", `
mount -t tmpfs tmpfs /tmp
export TMPDIR=/tmp OVERLAYUPD_DM_TEST_IMAGE=/test/dm.sqsh OVERLAYUPD_DM_REQUIRED=1
/test/dm.test -test.v -test.count=1 2>&1 | sed 's/^/result: dm: /'
`)
	out := s.run(r.ext4(), bootOpts{step: "dmtest"})
	must(t, out, `result: dm: --- PASS: TestMountVerity `)
	for _, sub := range []string{"good", "damaged_data_block", "damaged_first_block", "no_tree"} {
		must(t, out, `result: dm:\s+--- PASS: TestMountVerity/`+sub+` `)
	}
	must(t, out, `result: dm: PASS\n`)
	mustNot(t, out, `result: dm: .*(--- SKIP|--- FAIL)`)
	if t.Failed() {
		t.Logf("console:\n%s", tail(out, 60))
	}
}

// robaseLine prints the device the booted root image is mounted from.
const robaseLine = `echo "result: robase $(awk '$2 == "/overlay/robase" {print $1}' /proc/mounts)"
`

// verityImage is a store image whose run step also prints the robase line.
func verityImage(t *testing.T, a *assets, version string) string {
	t.Helper()
	return storeImage(t, a, version, func(r *rootTree) { r.step("run", storeRunPrefix+robaseLine+storeRun) })
}

var reRobase = regexp.MustCompile(`(?m)^result: robase (\S*)$`)

// wantRobase checks that the booted image is mounted from a dm-verity
// device (dm) or straight from a loop device.
func wantRobase(t *testing.T, b *storeBoot, dm bool) {
	t.Helper()
	m := reRobase.FindStringSubmatch(b.console)
	want := map[bool]string{true: "/dev/dm-", false: "/dev/loop"}[dm]
	if m == nil || !strings.HasPrefix(m[1], want) {
		t.Errorf("boot %d: the root image is mounted from %q, want %s*", b.n, m, want)
	}
}

// flipInFile inverts the byte at off of the file path inside the (not
// running) ext4 disk image: debugfs maps the file's block to the disk's,
// nothing is mounted on the host.
func (d *disk) flipInFile(path string, off int64) {
	d.t.Helper()
	stats, _ := d.debugfs(false, "stats -h")
	m := regexp.MustCompile(`Block size:\s+(\d+)`).FindStringSubmatch(stats)
	if m == nil {
		d.t.Fatalf("debugfs stats: no block size:\n%s", stats)
	}
	bs, _ := strconv.ParseInt(m[1], 10, 64)
	out, _ := d.debugfs(false, fmt.Sprintf("bmap %s %d", path, off/bs))
	pblk, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil || pblk == 0 {
		d.t.Fatalf("debugfs bmap %s %d: %q", path, off/bs, out)
	}
	f, err := os.OpenFile(d.path, os.O_RDWR, 0)
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	at := pblk*bs + off%bs
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		d.t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at); err != nil {
		d.t.Fatal(err)
	}
}

// TestVerityStore: a verity-protected image boots (its root is mounted from
// a dm-verity device), through apply, trial and commit; then one byte of
// the committed image is damaged on the disk, in its first data block: the
// next boot's mount of it fails with an I/O error, the trampoline falls back
// to the previous root, and status names the damage.
func TestVerityStore(t *testing.T) {
	s := newSession(t)
	sc := &storeScenario{t: t, s: s, d: storeDisk(t, s, verityImage(t, s.a, "v1"), false,
		map[string]string{"v2": verityImage(t, s.a, "v2")})}

	b := sc.boot("v1", "apply:v2")
	wantRobase(t, b, true)
	b = sc.boot("v2", "commit")
	wantRobase(t, b, true)
	b = sc.boot("v2", "")
	sc.wantBooted(b, "root.sqsh", "committed")
	wantRobase(t, b, true)
	sc.wantEntries(b, ".lock root.prev.sqsh root.sqsh")

	// Byte 2048 lies in the image's first block, past the superblock: file
	// data or tables that, unverified, would be read without complaint.
	sc.d.flipInFile("/roots/root.sqsh", 2048)
	b = sc.boot("v1", "status")
	wantRobase(t, b, true)
	must(t, b.console, `device-mapper: verity: \S+: data block 0 is corrupted`)
	must(t, b.console, `overlayupd: warning: store: root\.sqsh does not mount: .*dm-verity found a damaged block`)
	sc.wantBooted(b, "root.prev.sqsh", "previous")
	if lb := b.status.Store.LastBootReason; lb == nil || !strings.Contains(lb.Why, "root.sqsh") ||
		!strings.Contains(lb.Why, "damaged") || !strings.Contains(lb.Why, "input/output error") {
		t.Errorf("status's last_boot_reason %+v does not name the damage", lb)
	}
	must(t, b.console, `result: after: status: .*damaged`)
}

// TestVerityRequire: overlayupd.verity=require on a kernel without the
// dm-verity module refuses to mount the image unverified, for every root
// it falls back to, and never runs one; with the default (on), the same
// kernel boots the image unverified and says so in one line.
func TestVerityRequire(t *testing.T) {
	s := newSession(t)
	sc := &storeScenario{t: t, s: s, d: storeDisk(t, s, verityImage(t, s.a, "v1"), false, nil)}

	o := sc.opts("", "overlayupd.verity=require")
	o.skipModul = "dm_verity"
	v := s.boot(sc.d, o)
	v.expect(`refused to mount unverified \(overlayupd\.verity=require\): /roots/root\.sqsh: the kernel has no dm-verity target`, bootTimeout)
	v.expect(`no root in the store boots`, bootTimeout)
	v.expect(`nothing can boot: `, bootTimeout) // and it says so every 10 s, never rebooting
	v.kill()
	mustNot(t, v.console(), `result: image|harness: init-start`)

	o = sc.opts("")
	o.skipModul = "dm_verity"
	out := s.run(sc.d, o)
	b := parseStoreBoot(t, 2, out)
	sc.wantImage(b, "v1")
	wantRobase(t, b, false)
	must(t, out, `overlayupd: warning: /roots/root\.sqsh is mounted without dm-verity: the kernel has no dm-verity target\n`)
}

// TestVerityBootCost measures what dm-verity adds to a store boot: the
// guest-clock time from the initramfs's switch_root to the image's
// /sbin/init, on one store disk booted with overlayupd.verity=off and =on
// in turn. It runs only with OVERLAYUPD_BENCH=N (boots per variant, at
// least 5), one boot at a time. Under TCG the guest's sha256 is the
// kernel's generic C code (no SHA extensions), so the figure is an upper
// bound for real hardware.
func TestVerityBootCost(t *testing.T) {
	n := benchBoots(t)
	s := newSession(t)
	sc := &storeScenario{t: t, s: s, d: storeDisk(t, s, verityImage(t, s.a, "v1"), false, nil)}
	variants := []struct {
		name string
		mode string
		dm   bool
	}{{"verity=off", "off", false}, {"verity=on", "on", true}}
	got := make([]series, len(variants))
	for i := 0; i < n; i++ {
		for j, v := range variants {
			o := sc.opts("", "quiet", "overlayupd.verity="+v.mode)
			out := s.run(sc.d, o)
			b := parseStoreBoot(t, i*len(variants)+j+1, out)
			sc.wantImage(b, "v1")
			wantRobase(t, b, v.dm)
			h, err := handover(out)
			if err != nil {
				t.Fatalf("%s boot %d: %v", v.name, i+1, err)
			}
			got[j] = append(got[j], h)
		}
	}
	fmt.Printf("\nstore boot, switch_root -> the image's /sbin/init, guest clock, %d boots each (QEMU TCG, kernel %s)\n", n, s.a.kver)
	fmt.Printf("%-12s %10s %10s %10s\n", "variant", "min", "median", "max")
	for j, v := range variants {
		lo, med, hi := got[j].stats()
		fmt.Printf("%-12s %s %s %s\n", v.name, ms(lo), ms(med), ms(hi))
	}
	_, off, _ := got[0].stats()
	_, on, _ := got[1].stats()
	fmt.Printf("dm-verity adds %s to the median (%.2fx)\n\n", ms(on-off), float64(on)/float64(off))
}
