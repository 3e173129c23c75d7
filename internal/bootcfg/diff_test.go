package bootcfg

import "testing"

func TestDiff(t *testing.T) {
	tests := []struct{ name, a, b, want string }{
		{"equal", "a\nb\n", "a\nb\n", ""},
		{"one line changed", "a\nb\nc\n", "a\nB\nc\n",
			"--- f\n+++ f\n@@ -2,1 +2,1 @@\n-b\n+B\n"},
		{"appended line", "a\n", "a\nb\n",
			"--- f\n+++ f\n@@ -2,0 +2,1 @@\n+b\n"},
		{"two hunks, CRLF shown without CR", "a\r\nx\r\nb\r\ny\r\n", "A\r\nx\r\nb\r\nY\r\n",
			"--- f\n+++ f\n@@ -1,1 +1,1 @@\n-a\n+A\n@@ -4,1 +4,1 @@\n-y\n+Y\n"},
		{"no final newline", "a", "a\nb",
			"--- f\n+++ f\n@@ -1,1 +1,2 @@\n-a\n\\ No newline at end of file\n+a\n+b\n\\ No newline at end of file\n"},
	}
	for _, tt := range tests {
		if got := Diff("f", []byte(tt.a), []byte(tt.b)); got != tt.want {
			t.Errorf("%s: Diff = %q, want %q", tt.name, got, tt.want)
		}
	}
}
