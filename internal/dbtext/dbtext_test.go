package dbtext_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/internal/dbtext"
)

func TestTruncateNeverSplitsARune(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short", "abc", 10, "abc"},
		{"exact", "abc", 3, "abc"},
		{"ascii cut", "abcdef", 4, "abcd"},
		{"two-byte rune at edge", "aé", 2, "a"},
		{"three-byte rune at edge", "a€b", 3, "a"},
		{"four-byte rune at edge", "ab😀", 5, "ab"},
		{"rune fits", "a€b", 4, "a€"},
		{"zero", "abc", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := dbtext.Truncate(tc.in, tc.n)
			require.Equal(t, tc.want, got)
			require.True(t, utf8.ValidString(got))
		})
	}
}

func TestCleanMakesAnyBytesStorable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   []byte
		n    int
		want string
	}{
		{"valid", []byte("héllo"), 100, "héllo"},
		{"nul dropped", []byte("a\x00b"), 100, "ab"},
		{"invalid replaced", []byte("a\xffb"), 100, "a\uFFFDb"},
		{"replacement still capped", []byte("\xff\xff\xff"), 4, "\uFFFD"},
		{"cut inside a rune of the input", []byte(strings.Repeat("é", 10)), 5, "éé"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := dbtext.Clean(tc.in, tc.n)
			require.Equal(t, tc.want, got)
			require.LessOrEqual(t, len(got), tc.n)
			require.True(t, utf8.ValidString(got))
			require.Equal(t, got, dbtext.CleanString(string(tc.in), tc.n))
		})
	}
}
