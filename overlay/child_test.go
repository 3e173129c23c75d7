package overlay

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRunChild: output, exit status, the timeout (also when the program has
// ended but left something holding its stdout), and the output cap.
func TestRunChild(t *testing.T) {
	sh := func(script string) []string { return []string{"/bin/sh", "-c", script} }
	for _, tc := range []struct {
		name, script string
		out          string
		err          string
		timedOut     bool
	}{
		{name: "output", script: "echo hello; echo err >&2", out: "hello\n"},
		{name: "exit status", script: "echo partial; exit 3", out: "partial\n", err: "exit status 3"},
		{name: "killed by a signal", script: "kill -TERM $$", err: "signal: terminated"},
		{name: "hangs", script: "sleep 30", timedOut: true},
		{name: "leaves stdout open", script: "sleep 30 & echo started", timedOut: true},
		{name: "too much output", script: "yes", err: "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			start := time.Now()
			err := runChild("/bin/sh", sh(tc.script), nil, 500*time.Millisecond, &out)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s, past the timeout", took)
			}
			switch {
			case tc.timedOut:
				if !errors.Is(err, errTimedOut) {
					t.Errorf("err = %v, want errTimedOut", err)
				}
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err = %v, want %q", err, tc.err)
				}
			case err != nil:
				t.Errorf("err = %v", err)
			}
			if tc.out != "" && out.String() != tc.out {
				t.Errorf("stdout %q, want %q", out.String(), tc.out)
			}
			if out.Len() > childOutputMax+1 {
				t.Errorf("kept %d bytes of output", out.Len())
			}
		})
	}
	// No stdout wanted: the program's output goes to /dev/null.
	if err := runChild("/bin/sh", sh("echo x"), nil, time.Second, nil); err != nil {
		t.Errorf("without stdout: %v", err)
	}
	if err := runChild("/nonexistent", []string{"/nonexistent"}, nil, time.Second, nil); err == nil {
		t.Error("a missing program ran")
	}
}
