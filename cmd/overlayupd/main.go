// Command overlayupd is the transactional root updater. One static binary
// plays every part, chosen by the name it is called by:
//
//	init-overlay          the PID-1 path (also: overlayupd init, or any name as PID 1)
//	overlayctl            the original overlayctl commands
//	overlayupd            the full command line interface
//
// The runtime's container-aware GOMAXPROCS is off, and so are its periodic
// re-reads of the cgroup limits: this binary is PID 1 of a device, and a
// short-lived command, never a long-running container workload.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/boot"
	"github.com/overlayupd/overlayupd/internal/chroot"
)

var version = "dev"

func main() {
	name := filepath.Base(os.Args[0])
	// Why before the command tree: this is every boot's path, and building
	// the tree costs time a PID 1 should not spend.
	if name == "init-overlay" {
		boot.Main(os.Args, os.Environ()) // never returns
	}
	if len(os.Args) > 1 && os.Args[1] == chroot.HelperArg {
		os.Exit(chroot.Main(os.Args[2:])) // update's helper, PID 1 of its namespaces
	}
	root := newRootCmd(name, systemEnv())
	if os.Getpid() == 1 && !isSubcommand(root, os.Args[1:]) {
		boot.Main(os.Args, os.Environ()) // never returns
	}
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		var exit *ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.Code) // update passes on its command's exit code
		}
		os.Exit(1)
	}
}

// isSubcommand reports whether args start with one of root's commands, so
// that PID 1 called under another name (init=/usr/sbin/overlayupd) still
// boots, while "overlayupd status" as a container's PID 1 still works.
func isSubcommand(root *cobra.Command, args []string) bool {
	if len(args) == 0 {
		return false
	}
	c, _, err := root.Find(args)
	return err == nil && c != root
}
