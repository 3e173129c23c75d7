package overlay

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/mounts"
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
	OpCheckInit               // the root mounted at Target has an init the kernel can run (CheckInit)
	OpShadow                  // the shadow check of the persistent layer (Shadow); never fails the boot
)

// Phase is the part of the boot a step belongs to. A failed step's phase
// says what to do next (see StepError): a lower layer that does not mount
// means a bad root, anything after it means no overlay over a good root.
type Phase int

// The phases of a plan.
const (
	PhaseSetup Phase = iota // the /overlay scaffolding, moves, pivot
	PhaseLower              // the mount of the lower layer (the root to boot)
	PhaseLayer              // the writable layer: the persistent directory or a tmpfs
	PhaseUnion              // the union mount of the two
)

// The errors of the phases, for errors.Is on what Run and Boot return.
var (
	ErrLowerMount = errors.New("the root does not mount")
	ErrLayer      = errors.New("the writable layer cannot be made")
	ErrUnion      = errors.New("no union mount")
)

// Op is one step of a plan: data that can be printed, compared in tests, and
// carried out by Run.
type Op struct {
	Kind   OpKind
	Phase  Phase
	Source string
	Target string
	FSType string
	Flags  uintptr
	Data   string
	Loop   bool // OpMount: Source is a file, attached to a loop device first
	Exists bool // OpMkdir: the directory is likely there already (look first)
	// Verity (OpMount of an image file) mounts it through dm-verity, as the
	// mode says (mountVerity); "" never does.
	Verity VerityMode
	// Shadow is OpShadow's work.
	Shadow *ShadowStep
}

// MountOp is the step that mounts spec at target: a mounts.Spec made a plan step.
func MountOp(spec mounts.Spec, target string, phase Phase) Op {
	flags, data := spec.Args()
	return Op{Kind: OpMount, Phase: phase, Source: spec.Source, Target: target, FSType: spec.Type, Flags: flags, Data: data,
		Loop: spec.Loop(), Verity: opVerity(spec)}
}

func (o Op) String() string {
	switch o.Kind {
	case OpMkdir:
		return "mkdir -p " + o.Target
	case OpMount:
		if o.Flags&unix.MS_BIND != 0 {
			if o.Flags&unix.MS_RDONLY != 0 {
				return fmt.Sprintf("mount --bind -o ro %s %s", o.Source, o.Target)
			}
			return fmt.Sprintf("mount --bind %s %s", o.Source, o.Target)
		}
		s := fmt.Sprintf("mount -t %s", o.FSType)
		names := flagNames(o.Flags)
		if o.Loop {
			names = append(names, "loop")
		}
		switch o.Verity {
		case VerityOn:
			names = append(names, "verity")
		case VerityRequire:
			names = append(names, "verity=require")
		}
		if opts := joinOpts(names, o.Data); opts != "" {
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
	case OpCheckInit:
		return "check-init " + o.Target + RealInit
	case OpShadow:
		return o.Shadow.String()
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
	// RwcommittedDir is, in a trial boot, the committed root's persistent
	// layer, read-only, between the trial's writable layer and the root.
	RwcommittedDir = "/overlay/rwcommitted"
	// ShadowtopDir is, in a trial boot with overlayupd.shadow=image, the
	// top read-only layer holding the new image's versions of the files
	// the persistent layer hides (layer.Reveal).
	ShadowtopDir = "/overlay/shadowtop"
	// ShadowbaseDir is where the shadow check mounts the root the
	// persistent layer was used with, for the time of the check.
	ShadowbaseDir = "/overlay/shadowbase"
)

// StandardDirs are the mount points created in the new root.
var StandardDirs = []string{"/dev", "/proc", "/sys", "/tmp", "/run", "/var/lock"}

// Layout is what BuildPlan needs to know about the running system.
type Layout struct {
	// FS is the union filesystem to use (one of UnionFilesystems).
	FS string
	// Mounts are the mount points that exist now (from /proc/self/mounts).
	Mounts []string
	// Lower, when set, is mounted at RobaseDir instead of the classic lower
	// layer (a bind of "/"): the store modes' root to boot.
	Lower *mounts.Spec
	// ReadOnly makes the merged root read-only once its mount points are
	// made: the store modes use it when the overlay is disabled, so that a
	// read-only image still gets /overlay/store and the moved mounts.
	ReadOnly bool
	// Keep is a directory of the kernel's root (the store's top) kept
	// visible, read-only, at KeepAt (under /overlay) in the new root.
	Keep, KeepAt string
	// UnionOpts are more options of the overlay mount (store modes:
	// redirect_dir=off,metacopy=off, so that the upper directory is
	// self-contained and persist can fold it into a root).
	UnionOpts string
	// ClearLayer starts a persistent layer empty at this boot, moving the
	// old one aside as persistent-move does (to DIR-bak): after a commit of
	// what persist folded from it into the root, the layer's copies would
	// only shadow later updates, and anything written after persist read
	// it stays in the backup.
	ClearLayer bool
	// TrialLayer, when set, is the writable layer's directory instead of
	// the configured one (a trial's: trampoline.LayerTrial), never
	// cleared or moved; the configured one is left alone.
	TrialLayer string
	// Middle, when set, is a layer directory mounted read-only between the
	// writable layer and the root (the committed root's persistent layer
	// in a trial boot).
	Middle string
	// Shadow, when set, is the shadow check to run once the root is
	// mounted (and with Shadow.Top, a tmpfs top layer it fills).
	Shadow *ShadowStep
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
	layer := func(o ...Op) {
		for _, op := range o {
			op.Phase = PhaseLayer
			add(op)
		}
	}
	if rw {
		// The persistent layer lives on the root filesystem: the superblock must
		// be writable. The lower layer is then made read-only per mount.
		layer(Op{Kind: OpRemount, Target: "/"})
		mode := cfg.RWLayer
		if l.ClearLayer && mode == Persistent {
			mode = PersistentMove
		}
		if l.TrialLayer != "" {
			// A trial writes into a layer of its own: the configured one
			// is the committed root's, never cleared nor moved by a trial.
			mode = Persistent
		}
		switch mode {
		case PersistentClear:
			layer(Op{Kind: OpMkdir, Target: cfg.RWLayerDir}, Op{Kind: OpClearDir, Target: cfg.RWLayerDir})
		case PersistentMove:
			layer(Op{Kind: OpMoveAside, Target: cfg.RWLayerDir, Source: cfg.RWLayerDir + "-bak"})
		}
		layer(Op{Kind: OpMkdir, Target: rwDir(cfg, l)})
	}
	if l.Lower != nil {
		// A root whose init cannot run is a bad root, found before the pivot:
		// the boot path falls back to the next one in this boot, where an
		// exec of it would end in a kernel panic and the same root again.
		add(MountOp(*l.Lower, RobaseDir, PhaseLower), Op{Kind: OpCheckInit, Phase: PhaseLower, Target: RobaseDir})
		if rw && l.Shadow != nil {
			if l.Shadow.Top != "" {
				layer(Op{Kind: OpMkdir, Target: ShadowtopDir},
					Op{Kind: OpMount, Source: "overlay-shadowtop", Target: ShadowtopDir, FSType: "tmpfs", Data: "mode=0755,size=" + cfg.Size})
			}
			layer(Op{Kind: OpShadow, Shadow: l.Shadow})
		}
	} else {
		add(Op{Kind: OpMount, Phase: PhaseLower, Source: "/", Target: RobaseDir, Flags: unix.MS_BIND},
			Op{Kind: OpRemount, Phase: PhaseLower, Target: RobaseDir, Flags: unix.MS_BIND | unix.MS_RDONLY})
	}
	var keep []string
	if l.Keep != "" {
		// With a tmpfs writable layer nothing writes to the store after boot,
		// so its filesystem goes back to read-only: that is what survives
		// power cuts. With a persistent layer on it, only this mount is.
		ro := Op{Kind: OpRemount, Target: l.KeepAt, Flags: unix.MS_RDONLY}
		if rw {
			ro.Flags |= unix.MS_BIND
		}
		add(Op{Kind: OpMkdir, Target: l.KeepAt}, Op{Kind: OpMount, Source: l.Keep, Target: l.KeepAt, Flags: unix.MS_BIND}, ro)
		keep = append(keep, l.KeepAt)
	}
	lowers := []string{RobaseDir}
	if rw {
		layer(Op{Kind: OpMount, Source: rwDir(cfg, l), Target: RwdataDir, Flags: unix.MS_BIND})
		if l.Middle != "" && l.FS != "overlayfs" {
			layer(Op{Kind: OpMkdir, Target: RwcommittedDir},
				Op{Kind: OpMount, Source: l.Middle, Target: RwcommittedDir, Flags: unix.MS_BIND | unix.MS_RDONLY})
			lowers = append([]string{RwcommittedDir}, lowers...)
			keep = append(keep, RwcommittedDir)
		}
		if l.Lower != nil && l.Shadow != nil && l.Shadow.Top != "" && l.FS != "overlayfs" {
			lowers = append([]string{ShadowtopDir}, lowers...)
			keep = append(keep, ShadowtopDir)
		}
	} else {
		layer(Op{Kind: OpMount, Source: "overlay-rw", Target: RwdataDir, FSType: "tmpfs", Data: "mode=0755,size=" + cfg.Size})
	}
	for _, op := range unionMount(l.FS, l.UnionOpts, lowers) {
		op.Phase = PhaseUnion
		add(op)
	}

	// The original's layout: rwdata and robase stay visible under /overlay.
	for _, m := range append([]string{RwdataDir, RobaseDir}, keep...) {
		add(Op{Kind: OpMkdir, Target: CombinedDir + m}, Op{Kind: OpMove, Source: m, Target: CombinedDir + m})
	}
	add(Op{Kind: OpMkdir, Target: CombinedDir + PivotDir}, Op{Kind: OpChmod, Target: CombinedDir})
	if !rw {
		// The root is read-only underneath: a boot-time fsck has nothing to
		// fix. (Not in a persistent layer, where it would stay for good.)
		add(Op{Kind: OpTouch, Target: CombinedDir + "/fastboot"})
	}
	made := map[string]bool{}
	for _, m := range MountsToMove(l.Mounts) {
		// Mount points a root has (/dev, /proc, ...): Exists says to look
		// before making, one system call where mkdir first would be two.
		add(Op{Kind: OpMkdir, Target: CombinedDir + m, Exists: true}, Op{Kind: OpMove, Source: m, Target: CombinedDir + m})
		made[m] = true
	}
	for _, d := range StandardDirs {
		if !made[d] {
			add(Op{Kind: OpMkdir, Target: CombinedDir + d, Exists: true})
		}
	}
	if l.ReadOnly {
		add(Op{Kind: OpRemount, Target: CombinedDir, Flags: unix.MS_BIND | unix.MS_RDONLY})
	}
	add(Op{Kind: OpPivot, Target: CombinedDir, Source: PivotDir[1:]})
	return p
}

// rwDir is the directory of the writable layer: the trial's, or the
// configured persistent one.
func rwDir(cfg Config, l Layout) string {
	if l.TrialLayer != "" {
		return l.TrialLayer
	}
	return cfg.RWLayerDir
}

// unionMount mounts the union filesystem at CombinedDir with the options each
// kind wants, as the original script did; lowers are the read-only layers,
// topmost first (overlayfs, the oldest, takes only the last).
func unionMount(fs, opts string, lowers []string) []Op {
	switch fs {
	case "overlay":
		data := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + RwdataDir + "/data,workdir=" + RwdataDir + "/work"
		if opts != "" {
			data += "," + opts
		}
		return []Op{
			{Kind: OpMkdir, Target: RwdataDir + "/data"},
			{Kind: OpMkdir, Target: RwdataDir + "/work"},
			{Kind: OpMount, Source: "overlay", Target: CombinedDir, FSType: "overlay", Data: data},
		}
	case "overlayfs":
		return []Op{{Kind: OpMount, Source: "overlayfs", Target: CombinedDir, FSType: "overlayfs",
			Data: "lowerdir=" + RobaseDir + ",upperdir=" + RwdataDir}}
	default: // aufs, unionfs
		return []Op{{Kind: OpMount, Source: fs, Target: CombinedDir, FSType: fs,
			Data: "dirs=" + RwdataDir + "=rw:" + strings.Join(lowers, "=ro:") + "=ro"}}
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
	return "", fmt.Errorf("%w: no union filesystem available (%s)", ErrUnion, strings.Join(errs, "; "))
}

// SelfContainedOpts are the overlay options that keep an upper directory
// self-contained (no redirects to lower directories, no metadata-only
// copies whose data stays below), for the ones the kernel knows: have
// reports whether the overlay module has a parameter of that name (an
// older kernel, without the feature, would refuse the option and with it
// the mount).
func SelfContainedOpts(have func(param string) bool) string {
	var opts []string
	for _, o := range []string{"redirect_dir", "metacopy"} {
		if have(o) {
			opts = append(opts, o+"=off")
		}
	}
	return strings.Join(opts, ",")
}
