package mysqltest

// TypesSchema is the type-fidelity table of the AT tests: a column of
// every type family MySQL and MariaDB have.
const TypesSchema = `CREATE TABLE types (
  id INT PRIMARY KEY,
  u64 BIGINT UNSIGNED, i64 BIGINT, ti TINYINT, tu TINYINT UNSIGNED, mi MEDIUMINT,
  dec65 DECIMAL(65,30), dec0 DECIMAL(10,0),
  f FLOAT, d DOUBLE,
  dt6 DATETIME(6), dt0 DATETIME,
  ts6 TIMESTAMP(6) NULL DEFAULT NULL ON UPDATE CURRENT_TIMESTAMP(6),
  ts0 TIMESTAMP NULL DEFAULT NULL,
  da DATE, tm TIME(3), yr YEAR,
  js JSON,
  bl BLOB, bn BINARY(4), vb VARBINARY(10),
  bt BIT(10), b64 BIT(64),
  en ENUM('a', 'b', 'ü'), st SET('x', 'y', 'z'),
  vc VARCHAR(20), vcl VARCHAR(20) CHARACTER SET latin1, ch CHAR(5), tx TEXT,
  emoji VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  g GEOMETRY NULL,
  gen INT AS (ti + 1) VIRTUAL,
  gens VARCHAR(30) AS (CONCAT(vc, '!')) STORED,
  inv INT INVISIBLE DEFAULT 7
)`

// TypesRows fill TypesSchema with edge cases: maxima, exact decimals,
// floats the text protocol would round, zero dates, empty strings, NULLs.
var TypesRows = []string{
	// Maxima, exact decimals and floats the text protocol would round.
	`INSERT INTO types (id, u64, i64, ti, tu, mi, dec65, dec0, f, d, dt6, dt0, ts6, ts0, da, tm, yr, js, bl, bn, vb, bt, b64, en, st, vc, vcl, ch, tx, emoji, g, inv) VALUES
	 (1, 18446744073709551615, -9223372036854775808, -128, 255, -8388608,
	  '12345678901234567890123456789012345.123456789012345678901234567890', 9999999999,
	  1.23456789, 1.2345678901234567e-300,
	  '9999-12-31 23:59:59.999999', '1000-01-01 00:00:00', '2038-01-19 03:14:07.999999', '1970-01-01 00:00:01',
	  '1000-01-01', '-838:59:59.000', 2155,
	  '{"a": [1, 2.50, "é😀"], "b": null}',
	  UNHEX('000102FF80'), 'ab', x'00ff', b'1010101010', x'FFFFFFFFFFFFFFFF', 'ü', 'x,z',
	  'héllo', 'é', 'ab ', 'text 😀 \\ '' "', '😀🇩🇪', ST_GeomFromText('POINT(1 2)'), 42)`,
	// Zero dates, empty strings, zero bits, denormals.
	`INSERT INTO types (id, u64, i64, ti, tu, mi, dec65, dec0, f, d, dt6, dt0, ts6, ts0, da, tm, yr, js, bl, bn, vb, bt, b64, en, st, vc, vcl, ch, tx, emoji) VALUES
	 (2, 0, 0, 0, 0, 0, '-0.000000000000000000000000000001', -1, -3.4e38, 4.9e-324,
	  '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00',
	  '0000-00-00', '00:00:00', 0, '""', '', '', '', 0, 0, 'a', '', '', '', '', '', '')`,
	// NULL everywhere.
	`INSERT INTO types (id) VALUES (3)`,
	// A row to delete, with ordinary values.
	`INSERT INTO types (id, u64, d, dt6, ts6, vc, emoji, bl) VALUES (4, 7, 0.1, '2024-03-31 02:30:00.5', '2024-10-27 01:30:00.25', 'four', '🙂', 'blob')`,
}

// TypesUpdate changes every writable column of TypesRows 1-3 (with
// ASCII values, so that a latin1 connection can send it); its argument is
// the highest id.
const TypesUpdate = `UPDATE types SET u64 = 1, i64 = 1, ti = 1, tu = 1, mi = 1, dec65 = 1.5, dec0 = 1, f = 0.5, d = 0.25,
  dt6 = '2001-01-01 01:01:01.000001', dt0 = '2001-01-01 01:01:01', ts0 = '2001-01-01 01:01:01', da = '2001-01-01',
  tm = '01:01:01.001', yr = 2001, js = '[1]', bl = 'b', bn = 'b', vb = 'b', bt = 1, b64 = 1, en = 'a', st = 'y',
  vc = 'v', vcl = 'v', ch = 'c', tx = 't', emoji = 'e', g = ST_GeomFromText('POINT(3 4)'), inv = 8
  WHERE id <= ?`
