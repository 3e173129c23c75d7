package snapshot

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// overlayOn mounts an overlay of lower (read-only) with a fresh tmpfs upper
// at a temp dir, and returns the merged view and the upper directory.
func overlayOn(t *testing.T, lower, opts string) (merged, upper string) {
	t.Helper()
	layer := t.TempDir()
	must(t, unix.Mount("tmpfs", layer, "tmpfs", 0, "size=256m"))
	t.Cleanup(func() { _ = unix.Unmount(layer, unix.MNT_DETACH) })
	upper, work := filepath.Join(layer, "data"), filepath.Join(layer, "work")
	must(t, os.Mkdir(upper, 0o755))
	must(t, os.Mkdir(work, 0o755))
	merged = t.TempDir()
	data := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if opts != "" {
		data += "," + opts
	}
	must(t, unix.Mount("overlay", merged, "overlay", 0, data))
	t.Cleanup(func() { _ = unix.Unmount(merged, unix.MNT_DETACH) })
	return merged, upper
}

func sh(t *testing.T, dir, script string) {
	t.Helper()
	cmd := exec.Command("sh", "-ec", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
}

// TestMergeUpper: changes made through an overlay, folded into a snapshot
// of its lower layer, give exactly the overlay's view, file by file.
func TestMergeUpper(t *testing.T) {
	onBtrfs(t, func(t *testing.T, mnt string) {
		lower := filepath.Join(mnt, "lower")
		must(t, Create(lower))
		deep := strings.Repeat("d/", 30)
		testroot.Apply(t, lower,
			testroot.File("etc/config", "old\n", 0o644),
			testroot.File("etc/keep", "keep\n", 0o644),
			testroot.File("gone", "x", 0o644),
			testroot.File("dir2/a", "a", 0o644),
			testroot.File("dir2/b", "b", 0o644),
			testroot.File("opq/old1", "1", 0o644),
			testroot.File("opq/old2", "2", 0o644),
			testroot.File("file2dir", "f", 0o644),
			testroot.File("dir2file/child", "c", 0o644),
			testroot.File("moved/inside", "m", 0o644),
			testroot.File("h1", "shared\n", 0o644),
			testroot.File("bin/tool", "tool", 0o755),
			testroot.File(deep+"leaf", "leaf", 0o644),
		)
		must(t, os.Link(filepath.Join(lower, "h1"), filepath.Join(lower, "h2")))
		must(t, unix.Lsetxattr(filepath.Join(lower, "etc"), "user.dropped", []byte("1"), 0))
		must(t, SetReadOnly(lower, true))
		merged, upper := overlayOn(t, lower, "redirect_dir=off,metacopy=off,index=off")
		sh(t, merged, `
echo new > etc/config
echo added > etc/added
rm gone
rm -rf dir2
rm -rf opq && mkdir opq && echo fresh > opq/new
rm file2dir && mkdir file2dir && echo in > file2dir/in
rm -rf dir2file && echo now-a-file > dir2file
mv moved moved2
echo more >> h1
echo linked > newfile && ln newfile newlink
mknod dev-null c 1 3
mkfifo fifo
ln -s /etc/passwd outside
ln -s ../etc/keep rel-link
chmod 4755 bin/tool && chown 12:34 etc/keep
truncate -s 8M sparse && echo end >> sparse
truncate -s 3M allhole
echo start > tailhole && truncate -s 3M tailhole
echo deeper > `+deep+`leaf2
`)
		must(t, unix.Lsetxattr(filepath.Join(merged, "bin/tool"), "security.capability", capV2, 0))
		must(t, unix.Lsetxattr(filepath.Join(merged, "etc/added"), "user.note", []byte("x"), 0))
		must(t, unix.Lremovexattr(filepath.Join(merged, "etc"), "user.dropped"))
		want := describe(t, merged)

		ws := filepath.Join(mnt, "ws")
		must(t, Snapshot(lower, ws, false))
		stats, err := MergeUpper(upper, ws)
		if err != nil {
			t.Fatalf("MergeUpper: %v", err)
		}
		t.Logf("merge: %+v", stats)
		got := describe(t, ws)
		for p, w := range want {
			if g := withoutNlink(got[p]); g != withoutNlink(w) {
				t.Errorf("/%s:\n got  %s\n want %s", p, got[p], w)
			}
		}
		for p := range got {
			if _, ok := want[p]; !ok {
				t.Errorf("/%s: in the merged snapshot only", p)
			}
		}
		// Hard links: the layer's pair is one inode; the copied-up h1 is
		// a new inode, and h2 keeps the old content, as the overlay showed.
		var a, b, h1, h2 unix.Stat_t
		must(t, unix.Lstat(filepath.Join(ws, "newfile"), &a))
		must(t, unix.Lstat(filepath.Join(ws, "newlink"), &b))
		must(t, unix.Lstat(filepath.Join(ws, "h1"), &h1))
		must(t, unix.Lstat(filepath.Join(ws, "h2"), &h2))
		if a.Ino != b.Ino || a.Nlink != 2 {
			t.Errorf("newfile and newlink: inodes %d, %d (nlink %d); want one inode, two links", a.Ino, b.Ino, a.Nlink)
		}
		if h1.Ino == h2.Ino {
			t.Error("h1 was written into the inode it shares with h2")
		}
		if c, _ := os.ReadFile(filepath.Join(ws, "h2")); string(c) != "shared\n" {
			t.Errorf("h2 = %q, want the old content", c)
		}
	})
}

func withoutNlink(s string) string {
	if i := strings.Index(s, " nlink "); i >= 0 {
		if j := strings.Index(s[i+7:], " "); j >= 0 {
			return s[:i] + s[i+7+j:]
		}
	}
	return s
}

// TestMergeUpperRefuses: a layer made with redirect_dir (a renamed lower
// directory lives partly below) is refused before anything is written.
func TestMergeUpperRefuses(t *testing.T) {
	onBtrfs(t, func(t *testing.T, mnt string) {
		lower := filepath.Join(mnt, "lower")
		must(t, Create(lower))
		testroot.Apply(t, lower, testroot.File("dir/a", "a", 0o644))
		merged, upper := overlayOn(t, lower, "redirect_dir=on")
		sh(t, merged, "mv dir dir2")
		ws := filepath.Join(mnt, "ws")
		must(t, Snapshot(lower, ws, false))
		if _, err := MergeUpper(upper, ws); !errors.Is(err, ErrNotSelfContained) {
			t.Fatalf("MergeUpper of a redirect layer = %v, want ErrNotSelfContained", err)
		}
	})
}

// TestMergeXattrWhiteouts: the whiteout form userspace layers use (a
// zero-size file with trusted.overlay.whiteout, in a directory marked
// opaque=x, which is not opaque), next to a kernel-made opaque=y one.
func TestMergeXattrWhiteouts(t *testing.T) {
	onBtrfs(t, func(t *testing.T, mnt string) {
		lower := filepath.Join(mnt, "lower")
		must(t, Create(lower))
		testroot.Apply(t, lower,
			testroot.File("xdir/victim", "v", 0o644),
			testroot.File("xdir/other", "o", 0o644),
			testroot.File("ydir/old", "old", 0o644))
		upper := testroot.NewTree(t,
			testroot.File("xdir/victim", "", 0o644),
			testroot.File("xdir/added", "a", 0o644),
			testroot.File("ydir/new", "new", 0o644))
		must(t, unix.Lsetxattr(filepath.Join(upper, "xdir"), "trusted.overlay.opaque", []byte("x"), 0))
		must(t, unix.Lsetxattr(filepath.Join(upper, "xdir/victim"), "trusted.overlay.whiteout", nil, 0))
		must(t, unix.Lsetxattr(filepath.Join(upper, "ydir"), "trusted.overlay.opaque", []byte("y"), 0))
		ws := filepath.Join(mnt, "ws")
		must(t, Snapshot(lower, ws, false))
		if _, err := MergeUpper(upper, ws); err != nil {
			t.Fatal(err)
		}
		for p, want := range map[string]bool{"xdir/victim": false, "xdir/other": true, "xdir/added": true, "ydir/old": false, "ydir/new": true} {
			if _, err := os.Lstat(filepath.Join(ws, p)); (err == nil) != want {
				t.Errorf("/%s exists: %v, want %v", p, err == nil, want)
			}
		}
		if _, err := getXattr(filepath.Join(ws, "xdir"), "trusted.overlay.opaque"); err == nil {
			t.Error("the opaque marker was copied into the root")
		}
	})
}

// TestMergeUpperChanged: a layer written during the merge is refused when
// the write is to an entry the merge has read already; one to an entry it
// has not reached yet is merged as it is then (the stamp is of each entry as
// the walk reaches it).
func TestMergeUpperChanged(t *testing.T) {
	testroot.NeedOpenat2(t) // MergeUpper opens the root's directories with it
	for _, tc := range []struct {
		name, write string
		want        error
	}{
		{"an entry already read", "a/1", ErrUpperChanged},
		{"an entry not reached yet", "c/3", nil},
		{"a new entry in a directory already listed", "a/new", ErrUpperChanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			upper := testroot.NewTree(t,
				testroot.File("a/1", "one", 0o644),
				testroot.File("b/2", "two", 0o644),
				testroot.File("c/3", "three", 0o644))
			root := testroot.NewTree(t, testroot.File("c/3", "old", 0o644))
			defer func() { afterVisit = nil }()
			afterVisit = func(rel string) {
				if rel == "b/2" {
					must(t, os.WriteFile(filepath.Join(upper, tc.write), []byte("changed"), 0o644))
				}
			}
			_, err := MergeUpper(upper, root)
			if !errors.Is(err, tc.want) {
				t.Fatalf("MergeUpper = %v, want %v", err, tc.want)
			}
			if tc.want == nil {
				if b, _ := os.ReadFile(filepath.Join(root, tc.write)); string(b) != "changed" {
					t.Errorf("/%s = %q, want the content the merge found", tc.write, b)
				}
			}
		})
	}
}

// TestMergeUpperManyDirectories: a layer with more directories than the
// process may hold descriptors (busybox and sysvinit leave the kernel's
// hard limit of 4096; a pip or apt install in the overlay makes thousands
// of directories) is merged, not refused with "too many open files".
func TestMergeUpperManyDirectories(t *testing.T) {
	testroot.NeedOpenat2(t)
	const dirs = 300
	var entries []testroot.Applier
	for i := range dirs {
		entries = append(entries, testroot.File(fmt.Sprintf("usr/lib/p%03d/x/f", i), "data", 0o644))
	}
	entries = append(entries, testroot.File("usr/lib/p000/x/link-a", "linked", 0o644))
	upper := testroot.NewTree(t, entries...)
	// A hard link whose names are far apart in the walk.
	must(t, os.Link(filepath.Join(upper, "usr/lib/p000/x/link-a"), filepath.Join(upper, "usr/lib/p299/x/link-b")))
	root := testroot.NewTree(t, testroot.File("etc/keep", "keep", 0o644))

	var old unix.Rlimit
	must(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &old))
	low := old
	low.Cur = 128
	must(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &low))
	_, err := MergeUpper(upper, root)
	must(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &old))
	if err != nil {
		t.Fatalf("MergeUpper of %d directories with 128 descriptors: %v", dirs, err)
	}
	for _, p := range []string{"usr/lib/p000/x/f", "usr/lib/p299/x/f", "usr/lib/p299/x/link-b", "etc/keep"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("/%s: %v", p, err)
		}
	}
	var a, b unix.Stat_t
	must(t, unix.Stat(filepath.Join(root, "usr/lib/p000/x/link-a"), &a))
	must(t, unix.Stat(filepath.Join(root, "usr/lib/p299/x/link-b"), &b))
	if a.Ino != b.Ino {
		t.Errorf("the hard link was not kept: inodes %d and %d", a.Ino, b.Ino)
	}
	var st, up unix.Stat_t
	must(t, unix.Stat(filepath.Join(root, "usr/lib/p150"), &st))
	must(t, unix.Stat(filepath.Join(upper, "usr/lib/p150"), &up))
	if st.Mtim != up.Mtim {
		t.Errorf("directory time %v, want the layer's %v", st.Mtim, up.Mtim)
	}
}
