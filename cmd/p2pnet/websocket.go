package main

import (
	"crypto/tls"
	"fmt"

	"github.com/p2pnet/p2pnet"
)

// wsTLSOption returns the option that gives /tls/ws listen addresses the
// certificate in certFile with its key in keyFile (both PEM), or nil when
// neither file is named.
func wsTLSOption(certFile, keyFile string) (p2pnet.Option, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, usagef("--tls-cert and --tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", certFile, keyFile, err)
	}
	return p2pnet.WebSocketTLS(&tls.Config{Certificates: []tls.Certificate{cert}}), nil
}
