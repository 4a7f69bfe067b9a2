package webtransport

import (
	"bytes"
	"crypto/x509"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// TestCertRotation: certificates are valid for exactly 14 days and used
// from an hour after they start being valid to an hour before they
// expire, when the next one, announced from the start and valid for an
// hour already, takes over; a rotation announces the one after, and the
// Noise list keeps the previous hash for clients holding the old
// address. A clock that jumps weeks ahead gets the certificates of its
// new period.
func TestCertRotation(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clk := &fakeClock{t: t0}
	m, err := newCertManager(testSeed(1), clk.now)
	if err != nil {
		t.Fatal(err)
	}
	prev, first, second := m.previous, m.current, m.next
	for _, c := range []*cert{prev, first, second} {
		if d := c.notAfter.Sub(c.notBefore); d != CertValidity {
			t.Errorf("validity %v, want %v", d, CertValidity)
		}
		if c.tls.Leaf.PublicKeyAlgorithm != x509.ECDSA {
			t.Errorf("key algorithm %v, want ECDSA", c.tls.Leaf.PublicKeyAlgorithm)
		}
	}
	if !first.notBefore.Before(t0.Add(-time.Hour)) && !first.notBefore.Equal(t0.Add(-time.Hour)) || !t0.Before(first.notAfter.Add(-time.Hour)) {
		t.Errorf("at %v the current certificate is valid from %v to %v", t0, first.notBefore, first.notAfter)
	}
	for _, pair := range [][2]*cert{{prev, first}, {first, second}} {
		if want := pair[0].notAfter.Add(-2 * time.Hour); !pair[1].notBefore.Equal(want) {
			t.Errorf("successor valid from %v, want %v", pair[1].notBefore, want)
		}
	}
	checkAnnounced(t, m, first, second)
	checkNoise(t, m, prev, first, second)

	// Just before the replacement time nothing changes.
	clk.set(first.notAfter.Add(-time.Hour - time.Nanosecond))
	conf, err := m.tlsConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if conf.Certificates[0].Leaf != first.tls.Leaf {
		t.Error("rotated early")
	}
	// At it, the next certificate is used, valid for an hour already.
	clk.set(first.notAfter.Add(-time.Hour))
	conf, err = m.tlsConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if conf.Certificates[0].Leaf != second.tls.Leaf {
		t.Fatal("did not rotate at the replacement time")
	}
	if now := clk.now(); now.Sub(second.notBefore) != time.Hour {
		t.Errorf("new certificate valid for %v at rotation, want 1h", now.Sub(second.notBefore))
	}
	third := m.next
	if want := second.notAfter.Add(-2 * time.Hour); !third.notBefore.Equal(want) {
		t.Errorf("third valid from %v, want %v", third.notBefore, want)
	}
	checkAnnounced(t, m, second, third)
	checkNoise(t, m, first, second, third)

	// After weeks asleep: the certificates of the new period.
	late := third.notAfter.Add(24 * time.Hour)
	clk.set(late)
	if _, err := m.addrSuffix(); err != nil {
		t.Fatal(err)
	}
	if m.current.notBefore.After(late.Add(-time.Hour)) || !late.Before(m.current.notAfter.Add(-time.Hour)) {
		t.Errorf("at %v the current certificate is valid from %v to %v", late, m.current.notBefore, m.current.notAfter)
	}
	checkAnnounced(t, m, m.current, m.next)
}

// testSeed is a certificate seed.
func testSeed(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// TestCertsDeterministic: a node restarted with the same host key (seed)
// makes the same certificates, so the addresses it announced stay
// dialable; another key makes others.
func TestCertsDeterministic(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	a, err := newCertManager(testSeed(1), func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	// Restarted a little later, in the same period.
	b, err := newCertManager(testSeed(1), func() time.Time { return t0.Add(time.Minute) })
	if err != nil {
		t.Fatal(err)
	}
	c, err := newCertManager(testSeed(2), func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := a.addrSuffix()
	sb, _ := b.addrSuffix()
	sc, _ := c.addrSuffix()
	if !sa.Equal(sb) {
		t.Errorf("the same seed gave %s and %s", sa, sb)
	}
	if sa.Equal(sc) {
		t.Error("two seeds gave the same certificates")
	}
	if a.offset == c.offset {
		t.Error("two seeds rotate at the same time")
	}
}

func checkAnnounced(t *testing.T, m *certManager, want ...*cert) {
	t.Helper()
	suffix, err := m.addrSuffix()
	if err != nil {
		t.Fatal(err)
	}
	if len(suffix) != len(want) {
		t.Fatalf("announced %s, want %d hashes", suffix, len(want))
	}
	for i, c := range want {
		h, err := decodeCertHash(suffix[i].Value())
		if err != nil {
			t.Fatal(err)
		}
		if h.digest != c.hash {
			t.Errorf("announced hash %d is not the expected certificate's", i)
		}
	}
}

func checkNoise(t *testing.T, m *certManager, want ...*cert) {
	t.Helper()
	got, err := m.noiseHashes()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Noise lists %d hashes, want %d", len(got), len(want))
	}
	for i, c := range want {
		if string(got[i]) != string(c.multihash) {
			t.Errorf("Noise hash %d is not the expected certificate's", i)
		}
	}
}

// TestVerifyCert: the dialer accepts a certificate only if the address
// names it, it is valid now, and for at most 14 days.
func TestVerifyCert(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, err := newCert(testSeed(1), t0)
	if err != nil {
		t.Fatal(err)
	}
	other, err := newCert(testSeed(2), t0)
	if err != nil {
		t.Fatal(err)
	}
	h := func(c *cert) certHash { return certHash{digest: c.hash, multihash: c.multihash} }
	raw := c.tls.Certificate
	for _, tc := range []struct {
		name   string
		hashes []certHash
		now    time.Time
		ok     bool
	}{
		{"named", []certHash{h(c)}, t0.Add(time.Hour), true},
		{"among others", []certHash{h(other), h(c)}, t0.Add(time.Hour), true},
		{"not named", []certHash{h(other)}, t0.Add(time.Hour), false},
		{"not yet valid", []certHash{h(c)}, t0.Add(-time.Second), false},
		{"expired", []certHash{h(c)}, t0.Add(CertValidity + time.Second), false},
	} {
		err := verifyCert(raw, tc.hashes, tc.now)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if verifyCert(nil, []certHash{h(c)}, t0) == nil {
		t.Error("no certificate accepted")
	}
}
