package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"fieldgate/store"
)

// TestExportJob runs an export to completion and checks the file holds
// exactly the readings of the range.
func TestExportJob(t *testing.T) {
	e := newEnv(t, Options{})
	e.append("esp-1", "temperature", 100) // t0-100m … t0-1m
	e.append("esp-2", "humidity", 50)
	from, to := t0.Add(-60*time.Minute), t0.Add(-10*time.Minute)
	r := e.do(req{method: "POST", path: "/api/v1/exports", role: RoleTechnician,
		body: map[string]any{"format": "csv", "from": from, "to": to, "source": "esp-1"}})
	if r.StatusCode != 202 {
		t.Fatalf("POST /exports → %d: %s", r.StatusCode, r.body)
	}
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, "/api/v1/exports/") {
		t.Fatalf("Location %q", loc)
	}
	var job exportJob
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.do(req{method: "GET", path: loc, role: RoleTechnician}).json(t, &job)
		if job.State != "running" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if job.State != "done" || job.Total != 50 || job.Readings != 50 || job.Progress != 1 || job.File != loc+"/file" {
		t.Fatalf("job = %+v", job)
	}
	f := e.do(req{method: "GET", path: job.File, role: RoleTechnician})
	if f.StatusCode != 200 || f.Header.Get("Content-Type") != "application/gzip" ||
		!strings.Contains(f.Header.Get("Content-Disposition"), "fieldgate-esp-1-20261120T110000Z-20261120T115000Z.csv.gz") {
		t.Fatalf("file → %d %v", f.StatusCode, f.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(f.body))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(zr).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 51 || strings.Join(rows[0], ",") != "id,seq,source,quantity,value,unit,time,clock" {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	first, last := rows[1], rows[50]
	if first[2] != "esp-1" || first[4] != "40" || first[6] != "2026-11-20T11:00:00Z" || last[6] != "2026-11-20T11:49:00Z" || first[7] != "synced" {
		t.Errorf("first row %v, last %v", first, last)
	}
	if !strings.HasSuffix(first[0], ":41") || first[1] != "41" {
		t.Errorf("first row id %q seq %q, want seq 41", first[0], first[1])
	}
	// Finished exports expire with their file.
	e.now = e.now.Add(25 * time.Hour)
	if r := e.do(req{method: "GET", path: loc, role: RoleTechnician}); r.StatusCode != 404 {
		t.Errorf("expired export → %d", r.StatusCode)
	}
}

func TestExportStreamNDJSON(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: true}})
	e.append("esp-1", "temperature", 10)
	e.append("esp-2", "humidity", 10)
	r := e.do(req{method: "GET", path: "/api/v1/readings/export?format=ndjson&from=-5m&quantity=humidity", role: RoleTechnician})
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("→ %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	n := 0
	for {
		var rb readingBody
		if err := dec.Decode(&rb); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if rb.Source != "esp-2" || rb.Quantity != "humidity" {
			t.Errorf("line %+v", rb)
		}
		n++
	}
	if n != 5 {
		t.Errorf("%d lines, want the 5 of the last 5 minutes", n)
	}
	// Exports need a technician even with open reads.
	if r := e.do(req{method: "GET", path: "/api/v1/readings/export", role: RoleViewer}); r.StatusCode != 403 {
		t.Errorf("viewer export → %d", r.StatusCode)
	}
}

// TestCSVExportCannotCarryFormulas: a device could name a quantity
// =hyperlink("http:evil") and the CSV export wrote it as it was, for a
// spreadsheet to run. Such cells get a leading apostrophe; negative values
// stay numbers.
func TestCSVExportCannotCarryFormulas(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: true}})
	rs := []store.Reading{
		{Source: "esp-1", Quantity: `=hyperlink("http:evil")`, Value: -3.5, Unit: "@x", Time: t0.Add(-time.Minute)},
		{Source: "esp-1", Quantity: "+cmd", Value: 1, Unit: "-u", Time: t0.Add(-time.Minute)},
	}
	if err := e.st.Append(context.Background(), rs...); err != nil {
		t.Fatal(err)
	}
	r := e.do(req{method: "GET", path: "/api/v1/readings/export?from=-5m&source=esp-1", role: RoleTechnician})
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("%d rows, %v: %s", len(rows), err, r.body)
	}
	got := map[string][2]string{}
	for _, row := range rows[1:] {
		got[row[3]] = [2]string{row[4], row[5]}
	}
	want := map[string][2]string{`'=hyperlink("http:evil")`: {"-3.5", "'@x"}, "'+cmd": {"1", "'-u"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("quantity → value, unit: %v, want %v", got, want)
	}
}
