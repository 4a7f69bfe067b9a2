package network

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestContextOptionsUnset(t *testing.T) {
	ctx := context.Background()
	if ok, r := GetNoDial(ctx); ok || r != "" {
		t.Errorf("GetNoDial = %v, %q; want false, \"\"", ok, r)
	}
	if ok, r := GetForceDirectDial(ctx); ok || r != "" {
		t.Errorf("GetForceDirectDial = %v, %q; want false, \"\"", ok, r)
	}
	if ok, c, r := GetSimultaneousConnect(ctx); ok || c || r != "" {
		t.Errorf("GetSimultaneousConnect = %v, %v, %q; want false, false, \"\"", ok, c, r)
	}
	if ok, r := GetAllowLimitedConn(ctx); ok || r != "" {
		t.Errorf("GetAllowLimitedConn = %v, %q; want false, \"\"", ok, r)
	}
	if ok, r := GetUseTransient(ctx); ok || r != "" {
		t.Errorf("GetUseTransient = %v, %q; want false, \"\"", ok, r)
	}
	if d := GetDialPeerTimeout(ctx); d != 60*time.Second {
		t.Errorf("GetDialPeerTimeout = %v; want 60s", d)
	}
}

func TestContextOptionsSet(t *testing.T) {
	ctx := context.Background()
	if ok, r := GetNoDial(WithNoDial(ctx, "a")); !ok || r != "a" {
		t.Errorf("GetNoDial = %v, %q; want true, \"a\"", ok, r)
	}
	if ok, r := GetForceDirectDial(WithForceDirectDial(ctx, "b")); !ok || r != "b" {
		t.Errorf("GetForceDirectDial = %v, %q; want true, \"b\"", ok, r)
	}
	for _, isClient := range []bool{true, false} {
		ok, c, r := GetSimultaneousConnect(WithSimultaneousConnect(ctx, isClient, "c"))
		if !ok || c != isClient || r != "c" {
			t.Errorf("GetSimultaneousConnect = %v, %v, %q; want true, %v, \"c\"", ok, c, r, isClient)
		}
	}
	if d := GetDialPeerTimeout(WithDialPeerTimeout(ctx, 3*time.Second)); d != 3*time.Second {
		t.Errorf("GetDialPeerTimeout = %v; want 3s", d)
	}
	// An empty reason still sets the option.
	if ok, _ := GetNoDial(WithNoDial(ctx, "")); !ok {
		t.Error("WithNoDial with an empty reason is not seen")
	}
}

func TestDialPeerTimeoutVariable(t *testing.T) {
	old := DialPeerTimeout
	t.Cleanup(func() { DialPeerTimeout = old })
	DialPeerTimeout = 7 * time.Second
	if d := GetDialPeerTimeout(context.Background()); d != 7*time.Second {
		t.Errorf("GetDialPeerTimeout = %v; want the package variable, 7s", d)
	}
}

func TestUseTransientIsAllowLimitedConn(t *testing.T) {
	ctx := context.Background()
	if ok, r := GetAllowLimitedConn(WithUseTransient(ctx, "x")); !ok || r != "x" {
		t.Errorf("GetAllowLimitedConn after WithUseTransient = %v, %q", ok, r)
	}
	if ok, r := GetUseTransient(WithAllowLimitedConn(ctx, "y")); !ok || r != "y" {
		t.Errorf("GetUseTransient after WithAllowLimitedConn = %v, %q", ok, r)
	}
}

func TestErrors(t *testing.T) {
	if ErrTransientConn != ErrLimitedConn {
		t.Error("ErrTransientConn is not ErrLimitedConn")
	}
	var ne net.Error
	if !errors.As(error(ErrResourceLimitExceeded), &ne) {
		t.Fatal("ErrResourceLimitExceeded is not a net.Error")
	}
	type temporary interface{ Temporary() bool }
	if tmp, ok := ne.(temporary); !ok || !tmp.Temporary() {
		t.Error("ErrResourceLimitExceeded is not temporary")
	}
	if ne.Timeout() {
		t.Error("ErrResourceLimitExceeded is a timeout")
	}
	wrapped := errors.Join(errors.New("peer X"), ErrResourceLimitExceeded)
	if !errors.Is(wrapped, ErrResourceLimitExceeded) {
		t.Error("wrapped ErrResourceLimitExceeded is not found by errors.Is")
	}
	msgs := map[error]string{
		ErrLimitedConn:           "limited connection to peer",
		ErrNoConn:                "no usable connection to peer",
		ErrNoRemoteAddrs:         "no remote addresses",
		ErrReset:                 "stream reset",
		ErrResourceLimitExceeded: "resource limit exceeded",
		ErrResourceScopeClosed:   "resource scope closed",
	}
	for err, want := range msgs {
		if err.Error() != want {
			t.Errorf("error text %q; want %q", err.Error(), want)
		}
	}
}

func TestConstants(t *testing.T) {
	if MessageSizeMax != 4<<20 {
		t.Errorf("MessageSizeMax = %d", MessageSizeMax)
	}
	got := []uint8{ReservationPriorityLow, ReservationPriorityMedium, ReservationPriorityHigh, ReservationPriorityAlways}
	want := []uint8{101, 152, 203, 255}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("priority %d = %d; want %d", i, got[i], want[i])
		}
	}
	if NotConnected != 0 || Connected != 1 || CanConnect != 2 || CannotConnect != 3 || Limited != 4 {
		t.Error("Connectedness values are not libp2p's")
	}
	if DirUnknown != 0 || DirInbound != 1 || DirOutbound != 2 {
		t.Error("Direction values are not libp2p's")
	}
	if ReachabilityUnknown != 0 || ReachabilityPublic != 1 || ReachabilityPrivate != 2 {
		t.Error("Reachability values are not libp2p's")
	}
	if NATDeviceTypeUnknown != 0 || NATDeviceTypeCone != 1 || NATDeviceTypeSymmetric != 2 {
		t.Error("NATDeviceType values are not libp2p's")
	}
	if NATTransportUDP != 0 || NATTransportTCP != 1 {
		t.Error("NATTransportProtocol values are not libp2p's")
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		v    interface{ String() string }
		want string
	}{
		{DirUnknown, "Unknown"},
		{DirInbound, "Inbound"},
		{DirOutbound, "Outbound"},
		{Direction(9), "Direction(9)"},
		{NotConnected, "NotConnected"},
		{Connected, "Connected"},
		{CanConnect, "CanConnect"},
		{CannotConnect, "CannotConnect"},
		{Limited, "Limited"},
		{Connectedness(-1), "Connectedness(-1)"},
		{ReachabilityUnknown, "Unknown"},
		{ReachabilityPublic, "Public"},
		{ReachabilityPrivate, "Private"},
		{Reachability(5), "Reachability(5)"},
		{NATDeviceTypeUnknown, "Unknown"},
		{NATDeviceTypeCone, "Cone"},
		{NATDeviceTypeSymmetric, "Symmetric"},
		{NATDeviceType(3), "NATDeviceType(3)"},
		{NATTransportUDP, "UDP"},
		{NATTransportTCP, "TCP"},
		{NATTransportProtocol(2), "NATTransportProtocol(2)"},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("%T(%v).String() = %q; want %q", tt.v, tt.v, got, tt.want)
		}
	}
}

func TestNotifyBundle(t *testing.T) {
	addr := ma.StringCast("/ip4/127.0.0.1/tcp/1")
	var got []string
	nb := &NotifyBundle{
		ListenF:      func(_ Network, a ma.Multiaddr) { got = append(got, "listen "+a.String()) },
		ListenCloseF: func(_ Network, a ma.Multiaddr) { got = append(got, "close "+a.String()) },
		ConnectedF:   func(Network, Conn) { got = append(got, "connected") },
		DisconnectedF: func(Network, Conn) {
			got = append(got, "disconnected")
		},
	}
	nb.Listen(nil, addr)
	nb.ListenClose(nil, addr)
	nb.Connected(nil, nil)
	nb.Disconnected(nil, nil)
	want := []string{"listen /ip4/127.0.0.1/tcp/1", "close /ip4/127.0.0.1/tcp/1", "connected", "disconnected"}
	if len(got) != len(want) {
		t.Fatalf("calls %q; want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d = %q; want %q", i, got[i], want[i])
		}
	}
	// Unset functions are skipped, not called through nil.
	empty := &NotifyBundle{}
	empty.Listen(nil, addr)
	empty.ListenClose(nil, addr)
	empty.Connected(nil, nil)
	empty.Disconnected(nil, nil)
	GlobalNoopNotifiee.Listen(nil, addr)
	GlobalNoopNotifiee.ListenClose(nil, addr)
	GlobalNoopNotifiee.Connected(nil, nil)
	GlobalNoopNotifiee.Disconnected(nil, nil)
}

func TestNullResourceManager(t *testing.T) {
	rm := &NullResourceManager{}
	cs, err := rm.OpenConnection(DirInbound, true, ma.StringCast("/ip4/127.0.0.1/tcp/1"))
	if err != nil || cs == nil {
		t.Fatalf("OpenConnection = %v, %v", cs, err)
	}
	if err := cs.SetPeer("p"); err != nil {
		t.Errorf("SetPeer: %v", err)
	}
	if cs.PeerScope() == nil {
		t.Error("PeerScope is nil")
	}
	cs.Done()
	ss, err := rm.OpenStream("p", DirOutbound)
	if err != nil || ss == nil {
		t.Fatalf("OpenStream = %v, %v", ss, err)
	}
	if err := ss.SetProtocol("/x"); err != nil {
		t.Errorf("SetProtocol: %v", err)
	}
	if err := ss.SetService("svc"); err != nil {
		t.Errorf("SetService: %v", err)
	}
	if ss.ProtocolScope() == nil || ss.ServiceScope() == nil || ss.PeerScope() == nil {
		t.Error("a NullScope handed out a nil scope")
	}
	if err := ss.ReserveMemory(1<<40, ReservationPriorityLow); err != nil {
		t.Errorf("ReserveMemory: %v", err)
	}
	ss.ReleaseMemory(1 << 40)
	if st := ss.Stat(); st != (ScopeStat{}) {
		t.Errorf("Stat = %+v; want zero", st)
	}
	span, err := ss.BeginSpan()
	if err != nil || span == nil {
		t.Fatalf("BeginSpan = %v, %v", span, err)
	}
	span.Done()
	ss.Done()
	ss.Done() // Done twice is harmless.

	views := 0
	count := func() { views++ }
	_ = rm.ViewSystem(func(s ResourceScope) error { count(); return nil })
	_ = rm.ViewTransient(func(s ResourceScope) error { count(); return nil })
	_ = rm.ViewService("svc", func(s ServiceScope) error { count(); return nil })
	_ = rm.ViewProtocol("/x", func(s ProtocolScope) error { count(); return nil })
	_ = rm.ViewPeer("p", func(s PeerScope) error { count(); return nil })
	if views != 5 {
		t.Errorf("views called %d times; want 5", views)
	}
	sentinel := errors.New("from f")
	if err := rm.ViewPeer("p", func(PeerScope) error { return sentinel }); err != sentinel {
		t.Errorf("ViewPeer returned %v; want f's error", err)
	}
	if err := rm.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	var n NullScope
	if n.Name() != "" || n.Protocol() != "" || n.Peer() != "" {
		t.Error("NullScope names are not empty")
	}
}
