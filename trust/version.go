package trust

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// Where an image declares its version, relative to its root.
const (
	VersionFile = "etc/overlayupd/version"
	OSRelease   = "etc/os-release"
)

// ImageVersion is an image's version: the first line of
// /etc/overlayupd/version when the image has one (versionFile), else
// VERSION_ID and IMAGE_VERSION of its /etc/os-release joined by "+"
// ("12+2024.06.1"), or whichever of the two it has. "" means unversioned.
func ImageVersion(osRelease, versionFile []byte) string {
	if line, _, _ := strings.Cut(string(versionFile), "\n"); strings.TrimSpace(line) != "" {
		return strings.TrimSpace(line)
	}
	vars := ParseOSRelease(osRelease)
	var parts []string
	for _, k := range []string{"VERSION_ID", "IMAGE_VERSION"} {
		if v := vars[k]; v != "" {
			parts = append(parts, v)
		}
	}
	return strings.Join(parts, "+")
}

// ParseOSRelease reads os-release's KEY=value lines (values may be quoted,
// as the format allows); comments and malformed lines are skipped.
func ParseOSRelease(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") || k == "" {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		} else if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = v[1 : len(v)-1]
		}
		out[k] = strings.TrimSpace(v)
	}
	return out
}

// CompareVersions orders two versions the way dpkg orders upstream
// versions: the strings are compared as alternating runs of non-digits
// (character by character: '~' before the end of the string, the end
// before letters, letters before other characters) and runs of digits
// (as numbers, so 1.10 > 1.9 and 01 = 1). It returns -1, 0 or +1.
// "" (unversioned) is older than every version.
func CompareVersions(a, b string) int {
	// Why before the loop: dpkg puts "~1" before the empty string, but an
	// unversioned image must not pass for newer than any versioned root.
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	case b == "":
		return 1
	}
	for a != "" || b != "" {
		var na, nb string
		na, a = splitRun(a, false)
		nb, b = splitRun(b, false)
		if c := compareText(na, nb); c != 0 {
			return c
		}
		na, a = splitRun(a, true)
		nb, b = splitRun(b, true)
		if c := compareNumber(na, nb); c != 0 {
			return c
		}
	}
	return 0
}

// splitRun splits off the leading run of digits (digits true) or of other
// characters.
func splitRun(s string, digits bool) (run, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) == digits {
		i++
	}
	return s[:i], s[i:]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// order is dpkg's weight of a character in a non-digit run; 0 is the end.
func order(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := s[i]
	switch {
	case c == '~':
		return -1
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		return int(c)
	}
	return int(c) + 256
}

func compareText(a, b string) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		if oa, ob := order(a, i), order(b, i); oa != ob {
			return sign(oa - ob)
		}
	}
	return 0
}

func compareNumber(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return sign(len(a) - len(b))
	}
	return strings.Compare(a, b)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
