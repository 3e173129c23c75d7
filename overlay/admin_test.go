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
		name, cmdline, getMode, want, warn string
	}{
		{"nothing", "ro init=/sbin/init-overlay", "", "", ""},
		{"cmdline", "ro overlay=disable", "", "overlay=disable on the kernel command line", ""},
		{"get-mode", "ro", "OVERLAY=disabled\n", "/sbin/init-overlay-get-mode sets OVERLAY=disabled", ""},
		{"get-mode enables", "ro", "OVERLAY=aufs\n", "", ""},
		// A script that fails: the boot takes the defaults, and status
		// says why rather than nothing.
		{"get-mode fails", "ro", "exit 3\n", "", "the boot ignores the script and takes the defaults"},
		{"get-mode syntax error", "ro", "if then fi (\n", "", "the boot ignores the script"},
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
			got, warn := nextBootDisabledBy(base)
			if tt.want != "" && got != filepath.Join(base, tt.want) && got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if tt.want == "" && got != "" {
				t.Errorf("got %q, want enabled", got)
			}
			if (tt.warn == "") != (warn == "") || !strings.Contains(warn, tt.warn) {
				t.Errorf("warning %q, want %q", warn, tt.warn)
			}
		})
	}
}

// TestEnableStillDisabled: enable removes the disable file, but when the
// kernel command line or the get-mode script turns the overlay off too,
// the next boot still runs without it: enable must say so (a warning that
// names what disables it), not only report the overlay enabled.
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
			if err := SetEnabled(st, true); err != nil {
				t.Fatalf("enable: %v", err)
			}
			if _, serr := os.Lstat(st.DisableFile); serr == nil {
				t.Errorf("the disable file is still there")
			}
			by := EnabledButOff(st)
			switch {
			case tt.want == "" && by != "":
				t.Errorf("enable: warns %q, want nothing", by)
			case tt.want != "" && !strings.Contains(by, tt.want):
				t.Errorf("enable with %s: warns %q; want a warning naming %q: the next boot is still without overlay", tt.name, by, tt.want)
			}
		})
	}
}

// TestNotInstalled: status warns, in a boot without the overlay, when the
// kernel command line does not run init-overlay: "enabled for next boot"
// then means nothing until install names it.
func TestNotInstalled(t *testing.T) {
	oldCmdline := CmdlinePath
	defer func() { CmdlinePath = oldCmdline }()
	CmdlinePath = filepath.Join(t.TempDir(), "cmdline")
	for _, tc := range []struct {
		cmdline string
		active  bool
		warn    bool
	}{
		{"root=/dev/sda1 ro quiet", false, true},
		{"root=/dev/sda1 ro init=/sbin/init-overlay", false, false},
		{"root=/dev/sda1 ro init=/usr/sbin/init-overlay", false, false},
		{"root=/dev/sda1 ro -- init=/sbin/init-overlay", false, true}, // init's argument, not the kernel's
		{"root=/dev/sda1 ro quiet", true, false},                      // the overlay runs: installed somehow
	} {
		if err := os.WriteFile(CmdlinePath, []byte(tc.cmdline), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := notInstalled(tc.active); (got != "") != tc.warn {
			t.Errorf("%q (active %v): warning %q, want one: %v", tc.cmdline, tc.active, got, tc.warn)
		}
	}
}
