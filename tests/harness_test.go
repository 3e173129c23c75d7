package tests

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// must fails the test unless the console matches re; it returns the submatches.
func must(t *testing.T, console, re string) []string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(console)
	if m == nil {
		t.Errorf("console lacks %q", re)
	}
	return m
}

// mustNot fails the test if the console matches re.
func mustNot(t *testing.T, console, re string) {
	t.Helper()
	if m := regexp.MustCompile(re).FindString(console); m != "" {
		t.Errorf("console has %q (matched %q)", re, m)
	}
}

// rootFS returns the type of the topmost mount on /, as the test init saw it.
func rootFS(t *testing.T, console string) string {
	t.Helper()
	m := regexp.MustCompile(`harness: rootmount (\S+) (\S+) (\S+)`).FindStringSubmatch(console)
	if m == nil {
		t.Fatalf("console has no rootmount line")
	}
	return m[2]
}

// TestDirectBoot proves the harness itself: the kernel, initramfs and disk
// boot straight into the test /sbin/init as PID 1 on the read-only ext4
// root; the same disk boots again; a guest crash (sysrq b) and a killed
// QEMU end the boot.
func TestDirectBoot(t *testing.T) {
	s := newSession(t)
	r := newRootTree(t, s.a)
	r.step("probe", `
echo "result: modules $(awk '{print $1}' /proc/modules | sort | tr '\n' ,)"
grep -q overlay /proc/filesystems && echo "result: overlayfs available"
echo x > /etc/probe 2>&1 && echo "result: etc writable" || echo "result: etc read-only"
`)
	r.step("crash", `echo "result: crashing"; echo b > /proc/sysrq-trigger; sleep 5; echo "result: survived"`)
	r.step("hang", `echo "result: hanging"; sleep 1000`)
	d := r.ext4()

	out := s.run(d, bootOpts{step: "probe"})
	must(t, out, `harness: switch_root uptime=[\d.]+ init=/sbin/init\n`)
	if fs := rootFS(t, out); fs != "ext4" {
		t.Errorf("root fs %q, want ext4", fs)
	}
	must(t, out, `harness: rootmount /dev/vda ext4 ro[,\s]`)
	mods := must(t, out, `result: modules (\S+)`)
	builtin, err := builtinModules(s.a)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range initModuleNames(s.a) {
		if len(mods) > 1 && !builtin[m] && !strings.Contains(","+mods[1], ","+m+",") {
			t.Errorf("module %s not loaded: %s", m, mods[1])
		}
	}
	must(t, out, `result: overlayfs available`)
	must(t, out, `result: etc read-only`)
	must(t, out, `harness: step-done step=probe rc=0`)

	v := s.boot(d, bootOpts{step: "crash"})
	v.expect(`result: crashing`, bootTimeout)
	out = v.wait(30 * time.Second)
	mustNot(t, out, `result: survived|harness: step-done`)

	v = s.boot(d, bootOpts{step: "hang"})
	v.expect(`result: hanging`, bootTimeout)
	v.kill()
	mustNot(t, v.wait(5*time.Second), `harness: step-done`)
}

// TestDirectBootOtherFS boots the same tree from btrfs and squashfs images:
// the hooks later store scenarios build on.
func TestDirectBootOtherFS(t *testing.T) {
	s := newSession(t)
	r := newRootTree(t, s.a)
	for _, d := range []*disk{r.btrfs(), {t: t, path: r.squashfs(), fstype: "squashfs"}} {
		out := s.run(d, bootOpts{})
		if fs := rootFS(t, out); fs != d.fstype {
			t.Errorf("root fs %q, want %s", fs, d.fstype)
		}
	}
}
