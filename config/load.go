package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// EnvPrefix prefixes every environment variable.
const EnvPrefix = "TRIBUTARY_"

// field is one settable leaf of Config.
type field struct {
	key  string // dotted: "dispatcher.workers"
	help string
	// def describes a default that depends on other keys (tag default).
	def  string
	path []int
}

func leaves() []field {
	var out []field
	var walk func(t reflect.Type, prefix string, path []int)
	walk = func(t reflect.Type, prefix string, path []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			key := f.Tag.Get("key")
			if key == "" {
				continue
			}
			p := append(append([]int(nil), path...), i)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				walk(f.Type, prefix+key+".", p)
				continue
			}
			if f.Type.Kind() == reflect.Map {
				continue // apps: handled separately
			}
			out = append(out, field{key: prefix + key, help: f.Tag.Get("help"), def: f.Tag.Get("default"), path: p})
		}
	}
	walk(reflect.TypeOf(Config{}), "", nil)
	return out
}

// FlagName turns a key into its flag: "dispatcher.workers" → "dispatcher-workers".
func FlagName(key string) string { return strings.NewReplacer(".", "-", "_", "-").Replace(key) }

// EnvName turns a key into its variable: "dispatcher.workers" → "TRIBUTARY_DISPATCHER_WORKERS".
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// RegisterFlags adds one flag per key, plus --config, to fs.
func RegisterFlags(fs *pflag.FlagSet) { RegisterFlagsFor(fs) }

// RegisterFlagsFor adds --config and the flags of the keys named (a key or
// a section: "log" is log.format and log.level), or of every key when none
// is named, to fs. Each flag shows its key's type and default; the other
// keys are still read from the file and the environment. A key named that
// does not exist panics (a programming error).
func RegisterFlagsFor(fs *pflag.FlagSet, keys ...string) {
	fs.String("config", "", "YAML configuration file (also TRIBUTARY_CONFIG)")
	def := reflect.ValueOf(Default())
	used := make([]bool, len(keys))
	for _, f := range leaves() {
		if len(keys) > 0 {
			found := false
			for i, k := range keys {
				if f.key == k || strings.HasPrefix(f.key, k+".") {
					found, used[i] = true, true
				}
			}
			if !found {
				continue
			}
		}
		v := def
		for _, i := range f.path {
			v = v.Field(i)
		}
		typ, text := flagType(v)
		fl := fs.VarPF(&flagValue{typ: typ}, FlagName(f.key), "", f.help+" (env "+EnvName(f.key)+")")
		fl.DefValue = text
		if f.def != "" {
			fl.DefValue = f.def
		}
		if typ == "bool" {
			fl.NoOptDefVal = "true" // --migrate alone means true
		}
	}
	for i, k := range keys {
		if !used[i] {
			panic("config: RegisterFlagsFor: no key " + k)
		}
	}
}

// flagValue is a configuration flag: it keeps the text given, which Load
// parses and applies with the key's name in any error, and reports the
// key's type for the help.
type flagValue struct{ typ, text string }

func (v *flagValue) String() string     { return v.text }
func (v *flagValue) Set(s string) error { v.text = s; return nil }
func (v *flagValue) Type() string       { return v.typ }

// flagType is the type name and the default text of a key's value v.
func flagType(v reflect.Value) (typ, text string) {
	switch x := v.Interface().(type) {
	case bool:
		return "bool", strconv.FormatBool(x)
	case *bool:
		if x == nil {
			return "bool", "" // automatic: the help says on what it depends
		}
		return "bool", strconv.FormatBool(*x)
	case int:
		return "int", strconv.Itoa(x)
	case int64:
		return "int", strconv.FormatInt(x, 10)
	case time.Duration:
		return "duration", x.String()
	case float64:
		return "float", strconv.FormatFloat(x, 'g', -1, 64)
	case []string:
		return "strings", strings.Join(x, ",")
	default:
		return "string", v.String()
	}
}

// Load builds the configuration: defaults, the file named by --config or
// TRIBUTARY_CONFIG, TRIBUTARY_* variables from env, then flags that were set
// on fs (which may be nil). It validates the result.
func Load(fs *pflag.FlagSet, env []string) (*Config, error) {
	c := Default()
	envMap := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			envMap[k] = v
		}
	}
	file := envMap[EnvPrefix+"CONFIG"]
	if fs != nil {
		if f := fs.Lookup("config"); f != nil && f.Changed {
			file = f.Value.String()
		}
	}
	if file != "" {
		if err := loadFile(&c, file); err != nil {
			return nil, err
		}
	}
	fields := leaves()
	for _, f := range fields {
		if v, ok := envMap[EnvName(f.key)]; ok {
			if err := set(&c, f, v); err != nil {
				return nil, fmt.Errorf("%s (from %s): %w", f.key, EnvName(f.key), err)
			}
		}
	}
	if err := loadAppEnv(&c, envMap); err != nil {
		return nil, err
	}
	if fs != nil {
		for _, f := range fields {
			if fl := fs.Lookup(FlagName(f.key)); fl != nil && fl.Changed {
				if err := set(&c, f, fl.Value.String()); err != nil {
					return nil, fmt.Errorf("%s (from --%s): %w", f.key, fl.Name, err)
				}
			}
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func loadFile(c *Config, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(root.Content) == 0 {
		return nil
	}
	byKey := map[string]field{}
	for _, f := range leaves() {
		byKey[f.key] = f
	}
	var walk func(n *yaml.Node, prefix string) error
	walk = func(n *yaml.Node, prefix string) error {
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("config file %s: %s must be a mapping", path, strings.TrimSuffix(cmpStr(prefix, "top level"), "."))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			key := prefix + k
			if key == "apps" {
				apps := map[string]App{}
				dec := v
				if err := decodeStrict(dec, &apps); err != nil {
					return fmt.Errorf("config file %s: apps: %w", path, err)
				}
				for name, a := range apps {
					c.Apps[name] = a
				}
				continue
			}
			if f, ok := byKey[key]; ok {
				val := v.Value
				if v.Kind == yaml.SequenceNode {
					parts := make([]string, 0, len(v.Content))
					for _, e := range v.Content {
						parts = append(parts, e.Value)
					}
					val = strings.Join(parts, ",")
				}
				if err := set(c, f, val); err != nil {
					return fmt.Errorf("config file %s: %s: %w", path, key, err)
				}
				continue
			}
			if v.Kind == yaml.MappingNode && isSection(key) {
				if err := walk(v, key+"."); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("config file %s: unknown key %q (line %d)", path, key, n.Content[i].Line)
		}
		return nil
	}
	return walk(root.Content[0], "")
}

func decodeStrict(n *yaml.Node, out any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	return dec.Decode(out)
}

func isSection(key string) bool {
	for _, f := range leaves() {
		if strings.HasPrefix(f.key, key+".") {
			return true
		}
	}
	return false
}

// loadAppEnv reads TRIBUTARY_APPS_<APP>_<FIELD>, e.g. TRIBUTARY_APPS_HUBSPOT_CLIENT_SECRET.
func loadAppEnv(c *Config, env map[string]string) error {
	const p = EnvPrefix + "APPS_"
	fields := map[string]func(*App, string){
		"CLIENT_ID": func(a *App, v string) { a.ClientID = v }, "CLIENT_SECRET": func(a *App, v string) { a.ClientSecret = v },
		"WEBHOOK_SECRET": func(a *App, v string) { a.WebhookSecret = v }, "BASE_URL": func(a *App, v string) { a.BaseURL = v },
		"AUTH_URL": func(a *App, v string) { a.AuthURL = v }, "TOKEN_URL": func(a *App, v string) { a.TokenURL = v },
		"SCOPES": func(a *App, v string) { a.Scopes = splitList(v) },
	}
	for k, v := range env {
		rest, ok := strings.CutPrefix(k, p)
		if !ok {
			continue
		}
		matched := false
		for suffix, setter := range fields {
			if app, ok := strings.CutSuffix(rest, "_"+suffix); ok && app != "" {
				name := strings.ToLower(app)
				a := c.Apps[name]
				setter(&a, v)
				c.Apps[name] = a
				matched = true
				break
			}
		}
		if !matched {
			return fmt.Errorf("%s: unknown app setting (want TRIBUTARY_APPS_<APP>_CLIENT_ID, _CLIENT_SECRET, _WEBHOOK_SECRET, _BASE_URL, _AUTH_URL, _TOKEN_URL or _SCOPES)", k)
		}
	}
	return nil
}

func set(c *Config, f field, s string) error {
	v := reflect.ValueOf(c).Elem()
	for _, i := range f.path {
		v = v.Field(i)
	}
	s = strings.TrimSpace(s)
	switch v.Interface().(type) {
	case string:
		v.SetString(s)
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", s)
		}
		v.SetBool(b)
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", s)
		}
		v.Set(reflect.ValueOf(&b))
	case int, int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		v.SetInt(n)
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 30s or 12h", s)
		}
		v.SetInt(int64(d))
	case float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		v.SetFloat(x)
	case []string:
		v.Set(reflect.ValueOf(splitList(s)))
	default:
		return errors.New("unsupported type")
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func cmpStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
