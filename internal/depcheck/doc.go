// Package depcheck holds no code: its test pins the direction of imports
// between Stevedore's packages (in the manner of go-containerregistry's
// depcheck tests), so that data flows one way through the tree:
//
//	api → intake → queue → worker → indexer → layer/registry → scanner → postgres
//
// and the public packages (report, client, scanner) never reach into the
// engine under internal/.
package depcheck
