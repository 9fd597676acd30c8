// Package natsembed runs a NATS server with JetStream inside the process, for
// the single-node mode and for tests. It is the nats-server/v2 module, new
// enough for message schedules (Debian's packaged server is not).
package natsembed

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configures the embedded server.
type Options struct {
	// StoreDir is where JetStream keeps its data; required.
	StoreDir string
	// Host to listen on; default 127.0.0.1.
	Host string
	// Port to listen on; 0 or -1 picks a free one.
	Port int
}

// Start starts a JetStream-enabled server and waits until it accepts
// connections. Stop it with Shutdown and WaitForShutdown.
func Start(opts Options) (*server.Server, error) {
	if opts.StoreDir == "" {
		return nil, fmt.Errorf("start embedded nats: no store dir")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = -1
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "stevedore-embedded",
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		Host:       opts.Host,
		Port:       opts.Port,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	// Start does not block (the server runs on goroutines of its own) and
	// has its client listener open when it returns, so the check below
	// succeeds at once: started on a goroutine, the server would not be
	// ready at its first look, and the check would sleep 25 ms.
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("start embedded nats on %s:%d: not ready after 10s", opts.Host, opts.Port)
	}
	return ns, nil
}
