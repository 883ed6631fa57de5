package storage

import (
	"errors"

	"gorm.io/gorm"
)

// IsRefusal reports whether err is the database refusing a statement for the
// content it carries — a data exception (SQLSTATE class 22: invalid byte
// sequence, value too long, out of range) or an integrity constraint (class
// 23: unique, foreign key, not-null, check), or SQLite's equivalents (too
// big, constraint, datatype mismatch). Such a statement fails again however
// often it is retried.
//
// Everything else — a terminated connection (57P01, 08xxx, EOF), a
// serialization failure (40001), a deadlock (40P01), a timeout or cancelled
// context, an error of unknown origin — may pass, and is not a refusal: a
// caller must never end work permanently because of it.
func IsRefusal(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) || errors.Is(err, gorm.ErrForeignKeyViolated) ||
		errors.Is(err, gorm.ErrCheckConstraintViolated) {
		return true
	}
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		code := pg.SQLState()
		return len(code) == 5 && (code[:2] == "22" || code[:2] == "23")
	}
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		switch lite.Code() & 0xff { // the primary result code of an extended one
		case 18, 19, 20: // SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH
			return true
		}
	}
	return false
}
