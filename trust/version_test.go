package trust

import "testing"

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.10", "1.9", 1},
		{"1.9", "1.10", -1},
		{"01", "1", 0},
		{"2", "10", -1},
		{"1.0", "1.0.1", -1},
		{"1.0~rc1", "1.0", -1},
		{"1.0~rc1", "1.0~rc2", -1},
		{"1.0a", "1.0", 1},
		{"1.0a", "1.0+", -1}, // letters sort before other characters
		{"12", "12+2024.06.1", -1},
		{"12+2024.06.1", "12+2024.06.2", -1},
		{"12+2024.10.1", "12+2024.9.9", 1},
		{"13+2020.1", "12+2024.1", 1},
		{"", "0.1", -1}, // unversioned is older than any version
		{"", "", 0},
		{"", "~1", -1}, // unversioned is older even than a version dpkg puts before the end
		{"", "~", -1},
		{"~", "~~", 1},
		{"2024-06-01", "2024-05-31", 1},
		{"99999999999999999999", "100000000000000000000", -1}, // past uint64
	} {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := CompareVersions(c.b, c.a); got != -c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d (antisymmetry)", c.b, c.a, got, -c.want)
		}
	}
}

func TestImageVersion(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, osRelease, versionFile, want string
	}{
		{"both fields", "NAME=\"Debian\"\nVERSION_ID=\"12\"\nIMAGE_VERSION=2024.06.1\n", "", "12+2024.06.1"},
		{"version id only", "VERSION_ID=12\n", "", "12"},
		{"image version only, single quotes", "IMAGE_VERSION='3.1'\n", "", "3.1"},
		{"version file wins", "VERSION_ID=12\n", "4.2.0\nbuilt by CI\n", "4.2.0"},
		{"blank version file", "VERSION_ID=12\n", "\n", "12"},
		{"comments and junk", "# VERSION_ID=9\njunk\nVERSION_ID=11\n", "", "11"},
		{"nothing", "", "", ""},
	} {
		if got := ImageVersion([]byte(c.osRelease), []byte(c.versionFile)); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
