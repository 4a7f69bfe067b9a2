package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServerVerifies(t *testing.T) {
	pool, cert := Server(t, "example.test")
	for _, name := range []string{"example.test", "127.0.0.1", "::1"} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("verifying for %s: %v", name, err)
		}
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "other.test", Roots: pool}); err == nil {
		t.Error("verified for a name it was not made for")
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "example.test", Roots: x509.NewCertPool()}); err == nil {
		t.Error("verified without its authority")
	}
}

func TestWritePEMLoads(t *testing.T) {
	_, cert := Server(t, "localhost")
	certFile, keyFile := WritePEM(t, t.TempDir(), cert)
	got, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Certificate[0]) != string(cert.Certificate[0]) {
		t.Error("the certificate read back differs")
	}
}
