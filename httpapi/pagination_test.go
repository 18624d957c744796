package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestPaginationLinks(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: true}})
	e.append("esp-1", "temperature", 25)
	base := "/api/v1/sources/esp-1/readings?quantity=temperature&from=-1h&per_page=10"
	tests := []struct {
		page       string
		rels       []string // rels present, in order
		first, cnt int      // seq of the first reading, readings on the page
	}{
		{"1", []string{"first", "next", "last"}, 1, 10},
		{"2", []string{"first", "prev", "next", "last"}, 11, 10},
		{"3", []string{"first", "prev", "last"}, 21, 5},
	}
	for _, tt := range tests {
		t.Run("page "+tt.page, func(t *testing.T) {
			r := e.do(req{method: "GET", path: base + "&page=" + tt.page})
			var body struct {
				Readings []readingBody
				Pages    int
			}
			r.json(t, &body)
			if len(body.Readings) != tt.cnt || body.Readings[0].Seq != uint64(tt.first) || body.Pages != 3 {
				t.Fatalf("page %s: %d readings from seq %d of %d pages", tt.page, len(body.Readings), body.Readings[0].Seq, body.Pages)
			}
			links := parseLinks(t, r.Header.Get("Link"))
			var rels []string
			for _, l := range links {
				rels = append(rels, l.rel)
				q := l.url.Query()
				// The client's other parameters survive.
				if q.Get("quantity") != "temperature" || q.Get("from") != "-1h" || q.Get("per_page") != "10" {
					t.Errorf("%s link %s dropped a parameter", l.rel, l.url)
				}
				if l.url.Path != "/api/v1/sources/esp-1/readings" {
					t.Errorf("%s link path %s", l.rel, l.url.Path)
				}
			}
			if strings.Join(rels, ",") != strings.Join(tt.rels, ",") {
				t.Errorf("rels %v, want %v", rels, tt.rels)
			}
			if r.Header.Get("X-Total-Count") != "25" {
				t.Errorf("X-Total-Count %q", r.Header.Get("X-Total-Count"))
			}
		})
	}
	// Following next from page 1 walks every reading once.
	seen := 0
	next := base
	for next != "" {
		r := e.do(req{method: "GET", path: next})
		var body struct{ Readings []readingBody }
		r.json(t, &body)
		seen += len(body.Readings)
		next = ""
		for _, l := range parseLinks(t, r.Header.Get("Link")) {
			if l.rel == "next" {
				next = l.url.String()
			}
		}
	}
	if seen != 25 {
		t.Errorf("following next saw %d readings, want 25", seen)
	}
	for _, tt := range []struct {
		query  string
		status int
		code   int
	}{
		{"&per_page=10&page=0", 400, codeInvalidPage},
		{"&per_page=10&page=abc", 400, codeInvalidPage},
		{"&per_page=10&page=4", 404, codePastEnd},
		{"&per_page=1001", 400, 400},
	} {
		r := e.do(req{method: "GET", path: "/api/v1/sources/esp-1/readings?quantity=temperature" + tt.query})
		if r.StatusCode != tt.status || r.errorCode(t) != tt.code {
			t.Errorf("%s → %d code %d, want %d code %d", tt.query, r.StatusCode, r.errorCode(t), tt.status, tt.code)
		}
	}
	// An empty range is one empty page, not a 404.
	r := e.do(req{method: "GET", path: "/api/v1/sources/esp-1/readings?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z"})
	if r.StatusCode != 200 || !strings.Contains(string(r.body), `"readings":[]`) {
		t.Errorf("empty range → %d %s", r.StatusCode, r.body)
	}
}

type link struct {
	url *url.URL
	rel string
}

var linkRE = regexp.MustCompile(`<([^>]*)>; rel="(\w+)"`)

func parseLinks(t *testing.T, header string) []link {
	t.Helper()
	var out []link
	for _, m := range linkRE.FindAllStringSubmatch(header, -1) {
		u, err := url.Parse(m[1])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, link{u, m[2]})
	}
	if len(out) == 0 {
		t.Fatalf("no links in %q", header)
	}
	return out
}

// FuzzReadingsQuery throws arbitrary query strings at the readings and
// series handlers: the answer is a page, a 304 or a 4xx error body, never
// a 5xx or a panic.
func FuzzReadingsQuery(f *testing.F) {
	for _, s := range []string{"page=2&per_page=10", "from=-24h&to=2026-11-20T00:00:00Z", "page=-1", "step=1h&from=-1h",
		"quantity=%ff&from=\x00", "per_page=99999999999999999999", "from=-9999999999h", "step=-1s", "to=0001-01-01T00:00:00Z"} {
		f.Add(s)
	}
	e := newEnv(f, Options{Config: Config{OpenReads: true}})
	e.append("esp-1", "temperature", 30)
	f.Fuzz(func(t *testing.T, query string) {
		for _, path := range []string{"/api/v1/sources/esp-1/readings?", "/api/v1/sources/esp-1/series?", "/api/v1/readings/export?"} {
			r := httptest.NewRequest("GET", "/", nil)
			r.URL.Path, r.URL.RawQuery = strings.TrimSuffix(path, "?"), query
			r.Header.Set("Authorization", "Bearer "+e.tokens[RoleTechnician])
			w := httptest.NewRecorder()
			e.srv.ServeHTTP(w, r)
			if w.Code >= 500 {
				t.Fatalf("%s%s → %d: %s", path, query, w.Code, w.Body)
			}
			if w.Code >= 400 && !strings.HasPrefix(w.Body.String(), `{"errors":[`) {
				t.Fatalf("%s%s → %d without an error body: %s", path, query, w.Code, w.Body)
			}
			if w.Code != http.StatusOK && w.Code < 400 {
				t.Fatalf("%s%s → %d", path, query, w.Code)
			}
		}
	})
}
