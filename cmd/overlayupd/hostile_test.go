package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/squash"
	"github.com/overlayupd/overlayupd/trampoline"
)

// TestHostileStore: a store on untrusted media, with links and FIFOs
// planted where the commands read and write. Every command finishes (none
// hangs on a FIFO or runs out of memory on /dev/zero), nothing outside the
// store is written, and the links are never taken for entries.
func TestHostileStore(t *testing.T) {
	t.Parallel()
	outside := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(outside, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plant := map[string]func(p string) error{
		trampoline.LockFile:         func(p string) error { return os.Symlink(outside, p) },
		trampoline.FailedReasonFile: func(p string) error { return os.Symlink("/dev/zero", p) },
		trampoline.BootReasonFile:   func(p string) error { return unix.Mkfifo(p, 0o644) },
		"root.prev.sqsh":            func(p string) error { return unix.Mkfifo(p, 0o644) },
		"root.failed.sqsh":          func(p string) error { return os.Symlink(outside, p) },
		trampoline.ClearLayerFile:   func(p string) error { return unix.Mkfifo(p, 0o644) },
	}
	for _, args := range [][]string{
		{"status", "--json"},
		{"apply", "IMG"},
		{"rollback"},
		{"gc"},
		{"commit", "--force", "--health-dir", "HD"},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			e := testEnv(t)
			top, _ := newStore(t, e)
			for name, f := range plant {
				_ = os.Remove(slotPath(top, name)) // store init leaves a .lock
				if err := f(slotPath(top, name)); err != nil {
					t.Fatal(err)
				}
			}
			a := []string{}
			for _, x := range args {
				switch x {
				case "IMG":
					x = bootable().squashfs(t)
				case "HD":
					x = t.TempDir()
				}
				a = append(a, x)
			}
			done := make(chan string, 1)
			go func() {
				out, err := run(t, e, "overlayupd", append(a, "--store", top)...)
				done <- out + errString(err)
			}()
			select {
			case out := <-done:
				t.Logf("%v: %s", args, out)
			case <-time.After(60 * time.Second):
				t.Fatalf("%v hangs on a hostile store", args)
			}
			if b, err := os.ReadFile(outside); err != nil || string(b) != "keep me\n" {
				t.Errorf("%v wrote outside the store: %q, %v", args, b, err)
			}
			if fi, err := os.Lstat(slotPath(top, "root.sqsh")); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("%v: the committed root is gone: %v", args, err)
			}
		})
	}
}

// replaceSlotDir replaces the store's roots/ with what put makes there.
func replaceSlotDir(t *testing.T, top string, put func(p string) error) {
	t.Helper()
	slots := filepath.Join(top, trampoline.SlotDir)
	if err := os.RemoveAll(slots); err != nil {
		t.Fatal(err)
	}
	if err := put(slots); err != nil {
		t.Fatal(err)
	}
}

// withImage is args with the placeholder IMG replaced by img.
func withImage(args []string, img string) []string {
	a := make([]string, 0, len(args))
	for _, x := range args {
		if x == "IMG" {
			x = img
		}
		a = append(a, x)
	}
	return a
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

// TestHostileSlotDir: a store whose slot directory is a FIFO (untrusted or
// damaged media). Every command that changes the store fails at once with
// an error; none waits for a writer on the FIFO.
func TestHostileSlotDir(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"status"},
		{"apply", "IMG"},
		{"commit", "--force"},
		{"rollback"},
		{"gc"},
		{"mark-good"},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			e := testEnv(t)
			top, img := newStore(t, e)
			replaceSlotDir(t, top, func(p string) error { return unix.Mkfifo(p, 0o644) })
			a := withImage(args, img)
			done := make(chan error, 1)
			go func() {
				_, err := run(t, e, "overlayupd", append(a, "--store", top)...)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("%v on a store whose %s is a FIFO: no error", args, trampoline.SlotDir)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("%v hangs on a store whose %s is a FIFO", args, trampoline.SlotDir)
			}
		})
	}
}

// TestHostileKeysDir: the store's keys/ is on the same untrusted media as
// its roots. A FIFO planted as the records or the device key makes every
// command that reads them fail or go on at once, never wait for a writer.
func TestHostileKeysDir(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"records.json", "device.key", "device.pub"} {
		for _, args := range [][]string{{"status"}, {"apply", "IMG"}} {
			t.Run(name+"/"+args[0], func(t *testing.T) {
				// Not parallel: six stores and images at once only add
				// forks for the suite's other tests to race with.
				k := newSigner(t)
				e := testEnv(t)
				top, _ := newStore(t, e)
				trustIn(t, e.trustRoot, k)
				p := filepath.Join(top, KeysDir, name)
				_ = os.Remove(p)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := unix.Mkfifo(p, 0o600); err != nil {
					t.Fatal(err)
				}
				a := []string{}
				for _, x := range args {
					if x == "IMG" {
						x = bootable().squashfs(t)
						k.sign(t, x)
					}
					a = append(a, x)
				}
				done := make(chan string, 1)
				go func() {
					out, err := run(t, e, "overlayupd", append(a, "--store", top)...)
					done <- out + errString(err)
				}()
				select {
				case out := <-done:
					t.Logf("%v: %s", args, out)
				case <-time.After(20 * time.Second):
					if w, err := os.OpenFile(p, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
						w.Close() // let the blocked open return
					}
					<-done
					t.Fatalf("%v hangs on a store whose keys/%s is a FIFO", args, name)
				}
			})
		}
	}
}

// TestHostileNamesInStatus: names and reasons on the store (untrusted
// media) with control characters, escape sequences and bytes that are not
// UTF-8. status prints them escaped: raw, a name could clear or recolour
// the terminal, or forge a line of its own ("next boot: ..."). status
// --json keeps them exact, as JSON escapes. gc names what it removed the
// same way.
func TestHostileNamesInStatus(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	evil := []string{".stage-\x1b[2J\x1b[31mX\nnext boot: boots root.sqsh (forged)", "rm-a\rb", "rm-\xff\xfe", "rm-\u202egnp.exe"}
	for _, n := range evil {
		if err := os.WriteFile(slotPath(top, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reason := `{"time":"2024-01-01T00:00:00Z","entry":"root.sqsh\u001b[2J","why":"bad\u001b]0;title\u0007\nnext boot: forged"}`
	if err := os.WriteFile(slotPath(top, trampoline.BootReasonFile), []byte(reason), 0o644); err != nil {
		t.Fatal(err)
	}
	clean := func(what, out string) {
		t.Helper()
		for _, c := range out {
			if c != '\n' && (c < ' ' || c == 0x7f || c == 0x202e) {
				t.Errorf("%s prints %q raw:\n%q", what, c, out)
				break
			}
		}
		if !utf8.ValidString(out) {
			t.Errorf("%s prints bytes that are not UTF-8:\n%q", what, out)
		}
		if n := strings.Count(out, "\nnext boot:"); n > 1 {
			t.Errorf("%s has %d lines that start with 'next boot:', want 1 (a name forged one):\n%s", what, n, out)
		}
	}
	out, err := run(t, e, "overlayupd", "status", "--store", top)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	clean("status", out)
	for _, want := range []string{`\x1b[2J`, `\xff\xfe`, `rm-a\rb`, `\u202e`} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not show %s escaped:\n%s", want, out)
		}
	}
	out, err = run(t, e, "overlayupd", "status", "--json", "--store", top)
	if err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	var st fullStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	names := map[string]bool{}
	for _, en := range st.Store.Entries {
		names[en.Name] = true
	}
	for _, n := range evil {
		if utf8.ValidString(n) && !names[n] {
			t.Errorf("status --json lacks the entry %q exactly: %v", n, names)
		}
	}
	out, err = run(t, e, "overlayupd", "gc", "--store", top)
	if err != nil {
		t.Fatalf("gc: %v\n%s", err, out)
	}
	clean("gc", out)
}

// TestHostileSlotDirLink: a store whose roots/ is a link to another
// directory is refused by every command, and nothing there is touched: gc
// used to delete its rm-* and .stage-* files.
func TestHostileSlotDirLink(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"status"}, {"gc"}, {"apply", "IMG"}, {"rollback"}} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			e := testEnv(t)
			top, img := newStore(t, e)
			elsewhere := t.TempDir()
			for _, n := range []string{"rm-important", ".stage-important", "root.sqsh"} {
				if err := os.WriteFile(filepath.Join(elsewhere, n), []byte("keep me\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			replaceSlotDir(t, top, func(p string) error { return os.Symlink(elsewhere, p) })
			a := withImage(args, img)
			out, err := run(t, e, "overlayupd", append(a, "--store", top)...)
			if err == nil || !strings.Contains(err.Error(), "symbolic link to "+elsewhere) {
				t.Errorf("%v on a store whose roots/ is a link: %v\n%s", args, err, out)
			}
			ents, _ := os.ReadDir(elsewhere)
			if len(ents) != 3 {
				t.Errorf("%v: the linked directory now holds %d entries, want its 3", args, len(ents))
			}
		})
	}
}

// TestHostileNameMovedAside: a FIFO at root.prev.sqsh, which a commit
// renames the old root to, is moved aside (.hostile-root.prev.sqsh) before
// the commit, which then goes through. It used to stop after the commit
// point (EEXIST), and every later command failed at the same rename.
func TestHostileNameMovedAside(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	b, err := os.ReadFile(slotPath(top, "root.sqsh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(slotPath(top, "root.trying-0.sqsh"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(slotPath(top, "root.prev.sqsh"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, e, "overlayupd", "commit", "--force", "--health-dir", t.TempDir(), "--store", top); err != nil {
		t.Fatalf("commit with a FIFO at root.prev.sqsh: %v\n%s", err, out)
	}
	for n, regular := range map[string]bool{"root.sqsh": true, "root.prev.sqsh": true, ".hostile-root.prev.sqsh": false} {
		fi, err := os.Lstat(slotPath(top, n))
		if err != nil || fi.Mode().IsRegular() != regular {
			t.Errorf("%s after the commit: %v, %v; want regular %v", n, fi, err, regular)
		}
	}
}

// TestStoreInitKernelCheck: store init's first root, which has nothing to
// fall back to, is checked by a kernel mount too: an image whose
// bytes_used is one more than mksquashfs wrote passes the in-process
// reader, but the kernel cannot read its id table. It is refused, and no
// root is left in the store. The same image, not damaged, is taken.
func TestStoreInitKernelCheck(t *testing.T) {
	testroot.RequireRoot(t, "mksquashfs")
	t.Parallel()
	e := testEnv(t)
	e.kernelCheck = checkByKernel
	img := bootable().squashfs(t)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), b...)
	binary.LittleEndian.PutUint64(bad[40:], binary.LittleEndian.Uint64(bad[40:])+1) // bytes_used
	badImg := filepath.Join(t.TempDir(), "bad.sqsh")
	if err := os.WriteFile(badImg, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	top := t.TempDir()
	out, err := run(t, e, "overlayupd", "store", "init", top, "--image", badImg)
	if err == nil || !strings.Contains(err.Error(), "the kernel cannot use "+badImg) {
		t.Errorf("store init of an image the kernel cannot mount: %v\n%s", err, out)
	}
	if ents, _ := os.ReadDir(filepath.Join(top, trampoline.SlotDir)); slices.ContainsFunc(ents, func(d os.DirEntry) bool { return strings.HasPrefix(d.Name(), "root") }) {
		t.Errorf("a refused store init left a root: %v", ents)
	}
	top = t.TempDir()
	if out, err := run(t, e, "overlayupd", "store", "init", top, "--image", img); err != nil {
		t.Errorf("store init of a good image, checked by the kernel: %v\n%s", err, out)
	}
}

// TestDamagedRecordsDoNotBlockApply: with no key trusted, an unreadable
// keys/records.json (garbage, empty, a FIFO, a link) no longer stops every
// apply: it is moved aside to records.json.damaged, and the records start
// again with the new root's.
func TestDamagedRecordsDoNotBlockApply(t *testing.T) {
	t.Parallel()
	for name, plant := range map[string]func(p string) error{
		"garbage": func(p string) error { return os.WriteFile(p, []byte("{not json"), 0o644) },
		"empty":   func(p string) error { return os.WriteFile(p, nil, 0o644) },
		"FIFO":    func(p string) error { return unix.Mkfifo(p, 0o644) },
		"link":    func(p string) error { return os.Symlink("/etc/passwd", p) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := testEnv(t)
			top, _ := newStore(t, e)
			p := filepath.Join(top, "keys", "records.json")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := plant(p); err != nil {
				t.Fatal(err)
			}
			if out, err := run(t, e, "overlayupd", "apply", "--store", top, bootable().squashfs(t)); err != nil {
				t.Fatalf("apply with %s records: %v\n%s", name, err, out)
			}
			if _, err := os.Lstat(p + ".damaged"); err != nil {
				t.Errorf("the damaged records were not moved aside: %v", err)
			}
			if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("no new records file: %v", err)
			}
		})
	}
}

// TestKernelCheckUnavailable: where the kernel mount cannot be made (a
// container without loop devices), store init's extra check warns and lets
// the in-process reader's word stand; an image the kernel refuses is
// refused. Not parallel: it swaps validateByMount.
func TestKernelCheckUnavailable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("checkByKernel runs as root only")
	}
	defer func(f func(string, []uint16) (squash.Info, error)) { validateByMount = f }(validateByMount)
	img := staged{tmp: "/store/roots/.stage-x"}
	var warn strings.Builder
	validateByMount = func(string, []uint16) (squash.Info, error) {
		return squash.Info{}, fmt.Errorf("%w: cannot check a gzip image without a working loop mount: %w", squash.ErrUnsupportedCompression, unix.EPERM)
	}
	if err := checkByKernel(img, "root.sqsh", nil, &warn); err != nil || !strings.Contains(warn.String(), "checked by the in-process reader only") {
		t.Errorf("no loop mount here: err %v, warning %q; want none and a warning", err, warn.String())
	}
	validateByMount = func(string, []uint16) (squash.Info, error) {
		return squash.Info{}, fmt.Errorf("%w: the kernel refused to mount it: %w", squash.ErrCorrupt, unix.EINVAL)
	}
	if err := checkByKernel(img, "root.sqsh", nil, io.Discard); err == nil {
		t.Error("an image the kernel refuses passed")
	}
}
