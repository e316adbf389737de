package cpuset

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		str  string
	}{
		{"", nil, ""},
		{"\n", nil, ""},
		{"0", []int{0}, "0"},
		{"1-3", []int{1, 2, 3}, "1-3"},
		{"0,2-15\n", []int{0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, "0,2-15"},
		{"3,1,2", []int{1, 2, 3}, "1-3"},
		{"0-1,1-2", []int{0, 1, 2}, "0-2"},
		{"63,64,127,128", []int{63, 64, 127, 128}, "63-64,127-128"},
		{"0-1,4-15", []int{0, 1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, "0-1,4-15"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := Parse(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, s.CPUs())
			assert.Equal(t, tt.str, s.String())
			assert.Equal(t, len(tt.want), s.Len())
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{",", "1,", "a", "-1", "1-", "3-1", "1--2", "0-4000000000", "32768", " 1 - 2", "+1", "0x1"} {
		t.Run(in, func(t *testing.T) {
			_, err := Parse(in)
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrSyntax), "error %v should wrap ErrSyntax", err)
		})
	}
}

func TestBitmap(t *testing.T) {
	s := Of(0, 2, 3, 15)
	assert.Equal(t, 8, s.BitmapSize())
	b, err := s.Bitmap(8)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x0d, 0x80, 0, 0, 0, 0, 0, 0}, b)
	back, err := FromBitmap(b)
	require.NoError(t, err)
	assert.True(t, back.Equal(s))
	assert.Equal(t, s, back, "trailing zero words must be trimmed so DeepEqual works")

	_, err = Of(64).Bitmap(8)
	require.Error(t, err)
	assert.Equal(t, 16, Of(64).BitmapSize())
	assert.Equal(t, 8, Set{}.BitmapSize())
}

func TestParseMask(t *testing.T) {
	tests := map[string]string{
		"ffff\n":              "0-15",
		"fffd":                "0,2-15",
		"0002":                "1",
		"0000":                "",
		"00000001,00000000":   "32",
		"1,00000000,00000003": "0-1,64",
	}
	for in, want := range tests {
		s, err := ParseMask(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, s.String(), in)
	}
	for _, bad := range []string{"g", ",", "123456789", "1,,2"} {
		_, err := ParseMask(bad)
		assert.Error(t, err, bad)
	}
}

func TestSetOps(t *testing.T) {
	a, b := Range(0, 15), Of(2, 3)
	assert.Equal(t, "0-1,4-15", a.Minus(b).String())
	assert.Equal(t, "2-3", a.Intersect(b).String())
	assert.True(t, b.SubsetOf(a))
	assert.False(t, a.SubsetOf(b))
	assert.Equal(t, "0-15", a.Minus(b).Union(b).String())
	assert.Equal(t, 15, a.Max())
	assert.Equal(t, -1, Set{}.Max())
	assert.True(t, Set{}.Equal(a.Minus(a)))
	assert.Equal(t, Set{}, a.Minus(a))
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0,2-15", "1-3", "", "0-32767", "5,5,5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			return
		}
		again, err := Parse(s.String())
		if err != nil || !again.Equal(s) {
			t.Fatalf("round trip of %q via %q failed: %v", in, s.String(), err)
		}
		b, err := s.Bitmap(s.BitmapSize())
		if err != nil {
			t.Fatal(err)
		}
		fb, err := FromBitmap(b)
		if err != nil || !fb.Equal(s) {
			t.Fatalf("bitmap round trip of %q failed", in)
		}
	})
}

func FuzzParseMask(f *testing.F) {
	for _, s := range []string{"ffff", "fffd", "00000001,00000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		_, _ = ParseMask(in)
	})
}
