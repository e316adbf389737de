// Package cpuset is a set of logical CPU numbers with the two text forms
// Linux and Jailhouse use: the range list ("0,2-15", sysfs *_list files and
// OCI linux.resources.cpu.cpus) and the little-endian bitmap of a Jailhouse
// configuration.
package cpuset

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// MaxCPU bounds CPU numbers: a Jailhouse CPU bitmap holds at most 4096
// bytes, so no configuration can name a CPU at or above 32768. The bound
// also keeps hostile input such as "0-4000000000" from allocating memory.
const MaxCPU = 4096 * 8

// Set is a set of CPU numbers. The zero value is the empty set. Sets are
// values: operations return new sets and never alias their inputs.
type Set struct {
	// words is a bitmap, bit n%64 of words[n/64] for CPU n, with no
	// trailing zero words (nil when empty), so == on String and
	// reflect.DeepEqual both mean set equality.
	words []uint64
}

// Of returns the set holding the given CPUs. It panics on a CPU outside
// [0, MaxCPU), which is a programming error; use Parse for input.
func Of(cpus ...int) Set {
	var s Set
	for _, c := range cpus {
		if c < 0 || c >= MaxCPU {
			panic(fmt.Sprintf("cpuset.Of: CPU %d out of range", c))
		}
		s = s.with(c)
	}
	return s
}

// Range returns the set {lo, ..., hi}. It panics if the range is invalid.
func Range(lo, hi int) Set {
	if lo < 0 || hi >= MaxCPU || lo > hi {
		panic(fmt.Sprintf("cpuset.Range: bad range %d-%d", lo, hi))
	}
	var s Set
	for c := lo; c <= hi; c++ {
		s = s.with(c)
	}
	return s
}

func (s Set) with(c int) Set {
	w := c / 64
	out := make([]uint64, max(len(s.words), w+1))
	copy(out, s.words)
	out[w] |= 1 << (c % 64)
	return Set{words: out}
}

func trim(words []uint64) Set {
	n := len(words)
	for n > 0 && words[n-1] == 0 {
		n--
	}
	if n == 0 {
		return Set{}
	}
	return Set{words: words[:n:n]}
}

// ErrSyntax is wrapped by every Parse error.
var ErrSyntax = errors.New("invalid CPU list")

// Parse reads a range list such as "0,2-15" or "1-3". Surrounding white
// space and a trailing newline are ignored; the empty string is the empty
// set. Ranges may overlap and come in any order.
func Parse(list string) (Set, error) {
	list = strings.TrimSpace(list)
	if list == "" {
		return Set{}, nil
	}
	var words []uint64
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parseCPU(lo)
		if err != nil {
			return Set{}, fmt.Errorf("%w %q: %w", ErrSyntax, list, err)
		}
		b := a
		if isRange {
			if b, err = parseCPU(hi); err != nil {
				return Set{}, fmt.Errorf("%w %q: %w", ErrSyntax, list, err)
			}
			if b < a {
				return Set{}, fmt.Errorf("%w %q: range %d-%d is reversed", ErrSyntax, list, a, b)
			}
		}
		if need := b/64 + 1; need > len(words) {
			words = append(words, make([]uint64, need-len(words))...)
		}
		for c := a; c <= b; c++ {
			words[c/64] |= 1 << (c % 64)
		}
	}
	return trim(words), nil
}

func parseCPU(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty CPU number")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%q is not a CPU number", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n >= MaxCPU {
		return 0, fmt.Errorf("CPU %s is out of range (at most %d)", s, MaxCPU-1)
	}
	return n, nil
}

// String returns the range-list form, e.g. "0,2-15"; "" for the empty set.
func (s Set) String() string {
	var b strings.Builder
	cpus := s.CPUs()
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}

// CPUs returns the members in ascending order.
func (s Set) CPUs() []int {
	var out []int
	for w, word := range s.words {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			out = append(out, w*64+b)
			word &^= 1 << b
		}
	}
	return out
}

// Len is the number of CPUs in the set.
func (s Set) Len() int {
	n := 0
	for _, w := range s.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// IsEmpty reports whether the set has no CPU.
func (s Set) IsEmpty() bool { return len(s.words) == 0 }

// Has reports whether CPU c is in the set.
func (s Set) Has(c int) bool {
	if c < 0 || c/64 >= len(s.words) {
		return false
	}
	return s.words[c/64]&(1<<(c%64)) != 0
}

// Max returns the highest CPU, or -1 for the empty set.
func (s Set) Max() int {
	if len(s.words) == 0 {
		return -1
	}
	w := len(s.words) - 1
	return w*64 + 63 - bits.LeadingZeros64(s.words[w])
}

// Equal reports whether both sets hold the same CPUs.
func (s Set) Equal(o Set) bool {
	if len(s.words) != len(o.words) {
		return false
	}
	for i := range s.words {
		if s.words[i] != o.words[i] {
			return false
		}
	}
	return true
}

// Union returns s ∪ o.
func (s Set) Union(o Set) Set {
	out := make([]uint64, max(len(s.words), len(o.words)))
	copy(out, s.words)
	for i, w := range o.words {
		out[i] |= w
	}
	return trim(out)
}

// Intersect returns s ∩ o.
func (s Set) Intersect(o Set) Set {
	out := make([]uint64, min(len(s.words), len(o.words)))
	for i := range out {
		out[i] = s.words[i] & o.words[i]
	}
	return trim(out)
}

// Minus returns s \ o.
func (s Set) Minus(o Set) Set {
	out := make([]uint64, len(s.words))
	copy(out, s.words)
	for i := 0; i < len(out) && i < len(o.words); i++ {
		out[i] &^= o.words[i]
	}
	return trim(out)
}

// SubsetOf reports whether every CPU of s is in o.
func (s Set) SubsetOf(o Set) bool { return s.Minus(o).IsEmpty() }

// BitmapSize is the smallest Jailhouse cpu_set_size for s: a multiple of 8
// bytes (the hypervisor reads the bitmap as 64-bit words), at least 8.
func (s Set) BitmapSize() int { return max(len(s.words), 1) * 8 }

// Bitmap returns the set as a little-endian bitmap of size bytes, as stored
// in a configuration. It fails if a CPU does not fit.
func (s Set) Bitmap(size int) ([]byte, error) {
	if s.Max() >= size*8 {
		return nil, fmt.Errorf("CPU %d does not fit a %d-byte CPU bitmap", s.Max(), size)
	}
	out := make([]byte, size)
	for _, c := range s.CPUs() {
		out[c/8] |= 1 << (c % 8)
	}
	return out, nil
}

// FromBitmap reads a little-endian CPU bitmap of any length up to
// MaxCPU/8 bytes.
func FromBitmap(b []byte) (Set, error) {
	if len(b) > MaxCPU/8 {
		return Set{}, fmt.Errorf("CPU bitmap of %d bytes is larger than %d", len(b), MaxCPU/8)
	}
	words := make([]uint64, (len(b)+7)/8)
	for i, v := range b {
		words[i/8] |= uint64(v) << (8 * (i % 8))
	}
	return trim(words), nil
}

// ParseMask reads the kernel's hex bitmap format used by sysfs cpumask
// files: comma-separated groups of up to 32 bits, most significant first,
// e.g. "ffff", "fffd" or "00000001,00000000".
func ParseMask(mask string) (Set, error) {
	mask = strings.TrimSpace(mask)
	if mask == "" {
		return Set{}, nil
	}
	groups := strings.Split(mask, ",")
	if len(groups)*32 > MaxCPU {
		return Set{}, fmt.Errorf("%w: mask %q is too long", ErrSyntax, mask)
	}
	words := make([]uint64, (len(groups)+1)/2)
	for i, g := range groups {
		if g == "" || len(g) > 8 {
			return Set{}, fmt.Errorf("%w: bad mask group %q in %q", ErrSyntax, g, mask)
		}
		v, err := strconv.ParseUint(g, 16, 32)
		if err != nil {
			return Set{}, fmt.Errorf("%w: bad mask group %q in %q", ErrSyntax, g, mask)
		}
		idx := len(groups) - 1 - i // group index from the least significant end
		words[idx/2] |= v << (32 * (idx % 2))
	}
	return trim(words), nil
}

// MarshalText returns the range-list form.
func (s Set) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses the range-list form.
func (s *Set) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
