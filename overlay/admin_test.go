package overlay

import (
	"os"
	"path/filepath"
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
