// Package mounts owns reading the kernel's mount tables: /proc/self/mountinfo
// and /proc/filesystems.
package mounts

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	ID, Parent int
	// Root is the directory of the filesystem mounted here: "/" for a whole
	// filesystem, the source directory for a bind mount.
	Root       string
	MountPoint string
	Options    string // per-mount options, e.g. "ro,relatime"
	FSType     string
	Source     string
	SuperOpts  string
}

// ReadOnly reports whether this mount is read-only.
func (m Mount) ReadOnly() bool { return HasOption(m.Options, "ro") }

// MountInfoPath is read by Read; tests point it at a file.
var MountInfoPath = "/proc/self/mountinfo"

// Read parses MountInfoPath.
func Read() ([]Mount, error) {
	b, err := ReadProc(MountInfoPath)
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return Parse(bytes.NewReader(b))
}

// ReadProc reads a small kernel-generated file (/proc/self/mountinfo,
// /proc/cmdline) whole, with open, read and close on a bare descriptor.
// Why not os.ReadFile: an *os.File is registered with the runtime's network
// poller, whose first use creates it (epoll, eventfd, a wake-up thread),
// and PID 1 reads these files on every boot, before anything else needs the
// poller. The file is read to its end, at most 16 MiB.
func ReadProc(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= 16<<20 {
				return nil, &os.PathError{Op: "read", Path: path, Err: unix.EFBIG}
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// Parse reads mountinfo lines. Malformed lines are an error: a mount table we
// cannot read is not one to act on.
func Parse(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		m, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func parseLine(line string) (Mount, error) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 7 || sep < 0 || len(f) < sep+3 {
		return Mount{}, fmt.Errorf("malformed: %q", line)
	}
	id, err1 := strconv.Atoi(f[0])
	parent, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return Mount{}, fmt.Errorf("malformed ids: %q", line)
	}
	m := Mount{ID: id, Parent: parent, Root: unescape(f[3]), MountPoint: unescape(f[4]),
		Options: f[5], FSType: f[sep+1], Source: unescape(f[sep+2])}
	if len(f) > sep+3 {
		m.SuperOpts = f[sep+3]
	}
	return m, nil
}

// unescape undoes the kernel's octal escapes (\040 for a space, ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Find returns the last (topmost) mount at mountPoint.
func Find(ms []Mount, mountPoint string) (Mount, bool) {
	var found Mount
	ok := false
	for _, m := range ms {
		if m.MountPoint == mountPoint {
			found, ok = m, true
		}
	}
	return found, ok
}

// Of returns the mount that holds path: the longest mount point that is path
// or one of its parents (of equal ones, the last listed, which is on top).
// path must be absolute and clean.
func Of(ms []Mount, path string) (Mount, bool) {
	var best Mount
	found := false
	for _, m := range ms {
		if within(path, m.MountPoint) && (!found || len(m.MountPoint) >= len(best.MountPoint)) {
			best, found = m, true
		}
	}
	return best, found
}

func within(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}

// HasOption reports whether a comma-separated option list holds o.
func HasOption(opts, o string) bool {
	for _, x := range strings.Split(opts, ",") {
		if x == o {
			return true
		}
	}
	return false
}

// FilesystemsPath is read by Filesystems; tests point it at a file.
var FilesystemsPath = "/proc/filesystems"

// Filesystems returns the filesystem types the kernel has now.
func Filesystems() (map[string]bool, error) {
	data, err := ReadProc(FilesystemsPath)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", FilesystemsPath, err)
	}
	return ParseFilesystems(string(data)), nil
}

// ParseFilesystems reads /proc/filesystems: "nodev\toverlay" or "\text4".
func ParseFilesystems(s string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			out[f[len(f)-1]] = true
		}
	}
	return out
}
