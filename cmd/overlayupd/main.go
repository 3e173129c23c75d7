// Command overlayupd is the transactional root updater: PID 1 trampoline and
// overlay (as init-overlay), and the admin CLI (as overlayupd or overlayctl).
package main

import (
	"fmt"
	"os"
)

var version = "dev"

func main() {
	fmt.Fprintln(os.Stderr, "overlayupd", version)
}
