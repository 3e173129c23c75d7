package keeper

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/remount"
)

// GoodCount is the boot count after a good mark: trampoline.BootCountName(0)
// (keeper does not link the protocol; boot's test checks they agree).
const GoodCount = "boots-0"

// markGoodLoop is the keeper of a committed boot under a boot budget: it
// marks the boot good once it has run for GoodAfter (counted from its own
// start, just before the real init: a container's or a test namespace's
// uptime is the host's), or earlier at an orderly shutdown (init sends every
// process SIGTERM then) once the boot has run for OrderlyFloor, and exits.
// A panic, a power cut, a reboot -f, or an orderly reboot within seconds
// leaves the count as the trampoline left it: the boot did not earn the
// mark. Neither does a boot whose PID 1 never became the real init (its
// exec failed: PID 1 is still this binary, in an emergency shell or its
// halt loop).
func (k *keeper) markGoodLoop() int {
	start := time.Now()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGTERM, unix.SIGINT)
	// A hangup is no shutdown (and its default action would end the keeper).
	signal.Ignore(unix.SIGHUP)
	why := "up for " + FormatDuration(k.cfg.GoodAfter)
	select {
	case <-time.After(k.cfg.GoodAfter):
	case s := <-sig:
		up, floor := time.Since(start), OrderlyFloor(k.cfg.GoodAfter)
		if up < floor {
			// Why exit rather than wait on: a shutdown waits for the
			// processes it signalled (systemd up to 90 s).
			k.log.warn("boot budget: %s after %s, before the %s an orderly shutdown needs to mark this boot good (a root that reboots within seconds did not boot well)",
				s, FormatDuration(up.Truncate(time.Second)), FormatDuration(floor))
			return 0
		}
		why = "an orderly shutdown (" + s.String() + ") after " + FormatDuration(up.Truncate(time.Second))
	}
	if same, err := sameExecutable("/proc/1/exe", "/proc/self/exe"); err == nil && same {
		k.log.warn("boot budget: this boot is not marked good: PID 1 is still the trampoline (the real init never ran)")
		return 1
	}
	if err := k.markGood(); err != nil {
		k.log.warn("boot budget: could not mark this boot good after %s: %v", why, err)
		return 1
	}
	k.log.info("boot budget: this boot is marked good (%s)", why)
	return 0
}

// sameExecutable reports whether two /proc/PID/exe links name one file.
func sameExecutable(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, err
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, err
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

// markGood renames the boot count to GoodCount, under the store lock (flock
// of the slot directory, as the commands take it), with the store's mount
// writable for the moment of the rename, then fsyncs the directory. A count
// already renamed (mark-good, a commit) is no error.
func (k *keeper) markGood() error { return markGoodIn(k.cfg.SlotFD, k.cfg.BootCount) }

func markGoodIn(fd int, count string) (err error) {
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return err
	}
	defer unix.Flock(fd, unix.LOCK_UN)
	dir, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return err
	}
	restore, err := remount.Writable(dir)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := restore(); rerr != nil && err == nil {
			err = fmt.Errorf("put the store back read-only: %w", rerr)
		}
	}()
	err = unix.Renameat2(fd, count, fd, GoodCount, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	// Why: the mark is a state change like any other; it must survive the
	// power cut that may follow.
	return unix.Fsync(fd)
}

// StartGoodMark starts the keeper of a committed boot under a boot budget:
// it marks the boot good (count, in the slot directory slotDir, renamed to
// GoodCount) after goodAfter or at an orderly shutdown. Like Arm, a fork
// and exec of this binary that the real init inherits and reaps; the slot
// directory is its descriptor 3.
//
// With goodAfter 0 there is no keeper: the boot is marked good here, at
// once (pid 0). Why not a keeper that marks at once: it would remount the
// store writable for a moment while the real init starts, racing whatever
// init reads of the mount table then.
func StartGoodMark(slotDir, count string, goodAfter time.Duration) (int, error) {
	slot, err := os.OpenFile(slotDir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer slot.Close()
	if goodAfter == 0 {
		return 0, markGoodIn(int(slot.Fd()), count)
	}
	cfg := Config{SlotFD: 3, BootCount: count, GoodAfter: goodAfter}
	return start(cfg, slot)
}
