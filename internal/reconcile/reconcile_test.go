package reconcile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestReconcile(t *testing.T) {
	base := Input{Duration: 2 * time.Second, Netns: 42, Printed: 12, PrintedNS: 10, PassedNS: 10,
		Seen4: 7, Seen6: 3, ICMP4Sent: 7, ICMP6Sent: 3, ICMP4Known: true, ICMP6Known: true,
		NoPorts: 7, Udp6NoPorts: 3, OutType3: 9, Icmp6OutDestUnreach: 3}
	for _, tc := range []struct {
		name            string
		mod             func(*Input)
		match, complete bool
		text            []string
	}{
		{"exact", func(*Input) {}, true, true, []string{"result: MATCH - ", "Udp NoPorts                       7            7  match", "also counts other"}},
		{"lost", func(in *Input) { in.Lost, in.LostNS, in.PrintedNS = 2, 2, 8 }, true, false, []string{"MATCH, INCOMPLETE", "lost in the ring buffer: 2 (2 from this netns)"}},
		{"missed", func(in *Input) { in.Seen6 = 2 }, false, true, []string{"result: MISMATCH", "Udp6NoPorts                       3            2  DIFFER"}},
		{"after -c", func(in *Input) { in.PrintedNS, in.Unprinted = 4, 6 }, true, true, []string{"6 more captured but not printed (after the -c limit, or once output stopped)"}},
		{"no icmp hooks", func(in *Input) { in.ICMP6Known = false }, true, true, []string{"(replies not visible here)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			tc.mod(&in)
			r := Reconcile(in)
			if r.Match != tc.match || r.Complete != tc.complete {
				t.Errorf("match %v complete %v, want %v %v", r.Match, r.Complete, tc.match, tc.complete)
			}
			var b bytes.Buffer
			if err := r.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.text {
				if !strings.Contains(b.String(), want) {
					t.Errorf("text lacks %q:\n%s", want, b.String())
				}
			}
			var j map[string]any
			if err := json.Unmarshal(r.AppendJSON(nil), &j); err != nil {
				t.Fatalf("summary JSON: %v", err)
			}
			if j["type"] != "summary" || j["match"] != tc.match || j["complete"] != tc.complete ||
				j["udp_noports"] != float64(in.NoPorts) || j["seen_ipv6"] != float64(in.Seen6) || j["lost"] != float64(in.Lost) {
				t.Errorf("summary JSON %v", j)
			}
		})
	}
}

// TestParseJSON: the summary line parses back to the Report, whose text
// and JSON are the same again; durations round to the millisecond in both.
func TestParseJSON(t *testing.T) {
	in := Input{Duration: 3*time.Second + 2*time.Millisecond, Netns: 4026531833, Printed: 12, PrintedNS: 10,
		Unprinted: 3, Lost: 5, LostNS: 4, PassedNS: 17, Seen4: 7, Seen6: 3, ICMP4Sent: 6, ICMP6Sent: 2,
		ICMP4Known: true, ICMP6Known: false, NoPorts: 8, Udp6NoPorts: 3, OutType3: 9, Icmp6OutDestUnreach: 4,
		RateLimited4: 1, RateLimited6: 1, OutRateLimit4: 2, OutRateLimit6: 1, RateLimitsKnown: true}
	max := Input{Duration: 1<<63 - 1, Netns: 1<<32 - 1, Printed: 1<<64 - 1, Seen4: 1<<64 - 1, NoPorts: 1<<64 - 1}
	for _, r := range []Report{Reconcile(in), Reconcile(Input{}), {Input: in, Match: true, Complete: false}, Reconcile(max)} {
		line := append(r.AppendJSON(nil), '\n')
		got, err := ParseJSON(line)
		if err != nil {
			t.Fatalf("ParseJSON(%s): %v", line, err)
		}
		want := r
		want.Duration = r.Duration.Round(time.Millisecond)
		if max := time.Duration(1<<63 - 1); r.Duration == max {
			want.Duration = max / time.Millisecond * time.Millisecond
		}
		if got != want {
			t.Errorf("ParseJSON(%s)\n got %+v\nwant %+v", line, got, want)
		}
		if again := append(got.AppendJSON(nil), '\n'); string(again) != string(line) {
			t.Errorf("JSON again\n got %s\nwant %s", again, line)
		}
		var text, textAgain bytes.Buffer
		if err := r.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		if err := got.WriteText(&textAgain); err != nil {
			t.Fatal(err)
		}
		if text.String() != textAgain.String() && r.Duration != max.Duration {
			t.Errorf("text again\n got %s\nwant %s", textAgain.String(), text.String())
		}
	}

	// duration_s is the duration WriteText prints, halves included.
	for d, want := range map[time.Duration]string{
		0: "0.000", 499_999: "0.000", 500_000: "0.001", 1_999_500_000: "2.000", 3_002_500_000: "3.003",
		3_002_499_999: "3.002", 59*time.Second + 999_499_999: "59.999", 100 * time.Hour: "360000.000",
	} {
		r := Report{Input: Input{Duration: d}}
		line := r.AppendJSON(nil)
		if !strings.HasPrefix(string(line), `{"type":"summary","duration_s":`+want+`,"netns":0,`) {
			t.Errorf("%v: %s, want duration_s %s", d, line, want)
		}
		var text bytes.Buffer
		r.WriteText(&text)
		got, err := ParseJSON(line)
		if err != nil {
			t.Fatal(err)
		}
		if prefix := fmt.Sprintf("--- udptrace summary: %s,", got.Duration); !strings.HasPrefix(text.String(), prefix) {
			t.Errorf("%v: text %q, JSON %s -> %v", d, text.String(), want, got.Duration)
		}
	}
}

func TestParseJSONErrors(t *testing.T) {
	line := string(Reconcile(Input{Duration: time.Second, NoPorts: 1, Seen4: 1}).AppendJSON(nil))
	sub := func(old, new string) string {
		if !strings.Contains(line, old) {
			t.Fatalf("%q not in %s", old, line)
		}
		return strings.Replace(line, old, new, 1)
	}
	for _, tc := range []struct{ in, want string }{
		{"", "summary: unexpected end of JSON input"},
		{"[1]", "summary: json: cannot unmarshal array"},
		{line + " {}", "summary: invalid character '{' after top-level value"},
		{`{}`, `summary: missing key "type"`},
		{sub(`"type":"summary"`, `"type":"event"`), `not a summary: type "event"`},
		{sub(`"type":"summary"`, `"type":7`), `summary: key "type": cannot unmarshal number into Go value of type string`},
		{sub(`,"complete":true`, ``), `summary: missing key "complete"`},
		{sub(`"netns":0`, `"netns":4294967296`), `summary: key "netns": cannot unmarshal number 4294967296 into Go value of type uint32`},
		{sub(`"printed":0`, `"printed":-1`), `summary: key "printed": cannot unmarshal number -1 into Go value of type uint64`},
		{sub(`"printed":0`, `"printed":1.5`), `summary: key "printed": cannot unmarshal number 1.5 into Go value of type uint64`},
		{sub(`"printed":0`, `"printed":null`), `summary: key "printed": null`},
		{sub(`"match":true`, `"match":"yes"`), `summary: key "match": cannot unmarshal string into Go value of type bool`},
		{sub(`"duration_s":1.000`, `"duration_s":-1`), `summary: key "duration_s": -1 is not a duration in seconds`},
		{sub(`"duration_s":1.000`, `"duration_s":1e300`), `summary: key "duration_s": 1e+300 is not a duration in seconds`},
	} {
		_, err := ParseJSON([]byte(tc.in))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseJSON(%s): %v, want one line starting with %q", tc.in, err, tc.want)
		}
	}
	// Unknown keys are ignored, anywhere.
	r, err := ParseJSON([]byte(`{"new":[1,{"a":null}],` + line[1:len(line)-1] + `,"newer":"x"}`))
	if err != nil || !r.Match || r.NoPorts != 1 || r.Duration != time.Second {
		t.Errorf("with unknown keys: %+v, %v", r, err)
	}
}
