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
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := decodeConfig(data, path, &lc.Config, where); err != nil {
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
	lc.Env, err = applyEnv(&lc.Config, getenv, where)
	if err != nil {
		return nil, err
	}
	if errs := lc.validate(h); len(errs) > 0 {
		ce := &ConfigError{Source: lc.Source}
		for _, e := range errs {
			at := locate(where, e.Path)
			ce.Problems = append(ce.Problems, fmt.Sprintf("%s: %s: %s", at, e.Path, e.Msg))
		}
		return nil, ce
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

// decodeConfig parses one YAML document onto cfg, rejecting unknown keys
// with their line numbers and recording where each key was set.
func decodeConfig(data []byte, path string, cfg *Config, where map[string]string) error {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file: the defaults stand
		}
		return &ConfigError{Source: path, Problems: []string{strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return &ConfigError{Source: path, Problems: []string{fmt.Sprintf("line %d: a second YAML document; the configuration is one document", extra.Line)}}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return nil
	}
	if doc.Kind != yaml.MappingNode {
		return &ConfigError{Source: path, Problems: []string{fmt.Sprintf("line %d: the configuration must be a mapping of keys such as data_dir: and store:", doc.Line)}}
	}
	var problems []string
	checkKeys(doc, reflect.TypeOf(*cfg), "", path, where, &problems)
	if len(problems) > 0 {
		return &ConfigError{Source: path, Problems: problems}
	}
	if err := doc.Decode(cfg); err != nil {
		msg := err.Error()
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msg = strings.Join(te.Errors, "; ")
		}
		return &ConfigError{Source: path, Problems: []string{msg}}
	}
	return nil
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
// sensors are not overridable). It returns the names of the variables used.
func applyEnv(cfg *Config, getenv func(string) string, where map[string]string) ([]string, error) {
	var used, problems []string
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
			env := envPrefix + strings.ToUpper(strings.ReplaceAll(p, ".", "_"))
			val := getenv(env)
			if val == "" {
				continue
			}
			node := &yaml.Node{Kind: yaml.ScalarNode, Value: val, Line: 1}
			if err := node.Decode(fv.Addr().Interface()); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %s: %q: %s", env, p, val, strings.TrimPrefix(err.Error(), "line 1: ")))
				continue
			}
			where[p] = env
			used = append(used, env)
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), "")
	if len(problems) > 0 {
		return nil, &ConfigError{Source: "environment", Problems: problems}
	}
	return used, nil
}
