package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/chroot"
	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/snapshot"
	"github.com/overlayupd/overlayupd/squash"
	"github.com/overlayupd/overlayupd/trampoline"
	"github.com/overlayupd/overlayupd/trust"
)

// UpdateEnv marks a command run by update; a nested update is refused.
const UpdateEnv = "OVERLAYUPD_UPDATE"

type updateCmd struct {
	store      storeFlag
	deadline   deadlineFlag
	tries      int
	reboot     bool
	keepFailed bool
	shell      bool
	force      bool
	bootWrites bool
	insecure   bool
}

func newUpdateCmd(e *env) *cobra.Command {
	c := &updateCmd{}
	cmd := &cobra.Command{
		Use:   "update [flags] -- CMD [ARGS...]",
		Short: "Run CMD in a snapshot of the running root; the next boot tries the result",
		Long: `Update the system in a new root, never in the running one (btrfs store only):

  1. snapshot the root this system booted into a writable subvolume;
  2. run CMD chrooted in it, in private mount and PID namespaces: /dev, /proc
     and /sys from the host, fresh tmpfs on /run, /tmp and /var/tmp with the
     host's resolv.conf, the apt cache bound from outside (downloads stay out
     of the root), and a policy-rc.d that keeps services from starting;
     CMD's output streams as it runs, and it sees OVERLAYUPD_UPDATE=1;
  3. when CMD ends, whatever it left running is killed, the snapshot is
     synced and made read-only, and staged: the next boot tries it (--tries
     times), 'overlayupd commit' keeps it, a reboot without commit goes back.

A CMD that fails (non-zero exit) stages nothing, and update exits with its
code; --keep-failed keeps the snapshot as root.failed to look at. Ctrl-C, a
crash or a full disk stage nothing either ('overlayupd gc' removes what a
crash left). With --shell, Ctrl-C is the shell's (it stops the job running
there): exit 0 stages, exit 1 does not. The store stays locked and writable
while CMD runs.

/boot and /boot/firmware, when they are filesystems of their own (a Pi's
kernel, DTBs and config.txt), belong to every root: CMD sees them read-only,
and a write there fails the update. --allow-boot-writes lets it through: such
a change is not transactional, it hits every root at once.

With a persistent writable layer, files in it shadow the root: update names
the files it changed that the layer hides, and refuses when that is dpkg's
database (/var/lib/dpkg) unless --force. 'overlayupd persist' first folds the
layer into the root.

The new root is signed with the store's device key (a record of its
subvolume, see the README's security model). When the system trusts keys,
the root it starts from must hold its own signed record (applied with a
valid signature, or made on this device and unchanged since), or update
refuses unless --insecure.`,
		Example: "  overlayupd update -- apt-get -y full-upgrade\n  overlayupd update --reboot -- sh -c 'apt-get update && apt-get -y install htop'\n  overlayupd update --shell",
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTries(cmd, c.tries); err != nil {
				return err
			}
			if os.Getenv(UpdateEnv) != "" {
				return errorf(cmd, "refusing a nested update: this already runs inside 'overlayupd update' (%s is set)", UpdateEnv)
			}
			if c.shell == (len(args) > 0) {
				return errorf(cmd, "give a command after --, or --shell (one of them)")
			}
			if len(args) > 0 && cmd.ArgsLenAtDash() != 0 {
				return errorf(cmd, "put the command after --, as in: overlayupd update -- apt-get -y full-upgrade")
			}
			return e.needRoot(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error { return c.run(cmd, e, args) },
	}
	c.store.register(cmd)
	cmd.Flags().IntVar(&c.tries, "tries", 1, fmt.Sprintf("boots allowed without a commit before going back (1 to %d)", trampoline.MaxTries))
	cmd.Flags().BoolVar(&c.reboot, "reboot", false, "reboot into the new root once it is staged")
	cmd.Flags().BoolVar(&c.keepFailed, "keep-failed", false, "when CMD fails, keep the snapshot as root.failed for inspection")
	cmd.Flags().BoolVar(&c.shell, "shell", false, "run an interactive shell (/bin/sh) in the snapshot instead of a command")
	cmd.Flags().BoolVar(&c.force, "force", false, "stage even when the persistent layer shadows dpkg's database")
	cmd.Flags().BoolVar(&c.bootWrites, "allow-boot-writes", false, "let CMD write /boot and /boot/firmware (not transactional)")
	cmd.Flags().BoolVar(&c.insecure, "insecure", false, "when keys are trusted, update a root whose signature record does not hold (recorded, shown by status)")
	c.deadline.register(cmd)
	return cmd
}

// ExitError is a command's own exit code, passed on by main.
type ExitError struct {
	Code int
	Err  error
}

func (x *ExitError) Error() string { return x.Err.Error() }
func (x *ExitError) Unwrap() error { return x.Err }

func (c *updateCmd) run(cmd *cobra.Command, e *env, argv []string) error {
	if c.shell {
		argv = []string{"/bin/sh"}
	}
	store, err := c.store.open()
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	if !isBtrfs(store) {
		return errorf(cmd, "update needs a btrfs store (this one holds %s images): build a new image and 'overlayupd apply' it", store.Format.Name())
	}
	var staged string
	var code int
	// Why catch signals for the whole command: Ctrl-C or a dropped ssh
	// session must not kill update between its steps, with the store left
	// writable or a snapshot half made; it is seen at the next step, and
	// nothing is staged.
	sig := make(chan os.Signal, 1)
	if c.shell {
		// In an interactive shell Ctrl-C (and Ctrl-\) is for the job that
		// runs there, not the end of the session: caught, so that update
		// lives on, but no reason to throw the session away; 'exit 1' is
		// how to leave without staging.
		shellKeys := make(chan os.Signal, 1)
		signal.Notify(shellKeys, os.Interrupt, unix.SIGQUIT)
		defer signal.Stop(shellKeys)
		signal.Notify(sig, unix.SIGTERM, unix.SIGHUP)
	} else {
		// SIGQUIT too (Ctrl-\): a Go program dies of it with a stack dump.
		signal.Notify(sig, os.Interrupt, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	}
	defer signal.Stop(sig)
	err = e.withStore(store, func(st *trampoline.Store) error {
		staged, code, err = c.update(cmd, e, st, argv, sig)
		return err
	})
	if err != nil {
		err = errorf(cmd, "%w", err)
		if code != 0 {
			return &ExitError{Code: code, Err: err}
		}
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "staged %s: the next boot tries it; after it boots, run 'overlayupd commit' to keep it, or reboot to go back\n", staged)
	if c.reboot {
		fmt.Fprintln(cmd.ErrOrStderr(), "rebooting into the new root")
		return e.reboot()
	}
	return nil
}

// update does the work under the store lock: it returns the staged entry,
// or CMD's exit code with an error.
func (c *updateCmd) update(cmd *cobra.Command, e *env, st *trampoline.Store, argv []string, sig <-chan os.Signal) (string, int, error) {
	src, err := e.updateSource(st)
	if err != nil {
		return "", 0, err
	}
	keys, err := e.trustedKeys()
	if err != nil {
		return "", 0, err
	}
	insecure, err := checkSource(st, src, keys, c.insecure)
	if err != nil {
		return "", 0, err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "snapshot of %s ...\n", filepath.Base(src))
	ws, err := snapshot.SnapshotWorkspace(st.SlotDir, src)
	if err != nil {
		return "", 0, err
	}
	ok := false
	defer func() {
		if !ok {
			if err := ws.Abort(); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "%v\n", err)
			}
		}
	}()
	restore, err := denyServices(ws.Path)
	if err != nil {
		return "", 0, err
	}
	code := 0
	got := caught(sig)
	if got != nil {
		// Interrupted during the snapshot: CMD never starts.
		code = 128 + int(got.(unix.Signal))
	} else {
		code, got, err = c.runIn(cmd, e, ws.Path, argv, sig)
	}
	if rerr := restore(); rerr != nil && err == nil {
		err = rerr
	}
	if got == nil {
		got = caught(sig)
	}
	if got != nil && code == 0 {
		code = 128 + int(got.(unix.Signal))
	}
	if err != nil {
		return "", 0, err
	}
	if code != 0 {
		why := fmt.Sprintf("%s exited with %d", strings.Join(argv, " "), code)
		if got != nil {
			why = fmt.Sprintf("%s interrupted (%s, exit code %d)", strings.Join(argv, " "), unix.SignalName(got.(unix.Signal)), code)
		}
		msg := why + "; nothing staged"
		if full(st.SlotDir) {
			msg += " (the store is full: 'overlayupd gc' frees space)"
		}
		if len(c.bootMounts()) > 0 && !c.bootWrites {
			msg += "\nif it failed writing /boot or /boot/firmware, which are read-only during an update: --allow-boot-writes (not transactional)"
		}
		if c.keepFailed {
			err := ws.Seal()
			if err == nil {
				_, err = st.Keep(ws.Path, "update: "+why)
			}
			if err == nil {
				ok = true
				msg += "; kept as " + trampoline.EntryName(trampoline.RoleFailed, 0, "")
			} else {
				msg += fmt.Sprintf("; the snapshot is not kept (--keep-failed): %v", err)
			}
		}
		return "", code, errors.New(msg)
	}
	if err := c.checkShadows(cmd, src, ws.Path); err != nil {
		return "", 1, err
	}
	staged, err := stageWorkspace(st, ws, trampoline.Trial{Tries: c.tries, Deadline: c.deadline.d}, "updated", e.machines, e.deviceRecord(st, "update", src, keys, insecure))
	if err != nil {
		return "", 1, err
	}
	ok = true
	e.markStagedFrom(cmd, st)
	return staged, 0, nil
}

// stageWorkspace stages a filled workspace as the trial: it checks that
// the root boots (what CMD or the merge left of /sbin/init: without it the
// trial would sit at a shell, or nothing, until someone pulls the plug),
// seals it, records it (record, after the seal: the record names the
// sealed subvolume's state) and stages it as trial (tries, deadline). It returns the
// staged name. machines is what its init must run on (squash.CheckRunnable).
func stageWorkspace(st *trampoline.Store, ws *snapshot.Workspace, trial trampoline.Trial, what string, machines []uint16, record func(path string, info squash.Info) error) (string, error) {
	info, err := squash.CheckRoot(ws.Path, machines)
	if err != nil {
		return "", fmt.Errorf("the %s root would not boot: %w; nothing staged", what, err)
	}
	if err := ws.Seal(); err != nil {
		return "", err
	}
	if err := record(ws.Path, info); err != nil {
		return "", fmt.Errorf("sign the %s root: %w; nothing staged", what, err)
	}
	if _, err := st.StageTrial(ws.Path, trial); err != nil {
		return "", fmt.Errorf("%w\n%s", err, stagedNow(st))
	}
	return trampoline.EntryName(trampoline.RoleStaged, trial.Tries, st.Format.Suffix()), nil
}

// deviceRecord signs the record of a root made on this device (update,
// persist) from src with the device key; made when keys are trusted, and
// whenever the store has a device key.
func (e *env) deviceRecord(st *trampoline.Store, made, src string, keys trust.Keys, insecure bool) func(string, squash.Info) error {
	return func(path string, info squash.Info) error {
		rec := trust.Record{Made: made, From: filepath.Base(src), Version: trust.ImageVersion(info.Meta.OSRelease, info.Meta.VersionFile)}
		if id, _, err := entryIdentity(st, src); err == nil {
			rec.From = filepath.Base(src) + " (" + id + ")"
		}
		rec.Insecure = insecure
		return e.recordRoot(st, path, rec, len(keys) > 0)
	}
}

// updateSource is the subvolume update snapshots: the entry this system
// booted, or, when it booted none of this store's (a store given with
// --store), the committed root.
func (e *env) updateSource(st *trampoline.Store) (string, error) {
	booted, err := e.booted(st)
	if err != nil {
		return "", err
	}
	if booted == "" {
		state, err := st.State()
		if err != nil {
			return "", err
		}
		r, ok := state.Find(trampoline.RoleCommitted)
		if !ok {
			return "", errors.New("no committed root to update")
		}
		booted = r.Name
	}
	return filepath.Join(st.SlotDir, booted), nil
}

// runIn runs argv in the chroot helper with stdio passed through, and
// returns its exit code, and the first signal of sig that came meanwhile.
// Ctrl-C reaches the command (same process group); update, which catches
// it, waits for it to end, then discards the snapshot. A second signal
// stops the command and all it started at once (the helper's end ends its
// namespaces): a command that ignores Ctrl-C must not make update
// unstoppable from the keyboard.
func (c *updateCmd) runIn(cmd *cobra.Command, e *env, root string, argv []string, sig <-chan os.Signal) (int, os.Signal, error) {
	self, err := e.executable()
	if err != nil {
		return 0, nil, err
	}
	spec := chroot.Spec{Root: root, Argv: argv, BootRW: c.bootWrites, BootMounts: c.bootMounts()}
	if fi, err := os.Stat("/var/cache/apt/archives"); err == nil && fi.IsDir() {
		spec.AptCache = "/var/cache/apt/archives"
	}
	h := chroot.Command(self, spec)
	h.Stdin, h.Stdout, h.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	h.Env = append(os.Environ(), UpdateEnv+"=1", "DEBIAN_FRONTEND=noninteractive")
	if err := h.Start(); err != nil {
		return 0, nil, fmt.Errorf("run the update: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Wait() }()
	var got os.Signal
	for {
		select {
		case err = <-done:
			var exit interface{ ExitCode() int }
			switch {
			case errors.As(err, &exit) && exit.ExitCode() > 0:
				return exit.ExitCode(), got, nil
			case err != nil && got != nil:
				return 128 + int(got.(unix.Signal)), got, nil // stopped by the second signal
			case err != nil:
				return 0, nil, fmt.Errorf("run the update: %w", err)
			}
			return 0, got, nil
		case s := <-sig:
			if got == nil {
				got = s
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: waiting for %s to end; nothing will be staged (%s again stops it at once)\n", cmd.CommandPath(), argv[0], unix.SignalName(s.(unix.Signal)))
				continue
			}
			_ = h.Process.Kill()
		}
	}
}

// bootMounts are the host's mount points of /boot and /boot/firmware.
func (c *updateCmd) bootMounts() []string {
	ms, err := mounts.Read()
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range []string{"/boot", "/boot/firmware"} {
		if _, ok := mounts.Find(ms, p); ok {
			out = append(out, p)
		}
	}
	return out
}

// policyRcD makes invoke-rc.d start no service in the snapshot.
const policyRcD = "#!/bin/sh\n# overlayupd update: no service starts in a snapshot\nexit 101\n"

// denyServices puts policy-rc.d into the snapshot for the update and
// returns what takes it out again (the snapshot's own, if it had one, comes
// back). Everything goes through os.Root: a policy-rc.d or usr/sbin that is
// an absolute link must not lead to the running system's files. A crash in
// between leaves it only in a snapshot that is discarded.
func denyServices(rootDir string) (func() error, error) {
	r, err := os.OpenRoot(rootDir)
	if err != nil {
		return nil, err
	}
	const p, aside = "usr/sbin/policy-rc.d", "usr/sbin/policy-rc.d.overlayupd-saved"
	_, lerr := r.Lstat(p)
	had := lerr == nil
	if had {
		if err := r.Rename(p, aside); err != nil {
			r.Close()
			return nil, err
		}
	}
	if err := r.MkdirAll("usr/sbin", 0o755); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.WriteFile(p, []byte(policyRcD), 0o755); err != nil {
		r.Close()
		return nil, err
	}
	return func() error {
		defer r.Close()
		if !isOurs(r, p) {
			// CMD removed or replaced it (a package's maintainer script,
			// a package that ships one): what CMD left stays, and the
			// one set aside is stale. Removing CMD's would lose a
			// package's file; failing would throw the update away.
			if had {
				if err := r.Remove(aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			return nil
		}
		if err := r.Remove(p); err != nil {
			return err
		}
		if had {
			return r.Rename(aside, p)
		}
		return nil
	}, nil
}

// isOurs reports whether p in r is still the policy-rc.d denyServices wrote.
func isOurs(r *os.Root, p string) bool {
	if fi, err := r.Lstat(p); err != nil || !fi.Mode().IsRegular() || fi.Size() != int64(len(policyRcD)) {
		return false
	}
	b, err := r.ReadFile(p)
	return err == nil && string(b) == policyRcD
}

// full reports whether the filesystem of dir has (almost) no space left.
func full(dir string) bool {
	var s unix.Statfs_t
	return unix.Statfs(dir, &s) == nil && s.Bavail*uint64(s.Bsize) < 1<<20
}

// checkShadows names the files the update changed that the persistent
// writable layer hides, and refuses dpkg's database among them unless
// --force: the booted system would run new programs against an old
// package database.
func (c *updateCmd) checkShadows(cmd *cobra.Command, oldRoot, newRoot string) error {
	st, err := overlay.CurrentStatus()
	if err != nil || st.RWLayer != string(overlay.Persistent) || st.RWLayerDir == "" {
		return nil
	}
	// Why the live upper and not st.RWLayerDir: that is the directory's path
	// on its own filesystem (the store's, in store mode), not where this
	// system sees it.
	return shadowCheck(cmd.ErrOrStderr(), filepath.Join(overlay.RwdataDir, "data"), st.RWLayerDir, oldRoot, newRoot, c.force)
}

// shadowCheck is checkShadows for the overlay's upper directory (named by
// label in the warning), the pure part that tests drive.
func shadowCheck(w io.Writer, upper, label, oldRoot, newRoot string, force bool) error {
	shadowed := shadowedChanges(upper, oldRoot, newRoot)
	if len(shadowed) == 0 {
		return nil
	}
	fmt.Fprintf(w, "warning: the persistent layer %s hides %d files this update changed; the new root boots with the layer's copies:\n", label, len(shadowed))
	dpkg := false
	for _, p := range shadowed {
		fmt.Fprintf(w, "  /%s\n", printable(p))
		dpkg = dpkg || strings.HasPrefix(p, "var/lib/dpkg/")
	}
	if dpkg && !force {
		return errors.New("the persistent layer hides dpkg's database (/var/lib/dpkg) that this update changed: run 'overlayupd persist' first, or update --force; nothing staged")
	}
	return nil
}

// shadowedChanges lists the files of the upper layer (paths relative to
// it) that differ between the old and the new root: by type, size or
// modification time.
func shadowedChanges(upper, oldRoot, newRoot string) []string {
	var out []string
	_ = filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(upper, p)
		a, aerr := os.Lstat(filepath.Join(oldRoot, rel))
		b, berr := os.Lstat(filepath.Join(newRoot, rel))
		switch {
		case aerr != nil && berr != nil:
		case aerr != nil || berr != nil, a.Mode() != b.Mode(), a.Size() != b.Size(), !a.ModTime().Equal(b.ModTime()):
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// caught returns a signal that arrived, or nil, without waiting.
func caught(sig <-chan os.Signal) os.Signal {
	select {
	case s := <-sig:
		return s
	default:
		return nil
	}
}
