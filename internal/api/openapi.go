package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is Stevedore's OpenAPI 3 document: every route this package
// serves (a test checks it), Clair's answers as Stevedore writes them.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPITypes are the media types GET /openapi/v1 offers.
var openAPITypes = []string{"application/vnd.oai.openapi+json", "application/json"}

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	ct, ok := negotiate(w, r, openAPITypes)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(openAPIDoc)
}
