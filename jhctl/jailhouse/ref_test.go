package jailhouse

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCellRef(t *testing.T) {
	long := strings.Repeat("n", 32)
	tests := []struct {
		in      string
		want    CellRef
		wantErr bool
	}{
		{in: "1", want: CellRef{ID: 1}},
		{in: "0", want: CellRef{ID: 0}},
		{in: "010", want: CellRef{ID: 8}},   // C octal
		{in: "0x2", want: CellRef{ID: 2}},   // C hex
		{in: "0X1f", want: CellRef{ID: 31}}, // C hex, upper-case prefix
		{in: "+3", want: CellRef{ID: 3}},    // strtoll accepts a sign
		{in: " 4", want: CellRef{ID: 4}},    // and leading white space
		{in: "-0", want: CellRef{ID: 0}},    // -0 is not negative
		{in: "-1", want: CellRef{ID: -1, Name: "-1"}},
		{in: "08", want: CellRef{ID: -1, Name: "08"}},   // not octal: strtoll stops at 8
		{in: "0x", want: CellRef{ID: -1, Name: "0x"}},   // strtoll stops at x
		{in: "1a", want: CellRef{ID: -1, Name: "1a"}},   // trailing garbage
		{in: "0b1", want: CellRef{ID: -1, Name: "0b1"}}, // Go-only prefix
		{in: "1_0", want: CellRef{ID: -1, Name: "1_0"}}, // Go-only underscore
		{in: "4 ", want: CellRef{ID: -1, Name: "4 "}},   // trailing space is garbage
		{in: "2147483648", want: CellRef{ID: -1, Name: "2147483648"}},
		{in: "inmate-demo", want: CellRef{ID: -1, Name: "inmate-demo"}},
		{in: long[:31], want: CellRef{ID: -1, Name: long[:31]}},
		{in: long, wantErr: true},
		{in: "", wantErr: true},
		{in: "a\x00b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCellRef(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadName) {
					t.Fatalf("ParseCellRef(%q) = %+v, %v; want ErrBadName", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseCellRef(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestByNameAndID(t *testing.T) {
	r, err := ByName("7")
	if err != nil || r != (CellRef{ID: -1, Name: "7"}) {
		t.Errorf(`ByName("7") = %+v, %v; want a lookup by name`, r, err)
	}
	if _, err := ByName(strings.Repeat("x", 32)); !errors.Is(err, ErrBadName) {
		t.Errorf("ByName of 32 bytes: err = %v, want ErrBadName (no silent truncation)", err)
	}
	if _, err := ByName(""); !errors.Is(err, ErrBadName) {
		t.Errorf("ByName(\"\"): err = %v, want ErrBadName", err)
	}
	if r, err := ByID(3); err != nil || r != (CellRef{ID: 3}) {
		t.Errorf("ByID(3) = %+v, %v", r, err)
	}
	if _, err := ByID(-1); !errors.Is(err, ErrBadName) {
		t.Errorf("ByID(-1): err = %v, want ErrBadName", err)
	}
}

func TestCellIDRecord(t *testing.T) {
	tests := []struct {
		ref      CellRef
		wantID   int32
		wantName string
		wantErr  bool
	}{
		// An id leaves the name all-zero, like the C tool.
		{ref: CellRef{ID: 2, Name: "ignored"}, wantID: 2},
		{ref: CellRef{ID: -1, Name: "inmate-demo"}, wantID: -1, wantName: "inmate-demo"},
		{ref: CellRef{ID: -2}, wantErr: true},
		{ref: CellRef{ID: -1, Name: strings.Repeat("x", 32)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.ref.String(), func(t *testing.T) {
			rec, err := tt.ref.record()
			if tt.wantErr {
				if err == nil {
					t.Fatalf("record() = %+v, want an error", rec)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var wantName [32]byte
			copy(wantName[:], tt.wantName)
			if rec.ID != tt.wantID || rec.Name != wantName {
				t.Errorf("record() = {%d %q}, want {%d %q}", rec.ID, rec.Name, tt.wantID, wantName)
			}
		})
	}
}

func TestCellRefString(t *testing.T) {
	if s := (CellRef{ID: 3}).String(); s != "3" {
		t.Errorf("got %q", s)
	}
	if s := (CellRef{ID: -1, Name: "x"}).String(); s != "'x'" {
		t.Errorf("got %q", s)
	}
}
