package jailhouse

import (
	"strconv"
	"strings"
	"testing"

	"github.com/runphi-go/runphi/cellgen/cpuset"
)

func FuzzParseCellRef(f *testing.F) {
	for _, s := range []string{"1", "010", "0x2", "-1", "inmate-demo", "", " 3", "08", "0x", "+0", "2147483648"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseCellRef(s)
		if err != nil {
			return
		}
		switch {
		case ref.ID >= 0:
			if ref.Name != "" {
				t.Fatalf("%q: id %d with name %q", s, ref.ID, ref.Name)
			}
			v, perr := strconv.ParseInt(strings.TrimLeft(s, " \t\n\v\f\r"), 0, 64)
			if perr != nil || v != int64(ref.ID) {
				t.Fatalf("%q: id %d, ParseInt says %d, %v", s, ref.ID, v, perr)
			}
		case ref.ID == -1:
			if ref.Name != s || len(s) > 31 {
				t.Fatalf("%q: name %q", s, ref.Name)
			}
		default:
			t.Fatalf("%q: id %d", s, ref.ID)
		}
		if _, err := ref.record(); err != nil {
			t.Fatalf("%q: parsed reference has no record: %v", s, err)
		}
	})
}

func FuzzParseCell(f *testing.F) {
	f.Add("qemu-arm64\n", "running\n", "0,2-15\n", "\n")
	f.Add("x\n", "failed\n", "1\n", "1\n")
	f.Add("", "running\n", "\n", "\n")
	f.Add("a\n", "shut down\n", "3-1\n", "\n")
	f.Fuzz(func(t *testing.T, name, state, assigned, failed string) {
		info, err := parseCell([numCellFiles][]byte{[]byte(name), []byte(state), []byte(assigned), []byte(failed)})
		if err != nil {
			return
		}
		if info.Name != strings.TrimSuffix(name, "\n") || string(info.State) != strings.TrimSuffix(state, "\n") {
			t.Fatalf("name %q state %q from %q %q", info.Name, info.State, name, state)
		}
		// The parsed sets survive the kernel's list format.
		for _, set := range []cpuset.Set{info.CPUs, info.FailedCPUs} {
			again, err := cpuset.Parse(set.String() + "\n")
			if err != nil || !again.Equal(set) {
				t.Fatalf("set %v does not round-trip: %v", set, err)
			}
		}
	})
}

func FuzzParseCounter(f *testing.F) {
	for _, s := range []string{"0\n", "18446744073709551615\n", "18446744073709551616\n", "", "\n", "-1\n", "12"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseCounter([]byte(s))
		if err != nil {
			return
		}
		// Only plain decimal digits (leading zeros allowed) are accepted.
		v := strings.TrimSuffix(s, "\n")
		if v == "" || strings.TrimLeft(v, "0123456789") != "" {
			t.Fatalf("%q accepted as %d", s, n)
		}
		if strings.TrimLeft(v, "0") != strings.TrimLeft(strconv.FormatUint(n, 10), "0") {
			t.Fatalf("%q parsed as %d", s, n)
		}
	})
}

func FuzzParseNames(f *testing.F) {
	for _, s := range []string{"0", "10", "007", "-1", "2147483648", "cpu0", "cpu15", "cpu01", "cpu", "cpux"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if id, err := parseCellID(s); err == nil && strconv.Itoa(id) != s {
			t.Fatalf("cell directory %q parsed as %d", s, id)
		}
		if cpu, ok := parseCPUDir(s); ok && "cpu"+strconv.Itoa(cpu) != s {
			t.Fatalf("cpu directory %q parsed as %d", s, cpu)
		}
	})
}
