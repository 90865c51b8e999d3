package tc

import (
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// xidGen hands out XIDs "<node>:<boot>:<seq>". boot is the start time in
// base 36 so that XIDs of different runs of one node never collide, even
// when the store is wiped; the node id lets a later cluster route by XID.
//
// Reserved namespaces "<node>:<boot>:r<n>." are handed to TMs, which append
// suffixes of their own (lazy Begin); n counts reservations, so two TMs
// never share a namespace, and r keeps them apart from the TC's own XIDs.
type xidGen struct {
	node   string
	prefix string
	seq    atomic.Uint64
	res    atomic.Uint64
}

func newXIDGen(node string) *xidGen {
	return &xidGen{node: node, prefix: node + ":" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"}
}

func (g *xidGen) reserve() string {
	return g.prefix + "r" + strconv.FormatUint(g.res.Add(1), 36) + "."
}

// reserved reports whether xid has the shape of an XID from a namespace
// this node reserved, in this or an earlier run; with anyNode, one that
// any node reserved (the coordinators of a cluster, whose node ids are
// unique among the live ones, each hand out their own).
func (g *xidGen) reserved(xid string, anyNode bool) bool {
	var rest string
	var ok bool
	if anyNode {
		var node string
		node, rest, ok = strings.Cut(xid, ":")
		ok = ok && nodeIDPattern.MatchString(node)
	} else {
		rest, ok = strings.CutPrefix(xid, g.node+":")
	}
	if !ok {
		return false
	}
	boot, ns, ok := strings.Cut(rest, ":")
	if !ok || boot == "" || !strings.HasPrefix(ns, "r") {
		return false
	}
	n, suffix, ok := strings.Cut(ns[1:], ".")
	return ok && base36(n) && base36(suffix) && base36(boot)
}

func base36(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

func (g *xidGen) next() string {
	return g.prefix + strconv.FormatUint(g.seq.Add(1), 36)
}
