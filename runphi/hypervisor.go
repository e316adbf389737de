//go:build !runphi_emu

package main

import (
	"github.com/runphi-go/runphi/jhctl/jailhouse"
	"github.com/runphi-go/runphi/runphi/config"
)

// newHypervisor returns the client of the Jailhouse driver at the
// configured paths. Binaries built with -tags runphi_emu may use the
// emulated hypervisor instead (hypervisor_emu.go); production binaries
// never contain it.
func newHypervisor(cfg config.Config, _ func(string) string) *jailhouse.Client {
	return jailhouse.New(jailhouse.Paths{Device: cfg.JailhouseDevice, Sysfs: cfg.JailhouseSysfs})
}

// emulated reports whether this binary has the emulator compiled in.
const emulated = false
