package tc

import "testing"

// TestReservedNamespaces: a lone coordinator begins lazily only the XIDs
// of namespaces it reserved; a member of a cluster those of any
// coordinator's (same shape, another valid node id), and never an XID of
// the TC's own sequence or of another shape.
func TestReservedNamespaces(t *testing.T) {
	g := newXIDGen("a")
	mine := g.reserve() + "1z"
	for _, tt := range []struct {
		xid            string
		alone, anyNode bool
	}{
		{mine, true, true},
		{"a:k3x9:r1.0", true, true},
		{"b:k3x9:r1.0", false, true},
		{"tc-b.2:k3x9:r2a.9", false, true},
		{g.next(), false, false},        // the TC's own sequence
		{"b:k3x9:1", false, false},      // another node's own sequence
		{"b:k3x9:r1.", false, false},    // no suffix
		{"b:k3x9:r1.A", false, false},   // not base 36
		{"b c:k3x9:r1.0", false, false}, // not a node id
		{":k3x9:r1.0", false, false},    // no node id
		{"b::r1.0", false, false},       // no boot
		{"b:k3x9:x1.0", false, false},   // not a reservation
		{"b:k3x9:r1.0:extra", false, false},
	} {
		if got := g.reserved(tt.xid, false); got != tt.alone {
			t.Errorf("alone: reserved(%q) = %v, want %v", tt.xid, got, tt.alone)
		}
		if got := g.reserved(tt.xid, true); got != tt.anyNode {
			t.Errorf("in a cluster: reserved(%q) = %v, want %v", tt.xid, got, tt.anyNode)
		}
	}
}
