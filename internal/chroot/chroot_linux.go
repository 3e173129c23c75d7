// Package chroot owns running a command inside a root tree that is not the
// running system's (update's writable snapshot): in its own mount and PID
// namespaces, with /dev, /proc and /sys bound from the host, fresh tmpfs on
// /run, /tmp and /var/tmp, DNS configuration copied in, the apt cache bound
// from outside, and /boot shared read-only unless asked.
//
// Why a helper process: the namespaces must be new for the command and
// everything it starts, and must end with it. The command's parent re-runs
// this binary (Command) with CLONE_NEWNS|CLONE_NEWPID; that helper (Main) is
// PID 1 of the new PID namespace, makes the mounts, runs the command
// chrooted and waits for it. When the helper exits, the kernel kills every
// process left in the namespace (a daemon a package's postinst started) and
// the mount namespace goes with its last process: no mount outlives the
// update on any path, Ctrl-C and crashes included.
package chroot

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// HelperArg is the first argument that makes this binary the helper.
const HelperArg = "__overlayupd-chroot"

// Spec is what the helper sets up.
type Spec struct {
	Root       string   // the tree to run in (absolute)
	Argv       []string // the command, looked up in the tree's PATH
	AptCache   string   // host directory bound at /var/cache/apt/archives ("" for none)
	BootRW     bool     // bind /boot and /boot/firmware writable (default read-only)
	BootMounts []string // host mount points under /boot to share ("/boot", "/boot/firmware")
}

// args encodes a spec for the helper's command line.
func (s Spec) args() []string {
	a := []string{HelperArg, "--root", s.Root, "--apt-cache", s.AptCache}
	if s.BootRW {
		a = append(a, "--boot-rw")
	}
	for _, b := range s.BootMounts {
		a = append(a, "--boot", b)
	}
	return append(append(a, "--"), s.Argv...)
}

// parseArgs decodes the helper's command line (after HelperArg).
func parseArgs(a []string) (Spec, error) {
	var s Spec
	for len(a) > 0 {
		switch a[0] {
		case "--":
			s.Argv = a[1:]
			if s.Root == "" || len(s.Argv) == 0 {
				return s, errors.New("chroot helper: no root or no command")
			}
			return s, nil
		case "--boot-rw":
			s.BootRW = true
			a = a[1:]
			continue
		}
		if len(a) < 2 {
			return s, fmt.Errorf("chroot helper: %s needs a value", a[0])
		}
		switch a[0] {
		case "--root":
			s.Root = a[1]
		case "--apt-cache":
			s.AptCache = a[1]
		case "--boot":
			s.BootMounts = append(s.BootMounts, a[1])
		default:
			return s, fmt.Errorf("chroot helper: unknown argument %s", a[0])
		}
		a = a[2:]
	}
	return s, errors.New("chroot helper: no command")
}

// Command is the helper process for spec: self (this binary) in new mount
// and PID namespaces. The caller sets its stdio and environment and runs it;
// its exit code is the command's.
func Command(self string, spec Spec) *exec.Cmd {
	cmd := exec.Command(self, spec.args()...)
	cmd.SysProcAttr = &unix.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID,
		// If the updating command dies, the helper (and so the whole
		// namespace) dies with it.
		Pdeathsig: unix.SIGKILL,
	}
	return cmd
}

// Main is the helper: it runs only as PID 1 of the namespaces Command made.
// It returns the exit code for os.Exit.
func Main(args []string) int {
	spec, err := parseArgs(args)
	if err == nil && os.Getpid() != 1 {
		err = errors.New("chroot helper: not PID 1 of its own PID namespace (run by 'overlayupd update' only)")
	}
	if err == nil {
		err = setup(spec)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "overlayupd update: %v\n", err)
		return 125
	}
	// Why catch the terminal's signals: Ctrl-C (and Ctrl-\) go to the
	// whole foreground process group, this helper included, and a Go
	// program dies of them by default; as PID 1 of the namespace its death
	// SIGKILLs the command and all it started mid-way, and its status (2)
	// would be taken for the command's. The command gets the signal
	// itself and handles it its own way; the helper waits for it. (Caught,
	// not ignored: an ignored signal would stay ignored in the command.)
	signal.Notify(make(chan os.Signal, 1), unix.SIGINT, unix.SIGQUIT)
	// Not exec.Command: it would look the command up on the host.
	cmd := &exec.Cmd{
		Path: lookPathIn(spec.Root, spec.Argv[0], ""),
		Args: spec.Argv,
		Dir:  "/",
		// The root's own PATH, not the host's.
		Env:    append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		// The chroot happens in the child between fork and exec.
		SysProcAttr: &unix.SysProcAttr{Chroot: spec.Root},
	}
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		if st, ok := exit.Sys().(unix.WaitStatus); ok && st.Signaled() {
			return 128 + int(st.Signal())
		}
		return exit.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "overlayupd update: run %s in the snapshot: %v\n", spec.Argv[0], err)
	return 127
}

// lookPathIn finds name in the tree's PATH, as the shell inside would; the
// path returned is the one inside the tree (exec happens after chroot).
func lookPathIn(root, name, path string) string {
	if strings.Contains(name, "/") {
		return name
	}
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(filepath.Join(root, p)); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}

// mount is one step of the helper's setup: data, so the order can be read.
type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
	optional               bool // skip when the source is missing
}

// plan lists the helper's mounts for spec, targets inside the root.
func plan(spec Spec) []mount {
	in := func(p string) string { return filepath.Join(spec.Root, p) }
	m := []mount{
		// Why the host's /proc and not a fresh one: chroot detection
		// (ischroot, systemd) compares /proc/1/root with /, and Debian's
		// hooks behave as in a chroot only when they can see it is one.
		{source: "/dev", target: in("/dev"), flags: unix.MS_BIND | unix.MS_REC},
		{source: "/proc", target: in("/proc"), flags: unix.MS_BIND | unix.MS_REC},
		{source: "/sys", target: in("/sys"), flags: unix.MS_BIND | unix.MS_REC},
		{source: "update-run", target: in("/run"), fstype: "tmpfs", flags: unix.MS_NOSUID | unix.MS_NODEV, data: "mode=0755"},
		{source: "update-tmp", target: in("/tmp"), fstype: "tmpfs", flags: unix.MS_NOSUID | unix.MS_NODEV, data: "mode=1777"},
		{source: "update-vartmp", target: in("/var/tmp"), fstype: "tmpfs", flags: unix.MS_NOSUID | unix.MS_NODEV, data: "mode=1777"},
	}
	if spec.AptCache != "" {
		m = append(m, mount{source: spec.AptCache, target: in("/var/cache/apt/archives"), flags: unix.MS_BIND, optional: true})
	}
	for _, b := range spec.BootMounts {
		m = append(m, mount{source: b, target: in(b), flags: unix.MS_BIND | unix.MS_REC, optional: true})
	}
	return m
}

func setup(spec Spec) error {
	// Nothing mounted here may reach the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	for _, m := range plan(spec) {
		if _, err := os.Stat(m.source); m.optional && m.fstype == "" && err != nil {
			continue
		}
		// Why Lstat: a mount point inside the tree that is a link (an
		// absolute one leads to the running system) is never followed,
		// neither to make it nor to mount on it: that mount is left out.
		if fi, err := os.Lstat(m.target); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			continue
		}
		if err := mkdirIn(spec.Root, m.target); err != nil {
			return fmt.Errorf("mount point %s: %w", m.target, err)
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.source, m.target, err)
		}
	}
	if !spec.BootRW {
		for _, b := range spec.BootMounts {
			t := filepath.Join(spec.Root, b)
			if err := unix.Mount("", t, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("make %s read-only: %w", b, err)
			}
		}
	}
	return copyResolvConf(spec.Root)
}

// copyResolvConf gives the tree the host's DNS configuration for the
// update: into the fresh /run when the tree's resolv.conf is a link there
// (systemd-resolved, resolvconf), else bound over the tree's own file, so
// the snapshot keeps its own either way.
func copyResolvConf(root string) error {
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil // no DNS on the host: nothing to give
	}
	p := filepath.Join(root, "etc/resolv.conf")
	if target, err := os.Readlink(p); err == nil {
		if !filepath.IsAbs(target) {
			target = filepath.Join("/etc", target)
		}
		if strings.HasPrefix(filepath.Clean(target), "/run/") {
			t := filepath.Join(root, filepath.Clean(target))
			if err := os.MkdirAll(filepath.Dir(t), 0o755); err != nil {
				return err
			}
			return os.WriteFile(t, data, 0o644)
		}
		return nil
	}
	if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
		return nil // bind only over a regular file: a mount follows links
	}
	tmp := filepath.Join(root, "run/overlayupd-resolv.conf")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return unix.Mount(tmp, p, "", unix.MS_BIND, "")
}

// mkdirIn makes the directory target (a path inside root) and its parents,
// through os.Root: nothing is created outside the tree, whatever links it
// holds.
func mkdirIn(root, target string) error {
	rel, err := filepath.Rel(root, target)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("%s is not inside %s", target, root)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.MkdirAll(rel, 0o755)
}
