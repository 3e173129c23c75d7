package overlay

import (
	"reflect"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	exists := func(string) bool { return true }
	missing := func(string) bool { return false }
	tests := []struct {
		name     string
		getMode  map[string]string
		cmdline  string
		dirs     func(string) bool
		want     Config
		warnings int
	}{
		{name: "defaults without dir", dirs: missing,
			want: Config{FS: UnionFilesystems, RWLayer: Tmpfs, RWLayerDir: DefaultRWLayerDir, Size: DefaultSize}},
		{name: "defaults with dir", dirs: exists,
			want: Config{FS: UnionFilesystems, RWLayer: Persistent, RWLayerDir: DefaultRWLayerDir, Size: DefaultSize}},
		{name: "get-mode sets all", dirs: missing,
			getMode: map[string]string{VarOverlay: "aufs", VarRWLayer: "persistent-move", VarRWDir: "/data/rw", VarSize: "64m"},
			want:    Config{FS: []string{"aufs"}, RWLayer: PersistentMove, RWLayerDir: "/data/rw", Size: "64m"}},
		{name: "cmdline beats get-mode", dirs: missing,
			getMode: map[string]string{VarRWLayer: "persistent", VarSize: "64m"},
			cmdline: "ro overlayupd.rwlayer=tmpfs overlayupd.size=10%",
			want:    Config{FS: UnionFilesystems, RWLayer: Tmpfs, RWLayerDir: DefaultRWLayerDir, Size: "10%"}},
		{name: "empty cmdline value keeps get-mode", dirs: missing,
			getMode: map[string]string{VarRWLayer: "persistent"}, cmdline: "overlayupd.rwlayer=",
			want: Config{FS: UnionFilesystems, RWLayer: Persistent, RWLayerDir: DefaultRWLayerDir, Size: DefaultSize}},
		{name: "clear flag", dirs: exists, getMode: map[string]string{VarClear: "yes"},
			want: Config{FS: UnionFilesystems, RWLayer: PersistentClear, RWLayerDir: DefaultRWLayerDir, Size: DefaultSize}},
		{name: "move flag from cmdline", dirs: exists, cmdline: "overlayupd.move=yes",
			want: Config{FS: UnionFilesystems, RWLayer: PersistentMove, RWLayerDir: DefaultRWLayerDir, Size: DefaultSize}},
		{name: "clear flag ignored for tmpfs", dirs: exists, getMode: map[string]string{VarRWLayer: "tmpfs", VarClear: "yes"},
			want: Config{FS: UnionFilesystems, RWLayer: Tmpfs, RWLayerDir: DefaultRWLayerDir, Size: DefaultSize}},
		{name: "OVERLAY=disabled", dirs: missing, getMode: map[string]string{VarOverlay: "disabled"},
			want: Config{Disabled: true, DisabledBy: "OVERLAY=disabled", FS: UnionFilesystems, RWLayer: Tmpfs, RWLayerDir: DefaultRWLayerDir, Size: DefaultSize}},
		{name: "fs list", dirs: missing, cmdline: `overlayupd.fs="unionfs overlay"`,
			want: Config{FS: []string{"unionfs", "overlay"}, RWLayer: Tmpfs, RWLayerDir: DefaultRWLayerDir, Size: DefaultSize}},
		{name: "bad values warn and default", dirs: missing,
			getMode:  map[string]string{VarOverlay: "zfs", VarRWLayer: "ramdisk", VarRWDir: "relative", VarSize: "lots"},
			want:     Config{FS: UnionFilesystems, RWLayer: Tmpfs, RWLayerDir: DefaultRWLayerDir, Size: DefaultSize},
			warnings: 4},
		{name: "rw dir that is the root refused", dirs: missing, cmdline: "overlayupd.rwdir=/. overlayupd.rwlayer=persistent-clear",
			want:     Config{FS: UnionFilesystems, RWLayer: PersistentClear, RWLayerDir: DefaultRWLayerDir, Size: DefaultSize},
			warnings: 1},
		{name: "rw dir cleaned", dirs: missing, cmdline: "overlayupd.rwdir=/data//rw/ overlayupd.rwlayer=persistent",
			want: Config{FS: UnionFilesystems, RWLayer: Persistent, RWLayerDir: "/data/rw", Size: DefaultSize}},
		{name: "rw dir inside /overlay refused", dirs: missing, cmdline: "overlayupd.rwdir=/overlay/x",
			want:     Config{FS: UnionFilesystems, RWLayer: Tmpfs, RWLayerDir: DefaultRWLayerDir, Size: DefaultSize},
			warnings: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmdVars, _ := CmdlineVars(tt.cmdline)
			got, warnings := Resolve(tt.getMode, cmdVars, tt.dirs)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if len(warnings) != tt.warnings {
				t.Errorf("got %d warnings %q, want %d", len(warnings), warnings, tt.warnings)
			}
		})
	}
}

func TestResolveChecksDirNamedByGetMode(t *testing.T) {
	var asked []string
	dirs := func(p string) bool { asked = append(asked, p); return p == "/custom" }
	got, _ := Resolve(map[string]string{VarRWDir: "/custom"}, nil, dirs)
	if got.RWLayer != Persistent || !reflect.DeepEqual(asked, []string{"/custom"}) {
		t.Errorf("RWLayer = %s after asking %q; want persistent after asking [/custom]", got.RWLayer, asked)
	}
}

func TestCmdlineVarsDisable(t *testing.T) {
	for _, tt := range []struct {
		cmdline string
		want    bool
	}{
		{"ro init=/sbin/init-overlay overlay=disable", true},
		{"overlay=disabled quiet", true},
		{"overlay=enable", false},
		{"myoverlay=disable", false},
		{"", false},
	} {
		if _, got := CmdlineVars(tt.cmdline); got != tt.want {
			t.Errorf("CmdlineVars(%q) disable = %v, want %v", tt.cmdline, got, tt.want)
		}
	}
}

func FuzzResolve(f *testing.F) {
	f.Add("overlayupd.rwlayer=persistent overlayupd.size=10m", "aufs")
	f.Fuzz(func(t *testing.T, cmdline, overlay string) {
		cmdVars, _ := CmdlineVars(cmdline)
		cfg, _ := Resolve(map[string]string{VarOverlay: overlay}, cmdVars, func(string) bool { return false })
		if len(cfg.FS) == 0 || !validSize(cfg.Size) || !strings.HasPrefix(cfg.RWLayerDir, "/") {
			t.Errorf("invalid config %+v from %q, %q", cfg, cmdline, overlay)
		}
	})
}

func TestValidSize(t *testing.T) {
	for s, want := range map[string]bool{"50%": true, "64m": true, "1024": true, "8G": true, "": false, "m": false,
		"64mm": false, "6 4m": false, "-1m": false, "50%%": false, "1.5g": false,
		"0": false, "0m": false, "000%": false, "100%": true, "101%": false, "1000%": false, "9999999999999999m": false,
		// 2^32+1: an int of 32 bits (armhf) wrapped it to 1, and 1% passed.
		"4294967297%": false, "4294967296k": true, "999999999999999%": false,
		// The kernel shifts by the suffix without an overflow check: 2^34 g
		// is 2^64 bytes, 0 after the wrap, no limit at all.
		"17179869184g": false, "17592186044416m": false, "34359738368G": false,
		// 2^32 pages of 4 KiB wrap to 0 on a 32-bit kernel: 16 TiB is one
		// page too many.
		"16384g": false, "16383g": true, "17592186044416": false, "17592186040320": true, "17592186040321": false} {
		if got := validSize(s); got != want {
			t.Errorf("validSize(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestResolveProtectsTheRoot: in classic mode the persistent directory is
// on the real root, and a persistent-clear or -move of one of its system
// directories (a typo on the kernel command line: overlayupd.rwdir=/etc)
// would empty or move it away at every boot, for good: /etc, /usr, /lib,
// /bin (where /sbin/init and its loader live) and /boot (the kernel) are
// refused as the store's directories are, and the boot uses tmpfs.
func TestResolveProtectsTheRoot(t *testing.T) {
	for _, dir := range []string{"/etc", "/usr", "/usr/lib", "/lib", "/lib64", "/bin", "/boot", "/etc/", "/usr/./lib"} {
		for _, layer := range []RWLayer{PersistentClear, PersistentMove} {
			cfg, warnings := Resolve(nil, map[string]string{VarRWDir: dir, VarRWLayer: string(layer)}, func(string) bool { return true })
			if cfg.RWLayer != Tmpfs || len(warnings) != 1 || !strings.Contains(warnings[0], "tmpfs") {
				t.Errorf("overlayupd.rwdir=%s %s: got %s in %s with warnings %q; want tmpfs and one warning", dir, layer, cfg.RWLayer, cfg.RWLayerDir, warnings)
			}
		}
	}
	for _, dir := range []string{"/etcx", "/usrdata", "/var/lib/rw", "/libx", "/data/usr"} {
		if cfg, w := Resolve(nil, map[string]string{VarRWDir: dir, VarRWLayer: "persistent-clear"}, func(string) bool { return true }); cfg.RWLayer != PersistentClear || cfg.RWLayerDir != dir || len(w) != 0 {
			t.Errorf("rwdir=%s: got %s in %s, %q; want it accepted", dir, cfg.RWLayer, cfg.RWLayerDir, w)
		}
	}
}

// TestResolveProtectsTheStore: a persistent layer that would clear or move
// the slot directory, the trampoline, the store's keys (its device key and
// the signed records of its roots), the overlay's tree or a kernel
// filesystem is refused with one warning, and the boot uses tmpfs.
func TestResolveProtectsTheStore(t *testing.T) {
	for _, dir := range []string{"/roots", "/sbin", "/roots/x", "/dev/shm", "/proc", "/sys/fs", "/overlayupd-store", "/keys", "/keys/records",
		"/overlay-rw-layer/../roots", "/data/./rw", "/data/rw/..", "//roots/"} {
		for _, layer := range []RWLayer{PersistentClear, PersistentMove, Persistent} {
			cfg, warnings := Resolve(map[string]string{VarRWDir: dir, VarRWLayer: string(layer)}, nil, func(string) bool { return true })
			if cfg.RWLayer != Tmpfs || len(warnings) != 1 || !strings.Contains(warnings[0], "tmpfs") {
				t.Errorf("rwdir=%s %s: got %s in %s with warnings %q; want tmpfs and one warning", dir, layer, cfg.RWLayer, cfg.RWLayerDir, warnings)
			}
		}
	}
	for _, dir := range []string{"/data/rw", "/overlay-rw-layer", "/rootsx", "/keysx", "/var/lib/rw"} {
		if cfg, w := Resolve(map[string]string{VarRWDir: dir, VarRWLayer: "persistent-clear"}, nil, func(string) bool { return true }); cfg.RWLayer != PersistentClear || cfg.RWLayerDir != dir || len(w) != 0 {
			t.Errorf("rwdir=%s: got %s in %s, %q; want it accepted", dir, cfg.RWLayer, cfg.RWLayerDir, w)
		}
	}
}

// TestCmdlineVarsAfterDashes: overlayupd.* keys after "--" are init's
// arguments and not read; overlay=disable is honoured anywhere, as the
// original script honoured it.
func TestCmdlineVarsAfterDashes(t *testing.T) {
	vars, off := CmdlineVars("ro overlayupd.size=50% -- overlayupd.size=1g overlay=disable")
	if vars[VarSize] != "50%" || !off {
		t.Errorf("CmdlineVars = %v, %v; want size 50%% and overlay=disable honoured", vars, off)
	}
}
