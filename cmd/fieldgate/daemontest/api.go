package daemontest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// API calls a running daemon's API as a technician's script would.
type API struct {
	TB    testing.TB
	Base  string // the URL paths are relative to
	Token string // a bearer token, if set
}

// Do sends body (as JSON, if not nil) to Base+path and returns the status
// and the decoded JSON answer (nil if it is not JSON); any other failure
// fails the test.
func (c *API) Do(method, path string, body any) (int, map[string]any) {
	c.TB.Helper()
	var rd io.Reader
	if body != nil {
		js, err := json.Marshal(body)
		if err != nil {
			c.TB.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		c.TB.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.TB.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		c.TB.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			c.TB.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return res.StatusCode, out
}

// Get returns the body of a GET of url; a failure fails the test.
func Get(tb testing.TB, url string) string {
	tb.Helper()
	res, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// Metric reads one unlabelled value from the /metrics of the daemon whose
// API is at base.
func Metric(tb testing.TB, base, name string) int64 {
	tb.Helper()
	for _, l := range strings.Split(Get(tb, base+"/metrics"), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int64(f)
		}
	}
	tb.Fatalf("no %s in /metrics", name)
	return 0
}
