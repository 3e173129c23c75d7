package snapshot

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// describe is a tree file by file: type, mode, owner, size, link count,
// content digest or link target or device, mtime, and xattrs (overlay-private
// ones left out: CopyTree drops them on purpose). Two equal descriptions are
// the same tree for a root filesystem.
func describe(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		what := ""
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			what = fmt.Sprintf("%x", sha256.Sum256(b))
		case unix.S_IFLNK:
			what, _ = os.Readlink(p)
		case unix.S_IFCHR, unix.S_IFBLK:
			what = fmt.Sprintf("dev %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		nlink := st.Nlink
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			nlink = 0 // btrfs counts directory links as 1
		}
		mtime := ""
		if rel != "." {
			mtime = time.Unix(st.Mtim.Unix()).UTC().Format(time.RFC3339Nano)
		}
		names, err := listXattrs(p)
		if err != nil {
			return err
		}
		var xs []string
		for _, n := range names {
			if overlayPrivate(n) || n == "security.selinux" {
				continue
			}
			v, err := getXattr(p, n)
			if err != nil {
				return err
			}
			xs = append(xs, fmt.Sprintf("%s=%x", n, v))
		}
		sort.Strings(xs)
		out[rel] = fmt.Sprintf("mode %o owner %d:%d size %d nlink %d %s mtime %s xattrs [%s]",
			st.Mode, st.Uid, st.Gid, st.Size*int64(boolInt(st.Mode&unix.S_IFMT != unix.S_IFDIR)), nlink, what, mtime, strings.Join(xs, " "))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// capV2 is a VFS_CAP_REVISION_2 security.capability value granting
// cap_net_bind_service (bit 10), permitted and effective.
var capV2 = []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

func TestCopyTree(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: owners, device nodes, trusted and security xattrs")
	}
	deep := strings.Repeat("d/", 40) + "leaf"
	src := testroot.NewTree(t,
		testroot.File("etc/config", "key=value\n", 0o640),
		testroot.File("usr/bin/suid", "#!/bin/sh\n", 0o4755),
		testroot.File("usr/bin/ping", "binary", 0o755),
		testroot.File(deep, "deep\n", 0o644),
		testroot.Symlink("/etc/passwd", "outside"), // points out: copied as a link, never followed
		testroot.Symlink("../etc/config", "usr/config-link"),
		testroot.Dir("empty", 0o700),
		testroot.CharDevice("dev/null", 0o666, 1, 3),
		testroot.Fifo("run/fifo", 0o600),
	)
	must(t, os.Link(filepath.Join(src, "etc/config"), filepath.Join(src, "etc/config.hard")))
	must(t, os.Lchown(filepath.Join(src, "etc/config"), 1234, 5678))
	must(t, os.Lchown(filepath.Join(src, "outside"), 42, 43))
	must(t, os.Chmod(filepath.Join(src, "usr/bin/suid"), 0o4755)) // after chown, which clears it
	sparse := filepath.Join(src, "var/sparse")
	must(t, os.MkdirAll(filepath.Dir(sparse), 0o755))
	f, err := os.Create(sparse)
	must(t, err)
	_, err = f.WriteAt([]byte("end"), 8<<20)
	must(t, err)
	f.Close()
	must(t, unix.Lsetxattr(filepath.Join(src, "usr/bin/ping"), "security.capability", capV2, 0))
	must(t, unix.Lsetxattr(filepath.Join(src, "etc/config"), "user.note", []byte("kept"), 0))
	must(t, unix.Lsetxattr(filepath.Join(src, "empty"), "trusted.overlay.opaque", []byte("y"), 0))
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	must(t, os.Chtimes(filepath.Join(src, "etc"), old, old))

	dst := t.TempDir()
	var copied int64
	must(t, CopyTree(src, dst, func(n int64) { copied = n }))
	want, got := describe(t, src), describe(t, dst)
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s:\n got  %s\n want %s", p, got[p], w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: in the copy only", p)
		}
	}
	if v, err := getXattr(filepath.Join(dst, "empty"), "trusted.overlay.opaque"); err == nil {
		t.Errorf("overlay xattr copied: %q", v)
	}
	var st unix.Stat_t
	must(t, unix.Stat(filepath.Join(dst, "var/sparse"), &st))
	if st.Blocks*512 >= 1<<20 {
		t.Errorf("sparse file copied with %d bytes allocated, want a hole", st.Blocks*512)
	}
	if copied < 8<<20 {
		t.Errorf("progress reported %d bytes, want at least the sparse file's size", copied)
	}
	if err := CopyTree(src, dst, nil); err == nil {
		t.Error("CopyTree into a non-empty directory: nil error")
	}
}

// TestWriteSparse: data runs land whole, zero blocks become holes, a
// partial last block is kept.
func TestWriteSparse(t *testing.T) {
	b := make([]byte, 10*4096+100)
	for _, blk := range []int{0, 1, 5, 9} {
		for i := range 4096 {
			b[blk*4096+i] = byte(blk + 1)
		}
	}
	b[len(b)-1] = 7
	p := filepath.Join(t.TempDir(), "f")
	f, err := os.Create(p)
	must(t, err)
	must(t, writeSparse(f, b))
	must(t, f.Truncate(int64(len(b))))
	must(t, f.Close())
	got, err := os.ReadFile(p)
	must(t, err)
	if string(got) != string(b) {
		t.Fatal("content differs")
	}
	var st unix.Stat_t
	must(t, unix.Stat(p, &st))
	if st.Blocks*512 >= int64(len(b)) {
		t.Errorf("%d bytes allocated for %d with 6 zero blocks: no holes", st.Blocks*512, len(b))
	}
}
