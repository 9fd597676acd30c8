package reportbody

import (
	"regexp"
	"strings"

	"github.com/knqyf263/go-cpe/naming"
)

// The two forms of a CPE name Clair's cpe.schema.json accepts: the CPE 2.2
// URI and the CPE 2.3 formatted string (its patterns, from the schema).
var (
	cpe22 = regexp.MustCompile(`^[c][pP][eE]:/[AHOaho]?(:[A-Za-z0-9\._\-~%]*){0,6}$`)
	cpe23 = regexp.MustCompile(`^cpe:2\.3:[aho\*\-](:(((\?*|\*?)([a-zA-Z0-9\-\._]|(\\[\\\*\?!"#$$%&'\(\)\+,/:;<=>@\[\]\^` + "`" + `\{\|}~]))+(\?*|\*?))|[\*\-])){5}(:(([a-zA-Z]{2,3}(-([a-zA-Z]{2}|[0-9]{3}))?)|[\*\-]))(:(((\?*|\*?)([a-zA-Z0-9\-\._]|(\\[\\\*\?!"#$$%&'\(\)\+,/:;<=>@\[\]\^` + "`" + `\{\|}~]))+(\?*|\*?))|[\*\-])){4}$`)
)

// clairCPE returns a CPE name in a form Clair's schema accepts, or "" when
// it has none. A valid 2.2 URI or 2.3 formatted string is kept as it is
// (claircore reads both). A 2.3 string cut short, as some os-release files
// write it (Amazon Linux 2: "cpe:2.3:o:amazon:amazon_linux:2"), is completed
// with "*" (ANY) and bound again; anything else is left out rather than
// served in a form Clair's readers reject.
func clairCPE(s string) string {
	if s == "" || cpe22.MatchString(s) || cpe23.MatchString(s) {
		return s
	}
	if !strings.HasPrefix(s, "cpe:2.3:") {
		return ""
	}
	if n := strings.Count(s, ":"); n < 12 {
		s += strings.Repeat(":*", 12-n)
	}
	wfn, err := naming.UnbindFS(s)
	if err != nil {
		return ""
	}
	if fs := naming.BindToFS(wfn); cpe23.MatchString(fs) {
		return fs
	}
	return ""
}
