package tc_test

import (
	"testing"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/tctest"
)

// TestAttachWakesPendingPhaseTwo: phase two that found no RM waits out its
// backoff, here at least 30 s (RetryBase and RetryMax of a minute), unless
// an RM serving its branches attaches: then it runs at once. A global whose
// RM is still missing is left to its backoff, and so is a rollback whose
// next branch to undo (the last registered) is not on the new RM.
func TestAttachWakesPendingPhaseTwo(t *testing.T) {
	srv := tctest.Start(t, waitAT, tctest.WithConfig(func(c *tc.Config) {
		c.RetryBase, c.RetryMax = time.Minute, time.Minute
	}))
	c := newClient(t, srv)

	commitXID := c.begin(time.Minute)
	c.mustRegister(commitXID, "db1", "k1")
	if got, err := c.commit(commitXID); err != nil || got != commitRetrying {
		t.Fatalf("Commit with no RM = %v, %v; want %v", got, err, commitRetrying)
	}
	rollbackXID := c.begin(time.Minute)
	c.mustRegister(rollbackXID, "db2", "k2")
	if got, err := c.rollback(rollbackXID); err != nil || got != rollbackRetrying {
		t.Fatalf("Rollback with no RM = %v, %v; want %v", got, err, rollbackRetrying)
	}
	otherXID := c.begin(time.Minute) // waits for db3, which never attaches
	c.mustRegister(otherXID, "db3", "k3")
	if got, err := c.commit(otherXID); err != nil || got != commitRetrying {
		t.Fatalf("Commit with no RM = %v, %v; want %v", got, err, commitRetrying)
	}
	blockedXID := c.begin(time.Minute) // undoes db3 first, then db1
	c.mustRegister(blockedXID, "db1", "k4")
	c.mustRegister(blockedXID, "db3", "k5")
	if got, err := c.rollback(blockedXID); err != nil || got != rollbackRetrying {
		t.Fatalf("Rollback with no RM = %v, %v; want %v", got, err, rollbackRetrying)
	}

	attachRM(t, srv.Conn(t), "db1", "db2")
	eventually(t, "commit after attach", func() bool { return c.status(commitXID) == committed })
	eventually(t, "rollback after attach", func() bool { return c.status(rollbackXID) == rollbacked })
	for _, xid := range []string{otherXID, blockedXID} {
		if g := c.show(xid).GetGlobal(); g.GetAttempts() != 1 {
			t.Errorf("%s: attempts = %d (%s), want 1: its next action is not on the RM that attached", xid, g.GetAttempts(), g.GetReason())
		}
	}
}

// TestFinishedGlobalShowsNoStaleReason: a global that retried (reason "no
// rm attached ...") and then finished shows no reason: its history keeps
// what happened.
func TestFinishedGlobalShowsNoStaleReason(t *testing.T) {
	srv := tctest.Start(t, waitAT)
	c := newClient(t, srv)
	xid := c.begin(time.Minute)
	c.mustRegister(xid, "db1", "k1")
	if got, err := c.rollback(xid); err != nil || got != rollbackRetrying {
		t.Fatalf("Rollback with no RM = %v, %v; want %v", got, err, rollbackRetrying)
	}
	if g := c.show(xid).GetGlobal(); g.GetReason() == "" {
		t.Fatalf("reason while retrying is empty, want why")
	}
	attachRM(t, srv.Conn(t), "db1")
	eventually(t, "rollback after attach", func() bool { return c.status(xid) == rollbacked })
	g := c.show(xid).GetGlobal()
	if g.GetReason() != "" {
		t.Errorf("%s reason = %q, want none", g.GetStatus(), g.GetReason())
	}
	if len(g.GetHistory()) == 0 {
		t.Errorf("history is empty, want the failed attempt")
	}
}

const rollbackRetrying = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_RETRYING
