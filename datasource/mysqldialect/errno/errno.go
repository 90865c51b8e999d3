// Package errno names the MySQL and MariaDB server errors that xact reacts
// to and reads their numbers from the driver's errors
// (go-sql-driver/mysql's *MySQLError):
//
//	switch errno.Of(err) {
//	case errno.LockDeadlock: // InnoDB rolled the whole transaction back
//	case errno.DupEntry:     // a unique key said no
//	}
//
// It belongs to the MySQL dialect (datasource/mysqldialect) but stands apart
// from it, so that the TCC fence (rm/fence) classifies errors without
// linking the dialect's SQL parser.
package errno

import (
	"errors"

	"github.com/go-sql-driver/mysql"
)

// Server error numbers (MySQL's ER_* names).
const (
	// BadNull (ER_BAD_NULL_ERROR): NULL in a NOT NULL column.
	BadNull = 1048
	// BadField (ER_BAD_FIELD_ERROR): unknown column.
	BadField = 1054
	// DupEntry (ER_DUP_ENTRY): duplicate value for a unique key.
	DupEntry = 1062
	// ParseError (ER_PARSE_ERROR): SQL syntax error.
	ParseError = 1064
	// NoSuchTable (ER_NO_SUCH_TABLE): unknown table.
	NoSuchTable = 1146
	// LockWaitTimeout (ER_LOCK_WAIT_TIMEOUT): the statement, or with
	// innodb_rollback_on_timeout the whole transaction, was rolled back.
	LockWaitTimeout = 1205
	// LockDeadlock (ER_LOCK_DEADLOCK): InnoDB rolled the whole transaction
	// back.
	LockDeadlock = 1213
	// WarnDataOutOfRange (ER_WARN_DATA_OUT_OF_RANGE): a value does not fit
	// its column (strict mode).
	WarnDataOutOfRange = 1264
	// TruncatedWrongValue (ER_TRUNCATED_WRONG_VALUE): a value is not of
	// its column's type (strict mode).
	TruncatedWrongValue = 1292
	// SPDoesNotExist (ER_SP_DOES_NOT_EXIST): also "SAVEPOINT %s does not
	// exist".
	SPDoesNotExist = 1305
	// TruncatedWrongValueForField (ER_TRUNCATED_WRONG_VALUE_FOR_FIELD).
	TruncatedWrongValueForField = 1366
	// DataTooLong (ER_DATA_TOO_LONG): a string does not fit its column.
	DataTooLong = 1406
)

// Of returns the server error number of err (of the *mysql.MySQLError in
// its chain), or 0 if it has none.
func Of(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}
