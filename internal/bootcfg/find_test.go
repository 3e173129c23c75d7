package bootcfg

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestFind(t *testing.T) {
	tests := []struct {
		name  string
		files []string // relative to the temp dir
		grub  bool     // pass <tmp>/grub as grubDefault
		want  []Target // paths relative to the temp dir
	}{
		{"rpi bookworm prefers firmware", []string{"boot/cmdline.txt", "boot/firmware/cmdline.txt"}, false,
			[]Target{{Kind: RPiCmdline, Path: "boot/firmware/cmdline.txt"}}},
		{"rpi boot partition", []string{"boot/cmdline.txt", "boot/config.txt"}, false,
			[]Target{{Kind: RPiCmdline, Path: "boot/cmdline.txt"}}},
		{"all kinds", []string{"boot/cmdline.txt", "boot/uEnv.txt", "boot/extlinux/extlinux.conf", "grub"}, true,
			[]Target{{Kind: RPiCmdline, Path: "boot/cmdline.txt"}, {Kind: UEnv, Path: "boot/uEnv.txt"}, {Kind: Extlinux, Path: "boot/extlinux/extlinux.conf"}, {Kind: Grub, Path: "grub"}}},
		{"grub skipped when not asked", []string{"boot/uEnv.txt", "grub"}, false,
			[]Target{{Kind: UEnv, Path: "boot/uEnv.txt"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				writeFile(t, filepath.Join(dir, f), "", 0o644)
			}
			grub := ""
			if tt.grub {
				grub = filepath.Join(dir, "grub")
			}
			got, err := Find(filepath.Join(dir, "boot"), grub)
			if err != nil {
				t.Fatal(err)
			}
			var want []Target
			for _, w := range tt.want {
				want = append(want, Target{Kind: w.Kind, Path: filepath.Join(dir, w.Path)})
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Find = %v, want %v", got, want)
			}
		})
	}
}

func TestFindNoneNamesSearchedPaths(t *testing.T) {
	dir := t.TempDir()
	_, err := Find(dir, filepath.Join(dir, "grub"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	for _, p := range []string{"firmware/cmdline.txt", "cmdline.txt", "uEnv.txt", "extlinux/extlinux.conf", "grub"} {
		if !strings.Contains(err.Error(), filepath.Join(dir, p)) {
			t.Errorf("error %q does not name %s", err, p)
		}
	}
}

// TestFindRefusesNonFiles: a candidate that is there but is not a regular
// file is named, with what it is, instead of being taken for missing: a
// directory named firmware/cmdline.txt once made install edit cmdline.txt,
// which the firmware does not read, and a FIFO was "not found".
func TestFindRefusesNonFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(dir string)
		want string
	}{
		{"directory", func(dir string) { writeFile(t, filepath.Join(dir, "boot/firmware/cmdline.txt/x"), "", 0o644) }, "firmware/cmdline.txt is a directory"},
		{"FIFO", func(dir string) {
			if err := os.MkdirAll(filepath.Join(dir, "boot"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(filepath.Join(dir, "boot/uEnv.txt"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "uEnv.txt is a FIFO"},
		{"dangling link", func(dir string) {
			if err := os.MkdirAll(filepath.Join(dir, "boot"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("gone.txt", filepath.Join(dir, "boot/cmdline.txt")); err != nil {
				t.Fatal(err)
			}
		}, "cmdline.txt is a link to gone.txt, which does not exist"},
	} {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "boot/cmdline.txt.orig"), "", 0o644)
		tc.make(dir)
		got, err := Find(filepath.Join(dir, "boot"), "")
		if err == nil || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Find = %v, %v; want a refusal saying %q", tc.name, got, err, tc.want)
		}
	}
}
