package emu

import (
	"encoding/json"
	"errors"
	"fmt"
)

// stateVersion identifies the layout of a saved state.
const stateVersion = 1

type savedState struct {
	Version int `json:"version"`
	state
}

// MarshalState returns the hypervisor's complete state as JSON.
func (h *Hypervisor) MarshalState() ([]byte, error) {
	return json.MarshalIndent(savedState{Version: stateVersion, state: h.st}, "", " ")
}

// UnmarshalState restores a hypervisor saved with MarshalState. The state
// is checked for consistency, so a damaged file is an error, not a panic
// later.
func UnmarshalState(data []byte) (*Hypervisor, error) {
	var s savedState
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("emulator state: %w", err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("emulator state: version %d, want %d", s.Version, stateVersion)
	}
	h := &Hypervisor{st: s.state}
	if err := h.restore(); err != nil {
		return nil, fmt.Errorf("emulator state: %w", err)
	}
	return h, nil
}

// restore rebuilds the decoded configurations and checks invariants.
func (h *Hypervisor) restore() error {
	st := &h.st
	if len(st.Console.Content) != consoleSize || len(st.Last.Console.Content) != consoleSize {
		return errors.New("console ring is not 2048 bytes")
	}
	if st.System != nil {
		sys, err := parseSystemConfig(st.System)
		if err != nil {
			return fmt.Errorf("system configuration: %w", err)
		}
		st.sys = sys
	}
	if st.Possible < 0 || st.Possible > 1<<15 || len(st.CPUs) != st.Possible {
		return fmt.Errorf("%d CPU records for %d possible CPUs", len(st.CPUs), st.Possible)
	}
	if st.Enabled && (st.sys == nil || len(st.Cells) == 0 || st.Cells[0].ID != 0) {
		return errors.New("enabled without system configuration or root cell")
	}
	if !st.Enabled && len(st.Cells) > 0 {
		return errors.New("cells while disabled")
	}
	seen := map[int]bool{}
	for i, c := range st.Cells {
		if c == nil || seen[c.ID] || c.ID < 0 {
			return fmt.Errorf("cell %d: missing or duplicate id", i)
		}
		seen[c.ID] = true
		cfg, err := parseCellConfig(c.Config)
		if err != nil {
			return fmt.Errorf("cell %d: %w", c.ID, err)
		}
		c.cfg = cfg
		if !c.State.Known() {
			return fmt.Errorf("cell %d: unknown state %q", c.ID, c.State)
		}
	}
	return nil
}
