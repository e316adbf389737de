package main

import (
	"strings"
	"testing"
)

func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		code  int
		out   string // substring of stdout
	}{
		{"system with the linux demo", []string{qemuSystemJSON, qemuLinuxDemoJSON}, 0, ""},
		{"cell on its own", []string{qemuInmateJSON}, 0, ""},
		// The zephyr demo takes the linux demo's RAM.
		{"overlapping cells", []string{qemuSystemJSON, qemuLinuxDemoJSON, "../boards/qemu-arm64/demos/zephyr-demo.json"}, 1,
			"error: cell \"qemu-arm64-zephyr-demo\": memory region 11: overlaps"},
		{"system config given as a cell", []string{qemuSystemJSON, qemuSystemJSON}, 1, ""},
		{"missing file", []string{"nonexistent.json"}, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			out, errOut, code := h.run(append([]string{"config", "check"}, tt.files...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			if !strings.Contains(out, tt.out) {
				t.Errorf("stdout lacks %q:\n%s", tt.out, out)
			}
			if code == 0 && strings.Contains(out, "error:") {
				t.Errorf("exit 0 with errors:\n%s", out)
			}
		})
	}
	h := newHarness(t)
	if _, _, code := h.run("config", "check"); code != 2 {
		t.Errorf("config check without files: exit %d, want 2", code)
	}
}
