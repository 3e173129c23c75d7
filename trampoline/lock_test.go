package trampoline_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/trampoline"
)

func TestLockStore(t *testing.T) {
	dir := t.TempDir()
	l, err := trampoline.LockStore(dir, []string{"overlayupd", "apply", "foo.sqsh"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = trampoline.LockStore(dir, []string{"overlayupd", "commit"})
	if !errors.Is(err, trampoline.ErrLocked) {
		t.Fatalf("second lock: got %v, want ErrLocked", err)
	}
	want := fmt.Sprintf("store %s is locked by pid %d (overlayupd apply foo.sqsh); wait or check that process", dir, os.Getpid())
	if err.Error() != want {
		t.Errorf("second lock:\n got %q\nwant %q", err, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := trampoline.LockStore(dir, []string{"overlayupd", "commit"})
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	defer l2.Close()
	b, err := os.ReadFile(dir + "/" + trampoline.LockFile)
	if err != nil || !strings.Contains(string(b), "overlayupd commit") {
		t.Errorf("lock file: got %q, %v; want the holder's command line", b, err)
	}
}

func TestLockStoreMissingDir(t *testing.T) {
	if _, err := trampoline.LockStore(t.TempDir()+"/nope", nil); err == nil || errors.Is(err, trampoline.ErrLocked) {
		t.Fatalf("got %v, want an open error", err)
	}
}

// TestLockStoreNotADirectory: a slot directory that is a FIFO (a store on
// untrusted media, or a damaged one) is refused at once. Every store
// command takes the lock before it lists anything: an open that waited for
// a writer on the FIFO would hang apply, commit, rollback and gc for good.
func TestLockStoreNotADirectory(t *testing.T) {
	for name, plant := range map[string]func(p string) error{
		"fifo": func(p string) error { return unix.Mkfifo(p, 0o644) },
		"file": func(p string) error { return os.WriteFile(p, nil, 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), trampoline.SlotDir)
			if err := plant(dir); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				l, err := trampoline.LockStore(dir, nil)
				if err == nil {
					l.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || errors.Is(err, trampoline.ErrLocked) {
					t.Fatalf("got %v, want an error: %s is not a directory", err, name)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("LockStore hangs on a slot directory that is a %s", name)
			}
		})
	}
}
