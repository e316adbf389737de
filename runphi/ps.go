package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

func psVerb() *verb {
	return &verb{
		name: "ps", usage: "<container-id> [ps options]", summary: "list the container's host processes",
		// Everything after the id belongs to ps(1).
		minArgs: 1, maxArgs: -1, interspersed: false,
		setup: func(fs *pflag.FlagSet) verbFunc {
			format := fs.StringP("format", "f", "table", "table or json")
			return func(ctx context.Context, c *call, args []string) error {
				if *format != "table" && *format != "json" {
					return errors.New("invalid format option")
				}
				z, err := c.runtime()
				if err != nil {
					return err
				}
				pids, err := z.Ps(ctx, args[0])
				if err != nil {
					return err
				}
				if *format == "json" {
					if pids == nil {
						pids = []int{} // go-runc wants an array
					}
					return json.NewEncoder(c.stdout).Encode(pids)
				}
				psArgs := args[1:]
				if len(psArgs) == 0 {
					psArgs = []string{"-ef"}
				}
				out, err := exec.CommandContext(ctx, "ps", psArgs...).CombinedOutput()
				if err != nil {
					return fmt.Errorf("%w: %s", err, out)
				}
				table, err := filterPs(string(out), pids)
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(c.stdout, table)
				return err
			}
		},
	}
}

// filterPs keeps the header of ps(1) output and the lines whose PID
// column is one of pids.
func filterPs(out string, pids []int) (string, error) {
	lines := strings.Split(out, "\n")
	col := slices.Index(strings.Fields(lines[0]), "PID")
	if col < 0 {
		return "", errors.New("couldn't find PID field in ps output")
	}
	var sb strings.Builder
	sb.WriteString(lines[0] + "\n")
	for _, line := range lines[1:] {
		fields := strings.Fields(line)
		if len(fields) <= col {
			continue
		}
		p, err := strconv.Atoi(fields[col])
		if err != nil {
			return "", fmt.Errorf("unable to parse pid: %w", err)
		}
		if slices.Contains(pids, p) {
			sb.WriteString(line + "\n")
		}
	}
	return sb.String(), nil
}
