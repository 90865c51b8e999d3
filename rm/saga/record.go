package saga

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/xact-io/xact/rm"
)

// recordVersion is the version of the step record this package writes.
const recordVersion = 1

// maxErrText caps the action error text kept in the record.
const maxErrText = 512

// Step states as recorded with the TC.
const (
	stateStarted = "started"
	stateDone    = "done"
	stateFailed  = "failed"
)

// record is a saga step branch's application data at the TC. Registration
// stores it with the input (state "started"); the report after the action
// (a success's with the saga's next request to the TC) replaces it with input and output ("done") or input and error
// ("failed"). The compensation is decoded from it, possibly in another
// process: only the resource name (saga/step) and the type S are needed.
type record struct {
	V     int             `json:"v"`
	Saga  string          `json:"saga"`
	Step  string          `json:"step"`
	State string          `json:"state"`
	In    json.RawMessage `json:"in"`
	Out   json.RawMessage `json:"out,omitempty"`
	Err   string          `json:"err,omitempty"`
}

func (r *record) encode() ([]byte, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode step record: %w", err)
	}
	return data, nil
}

// StepStatus is what a compensation knows about its step's action.
type StepStatus int

const (
	// StepUnknown: no outcome was recorded. The action may not have run
	// (the process stopped between registering the step and running it),
	// may have run partly, or may have completed without its output being
	// recorded. The compensation must undo whatever is there and tolerate
	// that nothing is.
	StepUnknown StepStatus = iota
	// StepDone: the action completed. Output holds its result when it was
	// recorded; for a fenced step, StepDone means the action's transaction
	// committed, and Output may be nil if the process stopped before
	// recording it.
	StepDone
	// StepFailed: the action returned an error (after its retries). For a
	// fenced step its transaction was rolled back; only effects outside
	// the database may need undoing.
	StepFailed
)

// String returns "unknown", "done" or "failed".
func (s StepStatus) String() string {
	switch s {
	case StepUnknown:
		return "unknown"
	case StepDone:
		return "done"
	case StepFailed:
		return "failed"
	}
	return fmt.Sprintf("StepStatus(%d)", int(s))
}

// Record is what a compensation is given: the step's recorded input and,
// if recorded, its output.
type Record[S any] struct {
	Saga, Step string
	XID        string
	BranchID   int64
	Status     StepStatus
	// Input is the state the action was called with.
	Input S
	// Output is the state the action returned, or nil if none was
	// recorded (always nil unless Status is StepDone).
	Output *S
	// Err is the action's error text when Status is StepFailed.
	Err string
}

// decodeRecord reads a step's record. A version this build does not know
// is an ordinary (UNKNOWN) error, which another RM may understand during a
// rolling upgrade; anything undecodable is permanent.
func decodeRecord[S any](resource string, data []byte) (*record, S, *S, error) {
	var r record
	var in S
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, in, nil, rm.Permanent(fmt.Errorf("%w of %s: %w", ErrRecord, resource, err))
	}
	if r.V != recordVersion {
		return nil, in, nil, fmt.Errorf("saga: record of %s has version %d; this RM understands %d", resource, r.V, recordVersion)
	}
	if len(r.In) == 0 {
		return nil, in, nil, rm.Permanent(fmt.Errorf("%w of %s: no input", ErrRecord, resource))
	}
	if err := json.Unmarshal(r.In, &in); err != nil {
		return nil, in, nil, rm.Permanent(fmt.Errorf("%w of %s: input: %w", ErrRecord, resource, err))
	}
	var out *S
	if r.State == stateDone && len(r.Out) > 0 {
		out = new(S)
		if err := json.Unmarshal(r.Out, out); err != nil {
			return nil, in, nil, rm.Permanent(fmt.Errorf("%w of %s: output: %w", ErrRecord, resource, err))
		}
	}
	return &r, in, out, nil
}

func errText(err error) string {
	s := strings.ToValidUTF8(err.Error(), "\uFFFD")
	if len(s) > maxErrText {
		s = strings.ToValidUTF8(s[:maxErrText], "")
	}
	return s
}
