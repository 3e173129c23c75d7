package inspect

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// tree describes files of a test root in testroot's map shorthand: path ->
// content; a "->" prefix makes a symlink, a trailing "/" a directory.
// buildImage makes files 0755.
type tree map[string]string

// goodTree is a minimal bootable root: /sbin/init -> ../bin/busybox.
func goodTree() tree {
	return tree{"bin/busybox": testroot.ELFStub() + "busybox", "bin/sh": "->busybox", "sbin/init": "->../bin/busybox", "etc/hostname": "test\n"}
}

func (tr tree) with(kv ...string) tree {
	out := tree{}
	for k, v := range tr {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<delete>" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

// buildImage makes a squashfs image of tr with the given compression,
// files and dirs 0755, then the chmods paths 0644; owners as on the host.
func buildImage(t testing.TB, comp string, tr tree, chmods ...string) string {
	t.Helper()
	a := []testroot.Applier{testroot.Files(tr, 0o755)}
	for _, p := range chmods {
		a = append(a, testroot.Chmod(p, 0o644))
	}
	return testroot.Squashfs(t, testroot.NewTree(t, a...), "", testroot.Compression(comp), testroot.KeepOwners())
}

// truncated copies img cut to n bytes.
func truncated(t testing.TB, img string, n int64) string {
	t.Helper()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "cut.sqsh")
	if err := os.WriteFile(out, data[:n], 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func fileSize(t testing.TB, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func isRoot() bool { return os.Geteuid() == 0 }
