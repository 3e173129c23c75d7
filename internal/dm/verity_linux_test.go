package dm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/loop"
	"github.com/overlayupd/overlayupd/internal/mountns"
	"github.com/overlayupd/overlayupd/verity"
)

// TestImageEnv names a squashfs image for TestMountVerity to use instead of
// making one with mksquashfs: the VM test runs this test in a guest that
// has no mksquashfs. The image must hold /data.bin (at least 16 KiB,
// stored uncompressed: mksquashfs -noD -no-fragments).
const TestImageEnv = "OVERLAYUPD_DM_TEST_IMAGE"

// requiredEnv makes a kernel without dm-verity a failure, not a skip: the
// VM test sets it, where the modules are loaded.
const requiredEnv = "OVERLAYUPD_DM_REQUIRED"

// needVerity skips (or fails, see requiredEnv) unless we are root on a
// kernel with dm-verity, loading the module when modprobe can.
func needVerity(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("privileged test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("privileged test: needs root for loop and device-mapper devices")
	}
	err := HasVerity()
	if err != nil {
		_ = exec.Command("modprobe", "dm-verity").Run()
		err = HasVerity()
	}
	if err != nil {
		msg := fmt.Sprintf("this kernel cannot run dm-verity: %v (the VM test TestVerityInGuest runs this test in a guest kernel that has it)", err)
		if os.Getenv(requiredEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// testImage returns a writable copy of the test image, named uniquely so
// that its device-mapper name is ours alone.
func testImage(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), fmt.Sprintf("dmtest-%d.sqsh", os.Getpid()))
	if src := os.Getenv(TestImageEnv); src != "" {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	tool, err := exec.LookPath("mksquashfs")
	if err != nil {
		t.Skipf("mksquashfs not found (apt-get install squashfs-tools), and %s is not set", TestImageEnv)
	}
	tree := t.TempDir()
	var payload bytes.Buffer
	for i := 0; payload.Len() < 64<<10; i++ {
		fmt.Fprintf(&payload, "overlayupd dm-verity test line %06d\n", i)
	}
	if err := os.WriteFile(filepath.Join(tree, "data.bin"), payload.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, tree, dst, "-noappend", "-quiet", "-all-root", "-noD", "-no-fragments").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	return dst
}

// appendTree adds the hash tree and trailer to img, as apply does.
func appendTree(t *testing.T, img string) verity.Trailer {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	tree, err := verity.Compute(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := verity.Append(f, tree, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// inNS runs fn in a private mount namespace with a fresh mount point; the
// mount is detached afterwards whatever fn did.
func inNS(t *testing.T, fn func(target string) error) {
	t.Helper()
	target := t.TempDir()
	err := mountns.InPrivate(func() error {
		defer unix.Unmount(target, unix.MNT_DETACH)
		return fn(target)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// flip inverts the byte at off of file p.
func flip(t *testing.T, p string, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// wantGone waits until neither the device-mapper device name nor a loop
// device backed by img is left.
func wantGone(t *testing.T, name, img string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, serr := Status(name)
		loops := loopsBackedBy(img)
		if errors.Is(serr, unix.ENXIO) && len(loops) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind: device %s (status error %v), loop devices %v", name, serr, loops)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func loopsBackedBy(img string) []string {
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == img {
			out = append(out, f)
		}
	}
	return out
}

// TestMountVerity mounts a squashfs image through dm-verity, reads a file,
// then damages one byte of a data block on disk: the read fails with EIO
// and returns no wrong byte, and the target reports the corruption. A
// damaged first block makes the mount itself fail with ErrCorrupt. Nothing
// is left behind after any of it.
func TestMountVerity(t *testing.T) {
	needVerity(t)
	img := testImage(t)
	name := deviceName(img, 1)
	t.Cleanup(func() {
		for i := 1; i <= 8; i++ {
			_ = Remove(deviceName(img, i), false)
		}
	})
	var want []byte
	inNS(t, func(target string) error {
		if _, err := loop.Mount(img, target, "squashfs", unix.MS_RDONLY, ""); err != nil {
			return err
		}
		var err error
		want, err = os.ReadFile(filepath.Join(target, "data.bin"))
		return err
	})
	raw, _ := os.ReadFile(img)
	at := int64(bytes.Index(raw, want[:64]))
	if len(want) < 16<<10 || at < 0 {
		t.Fatalf("the image needs an uncompressed /data.bin of 16 KiB or more (got %d bytes, found at %d)", len(want), at)
	}
	tr := appendTree(t, img)

	t.Run("good", func(t *testing.T) {
		inNS(t, func(target string) error {
			m, err := MountVerity(img, target, "squashfs", 0, "")
			if err != nil {
				return err
			}
			got, err := os.ReadFile(filepath.Join(target, "data.bin"))
			bad, cerr := Corrupt(m.Name)
			switch {
			case err != nil || !bytes.Equal(got, want):
				return fmt.Errorf("read through verity: %d bytes, %v; want the %d bytes of the plain mount", len(got), err, len(want))
			case m.Name != name || !strings.HasPrefix(m.Dev, "/dev/dm-") || m.Trailer.Root != tr.Root:
				return fmt.Errorf("mounted %+v", m)
			case bad || cerr != nil:
				return fmt.Errorf("corrupt = %v, %v on a good image", bad, cerr)
			case !strings.Contains(mountinfo(), m.Dev+" "):
				return fmt.Errorf("%s is not the mount's source:\n%s", m.Dev, mountinfo())
			}
			return unix.Unmount(target, 0)
		})
		wantGone(t, name, img)
	})

	t.Run("damaged data block", func(t *testing.T) {
		off := at + 5000
		flip(t, img, off)
		defer flip(t, img, off)
		inNS(t, func(target string) error {
			m, err := MountVerity(img, target, "squashfs", 0, "")
			if err != nil {
				return fmt.Errorf("the metadata is intact, the mount should work: %w", err)
			}
			got, err := os.ReadFile(filepath.Join(target, "data.bin"))
			if !errors.Is(err, unix.EIO) {
				return fmt.Errorf("read of the damaged file = %d bytes, %v; want EIO", len(got), err)
			}
			if !bytes.HasPrefix(want, got) {
				return fmt.Errorf("the read returned %d bytes that differ from the file's", len(got))
			}
			if bad, err := Corrupt(m.Name); !bad || err != nil {
				return fmt.Errorf("corrupt = %v, %v; want true", bad, err)
			}
			t.Logf("read: %v after %d good bytes; block %d damaged", err, len(got), off/verity.BlockSize)
			return unix.Unmount(target, 0)
		})
		wantGone(t, name, img)
	})

	t.Run("damaged first block", func(t *testing.T) {
		flip(t, img, 100)
		defer flip(t, img, 100)
		inNS(t, func(target string) error {
			_, err := MountVerity(img, target, "squashfs", 0, "")
			if !errors.Is(err, ErrCorrupt) || !errors.Is(err, unix.EIO) {
				return fmt.Errorf("mount of an image with a damaged superblock block = %v, want ErrCorrupt and EIO", err)
			}
			t.Logf("mount: %v", err)
			return nil
		})
		wantGone(t, name, img)
	})

	t.Run("no tree", func(t *testing.T) {
		plain := filepath.Join(t.TempDir(), "plain.sqsh")
		if err := os.WriteFile(plain, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		inNS(t, func(target string) error {
			if _, err := MountVerity(plain, target, "squashfs", 0, ""); !errors.Is(err, verity.ErrNoTrailer) {
				return fmt.Errorf("mount of an image without a tree = %v, want ErrNoTrailer", err)
			}
			return nil
		})
		wantGone(t, deviceName(plain, 1), plain)
	})
}

func mountinfo() string {
	b, _ := os.ReadFile("/proc/thread-self/mountinfo")
	return string(b)
}
