// Package overlay owns the init-overlay core: the configuration (built-in
// defaults, the get-mode script, the kernel command line), the choice of union
// filesystem, the writable layer, and the mount plan that lays a writable
// overlay over a read-only root, pivots into it and execs the real init.
//
// Decisions are plain functions over data (Resolve, ChooseFS, BuildPlan); the
// syscalls that carry out a plan live in the *_linux.go files.
package overlay

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/overlayupd/overlayupd/internal/kcmdline"
)

// RWLayer is where the overlay's writable layer lives.
type RWLayer string

// The writable layer kinds of the original init-overlay.
const (
	Tmpfs           RWLayer = "tmpfs"
	Persistent      RWLayer = "persistent"
	PersistentClear RWLayer = "persistent-clear"
	PersistentMove  RWLayer = "persistent-move"
)

// UnionFilesystems are the union filesystems init-overlay knows, in the
// order it tries them when OVERLAY does not name one.
var UnionFilesystems = []string{"overlay", "overlayfs", "aufs", "unionfs"}

// Default values of the configuration variables.
const (
	DefaultRWLayerDir = "/overlay-rw-layer"
	DefaultSize       = "50%"
)

// Config is the resolved configuration of one boot.
type Config struct {
	// Disabled is set when the overlay must not be set up; DisabledBy says why.
	Disabled   bool
	DisabledBy string
	// FS lists the union filesystems to try, in order.
	FS []string
	// RWLayer is the kind of writable layer and RWLayerDir its directory when
	// persistent.
	RWLayer    RWLayer
	RWLayerDir string
	// Size is the tmpfs size option of a tmpfs writable layer ("50%", "64m").
	Size string
	// Verity says whether a root image is mounted through dm-verity (the
	// store modes; from overlayupd.verity= on the kernel command line).
	Verity VerityMode
	// Shadow says who wins where the persistent layer hides what a new
	// image changed (overlayupd.shadow=, the store modes).
	Shadow ShadowPolicy
}

// Variable names understood in the get-mode script's environment.
const (
	VarOverlay = "OVERLAY"
	VarRWLayer = "OVERLAY_RW_LAYER"
	VarRWDir   = "OVERLAY_RW_LAYER_DIR"
	VarClear   = "OVERLAY_RW_LAYER_CLEAR"
	VarMove    = "OVERLAY_RW_LAYER_MOVE"
	VarSize    = "OVERLAY_RW_LAYER_SIZE"
)

// Vars lists every configuration variable, in documentation order.
var Vars = []string{VarOverlay, VarRWLayer, VarRWDir, VarClear, VarMove, VarSize}

// CmdlineKeys maps kernel command line keys to the variable they set.
// "overlay=disable" is the original script's key and is handled apart.
var CmdlineKeys = map[string]string{
	"overlayupd.fs":      VarOverlay,
	"overlayupd.rwlayer": VarRWLayer,
	"overlayupd.rwdir":   VarRWDir,
	"overlayupd.clear":   VarClear,
	"overlayupd.move":    VarMove,
	"overlayupd.size":    VarSize,
}

// CmdlineVars returns the variables set by the kernel command line, and
// whether it carries the original "overlay=disable".
func CmdlineVars(cmdline string) (vars map[string]string, disable bool) {
	vars = map[string]string{}
	for _, p := range kcmdline.Kernel(cmdline) {
		if v, ok := CmdlineKeys[p.Key]; ok {
			vars[v] = p.Value
		}
	}
	// overlay=disable anywhere on the line, after "--" too: the original
	// script looked for it so, and a drop-in must honour it where it did.
	for _, p := range kcmdline.Split(cmdline) {
		if p.Key == "overlay" && (p.Value == "disable" || p.Value == "disabled") {
			disable = true
		}
	}
	return vars, disable
}

// validSize reports whether s is a tmpfs size: digits and an optional k, m,
// g or % suffix, not zero (tmpfs reads size=0 as no limit at all: a layer
// that can fill the RAM), not over 100%, and at most maxTmpfsSize bytes.
// (No regexp: compiling one costs every boot time.)
func validSize(s string) bool {
	digits := strings.TrimRight(s, "kKmMgG%")
	if len(s)-len(digits) > 1 || digits == "" || len(digits) > 15 {
		return false
	}
	// uint64: at most 15 digits fit, on 32-bit boards too (an int of 32
	// bits wrapped 4294967297% to 1%).
	var n uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + uint64(c-'0')
	}
	if n == 0 {
		return false
	}
	shift := 0
	switch s[len(s)-1] {
	case '%':
		return n <= 100
	case 'k', 'K':
		shift = 10
	case 'm', 'M':
		shift = 20
	case 'g', 'G':
		shift = 30
	}
	// Why the bound: the kernel shifts the number by its suffix without an
	// overflow check (memparse), so 17179869184g wrapped to 0, no limit.
	return n <= maxTmpfsSize>>shift
}

// maxTmpfsSize is the largest writable layer size validSize takes, a page
// under 16 TiB: a 32-bit kernel's tmpfs counts its size in 4 KiB pages in
// an unsigned long, and 2^32 pages wrap to 0, no limit. Far past any
// board's memory.
const maxTmpfsSize = 1<<44 - 4096

// Resolve turns the layered variables into a Config: defaults, then getMode
// (the get-mode script's variables), then cmdline (the kernel command line
// keys). Empty values leave the earlier layer in force. dirExists reports
// whether a directory exists on the root, for the persistent default.
// Unknown values give a warning and the default.
func Resolve(getMode, cmdline map[string]string, dirExists func(string) bool) (cfg Config, warnings []string) {
	v := map[string]string{VarRWDir: DefaultRWLayerDir, VarSize: DefaultSize}
	for _, layer := range []map[string]string{getMode, cmdline} {
		for _, k := range Vars {
			if val := strings.TrimSpace(layer[k]); val != "" {
				v[k] = val
			}
		}
	}
	warn := func(format string, a ...any) { warnings = append(warnings, fmt.Sprintf(format, a...)) }

	cfg.FS = UnionFilesystems
	if o := v[VarOverlay]; o != "" {
		var fs []string
		for _, name := range strings.Fields(o) {
			switch {
			case name == "disable" || name == "disabled":
				cfg.Disabled, cfg.DisabledBy = true, VarOverlay+"="+name
			case slices.Contains(UnionFilesystems, name):
				fs = append(fs, name)
			default:
				warn("unknown %s value %q (want one of %s or disable); trying all", VarOverlay, name, strings.Join(UnionFilesystems, ", "))
			}
		}
		if len(fs) > 0 {
			cfg.FS = fs
		}
	}

	cfg.RWLayerDir = path.Clean(v[VarRWDir])
	forceTmpfs := false
	if !strings.HasPrefix(cfg.RWLayerDir, "/") || cfg.RWLayerDir == "/" || cfg.RWLayerDir == OverlayDir || strings.HasPrefix(cfg.RWLayerDir, OverlayDir+"/") {
		warn("%s=%q must be an absolute directory outside /overlay; using %s", VarRWDir, cfg.RWLayerDir, DefaultRWLayerDir)
		cfg.RWLayerDir = DefaultRWLayerDir
	} else if why := protectedRWDir(v[VarRWDir]); why != "" {
		// A persistent-clear or -move layer there would delete what the
		// system needs to boot: refuse it, and boot with a tmpfs layer.
		warn("%s=%q %s; booting with a tmpfs writable layer", VarRWDir, v[VarRWDir], why)
		cfg.RWLayerDir, forceTmpfs = DefaultRWLayerDir, true
	}
	switch l := RWLayer(v[VarRWLayer]); l {
	case Tmpfs, Persistent, PersistentClear, PersistentMove:
		cfg.RWLayer = l
	default:
		if l != "" {
			warn("unknown %s value %q (want tmpfs, persistent, persistent-clear or persistent-move); using the default", VarRWLayer, l)
		}
		cfg.RWLayer = Tmpfs
		if dirExists(cfg.RWLayerDir) {
			cfg.RWLayer = Persistent
		}
	}
	if forceTmpfs {
		cfg.RWLayer = Tmpfs
	}
	if cfg.RWLayer != Tmpfs {
		if yes(v[VarClear]) {
			cfg.RWLayer = PersistentClear
		}
		if yes(v[VarMove]) {
			cfg.RWLayer = PersistentMove
		}
	}

	cfg.Size = v[VarSize]
	if !validSize(cfg.Size) {
		warn("%s=%q is not a size such as 64m or 50%% (not 0, which means no limit, and at most 100%%); using %s", VarSize, cfg.Size, DefaultSize)
		cfg.Size = DefaultSize
	}
	return cfg, warnings
}

func yes(s string) bool {
	switch strings.ToLower(s) {
	case "yes", "y", "1", "true", "on":
		return true
	}
	return false
}

// protectedDirs are what a writable layer must never be, contain, or lie
// in: the store's slot directory, trampoline and keys (the device key and
// the signed records of the roots: a persistent-clear there would delete
// them at every boot, for good), the overlay's own tree, the kernel's
// filesystems, and the store marker; and, in classic mode, where the layer
// is on the real root, the system directories that it needs to boot
// (init, its loader and libraries, its configuration, the kernel).
var protectedDirs = []string{"/roots", "/sbin", "/keys", OverlayDir, "/dev", "/proc", "/sys", "/overlayupd-store",
	"/bin", "/boot", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/usr"}

// protectedRWDir says why the value raw may not name the persistent layer,
// or "". "." and ".." components are refused rather than cleaned, so that a
// value cannot walk into a protected directory (/overlay-rw-layer/../roots).
func protectedRWDir(raw string) string {
	for _, c := range strings.Split(raw, "/") {
		if c == "." || c == ".." {
			return "has a . or .. component"
		}
	}
	dir := path.Clean(raw)
	for _, p := range protectedDirs {
		if dir == p || strings.HasPrefix(dir, p+"/") || strings.HasPrefix(p, dir+"/") {
			return "is, or is inside or contains, " + p
		}
	}
	return ""
}
