package marker

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParse(t *testing.T) {
	tests := []struct {
		line string
		want Event
		ok   bool
	}{
		{"RUNPHI-SCENARIO boot START", Event{Kind: Start, Scenario: "boot"}, true},
		{"RUNPHI-SCENARIO boot PASS\r", Event{Kind: Pass, Scenario: "boot"}, true},
		{"RUNPHI-SCENARIO c-d_1.x FAIL exit status 1: no such file", Event{Kind: Fail, Scenario: "c-d_1.x", Reason: "exit status 1: no such file"}, true},
		{"RUNPHI-SCENARIO a SKIP needs jhemu", Event{Kind: Skip, Scenario: "a", Reason: "needs jhemu"}, true},
		{"RUNPHI-SCENARIO a FAIL", Event{Kind: Fail, Scenario: "a"}, true},
		{"[    3.1] cuse: loaded RUNPHI-SCENARIO boot PASS", Event{Kind: Pass, Scenario: "boot"}, true},
		{"RUNPHI-BOOT 1.875", Event{Kind: Boot, Uptime: 1.875}, true},
		{"RUNPHI-DONE", Event{Kind: Done}, true},
		{"RUNPHI-DONE\r", Event{Kind: Done}, true},
		{"RUNPHI-SCENARIO boot PASS extra", Event{}, false},
		{"RUNPHI-SCENARIO boot START now", Event{}, false},
		{"RUNPHI-SCENARIO boot DONE", Event{}, false},
		{"RUNPHI-SCENARIO b/oot PASS", Event{}, false},
		{"RUNPHI-SCENARIO  PASS", Event{}, false},
		{"RUNPHI-BOOT soon", Event{}, false},
		{"RUNPHI-BOOT -1", Event{}, false},
		{"RUNPHI-DONE is what we print", Event{}, false},
		{"hello", Event{}, false},
		{"", Event{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, ok := Parse(tt.line)
			if ok != tt.ok {
				t.Fatalf("Parse(%q) ok = %v, want %v", tt.line, ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

func TestFormatRoundTrip(t *testing.T) {
	tests := []Event{
		{Kind: Boot, Uptime: 2.5},
		{Kind: Start, Scenario: "containerd-smoke"},
		{Kind: Pass, Scenario: "boot"},
		{Kind: Fail, Scenario: "boot", Reason: "module cuse: exec format error"},
		{Kind: Skip, Scenario: "a", Reason: "needs jhemu (not built)"},
		{Kind: Done},
	}
	for _, e := range tests {
		t.Run(e.Kind.String()+e.Scenario, func(t *testing.T) {
			s, err := Format(e)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := Parse(s)
			if !ok {
				t.Fatalf("Parse(Format(%+v) = %q) failed", e, s)
			}
			if diff := cmp.Diff(e, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFormatFlattensReason(t *testing.T) {
	s, err := Format(Event{Kind: Fail, Scenario: "x", Reason: "line one\nRUNPHI-DONE\n  RUNPHI-SCENARIO y PASS"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s, "\n") {
		t.Fatalf("Format output spans lines: %q", s)
	}
	e, ok := Parse(s)
	if !ok || e.Kind != Fail || e.Scenario != "x" {
		t.Fatalf("Parse(%q) = %+v, %v; want FAIL of x", s, e, ok)
	}
	if strings.Contains(e.Reason, "RUNPHI-") {
		t.Errorf("reason %q still carries a marker keyword", e.Reason)
	}
}

func TestFormatRejects(t *testing.T) {
	for _, e := range []Event{
		{Kind: Start, Scenario: ""},
		{Kind: Pass, Scenario: "has space"},
		{Kind: Kind(42)},
	} {
		if s, err := Format(e); err == nil {
			t.Errorf("Format(%+v) = %q, want error", e, s)
		}
	}
}

func TestReport(t *testing.T) {
	lines := []string{
		"Booting Linux",
		"RUNPHI-BOOT 1.9",
		"RUNPHI-SCENARIO boot START",
		"modules loaded",
		"RUNPHI-SCENARIO boot PASS",
		"between scenarios",
		"RUNPHI-SCENARIO smoke START",
		"ctr: connection refused",
		"RUNPHI-SCENARIO smoke FAIL ctr version: exit status 1",
		"RUNPHI-SCENARIO a SKIP needs jhemu",
		"RUNPHI-SCENARIO hang START",
		"still going",
	}
	var r Report
	for i, l := range lines {
		r.Add(Line{At: time.Duration(i) * time.Second, Text: l})
	}
	type summary struct {
		Name   string
		Result Kind
		Reason string
		Dur    time.Duration
		Lines  int
	}
	var got []summary
	for _, s := range r.Scenarios {
		got = append(got, summary{s.Name, s.Result, s.Reason, s.Duration(), len(s.Lines)})
	}
	want := []summary{
		{"boot", Pass, "", 2 * time.Second, 3},
		{"smoke", Fail, "ctr version: exit status 1", 2 * time.Second, 3},
		{"a", Skip, "needs jhemu", 0, 1},
		{"hang", 0, "", 0, 2},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("scenarios mismatch (-want +got):\n%s", diff)
	}
	if !r.Booted || r.BootAt != time.Second || r.BootUptime != 1.9 {
		t.Errorf("boot = %v at %v uptime %v; want true at 1s uptime 1.9", r.Booted, r.BootAt, r.BootUptime)
	}
	if r.Done {
		t.Error("Done set without RUNPHI-DONE")
	}
	if run := r.Running(); run == nil || run.Name != "hang" {
		t.Errorf("Running() = %v, want hang", run)
	}
	if s := r.Lookup("smoke"); s == nil || s.Result != Fail {
		t.Errorf("Lookup(smoke) = %+v", s)
	}
	if len(r.Lines) != len(lines) {
		t.Errorf("kept %d lines, want %d", len(r.Lines), len(lines))
	}
	r.Add(Line{At: 20 * time.Second, Text: "RUNPHI-DONE"})
	if !r.Done || r.Running() != nil {
		t.Errorf("after DONE: Done=%v Running=%v", r.Done, r.Running())
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"RUNPHI-SCENARIO boot START", "RUNPHI-SCENARIO x FAIL why", "RUNPHI-BOOT 1.5", "RUNPHI-DONE",
		"junk RUNPHI-SCENARIO a SKIP b", "RUNPHI-SCENARIO \x00 PASS",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, ok := Parse(line)
		if !ok {
			return
		}
		// Whatever parses must format back to a line that parses the same.
		s, err := Format(e)
		if err != nil {
			t.Fatalf("Parse(%q) = %+v which does not format: %v", line, e, err)
		}
		e2, ok := Parse(s)
		if !ok || e2.Kind != e.Kind || e2.Scenario != e.Scenario {
			t.Fatalf("Parse(%q) = %+v; Format = %q; reparsed %+v, %v", line, e, s, e2, ok)
		}
	})
}
