package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Error lists every problem found in a configuration.
type Error struct {
	Source   string
	Problems []string
}

// Error lists the problems, one per line.
func (e *Error) Error() string {
	return "invalid configuration " + e.Source + ":\n  " + strings.Join(e.Problems, "\n  ")
}

// Where records where each key was set, by its dotted path
// ("store.head.max_age", "sensors[1].name"): "file:line" or the
// environment variable.
type Where map[string]string

// Locate returns where path (or, for a defaulted value, its nearest
// parent) was set, or "default".
func (w Where) Locate(path string) string {
	for p := path; p != ""; {
		if at := w[p]; at != "" {
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

// Decode parses one YAML document onto dst, a pointer to a struct, and
// records in where the place of each key. It returns the unknown keys and
// the values that do not decode, each as "file:line: key: why" (such a
// value leaves its field as it was); err is for a file that is not one
// YAML mapping at all.
func Decode(data []byte, file string, dst any, where Where) (problems []string, err error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file: the defaults stand
		}
		return nil, &Error{Source: file, Problems: []string{strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{Source: file, Problems: []string{fmt.Sprintf("line %d: a second YAML document; the configuration is one document", extra.Line)}}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return nil, nil
	}
	if doc.Kind != yaml.MappingNode {
		return nil, &Error{Source: file, Problems: []string{fmt.Sprintf("line %d: the configuration must be a mapping of keys such as data_dir: and store:", doc.Line)}}
	}
	k := keyChecker{file: file, where: where}
	k.walk(doc, reflect.TypeOf(dst).Elem(), "")
	problems = k.problems
	if err := doc.Decode(dst); err != nil { // yaml.v3 decodes what it can and lists the rest
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &Error{Source: file, Problems: []string{err.Error()}}
		}
		for _, e := range te.Errors {
			problems = append(problems, locateValueError(e, file, where))
		}
	}
	return problems, nil
}

// keyChecker walks a YAML tree against the struct it decodes onto.
type keyChecker struct {
	file     string
	where    Where
	problems []string
}

// walk reports keys the struct does not have (with the keys it does have),
// records each key's line under its dotted path, and turns sizes into
// plain numbers, dropping those that do not parse.
func (k *keyChecker) walk(n *yaml.Node, t reflect.Type, prefix string) {
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := yamlFields(t)
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			p := joinPath(prefix, key.Value)
			f, ok := fields[key.Value]
			if !ok {
				k.problems = append(k.problems, fmt.Sprintf("%s:%d: unknown key %q%s (known keys: %s)",
					k.file, key.Line, p, suggest(key.Value, fields), strings.Join(sortedKeys(fields), ", ")))
				continue
			}
			k.where[p] = fmt.Sprintf("%s:%d", k.file, key.Line)
			if f.Tag.Get("config") == "size" && val.Kind == yaml.ScalarNode {
				v, err := ParseSize(val.Value)
				if err != nil {
					k.problems = append(k.problems, fmt.Sprintf("%s:%d: %s: %v", k.file, val.Line, p, err))
					continue
				}
				val.Value, val.Tag, val.Style = strconv.FormatInt(v, 10), "!!int", 0
			}
			if d, err := time.ParseDuration(val.Value); err == nil && f.Type == durationType && val.Kind == yaml.ScalarNode {
				val.Value, val.Tag = d.String(), "!!str" // yaml.v3 refuses a plain 0
			}
			k.walk(val, f.Type, p)
			kept = append(kept, key, val)
		}
		n.Content = kept
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, item := range n.Content {
			p := prefix + "[" + strconv.Itoa(i) + "]"
			k.where[p] = fmt.Sprintf("%s:%d", k.file, item.Line)
			k.walk(item, t.Elem(), p)
		}
	case t.Kind() == reflect.Pointer:
		k.walk(n, t.Elem(), prefix)
	}
}

// yamlFields maps each key of struct type t to its field, the keys of
// ",inline" fields included.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField)
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case opts == "inline":
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
		case name != "" && name != "-":
			out[name] = f
		}
	}
	return out
}

// eachKey calls fn for every key of struct value v that holds a value
// rather than a section, by its dotted path under prefix: the fields of
// ",inline" structs count as their parent's, nested structs are walked.
func eachKey(v reflect.Value, prefix string, fn func(key string, f reflect.StructField, fv reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case opts == "inline":
			eachKey(fv, prefix, fn)
		case name == "" || name == "-":
		case fv.Kind() == reflect.Struct:
			eachKey(fv, joinPath(prefix, name), fn)
		default:
			fn(joinPath(prefix, name), f, fv)
		}
	}
}

func joinPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

var durationType = reflect.TypeOf(time.Duration(0))

// durationError is yaml.v3's message for a value that is not a duration.
var durationError = regexp.MustCompile("cannot unmarshal !!\\w+ `(.*)` into time.Duration$")

// explain rewrites yaml.v3's messages about values into ones a technician
// can act on.
func explain(msg string) string {
	if m := durationError.FindStringSubmatchIndex(msg); m != nil {
		return msg[:m[0]] + fmt.Sprintf("%q is not a duration (write it like 500ms, 10s, 5m or 720h)", msg[m[2]:m[3]])
	}
	return msg
}

// locateValueError turns yaml.v3's "line N: cannot unmarshal …" into
// "file:N: key: cannot unmarshal …", naming the deepest key set on line N.
func locateValueError(msg, file string, where Where) string {
	msg = explain(msg)
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
