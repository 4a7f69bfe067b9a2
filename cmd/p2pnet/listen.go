package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/p2pnet/p2pnet"
	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/rcmgr"
)

// stringsFlag collects a repeated string flag.
type stringsFlag []string

func (f *stringsFlag) String() string     { return strings.Join(*f, ",") }
func (f *stringsFlag) Set(s string) error { *f = append(*f, s); return nil }

// hostKey returns the key in keyFile (created if absent), or a fresh
// Ed25519 key when keyFile is empty.
func hostKey(keyFile string) (ic.PrivKey, error) {
	priv, _, err := loadOrCreateKey(keyFile, ic.Ed25519, 0)
	return priv, err
}

// signalContext is cancelled by SIGINT or SIGTERM; tests replace it.
var signalContext = func() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runListen(args []string, stdout, stderr io.Writer) error {
	fl := newFlags("listen", stderr)
	var listen stringsFlag
	fl.Var(&listen, "listen", "listen on `MADDR` (repeatable); default: every interface, IPv4 and IPv6, TCP and QUIC, ports the system picks")
	keyFile := fl.String("key", "", "identity key `FILE` (created if absent); default: a fresh key")
	limitsFile := fl.String("limits", "", "resource limits from this JSON `FILE` (see 'p2pnet limits'); default: limits scaled to this machine")
	noPerf := fl.Bool("no-perf", false, "do not serve the perf protocol (it lets any peer make this node send and receive data)")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		fmt.Fprintf(stderr, "p2pnet listen: unexpected argument %q\n", fl.Arg(0))
		return errUsage
	}
	priv, err := hostKey(*keyFile)
	if err != nil {
		return err
	}
	opts := []p2pnet.Option{p2pnet.Identity(priv)}
	serving := "ping and identify"
	if !*noPerf {
		opts = append(opts, p2pnet.EnablePerf())
		serving = "ping, identify and perf"
	}
	if *limitsFile != "" {
		limits, err := loadLimitsFile(*limitsFile)
		if err != nil {
			return err
		}
		rm, err := rcmgr.New(limits)
		if err != nil {
			return fmt.Errorf("limits file %s: %w", *limitsFile, err)
		}
		defer rm.Close()
		opts = append(opts, p2pnet.ResourceManager(rm))
	}
	if len(listen) > 0 {
		opts = append(opts, p2pnet.ListenAddrStrings(listen...))
	}
	ctx, stop := signalContext()
	defer stop()
	h, err := p2pnet.New(opts...)
	if err != nil {
		return err
	}
	defer h.Close()

	log := slog.New(slog.NewTextHandler(stderr, nil))
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			st := c.ConnState()
			log.Info("connected", "peer", c.RemotePeer(), "addr", c.RemoteMultiaddr(), "dir", c.Stat().Direction,
				"security", st.Security, "muxer", st.StreamMultiplexer)
		},
		DisconnectedF: func(_ network.Network, c network.Conn) {
			log.Info("disconnected", "peer", c.RemotePeer(), "addr", c.RemoteMultiaddr())
		},
	})
	for _, a := range h.P2PAddrs() {
		fmt.Fprintln(stdout, a)
	}
	if f, ok := stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	log.Info("listening; serving "+serving+"; stop with Ctrl-C", "peer", h.ID())
	<-ctx.Done()
	log.Info("shutting down")
	return h.Close()
}
