package datasource

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"

	"github.com/xact-io/xact/tm"
)

type order struct {
	ID        uint64    `gorm:"primaryKey;autoIncrement"`
	Item      string    `gorm:"size:32;not null"`
	Qty       int       `gorm:"not null"`
	CreatedAt time.Time `gorm:"precision:3"`
}

// recorder keeps the SQL gorm sends.
type recorder struct {
	logger.Interface
	sql []string
}

func (r *recorder) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	s, _ := fc()
	r.sql = append(r.sql, s)
}

// TestGorm runs gorm on top of the wrapper. On MariaDB ≥ 10.5 gorm
// creates rows with INSERT … RETURNING (the dialect images it); with
// DisableWithReturning it reads LAST_INSERT_ID. Both commit and roll back.
func TestGorm(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	for _, disable := range []bool{false, true} {
		name := "returning"
		if disable {
			name = "DisableWithReturning"
		}
		t.Run(name, func(t *testing.T) {
			d := e.newDB(t, []dbOption{func(c *gomysql.Config) { c.ParseTime = true }})
			d.exec("CREATE TABLE orders (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, item VARCHAR(32) NOT NULL, qty INT NOT NULL, created_at DATETIME(3) NULL)")
			d.exec("INSERT INTO orders (item, qty, created_at) VALUES ('seed', 1, '2024-01-01 00:00:00.000'), ('gone', 2, NULL)")
			rec := &recorder{Interface: logger.Discard}
			gdb, err := gorm.Open(gormmysql.New(gormmysql.Config{Conn: d.db, DisableWithReturning: disable}), &gorm.Config{Logger: rec})
			if err != nil {
				t.Fatal(err)
			}
			work := func(ctx context.Context) error {
				g := gdb.WithContext(ctx)
				o := order{Item: "apple", Qty: 3, CreatedAt: time.Date(2025, 5, 6, 7, 8, 9, 123e6, time.UTC)}
				if err := g.Create(&o).Error; err != nil {
					return err
				}
				if o.ID == 0 {
					return errors.New("created row has no id")
				}
				if err := g.Model(&order{}).Where("item = ?", "seed").Update("qty", gorm.Expr("qty + ?", 10)).Error; err != nil {
					return err
				}
				if err := g.Where("item = ?", "gone").Delete(&order{}).Error; err != nil {
					return err
				}
				return g.Transaction(func(tx *gorm.DB) error {
					return tx.Create(&[]order{{Item: "pear", Qty: 1}, {Item: "plum", Qty: 2}}).Error
				})
			}
			seeded := d.dump("orders")

			rec.sql = nil
			err = e.tm.Do(context.Background(), tm.Options{Name: "gorm", Timeout: 10 * time.Second}, func(ctx context.Context) error {
				if err := work(ctx); err != nil {
					return err
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatalf("Do = %v", err)
			}
			if got := d.dump("orders"); !reflect.DeepEqual(got, seeded) {
				t.Errorf("after rollback orders =\n%v\nwant\n%v", got, seeded)
			}
			t.Logf("gorm sent:\n%s", strings.Join(rec.sql, "\n"))
			returning := false
			for _, s := range rec.sql {
				if strings.Contains(s, "RETURNING") {
					returning = true
				}
			}
			if returning == disable {
				t.Errorf("gorm sent RETURNING = %v with DisableWithReturning = %v:\n%s", returning, disable, strings.Join(rec.sql, "\n"))
			}

			err = e.tm.Do(context.Background(), tm.Options{Name: "gorm", Timeout: 10 * time.Second}, work)
			if err != nil {
				t.Fatalf("Do = %v", err)
			}
			var got []order
			if err := gdb.Order("item").Find(&got).Error; err != nil {
				t.Fatal(err)
			}
			var items []string
			for _, o := range got {
				items = append(items, o.Item+":"+strconv.Itoa(o.Qty))
			}
			if got, want := strings.Join(items, " "), "apple:3 pear:1 plum:2 seed:11"; got != want {
				t.Errorf("after commit orders = %s, want %s", got, want)
			}
			if n, m := d.undoLogs(); n != 0 || m != 0 {
				t.Errorf("undo_log = %d logs, %d markers, want none", n, m)
			}
		})
	}

	t.Run("UPDATE RETURNING is refused before it runs", func(t *testing.T) {
		d := e.newDB(t, nil)
		d.exec("CREATE TABLE orders (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, item VARCHAR(32) NOT NULL, qty INT NOT NULL, created_at DATETIME(3) NULL)")
		d.exec("INSERT INTO orders (item, qty) VALUES ('seed', 1)")
		gdb, err := gorm.Open(gormmysql.New(gormmysql.Config{Conn: d.db}), &gorm.Config{Logger: logger.Discard})
		if err != nil {
			t.Fatal(err)
		}
		var updateErr error
		err = e.tm.Do(context.Background(), tm.Options{Name: "gorm", Timeout: 10 * time.Second}, func(ctx context.Context) error {
			var out []order
			updateErr = gdb.WithContext(ctx).Model(&out).Clauses(clause.Returning{}).Where("item = ?", "seed").Update("qty", 5).Error
			return updateErr
		})
		if !errors.Is(updateErr, ErrUnsupported) || !strings.Contains(updateErr.Error(), "DisableWithReturning") {
			t.Errorf("update = %v, want %v naming DisableWithReturning", updateErr, ErrUnsupported)
		}
		if err == nil {
			t.Error("Do = nil, want the refusal")
		}
		var qty int
		if err := d.raw.QueryRow("SELECT qty FROM orders WHERE item = 'seed'").Scan(&qty); err != nil || qty != 1 {
			t.Errorf("qty = %d (%v), want 1: the refused statement must not run", qty, err)
		}
	})
}
