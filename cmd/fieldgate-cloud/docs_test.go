package main

import (
	"context"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"fieldgate/cmd/fieldgate-cloud/receiver/pgtest"
)

// TestTheRecipeInTheDocs runs docs/cloud.md's set-up commands, as written,
// against a fresh PostgreSQL: the role and the database it owns, the
// migration and the registration of a gateway, connecting as that role
// (not as the superuser the tests otherwise use). Every line of the
// recipe must be one this test knows how to run, so a change to the docs
// is a change to this test.
func TestTheRecipeInTheDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cloud.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(doc), 2)
	if len(blocks) < 2 {
		t.Fatal("docs/cloud.md lost its set-up and registration blocks")
	}
	pg := pgtest.Start(t)
	admin, err := pgx.Connect(t.Context(), pg.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(t.Context())
	var (
		psql      = regexp.MustCompile(`^sudo -u postgres psql -c "(.*)"$`)
		createdb  = regexp.MustCompile(`^sudo -u postgres createdb -O (\w+) (\w+)$`)
		exportURL = regexp.MustCompile(`^export DATABASE_URL='(.*)'$`)
		cloudCmd  = regexp.MustCompile(`^go run \./cmd/fieldgate-cloud (.*?)\s*(#.*)?$`)
	)
	ran := 0
	for _, block := range blocks[:2] {
		for line := range strings.Lines(block[1]) {
			line = strings.TrimSpace(line)
			switch {
			case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "apt-get install"):
			case strings.HasPrefix(line, "GW=$(curl"): // the gateway's id, from its API
				t.Setenv("GW", "fg-0123456789ab")
			case psql.MatchString(line):
				if _, err := admin.Exec(t.Context(), psql.FindStringSubmatch(line)[1]); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
			case createdb.MatchString(line):
				m := createdb.FindStringSubmatch(line)
				if _, err := admin.Exec(t.Context(), "CREATE DATABASE "+m[2]+" OWNER "+m[1]); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
			case exportURL.MatchString(line):
				// The doc's URL, pointed at the test's server: its user,
				// password and database as written.
				u, err := url.Parse(exportURL.FindStringSubmatch(line)[1])
				if err != nil {
					t.Fatal(err)
				}
				pw, _ := u.User.Password()
				t.Setenv("DATABASE_URL", "host="+pg.SocketDir()+" port=5432 user="+u.User.Username()+" password="+pw+
					" dbname="+strings.TrimPrefix(u.Path, "/")+" sslmode=disable")
			case cloudCmd.MatchString(line):
				args := splitArgs(os.ExpandEnv(cloudCmd.FindStringSubmatch(line)[1]))
				if args[0] == "-listen" {
					continue // serving is tested elsewhere (serve_test.go, the end-to-end tests)
				}
				var out strings.Builder
				if err := run(context.Background(), args, &out, &out); err != nil {
					t.Fatalf("%s: %v\n%s", line, err, out.String())
				}
				t.Logf("%s:\n%s", line, out.String())
			default:
				t.Fatalf("docs/cloud.md has a line this test does not know how to run: %q", line)
			}
			ran++
		}
	}
	var owner string
	c, err := pgx.Connect(t.Context(), os.Getenv("DATABASE_URL"))
	if err != nil {
		t.Fatalf("connect as the recipe's role: %v", err)
	}
	defer c.Close(t.Context())
	if err := c.QueryRow(t.Context(), "SELECT tableowner FROM pg_tables WHERE tablename = 'readings'").Scan(&owner); err != nil || owner != "fieldgate" {
		t.Errorf("readings owned by %q (%v), want the recipe's role", owner, err)
	}
	var gws int
	if err := c.QueryRow(t.Context(), "SELECT count(*) FROM gateways WHERE id = $1", os.Getenv("GW")).Scan(&gws); err != nil || gws != 1 {
		t.Errorf("%d gateways registered (%v), want the one the recipe adds", gws, err)
	}
}

// splitArgs splits a command line on spaces, keeping "quoted words" whole.
func splitArgs(s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`"([^"]*)"|(\S+)`).FindAllStringSubmatch(s, -1) {
		out = append(out, m[1]+m[2])
	}
	return out
}
