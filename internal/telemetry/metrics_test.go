package telemetry_test

import (
	"context"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/telemetry"
)

func TestSetupMetrics(t *testing.T) {
	for _, tc := range []struct {
		env     string
		wantErr bool
	}{
		{"", false},
		{"none", false},
		{"console", false},
		{"no-such-exporter", true},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv("OTEL_METRICS_EXPORTER", tc.env)
			mp, shutdown, err := telemetry.SetupMetrics(context.Background(), "test", nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			c, err := mp.Meter("test").Int64Counter("stevedore.test")
			if err != nil {
				t.Fatal(err)
			}
			c.Add(context.Background(), 1)
			if err := shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}
