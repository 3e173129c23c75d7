package bootcfg

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/kcmdline"
)

// paramCount counts, in the kernel part of a command line (before `--`), the
// parameters the install rules care about.
type paramCount struct{ ours, otherInit, ro, rw int }

func countParams(cl string) paramCount {
	var c paramCount
	for _, p := range kcmdline.Split(cl) {
		switch {
		case p.Key == "--" && !p.HasValue:
			return c
		case p.Key == "init" && p.HasValue && p.Value == TrampolinePath:
			c.ours++
		case p.Key == "init" && p.HasValue:
			c.otherInit++
		case p.Key == "ro" && !p.HasValue:
			c.ro++
		case p.Key == "rw" && !p.HasValue:
			c.rw++
		}
	}
	return c
}

// cmdlines extracts the command lines of a file independently of the editors
// (except for GRUB's shell quoting, where it reuses parseGrub); ok is false
// when a line cannot be parsed.
func cmdlines(k Kind, content []byte) (cls []string, ok bool) {
	for _, l := range splitLines(content) {
		switch k {
		case RPiCmdline:
			if strings.TrimSpace(l.text) != "" {
				cls = append(cls, l.text)
			}
		case UEnv:
			if v, found := strings.CutPrefix(l.text, "cmdline="); found {
				cls = append(cls, v)
			}
		case Extlinux:
			// Indentation and the separator are spaces or tabs only.
			rest := strings.TrimLeft(l.text, " \t")
			if len(rest) >= 6 && strings.EqualFold(rest[:6], "append") &&
				(len(rest) == 6 || rest[6] == ' ' || rest[6] == '\t') {
				cls = append(cls, rest[6:])
			}
		case Grub:
			g, found, err := parseGrub(l.text, grubVar)
			if err != nil {
				return nil, false
			}
			if found {
				cls = append(cls, g.val)
			}
		}
	}
	return cls, true
}

func seedCorpus(f *testing.F, prefix string) {
	ins, _ := filepath.Glob(filepath.Join("testdata", prefix+"*.in"))
	for _, in := range ins {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func fuzzKind(f *testing.F, k Kind, prefix string) {
	seedCorpus(f, prefix)
	f.Fuzz(func(t *testing.T, in []byte) {
		un, err := Uninstall(k, in)
		if err == nil {
			if again, err := Uninstall(k, un); err != nil || !bytes.Equal(again, un) {
				t.Fatalf("Uninstall not idempotent on %q: %q, %v", un, again, err)
			}
		}
		out, err := Install(k, in)
		if err != nil {
			return
		}
		cls, ok := cmdlines(k, out)
		if !ok || len(cls) == 0 {
			t.Fatalf("Install(%q) = %q: no command line found in it", in, out)
		}
		edited := 0
		for _, cl := range cls {
			if k == Extlinux && runsShell(cl) {
				// A rescue entry is left alone: as it was in the input.
				if !bytes.Contains(in, []byte(cl)) {
					t.Fatalf("Install(%q): rescue command line %q is not the input's", in, cl)
				}
				continue
			}
			edited++
			if c := countParams(cl); c.ours != 1 || c.otherInit != 0 || c.ro == 0 || c.rw != 0 {
				t.Fatalf("Install(%q): command line %q has %+v, want exactly one %s, ro and no rw", in, cl, c, initParam)
			}
		}
		if edited == 0 {
			t.Fatalf("Install(%q) = %q: no command line runs %s", in, out, initParam)
		}
		if again, err := Install(k, out); err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Install not idempotent: Install(%q) = %q, %v", out, again, err)
		}
		back, err := Uninstall(k, out)
		if err != nil {
			t.Fatalf("Uninstall(Install(%q)): %v", in, err)
		}
		back2, _ := cmdlines(k, back)
		for _, cl := range back2 {
			if c := countParams(cl); c.ours != 0 {
				t.Fatalf("Uninstall(%q) left %s in %q", out, initParam, cl)
			}
		}
	})
}

func FuzzRPiCmdline(f *testing.F) { fuzzKind(f, RPiCmdline, "rpi-") }
func FuzzUEnv(f *testing.F)       { fuzzKind(f, UEnv, "uenv-") }
func FuzzExtlinux(f *testing.F)   { fuzzKind(f, Extlinux, "extlinux-") }
func FuzzGrub(f *testing.F)       { fuzzKind(f, Grub, "grub-") }
