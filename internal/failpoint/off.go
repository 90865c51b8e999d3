//go:build !failpoints

package failpoint

// Hit marks that the process reached the named point. Without the
// failpoints build tag it does nothing, and inlines to nothing.
func Hit(name string) {}

// On reports whether the named test-only switch is on. Without the
// failpoints build tag it is always false.
func On(name string) bool { return false }
