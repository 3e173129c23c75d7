package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/boot"
	"github.com/overlayupd/overlayupd/internal/bootcfg"
	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/keeper"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/trampoline"
)

// env is what the commands take from the system they run on. main passes
// systemEnv(); tests pass their own, so they run in parallel without
// swapping package globals (gokrazy/tools' gok.Context does the same).
type env struct {
	args       []string                                // the command line, recorded in the store lock
	geteuid    func() int                              // root check
	booted     func(*trampoline.Store) (string, error) // the entry the running system booted
	executable func() (string, error)                  // this binary, copied by store init
	// trampolineDirs: where store init looks for init-overlay after the
	// directory of this binary (tests: nowhere, so they do not see the host's).
	trampolineDirs []string
	// machines: the ELF machines this system runs (hostMachines), what an
	// applied image's init is checked against.
	machines []uint16
	reboot   func() error                 // apply --reboot
	keeper   func() (int, *keeper.Config) // the running trial watchdog keeper (pid 0: none)
	// step, if set, runs before each rename of a store transition (see
	// trampoline.Store.Step): the crash tests' hook, in test builds only.
	step func(i int)
	// trustRoot is the running root, whose /etc/overlayupd/trusted.d says
	// which keys sign the next root: "/" (in store mode, the overlay over
	// the booted root).
	trustRoot string
	clock     func() time.Time // record times; time.Now if nil
	// progressEvery is how often --json prints a progress line; 1 s if 0.
	progressEvery time.Duration
	// bootDir is where install looks for the boot configuration without
	// --boot-dir (bootcfg.DefaultBootDir; tests: a directory of their own,
	// so that no test can reach this machine's /boot).
	bootDir string
	// kernelCheck, if set, checks store init's first root by a kernel
	// mount (checkByKernel); tests leave it out but for their own.
	kernelCheck func(img staged, name string, machines []uint16, warn io.Writer) error
	// kernelRoot is the root the kernel mounts at the next boot, where
	// init= names a file: this system's / or, booted from a store, the
	// store's top directory.
	kernelRoot func() string
	// copied, if set, runs after each step of an image copy with the bytes
	// copied so far: tests change the source there, mid-copy.
	copied func(n int64)
}

func (e *env) now() time.Time {
	if e.clock != nil {
		return e.clock()
	}
	return time.Now()
}

func systemEnv() *env {
	return &env{
		args:           os.Args,
		geteuid:        os.Geteuid,
		booted:         boot.Booted,
		executable:     os.Executable,
		trampolineDirs: trampolineDirs,
		machines:       hostMachines(),
		reboot:         rebootSystem,
		keeper:         keeper.Find,
		step:           crashPoint(),
		trustRoot:      "/",
		kernelRoot:     systemKernelRoot,
		bootDir:        bootcfg.DefaultBootDir,
		kernelCheck:    checkByKernel,
	}
}

// systemKernelRoot is env.kernelRoot on the running system: the store's top
// when it booted from one; under the classic overlay the real root
// (/overlay/robase), not / (a file only in the writable layer is not
// there for the kernel); else /.
func systemKernelRoot() string {
	if top, err := boot.DefaultStore(); err == nil {
		return top
	}
	if ms, err := mounts.Read(); err == nil {
		if _, ok := mounts.Find(ms, overlay.RobaseDir); ok {
			return overlay.RobaseDir
		}
	}
	return "/"
}

// needRoot refuses a command that changes the system when not run as root.
func (e *env) needRoot(cmd *cobra.Command, _ []string) error {
	if e.geteuid() != 0 {
		return errorf(cmd, "must be run as root: it changes the system (try: sudo %s)", cmd.CommandPath())
	}
	return nil
}

// rebootSystem syncs and reboots with the system's reboot command (so that
// services stop cleanly), or the reboot syscall when there is none.
func rebootSystem() error {
	unix.Sync()
	if path, err := exec.LookPath("reboot"); err == nil {
		if out, err := exec.Command(path).CombinedOutput(); err != nil {
			return fmt.Errorf("reboot: %w: %s", err, out)
		}
		return nil
	}
	return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
}
