// Package pgtest gives tests a real PostgreSQL.
//
// Each call of DSN or NewDB creates a new, uniquely named database (UTF8,
// dropped when the test passes, kept for inspection when it fails), so
// tests never see each other's tables. The server is the one named by the
// environment variable XACT_TEST_POSTGRES_DSN if it is set — `make test`
// starts one shared server for the whole run with cmd/postgres and exports
// it — and otherwise one private server per test process, started on first
// use: initdb into a temporary directory, then postgres on a free
// 127.0.0.1 port (user postgres, trust authentication, no password),
// stopped by Main. A PostgreSQL already running on the machine (on 5432 or
// elsewhere) is neither used nor disturbed. If the server binaries are
// missing the test fails with a message naming the fix (`make test`
// installs them); an integration test is never skipped.
//
// PostgreSQL refuses to run as root. When the tests run as root, initdb
// and the server run as the unprivileged user the Debian package creates,
// postgres (or nobody if there is none), and the server's directory is
// given to that user.
//
// A package that uses it:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestOrders(t *testing.T) {
//		db := pgtest.NewDB(t)
//		if _, err := db.Exec("CREATE TABLE orders (id BIGINT PRIMARY KEY)"); err != nil {
//			t.Fatal(err)
//		}
//		// ...
//	}
//
// DSN returns the URL of a new database for drivers other than
// database/sql's pgx (gorm's, or pgx's own):
//
//	dsn := pgtest.DSN(t) // postgres://postgres@127.0.0.1:PORT/xt_testorders_…?sslmode=disable
//
// Start, Attach and StopDetached manage a server explicitly; cmd/postgres
// wraps them for scripts/test.sh.
package pgtest
