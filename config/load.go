package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Load reads and checks the configuration file at path. An empty path gives
// the defaults.
func Load(path string) (*Config, error) {
	if path == "" {
		return Default(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse reads a configuration from YAML (or JSON) over the defaults and
// checks it. Unknown fields are errors, so that a misspelt field is not
// silently ignored.
func Parse(data []byte) (*Config, error) {
	cfg := Default()
	if len(bytes.TrimSpace(data)) > 0 {
		raw, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, fmt.Errorf("not valid YAML: %w", err)
		}
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("not valid YAML: %w", err)
		}
		if doc != nil {
			if _, ok := doc.(map[string]any); !ok {
				return nil, fmt.Errorf("the file must be a mapping of fields (systemProject, dns, roles, ...), not a %s", jsonKind(doc))
			}
			if err := walk(doc, reflect.ValueOf(cfg).Elem(), ""); err != nil {
				return nil, err
			}
			if err := json.Unmarshal(raw, cfg); err != nil {
				return nil, describeDecodeError(err)
			}
		}
	}
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// walk compares the decoded document with the Config type before the real
// decode, to report unknown fields and values of the wrong shape with their
// full path. It also clears each default map and list the document sets, so
// that the file's value replaces the default instead of being merged into it.
func walk(doc any, target reflect.Value, path string) error {
	if target.CanAddr() {
		if u, ok := target.Addr().Interface().(json.Unmarshaler); ok {
			b, _ := json.Marshal(doc)
			if err := u.UnmarshalJSON(b); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			return nil
		}
	}
	if doc == nil {
		return nil
	}
	t := target.Type()
	switch t.Kind() {
	case reflect.Struct:
		m, ok := doc.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: expected a mapping of fields, got a %s", path, jsonKind(doc))
		}
		fields := map[string]int{}
		var names []string
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if name != "" && name != "-" {
				fields[name] = i
				names = append(names, name)
			}
		}
		keys := sortedKeys(m)
		for _, k := range keys {
			i, ok := fields[k]
			if !ok {
				shown := k
				if strings.TrimSpace(k) == "" {
					// A key YAML reads as empty ("! :") must still be named.
					shown = fmt.Sprintf("%q", k)
				}
				return fmt.Errorf("%s: unknown field; known fields here are %s", join(path, shown), strings.Join(names, ", "))
			}
			if err := walk(m[k], target.Field(i), join(path, k)); err != nil {
				return err
			}
		}
	case reflect.Map:
		m, ok := doc.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: expected a mapping, got a %s", path, jsonKind(doc))
		}
		target.Set(reflect.Zero(t))
		for _, k := range sortedKeys(m) {
			elem := reflect.New(t.Elem()).Elem()
			if err := walk(m[k], elem, join(path, k)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		list, ok := doc.([]any)
		if !ok {
			return fmt.Errorf("%s: expected a list, got a %s", path, jsonKind(doc))
		}
		// encoding/json decodes list items over the items already in the
		// slice, which would mix a default entry's fields into the file's.
		target.Set(reflect.Zero(t))
		for i, item := range list {
			elem := reflect.New(t.Elem()).Elem()
			if err := walk(item, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.String:
		if _, ok := doc.(string); !ok {
			return fmt.Errorf("%s: expected a string, got a %s (quote it)", path, jsonKind(doc))
		}
	case reflect.Bool:
		if _, ok := doc.(bool); !ok {
			return fmt.Errorf("%s: expected true or false, got a %s", path, jsonKind(doc))
		}
	case reflect.Int:
		f, ok := doc.(float64)
		if !ok || f != float64(int(f)) {
			return fmt.Errorf("%s: expected a whole number, got %s", path, describe(doc))
		}
	}
	return nil
}

func describeDecodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%s: expected %s, got a %s", te.Field, te.Type, te.Value)
	}
	return err
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "mapping"
	case []any:
		return "list"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return "null"
}

func describe(v any) string {
	b, _ := json.Marshal(v)
	return jsonKind(v) + " " + string(b)
}
