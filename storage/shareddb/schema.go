package shareddb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// SchemaVersion is the version of the coordinator's schema this xact
// reads and writes. Open refuses a database at another version; Migrate
// brings an older one (or an empty one) to it.
const SchemaVersion = 1

// ErrSchema: the database holds no coordinator schema, or one of a version
// this xact does not serve. Errors wrapping it say which, and the command
// that fixes it.
var ErrSchema = errors.New("shareddb: coordinator schema")

// The tables. Every byte string (XIDs, names, resources, keys) is binary,
// compared and ordered byte by byte. A time is two columns, Unix seconds
// and nanoseconds (the zero time is the seconds of year 1), so every time
// round-trips exactly, before 1970 and after 2262 too; expires_at is
// Unix nanoseconds.
var schemas = map[Dialect][]string{
	MySQL: {
		`CREATE TABLE IF NOT EXISTS xact_schema (
  id INT NOT NULL PRIMARY KEY,
  version INT NOT NULL
) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS xact_globals (
  xid VARBINARY(256) NOT NULL PRIMARY KEY,
  name BLOB NOT NULL,
  status INT NOT NULL,
  timeout_ns BIGINT NOT NULL,
  began_at_s BIGINT NOT NULL,
  began_at_ns INT NOT NULL,
  deadline_s BIGINT NOT NULL,
  deadline_ns INT NOT NULL,
  next_at_s BIGINT NOT NULL,
  next_at_ns INT NOT NULL,
  attempts BIGINT NOT NULL,
  branch_seq BIGINT NOT NULL,
  parked BOOLEAN NOT NULL,
  reason BLOB NOT NULL,
  updated_at_s BIGINT NOT NULL,
  updated_at_ns INT NOT NULL,
  history BLOB NOT NULL,
  finished BOOLEAN NOT NULL,
  locks_released BOOLEAN NOT NULL,
  expires_at BIGINT NOT NULL,
  owner VARBINARY(256) NOT NULL,
  owner_epoch BIGINT NOT NULL,
  KEY xact_globals_due (finished, next_at_s, next_at_ns)
) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS xact_branches (
  xid VARBINARY(256) NOT NULL,
  branch_id BIGINT NOT NULL,
  resource BLOB NOT NULL,
  branch_type INT NOT NULL,
  status INT NOT NULL,
  lock_keys LONGBLOB NOT NULL,
  app_data LONGBLOB NOT NULL,
  registered_at_s BIGINT NOT NULL,
  registered_at_ns INT NOT NULL,
  reason BLOB NOT NULL,
  attempts BIGINT NOT NULL,
  locks_released BOOLEAN NOT NULL,
  PRIMARY KEY (xid, branch_id)
) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS xact_locks (
  resource VARBINARY(256) NOT NULL,
  row_key VARBINARY(2048) NOT NULL,
  xid VARBINARY(256) NOT NULL,
  branch_id BIGINT NOT NULL,
  PRIMARY KEY (resource, row_key),
  KEY xact_locks_holder (xid, branch_id)
) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS xact_nodes (
  node_id VARBINARY(256) NOT NULL PRIMARY KEY,
  epoch BIGINT NOT NULL,
  lease_until BIGINT NOT NULL,
  addr VARBINARY(256) NOT NULL
) ENGINE=InnoDB`,
	},
	Postgres: {
		`CREATE TABLE IF NOT EXISTS xact_schema (
  id INTEGER NOT NULL PRIMARY KEY,
  version INTEGER NOT NULL
)`,
		`CREATE TABLE IF NOT EXISTS xact_globals (
  xid BYTEA NOT NULL PRIMARY KEY,
  name BYTEA NOT NULL,
  status INTEGER NOT NULL,
  timeout_ns BIGINT NOT NULL,
  began_at_s BIGINT NOT NULL,
  began_at_ns INT NOT NULL,
  deadline_s BIGINT NOT NULL,
  deadline_ns INT NOT NULL,
  next_at_s BIGINT NOT NULL,
  next_at_ns INT NOT NULL,
  attempts BIGINT NOT NULL,
  branch_seq BIGINT NOT NULL,
  parked BOOLEAN NOT NULL,
  reason BYTEA NOT NULL,
  updated_at_s BIGINT NOT NULL,
  updated_at_ns INT NOT NULL,
  history BYTEA NOT NULL,
  finished BOOLEAN NOT NULL,
  locks_released BOOLEAN NOT NULL,
  expires_at BIGINT NOT NULL,
  owner BYTEA NOT NULL,
  owner_epoch BIGINT NOT NULL
)`,
		`CREATE INDEX IF NOT EXISTS xact_globals_due ON xact_globals (finished, next_at_s, next_at_ns)`,
		`CREATE TABLE IF NOT EXISTS xact_branches (
  xid BYTEA NOT NULL,
  branch_id BIGINT NOT NULL,
  resource BYTEA NOT NULL,
  branch_type INTEGER NOT NULL,
  status INTEGER NOT NULL,
  lock_keys BYTEA NOT NULL,
  app_data BYTEA NOT NULL,
  registered_at_s BIGINT NOT NULL,
  registered_at_ns INT NOT NULL,
  reason BYTEA NOT NULL,
  attempts BIGINT NOT NULL,
  locks_released BOOLEAN NOT NULL,
  PRIMARY KEY (xid, branch_id)
)`,
		`CREATE TABLE IF NOT EXISTS xact_locks (
  resource BYTEA NOT NULL,
  row_key BYTEA NOT NULL,
  xid BYTEA NOT NULL,
  branch_id BIGINT NOT NULL,
  PRIMARY KEY (resource, row_key)
)`,
		`CREATE INDEX IF NOT EXISTS xact_locks_holder ON xact_locks (xid, branch_id)`,
		`CREATE TABLE IF NOT EXISTS xact_nodes (
  node_id BYTEA NOT NULL PRIMARY KEY,
  epoch BIGINT NOT NULL,
  lease_until BIGINT NOT NULL,
  addr BYTEA NOT NULL
)`,
	},
}

// Schema returns the DDL of the coordinator's schema at SchemaVersion for
// dialect d (`xact sql coordinator-schema`), ending with the statement
// that records the version.
func Schema(d Dialect) (string, error) {
	stmts, ok := schemas[d]
	if !ok {
		return "", fmt.Errorf("shareddb: unknown dialect %q (want %s or %s)", d, MySQL, Postgres)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "-- xact coordinator schema, version %d (%s)\n", SchemaVersion, d)
	for _, s := range stmts {
		b.WriteString(s)
		b.WriteString(";\n")
	}
	fmt.Fprintf(&b, "INSERT INTO xact_schema (id, version) VALUES (1, %d);\n", SchemaVersion)
	return b.String(), nil
}

// schemaVersion reads the recorded version; 0 if the database has no
// coordinator schema at all.
func schemaVersion(ctx context.Context, db *gorm.DB) (int, error) {
	if !db.Migrator().HasTable("xact_schema") {
		return 0, nil
	}
	var v []int
	if err := db.WithContext(ctx).Raw("SELECT version FROM xact_schema WHERE id = 1").Scan(&v).Error; err != nil {
		return 0, fmt.Errorf("shareddb: read the schema version: %w", err)
	}
	if len(v) == 0 {
		return 0, nil
	}
	return v[0], nil
}

// checkSchema refuses a database whose schema is not SchemaVersion,
// naming the command that fixes it.
func checkSchema(ctx context.Context, db *gorm.DB, d Dialect) error {
	v, err := schemaVersion(ctx, db)
	switch {
	case err != nil:
		return err
	case v == SchemaVersion:
		return nil
	case v == 0:
		return fmt.Errorf("%w: the database has none; create it with `xact sql migrate --store %s --store-dsn …` (or apply `xact sql coordinator-schema --dialect %s`)", ErrSchema, d, d)
	case v < SchemaVersion:
		return fmt.Errorf("%w: version %d, this xact serves %d; upgrade it with `xact sql migrate --store %s --store-dsn …`", ErrSchema, v, SchemaVersion, d)
	default:
		return fmt.Errorf("%w: version %d is newer than this xact (%d) knows; run the xact that wrote it", ErrSchema, v, SchemaVersion)
	}
}

// Migrate brings the database's coordinator schema to SchemaVersion: it
// creates it in a database that has none, and refuses one that is newer.
// It returns the versions before and after. Safe to run again.
func Migrate(ctx context.Context, d Dialect, dsn string) (from, to int, err error) {
	db, err := openDB(d, dsn)
	if err != nil {
		return 0, 0, err
	}
	defer closeDB(db)
	from, err = schemaVersion(ctx, db)
	if err != nil {
		return 0, 0, err
	}
	switch {
	case from == SchemaVersion:
		return from, from, nil
	case from > SchemaVersion:
		return from, from, fmt.Errorf("%w: version %d is newer than this xact (%d) knows", ErrSchema, from, SchemaVersion)
	}
	for _, s := range schemas[d] {
		if err := db.WithContext(ctx).Exec(s).Error; err != nil {
			return from, from, fmt.Errorf("shareddb: migrate: %w", err)
		}
	}
	if err := db.WithContext(ctx).Exec("INSERT INTO xact_schema (id, version) VALUES (1, ?)", SchemaVersion).Error; err != nil {
		return from, from, fmt.Errorf("shareddb: migrate: record the version: %w", err)
	}
	return from, SchemaVersion, nil
}
