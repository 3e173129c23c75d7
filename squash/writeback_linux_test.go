package squash

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestStageWritebackError: a write error that the writeback sees first
// (the early fdatasync, or sync_file_range waiting for a window) fails
// Stage and leaves the store as it was. Why this needs its own test: since
// Linux 4.13 a writeback error is reported once per open file, so had the
// writeback dropped it as a hint, the final fsync would have succeeded
// over data that never reached the disk.
func TestStageWritebackError(t *testing.T) {
	defer func(w int64) { wbWindow = w }(wbWindow)
	wbWindow = 4 << 20 // so a 32 MiB image has windows to wait for
	data := randomBytes(32 << 20)
	src := filepath.Join(t.TempDir(), "image.sqsh")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	failWait := func(fd int, off, n int64, flags int) error {
		if flags&unix.SYNC_FILE_RANGE_WAIT_AFTER != 0 {
			return syscall.EIO
		}
		return unix.SyncFileRange(fd, off, n, flags)
	}
	failSync := func(int) error { return syscall.EIO }
	for _, tc := range []struct {
		name  string
		sfr   func(int, int64, int64, int) error
		fsync func(int) error
	}{
		{"window wait", failWait, unix.Fdatasync},
		{"early fdatasync", unix.SyncFileRange, failSync},
		// A kernel without the calls (qemu-user): not an error.
		{"no sync_file_range", func(int, int64, int64, int) error { return unix.ENOSYS }, unix.Fdatasync},
	} {
		for _, from := range []string{"file", "stream"} {
			t.Run(tc.name+" from "+from, func(t *testing.T) {
				defer func() { syncFileRange, fdatasync = unix.SyncFileRange, unix.Fdatasync }()
				syncFileRange, fdatasync = tc.sfr, tc.fsync
				f, err := os.Open(src)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				var r io.Reader = f
				size := int64(len(data))
				if from == "stream" {
					r, size = bytes.NewReader(data), -1
				}
				dir := storeDir(t)
				before := listing(t, dir)
				tmp, _, _, err := Stage(context.Background(), r, size, dir, nil)
				if tc.name == "no sync_file_range" {
					if err != nil {
						t.Fatalf("Stage without sync_file_range: %v", err)
					}
					wantStaged(t, tmp, data)
					return
				}
				if !errors.Is(err, syscall.EIO) {
					t.Fatalf("Stage = %q, %v; want an EIO error", tmp, err)
				}
				if after := listing(t, dir); after != before {
					t.Errorf("store changed:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				t.Logf("error: %v", err)
			})
		}
	}
}
