package main

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/squash"
	"github.com/overlayupd/overlayupd/trampoline"
)

func TestStoreInitLayout(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, img := newStore(t, e)
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{trampoline.MarkerFile, 0o644},
		{"sbin/init-overlay", 0o755},
		{"roots/root.sqsh", 0o644},
		{"dev", os.ModeDir | 0o755},
		{"proc", os.ModeDir | 0o755},
		{"sys", os.ModeDir | 0o755},
		{"overlay", os.ModeDir | 0o755},
	} {
		st, err := os.Lstat(filepath.Join(top, c.path))
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if got := st.Mode(); got != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, got, c.mode)
		}
	}
	if got, want := entrySum(t, slotPath(top, "root.sqsh")), fileSum(t, img); got != want {
		t.Errorf("root.sqsh sha256 %s, want the image's %s", got, want)
	}
	if got, want := slots(t, top), []string{"root.sqsh"}; !slices.Equal(got, want) {
		t.Errorf("slots %v, want %v", got, want)
	}
	if !trampoline.IsStore(top) {
		t.Error("store init made no store")
	}
}

func TestStoreInitRefusals(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, img := newStore(t, e)
	before := treeDigest(t, top)
	empty := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"existing store", []string{"store", "init", top, "--image", img}, "already a store"},
		{"missing dir", []string{"store", "init", filepath.Join(empty, "nope"), "--image", img}, "does not exist"},
		{"no image flag", []string{"store", "init", empty}, "image"},
		{"bad image", []string{"store", "init", empty, "--image", writeFile(t, "junk")}, "not a squashfs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := testEnv(t)
			out, err := run(t, e, "overlayupd", c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want one saying %q\n%s", err, c.want, out)
			}
		})
	}
	if after := treeDigest(t, top); after != before {
		t.Errorf("a refused init changed the store:\n%s\nwas\n%s", after, before)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("a refused init wrote into %s", empty)
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args      []string
		wantEntry string
		wantOut   string
	}{
		{nil, "root.try-1.sqsh", "the next boot tries it once"},
		{[]string{"--tries", "3"}, "root.try-3.sqsh", "up to 3 times"},
	} {
		t.Run(c.wantEntry, func(t *testing.T) {
			t.Parallel()
			e := testEnv(t)
			top, _ := newStore(t, e)
			img := bootable().squashfs(t)
			out, err := run(t, e, "overlayupd", append([]string{"apply", "--store", top, img}, c.args...)...)
			if err != nil {
				t.Fatalf("apply: %v\n%s", err, out)
			}
			sum := fileSum(t, img)
			if got, want := slots(t, top), []string{"root.sqsh", c.wantEntry}; !slices.Equal(got, want) {
				t.Errorf("slots %v, want %v", got, want)
			}
			if got := entrySum(t, slotPath(top, c.wantEntry)); got != sum {
				t.Errorf("%s sha256 %s, want %s", c.wantEntry, got, sum)
			}
			for _, want := range []string{"staged " + c.wantEntry, sum, c.wantOut, "overlayupd commit", "root.sqsh"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestApplyStdinJSON(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	img := bootable().squashfs(t)
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runIn(t, e, bytes.NewReader(data), "apply", "--store", top, "--json", "-")
	if err != nil {
		t.Fatalf("apply -: %v\n%s", err, out)
	}
	// trampoline.Role marshals to text but has no UnmarshalText: decode roles as strings.
	type result struct {
		Entry, SHA256 string
		Size          int64
		Tries         int
		NextBoot      struct {
			Role  string
			Trial bool
		} `json:"next_boot"`
	}
	var got result
	mustJSON(t, out, &got)
	want := result{Entry: "root.try-1.sqsh", SHA256: fileSum(t, img), Size: int64(len(data)), Tries: 1}
	want.NextBoot.Role, want.NextBoot.Trial = "staged", true
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestApplyBadInput: every bad input of the issue is refused with a message
// saying what is wrong, and the store is byte-for-byte unchanged.
func TestApplyBadInput(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	good := bootable().squashfs(t)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	noInit := bootable()
	delete(noInit.files, "sbin/init")
	noInit.files["bin/sh"] = "x"
	notExec := bootable()
	notExec.modes["sbin/init"] = 0o644
	dangling := bootable()
	dangling.files["sbin/init"] = "->/bin/missing"
	otherArch := bootable()
	otherArch.files["bin/sh"] = foreignELF()
	noShell := bootable()
	delete(noShell.files, "bin/sh")

	cases := []struct {
		name  string
		arg   string // image argument; "-" reads stdin
		stdin []byte
		want  string
	}{
		{"empty file", writeFile(t, ""), nil, "empty"},
		{"random bytes", writeFile(t, string(randomBytes(t, 64<<10))), nil, "not a squashfs"},
		{"truncated at half", writeFile(t, string(data[:len(data)/2])), nil, "truncated"},
		{"truncated 4 KiB before the end", writeFile(t, string(data[:len(data)-4096])), nil, "truncated"},
		{"ext4 named .sqsh", ext4Image(t), nil, "ext4"},
		{"no /sbin/init", noInit.squashfs(t), nil, "no /sbin/init"},
		{"/sbin/init not executable", notExec.squashfs(t), nil, "not executable"},
		{"/sbin/init dangling symlink", dangling.squashfs(t), nil, "dangling"},
		{"/sbin/init for another architecture", otherArch.squashfs(t), nil, "another architecture"},
		{"/sbin/init a script without its shell", noShell.squashfs(t), nil, "needs /bin/sh, which is not in the image"},
		{"larger than the free space", hugeImage(t, good, top), nil, "not enough free space"},
		{"a directory", t.TempDir(), nil, "is a directory"},
		{"missing path", filepath.Join(t.TempDir(), "nope.sqsh"), nil, "does not exist"},
		{"stdin ends early", "-", data[:len(data)-4096], "read from stdin"},
		{"stdin empty", "-", []byte{}, "stdin"},
		{"stdin not squashfs", "-", make([]byte, 1<<20), "stdin: not a squashfs"},
		{"a FIFO (no writer: must not block)", fifo(t), nil, "is a FIFO"},
	}
	before := treeDigest(t, top)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Not parallel: every case checks that the shared store is unchanged.
			e := testEnv(t)
			out, err := runIn(t, e, bytes.NewReader(c.stdin), "apply", "--store", top, c.arg)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "overlayupd apply:") {
				t.Errorf("err = %v, want a refusal naming apply and saying %q\n%s", err, c.want, out)
			}
			if after := treeDigest(t, top); after != before {
				t.Errorf("the store changed:\n%s\nwas\n%s", after, before)
			}
		})
	}
}

func TestApplyTriesRange(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	img := bootable().squashfs(t)
	before := treeDigest(t, top)
	for _, n := range []string{"0", "100", "-1"} {
		if _, err := run(t, e, "overlayupd", "apply", "--store", top, "--tries", n, img); err == nil || !strings.Contains(err.Error(), "--tries") {
			t.Errorf("--tries %s: err = %v, want a refusal", n, err)
		}
	}
	if treeDigest(t, top) != before {
		t.Error("a refused apply changed the store")
	}
}

func TestApplyReboot(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	rebooted := 0
	e.reboot = func() error { rebooted++; return nil }
	bad := writeFile(t, "junk")
	if _, err := run(t, e, "overlayupd", "apply", "--store", top, "--reboot", bad); err == nil || rebooted != 0 {
		t.Fatalf("refused apply: err %v, rebooted %d times; want an error and no reboot", err, rebooted)
	}
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, "--reboot", bootable().squashfs(t)); err != nil || rebooted != 1 {
		t.Fatalf("apply --reboot: err %v, rebooted %d times, want 1\n%s", err, rebooted, out)
	}
}

func TestLockHeldNamesHolder(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	img := bootable().squashfs(t)
	// A staged trial, so that commit --force has something to commit.
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, img); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	l, err := trampoline.LockStore(filepath.Join(top, trampoline.SlotDir), []string{"overlayupd", "apply", "other.sqsh"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	before := treeDigest(t, top)
	for _, args := range [][]string{{"apply", img}, {"commit", "--force"}, {"rollback"}, {"gc"}} {
		_, err := run(t, e, "overlayupd", append(args, "--store", top)...)
		pid := "pid " + strconv.Itoa(os.Getpid())
		if err == nil || !strings.Contains(err.Error(), pid) || !strings.Contains(err.Error(), "other.sqsh") {
			t.Errorf("%v while locked: err = %v, want one naming %s and its command", args, err, pid)
		}
	}
	if treeDigest(t, top) != before {
		t.Error("a locked-out command changed the store")
	}
}

func TestLockedDirectory(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	d, err := os.Open(filepath.Join(top, trampoline.SlotDir))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, e, "overlayupd", "gc", "--store", top); !errors.Is(err, trampoline.ErrLocked) || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("gc with the slot directory locked: err = %v, want a refusal", err)
	}
}

func TestStoreCommandsNeedRoot(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, img := newStore(t, e)
	e.geteuid = func() int { return 1000 }
	for _, args := range [][]string{{"apply", img, "--store", top}, {"commit", "--store", top}, {"rollback", "--store", top},
		{"gc", "--store", top}, {"store", "init", t.TempDir(), "--image", img}} {
		_, err := run(t, e, "overlayupd", args...)
		if err == nil || !strings.Contains(err.Error(), "must be run as root") {
			t.Errorf("%v as non-root: err = %v, want a refusal", args, err)
		}
	}
}

func TestNotAStore(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	dir := t.TempDir()
	_, err := run(t, e, "overlayupd", "gc", "--store", dir)
	if err == nil || !strings.Contains(err.Error(), "not a store") {
		t.Errorf("gc on a plain directory: err = %v, want 'not a store'", err)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.sqsh")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func ext4Image(t *testing.T) string {
	t.Helper()
	return testroot.Ext4(t, testroot.NewTree(t, bootable().appliers()...), "4M")
}

// hugeImage is a valid image padded (sparse) past the free space of the
// store's filesystem: it passes validation, and only the space check refuses it.
func hugeImage(t *testing.T, good, top string) string {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(top, &st); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "huge.sqsh")
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, int64(st.Bavail*uint64(st.Bsize))*2+1<<30); err != nil {
		t.Skipf("cannot make a sparse image past the free space: %v", err)
	}
	if _, err := checkImage(p, hostMachines()); err != nil {
		t.Fatalf("the padded image must pass validation, or the test proves nothing: %v", err)
	}
	return p
}

func fifo(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "pipe.sqsh")
	if err := unix.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestApplyStdinRefusedAtOnce: a stream that is not squashfs is refused at
// its first bytes, not read to its end (or to a full store).
func TestApplyStdinRefusedAtOnce(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	r := &countingZeros{limit: 1 << 40}
	if _, err := runIn(t, e, r, "apply", "--store", top, "-"); err == nil || !strings.Contains(err.Error(), "not a squashfs") {
		t.Fatalf("apply - < zeros: %v", err)
	}
	if r.n > 1<<20 {
		t.Errorf("apply read %d bytes of a stream it refuses; want the superblock's worth", r.n)
	}
}

// countingZeros is an endless stream of zeros (up to limit) that counts
// what was read.
type countingZeros struct{ n, limit int64 }

func (z *countingZeros) Read(p []byte) (int, error) {
	if z.n >= z.limit {
		return 0, io.EOF
	}
	clear(p)
	z.n += int64(len(p))
	return len(p), nil
}

// TestFindTrampoline: which file store init installs as the store's
// /sbin/init-overlay.
func TestFindTrampoline(t *testing.T) {
	t.Parallel()
	dir, other := t.TempDir(), t.TempDir()
	self := filepath.Join(dir, "overlayupd")
	write := func(p, body string, mode os.FileMode) string {
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write(self, "\x7fELF self", 0o755)
	elf := write(filepath.Join(other, "init-overlay"), "\x7fELF init", 0o755)
	script := write(filepath.Join(t.TempDir(), "init-overlay"), "#!/bin/sh\n", 0o755)
	noexec := write(filepath.Join(t.TempDir(), "init-overlay"), "\x7fELF", 0o644)
	for _, c := range []struct {
		name     string
		explicit string
		beside   string // what init-overlay beside self is: "", "elf", "link-self"
		dirs     []string
		want     string
		found    bool
		wantErr  string
	}{
		{name: "beside this binary", beside: "elf", dirs: []string{other}, want: filepath.Join(dir, "init-overlay"), found: true},
		{name: "in a search dir", dirs: []string{other}, want: elf, found: true},
		{name: "an old install's link to this binary is skipped", beside: "link-self", dirs: []string{other}, want: elf, found: true},
		{name: "none: this binary", dirs: []string{t.TempDir()}},
		{name: "explicit", explicit: elf, want: elf, found: true},
		{name: "explicit script refused", explicit: script, wantErr: "not an ELF"},
		{name: "explicit not executable refused", explicit: noexec, wantErr: "not executable"},
		{name: "explicit missing refused", explicit: filepath.Join(other, "nope"), wantErr: "no such file"},
		{name: "explicit directory refused", explicit: other, wantErr: "not a regular file"},
	} {
		os.Remove(filepath.Join(dir, "init-overlay"))
		switch c.beside {
		case "elf":
			write(filepath.Join(dir, "init-overlay"), "\x7fELF beside", 0o755)
		case "link-self":
			if err := os.Symlink("overlayupd", filepath.Join(dir, "init-overlay")); err != nil {
				t.Fatal(err)
			}
		}
		got, found, err := findTrampoline(c.explicit, self, c.dirs, os.Stat, isELFFile)
		switch {
		case c.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err = %v, want one saying %q", c.name, err, c.wantErr)
			}
		case err != nil || got != c.want || found != c.found:
			t.Errorf("%s: = %q, %v, %v; want %q, %v", c.name, got, found, err, c.want, c.found)
		}
	}
}

// TestStoreInitInstallsInitOverlay: store init copies the init-overlay
// beside this binary as the store's trampoline, and says so; without one it
// installs itself, with a warning that says how to fix it.
func TestStoreInitInstallsInitOverlay(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	self, _ := e.executable()
	io := filepath.Join(filepath.Dir(self), "init-overlay")
	if err := os.WriteFile(io, []byte("\x7fELF the PID-1 binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	top := t.TempDir()
	out, err := run(t, e, "overlayupd", "store", "init", top, "--image", bootable().squashfs(t))
	if err != nil {
		t.Fatalf("store init: %v\n%s", err, out)
	}
	if got, want := fileSum(t, filepath.Join(top, "sbin/init-overlay")), fileSum(t, io); got != want {
		t.Errorf("the store's trampoline is not %s", io)
	}
	if !strings.Contains(out, "(from "+io+")") {
		t.Errorf("store init did not say where the trampoline came from:\n%s", out)
	}

	e2 := testEnv(t)
	self2, _ := e2.executable()
	top2 := t.TempDir()
	out, err = run(t, e2, "overlayupd", "store", "init", top2, "--image", bootable().squashfs(t))
	if err != nil {
		t.Fatalf("store init: %v\n%s", err, out)
	}
	if got, want := fileSum(t, filepath.Join(top2, "sbin/init-overlay")), fileSum(t, self2); got != want {
		t.Errorf("without init-overlay, the store's trampoline is not this binary")
	}
	if !strings.Contains(out, "warning: no init-overlay binary") || !strings.Contains(out, "--trampoline") {
		t.Errorf("no warning with the fix:\n%s", out)
	}
}

// foreignELF is the ELF stub with a machine this one is not.
func foreignELF() string {
	b := []byte(testroot.ELFStub())
	m := uint16(squash.EMAArch64)
	if b[18] == byte(squash.EMAArch64) {
		m = squash.EMX8664
	}
	b[18], b[19] = byte(m), byte(m>>8)
	return string(b)
}

// TestApplyArch: --arch names the board an image is for; without it the
// image must run on this system.
func TestApplyArch(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	foreign := bootable()
	foreign.files["bin/sh"] = foreignELF()
	img := foreign.squashfs(t)
	arch := "arm64"
	if foreignELF()[18] == byte(squash.EMX8664) {
		arch = "amd64"
	}
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, "--arch", "sparc", img); err == nil || !strings.Contains(err.Error(), "unknown architecture") {
		t.Errorf("--arch sparc: %v\n%s", err, out)
	}
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, "--arch", arch, img); err != nil {
		t.Errorf("--arch %s: %v\n%s", arch, err, out)
	}
}

// TestApplyStdinCutShort: an image from stdin cut short by fewer bytes than
// its tree adds is refused as incomplete: the staged file's size, which
// includes the tree, hid the cut from the size check.
func TestApplyStdinCutShort(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	data, err := os.ReadFile(bootable().squashfs(t))
	if err != nil {
		t.Fatal(err)
	}
	used := int(binary.LittleEndian.Uint64(data[40:]))
	before := treeDigest(t, top)
	out, err := runIn(t, e, bytes.NewReader(data[:used-100]), "apply", "--store", top, "-")
	if err == nil || !strings.Contains(out+err.Error(), "incomplete") {
		t.Errorf("apply of an image cut 100 bytes short of its %d: %v\n%s", used, err, out)
	}
	if treeDigest(t, top) != before {
		t.Error("a refused apply changed the store")
	}
}
