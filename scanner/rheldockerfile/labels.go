package rheldockerfile

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/moby/buildkit/frontend/dockerfile/command"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Label is one label of the image a Dockerfile builds.
type Label struct {
	// Value is the label's value, variables expanded.
	Value string
	// Unresolved names, sorted, the build arguments that the Dockerfile
	// declares without a value (ARG NAME, given at build time and unknown
	// here) and that the label's name or value depends on: the first
	// MaxUnresolved of them. When there are any, Value is what a build
	// without them gives, not necessarily what the image has.
	Unresolved []string
}

// Limits of Labels, so that a hostile Dockerfile costs bounded time and
// memory (variables can double in size at each ENV).
const (
	// MaxExpanded bounds the bytes that the expansion of all the names
	// and values of a Dockerfile produces.
	MaxExpanded = 8 << 20
	// MaxStages bounds the build stages of a Dockerfile.
	MaxStages = 64
	// MaxUnresolved bounds the names in Label.Unresolved.
	MaxUnresolved = 8
	// MaxSubstitutions bounds the $ in one name or value, and so how
	// deep substitutions nest (${A:-${B:-...}}).
	MaxSubstitutions = 256
)

// patternOp matches the start of a ${NAME#pattern}, ${NAME%pattern} or
// ${NAME/pattern/replacement} substitution.
var patternOp = regexp.MustCompile(`\$\{(?:[\p{L}\p{Nd}_]*|[@*?\-$!0])[#%/]`)

// Labels returns the labels that the Dockerfile data gives the image it
// builds, as Docker computes them: those of its last build stage, with those
// of an earlier stage it is built FROM.
//
// Instructions are read with the Dockerfile parser Docker's BuildKit uses
// (line continuations, the escape directive, comments, both LABEL forms:
// LABEL k=v k2="v 2" and the legacy LABEL k v), and names and values are
// expanded with its shell-word lexer ($VAR, ${VAR}, ${VAR:-default} and the
// other modifiers, quoting) against the stage's variables, as Docker does:
//
//   - ENV sets a variable for the instructions after it; all pairs of one
//     ENV or LABEL are expanded with the variables from before it;
//   - ARG NAME=default sets a variable to its default (what a build
//     without --build-arg gives); ARG NAME takes the default of an ARG
//     NAME before the first FROM, or else has no value (see
//     Label.Unresolved); ARGs before the first FROM are seen only by FROM
//     lines and by ARG NAME in a stage;
//   - ENV overrides an ARG of the same name, whatever their order;
//   - FROM starts a new stage, with nothing from the stages before it
//     unless it names one (FROM base AS x; FROM x), whose ENV and labels it
//     keeps. The labels and environment of an image from a registry are
//     not known.
//
// ONBUILD instructions are for images built from this one and are ignored.
// The pattern substitutions ${NAME#pattern}, ${NAME%pattern} and
// ${NAME/pattern/replacement}, which BuildKit added and whose cost can grow
// with the product of their operands' sizes, are refused: Docker's classic
// builder, which built the images that have such Dockerfiles, did not have
// them.
//
// The error says what is wrong and where: not UTF-8 text, not a Dockerfile
// (the parser's error, with its line), an instruction before the first
// FROM, a substitution that fails or is refused, a limit exceeded.
func Labels(data []byte) (map[string]Label, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	// Also keeps the lexer's text/scanner from printing to stderr.
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, fmt.Errorf("a NUL byte at offset %d: not a text file", i)
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		var le *parser.LocationError
		if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 && le.Locations[0][0].Start.Line > 0 {
			return nil, fmt.Errorf("not a Dockerfile: line %d: %w", le.Locations[0][0].Start.Line, err)
		}
		return nil, fmt.Errorf("not a Dockerfile: %w", err)
	}
	b := builder{lex: shell.NewLex(res.EscapeToken), global: scope{}, stageNames: map[string]*stage{}, budget: MaxExpanded}
	for _, n := range res.AST.Children {
		if err := b.instruction(n); err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", n.StartLine, strings.ToUpper(n.Value), err)
		}
	}
	if b.cur == nil {
		return nil, errors.New("no FROM instruction")
	}
	return b.cur.labels, nil
}

// variable is an ENV or ARG variable.
type variable struct {
	value string
	// set is false for an ARG declared without a value.
	set bool
	// unresolved are the build arguments without a value that the value
	// depends on (for such an ARG, itself).
	unresolved []string
}

// scope maps variable names to variables.
type scope map[string]variable

// stage is a build stage.
type stage struct {
	env    scope
	args   scope
	labels map[string]Label
}

// builder follows a Dockerfile's instructions.
type builder struct {
	lex        *shell.Lex
	global     scope             // ARGs before the first FROM
	stages     int               // the number of stages so far
	stageNames map[string]*stage // by AS name, lower case
	cur        *stage            // the current stage, nil before the first FROM
	// budget is what is left of MaxExpanded; maxValue is the size of the
	// largest expansion so far, which bounds the value of any variable.
	budget, maxValue int
}

// instruction applies instruction n.
func (b *builder) instruction(n *parser.Node) error {
	switch strings.ToLower(n.Value) {
	case command.From:
		return b.from(words(n))
	case command.Arg:
		return b.arg(words(n))
	case command.Env:
		return b.pairs(words(n), func(k string, v variable) { b.cur.env[k] = v })
	case command.Label:
		return b.pairs(words(n), func(k string, v variable) {
			b.cur.labels[k] = Label{Value: v.value, Unresolved: v.unresolved}
		})
	}
	return nil
}

func (b *builder) from(args []string) error {
	if len(args) == 0 {
		return errors.New("no image")
	}
	base, err := b.expand(args[0], b.global)
	if err != nil {
		return err
	}
	if b.stages == MaxStages {
		return fmt.Errorf("more than %d build stages", MaxStages)
	}
	b.stages++
	st := &stage{env: scope{}, args: scope{}, labels: map[string]Label{}}
	if from, ok := b.stageNames[strings.ToLower(base.value)]; ok {
		st.env = maps.Clone(from.env)
		st.labels = maps.Clone(from.labels)
	}
	if len(args) >= 3 && strings.EqualFold(args[1], "AS") {
		name := strings.ToLower(args[2])
		if _, dup := b.stageNames[name]; dup {
			return fmt.Errorf("duplicate stage name %s", short(args[2]))
		}
		b.stageNames[name] = st
	}
	b.cur = st
	return nil
}

func (b *builder) arg(args []string) error {
	if len(args) == 0 {
		return errors.New("no argument")
	}
	sc, scopes := b.global, []scope{b.global}
	if b.cur != nil {
		sc, scopes = b.cur.args, []scope{b.cur.env, b.cur.args}
	}
	// Each argument sees those before it in the same instruction.
	for _, a := range args {
		k, v, hasValue := strings.Cut(a, "=")
		if k == "" {
			return fmt.Errorf("%s: an empty name", short(a))
		}
		switch g, inGlobal := b.global[k]; {
		case hasValue:
			x, err := b.expand(v, scopes...)
			if err != nil {
				return err
			}
			sc[k] = x
		case b.cur != nil && inGlobal:
			sc[k] = g
		default:
			sc[k] = variable{unresolved: []string{k}}
		}
	}
	return nil
}

// pairs expands the name, value, separator triples of an ENV or LABEL with
// the variables from before it, then sets them in order.
func (b *builder) pairs(args []string, set func(string, variable)) error {
	if b.cur == nil {
		return errors.New("before the first FROM")
	}
	if len(args) == 0 || len(args)%3 != 0 {
		return errors.New("want one or more name=value pairs")
	}
	var out []variable
	for i := 0; i < len(args); i += 3 {
		if args[i] == "" {
			return errors.New("an empty name")
		}
		k, err := b.expand(args[i], b.cur.env, b.cur.args)
		if err != nil {
			return err
		}
		if k.value == "" {
			return fmt.Errorf("name %s is empty once expanded", short(args[i]))
		}
		v, err := b.expand(args[i+1], b.cur.env, b.cur.args)
		if err != nil {
			return err
		}
		v.unresolved = union(k.unresolved, v.unresolved)
		out = append(out, k, v)
	}
	for i := 0; i < len(out); i += 2 {
		set(out[i].value, out[i+1])
	}
	return nil
}

// expand expands word against scopes (the first that has a name wins) and
// returns it as a set variable, with the unresolved build arguments of the
// variables it used.
func (b *builder) expand(word string, scopes ...scope) (variable, error) {
	if patternOp.MatchString(word) {
		return variable{}, fmt.Errorf("expanding %s: pattern substitutions (${NAME#...}, ${NAME%%...}, ${NAME/...}) are not supported", short(word))
	}
	dollars := strings.Count(word, "$")
	if dollars > MaxSubstitutions {
		return variable{}, fmt.Errorf("expanding %s: more than %d substitutions", short(word), MaxSubstitutions)
	}
	// Without pattern substitutions, each $ gives at most one variable's
	// value, or a part of word.
	if bound := len(word) + dollars*b.maxValue; bound > b.budget {
		return variable{}, fmt.Errorf("expanding %s: could exceed the limit of %d bytes of expanded names and values in the file", short(word), MaxExpanded)
	}
	g := getter(scopes)
	r, err := b.lex.ProcessWordWithMatches(word, g)
	if err != nil {
		return variable{}, fmt.Errorf("expanding %s: %w", short(word), err)
	}
	b.budget -= len(r.Result)
	b.maxValue = max(b.maxValue, len(r.Result))
	var unresolved []string
	for _, used := range []map[string]struct{}{r.Matched, r.Unmatched} {
		for name := range used {
			if v, ok := g.lookup(name); ok {
				unresolved = union(unresolved, v.unresolved)
			}
		}
	}
	return variable{value: r.Result, set: true, unresolved: unresolved}, nil
}

// getter is a shell.EnvGetter over scopes, the first that has a name wins.
type getter []scope

var _ shell.EnvGetter = getter(nil)

func (g getter) lookup(name string) (variable, bool) {
	for _, s := range g {
		if v, ok := s[name]; ok {
			return v, true
		}
	}
	return variable{}, false
}

// Get returns the value of name, and whether it has one.
func (g getter) Get(name string) (string, bool) {
	v, ok := g.lookup(name)
	return v.value, ok && v.set
}

// Keys returns the names that have a value, sorted.
func (g getter) Keys() []string {
	var out []string
	for _, s := range g {
		for k := range s {
			if v, _ := g.lookup(k); v.set {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// words returns the arguments of instruction n.
func words(n *parser.Node) []string {
	var out []string
	for a := n.Next; a != nil; a = a.Next {
		out = append(out, a.Value)
	}
	return out
}

// union returns the sorted union of a and b, without duplicates, cut to
// its first MaxUnresolved names. a and b are sorted and are not modified.
func union(a, b []string) []string {
	switch {
	case len(b) == 0:
		return a
	case len(a) == 0:
		return b
	}
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	out = slices.Compact(out)
	return out[:min(len(out), MaxUnresolved)]
}

// short quotes s for an error message, cut to its first 64 runes.
func short(s string) string {
	if utf8.RuneCountInString(s) <= 64 {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%.64q...", s)
}
