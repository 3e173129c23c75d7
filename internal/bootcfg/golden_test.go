package bootcfg

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files from the current output")

// kindOf maps a testdata file name prefix to the kind of file it holds.
func kindOf(t *testing.T, name string) Kind {
	t.Helper()
	for prefix, k := range map[string]Kind{"rpi-": RPiCmdline, "uenv-": UEnv, "extlinux-": Extlinux, "grub-": Grub} {
		if strings.HasPrefix(name, prefix) {
			return k
		}
	}
	t.Fatalf("testdata/%s: name must start with rpi-, uenv-, extlinux- or grub-", name)
	return 0
}

// render turns an edit's outcome into golden-file bytes; refusals are kept as
// their message, so error wording is reviewed like output.
func render(out []byte, err error) []byte {
	if err != nil {
		return []byte("ERROR: " + err.Error() + "\n")
	}
	return out
}

// TestGolden runs Install, Uninstall and Uninstall∘Install over every
// testdata/*.in and compares with NAME.{install,uninstall,roundtrip}.golden.
func TestGolden(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join("testdata", "*.in"))
	if err != nil || len(ins) == 0 {
		t.Fatalf("no testdata/*.in: %v", err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in")
		t.Run(name, func(t *testing.T) {
			k := kindOf(t, name)
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			installed, installErr := Install(k, src)
			roundtrip := render(installed, installErr)
			if installErr == nil {
				roundtrip = render(Uninstall(k, installed))
			}
			cases := []struct {
				suffix string
				got    []byte
			}{
				{"install", render(installed, installErr)},
				{"uninstall", render(Uninstall(k, src))},
				{"roundtrip", roundtrip},
			}
			for _, c := range cases {
				golden := filepath.Join("testdata", name+"."+c.suffix+".golden")
				if *update {
					if err := os.WriteFile(golden, c.got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(c.got, want) {
					t.Errorf("%s: got\n%q\nwant\n%q", golden, c.got, want)
				}
			}
		})
	}
}
