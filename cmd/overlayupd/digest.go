package main

import (
	"encoding/hex"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/squash"
	"github.com/overlayupd/overlayupd/squash/inspect"
	"github.com/overlayupd/overlayupd/trust"
)

// digestResult is what digest --json prints.
type digestResult struct {
	Comment string `json:"comment"` // the trusted comment to sign
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Verity  string `json:"verity_root"`
}

func newDigestCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "digest IMAGE",
		Short: "Print an image's digest, to sign as minisign's trusted comment (faster signed applies)",
		Long: `Print one line that states IMAGE's size, sha256 and dm-verity root hash
(` + trust.DigestPrefix + ` size=… sha256=… verity=…), for the release
host to sign as the signature's trusted comment:

  minisign -S -s release.key -m root.sqsh -t "$(overlayupd digest root.sqsh)"

minisign signs its trusted comment with the same key. When a signature's
trusted comment is such a digest, apply (and store init) check the
comment's signature before a byte is copied, then check the copy against
the digest: its size and the root hash of the dm-verity tree that apply
computes anyway. That is as strong as checking the signature of the bytes
(the root hash and the size fix every byte), and it saves the BLAKE2b and
the sha256 passes over the image: a signed apply then costs what an
unsigned one does. A signature made without -t still works, checked on the
bytes as before.

IMAGE is read once; the image is validated first (what apply would refuse
is refused here). The digest does not depend on the store or the device.`,
		Example: "  overlayupd digest root-2.4.sqsh\n  minisign -S -s release.key -m root-2.4.sqsh -t \"$(overlayupd digest root-2.4.sqsh)\"\n  overlayupd digest --json root-2.4.sqsh",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if err := checkImageFile(path); err != nil {
				return err
			}
			if _, err := inspect.Validate(path, nil); err != nil {
				return imageError(err)
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return err
			}
			total := imageTotal(f, fi.Size())
			f.Close()
			progress, done := e.progress(cmd, total, asJSON)
			x, err := squash.Digest(cmd.Context(), path, progress)
			done()
			if err != nil {
				return imageError(err)
			}
			d := trust.Digest{Size: x.Size, SHA256: x.SHA256, Verity: x.Root}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), digestResult{Comment: d.String(), Size: d.Size,
					SHA256: hex.EncodeToString(d.SHA256[:]), Verity: hex.EncodeToString(d.Verity[:])})
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), d.String())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the digest and its fields as JSON (progress as JSON lines on stderr)")
	return cmd
}
