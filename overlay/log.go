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
	Console  io.Writer
	Kmsg     io.Writer // nil until /dev/kmsg is opened
	kmsgPath string    // opened at the first warning (OpenKmsg)
}

// NewLog logs to stderr, which is the console when the kernel starts init.
func NewLog() *Log { return &Log{Console: os.Stderr} }

// OpenKmsg starts copying warnings to the kernel log device at path. It is
// opened at the first warning, not here: a boot with nothing to warn about
// (nearly all of them) never pays for the open (about 0.1 ms, measured). A
// device that cannot be opened then is skipped.
func (l *Log) OpenKmsg(path string) { l.kmsgPath = path }

// kmsg returns the kernel log writer, opening it on first use.
func (l *Log) kmsg() io.Writer {
	if l.Kmsg != nil || l.kmsgPath == "" {
		return l.Kmsg
	}
	// Why a bare descriptor and not an *os.File: os.OpenFile registers the
	// file with the runtime's network poller, which it first has to create
	// (epoll, eventfd, a wake-up thread): work a write-only log does not
	// need. The descriptor is close-on-exec, like the os package's.
	// A failed open is tried again at the next warning: mid-plan, /dev may
	// be moved away for a moment.
	if fd, err := unix.Open(l.kmsgPath, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0); err == nil {
		l.Kmsg = fdWriter(fd)
	}
	return l.Kmsg
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
	io.WriteString(l.Console, "overlayupd: "+oneLine(sprintf(format, a))+"\n")
}

// Warnf logs one line to the console and, at warning level, to the kernel log.
func (l *Log) Warnf(format string, a ...any) {
	msg := oneLine(sprintf(format, a))
	io.WriteString(l.Console, "overlayupd: warning: "+msg+"\n")
	if k := l.kmsg(); k != nil {
		io.WriteString(k, "<4>overlayupd: "+msg+"\n")
	}
}

// sprintf is fmt.Sprintf, done by hand when every verb is %s of a string:
// the lines of a normal boot are all such, and fmt's code (formatting by
// reflection) is then never paged in by PID 1.
func sprintf(format string, a []any) string {
	var b strings.Builder
	rest, i := format, 0
	for {
		j := strings.IndexByte(rest, '%')
		if j < 0 {
			b.WriteString(rest)
			break
		}
		if j+1 >= len(rest) || rest[j+1] != 's' || i >= len(a) {
			return fmt.Sprintf(format, a...)
		}
		s, ok := a[i].(string)
		if !ok {
			return fmt.Sprintf(format, a...)
		}
		b.WriteString(rest[:j])
		b.WriteString(s)
		rest, i = rest[j+2:], i+1
	}
	if i != len(a) {
		return fmt.Sprintf(format, a...)
	}
	return b.String()
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
