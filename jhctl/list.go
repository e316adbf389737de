package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/runphi-go/runphi/cellgen/cpuset"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

// cellList prints the cells as the C tool does, or as JSON.
func (a *app) cellList(args []string) error {
	fs := a.flagSet("cell list", "cell list [--json]")
	asJSON := fs.Bool("json", false, "print a JSON array")
	if err := parse(fs, args); err != nil {
		return helpDone(err)
	}
	if fs.NArg() != 0 {
		return usagef("cell list: unexpected argument %q", fs.Arg(0))
	}
	cells, err := a.client().Cells()
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(a.stdout, cellsJSON(cells))
	}
	return writeCellTable(a.stdout, cells)
}

// writeCellTable prints the C tool's table: left-justified columns of 8,
// 24, 18, 24 and 24 bytes (wider values are not cut), the header only if
// there is a cell.
func writeCellTable(w io.Writer, cells []jailhouse.CellInfo) error {
	if len(cells) == 0 {
		return nil
	}
	var b strings.Builder
	row := func(cols ...string) {
		for i, c := range cols {
			b.WriteString(c)
			if pad := []int{8, 24, 18, 24, 24}[i] - len(c); pad > 0 {
				b.WriteString(strings.Repeat(" ", pad))
			}
		}
		b.WriteByte('\n')
	}
	row("ID", "Name", "State", "Assigned CPUs", "Failed CPUs")
	for _, c := range cells {
		row(strconv.Itoa(c.ID), c.Name, string(c.State), c.CPUs.String(), c.FailedCPUs.String())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cellJSON is a cell in the JSON output of cell list and cell stats.
type cellJSON struct {
	ID         int        `json:"id"`
	Name       string     `json:"name"`
	State      string     `json:"state"`
	CPUs       cpuset.Set `json:"cpus"`
	FailedCPUs cpuset.Set `json:"failed_cpus"`
}

func toCellJSON(c jailhouse.CellInfo) cellJSON {
	return cellJSON{ID: c.ID, Name: c.Name, State: string(c.State), CPUs: c.CPUs, FailedCPUs: c.FailedCPUs}
}

func cellsJSON(cells []jailhouse.CellInfo) []cellJSON {
	out := make([]cellJSON, 0, len(cells))
	for _, c := range cells {
		out = append(out, toCellJSON(c))
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// cellStats prints a cell's VM-exit counters: one row per reason, the sum
// and one column per CPU. --watch redraws every second until interrupted.
func (a *app) cellStats(args []string) error {
	fs := a.flagSet("cell stats", "cell stats "+refSynopsis+" [--json] [--watch]")
	name := fs.String("name", "", "address the cell by `NAME`, also when it looks like a number")
	asJSON := fs.Bool("json", false, "print JSON")
	watch := fs.Bool("watch", false, "refresh every second until interrupted")
	if err := parse(fs, args); err != nil {
		return helpDone(err)
	}
	ref, err := refFromFlags(fs, *name)
	if err != nil {
		return err
	}
	client := a.client()
	show := func() error {
		s, err := client.Stats(ref)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, statsJSON(s))
		}
		return writeStatsTable(a.stdout, s)
	}
	if !*watch {
		return show()
	}

	ctx, stop := a.interrupt()
	defer stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if !*asJSON {
			// Home the cursor and clear the screen, as watch(1) does.
			fmt.Fprint(a.stdout, "\x1b[H\x1b[2J")
		}
		if err := show(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// writeStatsTable prints the counters: reasons left-justified, numbers
// right-justified under TOTAL and CPU<n>.
func writeStatsTable(w io.Writer, s *jailhouse.Stats) error {
	reasons := s.Reasons()
	header := []string{"COUNTER", "TOTAL"}
	for _, c := range s.PerCPU {
		header = append(header, "CPU"+strconv.Itoa(c.CPU))
	}
	rows := [][]string{header}
	for _, r := range reasons {
		row := []string{r, counter(s.Total, r)}
		for _, c := range s.PerCPU {
			row = append(row, counter(c.Counters, r))
		}
		rows = append(rows, row)
	}
	widths := make([]int, len(header))
	for _, row := range rows {
		for i, col := range row {
			widths[i] = max(widths[i], len(col))
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "Statistics for cell '%s' (id %d, %s)\n\n", s.Cell.Name, s.Cell.ID, s.Cell.State)
	for _, row := range rows {
		for i, col := range row {
			if i == 0 {
				b.WriteString(col + strings.Repeat(" ", widths[0]-len(col)))
				continue
			}
			b.WriteString("  " + strings.Repeat(" ", widths[i]-len(col)) + col)
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// counter renders one count; "-" where a CPU lacks the reason.
func counter(c jailhouse.Counters, reason string) string {
	v, ok := c[reason]
	if !ok {
		return "-"
	}
	return strconv.FormatUint(v, 10)
}

// statsOut is the JSON form of cell stats.
type statsOut struct {
	Cell  cellJSON           `json:"cell"`
	Total jailhouse.Counters `json:"total"`
	CPUs  []cpuStatsJSON     `json:"cpus"`
}

type cpuStatsJSON struct {
	CPU      int                `json:"cpu"`
	Counters jailhouse.Counters `json:"counters"`
}

func statsJSON(s *jailhouse.Stats) statsOut {
	out := statsOut{Cell: toCellJSON(s.Cell), Total: s.Total, CPUs: []cpuStatsJSON{}}
	if out.Total == nil {
		out.Total = jailhouse.Counters{}
	}
	for _, c := range s.PerCPU {
		out.CPUs = append(out.CPUs, cpuStatsJSON{CPU: c.CPU, Counters: c.Counters})
	}
	return out
}
