package layer

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestShadowed(t *testing.T) {
	file := func(sum string) Entry {
		return Entry{Kind: Other, Type: unix.S_IFREG, Perm: 0o644, Size: int64(len(sum)), Sum: sum}
	}
	dir := Entry{Kind: Dir, Type: unix.S_IFDIR, Perm: 0o755}
	none := Entry{}
	wh := Entry{Kind: Whiteout, Type: unix.S_IFCHR}
	opaque := func(sum string) Entry { return Entry{Kind: OpaqueDir, Type: unix.S_IFDIR, Perm: 0o755, Sum: sum} }
	imgDir := func(sum string) Entry { return Entry{Kind: Dir, Type: unix.S_IFDIR, Perm: 0o755, Sum: sum} }
	chmod := file("v1")
	chmod.Perm = 0o600
	for _, c := range []struct {
		name              string
		layer, prev, next Entry
		change            string
		descend           bool
	}{
		{"the user's file hides the image's new version", file("mine"), file("v1"), file("v2"), Changed, false},
		{"the image did not change it: no shadow", file("mine"), file("v1"), file("v1"), "", false},
		{"the user's copy is the new version: nothing hidden", file("v2"), file("v1"), file("v2"), "", false},
		{"the image adds a file the user made", file("mine"), none, file("v2"), Added, false},
		{"the image drops a file the user keeps alive", file("mine"), file("v1"), none, Removed, false},
		{"a mode change is a change", file("mine"), file("v1"), chmod, Changed, false},
		{"a whiteout hides the image's new version", wh, file("v1"), file("v2"), Changed, false},
		{"a whiteout over a file the image dropped hides nothing", wh, file("v1"), none, "", false},
		{"a whiteout over an unchanged file", wh, file("v1"), file("v1"), "", false},
		{"a merging directory is looked into", dir, imgDir(""), imgDir(""), "", true},
		{"a merging directory over a new directory", dir, none, imgDir(""), "", true},
		{"a directory where the image now has a file hides it", dir, none, file("v2"), Added, false},
		{"a directory where the image had a file, unchanged", dir, file("v1"), file("v1"), "", false},
		{"an opaque directory hides a changed tree", opaque("u"), imgDir("t1"), imgDir("t2"), Changed, false},
		{"an opaque directory over an unchanged tree", opaque("u"), imgDir("t1"), imgDir("t1"), "", false},
		{"nothing in the layer", none, file("v1"), file("v2"), "", false},
	} {
		change, descend := Shadowed(c.layer, c.prev, c.next)
		if change != c.change || descend != c.descend {
			t.Errorf("%s: got (%q, %v), want (%q, %v)", c.name, change, descend, c.change, c.descend)
		}
	}
}

func TestUnderAny(t *testing.T) {
	set := map[string]bool{"etc/app": true, "var/x": true}
	for rel, want := range map[string]bool{"etc/app": true, "etc/app/conf": true, "etc/apple": false, "etc": false, "var/x/y/z": true, "x": false} {
		if got := UnderAny(set, rel); got != want {
			t.Errorf("UnderAny(%q) = %v, want %v", rel, got, want)
		}
	}
}
