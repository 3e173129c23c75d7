package overlay

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/mounts"
)

func parseMounts(t *testing.T, s string) []mounts.Mount {
	t.Helper()
	ms, err := mounts.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestStatusFrom(t *testing.T) {
	const active = `40 1 0:40 / / rw - overlay overlay rw,lowerdir=/overlay/robase
41 40 0:41 / /overlay/rwdata rw - tmpfs overlay-rw rw,size=1024k
42 40 254:0 / /overlay/robase ro,relatime - ext4 /dev/vda ro
`
	const persistent = `40 1 0:40 / / rw - overlay overlay rw
41 40 254:0 /overlay-rw-layer /overlay/rwdata rw - ext4 /dev/vda rw
42 40 254:0 / /overlay/robase ro - ext4 /dev/vda rw
`
	const plain = `22 1 254:0 / / ro,relatime - ext4 /dev/vda ro
`
	tests := []struct {
		name      string
		table     string
		disabled  bool
		used      uint64
		want      Status
		wantWarns int
	}{
		{"tmpfs active", active, false, 100, Status{Active: true, EnabledNextBoot: true, Base: RobaseDir, BaseReadOnly: true,
			UnionFS: "overlay", RWLayer: "tmpfs", RWSize: 1000, RWUsed: 100, RWUsedPct: 10, DisableFile: "/overlay/robase/overlay/disable"}, 0},
		{"tmpfs nearly full", active, true, 810, Status{Active: true, EnabledNextBoot: false, DisabledBy: "/overlay/robase/overlay/disable", Base: RobaseDir, BaseReadOnly: true,
			UnionFS: "overlay", RWLayer: "tmpfs", RWSize: 1000, RWUsed: 810, RWUsedPct: 81, DisableFile: "/overlay/robase/overlay/disable"}, 1},
		{"persistent full is no tmpfs warning", persistent, false, 900, Status{Active: true, EnabledNextBoot: true, Base: RobaseDir, BaseReadOnly: true,
			UnionFS: "overlay", RWLayer: "persistent", RWLayerDir: "/overlay-rw-layer", RWSize: 1000, RWUsed: 900, RWUsedPct: 90, DisableFile: "/overlay/robase/overlay/disable"}, 0},
		{"inactive", plain, true, 0, Status{DisabledBy: "/overlay/disable", Base: "/", BaseReadOnly: true, DisableFile: "/overlay/disable"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked string
			got := StatusFrom(parseMounts(t, tt.table),
				func(p string) bool { asked = p; return tt.disabled },
				func(string) (Usage, error) { return Usage{Size: 1000, Used: tt.used}, nil })
			if asked != tt.want.DisableFile {
				t.Errorf("looked for the disable file at %q, want %q", asked, tt.want.DisableFile)
			}
			if len(got.Warnings) != tt.wantWarns {
				t.Errorf("warnings %q, want %d", got.Warnings, tt.wantWarns)
			}
			got.Warnings = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// status --json keeps every field of the README's schema at its zero value
// (a fresh tmpfs layer uses 0 bytes; a script reading .rw_used_bytes must
// not get null), but for warnings, omitted when none.
func TestStatusJSONFields(t *testing.T) {
	b, err := json.Marshal(Status{Active: true, RWLayer: "tmpfs", RWSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"active", "enabled_next_boot", "disabled_by", "base", "base_read_only", "union_fs", "rw_layer", "rw_layer_dir", "rw_size_bytes", "rw_used_bytes", "rw_used_percent", "disable_file"} {
		if _, ok := got[k]; !ok {
			t.Errorf("%s missing from %s", k, b)
		}
	}
	if _, ok := got["warnings"]; ok {
		t.Errorf("warnings present with none: %s", b)
	}
}
