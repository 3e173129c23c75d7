package boot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/keeper"
	"github.com/overlayupd/overlayupd/trampoline"
)

// TestOpenStoreFormat: the marker's format= line picks the format; a marker
// without one is squashfs; an unknown one, a linked marker and a missing one
// are refused by name.
func TestOpenStoreFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, marker, want, err string
		link                    bool
	}{
		{"squashfs", string(trampoline.MarkerText("squashfs")), "squashfs", "", false},
		{"btrfs", string(trampoline.MarkerText("btrfs")), "btrfs", "", false},
		{"old marker", "overlayupd store, format 1\nroots in roots/\n", "squashfs", "", false},
		{"unknown", "format=zfs\n", "", `store format "zfs" is not built into this binary`, false},
		{"linked marker", "", "", "not a store", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			top := t.TempDir()
			m := filepath.Join(top, trampoline.MarkerFile)
			if tc.link {
				real := filepath.Join(t.TempDir(), "m")
				if err := os.WriteFile(real, trampoline.MarkerText("btrfs"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(real, m); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(m, []byte(tc.marker), 0o644); err != nil {
				t.Fatal(err)
			}
			st, err := OpenStore(top)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("OpenStore = %v, want an error with %q", err, tc.err)
				}
				if tc.link && !errors.Is(err, trampoline.ErrNotStore) {
					t.Errorf("a linked marker: %v, want ErrNotStore", err)
				}
				return
			}
			if err != nil || st.Format.Name() != tc.want {
				t.Fatalf("OpenStore = %v, %v; want format %s", st, err, tc.want)
			}
		})
	}
}

func TestParseBootBudget(t *testing.T) {
	for _, c := range []struct {
		cmdline string
		want    int
		warn    bool
	}{
		{"root=/dev/vda ro", 3, false}, // on by default
		{"overlayupd.boot_budget=3", 3, false},
		{"overlayupd.boot_budget=0", 0, false},
		{"overlayupd.boot_budget=abc", DefaultBootBudget, true},
		{"overlayupd.boot_budget=-1", DefaultBootBudget, true},
		{"overlayupd.boot_budget=99999999999999999999", DefaultBootBudget, true},
		{"overlayupd.boot_budget=", DefaultBootBudget, true},
		{"overlayupd.boot_budget=2 overlayupd.boot_budget=5", 5, false},
		{"overlayupd.boot_budget=+3", DefaultBootBudget, true},
		{"overlayupd.boot_budget=-0", DefaultBootBudget, true},
		// After "--": init's argument, not the kernel's parameter.
		{"overlayupd.boot_budget=2 -- overlayupd.boot_budget=5", 2, false},
	} {
		got, warn := ParseBootBudget(c.cmdline)
		if got != c.want || (warn != "") != c.warn {
			t.Errorf("ParseBootBudget(%q) = %d, %q; want %d, warning %v", c.cmdline, got, warn, c.want, c.warn)
		}
	}
}

func TestParseGoodAfter(t *testing.T) {
	for _, c := range []struct {
		cmdline string
		want    time.Duration
		warn    bool
	}{
		{"ro", DefaultGoodAfter, false},
		{"overlayupd.good_after=90s", 90 * time.Second, false},
		{"overlayupd.good_after=600", 10 * time.Minute, false},
		{"overlayupd.good_after=0", 0, false},
		{"overlayupd.good_after=abc", DefaultGoodAfter, true},
		{"overlayupd.good_after=48h", DefaultGoodAfter, true},
		{"overlayupd.good_after=-5m", DefaultGoodAfter, true},
	} {
		got, warn := ParseGoodAfter(c.cmdline)
		if got != c.want || (warn != "") != c.warn {
			t.Errorf("ParseGoodAfter(%q) = %v, %q; want %v, warning %v", c.cmdline, got, warn, c.want, c.warn)
		}
	}
	if keeper.GoodCount != trampoline.BootCountName(0) {
		t.Errorf("the keeper marks %q, the protocol reads %q", keeper.GoodCount, trampoline.BootCountName(0))
	}
}
