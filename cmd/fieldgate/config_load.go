package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// envPrefix starts every environment variable that overrides a config key:
// store.max_size is FIELDGATE_STORE_MAX_SIZE.
const envPrefix = "FIELDGATE_"

// envName is the environment variable that overrides key.
func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// ConfigError lists every problem found in a configuration.
type ConfigError struct {
	Source   string
	Problems []string
}

// Error lists the problems, one per line.
func (e *ConfigError) Error() string {
	return "invalid configuration " + e.Source + ":\n  " + strings.Join(e.Problems, "\n  ")
}

// loadedConfig is a validated configuration and where it came from.
type loadedConfig struct {
	Config
	// Source is the file read, or "embedded defaults".
	Source string
	// Env lists the FIELDGATE_* variables that overrode a value.
	Env []string
}

// loadConfig reads path over the embedded defaults, applies FIELDGATE_*
// overrides and validates the result. A missing file is an error only if
// the user named it (explicit); otherwise the defaults apply.
func loadConfig(path string, explicit bool, getenv func(string) string, h host) (*loadedConfig, error) {
	lc := &loadedConfig{Config: defaultConfig(getenv), Source: path}
	where := map[string]string{} // key path → "file:line" or env var, for messages
	// Every problem is listed at once: keys, values, environment
	// variables and the checks across them. A value that failed to decode
	// keeps its default, so the checks see no false trouble from it.
	var problems []string
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if problems, err = decodeConfig(data, path, &lc.Config, where); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		lc.Source = "embedded defaults"
	default:
		return nil, fmt.Errorf("config: %w", err)
	}
	if _, listed := where["sensors"]; !listed {
		lc.Sensors = defaultSensors(h)
	}
	fillSensorDefaults(lc.Sensors)
	var known map[string]bool
	lc.Env, known, problems = applyEnv(&lc.Config, getenv, where, problems)
	problems = append(problems, unknownEnv(h.env, known)...)
	for _, e := range lc.validate(h) {
		problems = append(problems, fmt.Sprintf("%s: %s: %s", locate(where, e.Path), e.Path, e.Msg))
	}
	if len(problems) > 0 {
		return nil, &ConfigError{Source: lc.Source, Problems: problems}
	}
	return lc, nil
}

// locate returns where path (or, for a defaulted value, its nearest
// parent) was set: "file:line", an environment variable, or "default".
func locate(where map[string]string, path string) string {
	for p := path; p != ""; {
		if at := where[p]; at != "" {
			return at
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return "default"
}

// decodeConfig parses one YAML document onto cfg, recording where each key
// was set. It returns the unknown keys and the values that do not decode,
// each as "file:line: key: why"; err is for a file that is not one YAML
// mapping at all.
func decodeConfig(data []byte, path string, cfg *Config, where map[string]string) (problems []string, err error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file: the defaults stand
		}
		return nil, &ConfigError{Source: path, Problems: []string{strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &ConfigError{Source: path, Problems: []string{fmt.Sprintf("line %d: a second YAML document; the configuration is one document", extra.Line)}}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return nil, nil
	}
	if doc.Kind != yaml.MappingNode {
		return nil, &ConfigError{Source: path, Problems: []string{fmt.Sprintf("line %d: the configuration must be a mapping of keys such as data_dir: and store:", doc.Line)}}
	}
	checkKeys(doc, reflect.TypeOf(*cfg), "", path, where, &problems)
	if err := doc.Decode(cfg); err != nil { // yaml.v3 decodes what it can and lists the rest
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &ConfigError{Source: path, Problems: []string{err.Error()}}
		}
		for _, e := range te.Errors {
			problems = append(problems, locateValueError(e, path, where))
		}
	}
	return problems, nil
}

// checkKeys walks the YAML tree against the config struct, reporting keys the
// struct does not have (with the keys it does have) and recording each key's
// line under its dotted path.
func checkKeys(n *yaml.Node, t reflect.Type, prefix, file string, where map[string]string, problems *[]string) {
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			p := joinPath(prefix, key.Value)
			f, ok := fields[key.Value]
			if !ok {
				*problems = append(*problems, fmt.Sprintf("%s:%d: unknown key %q%s (known keys: %s)",
					file, key.Line, p, suggest(key.Value, fields), strings.Join(sortedKeys(fields), ", ")))
				continue
			}
			where[p] = fmt.Sprintf("%s:%d", file, key.Line)
			checkKeys(val, f.Type, p, file, where, problems)
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, item := range n.Content {
			p := prefix + "[" + strconv.Itoa(i) + "]"
			where[p] = fmt.Sprintf("%s:%d", file, item.Line)
			checkKeys(item, t.Elem(), p, file, where, problems)
		}
	}
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField)
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" {
			out[name] = f
		}
	}
	return out
}

func sortedKeys(m map[string]reflect.StructField) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// suggest returns ` (did you mean "x"?)` for a near miss.
func suggest(key string, fields map[string]reflect.StructField) string {
	for _, k := range sortedKeys(fields) {
		if editDistance(key, k) <= 2 {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return ""
}

// editDistance is the Levenshtein distance, for short key names.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func joinPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// applyEnv overrides scalar keys from FIELDGATE_* variables (lists such as
// sensors are not overridable). It returns the names of the variables used,
// every name a key has, and problems with the values added.
func applyEnv(cfg *Config, getenv func(string) string, where map[string]string, problems []string) (used []string, known map[string]bool, _ []string) {
	known = map[string]bool{}
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			p := joinPath(prefix, name)
			fv := v.Field(i)
			switch fv.Kind() {
			case reflect.Struct:
				walk(fv, p)
				continue
			case reflect.Slice:
				continue
			}
			env := envName(p)
			known[env] = true
			val := getenv(env)
			if val == "" {
				continue
			}
			node := &yaml.Node{Kind: yaml.ScalarNode, Value: val, Line: 1}
			if err := node.Decode(fv.Addr().Interface()); err != nil {
				msg := err.Error()
				var te *yaml.TypeError
				if errors.As(err, &te) {
					msg = strings.Join(te.Errors, "; ")
				}
				problems = append(problems, fmt.Sprintf("%s: %s: %q: %s", env, p, val, strings.ReplaceAll(msg, "line 1: ", "")))
				continue
			}
			where[p] = env
			used = append(used, env)
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), "")
	return used, known, problems
}

// envNotConfig are the FIELDGATE_* variables that are not configuration
// keys: the configuration's path, the boot id the unit passes, and the test
// suite's and benchmarks' switches (a trailing * matches a prefix).
var envNotConfig = []string{"FIELDGATE_CONFIG", "FIELDGATE_BOOT_ID", "FIELDGATE_REQUIRE_ALL", "FIELDGATE_LONG",
	"FIELDGATE_ARTIFACTS", "FIELDGATE_EMULATOR", "FIELDGATE_BENCH_*", "FIELDGATE_STORE_CRASH_HELPER", "FIELDGATE_READY_HELPER"}

// unknownEnv reports the FIELDGATE_* variables among names that set no key
// — a typo would otherwise be ignored in silence — with the nearest known
// name.
func unknownEnv(names []string, known map[string]bool) []string {
	var problems []string
	for _, name := range names {
		if !strings.HasPrefix(name, envPrefix) || known[name] || slices.ContainsFunc(envNotConfig, func(p string) bool {
			pre, wild := strings.CutSuffix(p, "*")
			return name == p || (wild && strings.HasPrefix(name, pre))
		}) {
			continue
		}
		best, dist := "", 4
		for k := range known {
			if d := editDistance(name, k); d < dist || (d == dist && k < best) {
				best, dist = k, d
			}
		}
		hint := ""
		if best != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", best)
		}
		problems = append(problems, fmt.Sprintf("%s: not a configuration variable%s; `fieldgate check-config` prints every key", name, hint))
	}
	slices.Sort(problems)
	return problems
}

// locateValueError turns yaml.v3's "line N: cannot unmarshal …" into
// "file:N: key: cannot unmarshal …", naming the deepest key set on line N.
func locateValueError(msg, file string, where map[string]string) string {
	var line int
	if _, err := fmt.Sscanf(msg, "line %d:", &line); err != nil {
		return file + ": " + msg
	}
	at := fmt.Sprintf("%s:%d", file, line)
	key := ""
	for p, w := range where {
		if w == at && len(p) > len(key) {
			key = p
		}
	}
	rest := strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	if key == "" {
		return at + ": " + rest
	}
	return at + ": " + key + ": " + rest
}
