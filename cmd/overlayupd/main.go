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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/boot"
	"github.com/overlayupd/overlayupd/internal/chroot"
	"github.com/overlayupd/overlayupd/keeper"
)

var version = "dev"

func main() {
	name := filepath.Base(os.Args[0])
	if name == keeper.ProcName {
		os.Exit(keeper.Main(os.Args)) // the trial watchdog's keeper, started by PID 1
	}
	pid := os.Getpid()
	// Why before the command tree: this is every boot's path, and building
	// the tree costs time a PID 1 should not spend.
	if name == "init-overlay" && pid == 1 {
		boot.Main(os.Args, os.Environ()) // never returns
	}
	if len(os.Args) > 1 && os.Args[1] == chroot.HelperArg {
		os.Exit(chroot.Main(os.Args[2:])) // update's helper, PID 1 of its namespaces
	}
	root := newRootCmd(name, systemEnv())
	switch whoAmI(name, pid, os.Args[1:], isSubcommand(root, os.Args[1:])) {
	case roleBoot:
		boot.Main(os.Args, os.Environ()) // never returns
	case roleRefuse:
		fmt.Fprintln(os.Stderr, initOnlyMessage)
		os.Exit(2)
	}
	cmd, err := root.ExecuteC()
	os.Exit(exitWith(cmd, err, os.Stdout, os.Stderr))
}

// exitWith reports err, the error of cmd (nil: success), and returns the
// exit code: the message on stderr and, when cmd was asked for --json, a
// {"error": ...} object on stdout too, where the reader of its JSON looks.
func exitWith(cmd *cobra.Command, err error, stdout, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, err)
	if cmd != nil {
		if f := cmd.Flags().Lookup("json"); f != nil && f.Value.String() == "true" {
			b, _ := json.Marshal(struct {
				Error string `json:"error"`
			}{err.Error()})
			fmt.Fprintf(stdout, "%s\n", b)
		}
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		return exit.Code // update passes on its command's exit code
	}
	return 1
}

type role int

const (
	roleCLI    role = iota // the commands
	roleBoot               // the PID-1 path
	roleRefuse             // init-overlay run by hand: say what it is, never mount
)

// initOnlyMessage is what /sbin/init-overlay says when run by hand.
const initOnlyMessage = "init-overlay is overlayupd's PID-1 path (init=/sbin/init-overlay on the kernel command line) and runs only as PID 1: it would mount an overlay over this running system. The commands are 'overlayupd …' or 'overlayctl …', e.g. 'overlayupd status'."

// whoAmI decides the part this binary plays: the PID-1 path only as PID 1
// (under any name, unless a command is asked for: a container's
// 'overlayupd status'); init-overlay run by hand answers a command, and
// refuses anything else rather than mount over the running system.
func whoAmI(name string, pid int, args []string, subcommand bool) role {
	switch {
	case pid == 1 && !subcommand:
		return roleBoot
	case name == "init-overlay" && !subcommand && (len(args) == 0 || !strings.HasPrefix(args[0], "-")):
		return roleRefuse // a flag (--help, --version) is answered
	}
	return roleCLI
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
