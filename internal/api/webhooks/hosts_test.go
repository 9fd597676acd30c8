package webhooks

import (
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/registry"
)

// TestRegistriesAgreeWithAllowlist: the webhooks' registries and the
// registry allowlist normalise hosts with one function
// (registry.NormalizeHost), so an entry allows the same hosts in both.
// The cases where they used to differ: Docker Hub's names (the webhooks
// did not fold them), trailing dots and malformed hosts (the allowlist
// took them as entries); see registry.TestNormalizeHost.
func TestRegistriesAgreeWithAllowlist(t *testing.T) {
	entries := []string{"Registry.Example.com:5000", "docker.io", "[::1]:5000", "my_registry", "plain.example"}
	var regs Registries
	var allow registry.Allowlist
	for _, e := range entries {
		if err := allow.Set(e); err != nil {
			t.Fatalf("Allowlist.Set(%q): %v", e, err)
		}
	}
	if err := regs.Set(strings.Join(entries, ",")); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{
		"registry.example.com:5000", "REGISTRY.EXAMPLE.COM:5000", "registry.example.com", "registry.example.com:05000",
		"docker.io", "index.docker.io", "registry-1.docker.io", "docker.io:443",
		"[::1]:5000", "[0:0::1]:5000", "::1", "my_registry", "MY_REGISTRY",
		"plain.example", "plain.example.", "plain.example:443", "plain.example:80", "other.example", "",
	} {
		_, byWebhooks := regs.PullHost(host)
		if byAllowlist := allow.Allows(host); byWebhooks != byAllowlist {
			t.Errorf("%q: webhooks' registries allow it: %v, registry allowlist: %v", host, byWebhooks, byAllowlist)
		}
	}
	for _, bad := range []string{"plain.example.", "::1", "host:0", "a..b"} {
		var a registry.Allowlist
		_, errW := ParseRegistries(bad)
		if errA := a.Set(bad); (errA == nil) != (errW == nil) || errA == nil {
			t.Errorf("%q: Allowlist.Set: %v, ParseRegistries: %v; want both to refuse it", bad, errA, errW)
		}
	}
}
