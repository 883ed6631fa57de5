// Package dbtext makes arbitrary text fit a bounded text column: valid UTF-8,
// no NUL bytes (PostgreSQL refuses both), at most n bytes, cut on a rune
// boundary. It owns no storage and imports nothing of the project.
package dbtext

import (
	"strings"
	"unicode/utf8"
)

// Truncate returns the longest prefix of s of at most n bytes that does not
// end inside a UTF-8 sequence. Invalid bytes already in s are left alone
// (use Clean for text from outside).
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	cut := n
	// Step back over continuation bytes of a rune that would be split.
	for cut > 0 && cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if cut > 0 && !utf8.RuneStart(s[cut]) {
		cut = n // not UTF-8 at all here: a byte cut changes nothing
	}
	return s[:cut]
}

// Clean makes b storable in a text column of n bytes: invalid UTF-8
// sequences become U+FFFD, NUL bytes are dropped, and the result is cut to
// at most n bytes on a rune boundary.
func Clean(b []byte, n int) string {
	// Only the first n bytes can survive, but an invalid byte grows to three
	// when replaced, so cleaning more than n input bytes is never needed.
	if len(b) > n {
		b = b[:n]
	}
	s := string(b)
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return Truncate(s, n)
}

// CleanString is Clean for a string.
func CleanString(s string, n int) string {
	if len(s) <= n && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return Clean([]byte(s), n)
}
