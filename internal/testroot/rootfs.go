package testroot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// BusyboxPath is the host's busybox that Busybox copies into trees; a
// statically linked one, so it runs in a chroot and in a VM.
var BusyboxPath = "/bin/busybox"

// Busybox copies BusyboxPath to bin/busybox (0755) and links each applet
// to it with a relative symlink. An applet is a name, linked in bin/, or a
// path such as usr/bin/awk. With no applets it links every applet of
// `busybox --list-full` except sbin/init and linuxrc, which belong to the
// tree's own init. An entry already there is left alone.
func Busybox(applets ...string) Applier { return BusyboxFrom(BusyboxPath, applets...) }

// BusyboxFrom is Busybox with the busybox binary bb, e.g. another
// architecture's for a VM guest. The applets are still listed by the
// host's BusyboxPath, which runs here: Debian's busybox-static is built
// with one configuration for every architecture.
func BusyboxFrom(bb string, applets ...string) Applier {
	return ApplyFunc(func(root *os.Root) error {
		if err := CopyFile(bb, "bin/busybox", 0o755).Apply(root); err != nil {
			return err
		}
		links := applets
		if len(links) == 0 {
			out, err := exec.Command(BusyboxPath, "--list-full").Output()
			if err != nil {
				return fmt.Errorf("%s --list-full: %w", BusyboxPath, err)
			}
			for _, a := range strings.Fields(string(out)) {
				if a != "sbin/init" && a != "linuxrc" {
					links = append(links, a)
				}
			}
		}
		for _, a := range links {
			if !strings.Contains(a, "/") {
				a = path.Join("bin", a)
			}
			if _, err := root.Lstat(clean(a)); err == nil {
				continue
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := Symlink(relLink("bin/busybox", a), a).Apply(root); err != nil {
				return err
			}
		}
		return nil
	})
}

// Binary copies the overlayupd binary under test (BuildBinary) to p, 0755.
func Binary(p string) Applier { return built(BuildBinary, p) }

// InitOverlay copies the PID-1 binary under test (InitBinary) to p, 0755.
func InitOverlay(p string) Applier { return built(InitBinary, p) }

func built(get func() (string, error), p string) Applier {
	return ApplyFunc(func(root *os.Root) error {
		bin, err := get()
		if err != nil {
			return err
		}
		return CopyFile(bin, p, 0o755).Apply(root)
	})
}

// treeApplets are the busybox applets the privileged tests' scripts use.
var treeApplets = []string{"sh", "awk", "cat", "echo", "dd", "grep", "head", "sed", "ls", "sync", "sleep", "basename", "tr", "rm", "cp"}

// Tree makes a root tree for Boot: the usual mount points, busybox with the
// applets tests use, the overlayupd binary as /usr/sbin/overlayupd, the
// PID-1 binary as /usr/sbin/init-overlay with /sbin/init-overlay linked to
// it (where make install puts them on a merged-/usr system), and files in the map shorthand of Entry (names under
// sbin/ and usr/sbin/ are executable, other files 0644).
func Tree(t testing.TB, files map[string]string) string {
	t.Helper()
	var a []Applier
	for _, d := range []string{"bin", "sbin", "usr/sbin", "etc", "proc", "sys", "dev", "overlay", "tmp", "run"} {
		a = append(a, Dir(d, 0o755))
	}
	a = append(a, Busybox(treeApplets...), Binary("usr/sbin/overlayupd"),
		InitOverlay("usr/sbin/init-overlay"), Symlink("../usr/sbin/init-overlay", "sbin/init-overlay"))
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "sbin/") || strings.HasPrefix(name, "usr/sbin/") {
			mode = 0o755
		}
		a = append(a, Entry(name, files[name], mode))
	}
	return NewTree(t, a...)
}

// ELFStub is the start of a static ELF executable for this machine: what
// apply's runnability check (squash.CheckRunnable) reads of an init or its
// interpreter, for test images that are validated but never booted.
func ELFStub() string {
	b := make([]byte, 64)
	copy(b, "\x7fELF\x02\x01\x01")
	if runtime.GOARCH == "arm" || runtime.GOARCH == "386" {
		b[4] = 1 // ELFCLASS32
	}
	binary.LittleEndian.PutUint16(b[16:], 2) // ET_EXEC
	binary.LittleEndian.PutUint16(b[18:], elfMachine[runtime.GOARCH])
	binary.LittleEndian.PutUint16(b[52:], 64) // e_ehsize
	return string(b)
}

var elfMachine = map[string]uint16{"amd64": 62, "arm64": 183, "arm": 40, "386": 3, "riscv64": 243, "ppc64le": 21, "s390x": 22}
