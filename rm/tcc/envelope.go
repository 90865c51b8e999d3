package tcc

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/xact-io/xact/rm"
)

// envelopeVersion is the version of the action context this package writes.
// A reader accepts only the versions it knows; see decodeEnvelope.
const envelopeVersion = 1

// maxErrText caps the Try error text kept in the action context.
const maxErrText = 512

// envelope is a TCC branch's application data at the TC (its "action
// context"): the request the Try was called with, as JSON, and what is
// known of the Try's outcome. It is written by Try and read back, possibly
// by another process, for Confirm and Cancel, so it carries only data:
// the resource name and branch type that select the handler are the
// branch's own fields.
type envelope struct {
	V   int             `json:"v"`
	Req json.RawMessage `json:"req"`
	// TryFailed is set by the ReportBranch of a Try that returned an
	// error; Err is that error's text.
	TryFailed bool   `json:"try_failed,omitempty"`
	Err       string `json:"err,omitempty"`
}

func encodeRequest[Req any](req Req) (json.RawMessage, []byte, error) {
	raw, err := json.Marshal(req)
	if err != nil {
		return nil, nil, fmt.Errorf("encode request: %w", err)
	}
	data, err := json.Marshal(envelope{V: envelopeVersion, Req: raw})
	if err != nil {
		return nil, nil, fmt.Errorf("encode action context: %w", err)
	}
	return raw, data, nil
}

// failedEnvelope is the action context of a Try that failed with tryErr.
func failedEnvelope(raw json.RawMessage, tryErr error) []byte {
	data, err := json.Marshal(envelope{V: envelopeVersion, Req: raw, TryFailed: true, Err: errText(tryErr)})
	if err != nil {
		return nil // cannot happen: raw came from json.Marshal
	}
	return data
}

// decodeEnvelope reads the action context of a phase-two action. An
// envelope of a version this build does not know is an ordinary (UNKNOWN)
// error: during a rolling upgrade another RM serving the resource may
// understand it, and the TC's retry reaches it. Data that is not an
// envelope at all, or whose request does not decode into Req, is
// permanent: no retry can fix it.
func decodeEnvelope[Req any](resource string, data []byte) (envelope, Req, error) {
	var env envelope
	var req Req
	if err := json.Unmarshal(data, &env); err != nil {
		return env, req, rm.Permanent(fmt.Errorf("%w of %s: %w", ErrActionContext, resource, err))
	}
	if env.V != envelopeVersion {
		return env, req, fmt.Errorf("tcc: action context of %s has version %d; this RM understands %d", resource, env.V, envelopeVersion)
	}
	if len(env.Req) == 0 {
		return env, req, rm.Permanent(fmt.Errorf("%w of %s: no request", ErrActionContext, resource))
	}
	if err := json.Unmarshal(env.Req, &req); err != nil {
		return env, req, rm.Permanent(fmt.Errorf("%w of %s: request: %w", ErrActionContext, resource, err))
	}
	return env, req, nil
}

// errText is err's text made short and valid UTF-8 for the action context.
func errText(err error) string {
	s := strings.ToValidUTF8(err.Error(), "\uFFFD")
	if len(s) > maxErrText {
		s = strings.ToValidUTF8(s[:maxErrText], "")
	}
	return s
}
