package testroot

import (
	"strings"
	"testing"
)

func TestGoodAtOnce(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"root=/dev/vda ro", "root=/dev/vda ro overlayupd.good_after=0"},
		{"ro overlayupd.good_after=40s", "ro overlayupd.good_after=40s"},
		{"ro overlayupd.boot_budget=2", "ro overlayupd.boot_budget=2"},
		{"ro harness.overlayupd.good_after=1", "ro harness.overlayupd.good_after=1 overlayupd.good_after=0"},
	} {
		if got := strings.Join(GoodAtOnce(strings.Fields(c.in)), " "); got != c.want {
			t.Errorf("GoodAtOnce(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
