package bootcfg

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
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
		{"directory is not a file", []string{"boot/cmdline.txt/x", "grub"}, true,
			[]Target{{Kind: Grub, Path: "grub"}}},
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
