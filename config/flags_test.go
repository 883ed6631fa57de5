package config_test

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/config"
)

// RegisterFlagsFor offers only the keys named (a section names its keys),
// each with its type and default; the flags set still load and validate,
// and a bool flag alone means true.
func TestRegisterFlagsFor(t *testing.T) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	config.RegisterFlagsFor(fs, "database_url", "log", "migrate", "dispatcher.default_timeout", "allow_private_addresses", "roles")
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	require.ElementsMatch(t, []string{"config", "database-url", "log-format", "log-level", "migrate",
		"dispatcher-default-timeout", "allow-private-addresses", "roles"}, names)
	for _, tc := range []struct{ name, typ, def string }{
		{"database-url", "string", ""},
		{"log-level", "string", "info"},
		{"migrate", "bool", "true"},
		{"dispatcher-default-timeout", "duration", "30s"},
		{"allow-private-addresses", "bool", "true with embedded SQLite, false on PostgreSQL"},
		{"roles", "strings", "api,poller,dispatcher"},
	} {
		f := fs.Lookup(tc.name)
		require.Equal(t, tc.typ, f.Value.Type(), tc.name)
		require.Equal(t, tc.def, f.DefValue, tc.name)
	}
	require.NoError(t, fs.Parse([]string{"--migrate=false", "--dispatcher-default-timeout", "5s", "--allow-private-addresses", "--roles", "api"}))
	c, err := config.Load(fs, nil)
	require.NoError(t, err)
	require.False(t, c.Migrate)
	require.Equal(t, 5*time.Second, c.Dispatcher.DefaultTimeout)
	require.True(t, c.PrivateAddressesAllowed())
	require.Equal(t, []string{"api"}, c.Roles)

	bad := pflag.NewFlagSet("bad", pflag.ContinueOnError)
	config.RegisterFlagsFor(bad, "dispatcher.default_timeout")
	require.NoError(t, bad.Parse([]string{"--dispatcher-default-timeout", "soon"}))
	_, err = config.Load(bad, nil)
	require.ErrorContains(t, err, "dispatcher.default_timeout (from --dispatcher-default-timeout)")

	require.Panics(t, func() { config.RegisterFlagsFor(pflag.NewFlagSet("x", pflag.ContinueOnError), "no_such_key") })

	all := pflag.NewFlagSet("all", pflag.ContinueOnError)
	config.RegisterFlags(all)
	require.Equal(t, "int", all.Lookup("dispatcher-workers").Value.Type())
	require.Equal(t, "float", all.Lookup("api-rate-limit").Value.Type())
}
