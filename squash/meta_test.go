package squash

import (
	"bytes"
	"context"
	"os"
	"testing"
)

// TestStageWithHash: the extra hash sees exactly the bytes staged, for a
// file (which otherwise goes through copy_file_range) and for a stream.
func TestStageWithHash(t *testing.T) {
	data := randomBytes(5<<20 + 123)
	src := buildFile(t, data)
	for _, c := range []struct {
		name string
		open func() (*os.File, error)
		size int64
	}{
		{"file", func() (*os.File, error) { return os.Open(src) }, int64(len(data))},
		{"stream", func() (*os.File, error) { return os.Open(src) }, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := c.open()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var r = any(f)
			if c.size < 0 {
				r = struct{ *os.File }{f} // not an *os.File: the stream path
			}
			var got bytes.Buffer
			tmp, _, n, err := StageWith(context.Background(), r.(interface{ Read([]byte) (int, error) }), c.size, storeDir(t), Options{Hash: &got})
			if err != nil {
				t.Fatal(err)
			}
			staged, err := os.ReadFile(tmp)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(staged)) < n {
				t.Fatalf("staged %d bytes, fewer than the %d copied", len(staged), n)
			}
			staged = staged[:n] // the image's own bytes; the verity tree follows them
			if n != int64(len(data)) || !bytes.Equal(got.Bytes(), staged) || !bytes.Equal(staged, data) {
				t.Errorf("hashed %d bytes, staged %d, want both the %d source bytes", got.Len(), len(staged), len(data))
			}
		})
	}
}

func buildFile(t *testing.T, data []byte) string {
	t.Helper()
	p := t.TempDir() + "/src"
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
