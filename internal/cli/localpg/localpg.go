// Package localpg runs a private PostgreSQL cluster for `stevedore scan`
// when no database is configured: created once with the local
// installation's initdb in a directory of the user's cache, started with
// pg_ctl when it is not running, reachable only on a Unix socket in that
// directory (no TCP), and reused by later runs. A lock file makes two runs
// at once safe.
package localpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotInstalled is returned when no initdb and pg_ctl are found; its
// message says how to install them.
var ErrNotInstalled = errors.New("PostgreSQL is not installed")

// Port is the cluster's port: it only names the socket file, in a
// directory of its own, so any number does.
const Port = 5432

// Database is the database Ensure creates for Stevedore.
const Database = "stevedore"

// Options configures Ensure. The zero value is the default setup.
type Options struct {
	// Dir holds the cluster (data/), its socket, log and lock file.
	// Default: DefaultDir().
	Dir string
	// Path is the list of directories searched first for initdb and
	// pg_ctl (default: $PATH).
	Path []string
	// LibDir holds one directory per installed major version, each with a
	// bin/ (default /usr/lib/postgresql, Debian's layout); the newest
	// version is taken.
	LibDir string
	// RunAs is the user the cluster runs as when this process is root,
	// since initdb and postgres refuse to run as root (default
	// "postgres", the user the postgresql package creates).
	RunAs string
}

// Cluster is a running private cluster.
type Cluster struct {
	// URL connects to the Stevedore database as the superuser postgres.
	URL string
	// Dir is the cluster's directory.
	Dir string
	// BinDir holds the initdb and pg_ctl used.
	BinDir string
	// Created is true when this call ran initdb, Started when it started
	// the server (false: it was already running).
	Created, Started bool

	runAs string
}

// DefaultDir is where the private cluster lives: <user cache
// dir>/stevedore/postgres (~/.cache/stevedore/postgres), or, for root,
// /var/tmp/stevedore-postgres, since the postgres user that runs root's
// cluster cannot enter root's home.
func DefaultDir() (string, error) {
	if os.Geteuid() == 0 {
		return "/var/tmp/stevedore-postgres", nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache dir for the private PostgreSQL cluster: %w", err)
	}
	return filepath.Join(dir, "stevedore", "postgres"), nil
}

// Message is the one line that says which cluster is used and how.
func (c *Cluster) Message() string {
	what := "using"
	switch {
	case c.Created:
		what = "created and started"
	case c.Started:
		what = "started"
	}
	return fmt.Sprintf("no DATABASE_URL: %s the private PostgreSQL cluster in %s", what, c.Dir)
}

// StopCommand is the shell command that stops the cluster.
func (c *Cluster) StopCommand() string {
	cmd := filepath.Join(c.BinDir, "pg_ctl") + " -D " + filepath.Join(c.Dir, "data") + " stop"
	if c.runAs != "" {
		cmd = "runuser -u " + c.runAs + " -- " + cmd
	}
	return cmd
}

// FindBin returns the directory holding both initdb and pg_ctl: the first
// of path that has them, else the newest version under libDir. It returns
// an error wrapping ErrNotInstalled, with the install command, when there
// is none.
func FindBin(path []string, libDir string) (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "pg_ctl"} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	for _, d := range path {
		if d != "" && has(d) {
			return d, nil
		}
	}
	entries, _ := os.ReadDir(libDir)
	var versions []string
	for _, e := range entries {
		if has(filepath.Join(libDir, e.Name(), "bin")) {
			versions = append(versions, e.Name())
		}
	}
	if len(versions) > 0 {
		slices.SortFunc(versions, compareVersions)
		return filepath.Join(libDir, versions[len(versions)-1], "bin"), nil
	}
	install := "apt-get install postgresql"
	if os.Geteuid() != 0 {
		install = "sudo " + install
	}
	return "", fmt.Errorf("%w (no initdb and pg_ctl in PATH or %s/*/bin): install it with `%s` (Debian, Ubuntu; `dnf install postgresql-server` on Fedora), or set DATABASE_URL to a server of yours", ErrNotInstalled, libDir, install)
}

// compareVersions orders "9.6" < "15" < "16.1" by their numeric parts.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return strings.Compare(a, b)
}

// Ensure starts the private cluster, creating it first if needed, and
// returns how to reach it. Concurrent calls (in this or other processes)
// wait for each other on a lock file in the cluster's directory.
func Ensure(ctx context.Context, o Options) (*Cluster, error) {
	if o.Dir == "" {
		d, err := DefaultDir()
		if err != nil {
			return nil, err
		}
		o.Dir = d
	}
	if o.Path == nil {
		o.Path = filepath.SplitList(os.Getenv("PATH"))
	}
	if o.LibDir == "" {
		o.LibDir = "/usr/lib/postgresql"
	}
	if o.RunAs == "" {
		o.RunAs = "postgres"
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("private PostgreSQL cluster dir %q: %w", o.Dir, err)
	}
	// The socket path must fit in sockaddr_un (108 bytes with the NUL).
	if sock := filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(Port)); len(sock) > 107 {
		return nil, fmt.Errorf("private PostgreSQL cluster dir %s: too long for a Unix socket path (%d bytes; at most 107): set XDG_CACHE_HOME to a shorter directory, or DATABASE_URL", dir, len(sock))
	}
	bin, err := FindBin(o.Path, o.LibDir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, BinDir: bin}
	var owner *user.User
	if os.Geteuid() == 0 {
		if owner, err = user.Lookup(o.RunAs); err != nil {
			return nil, fmt.Errorf("running as root: initdb and postgres refuse to run as root, and user %q to run the private cluster as is missing (%w); run stevedore as another user or set DATABASE_URL", o.RunAs, err)
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			return nil, fmt.Errorf("running as root: runuser (util-linux) is needed to run the private cluster as %s: %w", o.RunAs, err)
		}
		c.runAs = o.RunAs
	}
	if err := makeDir(dir, owner); err != nil {
		return nil, err
	}
	unlock, err := lock(ctx, filepath.Join(dir, "lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if err := c.initdb(ctx, data); err != nil {
			return nil, err
		}
		c.Created = true
	}
	if c.run(ctx, "pg_ctl", "-D", data, "status") != nil {
		logFile := filepath.Join(dir, "postgres.log")
		if err := c.run(ctx, "pg_ctl", "-D", data, "-l", logFile, "-w", "-t", "60", "-s", "start"); err != nil {
			return nil, fmt.Errorf("start the private PostgreSQL cluster in %s: %w (its log: %s)", dir, err, logFile)
		}
		c.Started = true
	}
	q := url.Values{"host": {dir}, "port": {strconv.Itoa(Port)}, "sslmode": {"disable"}}
	admin := "postgres://postgres@/postgres?" + q.Encode()
	if err := createDatabase(ctx, admin); err != nil {
		return nil, fmt.Errorf("private PostgreSQL cluster in %s: %w", dir, err)
	}
	c.URL = "postgres://postgres@/" + Database + "?" + q.Encode()
	return c, nil
}

// Stop stops the cluster (fast shutdown).
func (c *Cluster) Stop(ctx context.Context) error {
	if err := c.run(ctx, "pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-m", "fast", "-w", "-s", "stop"); err != nil {
		return fmt.Errorf("stop the private PostgreSQL cluster in %s: %w", c.Dir, err)
	}
	return nil
}

// makeDir creates dir (private to its owner), owned by owner when set.
func makeDir(dir string, owner *user.User) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("private PostgreSQL cluster dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("private PostgreSQL cluster dir: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("private PostgreSQL cluster dir %s: no owner information", dir)
	}
	want := uint32(os.Geteuid())
	if owner != nil {
		uid, _ := strconv.ParseUint(owner.Uid, 10, 32)
		gid, _ := strconv.ParseUint(owner.Gid, 10, 32)
		if st.Uid != uint32(uid) && st.Uid == 0 {
			if err := os.Chown(dir, int(uid), int(gid)); err != nil {
				return fmt.Errorf("private PostgreSQL cluster dir: %w", err)
			}
			st.Uid = uint32(uid)
		}
		want = uint32(uid)
	}
	if st.Uid != want {
		return fmt.Errorf("private PostgreSQL cluster dir %s: owned by uid %d, not %d: refusing to use it", dir, st.Uid, want)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("private PostgreSQL cluster dir: %w", err)
	}
	return nil
}

// lock takes an exclusive flock on path, waiting (until ctx ends) for
// another run that holds it.
func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("private PostgreSQL cluster lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("private PostgreSQL cluster lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for the private PostgreSQL cluster lock %s (another stevedore is setting it up): %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) initdb(ctx context.Context, data string) error {
	// A half-made data dir (initdb interrupted) is made again.
	if err := os.RemoveAll(data); err != nil {
		return fmt.Errorf("private PostgreSQL cluster: %w", err)
	}
	if err := c.run(ctx, "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions"); err != nil {
		if c.runAs != "" {
			return fmt.Errorf("initdb of the private PostgreSQL cluster in %s (as user %s, who must be able to enter every directory above it): %w", c.Dir, c.runAs, err)
		}
		return fmt.Errorf("initdb of the private PostgreSQL cluster in %s: %w", c.Dir, err)
	}
	conf := fmt.Sprintf(`
# Added by stevedore (internal/cli/localpg): a private cluster for stevedore scan,
# reachable only on the Unix socket in this directory.
listen_addresses = ''
unix_socket_directories = '%s'
port = %d
synchronous_commit = off
`, strings.ReplaceAll(c.Dir, "'", "''"), Port)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("private PostgreSQL cluster config: %w", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("private PostgreSQL cluster config: %w", err)
	}
	return nil
}

// run runs a PostgreSQL program of the cluster's installation, as RunAs
// when root, in a session of its own (the server it starts outlives this
// process and ignores its terminal's Ctrl-C), with no descriptors of ours
// but /dev/null. Its output goes in the error.
func (c *Cluster) run(ctx context.Context, prog string, args ...string) error {
	name := filepath.Join(c.BinDir, prog)
	if c.runAs != "" {
		args = append([]string{"-u", c.runAs, "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = c.Dir
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		if msg == "" {
			return fmt.Errorf("%s: %w", prog, err)
		}
		return fmt.Errorf("%s: %w: %s", prog, err, msg)
	}
	return nil
}

// createDatabase creates the Stevedore database unless it exists.
func createDatabase(ctx context.Context, adminURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", Database).Scan(&exists); err != nil {
		return fmt.Errorf("look for database %s: %w", Database, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{Database}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", Database, err)
	}
	return nil
}
