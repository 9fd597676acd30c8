package reportbody

import "testing"

func TestClairCPE(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"cpe:/o:redhat:enterprise_linux:8::baseos", "cpe:/o:redhat:enterprise_linux:8::baseos"},
		{"cpe:/o:oracle:linux:8:10:server", "cpe:/o:oracle:linux:8:10:server"},
		{"cpe:2.3:o:debian:debian_linux:12:*:*:*:*:*:*:*", "cpe:2.3:o:debian:debian_linux:12:*:*:*:*:*:*:*"},
		// Amazon Linux 2's os-release.
		{"cpe:2.3:o:amazon:amazon_linux:2", "cpe:2.3:o:amazon:amazon_linux:2:*:*:*:*:*:*:*"},
		{"not a cpe", ""},
		{"cpe:2.3:x", ""},
	} {
		got := clairCPE(tc.in)
		if got != tc.want {
			t.Errorf("clairCPE(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got != "" && !cpe22.MatchString(got) && !cpe23.MatchString(got) {
			t.Errorf("clairCPE(%q) = %q matches neither of the schema's patterns", tc.in, got)
		}
	}
}

func FuzzClairCPE(f *testing.F) {
	for _, s := range []string{"cpe:2.3:o:amazon:amazon_linux:2", "cpe:/a:b:c", "cpe:2.3:a:b\\:c:d", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := clairCPE(s); got != "" && !cpe22.MatchString(got) && !cpe23.MatchString(got) {
			t.Fatalf("clairCPE(%q) = %q matches neither of the schema's patterns", s, got)
		}
	})
}
