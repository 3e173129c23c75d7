package keeper

import (
	"os"
	"path/filepath"
	"strconv"
)

// ProcDir is where Find looks for the keeper; tests point it elsewhere.
var ProcDir = "/proc"

// Find returns the running keeper's pid and config (pid 0: none runs).
func Find() (int, *Config) {
	ents, err := os.ReadDir(ProcDir)
	if err != nil {
		return 0, nil
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(ProcDir, e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if c, ok := ParseProcCmdline(b); ok {
			return pid, &c
		}
	}
	return 0, nil
}
