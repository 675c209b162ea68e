package reconcile

import (
	"bytes"
	"encoding/json"
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
		{"after -c", func(in *Input) { in.PrintedNS, in.Unprinted = 4, 6 }, true, true, []string{"6 more captured after the -c limit"}},
		{"no icmp hooks", func(in *Input) { in.ICMP6Known = false }, true, true, []string{"(replies not visible on this kernel)"}},
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
