// Package marker is the line protocol between the guest's init and the host
// harness. The guest prints one marker per line on the serial console:
//
//	RUNPHI-BOOT <guest uptime in seconds>
//	RUNPHI-SCENARIO <name> START
//	RUNPHI-SCENARIO <name> PASS
//	RUNPHI-SCENARIO <name> FAIL <reason>
//	RUNPHI-SCENARIO <name> SKIP <reason>
//	RUNPHI-DONE
//
// and the host parses them back into events. A marker may be preceded by
// other text on the same line (a kernel message can be interleaved on the
// console), so Parse looks for the keyword anywhere in the line.
package marker

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is the type of a marker.
type Kind int

// Marker kinds.
const (
	Boot  Kind = iota + 1 // the guest's init started
	Start                 // a scenario started
	Pass                  // a scenario passed
	Fail                  // a scenario failed
	Skip                  // a scenario was skipped
	Done                  // every selected scenario has ended
)

// scenarioKinds are the kinds of RUNPHI-SCENARIO markers.
func scenarioKinds() []Kind { return []Kind{Start, Pass, Fail, Skip} }

func (k Kind) String() string {
	switch k {
	case Boot:
		return "BOOT"
	case Done:
		return "DONE"
	case Start:
		return "START"
	case Pass:
		return "PASS"
	case Fail:
		return "FAIL"
	case Skip:
		return "SKIP"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one parsed marker.
type Event struct {
	Kind     Kind
	Scenario string  // Start, Pass, Fail, Skip
	Reason   string  // Fail and Skip (may be empty)
	Uptime   float64 // Boot: guest uptime in seconds
}

const (
	bootWord     = "RUNPHI-BOOT"
	scenarioWord = "RUNPHI-SCENARIO"
	doneWord     = "RUNPHI-DONE"
)

// ValidName reports whether name can be used as a scenario name: non-empty,
// at most 64 bytes of letters, digits, '-', '_' and '.'.
func ValidName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}

// Format renders e as a console line without the newline. The reason is
// flattened onto one line so that it cannot forge further markers.
func Format(e Event) (string, error) {
	switch e.Kind {
	case Boot:
		return fmt.Sprintf("%s %.3f", bootWord, e.Uptime), nil
	case Done:
		return doneWord, nil
	case Start, Pass, Fail, Skip:
		if !ValidName(e.Scenario) {
			return "", fmt.Errorf("marker %v: invalid scenario name %q", e.Kind, e.Scenario)
		}
		s := scenarioWord + " " + e.Scenario + " " + e.Kind.String()
		if r := oneLine(e.Reason); r != "" && e.Kind != Start && e.Kind != Pass {
			s += " " + r
		}
		return s, nil
	}
	return "", fmt.Errorf("marker: unknown kind %v", e.Kind)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	// A reason quoting a marker keyword must not read as a second marker.
	for _, w := range []string{scenarioWord, bootWord, doneWord} {
		s = strings.ReplaceAll(s, w, strings.ToLower(w))
	}
	return s
}

// Parse returns the marker in line, if any. Trailing carriage returns and
// spaces are ignored.
func Parse(line string) (Event, bool) {
	line = strings.TrimRight(line, "\r\n \t")
	if i := strings.Index(line, scenarioWord+" "); i >= 0 {
		return parseScenario(line[i+len(scenarioWord)+1:])
	}
	if i := strings.Index(line, bootWord+" "); i >= 0 {
		f := strings.Fields(line[i+len(bootWord):])
		if len(f) != 1 {
			return Event{}, false
		}
		up, err := strconv.ParseFloat(f[0], 64)
		if err != nil || up < 0 {
			return Event{}, false
		}
		return Event{Kind: Boot, Uptime: up}, true
	}
	if strings.HasSuffix(line, doneWord) {
		return Event{Kind: Done}, true
	}
	return Event{}, false
}

func parseScenario(rest string) (Event, bool) {
	name, rest, _ := strings.Cut(rest, " ")
	if !ValidName(name) {
		return Event{}, false
	}
	word, reason, _ := strings.Cut(rest, " ")
	for _, k := range scenarioKinds() {
		if k.String() != word {
			continue
		}
		if (k == Start || k == Pass) && reason != "" {
			return Event{}, false
		}
		return Event{Kind: k, Scenario: name, Reason: strings.TrimSpace(reason)}, true
	}
	return Event{}, false
}
