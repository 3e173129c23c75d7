package tests

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// initModules are what the initramfs loads, in this order, each after its
// dependencies from modules.dep, after the architecture's bus driver
// (vmArch.bus); a module the kernel has built in (modules.builtin) is
// skipped.
var initModules = []string{"virtio_blk", "loop", "squashfs", "overlay", "btrfs", "dm_mod", "dm_verity"}

// initModuleNames are the modules the initramfs of a loads, built-in ones
// included: the preloads, the bus driver, initModules.
func initModuleNames(a *assets) []string {
	return slices.Concat(a.preload, a.arch.bus, initModules)
}

// initScript is the initramfs /init: like Debian's, it loads the modules,
// mounts the disk read-only, moves /dev, /proc and /sys into it and
// switch_roots, handing over the kernel's init= (default /sbin/init). The
// "harness: switch_root" marker goes to /dev/kmsg (microsecond timestamp for
// the bench) and to the console with /proc/uptime.
const initScript = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo 1 > /proc/sys/kernel/sysrq
for m in $(cat /etc/modules-load); do
	insmod /lib/modules/$m || echo "initramfs: insmod $m failed"
done
init=/sbin/init fstype= flags=ro prewarm=
for arg in $(cat /proc/cmdline); do
	case $arg in
	init=*) init=${arg#init=} ;;
	rootfstype=*) fstype="-t ${arg#rootfstype=}" ;;
	rootflags=*) flags="ro,${arg#rootflags=}" ;;
	harness.prewarm=*) prewarm=${arg#harness.prewarm=} ;;
	esac
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
dev=/dev/vda
# A damage test's helper maps the disk (dm-flakey over chosen sectors) and
# prints the device to mount instead.
if [ -x /bin/harness-dev ]; then
	if ! dev=$(/bin/harness-dev /dev/vda); then
		echo "initramfs: harness-dev failed"
		echo o > /proc/sysrq-trigger
	fi
	echo "harness: disk $dev"
fi
if ! mount $fstype -o $flags $dev /newroot; then
	echo "initramfs: cannot mount $dev"
	echo o > /proc/sysrq-trigger
fi
# The bench's diagnosis: a file read into the page cache before the handover.
[ -n "$prewarm" ] && cat "/newroot$prewarm" > /dev/null
for d in dev proc sys; do mount --move /$d /newroot/$d; done
echo "<2>harness: switch_root" > /newroot/dev/kmsg
read up idle < /newroot/proc/uptime
echo "harness: switch_root uptime=$up init=$init"
exec switch_root /newroot "$init"
`

type initramfsKey struct {
	kver  string
	skip  string
	extra string
	dev   string // a program run as /bin/harness-dev before the mount
}

var (
	initramfsMu    sync.Mutex
	initramfsCache = map[initramfsKey]string{}
)

// initramfs builds (once per process and variant) the cpio archive. skip
// names a module left out entirely, e.g. "overlay" for the broken-setup
// scenario; extra are more modules to load (a watchdog driver); dev, when
// not "", is a program put in as /bin/harness-dev: the init script runs it
// with the disk and mounts the device it prints. The archives live in a
// process-wide temp dir removed by TestMain.
func initramfs(a *assets, dev, skip string, extra ...string) (string, error) {
	initramfsMu.Lock()
	defer initramfsMu.Unlock()
	key := initramfsKey{a.kver, skip, strings.Join(extra, ","), dev}
	if p, ok := initramfsCache[key]; ok {
		return p, nil
	}
	dir, err := os.MkdirTemp(scratchDir, "initramfs-")
	if err != nil {
		return "", err
	}
	mods, err := resolveModules(a, skip, extra...)
	if err != nil {
		return "", err
	}
	tree := []testroot.Applier{
		testroot.CopyFile(a.busybox, "bin/busybox", 0o755),
		testroot.File("init", initScript, 0o755),
		testroot.File("etc/modules-load", strings.Join(mods, "\n")+"\n", 0o644),
	}
	if dev != "" {
		tree = append(tree, testroot.CopyFile(dev, "bin/harness-dev", 0o755))
	}
	for _, d := range []string{"dev", "proc", "sys", "newroot", "lib/modules"} {
		tree = append(tree, testroot.Dir(d, 0o755))
	}
	modDir := filepath.Join(a.modRoot, "lib", "modules", a.kver)
	for _, m := range mods {
		tree = append(tree, testroot.CopyFile(filepath.Join(modDir, m), path.Join("lib/modules", m), 0o644))
	}
	root := filepath.Join(dir, "tree")
	if err := testroot.ApplyDir(root, tree...); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "initrd.cpio")
	cmd := exec.Command("sh", "-c", "find . | cpio -o -H newc -R 0:0 --quiet > "+out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cpio: %w: %s", err, b)
	}
	initramfsCache[key] = out
	return out, nil
}

// resolveModules returns the module paths (relative to lib/modules/<kver>)
// to insmod, dependencies first, from modules.dep.
func resolveModules(a *assets, skip string, extra ...string) ([]string, error) {
	f, err := os.Open(filepath.Join(a.modRoot, "lib", "modules", a.kver, "modules.dep"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	builtin, err := builtinModules(a)
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{} // module path -> dependency paths
	byName := map[string]string{} // module name -> path
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		path, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[path] = strings.Fields(rest)
		byName[modName(path)] = path
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var order []string
	seen := map[string]bool{}
	var visit func(p string)
	visit = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		for _, d := range deps[p] {
			visit(d)
		}
		order = append(order, p)
	}
	for _, name := range append(initModuleNames(a), extra...) {
		if name == skip || builtin[name] {
			continue
		}
		p, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("module %s not in modules.dep of %s", name, a.kver)
		}
		visit(p)
	}
	return order, nil
}

// builtinModules are the modules the kernel of a has built in, by name
// (modules.builtin).
func builtinModules(a *assets) (map[string]bool, error) {
	b, err := os.ReadFile(filepath.Join(a.modRoot, "lib", "modules", a.kver, "modules.builtin"))
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, p := range strings.Fields(string(b)) {
		m[modName(p)] = true
	}
	return m, nil
}

func modName(path string) string {
	base := filepath.Base(path)
	base = base[:strings.Index(base, ".ko")]
	return strings.ReplaceAll(base, "-", "_")
}
