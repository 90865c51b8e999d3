// Package mysqltest gives tests a real MariaDB.
//
// Each call of Config, DSN or NewDB creates a new, uniquely named database
// (dropped when the test passes, kept for inspection when it fails), so
// tests never see each other's tables. The server is the one named by the
// environment variable XACT_TEST_MYSQL_DSN if it is set — `make test` starts
// one shared server for the whole run with cmd/mariadb and exports it —
// and otherwise one private mariadbd per test process, started on first use
// in a temporary directory on a free 127.0.0.1 port (root, empty password)
// and stopped by Main. If the server binaries are missing the test fails
// with a message naming the fix (`make test` installs them); an integration
// test is never skipped.
//
// A package that uses it:
//
//	func TestMain(m *testing.M) { mysqltest.Main(m) }
//
//	func TestOrders(t *testing.T) {
//		db := mysqltest.NewDB(t)
//		if _, err := db.Exec("CREATE TABLE orders (id BIGINT PRIMARY KEY)"); err != nil {
//			t.Fatal(err)
//		}
//		// ...
//	}
//
// For a driver setting, change the configuration before opening it:
//
//	cfg := mysqltest.Config(t)
//	cfg.InterpolateParams = true
//	db := mysqltest.Open(t, cfg)
//
// Start, Attach and StopDetached manage a server explicitly; cmd/mariadb
// wraps them for the Makefile.
package mysqltest
