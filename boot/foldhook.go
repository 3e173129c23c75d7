//go:build overlayupd_crashhook

package boot

import (
	"strconv"
	"strings"
	"time"

	"github.com/overlayupd/overlayupd/internal/kcmdline"
	"github.com/overlayupd/overlayupd/overlay"
)

// FoldPauseKey names the fold's test hook: overlayupd.test_fold_pause=N
// stops the boot's fold before its move number N+1, with N entries moved,
// and waits there. It is how the VM test cuts the power at a named point in
// the middle of a fold: a fold of 4,000 files takes well under the
// journal's commit interval, so a cut timed from the outside lands before
// it or after it, almost never inside. Only init-overlay built with the
// overlayupd_crashhook tag (make build-test) has it: a release PID 1 must
// never stop its boot because of a word on the kernel command line.
const FoldPauseKey = "overlayupd.test_fold_pause"

// foldHook is the fold's step hook for cmdline, or nil.
func foldHook(log *overlay.Log, cmdline string) func(string) error {
	v, ok := kcmdline.Lookup(kcmdline.Kernel(cmdline), FoldPauseKey)
	if !ok {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		log.Warnf("store: %s=%q: not a count, ignored", FoldPauseKey, v)
		return nil
	}
	moves := 0
	return func(what string) error {
		if !strings.HasPrefix(what, "move ") {
			return nil
		}
		if moves == n {
			log.Warnf("store: %s=%d: the fold waits here, %d entries moved, for the test to cut the power", FoldPauseKey, n, n)
			// The test cuts the power within seconds; if it never does,
			// the fold goes on rather than hold the boot forever.
			time.Sleep(10 * time.Minute)
		}
		moves++
		return nil
	}
}
