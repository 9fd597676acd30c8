package httpapi

// NegotiateForTest exposes negotiate, with the affected-manifest offers.
func NegotiateForTest(accept []string) (string, error) { return negotiate(accept, affectedMediaTypes) }
