package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	cases := []struct {
		spec string
		size uint64
		want string
		err  string
	}{
		{"8+8", 100, "0 8 linear /dev/vda 0; 8 8 flakey /dev/vda 8 0 1; 16 84 linear /dev/vda 16", ""},
		{"0+8,92+8", 100, "0 8 flakey /dev/vda 0 0 1; 8 84 linear /dev/vda 8; 92 8 flakey /dev/vda 92 0 1", ""},
		{"40+8,8+8", 100, "0 8 linear /dev/vda 0; 8 8 flakey /dev/vda 8 0 1; 16 24 linear /dev/vda 16; 40 8 flakey /dev/vda 40 0 1; 48 52 linear /dev/vda 48", ""},
		{"8+8,16+8", 100, "0 8 linear /dev/vda 0; 8 16 flakey /dev/vda 8 0 1; 24 76 linear /dev/vda 24", ""},
		{"8+8,12+8", 100, "0 8 linear /dev/vda 0; 8 12 flakey /dev/vda 8 0 1; 20 80 linear /dev/vda 20", ""},
		{"96+8", 100, "", "past the disk's end"},
		{"", 100, "", "no bad sectors"},
		{"8-8", 100, "", "bad sector range"},
		{"8+0", 100, "", "bad sector range"},
	}
	for _, c := range cases {
		var got []string
		bad, err := parseRanges(c.spec)
		if err == nil {
			tab, terr := table("/dev/vda", c.size, bad)
			err = terr
			for _, x := range tab {
				got = append(got, fmt.Sprintf("%d %d %s %s", x.Start, x.Length, x.Type, x.Params))
			}
		}
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want %q", c.spec, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.spec, err)
		case strings.Join(got, "; ") != c.want:
			t.Errorf("%q: table\n%s\nwant\n%s", c.spec, strings.Join(got, "; "), c.want)
		}
	}
}
