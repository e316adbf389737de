package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

// fakeHV is a Jailhouse stand-in kept in a directory, so that the test
// process and the monitors it starts (separate processes) share one
// hypervisor. Every operation runs under a flock of dir/lock.
//
//	dir/cells.json        {"next": n, "cells": {"<id>": {name, state, images}}}
//	dir/cell-<id>.cell    the configuration each cell was created from
//	dir/console           the hypervisor console (tests append to it)
type fakeHV struct {
	dir string

	mu   sync.Mutex
	fail map[jailhouse.Op]error // injected failures, in this process only
	// afterCreate, if set, is returned by CreateCell after the cell was
	// created: a driver call that failed late (e.g. the new cell did not
	// show in sysfs in time) while the cell exists.
	afterCreate error
	ops         []string // operations seen in this process
}

type fakeCell struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Images int    `json:"images"`
}

type fakeTable struct {
	Next  int                 `json:"next"`
	Cells map[string]fakeCell `json:"cells"`
}

func newFakeHV(dir string) *fakeHV {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		panic(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "console"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		f.Close()
	}
	return &fakeHV{dir: dir, fail: map[jailhouse.Op]error{}}
}

func (f *fakeHV) failOn(op jailhouse.Op, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[op] = err
}

func (f *fakeHV) begin(op jailhouse.Op) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, string(op))
	return f.fail[op]
}

// update runs fn on the table under the lock and saves it if fn succeeds.
func (f *fakeHV) update(fn func(t *fakeTable) error) error {
	lock, err := os.OpenFile(filepath.Join(f.dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	t := &fakeTable{Next: 1, Cells: map[string]fakeCell{}}
	path := filepath.Join(f.dir, "cells.json")
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, t); err != nil {
			return err
		}
	}
	if err := fn(t); err != nil {
		return err
	}
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

func (t *fakeTable) find(ref jailhouse.CellRef) (string, fakeCell, bool) {
	if ref.ID >= 0 {
		c, ok := t.Cells[strconv.Itoa(int(ref.ID))]
		return strconv.Itoa(int(ref.ID)), c, ok
	}
	for id, c := range t.Cells {
		if c.Name == ref.Name {
			return id, c, true
		}
	}
	return "", fakeCell{}, false
}

func noCell(op jailhouse.Op, ref jailhouse.CellRef) error {
	return &jailhouse.Error{Op: op, Cell: ref.String(), Kind: jailhouse.ErrNoCell, Msg: "no cell " + ref.String(), Err: unix.ENOENT}
}

func (f *fakeHV) CreateCell(config []byte) (int, error) {
	if err := f.begin(jailhouse.OpCreate); err != nil {
		return 0, err
	}
	cfg, err := cell.UnmarshalCell(config)
	if err != nil {
		return 0, &jailhouse.Error{Op: jailhouse.OpCreate, Kind: jailhouse.ErrBadConfig, Msg: "bad config", Err: err}
	}
	var id int
	err = f.update(func(t *fakeTable) error {
		for _, c := range t.Cells {
			if c.Name == cfg.Name {
				return &jailhouse.Error{Op: jailhouse.OpCreate, Kind: jailhouse.ErrCellExists, Msg: "a cell named '" + cfg.Name + "' already exists", Err: unix.EEXIST}
			}
		}
		id = t.Next
		t.Next++
		t.Cells[strconv.Itoa(id)] = fakeCell{Name: cfg.Name, State: string(jailhouse.StateShutDown)}
		return os.WriteFile(filepath.Join(f.dir, fmt.Sprintf("cell-%d.cell", id)), config, 0o600)
	})
	if err == nil && f.afterCreate != nil {
		return 0, f.afterCreate
	}
	return id, err
}

func (f *fakeHV) LoadCell(ref jailhouse.CellRef, images ...jailhouse.Image) error {
	if err := f.begin(jailhouse.OpLoad); err != nil {
		return err
	}
	return f.update(func(t *fakeTable) error {
		id, c, ok := t.find(ref)
		if !ok {
			return noCell(jailhouse.OpLoad, ref)
		}
		data, err := os.ReadFile(filepath.Join(f.dir, "cell-"+id+".cell"))
		if err != nil {
			return err
		}
		cfg, err := cell.UnmarshalCell(data)
		if err != nil {
			return err
		}
		if err := jailhouse.CheckImages(cfg, images); err != nil {
			return err
		}
		c.State, c.Images = string(jailhouse.StateShutDown), len(images)
		t.Cells[id] = c
		return nil
	})
}

func (f *fakeHV) setState(op jailhouse.Op, ref jailhouse.CellRef, st jailhouse.State) error {
	if err := f.begin(op); err != nil {
		return err
	}
	return f.update(func(t *fakeTable) error {
		id, c, ok := t.find(ref)
		if !ok {
			return noCell(op, ref)
		}
		c.State = string(st)
		t.Cells[id] = c
		return nil
	})
}

func (f *fakeHV) StartCell(ref jailhouse.CellRef) error {
	return f.setState(jailhouse.OpStart, ref, jailhouse.StateRunning)
}

func (f *fakeHV) ShutdownCell(ref jailhouse.CellRef) error {
	return f.setState(jailhouse.OpShutdown, ref, jailhouse.StateShutDown)
}

func (f *fakeHV) DestroyCell(ref jailhouse.CellRef) error {
	if err := f.begin(jailhouse.OpDestroy); err != nil {
		return err
	}
	return f.update(func(t *fakeTable) error {
		id, _, ok := t.find(ref)
		if !ok {
			return noCell(jailhouse.OpDestroy, ref)
		}
		delete(t.Cells, id)
		return os.Remove(filepath.Join(f.dir, "cell-"+id+".cell"))
	})
}

func (f *fakeHV) Cell(ref jailhouse.CellRef) (jailhouse.CellInfo, error) {
	var info jailhouse.CellInfo
	err := f.update(func(t *fakeTable) error {
		id, c, ok := t.find(ref)
		if !ok {
			return noCell(jailhouse.OpList, ref)
		}
		info.ID, _ = strconv.Atoi(id)
		info.Name, info.State = c.Name, jailhouse.State(c.State)
		return nil
	})
	return info, err
}

// cells returns the cells by name.
func (f *fakeHV) cells() map[string]fakeCell {
	out := map[string]fakeCell{}
	if err := f.update(func(t *fakeTable) error {
		for _, c := range t.Cells {
			out[c.Name] = c
		}
		return nil
	}); err != nil {
		panic(err)
	}
	return out
}

// Console reads dir/console from its start; reads return io.EOF when
// caught up and see later appends, as the non-blocking driver stream does.
func (f *fakeHV) Console(follow bool) (io.ReadCloser, error) {
	if follow {
		return nil, errors.New("fake console: follow not supported")
	}
	return os.Open(filepath.Join(f.dir, "console"))
}

func (f *fakeHV) writeConsole(s string) error {
	fh, err := os.OpenFile(filepath.Join(f.dir, "console"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = fh.WriteString(s)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}
