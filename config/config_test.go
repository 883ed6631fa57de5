package config_test

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/config"
)

func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	config.RegisterFlags(fs)
	require.NoError(t, fs.Parse(args))
	return fs
}

func TestLoadPrecedence(t *testing.T) {
	fs := flags(t, "--config", "testdata/good.yaml", "--dispatcher-workers", "16")
	c, err := config.Load(fs, []string{"TRIBUTARY_LISTEN_ADDR=127.0.0.1:7070", "TRIBUTARY_APPS_SHOPIFY_CLIENT_SECRET=s2", "PATH=/bin"})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7070", c.ListenAddr, "env beats file")
	require.Equal(t, 16, c.Dispatcher.Workers, "flag beats file")
	require.Equal(t, 10*time.Second, c.Dispatcher.DefaultTimeout, "file beats default")
	require.Equal(t, 6*time.Hour, c.Scheduler.DefaultPollInterval)
	require.Equal(t, []string{"api", "dispatcher"}, c.Roles)
	require.Equal(t, "abc", c.Apps["hubspot"].ClientID)
	require.Equal(t, []string{"crm.objects.contacts.read"}, c.Apps["hubspot"].Scopes)
	require.Equal(t, "s2", c.Apps["shopify"].ClientSecret)
	require.Equal(t, 12*time.Hour, config.Default().Scheduler.DefaultPollInterval)
}

func TestEmbeddedDefaults(t *testing.T) {
	c, err := config.Load(nil, nil)
	require.NoError(t, err)
	require.True(t, c.Embedded())
	require.True(t, c.PrivateAddressesAllowed())
	require.True(t, c.SandboxEnabled())

	pg, err := config.Load(nil, []string{"TRIBUTARY_DATABASE_URL=postgres://u@127.0.0.1/db"})
	require.NoError(t, err)
	require.False(t, pg.PrivateAddressesAllowed(), "PostgreSQL deployments refuse private addresses by default")
	require.False(t, pg.HTTPAllowed())
	_, err = pg.LoadMasterKey()
	require.ErrorContains(t, err, "master_key", "a missing master key on PostgreSQL is an error")
}

func TestBadValuesNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"unparsable database url", nil, []string{"TRIBUTARY_DATABASE_URL=mysql://x"}, "database_url"},
		{"database url not a url", []string{"--database-url", "postgres://"}, nil, "database_url"},
		{"unknown key in file", []string{"--config", "testdata/unknown_key.yaml"}, nil, `unknown key "dispatcher.wrokers"`},
		{"unknown app key in file", []string{"--config", "testdata/unknown_app_key.yaml"}, nil, "client_sercet"},
		{"missing file", []string{"--config", "testdata/nope.yaml"}, nil, "config file"},
		{"bad duration", nil, []string{"TRIBUTARY_SCHEDULER_TICK=soon"}, "scheduler.tick"},
		{"zero workers", []string{"--dispatcher-workers", "0"}, nil, "dispatcher.workers"},
		{"bad listen addr", []string{"--listen-addr", "8080"}, nil, "listen_addr"},
		{"bad role", []string{"--roles", "api,cron"}, nil, "roles"},
		{"bad master key", nil, []string{"TRIBUTARY_MASTER_KEY=short"}, "master_key"},
		{"bad bool", nil, []string{"TRIBUTARY_ALLOW_PRIVATE_ADDRESSES=maybe"}, "allow_private_addresses"},
		{"unknown app env", nil, []string{"TRIBUTARY_APPS_HUBSPOT_SECRET=x"}, "TRIBUTARY_APPS_HUBSPOT_SECRET"},
		{"bad log format", []string{"--log-format", "xml"}, nil, "log.format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load(flags(t, tc.args...), tc.env)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestPoolsPerRole(t *testing.T) {
	for _, tc := range []struct {
		name string
		cpus int
		set  func(*config.Config)
		want config.Pool
	}{
		{"2 CPUs", 2, nil, config.Pool{API: 8, Capture: 10, Dispatcher: 5}},
		{"32 CPUs", 32, nil, config.Pool{API: 64, Capture: 22, Dispatcher: 20}},
		{"configured", 2, func(c *config.Config) { c.Database.Pool = config.Pool{API: 3, Capture: 4, Dispatcher: 6} }, config.Pool{API: 3, Capture: 4, Dispatcher: 6}},
		{"capture follows its workers", 2, func(c *config.Config) { c.Inbound.Workers, c.Scheduler.Concurrency = 6, 10 }, config.Pool{API: 8, Capture: 18, Dispatcher: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			if tc.set != nil {
				tc.set(&c)
			}
			require.NoError(t, c.Validate())
			require.Equal(t, tc.want, c.Pools(tc.cpus))
		})
	}
	c := config.Default()
	c.Database.Pool.Dispatcher = -1
	require.ErrorContains(t, c.Validate(), "database.pool.dispatcher")
}
