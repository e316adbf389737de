// Package version reports the version of runphi's binaries. Packagers set
// it at link time:
//
//	go build -ldflags "-X github.com/runphi-go/runphi/internal/version.version=1.2.3"
//
// Without that, the module version from the build information is used.
package version

import "runtime/debug"

// version is written only by the linker (-X), never at run time.
var version string

// String returns the version: the link-time value, else the module version
// or VCS revision recorded by the Go toolchain, else "devel".
func String() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	return "devel"
}
