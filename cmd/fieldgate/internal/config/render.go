package config

import (
	"fmt"
	"io"
	"os"
	"reflect"

	"gopkg.in/yaml.v3"

	"fieldgate/store"
)

// Render writes v as YAML, indented by two, with sizes in units
// (store.FormatSize) and set secrets as [redacted]: what it prints loads
// again to the same values, secrets aside.
func Render(w io.Writer, v any) error {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return fmt.Errorf("print configuration: %w", err)
	}
	rewrite(&n, reflect.TypeOf(v))
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return fmt.Errorf("print configuration: %w", err)
	}
	return enc.Close()
}

// rewrite walks an encoded tree against its type, writing sizes in units
// and hiding secrets.
func rewrite(n *yaml.Node, t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			f, ok := fields[n.Content[i].Value]
			if !ok {
				continue
			}
			val := n.Content[i+1]
			switch f.Tag.Get("config") {
			case "size":
				var size int64
				if err := val.Decode(&size); err == nil {
					val.Value, val.Tag = store.FormatSize(size), "!!str"
				}
			case "secret":
				if val.Value != "" {
					val.Value, val.Tag, val.Style = "[redacted]", "!!str", yaml.SingleQuotedStyle
				}
			default:
				rewrite(val, f.Type)
			}
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for _, item := range n.Content {
			rewrite(item, t.Elem())
		}
	}
}

// CheckFiles reports each config:"file" key of v (a pointer to a struct)
// that is set to a path that cannot be opened, by its dotted path.
func CheckFiles(v any, problem func(key, msg string)) {
	eachKey(reflect.ValueOf(v).Elem(), "", func(key string, f reflect.StructField, fv reflect.Value) {
		if f.Tag.Get("config") != "file" || fv.String() == "" {
			return
		}
		if _, err := os.Stat(fv.String()); err != nil {
			problem(key, err.Error())
		}
	})
}
