package storage

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
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

// IsTransient reports whether err is the database (or the way to it) failing
// for a while rather than refusing the work: a lost or refused connection
// (SQLSTATE classes 08 and 57, EOF, a closed pool), a serialization failure
// or deadlock (class 40), insufficient resources (class 53), or SQLite being
// busy or locked. Work that failed this way has not been tried and must not
// use up its attempts.
func IsTransient(err error) bool {
	if err == nil || IsRefusal(err) {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "sql: database is closed") {
		return true
	}
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		switch code := pg.SQLState(); {
		case len(code) != 5:
			return false
		default:
			switch code[:2] {
			case "08", "40", "53", "57":
				return true
			}
			return false
		}
	}
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		switch lite.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}
