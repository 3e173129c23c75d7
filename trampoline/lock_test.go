package trampoline_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

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
