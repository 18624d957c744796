package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fieldgate/httpapi"
)

// TestSelfSignedTLS generates the certificate once, keeps it across
// restarts, and serves with it.
func TestSelfSignedTLS(t *testing.T) {
	dir := t.TempDir()
	cfg := &Config{DataDir: dir, API: httpapi.Config{TLSSelfSigned: true}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tc, err := apiTLS(cfg, log)
	if err != nil || tc == nil {
		t.Fatalf("apiTLS: %v", err)
	}
	first, err := os.ReadFile(filepath.Join(dir, "api-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "api-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	if _, err := apiTLS(cfg, log); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "api-cert.pem")); string(again) != string(first) {
		t.Error("the certificate was generated again on restart")
	}
	leaf, err := x509.ParseCertificate(tc.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	if leaf.NotAfter.Before(time.Now().AddDate(9, 0, 0)) {
		t.Errorf("certificate expires %v", leaf.NotAfter)
	}
	// A client that trusts the file talks HTTPS to a server using it.
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := client.Get("https://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
}
