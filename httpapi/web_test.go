package httpapi

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

func TestPageIsServedWithItsAssets(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: true}})
	page := e.do(req{method: "GET", path: "/"})
	if page.StatusCode != 200 || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") || !bytes.Contains(page.body, []byte(`<script src="/assets/app.js"`)) {
		t.Fatalf("GET / → %d %s:\n%.200s", page.StatusCode, page.Header.Get("Content-Type"), page.body)
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	// The live stream may connect to the gateway, not to any ws: host.
	host := strings.TrimPrefix(e.ts.URL, "http://")
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' ws://"+host+" wss://"+host+";") {
		t.Errorf("Content-Security-Policy %q: want connect-src limited to this host", csp)
	}
	if csp := pagePolicy("gw.local; script-src *"); !strings.Contains(csp, "connect-src 'self';") || strings.Contains(csp, "script-src *") {
		t.Errorf("a Host header with a directive in it: %q", csp)
	}
	for path, ctype := range map[string]string{"/assets/app.js": "text/javascript", "/assets/app.css": "text/css", "/assets/icon.svg": "image/svg+xml"} {
		r := e.do(req{method: "GET", path: path})
		if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), ctype) || r.Header.Get("ETag") == "" {
			t.Errorf("GET %s → %d %q ETag %q", path, r.StatusCode, r.Header.Get("Content-Type"), r.Header.Get("ETag"))
			continue
		}
		again := e.do(req{method: "GET", path: path, header: map[string]string{"If-None-Match": r.Header.Get("ETag")}})
		if again.StatusCode != 304 {
			t.Errorf("GET %s with its ETag → %d, want 304", path, again.StatusCode)
		}
	}
	if r := e.do(req{method: "GET", path: "/assets/nothing.js"}); r.StatusCode != 404 {
		t.Errorf("a missing asset → %d", r.StatusCode)
	}
}

// The page must load with nothing from outside the gateway: no URL with a
// scheme or a protocol-relative one in any of its files.
func TestPageFetchesNothingFromOutside(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := fs.WalkDir(web, "web", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web, path)
		for _, m := range external.FindAll(b, -1) {
			if !bytes.Contains(m, []byte("www.w3.org")) { // the SVG namespace, not a fetch
				t.Errorf("%s refers to %s", path, m)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAnswersAreGzippedForBrowsers(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: true}})
	e.append("esp-1", "temperature", 500)
	plain := e.do(req{method: "GET", path: "/api/v1/sources/esp-1/series?quantity=temperature", header: map[string]string{"Accept-Encoding": "identity"}})
	gz := e.do(req{method: "GET", path: "/api/v1/sources/esp-1/series?quantity=temperature", header: map[string]string{"Accept-Encoding": "gzip"}})
	if gz.Header.Get("Content-Encoding") != "gzip" || len(gz.body) >= len(plain.body)/2 {
		t.Fatalf("gzip'd series: encoding %q, %d bytes against %d plain", gz.Header.Get("Content-Encoding"), len(gz.body), len(plain.body))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz.body))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(body, plain.body) {
		t.Fatalf("gunzipped body differs from the plain one (%v)", err)
	}
	// The tag of a gzip'd answer is weak, and still matches.
	tag := gz.Header.Get("ETag")
	if !strings.HasPrefix(tag, `W/"`) || strings.TrimPrefix(tag, "W/") != plain.Header.Get("ETag") {
		t.Errorf("ETag gzip'd %q, plain %q", tag, plain.Header.Get("ETag"))
	}
	if r := e.do(req{method: "GET", path: "/api/v1/sources/esp-1/series?quantity=temperature", header: map[string]string{"Accept-Encoding": "gzip", "If-None-Match": tag}}); r.StatusCode != 304 {
		t.Errorf("If-None-Match with the weak tag → %d, want 304", r.StatusCode)
	}
	// Streams are not buffered by the compressor.
	if r := e.do(req{method: "GET", path: "/api/v1/readings/export", role: RoleTechnician, header: map[string]string{"Accept-Encoding": "gzip", "Accept": "text/csv"}}); r.Header.Get("Content-Encoding") != "" {
		t.Errorf("export stream encoded %q", r.Header.Get("Content-Encoding"))
	}
}
