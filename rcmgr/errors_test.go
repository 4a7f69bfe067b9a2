package rcmgr

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
)

func TestStreamRefusalMessage(t *testing.T) {
	l := UnlimitedLimits()
	l.PeerDefault.StreamsInbound = 2
	m := newTestManager(t, l)
	p := testPeer(t, 1)
	for range 2 {
		s, err := m.OpenStream(p, network.DirInbound)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Done()
	}
	_, err := m.OpenStream(p, network.DirInbound)
	if !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Fatalf("third stream: %v, want ErrResourceLimitExceeded", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || ne.Timeout() {
		t.Fatal("the refusal is not a net.Error that is not a timeout")
	}
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("%T is not a *LimitError", err)
	}
	wantErr := LimitError{
		Scope: "peer " + p.String(), Kind: KindPeer, Resource: ResourceStreamsInbound,
		Requested: 1, Used: 2, Limit: 2, Allowed: 2,
		Origin: "PeerDefault",
	}
	if *le != wantErr {
		t.Fatalf("error %+v, want %+v", *le, wantErr)
	}
	wantMsg := "peer " + p.String() + ": cannot reserve inbound stream: 2 of 2 in use (limit from PeerDefault)"
	if err.Error() != wantMsg {
		t.Fatalf("message %q, want %q", err.Error(), wantMsg)
	}
	// The refusal is counted.
	found := false
	for _, r := range m.Refusals() {
		if r.Kind == KindPeer && r.Resource == ResourceStreamsInbound && r.Count == 1 {
			found = true
		}
	}
	if !found {
		t.Fatalf("refusals %+v do not count the peer's inbound stream", m.Refusals())
	}
}

func TestMemoryRefusalMessage(t *testing.T) {
	l := UnlimitedLimits()
	l.System.Memory = 1 << 30
	m := newTestManager(t, l)
	err := m.ViewSystem(func(s network.ResourceScope) error {
		span, err := s.BeginSpan()
		if err != nil {
			return err
		}
		defer span.Done()
		if err := span.ReserveMemory(390<<20+100<<10, network.ReservationPriorityAlways); err != nil {
			return err
		}
		return span.ReserveMemory(20<<20, network.ReservationPriorityLow)
	})
	want := "system: cannot reserve 20.0 MiB of memory at priority 101 (low): 390.1 MiB of 1.0 GiB in use, this priority may use up to 408.0 MiB (limit from System)"
	if err == nil || err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	if !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Fatal("not ErrResourceLimitExceeded")
	}
}

func TestRefusalMessagesNameOverrides(t *testing.T) {
	p := testPeer(t, 1)
	l := UnlimitedLimits()
	l.Peer = map[peer.ID]Limit{p: {Memory: 1000}}
	l.Protocol = map[protocol.ID]Limit{"/p": BlockAll}
	l.ServicePeer = map[string]Limit{"svc": BlockAll}
	m := newTestManager(t, l)
	// The override sets only Memory: its other fields are 0, which blocks
	// streams.
	_, err := m.OpenStream(p, network.DirOutbound)
	if err == nil || err.Error() != `peer `+p.String()+`: cannot reserve outbound stream: 0 of 0 in use (limit from Peer["`+p.String()+`"])` {
		t.Fatalf("OpenStream: %v", err)
	}
	s, err := m.OpenStream(testPeer(t, 2), network.DirOutbound)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Done()
	err = s.SetProtocol("/p")
	if err == nil || !strings.Contains(err.Error(), `protocol /p: cannot reserve outbound stream: 0 of 0 in use (limit from Protocol["/p"])`) {
		t.Fatalf("SetProtocol: %v", err)
	}
	err = s.SetService("svc")
	if err == nil || !strings.Contains(err.Error(), `service svc / peer `+testPeer(t, 2).String()+`: cannot reserve outbound stream: 0 of 0 in use (limit from ServicePeer["svc"])`) {
		t.Fatalf("SetService: %v", err)
	}
	err = m.ViewPeer(p, func(ps network.PeerScope) error { return ps.ReserveMemory(1001, network.ReservationPriorityAlways) })
	if err == nil || !strings.Contains(err.Error(), `peer `+p.String()+`: cannot reserve 1001 B of memory at priority 255 (always): 0 B of 1000 B in use (limit from Peer["`+p.String()+`"])`) {
		t.Fatalf("peer memory: %v", err)
	}
}

func TestConnRefusalMessages(t *testing.T) {
	l := UnlimitedLimits()
	l.System.FD = 1
	l.Transient.ConnsOutbound = 1
	m := newTestManager(t, l)
	c, err := m.OpenConnection(network.DirOutbound, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Done()
	_, err = m.OpenConnection(network.DirOutbound, false, nil)
	if err == nil || err.Error() != "transient: cannot reserve outbound connection: 1 of 1 in use (limit from Transient)" {
		t.Fatalf("second outbound conn: %v", err)
	}
	_, err = m.OpenConnection(network.DirInbound, true, nil)
	if err == nil || err.Error() != "system: cannot reserve file descriptor: 1 of 1 in use (limit from System)" {
		t.Fatalf("second fd: %v", err)
	}
	if !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Fatal("not ErrResourceLimitExceeded")
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 1 << 20: "1.0 MiB",
		5 << 30: "5.0 GiB", 1 << 62: "4.0 EiB", 1<<63 - 1: "unlimited",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
