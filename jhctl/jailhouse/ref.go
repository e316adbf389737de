package jailhouse

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/runphi-go/runphi/cellgen/cell"
)

func parseCellRef(s string) (CellRef, error) {
	// strtol(s, &end, 0) with *end == '\0' and a value >= 0 makes an id in
	// the C tool. ParseInt with base 0 accepts the same C prefixes, plus Go
	// forms (0b, 0o, underscores) that strtol would leave unparsed, so those
	// are treated as names here as well. An id beyond int32 is a name too
	// (the C tool would silently truncate it).
	// strtol also skips leading white space.
	num := strings.TrimLeft(s, " \t\n\v\f\r")
	if num != "" && isCInteger(num) {
		if v, err := strconv.ParseInt(num, 0, 32); err == nil && v >= 0 {
			return CellRef{ID: int32(v)}, nil
		}
	}
	return byName(s)
}

// isCInteger reports whether strtol with base 0 would consume s entirely:
// an optional sign, then decimal digits, 0x/0X and hex digits, or a leading
// 0 and octal digits.
func isCInteger(s string) bool {
	if s[0] == '+' || s[0] == '-' {
		s = s[1:]
	}
	digits := "0123456789"
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		s, digits = s[2:], "0123456789abcdefABCDEF"
	case len(s) > 1 && s[0] == '0':
		s, digits = s[1:], "01234567"
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(digits, rune(s[i])) {
			return false
		}
	}
	return true
}

func byName(name string) (CellRef, error) {
	r := CellRef{ID: -1, Name: name}
	if err := r.validate(); err != nil {
		return CellRef{}, err
	}
	return r, nil
}

func byID(id int) (CellRef, error) {
	if id < 0 || id > math.MaxInt32 {
		return CellRef{}, fmt.Errorf("%w: cell id %d out of range", ErrBadName, id)
	}
	return CellRef{ID: int32(id)}, nil
}

// validate checks a reference built by hand as well as parsed ones.
func (r CellRef) validate() error {
	switch {
	case r.ID >= 0:
		return nil
	case r.ID != -1:
		return fmt.Errorf("%w: cell id %d out of range", ErrBadName, r.ID)
	case r.Name == "":
		return fmt.Errorf("%w: empty cell name", ErrBadName)
	case len(r.Name) > cell.MaxNameLen:
		return fmt.Errorf("%w: cell name %q is %d bytes long, Jailhouse keeps at most %d",
			ErrBadName, r.Name, len(r.Name), cell.MaxNameLen)
	case strings.IndexByte(r.Name, 0) >= 0:
		return fmt.Errorf("%w: cell name %q contains a NUL byte", ErrBadName, r.Name)
	}
	return nil
}

func (r CellRef) string() string {
	if r.ID >= 0 {
		return strconv.Itoa(int(r.ID))
	}
	return "'" + r.Name + "'"
}

// matches reports whether the driver would pick cell info for r.
func (r CellRef) matches(info CellInfo) bool {
	if r.ID >= 0 {
		return info.ID == int(r.ID)
	}
	return info.Name == r.Name
}
