package uplink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldgate/uplink/sink"
)

// writeClientCert makes a self-signed client certificate and key, writes
// them as PEM files, and returns their paths and a pool trusting it.
func writeClientCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fg-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return certFile, keyFile, pool
}

// TestMutualTLSWithACustomCA sends to a TLS server whose certificate only a
// custom CA file vouches for, and which requires a client certificate.
func TestMutualTLSWithACustomCA(t *testing.T) {
	certFile, keyFile, clients := writeClientCert(t)
	sk := sink.New("secret")
	srv := httptest.NewUnstartedServer(sk)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))

	// Without the client certificate the handshake fails: nothing arrives.
	st := testStore(t, 200)
	o := fastOptions(srv.URL)
	o.CAFile = caFile
	s := running(t, st, o)
	waitStatus(t, s, func(x Status) bool { return x.State == "offline" && strings.Contains(x.LastError, "certificate") })
	if len(sk.Readings()) != 0 {
		t.Fatal("readings arrived without a client certificate")
	}

	st2 := testStore(t, 200)
	o.ClientCert, o.ClientKey = certFile, keyFile
	running(t, st2, o)
	drained(t, st2, 10*time.Second)
	exactlyOnce(t, st2, sk)
}

func TestTLSOptionsFailClearly(t *testing.T) {
	for name, o := range map[string]Options{
		"missing CA file":   {Config: Config{URL: "https://x", CAFile: "/nonexistent/ca.pem"}},
		"CA file not PEM":   {Config: Config{URL: "https://x", CAFile: "tls_test.go"}},
		"half a client key": {Config: Config{URL: "https://x", ClientCert: "/nonexistent/c.pem"}},
		"bad url":           {Config: Config{URL: "ftp://x"}},
	} {
		if _, err := New(testStore(t, 0), o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
