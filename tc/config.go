package tc

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
)

// Config configures a coordinator. Start from DefaultConfig and change what
// you need; New calls Validate.
type Config struct {
	// ListenAddr is the gRPC listen address ("127.0.0.1:8091"). Port 0
	// picks a free port; (*Server).Addr reports it.
	ListenAddr string
	// DataDir is the directory of the embedded Badger store. Ignored when
	// Store is set.
	DataDir string
	// Store, when set, is used instead of opening Badger at DataDir. The
	// caller keeps ownership: Close does not close it.
	Store storage.Store
	// TombstoneRetention is how long a finished global's final status is
	// kept for GetStatus, a repeated Commit or Rollback, and `xact tx show`
	// (Badger store opened from DataDir; a given Store has its own).
	TombstoneRetention time.Duration
	// NodeID names this TC inside every XID it hands out ([A-Za-z0-9_.-],
	// at most 32 characters).
	NodeID string

	// DefaultTimeout applies to Begin requests without a timeout.
	DefaultTimeout time.Duration
	// MaxTimeout caps the timeout a client may ask for.
	MaxTimeout time.Duration

	// PhaseTwoTimeout bounds the wait for one RM answer to one phase-two
	// action; no answer by then is UNKNOWN.
	PhaseTwoTimeout time.Duration
	// DecisionWait is how long Commit and Rollback wait for phase two to
	// finish before answering with the in-progress status. The decision is
	// durable either way.
	DecisionWait time.Duration
	// WaitATCommit makes Commit wait for phase two (up to DecisionWait)
	// also when every branch is an AT branch. By default it answers as
	// soon as the decision is durable: an AT branch's phase-two commit
	// only deletes its undo log, so the outcome is already final, and the
	// rows were unlocked with the decision.
	WaitATCommit bool
	// RetryBase and RetryMax shape the capped exponential backoff (with
	// jitter) between phase-two attempts of one global transaction.
	RetryBase time.Duration
	RetryMax  time.Duration
	// RetryBudget is the number of phase-two attempts after which a global
	// transaction is parked for an operator.
	RetryBudget int
	// ScanInterval is how often the TC looks for timed-out and due
	// transactions.
	ScanInterval time.Duration

	// MaxLockKeys caps the lock keys of one branch registration.
	MaxLockKeys int
	// MaxKeyBytes caps one lock key.
	MaxKeyBytes int
	// MaxAppDataBytes caps a branch's application data.
	MaxAppDataBytes int
	// MaxRecvMsgBytes caps one gRPC message.
	MaxRecvMsgBytes int

	// KeepaliveTime and KeepaliveTimeout: the TC pings a client connection
	// that has been silent for KeepaliveTime and closes it if the ping is
	// not answered within KeepaliveTimeout. That is how the TC notices an RM
	// whose host or network vanished: its session ends and the actions sent
	// to it are UNKNOWN at once instead of after PhaseTwoTimeout. (Clients
	// may ping the TC as often as every protocol.MinPingInterval.)
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration

	// Token, when set, is required as "authorization: Bearer <token>" on
	// every call.
	Token string
	// ShutdownGrace bounds how long Close waits for in-flight RPCs.
	ShutdownGrace time.Duration
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration `xact server` runs with when no
// flag is given.
func DefaultConfig() Config {
	return Config{
		ListenAddr:         "127.0.0.1:8091",
		DataDir:            "xact-data",
		TombstoneRetention: 10 * time.Minute,
		NodeID:             "tc1",
		DefaultTimeout:     60 * time.Second,
		MaxTimeout:         24 * time.Hour,
		PhaseTwoTimeout:    10 * time.Second,
		DecisionWait:       5 * time.Second,
		RetryBase:          200 * time.Millisecond,
		RetryMax:           10 * time.Second,
		RetryBudget:        100,
		ScanInterval:       200 * time.Millisecond,
		MaxLockKeys:        10000,
		MaxKeyBytes:        1024,
		MaxAppDataBytes:    1 << 20,
		MaxRecvMsgBytes:    16 << 20,
		KeepaliveTime:      protocol.KeepaliveTime,
		KeepaliveTimeout:   protocol.KeepaliveTimeout,
		ShutdownGrace:      10 * time.Second,
	}
}

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// Validate reports every problem of c at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("tc: "+format, args...)) }
	if c.ListenAddr == "" {
		bad("ListenAddr is empty")
	}
	if c.Store == nil && c.DataDir == "" {
		bad("DataDir is empty and no Store is given")
	}
	if !nodeIDPattern.MatchString(c.NodeID) {
		bad("NodeID %q must be 1-32 characters of [A-Za-z0-9_.-]", c.NodeID)
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"DefaultTimeout", c.DefaultTimeout}, {"MaxTimeout", c.MaxTimeout},
		{"PhaseTwoTimeout", c.PhaseTwoTimeout}, {"RetryBase", c.RetryBase},
		{"RetryMax", c.RetryMax}, {"ScanInterval", c.ScanInterval},
		{"TombstoneRetention", c.TombstoneRetention},
		{"KeepaliveTimeout", c.KeepaliveTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			bad("%s must be positive, got %v", p.name, p.d)
		}
	}
	if c.KeepaliveTime < time.Second {
		bad("KeepaliveTime must be at least 1s, got %v", c.KeepaliveTime)
	}
	if c.DecisionWait < 0 || c.ShutdownGrace < 0 {
		bad("DecisionWait and ShutdownGrace must not be negative")
	}
	if c.DefaultTimeout > c.MaxTimeout {
		bad("DefaultTimeout %v exceeds MaxTimeout %v", c.DefaultTimeout, c.MaxTimeout)
	}
	if c.RetryBase > c.RetryMax {
		bad("RetryBase %v exceeds RetryMax %v", c.RetryBase, c.RetryMax)
	}
	if c.RetryBudget < 1 {
		bad("RetryBudget must be at least 1, got %d", c.RetryBudget)
	}
	if c.MaxLockKeys < 1 || c.MaxKeyBytes < 1 || c.MaxAppDataBytes < 0 || c.MaxRecvMsgBytes < 1024 {
		bad("size limits are too small (MaxLockKeys %d, MaxKeyBytes %d, MaxAppDataBytes %d, MaxRecvMsgBytes %d)",
			c.MaxLockKeys, c.MaxKeyBytes, c.MaxAppDataBytes, c.MaxRecvMsgBytes)
	}
	return errors.Join(errs...)
}
