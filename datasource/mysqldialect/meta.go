package mysqldialect

import (
	"context"
	"database/sql/driver"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xact-io/xact/undo"
)

// Table is the metadata of one table, read from information_schema.
type Table struct {
	Schema  string
	Name    string // as stored in the catalog
	Engine  string
	Columns []Column // in table order
	// PrimaryKey are the columns that identify a row, in key order: the
	// primary key, or for a table without one the unique key InnoDB
	// would cluster by (see rowKeyFromUnique). Images, lock keys and
	// compensations find rows by them.
	PrimaryKey []string
	// KeyIndex names the index of PrimaryKey: "PRIMARY" or a unique
	// index.
	KeyIndex string
	// UniqueKeys are the unique indexes other than the primary key.
	UniqueKeys []Index
	// AutoIncrement names the AUTO_INCREMENT column, if any.
	AutoIncrement string
	// Triggers are the events (INSERT, UPDATE, DELETE) that fire triggers.
	Triggers []string
	// CascadedBy is true when a foreign key that references this table
	// deletes or updates child rows (CASCADE, SET NULL, SET DEFAULT):
	// those changes happen without images.
	CascadedBy bool
	loaded     time.Time
}

// Index is a unique index.
type Index struct {
	Name    string
	Columns []string
	// Partial is true when the index covers a prefix or an expression, so
	// equality of whole column values does not decide a conflict.
	Partial bool
}

// Column is one column of a table.
type Column struct {
	Name          string
	DataType      string // information_schema DATA_TYPE, lower case ("bigint", "varchar")
	ColumnType    string // full type ("bigint(20) unsigned")
	Nullable      bool
	HasDefault    bool // COLUMN_DEFAULT is not NULL
	Generated     bool // VIRTUAL or STORED generated, or system-versioning
	OnUpdate      bool // ON UPDATE CURRENT_TIMESTAMP: the database sets it when the row changes
	Invisible     bool // not part of SELECT * or of INSERT without a column list
	AutoIncrement bool
	Charset       string // "" for non-character columns
	Collation     string
	Precision     int // fractional digits of temporal columns
	class         class
}

// class is how a column's values are captured and written back.
type class uint8

const (
	classInt       class = iota + 1 // signed integers and YEAR: the value, Int
	classUint                       // unsigned integers: the value, Uint
	classBit                        // BIT: big-endian bytes, Uint
	classDecimal                    // DECIMAL: text, Decimal
	classFloat                      // FLOAT: CAST(c AS DOUBLE) (the text protocol rounds FLOAT to 6 digits), Float
	classDouble                     // DOUBLE: the value, Float
	classTemporal                   // DATE, DATETIME, TIME: CAST(c AS CHAR), Time
	classTimestamp                  // TIMESTAMP: UNIX_TIMESTAMP(c) turned into UTC text, Time
	classString                     // character columns: CAST(c AS BINARY), String; written back by CONVERT(… USING charset)
	classText                       // UUID, INET4, INET6: CAST(c AS CHAR), String (ASCII)
	classBytes                      // binary and spatial columns: the value, Bytes
)

var dataTypeClass = map[string]class{
	"tinyint": classInt, "smallint": classInt, "mediumint": classInt, "int": classInt, "integer": classInt, "bigint": classInt,
	"year":    classInt,
	"bit":     classBit,
	"decimal": classDecimal, "numeric": classDecimal,
	"float":  classFloat,
	"double": classDouble, "real": classDouble, "double precision": classDouble,
	"date": classTemporal, "datetime": classTemporal, "time": classTemporal,
	"timestamp": classTimestamp,
	"char":      classString, "varchar": classString, "tinytext": classString, "text": classString,
	"mediumtext": classString, "longtext": classString, "enum": classString, "set": classString,
	"json": classString,
	"uuid": classText, "inet4": classText, "inet6": classText,
	"binary": classBytes, "varbinary": classBytes, "tinyblob": classBytes, "blob": classBytes,
	"mediumblob": classBytes, "longblob": classBytes,
	"geometry": classBytes, "point": classBytes, "linestring": classBytes, "polygon": classBytes,
	"multipoint": classBytes, "multilinestring": classBytes, "multipolygon": classBytes,
	"geometrycollection": classBytes, "geomcollection": classBytes,
}

// charsetName guards the character set and collation names that go into
// SQL text.
var charsetName = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// selectExpr returns the expression that reads column c of the table
// source qualified by q for an image.
func (c *Column) selectExpr(q string) string {
	col := q + "." + quote(c.Name)
	switch c.class {
	case classFloat:
		return "CAST(" + col + " AS DOUBLE)"
	case classTemporal, classText:
		return "CAST(" + col + " AS CHAR)"
	case classTimestamp:
		return "UNIX_TIMESTAMP(" + col + ")"
	case classString:
		return "CAST(" + col + " AS BINARY)"
	}
	return col
}

// bindExpr returns the SQL that turns one bound image value into a value
// of the column: for character columns the raw bytes, sent as hex text,
// are reinterpreted in the column's charset and collation, whatever the
// connection's charset and protocol (a []byte argument would be taken as
// text in the connection's charset by prepared statements).
func (c *Column) bindExpr() (expr string, hex bool) {
	if c.class == classString && c.Charset != "" {
		return "CONVERT(UNHEX(?) USING " + c.Charset + ") COLLATE " + c.Collation, true
	}
	return "", false
}

// Column returns the column named name (case-insensitive, as MySQL).
func (t *Table) Column(name string) (*Column, bool) {
	for i := range t.Columns {
		if strings.EqualFold(t.Columns[i].Name, name) {
			return &t.Columns[i], true
		}
	}
	return nil, false
}

// isKey reports whether name is a primary-key column.
func (t *Table) isKey(name string) bool {
	return slices.ContainsFunc(t.PrimaryKey, func(k string) bool { return strings.EqualFold(k, name) })
}

// hasTrigger reports whether event fires a trigger on the table.
func (t *Table) hasTrigger(event string) bool { return slices.Contains(t.Triggers, event) }

// Undo returns the live-schema description that undo's compensating SQL
// builder needs.
func (t *Table) Undo() *undo.Table {
	ut := &undo.Table{Name: t.Name, PrimaryKey: t.PrimaryKey}
	for i := range t.Columns {
		c := &t.Columns[i]
		bind, hex := c.bindExpr()
		ut.Columns = append(ut.Columns, undo.Column{Name: c.Name, Generated: c.Generated, Bind: bind, Hex: hex})
	}
	return ut
}

// usable checks that AT mode can image rows of the table: a base table on
// a transactional engine, a primary key, and columns of known types.
func (t *Table) usable() error {
	if !strings.EqualFold(t.Engine, "InnoDB") {
		return unsupported("table %s uses engine %s; undo needs a transactional engine (InnoDB)", t.Name, t.Engine)
	}
	if len(t.PrimaryKey) == 0 {
		return unsupported("table %s has no primary key and no unique key over NOT NULL columns; AT mode identifies rows by such a key", t.Name)
	}
	for i := range t.Columns {
		c := &t.Columns[i]
		if c.class == 0 {
			return unsupported("column %s.%s has type %s, which AT mode cannot capture exactly", t.Name, c.Name, c.ColumnType)
		}
	}
	for _, k := range t.PrimaryKey {
		c, _ := t.Column(k)
		if c.class == classTimestamp {
			return unsupported("primary-key column %s.%s is a TIMESTAMP, which cannot be matched independently of the session time zone", t.Name, c.Name)
		}
	}
	return nil
}

// rowKeyFromUnique makes a unique key the row key of a table without a
// primary key, much as InnoDB picks its clustered index (it takes the
// first in definition order, which information_schema does not show): the
// first unique index by name, so that every process picks the same one,
// whose
// columns are all NOT NULL and whole (no prefix, no expression). Such a
// key identifies a row exactly as a primary key does; a nullable one does
// not (NULLs never conflict), so without one the table stays unusable.
func (t *Table) rowKeyFromUnique() {
	if len(t.PrimaryKey) > 0 {
		t.KeyIndex = "PRIMARY"
		return
	}
	for i, ix := range t.UniqueKeys {
		if ix.Partial {
			continue
		}
		ok := true
		for _, name := range ix.Columns {
			c, found := t.Column(name)
			if !found || c.Nullable || c.Generated {
				ok = false
				break
			}
		}
		if ok {
			t.PrimaryKey, t.KeyIndex = ix.Columns, ix.Name
			t.UniqueKeys = slices.Delete(slices.Clone(t.UniqueKeys), i, i+1)
			return
		}
	}
}

// loadTable reads the metadata of table name in the connection's current
// database. It returns ErrTableNotFound if there is no such base table.
func loadTable(ctx context.Context, conn driver.Conn, name string) (*Table, error) {
	t, err := loadShape(ctx, conn, name)
	if err != nil {
		return nil, err
	}
	if err := t.loadDependents(ctx, conn); err != nil {
		return nil, err
	}
	return t, nil
}

// loadShape reads what a rollback replays against: the table, its
// columns and its unique keys. Not the triggers and the foreign keys that
// reference it, which only phase one's refusals need (loadDependents); on
// MariaDB the foreign-key query opens every table of the server and took
// ~24 ms under load, ten times the rest.
func loadShape(ctx context.Context, conn driver.Conn, name string) (*Table, error) {
	rows, err := queryRows(ctx, conn,
		"SELECT DATABASE(), `TABLE_NAME`, `TABLE_TYPE`, `ENGINE` FROM `information_schema`.`TABLES` "+
			"WHERE `TABLE_SCHEMA` = DATABASE() AND `TABLE_NAME` = ?", []any{name})
	if err != nil {
		return nil, fmt.Errorf("mysql: read metadata of %s: %w", name, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: %w: %s not found in the connection's database (temporary tables are not supported in a branch)", ErrUnsupported, ErrTableNotFound, name)
	}
	t := &Table{Schema: str(rows[0][0]), Name: str(rows[0][1]), Engine: str(rows[0][3])}
	if tt := str(rows[0][2]); tt != "BASE TABLE" && tt != "SYSTEM VERSIONED" {
		return nil, unsupported("%s is a %s; write to its base tables", t.Name, strings.ToLower(tt))
	}
	if tt := str(rows[0][2]); tt == "SYSTEM VERSIONED" {
		return nil, unsupported("%s is system-versioned; its history rows cannot be undone", t.Name)
	}

	cols, err := queryRows(ctx, conn,
		"SELECT `COLUMN_NAME`, `DATA_TYPE`, `COLUMN_TYPE`, `IS_NULLABLE`, `COLUMN_DEFAULT` IS NOT NULL, `EXTRA`, "+
			"`CHARACTER_SET_NAME`, `COLLATION_NAME`, `DATETIME_PRECISION`, `COLUMN_KEY` "+
			"FROM `information_schema`.`COLUMNS` WHERE `TABLE_SCHEMA` = DATABASE() AND `TABLE_NAME` = ? "+
			"ORDER BY `ORDINAL_POSITION`", []any{t.Name})
	if err != nil {
		return nil, fmt.Errorf("mysql: read columns of %s: %w", t.Name, err)
	}
	for _, r := range cols {
		extra := strings.ToLower(str(r[5]))
		c := Column{
			Name:          str(r[0]),
			DataType:      strings.ToLower(str(r[1])),
			ColumnType:    str(r[2]),
			Nullable:      str(r[3]) == "YES",
			HasDefault:    num(r[4]) != 0,
			Generated:     generatedExtra(extra),
			Invisible:     strings.Contains(extra, "invisible"),
			AutoIncrement: strings.Contains(extra, "auto_increment"),
			OnUpdate:      strings.Contains(extra, "on update"),
			Charset:       str(r[6]),
			Collation:     str(r[7]),
			Precision:     int(num(r[8])),
		}
		c.class = dataTypeClass[c.DataType]
		if c.class == classInt && strings.Contains(strings.ToLower(c.ColumnType), "unsigned") {
			c.class = classUint
		}
		if c.class == classString && c.Charset != "" && (!charsetName.MatchString(c.Charset) || !charsetName.MatchString(c.Collation)) {
			return nil, unsupported("column %s.%s has charset %q collation %q", t.Name, c.Name, c.Charset, c.Collation)
		}
		if c.class == classString && c.Charset == "" {
			// MySQL's JSON type has no charset: its text is utf8mb4.
			c.Charset, c.Collation = "utf8mb4", "utf8mb4_bin"
		}
		if c.AutoIncrement {
			t.AutoIncrement = c.Name
		}
		t.Columns = append(t.Columns, c)
	}

	idx, err := queryRows(ctx, conn,
		"SELECT `INDEX_NAME`, `COLUMN_NAME`, `SUB_PART` IS NOT NULL FROM `information_schema`.`STATISTICS` "+
			"WHERE `TABLE_SCHEMA` = DATABASE() AND `TABLE_NAME` = ? AND `NON_UNIQUE` = 0 "+
			"ORDER BY `INDEX_NAME`, `SEQ_IN_INDEX`", []any{t.Name})
	if err != nil {
		return nil, fmt.Errorf("mysql: read indexes of %s: %w", t.Name, err)
	}
	var cur *Index
	for _, r := range idx {
		iname, col := str(r[0]), str(r[1])
		if iname == "PRIMARY" {
			t.PrimaryKey = append(t.PrimaryKey, col)
			continue
		}
		if cur == nil || cur.Name != iname {
			t.UniqueKeys = append(t.UniqueKeys, Index{Name: iname})
			cur = &t.UniqueKeys[len(t.UniqueKeys)-1]
		}
		if col == "" || num(r[2]) != 0 {
			cur.Partial = true
		}
		cur.Columns = append(cur.Columns, col)
	}
	t.rowKeyFromUnique()
	return t, nil
}

// loadDependents reads the triggers of t and whether a foreign key
// cascades changes of t's rows into other rows.
func (t *Table) loadDependents(ctx context.Context, conn driver.Conn) error {
	trg, err := queryRows(ctx, conn,
		"SELECT DISTINCT `EVENT_MANIPULATION` FROM `information_schema`.`TRIGGERS` "+
			"WHERE `EVENT_OBJECT_SCHEMA` = DATABASE() AND `EVENT_OBJECT_TABLE` = ?", []any{t.Name})
	if err != nil {
		return fmt.Errorf("mysql: read triggers of %s: %w", t.Name, err)
	}
	for _, r := range trg {
		t.Triggers = append(t.Triggers, strings.ToUpper(str(r[0])))
	}

	fks, err := queryRows(ctx, conn,
		"SELECT COUNT(*) FROM `information_schema`.`REFERENTIAL_CONSTRAINTS` "+
			"WHERE `UNIQUE_CONSTRAINT_SCHEMA` = DATABASE() AND `REFERENCED_TABLE_NAME` = ? "+
			"AND (`DELETE_RULE` <> 'RESTRICT' AND `DELETE_RULE` <> 'NO ACTION' OR `UPDATE_RULE` <> 'RESTRICT' AND `UPDATE_RULE` <> 'NO ACTION')",
		[]any{t.Name})
	if err != nil {
		return fmt.Errorf("mysql: read foreign keys referencing %s: %w", t.Name, err)
	}
	t.CascadedBy = len(fks) > 0 && num(fks[0][0]) > 0
	return nil
}

// str returns a driver value as a string ("" for NULL).
func str(v driver.Value) string {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case string:
		return x
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// num returns a driver value as an integer (0 for NULL or garbage).
func num(v driver.Value) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case uint64:
		return int64(x)
	case []byte, string:
		n, _ := strconv.ParseInt(str(x), 10, 64)
		return n
	}
	return 0
}

// generatedExtra reports whether a column's information_schema EXTRA (in
// lower case) marks a value the database computes: VIRTUAL or STORED
// GENERATED (MariaDB's PERSISTENT), or a system-versioning ROW START/END.
// MySQL 8's DEFAULT_GENERATED only says the column's default is an
// expression; such a column is written like any other.
func generatedExtra(extra string) bool {
	for _, w := range []string{"virtual generated", "stored generated", "persistent", "row start", "row end"} {
		if strings.Contains(extra, w) {
			return true
		}
	}
	return false
}
