package connectors

import (
	"fmt"
	"slices"
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
