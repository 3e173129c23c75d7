package overlay

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "init-overlay-get-mode")
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunGetMode(t *testing.T) {
	script := writeScript(t, `echo "get-mode says hello"
OVERLAY=aufs
OVERLAY_RW_LAYER=persistent-clear
OVERLAY_RW_LAYER_DIR="/data/with space"
UNRELATED=x
`)
	got, err := RunGetMode("/bin/sh", script)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{VarOverlay: "aufs", VarRWLayer: "persistent-clear", VarRWDir: "/data/with space",
		VarClear: "", VarMove: "", VarSize: ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRunGetModeFailures(t *testing.T) {
	old := GetModeTimeout
	GetModeTimeout = 300 * time.Millisecond
	defer func() { GetModeTimeout = old }()
	tests := []struct{ name, body, wantErr string }{
		{"exits non-zero", "OVERLAY=aufs\nexit 3\n", "exit status 3"},
		{"hangs", "sleep 30\n", "did not finish"},
		{"exits early with garbage", "echo OVERLAY=aufs\nexit 0\n", "header"},
		{"syntax error", "if then fi (\n", "exit status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := RunGetMode("/bin/sh", writeScript(t, tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s; the timeout did not hold", d)
			}
		})
	}
}

func TestParseGetMode(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{getModeHeader + "\x00OVERLAY=aufs\x00OVERLAY_RW_LAYER=\x00", map[string]string{VarOverlay: "aufs", VarRWLayer: ""}, false},
		{getModeHeader + "\x00X=1\x00OVERLAY=a=b\x00", map[string]string{VarOverlay: "a=b"}, false},
		{"garbage", nil, true},
		{"", nil, true},
		{getModeHeader + "\x00novalue\x00", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseGetMode([]byte(tt.in))
		if (err != nil) != tt.wantErr || (!tt.wantErr && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("ParseGetMode(%q) = %q, %v; want %q, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseGetMode(f *testing.F) {
	f.Add([]byte(getModeHeader + "\x00OVERLAY=aufs\x00"))
	f.Add([]byte("junk\x00\x00="))
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := ParseGetMode(data)
		if err != nil {
			return
		}
		for k := range vars {
			found := false
			for _, v := range Vars {
				found = found || v == k
			}
			if !found {
				t.Errorf("unknown variable %q accepted", k)
			}
		}
	})
}
