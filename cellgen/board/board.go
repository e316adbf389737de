// Package board holds what runphi knows about a target board: the upstream
// reference root cell, the root cell the ZICs actually run beside (the
// reference itself, or a root derived from it with more ivshmem-net links),
// the upstream demo cells, and the pool of resources ZIC cells may receive.
//
// A board directory looks like
//
//	boards/<board>/system.json       upstream reference root cell, byte-exact
//	boards/<board>/system-zic.json   derived root cell (optional; see DeriveRoot)
//	boards/<board>/pool.json         the ZIC pool (see Pool)
//	boards/<board>/demos/*.json      upstream demo cells
//
// Load reads a directory and checks the pool against the root it names, so
// a board whose pool does not fit its root cell cannot be used.
package board

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/runphi-go/runphi/cellgen/cell"
)

// File names inside a board directory.
const (
	ReferenceFile = "system.json"
	PoolFile      = "pool.json"
	DemoDir       = "demos"
)

// Board is one target board.
type Board struct {
	Name string
	// Reference is the upstream root cell, kept byte-exact.
	Reference *cell.System
	// Root is the root cell the pool belongs to; it is Reference when the
	// pool names ReferenceFile.
	Root *cell.System
	// Demos are the upstream demo cells, by file name without ".json".
	Demos map[string]*cell.Cell
	Pool  *Pool
}

// Load reads the board in dir and validates its pool against its root.
func Load(dir string) (*Board, error) {
	data, err := os.ReadFile(filepath.Join(dir, PoolFile))
	if err != nil {
		return nil, fmt.Errorf("board %s: %w", dir, err)
	}
	pool, err := ParsePool(data)
	if err != nil {
		return nil, fmt.Errorf("board %s: %s: %w", dir, PoolFile, err)
	}
	ref, err := readSystem(filepath.Join(dir, ReferenceFile))
	if err != nil {
		return nil, fmt.Errorf("board %s: %w", dir, err)
	}
	b := &Board{Name: pool.Board, Reference: ref, Root: ref, Pool: pool, Demos: map[string]*cell.Cell{}}
	if pool.Root != ReferenceFile {
		if b.Root, err = readSystem(filepath.Join(dir, pool.Root)); err != nil {
			return nil, fmt.Errorf("board %s: %w", dir, err)
		}
	}
	demos, err := filepath.Glob(filepath.Join(dir, DemoDir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("board %s: %w", dir, err)
	}
	for _, path := range demos {
		f, err := cell.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("board %s: %w", dir, err)
		}
		if f.Cell == nil {
			return nil, fmt.Errorf("board %s: %s: a system configuration, want a cell", dir, path)
		}
		b.Demos[strings.TrimSuffix(filepath.Base(path), ".json")] = f.Cell
	}
	if err := Validate(pool, b.Root); err != nil {
		return nil, fmt.Errorf("board %s: %s against %s: %w", dir, PoolFile, pool.Root, err)
	}
	return b, nil
}

func readSystem(path string) (*cell.System, error) {
	f, err := cell.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if f.System == nil {
		return nil, fmt.Errorf("%s: a cell configuration, want a system configuration", path)
	}
	return f.System, nil
}

// DemoNames returns the demo names in sorted order.
func (b *Board) DemoNames() []string {
	names := make([]string, 0, len(b.Demos))
	for n := range b.Demos {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
