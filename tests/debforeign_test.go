package tests

// The Debian base of another architecture than the host's (debroot_test.go
// says why it takes two stages): mmdebstrap only downloads and extracts,
// and the guest installs.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// debStage2Dir holds the second stage's own files in the tree: busybox (the
// script's shell, whatever state the tree's own is in), the script, and the
// package lists. It is left out of the base.
const debStage2Dir = ".stage2"

// debStage2Init is the second stage, run as PID 1 on the extracted tree
// (the initramfs mounted it read-only). It installs what mmdebstrap does
// in its essential and install steps, in the same order: the
// Essential:yes packages first with --force-depends (they are made to be
// installed together), then the rest, then it configures what is left and
// checks that every package is installed. It prints its steps with the
// uptime, removes the .debs and what mmdebstrap's cleanup would, and powers
// off. Its text is part of the base's cache key (debianSpec.baseKey). The tree's programs are
// called by their paths: Debian's busybox runs its own applets (dpkg among
// them) before it looks at PATH.
const debStage2Init = `#!/.stage2/busybox sh
b=/.stage2/busybox
$b mount -o remount,rw / || { echo "stage2: done rc=remount"; echo o > /proc/sysrq-trigger; }
$b mount -t tmpfs -o mode=0755 tmpfs /run
$b mount -t tmpfs -o mode=1777 tmpfs /tmp
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C HOME=/root
export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true
step() { echo "stage2: $1 uptime=$($b cut -d' ' -f1 /proc/uptime)"; }
rc=0
cd /var/cache/apt/archives || rc=cd
if [ $rc = 0 ]; then
	step essential
	/usr/bin/dpkg --install --force-depends $($b cat /.stage2/essential) || rc=essential
fi
if [ $rc = 0 ]; then
	step rest
	/usr/bin/dpkg --install --force-depends $($b cat /.stage2/rest) || rc=rest
fi
if [ $rc = 0 ]; then
	step configure
	/usr/bin/dpkg --configure -a || rc=configure
fi
if [ $rc = 0 ]; then
	bad=$(/usr/bin/dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' | $b grep -v '^ii ')
	audit=$(/usr/bin/dpkg --audit)
	n=$(/usr/bin/dpkg-query -W -f '${Package}\n' | $b wc -l)
	echo "stage2: packages $n"
	if [ -n "$bad$audit" ]; then
		echo "stage2: not installed: $bad $audit"
		rc=audit
	fi
fi
# What mmdebstrap's cleanup removes, and apt's caches.
$b rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin /var/cache/ldconfig/aux-cache \
	/var/log/dpkg.log /var/log/alternatives.log
$b sync
step "done rc=$rc"
$b mount -o remount,ro /
$b sync
echo o > /proc/sysrq-trigger
$b sleep 100
`

// debianForeignBase makes spec's base for the guest's architecture as a
// tarball at tmp: the packages extracted by mmdebstrap on the host, then
// installed by a boot of the guest (debianSecondStage).
func debianForeignBase(t *testing.T, a *assets, spec debianSpec, dir, tmp string) error {
	// The package set of the variants in mmdebstrap's words (its VARIANTS
	// section): extract installs only what --include names, so the
	// variant's set is named with apt patterns.
	var include []string
	switch spec.Variant {
	case "minbase", "required":
		include = []string{"?essential", "?priority(required)", "apt"}
	case "essential":
		include = []string{"?essential"}
	default:
		return fmt.Errorf("variant %s: a foreign base (%s) knows minbase, required and essential", spec.Variant, spec.arch.name)
	}
	include = append(include, spec.Include...)
	work, err := os.MkdirTemp(dir, ".stage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "root")
	args := []string{"--mount", "--propagation", "private", "mmdebstrap", "--mode=root", "--quiet",
		"--variant=extract", "--architectures=" + spec.arch.deb,
		// Nothing of the guest runs here: no qemu-user needed, and the
		// .debs stay for the second stage.
		"--skip=check/qemu", "--skip=cleanup/apt/cache"}
	args = append(args, debianDpkgOpts...)
	for _, p := range include {
		args = append(args, "--include="+p)
	}
	args = append(args, "--format=directory", spec.Suite, root)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mmdebstrap --variant=extract --architectures=%s: %w\n%s", spec.arch.deb, err, b)
	}
	t.Logf("Debian %s base: packages extracted in %v", spec.arch.deb, time.Since(start).Round(time.Second))

	// The Essential:yes packages go first, as mmdebstrap installs them.
	debs, _ := filepath.Glob(filepath.Join(root, "var/cache/apt/archives/*.deb"))
	if len(debs) == 0 {
		return fmt.Errorf("mmdebstrap left no .deb in %s/var/cache/apt/archives", root)
	}
	var essential, rest []string
	for _, deb := range debs {
		f, err := output("dpkg-deb", "--field", deb, "Essential")
		if err != nil {
			return err
		}
		if strings.TrimSpace(f) == "yes" {
			essential = append(essential, filepath.Base(deb))
		} else {
			rest = append(rest, filepath.Base(deb))
		}
	}
	if err := testroot.ApplyDir(root,
		testroot.CopyFile(a.busybox, debStage2Dir+"/busybox", 0o755),
		testroot.File(debStage2Dir+"/init", debStage2Init, 0o755),
		testroot.File(debStage2Dir+"/essential", strings.Join(essential, "\n")+"\n", 0o644),
		testroot.File(debStage2Dir+"/rest", strings.Join(rest, "\n")+"\n", 0o644),
	); err != nil {
		return err
	}
	img, err := debianSecondStage(t, a, root, len(debs))
	if err != nil {
		return err
	}
	// The installed tree, as mmdebstrap's tarball has it.
	mnt := filepath.Join(work, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return err
	}
	script := `set -e
mount -o loop,ro "$IMG" "$MNT"
trap 'umount "$MNT"' EXIT
tar -C "$MNT" --numeric-owner --xattrs --xattrs-include='*' --sort=name \
	--exclude=./lost+found --exclude=./` + debStage2Dir + ` -cpf "$OUT" .
`
	pack := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	pack.Env = append(os.Environ(), "IMG="+img, "MNT="+mnt, "OUT="+tmp)
	if b, err := pack.CombinedOutput(); err != nil {
		return fmt.Errorf("pack the installed tree: %w\n%s", err, b)
	}
	return nil
}

// debianSecondStage boots the guest on an ext4 image of root with
// debStage2Init as init, waits for it to report, and returns the image.
func debianSecondStage(t *testing.T, a *assets, root string, ndebs int) (string, error) {
	img := testroot.Ext4(t, root, "3G", "-L", "stage2")
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	s := &session{t: t, a: a, logDir: filepath.Join(repoRoot(), "tests", "logs", name+"-debian-"+a.arch.name+"-"+time.Now().Format("20060102-150405"))}
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		return "", err
	}
	start := time.Now()
	// More memory than the default: dpkg and perl's scripts.
	v := s.boot(&disk{t: t, path: img, fstype: "ext4"}, bootOpts{init: "/" + debStage2Dir + "/init", qemuArgs: []string{"-m", "1024"}})
	m := v.expect(`stage2: done rc=(\S+) uptime=(\S+)`, 90*time.Minute)
	out := v.wait(2 * time.Minute)
	steps := strings.Join(regexp.MustCompile(`(?m)^stage2: .*$`).FindAllString(out, -1), "\n")
	if m[1] != "0" {
		return "", fmt.Errorf("the second stage on the %s guest failed at %s (console log %s):\n%s\n%s", a.arch.name, m[1], v.logPath, steps, v.tail(40))
	}
	if n := regexp.MustCompile(`stage2: packages (\d+)`).FindStringSubmatch(out); n == nil || n[1] != fmt.Sprint(ndebs) {
		return "", fmt.Errorf("the second stage installed %v packages of %d:\n%s", n, ndebs, steps)
	}
	t.Logf("Debian %s base: the second stage took %v (guest uptime %ss):\n%s", a.arch.name, time.Since(start).Round(time.Second), m[2], steps)
	_ = os.RemoveAll(s.logDir)
	return img, nil
}
