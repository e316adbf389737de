package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/check"
)

// isJSON reports whether data is cellgen's JSON form rather than a binary
// configuration (which starts with its signature).
func isJSON(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// driverBytes reads a configuration for the driver. Binary files pass
// through byte for byte, as with the C tool, and the client checks them; a
// JSON file is decoded and encoded to the binary form. kind is "cell" or
// "system".
func driverBytes(path, kind string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !isJSON(data) {
		return data, nil
	}
	f, err := cell.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case kind == "system" && f.System != nil:
		data, err = f.System.Marshal()
	case kind == "cell" && f.Cell != nil:
		data, err = f.Cell.Marshal()
	default:
		return nil, fmt.Errorf("%s: %s", path, wrongKind(f, kind))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: encoding: %w", path, err)
	}
	return data, nil
}

func wrongKind(f *cell.File, want string) string {
	have := "cell"
	if f.System != nil {
		have = "system"
	}
	return fmt.Sprintf("this is a %s configuration, not a %s configuration", have, want)
}

// readCellConfig reads a cell configuration in either form and returns the
// model and the binary bytes for the driver.
func readCellConfig(path string) (*cell.Cell, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	f, err := cell.Decode(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.Cell == nil {
		return nil, nil, fmt.Errorf("%s: %s", path, wrongKind(f, "cell"))
	}
	if isJSON(data) {
		if data, err = f.Cell.Marshal(); err != nil {
			return nil, nil, fmt.Errorf("%s: encoding: %w", path, err)
		}
	}
	return f.Cell, data, nil
}

// config dispatches the config subcommands.
func (a *app) config(args []string) error {
	if len(args) == 0 {
		return usagef("config: no subcommand given")
	}
	switch args[0] {
	case "check":
		return a.configCheck(args[1:])
	case "-h", "--help":
		fmt.Fprintln(a.stdout, "Usage: jhctl config check SYSCONFIG [CELLCONFIG ...]")
		return nil
	}
	return usagef("unknown config subcommand %q", args[0])
}

// configCheck validates a system configuration together with the cells
// meant to run beside it, or cell configurations on their own, and prints
// one line per finding. Errors fail the command; warnings do not.
func (a *app) configCheck(args []string) error {
	fs := a.flagSet("config check", "config check SYSCONFIG [CELLCONFIG ...]\n       jhctl config check CELLCONFIG ...")
	if err := parse(fs, args); err != nil {
		return helpDone(err)
	}
	if fs.NArg() == 0 {
		return usagef("config check: no configuration given")
	}
	files := make([]*cell.File, fs.NArg())
	for i, path := range fs.Args() {
		f, err := cell.ReadFile(path)
		if err != nil {
			return err
		}
		if i > 0 && f.Cell == nil {
			return fmt.Errorf("%s: %s", path, wrongKind(f, "cell"))
		}
		files[i] = f
	}

	var findings []check.Finding
	if sys := files[0].System; sys != nil {
		cells := make([]*cell.Cell, 0, len(files)-1)
		for _, f := range files[1:] {
			cells = append(cells, f.Cell)
		}
		findings = check.System(sys, cells...)
	} else {
		for _, f := range files {
			findings = append(findings, check.Cell(f.Cell)...)
		}
	}
	for _, f := range findings {
		fmt.Fprintln(a.stdout, f)
	}
	if n := len(check.Errors(findings)); n > 0 {
		return fmt.Errorf("config check: %d error(s), %d warning(s)", n, len(findings)-n)
	}
	return nil
}

// readFile reads an input file named on the command line. An empty file
// gives an empty, non-nil slice: an empty image, not a missing one.
func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}
