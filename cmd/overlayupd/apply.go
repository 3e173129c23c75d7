package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/snapshot"
	"github.com/overlayupd/overlayupd/squash"
	"github.com/overlayupd/overlayupd/trampoline"
	"github.com/overlayupd/overlayupd/trust"
)

type applyCmd struct {
	store          storeFlag
	deadline       deadlineFlag
	tries          int
	reboot         bool
	json           bool
	sig            string
	insecure       bool
	allowDowngrade bool
	arch           string
}

// applyResult is what apply --json prints.
type applyResult struct {
	Entry    string              `json:"entry"`
	SHA256   string              `json:"sha256"`
	Size     int64               `json:"size"`
	Tries    int                 `json:"tries"`
	NextBoot trampoline.NextBoot `json:"next_boot"`
	Version  string              `json:"version,omitempty"`
	// SignedBy is the key ID whose signature was verified; Insecure says
	// that keys are trusted and --insecure skipped the check.
	SignedBy string `json:"signed_by,omitempty"`
	Insecure bool   `json:"insecure,omitempty"`
	checked  string
}

func newApplyCmd(e *env) *cobra.Command {
	c := &applyCmd{}
	cmd := &cobra.Command{
		Use:   "apply IMAGE",
		Short: "Stage a new root image: the next boot tries it",
		Long: `Stage a squashfs root image (a file, or - for stdin) in the store: the next
boot tries it, at most --tries times without a commit, and after that boots
the committed root again. Run 'overlayupd commit' in the new system to keep it.

The file, its squashfs superblock and the room in the store are checked
before a byte is copied. The copy is made with its sha256 and dm-verity hash
tree computed on the way and fsynced; then the copy itself, which is what
boots, is validated whole (every directory and inode readable, an
executable /sbin/init built for this system's architecture, with its #!
interpreter or dynamic loader inside the image; a pipe that ended early is
caught there), and only then renamed into the try slot. On a btrfs store the
file is validated before it is unpacked. Any refusal leaves the store as it
was.

Signatures: once the running system trusts a key (a minisign public key in
/etc/overlayupd/trusted.d/*.pub), the image must carry a valid minisign
signature by one of them: IMAGE.minisig beside it, or --sig FILE (required
for stdin). It is checked against the bytes as they are copied into the
store, never a second read of the source. Sign with 'minisign -S -s KEY.key
-m IMAGE'. --insecure stages an image without the check; the store records
it and 'overlayupd status' shows it. With no trusted key nothing is checked.

Versions: an image older than the committed root (VERSION_ID and
IMAGE_VERSION of its /etc/os-release, or /etc/overlayupd/version) is refused
unless --allow-downgrade. 'overlayupd rollback' is not a downgrade.

Output: a progress bar with speed and time left on a terminal; with --json
the result on stdout and progress as JSON lines on stderr
({"progress":{"bytes":N,"total":N,"bytes_per_second":N,"eta_seconds":N}}).

In the trial boot a watchdog (where the board has one) resets the board if
the trial hangs, or if it does not commit within --deadline of its boot.`,
		Example: "  overlayupd apply root-2.4.sqsh                 # root-2.4.sqsh.minisig beside it\n  curl -fsSO https://example.com/root.sqsh.minisig\n  curl -fsS https://example.com/root.sqsh | overlayupd apply --sig root.sqsh.minisig - --reboot\n  overlayupd apply --tries 3 --json root.sqsh\n  overlayupd apply --deadline 5m root.sqsh",
		Args:    cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTries(cmd, c.tries); err != nil {
				return err
			}
			return e.needRoot(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error { return c.run(cmd, e, args) },
	}
	c.store.register(cmd)
	cmd.Flags().IntVar(&c.tries, "tries", 1, fmt.Sprintf("boots allowed without a commit before going back (1 to %d)", trampoline.MaxTries))
	cmd.Flags().BoolVar(&c.reboot, "reboot", false, "reboot into the new image once it is staged")
	cmd.Flags().BoolVar(&c.json, "json", false, "print the result as JSON (and progress as JSON lines on stderr)")
	cmd.Flags().StringVar(&c.sig, "sig", "", "the image's minisign signature (default: IMAGE.minisig; required for stdin when keys are trusted)")
	cmd.Flags().BoolVar(&c.insecure, "insecure", false, "stage the image without checking its signature (recorded in the store, shown by status)")
	cmd.Flags().BoolVar(&c.allowDowngrade, "allow-downgrade", false, "stage an image older than the committed root")
	c.deadline.register(cmd)
	cmd.Flags().StringVar(&c.arch, "arch", "", "the architecture the image must run on (amd64, arm64, armhf, ...; default: this system's, from the running kernel)")
	return cmd
}

func (c *applyCmd) run(cmd *cobra.Command, e *env, args []string) error {
	store, err := c.store.open()
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	machines, err := e.targetMachines(c.arch)
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	keys, err := e.trustedKeys()
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	// A squashfs store validates the copy it stages, whole; a btrfs store
	// unpacks a file from where it is, so the source is validated first.
	src, size, srcInfo, err := openImage(args[0], cmd.InOrStdin(), machines, isBtrfs(store))
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	defer src.Close()
	check, err := planSigCheck(keys, args[0], c.sig, c.insecure)
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	if len(keys) == 0 && c.sig != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: this system trusts no key (/%s is empty): %s is not checked\n", trust.TrustedDir, c.sig)
	}
	var res applyResult
	err = e.withStore(store, func(st *trampoline.Store) (err error) {
		progress, done := e.progress(cmd, imageTotal(src, size), c.json)
		defer done()
		var img staged
		var ws *snapshot.Workspace
		if isBtrfs(st) {
			img, ws, err = unpackImage(cmd, st, args[0], src, size, srcInfo, check, machines, progress)
		} else {
			img, err = stageImage(cmd.Context(), src, size, st.SlotDir, machines, progress, check)
		}
		if err != nil {
			return err
		}
		entry := img.tmp
		if ws != nil {
			entry = ws.Path
			defer func() {
				if err != nil {
					err = errors.Join(err, ws.Abort())
				}
			}()
		}
		if res, err = c.admit(e, st, entry, img, check); err != nil {
			if ws == nil {
				discard(img.tmp)
			}
			return err
		}
		if _, err = st.StageTrial(entry, trampoline.Trial{Tries: c.tries, Deadline: c.deadline.d}); err != nil {
			if ws == nil {
				discard(img.tmp)
			}
			return fmt.Errorf("%w\n%s", err, stagedNow(st))
		}
		e.markStagedFrom(cmd, st)
		status, err := st.Status("")
		if err != nil {
			return err
		}
		res.NextBoot = status.NextBoot
		if e, ok := findRole(status, trampoline.RoleStaged); ok {
			res.Entry = e.Name
		}
		return nil
	})
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	if err := c.print(cmd, res); err != nil {
		return err
	}
	if c.reboot {
		fmt.Fprintln(cmd.ErrOrStderr(), "rebooting into the new image")
		return e.reboot()
	}
	return nil
}

// admit is the last word on a copied image before it is staged: no
// downgrade, and its record (signature checked or --insecure) signed and
// saved on the store. entry is the .stage-* entry holding it.
func (c *applyCmd) admit(e *env, st *trampoline.Store, entry string, img staged, check *sigCheck) (applyResult, error) {
	version := trust.ImageVersion(img.info.Meta.OSRelease, img.info.Meta.VersionFile)
	if !c.allowDowngrade {
		committedV, committed, err := committedVersion(st)
		if err != nil {
			return applyResult{}, fmt.Errorf("%w: cannot tell whether the image is older than the committed root; --allow-downgrade stages it without this check; nothing was changed", err)
		}
		if err := checkDowngrade(version, committedV, committed, false); err != nil {
			return applyResult{}, err
		}
	}
	rec := trust.Record{Made: "apply", SHA256: img.sha256(), Version: version}
	check.record(&rec)
	if err := e.recordRoot(st, entry, rec, len(check.keys) > 0); err != nil {
		return applyResult{}, fmt.Errorf("record the new root: %w; nothing was changed", err)
	}
	return applyResult{SHA256: img.sha256(), Size: img.size, Tries: c.tries, Version: version,
		SignedBy: rec.SignedBy, Insecure: rec.Insecure, checked: check.describe()}, nil
}

func (c *applyCmd) print(cmd *cobra.Command, res applyResult) error {
	if c.json {
		return writeJSON(cmd.OutOrStdout(), res)
	}
	times, back := "once", "reboot"
	if res.Tries > 1 {
		times, back = fmt.Sprintf("up to %d times", res.Tries), fmt.Sprintf("reboot %d times, or run 'overlayupd rollback',", res.Tries)
	}
	version := ""
	if res.Version != "" {
		version = ", version " + res.Version
	}
	fmt.Fprintf(cmd.OutOrStdout(), "staged %s (sha256 %s, %s%s; %s): the next boot tries it %s; after it boots, run 'overlayupd commit' to keep it, or %s to go back to %s\n",
		res.Entry, res.SHA256, overlay.HumanBytes(uint64(res.Size)), version, res.checked, times, back, orUnknown(res.NextBoot.Fallback))
	return nil
}

// openImage opens the image argument: "-" is stdin (size unknown, -1);
// a file is checked with checkImage first, and its Info returned.
func openImage(arg string, stdin io.Reader, machines []uint16, full bool) (rc io.ReadCloser, size int64, info squash.Info, err error) {
	if arg == "-" {
		// Why peek: a stream that is not squashfs (/dev/zero, an HTML error
		// page) is refused at its first bytes, not after it filled the store.
		br := bufio.NewReaderSize(stdin, squash.SuperblockSize)
		head, err := br.Peek(squash.SuperblockSize)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, info, fmt.Errorf("read the image from stdin: %w", err)
		}
		if _, err := squash.ParseSuperblock(head); err != nil {
			return nil, 0, info, imageError(fmt.Errorf("stdin: %w", err))
		}
		return io.NopCloser(br), -1, info, nil
	}
	if full {
		info, err = checkImage(arg, machines)
	} else {
		err = quickCheckImage(arg)
	}
	if err != nil {
		return nil, 0, info, err
	}
	f, err := os.Open(arg)
	if err != nil {
		return nil, 0, info, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, info, err
	}
	return f, fi.Size(), info, nil
}

func findRole(st trampoline.Status, r trampoline.Role) (trampoline.EntryStatus, bool) {
	for _, e := range st.Entries {
		if e.Role == r {
			return e, true
		}
	}
	return trampoline.EntryStatus{}, false
}

func orUnknown(s string) string {
	if s == "" {
		return "the committed root"
	}
	return s
}

// stagedNow says what a failed stage left: replacing a staged image takes
// more than one rename, so the new image may be staged already.
func stagedNow(st *trampoline.Store) string {
	state, err := st.State()
	if err != nil {
		return "run 'overlayupd status' to see what is staged"
	}
	if e, ok := state.Find(trampoline.RoleStaged); ok {
		return fmt.Sprintf("%s is staged now (%d tries); run 'overlayupd status' to check it", e.Name, e.Tries)
	}
	return "nothing was staged"
}

// unpackImage makes the btrfs store's new root from a squashfs image: a
// sealed workspace holding the image's tree. A file is unpacked straight
// from where it is (validated before, and the unpacked root checked after:
// one write of the data, as unsquashfs does); stdin, or any image whose
// signature is checked, is first copied into the store (hashed and
// validated on the way, as a squashfs store stages it), unpacked from that
// copy, and the copy removed before the caller stages: what is unpacked is
// then the very bytes whose signature was checked.
func unpackImage(cmd *cobra.Command, st *trampoline.Store, arg string, src io.Reader, size int64, info squash.Info, check *sigCheck, machines []uint16, progress func(int64)) (staged, *snapshot.Workspace, error) {
	if arg == "-" || check.checks() {
		img, err := stageImage(cmd.Context(), src, size, st.SlotDir, machines, progress, check)
		if err != nil {
			return staged{}, nil, err
		}
		ws, err := makeSubvolRoot(cmd, st, rootSource{image: img.tmp, machines: machines})
		discard(img.tmp)
		return img, ws, err
	}
	// The loop device opens the image without following links: resolve
	// the user's path first.
	path, err := filepath.EvalSymlinks(arg)
	if err != nil {
		return staged{}, nil, err
	}
	// The image's sha256 (for the report) is computed on another core
	// while the unpack runs: both read the same pages.
	type result struct {
		sum  [32]byte
		size int64
		err  error
	}
	hashed := make(chan result, 1)
	go func() {
		// The image's: a store's entry given as the input is hashed
		// without its tree, as a squashfs store stages it.
		n, err := squash.ImageSize(path)
		if err != nil {
			hashed <- result{err: err}
			return
		}
		sum, err := squash.ImageSum(path)
		hashed <- result{sum, n, err}
	}()
	ws, err := makeSubvolRoot(cmd, st, rootSource{image: path, machines: machines})
	h := <-hashed
	if err != nil {
		return staged{}, nil, err
	}
	if h.err != nil {
		return staged{}, nil, errors.Join(h.err, ws.Abort())
	}
	return staged{sum: h.sum, size: h.size, info: info}, ws, nil
}
