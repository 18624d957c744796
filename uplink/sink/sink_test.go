package sink

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"fieldgate/uplink/wire"
)

func gz(t *testing.T, b wire.BatchBody) []byte {
	t.Helper()
	_, body, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func batch(values ...float64) wire.BatchBody {
	b := wire.BatchBody{Gateway: "gw", FirstSeq: 1, LastSeq: uint64(len(values))}
	for i, v := range values {
		b.Readings = append(b.Readings, wire.ReadingBody{Seq: uint64(i + 1), Source: "s", Quantity: "temperature", Value: v, Unit: "Cel", Time: "2026-01-01T00:00:00Z", Clock: "synced"})
	}
	return b
}

func put(t *testing.T, h http.Handler, path string, body []byte, mod func(*http.Request)) int {
	t.Helper()
	r := httptest.NewRequest(http.MethodPut, path, bytes.NewReader(body))
	r.Header.Set("Authorization", "Bearer tok")
	r.Header.Set("Content-Encoding", "gzip")
	r.Header.Set("Idempotency-Key", "gw:1-2")
	if mod != nil {
		mod(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

func TestSinkIdempotency(t *testing.T) {
	s := New("tok")
	body := gz(t, batch(20, 21))
	if c := put(t, s, "/v1/gateways/gw/batches/1-2", body, nil); c != http.StatusOK {
		t.Fatalf("first PUT: %d", c)
	}
	if c := put(t, s, "/v1/gateways/gw/batches/1-2", body, nil); c != http.StatusOK {
		t.Fatalf("same PUT again: %d, want 200 (same effect as once)", c)
	}
	if c := put(t, s, "/v1/gateways/gw/batches/1-2", gz(t, batch(20, 99)), nil); c != http.StatusConflict {
		t.Fatalf("same key, different body: %d, want 409", c)
	}
	st := s.Stats()
	if st.Readings != 2 || st.Batches != 1 || st.Replays != 1 || st.Conflicts != 1 {
		t.Errorf("stats %+v", st)
	}
	if r := s.Readings()["gw:2"]; r.Value != 21 {
		t.Errorf("reading gw:2 = %+v: the first body must stand", r)
	}
}

func TestSinkRefusals(t *testing.T) {
	good := gz(t, batch(20, 21))
	for _, tc := range []struct {
		name string
		path string
		body []byte
		mod  func(*http.Request)
		want int
	}{
		{"no token", "/v1/gateways/gw/batches/1-2", good, func(r *http.Request) { r.Header.Del("Authorization") }, http.StatusUnauthorized},
		{"not gzip", "/v1/gateways/gw/batches/1-2", good, func(r *http.Request) { r.Header.Del("Content-Encoding") }, http.StatusUnsupportedMediaType},
		{"garbage body", "/v1/gateways/gw/batches/1-2", []byte("not gzip"), nil, http.StatusBadRequest},
		{"bounds differ from URL", "/v1/gateways/gw/batches/1-3", good, func(r *http.Request) { r.Header.Set("Idempotency-Key", "gw:1-3") }, http.StatusBadRequest},
		{"key differs from URL", "/v1/gateways/gw/batches/1-2", good, func(r *http.Request) { r.Header.Set("Idempotency-Key", "gw:1-9") }, http.StatusBadRequest},
		{"wrong method", "/v1/gateways/gw/batches/1-2", good, func(r *http.Request) { r.Method = http.MethodPost }, http.StatusMethodNotAllowed},
		{"unknown path", "/v2/whatever", good, nil, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c := put(t, New("tok"), tc.path, tc.body, tc.mod); c != tc.want {
				t.Errorf("status %d, want %d", c, tc.want)
			}
		})
	}
	s := New("tok")
	s.SetFaults(Faults{MaxReadings: 1})
	if c := put(t, s, "/v1/gateways/gw/batches/1-2", good, nil); c != http.StatusRequestEntityTooLarge {
		t.Errorf("over MaxReadings: %d, want 413", c)
	}
}

// TestSinkTellsStoresApartAndRefusesChangedReadings: the development sink
// keeps a reading's identity as (gateway, incarnation, seq), like a real
// receiver, and answers 409 to other content under an existing identity,
// storing nothing of that batch.
func TestSinkTellsStoresApartAndRefusesChangedReadings(t *testing.T) {
	sk := New("")
	put := func(b wire.BatchBody) int {
		_, gz, err := b.Encode()
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPut, wire.BatchPath(b.Gateway, b.FirstSeq, b.LastSeq), bytes.NewReader(gz))
		r.Header.Set("Content-Encoding", "gzip")
		r.Header.Set("Idempotency-Key", wire.IdempotencyKey(b.Gateway, b.Incarnation, b.FirstSeq, b.LastSeq))
		w := httptest.NewRecorder()
		sk.ServeHTTP(w, r)
		return w.Code
	}
	mk := func(inc string, first uint64, values ...float64) wire.BatchBody {
		b := wire.BatchBody{Gateway: "gw", Incarnation: inc, FirstSeq: first, LastSeq: first + uint64(len(values)) - 1}
		for i, v := range values {
			b.Readings = append(b.Readings, wire.ReadingBody{Seq: first + uint64(i), Source: "s", Quantity: "q", Value: v, Time: "2026-11-22T10:00:00Z", Clock: "synced"})
		}
		return b
	}
	for _, b := range []wire.BatchBody{mk("", 1, 1, 2), mk("00000000000000aa", 1, 5, 6, 7)} {
		if code := put(b); code != http.StatusOK {
			t.Fatalf("batch %+v: %d", b, code)
		}
	}
	if n := len(sk.Readings()); n != 5 {
		t.Errorf("%d readings, want both stores': 5", n)
	}
	if code := put(mk("00000000000000aa", 2, 9)); code != http.StatusConflict {
		t.Errorf("other content under an existing identity: %d, want 409", code)
	}
	if got := sk.Readings()[wire.ReadingID("gw", "00000000000000aa", 2)]; got.Value != 6 {
		t.Errorf("the stored reading became %+v", got)
	}
}
