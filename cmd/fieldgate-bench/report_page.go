package main

import (
	_ "embed"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/template"
)

//go:embed report.md.tmpl
var pageTemplate string

// pageData is what the page template sees.
type pageData struct {
	Machine  machine
	Sizes    sizes
	Baseline string // the commit the API's figures are compared with
	Quick    bool
	Command  string
	Took     string
	Figures  map[string]figures
}

// renderPage writes docs/BENCHMARKS.md. A figure the template asks for and
// no step measured is an error, never a blank.
func renderPage(w io.Writer, d pageData) error {
	values := func(step, name, unit string) ([]float64, error) {
		vs := d.Figures[step][name][unit]
		if len(vs) == 0 {
			return nil, fmt.Errorf("the page needs %s %q %s, which no step measured", step, name, unit)
		}
		return slices.Sorted(slices.Values(vs)), nil
	}
	pick := func(f func([]float64) float64) func(step, name, unit string) (float64, error) {
		return func(step, name, unit string) (float64, error) {
			vs, err := values(step, name, unit)
			if err != nil {
				return 0, err
			}
			return f(vs), nil
		}
	}
	funcs := template.FuncMap{
		"fig":    pick(median),
		"figmin": pick(func(vs []float64) float64 { return vs[0] }),
		"figmax": pick(func(vs []float64) float64 { return vs[len(vs)-1] }),
		"n0":     func(v float64) string { return thousands(v, 0) },
		"n1":     func(v float64) string { return thousands(v, 1) },
		"n2":     func(v float64) string { return thousands(v, 2) },
		"div": func(a, b float64) float64 {
			if b == 0 {
				return math.NaN()
			}
			return a / b
		},
		"mul":    func(a, b float64) float64 { return a * b },
		"add":    func(a, b float64) float64 { return a + b },
		"int":    func(n int) float64 { return float64(n) },
		"list":   func(s ...string) []string { return s },
		"stages": stageNames,
	}
	t, err := template.New("BENCHMARKS.md").Funcs(funcs).Option("missingkey=error").Parse(pageTemplate)
	if err != nil {
		return err
	}
	return t.Execute(w, d)
}

// median is the middle value of sorted vs (the mean of the middle two for
// an even count: two rounds average).
func median(vs []float64) float64 {
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

// thousands formats v with decimals and a comma between thousands.
func thousands(v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	s := strconv.FormatFloat(math.Abs(v), 'f', decimals, 64)
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if v < 0 && s != strconv.FormatFloat(0, 'f', decimals, 64) {
		b.WriteByte('-')
	}
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return b.String()
}
