package marker

import "time"

// Line is one console line with the time the host received it, relative to
// the start of the VM.
type Line struct {
	At   time.Duration
	Text string
}

// Scenario is what the console said about one scenario.
type Scenario struct {
	Name   string
	Result Kind // Pass, Fail or Skip; zero while the scenario has not ended
	Reason string
	Start  time.Duration // when START was seen (or the end marker, without START)
	End    time.Duration // when the end marker was seen
	Lines  []Line        // console lines from START up to and including the end marker
}

// Duration is the host-side time between the scenario's START and its end.
func (s *Scenario) Duration() time.Duration {
	if s.Result == 0 {
		return 0
	}
	return s.End - s.Start
}

// Report accumulates console lines into per-scenario results. The zero value
// is ready to use.
type Report struct {
	Booted     bool
	BootAt     time.Duration // host time of the RUNPHI-BOOT marker
	BootUptime float64       // guest uptime reported in that marker, in seconds
	Done       bool          // RUNPHI-DONE was seen
	Scenarios  []*Scenario   // in the order they started
	Lines      []Line        // every line

	current *Scenario
}

// Add records one console line.
func (r *Report) Add(l Line) {
	r.Lines = append(r.Lines, l)
	if r.current != nil {
		r.current.Lines = append(r.current.Lines, l)
	}
	e, ok := Parse(l.Text)
	if !ok {
		return
	}
	switch e.Kind {
	case Boot:
		r.Booted, r.BootAt, r.BootUptime = true, l.At, e.Uptime
	case Done:
		r.Done = true
		r.current = nil
	case Start:
		s := &Scenario{Name: e.Scenario, Start: l.At, Lines: []Line{l}}
		r.Scenarios = append(r.Scenarios, s)
		r.current = s
	case Pass, Fail, Skip:
		s := r.current
		if s == nil || s.Name != e.Scenario {
			// An end without its START still reports a result.
			s = &Scenario{Name: e.Scenario, Start: l.At, Lines: []Line{l}}
			r.Scenarios = append(r.Scenarios, s)
		}
		s.Result, s.Reason, s.End = e.Kind, e.Reason, l.At
		r.current = nil
	}
}

// Lookup returns the last scenario named name, or nil.
func (r *Report) Lookup(name string) *Scenario {
	for i := len(r.Scenarios) - 1; i >= 0; i-- {
		if r.Scenarios[i].Name == name {
			return r.Scenarios[i]
		}
	}
	return nil
}

// Running returns the scenario that started but has not ended, or nil.
func (r *Report) Running() *Scenario { return r.current }
