package undo

import "strings"

// LogTable is the name of the table that holds undo logs in every database
// an AT branch writes to.
const LogTable = "undo_log"

// Values of undo_log.log_status.
const (
	// StatusNormal marks the undo log a branch committed in phase one.
	StatusNormal = 0
	// StatusGlobalFinished marks the row a rollback inserts when it finds
	// no undo log: a phase-one commit that arrives later fails on the
	// unique key (xid, branch_id) instead of leaving an orphan change (I8).
	StatusGlobalFinished = 1
)

// LogContext is the value of undo_log.context for logs in this package's
// encoding.
const LogContext = "xact-undo-v1"

// LogTableDDL creates the undo_log table (MySQL and MariaDB). It is printed
// by `xact sql undo-log`.
//
// The primary key is (xid, branch_id): every statement on the table reads
// or writes one branch's row by it, the late phase-one insert of I8 fails
// on it, and without a surrogate auto-increment key an insert and a
// delete touch two indexes instead of three. log_created is indexed for
// the cleanup of old markers.
const LogTableDDL = "CREATE TABLE IF NOT EXISTS `undo_log` (\n" +
	"  `xid`           VARCHAR(128)    NOT NULL COMMENT 'global transaction id',\n" +
	"  `branch_id`     BIGINT          NOT NULL COMMENT 'branch id assigned by the TC',\n" +
	"  `context`       VARCHAR(128)    NOT NULL COMMENT 'encoding of rollback_info',\n" +
	"  `rollback_info` LONGBLOB        NOT NULL COMMENT 'encoded undo records',\n" +
	"  `log_status`    TINYINT         NOT NULL COMMENT '0 normal, 1 global-finished marker',\n" +
	"  `log_created`   DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6),\n" +
	"  `log_modified`  DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),\n" +
	"  PRIMARY KEY (`xid`, `branch_id`),\n" +
	"  KEY `ix_undo_log_created` (`log_created`)\n" +
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='xact AT mode undo log'"

// SQL for the undo_log table; every value is a placeholder.
const (
	// InsertLogSQL inserts a log: xid, branch_id, context, rollback_info,
	// log_status. Phase one runs it in the branch's local transaction;
	// rollback runs it with StatusGlobalFinished when it finds no log.
	InsertLogSQL = "INSERT INTO `undo_log` (`xid`, `branch_id`, `context`, `rollback_info`, `log_status`, `log_created`, `log_modified`) VALUES (?, ?, ?, ?, ?, NOW(6), NOW(6))"
	// SelectLogSQL reads and locks a branch's log: xid, branch_id ->
	// context, rollback_info, log_status.
	SelectLogSQL = "SELECT `context`, `rollback_info`, `log_status` FROM `undo_log` WHERE `xid` = ? AND `branch_id` = ? FOR UPDATE"
	// DeleteLogSQL deletes a branch's log: xid, branch_id.
	DeleteLogSQL = "DELETE FROM `undo_log` WHERE `xid` = ? AND `branch_id` = ?"
	// DeleteOldLogsSQL deletes logs created before a time, at most a number
	// of rows: log_created, limit.
	DeleteOldLogsSQL = "DELETE FROM `undo_log` WHERE `log_created` < ? LIMIT ?"
)

// DeleteLogsSQL returns a statement that deletes the logs of n branches at
// once; its arguments are xid, branch_id for each. The keys are spelled out
// as ORed equalities, which MySQL and MariaDB read by range on the primary
// key (xid, branch_id); MariaDB 10.11 scans the whole table for the row
// constructor form "(xid, branch_id) IN ((?, ?))" with one element.
func DeleteLogsSQL(n int) string {
	if n < 1 {
		return ""
	}
	var b strings.Builder
	b.WriteString("DELETE FROM `undo_log` WHERE ")
	for i := range n {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("(`xid` = ? AND `branch_id` = ?)")
	}
	return b.String()
}
