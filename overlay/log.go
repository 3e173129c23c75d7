package overlay

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Log writes the PID-1 path's messages: every line to the console, and
// warnings also to the kernel log so that they survive in dmesg.
type Log struct {
	Console io.Writer
	Kmsg    io.Writer // nil until /dev/kmsg can be opened
}

// NewLog logs to stderr, which is the console when the kernel starts init.
func NewLog() *Log { return &Log{Console: os.Stderr} }

// OpenKmsg starts copying warnings to /dev/kmsg; it is a no-op when the
// device cannot be opened.
func (l *Log) OpenKmsg(path string) {
	if l.Kmsg != nil {
		return
	}
	if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
		l.Kmsg = f
	}
}

// Infof logs one line to the console.
func (l *Log) Infof(format string, a ...any) {
	fmt.Fprintf(l.Console, "overlayupd: %s\n", oneLine(fmt.Sprintf(format, a...)))
}

// Warnf logs one line to the console and, at warning level, to the kernel log.
func (l *Log) Warnf(format string, a ...any) {
	msg := oneLine(fmt.Sprintf(format, a...))
	fmt.Fprintf(l.Console, "overlayupd: warning: %s\n", msg)
	if l.Kmsg != nil {
		fmt.Fprintf(l.Kmsg, "<4>overlayupd: %s\n", msg)
	}
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
