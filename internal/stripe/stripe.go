// Package stripe serializes work per key without a mutex per key: a key
// hashes to one of a fixed set of mutexes, so work on one key is serialized
// and work on most pairs of keys is not.
package stripe

import (
	"hash/maphash"
	"sync"
)

// Mutexes is a fixed set of mutexes picked by key. The zero value is not
// usable; call New.
type Mutexes struct {
	seed maphash.Seed
	mu   []sync.Mutex
}

// New returns n mutexes (n >= 1).
func New(n int) *Mutexes {
	return &Mutexes{seed: maphash.MakeSeed(), mu: make([]sync.Mutex, max(n, 1))}
}

// For returns the mutex of key: always the same one for the same key.
func (m *Mutexes) For(key string) *sync.Mutex {
	return &m.mu[maphash.String(m.seed, key)%uint64(len(m.mu))]
}
