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
