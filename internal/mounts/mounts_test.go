package mounts

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const sample = `22 1 254:0 / / ro,relatime shared:1 - ext4 /dev/vda ro
23 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw,size=10k
24 23 0:21 / /dev/pts rw - devpts devpts rw
30 22 0:30 / /overlay rw - tmpfs overlay-root rw
31 30 254:0 /overlay-rw-layer /overlay/rwdata rw,relatime - ext4 /dev/vda rw
32 22 0:31 / /mnt/with\040space rw - tmpfs none rw
`

func TestParse(t *testing.T) {
	ms, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 6 {
		t.Fatalf("got %d mounts, want 6", len(ms))
	}
	want := Mount{ID: 31, Parent: 30, Root: "/overlay-rw-layer", MountPoint: "/overlay/rwdata",
		Options: "rw,relatime", FSType: "ext4", Source: "/dev/vda", SuperOpts: "rw"}
	if !reflect.DeepEqual(ms[4], want) {
		t.Errorf("got %+v, want %+v", ms[4], want)
	}
	if got := ms[5].MountPoint; got != "/mnt/with space" {
		t.Errorf("escaped mount point = %q", got)
	}
	if !ms[0].ReadOnly() || ms[1].ReadOnly() {
		t.Errorf("ReadOnly: root %v dev %v, want true false", ms[0].ReadOnly(), ms[1].ReadOnly())
	}
	if m, ok := Find(ms, "/dev/pts"); !ok || m.FSType != "devpts" {
		t.Errorf("Find(/dev/pts) = %+v, %v", m, ok)
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	for _, in := range []string{"x y z", "1 2 3 4 5 6 7", "a 1 0:1 / / rw - ext4 x"} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse(%q) accepted garbage", in)
		}
	}
}

func TestParseFilesystems(t *testing.T) {
	got := ParseFilesystems("nodev\tsysfs\nnodev\toverlay\n\text4\n\n")
	want := map[string]bool{"sysfs": true, "overlay": true, "ext4": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := Parse(strings.NewReader(s))
		if err == nil {
			for _, m := range ms {
				if m.FSType == "" {
					t.Errorf("mount without type from %q", s)
				}
			}
		}
	})
}

func TestOf(t *testing.T) {
	ms, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/": "/", "/etc/x": "/", "/dev": "/dev", "/dev/pts/0": "/dev/pts",
		"/devices": "/", "/overlay/rwdata/a": "/overlay/rwdata", "/overlay/robase": "/overlay"} {
		if m, ok := Of(ms, path); !ok || m.MountPoint != want {
			t.Errorf("Of(%q) = %q, %v; want %q", path, m.MountPoint, ok, want)
		}
	}
	if _, ok := Of(nil, "/x"); ok {
		t.Error("Of found a mount in an empty table")
	}
}

func TestHasOption(t *testing.T) {
	for _, c := range []struct {
		opts, o string
		want    bool
	}{
		{"ro,relatime", "ro", true},
		{"rw,errors=remount-ro", "ro", false},
		{"", "ro", false},
	} {
		if got := HasOption(c.opts, c.o); got != c.want {
			t.Errorf("HasOption(%q, %q) = %v, want %v", c.opts, c.o, got, c.want)
		}
	}
}

// TestReadProc reads what os.ReadFile reads, past its first 4 KiB too.
func TestReadProc(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big")
	data := bytes.Repeat([]byte("0123456789abcdef"), 1000)
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/proc/self/cmdline", "/proc/filesystems", big} {
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadProc(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ReadProc(%s) = %d bytes, %v; want the %d of os.ReadFile", p, len(got), err, len(want))
		}
	}
	if _, err := ReadProc(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadProc of a missing file: %v, want ErrNotExist", err)
	}
}
