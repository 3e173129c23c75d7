package kcmdline

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []Param
	}{
		{"", nil},
		{"  ro  quiet\n", []Param{{Key: "ro"}, {Key: "quiet"}}},
		{"root=/dev/vda init=/sbin/init-overlay", []Param{
			{Key: "root", Value: "/dev/vda", HasValue: true},
			{Key: "init", Value: "/sbin/init-overlay", HasValue: true}}},
		{`a="b c" d`, []Param{{Key: "a", Value: "b c", HasValue: true}, {Key: "d"}}},
		{`"x=y z"`, []Param{{Key: "x", Value: "y z", HasValue: true}}},
		{"k= v", []Param{{Key: "k", Value: "", HasValue: true}, {Key: "v"}}},
		{`""`, []Param{{}}},
		// As the kernel strips quotes: only the opening one, the value's
		// opening one and the matching last byte.
		{`a"b"c`, []Param{{Key: `a"b"c`}}},
		{`k=a"b c"d e`, []Param{{Key: "k", Value: `a"b c"d`, HasValue: true}, {Key: "e"}}},
		{`k="v"x`, []Param{{Key: "k", Value: `v"x`, HasValue: true}}},
		{`"a b"`, []Param{{Key: "a b"}}},
		{"a\vb\fc", []Param{{Key: "a"}, {Key: "b"}, {Key: "c"}}},
	}
	for _, tt := range tests {
		if got := Split(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Split(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestLookupLastWins(t *testing.T) {
	p := Split("overlay=on overlay=disable quiet")
	got, ok := Lookup(p, "overlay")
	if !ok || got != "disable" {
		t.Errorf("Lookup = %q, %v; want %q, true", got, ok, "disable")
	}
	if _, ok := Lookup(p, "missing"); ok {
		t.Error("Lookup of a missing key reported found")
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"ro init=/sbin/init-overlay", `a="b c"`, "\"", "x==y\t\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range Split(s) {
			if strings.ContainsAny(p.Key, " \t\n\"") && !strings.Contains(s, `"`) {
				t.Errorf("key %q from %q keeps a separator", p.Key, s)
			}
			if strings.Contains(p.Key, "=") {
				t.Errorf("key %q contains '='", p.Key)
			}
		}
	})
}

// TestSplitKeepsBytes: the kernel's command line is bytes, not UTF-8. A
// value that is not valid UTF-8 (a directory named in Latin-1) comes out
// byte for byte, as the kernel passes it to init, not with U+FFFD in place
// of its bytes: that would name another directory.
func TestSplitKeepsBytes(t *testing.T) {
	for _, in := range []string{"overlayupd.rwdir=/d\xe9j\xe0", "overlayupd.rwdir=\"/a \xff\xfe b\"", "k=\x80"} {
		ps := Split(in)
		if len(ps) != 1 {
			t.Fatalf("Split(%q) = %#v, want one parameter", in, ps)
		}
		want := strings.Trim(in[strings.IndexByte(in, '=')+1:], `"`)
		if ps[0].Value != want {
			t.Errorf("Split(%q) value = %q, want %q", in, ps[0].Value, want)
		}
	}
}

// TestKernel: the parameters after "--" are init's, not the kernel's: a key
// there is not read as this program's.
func TestKernel(t *testing.T) {
	ps := Kernel("ro overlayupd.size=50% -- overlayupd.size=1g single")
	if v, _ := Lookup(ps, "overlayupd.size"); v != "50%" || len(ps) != 2 {
		t.Errorf("Kernel = %#v, want the two parameters before --", ps)
	}
	if ps := Kernel("a=-- b"); len(ps) != 2 {
		t.Errorf("a value of -- is not the separator: %#v", ps)
	}
}
