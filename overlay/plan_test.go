package overlay

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/mounts"
)

func planStrings(ops []Op) []string {
	var s []string
	for _, o := range ops {
		s = append(s, o.String())
	}
	return s
}

func TestBuildPlanTmpfs(t *testing.T) {
	cfg := Config{FS: UnionFilesystems, RWLayer: Tmpfs, RWLayerDir: DefaultRWLayerDir, Size: "25%"}
	got := planStrings(BuildPlan(cfg, Layout{FS: "overlay", Mounts: []string{"/", "/proc", "/sys", "/dev", "/dev/pts"}}))
	want := []string{
		"mount --make-rprivate /",
		"mount -t tmpfs -o nosuid,nodev,mode=0755,size=1m overlay-root /overlay",
		"mkdir -p /overlay/robase",
		"mkdir -p /overlay/rwdata",
		"mkdir -p /overlay/combined",
		"mount --bind / /overlay/robase",
		"mount -o remount,bind,ro /overlay/robase",
		"mount -t tmpfs -o mode=0755,size=25% overlay-rw /overlay/rwdata",
		"mkdir -p /overlay/rwdata/data",
		"mkdir -p /overlay/rwdata/work",
		"mount -t overlay -o lowerdir=/overlay/robase,upperdir=/overlay/rwdata/data,workdir=/overlay/rwdata/work overlay /overlay/combined",
		"mkdir -p /overlay/combined/overlay/rwdata",
		"mount --move /overlay/rwdata /overlay/combined/overlay/rwdata",
		"mkdir -p /overlay/combined/overlay/robase",
		"mount --move /overlay/robase /overlay/combined/overlay/robase",
		"mkdir -p /overlay/combined/overlay/pivot",
		"chmod 755 /overlay/combined",
		"touch /overlay/combined/fastboot",
		"mkdir -p /overlay/combined/dev",
		"mount --move /dev /overlay/combined/dev",
		"mkdir -p /overlay/combined/proc",
		"mount --move /proc /overlay/combined/proc",
		"mkdir -p /overlay/combined/sys",
		"mount --move /sys /overlay/combined/sys",
		"mkdir -p /overlay/combined/tmp",
		"mkdir -p /overlay/combined/run",
		"mkdir -p /overlay/combined/var/lock",
		"pivot_root /overlay/combined overlay/pivot",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The persistent modes differ from tmpfs only in how the root and the
// writable layer are prepared; this checks those steps and their order.
func TestBuildPlanPersistentModes(t *testing.T) {
	base := []string{"mount -o remount,rw /"}
	tests := []struct {
		layer RWLayer
		extra []string
	}{
		{Persistent, nil},
		{PersistentClear, []string{"mkdir -p /data/rw", "clear /data/rw"}},
		{PersistentMove, []string{"move-aside /data/rw /data/rw-bak"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.layer), func(t *testing.T) {
			cfg := Config{FS: UnionFilesystems, RWLayer: tt.layer, RWLayerDir: "/data/rw", Size: DefaultSize}
			got := planStrings(BuildPlan(cfg, Layout{FS: "overlay", Mounts: []string{"/"}}))
			want := append(append(append([]string{}, base...), tt.extra...), "mkdir -p /data/rw",
				"mount --bind / /overlay/robase", "mount -o remount,bind,ro /overlay/robase",
				"mount --bind /data/rw /overlay/rwdata")
			if g := got[5 : 5+len(want)]; !reflect.DeepEqual(g, want) {
				t.Errorf("steps 5..:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
			}
			for _, s := range got {
				if strings.Contains(s, "fastboot") {
					t.Errorf("persistent plan writes %s into the persistent layer", s)
				}
				if strings.Contains(s, "tmpfs") && strings.Contains(s, "rwdata") {
					t.Errorf("persistent plan mounts a tmpfs writable layer: %s", s)
				}
			}
		})
	}
}

func TestUnionMountOptions(t *testing.T) {
	tests := []struct{ fs, want string }{
		{"overlay", "mount -t overlay -o lowerdir=/overlay/robase,upperdir=/overlay/rwdata/data,workdir=/overlay/rwdata/work overlay /overlay/combined"},
		{"overlayfs", "mount -t overlayfs -o lowerdir=/overlay/robase,upperdir=/overlay/rwdata overlayfs /overlay/combined"},
		{"aufs", "mount -t aufs -o dirs=/overlay/rwdata=rw:/overlay/robase=ro aufs /overlay/combined"},
		{"unionfs", "mount -t unionfs -o dirs=/overlay/rwdata=rw:/overlay/robase=ro unionfs /overlay/combined"},
	}
	for _, tt := range tests {
		ops := unionMount(tt.fs, "", []string{RobaseDir})
		if got := ops[len(ops)-1].String(); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.fs, got, tt.want)
		}
	}
}

var imageLower = &mounts.Spec{Type: "squashfs", Source: "/roots/root.sqsh", Options: []string{"ro", "loop"}}

func TestBuildPlanStoreLower(t *testing.T) {
	for _, tc := range []struct {
		rw      RWLayer
		storeRO string
	}{
		// tmpfs: the store's filesystem goes read-only; persistent: only its mount.
		{Tmpfs, "mount -o remount,ro /overlay/store"},
		{Persistent, "mount -o remount,bind,ro /overlay/store"},
	} {
		plan := BuildPlan(Config{RWLayer: tc.rw, RWLayerDir: "/rw", Size: "1m"},
			Layout{FS: "overlay", Lower: imageLower, Keep: "/", KeepAt: "/overlay/store"})
		got := planStrings(plan)
		joined := strings.Join(got, "\n")
		if strings.Contains(joined, "mount --bind / /overlay/robase") {
			t.Error("store plan still binds / as the lower layer")
		}
		for _, want := range []string{"mount -t squashfs -o ro,loop /roots/root.sqsh /overlay/robase\ncheck-init /overlay/robase/sbin/init",
			"mount --bind / /overlay/store", tc.storeRO, "mount --move /overlay/store /overlay/combined/overlay/store"} {
			if !strings.Contains(joined, want) {
				t.Errorf("%s: plan lacks %q:\n%s", tc.rw, want, joined)
			}
		}
		// The phases tell the boot path what a failure means.
		for _, op := range plan {
			want := PhaseSetup
			switch {
			case op.Target == RobaseDir && (op.Kind == OpMount || op.Kind == OpCheckInit):
				want = PhaseLower
			case op.Target == CombinedDir && op.Kind == OpMount, strings.HasPrefix(op.Target, RwdataDir+"/"):
				want = PhaseUnion
			case op.Target == RwdataDir && op.Kind == OpMount, op.Target == "/rw", op.Target == "/" && op.Kind == OpRemount:
				want = PhaseLayer
			}
			if op.Phase != want {
				t.Errorf("%s: %q has phase %d, want %d", tc.rw, op, op.Phase, want)
			}
		}
	}
}

func TestStepErrorPhase(t *testing.T) {
	for _, tc := range []struct {
		phase Phase
		is    error
	}{{PhaseLower, ErrLowerMount}, {PhaseLayer, ErrLayer}, {PhaseUnion, ErrUnion}} {
		err := fmt.Errorf("boot: %w", &StepError{Op: Op{Kind: OpMount, Phase: tc.phase}, Err: errors.New("EIO")})
		for _, other := range []error{ErrLowerMount, ErrLayer, ErrUnion} {
			if got := errors.Is(err, other); got != (other == tc.is) {
				t.Errorf("phase %d: errors.Is(err, %v) = %v", tc.phase, other, got)
			}
		}
	}
	if _, err := ChooseFS([]string{"overlay"}, func(string) bool { return false }, func(string) error { return errors.New("no") }); !errors.Is(err, ErrUnion) {
		t.Errorf("ChooseFS with none: %v, want ErrUnion", err)
	}
}

func TestMountsToMove(t *testing.T) {
	got := MountsToMove([]string{"/", "/sys", "/proc", "/dev/pts", "/dev", "/overlay", "/overlay/x", "/run", "/sys/fs/cgroup", "/proc"})
	want := []string{"/dev", "/proc", "/run", "/sys"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestChooseFS(t *testing.T) {
	have := map[string]bool{"aufs": true}
	var loaded []string
	load := func(fs string) error {
		loaded = append(loaded, fs)
		if fs == "overlayfs" {
			have["overlayfs"] = true
			return nil
		}
		return errors.New("no module")
	}
	got, err := ChooseFS([]string{"overlay", "overlayfs", "aufs"}, func(s string) bool { return have[s] }, load)
	if err != nil || got != "overlayfs" || !reflect.DeepEqual(loaded, []string{"overlay", "overlayfs"}) {
		t.Errorf("got %q, %v after loading %q; want overlayfs after loading [overlay overlayfs]", got, err, loaded)
	}
	_, err = ChooseFS([]string{"unionfs"}, func(string) bool { return false }, load)
	if err == nil || !strings.Contains(err.Error(), "unionfs: no module") {
		t.Errorf("err = %v, want one naming unionfs and why", err)
	}
}

func TestBuildPlanReadOnly(t *testing.T) {
	ops := planStrings(BuildPlan(Config{RWLayer: Persistent, RWLayerDir: "/rw", Size: "50%"},
		Layout{FS: "overlay", ReadOnly: true, Lower: imageLower, Keep: "/", KeepAt: "/overlay/store"}))
	got := strings.Join(ops, "\n")
	for _, want := range []string{"mount -t squashfs -o ro,loop /roots/root.sqsh /overlay/robase", "mount -o remount,ro /overlay/store", "mount -t tmpfs -o mode=0755,size=1m overlay-rw /overlay/rwdata",
		"mount --move /overlay/store /overlay/combined/overlay/store"} {
		if !strings.Contains(got, want) {
			t.Errorf("read-only plan lacks %q:\n%s", want, got)
		}
	}
	if last2 := ops[len(ops)-2:]; last2[0] != "mount -o remount,bind,ro /overlay/combined" || !strings.HasPrefix(last2[1], "pivot_root") {
		t.Errorf("read-only plan must end with a read-only remount of the merged root, then pivot: %q", last2)
	}
	if strings.Contains(got, "remount,rw") || strings.Contains(got, "--bind /rw ") {
		t.Errorf("read-only plan touches the persistent layer:\n%s", got)
	}
}

func TestBuildPlanClearLayer(t *testing.T) {
	for _, tc := range []struct {
		rw    RWLayer
		clear bool
		want  bool
	}{{Persistent, true, true}, {Persistent, false, false}, {Tmpfs, true, false}, {PersistentClear, true, false}} {
		plan := strings.Join(planStrings(BuildPlan(Config{RWLayer: tc.rw, RWLayerDir: "/rw", Size: "1m"}, Layout{FS: "overlay", ClearLayer: tc.clear})), "\n")
		if got := strings.Contains(plan, "move-aside /rw /rw-bak"); got != tc.want {
			t.Errorf("%s, ClearLayer %v: moves the layer aside %v, want %v\n%s", tc.rw, tc.clear, got, tc.want, plan)
		}
	}
}

func TestSelfContainedOpts(t *testing.T) {
	for _, tc := range []struct {
		have []string
		want string
	}{
		{[]string{"redirect_dir", "metacopy", "index"}, "redirect_dir=off,metacopy=off"},
		{[]string{"redirect_dir"}, "redirect_dir=off"}, // 4.10 to 4.18: no metacopy yet
		{nil, ""}, // an older kernel: the plain mount
	} {
		got := SelfContainedOpts(func(p string) bool { return slices.Contains(tc.have, p) })
		if got != tc.want {
			t.Errorf("with %v: %q, want %q", tc.have, got, tc.want)
		}
	}
	ops := unionMount("overlay", "redirect_dir=off,metacopy=off", []string{RobaseDir})
	if d := ops[len(ops)-1].Data; !strings.HasSuffix(d, ",redirect_dir=off,metacopy=off") {
		t.Errorf("union mount data %q lacks the options", d)
	}
}

// TestBuildPlanTrialLayer: in a trial boot the writable layer is the
// trial's own; the configured persistent layer is never cleared, moved or
// made writable by the plan: in persistent mode it is bound read-only
// between the two (lowerdir=committed:root); with the image shadow policy
// a tmpfs top layer comes first, filled by the shadow step once the root
// is mounted.
func TestBuildPlanTrialLayer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rw     RWLayer
		middle string
		shadow *ShadowStep
		lower  string
	}{
		{"persistent", Persistent, "/rw/data", nil, "lowerdir=/overlay/rwcommitted:/overlay/robase,"},
		{"persistent, shadow=image", Persistent, "/rw/data", &ShadowStep{Layer: "/rw/data", Policy: ShadowImage, Top: ShadowtopDir, Prev: mounts.Spec{Type: "squashfs", Source: "/roots/root.sqsh"}},
			"lowerdir=/overlay/shadowtop:/overlay/rwcommitted:/overlay/robase,"},
		{"persistent-clear", PersistentClear, "", nil, "lowerdir=/overlay/robase,"},
		{"persistent-move", PersistentMove, "", nil, "lowerdir=/overlay/robase,"},
	} {
		ops := BuildPlan(Config{RWLayer: tc.rw, RWLayerDir: "/rw", Size: "1m"},
			Layout{FS: "overlay", Lower: imageLower, Keep: "/", KeepAt: "/overlay/store", TrialLayer: "/roots/layer.trial", Middle: tc.middle, Shadow: tc.shadow})
		plan := strings.Join(planStrings(ops), "\n")
		for _, want := range []string{"mkdir -p /roots/layer.trial", "mount --bind /roots/layer.trial /overlay/rwdata", tc.lower} {
			if !strings.Contains(plan, want) {
				t.Errorf("%s: plan lacks %q:\n%s", tc.name, want, plan)
			}
		}
		for _, bad := range []string{"move-aside /rw", "clear /rw", "--bind /rw /overlay/rwdata", "mkdir -p /rw\n"} {
			if strings.Contains(plan+"\n", bad) {
				t.Errorf("%s: a trial's plan touches the committed layer (%q):\n%s", tc.name, bad, plan)
			}
		}
		if tc.middle != "" && !strings.Contains(plan, "mount --bind -o ro /rw/data /overlay/rwcommitted") {
			t.Errorf("%s: the committed layer is not bound read-only:\n%s", tc.name, plan)
		}
		if tc.shadow != nil {
			i, j := slices.Index(planStrings(ops), "check-init /overlay/robase/sbin/init"), slices.IndexFunc(ops, func(o Op) bool { return o.Kind == OpShadow })
			k := slices.IndexFunc(ops, func(o Op) bool { return o.FSType == "overlay" })
			if i < 0 || j < i || k < j {
				t.Errorf("%s: the shadow step must come after the root's mount and before the union (%d, %d, %d):\n%s", tc.name, i, j, k, plan)
			}
		}
	}
}

func TestShadowFromCmdline(t *testing.T) {
	for cmdline, want := range map[string]ShadowPolicy{"": ShadowKeep, "overlayupd.shadow=keep": ShadowKeep,
		"overlayupd.shadow=image": ShadowImage, "overlayupd.shadow=bogus": ShadowKeep, "overlayupd.shadow=image overlayupd.shadow=keep": ShadowKeep} {
		if got, _ := ShadowFromCmdline(cmdline); got != want {
			t.Errorf("%q: %s, want %s", cmdline, got, want)
		}
	}
	if _, w := ShadowFromCmdline("overlayupd.shadow=bogus"); w == "" {
		t.Error("no warning for an unknown value")
	}
}

func TestNextAside(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  string
	}{{nil, "/rw/shadowed/1"}, {[]string{"1", "2", "x", "10", "07"}, "/rw/shadowed/11"}} {
		if got := NextAside("/rw", tc.names); got != tc.want {
			t.Errorf("NextAside(%v) = %s, want %s", tc.names, got, tc.want)
		}
	}
}
