package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable that overrides a key:
// store.max_size is FIELDGATE_STORE_MAX_SIZE.
const EnvPrefix = "FIELDGATE_"

// EnvName is the environment variable that overrides key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// ApplyEnv overrides dst's scalar keys from the variables getenv has (lists
// such as sensors are not overridable), recording them in where. It
// returns the names of the variables used, every name a key has, and a
// problem for each value that does not decode.
func ApplyEnv(dst any, getenv func(string) string, where Where) (used []string, known map[string]bool, problems []string) {
	known = map[string]bool{}
	eachKey(reflect.ValueOf(dst).Elem(), "", func(p string, f reflect.StructField, fv reflect.Value) {
		if fv.Kind() == reflect.Slice {
			return
		}
		env := EnvName(p)
		known[env] = true
		val := getenv(env)
		if val == "" {
			return
		}
		if err := decodeScalar(val, f, fv); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s: %q: %v", env, p, val, err))
			return
		}
		where[p] = env
		used = append(used, env)
	})
	return used, known, problems
}

// decodeScalar sets fv, of field f, from one environment value.
func decodeScalar(val string, f reflect.StructField, fv reflect.Value) error {
	if f.Tag.Get("config") == "size" {
		n, err := ParseSize(val)
		if err != nil {
			return err
		}
		if fv.OverflowInt(n) {
			return fmt.Errorf("%q is too large", val)
		}
		fv.SetInt(n)
		return nil
	}
	if d, err := time.ParseDuration(val); err == nil && f.Type == durationType {
		fv.SetInt(int64(d)) // yaml.v3 refuses a plain 0
		return nil
	}
	node := &yaml.Node{Kind: yaml.ScalarNode, Value: val, Line: 1}
	if err := node.Decode(fv.Addr().Interface()); err != nil {
		msg := err.Error()
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msg = strings.Join(te.Errors, "; ")
		}
		return errors.New(explain(strings.ReplaceAll(msg, "line 1: ", "")))
	}
	return nil
}

// UnknownEnv reports the FIELDGATE_* variables among names that set no key
// — a typo would otherwise be ignored in silence — with the nearest known
// name. Names in notConfig are the program's own variables.
func UnknownEnv(names []string, known map[string]bool, notConfig []string) []string {
	var problems []string
	for _, name := range names {
		if !strings.HasPrefix(name, EnvPrefix) || known[name] || slices.Contains(notConfig, name) {
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
