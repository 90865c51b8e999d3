package tc

import (
	"strconv"
	"sync/atomic"
	"time"
)

// xidGen hands out XIDs "<node>:<boot>:<seq>". boot is the start time in
// base 36 so that XIDs of different runs of one node never collide, even
// when the store is wiped; the node id lets a later cluster route by XID.
type xidGen struct {
	prefix string
	seq    atomic.Uint64
}

func newXIDGen(node string) *xidGen {
	return &xidGen{prefix: node + ":" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"}
}

func (g *xidGen) next() string {
	return g.prefix + strconv.FormatUint(g.seq.Add(1), 36)
}
