package bootcfg

import (
	"errors"
	"strings"
	"testing"
)

// TestGrubShellConstructs: /etc/default/grub is a shell script, and
// grub-mkconfig copies GRUB_CMDLINE_LINUX unquoted onto grub.cfg's `linux`
// line, which GRUB's own shell-like parser reads. An edit is made only where
// the text is what the kernel gets, and the assignment edited is the one
// the shell keeps; anything else is refused with the reason, not edited
// into a config that breaks or that the shell or GRUB reads otherwise.
func TestGrubShellConstructs(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     string // "" when refused
		why      string // in the refusal
	}{
		// After the value.
		{"another assignment after ;",
			`GRUB_CMDLINE_LINUX="quiet"; GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX init=/bin/sh"` + "\n", "", "follows the assignment"},
		{"a command after ;", `GRUB_CMDLINE_LINUX="quiet"; true` + "\n", "", "follows the assignment"},
		{"# glued to the closing quote is part of the value", `GRUB_CMDLINE_LINUX="quiet"#x` + "\n", "", "right after the closing quote"},
		{"a word after the value makes it a command's environment", `GRUB_CMDLINE_LINUX="quiet" true` + "\n", "", "follows the assignment"},
		{"a continuation after the value", `GRUB_CMDLINE_LINUX="quiet" \` + "\n  true\n", "", "follows the assignment"},
		{"; and a comment", `GRUB_CMDLINE_LINUX="quiet"; # serial` + "\n",
			`GRUB_CMDLINE_LINUX="quiet ro init=/sbin/init-overlay"; # serial` + "\n", ""},
		{"a lone ;", "GRUB_CMDLINE_LINUX='quiet' ;\n", "GRUB_CMDLINE_LINUX='quiet ro init=/sbin/init-overlay' ;\n", ""},
		// In the value: the shell's expansions.
		{"another variable", `GRUB_CMDLINE_LINUX="$EXTRA quiet"` + "\n", "", "$EXTRA"},
		{"braced variable", `GRUB_CMDLINE_LINUX="${EXTRA} quiet"` + "\n", "", "${EXTRA}"},
		{"command substitution", `GRUB_CMDLINE_LINUX="$(cat /etc/kernel/cmdline)"` + "\n", "", "$(cat"},
		{"backquotes", "GRUB_CMDLINE_LINUX=\"`cat /etc/kernel/cmdline`\"\n", "", "command substitution"},
		{"a backslash", `GRUB_CMDLINE_LINUX="a=\\b"` + "\n", "", "backslash"},
		{"$ in single quotes reaches GRUB", `GRUB_CMDLINE_LINUX='a=$b'` + "\n", "", "$b"},
		{"the value so far", "GRUB_CMDLINE_LINUX=\"console=ttyS0\"\nGRUB_CMDLINE_LINUX=\"${GRUB_CMDLINE_LINUX} quiet\"\n",
			"GRUB_CMDLINE_LINUX=\"console=ttyS0 ro init=/sbin/init-overlay\"\nGRUB_CMDLINE_LINUX=\"${GRUB_CMDLINE_LINUX} quiet ro init=/sbin/init-overlay\"\n", ""},
		// In the value: what GRUB's parser would act on in grub.cfg.
		{"; inside the value ends the linux command", `GRUB_CMDLINE_LINUX="quiet; echo x"` + "\n", "", `";"`},
		{"# starting a word is a GRUB comment", `GRUB_CMDLINE_LINUX="quiet #debug"` + "\n", "", "comment"},
		{"# starting an unquoted value", "GRUB_CMDLINE_LINUX=#debug\n", "", "comment"},
		{"# inside a word is not", "GRUB_CMDLINE_LINUX=quiet#x\n", "GRUB_CMDLINE_LINUX=\"quiet#x ro init=/sbin/init-overlay\"\n", ""},
		{"single quotes in a double-quoted value", `GRUB_CMDLINE_LINUX="a='b c'"` + "\n", "", `"'"`},
		{"a pipe", `GRUB_CMDLINE_LINUX="a|b"` + "\n", "", `"|"`},
		{"braces", `GRUB_CMDLINE_LINUX="a={b}"` + "\n", "", `"{"`},
		{"escaped double quotes are the kernel's", `GRUB_CMDLINE_LINUX="dyndbg=\"file a.c +p\""` + "\n",
			`GRUB_CMDLINE_LINUX="dyndbg=\"file a.c +p\" ro init=/sbin/init-overlay"` + "\n", ""},
		// Which assignment.
		{"after &&", `[ -e /etc/serial ] && GRUB_CMDLINE_LINUX="console=ttyS0"` + "\n", "", "line of its own"},
		{"inside if", `if true; then GRUB_CMDLINE_LINUX="console=ttyS0"; fi` + "\n", "", "line of its own"},
		{"continued from the line before", "echo \\\nGRUB_CMDLINE_LINUX=\"quiet\"\n", "", "continues line 1"},
		{"a backslash before CRLF escapes the CR", "echo \\\r\nGRUB_CMDLINE_LINUX=\"quiet\"\r\n",
			"echo \\\r\nGRUB_CMDLINE_LINUX=\"quiet ro init=/sbin/init-overlay\"\r\n", ""},
		{"appended after a continued last line", "GRUB_DEFAULT=0 \\\n", "", "continues line 1"},
		{"export with a tab", "export\tGRUB_CMDLINE_LINUX=\"quiet\"\n", "export\tGRUB_CMDLINE_LINUX=\"quiet ro init=/sbin/init-overlay\"\n", ""},
		{"commented out", "# [ -e x ] && GRUB_CMDLINE_LINUX=\"a\"; b \\\nGRUB_CMDLINE_LINUX=\"\"\n",
			"# [ -e x ] && GRUB_CMDLINE_LINUX=\"a\"; b \\\nGRUB_CMDLINE_LINUX=\"ro init=/sbin/init-overlay\"\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Install(Grub, []byte(tt.in))
			if tt.want != "" {
				if err != nil || string(got) != tt.want {
					t.Errorf("Install(%q)\n got %q, %v\nwant %q", tt.in, got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.why) {
				t.Errorf("Install(%q) = %q, %v; want ErrRefused saying %q", tt.in, got, err, tt.why)
			}
			// Uninstall reads the file the same way (it appends nothing).
			if strings.HasPrefix(tt.name, "appended") {
				return
			}
			if _, err := Uninstall(Grub, []byte(tt.in)); !errors.Is(err, ErrRefused) {
				t.Errorf("Uninstall(%q): err = %v, want ErrRefused", tt.in, err)
			}
		})
	}
}
