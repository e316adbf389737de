//go:build !linux

package jailhouse

import (
	"fmt"
	"os"
	"runtime"
)

// OpenDevice fails: the jailhouse driver exists only on Linux. The error
// wraps os.ErrNotExist so callers report a missing driver.
func OpenDevice(path string) (Device, error) {
	return nil, fmt.Errorf("open %s: jailhouse is not available on %s: %w", path, runtime.GOOS, os.ErrNotExist)
}
