package it

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Toxiproxy runs in the test process: one proxy per link under test (RM →
// TC, RM → database), each on its own loopback port. Two kinds of
// partition:
//
//   - blackhole: a latency toxic of an hour on both directions. Connections
//     stay open and bytes stop moving, as when a network path dies; new
//     connections are accepted and hang the same way. Healing removes the
//     toxics and delivers what was held, late.
//   - cut: the proxy stops: every connection is closed and new ones are
//     refused, as when a host's network goes down hard.

var (
	toxiOnce   sync.Once
	toxiServer *toxiproxy.ApiServer
)

func toxi() *toxiproxy.ApiServer {
	toxiOnce.Do(func() {
		toxiServer = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	})
	return toxiServer
}

type proxy struct {
	t  *testing.T
	p  *toxiproxy.Proxy
	mu sync.Mutex
	n  int
	// toxics added by partition or latency, removed by heal
	toxics []string
	cut    bool
}

var proxySeq struct {
	sync.Mutex
	n int
}

// newProxy starts a proxy to upstream on a free loopback port.
func newProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	proxySeq.Lock()
	proxySeq.n++
	name := fmt.Sprintf("p%d", proxySeq.n)
	proxySeq.Unlock()
	// A port below the kernel's ephemeral range: a cut proxy reopens on
	// its port, and in that range any socket of any process (a TC or
	// database the suite starts on port 0, an outgoing connection) may
	// have taken it meanwhile (TestPartition failed so, under load).
	lo, hi := 10000, ephemeralLow()
	var err error
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", lo+rand.IntN(hi-lo))
		p := &proxy{t: t, p: toxiproxy.NewProxy(toxi(), name, addr, upstream)}
		if err = p.p.Start(); err == nil {
			t.Cleanup(p.p.Stop)
			return p
		}
	}
	t.Fatalf("toxiproxy %s: %v", name, err)
	return nil
}

// ephemeralLow is the lowest port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		var lo, hi int
		if _, err := fmt.Sscan(string(b), &lo, &hi); err == nil && lo > 11000 {
			return lo
		}
	}
	return 32768
}

// addr is where clients connect.
func (p *proxy) addr() string { return p.p.Listen }

func (p *proxy) addToxic(typ, stream string, attrs string) {
	p.t.Helper()
	p.mu.Lock()
	p.n++
	name := fmt.Sprintf("%s_%s_%d", typ, stream, p.n)
	p.toxics = append(p.toxics, name)
	p.mu.Unlock()
	js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, name, typ, stream, attrs)
	if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
		p.t.Errorf("toxiproxy: add %s: %v", js, err)
	}
}

// latency delays both directions by ms ± jitter milliseconds.
func (p *proxy) latency(ms, jitter int) {
	for _, s := range []string{"upstream", "downstream"} {
		p.addToxic("latency", s, fmt.Sprintf(`{"latency":%d,"jitter":%d}`, ms, jitter))
	}
}

// blackhole holds every byte in both directions until heal.
func (p *proxy) blackhole() { p.latency(int(time.Hour/time.Millisecond), 0) }

// cutOff closes every connection and refuses new ones until heal.
func (p *proxy) cutOff() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
	p.p.Stop()
}

// heal removes every toxic and reopens a cut proxy on the same port.
func (p *proxy) heal() {
	p.t.Helper()
	p.mu.Lock()
	names, cut := p.toxics, p.cut
	p.toxics, p.cut = nil, false
	p.mu.Unlock()
	for _, n := range names {
		if err := p.p.Toxics.RemoveToxic(context.Background(), n); err != nil {
			p.t.Errorf("toxiproxy: remove %s: %v", n, err)
		}
	}
	if cut {
		var err error
		for i := 0; i < 100; i++ { // the port may linger for a moment
			if err = p.p.Start(); err == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		p.t.Errorf("toxiproxy: restart: %v", err)
	}
}

// bounce cuts the proxy for d and opens it again, keeping its toxics: the
// RMs behind it see their connections drop and reconnect.
func (p *proxy) bounce(d time.Duration) {
	p.t.Helper()
	p.p.Stop()
	time.Sleep(d)
	var err error
	for i := 0; i < 100; i++ {
		if err = p.p.Start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Errorf("toxiproxy: restart: %v", err)
}
