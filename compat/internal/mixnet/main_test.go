package mixnet

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSparseEdges: the graph is connected, has no self-loops or
// duplicates, and depends only on the seed.
func TestSparseEdges(t *testing.T) {
	const n = 16
	edges := SparseEdges(n, 1, 3)
	if len(edges) < n {
		t.Fatalf("%d edges, want at least the ring's %d", len(edges), n)
	}
	seen := map[[2]int]bool{}
	adj := make([][]int, n)
	for _, e := range edges {
		if e[0] >= e[1] || seen[e] {
			t.Errorf("edge %v is a self-loop, reversed or a duplicate", e)
		}
		seen[e] = true
		adj[e[0]] = append(adj[e[0]], e[1])
		adj[e[1]] = append(adj[e[1]], e[0])
	}
	reached := map[int]bool{0: true}
	queue := []int{0}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		for _, y := range adj[x] {
			if !reached[y] {
				reached[y] = true
				queue = append(queue, y)
			}
		}
	}
	if len(reached) != n {
		t.Errorf("%d of %d nodes reachable", len(reached), n)
	}
	again := SparseEdges(n, 1, 3)
	if len(again) != len(edges) {
		t.Fatal("same seed, other graph")
	}
	for i := range edges {
		if again[i] != edges[i] {
			t.Fatal("same seed, other graph")
		}
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(101-i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {0, 1}} {
		if got := Percentile(ds, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("percentile of nothing")
	}
}

func TestValidator(t *testing.T) {
	var v Validator
	if v.Validate("/v/k", []byte("ok:x")) != nil || v.Validate("/v/k", []byte("x")) == nil {
		t.Error("Validate")
	}
	if i, err := v.Select("/v/k", [][]byte{[]byte("ok:a"), []byte("ok:c"), []byte("ok:b")}); err != nil || i != 1 {
		t.Errorf("Select: %d, %v", i, err)
	}
	if _, err := v.Select("/v/k", nil); err == nil {
		t.Error("Select of nothing")
	}
}
