// Package undo holds AT mode's undo records: the model, its encoding, the
// dirty check and the compensating SQL.
//
// A Record is what one statement did to one table: the table, the kind of
// statement (Op), the primary-key columns, and the rows before and after
// (each Row is the table's columns in order, name and Value). A Log is all
// records of one branch, in execution order; it is stored in the undo_log
// table (LogTableDDL) in the branch's own local transaction.
//
// Values come from a closed set of kinds (Kind): NULL, int64, uint64,
// decimal text, float64 bits, bytes, string bytes, temporal text. Integers
// and decimals are never floats; floats keep their bits; strings keep the
// bytes stored in the column's character set; temporal values keep MySQL's
// text with the column's fractional digits (TIMESTAMP in UTC). How a
// dialect reads and writes each SQL type is its business (see
// datasource/mysqldialect); this package only stores, compares and binds values.
//
// Encode writes a compact, versioned binary form (magic "XU", version 1,
// varints, a CRC-32C) within Limits; Decode checks everything and never
// trusts the data for types, sizes or names.
//
// Rollback of one record, inside one local transaction:
//
//	log, err := undo.Decode(rollbackInfo)
//	for i := len(log.Records) - 1; i >= 0; i-- {
//		rec := &log.Records[i]
//		current := readRowsByKey(rec)          // dialect: same columns as the images, FOR UPDATE
//		todo, err := rec.Check(current)        // *DirtyError (errors.Is(err, undo.ErrDirty)) if someone else wrote
//		stmts, err := rec.Compensation(table, todo) // table: live schema from the dialect
//		for _, s := range stmts {
//			res, err := tx.ExecContext(ctx, s.SQL, s.Args...)
//			// RowsAffected must equal s.Rows
//		}
//	}
//
// Lock keys (LockKey, Record.LockKeys) are the canonical, escaped
// (table, primary key) strings that the TC locks within a resource;
// LockKeyTable reads the table back out of one.
package undo
