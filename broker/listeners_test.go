package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
)

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for f, b := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLSAndWebSocketListeners publishes through MQTT over TLS and over
// WebSocket: both are guarded like the plain listener.
func TestTLSAndWebSocketListeners(t *testing.T) {
	st, pw := testStore(t)
	certFile, keyFile, pool := selfSigned(t)
	b, err := New(st, Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: Config{Listen: "", TLSListen: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile, WSListen: "127.0.0.1:0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i, url := range []string{"tls://" + b.Addr("tls"), "ws://" + b.Addr("ws")} {
		o := paho3.NewClientOptions().AddBroker(url).SetClientID("a" + url[:2]).SetUsername("esp32-a").SetPassword(pw["esp32-a"]).
			SetTLSConfig(&tls.Config{RootCAs: pool}).SetAutoReconnect(false)
		c := paho3.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: connect: %v", url, tok.Error())
		}
		tok := c.Publish("fieldgate/esp32-a/temperature", 1, false, "2"+string(rune('0'+i)))
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: publish: %v", url, tok.Error())
		}
		c.Disconnect(100)
	}
	if rs := readings(t, st, "esp32-a", "temperature"); len(rs) != 2 {
		t.Errorf("%d readings through TLS and WebSocket, want 2", len(rs))
	}
	if s := b.Stats(); s.Messages != 2 {
		t.Errorf("broker counted %d messages, want 2", s.Messages)
	}
}

// TestWebSocketListenerRefusesPagesAndStalledHandshakes: a web page a
// technician opens must not talk MQTT to the gateway (browsers send an
// Origin; nodes send none), and sockets that never finish their HTTP
// handshake count against their address's pre-CONNECT share from the
// first byte, and are closed after the header timeout.
func TestWebSocketListenerRefusesPagesAndStalledHandshakes(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{Config: Config{WSListen: "127.0.0.1:0", Limits: Limits{MaxPending: 16, MaxPendingPerAddress: 2}}})
	url := "ws://" + b.Addr("ws")
	_, res, err := websocket.DefaultDialer.Dial(url, http.Header{"Origin": {"http://evil.example"}})
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("a browser page's WebSocket: %v (%v), want 403", err, res)
	}
	var stalled []net.Conn
	for range 3 { // the share is 2: the third is closed at once
		c, err := net.Dial("tcp", b.Addr("ws"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		stalled = append(stalled, c)
	}
	waitFor(t, func() bool { return b.Stats().Guard.Refused >= 2 })
	_ = stalled[2].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := stalled[2].Read(make([]byte, 1)); err == nil {
		t.Error("a socket past the address's share was served")
	}
	_ = stalled[0].SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.Copy(io.Discard, stalled[0]); err != nil {
		t.Errorf("a stalled handshake: %v, want it closed by the server", err)
	}
	// A node (no Origin) is served once the stalled sockets are gone.
	for _, c := range stalled {
		_ = c.Close()
	}
	waitFor(t, func() bool { return b.Stats().Guard.Pending == 0 })
	o := paho3.NewClientOptions().AddBroker(url).SetClientID("node").SetUsername("esp32-a").SetPassword(pw["esp32-a"]).SetAutoReconnect(false)
	c := paho3.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("a node over WebSocket: %v", tok.Error())
	}
	c.Disconnect(100)
}
