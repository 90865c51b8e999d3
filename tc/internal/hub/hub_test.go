package hub

import (
	"slices"
	"testing"

	"github.com/xact-io/xact/protocol/xactpb"
)

func TestRoutes(t *testing.T) {
	at, tcc := xactpb.BranchType_BRANCH_TYPE_AT, xactpb.BranchType_BRANCH_TYPE_TCC
	tests := []struct {
		name  string
		hello *xactpb.Hello
		want  []Route
	}{
		{"exact routes win", &xactpb.Hello{
			ResourceIds: []string{"a", "b"}, BranchTypes: []xactpb.BranchType{at, tcc},
			Routes: []*xactpb.Route{{ResourceId: "a", BranchType: tcc}},
		}, []Route{{"a", tcc}}},
		{"resources x types", &xactpb.Hello{ResourceIds: []string{"a"}, BranchTypes: []xactpb.BranchType{at, tcc}},
			[]Route{{"a", at}, {"a", tcc}}},
		{"no types means all", &xactpb.Hello{ResourceIds: []string{"a"}}, []Route{
			{"a", xactpb.BranchType_BRANCH_TYPE_AT}, {"a", xactpb.BranchType_BRANCH_TYPE_TCC},
			{"a", xactpb.BranchType_BRANCH_TYPE_SAGA}, {"a", xactpb.BranchType_BRANCH_TYPE_XA},
		}},
	}
	for _, tt := range tests {
		got := routes(tt.hello)
		slices.SortFunc(got, func(a, b Route) int { return int(a.Type - b.Type) })
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: routes = %v, want %v", tt.name, got, tt.want)
		}
	}
}
