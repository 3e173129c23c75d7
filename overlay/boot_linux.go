package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
	"github.com/overlayupd/overlayupd/internal/kcmdline"
	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/internal/remount"
)

// Paths the PID-1 path reads; tests point them elsewhere.
var (
	CmdlinePath = "/proc/cmdline"
	DisableFile = OverlayDir + "/disable"
	RealInit    = "/sbin/init"
	ShellPath   = "/bin/sh"
	KmsgPath    = "/dev/kmsg"
	// RebootDelay is how long PID 1 shows its last words before it reboots
	// when nothing at all can be run.
	RebootDelay = 30 * time.Second
)

// ErrDisabled is returned by Boot when the configuration turns the overlay off.
var ErrDisabled = errors.New("overlay disabled")

// Prepare is the first thing PID 1 does: mount /proc, /sys and /dev when
// they are absent, and start copying warnings to the kernel log.
func Prepare(log *Log) {
	if err := MountVirtual(); err != nil {
		log.Warnf("%v", err)
	}
	log.OpenKmsg(KmsgPath)
}

// Classic is the PID-1 path of classic mode, after Prepare: lay the overlay
// over the kernel's root, pivot into it and exec the real init. It never
// returns: when the overlay cannot be set up it logs one line and execs init
// on the plain root, then a shell.
func Classic(log *Log, argv, env []string) {
	if err := Boot(log, Layout{}); err != nil {
		if errors.Is(err, ErrDisabled) {
			log.Infof("%v; booting the plain root", err)
		} else {
			log.Warnf("%v; booting the plain root without overlay", err)
		}
	}
	ExecInit(log, argv, env)
}

// Boot reads the configuration and, unless it is disabled, lays the overlay
// and pivots into it. On error nothing is left changed that matters: the
// caller boots the plain root. layout.Lower and layout.Keep come from the
// caller (the store modes); the rest is filled in here. Call Prepare first.
// Errors match ErrLowerMount, ErrLayer or ErrUnion by the phase that failed.
func Boot(log *Log, layout Layout) error {
	cfg, err := LoadConfig(log)
	if err != nil {
		return err
	}
	return BootWith(log, cfg, layout)
}

// BootWith is Boot with the configuration already loaded (LoadConfig): the
// store modes read it once for every root they try, and decide the layers
// from it.
func BootWith(log *Log, cfg Config, layout Layout) error {
	if cfg.Disabled {
		if layout.Lower == nil {
			return fmt.Errorf("%w by %s", ErrDisabled, cfg.DisabledBy)
		}
		log.Infof("overlay disabled by %s; booting the root image read-only", cfg.DisabledBy)
		layout.ReadOnly = true
	}
	fs, err := ChooseFS(cfg.FS, haveFS, LoadModule)
	if err != nil {
		return err
	}
	layout.FS = fs
	if layout.Lower != nil {
		lower := WithVerity(*layout.Lower, cfg.Verity)
		layout.Lower = &lower
	}
	if layout.Shadow != nil {
		step := *layout.Shadow
		step.Prev = WithVerity(step.Prev, cfg.Verity)
		layout.Shadow = &step
	}
	if layout.Lower != nil && fs == "overlay" {
		// Store modes: persist folds the upper into a root, so it must be
		// self-contained whatever the kernel's defaults are. (Classic mode
		// keeps the original script's mount.)
		layout.UnionOpts = SelfContainedOpts(func(p string) bool {
			_, err := os.Stat(filepath.Join(OverlayParams, p))
			return err == nil
		})
	}
	if err := ensureDir(OverlayDir); err != nil {
		return err
	}
	ms, err := mounts.Read()
	if err != nil {
		return err
	}
	for _, m := range ms {
		layout.Mounts = append(layout.Mounts, m.MountPoint)
	}
	if !layout.ReadOnly {
		log.Infof("%s over the root, writable layer %s", fs, describeLayout(cfg, layout))
	}
	return Run(BuildPlan(cfg, layout), log.Warnf)
}

// BootLowerOnly is the store modes' last resort when no overlay can be laid
// (no union filesystem in the kernel): the root to boot, lower, becomes the
// root itself, read-only. It is mounted at OverlayDir (a directory every
// store has); the mounts that exist move into it where it has the directory;
// then it becomes the root and the old root is detached, so the store is not
// visible in the booted system.
func BootLowerOnly(log *Log, lower mounts.Spec) error {
	ms, err := mounts.Read()
	if err != nil {
		return err
	}
	// The configuration was read by Boot, which failed; only the verity
	// mode matters here, and it comes from the kernel command line.
	if cmdline, err := os.ReadFile(CmdlinePath); err == nil {
		mode, _ := VerityFromCmdline(string(cmdline))
		lower = WithVerity(lower, mode)
	}
	mount := []Op{{Kind: OpPrivate, Target: "/"}, MountOp(lower, OverlayDir, PhaseLower)}
	if err := Run(mount, log.Warnf); err != nil {
		return err
	}
	var points []string
	for _, m := range ms {
		points = append(points, m.MountPoint)
	}
	var rest []Op
	for _, m := range MountsToMove(points) {
		if isDir(OverlayDir + m) {
			rest = append(rest, Op{Kind: OpMove, Source: m, Target: OverlayDir + m})
		}
	}
	rest = append(rest, Op{Kind: OpPivot, Target: OverlayDir, Source: "."})
	if err := Run(rest, log.Warnf); err != nil {
		if uerr := unix.Unmount(OverlayDir, unix.MNT_DETACH); uerr != nil {
			log.Warnf("undo %s: %v", lower, uerr)
		}
		return err
	}
	return nil
}

func describeLayout(cfg Config, l Layout) string {
	if l.TrialLayer == "" || cfg.RWLayer == Tmpfs {
		return describeLayer(cfg)
	}
	s := "the trial's own " + l.TrialLayer
	if l.Middle != "" {
		s += ", over the committed root's persistent layer " + l.Middle + " read-only"
	}
	return s
}

// MoveLayerAside moves the persistent layer directory dir to dir-bak, as
// persistent-move does (an older backup goes only once the new one is in
// place).
func MoveLayerAside(dir string) error { return moveAside(dir, dir+"-bak") }

func describeLayer(cfg Config) string {
	if cfg.RWLayer == Tmpfs {
		return "tmpfs (size " + cfg.Size + ")"
	}
	return string(cfg.RWLayer) + " in " + cfg.RWLayerDir
}

// LoadConfig resolves the configuration: defaults, then the get-mode script
// (only run when it exists), then the kernel command line. The disable file
// and overlay=disable turn the overlay off. Warnings are logged.
func LoadConfig(log *Log) (Config, error) {
	cmdline, err := mounts.ReadProc(CmdlinePath)
	if err != nil {
		return Config{}, fmt.Errorf("read kernel command line: %w", err)
	}
	cmdVars, cmdDisable := CmdlineVars(string(cmdline))
	var gm map[string]string
	if _, err := os.Stat(GetModeScript); err == nil {
		gm, err = RunGetMode(ShellPath, GetModeScript)
		if err != nil {
			log.Warnf("%v; using the defaults", err)
		}
	}
	cfg, warnings := Resolve(gm, cmdVars, isDir)
	var vwarn string
	if cfg.Verity, vwarn = VerityFromCmdline(string(cmdline)); vwarn != "" {
		warnings = append(warnings, vwarn)
	}
	if cfg.Shadow, vwarn = ShadowFromCmdline(string(cmdline)); vwarn != "" {
		warnings = append(warnings, vwarn)
	}
	for _, w := range warnings {
		log.Warnf("%s", w)
	}
	if cfg.RWLayer != Tmpfs {
		if link := symlinkIn(cfg.RWLayerDir); link != "" {
			// A link could point the layer (and a clear or a move of it)
			// anywhere, the store's roots included.
			log.Warnf("%s=%q: %s is a symbolic link; booting with a tmpfs writable layer", VarRWDir, cfg.RWLayerDir, link)
			cfg.RWLayer, cfg.RWLayerDir = Tmpfs, DefaultRWLayerDir
		}
	}
	if _, err := os.Lstat(DisableFile); err == nil {
		cfg.Disabled, cfg.DisabledBy = true, DisableFile
	}
	if cmdDisable {
		cfg.Disabled, cfg.DisabledBy = true, "overlay=disable on the kernel command line"
	}
	return cfg, nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// MountVirtual mounts /proc, /sys and /dev when they are absent. They are
// moved into the new root later, so the real init finds them mounted.
func MountVirtual() error {
	for _, m := range []struct {
		probe, fstype, target string
		flags                 uintptr
	}{
		{"/proc/self", "proc", "/proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"/sys/kernel", "sysfs", "/sys", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"/dev/null", "devtmpfs", "/dev", unix.MS_NOSUID},
	} {
		if _, err := os.Stat(m.probe); err == nil {
			continue
		}
		if err := unix.Mount(m.fstype, m.target, m.fstype, m.flags, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

// haveFS reports whether the kernel offers filesystem name. For overlay, a
// stat of its module directory answers (a loaded or built-in overlay module
// is there, with its parameters), which costs a tenth of reading and
// parsing /proc/filesystems, at every boot; anything else is looked up there.
func haveFS(name string) bool {
	if name == "overlay" {
		if _, err := os.Stat(filepath.Dir(OverlayParams)); err == nil {
			return true
		}
	}
	fss, err := mounts.Filesystems()
	return err == nil && fss[name]
}

// OverlayParams is where the overlay module lists its parameters.
var OverlayParams = "/sys/module/overlay/parameters"

// ModulesDir is where LoadModule looks for modules to insmod.
var ModulesDir = "/lib/modules"

// modprobes are the modprobe programs LoadModule tries, the first that
// exists, and modprobeTimeout how long it waits for it; variables for tests.
var (
	modprobes       = []string{"/sbin/modprobe", "/usr/sbin/modprobe"}
	modprobeTimeout = 10 * time.Second
)

// LoadModule makes a filesystem available as the original did: modprobe
// first (it knows dependencies), then insmod of the module file from
// ModulesDir/$(uname -r)/{kernel/fs,extra}/NAME/NAME.ko.
func LoadModule(name string) error {
	var errs []error
	for _, mp := range modprobes {
		if _, err := os.Stat(mp); err != nil {
			continue
		}
		err := runChild(mp, []string{mp, "-q", name}, os.Environ(), modprobeTimeout, nil)
		if err == nil {
			return nil
		}
		if errors.Is(err, errTimedOut) {
			// Why no insmod after a modprobe that hung: the load it is
			// stuck in (a module's init that never returns, a read from a
			// hung device) is one that finit_module would wait for in PID
			// 1 itself, uninterruptibly. Without the module, the boot goes
			// on without the overlay.
			return fmt.Errorf("modprobe %s: %w after %s; not trying insmod, which would wait for the same load", name, err, modprobeTimeout)
		}
		errs = append(errs, fmt.Errorf("modprobe: %w", err))
		break
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return fmt.Errorf("uname: %w", err)
	}
	release := unix.ByteSliceToString(uts.Release[:])
	for _, sub := range []string{"kernel/fs", "extra"} {
		for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
			p := filepath.Join(ModulesDir, release, sub, name, name+ext)
			err := finitModule(p, ext != ".ko")
			if err == nil || errors.Is(err, unix.EEXIST) {
				return nil
			}
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("insmod %s: %w", p, err))
			}
		}
	}
	if len(errs) == 0 {
		return fmt.Errorf("no module %s in %s/%s", name, ModulesDir, release)
	}
	return errors.Join(errs...)
}

func finitModule(path string, compressed bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if compressed {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	return unix.FinitModule(int(f.Fd()), "", flags)
}

// ensureDir creates dir on the root when it is missing, remounting the root
// read-write for the moment it takes, as overlayctl does.
func ensureDir(dir string) error {
	if isDir(dir) {
		return nil
	}
	err := remount.With(filepath.Dir(dir), func() error {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		return atomicfile.SyncDir(filepath.Dir(dir))
	})
	if err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}

// ExecInit replaces this process with the real init, passing on the
// arguments and environment the kernel gave us. It never returns: if init
// cannot be run it tries an emergency shell, and then waits forever.
func ExecInit(log *Log, argv, env []string) { execInit(log, argv, env, "") }

// ExecTrialInit is ExecInit for a trial boot: when nothing can be run, the
// next boot is another root (the trial's try is used up), so it reboots.
func ExecTrialInit(log *Log, argv, env []string) {
	execInit(log, argv, env, "the trial's try is used up: the next boot runs the committed root")
}

// ExecInitOrReboot is ExecInit that, when nothing can be run and next says
// why a later boot runs something else, reboots (after RebootDelay) instead
// of halting; with next "" it is ExecInit.
func ExecInitOrReboot(log *Log, argv, env []string, next string) { execInit(log, argv, env, next) }

func execInit(log *Log, argv, env []string, next string) {
	args := []string{RealInit}
	if len(argv) > 1 {
		args = append(args, argv[1:]...)
	}
	err := unix.Exec(RealInit, args, env)
	log.Warnf("exec %s: %v; starting an emergency shell %s", RealInit, err, ShellPath)
	shells := []string{ShellPath}
	if Rescue(readCmdline()) {
		shells = append(shells, RescueShells...)
	}
	for _, sh := range shells {
		err = unix.Exec(sh, []string{sh}, env)
		log.Warnf("exec %s: %v", sh, err)
	}
	if next != "" {
		// The next boot runs another root: a reboot makes progress, where
		// a halt would wait for a hand on the power switch.
		log.Warnf("nothing left to run; rebooting in %s: %s", RebootDelay, next)
		time.Sleep(RebootDelay)
		reboot(log)
	}
	Halt(log, fmt.Sprintf("%s and %s cannot be run (%v)", RealInit, ShellPath, err))
}

// RescueShells are the shells overlayupd.rescue=1 adds after ShellPath when
// nothing boots: the store's own (a busybox put there for the purpose), and
// the lower layer's, where a root mounted but its init does not run.
var RescueShells = []string{StoreMount + "/bin/sh", RobaseDir + "/bin/sh", PivotDir + "/bin/sh"}

// StoreMount is where the store stays reachable after the pivot (the same
// path as trampoline.StoreMount; overlay does not import trampoline).
const StoreMount = "/overlay/store"

// Rescue reports whether the kernel command line asks for the rescue shells
// (overlayupd.rescue=1) when nothing boots.
func Rescue(cmdline string) bool {
	v, _ := kcmdline.Lookup(kcmdline.Kernel(cmdline), "overlayupd.rescue")
	return v == "1" || v == "yes" || v == "true"
}

func readCmdline() string {
	b, _ := mounts.ReadProc(CmdlinePath)
	return string(b)
}

// HaltEvery is how often Halt says it again.
var HaltEvery = 10 * time.Second

// Halt is PID 1's end when nothing at all can boot: it says so on the
// console every HaltEvery, and never returns. Why not reboot: the boot path
// has tried every root already, so the next boot would end here again, and
// a reboot loop hides the one message that says what is wrong. (A trial
// reboots instead: ExecTrialInit.)
func Halt(log *Log, why string) {
	msg := fmt.Sprintf("nothing can boot: %s. See the lines above; boot with overlayupd.rescue=1 for a shell, or put a good root in the store (overlayupd store init / apply from another machine). This message repeats every %s.", why, HaltEvery)
	log.Warnf("%s", msg)
	for {
		time.Sleep(HaltEvery)
		log.Infof("%s", msg)
	}
}

func reboot(log *Log) {
	unix.Sync()
	for {
		if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
			log.Warnf("reboot: %v", err)
		}
		time.Sleep(time.Minute)
	}
}

// symlinkIn returns the first component of the absolute path dir that is a
// symbolic link, or "".
func symlinkIn(dir string) string {
	p := "/"
	for _, c := range strings.Split(strings.Trim(dir, "/"), "/") {
		p = filepath.Join(p, c)
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return p
		}
	}
	return ""
}
