package events

import (
	"unicode"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// appendJSONString appends s to dst as a quoted JSON string (RFC 8259).
// Task and interface names are chosen by whoever runs the task or makes the
// device, so s may hold anything:
//   - '"' and '\' are escaped as \" and \\;
//   - control characters (C0, DEL and C1, U+0000-U+001F, U+007F-U+009F) and
//     U+2028, U+2029 become \u00XX or \u20XX, so that no raw escape
//     sequence reaches a terminal and the line stays valid JavaScript;
//   - each byte that is not part of valid UTF-8 becomes \ufffd, as
//     encoding/json does, so the output is always valid UTF-8.
//
// Everything else is copied as is.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is pending, to copy unchanged
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r <= 0x9f || r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u',
				hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendPrintable appends s for display on a terminal: printable ASCII and
// valid UTF-8 runes that unicode.IsPrint accepts are copied; every other
// rune, and every byte of invalid UTF-8, becomes one '?'. So a task that
// names itself "\x1b]0;pwned\a" cannot send escape sequences to whoever
// reads udptrace's output, nor reorder it with bidirectional controls.
// It returns the extended slice and how many characters it appended.
func appendPrintable(dst, s []byte) ([]byte, int) {
	n := 0
	for i := 0; i < len(s); n++ {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				c = '?'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if (r == utf8.RuneError && size == 1) || !unicode.IsPrint(r) {
			dst = append(dst, '?')
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst, n
}
