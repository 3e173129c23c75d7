package testroot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const nsEnv = "OVERLAYUPD_TEST_NS"

// InPrivateMountNS runs the calling test again, alone, in a private mount
// namespace (unshare --mount --propagation private), so that it may mount
// and every goroutine sees the mounts while the host sees none. In that
// child it returns true: the test goes on. In the parent it runs the child,
// fails t with the child's output if the child failed, and returns false:
// the test returns. It skips (or fails under CI=true) without root or
// unshare, and skips with -short; a child that skips makes t skip.
func InPrivateMountNS(t *testing.T, tools ...string) bool {
	t.Helper()
	if os.Getenv(nsEnv) == "1" {
		return true
	}
	RequireRoot(t, tools...)
	argv := append([]string{"--mount", "--propagation", "private"},
		Self("-test.run=^"+strings.ReplaceAll(t.Name(), "/", "$/^")+"$", "-test.v", "-test.count=1")...)
	cmd := exec.Command("unshare", argv...)
	cmd.Env = append(os.Environ(), nsEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a private mount namespace: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "--- SKIP: "+t.Name()) {
		t.Skipf("skipped in the private mount namespace:\n%s", out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("the test did not run in the private mount namespace:\n%s", out)
	}
	return false
}

// MountBtrfs makes a fresh btrfs of size bytes on a sparse file (in
// /dev/shm when it can: tests commit many transactions) and mounts its top
// level (subvolid=5) at a temp directory, which it returns. Call it only
// inside InPrivateMountNS.
func MountBtrfs(t *testing.T, size int64) string {
	t.Helper()
	if os.Getenv(nsEnv) != "1" {
		t.Fatal("MountBtrfs outside InPrivateMountNS would mount on the host")
	}
	dir := t.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "overlayupd-btrfs-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			dir = d
		}
	}
	img := filepath.Join(dir, "btrfs.img")
	f, err := os.Create(img)
	Must(t, err)
	Must(t, f.Truncate(size))
	Must(t, f.Close())
	runTool(t, "mkfs.btrfs", "-q", "-f", img)
	mnt := t.TempDir()
	runTool(t, "mount", "-o", "loop,subvolid=5", img, mnt)
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	return mnt
}
