package rheldockerfile

import (
	"strings"
	"testing"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
	"github.com/stevedore-dev/stevedore/scanner/rhel"
	"github.com/stevedore-dev/stevedore/scanner/scannertest"
)

// FuzzLabels checks that any Dockerfile gives labels or an error, never a
// panic, and that Scan reports exactly the component Component finds, or a
// warning naming the file, never an error. Seeds: the Dockerfile of
// quay/claircore's rhel/testdata/layer-with-cpe.tar (Apache-2.0;
// testdata/fixtures/SOURCES.md, layers/claircore_layer-with-cpe.tar) and
// variants exercising each construct Labels understands.
func FuzzLabels(f *testing.F) {
	f.Add(fixtures.TarMember(f, "layers/claircore_layer-with-cpe.tar", "root/buildinfo/Dockerfile-name-1-1"))
	for _, s := range []string{
		"FROM x\nLABEL com.redhat.component=\"ubi8-container\" name=ubi8 legacy\n",
		"FROM x\nLABEL com.redhat.component ubi8-container\n",
		"ARG G=g\nFROM $G AS a\nARG G\nARG U\nENV E=${G:-d} F $U\nLABEL com.redhat.component=${E}-${F:+x}\nFROM a\n",
		"# escape=`\nFROM x\nLABEL a=b`\n  com.redhat.component='q $x' \\\n# c\n\n",
		"FROM x\nLABEL com.redhat.component=${V:?unset} b=${V#*} c=${V%%x} d=${V/a/b}\n",
		"FROM x\nONBUILD LABEL com.redhat.component=x\nRUN <<EOF\nLABEL a=b\nEOF\n",
		"FROM x AS a\nENV A=aaaa\nENV A=$A$A\nENV A=$A$A\nFROM a AS b\nFROM b\nLABEL com.redhat.component=${A:-${B:-c}}\n",
		"\ufefffrom x\r\nlabel com.redhat.component=\"x\" \\\r\n  b=c",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		labels, lerr := Labels(data)
		if lerr == nil && labels == nil {
			t.Fatal("nil labels without an error")
		}
		name, cerr := Component(data)
		res := scannertest.ScanParsed(t, Scanner{}, "root/buildinfo/Dockerfile-x-1-1", data, cerr)
		if res == nil {
			return
		}
		if name == "" || name != strings.TrimSpace(name) || labels[ComponentLabel].Value == "" {
			t.Fatalf("component %q from labels %+v", name, labels)
		}
		if len(res.Warnings) != 0 || len(res.Repositories) != 1 || res.Repositories[0].Name != name || res.Repositories[0].Key != rhel.ContainerNameKey {
			t.Fatalf("component %q but Scan gave %+v", name, res)
		}
	})
}
