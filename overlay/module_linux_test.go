package overlay

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLoadModuleAfterModprobe: a modprobe that fails is followed by an
// insmod of the module file, as in the original; one that hangs is not
// (finit_module would wait in PID 1 for the same stuck load), and
// LoadModule returns soon after modprobe's timeout.
func TestLoadModuleAfterModprobe(t *testing.T) {
	dir := t.TempDir()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	const name = "overlayupdtestfs"
	ko := filepath.Join(dir, unix.ByteSliceToString(uts.Release[:]), "kernel/fs", name, name+".ko")
	if err := os.MkdirAll(filepath.Dir(ko), 0o755); err != nil {
		t.Fatal(err)
	}
	// Not a module: an insmod of it fails (EPERM, or ENOEXEC as root),
	// and says so with its path.
	if err := os.WriteFile(ko, []byte("not an ELF module"), 0o644); err != nil {
		t.Fatal(err)
	}
	oldDir, oldProbes, oldTimeout := ModulesDir, modprobes, modprobeTimeout
	defer func() { ModulesDir, modprobes, modprobeTimeout = oldDir, oldProbes, oldTimeout }()
	ModulesDir, modprobeTimeout = dir, 300*time.Millisecond
	for _, tc := range []struct {
		name, script string
		insmod       bool
	}{
		{"modprobe fails", "exit 1", true},
		{"modprobe hangs", "exec sleep 30", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mp := filepath.Join(t.TempDir(), "modprobe")
			if err := os.WriteFile(mp, []byte("#!/bin/sh\n"+tc.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			modprobes = []string{mp}
			start := time.Now()
			err := LoadModule(name)
			took := time.Since(start)
			if err == nil {
				t.Fatal("LoadModule succeeded with no module to load")
			}
			if tried := strings.Contains(err.Error(), ko); tried != tc.insmod {
				t.Errorf("insmod of %s tried: %v, want %v (err: %v)", ko, tried, tc.insmod, err)
			}
			if !tc.insmod && !errors.Is(err, errTimedOut) {
				t.Errorf("err = %v, want errTimedOut", err)
			}
			if took > 5*time.Second {
				t.Errorf("took %s", took)
			}
		})
	}
}
