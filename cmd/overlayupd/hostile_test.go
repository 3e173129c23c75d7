package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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
			slots := filepath.Join(top, trampoline.SlotDir)
			if err := os.RemoveAll(slots); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mkfifo(slots, 0o644); err != nil {
				t.Fatal(err)
			}
			a := []string{}
			for _, x := range args {
				if x == "IMG" {
					x = img
				}
				a = append(a, x)
			}
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
