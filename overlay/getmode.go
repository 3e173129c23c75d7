package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
)

// GetModeScript is the original's hook: a shell fragment that sets the
// configuration variables. Tests point it elsewhere.
var GetModeScript = "/sbin/init-overlay-get-mode"

// GetModeTimeout bounds how long the get-mode script may run.
var GetModeTimeout = 5 * time.Second

// getModeHeader starts the script runner's output, so that anything else the
// script prints to stdout cannot be mistaken for variables.
const getModeHeader = "overlayupd-get-mode-v1"

// getModeShell sources the script with its stdout sent to the console (stderr)
// and then prints the variables NUL-separated after a header.
func getModeShell(script string) string {
	var b strings.Builder
	fmt.Fprintf(&b, ". %s 1>&2 </dev/null; printf '%%s\\0' %s", shellQuote(script), getModeHeader)
	for _, v := range Vars {
		fmt.Fprintf(&b, ` "%s=${%s}"`, v, v)
	}
	return b.String()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ParseGetMode reads the runner's output: the header, then NAME=value
// entries separated by NUL. Only the known variables are taken.
func ParseGetMode(out []byte) (map[string]string, error) {
	fields := bytes.Split(out, []byte{0})
	if len(fields) == 0 || string(fields[0]) != getModeHeader {
		return nil, errors.New("get-mode output does not start with the expected header")
	}
	vars := map[string]string{}
	for _, f := range fields[1:] {
		if len(f) == 0 {
			continue
		}
		k, v, ok := strings.Cut(string(f), "=")
		if !ok {
			return nil, fmt.Errorf("get-mode output entry %q is not NAME=value", f)
		}
		for _, known := range Vars {
			if k == known {
				vars[k] = v
			}
		}
	}
	return vars, nil
}

// RunGetMode sources the get-mode script with /bin/sh and returns the
// variables it set. The script runs with a timeout; on any failure the
// error says what happened and the caller applies the defaults.
func RunGetMode(shell, script string) (map[string]string, error) {
	var stdout bytes.Buffer
	err := runChild(shell, []string{shell, "-c", getModeShell(script)}, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, GetModeTimeout, &stdout)
	if errors.Is(err, errTimedOut) {
		return nil, fmt.Errorf("%s did not finish within %s", script, GetModeTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", script, err)
	}
	vars, err := ParseGetMode(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("read back %s: %w", script, err)
	}
	return vars, nil
}
