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
// static binary (CGO_ENABLED=0) that a guest can run.
func buildPackageTest(t *testing.T, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg)+".test")
	cmd := exec.Command("go", "test", "-c", "-o", out, "./"+pkg)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
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
	r.copy(buildPackageTest(t, "internal/dm"), "test/dm.test", 0o755)
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
