package tls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"net"
	"testing"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
)

func tlsClient(c net.Conn, cfg *stdtls.Config) *stdtls.Conn { return stdtls.Client(c, cfg) }
func tlsServer(c net.Conn, cfg *stdtls.Config) *stdtls.Conn { return stdtls.Server(c, cfg) }

// certSpec describes a test certificate: a valid libp2p certificate for
// host, spoiled by mutate.
type certSpec struct {
	host ic.PrivKey
	// mutate may change the template, the extension and the signing key
	// before the certificate is made.
	mutate func(tmpl *x509.Certificate, ext *pkix.Extension, signer **ecdsa.PrivateKey)
	// chain appends certificates after the first.
	extra int
	// corrupt changes the DER after signing.
	corrupt func(der []byte)
}

// makeCert builds the certificate described by spec.
func makeCert(t testing.TB, spec certSpec) stdtls.Certificate {
	t.Helper()
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&certKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	value, err := marshalExtension(spec.host, spki)
	if err != nil {
		t.Fatal(err)
	}
	ext := pkix.Extension{Id: extensionOID, Critical: true, Value: value}
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour),
		NotAfter:  time.Now().Add(time.Hour),
	}
	signer := certKey
	if spec.mutate != nil {
		spec.mutate(tmpl, &ext, &signer)
	}
	if ext.Id != nil {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, ext)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &certKey.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	if spec.corrupt != nil {
		spec.corrupt(der)
	}
	cert := stdtls.Certificate{Certificate: [][]byte{der}, PrivateKey: certKey}
	for range spec.extra {
		cert.Certificate = append(cert.Certificate, der)
	}
	return cert
}

// badCerts are certificates a libp2p peer must reject, with the error.
func badCerts(host ic.PrivKey) map[string]struct {
	spec certSpec
	want error
} {
	return map[string]struct {
		spec certSpec
		want error
	}{
		"no extension": {certSpec{host: host, mutate: func(_ *x509.Certificate, ext *pkix.Extension, _ **ecdsa.PrivateKey) {
			*ext = pkix.Extension{}
		}}, ErrNoExtension},
		"extension under another OID": {certSpec{host: host, mutate: func(_ *x509.Certificate, ext *pkix.Extension, _ **ecdsa.PrivateKey) {
			ext.Id = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 53594, 1, 2}
			ext.Critical = false
		}}, ErrNoExtension},
		"extension signature over another key": {certSpec{host: host, mutate: func(_ *x509.Certificate, ext *pkix.Extension, _ **ecdsa.PrivateKey) {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
			ext.Value, _ = marshalExtension(host, spki)
		}}, ErrExtensionSignature},
		"extension signature corrupted": {certSpec{host: host, mutate: func(_ *x509.Certificate, ext *pkix.Extension, _ **ecdsa.PrivateKey) {
			ext.Value[len(ext.Value)-1] ^= 1
		}}, ErrExtensionSignature},
		"extension with trailing bytes": {certSpec{host: host, mutate: func(_ *x509.Certificate, ext *pkix.Extension, _ **ecdsa.PrivateKey) {
			ext.Value = append(ext.Value, 0)
		}}, ErrMalformedExtension},
		"extension as bit strings": {certSpec{host: host, mutate: func(_ *x509.Certificate, ext *pkix.Extension, _ **ecdsa.PrivateKey) {
			var sk signedKey
			if _, err := asn1.Unmarshal(ext.Value, &sk); err != nil {
				panic(err)
			}
			ext.Value, _ = asn1.Marshal(struct{ A, B asn1.BitString }{
				asn1.BitString{Bytes: sk.PublicKey, BitLength: 8 * len(sk.PublicKey)},
				asn1.BitString{Bytes: sk.Signature, BitLength: 8 * len(sk.Signature)},
			})
		}}, ErrMalformedExtension},
		"extension with a bad host key": {certSpec{host: host, mutate: func(_ *x509.Certificate, ext *pkix.Extension, _ **ecdsa.PrivateKey) {
			ext.Value, _ = asn1.Marshal(signedKey{PublicKey: []byte{8, 1, 18, 3, 1, 2, 3}, Signature: []byte{1}})
		}}, ErrMalformedExtension},
		"two certificates": {certSpec{host: host, extra: 1}, ErrChainLength},
		"expired": {certSpec{host: host, mutate: func(tmpl *x509.Certificate, _ *pkix.Extension, _ **ecdsa.PrivateKey) {
			tmpl.NotBefore = time.Now().Add(-2 * time.Hour)
			tmpl.NotAfter = time.Now().Add(-time.Hour)
		}}, ErrCertValidity},
		"not yet valid": {certSpec{host: host, mutate: func(tmpl *x509.Certificate, _ *pkix.Extension, _ **ecdsa.PrivateKey) {
			tmpl.NotBefore = time.Now().Add(time.Hour)
			tmpl.NotAfter = time.Now().Add(2 * time.Hour)
		}}, ErrCertValidity},
		"signed by another key": {certSpec{host: host, mutate: func(_ *x509.Certificate, _ *pkix.Extension, signer **ecdsa.PrivateKey) {
			*signer, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}}, ErrSelfSignature},
		"SHA-1 self-signature": {certSpec{host: host, mutate: func(tmpl *x509.Certificate, _ *pkix.Extension, _ **ecdsa.PrivateKey) {
			tmpl.SignatureAlgorithm = x509.ECDSAWithSHA1
		}}, ErrSelfSignature},
		"unknown critical extension": {certSpec{host: host, mutate: func(tmpl *x509.Certificate, _ *pkix.Extension, _ **ecdsa.PrivateKey) {
			tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{
				Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0},
			})
		}}, ErrCriticalExtension},
	}
}

// goodCerts are certificates a libp2p peer must accept.
func goodCerts(host ic.PrivKey) map[string]certSpec {
	return map[string]certSpec{
		"ours":                   {host: host},
		"non-critical extension": {host: host, mutate: func(_ *x509.Certificate, ext *pkix.Extension, _ **ecdsa.PrivateKey) { ext.Critical = false }},
		"unknown non-critical extension": {host: host, mutate: func(tmpl *x509.Certificate, _ *pkix.Extension, _ **ecdsa.PrivateKey) {
			tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: []byte{5, 0}})
		}},
	}
}

func parseChain(t *testing.T, cert stdtls.Certificate) []*x509.Certificate {
	t.Helper()
	var chain []*x509.Certificate
	for _, der := range cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	return chain
}

func TestPubKeyFromCertChain(t *testing.T) {
	host := ed25519Key(t, 0)
	for name, tt := range badCerts(host) {
		t.Run(name, func(t *testing.T) {
			_, err := PubKeyFromCertChain(parseChain(t, makeCert(t, tt.spec)))
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
		})
	}
	for name, spec := range goodCerts(host) {
		t.Run(name, func(t *testing.T) {
			key, err := PubKeyFromCertChain(parseChain(t, makeCert(t, spec)))
			if err != nil {
				t.Fatal(err)
			}
			if !key.Equals(host.GetPublic()) {
				t.Fatal("wrong key")
			}
		})
	}
	if _, err := PubKeyFromCertChain(nil); !errors.Is(err, ErrChainLength) {
		t.Errorf("empty chain: %v, want ErrChainLength", err)
	}
}

func TestPubKeyFromCertChainDoesNotModify(t *testing.T) {
	chain := parseChain(t, makeCert(t, certSpec{host: ed25519Key(t, 0)}))
	before := len(chain[0].UnhandledCriticalExtensions)
	if before != 1 {
		t.Fatalf("our critical extension: %d unhandled, want 1", before)
	}
	if _, err := PubKeyFromCertChain(chain); err != nil {
		t.Fatal(err)
	}
	if _, err := PubKeyFromCertChain(chain); err != nil {
		t.Fatal(err)
	}
	if len(chain[0].UnhandledCriticalExtensions) != before {
		t.Error("PubKeyFromCertChain modified the certificate")
	}
}

// TestHandshakeRejectsBadCertificates runs each bad certificate in a
// hand-made crypto/tls peer against our transport, on both sides, over
// TCP (see TestOutboundPeerMismatch).
func TestHandshakeRejectsBadCertificates(t *testing.T) {
	host := ed25519Key(t, 1)
	for name, tt := range badCerts(host) {
		cert := makeCert(t, tt.spec)
		t.Run(name+"/we dial", func(t *testing.T) {
			tr := newTransport(t, ed25519Key(t, 0), yamux)
			craw, sraw := tcpPair(t)
			srv := tlsServer(sraw, &stdtls.Config{
				MinVersion:   stdtls.VersionTLS13,
				Certificates: []stdtls.Certificate{cert},
				ClientAuth:   stdtls.RequireAnyClientCert,
			})
			errc := make(chan error, 1)
			go func() { errc <- srv.HandshakeContext(t.Context()) }()
			_, err := tr.SecureOutbound(t.Context(), craw, peerID(t, host))
			if !errors.Is(err, tt.want) {
				t.Errorf("SecureOutbound error = %v, want %v", err, tt.want)
			}
			if <-errc == nil {
				t.Error("the bad server's handshake succeeded")
			}
			checkClosed(t, craw)
		})
		t.Run(name+"/we listen", func(t *testing.T) {
			tr := newTransport(t, ed25519Key(t, 0), yamux)
			craw, sraw := tcpPair(t)
			cli := tlsClient(craw, &stdtls.Config{
				MinVersion:         stdtls.VersionTLS13,
				Certificates:       []stdtls.Certificate{cert},
				InsecureSkipVerify: true,
			})
			errc := make(chan error, 1)
			go func() {
				if err := cli.HandshakeContext(t.Context()); err != nil {
					errc <- err
					return
				}
				// The server's verdict comes as an alert.
				_, err := cli.Read(make([]byte, 1))
				errc <- err
			}()
			_, err := tr.SecureInbound(t.Context(), sraw, "")
			if !errors.Is(err, tt.want) {
				t.Errorf("SecureInbound error = %v, want %v", err, tt.want)
			}
			if <-errc == nil {
				t.Error("the bad client did not see the rejection")
			}
			checkClosed(t, sraw)
		})
	}
}

// TestHandshakeAcceptsForeignCertificates runs certificates that differ
// from ours in allowed ways against our transport.
func TestHandshakeAcceptsForeignCertificates(t *testing.T) {
	host := ed25519Key(t, 1)
	for name, spec := range goodCerts(host) {
		t.Run(name, func(t *testing.T) {
			cert := makeCert(t, spec)
			tr := newTransport(t, ed25519Key(t, 0), yamux)
			craw, sraw := pipePair(t)
			srv := tlsServer(sraw, &stdtls.Config{
				MinVersion:   stdtls.VersionTLS13,
				Certificates: []stdtls.Certificate{cert},
				ClientAuth:   stdtls.RequireAnyClientCert,
				NextProtos:   []string{ALPN},
			})
			errc := make(chan error, 1)
			go func() { errc <- srv.HandshakeContext(t.Context()) }()
			c, err := tr.SecureOutbound(t.Context(), craw, peerID(t, host))
			if err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if c.RemotePeer() != peerID(t, host) {
				t.Errorf("RemotePeer = %s", c.RemotePeer())
			}
			if st := c.ConnState(); st.StreamMultiplexer != "" || st.UsedEarlyMuxerNegotiation {
				t.Errorf("ConnState = %+v, want no muxer after the libp2p fallback", st)
			}
		})
	}
}

// The test vectors of the libp2p TLS spec.
var specVectors = []struct {
	name, cert, peer string
}{
	{"Ed25519", "308201773082011ea003020102020900f5bd0debaa597f52300a06082a8648ce3d04030230003020170d3735303130313030303030305a180f34303936303130313030303030305a30003059301306072a8648ce3d020106082a8648ce3d030107034200046bf9871220d71dcb3483ecdfcbfcc7c103f8509d0974b3c18ab1f1be1302d643103a08f7a7722c1b247ba3876fe2c59e26526f479d7718a85202ddbe47562358a37f307d307b060a2b0601040183a25a01010101ff046a30680424080112207fda21856709c5ae12fd6e8450623f15f11955d384212b89f56e7e136d2e17280440aaa6bffabe91b6f30c35e3aa4f94b1188fed96b0ffdd393f4c58c1c047854120e674ce64c788406d1c2c4b116581fd7411b309881c3c7f20b46e54c7e6fe7f0f300a06082a8648ce3d040302034700304402207d1a1dbd2bda235ff2ec87daf006f9b04ba076a5a5530180cd9c2e8f6399e09d0220458527178c7e77024601dbb1b256593e9b96d961b96349d1f560114f61a87595", "12D3KooWJRSrypvnpHgc6ZAgyCni4KcSmbV7uGRaMw5LgMKT18fq"},
	{"ECDSA", "308201c030820166a003020102020900eaf419a6e3edb4a6300a06082a8648ce3d04030230003020170d3735303130313030303030305a180f34303936303130313030303030305a30003059301306072a8648ce3d020106082a8648ce3d030107034200048dbf1116c7c608d6d5292bd826c3feb53483a89fce434bf64538a359c8e07538ff71f6766239be6a146dcc1a5f3bb934bcd4ae2ae1d4da28ac68b4a20593f06ba381c63081c33081c0060a2b0601040183a25a01010101ff0481ae3081ab045f0803125b3059301306072a8648ce3d020106082a8648ce3d0301070342000484b93fa456a74bd0153919f036db7bc63c802f055bc7023395d0203de718ee0fc7b570b767cdd858aca6c7c4113ff002e78bd2138ac1a3b26dde3519e06979ad04483046022100bc84014cea5a41feabdf4c161096564b9ccf4b62fbef4fe1cd382c84e11101780221009204f086a84cb8ed8a9ddd7868dc90c792ee434adf62c66f99a08a5eba11615b300a06082a8648ce3d0403020348003045022054b437be9a2edf591312d68ff24bf91367ad4143f76cf80b5658f232ade820da022100e23b48de9df9c25d4c83ddddf75d2676f0b9318ee2a6c88a736d85eab94a912f", "QmZcrvr3r4S3QvwFdae3c2EWTfo792Y14UpzCZurhmiWeX"},
	{"Secp256k1", "3082018230820128a003020102020900f3b305f55622cfdf300a06082a8648ce3d04030230003020170d3735303130313030303030305a180f34303936303130313030303030305a30003059301306072a8648ce3d020106082a8648ce3d0301070342000458f7e9581748ff9bdd933b655cc0e5552a1248f840658cc221dec2186b5a2fe4641b86ab7590a3422cdbb1000cf97662f27e5910d7569f22feed8829c8b52e0fa38188308185308182060a2b0601040183a25a01010101ff0471306f042508021221026b053094d1112bce799dc8026040ae6d4eb574157929f1598172061f753d9b1b04463044022040712707e97794c478d93989aaa28ae1f71c03af524a8a4bd2d98424948a782302207b61b7f074b696a25fb9e0059141a811cccc4cc28042d9301b9b2a4015e87470300a06082a8648ce3d04030203480030450220143ae4d86fdc8675d2480bb6912eca5e39165df7f572d836aa2f2d6acfab13f8022100831d1979a98f0c4a6fb5069ca374de92f1a1205c962a6d90ad3d7554cb7d9df4", "16Uiu2HAm2dSCBFxuge46aEt7U1oejtYuBUZXxASHqmcfVmk4gsbx"},
	// The host key in the extension did not sign the certificate's key.
	{"invalid", "308201773082011da003020102020830a73c5d896a1109300a06082a8648ce3d04030230003020170d3735303130313030303030305a180f34303936303130313030303030305a30003059301306072a8648ce3d020106082a8648ce3d03010703420004bbe62df9a7c1c46b7f1f21d556deec5382a36df146fb29c7f1240e60d7d5328570e3b71d99602b77a65c9b3655f62837f8d66b59f1763b8c9beba3be07778043a37f307d307b060a2b0601040183a25a01010101ff046a3068042408011220ec8094573afb9728088860864f7bcea2d4fd412fef09a8e2d24d482377c20db60440ecabae8354afa2f0af4b8d2ad871e865cb5a7c0c8d3dbdbf42de577f92461a0ebb0a28703e33581af7d2a4f2270fc37aec6261fcc95f8af08f3f4806581c730a300a06082a8648ce3d040302034800304502202dfb17a6fa0f94ee0e2e6a3b9fb6e986f311dee27392058016464bd130930a61022100ba4b937a11c8d3172b81e7cd04aedb79b978c4379c2b5b24d565dd5d67d3cb3c", ""},
}

func TestSpecVectors(t *testing.T) {
	for _, v := range specVectors {
		t.Run(v.name, func(t *testing.T) {
			der, err := hex.DecodeString(v.cert)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			key, err := PubKeyFromCertChain([]*x509.Certificate{cert})
			if v.peer == "" {
				if !errors.Is(err, ErrExtensionSignature) {
					t.Fatalf("error = %v, want ErrExtensionSignature", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			id, err := peer.IDFromPublicKey(key)
			if err != nil {
				t.Fatal(err)
			}
			if id.String() != v.peer {
				t.Fatalf("peer ID %s, want %s", id, v.peer)
			}
		})
	}
}

// TestOurCertificate checks the certificate NewIdentity makes.
func TestOurCertificate(t *testing.T) {
	host := ed25519Key(t, 0)
	id, err := NewIdentity(host)
	if err != nil {
		t.Fatal(err)
	}
	cert := id.certs[0].Leaf
	if len(id.certs[0].Certificate) != 1 {
		t.Fatalf("%d certificates, want 1", len(id.certs[0].Certificate))
	}
	if _, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || cert.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("key %T signed with %s, want ECDSA P-256 with SHA-256", cert.PublicKey, cert.SignatureAlgorithm)
	}
	if got := cert.NotAfter.Sub(cert.NotBefore); got != certBackdate+certLifetime {
		t.Errorf("validity %s, want %s", got, certBackdate+certLifetime)
	}
	if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() < 64 {
		t.Errorf("serial number %s is not a large random number", cert.SerialNumber)
	}
	var found bool
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(extensionOID) {
			found = true
			if !ext.Critical {
				t.Error("libp2p extension not critical")
			}
		}
	}
	if !found {
		t.Error("no libp2p extension")
	}
	key, err := PubKeyFromCertChain([]*x509.Certificate{cert})
	if err != nil {
		t.Fatal(err)
	}
	if !key.Equals(host.GetPublic()) {
		t.Error("certificate proves another key")
	}
	other, err := NewIdentity(host)
	if err != nil {
		t.Fatal(err)
	}
	if other.certs[0].Leaf.SerialNumber.Cmp(cert.SerialNumber) == 0 {
		t.Error("two identities share a serial number")
	}
}
