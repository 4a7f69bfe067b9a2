package main

import (
	"fmt"
	"io"
	"os"

	"github.com/p2pnet/p2pnet/rcmgr"
)

// loadLimitsFile reads a JSON limit file on top of the machine's
// defaults.
func loadLimitsFile(path string) (rcmgr.Limits, error) {
	f, err := os.Open(path)
	if err != nil {
		return rcmgr.Limits{}, fmt.Errorf("reading limits: %w", err)
	}
	defer f.Close()
	l, err := rcmgr.LoadLimits(f)
	if err != nil {
		return rcmgr.Limits{}, fmt.Errorf("limits file %s: %w", path, err)
	}
	return l, nil
}

// limitsDoc explains the limits `p2pnet limits` prints, for --explain.
const limitsDoc = `'p2pnet limits' prints the resource limits in effect on this machine as
JSON: the file 'p2pnet listen --limits' reads. A file may give any part of
it; what it leaves out keeps the value printed.

Each scope holds a limit of every resource: Memory (bytes, or a size such
as "64MiB"), FD, Conns, ConnsInbound, ConnsOutbound, Streams,
StreamsInbound, StreamsOutbound. A value is a number, "unlimited",
"blockAll" (0) or "default".

  System                 everything the node holds
  Transient              connections before their handshake names the peer,
                         streams before they name their protocol
  AllowlistedSystem,     System and Transient for allowlisted addresses
  AllowlistedTransient
  PeerDefault            each peer (Peer: overrides by peer ID)
  ProtocolDefault        each protocol (Protocol: overrides by protocol ID)
  ProtocolPeerDefault    each peer within each protocol (ProtocolPeer)
  ServiceDefault         each service (Service)
  ServicePeerDefault     each peer within each service (ServicePeer)
  Conn, Stream           each connection, each stream

Shares divides the transient scope so that a few addresses or peers
cannot lock the others out. A source is a group of remote addresses: one
IPv4 address and one IPv6 /56 by default. Loopback addresses are spared
unless 'p2pnet listen --limit-loopback'. A cap of 0 or "unlimited" caps
nothing.

  IPv4Prefix, IPv6Prefix        how addresses group into sources (32, 56)
  TransientConnsPerSource       inbound connections of one source still in
                                their handshake (an eighth of
                                Transient.ConnsInbound)
  UnnegotiatedStreamsPerConn    inbound streams that have not named their
  UnnegotiatedStreamsPerPeer    protocol, on one connection, of one peer,
  UnnegotiatedStreamsPerSource  from one source (a sixteenth of
                                Transient.StreamsInbound each)
  UnnegotiatedStreamsBurst      while Transient holds fewer inbound streams
                                than this, the three caps above are lifted
                                (a quarter of Transient.StreamsInbound)

Refused requests are counted by limit, and 'p2pnet listen' sums them up
on stderr every 10 seconds that has any.
`

func runLimits(args []string, stdout, stderr io.Writer) error {
	fl := newFlags("limits", stderr)
	file := fl.String("limits", "", "show the limits of this JSON `FILE` applied to the defaults")
	explain := fl.Bool("explain", false, "print what each part of the JSON means, instead of the limits")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if err := noArgs(fl); err != nil {
		return err
	}
	if *explain {
		_, err := io.WriteString(stdout, limitsDoc)
		return err
	}
	limits := rcmgr.DefaultLimits()
	if *file != "" {
		var err error
		if limits, err = loadLimitsFile(*file); err != nil {
			return err
		}
	}
	return writeLimits(stdout, limits)
}
