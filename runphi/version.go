package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runphi-go/runphi/internal/version"
)

// printVersion prints runc's three version lines (go-runc parses "commit:"
// and "spec:"; scripts read the first word to tell runphi from runc),
// then the Go version and the runc that runphi forwards to.
func (c *call) printVersion(ctx context.Context) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "runphi version %s\n", version.String())
	if rev := commit(); rev != "" {
		fmt.Fprintf(&sb, "commit: %s\n", rev)
	}
	fmt.Fprintf(&sb, "spec: %s\ngo: %s\n", specs.Version, runtime.Version())
	fmt.Fprintf(&sb, "runc: %s\n", c.runcVersion(ctx))
	if emulated {
		sb.WriteString("jailhouse: emulator compiled in (runphi_emu build)\n")
	}
	_, err := c.stdout.Write([]byte(sb.String()))
	return err
}

// runcVersion describes the runc runphi forwards to, by path and the first
// line of its --version.
func (c *call) runcVersion(ctx context.Context) string {
	path, err := c.resolver.Resolve(c.cfg.Runc)
	if err != nil {
		return "unavailable: " + err.Error()
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return path + " (--version failed: " + err.Error() + ")"
	}
	first, _, _ := strings.Cut(out.String(), "\n")
	return path + " (" + strings.TrimSpace(first) + ")"
}

// commit returns the VCS revision the binary was built from, if recorded.
func commit() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, dirty := "", ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}
