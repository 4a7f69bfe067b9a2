package netlab_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/internal/netlab"
	"github.com/p2pnet/p2pnet/proto/autonat"
)

// TestPortMapMiniUPnPd is scenario (e): miniupnpd runs on A's router (a
// cone NAT that drops what comes in unasked); A listens with NATPortMap
// on TCP and QUIC port 4001 and asks an AutoNAT v2 server on the public
// segment to check its addresses. A maps both ports at the router's
// public address, AutoNAT finds A Public through the mapping, and A
// announces the mapped addresses; B on the public segment dials A there
// directly, over TCP and QUIC, and A sees B's own address (no relay).
// When A exits, its forwards are gone from miniupnpd's nftables chain.
// Once with UPnP IGD alone and once with NAT-PMP alone, so that each
// client meets the real daemon.
func TestPortMapMiniUPnPd(t *testing.T) {
	bin := build(t, "portmapnode", "./cmd/portmapnode")
	server := build(t, "autonatnode", "./cmd/autonatnode")
	for _, proto := range []string{"upnp", "natpmp"} {
		t.Run(proto, func(t *testing.T) {
			start := time.Now()
			lab := netlab.New(t)
			s := lab.AddPublicHost("srv")
			b := lab.AddPublicHost("b")
			router, a := lab.AddNAT("a", netlab.Cone)
			public := "--public-cidr=" + netlab.PublicNet + ".0/24"

			stun := s.Start(t, bin, "stun", "--listen", s.Addr+":3478")
			next(t, stun, 10*time.Second, "stun")
			igd := router.StartMiniUPnPd(t, netlab.MiniUPnPdConfig{UPnP: proto == "upnp", NATPMP: proto == "natpmp", STUN: s.Addr + ":3478"})

			sp := s.Start(t, server, "--listen", "/ip4/"+s.Addr+"/tcp/4001", "--listen", "/ip4/"+s.Addr+"/udp/4001/quic-v1", public)
			sAddr := next(t, sp, 10*time.Second, "listen")["addrs"].([]any)[0].(string)

			ap := a.Start(t, bin, "listen", "--listen", "/ip4/0.0.0.0/tcp/4001", "--listen", "/ip4/0.0.0.0/udp/4001/quic-v1",
				"--connect", sAddr, public)
			id := next(t, ap, 10*time.Second, "listen").str("id")
			wantMaps := []string{"UDP 4001 " + router.Addr + ":4001", "TCP 4001 " + router.Addr + ":4001"}
			tcpAddr := "/ip4/" + router.Addr + "/tcp/4001"
			quicAddr := "/ip4/" + router.Addr + "/udp/4001/quic-v1"
			var mapped, announced time.Duration
			var st line
			// AutoNAT checks one address per round; a round that meets a
			// dial back that cannot arrive waits for it to time out.
			deadline := time.Now().Add(20*time.Second + 4*autonat.DefaultDialBackTimeout)
			for announced == 0 {
				st = next(t, ap, time.Until(deadline), "state")
				t.Logf("A: %v", st)
				if mapped == 0 && slices.Equal(strs(st["mappings"]), wantMaps) {
					mapped = time.Since(start)
					if f := igd.Forwards(t); len(f) != 2 {
						t.Errorf("miniupnpd's forwards once A mapped: %q", f)
					}
				}
				addrs := strs(st["addrs"])
				if mapped != 0 && st.str("reachability") == "Public" && slices.Contains(addrs, tcpAddr) && slices.Contains(addrs, quicAddr) {
					announced = time.Since(start)
				}
			}

			for _, target := range []string{tcpAddr, quicAddr} {
				bp := b.Start(t, bin, "dial", target+"/p2p/"+id)
				d := next(t, bp, 20*time.Second, "dialed")
				if d.str("addr") != target || d["limited"] != false {
					t.Errorf("B's connection to %s: %v", target, d)
				}
				c := next(t, ap, 10*time.Second, "conn")
				for !strings.HasPrefix(c.str("addr"), "/ip4/"+b.Addr+"/") {
					c = next(t, ap, 10*time.Second, "conn")
				}
				if c.str("dir") != "Inbound" || c["limited"] != false {
					t.Errorf("A's connection from B: %v", c)
				}
				bp.Wait(10 * time.Second)
			}

			if err := ap.Terminate(); err != nil {
				t.Fatal(err)
			}
			if !ap.Wait(15 * time.Second) {
				t.Fatal("A did not exit within 15 s of SIGTERM")
			}
			if f := igd.Forwards(t); len(f) != 0 {
				t.Errorf("miniupnpd's forwards after A exited: %q", f)
			}
			t.Logf("%s: mapped after %v, Public and announced after %v, whole scenario %v", proto,
				mapped.Round(time.Millisecond), announced.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		})
	}
}

func strs(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, s := range l {
		out = append(out, s.(string))
	}
	return out
}

// TestPortMapCLI: p2pnet listen --nat-portmap behind a router whose
// miniupnpd serves both UPnP IGD and NAT-PMP logs a mapping of each
// listen port (TCP and UDP) at the router's public address, the
// forwards appear in miniupnpd's nftables chain, and are gone once the
// command has exited on SIGTERM.
func TestPortMapCLI(t *testing.T) {
	bin := build(t, "p2pnet", "../../cmd/p2pnet")
	stunBin := build(t, "portmapnode", "./cmd/portmapnode")
	start := time.Now()
	lab := netlab.New(t)
	s := lab.AddPublicHost("stun")
	router, a := lab.AddNAT("a", netlab.Cone)
	next(t, s.Start(t, stunBin, "stun", "--listen", s.Addr+":3478"), 10*time.Second, "stun")
	igd := router.StartMiniUPnPd(t, netlab.MiniUPnPdConfig{UPnP: true, NATPMP: true, STUN: s.Addr + ":3478"})
	ap := a.Start(t, "/bin/sh", "-c", `exec "$0" "$@" 2>&1`, bin, "listen", "--nat-portmap", "--log-format", "json",
		"--listen", "/ip4/0.0.0.0/tcp/4001", "--listen", "/ip4/0.0.0.0/udp/4001/quic-v1")
	mapped := map[string]string{}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for len(mapped) < 2 {
		select {
		case s, ok := <-ap.Lines():
			if !ok {
				t.Fatal("p2pnet listen exited")
			}
			var l line
			if json.Unmarshal([]byte(s), &l) != nil || l.str("msg") != "port mapped" {
				continue
			}
			t.Logf("A: %s", s)
			mapped[l.str("protocol")] = l.str("external")
		case <-deadline.C:
			t.Fatalf("mappings logged within 30 s: %v", mapped)
		}
	}
	want := router.Addr + ":4001"
	if mapped["TCP"] != want || mapped["UDP"] != want {
		t.Errorf("mapped %v, want TCP and UDP at %s", mapped, want)
	}
	if f := igd.Forwards(t); len(f) != 2 {
		t.Errorf("miniupnpd's forwards: %q", f)
	}
	if err := ap.Terminate(); err != nil {
		t.Fatal(err)
	}
	if !ap.Wait(15 * time.Second) {
		t.Fatal("p2pnet listen did not exit within 15 s of SIGTERM")
	}
	if f := igd.Forwards(t); len(f) != 0 {
		t.Errorf("miniupnpd's forwards after p2pnet listen exited: %q", f)
	}
	t.Logf("mapped, checked and removed within %v", time.Since(start).Round(time.Millisecond))
}
