package remount

import (
	"testing"

	"github.com/overlayupd/overlayupd/internal/mounts"
)

func TestOf(t *testing.T) {
	t.Parallel()
	ms := []mounts.Mount{
		{MountPoint: "/", Options: "rw"},
		{MountPoint: "/overlay/store", Options: "ro"},
		{MountPoint: "/overlay/store2", Options: "rw"},
		{MountPoint: "/overlay/store", Options: "rw"}, // mounted on top: wins
	}
	for _, c := range []struct{ path, wantMP, wantOpts string }{
		{"/overlay/store", "/overlay/store", "rw"},
		{"/overlay/store/roots", "/overlay/store", "rw"},
		{"/overlay/store2/x", "/overlay/store2", "rw"},
		{"/overlay/storex", "/", "rw"},
		{"/tmp/x", "/", "rw"},
	} {
		m, ok := Of(ms, c.path)
		if !ok || m.MountPoint != c.wantMP || m.Options != c.wantOpts {
			t.Errorf("Of(%q) = %q (%s), %v; want %q (%s)", c.path, m.MountPoint, m.Options, ok, c.wantMP, c.wantOpts)
		}
	}
}
