//go:build runphi_emu

package main

import (
	"path/filepath"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/jhctl/emu"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
	"github.com/runphi-go/runphi/runphi/config"
)

// EmuDirEnv names an emulator directory (emu.InitDir). When it is set, a
// runphi built with -tags runphi_emu drives that emulated hypervisor, shared
// with the other processes using the directory, instead of the driver.
const EmuDirEnv = "RUNPHI_EMU_DIR"

// newHypervisor returns the emulated hypervisor of $RUNPHI_EMU_DIR if set,
// else the driver at the configured paths (which may be an emulated device
// node too).
func newHypervisor(cfg config.Config, getenv func(string) string) *jailhouse.Client {
	dir := getenv(EmuDirEnv)
	if dir == "" {
		return jailhouse.New(jailhouse.Paths{Device: cfg.JailhouseDevice, Sysfs: cfg.JailhouseSysfs})
	}
	// The boards are arm64; the emulator runs them on any host.
	return jailhouse.New(jailhouse.Paths{Device: "emu", Sysfs: filepath.Join(dir, "sysfs")},
		jailhouse.WithOpener(emu.Opener(dir)), jailhouse.WithArch(cell.ArchARM64))
}

// emulated reports whether this binary has the emulator compiled in.
const emulated = true
