package events

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// jsonStringCases are inputs to appendJSONString, with its exact output.
var jsonStringCases = []struct {
	in, want string
}{
	{"", `""`},
	{"nc", `"nc"`},
	{"swapper/0", `"swapper/0"`},
	{`a"b`, `"a\"b"`},
	{`a\b`, `"a\\b"`},
	{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
	{"\t\n\r", `"\u0009\u000a\u000d"`},
	{"\x1b[2J", `"\u001b[2J"`},
	{"del\x7f", `"del\u007f"`},
	{"\u0085\u009b", `"\u0085\u009b"`},                 // C1 controls
	{"line\u2028para\u2029", `"line\u2028para\u2029"`}, // JavaScript line terminators
	{"café ☕ 𝄞", `"café ☕ 𝄞"`},                         // printable UTF-8 kept
	{"\u202e", "\"\u202e\""},                           // not a control character: kept
	{"\xff", `"\ufffd"`},
	{"a\xc3(b", `"a\ufffd(b"`},               // truncated 2-byte sequence
	{"\xe2\x80", `"\ufffd\ufffd"`},           // truncated 3-byte sequence, one per byte
	{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`}, // a surrogate
	{"\xc0\xaf", `"\ufffd\ufffd"`},           // overlong '/'
	{"\ufffd", "\"\ufffd\""},                 // a real U+FFFD is kept as is
	{"<&>", `"<&>"`},
}

func TestAppendJSONString(t *testing.T) {
	for _, tt := range jsonStringCases {
		got := string(appendJSONString([]byte("prefix:"), []byte(tt.in)))
		if want := "prefix:" + tt.want; got != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", tt.in, got, want)
		}
		checkJSONString(t, []byte(tt.in))
	}
}

// checkJSONString checks that appendJSONString(s) is valid JSON that
// encoding/json decodes to the same string as it decodes its own encoding
// of s to (both replace invalid UTF-8 with U+FFFD, byte by byte).
func checkJSONString(t *testing.T, s []byte) {
	t.Helper()
	enc := appendJSONString(nil, s)
	if !json.Valid(enc) {
		t.Fatalf("appendJSONString(%q) = %s: invalid JSON", s, enc)
	}
	if !utf8.Valid(enc) {
		t.Fatalf("appendJSONString(%q) = %q: invalid UTF-8", s, enc)
	}
	var got string
	if err := json.Unmarshal(enc, &got); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", enc, err)
	}
	ref, err := json.Marshal(string(s))
	if err != nil {
		t.Fatal(err)
	}
	var want string
	if err := json.Unmarshal(ref, &want); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("appendJSONString(%q) = %s decodes to %q; encoding/json's %s decodes to %q", s, enc, got, ref, want)
	}
	if utf8.Valid(s) && got != string(s) {
		t.Fatalf("appendJSONString(%q) = %s decodes to %q, not the input", s, enc, got)
	}
	for _, c := range enc {
		if c < 0x20 || c == 0x7f {
			t.Fatalf("appendJSONString(%q) = %q holds control byte %#x", s, enc, c)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, tt := range jsonStringCases {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		checkJSONString(t, s)
	})
}

func TestAppendPrintable(t *testing.T) {
	tests := []struct {
		in, want string
		n        int
	}{
		{"", "", 0},
		{"nc", "nc", 2},
		{"Web Content", "Web Content", 11},
		{"\x1b]0;pwned\a", "?]0;pwned?", 10},
		{"a\x00b\x7fc", "a?b?c", 5},
		{"\xff\xfe", "??", 2},
		{"\xe2\x80", "??", 2},
		{"\u009b31m", "?31m", 4},              // C1 CSI
		{"ab\u202ecd", "ab?cd", 5},            // bidi override
		{"zero\u200bwidth", "zero?width", 10}, // zero-width space
		{"café", "café", 4},
		{"日本語", "日本語", 3},
	}
	for _, tt := range tests {
		got, n := appendPrintable([]byte(">"), []byte(tt.in))
		if string(got) != ">"+tt.want || n != tt.n {
			t.Errorf("appendPrintable(%q) = %q, %d; want %q, %d", tt.in, got[1:], n, tt.want, tt.n)
		}
	}
}
