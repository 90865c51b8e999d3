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
	// AdvertiseAddr is the address this coordinator gives clients to
	// reach it ("tc-a.example:8091") in a store several coordinators
	// share: RMs attach to every coordinator at the address it
	// advertises. Empty: the listen address, with the host name in place
	// of an unspecified host (0.0.0.0, [::]).
	AdvertiseAddr string
	// Lease is how long this coordinator's lease on its node id lasts in
	// a store several coordinators share (storage/shareddb): it renews it
	// every third of it, stops driving when two thirds have passed
	// without a renewal, and the others take over its globals once a
	// whole lease has. Ignored by other stores.
	Lease time.Duration

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

	// HTTPAddr, when set, is the address of an HTTP server for operators
	// ("127.0.0.1:9091"; port 0 picks a free port, (*Server).HTTPAddr
	// reports it): /healthz (alive), /readyz (recovered and not shutting
	// down), /metrics (Prometheus text format) and the web console under
	// /ui/. Metrics are recorded only when it is set. With OperatorToken
	// set, /metrics needs "Authorization: Bearer <OperatorToken>" and the
	// console a login with it; without, both are open, so bind it to an
	// address only operators and monitoring reach. /healthz and /readyz
	// are always open (probes send no credentials). It serves plain HTTP,
	// also when the gRPC listener serves TLS.
	HTTPAddr string

	// TLSCertFile and TLSKeyFile, when set (both or neither), are the PEM
	// files of the certificate (with its intermediates, leaf first) and
	// private key the gRPC listener serves: it then speaks only TLS (1.2
	// or later), and a client must dial it with transport credentials
	// (protocol.ClientTLS). New reads them and refuses to start, naming
	// the file, if one is missing, unreadable or not PEM, or if the key
	// is not the certificate's. The HTTP server (HTTPAddr) stays plain.
	TLSCertFile string
	TLSKeyFile  string
	// ClientCAFile, when set, is a PEM file of the CA certificates that
	// sign the clients' certificates (mutual TLS): every client must
	// present a certificate that one of them signed, or its connection is
	// refused during the handshake. Needs TLSCertFile.
	ClientCAFile string

	// Token, when set, is required as "authorization: Bearer <token>" on
	// every call (but the gRPC health service's, which probes call without
	// credentials).
	Token string
	// OperatorToken, when set, is the operators' credential: the Admin
	// service (force commit/rollback, list, show, locks, backup), the web
	// console (/ui/) and /metrics require it, and Token no longer admits
	// to them; Token remains the participants' credential (Begin,
	// Register, Report, Attach). Empty: Token admits to everything.
	OperatorToken string
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
		Lease:              10 * time.Second,
	}
}

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// ConfigError is one problem Validate found with one Config field. Validate
// joins them (errors.Join); errors.As finds the first, and a program that
// sets the fields from flags or a file names its own settings with Format.
//
// New returns one too for a file a field names that it cannot use (a TLS
// certificate that is missing, unreadable or not the key's), with the
// cause in Err.
type ConfigError struct {
	// Field is the Config field at fault ("DefaultTimeout").
	Field string
	// Value is its value.
	Value any
	// Rule is what the value must be ("must be positive").
	Rule string
	// Other, if not empty, is the field Rule compares Field with
	// ("MaxTimeout" in "must not exceed MaxTimeout"), and OtherValue its
	// value.
	Other      string
	OtherValue any
	// Err, if not nil, is the cause (the error reading the file named by
	// Value).
	Err error
}

// Error reads "tc: DefaultTimeout must be positive, got -5s".
func (e *ConfigError) Error() string {
	return "tc: " + e.Format(func(field string) string { return field })
}

// Unwrap returns the cause, if any.
func (e *ConfigError) Unwrap() error { return e.Err }

// Format states the problem with the fields named by name: for example,
// with the flags that set them, "--default-timeout must be positive, got
// -5s".
func (e *ConfigError) Format(name func(field string) string) string {
	msg := name(e.Field) + " " + e.Rule
	if e.Other != "" {
		msg += " " + name(e.Other)
		if _, ok := e.OtherValue.(secret); !ok {
			msg += " (" + show(e.OtherValue) + ")"
		}
	}
	if _, ok := e.Value.(secret); !ok {
		msg += ", got " + show(e.Value)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// secret is the Value of a ConfigError about a token: Format does not
// show it.
type secret struct{}

func (secret) String() string { return "(secret)" }

func show(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

// Validate reports every problem of c at once, each a *ConfigError.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field string, value any, rule string) {
		errs = append(errs, &ConfigError{Field: field, Value: value, Rule: rule})
	}
	if c.ListenAddr == "" {
		bad("ListenAddr", c.ListenAddr, "must not be empty")
	}
	if c.Store == nil && c.DataDir == "" {
		bad("DataDir", c.DataDir, "must not be empty when no Store is given")
	}
	if !nodeIDPattern.MatchString(c.NodeID) {
		bad("NodeID", c.NodeID, "must be 1-32 characters of [A-Za-z0-9_.-]")
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
			bad(p.name, p.d, "must be positive")
		}
	}
	if c.KeepaliveTime < time.Second {
		bad("KeepaliveTime", c.KeepaliveTime, "must be at least 1s")
	}
	if c.DecisionWait < 0 {
		bad("DecisionWait", c.DecisionWait, "must not be negative")
	}
	if c.ShutdownGrace < 0 {
		bad("ShutdownGrace", c.ShutdownGrace, "must not be negative")
	}
	if c.Lease < 300*time.Millisecond {
		bad("Lease", c.Lease, "must be at least 300ms")
	}
	if c.DefaultTimeout > 0 && c.DefaultTimeout > c.MaxTimeout {
		errs = append(errs, &ConfigError{Field: "DefaultTimeout", Value: c.DefaultTimeout, Rule: "must not exceed",
			Other: "MaxTimeout", OtherValue: c.MaxTimeout})
	}
	if c.RetryBase > 0 && c.RetryBase > c.RetryMax {
		errs = append(errs, &ConfigError{Field: "RetryBase", Value: c.RetryBase, Rule: "must not exceed",
			Other: "RetryMax", OtherValue: c.RetryMax})
	}
	if c.RetryBudget < 1 {
		bad("RetryBudget", c.RetryBudget, "must be at least 1")
	}
	if c.MaxLockKeys < 1 {
		bad("MaxLockKeys", c.MaxLockKeys, "must be at least 1")
	}
	if c.MaxKeyBytes < 1 {
		bad("MaxKeyBytes", c.MaxKeyBytes, "must be at least 1")
	}
	if c.MaxAppDataBytes < 0 {
		bad("MaxAppDataBytes", c.MaxAppDataBytes, "must not be negative")
	}
	if c.MaxRecvMsgBytes < 1024 {
		bad("MaxRecvMsgBytes", c.MaxRecvMsgBytes, "must be at least 1024")
	}
	errs = append(errs, c.validateTLS()...)
	errs = append(errs, c.validateTokens()...)
	return errors.Join(errs...)
}
