package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// sample is a configuration with every shape the loader handles.
type sample struct {
	Name  string  `yaml:"name"`
	Inner inner   `yaml:"inner"`
	Items []item  `yaml:"items"`
	Ratio float64 `yaml:"ratio"`
}

type inner struct {
	Limits  `yaml:",inline"`
	Wait    time.Duration `yaml:"wait"`
	Token   string        `yaml:"token" config:"secret"`
	CAFile  string        `yaml:"ca_file" config:"file"`
	Private int           `yaml:"-"`
}

// Limits are inlined: their keys sit in inner: itself.
type Limits struct {
	MaxSize int64 `yaml:"max_size" config:"size"`
	Count   int   `yaml:"count"`
}

type item struct {
	Label string `yaml:"label"`
}

func defaults() sample {
	return sample{Name: "gw", Inner: inner{Limits: Limits{MaxSize: 1 << 20, Count: 3}, Wait: time.Second}, Ratio: 2}
}

func TestDecodeReportsEveryProblemByKeyAndLine(t *testing.T) {
	doc := "name: x\nnmae: y\ninner:\n  max_size: lots\n  count: 7\n  wait: soon\n  privat: 1\nitems:\n  - lable: a\nratio: high\n"
	got := defaults()
	where := Where{}
	problems, err := Decode([]byte(doc), "c.yaml", &got, where)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`c.yaml:2: unknown key "nmae" (did you mean "name"?) (known keys: inner, items, name, ratio)`,
		`c.yaml:4: inner.max_size: "lots" is not a size (write it like 512MiB, 1GiB or 64MB)`,
		`c.yaml:6: inner.wait: "soon" is not a duration (write it like 500ms, 10s, 5m or 720h)`,
		`c.yaml:7: unknown key "inner.privat"`,
		`c.yaml:9: unknown key "items[0].lable" (did you mean "label"?)`,
		"c.yaml:10: ratio: cannot unmarshal !!str `high` into float64",
	} {
		if !strings.Contains(strings.Join(problems, "\n"), want) {
			t.Errorf("no problem %q in:\n%s", want, strings.Join(problems, "\n"))
		}
	}
	if len(problems) != 6 {
		t.Errorf("%d problems, want 6:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	// What decoded is set; what did not keeps its default.
	if got.Name != "x" || got.Inner.Count != 7 || got.Inner.MaxSize != 1<<20 || got.Inner.Wait != time.Second || got.Ratio != 2 {
		t.Errorf("decoded %+v", got)
	}
	if where.Locate("inner.count") != "c.yaml:5" || where.Locate("inner.ca_file") != "c.yaml:3" || where.Locate("other") != "default" {
		t.Errorf("where: %v", where)
	}
}

func TestDecodeSizesAndAPlainZero(t *testing.T) {
	got := defaults()
	if problems, err := Decode([]byte("inner: {max_size: 1.5GiB, wait: 0}\n"), "c.yaml", &got, Where{}); err != nil || len(problems) > 0 {
		t.Fatal(err, problems)
	}
	if got.Inner.MaxSize != 3<<29 || got.Inner.Wait != 0 {
		t.Errorf("max_size = %d, wait = %s; want 1.5GiB and a plain 0", got.Inner.MaxSize, got.Inner.Wait)
	}
}

func TestDecodeRefusesWhatIsNotOneMapping(t *testing.T) {
	for doc, want := range map[string]string{
		"a: [1\n":        "did not find expected",
		"a: 1\n---\n":    "a second YAML document",
		"- a\n":          "must be a mapping",
		"name: [1, 2]\n": "",
	} {
		got := defaults()
		problems, err := Decode([]byte(doc), "c.yaml", &got, Where{})
		var ce *Error
		switch {
		case want == "" && (err != nil || len(problems) != 1):
			t.Errorf("%q: %v %v, want one problem", doc, err, problems)
		case want != "" && (!errors.As(err, &ce) || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want an *Error with %q", doc, err, want)
		}
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{"FIELDGATE_INNER_MAX_SIZE": "2MiB", "FIELDGATE_INNER_WAIT": "later",
		"FIELDGATE_RATIO": "3", "FIELDGATE_INNER_COUNT": "x"}
	got := defaults()
	where := Where{}
	used, known, problems := ApplyEnv(&got, func(k string) string { return env[k] }, where)
	if got.Inner.MaxSize != 2<<20 || got.Ratio != 3 || where["ratio"] != "FIELDGATE_RATIO" || len(used) != 2 {
		t.Errorf("applied %+v, used %v, where %v", got, used, where)
	}
	if len(problems) != 2 || !strings.Contains(strings.Join(problems, "\n"), `FIELDGATE_INNER_WAIT: inner.wait: "later": "later" is not a duration`) {
		t.Errorf("problems: %v", problems)
	}
	if !known["FIELDGATE_INNER_CA_FILE"] || known["FIELDGATE_INNER_PRIVATE"] || known["FIELDGATE_ITEMS"] || known["FIELDGATE_INNER_LIMITS_COUNT"] {
		t.Errorf("known: %v", known)
	}
	unknown := UnknownEnv([]string{"FIELDGATE_RATO", "FIELDGATE_OWN", "HOME"}, known, []string{"FIELDGATE_OWN"})
	if len(unknown) != 1 || !strings.Contains(unknown[0], "FIELDGATE_RATO: not a configuration variable (did you mean FIELDGATE_RATIO?)") {
		t.Errorf("unknown: %v", unknown)
	}
}

func TestRenderLoadsBack(t *testing.T) {
	v := defaults()
	v.Inner.Token, v.Inner.MaxSize, v.Items = "s3cr3t", 512<<10, []item{{"a"}}
	var out strings.Builder
	if err := Render(&out, &v); err != nil {
		t.Fatal(err)
	}
	want := "name: gw\ninner:\n  max_size: 512KiB\n  count: 3\n  wait: 1s\n  token: '[redacted]'\n  ca_file: \"\"\nitems:\n  - label: a\nratio: 2\n"
	if out.String() != want {
		t.Fatalf("rendered:\n%s\nwant:\n%s", out.String(), want)
	}
	back := sample{}
	if problems, err := Decode([]byte(out.String()), "r.yaml", &back, Where{}); err != nil || len(problems) > 0 {
		t.Fatal(err, problems)
	}
	back.Inner.Token = v.Inner.Token
	if back.Inner != v.Inner || back.Name != v.Name || back.Ratio != v.Ratio {
		t.Errorf("loaded back %+v, want %+v", back, v)
	}
}

func TestCheckFiles(t *testing.T) {
	v := defaults()
	v.Inner.CAFile = "/nonexistent/ca.pem"
	var got []string
	CheckFiles(&v, func(key, msg string) { got = append(got, key+": "+msg) })
	if len(got) != 1 || !strings.HasPrefix(got[0], "inner.ca_file: stat /nonexistent/ca.pem") {
		t.Errorf("problems: %v", got)
	}
	v.Inner.CAFile = "config_test.go"
	CheckFiles(&v, func(key, msg string) { t.Errorf("%s: %s", key, msg) })
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "4096": 4096, "1KiB": 1024, "1.5GiB": 3 << 29, "64 MB": 64e6, "2GB": 2e9, "10B": 10, "1TiB": 1 << 40,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1MiB", "1 PB", "1e400", "12 parsecs"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded", in)
		}
	}
}
