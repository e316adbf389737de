package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
)

// listVerb lists runc's containers and runphi's ZICs under one --root. It
// reaches runphi only when runphi has a state directory for that root;
// otherwise runc answers alone.
func listVerb() *verb {
	return &verb{
		name: "list", usage: "", summary: "list the containers (runc's and the ZICs) under --root",
		minArgs: 0, maxArgs: 0, interspersed: true,
		setup: func(fs *pflag.FlagSet) verbFunc {
			format := fs.StringP("format", "f", "table", "table or json")
			quiet := fs.BoolP("quiet", "q", false, "display only container IDs")
			return func(ctx context.Context, c *call, _ []string) error {
				if *format != "table" && *format != "json" && !*quiet {
					return errors.New("invalid format option")
				}
				states, err := c.runcList(ctx)
				if err != nil {
					return err
				}
				z, err := c.runtime()
				if err != nil {
					return err
				}
				zics, err := z.List(ctx)
				if err != nil {
					return err
				}
				states = append(states, zics...)
				slices.SortStableFunc(states, func(a, b containerState) int { return strings.Compare(a.ID, b.ID) })
				return writeList(c.stdout, states, *format, *quiet)
			}
		},
	}
}

// runcList runs "runc <globals> list --format json" and decodes it.
func (c *call) runcList(ctx context.Context) ([]containerState, error) {
	// No runc root, no runc containers (newer runc fails on a missing
	// --root; the ZICs must still be listed).
	root, err := c.runcRoot(c.g.root, c.g.rootSet)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	path, err := c.resolver.Resolve(c.cfg.Runc)
	if err != nil {
		return nil, err
	}
	args := append(slices.Clone(c.args[:c.inv.verbAt]), "list", "--format", "json")
	cmd := exec.CommandContext(ctx, path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("runc list: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var states []containerState
	if err := json.Unmarshal(out, &states); err != nil {
		return nil, fmt.Errorf("runc list: %w", err)
	}
	return states, nil
}

// writeList prints the list as runc does.
func writeList(w io.Writer, states []containerState, format string, quiet bool) error {
	if quiet {
		for _, s := range states {
			if _, err := fmt.Fprintln(w, s.ID); err != nil {
				return err
			}
		}
		return nil
	}
	if format == "json" {
		return json.NewEncoder(w).Encode(states)
	}
	tw := tabwriter.NewWriter(w, 12, 1, 3, ' ', 0)
	fmt.Fprint(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
	for _, s := range states {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.InitProcessPid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
	}
	return tw.Flush()
}
