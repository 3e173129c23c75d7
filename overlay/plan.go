package overlay

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// OpKind is what one step of a plan does.
type OpKind int

// The kinds of plan steps.
const (
	OpMkdir     OpKind = iota // create Target (and parents)
	OpMount                   // mount Source (FSType, Flags, Data) on Target
	OpMove                    // move the mount at Source to Target
	OpRemount                 // change the flags of the mount at Target
	OpClearDir                // remove everything inside Target
	OpMoveAside               // rename Target to Source, dropping an older Source
	OpChmod                   // chmod Target 0755
	OpTouch                   // create an empty file Target
	OpPrivate                 // make every mount under Target private
	OpPivot                   // pivot_root into Target, old root at Source (relative)
	OpCustom                  // Do mounts something at Target (e.g. a loop-mounted image)
)

// Op is one step of a plan: data that can be printed, compared in tests, and
// carried out by Run.
type Op struct {
	Kind   OpKind
	Source string
	Target string
	FSType string
	Flags  uintptr
	Data   string
	// Do carries out an OpCustom step; Source describes it for String.
	Do func() error
}

func (o Op) String() string {
	switch o.Kind {
	case OpMkdir:
		return "mkdir -p " + o.Target
	case OpMount:
		if o.Flags&unix.MS_BIND != 0 {
			return fmt.Sprintf("mount --bind %s %s", o.Source, o.Target)
		}
		s := fmt.Sprintf("mount -t %s", o.FSType)
		if opts := joinOpts(flagNames(o.Flags), o.Data); opts != "" {
			s += " -o " + opts
		}
		return s + " " + o.Source + " " + o.Target
	case OpMove:
		return fmt.Sprintf("mount --move %s %s", o.Source, o.Target)
	case OpRemount:
		opts := "remount"
		if o.Flags&unix.MS_BIND != 0 {
			opts += ",bind"
		}
		if o.Flags&unix.MS_RDONLY != 0 {
			opts += ",ro"
		} else {
			opts += ",rw"
		}
		return fmt.Sprintf("mount -o %s %s", opts, o.Target)
	case OpClearDir:
		return "clear " + o.Target
	case OpMoveAside:
		return fmt.Sprintf("move-aside %s %s", o.Target, o.Source)
	case OpChmod:
		return "chmod 755 " + o.Target
	case OpTouch:
		return "touch " + o.Target
	case OpPrivate:
		return "mount --make-rprivate " + o.Target
	case OpPivot:
		return fmt.Sprintf("pivot_root %s %s", o.Target, o.Source)
	case OpCustom:
		return o.Source + " " + o.Target
	}
	return fmt.Sprintf("op(%d) %s", o.Kind, o.Target)
}

func flagNames(f uintptr) []string {
	var names []string
	for _, fl := range []struct {
		bit  uintptr
		name string
	}{{unix.MS_RDONLY, "ro"}, {unix.MS_NOSUID, "nosuid"}, {unix.MS_NODEV, "nodev"}, {unix.MS_NOEXEC, "noexec"}} {
		if f&fl.bit != 0 {
			names = append(names, fl.name)
		}
	}
	return names
}

func joinOpts(flags []string, data string) string {
	if data != "" {
		flags = append(flags, data)
	}
	return strings.Join(flags, ",")
}

// The original's layout, kept for drop-in compatibility.
const (
	OverlayDir  = "/overlay"
	RobaseDir   = "/overlay/robase"
	RwdataDir   = "/overlay/rwdata"
	CombinedDir = "/overlay/combined"
	// PivotDir is where the old root stays visible in the new root.
	PivotDir = "/overlay/pivot"
)

// StandardDirs are the mount points created in the new root.
var StandardDirs = []string{"/dev", "/proc", "/sys", "/tmp", "/run", "/var/lock"}

// Layout is what BuildPlan needs to know about the running system.
type Layout struct {
	// FS is the union filesystem to use (one of UnionFilesystems).
	FS string
	// Mounts are the mount points that exist now (from /proc/self/mounts).
	Mounts []string
	// Lower, when set, replaces the classic lower layer (a bind of "/") with
	// the steps it returns, which must leave the lower root mounted at
	// RobaseDir. The store modes use it to mount a root image.
	Lower func(Config) []Op
	// ReadOnly makes the merged root read-only once its mount points are
	// made: the store modes use it when the overlay is disabled, so that a
	// read-only image still gets /overlay/store and the moved mounts.
	ReadOnly bool
	// Keep are extra mounts under /overlay (e.g. the store) moved into the new
	// root at the same path.
	Keep []string
}

// BuildPlan returns the steps that lay the overlay over the root and leave the
// merged tree at CombinedDir, then pivot_root into it. The old root stays
// visible at PivotDir, as in the original.
func BuildPlan(cfg Config, l Layout) []Op {
	rw := cfg.RWLayer != Tmpfs && !l.ReadOnly
	if l.ReadOnly {
		cfg.Size = "1m"
	}
	var p []Op
	add := func(o ...Op) { p = append(p, o...) }

	// pivot_root refuses shared mounts; at boot everything is private anyway.
	add(Op{Kind: OpPrivate, Target: "/"})

	add(Op{Kind: OpMount, Source: "overlay-root", Target: OverlayDir, FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=0755,size=1m"})
	for _, d := range []string{RobaseDir, RwdataDir, CombinedDir} {
		add(Op{Kind: OpMkdir, Target: d})
	}
	if rw {
		// The persistent layer lives on the root filesystem: the superblock must
		// be writable. The lower layer is then made read-only per mount.
		add(Op{Kind: OpRemount, Target: "/"})
		switch cfg.RWLayer {
		case PersistentClear:
			add(Op{Kind: OpMkdir, Target: cfg.RWLayerDir}, Op{Kind: OpClearDir, Target: cfg.RWLayerDir})
		case PersistentMove:
			add(Op{Kind: OpMoveAside, Target: cfg.RWLayerDir, Source: cfg.RWLayerDir + "-bak"})
		}
		add(Op{Kind: OpMkdir, Target: cfg.RWLayerDir})
	}
	if l.Lower != nil {
		add(l.Lower(cfg)...)
	} else {
		add(Op{Kind: OpMount, Source: "/", Target: RobaseDir, Flags: unix.MS_BIND},
			Op{Kind: OpRemount, Target: RobaseDir, Flags: unix.MS_BIND | unix.MS_RDONLY})
	}
	if rw {
		add(Op{Kind: OpMount, Source: cfg.RWLayerDir, Target: RwdataDir, Flags: unix.MS_BIND})
	} else {
		add(Op{Kind: OpMount, Source: "overlay-rw", Target: RwdataDir, FSType: "tmpfs", Data: "mode=0755,size=" + cfg.Size})
	}
	add(unionMount(l.FS)...)

	// The original's layout: rwdata and robase stay visible under /overlay.
	for _, m := range append([]string{RwdataDir, RobaseDir}, l.Keep...) {
		add(Op{Kind: OpMkdir, Target: CombinedDir + m}, Op{Kind: OpMove, Source: m, Target: CombinedDir + m})
	}
	add(Op{Kind: OpMkdir, Target: CombinedDir + PivotDir}, Op{Kind: OpChmod, Target: CombinedDir})
	if !rw {
		// The root is read-only underneath: a boot-time fsck has nothing to
		// fix. (Not in a persistent layer, where it would stay for good.)
		add(Op{Kind: OpTouch, Target: CombinedDir + "/fastboot"})
	}
	for _, m := range MountsToMove(l.Mounts) {
		add(Op{Kind: OpMkdir, Target: CombinedDir + m}, Op{Kind: OpMove, Source: m, Target: CombinedDir + m})
	}
	for _, d := range StandardDirs {
		add(Op{Kind: OpMkdir, Target: CombinedDir + d})
	}
	if l.ReadOnly {
		add(Op{Kind: OpRemount, Target: CombinedDir, Flags: unix.MS_BIND | unix.MS_RDONLY})
	}
	add(Op{Kind: OpPivot, Target: CombinedDir, Source: PivotDir[1:]})
	return p
}

// unionMount mounts the union filesystem at CombinedDir with the options each
// kind wants, as the original script did.
func unionMount(fs string) []Op {
	switch fs {
	case "overlay":
		return []Op{
			{Kind: OpMkdir, Target: RwdataDir + "/data"},
			{Kind: OpMkdir, Target: RwdataDir + "/work"},
			{Kind: OpMount, Source: "overlay", Target: CombinedDir, FSType: "overlay",
				Data: "lowerdir=" + RobaseDir + ",upperdir=" + RwdataDir + "/data,workdir=" + RwdataDir + "/work"},
		}
	case "overlayfs":
		return []Op{{Kind: OpMount, Source: "overlayfs", Target: CombinedDir, FSType: "overlayfs",
			Data: "lowerdir=" + RobaseDir + ",upperdir=" + RwdataDir}}
	default: // aufs, unionfs
		return []Op{{Kind: OpMount, Source: fs, Target: CombinedDir, FSType: fs,
			Data: "dirs=" + RwdataDir + "=rw:" + RobaseDir + "=ro"}}
	}
}

// MountsToMove picks, from the mount points that exist, the ones to move
// into the new root: every top-level mount except "/" and /overlay itself.
// A mount below another one that moves (e.g. /dev/pts under /dev) goes with it.
func MountsToMove(mounts []string) []string {
	seen := map[string]bool{}
	var out []string
	sorted := append([]string(nil), mounts...)
	sort.Strings(sorted)
	for _, m := range sorted {
		m = path.Clean(m)
		if m == "/" || m == OverlayDir || strings.HasPrefix(m, OverlayDir+"/") || seen[m] {
			continue
		}
		covered := false
		for _, o := range out {
			if strings.HasPrefix(m, o+"/") {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, m)
			seen[m] = true
		}
	}
	return out
}

// ChooseFS returns the first of the wanted union filesystems that the
// kernel has, asking load to make one available when it is missing.
func ChooseFS(want []string, have func(string) bool, load func(string) error) (string, error) {
	var errs []string
	for _, fs := range want {
		if have(fs) {
			return fs, nil
		}
		if err := load(fs); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", fs, err))
			continue
		}
		if have(fs) {
			return fs, nil
		}
		errs = append(errs, fs+": loaded but not in /proc/filesystems")
	}
	return "", fmt.Errorf("no union filesystem available (%s)", strings.Join(errs, "; "))
}
