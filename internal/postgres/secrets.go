package postgres

import (
	"encoding/json"
	"fmt"
	"net/url"
)

// withoutSecrets returns an encoded job (queue.Job) without the secrets its
// manifest's layers carried: their headers are dropped, their URIs lose
// their user information, and the credentials sealed for the queue
// (queue.Job.Sealed) are dropped. The job kept with a finished report is read
// again by the partial-retry and re-index sweeps; those runs fetch only
// layers without stored results, with the registry credentials of the
// process's own configuration (--registry-config, the Docker config), not
// the request's. Every other field of the job is kept as it was.
func withoutSecrets(job []byte) ([]byte, error) {
	if job == nil {
		return nil, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(job, &top); err != nil {
		return nil, fmt.Errorf("job: %w", err)
	}
	delete(top, "sealed")
	var m map[string]json.RawMessage
	if raw, ok := top["manifest"]; !ok || json.Unmarshal(raw, &m) != nil || m == nil {
		return json.Marshal(top)
	}
	var layers []map[string]json.RawMessage
	if raw, ok := m["layers"]; !ok || json.Unmarshal(raw, &layers) != nil {
		return json.Marshal(top)
	}
	for _, l := range layers {
		if l == nil {
			continue
		}
		delete(l, "headers")
		var uri string
		if raw, ok := l["uri"]; ok && json.Unmarshal(raw, &uri) == nil {
			if u, err := url.Parse(uri); err == nil {
				u.User = nil
				uri = u.String()
			} else {
				uri = ""
			}
			l["uri"], _ = json.Marshal(uri)
		}
	}
	var err error
	if m["layers"], err = json.Marshal(layers); err != nil {
		return nil, err
	}
	if top["manifest"], err = json.Marshal(m); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}
