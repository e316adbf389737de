//go:build linux

package cuse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// DevicePath is the CUSE control device.
const DevicePath = "/dev/cuse"

// Serve opens /dev/cuse and serves the device until ctx is cancelled (then
// it returns nil; the kernel removes /dev/NAME when the server's file is
// closed) or the connection fails.
func Serve(ctx context.Context, cfg Config, h Handler) error {
	f, err := os.OpenFile(DevicePath, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w (load the fuse and cuse kernel modules)", err)
		}
		return err
	}
	return ServeConn(ctx, f, cfg, h)
}
