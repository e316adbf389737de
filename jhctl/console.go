package main

import (
	"errors"
	"io"
)

// console copies the hypervisor console to stdout: what is buffered, or,
// with -f, everything until interrupted.
func (a *app) console(args []string) (err error) {
	fs := a.flagSet("console", "console [-f | --follow]")
	follow := fs.BoolP("follow", "f", false, "keep printing new console output until interrupted")
	if err := parse(fs, args); err != nil {
		return helpDone(err)
	}
	if fs.NArg() != 0 {
		return usagef("console: unexpected argument %q", fs.Arg(0))
	}
	r, err := a.client().Console(*follow)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, r.Close()) }()
	// The driver hands out at most 128 bytes per read; write each chunk
	// at once so -f output appears as it arrives.
	buf := make([]byte, 128)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, werr := a.stdout.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
