package layer_test

// Privileged tests of Fold against the kernel's own overlayfs: the layers
// are made by real overlay mounts (the kernel writes the whiteouts and
// opaque directories), and what a fold must keep is what a read-only
// overlay of the layers shows. Each test runs in a private mount namespace
// (testroot.InPrivateMountNS) on a tmpfs of its own.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/layer"
	"github.com/overlayupd/overlayupd/internal/testroot"
)

// fixture is an image directory L, a persistent layer P made over it, and
// a trial layer T made over both, as the trampoline stacks them.
type fixture struct {
	base, L, P, T, trash string
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// overlayOpts are the store modes' options, where the kernel has them.
func overlayOpts() string {
	var o []string
	for _, p := range []string{"redirect_dir", "metacopy", "index"} {
		if _, err := os.Stat("/sys/module/overlay/parameters/" + p); err == nil {
			o = append(o, p+"=off")
		}
	}
	return strings.Join(o, ",")
}

// withOverlay mounts an overlay at a fresh directory and runs fn in it.
func withOverlay(t *testing.T, base, data string, fn func(root string)) {
	t.Helper()
	mnt, err := os.MkdirTemp(base, "mnt-")
	must(t, err)
	if o := overlayOpts(); o != "" {
		data += "," + o
	}
	must(t, unix.Mount("overlay", mnt, "overlay", 0, data))
	defer func() { must(t, unix.Unmount(mnt, 0)); must(t, os.Remove(mnt)) }()
	fn(mnt)
}

func write(t *testing.T, p, body string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(body), 0o644))
}

// newFixture builds the three layers on a tmpfs. The persistent layer gets
// a changed file, a deleted one (whiteout), a new one, a directory removed
// and made again (opaque), a chmod, a symlink and a hard link pair; the
// trial layer changes and deletes what the persistent layer made, brings
// back what it deleted, replaces a directory by a file and a file by a
// directory, and gets, by hand, a plain directory over a whiteout below
// (the kernel itself would mark it opaque).
func newFixture(t *testing.T) *fixture {
	t.Helper()
	base := t.TempDir()
	must(t, unix.Mount("tmpfs", base, "tmpfs", 0, "mode=0755"))
	t.Cleanup(func() { _ = unix.Unmount(base, unix.MNT_DETACH) })
	f := &fixture{base: base, L: base + "/L", P: base + "/P/data", T: base + "/T/data", trash: base + "/T/trash"}
	for _, d := range []string{f.L, f.P, base + "/P/work", f.T, base + "/T/work"} {
		must(t, os.MkdirAll(d, 0o755))
	}
	for p, body := range map[string]string{
		"etc/a": "a from the image", "etc/b": "b from the image", "etc/gone": "gone from the image",
		"etc/conf.d/one": "1", "etc/conf.d/two": "2", "usr/share/doc/README": "doc",
		"opt/d/inside": "in d", "opt/f": "f is a file", "var/keep": "keep", "srv/ld/inner": "the image's, hidden by the user",
	} {
		write(t, filepath.Join(f.L, p), body)
	}
	withOverlay(t, base, "lowerdir="+f.L+",upperdir="+f.P+",workdir="+base+"/P/work", func(r string) {
		write(t, r+"/etc/a", "a edited by the user")
		must(t, os.Remove(r+"/etc/b"))
		must(t, os.Remove(r+"/etc/gone"))
		write(t, r+"/etc/new", "new from the user")
		must(t, os.RemoveAll(r+"/usr/share/doc"))
		write(t, r+"/usr/share/doc/MINE", "the user's own doc")
		must(t, os.Chmod(r+"/etc/conf.d", 0o700))
		write(t, r+"/etc/conf.d/three", "3")
		must(t, os.Symlink("../etc/a", r+"/var/link"))
		write(t, r+"/var/h1", "linked")
		must(t, os.Link(r+"/var/h1", r+"/var/h2"))
		write(t, r+"/var/userfile", "a file the trial makes a directory")
		must(t, os.RemoveAll(r+"/srv/ld"))
	})
	withOverlay(t, base, "lowerdir="+f.P+":"+f.L+",upperdir="+f.T+",workdir="+base+"/T/work", func(r string) {
		write(t, r+"/etc/new", "new, edited in the trial")
		must(t, os.Remove(r+"/etc/a"))
		write(t, r+"/etc/b", "b made again in the trial")
		must(t, os.RemoveAll(r+"/etc/conf.d"))
		write(t, r+"/etc/conf.d/only", "only this")
		must(t, os.RemoveAll(r+"/opt/d"))
		write(t, r+"/opt/d", "d is a file now")
		must(t, os.Remove(r+"/opt/f"))
		write(t, r+"/opt/f/x", "f is a directory now")
		must(t, os.Remove(r+"/var/userfile"))
		write(t, r+"/var/userfile/y", "a directory over the user's file")
		write(t, r+"/var/h1", "linked, edited in the trial")
		write(t, r+"/var/trialnew/deep/file", "a new tree")
		must(t, os.Chmod(r+"/var", 0o750))
	})
	// Plain (not opaque) directories in the trial over a whiteout below:
	// of a file, and of a directory of the image (whose files must not
	// come back).
	must(t, os.Mkdir(f.T+"/etc/gone", 0o755))
	write(t, f.T+"/etc/gone/child", "under a plain directory over a whiteout")
	must(t, os.MkdirAll(f.T+"/srv/ld", 0o755))
	write(t, f.T+"/srv/ld/new", "under a plain directory over a whited-out directory")
	return f
}

// view is what a read-only overlay of the layers (topmost first) shows:
// per path its type, mode, owner, size, content digest, link target,
// attributes and times (directory times only when dirTimes).
func view(t *testing.T, base string, dirTimes bool, layers ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	data := "lowerdir=" + strings.Join(layers, ":")
	if len(layers) == 1 {
		data = "lowerdir=" + layers[0] + ":" + emptyDir(t, base)
	}
	withOverlay(t, base, data, func(r string) {
		inodes := map[uint64]string{}
		must(t, filepath.WalkDir(r, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(r, p)
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				return err
			}
			s := fmt.Sprintf("mode %o uid %d gid %d", st.Mode, st.Uid, st.Gid)
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFREG:
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				s += fmt.Sprintf(" size %d sha %x mtime %d.%d", st.Size, sha256.Sum256(b), st.Mtim.Sec, st.Mtim.Nsec)
				if first, ok := inodes[st.Ino]; ok && st.Nlink > 1 {
					s += " link of " + first
				} else {
					inodes[st.Ino] = rel
				}
			case unix.S_IFLNK:
				to, _ := os.Readlink(p)
				s += " -> " + to
			case unix.S_IFDIR:
				if dirTimes {
					s += fmt.Sprintf(" mtime %d.%d", st.Mtim.Sec, st.Mtim.Nsec)
				}
			}
			names, _ := layer.ListXattrs(p)
			sort.Strings(names)
			for _, n := range names {
				// The fold's own note of a directory's times lives only in
				// the layer being folded, which is never mounted then.
				if !layer.Private(n) && !strings.HasPrefix(n, "trusted.overlayupd.") {
					v, _ := layer.GetXattr(p, n)
					s += fmt.Sprintf(" %s=%q", n, v)
				}
			}
			out[rel] = s
			return nil
		}))
	})
	return out
}

func emptyDir(t *testing.T, base string) string {
	d, err := os.MkdirTemp(base, "empty-")
	must(t, err)
	return d
}

func diff(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, "only before: "+k+" "+v)
		} else if v != w {
			out = append(out, "changed: "+k+": "+v+" => "+w)
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "only after: "+k+" "+v)
		}
	}
	sort.Strings(out)
	return out
}

var errCut = errors.New("power cut")

// TestFoldKeepsTheView: the persistent layer alone, after the fold, shows
// over the image exactly what the trial layer over it showed; the trial
// layer is empty; and the fold is a pure function of the layers (two runs
// on equal fixtures take the same steps).
func TestFoldKeepsTheView(t *testing.T) {
	if !testroot.InPrivateMountNS(t) {
		return
	}
	f := newFixture(t)
	before := view(t, f.base, true, f.T, f.P, f.L)
	var steps []string
	stats, err := layer.Fold(f.T, f.P, f.trash, layer.FoldOptions{Step: func(s string) error { steps = append(steps, s); return nil }})
	must(t, err)
	if d := diff(before, view(t, f.base, true, f.P, f.L)); len(d) > 0 {
		t.Errorf("the persistent layer after the fold does not show what the two layers showed:\n%s", strings.Join(d, "\n"))
	}
	if left, _ := os.ReadDir(f.T); len(left) != 0 {
		t.Errorf("the trial layer still holds %v after the fold", left)
	}
	if stats.Moved == 0 || stats.Aside == 0 || stats.Merged == 0 {
		t.Errorf("stats %+v: the fixture should move, set aside and merge", stats)
	}
	t.Logf("%d steps, %+v", len(steps), stats)
}

// TestFoldCrashResumes cuts the fold after every step: at the cut, the
// trial layer over the persistent one still shows what it showed (nothing
// lost, nothing shown twice or half), and a second fold finishes the job
// with the same result as an uncut one.
func TestFoldCrashResumes(t *testing.T) {
	if !testroot.InPrivateMountNS(t) {
		return
	}
	f := newFixture(t)
	n := 0
	_, err := layer.Fold(f.T, f.P, f.trash, layer.FoldOptions{Step: func(string) error { n++; return nil }})
	must(t, err)
	for i := 0; i < n; i++ {
		f := newFixture(t)
		// The fixture's own files: each one is made anew, with its times.
		want := view(t, f.base, true, f.T, f.P, f.L)
		wantStacked := view(t, f.base, false, f.T, f.P, f.L)
		var at string
		k := 0
		_, err := layer.Fold(f.T, f.P, f.trash, layer.FoldOptions{Step: func(s string) error {
			if k == i {
				at = s
				return errCut
			}
			k++
			return nil
		}})
		if !errors.Is(err, errCut) {
			t.Fatalf("cut at step %d: fold returned %v", i, err)
		}
		// Directory times may differ at the cut: moving a child out of
		// the trial's directory changes its times (the fold keeps them
		// aside and gives them to the persistent one at the end).
		if d := diff(wantStacked, view(t, f.base, false, f.T, f.P, f.L)); len(d) > 0 {
			t.Fatalf("cut before step %d (%s): the stacked layers show something else:\n%s", i, at, strings.Join(d, "\n"))
		}
		if _, err := layer.Fold(f.T, f.P, f.trash, layer.FoldOptions{}); err != nil {
			t.Fatalf("resume after a cut before step %d (%s): %v", i, at, err)
		}
		if d := diff(want, view(t, f.base, true, f.P, f.L)); len(d) > 0 {
			t.Fatalf("resumed after a cut before step %d (%s): not what the layers showed:\n%s", i, at, strings.Join(d, "\n"))
		}
		if left, _ := os.ReadDir(f.T); len(left) != 0 {
			t.Fatalf("resumed after a cut before step %d (%s): the trial layer still holds %v", i, at, left)
		}
	}
	t.Logf("cut before each of %d steps, resumed each time", n)
}

// TestFoldRefusesForeign: a layer made with redirect_dir on is refused
// before anything changes.
func TestFoldRefusesForeign(t *testing.T) {
	if !testroot.InPrivateMountNS(t) {
		return
	}
	f := newFixture(t)
	must(t, unix.Lsetxattr(f.T+"/etc/conf.d", "trusted.overlay.redirect", []byte("/etc/old"), 0))
	before := view(t, f.base, true, f.T, f.P, f.L)
	if _, err := layer.Fold(f.T, f.P, f.trash, layer.FoldOptions{}); !errors.Is(err, layer.ErrForeign) {
		t.Fatalf("fold of a redirected layer: %v, want ErrForeign", err)
	}
	if d := diff(before, view(t, f.base, true, f.T, f.P, f.L)); len(d) > 0 {
		t.Errorf("a refused fold changed the layers:\n%s", strings.Join(d, "\n"))
	}
}
