package tests

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

const demoStep1 = `
echo "result: / is mounted as: $(awk '$2 == "/" {m = $1 " (" $3 ")"} END {print m}' /proc/mounts)"
echo "Hello from boot 1" > /etc/demo-note
echo "result: wrote /etc/demo-note: $(cat /etc/demo-note)"
echo "result: the change lives in the RAM layer: $(ls /overlay/rwdata/data/etc/demo-note 2>&1)"
echo "result: the read-only base is untouched: $(ls /overlay/robase/etc/demo-note 2>&1)"
`

const demoStep2 = `
echo "result: / is mounted as: $(awk '$2 == "/" {m = $1 " (" $3 ")"} END {print m}' /proc/mounts)"
if [ -e /etc/demo-note ]; then echo "result: /etc/demo-note is still there: $(cat /etc/demo-note)"; else echo "result: /etc/demo-note is gone: the device booted clean"; fi
`

var demoLine = regexp.MustCompile(`(?m)^(overlayupd:.*|result: .*)$`)

// TestDemo is make demo: it narrates a tmpfs-overlay device across a
// reboot. It runs only with OVERLAYUPD_DEMO=1 and keeps its console logs.
func TestDemo(t *testing.T) {
	if os.Getenv("OVERLAYUPD_DEMO") != "1" {
		t.Skip("set OVERLAYUPD_DEMO=1 to run the demo (make demo)")
	}
	say := func(format string, args ...any) { fmt.Printf("\n==> "+format+"\n", args...) }
	show := func(console string) {
		for _, l := range demoLine.FindAllString(console, -1) {
			if strings.HasPrefix(l, "result: status {") || l == "result: data none" {
				continue // the JSON status is for the tests, the plain one follows; no persistent layer here
			}
			fmt.Println("    " + strings.TrimPrefix(l, "result: "))
		}
	}
	say("Fetching the kernel, busybox and QEMU (cached after the first run)")
	s := newSession(t)
	t.Cleanup(func() { fmt.Printf("\n==> Console logs of every boot: %s\n", s.logDir) })
	s.keepLogs = true
	r := newRootTree(t, s.a)
	r.step("demo1", demoStep1)
	r.step("demo2", demoStep2)
	say("Building a read-only root disk: busybox, overlayupd as /sbin/init-overlay")
	d := r.ext4()

	say("Boot 1: kernel command line has init=/sbin/init-overlay; overlayupd lays a tmpfs over the root")
	out := s.run(d, bootOpts{init: "/sbin/init-overlay", step: "demo1"})
	show(out)
	if rootFS(t, out) != "overlay" {
		t.Fatalf("boot 1: / is not an overlay")
	}
	must(t, out, `wrote /etc/demo-note: Hello from boot 1`)

	say("Reboot (same disk). Boot 2: is the file still there?")
	out = s.run(d, bootOpts{init: "/sbin/init-overlay", step: "demo2"})
	show(out)
	must(t, out, `/etc/demo-note is gone`)
	if d.exists("/etc/demo-note") {
		t.Fatalf("the note reached the read-only root image")
	}
	say("The root image itself was never written: debugfs finds no /etc/demo-note on it")

	demoStore(t, s, say, show)
	demoBtrfs(t, s, say, show)
}

// demoStore is the second half of make demo: the squashfs store. One store
// disk, four boots: apply, the trial, commit, rollback.
func demoStore(t *testing.T, s *session, say func(string, ...any), show func(string)) {
	say("Part two, transactional updates. Building a store disk: 'overlayupd store init' with image v1, v2.sqsh in /updates")
	v2 := storeImage(t, s.a, "v2", nil)
	sc := &storeScenario{t: t, s: s, d: storeDisk(t, s, storeImage(t, s.a, "v1", nil), false, map[string]string{"v2": v2})}

	say("Boot 1: the trampoline boots the committed image v1; 'overlayupd apply /overlay/store/updates/v2.sqsh'")
	b := sc.boot("v1", "apply:v2,status")
	show(b.console)

	say("Boot 2: the trampoline tries v2 once (root.try-1 -> root.trying-0 before mounting it); 'overlayupd commit'")
	b = sc.boot("v2", "commit,status")
	show(b.console)

	say("Boot 3: v2 is the committed root now; 'overlayupd rollback'")
	b = sc.boot("v2", "rollback,status")
	show(b.console)

	say("Boot 4: the previous image v1 boots again")
	b = sc.boot("v1", "status")
	show(b.console)
	sc.wantBooted(b, "root.sqsh", "committed")
	say("Had boot 2 rebooted without commit, boot 3 would have run v1 and recorded the failure (make test: TestStore*)")
}

// demoBtrfs is the third part of make demo: the btrfs store, where the
// device updates itself in a snapshot (update -- CMD) and keeps what was
// tuned in the overlay (persist), each through a trial and a commit.
func demoBtrfs(t *testing.T, s *session, say func(string, ...any), show func(string)) {
	say("Part three, the btrfs store: roots are read-only subvolumes. Building it with 'overlayupd store init --btrfs --image v1.sqsh' (a persistent writable layer too)")
	v1 := storeImage(t, s.a, "v1", func(r *rootTree) { r.write("etc/doomed", "doomed\n", 0o644) })
	sc := &storeScenario{t: t, s: s, d: btrfsStoreDisk(t, s, v1, nil, "overlay-rw-layer"), args: btrfsArgs}

	say("Boot 1 (rootfstype=btrfs rootflags=subvolid=5): 'overlayupd update -- sh -c \"echo v2 > /etc/version\"' runs in a snapshot of the running root")
	b := sc.boot("v1", "update-ver:v2,status")
	show(b.console)

	say("Boot 2: the snapshot is tried once; 'overlayupd commit'")
	b = sc.boot("v2", "commit,status")
	show(b.console)

	say("Boot 3: v2 is committed. Tune the system in the overlay (write /etc/tuned, delete /etc/doomed), then 'overlayupd persist'")
	b = sc.boot("v2", "tune,persist,status")
	show(b.console)

	say("Boot 4: the persisted root is tried; its lower layer has the changes itself; 'overlayupd commit'")
	b = sc.boot("v2", "lowerview,layer,commit")
	show(b.console)

	say("Boot 5: committed; the persistent layer is emptied now, the root keeps the changes")
	b = sc.boot("v2", "layer,status")
	show(b.console)
	sc.wantBooted(b, "root", "committed")
}
