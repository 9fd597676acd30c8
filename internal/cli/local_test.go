package cli

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/app"
	"github.com/stevedore-dev/stevedore/internal/postgres"
	"github.com/stevedore-dev/stevedore/internal/testing/pgtest"
)

// The in-process API answers only requests signed with the run's key:
// another local user who finds its port gets 401.
func TestLocalAPITakesOnlyTheRunsTokens(t *testing.T) {
	url := pgtest.URL(t)
	pool, err := postgres.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	l, err := startLocal(context.Background(), Options{
		Node:   app.Config{DatabaseURL: url, Pool: pool, Workers: 1},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.stop()
	for _, tc := range []struct {
		name   string
		client *http.Client
		want   int
	}{
		{"unsigned", http.DefaultClient, http.StatusUnauthorized},
		{"signed by the run", l.client, http.StatusOK},
	} {
		resp, err := tc.client.Get(l.url + "/indexer/api/v1/index_state")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}
