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
			[]Target{{RPiCmdline, "boot/firmware/cmdline.txt"}}},
		{"rpi boot partition", []string{"boot/cmdline.txt", "boot/config.txt"}, false,
			[]Target{{RPiCmdline, "boot/cmdline.txt"}}},
		{"all kinds", []string{"boot/cmdline.txt", "boot/uEnv.txt", "boot/extlinux/extlinux.conf", "grub"}, true,
			[]Target{{RPiCmdline, "boot/cmdline.txt"}, {UEnv, "boot/uEnv.txt"}, {Extlinux, "boot/extlinux/extlinux.conf"}, {Grub, "grub"}}},
		{"grub skipped when not asked", []string{"boot/uEnv.txt", "grub"}, false,
			[]Target{{UEnv, "boot/uEnv.txt"}}},
		{"directory is not a file", []string{"boot/cmdline.txt/x", "grub"}, true,
			[]Target{{Grub, "grub"}}},
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
				want = append(want, Target{w.Kind, filepath.Join(dir, w.Path)})
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
