package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"time"
)

// cookieName is the session cookie. Its value is a session signed with the
// console's key (never the operator token): version, expiry, a random id
// and flags, then an HMAC-SHA256 of those bytes.
const cookieName = "xact_console"

// DefaultSessionTTL is how long a session lasts when Options.SessionTTL is
// zero.
const DefaultSessionTTL = 12 * time.Hour

const (
	sessionVersion = 1
	flagLoggedIn   = 1 // made by a login with the operator token
	payloadLen     = 1 + 8 + 16 + 1
	cookieLen      = payloadLen + sha256.Size
)

// session is one browser's session. Without an operator token every
// browser gets one on its first page, for its CSRF token; with one, only a
// login makes one (loggedIn).
type session struct {
	id       [16]byte
	expires  time.Time
	loggedIn bool
}

// keys are the console's secrets, random per process: a restart ends every
// session, and a session of one coordinator is worth nothing at another.
type keys struct {
	session [32]byte // signs the session cookie
	csrf    [32]byte // derives a session's CSRF token
}

func newKeys() *keys {
	k := &keys{}
	rand.Read(k.session[:]) // never fails (crypto/rand)
	rand.Read(k.csrf[:])
	return k
}

func (k *keys) newSession(ttl time.Duration, loggedIn bool, now time.Time) session {
	s := session{expires: now.Add(ttl), loggedIn: loggedIn}
	rand.Read(s.id[:])
	return s
}

// encode is the cookie value of s.
func (k *keys) encode(s session) string {
	b := make([]byte, payloadLen, cookieLen)
	b[0] = sessionVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(s.expires.Unix()))
	copy(b[9:25], s.id[:])
	if s.loggedIn {
		b[25] = flagLoggedIn
	}
	m := hmac.New(sha256.New, k.session[:])
	m.Write(b)
	return base64.RawURLEncoding.EncodeToString(m.Sum(b))
}

// decode checks a cookie value's signature and expiry.
func (k *keys) decode(v string, now time.Time) (session, bool) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) != cookieLen || b[0] != sessionVersion {
		return session{}, false
	}
	m := hmac.New(sha256.New, k.session[:])
	m.Write(b[:payloadLen])
	if !hmac.Equal(m.Sum(nil), b[payloadLen:]) {
		return session{}, false
	}
	s := session{expires: time.Unix(int64(binary.BigEndian.Uint64(b[1:9])), 0), loggedIn: b[25]&flagLoggedIn != 0}
	copy(s.id[:], b[9:25])
	if !now.Before(s.expires) {
		return session{}, false
	}
	return s, true
}

// csrfToken is the token the session's forms carry in a hidden field: an
// HMAC of its id, so that it needs no server-side state and a page of
// another session (or a forged form) does not have it.
func (k *keys) csrfToken(s session) string {
	m := hmac.New(sha256.New, k.csrf[:])
	m.Write([]byte("xact console csrf\x00"))
	m.Write(s.id[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (k *keys) csrfOK(s session, got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(k.csrfToken(s))) == 1
}

// setCookie sends s to the browser: HttpOnly (no script reads it),
// SameSite=Strict (no other site's page sends it) and Secure on TLS.
func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, s session) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    c.keys.encode(s),
		Path:     Path,
		Expires:  s.expires,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

func (c *Console) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Path:     Path,
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

// session is the request's valid session, if it has one. With an operator
// token, only a logged-in session counts.
func (c *Console) session(r *http.Request) (session, bool) {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return session{}, false
	}
	s, ok := c.keys.decode(ck.Value, c.now())
	if !ok || c.token != nil && !s.loggedIn {
		return session{}, false
	}
	return s, true
}
