package rcmgr

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/p2pnet/p2pnet/network"
)

func TestSnapshot(t *testing.T) {
	l := fixedDefaults()
	m := newTestManager(t, l)
	p := testPeer(t, 1)
	c, err := m.OpenConnection(network.DirInbound, true, addr(t, "/ip4/192.0.2.1/tcp/1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Done()
	if err := c.SetPeer(p); err != nil {
		t.Fatal(err)
	}
	s, err := m.OpenStream(p, network.DirOutbound)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Done()
	if err := s.SetProtocol("/p"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetService("svc"); err != nil {
		t.Fatal(err)
	}
	span, err := s.BeginSpan()
	if err != nil {
		t.Fatal(err)
	}
	defer span.Done()
	if err := span.ReserveMemory(1<<20, network.ReservationPriorityAlways); err != nil {
		t.Fatal(err)
	}

	snap := m.Snapshot()
	var names []string
	for _, sc := range snap.Scopes {
		names = append(names, sc.Name)
	}
	ps := p.String()
	wantNames := []string{
		"system", "transient", "allowlisted system", "allowlisted transient",
		"service svc", "service svc / peer " + ps,
		"protocol /p", "protocol /p / peer " + ps,
		"peer " + ps,
		"conn 1", "stream 2", "span 3 of stream 2",
	}
	if strings.Join(names, "|") != strings.Join(wantNames, "|") {
		t.Fatalf("scopes\n%q\nwant\n%q", names, wantNames)
	}
	byName := map[string]ScopeSnapshot{}
	for _, sc := range snap.Scopes {
		byName[sc.Name] = sc
	}
	peer := byName["peer "+ps]
	if peer.Kind != KindPeer || peer.Origin != "PeerDefault" || *peer.Limit != l.PeerDefault ||
		peer.Use != (network.ScopeStat{NumConnsInbound: 1, NumFD: 1, NumStreamsOutbound: 1, Memory: 1 << 20}) {
		t.Fatalf("peer snapshot %+v", peer)
	}
	if sp := byName["span 3 of stream 2"]; sp.Limit != nil || sp.Origin != "" || sp.Use.Memory != 1<<20 {
		t.Fatalf("span snapshot %+v", sp)
	}

	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"Name":"system","Kind":"system","Use":{`,
		`"Name":"peer ` + ps + `","Kind":"peer","Use":{"NumStreamsInbound":0,"NumStreamsOutbound":1,"NumConnsInbound":1,"NumConnsOutbound":0,"NumFD":1,"Memory":1048576},"Limit":{"Memory":"192MiB"`,
		`"Origin":"PeerDefault"`,
		`{"Name":"span 3 of stream 2","Kind":"span","Use":{`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s\n%s", want, b)
		}
	}

	sum := m.Summary()
	if len(sum.Top) != 4 || sum.Top[0].Name != "system" || sum.Live[KindStream] != 1 || sum.Live[KindSpan] != 1 || sum.Live[KindProtocolPeer] != 1 {
		t.Fatalf("summary %+v", sum)
	}
	if _, err := json.Marshal(sum); err != nil {
		t.Fatal(err)
	}
}
