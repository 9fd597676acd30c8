package registry_test

import (
	"testing"

	"github.com/stevedore-dev/stevedore/internal/registry"
)

// TestNormalizeHost is the one host normaliser's table: what every
// allowlist (registry.Allowlist, the webhooks' registries), the registry
// settings and the client's per-registry state see. Where the registry
// allowlist and the webhooks' registries used to differ, the safer answer
// was kept, and the case says so.
func TestNormalizeHost(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" : refused
		why      string
	}{
		{"registry.example.com", "registry.example.com", ""},
		{"  Registry.Example.COM ", "registry.example.com", "case and spaces do not matter (both agreed)"},
		{"registry.example.com:5000", "registry.example.com:5000", ""},
		{"localhost", "localhost", ""},
		{"127.0.0.1:5000", "127.0.0.1:5000", ""},
		{"[::1]:5000", "[::1]:5000", "a bracketed IPv6 address"},
		{"[FD00::1]", "[fd00::1]", ""},
		{"my_registry:5000", "my_registry:5000", "compose service names have underscores (the webhooks accepted them)"},
		// Docker Hub: the registry allowlist folded its names, the
		// webhooks did not (an event naming index.docker.io was refused
		// by an entry docker.io). They are one registry: folded.
		{"docker.io", "index.docker.io", "Docker Hub's names are one registry"},
		{"Index.Docker.IO", "index.docker.io", ""},
		{"registry-1.docker.io", "index.docker.io", ""},
		{"docker.io:443", "docker.io:443", "a port is part of the host: not folded"},
		// Default ports: neither folded them. Kept apart: "host" and
		// "host:443" can be different endpoints (a plain-HTTP registry
		// "host" is on port 80), so an entry allows exactly what it names.
		{"registry.example.com:443", "registry.example.com:443", "default ports are not folded"},
		{"registry.example.com:80", "registry.example.com:80", ""},
		// Trailing dots: the allowlist took "host." as an entry matching
		// only "host."; the webhooks refused it. Refused: one spelling
		// per host.
		{"registry.example.com.", "", "trailing dot refused"},
		{"registry.example.com.:5000", "", "trailing dot refused"},
		// What is not a host[:port]: the allowlist took some of these
		// as entries that could match nothing valid; refused.
		{"", "", "empty"},
		{"https://registry.example.com", "", "a scheme (the webhooks' settings drop one before normalising)"},
		{"registry.example.com/path", "", "a path"},
		{"user@registry.example.com", "", "user information"},
		{"a b", "", "a space"},
		{"::1", "", "an unbracketed IPv6 address"},
		{"[zz::1]", "", "not an IPv6 address"},
		{"host:", "", "an empty port"},
		{"host:0", "", "port 0"},
		{"host:65536", "", "port out of range"},
		{"host:05000", "", "a port with a leading zero would be a second spelling"},
		{"host:80:90", "", "two ports"},
		{"a..b", "", "an empty label"},
		{"-a.example", "", "a label starting with '-'"},
		{"a-.example", "", "a label ending with '-'"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := registry.NormalizeHost(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("NormalizeHost(%q) = %q, want an error (%s)", tc.in, got, tc.why)
				}
				if c := registry.CanonicalHost(tc.in); c == tc.in || c == "" {
					t.Errorf("CanonicalHost(%q) = %q: an invalid host must not look valid", tc.in, c)
				}
				if registry.Allowlist([]string{tc.in}).Allows(tc.in) {
					t.Errorf("an allowlist of %q allows it", tc.in)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("NormalizeHost(%q) = %q, %v; want %q (%s)", tc.in, got, err, tc.want, tc.why)
			}
			if again, err := registry.NormalizeHost(got); err != nil || again != got {
				t.Errorf("not idempotent: NormalizeHost(%q) = %q, %v", got, again, err)
			}
			if c := registry.CanonicalHost(tc.in); c != tc.want {
				t.Errorf("CanonicalHost(%q) = %q, want %q", tc.in, c, tc.want)
			}
		})
	}
}

func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"registry.example.com:5000", "docker.io", "[::1]:5000", "a.", "host:05000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := registry.NormalizeHost(s)
		if err != nil {
			return
		}
		if again, err := registry.NormalizeHost(got); err != nil || again != got {
			t.Fatalf("NormalizeHost(%q) = %q, again %q, %v", s, got, again, err)
		}
		if !registry.Allowlist([]string{s}).Allows(got) {
			t.Fatalf("an allowlist of %q does not allow its normal form %q", s, got)
		}
	})
}
