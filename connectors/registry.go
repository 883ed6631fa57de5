package connectors

import (
	"fmt"
	"slices"
	"time"
)

// Registry holds the apps this deployment offers, by name.
type Registry struct {
	apps  map[string]Connector
	names []string
}

// NewRegistry builds a registry; it panics on a duplicate name, which is a
// wiring bug.
func NewRegistry(apps ...Connector) *Registry {
	r := &Registry{apps: map[string]Connector{}}
	for _, a := range apps {
		name := a.Info().Name
		if _, dup := r.apps[name]; dup {
			panic(fmt.Sprintf("connectors: app %q registered twice", name))
		}
		r.apps[name] = a
		r.names = append(r.names, name)
	}
	slices.Sort(r.names)
	return r
}

// Get returns the app named name.
func (r *Registry) Get(name string) (Connector, bool) {
	a, ok := r.apps[name]
	return a, ok
}

// List returns the Info of every app, sorted by name.
func (r *Registry) List() []Info {
	out := make([]Info, 0, len(r.names))
	for _, n := range r.names {
		out = append(out, r.apps[n].Info())
	}
	return out
}

// OutdatedAPI is an app whose pinned provider API version is past its end of
// support.
type OutdatedAPI struct {
	App          string
	Version      string
	EndOfSupport time.Time
}

// OutdatedAPIs lists the apps (VersionedApp) whose pinned API version's end
// of support is not after now, sorted by name.
func (r *Registry) OutdatedAPIs(now time.Time) []OutdatedAPI {
	var out []OutdatedAPI
	for _, n := range r.names {
		v, ok := r.apps[n].(VersionedApp)
		if !ok {
			continue
		}
		version, end := v.APIVersionSupport()
		if !end.IsZero() && !now.Before(end) {
			out = append(out, OutdatedAPI{App: n, Version: version, EndOfSupport: end})
		}
	}
	return out
}
