package tm

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

func TestValidateXID(t *testing.T) {
	tests := []struct {
		xid  string
		ok   bool
		name string
	}{
		{"10.0.0.1:8091:123456", true, "seata style"},
		{"tc1-0000000000000001", true, "plain"},
		{strings.Repeat("x", MaxXIDLen), true, "longest"},
		{"", false, "empty"},
		{strings.Repeat("x", MaxXIDLen+1), false, "too long"},
		{"a b", false, "space"},
		{"a\nb", false, "newline"},
		{"a\x00", false, "nul"},
		{"xïd", false, "non-ascii"},
		{"a\x7f", false, "del"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateXID(tt.xid)
			if got := err == nil; got != tt.ok {
				t.Fatalf("ValidateXID(%q) = %v, want ok=%v", tt.xid, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidXID) {
				t.Fatalf("ValidateXID(%q) = %v, want wrapping ErrInvalidXID", tt.xid, err)
			}
		})
	}
}

// TestGRPCPropagation sends calls through real client and server
// interceptors over an in-memory network; the fake TC answers with the XID
// its handler's context carried.
func TestGRPCPropagation(t *testing.T) {
	f := newFakeTC()
	f.begin = incomingXID
	conn := serve(t, f,
		[]grpc.ServerOption{grpc.UnaryInterceptor(UnaryServerInterceptor()), grpc.StreamInterceptor(StreamServerInterceptor())},
		grpc.WithUnaryInterceptor(UnaryClientInterceptor()), grpc.WithStreamInterceptor(StreamClientInterceptor()),
	)
	client := xactpb.NewCoordinatorClient(conn)
	bg := context.Background()
	manual := func(ctx context.Context, vals ...string) context.Context {
		for _, v := range vals {
			ctx = metadata.AppendToOutgoingContext(ctx, MetadataKey, v)
		}
		return ctx
	}

	tests := []struct {
		name    string
		ctx     context.Context
		want    string // XID the server handler saw; "none" if none
		wantErr error
	}{
		{"no xid", bg, "none", nil},
		{"xid in ctx", WithXID(bg, "tc1:42"), "tc1:42", nil},
		{"ctx overrides manual metadata", WithXID(manual(bg, "tc1:1"), "tc1:2"), "tc1:2", nil},
		{"without xid strips manual metadata", WithoutXID(manual(bg, "tc1:1")), "none", nil},
		{"manual metadata passes", manual(bg, "tc1:7"), "tc1:7", nil},
		{"same value twice", manual(bg, "tc1:7", "tc1:7"), "tc1:7", nil},
		{"two different values", manual(bg, "tc1:7", "tc1:8"), "", protocol.ErrInvalidArgument},
		{"space", manual(bg, "tc1 42"), "", protocol.ErrInvalidArgument},
		{"too long", manual(bg, strings.Repeat("x", MaxXIDLen+1)), "", protocol.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run("unary/"+tt.name, func(t *testing.T) {
			resp, err := client.Begin(tt.ctx, &xactpb.BeginRequest{})
			err = protocol.FromStatus(err)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Begin() error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Begin() error = %v", err)
			}
			if got := resp.GetXid(); got != tt.want {
				t.Errorf("server saw XID %q, want %q", got, tt.want)
			}
		})
		t.Run("stream/"+tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(tt.ctx)
			defer cancel()
			s, err := client.Attach(ctx)
			if err != nil {
				t.Fatalf("Attach() error = %v", err)
			}
			msg, err := s.Recv()
			err = protocol.FromStatus(err)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Recv() error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Recv() error = %v", err)
			}
			want := tt.want
			if want == "none" {
				want = ""
			}
			if got := msg.GetWelcome().GetNodeId(); got != want {
				t.Errorf("server saw XID %q, want %q", got, want)
			}
		})
	}
}

func TestMiddleware(t *testing.T) {
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		xid, ok := XID(r.Context())
		if !ok {
			xid = "none"
		}
		io.WriteString(w, xid)
	}))
	tests := []struct {
		name     string
		headers  []string
		wantCode int
		wantBody string
	}{
		{"absent", nil, 200, "none"},
		{"present", []string{"tc1:42"}, 200, "tc1:42"},
		{"repeated same", []string{"tc1:42", "tc1:42"}, 200, "tc1:42"},
		{"repeated different", []string{"tc1:42", "tc1:43"}, 400, ""},
		{"empty", []string{""}, 400, ""},
		{"space", []string{"tc1 42"}, 400, ""},
		{"too long", []string{strings.Repeat("x", MaxXIDLen+1)}, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for _, v := range tt.headers {
				r.Header.Add(Header, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantCode {
				t.Fatalf("status = %d, want %d (body %q)", w.Code, tt.wantCode, w.Body.String())
			}
			if tt.wantCode == 200 && w.Body.String() != tt.wantBody {
				t.Errorf("handler saw XID %q, want %q", w.Body.String(), tt.wantBody)
			}
		})
	}
}

// TestTransport sends requests through Transport to a server behind
// Middleware, end to end over real HTTP.
func TestTransport(t *testing.T) {
	srv := httptest.NewServer(Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		xid, ok := XID(r.Context())
		if !ok {
			xid = "none"
		}
		io.WriteString(w, xid)
	})))
	defer srv.Close()
	client := &http.Client{Transport: Transport(nil)}
	defer client.CloseIdleConnections()
	bg := context.Background()

	tests := []struct {
		name   string
		ctx    context.Context
		manual string
		want   string
	}{
		{"no xid", bg, "", "none"},
		{"xid", WithXID(bg, "tc1:5"), "", "tc1:5"},
		{"ctx overrides manual header", WithXID(bg, "tc1:5"), "tc1:6", "tc1:5"},
		{"manual header passes", bg, "tc1:6", "tc1:6"},
		{"without xid strips manual header", WithoutXID(bg), "tc1:6", "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(tt.ctx, "GET", srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.manual != "" {
				req.Header.Set(Header, tt.manual)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("Do() error = %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := string(body); got != tt.want {
				t.Errorf("server saw XID %q, want %q", got, tt.want)
			}
			if tt.manual != "" && req.Header.Get(Header) != tt.manual {
				t.Errorf("Transport modified the caller's request: header %q, want %q", req.Header.Get(Header), tt.manual)
			}
		})
	}
}
