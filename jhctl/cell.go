package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

const refSynopsis = "{ ID | [--name] NAME }"

// cellCreate creates a cell from a configuration; like the C tool it prints
// nothing.
func (a *app) cellCreate(args []string) error {
	fs := a.flagSet("cell create", "cell create CELLCONFIG")
	if err := parse(fs, args); err != nil {
		return helpDone(err)
	}
	if fs.NArg() != 1 {
		return usagef("cell create: expected one cell configuration, got %d arguments", fs.NArg())
	}
	data, err := driverBytes(fs.Arg(0), "cell")
	if err != nil {
		return err
	}
	_, err = a.client().CreateCell(data)
	return err
}

// cellSimple runs a command that takes only a cell: start, shutdown,
// destroy.
func (a *app) cellSimple(verb string, args []string, op func(*jailhouse.Client, jailhouse.CellRef) error) error {
	fs := a.flagSet("cell "+verb, "cell "+verb+" "+refSynopsis)
	name := fs.String("name", "", "address the cell by `NAME`, also when it looks like a number")
	if err := parse(fs, args); err != nil {
		return helpDone(err)
	}
	ref, err := refFromFlags(fs, *name)
	if err != nil {
		return err
	}
	return op(a.client(), ref)
}

// refFromFlags reads the cell argument of a command with a --name flag:
// either --name NAME or one positional ID or NAME.
func refFromFlags(fs *pflag.FlagSet, name string) (jailhouse.CellRef, error) {
	var (
		ref jailhouse.CellRef
		err error
	)
	switch {
	case fs.Changed("name") && fs.NArg() == 0:
		ref, err = jailhouse.ByName(name)
	case !fs.Changed("name") && fs.NArg() == 1:
		ref, err = jailhouse.ParseCellRef(fs.Arg(0))
	case fs.NArg() == 0:
		return ref, usagef("%s: no cell given", fs.Name())
	default:
		return ref, usagef("%s: expected one cell, got %q", fs.Name(), fs.Args())
	}
	if err != nil {
		return ref, usagef("%s: %v", fs.Name(), err)
	}
	return ref, nil
}

// imageArg is one image of a cell load command line.
type imageArg struct {
	// Source is the file to load, or the string itself for -s.
	Source   string
	IsString bool
	Address  uint64
}

// loadArgs is a parsed cell load command line.
type loadArgs struct {
	Ref    jailhouse.CellRef
	Images []imageArg
}

// parseLoadArgs reads `cell load` arguments the way the C tool does: the
// cell (ID, NAME or --name NAME), then images, each a file or -s STRING,
// each optionally followed by -a ADDRESS (C integer syntax) for that image
// alone. The order matters, so this is parsed by hand, not with pflag.
func parseLoadArgs(args []string) (loadArgs, error) {
	var la loadArgs
	if len(args) == 0 {
		return la, usagef("cell load: no cell given")
	}
	i := 1
	var err error
	switch {
	case args[0] == "--name":
		if len(args) < 2 {
			return la, usagef("cell load: --name needs a cell name")
		}
		la.Ref, err = jailhouse.ByName(args[1])
		i = 2
	case strings.HasPrefix(args[0], "--name="):
		la.Ref, err = jailhouse.ByName(strings.TrimPrefix(args[0], "--name="))
	default:
		la.Ref, err = jailhouse.ParseCellRef(args[0])
	}
	if err != nil {
		return la, usagef("cell load: %v", err)
	}
	if i == len(args) {
		return la, usagef("cell load: no image given")
	}
	for i < len(args) {
		var img imageArg
		if v, ok, err := optValue(args, &i, "-s", "--string"); err != nil {
			return la, err
		} else if ok {
			img = imageArg{Source: v, IsString: true}
		} else if isOpt(args[i], "-a", "--address") {
			return la, usagef("cell load: %s without a preceding image", args[i])
		} else {
			img = imageArg{Source: args[i]}
			i++
		}
		if i < len(args) {
			v, ok, err := optValue(args, &i, "-a", "--address")
			if err != nil {
				return la, err
			}
			if ok {
				if img.Address, err = parseAddress(v); err != nil {
					return la, usagef("cell load: image %d: %v", len(la.Images)+1, err)
				}
			}
		}
		la.Images = append(la.Images, img)
	}
	return la, nil
}

func isOpt(arg, short, long string) bool {
	return arg == short || arg == long || strings.HasPrefix(arg, long+"=")
}

// optValue consumes args[*i] if it is the option short/long ("-s V",
// "--string V" or "--string=V") and returns its value.
func optValue(args []string, i *int, short, long string) (string, bool, error) {
	arg := args[*i]
	if v, ok := strings.CutPrefix(arg, long+"="); ok {
		*i++
		return v, true, nil
	}
	if arg != short && arg != long {
		return "", false, nil
	}
	if *i+1 >= len(args) {
		return "", false, usagef("cell load: %s needs a value", arg)
	}
	v := args[*i+1]
	*i += 2
	return v, true, nil
}

// parseAddress reads an address in C integer syntax (strtoll base 0):
// decimal, 0x hexadecimal or 0-prefixed octal, nothing else.
func parseAddress(s string) (uint64, error) {
	digits, base := s, 10
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		digits, base = s[2:], 16
	case len(s) > 1 && s[0] == '0':
		digits, base = s[1:], 8
	}
	v, err := strconv.ParseUint(digits, base, 64)
	if err != nil || digits == "" || strings.ContainsAny(digits, "+-_") {
		return 0, fmt.Errorf("invalid address %q", s)
	}
	return v, nil
}

// cellLoad loads images into a cell with one CELL_LOAD.
func (a *app) cellLoad(args []string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintf(a.stdout, "Usage: jhctl cell load %s { IMAGE | { -s | --string } \"STRING\" } [-a | --address ADDRESS] ...\n\n"+
			"Each -a applies to the image before it (default address 0). A string is loaded\n"+
			"with its terminating NUL.\n", refSynopsis)
		return nil
	}
	la, err := parseLoadArgs(args)
	if err != nil {
		return err
	}
	images, err := readImages(la.Images)
	if err != nil {
		return err
	}
	return a.client().LoadCell(la.Ref, images...)
}

// readImages reads the files of a load command; strings get their NUL.
func readImages(args []imageArg) ([]jailhouse.Image, error) {
	images := make([]jailhouse.Image, len(args))
	for i, ia := range args {
		images[i].Address = ia.Address
		if ia.IsString {
			images[i].Data = append([]byte(ia.Source), 0)
			continue
		}
		data, err := readFile(ia.Source)
		if err != nil {
			return nil, err
		}
		images[i].Data = data
	}
	return images, nil
}
