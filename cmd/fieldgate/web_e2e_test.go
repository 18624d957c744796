package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	paho3 "github.com/eclipse/paho.mqtt.golang"

	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/cmd/fieldgate/testenv"
	"fieldgate/store"
)

// browser starts headless Chromium for the test and collects every console
// error, uncaught exception and browser log error the page causes.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := testenv.Tool(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1366, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// chromedp reports DevTools events newer than it knows; those are noise.
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "unhandled") {
			t.Logf("chromedp: %s", msg)
		}
	}))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeWarning {
				for _, a := range e.Args {
					msg += string(a.Value) + a.Description + " "
				}
			}
		case *runtime.EventExceptionThrown:
			msg = e.ExceptionDetails.Error()
		case *log.EventEntryAdded:
			if e.Entry.Level == log.LevelError || e.Entry.Level == log.LevelWarning {
				msg = e.Entry.Text + " " + e.Entry.URL
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.errors = append(b.errors, msg)
			b.mu.Unlock()
		}
	})
	if err := chromedp.Run(ctx, log.Enable(), runtime.Enable()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

// run runs actions with a deadline, failing the test on error.
func (b *browser) run(t *testing.T, what string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// fillDay stores a day of 5-minute readings for each source, as a gateway
// that has run for a while holds, so the charts have a day to show; the
// source named gap has three hours without readings in the middle.
func fillDay(t *testing.T, dir, gap string, sources ...string) {
	t.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "fieldgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Minute)
	var rs []store.Reading
	for si, src := range sources {
		for i := 288; i > 0; i-- {
			if src == gap && i >= 150 && i < 186 {
				continue
			}
			at := now.Add(-time.Duration(i) * 5 * time.Minute)
			phase := 2 * math.Pi * float64(i) / 288
			rs = append(rs,
				store.Reading{Source: src, Quantity: "temperature", Unit: "Cel", Time: at, Value: 19 + float64(si) + 3*math.Sin(phase)},
				store.Reading{Source: src, Quantity: "humidity", Unit: "%RH", Time: at, Value: 50 + 10*math.Cos(phase)})
		}
	}
	if err := st.Append(context.Background(), rs...); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// artefacts is where screenshots go: $FIELDGATE_TEST_ARTIFACTS, else a folder
// in the system's temp directory that outlives the test.
func artefacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FIELDGATE_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "fieldgate-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestWebPage drives the technician's page in headless Chromium against the
// real daemon: every source shows a value and a chart, a reading published
// over MQTT appears without reload, a node that disconnects turns offline,
// and a technician logs in, adds a device (its password shown once, with
// ESPHome and Tasmota snippets) and removes it. Screenshots at phone and
// laptop widths are saved as artefacts; no console error may occur.
func TestWebPage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon and a browser")
	}
	b := newBrowser(t)
	bin := daemontest.Build(t)
	dir := t.TempDir()
	cfg := daemontest.WriteConfig(t, fmt.Sprintf(`data_dir: %s
gateway:
  name: Pump house 3
sensors:
  - name: cellar
    driver: sim
    interval: 2s
  - name: roof
    driver: sim
    interval: 2s
mqtt:
  listen: 127.0.0.1:0
api:
  listen: 127.0.0.1:0
  rate_limit: 1000 # ten cold loads in a row; the production limit is tested in httpapi
  rate_burst: 1000
clock:
  trust: system
uplink: # unreachable, with a long path: its error must fit a phone's width
  url: http://127.0.0.1:9/ingest/a-path-prefix-typed-in-one-long-word-without-a-single-break
  token: x
`, dir))
	pw := addDevice(t, cfg, "esp32-porch", "-name", "Porch")
	benchPW := addDevice(t, cfg, "bench", "-name", "Tried by hand")
	atticPW := addDevice(t, cfg, "attic", "-name", "Attic (ESPHome)")
	garagePW := addDevice(t, cfg, "garage", "-name", "Garage (Tasmota)")
	fillDay(t, dir, "sim-roof", "sim-cellar", "sim-roof", "esp32-porch")
	d := daemontest.Start(t, bin, cfg)
	admin, err := os.ReadFile(filepath.Join(dir, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}

	node := paho3.NewClient(paho3.NewClientOptions().AddBroker("tcp://" + d.MQTT).
		SetClientID("porch").SetUsername("esp32-porch").SetPassword(pw).SetAutoReconnect(false))
	if tok := node.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	publish := func(quantity, value string) {
		t.Helper()
		if tok := node.Publish("fieldgate/esp32-porch/"+quantity, 1, false, value); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	publish("temperature", "21.4")
	publish("humidity", "55")
	publish("voltage", "3.30")
	// A multi-quantity ESPHome node and a Tasmota node with two sensors,
	// each publishing once and going back to sleep.
	for _, n := range []struct{ id, pw, topic, payload string }{
		{"attic", atticPW, "attic/sensor/attic_temperature/state", "19.5"},
		{"attic", atticPW, "attic/sensor/co2/state", "640"},
		{"garage", garagePW, "tele/garage/SENSOR", `{"Time":"2026-11-29T12:00:00","AM2301":{"Temperature":12.3,"Humidity":70.1},"DS18B20":{"Temperature":11.8},"TempUnit":"C"}`},
	} {
		c := paho3.NewClient(paho3.NewClientOptions().AddBroker("tcp://" + d.MQTT).SetClientID("once").SetUsername(n.id).SetPassword(n.pw).SetAutoReconnect(false))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("%s connect: %v", n.id, tok.Error())
		}
		if tok := c.Publish(n.topic, 1, false, n.payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("%s publish: %v", n.id, tok.Error())
		}
		c.Disconnect(0)
	}

	// A node tried by hand: three publishes a second apart, then nothing.
	bench := paho3.NewClient(paho3.NewClientOptions().AddBroker("tcp://" + d.MQTT).SetClientID("bench").SetUsername("bench").SetPassword(benchPW).SetAutoReconnect(false))
	if tok := bench.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("bench connect: %v", tok.Error())
	}
	for i := range 3 {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // the scenario: a second apart (shorter gaps are one report)
		}
		if tok := bench.Publish("fieldgate/bench/temperature", 1, false, "20."+fmt.Sprint(i)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("bench publish: %v", tok.Error())
		}
	}
	bench.Disconnect(0)

	porch := `article[data-source="esp32-porch"]`
	b.run(t, "load the page", chromedp.Navigate(d.API+"/"),
		chromedp.WaitVisible(`#health.ok, #health.degraded`, chromedp.ByQuery),
		chromedp.WaitVisible(porch+` .value`, chromedp.ByQuery))
	var cards, withValue, charts, roofRuns int
	var title, benchState string
	dayCharts := `[...document.querySelectorAll("svg.chart")].filter(c => [...c.querySelectorAll("[data-points]")].reduce((n, p) => n + +p.dataset.points, 0) > 100).length`
	b.run(t, "count the cards", // the charts load after the cards, as each comes into view: wait for the three day-long pairs
		chromedp.Poll(dayCharts+` >= 6`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate(`document.querySelectorAll("article.card").length`, &cards),
		chromedp.Evaluate(`[...document.querySelectorAll("article.card")].filter(c => c.querySelector(".value")).length`, &withValue),
		chromedp.Evaluate(dayCharts, &charts),
		chromedp.Evaluate(`document.querySelector('article[data-source="sim-roof"] svg.chart').querySelectorAll("polyline").length`, &roofRuns),
		chromedp.Evaluate(`document.querySelector('article[data-source="bench"] .badge').textContent + " " + document.querySelector('article[data-source="bench"] .reason').textContent`, &benchState),
		chromedp.Text(`#gw-name`, &title, chromedp.ByQuery))
	if cards != 6 || withValue != 6 {
		t.Errorf("%d cards, %d with a value; want the 2 sensors and the 4 nodes, each with a value", cards, withValue)
	}
	if roofRuns != 2 {
		t.Errorf("the roof's chart, with three hours missing, has %d lines: want the gap drawn as a gap (2 lines)", roofRuns)
	}
	if !strings.HasPrefix(strings.ToLower(benchState), "ok ") || !strings.Contains(benchState, "it reported 3 times so far, about every ") ||
		!strings.HasSuffix(benchState, "; learning its interval") { // "every second", or more on a busy machine
		t.Errorf("the node tried by hand reads %q", benchState)
	}
	var labels []string
	b.run(t, "every value labelled", chromedp.Evaluate(`[...document.querySelectorAll("article.card .value")].map(v => v.textContent)`, &labels))
	for _, want := range []string{"attic temperature19.5 °C", "co2640 ppm", "am2301 temperature12.3 °C", "am2301 humidity70 %RH", "ds18b20 temperature11.8 °C"} {
		if !slices.Contains(labels, want) {
			t.Errorf("no value reads %q: %q", want, labels)
		}
	}
	if charts != 6 {
		t.Errorf("%d charts with a day of points, want 6 (temperature and humidity of 3 sources)", charts)
	}
	if title != "Pump house 3" {
		t.Errorf("gateway name %q", title)
	}

	// Every value is labelled with its quantity and unit, and every
	// numeric quantity gets a chart (the porch's voltage has a few points).
	var voltage string
	b.run(t, "labels and a chart per quantity",
		chromedp.Text(porch+` [data-quantity="voltage"]`, &voltage, chromedp.ByQuery),
		chromedp.Poll(`document.querySelectorAll('`+porch+` figure.chart-box').length === 3`, nil, chromedp.WithPollingTimeout(10*time.Second)))
	if !strings.Contains(voltage, "voltage") || !strings.Contains(voltage, "3.30") || !strings.HasSuffix(strings.TrimSpace(voltage), "V") {
		t.Errorf("the voltage reads %q: want its name, value and unit", voltage)
	}

	publish("temperature", "23.7")
	b.run(t, "the published reading appears without reload",
		chromedp.Poll(`document.querySelector('`+porch+` [data-quantity="temperature"]').textContent.includes("23.7")`, nil, chromedp.WithPollingTimeout(10*time.Second)))

	dir2 := artefacts(t)
	for _, v := range []struct {
		name string
		w, h int64
	}{{"phone", 390, 844}, {"laptop", 1366, 900}} {
		var png []byte
		var overflow int
		b.run(t, "screenshot "+v.name, chromedp.EmulateViewport(v.w, v.h),
			chromedp.Poll(`document.querySelector("#uplink").textContent.includes("a-path-prefix") && window.innerWidth === `+fmt.Sprint(v.w), nil, chromedp.WithPollingTimeout(15*time.Second)),
			chromedp.Evaluate(`document.documentElement.scrollWidth - window.innerWidth`, &overflow),
			chromedp.FullScreenshot(&png, 100))
		if overflow > 0 {
			t.Errorf("at %s width (%d px) the page spills %d px sideways", v.name, v.w, overflow)
		}
		path := filepath.Join(dir2, "dashboard-"+v.name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}

	// A node that disconnects after publishing (a deep-sleep ESP32,
	// mosquitto_pub) was shown red OFFLINE and the gateway "Needs
	// attention". Its readings arrive as expected: it stays ok.
	node.Disconnect(0)
	api := &daemontest.API{TB: t, Base: d.API}
	daemontest.WaitUntil(t, 10*time.Second, func() bool {
		_, dev := api.Do("GET", "/api/v1/devices/esp32-porch", nil)
		return dev["online"] == false
	})
	var badge, reasons string
	b.run(t, "the sleeping node is no alarm", chromedp.Reload(), // cards are redrawn live: read them in one evaluation each
		chromedp.Poll(`document.querySelector('`+porch+` .value') !== null && document.querySelector('#health-state').textContent !== "…"`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate(`document.querySelector('`+porch+` .badge').textContent`, &badge),
		chromedp.Evaluate(`document.querySelector('#health-reasons').textContent`, &reasons))
	if !strings.EqualFold(badge, "ok") || strings.Contains(reasons, "esp32-porch") {
		t.Errorf("after its session ended the node shows %q; health reasons %q", badge, reasons)
	}

	var password, esphome, tasmota string
	b.run(t, "log in and add a device",
		chromedp.Click(`#login-btn`, chromedp.ByQuery),
		chromedp.SendKeys(`#login-form [name=username]`, "admin", chromedp.ByQuery),
		chromedp.SendKeys(`#login-form [name=password]`, strings.TrimSpace(string(admin)), chromedp.ByQuery),
		chromedp.Click(`#login-form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#add-device`, chromedp.ByQuery),
		chromedp.SendKeys(`#add-device [name=id]`, "esp32-shed", chromedp.ByQuery),
		chromedp.SendKeys(`#add-device [name=name]`, "Shed", chromedp.ByQuery),
		chromedp.Click(`#add-device button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#new-device`, chromedp.ByQuery),
		chromedp.Text(`#nd-password`, &password, chromedp.ByQuery),
		chromedp.Text(`#nd-esphome`, &esphome, chromedp.ByQuery),
		chromedp.Text(`#nd-tasmota`, &tasmota, chromedp.ByQuery),
		chromedp.WaitVisible(`tr[data-device="esp32-shed"]`, chromedp.ByQuery))
	if len(password) != 26 || !strings.Contains(esphome, `password: "`+password+`"`) || !strings.Contains(tasmota, "MqttPassword "+password) {
		t.Errorf("new device: password %q\nESPHome:\n%s\nTasmota: %s", password, esphome, tasmota)
	}
	var waiting string
	b.run(t, "a device just added is waiting, not an alarm",
		chromedp.Evaluate(`document.querySelector('tr[data-device="esp32-shed"] .badge').textContent`, &waiting))
	if !strings.EqualFold(waiting, "waiting for first reading") {
		t.Errorf("a device just added shows %q", waiting)
	}
	var shown string
	b.run(t, "the password is gone once copied",
		chromedp.Click(`#nd-done`, chromedp.ByQuery),
		chromedp.WaitNotVisible(`#new-device`, chromedp.ByQuery),
		chromedp.Evaluate(`document.body.innerText`, &shown))
	if strings.Contains(shown, password) {
		t.Error("the device password is still on the page")
	}
	var csv string
	b.run(t, "rename the device",
		chromedp.Click(`tr[data-device="esp32-shed"] button.secondary`, chromedp.ByQuery),
		chromedp.SetValue(`tr[data-device="esp32-shed"] .name input`, "Garden shed", chromedp.ByQuery),
		chromedp.Click(`tr[data-device="esp32-shed"] .name button`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('tr[data-device="esp32-shed"] .name').textContent === "Garden shed"`, nil, chromedp.WithPollingTimeout(10*time.Second)))
	// The export button downloads what the page's own API client fetches.
	b.run(t, "export a CSV",
		chromedp.WaitVisible(`#export-form`, chromedp.ByQuery),
		chromedp.Evaluate(`api("GET", "/readings/export?format=csv&source=esp32-porch&from=-1h", undefined, "text/csv").then(r => r.text())`, &csv,
			func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if !strings.HasPrefix(csv, "id,seq,source,quantity,value,unit,time,clock\n") || !strings.Contains(csv, ",esp32-porch,temperature,23.7,Cel,") {
		t.Errorf("export from the page:\n%.400s", csv)
	}
	b.run(t, "remove the device",
		chromedp.Click(`tr[data-device="esp32-shed"] button.danger`, chromedp.ByQuery),
		chromedp.Click(`tr[data-device="esp32-shed"] button.danger`, chromedp.ByQuery),
		chromedp.WaitNotPresent(`tr[data-device="esp32-shed"]`, chromedp.ByQuery))

	pageWeight(t, b, d.API+"/")
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

var webSummary = flag.String("web.summary", "", "file to write TestWebPage's page weight and paint figures to, as JSON (fieldgate-bench report reads it)")

// pageWeight loads the page cold (browser cache off) ten times and logs the
// bytes transferred until it is filled (document, assets and the API calls
// it makes, from the Resource Timing API), the same decoded, and the median
// first contentful paint. The weight has a budget, since a Pi Zero serves
// it over Wi-Fi; the paint time is a figure for docs/BENCHMARKS.md, not an
// assertion.
func pageWeight(t *testing.T, b *browser, url string) {
	t.Helper()
	const loads = 10
	var fcps []float64
	var m struct {
		FCP      float64 `json:"fcp"`
		Bytes    int     `json:"bytes"`
		Decoded  int     `json:"decoded"`
		Requests int     `json:"requests"`
	}
	for range loads {
		b.run(t, "cold load", network.Enable(), network.SetCacheDisabled(true),
			chromedp.Navigate(url),
			chromedp.Poll(`document.querySelectorAll("polyline[data-points]").length >= 6`, nil, chromedp.WithPollingTimeout(10*time.Second)),
			chromedp.Evaluate(`(() => {
				const nav = performance.getEntriesByType("navigation")[0];
				const res = performance.getEntriesByType("resource");
				const fcp = performance.getEntriesByName("first-contentful-paint")[0];
				return {fcp: fcp ? fcp.startTime : -1, requests: res.length + 1,
					bytes: res.reduce((n, r) => n + r.transferSize, nav.transferSize),
					decoded: res.reduce((n, r) => n + r.decodedBodySize, nav.decodedBodySize)};
			})()`, &m))
		fcps = append(fcps, m.FCP)
	}
	slices.Sort(fcps)
	t.Logf("first load: %d bytes in %d requests (%d decoded); first contentful paint median %.0f ms (min %.0f, max %.0f) over %d cold loads",
		m.Bytes, m.Requests, m.Decoded, fcps[loads/2], fcps[0], fcps[loads-1], loads)
	if m.Bytes > 150<<10 {
		t.Errorf("the page weighs %d bytes on first load, over its 150 KiB budget", m.Bytes)
	}
	if *webSummary != "" {
		sum, err := json.Marshal(map[string]float64{"bytes": float64(m.Bytes), "decoded-bytes": float64(m.Decoded), "requests": float64(m.Requests),
			"fcp-median-ms": fcps[loads/2], "fcp-min-ms": fcps[0], "fcp-max-ms": fcps[loads-1], "loads": loads})
		if err == nil {
			err = os.WriteFile(*webSummary, sum, 0o644)
		}
		if err != nil {
			t.Error(err)
		}
	}
}
