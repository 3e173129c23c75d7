package squash

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// needTool skips (or fails under CI=true) when a test tool is missing.
func needTool(t testing.TB, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing in CI: apt-get install -y %s", tool, pkg)
		}
		t.Skipf("%s not installed: apt-get install -y %s", tool, pkg)
	}
}

// tree describes files of a test root: path -> content; a "->" prefix makes a
// symlink, a trailing "/" a directory. Modes default to 0755 for files.
type tree map[string]string

// goodTree is a minimal bootable root: /sbin/init -> ../bin/busybox.
func goodTree() tree {
	return tree{"bin/busybox": "#!/bin/sh\necho busybox\n", "sbin/init": "->../bin/busybox", "etc/hostname": "test\n"}
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

func (tr tree) write(t testing.TB, root string) {
	t.Helper()
	for p, v := range tr {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case p[len(p)-1] == '/':
			err = os.MkdirAll(full, 0o755)
		case len(v) > 2 && v[:2] == "->":
			err = os.Symlink(v[2:], full)
		default:
			err = os.WriteFile(full, []byte(v), 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// buildImage makes a squashfs image of tr with the given compression.
func buildImage(t testing.TB, comp string, tr tree, chmods ...string) string {
	t.Helper()
	needTool(t, "mksquashfs", "squashfs-tools")
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	tr.write(t, root)
	for _, p := range chmods {
		if err := os.Chmod(filepath.Join(root, p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "image.sqsh")
	out, err := exec.Command("mksquashfs", root, img, "-comp", comp, "-noappend", "-quiet", "-no-progress").CombinedOutput()
	if err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	return img
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
