package report

// Image is the outcome of indexing one platform of a reference.
type Image struct {
	Digest   Digest `json:"manifest_hash"`
	Platform string `json:"platform,omitempty"`
	State    State  `json:"state"`
	Queued   bool   `json:"queued"`
}

// IndexRequest is the body of POST /api/v1/index.
type IndexRequest struct {
	Reference string `json:"reference"`
	Platform  string `json:"platform,omitempty"`
}

// IndexResponse answers POST /api/v1/index.
type IndexResponse struct {
	Reference string  `json:"reference"`
	Manifests []Image `json:"manifests"`
}
