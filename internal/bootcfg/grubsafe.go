package bootcfg

import (
	"fmt"
	"strings"
)

// /etc/default/grub is a shell script that grub-mkconfig sources, and
// grub-mkconfig then writes GRUB_CMDLINE_LINUX, unquoted, onto each
// `linux /vmlinuz-... root=... ro ...` line of grub.cfg, which GRUB's own
// shell-like parser reads (grub-core/script/yylex.l). So the text of the
// value goes through two shells before the kernel sees it. Install edits
// the text as kernel parameters; that is right only when both shells hand
// the text on as it is, and when the assignment edited is the one the
// shell keeps. grubSafe and grubLineSafe refuse the rest.

// grubMeta are the bytes GRUB's parser acts on in a word of grub.cfg: a
// `;` ends the linux command, so whatever follows it (init=/sbin/init-overlay
// included) never reaches the kernel; `&`, `|`, `<`, `>` are operators; `{`
// `}` group; `$` expands a GRUB variable; `\` escapes and `'` quotes. The
// kernel's own double quotes are GRUB's too, and pass.
const grubMeta = ";&|<>{}$\\'`"

// grubSafe refuses an assignment whose edit would not do what it says: text
// after the value that is another command or joins the value, and a value
// that either shell would change.
func grubSafe(g grubValue, name string) error {
	if err := grubAfterSafe(g.after); err != nil {
		return grubRefusal(name, err)
	}
	if err := grubValueSafe(g.val, g.quote, name); err != nil {
		return grubRefusal(name, err)
	}
	return nil
}

func grubRefusal(name string, why error) error {
	return fmt.Errorf("%w: cannot safely edit %s: %v; write it on a line of its own as %s=\"...\" holding kernel parameters only, and retry (or add `ro %s` to it by hand)", ErrRefused, name, why, name, initParam)
}

// grubAfterSafe accepts, after the closing quote: nothing, blanks, one `;`
// ending the command, and a comment. A `#` right after the quote is not a
// comment but more of the value; a word is a command run with the
// assignment in its environment only; another command after `;` may change
// the variable again.
func grubAfterSafe(after string) error {
	if after != "" && after[0] != ' ' && after[0] != '\t' && after[0] != ';' {
		return fmt.Errorf("%q right after the closing quote joins the value", after)
	}
	a := strings.TrimLeft(after, " \t")
	a, _ = strings.CutPrefix(a, ";")
	if a = strings.TrimLeft(a, " \t"); a != "" && a[0] != '#' {
		return fmt.Errorf("%q follows the assignment on its line", strings.TrimSpace(after))
	}
	return nil
}

// grubValueSafe refuses a value whose text is not what the kernel gets.
// Inside double quotes the shell expands `$`, backquotes and backslashes;
// the one expansion allowed is $NAME or ${NAME} as a word of its own, the
// value so far, which holds what earlier assignments (checked alike) set.
// A \" is a double quote, which GRUB and the kernel read as quoting.
func grubValueSafe(val, quote, name string) error {
	if quote == `"` {
		if strings.Contains(val, "`") {
			return fmt.Errorf("it holds a command substitution (`...`), whose output is not known here")
		}
		for i := 0; i < len(val); i++ {
			if val[i] == '\\' {
				if i+1 < len(val) && val[i+1] == '"' {
					i++
					continue
				}
				return fmt.Errorf("it holds a backslash, which the shell or GRUB would take as an escape")
			}
		}
	}
	fs, _, err := splitFields(val)
	if err != nil {
		return err
	}
	for _, f := range fs {
		tok := f.tok
		if quote == `"` {
			if tok == "$"+name || tok == "${"+name+"}" {
				continue
			}
			tok = strings.ReplaceAll(tok, `\"`, `"`)
		}
		if strings.Contains(tok, "$") {
			return fmt.Errorf("%q holds a $: the shell or GRUB would expand it, and what the kernel gets is not known here", tok)
		}
		if tok[0] == '#' {
			return fmt.Errorf("%q starts a comment on grub.cfg's linux line, and GRUB would drop it and what follows", tok)
		}
		if i := strings.IndexAny(tok, grubMeta); i >= 0 {
			return fmt.Errorf("%q holds %q, which GRUB's parser acts on in grub.cfg's linux line, where grub-mkconfig copies the value unquoted", tok, tok[i:i+1])
		}
	}
	return nil
}

// grubLineSafe refuses line i of ls (which assigns no NAME at its start)
// when it assigns NAME elsewhere: after another command, inside an `if`, in
// an `&&` list. The shell may keep that value, and install, finding no
// assignment it can edit, would add one that throws it away.
func grubLineSafe(ls []line, i int, name string) error {
	text := ls[i].text
	if t := strings.TrimLeft(text, " \t"); t == "" || t[0] == '#' {
		return nil
	}
	for off := 0; ; {
		j := strings.Index(text[off:], name)
		if j < 0 {
			return nil
		}
		j += off
		off = j + len(name)
		rest := text[off:]
		if (j > 0 && isIdent(text[j-1])) || !(strings.HasPrefix(rest, "=") || strings.HasPrefix(rest, "+=")) {
			continue
		}
		return fmt.Errorf("%w: line %d assigns %s inside another command (%q), which overlayupd cannot edit safely; put the assignment on a line of its own, as %s=\"...\", and retry", ErrRefused, i+1, name, strings.TrimSpace(text), name)
	}
}

// grubContinued refuses an assignment on line i that continues line i-1
// (which ends with an unescaped backslash): it is then part of whatever
// command that line starts, e.g. an argument of echo.
func grubContinued(ls []line, i int) error {
	if i == 0 {
		return nil
	}
	prev := ls[i-1].text
	if t := strings.TrimLeft(prev, " \t"); (t != "" && t[0] == '#') || ls[i-1].eol == "\r\n" {
		return nil // a backslash ends a comment, not a command; before \r it escapes the \r
	}
	n := len(prev) - len(strings.TrimRight(prev, "\\"))
	if n%2 == 0 {
		return nil
	}
	return fmt.Errorf("%w: line %d continues line %d, which ends with a backslash, so its assignment belongs to that line's command; join or split the lines so that the assignment starts its own command, and retry", ErrRefused, i+1, i)
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
