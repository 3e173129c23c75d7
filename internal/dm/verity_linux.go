package dm

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/loop"
	"github.com/overlayupd/overlayupd/verity"
)

// ErrCorrupt: dm-verity found a block of the image that does not match its
// hash. Reads of it fail with EIO; the image is damaged.
var ErrCorrupt = errors.New("dm-verity found a damaged block")

// ErrNoVerity: the kernel has device-mapper but no verity target.
var ErrNoVerity = errors.New("the kernel has no dm-verity target")

// ErrSetup: the kernel refused to make the verity device (before any block
// of the image was read through it).
var ErrSetup = errors.New("cannot set up dm-verity")

// HasVerity reports whether the kernel offers dm-verity now: device-mapper
// is there and the verity target is loaded. An error says why not
// (wrapping ErrNoDeviceMapper or ErrNoVerity).
func HasVerity() error {
	targets, err := Targets()
	if err != nil {
		return err
	}
	if _, ok := targets["verity"]; !ok {
		return ErrNoVerity
	}
	return nil
}

// Mounted is a verity-backed mount made by MountVerity.
type Mounted struct {
	Name    string // the device-mapper name
	Dev     string // /dev/dm-N, the mount's source
	Loop    string // the loop device under it
	Trailer verity.Trailer
}

// NamePrefix starts the name of every device MountVerity makes.
const NamePrefix = "overlayupd-"

// MountVerity mounts the image file at target through dm-verity: the file
// (opened without following links, never blocking) is attached to a
// read-only autoclear loop device, a verity device maps its data area
// against the hash tree of its trailer, and fstype is mounted from that
// device with flags (MS_RDONLY is forced) and data. Every block read
// through it is checked against the tree: a damaged one is EIO, never
// wrong bytes.
//
// The device-mapper device is marked for deferred removal once mounted, and
// the loop device is autoclear, so both go away with the unmount. On error
// nothing is left: no mount, no device-mapper device, no loop device. An
// image without a trailer is an error wrapping verity.ErrNoTrailer, found
// before anything is set up; a damaged trailer wraps verity.ErrBadTrailer;
// a device the kernel refuses wraps ErrSetup; a mount that fails because a
// block is damaged wraps ErrCorrupt and EIO.
func MountVerity(image, target, fstype string, flags uintptr, data string) (m Mounted, err error) {
	backing, err := loop.OpenImage(image, true)
	if err != nil {
		return m, err
	}
	defer backing.Close()
	fi, err := backing.Stat()
	if err != nil {
		return m, fmt.Errorf("stat %s: %w", image, err)
	}
	if m.Trailer, err = verity.ReadTrailer(backing, fi.Size()); err != nil {
		return m, fmt.Errorf("%s: %w", image, err)
	}
	lf, err := loop.Attach(image, backing, true)
	if err != nil {
		return m, err
	}
	// Why the loop fd stays open until the end: the loop device is
	// autoclear, and until the verity table holds it, this fd is its only
	// user. Once the table is loaded, the device-mapper device keeps it.
	defer lf.Close()
	m.Loop = lf.Name()
	var st unix.Stat_t
	if err := unix.Fstat(int(lf.Fd()), &st); err != nil {
		return m, fmt.Errorf("stat %s: %w", m.Loop, err)
	}
	loopDev := fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	start, length, typ, params := m.Trailer.Table(loopDev)
	var dev uint64
	for i := 1; ; i++ {
		// A name still taken (a device of an earlier boot attempt that is
		// still mounted) gets a number, a few times.
		m.Name = deviceName(image, i)
		dev, err = Create(m.Name, true, []Target{{Start: start, Length: length, Type: typ, Params: params}})
		if err == nil || !errors.Is(err, unix.EBUSY) || i == 8 {
			break
		}
	}
	if err != nil {
		return m, fmt.Errorf("%s: %w: %w", image, ErrSetup, err)
	}
	defer func() {
		if err != nil {
			if rerr := Remove(m.Name, false); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
	}()
	if m.Dev, err = DevPath(dev); err != nil {
		return m, err
	}
	if err := unix.Mount(m.Dev, target, fstype, flags|unix.MS_RDONLY, data); err != nil {
		return m, mountError(m, image, target, err)
	}
	// Best effort: if the mark fails the device only outlives the unmount.
	_ = Remove(m.Name, true)
	return m, nil
}

// mountError says why the mount from the verity device failed: a damaged
// block when the target's status says it saw one.
func mountError(m Mounted, image, target string, err error) error {
	if st, serr := Status(m.Name); serr == nil && len(st) == 1 && strings.HasPrefix(st[0].Status, "C") {
		return fmt.Errorf("mount %s (%s through dm-verity, root hash %s) on %s: %w: the image is damaged on disk: %w",
			image, m.Dev, m.Trailer.RootHex(), target, ErrCorrupt, err)
	}
	return fmt.Errorf("mount %s (%s through dm-verity) on %s: %w", image, m.Dev, target, err)
}

// deviceName is the device-mapper name for image: the prefix and the
// file's name, cut to fit, and a number from the second try on.
func deviceName(image string, try int) string {
	suffix := ""
	if try > 1 {
		suffix = fmt.Sprintf("-%d", try)
	}
	n := NamePrefix + filepath.Base(image)
	if len(n)+len(suffix) >= unix.DM_NAME_LEN {
		n = n[:unix.DM_NAME_LEN-1-len(suffix)]
	}
	return n + suffix
}

// Corrupt reports whether the verity device name has seen a damaged block.
func Corrupt(name string) (bool, error) {
	st, err := Status(name)
	if err != nil {
		return false, err
	}
	for _, s := range st {
		if s.Type == "verity" && strings.HasPrefix(s.Status, "C") {
			return true, nil
		}
	}
	return false, nil
}
