package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestReportStepsNameRealTests: the report runs benchmarks and tests of
// other packages by name, with FIELDGATE_TEST_BENCH_* knobs. A renamed
// benchmark, test or knob fails here, in the test suite, instead of an
// hour into a report.
func TestReportStepsNameRealTests(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "report_steps.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		fn, ok := call.Fun.(*ast.Ident)
		if !ok || (fn.Name != "goBench" && fn.Name != "testSummary") || len(call.Args) < 3 {
			return true
		}
		pkg, name := stringLit(call.Args[0]), stringLit(call.Args[1])
		if pkg == "" || name == "" {
			t.Errorf("%s: %s with a package or name that is not a literal", fset.Position(call.Pos()), fn.Name)
			return true
		}
		src := packageSource(t, filepath.Join("..", "..", pkg))
		want := regexp.MustCompile(`func (` + "Test" + `\w*)\(`)
		if fn.Name == "goBench" {
			top, _, _ := strings.Cut(name, "/")
			want = regexp.MustCompile(`func (Benchmark\w*)\(`)
			matches := regexp.MustCompile(top)
			if !anyMatch(want.FindAllStringSubmatch(src, -1), matches) {
				t.Errorf("%s: no benchmark of %s matches %q", fset.Position(call.Pos()), pkg, top)
			}
			for _, knob := range knobs(call.Args[2]) {
				if !strings.Contains(src, `"`+knob+`"`) && !strings.Contains(src, `"`+strings.TrimPrefix(knob, "FIELDGATE_TEST_")+`"`) {
					t.Errorf("%s: %s sets %s, which nothing in %s reads", fset.Position(call.Pos()), fn.Name, knob, pkg)
				}
			}
		} else if !anyMatch(want.FindAllStringSubmatch(src, -1), regexp.MustCompile("^"+name+"$")) {
			t.Errorf("%s: %s has no test %s", fset.Position(call.Pos()), pkg, name)
		}
		checked++
		return true
	})
	if checked < 10 {
		t.Errorf("checked %d steps; the report has more (did report_steps.go change shape?)", checked)
	}
}

func stringLit(e ast.Expr) string {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return ""
	}
	s, err := strconv.Unquote(lit.Value)
	if err != nil {
		return ""
	}
	return s
}

// knobs returns the variable names an env argument sets ("NAME=" + …).
func knobs(e ast.Expr) []string {
	var out []string
	ast.Inspect(e, func(n ast.Node) bool {
		if s := stringLit(asExpr(n)); strings.HasPrefix(s, "FIELDGATE_TEST_") {
			name, _, _ := strings.Cut(s, "=")
			out = append(out, name)
		}
		return true
	})
	return out
}

func asExpr(n ast.Node) ast.Expr {
	e, _ := n.(ast.Expr)
	return e
}

func anyMatch(funcs [][]string, re *regexp.Regexp) bool {
	for _, m := range funcs {
		if re.MatchString(m[1]) {
			return true
		}
	}
	return false
}

// packageSource is the text of every Go file in dir.
func packageSource(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}
