package layer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/layer"
	"github.com/overlayupd/overlayupd/internal/testroot"
)

// shadowFixture: images v1 and v2, and a persistent layer made over v1 by
// the kernel's overlay.
func shadowFixture(t *testing.T) (base, v1, v2, P string) {
	t.Helper()
	base = t.TempDir()
	must(t, unix.Mount("tmpfs", base, "tmpfs", 0, "mode=0755"))
	t.Cleanup(func() { _ = unix.Unmount(base, unix.MNT_DETACH) })
	v1, v2, P = base+"/v1", base+"/v2", base+"/P/data"
	must(t, os.MkdirAll(P, 0o755))
	must(t, os.MkdirAll(base+"/P/work", 0o755))
	img := func(dir string, files map[string]string) {
		for p, body := range files {
			write(t, filepath.Join(dir, p), body)
		}
	}
	common := map[string]string{"etc/same": "same in both", "etc/dropped-by-user": "old", "etc/app/a": "a1",
		"etc/app/b": "b1", "etc/edited-unchanged": "unchanged"}
	img(v1, common)
	img(v2, common)
	img(v1, map[string]string{"etc/edited": "v1's version", "etc/dropped-by-v2": "v1 only", "etc/deleted": "v1", "opt/gone/x": "v1's x"})
	img(v2, map[string]string{"etc/edited": "v2's version", "etc/added-by-v2": "v2 only", "etc/deleted": "v2", "etc/app/b": "b2"})
	withOverlay(t, base, "lowerdir="+v1+",upperdir="+P+",workdir="+base+"/P/work", func(r string) {
		write(t, r+"/etc/edited", "the user's version")
		write(t, r+"/etc/edited-unchanged", "the user's, over an unchanged file")
		write(t, r+"/etc/dropped-by-v2", "the user keeps this alive")
		write(t, r+"/etc/added-by-v2", "the user made this first")
		write(t, r+"/etc/mine", "only the user's")
		must(t, os.Remove(r+"/etc/deleted"))
		must(t, os.RemoveAll(r+"/etc/app"))
		write(t, r+"/etc/app/a", "the user's own app dir")
		write(t, r+"/etc/app/extra", "only in the user's app dir")
		write(t, r+"/opt/gone/x", "the user's x, in a directory v2 drops")
		write(t, r+"/opt/gone/y", "the user's y, no shadow")
	})
	return base, v1, v2, P
}

// TestShadows: the check names exactly the layer's entries that hide what
// v2 changed, and overlayupd.shadow=image's two ways (a top layer in a
// trial, setting aside in a committed boot) show v2's files there while the
// user's stay readable (unchanged, or in the aside directory).
func TestShadows(t *testing.T) {
	testroot.NeedOpenat2(t) // Shadows looks entries up with openat2 only
	if !testroot.InPrivateMountNS(t) {
		return
	}
	base, v1, v2, P := shadowFixture(t)
	got, err := layer.Shadows(P, v1, v2, layer.ShadowOptions{})
	must(t, err)
	var s []string
	for _, sh := range got {
		s = append(s, fmt.Sprintf("%s %s %s", sh.Path, sh.Change, sh.Layer))
	}
	want := []string{"etc/added-by-v2 added file", "etc/app changed opaque directory", "etc/deleted changed whiteout",
		"etc/dropped-by-v2 removed file", "etc/edited changed file", "opt/gone/x removed file"}
	if strings.Join(s, "\n") != strings.Join(want, "\n") {
		t.Fatalf("shadows:\n%s\nwant:\n%s", strings.Join(s, "\n"), strings.Join(want, "\n"))
	}
	skip, err := layer.Shadows(P, v1, v2, layer.ShadowOptions{Skip: func(rel string) bool { return rel == "etc/edited" }})
	must(t, err)
	if len(skip) != len(want)-1 {
		t.Errorf("Skip: %d shadows, want %d", len(skip), len(want)-1)
	}
	imageView := view(t, base, false, v2)
	userView := view(t, base, false, P, v2)
	layerBefore := view(t, base, true, P)

	// A trial: a top layer shows v2's entries; the persistent layer is untouched.
	top := base + "/top"
	must(t, os.Mkdir(top, 0o755))
	for _, sh := range got {
		must(t, layer.Reveal(v2, top, sh.Path))
	}
	trial := view(t, base, false, top, P, v2)
	for _, sh := range got {
		checkSubtree(t, "trial", trial, imageView, sh.Path)
	}
	checkSubtree(t, "trial", trial, userView, "etc/mine")
	checkSubtree(t, "trial", trial, userView, "opt/gone/y")
	checkSubtree(t, "trial", trial, userView, "etc/edited-unchanged")
	if d := diff(layerBefore, view(t, base, true, P)); len(d) > 0 {
		t.Errorf("Reveal changed the persistent layer:\n%s", strings.Join(d, "\n"))
	}

	// A committed boot: the user's entries move aside, v2's show.
	aside := base + "/P/shadowed/1"
	for _, sh := range got {
		if _, err := layer.SetAside(P, aside, sh.Path); err != nil {
			t.Fatal(err)
		}
	}
	committed := view(t, base, false, P, v2)
	for _, sh := range got {
		checkSubtree(t, "committed", committed, imageView, sh.Path)
	}
	checkSubtree(t, "committed", committed, userView, "etc/mine")
	if b, err := os.ReadFile(aside + "/etc/edited"); err != nil || string(b) != "the user's version" {
		t.Errorf("the user's etc/edited set aside: %q, %v", b, err)
	}
	if b, err := os.ReadFile(aside + "/etc/app/a"); err != nil || string(b) != "the user's own app dir" {
		t.Errorf("the user's etc/app set aside: %q, %v", b, err)
	}
	// A second check finds nothing left to report.
	again, err := layer.Shadows(P, v1, v2, layer.ShadowOptions{})
	must(t, err)
	if len(again) != 0 {
		t.Errorf("after setting aside, shadows %v", again)
	}
}

// checkSubtree: got shows what want shows at rel and under it.
func checkSubtree(t *testing.T, what string, got, want map[string]string, rel string) {
	t.Helper()
	for k, v := range want {
		if k == rel || strings.HasPrefix(k, rel+"/") {
			if got[k] != v {
				t.Errorf("%s: /%s is %q, want %q", what, k, got[k], v)
			}
		}
	}
	for k := range got {
		if (k == rel || strings.HasPrefix(k, rel+"/")) && want[k] == "" {
			t.Errorf("%s: /%s shows, the image has none", what, k)
		}
	}
}
