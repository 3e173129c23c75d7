package squash

import (
	"errors"
	"io/fs"
	"testing"
)

// fakeImage is a LookupFunc over a map: path -> "dir", "file", "file-0644" or "->target".
func fakeImage(entries map[string]string) LookupFunc {
	return func(p string) (Node, error) {
		v, ok := entries[p]
		switch {
		case !ok:
			return Node{}, fs.ErrNotExist
		case v == "dir":
			return Node{Mode: fs.ModeDir | 0o755}, nil
		case v == "file":
			return Node{Mode: 0o755}, nil
		case len(v) >= 2 && v[:2] == "->":
			return Node{Mode: fs.ModeSymlink | 0o777, Target: v[2:]}, nil
		}
		return Node{}, errors.New("bad fake entry " + v)
	}
}

func TestResolve(t *testing.T) {
	base := map[string]string{"bin": "dir", "bin/busybox": "file", "sbin": "dir", "usr": "dir",
		"usr/lib": "dir", "usr/lib/systemd": "dir", "usr/lib/systemd/systemd": "file", "lib": "->usr/lib"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name    string
		entries map[string]string
		want    string
		wantErr error
	}{
		{"regular", with("sbin/init", "file"), "sbin/init", nil},
		{"relative", with("sbin/init", "->../bin/busybox"), "bin/busybox", nil},
		{"absolute", with("sbin/init", "->/bin/busybox"), "bin/busybox", nil},
		{"dotdot above root", with("sbin/init", "->../../../bin/busybox"), "bin/busybox", nil},
		{"absolute dotdot above root", with("sbin/init", "->/../../bin/./busybox"), "bin/busybox", nil},
		{"via dir symlink", with("sbin/init", "->/lib/systemd/systemd"), "usr/lib/systemd/systemd", nil},
		{"relative through dir symlink", with("sbin/init", "->../lib/systemd/systemd"), "usr/lib/systemd/systemd", nil},
		{"dotdot after dir symlink is physical", with("sbin/init", "->/lib/../lib/systemd/systemd"), "usr/lib/systemd/systemd", nil},
		{"sbin is a symlink", with("sbin", "->usr/sbin", "usr/sbin", "dir", "usr/sbin/init", "->../lib/systemd/systemd"), "usr/lib/systemd/systemd", nil},
		{"chain", with("sbin/init", "->a", "sbin/a", "->b", "sbin/b", "->/bin/busybox"), "bin/busybox", nil},
		{"missing", base, "", fs.ErrNotExist},
		{"dangling", with("sbin/init", "->/bin/nope"), "", ErrDanglingSymlink},
		{"dangling dir component", with("sbin/init", "->/nodir/x"), "", ErrDanglingSymlink},
		{"empty target", with("sbin/init", "->"), "", ErrDanglingSymlink},
		{"self loop", with("sbin/init", "->init"), "", ErrSymlinkLoop},
		{"two loop", with("sbin/init", "->/sbin/x", "sbin/x", "->init"), "", ErrSymlinkLoop},
		{"file as dir", with("sbin/init", "->/bin/busybox/init"), "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := Resolve(fakeImage(tc.entries), "/sbin/init")
			if tc.name == "file as dir" {
				if err == nil {
					t.Fatalf("resolve = %q, want a not-a-directory error", got)
				}
				return
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("resolve = %q, %v; want %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("resolve = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestCheckInitMode(t *testing.T) {
	cases := []struct {
		mode fs.FileMode
		ok   bool
	}{
		{0o755, true}, {0o700, true}, {0o001, true}, {0o644, false}, {0, false},
		{fs.ModeDir | 0o755, false}, {fs.ModeDevice | 0o755, false}, {fs.ModeNamedPipe | 0o777, false},
	}
	for _, tc := range cases {
		err := CheckInitMode("/sbin/init", tc.mode)
		if got := err == nil; got != tc.ok {
			t.Errorf("CheckInitMode(%v) = %v, want ok=%v", tc.mode, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInitNotExecutable) {
			t.Errorf("CheckInitMode(%v) = %v, want ErrInitNotExecutable", tc.mode, err)
		}
	}
}
