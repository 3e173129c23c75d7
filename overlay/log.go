package overlay

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
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
	// Why a bare descriptor and not an *os.File: os.OpenFile registers the
	// file with the runtime's network poller, which it first has to create
	// (epoll, eventfd, a wake-up thread): work every boot would pay for a
	// write-only log. The descriptor is close-on-exec, like the os package's.
	if fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0); err == nil {
		l.Kmsg = fdWriter(fd)
	}
}

// fdWriter writes to a file descriptor with write(2).
type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	n, err := unix.Write(int(w), p)
	if err != nil {
		return max(n, 0), err
	}
	return n, nil
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
