package owned

import (
	"reflect"
	"testing"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/x":     "usr/bin/x",
		"./usr/bin/x":    "usr/bin/x",
		"usr//lib/../x":  "usr/x",
		"/":              "",
		"/.":             "",
		"/../etc/passwd": "",
		"..":             "",
		"":               "",
		"/a\x00b":        "",
	} {
		got, ok := Clean(in)
		if got != want || ok != (want != "") {
			t.Errorf("Clean(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestRelevant(t *testing.T) {
	for _, tt := range []struct {
		p       string
		regular bool
		want    bool
	}{
		{"usr/lib/python3/dist-packages/six-1.16.0.egg-info", false, true},
		{"usr/lib/python3/dist-packages/foo-1.0.dist-info", false, true},
		{"usr/lib/python3/dist-packages/foo-1.0.dist-info/METADATA", true, true},
		{"usr/lib64/python3.9/site-packages/rpm/__init__.py", true, true},
		{"usr/lib/node_modules/npm/package.json", true, true},
		{"usr/share/java/foo.jar", true, true},
		{"usr/share/java/FOO.WAR", true, true},
		{"usr/share/java/foo.jar", false, false}, // a symbolic link to the real jar
		{"usr/share/gems/specifications/rake-13.0.gemspec", true, true},
		{"usr/lib/ruby/gems/3.0.0/gems/rake-13.0/lib/rake.rb", true, true},
		{"usr/bin/ls", true, true},
		{"usr/bin/ls", false, false},
		{"sbin/ldconfig", true, true},
		{"usr/libexec/git-core/git", true, true},
		{"usr/bin", true, false},
		{"usr/share/doc/bash/README", true, false},
		{"etc/passwd", true, false},
		{"usr/lib/x86_64-linux-gnu/libc.so.6", true, false},
		{"usr/share/cargo/app/Cargo.lock", true, true},
		{"usr/lib/dotnet/shared/Microsoft.NETCore.App/8.0.0/Microsoft.NETCore.App.deps.json", true, true},
		{"usr/lib/dotnet/shared/Microsoft.NETCore.App/8.0.0/Microsoft.NETCore.App.deps.json", false, false},
		{"usr/share/php/vendor/composer/installed.json", true, true},
		{"usr/share/php/vendor/composer/installed.php", true, false},
		{"opt/conda/conda-meta/pip-22.2.2-py38h06a4308_0.json", true, true},
		{"usr/share/pyshared/foo-1.0-py3.11.egg", true, true},
	} {
		if got := Relevant(tt.p, tt.regular); got != tt.want {
			t.Errorf("Relevant(%q, %v) = %v, want %v", tt.p, tt.regular, got, tt.want)
		}
	}
}

func TestAliases(t *testing.T) {
	for in, want := range map[string][]string{
		"bin/ls":       {"bin/ls", "usr/bin/ls"},
		"lib64/x.so":   {"lib64/x.so", "usr/lib64/x.so"},
		"usr/bin/ls":   {"usr/bin/ls"},
		"binaries/x":   {"binaries/x"},
		"opt/app/bin/": {"opt/app/bin/"},
	} {
		if got := Aliases(in); !reflect.DeepEqual(got, want) {
			t.Errorf("Aliases(%q) = %q, want %q", in, got, want)
		}
	}
}
