package devcert

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

// TestCreateChainsAndKeysArePrivate: the server and client certificates
// verify against the CA for their uses and names, and keys are 0600.
func TestCreateChainsAndKeysArePrivate(t *testing.T) {
	f, err := Create(t.TempDir(), "nats.internal", "10.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA not PEM")
	}
	load := func(cert, key string) *x509.Certificate {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(kp.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	server := load(f.ServerCert, f.ServerKey)
	for _, name := range []string{"localhost", "127.0.0.1", "nats.internal", "10.0.0.5"} {
		if _, err := server.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if _, err := server.Verify(x509.VerifyOptions{Roots: pool, DNSName: "evil.example"}); err == nil {
		t.Error("server certificate verifies for a name it does not carry")
	}
	client := load(f.ClientCert, f.ClientKey)
	if _, err := client.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	for _, k := range []string{f.CAKey, f.ServerKey, f.ClientKey} {
		if fi, err := os.Stat(k); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v %v, want 0600", k, fi.Mode().Perm(), err)
		}
	}
}
