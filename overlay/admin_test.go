package overlay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNextBootDisabledBy(t *testing.T) {
	oldCmdline := CmdlinePath
	defer func() { CmdlinePath = oldCmdline }()
	tests := []struct {
		name, cmdline, getMode, want string
	}{
		{"nothing", "ro init=/sbin/init-overlay", "", ""},
		{"cmdline", "ro overlay=disable", "", "overlay=disable on the kernel command line"},
		{"get-mode", "ro", "OVERLAY=disabled\n", "/sbin/init-overlay-get-mode sets OVERLAY=disabled"},
		{"get-mode enables", "ro", "OVERLAY=aufs\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			CmdlinePath = filepath.Join(base, "cmdline")
			if err := os.WriteFile(CmdlinePath, []byte(tt.cmdline), 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.getMode != "" {
				p := filepath.Join(base, GetModeScript)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(tt.getMode), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			got := nextBootDisabledBy(base)
			if tt.want != "" && got != filepath.Join(base, tt.want) && got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if tt.want == "" && got != "" {
				t.Errorf("got %q, want enabled", got)
			}
		})
	}
}

// TestEnableStillDisabled: enable removes the disable file, but when the
// kernel command line or the get-mode script turns the overlay off too,
// the next boot still runs without it: enable must say so (an error that
// names what disables it), not report the overlay enabled.
func TestEnableStillDisabled(t *testing.T) {
	oldCmdline := CmdlinePath
	defer func() { CmdlinePath = oldCmdline }()
	for _, tt := range []struct {
		name, cmdline, getMode, want string
		disableFile                  bool
	}{
		{"cmdline, with the file", "ro overlay=disable", "", "overlay=disable", true},
		{"cmdline, no file", "ro overlay=disable", "", "overlay=disable", false},
		{"get-mode", "ro", "OVERLAY=disable\n", "OVERLAY=disable", true},
		{"only the file", "ro", "", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			CmdlinePath = filepath.Join(base, "cmdline")
			if err := os.WriteFile(CmdlinePath, []byte(tt.cmdline), 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.getMode != "" {
				p := filepath.Join(base, GetModeScript)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(tt.getMode), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			st := Status{Base: base, DisableFile: filepath.Join(base, "overlay/disable")}
			if tt.disableFile {
				if err := os.MkdirAll(filepath.Dir(st.DisableFile), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(st.DisableFile, []byte("1\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := SetEnabled(st, true)
			if _, serr := os.Lstat(st.DisableFile); serr == nil {
				t.Errorf("the disable file is still there (%v)", err)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("enable: %v, want success", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("enable with %s: %v; want an error naming %q: the next boot is still without overlay", tt.name, err, tt.want)
			}
		})
	}
}
