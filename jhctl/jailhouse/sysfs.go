package jailhouse

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/runphi-go/runphi/cellgen/cpuset"
)

func (c *Client) sysfs(parts ...string) string {
	return filepath.Join(append([]string{c.paths.Sysfs}, parts...)...)
}

// parseValue strips the single trailing newline of a sysfs attribute. A
// file with no bytes at all is an error (the C tool refuses it too); one
// holding only "\n" is the empty value.
func parseValue(data []byte) (string, error) {
	if len(data) == 0 {
		return "", errors.New("empty file")
	}
	return strings.TrimSuffix(string(data), "\n"), nil
}

func readValue(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v, err := parseValue(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// parseCounter reads an unsigned decimal sysfs number ("123\n").
func parseCounter(data []byte) (uint64, error) {
	v, err := parseValue(data)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a counter", v)
	}
	return n, nil
}

func readCounter(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := parseCounter(data)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

func (s State) known() bool {
	switch s {
	case StateRunning, StateRunningLocked, StateShutDown, StateFailed, StateCommABIMismatch, StateInvalid:
		return true
	}
	return false
}

// parseCellID reads a cells/ directory name: a decimal id as the driver
// writes it, without sign or leading zeros.
func parseCellID(s string) (int, error) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a cell id", s)
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not a cell id", s)
	}
	return int(n), nil
}

func (c *Client) sysfsError(op Op, cellName, msg string, err error) error {
	return &Error{Op: op, Cell: cellName, Msg: msg, Err: err}
}

// errCellGone reports a cell directory that does not exist (any more).
var errCellGone = errors.New("cell directory does not exist")

// readCell reads cells/<dir>. A missing directory (a cell destroyed
// meanwhile) gives errCellGone; a missing file in a present directory is
// an ordinary error.
func (c *Client) readCell(dir string) (CellInfo, error) {
	base := c.sysfs("cells", dir)
	info, err := c.readCellFiles(dir, base)
	if err != nil {
		if _, serr := os.Stat(base); errors.Is(serr, fs.ErrNotExist) {
			return CellInfo{}, errCellGone
		}
	}
	return info, err
}

func (c *Client) readCellFiles(dir, base string) (CellInfo, error) {
	id, err := parseCellID(dir)
	if err != nil {
		return CellInfo{}, err
	}
	var raw [numCellFiles][]byte
	for i, f := range cellFiles() {
		if raw[i], err = os.ReadFile(filepath.Join(base, f)); err != nil {
			return CellInfo{}, err
		}
	}
	info, err := parseCell(raw)
	if err != nil {
		return CellInfo{}, fmt.Errorf("%s: %w", base, err)
	}
	info.ID = id
	return info, nil
}

// cellFiles are the attributes of a cells/<id> directory that make a
// CellInfo, in parseCell's order.
func cellFiles() [numCellFiles]string {
	return [...]string{"name", "state", "cpus_assigned_list", "cpus_failed_list"}
}

const numCellFiles = 4

// parseCell builds a CellInfo (without ID) from the contents of cellFiles.
func parseCell(raw [numCellFiles][]byte) (CellInfo, error) {
	var vals [numCellFiles]string
	for i, data := range raw {
		v, err := parseValue(data)
		if err != nil {
			return CellInfo{}, fmt.Errorf("%s: %w", cellFiles()[i], err)
		}
		vals[i] = v
	}
	info := CellInfo{Name: vals[0], State: State(vals[1])}
	var err error
	if info.CPUs, err = cpuset.Parse(vals[2]); err != nil {
		return CellInfo{}, fmt.Errorf("%s: %w", "cpus_assigned_list", err)
	}
	if info.FailedCPUs, err = cpuset.Parse(vals[3]); err != nil {
		return CellInfo{}, fmt.Errorf("%s: %w", "cpus_failed_list", err)
	}
	return info, nil
}

func (c *Client) cells() ([]CellInfo, error) {
	entries, err := os.ReadDir(c.sysfs("cells"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // module not loaded: nothing to list, as in the C tool
	}
	if err != nil {
		return nil, c.sysfsError(OpList, "", "cannot list cells", err)
	}
	// os.ReadDir sorts by name with a byte comparison, which is the order of
	// the C tool's scandir/alphasort in the C locale.
	var out []CellInfo
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := c.readCell(e.Name())
		if errors.Is(err, errCellGone) {
			continue // destroyed while we were reading
		}
		if err != nil {
			return nil, c.sysfsError(OpList, e.Name(), "cannot read cell "+e.Name(), err)
		}
		out = append(out, info)
	}
	return out, nil
}

func sortByID(cells []CellInfo) {
	slices.SortFunc(cells, func(a, b CellInfo) int { return a.ID - b.ID })
}

func (c *Client) noCell(op Op, ref CellRef) error {
	if _, err := os.Stat(c.paths.Sysfs); errors.Is(err, fs.ErrNotExist) {
		return &Error{Op: op, Cell: ref.String(), Kind: ErrDriverMissing, Err: err,
			Msg: fmt.Sprintf("jailhouse driver not loaded (%s missing)", c.paths.Sysfs)}
	}
	msg := "no cell " + ref.String()
	if ref.ID >= 0 {
		msg = fmt.Sprintf("no cell with id %d", ref.ID)
	}
	return &Error{Op: op, Cell: ref.String(), Kind: ErrNoCell, Msg: msg}
}

func (c *Client) cell(ref CellRef) (CellInfo, error) {
	if err := ref.validate(); err != nil {
		return CellInfo{}, &Error{Op: OpInfo, Cell: ref.String(), Kind: ErrBadName, Msg: err.Error(), Err: err}
	}
	if ref.ID >= 0 {
		info, err := c.readCell(strconv.Itoa(int(ref.ID)))
		if errors.Is(err, errCellGone) {
			return CellInfo{}, c.noCell(OpInfo, ref)
		}
		if err != nil {
			return CellInfo{}, c.sysfsError(OpInfo, ref.String(), "cannot read cell "+ref.String(), err)
		}
		return info, nil
	}
	cells, err := c.cells()
	if err != nil {
		return CellInfo{}, err
	}
	for _, info := range cells {
		if ref.matches(info) {
			return info, nil
		}
	}
	return CellInfo{}, c.noCell(OpInfo, ref)
}

func (c *Client) enabled() (bool, error) {
	v, err := readValue(c.sysfs("enabled"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, c.sysfsError(OpInfo, "", "cannot read the enabled state", err)
	}
	switch v {
	case "1":
		return true, nil
	case "0":
		return false, nil
	}
	return false, c.sysfsError(OpInfo, "", fmt.Sprintf("%s: unexpected value %q", c.sysfs("enabled"), v), nil)
}

func (c *Client) memPool() (MemPool, error) {
	var p MemPool
	for _, f := range []struct {
		file string
		v    *uint64
	}{
		{"mem_pool_size", &p.MemSize},
		{"mem_pool_used", &p.MemUsed},
		{"remap_pool_size", &p.RemapSize},
		{"remap_pool_used", &p.RemapUsed},
	} {
		n, err := readCounter(c.sysfs(f.file))
		if errors.Is(err, fs.ErrNotExist) {
			return MemPool{}, &Error{Op: OpInfo, Kind: ErrDriverMissing, Err: err,
				Msg: fmt.Sprintf("jailhouse driver not loaded (%s missing)", c.sysfs(f.file))}
		}
		if err != nil {
			return MemPool{}, c.sysfsError(OpInfo, "", "cannot read the memory pool", err)
		}
		*f.v = n
	}
	return p, nil
}

const vmexitsPrefix = "vmexits_"

// readCounters reads every vmexits_<reason> file of dir.
func readCounters(dir string) (Counters, []string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	out := Counters{}
	var subdirs []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			subdirs = append(subdirs, name)
			continue
		}
		reason, ok := strings.CutPrefix(name, vmexitsPrefix)
		if !ok || reason == "" {
			continue
		}
		n, err := readCounter(filepath.Join(dir, name))
		if err != nil {
			return nil, nil, err
		}
		out[reason] = n
	}
	return out, subdirs, nil
}

// parseCPUDir reads a statistics/cpu<n> directory name.
func parseCPUDir(name string) (int, bool) {
	num, ok := strings.CutPrefix(name, "cpu")
	if !ok || num == "" || (len(num) > 1 && num[0] == '0') || strings.TrimLeft(num, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n >= cpuset.MaxCPU {
		return 0, false
	}
	return n, true
}

func (c *Client) stats(ref CellRef) (*Stats, error) {
	info, err := c.cell(ref)
	if err != nil {
		return nil, err
	}
	dir := c.sysfs("cells", strconv.Itoa(info.ID), "statistics")
	total, subdirs, err := readCounters(dir)
	if err != nil {
		return nil, c.sysfsError(OpStats, ref.String(), "cannot read the statistics of cell "+ref.String(), err)
	}
	s := &Stats{Cell: info, Total: total}
	for _, sub := range subdirs {
		cpu, ok := parseCPUDir(sub)
		if !ok {
			continue
		}
		counters, _, err := readCounters(filepath.Join(dir, sub))
		if err != nil {
			return nil, c.sysfsError(OpStats, ref.String(), "cannot read the statistics of cell "+ref.String(), err)
		}
		s.PerCPU = append(s.PerCPU, CPUStats{CPU: cpu, Counters: counters})
	}
	slices.SortFunc(s.PerCPU, func(a, b CPUStats) int { return a.CPU - b.CPU })
	return s, nil
}

// knownReasons is the driver's order of the VM-exit reasons: the common
// ones, then arm/arm64, then x86.
func knownReasons() []string {
	return []string{
		"total", "mmio", "management", "hypercall",
		"maintenance", "virt_irq", "virt_sgi", "psci", "smccc",
		"pio", "xapic", "cr", "cpuid", "xsetbv", "exception", "msr_other", "msr_x2apic_icr",
	}
}

func (s *Stats) reasons() []string {
	seen := map[string]bool{}
	add := func(c Counters) {
		for r := range c {
			seen[r] = true
		}
	}
	add(s.Total)
	for _, p := range s.PerCPU {
		add(p.Counters)
	}
	var out, extra []string
	for _, r := range knownReasons() {
		if seen[r] {
			out = append(out, r)
			delete(seen, r)
		}
	}
	for r := range seen {
		extra = append(extra, r)
	}
	slices.Sort(extra)
	return append(out, extra...)
}
